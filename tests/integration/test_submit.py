"""Submission against the simulator over httpx: webhook in, exactly one MCF order out."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update

from bridge import jobs
from bridge.amazon.accounts import build_amazon
from bridge.amazon.limiter import DatabaseBuckets
from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.channels import Money
from bridge.runtime import make_worker
from bridge.store import JobRecord, OrderEventRecord, OrderRecord, read_session, write_session
from bridge.worker import Worker
from tests.conftest import due_now
from tests.support import fixture, generic_delivery, shopify_delivery, shopify_order, woo_delivery, woo_order


def order_row(bridge: Bridge, external_id: str) -> OrderRecord:
    with read_session(bridge.engine) as session:
        return (
            session.execute(select(OrderRecord).where(OrderRecord.external_id == external_id)).scalars().one()
        )


def events(bridge: Bridge, row: OrderRecord) -> list[str]:
    with read_session(bridge.engine) as session:
        query = (
            select(OrderEventRecord.event)
            .where(OrderEventRecord.order_id == row.id)
            .order_by(OrderEventRecord.id)
        )
        return list(session.execute(query).scalars())


def send_shopify(client: FlaskClient, order_id: int = 1001, **kwargs: Any) -> None:
    body, headers = shopify_delivery(shopify_order(order_id, **kwargs))
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def test_paid_order_becomes_exactly_one_amazon_order(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_shopify(client, 1001)
    assert worker.drain() == 1
    row = order_row(bridge, "1001")
    assert (row.state, row.seller_fulfillment_order_id, row.amazon_status) == (
        "submitted",
        "shop-a-1001",
        "Received",
    )
    assert events(bridge, row) == ["intake:created", "submit_started", "created"]
    assert simulator.ledger.creates("shop-a-1001") == 1
    assert simulator.ledger.calls("getFulfillmentPreview") == 1
    assert simulator.ledger.statuses("createFulfillmentOrder") == {200: 1}, "the request passed our schemas"
    order = simulator.get_fulfillment_order("shop-a-1001")["payload"]["fulfillmentOrder"]
    assert order["displayableOrderId"] == "#1001" and order["shippingSpeedCategory"] == "Standard"


def test_out_of_stock_order_needs_attention_with_amazons_reasons(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = woo_order(701)
    order["line_items"][0]["sku"] = "POSTER-A2"
    body, headers = woo_delivery(order)
    client.post("/webhooks/woo-main", data=body, headers=headers)
    worker.drain()
    row = order_row(bridge, "701")
    assert row.state == "needs_attention"
    assert "FBA-POSTER-A2" in row.attention_reason and "Amazon cannot fulfil" in row.attention_reason
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_fee_above_the_cap_is_held_for_an_operator(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    shop = bridge.config.channels["shop-a"]
    low_cap = replace(shop, fee_cap=Money(Decimal("1.00"), "USD"))
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, "shop-a": low_cap})
    send_shopify(client, 1002)
    worker.drain()
    row = order_row(bridge, "1002")
    assert row.state == "needs_attention" and "exceed the channel's cap 1.00 USD" in row.attention_reason
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_unmapped_sku_holds_or_skips_per_channel(client: FlaskClient, bridge: Bridge, worker: Worker) -> None:
    order = woo_order(702)
    order["line_items"][0]["sku"] = "NOT-AT-AMAZON"
    body, headers = woo_delivery(order)
    client.post("/webhooks/woo-main", data=body, headers=headers)  # woo-main: unmapped -> hold
    send_shopify(client, 1003, sku="NOT-AT-AMAZON")  # shop-a: unmapped -> skip
    worker.drain()
    assert order_row(bridge, "702").state == "needs_attention"
    assert "NOT-AT-AMAZON" in order_row(bridge, "702").attention_reason
    assert order_row(bridge, "1003").state == "not_for_amazon"


def test_destination_outside_the_channel_is_parked_before_any_call(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = shopify_order(1004)
    order["shipping_address"]["country_code"] = "FR"
    body, headers = shopify_delivery(order)
    client.post("/webhooks/shop-a", data=body, headers=headers)
    worker.drain()
    assert "FR" in order_row(bridge, "1004").attention_reason
    assert simulator.ledger.calls("getFulfillmentPreview") == 0


def test_unpaid_order_is_held_at_amazon_and_released_on_payment(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    body = fixture("generic/order_upsert.json")
    body["order"].update(
        payment_state="pending", lines=[{"line_id": "1", "sku": "SKU-1", "quantity": 1, "unit_price": "5.00"}]
    )
    body["order"]["destination"]["country_code"] = "US"
    client.post(
        "/webhooks/own-shop",
        **dict(zip(("data", "headers"), generic_delivery(body, bridge.clock.now()), strict=True)),
    )
    worker.drain()
    row = order_row(bridge, "A-1001")
    assert row.state == "held_at_amazon"
    sfo_id = row.seller_fulfillment_order_id
    assert (
        sfo_id
        and simulator.get_fulfillment_order(sfo_id)["payload"]["fulfillmentOrder"]["fulfillmentAction"]
        == "Hold"
    )
    body["order"].update(payment_state="paid", updated_at="2026-11-23T12:30:00Z")
    client.post(
        "/webhooks/own-shop",
        **dict(zip(("data", "headers"), generic_delivery(body, bridge.clock.now()), strict=True)),
    )
    worker.drain()
    assert order_row(bridge, "A-1001").state == "submitted"
    assert (
        simulator.get_fulfillment_order(sfo_id)["payload"]["fulfillmentOrder"]["fulfillmentAction"] == "Ship"
    )
    assert simulator.ledger.creates(sfo_id) == 1


def test_429_storm_is_ridden_out_within_the_advertised_rate(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    simulator.inject_fault("getFulfillmentPreview", status=429, count=12, retry_after=2)
    send_shopify(client, 1005)
    for _ in range(10):
        worker.drain()
        due_now(bridge.engine)
    assert order_row(bridge, "1005").state == "submitted"
    assert simulator.ledger.creates("shop-a-1005") == 1
    assert simulator.ledger.max_calls_per_second("getFulfillmentPreview") <= 2 + 30


def test_no_429_of_our_own_making_under_a_burst_of_orders(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    for n in range(40):
        send_shopify(client, 2000 + n)
    worker.drain()
    assert simulator.ledger.throttled() == 0
    with read_session(bridge.engine) as session:
        states = set(session.execute(select(OrderRecord.state)).scalars())
    assert states == {"submitted"}


def test_token_expiry_mid_run_costs_exactly_one_refresh(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_shopify(client, 1006)
    worker.drain()
    simulator.inject_fault("getFulfillmentPreview", kind="expire_tokens")
    send_shopify(client, 1007)
    worker.drain()
    assert order_row(bridge, "1007").state == "submitted"
    assert simulator.ledger.calls("lwaToken") == 2


def test_revoked_credentials_park_the_work_without_failing_orders(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    simulator.revoke_refresh_token()
    send_shopify(client, 1008)
    worker.drain()
    with read_session(bridge.engine) as session:
        job = session.execute(select(JobRecord).where(JobRecord.kind == "submit")).scalars().one()
    assert job.status == "ready" and job.attempts == 0, "credential trouble spends no attempt"
    assert "re-authori" in job.last_error or "invalid_grant" in job.last_error
    assert order_row(bridge, "1008").state == "received"
    # The seller re-authorises; a restarted worker shares the parked state through the database
    # and resumes with the others once the next try is due (no restart needed, none harmful).
    simulator.restore_refresh_tokens()
    restarted = make_worker(
        bridge,
        amazon=build_amazon(
            bridge,
            simulator=simulator,
            buckets=DatabaseBuckets(bridge.engine, bridge.clock, use_db_clock=False),
        ),
    )
    due_now(bridge.engine)
    restarted.drain()
    assert order_row(bridge, "1008").state == "received"
    bridge.clock.advance(31)  # type: ignore[attr-defined]
    due_now(bridge.engine)
    restarted.drain()
    assert order_row(bridge, "1008").state == "submitted"


def test_accept_then_drop_on_create_gives_exactly_one_amazon_order(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    simulator.inject_fault("createFulfillmentOrder", kind="accept_then_drop")
    send_shopify(client, 1009)
    worker.drain()
    row = order_row(bridge, "1009")
    assert row.state == "submitted"
    assert simulator.ledger.creates("shop-a-1009") == 1
    assert "created (confirmed by reading after an ambiguous answer)" in _reasons(bridge, row)


def test_create_that_failed_before_amazon_acted_is_sent_again_once(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    # Retry-After keeps the retry out of this drain (the default backoff is jittered from 0 s).
    simulator.inject_fault("createFulfillmentOrder", status=503, retry_after=60)
    send_shopify(client, 1010)
    worker.drain()
    assert order_row(bridge, "1010").state == "submitting"
    due_now(bridge.engine)
    worker.drain()
    assert order_row(bridge, "1010").state == "submitted"
    assert simulator.ledger.creates("shop-a-1010") == 1
    assert simulator.ledger.calls("getFulfillmentPreview") == 1, (
        "a resumed submission reads, it does not re-preview"
    )


def _reasons(bridge: Bridge, row: OrderRecord) -> str:
    with read_session(bridge.engine) as session:
        query = select(OrderEventRecord.reason).where(OrderEventRecord.order_id == row.id)
        return "\n".join(session.execute(query).scalars())


def test_an_order_stuck_in_submitting_is_read_back_before_a_changed_channels_file_is_applied(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    """A crash after the create landed, then a config change that unmaps the SKU: the retry finds
    the order at Amazon instead of parking it (which would leave it out of sync for good)."""
    send_shopify(client, 1011)
    worker.drain()
    assert order_row(bridge, "1011").state == "submitted"
    with write_session(bridge.engine) as session:  # as if the worker died before recording it
        session.execute(
            update(OrderRecord)
            .where(OrderRecord.external_id == "1011")
            .values(state="submitting", amazon_status=None)
        )
    shop = bridge.config.channels["shop-a"]
    unmapped = replace(shop, sku_map={k: v for k, v in shop.sku_map.items() if k != "TSHIRT-RED-M"})
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, "shop-a": unmapped})
    row = order_row(bridge, "1011")
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "submit", order_id=row.id)
    worker.drain()
    row = order_row(bridge, "1011")
    assert (row.state, row.amazon_status) == ("submitted", "Received")
    assert "found at Amazon after an interrupted attempt" in _reasons(bridge, row)
    assert simulator.ledger.creates("shop-a-1011") == 1
