"""What reaches Amazon is what the storefront wants shipped: webhooks over HTTP, the simulator
behind the SP-API client, the audit trail for what happened (issue 10, items 1, 2, 6, 8, 9)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask.testing import FlaskClient

from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.worker import Worker
from tests.integration.test_submit import _reasons, order_row
from tests.support import (
    fixture,
    generic_delivery,
    shopify_delivery,
    shopify_line,
    shopify_order,
    woo_delivery,
    woo_order,
)


def configure(bridge: Bridge, channel_id: str, **changes: Any) -> None:
    channel = replace(bridge.config.channels[channel_id], **changes)
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, channel_id: channel})


def post_shopify(client: FlaskClient, order: dict[str, Any]) -> None:
    body, headers = shopify_delivery(order)
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def post_woo(client: FlaskClient, order: dict[str, Any], topic: str = "order.created") -> None:
    body, headers = woo_delivery(order, topic)
    assert client.post("/webhooks/woo-main", data=body, headers=headers).status_code == 200


def amazon_order(simulator: Simulator, sfo_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = simulator.get_fulfillment_order(sfo_id)["payload"]
    return payload


# ---------------------------------------------------------------------------------------------
# 1. Test orders


def test_a_shopify_test_order_never_reaches_amazon_and_the_log_says_why(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    post_shopify(client, shopify_order(8101, test=True))
    worker.drain()
    row = order_row(bridge, "8101")
    assert row.state == "not_for_amazon"
    assert "test order" in _reasons(bridge, row) and "test_orders: ship" in _reasons(bridge, row)
    assert simulator.ledger.calls("getFulfillmentPreview") == 0
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_a_test_order_ships_when_the_channel_says_so_and_the_log_says_so(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "shop-a", test_orders="ship")
    post_shopify(client, shopify_order(8102, test=True))
    worker.drain()
    row = order_row(bridge, "8102")
    assert row.state == "submitted" and simulator.ledger.creates("shop-a-8102") == 1
    assert "test order sent to Amazon because channel shop-a has test_orders: ship" in _reasons(bridge, row)


def test_the_generic_channel_carries_the_test_flag(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    body = fixture("generic/order_upsert.json")
    body["order"].update(external_id="G-TEST", test=True)
    body["order"]["destination"]["country_code"] = "US"
    raw, headers = generic_delivery(body, bridge.clock.now())
    assert client.post("/webhooks/own-shop", data=raw, headers=headers).status_code == 200
    worker.drain()
    assert order_row(bridge, "G-TEST").state == "not_for_amazon"
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


# ---------------------------------------------------------------------------------------------
# 2. Edited and refunded quantities


def test_only_the_fulfillable_quantity_ships_and_emptied_lines_are_left_out(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = shopify_order(8201)
    template = order["line_items"][0]
    order["line_items"] = [
        # ordered 3, one removed by an order edit, one refunded: 1 left to fulfil
        shopify_line(template, id=91, sku="TSHIRT-RED-M", quantity=3, current_quantity=1),
        # ordered 2, both refunded
        shopify_line(template, id=92, sku="MUG-WHITE", quantity=2, current_quantity=0),
    ]
    post_shopify(client, order)
    worker.drain()
    assert order_row(bridge, "8201").state == "submitted"
    items = amazon_order(simulator, "shop-a-8201")["fulfillmentOrderItems"]
    assert [(i["sellerSku"], i["quantity"]) for i in items] == [("FBA-TSHIRT-RED-M", 1)]


def test_units_someone_already_fulfilled_are_not_shipped_again(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = shopify_order(8202)
    order["line_items"] = [shopify_line(order["line_items"][0], id=93, quantity=2, fulfillable_quantity=1)]
    post_shopify(client, order)
    worker.drain()
    items = amazon_order(simulator, "shop-a-8202")["fulfillmentOrderItems"]
    assert [i["quantity"] for i in items] == [1]


# ---------------------------------------------------------------------------------------------
# 6. WooCommerce orders without a shipping address


def test_a_woocommerce_virtual_order_is_not_for_amazon(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = woo_order(8601)
    order.update(shipping=None, shipping_lines=[])
    post_woo(client, order)
    worker.drain()
    row = order_row(bridge, "8601")
    assert row.state == "not_for_amazon", "not parked as if it needed shipping"
    assert "no line requires shipping" in _reasons(bridge, row)
    assert simulator.ledger.calls("getFulfillmentPreview") == 0


def test_a_physical_woocommerce_order_without_shipping_address_is_parked_not_shipped_to_billing(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = woo_order(8602)
    order["shipping"] = {key: "" for key in order["shipping"]}
    post_woo(client, order)
    worker.drain()
    row = order_row(bridge, "8602")
    assert row.state == "needs_attention"
    assert "no shipping address" in row.attention_reason
    assert "shipping_address_fallback: billing" in row.attention_reason
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_the_billing_address_is_used_when_the_channel_opts_in(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "woo-main", shipping_address_fallback="billing")
    order = woo_order(8603)
    order["shipping"] = None
    order["billing"].update(address_1="7 Billing Row", postcode="94107", country="US")
    post_woo(client, order)
    worker.drain()
    assert order_row(bridge, "8603").state == "submitted"
    address = amazon_order(simulator, "woo-main-8603")["fulfillmentOrder"]["destinationAddress"]
    assert (address["addressLine1"], address["postalCode"]) == ("7 Billing Row", "94107")


# ---------------------------------------------------------------------------------------------
# 8. shipping.map by code


def test_shipping_map_matches_the_shipping_code_when_the_title_is_not_listed(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    shop = bridge.config.channels["shop-a"]
    configure(bridge, "shop-a", shipping_map={**shop.shipping_map, "next-day-air": "Priority"})
    order = shopify_order(8801)
    order["shipping_lines"] = [
        dict(order["shipping_lines"][0], title="Overnight (order by 2 pm)", code="NEXT-DAY-AIR")
    ]
    post_shopify(client, order)
    worker.drain()
    assert amazon_order(simulator, "shop-a-8801")["fulfillmentOrder"]["shippingSpeedCategory"] == "Priority"


def test_woocommerce_shipping_method_id_is_the_code(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    woo = bridge.config.channels["woo-main"]
    configure(bridge, "woo-main", shipping_map={**woo.shipping_map, "flexible_shipping_express": "Expedited"})
    order = woo_order(8802)
    order["shipping_lines"] = [{"id": 1, "method_title": "Fast!", "method_id": "flexible_shipping_express"}]
    post_woo(client, order)
    worker.drain()
    assert (
        amazon_order(simulator, "woo-main-8802")["fulfillmentOrder"]["shippingSpeedCategory"] == "Expedited"
    )


# ---------------------------------------------------------------------------------------------
# 9. Countries without postal codes


def _emirates_order(order_id: int) -> dict[str, Any]:
    order = shopify_order(order_id)
    order["shipping_address"].update(country_code="AE", zip=None, province_code=None, city="Dubai")
    return order


def test_an_address_without_postal_code_is_parked_saying_amazon_needs_one(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "shop-a", countries=None)
    post_shopify(client, _emirates_order(8901))
    worker.drain()
    row = order_row(bridge, "8901")
    assert row.state == "needs_attention"
    assert "Amazon requires a postal code" in row.attention_reason
    assert 'postal_code_fallback: {AE: "00000"}' in row.attention_reason
    assert simulator.ledger.calls("getFulfillmentPreview") == 0


def test_a_placeholder_postal_code_is_sent_only_when_the_channel_opts_in(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "shop-a", countries=None, postal_code_fallback={"AE": "000000"})
    post_shopify(client, _emirates_order(8902))
    worker.drain()
    row = order_row(bridge, "8902")
    assert row.state == "submitted"
    address = amazon_order(simulator, "shop-a-8902")["fulfillmentOrder"]["destinationAddress"]
    assert (address["countryCode"], address["postalCode"]) == ("AE", "000000")
    assert "placeholder for AE" in _reasons(bridge, row)
