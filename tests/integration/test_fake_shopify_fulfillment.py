"""The fake Shopify keeps Shopify's rules for locations, fulfillment services and requests, so a
bridge that breaks them fails here first (driven with the bridge's own GraphQL documents)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask, request

from bridge.amazon.simulator.server import serve_in_thread
from bridge.clock import ManualClock
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.storefronts.base import hmac_sha256_b64
from bridge.storefronts.shopify_fulfillment import (
    ACCEPT_CANCELLATION_REQUEST,
    ACCEPT_FULFILLMENT_REQUEST,
    ASSIGNED_FULFILLMENT_ORDERS,
    FULFILLMENT_SERVICE_CREATE,
    REJECT_FULFILLMENT_REQUEST,
)
from bridge.storefronts.shopify_graphql import GraphQLOperation
from bridge.storefronts.shopify_push import FULFILLMENT_CREATE

TOKEN = "fake-token"
SECRET = "app-client-secret"


class Admin:
    def __init__(self, shop: FakeShopify) -> None:
        self.client = httpx.Client(transport=httpx.WSGITransport(app=create_fake_shopify_app(shop)))

    def call(self, operation: GraphQLOperation, **variables: Any) -> dict[str, Any]:
        answer = self.client.post(
            "http://shop/admin/api/2026-07/graphql.json",
            headers={"X-Shopify-Access-Token": TOKEN},
            json={"query": operation.document, "variables": variables, "operationName": operation.name},
        ).json()
        assert "errors" not in answer, answer
        data: dict[str, Any] = next(iter(answer["data"].values()))
        return data


@pytest.fixture
def callbacks() -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """A service's callback endpoint on loopback that records what it gets."""
    got: list[tuple[bytes, dict[str, str]]] = []
    app = Flask("callbacks")

    @app.post("/svc/fulfillment_order_notification")
    def notification() -> tuple[str, int]:
        got.append((request.get_data(), dict(request.headers)))
        return "", 200

    with serve_in_thread(app) as server:
        yield server.base_url + "/svc", got


@pytest.fixture
def shop(clock: ManualClock) -> FakeShopify:
    return FakeShopify(TOKEN, clock, app_secret=SECRET)


def fo_gid(shop: FakeShopify, order_id: str, index: int = 0) -> str:
    return f"gid://shopify/FulfillmentOrder/{shop.fulfillment_orders(order_id)[index].id}"


def test_requests_follow_shopifys_state_rules_and_callbacks_are_signed(
    shop: FakeShopify, callbacks: tuple[str, list[tuple[bytes, dict[str, str]]]]
) -> None:
    url, got = callbacks
    admin = Admin(shop)
    created = admin.call(FULFILLMENT_SERVICE_CREATE, name="Amazon", callbackUrl=url)
    assert created["userErrors"] == []
    again = admin.call(FULFILLMENT_SERVICE_CREATE, name="amazon", callbackUrl=url)
    assert again["userErrors"][0]["message"] == "Name has already been taken"
    shop.add_order("1", [("11", "A", 1)], locations="Amazon")
    fo = fo_gid(shop, "1")

    early = admin.call(ACCEPT_FULFILLMENT_REQUEST, id=fo, message=None)
    assert early["userErrors"], "a request can be accepted only while it is submitted"
    not_accepted = admin.call(
        FULFILLMENT_CREATE,
        fulfillment={
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo}],
            "trackingInfo": {"number": "T1"},
        },
    )
    assert "has not been accepted" in not_accepted["userErrors"][0]["message"]

    assert shop.request_fulfillment("1") == 200
    body, headers = got[-1]
    assert json.loads(body) == {"kind": "FULFILLMENT_REQUEST"}
    assert headers["X-Shopify-Hmac-Sha256"] == hmac_sha256_b64(SECRET.encode(), body)
    listed = admin.call(
        ASSIGNED_FULFILLMENT_ORDERS, status="FULFILLMENT_REQUESTED", locationIds=None, after=None
    )
    assert [n["id"] for n in listed["nodes"]] == [fo]

    accepted = admin.call(ACCEPT_FULFILLMENT_REQUEST, id=fo, message="ok")
    assert accepted["fulfillmentOrder"] == {"id": fo, "status": "IN_PROGRESS", "requestStatus": "ACCEPTED"}
    twice = admin.call(REJECT_FULFILLMENT_REQUEST, id=fo, reason="OTHER", message="no")
    assert twice["userErrors"], "an accepted request cannot be rejected"

    with pytest.raises(ValueError):
        shop.request_fulfillment("1")  # already accepted
    assert shop.request_cancellation("1") == 200
    assert json.loads(got[-1][0]) == {"kind": "CANCELLATION_REQUEST"}
    done = admin.call(ACCEPT_CANCELLATION_REQUEST, id=fo, message=None)
    assert done["fulfillmentOrder"]["status"] == "CLOSED"
    assert done["fulfillmentOrder"]["requestStatus"] == "CANCELLATION_ACCEPTED"


def test_another_apps_fulfillment_orders_are_neither_listed_nor_fulfillable(shop: FakeShopify) -> None:
    admin = Admin(shop)
    shop.add_fulfillment_service("Print on demand", None)
    shop.add_order("2", [("21", "A", 1)], locations="Print on demand")
    fo = fo_gid(shop, "2")

    listed = admin.call(ASSIGNED_FULFILLMENT_ORDERS, status=None, locationIds=None, after=None)
    refused = admin.call(
        FULFILLMENT_CREATE,
        fulfillment={
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo}],
            "trackingInfo": {"number": "T"},
        },
    )
    answer = admin.call(ACCEPT_FULFILLMENT_REQUEST, id=fo, message=None)

    assert listed["nodes"] == []
    assert "another fulfillment service" in refused["userErrors"][0]["message"]
    assert answer["userErrors"]


def test_merchant_requests_can_be_driven_over_http(
    shop: FakeShopify, callbacks: tuple[str, list[tuple[bytes, dict[str, str]]]]
) -> None:
    url, got = callbacks
    Admin(shop).call(FULFILLMENT_SERVICE_CREATE, name="Amazon", callbackUrl=url)
    client = httpx.Client(
        transport=httpx.WSGITransport(app=create_fake_shopify_app(shop)), base_url="http://shop"
    )
    location = client.post("/_fake/locations", json={"name": "Warehouse"})
    seeded = client.post(
        "/_fake/orders",
        json={
            "order_id": "3",
            "lines": [{"line_id": "31", "sku": "A", "quantity": 1}],
            "locations": "Amazon",
        },
    )
    asked = client.post("/_fake/orders/3/fulfillment_orders/0/request_fulfillment")
    again = client.post("/_fake/orders/3/fulfillment_orders/0/request_fulfillment")
    shown = client.get("/_fake/orders/3").json()

    assert location.status_code == 201 and location.json()["id"].startswith("gid://shopify/Location/")
    assert seeded.status_code == 201 and asked.json() == {"callback_status": 200} and len(got) == 1
    assert again.status_code == 409
    assert shown["fulfillment_orders"][0]["request_status"] == "SUBMITTED"
