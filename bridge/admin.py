"""Operator queries and actions behind `fba-bridge orders`, `jobs`, `return` and `amazon recheck`.

Everything here shows ids, states, SKUs and reasons, never addresses, names or contact data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, text, union
from sqlalchemy.engine import Engine
from sqlmodel import col

from . import alerts, jobs
from .amazon.breaker_alerts import ALERT_KIND as BREAKER_ALERT_KIND
from .clock import Clock
from .intake import queue_return
from .store import (
    ORDER_ATTENTION,
    AlertRecord,
    JobRecord,
    OrderEventRecord,
    OrderRecord,
    read_session,
    write_session,
)
from .storefronts.base import ReturnItemRequest, ReturnRequest

if TYPE_CHECKING:
    from .bootstrap import Bridge
    from .channels import Channel
    from .storefronts.registry import Storefronts


class AdminError(ValueError):
    pass


@dataclass(frozen=True)
class OrderLine:
    id: int
    channel_id: str
    external_id: str
    display_id: str
    state: str
    amazon_status: str
    attention: str
    created_at: datetime
    updated_at: datetime


def _waiting_jobs() -> Any:
    """Active jobs whose last try failed or was put off (Amazon's error, a parked account, an open
    breaker, a throttled storefront): their orders are blocked until the cause goes away."""
    return select(col(JobRecord.order_id)).where(
        col(JobRecord.status).in_((jobs.READY, jobs.RUNNING)),
        col(JobRecord.last_error) != "",
        col(JobRecord.order_id).is_not(None),
    )


def attention_order_ids() -> Any:
    """A subquery of every order an operator should look at: parked or flagged, with an open
    alert, or with its next step waiting on an error. Each part is read from an index, so the
    list stays fast when the attention set is small and the table large."""
    # `ix_orders_attention` covers exactly ORDER_ATTENTION.
    flagged = select(col(OrderRecord.id)).where(text(ORDER_ATTENTION))
    return union(flagged, alerts.open_alert_order_ids(), _waiting_jobs()).subquery()


def order_name_candidates(ref: str) -> list[str]:
    """The spellings a shop-facing order name may be stored under (`#1001`, `1001`)."""
    ref = ref.strip()
    return sorted({ref, ref.lstrip("#"), "#" + ref.lstrip("#")})


def list_orders(
    engine: Engine,
    *,
    state: str | None = None,
    attention: bool = False,
    limit: int = 50,
    channel: str | None = None,
    search: str = "",
    before: int | None = None,
) -> list[OrderLine]:
    """Newest first. With `attention`: parked or flagged orders, orders with an open alert, and
    orders whose next step is waiting on an error, each with the text that says why. `search`
    matches the shop's order id or its name (`#1001`, with or without `#`); `before` pages on:
    only orders older than that order id (keyset pagination, as cheap on page 2000 as on page 1)."""
    query = select(OrderRecord).order_by(col(OrderRecord.id).desc()).limit(limit)
    if state:
        query = query.where(col(OrderRecord.state) == state)
    if channel:
        query = query.where(col(OrderRecord.channel_id) == channel)
    if before is not None:
        query = query.where(col(OrderRecord.id) < before)
    if search.strip():
        query = query.where(
            or_(
                col(OrderRecord.external_id) == search.strip(),
                col(OrderRecord.display_id).in_(order_name_candidates(search)),
            )
        )
    if attention:
        ids = attention_order_ids()
        query = query.where(col(OrderRecord.id).in_(select(ids.c[0])))
    with read_session(engine) as session:
        rows = list(session.execute(query).scalars())
    unexplained = [r.id for r in rows if r.id is not None and not r.attention_reason]
    alert_text = _open_alert_text(engine, unexplained)
    job_text = _job_error_text(engine, [i for i in unexplained if i not in alert_text])
    return [
        OrderLine(
            r.id or 0,
            r.channel_id,
            r.external_id,
            r.display_id,
            r.state,
            r.amazon_status or "-",
            r.attention_reason or alert_text.get(r.id or 0, "") or job_text.get(r.id or 0, ""),
            r.created_at,
            r.updated_at,
        )
        for r in rows
    ]


def _job_error_text(engine: Engine, order_ids: list[int]) -> dict[int, str]:
    """The newest waiting job's error per order (`waiting: ...`)."""
    if not order_ids:
        return {}
    query = (
        select(col(JobRecord.order_id), col(JobRecord.kind), col(JobRecord.last_error))
        .where(
            col(JobRecord.order_id).in_(order_ids),
            col(JobRecord.status).in_((jobs.READY, jobs.RUNNING)),
            col(JobRecord.last_error) != "",
        )
        .order_by(col(JobRecord.updated_at))
    )
    with read_session(engine) as session:
        rows = session.execute(query).all()
    return {int(order_id): f"{kind} waiting: {error}" for order_id, kind, error in rows}


def account_problems(engine: Engine) -> list[alerts.AlertView]:
    """Open alerts about a whole Amazon account (parked credentials, open circuit breakers)."""
    return [a for a in alerts.list_alerts(engine) if a.account_id and a.order_id is None]


def channel_problems(engine: Engine) -> list[alerts.AlertView]:
    """Open alerts about a whole storefront channel (e.g. its credentials refused)."""
    return [a for a in alerts.list_alerts(engine) if a.channel_id and a.order_id is None and not a.account_id]


def open_breakers(engine: Engine) -> list[alerts.AlertView]:
    return [a for a in account_problems(engine) if a.kind == BREAKER_ALERT_KIND]


def recheck_amazon_account(bridge: Bridge, account_id: str) -> None:
    """Ask Login with Amazon now whether a (parked) account's credentials work. On success the
    account resumes (its alert cleared, its parked jobs due now); otherwise `CredentialsRejected`
    says why. For after the seller re-authorised the app."""
    from .amazon.accounts import build_amazon
    from .amazon.tokens import resume_parked_jobs

    if account_id not in bridge.config.accounts:
        known = ", ".join(sorted(bridge.config.accounts)) or "none"
        raise AdminError(f"no Amazon account {account_id!r} in the channels file (known: {known})")
    amazon = build_amazon(bridge)
    try:
        amazon.for_account(account_id).recheck_credentials()
    finally:
        amazon.close()
    with write_session(bridge.engine) as session:
        resume_parked_jobs(session, account_id)


def _open_alert_text(engine: Engine, order_ids: list[int]) -> dict[int, str]:
    """The newest open alert's message per order, for orders with no parking reason of their own."""
    if not order_ids:
        return {}
    query = (
        select(col(AlertRecord.order_id), col(AlertRecord.message))
        .where(col(AlertRecord.order_id).in_(order_ids), col(AlertRecord.cleared_at).is_(None))
        .order_by(col(AlertRecord.last_seen_at))
    )
    with read_session(engine) as session:
        return {int(order_id): message for order_id, message in session.execute(query).all()}


def find_order(engine: Engine, channel_id: str, order_id: str) -> OrderRecord:
    """The order whose shop id is `order_id` (the ORDER column of `fba-bridge orders`), else the
    one whose shop-facing name it is (`#1001`, with or without the `#`) when only one has it."""
    order_id = order_id.strip()
    channel = col(OrderRecord.channel_id) == channel_id
    with read_session(engine) as session:
        row = (
            session.execute(select(OrderRecord).where(channel, col(OrderRecord.external_id) == order_id))
            .scalars()
            .first()
        )
        if row is not None:
            return row
        named = list(
            session.execute(
                select(OrderRecord)
                .where(channel, col(OrderRecord.display_id).in_(order_name_candidates(order_id)))
                .limit(10)
            ).scalars()
        )
        known_channel = session.execute(select(col(OrderRecord.id)).where(channel).limit(1)).first()
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(sorted(r.external_id for r in named))
        raise AdminError(
            f"{order_id!r} names several orders on channel {channel_id!r}; give the order id: {ids}"
        )
    where = "" if known_channel else f" (no orders at all on channel {channel_id!r})"
    raise AdminError(
        f"no order {order_id!r} on channel {channel_id!r}{where}; `fba-bridge orders` lists the ids"
    )


def audit_trail(engine: Engine, order_id: int) -> list[OrderEventRecord]:
    with read_session(engine) as session:
        query = (
            select(OrderEventRecord)
            .where(col(OrderEventRecord.order_id) == order_id)
            .order_by(col(OrderEventRecord.id))
        )
        return list(session.execute(query).scalars())


def job_counts(engine: Engine) -> dict[tuple[str, str], int]:
    with read_session(engine) as session:
        rows = session.execute(
            select(col(JobRecord.kind), col(JobRecord.status), func.count()).group_by(
                col(JobRecord.kind), col(JobRecord.status)
            )
        ).all()
    return {(kind, status): int(n) for kind, status, n in rows}


@dataclass(frozen=True)
class RetryingJob:
    """A job that failed (or was put off) and waits for its next try: what `fba-bridge jobs` shows."""

    id: int
    kind: str
    status: str
    order: str  # `channel/#name` of its order, or "-"
    attempts: int
    max_attempts: int
    next_try: datetime
    last_error: str


def retrying_jobs(engine: Engine, limit: int = 50) -> list[RetryingJob]:
    """Waiting or running jobs whose last try failed or was put off, most recently failed first."""
    query = (
        select(
            JobRecord, col(OrderRecord.channel_id), col(OrderRecord.display_id), col(OrderRecord.external_id)
        )
        .join(OrderRecord, col(OrderRecord.id) == col(JobRecord.order_id), isouter=True)
        .where(col(JobRecord.status).in_((jobs.READY, jobs.RUNNING)), col(JobRecord.last_error) != "")
        .order_by(col(JobRecord.updated_at).desc(), col(JobRecord.id).desc())
        .limit(limit)
    )
    with read_session(engine) as session:
        rows = session.execute(query).all()
    return [
        RetryingJob(
            id=job.id or 0,
            kind=job.kind,
            status=job.status,
            order=f"{channel}/{display or external}" if channel else "-",
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            next_try=datetime.fromtimestamp(job.run_at, UTC),
            last_error=job.last_error,
        )
        for job, channel, display, external in rows
    ]


def configured_channel(bridge: Bridge, channel_id: str) -> Channel:
    channel = bridge.config.channel(channel_id)
    if channel is None:
        known = ", ".join(sorted(bridge.config.channels)) or "none"
        raise AdminError(f"no channel {channel_id!r} in the channels file (known: {known})")
    return channel


def recheck_channel(bridge: Bridge, channel_id: str, storefronts: Storefronts | None = None) -> bool:
    """Ask CHANNEL's storefront now whether it takes our credentials. On success a parked channel
    resumes (alert cleared, its waiting push jobs due now); a refusal parks it (or keeps it parked)
    and raises `StorefrontRejected`. Returns False when the platform has no read-only check (the
    generic channel): then the waiting jobs are made due now and the first one is the check."""
    from .pipeline import storefront_access
    from .storefronts.push import StorefrontRejected
    from .storefronts.registry import Storefronts as Registry

    channel = configured_channel(bridge, channel_id)
    registry = storefronts or Registry(bridge.clock)
    try:
        checked = registry.for_channel(channel).check_credentials()
    except StorefrontRejected as exc:
        storefront_access.rejected(bridge.engine, bridge.clock, channel.id, exc.code, exc.message)
        raise
    finally:
        if storefronts is None:
            registry.close()
    if checked:
        storefront_access.accepted(bridge.engine, bridge.clock, channel.id)
    else:
        storefront_access.probe_now(bridge.engine, bridge.clock, channel.id)
    return checked


def dead_jobs(engine: Engine) -> list[JobRecord]:
    with read_session(engine) as session:
        return list(session.execute(select(JobRecord).where(col(JobRecord.status) == jobs.DEAD)).scalars())


def retry_job(engine: Engine, clock: Clock, job_id: int) -> None:
    if not jobs.retry_dead(engine, job_id):
        raise AdminError(f"job {job_id} is not dead-lettered (see `fba-bridge jobs`)")
    with write_session(engine) as session:
        alerts.clear_alert(session, f"job_dead:{job_id}", clock.now())


def request_return(
    engine: Engine, clock: Clock, channel_id: str, order_id: str, items: list[str], comment: str = ""
) -> None:
    """`items` are `LINE:QTY` or `LINE:QTY:REASON` (storefront line id, units, Amazon reason code)."""
    parsed = []
    for item in items:
        parts = item.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit() or int(parts[1]) < 1:
            raise AdminError(f"--item {item!r}: write LINE_ID:QUANTITY or LINE_ID:QUANTITY:REASON_CODE")
        parsed.append(
            ReturnItemRequest(parts[0], int(parts[1]), parts[2] if len(parts) == 3 else "", comment)
        )
    row = find_order(engine, channel_id, order_id)
    with write_session(engine) as session:
        locked = session.get(OrderRecord, row.id)
        assert locked is not None
        queue_return(session, locked, ReturnRequest(row.external_id, tuple(parsed)), clock.now())
