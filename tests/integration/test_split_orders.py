"""Split orders end to end (simulator and fake Shopify over HTTP): an order beyond Amazon's limits
becomes `<id>-1`, `<id>-2`, ... at Amazon, each previewed and created once, synced as one order,
every package pushed back once, and a cancellation cancels every part."""

from __future__ import annotations

import json
from dataclasses import replace

from flask.testing import FlaskClient
from sqlalchemy import select

from bridge import alerts, jobs
from bridge.amazon.notifications import ingest_notification
from bridge.amazon.simulator import Simulator
from bridge.amazon.simulator.faults import Fault, FaultKind
from bridge.bootstrap import Bridge
from bridge.intake import JOB_SUBMIT
from bridge.store import OrderPartRecord, PackageRecord, PushRecord, read_session, write_session
from bridge.worker import Worker
from tests.conftest import due_now
from tests.integration.test_shopify_locations import World, world  # noqa: F401 (fixture)
from tests.integration.test_submit import _reasons, order_row
from tests.integration.test_sync import cancel, count, notification
from tests.support import shopify_delivery, shopify_line, shopify_order


def splitting(bridge: Bridge, on: bool = True) -> None:
    """shop-a splits large orders (and has no fee cap: hundreds of units cost more than its 25 USD)."""
    channel = replace(bridge.config.channels["shop-a"], split_large_orders=on, fee_cap=None)
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, "shop-a": channel})


def send_large(client: FlaskClient, order_id: int, lines: list[tuple[int, str, int]]) -> None:
    body = shopify_order(order_id)
    template = body["line_items"][0]
    body["line_items"] = [shopify_line(template, id=i, sku=sku, quantity=q) for i, sku, q in lines]
    raw, headers = shopify_delivery(body)
    assert client.post("/webhooks/shop-a", data=raw, headers=headers).status_code == 200


def parts_of(bridge: Bridge, external_id: str) -> list[str]:
    row = order_row(bridge, external_id)
    with read_session(bridge.engine) as session:
        query = (
            select(OrderPartRecord).where(OrderPartRecord.order_id == row.id).order_by(OrderPartRecord.part)
        )
        return [p.seller_fulfillment_order_id for p in session.execute(query).scalars()]


def items_at_amazon(simulator: Simulator, sfo_id: str) -> list[tuple[str, int]]:
    order = simulator.get_fulfillment_order(sfo_id)["payload"]
    return [(i["sellerSku"], i["quantity"]) for i in order["fulfillmentOrderItems"]]


def test_an_order_beyond_250_units_becomes_two_amazon_orders_created_once(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    splitting(bridge)
    send_large(client, 7001, [(71, "TSHIRT-RED-M", 300), (72, "MUG-WHITE", 10)])
    worker.drain()
    row = order_row(bridge, "7001")
    assert row.state == "submitted", row.attention_reason
    assert row.seller_fulfillment_order_id == "shop-a-7001-1"
    assert parts_of(bridge, "7001") == ["shop-a-7001-1", "shop-a-7001-2"]
    assert items_at_amazon(simulator, "shop-a-7001-1") == [("FBA-TSHIRT-RED-M", 250)]
    assert items_at_amazon(simulator, "shop-a-7001-2") == [("FBA-TSHIRT-RED-M", 50), ("FBA-MUG-WHITE", 10)]
    assert simulator.ledger.statuses("getFulfillmentPreview") == {200: 2}
    assert simulator.ledger.statuses("createFulfillmentOrder") == {200: 2}
    assert "created at Amazon as 2 orders (shop-a-7001-1, shop-a-7001-2)" in _reasons(bridge, row)
    with write_session(bridge.engine) as session:  # a repeated submit job creates nothing again
        jobs.enqueue(session, JOB_SUBMIT, order_id=row.id)
    worker.drain()
    assert simulator.ledger.calls("createFulfillmentOrder") == 2


def test_without_the_channel_setting_a_large_order_is_parked_saying_how_to_split_it(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_large(client, 7002, [(73, "TSHIRT-RED-M", 251)])
    worker.drain()
    row = order_row(bridge, "7002")
    assert row.state == "needs_attention"
    assert "251 unit(s)" in row.attention_reason and "split_large_orders: true" in row.attention_reason
    assert simulator.ledger.calls("getFulfillmentPreview") == 0


def test_more_than_100_lines_are_split_by_item_count(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    splitting(bridge)
    lines = [(1000 + n, ("TSHIRT-RED-M", "MUG-WHITE")[n % 2], 1) for n in range(101)]
    send_large(client, 7003, lines)
    worker.drain()
    assert [len(items_at_amazon(simulator, p)) for p in parts_of(bridge, "7003")] == [100, 1]
    assert order_row(bridge, "7003").state == "submitted"


def test_a_cancellation_cancels_every_part(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    splitting(bridge)
    send_large(client, 7004, [(74, "TSHIRT-RED-M", 260)])
    worker.drain()
    cancel(client, 7004)
    worker.drain()
    row = order_row(bridge, "7004")
    assert row.state == "cancelled"
    for sfo_id in ("shop-a-7004-1", "shop-a-7004-2"):
        status = simulator.get_fulfillment_order(sfo_id)["payload"]["fulfillmentOrder"][
            "fulfillmentOrderStatus"
        ]
        assert status == "Cancelled"


def test_every_part_is_synced_and_every_package_pushed_back_once(world: World) -> None:  # noqa: F811
    splitting(world.bridge)
    world.order(7005, [(75, "TSHIRT-RED-M", 255), (76, "MUG-WHITE", 2)])
    world.worker.drain()
    assert parts_of(world.bridge, "7005") == ["shop-a-7005-1", "shop-a-7005-2"]
    world.ship()
    row = order_row(world.bridge, "7005")
    assert (row.state, row.amazon_status) == ("shipped", "Complete")
    packages = count(world.bridge, PackageRecord, order_id=row.id)
    assert packages >= 2
    assert count(world.bridge, PushRecord, order_id=row.id, kind="shipment") == packages
    assert world.shop.remaining("7005") == {"75": 0, "76": 0}
    for _ in range(2):
        world.ship()
    assert count(world.bridge, PushRecord, order_id=row.id, kind="shipment") == packages
    assert world.shop.calls("fulfillmentCreate", "ok") == packages
    drift = [a.message for a in alerts.list_alerts(world.bridge.engine) if a.kind == "amazon_drift"]
    assert not drift, "the parts of a split order are the bridge's own orders, not drift"


def test_a_submission_interrupted_between_parts_creates_only_the_missing_part(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    splitting(bridge)
    simulator.faults.add(Fault("createFulfillmentOrder", kind=FaultKind.ACCEPT_THEN_DELAY))  # part 1: fine
    # Part 2: outcome unknown. Its Retry-After keeps the retry out of this drain: the default
    # backoff is jittered from 0 s, and a slow machine's drain once reached it.
    simulator.faults.add(Fault("createFulfillmentOrder", status=500, retry_after=60))
    send_large(client, 7006, [(77, "TSHIRT-RED-M", 300)])
    worker.drain()
    assert order_row(bridge, "7006").state == "submitting"
    due_now(bridge.engine)
    worker.drain()
    row = order_row(bridge, "7006")
    assert row.state == "submitted"
    assert simulator.ledger.creates("shop-a-7006-1") == 1 and simulator.ledger.creates("shop-a-7006-2") == 1
    assert simulator.ledger.calls("getFulfillmentPreview") == 2, "a resumed submission does not preview again"


def test_a_part_amazon_refuses_is_reported_and_the_other_parts_go_ahead(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    splitting(bridge)
    simulator.faults.add(Fault("createFulfillmentOrder", kind=FaultKind.ACCEPT_THEN_DELAY))
    simulator.faults.add(Fault("createFulfillmentOrder", status=400, code="InvalidInput", message="Bad item"))
    send_large(client, 7007, [(78, "TSHIRT-RED-M", 300)])
    worker.drain()
    row = order_row(bridge, "7007")
    assert row.state == "submitted"
    assert "Amazon rejected part(s): shop-a-7007-2" in _reasons(bridge, row)
    with read_session(bridge.engine) as session:
        notes = [
            p.note
            for p in session.execute(select(PushRecord).where(PushRecord.order_id == row.id)).scalars()
            if p.kind == "note"
        ]
    assert any("ship those items another way" in n for n in notes)


def test_an_amazon_notification_about_a_later_part_reads_the_whole_order(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    splitting(bridge)
    send_large(client, 7008, [(79, "TSHIRT-RED-M", 260)])
    worker.drain()
    gets = simulator.ledger.calls("getFulfillmentOrder")
    body = json.dumps(notification("shop-a-7008-2", "n-split")).encode()
    assert ingest_notification(bridge.engine, body, bridge.clock).outcome == "queued"
    worker.drain()
    assert simulator.ledger.calls("getFulfillmentOrder") == gets + 2, "both parts are read"
    assert order_row(bridge, "7008").last_synced_at is not None


def test_a_split_order_stuck_in_submitting_is_read_back_part_by_part_before_the_config(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    """Every part landed, the worker died before recording it, then the channel stops splitting:
    the retry finds all parts at Amazon instead of parking the order for being too large."""
    from sqlalchemy import update

    from bridge.store import OrderRecord

    splitting(bridge)
    send_large(client, 7011, [(75, "TSHIRT-RED-M", 300)])
    worker.drain()
    assert parts_of(bridge, "7011") == ["shop-a-7011-1", "shop-a-7011-2"]
    with write_session(bridge.engine) as session:
        session.execute(
            update(OrderRecord).where(OrderRecord.external_id == "7011").values(state="submitting")
        )
        jobs.enqueue(session, JOB_SUBMIT, order_id=order_row(bridge, "7011").id)
    splitting(bridge, on=False)
    worker.drain()
    row = order_row(bridge, "7011")
    assert row.state == "submitted", row.attention_reason
    assert "found at Amazon after an interrupted attempt (2 orders" in _reasons(bridge, row)
    assert simulator.ledger.calls("createFulfillmentOrder") == 2
