"""Inventory benchmark: what does keeping 10,000 storefront SKUs in line with Amazon's FBA stock
cost per cycle, and how long does a stock change at Amazon take to reach the storefront?

The issue asks: 10,000 mapped SKUs, 1% (100) changing per cycle; print SP-API calls and
storefront calls per cycle and the delay from an Amazon stock change to the storefront, and show
that calls per cycle follow the changed SKUs, not the catalogue (1,000 / 10,000 / 30,000 SKUs at
the same 100 changes per cycle).

Set-up, one process, everything on 127.0.0.1 (per catalogue size, a fresh database):

- the MCF simulator with N Amazon SKUs, served over HTTP, with Amazon's usage plan for
  `getInventorySummaries` (2 requests/s, burst 2) and 50 summaries per page;
- the fake Shopify Admin GraphQL API on loopback with one inventory item per storefront SKU at the
  Amazon location (cost-based throttling as Shopify's: 1,000 points, 50 per second);
- channel `shop-a` mapping SF-n -> AMZ-n with `inventory.sync` on (interval `--interval`, 300 s by
  default, no buffer), the bridge's workers in threads (`make_worker`), rate budget in the
  database, as in production; a fresh SQLite file or, with `--database-url`, a PostgreSQL
  database created and dropped.

Seeding (not measured): Amazon's quantities, the shop's items holding exactly them, and the
bridge's rows as an earlier full sweep left them (cursor at the start of the run).

Each cycle: `--changed` distinct SKUs change at Amazon at evenly spread moments of the interval
(half sell 1-3 units through other channels, half are restocked by 5-50), then the sync is
queued exactly as the clock does and the workers run until the queue is empty. Time is one clock
shared by the bridge, the simulator and the fake shop that runs at real speed while anything
happens and skips the idle rest of each interval, so the delay (Amazon's change -> the shop's
`inventorySetQuantities` applied) is (wait for the next poll, skipped time) + (real work).

Figures per size: SP-API calls per cycle (the change listing's pages: the changes of one interval
plus the 5-minute overlap, 50 per page), storefront calls per cycle (a mutation per 100 changed
SKUs; no lookups, the ids are known), delay p50/p99/max, and wrong quantities: storefront SKUs
whose value differs from Amazon's fulfillable quantity after the last cycle (target 0). The
smallest size also runs one full sweep (every mapped SKU by name: N/50 calls, what the daily sweep
costs) and checks it changes nothing.

    python bench/inventory.py                     # 1,000 / 10,000 / 30,000 SKUs, 5 cycles each
    python bench/inventory.py --sizes 10000 --cycles 10 --database-url postgresql://...

The last line printed is one JSON object (the 10,000-SKU figures, the others under `by_size`);
`--json-out FILE` appends it to FILE too. Exit status 0 whatever the figures, 2 if it could not run.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
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
from sync import BenchClock  # noqa: E402

from bridge.amazon.accounts import build_amazon  # noqa: E402
from bridge.amazon.limiter import DatabaseBuckets  # noqa: E402
from bridge.amazon.simulator import (  # noqa: E402
    RunningServer,
    Simulator,
    SimulatorConfig,
    SkuConfig,
    create_simulator_app,
    serve_in_thread,
)
from bridge.bootstrap import Bridge  # noqa: E402
from bridge.channels import ChannelsConfig, InventoryConfig, load_channels  # noqa: E402
from bridge.fakes.shopify import DEFAULT_LOCATION, FakeShopify, create_fake_shopify_app  # noqa: E402
from bridge.pipeline.inventory import CHANGES_OVERLAP, enqueue_sync  # noqa: E402
from bridge.pipeline.stock import mapping_digest  # noqa: E402
from bridge.runtime import make_worker  # noqa: E402
from bridge.settings import Settings  # noqa: E402
from bridge.store import (  # noqa: E402
    AmazonStockRecord,
    InventoryCursorRecord,
    JobRecord,
    StorefrontStockRecord,
    make_engine,
    read_session,
    write_session,
)
from bridge.storefronts.registry import Storefronts  # noqa: E402
from bridge.worker import Worker  # noqa: E402

CHANNELS_FILE = ROOT / "config" / "channels.yaml"
CHANNEL = "shop-a"
ACCOUNT, MARKETPLACE = "main", "ATVPDKIKX0DER"
OPERATION = "getInventorySummaries"
SHOP_TOKEN = "bench-shopify-token"  # the fake shop's credential

DEFAULT_SIZES = (1_000, 10_000, 30_000)
HEADLINE_SIZE = 10_000
DEFAULT_CHANGED = 100
DEFAULT_CYCLES = 5
DEFAULT_INTERVAL_S = 300
TARGET_SIZE_RATIO = 1.5  # calls per cycle at the largest size / at the smallest, at most
TARGET_DELAY_SLACK_S = 60.0
CYCLE_TIMEOUT_S = 600.0
POLL_S = 0.05
CHUNK = 2000


def sku(n: int) -> tuple[str, str]:
    """(storefront SKU, Amazon SKU) number n."""
    return f"SF-{n:06d}", f"AMZ-{n:06d}"


@dataclass(frozen=True)
class Change:
    at: datetime
    storefront_sku: str
    amazon_sku: str
    expected: int  # Amazon's fulfillable quantity right after the change = the shop's target


@dataclass
class Cycle:
    number: int
    poll_at: datetime  # when the sync was queued (bench clock)
    changed: int
    spapi_calls: int
    storefront_calls: int
    throttled: int
    work_s: float


# --------------------------------------------------------------------------------------------
# Seeding


def channels_for(size: int, shop_url: str) -> ChannelsConfig:
    config = load_channels(CHANNELS_FILE, env={"SHOP_A_URL": shop_url, "SHOP_A_ADMIN_TOKEN": SHOP_TOKEN})
    shop = config.channels[CHANNEL]
    inventory = InventoryConfig(sync=True, location=DEFAULT_LOCATION)
    shop = replace(shop, sku_map=dict(sku(n) for n in range(size)), inventory=inventory)
    return replace(config, channels={CHANNEL: shop})


def seed(
    engine: Engine,
    sim: Simulator,
    shop: FakeShopify,
    config: ChannelsConfig,
    size: int,
    t0: datetime,
    rng: random.Random,
    clock: BenchClock,
    changed: int,
    interval: int,
) -> dict[str, int]:
    """Amazon, the shop and the bridge agreeing on every SKU, as after a full sweep at `t0`."""
    quantities = {sku(n)[1]: rng.randint(10, 500) for n in range(size)}
    for amazon_sku, quantity in quantities.items():
        sim.set_inventory(amazon_sku, quantity)
    # Steady state: the overlap window before the start saw the same rate of change (already synced),
    # so the first cycle's listing is as full as any later one.
    overlap = int(CHANGES_OVERLAP.total_seconds())
    before = round(changed * overlap / interval)
    for offset, n in zip(spread(before, overlap), rng.sample(range(size), before), strict=True):
        clock.hold(t0 - timedelta(seconds=overlap) + timedelta(seconds=offset))
        amazon_sku = sku(n)[1]
        sim.restock(amazon_sku, 7)
        quantities[amazon_sku] += 7
    refs = {}
    for n in range(size):
        storefront_sku, amazon_sku = sku(n)
        refs[storefront_sku] = shop.inventory.add_item(storefront_sku, quantities[amazon_sku])
    stock_table = SQLModel.metadata.tables[AmazonStockRecord.__tablename__]
    target_table = SQLModel.metadata.tables[StorefrontStockRecord.__tablename__]
    amazon_rows = [
        {
            "account_id": ACCOUNT,
            "marketplace_id": MARKETPLACE,
            "amazon_sku": amazon_sku,
            "fulfillable": quantity,
            "total": quantity,
            "reserved": 0,
            "inbound": 0,
            "known": True,
            "amazon_updated_at": t0 - timedelta(days=1),
            "changed_at": t0,
            "seen_at": t0,
        }
        for amazon_sku, quantity in quantities.items()
    ]
    target_rows = []
    for n in range(size):
        storefront_sku, amazon_sku = sku(n)
        quantity = quantities[amazon_sku]
        target_rows.append(
            {
                "channel_id": CHANNEL,
                "storefront_sku": storefront_sku,
                "amazon_sku": amazon_sku,
                "amazon_quantity": quantity,
                "in_flight": 0,
                "target": quantity,
                "target_version": 1,
                "target_changed_at": t0,
                "amazon_changed_at": t0 - timedelta(days=1),
                "storefront_quantity": quantity,
                "pushed_quantity": quantity,
                "pushed_version": 1,
                "pushed_at": t0,
                "storefront_ref": refs[storefront_sku],
                "storefront_parent": "",
                "status": "ok",
                "status_detail": "",
                "retry_at": None,
                "updated_at": t0,
            }
        )
    with write_session(engine) as session:
        for start in range(0, size, CHUNK):
            session.execute(insert(stock_table), amazon_rows[start : start + CHUNK])
            session.execute(insert(target_table), target_rows[start : start + CHUNK])
        session.add(
            InventoryCursorRecord(
                account_id=ACCOUNT,
                marketplace_id=MARKETPLACE,
                changes_until=t0,
                swept_at=t0,
                mapping=mapping_digest(config.channels.values()),
                updated_at=t0,
            )
        )
    return quantities


# --------------------------------------------------------------------------------------------
# Running


def active_jobs(engine: Engine) -> int:
    with read_session(engine) as session:
        query = (
            select(func.count()).select_from(JobRecord).where(col(JobRecord.status).in_(["ready", "running"]))
        )
        return int(session.execute(query).scalar_one())


def wait_idle(engine: Engine, threads: Sequence[threading.Thread]) -> None:
    deadline = time.monotonic() + CYCLE_TIMEOUT_S
    while active_jobs(engine):
        if not all(t.is_alive() for t in threads):
            raise BenchError("a worker thread died")
        if time.monotonic() > deadline:
            raise BenchError(f"the job queue did not empty within {CYCLE_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)


def spread(count: int, interval: int) -> list[float]:
    return [interval * (i + 0.5) / count for i in range(count)]


def run_size(args: argparse.Namespace, db: Database, size: int, sweep: bool) -> dict[str, Any]:
    rng = random.Random(size)
    interval = int(args.interval)
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = BenchClock(t0 - timedelta(days=1))
    sim_config = SimulatorConfig(skus={sku(n)[1]: SkuConfig(quantity=0) for n in range(size)}, page_size=50)
    sim = Simulator(sim_config, clock=clock, rate_clock=clock)
    shop = FakeShopify(SHOP_TOKEN, clock)
    servers: list[RunningServer] = []
    threads: list[threading.Thread] = []
    workers: list[Worker] = []
    engine = make_engine(db.url)
    cycles: list[Cycle] = []
    changes: list[Change] = []
    try:
        servers.append(serve_in_thread(create_simulator_app(sim)))
        servers.append(serve_in_thread(create_fake_shopify_app(shop)))
        config = channels_for(size, servers[1].base_url)
        began = time.perf_counter()
        quantities = seed(engine, sim, shop, config, size, t0, rng, clock, args.changed, interval)
        clock.hold(t0)
        seed_s = time.perf_counter() - began
        settings = Settings(database_url=db.url, simulator_url=servers[0].base_url, log_level="WARNING")
        bridge = Bridge(settings=settings, config=config, engine=engine, clock=clock)
        amazon = build_amazon(bridge, buckets=DatabaseBuckets(engine, clock, use_db_clock=False))
        storefronts = Storefronts(clock)
        for i in range(args.workers):
            worker = make_worker(bridge, amazon=amazon, storefronts=storefronts)
            workers.append(worker)
            threads.append(threading.Thread(target=worker.run_forever, name=f"bench-worker-{i}", daemon=True))
        clock.start()
        for thread in threads:
            thread.start()
        channel = config.channels[CHANNEL]
        print(f"\n{size} SKUs (seeded in {seed_s:.1f} s)", flush=True)
        print(f"{'cycle':>5} {'changed':>7} {'sp-api':>7} {'shop':>5} {'429':>4} {'work_s':>7}", flush=True)
        for k in range(1, args.cycles + 1):
            cycle_start = t0 + timedelta(seconds=(k - 1) * interval)
            picked = rng.sample(range(size), args.changed)
            for offset, n in zip(spread(args.changed, interval), picked, strict=True):
                gap = (cycle_start + timedelta(seconds=offset) - clock.now()).total_seconds()
                clock.skip(max(0.0, gap))
                storefront_sku, amazon_sku = sku(n)
                delta = -rng.randint(1, 3) if rng.random() < 0.5 else rng.randint(5, 50)
                delta = max(delta, -quantities[amazon_sku])
                sim.restock(amazon_sku, delta)
                quantities[amazon_sku] += delta
                changes.append(Change(clock.now(), storefront_sku, amazon_sku, quantities[amazon_sku]))
            poll = t0 + timedelta(seconds=k * interval)
            clock.skip(max(0.0, (poll - clock.now()).total_seconds()))
            cycles.append(measure(k, engine, sim, shop, threads, channel, args.changed, full=False))
            c = cycles[-1]
            print(
                f"{k:>5} {c.changed:>7} {c.spapi_calls:>7} {c.storefront_calls:>5} {c.throttled:>4} "
                f"{c.work_s:>7.1f}",
                flush=True,
            )
        sweep_calls = None
        sweep_writes = None
        if sweep:
            writes = len(shop.inventory.api_changes())
            full = measure(0, engine, sim, shop, threads, channel, 0, full=True)
            sweep_calls, sweep_writes = full.spapi_calls, len(shop.inventory.api_changes()) - writes
            print(f"full sweep: {sweep_calls} SP-API calls ({size} SKUs / 50), {sweep_writes} shop writes")
        return summarise(
            size, shop, sim, quantities, cycles, changes, interval, seed_s, sweep_calls, sweep_writes
        )
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=30)
        for server in servers:
            server.stop()
        engine.dispose()


def measure(
    number: int,
    engine: Engine,
    sim: Simulator,
    shop: FakeShopify,
    threads: Sequence[threading.Thread],
    channel: Any,
    changed: int,
    *,
    full: bool,
) -> Cycle:
    calls, requests, throttled = sim.ledger.calls(OPERATION), len(shop.requests), sim.ledger.throttled()
    began, poll_at = time.monotonic(), sim.clock.now()
    with write_session(engine) as session:
        enqueue_sync(session, channel, full=full)
    wait_idle(engine, threads)
    return Cycle(
        number=number,
        poll_at=poll_at,
        changed=changed,
        spapi_calls=sim.ledger.calls(OPERATION) - calls,
        storefront_calls=len(shop.requests) - requests,
        throttled=sim.ledger.throttled() - throttled,
        work_s=time.monotonic() - began,
    )


def summarise(
    size: int,
    shop: FakeShopify,
    sim: Simulator,
    quantities: dict[str, int],
    cycles: Sequence[Cycle],
    changes: Sequence[Change],
    interval: int,
    seed_s: float,
    sweep_calls: int | None,
    sweep_writes: int | None,
) -> dict[str, Any]:
    applied: dict[str, list[tuple[datetime, int]]] = {}
    for change in shop.inventory.api_changes():
        applied.setdefault(str(change.sku), []).append((change.at, change.after))
    delays: list[float] = []
    after_poll: list[float] = []
    polls = sorted(c.poll_at for c in cycles)
    missing = 0
    for change in changes:
        reached = next(
            (
                at
                for at, after in applied.get(change.storefront_sku, [])
                if at >= change.at and after == change.expected
            ),
            None,
        )
        if reached is None:
            missing += 1
        else:
            delays.append((reached - change.at).total_seconds())
            poll = next((p for p in polls if p >= change.at), None)
            if poll is not None:
                after_poll.append((reached - poll).total_seconds())
    wrong = 0
    for n in range(size):
        storefront_sku, amazon_sku = sku(n)
        if shop.inventory.available(storefront_sku) != sim.available(amazon_sku):
            wrong += 1
    n = len(cycles)
    return {
        "skus": size,
        "changed": round(sum(c.changed for c in cycles) / n, 1),
        "spapi_calls_per_cycle": round(sum(c.spapi_calls for c in cycles) / n, 2),
        "storefront_calls_per_cycle": round(sum(c.storefront_calls for c in cycles) / n, 2),
        "spapi_calls": [c.spapi_calls for c in cycles],
        "storefront_calls": [c.storefront_calls for c in cycles],
        "throttled_429": sum(c.throttled for c in cycles),
        "delay_p50_s": round(percentile(delays, 50), 1),
        "delay_p99_s": round(percentile(delays, 99), 1),
        "delay_max_s": round(percentile(delays, 100), 1),
        "poll_to_shop_p50_s": round(percentile(after_poll, 50), 1),
        "poll_to_shop_p99_s": round(percentile(after_poll, 99), 1),
        "changes_not_reaching_the_shop": missing,
        "wrong_quantities": wrong,
        "cycle_work_s": [round(c.work_s, 1) for c in cycles],
        "full_sweep_calls": sweep_calls if sweep_calls is not None else math.ceil(size / 50),
        "full_sweep_measured": sweep_calls is not None,
        "full_sweep_shop_writes": sweep_writes,
        "seed_s": round(seed_s, 1),
    }


def run(args: argparse.Namespace, db_url: str | None) -> dict[str, Any]:
    print(
        f"inventory bench: {args.changed} changed SKUs per {args.interval} s cycle, {args.cycles} cycles, "
        f"sizes {', '.join(map(str, args.sizes))}, {args.workers} worker thread(s); getInventorySummaries at "
        f"Amazon's 2/s, burst 2; a {CHANGES_OVERLAP.total_seconds():.0f} s overlap re-reads the end of the "
        "previous interval",
        flush=True,
    )
    results: dict[int, dict[str, Any]] = {}
    kind = "sqlite"
    for i, size in enumerate(args.sizes):
        with tempfile.TemporaryDirectory(prefix="bench-inventory-") as workdir:
            with prepared_database(db_url, Path(workdir)) as db:
                kind = db.kind
                results[size] = run_size(args, db, size, sweep=i == 0)
    headline = results.get(HEADLINE_SIZE) or results[args.sizes[len(args.sizes) // 2]]
    smallest, largest = results[min(results)], results[max(results)]
    ratio = (
        largest["spapi_calls_per_cycle"] / smallest["spapi_calls_per_cycle"]
        if smallest["spapi_calls_per_cycle"]
        else float("nan")
    )
    shop_ratio = (
        largest["storefront_calls_per_cycle"] / smallest["storefront_calls_per_cycle"]
        if smallest["storefront_calls_per_cycle"]
        else float("nan")
    )
    target_delay = args.interval + TARGET_DELAY_SLACK_S
    print()
    print(
        f"{'SKUs':>6} {'sp-api/cycle':>12} {'shop/cycle':>10} {'delay p50':>9} {'p99':>7} {'max':>7} "
        f"{'poll->shop p99':>14} {'wrong':>5}"
    )
    for size, r in sorted(results.items()):
        print(
            f"{size:>6} {r['spapi_calls_per_cycle']:>12} {r['storefront_calls_per_cycle']:>10} "
            f"{r['delay_p50_s']:>9} {r['delay_p99_s']:>7} {r['delay_max_s']:>7} "
            f"{r['poll_to_shop_p99_s']:>14} {r['wrong_quantities']:>5}"
        )
    print(
        f"calls per cycle at {max(results)} SKUs / at {min(results)}: SP-API {ratio:.2f}, storefront "
        f"{shop_ratio:.2f} (target <= {TARGET_SIZE_RATIO}); a poll of every SKU by name would cost "
        f"{math.ceil(HEADLINE_SIZE / 50)} SP-API calls per cycle at {HEADLINE_SIZE} SKUs; the daily full "
        f"sweep costs {headline['full_sweep_calls']} calls"
    )
    meets = (
        ratio <= TARGET_SIZE_RATIO
        and shop_ratio <= TARGET_SIZE_RATIO
        and all(r["delay_p99_s"] <= target_delay for r in results.values())
        and all(
            r["wrong_quantities"] == 0 and r["changes_not_reaching_the_shop"] == 0 for r in results.values()
        )
    )
    return {
        "bench": "inventory",
        "skus": headline["skus"],
        "changed": args.changed,
        "spapi_calls_per_cycle": headline["spapi_calls_per_cycle"],
        "storefront_calls_per_cycle": headline["storefront_calls_per_cycle"],
        "delay_p99_s": headline["delay_p99_s"],
        "wrong_quantities": headline["wrong_quantities"],
        "delay_p50_s": headline["delay_p50_s"],
        "poll_to_shop_p99_s": headline["poll_to_shop_p99_s"],
        "interval_s": args.interval,
        "cycles": args.cycles,
        "db": kind,
        "by_size": {str(size): r for size, r in sorted(results.items())},
        "calls_ratio_largest_to_smallest": {"spapi": round(ratio, 2), "storefront": round(shop_ratio, 2)},
        "naive_spapi_calls_per_cycle": math.ceil(HEADLINE_SIZE / 50),
        "target_calls_ratio_max": TARGET_SIZE_RATIO,
        "target_delay_p99_s": target_delay,
        "target_wrong_quantities": 0,
        "latency_clock": "idle time between changes and polls skipped; work in real time",
        "meets_targets": bool(meets),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="PostgreSQL server to create bench_<random> databases on")
    parser.add_argument(
        "--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="mapped SKUs per run (1000,10000,30000)"
    )
    parser.add_argument("--changed", type=int, default=DEFAULT_CHANGED, help="SKUs changing per cycle (100)")
    parser.add_argument("--cycles", type=int, default=DEFAULT_CYCLES, help="cycles per size (5)")
    parser.add_argument("--interval", type=int, default=DEFAULT_INTERVAL_S, help="inventory.interval_s (300)")
    parser.add_argument("--workers", type=int, default=2, help="worker threads (2)")
    parser.add_argument("--json-out", type=Path, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes numbers separated by commas")
    if not args.sizes or min(args.sizes) < 1 or args.changed < 1 or args.cycles < 1 or args.workers < 1:
        parser.error("--sizes, --changed, --cycles and --workers must be >= 1")
    if args.changed > min(args.sizes):
        parser.error("--changed cannot exceed the smallest size")
    if args.interval < 60:
        parser.error("--interval must be >= 60 (inventory.interval_s's minimum)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    began = time.perf_counter()
    try:
        result = run(args, args.database_url)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 2
    result["seconds"] = round(time.perf_counter() - began, 1)
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
