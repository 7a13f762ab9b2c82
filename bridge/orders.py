"""The canonical order and its lifecycle: pure Python, no I/O.

Every storefront adapter turns its payload into a `CanonicalOrder`; every later stage (submit,
sync, push-back) reads only this shape. The lifecycle is a transition table, and `decide_intake`
says what a new delivery does to what we already stored, so the convergence rules (duplicates,
stale deliveries, amendments after submission, cancel-before-create) live in one tested place.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field, replace
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
    """One storefront line.

    `quantity` is how many units the storefront wants shipped in all, after edits and refunds
    (Shopify's `current_quantity`); a line removed from the order keeps its place with quantity 0.
    `fulfillable_quantity` is how many of those are still to be fulfilled by anyone now (Shopify's
    `fulfillable_quantity`: lower once someone fulfilled part of it); None when the platform does
    not say, which means all of `quantity`. `ordered_quantity` is what was first ordered, for the
    record. A new submission ships `to_fulfil`; an amendment after submission follows `quantity`.
    """

    line_id: str
    sku: str
    quantity: int
    unit_price: str
    title: str = ""
    requires_shipping: bool = True
    fulfillable_quantity: int | None = None
    ordered_quantity: int | None = None
    # The buyer's gift message for this line (Shopify line item property, WooCommerce line meta,
    # generic `gift_message`); Amazon prints it per item.
    gift_message: str = ""

    @property
    def to_fulfil(self) -> int:
        """Units still to ship now: never more than `quantity`, never negative."""
        if self.fulfillable_quantity is None:
            return max(0, self.quantity)
        return max(0, min(self.quantity, self.fulfillable_quantity))


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
    # The storefront marks the order as a test (Shopify's bogus gateway, "Send test notification").
    test: bool = False
    # The platform's code for the shipping method beside its title (`shipping_method`):
    # Shopify `shipping_lines[].code`, WooCommerce `method_id`.
    shipping_method_code: str = ""
    # Why the storefront cancelled it, in words an operator reads in the audit trail (no PII).
    cancel_reason: str = ""
    # The merchant's tags on the order (Shopify `tags`; WooCommerce meta `fba_tags`; generic
    # `tags`), lower-cased: per-order policy overrides such as `fba-hold` and `fba-skip`.
    tags: tuple[str, ...] = ()
    # Order-level name/value data the merchant's rules may test (Shopify note attributes,
    # WooCommerce order meta, generic `meta`); names as sent, values as text.
    meta: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The fields as `dataclasses.asdict` gives them (lines a tuple of dicts), built directly:
        every field is a plain value, a line or an address, so its deep copy bought nothing and
        cost a tenth of storing a webhook."""
        data = dict(self.__dict__)
        data["lines"] = tuple(dict(line.__dict__) for line in self.lines)
        data["destination"] = dict(self.destination.__dict__) if self.destination is not None else None
        data["payment_state"] = self.payment_state.value
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        meta: dict[str, str] = {}
        for name, value in self.meta:
            meta.setdefault(name, value)  # the first entry of a repeated name wins, as in `attribute`
        data["meta"] = meta
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
            test=bool(data.get("test", False)),
            shipping_method_code=data.get("shipping_method_code", ""),
            cancel_reason=data.get("cancel_reason", ""),
            tags=tuple(data.get("tags", ())),
            meta=tuple((str(k), str(v)) for k, v in (data.get("meta") or {}).items()),
        )

    def without_personal_data(self) -> CanonicalOrder:
        """What is kept after a redaction or the retention purge: ids, lines, prices, states;
        no address, e-mail, phone, gift message or notes."""
        return replace(self, destination=None, buyer_email="", buyer_phone="", gift_message="", notes="")

    def same_content(self, other: CanonicalOrder) -> bool:
        return self.to_json() == other.to_json()

    def content_version(self) -> str:
        """A digest of everything the order says. A stage that planned from a snapshot compares it,
        under the row lock, before it writes: a different value means the order changed meanwhile."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def nothing_left_to_ship(self) -> bool:
        """Every line that needed shipping was removed or refunded (there were such lines)."""
        shippable = [line for line in self.lines if line.requires_shipping]
        return bool(shippable) and all(line.quantity <= 0 for line in shippable)

    def attribute(self, name: str) -> str | None:
        """The first value of the named attribute (name compared ignoring case), or None."""
        wanted = name.strip().lower()
        return next((v for k, v in self.meta if k.strip().lower() == wanted), None)

    def total(self) -> Decimal:
        return sum((Decimal(line.unit_price) * line.quantity for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class OrderRisk:
    """What the storefront says about an order's fraud risk (Shopify `Order.risk`)."""

    recommendation: str  # CANCEL, INVESTIGATE, ACCEPT, NONE
    levels: tuple[str, ...] = ()  # each assessment's riskLevel (HIGH, MEDIUM, LOW, NONE, PENDING)

    def describe(self) -> str:
        levels = f" (assessments: {', '.join(self.levels)})" if self.levels else ""
        return f"{self.recommendation}{levels}"


class OrderState(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    RECEIVED = "received"
    NEEDS_ATTENTION = "needs_attention"
    AWAITING_APPROVAL = "awaiting_approval"
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
    RESTORED = "restored"
    RESTORED_UNPAID = "restored_unpaid"
    HOLD = "hold"  # an operator or a channel rule wants a person to approve the order first
    APPROVE = "approve"


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
    (S.AWAITING_PAYMENT, E.HOLD): S.AWAITING_APPROVAL,
    (S.RECEIVED, E.HOLD): S.AWAITING_APPROVAL,
    (S.NEEDS_ATTENTION, E.HOLD): S.AWAITING_APPROVAL,
    (S.NOT_FOR_AMAZON, E.HOLD): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, E.APPROVE): S.RECEIVED,
    (S.AWAITING_APPROVAL, E.RETRY): S.RECEIVED,  # the storefront changed what a rule held it for
    (S.AWAITING_APPROVAL, E.CANCEL): S.CANCELLED,
    (S.AWAITING_APPROVAL, E.PAID): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, E.HOLD): S.AWAITING_APPROVAL,
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
    # The storefront brought back an order it had cancelled (WooCommerce untrash, a failed payment
    # paid after all). Intake allows it only when nothing of the order ever reached Amazon.
    (S.CANCELLED, E.RESTORED): S.RECEIVED,
    (S.CANCELLED, E.RESTORED_UNPAID): S.AWAITING_PAYMENT,
}

NOT_YET_SUBMITTED = frozenset(
    {S.AWAITING_PAYMENT, S.RECEIVED, S.NEEDS_ATTENTION, S.AWAITING_APPROVAL, S.NOT_FOR_AMAZON}
)
FINAL = frozenset({S.CANCELLED, S.SHIPPED, S.UNFULFILLABLE, S.COMPLETED_PARTIALLY})
AT_AMAZON = frozenset({S.SUBMITTED, S.HELD_AT_AMAZON, S.PARTIALLY_SHIPPED, S.CANCEL_REQUESTED})
# After submission, a storefront change to these is checked against what Amazon can still take.
AMENDABLE = frozenset({S.SUBMITTING, S.HELD_AT_AMAZON, S.SUBMITTED, S.PARTIALLY_SHIPPED})


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
    RESTORED = "restored"
    AMENDED_AFTER_SUBMISSION = "amended_after_submission"
    RECORDED_AFTER_SUBMISSION = "recorded_after_submission"
    CANCEL_REQUESTED = "cancel_requested"


@dataclass(frozen=True)
class IntakePolicy:
    """The slice of a channel's policy intake needs (kept here so this module imports nothing)."""

    ship_on: frozenset[PaymentState] = frozenset({PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED})
    submit_unpaid_on_hold: bool = False
    # Payment states that mean "do not ship" on every platform: the money went back.
    cancel_on: frozenset[PaymentState] = frozenset({PaymentState.REFUNDED, PaymentState.VOIDED})


@dataclass(frozen=True)
class StoredOrder:
    state: OrderState
    order: CanonicalOrder
    reached_amazon: bool = False  # Amazon ever held an order for it (created, then maybe cancelled)
    # Waiting for approval because a channel rule held it (not an operator): a storefront change
    # (a tag removed, an amount lowered) is judged by the rules again.
    held_by_rules: bool = False


@dataclass(frozen=True)
class IntakeDecision:
    outcome: Outcome
    state: OrderState | None = None
    order: CanonicalOrder | None = None
    enqueue_submit: bool = False
    enqueue_cancel: bool = False
    enqueue_amend: bool = False
    reason: str = ""
    events: tuple[Event, ...] = field(default=())
    alert: str = ""  # an operator must act; the text names what happened (no personal data)


def _initial_state(order: CanonicalOrder, policy: IntakePolicy) -> OrderState:
    if order.cancelled:
        return S.CANCELLED
    return S.RECEIVED if order.payment_state in policy.ship_on else S.AWAITING_PAYMENT


def _wants_submit(state: OrderState, policy: IntakePolicy) -> bool:
    return state is S.RECEIVED or (state is S.AWAITING_PAYMENT and policy.submit_unpaid_on_hold)


def cancel_reason(order: CanonicalOrder, kind: DeliveryKind, policy: IntakePolicy) -> str:
    """Why this delivery means "do not ship", or "" when it does not.

    A cancellation, a refunded or voided payment, and an order whose every shipping line was
    removed or refunded all end the order before submission and ask Amazon to cancel after it.
    """
    if kind is DeliveryKind.CANCEL or order.cancelled:
        return order.cancel_reason or "cancelled in the storefront"
    if order.payment_state in policy.cancel_on:
        return f"payment {order.payment_state.value} in the storefront"
    if order.nothing_left_to_ship():
        return "every line was removed or refunded in the storefront"
    return ""


def decide_intake(
    existing: StoredOrder | None,
    incoming: CanonicalOrder,
    kind: DeliveryKind,
    policy: IntakePolicy,
) -> IntakeDecision:
    """What one verified, parsed delivery does to the order we hold.

    The rules, in order: a cancellation (or a refund, or nothing left to ship) always wins and is
    remembered even before the order itself arrives (a tombstone); a delivery older than what we
    hold changes nothing; a newer delivery for a cancelled order that never reached Amazon
    restores it; before submission a newer delivery amends the order; after submission it is
    stored and an amendment job checks what Amazon can still take (address, speed, quantities,
    the release of a hold), except that a cancellation asks Amazon to cancel.
    """
    why = cancel_reason(incoming, kind, policy)
    if why and not incoming.cancelled:
        incoming = replace(incoming, cancelled=True, cancel_reason=incoming.cancel_reason or why)

    if existing is None:
        if why:
            return IntakeDecision(Outcome.TOMBSTONED, S.CANCELLED, incoming, reason=f"before intake: {why}")
        state = _initial_state(incoming, policy)
        return IntakeDecision(Outcome.CREATED, state, incoming, enqueue_submit=_wants_submit(state, policy))

    held = existing.order
    if why:
        return _cancel(existing, incoming, why)

    if incoming.updated_at < held.updated_at:
        return IntakeDecision(Outcome.STALE, existing.state, reason="older than stored state")
    if existing.state is S.CANCELLED:
        return _restore(existing, incoming, policy)
    if incoming.same_content(held):
        return IntakeDecision(Outcome.UNCHANGED, existing.state)

    if existing.state in NOT_YET_SUBMITTED:
        # A parked order is re-evaluated from scratch: the merchant may have fixed what parked it.
        events: tuple[Event, ...] = ()
        state = existing.state
        if state in (S.NEEDS_ATTENTION, S.NOT_FOR_AMAZON) or (
            state is S.AWAITING_APPROVAL and existing.held_by_rules
        ):
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

    if existing.state in AMENDABLE:
        return IntakeDecision(
            Outcome.AMENDED_AFTER_SUBMISSION,
            existing.state,
            incoming,
            enqueue_amend=True,
            reason="update after submission; checking what Amazon can still take",
        )
    return IntakeDecision(
        Outcome.RECORDED_AFTER_SUBMISSION,
        existing.state,
        incoming,
        reason=f"update while the order is {existing.state.value}; recorded, nothing sent to Amazon",
    )


def _cancel(existing: StoredOrder, incoming: CanonicalOrder, why: str) -> IntakeDecision:
    held = existing.order
    if existing.state in (S.CANCELLED, S.CANCEL_REQUESTED):
        return IntakeDecision(Outcome.UNCHANGED, existing.state)
    if existing.state in NOT_YET_SUBMITTED:
        merged = (
            incoming
            if incoming.updated_at >= held.updated_at
            else replace(held, cancelled=True, cancel_reason=why)
        )
        return IntakeDecision(Outcome.CANCELLED, S.CANCELLED, merged, reason=why, events=(E.CANCEL,))
    if can(existing.state, E.CANCEL):
        return IntakeDecision(
            Outcome.CANCEL_REQUESTED,
            S.CANCEL_REQUESTED,
            enqueue_cancel=True,
            events=(E.CANCEL,),
            reason=f"{why} after submission; asking Amazon to cancel",
        )
    return IntakeDecision(
        Outcome.RECORDED_AFTER_SUBMISSION,
        existing.state,
        reason=f"{why}, but the order is already {existing.state.value}",
    )


def _restore(existing: StoredOrder, incoming: CanonicalOrder, policy: IntakePolicy) -> IntakeDecision:
    """A newer, live delivery for a cancelled order: the storefront brought it back."""
    if incoming.updated_at <= existing.order.updated_at:
        return IntakeDecision(Outcome.UNCHANGED, existing.state, reason="order is cancelled")
    if existing.reached_amazon:
        return IntakeDecision(
            Outcome.RECORDED_AFTER_SUBMISSION,
            existing.state,
            incoming,
            reason="restored in the storefront after its Amazon order was cancelled",
            alert="was restored in the storefront after its Amazon order had been cancelled; Amazon "
            "will not ship it. Fulfil it another way, or cancel it in the storefront again.",
        )
    state = _initial_state(incoming, policy)
    event = E.RESTORED if state is S.RECEIVED else E.RESTORED_UNPAID
    return IntakeDecision(
        Outcome.RESTORED,
        next_state(S.CANCELLED, event),
        incoming,
        enqueue_submit=_wants_submit(next_state(S.CANCELLED, event), policy),
        events=(event,),
        reason="restored in the storefront; evaluated again",
    )
