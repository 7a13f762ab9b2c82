"""Alert delivery: each opened or cleared alert as one signed JSON POST to the operator's URL.

The operator points `BRIDGE_ALERT_WEBHOOK_URL` at their own relay (Slack, e-mail, PagerDuty...),
which checks the Standard Webhooks signature made with `BRIDGE_ALERT_WEBHOOK_SECRET`, exactly as a
generic storefront checks our callbacks. `webhook-id` is stable per alert event, so a receiver
that dedupes by it (as the spec asks) shows each event once however often a delivery is retried.
Body::

    {"type": "alert.opened" | "alert.cleared", "timestamp": "<ISO 8601 UTC>",
     "data": {"id": 7, "key": "job_dead:42", "kind": "job_dead", "severity": "error",
              "message": "...", "channel_id": "shop-a", "order_id": 12, "order": "#1001",
              "account_id": null, "opened_at": "...", "last_seen_at": "...", "occurrences": 3,
              "cleared_at": null}}
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from ..alerts import AlertView, get_alert
from ..storefronts.generic import sign_standard_webhook
from ..storefronts.push import PUSH_TIMEOUT, USER_AGENT
from ..worker import JobContext, RetryLater

log = logging.getLogger("bridge.alerts")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def alert_payload(alert: AlertView, event: str, now: datetime) -> dict[str, Any]:
    return {
        "type": event,
        "timestamp": _iso(now),
        "data": {
            "id": alert.id,
            "key": alert.key,
            "kind": alert.kind,
            "severity": alert.severity,
            "message": alert.message,
            "channel_id": alert.channel_id,
            "order_id": alert.order_id,
            "order": alert.order_display_id,
            "account_id": alert.account_id,
            "opened_at": _iso(alert.opened_at),
            "last_seen_at": _iso(alert.last_seen_at),
            "occurrences": alert.occurrences,
            "cleared_at": _iso(alert.cleared_at),
        },
    }


def delivery_id(alert_id: int, event: str, at: str) -> str:
    digest = hashlib.sha256(f"{alert_id}\x1f{event}\x1f{at}".encode()).hexdigest()
    return f"msg_alert_{digest[:32]}"


def handle_alert_delivery(ctx: JobContext) -> None:
    settings = ctx.bridge.settings
    url = settings.alert_webhook_url
    if not url:
        return  # no operator URL: alerts are listed by `fba-bridge alerts` only
    alert = get_alert(ctx.bridge.engine, int(ctx.job.payload["alert_id"]))
    if alert is None:
        return
    event = str(ctx.job.payload["event"])
    msg_id = delivery_id(alert.id, event, str(ctx.job.payload.get("at", "")))
    now = ctx.bridge.clock.now()
    body = json.dumps(alert_payload(alert, event, now), separators=(",", ":"), ensure_ascii=False).encode()
    headers = sign_standard_webhook(
        settings.alert_webhook_secret.reveal(), msg_id, int(now.timestamp()), body
    )
    transport = ctx.services.get("alert_transport")
    try:
        with httpx.Client(
            timeout=PUSH_TIMEOUT,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            response = client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.TransportError as exc:
        raise RetryLater(f"alert relay not reachable ({type(exc).__name__})") from None
    if response.status_code >= 300:
        raise RetryLater(f"alert relay answered {response.status_code}")
    log.info("alert %s delivered event=%s webhook_id=%s", alert.id, event, msg_id)
