"""Amazon as it really answers, through the simulator over real loopback HTTP, with the
simulator's Amazon-faithful defaults: percent-encoded tracking links, "order not found" as 400
InvalidInput, revoked tokens, per-operation circuit breakers, and what the operator sees.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bridge import admin, alerts
from bridge.amazon.accounts import AmazonAccounts, build_amazon
from bridge.amazon.limiter import DatabaseBuckets
from bridge.amazon.simulator import RunningServer, Simulator, create_simulator_app, serve_in_thread
from bridge.bootstrap import Bridge
from bridge.channels import ChannelsConfig
from bridge.clock import ManualClock
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.pipeline.sync import JOB_PUSH
from bridge.runtime import HANDLERS, make_worker
from bridge.store import (
    JobRecord,
    LwaTokenRecord,
    OrderEventRecord,
    PackageRecord,
    read_session,
    write_session,
)
from bridge.storefronts.push import INVALID_TRACKING_URL, PushError
from bridge.storefronts.registry import Storefronts
from bridge.storefronts.shopify_push import ShopifyPusher
from bridge.worker import Worker
from tests.conftest import TEST_ENV, due_now
from tests.integration.test_submit import order_row, send_shopify
from tests.integration.test_sync import HOUR, send_generic, sync_cycle
from tests.support import shopify_delivery, shopify_order

REQUEST_ID = r"x-amzn-RequestId [0-9a-f-]{36}"


@pytest.fixture
def sim_server(simulator: Simulator) -> Iterator[RunningServer]:
    with serve_in_thread(create_simulator_app(simulator)) as server:
        yield server


@pytest.fixture
def over_http(bridge: Bridge, sim_server: RunningServer) -> Bridge:
    """The bridge with its embedded-simulator account pointed at the simulator on loopback."""
    bridge.settings = replace(bridge.settings, simulator_url=sim_server.base_url)
    return bridge


def amazon_over_http(bridge: Bridge) -> AmazonAccounts:
    """One worker process's Amazon clients (each call builds a separate 'process')."""
    return build_amazon(bridge, buckets=DatabaseBuckets(bridge.engine, bridge.clock, use_db_clock=False))


@dataclass
class Loop:
    bridge: Bridge
    simulator: Simulator
    shopify: FakeShopify
    generic: FakeGenericReceiver
    worker: Worker
    amazon_only: Worker  # every stage but push-back

    def drain(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            due_now(self.bridge.engine)
            self.worker.drain()


@pytest.fixture
def loop(over_http: Bridge, simulator: Simulator, clock: ManualClock) -> Iterator[Loop]:
    shopify = FakeShopify("demo-shopify-token", clock=clock)
    generic = FakeGenericReceiver(TEST_ENV["OWN_SHOP_SECRET"], clock=clock)
    transports = {
        "shop-a": httpx.WSGITransport(app=create_fake_shopify_app(shopify)),
        "own-shop": httpx.WSGITransport(app=create_fake_generic_app(generic)),
    }
    amazon = amazon_over_http(over_http)
    worker = make_worker(over_http, amazon=amazon, storefronts=Storefronts(clock, transports))
    amazon_only = Worker(
        over_http, {k: v for k, v in HANDLERS.items() if k != JOB_PUSH}, services=worker.services
    )
    yield Loop(over_http, simulator, shopify, generic, worker, amazon_only)
    amazon.close()


def ship_to_shopify(
    client: FlaskClient, loop: Loop, clock: ManualClock, order_id: int, worker: Worker
) -> None:
    order = shopify_order(order_id, sku="MUG-WHITE")
    line = order["line_items"][0]
    loop.shopify.add_order(str(order_id), [(str(line["id"]), "MUG-WHITE", 1)])
    body, headers = shopify_delivery(order)
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200
    worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(loop.bridge, worker)


def audit(bridge: Bridge, external_id: str) -> list[tuple[str, str]]:
    row = order_row(bridge, external_id)
    with read_session(bridge.engine) as session:
        query = select(OrderEventRecord.event, OrderEventRecord.reason).where(
            OrderEventRecord.order_id == row.id
        )
        return [(e, r) for e, r in session.execute(query).all()]


def submit_job(bridge: Bridge) -> JobRecord:
    with read_session(bridge.engine) as session:
        return session.execute(select(JobRecord).where(JobRecord.kind == "submit")).scalars().one()


# --------------------------------------------------------------------------------------------
# 1. Percent-encoded tracking links


def test_encoded_tracking_links_are_decoded_and_shopify_accepts_them(
    client: FlaskClient, loop: Loop, clock: ManualClock
) -> None:
    ship_to_shopify(client, loop, clock, 8101, loop.worker)
    [fulfillment] = loop.shopify.fulfillments("8101")
    [tracking] = fulfillment.tracking
    assert tracking.number and tracking.url == f"https://www.swiship.com/track?id={tracking.number}"
    assert loop.shopify.calls("fulfillmentCreate", "ok") == 1, "valid against Shopify's schema and accepted"
    with read_session(loop.bridge.engine) as session:
        package = session.execute(select(PackageRecord)).scalars().one()
    raw = loop.simulator.get_package_tracking_details(package.package_number)["payload"]
    assert raw["customerTrackingLink"].startswith("https%3A%2F%2F") and raw["customerTrackingLink"].endswith(
        "%0A"
    ), "the simulator answers like Amazon"
    assert package.tracking_url == tracking.url


def test_generic_callbacks_carry_a_link_a_customer_can_open(
    client: FlaskClient, loop: Loop, clock: ManualClock
) -> None:
    send_generic(client, loop.bridge, "Q-1", ["SKU-1"])
    loop.worker.drain()
    clock.advance(5 * HOUR)
    sync_cycle(loop.bridge, loop.worker)
    [event] = loop.generic.events_of("shipment.created")
    url = event.data["tracking_url"]
    assert url.startswith("https://www.swiship.com/track?id=") and not url.endswith("\n")


def test_a_tracking_url_shopify_refuses_is_left_out_and_the_tracking_still_lands(
    client: FlaskClient, loop: Loop, clock: ManualClock
) -> None:
    ship_to_shopify(client, loop, clock, 8102, loop.amazon_only)  # push job stays queued
    refused = "https://track.example/r?to=https%3A%2F%2Fcarrier.example%2F1"  # Shopify: invalid
    with write_session(loop.bridge.engine) as session:
        session.execute(update(PackageRecord).values(tracking_url=refused))
    loop.drain()
    [fulfillment] = loop.shopify.fulfillments("8102")
    [tracking] = fulfillment.tracking
    assert tracking.number and tracking.company and tracking.url is None
    with read_session(loop.bridge.engine) as session:
        push_jobs = session.execute(select(JobRecord).where(JobRecord.kind == JOB_PUSH)).scalars().all()
    assert [(j.status, j.attempts) for j in push_jobs] == [("done", 1)], "not dead-lettered"
    notes = [reason for event, reason in audit(loop.bridge, "8102") if event == "pushed:without_tracking_url"]
    assert len(notes) == 1 and "refused" in notes[0]


# --------------------------------------------------------------------------------------------
# 2. "Order not found" as HTTP 400 InvalidInput (and 404)


@pytest.mark.parametrize("as_400", [True, False], ids=["400-InvalidInput", "404-NotFound"])
@pytest.mark.parametrize("fault", ["status", "drop"])
def test_a_create_that_never_landed_is_read_as_not_found_and_created_once(
    client: FlaskClient, loop: Loop, as_400: bool, fault: str
) -> None:
    loop.simulator.set_fidelity(order_not_found_as_invalid_input=as_400)
    loop.simulator.inject_fault("createFulfillmentOrder", kind=fault, status=503)
    send_shopify(client, 8201)
    loop.drain(4)
    assert order_row(loop.bridge, "8201").state == "submitted"
    assert loop.simulator.ledger.creates("shop-a-8201") == 1
    not_found = 400 if as_400 else 404
    assert loop.simulator.ledger.statuses("getFulfillmentOrder").get(not_found, 0) >= 1
    job = submit_job(loop.bridge)
    assert job.status == "done" and job.attempts <= 3


def test_an_order_amazon_rejects_is_parked_with_amazons_reason(client: FlaskClient, loop: Loop) -> None:
    loop.simulator.inject_fault(
        "createFulfillmentOrder", status=400, code="InvalidInput", message="Destination address is invalid."
    )
    send_shopify(client, 8202)
    loop.drain()
    row = order_row(loop.bridge, "8202")
    assert row.state == "needs_attention"
    assert re.search(
        rf"createFulfillmentOrder: HTTP 400 InvalidInput: Destination address is invalid\. \({REQUEST_ID}\)",
        row.attention_reason,
    ), row.attention_reason
    assert submit_job(loop.bridge).attempts == 1
    [line] = admin.list_orders(loop.bridge.engine, attention=True)
    assert "Destination address is invalid" in line.attention


# --------------------------------------------------------------------------------------------
# 3. Login with Amazon: revoked refresh token, revoked access token, one token for all processes


def test_a_revoked_refresh_token_parks_the_account_and_resumes_without_a_restart(
    client: FlaskClient, loop: Loop, clock: ManualClock
) -> None:
    loop.simulator.revoke_refresh_token()
    send_shopify(client, 8301)
    loop.drain()
    job = submit_job(loop.bridge)
    assert (job.status, job.attempts) == ("ready", 0)
    assert job.last_error.startswith("Amazon account main is parked:") and "invalid_grant" in job.last_error
    [problem] = admin.account_problems(loop.bridge.engine)
    assert problem.key == "account:main:credentials" and "Re-authorise" in problem.message
    [line] = admin.list_orders(loop.bridge.engine, attention=True)
    assert "parked" in line.attention
    lwa_calls = loop.simulator.ledger.calls("lwaToken")
    for _ in range(5):  # parked: no attempts spent, Login with Amazon not hammered
        loop.drain()
    assert submit_job(loop.bridge).attempts == 0
    assert loop.simulator.ledger.calls("lwaToken") == lwa_calls

    loop.simulator.restore_refresh_tokens()  # the seller re-authorised; nobody restarts anything
    clock.advance(31)  # the authenticator's next try is due
    loop.drain()
    assert order_row(loop.bridge, "8301").state == "submitted"
    assert admin.account_problems(loop.bridge.engine) == []
    assert [
        a.cleared_at is not None for a in alerts.list_alerts(loop.bridge.engine, include_cleared=True)
    ] == [True]


def test_the_backoff_between_lwa_tries_grows_and_is_capped(
    client: FlaskClient, loop: Loop, clock: ManualClock
) -> None:
    loop.simulator.revoke_refresh_token()
    send_shopify(client, 8302)
    waits = []
    for _ in range(7):
        loop.drain()
        with read_session(loop.bridge.engine) as session:
            token = session.get(LwaTokenRecord, "main")
        assert token is not None and token.retry_at is not None
        waits.append(round(token.retry_at - clock.now().timestamp()))
        clock.advance(token.retry_at - clock.now().timestamp())
    assert waits == [30, 60, 120, 240, 480, 600, 600]
    assert submit_job(loop.bridge).attempts == 0


def test_recheck_resumes_a_parked_account_at_once(
    client: FlaskClient, loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge import cli

    loop.simulator.revoke_refresh_token()
    send_shopify(client, 8303)
    loop.drain()
    monkeypatch.setattr(cli, "_bootstrap", lambda: loop.bridge)
    runner = CliRunner()
    still = runner.invoke(cli.main, ["amazon", "recheck", "main"])
    assert still.exit_code != 0 and "invalid_grant" in still.output
    unknown = runner.invoke(cli.main, ["amazon", "recheck", "nope"])
    assert unknown.exit_code != 0 and "no Amazon account 'nope'" in unknown.output

    loop.simulator.restore_refresh_tokens()
    ok = runner.invoke(cli.main, ["amazon", "recheck", "main"])
    assert ok.exit_code == 0, ok.output
    loop.worker.drain()  # no waiting: the parked job is due now
    assert order_row(loop.bridge, "8303").state == "submitted"
    assert admin.account_problems(loop.bridge.engine) == []


def test_a_revoked_access_token_is_refreshed_on_the_first_403(client: FlaskClient, loop: Loop) -> None:
    send_shopify(client, 8304)
    loop.drain()
    assert loop.simulator.ledger.calls("lwaToken") == 1
    loop.simulator.inject_fault("getFulfillmentPreview", kind="revoke_access_tokens")
    send_shopify(client, 8305)
    loop.worker.drain()
    assert order_row(loop.bridge, "8305").state == "submitted"
    assert loop.simulator.ledger.calls("lwaToken") == 2
    assert loop.simulator.ledger.statuses("getFulfillmentPreview") == {200: 2, 403: 1}
    assert submit_job_of(loop.bridge, "8305").attempts == 1


def submit_job_of(bridge: Bridge, external_id: str) -> JobRecord:
    row = order_row(bridge, external_id)
    with read_session(bridge.engine) as session:
        query = select(JobRecord).where(JobRecord.kind == "submit", JobRecord.order_id == row.id)
        return session.execute(query).scalars().one()


def test_worker_processes_share_one_access_token_through_the_database(
    client: FlaskClient, loop: Loop
) -> None:
    send_shopify(client, 8306)
    loop.drain()
    assert loop.simulator.ledger.calls("lwaToken") == 1
    second = amazon_over_http(loop.bridge)  # another worker process
    try:
        other = make_worker(loop.bridge, amazon=second, storefronts=loop.worker.services["storefronts"])
        send_shopify(client, 8307)
        other.drain()
        assert order_row(loop.bridge, "8307").state == "submitted"
        assert loop.simulator.ledger.calls("lwaToken") == 1, "the second process used the stored token"
        # Amazon revokes the token; the process that hits the 403 refreshes, the other adopts it.
        loop.simulator.revoke_access_tokens()
        send_shopify(client, 8308)
        other.drain()
        send_shopify(client, 8309)
        loop.worker.drain()
        assert {order_row(loop.bridge, n).state for n in ("8308", "8309")} == {"submitted"}
        assert loop.simulator.ledger.calls("lwaToken") == 2
    finally:
        second.close()


# --------------------------------------------------------------------------------------------
# 4. One circuit breaker per (account, operation)


def test_a_breaker_opened_by_previews_leaves_creates_alone(
    client: FlaskClient, loop: Loop, clock: ManualClock
) -> None:
    # Retry-After keeps the retry out of this drain (the default backoff is jittered from 0 s).
    loop.simulator.inject_fault("createFulfillmentOrder", status=503, retry_after=60)
    send_shopify(client, 8401)
    loop.worker.drain()
    assert order_row(loop.bridge, "8401").state == "submitting"  # its create must still happen

    loop.simulator.inject_fault("getFulfillmentPreview", status=503, count=100)
    send_shopify(client, 8402)
    loop.worker.drain()
    [breaker] = admin.open_breakers(loop.bridge.engine)
    assert breaker.key == "account:main:breaker:getFulfillmentPreview" and breaker.severity == "warning"

    loop.drain()  # the resumed submission reads and creates while previews are paused
    assert order_row(loop.bridge, "8401").state == "submitted"
    assert loop.simulator.ledger.creates("shop-a-8401") == 1
    waiting = submit_job_of(loop.bridge, "8402")
    assert waiting.status == "ready" and "CircuitOpen" in waiting.last_error
    lines = {
        line.external_id: line.attention for line in admin.list_orders(loop.bridge.engine, attention=True)
    }
    assert "getFulfillmentPreview" in lines["8402"]

    loop.simulator.clear_faults()
    clock.advance(2)  # the first probe comes after seconds, not a minute
    loop.drain()
    assert order_row(loop.bridge, "8402").state == "submitted"
    assert admin.open_breakers(loop.bridge.engine) == []


def test_open_breakers_and_parked_accounts_show_in_the_cli(
    client: FlaskClient, loop: Loop, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    loop.simulator.inject_fault("getFulfillmentPreview", status=503, count=100)
    send_shopify(client, 8403)
    loop.worker.drain()
    runner = CliRunner()
    jobs_out = runner.invoke(main, ["jobs"])
    assert jobs_out.exit_code == 0
    assert "open circuit breaker main:breaker:getFulfillmentPreview" in jobs_out.output
    attention = runner.invoke(main, ["orders", "--attention"]).output
    assert attention.startswith("account problems:\n  ! main [amazon_breaker]")
    assert "#8403" in attention and "getFulfillmentPreview" in attention


class _KeepAliveAmazon(BaseHTTPRequestHandler):
    """Amazon's side of a connection kept alive (werkzeug, which serves the simulator, closes every
    one): a token for LWA, "not found" for any read, a load balancer's cookie on every answer;
    notes the client port and the cookies of every request."""

    protocol_version = "HTTP/1.1"
    ports: list[int] = []
    cookies: list[str | None] = []

    def _answer(self, status: int, body: dict[str, object]) -> None:
        raw = json.dumps(body).encode()
        self.ports.append(self.client_address[1])
        self.cookies.append(self.headers.get("Cookie"))
        self.send_response(status)
        self.send_header("Set-Cookie", f"AWSALB=sticky-{len(self.ports)}; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(200, {"access_token": "Atza|kept-alive", "token_type": "bearer", "expires_in": 3600})

    def do_GET(self) -> None:
        self._answer(404, {"errors": [{"code": "NotFound", "message": "The order was not found."}]})

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_accounts_of_a_worker_share_warm_connections_to_amazon(bridge: Bridge) -> None:
    """100 sellers are not 100 connection pools: a worker's accounts call over one client, so a
    connection one account used stays warm for the next (each account's own used to expire unused)."""
    from bridge.amazon.errors import NotFound

    _KeepAliveAmazon.ports, _KeepAliveAmazon.cookies = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveAmazon)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    main = replace(
        bridge.config.accounts["main"],
        embedded_simulator=False,
        local_simulator=True,
        endpoint=base,
        token_endpoint=f"{base}/auth/o2/token",
    )
    bridge.config = replace(bridge.config, accounts={"main": main, "second": replace(main, id="second")})
    amazon = amazon_over_http(bridge)
    try:
        for account in ("main", "second", "main", "second"):
            with pytest.raises(NotFound):
                amazon.for_account(account).get("no-such-order")
    finally:
        amazon.close()
        server.shutdown()
        server.server_close()
    assert len(_KeepAliveAmazon.ports) == 6, "two token requests and four reads"
    assert len(set(_KeepAliveAmazon.ports)) == 1
    assert _KeepAliveAmazon.cookies == [None] * 6, "one account's cookies are not sent for another"


def test_the_sp_api_client_keeps_no_cookie_and_does_not_parse_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx would build a urllib request per answer to offer its cookies to the client's store
    (~3% of a busy worker's CPU); the SP-API client has no store to offer them to."""
    from bridge.amazon.spapi import http_client

    offered: list[httpx.Response] = []
    extract = httpx.Cookies.extract_cookies

    def spy(cookies: httpx.Cookies, response: httpx.Response) -> None:
        offered.append(response)
        extract(cookies, response)

    monkeypatch.setattr(httpx.Cookies, "extract_cookies", spy)
    sent: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("Cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "AWSALB=sticky; Path=/"}, json={})

    client = http_client(httpx.MockTransport(answer))
    for _ in range(2):
        assert client.get("https://sellingpartnerapi-na.amazon.com/orders").status_code == 200
    assert offered == [] and sent == [None, None] and not client.cookies
    with pytest.raises(TypeError):
        client.cookies = {"session": "x"}
    with pytest.raises(TypeError):
        client.cookies.set("session", "x")
    client.close()


# --------------------------------------------------------------------------------------------
# 5 and 6. Request hygiene and what the operator sees


def test_job_errors_name_operation_status_code_message_and_request_id(
    client: FlaskClient, loop: Loop
) -> None:
    loop.simulator.inject_fault(
        "getFulfillmentPreview", status=400, code="InvalidInput", message="Invalid marketplaceId."
    )
    send_shopify(client, 8501, name="Jon Canary")
    loop.worker.drain()
    job = submit_job(loop.bridge)
    assert re.fullmatch(
        rf"getFulfillmentPreview: HTTP 400 InvalidInput: Invalid marketplaceId\. \({REQUEST_ID}\)",
        job.last_error,
    ), job.last_error
    assert "InvalidInput[InvalidInput]" not in job.last_error and "Canary" not in job.last_error
    [line] = admin.list_orders(loop.bridge.engine, attention=True)
    assert line.attention == f"submit waiting: {job.last_error}"


def test_sync_pages_send_next_token_alone(client: FlaskClient, loop: Loop, clock: ManualClock) -> None:
    loop.simulator.config = replace(loop.simulator.config, page_size=2)
    for n in range(5):
        send_shopify(client, 8600 + n)
    loop.worker.drain()
    clock.advance(900)
    sync_cycle(loop.bridge, loop.amazon_only)
    assert loop.simulator.ledger.calls("listAllFulfillmentOrders") == 3
    assert loop.simulator.ledger.warnings() == 0


@pytest.mark.parametrize(
    "url",
    [
        "https%3A%2F%2Fwww.swiship.com%2Ftrack%3Fid%3D1Z9%0A",  # Amazon's link, undecoded
        "https://www.swiship.com/track?id=1Z9\n",  # decoded but not stripped
        "https://t.example/r?u=https%3A%2F%2Fcarrier.example",
    ],
)
def test_the_shopify_pusher_says_when_only_the_tracking_url_was_refused(
    channels_config: ChannelsConfig, clock: ManualClock, url: str
) -> None:
    from tests.integration.test_shopify_push import SHOP_URL, package, shopify_channel

    shop = FakeShopify(channels_config.channels["shop-a"].storefront.access_token.reveal(), clock)
    shop.add_order("1001", [("11", "MUG-WHITE", 1)])
    transport = httpx.WSGITransport(app=create_fake_shopify_app(shop))
    pusher = ShopifyPusher(shopify_channel(channels_config, SHOP_URL), clock, transport)
    try:
        with pytest.raises(PushError) as info:
            pusher.push_shipment(package(("11", 1), url=url))
        assert info.value.code == INVALID_TRACKING_URL and not info.value.retryable
        assert shop.fulfillments("1001") == []
        assert pusher.push_shipment(package(("11", 1), url=None)).storefront_ref  # what push-back does next
    finally:
        pusher.close()
