"""Console render time at 100,000 orders: the orders page with and without filters, a search by
order name, and one order's page.

Fills a throw-away database with `--orders` orders over three channels (mostly shipped, a few
parked, some with an open alert), three audit entries each, then renders pages through the real
Flask app with a signed-in session (routing, the session check, the queries, Jinja) and times
each request end to end. Filters: a channel, a state, needs-attention, channel + state; pages
further back use the keyset link (`before=`), as the "Older" link does.

    python bench/console.py                                # a fresh SQLite file, 100,000 orders
    python bench/console.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/console.py --orders 20000 --requests 100

The last line is one JSON object with `list_p99_ms`, `filtered_p99_ms`, `search_p99_ms` and
`order_p99_ms` (target: each under 300 ms). Nothing asserts on time; exit status 2 if it could
not run.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import BenchError, emit, percentile, prepared_database  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from bridge.bootstrap import Bridge  # noqa: E402
from bridge.channels import load_channels  # noqa: E402
from bridge.settings import ConsoleSettings, Secret, Settings  # noqa: E402
from bridge.store import AlertRecord, OrderEventRecord, OrderRecord, make_engine  # noqa: E402

TARGET_P99_MS = 300.0
CHANNELS = ("shop-a", "woo-main", "own-shop")
PASSWORD = "bench-console-password"
CHUNK = 5000
ENV = {
    "SHOP_A_WEBHOOK_SECRET": "bench-shopify-secret",
    "WOO_WEBHOOK_SECRET": "bench-woo-secret",
    "OWN_SHOP_SECRET": "whsec_YmVuY2gtZ2VuZXJpYy1zZWNyZXQtMTIzNDU2Nzg5MA==",
}


def _state(n: int) -> tuple[str, str]:
    if n % 100 == 7:
        return "needs_attention", "Amazon cannot fulfil this order: FBA-POSTER-A2: InventoryUnavailable"
    if n % 50 == 3:
        return "cancelled", ""
    if n % 20 == 1:
        return "submitted", ""
    return "shipped", ""


def _order_data(channel: str, external_id: str, display_id: str, at: datetime) -> dict[str, Any]:
    return {
        "channel_id": channel,
        "external_id": external_id,
        "display_id": display_id,
        "currency": "USD",
        "payment_state": "paid",
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
        "lines": [
            {"line_id": "1", "sku": "TSHIRT-RED-M", "quantity": 2, "unit_price": "19.99", "title": "T-shirt"},
            {"line_id": "2", "sku": "MUG-WHITE", "quantity": 1, "unit_price": "9.99", "title": "Mug"},
        ],
        "destination": {
            "name": "Bench Buyer",
            "line1": "1 Bench Street",
            "city": "Seattle",
            "state": "WA",
            "postal_code": "98109",
            "country_code": "US",
        },
        "shipping_method": "Standard Shipping",
        "buyer_email": "bench.buyer@example.com",
    }


def fill(engine: Engine, count: int) -> None:
    """`count` orders with three audit entries each, one open alert per 500 orders."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, count, CHUNK):
        orders, events, alerts = [], [], []
        for n in range(first, min(count, first + CHUNK)):
            channel = CHANNELS[n % 3]
            number = 100_000 + n
            external = str(number)
            display = (
                f"#{number}"
                if channel == "shop-a"
                else (f"A-{number}" if channel == "own-shop" else external)
            )
            at = start + timedelta(minutes=n)
            state, reason = _state(n)
            orders.append(
                {
                    "id": n + 1,
                    "channel_id": channel,
                    "external_id": external,
                    "display_id": display,
                    "state": state,
                    "data": _order_data(channel, external, display, at),
                    "seller_fulfillment_order_id": f"{channel}-{external}"
                    if state != "needs_attention"
                    else None,
                    "attention_reason": reason,
                    "amazon_status": "Complete" if state == "shipped" else None,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            for i, (event, src, dst) in enumerate(
                (
                    ("intake:created", None, "received"),
                    ("submit_started", "received", "submitting"),
                    ("created", "submitting", "submitted"),
                )
            ):
                events.append(
                    {
                        "order_id": n + 1,
                        "at": at + timedelta(seconds=i),
                        "event": event,
                        "from_state": src,
                        "to_state": dst,
                        "reason": "",
                    }
                )
            if n % 500 == 250:
                alerts.append(
                    {
                        "key": f"order:{n + 1}:bench",
                        "kind": "amazon_status",
                        "severity": "error",
                        "message": f"order {n + 1}: Amazon reports Unfulfillable",
                        "channel_id": channel,
                        "order_id": n + 1,
                        "opened_at": at,
                        "last_seen_at": at,
                        "occurrences": 1,
                        "acknowledged_by": "",
                    }
                )
        with engine.begin() as conn:
            conn.execute(insert(OrderRecord), orders)
            conn.execute(insert(OrderEventRecord), events)
            if alerts:
                conn.execute(insert(AlertRecord), alerts)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))"))
        conn.execute(text("ANALYZE"))


def _search_path(n: int) -> str:
    """A search for order n as an operator types it: `#100007`, `100007` or `A-100009`."""
    number = 100_000 + n
    channel = CHANNELS[n % 3]
    typed = {"shop-a": f"%23{number}", "own-shop": f"A-{number}"}.get(channel, str(number))
    return f"/console/orders?q={typed}"


def signed_in_client(engine: Engine) -> Any:
    from bridge.app import create_app

    config = load_channels(ROOT / "config" / "channels.yaml", env=ENV)
    console = ConsoleSettings(
        password_hash=Secret(generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
    )
    bridge = Bridge(settings=Settings(metrics_flush_s=0, console=console), config=config, engine=engine)
    client = create_app(bridge).test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    response = client.post(
        "/console/login", data={"token": token.group(1), "password": PASSWORD, "name": "bench"}
    )
    if response.status_code != 302:
        raise BenchError(f"could not sign in to the console ({response.status_code})")
    return client


def timed(
    client: Any, paths: Callable[[random.Random], str], requests: int, rng: random.Random
) -> list[float]:
    times = []
    for _ in range(requests):
        path = paths(rng)
        started = time.perf_counter()
        response = client.get(path)
        body = response.get_data()
        times.append((time.perf_counter() - started) * 1000)
        if (
            response.status_code != 200
            or b"<main>" not in body
            or (b"No orders match" in body and "q=" in path)
        ):
            raise BenchError(f"{path} answered {response.status_code}")
    return times


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="fba-bench-console-"))
    requested = None if args.database_url == "sqlite" else args.database_url
    rng = random.Random(17)
    n = args.orders
    try:
        with prepared_database(requested, workdir) as db:
            engine = make_engine(db.url)
            try:
                print(
                    f"console bench: database={db.kind}; {n} orders; {args.requests} requests per page kind; "
                    f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
                    flush=True,
                )
                started = time.monotonic()
                fill(engine, n)
                print(f"  filled in {time.monotonic() - started:.1f} s", flush=True)
                client = signed_in_client(engine)
                kinds: dict[str, Callable[[random.Random], str]] = {
                    "list": lambda r: (
                        "/console/orders" if r.random() < 0.5 else f"/console/orders?before={r.randint(2, n)}"
                    ),
                    "filtered": lambda r: r.choice(
                        [
                            f"/console/orders?channel={r.choice(CHANNELS)}",
                            "/console/orders?state=needs_attention",
                            "/console/orders?state=cancelled",
                            "/console/orders?attention=1",
                            f"/console/orders?channel={r.choice(CHANNELS)}&state=submitted",
                            f"/console/orders?attention=1&before={r.randint(2, n)}",
                            f"/console/orders?state=shipped&before={r.randint(2, n)}",
                        ]
                    ),
                    "search": lambda r: _search_path(r.randrange(n)),
                    "order": lambda r: f"/console/orders/{r.randint(1, n)}",
                }
                figures: dict[str, dict[str, float]] = {}
                for kind, paths in kinds.items():
                    timed(client, paths, 10, rng)  # warm caches and the template compiler
                    times = timed(client, paths, args.requests, rng)
                    figures[kind] = {
                        "p50": round(percentile(times, 50), 1),
                        "p99": round(percentile(times, 99), 1),
                    }
                    print(
                        f"  {kind:<9} p50 {figures[kind]['p50']:7.1f} ms  p99 {figures[kind]['p99']:7.1f} ms",
                        flush=True,
                    )
            finally:
                engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    p99s = [figures[k]["p99"] for k in ("list", "filtered", "search", "order")]
    return {
        "bench": "console",
        "database": db.kind,
        "orders": n,
        "requests": args.requests,
        "list_p50_ms": figures["list"]["p50"],
        "list_p99_ms": figures["list"]["p99"],
        "filtered_p50_ms": figures["filtered"]["p50"],
        "filtered_p99_ms": figures["filtered"]["p99"],
        "search_p99_ms": figures["search"]["p99"],
        "order_p99_ms": figures["order"]["p99"],
        "target_p99_ms": TARGET_P99_MS,
        "load_average": round(os.getloadavg()[0], 2),
        "meets_targets": max(p99s) < TARGET_P99_MS,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="`sqlite` (default): a fresh SQLite file; or a PostgreSQL server URL (a throw-away database)",
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument(
        "--requests", type=int, default=200, help="timed requests per page kind (default 200)"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if not 100 <= args.orders <= 2_000_000 or not 10 <= args.requests <= 100_000:
        parser.error("--orders must be in [100, 2000000] and --requests in [10, 100000]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        line = run(args)
    except BenchError as exc:
        print(f"console bench could not run: {exc}", file=sys.stderr)
        return 2
    line["wall_s"] = round(time.monotonic() - started, 1)
    emit(line, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
