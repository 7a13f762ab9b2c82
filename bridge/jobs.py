"""A durable job queue on the bridge's own database.

Jobs are enqueued inside the caller's transaction, so a job exists exactly when the state change
that asked for it was committed. A worker claims a job with a lease (database time) and a fresh
claim token; every later write about the job (heartbeat, complete, fail) names that token, so a
worker that was paused or killed past its lease can never finish a job someone else took over.

A `dedupe_key` collapses jobs that are *waiting*: while one `ready` job holds the key, enqueuing
another is a no-op, because the waiting job will read the latest state when it runs. A job that
is already running has read its state already, so a new job with its key is added beside it
(the unique index covers `ready` jobs only). When a running job must go back to `ready` (a retry)
while a newer one waits with its key, it steps aside: the newer job does the same work.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Insert,
    Integer,
    Row,
    Select,
    bindparam,
    insert,
    literal,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable
from sqlmodel import Session, col

from . import retry_policy
from .store import (
    JobRecord,
    OrderRecord,
    data_digest,
    db_clock_column,
    db_now,
    lock_order,
    one_statement,
    without_waiting_for_disk_columns,
    write_session,
)

#: The orders table under a name of its own for the claim's channel lookup. SQLAlchemy renders
#: every column of an `UPDATE ... RETURNING` on SQLite without its table, subqueries included
#: (`WHERE id = order_id`, right only while `orders` has no `order_id`), so the lookup names both
#: sides itself.
_ORDER = OrderRecord.metadata.tables[OrderRecord.__tablename__].alias("claimed_order")
_JOBS = JobRecord.__tablename__
_ORDERS = OrderRecord.metadata.tables[OrderRecord.__tablename__]
_JOB_ROWS = JobRecord.metadata.tables[_JOBS]

READY = "ready"
RUNNING = "running"
DONE = "done"
DEAD = "dead"

DEFAULT_LEASE_S = 60.0
BACKOFF_BASE_S = 5.0


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    order_id: int | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    claim_token: str
    #: When the job was due and when it was claimed (database clock, epoch seconds): the pickup lag.
    run_at: float = 0.0
    claimed_at: float = 0.0
    #: A rate-bucket key with a token reserved for this run (see `hand_back`).
    reserved: str | None = None
    #: The channel of the job's order, read by the claim (log lines and metrics name it).
    order_channel_id: str | None = None

    @property
    def late_s(self) -> float:
        return max(0.0, self.claimed_at - self.run_at)


class LostLease(RuntimeError):
    """The job was taken over by another worker; whatever this worker did must not be recorded."""


def enqueue(
    session: Session,
    kind: str,
    *,
    order_id: int | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    delay_s: float = 0.0,
    max_attempts: int | None = None,
) -> bool:
    """Add a job in the caller's transaction. Returns False when a *waiting* (`ready`) job has the
    same key; a running job with the key does not stop the new one (it may have read stale state).
    `max_attempts` defaults to the kind's retry policy (`bridge.retry_policy`). Its times are the
    database's clock, read by the insert itself (no round trip of its own)."""
    values = dict(
        _new_job(kind, max_attempts),
        order_id=order_id,
        payload=payload or {},
        dedupe_key=dedupe_key,
        delay_s=delay_s,
    )
    # Core on the session's connection (same transaction), one statement compiled per dialect:
    # the ORM's bulk-insert path cost more than the insert itself on the webhook path.
    conn = session.connection()
    statement = _insert_stmt(conn.dialect.name, dedupe_key is not None)
    if dedupe_key is None:
        conn.execute(statement, values)
        return True
    return conn.execute(statement, values).first() is not None


def _new_job(kind: str, max_attempts: int | None = None) -> dict[str, Any]:
    """A new job's own columns, whichever insert writes it: waiting, no attempt yet.
    `max_attempts` defaults to the kind's retry policy."""
    if max_attempts is None:
        max_attempts = retry_policy.for_kind(kind).max_attempts
    return {"kind": kind, "status": READY, "attempts": 0, "max_attempts": max_attempts, "last_error": ""}


def enqueue_for_rows(dialect: str, kind: str, payload: ColumnElement[Any], rows: FromClause) -> Insert:
    """An INSERT of one waiting `kind` job per row of `rows`, its payload computed from that row
    (no order, no dedupe key): for a statement that writes the rows and their jobs at once
    (PostgreSQL: a data-modifying CTE). The same columns and clock as `enqueue`."""
    clock = db_clock_column(dialect, statement_start=True)
    columns: dict[str, ColumnElement[Any]] = {
        **{name: literal(value) for name, value in _new_job(kind).items()},
        "payload": payload,
        "run_at": clock,
        "created_at": clock,
        "updated_at": clock,
        # Named although the column has a default: SQLAlchemy leaves a default's parameter
        # unfilled in an INSERT ... SELECT inside a CTE.
        "lost_leases": literal(0, Integer),
    }
    table = JobRecord.metadata.tables[_JOBS]
    return insert(table).from_select(
        [table.c[name] for name in columns], select(*columns.values()).select_from(rows)
    )


@cache
def _insert_stmt(dialect: str, unique: bool) -> Executable:
    """The job's insert, its times from the database's clock (`delay_s` bound); `unique`: a job
    with a dedupe key, which inserts nothing while a waiting job holds the key."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    clock = db_clock_column(dialect, statement_start=True)  # one value for all three times
    statement = dialect_insert(JobRecord).values(
        run_at=clock + bindparam("delay_s", type_=Float), created_at=clock, updated_at=clock
    )
    if not unique:
        return statement
    return statement.on_conflict_do_nothing().returning(col(JobRecord.id))


_Ts = TypeVarTuple("_Ts")

OnDead = Callable[[Session, JobRecord], None]


def claim(
    engine: Engine,
    kinds: list[str] | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    on_dead: OnDead | None = None,
) -> ClaimedJob | None:
    """Take a job whose lease ran out, else the oldest due job, in one short transaction.

    A job whose lease ran out lost its worker mid-run; the attempt counted at that claim stays
    spent. When it has no attempts left, or has now lost `max_lost_leases` workers (its kind's
    retry policy), it is dead-lettered here instead (`on_dead` runs in the same transaction, for
    the operator alert), so a job that kills its worker cannot be claimed forever.

    Two probes instead of one `ready OR expired` query (which no index could serve, so its cost grew
    with the backlog): each takes the head of its own partial index (`ix_jobs_expiring`,
    `ix_jobs_due`), so a claim costs the same with an empty queue and with 200,000 waiting
    (bench/jobs.py). `FOR UPDATE SKIP LOCKED` lets concurrent claimers pass each other's rows on
    PostgreSQL; on SQLite `BEGIN IMMEDIATE` serialises them. Every job pays for its claim, so the
    usual path (no lease ran out) loads no ORM object (through the ORM the claim cost 2.3 ms of
    CPU on PostgreSQL, more than many jobs' own work): on SQLite four Core statements, on
    PostgreSQL one autocommitted statement (`_claim_stmt`).
    """
    token = secrets.token_hex(16)
    if engine.dialect.name == "postgresql":
        with one_statement(engine) as conn:
            row = conn.execute(_claim_stmt(tuple(kinds or ())), {"token": token, "lease_s": lease_s}).one()
        if not row.expired:
            if row.id is None:
                return None
            return _claimed(row, token, row.due, row.was_reserved, float(row.now))
        # A lease ran out: the long way below, in a transaction (rare: a worker died or hung).
    with engine.begin() as conn:
        now = float(conn.execute(_clock_stmt(conn.dialect.name)).one()[0])
        expired = conn.execute(_head(_expired_leases, kinds), {"now": now}).first()
        if expired is not None:
            with Session(bind=conn, expire_on_commit=False) as session:
                return _claim_expired(session, now, kinds, token, lease_s, on_dead)
        return _take_due(conn, kinds, now, token, lease_s)


def claim_alike(
    engine: Engine, job: ClaimedJob, limit: int, lease_s: float = DEFAULT_LEASE_S
) -> list[ClaimedJob]:
    """Also take up to `limit` due jobs of `job`'s kind that never ran, under `job`'s claim token,
    for a handler that does their work together in one transaction (`intake`: many small
    deliveries). They are held like `job` itself; the handler ends them with `complete_alike`,
    or, when the shared work failed, hands them back with `return_alike`."""
    if limit <= 0:
        return []
    with engine.begin() as conn:
        now = float(conn.execute(_clock_stmt(conn.dialect.name)).one()[0])
        heads = {
            head.id: head
            for head in conn.execute(_alike_stmt(), {"now": now, "kind": job.kind, "limit": limit})
        }
        if not heads:
            return []
        values = {"ids": list(heads), "token": job.claim_token, "lease_until": now + lease_s, "now": now}
        taken = conn.execute(_take_stmt(), values).all()
    return [
        _claimed(row, job.claim_token, heads[row.id].run_at, heads[row.id].reserved, now) for row in taken
    ]


def held_alike(session: Session, alike: list[ClaimedJob]) -> list[ClaimedJob]:
    """Those of `claim_alike`'s jobs this worker still holds, their rows locked to the end of
    the caller's transaction (the others were taken over: leave their work alone)."""
    if not alike:
        return []
    conn = session.connection()
    held = set(
        conn.execute(
            _held_many_stmt(conn.dialect.name),
            {"ids": [job.id for job in alike], "token": alike[0].claim_token},
        ).scalars()
    )
    return [job for job in alike if job.id in held]


def complete_alike(session: Session, held: list[ClaimedJob]) -> None:
    """Mark `held_alike`'s jobs done in the caller's transaction."""
    if held:
        conn = session.connection()
        conn.execute(_done_many_stmt(conn.dialect.name), {"ids": [job.id for job in held]})


def return_alike(engine: Engine, alike: list[ClaimedJob], note: str) -> None:
    """The shared work failed: give `claim_alike`'s jobs back, due now, with their attempt
    counted, so each runs on its own next time and one bad job cannot fail the others twice."""
    if not alike:
        return
    with engine.begin() as conn:
        values = {"ids": [job.id for job in alike], "token": alike[0].claim_token, "note": note}
        conn.execute(_return_stmt(conn.dialect.name), values)


@cache
def _alike_stmt() -> Executable:
    """The oldest due jobs of the bound `kind` that never ran, up to the bound `limit`."""
    return (
        _due_jobs()
        .where(col(JobRecord.kind) == bindparam("kind"), col(JobRecord.attempts) == 0)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


@cache
def _take_stmt() -> Executable:
    """Mark the locked jobs `ids` running under one claim token; returns what their workers need."""
    return (
        update(JobRecord)
        .where(col(JobRecord.id).in_(bindparam("ids", expanding=True)))
        .values(
            status=RUNNING,
            claim_token=bindparam("token"),
            lease_until=bindparam("lease_until"),
            attempts=col(JobRecord.attempts) + 1,
            updated_at=bindparam("now"),
            reserved=None,
        )
        .returning(*_taken_columns())
    )


def _taken_columns() -> tuple[Any, ...]:
    """What a claim returns of the job it marked running (`_claimed` reads them)."""
    return (
        col(JobRecord.id),
        col(JobRecord.kind),
        col(JobRecord.order_id),
        col(JobRecord.payload),
        col(JobRecord.attempts),
        col(JobRecord.max_attempts),
        select(_ORDER.c.channel_id)
        .where(literal_column("claimed_order.id") == literal_column(f"{_JOBS}.order_id"))
        .scalar_subquery()
        .label("order_channel_id"),
    )


@cache
def _held_many_stmt(dialect: str) -> Executable:
    return (
        select(col(JobRecord.id))
        .where(
            col(JobRecord.id).in_(bindparam("ids", expanding=True)),
            col(JobRecord.claim_token) == bindparam("token"),
            _status_is(RUNNING),
            col(JobRecord.lease_until) >= db_clock_column(dialect),
        )
        .with_for_update()
    )


@cache
def _done_many_stmt(dialect: str) -> Executable:
    return (
        update(JobRecord)
        .where(col(JobRecord.id).in_(bindparam("ids", expanding=True)))
        .values(status=DONE, lease_until=None, updated_at=db_clock_column(dialect))
    )


@cache
def _return_stmt(dialect: str) -> Executable:
    return (
        update(JobRecord)
        .where(
            col(JobRecord.id).in_(bindparam("ids", expanding=True)),
            col(JobRecord.claim_token) == bindparam("token"),
            _status_is(RUNNING),
        )
        .values(
            status=READY,
            lease_until=None,
            run_at=db_clock_column(dialect),
            updated_at=db_clock_column(dialect),
            last_error=bindparam("note"),
        )
    )


def _claim_expired(
    session: Session, now: float, kinds: list[str] | None, token: str, lease_s: float, on_dead: OnDead | None
) -> ClaimedJob | None:
    """The claim when a lease ran out: bury the jobs that must not run again, take over the first
    one that may, else fall back to the oldest due job."""
    conn = session.connection()
    while (expired := conn.execute(_head(_expired_leases, kinds), {"now": now}).first()) is not None:
        record = session.get(JobRecord, expired.id)
        assert record is not None
        record.lost_leases += 1
        if not _worker_killer(record):
            session.flush()
            return _take(conn, expired.id, record.run_at, record.reserved, now, token, lease_s)
        _bury(session, record, now, on_dead)
    return _take_due(conn, kinds, now, token, lease_s)


def _take_due(
    conn: Connection, kinds: list[str] | None, now: float, token: str, lease_s: float
) -> ClaimedJob | None:
    """Take the oldest due job, if any."""
    head = conn.execute(_head(_due_jobs, kinds), {"now": now}).first()
    if head is None:
        return None
    return _take(conn, head.id, head.run_at, head.reserved, now, token, lease_s)


def _take(
    conn: Connection, job_id: int, due: float, reserved: str | None, now: float, token: str, lease_s: float
) -> ClaimedJob:
    """Mark the locked job running under `token` and return what its worker needs. The
    reservation belongs to this run only, so the row's copy is cleared."""
    values = {"ids": [job_id], "token": token, "lease_until": now + lease_s, "now": now}
    return _claimed(conn.execute(_take_stmt(), values).one(), token, due, reserved, now)


def _claimed(row: Row[Any], token: str, due: float, reserved: str | None, now: float) -> ClaimedJob:
    """What a worker holds of a job `_take_stmt` just marked running (`row`: what it returned)."""
    return ClaimedJob(
        id=row.id,
        kind=row.kind,
        order_id=row.order_id,
        payload=dict(row.payload),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        claim_token=token,
        run_at=due,
        claimed_at=now,
        reserved=reserved,
        order_channel_id=row.order_channel_id,
    )


def _worker_killer(record: JobRecord) -> bool:
    """A job whose lease just expired and that must not run again."""
    policy = retry_policy.for_kind(record.kind)
    return record.attempts >= record.max_attempts or record.lost_leases >= policy.max_lost_leases


def _bury(session: Session, record: JobRecord, now: float, on_dead: OnDead | None) -> None:
    record.status = DEAD
    record.lease_until = None
    record.claim_token = None
    record.updated_at = now
    record.last_error = (
        f"its worker stopped while running it {record.lost_leases} time(s) (crashed, killed or hung "
        f"past its lease) after {record.attempts} attempt(s); last error before that: "
        f"{record.last_error or 'none'}"
    )[:2000]
    session.add(record)
    session.flush()
    if on_dead is not None:
        on_dead(session, record)


def _status_is(status: str) -> ColumnElement[bool]:
    # The status is written into the SQL as a literal: a bound parameter would keep SQLite (and a
    # generic PostgreSQL plan) from proving that the partial index's WHERE clause applies.
    return col(JobRecord.status) == literal_column(f"'{status}'")


def _due_jobs(now: Any = None) -> Select[int | None, float, str | None]:
    """Oldest job due at `now` (default: the bound `now`) first: the order of `ix_jobs_due`
    (run_at, id WHERE status = 'ready')."""
    now = bindparam("now", type_=Float) if now is None else now
    return (
        select(col(JobRecord.id), col(JobRecord.run_at), col(JobRecord.reserved))
        .where(_status_is(READY), col(JobRecord.run_at) <= now)
        .order_by(col(JobRecord.run_at), col(JobRecord.id))
    )


def _expired_leases(now: Any = None) -> Select[int | None]:
    """A running job whose worker stopped renewing its lease before `now` (default: the bound
    `now`), the longest expired first."""
    now = bindparam("now", type_=Float) if now is None else now
    return (
        select(col(JobRecord.id))
        .where(_status_is(RUNNING), col(JobRecord.lease_until) < now)
        .order_by(col(JobRecord.lease_until))
    )


def _head(probe: Callable[[], Select[*_Ts]], kinds: list[str] | None) -> Select[*_Ts]:
    """The first row of a probe, locked (`SKIP LOCKED`: a row another claimer holds is passed)."""
    return _head_stmt(probe, tuple(kinds or ()))


@cache
def _head_stmt(probe: Callable[[], Select[*_Ts]], kinds: tuple[str, ...]) -> Select[*_Ts]:
    # Built once per probe and set of kinds (a worker has one set): a statement built per claim
    # cost more CPU in SQLAlchemy's construction and cache-key code than its round trip.
    return _locked_head(probe(), kinds)


def _locked_head(query: Select[*_Ts], kinds: tuple[str, ...]) -> Select[*_Ts]:
    if kinds:
        query = query.where(_kind_in(kinds))
    return query.limit(1).with_for_update(skip_locked=True)  # SQLite: left out; BEGIN IMMEDIATE serialises


def _kind_in(kinds: tuple[str, ...]) -> ColumnElement[bool]:
    """The kinds written into the SQL as literals, like `_status_is`. As bound parameters a
    worker's ~20 kinds, twice in the claim, were ~40 parameters that SQLAlchemy expanded into the
    SQL at every claim, and that psycopg (over 50 parameters, it does not cache) parsed anew:
    4% of a busy worker's CPU. The kinds are our handlers' names, never input."""
    if not all(kind.isidentifier() for kind in kinds):
        raise ValueError(f"job kinds must be identifiers: {kinds!r}")
    return col(JobRecord.kind).in_([literal_column(f"'{kind}'") for kind in kinds])


@cache
def _claim_stmt(kinds: tuple[str, ...]) -> Executable:
    """PostgreSQL: the usual claim as one statement, autocommitted (`claim`). It reads the clock
    once (`statement_timestamp()`), looks for a lease that ran out, and only when there is none
    takes the oldest due job: the same two probes on the same partial indexes, `SKIP LOCKED`,
    then the `UPDATE ... RETURNING` of `_take_stmt`. It always returns one row: the clock,
    whether a lease ran out (then nothing was taken, and `claim` goes the long way), and the job
    taken, if any. One round trip instead of BEGIN, four statements and COMMIT; its commit does
    not wait for the disk (`set_config`, as the long way's `_clock_stmt`)."""
    now: Any = db_clock_column("postgresql", statement_start=True)
    clock = select(now.label("now")).cte("clock")
    expired = _locked_head(_expired_leases(now), kinds).cte("expired")
    head = _locked_head(_due_jobs(now).where(~select(expired.c.id).exists()), kinds).cte("head")
    taken = (
        update(JobRecord)
        .where(col(JobRecord.id) == head.c.id)
        .values(
            status=RUNNING,
            claim_token=bindparam("token"),
            lease_until=now + bindparam("lease_s", type_=Float),
            attempts=col(JobRecord.attempts) + 1,
            updated_at=now,
            reserved=None,
        )
        .returning(*_taken_columns(), head.c.run_at.label("due"), head.c.reserved.label("was_reserved"))
        .cte("taken")
    )
    return select(
        clock.c.now,
        select(expired.c.id).exists().label("expired"),
        *without_waiting_for_disk_columns("postgresql"),
        *taken.c,
    ).select_from(clock.outerjoin(taken, true()))


@cache
def _clock_stmt(dialect: str) -> Executable:
    """A claim's first statement: the database's clock, and (PostgreSQL) the transaction's
    commit set not to wait for the disk, without a round trip of its own."""
    return select(db_clock_column(dialect), *without_waiting_for_disk_columns(dialect))


def _held_now(session: Session, job: ClaimedJob) -> float:
    """Lock the job's row and read the database's clock in one statement; `LostLease` unless this
    worker still holds the job. Under `FOR UPDATE` a row another transaction changed meanwhile
    (a takeover) is read again after that one commits, so the check sees the newest claim."""
    conn = session.connection()
    row = conn.execute(_held_stmt(conn.dialect.name), {"job_id": job.id}).first()
    if row is None:
        raise LostLease(f"job {job.id} is no longer held by this worker")
    return _still_held(job, *row)


def _held_columns(dialect: str) -> tuple[Any, ...]:
    """What `_still_held` checks: the job's claim, its status and lease, and the database's clock."""
    return (
        col(JobRecord.claim_token),
        col(JobRecord.status),
        col(JobRecord.lease_until),
        db_clock_column(dialect),
    )


def _still_held(
    job: ClaimedJob, token: str | None, status: str, lease_until: float | None, now: Any
) -> float:
    """The database's clock, or `LostLease` unless the row read by `_held_columns` is still this
    worker's running claim with its lease not yet over."""
    if token != job.claim_token or status != RUNNING or (lease_until or 0) < float(now):
        raise LostLease(f"job {job.id} is no longer held by this worker")
    return float(now)


@cache
def _held_stmt(dialect: str) -> Executable:
    return select(*_held_columns(dialect)).where(col(JobRecord.id) == bindparam("job_id")).with_for_update()


def _owned(session: Session, job: ClaimedJob) -> tuple[JobRecord, float]:
    """The held job's row as an object, for the rarer endings that change several of its fields."""
    now = _held_now(session, job)
    record = session.get(JobRecord, job.id)
    assert record is not None  # locked by `_held_now` since
    return record, now


def assert_held(session: Session, job: ClaimedJob) -> None:
    """Raise `LostLease` unless this worker still holds the job; call inside the commit
    transaction. The row stays locked to its end."""
    _held_now(session, job)


def lock_order_held(session: Session, job: ClaimedJob, order_id: int) -> OrderRecord:
    """`assert_held` and `store.lock_order` in one statement: both rows stay locked to the end of
    the transaction. A submit job asks this before it commits `submitting`; two statements there
    were two round trips of the worker's seventeen.

    Under `FOR UPDATE` a row another transaction changed meanwhile is read again once that one
    commits, the job's row included, so the check still sees the newest claim. The statement
    locks the two rows in whichever order its plan reads them; that cannot deadlock, because no
    transaction that holds an order's row goes on to lock a running job's row (a takeover locks
    only the job, `SKIP LOCKED`)."""
    dialect = session.get_bind().dialect.name
    row = session.execute(_held_order_stmt(dialect), {"job_id": job.id, "order_id": order_id}).first()
    if row is None:  # the job's row or the order's is gone: say which, as the two statements did
        assert_held(session, job)
        return lock_order(session, order_id)
    order, *held = row
    _still_held(job, *held)
    locked: OrderRecord = order
    return locked


@cache
def _held_order_stmt(dialect: str) -> Any:
    return (
        select(OrderRecord, *_held_columns(dialect))
        .select_from(_ORDERS.join(_JOB_ROWS, true()))  # one row of each: no join condition
        .where(col(JobRecord.id) == bindparam("job_id"), col(OrderRecord.id) == bindparam("order_id"))
        .with_for_update()
    )


def sibling_running(session: Session, job: ClaimedJob, *, same_key: bool = False) -> bool:
    """True when another job of the same kind and order, claimed before this one, still runs
    (its lease not yet expired). `same_key` narrows it to jobs with this job's dedupe key.

    Ordering by claim time (then id) means that of two jobs claimed together exactly one goes
    ahead, and one claimed while another runs always waits: no overlap and no livelock.
    """
    stmt = _sibling_stmt(session.get_bind().dialect.name, same_key)
    found = session.connection().execute(stmt, {"job_id": job.id, "kind": job.kind, "order_id": job.order_id})
    return found.first() is not None


class OrderToPlan(NamedTuple):
    order: OrderRecord | None  # None when it is gone (purged)
    overlapping: bool  # `sibling_running`
    digest: bytes | None  # `store.data_digest` of the order as read (PostgreSQL; None on SQLite)


def load_order_unless_sibling(session: Session, job: ClaimedJob) -> OrderToPlan:
    """The job's order and whether `sibling_running`, in one statement: a submit job asks both
    before it plans. On PostgreSQL the same statement reads the digest its later one-statement
    steps compare (`claimed_transitions`)."""
    dialect = session.get_bind().dialect.name
    params = {"job_id": job.id, "kind": job.kind, "order_id": job.order_id}
    row = session.execute(_order_and_sibling_stmt(dialect), params).first()
    if row is None:
        return OrderToPlan(None, False, None)
    order, overlapping, *digest = row
    return OrderToPlan(order, bool(overlapping), bytes(digest[0]) if digest else None)


@cache
def _order_and_sibling_stmt(dialect: str) -> Any:
    overlapping = _sibling_stmt(dialect, False).exists().label("overlapping")  # type: ignore[attr-defined]
    digest = () if dialect == "sqlite" else (data_digest().label("digest"),)
    return select(OrderRecord, overlapping, *digest).where(col(OrderRecord.id) == bindparam("order_id"))


@cache
def _sibling_stmt(dialect: str, same_key: bool) -> Executable:
    """Built once: every submit, amend and push-back job asks this (it was 7% of a busy worker's
    CPU when built per call)."""
    job_id: Any = bindparam("job_id")
    mine = select(col(JobRecord.updated_at)).where(col(JobRecord.id) == job_id).scalar_subquery()
    query = select(col(JobRecord.id)).where(
        col(JobRecord.kind) == bindparam("kind"),
        col(JobRecord.order_id) == bindparam("order_id"),
        col(JobRecord.status) == RUNNING,
        col(JobRecord.id) != job_id,
        col(JobRecord.lease_until) >= db_clock_column(dialect),
        (col(JobRecord.updated_at) < mine)
        | ((col(JobRecord.updated_at) == mine) & (col(JobRecord.id) < job_id)),
    )
    if same_key:
        my_key = select(col(JobRecord.dedupe_key)).where(col(JobRecord.id) == job_id).scalar_subquery()
        query = query.where(col(JobRecord.dedupe_key) == my_key)
    return query.limit(1)


def _back_to_ready(session: Session, record: JobRecord) -> None:
    """Make a claimed (or dead) job `ready` again, unless a newer waiting job holds its dedupe key:
    then that one will do the work, and this one is closed as superseded."""
    if record.dedupe_key is not None:
        newer = session.execute(
            select(col(JobRecord.id)).where(
                col(JobRecord.dedupe_key) == record.dedupe_key,
                col(JobRecord.status) == READY,
                col(JobRecord.id) != record.id,
            )
        ).first()
        if newer is not None:
            record.status = DONE
            record.last_error = f"superseded by job {newer[0]}; {record.last_error}"[:2000]
            return
    session.add(record)
    session.flush()
    try:
        with session.begin_nested():  # a successor may be enqueued after the check (PostgreSQL)
            record.status = READY
            session.flush()
    except IntegrityError:
        record.status = DONE
        record.last_error = f"superseded by a newer job; {record.last_error}"[:2000]


def heartbeat(engine: Engine, job: ClaimedJob, lease_s: float = DEFAULT_LEASE_S) -> None:
    """Extend the lease if this worker still holds it, else raise `LostLease`.

    One conditional UPDATE, never SELECT ... FOR UPDATE first: a heartbeat that locked the row
    and only then found its lease gone would hold that lock while another worker's claim
    (`SKIP LOCKED`) passes over the row, and the expired job would sit unclaimed. A row that
    fails the condition is not locked by the UPDATE, so a takeover never waits for or skips it.
    """
    with write_session(engine) as session:
        now = db_now(session)
        result = session.execute(
            update(JobRecord)
            .where(
                col(JobRecord.id) == job.id,
                col(JobRecord.claim_token) == job.claim_token,
                col(JobRecord.status) == RUNNING,
                col(JobRecord.lease_until) >= now,
            )
            .values(lease_until=now + lease_s)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise LostLease(f"job {job.id} is no longer held by this worker")


def complete(session: Session, job: ClaimedJob) -> None:
    """Mark done in the caller's transaction if this worker still holds the job, else
    `LostLease`: one `UPDATE ... RETURNING` that checks the claim, locks the row and ends the
    job. A job's finish calls it first (the job's row is locked before the order's, as on every
    path); the job's own writes follow, and if one of them fails the completion rolls back with
    them. Under PostgreSQL's READ COMMITTED a row a takeover changed meanwhile is checked again
    once that commits."""
    conn = session.connection()
    values = {"job_id": job.id, "token": job.claim_token}
    if conn.execute(_complete_stmt(conn.dialect.name), values).first() is None:
        raise LostLease(f"job {job.id} is no longer held by this worker")


@cache
def _complete_stmt(dialect: str) -> Executable:
    now = db_clock_column(dialect)
    return (
        update(JobRecord)
        .where(*still_held_where(now))
        .values(job_done_values(now))
        .returning(col(JobRecord.id))
    )


def still_held_where(db_clock: Any) -> tuple[ColumnElement[bool], ...]:
    """`_still_held` as SQL conditions on the job's row, for the bound `job_id` and `token`
    (`complete`, `claimed_transitions`)."""
    return (
        col(JobRecord.id) == bindparam("job_id"),
        col(JobRecord.claim_token) == bindparam("token"),
        _status_is(RUNNING),
        col(JobRecord.lease_until) >= db_clock,
    )


def job_done_values(db_clock: Any) -> dict[str, Any]:
    """What ending a job writes on its row (`complete`, `claimed_transitions`)."""
    return {"status": DONE, "lease_until": None, "updated_at": db_clock}


def fail(
    engine: Engine,
    job: ClaimedJob,
    error: str,
    *,
    retry_after_s: float | None = None,
    permanent: bool = False,
    on_dead: OnDead | None = None,
) -> str:
    """Record a failed attempt: back to `ready` after the kind's retry policy's delay (a
    `retry_after_s` from the other side replaces it, or with a policy that says so only lengthens
    it), or `dead` once attempts are used up (or at once when `permanent`). `on_dead` runs in the
    same transaction when the job dies, so a dead letter and its operator alert are committed
    together."""
    with write_session(engine) as session:
        record, now = _owned(session, job)
        record.last_error = error[:2000]
        record.lease_until = None
        record.updated_at = now
        if permanent or record.attempts >= record.max_attempts:
            record.status = DEAD
            if on_dead is not None:
                on_dead(session, record)
        else:
            delay = retry_policy.for_kind(record.kind).delay(record.attempts, retry_after_s)
            record.run_at = now + delay
            _back_to_ready(session, record)
        session.add(record)
        return record.status


def release(engine: Engine, job: ClaimedJob, delay_s: float = 0.0, note: str = "") -> None:
    """Give a job back without counting an attempt (shutdown, or waiting on something else)."""
    with write_session(engine) as session:
        record, now = _owned(session, job)
        if note:
            record.last_error = note[:2000]
        record.attempts = max(0, record.attempts - 1)
        record.lease_until = None
        record.run_at = now + delay_s
        _back_to_ready(session, record)
        session.add(record)


def hand_back(engine: Engine, job: ClaimedJob, delay_s: float, reserved: str, note: str = "") -> None:
    """Give a job back without counting an attempt, due when the rate token reserved for it (the
    bucket key `reserved`) is there; its next claim carries the reservation (`bridge.budget`)."""
    with write_session(engine) as session:
        record, now = _owned(session, job)
        record.status = READY
        if note:
            record.last_error = note[:2000]
        record.attempts = max(0, record.attempts - 1)
        record.lease_until = None
        record.run_at = now + delay_s
        record.reserved = reserved[:200]
        session.add(record)


def retry_dead(engine: Engine, job_id: int) -> bool:
    """Operator action: give a dead job a fresh set of attempts (or, when a newer job with its
    dedupe key already waits, close it as superseded: that job does the work)."""
    with write_session(engine) as session:
        record = (
            session.execute(
                select(JobRecord)
                .where(col(JobRecord.id) == job_id, col(JobRecord.status) == DEAD)
                .with_for_update()
            )
            .scalars()
            .first()
        )
        if record is None:
            return False
        now = db_now(session)
        record.attempts = 0
        record.lost_leases = 0
        record.run_at = now
        record.last_error = ""
        record.updated_at = now
        _back_to_ready(session, record)
        session.add(record)
        return True
