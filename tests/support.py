"""Signed deliveries as each platform sends them, built from the documentation-shaped fixtures.

What the platforms really send, because the bugs hide in the difference: a Shopify order is a
real order (`test: false`) unless asked, and its lines carry `current_quantity` and
`fulfillable_quantity`; a WooCommerce delivery id is `wp_hash(webhook id . Unix second)`, the
same for every delivery of one webhook within a second.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bridge.storefronts.base import hmac_sha256_b64
from bridge.storefronts.generic import sign_standard_webhook
from tests.conftest import FIXTURES, TEST_ENV


def fixture(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / path).read_text())
    return data


def shopify_order(
    order_id: int = 1001,
    *,
    name: str = "Jon Canary",
    email: str = "jon.canary@example.com",
    updated_at: str = "2026-11-01T10:00:00-05:00",
    financial_status: str = "paid",
    sku: str = "TSHIRT-RED-M",
    quantity: int = 1,
    test: bool = False,
) -> dict[str, Any]:
    order = copy.deepcopy(fixture("shopify/orders_create.json"))
    first, last = name.split(" ", 1)
    order.update(
        id=order_id,
        admin_graphql_api_id=f"gid://shopify/Order/{order_id}",
        name=f"#{order_id}",
        email=email,
        contact_email=email,
        updated_at=updated_at,
        financial_status=financial_status,
        test=test,
    )
    order["line_items"] = [shopify_line(order["line_items"][0], sku=sku, quantity=quantity)]
    order["shipping_address"] = dict(
        order.get("shipping_address") or {},
        first_name=first,
        last_name=last,
        name=name,
        address1="42 Canary Wharf Lane",
        city="Springfield",
        zip="10001",
        country_code="US",
        province_code="NY",
        phone="+1 555 0100 777",
    )
    return order


def shopify_line(template: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A line as Shopify sends it: until an edit or refund, `current_quantity` and
    `fulfillable_quantity` equal `quantity` (pass them to say otherwise)."""
    quantity = fields.get("quantity", template["quantity"])
    current = fields.pop("current_quantity", quantity)
    fulfillable = fields.pop("fulfillable_quantity", current)
    line = dict(template, requires_shipping=True, gift_card=False, **fields)
    return dict(line, current_quantity=current, fulfillable_quantity=fulfillable)


def shopify_delivery(
    body: dict[str, Any] | bytes,
    topic: str = "orders/create",
    *,
    webhook_id: str | None = None,
    secret: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": hmac_sha256_b64((secret or TEST_ENV["SHOP_A_WEBHOOK_SECRET"]).encode(), raw),
        "X-Shopify-Shop-Domain": "shop-a.myshopify.com",
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-01T15:00:00Z",
    }
    return raw, headers


def woo_order(
    order_id: int = 700,
    *,
    status: str = "processing",
    modified: str = "2026-11-01T10:00:00",
    email: str = "woo.canary@example.com",
) -> dict[str, Any]:
    order = copy.deepcopy(fixture("woocommerce/order.json"))
    order.update(id=order_id, number=str(order_id), status=status, date_modified_gmt=modified)
    order["billing"] = dict(order["billing"], email=email)
    order["line_items"] = [dict(order["line_items"][0], sku="MUG-WHITE", quantity=1)]
    order["shipping"] = dict(order["shipping"], country="US")
    return order


# One webhook per topic, as a merchant sets them up in WooCommerce -> Settings -> Advanced.
WOO_WEBHOOK_IDS = {"order.created": 12, "order.updated": 13, "order.deleted": 14, "order.restored": 15}
WOO_SALT = b"test-site-auth-salt"  # WordPress's wp_salt('auth') on the test site
WOO_SENT_AT = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)


def woo_delivery_id(webhook_id: int, sent_at: datetime = WOO_SENT_AT) -> str:
    """WooCommerce's `X-WC-Webhook-Delivery-ID`: `wp_hash($webhook_id . strtotime('now'))`, an
    HMAC-MD5 keyed with the site's salt. Deliveries in the same second share it."""
    data = f"{webhook_id}{int(sent_at.timestamp())}".encode()
    return hmac.new(WOO_SALT, data, hashlib.md5).hexdigest()


def woo_delivery(
    body: dict[str, Any] | bytes,
    topic: str = "order.created",
    *,
    delivery_id: str | None = None,
    sent_at: datetime = WOO_SENT_AT,
) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    webhook_id = WOO_WEBHOOK_IDS.get(topic, 99)
    return raw, {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://woo.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-Signature": hmac_sha256_b64(TEST_ENV["WOO_WEBHOOK_SECRET"].encode(), raw),
        "X-WC-Webhook-ID": str(webhook_id),
        "X-WC-Webhook-Delivery-ID": delivery_id or woo_delivery_id(webhook_id, sent_at),
    }


def generic_delivery(
    body: dict[str, Any], now: datetime, *, msg_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = sign_standard_webhook(
        TEST_ENV["OWN_SHOP_SECRET"], msg_id or f"msg_{uuid.uuid4().hex}", int(now.timestamp()), raw
    )
    return raw, {"Content-Type": "application/json", **headers}


class Scrape:
    """A /metrics answer, parsed: `value(name, **labels)` of one sample, `families` by name."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in self.families.values() for s in f.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(dict(labels), value) for (n, labels), value in self.samples.items() if n == name]
