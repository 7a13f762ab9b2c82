"""Push-back: each owed push (a package's tracking, or a note) reaches the storefront once.

A push row is created exactly once per package (unique key) in the transaction that recorded
the package. Its job sends it. Before the first request that could create something at the
storefront, the push row is marked `sent_at` (committed): from then on an earlier attempt may
have landed, so every later run -- a retry, a job taken over from a dead worker, an operator's
`fba-bridge jobs retry` that reset the attempts -- first asks the pusher what the storefront
already has. The look-up depends on that durable fact, never on the attempt counter. Pushes of
one order run one at a time, so the last package of an order knows it is the last, and
storefronts never see two concurrent fulfilments of the same order (`jobs.sibling_running`).

Failures and their cost (`bridge.retry_policy.PUSH`: at least 48 hours of attempts):
- an outage, a 5xx, a lost answer: an attempt is spent, the backoff grows to 30 minutes;
- a throttled answer (Shopify `THROTTLED`, HTTP 429) or our shared cost bucket saying wait:
  no attempt is spent;
- rejected credentials (401/403): the channel is parked for every worker
  (`storefront_access`), no attempt is spent, one probe a minute, resumed at once on recovery;
- a refusal that retrying cannot fix (4xx, unknown order): dead-lettered at once, with an alert
  that puts the order in `fba-bridge orders --attention`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from .. import jobs
from ..audit import note
from ..bootstrap import Bridge
from ..store import OrderRecord, PackageRecord, PushRecord, ShipmentRecord, read_session, write_session
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
from . import storefront_access
from .amendment import Submission, left_for_merchant
from .common import owe_note
from .scope import covered_units

log = logging.getLogger("bridge.pushback")

SIBLING_WAIT_S = 2.0
THROTTLED = "throttled"


def _last_package(session: Session, row: OrderRecord, push: PushRecord) -> bool:
    """Amazon shipped everything it will and every other package of the order was pushed."""
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


def _left_for_merchant(session: Session, row: OrderRecord) -> tuple[PushLine, ...]:
    """Units the storefront wants shipped that Amazon did not ship (a SKU it does not stock)."""
    shipped: dict[str, int] = {}
    for lines in session.execute(
        select(col(PackageRecord.lines)).where(col(PackageRecord.order_id) == row.id)
    ).scalars():
        for line in lines:
            shipped[str(line["line_id"])] = shipped.get(str(line["line_id"]), 0) + int(line["quantity"])
    left = left_for_merchant(row.canonical(), Submission.from_json(row.submission), shipped)
    return tuple(PushLine(line.line_id, line.sku, line.quantity) for line in left)


def build_shipment_push(
    bridge: Bridge,
    row: OrderRecord,
    package: PackageRecord,
    all_shipped: bool,
    *,
    shipped_at: datetime | None = None,
    remaining: tuple[PushLine, ...] = (),
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
        shipped_at=shipped_at or package.updated_at,
        notify_customer=channel.storefront.notify_customer,
        all_shipped=all_shipped and not remaining,
        remaining=remaining,
        fulfillment_units=tuple(unit.unit_id for unit in covered_units(bridge.engine, row.id or 0)),
    )


def handle_push(ctx: JobContext) -> None:
    bridge = ctx.bridge
    push_id = int(ctx.job.payload["push_id"])
    with read_session(bridge.engine) as session:
        push = session.get(PushRecord, push_id)
        if push is None or push.status == "done":
            return
        if jobs.sibling_running(session, ctx.job):
            raise RetryLater(
                "another push for this order is running", after_s=SIBLING_WAIT_S, count_attempt=False
            )
        row = session.get(OrderRecord, push.order_id)
        assert row is not None
        package = session.get(PackageRecord, push.package_id) if push.package_id else None
        shipment = session.get(ShipmentRecord, package.shipment_id) if package else None
        last = _last_package(session, row, push)
        remaining = _left_for_merchant(session, row) if last and package else ()
        may_have_landed = push.sent_at is not None
    channel = bridge.config.channel(row.channel_id)
    if channel is None:
        raise GiveUp(f"channel {row.channel_id} is no longer configured")
    parked = storefront_access.gate(bridge.engine, bridge.clock, channel.id)
    if parked is not None:
        raise RetryLater(
            f"{storefront_access.parked_marker(channel.id)} {parked.reason}",
            after_s=parked.wait_s,
            count_attempt=False,
        )
    pusher = ctx.services["storefronts"].for_channel(channel)
    dropped_url: str | None = None
    try:
        if package is not None:
            shipped_at = shipment.shipped_at if shipment else None
            message = build_shipment_push(
                bridge, row, package, last, shipped_at=shipped_at, remaining=remaining
            )
            result = pusher.find_existing(message) if may_have_landed else None
            if result is None:
                marker = _SentMarker(ctx, push_id, done=may_have_landed)
                result, dropped_url = _push_shipment(pusher, message, marker)
        else:
            # A note carries its marker and is looked up by the pusher on every send.
            result = pusher.add_note(OrderNote(row.external_id, push.key, push.note))
    except StorefrontRejected as exc:
        wait = storefront_access.rejected(bridge.engine, bridge.clock, channel.id, exc.code, exc.message)
        raise RetryLater(
            f"{storefront_access.parked_marker(channel.id)} {exc.message}", after_s=wait, count_attempt=False
        ) from None
    except PushError as exc:
        if exc.code == THROTTLED:
            raise RetryLater(exc.message, after_s=exc.retry_after, count_attempt=False) from None
        if not exc.retryable:
            raise GiveUp(exc.message) from None
        raise RetryLater(exc.message, after_s=exc.retry_after) from None
    storefront_access.accepted(bridge.engine, bridge.clock, channel.id)
    _record_done(ctx, push_id, result, package, dropped_url)


class _SentMarker:
    """The pusher's `before_write`: records, durably and while this worker still holds the job,
    that from now on the storefront may have the package, so any later run looks it up before
    pushing again. Reads and throttled waits before it leave nothing to look up."""

    def __init__(self, ctx: JobContext, push_id: int, *, done: bool) -> None:
        self.ctx, self.push_id, self.done = ctx, push_id, done

    def __call__(self) -> None:
        if self.done:
            return
        with write_session(self.ctx.bridge.engine) as session:
            jobs.assert_held(session, self.ctx.job)
            push = session.get(PushRecord, self.push_id)
            assert push is not None
            push.sent_at = self.ctx.bridge.clock.now()
            session.add(push)
        self.done = True


def _push_shipment(
    pusher: StorefrontPusher, shipment: ShipmentPush, before_write: _SentMarker
) -> tuple[PushResult, str | None]:
    """Push the package; if the storefront refuses only its tracking URL, push the tracking number
    and carrier without it (the storefront builds its own link from them) rather than losing the
    tracking. Returns the result and the URL that was left out, if any."""
    try:
        return pusher.push_shipment(shipment, before_write=before_write), None
    except PushError as exc:
        if exc.code != INVALID_TRACKING_URL or not shipment.tracking_url:
            raise
    log.warning("storefront refused the tracking URL of %s; pushing without it", shipment.package_key)
    return pusher.push_shipment(
        replace(shipment, tracking_url=None), before_write=before_write
    ), shipment.tracking_url


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
            f"{what} pushed to the storefront ({push.storefront_ref or 'nothing was open there'})",
        )
        if package is not None and result.not_pushed:
            owe_note(
                session, row, f"not-pushed:{package.package_number}", now, _not_pushed_text(package, result)
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


def _not_pushed_text(package: PackageRecord, result: PushResult) -> str:
    """The storefront no longer held some units of the package open: say which, and why."""
    units = "; ".join(f"line {x.line_id} x{x.quantity}: {x.why}" for x in result.not_pushed)
    done = "the rest of the package got it" if result.storefront_ref else "nothing of it was open"
    return (
        f"Amazon shipped package {package.package_number} (tracking {package.tracking_number}), but the "
        f"storefront no longer held these units open, so they did not get its tracking ({done}): {units}. "
        "Check the order's fulfillments."
    )
