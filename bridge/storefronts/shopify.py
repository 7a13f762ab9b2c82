"""Shopify intake: check `X-Shopify-Hmac-Sha256`, then turn a webhook into a `Delivery`.

What a caller may rely on:

- `verify` looks only at the raw bytes and the HMAC header; every secret in
  `channel.webhook_secrets` is tried, so a rotated secret keeps working while Shopify still signs
  with the old one.
- `parse` raises nothing but `Rejection`: 415 for a non-JSON content type, 400 for a missing
  `X-Shopify-Topic` or a body that is not strict JSON. An order or privacy payload that does not
  match `schemas/shopify/*.json` is not refused: it becomes a delivery with `refused` problems
  (paths and rules, never values) that intake stores and parks as an alert, answered 200, because
  Shopify deletes a subscription that keeps failing. Control characters are removed from every
  string first (`base.strip_control_characters`); the order's notes name the paths.
- Topics: `orders/create`, `orders/paid`, `orders/updated` are upserts and `orders/cancelled`
  a cancellation, each with the canonical order; `customers/data_request`, `customers/redact` and
  `shop/redact` carry a `PrivacyRequest` and no kind; any other topic is acknowledged, stored and
  ignored.
- `delivery_key` is `X-Shopify-Webhook-Id` (the same on every retry of one delivery) and
  `event_id` is `X-Shopify-Event-Id`; Shopify names both as dedupe keys, so both are kept.

Merchant conventions (the bridge's own, not Shopify's):

- Gift message: a note attribute (cart attribute) whose name, ignoring case and reading spaces and
  hyphens as underscores, is `gift_message` -- so "Gift message", "gift-message" and
  "gift_message" all work. The first non-empty one wins.
- Gift message per line: a line item property (Shopify's `properties`, what a product page's
  `properties[Gift message]` input writes) named the same way, also as a private property
  (`_gift_message`); it goes on that item at Amazon.
- Tags (`tags`, comma-separated) become the order's tags, lower-cased: `fba-hold` and `fba-skip`
  (or the channel's own) are per-order policy overrides. Note attributes are the order's
  attributes, which `holds.meta` rules test.
- Lines that need no shipping (`requires_shipping: false`) and gift cards never reach Amazon:
  they are left out of the canonical order, and the delivery's notes name the skipped line ids
  (ids only, nothing personal).

What Shopify says, as the canonical order keeps it:

- `test: true` (the bogus gateway, "Send test notification") becomes `CanonicalOrder.test`; the
  channel's `test_orders` decides whether such an order ships.
- A line's `quantity` is what was ordered; after an edit or a refund Shopify lowers
  `current_quantity` (units still wanted) and `fulfillable_quantity` (units still to fulfil by
  anyone). The canonical line takes `current_quantity` as its quantity and keeps
  `fulfillable_quantity`; either missing falls back to `quantity`.
- The shipping method is the first shipping line not removed by an edit: its `title` and `code`.
- No `shipping_address`: the destination is empty (the order is parked if it needs shipping),
  unless the channel sets `shipping_address_fallback: billing`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from ..channels import Channel
from ..clock import Clock
from ..orders import Address, CanonicalOrder, DeliveryKind, OrderLine, PaymentState
from .base import (
    Delivery,
    PrivacyRequest,
    PrivacyScope,
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
    validate_or_reject,
    verify_hmac_b64,
)

_timestamp = partial(payload_timestamp, path="$", example="2021-12-31T19:00:00-05:00", what="Shopify order")

PLATFORM = "shopify"

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"

ORDER_TOPICS: Mapping[str, DeliveryKind] = {
    "orders/create": DeliveryKind.UPSERT,
    "orders/paid": DeliveryKind.UPSERT,
    "orders/updated": DeliveryKind.UPSERT,
    "orders/cancelled": DeliveryKind.CANCEL,
}

# topic -> (scope, schema, field listing the order ids concerned)
PRIVACY_TOPICS: Mapping[str, tuple[PrivacyScope, str, str | None]] = {
    "customers/data_request": (
        PrivacyScope.DATA_REQUEST,
        "shopify/customers_data_request",
        "orders_requested",
    ),
    "customers/redact": (PrivacyScope.CUSTOMER_REDACT, "shopify/customers_redact", "orders_to_redact"),
    "shop/redact": (PrivacyScope.SHOP_REDACT, "shopify/shop_redact", None),
}

PAYMENT_STATES: Mapping[str, PaymentState] = {
    "pending": PaymentState.PENDING,
    "authorized": PaymentState.AUTHORIZED,
    "partially_paid": PaymentState.PARTIALLY_PAID,
    "paid": PaymentState.PAID,
    "partially_refunded": PaymentState.PARTIALLY_REFUNDED,
    "refunded": PaymentState.REFUNDED,
    "voided": PaymentState.VOIDED,
}

GIFT_MESSAGE_ATTRIBUTE = "gift_message"


class ShopifyAdapter:
    """Intake side of the Shopify adapter (push-back lives with the pipeline's push-back stage)."""

    platform = PLATFORM

    def stored_headers(self, topic: str) -> dict[str, str]:
        """The headers `parse` reads, rebuilt from a stored delivery's topic: a delivery deferred
        under load (`intake.defer`) is parsed again from its stored bytes by a worker."""
        return {"Content-Type": "application/json", TOPIC_HEADER: topic}

    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> None:
        verify_hmac_b64(channel.webhook_secrets, body, header(headers, HMAC_HEADER) or None)

    def parse(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> Delivery:
        require_json_content_type(headers)
        topic = header(headers, TOPIC_HEADER)
        if not topic:
            raise Rejection(
                400,
                "missing_topic",
                f"the {TOPIC_HEADER} header is missing; Shopify always sends it, so check that "
                "no proxy strips it",
            )
        delivery_key = header(headers, WEBHOOK_ID_HEADER) or "sha256:" + body_digest(body)
        event_id = header(headers, EVENT_ID_HEADER) or None
        data, stripped = strip_control_characters(parse_json(body), body)
        try:
            return self._delivery(channel, topic, delivery_key, event_id, data, stripped)
        except Rejection as refusal:
            return parked(topic, delivery_key, event_id, refusal, data)

    def _delivery(
        self,
        channel: Channel,
        topic: str,
        delivery_key: str,
        event_id: str | None,
        data: Any,
        stripped: tuple[str, ...],
    ) -> Delivery:
        if topic in ORDER_TOPICS:
            validate_or_reject("shopify/order", data, "Shopify order")
            order, notes = _canonical_order(channel, data)
            return Delivery(
                topic=topic,
                delivery_key=delivery_key,
                event_id=event_id,
                kind=ORDER_TOPICS[topic],
                order=order,
                external_id=order.external_id,
                notes=(*notes, *control_character_note(stripped)),
            )
        if topic in PRIVACY_TOPICS:
            scope, schema, ids_field = PRIVACY_TOPICS[topic]
            validate_or_reject(schema, data, f"Shopify {topic} request")
            ids = tuple(payload_id(value) for value in data[ids_field]) if ids_field else ()
            return Delivery(
                topic=topic, delivery_key=delivery_key, event_id=event_id, privacy=PrivacyRequest(scope, ids)
            )
        return Delivery(topic=topic, delivery_key=delivery_key, event_id=event_id)


adapter = ShopifyAdapter()


# --------------------------------------------------------------------------------------------
# Mapping. Runs only on a body that passed schemas/shopify/order.json, so types are known; the
# helpers still never assume presence.


def _canonical_order(channel: Channel, data: dict[str, Any]) -> tuple[CanonicalOrder, tuple[str, ...]]:
    external_id = payload_id(data["id"])
    lines, notes = _lines(data["line_items"])
    destination = _destination(data.get("shipping_address"))
    if destination is None and channel.shipping_address_fallback == "billing":
        destination = _destination(data.get("billing_address"))
        if destination is not None:
            notes = (*notes, "no shipping address: using the billing address (shipping_address_fallback)")
    shipping_title, shipping_code = _shipping_method(data.get("shipping_lines"))
    cancelled = data.get("cancelled_at") is not None
    reason = payload_text(data.get("cancel_reason"))
    customer = data.get("customer") or {}
    email = (
        payload_text(data.get("email"))
        or payload_text(data.get("contact_email"))
        or payload_text(customer.get("email"))
    )
    order_number = data.get("order_number")
    fallback_display_id = f"#{int(order_number)}" if order_number else external_id
    order = CanonicalOrder(
        channel_id=channel.id,
        external_id=external_id,
        display_id=payload_text(data.get("name")) or fallback_display_id,
        currency=data["currency"],
        payment_state=PAYMENT_STATES.get(payload_text(data.get("financial_status")), PaymentState.UNKNOWN),
        created_at=_timestamp(data, "created_at"),
        updated_at=_timestamp(data, "updated_at"),
        lines=lines,
        destination=destination,
        shipping_method=shipping_title,
        shipping_method_code=shipping_code,
        buyer_email=email,
        buyer_phone=payload_text(data.get("phone")) or payload_text(customer.get("phone")),
        gift_message=_gift_message(data.get("note_attributes")),
        tags=split_tags(payload_text(data.get("tags"))),
        meta=policy_meta(channel, _attributes(data.get("note_attributes"), "name")),
        notes=payload_text(data.get("note")),
        cancelled=cancelled,
        test=data.get("test") is True,
        cancel_reason=(f"cancelled in Shopify ({reason})" if reason else "cancelled in Shopify")
        if cancelled
        else "",
    )
    return order, notes


def _lines(items: list[dict[str, Any]]) -> tuple[tuple[OrderLine, ...], tuple[str, ...]]:
    lines: list[OrderLine] = []
    notes: list[str] = []
    for item in items:
        line_id = payload_id(item["id"])
        if item.get("gift_card") is True:
            notes.append(f"line {line_id} skipped: gift card")
            continue
        if item.get("requires_shipping") is False:
            notes.append(f"line {line_id} skipped: needs no shipping")
            continue
        ordered = int(item["quantity"])
        current = item.get("current_quantity")
        fulfillable = item.get("fulfillable_quantity")
        lines.append(
            OrderLine(
                line_id=line_id,
                sku=payload_text(item.get("sku")),
                quantity=int(current) if current is not None else ordered,
                unit_price=item["price"],
                title=payload_text(item.get("title")) or payload_text(item.get("name")),
                requires_shipping=True,
                fulfillable_quantity=int(fulfillable) if fulfillable is not None else None,
                ordered_quantity=ordered,
                gift_message=_gift_message(item.get("properties")),
            )
        )
    return tuple(lines), tuple(notes)


def _destination(address: dict[str, Any] | None) -> Address | None:
    if not address:
        return None
    name = payload_text(address.get("name")) or " ".join(
        part
        for part in (payload_text(address.get("first_name")), payload_text(address.get("last_name")))
        if part
    )
    return Address(
        name=name,
        line1=payload_text(address.get("address1")),
        line2=payload_text(address.get("address2")),
        company=payload_text(address.get("company")),
        city=payload_text(address.get("city")),
        state=payload_text(address.get("province_code")) or payload_text(address.get("province")),
        postal_code=payload_text(address.get("zip")),
        country_code=payload_text(address.get("country_code")).upper(),
        phone=payload_text(address.get("phone")),
    )


def _shipping_method(shipping_lines: list[dict[str, Any]] | None) -> tuple[str, str]:
    """(title, code) of the first shipping line an edit has not removed."""
    for line in shipping_lines or ():
        if line.get("is_removed") is True:
            continue
        return payload_text(line.get("title")), payload_text(line.get("code"))
    return "", ""


def _attributes(entries: Any, key: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (payload_text(e.get(key)), payload_text(e.get("value")))
        for e in entries or ()
        if isinstance(e, dict) and payload_text(e.get(key))
    )


def _gift_message(attributes: list[dict[str, Any]] | None) -> str:
    for attribute in attributes or ():
        name = re.sub(r"[\s\-]+", "_", payload_text(attribute.get("name")).lower()).strip("_")
        message = payload_text(attribute.get("value"))
        if name == GIFT_MESSAGE_ATTRIBUTE and message:
            return message
    return ""
