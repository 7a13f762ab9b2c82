"""WooCommerce intake: check `X-WC-Webhook-Signature`, then turn a webhook into a `Delivery`.

What a caller may rely on:

- `verify` looks only at the raw bytes and headers. Every body must carry a valid signature from
  one of `channel.webhook_secrets`, with one exception: the ping WooCommerce sends, unsigned,
  when a webhook is saved -- a body that is exactly `webhook_id=<digits>`, form-encoded (or with no
  content type). Letting it through is harmless because `parse` turns it into a delivery with
  nothing to apply and nothing to store.
- `parse` raises nothing but `Rejection`: 415 unless the body is JSON, 400 for a missing
  `X-WC-Webhook-Topic` or a body that is not strict JSON. An order that does not match
  `schemas/woocommerce/*.json` becomes a delivery with `refused` problems (paths and rules, never
  values), stored and parked as an alert and answered 200: WooCommerce disables a webhook after
  5 failures in a row and never retries. Control characters are removed from every string first.
- Topics: `order.created`, `order.updated`, `order.restored` carry the REST v3 order; the order's
  status decides the kind (see `STATUSES`): a cancelled, trashed, refunded or failed order is a
  cancellation (its `cancel_reason` names the status), a `checkout-draft` (a cart the block
  checkout keeps as an order) is acknowledged and ignored, everything else an upsert (a restored
  order, back to `processing`, is evaluated again by intake). `order.deleted` carries only
  `{"id": n}`: a cancellation with no order, only `external_id`. Other topics are acknowledged,
  stored and ignored.
- `delivery_key` is `X-WC-Webhook-Delivery-ID` joined with a digest of the body. WooCommerce
  builds that header as `wp_hash(<webhook id> . <current Unix second>)`, so two different
  deliveries of one webhook within the same second share it; the body digest tells them apart,
  while a byte-identical replay still dedupes. `event_id` is always None: WooCommerce has no
  event id. WooCommerce signs no timestamp either, so replays are only stopped by the delivery
  key and by intake refusing deliveries older than the order it holds (`updated_at`).

Merchant conventions (the bridge's own, not WooCommerce's):

- Gift message: an order meta entry with key `gift_message` (what most gift-message plugins
  can be told to write, or a custom checkout field named so). The first non-empty one wins.
  A line item meta entry so named (`Gift message`, `_gift_message`: case, spaces, hyphens and
  a leading underscore ignored) is that line's own message.
- Tags: WooCommerce orders have none, so an order meta entry `fba_tags` (comma-separated, e.g.
  `fba-hold`) carries the per-order policy tags. Every order meta entry is an order attribute
  that `holds.meta` rules test (a fraud plugin's flag, say).
- The destination is the `shipping` block. When it is null or empty the order has no destination
  (it is parked if it needs shipping), unless the channel sets `shipping_address_fallback:
  billing`, which uses the `billing` block. The phone falls back to the billing phone when the
  shipping block has none (older WooCommerce has no `shipping.phone`).
- Whether the lines need shipping: WooCommerce's order does not say per line. An order with no
  shipping address and no shipping line (what checkout produces for a virtual or downloadable
  cart), or one WooCommerce reports `needs_processing: false` for (downloadable and virtual
  only), needs no shipping: its lines are marked `requires_shipping: false` and the order is not
  for Amazon. An order with a shipping line but no address needs shipping and is parked.
- Line names are HTML-unescaped (WooCommerce sends "Size &ndash; M").
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from ..channels import Channel
from ..clock import Clock
from ..orders import Address, CanonicalOrder, DeliveryKind, OrderLine, PaymentState
from .base import (
    Delivery,
    Rejection,
    body_digest,
    control_character_note,
    header,
    parked,
    parse_json,
    payload_id,
    payload_text,
    payload_timestamp,
    policy_meta,
    require_json_content_type,
    split_tags,
    strip_control_characters,
    unauthorized,
    validate_or_reject,
    verify_hmac_b64,
)

_timestamp = partial(
    payload_timestamp, path="$", example="2017-03-22T19:28:02 (GMT)", what="WooCommerce order"
)

PLATFORM = "woocommerce"

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
DELIVERY_ID_HEADER = "X-WC-Webhook-Delivery-ID"

PING_TOPIC = "ping"
UPSERT_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
DELETED_TOPIC = "order.deleted"

_PING_BODY = re.compile(rb"webhook_id=[0-9]{1,20}")
_PING_CONTENT_TYPES = frozenset({"", "application/x-www-form-urlencoded"})

# status -> (delivery kind, payment state); a status not listed (plugins add their own, such as
# "shipped") is an upsert with an unknown payment state.
STATUSES: Mapping[str, tuple[DeliveryKind | None, PaymentState]] = {
    "pending": (DeliveryKind.UPSERT, PaymentState.PENDING),
    "on-hold": (DeliveryKind.UPSERT, PaymentState.PENDING),
    "failed": (DeliveryKind.CANCEL, PaymentState.PENDING),
    "processing": (DeliveryKind.UPSERT, PaymentState.PAID),
    "completed": (DeliveryKind.UPSERT, PaymentState.PAID),
    "refunded": (DeliveryKind.CANCEL, PaymentState.REFUNDED),
    "cancelled": (DeliveryKind.CANCEL, PaymentState.UNKNOWN),
    "trash": (DeliveryKind.CANCEL, PaymentState.UNKNOWN),
    "checkout-draft": (None, PaymentState.PENDING),
}
CANCELLED_STATUSES = frozenset(
    status for status, (kind, _) in STATUSES.items() if kind is DeliveryKind.CANCEL
)

GIFT_MESSAGE_META_KEY = "gift_message"
TAGS_META_KEY = "fba_tags"
_ADDRESS_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "address_1",
    "address_2",
    "city",
    "state",
    "postcode",
    "country",
)


class WooCommerceAdapter:
    """Intake side of the WooCommerce adapter (push-back lives with the pipeline's push-back stage)."""

    platform = PLATFORM

    def stored_headers(self, topic: str) -> dict[str, str]:
        """The headers `parse` reads, rebuilt from a stored delivery's topic: a delivery deferred
        under load (`intake.defer`) is parsed again from its stored bytes by a worker."""
        return {"Content-Type": "application/json", TOPIC_HEADER: topic}

    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> None:
        signature = header(headers, SIGNATURE_HEADER)
        if signature:
            verify_hmac_b64(channel.webhook_secrets, body, signature)
        elif not _is_ping(headers, body):
            raise unauthorized("signature header missing")

    def parse(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> Delivery:
        delivery_key = delivery_key_for(header(headers, DELIVERY_ID_HEADER), body)
        if _is_ping(headers, body):
            return Delivery(topic=PING_TOPIC, delivery_key=delivery_key, store=False)
        require_json_content_type(headers)
        topic = header(headers, TOPIC_HEADER)
        if not topic:
            raise Rejection(
                400,
                "missing_topic",
                f"the {TOPIC_HEADER} header is missing; WooCommerce always sends it, so check "
                "that no proxy strips it",
            )
        data, stripped = strip_control_characters(parse_json(body), body)
        try:
            return self._delivery(channel, topic, delivery_key, data, stripped)
        except Rejection as refusal:
            return parked(topic, delivery_key, None, refusal, data)

    def _delivery(
        self, channel: Channel, topic: str, delivery_key: str, data: Any, stripped: tuple[str, ...]
    ) -> Delivery:
        notes = control_character_note(stripped)
        if topic in UPSERT_TOPICS:
            validate_or_reject("woocommerce/order", data, "WooCommerce order")
            external_id = payload_id(data["id"])
            status = data["status"].strip().lower().removeprefix("wc-")
            kind, payment_state = STATUSES.get(status, (DeliveryKind.UPSERT, PaymentState.UNKNOWN))
            if kind is None:
                return Delivery(
                    topic=topic,
                    delivery_key=delivery_key,
                    external_id=external_id,
                    notes=(f"status {status} ignored", *notes),
                )
            order = _canonical_order(
                channel, data, external_id, payment_state, cancelled=status in CANCELLED_STATUSES
            )
            return Delivery(
                topic=topic,
                delivery_key=delivery_key,
                kind=kind,
                order=order,
                external_id=external_id,
                notes=notes,
            )
        if topic == DELETED_TOPIC:
            validate_or_reject("woocommerce/order_deleted", data, "WooCommerce order.deleted body")
            return Delivery(
                topic=topic,
                delivery_key=delivery_key,
                kind=DeliveryKind.CANCEL,
                external_id=payload_id(data["id"]),
                notes=("deleted or trashed in WooCommerce (order.deleted)",),
            )
        return Delivery(topic=topic, delivery_key=delivery_key)


adapter = WooCommerceAdapter()


def delivery_key_for(delivery_id: str, body: bytes) -> str:
    """What identifies one WooCommerce delivery: its delivery id (unique per webhook and second
    only) together with the body's digest. Without a delivery id, the digest alone."""
    digest = body_digest(body)
    return f"{delivery_id[:64]}:{digest}" if delivery_id else f"sha256:{digest}"


def _is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    content_type = header(headers, "Content-Type").split(";", 1)[0].strip().lower()
    return content_type in _PING_CONTENT_TYPES and _PING_BODY.fullmatch(body) is not None


# --------------------------------------------------------------------------------------------
# Mapping. Runs only on a body that passed schemas/woocommerce/order.json, so types are known;
# the helpers still never assume presence.


def _canonical_order(
    channel: Channel, data: dict[str, Any], external_id: str, payment_state: PaymentState, *, cancelled: bool
) -> CanonicalOrder:
    billing = data.get("billing") or {}
    shipping = data.get("shipping") or {}
    shipping_lines = [line for line in data.get("shipping_lines") or () if isinstance(line, dict)]
    needs_shipping = data.get("needs_processing") is not False and (
        _has_address(shipping) or bool(shipping_lines)
    )
    fallback = billing if channel.shipping_address_fallback == "billing" else {}
    shipping_title, shipping_code = _shipping_method(shipping_lines)
    created_at = _timestamp(data, "date_created_gmt")
    updated_at = _timestamp(data, "date_modified_gmt") if data.get("date_modified_gmt") else created_at
    number = data.get("number")
    return CanonicalOrder(
        channel_id=channel.id,
        external_id=external_id,
        display_id=(payload_id(number) if number is not None else "") or external_id,
        currency=data["currency"],
        payment_state=payment_state,
        created_at=created_at,
        updated_at=updated_at,
        lines=tuple(_line(item, needs_shipping) for item in data["line_items"]),
        destination=_destination(shipping, fallback, billing),
        shipping_method=shipping_title,
        shipping_method_code=shipping_code,
        buyer_email=payload_text(billing.get("email")),
        buyer_phone=payload_text(billing.get("phone")),
        gift_message=_gift_message(data.get("meta_data")),
        tags=split_tags(_meta(data.get("meta_data"), TAGS_META_KEY)),
        meta=policy_meta(
            channel,
            (
                (payload_text(e.get("key")), _meta_text(e.get("value")))
                for e in data.get("meta_data") or ()
                if isinstance(e, dict) and payload_text(e.get("key"))
            ),
        ),
        notes=payload_text(data.get("customer_note")),
        cancelled=cancelled,
        cancel_reason=f"WooCommerce status {data['status'].strip().lower().removeprefix('wc-')}"
        if cancelled
        else "",
    )


def _line(item: dict[str, Any], needs_shipping: bool) -> OrderLine:
    return OrderLine(
        line_id=payload_id(item["id"]),
        sku=payload_text(item.get("sku")),
        quantity=int(item["quantity"]),
        unit_price=_decimal(item["price"]),
        title=html.unescape(payload_text(item.get("name"))),
        requires_shipping=needs_shipping,
        gift_message=_gift_message(item.get("meta_data")),
    )


def _destination(
    shipping: dict[str, Any], fallback: dict[str, Any], billing: dict[str, Any]
) -> Address | None:
    """The shipping block, else `fallback` (the billing block when the channel opts in)."""
    block = shipping if _has_address(shipping) else fallback if _has_address(fallback) else None
    if block is None:
        return None
    name = " ".join(
        part for part in (payload_text(block.get("first_name")), payload_text(block.get("last_name"))) if part
    )
    return Address(
        name=name,
        line1=payload_text(block.get("address_1")),
        line2=payload_text(block.get("address_2")),
        company=payload_text(block.get("company")),
        city=payload_text(block.get("city")),
        state=payload_text(block.get("state")),
        postal_code=payload_text(block.get("postcode")),
        country_code=payload_text(block.get("country")).upper(),
        phone=payload_text(block.get("phone")) or payload_text(billing.get("phone")),
    )


def _has_address(block: dict[str, Any]) -> bool:
    return any(payload_text(block.get(field)) for field in _ADDRESS_FIELDS)


def _shipping_method(shipping_lines: list[dict[str, Any]]) -> tuple[str, str]:
    """(title, code) of the first shipping line; the code is WooCommerce's `method_id`."""
    for line in shipping_lines:
        return payload_text(line.get("method_title")), payload_text(line.get("method_id"))
    return "", ""


def _gift_message(meta_data: list[dict[str, Any]] | None) -> str:
    for entry in meta_data or ():
        message = payload_text(entry.get("value"))
        if _meta_key(entry.get("key")) == GIFT_MESSAGE_META_KEY and message:
            return message
    return ""


def _meta_key(key: Any) -> str:
    """`gift_message`, `Gift message`, `_gift-message` all name the same thing (plugins differ)."""
    return re.sub(r"[\s\-]+", "_", payload_text(key).strip().lower()).strip("_")


def _meta(meta_data: Any, key: str) -> str:
    for entry in meta_data or ():
        if isinstance(entry, dict) and _meta_key(entry.get("key")) == key:
            return _meta_text(entry.get("value"))
    return ""


def _meta_text(value: Any) -> str:
    """A meta value as text: plugins store strings, numbers and booleans (arrays are not tested)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip()
    return ""


def _decimal(value: Any) -> str:
    """WooCommerce sends line prices as JSON numbers (3, 12.5); keep them as exact decimal strings."""
    if isinstance(value, str):
        return value.strip()
    return format(Decimal(str(value)), "f")
