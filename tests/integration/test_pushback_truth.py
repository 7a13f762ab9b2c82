"""Push-back reports only what Amazon shipped, never completes a failed order, and names carriers
and dates as the storefront expects (issue 10, items 10, 11, 13). The whole loop: webhooks over
HTTP, the simulator, sync, and the fake storefronts behind the real pushers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from bridge.amazon.simulator import Simulator, load_config
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app
from bridge.runtime import make_worker
from bridge.storefronts.registry import Storefronts
from bridge.worker import Worker
from tests.conftest import ROOT, TEST_ENV
from tests.integration.test_submit import order_row
from tests.integration.test_sync import HOUR, sync_cycle
from tests.integration.test_what_ships import configure
from tests.support import fixture, generic_delivery, shopify_delivery, shopify_order, woo_delivery, woo_order

CARRIER = "AMZL_US"


@pytest.fixture
def simulator(clock: ManualClock) -> Simulator:
    """The demo inventory, every package shipped by Amazon Logistics (code AMZL_US)."""
    config = replace(load_config(ROOT / "config" / "simulator.yaml"), carriers=(CARRIER,))
    return Simulator(config, clock=clock, rate_clock=clock, delay_clock=clock)


class Shops:
    def __init__(self, bridge: Bridge, amazon: Any, clock: ManualClock) -> None:
        self.shopify = FakeShopify("demo-shopify-token", clock=clock)
        self.woo = FakeWooCommerce(clock=clock)
        self.generic = FakeGenericReceiver(TEST_ENV["OWN_SHOP_SECRET"], clock=clock)
        transports = {
            "shop-a": httpx.WSGITransport(app=create_fake_shopify_app(self.shopify)),
            "woo-main": httpx.WSGITransport(app=create_fake_woocommerce_app(self.woo)),
            "own-shop": httpx.WSGITransport(app=create_fake_generic_app(self.generic)),
        }
        self.worker: Worker = make_worker(bridge, amazon=amazon, storefronts=Storefronts(clock, transports))


@pytest.fixture
def shops(bridge: Bridge, amazon, clock: ManualClock) -> Shops:  # type: ignore[no-untyped-def]
    return Shops(bridge, amazon, clock)


def ship(bridge: Bridge, shops: Shops, clock: ManualClock, hours: float = 5) -> None:
    shops.worker.drain()
    clock.advance(hours * HOUR)
    sync_cycle(bridge, shops.worker)


def woo_with_unmapped_line(order_id: int) -> dict[str, Any]:
    order = woo_order(order_id)
    template = order["line_items"][0]
    order["line_items"] = [template, dict(template, id=999, sku="HANDMADE-CARD", quantity=2, name="Card")]
    return order


# ---------------------------------------------------------------------------------------------
# 10. A line Amazon does not ship


def test_woocommerce_stays_open_with_a_note_naming_what_amazon_did_not_ship(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    configure(bridge, "woo-main", unmapped_policy="skip")
    shops.woo.add_order(1001)
    body, headers = woo_delivery(woo_with_unmapped_line(1001))
    assert client.post("/webhooks/woo-main", data=body, headers=headers).status_code == 200
    ship(bridge, shops, clock)
    assert order_row(bridge, "1001").state == "shipped", "Amazon shipped all it was asked to"
    order = shops.woo.order(1001)
    assert order.status == "processing", "not completed: the card was never shipped"
    [note] = [n.note for n in order.notes if "[fba-bridge:" in n.note]
    assert "HANDMADE-CARD x 2" in note and "still to send" in note
    assert "Every item of the order has now shipped" not in note


def test_the_generic_callback_says_not_all_shipped_and_lists_the_remaining_lines(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    configure(bridge, "own-shop", unmapped_policy="skip")
    body = fixture("generic/order_upsert.json")
    body["order"].update(
        external_id="R-1",
        lines=[
            {"line_id": "1", "sku": "SKU-1", "quantity": 1, "unit_price": "5.00"},
            {"line_id": "2", "sku": "GIFT-WRAP", "quantity": 1, "unit_price": "1.00"},
        ],
    )
    body["order"]["destination"]["country_code"] = "US"
    raw, headers = generic_delivery(body, bridge.clock.now())
    assert client.post("/webhooks/own-shop", data=raw, headers=headers).status_code == 200
    ship(bridge, shops, clock)
    [event] = shops.generic.events_of("shipment.created")
    assert event.payload["data"]["all_shipped"] is False
    assert event.payload["data"]["remaining_lines"] == [{"line_id": "2", "sku": "GIFT-WRAP", "quantity": 1}]


def test_an_order_amazon_shipped_entirely_is_still_completed(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    shops.woo.add_order(1002)
    body, headers = woo_delivery(woo_order(1002))
    client.post("/webhooks/woo-main", data=body, headers=headers)
    ship(bridge, shops, clock)
    assert shops.woo.order(1002).status == "completed"


# ---------------------------------------------------------------------------------------------
# 11. A failed order is never completed


def test_a_failed_woocommerce_order_is_not_marked_completed_by_a_push(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    shops.woo.add_order(1101)
    body, headers = woo_delivery(woo_order(1101))
    client.post("/webhooks/woo-main", data=body, headers=headers)
    shops.worker.drain()
    shops.woo.order(1101).status = "failed"  # changed in the store; the webhook never came
    ship(bridge, shops, clock)
    order = shops.woo.order(1101)
    assert order.status == "failed"
    assert len(order.trackings) == 1, "the tracking is still recorded"


# ---------------------------------------------------------------------------------------------
# 13. Carrier names and the shipping date


def test_shopify_gets_its_own_name_for_amazons_carrier_code(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    order = shopify_order(1301)
    shops.shopify.add_order("1301", [(str(order["line_items"][0]["id"]), "TSHIRT-RED-M", 1)])
    body, headers = shopify_delivery(order)
    client.post("/webhooks/shop-a", data=body, headers=headers)
    ship(bridge, shops, clock)
    [fulfillment] = shops.shopify.fulfillments("1301")
    assert [t.company for t in fulfillment.tracking] == ["Amazon"], "Shopify 2026-07 lists 'Amazon'"


def test_a_channel_can_name_a_carrier_itself(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    configure(bridge, "shop-a", carrier_names={"amzl_us": "Amazon Shipping"})
    order = shopify_order(1302)
    shops.shopify.add_order("1302", [(str(order["line_items"][0]["id"]), "TSHIRT-RED-M", 1)])
    body, headers = shopify_delivery(order)
    client.post("/webhooks/shop-a", data=body, headers=headers)
    ship(bridge, shops, clock)
    [fulfillment] = shops.shopify.fulfillments("1302")
    assert [t.company for t in fulfillment.tracking] == ["Amazon Shipping"]


def test_woocommerce_and_generic_get_the_carrier_in_words_and_amazons_shipping_date(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    clock.advance(9 * HOUR)  # 21:00 UTC: Amazon ships after midnight, the bridge hears of it days later
    shops.woo.add_order(1303)
    body, headers = woo_delivery(woo_order(1303))
    client.post("/webhooks/woo-main", data=body, headers=headers)
    generic = fixture("generic/order_upsert.json")
    generic["order"].update(
        external_id="C-1", lines=[{"line_id": "1", "sku": "SKU-1", "quantity": 1, "unit_price": "5.00"}]
    )
    generic["order"]["destination"]["country_code"] = "US"
    raw, signed = generic_delivery(generic, bridge.clock.now())
    client.post("/webhooks/own-shop", data=raw, headers=signed)
    ship(bridge, shops, clock, hours=30)
    shipped_on = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # created 21:00 + 4 h at Amazon

    [tracking] = shops.woo.order(1303).trackings
    assert tracking.provider_name == "Amazon Logistics" and tracking.date_shipped == "2026-11-24"
    [event] = shops.generic.events_of("shipment.created")
    data = event.payload["data"]
    assert (data["carrier"], data["carrier_code"]) == ("Amazon Logistics", CARRIER)
    assert datetime.fromisoformat(data["shipped_at"]) == shipped_on
