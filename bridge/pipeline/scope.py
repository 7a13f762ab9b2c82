"""Submission's view of what the storefront assigns to Amazon (Shopify's fulfillment orders).

The submit stage calls, in this order:

- `scope_order` right before the plan. It replaces the order's lines with what is assigned to
  Amazon's location(s) (what remains to fulfil, lines needing shipping), or says why nothing is:
  `Skip` ("not for Amazon"), `Wait` (a fulfillment service not asked yet: the request's
  notification enqueues the next submit), a `Park` (the order is gone from the shop), or raises
  `RetryLater` (held fulfillment orders, a storefront outage, a channel whose locations do not
  resolve: a channel alert says what to fix). Once the order is `submitting`, the scope comes
  from what `settle` recorded, never from a new read, so a retried create sends what was decided.
- `refuse` when the plan or the preview says no: fulfillment requests are rejected with the reason.
- `settle` once the preview passed, before `submitting` is committed: requests are accepted, then
  the units the Amazon order covers are recorded (push-back fulfils these and nothing else).

Platforms without fulfillment orders, and Shopify channels that name no locations, get None:
the whole order is Amazon's, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from .. import alerts, jobs
from ..audit import note
from ..bootstrap import Bridge
from ..channels import Channel
from ..orders import CanonicalOrder, OrderState
from ..store import FulfillmentUnitRecord, OrderRecord, read_session, write_session
from ..storefronts.assignment import (
    Assignment,
    FulfillmentAssignments,
    FulfillmentUnit,
    RejectReason,
    UnitLine,
)
from ..storefronts.push import PushError, StorefrontRejected
from ..worker import JobContext, RetryLater
from .plan import Park, Plan, Skip

log = logging.getLogger("bridge.scope")

HELD_RETRY_S = 900.0
CHANNEL_RETRY_S = 900.0
WITHDRAWN_RETRY_S = 5.0
# The Amazon order covers these units until a cancellation is accepted.
COVERING = ("covered", "accepted", "cancellation_requested", "cancellation_rejected")


@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass(frozen=True)
class Scoped:
    order: CanonicalOrder  # only Amazon's lines and quantities
    assignment: Assignment
    source: FulfillmentAssignments | None  # None when read back from our own records
    channel: Channel

    @property
    def requested(self) -> bool:
        """The storefront asked for fulfilment explicitly: payment is its business, not ours."""
        return self.assignment.requested


def channel_alert_key(channel: Channel) -> str:
    return f"channel:{channel.id}:storefront"


def scope_order(
    ctx: JobContext, channel: Channel, row: OrderRecord, order: CanonicalOrder
) -> Scoped | Skip | Park | Wait | None:
    source = _source(ctx, channel)
    if row.order_state is OrderState.SUBMITTING:
        return _recorded(ctx, channel, row, order)
    if source is None:
        return None
    try:
        assignment = source.assigned(order)
    except PushError as exc:
        return _unreadable(ctx, channel, row, exc)
    if assignment is None:
        return None
    if assignment.not_ours:
        return Skip(f"not for Amazon: {assignment.not_ours}")
    if assignment.waiting:
        if assignment.requested:
            _note(ctx, row, "waiting", f"waiting for a fulfillment request: {assignment.waiting}")
            return Wait(assignment.waiting)
        raise RetryLater(f"waiting: {assignment.waiting}", after_s=HELD_RETRY_S, count_attempt=False)
    return Scoped(assignment.restrict(order), assignment, source, channel)


def check_plan(scoped: Scoped | None, plan: Plan | Park | Skip) -> Plan | Park | Skip:
    """A fulfillment request is all or nothing: a line we would leave out parks the order."""
    if scoped is not None and scoped.requested and isinstance(plan, Plan) and plan.skipped_skus:
        return Park(
            f"SKU(s) not mapped to Amazon: {', '.join(plan.skipped_skus)}; a fulfillment request is "
            f"fulfilled whole, so add them to skus.map of channel {scoped.channel.id}"
        )
    return plan


def refuse(ctx: JobContext, scoped: Scoped | None, reason: str) -> None:
    """Reject the fulfillment requests the plan or the preview cannot honour, with the reason."""
    if scoped is None or scoped.source is None or not scoped.assignment.to_accept:
        return
    code = reject_reason(scoped, reason)
    for unit_id in scoped.assignment.to_accept:
        try:
            answered = scoped.source.reject(unit_id, code, reason)
        except PushError as exc:
            if exc.retryable:
                raise RetryLater(
                    f"could not reject the fulfillment request: {exc.message}", exc.retry_after
                ) from None
            log.warning("rejecting fulfillment request %s failed: %s", unit_id.rsplit("/", 1)[-1], exc.code)
            continue
        log.info(
            "fulfillment request %s rejected (%s): answered=%s", unit_id.rsplit("/", 1)[-1], code, answered
        )


def reject_reason(scoped: Scoped, reason: str) -> RejectReason:
    order, channel = scoped.order, scoped.channel
    if any(channel.amazon_sku(line.sku) is None for line in order.lines):
        return RejectReason.INVALID_SKU
    if order.destination is None or not order.destination.line1:
        return RejectReason.INCORRECT_ADDRESS
    if channel.countries is not None and order.destination.country_code not in channel.countries:
        return RejectReason.UNDELIVERABLE
    if reason.startswith("Amazon cannot fulfil"):
        return RejectReason.OUT_OF_STOCK
    return RejectReason.OTHER


def settle(ctx: JobContext, order_id: int, scoped: Scoped | None) -> None:
    """Accept the requests, then record the units the Amazon order will cover."""
    if scoped is None or scoped.source is None:
        return
    accepted: set[str] = set()
    for unit_id in scoped.assignment.to_accept:
        try:
            answered = scoped.source.accept(unit_id, "Accepted: Amazon Multi-Channel Fulfillment ships it")
        except PushError as exc:
            if exc.retryable:
                raise RetryLater(
                    f"could not accept the fulfillment request: {exc.message}", exc.retry_after
                ) from None
            raise RetryLater(
                f"Shopify refused to accept the request: {exc.message}", CHANNEL_RETRY_S
            ) from None
        if not answered:
            raise RetryLater(
                "a fulfillment request was withdrawn or answered meanwhile; reading again",
                WITHDRAWN_RETRY_S,
                count_attempt=False,
            )
        accepted.add(unit_id)
    now = ctx.bridge.clock.now()
    with write_session(ctx.bridge.engine) as session:
        jobs.assert_held(session, ctx.job)
        row = session.get(OrderRecord, order_id)
        assert row is not None
        for unit in scoped.assignment.units:
            status = "accepted" if unit.id in accepted or unit.request_status == "ACCEPTED" else "covered"
            record_unit(session, order_id, unit, status, now)
        alerts.clear_alert(session, channel_alert_key(scoped.channel), now)
        note(session, row, "storefront:scope", now, scoped.assignment.summary())


def record_unit(session: Session, order_id: int, unit: FulfillmentUnit, status: str, now: datetime) -> None:
    """Insert or update the record of one unit for the order (caller's transaction)."""
    existing = (
        session.execute(
            select(FulfillmentUnitRecord).where(
                col(FulfillmentUnitRecord.order_id) == order_id, col(FulfillmentUnitRecord.unit_id) == unit.id
            )
        )
        .scalars()
        .first()
    )
    if existing is None:
        existing = FulfillmentUnitRecord(
            order_id=order_id,
            unit_id=unit.id[:100],
            location_id=unit.location_id[:100],
            status=status,
            lines=unit.to_json(),
            created_at=now,
            updated_at=now,
        )
    else:
        existing.status = status
        existing.updated_at = now
        if unit.lines:
            existing.lines = unit.to_json()
    session.add(existing)


def covered_units(engine: Engine, order_id: int) -> list[FulfillmentUnitRecord]:
    with read_session(engine) as session:
        return list(
            session.execute(
                select(FulfillmentUnitRecord)
                .where(
                    col(FulfillmentUnitRecord.order_id) == order_id,
                    col(FulfillmentUnitRecord.status).in_(COVERING),
                )
                .order_by(col(FulfillmentUnitRecord.id))
            ).scalars()
        )


# --------------------------------------------------------------------------------------------


def _source(ctx: JobContext, channel: Channel) -> FulfillmentAssignments | None:
    storefronts = ctx.services.get("storefronts")
    return storefronts.assignments(channel) if storefronts is not None else None


def _recorded(ctx: JobContext, channel: Channel, row: OrderRecord, order: CanonicalOrder) -> Scoped | None:
    assert row.id is not None
    records = covered_units(ctx.bridge.engine, row.id)
    if not records:
        return None
    units = tuple(
        FulfillmentUnit(
            id=r.unit_id,
            location_id=r.location_id,
            status="RECORDED",
            request_status=r.status,
            lines=tuple(
                UnitLine(
                    str(x["line_id"]), str(x["unit_line_id"]), str(x.get("sku") or ""), int(x["quantity"])
                )
                for x in r.lines
            ),
        )
        for r in records
    )
    assignment = Assignment(units=units, requested=channel.shopify.fulfillment_service)
    return Scoped(assignment.restrict(order), assignment, None, channel)


def _unreadable(ctx: JobContext, channel: Channel, row: OrderRecord, exc: PushError) -> Park:
    if exc.code == "order_not_found":
        return Park(f"{exc.message}; the bridge cannot tell which part of it is Amazon's")
    channel_wide = isinstance(exc, StorefrontRejected) or exc.code in ("unknown_location", "not_registered")
    if channel_wide:
        now = ctx.bridge.clock.now()
        with write_session(ctx.bridge.engine) as session:
            alerts.raise_alert(
                session,
                key=channel_alert_key(channel),
                kind="storefront",
                message=f"channel {channel.id}: cannot tell which fulfillment orders are Amazon's: "
                f"{exc.message}",
                now=now,
                channel_id=channel.id,
            )
        raise RetryLater(exc.message, CHANNEL_RETRY_S, count_attempt=False) from None
    if exc.retryable:
        raise RetryLater(
            f"reading the storefront's fulfillment orders: {exc.message}", exc.retry_after
        ) from None
    return Park(f"cannot read the order's fulfillment orders in the storefront: {exc.message}")


def _note(ctx: JobContext, row: OrderRecord, event: str, reason: str) -> None:
    assert row.id is not None
    with write_session(ctx.bridge.engine) as session:
        locked = session.get(OrderRecord, row.id)
        assert locked is not None
        note(session, locked, f"storefront:{event}", ctx.bridge.clock.now(), reason)


def check_storefronts(bridge: Bridge, storefronts: Any) -> list[str]:
    """At worker start-up: does each channel's storefront match its set-up (Shopify: do the
    locations resolve, is the fulfillment service registered)? Problems are logged and raised as
    channel alerts (cleared when fixed); an unreachable storefront is only logged."""
    problems: list[str] = []
    for channel in bridge.config.channels.values():
        source = storefronts.assignments(channel) if channel.enabled else None
        if source is None:
            continue
        try:
            found = source.setup_problems()
            _alert_setup(bridge, channel, found)
        except PushError as exc:
            log.warning("channel %s: could not check the storefront set-up: %s", channel.id, exc.message)
            continue
        except Exception as exc:  # a start-up check must not keep the worker from starting
            log.warning(
                "channel %s: checking the storefront set-up failed (%s)", channel.id, type(exc).__name__
            )
            continue
        for problem in found:
            log.error("channel %s: %s", channel.id, problem)
        problems += [f"{channel.id}: {p}" for p in found]
    return problems


def _alert_setup(bridge: Bridge, channel: Channel, problems: list[str]) -> None:
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        if problems:
            alerts.raise_alert(
                session,
                key=channel_alert_key(channel),
                kind="storefront",
                message=f"channel {channel.id}: " + "; ".join(problems),
                now=now,
                channel_id=channel.id,
            )
        else:
            alerts.clear_alert(session, channel_alert_key(channel), now)
