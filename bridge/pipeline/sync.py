"""Shipment sync: Amazon's progress into our tables, and the push-back work that follows from it.

Cost stays proportional to change, not to the number of open orders: one account-wide
`listAllFulfillmentOrders` since the last complete sync (minus an overlap, because Amazon's
listing is eventually consistent) finds what changed, and only those orders are read with
`getFulfillmentOrder`. Orders that have not been seen to change for a long time get a
per-order read as a fallback, and an Amazon notification triggers an immediate read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from .. import jobs
from ..amazon import errors as amz
from ..amazon.models import (
    FulfillmentOrder,
    FulfillmentShipment,
    FulfillmentShipmentItem,
    FulfillmentShipmentPackage,
    PackageTrackingDetails,
)
from ..amazon.outbound import FulfillmentOutbound
from ..audit import note, transition
from ..bootstrap import Bridge
from ..channels import Channel
from ..orders import AT_AMAZON, Event, OrderState, can
from ..store import (
    OrderPartRecord,
    OrderRecord,
    PackageRecord,
    PushRecord,
    ShipmentRecord,
    SyncCursorRecord,
    lock_order,
    order_parts,
    read_session,
)
from ..worker import JobContext
from .common import JOB_PUSH, amazon_retry, owe_note
from .drift import check_stuck, find_drift
from .fallback import (
    FINAL_UNSHIPPED,
    release_after_create,
    to_lines,
    units_not_shipped,
    units_of_cancelled_shipment,
)
from .plan import item_id_for
from .split import combine

log = logging.getLogger("bridge.sync")

JOB_SYNC = "sync"
JOB_SYNC_ORDER = "sync_order"
JOB_SYNC_STALE = "sync_stale"
JOB_TRACK = "track"

SYNC_OVERLAP = timedelta(minutes=5)
FIRST_SYNC_LOOKBACK = timedelta(days=2)
STALE_AFTER = timedelta(hours=6)
STALE_BATCH = 200
TRACKED_STATES = ("shipped", "partially_shipped", "completed_partially", "cancel_requested", "submitted")

FINAL_AMAZON_EVENTS = {
    "Cancelled": Event.AMAZON_CANCELLED,
    "Unfulfillable": Event.AMAZON_UNFULFILLABLE,
    "Invalid": Event.AMAZON_UNFULFILLABLE,
    "CompletePartialled": Event.AMAZON_COMPLETED_PARTIALLY,
}
SYNCABLE_STATES = tuple(s.value for s in AT_AMAZON)


def enqueue_order_sync(session: Session, order_id: int, reason: str) -> bool:
    return jobs.enqueue(
        session,
        JOB_SYNC_ORDER,
        order_id=order_id,
        payload={"reason": reason},
        dedupe_key=f"{JOB_SYNC_ORDER}:{order_id}",
    )


# --------------------------------------------------------------------------------------------
# Account-wide change listing


def handle_sync(ctx: JobContext) -> None:
    account_id: str = ctx.job.payload["account_id"]
    bridge = ctx.bridge
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_account(account_id)
    started = bridge.clock.now()
    with read_session(bridge.engine) as session:
        cursor = session.get(SyncCursorRecord, account_id)
        synced_until = cursor.synced_until if cursor else started - FIRST_SYNC_LOOKBACK
    try:
        changed = list(outbound.list_changed(synced_until - SYNC_OVERLAP))
    except amz.SpApiError as exc:
        raise amazon_retry(exc, _account_channel(bridge, account_id)) from None
    queued = 0
    with ctx.finish() as session:
        watched_since = synced_until - SYNC_OVERLAP if cursor is not None else None
        drift = find_drift(session, bridge, account_id, changed, started, watched_since=watched_since)
        for order_id in drift.adopted:
            queued += enqueue_order_sync(session, order_id, "adopted from Amazon's listing")
        for row, header in _ours(session, changed):
            if (
                row.amazon_status == header.status
                and row.amazon_status_updated_at == header.status_updated_date
            ):
                continue  # seen in an earlier cycle (the overlap window)
            assert row.id is not None
            queued += enqueue_order_sync(session, row.id, f"listing: {header.status}")
        if cursor is None:
            session.add(SyncCursorRecord(account_id=account_id, synced_until=started, updated_at=started))
        else:
            cursor.synced_until = started
            cursor.updated_at = started
            session.merge(cursor)
    log.info("sync account=%s listed=%d queued=%d", account_id, len(changed), queued)


def _account_channel(bridge: Bridge, account_id: str) -> Channel:
    return next(c for c in bridge.config.channels.values() if c.account_id == account_id)


def _ours(
    session: Session, headers: Sequence[FulfillmentOrder]
) -> Iterable[tuple[OrderRecord, FulfillmentOrder]]:
    by_id = {h.seller_fulfillment_order_id: h for h in headers}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # Parts of split orders first: their own status decides whether the order is read again.
        found: set[str] = set()
        parts = session.execute(
            select(OrderPartRecord, OrderRecord)
            .join(OrderRecord, col(OrderRecord.id) == col(OrderPartRecord.order_id))
            .where(col(OrderPartRecord.seller_fulfillment_order_id).in_(chunk))
        ).all()
        for part, order in parts:
            header = by_id[part.seller_fulfillment_order_id]
            found.add(part.seller_fulfillment_order_id)
            if (part.amazon_status, part.amazon_status_updated_at) != (
                header.status,
                header.status_updated_date,
            ):
                yield order, replace(header, status="(part changed)")
        query = select(OrderRecord).where(col(OrderRecord.seller_fulfillment_order_id).in_(chunk))
        for row in session.execute(query).scalars():
            assert row.seller_fulfillment_order_id is not None
            if row.seller_fulfillment_order_id not in found:
                yield row, by_id[row.seller_fulfillment_order_id]


def handle_sync_stale(ctx: JobContext) -> None:
    """Fallback: read orders at Amazon that nothing has told us about for `STALE_AFTER`."""
    cutoff = ctx.bridge.clock.now() - STALE_AFTER
    with ctx.finish() as session:
        rows = session.execute(
            select(OrderRecord)
            .where(col(OrderRecord.state).in_(SYNCABLE_STATES))
            .where((col(OrderRecord.last_synced_at).is_(None)) | (col(OrderRecord.last_synced_at) < cutoff))
            .order_by(col(OrderRecord.last_synced_at))
            .limit(STALE_BATCH)
        ).scalars()
        queued = sum(
            enqueue_order_sync(session, row.id, "not seen changing for a while") for row in rows if row.id
        )
        # Delivery events: shipped packages past their estimated arrival and not yet delivered.
        in_transit = session.execute(
            select(col(PackageRecord.order_id))
            .join(OrderRecord, col(OrderRecord.id) == col(PackageRecord.order_id))
            .where(col(PackageRecord.delivered_at).is_(None))
            .where(col(PackageRecord.estimated_arrival) < ctx.bridge.clock.now())
            .where(col(PackageRecord.updated_at) < cutoff)
            .where(col(OrderRecord.state).in_(TRACKED_STATES))
            .distinct()
            .limit(STALE_BATCH)
        ).scalars()
        tracked = sum(
            jobs.enqueue(session, JOB_TRACK, order_id=order_id, dedupe_key=f"{JOB_TRACK}:{order_id}")
            for order_id in in_transit
        )
        stuck = check_stuck(session, ctx.bridge, ctx.bridge.clock.now())
    log.info("stale-order sync queued=%d tracking refresh queued=%d stuck=%d", queued, tracked, stuck)


def handle_track(ctx: JobContext) -> None:
    """Refresh carrier tracking (delivered, returned, undeliverable) of an order's packages in transit."""
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    with read_session(bridge.engine) as session:
        row = session.get(OrderRecord, ctx.job.order_id)
        numbers = list(
            session.execute(
                select(col(PackageRecord.package_number)).where(
                    col(PackageRecord.order_id) == ctx.job.order_id, col(PackageRecord.delivered_at).is_(None)
                )
            ).scalars()
        )
    channel = bridge.config.channel(row.channel_id) if row else None
    if row is None or channel is None or not numbers:
        return
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    try:
        details = {number: _tracking(outbound, number) for number in numbers}
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None
    now = bridge.clock.now()
    with ctx.finish() as session:
        locked = session.get(OrderRecord, row.id)
        assert locked is not None
        for number, detail in details.items():
            package = (
                session.execute(
                    select(PackageRecord).where(
                        col(PackageRecord.order_id) == row.id, col(PackageRecord.package_number) == number
                    )
                )
                .scalars()
                .one()
            )
            package.updated_at = now
            if detail is not None and detail.current_status != package.tracking_status:
                package.tracking_status = detail.current_status
                if detail.current_status == "DELIVERED":
                    package.delivered_at = now
                note(session, locked, "amazon:tracking", now, f"package {number}: {detail.current_status}")
            session.add(package)


# --------------------------------------------------------------------------------------------
# One order


def handle_sync_order(ctx: JobContext) -> None:
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    with read_session(bridge.engine) as session:
        row = session.get(OrderRecord, ctx.job.order_id)
    if row is None or not row.seller_fulfillment_order_id or row.state not in SYNCABLE_STATES:
        return
    channel = bridge.config.channel(row.channel_id)
    if channel is None:
        return
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    with read_session(bridge.engine) as session:
        part_ids = [p.seller_fulfillment_order_id for p in order_parts(session, row.id or 0)]
    try:
        if len(part_ids) > 1:
            parts = [outbound.get(sfo_id) for sfo_id in part_ids]
            order = combine(parts)
        else:
            parts = []
            order = outbound.get(row.seller_fulfillment_order_id)
        with read_session(bridge.engine) as session:
            known = {
                p.package_number: p
                for p in session.execute(
                    select(PackageRecord).where(col(PackageRecord.order_id) == row.id)
                ).scalars()
            }
        tracking = {
            package.package_number: _tracking(outbound, package.package_number)
            for shipment in order.shipments
            if shipment.status == "SHIPPED"
            for package in shipment.packages
            if package.package_number not in known or known[package.package_number].delivered_at is None
        }
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None
    with ctx.finish() as session:
        apply_amazon_order(session, bridge, channel, row.id or 0, order, tracking)
        _record_part_statuses(session, row.id or 0, parts, bridge.clock.now())


def _record_part_statuses(
    session: Session, order_id: int, parts: Sequence[FulfillmentOrder], now: datetime
) -> None:
    by_id = {p.seller_fulfillment_order_id: p for p in parts}
    for record in order_parts(session, order_id) if parts else ():
        seen = by_id.get(record.seller_fulfillment_order_id)
        if seen is not None and (seen.status, seen.status_updated_date) != (
            record.amazon_status,
            record.amazon_status_updated_at,
        ):
            record.amazon_status = seen.status
            record.amazon_status_updated_at = seen.status_updated_date
            record.updated_at = now
            session.add(record)


def _tracking(outbound: FulfillmentOutbound, package_number: int) -> PackageTrackingDetails | None:
    try:
        return outbound.tracking(package_number)
    except amz.NotFound:
        return None


def apply_amazon_order(
    session: Session,
    bridge: Bridge,
    channel: Channel,
    order_id: int,
    amazon: FulfillmentOrder,
    tracking: dict[int, PackageTrackingDetails | None],
) -> None:
    """Record what Amazon reports and owe the storefront one push per newly shipped package."""
    now = bridge.clock.now()
    row = lock_order(session, order_id)
    if row.amazon_status != amazon.status:
        note(session, row, "amazon:status", now, f"{row.amazon_status or '-'} -> {amazon.status}")
    row.amazon_status = amazon.status
    row.amazon_status_updated_at = amazon.status_updated_date
    row.last_synced_at = now
    ship_by = [item.estimated_ship_date for item in amazon.items if item.estimated_ship_date is not None]
    row.amazon_ship_by = max(ship_by) if ship_by else row.amazon_ship_by
    line_of_item = _line_ids(row)
    new_packages: list[PackageRecord] = []
    for shipment in amazon.shipments:
        record = _upsert_shipment(session, row, shipment, now)
        if shipment.status == "CANCELLED_BY_FULFILLER" and record.status_changed:
            owe_note(
                session,
                row,
                f"shipment-cancelled:{shipment.amazon_shipment_id}",
                now,
                f"Amazon cancelled shipment {shipment.amazon_shipment_id} (CANCELLED_BY_FULFILLER); "
                "its items will not be shipped by Amazon.",
            )
            units = units_of_cancelled_shipment(amazon, shipment.amazon_shipment_id)
            release_after_create(
                session,
                channel,
                row,
                f"shipment:{shipment.amazon_shipment_id}",
                to_lines(units, line_of_item),
                now,
                f"Amazon cancelled shipment {shipment.amazon_shipment_id}",
            )
        if shipment.status != "SHIPPED":
            continue
        for package in shipment.packages:
            details = tracking.get(package.package_number)
            created = _upsert_package(session, row, record.id, shipment, package, details, line_of_item, now)
            if created is not None:
                new_packages.append(created)
    for new_package in new_packages:
        _owe_shipment_push(session, row, new_package, now)
    before = row.order_state
    _advance_state(session, row, amazon, now)
    if row.order_state is not before and amazon.status in FINAL_UNSHIPPED:
        release_after_create(
            session,
            channel,
            row,
            f"status:{amazon.status}",
            to_lines(units_not_shipped(amazon), line_of_item),
            now,
            f"Amazon reports {amazon.status}",
        )
    session.add(row)


class _ShipmentUpsert:
    def __init__(self, id_: int, status_changed: bool) -> None:
        self.id = id_
        self.status_changed = status_changed


def _upsert_shipment(
    session: Session, row: OrderRecord, shipment: FulfillmentShipment, now: datetime
) -> _ShipmentUpsert:
    existing = (
        session.execute(
            select(ShipmentRecord).where(
                col(ShipmentRecord.order_id) == row.id,
                col(ShipmentRecord.amazon_shipment_id) == shipment.amazon_shipment_id,
            )
        )
        .scalars()
        .first()
    )
    if existing is None:
        assert row.id is not None
        existing = ShipmentRecord(
            order_id=row.id,
            amazon_shipment_id=shipment.amazon_shipment_id,
            status=shipment.status,
            shipped_at=shipment.shipping_date,
            updated_at=now,
        )
        session.add(existing)
        session.flush()
        changed = True
    else:
        changed = existing.status != shipment.status
        existing.status = shipment.status
        existing.shipped_at = shipment.shipping_date or existing.shipped_at
        existing.updated_at = now
        session.add(existing)
    assert existing.id is not None
    return _ShipmentUpsert(existing.id, changed)


def _line_ids(row: OrderRecord) -> dict[str, tuple[str, str]]:
    """sellerFulfillmentOrderItemId -> (storefront line id, storefront SKU)."""
    return {item_id_for(line.line_id): (line.line_id, line.sku) for line in row.canonical().lines}


def _items_in(shipment: FulfillmentShipment, number: int) -> list[FulfillmentShipmentItem]:
    """The shipment's items packed in package `number`; a one-package shipment holds them all."""
    packed = [item for item in shipment.items if item.package_number == number]
    return packed or (list(shipment.items) if len(shipment.packages) == 1 else [])


def _upsert_package(
    session: Session,
    row: OrderRecord,
    shipment_id: int,
    shipment: FulfillmentShipment,
    package: FulfillmentShipmentPackage,
    details: PackageTrackingDetails | None,
    line_of_item: dict[str, tuple[str, str]],
    now: datetime,
) -> PackageRecord | None:
    """Insert a newly seen package (returned) or refresh a known one's tracking (None)."""
    number = package.package_number
    existing = (
        session.execute(
            select(PackageRecord).where(
                col(PackageRecord.order_id) == row.id, col(PackageRecord.package_number) == number
            )
        )
        .scalars()
        .first()
    )
    status = details.current_status if details else None
    if existing is not None:
        if details is not None and status != existing.tracking_status:
            existing.tracking_status = status
            if status == "DELIVERED":
                existing.delivered_at = now
            note(session, row, "amazon:tracking", now, f"package {number}: {status}")
            existing.updated_at = now
            session.add(existing)
        return None
    lines = []
    for item in _items_in(shipment, number):
        line_id, sku = line_of_item.get(
            item.seller_fulfillment_order_item_id, (item.seller_fulfillment_order_item_id, "")
        )
        lines.append({"line_id": line_id, "sku": sku or item.seller_sku, "quantity": item.quantity})
    assert row.id is not None
    record = PackageRecord(
        order_id=row.id,
        shipment_id=shipment_id,
        package_number=number,
        carrier_code=package.carrier_code,
        carrier_name=(details.carrier_code if details and details.carrier_code else package.carrier_code),
        tracking_number=(
            details.tracking_number if details and details.tracking_number else package.tracking_number
        )
        or "",
        tracking_url=(details.customer_tracking_link or details.carrier_url) if details else None,
        estimated_arrival=package.estimated_arrival_date,
        tracking_status=status,
        delivered_at=now if status == "DELIVERED" else None,
        lines=lines,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    return record


def _owe_shipment_push(session: Session, row: OrderRecord, package: PackageRecord, now: datetime) -> None:
    assert row.id is not None and package.id is not None
    push = PushRecord(
        order_id=row.id,
        key=f"package:{row.id}:{package.package_number}",
        kind="shipment",
        package_id=package.id,
        status="pending",
        created_at=now,
    )
    session.add(push)
    session.flush()
    jobs.enqueue(
        session, JOB_PUSH, order_id=row.id, payload={"push_id": push.id}, dedupe_key=f"push:{push.id}"
    )
    note(
        session,
        row,
        "amazon:shipped",
        now,
        f"package {package.package_number} shipped with {package.carrier_name or package.carrier_code}",
    )


def _advance_state(session: Session, row: OrderRecord, amazon: FulfillmentOrder, now: datetime) -> None:
    state = row.order_state
    final_event = FINAL_AMAZON_EVENTS.get(amazon.status)
    if final_event is not None:
        if can(state, final_event):
            transition(session, row, final_event, now, f"Amazon reports {amazon.status}")
            if final_event is not Event.AMAZON_CANCELLED or state is not OrderState.CANCEL_REQUESTED:
                owe_note(session, row, f"status:{amazon.status}", now, _status_note(amazon.status))
        return
    shipments = amazon.shipments
    shipped = [s for s in shipments if s.status == "SHIPPED"]
    if not shipped:
        return
    everything = amazon.status == "Complete" and all(s.status == "SHIPPED" for s in shipments)
    event = Event.SHIPPED_ALL if everything else Event.SHIPPED_PARTIALLY
    if can(state, event) and not (event is Event.SHIPPED_PARTIALLY and state is OrderState.PARTIALLY_SHIPPED):
        transition(session, row, event, now, f"{len(shipped)} of {len(shipments)} shipment(s) shipped")


def _status_note(status: str) -> str:
    return {
        "Cancelled": "Amazon cancelled this fulfillment order; nothing more will be shipped by Amazon.",
        "Unfulfillable": "Amazon could not fulfil this order (Unfulfillable); the items stay unfulfilled.",
        "Invalid": "Amazon rejected this fulfillment order as Invalid; the items stay unfulfilled.",
        "CompletePartialled": "Amazon shipped part of this order (CompletePartialled); the rest will not be "
        "shipped by Amazon.",
    }[status]
