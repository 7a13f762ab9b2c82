"""Storefront reconciliation: webhooks are hints, not a ledger.

WooCommerce never retries a failed delivery (and disables a webhook after 5 failures in a row);
Shopify gives up after a few hours of retries. So, per channel, a pass reads the orders the
storefront changed since the channel's cursor (minus an overlap, for clock skew and commits that
land late) and feeds each one through the *same* intake as a webhook: a synthetic delivery,
recorded with source `reconcile`, parsed by the platform's webhook adapter and applied by
`intake.ingest`. Duplicates, stale versions and amendments therefore behave exactly as for
webhooks, and a webhook arriving during a pass cannot create an order twice (one row per channel
and order id, enforced by the database).

What a caller may rely on:

- `run_pass` reads, ingests and then advances the cursor to the pass's start time, only after
  the whole listing was read (a failed pass leaves the cursor where it was, so the next pass
  reads the same window again). A pass with an explicit `since` later than the cursor does not
  move it (the window in between was not read).
- One pass per channel at a time: the cursor row carries a lease in database time; a second
  pass meanwhile raises `PassBusy`.
- The cost is proportional to the orders that changed: the storefront filters by modification
  date; each order found costs one indexed lookup, and an order version already stored (its
  synthetic delivery key is the order id and a digest of the body) costs nothing more.
- WooCommerce webhooks found `disabled` (or `paused`) raise one alert per topic, cleared when
  the webhook is active again.
- Nothing personal is logged or stored in the summary: counts, order ids and codes only.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from .. import alerts, jobs
from ..bootstrap import Bridge
from ..channels import RECONCILABLE_PLATFORMS, Channel
from ..intake import SOURCE_RECONCILE, ingest
from ..store import ReconcileCursorRecord, db_now, write_session
from ..storefronts import shopify, woocommerce
from ..storefronts.base import Rejection
from ..storefronts.push import PushError
from ..storefronts.reconcile import OrderLister, WebhookState
from ..storefronts.registry import Storefronts, adapter_for
from ..worker import GiveUp, JobContext, RetryLater

log = logging.getLogger("bridge.reconcile")

JOB_RECONCILE = "reconcile"
PASS_LEASE_S = 900.0
BUSY_RETRY_S = 60.0

TOPIC_HEADERS = {"shopify": shopify.TOPIC_HEADER, "woocommerce": woocommerce.TOPIC_HEADER}

#: Intake outcomes by what the operator reads in the pass summary.
NEW = frozenset({"created"})
AMENDMENTS = frozenset({"amended", "amended_after_submission", "recorded_after_submission", "restored"})
CANCELLATIONS = frozenset({"cancelled", "cancel_requested", "tombstoned"})
ACTIVE_WEBHOOK = "active"


class PassBusy(Exception):
    """Another reconciliation pass of the channel is running."""


class NotReconcilable(ValueError):
    """The channel cannot be reconciled (its platform has no order API, or it is unknown)."""


@dataclass
class PassSummary:
    channel_id: str
    since: datetime
    found: int = 0
    new: int = 0
    amendments: int = 0
    cancellations: int = 0
    nothing_to_do: int = 0
    rejected: int = 0
    calls: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    webhooks_not_active: list[str] = field(default_factory=list)
    cursor_advanced: bool = False

    def count(self, outcome: str) -> None:
        self.found += 1
        self.outcomes[outcome] += 1
        if outcome in NEW:
            self.new += 1
        elif outcome in AMENDMENTS:
            self.amendments += 1
        elif outcome in CANCELLATIONS:
            self.cancellations += 1
        elif outcome == "rejected":
            self.rejected += 1
        else:
            self.nothing_to_do += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "since": self.since.isoformat(),
            "found": self.found,
            "new": self.new,
            "amendments": self.amendments,
            "cancellations": self.cancellations,
            "nothing_to_do": self.nothing_to_do,
            "rejected": self.rejected,
            "calls": self.calls,
            "seconds": round(self.seconds, 3),
            "outcomes": dict(sorted(self.outcomes.items())),
            "webhooks_not_active": list(self.webhooks_not_active),
            "cursor_advanced": self.cursor_advanced,
        }


def reconcile_key(channel_id: str) -> str:
    """The dedupe key of a channel's waiting reconcile job (the clock's and the operator's alike)."""
    return f"{JOB_RECONCILE}:{channel_id}"


def enqueue_reconcile(session: Session, channel_id: str, since: datetime | None = None) -> bool:
    """Queue a pass of the channel in the caller's transaction (`operator.request_reconcile`).
    False when one is already waiting: a waiting pass reads from the cursor, so only a request
    with an explicit `since` earlier than the cursor needs its own job (it gets one here)."""
    payload = {"channel_id": channel_id, "since": since.isoformat() if since else None}
    key = reconcile_key(channel_id) if since is None else f"{reconcile_key(channel_id)}:{since.isoformat()}"
    return jobs.enqueue(session, JOB_RECONCILE, payload=payload, dedupe_key=key[:200])


def reconcilable(bridge: Bridge, channel_id: str) -> Channel:
    channel = bridge.config.channel(channel_id)
    if channel is None:
        raise NotReconcilable(f"no channel {channel_id!r} in the channels file")
    if channel.platform not in RECONCILABLE_PLATFORMS:
        raise NotReconcilable(
            f"channel {channel_id} ({channel.platform}) has no order API to read; its sender must "
            "retry failed deliveries (see the README, Reconciliation)"
        )
    if not channel.enabled:
        raise NotReconcilable(f"channel {channel_id} is disabled in the channels file")
    return channel


# --------------------------------------------------------------------------------------------
# The pass


def run_pass(
    bridge: Bridge, storefronts: Storefronts, channel_id: str, since: datetime | None = None
) -> PassSummary:
    """One reconciliation pass of a channel, now. Raises `PassBusy`, `NotReconcilable`, or the
    storefront's `PushError` (the cursor then stays where it was)."""
    channel = reconcilable(bridge, channel_id)
    holder = uuid.uuid4().hex
    started = bridge.clock.now()
    window_start, cursor_before = _take(bridge, channel, holder, since, started)
    summary = PassSummary(channel_id=channel.id, since=window_start)
    timer = time.perf_counter()
    try:
        lister = storefronts.orders_for(channel)
        calls_before = lister.calls
        _ingest_all(bridge, channel, lister, window_start, summary, holder)
        webhooks = lister.webhooks()
    except BaseException:
        _release(bridge, channel.id, holder)
        raise
    summary.calls = lister.calls - calls_before
    summary.seconds = time.perf_counter() - timer
    summary.cursor_advanced = cursor_before is None or window_start <= cursor_before
    _finish(bridge, channel, holder, started, summary, webhooks)
    log.info(
        "reconcile channel=%s found=%d new=%d amendments=%d cancellations=%d nothing_to_do=%d "
        "rejected=%d calls=%d",
        channel.id,
        summary.found,
        summary.new,
        summary.amendments,
        summary.cancellations,
        summary.nothing_to_do,
        summary.rejected,
        summary.calls,
    )
    return summary


def _ingest_all(
    bridge: Bridge,
    channel: Channel,
    lister: OrderLister,
    since: datetime,
    summary: PassSummary,
    holder: str,
) -> None:
    adapter = adapter_for(channel.platform)
    renewed = time.monotonic()
    for listed in lister.changed(since):
        headers = {"Content-Type": "application/json", TOPIC_HEADERS[channel.platform]: listed.topic}
        try:
            delivery = adapter.parse(channel, headers, listed.body, bridge.clock)
        except Rejection as exc:
            # The storefront's own API returned something the webhook schema refuses: count it and
            # name the order; a person must look (the same order sent as a webhook would be refused).
            log.warning(
                "reconcile channel=%s order %s refused by intake: %s (%d problem(s))",
                channel.id,
                listed.external_id,
                exc.code,
                len(exc.problems),
            )
            summary.count("rejected")
            continue
        digest = hashlib.sha256(listed.body).hexdigest()[:32]
        key = f"reconcile:{listed.external_id}:{digest}"
        delivery = replace(delivery, delivery_key=key, event_id=None)
        result = ingest(bridge.engine, channel, delivery, listed.body, bridge.clock, source=SOURCE_RECONCILE)
        summary.count("duplicate" if result.duplicate else result.outcome)
        if time.monotonic() - renewed > PASS_LEASE_S / 3:
            _renew(bridge, channel.id, holder)
            renewed = time.monotonic()


def _cursor(session: Session, channel_id: str, now: datetime) -> ReconcileCursorRecord:
    row = session.get(ReconcileCursorRecord, channel_id, with_for_update=True)
    if row is None:
        row = ReconcileCursorRecord(channel_id=channel_id, synced_until=None, updated_at=now, last_summary={})
        session.add(row)
        session.flush()
    return row


def _take(
    bridge: Bridge, channel: Channel, holder: str, since: datetime | None, now: datetime
) -> tuple[datetime, datetime | None]:
    """Take the channel's pass lease; returns where this pass reads from and the cursor before it."""
    with write_session(bridge.engine) as session:
        row = _cursor(session, channel.id, now)
        db_time = db_now(session)
        if row.running_until is not None and row.running_until > db_time and row.holder != holder:
            raise PassBusy(f"a reconciliation pass of channel {channel.id} is already running")
        row.running_until = db_time + PASS_LEASE_S
        row.holder = holder
        row.updated_at = now
        session.add(row)
        cursor = row.synced_until
    config = channel.reconcile
    if since is not None:
        return since, cursor
    if cursor is not None:
        return cursor - timedelta(seconds=config.overlap_s), cursor
    return now - timedelta(hours=config.first_lookback_h), None


def _renew(bridge: Bridge, channel_id: str, holder: str) -> None:
    with write_session(bridge.engine) as session:
        row = session.get(ReconcileCursorRecord, channel_id, with_for_update=True)
        if row is not None and row.holder == holder:
            row.running_until = db_now(session) + PASS_LEASE_S
            session.add(row)


def _release(bridge: Bridge, channel_id: str, holder: str) -> None:
    try:
        with write_session(bridge.engine) as session:
            row = session.get(ReconcileCursorRecord, channel_id, with_for_update=True)
            if row is not None and row.holder == holder:
                row.running_until = None
                row.holder = ""
                session.add(row)
    except Exception as exc:  # the lease runs out by itself; the pass's own error matters more
        log.warning("could not release the reconcile lease of %s: %s", channel_id, type(exc).__name__)


def _finish(
    bridge: Bridge,
    channel: Channel,
    holder: str,
    started: datetime,
    summary: PassSummary,
    webhooks: list[WebhookState] | None,
) -> None:
    now = bridge.clock.now()
    with write_session(bridge.engine) as session:
        row = _cursor(session, channel.id, now)
        if summary.cursor_advanced and (row.synced_until is None or row.synced_until < started):
            row.synced_until = started
        if row.holder == holder:
            row.running_until = None
            row.holder = ""
        row.last_summary = summary.to_json()
        row.updated_at = now
        session.add(row)
        if webhooks is not None:
            _webhook_alerts(session, channel, webhooks, summary, now)


def webhook_alert_key(channel_id: str, topic: str) -> str:
    return f"channel:{channel_id}:webhook:{topic}"


def _webhook_alerts(
    session: Session, channel: Channel, webhooks: list[WebhookState], summary: PassSummary, now: datetime
) -> None:
    by_topic: dict[str, list[WebhookState]] = {}
    for hook in webhooks:
        by_topic.setdefault(hook.topic, []).append(hook)
    for topic, hooks in sorted(by_topic.items()):
        key = webhook_alert_key(channel.id, topic)
        if any(h.status == ACTIVE_WEBHOOK for h in hooks):
            alerts.clear_alert(session, key, now)
            continue
        status = hooks[0].status or "unknown"
        summary.webhooks_not_active.append(f"{topic}:{status}")
        alerts.raise_alert(
            session,
            key=key,
            kind="webhook_disabled",
            message=(
                f"channel {channel.id}: the storefront's {topic} webhook is {status} (WooCommerce "
                "disables a webhook after 5 failed deliveries in a row); reconciliation keeps finding "
                "the orders, but set the webhook to Active again in WooCommerce > Settings > Advanced "
                f"> Webhooks, then run `fba-bridge reconcile {channel.id}`"
            ),
            now=now,
            channel_id=channel.id,
        )


# --------------------------------------------------------------------------------------------
# The job


def _since(payload: dict[str, Any]) -> datetime | None:
    value = payload.get("since")
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise GiveUp(f"reconcile: since {value!r} has no UTC offset; give one, e.g. 2026-12-01T00:00:00Z")
    return parsed


def handle_reconcile(ctx: JobContext) -> None:
    """Job `reconcile` (payload `{"channel_id": ..., "since": iso-or-null}`), enqueued by the
    clock every `reconcile.interval_s` and by `operator.request_reconcile`."""
    payload = ctx.job.payload
    channel_id = str(payload.get("channel_id") or "")
    storefronts: Storefronts = ctx.services["storefronts"]
    try:
        since = _since(payload)
    except ValueError:
        raise GiveUp(f"reconcile: since {payload.get('since')!r} is not an ISO 8601 date-time") from None
    try:
        run_pass(ctx.bridge, storefronts, channel_id, since)
    except NotReconcilable as exc:
        raise GiveUp(str(exc)) from None
    except PassBusy as exc:
        raise RetryLater(str(exc), BUSY_RETRY_S, count_attempt=False) from None
    except PushError as exc:
        if not exc.retryable:
            raise GiveUp(f"reconcile {channel_id}: storefront {exc.code}: {exc.message}") from None
        raise RetryLater(
            f"reconcile {channel_id}: storefront {exc.code}: {exc.message}",
            exc.retry_after,
            count_attempt=exc.code != "throttled",
        ) from None
