"""`POST /notifications/amazon`: Amazon notifications relayed from SQS/EventBridge (bearer token)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from ..amazon.notifications import ingest_notification
from ..storefronts.base import Rejection
from .auth import bearer_matches
from .webhooks import read_body

bp = Blueprint("notifications", __name__)


@bp.post("/notifications/amazon")
def amazon() -> ResponseReturnValue:
    from ..app import current_bridge

    bridge = current_bridge()
    token = bridge.settings.notifications_token
    if not token:
        raise Rejection(404, "disabled", "set BRIDGE_NOTIFICATIONS_TOKEN to enable Amazon notifications")
    if not bearer_matches(request.headers.get("Authorization"), token):
        raise Rejection(401, "unauthorized", "send `Authorization: Bearer <BRIDGE_NOTIFICATIONS_TOKEN>`")
    body = read_body(bridge.settings.max_body_bytes)
    result = ingest_notification(bridge.engine, body, bridge.clock)
    return jsonify(status="accepted", outcome=result.outcome), 200
