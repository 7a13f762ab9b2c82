"""Applying lifecycle events to stored orders, always with an audit row.

Every stage changes an order's state only through `transition`, so the audit trail is complete
by construction and an event the state machine does not allow fails loudly.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from .orders import Event, OrderState, next_state
from .store import OrderEventRecord, OrderRecord


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
    if new_state in (OrderState.NEEDS_ATTENTION, OrderState.AWAITING_APPROVAL):
        row.attention_reason = reason[:2000]
    elif event in (Event.RETRY, Event.APPROVE):
        row.attention_reason = ""
    if event is Event.APPROVE:
        # Whoever approves (CLI, console), the rules that held the order are approved with it.
        row.approvals = {"held": [], "approved": sorted({*row.approved_rules, *row.held_rules})}
    session.add(row)
    return new_state


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
