"""Per-request observation: a request id in every log line and response, and webhook metrics.

The request id is the caller's `X-Request-Id` when it looks like an id (Heroku's router and most
proxies set one, so our lines match theirs), otherwise a fresh one; it is echoed in the response.
A webhook's channel joins the log context only when it names a configured channel, and the
metrics count any other URL as channel `unknown`, so a stranger's URL never becomes a label.
"""

from __future__ import annotations

import re
import secrets
import time

from flask import Flask, Response, g, request

from .. import logs, metrics
from ..bootstrap import Bridge

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{7,127}")
#: Outcome of a webhook answered before the handler could say (a werkzeug error, an outage).
_STATUS_OUTCOMES = {
    404: "unknown_channel",
    405: "method_not_allowed",
    413: "too_large",
    500: "error",
    503: "unavailable",
}


def request_id_from(header: str | None) -> str:
    header = (header or "").strip()
    return header if _SANE_ID.fullmatch(header) else secrets.token_hex(12)


def register(app: Flask, bridge: Bridge) -> None:
    @app.before_request
    def _begin() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        channel_id = (request.view_args or {}).get("channel_id")
        g.channel = channel_id if channel_id and bridge.config.channel(channel_id) is not None else None
        g.log_tokens = logs.bind(request_id=g.request_id, channel=g.channel)

    @app.after_request
    def _end(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        if request.blueprint == "webhooks" and "started" in g:
            outcome = g.get("webhook_outcome") or _STATUS_OUTCOMES.get(
                response.status_code, f"http_{response.status_code}"
            )
            seconds = time.perf_counter() - g.started
            metrics.webhook(g.get("channel") or "unknown", outcome, response.status_code, seconds)
        return response

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        logs.unbind(g.pop("log_tokens", None))


def set_outcome(outcome: str) -> None:
    """What became of this request's webhook delivery (`created`, `duplicate`, a rejection code)."""
    g.webhook_outcome = outcome
