"""Generic channel intake: Standard Webhooks signatures driven by a manual clock."""

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
from standardwebhooks.webhooks import Webhook

from bridge.channels import Channel
from bridge.clock import ManualClock
from bridge.orders import Address, CanonicalOrder, DeliveryKind, OrderLine, PaymentState
from bridge.settings import Secret
from bridge.storefronts.base import Rejection
from bridge.storefronts.generic import adapter, sign_standard_webhook
from bridge.storefronts.registry import adapter_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "generic"
CURRENT_SECRET = "whsec_" + base64.b64encode(b"current-secret-of-32-bytes-long!").decode()
PREVIOUS_SECRET = "whsec_" + base64.b64encode(b"previous-secret-32-bytes-long!!!").decode()
CHANNEL = Channel(
    id="generic-shop",
    platform="generic",
    webhook_secrets=(Secret(CURRENT_SECRET), Secret(PREVIOUS_SECRET)),
    account_id="na",
    marketplace_id="A1PA6795UKMFR9",
    sku_map={},
)
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = int(START.timestamp())
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
PERSONAL = ("Erika", "Musterstrasse", "Berlin", "erika@example.com", "+49 30", "Alles Gute", "Bitte nicht")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def manual_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The signature computed by hand from the spec, independent of the standardwebhooks package."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    body: bytes, secret: str = CURRENT_SECRET, timestamp: int = NOW, msg_id: str = MSG_ID, **extra: str
) -> dict[str, str]:
    out = {"Content-Type": "application/json", **sign_standard_webhook(secret, msg_id, timestamp, body)}
    out.update(extra)
    return out


def deliver(payload: Any, **extra: Any) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    hdrs = headers(body, **extra)
    clock = ManualClock(START)
    adapter.verify(CHANNEL, hdrs, body, clock)
    return adapter.parse(CHANNEL, hdrs, body, clock)


def verify_rejection(hdrs: dict[str, str], body: bytes, clock: ManualClock | None = None) -> Rejection:
    with pytest.raises(Rejection) as caught:
        adapter.verify(CHANNEL, hdrs, body, clock or ManualClock(START))
    return caught.value


def parse_rejection(payload: Any, **extra: str) -> Rejection:
    with pytest.raises(Rejection) as caught:
        deliver(payload, **extra)
    return caught.value


# --------------------------------------------------------------------------------------------
# The signing helper


def test_registry_serves_the_generic_adapter() -> None:
    assert adapter_for("generic") is adapter


def test_sign_standard_webhook_matches_the_spec_and_the_reference_library() -> None:
    body = encode(fixture("order_upsert.json"))
    signed = sign_standard_webhook(CURRENT_SECRET, MSG_ID, NOW, body)
    assert signed == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": manual_signature(CURRENT_SECRET, MSG_ID, NOW, body),
    }
    # The reference verifier reads the real clock, so check it against a timestamp of now.
    now = int(datetime.now(UTC).timestamp())
    assert Webhook(CURRENT_SECRET).verify(
        body, sign_standard_webhook(CURRENT_SECRET, MSG_ID, now, body)
    ) == json.loads(body)


# --------------------------------------------------------------------------------------------
# Signature


@pytest.mark.parametrize("secret", [CURRENT_SECRET, PREVIOUS_SECRET])
def test_a_body_signed_with_any_configured_secret_is_accepted(secret: str) -> None:
    body = encode(fixture("order_upsert.json"))
    adapter.verify(CHANNEL, headers(body, secret), body, ManualClock(START))


def test_a_signature_computed_by_hand_from_the_spec_is_accepted() -> None:
    body = encode(fixture("order_upsert.json"))
    hdrs = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": manual_signature(PREVIOUS_SECRET, MSG_ID, NOW, body),
    }
    adapter.verify(CHANNEL, hdrs, body, ManualClock(START))


def test_one_of_several_signatures_matching_is_enough() -> None:
    body = encode(fixture("order_upsert.json"))
    good = manual_signature(CURRENT_SECRET, MSG_ID, NOW, body)
    other = manual_signature("whsec_" + base64.b64encode(b"x" * 32).decode(), MSG_ID, NOW, body)
    hdrs = headers(body, **{"webhook-signature": f"v1,Zm9v {other}  garbage v1,%%% {good}"})
    adapter.verify(CHANNEL, hdrs, body, ManualClock(START))


def test_only_v1_entries_count() -> None:
    body = encode(fixture("order_upsert.json"))
    good = manual_signature(CURRENT_SECRET, MSG_ID, NOW, body)
    v2_only = good.replace("v1,", "v2,") + " " + good.replace("v1,", "v1a,")
    assert verify_rejection(headers(body, **{"webhook-signature": v2_only}), body).status == 401


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_401(name: str) -> None:
    body = encode(fixture("order_upsert.json"))
    hdrs = headers(body)
    del hdrs[name]
    assert verify_rejection(hdrs, body).status == 401


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-signature", "v1"),
        ("webhook-signature", "v1,"),
        ("webhook-signature", "v1,not base64!"),
        ("webhook-signature", ",,,"),
        ("webhook-signature", "v1,AAAA"),
        ("webhook-timestamp", "soon"),
        ("webhook-timestamp", "-1"),
        ("webhook-timestamp", "1.7e9"),
        ("webhook-timestamp", "\u0661\u0667"),
        ("webhook-timestamp", "9" * 40),
        ("webhook-id", "other-id"),
        ("webhook-id", "x" * 300),
    ],
)
def test_garbled_or_mismatched_headers_are_401(name: str, value: str) -> None:
    body = encode(fixture("order_upsert.json"))
    assert verify_rejection(headers(body, **{name: value}), body).status == 401


def test_a_changed_body_is_401() -> None:
    body = encode(fixture("order_upsert.json"))
    assert verify_rejection(headers(body), body.replace(b"12.50", b"02.50")).status == 401


def test_a_body_that_is_not_utf8_is_401_not_a_crash() -> None:
    body = b'{"type": "\xff"}'
    hdrs = {"webhook-id": MSG_ID, "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"}
    assert verify_rejection(hdrs, body).status == 401


def test_an_unusable_configured_secret_never_matches_and_never_crashes() -> None:
    body = encode(fixture("order_upsert.json"))
    broken = Channel(
        id="g",
        platform="generic",
        webhook_secrets=(Secret("whsec_a"), Secret("")),
        account_id="na",
        marketplace_id="x",
        sku_map={},
    )
    with pytest.raises(Rejection) as caught:
        adapter.verify(broken, headers(body), body, ManualClock(START))
    assert caught.value.status == 401


# --------------------------------------------------------------------------------------------
# Timestamp tolerance, measured on the injected clock


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_timestamps_within_five_minutes_either_way_are_accepted(offset: int) -> None:
    body = encode(fixture("order_upsert.json"))
    adapter.verify(CHANNEL, headers(body, timestamp=NOW + offset), body, ManualClock(START))


def test_a_delivery_signed_more_than_five_minutes_ago_is_401() -> None:
    body = encode(fixture("order_upsert.json"))
    hdrs = headers(body)
    clock = ManualClock(START)
    clock.advance(300)
    adapter.verify(CHANNEL, hdrs, body, clock)
    clock.advance(1)
    caught = verify_rejection(hdrs, body, clock)
    assert caught.status == 401
    assert "old" in caught.message


def test_a_delivery_signed_more_than_five_minutes_ahead_is_401() -> None:
    body = encode(fixture("order_upsert.json"))
    hdrs = headers(body, timestamp=NOW + 301)
    caught = verify_rejection(hdrs, body, ManualClock(START))
    assert caught.status == 401
    assert "future" in caught.message


# --------------------------------------------------------------------------------------------
# Transport-level and schema rejections


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_declared_json_is_415(content_type: str) -> None:
    assert parse_rejection(fixture("order_upsert.json"), **{"Content-Type": content_type}).status == 415


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"type": "order.cancel", "type": "order.upsert"}',
        b"[" * 33 + b"]" * 33,
        b'{"type": "x", "n": ' + b"7" * 5000 + b"}",
        b'{"type": NaN}',
    ],
)
def test_bodies_that_are_not_strict_json_are_400(body: bytes) -> None:
    assert parse_rejection(body).status == 400


def test_a_schema_violation_is_422_with_paths_and_no_personal_data() -> None:
    payload = fixture("order_upsert.json")
    order = payload["order"]
    order["payment_state"] = "Erika paid cash"
    order["destination"]["country_code"] = "Germany"
    order["destination"]["street"] = "Musterstrasse 1"
    order["lines"][0]["quantity"] = "2"
    order["lines"][1]["unit_price"] = "7,90"
    del order["currency"]
    caught = parse_rejection(payload)
    assert caught.status == 422
    assert {(p["path"], p["rule"]) for p in caught.problems} == {
        ("$.order.payment_state", "enum"),
        ("$.order.destination.country_code", "pattern"),
        ("$.order.destination", "additionalProperties"),
        ("$.order.lines[0].quantity", "type"),
        ("$.order.lines[1].unit_price", "pattern"),
        ("$.order.currency", "required"),
    }
    text = json.dumps(caught.body())
    for personal in (*PERSONAL, "Germany", "7,90"):
        assert personal not in text


def test_a_cancel_needs_only_the_id_and_the_date() -> None:
    caught = parse_rejection({"type": "order.cancel", "order": {"external_id": "A-1001"}})
    assert [(p["path"], p["rule"]) for p in caught.problems] == [("$.order.updated_at", "required")]


@pytest.mark.parametrize("path", ["created_at", "updated_at"])
def test_a_calendar_impossible_date_is_422_not_a_crash(path: str) -> None:
    payload = fixture("order_upsert.json")
    payload["order"][path] = "2026-02-30T12:00:00+00:00"
    caught = parse_rejection(payload)
    assert (caught.status, caught.problems[0]["path"]) == (422, f"$.order.{path}")


# --------------------------------------------------------------------------------------------
# Mapping and types


def test_an_upsert_maps_every_canonical_field() -> None:
    delivery = deliver(fixture("order_upsert.json"))
    assert (delivery.topic, delivery.kind, delivery.delivery_key, delivery.event_id) == (
        "order.upsert",
        DeliveryKind.UPSERT,
        MSG_ID,
        None,
    )
    assert delivery.external_id == "A-1001"
    order = delivery.order
    assert order == CanonicalOrder(
        channel_id="generic-shop",
        external_id="A-1001",
        display_id="#1001",
        currency="EUR",
        payment_state=PaymentState.PAID,
        created_at=datetime(2026, 11, 23, 11, 58, tzinfo=timezone(timedelta(hours=1))),
        updated_at=datetime(2026, 11, 23, 11, 59, tzinfo=UTC),
        lines=(
            OrderLine("1", "MUG-BLUE", 2, "12.50", "Blue mug", True),
            OrderLine("2", "TEA-500", 1, "7.90", "", True),
        ),
        destination=Address(
            name="Erika Example",
            line1="Musterstrasse 1",
            line2="Hinterhaus",
            line3="3. OG",
            company="Example GmbH",
            city="Berlin",
            district="Mitte",
            state="BE",
            postal_code="10115",
            country_code="DE",
            phone="+49 30 000000",
        ),
        shipping_method="Express",
        buyer_email="erika@example.com",
        buyer_phone="+49 30 111111",
        gift_message="Alles Gute!",
        notes="Bitte nicht knicken",
        cancelled=False,
    )
    assert order.created_at.utcoffset() == timedelta(hours=1)


def test_canonical_json_from_the_bridge_is_accepted_back() -> None:
    order = deliver(fixture("order_upsert.json")).order
    exported = order.to_json()
    del exported["channel_id"], exported["cancelled"], exported["cancel_reason"]
    again = deliver({"type": "order.upsert", "order": exported}).order
    assert again.same_content(order)


def test_a_minimal_upsert_gets_defaults() -> None:
    payload = {
        "type": "order.upsert",
        "order": {
            "external_id": "9",
            "currency": "USD",
            "payment_state": "pending",
            "created_at": "2026-11-23T11:00:00Z",
            "updated_at": "2026-11-23T11:00:00Z",
            "lines": [{"line_id": "a", "sku": "", "quantity": 1, "unit_price": "0"}],
        },
    }
    order = deliver(payload).order
    assert (order.display_id, order.destination, order.shipping_method, order.notes) == ("9", None, "", "")


def test_a_cancel_carries_only_the_external_id() -> None:
    delivery = deliver(fixture("order_cancel.json"))
    assert (delivery.topic, delivery.kind, delivery.order, delivery.external_id) == (
        "order.cancel",
        DeliveryKind.CANCEL,
        None,
        "A-1001",
    )


@pytest.mark.parametrize("event_type", ["order.shipped", "customer.created", "ping"])
def test_unknown_types_are_acknowledged_and_ignored(event_type: str) -> None:
    delivery = deliver({"type": event_type, "order": "not an order", "data": {"anything": True}})
    assert (delivery.topic, delivery.kind, delivery.order, delivery.store) == (event_type, None, None, True)


def test_without_a_webhook_id_the_delivery_key_is_the_body_digest() -> None:
    body = encode(fixture("order_cancel.json"))
    delivery = adapter.parse(CHANNEL, {"Content-Type": "application/json"}, body, ManualClock(START))
    assert delivery.delivery_key == "sha256:" + hashlib.sha256(body).hexdigest()


def test_wsgi_title_cased_header_names_are_understood() -> None:
    body = encode(fixture("order_upsert.json"))
    hdrs = {name.title(): value for name, value in headers(body).items()}
    assert "Webhook-Signature" in hdrs
    adapter.verify(CHANNEL, hdrs, body, ManualClock(START))
    assert adapter.parse(CHANNEL, hdrs, body, ManualClock(START)).delivery_key == MSG_ID


# --------------------------------------------------------------------------------------------
# Fuzzing: whatever arrives, only a Rejection may come out.

TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    ("type",),
    ("order",),
    ("order", "external_id"),
    ("order", "display_id"),
    ("order", "currency"),
    ("order", "payment_state"),
    ("order", "created_at"),
    ("order", "updated_at"),
    ("order", "lines"),
    ("order", "lines", 0),
    ("order", "lines", 0, "quantity"),
    ("order", "lines", 0, "unit_price"),
    ("order", "lines", 0, "sku"),
    ("order", "lines", 1, "requires_shipping"),
    ("order", "destination"),
    ("order", "destination", "name"),
    ("order", "destination", "country_code"),
    ("order", "notes"),
]
UPSERT = fixture("order_upsert.json")


def _only_rejects(hdrs: dict[str, str], body: bytes) -> None:
    clock = ManualClock(START)
    try:
        adapter.verify(CHANNEL, hdrs, body, clock)
        adapter.parse(CHANNEL, hdrs, body, clock)
    except Rejection:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300), msg_id=TEXT, timestamp=TEXT, signature=TEXT, sign_it=st.booleans())
def test_arbitrary_headers_and_bytes_never_raise_anything_but_rejection(
    body: bytes, msg_id: str, timestamp: str, signature: str, sign_it: bool
) -> None:
    hdrs = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    if sign_it:
        hdrs["webhook-timestamp"] = str(NOW)
        try:
            hdrs["webhook-signature"] = manual_signature(CURRENT_SECRET, msg_id, NOW, body)
        except UnicodeEncodeError:  # a lone surrogate cannot even be signed
            pass
    _only_rejects(hdrs, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON)
def test_arbitrary_signed_json_never_raises_anything_but_rejection(payload: Any) -> None:
    body = json.dumps(payload).encode()
    _only_rejects(headers(body), body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=JSON, cancel=st.booleans())
def test_a_valid_delivery_with_any_field_replaced_never_raises_anything_but_rejection(
    path: tuple[Any, ...], value: Any, cancel: bool
) -> None:
    payload = copy.deepcopy(UPSERT)
    if cancel:
        payload["type"] = "order.cancel"
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    body = json.dumps(payload).encode()
    _only_rejects(headers(body), body)
