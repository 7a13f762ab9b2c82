"""An order's lifecycle step under its job's claim, in one statement (PostgreSQL).

A submit job's two writes around `createFulfillmentOrder` (`submitting` before it, `created`
after it) were each a transaction of five or six round trips: BEGIN, lock the job and the order,
insert the audit row, update the order, COMMIT. With many sellers those round trips were most of
a worker's CPU. When the step is the usual one (the order still in the state the job read, with
the content it planned from, and the claim still held), one data-modifying statement does it all,
autocommitted: it locks both rows, checks them, updates the order, writes the audit row exactly
as `audit.transition` would, and (for a job's last write) marks the job done.

When anything is unusual (the order moved on or changed, the claim was lost, SQLite) the step
reports that it did nothing and the caller takes its general path, which decides and explains
every case. The statement either does all of it or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Executable, bindparam, exists, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from .audit import writes_only_the_state
from .jobs import ClaimedJob, job_done_values, still_held_where
from .orders import Event, OrderState, next_state
from .store import (
    JobRecord,
    OrderEventRecord,
    OrderRecord,
    data_digest,
    db_clock_column,
    is_sqlite,
    one_statement,
)

_ORDERS = OrderRecord.metadata.tables[OrderRecord.__tablename__]
_EVENTS = OrderEventRecord.metadata.tables[OrderEventRecord.__tablename__]


def step_under_claim(
    engine: Engine,
    job: ClaimedJob,
    order_id: int,
    *,
    from_state: OrderState,
    event: Event,
    now: datetime,
    reason: str,
    values: Mapping[str, Any],
    digest: bytes | None = None,
    complete: bool = False,
) -> bool:
    """Apply `event` to an order that is in `from_state` (and, with `digest`, still holds the
    content whose `store.data_digest` that was), set `values` on it, and with `complete` mark
    the job done: all in one statement, and only while this worker still holds the job.

    True when it was done. False when it did nothing: on SQLite, or when a condition failed;
    the caller then runs its general path, which finds out which and acts on it."""
    to_state = next_state(from_state, event)
    if not writes_only_the_state(event, to_state):
        raise ValueError(f"{event.value} writes more than the state; use audit.transition")
    if is_sqlite(engine):
        return False
    names = tuple(sorted(values))
    # The step's own parameters have a prefix: SQLAlchemy takes a parameter named like a column of
    # an UPDATE in the statement as a value to SET (`order_id` would be written into the job's row).
    # `job_id` and `token` are `jobs.still_held_where`'s and name no column.
    params = {
        **{f"step_set_{name}": value for name, value in values.items()},
        "step_order_id": order_id,
        "step_from_state": from_state.value,
        "step_to_state": to_state.value,
        "step_event": event.value,
        "step_now": now,
        "step_reason": reason[:2000],
        "job_id": job.id,
        "token": job.claim_token,
        "step_digest": digest,
    }
    with one_statement(engine) as conn:
        return conn.execute(_step_stmt(names, digest is not None, complete), params).first() is not None


@cache
def _step_stmt(names: tuple[str, ...], check_digest: bool, complete: bool) -> Executable:
    """Built once per shape. Each CTE runs on what the one before it found, so the rows are
    locked in the order every other path takes, the job's before the order's: `held_claim` locks
    the job's row if this worker still holds it; `expected_order` locks the order if the claim is
    held and the order is as expected; `changed_order` updates it; `ended_job` (the final step)
    ends the job if the order changed; the statement itself inserts the audit row for what
    `changed_order` returns. PostgreSQL runs a data-modifying CTE to its end whether or not
    anything reads it, and a row this statement locked is no conflict for its own update."""
    db_clock = db_clock_column("postgresql")
    held = select(col(JobRecord.id)).where(*still_held_where(db_clock)).with_for_update().cte("held_claim")
    conditions: list[ColumnElement[bool]] = [
        col(OrderRecord.id) == bindparam("step_order_id"),
        col(OrderRecord.state) == bindparam("step_from_state"),
        exists(select(held.c.id)),
    ]
    if check_digest:
        conditions.append(data_digest() == bindparam("step_digest"))
    order = select(col(OrderRecord.id)).where(*conditions).with_for_update().cte("expected_order")
    changed = (
        update(OrderRecord)
        .where(col(OrderRecord.id).in_(select(order.c.id)))
        .values(
            state=bindparam("step_to_state"),
            updated_at=bindparam("step_now", type_=_ORDERS.c.updated_at.type),
            **{name: bindparam(f"step_set_{name}", type_=_ORDERS.c[name].type) for name in names},
        )
        .returning(col(OrderRecord.id))
        .cte("changed_order")
    )
    audit_row = select(
        changed.c.id,
        bindparam("step_now", type_=_EVENTS.c.at.type),
        bindparam("step_event"),
        bindparam("step_from_state"),
        bindparam("step_to_state"),
        bindparam("step_reason"),
    )
    statement = (
        insert(OrderEventRecord)
        .from_select(["order_id", "at", "event", "from_state", "to_state", "reason"], audit_row)
        .returning(col(OrderEventRecord.id))
    )
    if complete:
        ended = (
            update(JobRecord)
            .where(col(JobRecord.id).in_(select(held.c.id)), exists(select(changed.c.id)))
            .values(job_done_values(db_clock))
            .returning(col(JobRecord.id))
            .cte("ended_job")
        )
        statement = statement.add_cte(ended)
    return statement
