"""No 500 for any input the schemas accept: every length fits its column (or is hashed before
lookup and insert), control characters are stripped (Shopify, WooCommerce) or refused with the
field named (generic). Meant for PostgreSQL (BRIDGE_TEST_DATABASE_URL), which enforces column
widths and refuses U+0000 in text; it runs on SQLite too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bridge.bootstrap import Bridge
from bridge.schemas import load_schema
from bridge.store import (
    DELIVERY_KEY_LENGTH,
    EXTERNAL_ID_LENGTH,
    DeliveryRecord,
    OrderEventRecord,
    OrderRecord,
)
from bridge.store import read_session as reading
from tests.support import fixture, generic_delivery, shopify_delivery, shopify_order, woo_delivery, woo_order

SHOP = "/webhooks/shop-a"
WOO = "/webhooks/woo-main"
OWN = "/webhooks/own-shop"


def post(client: FlaskClient, url: str, delivery: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = delivery
    return client.post(url, data=body, headers=headers)


def count(db: Engine, model: type) -> int:
    with reading(db) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def generic_order(**order: Any) -> dict[str, Any]:
    body = fixture("generic/order_upsert.json")
    body["order"].update(order)
    return body


def test_the_generic_schema_fits_the_columns() -> None:
    external = load_schema("canonical_order")["$defs"]["externalId"]["pattern"]
    assert f"{{1,{EXTERNAL_ID_LENGTH}}}" in external


def test_a_generic_order_id_of_the_maximum_length_is_stored_and_found_again(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    longest = "A" * EXTERNAL_ID_LENGTH
    first = post(client, OWN, generic_delivery(generic_order(external_id=longest), bridge.clock.now()))
    assert (first.status_code, first.json["outcome"]) == (200, "created"), first.get_data(as_text=True)
    cancel = {"type": "order.cancel", "order": {"external_id": longest, "updated_at": "2026-11-23T12:30:00Z"}}
    again = post(client, OWN, generic_delivery(cancel, bridge.clock.now()))
    assert (again.status_code, again.json["outcome"]) == (200, "cancelled")
    assert count(db, OrderRecord) == 1


@pytest.mark.parametrize("length", [DELIVERY_KEY_LENGTH, DELIVERY_KEY_LENGTH + 1, 255])
def test_a_generic_retry_with_a_long_webhook_id_is_a_duplicate_not_a_500(
    client: FlaskClient, bridge: Bridge, db: Engine, length: int
) -> None:
    msg_id = "m" * length
    for expected in ("accepted", "duplicate"):
        response = post(client, OWN, generic_delivery(generic_order(), bridge.clock.now(), msg_id=msg_id))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.json["status"] == expected
    assert count(db, DeliveryRecord) == 1


def test_a_shopify_retry_with_a_very_long_webhook_id_is_a_duplicate(client: FlaskClient, db: Engine) -> None:
    for expected in ("accepted", "duplicate"):
        response = post(client, SHOP, shopify_delivery(shopify_order(), webhook_id="w" * 1000))
        assert (response.status_code, response.json["status"]) == (200, expected)
    assert count(db, DeliveryRecord) == 1


def test_every_generic_text_field_at_its_maximum_length_is_stored(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    destination = {
        "name": "n" * 255,
        "line1": "a" * 255,
        "line2": "b" * 255,
        "line3": "c" * 255,
        "company": "d" * 255,
        "city": "e" * 255,
        "district": "f" * 255,
        "state": "g" * 255,
        "postal_code": "1" * 64,
        "country_code": "DE",
        "phone": "2" * 64,
    }
    line = {
        "line_id": "L" * 255,
        "sku": "S" * 255,
        "quantity": 1,
        "unit_price": "1.00",
        "title": "t" * 500,
    }
    body = generic_order(
        external_id="X" * 255,
        display_id="#" * 255,
        shipping_method="m" * 255,
        shipping_method_code="c" * 255,
        buyer_email="e" * 310 + "@x.example",
        buyer_phone="3" * 64,
        notes="n" * 4000,
        gift_message="g" * 1000,
        destination=destination,
        lines=[line],
    )
    body["type"] = "t" * 100
    assert post(client, OWN, generic_delivery(body, bridge.clock.now())).status_code == 200
    body["type"] = "order.upsert"
    response = post(client, OWN, generic_delivery(body, bridge.clock.now()))
    assert (response.status_code, response.json["outcome"]) == (200, "created"), response.get_data(
        as_text=True
    )


def test_shopify_text_at_its_maximum_length_is_stored(client: FlaskClient, db: Engine) -> None:
    order = shopify_order()
    order["name"] = "#" * 255
    order["line_items"][0]["sku"] = "S" * 255
    response = post(client, SHOP, shopify_delivery(order))
    assert (response.status_code, response.json["outcome"]) == (200, "created")


CONTROL = "\u0000\u0001\u001b\u007f"


def test_shopify_control_characters_are_stripped_and_the_paths_noted(client: FlaskClient, db: Engine) -> None:
    order = shopify_order()
    order["name"] = f"#10{CONTROL}01"
    order["note"] = f"ring{CONTROL} twice\ttab\nline"
    order["shipping_address"]["city"] = f"Spring{CONTROL}field"
    order["line_items"][0]["title"] = f"T-shirt{CONTROL}"
    response = post(client, SHOP, shopify_delivery(order))
    assert (response.status_code, response.json["outcome"]) == (200, "created"), response.get_data(
        as_text=True
    )
    with reading(db) as session:
        row = session.execute(select(OrderRecord)).scalars().one()
        reasons = " ".join(session.execute(select(OrderEventRecord.reason)).scalars())
    assert row.display_id == "#1001"
    assert row.data["notes"] == "ring twice\ttab\nline", "tab and line breaks are text, not control noise"
    assert row.data["destination"]["city"] == "Springfield"
    assert "control characters removed from" in reasons and "$.note" in reasons


def test_woocommerce_control_characters_are_stripped(client: FlaskClient, db: Engine) -> None:
    order = woo_order()
    order["number"] = f"70{CONTROL}0"
    order["customer_note"] = f"a{CONTROL}b"
    order["shipping"]["city"] = f"Spring{CONTROL}field"
    response = post(client, WOO, woo_delivery(order))
    assert (response.status_code, response.json["outcome"]) == (200, "created"), response.get_data(
        as_text=True
    )
    with reading(db) as session:
        row = session.execute(select(OrderRecord)).scalars().one()
    assert row.display_id == "700" and row.data["notes"] == "ab"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"notes": "leave\u0000here"}, "$.order.notes"),
        ({"display_id": "#1\u00001"}, "$.order.display_id"),
        ({"shipping_method": "Express\u001b"}, "$.order.shipping_method"),
    ],
)
def test_generic_control_characters_are_refused_naming_the_field(
    client: FlaskClient, bridge: Bridge, db: Engine, change: dict[str, str], path: str
) -> None:
    response = post(client, OWN, generic_delivery(generic_order(**change), bridge.clock.now()))
    assert response.status_code == 422
    assert response.json["error"] == "control_character"
    assert [p["path"] for p in response.json["problems"]] == [path]
    assert "\u0000" not in json.dumps(response.json)
    assert count(db, DeliveryRecord) == 0


def test_a_control_character_in_a_generic_line_title_is_refused(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    body = generic_order()
    body["order"]["lines"][0]["title"] = "Blue\u0000mug"
    response = post(client, OWN, generic_delivery(body, bridge.clock.now()))
    assert response.status_code == 422
    assert response.json["problems"][0]["path"] == "$.order.lines[0].title"


def test_an_amazon_notification_with_a_control_character_is_refused_naming_the_field(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    from bridge.settings import Secret
    from tests.integration.test_sync import notification

    bridge.settings = type(bridge.settings)(notifications_token=Secret("relay-token"))
    headers = {"Authorization": "Bearer relay-token", "Content-Type": "application/json"}
    for field, value in (("SellerFulfillmentOrderId", "shop-a-1\u0000"), ("EventType", "Ship\u0000ment")):
        body = notification("shop-a-1")
        body["Payload"]["FulfillmentOrderStatusNotification"][field] = value
        response = client.post("/notifications/amazon", data=json.dumps(body), headers=headers)
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.json["problems"][0]["path"] == f"$.Payload.FulfillmentOrderStatusNotification.{field}"
    assert count(db, DeliveryRecord) == 0


def test_ids_of_twenty_digits_are_stored_and_longer_ones_parked(client: FlaskClient, db: Engine) -> None:
    longest = 10**20 - 1
    assert post(client, SHOP, shopify_delivery(shopify_order(longest))).json["outcome"] == "created"
    assert post(client, WOO, woo_delivery(woo_order(longest))).json["outcome"] == "created"
    for url, delivery in (
        (SHOP, shopify_delivery(shopify_order(10**300))),
        (WOO, woo_delivery(woo_order(10**300))),
        (WOO, woo_delivery({"id": 10**300}, topic="order.deleted")),
    ):
        response = post(client, url, delivery)
        assert (response.status_code, response.json["outcome"]) == (200, "schema_refused")
    assert count(db, OrderRecord) == 2


def test_control_characters_in_object_keys_never_reach_a_column(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    order = shopify_order()
    order["admin_graphql_api_id"] = {"\u0000key": "\b"}
    response = post(client, SHOP, shopify_delivery(order))
    assert (response.status_code, response.json["outcome"]) == (200, "created"), response.get_data(
        as_text=True
    )
    with reading(db) as session:
        reasons = " ".join(session.execute(select(OrderEventRecord.reason)).scalars())
    assert "$.admin_graphql_api_id.?key" in reasons

    refused = shopify_order(1002)
    refused["line_items"][0]["\u0000" * 100] = 1
    refused["line_items"][0]["quantity"] = "many"
    assert post(client, SHOP, shopify_delivery(refused)).json["outcome"] == "schema_refused"

    body = generic_order()
    body["order"]["destination"]["\u0000x"] = "y"
    assert post(client, OWN, generic_delivery(body, bridge.clock.now())).status_code == 422
