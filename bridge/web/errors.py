"""JSON error bodies for every status the bridge answers, never an HTML page or a stack trace."""

from __future__ import annotations

import logging
import secrets
import traceback

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from ..store import is_unavailable
from ..storefronts.base import Rejection
from .observe import set_outcome

log = logging.getLogger("bridge.web")
RETRY_AFTER_S = "5"


def rejection_response(rejection: Rejection) -> ResponseReturnValue:
    set_outcome(rejection.code)
    response = jsonify(rejection.body())
    response.status_code = rejection.status
    response.headers.update(rejection.headers)
    return response


def register(app: Flask) -> None:
    app.register_error_handler(Rejection, rejection_response)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        messages = {
            404: "no such endpoint; webhooks go to POST /webhooks/<channel-id>",
            405: "method not allowed; webhooks are POSTed",
            413: "the body is larger than the limit (BRIDGE_MAX_BODY_BYTES)",
        }
        return jsonify(
            error=exc.name.lower().replace(" ", "_"), message=messages.get(code, exc.description)
        ), code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        if is_unavailable(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            response = jsonify(
                error="unavailable", message="the database cannot take the write now; retry later"
            )
            response.status_code = 503
            response.headers["Retry-After"] = RETRY_AFTER_S
            return response
        incident = secrets.token_hex(6)
        # The frames, not the exception text: a message can quote payload values (personal data).
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unexpected error incident=%s type=%s\n%s", incident, type(exc).__name__, frames)
        return jsonify(error="internal", message=f"unexpected error; quote incident {incident}"), 500
