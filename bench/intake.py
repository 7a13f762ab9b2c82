"""Intake benchmark: the bridge against a floor receiver, side by side, rate by rate.

Two gunicorn servers (gthread) on 127.0.0.1 share one database:

- the floor (`bench/floor_app.py`, 2 workers x 4 threads): HMAC check + JSON parse + one committed
  insert with dedupe -- the least any receiver on this stack must do;
- the bridge (`bridge.app:create_app()`, 2 workers x `--threads`, default its production
  `WEB_THREADS`, with the Procfile's worker class `bridge.web.server.QueueTimedWorker`: gthread
  that tells the admission gate how long each request waited for a thread), with its webhook
  admission gate as configured (BRIDGE_WEBHOOK_* variables).

Both get the same open-loop generator and the same signed Shopify `orders/create` bodies (about
6.6 KB, the size of a real order with customer, addresses, taxes and line details; ~5% exact
replays that must be answered `duplicate`). At each rate of the ladder the floor runs one step,
then the bridge (alternately, so background load on this shared machine hits both alike); a
server stops climbing after its first failing step. A step passes when p99 <= 500 ms and every
answer is 2xx; the knee is the highest passing rate. Then the bridge alone is offered 2x and 4x
its own knee (overload): every answer should come within 5 s (refusals are `503` +
`Retry-After`), and its 2xx throughput should stay >= 0.9 x its knee's.

Open loop: request i is due at `start + i / rate` whatever happened to the earlier ones, and its
latency runs from that due time (no coordinated omission). `--senders` bounds concurrent
connections; a request waiting for a free sender is still on the clock. Each webhook goes on a
new connection, as deliveries from a storefront's many senders would.

Durability: every webhook id the bridge acknowledged (2xx) must have its row in `deliveries`
(`lost`), and none it refused (and never acknowledged) may have one (`refused_stored`). A busy
bridge stores some deliveries without applying them (`BRIDGE_WEBHOOK_DEFER_AT`, an `intake` job
each); after the servers stop, one in-process worker runs those jobs, and every one of them must
end applied (`deferred_unapplied`), at a rate the summary reports.

    python bench/intake.py                      # fresh SQLite file in a temp dir (~4 minutes)
    python bench/intake.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/intake.py --quick              # smoke test, ~1 minute

The last line is one JSON object with the figures and targets. Exit status 0 whatever the
latencies (no timing asserts); 1 if an acknowledged webhook was lost or a refused one stored; 2 if
the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from common import (
    BenchError,
    emit,
    free_port,
    percentile,
    prepared_database,
    shopify_line,
    shopify_order,
    signed_shopify_delivery,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "config" / "channels.yaml"
DEFAULT_SECRET = "demo-shopify-secret"
KNEE_LADDER = (25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 1200, 1600)
KNEE_P99_MS = 500.0
TARGET_KNEE_RATIO = 0.5
TARGET_P50_RATIO = 2.0
TARGET_P99_RATIO = 4.0
TARGET_OVERLOAD_MAX_MS = 5000.0
TARGET_OVERLOAD_THROUGHPUT = 0.9
OVERLOAD_FACTORS = (2, 4)
REPLAY_SHARE = 0.05
REQUEST_TIMEOUT_S = 10.0
PHASE_GRACE_S = 15.0
MAX_RATE_CAP = 2000
SKUS = (
    ("TSHIRT-RED-M", "T-Shirt", "Red / M", "19.99"),
    ("TSHIRT-BLUE-L", "T-Shirt", "Blue / L", "21.50"),
    ("MUG-WHITE", "Mug", "White", "9.00"),
)


# --------------------------------------------------------------------------------------------
# Webhooks


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    event_id: str
    body: bytes
    headers: dict[str, str]
    replay: bool = False


def _money(amount: str) -> dict[str, Any]:
    return {
        "shop_money": {"amount": amount, "currency_code": "USD"},
        "presentment_money": {"amount": amount, "currency_code": "USD"},
    }


def _full_line(line: dict[str, Any]) -> dict[str, Any]:
    """The rest of what a real Shopify line carries (the bridge reads none of it)."""
    return {
        **line,
        "attributed_staffs": [],
        "current_quantity": line["quantity"],
        "fulfillment_service": "manual",
        "grams": 180,
        "price_set": _money(line["price"]),
        "product_exists": True,
        "properties": [],
        "taxable": True,
        "total_discount": "0.00",
        "total_discount_set": _money("0.00"),
        "variant_inventory_management": "shopify",
        "vendor": "Bench Apparel Co",
        "tax_lines": [
            {
                "channel_liable": False,
                "price": "1.20",
                "price_set": _money("1.20"),
                "rate": 0.06,
                "title": "CA State Tax",
            }
        ],
        "duties": [],
        "discount_allocations": [],
    }


def _full_order(order: dict[str, Any]) -> dict[str, Any]:
    """A Shopify order body as large as a real one (~6.6 KB): customer, billing, taxes, totals."""
    address = order["shipping_address"]
    number = order["order_number"]
    return {
        **order,
        "app_id": 580111,
        "browser_ip": "203.0.113.17",
        "buyer_accepts_marketing": False,
        "cart_token": f"c1-{number:032d}",
        "checkout_id": 30_000_000_000 + number,
        "checkout_token": f"{number:032x}",
        "client_details": {
            "accept_language": "en-US,en;q=0.9",
            "browser_height": 900,
            "browser_ip": "203.0.113.17",
            "browser_width": 1440,
            "session_hash": None,
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15",
        },
        "confirmation_number": f"B{number:08d}",
        "confirmed": True,
        "contact_email": order["email"],
        "current_subtotal_price": order["total_price"],
        "current_subtotal_price_set": _money(order["total_price"]),
        "current_total_discounts": "0.00",
        "current_total_price": order["total_price"],
        "current_total_price_set": _money(order["total_price"]),
        "current_total_tax": "1.20",
        "current_total_tax_set": _money("1.20"),
        "customer_locale": "en-US",
        "discount_codes": [],
        "estimated_taxes": False,
        "landing_site": "/collections/all?utm_source=newsletter&utm_medium=email",
        "note": None,
        "note_attributes": [{"name": "gift_wrap", "value": "no"}],
        "payment_gateway_names": ["shopify_payments"],
        "presentment_currency": "USD",
        "processed_at": order["created_at"],
        "referring_site": "https://www.example.com/",
        "source_name": "web",
        "subtotal_price": order["total_price"],
        "subtotal_price_set": _money(order["total_price"]),
        "tags": "bench, newsletter",
        "tax_lines": [{"price": "1.20", "rate": 0.06, "title": "CA State Tax", "price_set": _money("1.20")}],
        "taxes_included": False,
        "total_discounts": "0.00",
        "total_discounts_set": _money("0.00"),
        "total_line_items_price": order["total_price"],
        "total_line_items_price_set": _money(order["total_price"]),
        "total_price_set": _money(order["total_price"]),
        "total_shipping_price_set": _money("4.99"),
        "total_tax": "1.20",
        "total_tax_set": _money("1.20"),
        "total_weight": 360,
        "billing_address": dict(address),
        "customer": {
            "id": 6_000_000_000 + number,
            "email": order["email"],
            "created_at": order["created_at"],
            "updated_at": order["updated_at"],
            "first_name": address["first_name"],
            "last_name": address["last_name"],
            "state": "enabled",
            "note": None,
            "verified_email": True,
            "tax_exempt": False,
            "phone": None,
            "currency": "USD",
            "tags": "",
            "admin_graphql_api_id": f"gid://shopify/Customer/{6_000_000_000 + number}",
            "default_address": {**address, "id": 8_000_000_000 + number, "default": True},
        },
        "shipping_lines": [
            {
                **order["shipping_lines"][0],
                "carrier_identifier": None,
                "discounted_price": "4.99",
                "discounted_price_set": _money("4.99"),
                "price_set": _money("4.99"),
                "source": "shopify",
                "tax_lines": [],
                "discount_allocations": [],
            }
        ],
        "refunds": [],
        "fulfillments": [],
    }


class WebhookFactory:
    """Signed Shopify `orders/create` deliveries, each with a fresh order id and webhook id."""

    def __init__(self, secret: str, shop_domain: str, seed: int) -> None:
        self.secret = secret.encode("utf-8")
        self.shop_domain = shop_domain
        self.rng = random.Random(seed)
        # Shopify order ids are ~13 digits; start each run somewhere new so reruns on a kept
        # database still insert new orders.
        self.next_order_id = 5_000_000_000_000 + self.rng.randrange(10**11) * 1000
        self.count = 0
        self.last_size = 0

    def _order(self, order_id: int, number: int, now: str) -> dict[str, Any]:
        lines: list[dict[str, Any]] = []
        total = 4.99  # shipping
        for k in range(1 + self.rng.randrange(2)):
            sku, title, variant, price = SKUS[self.rng.randrange(len(SKUS))]
            quantity = 1 + self.rng.randrange(3)
            total += float(price) * quantity
            lines.append(_full_line(shopify_line(order_id * 10 + k, sku, quantity, price, title, variant, k)))
        return _full_order(shopify_order(order_id, number, lines, f"{total:.2f}", now))

    def make(self) -> Webhook:
        self.count += 1
        order_id = self.next_order_id
        self.next_order_id += 1
        now = datetime.now(UTC).isoformat(timespec="seconds")
        order = self._order(order_id, 1000 + self.count, now)
        signed = signed_shopify_delivery(self.secret, order, self.rng, self.shop_domain, now)
        self.last_size = len(signed.body)
        return Webhook(signed.webhook_id, signed.event_id, signed.body, signed.headers)

    def schedule(self, count: int, rate: float) -> list[Webhook]:
        """`count` deliveries for one phase; ~5% are exact replays of one sent >= 0.5 s earlier."""
        out: list[Webhook] = []
        originals: list[int] = []
        lag = max(1, int(rate * 0.5))
        for i in range(count):
            if originals and self.rng.random() < REPLAY_SHARE:
                eligible = [j for j in originals if j <= i - lag] or originals
                first = out[self.rng.choice(eligible)]
                out.append(Webhook(first.webhook_id, first.event_id, first.body, first.headers, replay=True))
            else:
                originals.append(i)
                out.append(self.make())
        return out


# --------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Sample:
    due: float
    sent: float
    done: float
    status: int  # 0: transport error
    outcome: str  # "accepted" | "duplicate" | error text


@dataclass
class PhaseResult:
    name: str
    rate: float
    duration: float
    samples: list[Sample]
    wall_s: float
    cpu: CpuUsage
    error_examples: list[str] = field(default_factory=list)

    def latencies_ms(self) -> list[float]:
        return sorted((s.done - s.due) * 1000.0 for s in self.samples)

    def count(self, lo: int, hi: int) -> int:
        return sum(1 for s in self.samples if lo <= s.status < hi)

    @property
    def ok(self) -> int:
        return self.count(200, 300)

    @property
    def errors_4xx(self) -> int:
        return self.count(400, 500)

    @property
    def errors_5xx(self) -> int:
        return self.count(500, 600)

    @property
    def errors_other(self) -> int:
        """Transport errors (status 0), timeouts, and any answer that is not 2xx, 4xx or 5xx."""
        return sum(1 for s in self.samples if not (200 <= s.status < 300 or 400 <= s.status < 600))

    @property
    def duplicates(self) -> int:
        return sum(1 for s in self.samples if 200 <= s.status < 300 and s.outcome == "duplicate")

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms(), p)

    @property
    def achieved_rate(self) -> float:
        """2xx answers per second, from the first due time to the last answer."""
        if not self.samples:
            return 0.0
        span = max(s.done for s in self.samples) - min(s.due for s in self.samples)
        return self.ok / span if span > 0 else 0.0

    def response_ms(self, p: float) -> float:
        """From putting the request on the wire to its answer: the server's part of the latency."""
        return percentile([(s.done - s.sent) * 1000.0 for s in self.samples], p)

    def response_p50_p99_ms(self, lo: int, hi: int) -> list[float] | None:
        """`response_ms`'s p50 and p99 over the answers with a status in [lo, hi), if any."""
        chosen = [(s.done - s.sent) * 1000.0 for s in self.samples if lo <= s.status < hi]
        return [round(percentile(chosen, p), 1) for p in (50, 99)] if chosen else None

    def send_lag_ms(self, p: float) -> float:
        """How late the load generator put requests on the wire: every sender was waiting for an
        answer, or the generator was short of CPU."""
        return percentile([(s.sent - s.due) * 1000.0 for s in self.samples], p)

    @property
    def passes_knee(self) -> bool:
        return (
            bool(self.samples)
            and self.pct(99) <= KNEE_P99_MS
            and self.errors_5xx == 0
            and self.errors_other == 0
        )

    def summary(self) -> dict[str, Any]:
        return {
            "rate": _num(self.rate),
            "sent": len(self.samples),
            "ok_2xx": self.ok,
            "duplicates": self.duplicates,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "errors_other": self.errors_other,
            "p50_ms": round(self.pct(50), 1),
            "p99_ms": round(self.pct(99), 1),
            "max_ms": round(self.pct(100), 1),
            "achieved_rate": round(self.achieved_rate, 1),
            "send_lag_p99_ms": round(self.send_lag_ms(99), 1),
            # From sending, by kind of answer: where an overloaded server's time goes.
            "response_2xx_p50_p99_ms": self.response_p50_p99_ms(200, 300),
            "response_503_p50_p99_ms": self.response_p50_p99_ms(503, 504),
            "client_cpu": round(self.cpu.client, 2),
            "server_cpu": None if self.cpu.server is None else round(self.cpu.server, 2),
            "worker_cpu": [round(w, 2) for w in self.cpu.workers],
            "system_busy": None if self.cpu.busy is None else round(self.cpu.busy, 2),
        }


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _proc_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def machine_busy(seconds: float = 1.0) -> float | None:
    """Share of the machine's CPU busy over `seconds` (before the bench starts: other load)."""
    before = _system_ticks()
    time.sleep(seconds)
    after = _system_ticks()
    if before is None or after is None or after[0] <= before[0]:
        return None
    return 1.0 - (after[1] - before[1]) / (after[0] - before[0])


def _system_ticks() -> tuple[int, int] | None:
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values), idle


@dataclass(frozen=True)
class CpuUsage:
    """CPU over one phase, in cores (1.0 = one core fully busy); None where /proc is missing."""

    client: float  # this process: the load generator
    server: float | None = None  # gunicorn master + workers
    workers: tuple[float, ...] = ()  # each gunicorn worker, busiest first
    busy: float | None = None  # share of the whole machine that was busy (0..1)


@dataclass(frozen=True)
class _CpuSnapshot:
    wall: float
    client: float
    procs: dict[int, int]
    system: tuple[int, int] | None


class CpuMeter:
    """CPU used by the load generator, the server processes and the machine (Linux /proc)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.available = Path("/proc/stat").exists()
        self.hz = os.sysconf("SC_CLK_TCK") if self.available else 100

    def snapshot(self) -> _CpuSnapshot:
        procs: dict[int, int] = {}
        if self.available and self.server_pid is not None:
            for pid in [self.server_pid, *_children(self.server_pid)]:
                ticks = _proc_ticks(pid)
                if ticks is not None:
                    procs[pid] = ticks
        system = _system_ticks() if self.available else None
        return _CpuSnapshot(time.monotonic(), time.process_time(), procs, system)

    def since(self, before: _CpuSnapshot) -> tuple[float, CpuUsage]:
        after = self.snapshot()
        wall = max(after.wall - before.wall, 1e-9)
        used = {
            pid: (ticks - before.procs.get(pid, 0)) / self.hz / wall for pid, ticks in after.procs.items()
        }
        busy = None
        if before.system is not None and after.system is not None:
            total = after.system[0] - before.system[0]
            idle = after.system[1] - before.system[1]
            busy = (total - idle) / total if total > 0 else None
        workers = tuple(sorted((v for pid, v in used.items() if pid != self.server_pid), reverse=True))
        server = sum(used.values()) if used else None
        return wall, CpuUsage((after.client - before.client) / wall, server, workers, busy)


def _wire(host: str, path: str, hook: Webhook) -> bytes:
    """The whole HTTP/1.1 request as bytes, on a connection of its own (`Connection: close`)."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(hook.body)}",
        "Connection: close",
    ]
    head += [f"{k}: {v}" for k, v in hook.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + hook.body


async def _send(
    host: str,
    port: int,
    request: bytes,
    due: float,
    slot: int,
    samples: list[Sample | None],
    errors: list[str],
) -> None:
    """One request on a new connection: write the prepared bytes, read the answer to EOF.

    A few lines of asyncio instead of an HTTP client library: the generator shares this small
    machine with the servers it measures, and an HTTP client's per-request work would cap the
    offered rate (httpx topped out near 400/s here) and take CPU from the servers."""
    loop = asyncio.get_running_loop()
    sent = loop.time()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            answer = await reader.read()  # the server closes after its answer
    except (OSError, TimeoutError) as exc:
        samples[slot] = Sample(due, sent, loop.time(), 0, type(exc).__name__)
        if len(errors) < 5:
            errors.append(f"transport: {type(exc).__name__}: {exc}"[:300])
        return
    finally:
        if writer is not None:
            writer.close()
    done = loop.time()
    head, _, body = answer.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        samples[slot] = Sample(due, sent, done, 0, "no HTTP answer")
        if len(errors) < 5:
            errors.append(f"transport: no HTTP answer ({len(answer)} bytes)")
        return
    outcome = ""
    if 200 <= status < 300:
        with contextlib.suppress(ValueError, AttributeError):
            outcome = str(json.loads(body).get("status", ""))
    elif len(errors) < 5:
        errors.append(f"HTTP {status}: {body[:250].decode(errors='replace')}")
    samples[slot] = Sample(due, sent, done, status, outcome)


async def run_phase(
    base_url: str,
    path: str,
    name: str,
    hooks: list[Webhook],
    rate: float,
    senders: int,
    meter: CpuMeter,
) -> tuple[PhaseResult, list[Sample]]:
    """Send `hooks` at `rate`/s on a fixed schedule from `senders` concurrent senders.

    Request i is due at start + i/rate. A free sender takes the next request, waits for its due
    time if it is early and sends it; if every sender is busy the request goes out late and the
    wait counts in its latency. The phase is bounded: nothing is sent later than
    PHASE_GRACE_S after the schedule's end (such requests count as transport errors), and each
    request gives up after REQUEST_TIMEOUT_S.

    Returns the phase's figures and one sample per hook, in the order of `hooks`.
    """
    slots: list[Sample | None] = [None] * len(hooks)
    errors: list[str] = []
    hostport = base_url.split("://", 1)[1]
    host, port = hostport.rsplit(":", 1)
    requests = [_wire(hostport, path, hook) for hook in hooks]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    dues = [start + i / rate for i in range(len(hooks))]
    deadline = start + len(hooks) / rate + PHASE_GRACE_S
    cursor = iter(range(len(hooks)))
    skipped = 0

    async def sender() -> None:
        nonlocal skipped
        for i in cursor:  # shared iterator: each index is taken by exactly one sender
            now = loop.time()
            if now > deadline:
                slots[i] = Sample(dues[i], now, now, 0, "not sent")
                skipped += 1
                continue
            if dues[i] > now:
                await asyncio.sleep(dues[i] - now)
            await _send(host, int(port), requests[i], dues[i], i, slots, errors)

    before = meter.snapshot()
    await asyncio.gather(*(sender() for _ in range(senders)))
    wall, cpu = meter.since(before)
    if skipped:
        errors.append(f"{skipped} request(s) not sent: still queued {PHASE_GRACE_S:g} s after the schedule")
    samples = [x or Sample(dues[i], dues[i], dues[i], 0, "missing") for i, x in enumerate(slots)]
    result = PhaseResult(name, rate, len(hooks) / rate, samples, wall, cpu, errors)
    return result, samples


# --------------------------------------------------------------------------------------------
# Database and server


def stored_deliveries(url: str, channel_id: str) -> set[str]:
    """The delivery keys stored for the channel."""
    from sqlalchemy import select
    from sqlmodel import col

    from bridge.store import DeliveryRecord, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            key, channel = col(DeliveryRecord.delivery_key), col(DeliveryRecord.channel_id)
            query = select(key).where(channel == channel_id)
            return {str(row[0]) for row in conn.execute(query)}
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Deferred:
    """Deliveries the bridge stored under load and left to a worker (`intake.defer`)."""

    queued: int
    unapplied: int  # still `deferred` after the worker ran: must be 0
    seconds: float

    @property
    def per_s(self) -> float | None:
        return self.queued / self.seconds if self.queued and self.seconds > 0 else None


def apply_deferred(url: str, config: Path, env: dict[str, str]) -> Deferred:
    """Run the `intake` jobs the bridge queued, as its worker process would (one process, after
    the servers stopped), and check that every deferred delivery was applied."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from bridge.bootstrap import Bridge
    from bridge.channels import load_channels
    from bridge.clock import SystemClock
    from bridge.intake import DEFERRED, JOB_INTAKE
    from bridge.pipeline.deferred_intake import handle_deferred_intake
    from bridge.settings import Settings
    from bridge.store import DeliveryRecord, make_engine
    from bridge.worker import Worker

    engine = make_engine(url)

    def waiting() -> int:
        with engine.connect() as conn:
            query = select(func.count()).where(col(DeliveryRecord.outcome) == DEFERRED)
            return int(conn.execute(query).scalar_one())

    try:
        queued = waiting()
        bridge = Bridge(
            settings=Settings(), config=load_channels(config, env=env), engine=engine, clock=SystemClock()
        )
        started = time.perf_counter()
        Worker(bridge, {JOB_INTAKE: handle_deferred_intake}).drain(limit=10**8)
        return Deferred(queued, waiting(), time.perf_counter() - started)
    finally:
        engine.dispose()


class Server:
    """gunicorn running `bridge.app:create_app()` in its own process group, stopped without fail."""

    def __init__(
        self,
        database_url: str,
        config: Path,
        secret: str,
        log_path: Path,
        workers: int,
        threads: int,
        app: str = "bridge.app:create_app()",
        chdir: Path | None = None,
        worker_class: str = "bridge.web.server.QueueTimedWorker",
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        gunicorn = Path(sys.executable).with_name("gunicorn")
        launcher = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
        self.command = [
            *launcher,
            "--worker-class",
            worker_class,
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{self.port}",
            *(["--chdir", str(chdir)] if chdir else []),
            app,
        ]
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BRIDGE_CONFIG": str(config),
            "LOG_LEVEL": "WARNING",
            "SHOP_A_WEBHOOK_SECRET": secret,
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"gunicorn exited with status {self.proc.returncode} during start-up:\n" + self.log_tail()
                )
            try:
                response = httpx.get(self.base_url + "/healthz", timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            time.sleep(0.2)
        raise BenchError(
            f"gunicorn did not answer /healthz within {timeout:.0f} s (last: {last}):\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:])

    def stop(self) -> None:
        """SIGTERM to the master (graceful), then SIGKILL to the whole process group."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only gunicorn and its workers
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self.proc = None


# --------------------------------------------------------------------------------------------
# Report


def _fmt(value: float | None, spec: str = ".1f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}"


def print_table(results: Sequence[PhaseResult]) -> None:
    header = (
        f"{'phase':<8}{'rate/s':>7}{'sent':>7}{'2xx':>7}{'dup':>5}{'4xx':>5}{'5xx':>5}{'other':>6}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'got/s':>8}{'lag99':>7}{'cli%':>6}{'srv%':>6}"
        f"{'workers%':>10}{'sys%':>6}  knee"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        verdict = "" if not r.name.startswith("step") else ("ok" if r.passes_knee else "FAIL")
        workers = "/".join(_pct(w) for w in r.cpu.workers) or "-"
        print(
            f"{r.name:<8}{r.rate:>7g}{len(r.samples):>7}{r.ok:>7}{r.duplicates:>5}{r.errors_4xx:>5}"
            f"{r.errors_5xx:>5}{r.errors_other:>6}{_fmt(r.pct(50)):>9}{_fmt(r.pct(99)):>9}{_fmt(r.pct(100)):>9}"
            f"{r.achieved_rate:>8.1f}{_fmt(r.send_lag_ms(99)):>7}{_pct(r.cpu.client):>6}{_pct(r.cpu.server):>6}"
            f"{workers:>10}{_pct(r.cpu.busy):>6}  {verdict}"
        )
    print("  Latency runs from each request's scheduled send time. lag99: p99 of how late requests went out")
    print("  (all senders busy, or the load generator short of CPU), ms. cli% / srv% / workers%: CPU of")
    print("  the load generator / gunicorn in all / each gunicorn worker, % of one core. sys%: machine busy,")
    print("  % of all cores (includes the database server and anything else running).")


def limit_hint(failed: PhaseResult | None, ncpu: int, kind: str) -> str:
    if failed is None:
        return "no step failed up to --max-rate"
    if failed.errors_5xx or failed.errors_other:
        cause = "errors (see the examples above)"
    else:
        cause = f"p99 {failed.pct(99):.0f} ms > {KNEE_P99_MS:.0f} ms"
    cpu = failed.cpu
    text = (
        f"gunicorn used {_pct(cpu.server)}% (workers {'/'.join(_pct(w) for w in cpu.workers) or '-'}) "
        f"and the load generator {_pct(cpu.client)}% of one core"
    )
    if cpu.busy is not None:
        others = cpu.busy * ncpu - cpu.client - (cpu.server or 0)
        if others > 0.25:
            text += f"; everything else (database server, other processes) ~{others * 100:.0f}%"
    if cpu.busy is not None and cpu.busy >= 0.9:
        where = f"the machine's CPU was saturated ({cpu.busy * 100:.0f}% of {ncpu} cores busy: {text})"
    elif cpu.client >= 0.9:
        where = f"the load generator ran out of CPU ({text})"
    elif cpu.workers and max(cpu.workers) >= 0.9:
        where = f"one gunicorn worker was CPU-bound (GIL) while the machine had CPU left ({text})"
    elif kind == "sqlite":
        where = f"CPU was not saturated ({text}): likely the SQLite write lock (one writer at a time)"
    else:
        where = f"CPU was not saturated ({text}): likely database waits (locks, commits) or server threads"
    return f"{cause} at {failed.rate:g}/s; {where}"


# --------------------------------------------------------------------------------------------
# Main


def knee_rates(max_rate: float, explicit: str | None) -> list[float]:
    if explicit:
        chosen = sorted({float(x) for x in explicit.split(",") if x.strip()})
        return [r for r in chosen if 0 < r <= max_rate]
    rates = [float(r) for r in KNEE_LADDER if r <= max_rate]
    if not rates or rates[-1] < max_rate:
        rates.append(float(max_rate))
    return rates


def default_threads() -> int:
    from bridge.settings import Settings

    return Settings.from_env().web_threads


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a fresh SQLite file in a temp dir; a postgresql:// URL gets a fresh "
        "bench_<random> database on that server, dropped afterwards",
    )
    parser.add_argument("--step-duration", type=float, default=None, help="s per ladder step (default 6)")
    parser.add_argument("--overload-duration", type=float, default=None, help="s per overload step (8)")
    parser.add_argument("--max-rate", type=float, default=1600.0, help="highest ladder step /s (1600)")
    parser.add_argument("--knee-rates", default=None, help="comma-separated ladder instead of the default")
    parser.add_argument("--senders", type=int, default=512, help="concurrent connections (default 512)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 s steps, ladder to 200/s")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up s at 20/s per server (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, both servers (2)")
    parser.add_argument("--floor-threads", type=int, default=4, help="floor threads per worker (4)")
    parser.add_argument(
        "--threads", type=int, default=None, help="bridge threads per worker (default: WEB_THREADS or 16)"
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="channels file for the bridge")
    parser.add_argument("--channel", default="shop-a", help="a Shopify channel of the channels file")
    parser.add_argument(
        "--secret",
        default=os.environ.get("SHOP_A_WEBHOOK_SECRET") or DEFAULT_SECRET,
        help="webhook secret to sign with; both servers get it as SHOP_A_WEBHOOK_SECRET",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for the payloads")
    parser.add_argument("--json-out", type=Path, default=None, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if args.step_duration is None:
        args.step_duration = 3.0 if args.quick else 6.0
    if args.overload_duration is None:
        args.overload_duration = 4.0 if args.quick else 8.0
    if args.quick and args.knee_rates is None:
        args.max_rate = min(args.max_rate, 200.0)
    if args.threads is None:
        args.threads = default_threads()
    if not 0 < args.max_rate <= MAX_RATE_CAP:
        parser.error(f"--max-rate must be between 0 and {MAX_RATE_CAP}")
    if (
        not 0 < args.step_duration <= 600
        or not 0 < args.overload_duration <= 600
        or not 0 <= args.warmup <= 60
    ):
        parser.error("--step-duration and --overload-duration must be in (0, 600], --warmup in [0, 60]")
    if not 1 <= args.senders <= 4096:
        parser.error("--senders must be between 1 and 4096")
    if args.workers < 1 or args.threads < 1 or args.floor_threads < 1:
        parser.error("--workers and the thread counts must be >= 1")
    return args


@dataclass
class Outcomes:
    """Per server: webhook ids answered 2xx, ids refused (any non-2xx), ids sent."""

    acked: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    sent: dict[str, str] = field(default_factory=dict)  # webhook id -> event id


async def _bench(
    args: argparse.Namespace, floor: Server, bridge: Server, factory: WebhookFactory
) -> tuple[list[PhaseResult], list[PhaseResult], list[PhaseResult], Outcomes]:
    path = f"/webhooks/{args.channel}"
    meters = {
        "floor": CpuMeter(floor.proc.pid if floor.proc else None),
        "bridge": CpuMeter(bridge.proc.pid if bridge.proc else None),
    }
    servers = {"floor": floor, "bridge": bridge}
    outcomes = Outcomes()

    async def phase(who: str, name: str, rate: float, seconds: float) -> PhaseResult:
        hooks = factory.schedule(max(1, round(rate * seconds)), rate)
        # The generator's own full collections walk everything it holds (every earlier phase's
        # samples): 60-90 ms with all senders stopped by the 400/s step, landing as latency on
        # whichever server was being measured. Frozen objects are not walked again.
        gc.collect()
        gc.freeze()
        result, samples = await run_phase(
            servers[who].base_url, path, name, hooks, rate, args.senders, meters[who]
        )
        if who == "bridge":
            for hook, sample in zip(hooks, samples, strict=True):
                outcomes.sent[hook.webhook_id] = hook.event_id
                if 200 <= sample.status < 300:
                    outcomes.acked.add(hook.webhook_id)
                else:
                    outcomes.refused.add(hook.webhook_id)
        s = result.summary()
        print(
            f"  {who:<6} {name:<9} {rate:>6g}/s  sent {s['sent']:>5}  2xx {s['ok_2xx']:>5}  "
            f"5xx {s['errors_5xx']:>4}  other {s['errors_other']:>3}  p50 {s['p50_ms']:>7} ms  "
            f"p99 {s['p99_ms']:>7} ms  max {s['max_ms']:>7} ms  got {s['achieved_rate']}/s",
            flush=True,
        )
        for example in result.error_examples[:2]:
            print(f"      e.g. {example}", flush=True)
        return result

    if args.warmup > 0:
        await phase("floor", "warmup", 20.0, args.warmup)
        await phase("bridge", "warmup", 20.0, args.warmup)
    floor_steps: list[PhaseResult] = []
    bridge_steps: list[PhaseResult] = []
    for rate in knee_rates(args.max_rate, args.knee_rates):
        floor_going = not floor_steps or floor_steps[-1].passes_knee
        bridge_going = not bridge_steps or bridge_steps[-1].passes_knee
        if not (floor_going or bridge_going):
            break
        if floor_going:
            floor_steps.append(await phase("floor", f"step{len(floor_steps) + 1}", rate, args.step_duration))
        if bridge_going:
            bridge_steps.append(
                await phase("bridge", f"step{len(bridge_steps) + 1}", rate, args.step_duration)
            )
    knee = max((s.rate for s in bridge_steps if s.passes_knee), default=0.0)
    overload: list[PhaseResult] = []
    if knee > 0:
        for factor in OVERLOAD_FACTORS:
            rate = min(knee * factor, MAX_RATE_CAP)
            overload.append(await phase("bridge", f"over{factor}x", rate, args.overload_duration))
    return floor_steps, bridge_steps, overload, outcomes


def ratios(
    floor_steps: Sequence[PhaseResult], bridge_steps: Sequence[PhaseResult], up_to: float
) -> tuple[float | None, float | None, list[dict[str, Any]]]:
    """Max bridge/floor p50 and p99 ratio over the rates both ran, up to `up_to` (half the floor knee)."""
    floor_by_rate = {s.rate: s for s in floor_steps}
    rows: list[dict[str, Any]] = []
    for b in bridge_steps:
        f = floor_by_rate.get(b.rate)
        if f is None:
            continue
        rows.append(
            {
                "rate": _num(b.rate),
                "floor_p50_ms": round(f.pct(50), 1),
                "bridge_p50_ms": round(b.pct(50), 1),
                "floor_p99_ms": round(f.pct(99), 1),
                "bridge_p99_ms": round(b.pct(99), 1),
                "p50_ratio": round(b.pct(50) / max(f.pct(50), 0.1), 2),
                "p99_ratio": round(b.pct(99) / max(f.pct(99), 0.1), 2),
                "in_scope": b.rate <= up_to,
            }
        )
    scoped = [r for r in rows if r["in_scope"]]
    p50 = max((r["p50_ratio"] for r in scoped), default=None)
    p99 = max((r["p99_ratio"] for r in scoped), default=None)
    return p50, p99, rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    baseline = machine_busy()
    if baseline is not None and baseline > 0.15:
        print(
            f"warning: the machine is already {baseline * 100:.0f}% busy before the bench starts; "
            "other load competes with both servers and the figures will be noisy",
            flush=True,
        )
    workdir = Path(tempfile.mkdtemp(prefix="fba-bench-"))
    floor: Server | None = None
    bridge: Server | None = None
    try:
        with prepared_database(args.database_url, workdir) as db:
            from bridge.settings import mask_url

            print(
                f"intake bench: database={db.kind} ({mask_url(db.url)}), ladder steps "
                f"{args.step_duration:g} s up to {args.max_rate:g}/s, overload {args.overload_duration:g} s, "
                f"senders={args.senders}, seed={seed}",
                flush=True,
            )
            floor = Server(
                db.url,
                args.config.resolve(),
                args.secret,
                workdir / "floor.log",
                args.workers,
                args.floor_threads,
                app="floor_app:create_app()",
                chdir=ROOT / "bench",
                worker_class="gthread",
            )
            bridge = Server(
                db.url, args.config.resolve(), args.secret, workdir / "bridge.log", args.workers, args.threads
            )
            floor.start()
            bridge.start()
            print(
                f"floor up on {floor.base_url} ({args.workers} x {args.floor_threads} threads), bridge up on "
                f"{bridge.base_url} ({args.workers} x {args.threads} threads)",
                flush=True,
            )
            factory = WebhookFactory(args.secret, f"{args.channel}.myshopify.com", seed)
            floor_steps, bridge_steps, overload, outcomes = asyncio.run(_bench(args, floor, bridge, factory))
            floor.stop()
            bridge.stop()
            stored = stored_deliveries(db.url, args.channel)
            deferred = apply_deferred(db.url, args.config.resolve(), bridge.env)
    except BenchError as exc:
        print(f"intake bench could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        for server in (floor, bridge):
            if server is not None:
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    if not stored & outcomes.sent.keys() and stored & set(outcomes.sent.values()):
        stored = {wid for wid, eid in outcomes.sent.items() if eid in stored}
    lost = len(outcomes.acked - stored)
    refused_only = outcomes.refused - outcomes.acked
    refused_stored = len(refused_only & stored)

    print()
    print("floor:")
    print_table(floor_steps)
    print("\nbridge:")
    print_table([*bridge_steps, *overload])
    floor_knee = max((s.rate for s in floor_steps if s.passes_knee), default=0.0)
    knee = max((s.rate for s in bridge_steps if s.passes_knee), default=0.0)
    knee_step = next((s for s in bridge_steps if s.rate == knee), None)
    p50_ratio, p99_ratio, rows = ratios(floor_steps, bridge_steps, floor_knee / 2)
    failed = next((s for s in bridge_steps if not s.passes_knee), None)
    over_max = max((o.pct(100) for o in overload), default=None)
    over_response_max = max((o.response_ms(100) for o in overload), default=None)
    over_tp = (
        min(o.achieved_rate for o in overload) / knee_step.achieved_rate
        if overload and knee_step and knee_step.achieved_rate > 0
        else None
    )
    print(f"\nknee: bridge {knee:g}/s, floor {floor_knee:g}/s (p99 <= {KNEE_P99_MS:.0f} ms and all 2xx)")
    print(f"bridge limit: {limit_hint(failed, os.cpu_count() or 1, db.kind)}")
    for row in rows:
        scope = "" if row["in_scope"] else "   (above half the floor knee)"
        print(
            f"  {row['rate']:>6}/s  p50 {row['bridge_p50_ms']} / {row['floor_p50_ms']} ms = "
            f"{row['p50_ratio']}x   p99 {row['bridge_p99_ms']} / {row['floor_p99_ms']} ms = "
            f"{row['p99_ratio']}x{scope}"
        )
    for o in overload:
        print(
            f"  overload {o.rate:g}/s: 2xx {o.ok} ({o.achieved_rate:.1f}/s), 503 {o.count(503, 504)}, "
            f"other {o.errors_other}, max answer {o.pct(100):.0f} ms from due time, "
            f"{o.response_ms(100):.0f} ms from sending (send lag p99 {o.send_lag_ms(99):.0f} ms)"
        )
    print(
        f"durability: {len(outcomes.acked)} acknowledged, {lost} of them missing; "
        f"{len(refused_only)} refused and never acknowledged, {refused_stored} of them stored"
    )
    rate = "" if deferred.per_s is None else f" at {deferred.per_s:.0f}/s"
    print(
        f"deferred under load: {deferred.queued} stored and queued for the worker, applied afterwards "
        f"by one worker in {deferred.seconds:.1f} s{rate}; {deferred.unapplied} left unapplied"
    )

    knee_ratio = knee / floor_knee if floor_knee else None
    meets = bool(
        knee_ratio is not None
        and knee_ratio >= TARGET_KNEE_RATIO
        and p50_ratio is not None
        and p50_ratio <= TARGET_P50_RATIO
        and p99_ratio is not None
        and p99_ratio <= TARGET_P99_RATIO
        and over_max is not None
        and over_max <= TARGET_OVERLOAD_MAX_MS
        and over_tp is not None
        and over_tp >= TARGET_OVERLOAD_THROUGHPUT
        and lost == 0
        and refused_stored == 0
        and deferred.unapplied == 0
    )
    line = {
        "bench": "intake",
        "db": db.kind,
        "knee": _num(knee),
        "floor_knee": _num(floor_knee),
        "knee_ratio": None if knee_ratio is None else round(knee_ratio, 2),
        "p50_ratio_max": p50_ratio,
        "p99_ratio_max": p99_ratio,
        "overload_max_latency_ms": None if over_max is None else round(over_max, 1),
        "overload_throughput_ratio": None if over_tp is None else round(over_tp, 2),
        # The same maximum measured from when the request went out, not when it was due: the
        # server's part, without the generator's own lateness (all senders busy, no CPU).
        "overload_max_response_ms": None if over_response_max is None else round(over_response_max, 1),
        "lost": lost,
        "refused_stored": refused_stored,
        "deferred": deferred.queued,
        "deferred_unapplied": deferred.unapplied,
        "deferred_applied_per_s": None if deferred.per_s is None else round(deferred.per_s, 1),
        "ratios": rows,
        "overload": [o.summary() for o in overload],
        "floor_steps": [s.summary() for s in floor_steps],
        "bridge_steps": [s.summary() for s in bridge_steps],
        "body_bytes": factory.last_size,
        "workers": args.workers,
        "bridge_threads": args.threads,
        "floor_threads": args.floor_threads,
        "senders": args.senders,
        "cpus": os.cpu_count(),
        "baseline_busy": None if baseline is None else round(baseline, 2),
        "targets": {
            "knee_ratio": TARGET_KNEE_RATIO,
            "p50_ratio_max": TARGET_P50_RATIO,
            "p99_ratio_max": TARGET_P99_RATIO,
            "overload_max_latency_ms": TARGET_OVERLOAD_MAX_MS,
            "overload_throughput_ratio": TARGET_OVERLOAD_THROUGHPUT,
        },
        "meets_targets": meets,
    }
    emit(line, args.json_out)
    return 1 if lost or refused_stored or deferred.unapplied else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: servers stopped, bench database removed", file=sys.stderr)
        sys.exit(130)
