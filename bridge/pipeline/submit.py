"""Submission: plan -> preview -> rules -> exactly one `createFulfillmentOrder`.

Exactly-once rests on three things. The `sellerFulfillmentOrderId` is derived from the order,
so every attempt asks Amazon for the same order. The state `submitting` is committed *before*
the create is sent, so any later attempt knows a create may be out there and reads
(`getFulfillmentOrder`) before creating again. And the result is recorded through the job's
claim (`ctx.finish`), so a worker that lost its lease cannot record anything.

No lost updates: the job plans from the order as it read it, and every decision it records
(`submitting`, parked, not for Amazon) is taken under the row lock only if the order's
`content_version` is still the one it planned from. A change that arrives meanwhile has its own
submit job (the queue never deduplicates against a running job); while two submit jobs of one
order would overlap, the later one waits for the earlier. `submitting` also records what is
being sent (`pipeline/amendment.py` `Submission`), the base of every later amendment.

No database transaction is open while Amazon is being called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from sqlmodel import Session

from .. import jobs
from ..amazon import errors as amz
from ..amazon.models import FulfillmentAction, FulfillmentOrder
from ..amazon.outbound import FulfillmentOutbound
from ..audit import note, transition
from ..channels import Channel
from ..orders import CanonicalOrder, Event, OrderRisk, OrderState, can
from ..store import (
    OrderRecord,
    lock_order,
    order_parts,
    read_session,
    record_parts,
    write_session,
)
from ..storefronts.push import PushError
from ..worker import JobContext, RetryLater
from .amendment import submission_of
from .common import amazon_retry, owe_note
from .fallback import enqueue_release, on_unfulfillable_preview, preview_unfulfillable
from .features import judge_eligibility, plan_features, requested_features, with_features
from .plan import Park, Plan, Skip, fees_seen, judge_preview, plan_submission
from .policies import RULE_RISK, Hold, decide_approval, judge_fees, risk_pending_wait, skip_by_tag
from .scope import Scoped, Wait, check_plan, refuse, scope_order, settle
from .split import plan_parts

log = logging.getLogger("bridge.submit")

SUBMITTABLE = (OrderState.RECEIVED, OrderState.AWAITING_PAYMENT, OrderState.SUBMITTING)
NOT_SUBMITTED = (OrderState.RECEIVED, OrderState.AWAITING_PAYMENT)
OVERLAP_WAIT_S = 2.0


def _finish_with(
    ctx: JobContext,
    order_id: int,
    event: Event,
    reason: str,
    *,
    amazon_status: str | None = None,
    sfo_id: str | None = None,
    version: str | None = None,
    then: Callable[[Session, OrderRecord], None] | None = None,
) -> None:
    """Record one lifecycle event for the order, if it still allows it, and complete the job.

    With `version` (a decision taken before anything was sent: park, skip), nothing is recorded
    when the order changed since it was planned: the change's own job decides again. `then` runs
    in the same transaction once the event was recorded (what the decision owes the storefront).

    An order created at Amazon from `submitting`, the usual ending, is written in one statement
    when it is still `submitting` (`JobContext.step`); any other case, below."""
    if event in (Event.CREATED, Event.CREATED_ON_HOLD) and version is None and then is None:
        values = {"seller_fulfillment_order_id": sfo_id, "amazon_status": amazon_status}
        set_values = {name: value for name, value in values.items() if value}
        if ctx.step(
            order_id,
            from_state=OrderState.SUBMITTING,
            event=event,
            reason=reason,
            values=set_values,
            complete=True,
        ):
            return
    now = ctx.bridge.clock.now()
    with ctx.finish() as session:
        row = lock_order(session, order_id)
        if version is not None and row.order_state in NOT_SUBMITTED and _version(row) != version:
            note(
                session,
                row,
                f"ignored:{event.value}",
                now,
                "the order changed while it was planned; replanning",
            )
            return
        if sfo_id:
            row.seller_fulfillment_order_id = sfo_id
        if amazon_status:
            row.amazon_status = amazon_status
        state = row.order_state
        if (state, event) == (OrderState.CANCEL_REQUESTED, Event.CREATED):
            note(
                session,
                row,
                "amazon:created",
                now,
                "created while a cancellation was pending; cancel job follows",
            )
        elif can(state, event):
            transition(session, row, event, now, reason)
            if then is not None:
                then(session, row)
        else:
            note(session, row, f"ignored:{event.value}", now, f"order is {state.value}: {reason}")


def _version(row: OrderRecord) -> str:
    return row.canonical().content_version()


def _load_unless_overlapping(ctx: JobContext) -> jobs.OrderToPlan:
    """The order as this job plans from it. Two submit jobs of one order never overlap: the one
    claimed later waits (no attempt spent). One statement asks both questions."""
    with read_session(ctx.bridge.engine) as session:
        loaded = jobs.load_order_unless_sibling(session, ctx.job)
    if loaded.overlapping:
        raise RetryLater(
            "an earlier submit job of this order is still running",
            after_s=OVERLAP_WAIT_S,
            count_attempt=False,
        )
    return loaded


def handle_submit(ctx: JobContext) -> None:
    bridge = ctx.bridge
    assert ctx.job.order_id is not None
    row, _, digest = _load_unless_overlapping(ctx)
    if row is None or row.order_state not in SUBMITTABLE:
        return  # cancelled, parked or already created meanwhile: nothing to do
    channel = bridge.config.channel(row.channel_id)
    if channel is None:
        _finish_with(ctx, ctx.job.order_id, Event.PARK, f"channel {row.channel_id} is no longer configured")
        return
    if row.order_state is OrderState.SUBMITTING and _found_at_amazon(ctx, row, channel):
        return
    order = row.canonical()
    version = order.content_version()  # of the stored order: `_mark_submitting` compares it
    scoped = scope_order(ctx, channel, row, order)  # Shopify: only what is assigned to Amazon
    if isinstance(scoped, Wait | Skip | Park):
        if not isinstance(scoped, Wait):
            event = Event.SKIP if isinstance(scoped, Skip) else Event.PARK
            _finish_with(ctx, row.id or 0, event, scoped.reason, version=version)
        return
    order = scoped.order if scoped else order
    hold = order.payment_state not in channel.ship_on and (scoped is None or not scoped.requested)
    if hold and channel.unpaid_policy != "hold_at_amazon":
        return  # waits for the payment webhook
    plan = skip_by_tag(order, channel) or check_plan(scoped, plan_submission(order, channel, hold=hold))
    if isinstance(plan, Skip):
        refuse(ctx, scoped, plan.reason)
        _finish_with(ctx, row.id or 0, Event.SKIP, plan.reason, version=version)
        return
    if isinstance(plan, Park):
        refuse(ctx, scoped, plan.reason)
        _finish_with(ctx, row.id or 0, Event.PARK, plan.reason, version=version)
        return
    approved = row.approved_rules
    risk = _risk(ctx, channel, row, order) if channel.uses_risk and RULE_RISK not in approved else None
    held = decide_approval(order, channel, approved=approved, risk=risk)
    if held is not None:
        _hold(ctx, row.id or 0, held, version)
        return
    plan = with_features(plan, *requested_features(order, channel))
    parts = plan_parts(plan, channel)
    if isinstance(parts, Park):
        refuse(ctx, scoped, parts.reason)
        _finish_with(ctx, row.id or 0, Event.PARK, parts.reason, version=version)
        return
    if len(parts) > 1 and hold:
        return  # a split order is not held at Amazon: it is sent once paid (README)
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    try:
        if len(parts) == 1:
            _submit(ctx, row, channel, plan, outbound, version, scoped, digest)
        else:
            _submit_parts(ctx, row, channel, parts, outbound, version, scoped)
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None


def _submit(
    ctx: JobContext,
    row: OrderRecord,
    channel: Channel,
    plan: Plan,
    outbound: FulfillmentOutbound,
    version: str,
    scoped: Scoped | None = None,
    digest: bytes | None = None,
) -> None:
    assert row.id is not None
    created_event = (
        Event.CREATED_ON_HOLD if plan.create.fulfillment_action is FulfillmentAction.HOLD else Event.CREATED
    )
    if row.order_state is OrderState.SUBMITTING:
        # `_found_at_amazon` has read it back already: not there, so the create is sent again.
        if not _record_submission(ctx, row.id, plan, version):
            raise RetryLater(
                "the order changed while the submission was resumed; replanning", count_attempt=False
            )
    else:
        refused = _check_features(ctx, channel, plan, outbound)
        if refused is not None:
            refuse(ctx, scoped, refused.reason)
            _finish_with(ctx, row.id, Event.PARK, refused.reason, version=version)
            return
        previews = outbound.preview(plan.preview)
        fees = fees_seen(previews, plan)
        verdict = judge_preview(previews, plan, channel)
        if verdict is not None and preview_unfulfillable(previews, plan):
            refuse(ctx, scoped, verdict.reason)
            _fall_back(ctx, row.id, channel, verdict.reason, version)
            return
        if verdict is not None:
            refuse(ctx, scoped, verdict.reason)
            _finish_with(ctx, row.id, Event.PARK, f"{verdict.reason} ({fees})", version=version)
            return
        held = judge_fees(previews, plan, channel, row.approved_rules)
        if held is not None:
            _hold(ctx, row.id, held, version, fees)
            return
        settle(ctx, row.id, scoped)  # accept fulfillment requests; record the units covered
        if not _mark_submitting(ctx, row, plan, version, fees, digest=digest):
            return
    try:
        outbound.create(plan.create)
    except amz.InvalidInput as exc:
        existing = _read_existing(outbound, plan.seller_fulfillment_order_id)
        if existing is not None:  # our earlier create did land (its answer was lost)
            _finish_with(
                ctx,
                row.id,
                created_event,
                "already created at Amazon",
                amazon_status=existing.status,
                sfo_id=plan.seller_fulfillment_order_id,
            )
            return
        _finish_with(ctx, row.id, Event.PARK, f"Amazon rejected the order: {exc.describe()}")
        return
    except amz.SpApiError as exc:
        if not exc.ambiguous:
            raise
        existing = _read_existing(outbound, plan.seller_fulfillment_order_id)
        if existing is None:
            raise RetryLater(
                f"create outcome unknown ({exc.code}) and not found at Amazon; will retry",
                after_s=exc.retry_after,
            ) from None
        _finish_with(
            ctx,
            row.id,
            created_event,
            "created (confirmed by reading after an ambiguous answer)",
            amazon_status=existing.status,
            sfo_id=plan.seller_fulfillment_order_id,
        )
        return
    reason = "; ".join(
        [
            "created at Amazon",
            *([f"skipped SKUs not at Amazon: {', '.join(plan.skipped_skus)}"] if plan.skipped_skus else []),
            *plan.notes,
        ]
    )
    _finish_with(
        ctx, row.id, created_event, reason, amazon_status="Received", sfo_id=plan.seller_fulfillment_order_id
    )


def _found_at_amazon(ctx: JobContext, row: OrderRecord, channel: Channel) -> bool:
    """An order left in `submitting` (a crash, a lost answer) is read back from Amazon under the
    id it was being created with, *before* the channels file is consulted again: after a crash
    and a config change (a SKU unmapped, a destination no longer served) planning again would
    park an order Amazon already has, and sync would then ignore it. Found: recorded as created."""
    assert row.id is not None
    sfo_id = row.seller_fulfillment_order_id
    if not sfo_id:
        return False
    with read_session(ctx.bridge.engine) as session:
        parts = [part.seller_fulfillment_order_id for part in order_parts(session, row.id)] or [sfo_id]
    outbound: FulfillmentOutbound = ctx.services["amazon"].for_channel(channel)
    try:
        found = [_read_existing(outbound, part) for part in parts]
    except amz.SpApiError as exc:
        raise amazon_retry(exc, channel) from None
    existing = found[0]
    if existing is None or any(part is None for part in found):
        # Not there, or a split order with parts still missing: the resumed submission (which
        # reads each part again) creates what is missing.
        return False
    on_hold = (existing.fulfillment_action or "").lower() == "hold" or bool(
        (row.submission or {}).get("hold")
    )
    _finish_with(
        ctx,
        row.id,
        Event.CREATED_ON_HOLD if on_hold else Event.CREATED,
        "found at Amazon after an interrupted attempt"
        + (f" ({len(parts)} orders: {', '.join(parts)})" if len(parts) > 1 else ""),
        amazon_status=existing.status,
        sfo_id=sfo_id,
    )
    return True


def _submit_parts(
    ctx: JobContext,
    row: OrderRecord,
    channel: Channel,
    parts: tuple[Plan, ...],
    outbound: FulfillmentOutbound,
    version: str,
    scoped: Scoped | None = None,
) -> None:
    """`_submit` for an order split into several Amazon orders (pipeline/split.py): every part is
    previewed before any is created; `submitting` (with the parts) is committed before the first
    create; a resumed attempt reads each part and creates only the missing ones."""
    assert row.id is not None
    resuming = row.order_state is OrderState.SUBMITTING
    if resuming:
        if not _record_submission(ctx, row.id, parts[0], version):
            raise RetryLater(
                "the order changed while the submission was resumed; replanning", count_attempt=False
            )
    else:
        verdict = _check_features(ctx, channel, _all_items(parts), outbound)
        seen: list[str] = []
        for part in parts if verdict is None else ():
            previews = outbound.preview(part.preview)
            fees = f"{part.seller_fulfillment_order_id}: {fees_seen(previews, part)}"
            verdict = judge_preview(previews, part, channel)
            if verdict is not None and preview_unfulfillable(previews, part):
                refuse(ctx, scoped, verdict.reason)
                _fall_back(ctx, row.id, channel, verdict.reason, version)
                return
            if verdict is not None:
                verdict = Park(f"{verdict.reason} ({fees})")
                break
            held = judge_fees(previews, part, channel, row.approved_rules)
            if held is not None:
                _hold(ctx, row.id, held, version, fees)
                return
            seen.append(fees)
        if verdict is not None:
            refuse(ctx, scoped, verdict.reason)
            _finish_with(ctx, row.id, Event.PARK, verdict.reason, version=version)
            return
        settle(ctx, row.id, scoped)
        if not _mark_submitting(ctx, row, parts[0], version, "; ".join(seen), parts):
            return
    created: list[str] = []
    refused: list[str] = []
    for part in parts:
        sfo_id = part.seller_fulfillment_order_id
        if resuming and _read_existing(outbound, sfo_id) is not None:
            created.append(sfo_id)
            continue
        try:
            outbound.create(part.create)
        except amz.InvalidInput as exc:
            if _read_existing(outbound, sfo_id) is not None:
                created.append(sfo_id)
            else:
                refused.append(f"{sfo_id}: {exc.describe()}")
            continue
        except amz.SpApiError as exc:
            if not exc.ambiguous or _read_existing(outbound, sfo_id) is None:
                raise  # still `submitting`: the retry reads every part before creating again
        created.append(sfo_id)
    if not created:
        _finish_with(ctx, row.id, Event.PARK, "Amazon rejected the order: " + "; ".join(refused))
        return
    reason = "; ".join(
        [
            f"created at Amazon as {len(created)} orders ({', '.join(created)})",
            *([f"Amazon rejected part(s): {'; '.join(refused)}"] if refused else []),
            *parts[0].notes,
        ]
    )
    status = "Received"

    def alert_refused(session: Session, locked: OrderRecord) -> None:
        if refused:
            owe_note(
                session,
                locked,
                "split-refused",
                ctx.bridge.clock.now(),
                f"Amazon rejected part(s) of this split order ({'; '.join(refused)}); "
                "ship those items another way.",
            )

    _finish_with(
        ctx,
        row.id,
        Event.CREATED,
        reason,
        amazon_status=status,
        sfo_id=parts[0].seller_fulfillment_order_id,
        then=alert_refused,
    )


def _all_items(parts: tuple[Plan, ...]) -> Plan:
    """One plan holding every part's items (for the eligibility check, asked once)."""
    items = [i for p in parts for i in p.create.items]
    return replace(parts[0], create=replace(parts[0].create, items=items))


def _fall_back(ctx: JobContext, order_id: int, channel: Channel, reason: str, version: str) -> None:
    """Amazon cannot fulfil the order: park it, or hand it back, as the channel's `fallback` says."""
    decision = on_unfulfillable_preview(channel, reason)
    now = ctx.bridge.clock.now()

    def owed(session: Session, row: OrderRecord) -> None:
        if decision.release_all:
            enqueue_release(session, row, "preview", None, reason)
        if decision.note:
            owe_note(session, row, "fallback:preview", now, decision.note)

    if decision.park:
        _finish_with(ctx, order_id, Event.PARK, reason, version=version, then=owed)
    else:
        why = f"{reason}; handed back to the storefront (fallback: release)"
        _finish_with(ctx, order_id, Event.SKIP, why, version=version, then=owed)


def _check_features(
    ctx: JobContext, channel: Channel, plan: Plan, outbound: FulfillmentOutbound
) -> Park | None:
    """Park when a SKU may not ship with a feature the order requires (eligibility is cached per
    account, marketplace and feature: no call per order in the steady state)."""
    features = plan_features(plan)
    if not features or not channel.features.check_eligibility:
        return None
    try:
        found = ctx.services["amazon"].eligibility.ineligible(
            outbound,
            channel.account_id,
            channel.marketplace_id,
            features,
            [item.seller_sku for item in plan.create.items],
        )
    except amz.InvalidInput as exc:  # e.g. a feature Amazon does not offer in this marketplace
        return Park(
            f"Amazon refused to check eligibility for {', '.join(features)}: {exc.describe()}; remove the "
            f"feature from the order or channel {channel.id}, or set mcf_features.check_eligibility: false"
        )
    return judge_eligibility(found, channel)


def _risk(ctx: JobContext, channel: Channel, row: OrderRecord, order: CanonicalOrder) -> OrderRisk | None:
    """The storefront's risk assessment, or None when it cannot say (the risk rule then holds,
    and the audit trail says why). A retryable failure retries the job."""
    storefronts = ctx.services.get("storefronts")
    source = storefronts.risk(channel) if storefronts is not None else None
    if source is None:
        return None
    try:
        risk: OrderRisk = source.order_risk(order.external_id)
    except PushError as exc:
        if exc.retryable:
            raise RetryLater(f"reading the order's risk: {exc.message}", exc.retry_after) from None
        _note(ctx, row.id or 0, "policy:risk_unreadable", f"cannot read the order's risk: {exc.message}")
        return None
    wait = risk_pending_wait(risk, channel, received_at=row.created_at, now=ctx.bridge.clock.now())
    if wait is not None:
        raise RetryLater("the storefront's risk analysis is still pending", wait, count_attempt=False)
    _note(ctx, row.id or 0, "policy:risk", f"storefront risk recommendation: {risk.describe()}")
    return risk


def _hold(ctx: JobContext, order_id: int, held: Hold, version: str, fees: str = "") -> None:
    """Park the order for an operator's approval, recording which rules held it (an approval
    approves them), unless the order changed since it was planned."""
    now = ctx.bridge.clock.now()
    reason = f"{held.reason} ({fees})" if fees else held.reason
    with ctx.finish() as session:
        row = lock_order(session, order_id)
        if row.order_state not in NOT_SUBMITTED or not can(row.order_state, Event.HOLD):
            note(session, row, "ignored:hold", now, f"order is {row.state}: {reason}")
            return
        if _version(row) != version:
            note(session, row, "ignored:hold", now, "the order changed while it was planned; replanning")
            return
        approvals = dict(row.approvals or {})
        row.approvals = {"held": list(held.rules), "approved": list(approvals.get("approved", ()))}
        transition(session, row, Event.HOLD, now, reason)


def _note(ctx: JobContext, order_id: int, event: str, reason: str) -> None:
    with write_session(ctx.bridge.engine) as session:
        jobs.assert_held(session, ctx.job)
        row = lock_order(session, order_id)
        note(session, row, event, ctx.bridge.clock.now(), reason)


def _read_existing(outbound: FulfillmentOutbound, sfo_id: str) -> FulfillmentOrder | None:
    try:
        return outbound.get(sfo_id)
    except amz.NotFound:
        return None


def _mark_submitting(
    ctx: JobContext,
    planned: OrderRecord,
    plan: Plan,
    version: str,
    fees: str = "",
    parts: tuple[Plan, ...] = (),
    *,
    digest: bytes | None = None,
) -> bool:
    """Commit `submitting` (and what is being sent) before the create leaves, unless the order
    changed since it was planned: then the change's own job plans again, and this one stops.

    `planned` is the order as the job read it. With its `digest` (PostgreSQL, an order sent
    whole) one statement commits `submitting` if the order is still exactly that; anything else
    takes the transaction below, which finds out what changed."""
    assert planned.id is not None
    order_id = planned.id
    now = ctx.bridge.clock.now()
    reason = f"preview passed ({fees}); creating at Amazon"
    if digest is not None and not parts:
        values = {
            "seller_fulfillment_order_id": plan.seller_fulfillment_order_id,
            "submission": submission_of(planned.canonical(), plan, version).to_json(),
        }
        if ctx.step(
            order_id,
            from_state=planned.order_state,
            event=Event.SUBMIT_STARTED,
            reason=reason,
            values=values,
            digest=digest,
        ):
            return True
    with write_session(ctx.bridge.engine) as session:
        row = jobs.lock_order_held(session, ctx.job, order_id)
        if row.order_state not in NOT_SUBMITTED:
            return False
        current = row.canonical()
        if current.content_version() != version:
            note(
                session,
                row,
                "ignored:submit_started",
                now,
                "the order changed while it was planned; replanning",
            )
            return False
        row.seller_fulfillment_order_id = plan.seller_fulfillment_order_id
        row.submission = submission_of(current, plan, version).to_json()
        record_parts(session, order_id, [p.seller_fulfillment_order_id for p in parts], now)
        transition(session, row, Event.SUBMIT_STARTED, now, reason)
    return True


def _record_submission(ctx: JobContext, order_id: int, plan: Plan, version: str) -> bool:
    """A resumed submission is about to create from the order as it is now: record that, unless
    the order changed since it was read (then plan again)."""
    with write_session(ctx.bridge.engine) as session:
        jobs.assert_held(session, ctx.job)
        row = lock_order(session, order_id)
        current = row.canonical()
        if row.order_state is not OrderState.SUBMITTING or current.content_version() != version:
            return False
        row.submission = submission_of(current, plan, version).to_json()
        session.add(row)
    return True
