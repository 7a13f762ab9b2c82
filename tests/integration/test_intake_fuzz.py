"""Property: no body, header or topic, signed or not, makes the webhook endpoint answer 5xx."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.bootstrap import Bridge
from tests.support import generic_delivery, shopify_delivery, shopify_order, woo_delivery, woo_order

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
SHOPIFY_TOPICS = st.sampled_from(
    [
        "orders/create",
        "orders/paid",
        "orders/updated",
        "orders/cancelled",
        "customers/redact",
        "shop/redact",
        "customers/data_request",
        "app/uninstalled",
    ]
)
WOO_TOPICS = st.sampled_from(["order.created", "order.updated", "order.deleted", "order.restored"])


def mutate(document: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """Replace a few top-level or nested fields of a real payload with arbitrary JSON."""
    for _ in range(data.draw(st.integers(1, 4))):
        target: Any = document
        for _depth in range(data.draw(st.integers(0, 2))):
            children = (
                [k for k, v in target.items() if isinstance(v, dict)] if isinstance(target, dict) else []
            )
            if not children:
                break
            target = target[data.draw(st.sampled_from(children))]
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            if data.draw(st.booleans()):
                target[key] = data.draw(json_values)
            else:
                del target[key]
    return document


@FUZZ
@given(body=st.binary(max_size=2048), topic=SHOPIFY_TOPICS)
def test_arbitrary_signed_bytes_never_5xx(client: FlaskClient, body: bytes, topic: str) -> None:
    raw, headers = shopify_delivery(body, topic=topic)
    assert client.post("/webhooks/shop-a", data=raw, headers=headers).status_code < 500


@FUZZ
@given(document=json_values, topic=SHOPIFY_TOPICS)
def test_arbitrary_signed_json_never_5xx_shopify(client: FlaskClient, document: Any, topic: str) -> None:
    raw, headers = shopify_delivery(json.dumps(document).encode(), topic=topic)
    assert client.post("/webhooks/shop-a", data=raw, headers=headers).status_code < 500


@FUZZ
@given(data=st.data(), topic=SHOPIFY_TOPICS)
def test_mutated_shopify_orders_never_5xx(client: FlaskClient, data: st.DataObject, topic: str) -> None:
    raw, headers = shopify_delivery(mutate(shopify_order(), data), topic=topic)
    assert client.post("/webhooks/shop-a", data=raw, headers=headers).status_code < 500


@FUZZ
@given(data=st.data(), topic=WOO_TOPICS)
def test_mutated_woocommerce_orders_never_5xx(client: FlaskClient, data: st.DataObject, topic: str) -> None:
    raw, headers = woo_delivery(mutate(woo_order(), data), topic=topic)
    assert client.post("/webhooks/woo-main", data=raw, headers=headers).status_code < 500


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["order.upsert", "order.cancel", "order.other"]))
def test_mutated_generic_orders_never_5xx(
    client: FlaskClient, bridge: Bridge, data: st.DataObject, kind: str
) -> None:
    from tests.support import fixture

    body = fixture("generic/order_upsert.json")
    body["type"] = kind
    raw, headers = generic_delivery(mutate(body, data), bridge.clock.now())
    assert client.post("/webhooks/own-shop", data=raw, headers=headers).status_code < 500


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Content-Type",
                "X-Shopify-Topic",
                "X-Shopify-Hmac-Sha256",
                "X-Shopify-Webhook-Id",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "X-WC-Webhook-Signature",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    ),
    body=st.binary(max_size=256),
    channel=st.sampled_from(["shop-a", "woo-main", "own-shop"]),
)
def test_arbitrary_headers_never_5xx(
    client: FlaskClient, headers: dict[str, str], body: bytes, channel: str
) -> None:
    assert client.post(f"/webhooks/{channel}", data=body, headers=headers).status_code < 500


# Hostile text: control characters (U+0000 above all, which PostgreSQL cannot store in text) and
# lengths around the schemas' limits, in any string field of a real payload. CI runs this file on
# PostgreSQL too (BRIDGE_TEST_DATABASE_URL), where a string that does not fit its column fails.
hostile_text = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40),
    st.text(alphabet=st.sampled_from(["\x00", "\x01", "\x1b", "\x7f", "\t", "\n", "a", "1"]), max_size=12),
    st.text(max_size=8).map(lambda text: f"#1{text}\x00"),
    st.integers(0, 5000).map(lambda n: "x" * n),
    st.integers(120, 300).map(lambda n: "9" * n),
)


def string_paths(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(document, str):
        return [path]
    if isinstance(document, dict):
        return [p for key, value in document.items() for p in string_paths(value, (*path, key))]
    if isinstance(document, list):
        return [p for i, value in enumerate(document) for p in string_paths(value, (*path, i))]
    return []


# Fields whose schema pattern refuses hostile text anyway; half the draws leave them alone, so
# the hostile text reaches the free-text fields that end up in the database.
SHAPED = {"currency", "created_at", "updated_at", "date_created_gmt", "date_modified_gmt", "price", "status"}
SHAPED |= {"country_code", "country", "financial_status", "type", "payment_state", "unit_price", "timestamp"}


def with_hostile_strings(document: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    paths = string_paths(document)
    free = [path for path in paths if path[-1] not in SHAPED and not str(path[-1]).startswith("date_")]
    if data.draw(st.integers(0, 3)) == 0:  # a control character in every free-text field at once
        character = data.draw(st.sampled_from(["\x00", "\x01", "\x1b", "\x7f"]))
        for *parents, last in free:
            target: Any = document
            for key in parents:
                target = target[key]
            target[last] = target[last] + character
        return document
    for _ in range(data.draw(st.integers(1, 4))):
        *parents, last = data.draw(st.sampled_from(free if data.draw(st.booleans()) else paths))
        target = document
        for key in parents:
            target = target[key]
        target[last] = data.draw(hostile_text)
    return document


@FUZZ
@given(data=st.data(), topic=st.sampled_from(["orders/create", "orders/updated", "orders/cancelled"]))
def test_hostile_strings_in_shopify_orders_never_5xx(
    client: FlaskClient, data: st.DataObject, topic: str
) -> None:
    raw, headers = shopify_delivery(with_hostile_strings(shopify_order(), data), topic=topic)
    assert client.post("/webhooks/shop-a", data=raw, headers=headers).status_code < 500


@FUZZ
@given(data=st.data(), topic=WOO_TOPICS)
def test_hostile_strings_in_woocommerce_orders_never_5xx(
    client: FlaskClient, data: st.DataObject, topic: str
) -> None:
    raw, headers = woo_delivery(with_hostile_strings(woo_order(), data), topic=topic)
    assert client.post("/webhooks/woo-main", data=raw, headers=headers).status_code < 500


@FUZZ
@given(data=st.data(), msg_id=st.text(alphabet="abc_-", min_size=1, max_size=255))
def test_hostile_strings_in_generic_orders_never_5xx(
    client: FlaskClient, bridge: Bridge, data: st.DataObject, msg_id: str
) -> None:
    from tests.support import fixture

    body = with_hostile_strings(fixture("generic/order_upsert.json"), data)
    raw, headers = generic_delivery(body, bridge.clock.now(), msg_id=msg_id)
    for _ in range(2):  # the retry too
        assert client.post("/webhooks/own-shop", data=raw, headers=headers).status_code < 500
