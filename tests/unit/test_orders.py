from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bridge.orders import (
    FINAL,
    TRANSITIONS,
    Address,
    CanonicalOrder,
    DeliveryKind,
    Event,
    IllegalTransition,
    IntakePolicy,
    OrderLine,
    OrderState,
    Outcome,
    PaymentState,
    StoredOrder,
    decide_intake,
    next_state,
)

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
POLICY = IntakePolicy()


def order(**changes: object) -> CanonicalOrder:
    base = CanonicalOrder(
        channel_id="shop-a",
        external_id="1001",
        display_id="#1001",
        currency="USD",
        payment_state=PaymentState.PAID,
        created_at=T0,
        updated_at=T0,
        lines=(OrderLine("1", "TSHIRT-RED-M", 2, "19.99"),),
        destination=Address(name="Test Person", line1="1 Main St", country_code="US", postal_code="10001"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def later(seconds: int = 60) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_new_paid_order_is_received_and_queued_for_submission() -> None:
    decision = decide_intake(None, order(), DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.CREATED
    assert decision.state is OrderState.RECEIVED
    assert decision.enqueue_submit


def test_new_unpaid_order_waits_for_payment_without_a_job() -> None:
    decision = decide_intake(None, order(payment_state=PaymentState.PENDING), DeliveryKind.UPSERT, POLICY)
    assert decision.state is OrderState.AWAITING_PAYMENT
    assert not decision.enqueue_submit


def test_unpaid_order_is_submitted_when_channel_holds_at_amazon() -> None:
    policy = IntakePolicy(submit_unpaid_on_hold=True)
    decision = decide_intake(None, order(payment_state=PaymentState.PENDING), DeliveryKind.UPSERT, policy)
    assert decision.state is OrderState.AWAITING_PAYMENT
    assert decision.enqueue_submit


def test_payment_update_moves_waiting_order_to_received_and_queues_it() -> None:
    stored = StoredOrder(OrderState.AWAITING_PAYMENT, order(payment_state=PaymentState.PENDING))
    decision = decide_intake(stored, order(updated_at=later()), DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.AMENDED
    assert decision.state is OrderState.RECEIVED
    assert decision.events == (Event.PAID,)
    assert decision.enqueue_submit


def test_identical_redelivery_changes_nothing() -> None:
    stored = StoredOrder(OrderState.RECEIVED, order())
    decision = decide_intake(stored, order(), DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.order is None


def test_stale_delivery_never_overwrites_fresher_state() -> None:
    fresh = order(updated_at=later(120), notes="new note")
    stored = StoredOrder(OrderState.RECEIVED, fresh)
    decision = decide_intake(
        stored, order(updated_at=later(60), notes="old note"), DeliveryKind.UPSERT, POLICY
    )
    assert decision.outcome is Outcome.STALE
    assert decision.order is None


def test_newer_update_amends_an_order_not_yet_submitted() -> None:
    stored = StoredOrder(OrderState.RECEIVED, order())
    amended = order(updated_at=later(), lines=(OrderLine("1", "TSHIRT-RED-M", 3, "19.99"),))
    decision = decide_intake(stored, amended, DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.AMENDED
    assert decision.order == amended


def test_amending_a_parked_order_re_evaluates_it() -> None:
    stored = StoredOrder(OrderState.NEEDS_ATTENTION, order())
    decision = decide_intake(stored, order(updated_at=later(), notes="fixed"), DeliveryKind.UPSERT, POLICY)
    assert decision.state is OrderState.RECEIVED
    assert decision.events == (Event.RETRY,)
    assert decision.enqueue_submit


@pytest.mark.parametrize("state", [OrderState.SUBMITTED, OrderState.PARTIALLY_SHIPPED, OrderState.SHIPPED])
def test_update_after_submission_is_recorded_not_applied(state: OrderState) -> None:
    stored = StoredOrder(state, order())
    decision = decide_intake(stored, order(updated_at=later(), notes="changed"), DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.RECORDED_AFTER_SUBMISSION
    assert decision.order is None
    assert decision.state is state
    assert not decision.enqueue_submit


def test_payment_for_order_held_at_amazon_asks_for_release() -> None:
    stored = StoredOrder(OrderState.HELD_AT_AMAZON, order(payment_state=PaymentState.PENDING))
    decision = decide_intake(stored, order(updated_at=later()), DeliveryKind.UPSERT, POLICY)
    assert decision.enqueue_release
    assert not decision.enqueue_submit


def test_cancellation_before_the_order_arrives_leaves_a_tombstone_that_wins() -> None:
    tomb = decide_intake(None, order(updated_at=later()), DeliveryKind.CANCEL, POLICY)
    assert tomb.outcome is Outcome.TOMBSTONED
    assert tomb.state is OrderState.CANCELLED
    assert tomb.order is not None and tomb.order.cancelled
    stored = StoredOrder(OrderState.CANCELLED, tomb.order)
    create = decide_intake(stored, order(), DeliveryKind.UPSERT, POLICY)
    assert create.state is OrderState.CANCELLED
    assert not create.enqueue_submit


def test_cancellation_before_submission_cancels_outright() -> None:
    stored = StoredOrder(OrderState.RECEIVED, order())
    decision = decide_intake(stored, order(updated_at=later()), DeliveryKind.CANCEL, POLICY)
    assert decision.state is OrderState.CANCELLED
    assert not decision.enqueue_cancel


def test_cancellation_after_submission_asks_amazon_to_cancel() -> None:
    stored = StoredOrder(OrderState.SUBMITTED, order())
    decision = decide_intake(stored, order(updated_at=later()), DeliveryKind.CANCEL, POLICY)
    assert decision.state is OrderState.CANCEL_REQUESTED
    assert decision.enqueue_cancel


def test_a_stale_cancellation_still_cancels_but_keeps_fresher_content() -> None:
    fresh = order(updated_at=later(300), notes="fresh")
    decision = decide_intake(StoredOrder(OrderState.RECEIVED, fresh), order(), DeliveryKind.CANCEL, POLICY)
    assert decision.state is OrderState.CANCELLED
    assert decision.order is not None and decision.order.notes == "fresh" and decision.order.cancelled


def test_cancelled_flag_in_an_update_is_a_cancellation() -> None:
    stored = StoredOrder(OrderState.AWAITING_PAYMENT, order(payment_state=PaymentState.PENDING))
    decision = decide_intake(stored, order(updated_at=later(), cancelled=True), DeliveryKind.UPSERT, POLICY)
    assert decision.state is OrderState.CANCELLED


def test_cancel_of_a_shipped_order_is_only_recorded() -> None:
    decision = decide_intake(StoredOrder(OrderState.SHIPPED, order()), order(), DeliveryKind.CANCEL, POLICY)
    assert decision.outcome is Outcome.RECORDED_AFTER_SUBMISSION
    assert decision.state is OrderState.SHIPPED


def test_transition_table_rejects_undefined_events() -> None:
    assert next_state(OrderState.RECEIVED, Event.SUBMIT_STARTED) is OrderState.SUBMITTING
    with pytest.raises(IllegalTransition):
        next_state(OrderState.SHIPPED, Event.SUBMIT_STARTED)


def test_final_states_have_no_way_out() -> None:
    for state in FINAL:
        assert not [key for key in TRANSITIONS if key[0] is state]


def test_canonical_order_round_trips_through_json() -> None:
    original = order(gift_message="Happy birthday", notes="leave at door")
    assert CanonicalOrder.from_json(original.to_json()) == original
