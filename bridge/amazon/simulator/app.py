"""The simulator's HTTP face: LWA's token endpoint and the Fulfillment Outbound routes.

Routes are thin: parse the request, call the `Simulator`, turn the result or `ApiError` into a
response with Amazon's headers (`x-amzn-RequestId` on every response, the token endpoint and
unknown routes included; `x-amzn-RateLimit-Limit` where the model lists it: 200, 400 and 404).
Control routes live in `controls.py`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, request

from .config import BASE_PATH
from .controls import controls_blueprint
from .dropping import ConnectionDropper, mark_drop
from .envelope import ApiError, invalid_input
from .inventory import inventory_blueprint
from .notifications_routes import notifications_blueprint
from .state import DROPPED, CallPermit, Simulator

_RATE_LIMIT_STATUSES = frozenset({200, 400, 404})


def create_simulator_app(sim: Simulator) -> Flask:
    """A Flask app serving `sim`; wrap it with `serve_in_thread` or httpx.WSGITransport."""
    app = Flask("bridge.amazon.simulator")
    app.extensions["fba_simulator"] = sim
    app.register_blueprint(_lwa_blueprint(sim))
    app.register_blueprint(_outbound_blueprint(sim))
    app.register_blueprint(controls_blueprint(sim))
    app.register_blueprint(
        notifications_blueprint(
            sim.notifications,
            lambda op, handler: _dispatch(sim, op, lambda: handler(_caller(sim))),
            _json_body,
        )
    )
    app.register_blueprint(inventory_blueprint(sim))

    @app.errorhandler(404)
    def _no_route(_err: Exception) -> Response:
        return json_response(ApiError(404, "NotFound", "Resource not found.").body(), 404)

    @app.errorhandler(405)
    def _bad_method(_err: Exception) -> Response:
        return json_response(ApiError(405, "MethodNotAllowed", "Method not allowed.").body(), 405)

    @app.after_request
    def _request_id(response: Response) -> Response:
        response.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        return response

    app.wsgi_app = ConnectionDropper(app.wsgi_app)  # type: ignore[method-assign]
    return app


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def _lwa_blueprint(sim: Simulator) -> Blueprint:
    bp = Blueprint("lwa", __name__)

    @bp.post("/auth/o2/token")
    def token() -> Response:
        form = request.form.to_dict() if request.form else (request.get_json(silent=True) or {})
        status, body = sim.grant_token({str(k): str(v) for k, v in form.items()})
        return json_response(body, status, {"Cache-Control": "no-store"})

    return bp


def _outbound_blueprint(sim: Simulator) -> Blueprint:
    bp = Blueprint("outbound", __name__, url_prefix=BASE_PATH)

    def call(operation: str, handler: Callable[[], dict[str, Any]]) -> Response:
        return _dispatch(sim, operation, handler)

    @bp.post("/fulfillmentOrders/preview")
    def get_fulfillment_preview() -> Response:
        return call("getFulfillmentPreview", lambda: sim.get_fulfillment_preview(_json_body()))

    @bp.post("/fulfillmentOrders")
    def create_fulfillment_order() -> Response:
        return call("createFulfillmentOrder", lambda: sim.create_fulfillment_order(_json_body()))

    @bp.get("/fulfillmentOrders")
    def list_all_fulfillment_orders() -> Response:
        args = request.args
        return call(
            "listAllFulfillmentOrders",
            lambda: sim.list_all_fulfillment_orders(args.get("queryStartDate"), args.get("nextToken")),
        )

    @bp.get("/fulfillmentOrders/<order_id>")
    def get_fulfillment_order(order_id: str) -> Response:
        return call("getFulfillmentOrder", lambda: sim.get_fulfillment_order(order_id))

    @bp.put("/fulfillmentOrders/<order_id>")
    def update_fulfillment_order(order_id: str) -> Response:
        return call("updateFulfillmentOrder", lambda: sim.update_fulfillment_order(order_id, _json_body()))

    @bp.put("/fulfillmentOrders/<order_id>/cancel")
    def cancel_fulfillment_order(order_id: str) -> Response:
        return call("cancelFulfillmentOrder", lambda: sim.cancel_fulfillment_order(order_id))

    @bp.put("/fulfillmentOrders/<order_id>/return")
    def create_fulfillment_return(order_id: str) -> Response:
        return call("createFulfillmentReturn", lambda: sim.create_fulfillment_return(order_id, _json_body()))

    @bp.get("/tracking")
    def get_package_tracking_details() -> Response:
        number = request.args.get("packageNumber")
        return call("getPackageTrackingDetails", lambda: sim.get_package_tracking_details(number))

    @bp.get("/returnReasonCodes")
    def list_return_reason_codes() -> Response:
        a = request.args
        return call(
            "listReturnReasonCodes",
            lambda: sim.list_return_reason_codes(
                a.get("sellerSku"),
                a.get("marketplaceId"),
                a.get("sellerFulfillmentOrderId"),
                a.get("language"),
            ),
        )

    @bp.get("/features")
    def get_features() -> Response:
        return call("getFeatures", lambda: sim.get_features(request.args.get("marketplaceId")))

    @bp.get("/features/inventory/<feature_name>")
    def get_feature_inventory(feature_name: str) -> Response:
        a = request.args
        return call(
            "getFeatureInventory",
            lambda: sim.get_feature_inventory(a.get("marketplaceId"), feature_name, a.get("nextToken")),
        )

    @bp.get("/features/inventory/<feature_name>/<path:seller_sku>")
    def get_feature_sku(feature_name: str, seller_sku: str) -> Response:
        return call(
            "getFeatureSKU",
            lambda: sim.get_feature_sku(request.args.get("marketplaceId"), feature_name, seller_sku),
        )

    return bp


def _dispatch(sim: Simulator, operation: str, handler: Callable[[], dict[str, Any]]) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    permit: CallPermit | None = None
    try:
        permit = sim.begin_call(operation, request.headers.get("x-amz-access-token"))
        if permit.drop_before:
            request.get_data()  # read the body so the socket holds nothing unread when it is shut
            return _drop(sim, operation)
        body, status = handler(), 200
    except ApiError as err:
        body, status = err.body(), err.status
        headers.update(err.headers)
    if permit is not None and permit.drop_after:
        return _drop(sim, operation)
    if permit is not None and permit.delay_after > 0:
        sim.delay_clock.sleep(permit.delay_after)
    if permit is not None and status in _RATE_LIMIT_STATUSES:
        headers["x-amzn-RateLimit-Limit"] = permit.rate_limit
    sim.finish_call(operation, status)
    return json_response(body, status, headers)


def _caller(sim: Simulator) -> str:
    """Who called (a seller key, or a grantless scope); `begin_call` has already checked the token."""
    return sim.auth.authenticate(request.headers.get("x-amz-access-token"))


def _drop(sim: Simulator, operation: str) -> Response:
    sim.finish_call(operation, DROPPED)
    mark_drop(request.environ)
    return Response(status=204)  # never sent: ConnectionDropper discards it


def _json_body() -> Any:
    raw = request.get_data()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid_input("The request body is not valid JSON.") from exc
