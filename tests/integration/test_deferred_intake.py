"""Deferred intake: a busy web process stores the delivery, the `intake` job applies it, and the
result is the same as applying it in the request."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from bridge import intake, jobs
from bridge.app import create_app
from bridge.bootstrap import Bridge
from bridge.intake import DEFERRED, JOB_INTAKE, JOB_SUBMIT
from bridge.pipeline import deferred_intake
from bridge.store import (
    AlertRecord,
    DeliveryRecord,
    JobRecord,
    OrderEventRecord,
    OrderRecord,
    make_engine,
    read_session,
    write_session,
)
from bridge.storefronts.registry import adapter_for
from bridge.web.admission import Admission
from bridge.worker import Worker
from tests.conftest import apply_deferred
from tests.support import (
    fixture,
    generic_delivery,
    shopify_delivery,
    shopify_order,
    woo_delivery,
    woo_order,
)

SHOP, WOO, OWN = "/webhooks/shop-a", "/webhooks/woo-main", "/webhooks/own-shop"


def make_app(bridge: Bridge, defer_at: int, concurrency: int = 4, defer_rate: float = 0.0) -> Flask:
    bridge.settings = replace(
        bridge.settings,
        webhook_defer_at=defer_at,
        webhook_concurrency=concurrency,
        webhook_defer_rate=defer_rate,
    )
    app = create_app(bridge)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def deferring(bridge: Bridge) -> FlaskClient:
    """Every Shopify/WooCommerce order delivery is deferred (`BRIDGE_WEBHOOK_DEFER_AT=1`)."""
    return make_app(bridge, defer_at=1).test_client()


def post(client: FlaskClient, url: str, delivery: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = delivery
    response = client.post(url, data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def deliveries(db: Engine) -> list[tuple[str, str, int | None]]:
    with read_session(db) as session:
        query = select(DeliveryRecord.topic, DeliveryRecord.outcome, DeliveryRecord.order_id).order_by(
            DeliveryRecord.id
        )
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def job_kinds(db: Engine) -> list[str]:
    with read_session(db) as session:
        return sorted(session.execute(select(JobRecord.kind)).scalars())


def order(db: Engine, external_id: str) -> OrderRecord | None:
    with read_session(db) as session:
        query = select(OrderRecord).where(OrderRecord.external_id == external_id)
        return session.execute(query).scalars().first()


def test_a_deferred_order_is_stored_at_once_and_applied_by_the_worker_as_inline(
    deferring: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    answer = post(deferring, SHOP, shopify_delivery(shopify_order(1001)))
    assert answer == {"status": "accepted", "outcome": DEFERRED}
    assert deliveries(db) == [("orders/create", DEFERRED, None)]
    assert order(db, "1001") is None
    assert job_kinds(db) == [JOB_INTAKE]

    assert apply_deferred(bridge) == 1
    deferred = order(db, "1001")
    assert deferred is not None
    inline_client = make_app(bridge, defer_at=0).test_client()
    assert post(inline_client, SHOP, shopify_delivery(shopify_order(1002)))["outcome"] == "created"
    inline = order(db, "1002")
    assert inline is not None
    assert deferred.state == inline.state == "received"
    assert {**deferred.data, "external_id": "", "display_id": ""} == {
        **inline.data,
        "external_id": "",
        "display_id": "",
    }
    assert deliveries(db) == [
        ("orders/create", "created", deferred.id),
        ("orders/create", "created", inline.id),
    ]
    assert job_kinds(db) == [JOB_INTAKE, JOB_SUBMIT, JOB_SUBMIT]
    with read_session(db) as session:
        audit = session.execute(
            select(OrderEventRecord.event, OrderEventRecord.delivery_id).where(
                OrderEventRecord.order_id == deferred.id
            )
        ).all()
    assert [event for event, _ in audit] == ["intake:created"] and audit[0][1] is not None


def test_retries_of_a_deferred_delivery_are_duplicates_before_and_after_it_is_applied(
    deferring: FlaskClient, db: Engine, bridge: Bridge
) -> None:
    delivery = shopify_delivery(shopify_order(1001), webhook_id="wh-1")
    post(deferring, SHOP, delivery)
    assert post(deferring, SHOP, delivery) == {"status": "duplicate", "outcome": "duplicate"}
    assert apply_deferred(bridge) == 1
    assert post(deferring, SHOP, delivery)["status"] == "duplicate"
    assert [outcome for _, outcome, _ in deliveries(db)] == ["created"]
    assert job_kinds(db) == [JOB_INTAKE, JOB_SUBMIT]


def test_a_deferred_delivery_older_than_one_applied_meanwhile_is_stale(
    deferring: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    post(
        deferring, SHOP, shopify_delivery(shopify_order(1001, quantity=1, updated_at="2026-11-01T10:00:00Z"))
    )
    inline_client = make_app(bridge, defer_at=0).test_client()
    newer = shopify_order(1001, quantity=3, updated_at="2026-11-01T11:00:00Z")
    assert post(inline_client, SHOP, shopify_delivery(newer, "orders/updated"))["outcome"] == "created"
    assert apply_deferred(bridge) == 1
    row = order(db, "1001")
    assert row is not None and row.data["lines"][0]["quantity"] == 3
    assert [outcome for _, outcome, _ in deliveries(db)] == ["stale", "created"]


def test_woocommerce_orders_are_deferred_too(deferring: FlaskClient, db: Engine, bridge: Bridge) -> None:
    assert post(deferring, WOO, woo_delivery(woo_order(700)))["outcome"] == DEFERRED
    assert apply_deferred(bridge) == 1
    assert deliveries(db)[0][1] == "created" and order(db, "700") is not None


def test_privacy_requests_refused_payloads_and_the_generic_channel_are_never_deferred(
    deferring: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    redact = fixture("shopify/customers_redact.json")
    assert post(deferring, SHOP, shopify_delivery(redact, "customers/redact"))["outcome"] == "privacy_queued"
    refused = shopify_order(1003)
    refused["line_items"][0]["quantity"] = "many"
    assert post(deferring, SHOP, shopify_delivery(refused))["outcome"] == "schema_refused"
    own = fixture("generic/order_upsert.json")
    assert post(deferring, OWN, generic_delivery(own, bridge.clock.now()))["outcome"] == "created"
    assert DEFERRED not in [outcome for _, outcome, _ in deliveries(db)]
    assert JOB_INTAKE not in job_kinds(db)


def test_a_delivery_that_cannot_be_applied_later_is_kept_and_raises_an_alert(
    deferring: FlaskClient, db: Engine, bridge: Bridge
) -> None:
    post(deferring, SHOP, shopify_delivery(shopify_order(1001)))
    with db.begin() as conn:  # a shop/redact request removed the body before the job ran
        conn.execute(
            update(DeliveryRecord).values(
                body=b'{"redacted":true}', body_purged_at=DeliveryRecord.received_at
            )
        )
    assert apply_deferred(bridge) == 1
    assert [outcome for _, outcome, _ in deliveries(db)] == ["not_applied"]
    assert order(db, "1001") is None
    with read_session(db) as session:
        alert = session.execute(select(AlertRecord)).scalars().one()
    assert alert.kind == "intake" and "privacy request" in alert.message
    assert "Jon" not in alert.message and "canary" not in alert.message.lower()


def test_a_delivery_whose_channel_left_the_channels_file_is_kept_and_raises_an_alert(
    deferring: FlaskClient, db: Engine, bridge: Bridge
) -> None:
    post(deferring, SHOP, shopify_delivery(shopify_order(1001)))
    remaining = {key: channel for key, channel in bridge.config.channels.items() if key != "shop-a"}
    bridge.config = replace(bridge.config, channels=remaining)
    assert apply_deferred(bridge) == 1
    assert [outcome for _, outcome, _ in deliveries(db)] == ["not_applied"]
    with read_session(db) as session:
        alert = session.execute(select(AlertRecord)).scalars().one()
    assert "no longer in the channels file" in alert.message and alert.channel_id == "shop-a"


def test_the_process_defers_only_while_enough_handlers_run(bridge: Bridge, db: Engine) -> None:
    app = make_app(bridge, defer_at=2)
    client = app.test_client()
    gate: Admission = app.extensions["webhook_admission"]
    assert post(client, SHOP, shopify_delivery(shopify_order(1001)))["outcome"] == "created"
    assert gate.enter()  # another webhook is being handled
    try:
        assert post(client, SHOP, shopify_delivery(shopify_order(1002)))["outcome"] == DEFERRED
    finally:
        gate.leave()
    assert post(client, SHOP, shopify_delivery(shopify_order(1003)))["outcome"] == "created"


def test_the_process_defers_while_webhooks_arrive_at_the_defer_rate(
    bridge: Bridge, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(bridge, defer_at=2, defer_rate=3)
    client = app.test_client()
    gate: Admission = app.extensions["webhook_admission"]
    clock = [500.25]
    monkeypatch.setattr(gate, "_now", lambda: clock[0])  # the gate's own clock, hand-driven
    outcomes = [post(client, SHOP, shopify_delivery(shopify_order(n)))["outcome"] for n in range(1001, 1005)]
    assert outcomes == ["created", "created", DEFERRED, DEFERRED]  # the 3rd arrival makes 3 a second
    clock[0] = 502.5  # a quiet second later the estimate has fallen to nothing
    assert post(client, SHOP, shopify_delivery(shopify_order(1005)))["outcome"] == "created"
    assert apply_deferred(bridge) == 2
    assert {row.outcome for row in deliveries_rows(db)} == {"created"}


def deliveries_rows(db: Engine) -> list[DeliveryRecord]:
    with read_session(db) as session:
        return list(session.execute(select(DeliveryRecord).order_by(DeliveryRecord.id)).scalars())


def test_a_deferred_order_goes_on_to_amazon(deferring: FlaskClient, db: Engine, worker: Worker) -> None:
    post(deferring, SHOP, shopify_delivery(shopify_order(1001)))
    assert worker.drain() == 2  # intake, then submit
    row = order(db, "1001")
    assert row is not None and (row.state, row.amazon_status) == ("submitted", "Received")


def intake_jobs(db: Engine) -> list[tuple[str, int, str]]:
    with read_session(db) as session:
        query = (
            select(JobRecord.status, JobRecord.attempts, JobRecord.last_error)
            .where(JobRecord.kind == JOB_INTAKE)
            .order_by(JobRecord.id)
        )
        return [(status, attempts, error) for status, attempts, error in session.execute(query)]


def test_one_run_applies_a_burst_of_deferred_deliveries_oldest_first(
    deferring: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    count = deferred_intake.BATCH + 5
    post(
        deferring, SHOP, shopify_delivery(shopify_order(1000, quantity=1, updated_at="2026-11-01T10:00:00Z"))
    )
    for n in range(1001, 1000 + count - 1):
        post(deferring, SHOP, shopify_delivery(shopify_order(n)))
    changed = shopify_order(1000, quantity=3, updated_at="2026-11-01T11:00:00Z")
    post(deferring, SHOP, shopify_delivery(changed, "orders/updated"))
    worker = Worker(bridge, {JOB_INTAKE: deferred_intake.handle_deferred_intake})

    assert worker.run_once()
    statuses = [status for status, _, _ in intake_jobs(db)]
    assert statuses == ["done"] * deferred_intake.BATCH + ["ready"] * 5, "one claim, one commit for the batch"
    assert worker.drain() == 1, "the rest in one more run"
    assert {status for status, _, _ in intake_jobs(db)} == {"done"}
    outcomes = [row.outcome for row in deliveries_rows(db)]
    assert outcomes == ["created"] * (count - 1) + ["amended"]
    row = order(db, "1000")
    assert row is not None and row.data["lines"][0]["quantity"] == 3, "its update was applied after it"
    with read_session(db) as session:
        assert len(session.execute(select(OrderRecord.id)).all()) == count - 1


def test_when_a_batch_fails_its_other_jobs_go_back_and_each_runs_alone(
    deferring: FlaskClient, bridge: Bridge, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1001, 1005):
        post(deferring, SHOP, shopify_delivery(shopify_order(n)))
    poison = deliveries_rows(db)[2].id
    real_settle = deferred_intake.settle

    def settle(session: Any, channel: Any, delivery: Any, delivery_id: int, clock: Any) -> Any:
        if delivery_id == poison:
            raise RuntimeError("this one cannot be applied")
        return real_settle(session, channel, delivery, delivery_id, clock)

    monkeypatch.setattr(deferred_intake, "settle", settle)
    worker = Worker(bridge, {JOB_INTAKE: deferred_intake.handle_deferred_intake})
    assert worker.run_once()
    jobs_after = intake_jobs(db)
    assert [(status, attempts) for status, attempts, _ in jobs_after] == [("ready", 1)] * 4
    assert jobs_after[0][2] == "RuntimeError", "the job that took the batch failed and waits for its retry"
    assert all("runs on its own next" in error for _, _, error in jobs_after[1:])
    assert {row.outcome for row in deliveries_rows(db)} == {DEFERRED}, "nothing half-applied"

    assert worker.drain() == 3, "the others, one run each: the failed job is not due yet"
    assert [status for status, _, _ in intake_jobs(db)] == ["ready", "done", "ready", "done"]
    outcomes = [row.outcome for row in deliveries_rows(db)]
    assert outcomes == [DEFERRED, "created", DEFERRED, "created"]
    monkeypatch.setattr(deferred_intake, "settle", real_settle)
    with write_session(db) as session:
        session.execute(update(JobRecord).where(JobRecord.kind == JOB_INTAKE).values(run_at=0))
    assert worker.drain() == 2
    assert {row.outcome for row in deliveries_rows(db)} == {"created"}


def _parsed(bridge: Bridge, number: int, webhook_id: str | None = None) -> tuple[Any, Any, bytes]:
    channel = bridge.config.channel("shop-a")
    assert channel is not None
    body, headers = shopify_delivery(shopify_order(number), webhook_id=webhook_id)
    return channel, adapter_for("shopify").parse(channel, headers, body, bridge.clock), body


def _defer_together(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, parsed: list[Any]
) -> tuple[list[Any], list[int]]:
    """SQLite only (`_GroupCommit`; PostgreSQL stores each deferral in a statement of its own).
    Defer `parsed` from one thread each while the first transaction is held open until all the
    others wait for it; returns each thread's result (or exception) and the transactions' sizes.
    Every delivery answered `deferred` must be readable from another connection by the time its
    answer comes (committed, not just written)."""
    if bridge.engine.dialect.name != "sqlite":
        pytest.skip("group commit is SQLite's; PostgreSQL stores each deferral in one statement")
    store = intake._store_deferrals
    sizes: list[int] = []
    group = intake._group(bridge.engine)

    first_in = threading.Event()

    def held_first(engine: Engine, batch: list[Any]) -> dict[Any, Any]:
        if not first_in.is_set():
            first_in.set()
            deadline = time.monotonic() + 10
            while len(group._waiting) < len(parsed) - 1 and time.monotonic() < deadline:
                time.sleep(0.005)
        sizes.append(len(batch))
        return store(engine, batch)

    monkeypatch.setattr(intake, "_store_deferrals", held_first)
    results: list[Any] = [None] * len(parsed)

    uncommitted: list[str] = []

    def run(i: int) -> None:
        channel, delivery, body = parsed[i]
        try:
            results[i] = intake.defer(bridge.engine, channel, delivery, body, bridge.clock)
        except Exception as exc:
            results[i] = exc
            return
        if results[i].outcome == DEFERRED and not _stored(bridge.engine, delivery.delivery_key):
            uncommitted.append(delivery.delivery_key)

    first = threading.Thread(target=run, args=(0,), daemon=True)
    first.start()
    assert first_in.wait(10)
    others = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(1, len(parsed))]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(10)
        assert not thread.is_alive(), "a deferral never got its answer"
    assert uncommitted == []
    return results, sizes


def _stored(engine: Engine, delivery_key: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(select(DeliveryRecord.id).where(DeliveryRecord.delivery_key == delivery_key))
        return found.first() is not None


def test_deferrals_that_wait_for_a_commit_are_stored_together_each_with_its_own_answer(
    bridge: Bridge, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = [_parsed(bridge, 2000 + i) for i in range(6)]
    parsed.append(_parsed(bridge, 2001, webhook_id=parsed[1][1].delivery_key))  # a replay of #2001
    results, sizes = _defer_together(bridge, monkeypatch, parsed)
    assert sizes == [1, 6]  # the first alone, then everyone who waited for it in one transaction
    assert sorted(r.outcome for r in results) == ["deferred"] * 6 + ["duplicate"]
    assert [r.duplicate for r in results].count(True) == 1
    assert len(deliveries(db)) == 6 and job_kinds(db) == [JOB_INTAKE] * 6
    assert apply_deferred(bridge) == 6
    with read_session(db) as session:
        assert len(session.execute(select(OrderRecord.id)).all()) == 6


def test_one_delivery_that_cannot_be_stored_fails_only_itself(
    bridge: Bridge, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = [_parsed(bridge, 3000 + i) for i in range(5)]
    bad = parsed[3][1].delivery_key
    delivery_values = intake._delivery_values

    def refusing(channel: Any, delivery: Any, *args: Any) -> Any:
        if delivery.delivery_key == bad:
            raise ValueError("refused by the test")
        return delivery_values(channel, delivery, *args)

    monkeypatch.setattr(intake, "_delivery_values", refusing)
    results, sizes = _defer_together(bridge, monkeypatch, parsed)
    assert sizes[:2] == [1, 4] and sizes[2:] == [1, 1, 1, 1]  # the shared one failed: each alone
    assert isinstance(results[3], ValueError)
    assert [r.outcome for i, r in enumerate(results) if i != 3] == ["deferred"] * 4
    assert len(deliveries(db)) == 4 and job_kinds(db) == [JOB_INTAKE] * 4


def test_the_group_commit_does_not_keep_an_engine_alive(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/other.sqlite3")
    intake._group(engine)
    gone = weakref.ref(engine)
    engine.dispose()
    del engine
    gc.collect()
    assert gone() is None


def _only_postgresql(db: Engine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("the one-statement deferral is PostgreSQL's (SQLite has no data-modifying CTE)")


def test_on_postgresql_a_deferral_is_its_row_and_job_in_one_autocommitted_statement(
    bridge: Bridge, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_postgresql(db)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(db, "before_cursor_execute", seen)
    try:
        channel, delivery, body = _parsed(bridge, 4000)
        assert intake.defer(db, channel, delivery, body, bridge.clock).outcome == DEFERRED
    finally:
        event.remove(db, "before_cursor_execute", seen)
    assert statements == ["WITH"], "one statement, no transaction of its own around it"
    with read_session(db) as session:
        (job,) = session.execute(select(JobRecord)).scalars().all()
        (row,) = session.execute(select(DeliveryRecord)).scalars().all()
        assert job.payload == {"delivery_id": row.id, "channel_id": "shop-a"}
        assert (row.outcome, row.source, row.body) == (DEFERRED, "webhook", body)

    # Every other column as `jobs.enqueue` writes it, so the worker cannot tell the two apart.
    with write_session(db) as session:
        jobs.enqueue(session, JOB_INTAKE, payload=job.payload)
    with read_session(db) as session:
        one, other = session.execute(select(JobRecord).order_by(JobRecord.id)).scalars().all()
    times = {"id", "payload", "run_at", "created_at", "updated_at"}
    columns = [name for name in JobRecord.model_fields if name not in times]
    assert {name: getattr(one, name) for name in columns} == {name: getattr(other, name) for name in columns}
    assert one.run_at == one.created_at == one.updated_at <= other.created_at

    assert apply_deferred(bridge) == 2  # the job and its copy: the second finds it settled
    assert [r.outcome for r in deliveries_rows(db)] == ["created"]


def test_on_postgresql_concurrent_copies_of_one_delivery_store_it_once(bridge: Bridge, db: Engine) -> None:
    _only_postgresql(db)
    channel, delivery, body = _parsed(bridge, 4100)
    start = threading.Barrier(4)
    results: list[Any] = []

    def run() -> None:
        start.wait(5)
        results.append(intake.defer(db, channel, delivery, body, bridge.clock))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r.outcome for r in results) == [DEFERRED] + ["duplicate"] * 3
    assert len(deliveries(db)) == 1 and job_kinds(db) == [JOB_INTAKE]


def test_on_postgresql_a_deferral_that_fails_stores_nothing(
    bridge: Bridge, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_postgresql(db)
    channel, delivery, body = _parsed(bridge, 4200)
    # A job the database refuses (no such status may exist): the row written before it goes too.
    monkeypatch.setattr(jobs, "READY", "x" * 100)
    intake._defer_stmt.cache_clear()
    try:
        with pytest.raises(DBAPIError):
            intake.defer(db, channel, delivery, body, bridge.clock)
    finally:
        intake._defer_stmt.cache_clear()
    assert deliveries(db) == [] and job_kinds(db) == []
    monkeypatch.undo()
    assert intake.defer(db, channel, delivery, body, bridge.clock).outcome == DEFERRED
