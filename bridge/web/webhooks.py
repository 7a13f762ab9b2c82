"""`POST /webhooks/<channel-id>`: verify, parse, store, acknowledge. Nothing else in the request."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, cast

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.engine import Engine

from ..intake import defer, deferrable, ingest, stored_delivery
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
    replay = _stored_replay(bridge.engine, channel.id, adapter, headers, body)
    if replay is not None:
        set_outcome("duplicate")
        return jsonify(status="duplicate", outcome=replay), 200
    delivery = adapter.parse(channel, headers, body, bridge.clock)
    if not delivery.store:
        set_outcome("not_stored")
        return jsonify(status="ok", topic=delivery.topic), 200
    if (
        _busy(bridge.settings.webhook_defer_at, bridge.settings.webhook_defer_rate)
        and deferrable(delivery)
        and hasattr(adapter, "stored_headers")
    ):
        result = defer(bridge.engine, channel, delivery, body, bridge.clock)
    else:
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


def _busy(defer_at: int, defer_rate: float) -> bool:
    """Whether this process runs at least `defer_at` webhook handlers (this one included), or
    webhooks reach it at `defer_rate` a second or more: then an order delivery is stored and
    left to a worker (`intake.defer`), so the answer costs two inserts instead of the whole state
    machine (see README, Throughput). Concurrency alone is a late signal under gunicorn: a
    handler holds the interpreter while it runs, so at a few hundred a second the process is
    loaded while most requests still find it idle, and those pay the inline cost."""
    if defer_at <= 0:
        return False
    if defer_at == 1:
        return True
    gate = current_app.extensions.get("webhook_admission")
    if gate is None:
        return False
    return bool(gate.active >= defer_at or (defer_rate > 0 and gate.arrival_rate() >= defer_rate))


def _stored_replay(
    engine: Engine, channel_id: str, adapter: Any, headers: Mapping[str, str], body: bytes
) -> str | None:
    """A sender's retry of a delivery already stored: the outcome it had, found by the key in
    its headers (adapters with a `replay_key`), so the retry gets the same 2xx without the body
    being parsed or validated again. The same key with other bytes is refused (409)."""
    replay_key = getattr(adapter, "replay_key", None)
    key = replay_key(headers) if replay_key is not None else None
    if not key:
        return None
    stored = stored_delivery(engine, channel_id, key, body)
    if stored is None:
        return None
    if not stored.same_body:
        raise Rejection(
            409,
            "delivery_id_reused",
            "this webhook-id was already used for another body; a retry must send the same bytes, "
            "and every new message needs its own webhook-id",
        )
    return stored.outcome
