"""400 simulated days: canary personal data in every kind of delivery and order state, the real
pipeline (simulator, fake storefronts) and the hourly purge and compaction jobs; afterwards no
canary is left anywhere in the database -- every table and every column, found from the models'
metadata, so a table added later is scanned too."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlmodel import SQLModel

from bridge import jobs
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.orders import OrderState
from bridge.pipeline.compaction import JOB_COMPACT
from bridge.scheduler import JOB_PURGE
from bridge.store import OrderRecord, read_session, write_session
from tests.conftest import due_now
from tests.integration.test_pushback import Shops, shops  # noqa: F401  (the fixture)
from tests.integration.test_sync import sync_cycle
from tests.support import (
    fixture,
    generic_delivery,
    shopify_delivery,
    shopify_line,
    shopify_order,
    woo_delivery,
    woo_order,
)

DAY = 86400.0
NAME = "Canarius Zzyxwv"
PHONE = "+1 555 0199 4242"
STREET = "17 Canarywharf Row"
NOTE = "canary note: ring twice"
GIFT = "canary gift: happy birthday"


def email(n: int) -> str:
    return f"zzcanary{n}@canary.example"


CANARIES = [
    NAME,
    "Zzyxwv",
    PHONE,
    "0199 4242",
    STREET,
    "Canarywharf",
    "canary note",
    "canary gift",
    "zzcanary",
]


def canary_shopify(order_id: int, *, n: int, **kwargs: Any) -> dict[str, Any]:
    order = shopify_order(order_id, name=NAME, email=email(n), **kwargs)
    order["phone"] = PHONE
    order["note"] = NOTE
    order["note_attributes"] = [{"name": "Gift message", "value": GIFT}]
    order["shipping_address"].update(address1=STREET, phone=PHONE)
    order["billing_address"] = dict(order["shipping_address"])
    order["customer"] = {"id": 1, "email": email(n), "phone": PHONE, "first_name": "Canarius"}
    return order


def canary_woo(
    order_id: int, *, n: int, status: str = "processing", modified: str = "2026-11-01T10:00:00"
) -> Any:
    order = woo_order(order_id, status=status, modified=modified, email=email(n))
    for block in ("billing", "shipping"):
        order[block] = dict(order[block], first_name="Canarius", last_name="Zzyxwv", address_1=STREET)
    order["billing"]["phone"] = PHONE
    order["customer_note"] = NOTE
    order["meta_data"] = [{"id": 1, "key": "gift_message", "value": GIFT}]
    return order


def canary_generic(external_id: str, *, n: int, kind: str = "order.upsert") -> dict[str, Any]:
    body = fixture("generic/order_upsert.json")
    body["type"] = kind
    order = body["order"]
    order.update(
        external_id=external_id, buyer_email=email(n), buyer_phone=PHONE, notes=NOTE, gift_message=GIFT
    )
    order["destination"] = dict(order["destination"], name=NAME, line1=STREET, phone=PHONE)
    return body


class Storefront:
    def __init__(self, client: FlaskClient, bridge: Bridge) -> None:
        self.client = client
        self.bridge = bridge

    def post(self, url: str, delivery: tuple[bytes, dict[str, str]]) -> str:
        body, headers = delivery
        response = self.client.post(url, data=body, headers=headers)
        assert response.status_code < 300, (url, response.status_code, response.get_data(as_text=True))
        return str((response.json or {}).get("outcome", ""))

    def shopify(self, body: Any, topic: str = "orders/create") -> str:
        return self.post("/webhooks/shop-a", shopify_delivery(body, topic=topic))

    def woo(self, body: Any, topic: str = "order.created") -> str:
        return self.post("/webhooks/woo-main", woo_delivery(body, topic=topic))

    def generic(self, body: Any) -> str:
        return self.post("/webhooks/own-shop", generic_delivery(body, self.bridge.clock.now()))


def every_kind_of_delivery(shop: Storefront, fakes: Shops, base: int) -> None:
    """Canaries in every delivery kind the bridge stores, leading to every order state it reaches."""
    n = base
    # Paid and shipped through Amazon, pushed back to the fake Shopify.
    fakes.shopify.add_order(str(base + 1), [("1", "TSHIRT-RED-M", 1)])
    paid = canary_shopify(base + 1, n=n)
    paid["line_items"] = [shopify_line(paid["line_items"][0], id=1, sku="TSHIRT-RED-M", quantity=1)]
    assert shop.shopify(paid) == "created"
    assert shop.shopify(paid, topic="orders/paid") == "unchanged"
    # Unpaid (awaiting payment), unknown SKU (parked), not for Amazon, cancelled, test order.
    shop.shopify(canary_shopify(base + 2, n=n + 1, financial_status="pending"))
    shop.shopify(canary_shopify(base + 3, n=n + 2, sku="NOT-IN-THE-SKU-MAP"))
    digital = canary_shopify(base + 4, n=n + 3)
    digital["line_items"][0]["requires_shipping"] = False
    shop.shopify(digital)
    cancelled = canary_shopify(base + 5, n=n + 4, updated_at="2026-11-01T11:00:00-05:00")
    cancelled["cancelled_at"] = "2026-11-01T11:00:00-05:00"
    shop.shopify(cancelled, topic="orders/cancelled")
    # Authentic but refused by the schema (parked), an ignored topic, privacy topics.
    refused = canary_shopify(base + 6, n=n + 5)
    refused["currency"] = "usd"
    assert shop.shopify(refused) == "schema_refused"
    assert shop.shopify(canary_shopify(base + 7, n=n + 6), topic="app/uninstalled") == "ignored"
    request = fixture("shopify/customers_data_request.json")
    request["customer"] = {"id": 1, "email": email(n), "phone": PHONE}
    request["orders_requested"] = [base + 1]
    shop.shopify(request, topic="customers/data_request")
    redact = fixture("shopify/customers_redact.json")
    redact["customer"] = {"id": 1, "email": email(n + 4), "phone": PHONE}
    redact["orders_to_redact"] = [base + 5]
    shop.shopify(redact, topic="customers/redact")

    # WooCommerce: an order for Amazon, a draft (no order), a deletion, a refused one.
    fakes.woo.add_order(base + 11)
    shop.woo(canary_woo(base + 11, n=n + 7))
    assert shop.woo(canary_woo(base + 12, n=n + 8, status="checkout-draft")) == "ignored"
    shop.woo(canary_woo(base + 13, n=n + 9))
    shop.woo({"id": base + 13}, topic="order.deleted")
    broken = canary_woo(base + 14, n=n + 10)
    broken["currency"] = "dollars"
    assert shop.woo(broken) == "schema_refused"

    # Generic: an order, a cancellation, an ignored type.
    shop.generic(canary_generic(f"G-{base}", n=n + 11))
    shop.generic(canary_generic(f"G-{base + 1}", n=n + 12, kind="customer.updated"))


def force_every_other_state(bridge: Bridge, base: int) -> None:
    """States the pipeline reaches only with Amazon's help over days: set on spare orders
    (`base + 50` onwards), so every state holds canary data when the clock starts."""
    with read_session(bridge.engine) as session:
        reached = set(session.execute(select(OrderRecord.state)).scalars())
    missing = [state for state in OrderState if state.value not in reached]
    for offset, state in enumerate(missing):
        with write_session(bridge.engine) as session:
            session.execute(
                update(OrderRecord)
                .where(OrderRecord.channel_id == "shop-a", OrderRecord.external_id == str(base + 50 + offset))
                .values(state=state.value)
            )


def tick(bridge: Bridge, fakes: Shops, days: float) -> None:
    bridge.clock.advance(days * DAY)  # type: ignore[attr-defined]
    due_now(bridge.engine)
    sync_cycle(bridge, fakes.worker)
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_PURGE, payload={"retention_days": 30})
        jobs.enqueue(session, JOB_COMPACT, payload={"retention_days": 30})
    fakes.worker.drain()


def canaries_in_database(bridge: Bridge) -> list[str]:
    found = []
    with read_session(bridge.engine) as session:
        for table in SQLModel.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                for column, value in row.items():
                    if value is None or isinstance(value, (int, float, bool)):
                        continue
                    if isinstance(value, bytes):
                        text = value.decode("utf-8", errors="replace")
                    elif isinstance(value, (dict, list)):
                        text = json.dumps(value, ensure_ascii=False)
                    else:
                        text = str(value)
                    lowered = text.lower()
                    for canary in CANARIES:
                        if canary.lower() in lowered:
                            found.append(f"{table.name}.{column}: {canary}")
    return sorted(set(found))


def test_no_canary_survives_400_days_anywhere_in_the_database(
    client: FlaskClient,
    bridge: Bridge,
    shops: Shops,  # noqa: F811
    clock: ManualClock,
) -> None:
    shop = Storefront(client, bridge)
    every_kind_of_delivery(shop, shops, 8000)
    for offset in range(len(OrderState)):  # one order per state the pipeline does not reach by itself
        shop.shopify(canary_shopify(8050 + offset, n=8050 + offset, sku="NOT-IN-THE-SKU-MAP"))
    shops.worker.drain()
    force_every_other_state(bridge, 8000)
    assert canaries_in_database(bridge), "the canaries were stored to begin with"
    with read_session(bridge.engine) as session:
        states = set(session.execute(select(OrderRecord.state)).scalars())
    assert states == {state.value for state in OrderState}, "every order state holds canaries"

    for day in range(0, 400, 5):
        tick(bridge, shops, 5)
        if day == 60:
            # Shopify sends orders/updated for an archived order long after it was purged, and a
            # WooCommerce draft of a purged order comes back.
            archived = canary_shopify(8001, n=9001, updated_at="2026-12-30T10:00:00-05:00")
            shop.shopify(archived, topic="orders/updated")
            shop.woo(canary_woo(8011, n=9002, status="checkout-draft", modified="2026-12-30T10:00:00"))
        if day == 200:
            every_kind_of_delivery(shop, shops, 8200)

    assert canaries_in_database(bridge) == []
