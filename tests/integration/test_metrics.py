"""`GET /metrics` through the real app: protection, every family, and the figures behind them."""

from __future__ import annotations

import logging
from datetime import UTC, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bridge import alerts, jobs, metrics
from bridge.bootstrap import Bridge
from bridge.channels import ChannelsConfig
from bridge.clock import ManualClock
from bridge.metrics import catalog, counters
from bridge.metrics.collect import ScrapeCache
from bridge.metrics.events import BUFFER, Flusher
from bridge.settings import Secret, Settings
from bridge.store import OrderRecord, SyncCursorRecord, make_engine, read_session, write_session
from tests.integration.test_pushback import Shops, ship_shopify, shops  # noqa: F401 (fixture)
from tests.support import Scrape, shopify_delivery, shopify_order

TOKEN = "metrics-test-token-6f1c2a9e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def bridge(db: Engine, channels_config: ChannelsConfig, clock: ManualClock) -> Bridge:
    """The suite's bridge with /metrics switched on."""
    settings = Settings(
        max_body_bytes=256 * 1024, metrics_flush_s=0, metrics_cache_s=0, metrics_token=Secret(TOKEN)
    )
    return Bridge(settings=settings, config=channels_config, engine=db, clock=clock)


def scrape(client: FlaskClient) -> Scrape:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return Scrape(response.get_data(as_text=True))


def post_order(client: FlaskClient, order_id: int, **kwargs: Any) -> int:
    body, headers = shopify_delivery(shopify_order(order_id), **kwargs)
    return client.post("/webhooks/shop-a", data=body, headers=headers).status_code


# --------------------------------------------------------------------------------------------
# Protection


def test_metrics_are_off_without_a_token(db: Engine, channels_config: ChannelsConfig) -> None:
    from bridge.app import create_app

    plain = Bridge(settings=Settings(metrics_flush_s=0), config=channels_config, engine=db)
    response = create_app(plain).test_client().get("/metrics", headers=AUTH)
    assert response.status_code == 404 and response.json["error"] == "disabled"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x", "Bearer "],
)
def test_metrics_refuse_a_missing_or_wrong_token(
    client: FlaskClient, header: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "# HELP" not in response.get_data(as_text=True)
    assert TOKEN not in caplog.text


def test_every_family_is_exposed_even_before_anything_happened(client: FlaskClient) -> None:
    result = scrape(client)
    for family in catalog.FAMILIES:
        base = family.name.removesuffix("_total")
        assert base in result.families, family.name
        assert result.families[base].type == family.kind
    assert TOKEN not in result.text


# --------------------------------------------------------------------------------------------
# Webhooks


def test_webhooks_are_counted_by_channel_and_outcome_with_their_latency(client: FlaskClient) -> None:
    body, headers = shopify_delivery(shopify_order(8101))
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200
    assert post_order(client, 8102, secret="wrong-secret") == 401
    assert client.post("/webhooks/no-such-shop", data=body, headers=headers).status_code == 404
    assert client.post("/webhooks/shop-a", data=b"{", headers=headers).status_code == 401

    result = scrape(client)
    assert result.value("bridge_webhooks_total", channel="shop-a", outcome="created") == 1
    assert result.value("bridge_webhooks_total", channel="shop-a", outcome="duplicate") == 1
    assert result.value("bridge_webhooks_total", channel="shop-a", outcome="invalid_signature") == 2
    assert result.value("bridge_webhooks_total", channel="unknown", outcome="unknown_channel") == 1
    assert not any(
        labels["channel"] == "no-such-shop" for labels, _ in result.series("bridge_webhooks_total")
    )

    name = "bridge_webhook_duration_seconds"
    assert result.value(f"{name}_count", channel="shop-a", result="ok") == 2
    assert result.value(f"{name}_count", channel="shop-a", result="rejected") == 2
    assert result.value(f"{name}_bucket", channel="shop-a", result="ok", le="+Inf") == 2
    buckets = [
        result.value(f"{name}_bucket", channel="shop-a", result="ok", le=repr(bound))
        for bound in catalog.WEBHOOK_BUCKETS
    ]
    assert buckets == sorted(buckets), "cumulative"
    total = result.value(f"{name}_sum", channel="shop-a", result="ok")
    assert total is not None and 0 < total < 20


def test_counts_survive_in_the_database_and_only_grow(client: FlaskClient) -> None:
    assert post_order(client, 8201) == 200
    first = scrape(client).value("bridge_webhooks_total", channel="shop-a", outcome="created")
    assert post_order(client, 8202) == 200
    BUFFER.reset()  # as if this web process restarted: what was flushed stays counted
    assert post_order(client, 8203) == 200
    assert first == 1
    assert scrape(client).value("bridge_webhooks_total", channel="shop-a", outcome="created") == 2


# --------------------------------------------------------------------------------------------
# The whole loop: jobs, SP-API, storefronts, orders, sync


def test_the_loop_shows_up_in_every_family(
    client: FlaskClient,
    bridge: Bridge,
    shops: Shops,  # noqa: F811 (the fixture)
    clock: ManualClock,
) -> None:
    ship_shopify(client, bridge, shops, clock, 8301, [(81, "TSHIRT-RED-M", 1)])
    result = scrape(client)

    calls = "bridge_spapi_calls_total"
    for operation in ("getFulfillmentPreview", "createFulfillmentOrder", "getFulfillmentOrder"):
        assert result.value(calls, account="main", operation=operation, status="200") == 1, operation
    assert (result.value(calls, account="main", operation="listAllFulfillmentOrders", status="200") or 0) >= 1
    assert (
        result.value(
            "bridge_spapi_call_duration_seconds_count", account="main", operation="createFulfillmentOrder"
        )
        == 1
    )
    tokens = result.value("bridge_spapi_rate_tokens", account="main", operation="createFulfillmentOrder")
    burst = result.value("bridge_spapi_rate_burst", account="main", operation="createFulfillmentOrder")
    assert burst == 29 and tokens is not None and 0 < tokens <= burst

    storefront = result.series("bridge_storefront_calls_total")
    assert storefront and all(labels["platform"] == "shopify" for labels, _ in storefront)
    assert (
        result.value("bridge_storefront_calls_total", channel="shop-a", platform="shopify", status="200") or 0
    ) >= 2
    assert shops.shopify.fulfillments("8301")

    with read_session(bridge.engine) as session:
        state = session.execute(select(OrderRecord.state)).scalar_one()
        cursor = session.get(SyncCursorRecord, "main")
    assert cursor is not None
    assert result.value("bridge_orders", channel="shop-a", state=state) == 1

    finished = "bridge_jobs_finished_total"
    for kind in ("submit", "sync", "sync_order", "push"):
        assert (result.value(finished, kind=kind, outcome="done") or 0) >= 1, kind
    synced = result.value(
        "bridge_job_last_success_timestamp_seconds", kind="sync", channel="", account="main"
    )
    assert synced == clock.now().timestamp()
    submitted = result.value(
        "bridge_job_last_success_timestamp_seconds", kind="submit", channel="shop-a", account=""
    )
    assert submitted is not None and submitted < synced
    last_sync = result.value("bridge_last_sync_timestamp_seconds", channel="shop-a", account="main")
    assert last_sync == cursor.updated_at.replace(tzinfo=UTC).timestamp()
    assert result.value("bridge_last_sync_timestamp_seconds", channel="woo-main", account="main") == last_sync

    labels_seen = {value for _, labels in result.samples for _, value in labels}
    assert "8301" not in labels_seen and "TSHIRT-RED-M" not in labels_seen and "81" not in labels_seen


def test_queue_and_alert_gauges_follow_the_tables(client: FlaskClient, bridge: Bridge, db: Engine) -> None:
    with write_session(db) as session:
        jobs.enqueue(session, "probe", delay_s=-120)  # due two minutes ago, nobody took it
        jobs.enqueue(session, "probe", delay_s=600)  # not due yet
        alerts.raise_alert(
            session, key="probe:1", kind="probe", message="m", now=bridge.clock.now(), channel_id="shop-a"
        )
        alerts.raise_alert(session, key="probe:2", kind="probe", message="m", now=bridge.clock.now())
    alerts.resolve(db, alerts.list_alerts(db)[-1].id, "test", bridge.clock.now())

    result = scrape(client)
    assert result.value("bridge_jobs", kind="probe", state="ready") == 2
    age = result.value("bridge_job_queue_age_seconds", kind="probe")
    assert age is not None and 119 <= age < 600
    open_alerts = result.series("bridge_alerts_open")
    assert [(labels["kind"], value) for labels, value in open_alerts if labels["kind"] == "probe"] == [
        ("probe", 1)
    ]

    claimed = jobs.claim(db, ["probe"])
    assert claimed is not None
    after = scrape(client)
    assert after.value("bridge_jobs", kind="probe", state="running") == 1
    assert after.value("bridge_job_queue_age_seconds", kind="probe") == 0


def test_failed_jobs_are_counted_by_outcome(bridge: Bridge, client: FlaskClient) -> None:
    from bridge.worker import RetryLater, Worker

    def flaky(ctx: Any) -> None:
        raise RetryLater("later", after_s=0)

    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "flaky", max_attempts=2)
    worker = Worker(bridge, {"flaky": flaky})
    assert worker.run_once() and worker.run_once()
    result = scrape(client)
    assert result.value("bridge_jobs_finished_total", kind="flaky", outcome="retry") == 1
    assert result.value("bridge_jobs_finished_total", kind="flaky", outcome="dead") == 1
    assert result.value("bridge_jobs", kind="flaky", state="dead") == 1


# --------------------------------------------------------------------------------------------
# Storing counts


def test_flushes_add_up_and_latest_timestamps_only_grow(db: Engine) -> None:
    metrics.job_finished("sync", "done", at=2000.0, account="main")
    assert metrics.flush(db)
    metrics.job_finished("sync", "done", at=1000.0, account="main")  # an older success arrives late
    metrics.job_finished("sync", "done", at=1500.0, account="main")
    assert metrics.flush(db)
    with read_session(db) as session:
        stored = {
            (name, tuple(sorted(labels.items()))): value for name, labels, value in counters.read(session)
        }
    labels = (("account", "main"), ("channel", ""), ("kind", "sync"))
    assert stored[(catalog.JOB_LAST_SUCCESS.name, labels)] == 2000.0
    assert stored[(catalog.JOBS_FINISHED.name, (("kind", "sync"), ("outcome", "done")))] == 3


def test_counts_a_database_refused_are_kept_for_the_next_flush(db: Engine, tmp_path: Any) -> None:
    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/x.sqlite3")
    metrics.storefront_call("woo-main", "woocommerce", 503)
    assert not metrics.flush(broken)
    metrics.storefront_call("woo-main", "woocommerce", 503)
    assert metrics.flush(db)
    with read_session(db) as session:
        [(name, labels, value)] = counters.read(session)
    assert name == "bridge_storefront_calls_total" and value == 2
    assert labels == {"channel": "woo-main", "platform": "woocommerce", "status": "503"}


def test_the_background_flusher_writes_without_a_scrape(db: Engine) -> None:
    flusher = Flusher(db, interval_s=0.05).start()
    try:
        metrics.spapi_call("main", "getFeatures", 200, 12)
        deadline = 200
        while deadline:
            with read_session(db) as session:
                if counters.read(session):
                    break
            flusher._stop.wait(0.05)
            deadline -= 1
    finally:
        flusher.stop()
    with read_session(db) as session:
        names = {name for name, _, _ in counters.read(session)}
    assert "bridge_spapi_calls_total" in names


def test_a_scrape_answer_is_reused_within_the_cache_time() -> None:
    now = [100.0]
    cache = ScrapeCache(5.0, clock=lambda: now[0])
    answers = iter([b"first", b"second"])
    assert cache.get(lambda: next(answers)) == b"first"
    now[0] += 4.9
    assert cache.get(lambda: next(answers)) == b"first"
    now[0] += 0.2
    assert cache.get(lambda: next(answers)) == b"second"


# --------------------------------------------------------------------------------------------
# Request ids


def test_a_request_id_is_echoed_or_made_up(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "f0e1d2c3-aaaa-bbbb-cccc-000011112222"})
    assert given.headers["X-Request-Id"] == "f0e1d2c3-aaaa-bbbb-cccc-000011112222"
    for bad in ("short", "has spaces in it", "x" * 300, "<script>alert(1)</script>"):
        made = client.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert made != bad and len(made) == 24
    assert client.get("/healthz").headers["X-Request-Id"] != client.get("/healthz").headers["X-Request-Id"]


def test_webhook_log_lines_carry_request_id_channel_and_order(client: FlaskClient, log_output: Any) -> None:
    body, headers = shopify_delivery(shopify_order(8401))
    response = client.post(
        "/webhooks/shop-a", data=body, headers={**headers, "X-Request-Id": "req-8401-abcdef"}
    )
    assert response.headers["X-Request-Id"] == "req-8401-abcdef"
    if log_output.format == "json":
        [line] = [r for r in log_output.records() if r["logger"] == "bridge.webhooks"]
        assert (line["request_id"], line["channel"]) == ("req-8401-abcdef", "shop-a")
        assert isinstance(line["order_id"], int)
    else:
        assert "channel=shop-a" in log_output.text and "request_id=req-8401-abcdef" in log_output.text


def test_sync_cursor_time_is_used_as_utc(bridge: Bridge, client: FlaskClient) -> None:
    when = bridge.clock.now() - timedelta(minutes=3)
    with write_session(bridge.engine) as session:
        session.add(SyncCursorRecord(account_id="main", synced_until=when, updated_at=when))
    result = scrape(client)
    assert (
        result.value("bridge_last_sync_timestamp_seconds", channel="shop-a", account="main")
        == when.timestamp()
    )
