"""Token buckets: burst, refill, Amazon's rate header, 429 drain, and the shared database variant."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import SQLModel

from bridge.amazon.errors import LocalThrottle
from bridge.amazon.limiter import BURST_HEADROOM, Buckets, DatabaseBuckets, Limit, MemoryBuckets
from bridge.clock import ManualClock
from bridge.store import make_engine


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "database"])
def buckets(request: pytest.FixtureRequest, clock: ManualClock, tmp_path) -> Iterator[Buckets]:
    if request.param == "memory":
        yield MemoryBuckets(clock)
        return
    engine = make_engine(f"sqlite:///{tmp_path / 'buckets.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    yield DatabaseBuckets(engine, clock, use_db_clock=False)
    engine.dispose()


#: What we spend of Amazon's burst of 30 before waiting (one token stays unspent as headroom).
SPENDABLE = int(30 - BURST_HEADROOM)


def take(buckets: Buckets, n: int, op: str = "createFulfillmentOrder", account: str = "acct") -> list[float]:
    return [buckets.acquire(account, op) for _ in range(n)]


def test_full_burst_is_granted_without_waiting(buckets: Buckets, clock: ManualClock) -> None:
    start = clock.monotonic()
    assert take(buckets, SPENDABLE) == [0.0] * SPENDABLE
    assert clock.monotonic() == start


def test_one_token_of_amazons_burst_stays_unspent(buckets: Buckets) -> None:
    """Our bucket starts when a request leaves, Amazon's when it arrives: the headroom keeps the
    first request after an exhausted burst from arriving a few milliseconds too early (a 429)."""
    assert BURST_HEADROOM == 1
    waits = take(buckets, 30)
    assert waits[:29] == [0.0] * 29 and waits[29] == pytest.approx(0.5, abs=0.01)


def test_after_the_burst_tokens_come_at_the_documented_rate(buckets: Buckets, clock: ManualClock) -> None:
    take(buckets, SPENDABLE)
    start = clock.monotonic()
    waits = take(buckets, 4)
    assert waits == pytest.approx([0.5, 0.5, 0.5, 0.5], abs=0.01)
    assert clock.monotonic() - start == pytest.approx(2.0, abs=0.05)


def test_idle_time_refills_up_to_the_burst_and_no_further(buckets: Buckets, clock: ManualClock) -> None:
    take(buckets, SPENDABLE)
    clock.advance(3600)
    assert take(buckets, SPENDABLE) == [0.0] * SPENDABLE
    assert buckets.acquire("acct", "createFulfillmentOrder") == pytest.approx(0.5, abs=0.01)


def test_buckets_are_separate_per_account_and_operation(buckets: Buckets) -> None:
    take(buckets, SPENDABLE, "createFulfillmentOrder", "a")
    assert buckets.acquire("a", "getFulfillmentOrder") == 0.0
    assert buckets.acquire("b", "createFulfillmentOrder") == 0.0
    assert buckets.acquire("a", "createFulfillmentOrder") > 0


def test_rate_header_from_amazon_replaces_the_seeded_rate(buckets: Buckets) -> None:
    take(buckets, SPENDABLE)
    buckets.observe_rate("acct", "createFulfillmentOrder", 10.0)
    assert buckets.acquire("acct", "createFulfillmentOrder") == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("nonsense", [0.0, -1.0, float("nan"), float("inf"), 1e9])
def test_nonsense_rate_headers_are_ignored(buckets: Buckets, nonsense: float) -> None:
    take(buckets, SPENDABLE)
    buckets.observe_rate("acct", "createFulfillmentOrder", nonsense)
    assert buckets.acquire("acct", "createFulfillmentOrder") == pytest.approx(0.5, abs=0.01)


def test_a_429_drains_the_bucket(buckets: Buckets) -> None:
    take(buckets, 5)
    buckets.drain("acct", "createFulfillmentOrder")
    assert buckets.acquire("acct", "createFulfillmentOrder") == pytest.approx(0.5, abs=0.01)


def test_max_wait_refuses_without_taking_a_token(buckets: Buckets) -> None:
    take(buckets, SPENDABLE)
    with pytest.raises(LocalThrottle) as info:
        buckets.acquire("acct", "createFulfillmentOrder", max_wait=0.1)
    assert info.value.retry_after == pytest.approx(0.5, abs=0.01)
    assert not info.value.ambiguous
    assert buckets.acquire("acct", "createFulfillmentOrder", max_wait=1.0) == pytest.approx(0.5, abs=0.01)


def test_custom_limits_apply_per_operation(clock: ManualClock) -> None:
    buckets = MemoryBuckets(clock, limits={"slowOp": Limit(rate=0.5, burst=1)})
    assert buckets.acquire("acct", "slowOp") == 0.0
    assert buckets.acquire("acct", "slowOp") == pytest.approx(2.0)
    assert buckets.peek("acct", "otherOp").burst == 30 - BURST_HEADROOM


class FrozenClock(ManualClock):
    """Time stands still; sleeps are only recorded, so every reservation is visible in the waits."""

    def sleep(self, seconds: float) -> None:
        pass


def test_concurrent_takers_each_get_their_own_slot() -> None:
    buckets = MemoryBuckets(FrozenClock(), limits={"op": Limit(rate=1.0, burst=10)})
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            wait = buckets.acquire("acct", "op")
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 40 takers, burst 10 (9 spendable), 1 token/s: nine go at once, the rest queue one second
    # apart. A lost update between threads would show up as two takers sharing a slot.
    assert sorted(waits) == [0.0] * 9 + [float(n) for n in range(1, 32)]


def test_database_buckets_keep_state_in_the_table(clock: ManualClock, tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    first = DatabaseBuckets(engine, clock, use_db_clock=False)
    second = DatabaseBuckets(engine, clock, use_db_clock=False)  # another worker, same database
    take(first, 20)
    take(second, SPENDABLE - 20)
    assert first.acquire("acct", "createFulfillmentOrder") == pytest.approx(0.5, abs=0.01)
    second.observe_rate("acct", "createFulfillmentOrder", 4.0)
    assert first.peek("acct", "createFulfillmentOrder").rate == 4.0
    engine.dispose()


def test_a_rate_header_that_repeats_the_stored_rate_costs_no_transaction(
    clock: ManualClock, tmp_path
) -> None:
    """A worker's first answer from each account repeats the rate its token take just read:
    nothing to write (after a start, that was a write transaction per account and operation)."""
    from sqlalchemy import event

    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    buckets = DatabaseBuckets(engine, clock, use_db_clock=False)
    DatabaseBuckets(engine, clock, use_db_clock=False).acquire("acct", "createFulfillmentOrder")  # the row
    buckets.acquire("acct", "createFulfillmentOrder")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    buckets.observe_rate("acct", "createFulfillmentOrder", 2.0)
    assert statements == []
    buckets.observe_rate("acct", "createFulfillmentOrder", 4.0)  # a new rate is still written
    assert any(s.startswith("UPDATE rate_buckets") for s in statements)
    assert buckets.peek("acct", "createFulfillmentOrder").rate == 4.0
    engine.dispose()


def test_a_clock_that_reads_earlier_never_sets_the_bucket_back(clock: ManualClock, tmp_path) -> None:
    """Two workers whose clocks disagree by 5 s share one bucket: the lagging one refills
    nothing, and the bucket keeps the later time, so those 5 s (10 tokens) are not refilled
    twice when the other worker takes again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    lagging_clock = ManualClock(clock.now() - timedelta(seconds=5))
    ahead, lagging = (
        DatabaseBuckets(engine, clock, use_db_clock=False),
        DatabaseBuckets(engine, lagging_clock, use_db_clock=False),
    )
    take(ahead, SPENDABLE)
    assert lagging.acquire("acct", "createFulfillmentOrder") == pytest.approx(0.5)
    # Set back, the bucket would refill 5 s (10 tokens) here and answer 0.
    assert ahead.acquire("acct", "createFulfillmentOrder") == pytest.approx(1.0)
    lagging.drain("acct", "createFulfillmentOrder")  # the long way (`_write`) keeps it too
    # `ahead` slept its 1 s: two tokens refilled, one taken, a debt of one (0.5 s); set back
    # by the drain, the bucket would have refilled 5.5 s instead.
    assert ahead.acquire("acct", "createFulfillmentOrder") == pytest.approx(0.5)
    engine.dispose()


def test_database_buckets_on_the_database_clock(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    SQLModel.metadata.create_all(engine)
    buckets = DatabaseBuckets(engine, ManualClock())
    started = time.monotonic()
    assert take(buckets, SPENDABLE) == [0.0] * SPENDABLE
    wait = buckets.acquire("acct", "createFulfillmentOrder")
    elapsed = time.monotonic() - started
    # The ManualClock never moves, so a wait shorter than half a second (one token at 2/s) shows
    # the database's clock ran on during the takes; by how much depends on the machine's load.
    assert max(0.0, 0.5 - elapsed) - 0.01 <= wait < 0.5
    engine.dispose()
