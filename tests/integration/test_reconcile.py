"""Storefront reconciliation over real HTTP: the fake Shopify and WooCommerce stores on loopback
sockets, the bridge's intake on its Flask app, every pass through `run_pass` (what the job and
`fba-bridge reconcile` run)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import col

from bridge import jobs
from bridge.alerts import list_alerts
from bridge.amazon.simulator.server import RunningServer, serve_in_thread
from bridge.bootstrap import Bridge
from bridge.channels import ChannelsConfig, load_channels
from bridge.clock import ManualClock
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app
from bridge.pipeline.reconcile import (
    JOB_RECONCILE,
    NotReconcilable,
    PassBusy,
    _take,
    reconcile_key,
    run_pass,
)
from bridge.runtime import make_worker
from bridge.store import DeliveryRecord, JobRecord, OrderEventRecord, OrderRecord, read_session, write_session
from bridge.storefronts.registry import Storefronts
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV, apply_deferred
from tests.support import shopify_delivery, shopify_order, woo_delivery, woo_order

SHOP_TOKEN = "demo-shopify-token"  # the example channels file's default
WOO_KEY, WOO_SECRET = "ck_demo", "cs_demo"


@pytest.fixture
def shop(clock: ManualClock) -> FakeShopify:
    return FakeShopify(SHOP_TOKEN, clock)


@pytest.fixture
def woo(clock: ManualClock) -> FakeWooCommerce:
    return FakeWooCommerce(WOO_KEY, WOO_SECRET, clock=clock)


@pytest.fixture
def shop_server(shop: FakeShopify) -> Iterator[RunningServer]:
    with serve_in_thread(create_fake_shopify_app(shop)) as server:
        yield server


@pytest.fixture
def woo_hooks() -> list[Callable[[str], None]]:
    """Called with the route before each request the fake WooCommerce answers (test hooks)."""
    return []


@pytest.fixture
def woo_server(woo: FakeWooCommerce, woo_hooks: list[Callable[[str], None]]) -> Iterator[RunningServer]:
    app = create_fake_woocommerce_app(woo)
    inner = app.wsgi_app

    def hooked(environ: dict[str, Any], start_response: Any) -> Any:
        for hook in woo_hooks:
            hook(str(environ.get("PATH_INFO", "")))
        return inner(environ, start_response)

    app.wsgi_app = hooked  # type: ignore[method-assign]
    with serve_in_thread(app) as server:
        yield server


@pytest.fixture
def channels_config(shop_server: RunningServer, woo_server: RunningServer) -> ChannelsConfig:
    env = {**TEST_ENV, "SHOP_A_URL": shop_server.base_url, "WOO_URL": woo_server.base_url}
    return load_channels(EXAMPLE_CONFIG, env=env)


@pytest.fixture
def storefronts(bridge: Bridge) -> Iterator[Storefronts]:
    sf = Storefronts(bridge.clock)
    yield sf
    sf.close()


def post_shopify(client: FlaskClient, body: dict[str, Any], topic: str = "orders/create") -> str:
    raw, headers = shopify_delivery(body, topic)
    response = client.post("/webhooks/shop-a", data=raw, headers=headers)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["outcome"])


def post_woo(client: FlaskClient, body: dict[str, Any], topic: str = "order.created") -> str:
    raw, headers = woo_delivery(body, topic, delivery_id=f"d-{body['id']}-{body['date_modified_gmt']}")
    response = client.post("/webhooks/woo-main", data=raw, headers=headers)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["outcome"])


def orders_of(bridge: Bridge, channel_id: str) -> dict[str, OrderRecord]:
    with read_session(bridge.engine) as session:
        rows = session.execute(select(OrderRecord).where(col(OrderRecord.channel_id) == channel_id)).scalars()
        return {row.external_id: row for row in rows}


def created_events(bridge: Bridge) -> dict[int, int]:
    with read_session(bridge.engine) as session:
        rows = session.execute(
            select(col(OrderEventRecord.order_id), func.count())
            .where(col(OrderEventRecord.event) == "intake:created")
            .group_by(col(OrderEventRecord.order_id))
        ).all()
    return {order_id: n for order_id, n in rows}


def submit_jobs(bridge: Bridge) -> list[int | None]:
    with read_session(bridge.engine) as session:
        return list(
            session.execute(select(col(JobRecord.order_id)).where(col(JobRecord.kind) == "submit")).scalars()
        )


# --------------------------------------------------------------------------------------------
# Shopify


def test_one_pass_recovers_every_shopify_order_whose_webhook_was_dropped(
    bridge: Bridge, client: FlaskClient, shop: FakeShopify, storefronts: Storefronts, clock: ManualClock
) -> None:
    bodies = [shop.put_order(shopify_order(5000 + i)) for i in range(5)]
    for body in bodies[:2]:  # delivered; the other three deliveries are lost
        assert post_shopify(client, body) == "created"
    clock.advance(60)

    summary = run_pass(bridge, storefronts, "shop-a")

    assert (summary.found, summary.new, summary.nothing_to_do) == (5, 3, 2)
    assert summary.outcomes["unchanged"] == 2  # read back through GraphQL, the same canonical order
    assert summary.calls == 1 and summary.cursor_advanced
    rows = orders_of(bridge, "shop-a")
    assert sorted(rows) == [str(5000 + i) for i in range(5)]
    assert all(n == 1 for n in created_events(bridge).values()) and len(created_events(bridge)) == 5
    assert sorted(submit_jobs(bridge)) == sorted(row.id for row in rows.values())
    with read_session(bridge.engine) as session:
        sources = [r.source for r in session.execute(select(DeliveryRecord)).scalars()]
    assert sorted(sources) == ["reconcile"] * 5 + ["webhook"] * 2

    clock.advance(600)
    overlap = run_pass(bridge, storefronts, "shop-a")  # changed 5 minutes before the cursor: read again
    assert (overlap.found, overlap.outcomes["duplicate"]) == (5, 5)  # the same versions: no new rows
    clock.advance(600)
    later = run_pass(bridge, storefronts, "shop-a")
    assert later.found == 0  # the cursor moved past them


def test_a_pass_takes_in_amendments_and_cancellations_a_webhook_did_not_bring(
    bridge: Bridge, client: FlaskClient, shop: FakeShopify, storefronts: Storefronts, clock: ManualClock
) -> None:
    for i in range(3):
        post_shopify(client, shop.put_order(shopify_order(6000 + i)))
    run_pass(bridge, storefronts, "shop-a")
    clock.advance(600)
    changed = shop.order_document("6000")
    changed["line_items"][0]["quantity"] = changed["line_items"][0]["current_quantity"] = 3
    changed["line_items"][0]["fulfillable_quantity"] = 3
    shop.put_order(changed)
    cancelled = shop.order_document("6001")
    cancelled.update(cancelled_at="2026-11-23T12:09:00Z", cancel_reason="customer")
    shop.put_order(cancelled)
    clock.advance(60)

    summary = run_pass(bridge, storefronts, "shop-a")

    assert (summary.amendments, summary.cancellations, summary.new, summary.nothing_to_do) == (1, 1, 0, 1)
    rows = orders_of(bridge, "shop-a")
    assert rows["6000"].canonical().lines[0].quantity == 3
    assert rows["6001"].state == "cancelled"
    assert rows["6002"].state == "received"


def test_an_order_with_more_lines_than_a_page_is_read_whole(
    bridge: Bridge, shop: FakeShopify, storefronts: Storefronts
) -> None:
    order = shopify_order(7000)
    template = order["line_items"][0]
    order["line_items"] = [
        dict(template, id=900 + n, sku=f"SKU-{n}", quantity=1, current_quantity=1, fulfillable_quantity=1)
        for n in range(25)
    ]
    shop.put_order(order)

    summary = run_pass(bridge, storefronts, "shop-a")

    assert summary.new == 1 and summary.calls == 2  # the page, then the order's remaining lines
    assert len(orders_of(bridge, "shop-a")["7000"].canonical().lines) == 25


def test_many_changed_orders_are_read_page_by_page_within_the_cost_budget(
    bridge: Bridge, shop: FakeShopify, storefronts: Storefronts
) -> None:
    for i in range(45):
        shop.put_order(shopify_order(8000 + i))

    summary = run_pass(bridge, storefronts, "shop-a")

    assert summary.new == 45 and summary.calls == 3
    assert shop.calls("ReconcileOrders", "throttled") == 0
    assert all(r.variables["query"].startswith("updated_at:>=") for r in shop.requests)


def test_a_storefront_error_leaves_the_cursor_where_it_was(
    bridge: Bridge, shop: FakeShopify, storefronts: Storefronts, clock: ManualClock
) -> None:
    from bridge.storefronts.push import PushError

    shop.put_order(shopify_order(5100))
    first = run_pass(bridge, storefronts, "shop-a")
    clock.advance(3600)
    shop.put_order(shopify_order(5101))
    shop.fail_next("ReconcileOrders", 503)
    with pytest.raises(PushError):
        run_pass(bridge, storefronts, "shop-a")
    clock.advance(600)

    summary = run_pass(bridge, storefronts, "shop-a")

    assert first.new == 1 and summary.new == 1
    assert summary.since < clock.now().replace(minute=0)  # read from the old cursor again


def test_only_one_pass_runs_per_channel_at_a_time(bridge: Bridge, storefronts: Storefronts) -> None:
    channel = bridge.config.channels["shop-a"]
    _take(bridge, channel, "someone-else", None, bridge.clock.now())
    with pytest.raises(PassBusy):
        run_pass(bridge, storefronts, "shop-a")


def test_the_generic_channel_cannot_be_reconciled(bridge: Bridge, storefronts: Storefronts) -> None:
    with pytest.raises(NotReconcilable, match="sender must retry"):
        run_pass(bridge, storefronts, "own-shop")


# --------------------------------------------------------------------------------------------
# WooCommerce


def test_one_pass_recovers_every_woocommerce_order_whose_webhook_was_dropped(
    bridge: Bridge, client: FlaskClient, woo: FakeWooCommerce, storefronts: Storefronts, clock: ManualClock
) -> None:
    bodies = [woo.put_order(woo_order(700 + i)) for i in range(130)]  # two pages of 100
    for body in bodies[::10]:
        assert post_woo(client, body) == "created"
    clock.advance(60)

    summary = run_pass(bridge, storefronts, "woo-main")

    assert (summary.found, summary.new, summary.nothing_to_do) == (130, 117, 13)
    assert summary.outcomes["unchanged"] == 13
    assert len(orders_of(bridge, "woo-main")) == 130 and len(created_events(bridge)) == 130
    listing = [c for c in woo.calls_of("list_orders")]
    assert len(listing) == 2 and summary.calls == 3  # two pages and the webhooks
    clock.advance(600)
    woo.set_status(woo.order(705), "cancelled")
    clock.advance(60)

    later = run_pass(bridge, storefronts, "woo-main")

    assert (later.cancellations, later.outcomes["duplicate"]) == (1, 129)
    assert orders_of(bridge, "woo-main")["705"].state == "cancelled"


def test_webhooks_arriving_during_a_pass_create_nothing_twice(
    bridge: Bridge,
    client: FlaskClient,
    woo: FakeWooCommerce,
    woo_hooks: list[Callable[[str], None]],
    storefronts: Storefronts,
) -> None:
    bodies = [woo.put_order(woo_order(900 + i)) for i in range(150)]
    pages: list[str] = []
    lock = threading.Lock()

    def deliver_all_before_the_second_page(path: str) -> None:
        if not path.endswith("/orders"):
            return
        with lock:
            pages.append(path)
            if len(pages) != 2:
                return
        for body in bodies:  # every webhook, the first page's orders and the second's alike
            post_woo(client, body)

    woo_hooks.append(deliver_all_before_the_second_page)

    summary = run_pass(bridge, storefronts, "woo-main")

    assert summary.found == 150 and summary.new == 100  # page two's orders came by webhook first
    assert summary.nothing_to_do == 50
    assert len(orders_of(bridge, "woo-main")) == 150
    assert set(created_events(bridge).values()) == {1} and len(created_events(bridge)) == 150
    assert len(submit_jobs(bridge)) == 150


def test_a_disabled_woocommerce_webhook_raises_one_alert_until_it_is_active_again(
    bridge: Bridge, woo: FakeWooCommerce, storefronts: Storefronts, clock: ManualClock
) -> None:
    hook = woo.add_webhook("order.updated", "https://bridge.example/webhooks/woo-main", status="disabled")
    woo.add_webhook("order.created", "https://bridge.example/webhooks/woo-main")
    woo.add_webhook("order.updated", "https://elsewhere.example/hook", status="disabled")

    first = run_pass(bridge, storefronts, "woo-main")
    clock.advance(600)
    run_pass(bridge, storefronts, "woo-main")

    assert first.webhooks_not_active == ["order.updated:disabled"]
    [alert] = [a for a in list_alerts(bridge.engine) if a.kind == "webhook_disabled"]
    assert alert.is_open and alert.occurrences == 2 and alert.channel_id == "woo-main"
    assert "fba-bridge reconcile woo-main" in alert.message
    hook.status = "active"
    clock.advance(600)
    run_pass(bridge, storefronts, "woo-main")
    [alert] = [a for a in list_alerts(bridge.engine, include_cleared=True) if a.kind == "webhook_disabled"]
    assert not alert.is_open


# --------------------------------------------------------------------------------------------
# The job, the clock, the command


def test_the_reconcile_job_runs_a_pass_and_a_second_request_waits_for_it(
    bridge: Bridge, shop: FakeShopify, amazon: Any
) -> None:
    shop.put_order(shopify_order(5200))
    with write_session(bridge.engine) as session:
        payload = {"channel_id": "shop-a", "since": None}
        assert jobs.enqueue(session, JOB_RECONCILE, payload=payload, dedupe_key=reconcile_key("shop-a"))
        assert not jobs.enqueue(session, JOB_RECONCILE, payload=payload, dedupe_key=reconcile_key("shop-a"))
    worker = make_worker(bridge, amazon=amazon)
    worker.run_once()
    assert "5200" in orders_of(bridge, "shop-a")
    with read_session(bridge.engine) as session:
        job = session.execute(select(JobRecord).where(col(JobRecord.kind) == JOB_RECONCILE)).scalars().one()
    assert job.status == "done"


def test_the_reconcile_command_prints_what_it_found_without_personal_data(
    bridge: Bridge,
    client: FlaskClient,
    shop: FakeShopify,
    shop_server: RunningServer,
    woo_server: RunningServer,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bridge.cli import main

    delivered = shop.put_order(shopify_order(5300, name="Jon Canary"))
    post_shopify(client, delivered)
    shop.put_order(shopify_order(5301, name="Jon Canary"))
    for key, value in {
        **TEST_ENV,
        "SHOP_A_URL": shop_server.base_url,
        "WOO_URL": woo_server.base_url,
        "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
        "DATABASE_URL": database_url,
    }.items():
        monkeypatch.setenv(key, value)

    result = CliRunner().invoke(main, ["reconcile", "shop-a", "--since", "2026-11-01T00:00:00Z"])

    assert result.exit_code == 0, result.output
    assert "new orders     1" in result.output and "nothing to do  1" in result.output
    assert "Canary" not in result.output and "@" not in result.output
    bad = CliRunner().invoke(main, ["reconcile", "shop-a", "--since", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output


def test_the_clock_schedules_a_pass_per_reconcilable_channel(bridge: Bridge) -> None:
    from bridge.scheduler import Clock

    scheduled = {job.id: job for job in Clock(bridge).scheduler.get_jobs()}
    assert {"reconcile:shop-a", "reconcile:woo-main"} <= set(scheduled)
    assert "reconcile:own-shop" not in scheduled
    assert scheduled["reconcile:shop-a"].trigger.interval.total_seconds() == 600


def test_the_summary_is_stored_on_the_cursor(
    bridge: Bridge, shop: FakeShopify, storefronts: Storefronts
) -> None:
    from bridge.store import ReconcileCursorRecord

    shop.put_order(shopify_order(5400))
    run_pass(bridge, storefronts, "shop-a")
    with read_session(bridge.engine) as session:
        cursor = session.get(ReconcileCursorRecord, "shop-a")
    assert cursor is not None and cursor.synced_until == bridge.clock.now()
    assert cursor.last_summary["new"] == 1 and cursor.running_until is None
    assert json.dumps(cursor.last_summary)  # plain JSON: counts and codes, no order content


def test_the_listing_costs_what_it_estimates_and_reads_what_a_webhook_carries(shop: FakeShopify) -> None:
    from graphql import OperationDefinitionNode, parse

    from bridge.fakes.shopify import QueryCost
    from bridge.storefronts.shopify_orders import (
        LINES_PAGE,
        LINES_PER_ORDER,
        PAGE_SIZE,
        RECONCILE_ORDER_LINES,
        RECONCILE_ORDERS,
    )

    for operation, variables in (
        (RECONCILE_ORDERS, {"first": PAGE_SIZE, "lines": LINES_PER_ORDER}),
        (RECONCILE_ORDER_LINES, {"first": LINES_PAGE}),
    ):
        document = parse(operation.document)
        [definition] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        assert QueryCost(document, definition, variables).requested() == operation.estimated_cost
    assert RECONCILE_ORDERS.estimated_cost <= 1000  # Shopify's single-query limit


def test_an_order_read_back_is_the_order_its_webhook_carried(
    bridge: Bridge, client: FlaskClient, shop: FakeShopify, storefronts: Storefronts
) -> None:
    """Customer phone fallback, tags, note attributes and line properties (a line's gift message):
    everything the adapter reads must come back through GraphQL, or every pass would 'amend'."""
    order = shopify_order(5500)
    order["phone"] = None
    order["customer"] = dict(order.get("customer") or {}, phone="+1 555 0100 999", email="c@example.com")
    order["tags"] = "VIP, fba-hold"
    order["line_items"][0]["properties"] = [{"name": "_gift_message", "value": "Happy birthday"}]
    post_shopify(client, shop.put_order(order))
    held = orders_of(bridge, "shop-a")["5500"].canonical()
    assert held.tags == ("vip", "fba-hold") and held.lines[0].gift_message == "Happy birthday"

    summary = run_pass(bridge, storefronts, "shop-a")

    assert summary.outcomes == {"unchanged": 1}


def test_a_throttled_listing_waits_for_the_cost_bucket_on_the_clock(
    bridge: Bridge, shop: FakeShopify, storefronts: Storefronts, clock: ManualClock
) -> None:
    for i in range(3):
        shop.put_order(shopify_order(5600 + i))
    shop.set_available(100)  # another app drained the shop's bucket
    before = clock.monotonic()

    summary = run_pass(bridge, storefronts, "shop-a")

    assert summary.new == 3
    assert shop.calls("ReconcileOrders", "throttled") == 1 and shop.calls("ReconcileOrders", "ok") == 1
    assert clock.monotonic() - before >= (923 - 100) / 50  # waited on the clock, not the wall


def test_a_pass_already_running_postpones_the_job_without_spending_an_attempt(
    bridge: Bridge, shop: FakeShopify, amazon: Any
) -> None:
    _take(bridge, bridge.config.channels["shop-a"], "another-worker", None, bridge.clock.now())
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_RECONCILE, payload={"channel_id": "shop-a", "since": None})
    make_worker(bridge, amazon=amazon).run_once()
    with read_session(bridge.engine) as session:
        job = session.execute(select(JobRecord).where(col(JobRecord.kind) == JOB_RECONCILE)).scalars().one()
    assert (job.status, job.attempts) == ("ready", 0)
    assert "already running" in job.last_error


def test_requests_for_a_pass_wait_as_one_job_unless_they_read_further_back(bridge: Bridge) -> None:
    from datetime import UTC, datetime

    from bridge.pipeline.reconcile import enqueue_reconcile

    since = datetime(2026, 11, 20, tzinfo=UTC)
    with write_session(bridge.engine) as session:
        assert enqueue_reconcile(session, "shop-a")
        assert not enqueue_reconcile(session, "shop-a")
        assert enqueue_reconcile(session, "shop-a", since)
        assert not enqueue_reconcile(session, "shop-a", since)
    with read_session(bridge.engine) as session:
        payloads = [j.payload for j in session.execute(select(JobRecord)).scalars()]
    assert payloads == [
        {"channel_id": "shop-a", "since": None},
        {"channel_id": "shop-a", "since": "2026-11-20T00:00:00+00:00"},
    ]


def test_an_operators_request_for_a_pass_is_run_by_the_worker(
    bridge: Bridge, shop: FakeShopify, amazon: Any
) -> None:
    from bridge import operator

    shop.put_order(shopify_order(5700))
    assert operator.request_reconcile(bridge, "shop-a", actor="alice")

    make_worker(bridge, amazon=amazon).run_once()

    assert "5700" in orders_of(bridge, "shop-a")


def test_webhooks_racing_a_pass_in_other_threads_create_each_order_once(
    bridge: Bridge, app: Any, shop: FakeShopify, storefronts: Storefronts
) -> None:
    bodies = [shop.put_order(shopify_order(9000 + i)) for i in range(60)]
    errors: list[BaseException] = []

    def deliver(part: list[dict[str, Any]]) -> None:
        client = app.test_client()
        try:
            for body in part:
                post_shopify(client, body)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(bodies[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    summary = run_pass(bridge, storefronts, "shop-a")
    for thread in threads:
        thread.join()
    # Side-by-side handlers may defer their deliveries (`BRIDGE_WEBHOOK_DEFER_AT`); apply them too.
    apply_deferred(bridge)

    assert errors == []
    assert summary.found == 60
    assert len(orders_of(bridge, "shop-a")) == 60
    assert set(created_events(bridge).values()) == {1} and len(created_events(bridge)) == 60
    assert len(submit_jobs(bridge)) == 60
