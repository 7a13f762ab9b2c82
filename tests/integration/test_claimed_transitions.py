"""One-statement steps under a job's claim (`bridge.claimed_transitions`), on a real database.

On PostgreSQL a step writes exactly what `audit.transition` writes, or nothing at all; on SQLite
it never writes (the callers' general path does)."""

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bridge import jobs
from bridge.amazon.simulator import Simulator
from bridge.audit import transition
from bridge.bootstrap import Bridge
from bridge.claimed_transitions import step_under_claim
from bridge.orders import Event, OrderState
from bridge.store import JobRecord, OrderEventRecord, OrderRecord, lock_order, read_session, write_session
from bridge.worker import Worker
from tests.conftest import due_now
from tests.integration.test_submit import events, order_row, send_shopify

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SUBMISSION = {"version": "v1", "lines": [{"sku": "AMZ-1", "quantity": 2}]}


def _order(db: Engine, n: int, state: str = "received") -> int:
    created = NOW - timedelta(hours=1)
    with write_session(db) as session:
        row = OrderRecord(
            channel_id="shop-a",
            external_id=str(n),
            display_id=f"#{n}",
            state=state,
            data={"external_id": str(n), "lines": [{"sku": "A", "quantity": 2}], "note": "é"},
            created_at=created,
            updated_at=created,
        )
        session.add(row)
        session.flush()
        return row.id or 0


def _claimed(db: Engine, order_id: int, lease_s: float = 60) -> jobs.ClaimedJob:
    with write_session(db) as session:
        jobs.enqueue(session, "submit", order_id=order_id)
    job = jobs.claim(db, lease_s=lease_s)
    assert job is not None and job.order_id == order_id
    return job


def _digest(db: Engine, job: jobs.ClaimedJob) -> bytes | None:
    with read_session(db) as session:
        return jobs.load_order_unless_sibling(session, job).digest


def _snapshot(db: Engine, order_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The order's row and its audit rows, without ids and the order's own key columns."""
    with read_session(db) as session:
        row = session.get(OrderRecord, order_id)
        assert row is not None
        events = session.execute(
            select(OrderEventRecord)
            .where(OrderEventRecord.order_id == order_id)
            .order_by(OrderEventRecord.id)
        ).scalars()
        skip = {"id", "external_id", "display_id", "data", "order_id"}
        order = {k: v for k, v in row.model_dump().items() if k not in skip}
        return order, [{k: v for k, v in e.model_dump().items() if k not in skip} for e in events]


def _job_status(db: Engine, job: jobs.ClaimedJob) -> tuple[str, float | None]:
    with read_session(db) as session:
        record = session.get(JobRecord, job.id)
        assert record is not None
        return record.status, record.lease_until


def _step(db: Engine, job: jobs.ClaimedJob, order_id: int, **kwargs: Any) -> bool:
    arguments: dict[str, Any] = {
        "from_state": OrderState.RECEIVED,
        "event": Event.SUBMIT_STARTED,
        "now": NOW,
        "reason": "preview passed; creating at Amazon",
        "values": {"seller_fulfillment_order_id": f"shop-a-{order_id}", "submission": SUBMISSION},
        **kwargs,
    }
    return step_under_claim(db, job, order_id, **arguments)


def _postgresql_only(db: Engine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("one-statement steps are PostgreSQL's; on SQLite the callers' transaction writes")


def test_on_sqlite_a_step_writes_nothing_and_leaves_it_to_the_caller(db: Engine) -> None:
    if db.dialect.name != "sqlite":
        pytest.skip("SQLite's behaviour")
    order = _order(db, 1)
    job = _claimed(db, order)
    before = _snapshot(db, order)
    assert _digest(db, job) is None
    assert not _step(db, job, order, complete=True)
    assert _snapshot(db, order) == before and _job_status(db, job)[0] == "running"


def test_both_steps_write_exactly_what_transition_writes(db: Engine) -> None:
    """`submitting`, then `created` with the job's end: once through the ORM (`audit.transition`
    in a transaction, as the general path does) and once in one statement each. The two orders
    and their audit trails end up identical, field by field."""
    _postgresql_only(db)
    by_orm, by_statement = _order(db, 1), _order(db, 2)
    _claimed(db, by_orm)
    job = _claimed(db, by_statement)
    later = NOW + timedelta(seconds=2)
    with write_session(db) as session:
        row = lock_order(session, by_orm)
        row.seller_fulfillment_order_id = "shop-a-sfo"
        row.submission = SUBMISSION
        transition(session, row, Event.SUBMIT_STARTED, NOW, "preview passed; creating at Amazon")
    with write_session(db) as session:
        row = lock_order(session, by_orm)
        row.amazon_status = "Received"
        transition(session, row, Event.CREATED, later, "created at Amazon")
    steps = [
        {
            "digest": _digest(db, job),
            "values": {"seller_fulfillment_order_id": "shop-a-sfo2", "submission": SUBMISSION},
        },
        {
            "from_state": OrderState.SUBMITTING,
            "event": Event.CREATED,
            "now": later,
            "reason": "created at Amazon",
            "values": {"amazon_status": "Received"},
            "complete": True,
        },
    ]
    for step in steps:
        assert _step(db, job, by_statement, **step)
    orm_order, orm_events = _snapshot(db, by_orm)
    one_order, one_events = _snapshot(db, by_statement)
    assert (orm_order.pop("seller_fulfillment_order_id"), one_order.pop("seller_fulfillment_order_id")) == (
        "shop-a-sfo",
        "shop-a-sfo2",
    )
    assert one_order == orm_order
    assert (one_order["state"], one_order["amazon_status"], one_order["updated_at"]) == (
        "submitted",
        "Received",
        later,
    )
    assert one_events == orm_events
    assert [(e["event"], e["from_state"], e["to_state"], e["at"]) for e in one_events] == [
        ("submit_started", "received", "submitting", NOW),
        ("created", "submitting", "submitted", later),
    ]
    assert _job_status(db, job) == ("done", None)


def test_a_completing_step_ends_the_job_in_the_same_statement(db: Engine) -> None:
    _postgresql_only(db)
    order = _order(db, 1, state="submitting")
    job = _claimed(db, order)
    assert _step(
        db,
        job,
        order,
        from_state=OrderState.SUBMITTING,
        event=Event.CREATED,
        reason="created at Amazon",
        values={"amazon_status": "Received"},
        complete=True,
    )
    assert _job_status(db, job) == ("done", None)
    row, events = _snapshot(db, order)
    assert (row["state"], row["amazon_status"], row["updated_at"]) == ("submitted", "Received", NOW)
    assert [(e["event"], e["from_state"], e["to_state"]) for e in events] == [
        ("created", "submitting", "submitted")
    ]


@pytest.mark.parametrize("complete", [False, True])
@pytest.mark.parametrize("spoil", ["state", "content", "lost_lease", "taken_over", "finished"])
def test_a_step_writes_nothing_unless_every_condition_holds(db: Engine, spoil: str, complete: bool) -> None:
    """Order in another state, its content changed since it was read, the claim expired, taken
    over or finished: nothing is written (no half: the order, its audit trail and the job's row
    are as they were), and the caller's general path decides."""
    _postgresql_only(db)
    order = _order(db, 1)
    job = _claimed(db, order)
    digest = _digest(db, job)
    with write_session(db) as session:
        if spoil == "state":
            session.execute(update(OrderRecord).where(OrderRecord.id == order).values(state="cancelled"))
        elif spoil == "content":
            session.execute(update(OrderRecord).where(OrderRecord.id == order).values(data={"changed": True}))
        elif spoil == "lost_lease":
            session.execute(update(JobRecord).where(JobRecord.id == job.id).values(lease_until=0))
        elif spoil == "taken_over":
            session.execute(update(JobRecord).where(JobRecord.id == job.id).values(claim_token="another"))
        else:
            jobs.complete(session, job)
    before, job_before = _snapshot(db, order), _job_status(db, job)
    assert not _step(db, job, order, digest=digest, complete=complete)
    assert _snapshot(db, order) == before
    assert _job_status(db, job) == job_before


def _step_while_another_writes(db: Engine, change: str, **step: Any) -> tuple[bool, jobs.ClaimedJob, int]:
    """Run a step while another transaction holds the order's row, then let that one apply
    `change` (SQL on the order, `:id` bound) and commit. Checks that the step waits for the
    order with the job's row already locked (the job's row first, as on every path)."""
    order = _order(db, 1, state=step["from_state"].value)
    job = _claimed(db, order)
    step["digest"] = _digest(db, job) if step.pop("with_digest", False) else None
    result: list[bool] = []
    with db.connect() as other:
        other.execute(text("SELECT id FROM orders WHERE id = :id FOR UPDATE"), {"id": order})
        stepping = threading.Thread(target=lambda: result.append(_step(db, job, order, **step)))
        stepping.start()
        _wait_for_a_lock_wait(db)
        with db.connect() as third, pytest.raises(OperationalError):
            third.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE NOWAIT"), {"id": job.id})
        other.execute(text(change), {"id": order})
        other.commit()
    stepping.join(10)
    assert not stepping.is_alive()
    return result[0], job, order


def _wait_for_a_lock_wait(db: Engine) -> None:
    with db.connect() as conn:
        for _ in range(100):
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ).scalar_one()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the step never waited for the order's row")


@pytest.mark.parametrize(
    ("change", "step", "left"),
    [
        (  # a cancellation: the final step finds the order `cancel_requested`
            "UPDATE orders SET state = 'cancel_requested' WHERE id = :id",
            {"from_state": OrderState.SUBMITTING, "event": Event.CREATED, "complete": True},
            "cancel_requested",
        ),
        (  # an edit: `submitting` finds other content than the job planned from
            """UPDATE orders SET data = '{"external_id": "1", "lines": []}' WHERE id = :id""",
            {"from_state": OrderState.RECEIVED, "event": Event.SUBMIT_STARTED, "with_digest": True},
            "received",
        ),
    ],
)
def test_a_step_that_waited_for_a_change_writes_nothing(
    db: Engine, change: str, step: dict[str, Any], left: str
) -> None:
    """READ COMMITTED reads the order's row again once the other writer commits; the step sees
    the change and writes nothing, and the general path takes over (it ends the job, with a note)."""
    _postgresql_only(db)
    changed, job, order = _step_while_another_writes(db, change, values={}, **step)
    assert not changed
    row, events = _snapshot(db, order)
    assert row["state"] == left and events == []
    assert _job_status(db, job)[0] == "running"


def test_a_step_after_another_writer_left_the_order_as_expected_writes_on_top_of_it(db: Engine) -> None:
    """Another writer changed something else (the sync's `last_synced_at`) and kept the state:
    the step still applies, to the row that writer left, and keeps its change; the job ends
    with it and the audit row is written once."""
    _postgresql_only(db)
    synced = NOW - timedelta(minutes=5)
    changed, job, order = _step_while_another_writes(
        db,
        f"UPDATE orders SET last_synced_at = '{synced.isoformat()}' WHERE id = :id",
        from_state=OrderState.SUBMITTING,
        event=Event.CREATED,
        values={"amazon_status": "Received"},
        complete=True,
    )
    assert changed
    row, events = _snapshot(db, order)
    assert (row["state"], row["amazon_status"], row["last_synced_at"]) == ("submitted", "Received", synced)
    assert [e["event"] for e in events] == ["created"]
    assert _job_status(db, job) == ("done", None)


def test_a_step_that_writes_more_than_the_state_is_refused(db: Engine) -> None:
    """Parking sets the attention reason, approving the approvals: those go through `transition`."""
    order = _order(db, 1)
    job = _claimed(db, order)
    with pytest.raises(ValueError, match="writes more than the state"):
        _step(db, job, order, event=Event.PARK, values={})
    with pytest.raises(ValueError, match="writes more than the state"):
        _step(db, job, order, from_state=OrderState.AWAITING_APPROVAL, event=Event.APPROVE, values={})


def test_the_usual_submit_job_is_six_autocommitted_statements(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    """Claim, read the order, a rate token for the preview, `submitting`, a token for the create,
    `created` with the job's end: six round trips, none of them BEGIN or COMMIT (it was fifteen,
    with four transactions)."""
    _postgresql_only(bridge.engine)
    send_shopify(client, 1000)  # the first job also fetches the access token and sets up buckets
    due_now(bridge.engine)
    assert worker.drain() == 1
    send_shopify(client, 1001)
    due_now(bridge.engine)
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((" ".join(statement.split()[:3]), bool(cursor.connection.autocommit)))

    event.listen(bridge.engine, "before_cursor_execute", record)
    try:
        assert worker.run_once()
    finally:
        event.remove(bridge.engine, "before_cursor_execute", record)
    assert [what for what, _ in seen] == [
        "WITH expired AS",  # the claim
        "SELECT orders.id, orders.channel_id,",  # the order and the overlap check
        "UPDATE rate_buckets SET",  # getFulfillmentPreview's token
        "WITH held_claim AS",  # `submitting`
        "UPDATE rate_buckets SET",  # createFulfillmentOrder's token
        "WITH held_claim AS",  # `created`, the job done
    ]
    assert all(autocommit for _, autocommit in seen)
    assert events(bridge, order_row(bridge, "1001")) == ["intake:created", "submit_started", "created"]
    assert simulator.ledger.creates("shop-a-1001") == 1
