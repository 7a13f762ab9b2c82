"""The worker runtime and the privacy stage on a real database."""

import json
import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session

from bridge import jobs
from bridge.bootstrap import Bridge
from bridge.intake import ingest
from bridge.pipeline.privacy import REDACTED_BODY, handle_privacy_job, purge_expired
from bridge.store import DeliveryRecord, JobRecord, OrderEventRecord, OrderRecord, read_session, write_session
from bridge.storefronts.base import Delivery, PrivacyRequest, PrivacyScope
from bridge.worker import JobContext, RetryLater, Worker
from tests.conftest import LogOutput
from tests.integration.test_intake_service import delivery, make_order


def add_job(bridge: Bridge, kind: str = "t", **payload: object) -> None:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, kind, payload=dict(payload), max_attempts=2)


def job_rows(bridge: Bridge) -> list[JobRecord]:
    """The jobs under test (a dead letter also queues an alert delivery, which is not one of them)."""
    with read_session(bridge.engine) as session:
        query = select(JobRecord).where(JobRecord.kind != "alert_delivery").order_by(JobRecord.id)
        return list(session.execute(query).scalars())


def ingest_an_order(bridge: Bridge) -> None:
    ingest(bridge.engine, bridge.config.channels["shop-a"], delivery("d1", make_order()), b"{}", bridge.clock)


def touch_the_order(session: Session) -> None:
    """A handler's write, flushed inside its finishing transaction."""
    row = session.execute(select(OrderRecord)).scalars().one()
    row.attention_reason = "touched"
    session.add(row)
    session.flush()


def attention_reason(bridge: Bridge) -> str:
    with read_session(bridge.engine) as session:
        return str(session.execute(select(OrderRecord)).scalars().one().attention_reason)


def test_handler_writes_and_job_completion_commit_together(bridge: Bridge) -> None:
    ingest_an_order(bridge)

    def handler(ctx: JobContext) -> None:
        with ctx.finish() as session:
            touch_the_order(session)

    add_job(bridge)
    assert Worker(bridge, {"t": handler}).run_once()
    assert [j.status for j in job_rows(bridge) if j.kind == "t"] == ["done"]
    assert attention_reason(bridge) == "touched"


def test_retry_later_then_dead_letter_with_a_safe_error(bridge: Bridge) -> None:
    def handler(ctx: JobContext) -> None:
        raise RetryLater("storefront throttled", after_s=0)

    add_job(bridge)
    worker = Worker(bridge, {"t": handler})
    assert worker.run_once() and worker.run_once()
    [job] = job_rows(bridge)
    assert (job.status, job.attempts, job.last_error) == ("dead", 2, "storefront throttled")


def test_unexpected_exception_text_is_neither_stored_nor_logged(
    bridge: Bridge, log_output: LogOutput
) -> None:
    def handler(ctx: JobContext) -> None:
        logging.getLogger("bridge.test").exception("handler trouble")
        raise ValueError("jane.canary@example.com")

    add_job(bridge)
    try:
        raise ValueError("jane.canary@example.com")
    except ValueError:
        Worker(bridge, {"t": handler}).run_once()  # the handler logs with this exception in flight
    [job] = job_rows(bridge)
    assert job.last_error == "ValueError"
    log_output.assert_free_of("jane.canary@example.com")
    assert "ValueError" in log_output.text


def test_a_worker_paused_past_its_lease_records_nothing(bridge: Bridge) -> None:
    """Worker A stalls beyond its lease; B takes the job over; A's late result is discarded."""
    results: list[str] = []

    def slow_handler(ctx: JobContext) -> None:
        takeover = jobs.claim(bridge.engine, ["t"])  # another worker, after A's lease ran out
        assert takeover is not None
        with write_session(bridge.engine) as session:
            jobs.complete(session, takeover)
        results.append("B done")
        with ctx.finish():
            results.append("A recorded")  # must not happen

    add_job(bridge)
    Worker(bridge, {"t": slow_handler}, lease_s=-1).run_once()
    assert results == ["B done"]
    [job] = job_rows(bridge)
    assert job.status == "done" and job.attempts == 2


def test_jobs_that_run_past_their_lease_keep_it_while_they_run(bridge: Bridge) -> None:
    """The worker's heartbeat renews its running jobs' leases: another worker looking for work
    meanwhile never gets one. One heartbeat thread serves all of a worker's jobs, here two at
    once (two threads sharing one `Worker`), and an idle worker keeps none."""
    looked: list[jobs.ClaimedJob | None] = []
    heartbeats: set[object] = set()

    def long_handler(ctx: JobContext) -> None:
        time.sleep(0.2)  # both jobs are claimed by now
        heartbeats.add(worker._heartbeat._thread)
        deadline = time.monotonic() + 1.3  # past two leases in all
        while time.monotonic() < deadline:
            looked.append(jobs.claim(bridge.engine, ["t"]))
            time.sleep(0.1)

    worker = Worker(bridge, {"t": long_handler}, lease_s=0.6)
    add_job(bridge)
    add_job(bridge)
    ran: list[bool] = []
    both = [threading.Thread(target=lambda: ran.append(worker.run_once())) for _ in range(2)]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(10)
    assert ran == [True, True]
    assert len(heartbeats) == 1 and None not in heartbeats, "one thread for both jobs"
    assert len(looked) > 20 and not any(looked), "never taken over"
    assert [(job.status, job.attempts) for job in job_rows(bridge)] == [("done", 1), ("done", 1)]
    deadline = time.monotonic() + 2
    while worker._heartbeat._thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker._heartbeat._thread is None, "no thread once no job runs"


def test_a_lease_that_ran_out_records_nothing_even_before_a_takeover(bridge: Bridge) -> None:
    recorded: list[str] = []

    def late_handler(ctx: JobContext) -> None:
        with ctx.finish():
            recorded.append("recorded")  # must not happen: the lease is over

    add_job(bridge)
    Worker(bridge, {"t": late_handler}, lease_s=-1).run_once()
    assert recorded == []
    [job] = job_rows(bridge)
    assert job.status == "running" and job.attempts == 1, "left for a takeover, its attempt spent"


def test_a_finishing_transaction_that_fails_undoes_the_completion_with_the_writes(bridge: Bridge) -> None:
    """The job is marked done first in its finishing transaction; a failure after that rolls
    the completion back together with the handler's writes, and the job is retried."""
    ingest_an_order(bridge)

    def failing_handler(ctx: JobContext) -> None:
        with ctx.finish() as session:
            touch_the_order(session)
            raise RetryLater("the storefront answered 503", after_s=0)

    add_job(bridge)
    assert Worker(bridge, {"t": failing_handler}).run_once()
    [job] = [j for j in job_rows(bridge) if j.kind == "t"]
    assert (job.status, job.attempts, job.last_error) == ("ready", 1, "the storefront answered 503")
    assert attention_reason(bridge) == ""


def test_customer_redact_removes_personal_data_of_listed_orders_only(bridge: Bridge) -> None:
    channel = bridge.config.channels["shop-a"]
    ingest(
        bridge.engine,
        channel,
        delivery("d1", make_order("1")),
        b'{"email": "canary@example.com"}',
        bridge.clock,
    )
    ingest(
        bridge.engine,
        channel,
        delivery("d2", make_order("2")),
        b'{"email": "keep@example.com"}',
        bridge.clock,
    )
    request = PrivacyRequest(PrivacyScope.CUSTOMER_REDACT, ("1",))
    ingest(
        bridge.engine, channel, Delivery("customers/redact", "r1", privacy=request), b'{"x": 1}', bridge.clock
    )
    Worker(bridge, {"privacy": handle_privacy_job}).drain()
    with read_session(bridge.engine) as session:
        rows = {r.external_id: r for r in session.execute(select(OrderRecord)).scalars()}
        bodies = {d.delivery_key: d.body for d in session.execute(select(DeliveryRecord)).scalars()}
        events = [e.event for e in session.execute(select(OrderEventRecord)).scalars()]
    assert rows["1"].canonical().destination is None and rows["1"].pii_purged_at is not None
    assert rows["1"].canonical().lines == make_order("1").lines, "operational data is kept"
    assert rows["2"].canonical().destination is not None
    assert bodies["d1"] == REDACTED_BODY and b"keep@" in bodies["d2"]
    kept = json.loads(bodies["r1"])  # the request itself: its kind and order ids, not the customer
    assert kept == {"redacted": True, "scope": "customer_redact", "orders": ["1"]}
    assert "privacy:purged" in events


def test_retention_purges_orders_idle_past_the_cutoff_in_any_state(bridge: Bridge) -> None:
    channel = bridge.config.channels["shop-a"]
    ingest(bridge.engine, channel, delivery("d1", make_order("1")), b"{}", bridge.clock)
    ingest(bridge.engine, channel, delivery("d2", make_order("2")), b"{}", bridge.clock)
    with write_session(bridge.engine) as session:
        row = session.execute(select(OrderRecord).where(OrderRecord.external_id == "1")).scalars().one()
        row.state = "shipped"
        session.add(row)
    bridge.clock.advance(31 * 86400)  # type: ignore[attr-defined]
    ingest(bridge.engine, channel, delivery("d3", make_order("3")), b"{}", bridge.clock)
    purged: list[int] = []
    add_job(bridge, "purge")
    Worker(bridge, {"purge": lambda ctx: purged.append(purge_expired(ctx, timedelta(days=30)))}).run_once()
    assert purged == [2], "the shipped order and the one left in `received`, not the new one"
    with read_session(bridge.engine) as session:
        rows = {r.external_id: r for r in session.execute(select(OrderRecord)).scalars()}
    assert rows["1"].pii_purged_at is not None and rows["2"].pii_purged_at is not None
    assert rows["3"].pii_purged_at is None
