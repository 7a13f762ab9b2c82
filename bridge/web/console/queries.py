"""What the console's pages read, beyond the lists `bridge.admin` and `bridge.alerts` already
give (the orders list, the audit trail, job counts, dead jobs, alerts come from there).

Read-only, one read transaction per page. Personal data stays in the `CanonicalOrder`; the
templates show it only through `mask.py` unless an operator revealed it (`reveal.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from ... import alerts, jobs
from ...admin import audit_trail
from ...channels import Channel, ChannelsConfig
from ...orders import CanonicalOrder
from ...pipeline.reconcile import JOB_RECONCILE
from ...store import (
    AlertRecord,
    FulfillmentUnitRecord,
    JobRecord,
    OrderEventRecord,
    OrderRecord,
    PackageRecord,
    PushRecord,
    ReconcileCursorRecord,
    ShipmentRecord,
    SyncCursorRecord,
    db_now,
    read_session,
)


@dataclass(frozen=True)
class OrderDetail:
    row: OrderRecord
    order: CanonicalOrder
    shipments: list[ShipmentRecord]
    packages: list[PackageRecord]
    pushes: list[PushRecord]
    units: list[FulfillmentUnitRecord]
    jobs: list[JobRecord]
    events: list[OrderEventRecord]
    alerts: list[alerts.AlertView]


def order_detail(engine: Engine, order_id: int) -> OrderDetail | None:
    with read_session(engine) as session:
        row = session.get(OrderRecord, order_id)
        if row is None:
            return None

        def of(model: Any, order_by: Any) -> list[Any]:
            query = select(model).where(model.order_id == order_id).order_by(order_by)
            return list(session.execute(query).scalars())

        shipments = of(ShipmentRecord, col(ShipmentRecord.id))
        packages = of(PackageRecord, col(PackageRecord.package_number))
        pushes = of(PushRecord, col(PushRecord.id))
        units = of(FulfillmentUnitRecord, col(FulfillmentUnitRecord.id))
        order_jobs = of(JobRecord, col(JobRecord.id).desc())[:50]
    return OrderDetail(
        row=row,
        order=row.canonical(),
        shipments=shipments,
        packages=packages,
        pushes=pushes,
        units=units,
        jobs=order_jobs,
        events=audit_trail(engine, order_id),
        alerts=alerts.list_alerts(engine, include_cleared=True, order_id=order_id, limit=50),
    )


def order_ref(engine: Engine, order_id: int) -> tuple[str, str] | None:
    with read_session(engine) as session:
        row = session.execute(
            select(col(OrderRecord.channel_id), col(OrderRecord.external_id)).where(
                col(OrderRecord.id) == order_id
            )
        ).first()
    return (str(row[0]), str(row[1])) if row else None


@dataclass(frozen=True)
class ChannelStatus:
    channel: Channel
    secrets: list[tuple[str, str]]  # (what, masked state) - never the value
    last_sync: datetime | None
    last_reconcile: JobRecord | None
    orders: int
    # The last complete reconciliation pass: read up to when, and what it found (counts only).
    reconciled_until: datetime | None = None
    reconcile_summary: dict[str, Any] = field(default_factory=dict)


def _masked(count: int) -> str:
    return f"{count} set (hidden)" if count else "not set"


def channel_secrets(channel: Channel, config: ChannelsConfig) -> list[tuple[str, str]]:
    store = channel.storefront
    account = config.accounts.get(channel.account_id)
    rows = [("webhook secrets", _masked(sum(1 for s in channel.webhook_secrets if s)))]
    for name, secret in (
        ("storefront access token", store.access_token),
        ("storefront consumer key", store.consumer_key),
        ("storefront consumer secret", store.consumer_secret),
        ("callback secret", store.callback_secret),
    ):
        if secret:
            rows.append((name, _masked(1)))
    if account is not None:
        for name, secret in (
            ("Amazon LWA client id", account.client_id),
            ("Amazon LWA client secret", account.client_secret),
            ("Amazon refresh token", account.refresh_token),
        ):
            rows.append((name, _masked(1 if secret else 0)))
    return rows


def channel_statuses(engine: Engine, config: ChannelsConfig) -> list[ChannelStatus]:
    """Per configured channel: masked secrets, the last complete sync of its Amazon account, the
    newest reconciliation pass still on record (finished jobs are compacted after a while)."""
    with read_session(engine) as session:
        cursors = {c.account_id: c.updated_at for c in session.execute(select(SyncCursorRecord)).scalars()}
        reconciled = {c.channel_id: c for c in session.execute(select(ReconcileCursorRecord)).scalars()}
        passes = list(
            session.execute(
                select(JobRecord)
                .where(col(JobRecord.kind) == JOB_RECONCILE)
                .order_by(col(JobRecord.id).desc())
                .limit(500)
            ).scalars()
        )
        counts = dict(
            session.execute(
                select(col(OrderRecord.channel_id), func.count()).group_by(col(OrderRecord.channel_id))
            ).all()
        )
    newest: dict[str, JobRecord] = {}
    for job in passes:
        newest.setdefault(str(job.payload.get("channel_id", "")), job)
    return [
        ChannelStatus(
            channel=channel,
            secrets=channel_secrets(channel, config),
            last_sync=cursors.get(channel.account_id),
            last_reconcile=newest.get(channel.id),
            orders=int(counts.get(channel.id, 0)),
            reconciled_until=reconciled[channel.id].synced_until if channel.id in reconciled else None,
            reconcile_summary=dict(reconciled[channel.id].last_summary) if channel.id in reconciled else {},
        )
        for channel in sorted(config.channels.values(), key=lambda c: c.id)
    ]


@dataclass(frozen=True)
class Health:
    database: bool
    orders_by_state: list[tuple[str, int]]
    jobs_by_status: dict[str, int]
    oldest_due_s: float | None
    alerts_open: int
    alerts_unacknowledged: int
    last_sync: list[tuple[str, datetime]]


def health(engine: Engine) -> Health:
    """One glance: is the database there, how many orders in each state, is the queue moving."""
    try:
        with read_session(engine) as session:
            now = db_now(session)
            states = session.execute(
                select(col(OrderRecord.state), func.count())
                .group_by(col(OrderRecord.state))
                .order_by(col(OrderRecord.state))
            ).all()
            statuses = session.execute(
                select(col(JobRecord.status), func.count())
                .where(col(JobRecord.status).in_((jobs.READY, jobs.RUNNING, jobs.DEAD)))
                .group_by(col(JobRecord.status))
            ).all()
            oldest = session.execute(
                select(func.min(col(JobRecord.run_at))).where(
                    col(JobRecord.status) == jobs.READY, col(JobRecord.run_at) <= now
                )
            ).scalar_one_or_none()
            open_alerts = session.execute(
                select(col(AlertRecord.acknowledged_at)).where(col(AlertRecord.cleared_at).is_(None))
            ).all()
            syncs = session.execute(
                select(col(SyncCursorRecord.account_id), col(SyncCursorRecord.updated_at)).order_by(
                    col(SyncCursorRecord.account_id)
                )
            ).all()
    except Exception:  # the page says the database is unreachable instead of failing
        return Health(False, [], {}, None, 0, 0, [])
    return Health(
        database=True,
        orders_by_state=[(str(s), int(n)) for s, n in states],
        jobs_by_status={str(s): int(n) for s, n in statuses},
        oldest_due_s=max(0.0, now - float(oldest)) if oldest is not None else None,
        alerts_open=len(open_alerts),
        alerts_unacknowledged=sum(1 for (acked,) in open_alerts if acked is None),
        last_sync=[(str(a), t) for a, t in syncs],
    )
