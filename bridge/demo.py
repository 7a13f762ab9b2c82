"""`fba-bridge demo`: the whole loop on a fresh machine, with no account and no credentials.

Everything real but the outside world: the bridge's own web app, worker and clock on a SQLite
file, the bundled MCF simulator on a sped-up clock, and fake Shopify, WooCommerce and generic
storefronts on loopback. It sends a few orders through signed webhooks and prints each order's
way: accepted -> previewed -> created -> shipped -> tracking pushed. One Shopify order is split
across Amazon's location and another app's: only Amazon's part is shipped and fulfilled. One is
tagged `fba-hold`: it waits for approval, the demo approves it as an operator would
(`operator.approve`, what `fba-bridge order shop-a 1004 approve` runs), and it ships. One asks
for BLOCK_AMZL by its tag (shipped by another carrier than Amazon Logistics); one is beyond
Amazon's 250 units and goes to Amazon as two orders, each tracked and pushed back. Each
demo SKU's stock in the shops is shown before and after the orders ship (inventory sync is on).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col
from werkzeug.security import generate_password_hash

from . import operator
from .amazon.accounts import build_amazon
from .amazon.simulator import Simulator, create_simulator_app, load_config, serve_in_thread
from .app import create_app
from .bootstrap import Bridge
from .channels import ChannelsConfig, Money, ShopifyOptions, load_channels
from .clock import ScaledClock, SystemClock
from .command import command
from .fakes.local import start_local_shops
from .fakes.shopify import DEFAULT_LOCATION, FakeShopify
from .fakes.woocommerce import FakeWooCommerce
from .migrate import upgrade
from .pipeline.inventory import stock_report
from .resources import example_channels_file, example_simulator_file
from .runtime import make_worker
from .scheduler import Clock
from .settings import ConsoleSettings, Secret, Settings
from .store import (
    OrderEventRecord,
    OrderRecord,
    PackageRecord,
    PushRecord,
    make_engine,
    order_parts,
    read_session,
)
from .storefronts.base import hmac_sha256_b64
from .storefronts.generic import sign_standard_webhook
from .storefronts.registry import Storefronts

SPEED = 1800.0  # Amazon's ~4 h from order to shipment takes 8 s
SHOPIFY_TOKEN = "demo-shopify-token"  # noqa: S105 - the example config's demo defaults
SHOPIFY_SECRET = "demo-shopify-secret"  # noqa: S105 - the example config's demo default
WOO_SECRET = "demo-woo-secret"  # noqa: S105
WOO_KEY, WOO_KEY_SECRET = "ck_demo", "cs_demo"
GENERIC_SECRET = "whsec_ZGVtby1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw"  # noqa: S105
AMAZON_LOCATION = "Amazon FBA"  # the Shopify location whose stock is at Amazon
OTHER_APP = "Print on demand"  # another app's fulfillment service
INVENTORY_INTERVAL_S = 2.0  # production: 300 s (`inventory.interval_s`)
STOCK_WAIT_S = 20.0

LABELS = {
    "intake:created": "accepted",
    "storefront:scope": "fulfillment orders",
    "skip": "not for Amazon",
    "submit_started": "previewed (fulfillable, fees within the cap)",
    "created": "created at Amazon",
    "created_on_hold": "created at Amazon on hold",
    "park": "needs attention",
    "hold": "on hold",
    "approve": "approved by an operator; planned again",
    "amazon:shipped": "shipped",
    "pushed:shipment": "tracking pushed to the storefront",
    "pushed:note": "note pushed to the storefront",
    "intake:cancel_requested": "cancellation received",
    "intake:cancelled": "cancelled before reaching Amazon",
    "amazon_cancelled": "cancelled at Amazon",
    "shipped_all": "everything shipped",
}


@dataclass
class DemoOrder:
    title: str
    channel_id: str
    external_id: str
    expect: str  # the state the demo waits for
    approve: bool = False  # the demo approves it, as an operator would, once it waits for approval


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _shopify_order(
    order_id: int, lines: list[tuple[int, str, int]], cancelled: bool = False, tags: str = ""
) -> dict[str, Any]:
    now = _now_iso()
    return {
        "tags": tags,
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id}",
        "email": "demo.buyer@example.com",
        "created_at": now,
        "updated_at": now,
        "currency": "USD",
        "financial_status": "paid",
        "test": False,
        "cancelled_at": now if cancelled else None,
        "line_items": [
            {
                "id": lid,
                "sku": sku,
                "quantity": qty,
                "current_quantity": qty,
                "fulfillable_quantity": qty,
                "price": "19.99",
                "title": sku,
                "requires_shipping": True,
                "gift_card": False,
            }
            for lid, sku, qty in lines
        ],
        "shipping_address": {
            "name": "Demo Buyer",
            "address1": "1 Demo Street",
            "city": "Seattle",
            "province_code": "WA",
            "zip": "98109",
            "country_code": "US",
        },
        "shipping_lines": [{"title": "Standard Shipping", "code": "standard", "price": "0.00"}],
    }


def _woo_order(order_id: int, sku: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    address = {
        "first_name": "Demo",
        "last_name": "Buyer",
        "address_1": "2 Demo Avenue",
        "city": "Portland",
        "state": "OR",
        "postcode": "97201",
        "country": "US",
    }
    return {
        "id": order_id,
        "number": str(order_id),
        "status": "processing",
        "currency": "USD",
        "date_created_gmt": now,
        "date_modified_gmt": now,
        "billing": {**address, "email": "demo.buyer@example.com"},
        "shipping": address,
        "line_items": [{"id": 1, "sku": sku, "quantity": 1, "price": 12.0, "name": sku}],
        "shipping_lines": [{"id": 1, "method_title": "Flat rate", "method_id": "flat_rate", "total": "0.00"}],
    }


def _generic_order(external_id: str) -> dict[str, Any]:
    now = _now_iso()
    return {
        "type": "order.upsert",
        "order": {
            "external_id": external_id,
            "display_id": external_id,
            "currency": "USD",
            "payment_state": "paid",
            "created_at": now,
            "updated_at": now,
            "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": 1, "unit_price": "9.00"}],
            "destination": {
                "name": "Demo Buyer",
                "line1": "3 Demo Road",
                "city": "Austin",
                "state": "TX",
                "postal_code": "73301",
                "country_code": "US",
            },
        },
    }


class _Sender:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def shopify(self, body: dict[str, Any], topic: str = "orders/create") -> None:
        raw = json.dumps(body).encode()
        self._post(
            "/webhooks/shop-a",
            raw,
            {
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": hmac_sha256_b64(SHOPIFY_SECRET.encode(), raw),
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Shop-Domain": "shop-a.myshopify.com",
            },
        )

    def woo(self, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self._post(
            "/webhooks/woo-main",
            raw,
            {
                "X-WC-Webhook-Topic": "order.created",
                "X-WC-Webhook-Signature": hmac_sha256_b64(WOO_SECRET.encode(), raw),
                # As WooCommerce makes it: a hash of the webhook id and the current second.
                "X-WC-Webhook-Delivery-ID": hmac.new(
                    b"demo-site-salt", f"1{int(time.time())}".encode(), hashlib.md5
                ).hexdigest(),
            },
        )

    def generic(self, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self._post(
            "/webhooks/own-shop",
            raw,
            sign_standard_webhook(GENERIC_SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), raw),
        )

    def _post(self, path: str, raw: bytes, headers: dict[str, str]) -> None:
        response = self.http.post(path, content=raw, headers={"Content-Type": "application/json", **headers})
        response.raise_for_status()


@dataclass
class DemoEnvironment:
    """The demo's running bridge, for `--serve` and the console's browser tests."""

    bridge: Bridge
    simulator: Simulator
    web_url: str
    console_url: str
    console_password: str
    database_url: str


def run_demo(
    out: Callable[[str], None] = print,
    timeout_s: float = 120.0,
    workdir: Path | None = None,
    *,
    then: Callable[[DemoEnvironment], None] | None = None,
    port: int = 0,
) -> int:
    """Run the loop; returns 0 when every order reached its expected end, 1 otherwise.

    With `then`, the console is switched on with a one-time password and `then` is called with
    the still-running demo once the story is told; everything stops when it returns."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="fba-bridge-demo-"))
    stoppers: list[Callable[[], None]] = []
    try:
        return _run(out, timeout_s, workdir, stoppers, then, port)
    finally:
        for stop in reversed(stoppers):
            stop()


def serve_console(
    out: Callable[[str], None], wait: Callable[[], object]
) -> Callable[[DemoEnvironment], None]:
    """`fba-bridge demo --serve`: print where the console is and how to sign in, then `wait`."""

    def keep_running(demo: DemoEnvironment) -> None:
        out(
            f"\nThe console is open at {demo.console_url}\n"
            f"  sign in with any name and the one-time password {demo.console_password}\n"
            f"  (it works until this command stops; the bridge keeps running meanwhile). Ctrl-C stops."
        )
        wait()

    return keep_running


def _run(
    out: Callable[[str], None],
    timeout_s: float,
    workdir: Path,
    stoppers: list[Callable[[], None]],
    then: Callable[[DemoEnvironment], None] | None = None,
    port: int = 0,
) -> int:
    shops = start_local_shops(
        shopify_token=SHOPIFY_TOKEN, woo_key=WOO_KEY, woo_secret=WOO_KEY_SECRET, generic_secret=GENERIC_SECRET
    )
    stoppers.append(shops.stop)
    shopify, woo, receiver, servers = shops.shopify, shops.woocommerce, shops.generic, shops.servers
    amazon_location = shopify.add_location(AMAZON_LOCATION)
    # The example file with its demo defaults, whatever this shell exports for a real deployment.
    config = with_inventory_sync(
        _with_amazon_location(load_channels(example_channels_file(), env=shops.env())), amazon_location
    )
    database_url = f"sqlite:///{workdir / 'demo.sqlite3'}"
    # The demo's story is what it prints; the processes' routine INFO lines would bury it.
    settings = Settings(
        database_url=database_url,
        sync_interval_s=2.0,
        leader_lease_s=10.0,
        simulator_speed=SPEED,
        log_level="WARNING",
    )
    engine = make_engine(database_url)
    upgrade(engine)
    bridge = Bridge(settings=settings, config=config, engine=engine, clock=SystemClock())
    simulator = Simulator(load_config(example_simulator_file()), clock=ScaledClock(SPEED))
    amazon_server = serve_in_thread(create_simulator_app(simulator))
    stoppers.append(amazon_server.stop)
    bridge.settings = replace(settings, simulator_url=amazon_server.base_url)
    worker = make_worker(bridge, amazon=build_amazon(bridge), storefronts=Storefronts(bridge.clock))
    worker.poll_interval_s = 0.2
    clock = Clock(bridge)
    for name, target, stop in (
        ("worker", worker.run_forever, worker.stop),
        ("clock", clock.run_forever, clock.stop),
    ):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        stoppers.append(_stopper(stop, thread))
    password = secrets.token_urlsafe(12)
    if then is not None:  # the console, signed into with a password that dies with this process
        console = ConsoleSettings(password_hash=Secret(generate_password_hash(password)))
        bridge.settings = replace(bridge.settings, console=console)
    web = serve_in_thread(create_app(bridge), port=port)
    stoppers.append(web.stop)

    out(f"fba-bridge demo: MCF simulator x{SPEED:g} at {amazon_server.base_url}, webhooks at {web.base_url}")
    out(
        "fake storefronts: "
        + ", ".join(f"{name} {server.base_url}" for name, server in servers.items())
        + "\n"
    )
    orders = [
        DemoOrder("Shopify #1001: 2 blue + 1 red T-shirt (several packages)", "shop-a", "1001", "shipped"),
        DemoOrder("Shopify #1002: a mug, cancelled by the shop", "shop-a", "1002", "cancelled"),
        DemoOrder("Shopify #1003: 2 T-shirts at Amazon + 1 POD hoodie", "shop-a", "1003", "shipped"),
        DemoOrder(
            "WooCommerce #702: a poster that is out of stock at Amazon", "woo-main", "702", "needs_attention"
        ),
        DemoOrder("Own shop A-1001: generic signed webhook", "own-shop", "A-1001", "shipped"),
        DemoOrder("Shopify #1004: a T-shirt tagged fba-hold", "shop-a", "1004", "shipped", approve=True),
        DemoOrder("Shopify #1006: a mug tagged MCF_BLOCK_AMZL", "shop-a", "1006", "shipped"),
        DemoOrder("Shopify #1007: 260 mugs, beyond Amazon's 250 units", "shop-a", "1007", "shipped"),
    ]
    shopify.add_fulfillment_service(OTHER_APP, "https://print-on-demand.example/shopify")
    _seed_catalogs(shopify, woo, amazon_location)
    if not _wait_for_stock(bridge, time.monotonic() + STOCK_WAIT_S):
        out("the shops' stock did not settle; see `fba-bridge inventory` with the DATABASE_URL below")
    _print_stock(bridge, out, "before")
    shopify.add_order(
        "1001", [("11", "TSHIRT-BLUE-L", 2), ("12", "TSHIRT-RED-M", 1)], locations=AMAZON_LOCATION
    )
    shopify.add_order("1002", [("21", "MUG-WHITE", 1)], locations=AMAZON_LOCATION)
    shopify.add_order("1004", [("41", "TSHIRT-RED-M", 1)], locations=AMAZON_LOCATION)
    split = [(31, "TSHIRT-RED-M", 2), (32, "HOODIE-PRINTED", 1)]
    shopify.add_order(
        "1003",
        [(str(i), sku, q) for i, sku, q in split],
        fulfillment_order_groups=[["31"], ["32"]],
        locations=[AMAZON_LOCATION, OTHER_APP],
    )
    shopify.add_order("1006", [("61", "MUG-WHITE", 1)], locations=AMAZON_LOCATION)
    shopify.add_order("1007", [("71", "MUG-WHITE", 260)], locations=AMAZON_LOCATION)
    send = _Sender(web.base_url)
    send.shopify(_shopify_order(1001, [(11, "TSHIRT-BLUE-L", 2), (12, "TSHIRT-RED-M", 1)]))
    send.shopify(_shopify_order(1002, [(21, "MUG-WHITE", 1)]))
    send.shopify(_shopify_order(1003, split))
    send.shopify(_shopify_order(1004, [(41, "TSHIRT-RED-M", 1)], tags="gift, fba-hold"))
    send.woo(_woo_order(702, "POSTER-A2"))
    send.generic(_generic_order("A-1001"))
    send.shopify(_shopify_order(1006, [(61, "MUG-WHITE", 1)], tags="gift, MCF_BLOCK_AMZL"))
    send.shopify(_shopify_order(1007, [(71, "MUG-WHITE", 260)]))
    time.sleep(0.3)
    cancelled = _shopify_order(1002, [(21, "MUG-WHITE", 1)], cancelled=True)
    send.shopify(cancelled, topic="orders/cancelled")
    ok = _follow(bridge, orders, out, timeout_s)
    settled = _wait_for_stock(bridge, time.monotonic() + STOCK_WAIT_S, after=datetime.now(UTC))
    out("")
    _print_stock(bridge, out, "after")
    ok = ok and settled
    out("")
    for fulfillment in shopify.fulfillments("1001"):
        out(
            f"Shopify order #1001 fulfillment {fulfillment.gid}: "
            f"tracking {', '.join(fulfillment.tracking_numbers)}"
        )
    _show_split(shopify, out)
    _show_policies(bridge, shopify, out)
    events = [e for e in receiver.events if e.type != "inventory.updated"]
    out(
        f"generic shop received {len(events)} signed event(s): "
        + ", ".join(sorted({e.type or "?" for e in events}))
    )
    out(f"generic shop received {len(receiver.events_of('inventory.updated'))} signed stock update(s)")
    cli = command()
    out(
        f"\nWhere to look: the database is {workdir / 'demo.sqlite3'}; for an order's audit trail run\n"
        f"  DATABASE_URL={database_url} {cli} order shop-a 1001\n"
        f"  DATABASE_URL={database_url} {cli} orders --attention"
    )
    if then is not None:
        then(
            DemoEnvironment(
                bridge=bridge,
                simulator=simulator,
                web_url=web.base_url,
                console_url=f"{web.base_url}/console/",
                console_password=password,
                database_url=database_url,
            )
        )
    return 0 if ok else 1


def _with_amazon_location(config: ChannelsConfig) -> ChannelsConfig:
    """The demo's Shopify channel names Amazon's location, so split orders show what it does; it
    splits orders beyond Amazon's limits, with a fee cap that lets a 250-unit part through."""
    shop = replace(
        config.channels["shop-a"],
        shopify=ShopifyOptions(locations=(AMAZON_LOCATION,)),
        split_large_orders=True,
        fee_cap=Money(Decimal("1000.00"), "USD"),
    )
    return replace(config, channels={**config.channels, "shop-a": shop})


def _show_split(shopify: FakeShopify, out: Callable[[str], None]) -> None:
    """What Shopify holds for the split order: Amazon's fulfillment order fulfilled, the other not."""
    names = {shopify.location_gid(n).rsplit("/", 1)[-1]: n for n in (AMAZON_LOCATION, OTHER_APP)}
    for fo in shopify.fulfillment_orders("1003"):
        where = names.get(str(fo.location_id), "?")
        shipped = [
            f for f in shopify.fulfillments("1003") if any(x.fulfillment_order_id == fo.id for x in f.lines)
        ]
        tracking = ", ".join(n for f in shipped for n in f.tracking_numbers)
        lines = ", ".join(f"line {li.line.line_id} x{li.total}" for li in fo.line_items)
        verdict = (
            f"fulfilled by Amazon, tracking {tracking}" if shipped else "left to its own app, unfulfilled"
        )
        out(f"Shopify order #1003 at '{where}' ({lines}): {fo.status}, {verdict}")


def _show_policies(bridge: Bridge, shopify: FakeShopify, out: Callable[[str], None]) -> None:
    """The BLOCK_AMZL order's carriers, and the Amazon orders the large order became."""
    with read_session(bridge.engine) as session:
        rows = {
            r.external_id: r
            for r in session.execute(
                select(OrderRecord).where(
                    col(OrderRecord.channel_id) == "shop-a",
                    col(OrderRecord.external_id).in_(("1006", "1007")),
                )
            ).scalars()
        }
        blocked = rows.get("1006")
        carriers = sorted(
            {
                p.carrier_code
                for p in session.execute(
                    select(PackageRecord).where(
                        col(PackageRecord.order_id) == (blocked.id if blocked else -1)
                    )
                ).scalars()
            }
        )
        large = rows.get("1007")
        parts = [p.seller_fulfillment_order_id for p in order_parts(session, large.id or 0)] if large else []
    out(f"Shopify order #1006 (BLOCK_AMZL) shipped with {', '.join(carriers) or '-'}: never Amazon Logistics")
    out(
        f"Shopify order #1007 (260 units) went to Amazon as {', '.join(parts) or '-'}; "
        f"{len(shopify.fulfillments('1007'))} fulfillment(s) pushed to Shopify, "
        f"{sum(shopify.remaining('1007').values())} unit(s) left to fulfil"
    )


def with_inventory_sync(config: ChannelsConfig, shopify_location: str = DEFAULT_LOCATION) -> ChannelsConfig:
    """The example channels with inventory sync on, read every few seconds (the demo's pace)."""
    channels = {}
    for cid, channel in config.channels.items():
        inventory = replace(
            channel.inventory,
            sync=True,
            interval_s=INVENTORY_INTERVAL_S,
            location=channel.inventory.location
            or (shopify_location if channel.platform == "shopify" else ""),
        )
        channels[cid] = replace(channel, inventory=inventory)
    return replace(config, channels=channels)


def _seed_catalogs(shopify: FakeShopify, woo: FakeWooCommerce, shopify_location: str) -> None:
    """The demo SKUs as the fake shops list them, with no stock until the bridge sets it."""
    for sku in ("TSHIRT-RED-M", "TSHIRT-BLUE-L", "MUG-WHITE"):
        shopify.inventory.add_item(sku, 0, location=shopify_location)
    for sku in ("MUG-WHITE", "POSTER-A2"):
        woo.catalog.add_product(sku, 0)


def _wait_for_stock(bridge: Bridge, deadline: float, after: datetime | None = None) -> bool:
    """Until a sync that started after `after` has run and every storefront holds its target."""
    while time.monotonic() < deadline:
        cursors, lines = stock_report(bridge, limit=1000)
        fresh = bool(cursors) and all(
            c.changes_until and (after is None or c.changes_until > after) for c in cursors
        )
        if fresh and lines and all(line.in_sync for line in lines):
            return True
        time.sleep(0.3)
    return False


def _print_stock(bridge: Bridge, out: Callable[[str], None], when: str) -> None:
    _, lines = stock_report(bridge, limit=1000)
    for line in lines:
        shop = "-" if line.storefront_quantity is None else str(line.storefront_quantity)
        held = f", {line.in_flight} held for orders not at Amazon yet" if line.in_flight else ""
        out(
            f"stock {when:<6} {line.channel_id:<9} {line.storefront_sku:<14} shop {shop:>4}  "
            f"(Amazon {line.amazon_sku}: {line.amazon_quantity} sellable{held})"
        )


def _stopper(stop: Callable[[], None], thread: threading.Thread) -> Callable[[], None]:
    def run() -> None:
        stop()
        thread.join(10)

    return run


def _detail(event: OrderEventRecord, row: OrderRecord) -> str:
    if event.event in ("created", "created_on_hold"):
        # "created at Amazon[ as N orders (...)][; skipped ...; feature ... required (...)]"
        rest = event.reason.removeprefix("created at Amazon")
        if rest.startswith(" as "):
            return rest
        return f" as {row.seller_fulfillment_order_id}{rest}"
    if event.event in ("park", "hold", "amazon:shipped", "pushed:shipment", "storefront:scope", "skip"):
        return f": {event.reason}"
    return ""


def _follow(bridge: Bridge, orders: list[DemoOrder], out: Callable[[str], None], timeout_s: float) -> bool:
    seen: dict[str, int] = {}
    deadline = time.monotonic() + timeout_s
    width = max(len(o.title) for o in orders)
    while time.monotonic() < deadline:
        done = True
        to_approve: list[DemoOrder] = []
        with read_session(bridge.engine) as session:
            for demo in orders:
                row = (
                    session.execute(
                        select(OrderRecord).where(
                            col(OrderRecord.channel_id) == demo.channel_id,
                            col(OrderRecord.external_id) == demo.external_id,
                        )
                    )
                    .scalars()
                    .first()
                )
                if row is None:
                    done = False
                    continue
                events = list(
                    session.execute(
                        select(OrderEventRecord)
                        .where(
                            col(OrderEventRecord.order_id) == row.id,
                            col(OrderEventRecord.id) > seen.get(demo.external_id, 0),
                        )
                        .order_by(col(OrderEventRecord.id))
                    ).scalars()
                )
                for event in events:
                    label = LABELS.get(event.event)
                    if label:
                        out(f"{demo.title:<{width}}  {label}{_detail(event, row)}")
                    seen[demo.external_id] = event.id or 0
                pending = session.execute(
                    select(col(PushRecord.id)).where(
                        col(PushRecord.order_id) == row.id, col(PushRecord.status) != "done"
                    )
                ).first()
                done &= row.state == demo.expect and pending is None
                if demo.approve and row.state == "awaiting_approval":
                    to_approve.append(demo)
        for demo in to_approve:
            operator.approve(bridge, demo.channel_id, demo.external_id, actor="demo operator")
        if done:
            return True
        time.sleep(0.3)
    out(f'the demo timed out; see "{command()} jobs" and "{command()} orders" with the DATABASE_URL below')
    return False
