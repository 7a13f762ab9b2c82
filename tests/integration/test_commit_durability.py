"""Which commits wait for the disk on PostgreSQL: a claim and a rate-token write do not (their
loss in a database crash is a lease that ran out, or a few tokens handed out again); a job's
result, a queued job and everything else do (bridge.store.commit_without_waiting_for_disk)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from bridge import jobs
from bridge.amazon.limiter import DatabaseBuckets
from bridge.clock import SystemClock
from bridge.store import write_session


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
    def enqueue() -> None:
        with write_session(pg) as session:
            jobs.enqueue(session, "submit", payload={"n": 1})

    assert run(pg, enqueue) == ["on"]
    claimed: list[jobs.ClaimedJob | None] = []
    assert run(pg, lambda: claimed.append(jobs.claim(pg))) == ["off"]
    job = claimed[0]
    assert job is not None

    def complete() -> None:
        with write_session(pg) as session:
            jobs.complete(session, job, jobs.assert_held(session, job))

    assert run(pg, complete) == ["on"]
    buckets = DatabaseBuckets(pg, SystemClock())
    # The first acquire creates the bucket's row (the long way), the next takes the one-statement way.
    assert run(pg, lambda: buckets.acquire("acct", "createFulfillmentOrder")) == ["off"]
    assert run(pg, lambda: buckets.acquire("acct", "createFulfillmentOrder")) == ["off"]
    with pg.connect() as conn:  # the pool hands the same connection out again: LOCAL ended with its commit
        assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
