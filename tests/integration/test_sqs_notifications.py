"""Amazon notifications end to end over a real (local) SQS: the simulator publishes to moto's
server, the consumer stores each hint and deletes the message, the worker reads the order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bridge.alerts import list_alerts
from bridge.amazon.accounts import build_notifications_api
from bridge.amazon.limiter import MemoryBuckets
from bridge.amazon.notifications import NotificationResult, ingest_notification
from bridge.amazon.simulator import Simulator
from bridge.amazon.simulator.publisher import NotificationPublisher, SqsSink
from bridge.amazon.sqs_consumer import (
    ALERT_DEAD,
    ALERT_DOWN,
    ALERT_REFUSED,
    ConsumerPolicy,
    SqsConsumer,
    sqs_client,
)
from bridge.amazon.subscriptions import subscribe
from bridge.bootstrap import Bridge
from bridge.clock import Clock, ManualClock
from bridge.pipeline.sync import JOB_PUSH, JOB_SYNC_ORDER
from bridge.runtime import HANDLERS
from bridge.settings import SqsSettings
from bridge.store import DeliveryRecord, JobRecord, make_engine, read_session
from bridge.worker import Worker
from tests.integration.test_sync import notification, row, send
from tests.sqs_support import REGION, LocalSqs, Queue

HOUR = 3600


def consumer_for(engine: Engine, clock: Clock, queue: Queue, **policy: Any) -> SqsConsumer:
    settings = SqsSettings(queue_url=queue.url, endpoint_url=queue.sqs.endpoint_url, region=REGION, wait_s=1)
    options = {"wait_s": 1, "retry_visibility_s": 0, **policy}
    return SqsConsumer(engine, clock, sqs_client(settings), queue.url, ConsumerPolicy(**options))


def amazon_deliveries(engine: Engine) -> list[DeliveryRecord]:
    with read_session(engine) as session:
        query = (
            select(DeliveryRecord).where(DeliveryRecord.channel_id == "amazon").order_by(DeliveryRecord.id)
        )
        return list(session.execute(query).scalars())


def sync_jobs(engine: Engine, order_id: int) -> int:
    with read_session(engine) as session:
        query = (
            select(func.count())
            .select_from(JobRecord)
            .where(JobRecord.kind == JOB_SYNC_ORDER, JobRecord.order_id == order_id)
        )
        return int(session.execute(query).scalar_one())


@pytest.fixture
def amazon_worker(bridge: Bridge, worker: Worker) -> Worker:
    """Every stage but push-back (no storefront is running)."""
    return Worker(bridge, {k: v for k, v in HANDLERS.items() if k != JOB_PUSH}, services=worker.services)


def test_a_shipped_order_reaches_the_bridge_through_sqs_and_the_messages_are_deleted(
    client: FlaskClient,
    bridge: Bridge,
    amazon_worker: Worker,
    simulator: Simulator,
    clock: ManualClock,
    sqs_queue: Queue,
) -> None:
    send(client, 7001)
    amazon_worker.drain()
    api = build_notifications_api(bridge, "main", simulator=simulator, buckets=MemoryBuckets(clock))
    subscribe(api, sqs_queue.arn)
    api.close()
    publisher = NotificationPublisher(simulator, SqsSink(sqs_queue.sqs.endpoint_url))
    consumer = consumer_for(bridge.engine, clock, sqs_queue)
    order = row(bridge, "7001")
    assert order.id is not None

    assert publisher.publish_due() == 1  # the order was received
    assert consumer.run_once().outcomes == {"queued": 1}
    assert sync_jobs(bridge.engine, order.id) == 1
    amazon_worker.drain()

    clock.advance(5 * HOUR)
    assert publisher.publish_due() == 2  # the order is complete, its shipment shipped
    assert publisher.publish_due() == 0  # nothing new
    gets = simulator.ledger.calls("getFulfillmentOrder")
    assert consumer.run_once().outcomes == {"queued": 2}
    amazon_worker.drain()
    assert simulator.ledger.calls("getFulfillmentOrder") == gets + 1  # two hints, one read
    shipped = row(bridge, "7001")
    assert (shipped.state, shipped.amazon_status) == ("shipped", "Complete")
    assert sqs_queue.counts() == (0, 0)
    assert [d.outcome for d in amazon_deliveries(bridge.engine)] == ["queued"] * 3


def test_the_simulator_publishes_only_while_a_seller_is_subscribed(
    client: FlaskClient,
    bridge: Bridge,
    amazon_worker: Worker,
    simulator: Simulator,
    clock: ManualClock,
    sqs_queue: Queue,
) -> None:
    send(client, 7002)
    amazon_worker.drain()
    publisher = NotificationPublisher(simulator, SqsSink(sqs_queue.sqs.endpoint_url))
    assert publisher.publish_due() == 0
    api = build_notifications_api(bridge, "main", simulator=simulator, buckets=MemoryBuckets(clock))
    subscribe(api, sqs_queue.arn)
    api.close()
    assert publisher.publish_due() == 0  # what changed before the subscription is not replayed
    clock.advance(15 * 60)
    assert publisher.publish_due() == 1  # Planning
    assert len(sqs_queue.receive()) == 1


def test_a_duplicate_message_is_a_no_op_and_is_deleted(
    bridge: Bridge, clock: ManualClock, sqs_queue: Queue
) -> None:
    body = notification("shop-a-404", "dup-1")
    sqs_queue.send(body)
    sqs_queue.send(body)  # Amazon (or SQS) delivering the same notification twice
    consumer = consumer_for(bridge.engine, clock, sqs_queue)
    outcomes: dict[str, int] = {}
    for _ in range(2):
        for key, value in consumer.run_once().outcomes.items():
            outcomes[key] = outcomes.get(key, 0) + value
    assert outcomes == {"unknown_order": 1, "duplicate": 1}
    assert len(amazon_deliveries(bridge.engine)) == 1
    assert sqs_queue.counts() == (0, 0)


def test_a_malformed_message_is_kept_as_refused_with_an_alert_and_deleted(
    bridge: Bridge, clock: ManualClock, sqs_queue: Queue
) -> None:
    message_id = sqs_queue.send("this is not json")
    sqs_queue.send({"NotificationType": "FULFILLMENT_ORDER_STATUS"})  # JSON, wrong shape
    report = consumer_for(bridge.engine, clock, sqs_queue).run_once()
    assert report.outcomes == {"refused": 2}
    kept = amazon_deliveries(bridge.engine)
    assert (kept[0].outcome, kept[0].delivery_key) == ("refused", f"sqs:{message_id}")
    assert kept[0].body == b"this is not json"
    alerts = [a for a in list_alerts(bridge.engine) if a.kind == ALERT_REFUSED]
    assert len(alerts) == 1 and alerts[0].occurrences == 2  # one alert per cause, counted
    assert "schema_violation" in alerts[0].message and f"sqs:{message_id}" not in alerts[0].message
    assert sqs_queue.counts() == (0, 0)


def test_a_database_outage_leaves_the_message_on_the_queue(
    bridge: Bridge, clock: ManualClock, sqs_queue: Queue, tmp_path: Path
) -> None:
    sqs_queue.send(notification("shop-a-1", "outage-1"))
    sqs_queue.send(notification("shop-a-2", "outage-2"))
    down = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite3'}")
    report = consumer_for(down, clock, sqs_queue).run_once()
    assert report.database_down
    assert report.outcomes == {"left": 2}
    again = sqs_queue.receive()  # handed back at once (retry_visibility_s=0), nothing deleted
    assert sorted(m["Attributes"]["ApproximateReceiveCount"] for m in again) == ["2", "2"]
    assert amazon_deliveries(bridge.engine) == []


def test_a_message_that_keeps_failing_is_set_aside_with_an_alert(
    bridge: Bridge, clock: ManualClock, sqs_queue: Queue
) -> None:
    def failing(engine: Engine, body: bytes, clock: Clock) -> NotificationResult:
        raise RuntimeError("a bug that hits this notification every time")

    sqs_queue.send(notification("shop-a-9", "poison-1"))
    sqs_queue.send(notification("shop-a-9", "fine-1"))
    consumer = consumer_for(bridge.engine, clock, sqs_queue, max_receives=3)
    consumer._ingest = lambda engine, body, clock: (  # type: ignore[method-assign]
        failing(engine, body, clock) if b"poison-1" in body else ingest_notification(engine, body, clock)
    )
    seen: list[dict[str, int]] = [consumer.run_once().outcomes for _ in range(3)]
    assert seen[0] == {"retry": 1, "unknown_order": 1}
    assert seen[1] == {"retry": 1}
    assert seen[2] == {"dead": 1}
    dead = [d for d in amazon_deliveries(bridge.engine) if d.outcome == "dead"]
    assert len(dead) == 1 and b"poison-1" in dead[0].body
    alert = next(a for a in list_alerts(bridge.engine) if a.kind == ALERT_DEAD)
    assert "RuntimeError" in alert.message and "failed 3 times" in alert.message
    assert sqs_queue.counts() == (0, 0)


def test_an_unreachable_queue_raises_an_alert_that_clears_when_it_answers(
    bridge: Bridge, clock: ManualClock, local_sqs: LocalSqs
) -> None:
    client = local_sqs.client()
    url = client.create_queue(QueueName="fba-bridge-later")["QueueUrl"]
    client.delete_queue(QueueUrl=url)
    queue = Queue(local_sqs, url, "")
    consumer = consumer_for(bridge.engine, clock, queue, alert_after_s=300)
    assert consumer.run_once().receive_failed
    clock.advance(301)
    assert consumer.run_once().receive_failed
    alert = next(a for a in list_alerts(bridge.engine) if a.kind == ALERT_DOWN)
    assert "NonExistentQueue" in alert.message
    client.create_queue(QueueName="fba-bridge-later")
    assert not consumer.run_once().receive_failed
    assert [a for a in list_alerts(bridge.engine) if a.kind == ALERT_DOWN] == []


@pytest.fixture
def running() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(10)


def test_stop_ends_the_loop_after_the_current_batch(
    bridge: Bridge, clock: ManualClock, sqs_queue: Queue, running: list[threading.Thread]
) -> None:
    sqs_queue.send(notification("shop-a-5", "while-running"))
    consumer = consumer_for(bridge.engine, clock, sqs_queue)
    thread = threading.Thread(target=consumer.run_forever)
    running.append(thread)
    thread.start()
    deadline = time.monotonic() + 30
    while not amazon_deliveries(bridge.engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    consumer.stop()
    thread.join(5)  # at most one more long poll (wait_s=1)
    assert not thread.is_alive()
    assert sqs_queue.counts() == (0, 0)
