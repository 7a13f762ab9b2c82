"""No lost updates: a storefront change that arrives while a submission runs reaches Amazon, and a
change after submission is applied with updateFulfillmentOrder while Amazon can take it, or an
operator is told (issue 10, item 7). Webhooks over HTTP; the simulator behind the real client."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge import jobs
from bridge.alerts import list_alerts
from bridge.amazon.accounts import IN_PROCESS_SIMULATOR, AmazonAccounts, _simulated
from bridge.amazon.limiter import DatabaseBuckets
from bridge.amazon.outbound import outbound_client
from bridge.amazon.simulator import Simulator
from bridge.amazon.simulator.app import create_simulator_app
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.runtime import make_worker
from bridge.store import JobRecord, read_session
from bridge.worker import Worker
from tests.conftest import due_now
from tests.integration.test_submit import _reasons, order_row
from tests.integration.test_sync import HOUR
from tests.support import fixture, generic_delivery, shopify_delivery, shopify_line, shopify_order

Hook = Callable[[], None]


class AmazonWithHooks:
    """The simulator's WSGI app with a hook that runs once, just before a named operation's request
    reaches it: "a storefront change arrives while the bridge is talking to Amazon"."""

    def __init__(self, simulator: Simulator) -> None:
        self.app = create_simulator_app(simulator)
        self.hooks: dict[tuple[str, str], Hook] = {}

    def before(self, method: str, path_suffix: str, hook: Hook) -> None:
        self.hooks[(method, path_suffix)] = hook

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        for (method, suffix), hook in list(self.hooks.items()):
            if environ["REQUEST_METHOD"] == method and environ["PATH_INFO"].endswith(suffix):
                del self.hooks[(method, suffix)]
                hook()
        return self.app(environ, start_response)


@pytest.fixture
def hooked(bridge: Bridge, simulator: Simulator) -> AmazonWithHooks:
    return AmazonWithHooks(simulator)


@pytest.fixture
def hooked_worker(bridge: Bridge, simulator: Simulator, hooked: AmazonWithHooks) -> Iterator[Worker]:
    account = _simulated(bridge.config.accounts["main"], IN_PROCESS_SIMULATOR)
    buckets = DatabaseBuckets(bridge.engine, bridge.clock, use_db_clock=False)
    client = outbound_client(account, bridge.clock, buckets, httpx.WSGITransport(app=hooked))
    accounts = AmazonAccounts({"main": client}, simulator)
    yield make_worker(bridge, amazon=accounts)
    accounts.close()


PREVIEW = ("POST", "/fulfillmentOrders/preview")
CREATE = ("POST", "/fba/outbound/2020-07-01/fulfillmentOrders")


def shopify(client: FlaskClient, order: dict[str, Any], topic: str = "orders/create") -> None:
    body, headers = shopify_delivery(order, topic)
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def moved(order_id: int, minute: int = 5, line1: str = "9 New Address Road") -> dict[str, Any]:
    order = shopify_order(order_id, updated_at=f"2026-11-01T10:{minute:02d}:00-05:00")
    order["shipping_address"]["address1"] = line1
    return order


def destination(simulator: Simulator, sfo_id: str) -> dict[str, Any]:
    address: dict[str, Any] = simulator.get_fulfillment_order(sfo_id)["payload"]["fulfillmentOrder"][
        "destinationAddress"
    ]
    return address


def items(simulator: Simulator, sfo_id: str) -> list[tuple[str, int]]:
    found = simulator.get_fulfillment_order(sfo_id)["payload"]["fulfillmentOrderItems"]
    return [(i["sellerFulfillmentOrderItemId"], i["quantity"]) for i in found]


def open_alerts(bridge: Bridge) -> list[str]:
    return [alert.message for alert in list_alerts(bridge.engine)]


# ---------------------------------------------------------------------------------------------
# Changes that arrive while a submission runs


def test_an_address_fixed_while_the_preview_runs_is_the_address_amazon_gets(
    client: FlaskClient, bridge: Bridge, hooked: AmazonWithHooks, hooked_worker: Worker, simulator: Simulator
) -> None:
    shopify(client, shopify_order(7701))
    hooked.before(*PREVIEW, lambda: shopify(client, moved(7701), "orders/updated"))
    hooked_worker.drain()
    assert order_row(bridge, "7701").state == "submitted"
    assert destination(simulator, "shop-a-7701")["addressLine1"] == "9 New Address Road"
    assert simulator.ledger.creates("shop-a-7701") == 1
    assert "the order changed while it was planned" in _reasons(bridge, order_row(bridge, "7701"))


def test_an_address_fixed_while_the_create_is_in_flight_is_sent_as_an_update(
    client: FlaskClient,
    bridge: Bridge,
    hooked: AmazonWithHooks,
    hooked_worker: Worker,
    simulator: Simulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    shopify(client, shopify_order(7702))
    hooked.before(*CREATE, lambda: shopify(client, moved(7702), "orders/updated"))
    hooked_worker.drain()
    row = order_row(bridge, "7702")
    assert row.state == "submitted"
    assert destination(simulator, "shop-a-7702")["addressLine1"] == "9 New Address Road"
    assert simulator.ledger.creates("shop-a-7702") == 1
    assert simulator.ledger.calls("updateFulfillmentOrder") == 1
    assert "changed at Amazon: shipping address" in _reasons(bridge, row)
    for canary in ("9 New Address Road", "42 Canary Wharf Lane", "Jon Canary", "jon.canary@example.com"):
        assert canary not in caplog.text and canary not in _reasons(bridge, row)


def _generic(
    client: FlaskClient, bridge: Bridge, external_id: str, *, paid: bool, minute: int, **lines: int
) -> None:
    body = fixture("generic/order_upsert.json")
    body["order"].update(
        external_id=external_id,
        payment_state="paid" if paid else "pending",
        updated_at=f"2026-11-23T11:{minute:02d}:00Z",
        lines=[
            {"line_id": str(n), "sku": sku, "quantity": qty, "unit_price": "5.00"}
            for n, (sku, qty) in enumerate(lines.items(), 1)
        ]
        or [{"line_id": "1", "sku": "SKU-1", "quantity": 1, "unit_price": "5.00"}],
    )
    body["order"]["destination"]["country_code"] = "US"
    raw, headers = generic_delivery(body, bridge.clock.now())
    assert client.post("/webhooks/own-shop", data=raw, headers=headers).status_code == 200


def test_an_order_paid_while_it_is_being_created_on_hold_is_released(
    client: FlaskClient, bridge: Bridge, hooked: AmazonWithHooks, hooked_worker: Worker, simulator: Simulator
) -> None:
    """own-shop holds unpaid orders at Amazon; the payment arrives during the create."""
    _generic(client, bridge, "H-1", paid=False, minute=50)
    hooked.before(*CREATE, lambda: _generic(client, bridge, "H-1", paid=True, minute=55))
    hooked_worker.drain()
    row = order_row(bridge, "H-1")
    assert row.state == "submitted", "not held forever"
    sfo_id = row.seller_fulfillment_order_id or ""
    order = simulator.get_fulfillment_order(sfo_id)["payload"]["fulfillmentOrder"]
    assert order["fulfillmentAction"] == "Ship"
    assert simulator.ledger.creates(sfo_id) == 1


def test_a_second_submit_job_waits_for_the_running_one_and_nothing_is_created_twice(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    shopify(client, shopify_order(7703))
    running = jobs.claim(bridge.engine, ["submit"])  # a worker holds the first submit job
    assert running is not None
    shopify(client, moved(7703), "orders/updated")  # its successor is queued beside it
    with read_session(bridge.engine) as session:
        waiting = (
            session.execute(select(JobRecord).where(JobRecord.kind == "submit", JobRecord.status == "ready"))
            .scalars()
            .all()
        )
    assert len(waiting) == 1, "a change during a running job gets its own job"
    worker.drain()
    assert simulator.ledger.calls("createFulfillmentOrder") == 0, "the later job waits for the earlier"
    worker._run(running)  # the first job goes on; it plans from the order as it is now
    due_now(bridge.engine)
    worker.drain()
    assert order_row(bridge, "7703").state == "submitted"
    assert simulator.ledger.creates("shop-a-7703") == 1
    assert destination(simulator, "shop-a-7703")["addressLine1"] == "9 New Address Road"


# ---------------------------------------------------------------------------------------------
# Amendments after submission


def test_a_quantity_change_on_an_order_held_at_amazon_is_applied(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    _generic(client, bridge, "Q-1", paid=False, minute=50, **{"SKU-1": 3})
    worker.drain()
    row = order_row(bridge, "Q-1")
    assert row.state == "held_at_amazon"
    _generic(client, bridge, "Q-1", paid=False, minute=55, **{"SKU-1": 2})
    worker.drain()
    assert items(simulator, row.seller_fulfillment_order_id or "") == [("1", 2)]
    assert "changed at Amazon: line 1 (FBA-SKU-1) 3 -> 2" in _reasons(bridge, order_row(bridge, "Q-1"))


def test_a_quantity_change_amazon_refuses_alerts_an_operator_and_keeps_the_address_change(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = shopify_order(7704)
    order["line_items"] = [shopify_line(order["line_items"][0], id=81, quantity=3)]
    shopify(client, order)
    worker.drain()
    edited = moved(7704)
    edited["line_items"] = [shopify_line(edited["line_items"][0], id=81, quantity=3, current_quantity=2)]
    shopify(client, edited, "orders/updated")
    worker.drain()
    assert destination(simulator, "shop-a-7704")["addressLine1"] == "9 New Address Road"
    assert items(simulator, "shop-a-7704") == [("81", 3)], "Amazon takes item changes only on hold"
    [alert] = open_alerts(bridge)
    assert "#7704" in alert and "line 81 (FBA-TSHIRT-RED-M) 3 -> 2" in alert and "on hold" in alert


def test_a_change_once_amazon_is_picking_alerts_an_operator(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator, clock: ManualClock
) -> None:
    shopify(client, shopify_order(7705))
    worker.drain()
    clock.advance(2 * HOUR)  # Amazon is Processing now
    shopify(client, moved(7705), "orders/updated")
    worker.drain()
    assert destination(simulator, "shop-a-7705")["addressLine1"] == "42 Canary Wharf Lane"
    assert simulator.ledger.calls("updateFulfillmentOrder") == 0
    [alert] = open_alerts(bridge)
    assert "#7705" in alert and "too late" in alert and "Processing" in alert
    assert "Canary" not in alert and "9 New Address" not in alert, "no personal data in alerts"


def test_a_line_added_after_submission_alerts_an_operator(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    shopify(client, shopify_order(7706))
    worker.drain()
    edited = shopify_order(7706, updated_at="2026-11-01T10:05:00-05:00")
    template = edited["line_items"][0]
    edited["line_items"] = [template, shopify_line(template, id=999, sku="MUG-WHITE", quantity=1)]
    shopify(client, edited, "orders/updated")
    worker.drain()
    [alert] = open_alerts(bridge)
    assert "line 999 (MUG-WHITE) was added" in alert
    assert len(items(simulator, "shop-a-7706")) == 1


def test_removing_every_line_after_submission_cancels_at_amazon(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    shopify(client, shopify_order(7707))
    worker.drain()
    edited = shopify_order(7707, updated_at="2026-11-01T10:05:00-05:00")
    edited["line_items"] = [shopify_line(edited["line_items"][0], current_quantity=0)]
    shopify(client, edited, "orders/updated")
    worker.drain()
    assert order_row(bridge, "7707").state == "cancelled"
    assert simulator.get_fulfillment_order("shop-a-7707")["payload"]["fulfillmentOrder"][
        "fulfillmentOrderStatus"
    ] == ("Cancelled")


def test_a_change_amazon_has_no_field_for_sends_nothing(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    shopify(client, shopify_order(7708))
    worker.drain()
    edited = shopify_order(7708, updated_at="2026-11-01T10:05:00-05:00")
    edited.update(note="call before delivery", tags="vip")
    shopify(client, edited, "orders/updated")
    worker.drain()
    row = order_row(bridge, "7708")
    assert row.canonical().notes == "call before delivery", "stored: the storefront's latest word"
    assert simulator.ledger.calls("updateFulfillmentOrder") == 0
    assert open_alerts(bridge) == []
    with read_session(bridge.engine) as session:
        amend = session.execute(select(JobRecord).where(JobRecord.kind == "amend")).scalars().one()
    assert amend.status == "done"
