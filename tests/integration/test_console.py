"""The operator console through the real app: who gets in, what every page shows, and that each
action goes through `bridge.operator` and lands in the audit trail with who did it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bridge import alerts, jobs
from bridge.bootstrap import Bridge
from bridge.channels import ChannelsConfig
from bridge.clock import ManualClock
from bridge.pipeline.privacy import purge_order
from bridge.settings import ConsoleSettings, Secret, Settings
from bridge.store import (
    JobRecord,
    OrderEventRecord,
    OrderRecord,
    PackageRecord,
    PushRecord,
    read_session,
    write_session,
)
from tests.conftest import ROOT, due_now
from tests.console_support import PASSWORD, console_settings, csrf_of, form_value, sign_in
from tests.integration.test_pushback import Shops, ship_shopify, shops  # noqa: F401 (fixture)
from tests.support import shopify_delivery, shopify_order

CANARY_NAME = "Jon Canary"
CANARY_STREET = "42 Canary Wharf Lane"
CANARY_EMAIL = "jon.canary@example.com"


@pytest.fixture
def bridge(db: Engine, channels_config: ChannelsConfig, clock: ManualClock) -> Bridge:
    settings = Settings(
        max_body_bytes=256 * 1024,
        metrics_flush_s=0,
        console=console_settings(),
        simulator_config=ROOT / "config" / "simulator.yaml",  # what "preview now" asks in-process
        webhook_defer_rate=0,  # the orders the pages show are applied in the request (conftest)
    )
    return Bridge(settings=settings, config=channels_config, engine=db, clock=clock)


@pytest.fixture
def operator_client(client: FlaskClient) -> FlaskClient:
    assert sign_in(client) == 302
    return client


def post_order(client: FlaskClient, order_id: int, **kwargs: Any) -> OrderRecord:
    body, headers = shopify_delivery(shopify_order(order_id, **kwargs))
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code in (200, 201, 202)
    return order_row(client.application, str(order_id))


def order_row(app: Flask, external_id: str) -> OrderRecord:
    engine = app.extensions["bridge"].engine
    with read_session(engine) as session:
        return session.execute(
            select(OrderRecord).where(col(OrderRecord.external_id) == external_id)
        ).scalar_one()


def trail(engine: Engine, order_id: int) -> list[OrderEventRecord]:
    with read_session(engine) as session:
        query = select(OrderEventRecord).where(col(OrderEventRecord.order_id) == order_id)
        return list(session.execute(query.order_by(col(OrderEventRecord.id))).scalars())


def act(client: FlaskClient, path: str, **form: str) -> str:
    """POST an action with the page's form token; follow the redirect; the page's text."""
    csrf = csrf_of(client)
    response = client.post(path, data={"csrf": csrf, **form}, follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# Access


def test_the_console_is_off_without_a_credential(db: Engine, channels_config: ChannelsConfig) -> None:
    from bridge.app import create_app

    plain = Bridge(settings=Settings(metrics_flush_s=0), config=channels_config, engine=db)
    client = create_app(plain).test_client()
    for path in ("/console/", "/console/orders", "/console/login"):
        response = client.get(path)
        assert response.status_code == 404
        assert "The console is off" in response.get_data(as_text=True)
    assert client.post("/console/login", data={"password": ""}).status_code == 404


def test_nothing_but_the_sign_in_page_is_reachable_without_signing_in(
    app: Flask, client: FlaskClient
) -> None:
    post_order(client, 1001)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("console.")]
    assert len(rules) >= 12
    for rule in rules:
        if rule.endpoint in ("console.static", "console.login"):
            continue
        path = rule.rule.replace("<int:order_id>", "1").replace("<action>", "cancel")
        path = path.replace("<int:alert_id>", "1").replace("<int:job_id>", "1")
        path = path.replace("<channel_id>", "shop-a")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code in (302, 401), (method, path, response.status_code)
            if response.status_code == 302:
                assert response.headers["Location"].startswith("/console/login")
    assert order_row(app, "1001").state == "received"  # the unauthenticated cancel did nothing


def test_a_wrong_password_is_refused_and_sign_in_is_throttled_per_address(
    client: FlaskClient, clock: ManualClock
) -> None:
    for _ in range(5):
        assert sign_in(client, password="wrong-password") == 401
    assert sign_in(client) == 429  # even the right password waits now
    page = client.get("/console/login")
    refused = client.post(
        "/console/login",
        data={"token": form_value(page.get_data(as_text=True), "token"), "password": PASSWORD},
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    elsewhere = client.application.test_client()
    page = elsewhere.get("/console/login", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    token = form_value(page.get_data(as_text=True), "token")
    other = elsewhere.post(
        "/console/login",
        data={"token": token, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert other.status_code == 302  # the throttle is per address (a global cap stops a spread-out run)
    clock.advance(16 * 60)
    assert sign_in(client) == 302


def test_sign_in_needs_the_form_it_was_given(client: FlaskClient) -> None:
    client.get("/console/login")
    response = client.post("/console/login", data={"token": "forged", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/console/orders").status_code == 302  # still not signed in


def test_session_cookie_flags_and_security_headers(app: Flask) -> None:
    secure = app.test_client()
    page = secure.get("/console/login", base_url="https://bridge.example.com")
    token = form_value(page.get_data(as_text=True), "token")
    response = secure.post(
        "/console/login",
        data={"token": token, "password": PASSWORD, "name": "Ann"},
        base_url="https://bridge.example.com",
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("fba_console="))
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/console/"):
        assert flag in cookie
    local = app.test_client()
    assert sign_in(local) == 302  # plain http on localhost: a developer's machine
    page = local.get("/console/orders")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page.get_data(as_text=True)  # only the same-origin file


def test_a_post_without_the_form_token_is_refused(app: Flask, operator_client: FlaskClient) -> None:
    row = post_order(operator_client, 1001)
    response = operator_client.post(f"/console/orders/{row.id}/cancel", data={})
    assert response.status_code == 403
    forged = operator_client.post(f"/console/orders/{row.id}/cancel", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert order_row(app, "1001").state == "received"


def test_signing_out_ends_the_session(operator_client: FlaskClient) -> None:
    assert operator_client.post("/console/logout", data={}).status_code == 403  # needs the form token
    response = operator_client.post("/console/logout", data={"csrf": csrf_of(operator_client)})
    assert response.status_code == 302
    assert operator_client.get("/console/orders").status_code == 302


def test_a_sign_in_redirect_never_leaves_the_console(client: FlaskClient) -> None:
    page = client.get("/console/login?next=https://evil.example/")
    assert form_value(page.get_data(as_text=True), "next") == "/console/orders"
    page = client.get("/console/login?next=//evil.example/console/")
    assert form_value(page.get_data(as_text=True), "next") == "/console/orders"


def test_a_tampered_session_cookie_is_not_a_session(app: Flask, operator_client: FlaskClient) -> None:
    cookie = operator_client.get_cookie("fba_console", path="/console/")
    assert cookie is not None
    stranger = app.test_client()
    stranger.set_cookie("fba_console", cookie.value[:-2] + "xx", path="/console/")
    assert stranger.get("/console/orders").status_code == 302


def test_a_trusted_proxy_header_signs_in_only_from_the_proxy(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    from bridge.app import create_app

    console = ConsoleSettings(
        secret_key=Secret("k" * 40), trusted_header="X-Forwarded-Email", trusted_proxies=("10.0.0.5",)
    )
    settings = Settings(metrics_flush_s=0, console=console)
    client = create_app(
        Bridge(settings=settings, config=channels_config, engine=db, clock=clock)
    ).test_client()
    header = {"X-Forwarded-Email": "ops@shop.example"}
    stranger = client.get("/console/orders", headers=header, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert stranger.status_code == 302
    proxied = client.get("/console/orders", headers=header, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert proxied.status_code == 200 and "ops@shop.example" in proxied.get_data(as_text=True)


# --------------------------------------------------------------------------------------------
# Pages


def test_orders_page_filters_searches_and_pages_newest_first(
    bridge: Bridge, operator_client: FlaskClient
) -> None:
    for n in range(1001, 1056):
        post_order(operator_client, n)
    woo_id = None
    with write_session(bridge.engine) as session:
        row = session.execute(select(OrderRecord).where(col(OrderRecord.external_id) == "1007")).scalar_one()
        row.state, row.attention_reason = "needs_attention", "FBA-TSHIRT-RED-M: InventoryUnavailable"
        session.add(row)
        woo_id = row.id
    first = operator_client.get("/console/orders").get_data(as_text=True)
    assert first.index("#1055") < first.index("#1010") and "#1005" not in first
    older = form_link(first, "Older")
    second = operator_client.get(older).get_data(as_text=True)
    assert "#1005" in second and "#1055" not in second and "Older" not in second
    found = operator_client.get("/console/orders?q=1032").get_data(as_text=True)
    assert "#1032" in found and "#1033" not in found
    assert "#1032" in operator_client.get("/console/orders?q=%231032").get_data(as_text=True)
    attention = operator_client.get("/console/orders?attention=1").get_data(as_text=True)
    assert f'/console/orders/{woo_id}"' in attention and "#1008" not in attention
    assert "InventoryUnavailable" in attention
    parked = operator_client.get("/console/orders?state=needs_attention&channel=shop-a").get_data(
        as_text=True
    )
    assert "#1007" in parked and "#1008" not in parked
    assert "No orders match" in operator_client.get("/console/orders?channel=woo-main").get_data(as_text=True)


def form_link(html: str, text: str) -> str:
    import re

    match = re.search(rf'<a href="([^"]+)"[^>]*>{text}', html)
    assert match, f"no {text} link"
    return match.group(1).replace("&amp;", "&")


def test_order_page_masks_personal_data_and_reveal_is_audited(
    bridge: Bridge, operator_client: FlaskClient, worker: Any
) -> None:
    row = post_order(operator_client, 1001, name=CANARY_NAME, email=CANARY_EMAIL)
    worker.drain()
    page = operator_client.get(f"/console/orders/{row.id}").get_data(as_text=True)
    assert "TSHIRT-RED-M" in page and "FBA-TSHIRT-RED-M" in page and "submitted" in page
    for value in (CANARY_NAME, CANARY_STREET, CANARY_EMAIL):
        assert value not in page
    revealed = act(operator_client, f"/console/orders/{row.id}/reveal")
    assert CANARY_NAME in revealed and CANARY_STREET in revealed and CANARY_EMAIL in revealed
    reveal = [e for e in trail(bridge.engine, row.id or 0) if e.event == "operator:reveal_address"]
    assert len(reveal) == 1 and reveal[0].reason == "by console:Ann: address revealed"
    assert CANARY_NAME not in operator_client.get(f"/console/orders/{row.id}").get_data(as_text=True)

    with write_session(bridge.engine) as session:
        locked = session.get(OrderRecord, row.id)
        assert locked is not None
        purge_order(session, locked, bridge.clock.now(), "retention")
    after = act(operator_client, f"/console/orders/{row.id}/reveal")
    assert "Nothing to reveal" in after and CANARY_STREET not in after


def test_order_page_shows_shipments_packages_pushbacks_and_the_trail(
    bridge: Bridge,
    operator_client: FlaskClient,
    shops: Shops,  # noqa: F811 (the fixture imported above)
    clock: ManualClock,
) -> None:
    ship_shopify(
        operator_client, bridge, shops, clock, 7001, [(71, "TSHIRT-BLUE-L", 2), (72, "TSHIRT-RED-M", 1)]
    )
    row = order_row(operator_client.application, "7001")
    page = operator_client.get(f"/console/orders/{row.id}").get_data(as_text=True)
    with read_session(bridge.engine) as session:
        packages = list(
            session.execute(select(PackageRecord).where(col(PackageRecord.order_id) == row.id)).scalars()
        )
        pushes = list(session.execute(select(PushRecord).where(col(PushRecord.order_id) == row.id)).scalars())
    assert len(packages) == 3 and len(pushes) == 3
    for package in packages:
        assert package.tracking_number in page
        if package.tracking_url:
            assert 'rel="noopener noreferrer"' in page
    for push in pushes:
        assert push.storefront_ref and push.storefront_ref in page
    assert "shipped" in page and "created at Amazon" in page  # the trail's reasons
    assert "Audit trail" in page and "pushed:shipment" in page


def test_channels_page_masks_secrets_and_shows_warnings(bridge: Bridge, operator_client: FlaskClient) -> None:
    page = operator_client.get("/console/channels").get_data(as_text=True)
    for channel_id in bridge.config.channels:
        assert channel_id in page
    assert "test-shopify-secret-1" not in page and "test-woo-secret-1" not in page
    assert "webhook secrets" in page and "set (hidden)" in page
    for warning in bridge.config.warnings:
        assert warning.split(":")[0] in page


def test_health_and_jobs_pages_count_what_is_there(bridge: Bridge, operator_client: FlaskClient) -> None:
    post_order(operator_client, 1001)
    health = operator_client.get("/console/health").get_data(as_text=True)
    assert "reachable" in health and "received" in health
    jobs_page = operator_client.get("/console/jobs").get_data(as_text=True)
    assert "submit" in jobs_page and "No dead letters" in jobs_page


# --------------------------------------------------------------------------------------------
# Actions


def test_hold_then_approve_goes_through_the_operator_and_is_audited(
    bridge: Bridge, operator_client: FlaskClient
) -> None:
    row = post_order(operator_client, 1001)
    page = act(operator_client, f"/console/orders/{row.id}/hold", reason="check the address")
    assert "held" in page and "awaiting approval" in page
    page = act(operator_client, f"/console/orders/{row.id}/approve")
    assert "approved" in page
    events = [(e.event, e.reason) for e in trail(bridge.engine, row.id or 0)]
    assert ("hold", "held by console:Ann: check the address") in events
    assert any(event == "approve" and "approved by console:Ann" in why for event, why in events)


def test_resubmit_sends_a_parked_order_to_amazon_once_stock_is_back(
    bridge: Bridge, operator_client: FlaskClient, worker: Any, simulator: Any
) -> None:
    simulator.set_inventory("FBA-TSHIRT-RED-M", 0)
    row = post_order(operator_client, 1001)
    worker.drain()
    assert order_row(operator_client.application, "1001").state == "needs_attention"
    simulator.set_inventory("FBA-TSHIRT-RED-M", 10)
    page = act(operator_client, f"/console/orders/{row.id}/resubmit")
    assert "queued for submission" in page
    worker.drain()
    assert order_row(operator_client.application, "1001").state == "submitted"
    assert any(e.reason == "re-submitted by console:Ann" for e in trail(bridge.engine, row.id or 0))


def test_an_action_the_order_cannot_take_says_why(operator_client: FlaskClient) -> None:
    row = post_order(operator_client, 1001)
    page = act(operator_client, f"/console/orders/{row.id}/approve")
    assert "already on its way to Amazon" in page or "not waiting for approval" in page
    assert (
        operator_client.post(
            f"/console/orders/{row.id}/explode", data={"csrf": csrf_of(operator_client)}
        ).status_code
        == 404
    )


def test_cancel_before_submission_ends_the_order(bridge: Bridge, operator_client: FlaskClient) -> None:
    row = post_order(operator_client, 1001)
    page = act(operator_client, f"/console/orders/{row.id}/cancel")
    assert "tick the box to confirm" in page
    assert order_row(operator_client.application, "1001").state == "received"
    page = act(operator_client, f"/console/orders/{row.id}/cancel", confirm="yes")
    assert "cancelled" in page
    assert order_row(operator_client.application, "1001").state == "cancelled"


def test_preview_at_amazon_shows_fulfillability_fees_and_dates(
    bridge: Bridge, operator_client: FlaskClient
) -> None:
    row = post_order(operator_client, 1001)
    response = operator_client.post(
        f"/console/orders/{row.id}/preview", data={"csrf": csrf_of(operator_client)}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:500]
    assert "fulfillable" in page and "Ships" in page and "Arrives" in page and "USD" in page
    assert order_row(operator_client.application, "1001").state == "received"  # nothing changed
    assert any(e.event == "operator:preview" for e in trail(bridge.engine, row.id or 0))


def _dead_job(engine: Engine, order_id: int | None) -> int:
    with write_session(engine) as session:
        jobs.enqueue(session, "sync_order", order_id=order_id, max_attempts=1)
    due_now(engine)
    claimed = jobs.claim(engine, ["sync_order"])
    assert claimed is not None
    jobs.fail(engine, claimed, "Amazon said no", permanent=True)
    return claimed.id


def test_retry_a_dead_job_and_acknowledge_an_alert(bridge: Bridge, operator_client: FlaskClient) -> None:
    row = post_order(operator_client, 1001)
    job_id = _dead_job(bridge.engine, row.id)
    assert f"retry-{job_id}" in operator_client.get("/console/jobs").get_data(as_text=True)
    page = act(operator_client, f"/console/jobs/{job_id}/retry")
    assert f"job {job_id} queued again" in page
    with read_session(bridge.engine) as session:
        assert (session.get(JobRecord, job_id) or JobRecord()).status == jobs.READY
    assert "No dead letters" in page

    with write_session(bridge.engine) as session:
        alerts.raise_alert(
            session,
            key="test:1",
            kind="test",
            message="look at this",
            now=bridge.clock.now(),
            order_id=row.id,
        )
    alert_id = alerts.list_alerts(bridge.engine)[0].id
    page = act(operator_client, f"/console/alerts/{alert_id}/ack")
    assert "acknowledged by console:Ann" in page


def test_run_a_reconciliation_pass_queues_one_job_per_channel(
    bridge: Bridge, operator_client: FlaskClient
) -> None:
    page = act(operator_client, "/console/channels/shop-a/reconcile")
    assert "reconciliation queued" in page
    page = act(operator_client, "/console/channels/shop-a/reconcile")
    assert "already waiting" in page
    page = act(operator_client, "/console/channels/own-shop/reconcile")
    assert "no order API" in page


def test_channels_page_shows_how_far_each_channel_is_reconciled(
    bridge: Bridge, operator_client: FlaskClient
) -> None:
    from bridge.store import ReconcileCursorRecord, write_session

    page = operator_client.get("/console/channels").get_data(as_text=True)
    assert "no complete pass yet" in page
    with write_session(bridge.engine) as session:
        session.add(
            ReconcileCursorRecord(
                channel_id="shop-a",
                synced_until=bridge.clock.now(),
                updated_at=bridge.clock.now(),
                last_summary={"new": 3, "amendments": 1, "cancellations": 0, "nothing_to_do": 96, "calls": 5},
            )
        )
    page = operator_client.get("/console/channels").get_data(as_text=True)
    assert "3 new, 1 amended, 0 cancelled, 96 unchanged, 5 storefront calls" in page


def test_login_settings_reject_a_non_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.settings import SettingsError

    with pytest.raises(SettingsError, match="console-password"):
        Settings.from_env({"BRIDGE_CONSOLE_PASSWORD_HASH": "hunter2"})
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        Settings.from_env({"BRIDGE_CONSOLE_TRUSTED_HEADER": "X-Email"})
    settings = Settings.from_env({"BRIDGE_CONSOLE_PASSWORD_HASH": console_settings().password_hash.reveal()})
    assert settings.console.enabled and "pbkdf2" not in repr(settings)


def test_console_password_prints_a_hash_that_signs_in() -> None:
    from click.testing import CliRunner
    from werkzeug.security import check_password_hash

    from bridge import cli

    runner = CliRunner()
    made = runner.invoke(cli.main, ["console-password"], input="a long console password\n" * 2)
    assert made.exit_code == 0, made.output
    hashed = made.output.strip().splitlines()[-1]
    assert hashed.startswith("scrypt:") and check_password_hash(hashed, "a long console password")
    assert Settings.from_env({"BRIDGE_CONSOLE_PASSWORD_HASH": hashed}).console.enabled
    short = runner.invoke(cli.main, ["console-password"], input="short\nshort\n")
    assert short.exit_code != 0 and "at least 12 characters" in short.output


def test_console_secrets_are_compared_in_constant_time_and_never_logged(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Password, login-form token and form (CSRF) token: every comparison goes through
    `hmac.compare_digest` with both sides of one length (no length leak); none is logged."""
    import hmac
    import logging

    caplog.set_level(logging.DEBUG)
    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        assert len(a) == len(b), "compared values of different lengths (the length leaks)"
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert sign_in(client, password="wrong-password") == 401 and calls
    page = client.get("/console/login")
    token = form_value(page.get_data(as_text=True), "token")
    # Same length (a signature's length is public); not the last character, whose low bits are
    # base64 padding and may decode to the same signature.
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    assert client.post("/console/login", data={"token": tampered, "password": PASSWORD}).status_code == 400
    calls.clear()
    assert sign_in(client) == 302 and calls
    csrf = csrf_of(client)
    calls.clear()
    refused = client.post("/console/orders/1/cancel", data={"csrf": csrf[:-3]})
    assert refused.status_code in (400, 403) and calls
    assert PASSWORD not in caplog.text and csrf not in caplog.text
