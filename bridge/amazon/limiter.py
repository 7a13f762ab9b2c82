"""Client-side token buckets that mirror Amazon's SP-API usage plans.

Amazon meters every operation per selling partner + application with a token bucket (refill at
`rate` per second, capped at `burst`). Keeping a copy of that bucket on our side means a burst of
work waits here instead of collecting 429s there. One bucket exists per (account id, operation).

Buckets use *reservations*: `acquire()` always takes a token, possibly driving the balance below
zero, and then sleeps for as long as the debt takes to refill. Waiters are therefore served in
arrival order, and the shared (database) variant needs exactly one short transaction per call,
never one held across the sleep. Inside a worker's job (`bridge.budget`) a long wait is not slept:
the token stays reserved for the job, which goes back to the queue until the token is there.

Two implementations share the `Buckets` protocol:

- `MemoryBuckets`: one process, thread-safe.
- `DatabaseBuckets`: the `rate_buckets` table, so several worker processes (or machines) spend one
  budget. Time comes from the database's clock (`db_now`) so processes with drifting clocks agree.

The same buckets also hold a Shopify shop's GraphQL *cost* bucket (`pipeline/shop_budget.py`):
there a call takes `cost` points instead of one token, the bucket's size and rate come from what
Shopify reports (`limit=`), and each answer settles the reservation (`settle`: Shopify refunds
what a query did not use, and its own count of what is left wins when lower).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Float, Table, bindparam, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Executable
from sqlmodel import Session

from bridge import budget as job_budget
from bridge.clock import Clock
from bridge.store import (
    RateBucketRecord,
    commit_without_waiting_for_disk,
    db_clock_column,
    db_now,
    one_statement,
    without_waiting_for_disk_columns,
    write_session,
)

from .errors import LocalThrottle


@dataclass(frozen=True)
class Limit:
    """A usage plan: `rate` requests per second, at most `burst` in a row after a quiet spell."""

    rate: float
    burst: float


FULFILLMENT_OUTBOUND_LIMIT = Limit(rate=2.0, burst=30.0)

#: Documented usage plans (Fulfillment Outbound 2020-07-01, FBA Inventory v1). Unknown operations
#: get the default.
DEFAULT_LIMITS: Mapping[str, Limit] = {
    "getFulfillmentPreview": FULFILLMENT_OUTBOUND_LIMIT,
    "createFulfillmentOrder": FULFILLMENT_OUTBOUND_LIMIT,
    "getFulfillmentOrder": FULFILLMENT_OUTBOUND_LIMIT,
    "listAllFulfillmentOrders": FULFILLMENT_OUTBOUND_LIMIT,
    "updateFulfillmentOrder": FULFILLMENT_OUTBOUND_LIMIT,
    "cancelFulfillmentOrder": FULFILLMENT_OUTBOUND_LIMIT,
    "getPackageTrackingDetails": FULFILLMENT_OUTBOUND_LIMIT,
    "listReturnReasonCodes": FULFILLMENT_OUTBOUND_LIMIT,
    "createFulfillmentReturn": FULFILLMENT_OUTBOUND_LIMIT,
    "getFeatures": FULFILLMENT_OUTBOUND_LIMIT,
    "getFeatureInventory": FULFILLMENT_OUTBOUND_LIMIT,
    "getFeatureSKU": FULFILLMENT_OUTBOUND_LIMIT,
    "deliveryOffers": Limit(rate=5.0, burst=30.0),
    # Notifications API v1 (destinations are per application, subscriptions per seller).
    "getDestinations": Limit(rate=1.0, burst=5.0),
    "createDestination": Limit(rate=1.0, burst=5.0),
    "getSubscription": Limit(rate=1.0, burst=5.0),
    "createSubscription": Limit(rate=1.0, burst=5.0),
    "deleteSubscriptionById": Limit(rate=1.0, burst=5.0),
    # FBA Inventory v1 (its own usage plan: 2 requests/s, burst 2).
    "getInventorySummaries": Limit(rate=2.0, burst=2.0),
}

_MAX_RATE = 1000.0
_KEY_MAX = 200


@dataclass(frozen=True)
class BucketState:
    tokens: float
    rate: float
    burst: float


class Buckets(Protocol):
    """What the SP-API client needs from a rate limiter."""

    def acquire(self, account_id: str, operation: str, *, max_wait: float | None = None) -> float:
        """Take one token, sleeping (on the injected clock) until it is ours; return seconds waited.

        With `max_wait`, raise `LocalThrottle` (taking nothing) instead of waiting longer.
        """
        ...

    def observe_rate(self, account_id: str, operation: str, rate: float) -> None:
        """Adopt the rate Amazon reported in `x-amzn-RateLimit-Limit` (ignored if not a sane number)."""
        ...

    def drain(self, account_id: str, operation: str) -> None:
        """Amazon said 429: its bucket is empty, so ours is too (outstanding reservations stay)."""
        ...


def bucket_key(account_id: str, operation: str) -> str:
    key = f"{account_id}:{operation}"
    if len(key) > _KEY_MAX:
        raise ValueError(f"rate bucket key longer than {_KEY_MAX} characters; shorten the account id")
    return key


def sane_rate(rate: float) -> bool:
    return math.isfinite(rate) and 0 < rate <= _MAX_RATE


def _refill(tokens: float, updated: float, rate: float, burst: float, now: float) -> float:
    return min(burst, tokens + max(0.0, now - updated) * rate)


def _reserve(tokens: float, rate: float, max_wait: float | None, cost: float = 1.0) -> tuple[float, float]:
    """(balance after taking `cost` tokens, seconds until they are covered)."""
    after = tokens - cost
    wait = _covered_in(after, rate)
    if max_wait is not None and wait > max_wait:
        raise LocalThrottle(
            message=f"the local rate budget needs {wait:.1f}s, more than the {max_wait:.1f}s allowed; "
            "nothing was sent, try again later",
            retry_after=wait,
        )
    return after, wait


def _covered_in(balance: float, rate: float) -> float:
    """Seconds until a balance (negative: tokens taken ahead) is back at zero."""
    return 0.0 if balance >= 0 else -balance / rate


def _prepaid(key: str) -> bool:
    """Spend a token this job reserved before it was handed back (see `bridge.budget`)."""
    current = job_budget.current()
    if current is None or key not in current.prepaid:
        return False
    current.prepaid.discard(key)
    current.spent = True
    return True


def _hand_back_instead(key: str, wait: float) -> bool:
    """Whether the job in progress should go back to the queue rather than sleep `wait` seconds;
    if so the reservation just made is noted for it (the caller raises after committing)."""
    current = job_budget.current()
    if current is None:
        return False
    if current.may_hand_back(wait):
        current.reserved = key
        return True
    current.spent = True
    return False


def _handed_back(wait: float) -> LocalThrottle:
    return LocalThrottle(
        message=f"the account's rate budget has no token for {wait:.1f}s; one is reserved and the job "
        "goes back to the queue until then; nothing was sent",
        retry_after=wait,
    )


#: Tokens of Amazon's burst we never spend. Our bucket starts counting when a request leaves the
#: limiter, Amazon's when it arrives a few milliseconds later; without headroom the first request
#: after an exhausted burst can arrive just before Amazon's refill and draw a 429 (bench/submit.py
#: showed exactly one per run). One token of headroom costs nothing in steady throughput.
BURST_HEADROOM = 1.0


class _LimitTable:
    def __init__(self, limits: Mapping[str, Limit] | None, default: Limit) -> None:
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._default = default

    def __call__(self, operation: str) -> Limit:
        limit = self._limits.get(operation, self._default)
        return Limit(limit.rate, max(1.0, limit.burst - BURST_HEADROOM))


def _settled(tokens: float, burst: float, refund: float, available: float | None) -> float:
    tokens = min(burst, tokens + max(0.0, refund))
    return tokens if available is None else min(tokens, available)


class MemoryBuckets:
    """Token buckets in this process's memory; safe to share between threads."""

    def __init__(
        self,
        clock: Clock,
        *,
        limits: Mapping[str, Limit] | None = None,
        default: Limit = FULFILLMENT_OUTBOUND_LIMIT,
    ) -> None:
        self._clock = clock
        self._limit = _LimitTable(limits, default)
        self._lock = threading.Lock()
        self._state: dict[str, list[float]] = {}  # key -> [tokens, updated, rate, burst]

    def _current(self, key: str, operation: str, limit: Limit | None = None) -> list[float]:
        now = self._clock.monotonic()
        state = self._state.get(key)
        if state is None:
            limit = limit or self._limit(operation)
            state = self._state[key] = [limit.burst, now, limit.rate, limit.burst]
        state[0] = _refill(state[0], state[1], state[2], state[3], now)
        state[1] = now
        return state

    def acquire(
        self,
        account_id: str,
        operation: str,
        *,
        max_wait: float | None = None,
        cost: float = 1.0,
        limit: Limit | None = None,
    ) -> float:
        key = bucket_key(account_id, operation)
        if _prepaid(key):
            return 0.0
        with self._lock:
            state = self._current(key, operation, limit)
            state[0], wait = _reserve(state[0], state[2], max_wait, cost)
        if _hand_back_instead(key, wait):
            raise _handed_back(wait)
        self._clock.sleep(wait)
        return wait

    def observe_rate(self, account_id: str, operation: str, rate: float) -> None:
        if not sane_rate(rate):
            return
        with self._lock:
            self._current(bucket_key(account_id, operation), operation)[2] = rate

    def drain(self, account_id: str, operation: str) -> None:
        with self._lock:
            state = self._current(bucket_key(account_id, operation), operation)
            state[0] = min(state[0], 0.0)

    def settle(
        self,
        account_id: str,
        operation: str,
        *,
        refund: float = 0.0,
        available: float | None = None,
        limit: Limit | None = None,
    ) -> None:
        """The remote side answered: give back `refund` (reserved but not charged), take its count
        of what is left (`available`) when lower than ours, adopt its size and rate (`limit`)."""
        with self._lock:
            state = self._current(bucket_key(account_id, operation), operation, limit)
            if limit is not None and sane_rate(limit.rate) and limit.burst > 0:
                state[2], state[3] = limit.rate, limit.burst
            state[0] = _settled(state[0], state[3], refund, available)

    def peek(self, account_id: str, operation: str) -> BucketState:
        with self._lock:
            tokens, _, rate, burst = self._current(bucket_key(account_id, operation), operation)
        return BucketState(tokens, rate, burst)


_NO_LIMIT = 1e12  # seconds: `max_wait` when the caller sets none


def _later(updated: Any, now: Any) -> Any:
    """The bucket's new `updated`: never earlier than the stored one. A process whose clock
    reads earlier (a lagging host, or a clock read that lost a race to a later writer) then
    refills nothing, instead of setting the bucket back and counting that interval twice."""
    return case((now > updated, now), else_=updated)


@cache
def _take_stmt(dialect: str, db_clock: bool) -> Executable:
    """Refill, take `cost` tokens and write back, in one `UPDATE ... RETURNING`, unless that
    would leave more than `max_wait` seconds of debt (then no row is returned, nothing changes).

    The same arithmetic as `_refill` and `_reserve`, in SQL, with one reading of the clock for
    the whole statement (PostgreSQL's `statement_timestamp()`: `clock_timestamp()` would read
    anew at each of its uses). On PostgreSQL the row lock is the update's own, and a row another
    writer held is evaluated again once that writer commits; a clock read before that writer's
    `updated` then refills nothing (`_later`)."""
    t = RateBucketRecord.metadata.tables[RateBucketRecord.__tablename__]
    now: Any = db_clock_column(dialect, statement_start=True) if db_clock else bindparam("now", type_=Float)
    gained = case((now > t.c.updated, (now - t.c.updated) * t.c.rate), else_=0.0)
    refilled = case((t.c.tokens + gained > t.c.burst, t.c.burst), else_=t.c.tokens + gained)
    after = refilled - bindparam("cost", type_=Float)
    no_disk_wait = without_waiting_for_disk_columns(dialect)  # as `_transaction`, minus a round trip
    return (
        update(t)
        .where(t.c.key == bindparam("bucket"), after >= -bindparam("max_wait", type_=Float) * t.c.rate)
        .values(tokens=after, updated=_later(t.c.updated, now))
        .returning(t.c.tokens, t.c.rate, *no_disk_wait)
    )


class DatabaseBuckets:
    """Token buckets in the `rate_buckets` table, shared by every process using the database.

    Each operation is one short write transaction that refills the bucket by the database clock,
    takes a token, writes it back and commits; any sleeping happens after the commit. The usual
    acquire is a single `UPDATE ... RETURNING` (`_take_stmt`); everything else locks the row
    first (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite the write session's `BEGIN
    IMMEDIATE` already serialises writers). A row that does not exist yet is created with a full
    bucket by an `INSERT ... ON CONFLICT DO NOTHING`, so two processes racing to create it cannot
    collide.

    `use_db_clock=False` takes time from the injected clock instead (for tests on a ManualClock).
    Database errors propagate: the caller's job fails and is retried like any other outage.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        limits: Mapping[str, Limit] | None = None,
        default: Limit = FULFILLMENT_OUTBOUND_LIMIT,
        use_db_clock: bool = True,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._limit = _LimitTable(limits, default)
        self._use_db_clock = use_db_clock
        self._table: Table = RateBucketRecord.metadata.tables[RateBucketRecord.__tablename__]
        self._seen_rates: dict[str, float] = {}
        self._seen_lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """One bucket operation's write transaction. Its commit does not wait for the disk
        (`commit_without_waiting_for_disk`): a token update lost in a database crash hands out
        a few tokens again."""
        with write_session(self._engine) as session:
            commit_without_waiting_for_disk(session.connection())
            yield session

    def _now(self, session: Session) -> float:
        return db_now(session) if self._use_db_clock else self._clock.now().timestamp()

    def _locked(
        self, session: Session, key: str, operation: str, limit: Limit | None = None
    ) -> tuple[BucketState, float]:
        """The bucket's row, locked for this transaction and refilled up to now, and that now.

        The database's clock is read in the locking statement itself. On PostgreSQL a row another
        writer held is read again once that writer commits (its update makes PostgreSQL evaluate
        the statement anew, clock included), so the refill never counts the time spent waiting
        twice; on SQLite `BEGIN IMMEDIATE` took the lock before the statement ran."""
        t = self._table
        dialect = session.get_bind().dialect.name
        columns: list[Any] = [t.c.tokens, t.c.updated, t.c.rate, t.c.burst]
        if self._use_db_clock:
            columns.append(db_clock_column(dialect))
        query = select(*columns).where(t.c.key == key).with_for_update()
        row = session.execute(query).first()
        if row is None:
            now = self._now(session)
            limit = limit or self._limit(operation)
            insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
            session.execute(
                insert(t)
                .values(key=key, tokens=limit.burst, updated=now, rate=limit.rate, burst=limit.burst)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            row = session.execute(query).one()
        tokens, updated, rate, burst = (float(v) for v in row[:4])
        now = float(row[4]) if self._use_db_clock else self._clock.now().timestamp()
        return BucketState(_refill(tokens, updated, rate, burst, now), rate, burst), now

    def _write(
        self,
        session: Session,
        key: str,
        now: float,
        tokens: float,
        rate: float | None = None,
        burst: float | None = None,
    ) -> None:
        t = self._table
        values: dict[str, Any] = {"tokens": tokens, "updated": _later(t.c.updated, now)}
        if rate is not None:
            values["rate"] = rate
        if burst is not None:
            values["burst"] = burst
        session.execute(update(t).where(t.c.key == key).values(**values))

    def acquire(
        self,
        account_id: str,
        operation: str,
        *,
        max_wait: float | None = None,
        cost: float = 1.0,
        limit: Limit | None = None,
    ) -> float:
        key = bucket_key(account_id, operation)
        if _prepaid(key):
            return 0.0
        wait = self._take(key, max_wait, cost)
        if wait is None:  # no row yet, or more than `max_wait` of debt: decided the long way
            with self._transaction() as session:
                state, now = self._locked(session, key, operation, limit)
                tokens, wait = _reserve(state.tokens, state.rate, max_wait, cost)
                self._write(session, key, now, tokens)
        if _hand_back_instead(key, wait):
            raise _handed_back(wait)
        self._clock.sleep(wait)
        return wait

    def _take(self, key: str, max_wait: float | None, cost: float) -> float | None:
        """The usual acquire as one statement (`_take_stmt`): the seconds until the token taken
        is covered, or None when the bucket has no row yet or the wait would exceed `max_wait`
        (nothing taken then). Every job spends two tokens; the locking read, the write and the
        ORM session of the long way cost 0.5 ms of the worker's CPU each time on PostgreSQL, and
        BEGIN and COMMIT around the statement another 0.1 ms (now autocommitted: `one_statement`;
        its `set_config` still spares the commit the wait for the disk)."""
        values: dict[str, Any] = {
            "bucket": key,
            "cost": cost,
            "max_wait": _NO_LIMIT if max_wait is None else max_wait,
        }
        if not self._use_db_clock:
            values["now"] = self._clock.now().timestamp()
        with one_statement(self._engine) as conn:
            row = conn.execute(_take_stmt(conn.dialect.name, self._use_db_clock), values).first()
        if row is None:
            return None
        tokens, rate = float(row[0]), float(row[1])
        with self._seen_lock:  # the answer's rate header usually repeats it: `observe_rate` skips
            self._seen_rates[key] = rate
        return _covered_in(tokens, rate)

    def observe_rate(self, account_id: str, operation: str, rate: float) -> None:
        if not sane_rate(rate):
            return
        key = bucket_key(account_id, operation)
        with self._seen_lock:
            # Most responses repeat the rate we already stored: skip the write transaction then.
            if self._seen_rates.get(key) == rate:
                return
        with self._transaction() as session:
            state, now = self._locked(session, key, operation)
            if state.rate != rate:
                self._write(session, key, now, state.tokens, rate)
        with self._seen_lock:
            self._seen_rates[key] = rate

    def drain(self, account_id: str, operation: str) -> None:
        key = bucket_key(account_id, operation)
        with self._transaction() as session:
            state, now = self._locked(session, key, operation)
            self._write(session, key, now, min(state.tokens, 0.0))

    def settle(
        self,
        account_id: str,
        operation: str,
        *,
        refund: float = 0.0,
        available: float | None = None,
        limit: Limit | None = None,
    ) -> None:
        """As `MemoryBuckets.settle`, in one short write transaction."""
        key = bucket_key(account_id, operation)
        with self._transaction() as session:
            state, now = self._locked(session, key, operation, limit)
            rate, burst = state.rate, state.burst
            if limit is not None and sane_rate(limit.rate) and limit.burst > 0:
                rate, burst = limit.rate, limit.burst
            tokens = _settled(state.tokens, burst, refund, available)
            self._write(session, key, now, tokens, rate, burst)

    def peek(self, account_id: str, operation: str) -> BucketState:
        key = bucket_key(account_id, operation)
        with self._transaction() as session:
            return self._locked(session, key, operation)[0]
