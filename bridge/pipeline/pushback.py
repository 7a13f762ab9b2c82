"""Push-back: each owed push (a package's tracking, or a note) reaches the storefront once.

A push row is created exactly once per package (unique key) in the transaction that recorded
the package. Its job sends it; when an earlier attempt may have landed (any retry), the pusher
is first asked what the storefront already has. Pushes of one order run one at a time, so the
last package of an order knows it is the last, and storefronts never see two concurrent
fulfilments of the same order.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select
from sqlmodel import Session, col

from .. import jobs
from ..audit import note
from ..bootstrap import Bridge
from ..store import JobRecord, OrderRecord, PackageRecord, PushRecord, read_session
from ..storefronts.push import (
    INVALID_TRACKING_URL,
    OrderNote,
    PushError,
    PushLine,
    PushResult,
    ShipmentPush,
    StorefrontPusher,
    StorefrontRejected,
)
from ..worker import GiveUp, JobContext, RetryLater

log = logging.getLogger("bridge.pushback")

REJECTED_RETRY_S = 900.0
SIBLING_WAIT_S = 2.0


def _sibling_running(session: Session, job: jobs.ClaimedJob) -> bool:
    """True when another push of the same order was claimed before this one and still runs.

    Ordering by claim time (then id) means that of two pushes claimed together exactly one goes
    ahead, and one claimed while another runs always waits: no overlap and no livelock.
    """
    mine = session.get(JobRecord, job.id)
    assert mine is not None
    return (
        session.execute(
            select(col(JobRecord.id)).where(
                col(JobRecord.kind) == job.kind,
                col(JobRecord.order_id) == job.order_id,
                col(JobRecord.status) == jobs.RUNNING,
                col(JobRecord.id) != job.id,
                (col(JobRecord.updated_at) < mine.updated_at)
                | ((col(JobRecord.updated_at) == mine.updated_at) & (col(JobRecord.id) < job.id)),
            )
        ).first()
        is not None
    )


def _all_shipped_after(session: Session, row: OrderRecord, push: PushRecord) -> bool:
    if row.state != "shipped":
        return False
    others = session.execute(
        select(col(PushRecord.id)).where(
            col(PushRecord.order_id) == row.id,
            col(PushRecord.kind) == "shipment",
            col(PushRecord.status) != "done",
            col(PushRecord.id) != push.id,
        )
    ).first()
    return others is None


def build_shipment_push(
    bridge: Bridge, row: OrderRecord, package: PackageRecord, all_shipped: bool
) -> ShipmentPush:
    channel = bridge.config.channel(row.channel_id)
    assert channel is not None
    return ShipmentPush(
        order_external_id=row.external_id,
        display_id=row.display_id,
        package_key=f"{row.seller_fulfillment_order_id}:{package.package_number}",
        carrier=package.carrier_name or package.carrier_code,
        tracking_number=package.tracking_number,
        tracking_url=package.tracking_url,
        lines=tuple(
            PushLine(str(line["line_id"]), str(line["sku"]), int(line["quantity"])) for line in package.lines
        ),
        shipped_at=package.updated_at,
        notify_customer=channel.storefront.notify_customer,
        all_shipped=all_shipped,
    )


def handle_push(ctx: JobContext) -> None:
    bridge = ctx.bridge
    push_id = int(ctx.job.payload["push_id"])
    with read_session(bridge.engine) as session:
        push = session.get(PushRecord, push_id)
        if push is None or push.status == "done":
            return
        if _sibling_running(session, ctx.job):
            raise RetryLater(
                "another push for this order is running", after_s=SIBLING_WAIT_S, count_attempt=False
            )
        row = session.get(OrderRecord, push.order_id)
        assert row is not None
        package = session.get(PackageRecord, push.package_id) if push.package_id else None
        all_shipped = _all_shipped_after(session, row, push)
    channel = bridge.config.channel(row.channel_id)
    if channel is None:
        raise GiveUp(f"channel {row.channel_id} is no longer configured")
    pusher = ctx.services["storefronts"].for_channel(channel)
    dropped_url: str | None = None
    try:
        if package is not None:
            shipment = build_shipment_push(bridge, row, package, all_shipped)
            result = pusher.find_existing(shipment) if ctx.job.attempts > 1 else None
            if result is None:
                result, dropped_url = _push_shipment(pusher, shipment)
        else:
            result = pusher.add_note(OrderNote(row.external_id, push.key, push.note))
    except StorefrontRejected as exc:
        raise RetryLater(
            f"storefront rejected our credentials: {exc.message}", after_s=REJECTED_RETRY_S
        ) from None
    except PushError as exc:
        if not exc.retryable:
            raise GiveUp(exc.message) from None
        raise RetryLater(exc.message, after_s=exc.retry_after) from None
    _record_done(ctx, push_id, result, package, dropped_url)


def _push_shipment(pusher: StorefrontPusher, shipment: ShipmentPush) -> tuple[PushResult, str | None]:
    """Push the package; if the storefront refuses only its tracking URL, push the tracking number
    and carrier without it (the storefront builds its own link from them) rather than losing the
    tracking. Returns the result and the URL that was left out, if any."""
    try:
        return pusher.push_shipment(shipment), None
    except PushError as exc:
        if exc.code != INVALID_TRACKING_URL or not shipment.tracking_url:
            raise
    log.warning("storefront refused the tracking URL of %s; pushing without it", shipment.package_key)
    return pusher.push_shipment(replace(shipment, tracking_url=None)), shipment.tracking_url


def _record_done(
    ctx: JobContext,
    push_id: int,
    result: PushResult,
    package: PackageRecord | None,
    dropped_url: str | None = None,
) -> None:
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        push = session.get(PushRecord, push_id)
        assert push is not None
        push.status = "done"
        push.storefront_ref = result.storefront_ref[:200]
        push.done_at = now
        session.add(push)
        row = session.get(OrderRecord, push.order_id)
        assert row is not None
        what = f"package {package.package_number} tracking" if package else "note"
        note(
            session,
            row,
            f"pushed:{push.kind}",
            now,
            f"{what} pushed to the storefront ({push.storefront_ref})",
        )
        if dropped_url is not None and package is not None:
            note(
                session,
                row,
                "pushed:without_tracking_url",
                now,
                f"the storefront refused package {package.package_number}'s tracking URL "
                f"({dropped_url[:300]}); pushed its tracking number and carrier without it",
            )
    log.info("push done push_id=%s kind=%s order_id=%s", push_id, push.kind, push.order_id)
