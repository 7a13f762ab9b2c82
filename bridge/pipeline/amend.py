"""A storefront change after submission reaches Amazon while Amazon can still take it.

Intake stores every later change and queues this job. The job first lets an in-flight
submission settle (the create it is sending is the base of the comparison), then compares the
order with what Amazon was sent (`amendment.plan_amendment`) and, while Amazon's order is
`New`/`Received`/`Planning`, sends `updateFulfillmentOrder`: address, speed and the release of a
hold in one request, quantities in another. What Amazon can no longer take (it is already
picking, or refuses) and what the API cannot express (a line added or removed) becomes a storefront
note and an operator alert naming the order and the change. A change that leaves Amazon nothing to
ship becomes a cancellation.

The job also releases a hold (`fulfillmentAction: Ship`) when an order created unpaid on a
`hold_at_amazon` channel is paid; the older `release` job kind runs this same handler.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import select
from sqlmodel import col

from .. import jobs
from ..amazon import errors as amz
from ..amazon.models import FulfillmentAction, UpdateFulfillmentOrderRequest
from ..amazon.outbound import FulfillmentOutbound
from ..audit import note, transition
from ..channels import Channel
from ..intake import JOB_CANCEL, JOB_SUBMIT
from ..orders import Event, OrderState
from ..store import JobRecord, OrderRecord, lock_order, order_parts, read_session
from ..worker import JobContext, RetryLater
from .amendment import Amendment, Submission, plan_amendment
from .common import amazon_retry, owe_note

log = logging.getLogger("bridge.amend")

UPDATABLE_AT_AMAZON = frozenset({"New", "Received", "Planning"})
AMENDABLE_STATES = (OrderState.HELD_AT_AMAZON, OrderState.SUBMITTED, OrderState.PARTIALLY_SHIPPED)
SETTLE_WAIT_S = 5.0
STUCK_SUBMISSION_WAIT_S = 300.0  # the submission was dead-lettered; an operator retries it


def _settling(ctx: JobContext) -> bool:
    """A submit job of this order is queued or running, or an earlier amend job still runs."""
    with read_session(ctx.bridge.engine) as session:
        submitting = session.execute(
            select(col(JobRecord.id)).where(
                col(JobRecord.kind) == JOB_SUBMIT,
                col(JobRecord.order_id) == ctx.job.order_id,
                col(JobRecord.status).in_((jobs.READY, jobs.RUNNING)),
            )
        ).first()
        return submitting is not None or jobs.sibling_running(session, ctx.job)


def handle_amend(ctx: JobContext) -> None:
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    with read_session(bridge.engine) as session:
        row = session.get(OrderRecord, ctx.job.order_id)
    if row is None:
        return
    if _settling(ctx):
        raise RetryLater(
            "a submission or amendment of this order is in flight", SETTLE_WAIT_S, count_attempt=False
        )
    if row.order_state is OrderState.SUBMITTING:
        raise RetryLater(
            "the order's submission stopped (dead-lettered); waiting for it to be retried",
            STUCK_SUBMISSION_WAIT_S,
            count_attempt=False,
        )
    channel = bridge.config.channel(row.channel_id)
    if channel is None or row.order_state not in AMENDABLE_STATES or not row.seller_fulfillment_order_id:
        return
    if row.pii_purged_at is not None:
        return  # personal data was removed on request: there is no address left to compare
    order = row.canonical()
    version = order.content_version()
    with read_session(bridge.engine) as session:
        split = len(order_parts(session, row.id or 0)) > 1
    if split:
        _refuse_split(ctx, row, version)
        return
    release = row.order_state is OrderState.HELD_AT_AMAZON and order.payment_state in channel.ship_on
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    before = Submission.from_json(row.submission)
    if before is None:
        _release_unrecorded(ctx, row, channel, outbound, release)
        return
    if before.version == version and not (release and before.hold):
        return
    amendment = plan_amendment(order, channel, before, release=release)
    if amendment.cancel:
        _cancel(ctx, row.id or 0, version)
        return
    outcome = _Outcome()
    if not amendment.empty:
        try:
            _send(outbound, row.seller_fulfillment_order_id, amendment, outcome)
        except amz.SpApiError as exc:
            raise amazon_retry(exc, channel) from None
    _record(ctx, row.id or 0, channel, before, amendment, outcome)


def _refuse_split(ctx: JobContext, row: OrderRecord, version: str) -> None:
    """A split order's parts are not amended (which part would take a changed line is not
    defined): the storefront and an operator are told, once per change."""
    before = Submission.from_json(row.submission)
    if before is not None and before.version == version:
        return
    with ctx.finish() as session:
        locked = lock_order(session, row.id or 0)
        owe_note(
            session,
            locked,
            f"split-change:{version[:12]}",
            ctx.bridge.clock.now(),
            "this order went to Amazon as several orders (split_large_orders); the change was not passed "
            "to Amazon: change or cancel the parts in Seller Central",
        )


def _release_unrecorded(
    ctx: JobContext, row: OrderRecord, channel: Channel, outbound: FulfillmentOutbound, release: bool
) -> None:
    """An order created before submissions were recorded: nothing to compare with, so only a
    hold is released; other changes stay as they were handled then (recorded only)."""
    assert row.seller_fulfillment_order_id is not None
    if not release:
        return
    try:
        outbound.update(
            row.seller_fulfillment_order_id,
            UpdateFulfillmentOrderRequest(fulfillment_action=FulfillmentAction.SHIP),
        )
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        locked = lock_order(session, row.id or 0)
        if locked.order_state is OrderState.HELD_AT_AMAZON:
            transition(session, locked, Event.RELEASED, now, "payment received; released the hold at Amazon")


class _Outcome:
    def __init__(self) -> None:
        self.status = ""
        self.fields_applied = False
        self.items_applied = False
        self.refusals: list[str] = []


def _send(outbound: FulfillmentOutbound, sfo_id: str, amendment: Amendment, outcome: _Outcome) -> None:
    try:
        outcome.status = outbound.get(sfo_id).status
    except amz.NotFound:
        outcome.status = "not found"
    if outcome.status not in UPDATABLE_AT_AMAZON:
        what = ", ".join((*amendment.changes, *amendment.item_changes))
        outcome.refusals.append(f"too late for Amazon to change ({what}): its order is {outcome.status}")
        return
    for request, changes, applied in (
        (amendment.order_fields, amendment.changes, "fields_applied"),
        (amendment.items, amendment.item_changes, "items_applied"),
    ):
        if request is None:
            continue
        try:
            outbound.update(sfo_id, request)
        except amz.InvalidInput as exc:
            outcome.refusals.append(f"Amazon refused to change {', '.join(changes)}: {exc.message}")
            continue
        setattr(outcome, applied, True)


def _cancel(ctx: JobContext, order_id: int, version: str) -> None:
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        row = lock_order(session, order_id)
        if row.order_state not in AMENDABLE_STATES or row.canonical().content_version() != version:
            return  # something else moved it on; that change has its own job
        transition(
            session, row, Event.CANCEL, now, "nothing is left for Amazon to ship; asking Amazon to cancel"
        )
        jobs.enqueue(session, JOB_CANCEL, order_id=row.id, dedupe_key=f"{JOB_CANCEL}:{row.id}")


def _record(
    ctx: JobContext,
    order_id: int,
    channel: Channel,
    before: Submission,
    amendment: Amendment,
    outcome: _Outcome,
) -> None:
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        row = lock_order(session, order_id)
        row.submission = amendment.result(
            before, fields_applied=outcome.fields_applied, items_applied=outcome.items_applied
        ).to_json()
        if outcome.status:
            row.amazon_status = outcome.status if outcome.status != "not found" else row.amazon_status
        applied = [
            *(amendment.changes if outcome.fields_applied else ()),
            *(amendment.item_changes if outcome.items_applied else ()),
        ]
        if amendment.releases and outcome.fields_applied and row.order_state is OrderState.HELD_AT_AMAZON:
            transition(session, row, Event.RELEASED, now, "payment received; released the hold at Amazon")
        if applied:
            note(session, row, "amazon:amended", now, "changed at Amazon: " + "; ".join(applied))
        problems = [*amendment.refused, *outcome.refusals]
        if problems:
            text = (
                "A change to this order could not be passed to Amazon: "
                + "; ".join(problems)
                + ". Amazon ships the order as it has it; arrange the difference with the customer, "
                "or cancel the order."
            )
            key = "amendment:" + hashlib.sha256("\n".join(sorted(problems)).encode()).hexdigest()[:16]
            owe_note(session, row, key, now, text)
        session.add(row)
    log.info(
        "amendment order_id=%s channel=%s applied=%d refused=%d",
        order_id,
        channel.id,
        len(applied),
        len(amendment.refused) + len(outcome.refusals),
    )
