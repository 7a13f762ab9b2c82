"""Operator alerts: one per cause, raised with the state change that found it, cleared when the
cause goes away, listed for `orders --attention`, and delivered signed to the operator's relay."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlmodel import col
from standardwebhooks import Webhook

from bridge import alerts, jobs
from bridge.admin import list_orders, retry_job
from bridge.alerts import JOB_ALERT_DELIVERY
from bridge.bootstrap import Bridge
from bridge.pipeline.common import owe_note
from bridge.settings import Secret
from bridge.store import AlertRecord, JobRecord, OrderRecord, write_session
from bridge.worker import GiveUp, Worker
from tests.conftest import due_now

RELAY_SECRET = "whsec_" + "YWxlcnQtcmVsYXktc2VjcmV0LTEyMzQ1Njc4OTA="


def _order(bridge: Bridge, external_id: str = "5001") -> OrderRecord:
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        row = OrderRecord(
            channel_id="shop-a",
            external_id=external_id,
            display_id=f"#{external_id}",
            state="submitted",
            data={},
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row


def _delivery_jobs(bridge: Bridge) -> list[JobRecord]:
    with write_session(bridge.engine) as session:
        return list(
            session.execute(select(JobRecord).where(col(JobRecord.kind) == JOB_ALERT_DELIVERY)).scalars()
        )


def test_raising_the_same_cause_again_counts_it_instead_of_opening_a_second_alert(bridge: Bridge) -> None:
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        first = alerts.raise_alert(session, key="account:main:lwa", kind="credentials", message="a", now=now)
    with write_session(bridge.engine) as session:
        again = alerts.raise_alert(
            session, key="account:main:lwa", kind="credentials", message="b", now=now + timedelta(minutes=1)
        )

    assert (first, again) == (True, False)
    [alert] = alerts.list_alerts(bridge.engine)
    assert (alert.occurrences, alert.message, alert.opened_at) == (2, "b", now)
    assert [j.payload["event"] for j in _delivery_jobs(bridge)] == ["alert.opened"]


def test_a_cleared_cause_that_comes_back_opens_the_alert_again(bridge: Bridge) -> None:
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        alerts.raise_alert(session, key="k", kind="breaker", message="open", now=now)
    with write_session(bridge.engine) as session:
        assert alerts.clear_alert(session, "k", now + timedelta(minutes=1))
        assert not alerts.clear_alert(session, "k", now + timedelta(minutes=1))
    assert alerts.list_alerts(bridge.engine) == []
    with write_session(bridge.engine) as session:
        assert alerts.raise_alert(
            session, key="k", kind="breaker", message="open", now=now + timedelta(hours=1)
        )

    [alert] = alerts.list_alerts(bridge.engine)
    assert (alert.occurrences, alert.opened_at, alert.cleared_at) == (1, now + timedelta(hours=1), None)
    events = [j.payload["event"] for j in _delivery_jobs(bridge)]
    assert events == ["alert.opened", "alert.cleared", "alert.opened"]


def test_acknowledged_alert_stays_open_and_a_resolved_one_reopens_on_recurrence(bridge: Bridge) -> None:
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        alerts.raise_alert(session, key="k", kind="x", message="m", now=now)
    [alert] = alerts.list_alerts(bridge.engine)

    acked = alerts.acknowledge(bridge.engine, alert.id, "cli:ops", now)
    assert acked.acknowledged_by == "cli:ops" and acked.is_open
    with write_session(bridge.engine) as session:
        assert not alerts.raise_alert(session, key="k", kind="x", message="m", now=now)
    assert alerts.list_alerts(bridge.engine)[0].acknowledged_at == now

    alerts.resolve(bridge.engine, alert.id, "cli:ops", now)
    assert alerts.list_alerts(bridge.engine) == []
    with write_session(bridge.engine) as session:
        assert alerts.raise_alert(session, key="k", kind="x", message="m", now=now)
    assert alerts.list_alerts(bridge.engine)[0].acknowledged_at is None
    with pytest.raises(LookupError):
        alerts.acknowledge(bridge.engine, 999, "cli:ops", now)


def test_a_dead_lettered_job_raises_one_alert_and_puts_its_order_in_attention(bridge: Bridge) -> None:
    row = _order(bridge)
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "poison", order_id=row.id, max_attempts=2)

    def poison(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom with jon.canary@example.com")

    worker = Worker(bridge, {"poison": poison})
    for _ in range(2):
        due_now(bridge.engine)
        assert worker.run_once()

    [alert] = alerts.list_alerts(bridge.engine)
    assert alert.kind == "job_dead" and alert.order_id == row.id and alert.order_display_id == "#5001"
    assert "jobs retry" in alert.message and "canary" not in alert.message
    [listed] = list_orders(bridge.engine, attention=True)
    assert listed.id == row.id and "dead-lettered" in listed.attention

    job_id = int(alert.key.split(":")[1])
    retry_job(bridge.engine, bridge.clock, job_id)
    assert alerts.list_alerts(bridge.engine) == []
    assert list_orders(bridge.engine, attention=True) == []


def test_a_permanent_failure_is_alerted_at_once(bridge: Bridge) -> None:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, "refused")

    def refused(ctx):  # type: ignore[no-untyped-def]
        raise GiveUp("the storefront refused the request (422)")

    Worker(bridge, {"refused": refused}).run_once()
    [alert] = alerts.list_alerts(bridge.engine)
    assert alert.order_id is None and "422" in alert.message


def test_an_owed_note_is_also_an_alert_once(bridge: Bridge) -> None:
    row = _order(bridge)
    now = bridge.clock.now()
    for _ in range(2):
        with write_session(bridge.engine) as session:
            locked = session.get(OrderRecord, row.id)
            assert locked is not None
            owe_note(session, locked, "status:Unfulfillable", now, "Amazon could not fulfil this order.")

    [alert] = alerts.list_alerts(bridge.engine, order_id=row.id)
    assert alert.kind == "status" and alert.occurrences == 2
    assert alert.message == "order #5001 (shop-a): Amazon could not fulfil this order."
    with write_session(bridge.engine) as session:
        pushes = session.execute(
            select(func.count()).select_from(JobRecord).where(col(JobRecord.kind) == "push")
        )
        assert pushes.scalar_one() == 1


def _relay_bridge(bridge: Bridge, url: str = "https://ops.example/alerts") -> Bridge:
    settings = replace(bridge.settings, alert_webhook_url=url, alert_webhook_secret=Secret(RELAY_SECRET))
    return replace(bridge, settings=settings)


def test_alert_deliveries_are_signed_and_keep_their_id_across_retries(bridge: Bridge) -> None:
    from bridge.runtime import HANDLERS

    received: list[httpx.Request] = []
    answers = iter([503, 200])

    def relay(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(next(answers))

    relay_bridge = _relay_bridge(bridge)
    with write_session(bridge.engine) as session:
        alerts.raise_alert(
            session,
            key="account:main:lwa",
            kind="credentials",
            message="refresh token revoked",
            now=bridge.clock.now(),
            account_id="main",
        )
    worker = Worker(
        relay_bridge,
        {JOB_ALERT_DELIVERY: HANDLERS[JOB_ALERT_DELIVERY]},
        services={"alert_transport": httpx.MockTransport(relay)},
    )
    assert worker.run_once()
    due_now(bridge.engine)
    assert worker.run_once()

    assert len(received) == 2
    ids = {r.headers["webhook-id"] for r in received}
    assert len(ids) == 1
    last = received[-1]
    signed_at = datetime.fromtimestamp(int(last.headers["webhook-timestamp"]), tz=UTC)
    expected = Webhook(RELAY_SECRET).sign(last.headers["webhook-id"], signed_at, last.content.decode())
    assert last.headers["webhook-signature"] == expected
    payload = json.loads(last.content)
    assert payload["type"] == "alert.opened"
    assert payload["data"]["kind"] == "credentials" and payload["data"]["account_id"] == "main"
    assert payload["data"]["message"] == "refresh token revoked"
    assert {j.status for j in _delivery_jobs(bridge)} == {jobs.DONE}


def test_without_a_relay_url_deliveries_complete_without_sending(bridge: Bridge) -> None:
    from bridge.runtime import HANDLERS

    def relay(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent without BRIDGE_ALERT_WEBHOOK_URL")

    with write_session(bridge.engine) as session:
        alerts.raise_alert(session, key="k", kind="x", message="m", now=bridge.clock.now())
    Worker(
        bridge,
        {JOB_ALERT_DELIVERY: HANDLERS[JOB_ALERT_DELIVERY]},
        services={"alert_transport": httpx.MockTransport(relay)},
    ).drain()
    assert {j.status for j in _delivery_jobs(bridge)} == {jobs.DONE}


def test_cli_lists_acknowledges_and_resolves_alerts(bridge: Bridge, database_url: str, monkeypatch) -> None:
    from bridge.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    with write_session(bridge.engine) as session:
        alerts.raise_alert(
            session, key="k", kind="breaker", message="previews failing", now=bridge.clock.now()
        )
    [alert] = alerts.list_alerts(bridge.engine)
    runner = CliRunner()

    listed = runner.invoke(main, ["alerts"])
    assert listed.exit_code == 0 and "previews failing" in listed.output and "[open]" in listed.output
    assert runner.invoke(main, ["alerts", "ack", str(alert.id)]).exit_code == 0
    assert "[acknowledged]" in runner.invoke(main, ["alerts"]).output
    assert runner.invoke(main, ["alerts", "resolve", str(alert.id)]).exit_code == 0
    assert runner.invoke(main, ["alerts"]).output.strip() == "no open alerts"
    assert "[cleared]" in runner.invoke(main, ["alerts", "--all"]).output
    missing = runner.invoke(main, ["alerts", "ack", "999"])
    assert missing.exit_code != 0 and "no alert 999" in missing.output


def test_alert_relay_settings_are_checked() -> None:
    from bridge.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="https"):
        Settings.from_env(
            {"BRIDGE_ALERT_WEBHOOK_URL": "http://ops.example/a", "BRIDGE_ALERT_WEBHOOK_SECRET": RELAY_SECRET}
        )
    with pytest.raises(SettingsError, match="whsec_"):
        Settings.from_env({"BRIDGE_ALERT_WEBHOOK_URL": "https://ops.example/a"})
    ok = Settings.from_env(
        {"BRIDGE_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/a", "BRIDGE_ALERT_WEBHOOK_SECRET": RELAY_SECRET}
    )
    assert ok.alert_webhook_url == "http://127.0.0.1:9/a" and "alert" not in repr(ok)


def test_alert_rows_hold_no_more_than_one_row_per_key(bridge: Bridge) -> None:
    now = bridge.clock.now()
    for i in range(5):
        with write_session(bridge.engine) as session:
            alerts.raise_alert(session, key="same", kind="x", message=str(i), now=now)
    with write_session(bridge.engine) as session:
        assert session.execute(select(func.count()).select_from(AlertRecord)).scalar_one() == 1


def _open_alert_keys(bridge: Bridge) -> set[str]:
    with write_session(bridge.engine) as session:
        query = select(AlertRecord.key).where(col(AlertRecord.cleared_at).is_(None))
        return set(session.execute(query).scalars())


def test_a_restarted_worker_clears_a_breaker_alert_its_predecessor_left_open(bridge: Bridge) -> None:
    from bridge.amazon.breaker_alerts import AlertingBreakerListener

    AlertingBreakerListener(bridge.engine, bridge.clock).opened("main", "getFulfillmentPreview", 5, 1.0)
    assert _open_alert_keys(bridge) == {"account:main:breaker:getFulfillmentPreview"}
    AlertingBreakerListener(bridge.engine, bridge.clock).closed("main", "getFulfillmentPreview")
    assert _open_alert_keys(bridge) == set()


def test_first_successes_after_a_start_read_the_open_breaker_alerts_once(bridge: Bridge) -> None:
    """Every breaker's first success asks whether an alert is left open: 200 accounts' first
    successes are one read, and no write when none is open."""
    from sqlalchemy import event

    from bridge.amazon.breaker_alerts import AlertingBreakerListener

    listener = AlertingBreakerListener(bridge.engine, bridge.clock)
    statements: list[str] = []
    event.listen(bridge.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for n in range(200):
        listener.closed(f"seller-{n}", "createFulfillmentOrder")
    assert len([s for s in statements if "alerts" in s]) == 1
    assert not [s for s in statements if s.startswith(("UPDATE", "INSERT"))]


def test_breaker_alerts_opened_after_the_read_are_still_cleared(bridge: Bridge) -> None:
    from bridge.amazon.breaker_alerts import SNAPSHOT_S, AlertingBreakerListener

    mine = AlertingBreakerListener(bridge.engine, bridge.clock)
    mine.closed("main", "getFulfillmentPreview")  # the read: nothing open yet
    mine.opened("main", "createFulfillmentOrder", 5, 1.0)  # this process's own breaker
    AlertingBreakerListener(bridge.engine, bridge.clock).opened("other", "getFulfillmentPreview", 5, 1.0)
    mine.closed("main", "createFulfillmentOrder")
    assert _open_alert_keys(bridge) == {"account:other:breaker:getFulfillmentPreview"}
    mine.closed("other", "getFulfillmentPreview")  # left open by another process since the read
    assert _open_alert_keys(bridge) == {"account:other:breaker:getFulfillmentPreview"}
    bridge.clock.advance(SNAPSHOT_S)  # type: ignore[attr-defined]
    mine.closed("other", "getFulfillmentPreview")
    assert _open_alert_keys(bridge) == set()
