"""Submission benchmark: how fast, and how politely, does fba-bridge hand orders to Amazon MCF?

The issue asks: queue N orders (1,000) against the simulator with Amazon's default limits on a
sped-up clock and report

- the achieved create rate as a fraction of the allowed rate (target >= 0.9),
- the number of 429 answers (target 0),
- SP-API calls per submitted order (target <= 2.1),
- end-to-end latency from webhook to accepted create when idle (target p50 <= 2 s).

Set-up, all on 127.0.0.1:

- the MCF simulator (config/simulator.yaml inventory, Amazon's default usage plans: 2 requests/s,
  burst 30, per operation) served from this process; its rate limits run on real time, its
  fulfilment clock `--speed` times faster;
- the web app under gunicorn (gthread, as in the Procfile), receiving signed Shopify webhooks for
  channel `shop-a` (storefront SKU TSHIRT-RED-M -> FBA-TSHIRT-RED-M);
- `fba-bridge worker` as a separate process, talking to the simulator over loopback
  (BRIDGE_SIMULATOR_URL), with its rate budget in the database like production;
- a fresh SQLite file, or with `--database-url postgresql://...` a fresh `bench_<random>`
  database on that server, dropped afterwards.

Phases:

1. Throughput. N signed `orders/create` webhooks are sent first (the queue fills while no worker
   runs), then the worker starts and the bench waits until all N creates were accepted by the
   simulator. Every order costs getFulfillmentPreview + createFulfillmentOrder; each operation has
   its own bucket of 2/s, so creates are bound to 2/s after the 30-call burst. The headline rate
   is `(N - burst) / (last create - first create)`: how much of the refill the worker used (a
   client spending the budget perfectly scores exactly 2/s; the burst is taken out because it is
   not a rate). Also printed: creates 31..N over their own window, and the raw (N - 1) / window.
2. Idle latency. With the queue empty and the worker idle, `--idle-webhooks` webhooks are sent
   `--idle-interval` s apart; latency runs from the moment a webhook is sent to the moment the
   simulator accepted its create (both on this process's monotonic clock), split into
   acknowledgement, pick-up (ack -> preview reaches Amazon) and submission (preview -> create).
   The database's own audit trail (delivery received_at -> `created` event) is a cross-check.

429s are counted by the simulator over the whole run; calls per order counts every request the
simulator saw in the throughput phase (LWA token grants included) per created order.

The issue's figure is N = 1000: at 2 creates/s that is ~8.5 min, over the 5-minute budget for a
default run, so the default is N = 300 (~2.3 min of submitting, ~3 min in all). The output says
which one ran:

    python bench/submit.py                       # 300 orders, fresh SQLite file
    python bench/submit.py --orders 1000         # the issue's figure (~9.5 min)
    python bench/submit.py --database-url postgresql://postgres@127.0.0.1:5432/test

The last line printed is one JSON object with the figures. The exit status is 0 whatever the
figures are (there are no timing asserts); 1 if an order was not created (the figures would not
mean what they say) and 2 if the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import contextlib
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import (  # noqa: E402
    BenchError,
    Database,
    Process,
    emit,
    free_port,
    percentile,
    prepared_database,
    shopify_line,
    shopify_order,
    signed_shopify_delivery,
)
from common import console_script as _console_script  # noqa: E402
from common import proc_ticks as _proc_ticks  # noqa: E402

from bridge.amazon.simulator import (  # noqa: E402
    ApiError,
    RunningServer,
    Simulator,
    create_simulator_app,
    load_config,
    serve_in_thread,
)
from bridge.amazon.simulator.state import CallPermit  # noqa: E402
from bridge.clock import ScaledClock, SystemClock  # noqa: E402

DEFAULT_CONFIG = ROOT / "config" / "channels.yaml"
#: The order tag every bench order carries (unless --no-features): BLOCK_AMZL on every order.
FEATURE_TAGS = "MCF_BLOCK_AMZL"
DEFAULT_SIMULATOR_CONFIG = ROOT / "config" / "simulator.yaml"
DEFAULT_SECRET = "demo-shopify-secret"
CHANNEL = "shop-a"
STOREFRONT_SKU = "TSHIRT-RED-M"
AMAZON_SKU = "FBA-TSHIRT-RED-M"
CREATE_OP = "createFulfillmentOrder"
PREVIEW_OP = "getFulfillmentPreview"

DEFAULT_ORDERS = 300
ISSUE_ORDERS = 1000
TARGET_RATE_FRACTION = 0.9
TARGET_429 = 0
TARGET_CALLS_PER_ORDER = 2.1
TARGET_IDLE_P50_S = 2.0

REQUEST_TIMEOUT_S = 15.0
STARTUP_TIMEOUT_S = 60.0
IDLE_GRACE_S = 30.0
POLL_S = 0.05
PROGRESS_EVERY_S = 15.0


# --------------------------------------------------------------------------------------------
# Simulator with timestamps


class TimedSimulator(Simulator):
    """The simulator, noting on this process's monotonic clock when each order's preview reached
    it and when its create was accepted (the ledger counts calls but keeps no per-order times)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._marks = threading.Lock()
        self.previewed: dict[str, float] = {}  # sellerFulfillmentOrderItemId -> first preview
        self.accepted: dict[str, float] = {}  # sellerFulfillmentOrderId -> accepted create
        self.arrivals: list[tuple[str, float, int]] = []  # (operation, rate-clock time, 429 or 0)

    def begin_call(self, operation: str, access_token: str | None) -> CallPermit:
        at = self.rate_clock.monotonic()
        try:
            permit = super().begin_call(operation, access_token)
        except ApiError as err:
            with self._marks:
                self.arrivals.append((operation, at, err.status))
            raise
        with self._marks:
            self.arrivals.append((operation, at, 0))
        return permit

    def throttle_report(self) -> list[dict[str, Any]]:
        """For each 429: which call it was and how early it came, replaying the operation's bucket
        over the arrival times (the simulator's own bucket reads its clock a moment later)."""
        with self._marks:
            arrivals = list(self.arrivals)
        out: list[dict[str, Any]] = []
        buckets: dict[str, list[float]] = {}  # op -> [tokens, updated, first arrival, calls]
        for op, at, status in arrivals:
            limit = self.config.limit_for(op)
            b = buckets.setdefault(op, [float(limit.burst), at, at, 0.0])
            b[0] = min(float(limit.burst), b[0] + (at - b[1]) * limit.rate)
            b[1] = at
            b[3] += 1
            if status == 429:
                out.append(
                    {
                        "operation": op,
                        "call": int(b[3]),
                        "after_first_call_s": round(at - b[2], 3),
                        "early_ms": round(max(0.0, 1.0 - b[0]) / limit.rate * 1000, 1),
                    }
                )
            elif b[0] >= 1.0:
                b[0] -= 1.0
        return out

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

    def accepted_times(self, sfo_ids: set[str]) -> dict[str, float]:
        with self._marks:
            return {k: v for k, v in self.accepted.items() if k in sfo_ids}

    def preview_time(self, item_id: str) -> float | None:
        with self._marks:
            return self.previewed.get(item_id)


# --------------------------------------------------------------------------------------------
# Webhooks


@dataclass(frozen=True)
class Webhook:
    order_id: int
    item_id: str
    sfo_id: str
    body: bytes
    headers: dict[str, str]


class WebhookFactory:
    """Signed Shopify `orders/create` deliveries: one paid order of one TSHIRT-RED-M each, tagged
    `MCF_BLOCK_AMZL` unless features are off (shop-a checks eligibility, cached per worker)."""

    def __init__(self, secret: str, seed: int, tags: str = "") -> None:
        self.tags = tags
        from bridge.pipeline.plan import seller_fulfillment_order_id

        self._sfo_id = seller_fulfillment_order_id
        self.secret = secret.encode("utf-8")
        self.rng = random.Random(seed)
        self.next_order_id = 6_000_000_000_000 + self.rng.randrange(10**9) * 1000
        self.count = 0

    def make(self) -> Webhook:
        self.count += 1
        order_id = self.next_order_id
        self.next_order_id += 1
        number = 1000 + self.count
        line_id = order_id * 10 + 1
        now = datetime.now(UTC).isoformat(timespec="seconds")
        line = shopify_line(line_id, STOREFRONT_SKU, 1, "19.99", "T-Shirt", "Red / M", 1)
        order = shopify_order(order_id, number, [line], "24.98", now)
        if self.tags:
            order["tags"] = self.tags
        signed = signed_shopify_delivery(self.secret, order, self.rng, f"{CHANNEL}.myshopify.com", now)
        body, headers = signed.body, signed.headers
        return Webhook(order_id, str(line_id), self._sfo_id(CHANNEL, str(order_id)), body, headers)


@dataclass
class Sent:
    hook: Webhook
    sent: float
    acked: float
    status: int  # 0: transport error
    outcome: str


def send(client: httpx.Client, hook: Webhook) -> Sent:
    sent = time.monotonic()
    try:
        response = client.post(f"/webhooks/{CHANNEL}", content=hook.body, headers=hook.headers)
    except httpx.HTTPError as exc:
        return Sent(hook, sent, time.monotonic(), 0, f"{type(exc).__name__}: {exc}"[:200])
    acked = time.monotonic()
    outcome = response.text[:200]
    if response.status_code == 200:
        with contextlib.suppress(ValueError, AttributeError):
            outcome = str(response.json().get("status", ""))
    return Sent(hook, sent, acked, response.status_code, outcome)


def check_accepted(results: Sequence[Sent], what: str) -> None:
    bad = [r for r in results if r.status != 200 or r.outcome != "accepted"]
    if bad:
        examples = "; ".join(f"HTTP {r.status} {r.outcome}" for r in bad[:3])
        raise BenchError(f"{len(bad)} of {len(results)} {what} webhooks were not accepted (e.g. {examples})")


# --------------------------------------------------------------------------------------------
# Database


class Probe:
    """Read-only queries the bench makes against the bridge's database."""

    def __init__(self, url: str) -> None:
        from bridge.store import make_engine

        self.engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def jobs_by_status(self) -> dict[str, int]:
        from sqlalchemy import func, select
        from sqlmodel import col

        from bridge.store import JobRecord, read_session

        with read_session(self.engine) as session:
            rows = session.execute(
                select(col(JobRecord.status), func.count()).group_by(col(JobRecord.status))
            ).all()
        return {str(status): int(n) for status, n in rows}

    def orders_by_state(self) -> dict[str, int]:
        from sqlalchemy import func, select
        from sqlmodel import col

        from bridge.store import OrderRecord, read_session

        with read_session(self.engine) as session:
            rows = session.execute(
                select(col(OrderRecord.state), func.count()).group_by(col(OrderRecord.state))
            ).all()
        return {str(state): int(n) for state, n in rows}

    def last_errors(self, limit: int = 3) -> list[str]:
        from sqlalchemy import select
        from sqlmodel import col

        from bridge.store import JobRecord, read_session

        with read_session(self.engine) as session:
            rows = session.execute(
                select(col(JobRecord.last_error)).where(col(JobRecord.last_error) != "").limit(limit)
            ).all()
        return [str(r[0])[:200] for r in rows]

    def audit_latencies(self, external_ids: Sequence[str]) -> list[float]:
        """Seconds from a delivery's `received_at` to its order's `created` audit event."""
        from sqlalchemy import select
        from sqlmodel import col

        from bridge.orders import Event
        from bridge.store import DeliveryRecord, OrderEventRecord, OrderRecord, read_session

        query = (
            select(col(DeliveryRecord.received_at), col(OrderEventRecord.at))
            .join(OrderRecord, col(OrderRecord.id) == col(DeliveryRecord.order_id))
            .join(OrderEventRecord, col(OrderEventRecord.order_id) == col(OrderRecord.id))
            .where(
                col(OrderRecord.channel_id) == CHANNEL,
                col(OrderRecord.external_id).in_(list(external_ids)),
                col(OrderEventRecord.event) == Event.CREATED.value,
            )
        )
        with read_session(self.engine) as session:
            rows = session.execute(query).all()
        return sorted((_utc(at) - _utc(received)).total_seconds() for received, at in rows)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Processes


def bridge_env(db: Database, args: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=db.url,
        BRIDGE_CONFIG=str(args.config.resolve()),
        LOG_LEVEL=args.log_level,
        SHOP_A_WEBHOOK_SECRET=args.secret,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def start_web(db: Database, args: argparse.Namespace, workdir: Path) -> tuple[Process, str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        *_console_script("gunicorn", "gunicorn"),
        "--worker-class",
        "gthread",
        "--workers",
        str(args.web_workers),
        "--threads",
        "4",
        "--timeout",
        "30",
        "--bind",
        f"127.0.0.1:{port}",
        "bridge.app:create_app()",
    ]
    web = Process("gunicorn", command, bridge_env(db, args), workdir / "gunicorn.log")
    web.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if web.exited() is not None:
            raise BenchError(f"gunicorn exited with status {web.exited()} during start-up:\n{web.log_tail()}")
        try:
            response = httpx.get(base_url + "/healthz", timeout=2.0)
            if response.status_code == 200:
                return web, base_url
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise BenchError(
        f"gunicorn did not answer /healthz within {STARTUP_TIMEOUT_S:.0f} s (last: {last}):\n"
        + web.log_tail()
    )


# --------------------------------------------------------------------------------------------
# Figures


def max_in_window(times: Sequence[float], width: float = 1.0) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _r(value: float | None, digits: int = 3) -> float | None:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None
    return round(value, digits)


@dataclass
class Throughput:
    orders: int
    created: int
    burst: int
    allowed_rate: float
    times: list[float]  # accepted create times, sorted
    worker_started: float
    calls: dict[str, int]
    throttled: int
    throttled_by_op: dict[str, int]
    worker_cpu: float | None

    @property
    def window_s(self) -> float:
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0

    @property
    def rate_beyond_burst(self) -> float | None:
        """(creates - burst) / (last - first): the share of the bucket's refill that was used."""
        if self.created <= self.burst or self.window_s <= 0:
            return None
        return (self.created - self.burst) / self.window_s

    @property
    def rate_after_burst_window(self) -> float | None:
        """Creates burst+1..N over their own window (overstates when the burst took a while)."""
        tail = self.times[self.burst :]
        if len(tail) < 2 or tail[-1] <= tail[0]:
            return None
        return (len(tail) - 1) / (tail[-1] - tail[0])

    @property
    def raw_rate(self) -> float | None:
        if self.window_s <= 0:
            return None
        return (self.created - 1) / self.window_s

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def calls_per_order(self) -> float | None:
        return self.total_calls / self.created if self.created else None


@dataclass
class IdleSample:
    sent: Sent
    preview: float | None
    created: float | None

    @property
    def latency(self) -> float | None:
        return None if self.created is None else self.created - self.sent.sent


# --------------------------------------------------------------------------------------------
# Phases


def queue_orders(base_url: str, hooks: Sequence[Webhook], senders: int) -> list[Sent]:
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    with (
        httpx.Client(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client,
        ThreadPoolExecutor(max_workers=senders, thread_name_prefix="sender") as pool,
    ):
        return list(pool.map(lambda hook: send(client, hook), hooks))


def run_throughput(
    args: argparse.Namespace,
    sim: TimedSimulator,
    workers: list[Process],
    hooks: Sequence[Webhook],
    burst: int,
    rate: float,
) -> Throughput:
    wanted = {h.sfo_id for h in hooks}
    n = len(hooks)
    timeout = args.timeout or (60.0 + 1.5 * max(0, n - burst) / rate)
    hz = os.sysconf("SC_CLK_TCK") if Path("/proc/stat").exists() else 100
    started = time.monotonic()
    for worker in workers:
        worker.start()
    ticks_before = {w.name: _proc_ticks(w.pid) or 0 for w in workers}
    deadline = started + timeout
    next_report = started + PROGRESS_EVERY_S
    last_count, last_at = 0, started
    accepted: dict[str, float] = {}
    while True:
        accepted = sim.accepted_times(wanted)
        now = time.monotonic()
        if len(accepted) >= n:
            break
        dead = [w for w in workers if w.exited() is not None]
        if dead:
            raise BenchError(
                f"{dead[0].name} exited with status {dead[0].exited()} after "
                f"{len(accepted)} creates:\n{dead[0].log_tail()}"
            )
        if now >= deadline:
            print(f"  timeout: only {len(accepted)} of {n} orders created after {timeout:.0f} s", flush=True)
            break
        if now >= next_report:
            print(
                f"  t={now - started:5.0f} s  created {len(accepted):>5}/{n}  "
                f"last {PROGRESS_EVERY_S:.0f} s: {(len(accepted) - last_count) / (now - last_at):.2f}/s",
                flush=True,
            )
            next_report += PROGRESS_EVERY_S
            last_count, last_at = len(accepted), now
        time.sleep(0.2)
    wall = time.monotonic() - started
    ticks_after = {w.name: _proc_ticks(w.pid) for w in workers}
    cpu: float | None = None
    if all(v is not None for v in ticks_after.values()) and wall > 0:
        cpu = sum((ticks_after[k] or 0) - ticks_before[k] for k in ticks_before) / hz / wall
    snapshot = sim.ledger.snapshot()
    return Throughput(
        orders=n,
        created=len(accepted),
        burst=burst,
        allowed_rate=rate,
        times=sorted(accepted.values()),
        worker_started=started,
        calls=dict(snapshot["calls"]),
        throttled=int(snapshot["throttledTotal"]),
        throttled_by_op={op: n for op, n in snapshot["throttled"].items() if n},
        worker_cpu=cpu,
    )


def run_idle(
    args: argparse.Namespace, sim: TimedSimulator, base_url: str, hooks: Sequence[Webhook]
) -> list[IdleSample]:
    sent: list[Sent] = []
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        client.get("/healthz")  # an open connection, as a storefront's sender would have
        start = time.monotonic() + 0.1
        for i, hook in enumerate(hooks):
            due = start + i * args.idle_interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sent.append(send(client, hook))
    check_accepted(sent, "idle-phase")
    wanted = {h.sfo_id for h in hooks}
    deadline = time.monotonic() + IDLE_GRACE_S
    while len(sim.accepted_times(wanted)) < len(hooks) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    accepted = sim.accepted_times(wanted)
    return [IdleSample(s, sim.preview_time(s.hook.item_id), accepted.get(s.hook.sfo_id)) for s in sent]


def wait_for_empty_queue(probe: Probe, timeout: float = 30.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    jobs = probe.jobs_by_status()
    while (jobs.get("ready", 0) or jobs.get("running", 0)) and time.monotonic() < deadline:
        time.sleep(0.2)
        jobs = probe.jobs_by_status()
    return jobs


def job_durations_ms(log_text: str) -> list[float]:
    return [float(m) for m in re.findall(r"kind=submit done ms=(\d+)", log_text)]


def warning_lines(log_text: str) -> list[str]:
    """WARNING/ERROR lines of the worker log, without the start-up notes about demo secrets."""
    return [
        line
        for line in log_text.splitlines()
        if (" WARNING " in line or " ERROR " in line) and "channels file:" not in line
    ]


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=DEFAULT_ORDERS,
        help=f"orders queued for the throughput phase (default {DEFAULT_ORDERS}; the issue's "
        f"figure is {ISSUE_ORDERS}, ~9.5 min)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a fresh SQLite file in a temp dir; a postgresql:// URL gets a fresh "
        "bench_<random> database on that server, dropped afterwards",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulator fulfilment clock speed (virtual s per real s; default 60); rate "
        "limits always run on real time",
    )
    parser.add_argument("--idle-webhooks", type=int, default=20, help="idle-latency webhooks (default 20)")
    parser.add_argument(
        "--idle-interval", type=float, default=1.0, help="s between idle-latency webhooks (default 1)"
    )
    parser.add_argument(
        "--idle-settle",
        type=float,
        default=5.0,
        help="s to wait with the queue empty before the idle phase (default 5; lets the "
        "2/s buckets refill after the throughput phase)",
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        help="`fba-bridge worker` processes sharing the queue and the rate budget (default 1)",
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2, x4 threads)")
    parser.add_argument(
        "--senders", type=int, default=4, help="concurrent connections while queueing the orders (default 4)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="bound on the throughput phase in s (default 60 + 1.5 x the ideal duration)",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="LOG_LEVEL of the bridge processes (default INFO)"
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="channels file (shop-a is used)")
    parser.add_argument(
        "--simulator-config",
        type=Path,
        default=DEFAULT_SIMULATOR_CONFIG,
        help="simulator inventory file (default config/simulator.yaml)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("SHOP_A_WEBHOOK_SECRET") or DEFAULT_SECRET,
        help="webhook secret to sign with; the bridge gets it as SHOP_A_WEBHOOK_SECRET",
    )
    parser.add_argument(
        "--no-features",
        dest="features",
        action="store_false",
        help="send orders without the MCF_BLOCK_AMZL tag (default: every order requires BLOCK_AMZL, "
        "so the preview and the create carry featureConstraints and eligibility is checked)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for order and webhook ids")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (logs, SQLite file)")
    parser.add_argument("--json-out", type=Path, default=None, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.orders <= 20_000:
        parser.error("--orders must be between 1 and 20000")
    if not 0 <= args.idle_webhooks <= 1000 or not 0.05 <= args.idle_interval <= 60:
        parser.error("--idle-webhooks must be in [0, 1000] and --idle-interval in [0.05, 60]")
    if not 0 <= args.idle_settle <= 120 or args.speed <= 0:
        parser.error("--idle-settle must be in [0, 120] and --speed positive")
    if not 1 <= args.worker_processes <= 8 or not 1 <= args.web_workers <= 8 or not 1 <= args.senders <= 64:
        parser.error("--worker-processes and --web-workers must be in [1, 8], --senders in [1, 64]")
    if args.timeout is not None and not 0 < args.timeout <= 7200:
        parser.error("--timeout must be in (0, 7200]")
    return args


def _fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "-" if _r(value, 6) is None else f"{format(value, spec)}{unit}"


def report(
    args: argparse.Namespace,
    db: Database,
    tp: Throughput,
    idle: list[IdleSample],
    idle_calls: dict[str, int],
    total_throttled: int,
    audit: list[float],
    worker_log: str,
    states: dict[str, int],
    jobs: dict[str, int],
    queued_s: float,
    errors: list[str],
    throttles: list[dict[str, Any]],
) -> dict[str, Any]:
    full = tp.orders >= ISSUE_ORDERS
    headline = tp.rate_beyond_burst
    fraction = None if headline is None else headline / tp.allowed_rate
    first_create = tp.times[0] - tp.worker_started if tp.times else None
    steady = tp.times[tp.burst :]
    job_ms = job_durations_ms(worker_log)
    steady_job_ms = job_ms[tp.burst :]  # the first jobs ride the burst and do not wait on the limiter
    warnings = warning_lines(worker_log)
    print()
    scope = "the issue's figure" if full else f"shortened run; the issue's figure is --orders {ISSUE_ORDERS}"
    print(f"throughput: {tp.created} of {tp.orders} orders created ({scope})")
    print(
        f"  queued in {queued_s:.1f} s; worker start -> first create {_fmt(first_create, '.1f', ' s')}; "
        f"first -> last create {tp.window_s:.1f} s"
    )
    print(
        f"  create rate beyond the burst (N - {tp.burst}) / (last - first): {_fmt(headline)}/s = "
        f"{_fmt(fraction, '.3f')} of the allowed {tp.allowed_rate:g}/s   <- headline"
    )
    print(
        f"  creates {tp.burst + 1}..N over their own window: {_fmt(tp.rate_after_burst_window)}/s "
        f"(includes tokens refilled while the burst was being spent, so it can exceed {tp.allowed_rate:g})"
    )
    print(
        f"  all creates over first -> last: {_fmt(tp.raw_rate)}/s (includes the {tp.burst}-call burst); "
        f"most creates in any 1 s after the burst: {max_in_window(steady)}"
    )
    calls = ", ".join(f"{op} {n}" for op, n in sorted(tp.calls.items()))
    print(
        f"  SP-API calls seen by the simulator: {calls} -> {_fmt(tp.calls_per_order, '.3f')} "
        "per created order"
    )
    cpu = None if tp.worker_cpu is None else tp.worker_cpu * 100
    print(
        f"  worker CPU {_fmt(cpu, '.0f', '%')} of one core; "
        f"submit job p50 {_fmt(percentile(steady_job_ms, 50), '.0f', ' ms')} after the burst "
        f"(p50 {_fmt(percentile(job_ms[: tp.burst], 50), '.0f', ' ms')} during it); "
        f"worker warnings/errors: {len(warnings)}"
    )
    for line in warnings[:6]:
        print(f"    {line[:220]}")
    latencies = [s.latency for s in idle if s.latency is not None]
    acks = [s.sent.acked - s.sent.sent for s in idle]
    pickups = [s.preview - s.sent.acked for s in idle if s.preview is not None]
    submits = [s.created - s.preview for s in idle if s.created is not None and s.preview is not None]
    p50 = percentile(latencies, 50)
    if idle:
        print(
            f"idle latency, webhook sent -> create accepted ({len(latencies)}/{len(idle)} created, "
            f"{args.idle_interval:g} s apart): p50 {_fmt(p50)} s, p95 {_fmt(percentile(latencies, 95))} s, "
            f"max {_fmt(percentile(latencies, 100))} s"
        )
        print(
            f"  ack p50 {_fmt(percentile(acks, 50) * 1000, '.0f')} ms; ack -> preview at Amazon (pick-up) "
            f"p50 {_fmt(percentile(pickups, 50))} s, max {_fmt(percentile(pickups, 100))} s; "
            f"preview -> create accepted p50 {_fmt(percentile(submits, 50))} s"
        )
        print(
            "  cross-check, audit trail received_at -> 'created' event: "
            f"p50 {_fmt(percentile(audit, 50))} s "
            f"({len(audit)} orders); idle-phase calls: "
            + ", ".join(f"{op} {n}" for op, n in sorted(idle_calls.items()))
        )
    print(
        f"429 answers over the whole run: {total_throttled} (throughput phase: {tp.throttled_by_op or 0}); "
        f"orders by state: {states}; jobs: {jobs}"
    )
    for detail in throttles:
        print(
            f"  429: {detail['operation']} call #{detail['call']} at +{detail['after_first_call_s']:.3f} s "
            f"after its first call, {detail['early_ms']:.1f} ms before the simulator's bucket had a token"
        )
    for err in errors:
        print(f"  job error: {err}")

    meets = (
        fraction is not None
        and fraction >= TARGET_RATE_FRACTION
        and total_throttled <= TARGET_429
        and tp.calls_per_order is not None
        and tp.calls_per_order <= TARGET_CALLS_PER_ORDER
        and (not idle or (_r(p50) is not None and p50 <= TARGET_IDLE_P50_S))
        and tp.created == tp.orders
        and all(s.created is not None for s in idle)
    )
    return {
        "bench": "submit",
        "database": db.kind,
        "orders": tp.orders,
        "issue_orders": ISSUE_ORDERS,
        "full_issue_run": full,
        "created": tp.created,
        "create_rate_per_s": _r(headline),
        "allowed_rate_per_s": tp.allowed_rate,
        "create_rate_fraction": _r(fraction),
        "target_create_rate_fraction": TARGET_RATE_FRACTION,
        "rate_method": f"(created - burst {tp.burst}) / (last create - first create)",
        "create_rate_after_burst_window_per_s": _r(tp.rate_after_burst_window),
        "create_rate_raw_per_s": _r(tp.raw_rate),
        "create_window_s": _r(tp.window_s, 1),
        "first_create_after_s": _r(first_create, 2),
        "throttled_429": total_throttled,
        "throttled_429_throughput_by_op": tp.throttled_by_op,
        "throttled_429_detail": throttles[:10],
        "target_throttled_429": TARGET_429,
        "calls": tp.calls,
        "mcf_features": FEATURE_TAGS if args.features else "off",
        "feature_eligibility_checked": bool(args.features),
        "calls_per_order": _r(tp.calls_per_order),
        "target_calls_per_order": TARGET_CALLS_PER_ORDER,
        "idle_webhooks": len(idle),
        "idle_created": len(latencies),
        "idle_latency_p50_s": _r(p50),
        "idle_latency_p95_s": _r(percentile(latencies, 95)),
        "idle_latency_max_s": _r(percentile(latencies, 100)),
        "idle_ack_p50_ms": _r(percentile(acks, 50) * 1000, 1) if acks else None,
        "idle_pickup_p50_s": _r(percentile(pickups, 50)),
        "idle_submit_p50_s": _r(percentile(submits, 50)),
        "idle_audit_p50_s": _r(percentile(audit, 50)),
        "target_idle_latency_p50_s": TARGET_IDLE_P50_S,
        "worker_processes": args.worker_processes,
        "worker_cpu": _r(tp.worker_cpu, 2),
        "submit_job_p50_ms": _r(percentile(steady_job_ms, 50), 0),
        "worker_warnings": len(warnings),
        "speed": args.speed,
        "cpus": os.cpu_count(),
        "meets_targets": meets,
    }


@dataclass
class Resources:
    """Everything the bench started; `stop()` is idempotent and runs before the database is dropped."""

    sim_server: RunningServer | None = None
    web: Process | None = None
    workers: list[Process] = field(default_factory=list)
    probe: Probe | None = None

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stop(self) -> None:
        self.stop_workers()
        if self.web is not None:
            self.web.stop()
        if self.sim_server is not None:
            self.sim_server.stop()
            self.sim_server = None
        if self.probe is not None:
            self.probe.close()
            self.probe = None


def run(args: argparse.Namespace, db: Database, workdir: Path, seed: int, res: Resources) -> dict[str, Any]:
    from bridge.settings import mask_url

    config = load_config(args.simulator_config)
    sim = TimedSimulator(config, clock=ScaledClock(args.speed), rate_clock=SystemClock())
    needed = args.orders + args.idle_webhooks + 10
    if sim.available(AMAZON_SKU) < needed:
        sim.set_inventory(AMAZON_SKU, needed)  # FillOrKill: every order must be fulfillable
    create_limit, preview_limit = config.limit_for(CREATE_OP), config.limit_for(PREVIEW_OP)
    rate, burst = float(create_limit.rate), int(create_limit.burst)
    res.sim_server = sim_server = serve_in_thread(create_simulator_app(sim))
    res.probe = probe = Probe(db.url)
    scope = (
        "the issue's figure"
        if args.orders >= ISSUE_ORDERS
        else f"shortened to fit 5 min; --orders {ISSUE_ORDERS} for the issue's figure"
    )
    print(
        f"submit bench: {args.orders} orders ({scope}); database={db.kind} ({mask_url(db.url)}); seed={seed}",
        flush=True,
    )
    print(
        f"simulator on {sim_server.base_url}: {CREATE_OP} {create_limit.rate:g}/s burst "
        f"{create_limit.burst}, {PREVIEW_OP} {preview_limit.rate:g}/s burst {preview_limit.burst} "
        f"(real time); fulfilment clock x{args.speed:g}; {AMAZON_SKU} stock "
        f"{sim.available(AMAZON_SKU)}",
        flush=True,
    )

    res.web, base_url = start_web(db, args, workdir)
    print(f"gunicorn up on {base_url} ({args.web_workers} workers x 4 threads)", flush=True)
    factory = WebhookFactory(args.secret, seed, FEATURE_TAGS if args.features else "")
    backlog = [factory.make() for _ in range(args.orders)]
    queue_start = time.monotonic()
    check_accepted(queue_orders(base_url, backlog, args.senders), "backlog")
    queued_s = time.monotonic() - queue_start
    jobs = probe.jobs_by_status()
    if jobs.get("ready", 0) != args.orders:
        raise BenchError(f"expected {args.orders} ready jobs after queueing, found {jobs}")
    print(
        f"queued {args.orders} orders through the webhook endpoint in {queued_s:.1f} s; "
        f"{jobs.get('ready', 0)} submit jobs ready",
        flush=True,
    )

    worker_env = bridge_env(db, args, BRIDGE_SIMULATOR_URL=sim_server.base_url)
    res.workers = [
        Process(
            f"worker{i + 1}",
            [*_console_script("fba-bridge", "bridge"), "worker"],
            worker_env,
            workdir / f"worker{i + 1}.log",
        )
        for i in range(args.worker_processes)
    ]
    print(
        f"starting {len(res.workers)} `fba-bridge worker` process(es); throughput phase (~"
        f"{max(0, args.orders - burst) / rate:.0f} s at {rate:g}/s after the burst)",
        flush=True,
    )
    tp = run_throughput(args, sim, res.workers, backlog, burst, rate)
    print(f"throughput phase done: {tp.created}/{tp.orders} created", flush=True)

    jobs = wait_for_empty_queue(probe)
    idle: list[IdleSample] = []
    audit: list[float] = []
    before = dict(sim.ledger.snapshot()["calls"])
    if args.idle_webhooks and tp.created == tp.orders:
        time.sleep(args.idle_settle)
        print(
            f"idle phase: {args.idle_webhooks} webhooks {args.idle_interval:g} s apart, queue "
            f"empty (jobs {jobs})",
            flush=True,
        )
        idle_hooks = [factory.make() for _ in range(args.idle_webhooks)]
        idle = run_idle(args, sim, base_url, idle_hooks)
        wait_for_empty_queue(probe, 10.0)
        audit = probe.audit_latencies([str(h.order_id) for h in idle_hooks])
    after = sim.ledger.snapshot()
    idle_calls = {op: n - before.get(op, 0) for op, n in after["calls"].items() if n > before.get(op, 0)}
    states = probe.orders_by_state()
    jobs = probe.jobs_by_status()
    errors = probe.last_errors()
    res.stop_workers()
    worker_log = "".join(w.log_text() for w in res.workers)
    if tp.created < tp.orders:
        print("worker log (tail):\n" + res.workers[0].log_tail(), flush=True)
    return report(
        args,
        db,
        tp,
        idle,
        idle_calls,
        int(after["throttledTotal"]),
        audit,
        worker_log,
        states,
        jobs,
        queued_s,
        errors,
        sim.throttle_report(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the simulator's per-request access log
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    workdir = Path(tempfile.mkdtemp(prefix="fba-bench-submit-"))
    res = Resources()
    started = time.monotonic()
    try:
        with prepared_database(args.database_url, workdir) as db:
            try:
                line = run(args, db, workdir, seed, res)
            finally:
                res.stop()  # before the database is dropped
    except BenchError as exc:
        print(f"submit bench could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        res.stop()
        if args.keep_workdir:
            print(f"workdir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    line["wall_s"] = round(time.monotonic() - started, 1)
    emit(line, args.json_out)
    complete = line["created"] == line["orders"] and line["idle_created"] == line["idle_webhooks"]
    return 0 if complete else 1


def _terminate(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: child processes stopped, bench database removed", file=sys.stderr)
        sys.exit(130)
