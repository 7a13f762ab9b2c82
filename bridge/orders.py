"""The canonical order and its lifecycle: pure Python, no I/O.

Every storefront adapter turns its payload into a `CanonicalOrder`; every later stage (submit,
sync, push-back) reads only this shape. The lifecycle is a transition table, and `decide_intake`
says what a new delivery does to what we already stored, so the convergence rules (duplicates,
stale deliveries, amendments after submission, cancel-before-create) live in one tested place.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any


class PaymentState(enum.StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    country_code: str
    postal_code: str = ""
    line2: str = ""
    line3: str = ""
    company: str = ""
    city: str = ""
    district: str = ""
    state: str = ""
    phone: str = ""


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    sku: str
    quantity: int
    unit_price: str
    title: str = ""
    requires_shipping: bool = True


@dataclass(frozen=True)
class CanonicalOrder:
    """One storefront order as the bridge understands it, whatever platform it came from."""

    channel_id: str
    external_id: str
    display_id: str
    currency: str
    payment_state: PaymentState
    created_at: datetime
    updated_at: datetime
    lines: tuple[OrderLine, ...] = ()
    destination: Address | None = None
    shipping_method: str = ""
    buyer_email: str = ""
    buyer_phone: str = ""
    gift_message: str = ""
    notes: str = ""
    cancelled: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["payment_state"] = self.payment_state.value
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CanonicalOrder:
        dest = data.get("destination")
        return cls(
            channel_id=data["channel_id"],
            external_id=data["external_id"],
            display_id=data["display_id"],
            currency=data["currency"],
            payment_state=PaymentState(data["payment_state"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            lines=tuple(OrderLine(**line) for line in data.get("lines", ())),
            destination=Address(**dest) if dest else None,
            shipping_method=data.get("shipping_method", ""),
            buyer_email=data.get("buyer_email", ""),
            buyer_phone=data.get("buyer_phone", ""),
            gift_message=data.get("gift_message", ""),
            notes=data.get("notes", ""),
            cancelled=bool(data.get("cancelled", False)),
        )

    def same_content(self, other: CanonicalOrder) -> bool:
        return self.to_json() == other.to_json()

    def total(self) -> Decimal:
        return sum((Decimal(line.unit_price) * line.quantity for line in self.lines), Decimal(0))


class OrderState(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    RECEIVED = "received"
    NEEDS_ATTENTION = "needs_attention"
    NOT_FOR_AMAZON = "not_for_amazon"
    SUBMITTING = "submitting"
    HELD_AT_AMAZON = "held_at_amazon"
    SUBMITTED = "submitted"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    UNFULFILLABLE = "unfulfillable"
    COMPLETED_PARTIALLY = "completed_partially"


class Event(enum.StrEnum):
    PAID = "paid"
    CANCEL = "cancel"
    PARK = "park"
    RETRY = "retry"
    SKIP = "skip"
    SUBMIT_STARTED = "submit_started"
    CREATED = "created"
    CREATED_ON_HOLD = "created_on_hold"
    RELEASED = "released"
    SHIPPED_PARTIALLY = "shipped_partially"
    SHIPPED_ALL = "shipped_all"
    AMAZON_CANCELLED = "amazon_cancelled"
    AMAZON_UNFULFILLABLE = "amazon_unfulfillable"
    AMAZON_COMPLETED_PARTIALLY = "amazon_completed_partially"
    CANCEL_REFUSED = "cancel_refused"


S = OrderState
E = Event

# Before submission a storefront cancellation simply ends the order; after it, Amazon has to be
# asked (CANCEL_REQUESTED) and may refuse once the order is past Planning.
TRANSITIONS: dict[tuple[OrderState, Event], OrderState] = {
    (S.AWAITING_PAYMENT, E.PAID): S.RECEIVED,
    (S.AWAITING_PAYMENT, E.CANCEL): S.CANCELLED,
    (S.AWAITING_PAYMENT, E.PARK): S.NEEDS_ATTENTION,
    (S.AWAITING_PAYMENT, E.SUBMIT_STARTED): S.SUBMITTING,
    (S.RECEIVED, E.CANCEL): S.CANCELLED,
    (S.RECEIVED, E.PARK): S.NEEDS_ATTENTION,
    (S.RECEIVED, E.SKIP): S.NOT_FOR_AMAZON,
    (S.RECEIVED, E.SUBMIT_STARTED): S.SUBMITTING,
    (S.NEEDS_ATTENTION, E.RETRY): S.RECEIVED,
    (S.NEEDS_ATTENTION, E.CANCEL): S.CANCELLED,
    (S.NEEDS_ATTENTION, E.PAID): S.NEEDS_ATTENTION,
    (S.NOT_FOR_AMAZON, E.CANCEL): S.CANCELLED,
    (S.NOT_FOR_AMAZON, E.RETRY): S.RECEIVED,  # the storefront assigned part of it to Amazon later
    (S.SUBMITTING, E.CREATED): S.SUBMITTED,
    (S.SUBMITTING, E.CREATED_ON_HOLD): S.HELD_AT_AMAZON,
    (S.SUBMITTING, E.PARK): S.NEEDS_ATTENTION,
    (S.SUBMITTING, E.CANCEL): S.CANCEL_REQUESTED,
    (S.SUBMITTING, E.RETRY): S.RECEIVED,
    (S.HELD_AT_AMAZON, E.RELEASED): S.SUBMITTED,
    (S.HELD_AT_AMAZON, E.CANCEL): S.CANCEL_REQUESTED,
    (S.HELD_AT_AMAZON, E.AMAZON_CANCELLED): S.CANCELLED,
    (S.SUBMITTED, E.SHIPPED_PARTIALLY): S.PARTIALLY_SHIPPED,
    (S.SUBMITTED, E.SHIPPED_ALL): S.SHIPPED,
    (S.SUBMITTED, E.CANCEL): S.CANCEL_REQUESTED,
    (S.SUBMITTED, E.AMAZON_CANCELLED): S.CANCELLED,
    (S.SUBMITTED, E.AMAZON_UNFULFILLABLE): S.UNFULFILLABLE,
    (S.PARTIALLY_SHIPPED, E.SHIPPED_PARTIALLY): S.PARTIALLY_SHIPPED,
    (S.PARTIALLY_SHIPPED, E.SHIPPED_ALL): S.SHIPPED,
    (S.PARTIALLY_SHIPPED, E.AMAZON_CANCELLED): S.CANCELLED,
    (S.SUBMITTED, E.AMAZON_COMPLETED_PARTIALLY): S.COMPLETED_PARTIALLY,
    (S.PARTIALLY_SHIPPED, E.AMAZON_COMPLETED_PARTIALLY): S.COMPLETED_PARTIALLY,
    (S.PARTIALLY_SHIPPED, E.CANCEL): S.CANCEL_REQUESTED,
    (S.PARTIALLY_SHIPPED, E.AMAZON_UNFULFILLABLE): S.UNFULFILLABLE,
    (S.HELD_AT_AMAZON, E.AMAZON_UNFULFILLABLE): S.UNFULFILLABLE,
    (S.CANCEL_REQUESTED, E.AMAZON_CANCELLED): S.CANCELLED,
    # Too late to cancel: Amazon ships anyway, so tracking must keep flowing; the order is flagged.
    (S.CANCEL_REQUESTED, E.CANCEL_REFUSED): S.SUBMITTED,
    (S.CANCEL_REQUESTED, E.SHIPPED_PARTIALLY): S.PARTIALLY_SHIPPED,
    (S.CANCEL_REQUESTED, E.SHIPPED_ALL): S.SHIPPED,
    (S.CANCEL_REQUESTED, E.AMAZON_UNFULFILLABLE): S.UNFULFILLABLE,
    (S.CANCEL_REQUESTED, E.AMAZON_COMPLETED_PARTIALLY): S.COMPLETED_PARTIALLY,
}

NOT_YET_SUBMITTED = frozenset({S.AWAITING_PAYMENT, S.RECEIVED, S.NEEDS_ATTENTION, S.NOT_FOR_AMAZON})
FINAL = frozenset({S.CANCELLED, S.SHIPPED, S.UNFULFILLABLE, S.COMPLETED_PARTIALLY})
AT_AMAZON = frozenset({S.SUBMITTED, S.HELD_AT_AMAZON, S.PARTIALLY_SHIPPED, S.CANCEL_REQUESTED})


class IllegalTransition(ValueError):
    def __init__(self, state: OrderState, event: Event) -> None:
        super().__init__(f"event {event.value!r} is not allowed in state {state.value!r}")
        self.state = state
        self.event = event


def next_state(state: OrderState, event: Event) -> OrderState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def can(state: OrderState, event: Event) -> bool:
    return (state, event) in TRANSITIONS


# ---------------------------------------------------------------------------------------------
# Intake decisions


class DeliveryKind(enum.StrEnum):
    UPSERT = "upsert"
    CANCEL = "cancel"


class Outcome(enum.StrEnum):
    CREATED = "created"
    AMENDED = "amended"
    CANCELLED = "cancelled"
    TOMBSTONED = "tombstoned"
    UNCHANGED = "unchanged"
    STALE = "stale"
    RECORDED_AFTER_SUBMISSION = "recorded_after_submission"
    CANCEL_REQUESTED = "cancel_requested"


@dataclass(frozen=True)
class IntakePolicy:
    """The slice of a channel's policy intake needs (kept here so this module imports nothing)."""

    ship_on: frozenset[PaymentState] = frozenset({PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED})
    submit_unpaid_on_hold: bool = False


@dataclass(frozen=True)
class StoredOrder:
    state: OrderState
    order: CanonicalOrder


@dataclass(frozen=True)
class IntakeDecision:
    outcome: Outcome
    state: OrderState | None = None
    order: CanonicalOrder | None = None
    enqueue_submit: bool = False
    enqueue_cancel: bool = False
    enqueue_release: bool = False
    reason: str = ""
    events: tuple[Event, ...] = field(default=())


def _initial_state(order: CanonicalOrder, policy: IntakePolicy) -> OrderState:
    if order.cancelled:
        return S.CANCELLED
    return S.RECEIVED if order.payment_state in policy.ship_on else S.AWAITING_PAYMENT


def _wants_submit(state: OrderState, policy: IntakePolicy) -> bool:
    return state is S.RECEIVED or (state is S.AWAITING_PAYMENT and policy.submit_unpaid_on_hold)


def decide_intake(
    existing: StoredOrder | None,
    incoming: CanonicalOrder,
    kind: DeliveryKind,
    policy: IntakePolicy,
) -> IntakeDecision:
    """What one verified, parsed delivery does to the order we hold.

    The rules, in order: a cancellation always wins and is remembered even before the order
    itself arrives (a tombstone); a delivery older than what we hold changes nothing; before
    submission a newer delivery amends the order; after submission it is only recorded, except
    that a cancellation asks Amazon to cancel and a payment releases an order held at Amazon.
    """
    cancel = kind is DeliveryKind.CANCEL or incoming.cancelled
    if cancel and not incoming.cancelled:
        incoming = replace(incoming, cancelled=True)

    if existing is None:
        if cancel:
            return IntakeDecision(Outcome.TOMBSTONED, S.CANCELLED, incoming, reason="cancelled before intake")
        state = _initial_state(incoming, policy)
        return IntakeDecision(Outcome.CREATED, state, incoming, enqueue_submit=_wants_submit(state, policy))

    held = existing.order
    if cancel:
        if existing.state in (S.CANCELLED, S.CANCEL_REQUESTED):
            return IntakeDecision(Outcome.UNCHANGED, existing.state)
        if existing.state in NOT_YET_SUBMITTED:
            merged = incoming if incoming.updated_at >= held.updated_at else replace(held, cancelled=True)
            return IntakeDecision(Outcome.CANCELLED, S.CANCELLED, merged, events=(E.CANCEL,))
        if can(existing.state, E.CANCEL):
            return IntakeDecision(
                Outcome.CANCEL_REQUESTED,
                S.CANCEL_REQUESTED,
                enqueue_cancel=True,
                events=(E.CANCEL,),
                reason="storefront cancelled after submission",
            )
        return IntakeDecision(
            Outcome.RECORDED_AFTER_SUBMISSION,
            existing.state,
            reason=f"storefront cancelled but order is already {existing.state.value}",
        )

    if incoming.updated_at < held.updated_at:
        return IntakeDecision(Outcome.STALE, existing.state, reason="older than stored state")
    if existing.state is S.CANCELLED:
        return IntakeDecision(Outcome.UNCHANGED, existing.state, reason="order is cancelled")
    if incoming.same_content(held):
        return IntakeDecision(Outcome.UNCHANGED, existing.state)

    if existing.state in NOT_YET_SUBMITTED:
        # A parked order is re-evaluated from scratch: the merchant may have fixed what parked it.
        events: tuple[Event, ...] = ()
        state = existing.state
        if state in (S.NEEDS_ATTENTION, S.NOT_FOR_AMAZON):
            state, events = _initial_state(incoming, policy), (E.RETRY,)
        elif state is S.AWAITING_PAYMENT and incoming.payment_state in policy.ship_on:
            state, events = next_state(state, E.PAID), (E.PAID,)
        return IntakeDecision(
            Outcome.AMENDED,
            state,
            incoming,
            enqueue_submit=_wants_submit(state, policy),
            events=events,
        )

    release = existing.state is S.HELD_AT_AMAZON and incoming.payment_state in policy.ship_on
    return IntakeDecision(
        Outcome.RECORDED_AFTER_SUBMISSION,
        existing.state,
        reason="payment arrived for an order held at Amazon" if release else "update after submission",
        enqueue_release=release,
    )
