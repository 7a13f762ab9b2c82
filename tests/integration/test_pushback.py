"""Push-back through the real pipeline into fake storefronts: exactly one fulfilment per package."""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app
from bridge.runtime import make_worker
from bridge.store import JobRecord, PushRecord, read_session
from bridge.storefronts.registry import Storefronts
from bridge.worker import Worker
from tests.conftest import TEST_ENV, LogOutput, due_now
from tests.integration.test_submit import order_row
from tests.integration.test_sync import HOUR, count, send_generic, sync_cycle
from tests.support import shopify_delivery, shopify_line, shopify_order, woo_delivery, woo_order


@dataclass
class Shops:
    shopify: FakeShopify
    woo: FakeWooCommerce
    generic: FakeGenericReceiver
    worker: Worker


@pytest.fixture
def shops(bridge: Bridge, amazon, clock: ManualClock) -> Shops:  # type: ignore[no-untyped-def]
    shopify = FakeShopify("demo-shopify-token", clock=clock)
    woo = FakeWooCommerce(clock=clock)
    generic = FakeGenericReceiver(TEST_ENV["OWN_SHOP_SECRET"], clock=clock)
    transports = {
        "shop-a": httpx.WSGITransport(app=create_fake_shopify_app(shopify)),
        "woo-main": httpx.WSGITransport(app=create_fake_woocommerce_app(woo)),
        "own-shop": httpx.WSGITransport(app=create_fake_generic_app(generic)),
    }
    worker = make_worker(bridge, amazon=amazon, storefronts=Storefronts(clock, transports))
    return Shops(shopify, woo, generic, worker)


def ship_shopify(
    client: FlaskClient,
    bridge: Bridge,
    shops: Shops,
    clock: ManualClock,
    order_id: int,
    lines: list[tuple[int, str, int]],
) -> None:
    order = shopify_order(order_id)
    template = order["line_items"][0]
    order["line_items"] = [shopify_line(template, id=lid, sku=sku, quantity=qty) for lid, sku, qty in lines]
    shops.shopify.add_order(str(order_id), [(str(lid), sku, qty) for lid, sku, qty in lines])
    body, headers = shopify_delivery(order)
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200
    shops.worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, shops.worker)


def test_multi_package_order_gets_one_fulfillment_per_package_and_repeat_polls_do_nothing(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    ship_shopify(client, bridge, shops, clock, 7001, [(71, "TSHIRT-BLUE-L", 2), (72, "TSHIRT-RED-M", 1)])
    fulfillments = shops.shopify.fulfillments("7001")
    assert len(fulfillments) == 3
    assert sorted(sum(f.quantities.values()) for f in fulfillments) == [1, 1, 1]
    assert all(f.tracking_numbers for f in fulfillments)
    assert shops.shopify.remaining("7001") == {"71": 0, "72": 0}
    for _ in range(3):
        clock.advance(900)
        sync_cycle(bridge, shops.worker)
    assert len(shops.shopify.fulfillments("7001")) == 3, "pushes per package exactly 1.0"
    assert count(bridge, PushRecord, status="done") == 3


def test_lost_answer_on_fulfillment_create_does_not_duplicate(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    shops.shopify.accept_then_drop_next("fulfillmentCreate")
    ship_shopify(client, bridge, shops, clock, 7002, [(73, "TSHIRT-RED-M", 1)])
    due_now(bridge.engine)
    shops.worker.drain()
    assert len(shops.shopify.fulfillments("7002")) == 1
    assert count(bridge, PushRecord, status="done") == 1


def test_storefront_throttling_is_waited_out(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    shops.shopify.fail_next("BridgeFulfillmentOrders", status=429, count=2, retry_after=3)
    ship_shopify(client, bridge, shops, clock, 7003, [(74, "MUG-WHITE", 1)])
    for _ in range(3):
        due_now(bridge.engine)
        shops.worker.drain()
    assert len(shops.shopify.fulfillments("7003")) == 1


def test_revoked_storefront_credentials_park_the_push_without_spending_attempts_until_restored(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    shops.shopify.revoke()
    ship_shopify(client, bridge, shops, clock, 7004, [(75, "MUG-WHITE", 1)])
    for _ in range(10):
        clock.advance(60)
        due_now(bridge.engine)
        shops.worker.drain()
    with read_session(bridge.engine) as session:
        job = session.execute(select(JobRecord).where(JobRecord.kind == "push")).scalars().one()
    assert job.status == "ready" and job.attempts == 0 and "credentials" in job.last_error
    assert shops.shopify.fulfillments("7004") == []
    shops.shopify.restore_access()
    clock.advance(60)
    due_now(bridge.engine)
    shops.worker.drain()
    assert len(shops.shopify.fulfillments("7004")) == 1


def test_partial_shipment_leaves_the_unshipped_shopify_lines_unfulfilled(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    shop = bridge.config.channels["shop-a"]
    mapped = replace(shop, sku_map={**shop.sku_map, "WILL-BE-CANCELLED": "FBA-SKU-2"})
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, "shop-a": mapped})
    ship_shopify(client, bridge, shops, clock, 7005, [(76, "TSHIRT-RED-M", 1), (77, "WILL-BE-CANCELLED", 1)])
    shops.worker.drain()
    assert order_row(bridge, "7005").state == "completed_partially"
    assert shops.shopify.remaining("7005") == {"76": 0, "77": 1}
    assert "[fba-bridge:" in (shops.shopify.note("7005") or ""), "the merchant is told in the order note"


def test_woocommerce_gets_tracking_note_and_completed_status(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    shops.woo.add_order(704)
    body, headers = woo_delivery(woo_order(704))
    client.post("/webhooks/woo-main", data=body, headers=headers)
    shops.worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, shops.worker)
    order = shops.woo.order(704)
    assert order is not None
    assert len(order.trackings) == 1 and order.status == "completed"
    assert any("[fba-bridge:" in note.note for note in order.notes)


def test_generic_shop_receives_one_signed_callback_per_package(
    client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    send_generic(client, bridge, "P-1", ["SKU-1", "SKU-2"])
    shops.worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, shops.worker)
    types = sorted(e.type for e in shops.generic.events)
    assert types.count("shipment.created") == 1
    assert types.count("order.note") == 2
    assert shops.generic.rejections == []


def test_simulator_sees_exactly_one_create_per_order(
    simulator: Simulator, client: FlaskClient, bridge: Bridge, shops: Shops, clock: ManualClock
) -> None:
    ship_shopify(client, bridge, shops, clock, 7006, [(78, "TSHIRT-RED-M", 1)])
    assert simulator.ledger.creates("shop-a-7006") == 1


def test_no_personal_data_reaches_logs_anywhere_in_the_loop(
    client: FlaskClient,
    bridge: Bridge,
    shops: Shops,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    log_output: LogOutput,
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    ship_shopify(client, bridge, shops, clock, 7007, [(79, "TSHIRT-RED-M", 1)])  # submit, sync, push-back
    assert len(shops.shopify.fulfillments("7007")) == 1
    canaries = (
        "Jon Canary",
        "jon.canary@example.com",
        "42 Canary Wharf Lane",
        "+1 555 0100 777",
        "demo-shopify-token",
        TEST_ENV["SHOP_A_WEBHOOK_SECRET"],
    )
    for canary in canaries:
        assert canary not in caplog.text
    log_output.assert_free_of(*canaries)
