"""Amazon-side drift: what Amazon holds that our tables do not say, found by the sync.

Two questions, asked by the account-wide sync (`sync.handle_sync`, on every listing of changed
orders) and the periodic stale sync (`sync.handle_sync_stale`):

- **Orders Amazon has that we do not know, or know in another state.** A worker that crashed
  after `createFulfillmentOrder` but before it recorded the answer (and whose job then died)
  leaves an order at Amazon that we hold as `submitting`, `received` or parked. When the
  `sellerFulfillmentOrderId` is ours (`plan.seller_fulfillment_order_id` of an order we hold),
  the order is *adopted*: moved to `submitted` (or `held_at_amazon` for a held create) through
  the state machine, with an audit entry, and a per-order sync reads the rest (shipments, or a
  cancellation made in Seller Central, which the per-order sync already turns into `cancelled`
  plus a storefront note and an alert). An order we hold as cancelled or not for Amazon that
  Amazon is still fulfilling, and an order whose id is not ours, raise an alert (one per order).
- **Orders at Amazon without progress.** `Received`/`Planning` for longer than the account's
  `stuck.received_h`, or `Processing` more than `stuck.processing_grace_h` past Amazon's
  estimated ship date, raise one alert per order and cause; it clears once the order moves.

Messages name orders by id, channel and Amazon status only; never personal data.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from .. import alerts
from ..amazon.models import FINAL_ORDER_STATUSES, FulfillmentOrder
from ..audit import note, transition
from ..bootstrap import Bridge
from ..channels import Channel
from ..orders import TRANSITIONS, Event, OrderState
from ..store import AlertRecord, OrderPartRecord, OrderRecord, lock_order
from .plan import seller_fulfillment_order_id

log = logging.getLogger("bridge.drift")

#: Our states that say "not at Amazon (yet)": an order Amazon has is adopted from these.
ADOPTABLE = frozenset(
    {"awaiting_payment", "received", "needs_attention", "not_for_amazon", "submitting", "awaiting_approval"}
)
#: Our states that say "never going to Amazon": Amazon fulfilling it is an alert, not an adoption.
ENDED_HERE = frozenset({"cancelled"})
#: Events adoption may walk through to reach the state Amazon is in.
_ADOPTION_EVENTS = (
    Event.APPROVE,
    Event.RETRY,
    Event.PAID,
    Event.SUBMIT_STARTED,
    Event.CREATED,
    Event.CREATED_ON_HOLD,
)
STUCK_KIND = "stuck"
DRIFT_KIND = "amazon_drift"
WAITING = ("Received", "Planning")
PROCESSING = "Processing"


@dataclass(frozen=True)
class DriftFound:
    adopted: tuple[int, ...] = ()
    alerts: int = 0


def adoption_path(state: OrderState, target: OrderState) -> list[Event] | None:
    """The shortest walk through the state machine from `state` to `target` using only the
    events a submission goes through (the order was created at Amazon; we missed recording it)."""
    queue: deque[tuple[OrderState, list[Event]]] = deque([(state, [])])
    seen = {state}
    while queue:
        current, path = queue.popleft()
        if current is target:
            return path
        for event in _ADOPTION_EVENTS:
            following = TRANSITIONS.get((current, event))
            if following is not None and following not in seen:
                seen.add(following)
                queue.append((following, [*path, event]))
    return None


def find_drift(
    session: Session,
    bridge: Bridge,
    account_id: str,
    listed: Sequence[FulfillmentOrder],
    now: datetime,
    *,
    watched_since: datetime | None = None,
) -> DriftFound:
    """Compare one listing of Amazon's changed orders with our tables (the sync's transaction).

    `watched_since`: where the previous listing of the account began (None on its first sync).
    An order that is not ours and was received before then was there before the bridge (or was
    reported when it first appeared): it is not reported again each time its status changes.
    Orders with our id format are always reported, and ours always adopted."""
    if not listed:
        return DriftFound()
    channels = [c for c in bridge.config.channels.values() if c.account_id == account_id]
    ids = [h.seller_fulfillment_order_id for h in listed]
    known: dict[str, OrderRecord] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(OrderRecord).where(col(OrderRecord.seller_fulfillment_order_id).in_(chunk))
        for row in session.execute(query).scalars():
            assert row.seller_fulfillment_order_id is not None
            known[row.seller_fulfillment_order_id] = row
        # The later parts of a split order (`<id>-2`, ...) are ours too: they belong to their order.
        parts = session.execute(
            select(col(OrderPartRecord.seller_fulfillment_order_id), OrderRecord)
            .join(OrderRecord, col(OrderRecord.id) == col(OrderPartRecord.order_id))
            .where(col(OrderPartRecord.seller_fulfillment_order_id).in_(chunk))
        ).all()
        for part_id, row in parts:
            known.setdefault(part_id, row)
    adopted: list[int] = []
    raised = 0
    for header in listed:
        sfo_id = header.seller_fulfillment_order_id
        row = known.get(sfo_id) or _ours_unrecorded(session, channels, sfo_id)
        if row is None:
            if _reportable(header, channels, watched_since):
                raised += _unknown(session, account_id, channels, header, now)
        elif row.state in ADOPTABLE:
            if _adopt(session, row, header, now):
                assert row.id is not None
                adopted.append(row.id)
            else:
                raised += _alert_state(session, row, header, now)
        elif row.state in ENDED_HERE and header.status not in FINAL_ORDER_STATUSES:
            raised += _alert_state(session, row, header, now)
    return DriftFound(tuple(adopted), raised)


def _reportable(
    header: FulfillmentOrder, channels: Sequence[Channel], watched_since: datetime | None
) -> bool:
    if any(header.seller_fulfillment_order_id.startswith(f"{c.id}-") for c in channels):
        return True
    if watched_since is None:
        return False
    return header.received_date is None or header.received_date >= watched_since


def _ours_unrecorded(session: Session, channels: Iterable[Channel], sfo_id: str) -> OrderRecord | None:
    """An order we hold whose deterministic id is `sfo_id`, though the id was never recorded."""
    for channel in channels:
        prefix = f"{channel.id}-"
        if sfo_id.startswith(prefix):
            external_id = sfo_id[len(prefix) :]
            if seller_fulfillment_order_id(channel.id, external_id) != sfo_id:
                continue
            row = (
                session.execute(
                    select(OrderRecord).where(
                        col(OrderRecord.channel_id) == channel.id, col(OrderRecord.external_id) == external_id
                    )
                )
                .scalars()
                .first()
            )
            if row is not None:
                return row
    if not sfo_id.startswith("fbb-"):
        return None
    # Hashed ids (long or unusual order ids) cannot be read back: compare with the orders that
    # have no id recorded yet and are not at Amazon (a small set: the intake backlog).
    query = select(OrderRecord).where(
        col(OrderRecord.channel_id).in_([c.id for c in channels]),
        col(OrderRecord.seller_fulfillment_order_id).is_(None),
        col(OrderRecord.state).in_(sorted(ADOPTABLE)),
    )
    for row in session.execute(query).scalars():
        if seller_fulfillment_order_id(row.channel_id, row.external_id) == sfo_id:
            return row
    return None


def _adopt(session: Session, row: OrderRecord, header: FulfillmentOrder, now: datetime) -> bool:
    target = OrderState.HELD_AT_AMAZON if header.fulfillment_action == "Hold" else OrderState.SUBMITTED
    path = adoption_path(row.order_state, target)
    if path is None:
        return False
    assert row.id is not None
    locked = lock_order(session, row.id)
    was = locked.state
    locked.seller_fulfillment_order_id = header.seller_fulfillment_order_id
    reason = (
        f"adopted: Amazon has {header.seller_fulfillment_order_id} ({header.status}) though the "
        f"fba-bridge had the order as {was}"
    )
    for event in path:
        transition(session, locked, event, now, reason)
    session.add(locked)
    log.warning("order_id=%s adopted from Amazon (%s, was %s)", locked.id, header.status, was)
    return True


def _alert_state(session: Session, row: OrderRecord, header: FulfillmentOrder, now: datetime) -> int:
    ref = row.display_id or row.external_id
    alerts.raise_alert(
        session,
        key=f"order:{row.id}:amazon_drift",
        kind=DRIFT_KIND,
        message=(
            f"order {ref} ({row.channel_id}) is {row.state} here but {header.status} at Amazon "
            f"({header.seller_fulfillment_order_id}); if it must not ship, cancel it in Seller Central "
            "while it is Received or Planning; if it should, nothing to do once it ships"
        ),
        now=now,
        order_id=row.id,
        channel_id=row.channel_id,
    )
    note(
        session, row, "amazon:drift", now, f"Amazon reports {header.status} for an order that is {row.state}"
    )
    return 1


def _unknown(
    session: Session, account_id: str, channels: Sequence[Channel], header: FulfillmentOrder, now: datetime
) -> int:
    sfo_id = header.seller_fulfillment_order_id
    ours = next((c for c in channels if sfo_id.startswith(f"{c.id}-")), None)
    if ours is not None:
        why = (
            f"its id has the bridge's format for channel {ours.id}, but the bridge holds no such order "
            f"(a storefront order that never arrived?); run `fba-bridge reconcile {ours.id}`, then check it "
            "in Seller Central"
        )
    else:
        why = (
            "it was not created by this bridge (Seller Central or another app); nothing to do if that "
            "was intended, otherwise cancel it in Seller Central"
        )
    alerts.raise_alert(
        session,
        key=f"amazon:{account_id}:unknown:{sfo_id}",
        kind=DRIFT_KIND,
        message=f"Amazon account {account_id} has fulfillment order {sfo_id} ({header.status}); {why}",
        now=now,
        account_id=account_id,
        channel_id=ours.id if ours else None,
        severity=alerts.Severity.WARNING,
    )
    return 1


# --------------------------------------------------------------------------------------------
# Stuck orders


def stuck_key(order_id: int, status: str) -> str:
    return f"order:{order_id}:stuck:{status}"


def check_stuck(session: Session, bridge: Bridge, now: datetime) -> int:
    """Raise an alert per order sitting at Amazon without progress (see the module docstring),
    and clear those whose order moved on. Returns how many are open after the check."""
    stuck: dict[str, tuple[OrderRecord, str, str]] = {}
    for account in bridge.config.accounts.values():
        channel_ids = [c.id for c in bridge.config.channels.values() if c.account_id == account.id]
        if not channel_ids:
            continue
        waiting_since = now - timedelta(hours=account.stuck_received_h)
        rows = session.execute(
            select(OrderRecord).where(
                col(OrderRecord.channel_id).in_(channel_ids),
                col(OrderRecord.state).in_(("submitted", "partially_shipped")),
                col(OrderRecord.amazon_status).in_(WAITING),
                col(OrderRecord.amazon_status_updated_at) < waiting_since,
            )
        ).scalars()
        for row in rows:
            assert row.id is not None and row.amazon_status is not None
            since = row.amazon_status_updated_at
            stuck[stuck_key(row.id, row.amazon_status)] = (
                row,
                row.amazon_status,
                f"has been {row.amazon_status} at Amazon since {since:%Y-%m-%d %H:%M} UTC "
                f"(more than {account.stuck_received_h:g} hours)"
                if since
                else "",
            )
        late = now - timedelta(hours=account.stuck_processing_grace_h)
        rows = session.execute(
            select(OrderRecord).where(
                col(OrderRecord.channel_id).in_(channel_ids),
                col(OrderRecord.state).in_(("submitted", "partially_shipped")),
                col(OrderRecord.amazon_status) == PROCESSING,
                col(OrderRecord.amazon_ship_by) < late,
            )
        ).scalars()
        for row in rows:
            assert row.id is not None and row.amazon_ship_by is not None
            stuck[stuck_key(row.id, PROCESSING)] = (
                row,
                PROCESSING,
                f"is still Processing at Amazon, {account.stuck_processing_grace_h:g}+ hours past its "
                f"estimated ship date ({row.amazon_ship_by:%Y-%m-%d %H:%M} UTC)",
            )
    for key, (row, _status, what) in stuck.items():
        alerts.raise_alert(
            session,
            key=key,
            kind=STUCK_KIND,
            message=(
                f"order {row.display_id or row.external_id} ({row.channel_id}) {what}; ask Amazon "
                "(Seller Central > Contact us) about the fulfillment order "
                f"{row.seller_fulfillment_order_id}, or cancel it while it is Received or Planning"
            ),
            now=now,
            order_id=row.id,
            channel_id=row.channel_id,
            severity=alerts.Severity.WARNING,
        )
    open_stuck = session.execute(
        select(col(AlertRecord.key)).where(
            col(AlertRecord.kind) == STUCK_KIND, col(AlertRecord.cleared_at).is_(None)
        )
    ).scalars()
    for key in list(open_stuck):
        if key not in stuck:
            alerts.clear_alert(session, key, now)
    return len(stuck)
