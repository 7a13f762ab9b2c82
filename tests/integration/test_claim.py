"""Claiming: expired leases first, then the oldest due job, through partial indexes, SKIP LOCKED."""

import threading
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from bridge import jobs
from bridge.store import JobRecord, db_now, write_session


def enqueue(db: Engine, n: int, kind: str = "submit", delay_s: float = 0.0) -> None:
    with write_session(db) as session:
        for i in range(n):
            jobs.enqueue(session, kind, payload={"n": i}, delay_s=delay_s)


def test_an_expired_lease_is_taken_over_before_older_ready_jobs(db: Engine) -> None:
    enqueue(db, 1)
    stale = jobs.claim(db, lease_s=-1)  # its worker stopped renewing
    assert stale is not None
    enqueue(db, 3)
    with write_session(db) as session:  # the waiting jobs are even older than the stale one
        session.execute(update(JobRecord).where(JobRecord.id != stale.id).values(run_at=0.0))
    taken = jobs.claim(db)
    assert taken is not None and taken.id == stale.id
    assert taken.claim_token != stale.claim_token and taken.attempts == 2
    with pytest.raises(jobs.LostLease), write_session(db) as session:
        jobs.complete(session, stale)


def test_a_running_job_with_a_live_lease_is_never_claimed(db: Engine) -> None:
    enqueue(db, 1)
    assert jobs.claim(db, lease_s=60) is not None
    assert jobs.claim(db) is None


def test_oldest_due_first_by_run_at_then_id_and_only_the_kinds_asked_for(db: Engine) -> None:
    enqueue(db, 3, kind="sync")
    enqueue(db, 2, kind="submit")
    enqueue(db, 1, kind="submit", delay_s=3600)
    with write_session(db) as session:
        ids = list(session.execute(select(JobRecord.id).order_by(JobRecord.id)).scalars())
        # run_at ties are broken by id; the sync jobs are due last
        for job_id, run_at in zip(ids, (30.0, 20.0, 20.0, 10.0, 10.0, db_now(session) + 3600), strict=True):
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(run_at=run_at))
    order = [job.id for job in iter(lambda: jobs.claim(db, ["submit"]), None)]
    assert order == [ids[3], ids[4]], "the future submit job waits; sync jobs are not asked for"
    order = [job.id for job in iter(lambda: jobs.claim(db), None)]
    assert order == [ids[1], ids[2], ids[0]]


def test_the_claim_reports_how_late_it_picked_the_job_up(db: Engine) -> None:
    enqueue(db, 1)
    with write_session(db) as session:
        session.execute(update(JobRecord).values(run_at=db_now(session) - 2.5))
    job = jobs.claim(db)
    assert job is not None and 2.5 <= job.late_s < 60


def test_both_probes_take_the_head_of_a_partial_index(db: Engine) -> None:
    """The old `ready OR expired` query could use no index and sorted every ready job per claim."""
    is_pg = db.dialect.name == "postgresql"
    dialect = postgresql.dialect() if is_pg else sqlite.dialect()
    with write_session(db) as session:
        session.execute(text("ANALYZE jobs" if is_pg else "ANALYZE"))
    for query, index in (
        (jobs._due_jobs().params(now=1.0), "ix_jobs_due"),
        (jobs._expired_leases().params(now=1.0), "ix_jobs_expiring"),
    ):
        query = query.limit(1)
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        with db.connect() as conn:
            if is_pg:
                conn.execute(text("SET enable_seqscan = off"))  # an empty test table: cost decides nothing
                plan = " ".join(str(r[0]) for r in conn.execute(text("EXPLAIN " + sql)))
            else:
                plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_concurrent_claimers_skip_a_locked_job_instead_of_waiting(db: Engine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers with BEGIN IMMEDIATE")
    enqueue(db, 2)
    with write_session(db) as session:
        first, second = session.execute(select(JobRecord.id).order_by(JobRecord.id)).scalars()
    locked = threading.Event()
    release = threading.Event()

    def hold_the_oldest() -> None:
        with db.connect() as conn, conn.begin():
            conn.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": first})
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_oldest)
    holder.start()
    try:
        assert locked.wait(10)
        result: list[jobs.ClaimedJob | None] = []
        claimer = threading.Thread(target=lambda: result.append(jobs.claim(db)))
        claimer.start()
        claimer.join(5)
        assert not claimer.is_alive(), "the claim waited for the locked row"
        assert result and result[0] is not None and result[0].id == second
    finally:
        release.set()
        holder.join(10)
    taken = jobs.claim(db)
    assert taken is not None and taken.id == first, "the row is claimable once its lock is gone"


def test_many_concurrent_claimers_take_each_job_exactly_once_with_expired_leases_mixed_in(db: Engine) -> None:
    enqueue(db, 40)
    expired = [jobs.claim(db, lease_s=60) for _ in range(10)]  # ten different jobs...
    assert len({job.id for job in expired if job}) == 10
    with db.begin() as conn:  # ...whose workers all stopped renewing their leases
        conn.execute(text("UPDATE jobs SET lease_until = 0 WHERE status = 'running'"))
    taken: list[int] = []
    lock = threading.Lock()

    def drain() -> None:
        while (job := jobs.claim(db, lease_s=60)) is not None:
            with write_session(db) as session:
                jobs.complete(session, job)
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken) == sorted(set(taken)) and len(taken) == 40


def test_on_postgresql_the_usual_claim_is_one_autocommitted_statement(db: Engine) -> None:
    """Found or not, the claim is one round trip: no BEGIN, no COMMIT (the long way, after a
    lease ran out, is covered by the takeover tests above)."""
    if db.dialect.name != "postgresql":
        pytest.skip(
            "the one-statement claim is PostgreSQL's; SQLite claims in one BEGIN IMMEDIATE transaction"
        )
    enqueue(db, 1)
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((statement.split(None, 1)[0].upper(), bool(cursor.connection.autocommit)))

    event.listen(db, "before_cursor_execute", record)
    try:
        job = jobs.claim(db, lease_s=60)
        assert seen == [("WITH", True)]
        assert job is not None and job.attempts == 1 and job.payload == {"n": 0} and job.kind == "submit"
        seen.clear()
        assert jobs.claim(db) is None
        assert seen == [("WITH", True)]
    finally:
        event.remove(db, "before_cursor_execute", record)


def test_the_one_statement_claim_takes_the_head_of_both_partial_indexes(db: Engine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("the one-statement claim is PostgreSQL's")
    with write_session(db) as session:
        session.execute(text("ANALYZE jobs"))
    stmt = jobs._claim_stmt(("submit", "sync_order")).params(token="t", lease_s=60.0)
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with db.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))  # an empty test table: cost decides nothing
        plan = " ".join(str(r[0]) for r in conn.execute(text("EXPLAIN " + sql)))
    assert "ix_jobs_due" in plan and "ix_jobs_expiring" in plan, plan
    assert "Sort" not in plan, plan


def test_a_claim_with_every_kind_has_few_parameters_and_sql_that_never_changes() -> None:
    """A worker's 21 kinds are written into the claim as literals: bound, they were ~40 parameters
    that SQLAlchemy expanded into the SQL at every claim and psycopg (which caches the parsing
    only below 50 parameters) parsed anew each time."""
    from bridge.runtime import HANDLERS

    kinds = tuple(HANDLERS)
    assert len(kinds) > 20
    compiled = jobs._claim_stmt(kinds).compile(dialect=postgresql.dialect())
    assert len(compiled.params) < 10, "the kinds are not parameters"
    assert not compiled.literal_execute_params and not compiled.post_compile_params
    assert all(f"'{kind}'" in str(compiled) for kind in kinds)
    with pytest.raises(ValueError, match="identifiers"):
        jobs._claim_stmt(("submit", "x') OR ('1'='1"))
