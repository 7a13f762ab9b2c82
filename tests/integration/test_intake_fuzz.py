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
