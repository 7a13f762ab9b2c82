"""Many sellers: do 4 worker processes on one PostgreSQL keep up with 100 Amazon accounts?

The issue asks: 100 simulated sellers (Amazon accounts), orders arriving at their combined
allowed create rate, drained by 4 worker processes on one PostgreSQL, reach >= 0.9 of the sum of
their allowed rates with 0 self-made 429s and job pickup p99 <= 1 s.

Set-up, all on 127.0.0.1:

- a generated channels file with `--sellers` accounts (`seller-001`...) and one generic channel
  each (`shop-001`...); every account has its own LWA refresh token, which is how the simulator
  tells sellers apart: each gets its own token buckets (Amazon's default plan, 2 requests/s and
  burst 30 per operation);
- the MCF simulator served once from this process over loopback HTTP (as `bridge run` does,
  `BRIDGE_SIMULATOR_URL`); its rate limits run on real time;
- `--workers` (4) `bridge worker` processes (real processes, `python -m bridge.cli worker`)
  with the rate budget in the database like production;
- a fresh `bench_<random>` database on the PostgreSQL server (default
  postgresql://postgres@127.0.0.1:5432/test), dropped afterwards; `--database-url sqlite:///...`
  for SQLite.

Arrivals: each seller's orders arrive as a Poisson process at that seller's allowed create rate
(2/s): `--sellers` x 2/s in all, for `--duration` seconds. The bench writes each order and its
`submit` job the way intake does (one transaction per 20 ms tick for everything that arrived),
so the figures are the workers', not the webhook endpoint's (bench/intake.py measures that).
Every order costs getFulfillmentPreview + createFulfillmentOrder.

Figures:

- create rate fraction: creates accepted by the simulator inside the measuring window (after
  `--warmup` s, up to the end of arrivals) / (window x sellers x allowed rate);
- 429s: every 429 the simulator answered over the whole run (the bridge's limiter should make
  none);
- job pickup: for every claim of a submit job, claim time - the job's due time (`late_ms` in the
  worker's log, both by the database clock); p50/p99/max over the window. Cross-check measured by
  this process alone: arrival (commit) -> preview reaching the simulator;
- CPU of the workers, of this process (simulator + arrivals) and of the whole machine.

    python bench/scale.py                       # 10 sellers, 60 s of arrivals (~1.5 min)
    python bench/scale.py --sellers 100         # the issue's figure (~2.5 min; needs the CPU)
    python bench/scale.py --database-url sqlite:///tmp/scale.sqlite3

The last line printed is one JSON object. The exit status is 0 whatever the figures are (no
timing asserts); 1 if an order was not created by the end; 2 if the bench could not run.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import (  # noqa: E402
    BenchError,
    Database,
    Process,
    console_script,
    emit,
    percentile,
    prepared_database,
    proc_ticks,
)
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import SQLModel, col  # noqa: E402

from bridge.amazon.simulator import (  # noqa: E402
    RunningServer,
    Simulator,
    create_simulator_app,
    load_config,
    serve_in_thread,
)
from bridge.amazon.simulator.config import Credentials  # noqa: E402
from bridge.clock import SystemClock  # noqa: E402
from bridge.orders import Address, CanonicalOrder, OrderLine, PaymentState  # noqa: E402
from bridge.pipeline.plan import item_id_for, seller_fulfillment_order_id  # noqa: E402
from bridge.store import JobRecord, OrderRecord, db_now, make_engine, read_session, write_session  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
SIMULATOR_FILE = ROOT / "config" / "simulator.yaml"
CREATE_OP = "createFulfillmentOrder"
PREVIEW_OP = "getFulfillmentPreview"
STOREFRONT_SKU = "SKU-1"
AMAZON_SKU = "FBA-SKU-1"
SECRET = "whsec_ZGVtby1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw"

DEFAULT_SELLERS = 10
ISSUE_SELLERS = 100
TARGET_RATE_FRACTION = 0.9
TARGET_429 = 0
TARGET_PICKUP_P99_S = 1.0

TICK_S = 0.02
STARTUP_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 10.0
LATE_RE = re.compile(r"^(\S+ \S+) (?:INFO|WARNING) bridge\.worker job (\d+) kind=submit .*late_ms=(-?\d+)")
DONE_RE = re.compile(r"kind=submit done ms=(\d+)")


# --------------------------------------------------------------------------------------------
# Simulator with timestamps


class TimedSimulator(Simulator):
    """The simulator, noting on this process's monotonic clock when each order's preview reached
    it and when its create was accepted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._marks = threading.Lock()
        self.previewed: dict[str, float] = {}  # sellerFulfillmentOrderItemId -> first preview
        self.accepted: dict[str, float] = {}  # sellerFulfillmentOrderId -> accepted create

    def get_fulfillment_preview(self, body: Any) -> dict[str, Any]:
        arrived = time.monotonic()
        result = super().get_fulfillment_preview(body)
        with self._marks:
            for item in body.get("items") or []:
                self.previewed.setdefault(str(item.get("sellerFulfillmentOrderItemId")), arrived)
        return result

    def create_fulfillment_order(self, body: Any) -> dict[str, Any]:
        result = super().create_fulfillment_order(body)
        done = time.monotonic()
        with self._marks:
            self.accepted.setdefault(str(body["sellerFulfillmentOrderId"]), done)
        return result

    def snapshot(self) -> tuple[dict[str, float], dict[str, float]]:
        with self._marks:
            return dict(self.previewed), dict(self.accepted)


def build_simulator(sellers: int, orders: int) -> TimedSimulator:
    config = load_config(SIMULATOR_FILE)
    tokens = tuple(refresh_token(i) for i in range(1, sellers + 1))
    config = replace(config, credentials=Credentials(refresh_tokens=tokens))
    sim = TimedSimulator(config, rate_clock=SystemClock())
    sim.set_inventory(AMAZON_SKU, orders + 1000)
    return sim


# --------------------------------------------------------------------------------------------
# Sellers and orders


def seller_id(i: int) -> str:
    return f"seller-{i:03d}"


def channel_id(i: int) -> str:
    return f"shop-{i:03d}"


def refresh_token(i: int) -> str:
    return f"sim-refresh-{i:03d}"


def write_channels_file(path: Path, sellers: int) -> None:
    """N accounts on the embedded simulator, one generic channel each (JSON is valid YAML)."""
    accounts = [
        {
            "id": seller_id(i),
            "region": "na",
            "embedded_simulator": True,
            "client_id": "sim-client",
            "client_secret": "sim-secret",
            "refresh_token": refresh_token(i),
        }
        for i in range(1, sellers + 1)
    ]
    channels = [
        {
            "id": channel_id(i),
            "platform": "generic",
            "webhook_secrets": [SECRET],
            "storefront": {"callback_url": "http://127.0.0.1:9/fba-bridge/events", "local": True},
            "amazon": {"account": seller_id(i), "marketplace_id": "ATVPDKIKX0DER"},
            "skus": {"map": {STOREFRONT_SKU: AMAZON_SKU}},
            "shipping": {"default": "Standard"},
            "payment": {"ship_on": ["paid"]},
        }
        for i in range(1, sellers + 1)
    ]
    path.write_text(json.dumps({"version": 1, "amazon": {"accounts": accounts}, "channels": channels}))


@dataclass(frozen=True)
class Arrival:
    at: float  # seconds after the start of arrivals
    seller: int
    external_id: str

    @property
    def sfo_id(self) -> str:
        return seller_fulfillment_order_id(channel_id(self.seller), self.external_id)

    @property
    def item_id(self) -> str:
        return item_id_for(f"{self.external_id}1")


def schedule(sellers: int, rate: float, duration: float, rng: random.Random) -> list[Arrival]:
    """Independent Poisson arrivals at `rate` per seller (merged: exponential gaps at the sum)."""
    out: list[Arrival] = []
    t = 0.0
    total = sellers * rate
    while True:
        t += rng.expovariate(total)
        if t >= duration:
            return out
        seller = rng.randrange(1, sellers + 1)
        out.append(Arrival(t, seller, str(7_000_000 + len(out))))


ADDRESS = Address(
    name="Bench Buyer",
    line1="1 Main St",
    country_code="US",
    postal_code="98101",
    city="Seattle",
    state="WA",
)


def order_row(arrival: Arrival, now: datetime) -> dict[str, Any]:
    channel = channel_id(arrival.seller)
    canonical = CanonicalOrder(
        channel_id=channel,
        external_id=arrival.external_id,
        display_id=f"#{arrival.external_id}",
        currency="USD",
        payment_state=PaymentState.PAID,
        created_at=now,
        updated_at=now,
        lines=(OrderLine(f"{arrival.external_id}1", STOREFRONT_SKU, 1, "5.00", "Bench item"),),
        destination=ADDRESS,
        shipping_method="Standard",
    )
    return {
        "channel_id": channel,
        "external_id": arrival.external_id,
        "display_id": f"#{arrival.external_id}",
        "state": "received",
        "data": canonical.to_json(),
        "attention_reason": "",
        "created_at": now,
        "updated_at": now,
    }


def enqueue_orders(engine: Engine, arrivals: Sequence[Arrival]) -> None:
    """Orders and their submit jobs, in one transaction, as intake writes them."""
    orders = SQLModel.metadata.tables[OrderRecord.__tablename__]
    jobs = SQLModel.metadata.tables[JobRecord.__tablename__]
    now = datetime.now(UTC)
    with write_session(engine) as session:
        ids = session.execute(
            insert(orders).returning(orders.c.id, orders.c.external_id),
            [order_row(a, now) for a in arrivals],
        ).all()
        at = db_now(session)
        session.execute(
            insert(jobs),
            [
                {
                    "kind": "submit",
                    "order_id": order_id,
                    "payload": {},
                    "dedupe_key": f"submit:{order_id}",
                    "status": "ready",
                    "run_at": at,
                    "attempts": 0,
                    "max_attempts": 8,
                    "last_error": "",
                    "created_at": at,
                    "updated_at": at,
                }
                for order_id, _ in ids
            ],
        )


# --------------------------------------------------------------------------------------------
# Measuring


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


@dataclass
class CpuMeter:
    workers: list[Process]
    started: float = 0.0
    worker_ticks: int = 0
    own_cpu: float = 0.0
    machine: tuple[int, int] | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self.worker_ticks = sum(proc_ticks(w.pid) or 0 for w in self.workers)
        self.own_cpu = time.process_time()
        self.machine = machine_ticks()

    def read(self) -> dict[str, float | None]:
        wall = max(1e-9, time.monotonic() - self.started)
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        ticks = [proc_ticks(w.pid) for w in self.workers]
        workers = None if None in ticks else (sum(t or 0 for t in ticks) - self.worker_ticks) / hz / wall
        now = machine_ticks()
        machine = None
        if now is not None and self.machine is not None and now[1] > self.machine[1]:
            machine = (now[0] - self.machine[0]) / (now[1] - self.machine[1]) * (os.cpu_count() or 1)
        return {
            "workers": workers,
            "bench_process": (time.process_time() - self.own_cpu) / wall,
            "machine": machine,
            "wall": wall,
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None
    return round(value, digits)


def lateness(log_text: str, since: datetime, until: datetime) -> list[float]:
    """Seconds from due to claim for every submit-job claim logged inside [since, until]."""
    out: list[float] = []
    for line in log_text.splitlines():
        match = LATE_RE.match(line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
        if since <= stamp <= until:
            out.append(int(match.group(3)) / 1000.0)
    return out


def jobs_by_status(engine: Engine) -> dict[str, int]:
    with read_session(engine) as session:
        rows = session.execute(
            select(col(JobRecord.status), func.count()).group_by(col(JobRecord.status))
        ).all()
    return {str(status): int(n) for status, n in rows}


# --------------------------------------------------------------------------------------------
# Run


@dataclass
class Resources:
    server: RunningServer | None = None
    workers: list[Process] = field(default_factory=list)
    engine: Engine | None = None

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


def start_workers(args: argparse.Namespace, db: Database, workdir: Path, sim_url: str) -> list[Process]:
    channels = workdir / "channels.yaml"
    write_channels_file(channels, args.sellers)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=db.url,
        BRIDGE_CONFIG=str(channels),
        BRIDGE_SIMULATOR_URL=sim_url,
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        BRIDGE_RATE_WAIT_S=str(args.rate_wait),
    )
    workers = [
        Process(
            f"worker{i + 1}",
            [*console_script("bridge", "bridge.cli"), "worker"],
            env,
            workdir / f"worker{i + 1}.log",
        )
        for i in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        dead = [w for w in workers if w.exited() is not None]
        if dead:
            raise BenchError(f"{dead[0].name} exited during start-up:\n{dead[0].log_tail()}")
        if all("worker started" in w.log_text() for w in workers):
            return workers
        time.sleep(0.2)
    raise BenchError("the workers did not start within 60 s:\n" + workers[0].log_tail())


def run(args: argparse.Namespace, db: Database, workdir: Path, seed: int, res: Resources) -> dict[str, Any]:
    rng = random.Random(seed)
    sim_config = load_config(SIMULATOR_FILE)
    rate = float(sim_config.limit_for(CREATE_OP).rate)
    burst = int(sim_config.limit_for(CREATE_OP).burst)
    arrivals = schedule(args.sellers, rate, args.duration, rng)
    if args.hot_backlog:  # a bulk import on seller 1, queued at the start
        hot = [Arrival(0.0, 1, str(8_000_000 + i)) for i in range(args.hot_backlog)]
        arrivals = hot + arrivals
    sim = build_simulator(args.sellers, len(arrivals))
    res.server = serve_in_thread(create_simulator_app(sim))
    res.engine = engine = make_engine(db.url)
    scope = (
        "the issue's figure"
        if args.sellers >= ISSUE_SELLERS
        else f"--sellers {ISSUE_SELLERS} is the issue's figure"
    )
    print(
        f"scale bench: {args.sellers} sellers ({scope}), {args.workers} worker processes, "
        f"database={db.kind}; seed={seed}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    print(
        f"simulator on {res.server.base_url}: {CREATE_OP} and {PREVIEW_OP} {rate:g}/s burst {burst} per "
        f"seller; arrivals: Poisson at {rate:g}/s per seller = {args.sellers * rate:g}/s for "
        f"{args.duration:g} s ({len(arrivals)} orders); window from +{args.warmup:g} s",
        flush=True,
    )
    res.workers = start_workers(args, db, workdir, res.server.base_url)
    print(f"{len(res.workers)} workers up", flush=True)

    meter = CpuMeter(res.workers)
    enqueued: dict[str, float] = {}  # sfo id -> commit time (monotonic)
    start = time.monotonic()
    start_wall = datetime.now(UTC)
    meter.start()
    next_report = start + PROGRESS_EVERY_S
    index = 0
    while index < len(arrivals):
        now = time.monotonic() - start
        due: list[Arrival] = []
        while index < len(arrivals) and arrivals[index].at <= now:
            due.append(arrivals[index])
            index += 1
        if due:
            enqueue_orders(engine, due)
            committed = time.monotonic()
            for a in due:
                enqueued[a.sfo_id] = committed
        if time.monotonic() >= next_report:
            _, accepted = sim.snapshot()
            print(
                f"  t={time.monotonic() - start:5.0f} s  arrived {index:>6}  created {len(accepted):>6}  "
                f"429s {sim.ledger.throttled()}",
                flush=True,
            )
            next_report += PROGRESS_EVERY_S
        pause = start + (arrivals[index].at if index < len(arrivals) else args.duration) - time.monotonic()
        time.sleep(min(max(pause, 0.0), TICK_S) if pause > 0 else 0)
    end = start + args.duration
    while time.monotonic() < end:
        time.sleep(0.05)
    cpu = meter.read()
    end_wall = datetime.now(UTC)
    window_start = start + args.warmup
    drain_deadline = time.monotonic() + args.drain
    while time.monotonic() < drain_deadline:
        _, accepted = sim.snapshot()
        if len(accepted) >= len(arrivals):
            break
        time.sleep(0.2)
    previewed, accepted = sim.snapshot()
    jobs = jobs_by_status(engine)
    for worker in res.workers:
        worker.stop()
    log_text = "".join(w.log_text() for w in res.workers)

    window = end - window_start
    allowed = args.sellers * rate
    in_window = [t for t in accepted.values() if window_start <= t <= end]
    # The workers' CPU per create over the metered span (arrivals): on a saturated machine the
    # create rate depends on the share of the cores the workers get; this does much less.
    metered_until = start + (cpu["wall"] or 0.0)
    metered = sum(1 for t in accepted.values() if start <= t <= metered_until)
    worker_cpu_s = (cpu["workers"] or 0.0) * (cpu["wall"] or 0.0)
    cpu_ms_per_create = worker_cpu_s * 1000 / metered if worker_cpu_s and metered else None
    arrived_in_window = [a for a in arrivals if args.warmup <= a.at <= args.duration]
    fraction = len(in_window) / (window * allowed) if window > 0 else None
    offered = len(arrived_in_window) / (window * allowed) if window > 0 else None
    late = lateness(log_text, start_wall.replace(microsecond=0) + _seconds(args.warmup), end_wall)
    to_preview = [
        previewed[a.item_id] - enqueued[a.sfo_id]
        for a in arrived_in_window
        if a.item_id in previewed and a.sfo_id in enqueued
    ]
    job_ms = [float(m) for m in DONE_RE.findall(log_text)]
    warnings = [
        line
        for line in log_text.splitlines()
        if (" WARNING " in line or " ERROR " in line) and "channels file:" not in line
    ]
    throttled = sim.ledger.throttled()
    handed_back = sum(1 for line in log_text.splitlines() if "kind=submit handed back" in line)
    missing = len(arrivals) - len(accepted)

    print()
    print(
        f"creates in the window ({window:.0f} s): {len(in_window)} = {len(in_window) / window:.1f}/s of "
        f"the allowed {allowed:g}/s -> fraction {_fmt(fraction)}   (arrivals offered {_fmt(offered)} of it)"
    )
    print(f"429 answers over the whole run: {throttled}; orders not created by the end: {missing}")
    print(
        f"job pickup (due -> claimed, {len(late)} claims): p50 {_fmt(percentile(late, 50))} s, "
        f"p99 {_fmt(percentile(late, 99))} s, max {_fmt(percentile(late, 100))} s"
    )
    print(
        "  cross-check, arrival committed -> preview at the simulator: "
        f"p50 {_fmt(percentile(to_preview, 50))} s, p99 {_fmt(percentile(to_preview, 99))} s"
    )
    print(
        f"CPU (cores): workers {_fmt(cpu['workers'], '.2f')}, this process (simulator + arrivals) "
        f"{_fmt(cpu['bench_process'], '.2f')}, whole machine {_fmt(cpu['machine'], '.2f')} of "
        f"{os.cpu_count()}; workers' CPU per create {_fmt(cpu_ms_per_create, '.1f')} ms; "
        f"submit job p50 {_fmt(percentile(job_ms, 50), '.0f')} ms; "
        f"load average now {os.getloadavg()[0]:.2f}"
    )
    print(
        f"jobs at the end: {jobs}; submit jobs handed back to wait for a rate token: {handed_back}; "
        f"worker warnings/errors: {len(warnings)}"
    )
    for line in warnings[:5]:
        print(f"    {line[:200]}")

    p99 = percentile(late, 99)
    meets = (
        fraction is not None
        and fraction >= TARGET_RATE_FRACTION
        and throttled <= TARGET_429
        and _r(p99) is not None
        and p99 <= TARGET_PICKUP_P99_S
    )
    return {
        "bench": "scale",
        "sellers": args.sellers,
        "workers": args.workers,
        "database": db.kind,
        "create_rate_fraction": _r(fraction),
        "target_create_rate_fraction": TARGET_RATE_FRACTION,
        "create_rate_per_s": _r(len(in_window) / window if window > 0 else None, 2),
        "allowed_rate_per_s": allowed,
        "arrival_rate_fraction": _r(offered),
        "self_429": throttled,
        "target_self_429": TARGET_429,
        "pickup_p50_s": _r(percentile(late, 50)),
        "pickup_p99_s": _r(p99),
        "pickup_max_s": _r(percentile(late, 100)),
        "target_pickup_p99_s": TARGET_PICKUP_P99_S,
        "arrival_to_preview_p99_s": _r(percentile(to_preview, 99)),
        "orders": len(arrivals),
        "not_created": missing,
        "window_s": _r(window, 1),
        "submit_job_p50_ms": _r(percentile(job_ms, 50), 0),
        "cpu_workers": _r(cpu["workers"], 2),
        "worker_cpu_ms_per_create": _r(cpu_ms_per_create, 1),
        "cpu_bench_process": _r(cpu["bench_process"], 2),
        "cpu_machine": _r(cpu["machine"], 2),
        "cpus": os.cpu_count(),
        "hot_backlog": args.hot_backlog,
        "rate_wait_s": args.rate_wait,
        "handed_back": handed_back,
        "worker_warnings": len(warnings),
        "seed": seed,
        "meets_targets": meets,
    }


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if _r(value, 6) is None else format(value, spec)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sellers",
        type=int,
        default=DEFAULT_SELLERS,
        help=f"Amazon accounts (default {DEFAULT_SELLERS}; the issue's figure is {ISSUE_SELLERS})",
    )
    parser.add_argument("--workers", type=int, default=4, help="`bridge worker` processes (default 4)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals (default 60)")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds before the measuring window opens (default 10)"
    )
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds to wait for the last creates (default 60)"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="PostgreSQL server to create the throw-away database on (default "
        f"{DEFAULT_DATABASE}), or a sqlite:/// URL",
    )
    parser.add_argument(
        "--hot-backlog",
        type=int,
        default=0,
        help="orders of seller 1 queued at the start on top of the arrivals (a bulk import; default 0)",
    )
    parser.add_argument(
        "--rate-wait",
        type=float,
        default=0.5,
        help="the workers' BRIDGE_RATE_WAIT_S (default 0.5; 3600: always sleep for a token, as before)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for the arrivals")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (worker logs)")
    parser.add_argument("--json-out", type=Path, default=None, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.sellers <= 999 or not 1 <= args.workers <= 16:
        parser.error("--sellers must be in [1, 999] and --workers in [1, 16]")
    if not 0 <= args.warmup < args.duration <= 3600:
        parser.error("need 0 <= --warmup < --duration <= 3600")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    workdir = Path(tempfile.mkdtemp(prefix="fba-bench-scale-"))
    res = Resources()
    started = time.monotonic()
    try:
        requested = None if args.database_url == "sqlite" else args.database_url
        with prepared_database(requested, workdir) as db:
            try:
                line = run(args, db, workdir, seed, res)
            finally:
                res.stop()
    except BenchError as exc:
        print(f"scale bench could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        res.stop()
        if args.keep_workdir:
            print(f"workdir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    line["wall_s"] = round(time.monotonic() - started, 1)
    emit(line, args.json_out)
    return 0 if line["not_created"] == 0 else 1


def _terminate(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: workers stopped, bench database removed", file=sys.stderr)
        sys.exit(130)
