"""Which commits wait for the disk on PostgreSQL: a claim and a rate-token write do not (their
loss in a database crash is a lease that ran out, or a few tokens handed out again); a job's
result, a queued job and everything else do (bridge.store.commit_without_waiting_for_disk).
Read sessions and one-statement writes run autocommitted there (bridge.store.read_session,
one_statement); what that changes and what it must not is checked here too."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine

from bridge import jobs
from bridge.amazon.limiter import DatabaseBuckets, Limit
from bridge.clock import SystemClock
from bridge.store import one_statement, read_session, write_session


@pytest.fixture
def pg(db: Engine) -> Engine:
    if db.dialect.name != "postgresql":
        pytest.skip(
            "PostgreSQL only (BRIDGE_TEST_DATABASE_URL): SQLite's commits do not wait on a WAL flush here"
        )
    return db


@contextmanager
def commit_settings(engine: Engine) -> Iterator[list[str]]:
    """`synchronous_commit` as each commit that wrote something found it (read just before the
    commit, on its connection): whether that commit waits for the disk, however the setting was
    made. A transaction that wrote nothing has no WAL to wait for and is left out."""
    seen: list[str] = []

    def record(conn: Connection) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                "SELECT current_setting('synchronous_commit'), txid_current_if_assigned() IS NOT NULL"
            )
            setting, wrote = cursor.fetchone()
            if wrote:
                seen.append(setting)
        finally:
            cursor.close()

    event.listen(engine, "commit", record)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", record)


def run(engine: Engine, action: Callable[[], object]) -> list[str]:
    with commit_settings(engine) as seen:
        action()
    assert seen, "the action committed nothing"
    return seen


def test_claims_and_rate_tokens_do_not_wait_for_the_disk_but_results_and_new_jobs_do(pg: Engine) -> None:
    """The transactions, seen by the commit event. The usual claim and token take are single
    autocommitted statements, which that event cannot see: counted in the next test."""

    def enqueue() -> None:
        with write_session(pg) as session:
            jobs.enqueue(session, "submit", payload={"n": 1})

    assert run(pg, enqueue) == ["on"]
    job = jobs.claim(pg, lease_s=0.01)  # the one-statement way
    assert job is not None
    time.sleep(0.05)
    # The claim after a lease ran out goes the long way, a transaction.
    claimed: list[jobs.ClaimedJob | None] = []
    assert run(pg, lambda: claimed.append(jobs.claim(pg))) == ["off"]
    job = claimed[0]
    assert job is not None

    def complete() -> None:
        with write_session(pg) as session:
            jobs.complete(session, job)

    assert run(pg, complete) == ["on"]
    buckets = DatabaseBuckets(pg, SystemClock())
    # The first acquire creates the bucket's row: the long way, a transaction.
    assert run(pg, lambda: buckets.acquire("acct", "createFulfillmentOrder")) == ["off"]
    with pg.connect() as conn:  # the pool hands the same connection out again: LOCAL ended with its commit
        assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"


def wal_flushes(engine: Engine) -> int:
    """The server's WAL flushes so far, counting the backend of `engine`'s one connection. A
    backend reports its statistics when it goes idle outside a transaction: autocommit."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        return int(conn.exec_driver_sql("SELECT wal_sync FROM pg_stat_wal").scalar_one())


def flushes_for(engine: Engine, action: Callable[[], object], times: int) -> int:
    before = wal_flushes(engine)
    for _ in range(times):
        action()
    return wal_flushes(engine) - before


def test_autocommitted_claims_and_rate_tokens_do_not_wait_for_the_disk(pg: Engine) -> None:
    """The usual claim and token take are one autocommitted statement each; their `set_config`
    must still reach their own commit. Counted by WAL flushes on a one-connection engine: a
    commit that waits flushes once, the ones that do not leave it to the WAL writer (a few
    flushes in all)."""
    single = create_engine(pg.url, pool_size=1, max_overflow=0)
    times = 40

    def control() -> None:  # the same shape, one autocommitted write, waiting for the disk
        with one_statement(single) as conn:
            conn.execute(
                text(
                    "INSERT INTO rate_buckets VALUES ('control', 1, 0, 1, 1) "
                    "ON CONFLICT (key) DO UPDATE SET burst = rate_buckets.burst"
                )
            )

    try:
        flushed = flushes_for(single, control, times)
        if flushed < times:
            pytest.skip(
                f"this server does not flush its WAL per commit ({flushed} flushes for {times} commits)"
            )
        buckets = DatabaseBuckets(single, SystemClock(), default=Limit(rate=1000.0, burst=1000.0))
        buckets.acquire("acct", "anyOperation")  # the row, the long way; no take waits
        takes = flushes_for(single, lambda: buckets.acquire("acct", "anyOperation"), times)
        with write_session(single) as session:
            for n in range(times):
                jobs.enqueue(session, "submit", payload={"n": n})
        claims = flushes_for(single, lambda: jobs.claim(single), times)
        with write_session(single) as session:
            running = session.execute(text("SELECT count(*) FROM jobs WHERE status = 'running'")).scalar_one()
    finally:
        single.dispose()
    assert running == times
    assert takes < times // 4, (
        f"{takes} WAL flushes for {times} token takes: their commits waited for the disk"
    )
    assert claims < times // 4, f"{claims} WAL flushes for {times} claims: their commits waited for the disk"


def test_one_statement_and_read_sessions_autocommit_and_leave_the_pool_transactional(pg: Engine) -> None:
    """On one pooled connection, so the write session below gets the very connection the
    autocommitted uses had."""
    single = create_engine(pg.url, pool_size=1, max_overflow=0)

    def autocommit(conn: Connection) -> bool:
        return bool(conn.connection.driver_connection.autocommit)  # type: ignore[union-attr]

    try:
        with one_statement(single) as conn:
            assert autocommit(conn)
        with read_session(single) as session:
            assert autocommit(session.connection())
            assert session.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
        with pytest.raises(RuntimeError), write_session(single) as session:
            assert not autocommit(session.connection())
            jobs.enqueue(session, "submit", payload={"n": 1})
            session.flush()
            raise RuntimeError("the handler failed")
        with read_session(single) as session:  # the failed write session left nothing
            assert session.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
    finally:
        single.dispose()
