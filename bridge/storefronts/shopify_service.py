"""Shopify calling the bridge as a fulfillment service: `POST <callbackUrl>/fulfillment_order_notification`.

Shopify posts only `{"kind": "FULFILLMENT_REQUEST"}` or `{"kind": "CANCELLATION_REQUEST"}` there: a
hint to read the fulfillment orders assigned to us (`assignedFulfillmentOrders`), never the orders
themselves. It signs the body like its webhooks: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256
of the raw body with the app's client secret, and `X-Shopify-Shop-Domain` names the shop.
Shopify documents no delivery id for these calls; when an `X-Shopify-Webhook-Id` comes, it
deduplicates, otherwise every call is stored (reading the requests twice is harmless).

What a caller may rely on: `verify` raises a 401 `Rejection` unless one of the channel's
`webhook_secrets` signed the body, and a 403 when the shop named is not the channel's; `parse`
raises 400/415/422 `Rejection`s and returns `kind=None` for a kind it does not know.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..channels import Channel
from .assignment import RequestKind
from .base import (
    Rejection,
    header,
    parse_json,
    require_json_content_type,
    strip_control_characters,
    validate_or_reject,
    verify_hmac_b64,
)

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
SHOP_HEADER = "X-Shopify-Shop-Domain"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
KINDS = {"FULFILLMENT_REQUEST": RequestKind.FULFILLMENT, "CANCELLATION_REQUEST": RequestKind.CANCELLATION}


@dataclass(frozen=True)
class Notification:
    kind: RequestKind | None  # None: a kind we do not know (acknowledged, stored, not acted on)
    raw_kind: str
    delivery_key: str


def verify(channel: Channel, headers: Mapping[str, str], body: bytes) -> None:
    verify_hmac_b64(channel.webhook_secrets, body, header(headers, HMAC_HEADER) or None)
    shop = header(headers, SHOP_HEADER).lower()
    own = (urlsplit(channel.storefront.base_url).hostname or "").lower()
    if shop and own.endswith(".myshopify.com") and shop != own:
        raise Rejection(
            403,
            "wrong_shop",
            f"this callback names another shop than channel {channel.id}'s storefront.base_url; "
            "register the fulfillment service of each shop with its own channel",
        )


def parse(headers: Mapping[str, str], body: bytes) -> Notification:
    require_json_content_type(headers)
    data, _stripped = strip_control_characters(parse_json(body), body)
    validate_or_reject(
        "shopify/fulfillment_order_notification", data, "Shopify fulfillment order notification"
    )
    raw_kind = str(data["kind"])
    delivery_key = header(headers, WEBHOOK_ID_HEADER) or f"notification:{uuid.uuid4().hex}"
    return Notification(KINDS.get(raw_kind), raw_kind, delivery_key)
