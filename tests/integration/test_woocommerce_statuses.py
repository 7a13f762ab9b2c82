"""WooCommerce's own statuses decide what ships, and no delivery is lost to WooCommerce's delivery-id
scheme (issue 10, items 4 and 5). Webhooks over HTTP, the simulator, the fake WooCommerce store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from bridge.alerts import list_alerts
from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app
from bridge.runtime import make_worker
from bridge.storefronts.registry import Storefronts
from bridge.worker import Worker
from tests.integration.test_submit import _reasons, order_row
from tests.integration.test_sync import HOUR
from tests.support import WOO_SENT_AT, woo_delivery, woo_order


class Shops:
    def __init__(self, woo: FakeWooCommerce, worker: Worker) -> None:
        self.woo = woo
        self.worker = worker


@pytest.fixture
def shops(bridge: Bridge, amazon, clock: ManualClock) -> Shops:  # type: ignore[no-untyped-def]
    """The fake WooCommerce store behind the real pusher, and a worker that runs every stage."""
    woo = FakeWooCommerce(clock=clock)
    transports = {"woo-main": httpx.WSGITransport(app=create_fake_woocommerce_app(woo))}
    return Shops(woo, make_worker(bridge, amazon=amazon, storefronts=Storefronts(clock, transports)))


def post(client: FlaskClient, order: dict[str, Any], topic: str = "order.updated", **kw: Any) -> str:
    body, headers = woo_delivery(order, topic, **kw)
    response = client.post("/webhooks/woo-main", data=body, headers=headers)
    assert response.status_code == 200
    outcome: str = response.json["outcome"] if "outcome" in response.json else response.json["status"]
    return outcome


def amazon_status(simulator: Simulator, sfo_id: str) -> str:
    status: str = simulator.get_fulfillment_order(sfo_id)["payload"]["fulfillmentOrder"][
        "fulfillmentOrderStatus"
    ]
    return status


def minute(n: int) -> str:
    return f"2026-11-01T10:{n:02d}:00"


# ---------------------------------------------------------------------------------------------
# 5. Delivery ids


def test_two_deliveries_of_one_webhook_in_the_same_second_are_both_applied(
    client: FlaskClient, bridge: Bridge, shops: Shops, simulator: Simulator
) -> None:
    """WooCommerce sends order.updated twice in one second (payment captured right after
    creation): both deliveries carry the same X-WC-Webhook-Delivery-ID."""
    assert post(client, woo_order(760, status="on-hold", modified=minute(0))) == "created"
    assert post(client, woo_order(760, status="processing", modified=minute(0))) == "amended"
    shops.worker.drain()
    assert order_row(bridge, "760").state == "submitted"
    assert simulator.ledger.creates("woo-main-760") == 1


def test_a_byte_identical_replay_is_still_a_duplicate(client: FlaskClient, bridge: Bridge) -> None:
    order = woo_order(761)
    assert post(client, order) == "created"
    assert post(client, order) == "duplicate"
    assert post(client, order, sent_at=WOO_SENT_AT + timedelta(seconds=1)) == "unchanged"


# ---------------------------------------------------------------------------------------------
# 4. Refunded, cancelled, failed, trashed and restored orders


def test_refunded_before_submission_is_cancelled_with_the_reason(
    client: FlaskClient, bridge: Bridge, shops: Shops, simulator: Simulator
) -> None:
    post(client, woo_order(740, modified=minute(0)), "order.created")
    post(client, woo_order(740, status="refunded", modified=minute(1)))
    shops.worker.drain()
    row = order_row(bridge, "740")
    assert row.state == "cancelled", "not left in received forever"
    assert "WooCommerce status refunded" in _reasons(bridge, row)
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_refunded_after_submission_is_cancelled_at_amazon(
    client: FlaskClient, bridge: Bridge, shops: Shops, simulator: Simulator
) -> None:
    shops.woo.add_order(741)
    post(client, woo_order(741, modified=minute(0)), "order.created")
    shops.worker.drain()
    assert order_row(bridge, "741").state == "submitted"
    post(client, woo_order(741, status="refunded", modified=minute(5)))
    shops.worker.drain()
    assert order_row(bridge, "741").state == "cancelled"
    assert amazon_status(simulator, "woo-main-741") == "Cancelled"
    assert list_alerts(bridge.engine) == []


def test_refunded_too_late_to_cancel_alerts_an_operator_naming_the_order(
    client: FlaskClient, bridge: Bridge, shops: Shops, simulator: Simulator, clock: ManualClock
) -> None:
    shops.woo.add_order(742)
    post(client, woo_order(742, modified=minute(0)), "order.created")
    shops.worker.drain()
    clock.advance(2 * HOUR)  # Amazon is picking it
    post(client, woo_order(742, status="refunded", modified=minute(5)))
    shops.worker.drain()
    assert amazon_status(simulator, "woo-main-742") == "Processing"
    [alert] = list_alerts(bridge.engine)
    assert alert.order_display_id == "742" and "742" in alert.message and "will be shipped" in alert.message
    notes = [note.note for note in shops.woo.order(742).notes]
    assert any("could not be passed to Amazon" in note for note in notes), "the merchant sees it in the shop"


def test_failed_then_paid_is_cancelled_then_evaluated_again(
    client: FlaskClient, bridge: Bridge, shops: Shops, simulator: Simulator
) -> None:
    post(client, woo_order(743, status="failed", modified=minute(0)), "order.created")
    shops.worker.drain()
    assert order_row(bridge, "743").state == "cancelled"
    post(client, woo_order(743, status="processing", modified=minute(3)))  # the customer paid after all
    shops.worker.drain()
    assert order_row(bridge, "743").state == "submitted"
    assert simulator.ledger.creates("woo-main-743") == 1


def test_a_trashed_order_restored_to_processing_is_evaluated_again(
    client: FlaskClient, bridge: Bridge, shops: Shops, simulator: Simulator
) -> None:
    post(client, woo_order(744, status="on-hold", modified=minute(0)), "order.created")
    post(client, woo_order(744, status="trash", modified=minute(1)))
    shops.worker.drain()
    assert order_row(bridge, "744").state == "cancelled"
    post(client, woo_order(744, status="processing", modified=minute(2)), "order.restored")
    shops.worker.drain()
    row = order_row(bridge, "744")
    assert row.state == "submitted", "not silently forgotten"
    assert "restored in the storefront" in _reasons(bridge, row)


def test_restored_after_amazon_cancelled_it_alerts_instead_of_shipping_twice(
    client: FlaskClient, bridge: Bridge, shops: Shops, simulator: Simulator
) -> None:
    shops.woo.add_order(745)
    post(client, woo_order(745, modified=minute(0)), "order.created")
    shops.worker.drain()
    post(client, woo_order(745, status="cancelled", modified=minute(1)))
    shops.worker.drain()
    assert amazon_status(simulator, "woo-main-745") == "Cancelled"
    post(client, woo_order(745, status="processing", modified=minute(2)))
    shops.worker.drain()
    assert order_row(bridge, "745").state == "cancelled"
    [alert] = list_alerts(bridge.engine)
    assert "restored in the storefront after its Amazon order had been cancelled" in alert.message
    assert simulator.ledger.creates("woo-main-745") == 1
