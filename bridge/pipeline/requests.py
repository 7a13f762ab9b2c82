"""Fulfilment and cancellation requests from a storefront that treats the bridge as its fulfillment
service (Shopify's fulfillment-service mode).

The web layer only stores each callback and enqueues `JOB_REQUESTS` (`record_notification`). The
job reads what Shopify is waiting for us to answer, then:

- a fulfillment request: the order is taken in (from the request itself when no order webhook
  came), re-opened when it was parked or not for Amazon, and its `submit` job enqueued. The submit
  stage accepts the request once the preview passes (or rejects it with the reason) and then
  creates the order at Amazon (`pipeline/scope.py`). A request for an order already at Amazon or
  cancelled is rejected here, with the reason, and an operator alert.
- a cancellation request: the order goes the way of a storefront cancellation (`pipeline/cancel.py`
  cancels at Amazon while Amazon still allows it), and `JOB_ANSWER_CANCELLATION` answers Shopify
  once that is decided: accepted when nothing will ship, rejected with Amazon's reason otherwise.

Every answer and every unit is in the order's audit trail; nothing personal is logged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from .. import alerts, jobs
from ..audit import note, transition
from ..channels import Channel
from ..clock import Clock
from ..intake import JOB_CANCEL, JOB_SUBMIT
from ..orders import NOT_YET_SUBMITTED, CanonicalOrder, Event, OrderLine, OrderState, can
from ..store import (
    DeliveryRecord,
    FulfillmentUnitRecord,
    JobRecord,
    OrderEventRecord,
    OrderRecord,
    lock_order,
    read_session,
    write_session,
)
from ..storefronts.assignment import FulfillmentAssignments, RejectReason, RequestedUnit, RequestKind
from ..storefronts.push import PushError, StorefrontRejected
from ..storefronts.shopify_service import Notification
from ..worker import GiveUp, JobContext, RetryLater
from .scope import CHANNEL_RETRY_S, COVERING, channel_alert_key, record_unit

log = logging.getLogger("bridge.requests")

JOB_REQUESTS = "fulfillment_requests"
JOB_ANSWER_CANCELLATION = "answer_cancellation"
SETTLE_WAIT_S = 5.0
# Nothing of the order will ship: a cancellation is accepted.
NOTHING_SHIPS = frozenset({OrderState.CANCELLED, OrderState.UNFULFILLABLE}) | NOT_YET_SUBMITTED


# --------------------------------------------------------------------------------------------
# The callback: stored in one short transaction


def record_notification(
    engine: Engine, channel: Channel, notification: Notification, body: bytes, clock: Clock
) -> str:
    """Store the callback and enqueue its job (unless one is already waiting to run): the outcome."""
    with write_session(engine) as session:
        seen = session.execute(
            select(col(DeliveryRecord.id)).where(
                col(DeliveryRecord.channel_id) == channel.id,
                col(DeliveryRecord.delivery_key) == notification.delivery_key[:200],
            )
        ).first()
        if seen is not None:
            return "duplicate"
        outcome = "ignored" if notification.kind is None else "queued"
        if notification.kind is not None and not _waiting(session, channel, notification.kind):
            jobs.enqueue(
                session, JOB_REQUESTS, payload={"channel_id": channel.id, "kind": notification.kind.value}
            )
        elif notification.kind is not None:
            outcome = "coalesced"
        session.add(
            DeliveryRecord(
                channel_id=channel.id,
                delivery_key=notification.delivery_key[:200],
                topic=f"fulfillment_order_notification/{notification.raw_kind}"[:64],
                received_at=clock.now(),
                body=body,
                outcome=outcome,
            )
        )
    return outcome


def _waiting(session: Session, channel: Channel, kind: RequestKind) -> bool:
    """A job for the same channel and kind that has not started yet reads this request too (one that
    runs already may have read before it, so it does not count)."""
    for payload in session.execute(
        select(col(JobRecord.payload)).where(
            col(JobRecord.kind) == JOB_REQUESTS, col(JobRecord.status) == jobs.READY
        )
    ).scalars():
        if payload.get("channel_id") == channel.id and payload.get("kind") == kind.value:
            return True
    return False


# --------------------------------------------------------------------------------------------
# The job


def handle_requests(ctx: JobContext) -> None:
    channel = ctx.bridge.config.channel(str(ctx.job.payload.get("channel_id")))
    source = ctx.services["storefronts"].assignments(channel) if channel is not None else None
    if channel is None or source is None or not channel.enabled or not channel.shopify.fulfillment_service:
        log.info(
            "requests for channel %s dropped: not a fulfillment service now",
            ctx.job.payload.get("channel_id"),
        )
        return
    kind = RequestKind(ctx.job.payload["kind"])
    try:
        requested = source.requests(kind)
    except PushError as exc:
        raise _retry(ctx, channel, exc) from None
    by_order: dict[str, list[RequestedUnit]] = defaultdict(list)
    for unit in requested:
        by_order[unit.order_external_id].append(unit)
    for external_id, units in by_order.items():
        if kind is RequestKind.FULFILLMENT:
            _take_fulfillment_request(ctx, channel, source, external_id, units)
        else:
            _take_cancellation_request(ctx, channel, external_id, units)
    log.info("channel %s: %d %s request(s) taken", channel.id, len(requested), kind.value)


def _take_fulfillment_request(
    ctx: JobContext,
    channel: Channel,
    source: FulfillmentAssignments,
    external_id: str,
    units: list[RequestedUnit],
) -> None:
    now = ctx.bridge.clock.now()
    ids = ", ".join(u.unit.id.rsplit("/", 1)[-1] for u in units)
    refusal = ""
    with write_session(ctx.bridge.engine) as session:
        row = _order(session, channel, external_id)
        if row is None:
            row = _take_in(session, channel, _merged([u.order for u in units]), now)
            note(session, row, "storefront:fulfillment_request", now, f"fulfillment order(s) {ids} requested")
            jobs.enqueue(session, JOB_SUBMIT, order_id=row.id)
        else:
            state = row.order_state
            note(session, row, "storefront:fulfillment_request", now, f"fulfillment order(s) {ids} requested")
            if state in (OrderState.NEEDS_ATTENTION, OrderState.NOT_FOR_AMAZON):
                transition(session, row, Event.RETRY, now, "the storefront requested fulfilment again")
            if row.order_state in (OrderState.RECEIVED, OrderState.AWAITING_PAYMENT, OrderState.SUBMITTING):
                # No dedupe: a submit that runs now may have read the fulfillment orders before this
                # request; a second one only reads again (and finds the order submitted).
                jobs.enqueue(session, JOB_SUBMIT, order_id=row.id)
            elif state is OrderState.AWAITING_APPROVAL:
                pass  # accepted or refused once an operator approves or cancels the order
            elif state is OrderState.CANCELLED:
                refusal = "the order is cancelled in fba-bridge"
            else:
                refusal = (
                    f"this order is already at Amazon as {row.seller_fulfillment_order_id} ({state.value}); "
                    "one Amazon order per Shopify order: ship these items another way or in a new order"
                )
                assert row.id is not None
                alerts.raise_alert(
                    session,
                    key=f"order:{row.id}:late-request",
                    kind="late-request",
                    message=f"order {row.display_id} ({channel.id}): fulfillment order(s) {ids} were "
                    "requested after the order went to Amazon; the request was rejected",
                    now=now,
                    order_id=row.id,
                    channel_id=channel.id,
                )
    for unit in units if refusal else []:
        _call(ctx, channel, partial(source.reject, unit.unit.id, RejectReason.OTHER, refusal))


def _take_cancellation_request(
    ctx: JobContext, channel: Channel, external_id: str, units: list[RequestedUnit]
) -> None:
    now = ctx.bridge.clock.now()
    unit_ids = [u.unit.id for u in units]
    ids = ", ".join(x.rsplit("/", 1)[-1] for x in unit_ids)
    payload: dict[str, object] = {"channel_id": channel.id, "unit_ids": unit_ids}
    with write_session(ctx.bridge.engine) as session:
        row = _order(session, channel, external_id)
        if row is not None:
            assert row.id is not None
            note(
                session,
                row,
                "storefront:cancellation_request",
                now,
                f"cancellation of fulfillment order(s) {ids}",
            )
            for unit in units:
                record_unit(session, row.id, unit.unit, "cancellation_requested", now)
            others = _other_covered(session, row.id, unit_ids)
            state = row.order_state
            if others:
                payload["reject"] = (
                    f"the Amazon order also ships fulfillment order(s) {', '.join(others)}; Amazon cancels "
                    "whole orders only, so request the cancellation of all of them (or cancel the order)"
                )
            elif state in NOT_YET_SUBMITTED or (
                state is not OrderState.CANCELLED and can(state, Event.CANCEL)
            ):
                transition(
                    session, row, Event.CANCEL, now, "the storefront asked its fulfillment service to cancel"
                )
                if row.order_state is OrderState.CANCEL_REQUESTED:
                    jobs.enqueue(session, JOB_CANCEL, order_id=row.id, dedupe_key=f"{JOB_CANCEL}:{row.id}")
        jobs.enqueue(session, JOB_ANSWER_CANCELLATION, order_id=row.id if row else None, payload=payload)


def handle_answer_cancellation(ctx: JobContext) -> None:
    """Answer the cancellation request once the cancel stage has decided."""
    channel = ctx.bridge.config.channel(str(ctx.job.payload.get("channel_id")))
    if channel is None:
        raise GiveUp(f"channel {ctx.job.payload.get('channel_id')} is no longer configured")
    source = ctx.services["storefronts"].assignments(channel)
    if source is None:
        raise GiveUp(f"channel {channel.id} cannot answer fulfillment requests any more")
    row = _load(ctx.bridge.engine, ctx.job.order_id)
    reject = str(ctx.job.payload.get("reject") or "")
    if row is not None and not reject:
        if row.order_state is OrderState.CANCEL_REQUESTED:
            raise RetryLater(
                "Amazon's answer to the cancellation is pending", SETTLE_WAIT_S, count_attempt=False
            )
        if row.order_state not in NOTHING_SHIPS:
            reject = row.attention_reason or f"Amazon has the order and it is {row.order_state.value}"
    accept = not reject
    message = reject or (
        "cancelled at Amazon"
        if row is not None and row.amazon_status == "Cancelled"
        else "nothing was shipped"
    )
    answered: dict[str, bool] = {}
    for unit_id in ctx.job.payload.get("unit_ids", []):
        answered[unit_id] = _call(ctx, channel, partial(source.answer_cancellation, unit_id, accept, message))
    if row is None:
        return
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        locked = lock_order(session, row.id or 0)
        for unit_id, done in answered.items():
            record = session.execute(
                select(FulfillmentUnitRecord).where(
                    col(FulfillmentUnitRecord.order_id) == locked.id,
                    col(FulfillmentUnitRecord.unit_id) == unit_id,
                )
            ).scalar_one_or_none()
            if record is not None and done:
                record.status = "cancellation_accepted" if accept else "cancellation_rejected"
                record.updated_at = now
                session.add(record)
        verdict = "accepted" if accept else f"rejected: {reject}"
        note(session, locked, "storefront:cancellation_answer", now, f"cancellation request {verdict}")


# --------------------------------------------------------------------------------------------


def _order(session: Session, channel: Channel, external_id: str) -> OrderRecord | None:
    query = select(OrderRecord).where(
        col(OrderRecord.channel_id) == channel.id, col(OrderRecord.external_id) == external_id
    )
    return session.execute(query.with_for_update()).scalars().first()


def _load(engine: Engine, order_id: int | None) -> OrderRecord | None:
    if order_id is None:
        return None
    with read_session(engine) as session:
        return session.get(OrderRecord, order_id)


def _take_in(session: Session, channel: Channel, order: CanonicalOrder, now: datetime) -> OrderRecord:
    """A new order row from what the fulfillment request describes (no order webhook came)."""
    row = OrderRecord(
        channel_id=channel.id,
        external_id=order.external_id,
        display_id=order.display_id[:128],
        state=OrderState.RECEIVED.value,
        data=order.to_json(),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    session.add(
        OrderEventRecord(
            order_id=row.id,
            at=now,
            event="intake:created",
            from_state=None,
            to_state=row.state,
            reason="from a fulfillment request",
        )
    )
    return row


def _merged(orders: list[CanonicalOrder]) -> CanonicalOrder:
    quantities: dict[str, OrderLine] = {}
    for order in orders:
        for line in order.lines:
            held = quantities.get(line.line_id)
            quantities[line.line_id] = replace(line, quantity=line.quantity + (held.quantity if held else 0))
    return replace(orders[0], lines=tuple(quantities.values()))


def _other_covered(session: Session, order_id: int, unit_ids: list[str]) -> list[str]:
    records = session.execute(
        select(FulfillmentUnitRecord).where(
            col(FulfillmentUnitRecord.order_id) == order_id, col(FulfillmentUnitRecord.status).in_(COVERING)
        )
    ).scalars()
    return [r.unit_id.rsplit("/", 1)[-1] for r in records if r.unit_id not in unit_ids]


def _call(ctx: JobContext, channel: Channel, answer: Callable[[], bool]) -> bool:
    try:
        return bool(answer())
    except PushError as exc:
        raise _retry(ctx, channel, exc) from None


def _retry(ctx: JobContext, channel: Channel, exc: PushError) -> Exception:
    if isinstance(exc, StorefrontRejected) or exc.code in ("unknown_location", "not_registered"):
        with write_session(ctx.bridge.engine) as session:
            alerts.raise_alert(
                session,
                key=channel_alert_key(channel),
                kind="storefront",
                message=f"channel {channel.id}: cannot answer Shopify's fulfillment requests: {exc.message}",
                now=ctx.bridge.clock.now(),
                channel_id=channel.id,
            )
        return RetryLater(exc.message, CHANNEL_RETRY_S, count_attempt=False)
    if exc.retryable:
        return RetryLater(exc.message, exc.retry_after)
    return GiveUp(exc.message)
