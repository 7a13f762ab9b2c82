"""Intake convergence on a real database: replays, races and out-of-order deliveries."""

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bridge.channels import ChannelsConfig
from bridge.clock import ManualClock
from bridge.intake import ingest
from bridge.orders import Address, CanonicalOrder, DeliveryKind, OrderLine, PaymentState
from bridge.store import DeliveryRecord, JobRecord, OrderEventRecord, OrderRecord, read_session
from bridge.storefronts.base import (
    Delivery,
    PrivacyRequest,
    PrivacyScope,
    Rejection,
    ReturnItemRequest,
    ReturnRequest,
)

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def make_order(external_id: str = "5001", minutes: int = 0, **changes: object) -> CanonicalOrder:
    order = CanonicalOrder(
        channel_id="shop-a",
        external_id=external_id,
        display_id=f"#{external_id}",
        currency="USD",
        payment_state=PaymentState.PAID,
        created_at=T0,
        updated_at=T0 + timedelta(minutes=minutes),
        lines=(OrderLine("11", "TSHIRT-RED-M", 1, "20.00"),),
        destination=Address(
            name="Canary Person", line1="1 Canary Rd", country_code="US", postal_code="10001"
        ),
    )
    return replace(order, **changes)  # type: ignore[arg-type]


def delivery(
    key: str, order: CanonicalOrder | None, kind: DeliveryKind = DeliveryKind.UPSERT, **kw: object
) -> Delivery:
    return Delivery(topic="orders/updated", delivery_key=key, kind=kind, order=order, **kw)  # type: ignore[arg-type]


def count(db: Engine, model: type) -> int:
    with read_session(db) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def orders(db: Engine) -> list[OrderRecord]:
    with read_session(db) as session:
        return list(session.execute(select(OrderRecord)).scalars())


def test_same_delivery_replayed_is_a_no_op(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = channels_config.channels["shop-a"]
    first = ingest(db, channel, delivery("d-1", make_order()), b"{}", clock)
    again = ingest(db, channel, delivery("d-1", make_order()), b"{}", clock)
    assert (first.duplicate, first.outcome) == (False, "created")
    assert (again.duplicate, again.outcome) == (True, "duplicate")
    assert count(db, DeliveryRecord) == 1
    assert count(db, JobRecord) == 1


def test_different_deliveries_for_one_order_converge(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = channels_config.channels["shop-a"]
    results = [ingest(db, channel, delivery(f"d-{n}", make_order()), b"{}", clock).outcome for n in range(3)]
    assert results == ["created", "unchanged", "unchanged"]
    assert len(orders(db)) == 1
    assert count(db, JobRecord) == 1, "one submission job per order"


def test_duplicate_storm_from_many_threads_stores_one_order_and_one_job(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = channels_config.channels["shop-a"]
    outcomes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def send(n: int) -> None:
        start.wait()
        try:
            for k in range(5):
                result = ingest(db, channel, delivery(f"storm-{k}", make_order("7777")), b"{}", clock)
                with lock:
                    outcomes.append(result.outcome)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert outcomes.count("created") == 1
    assert count(db, DeliveryRecord) == 5, "five distinct delivery ids, each stored once"
    assert len(orders(db)) == 1
    assert count(db, JobRecord) == 1


def test_out_of_order_deliveries_keep_the_freshest_state(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = channels_config.channels["shop-a"]
    ingest(db, channel, delivery("d-new", make_order(minutes=10, notes="newest")), b"{}", clock)
    stale = ingest(db, channel, delivery("d-old", make_order(minutes=5, notes="older")), b"{}", clock)
    assert stale.outcome == "stale"
    [row] = orders(db)
    assert row.canonical().notes == "newest"
    with read_session(db) as session:
        events = [
            e.event for e in session.execute(select(OrderEventRecord).order_by(OrderEventRecord.id)).scalars()
        ]
    assert events == ["intake:created", "intake:stale"]


def test_cancellation_before_the_order_is_honoured(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = channels_config.channels["woo-main"]
    ingest(db, channel, delivery("del-1", None, DeliveryKind.CANCEL, external_id="900"), b"{}", clock)
    late_create = ingest(
        db, channel, delivery("cre-1", make_order("900", channel_id="woo-main")), b"{}", clock
    )
    assert late_create.outcome in ("stale", "unchanged")
    [row] = orders(db)
    assert row.state == "cancelled"
    assert count(db, JobRecord) == 0, "a cancelled order is never queued for Amazon"


def test_update_after_submission_is_stored_and_queues_one_amendment(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    from bridge.store import write_session

    channel = channels_config.channels["shop-a"]
    ingest(db, channel, delivery("d-1", make_order()), b"{}", clock)
    with write_session(db) as session:
        row = session.execute(select(OrderRecord)).scalars().one()
        row.state = "submitted"
        session.add(row)
    result = ingest(db, channel, delivery("d-2", make_order(minutes=3, notes="changed")), b"{}", clock)
    again = ingest(db, channel, delivery("d-3", make_order(minutes=4, notes="changed again")), b"{}", clock)
    assert (result.outcome, again.outcome) == ("amended_after_submission", "amended_after_submission")
    [row] = orders(db)
    assert row.canonical().notes == "changed again"
    with read_session(db) as session:
        amend = session.execute(select(JobRecord).where(JobRecord.kind == "amend")).scalars().all()
    assert len(amend) == 1, "one waiting amendment job covers both changes"


def test_unknown_topics_are_stored_and_ignored(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = channels_config.channels["shop-a"]
    result = ingest(db, channel, Delivery(topic="products/update", delivery_key="p-1"), b"{}", clock)
    assert result.outcome == "ignored"
    assert count(db, DeliveryRecord) == 1 and count(db, OrderRecord) == 0


def test_privacy_requests_are_queued(db: Engine, channels_config: ChannelsConfig, clock: ManualClock) -> None:
    channel = channels_config.channels["shop-a"]
    request = PrivacyRequest(PrivacyScope.CUSTOMER_REDACT, ("5001",))
    result = ingest(
        db, channel, Delivery(topic="customers/redact", delivery_key="r-1", privacy=request), b"{}", clock
    )
    assert result.outcome == "privacy_queued"
    with read_session(db) as session:
        job = session.execute(select(JobRecord)).scalars().one()
    assert job.kind == "privacy" and job.payload["order_external_ids"] == ["5001"]


def test_a_first_delivery_is_one_transaction_with_its_outcome_on_the_inbox_row(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = channels_config.channels["shop-a"]
    result = ingest(db, channel, delivery("d-one", make_order()), b'{"id": 5001}', clock)
    with read_session(db) as session:
        stored = session.execute(select(DeliveryRecord)).scalars().one()
        event = session.execute(select(OrderEventRecord)).scalars().one()
        job = session.execute(select(JobRecord)).scalars().one()
    assert (stored.outcome, stored.order_id, stored.body) == ("created", result.order_id, b'{"id": 5001}')
    assert (event.order_id, event.delivery_id, event.event, event.to_state) == (
        result.order_id,
        stored.id,
        "intake:created",
        "received",
    )
    assert (job.kind, job.order_id, job.dedupe_key) == (
        "submit",
        result.order_id,
        f"submit:{result.order_id}",
    )


def test_a_refusal_after_the_inbox_row_leaves_nothing_behind(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    """A return for an order the bridge never received is refused (422) after the delivery row
    was inserted in the same transaction: the whole transaction rolls back."""
    channel = channels_config.channels["own-shop"]
    refused = Delivery(
        topic="order.return",
        delivery_key="ret-1",
        return_request=ReturnRequest("no-such-order", (ReturnItemRequest("1", 1),)),
    )
    with pytest.raises(Rejection) as caught:
        ingest(db, channel, refused, b"{}", clock)
    assert caught.value.status == 422
    assert (count(db, DeliveryRecord), count(db, JobRecord), count(db, OrderEventRecord)) == (0, 0, 0)
    # The storefront's retry, once the order exists, is then a first delivery, not a duplicate.
    ingest(db, channel, delivery("o-1", make_order("no-such-order", channel_id="own-shop")), b"{}", clock)
    again = ingest(db, channel, refused, b"{}", clock)
    assert (again.duplicate, again.outcome) == (False, "return_queued")
