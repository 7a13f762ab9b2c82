"""Amazon-side drift against the simulator: orders Amazon has that we lost track of are adopted
when their id is ours and reported otherwise; a cancellation made in Seller Central reaches our
state; an order that stops moving at Amazon raises one alert per cause (driven by the clock)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from bridge import jobs
from bridge.alerts import AlertView, list_alerts
from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.orders import Event, OrderState
from bridge.pipeline.drift import adoption_path
from bridge.pipeline.sync import JOB_PUSH, JOB_SYNC, JOB_SYNC_STALE
from bridge.runtime import HANDLERS
from bridge.store import OrderEventRecord, OrderRecord, read_session, write_session
from bridge.worker import Worker
from tests.support import shopify_delivery, shopify_order

HOUR = 3600


@pytest.fixture
def amazon_worker(bridge: Bridge, worker: Worker) -> Worker:
    return Worker(bridge, {k: v for k, v in HANDLERS.items() if k != JOB_PUSH}, services=worker.services)


def send(client: FlaskClient, order_id: int) -> None:
    body, headers = shopify_delivery(shopify_order(order_id))
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def sync(bridge: Bridge, worker: Worker, kind: str = JOB_SYNC) -> None:
    with write_session(bridge.engine) as session:
        payload: dict[str, Any] = {"account_id": "main"} if kind == JOB_SYNC else {}
        jobs.enqueue(session, kind, payload=payload, dedupe_key=f"{kind}:main")
    worker.drain()


def row(bridge: Bridge, external_id: str) -> OrderRecord:
    with read_session(bridge.engine) as session:
        query = select(OrderRecord).where(OrderRecord.external_id == external_id)
        return session.execute(query).scalars().one()


def open_alerts(bridge: Bridge, kind: str) -> list[AlertView]:
    return [a for a in list_alerts(bridge.engine) if a.kind == kind and a.is_open]


def lose_the_record(bridge: Bridge, external_id: str, state: str, *, keep_id: bool) -> None:
    """What a worker that crashed after the create leaves behind: the order as it was before."""
    sfo = "seller_fulfillment_order_id" if keep_id else "NULL"
    with bridge.engine.begin() as conn:
        conn.execute(
            text(
                f"UPDATE orders SET state = :state, amazon_status = NULL, amazon_status_updated_at = NULL, "
                f"seller_fulfillment_order_id = {sfo} WHERE external_id = :ext"
            ),
            {"state": state, "ext": external_id},
        )
        conn.execute(text("DELETE FROM jobs"))


def manual_order(sfo_id: str, now: str) -> dict[str, Any]:
    return {
        "marketplaceId": "ATVPDKIKX0DER",
        "sellerFulfillmentOrderId": sfo_id,
        "displayableOrderId": sfo_id,
        "displayableOrderDate": now,
        "displayableOrderComment": "made in Seller Central",
        "shippingSpeedCategory": "Standard",
        "destinationAddress": {
            "name": "Test Receiver",
            "addressLine1": "1 Test Street",
            "city": "Seattle",
            "stateOrRegion": "WA",
            "postalCode": "98109",
            "countryCode": "US",
        },
        "items": [{"sellerSku": "FBA-TSHIRT-RED-M", "sellerFulfillmentOrderItemId": "1", "quantity": 1}],
    }


def test_adoption_walks_the_state_machine_a_submission_takes() -> None:
    assert adoption_path(OrderState.SUBMITTING, OrderState.SUBMITTED) == [Event.CREATED]
    assert adoption_path(OrderState.RECEIVED, OrderState.SUBMITTED) == [Event.SUBMIT_STARTED, Event.CREATED]
    assert adoption_path(OrderState.NEEDS_ATTENTION, OrderState.HELD_AT_AMAZON) == [
        Event.RETRY,
        Event.SUBMIT_STARTED,
        Event.CREATED_ON_HOLD,
    ]
    assert adoption_path(OrderState.CANCELLED, OrderState.SUBMITTED) is None


@pytest.mark.parametrize(("state", "keep_id"), [("submitting", True), ("needs_attention", False)])
def test_an_order_created_at_amazon_whose_record_was_lost_is_adopted(
    client: FlaskClient,
    bridge: Bridge,
    amazon_worker: Worker,
    simulator: Simulator,
    clock: ManualClock,
    state: str,
    keep_id: bool,
) -> None:
    send(client, 7100)
    amazon_worker.drain()
    sfo_id = row(bridge, "7100").seller_fulfillment_order_id
    assert sfo_id and simulator.has_order(sfo_id)
    lose_the_record(bridge, "7100", state, keep_id=keep_id)
    clock.advance(60)

    sync(bridge, amazon_worker)

    adopted = row(bridge, "7100")
    assert (adopted.state, adopted.seller_fulfillment_order_id) == ("submitted", sfo_id)
    assert adopted.amazon_status == "Received"  # the per-order sync read the rest
    assert simulator.ledger.creates(sfo_id) == 1
    with read_session(bridge.engine) as session:
        query = select(OrderEventRecord).where(OrderEventRecord.order_id == adopted.id)
        reasons = [e.reason for e in session.execute(query).scalars()]
    assert any(r.startswith("adopted: Amazon has") for r in reasons)
    assert open_alerts(bridge, "amazon_drift") == []


def test_an_order_amazon_fulfils_that_is_cancelled_here_raises_an_alert(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, clock: ManualClock
) -> None:
    send(client, 7200)
    amazon_worker.drain()
    lose_the_record(bridge, "7200", "cancelled", keep_id=True)
    clock.advance(60)

    sync(bridge, amazon_worker)
    clock.advance(60)
    sync(bridge, amazon_worker)

    assert row(bridge, "7200").state == "cancelled"
    [alert] = open_alerts(bridge, "amazon_drift")
    assert "cancelled here but Received at Amazon" in alert.message and alert.occurrences >= 1
    assert alert.order_id == row(bridge, "7200").id


def test_orders_at_amazon_that_are_not_ours_are_reported_once_each(
    bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    simulator.create_fulfillment_order(manual_order("SC-BEFORE-1", clock.now().isoformat()))
    clock.advance(600)
    sync(bridge, amazon_worker)  # the first sync: what was there before the bridge is not drift
    assert open_alerts(bridge, "amazon_drift") == []
    clock.advance(240)
    sync(bridge, amazon_worker)  # listed again (the overlap): still not drift
    assert open_alerts(bridge, "amazon_drift") == []
    clock.advance(600)
    now = clock.now().isoformat().replace("+00:00", "Z")
    simulator.create_fulfillment_order(manual_order("SC-MANUAL-1", now))
    simulator.create_fulfillment_order(manual_order("shop-a-424242", now))  # our format, unknown order
    clock.advance(60)

    sync(bridge, amazon_worker)
    clock.advance(60)
    sync(bridge, amazon_worker)

    alerts = {a.key: a for a in open_alerts(bridge, "amazon_drift")}
    assert set(alerts) == {"amazon:main:unknown:SC-MANUAL-1", "amazon:main:unknown:shop-a-424242"}
    assert "not created by this bridge" in alerts["amazon:main:unknown:SC-MANUAL-1"].message
    assert "fba-bridge reconcile shop-a" in alerts["amazon:main:unknown:shop-a-424242"].message
    with read_session(bridge.engine) as session:
        assert session.execute(select(OrderRecord)).first() is None


def test_a_cancellation_made_in_seller_central_reaches_our_state_and_the_operator(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    send(client, 7300)
    amazon_worker.drain()
    sfo_id = row(bridge, "7300").seller_fulfillment_order_id
    assert sfo_id
    clock.advance(60)
    simulator.cancel_fulfillment_order(sfo_id)  # the seller, in Seller Central
    clock.advance(60)

    sync(bridge, amazon_worker)

    assert (row(bridge, "7300").state, row(bridge, "7300").amazon_status) == ("cancelled", "Cancelled")
    assert any(a.order_id == row(bridge, "7300").id for a in list_alerts(bridge.engine) if a.is_open)


def test_an_order_stuck_at_amazon_raises_one_alert_until_it_moves(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    send(client, 7400)
    amazon_worker.drain()
    sfo_id = row(bridge, "7400").seller_fulfillment_order_id
    assert sfo_id
    simulator.stall(sfo_id)
    for _ in range(3):  # a day and a bit, with a sync and a stale sync every 9 hours
        clock.advance(9 * HOUR)
        sync(bridge, amazon_worker)
        sync(bridge, amazon_worker, JOB_SYNC_STALE)

    [alert] = open_alerts(bridge, "stuck")
    assert alert.key == f"order:{row(bridge, '7400').id}:stuck:Received"
    assert "more than 24 hours" in alert.message and sfo_id in alert.message
    simulator.stall(sfo_id, stalled=False)
    clock.advance(HOUR)
    sync(bridge, amazon_worker)
    sync(bridge, amazon_worker, JOB_SYNC_STALE)
    assert open_alerts(bridge, "stuck") == []


def test_an_order_processing_past_its_ship_date_raises_an_alert(
    client: FlaskClient, bridge: Bridge, amazon_worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    send(client, 7500)
    amazon_worker.drain()
    sfo_id = row(bridge, "7500").seller_fulfillment_order_id
    assert sfo_id
    clock.advance(2 * HOUR)  # Processing now; Amazon's estimated ship date is 4 hours after release
    simulator.stall(sfo_id)
    sync(bridge, amazon_worker)
    assert row(bridge, "7500").amazon_status == "Processing" and row(bridge, "7500").amazon_ship_by
    clock.advance(10 * HOUR)  # 8 hours past the ship date: within the 12-hour grace
    sync(bridge, amazon_worker, JOB_SYNC_STALE)
    assert open_alerts(bridge, "stuck") == []
    clock.advance(5 * HOUR)

    sync(bridge, amazon_worker, JOB_SYNC_STALE)

    [alert] = open_alerts(bridge, "stuck")
    assert alert.key.endswith(":stuck:Processing") and "past its estimated ship date" in alert.message
