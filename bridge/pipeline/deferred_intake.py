"""The `intake` job: apply webhook deliveries that a busy web process stored without applying.

Under load the web process only stores a verified delivery and queues this job (`intake.defer`).
The job parses the stored bytes again with the channel's adapter (outside the write
transaction) and settles the delivery exactly as the webhook itself would have, in the job's
finishing transaction: the same state machine, audit entry and next-stage jobs. A delivery that
is no longer `deferred` (settled by an earlier run of this job) is left alone.

A first run also takes up to `BATCH - 1` more waiting `intake` jobs that never ran
(`jobs.claim_alike`) and settles all their deliveries, oldest first, in that one transaction:
one claim, one read and one commit for the lot instead of one each, which is what a worker
spends most of its time on when a burst was deferred. When the shared transaction fails, those
jobs go back to the queue with their attempt counted, so each then runs on its own and one bad
delivery cannot keep failing the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.sql import Executable
from sqlmodel import Session, col

from .. import alerts, jobs, metrics
from ..intake import DEFERRED, settle
from ..store import DeliveryRecord, read_session
from ..storefronts.base import Delivery, Rejection
from ..storefronts.registry import adapter_for
from ..worker import JobContext, safe_error

if TYPE_CHECKING:
    from ..bootstrap import Bridge

log = logging.getLogger("bridge.pipeline.deferred_intake")

#: Deliveries settled in one transaction at most. Large enough that the claim and the commit
#: stop mattering, small enough that the transaction (SQLite: the write lock) stays short.
BATCH = 25


@dataclass(frozen=True)
class _Read:
    """A stored delivery read back: parsed, or why it cannot be applied."""

    delivery_id: int
    channel_id: str
    topic: str
    delivery: Delivery | None
    unusable: str


def handle_deferred_intake(ctx: JobContext) -> None:
    bridge = ctx.bridge
    alike = jobs.claim_alike(bridge.engine, ctx.job, BATCH - 1) if ctx.job.attempts == 1 else []
    try:
        held = _apply(ctx, alike)
    except BaseException as exc:
        _give_back(bridge, ctx.job, alike, exc)
        raise
    done_at = bridge.clock.now().timestamp()
    for job in held:
        metrics.job_finished(job.kind, "done", at=done_at, channel=job.payload.get("channel_id"))


def _give_back(
    bridge: Bridge, job: jobs.ClaimedJob, alike: list[jobs.ClaimedJob], exc: BaseException
) -> None:
    note = f"taken with job {job.id}, whose transaction failed ({safe_error(exc)}); runs on its own next"
    try:
        jobs.return_alike(bridge.engine, alike, note)
    except Exception as failure:  # their leases run out instead, and another claim takes them over
        log.warning("could not give back %d intake jobs: %s", len(alike), type(failure).__name__)


def _apply(ctx: JobContext, alike: list[jobs.ClaimedJob]) -> list[jobs.ClaimedJob]:
    """Settle the deliveries of this job and of `alike`, in one finishing transaction; returns
    the `alike` jobs completed with it (a job taken over meanwhile is left to its new worker)."""
    bridge = ctx.bridge
    wanted = [int(job.payload["delivery_id"]) for job in (ctx.job, *alike)]
    with read_session(bridge.engine) as session:
        rows = session.connection().execute(_stored_stmt(), {"ids": wanted}).all()
    reads = [_read(bridge, row) for row in sorted(rows, key=lambda row: row.id) if row.outcome == DEFERRED]
    with ctx.finish() as session:
        held = jobs.held_alike(session, alike)
        mine = {int(job.payload["delivery_id"]) for job in (ctx.job, *held)}
        for read in reads:
            if read.delivery_id in mine:
                _settle_one(session, bridge, read)
        jobs.complete_alike(session, held)
    return held


def _read(bridge: Bridge, row: Row[Any]) -> _Read:
    """Parse a stored delivery again (outside any write transaction)."""
    return _Read(row.id, row.channel_id, row.topic, *_parse(bridge, row))


def _parse(bridge: Bridge, row: Row[Any]) -> tuple[Delivery | None, str]:
    """The delivery from its stored bytes, or None and why it cannot be applied."""
    channel = bridge.config.channel(row.channel_id)
    if channel is None:
        return None, "its channel is no longer in the channels file"
    if row.body_purged_at is not None:
        return None, "its body was removed by a privacy request before it was applied"
    adapter = adapter_for(channel.platform)
    stored_headers = getattr(adapter, "stored_headers", None)
    if stored_headers is None:
        return None, f"{channel.platform} deliveries cannot be read again from their stored bytes"
    try:
        return adapter.parse(channel, stored_headers(row.topic), bytes(row.body), bridge.clock), ""
    except Rejection as exc:
        return None, f"its stored bytes were refused when read again ({exc.code})"


def _settle_one(session: Session, bridge: Bridge, read: _Read) -> None:
    """Apply one delivery in the finishing transaction, unless something settled it meanwhile;
    one that cannot be applied is kept and raises an alert."""
    delivery_id, channel_id = read.delivery_id, read.channel_id
    still = session.connection().execute(_outcome_stmt(), {"delivery_id": delivery_id}).scalar_one_or_none()
    if still != DEFERRED:
        return
    if read.delivery is not None:
        channel = bridge.config.channel(channel_id)
        assert channel is not None  # `_read` found it; the channels file is read once per process
        outcome, order_id = settle(session, channel, read.delivery, delivery_id, bridge.clock)
        log.info(
            "deferred delivery applied channel=%s topic=%s outcome=%s order_id=%s",
            channel_id,
            read.topic,
            outcome,
            order_id,
            extra={"order_id": order_id},
        )
        return
    record = session.get(DeliveryRecord, delivery_id)
    assert record is not None
    record.outcome = "not_applied"
    session.add(record)
    alerts.raise_alert(
        session,
        key=f"intake:deferred:{channel_id}:{delivery_id}",
        kind="intake",
        message=(
            f"a {read.topic} delivery on channel {channel_id} (delivery {delivery_id}) was stored under "
            f"load but not applied: {read.unusable}. The raw delivery is kept until the retention purge; "
            f"`fba-bridge reconcile {channel_id}` reads the shop's orders again"
        ),
        now=bridge.clock.now(),
        channel_id=channel_id,
    )
    log.warning(
        "deferred delivery not applied channel=%s delivery=%s: %s", channel_id, delivery_id, read.unusable
    )


# Core statements built once, run on the session's connection: this job runs for every delivery
# a busy web process deferred, and the ORM's per-statement work cost more than the round trips.
@cache
def _stored_stmt() -> Executable:
    return select(
        col(DeliveryRecord.id),
        col(DeliveryRecord.channel_id),
        col(DeliveryRecord.topic),
        col(DeliveryRecord.body),
        col(DeliveryRecord.outcome),
        col(DeliveryRecord.body_purged_at),
    ).where(col(DeliveryRecord.id).in_(bindparam("ids", expanding=True)))


@cache
def _outcome_stmt() -> Executable:
    return (
        select(col(DeliveryRecord.outcome))
        .where(col(DeliveryRecord.id) == bindparam("delivery_id"))
        .with_for_update()
    )
