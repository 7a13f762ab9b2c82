"""Operator actions on orders, jobs and alerts: the one place the CLI and the console change
something by hand, so both behave the same and every action lands in the audit trail with who
asked for it.

An action is judged under the order's row lock against the state the order is in *then*, not
the state the operator saw: a worker may have moved the order on in between, and the action
then says what happened instead of undoing the worker's step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from . import alerts, jobs
from .admin import AdminError, configured_channel, find_order
from .admin import retry_job as _admin_retry_job
from .audit import note, transition
from .channels import Channel
from .intake import JOB_CANCEL, JOB_SUBMIT
from .orders import Event, OrderState, can
from .store import ORDER_ATTENTION, JobRecord, OrderRecord, lock_order, read_session, write_session

if TYPE_CHECKING:
    from .amazon.accounts import AmazonAccounts
    from .amazon.models import FulfillmentPreview
    from .bootstrap import Bridge


# What `resubmit` re-plans: orders parked for a reason the operator may have fixed meanwhile.
RESUBMITTABLE = frozenset({OrderState.NEEDS_ATTENTION, OrderState.NOT_FOR_AMAZON})
HOLDABLE = frozenset(
    {OrderState.AWAITING_PAYMENT, OrderState.RECEIVED, OrderState.NEEDS_ATTENTION, OrderState.NOT_FOR_AMAZON}
)


class OperatorError(ValueError):
    """The action cannot be done; the message says why and what to do instead (no personal data)."""


@dataclass(frozen=True)
class ActionResult:
    action: str
    channel_id: str
    order_ref: str  # the name the shop shows (`#1001`), else its order id
    order_id: int | None
    changed: bool
    state: str
    message: str


@dataclass(frozen=True)
class PreviewResult:
    """What Amazon would do with the order now (nothing is created)."""

    channel_id: str
    order_ref: str
    speed: str
    fulfillable: bool
    verdict: str  # "" when the channel's rules would let the order be created
    previews: tuple[FulfillmentPreview, ...] = field(default=())


def _actor(actor: str) -> str:
    actor = " ".join(actor.split())[:64]
    if not actor:
        raise OperatorError("say who is acting (an operator name) so the audit trail can record it")
    return actor


def _channel(bridge: Bridge, channel_id: str) -> Channel:
    try:
        return configured_channel(bridge, channel_id)
    except AdminError as exc:
        raise OperatorError(str(exc)) from None


def _order_id(bridge: Bridge, channel_id: str, ref: str) -> int:
    _channel(bridge, channel_id)
    try:
        row = find_order(bridge.engine, channel_id, ref)
    except AdminError as exc:
        raise OperatorError(str(exc)) from None
    assert row.id is not None
    return row.id


def _ref(row: OrderRecord) -> str:
    return row.display_id or row.external_id


def _result(action: str, row: OrderRecord, changed: bool, message: str) -> ActionResult:
    return ActionResult(action, row.channel_id, _ref(row), row.id, changed, row.state, message)


def _act(
    bridge: Bridge,
    channel_id: str,
    ref: str,
    action: str,
    actor: str,
    change: Callable[[Session, OrderRecord, datetime, str], tuple[bool, str]],
) -> ActionResult:
    """Run `change` on the locked order; it returns (changed, message). A refusal is an
    `OperatorError` raised by `change` and leaves no trace but its message."""
    who = _actor(actor)
    order_id = _order_id(bridge, channel_id, ref)
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        row = lock_order(session, order_id)
        changed, message = change(session, row, now, who)
        if not changed:
            note(session, row, f"operator:{action}", now, f"by {who}: nothing to do ({message})")
        return _result(action, row, changed, message)


def _enqueue_submit(session: Session, row: OrderRecord) -> None:
    jobs.enqueue(session, JOB_SUBMIT, order_id=row.id, dedupe_key=f"{JOB_SUBMIT}:{row.id}")


def resubmit(bridge: Bridge, channel_id: str, ref: str, *, actor: str) -> ActionResult:
    """Re-plan a parked order against the channels file and the stock as they are now (after a
    restock, a SKU added to the map, an address fixed in the shop). The submit job previews
    again, so an order that still cannot ship is parked again with the current reason."""

    def change(session: Session, row: OrderRecord, now: datetime, who: str) -> tuple[bool, str]:
        state = row.order_state
        if state in RESUBMITTABLE:
            transition(session, row, Event.RETRY, now, f"re-submitted by {who}")
            _enqueue_submit(session, row)
            return True, "queued for submission; `fba-bridge order` shows the outcome"
        if state in (OrderState.RECEIVED, OrderState.SUBMITTING):
            _enqueue_submit(session, row)
            return False, f"already on its way to Amazon ({state.value})"
        if state is OrderState.AWAITING_APPROVAL:
            raise OperatorError(
                f"order {_ref(row)} waits for approval ({row.attention_reason or 'held'}); approve it instead"
            )
        if state is OrderState.AWAITING_PAYMENT:
            raise OperatorError(
                f"order {_ref(row)} is not paid yet; it is submitted when the shop reports it paid"
            )
        raise OperatorError(
            f"order {_ref(row)} is {state.value}; only a parked order (needs_attention, not_for_amazon) "
            "can be re-submitted"
        )

    return _act(bridge, channel_id, ref, "resubmit", actor, change)


def approve(bridge: Bridge, channel_id: str, ref: str, *, actor: str) -> ActionResult:
    """Let an order that waits for approval go to Amazon; it is planned against the current state."""

    def change(session: Session, row: OrderRecord, now: datetime, who: str) -> tuple[bool, str]:
        state = row.order_state
        if state is not OrderState.AWAITING_APPROVAL:
            if state in (OrderState.RECEIVED, OrderState.SUBMITTING):
                return False, f"order is {state.value}: already on its way to Amazon"
            hint = "; re-submit it instead" if state in RESUBMITTABLE else ""
            raise OperatorError(f"order {_ref(row)} is {state.value}, not waiting for approval{hint}")
        held_for = row.attention_reason
        transition(
            session,
            row,
            Event.APPROVE,
            now,
            f"approved by {who}" + (f" (held: {held_for})" if held_for else ""),
        )
        _enqueue_submit(session, row)
        return True, "approved; queued for submission"

    return _act(bridge, channel_id, ref, "approve", actor, change)


def hold(bridge: Bridge, channel_id: str, ref: str, *, actor: str, reason: str = "") -> ActionResult:
    """Keep an order that has not reached Amazon away from it until someone approves it."""
    why = " ".join(reason.split())[:500]

    def change(session: Session, row: OrderRecord, now: datetime, who: str) -> tuple[bool, str]:
        state = row.order_state
        if state is OrderState.AWAITING_APPROVAL:
            return False, "already waiting for approval"
        if state not in HOLDABLE:
            raise OperatorError(
                f"order {_ref(row)} is {state.value}: only an order that has not reached Amazon can be held"
                + ("; cancel it instead" if can(state, Event.CANCEL) else "")
            )
        transition(session, row, Event.HOLD, now, f"held by {who}" + (f": {why}" if why else ""))
        return True, "held; `approve` lets it go to Amazon"

    return _act(bridge, channel_id, ref, "hold", actor, change)


def cancel(bridge: Bridge, channel_id: str, ref: str, *, actor: str) -> ActionResult:
    """Stop an order in fba-bridge: before submission it simply ends; at Amazon a cancellation is
    requested (Amazon refuses once the order is past Planning). The shop's order is not changed."""

    def change(session: Session, row: OrderRecord, now: datetime, who: str) -> tuple[bool, str]:
        state = row.order_state
        if state in (OrderState.CANCELLED, OrderState.CANCEL_REQUESTED):
            return False, f"already {state.value}"
        if not can(state, Event.CANCEL):
            raise OperatorError(f"order {_ref(row)} is {state.value}; it can no longer be cancelled")
        new_state = transition(session, row, Event.CANCEL, now, f"cancelled by {who}")
        if new_state is OrderState.CANCEL_REQUESTED:
            jobs.enqueue(session, JOB_CANCEL, order_id=row.id, dedupe_key=f"{JOB_CANCEL}:{row.id}")
            return True, "cancellation requested at Amazon; also cancel or refund the order in the shop"
        return True, "cancelled; also cancel or refund the order in the shop"

    return _act(bridge, channel_id, ref, "cancel", actor, change)


def parked_orders(bridge: Bridge, *, batch: int = 500) -> list[OrderRecord]:
    """Every order `resubmit` would take, oldest first (all of them, not a page)."""
    found: list[OrderRecord] = []
    after = 0
    states = sorted(s.value for s in RESUBMITTABLE)
    with read_session(bridge.engine) as session:
        while True:
            rows = list(
                session.execute(
                    select(OrderRecord)
                    .where(
                        col(OrderRecord.state).in_(states),
                        text(f"({ORDER_ATTENTION})"),  # grouped: the predicate has an OR
                        col(OrderRecord.id) > after,
                    )
                    .order_by(col(OrderRecord.id))
                    .limit(batch)
                ).scalars()
            )
            found += rows
            if len(rows) < batch:
                return found
            after = rows[-1].id or after


def resubmit_all(bridge: Bridge, *, actor: str, dry_run: bool = True) -> list[ActionResult]:
    """Re-submit every parked order (`needs_attention`, and `not_for_amazon` orders that were
    flagged). With `dry_run` nothing changes: the results list what would be re-submitted."""
    who = _actor(actor)
    results = []
    for row in parked_orders(bridge):
        if dry_run:
            results.append(
                _result("resubmit", row, False, f"would re-submit ({row.attention_reason or row.state})")
            )
            continue
        try:
            results.append(resubmit(bridge, row.channel_id, row.external_id, actor=who))
        except OperatorError as exc:  # moved on meanwhile (e.g. cancelled by the shop)
            results.append(_result("resubmit", row, False, str(exc)))
    return results


def request_reconcile(bridge: Bridge, channel_id: str, *, actor: str, since: datetime | None = None) -> bool:
    """Queue a reconciliation pass for the channel (one waiting pass per channel). False when one
    was already waiting."""
    from .pipeline.reconcile import NotReconcilable, enqueue_reconcile, reconcilable

    _actor(actor)
    try:
        reconcilable(bridge, channel_id)
    except NotReconcilable as exc:
        raise OperatorError(str(exc)) from None
    with write_session(bridge.engine) as session:
        return enqueue_reconcile(session, channel_id, since)


def retry_job(bridge: Bridge, job_id: int, *, actor: str) -> None:
    """Give a dead-lettered job new attempts (its handler reads the storefront/Amazon again first)."""
    who = _actor(actor)
    try:
        _admin_retry_job(bridge.engine, bridge.clock, job_id)
    except AdminError as exc:
        raise OperatorError(str(exc)) from None
    with write_session(bridge.engine) as session:
        job = session.get(JobRecord, job_id)
        if job is not None and job.order_id is not None:
            row = session.get(OrderRecord, job.order_id)
            if row is not None:
                note(
                    session,
                    row,
                    "operator:retry_job",
                    bridge.clock.now(),
                    f"by {who}: {job.kind} job {job_id}",
                )


def ack_alert(bridge: Bridge, alert_id: int, *, actor: str) -> alerts.AlertView:
    """Seen by an operator; the alert stays listed until its cause is gone."""
    return _on_alert(alerts.acknowledge, bridge, alert_id, actor)


def resolve_alert(bridge: Bridge, alert_id: int, *, actor: str) -> alerts.AlertView:
    """Closed by hand; it opens again if its cause comes back."""
    return _on_alert(alerts.resolve, bridge, alert_id, actor)


def _on_alert(
    act: Callable[[Engine, int, str, datetime], alerts.AlertView], bridge: Bridge, alert_id: int, actor: str
) -> alerts.AlertView:
    who = _actor(actor)
    try:
        return act(bridge.engine, alert_id, who, bridge.clock.now())
    except LookupError as exc:
        raise OperatorError(str(exc)) from None


def preview_now(
    bridge: Bridge, channel_id: str, ref: str, *, actor: str, amazon: AmazonAccounts | None = None
) -> PreviewResult:
    """Ask Amazon for a fulfillment preview of the order as stored now, judged by the channel's
    rules. Read-only at Amazon (a preview creates nothing); the request is audit-logged. Without
    `amazon`, clients are built for this call (as the CLI does)."""
    from .amazon import errors as amz
    from .amazon.accounts import build_amazon
    from .pipeline.plan import Park, Skip, chosen_preview, judge_preview, plan_submission

    who = _actor(actor)
    channel = _channel(bridge, channel_id)
    order_id = _order_id(bridge, channel_id, ref)
    with read_session(bridge.engine) as session:
        row = session.get(OrderRecord, order_id)
        assert row is not None
        order = row.canonical()
        order_ref = _ref(row)
    plan = plan_submission(order, channel)
    if isinstance(plan, Park | Skip):
        raise OperatorError(f"order {order_ref} cannot be planned as it stands: {plan.reason}")
    accounts = amazon or build_amazon(bridge)
    try:
        previews = tuple(accounts.for_channel(channel).preview(plan.preview))
    except amz.SpApiError as exc:  # say which error, never the request (it holds the address)
        raise OperatorError(f"Amazon did not answer the preview ({exc.code}); try again later") from None
    finally:
        if amazon is None:
            accounts.close()
    verdict = judge_preview(previews, plan, channel)
    chosen = chosen_preview(previews, plan)
    with write_session(bridge.engine) as session:
        row = session.get(OrderRecord, order_id)
        assert row is not None
        note(
            session,
            row,
            "operator:preview",
            bridge.clock.now(),
            f"by {who}: " + (verdict.reason if verdict else "Amazon can fulfil it under the channel's rules"),
        )
    return PreviewResult(
        channel_id,
        order_ref,
        str(plan.speed),
        bool(chosen and chosen.is_fulfillable),
        verdict.reason if verdict else "",
        previews,
    )
