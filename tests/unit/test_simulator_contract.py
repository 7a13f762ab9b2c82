"""The simulator answers in Amazon's shapes: every response it gives for an operation validates
against that operation's response schema in Amazon's model (required fields, enums, types,
timestamp formats), so the bridge's parsers are tested against what Amazon documents, not only
against what the simulator happens to send."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bridge.amazon.contract import OUTBOUND_2020_07_01, json_schema, load_model, operations
from bridge.amazon.simulator import ApiError, Simulator, SimulatorConfig, SkuConfig
from bridge.clock import ManualClock
from bridge.schemas import FORMAT_CHECKER

MODEL = load_model(OUTBOUND_2020_07_01)
OPERATIONS = operations(MODEL)
ADDRESS = {
    "name": "N",
    "addressLine1": "1 Way",
    "city": "Seattle",
    "postalCode": "98101",
    "countryCode": "US",
}


@cache
def response_validator(operation: str, status: str) -> Draft202012Validator:
    schema = json_schema(MODEL, OPERATIONS[operation].responses[status])
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def assert_amazon_shape(operation: str, body: Any, status: str = "200") -> None:
    errors = list(response_validator(operation, status).iter_errors(body))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:120]}" for e in errors]


def order(sfo_id: str, items: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "sellerFulfillmentOrderId": sfo_id,
        "displayableOrderId": sfo_id,
        "displayableOrderDate": "2026-11-23T11:00:00Z",
        "displayableOrderComment": "Thanks",
        "shippingSpeedCategory": "Standard",
        "destinationAddress": ADDRESS,
        "items": items,
        **fields,
    }


def line(sku: str, item_id: str, quantity: int = 1) -> dict[str, Any]:
    return {"sellerSku": sku, "sellerFulfillmentOrderItemId": item_id, "quantity": quantity}


@pytest.fixture
def sim() -> tuple[Simulator, ManualClock]:
    clock = ManualClock()
    skus = {"SKU-A": SkuConfig(quantity=100), "SKU-S": SkuConfig(quantity=5, split=True)}
    return Simulator(SimulatorConfig(skus=skus), clock=clock, rate_clock=ManualClock()), clock


def test_every_operation_answers_in_the_shape_amazons_model_documents(
    sim: tuple[Simulator, ManualClock],
) -> None:
    s, clock = sim
    preview = s.get_fulfillment_preview(
        {"address": ADDRESS, "items": [line("SKU-A", "a"), line("SKU-X", "x")], "shippingSpeedCategories": []}
    )
    assert_amazon_shape("getFulfillmentPreview", preview)
    assert_amazon_shape(
        "createFulfillmentOrder",
        s.create_fulfillment_order(order("o1", [line("SKU-A", "a"), line("SKU-S", "s", 2)])),
    )
    assert_amazon_shape("getFulfillmentOrder", s.get_fulfillment_order("o1"))
    clock.advance(6 * 3600)
    shipped = s.get_fulfillment_order("o1")
    assert_amazon_shape("getFulfillmentOrder", shipped)
    assert len(shipped["payload"]["fulfillmentShipments"]) == 2, "split SKUs ship apart"
    start = (clock.now() - timedelta(days=1)).isoformat()
    assert_amazon_shape("listAllFulfillmentOrders", s.list_all_fulfillment_orders(start))
    shipment = shipped["payload"]["fulfillmentShipments"][0]
    package = shipment["fulfillmentShipmentPackage"][0]["packageNumber"]
    assert_amazon_shape("getPackageTrackingDetails", s.get_package_tracking_details(str(package)))
    assert_amazon_shape(
        "listReturnReasonCodes", s.list_return_reason_codes("SKU-A", "ATVPDKIKX0DER", None, "en_US")
    )
    returned = s.create_fulfillment_return(
        "o1",
        {
            "items": [
                {
                    "sellerReturnItemId": "r1",
                    "sellerFulfillmentOrderItemId": shipment["fulfillmentShipmentItem"][0][
                        "sellerFulfillmentOrderItemId"
                    ],
                    "amazonShipmentId": shipment["amazonShipmentId"],
                    "returnReasonCode": "CR-DEFECTIVE",
                },
                {
                    "sellerReturnItemId": "r2",
                    "sellerFulfillmentOrderItemId": "nope",
                    "amazonShipmentId": shipment["amazonShipmentId"],
                    "returnReasonCode": "CR-DEFECTIVE",
                },
            ]
        },
    )
    assert_amazon_shape("createFulfillmentReturn", returned)
    assert returned["payload"]["returnItems"] and returned["payload"]["invalidReturnItems"]
    assert_amazon_shape("getFulfillmentOrder", s.get_fulfillment_order("o1"))
    assert_amazon_shape("getFeatures", s.get_features("ATVPDKIKX0DER"))
    s.create_fulfillment_order(order("o2", [line("SKU-A", "a")], fulfillmentAction="Hold"))
    assert_amazon_shape(
        "updateFulfillmentOrder", s.update_fulfillment_order("o2", {"displayableOrderComment": "x"})
    )
    assert_amazon_shape("cancelFulfillmentOrder", s.cancel_fulfillment_order("o2"))
    assert_amazon_shape("getFulfillmentOrder", s.get_fulfillment_order("o2"))


def test_refusals_answer_in_amazons_error_shape(sim: tuple[Simulator, ManualClock]) -> None:
    s, _ = sim
    with pytest.raises(ApiError) as bad:
        s.create_fulfillment_order(order("o3", [line("SKU-A", "a")], shippingSpeedCategory="Overnight"))
    assert bad.value.status == 400
    assert_amazon_shape("createFulfillmentOrder", bad.value.body(), "400")
    with pytest.raises(ApiError) as missing:
        s.get_fulfillment_order("ghost")
    # Amazon answers an unknown order with 400 InvalidInput (the simulator's faithful default).
    assert missing.value.status == 400
    assert_amazon_shape("getFulfillmentOrder", missing.value.body(), "400")
