"""Operator alerts: one row per cause, raised where the cause is found, cleared when it goes away.

Every stage that finds something a person must look at (a dead-lettered job, an order Amazon
could not fulfil, a parked account) calls `raise_alert` in its own transaction with a *key* that
names the cause (`job_dead:42`, `order:7:amazon_status`, `account:main:credentials`). Raising the
same key again while the alert is open only counts it, so a retried job or a repeated sync never
floods the operator: one alert per cause, not one per retry. `clear_alert` closes it when the
cause is gone (the job succeeded, the credentials work again); a later recurrence opens it again.

Opening and clearing an alert each enqueue one delivery job in the same transaction; it sends a
signed JSON POST to the operator's URL when one is configured (`pipeline/alert_delivery.py`).

Messages name orders by id, SKUs, states and Amazon's codes; never personal data or secrets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from . import jobs
from .store import AlertRecord, OrderRecord, read_session, write_session

JOB_ALERT_DELIVERY = "alert_delivery"
MAX_MESSAGE = 2000


class Severity(enum.StrEnum):
    ERROR = "error"  # something is stuck or lost until a person acts
    WARNING = "warning"  # worth a look; the bridge keeps going


@dataclass(frozen=True)
class AlertView:
    id: int
    key: str
    kind: str
    severity: str
    message: str
    channel_id: str | None
    order_id: int | None
    order_display_id: str | None
    account_id: str | None
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


def _insert_if_absent(session: Session, values: dict[str, object]) -> bool:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = (
        dialect_insert(AlertRecord).values(**values).on_conflict_do_nothing().returning(col(AlertRecord.id))
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def raise_alert(
    session: Session,
    *,
    key: str,
    kind: str,
    message: str,
    now: datetime,
    order_id: int | None = None,
    channel_id: str | None = None,
    account_id: str | None = None,
    severity: Severity = Severity.ERROR,
    notify: bool = True,
) -> bool:
    """Open (or re-open) the alert for `key` in the caller's transaction, or count one more
    occurrence of an open one. Returns True when the alert was newly opened."""
    key = key[:200]
    message = message[:MAX_MESSAGE]
    created = _insert_if_absent(
        session,
        dict(
            key=key,
            kind=kind[:40],
            severity=severity.value,
            message=message,
            channel_id=channel_id,
            order_id=order_id,
            account_id=account_id,
            opened_at=now,
            last_seen_at=now,
            occurrences=1,
            cleared_at=None,
            acknowledged_at=None,
            acknowledged_by="",
        ),
    )
    row = session.execute(
        select(AlertRecord).where(col(AlertRecord.key) == key).with_for_update()
    ).scalar_one()
    opened = created
    if not created:
        if row.cleared_at is not None:  # the cause came back
            row.opened_at = now
            row.occurrences = 0
            row.cleared_at = None
            row.acknowledged_at = None
            row.acknowledged_by = ""
            opened = True
        row.occurrences += 1
        row.last_seen_at = now
        row.message = message
        row.kind = kind[:40]
        row.severity = severity.value
        row.order_id = order_id if order_id is not None else row.order_id
        row.channel_id = channel_id or row.channel_id
        row.account_id = account_id or row.account_id
        session.add(row)
        session.flush()
    if opened and notify:
        _enqueue_delivery(session, row, "alert.opened")
    return opened


def clear_alert(session: Session, key: str, now: datetime, *, notify: bool = True) -> bool:
    """Close the open alert for `key` (the cause is gone). Returns False if none was open."""
    row = (
        session.execute(
            select(AlertRecord).where(
                col(AlertRecord.key) == key[:200], col(AlertRecord.cleared_at).is_(None)
            )
        )
        .scalars()
        .first()
    )
    if row is None:
        return False
    row.cleared_at = now
    session.add(row)
    session.flush()
    if notify:
        _enqueue_delivery(session, row, "alert.cleared")
    return True


def clear_alerts_with_prefix(session: Session, prefix: str, now: datetime) -> int:
    """Close every open alert whose key starts with `prefix` (e.g. all alerts of one order)."""
    rows = session.execute(
        select(AlertRecord).where(
            col(AlertRecord.key).startswith(prefix, autoescape=True), col(AlertRecord.cleared_at).is_(None)
        )
    ).scalars()
    count = 0
    for row in list(rows):
        clear_alert(session, row.key, now)
        count += 1
    return count


def _enqueue_delivery(session: Session, row: AlertRecord, event: str) -> None:
    """One delivery per opening or clearing; the handler does nothing when no URL is configured."""
    assert row.id is not None
    jobs.enqueue(
        session,
        JOB_ALERT_DELIVERY,
        payload={"alert_id": row.id, "event": event, "at": row.last_seen_at.isoformat()},
        max_attempts=20,
    )


def acknowledge(engine: Engine, alert_id: int, by: str, now: datetime) -> AlertView:
    """An operator has seen the alert. It stays open (and listed) until its cause is cleared."""
    with write_session(engine) as session:
        row = session.get(AlertRecord, alert_id)
        if row is None:
            raise LookupError(f"no alert {alert_id}; `fba-bridge alerts --all` lists them")
        row.acknowledged_at = now
        row.acknowledged_by = by[:128]
        session.add(row)
        session.flush()
        return _view(row, None)


def resolve(engine: Engine, alert_id: int, by: str, now: datetime) -> AlertView:
    """An operator closes the alert (e.g. after acting on a one-off event). If its cause comes
    back, the next `raise_alert` opens it again."""
    with write_session(engine) as session:
        row = session.get(AlertRecord, alert_id)
        if row is None:
            raise LookupError(f"no alert {alert_id}; `fba-bridge alerts --all` lists them")
        if row.acknowledged_at is None:
            row.acknowledged_at = now
            row.acknowledged_by = by[:128]
        session.add(row)
        session.flush()
        clear_alert(session, row.key, now)
        return _view(row, None)


def _view(row: AlertRecord, display_id: str | None) -> AlertView:
    assert row.id is not None
    return AlertView(
        id=row.id,
        key=row.key,
        kind=row.kind,
        severity=row.severity,
        message=row.message,
        channel_id=row.channel_id,
        order_id=row.order_id,
        order_display_id=display_id,
        account_id=row.account_id,
        opened_at=row.opened_at,
        last_seen_at=row.last_seen_at,
        occurrences=row.occurrences,
        cleared_at=row.cleared_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
    )


def list_alerts(
    engine: Engine,
    *,
    include_cleared: bool = False,
    order_id: int | None = None,
    channel_id: str | None = None,
    limit: int = 200,
) -> list[AlertView]:
    """Newest first; open ones only unless `include_cleared`."""
    query = (
        select(AlertRecord, col(OrderRecord.display_id))
        .join(OrderRecord, col(OrderRecord.id) == col(AlertRecord.order_id), isouter=True)
        .order_by(col(AlertRecord.last_seen_at).desc(), col(AlertRecord.id).desc())
        .limit(limit)
    )
    if not include_cleared:
        query = query.where(col(AlertRecord.cleared_at).is_(None))
    if order_id is not None:
        query = query.where(col(AlertRecord.order_id) == order_id)
    if channel_id is not None:
        query = query.where(col(AlertRecord.channel_id) == channel_id)
    with read_session(engine) as session:
        return [_view(row, display) for row, display in session.execute(query).all()]


def get_alert(engine: Engine, alert_id: int) -> AlertView | None:
    with read_session(engine) as session:
        row = session.get(AlertRecord, alert_id)
        if row is None:
            return None
        order = session.get(OrderRecord, row.order_id) if row.order_id else None
        return _view(row, order.display_id if order else None)


def open_alert_order_ids() -> Any:
    """A select of the order ids with an open alert (for `orders --attention`)."""
    return select(col(AlertRecord.order_id)).where(
        col(AlertRecord.cleared_at).is_(None), col(AlertRecord.order_id).is_not(None)
    )
