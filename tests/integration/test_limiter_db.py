"""DatabaseBuckets shared by real worker processes: together they never outspend one budget.

Runs on a SQLite file always, and on PostgreSQL too when BRIDGE_TEST_DATABASE_URL is set
(e.g. postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import SQLModel, col

from bridge.amazon.errors import LocalThrottle
from bridge.amazon.limiter import DatabaseBuckets, Limit
from bridge.clock import SystemClock
from bridge.settings import normalise_database_url
from bridge.store import RateBucketRecord, make_engine, write_session

RATE = 20.0
BURST = 10.0
DURATION = 1.5
WORKERS = 2


def _worker(url: str, operation: str, ready: Any, go: Any, start_at: Any, results: Any) -> None:
    """One worker process: take tokens as fast as the shared bucket allows until the deadline."""
    engine = make_engine(url)
    buckets = DatabaseBuckets(engine, SystemClock(), limits={operation: Limit(RATE, BURST)})
    with engine.connect():
        pass  # open the pool before the clock starts
    ready.put(os.getpid())
    go.wait(30)
    time.sleep(max(0.0, start_at.value - time.time()))
    deadline = start_at.value + DURATION
    grants: list[float] = []
    while (remaining := deadline - time.time()) > 0:
        try:
            buckets.acquire("acct-shared", operation, max_wait=remaining)
        except LocalThrottle:
            break
        grants.append(time.time())
    engine.dispose()
    results.put(grants)


def _urls() -> list[Any]:
    urls: list[Any] = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get("BRIDGE_TEST_DATABASE_URL"):
        urls.append(pytest.param("postgresql", id="postgresql"))
    return urls


@pytest.fixture(params=_urls())
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'limiter.sqlite3'}"
    else:
        url = normalise_database_url(os.environ["BRIDGE_TEST_DATABASE_URL"])
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def operation(database_url: str) -> Iterator[str]:
    """A bucket name of our own, removed afterwards (the PostgreSQL database may be shared)."""
    name = f"testOp-{uuid.uuid4().hex[:12]}"
    yield name
    engine = make_engine(database_url)
    with write_session(engine) as session:
        session.execute(delete(RateBucketRecord).where(col(RateBucketRecord.key) == f"acct-shared:{name}"))
    engine.dispose()


def test_worker_processes_share_one_rate_budget(database_url: str, operation: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    procs = [
        ctx.Process(target=_worker, args=(database_url, operation, ready, go, start_at, results))
        for _ in range(WORKERS)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        start_at.value = time.time() + 0.2
        go.set()
        per_worker = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)

    grants = sorted(t for worker in per_worker for t in worker)
    start = start_at.value
    # Token bucket law: by any instant t, at most burst + rate * (t - start) tokens were granted.
    # (The bucket row is created at the first acquire, no earlier than `start`.)
    for i, t in enumerate(grants, start=1):
        assert i <= BURST + RATE * (t - start) + 1, f"grant {i} at +{t - start:.3f}s overspends the budget"
    assert len(grants) <= BURST + RATE * DURATION + 1
    # ... and the budget is actually used, by both workers.
    assert len(grants) >= BURST + RATE * DURATION * 0.5
    assert all(len(worker) > 0 for worker in per_worker)
