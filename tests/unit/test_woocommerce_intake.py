"""WooCommerce intake: real HMAC signatures over the REST v3 order from WooCommerce's API docs."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.channels import Channel
from bridge.clock import ManualClock
from bridge.orders import Address, DeliveryKind, OrderLine, PaymentState
from bridge.settings import Secret
from bridge.storefronts.base import Rejection
from bridge.storefronts.registry import adapter_for
from bridge.storefronts.woocommerce import adapter, delivery_key_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
CURRENT_SECRET = "wc-secret-current-7f3a9b"
PREVIOUS_SECRET = "wc-secret-previous-1c2d3e"
CHANNEL = Channel(
    id="woo-main",
    platform="woocommerce",
    webhook_secrets=(Secret(CURRENT_SECRET), Secret(PREVIOUS_SECRET)),
    account_id="na",
    marketplace_id="ATVPDKIKX0DER",
    sku_map={},
)
CLOCK = ManualClock()
PERSONAL = (
    "John",
    "Doe",
    "969 Market",
    "San Francisco",
    "94103",
    "john.doe@example.com",
    "(555) 555-5555",
    "Congratulations",
    "Ring the bell",
)
PING = b"webhook_id=42"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def sign(body: bytes, secret: str = CURRENT_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(
    body: bytes, topic: str | None = "order.created", secret: str = CURRENT_SECRET, **extra: str
) -> dict[str, str]:
    out = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://example.com/",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": sign(body, secret),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "2f0e3b2a6b5c4f0c9d8e7f6a5b4c3d2e",
    }
    if topic is not None:
        out["X-WC-Webhook-Topic"] = topic
    out.update(extra)
    return out


def deliver(payload: Any, topic: str | None = "order.created", **extra: str) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    hdrs = headers(body, topic, **extra)
    adapter.verify(CHANNEL, hdrs, body, CLOCK)
    return adapter.parse(CHANNEL, hdrs, body, CLOCK)


def rejection(payload: Any, topic: str | None = "order.created", **extra: str) -> Rejection:
    with pytest.raises(Rejection) as caught:
        deliver(payload, topic, **extra)
    return caught.value


def refused(payload: Any, topic: str | None = "order.created") -> list[dict[str, str]]:
    """The problems of an authentic delivery our schema refuses: parked (stored, alerted), not a
    4xx, which WooCommerce would count towards disabling the webhook."""
    delivery = deliver(payload, topic)
    assert delivery.kind is None and delivery.order is None
    assert delivery.store is True and delivery.refused, "the delivery was parked with its problems"
    return list(delivery.refused)


def with_status(status: str) -> dict[str, Any]:
    order = fixture("order.json")
    order["status"] = status
    return order


# --------------------------------------------------------------------------------------------
# Signature and ping


def test_registry_serves_the_woocommerce_adapter() -> None:
    assert adapter_for("woocommerce") is adapter


@pytest.mark.parametrize("secret", [CURRENT_SECRET, PREVIOUS_SECRET])
def test_a_body_signed_with_any_configured_secret_is_accepted(secret: str) -> None:
    body = encode(fixture("order.json"))
    adapter.verify(CHANNEL, headers(body, secret=secret), body, CLOCK)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "%%%",
        sign(b"other"),
        sign(encode(fixture("order.json")), "wrong-secret"),
        "AAAA",
    ],
)
def test_missing_wrong_or_garbled_signatures_are_401(signature: str | None) -> None:
    body = encode(fixture("order.json"))
    hdrs = headers(body)
    if signature is None:
        del hdrs["X-WC-Webhook-Signature"]
    else:
        hdrs["X-WC-Webhook-Signature"] = signature
    with pytest.raises(Rejection) as caught:
        adapter.verify(CHANNEL, hdrs, body, CLOCK)
    assert caught.value.status == 401


def test_wsgi_title_cased_header_names_are_understood() -> None:
    body = encode(fixture("order.json"))
    hdrs = {
        name.replace("X-WC-", "X-Wc-").replace("Delivery-ID", "Delivery-Id").replace("-ID", "-Id"): value
        for name, value in headers(body).items()
    }
    adapter.verify(CHANNEL, hdrs, body, CLOCK)
    delivery = adapter.parse(CHANNEL, hdrs, body, CLOCK)
    assert delivery.delivery_key.startswith("2f0e3b2a6b5c4f0c9d8e7f6a5b4c3d2e:")


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8", None],
)
def test_the_unsigned_ping_is_let_through_and_neither_applied_nor_stored(content_type: str | None) -> None:
    hdrs = {"User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"}
    if content_type is not None:
        hdrs["Content-Type"] = content_type
    adapter.verify(CHANNEL, hdrs, PING, CLOCK)
    delivery = adapter.parse(CHANNEL, hdrs, PING, CLOCK)
    assert (delivery.topic, delivery.kind, delivery.order, delivery.store) == ("ping", None, None, False)
    assert delivery.delivery_key == "sha256:" + hashlib.sha256(PING).hexdigest()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"webhook_id=42&x=1", "application/x-www-form-urlencoded"),
        (b"webhook_id=", "application/x-www-form-urlencoded"),
        (b"webhook_id=4a", "application/x-www-form-urlencoded"),
        (b" webhook_id=42", "application/x-www-form-urlencoded"),
        (b"webhook_id=42\n", "application/x-www-form-urlencoded"),
        (PING, "application/json"),
        (b'{"id": 727}', "application/json"),
        (b"", "application/x-www-form-urlencoded"),
    ],
)
def test_anything_else_unsigned_is_401(body: bytes, content_type: str) -> None:
    with pytest.raises(Rejection) as caught:
        unsigned = {"Content-Type": content_type, "X-WC-Webhook-Topic": "order.created"}
        adapter.verify(CHANNEL, unsigned, body, CLOCK)
    assert caught.value.status == 401


# --------------------------------------------------------------------------------------------
# Transport-level rejections


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_declared_json_is_415(content_type: str) -> None:
    assert rejection(fixture("order.json"), **{"Content-Type": content_type}).status == 415


def test_a_missing_topic_header_is_400_and_says_which_header() -> None:
    caught = rejection(fixture("order.json"), topic=None)
    assert caught.status == 400
    assert "X-WC-Webhook-Topic" in caught.message


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xc3\x28",
        b'{"id": 727, "id": 728}',
        b"{" + b'"a":{' * 40 + b"}" * 41,
        b'{"id": ' + b"1" * 5000 + b"}",
    ],
)
def test_bodies_that_are_not_strict_json_are_400(body: bytes) -> None:
    assert rejection(body).status == 400


# --------------------------------------------------------------------------------------------
# Schema violations


def test_a_schema_violation_is_parked_with_paths_and_no_personal_data() -> None:
    order = fixture("order.json")
    order["currency"] = "dollars"
    order["shipping"]["country"] = "United States"
    order["line_items"][1]["price"] = "John Doe"
    order["line_items"][0]["quantity"] = -2
    order["billing"]["email"] = ["john.doe@example.com"]
    del order["date_created_gmt"]
    found = refused(order)
    assert {(p["path"], p["rule"]) for p in found} == {
        ("$.currency", "pattern"),
        ("$.shipping.country", "pattern"),
        ("$.line_items[1].price", "pattern"),
        ("$.line_items[0].quantity", "minimum"),
        ("$.billing.email", "type"),
        ("$.date_created_gmt", "required"),
    }
    text = json.dumps(found)
    for personal in (*PERSONAL, "dollars", "United States"):
        assert personal not in text


def test_a_calendar_impossible_date_is_parked_not_a_crash() -> None:
    order = fixture("order.json")
    order["date_modified_gmt"] = "2017-02-30T19:28:08"
    assert refused(order, "order.updated")[0]["path"] == "$.date_modified_gmt"


def test_a_malformed_deletion_is_parked() -> None:
    found = refused({"id": "seven hundred"}, "order.deleted")
    assert found[0]["path"] == "$.id"
    assert "seven hundred" not in json.dumps(found)


# --------------------------------------------------------------------------------------------
# Mapping of the documentation example


def test_the_documented_order_maps_to_every_canonical_field() -> None:
    delivery = deliver(fixture("order.json"))
    assert delivery.topic == "order.created"
    assert delivery.kind is DeliveryKind.UPSERT
    body = encode(fixture("order.json"))
    assert delivery.delivery_key == "2f0e3b2a6b5c4f0c9d8e7f6a5b4c3d2e:" + hashlib.sha256(body).hexdigest()
    assert delivery.event_id is None
    assert delivery.external_id == "727"
    order = delivery.order
    assert order is not None
    assert order.channel_id == "woo-main"
    assert order.external_id == "727"
    assert order.display_id == "727"
    assert order.currency == "USD"
    assert order.payment_state is PaymentState.PAID
    assert order.created_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert order.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert order.lines == (
        OrderLine("315", "", 2, "3", "Woo Single #1", True),
        OrderLine("316", "Bar3", 1, "12", "Ship Your Idea \u2013 Color: Black, Size: M Test", True),
    )
    assert (order.shipping_method, order.shipping_method_code) == ("Flat Rate", "flat_rate")
    assert order.destination == Address(
        name="John Doe",
        line1="969 Market",
        line2="",
        company="",
        city="San Francisco",
        state="CA",
        postal_code="94103",
        country_code="US",
        phone="(555) 555-5555",
    )
    assert order.shipping_method == "Flat Rate"
    assert order.buyer_email == "john.doe@example.com"
    assert order.buyer_phone == "(555) 555-5555"
    assert order.gift_message == "Congratulations on the new job!"
    assert order.notes == "Ring the bell twice"
    assert order.cancelled is False
    assert order.total() == 18


def test_prices_sent_as_fractional_numbers_or_strings_stay_exact() -> None:
    order = fixture("order.json")
    order["line_items"][0]["price"] = 3.3333333333
    order["line_items"][1]["price"] = "12.00"
    lines = deliver(order).order.lines
    assert [line.unit_price for line in lines] == ["3.3333333333", "12.00"]


def test_an_empty_or_null_shipping_block_is_no_destination_not_the_billing_address() -> None:
    order = fixture("order.json")
    order["billing"].update(first_name="Jane", address_1="1 Billing Way", company="Doe Corp")
    for empty in ({key: "" for key in order["shipping"]}, None):
        order["shipping"] = empty
        result = deliver(order).order
        assert result.destination is None
        assert all(line.requires_shipping for line in result.lines), "it has a shipping line: physical"


def test_the_billing_address_is_used_only_when_the_channel_opts_in() -> None:
    order = fixture("order.json")
    order["shipping"] = None
    order["billing"].update(first_name="Jane", address_1="1 Billing Way", company="Doe Corp")
    body = encode(order)
    opted_in = replace(CHANNEL, shipping_address_fallback="billing")
    destination = adapter.parse(opted_in, headers(body), body, CLOCK).order.destination
    assert (destination.name, destination.line1, destination.company) == (
        "Jane Doe",
        "1 Billing Way",
        "Doe Corp",
    )


@pytest.mark.parametrize("how", ["no address, no shipping line", "needs_processing false"])
def test_a_virtual_or_downloadable_order_needs_no_shipping(how: str) -> None:
    order = fixture("order.json")
    if how == "needs_processing false":
        order["needs_processing"] = False
    else:
        order["shipping"], order["shipping_lines"] = None, []
    lines = deliver(order).order.lines
    assert lines and not any(line.requires_shipping for line in lines)


def test_two_deliveries_of_one_webhook_in_the_same_second_are_told_apart() -> None:
    """WooCommerce's delivery id is wp_hash(webhook id . Unix second): not unique per delivery."""
    same_second = "5d41402abc4b2a76b9719d911017c592"
    first, second = with_status("on-hold"), with_status("processing")
    one = deliver(first, **{"X-WC-Webhook-Delivery-ID": same_second})
    two = deliver(second, **{"X-WC-Webhook-Delivery-ID": same_second})
    replay = deliver(first, **{"X-WC-Webhook-Delivery-ID": same_second})
    assert one.delivery_key != two.delivery_key
    assert replay.delivery_key == one.delivery_key, "a byte-identical replay is still a duplicate"
    assert one.delivery_key == delivery_key_for(same_second, encode(first))


def test_a_shipping_phone_wins_over_the_billing_phone() -> None:
    order = fixture("order.json")
    order["shipping"]["phone"] = "555-0100"
    assert deliver(order).order.destination.phone == "555-0100"


def test_an_order_without_any_address_has_no_destination() -> None:
    order = fixture("order.json")
    order["shipping"] = {key: "" for key in order["shipping"]}
    order["billing"] = {key: "" for key in order["billing"]}
    assert deliver(order).order.destination is None


def test_a_missing_modification_date_falls_back_to_the_creation_date() -> None:
    order = fixture("order.json")
    order["date_modified_gmt"] = None
    result = deliver(order).order
    assert result.updated_at == result.created_at


def test_numeric_order_numbers_and_string_ids_are_read_as_text() -> None:
    order = fixture("order.json")
    order.update(id="727", number=1727)
    order["line_items"][0]["id"] = "315"
    result = deliver(order).order
    assert (result.external_id, result.display_id, result.lines[0].line_id) == ("727", "1727", "315")


# --------------------------------------------------------------------------------------------
# Topics and statuses


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("pending", PaymentState.PENDING),
        ("on-hold", PaymentState.PENDING),
        ("processing", PaymentState.PAID),
        ("completed", PaymentState.PAID),
        ("awaiting-shipment", PaymentState.UNKNOWN),
    ],
)
@pytest.mark.parametrize("topic", ["order.created", "order.updated", "order.restored"])
def test_order_topics_are_upserts_with_the_status_as_payment_state(
    topic: str, status: str, state: PaymentState
) -> None:
    delivery = deliver(with_status(status), topic)
    assert delivery.kind is DeliveryKind.UPSERT
    assert delivery.order.payment_state is state
    assert delivery.order.cancelled is False


@pytest.mark.parametrize("status", ["cancelled", "trash", "refunded", "failed"])
def test_a_cancelled_refunded_or_failed_order_is_a_cancellation_with_the_order(status: str) -> None:
    delivery = deliver(with_status(status), "order.updated")
    assert delivery.kind is DeliveryKind.CANCEL
    assert delivery.external_id == "727"
    assert delivery.order.cancelled is True
    assert delivery.order.cancel_reason == f"WooCommerce status {status}"


def test_a_checkout_draft_is_acknowledged_and_ignored() -> None:
    draft = {"id": 728, "status": "checkout-draft", "line_items": [], "billing": None}
    delivery = deliver(draft, "order.created")
    assert (delivery.kind, delivery.order, delivery.external_id) == (None, None, "728")


def test_the_deletion_body_is_a_cancellation_without_an_order() -> None:
    delivery = deliver(fixture("order_deleted.json"), "order.deleted")
    assert (delivery.kind, delivery.order, delivery.external_id) == (DeliveryKind.CANCEL, None, "727")
    assert delivery.notes == ("deleted or trashed in WooCommerce (order.deleted)",)


@pytest.mark.parametrize("topic", ["product.updated", "customer.created", "action.woocommerce_order_status"])
def test_other_topics_are_acknowledged_stored_and_ignored(topic: str) -> None:
    delivery = deliver({"id": 93, "name": "Woo Single #1"}, topic)
    assert (delivery.topic, delivery.kind, delivery.order, delivery.store) == (topic, None, None, True)


def test_without_a_delivery_id_the_delivery_key_is_the_body_digest() -> None:
    body = encode(fixture("order.json"))
    hdrs = headers(body)
    del hdrs["X-WC-Webhook-Delivery-ID"]
    delivery = adapter.parse(CHANNEL, hdrs, body, CLOCK)
    assert delivery.delivery_key == "sha256:" + hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------------------------
# Fuzzing: whatever arrives, correctly signed, only a Rejection may come out.

TOPICS = st.sampled_from(
    ["order.created", "order.updated", "order.restored", "order.deleted", "product.created"]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    ("id",),
    ("number",),
    ("status",),
    ("currency",),
    ("date_created_gmt",),
    ("date_modified_gmt",),
    ("customer_note",),
    ("billing",),
    ("billing", "email"),
    ("billing", "phone"),
    ("shipping",),
    ("shipping", "first_name"),
    ("shipping", "country"),
    ("shipping", "address_1"),
    ("line_items",),
    ("line_items", 0),
    ("line_items", 0, "id"),
    ("line_items", 0, "sku"),
    ("line_items", 0, "quantity"),
    ("line_items", 0, "price"),
    ("line_items", 1, "name"),
    ("shipping_lines",),
    ("shipping_lines", 0),
    ("shipping_lines", 0, "method_title"),
    ("meta_data",),
    ("meta_data", 1),
    ("meta_data", 1, "key"),
    ("meta_data", 1, "value"),
]
FIXTURE = fixture("order.json")


def _only_rejects(
    body: bytes, topic: str, content_type: str = "application/json", signed: bool = True
) -> None:
    hdrs = headers(body, topic, **{"Content-Type": content_type})
    if not signed:
        del hdrs["X-WC-Webhook-Signature"]
    try:
        adapter.verify(CHANNEL, hdrs, body, CLOCK)
        adapter.parse(CHANNEL, hdrs, body, CLOCK)
    except Rejection:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300),
    topic=TOPICS,
    signed=st.booleans(),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]),
)
def test_arbitrary_bytes_never_raise_anything_but_rejection(
    body: bytes, topic: str, signed: bool, content_type: str
) -> None:
    _only_rejects(body, topic, content_type, signed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON, topic=TOPICS)
def test_arbitrary_signed_json_never_raises_anything_but_rejection(payload: Any, topic: str) -> None:
    _only_rejects(json.dumps(payload).encode(), topic)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=JSON, topic=TOPICS)
def test_a_documented_order_with_any_field_replaced_never_raises_anything_but_rejection(
    path: tuple[Any, ...], value: Any, topic: str
) -> None:
    order = copy.deepcopy(FIXTURE)
    target = order
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    _only_rejects(json.dumps(order).encode(), topic)
