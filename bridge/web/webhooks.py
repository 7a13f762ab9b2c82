"""`POST /webhooks/<channel-id>`: verify, parse, store, acknowledge. Nothing else in the request."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import cast

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from ..intake import ingest
from ..storefronts.base import Rejection
from ..storefronts.registry import adapter_for
from .observe import set_outcome

log = logging.getLogger("bridge.webhooks")
bp = Blueprint("webhooks", __name__)
_READ_CHUNK = 64 * 1024


def read_body(limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes whether or not Content-Length was sent."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Rejection(
            413, "too_large", f"the body is over {limit} bytes; the limit is BRIDGE_MAX_BODY_BYTES"
        )
    stream = request.environ.get("wsgi.input")
    chunks: list[bytes] = []
    size = 0
    while stream is not None:
        to_read = _READ_CHUNK if declared is None else min(_READ_CHUNK, declared - size)
        if to_read <= 0:
            break
        chunk = stream.read(to_read)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise Rejection(
                413, "too_large", f"the body is over {limit} bytes; the limit is BRIDGE_MAX_BODY_BYTES"
            )
        chunks.append(chunk)
    return b"".join(chunks)


@bp.post("/webhooks/<channel_id>")
def receive(channel_id: str) -> ResponseReturnValue:
    from ..app import current_bridge

    started = time.perf_counter()
    bridge = current_bridge()
    channel = bridge.config.channel(channel_id)
    if channel is None or not channel.enabled:
        raise Rejection(
            404, "unknown_channel", "no enabled channel with this id; check the URL against the channels file"
        )
    body = read_body(bridge.settings.max_body_bytes)
    adapter = adapter_for(channel.platform)
    headers = cast(Mapping[str, str], request.headers)  # werkzeug's Headers: a case-insensitive mapping
    adapter.verify(channel, headers, body, bridge.clock)
    delivery = adapter.parse(channel, headers, body, bridge.clock)
    if not delivery.store:
        set_outcome("not_stored")
        return jsonify(status="ok", topic=delivery.topic), 200
    result = ingest(bridge.engine, channel, delivery, body, bridge.clock)
    set_outcome("duplicate" if result.duplicate else result.outcome)
    log.info(
        "webhook channel=%s topic=%s outcome=%s order_id=%s ms=%.1f",
        channel.id,
        delivery.topic,
        result.outcome,
        result.order_id,
        (time.perf_counter() - started) * 1000,
        extra={"order_id": result.order_id},
    )
    return jsonify(status="duplicate" if result.duplicate else "accepted", outcome=result.outcome), 200
