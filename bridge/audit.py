"""Applying lifecycle events to stored orders, always with an audit row.

Every stage changes an order's state only through `transition`, so the audit trail is complete
by construction and an event the state machine does not allow fails loudly.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from .orders import Event, OrderState, next_state
from .store import OrderEventRecord, OrderRecord

_ATTENTION_STATES = (OrderState.NEEDS_ATTENTION, OrderState.AWAITING_APPROVAL)


def transition(
    session: Session, row: OrderRecord, event: Event, now: datetime, reason: str = ""
) -> OrderState:
    new_state = next_state(row.order_state, event)
    assert row.id is not None
    session.add(
        OrderEventRecord(
            order_id=row.id,
            at=now,
            event=event.value,
            from_state=row.state,
            to_state=new_state.value,
            reason=reason[:2000],
        )
    )
    row.state = new_state.value
    row.updated_at = now
    if not writes_only_the_state(event, new_state):
        _write_the_rest(row, event, new_state, reason)
    session.add(row)
    return new_state


def writes_only_the_state(event: Event, new_state: OrderState) -> bool:
    """True when `transition` writes nothing but the audit row, the state and `updated_at`: such
    a step can also be written in one statement (`claimed_transitions`)."""
    return new_state not in _ATTENTION_STATES and event not in (Event.RETRY, Event.APPROVE)


def _write_the_rest(row: OrderRecord, event: Event, new_state: OrderState, reason: str) -> None:
    if new_state in _ATTENTION_STATES:
        row.attention_reason = reason[:2000]
    elif event in (Event.RETRY, Event.APPROVE):
        row.attention_reason = ""
    if event is Event.APPROVE:
        # Whoever approves (CLI, console), the rules that held the order are approved with it.
        row.approvals = {"held": [], "approved": sorted({*row.approved_rules, *row.held_rules})}


def note(session: Session, row: OrderRecord, event: str, now: datetime, reason: str = "") -> None:
    """An audit entry that does not change the state (e.g. a preview result, a push-back)."""
    assert row.id is not None
    session.add(
        OrderEventRecord(
            order_id=row.id,
            at=now,
            event=event,
            from_state=row.state,
            to_state=row.state,
            reason=reason[:2000],
        )
    )
