"""Sync benchmark: what does tracking 10,000 open orders at Amazon cost, and how fast does a shipment
reach the storefront?

The issue asks: with 10,000 open orders in the simulator of which 1% change per cycle, print the
SP-API calls per cycle (target: proportional to the changed orders, not to 10,000) and the latency
from Amazon "Shipped" to the storefront fulfilment (target <= one poll interval + 60 s; pushes per
package exactly 1.0).

Set-up, one process, everything on 127.0.0.1:

- the MCF simulator (config/simulator.yaml) served over HTTP on loopback, with Amazon's usage plans
  (2 requests/s, burst 30, per operation) unless `--rate-scale` says otherwise;
- the bridge's worker (`bridge.runtime.make_worker`: sync, sync_order, push, ...) in `--workers`
  threads, reaching the simulator over HTTP (`BRIDGE_SIMULATOR_URL` style) with its rate budget in
  the database (`DatabaseBuckets`), as in production;
- channel `own-shop` (generic platform) pushing signed Standard Webhooks callbacks to the fake
  receiver (`bridge.fakes.generic`) on loopback, which notes when each delivery arrived;
- a fresh SQLite file, or with `--database-url postgresql://...` a fresh `bench_<random>` database on
  that server, dropped afterwards.

Seeding (not measured). The orders are created directly in the simulator (10,000 creates through
the SP-API would take 83 min at 2/s) with creation times in the past, and matching bridge rows are
bulk-inserted: state `submitted`, the simulator's current status and statusUpdatedDate, as if an
earlier sync cycle had read them, plus the account's sync cursor at the start of the run. Every
order is open (Planning or Processing). Creation times are placed so that in each poll window
exactly `--changed` orders (default 1% of `--orders`) make one status change:

- `--ship-share` of them (default half) ship (Processing -> Complete: one getFulfillmentOrder, one
  getPackageTrackingDetails per package, one push per package); `--two-package-share` of those
  (default 10%) hold two units of a split SKU, so two packages in two shipments;
- the others start picking (Planning -> Processing: one getFulfillmentOrder);
- the rest of the orders make no change during the run (no milestone from 5 min before the start
  to one interval after the end), and a steady-state set of orders changed in the 5 minutes
  before the start, so the first listing's overlap window is as full as any later one.

Time. Everyone (bridge, simulator, rate limiters on both sides, the receiver's timestamp check)
shares one clock that runs at real speed while anything happens and skips the idle rest of each
poll interval. A cycle is: jump to the next poll instant, enqueue `sync` exactly as the `clock`
process does (and `sync_stale` every max(3 x interval, 60 s), as it does), let the workers run in
real time until no job is left, repeat. So the latency of a package is measured directly on that
clock: (wait from "shipped" to the next poll, which is skipped time) + (real processing time, rate
limit waits included). Nothing happens in the skipped time: the workers are idle and both sides'
token buckets refill, as they would. `--interval` defaults to the production 300 s
(`BRIDGE_SYNC_INTERVAL_S`), so the latency target is 360 s.

Figures:

- calls per cycle: the simulator's ledger per operation (list pages, gets, tracking, 429s; LWA
  token grants are shown apart), per cycle, against the orders that really changed at Amazon in
  that cycle's window (from the schedule, cross-checked with the sync_order jobs the bridge
  queued). A per-order poll would cost one getFulfillmentOrder per open order per cycle.
  Target: <= 3.0 calls per changed order. A changed order needs one get, a shipped one also one
  tracking call per package (2 for the common one-package order), and the listing adds one page
  per 50 orders changed since the previous cycle minus the 5-minute overlap (about 4 pages per 100
  changes at a 300 s interval, 0.04 per order); 3.0 leaves room for two-package orders and page
  rounding, while anything that grew with the open orders would be ~100 per changed order here;
- Shipped -> storefront: shippingDate the simulator reports for the package's shipment to the
  moment the receiver recorded the callback. p50/p99/max, also split into the wait for the next
  poll and poll -> storefront;
- pushes per package: callbacks for shipments the receiver got (every attempt, duplicates
  included) / packages Amazon shipped during the run (target exactly 1.0), and fulfilments per
  package: distinct packages the storefront applied / packages shipped (also 1.0).

    python bench/sync.py                          # 10,000 orders, 5 cycles, SQLite (~3.2 min)
    python bench/sync.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/sync.py --orders 2000 --changed 100   # same change rate, fewer open orders

The last line printed is one JSON object; `--json-out FILE` appends it to FILE too. The exit status
is 0 whatever the figures (no timing asserts) and 2 if the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import BenchError, Database, emit, percentile, prepared_database  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import SQLModel, col  # noqa: E402

from bridge import jobs  # noqa: E402
from bridge.amazon.accounts import build_amazon  # noqa: E402
from bridge.amazon.limiter import DEFAULT_LIMITS, DatabaseBuckets, Limit  # noqa: E402
from bridge.amazon.models import FulfillmentOrder  # noqa: E402
from bridge.amazon.simulator import (  # noqa: E402
    OperationLimit,
    RunningServer,
    Simulator,
    SimulatorConfig,
    create_simulator_app,
    load_config,
    serve_in_thread,
)
from bridge.amazon.simulator.config import OPERATIONS  # noqa: E402
from bridge.bootstrap import Bridge  # noqa: E402
from bridge.channels import load_channels  # noqa: E402
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app  # noqa: E402
from bridge.orders import Address, CanonicalOrder, OrderLine, PaymentState  # noqa: E402
from bridge.pipeline.plan import item_id_for, seller_fulfillment_order_id  # noqa: E402
from bridge.pipeline.sync import JOB_SYNC, JOB_SYNC_ORDER, JOB_SYNC_STALE, SYNC_OVERLAP  # noqa: E402
from bridge.runtime import make_worker  # noqa: E402
from bridge.settings import Settings  # noqa: E402
from bridge.store import (  # noqa: E402
    JobRecord,
    OrderRecord,
    PackageRecord,
    PushRecord,
    SyncCursorRecord,
    make_engine,
    read_session,
    write_session,
)
from bridge.storefronts.generic_push import SHIPMENT_CREATED  # noqa: E402
from bridge.storefronts.registry import Storefronts  # noqa: E402
from bridge.worker import Worker  # noqa: E402

CHANNELS_FILE = ROOT / "config" / "channels.yaml"
SIMULATOR_FILE = ROOT / "config" / "simulator.yaml"
CHANNEL = "own-shop"
ACCOUNT = "main"
GENERIC_SECRET = "whsec_ZGVtby1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw"  # the example config's default
STOREFRONT_SKU = "SKU-1"
AMAZON_SKU = "FBA-SKU-1"  # made a split SKU here: one package per unit
LINE_ID = "1"
ADDRESS = {
    "name": "Bench Buyer",
    "addressLine1": "1 Main St",
    "city": "Seattle",
    "stateOrRegion": "WA",
    "postalCode": "98101",
    "countryCode": "US",
}
LIST_OP, GET_OP, TRACKING_OP = "listAllFulfillmentOrders", "getFulfillmentOrder", "getPackageTrackingDetails"
SP_API_OPS = tuple(OPERATIONS)
TOKEN_OP = "lwaToken"

DEFAULT_ORDERS = 10_000
DEFAULT_CYCLES = 5
DEFAULT_INTERVAL_S = 300
CHANGE_FRACTION = 0.01
TARGET_CALLS_PER_CHANGED = 3.0
TARGET_LATENCY_SLACK_S = 60.0
TARGET_PUSHES_PER_PACKAGE = 1.0
MARGIN_S = 60  # quiet orders keep this far from the listed window
CYCLE_TIMEOUT_S = 900.0
POLL_S = 0.1
CHUNK = 1000

QUIET, OVERLAP, TO_PROCESSING, TO_SHIPPED = "quiet", "overlap", "to-processing", "to-shipped"


# --------------------------------------------------------------------------------------------
# One clock for everybody, with idle time skipped


class BenchClock:
    """Wall time shared by the bridge, the simulator (fulfilment and rate clocks) and the receiver.

    Before `start()` it stands still wherever `hold()` put it (seeding creates orders in the past).
    After `start()` it runs at real speed, and `skip(s)` jumps `s` seconds ahead. It never goes back.
    `monotonic()` is the same instant as a number, so skipped time counts for leases and buckets.
    """

    def __init__(self, at: datetime) -> None:
        self._lock = threading.Lock()
        self._held = at
        self._origin: float | None = None
        self._skipped = 0.0

    def hold(self, at: datetime) -> None:
        with self._lock:
            if self._origin is not None or at < self._held:
                raise ValueError("the bench clock only moves forward, and only holds before start()")
            self._held = at

    def start(self) -> None:
        with self._lock:
            self._origin = time.monotonic()

    def skip(self, seconds: float) -> None:
        with self._lock:
            self._skipped += max(0.0, seconds)

    def now(self) -> datetime:
        with self._lock:
            if self._origin is None:
                return self._held
            return self._held + timedelta(seconds=time.monotonic() - self._origin + self._skipped)

    def monotonic(self) -> float:
        return self.now().timestamp()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


# --------------------------------------------------------------------------------------------
# The storefront: the generic receiver, noting when each callback arrived


@dataclass(frozen=True)
class Arrival:
    at: datetime  # bench clock
    status: int
    duplicate: bool
    type: str | None
    package_key: str | None


class TimedReceiver(FakeGenericReceiver):
    """`FakeGenericReceiver` (verify, dedupe by webhook-id, record) that also notes every attempt."""

    def __init__(self, secret: str, clock: BenchClock) -> None:
        super().__init__(secret, clock=clock)
        self.arrivals: list[Arrival] = []

    def receive(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        at = self.clock.now()
        status, answer = super().receive(path, headers, body)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        kind = payload.get("type") if isinstance(payload, dict) else None
        data = payload.get("data") if isinstance(payload, dict) else None
        key = data.get("package_key") if isinstance(data, dict) else None
        self.arrivals.append(Arrival(at, status, bool(answer.get("duplicate")), kind, key))
        return status, answer


# --------------------------------------------------------------------------------------------
# The schedule: which order changes when


@dataclass(frozen=True)
class SeedOrder:
    created: int  # seconds relative to the start of the run (T0); always in the past
    quantity: int  # units of the split SKU = packages once it ships
    cohort: str  # QUIET | OVERLAP | TO_PROCESSING | TO_SHIPPED
    change_at: int | None  # the order's one change near the run (relative to T0)
    number: int = 0

    @property
    def external_id(self) -> str:
        return f"S{self.number:06d}"

    @property
    def sfo_id(self) -> str:
        return seller_fulfillment_order_id(CHANNEL, self.external_id)


def _spread(count: int, lo: int, hi: int) -> list[int]:
    """`count` whole seconds spread evenly over [lo, hi]."""
    if count <= 0:
        return []
    width = hi - lo + 1
    return [lo + (i * width) // count for i in range(count)]


def _picks(count: int, share: float) -> list[bool]:
    """`count` flags, `share` of them True, evenly interleaved."""
    return [math.floor((i + 1) * share) > math.floor(i * share) for i in range(count)]


def build_schedule(
    orders: int, changed: int, cycles: int, interval: int, ship_share: float, two_share: float, sim: Simulator
) -> list[SeedOrder]:
    t = sim.config.timings
    planning, processing, shipped = t.planning_after, t.processing_after, t.ship_after
    overlap = int(SYNC_OVERLAP.total_seconds())
    listed_from = -overlap - MARGIN_S  # nothing that changed before this is ever listed in the run
    end = (cycles + 1) * interval  # and nothing but the schedule changes until one interval after it
    seeded: list[SeedOrder] = []

    run_times = [m for k in range(cycles) for m in _spread(changed, k * interval + 1, (k + 1) * interval - 1)]
    ships = _picks(len(run_times), ship_share)
    twos = iter(_picks(sum(ships), two_share))
    for m, ship in zip(run_times, ships, strict=True):
        if ship:
            seeded.append(SeedOrder(m - shipped, 2 if next(twos) else 1, TO_SHIPPED, m))
        else:
            seeded.append(SeedOrder(m - processing, 1, TO_PROCESSING, m))
    # steady state: the 5 minutes before the start saw the same rate of change (already synced)
    for m in _spread(round(changed * overlap / interval), -overlap + 1, -1):
        seeded.append(SeedOrder(m - processing, 1, OVERLAP, m))

    quiet = orders - len(seeded)
    if quiet < 0:
        raise BenchError(f"{len(seeded)} changes around the run need more than --orders {orders} orders")
    # Quiet orders sit in Processing or Planning across the whole window, in proportion to the time
    # an order spends in each stage.
    slots = list(range(end - shipped + 1, listed_from - processing + 1))
    slots += list(range(end - processing + 1, listed_from - planning + 1))
    if quiet and not slots:
        raise BenchError("--cycles x --interval is too long to keep the other orders unchanged")
    seeded += [SeedOrder(slots[(i * len(slots)) // quiet], 1, QUIET, None) for i in range(quiet)]

    for order in seeded:
        moments = [order.created, *(order.created + s for s in (planning, processing, shipped))]
        near = [m for m in moments if listed_from < m <= end]
        if order.created > listed_from or near != ([] if order.change_at is None else [order.change_at]):
            raise BenchError(
                f"cannot place the orders: --cycles {cycles} x --interval {interval} s is too long for "
                f"the simulator's timings (an order's other milestones would fall into the run); "
                "use fewer cycles, a shorter interval or --ship-share 1"
            )
    seeded.sort(key=lambda o: (o.created, o.cohort))
    return [replace(o, number=i) for i, o in enumerate(seeded)]


# --------------------------------------------------------------------------------------------
# Seeding


def seed_simulator(sim: Simulator, clock: BenchClock, orders: Sequence[SeedOrder], t0: datetime) -> None:
    sim.set_inventory(AMAZON_SKU, sum(o.quantity for o in orders) + 100, split=True)
    for order in orders:  # sorted by creation time
        clock.hold(t0 + timedelta(seconds=order.created))
        sim.create_fulfillment_order(
            {
                "sellerFulfillmentOrderId": order.sfo_id,
                "displayableOrderId": f"#{order.external_id}",
                "displayableOrderDate": (t0 + timedelta(seconds=order.created)).isoformat(),
                "displayableOrderComment": "Thank you for your order!",
                "shippingSpeedCategory": "Standard",
                "destinationAddress": ADDRESS,
                "items": [
                    {
                        "sellerSku": AMAZON_SKU,
                        "sellerFulfillmentOrderItemId": item_id_for(LINE_ID),
                        "quantity": order.quantity,
                    }
                ],
            }
        )
    clock.hold(t0)


def amazon_view(sim: Simulator, sfo_id: str) -> FulfillmentOrder:
    """The order as the simulator reports it now (a direct read: not an SP-API call, not counted)."""
    return FulfillmentOrder.from_result(sim.get_fulfillment_order(sfo_id)["payload"])


def seed_bridge(engine: Engine, sim: Simulator, orders: Sequence[SeedOrder], t0: datetime) -> Counter[str]:
    """Bridge rows as an earlier cycle left them, and the sync cursor at T0. Returns status counts."""
    table = SQLModel.metadata.tables[OrderRecord.__tablename__]
    destination = Address(
        name=ADDRESS["name"],
        line1=ADDRESS["addressLine1"],
        country_code="US",
        postal_code=ADDRESS["postalCode"],
        city=ADDRESS["city"],
        state=ADDRESS["stateOrRegion"],
    )
    statuses: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    for order in orders:
        header = amazon_view(sim, order.sfo_id)
        if header.status not in {"Planning", "Processing"} or header.status_updated_date is None:
            raise BenchError(f"seeding went wrong: {order.sfo_id} is {header.status} at the start")
        statuses[header.status] += 1
        created = t0 + timedelta(seconds=order.created)
        canonical = CanonicalOrder(
            channel_id=CHANNEL,
            external_id=order.external_id,
            display_id=f"#{order.external_id}",
            currency="USD",
            payment_state=PaymentState.PAID,
            created_at=created,
            updated_at=created,
            lines=(OrderLine(LINE_ID, STOREFRONT_SKU, order.quantity, "5.00", "Bench item"),),
            destination=destination,
            shipping_method="Standard",
        )
        rows.append(
            {
                "channel_id": CHANNEL,
                "external_id": order.external_id,
                "display_id": f"#{order.external_id}",
                "state": "submitted",
                "data": canonical.to_json(),
                "seller_fulfillment_order_id": order.sfo_id,
                "attention_reason": "",
                "amazon_status": header.status,
                "amazon_status_updated_at": header.status_updated_date,
                "last_synced_at": header.status_updated_date,
                "created_at": created,
                "updated_at": header.status_updated_date,
            }
        )
    with write_session(engine) as session:
        for start in range(0, len(rows), CHUNK):
            session.execute(insert(table), rows[start : start + CHUNK])
        session.add(SyncCursorRecord(account_id=ACCOUNT, synced_until=t0, updated_at=t0))
    return statuses


# --------------------------------------------------------------------------------------------
# Database


def active_jobs(engine: Engine) -> int:
    with read_session(engine) as session:
        query = (
            select(func.count()).select_from(JobRecord).where(col(JobRecord.status).in_(["ready", "running"]))
        )
        return int(session.execute(query).scalar_one())


def last_job_id(engine: Engine) -> int:
    with read_session(engine) as session:
        return int(session.execute(select(func.max(col(JobRecord.id)))).scalar_one() or 0)


def jobs_since(engine: Engine, after_id: int) -> Counter[str]:
    with read_session(engine) as session:
        query = select(col(JobRecord.kind), func.count()).where(col(JobRecord.id) > after_id)
        return Counter({k: int(n) for k, n in session.execute(query.group_by(col(JobRecord.kind)))})


def counts_by(engine: Engine, column: Any) -> dict[str, int]:
    with read_session(engine) as session:
        return {str(k): int(n) for k, n in session.execute(select(column, func.count()).group_by(column))}


def cursor_time(engine: Engine) -> datetime:
    with read_session(engine) as session:
        cursor = session.get(SyncCursorRecord, ACCOUNT)
        if cursor is None:
            raise BenchError("the sync cursor disappeared")
        return cursor.synced_until


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class Cycle:
    number: int
    poll_at: datetime  # when the sync job started (the cursor it wrote), bench clock
    changed: int  # orders whose status changed at Amazon since the previous poll
    shipped_orders: int
    queued: int  # sync_order jobs the bridge created
    calls: dict[str, int]
    tokens: int
    throttled: int
    work_s: float  # real seconds from enqueueing `sync` to an empty queue
    late_s: float  # how much later than its due time the cycle started (previous one overran)
    stale: bool

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def ledger_counts(sim: Simulator) -> dict[str, int]:
    return {op: sim.ledger.calls(op) for op in (*SP_API_OPS, TOKEN_OP)}


def wait_idle(engine: Engine, threads: Sequence[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while active_jobs(engine):
        if not all(t.is_alive() for t in threads):
            raise BenchError("a worker thread died")
        if time.monotonic() > deadline:
            raise BenchError(f"the job queue did not empty within {timeout:.0f} s")
        time.sleep(POLL_S)


def _r(value: float, digits: int = 2) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def scaled_simulator_config(config: SimulatorConfig, scale: float) -> SimulatorConfig:
    if scale == 1.0:
        return config
    default = config.default_limit
    return replace(
        config,
        default_limit=OperationLimit(default.rate * scale, default.burst),
        limits={op: OperationLimit(lim.rate * scale, lim.burst) for op, lim in config.limits.items()},
    )


def run(args: argparse.Namespace, db: Database) -> dict[str, Any]:
    interval = int(args.interval)
    changed = args.changed if args.changed is not None else max(1, round(args.orders * CHANGE_FRACTION))
    scale = float(args.rate_scale)

    sim_config = scaled_simulator_config(load_config(SIMULATOR_FILE), scale)
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = BenchClock(t0 - timedelta(days=1))
    sim = Simulator(sim_config, clock=clock, rate_clock=clock)
    schedule = build_schedule(
        args.orders, changed, args.cycles, interval, args.ship_share, args.two_package_share, sim
    )
    cohorts = Counter(o.cohort for o in schedule)
    limit = sim_config.limit_for(GET_OP)
    print(
        f"sync bench: {args.orders} open orders, {changed} change per {interval} s poll interval "
        f"({100 * changed / args.orders:.2g}%), {args.cycles} cycles, {args.workers} worker thread(s), "
        f"{db.kind}",
        flush=True,
    )
    if scale == 1.0:
        print(f"rate limits: Amazon's usage plans, {limit.rate:g}/s burst {limit.burst} per operation")
    else:
        print(
            f"rate limits SCALED x{scale:g}: {limit.rate:g}/s burst {limit.burst} per operation, in the "
            "simulator and in the bridge's limiter alike (calls per cycle do not depend on the rate)"
        )

    started = time.perf_counter()
    seed_simulator(sim, clock, schedule, t0)
    engine = make_engine(db.url)
    try:
        statuses = seed_bridge(engine, sim, schedule, t0)
        seeded_s = time.perf_counter() - started
        ships = [o for o in schedule if o.cohort == TO_SHIPPED]
        print(
            f"seeded in {seeded_s:.1f} s: {dict(statuses)} at the start; per cycle "
            f"{cohorts[TO_SHIPPED] // args.cycles} ship ({sum(o.quantity for o in ships)} packages in all), "
            f"{cohorts[TO_PROCESSING] // args.cycles} start picking; {cohorts[OVERLAP]} changed in the "
            f"5 min before the start; {cohorts[QUIET]} stay unchanged",
            flush=True,
        )
        return drive(args, db, engine, sim, clock, schedule, t0, changed, interval, scale, seeded_s)
    finally:
        engine.dispose()


def drive(
    args: argparse.Namespace,
    db: Database,
    engine: Engine,
    sim: Simulator,
    clock: BenchClock,
    schedule: Sequence[SeedOrder],
    t0: datetime,
    changed: int,
    interval: int,
    scale: float,
    seeded_s: float,
) -> dict[str, Any]:
    receiver = TimedReceiver(GENERIC_SECRET, clock)
    servers: list[RunningServer] = []
    workers: list[Worker] = []
    threads: list[threading.Thread] = []
    cycles: list[Cycle] = []
    try:
        servers.append(serve_in_thread(create_simulator_app(sim)))
        servers.append(serve_in_thread(create_fake_generic_app(receiver)))
        env = {
            "OWN_SHOP_CALLBACK_URL": f"{servers[1].base_url}/fba-bridge/events",
            "OWN_SHOP_SECRET": GENERIC_SECRET,
        }
        config = load_channels(CHANNELS_FILE, env=env)
        settings = Settings(
            database_url=db.url,
            config_path=CHANNELS_FILE,
            sync_interval_s=float(interval),
            simulator_url=servers[0].base_url,
            log_level="WARNING",
        )
        bridge = Bridge(settings=settings, config=config, engine=engine, clock=clock)
        limits = {op: Limit(lim.rate * scale, lim.burst) for op, lim in DEFAULT_LIMITS.items()}
        default = sim.config.default_limit
        buckets = DatabaseBuckets(
            engine, clock, limits=limits, default=Limit(default.rate, default.burst), use_db_clock=False
        )
        amazon = build_amazon(bridge, buckets=buckets)
        storefronts = Storefronts(clock)
        for i in range(args.workers):
            worker = make_worker(bridge, amazon=amazon, storefronts=storefronts)
            workers.append(worker)
            threads.append(threading.Thread(target=worker.run_forever, name=f"bench-worker-{i}", daemon=True))

        clock.start()
        for thread in threads:
            thread.start()
        stale_every = max(interval * 3.0, 60.0)
        change_times = sorted(
            (t0 + timedelta(seconds=o.change_at), o.cohort)
            for o in schedule
            if o.change_at is not None and o.change_at > 0
        )
        previous_poll = t0
        print(
            f"\n{'cycle':>5} {'changed':>7} {'shipped':>7} {'queued':>6} {'list':>5} {'get':>5} {'track':>5} "
            f"{'other':>5} {'total':>6} {'/changed':>8} {'429':>4} {'work_s':>7} {'late_s':>6}",
            flush=True,
        )
        for k in range(1, args.cycles + 1):
            due = t0 + timedelta(seconds=k * interval)
            gap = (due - clock.now()).total_seconds()
            if gap > 0:
                clock.skip(gap)
            before = ledger_counts(sim)
            throttled_before = sim.ledger.throttled()
            first_job = last_job_id(engine)
            stale = math.floor(k * interval / stale_every) > math.floor((k - 1) * interval / stale_every)
            began = time.monotonic()
            with write_session(engine) as session:
                jobs.enqueue(
                    session, JOB_SYNC, payload={"account_id": ACCOUNT}, dedupe_key=f"{JOB_SYNC}:{ACCOUNT}"
                )
                if stale:
                    jobs.enqueue(session, JOB_SYNC_STALE, payload={}, dedupe_key=f"{JOB_SYNC_STALE}:")
            wait_idle(engine, threads, CYCLE_TIMEOUT_S)
            work_s = time.monotonic() - began
            after = ledger_counts(sim)
            poll_at = cursor_time(engine)
            window = [c for at, c in change_times if previous_poll < at <= poll_at]
            made = jobs_since(engine, first_job)
            cycle = Cycle(
                number=k,
                poll_at=poll_at,
                changed=len(window),
                shipped_orders=sum(1 for c in window if c == TO_SHIPPED),
                queued=made[JOB_SYNC_ORDER],
                calls={op: after[op] - before[op] for op in SP_API_OPS if after[op] != before[op]},
                tokens=after[TOKEN_OP] - before[TOKEN_OP],
                throttled=sim.ledger.throttled() - throttled_before,
                work_s=work_s,
                late_s=max(0.0, -gap),
                stale=stale,
            )
            cycles.append(cycle)
            previous_poll = poll_at
            other = cycle.total - sum(cycle.calls.get(op, 0) for op in (LIST_OP, GET_OP, TRACKING_OP))
            per = cycle.total / cycle.changed if cycle.changed else float("nan")
            print(
                f"{k:>5} {cycle.changed:>7} {cycle.shipped_orders:>7} {cycle.queued:>6} "
                f"{cycle.calls.get(LIST_OP, 0):>5} {cycle.calls.get(GET_OP, 0):>5} "
                f"{cycle.calls.get(TRACKING_OP, 0):>5} {other:>5} {cycle.total:>6} {per:>8.2f} "
                f"{cycle.throttled:>4} {work_s:>7.1f} {cycle.late_s:>6.1f}"
                + ("  (+sync_stale)" if stale else ""),
                flush=True,
            )
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=30)
        for server in servers:
            server.stop()
    return report(args, db, engine, sim, receiver, schedule, cycles, changed, interval, scale, seeded_s)


def report(
    args: argparse.Namespace,
    db: Database,
    engine: Engine,
    sim: Simulator,
    receiver: TimedReceiver,
    schedule: Sequence[SeedOrder],
    cycles: Sequence[Cycle],
    changed: int,
    interval: int,
    scale: float,
    seeded_s: float,
) -> dict[str, Any]:
    # What Amazon shipped during the run, and when (its own shippingDate per package).
    shipped_at: dict[str, datetime] = {}
    for order in schedule:
        if order.cohort != TO_SHIPPED:
            continue
        for shipment in amazon_view(sim, order.sfo_id).shipments:
            if shipment.status == "SHIPPED" and shipment.shipping_date is not None:
                for package in shipment.packages:
                    shipped_at[f"{order.sfo_id}:{package.package_number}"] = shipment.shipping_date

    shipment_posts = [a for a in receiver.arrivals if a.type == SHIPMENT_CREATED]
    first_applied: dict[str, datetime] = {}
    for arrival in shipment_posts:
        if 200 <= arrival.status < 300 and not arrival.duplicate and arrival.package_key:
            first_applied.setdefault(arrival.package_key, arrival.at)
    packages = len(shipped_at)
    unexpected = sorted(set(first_applied) - set(shipped_at))
    missing = sorted(set(shipped_at) - set(first_applied))
    polls = [c.poll_at for c in cycles]
    latency, waiting, after_poll = [], [], []
    for key, at in first_applied.items():
        shipped = shipped_at.get(key)
        if shipped is None:
            continue
        latency.append((at - shipped).total_seconds())
        poll = next((p for p in polls if p >= shipped), None)
        if poll is not None:
            waiting.append((poll - shipped).total_seconds())
            after_poll.append((at - poll).total_seconds())

    total_calls = sum(c.total for c in cycles)
    total_changed = sum(c.changed for c in cycles)
    per_changed = total_calls / total_changed if total_changed else float("nan")
    by_op = Counter[str]()
    for c in cycles:
        by_op.update(c.calls)
    pushes_per_package = len(shipment_posts) / packages if packages else float("nan")
    fulfilments_per_package = len(first_applied) / packages if packages else float("nan")
    target_latency = interval + TARGET_LATENCY_SLACK_S
    p50, p99, worst = percentile(latency, 50), percentile(latency, 99), percentile(latency, 100)
    push_rows = counts_by(engine, col(PushRecord.status))
    job_rows = counts_by(engine, col(JobRecord.status))
    with read_session(engine) as session:
        bridge_packages = int(session.execute(select(func.count()).select_from(PackageRecord)).scalar_one())
        bridge_pushes = int(
            session.execute(
                select(func.count()).select_from(PushRecord).where(col(PushRecord.kind) == "shipment")
            ).scalar_one()
        )
    states = counts_by(engine, col(OrderRecord.state))
    throttled = sum(c.throttled for c in cycles)
    queued_total = sum(c.queued for c in cycles)

    n = len(cycles)
    mean = {op: by_op[op] / n for op in sorted(by_op)} if n else {}
    print()
    rate = sim.config.limit_for(GET_OP).rate
    by_op_text = json.dumps({k: round(v, 1) for k, v in mean.items()})
    print(
        f"calls per cycle: mean {total_calls / n:.1f} for {total_changed / n:.1f} changed orders "
        f"({per_changed:.2f} per changed order; by operation {by_op_text}); a per-order poll would make "
        f">= {args.orders} getFulfillmentOrder calls per cycle ({args.orders / max(total_calls / n, 1):.0f}x "
        f"more, {args.orders / rate:.0f} s of the get budget per {interval} s cycle)"
    )
    if queued_total != total_changed:
        print(
            f"NOTE: the bridge queued {queued_total} order reads for {total_changed} orders that changed at "
            "Amazon: the listing filter let through orders it had already seen (or missed some)"
        )
    print(
        f"shipped -> storefront over {len(latency)} packages: p50 {p50:.1f} s, p99 {p99:.1f} s, "
        f"max {worst:.1f} s (target <= {target_latency:.0f} s = poll interval + "
        f"{TARGET_LATENCY_SLACK_S:.0f} s); of which waiting for the next poll p50 "
        f"{percentile(waiting, 50):.1f} / max {percentile(waiting, 100):.1f} s (skipped time) and "
        f"poll -> storefront p50 {percentile(after_poll, 50):.1f} / p99 {percentile(after_poll, 99):.1f} / "
        f"max {percentile(after_poll, 100):.1f} s (real time)"
    )
    print(
        f"pushes: {packages} packages shipped at Amazon, {bridge_packages} recorded by the bridge, "
        f"{bridge_pushes} shipment pushes owed; the storefront got {len(shipment_posts)} shipment callbacks "
        f"({receiver.duplicates} duplicate webhook-ids, {len(receiver.rejections)} rejected) for "
        f"{len(first_applied)} distinct packages: pushes per package {pushes_per_package:.3f}, fulfilments "
        f"per package {fulfilments_per_package:.3f}"
    )
    if missing or unexpected:
        print(
            f"NOTE: {len(missing)} shipped packages never reached the storefront, "
            f"{len(unexpected)} unknown ones did"
        )
    print(
        f"bridge: orders {states}; pushes {push_rows}; jobs {job_rows}; 429 answers {throttled}; "
        f"LWA token grants {sum(c.tokens for c in cycles)}"
    )

    meets = (
        per_changed <= TARGET_CALLS_PER_CHANGED
        and not math.isnan(p99)
        and p99 <= target_latency
        and pushes_per_package == TARGET_PUSHES_PER_PACKAGE
        and fulfilments_per_package == TARGET_PUSHES_PER_PACKAGE
    )
    return {
        "bench": "sync",
        "db": db.kind,
        "open_orders": args.orders,
        "cycles": n,
        "poll_interval_s": interval,
        "changed_per_cycle": round(total_changed / n, 1) if n else None,
        "queued_per_cycle": round(queued_total / n, 1) if n else None,
        "shipped_orders_per_cycle": round(sum(c.shipped_orders for c in cycles) / n, 1) if n else None,
        "calls_per_cycle_mean": round(total_calls / n, 1) if n else None,
        "calls_per_cycle": [c.total for c in cycles],
        "calls_per_cycle_by_operation": {k: round(v, 1) for k, v in mean.items()},
        "calls_per_changed_order": _r(per_changed),
        "naive_calls_per_cycle": args.orders,
        "target_calls_per_changed_order_max": TARGET_CALLS_PER_CHANGED,
        "throttled_429": throttled,
        "cycle_work_s": [round(c.work_s, 1) for c in cycles],
        "packages_shipped": packages,
        "ship_to_storefront_p50_s": _r(p50, 1),
        "ship_to_storefront_p99_s": _r(p99, 1),
        "ship_to_storefront_max_s": _r(worst, 1),
        "poll_to_storefront_p50_s": _r(percentile(after_poll, 50), 1),
        "poll_to_storefront_p99_s": _r(percentile(after_poll, 99), 1),
        "target_ship_to_storefront_s": target_latency,
        "latency_clock": "idle time between cycles skipped; work in real time",
        "pushes_per_package": _r(pushes_per_package, 3),
        "fulfilments_per_package": _r(fulfilments_per_package, 3),
        "target_pushes_per_package": TARGET_PUSHES_PER_PACKAGE,
        "rate_limit": {
            "rate": sim.config.limit_for(GET_OP).rate,
            "burst": sim.config.limit_for(GET_OP).burst,
            "scaled": scale != 1.0,
        },
        "workers": args.workers,
        "seed_s": round(seeded_s, 1),
        "meets_targets": bool(meets),
    }


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="PostgreSQL server to create a bench_<random> database on")
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS, help="open orders (10000)")
    parser.add_argument("--changed", type=int, help="orders changing per cycle (default 1%% of --orders)")
    parser.add_argument("--cycles", type=int, default=DEFAULT_CYCLES, help="sync cycles measured (5)")
    parser.add_argument("--interval", type=int, default=DEFAULT_INTERVAL_S, help="poll interval, s (300)")
    parser.add_argument("--ship-share", type=float, default=0.5, help="share of changes that ship (0.5)")
    parser.add_argument(
        "--two-package-share", type=float, default=0.1, help="share of shipping orders with 2 packages (0.1)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker threads (2)")
    parser.add_argument(
        "--rate-scale", type=float, default=1.0, help="multiply Amazon's rates, both sides (1 = real)"
    )
    parser.add_argument("--json-out", type=Path, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.cycles < 1 or args.workers < 1 or args.interval < 10:
        parser.error("--orders, --cycles and --workers must be >= 1, --interval >= 10")
    if args.changed is not None and args.changed < 1:
        parser.error("--changed must be >= 1")
    if not (0 <= args.ship_share <= 1 and 0 <= args.two_package_share <= 1) or args.rate_scale <= 0:
        parser.error("shares must be within 0..1 and --rate-scale positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "httpx"):  # a line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sync-") as workdir:
            with prepared_database(args.database_url, Path(workdir)) as db:
                result = run(args, db)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 2
    result["seconds"] = round(time.perf_counter() - began, 1)
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
