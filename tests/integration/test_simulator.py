"""The MCF simulator behaves like Amazon's Fulfillment Outbound API, over HTTP.

Most tests route an httpx client into the Flask app in process (httpx.WSGITransport); the
connection-drop and concurrency tests also go over real loopback HTTP with `serve_in_thread`.
Both simulator clocks are ManualClocks: time only moves when a test says so.
"""

from __future__ import annotations

import email.utils
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bridge.amazon.simulator import (
    Credentials,
    OperationLimit,
    Simulator,
    SimulatorConfig,
    SkuConfig,
    create_simulator_app,
    serve_in_thread,
)
from bridge.amazon.simulator.render import iso
from bridge.clock import ManualClock

BASE = "/fba/outbound/2020-07-01"
MINUTE, HOUR, DAY = 60, 3600, 86400

ADDRESS = {
    "name": "Ada Lovelace",
    "addressLine1": "1 Analytical Way",
    "city": "Seattle",
    "stateOrRegion": "WA",
    "postalCode": "98101",
    "countryCode": "US",
    "phone": "206-555-0100",
}

SKUS = {
    "SKU-A": SkuConfig(quantity=100),
    "SKU-B": SkuConfig(quantity=100),
    "SKU-FEW": SkuConfig(quantity=1),
    "SKU-NONE": SkuConfig(quantity=0),
    "SKU-SPLIT": SkuConfig(quantity=10, split=True),
    "SKU-LOST": SkuConfig(quantity=10, cancelled_by_fulfiller=True),
}


def item(sku: str = "SKU-A", item_id: str = "line-1", quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {"sellerSku": sku, "sellerFulfillmentOrderItemId": item_id, "quantity": quantity, **extra}


def order_body(sfo_id: str, items: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sellerFulfillmentOrderId": sfo_id,
        "displayableOrderId": sfo_id,
        "displayableOrderDate": "2026-11-23T11:00:00Z",
        "displayableOrderComment": "Thank you for your order",
        "shippingSpeedCategory": "Standard",
        "destinationAddress": ADDRESS,
        "items": items or [item()],
    }
    body.update(fields)
    return body


class Harness:
    """A simulator on ManualClocks, its Flask app, and an in-process client holding a token."""

    def __init__(self, config: SimulatorConfig | None = None, refresh_token: str = "sim-refresh") -> None:
        self.clock = ManualClock()
        self.rate_clock = ManualClock()
        self.delay_clock = ManualClock()
        self.sim = Simulator(
            config or SimulatorConfig(skus=SKUS),
            clock=self.clock,
            rate_clock=self.rate_clock,
            delay_clock=self.delay_clock,
        )
        self.app = create_simulator_app(self.sim)
        self.http = self.client()
        self.token = self.grant(refresh_token)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.WSGITransport(app=self.app), base_url="http://sim")

    def grant(self, refresh_token: str = "sim-refresh", http: httpx.Client | None = None) -> str:
        response = (http or self.http).post("/auth/o2/token", data=_grant_form(refresh_token))
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"x-amz-access-token": token or self.token, **kwargs.pop("headers", {})}
        return self.http.request(method, BASE + path, headers=headers, **kwargs)

    def create(self, body: dict[str, Any]) -> httpx.Response:
        return self.call("POST", "/fulfillmentOrders", json=body)

    def order(self, sfo_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/fulfillmentOrders/{sfo_id}")
        assert response.status_code == 200, response.text
        return dict(response.json()["payload"])

    def status(self, sfo_id: str) -> str:
        return str(self.order(sfo_id)["fulfillmentOrder"]["fulfillmentOrderStatus"])


def _grant_form(refresh_token: str = "sim-refresh", **over: str) -> dict[str, str]:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": "sim-client",
        "client_secret": "sim-secret",
    }
    form.update(over)
    return form


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error = dict(body["errors"][0])
    assert set(error) == {"code", "message", "details"}
    return error


@pytest.fixture
def h() -> Harness:
    return Harness()


# ----------------------------------------------------------------------------- LWA and tokens


def test_token_grant_returns_a_bearer_token_valid_for_an_hour(h: Harness) -> None:
    response = h.http.post("/auth/o2/token", data=_grant_form())
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].startswith("Atza|")
    assert h.call(
        "GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"}, token=body["access_token"]
    ).is_success


def test_token_grant_rejects_an_unknown_refresh_token_with_invalid_grant(h: Harness) -> None:
    response = h.http.post("/auth/o2/token", data=_grant_form("not-a-token"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.json()["error_description"]


@pytest.mark.parametrize("override", [{"client_id": "other"}, {"client_secret": "wrong"}])
def test_token_grant_rejects_wrong_client_credentials_with_invalid_client(
    h: Harness, override: dict[str, str]
) -> None:
    response = h.http.post("/auth/o2/token", data=_grant_form(**override))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_token_grant_rejects_other_grant_types(h: Harness) -> None:
    response = h.http.post("/auth/o2/token", data=_grant_form(grant_type="authorization_code"))
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_a_grantless_grant_needs_a_known_scope(h: Harness) -> None:
    form = _grant_form(grant_type="client_credentials")
    del form["refresh_token"]
    assert h.http.post("/auth/o2/token", data=form).json()["error"] == "invalid_scope"
    granted = h.http.post("/auth/o2/token", data={**form, "scope": "sellingpartnerapi::notifications"})
    assert granted.status_code == 200
    assert granted.json()["scope"] == "sellingpartnerapi::notifications"
    assert "refresh_token" not in granted.json()


def test_a_revoked_refresh_token_gets_invalid_grant_until_restored(h: Harness) -> None:
    assert h.http.post("/_sim/tokens/revoke", json={}).status_code == 200
    assert h.http.post("/auth/o2/token", data=_grant_form()).json()["error"] == "invalid_grant"
    h.http.post("/_sim/tokens/restore")
    assert h.http.post("/auth/o2/token", data=_grant_form()).status_code == 200


def test_revoking_the_authorisation_revokes_its_access_tokens_until_reauthorised(h: Harness) -> None:
    features = {"marketplaceId": "ATVPDKIKX0DER"}
    h.http.post("/_sim/tokens/revoke", json={})
    revoked = h.call("GET", "/features", params=features)
    assert revoked.status_code == 403
    assert _error(revoked)["details"] == "The access token you provided is revoked, malformed or invalid."
    assert h.http.post("/auth/o2/token", data=_grant_form()).json()["error"] == "invalid_grant"
    assert h.http.post("/_sim/tokens/reauthorise").status_code == 200
    assert h.call("GET", "/features", params=features).status_code == 403, "the old token stays dead"
    assert h.call("GET", "/features", params=features, token=h.grant()).status_code == 200


def test_access_tokens_surviving_a_revoked_grant_is_the_kind_option(h: Harness) -> None:
    h.sim.set_fidelity(revoke_access_tokens_with_grant=False)
    h.http.post("/_sim/tokens/revoke", json={})
    assert h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"}).status_code == 200


def test_revoked_access_tokens_are_403_while_new_grants_work(h: Harness) -> None:
    features = {"marketplaceId": "ATVPDKIKX0DER"}
    assert h.http.post("/_sim/tokens/revoke-access").status_code == 200
    response = h.call("GET", "/features", params=features)
    assert response.status_code == 403 and "revoked, malformed or invalid" in _error(response)["details"]
    fresh = h.grant()
    assert h.call("GET", "/features", params=features, token=fresh).status_code == 200
    h.sim.inject_fault("getFeatures", kind="revoke_access_tokens")
    assert h.call("GET", "/features", params=features, token=fresh).status_code == 403


def test_access_tokens_expire_after_an_hour_of_the_rate_clock_not_the_fulfilment_clock(h: Harness) -> None:
    features = {"marketplaceId": "ATVPDKIKX0DER"}
    h.clock.advance(10 * DAY)
    h.rate_clock.advance(3599)
    assert h.call("GET", "/features", params=features).status_code == 200
    h.rate_clock.advance(1)
    response = h.call("GET", "/features", params=features)
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "Unauthorized"
    assert error["details"] == "The access token you provided has expired."
    fresh = h.grant()
    assert h.call("GET", "/features", params=features, token=fresh).status_code == 200


def test_missing_or_unknown_access_tokens_are_403_unauthorized(h: Harness) -> None:
    missing = h.http.get(BASE + "/features", params={"marketplaceId": "ATVPDKIKX0DER"})
    assert missing.status_code == 403
    assert _error(missing)["code"] == "Unauthorized"
    assert _error(missing)["details"] == "Access token is missing in the request header."
    unknown = h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"}, token="Atza|forged")
    assert unknown.status_code == 403
    assert "revoked, malformed or invalid" in _error(unknown)["details"]
    assert uuid.UUID(unknown.headers["x-amzn-RequestId"])


def test_expire_control_expires_every_issued_token_now(h: Harness) -> None:
    h.http.post("/_sim/tokens/expire")
    response = h.call("GET", "/fulfillmentOrders/anything")
    assert response.status_code == 403
    assert "expired" in _error(response)["details"]


# ----------------------------------------------------------------------------- headers and shapes


def test_responses_carry_a_request_id_and_the_applied_rate_limit(h: Harness) -> None:
    ok = h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"})
    missing = h.call("GET", "/fulfillmentOrders/nope")
    ids = {ok.headers["x-amzn-RequestId"], missing.headers["x-amzn-RequestId"]}
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)
    assert ok.headers["x-amzn-RateLimit-Limit"] == "2.0"
    assert missing.status_code == 400 and missing.headers["x-amzn-RateLimit-Limit"] == "2.0"


def test_every_response_carries_a_request_id_even_the_token_endpoint_and_unknown_routes(h: Harness) -> None:
    answers = [
        h.http.post("/auth/o2/token", data=_grant_form()),
        h.http.post("/auth/o2/token", data=_grant_form("revoked-or-unknown")),
        h.call("GET", "/no/such/route"),
        h.http.get(BASE + "/features"),  # no token: 403
    ]
    assert [a.status_code for a in answers] == [200, 400, 404, 403]
    assert all(uuid.UUID(a.headers["x-amzn-RequestId"]) for a in answers)


def test_preview_returns_one_fulfillable_preview_per_speed_with_fees_and_dates(h: Harness) -> None:
    body = {"address": ADDRESS, "items": [item(quantity=2), item("SKU-B", "line-2")]}
    response = h.call("POST", "/fulfillmentOrders/preview", json=body)
    assert response.status_code == 200
    previews = response.json()["payload"]["fulfillmentPreviews"]
    assert [p["shippingSpeedCategory"] for p in previews] == ["Standard", "Expedited", "Priority"]
    standard = previews[0]
    assert standard["isFulfillable"] is True
    assert standard["isCODCapable"] is False
    assert standard["marketplaceId"] == "ATVPDKIKX0DER"
    assert standard["unfulfillablePreviewItems"] == []
    fees = {f["name"]: f["amount"] for f in standard["estimatedFees"]}
    assert fees["FBAPerUnitFulfillmentFee"] == {"currencyCode": "USD", "value": "11.85"}
    (shipment,) = standard["fulfillmentPreviewShipments"]
    for key in ("earliestShipDate", "latestShipDate", "earliestArrivalDate", "latestArrivalDate"):
        assert shipment[key].endswith("Z")
    assert {i["sellerSku"] for i in shipment["fulfillmentPreviewItems"]} == {"SKU-A", "SKU-B"}
    one = h.call("POST", "/fulfillmentOrders/preview", json={**body, "shippingSpeedCategories": ["Priority"]})
    assert [p["shippingSpeedCategory"] for p in one.json()["payload"]["fulfillmentPreviews"]] == ["Priority"]


def test_preview_explains_why_items_and_orders_cannot_be_fulfilled(h: Harness) -> None:
    body = {
        "address": {**ADDRESS, "postalCode": "00000"},
        "items": [
            item("SKU-UNKNOWN", "a"),
            item("SKU-NONE", "b"),
            item("SKU-FEW", "c", quantity=2),
            item("SKU-A", "d"),
        ],
        "shippingSpeedCategories": ["Standard"],
    }
    (preview,) = h.call("POST", "/fulfillmentOrders/preview", json=body).json()["payload"][
        "fulfillmentPreviews"
    ]
    assert preview["isFulfillable"] is False
    reasons = {
        i["sellerFulfillmentOrderItemId"]: i["itemUnfulfillableReasons"]
        for i in preview["unfulfillablePreviewItems"]
    }
    assert reasons == {"a": ["InvalidSKU"], "b": ["InventoryUnavailable"], "c": ["InventoryUnavailable"]}
    assert preview["orderUnfulfillableReasons"] == ["InvalidDestinationAddress"]


def test_every_route_answers_with_the_models_shape(h: Harness) -> None:
    assert h.create(order_body("shape-1", [item(), item("SKU-B", "line-2", 2)])).json() == {}
    h.clock.advance(4 * HOUR)
    order = h.order("shape-1")
    assert set(order) == {
        "fulfillmentOrder",
        "fulfillmentOrderItems",
        "fulfillmentShipments",
        "returnItems",
        "returnAuthorizations",
    }
    header = order["fulfillmentOrder"]
    required = {
        "sellerFulfillmentOrderId",
        "marketplaceId",
        "displayableOrderId",
        "displayableOrderDate",
        "displayableOrderComment",
        "shippingSpeedCategory",
        "destinationAddress",
        "fulfillmentOrderStatus",
        "receivedDate",
        "statusUpdatedDate",
    }
    assert required <= set(header)
    assert header["destinationAddress"] == ADDRESS
    for line in order["fulfillmentOrderItems"]:
        assert {
            "sellerSku",
            "sellerFulfillmentOrderItemId",
            "quantity",
            "cancelledQuantity",
            "unfulfillableQuantity",
        } <= set(line)
    (shipment,) = order["fulfillmentShipments"]
    assert {
        "amazonShipmentId",
        "fulfillmentCenterId",
        "fulfillmentShipmentStatus",
        "fulfillmentShipmentItem",
    } <= set(shipment)
    listed = h.call("GET", "/fulfillmentOrders", params={"queryStartDate": "2026-01-01T00:00:00Z"}).json()
    assert [o["sellerFulfillmentOrderId"] for o in listed["payload"]["fulfillmentOrders"]] == ["shape-1"]
    package = shipment["fulfillmentShipmentPackage"][0]["packageNumber"]
    tracking = h.call("GET", "/tracking", params={"packageNumber": package}).json()["payload"]
    assert {
        "packageNumber",
        "trackingNumber",
        "carrierCode",
        "carrierURL",
        "customerTrackingLink",
        "currentStatus",
        "trackingEvents",
    } <= set(tracking)
    codes = h.call(
        "GET",
        "/returnReasonCodes",
        params={"sellerSku": "SKU-A", "marketplaceId": "ATVPDKIKX0DER", "language": "en_US"},
    )
    assert {"returnReasonCode", "description", "translatedDescription"} <= set(
        codes.json()["payload"]["reasonCodeDetails"][0]
    )
    features = h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"}).json()["payload"][
        "features"
    ]
    assert {"featureName", "featureDescription", "sellerEligible"} <= set(features[0])
    assert h.create(order_body("shape-2", fulfillmentAction="Hold")).json() == {}
    assert (
        h.call("PUT", "/fulfillmentOrders/shape-2", json={"displayableOrderComment": "Updated"}).json() == {}
    )
    assert h.call("PUT", "/fulfillmentOrders/shape-2/cancel").json() == {}


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"sellerFulfillmentOrderId": "X" * 41}, "sellerFulfillmentOrderId is too long"),
        ({"sellerFulfillmentOrderId": 12345}, "sellerFulfillmentOrderId is invalid"),
        (
            {"destinationAddress": {k: v for k, v in ADDRESS.items() if k != "addressLine1"}},
            "Missing required parameter destinationAddress.addressLine1",
        ),
        ({"destinationAddress": {**ADDRESS, "countryCode": "USA"}}, "destinationAddress.countryCode"),
        ({"destinationAddress": {**ADDRESS, "name": "Z" * 51}}, "destinationAddress.name is too long"),
        ({"items": [item(quantity=2**31)]}, "items[0].quantity"),  # Quantity is an int32
        ({"items": [item(giftMessage="g" * 513)]}, "items[0].giftMessage is too long"),
        (
            {"items": [item(perUnitDeclaredValue={"currencyCode": "USD", "value": "ten"})]},
            "perUnitDeclaredValue.value",
        ),
        ({"shippingSpeedCategory": "Overnight"}, "shippingSpeedCategory is invalid"),
        ({"displayableOrderDate": "yesterday"}, "displayableOrderDate"),
        ({"displayableOrderComment": "c" * 751}, "displayableOrderComment is too long"),
        ({"shippingSpeedCategory": "ScheduledDelivery", "fulfillmentAction": "Hold"}, "fulfillmentAction"),
        ({"sellerSKU": "typo"}, "Unknown parameter(s) sellerSKU"),
    ],
)
def test_invalid_create_requests_get_400_invalid_input_without_echoing_values(
    h: Harness, change: dict[str, Any], fragment: str
) -> None:
    response = h.create({**order_body("valid-id"), **change})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "InvalidInput"
    assert fragment in error["message"] + error["details"]
    assert "ZZZZZ" not in error["message"] + error["details"]
    assert response.headers["x-amzn-RateLimit-Limit"] == "2.0"
    assert not h.sim.has_order("valid-id")


def test_a_body_that_is_not_json_is_invalid_input(h: Harness) -> None:
    response = h.call(
        "POST", "/fulfillmentOrders", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "InvalidInput"


def test_a_second_create_with_the_same_id_is_rejected_and_not_stored_twice(h: Harness) -> None:
    assert h.create(order_body("dup-1")).status_code == 200
    again = h.create(order_body("dup-1"))
    assert again.status_code == 400
    assert _error(again)["code"] == "InvalidInput"
    assert "already exists" in _error(again)["message"]
    assert h.sim.ledger.creates("dup-1") == 1
    assert h.sim.available("SKU-A") == 99


def test_create_with_an_unknown_sku_is_rejected_like_amazon(h: Harness) -> None:
    response = h.create(order_body("sku-1", [item("SKU-UNKNOWN", "line-9")]))
    assert response.status_code == 400
    assert _error(response)["message"] == "the SellerSKU for Item Id: line-9 is invalid."


UNKNOWN_ORDER_CALLS = [
    ("GET", "/fulfillmentOrders/ghost", None),
    ("PUT", "/fulfillmentOrders/ghost/cancel", None),
    ("PUT", "/fulfillmentOrders/ghost", {"displayableOrderComment": "x"}),
]


def test_unknown_order_ids_are_400_invalid_input_requested_order_not_found_like_amazon(h: Harness) -> None:
    for method, path, body in UNKNOWN_ORDER_CALLS:
        response = h.call(method, path, json=body)
        assert response.status_code == 400, path
        assert (_error(response)["code"], _error(response)["message"]) == (
            "InvalidInput",
            "Requested order not found",
        )


def test_the_kind_404_for_unknown_order_ids_is_an_option(h: Harness) -> None:
    assert h.http.post("/_sim/fidelity", json={"order_not_found_as_invalid_input": False}).status_code == 200
    for method, path, body in UNKNOWN_ORDER_CALLS:
        response = h.call(method, path, json=body)
        assert response.status_code == 404, path
        assert _error(response)["code"] == "NotFound"
    assert h.http.get("/_sim/fidelity").json()["order_not_found_as_invalid_input"] is False
    h.http.post("/_sim/reset")
    assert h.http.get("/_sim/fidelity").json()["order_not_found_as_invalid_input"] is True


# ----------------------------------------------------------------------------- progression


def test_an_order_moves_through_its_statuses_as_the_fulfilment_clock_advances(h: Harness) -> None:
    start = h.clock.now()
    h.create(order_body("prog-1", [item(quantity=2)]))
    first = h.order("prog-1")
    assert first["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Received"
    assert (
        first["fulfillmentOrder"]["statusUpdatedDate"]
        == first["fulfillmentOrder"]["receivedDate"]
        == iso(start)
    )
    assert first["fulfillmentShipments"] == []

    h.clock.advance(10 * MINUTE)
    planning = h.order("prog-1")["fulfillmentOrder"]
    assert planning["fulfillmentOrderStatus"] == "Planning"
    assert planning["statusUpdatedDate"] == iso(start + timedelta(minutes=10))

    h.clock.advance(50 * MINUTE)
    processing = h.order("prog-1")
    assert processing["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Processing"
    (pending,) = processing["fulfillmentShipments"]
    assert pending["fulfillmentShipmentStatus"] == "PENDING"
    assert "fulfillmentShipmentPackage" not in pending
    assert pending["fulfillmentShipmentItem"][0]["packageNumber"] == 0

    h.clock.advance(3 * HOUR)
    done = h.order("prog-1")
    assert done["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Complete"
    assert done["fulfillmentOrder"]["statusUpdatedDate"] == iso(start + timedelta(hours=4))
    (shipped,) = done["fulfillmentShipments"]
    assert shipped["fulfillmentShipmentStatus"] == "SHIPPED"
    assert shipped["shippingDate"] == iso(start + timedelta(hours=4))
    (package,) = shipped["fulfillmentShipmentPackage"]
    assert isinstance(package["packageNumber"], int)
    assert package["carrierCode"] in {"UPS", "USPS", "AMZL_US"}
    assert package["trackingNumber"]
    assert package["estimatedArrivalDate"] == iso(start + timedelta(hours=4, days=3))
    assert shipped["fulfillmentShipmentItem"] == [
        {
            "sellerSku": "SKU-A",
            "sellerFulfillmentOrderItemId": "line-1",
            "quantity": 2,
            "packageNumber": package["packageNumber"],
        }
    ]
    (line,) = done["fulfillmentOrderItems"]
    assert (line["cancelledQuantity"], line["unfulfillableQuantity"]) == (0, 0)


def test_tracking_progresses_from_in_transit_to_out_for_delivery_to_delivered(h: Harness) -> None:
    h.create(order_body("track-1", shippingSpeedCategory="Priority"))
    h.clock.advance(4 * HOUR)
    package = h.order("track-1")["fulfillmentShipments"][0]["fulfillmentShipmentPackage"][0]

    def track() -> dict[str, Any]:
        response = h.call("GET", "/tracking", params={"packageNumber": package["packageNumber"]})
        assert response.status_code == 200, response.text
        return dict(response.json()["payload"])

    first = track()
    assert first["currentStatus"] == "IN_TRANSIT"
    assert first["trackingNumber"] == package["trackingNumber"]
    assert first["carrierCode"] == package["carrierCode"]
    assert first["carrierURL"].startswith("https://")
    # Amazon's link comes percent-encoded with a trailing newline (the model's own example).
    assert first["customerTrackingLink"] == (
        f"https%3A%2F%2Fwww.swiship.com%2Ftrack%3Fid%3D{package['trackingNumber']}%0A"
    )
    assert [e["eventCode"] for e in first["trackingEvents"]] == ["EVENT_101"]
    h.clock.advance(18 * HOUR)  # Priority: 24 h in transit, out for delivery 6 h before
    assert track()["currentStatus"] == "OUT_FOR_DELIVERY"
    h.clock.advance(6 * HOUR)
    delivered = track()
    assert delivered["currentStatus"] == "DELIVERED"
    assert [e["eventCode"] for e in delivered["trackingEvents"]] == [
        "EVENT_301",
        "EVENT_302",
        "EVENT_202",
        "EVENT_101",
    ]
    assert delivered["trackingEvents"][0]["eventAddress"] == {
        "city": "Seattle",
        "state": "WA",
        "country": "US",
    }


def test_tracking_an_unshipped_or_unknown_package_is_not_found(h: Harness) -> None:
    assert h.call("GET", "/tracking", params={"packageNumber": 123}).status_code == 404
    assert h.call("GET", "/tracking", params={"packageNumber": "abc"}).status_code == 400
    assert h.call("GET", "/tracking").status_code == 400


def test_a_held_order_waits_in_received_until_released_then_runs_from_the_release(h: Harness) -> None:
    h.create(order_body("hold-1", fulfillmentAction="Hold"))
    h.clock.advance(5 * HOUR)
    held = h.order("hold-1")["fulfillmentOrder"]
    assert (held["fulfillmentOrderStatus"], held["fulfillmentAction"]) == ("Received", "Hold")
    assert h.call("PUT", "/fulfillmentOrders/hold-1", json={"fulfillmentAction": "Ship"}).status_code == 200
    assert h.order("hold-1")["fulfillmentOrder"]["fulfillmentAction"] == "Ship"
    h.clock.advance(10 * MINUTE)
    assert h.status("hold-1") == "Planning"
    h.clock.advance(4 * HOUR)
    assert h.status("hold-1") == "Complete"


def test_a_held_order_is_cancelled_by_amazon_after_14_days(h: Harness) -> None:
    h.create(order_body("hold-2", [item(quantity=5)], fulfillmentAction="Hold"))
    assert h.sim.available("SKU-A") == 95
    h.clock.advance(14 * DAY)
    assert h.status("hold-2") == "Cancelled"
    assert h.sim.available("SKU-A") == 100
    assert h.call("PUT", "/fulfillmentOrders/hold-2", json={"fulfillmentAction": "Ship"}).status_code == 400


def test_only_orders_still_held_at_the_limit_give_their_units_back(h: Harness) -> None:
    """Released before the limit: its units stay taken. Released and held again: the limit still
    runs from when Amazon received it. Orders in both states, created at different times."""
    h.create(order_body("lim-1", [item(quantity=5)], fulfillmentAction="Hold"))
    h.create(order_body("lim-2", [item(quantity=3)], fulfillmentAction="Hold"))
    h.clock.advance(DAY)
    h.create(order_body("lim-3", [item(quantity=2)], fulfillmentAction="Hold"))
    assert h.call("PUT", "/fulfillmentOrders/lim-1", json={"fulfillmentAction": "Ship"}).status_code == 200
    assert h.call("PUT", "/fulfillmentOrders/lim-2", json={"fulfillmentAction": "Ship"}).status_code == 200
    assert h.call("PUT", "/fulfillmentOrders/lim-2", json={"fulfillmentAction": "Hold"}).status_code == 200
    assert h.sim.available("SKU-A") == 90
    h.clock.advance(13 * DAY)  # lim-2's limit (14 days from its receipt), not yet lim-3's
    assert h.sim.available("SKU-A") == 93
    assert [h.status(o) for o in ("lim-2", "lim-3")] == ["Cancelled", "Received"]
    h.clock.advance(DAY)
    assert h.sim.available("SKU-A") == 95
    assert h.status("lim-1") != "Cancelled"


def test_an_order_sent_to_ship_and_then_held_is_cancelled_at_the_hold_limit(h: Harness) -> None:
    h.create(order_body("lim-4", [item(quantity=4)]))
    assert h.call("PUT", "/fulfillmentOrders/lim-4", json={"fulfillmentAction": "Hold"}).status_code == 200
    assert h.sim.available("SKU-A") == 96
    h.clock.advance(14 * DAY)
    assert h.status("lim-4") == "Cancelled"
    assert h.sim.available("SKU-A") == 100


def test_a_held_orders_items_can_change_within_the_available_stock(h: Harness) -> None:
    h.create(order_body("hold-3", [item("SKU-FEW", "few", 1)], fulfillmentAction="Hold"))
    grow = {"items": [{"sellerFulfillmentOrderItemId": "few", "quantity": 2}]}
    assert h.call("PUT", "/fulfillmentOrders/hold-3", json=grow).status_code == 400  # only 1 in stock
    h.sim.set_inventory("SKU-FEW", 1)
    assert h.call("PUT", "/fulfillmentOrders/hold-3", json=grow).status_code == 200
    assert h.sim.available("SKU-FEW") == 0
    assert h.order("hold-3")["fulfillmentOrderItems"][0]["quantity"] == 2
    unknown = {"items": [{"sellerFulfillmentOrderItemId": "other", "quantity": 1}]}
    assert h.call("PUT", "/fulfillmentOrders/hold-3", json=unknown).status_code == 400


def test_updating_an_order_once_picking_started_is_rejected(h: Harness) -> None:
    h.create(order_body("upd-1"))
    h.clock.advance(HOUR)
    response = h.call("PUT", "/fulfillmentOrders/upd-1", json={"displayableOrderComment": "late"})
    assert response.status_code == 400
    assert "Processing" in _error(response)["message"]


def test_cancel_is_allowed_while_planning_and_returns_the_inventory(h: Harness) -> None:
    h.create(order_body("can-1", [item(quantity=3)]))
    assert h.sim.available("SKU-A") == 97
    h.clock.advance(10 * MINUTE)
    assert h.call("PUT", "/fulfillmentOrders/can-1/cancel").status_code == 200
    order = h.order("can-1")
    assert order["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Cancelled"
    assert order["fulfillmentOrderItems"][0]["cancelledQuantity"] == 3
    assert h.sim.available("SKU-A") == 100
    assert h.call("PUT", "/fulfillmentOrders/can-1/cancel").status_code == 200  # repeating is harmless
    h.clock.advance(DAY)
    assert h.order("can-1")["fulfillmentShipments"] == []


def test_cancel_once_processing_is_too_late(h: Harness) -> None:
    h.create(order_body("can-2"))
    h.clock.advance(HOUR)
    response = h.call("PUT", "/fulfillmentOrders/can-2/cancel")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "InvalidInput"
    assert "cannot be cancelled" in error["message"] and "too late" in error["details"]
    assert h.status("can-2") == "Processing"


def test_split_skus_ship_in_their_own_shipment_one_package_per_unit(h: Harness) -> None:
    h.create(order_body("split-1", [item("SKU-SPLIT", "s", 2), item("SKU-A", "a", 1)]))
    h.clock.advance(4 * HOUR)
    order = h.order("split-1")
    assert order["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Complete"
    shipments = {
        tuple(sorted({i["sellerSku"] for i in s["fulfillmentShipmentItem"]})): s
        for s in order["fulfillmentShipments"]
    }
    assert set(shipments) == {("SKU-A",), ("SKU-SPLIT",)}
    split = shipments[("SKU-SPLIT",)]
    numbers = [p["packageNumber"] for p in split["fulfillmentShipmentPackage"]]
    assert len(numbers) == len(set(numbers)) == 2
    assert sorted(i["packageNumber"] for i in split["fulfillmentShipmentItem"]) == sorted(numbers)
    assert all(i["quantity"] == 1 for i in split["fulfillmentShipmentItem"])
    assert len(shipments[("SKU-A",)]["fulfillmentShipmentPackage"]) == 1


def test_fill_all_available_with_partial_stock_ends_complete_partialled(h: Harness) -> None:
    h.create(order_body("part-1", [item("SKU-FEW", "few", 3)], fulfillmentPolicy="FillAllAvailable"))
    assert h.sim.available("SKU-FEW") == 0
    h.clock.advance(4 * HOUR)
    order = h.order("part-1")
    assert order["fulfillmentOrder"]["fulfillmentOrderStatus"] == "CompletePartialled"
    assert order["fulfillmentOrderItems"][0]["unfulfillableQuantity"] == 2
    assert order["fulfillmentShipments"][0]["fulfillmentShipmentItem"][0]["quantity"] == 1


def test_fill_or_kill_without_enough_stock_is_invalid_and_reserves_nothing(h: Harness) -> None:
    assert h.create(order_body("kill-1", [item("SKU-FEW", "few", 3)])).status_code == 200
    order = h.order("kill-1")
    assert order["fulfillmentOrder"]["fulfillmentOrderStatus"] == "Invalid"
    assert order["fulfillmentOrderItems"][0]["unfulfillableQuantity"] == 3
    assert h.sim.available("SKU-FEW") == 1


def test_a_sku_lost_by_the_fulfiller_ends_cancelled_by_fulfiller(h: Harness) -> None:
    h.create(order_body("lost-1", [item("SKU-A", "a"), item("SKU-LOST", "lost")]))
    h.clock.advance(HOUR)
    assert {s["fulfillmentShipmentStatus"] for s in h.order("lost-1")["fulfillmentShipments"]} == {"PENDING"}
    h.clock.advance(3 * HOUR)
    order = h.order("lost-1")
    assert order["fulfillmentOrder"]["fulfillmentOrderStatus"] == "CompletePartialled"
    by_status = {s["fulfillmentShipmentStatus"]: s for s in order["fulfillmentShipments"]}
    assert set(by_status) == {"SHIPPED", "CANCELLED_BY_FULFILLER"}
    cancelled = by_status["CANCELLED_BY_FULFILLER"]
    assert "fulfillmentShipmentPackage" not in cancelled and "shippingDate" not in cancelled
    lines = {i["sellerFulfillmentOrderItemId"]: i for i in order["fulfillmentOrderItems"]}
    assert (lines["lost"]["unfulfillableQuantity"], lines["a"]["unfulfillableQuantity"]) == (1, 0)


def test_an_undeliverable_destination_makes_the_order_invalid(h: Harness) -> None:
    h.http.post("/_sim/invalid-postal-codes", json={"postalCodes": ["99999"]})
    h.create(order_body("addr-1", destinationAddress={**ADDRESS, "postalCode": "99999"}))
    assert h.status("addr-1") == "Invalid"


# ----------------------------------------------------------------------------- listing


def test_list_returns_orders_changed_since_the_start_date_in_pages() -> None:
    h = Harness(SimulatorConfig(skus=SKUS, page_size=5))
    start = h.clock.now()
    for n in range(12):
        assert h.create(order_body(f"list-{n:02d}")).status_code == 200
    h.clock.advance(MINUTE)
    h.create(order_body("list-late"))

    def ids(query_start: str | None = None) -> tuple[list[list[str]], list[dict[str, Any]]]:
        pages, orders = [], []
        params: dict[str, str] = {"queryStartDate": query_start} if query_start else {}
        while True:
            payload = h.call("GET", "/fulfillmentOrders", params=params).json()["payload"]
            pages.append([o["sellerFulfillmentOrderId"] for o in payload["fulfillmentOrders"]])
            orders += payload["fulfillmentOrders"]
            if "nextToken" not in payload:
                return pages, orders
            params = {"nextToken": payload["nextToken"]}

    pages, orders = ids(iso(start))
    assert [len(p) for p in pages] == [5, 5, 3]
    assert sorted(i for page in pages for i in page) == sorted(
        [f"list-{n:02d}" for n in range(12)] + ["list-late"]
    )
    assert all(o["statusUpdatedDate"] >= iso(start) for o in orders)
    assert ids(iso(start + timedelta(seconds=30)))[0] == [["list-late"]]
    h.clock.advance(10 * MINUTE)  # everything has moved to Planning since
    later, orders = ids(iso(start + timedelta(minutes=10)))
    assert sum(len(p) for p in later) == 13
    assert {o["fulfillmentOrderStatus"] for o in orders} == {"Planning"}
    bad = h.call("GET", "/fulfillmentOrders", params={"nextToken": "garbage!"})
    assert bad.status_code == 400
    assert h.sim.ledger.warnings() == 0


def test_query_start_date_sent_with_a_next_token_is_ignored_with_a_warning() -> None:
    h = Harness(SimulatorConfig(skus=SKUS, page_size=2))
    start = iso(h.clock.now())
    for n in range(3):
        h.create(order_body(f"warn-{n}"))
    first = h.call("GET", "/fulfillmentOrders", params={"queryStartDate": start}).json()["payload"]
    later = iso(h.clock.now() + timedelta(days=1))  # would match nothing if it were used
    params = {"queryStartDate": later, "nextToken": first["nextToken"]}
    second = h.call("GET", "/fulfillmentOrders", params=params).json()["payload"]
    assert [o["sellerFulfillmentOrderId"] for o in second["fulfillmentOrders"]] == ["warn-2"]
    assert h.sim.ledger.warnings("listAllFulfillmentOrders") == 1
    assert h.http.get("/_sim/ledger").json()["warnings"] == {
        "listAllFulfillmentOrders": {"queryStartDate is ignored when nextToken is given": 1}
    }


def test_plain_tracking_links_are_the_kind_option(h: Harness) -> None:
    h.sim.set_fidelity(encoded_tracking_links=False)
    h.create(order_body("plain-link", shippingSpeedCategory="Priority"))
    h.clock.advance(4 * HOUR)
    package = h.order("plain-link")["fulfillmentShipments"][0]["fulfillmentShipmentPackage"][0]
    payload = h.call("GET", "/tracking", params={"packageNumber": package["packageNumber"]}).json()["payload"]
    assert payload["customerTrackingLink"] == f"https://www.swiship.com/track?id={package['trackingNumber']}"
    with pytest.raises(ValueError, match="unknown fidelity"):
        h.sim.set_fidelity(made_up=True)


# ----------------------------------------------------------------------------- returns


def test_returns_are_accepted_for_shipped_items_and_refused_with_reasons_otherwise(h: Harness) -> None:
    h.create(order_body("ret-1", [item("SKU-A", "a", 1)]))
    h.create(order_body("ret-2"))
    h.clock.advance(4 * HOUR)
    shipment_id = h.order("ret-1")["fulfillmentShipments"][0]["amazonShipmentId"]
    codes = h.call("GET", "/returnReasonCodes", params={"sellerSku": "SKU-A"}).json()["payload"][
        "reasonCodeDetails"
    ]
    assert "CR-DEFECTIVE" in {c["returnReasonCode"] for c in codes}

    def ret_item(rid: str, **over: str) -> dict[str, str]:
        base = {
            "sellerReturnItemId": rid,
            "sellerFulfillmentOrderItemId": "a",
            "amazonShipmentId": shipment_id,
            "returnReasonCode": "CR-DEFECTIVE",
        }
        return {**base, **over}

    body = {
        "items": [
            ret_item("r1", returnComment="broken"),
            ret_item("r2", sellerFulfillmentOrderItemId="nope"),
            ret_item("r3"),
        ]
    }
    payload = h.call("PUT", "/fulfillmentOrders/ret-1/return", json=body).json()["payload"]
    assert [r["sellerReturnItemId"] for r in payload["returnItems"]] == ["r1"]
    assert payload["returnItems"][0]["status"] == "New"
    refused = {
        r["sellerReturnItemId"]: r["invalidItemReason"]["invalidItemReasonCode"]
        for r in payload["invalidReturnItems"]
    }
    assert refused == {"r2": "InvalidValues", "r3": "NoReturnableQuantity"}
    (rma,) = payload["returnAuthorizations"]
    assert rma["rmaPageURL"].endswith(rma["amazonRmaId"])
    again = h.call("PUT", "/fulfillmentOrders/ret-1/return", json={"items": [ret_item("r1")]}).json()[
        "payload"
    ]
    assert again["invalidReturnItems"][0]["invalidItemReason"]["invalidItemReasonCode"] == "DuplicateRequest"
    h.clock.advance(2 * DAY)
    order = h.order("ret-1")
    assert order["returnItems"][0]["status"] == "Processed"
    assert order["returnAuthorizations"][0]["returnAuthorizationId"] == rma["returnAuthorizationId"]


def test_a_return_before_shipping_is_refused_with_no_completed_ship_items(h: Harness) -> None:
    h.create(order_body("ret-3"))
    h.clock.advance(HOUR)
    shipment_id = h.order("ret-3")["fulfillmentShipments"][0]["amazonShipmentId"]
    body = {
        "items": [
            {
                "sellerReturnItemId": "x",
                "sellerFulfillmentOrderItemId": "line-1",
                "amazonShipmentId": shipment_id,
                "returnReasonCode": "CR-DEFECTIVE",
            }
        ]
    }
    payload = h.call("PUT", "/fulfillmentOrders/ret-3/return", json=body).json()["payload"]
    assert (
        payload["invalidReturnItems"][0]["invalidItemReason"]["invalidItemReasonCode"]
        == "NoCompletedShipItems"
    )
    assert payload["returnAuthorizations"] == []


# ----------------------------------------------------------------------------- rate limits


def test_an_empty_bucket_answers_429_quota_exceeded_and_refills_on_the_rate_clock(h: Harness) -> None:
    params = {"marketplaceId": "ATVPDKIKX0DER"}
    assert all(h.call("GET", "/features", params=params).status_code == 200 for _ in range(30))
    throttled = h.call("GET", "/features", params=params)
    assert throttled.status_code == 429
    error = _error(throttled)
    assert (error["code"], error["message"]) == (
        "QuotaExceeded",
        "You exceeded your quota for the requested resource.",
    )
    assert "x-amzn-RequestId" in throttled.headers
    h.clock.advance(DAY)  # the fulfilment clock does not refill buckets
    assert h.call("GET", "/features", params=params).status_code == 429
    h.rate_clock.advance(0.5)  # 2 per second: one token
    assert h.call("GET", "/features", params=params).status_code == 200
    assert h.call("GET", "/features", params=params).status_code == 429
    assert h.call("GET", "/fulfillmentOrders/other-operation-bucket").status_code == 400  # not found
    assert h.sim.ledger.throttled("getFeatures") == 3


def test_buckets_are_per_seller_and_per_operation_and_configurable() -> None:
    config = SimulatorConfig(
        skus=SKUS,
        credentials=Credentials(refresh_tokens=("seller-1", "seller-2")),
        limits={"getFeatures": OperationLimit(rate=1.0, burst=2)},
    )
    h = Harness(config, refresh_token="seller-1")
    other = h.grant("seller-2")
    params = {"marketplaceId": "ATVPDKIKX0DER"}
    assert [h.call("GET", "/features", params=params).status_code for _ in range(3)] == [200, 200, 429]
    assert h.call("GET", "/features", params=params, token=other).status_code == 200
    ok = h.call("GET", "/features", params=params, token=other)
    assert ok.headers["x-amzn-RateLimit-Limit"] == "1.0"


# ----------------------------------------------------------------------------- faults


def test_injected_503s_carry_retry_after_seconds_then_calls_succeed_again(h: Harness) -> None:
    h.sim.inject_fault("getFulfillmentOrder", status=503, count=2, retry_after=7)
    h.create(order_body("f-1"))
    for _ in range(2):
        response = h.call("GET", "/fulfillmentOrders/f-1")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
        assert _error(response)["code"] == "ServiceUnavailable"
    assert h.call("GET", "/fulfillmentOrders/f-1").status_code == 200


def test_retry_after_can_be_an_http_date_on_the_rate_clock_or_a_verbatim_value(h: Harness) -> None:
    h.sim.inject_fault("getFeatures", status=429, retry_after=5, retry_after_as_date=True)
    h.sim.inject_fault("getFeatures", status=500, retry_after="120")
    first = h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"})
    assert first.status_code == 429
    assert _error(first)["code"] == "QuotaExceeded"
    assert email.utils.parsedate_to_datetime(first.headers["Retry-After"]) == h.rate_clock.now() + timedelta(
        seconds=5
    )
    second = h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"})
    assert (second.status_code, second.headers["Retry-After"]) == (500, "120")
    assert _error(second)["code"] == "InternalFailure"


def test_injected_delays_wait_on_the_delay_clock_and_are_bounded(h: Harness) -> None:
    h.sim.inject_fault("getFeatures", kind="status", status=500, delay_seconds=2.5)
    h.sim.inject_fault("getFeatures", kind="status", status=500, delay_seconds=1000)
    before = h.delay_clock.monotonic()
    h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"})
    assert h.delay_clock.monotonic() - before == pytest.approx(2.5)
    h.call("GET", "/features", params={"marketplaceId": "ATVPDKIKX0DER"})
    assert h.delay_clock.monotonic() - before == pytest.approx(32.5)


def test_faults_can_be_queued_listed_and_cleared_over_http(h: Harness) -> None:
    queued = h.http.post(
        "/_sim/faults", json={"operation": "createFulfillmentOrder", "status": 500, "count": 3}
    )
    assert queued.status_code == 200
    assert queued.json()["faults"][0]["count"] == 3
    assert h.create(order_body("f-2")).status_code == 500
    assert h.http.get("/_sim/faults").json()["faults"][0]["count"] == 2
    assert h.http.delete("/_sim/faults").status_code == 200
    assert h.create(order_body("f-2")).status_code == 200
    bad = h.http.post("/_sim/faults", json={"operation": "noSuchOperation"})
    assert bad.status_code == 400
    assert _error(bad)["code"] == "InvalidInput"


def test_an_expire_tokens_fault_makes_the_next_call_see_an_expired_token(h: Harness) -> None:
    h.sim.inject_fault("getFulfillmentOrder", kind="expire_tokens")
    response = h.call("GET", "/fulfillmentOrders/x")
    assert response.status_code == 403
    assert _error(response)["details"] == "The access token you provided has expired."


def test_accept_then_drop_in_process_stores_the_order_and_raises_remote_protocol_error(h: Harness) -> None:
    h.sim.inject_fault("createFulfillmentOrder", kind="accept_then_drop")
    with pytest.raises(httpx.RemoteProtocolError):
        h.create(order_body("drop-1"))
    assert h.sim.has_order("drop-1")
    assert h.status("drop-1") == "Received"
    assert h.sim.ledger.creates("drop-1") == 1
    assert h.sim.ledger.statuses("createFulfillmentOrder") == {0: 1}
    assert h.create(order_body("drop-1")).status_code == 400  # a blind retry is refused


def test_a_plain_drop_does_not_store_the_order(h: Harness) -> None:
    h.sim.inject_fault("createFulfillmentOrder", kind="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        h.create(order_body("drop-2"))
    assert not h.sim.has_order("drop-2")


def test_accept_then_drop_over_real_http_closes_the_connection_after_storing(h: Harness) -> None:
    with serve_in_thread(h.app) as server, httpx.Client(base_url=server.base_url, timeout=5) as http:
        token = h.grant(http=http)
        headers = {"x-amz-access-token": token}
        assert http.get(
            BASE + "/features", params={"marketplaceId": "ATVPDKIKX0DER"}, headers=headers
        ).is_success
        h.http.post("/_sim/faults", json={"operation": "createFulfillmentOrder", "kind": "accept_then_drop"})
        with pytest.raises(httpx.TransportError):
            http.post(BASE + "/fulfillmentOrders", json=order_body("drop-3"), headers=headers)
        after = http.get(BASE + "/fulfillmentOrders/drop-3", headers=headers)
        assert after.status_code == 200
        assert after.json()["payload"]["fulfillmentOrder"]["sellerFulfillmentOrderId"] == "drop-3"
        assert http.get("/_sim/ledger").json()["creates"] == {"drop-3": 1}


# ----------------------------------------------------------------------------- ledger and controls


def test_the_ledger_counts_calls_creates_rates_and_429s(h: Harness) -> None:
    h.rate_clock.advance(0.8)  # rate clock at 1000.8
    for n in range(2):
        h.create(order_body(f"led-{n}"))
    h.rate_clock.advance(0.4)  # 1001.2: four calls within one second, split over two whole seconds
    h.create(order_body("led-2"))
    h.create(order_body("led-2"))
    ledger = h.http.get("/_sim/ledger").json()
    assert ledger["creates"] == {"led-0": 1, "led-1": 1, "led-2": 1}
    assert ledger["calls"]["createFulfillmentOrder"] == 4
    assert ledger["callsPerSecond"]["createFulfillmentOrder"] == [2, 2]
    assert ledger["maxCallsPerSecond"]["createFulfillmentOrder"] == 4
    assert ledger["statuses"]["createFulfillmentOrder"] == {"200": 3, "400": 1}
    assert ledger["calls"]["lwaToken"] == 1
    assert ledger["throttledTotal"] == 0


def test_controls_set_inventory_advance_the_clock_and_reset(h: Harness) -> None:
    inv = h.http.post(
        "/_sim/inventory", json={"items": [{"sellerSku": "NEW-1", "quantity": 4, "split": True}]}
    ).json()
    assert inv["NEW-1"] == {"quantity": 4, "split": True, "cancelledByFulfiller": False, "weightLb": "1.0"}
    assert h.http.post("/_sim/inventory", json={"NEW-2": 7}).json()["NEW-2"]["quantity"] == 7
    assert h.http.post("/_sim/inventory", json={"items": [{"quantity": 1}]}).status_code == 400
    h.create(order_body("ctl-1", [item("NEW-1", "n", 2)]))
    assert h.http.get("/_sim/inventory").json()["NEW-1"]["quantity"] == 2
    moved = h.http.post("/_sim/advance", json={"seconds": 600})
    assert moved.status_code == 200
    assert h.status("ctl-1") == "Planning"
    assert h.http.get("/_sim/orders").json()["orders"] == [
        {"sellerFulfillmentOrderId": "ctl-1", "fulfillmentOrderStatus": "Planning"}
    ]
    assert h.http.post("/_sim/advance", json={"seconds": "soon"}).status_code == 400
    assert h.http.post("/_sim/reset").status_code == 200
    assert not h.sim.has_order("ctl-1")
    assert "NEW-1" not in h.http.get("/_sim/inventory").json()
    assert h.http.get("/_sim/ledger").json()["creates"] == {}


def test_concurrent_creates_never_oversell_inventory() -> None:
    config = SimulatorConfig(
        skus={"SKU-A": SkuConfig(quantity=20)}, default_limit=OperationLimit(rate=1000, burst=1000)
    )
    h = Harness(config)
    barrier = threading.Barrier(8)

    def create(n: int) -> int:
        if n < 8:
            barrier.wait()
        with h.client() as http:
            response = http.post(
                BASE + "/fulfillmentOrders",
                json=order_body(f"cc-{n}"),
                headers={"x-amz-access-token": h.token},
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(create, range(40))) == {200}
    statuses = [h.sim.order_status(f"cc-{n}") for n in range(40)]
    assert (statuses.count("Received"), statuses.count("Invalid")) == (20, 20)
    assert h.sim.available("SKU-A") == 0
    assert sum(h.sim.ledger.creates(f"cc-{n}") for n in range(40)) == 40


def test_concurrent_calls_over_real_http_are_all_answered() -> None:
    h = Harness(SimulatorConfig(skus=SKUS, default_limit=OperationLimit(rate=1000, burst=1000)))
    with serve_in_thread(h.app) as server:

        def get(_: int) -> int:
            with httpx.Client(base_url=server.base_url, timeout=5) as http:
                params = {"marketplaceId": "ATVPDKIKX0DER"}
                return http.get(
                    BASE + "/features", params=params, headers={"x-amz-access-token": h.token}
                ).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(get, range(24))) == [200] * 24
    assert h.sim.ledger.calls("getFeatures") == 24
