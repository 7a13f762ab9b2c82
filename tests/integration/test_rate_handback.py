"""Many sellers: a worker hands a job back to the queue instead of sleeping on an empty account bucket."""

import pytest
from sqlalchemy import select, update

from bridge import jobs
from bridge.amazon import errors as amz
from bridge.amazon.limiter import BURST_HEADROOM, DatabaseBuckets
from bridge.bootstrap import Bridge
from bridge.pipeline.common import amazon_retry
from bridge.store import JobRecord, read_session, write_session
from bridge.worker import JobContext, Worker

OP = "getFulfillmentPreview"


def rows(bridge: Bridge) -> dict[int, JobRecord]:
    with read_session(bridge.engine) as session:
        return {j.id: j for j in session.execute(select(JobRecord)).scalars() if j.id is not None}


def test_a_job_waiting_for_its_account_goes_back_with_its_token_and_spends_it_next_time(
    bridge: Bridge,
) -> None:
    buckets = DatabaseBuckets(bridge.engine, bridge.clock, use_db_clock=False)
    channel = bridge.config.channels["shop-a"]
    ran: list[int] = []

    def handler(ctx: JobContext) -> None:
        try:
            buckets.acquire("main", OP)
        except amz.SpApiError as exc:
            raise amazon_retry(exc, channel) from None
        ran.append(ctx.job.id)

    for _ in range(int(30 - BURST_HEADROOM)):
        buckets.acquire("main", OP)  # another worker spent the account's burst
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "t")
        jobs.enqueue(session, "t")
    worker = Worker(bridge, {"t": handler}, rate_wait_s=0.25)

    assert worker.run_once() and worker.run_once()
    assert ran == [], "neither job slept in the worker"
    first, second = sorted(rows(bridge).values(), key=lambda j: j.id or 0)
    for job in (first, second):
        assert (job.status, job.attempts, job.reserved) == ("ready", 0, f"main:{OP}")
    assert second.run_at - first.run_at == pytest.approx(0.5, abs=0.2), "successive tokens, not a herd"
    balance = buckets.peek("main", OP).tokens
    assert balance == pytest.approx(-2.0)

    with write_session(bridge.engine) as session:  # their tokens are due
        session.execute(update(JobRecord).values(run_at=0.0))
    assert worker.drain() == 2
    assert sorted(ran) == sorted(j.id for j in (first, second))
    assert buckets.peek("main", OP).tokens == pytest.approx(balance), "the reserved tokens were spent"
    assert {(j.status, j.reserved) for j in rows(bridge).values()} == {("done", None)}


def test_without_a_rate_wait_the_worker_sleeps_as_before(bridge: Bridge) -> None:
    buckets = DatabaseBuckets(bridge.engine, bridge.clock, use_db_clock=False)
    for _ in range(int(30 - BURST_HEADROOM)):
        buckets.acquire("main", OP)
    waited: list[float] = []
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "t")
    Worker(bridge, {"t": lambda ctx: waited.append(buckets.acquire("main", OP))}).drain()
    assert waited == [pytest.approx(0.5)]
