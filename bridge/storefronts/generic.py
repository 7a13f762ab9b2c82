"""Generic channel: any storefront that posts the canonical order, signed as Standard Webhooks.

Signature (https://www.standardwebhooks.com): headers `webhook-id`, `webhook-timestamp` (Unix
seconds) and `webhook-signature` (space-separated `v1,<base64>` entries); the signed content is
`<id>.<timestamp>.<body>`, HMAC-SHA256 keyed with the bytes of a `whsec_<base64>` secret. The
`standardwebhooks` package computes the signature, but its `Webhook.verify` reads the real clock
and raises assorted exceptions on malformed input, so `verify` here checks the 5-minute tolerance
(both directions) against the injected clock, compares every `v1` entry against every secret in
constant time, and turns every malformed header, secret or body into a 401.

Body (schemas/canonical_order.json)::

    {"type": "order.upsert", "order": {
        "external_id": "1001", "display_id": "#1001", "currency": "USD", "payment_state": "paid",
        "created_at": "2026-11-23T11:58:00+00:00", "updated_at": "2026-11-23T11:59:00+00:00",
        "lines": [{"line_id": "1", "sku": "MUG-BLUE", "quantity": 2, "unit_price": "12.50",
                   "title": "Blue mug", "requires_shipping": true}],
        "destination": {"name": "...", "line1": "...", "line2": "", "line3": "", "company": "",
                        "city": "...", "district": "", "state": "...", "postal_code": "...",
                        "country_code": "US", "phone": ""},
        "shipping_method": "Standard", "shipping_method_code": "std", "buyer_email": "...",
        "buyer_phone": "", "gift_message": "", "notes": "", "test": false}}

    {"type": "order.cancel", "order": {"external_id": "1001", "updated_at": "..."}}

The order object is `CanonicalOrder.to_json()` without `channel_id`, `cancelled` and
`cancel_reason` (the channel comes from the URL, cancellation from the type); optional fields
default to "" (and `display_id` to `external_id`, `test` to false). A line's `quantity` is what
the shop wants shipped in all (0 for a line removed after the order was placed), and the optional
`fulfillable_quantity` what is still to fulfil now when the shop already fulfilled some.
`order.upsert` is an upsert, `order.cancel` a cancellation that carries only `external_id` (no
order: intake keeps a tombstone); any other type is acknowledged, stored and ignored.
`delivery_key` is `webhook-id`, which Standard Webhooks keeps the same across retries; there is
no separate event id.

A body that does not match the schema, or holds a control character in any string, is refused
with a 422 naming the JSON paths: the sender is the merchant's own code, which reads the answer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from ..channels import Channel
from ..clock import Clock
from ..orders import Address, CanonicalOrder, DeliveryKind, OrderLine, PaymentState
from .base import (
    Delivery,
    ReturnItemRequest,
    ReturnRequest,
    body_digest,
    header,
    parse_json,
    payload_timestamp,
    policy_meta,
    refuse_control_characters,
    require_json_content_type,
    unauthorized,
    validate_or_reject,
)

_timestamp = partial(
    payload_timestamp, path="$.order", example="2026-11-23T12:00:00+00:00", what="generic order delivery"
)

PLATFORM = "generic"

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

TOLERANCE_SECONDS = 5 * 60
RETURN_TYPE = "return.request"
MAX_ID_LENGTH = 255

TYPES: Mapping[str, DeliveryKind] = {
    "order.upsert": DeliveryKind.UPSERT,
    "order.cancel": DeliveryKind.CANCEL,
}


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`; what a receiver checks with `adapter.verify`.

    The bridge's own callbacks to a generic storefront use this. `body` must be UTF-8 (the
    signature is defined over text); a non-UTF-8 body raises `UnicodeDecodeError`.
    """
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode("utf-8"))
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}


class GenericAdapter:
    """Intake side of the generic (Standard Webhooks) adapter."""

    platform = PLATFORM

    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> None:
        msg_id = header(headers, ID_HEADER)
        raw_timestamp = header(headers, TIMESTAMP_HEADER)
        signatures = header(headers, SIGNATURE_HEADER)
        if not (msg_id and raw_timestamp and signatures):
            raise unauthorized("webhook-id, webhook-timestamp or webhook-signature header missing")
        if len(msg_id) > MAX_ID_LENGTH:
            raise unauthorized(f"webhook-id is longer than {MAX_ID_LENGTH} characters")
        if not (raw_timestamp.isascii() and raw_timestamp.isdigit() and len(raw_timestamp) <= 12):
            raise unauthorized("webhook-timestamp is not Unix seconds")
        timestamp = int(raw_timestamp)
        now = clock.now().timestamp()
        if timestamp < now - TOLERANCE_SECONDS:
            raise unauthorized(
                "webhook-timestamp is more than 5 minutes old; check the sender's clock, "
                "or the delivery is a replay"
            )
        if timestamp > now + TOLERANCE_SECONDS:
            raise unauthorized(
                "webhook-timestamp is more than 5 minutes in the future; check the sender's clock"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise unauthorized("the body is not UTF-8, so its signature cannot be checked") from None

        expected = _expected_signatures(channel, msg_id, datetime.fromtimestamp(timestamp, tz=UTC), text)
        ok = False
        for given in _v1_signatures(signatures):
            for candidate in expected:
                ok |= hmac.compare_digest(candidate, given)
        if not ok:
            raise unauthorized()

    def replay_key(self, headers: Mapping[str, str]) -> str | None:
        """The delivery key, from the headers alone: `webhook-id`, which Standard Webhooks keeps
        the same on every retry of a message. The generic channel has no pull API, so its sender
        must retry; the web layer answers a retry of a stored delivery from this key, without
        parsing or validating the body again."""
        return header(headers, ID_HEADER) or None

    def parse(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> Delivery:
        require_json_content_type(headers)
        delivery_key = header(headers, ID_HEADER) or "sha256:" + body_digest(body)
        data = parse_json(body)
        validate_or_reject("canonical_order", data, "generic order delivery")
        refuse_control_characters(data, "generic order delivery", body)
        topic = data["type"]
        kind = TYPES.get(topic)
        if kind is DeliveryKind.UPSERT:
            order = _canonical_order(channel, data["order"])
            return Delivery(
                topic=topic, delivery_key=delivery_key, kind=kind, order=order, external_id=order.external_id
            )
        if kind is DeliveryKind.CANCEL:
            _timestamp(
                data["order"],
                "updated_at",
                path="$.order",
                example="2026-11-23T12:00:00+00:00",
                what="generic order delivery",
            )  # a cancel must still carry a real date
            return Delivery(
                topic=topic, delivery_key=delivery_key, kind=kind, external_id=data["order"]["external_id"]
            )
        if topic == RETURN_TYPE:
            request = data["return"]
            items = tuple(
                ReturnItemRequest(
                    str(i["line_id"]), int(i["quantity"]), i.get("reason_code", ""), i.get("comment", "")
                )
                for i in request["items"]
            )
            return Delivery(
                topic=topic,
                delivery_key=delivery_key,
                external_id=request["external_id"],
                return_request=ReturnRequest(request["external_id"], items),
            )
        return Delivery(topic=topic, delivery_key=delivery_key)


adapter = GenericAdapter()


def _expected_signatures(channel: Channel, msg_id: str, when: datetime, text: str) -> list[bytes]:
    """The raw HMAC for every usable secret; a secret that is not valid base64 simply never matches."""
    out = []
    for secret in channel.webhook_secrets:
        try:
            signed = Webhook(secret.reveal()).sign(msg_id, when, text)
            out.append(base64.b64decode(signed.split(",", 1)[1], validate=True))
        except (ValueError, EmptyWebhookSecretError):  # binascii and Unicode errors are ValueErrors
            continue
    return out


def _v1_signatures(header: str) -> list[bytes]:
    out = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            out.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return out


# --------------------------------------------------------------------------------------------
# Mapping. Runs only on a body that passed schemas/canonical_order.json.


def _canonical_order(channel: Channel, order: dict[str, Any]) -> CanonicalOrder:
    destination = order.get("destination")
    return CanonicalOrder(
        channel_id=channel.id,
        external_id=order["external_id"],
        display_id=order.get("display_id") or order["external_id"],
        currency=order["currency"],
        payment_state=PaymentState(order["payment_state"]),
        created_at=_timestamp(
            order,
            "created_at",
            path="$.order",
            example="2026-11-23T12:00:00+00:00",
            what="generic order delivery",
        ),
        updated_at=_timestamp(
            order,
            "updated_at",
            path="$.order",
            example="2026-11-23T12:00:00+00:00",
            what="generic order delivery",
        ),
        lines=tuple(
            OrderLine(
                line_id=line["line_id"],
                sku=line["sku"].strip(),
                quantity=int(line["quantity"]),
                unit_price=line["unit_price"],
                title=line.get("title", ""),
                requires_shipping=line.get("requires_shipping", True),
                fulfillable_quantity=line.get("fulfillable_quantity"),
                ordered_quantity=line.get("ordered_quantity"),
                gift_message=line.get("gift_message", ""),
            )
            for line in order["lines"]
        ),
        destination=Address(**destination) if destination else None,
        shipping_method=order.get("shipping_method", ""),
        shipping_method_code=order.get("shipping_method_code", ""),
        test=order.get("test", False),
        buyer_email=order.get("buyer_email", ""),
        buyer_phone=order.get("buyer_phone", ""),
        gift_message=order.get("gift_message", ""),
        notes=order.get("notes", ""),
        tags=tuple(dict.fromkeys(t.strip().lower() for t in order.get("tags", ()) if t.strip())),
        meta=policy_meta(
            channel,
            (
                (k, str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in (order.get("meta") or {}).items()
            ),
        ),
    )
