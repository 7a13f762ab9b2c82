"""Which commits wait for the disk on PostgreSQL: a claim and a rate-token write do not (their
loss in a database crash is a lease that ran out, or a few tokens handed out again); a job's
result, a queued job and everything else do (bridge.store.commit_without_waiting_for_disk)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bridge import jobs
from bridge.amazon.limiter import DatabaseBuckets
from bridge.clock import SystemClock
from bridge.store import write_session

NO_WAIT = "SET LOCAL synchronous_commit TO OFF"


@pytest.fixture
def pg(db: Engine) -> Engine:
    if db.dialect.name != "postgresql":
        pytest.skip(
            "PostgreSQL only (BRIDGE_TEST_DATABASE_URL): SQLite's commits do not wait on a WAL flush here"
        )
    return db


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def run(engine: Engine, action: Callable[[], object]) -> list[str]:
    with statements(engine) as seen:
        action()
    return seen


def test_claims_and_rate_tokens_do_not_wait_for_the_disk_but_results_and_new_jobs_do(pg: Engine) -> None:
    def enqueue() -> None:
        with write_session(pg) as session:
            jobs.enqueue(session, "submit", payload={"n": 1})

    assert NO_WAIT not in run(pg, enqueue)
    claimed: list[jobs.ClaimedJob | None] = []
    assert NO_WAIT in run(pg, lambda: claimed.append(jobs.claim(pg)))
    job = claimed[0]
    assert job is not None

    def complete() -> None:
        with write_session(pg) as session:
            jobs.complete(session, job, jobs.assert_held(session, job))

    assert NO_WAIT not in run(pg, complete)
    buckets = DatabaseBuckets(pg, SystemClock())
    assert NO_WAIT in run(pg, lambda: buckets.acquire("acct", "createFulfillmentOrder"))
    with pg.connect() as conn:  # the pool hands the same connection out again: LOCAL ended with its commit
        assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
