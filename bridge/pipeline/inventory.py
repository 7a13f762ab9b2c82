"""Inventory sync: Amazon's sellable FBA stock into every storefront, at a cost that follows change.

Two jobs, both through the job queue:

- `inventory_sync` (one per Amazon account and marketplace; the clock enqueues it at each
  channel's `inventory.interval_s`): reads what changed at Amazon since the last complete read
  minus `CHANGES_OVERLAP` (`getInventorySummaries` with `startDateTime`), or, once per
  `full_sweep_h` (and on the first run, or when a channel's SKU map or buffers changed), every
  mapped SKU by name, because Amazon documents that its change feed misses some changes. In one
  transaction it records Amazon's quantities, recomputes the targets of the storefront SKUs whose
  Amazon quantity or in-flight units changed (`stock.py`), advances the cursor and queues one
  push job per channel that has a storefront SKU whose known value differs from its target.
- `inventory_push` (one per channel): sends those SKUs to the storefront in the platform's batch
  size (`storefronts/<platform>_inventory.py`) and records each outcome with the target version
  it set; a target that moved meanwhile stays due. A value the storefront changed under us (a sale
  the bridge has not heard of yet) is not overwritten: it is recorded and tried again after
  `STALE_RETRY`, when the order's webhook has had time to arrive. A retried job reads the
  storefront first. A SKU the shop lacks (or does not track) raises one warning alert, is looked
  at again every `RECHECK_AFTER`, and its alert clears once it syncs.

In-flight units are read before Amazon is asked, so an order that reaches Amazon during the read
is counted twice for one cycle (a target one too low), never not at all (one too high).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlmodel import Session, col

from .. import alerts, jobs
from ..amazon import errors as amz
from ..amazon.inventory import InventorySummary
from ..bootstrap import Bridge
from ..channels import Channel
from ..orders import CanonicalOrder
from ..store import (
    AmazonStockRecord,
    InventoryCursorRecord,
    OrderRecord,
    StorefrontStockRecord,
    read_session,
    write_session,
)
from ..storefronts.inventory import NEEDS_OPERATOR, StockItem, StockOutcome, StockStatus
from ..storefronts.push import PushError, StorefrontRejected
from ..worker import JobContext, RetryLater
from . import storefront_access
from .common import amazon_retry
from .stock import IN_FLIGHT_STATES, Target, in_flight_units, mapping_digest, needs_push, targets_for

log = logging.getLogger("bridge.inventory")

JOB_INVENTORY_SYNC = "inventory_sync"
JOB_INVENTORY_PUSH = "inventory_push"

CHANGES_OVERLAP = timedelta(minutes=5)
STALE_RETRY = timedelta(seconds=60)
RECHECK_AFTER = timedelta(hours=1)
ERROR_RETRY = timedelta(minutes=15)
REJECTED_RETRY_S = 900.0
PUSH_TIME_BUDGET_S = 120.0
_CHUNK = 500


def sync_key(account_id: str, marketplace_id: str) -> str:
    return f"{JOB_INVENTORY_SYNC}:{account_id}:{marketplace_id}"


def push_key(channel_id: str) -> str:
    return f"{JOB_INVENTORY_PUSH}:{channel_id}"


def sku_alert_key(channel_id: str, storefront_sku: str) -> str:
    return f"inventory:{channel_id}:sku:{storefront_sku}"


def push_alert_key(channel_id: str) -> str:
    return f"inventory:{channel_id}:push"


def synced_channels(bridge: Bridge, account_id: str, marketplace_id: str) -> list[Channel]:
    """Enabled channels with inventory sync on this Amazon account and marketplace."""
    return [
        c
        for c in bridge.config.channels.values()
        if c.enabled
        and c.inventory.sync
        and c.account_id == account_id
        and c.marketplace_id == marketplace_id
    ]


def enqueue_sync(session: Session, channel: Channel, *, full: bool = False, delay_s: float = 0.0) -> bool:
    """Queue a sync of the channel's account and marketplace (False: one is already queued or running)."""
    payload: dict[str, object] = {
        "account_id": channel.account_id,
        "marketplace_id": channel.marketplace_id,
        "channel_id": channel.id,
    }
    if full:
        payload["full"] = True
    return jobs.enqueue(
        session,
        JOB_INVENTORY_SYNC,
        payload=payload,
        dedupe_key=sync_key(channel.account_id, channel.marketplace_id),
        delay_s=delay_s,
    )


# --------------------------------------------------------------------------------------------
# inventory_sync


@dataclass(frozen=True)
class SyncResult:
    mode: str  # "changes" | "sweep"
    summaries: int
    amazon_changed: int
    targets_changed: int
    pushes_queued: int


def handle_inventory_sync(ctx: JobContext) -> None:
    bridge = ctx.bridge
    account_id = str(ctx.job.payload["account_id"])
    marketplace_id = str(ctx.job.payload["marketplace_id"])
    channels = synced_channels(bridge, account_id, marketplace_id)
    if not channels:
        return
    started = bridge.clock.now()
    digest = mapping_digest(channels)
    mapped = sorted({sku for c in channels for sku in c.sku_map.values()})
    with read_session(bridge.engine) as session:
        cursor = session.get(InventoryCursorRecord, (account_id, marketplace_id))
        flying = _in_flight(session, bridge, account_id, marketplace_id)
        remapped = cursor is None or cursor.mapping != digest
        unknown: list[str] = []
        if remapped and cursor is not None:
            known = set(_stored_skus(session, account_id, marketplace_id))
            unknown = [s for s in mapped if s not in known]
    sweep_every = timedelta(hours=min(c.inventory.full_sweep_h for c in channels))
    full = bool(ctx.job.payload.get("full")) or (
        cursor is None
        or cursor.changes_until is None
        or cursor.swept_at is None
        or started - cursor.swept_at >= sweep_every
    )
    inventory = ctx.services["amazon"].inventory(account_id)
    try:
        if full:
            summaries = list(inventory.for_skus(marketplace_id, mapped))
        else:
            assert cursor is not None and cursor.changes_until is not None
            summaries = list(inventory.changed_since(marketplace_id, cursor.changes_until - CHANGES_OVERLAP))
            if unknown:
                summaries += list(inventory.for_skus(marketplace_id, unknown))
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channels[0]) from None
    with ctx.finish() as session:
        result = apply_inventory(
            session,
            bridge,
            account_id,
            marketplace_id,
            channels,
            summaries,
            flying,
            started,
            full=full,
            remapped=remapped,
            digest=digest,
        )
    log.info(
        "inventory sync account=%s marketplace=%s mode=%s summaries=%d amazon_changed=%d "
        "targets_changed=%d pushes_queued=%d",
        account_id,
        marketplace_id,
        result.mode,
        result.summaries,
        result.amazon_changed,
        result.targets_changed,
        result.pushes_queued,
    )


def _in_flight(session: Session, bridge: Bridge, account_id: str, marketplace_id: str) -> dict[str, int]:
    """Amazon SKU -> units of accepted orders Amazon does not hold yet, over every channel that
    draws on this account's stock in this marketplace."""
    channels = {
        c.id: c
        for c in bridge.config.channels.values()
        if c.account_id == account_id and c.marketplace_id == marketplace_id
    }
    if not channels:
        return {}
    rows = session.execute(
        select(col(OrderRecord.channel_id), col(OrderRecord.data)).where(
            col(OrderRecord.state).in_([s.value for s in IN_FLIGHT_STATES]),
            col(OrderRecord.channel_id).in_(list(channels)),
        )
    ).all()
    return in_flight_units((channels[cid], CanonicalOrder.from_json(data)) for cid, data in rows)


def _stored_skus(session: Session, account_id: str, marketplace_id: str) -> list[str]:
    return list(
        session.execute(
            select(col(AmazonStockRecord.amazon_sku)).where(
                col(AmazonStockRecord.account_id) == account_id,
                col(AmazonStockRecord.marketplace_id) == marketplace_id,
            )
        ).scalars()
    )


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def apply_inventory(
    session: Session,
    bridge: Bridge,
    account_id: str,
    marketplace_id: str,
    channels: Sequence[Channel],
    summaries: Sequence[InventorySummary],
    in_flight: dict[str, int],
    now: datetime,
    *,
    full: bool,
    remapped: bool,
    digest: str,
) -> SyncResult:
    """Record Amazon's quantities, recompute the affected targets, advance the cursor, queue pushes."""
    mapped = {sku for c in channels for sku in c.sku_map.values()}
    reported = {s.seller_sku: s for s in summaries if s.seller_sku in mapped}
    levels = _levels(session, account_id, marketplace_id, sorted(mapped if (full or remapped) else reported))
    changed: set[str] = set()
    for sku, summary in reported.items():
        row = levels.get(sku)
        if row is None:
            row = levels[sku] = AmazonStockRecord(
                account_id=account_id,
                marketplace_id=marketplace_id,
                amazon_sku=sku,
                changed_at=now,
                seen_at=now,
            )
            changed.add(sku)
        elif row.fulfillable != summary.fulfillable or not row.known:
            row.changed_at = now
            changed.add(sku)
        row.fulfillable, row.total, row.reserved, row.inbound = (
            summary.fulfillable,
            summary.total,
            summary.reserved,
            summary.inbound,
        )
        row.known, row.amazon_updated_at, row.seen_at = True, summary.last_updated, now
        session.add(row)
    if full:
        for sku in mapped - set(reported):  # Amazon holds no stock record: nothing to sell
            row = levels.get(sku)
            if row is None:
                row = levels[sku] = AmazonStockRecord(
                    account_id=account_id,
                    marketplace_id=marketplace_id,
                    amazon_sku=sku,
                    known=False,
                    changed_at=now,
                    seen_at=now,
                )
                changed.add(sku)
            elif row.known or row.fulfillable:
                row.known, row.fulfillable, row.changed_at = False, 0, now
                changed.add(sku)
            row.seen_at = now
            session.add(row)
    session.flush()

    channel_ids = [c.id for c in channels]
    flying_before = set(
        session.execute(
            select(col(StorefrontStockRecord.amazon_sku)).where(
                col(StorefrontStockRecord.channel_id).in_(channel_ids),
                col(StorefrontStockRecord.in_flight) > 0,
            )
        ).scalars()
    )
    scope = mapped if (full or remapped) else (changed | set(in_flight) | flying_before) & mapped
    missing_levels = sorted(scope - set(levels))
    levels.update(_levels(session, account_id, marketplace_id, missing_levels))
    fulfillable = {sku: row.fulfillable for sku, row in levels.items()}
    updated_at = {sku: row.amazon_updated_at for sku, row in levels.items()}
    targets_changed = 0
    for channel in channels:
        targets = targets_for(channel, scope & set(channel.sku_map.values()), fulfillable, in_flight)
        targets_changed += _store_targets(session, channel, targets, updated_at, now, prune=remapped)
    cursor = session.get(InventoryCursorRecord, (account_id, marketplace_id), with_for_update=True)
    if cursor is None:
        cursor = InventoryCursorRecord(account_id=account_id, marketplace_id=marketplace_id, updated_at=now)
    cursor.changes_until = now
    if full:
        cursor.swept_at = now
    cursor.mapping = digest
    cursor.updated_at = now
    session.add(cursor)
    queued = sum(enqueue_push_if_due(session, channel, now) for channel in channels)
    return SyncResult("sweep" if full else "changes", len(summaries), len(changed), targets_changed, queued)


def _levels(
    session: Session, account_id: str, marketplace_id: str, skus: Sequence[str]
) -> dict[str, AmazonStockRecord]:
    out: dict[str, AmazonStockRecord] = {}
    for part in _chunks(skus):
        query = (
            select(AmazonStockRecord)
            .where(
                col(AmazonStockRecord.account_id) == account_id,
                col(AmazonStockRecord.marketplace_id) == marketplace_id,
                col(AmazonStockRecord.amazon_sku).in_(list(part)),
            )
            .with_for_update()
        )
        out.update({row.amazon_sku: row for row in session.execute(query).scalars()})
    return out


def _store_targets(
    session: Session,
    channel: Channel,
    targets: Sequence[Target],
    amazon_updated: dict[str, datetime | None],
    now: datetime,
    *,
    prune: bool,
) -> int:
    existing: dict[str, StorefrontStockRecord] = {}
    skus = [t.storefront_sku for t in targets]
    for part in _chunks(skus):
        query = (
            select(StorefrontStockRecord)
            .where(
                col(StorefrontStockRecord.channel_id) == channel.id,
                col(StorefrontStockRecord.storefront_sku).in_(list(part)),
            )
            .with_for_update()
        )
        existing.update({row.storefront_sku: row for row in session.execute(query).scalars()})
    changed = 0
    for target in targets:
        row = existing.get(target.storefront_sku)
        if row is None:
            row = StorefrontStockRecord(
                channel_id=channel.id,
                storefront_sku=target.storefront_sku,
                amazon_sku=target.amazon_sku,
                target=target.target,
                target_version=1,
                target_changed_at=now,
                amazon_changed_at=amazon_updated.get(target.amazon_sku),
                updated_at=now,
            )
            changed += 1
        elif row.target != target.target or row.amazon_sku != target.amazon_sku:
            row.target = target.target
            row.target_version += 1
            row.target_changed_at = now
            row.amazon_changed_at = amazon_updated.get(target.amazon_sku)
            changed += 1
        row.amazon_sku = target.amazon_sku
        row.amazon_quantity = target.fulfillable
        row.in_flight = target.in_flight
        row.updated_at = now
        session.add(row)
    if prune:
        gone = [
            sku
            for sku in session.execute(
                select(col(StorefrontStockRecord.storefront_sku)).where(
                    col(StorefrontStockRecord.channel_id) == channel.id
                )
            ).scalars()
            if sku not in channel.sku_map
        ]
        for part in _chunks(gone):
            session.execute(
                delete(StorefrontStockRecord).where(
                    col(StorefrontStockRecord.channel_id) == channel.id,
                    col(StorefrontStockRecord.storefront_sku).in_(list(part)),
                )
            )
        for sku in gone:
            alerts.clear_alert(session, sku_alert_key(channel.id, sku), now)
    session.flush()
    return changed


def _due(channel_id: str, now: datetime):  # type: ignore[no-untyped-def]
    """Rows whose storefront value (as known) differs from the target and that may be tried now."""
    return select(StorefrontStockRecord).where(
        col(StorefrontStockRecord.channel_id) == channel_id,
        col(StorefrontStockRecord.storefront_quantity).is_(None)
        | (col(StorefrontStockRecord.storefront_quantity) != col(StorefrontStockRecord.target)),
        col(StorefrontStockRecord.retry_at).is_(None) | (col(StorefrontStockRecord.retry_at) <= now),
    )


def enqueue_push_if_due(session: Session, channel: Channel, now: datetime) -> bool:
    if session.execute(_due(channel.id, now).limit(1)).first() is None:
        return False
    return jobs.enqueue(
        session, JOB_INVENTORY_PUSH, payload={"channel_id": channel.id}, dedupe_key=push_key(channel.id)
    )


# --------------------------------------------------------------------------------------------
# inventory_push


def handle_inventory_push(ctx: JobContext) -> None:
    bridge = ctx.bridge
    channel = bridge.config.channel(str(ctx.job.payload["channel_id"]))
    if channel is None or not channel.enabled or not channel.inventory.sync:
        return
    parked = storefront_access.gate(bridge.engine, bridge.clock, channel.id)
    if parked is not None:  # the push-back's parking: one probe a minute for the whole channel
        raise RetryLater(
            f"{storefront_access.parked_marker(channel.id)} {parked.reason}",
            after_s=parked.wait_s,
            count_attempt=False,
        )
    writer = ctx.services["storefronts"].stock_for(channel)
    reread = ctx.job.attempts > 1
    deadline = time.monotonic() + PUSH_TIME_BUDGET_S
    pushed = 0
    while True:
        now = bridge.clock.now()
        with read_session(bridge.engine) as session:
            rows = list(
                session.execute(
                    _due(channel.id, now)
                    .order_by(col(StorefrontStockRecord.target_changed_at), col(StorefrontStockRecord.id))
                    .limit(writer.batch_size)
                ).scalars()
            )
        if not rows:
            break
        items = [
            StockItem(
                sku=r.storefront_sku,
                target=r.target,
                version=r.target_version,
                expected=r.storefront_quantity,
                ref=r.storefront_ref,
                parent=r.storefront_parent,
            )
            for r in rows
        ]
        try:
            outcomes = writer.set_stock(items, reread=reread)
        except StorefrontRejected as exc:
            wait = storefront_access.rejected(bridge.engine, bridge.clock, channel.id, exc.code, exc.message)
            raise RetryLater(
                f"{storefront_access.parked_marker(channel.id)} {exc.message}",
                after_s=wait,
                count_attempt=False,
            ) from None
        except PushError as exc:
            if not exc.retryable:
                _channel_problem(bridge, channel, exc.message)
                raise RetryLater(exc.message, after_s=REJECTED_RETRY_S, count_attempt=False) from None
            raise RetryLater(exc.message, after_s=exc.retry_after) from None
        storefront_access.accepted(bridge.engine, bridge.clock, channel.id)
        with write_session(bridge.engine) as session:
            jobs.assert_held(session, ctx.job)
            record_outcomes(session, channel, items, outcomes, bridge.clock.now())
        pushed += len(items)
        reread = False
        if time.monotonic() > deadline:
            raise RetryLater(f"pushed {pushed} SKU(s); more are due", after_s=0.0, count_attempt=False)
    with ctx.finish() as session:
        alerts.clear_alert(session, push_alert_key(channel.id), bridge.clock.now())
    if pushed:
        log.info("inventory push channel=%s items=%d", channel.id, pushed)


def _channel_problem(bridge: Bridge, channel: Channel, message: str) -> None:
    with write_session(bridge.engine) as session:
        alerts.raise_alert(
            session,
            key=push_alert_key(channel.id),
            kind="inventory_push",
            message=f"inventory sync of channel {channel.id} cannot write to the storefront: {message}",
            now=bridge.clock.now(),
            channel_id=channel.id,
        )


def record_outcomes(
    session: Session,
    channel: Channel,
    items: Sequence[StockItem],
    outcomes: Sequence[StockOutcome],
    now: datetime,
) -> None:
    """Store what the storefront answered, item by item, under the rows' locks."""
    sent = {i.sku: i for i in items}
    rows = {
        r.storefront_sku: r
        for r in session.execute(
            select(StorefrontStockRecord)
            .where(
                col(StorefrontStockRecord.channel_id) == channel.id,
                col(StorefrontStockRecord.storefront_sku).in_(list(sent)),
            )
            .with_for_update()
        ).scalars()
    }
    answered: set[str] = set()
    for outcome in outcomes:
        row, item = rows.get(outcome.sku), sent.get(outcome.sku)
        if row is None or item is None:
            continue
        answered.add(outcome.sku)
        _apply_outcome(session, channel, row, item, outcome, now)
    for sku in set(rows) - answered:  # the writer left it out: look again later
        rows[sku].retry_at = now + STALE_RETRY
        rows[sku].updated_at = now
        session.add(rows[sku])


def _apply_outcome(
    session: Session,
    channel: Channel,
    row: StorefrontStockRecord,
    item: StockItem,
    outcome: StockOutcome,
    now: datetime,
) -> None:
    previous = row.status
    row.updated_at = now
    if outcome.ref:
        row.storefront_ref, row.storefront_parent = outcome.ref[:200], outcome.parent[:64]
    if outcome.status in (StockStatus.SET, StockStatus.UNCHANGED):
        row.storefront_quantity = outcome.quantity
        if outcome.status is StockStatus.SET:
            row.pushed_quantity, row.pushed_version, row.pushed_at = outcome.quantity, item.version, now
        row.retry_at = None
        row.status, row.status_detail = "ok", ""
        if previous != "ok":
            alerts.clear_alert(session, sku_alert_key(channel.id, row.storefront_sku), now)
    elif outcome.status is StockStatus.STALE:
        row.storefront_quantity = outcome.quantity
        row.retry_at = now + STALE_RETRY
    else:
        row.status, row.status_detail = outcome.status.value, outcome.detail[:500]
        row.storefront_quantity = None
        if outcome.status in NEEDS_OPERATOR:
            row.storefront_ref = outcome.ref[:200]
        row.retry_at = now + (RECHECK_AFTER if outcome.status in NEEDS_OPERATOR else ERROR_RETRY)
        if previous != row.status:
            alerts.raise_alert(
                session,
                key=sku_alert_key(channel.id, row.storefront_sku),
                kind="inventory_sku",
                message=f"channel {channel.id}: storefront SKU {row.storefront_sku} (Amazon "
                f"{row.amazon_sku}) is not synced: {outcome.detail or outcome.status.value}. Fix it in the "
                "shop, or remove the SKU from skus.map",
                now=now,
                channel_id=channel.id,
                severity=alerts.Severity.WARNING,
            )
    session.add(row)


# --------------------------------------------------------------------------------------------
# Operator view


@dataclass(frozen=True)
class StockLine:
    channel_id: str
    storefront_sku: str
    amazon_sku: str
    amazon_quantity: int
    in_flight: int
    target: int
    storefront_quantity: int | None
    pushed_quantity: int | None
    pushed_at: datetime | None
    status: str
    detail: str
    in_sync: bool


@dataclass(frozen=True)
class CursorLine:
    account_id: str
    marketplace_id: str
    changes_until: datetime | None
    swept_at: datetime | None


def stock_report(
    bridge: Bridge, channel_id: str | None = None, sku: str | None = None, limit: int = 200
) -> tuple[list[CursorLine], list[StockLine]]:
    """What `fba-bridge inventory` shows: per storefront SKU, Amazon's quantity, the target, the
    storefront's last pushed value and when; and how far each account's changes have been read."""
    query = select(StorefrontStockRecord).order_by(
        col(StorefrontStockRecord.channel_id), col(StorefrontStockRecord.storefront_sku)
    )
    if channel_id:
        query = query.where(col(StorefrontStockRecord.channel_id) == channel_id)
    if sku:
        query = query.where(
            (col(StorefrontStockRecord.storefront_sku) == sku)
            | (col(StorefrontStockRecord.amazon_sku) == sku)
        )
    with read_session(bridge.engine) as session:
        rows = list(session.execute(query.limit(limit)).scalars())
        cursors = list(session.execute(select(InventoryCursorRecord)).scalars())
    lines = [
        StockLine(
            r.channel_id,
            r.storefront_sku,
            r.amazon_sku,
            r.amazon_quantity,
            r.in_flight,
            r.target,
            r.storefront_quantity,
            r.pushed_quantity,
            r.pushed_at,
            r.status,
            r.status_detail,
            not needs_push(r.target, r.storefront_quantity),
        )
        for r in rows
    ]
    wanted = {
        (c.account_id, c.marketplace_id)
        for c in bridge.config.channels.values()
        if not channel_id or c.id == channel_id
    }
    return (
        [
            CursorLine(c.account_id, c.marketplace_id, c.changes_until, c.swept_at)
            for c in cursors
            if (c.account_id, c.marketplace_id) in wanted
        ],
        lines,
    )
