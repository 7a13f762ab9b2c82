"""Metrics: what the instrumented code calls (one line at each chokepoint) and nothing else.

Each function only updates this process's in-memory buffer (`events.py`); the counts reach the
database in batches and /metrics reads them from there (`collect.py`), so a count made in a
worker machine is visible to whichever web process answers the scrape. See `catalog.py` for the
metric names and labels.
"""

from __future__ import annotations

import re

from . import catalog
from .events import BUFFER, flush, start, stop

__all__ = [
    "flush",
    "job_finished",
    "spapi_call",
    "start",
    "status_label",
    "stop",
    "storefront_call",
    "storefront_graphql_error",
    "webhook",
]

#: Statuses worth telling apart; any other answer is counted by class (`4xx`), keeping the label
#: set bounded whatever a server sends.
KNOWN_STATUSES = frozenset(
    {200, 201, 202, 204, 301, 302, 304, 307, 308, 400, 401, 403, 404, 409, 410, 413, 415, 422, 429}
    | {500, 502, 503, 504}
)
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def status_label(status: object) -> str:
    """`429`, `5xx` (an unusual status), or `error` for no HTTP answer at all."""
    if isinstance(status, int) and not isinstance(status, bool):
        if status in KNOWN_STATUSES:
            return str(status)
        if 100 <= status <= 599:
            return f"{status // 100}xx"
    return "error"


def code_label(code: str | None) -> str:
    """A code from our own constants or an API's error code, or `other` if it looks like neither."""
    return code if code and _CODE.fullmatch(code) else "other"


def webhook(channel: str, outcome: str, status: int, seconds: float) -> None:
    """A webhook delivery answered: `channel` must be a configured id (or `unknown`)."""
    result = "ok" if status < 400 else ("rejected" if status < 500 else "error")
    BUFFER.add(catalog.WEBHOOKS.name, {"channel": channel, "outcome": code_label(outcome)})
    BUFFER.observe(
        catalog.WEBHOOK_DURATION.name,
        {"channel": channel, "result": result},
        seconds,
        catalog.WEBHOOK_DURATION.buckets,
    )


def spapi_call(account: str, operation: str, status: object, latency_ms: float) -> None:
    """One SP-API request sent (`status`: the HTTP status; anything else means no answer)."""
    BUFFER.add(
        catalog.SPAPI_CALLS.name,
        {"account": account, "operation": code_label(operation), "status": status_label(status)},
    )
    BUFFER.observe(
        catalog.SPAPI_DURATION.name,
        {"account": account, "operation": code_label(operation)},
        latency_ms / 1000.0,
        catalog.SPAPI_DURATION.buckets,
    )


def storefront_call(channel: str, platform: str, status: int | None) -> None:
    """One storefront API request (`status` None: no answer)."""
    BUFFER.add(
        catalog.STOREFRONT_CALLS.name,
        {"channel": channel, "platform": code_label(platform), "status": status_label(status)},
    )


def storefront_graphql_error(channel: str, code: str | None) -> None:
    BUFFER.add(catalog.STOREFRONT_GRAPHQL_ERRORS.name, {"channel": channel, "code": code_label(code)})


def job_finished(
    kind: str,
    outcome: str,
    *,
    at: float | None = None,
    channel: str | None = None,
    account: str | None = None,
) -> None:
    """A job run ended with `outcome`; `at` (Unix time) marks a success for the last-success gauge."""
    BUFFER.add(catalog.JOBS_FINISHED.name, {"kind": code_label(kind), "outcome": outcome})
    if at is not None:
        labels = {"kind": code_label(kind), "channel": channel or "", "account": account or ""}
        BUFFER.set_max(catalog.JOB_LAST_SUCCESS.name, labels, at)
