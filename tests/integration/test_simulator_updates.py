"""The simulator's updateFulfillmentOrder, which amendments rely on: address and speed while the
order is New/Received/Planning, item quantities only on hold, nothing once Amazon is picking."""

from __future__ import annotations

import pytest

from tests.integration.test_simulator import ADDRESS, HOUR, Harness, _error, item, order_body


@pytest.fixture
def h() -> Harness:
    return Harness()


def update(h: Harness, sfo_id: str, **body: object) -> int:
    return h.call("PUT", f"/fulfillmentOrders/{sfo_id}", json=body).status_code


def test_address_and_speed_change_while_received_or_planning(h: Harness) -> None:
    assert h.create(order_body("U-1")).status_code == 200
    moved = dict(ADDRESS, addressLine1="2 Difference Engine Rd")
    assert update(h, "U-1", destinationAddress=moved, shippingSpeedCategory="Expedited") == 200
    h.clock.advance(15 * 60)
    assert h.status("U-1") == "Planning"
    assert update(h, "U-1", shippingSpeedCategory="Priority") == 200
    order = h.order("U-1")["fulfillmentOrder"]
    assert order["destinationAddress"]["addressLine1"] == "2 Difference Engine Rd"
    assert order["shippingSpeedCategory"] == "Priority"


def test_nothing_changes_once_amazon_is_processing(h: Harness) -> None:
    h.create(order_body("U-2"))
    h.clock.advance(2 * HOUR)
    assert h.status("U-2") == "Processing"
    response = h.call("PUT", "/fulfillmentOrders/U-2", json={"shippingSpeedCategory": "Priority"})
    assert response.status_code == 400 and _error(response)["code"] == "InvalidInput"
    assert h.order("U-2")["fulfillmentOrder"]["shippingSpeedCategory"] == "Standard"


def test_item_quantities_change_only_on_hold(h: Harness) -> None:
    h.create(order_body("U-3", [item(quantity=3)]))
    refused = h.call(
        "PUT",
        "/fulfillmentOrders/U-3",
        json={"items": [{"sellerFulfillmentOrderItemId": "line-1", "quantity": 2}]},
    )
    assert refused.status_code == 400 and "on hold" in _error(refused)["message"]
    h.create(order_body("U-4", [item(quantity=3)], fulfillmentAction="Hold"))
    assert update(h, "U-4", items=[{"sellerFulfillmentOrderItemId": "line-1", "quantity": 2}]) == 200
    [line] = h.order("U-4")["fulfillmentOrderItems"]
    assert line["quantity"] == 2
