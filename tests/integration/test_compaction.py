"""Bounded tables: the `compact` job removes old finished jobs and routine audit rows, nothing else."""

import pytest
from sqlalchemy import select, text, update

from bridge import alerts, jobs
from bridge.audit import note, transition
from bridge.bootstrap import Bridge
from bridge.intake import ingest
from bridge.orders import Event
from bridge.pipeline import compaction
from bridge.pipeline.compaction import COMPACTED_EVENT, JOB_COMPACT, handle_compact
from bridge.scheduler import Clock
from bridge.store import (
    AlertRecord,
    JobRecord,
    OrderEventRecord,
    OrderRecord,
    db_now,
    read_session,
    write_session,
)
from bridge.worker import Worker
from tests.integration.test_intake_service import delivery, make_order

HOUR = 3600.0


def add_job(bridge: Bridge, kind: str, order_id: int | None = None) -> int:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, kind, order_id=order_id)
        return int(session.execute(text("SELECT max(id) FROM jobs")).scalar_one())


def set_job(bridge: Bridge, job_id: int, status: str, hours_ago: float) -> None:
    with write_session(bridge.engine) as session:
        now = db_now(session)
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id)
            .values(status=status, updated_at=now - hours_ago * HOUR, lease_until=None)
        )


def job_ids(bridge: Bridge, kind: str | None = None) -> set[int]:
    with read_session(bridge.engine) as session:
        query = select(JobRecord.id)
        if kind:
            query = query.where(JobRecord.kind == kind)
        return set(session.execute(query).scalars())


def run_compaction(bridge: Bridge) -> None:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_COMPACT, payload={"retention_days": 30})
    assert Worker(bridge, {JOB_COMPACT: handle_compact}).drain() == 1
    with read_session(bridge.engine) as session:
        statuses = set(
            session.execute(select(JobRecord.status).where(JobRecord.kind == JOB_COMPACT)).scalars()
        )
    assert statuses == {"done"}, "the compaction job finished"


def test_finished_jobs_past_the_history_are_deleted_and_everything_else_stays(bridge: Bridge) -> None:
    old_done = add_job(bridge, "submit")
    set_job(bridge, old_done, "done", hours_ago=25)
    recent_done = add_job(bridge, "submit")
    set_job(bridge, recent_done, "done", hours_ago=23)
    old_dead = add_job(bridge, "push")
    set_job(bridge, old_dead, "dead", hours_ago=500)
    ready = add_job(bridge, "sync")
    running = add_job(bridge, "track")
    with write_session(bridge.engine) as session:
        session.execute(update(JobRecord).where(JobRecord.id == running).values(status="running"))
        session.execute(update(JobRecord).where(JobRecord.id == running).values(lease_until=9e12))

    run_compaction(bridge)

    assert job_ids(bridge) - job_ids(bridge, JOB_COMPACT) == {recent_done, old_dead, ready, running}
    claimed = jobs.claim(bridge.engine, ["sync"])
    assert claimed is not None and claimed.id == ready, "claiming works after compaction"


def test_deletes_run_in_batches_until_none_is_left(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compaction, "BATCH", 3)
    old = [add_job(bridge, "submit") for _ in range(10)]
    for job_id in old:
        set_job(bridge, job_id, "done", hours_ago=48)
    run_compaction(bridge)
    assert not (job_ids(bridge) & set(old))


def test_a_run_stops_after_its_batch_budget_and_the_next_run_goes_on(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "BATCH", 2)
    monkeypatch.setattr(compaction, "MAX_BATCHES", 2)
    old = [add_job(bridge, "submit") for _ in range(7)]
    for job_id in old:
        set_job(bridge, job_id, "done", hours_ago=48)
    run_compaction(bridge)
    assert len(job_ids(bridge) & set(old)) == 3
    run_compaction(bridge)
    assert not (job_ids(bridge) & set(old))


def _order(bridge: Bridge, external_id: str) -> int:
    channel = bridge.config.channels["shop-a"]
    result = ingest(
        bridge.engine, channel, delivery(f"d{external_id}", make_order(external_id)), b"{}", bridge.clock
    )
    assert result.order_id is not None
    return result.order_id


def test_dead_jobs_go_only_with_their_purged_order_and_their_alert_is_cleared(bridge: Bridge) -> None:
    purged, kept = _order(bridge, "1"), _order(bridge, "2")
    dead_purged, dead_kept = add_job(bridge, "push", purged), add_job(bridge, "push", kept)
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        for job_id in (dead_purged, dead_kept):
            alerts.raise_alert(session, key=f"job_dead:{job_id}", kind="job_dead", message="dead", now=now)
        session.execute(update(OrderRecord).where(OrderRecord.id == purged).values(pii_purged_at=now))
    set_job(bridge, dead_purged, "dead", hours_ago=1)
    set_job(bridge, dead_kept, "dead", hours_ago=1000)

    run_compaction(bridge)

    remaining = job_ids(bridge)
    assert dead_purged not in remaining and dead_kept in remaining
    with read_session(bridge.engine) as session:
        open_keys = {
            a.key
            for a in session.execute(select(AlertRecord).where(AlertRecord.cleared_at.is_(None))).scalars()  # type: ignore[union-attr]
        }
    assert open_keys == {f"job_dead:{dead_kept}"}


def _trail(bridge: Bridge, order_id: int) -> None:
    """A realistic trail: intake, submission, many Amazon notes, a push, the final state change."""
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        row = session.get(OrderRecord, order_id)
        assert row is not None
        note(session, row, "intake:duplicate_content", now, "same content again")
        transition(session, row, Event.SUBMIT_STARTED, now, "preview passed")
        transition(session, row, Event.CREATED, now, "created at Amazon")
        for status in ("Received -> Planning", "Planning -> Processing", "Processing -> Complete"):
            note(session, row, "amazon:status", now, status)
        note(session, row, "amazon:tracking", now, "package 1: IN_TRANSIT")
        note(session, row, "ignored:created", now, "order is submitted")
        note(session, row, "pushed:shipment", now, "package 1 tracking pushed to the storefront")
        note(session, row, "alert", now, "Amazon split the order")
        row.state = "shipped"  # as sync records it once every package shipped
        session.add(row)
        note(session, row, "amazon:tracking", now, "package 1: DELIVERED")


def events(bridge: Bridge, order_id: int) -> list[str]:
    with read_session(bridge.engine) as session:
        rows = session.execute(
            select(OrderEventRecord)
            .where(OrderEventRecord.order_id == order_id)
            .order_by(OrderEventRecord.at, OrderEventRecord.id)
        ).scalars()
        return [r.event for r in rows]


def test_audit_trails_of_old_finished_orders_keep_what_matters(bridge: Bridge) -> None:
    shipped = _order(bridge, "1")
    _trail(bridge, shipped)
    bridge.clock.advance(31 * 86400)  # type: ignore[attr-defined]
    recent = _order(bridge, "2")
    _trail(bridge, recent)
    open_order = _order(bridge, "3")
    before_recent, before_open = events(bridge, recent), events(bridge, open_order)

    run_compaction(bridge)

    assert events(bridge, shipped) == [
        "intake:created",
        "submit_started",
        "created",
        "pushed:shipment",
        "alert",
        "amazon:tracking",  # the last entry stays
        COMPACTED_EVENT,
    ]
    with read_session(bridge.engine) as session:
        summary = session.execute(
            select(OrderEventRecord).where(OrderEventRecord.event == COMPACTED_EVENT)
        ).scalar_one()
        row = session.get(OrderRecord, shipped)
    assert summary.reason == (
        "6 routine entries removed: 3 amazon:status, 1 amazon:tracking, 1 ignored:created, "
        "1 intake:duplicate_content"
    )
    assert row is not None and row.audit_compacted_at is not None
    assert events(bridge, recent) == before_recent, "finished within the retention period: untouched"
    assert events(bridge, open_order) == before_open

    run_compaction(bridge)
    assert events(bridge, shipped).count(COMPACTED_EVENT) == 1, "an order is compacted once"


def test_the_clock_schedules_compaction(bridge: Bridge) -> None:
    clock = Clock(bridge)
    assert clock.scheduler.get_job("compact") is not None
