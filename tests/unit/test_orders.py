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


@pytest.mark.parametrize(
    "state",
    [OrderState.SUBMITTING, OrderState.HELD_AT_AMAZON, OrderState.SUBMITTED, OrderState.PARTIALLY_SHIPPED],
)
def test_update_after_submission_is_stored_and_checked_against_amazon(state: OrderState) -> None:
    stored = StoredOrder(state, order())
    changed = order(updated_at=later(), notes="changed")
    decision = decide_intake(stored, changed, DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.AMENDED_AFTER_SUBMISSION
    assert decision.order == changed, "the storefront's latest word is kept"
    assert decision.state is state
    assert decision.enqueue_amend and not decision.enqueue_submit


@pytest.mark.parametrize("state", [OrderState.SHIPPED, OrderState.CANCEL_REQUESTED, OrderState.UNFULFILLABLE])
def test_update_once_amazon_is_done_is_only_recorded(state: OrderState) -> None:
    stored = StoredOrder(state, order())
    decision = decide_intake(stored, order(updated_at=later(), notes="changed"), DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.RECORDED_AFTER_SUBMISSION
    assert not (decision.enqueue_amend or decision.enqueue_submit or decision.enqueue_cancel)


@pytest.mark.parametrize("state", [OrderState.SUBMITTING, OrderState.HELD_AT_AMAZON])
def test_payment_for_an_order_held_or_being_held_at_amazon_queues_the_amendment(state: OrderState) -> None:
    stored = StoredOrder(state, order(payment_state=PaymentState.PENDING))
    decision = decide_intake(stored, order(updated_at=later()), DeliveryKind.UPSERT, POLICY)
    assert decision.enqueue_amend
    assert not decision.enqueue_submit


@pytest.mark.parametrize("payment", [PaymentState.REFUNDED, PaymentState.VOIDED])
def test_a_refunded_or_voided_order_is_never_shipped(payment: PaymentState) -> None:
    before = decide_intake(
        StoredOrder(OrderState.RECEIVED, order()),
        order(updated_at=later(), payment_state=payment),
        DeliveryKind.UPSERT,
        POLICY,
    )
    assert before.state is OrderState.CANCELLED and f"payment {payment.value}" in before.reason
    after = decide_intake(
        StoredOrder(OrderState.SUBMITTED, order()),
        order(updated_at=later(), payment_state=payment),
        DeliveryKind.UPSERT,
        POLICY,
    )
    assert after.state is OrderState.CANCEL_REQUESTED and after.enqueue_cancel


def test_an_order_whose_every_line_was_removed_is_cancelled() -> None:
    emptied = order(
        updated_at=later(), lines=(OrderLine("1", "TSHIRT-RED-M", 0, "19.99", ordered_quantity=2),)
    )
    decision = decide_intake(StoredOrder(OrderState.SUBMITTED, order()), emptied, DeliveryKind.UPSERT, POLICY)
    assert decision.state is OrderState.CANCEL_REQUESTED
    assert "removed or refunded" in decision.reason


def test_an_order_restored_before_it_reached_amazon_is_evaluated_again() -> None:
    cancelled = order(cancelled=True, cancel_reason="WooCommerce status trash")
    decision = decide_intake(
        StoredOrder(OrderState.CANCELLED, cancelled), order(updated_at=later()), DeliveryKind.UPSERT, POLICY
    )
    assert decision.outcome is Outcome.RESTORED
    assert decision.state is OrderState.RECEIVED and decision.enqueue_submit
    assert decision.events == (Event.RESTORED,)
    unpaid = decide_intake(
        StoredOrder(OrderState.CANCELLED, cancelled),
        order(updated_at=later(), payment_state=PaymentState.PENDING),
        DeliveryKind.UPSERT,
        POLICY,
    )
    assert unpaid.state is OrderState.AWAITING_PAYMENT and not unpaid.enqueue_submit


def test_an_order_restored_after_amazon_cancelled_it_alerts_an_operator() -> None:
    stored = StoredOrder(OrderState.CANCELLED, order(cancelled=True), reached_amazon=True)
    decision = decide_intake(stored, order(updated_at=later()), DeliveryKind.UPSERT, POLICY)
    assert decision.state is OrderState.CANCELLED and not decision.enqueue_submit
    assert "Amazon will not ship it" in decision.alert


def test_a_cancelled_order_is_not_restored_by_a_delivery_of_the_same_moment() -> None:
    stored = StoredOrder(OrderState.CANCELLED, order(cancelled=True))
    decision = decide_intake(stored, order(), DeliveryKind.UPSERT, POLICY)
    assert decision.outcome is Outcome.UNCHANGED and decision.state is OrderState.CANCELLED


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


def test_final_states_have_no_way_out_but_a_storefront_restore() -> None:
    for state in FINAL:
        ways_out = {event for (source, event) in TRANSITIONS if source is state}
        assert ways_out == (
            {Event.RESTORED, Event.RESTORED_UNPAID} if state is OrderState.CANCELLED else set()
        )


def test_canonical_order_round_trips_through_json() -> None:
    original = order(gift_message="Happy birthday", notes="leave at door")
    assert CanonicalOrder.from_json(original.to_json()) == original
