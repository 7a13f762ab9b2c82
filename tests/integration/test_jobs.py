"""The durable queue on a real database (SQLite file, or PostgreSQL when configured)."""

import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoResultFound, OperationalError

from bridge import jobs
from bridge.retry_policy import RetryPolicy
from bridge.store import JobRecord, OrderRecord, db_now, make_engine, read_session, write_session


def enqueue(db: Engine, kind: str = "submit", **kwargs: object) -> bool:
    with write_session(db) as session:
        return jobs.enqueue(session, kind, **kwargs)  # type: ignore[arg-type]


def statuses(db: Engine) -> list[str]:
    with read_session(db) as session:
        return [j.status for j in session.execute(select(JobRecord).order_by(JobRecord.id)).scalars()]


def test_active_jobs_with_the_same_key_are_enqueued_once(db: Engine) -> None:
    assert enqueue(db, dedupe_key="submit:1")
    assert not enqueue(db, dedupe_key="submit:1")
    job = jobs.claim(db)
    assert job is not None
    with write_session(db) as session:
        jobs.complete(session, job)
    assert enqueue(db, dedupe_key="submit:1"), "a finished job no longer blocks its key"


def test_a_running_job_does_not_swallow_a_new_job_with_its_key(db: Engine) -> None:
    """The running job read its state already; a change that arrives now needs its own job."""
    assert enqueue(db, dedupe_key="submit:1")
    running = jobs.claim(db)
    assert running is not None
    assert enqueue(db, dedupe_key="submit:1"), "queued beside the running one"
    assert not enqueue(db, dedupe_key="submit:1"), "but only one waits"
    assert statuses(db) == ["running", "ready"]


def test_a_retried_job_steps_aside_for_a_newer_waiting_job_with_its_key(db: Engine) -> None:
    enqueue(db, dedupe_key="submit:1")
    running = jobs.claim(db)
    assert running is not None
    enqueue(db, dedupe_key="submit:1")
    assert jobs.fail(db, running, "boom", retry_after_s=0) == "done"
    assert statuses(db) == ["done", "ready"]
    with read_session(db) as session:
        first = session.execute(select(JobRecord).order_by(JobRecord.id)).scalars().first()
    assert first is not None and first.last_error.startswith("superseded by job")


def test_a_released_job_steps_aside_too(db: Engine) -> None:
    enqueue(db, dedupe_key="submit:1")
    running = jobs.claim(db)
    assert running is not None
    enqueue(db, dedupe_key="submit:1")
    jobs.release(db, running, delay_s=5, note="waiting")
    assert statuses(db) == ["done", "ready"]


def test_retrying_a_dead_job_whose_key_waits_already_is_superseded(db: Engine) -> None:
    enqueue(db, dedupe_key="submit:1", max_attempts=1)
    dying = jobs.claim(db)
    assert dying is not None
    assert jobs.fail(db, dying, "boom") == "dead"
    enqueue(db, dedupe_key="submit:1")
    assert jobs.retry_dead(db, dying.id)
    assert statuses(db) == ["done", "ready"]


def test_claim_takes_due_jobs_in_order_and_skips_future_ones(db: Engine) -> None:
    enqueue(db, payload={"n": 1})
    enqueue(db, payload={"n": 2})
    enqueue(db, payload={"n": 3}, delay_s=3600)
    first, second = jobs.claim(db), jobs.claim(db)
    assert first is not None and second is not None
    assert (first.payload["n"], second.payload["n"]) == (1, 2)
    assert jobs.claim(db) is None


def test_a_job_is_stamped_and_claimed_by_the_database_clock(db: Engine) -> None:
    """The insert reads the clock itself (one value for its three times) and the claim hands
    the worker what the row says, without loading it as an object."""
    enqueue(db, payload={"n": 1}, max_attempts=3)
    enqueue(db, payload={"n": 2}, delay_s=30)
    with write_session(db) as session:
        now = db_now(session)
        first, later = session.execute(select(JobRecord).order_by(JobRecord.id)).scalars().all()
    assert first.created_at == first.updated_at == first.run_at and now - 5 < first.created_at <= now
    assert later.run_at - later.created_at == pytest.approx(30, abs=1e-3)
    job = jobs.claim(db, lease_s=60)
    assert job is not None and job.id == first.id
    assert (job.attempts, job.max_attempts, job.payload) == (1, 3, {"n": 1})
    assert job.run_at == first.run_at and job.run_at <= job.claimed_at < job.run_at + 5
    with read_session(db) as session:
        claimed = session.get(JobRecord, job.id)
    assert claimed is not None and (claimed.status, claimed.claim_token) == ("running", job.claim_token)
    assert claimed.lease_until == pytest.approx(job.claimed_at + 60)
    with write_session(db) as session:
        jobs.complete(session, job)
    assert statuses(db) == ["done", "ready"]


def test_claim_filters_by_kind(db: Engine) -> None:
    enqueue(db, kind="sync")
    assert jobs.claim(db, kinds=["submit"]) is None
    claimed = jobs.claim(db, kinds=["sync"])
    assert claimed is not None and claimed.kind == "sync"


def test_a_worker_past_its_lease_cannot_complete_a_job_taken_over(db: Engine) -> None:
    enqueue(db)
    stale = jobs.claim(db, lease_s=-1)  # its lease is already over
    assert stale is not None
    fresh = jobs.claim(db)
    assert fresh is not None and fresh.id == stale.id and fresh.claim_token != stale.claim_token
    with pytest.raises(jobs.LostLease), write_session(db) as session:
        jobs.complete(session, stale)
    with pytest.raises(jobs.LostLease):
        jobs.heartbeat(db, stale)
    assert statuses(db) == ["running"]
    with write_session(db) as session:
        jobs.complete(session, fresh)
    assert statuses(db) == ["done"]
    with pytest.raises(jobs.LostLease), write_session(db) as session:
        jobs.complete(session, fresh)  # done already: not held any more


def test_heartbeat_keeps_the_lease(db: Engine) -> None:
    enqueue(db)
    job = jobs.claim(db, lease_s=-1)
    assert job is not None
    with pytest.raises(jobs.LostLease):
        jobs.heartbeat(db, job)
    enqueue(db, kind="other")
    held = jobs.claim(db, kinds=["other"], lease_s=30)
    assert held is not None
    jobs.heartbeat(db, held, lease_s=60)
    assert jobs.claim(db, kinds=["other"]) is None


def test_a_heartbeat_on_a_lost_lease_does_not_hide_the_job_from_a_takeover(db: Engine) -> None:
    """While the stale worker's heartbeat transaction is still open, another worker's claim
    (`SKIP LOCKED`) finds the job: the heartbeat locks nothing it does not extend."""
    if db.dialect.name != "postgresql":
        pytest.skip("row locks and SKIP LOCKED are PostgreSQL's; SQLite serialises writers")
    enqueue(db)
    stale = jobs.claim(db, lease_s=-1)
    assert stale is not None
    other = make_engine(db.url.render_as_string(hide_password=False))
    taken: list[jobs.ClaimedJob | None] = []

    def claim_meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "jobs" in statement and not taken:
            taken.append(jobs.claim(other))  # the heartbeat's transaction has not ended yet

    event.listen(db, "after_cursor_execute", claim_meanwhile)
    try:
        with pytest.raises(jobs.LostLease):
            jobs.heartbeat(db, stale)
    finally:
        event.remove(db, "after_cursor_execute", claim_meanwhile)
        other.dispose()
    assert taken and taken[0] is not None and taken[0].id == stale.id


def test_failures_back_off_then_dead_letter_and_an_operator_can_retry(db: Engine) -> None:
    enqueue(db, max_attempts=2)
    job = jobs.claim(db)
    assert job is not None
    assert jobs.fail(db, job, "boom", retry_after_s=0) == "ready"
    job = jobs.claim(db)
    assert job is not None and job.attempts == 2
    assert jobs.fail(db, job, "boom again") == "dead"
    assert jobs.claim(db) is None
    assert jobs.retry_dead(db, job.id)
    again = jobs.claim(db)
    assert again is not None and again.attempts == 1


def test_failed_job_waits_for_its_retry_after(db: Engine) -> None:
    enqueue(db)
    job = jobs.claim(db)
    assert job is not None
    jobs.fail(db, job, "throttled", retry_after_s=600)
    assert jobs.claim(db) is None


def test_release_returns_a_job_without_spending_an_attempt(db: Engine) -> None:
    enqueue(db)
    job = jobs.claim(db)
    assert job is not None
    jobs.release(db, job)
    again = jobs.claim(db)
    assert again is not None and again.attempts == 1


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_s=1, cap_s=10, max_attempts=30)
    samples = [policy.delay(n) for n in range(1, 30) for _ in range(5)]
    assert all(0 <= s <= 10 for s in samples)
    assert len({round(s, 3) for s in samples}) > 10


def test_concurrent_claimers_take_each_job_exactly_once(db: Engine) -> None:
    for n in range(60):
        enqueue(db, payload={"n": n})
    taken: list[int] = []
    lock = threading.Lock()

    def drain() -> None:
        while (job := jobs.claim(db)) is not None:
            with write_session(db) as session:
                jobs.complete(session, job)
            with lock:
                taken.append(job.payload["n"])

    threads = [threading.Thread(target=drain) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == list(range(60))


def test_jobs_taken_alike_share_the_claim_and_only_those_still_held_are_completed(db: Engine) -> None:
    for n in range(5):
        enqueue(db, kind="intake", payload={"n": n})
    enqueue(db, kind="submit")
    enqueue(db, kind="intake", delay_s=3600)  # not due
    first = jobs.claim(db, kinds=["intake"])
    assert first is not None
    alike = jobs.claim_alike(db, first, limit=3)
    assert [job.payload["n"] for job in alike] == [1, 2, 3], "the oldest due of its kind, up to the limit"
    assert {(job.claim_token, job.attempts) for job in alike} == {(first.claim_token, 1)}
    with write_session(db) as session:  # another worker took the second over after its lease ran out
        session.execute(update(JobRecord).where(JobRecord.id == alike[1].id).values(claim_token="theirs"))
    with write_session(db) as session:
        held = jobs.held_alike(session, alike)
        assert [job.id for job in held] == [alike[0].id, alike[2].id]
        jobs.complete_alike(session, held)
    assert statuses(db) == ["running", "done", "running", "done", "ready", "ready", "ready"]

    again = jobs.claim_alike(db, first, limit=10)
    assert [job.payload["n"] for job in again] == [4], "never a job that ran before, nor one not due"
    jobs.return_alike(db, again, "the shared transaction failed")
    with read_session(db) as session:
        returned = session.get(JobRecord, again[0].id)
    assert returned is not None and (returned.status, returned.attempts) == ("ready", 1)
    assert (
        returned.last_error == "the shared transaction failed" and returned.claim_token == first.claim_token
    )
    assert jobs.claim_alike(db, first, limit=10) == [], "a returned job runs on its own"


def test_a_job_taken_alike_keeps_the_rate_token_reserved_for_it(db: Engine) -> None:
    """A job handed back for a rate token (`hand_back`: its attempt given back) is due again
    with the reservation; taken alike, the reservation goes with it as with a claim of its own."""
    enqueue(db, kind="intake")
    enqueue(db, kind="intake")
    first = jobs.claim(db, kinds=["intake"])
    assert first is not None
    with write_session(db) as session:
        session.execute(update(JobRecord).where(JobRecord.id != first.id).values(reserved="acct:op"))
    (alike,) = jobs.claim_alike(db, first, limit=5)
    assert alike.reserved == "acct:op"
    with read_session(db) as session:
        row = session.get(JobRecord, alike.id)
    assert row is not None and row.reserved is None, "the reservation belongs to this run only"


def _orders(db: Engine, count: int) -> list[int]:
    now = datetime.now(UTC)
    with write_session(db) as session:
        rows = [
            OrderRecord(
                channel_id=f"shop-{n}",
                external_id=str(n),
                display_id=f"#{n}",
                state="received",
                data={},
                created_at=now,
                updated_at=now,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id or 0 for row in rows]


def test_of_two_running_jobs_of_one_order_and_kind_only_the_later_claimed_waits(db: Engine) -> None:
    """`sibling_running`: submit, amend and push-back jobs of one order never overlap."""
    order, other = _orders(db, 2)
    enqueue(db, order_id=order, dedupe_key="a")
    enqueue(db, order_id=order, dedupe_key="b")
    enqueue(db, order_id=other)
    enqueue(db, kind="amend", order_id=order)
    first, second, elsewhere, amend = (jobs.claim(db) for _ in range(4))
    assert first and second and elsewhere and amend
    assert (first.order_channel_id, elsewhere.order_channel_id) == ("shop-0", "shop-1"), "read by the claim"

    def waits(job: jobs.ClaimedJob, **kwargs: bool) -> bool:
        with read_session(db) as session:
            running = jobs.sibling_running(session, job, **kwargs)
            if not kwargs:  # the submit job's one-statement read agrees
                row, overlapping, _digest = jobs.load_order_unless_sibling(session, job)
                assert row is not None and row.id == job.order_id and overlapping is running
            return running

    assert (waits(first), waits(second)) == (False, True)
    assert not waits(elsewhere) and not waits(amend), "another order, another kind"
    assert not waits(second, same_key=True), "narrowed to its own dedupe key"
    with write_session(db) as session:  # the first one's lease ran out: it no longer counts
        session.execute(update(JobRecord).where(JobRecord.id == first.id).values(lease_until=0))
    assert not waits(second)
    with write_session(db) as session:
        session.execute(
            update(JobRecord).where(JobRecord.id == first.id).values(lease_until=db_now(session) + 60)
        )
        jobs.complete(session, first)
    assert not waits(second), "finished"


def test_a_purged_order_reads_as_none_and_cannot_be_locked(db: Engine) -> None:
    (order,) = _orders(db, 1)
    enqueue(db, order_id=order)
    job = jobs.claim(db)
    assert job is not None
    with write_session(db) as session:
        session.execute(update(JobRecord).where(JobRecord.id == job.id).values(order_id=None))
        session.execute(delete(OrderRecord).where(OrderRecord.id == order))
    with read_session(db) as session:
        assert jobs.load_order_unless_sibling(session, replace(job, order_id=order)) == (None, False, None)
    with pytest.raises(NoResultFound), write_session(db) as session:  # held, but no order to lock
        jobs.lock_order_held(session, job, order)


def test_lock_order_held_checks_the_claim_and_locks_the_order(db: Engine) -> None:
    (order,) = _orders(db, 1)
    enqueue(db, order_id=order)
    stale = jobs.claim(db, lease_s=-1)  # its lease is already over
    assert stale is not None
    with pytest.raises(jobs.LostLease), write_session(db) as session:
        jobs.lock_order_held(session, stale, order)
    held = jobs.claim(db)  # taken over
    assert held is not None and held.id == stale.id
    with pytest.raises(jobs.LostLease), write_session(db) as session:
        jobs.lock_order_held(session, stale, order)
    with write_session(db) as session:
        row = jobs.lock_order_held(session, held, order)
        assert row.id == order and row.state == "received"
        if db.dialect.name == "postgresql":  # both rows are locked until the commit
            other = make_engine(db.url.render_as_string(hide_password=False))
            try:
                for table, row_id in (("orders", order), ("jobs", held.id)):
                    with pytest.raises(OperationalError), other.connect() as conn:
                        conn.execute(text(f"SELECT id FROM {table} WHERE id = {row_id} FOR UPDATE NOWAIT"))
            finally:
                other.dispose()
    with write_session(db) as session:
        jobs.complete(session, held)
    with pytest.raises(jobs.LostLease), write_session(db) as session:
        jobs.lock_order_held(session, held, order)  # done: not held any more
