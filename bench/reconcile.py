"""Storefront reconciliation: what one pass costs when 1 % of a big shop's orders changed.

A fake shop (Shopify by default, `--platform woocommerce` for the other) holds `--orders` orders
(10,000), served over a real loopback socket; the bridge holds the same orders (stored in bulk,
or with `--initial-pass` taken in by a first, full pass, reported separately: it reads the whole
shop, one call per page, so it takes minutes at 10,000 orders). Then, `--passes` times:
`--changed` orders (1 %) change in the shop with every webhook lost -- most are edited (a
quantity), some cancelled, some new -- the clock moves on 10 minutes, and one reconciliation
pass runs, exactly as the `reconcile` job does (`pipeline/reconcile.run_pass`). Time is a
manual clock shared by the fake and the bridge, so no pass waits for wall-clock time; Shopify's
cost bucket restores on that clock.

The changes land 2 minutes after the previous pass began, so with the channel's 5-minute
overlap a pass reads them once (a change in the overlap window is read by two passes: harmless,
its second reading is a duplicate that costs one lookup, but it would blur the figure).

Per pass it prints the storefront calls, the seconds, what was found; `missed` counts changed
orders whose latest version the bridge does not hold after the pass (must be 0). An idle pass
(nothing changed) shows the floor. Targets: `missed` 0 and calls per pass at most one page per
`PAGE_SIZE` changed orders plus one (cost proportional to change, not to the shop's size).

The last line is one JSON object: `{"bench": "reconcile", "orders": 10000, "changed": 100,
"calls_per_pass": ..., "found": ..., "missed": 0, ...}`.

    python bench/reconcile.py                       # SQLite, Shopify, 10,000 orders (about 2 minutes)
    python bench/reconcile.py --platform woocommerce
    python bench/reconcile.py --orders 1000 --passes 2   # quick
    python bench/reconcile.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import ROOT, BenchError, emit, prepared_database, shopify_line, shopify_order

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXAMPLE_CONFIG = ROOT / "config" / "channels.yaml"
SHOP_TOKEN = "demo-shopify-token"  # the example channels file's default for the fake
WOO_KEY, WOO_SECRET = "ck_demo", "cs_demo"
SKUS = ("TSHIRT-RED-M", "MUG-WHITE", "POSTER-A2")
WOO_SKUS = ("MUG-WHITE", "POSTER-A2")


def _shopify_document(order_id: int, rng: random.Random, now: str) -> dict[str, Any]:
    lines = [
        shopify_line(order_id * 10 + n, rng.choice(SKUS), rng.randint(1, 3), "19.90", "Item", "M", n)
        for n in range(rng.randint(1, 2))
    ]
    return shopify_order(order_id, order_id - 100_000, lines, "39.80", now)


def _woo_document(order_id: int, rng: random.Random, now: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "number": str(order_id),
        "status": "processing",
        "currency": "USD",
        "date_created_gmt": now,
        "date_modified_gmt": now,
        "customer_note": "",
        "billing": {"first_name": "Bench", "last_name": "Buyer", "email": f"b{order_id}@example.com"},
        "shipping": {
            "first_name": "Bench",
            "last_name": f"Buyer {order_id}",
            "address_1": "1 Market St",
            "city": "San Francisco",
            "state": "CA",
            "postcode": "94103",
            "country": "US",
        },
        "shipping_lines": [{"method_title": "Flat rate", "method_id": "flat_rate"}],
        "line_items": [
            {
                "id": order_id * 10 + n,
                "sku": rng.choice(WOO_SKUS),
                "quantity": rng.randint(1, 3),
                "price": 12.5,
            }
            for n in range(rng.randint(1, 2))
        ],
        "meta_data": [],
    }


class Shop:
    """The fake storefront of either platform, behind one small interface."""

    def __init__(self, platform: str, clock: Any) -> None:
        self.platform = platform
        self.channel_id = "shop-a" if platform == "shopify" else "woo-main"
        if platform == "shopify":
            from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app

            self.fake: Any = FakeShopify(SHOP_TOKEN, clock)
            self.app = create_fake_shopify_app(self.fake)
        else:
            from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app

            self.fake = FakeWooCommerce(WOO_KEY, WOO_SECRET, clock=clock)
            self.app = create_fake_woocommerce_app(self.fake)
        self.documents: dict[int, dict[str, Any]] = {}

    def new_order(self, order_id: int, rng: random.Random, now: str) -> None:
        build = _shopify_document if self.platform == "shopify" else _woo_document
        self.documents[order_id] = self.fake.put_order(build(order_id, rng, now))

    def edit(self, order_id: int) -> None:
        doc = copy.deepcopy(self.documents[order_id])
        line = doc["line_items"][0]
        line["quantity"] = line["quantity"] % 5 + 1
        if self.platform == "shopify":
            line["current_quantity"] = line["fulfillable_quantity"] = line["quantity"]
        self.documents[order_id] = self.fake.put_order(doc)

    def cancel(self, order_id: int, now: str) -> None:
        doc = copy.deepcopy(self.documents[order_id])
        if self.platform == "shopify":
            doc.update(cancelled_at=now, cancel_reason="customer")
        else:
            doc["status"] = "cancelled"
        self.documents[order_id] = self.fake.put_order(doc)

    def version(self, order_id: int) -> datetime:
        doc = self.documents[order_id]
        stamp = doc["updated_at"] if self.platform == "shopify" else doc["date_modified_gmt"]
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seed(bridge: Any, shop: Shop, now: datetime) -> None:
    """The bridge already holds the shop's orders (as their webhooks left them), stored in bulk:
    the canonical order the platform's adapter makes of each, and a cursor at `now`."""
    from bridge.store import OrderRecord, ReconcileCursorRecord, write_session
    from bridge.storefronts import shopify, woocommerce
    from bridge.storefronts.registry import adapter_for

    channel = bridge.config.channels[shop.channel_id]
    adapter = adapter_for(channel.platform)
    topic_header = shopify.TOPIC_HEADER if shop.platform == "shopify" else woocommerce.TOPIC_HEADER
    topic = "orders/create" if shop.platform == "shopify" else "order.created"
    headers = {"Content-Type": "application/json", topic_header: topic}
    rows = []
    for document in shop.documents.values():
        delivery = adapter.parse(channel, headers, json.dumps(document).encode(), bridge.clock)
        assert delivery.order is not None
        rows.append(
            OrderRecord(
                channel_id=channel.id,
                external_id=delivery.order.external_id,
                display_id=delivery.order.display_id,
                state="received",
                data=delivery.order.to_json(),
                created_at=now,
                updated_at=now,
            )
        )
    with write_session(bridge.engine) as session:
        session.add_all(rows)
        session.add(
            ReconcileCursorRecord(channel_id=channel.id, synced_until=now, updated_at=now, last_summary={})
        )


def _missed(bridge: Any, shop: Shop, changed: Sequence[int]) -> int:
    """Changed orders whose latest version the bridge does not hold."""
    from sqlalchemy import select
    from sqlmodel import col

    from bridge.store import OrderRecord, read_session

    ids = [str(i) for i in changed]
    with read_session(bridge.engine) as session:
        rows = session.execute(
            select(OrderRecord).where(
                col(OrderRecord.channel_id) == shop.channel_id, col(OrderRecord.external_id).in_(ids)
            )
        ).scalars()
        held = {row.external_id: row.canonical().updated_at for row in rows}
    return sum(1 for i in changed if held.get(str(i)) != shop.version(i))


def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    from bridge.amazon.simulator.server import serve_in_thread
    from bridge.bootstrap import Bridge
    from bridge.channels import load_channels
    from bridge.clock import ManualClock
    from bridge.pipeline.reconcile import run_pass
    from bridge.settings import Settings
    from bridge.store import make_engine
    from bridge.storefronts.registry import Storefronts
    from bridge.storefronts.shopify_orders import PAGE_SIZE as SHOPIFY_PAGE
    from bridge.storefronts.woocommerce_orders import PER_PAGE as WOO_PAGE

    rng = random.Random(args.seed)
    clock = ManualClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    shop = Shop(args.platform, clock)
    page_size = SHOPIFY_PAGE if args.platform == "shopify" else WOO_PAGE
    started = time.perf_counter()
    now = clock.now().isoformat().replace("+00:00", "Z")
    for n in range(args.orders):
        shop.new_order(100_001 + n, rng, now)
    print(f"shop: {args.orders} orders on {args.platform} ({time.perf_counter() - started:.1f}s)", flush=True)
    engine = make_engine(database_url)
    storefronts: Any = None
    with serve_in_thread(shop.app) as server:
        env = {
            "SHOP_A_URL": server.base_url,
            "WOO_URL": server.base_url,
            "SHOP_A_WEBHOOK_SECRET": "bench-secret",
            "WOO_WEBHOOK_SECRET": "bench-secret",
            "OWN_SHOP_SECRET": "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0xMjM0",
        }
        config = load_channels(EXAMPLE_CONFIG, env=env)
        bridge = Bridge(
            settings=Settings(metrics_flush_s=0, metrics_cache_s=0), config=config, engine=engine, clock=clock
        )
        storefronts = Storefronts(clock)
        try:
            clock.advance(600)  # the shop's orders are older than the overlap of the next pass
            if args.initial_pass:
                initial = run_pass(bridge, storefronts, shop.channel_id, clock.now() - timedelta(hours=1))
                print(
                    f"initial pass: found {initial.found} new {initial.new} in {initial.calls} calls, "
                    f"{initial.seconds:.1f}s",
                    flush=True,
                )
                if initial.new != args.orders:
                    raise BenchError(f"the initial pass took in {initial.new} of {args.orders} orders")
                initial_figures = {
                    "initial_pass_calls": initial.calls,
                    "initial_pass_s": round(initial.seconds, 1),
                }
            else:
                seeded = time.perf_counter()
                _seed(bridge, shop, clock.now())
                print(
                    f"bridge: the same {args.orders} orders stored ({time.perf_counter() - seeded:.1f}s)",
                    flush=True,
                )
                initial_figures = {}
            passes: list[dict[str, Any]] = []
            next_id = 100_001 + args.orders
            cancelled: set[int] = set()
            for number in range(1, args.passes + 1):
                # Changes 2 minutes after the last pass began: before its 5-minute overlap ends, so
                # each pass reads this round's changes only (and nothing it read before).
                clock.advance(2 * 60)
                now = clock.now().isoformat().replace("+00:00", "Z")
                cancels = max(1, args.changed // 10)
                news = max(1, args.changed // 10)
                edits = args.changed - cancels - news
                # Open orders only: a cancelled order's later versions are (rightly) not stored.
                touched = rng.sample(sorted(set(shop.documents) - cancelled), edits + cancels)
                cancelled.update(touched[edits:])
                for order_id in touched[:edits]:
                    shop.edit(order_id)
                for order_id in touched[edits:]:
                    shop.cancel(order_id, now)
                new_ids = list(range(next_id, next_id + news))
                next_id += news
                for order_id in new_ids:
                    shop.new_order(order_id, rng, now)
                clock.advance(8 * 60)
                summary = run_pass(bridge, storefronts, shop.channel_id)
                missed = _missed(bridge, shop, [*touched, *new_ids])
                figures = {
                    "pass": number,
                    "changed": args.changed,
                    "calls": summary.calls,
                    "seconds": round(summary.seconds, 3),
                    "found": summary.found,
                    "new": summary.new,
                    "amendments": summary.amendments,
                    "cancellations": summary.cancellations,
                    "nothing_to_do": summary.nothing_to_do,
                    "missed": missed,
                }
                passes.append(figures)
                print(
                    f"pass {number}: {summary.calls} calls, {summary.seconds:.2f}s, found {summary.found} "
                    f"(new {summary.new}, amended {summary.amendments}, cancelled {summary.cancellations}, "
                    f"nothing to do {summary.nothing_to_do}), missed {missed}",
                    flush=True,
                )
            clock.advance(20 * 60)
            idle = run_pass(bridge, storefronts, shop.channel_id)
            print(f"idle pass: {idle.calls} calls, found {idle.found}", flush=True)
        finally:
            if storefronts is not None:
                storefronts.close()
            engine.dispose()
    calls = [p["calls"] for p in passes]
    target_calls = math.ceil(args.changed / page_size) + 1 + (1 if args.platform == "woocommerce" else 0)
    missed_total = sum(p["missed"] for p in passes)
    calls_per_pass = max(calls)
    return {
        "bench": "reconcile",
        "platform": args.platform,
        "orders": args.orders,
        "changed": args.changed,
        "passes": args.passes,
        "calls_per_pass": calls_per_pass,
        "calls_per_pass_mean": round(sum(calls) / len(calls), 2),
        "seconds_per_pass": round(sum(p["seconds"] for p in passes) / len(passes), 3),
        "seconds_per_pass_max": max(p["seconds"] for p in passes),
        "found": round(sum(p["found"] for p in passes) / len(passes), 1),
        "missed": missed_total,
        "idle_pass_calls": idle.calls,
        **initial_figures,
        "page_size": page_size,
        "target_calls_per_pass_max": target_calls,
        "target_missed": 0,
        "meets_targets": missed_total == 0 and calls_per_pass <= target_calls,
        "per_pass": passes,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--platform", choices=("shopify", "woocommerce"), default="shopify")
    parser.add_argument("--orders", type=int, default=10_000, help="orders in the shop (10,000)")
    parser.add_argument(
        "--changed", type=int, default=None, help="orders changing per pass (1 %% of --orders)"
    )
    parser.add_argument("--passes", type=int, default=5, help="measured passes (5)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--initial-pass",
        action="store_true",
        help="take the shop's orders in with a first full pass (measured) instead of storing them in bulk",
    )
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--json-out", type=Path, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if args.changed is None:
        args.changed = max(3, args.orders // 100)
    if args.orders < 10 or args.passes < 1 or not 3 <= args.changed <= args.orders // 2:
        parser.error("--orders >= 10, --passes >= 1, 3 <= --changed <= half of --orders")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("werkzeug", "httpx", "bridge.reconcile", "bridge.intake"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as workdir:
            with prepared_database(args.database_url, Path(workdir)) as db:
                result = run(args, db.url)
                result["database"] = db.kind
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 2
    result["seconds"] = round(time.perf_counter() - began, 1)
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
