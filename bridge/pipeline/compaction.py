"""Bounded tables: the clock's hourly `compact` job removes what no one needs any more.

What goes, and what stays:

- **Finished jobs** (`done`) older than `BRIDGE_JOB_HISTORY_HOURS` (24) are deleted. Ready, running
  and dead jobs stay: a dead job is an operator's to-do and waits for `jobs retry`, unless its
  order's personal data was purged (the order is finished and past retention), when it goes too
  and its `job_dead` alert is cleared.
- **Audit trails** of finished orders (shipped, cancelled, unfulfillable, completed partially, not
  for Amazon) not changed for `BRIDGE_RETENTION_DAYS` (30) lose their routine entries: Amazon
  status and tracking notes, events ignored because the order had moved on, and deliveries that
  changed nothing. The first and last entry, every state change, pushes to the storefront,
  returns, alerts and privacy records stay, and one `audit:compacted` entry says how many entries
  of which kind were removed. An order is compacted once (`orders.audit_compacted_at`). The audit
  trail never holds personal data, and compaction writes only counts.
- **Raw webhook bodies** are not touched here: the retention purge (`privacy.py`) replaces every
  body older than the retention period, whatever it was for.

Every delete runs in batches of at most `BATCH` rows, each in its own short transaction that first
checks this worker still holds the job, so a large backlog never holds a lock for long and a
worker that lost its lease stops. A run stops after `MAX_BATCHES` batches; the next run goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from .. import alerts, jobs
from ..store import JobRecord, OrderEventRecord, OrderRecord, db_now, write_session
from ..worker import JobContext
from .privacy import FINISHED_STATES

log = logging.getLogger("bridge.compaction")

JOB_COMPACT = "compact"
BATCH = 1000
ORDER_BATCH = 100
MAX_BATCHES = 500
COMPACTED_EVENT = "audit:compacted"
ROUTINE_EVENTS = frozenset({"amazon:status", "amazon:tracking"})
ROUTINE_PREFIXES = ("ignored:", "intake:")


@dataclass
class Compaction:
    jobs: int = 0
    dead_jobs: int = 0
    orders: int = 0
    audit_rows: int = 0


def is_routine(event: OrderEventRecord) -> bool:
    """An entry that changed no state and records nothing an operator or accountant needs later."""
    if event.from_state != event.to_state:
        return False
    return event.event in ROUTINE_EVENTS or event.event.startswith(ROUTINE_PREFIXES)


def handle_compact(ctx: JobContext) -> None:
    settings = ctx.bridge.settings
    done = compact(
        ctx,
        job_history=timedelta(hours=settings.job_history_hours),
        retention=timedelta(days=int(ctx.job.payload.get("retention_days", settings.retention_days))),
    )
    with ctx.finish():
        pass
    log.info(
        "compaction removed %d finished job(s), %d dead job(s) of purged orders, "
        "%d audit row(s) of %d order(s)",
        done.jobs,
        done.dead_jobs,
        done.audit_rows,
        done.orders,
    )


def compact(ctx: JobContext, *, job_history: timedelta, retention: timedelta) -> Compaction:
    """Run every step in batches; raises `jobs.LostLease` if the claim is lost between batches."""
    result = Compaction()
    batches = 0
    while batches < MAX_BATCHES:
        batches += 1
        removed = _delete_finished_jobs(ctx, job_history)
        result.jobs += removed
        if removed < BATCH:
            break
    while batches < MAX_BATCHES:
        batches += 1
        removed = _delete_dead_jobs_of_purged_orders(ctx)
        result.dead_jobs += removed
        if removed < BATCH:
            break
    cutoff = ctx.bridge.clock.now() - retention
    while batches < MAX_BATCHES:
        batches += 1
        orders, rows = _compact_audit_trails(ctx, cutoff)
        result.orders += orders
        result.audit_rows += rows
        if orders < ORDER_BATCH:
            break
    return result


def _delete_finished_jobs(ctx: JobContext, history: timedelta) -> int:
    with write_session(ctx.bridge.engine) as session:
        jobs.assert_held(session, ctx.job)
        cutoff = db_now(session) - history.total_seconds()
        batch = (
            select(col(JobRecord.id))
            .where(col(JobRecord.status) == jobs.DONE, col(JobRecord.updated_at) < cutoff)
            .limit(BATCH)
        )
        ids = list(session.execute(batch).scalars())
        if ids:
            session.execute(delete(JobRecord).where(col(JobRecord.id).in_(ids)))
        return len(ids)


def _delete_dead_jobs_of_purged_orders(ctx: JobContext) -> int:
    now = ctx.bridge.clock.now()
    with write_session(ctx.bridge.engine) as session:
        jobs.assert_held(session, ctx.job)
        batch = (
            select(col(JobRecord.id))
            .join(OrderRecord, col(OrderRecord.id) == col(JobRecord.order_id))
            .where(col(JobRecord.status) == jobs.DEAD, col(OrderRecord.pii_purged_at).is_not(None))
            .limit(BATCH)
        )
        ids = list(session.execute(batch).scalars())
        if ids:
            session.execute(delete(JobRecord).where(col(JobRecord.id).in_(ids)))
            for job_id in ids:
                alerts.clear_alert(session, f"job_dead:{job_id}", now)
        return len(ids)


def _compact_audit_trails(ctx: JobContext, cutoff: datetime) -> tuple[int, int]:
    """One batch of finished orders past `cutoff`: (orders compacted, audit rows removed)."""
    now = ctx.bridge.clock.now()
    with write_session(ctx.bridge.engine) as session:
        jobs.assert_held(session, ctx.job)
        orders = list(
            session.execute(
                select(col(OrderRecord.id), col(OrderRecord.state))
                .where(
                    col(OrderRecord.state).in_(FINISHED_STATES),
                    col(OrderRecord.updated_at) < cutoff,
                    col(OrderRecord.audit_compacted_at).is_(None),
                )
                .order_by(col(OrderRecord.id))
                .limit(ORDER_BATCH)
            ).all()
        )
        removed = 0
        for order_id, state in orders:
            removed += _compact_one(session, order_id, state, now)
        if orders:
            session.execute(
                update(OrderRecord)
                .where(col(OrderRecord.id).in_([order_id for order_id, _ in orders]))
                .values(audit_compacted_at=now)
            )
        return len(orders), removed


def _compact_one(session: Session, order_id: int, state: str, now: datetime) -> int:
    events = list(
        session.execute(
            select(OrderEventRecord)
            .where(col(OrderEventRecord.order_id) == order_id)
            .order_by(col(OrderEventRecord.at), col(OrderEventRecord.id))
        ).scalars()
    )
    drop = [e for e in events[1:-1] if is_routine(e)]
    if not drop:
        return 0
    for start in range(0, len(drop), BATCH):
        ids = [e.id for e in drop[start : start + BATCH]]
        session.execute(delete(OrderEventRecord).where(col(OrderEventRecord.id).in_(ids)))
    kinds = Counter(e.event for e in drop)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    session.add(
        OrderEventRecord(
            order_id=order_id,
            at=now,
            event=COMPACTED_EVENT,
            from_state=state,
            to_state=state,
            reason=f"{len(drop)} routine entries removed: {summary}"[:2000],
        )
    )
    return len(drop)
