"""A job's rate budget: hand the job back with a reserved token instead of sleeping, then spend it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import SQLModel

from bridge.amazon.errors import LocalThrottle
from bridge.amazon.limiter import BURST_HEADROOM, Buckets, DatabaseBuckets, MemoryBuckets
from bridge.budget import job_budget
from bridge.clock import ManualClock
from bridge.store import make_engine

OP = "createFulfillmentOrder"
KEY = f"acct:{OP}"
SPENDABLE = int(30 - BURST_HEADROOM)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "database"])
def buckets(request: pytest.FixtureRequest, clock: ManualClock, tmp_path) -> Iterator[Buckets]:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        yield MemoryBuckets(clock)
        return
    engine = make_engine(f"sqlite:///{tmp_path / 'buckets.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    yield DatabaseBuckets(engine, clock, use_db_clock=False)
    engine.dispose()


def tokens(buckets: Buckets) -> float:
    return buckets.peek("acct", OP).tokens  # type: ignore[attr-defined]


def empty(buckets: Buckets) -> None:
    for _ in range(SPENDABLE):
        assert buckets.acquire("acct", OP) == 0.0


def test_a_long_wait_reserves_the_token_and_hands_the_job_back_without_sleeping(
    buckets: Buckets, clock: ManualClock
) -> None:
    empty(buckets)
    before = clock.monotonic()
    with job_budget(0.25) as budget, pytest.raises(LocalThrottle) as raised:
        buckets.acquire("acct", OP)
    assert clock.monotonic() == before, "the worker did not sleep"
    assert raised.value.retry_after == pytest.approx(0.5)
    assert budget.reserved == KEY
    assert tokens(buckets) == pytest.approx(-1.0), "the token is reserved: later callers queue behind it"


def test_jobs_handed_back_one_after_another_get_successive_tokens(buckets: Buckets) -> None:
    empty(buckets)
    waits = []
    for _ in range(3):
        with job_budget(0.25), pytest.raises(LocalThrottle) as raised:
            buckets.acquire("acct", OP)
        waits.append(raised.value.retry_after)
    assert waits == pytest.approx([0.5, 1.0, 1.5]), "spread at the refill rate, not a herd"


def test_the_next_run_spends_its_reserved_token_without_taking_another(buckets: Buckets) -> None:
    empty(buckets)
    with job_budget(0.25), pytest.raises(LocalThrottle):
        buckets.acquire("acct", OP)
    balance = tokens(buckets)
    with job_budget(0.25, prepaid=KEY) as budget:
        assert buckets.acquire("acct", OP) == 0.0
        assert tokens(buckets) == pytest.approx(balance)
        assert budget.spent and not budget.prepaid
        # a second call of the same run is not prepaid, and after a token a run never goes back
        wait = buckets.acquire("acct", OP)
    assert wait == pytest.approx(1.0)


def test_a_short_wait_is_slept_and_outside_a_job_nothing_changes(
    buckets: Buckets, clock: ManualClock
) -> None:
    empty(buckets)
    with job_budget(1.0) as budget:
        assert buckets.acquire("acct", OP) == pytest.approx(0.5)
    assert budget.reserved is None and budget.spent
    assert buckets.acquire("acct", OP) == pytest.approx(0.5), "no budget: the caller sleeps as before"


def test_a_prepaid_token_of_another_bucket_is_not_spent(buckets: Buckets) -> None:
    with job_budget(0.25, prepaid="acct:getFulfillmentPreview") as budget:
        assert buckets.acquire("acct", OP) == 0.0
    assert tokens(buckets) == pytest.approx(SPENDABLE - 1)
    assert budget.prepaid == {"acct:getFulfillmentPreview"}
