"""Shopify intake: real HMAC signatures over Shopify's documented payload shapes."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.channels import Channel
from bridge.clock import ManualClock
from bridge.orders import Address, CanonicalOrder, DeliveryKind, OrderLine, PaymentState
from bridge.settings import Secret
from bridge.storefronts.base import PrivacyScope, Rejection
from bridge.storefronts.registry import adapter_for
from bridge.storefronts.shopify import adapter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
CURRENT_SECRET = "shpss_current_0123456789abcdef"
PREVIOUS_SECRET = "shpss_previous_fedcba9876543210"
CHANNEL = Channel(
    id="shop-main",
    platform="shopify",
    webhook_secrets=(Secret(CURRENT_SECRET), Secret(PREVIOUS_SECRET)),
    account_id="na",
    marketplace_id="ATVPDKIKX0DER",
    sku_map={},
)
CLOCK = ManualClock()
# Personal data in the fixtures that must never come back in a rejection.
PERSONAL = (
    "Steve",
    "Shipper",
    "123 Shipping Street",
    "Shippington",
    "555-555-SHIP",
    "jon@example.com",
    "john@example.com",
    "Happy birthday",
)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str = CURRENT_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(
    body: bytes, topic: str | None = "orders/create", secret: str = CURRENT_SECRET, **extra: str
) -> dict[str, str]:
    out = {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2021-12-31T19:05:01Z",
    }
    if topic is not None:
        out["X-Shopify-Topic"] = topic
    out.update(extra)
    return out


def deliver(payload: Any, topic: str | None = "orders/create", **extra: str) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    hdrs = headers(body, topic, **extra)
    adapter.verify(CHANNEL, hdrs, body, CLOCK)
    return adapter.parse(CHANNEL, hdrs, body, CLOCK)


def rejection(payload: Any, topic: str | None = "orders/create", **extra: str) -> Rejection:
    with pytest.raises(Rejection) as caught:
        deliver(payload, topic, **extra)
    return caught.value


def refused(payload: Any, topic: str | None = "orders/create") -> list[dict[str, str]]:
    """The problems of an authentic delivery our schema refuses: parked (stored, alerted), not a 4xx."""
    delivery = deliver(payload, topic)
    assert delivery.kind is None and delivery.order is None and delivery.privacy is None
    assert delivery.store is True and delivery.refused, "the delivery was parked with its problems"
    return list(delivery.refused)


# --------------------------------------------------------------------------------------------
# Signature


def test_registry_serves_the_shopify_adapter() -> None:
    assert adapter_for("shopify") is adapter


@pytest.mark.parametrize("secret", [CURRENT_SECRET, PREVIOUS_SECRET])
def test_a_body_signed_with_any_configured_secret_is_accepted(secret: str) -> None:
    body = encode(fixture("orders_create.json"))
    adapter.verify(CHANNEL, headers(body, secret=secret), body, CLOCK)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "not base64!",
        sign(b"other body"),
        sign(b"x", "shpss_unknown_secret"),
        base64.b64encode(b"short").decode(),
        sign(encode(fixture("orders_create.json")))[:-4],
    ],
)
def test_missing_wrong_or_garbled_signatures_are_401(signature: str | None) -> None:
    body = encode(fixture("orders_create.json"))
    hdrs = headers(body)
    if signature is None:
        del hdrs["X-Shopify-Hmac-Sha256"]
    else:
        hdrs["X-Shopify-Hmac-Sha256"] = signature
    with pytest.raises(Rejection) as caught:
        adapter.verify(CHANNEL, hdrs, body, CLOCK)
    assert caught.value.status == 401


def test_one_changed_byte_breaks_the_signature() -> None:
    body = encode(fixture("orders_create.json"))
    hdrs = headers(body)
    with pytest.raises(Rejection) as caught:
        adapter.verify(CHANNEL, hdrs, body.replace(b"89.99", b"09.99"), CLOCK)
    assert caught.value.status == 401


def test_header_names_are_matched_whatever_their_case() -> None:
    body = encode(fixture("orders_create.json"))
    hdrs = {name.lower(): value for name, value in headers(body).items()}
    adapter.verify(CHANNEL, hdrs, body, CLOCK)
    assert adapter.parse(CHANNEL, hdrs, body, CLOCK).kind is DeliveryKind.UPSERT


# --------------------------------------------------------------------------------------------
# Transport-level rejections


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_declared_json_is_415(content_type: str) -> None:
    assert rejection(fixture("orders_create.json"), **{"Content-Type": content_type}).status == 415


def test_json_with_a_charset_parameter_is_accepted() -> None:
    delivery = deliver(fixture("orders_create.json"), **{"Content-Type": "application/json; charset=utf-8"})
    assert delivery.order is not None


def test_a_missing_topic_header_is_400_and_says_which_header() -> None:
    caught = rejection(fixture("orders_create.json"), topic=None)
    assert caught.status == 400
    assert "X-Shopify-Topic" in caught.message


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe{}",
        b'{"id": 1, "id": 2}',
        b"[" * 40 + b"]" * 40,
        b'{"id": ' + b"9" * 5000 + b"}",
    ],
)
def test_bodies_that_are_not_strict_json_are_400(body: bytes) -> None:
    assert rejection(body).status == 400


# --------------------------------------------------------------------------------------------
# Schema violations


def test_a_schema_violation_is_parked_with_paths_and_no_personal_data() -> None:
    order = fixture("orders_create.json")
    order["currency"] = "usd"
    order["shipping_address"]["zip"] = 40003
    order["line_items"][0]["quantity"] = 0
    order["line_items"][2]["price"] = "Steve Shipper"
    del order["updated_at"]
    found = refused(order)
    problems = {(p["path"], p["rule"]) for p in found}
    assert problems == {
        ("$.currency", "pattern"),
        ("$.shipping_address.zip", "type"),
        ("$.line_items[0].quantity", "minimum"),
        ("$.line_items[2].price", "pattern"),
        ("$.updated_at", "required"),
    }
    assert all(p["fix"] for p in found)
    text = json.dumps(found)
    for personal in (*PERSONAL, "usd"):
        assert personal not in text


def test_a_calendar_impossible_date_is_parked_not_a_crash() -> None:
    order = fixture("orders_create.json")
    order["created_at"] = "2021-13-31T19:00:00-05:00"
    assert refused(order)[0]["path"] == "$.created_at"


def test_a_body_that_is_not_an_object_is_parked() -> None:
    assert refused([1, 2, 3])[0]["rule"] == "type"


# --------------------------------------------------------------------------------------------
# Mapping of the documentation example


def test_the_documented_order_maps_to_every_canonical_field() -> None:
    delivery = deliver(fixture("orders_create.json"))
    assert delivery.topic == "orders/create"
    assert delivery.kind is DeliveryKind.UPSERT
    assert delivery.delivery_key == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert delivery.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert delivery.external_id == "820982911946154508"
    assert delivery.store is True
    order = delivery.order
    assert order is not None
    assert order.channel_id == "shop-main"
    assert order.external_id == "820982911946154508"
    assert order.display_id == "#9999"
    assert order.currency == "USD"
    assert order.payment_state is PaymentState.PAID
    minus_five = timezone(timedelta(hours=-5))
    assert order.created_at == datetime(2021, 12, 31, 19, 0, tzinfo=minus_five)
    assert order.updated_at == datetime(2021, 12, 31, 19, 5, tzinfo=minus_five)
    assert order.updated_at.utcoffset() == timedelta(hours=-5)
    assert order.lines == (
        OrderLine("487817672276298554", "SKU2006-001", 2, "89.99", "Aviator sunglasses", True, 2, 2),
        OrderLine("976318377106520349", "SKU2006-020", 1, "159.99", "Mid-century lounger", True, 1, 1),
        OrderLine("890123456789012345", "", 1, "24.99", "Premium Leather Case", True, 1, 1),
    )
    assert order.destination == Address(
        name="Steve Shipper",
        line1="123 Shipping Street",
        line2="",
        company="Shipping Company",
        city="Shippington",
        state="KY",
        postal_code="40003",
        country_code="US",
        phone="555-555-SHIP",
    )
    assert order.shipping_method == "Generic Shipping"
    assert order.shipping_method_code == ""
    assert order.test is True, "Shopify's sample payload is a test order"
    assert order.buyer_email == "jon@example.com"
    assert order.buyer_phone == ""
    assert order.gift_message == "Happy birthday, Steve!"
    assert order.notes == "Please leave the parcel at the back door"
    assert order.cancelled is False


def test_lines_without_shipping_and_gift_cards_are_skipped_and_noted_by_id_only() -> None:
    delivery = deliver(fixture("orders_create.json"))
    assert delivery.notes == (
        "line 789012345678901234 skipped: needs no shipping",
        "line 315789986012684393 skipped: gift card",
    )


def test_fallbacks_for_names_codes_contacts_and_skus() -> None:
    order = fixture("orders_create.json")
    order["shipping_address"].update(name=None, province_code=None, country_code="us")
    order["shipping_lines"][0].update(title=None, code="STANDARD")
    order.update(email=None, contact_email="", phone=None, name=None)
    order["customer"].update(phone="+1 555 0100")
    order["line_items"][0]["sku"] = "  SKU2006-001 \t"
    order["line_items"][0]["title"] = None
    order["note_attributes"] = [{"name": "gift-message", "value": "  Cheers  "}]
    result = deliver(order).order
    assert result.destination.name == "Steve Shipper"
    assert result.destination.state == "Kentucky"
    assert result.destination.country_code == "US"
    assert (result.shipping_method, result.shipping_method_code) == ("", "STANDARD")
    assert result.buyer_email == "john@example.com"
    assert result.buyer_phone == "+1 555 0100"
    assert result.display_id == "#1234"
    assert result.lines[0].sku == "SKU2006-001"
    assert result.lines[0].title == "Aviator sunglasses"
    assert result.gift_message == "Cheers"


def test_an_order_without_shipping_address_has_no_destination() -> None:
    order = fixture("orders_create.json")
    order["shipping_address"] = None
    assert deliver(order).order.destination is None
    del order["shipping_address"]
    assert deliver(order).order.destination is None


def test_string_ids_read_the_same_as_integer_ids() -> None:
    order = fixture("orders_create.json")
    order["id"] = "820982911946154508"
    order["line_items"][0]["id"] = "487817672276298554"
    result = deliver(order).order
    assert result.external_id == "820982911946154508"
    assert result.lines[0].line_id == "487817672276298554"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", PaymentState.PENDING),
        ("authorized", PaymentState.AUTHORIZED),
        ("partially_paid", PaymentState.PARTIALLY_PAID),
        ("paid", PaymentState.PAID),
        ("partially_refunded", PaymentState.PARTIALLY_REFUNDED),
        ("refunded", PaymentState.REFUNDED),
        ("voided", PaymentState.VOIDED),
        ("expired", PaymentState.UNKNOWN),
        (None, PaymentState.UNKNOWN),
    ],
)
def test_financial_status_maps_to_payment_state(status: str | None, state: PaymentState) -> None:
    order = fixture("orders_create.json")
    order["financial_status"] = status
    assert deliver(order).order.payment_state is state


# --------------------------------------------------------------------------------------------
# Topics


@pytest.mark.parametrize("topic", ["orders/create", "orders/paid", "orders/updated"])
def test_order_topics_are_upserts(topic: str) -> None:
    delivery = deliver(fixture("orders_create.json"), topic)
    assert (delivery.topic, delivery.kind) == (topic, DeliveryKind.UPSERT)


def test_the_documented_cancelled_order_is_a_cancellation_with_the_order() -> None:
    delivery = deliver(fixture("orders_cancelled.json"), "orders/cancelled")
    assert delivery.kind is DeliveryKind.CANCEL
    assert delivery.external_id == "820982911946154508"
    assert delivery.order.cancelled is True
    assert delivery.order.payment_state is PaymentState.VOIDED


def test_an_update_of_a_cancelled_order_says_cancelled() -> None:
    delivery = deliver(fixture("orders_cancelled.json"), "orders/updated")
    assert delivery.kind is DeliveryKind.UPSERT
    assert delivery.order.cancelled is True


@pytest.mark.parametrize("topic", ["orders/fulfilled", "app/uninstalled", "products/update"])
def test_other_topics_are_acknowledged_stored_and_ignored(topic: str) -> None:
    delivery = deliver({"id": 1, "anything": ["goes"]}, topic)
    assert (delivery.topic, delivery.kind, delivery.order, delivery.privacy) == (topic, None, None, None)
    assert delivery.store is True


@pytest.mark.parametrize(
    ("topic", "name", "scope", "ids"),
    [
        (
            "customers/data_request",
            "customers_data_request.json",
            PrivacyScope.DATA_REQUEST,
            ("299938", "280263", "220458"),
        ),
        (
            "customers/redact",
            "customers_redact.json",
            PrivacyScope.CUSTOMER_REDACT,
            ("299938", "280263", "220458"),
        ),
        ("shop/redact", "shop_redact.json", PrivacyScope.SHOP_REDACT, ()),
    ],
)
def test_privacy_topics_carry_a_privacy_request(
    topic: str, name: str, scope: PrivacyScope, ids: tuple[str, ...]
) -> None:
    delivery = deliver(fixture(name), topic)
    assert delivery.kind is None
    assert delivery.order is None
    assert delivery.privacy is not None
    assert delivery.privacy.scope is scope
    assert delivery.privacy.order_external_ids == ids


def test_a_malformed_redact_request_is_parked_without_the_customer_email() -> None:
    payload = fixture("customers_redact.json")
    payload["orders_to_redact"] = ["john@example.com"]
    found = refused(payload, "customers/redact")
    assert found[0]["path"] == "$.orders_to_redact[0]"
    assert "john@example.com" not in json.dumps(found)


def test_without_a_webhook_id_the_delivery_key_is_the_body_digest() -> None:
    body = encode(fixture("orders_create.json"))
    hdrs = headers(body)
    del hdrs["X-Shopify-Webhook-Id"], hdrs["X-Shopify-Event-Id"]
    delivery = adapter.parse(CHANNEL, hdrs, body, CLOCK)
    assert delivery.delivery_key == "sha256:" + hashlib.sha256(body).hexdigest()
    assert delivery.event_id is None


def test_the_order_survives_a_round_trip_through_canonical_json() -> None:
    order = deliver(fixture("orders_create.json")).order
    again = CanonicalOrder.from_json(json.loads(json.dumps(order.to_json())))
    assert again.same_content(order)
    assert again.created_at.astimezone(UTC) == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Fuzzing: whatever arrives, correctly signed, only a Rejection may come out.

TOPICS = st.sampled_from(
    [
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "customers/redact",
        "customers/data_request",
        "shop/redact",
        "orders/fulfilled",
    ]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    ("id",),
    ("name",),
    ("email",),
    ("currency",),
    ("created_at",),
    ("updated_at",),
    ("cancelled_at",),
    ("financial_status",),
    ("note",),
    ("note_attributes",),
    ("note_attributes", 1),
    ("note_attributes", 1, "name"),
    ("note_attributes", 1, "value"),
    ("line_items",),
    ("line_items", 0),
    ("line_items", 0, "id"),
    ("line_items", 0, "sku"),
    ("line_items", 0, "quantity"),
    ("line_items", 0, "price"),
    ("line_items", 0, "requires_shipping"),
    ("line_items", 0, "gift_card"),
    ("line_items", 0, "title"),
    ("shipping_address",),
    ("shipping_address", "name"),
    ("shipping_address", "country_code"),
    ("shipping_address", "zip"),
    ("shipping_lines",),
    ("shipping_lines", 0),
    ("shipping_lines", 0, "title"),
    ("customer",),
    ("customer", "email"),
    ("order_number",),
]
fixture_cache = fixture("orders_create.json")


def _parse_only_rejects(body: bytes, topic: str, content_type: str = "application/json") -> None:
    hdrs = headers(body, topic, **{"Content-Type": content_type})
    adapter.verify(CHANNEL, hdrs, body, CLOCK)
    try:
        adapter.parse(CHANNEL, hdrs, body, CLOCK)
    except Rejection:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300), topic=TOPICS)
def test_arbitrary_signed_bytes_never_raise_anything_but_rejection(body: bytes, topic: str) -> None:
    _parse_only_rejects(body, topic)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON, topic=TOPICS)
def test_arbitrary_signed_json_never_raises_anything_but_rejection(payload: Any, topic: str) -> None:
    _parse_only_rejects(json.dumps(payload).encode(), topic)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=JSON, topic=TOPICS)
def test_a_documented_order_with_any_field_replaced_never_raises_anything_but_rejection(
    path: tuple[Any, ...], value: Any, topic: str
) -> None:
    order = copy.deepcopy(fixture_cache)
    target = order
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    _parse_only_rejects(json.dumps(order).encode(), topic)
