"""Push-back when things go wrong, over real HTTP against the fake storefronts on loopback.

The job queue's delays are in database time; `Queue.advance` moves the injected clock and every
waiting job's due time by the same amount, so hours of retries run in a second without sleeps.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from bridge import alerts, jobs, retry_policy
from bridge.admin import list_orders, recheck_channel, retry_job, retrying_jobs
from bridge.amazon.limiter import DatabaseBuckets
from bridge.amazon.simulator.server import RunningServer, serve_in_thread
from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app
from bridge.pipeline import storefront_access
from bridge.pipeline.common import JOB_PUSH
from bridge.pipeline.inventory import JOB_INVENTORY_PUSH
from bridge.pipeline.shop_budget import SharedCostBuckets
from bridge.runtime import HANDLERS, make_worker
from bridge.store import JobRecord, PushRecord, read_session, write_session
from bridge.storefronts.push import StorefrontRejected
from bridge.storefronts.registry import Storefronts
from bridge.worker import JobContext, Worker
from tests.integration.test_inventory import Rig, with_inventory
from tests.integration.test_sync import HOUR, sync_cycle
from tests.support import shopify_delivery, shopify_line, shopify_order, woo_delivery, woo_order

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Outage:
    """WSGI middleware in front of a fake shop: from the first request containing `trigger` (which
    the shop still executes: its answer is what gets lost) every request is answered 503 without
    reaching the shop, until `duration` seconds of the injected clock have passed."""

    app: WSGIApp
    clock: ManualClock
    trigger: bytes | None = None
    duration: float = 0.0
    until: float | None = None
    refused: int = 0

    def start_on(self, trigger: bytes, duration: float) -> None:
        self.trigger, self.duration = trigger, duration

    def end(self) -> None:
        self.until = self.clock.monotonic()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        now = self.clock.monotonic()
        if self.until is None and self.trigger is not None and self.trigger in body:
            self.until = now + self.duration
            list(self.app(environ, lambda *args, **kwargs: lambda data: None))  # done, answer lost
            return self._unavailable(start_response)
        if self.until is not None and now < self.until:
            return self._unavailable(start_response)
        return self.app(environ, start_response)

    def _unavailable(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.refused += 1
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"down for maintenance"]


@dataclass
class Shops:
    bridge: Bridge
    clock: ManualClock
    shopify: FakeShopify
    woo: FakeWooCommerce
    shopify_outage: Outage
    woo_outage: Outage
    amazon_only: Worker  # every stage but push-back
    worker: Worker
    servers: list[RunningServer] = field(default_factory=list)

    def advance(self, seconds: float) -> None:
        """Move the clock and the queue's due times together."""
        self.clock.advance(seconds)
        with self.bridge.engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET run_at = run_at - :s WHERE status = 'ready'"), {"s": seconds})

    def push_worker(self) -> Worker:
        """Another worker process: its own pushers and HTTP clients, the shared database."""
        storefronts = Storefronts(self.clock, cost_budget=shared_buckets(self.bridge, self.clock))
        return make_worker(self.bridge, amazon=self.worker.services["amazon"], storefronts=storefronts)


def shared_buckets(bridge: Bridge, clock: ManualClock) -> SharedCostBuckets:
    return SharedCostBuckets(DatabaseBuckets(bridge.engine, clock, use_db_clock=False))


def _point_at(bridge: Bridge, channel_id: str, url: str) -> None:
    channel = bridge.config.channels[channel_id]
    moved = replace(channel, storefront=replace(channel.storefront, base_url=url))
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, channel_id: moved})


def _serve(bridge: Bridge, shops: Shops) -> None:
    for channel_id, app in (("shop-a", shops.shopify_outage), ("woo-main", shops.woo_outage)):
        server = serve_in_thread(app)
        shops.servers.append(server)
        _point_at(bridge, channel_id, server.base_url)


def _make_shops(bridge: Bridge, amazon: Any, clock: ManualClock, shopify: FakeShopify) -> Shops:
    woo = FakeWooCommerce(clock=clock)
    shopify_outage = Outage(create_fake_shopify_app(shopify), clock)
    woo_outage = Outage(create_fake_woocommerce_app(woo), clock)
    worker = make_worker(
        bridge, amazon=amazon, storefronts=Storefronts(clock, cost_budget=shared_buckets(bridge, clock))
    )
    amazon_only = Worker(
        bridge, {k: v for k, v in HANDLERS.items() if k != JOB_PUSH}, services=worker.services
    )
    shops = Shops(bridge, clock, shopify, woo, shopify_outage, woo_outage, amazon_only, worker)
    _serve(bridge, shops)
    return shops


@pytest.fixture
def shops(bridge: Bridge, amazon: Any, clock: ManualClock) -> Iterator[Shops]:
    made = _make_shops(bridge, amazon, clock, FakeShopify("demo-shopify-token", clock=clock))
    yield made
    for server in made.servers:
        server.stop()


def order_to_shopify(client: FlaskClient, shops: Shops, order_id: int, sku: str = "MUG-WHITE") -> None:
    order = shopify_order(order_id)
    order["line_items"] = [shopify_line(order["line_items"][0], id=order_id * 10, sku=sku, quantity=1)]
    shops.shopify.add_order(str(order_id), [(str(order_id * 10), sku, 1)])
    body, headers = shopify_delivery(order)
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200
    shops.amazon_only.drain()


def order_to_woo(client: FlaskClient, shops: Shops, order_id: int) -> None:
    shops.woo.add_order(order_id)
    body, headers = woo_delivery(woo_order(order_id))
    assert client.post("/webhooks/woo-main", data=body, headers=headers).status_code == 200
    shops.amazon_only.drain()


def amazon_ships(shops: Shops) -> None:
    """Amazon ships everything submitted; the sync records the packages and owes their pushes."""
    shops.clock.advance(5 * HOUR)
    sync_cycle(shops.bridge, shops.amazon_only)


def push_jobs(bridge: Bridge) -> list[JobRecord]:
    with read_session(bridge.engine) as session:
        query = select(JobRecord).where(JobRecord.kind == JOB_PUSH).order_by(JobRecord.id)
        return list(session.execute(query).scalars())


def pushes(bridge: Bridge) -> list[PushRecord]:
    with read_session(bridge.engine) as session:
        return list(session.execute(select(PushRecord).order_by(PushRecord.id)).scalars())


def open_alert_kinds(bridge: Bridge) -> list[str]:
    return sorted(a.kind for a in alerts.list_alerts(bridge.engine))


# --------------------------------------------------------------------------------------------


def test_a_thirty_minute_storefront_outage_ends_with_every_package_pushed_once_and_no_dead_letter(
    client: FlaskClient, shops: Shops
) -> None:
    orders = [8101, 8102, 8103]
    for order_id in orders:
        order_to_shopify(client, shops, order_id)
    shops.shopify_outage.start_on(b"fulfillmentCreate", 30 * 60)
    amazon_ships(shops)
    assert len(push_jobs(shops.bridge)) == len(orders)

    elapsed = 0.0
    saw_retrying = False
    while elapsed < 4 * HOUR and any(p.status != "done" for p in pushes(shops.bridge)):
        shops.worker.drain()
        saw_retrying = saw_retrying or any(
            "503" in j.last_error and j.kind == JOB_PUSH for j in retrying_jobs(shops.bridge.engine)
        )
        shops.advance(30)
        elapsed += 30

    assert shops.shopify_outage.refused > len(orders), "the outage happened and was retried through"
    assert saw_retrying, "`fba-bridge jobs` showed the retrying pushes with their last error"
    assert elapsed >= 30 * 60 and elapsed < 3 * HOUR, "delivered soon after the shop came back"
    for order_id in orders:
        assert len(shops.shopify.fulfillments(str(order_id))) == 1, f"order {order_id}: exactly one"
    assert all(p.status == "done" for p in pushes(shops.bridge))
    assert [j.status for j in push_jobs(shops.bridge)] == ["done"] * len(orders)
    assert max(j.attempts for j in push_jobs(shops.bridge)) < retry_policy.PUSH.max_attempts
    assert "job_dead" not in open_alert_kinds(shops.bridge)


def test_jobs_retry_after_a_lost_answer_and_a_dead_letter_pushes_exactly_once(
    client: FlaskClient, shops: Shops
) -> None:
    order_to_shopify(client, shops, 8201)
    shops.shopify_outage.start_on(b"fulfillmentCreate", 100 * HOUR)  # the answer to the create is lost
    amazon_ships(shops)
    [job] = push_jobs(shops.bridge)
    with write_session(shops.bridge.engine) as session:  # a short policy, so it dies in this test
        session.execute(text("UPDATE jobs SET max_attempts = 3 WHERE id = :id"), {"id": job.id})
    for _ in range(20):
        shops.worker.drain()
        shops.advance(HOUR)
    [job] = push_jobs(shops.bridge)
    assert job.status == jobs.DEAD
    assert len(shops.shopify.fulfillments("8201")) == 1, "the lost create did land"

    [parked] = list_orders(shops.bridge.engine, attention=True)
    assert parked.external_id == "8201" and "dead-lettered" in parked.attention
    assert "NOT pushed" in parked.attention and f"jobs retry {job.id}" in parked.attention

    shops.shopify_outage.end()
    retry_job(shops.bridge.engine, shops.bridge.clock, job.id or 0)  # attempts back to 0
    shops.worker.drain()

    assert len(shops.shopify.fulfillments("8201")) == 1, "looked before pushing again: no second fulfillment"
    assert [p.status for p in pushes(shops.bridge)] == ["done"]
    assert list_orders(shops.bridge.engine, attention=True) == []


def test_a_push_that_may_have_landed_is_looked_up_on_every_later_run_whatever_its_attempt_count(
    client: FlaskClient, shops: Shops
) -> None:
    order_to_shopify(client, shops, 8202)
    shops.shopify.accept_then_drop_next("fulfillmentCreate")
    amazon_ships(shops)
    shops.worker.drain()  # the create lands, its answer is dropped
    [push] = pushes(shops.bridge)
    assert push.sent_at is not None and push.status == "pending"
    with write_session(shops.bridge.engine) as session:  # as after an operator reset
        session.execute(text("UPDATE jobs SET attempts = 0, run_at = 0 WHERE kind = 'push'"))
    shops.worker.drain()
    assert len(shops.shopify.fulfillments("8202")) == 1
    assert pushes(shops.bridge)[0].status == "done"
    assert shops.shopify.calls("BridgeOrderFulfillments") == 1, "one look-up, then no second create"


def test_three_workers_on_one_shop_share_its_cost_bucket_and_spend_no_attempt_on_throttling(
    client: FlaskClient, bridge: Bridge, amazon: Any, clock: ManualClock
) -> None:
    # A small bucket: one fulfillment-order read (requested cost 284) nearly empties it.
    small = FakeShopify("demo-shopify-token", clock=clock, maximum_available=300, restore_rate=5)
    shops = _make_shops(bridge, amazon, clock, small)
    try:
        orders = list(range(8301, 8313))
        for order_id in orders:
            order_to_shopify(client, shops, order_id)
        amazon_ships(shops)
        workers = [shops.push_worker() for _ in range(3)]
        for _ in range(200):
            if all(p.status == "done" for p in pushes(bridge)):
                break
            threads = [threading.Thread(target=w.drain) for w in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            shops.advance(5)
        throttled = [r for r in small.requests if r.outcome == "throttled"]
        assert len(throttled) <= 2, "only before the first answer told the workers the bucket's size"
        for order_id in orders:
            assert len(small.fulfillments(str(order_id))) == 1
        done = push_jobs(bridge)
        assert [j.status for j in done] == ["done"] * len(orders)
        assert all(j.attempts == 1 for j in done), "waiting for the bucket spent no attempt"
    finally:
        for server in shops.servers:
            server.stop()


def test_a_restored_woocommerce_key_takes_effect_within_a_minute_without_spending_attempts(
    client: FlaskClient, shops: Shops
) -> None:
    shops.woo.revoke()
    for order_id in (8401, 8402, 8403):
        order_to_woo(client, shops, order_id)
    amazon_ships(shops)
    shops.worker.drain()
    assert open_alert_kinds(shops.bridge) == [storefront_access.ALERT_KIND]
    calls_when_parked = len(shops.woo.calls)
    for _ in range(10):  # ten minutes parked: one probe a minute for the whole channel
        shops.advance(60)
        shops.worker.drain()
    probes = len(shops.woo.calls) - calls_when_parked
    assert 5 <= probes <= 11
    assert all(j.status == jobs.READY and j.attempts == 0 for j in push_jobs(shops.bridge))
    assert open_alert_kinds(shops.bridge) == [storefront_access.ALERT_KIND], "one alert, not one per job"
    [parked] = [a for a in alerts.list_alerts(shops.bridge.engine)]
    assert "channels recheck woo-main" in parked.message and "cs_demo" not in parked.message

    shops.woo.reinstate()
    shops.advance(60)
    shops.worker.drain()

    assert all(p.status == "done" for p in pushes(shops.bridge))
    for order_id in (8401, 8402, 8403):
        assert len(shops.woo.order(order_id).trackings) == 1
    assert open_alert_kinds(shops.bridge) == []


def test_channels_recheck_resumes_a_parked_shopify_channel_at_once_after_the_token_is_reissued(
    client: FlaskClient, shops: Shops
) -> None:
    shops.shopify.revoke()
    order_to_shopify(client, shops, 8501)
    amazon_ships(shops)
    shops.worker.drain()
    assert storefront_access.is_parked(shops.bridge.engine, "shop-a")
    storefronts = shops.worker.services["storefronts"]

    with pytest.raises(StorefrontRejected):
        recheck_channel(shops.bridge, "shop-a", storefronts)
    assert open_alert_kinds(shops.bridge) == [storefront_access.ALERT_KIND]

    shops.shopify.restore_access()
    assert recheck_channel(shops.bridge, "shop-a", storefronts) is True
    shops.worker.drain()  # no clock movement: the parked job is due at once

    assert len(shops.shopify.fulfillments("8501")) == 1
    assert open_alert_kinds(shops.bridge) == []
    assert not storefront_access.is_parked(shops.bridge.engine, "shop-a")


def test_a_refused_push_is_dead_lettered_at_once_and_its_order_needs_attention(
    client: FlaskClient, shops: Shops
) -> None:
    order_to_shopify(client, shops, 8601)
    amazon_ships(shops)
    shops.shopify.fail_next("BridgeFulfillmentOrders", status=422)
    shops.worker.drain()
    [job] = push_jobs(shops.bridge)
    assert job.status == jobs.DEAD and job.attempts == 1
    [line] = list_orders(shops.bridge.engine, attention=True)
    assert line.external_id == "8601" and "422" in line.attention and "NOT pushed" in line.attention


class WorkerKilled(BaseException):
    """Stands for the process dying mid-job: nothing in the worker catches it."""


def test_a_job_that_kills_its_worker_is_dead_lettered_instead_of_claimed_forever(bridge: Bridge) -> None:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "poison", max_attempts=50)

    def poison(ctx: JobContext) -> None:
        raise WorkerKilled

    worker = Worker(bridge, {"poison": poison})
    deaths = 0
    for _ in range(20):
        try:
            if not worker.run_once():
                break
        except WorkerKilled:
            deaths += 1
        with bridge.engine.begin() as conn:  # the dead worker's lease runs out
            conn.execute(text("UPDATE jobs SET lease_until = 0 WHERE status = 'running'"))
    policy = retry_policy.DEFAULT
    assert deaths == policy.max_lost_leases
    with read_session(bridge.engine) as session:
        [job] = session.execute(select(JobRecord).where(JobRecord.kind == "poison")).scalars()
    assert job.status == jobs.DEAD and job.lost_leases == policy.max_lost_leases
    assert "worker stopped while running it" in job.last_error
    [alert] = alerts.list_alerts(bridge.engine)
    assert alert.kind == "job_dead" and f"jobs retry {job.id}" in alert.message


def test_a_job_whose_attempts_ran_out_while_its_worker_died_is_dead_lettered_at_the_next_claim(
    bridge: Bridge,
) -> None:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "poison", max_attempts=2)
    worker = Worker(bridge, {"poison": lambda ctx: (_ for _ in ()).throw(WorkerKilled())})
    for _ in range(2):
        with pytest.raises(WorkerKilled):
            worker.run_once()
        with bridge.engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET lease_until = 0 WHERE status = 'running'"))
    assert worker.run_once() is False
    with read_session(bridge.engine) as session:
        [job] = session.execute(select(JobRecord).where(JobRecord.kind == "poison")).scalars()
    assert job.status == jobs.DEAD and job.attempts == 2


# --------------------------------------------------------------------------------------------
# What the operator sees and types


def test_the_cli_shows_retrying_pushes_the_parked_channel_and_rechecks_it(
    client: FlaskClient, shops: Shops, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bridge import cli

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr(cli, "_bootstrap", lambda: shops.bridge)
    runner = CliRunner()
    order_to_shopify(client, shops, 8701)
    order_to_woo(client, shops, 8702)
    shops.shopify.fail_next("BridgeFulfillmentOrders", status=502)
    shops.woo.revoke()
    amazon_ships(shops)
    shops.worker.drain()

    listed = runner.invoke(cli.main, ["jobs"])
    assert listed.exit_code == 0
    assert f"order=shop-a/#8701 attempts=1/{retry_policy.PUSH.max_attempts}" in listed.output
    assert "the storefront failed (502)" in listed.output
    assert "order=woo-main/" in listed.output and "attempts=0/" in listed.output
    attention = runner.invoke(cli.main, ["orders", "--attention"]).output
    assert attention.startswith("channel problems:\n  ! woo-main [storefront_credentials]")
    assert "8701" in attention and "8702" in attention

    refused = runner.invoke(cli.main, ["channels", "recheck", "woo-main"])
    assert refused.exit_code != 0 and "refused our credentials (401)" in refused.output
    unknown = runner.invoke(cli.main, ["channels", "recheck", "nope"])
    assert unknown.exit_code != 0 and "no channel 'nope'" in unknown.output

    shops.woo.reinstate()
    ok = runner.invoke(cli.main, ["channels", "recheck", "woo-main"])
    assert ok.exit_code == 0 and "parked push-backs resume now" in ok.output
    shops.worker.drain()
    assert len(shops.woo.order(8702).trackings) == 1
    assert "channel problems" not in runner.invoke(cli.main, ["orders", "--attention"]).output


def test_throttled_answers_spend_no_attempt_on_shopify_or_woocommerce(
    client: FlaskClient, shops: Shops
) -> None:
    order_to_shopify(client, shops, 8801)
    order_to_woo(client, shops, 8802)
    amazon_ships(shops)
    shops.shopify.set_available(0)  # another app emptied the shop's bucket: THROTTLED answers
    shops.woo.fail_next("*", status=429, count=3, retry_after=2)
    for _ in range(60):
        if all(p.status == "done" for p in pushes(shops.bridge)):
            break
        shops.worker.drain()
        shops.advance(5)
    assert [r.outcome for r in shops.shopify.requests].count("throttled") >= 1
    assert len([c for c in shops.woo.calls if c.status == 429]) == 3
    assert len(shops.shopify.fulfillments("8801")) == 1
    assert len(shops.woo.order(8802).trackings) == 1
    assert [j.attempts for j in push_jobs(shops.bridge)] == [1, 1], "throttling spent no attempt"


@pytest.fixture
def rig(db: Any, channels_config: Any, clock: ManualClock, simulator: Any) -> Iterator[Rig]:
    """Inventory sync on for every example channel (as in test_inventory.py)."""
    made = Rig(db, with_inventory(channels_config), clock, simulator)
    for sku in ("TSHIRT-RED-M", "TSHIRT-BLUE-L", "MUG-WHITE"):
        made.shop.inventory.add_item(sku, 0)
    made.woo.catalog.add_product("MUG-WHITE", 3)
    poster = made.woo.catalog.add_product("POSTER", None, manage_stock=False, type="variable")
    made.woo.catalog.add_variation(poster, "POSTER-A2", 6)
    yield made
    made.close()


def test_inventory_pushes_wait_on_the_same_parked_channel_and_resume_with_it(rig: Rig) -> None:
    rig.woo.revoke()
    rig.cycle()
    assert storefront_access.is_parked(rig.bridge.engine, "woo-main")
    assert [a.kind for a in alerts.list_alerts(rig.bridge.engine)] == [storefront_access.ALERT_KIND]
    with read_session(rig.bridge.engine) as session:
        [waiting] = [
            job
            for job in session.execute(
                select(JobRecord).where(JobRecord.kind == JOB_INVENTORY_PUSH)
            ).scalars()
            if job.payload["channel_id"] == "woo-main"
        ]
    assert waiting.status == jobs.READY and waiting.attempts == 0
    assert waiting.last_error.startswith(storefront_access.parked_marker("woo-main"))

    rig.woo.reinstate()
    assert recheck_channel(rig.bridge, "woo-main", rig.storefronts) is True
    rig.worker.drain()
    assert rig.woo.catalog.stock("MUG-WHITE") == 1000
    assert alerts.list_alerts(rig.bridge.engine) == []


def test_the_migration_gives_waiting_push_jobs_the_48_hour_allowance(db: Any) -> None:
    from bridge.migrate import downgrade, upgrade

    downgrade(db, "0011")
    with db.begin() as conn:
        for kind, status in (("push", "ready"), ("push", "dead"), ("submit", "ready")):
            conn.execute(
                text(
                    "INSERT INTO jobs (kind, payload, status, run_at, attempts, max_attempts, last_error, "
                    "created_at, updated_at) VALUES (:kind, '{}', :status, 0, 3, 8, '', 0, 0)"
                ),
                {"kind": kind, "status": status},
            )
    upgrade(db)
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, status, max_attempts, lost_leases FROM jobs ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("push", "ready", retry_policy.PUSH.max_attempts, 0),
        ("push", "dead", 8, 0),
        ("submit", "ready", 8, 0),
    ]
