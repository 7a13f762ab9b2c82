"""Generic channel push-back: signed JSON callbacks to the storefront's `callback_url`.

Each package and each note is one `POST` to `channel.storefront.callback_url`, signed as a
Standard Webhooks message (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with
`channel.storefront.callback_secret` (the channel's first webhook secret unless set). Bodies::

    {"type": "shipment.created", "timestamp": "<shipped_at, ISO 8601 UTC>",
     "data": {"order_external_id": "1001", "display_id": "#1001", "package_key": "...",
              "carrier": "UPS", "tracking_number": "1Z...", "tracking_url": "https://..." | null,
              "carrier_code": "UPS", "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": 2}],
              "shipped_at": "<ISO 8601 UTC>", "all_shipped": true, "remaining_lines": []}}

`carrier` is the carrier's name (`storefronts/carriers.py`, or the channel's `carrier_names`),
`carrier_code` Amazon's code for it. `shipped_at` is when Amazon shipped the package.
`all_shipped` is true only on the last package when nothing of the order is left to ship by
anyone; `remaining_lines` (on the last package of an order Amazon finished) lists the units
Amazon did not ship -- a SKU it does not stock -- which the shop still has to send.

    {"type": "order.note", "timestamp": "<now, ISO 8601 UTC>",
     "data": {"order_external_id": "1001", "note_key": "...", "text": "...",
              "customer_visible": false}}

Exactly-once is the receiver's half of the Standard Webhooks contract: `webhook-id` is derived
from the package key (or note key), so every retry of the same package carries the same id, and
a receiver that dedupes by `webhook-id` (as the spec asks) applies it once. That is why
`find_existing` returns None -- there is nothing to look up, and resending is safe by
construction -- and why the POST counts as idempotent (a dropped answer is not ambiguous, just
retryable). Only `webhook-timestamp` and the signature change between attempts, so an old
attempt cannot be replayed past the receiver's 5-minute tolerance. Any 2xx means delivered.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import EmptyWebhookSecretError

from ..channels import Channel
from ..clock import Clock
from .carriers import carrier_name
from .generic import sign_standard_webhook
from .push import BeforeWrite, OrderNote, PushError, PushResult, ShipmentPush, StorefrontHttp

log = logging.getLogger(__name__)

SHIPMENT_CREATED = "shipment.created"
ORDER_NOTE = "order.note"


def message_id(event_type: str, channel_id: str, key: str) -> str:
    """The stable `webhook-id` of an event: the same package (or note) always gets the same id."""
    digest = hashlib.sha256(f"{event_type}\x1f{channel_id}\x1f{key}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def shipment_payload(push: ShipmentPush, carrier_names: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "type": SHIPMENT_CREATED,
        "timestamp": _iso(push.shipped_at),
        "data": {
            "order_external_id": push.order_external_id,
            "display_id": push.display_id,
            "package_key": push.package_key,
            "carrier": carrier_name(push.carrier, "generic", carrier_names),
            "carrier_code": push.carrier,
            "tracking_number": push.tracking_number,
            "tracking_url": push.tracking_url,
            "lines": [
                {"line_id": line.line_id, "sku": line.sku, "quantity": line.quantity} for line in push.lines
            ],
            "shipped_at": _iso(push.shipped_at),
            "all_shipped": push.all_shipped,
            "remaining_lines": [
                {"line_id": line.line_id, "sku": line.sku, "quantity": line.quantity}
                for line in push.remaining
            ],
        },
    }


def note_payload(note: OrderNote, now: datetime) -> dict[str, Any]:
    return {
        "type": ORDER_NOTE,
        "timestamp": _iso(now),
        "data": {
            "order_external_id": note.order_external_id,
            "note_key": note.note_key,
            "text": note.text,
            "customer_visible": note.customer_visible,
        },
    }


class GenericPusher:
    """`StorefrontPusher` for a generic channel. Safe to share between threads; `close()` when done."""

    def __init__(self, channel: Channel, clock: Clock, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self.clock = clock
        self._http = StorefrontHttp(channel, clock, transport)

    def find_existing(self, push: ShipmentPush) -> PushResult | None:
        """Always None: the receiver dedupes by `webhook-id`, which a resend keeps (see module doc)."""
        return None

    def push_shipment(self, push: ShipmentPush, *, before_write: BeforeWrite | None = None) -> PushResult:
        msg_id = message_id(SHIPMENT_CREATED, self.channel.id, push.package_key)
        if before_write is not None:
            before_write()
        status = self._send(msg_id, shipment_payload(push, dict(self.channel.carrier_names)))
        log.info(
            "generic push-back: channel=%s order=%s package=%s webhook_id=%s status=%s",
            self.channel.id,
            push.order_external_id,
            push.package_key,
            msg_id,
            status,
        )
        return PushResult(storefront_ref=msg_id, details={"webhook_id": msg_id, "status": status})

    def add_note(self, note: OrderNote) -> PushResult:
        msg_id = message_id(ORDER_NOTE, self.channel.id, note.note_key)
        status = self._send(msg_id, note_payload(note, self.clock.now()))
        log.info(
            "generic note sent: channel=%s order=%s note_key=%s webhook_id=%s status=%s",
            self.channel.id,
            note.order_external_id,
            note.note_key,
            msg_id,
            status,
        )
        return PushResult(storefront_ref=msg_id, details={"webhook_id": msg_id, "status": status})

    def check_credentials(self) -> bool:
        """False: the receiver has no read-only endpoint; the next push is the check."""
        return False

    def close(self) -> None:
        self._http.close()

    def send_json(self, msg_id: str, payload: dict[str, Any]) -> Any:
        """Send one signed event (any type); the receiver's JSON answer, or None if it sent none."""
        response = self._post(msg_id, payload)
        try:
            return response.json()
        except ValueError:
            return None

    def _send(self, msg_id: str, payload: dict[str, Any]) -> int:
        return self._post(msg_id, payload).status_code

    def _post(self, msg_id: str, payload: dict[str, Any]) -> httpx.Response:
        url = self.channel.storefront.callback_url
        if not url:
            raise PushError(
                "no_callback_url",
                "the channel has no storefront.callback_url to send shipments to",
                retryable=False,
            )
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            signed = sign_standard_webhook(
                self.channel.storefront.callback_secret.reveal(),
                msg_id,
                int(self.clock.now().timestamp()),
                body,
            )
        except (ValueError, EmptyWebhookSecretError):  # binascii.Error is a ValueError
            raise PushError(
                "bad_callback_secret",
                "storefront.callback_secret is not a Standard Webhooks secret; write whsec_ followed "
                "by base64 of at least 24 random bytes",
                retryable=False,
            ) from None
        return self._http.request(
            "POST", url, idempotent=True, content=body, headers={"Content-Type": "application/json", **signed}
        )
