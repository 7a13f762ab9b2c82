"""How the console shows values: states as words with a colour class, times as UTC `<time>`
elements that the page's script turns into the viewer's zone (UTC stays without script)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from ...orders import OrderState

_TONES = {
    OrderState.SHIPPED: "good",
    OrderState.SUBMITTED: "good",
    OrderState.PARTIALLY_SHIPPED: "good",
    OrderState.RECEIVED: "busy",
    OrderState.SUBMITTING: "busy",
    OrderState.AWAITING_PAYMENT: "wait",
    OrderState.AWAITING_APPROVAL: "wait",
    OrderState.HELD_AT_AMAZON: "wait",
    OrderState.CANCEL_REQUESTED: "wait",
    OrderState.NEEDS_ATTENTION: "bad",
    OrderState.UNFULFILLABLE: "bad",
    OrderState.COMPLETED_PARTIALLY: "wait",
    OrderState.CANCELLED: "off",
    OrderState.NOT_FOR_AMAZON: "off",
}
_OTHER_TONES = {
    "done": "good",
    "shipped": "good",
    "delivered": "good",
    "ready": "busy",
    "running": "busy",
    "dead": "bad",
    "pending": "wait",
    "error": "bad",
    "warning": "wait",
    "open": "bad",
    "cleared": "good",
}


def words(value: str | None) -> str:
    return (value or "-").replace("_", " ")


def status(value: str | None) -> Markup:
    """A state or status as words in a coloured badge (the colour repeats the words)."""
    text = value or "-"
    try:
        tone = _TONES.get(OrderState(text), "off")
    except ValueError:
        tone = _OTHER_TONES.get(text.lower(), "off")
    return Markup('<span class="badge tone-{}">{}</span>').format(tone, words(text))


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value: datetime | None) -> Markup:
    """`<time>` with the UTC value shown and in the title; console.js shows the local time."""
    if value is None:
        return Markup("-")
    utc = as_utc(value)
    shown = utc.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"), shown, shown
    )


def safe_link(url: str | None) -> str | None:
    """A carrier's tracking URL, only if it is plain http(s): never `javascript:` or the like."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def hidden(value: str | None) -> Markup:
    return Markup('<span class="masked">hidden</span>') if value else escape("-")


def epoch(seconds: float | None) -> datetime | None:
    """A job's epoch-seconds time (database clock) as a datetime."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
