"""`POST /shopify/<channel-id>/fulfillment_order_notification`: Shopify asks the bridge, as a
fulfillment service, to fulfil or to cancel. Verify, store, acknowledge; the worker reads and answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import cast

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from ..pipeline.requests import record_notification
from ..storefronts import shopify_service
from ..storefronts.base import Rejection
from .webhooks import read_body

log = logging.getLogger("bridge.fulfillment_service")
bp = Blueprint("fulfillment_service", __name__)


@bp.post("/shopify/<channel_id>/fulfillment_order_notification")
def notification(channel_id: str) -> ResponseReturnValue:
    from ..app import current_bridge

    bridge = current_bridge()
    channel = bridge.config.channel(channel_id)
    if channel is None or not channel.enabled or not channel.shopify.fulfillment_service:
        raise Rejection(
            404,
            "unknown_channel",
            "no enabled Shopify channel in fulfillment_service mode with this id; check the callback URL "
            "registered with `fba-bridge shopify register`",
        )
    body = read_body(bridge.settings.max_body_bytes)
    headers = cast(Mapping[str, str], request.headers)
    shopify_service.verify(channel, headers, body)
    parsed = shopify_service.parse(headers, body)
    outcome = record_notification(bridge.engine, channel, parsed, body, bridge.clock)
    log.info("fulfillment service channel=%s kind=%s outcome=%s", channel.id, parsed.raw_kind[:40], outcome)
    return jsonify(status="duplicate" if outcome == "duplicate" else "accepted", outcome=outcome), 200
