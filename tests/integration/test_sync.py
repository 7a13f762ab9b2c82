"""Shipment sync, notifications and cancellation against the simulator (push jobs stay queued)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bridge import jobs
from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.pipeline.sync import JOB_PUSH, JOB_SYNC, JOB_SYNC_STALE, STALE_AFTER
from bridge.runtime import HANDLERS
from bridge.settings import Secret
from bridge.store import JobRecord, OrderRecord, PackageRecord, PushRecord, read_session, write_session
from bridge.worker import Worker
from tests.conftest import due_now
from tests.support import shopify_delivery, shopify_order

HOUR = 3600


@pytest.fixture
def amazon_worker(bridge: Bridge, worker: Worker) -> Worker:
    """Every stage but push-back (its jobs stay queued so tests can count them)."""
    return Worker(bridge, {k: v for k, v in HANDLERS.items() if k != JOB_PUSH}, services=worker.services)


def send(client: FlaskClient, order_id: int, sku: str = "TSHIRT-RED-M", quantity: int = 1) -> None:
    body, headers = shopify_delivery(shopify_order(order_id, sku=sku, quantity=quantity))
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def cancel(client: FlaskClient, order_id: int) -> None:
    order = shopify_order(order_id, updated_at="2026-11-01T11:00:00-05:00")
    order["cancelled_at"] = "2026-11-01T11:00:00-05:00"
    body, headers = shopify_delivery(order, topic="orders/cancelled")
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def sync_cycle(bridge: Bridge, worker: Worker) -> None:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_SYNC, payload={"account_id": "main"}, dedupe_key="sync:main")
    worker.drain()


def row(bridge: Bridge, external_id: str) -> OrderRecord:
    with read_session(bridge.engine) as session:
        return (
            session.execute(select(OrderRecord).where(OrderRecord.external_id == external_id)).scalars().one()
        )


def count(bridge: Bridge, model: type, **where: Any) -> int:
    with read_session(bridge.engine) as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(session.execute(query).scalar_one())


def test_shipped_packages_are_recorded_once_and_owe_one_push_each(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, clock: ManualClock
) -> None:
    send(client, 5001, sku="TSHIRT-BLUE-L", quantity=2)  # split SKU: one package per unit
    amazon_worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, amazon_worker)
    order = row(bridge, "5001")
    assert (order.state, order.amazon_status) == ("shipped", "Complete")
    with read_session(bridge.engine) as session:
        packages = list(session.execute(select(PackageRecord)).scalars())
    assert len(packages) == 2
    assert all(p.tracking_number and p.tracking_url and p.carrier_code for p in packages)
    assert [line["quantity"] for p in packages for line in p.lines] == [1, 1]
    assert {line["line_id"] for p in packages for line in p.lines} == {order.canonical().lines[0].line_id}
    assert count(bridge, PushRecord, kind="shipment") == 2
    for _ in range(3):  # repeated polls and notifications change nothing
        clock.advance(600)
        sync_cycle(bridge, amazon_worker)
        with write_session(bridge.engine) as session:
            from bridge.pipeline.sync import enqueue_order_sync

            enqueue_order_sync(session, order.id or 0, "test")
        amazon_worker.drain()
    assert count(bridge, PushRecord, kind="shipment") == 2
    assert count(bridge, JobRecord, kind=JOB_PUSH) == 2


def test_sync_cost_follows_changed_orders_not_open_ones(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    for n in range(40):
        send(client, 6000 + n)
    amazon_worker.drain()
    clock.advance(1800)
    send(client, 6100)
    send(client, 6101)
    amazon_worker.drain()
    clock.advance(300)
    sync_cycle(bridge, amazon_worker)  # first cycle reads everything it has never seen
    gets, lists = (
        simulator.ledger.calls("getFulfillmentOrder"),
        simulator.ledger.calls("listAllFulfillmentOrders"),
    )
    clock.advance(600)  # only the two late orders move (Received -> Planning)
    sync_cycle(bridge, amazon_worker)
    assert simulator.ledger.calls("listAllFulfillmentOrders") - lists == 1
    assert simulator.ledger.calls("getFulfillmentOrder") - gets == 2
    clock.advance(60)  # nothing moves
    gets = simulator.ledger.calls("getFulfillmentOrder")
    sync_cycle(bridge, amazon_worker)
    assert simulator.ledger.calls("getFulfillmentOrder") == gets


def test_orders_not_seen_changing_get_a_fallback_read(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    send(client, 6200)
    amazon_worker.drain()
    clock.advance(STALE_AFTER.total_seconds() + 60)
    gets = simulator.ledger.calls("getFulfillmentOrder")
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_SYNC_STALE)
    amazon_worker.drain()
    assert simulator.ledger.calls("getFulfillmentOrder") == gets + 1
    assert row(bridge, "6200").last_synced_at is not None


def notification(sfo_id: str, notification_id: str = "n-1", returned: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {
        "SellerId": "A1",
        "EventType": "Shipment",
        "SellerFulfillmentOrderId": sfo_id,
        "FulfillmentOrderStatus": "Processing",
        "StatusUpdatedDateTime": "2026-11-23T12:00:00Z",
    }
    if returned:
        status["EventType"] = "Return"
        status["FulfillmentReturnItem"] = {
            "ReceivedDateTime": "2026-11-23T12:00:00Z",
            "ReturnedQuantity": 1,
            "SellerSKU": "FBA-TSHIRT-RED-M",
        }
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "FULFILLMENT_ORDER_STATUS",
        "PayloadVersion": "1.0",
        "EventTime": "2026-11-23T12:00:00Z",
        "Payload": {"FulfillmentOrderStatusNotification": status},
        "NotificationMetadata": {"NotificationId": notification_id, "PublishTime": "2026-11-23T12:00:00Z"},
    }


def test_amazon_notifications_trigger_an_immediate_read(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator
) -> None:
    bridge.settings = type(bridge.settings)(notifications_token=Secret("relay-token"))
    send(client, 6300)
    amazon_worker.drain()
    headers = {"Authorization": "Bearer relay-token", "Content-Type": "application/json"}
    url = "/notifications/amazon"
    assert (
        client.post(
            url,
            data=json.dumps(notification("shop-a-6300")),
            headers={**headers, "Authorization": "Bearer wrong"},
        ).status_code
        == 401
    )
    first = client.post(url, data=json.dumps(notification("shop-a-6300")), headers=headers)
    again = client.post(url, data=json.dumps(notification("shop-a-6300")), headers=headers)
    assert (first.json["outcome"], again.json["outcome"]) == ("queued", "duplicate")
    unknown = client.post(url, data=json.dumps(notification("other-1", "n-2")), headers=headers)
    assert unknown.status_code == 200 and unknown.json["outcome"] == "unknown_order"
    assert client.post(url, data=b'{"NotificationType": 1}', headers=headers).status_code == 422
    gets = simulator.ledger.calls("getFulfillmentOrder")
    amazon_worker.drain()
    assert simulator.ledger.calls("getFulfillmentOrder") == gets + 1
    returned = client.post(
        url, data=json.dumps(notification("shop-a-6300", "n-3", returned=True)), headers=headers
    )
    assert returned.json["outcome"] == "queued"
    from tests.integration.test_submit import events

    assert "amazon:return_received" in events(bridge, row(bridge, "6300"))


def test_cancellation_while_amazon_allows_it_cancels_there(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator
) -> None:
    send(client, 6400)
    amazon_worker.drain()
    cancel(client, 6400)
    amazon_worker.drain()
    assert row(bridge, "6400").state == "cancelled"
    assert simulator.order_status("shop-a-6400") == "Cancelled"


def test_cancellation_too_late_flags_the_order_and_notes_the_storefront(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    send(client, 6401)
    amazon_worker.drain()
    clock.advance(2 * HOUR)  # Processing
    cancel(client, 6401)
    amazon_worker.drain()
    order = row(bridge, "6401")
    assert order.state == "submitted" and "can no longer cancel" in order.attention_reason
    assert count(bridge, PushRecord, kind="note") == 1
    clock.advance(3 * HOUR)
    sync_cycle(bridge, amazon_worker)
    assert row(bridge, "6401").state == "shipped", "tracking keeps flowing for an order Amazon ships anyway"


def test_cancellation_racing_an_in_flight_create_ends_with_no_shipment(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    simulator.inject_fault("createFulfillmentOrder", kind="accept_then_drop")
    simulator.inject_fault("getFulfillmentOrder", status=503, count=6)
    send(client, 6402)
    amazon_worker.drain()  # create landed, its answer was lost, the read-back failed: outcome unknown
    assert row(bridge, "6402").state == "submitting"
    cancel(client, 6402)
    assert row(bridge, "6402").state == "cancel_requested"
    for _ in range(5):
        clock.advance(61)  # the read-back failures opened the account's circuit: let it cool down
        due_now(bridge.engine)
        amazon_worker.drain()
    assert row(bridge, "6402").state == "cancelled"
    assert simulator.order_status("shop-a-6402") == "Cancelled"
    assert simulator.ledger.creates("shop-a-6402") == 1


def test_held_order_cancelled_before_payment(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator
) -> None:
    from tests.support import fixture, generic_delivery

    body = fixture("generic/order_upsert.json")
    body["order"].update(
        payment_state="pending", lines=[{"line_id": "1", "sku": "SKU-1", "quantity": 1, "unit_price": "5.00"}]
    )
    body["order"]["destination"]["country_code"] = "US"
    raw, headers = generic_delivery(body, bridge.clock.now())
    client.post("/webhooks/own-shop", data=raw, headers=headers)
    amazon_worker.drain()
    assert row(bridge, "A-1001").state == "held_at_amazon"
    cancel_body = {
        "type": "order.cancel",
        "order": {"external_id": "A-1001", "updated_at": "2026-11-23T13:00:00Z"},
    }
    raw, headers = generic_delivery(cancel_body, bridge.clock.now())
    client.post("/webhooks/own-shop", data=raw, headers=headers)
    amazon_worker.drain()
    assert row(bridge, "A-1001").state == "cancelled"


def send_generic(client: FlaskClient, bridge: Bridge, external_id: str, skus: list[str]) -> None:
    from tests.support import fixture, generic_delivery

    body = fixture("generic/order_upsert.json")
    body["order"]["external_id"] = external_id
    body["order"]["lines"] = [
        {"line_id": str(n), "sku": sku, "quantity": 1, "unit_price": "5.00"} for n, sku in enumerate(skus, 1)
    ]
    body["order"]["destination"]["country_code"] = "US"
    raw, headers = generic_delivery(body, bridge.clock.now())
    assert client.post("/webhooks/own-shop", data=raw, headers=headers).status_code == 200


def pushes(bridge: Bridge, order: OrderRecord) -> list[tuple[str, str]]:
    with read_session(bridge.engine) as session:
        query = (
            select(PushRecord.kind, PushRecord.key)
            .where(PushRecord.order_id == order.id)
            .order_by(PushRecord.id)
        )
        return [(kind, key.split(":", 2)[2]) for kind, key in session.execute(query).all()]


def test_partly_cancelled_by_the_fulfiller_ships_the_rest_and_tells_everyone(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, clock: ManualClock
) -> None:
    send_generic(client, bridge, "G-1", ["SKU-1", "SKU-2"])  # SKU-2's shipment ends CANCELLED_BY_FULFILLER
    amazon_worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, amazon_worker)
    order = row(bridge, "G-1")
    assert (order.state, order.amazon_status) == ("completed_partially", "CompletePartialled")
    owed = pushes(bridge, order)
    assert [kind for kind, _ in owed].count("shipment") == 1
    assert ("note", "status:CompletePartialled") in owed
    assert any(kind == "note" and key.startswith("shipment-cancelled:") for kind, key in owed)
    with read_session(bridge.engine) as session:
        [package] = session.execute(select(PackageRecord).where(PackageRecord.order_id == order.id)).scalars()
    assert [line["sku"] for line in package.lines] == ["SKU-1"], "only the shipped line is pushed"


def test_unfulfillable_at_amazon_reaches_the_operator_and_the_storefront(
    client: FlaskClient,
    bridge: Bridge,
    amazon_worker: Worker,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    send_generic(client, bridge, "G-2", ["SKU-2"])
    amazon_worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, amazon_worker)
    order = row(bridge, "G-2")
    assert (order.state, order.amazon_status) == ("unfulfillable", "Unfulfillable")
    assert ("note", "status:Unfulfillable") in pushes(bridge, order)
    assert "operator alert" in caplog.text


def test_delivery_is_recorded_for_shipped_orders_whose_arrival_is_due(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    send(client, 6500)
    amazon_worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, amazon_worker)
    assert row(bridge, "6500").state == "shipped"
    clock.advance(4 * 24 * HOUR)  # past the estimated arrival; the carrier delivered
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_SYNC_STALE)
    amazon_worker.drain()
    with read_session(bridge.engine) as session:
        [package] = session.execute(select(PackageRecord)).scalars()
    assert package.tracking_status == "DELIVERED" and package.delivered_at is not None
    from tests.integration.test_submit import events

    assert "amazon:tracking" in events(bridge, row(bridge, "6500"))
    tracking_calls = simulator.ledger.calls("getPackageTrackingDetails")
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_SYNC_STALE)
    amazon_worker.drain()
    assert simulator.ledger.calls("getPackageTrackingDetails") == tracking_calls, (
        "delivered packages are done"
    )
