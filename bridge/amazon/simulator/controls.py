"""`/_sim/...` control routes for tests and the demo; no SP-API token needed.

- `GET /_sim/health`: `{"ok": true}`.
- `POST /_sim/reset`: back to the configured starting state.
- `GET|POST /_sim/inventory`: body `{"items": [{"sellerSku", "quantity", "split",
  "cancelledByFulfiller", "weightLb", "silent"}]}` or the short form `{"SKU": 5, "SKU2": {"split": true}}`
  (`silent`: the change does not move the SKU's lastUpdatedTime). `POST /_sim/restock` lives in
  `inventory.py`.
- `GET|POST /_sim/invalid-postal-codes`: body `{"postalCodes": [...]}`, undeliverable destinations.
- `GET|POST|DELETE /_sim/faults`: queue (body as in `Fault.from_json`), list, clear.
- `GET /_sim/ledger`: creates per order id, calls, call rates, statuses, 429s.
- `POST /_sim/advance`: body `{"seconds": N, "clock": "fulfilment" | "rate" | "both"}`.
- `POST /_sim/tokens/expire`: every issued access token is expired from now on.
- `POST /_sim/tokens/revoke`: body `{"refreshToken": optional}`; the seller revoked the app:
  grants answer `invalid_grant` (and, by default, the access tokens issued from it are revoked).
- `POST /_sim/tokens/reauthorise` (or `/restore`): the seller re-authorised; grants work again.
- `POST /_sim/tokens/revoke-access`: every issued access token is revoked (403 "revoked,
  malformed or invalid"); refresh tokens keep working.
- `GET|POST /_sim/fidelity`: Amazon's quirks on or off, body e.g.
  `{"encoded_tracking_links": false}` (names as in `config.Fidelity`).
- `GET /_sim/orders`: every order id with its current status.
- `POST /_sim/orders/<id>/stall`: body `{"stalled": true}` (default) or `false`; a stalled order
  makes no progress from now on (a stuck order: it keeps its status and estimated ship date).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from .envelope import ApiError, invalid_input
from .faults import Fault
from .render import iso

if TYPE_CHECKING:
    from .state import Simulator


def controls_blueprint(sim: Simulator) -> Blueprint:
    bp = Blueprint("sim_controls", __name__, url_prefix="/_sim")

    def answer(fn: Callable[[], Any]) -> Response:
        try:
            body, status = fn(), 200
        except ApiError as err:
            body, status = err.body(), err.status
        except ValueError as err:
            body, status = invalid_input(str(err)).body(), 400
        return Response(json.dumps(body), status=status, mimetype="application/json")

    @bp.get("/health")
    def health() -> Response:
        return answer(lambda: {"ok": True})

    @bp.post("/reset")
    def reset() -> Response:
        return answer(lambda: _ok(sim.reset))

    @bp.get("/inventory")
    def get_inventory() -> Response:
        return answer(sim.inventory)

    @bp.post("/inventory")
    def post_inventory() -> Response:
        return answer(lambda: _set_inventory(sim, _body()))

    @bp.get("/invalid-postal-codes")
    def get_invalid_postal_codes() -> Response:
        return answer(lambda: {"postalCodes": sim.invalid_postal_codes()})

    @bp.post("/invalid-postal-codes")
    def post_invalid_postal_codes() -> Response:
        def run() -> dict[str, Any]:
            codes = _body().get("postalCodes")
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise invalid_input("postalCodes must be a list of strings.")
            sim.set_invalid_postal_codes(codes)
            return {"postalCodes": sim.invalid_postal_codes()}

        return answer(run)

    @bp.get("/faults")
    def get_faults() -> Response:
        return answer(lambda: {"faults": sim.faults.pending()})

    @bp.post("/faults")
    def post_fault() -> Response:
        def run() -> dict[str, Any]:
            sim.faults.add(Fault.from_json(_body()))
            return {"faults": sim.faults.pending()}

        return answer(run)

    @bp.delete("/faults")
    def delete_faults() -> Response:
        return answer(lambda: _ok(sim.clear_faults))

    @bp.get("/ledger")
    def ledger() -> Response:
        return answer(sim.ledger.snapshot)

    @bp.post("/advance")
    def advance() -> Response:
        def run() -> dict[str, Any]:
            body = _body()
            seconds = body.get("seconds")
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise invalid_input("seconds must be a number.")
            sim.advance(float(seconds), str(body.get("clock", "fulfilment")))
            return {"now": iso(sim.now()), "rateClock": sim.rate_clock.monotonic()}

        return answer(run)

    @bp.post("/tokens/expire")
    def expire_tokens() -> Response:
        return answer(lambda: _ok(sim.expire_access_tokens))

    @bp.post("/tokens/revoke")
    def revoke_tokens() -> Response:
        return answer(lambda: _ok(lambda: sim.revoke_refresh_token(_body().get("refreshToken"))))

    @bp.post("/tokens/restore")
    @bp.post("/tokens/reauthorise")
    def restore_tokens() -> Response:
        return answer(lambda: _ok(sim.restore_refresh_tokens))

    @bp.post("/tokens/revoke-access")
    def revoke_access_tokens() -> Response:
        return answer(lambda: _ok(sim.revoke_access_tokens))

    @bp.get("/fidelity")
    def get_fidelity() -> Response:
        return answer(lambda: asdict(sim.fidelity))

    @bp.post("/fidelity")
    def post_fidelity() -> Response:
        def run() -> dict[str, Any]:
            body = _body()
            if not all(isinstance(v, bool) for v in body.values()):
                raise invalid_input("Fidelity switches must be true or false.")
            return asdict(sim.set_fidelity(**body))

        return answer(run)

    @bp.get("/orders")
    def orders() -> Response:
        return answer(lambda: {"orders": sim.orders_summary()})

    @bp.post("/orders/<seller_fulfillment_order_id>/stall")
    def stall(seller_fulfillment_order_id: str) -> Response:
        def run() -> dict[str, Any]:
            stalled = _body().get("stalled", True)
            if not isinstance(stalled, bool):
                raise invalid_input("stalled must be true or false.")
            sim.stall(seller_fulfillment_order_id, stalled)
            return {"sellerFulfillmentOrderId": seller_fulfillment_order_id, "stalled": stalled}

        return answer(run)

    return bp


def _ok(action: Callable[[], None]) -> dict[str, bool]:
    action()
    return {"ok": True}


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None and request.get_data().strip():
        raise invalid_input("The request body is not valid JSON.")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise invalid_input("The request body must be a JSON object.")
    return data


def _set_inventory(sim: Simulator, body: Mapping[str, Any]) -> dict[str, Any]:
    if "items" in body:
        rows = body["items"]
        if not isinstance(rows, list):
            raise invalid_input("items must be a list.")
    else:
        rows = [
            {"sellerSku": sku, **(v if isinstance(v, dict) else {"quantity": v})} for sku, v in body.items()
        ]
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("sellerSku"), str):
            raise invalid_input("Each inventory row needs a sellerSku.")
        quantity = row.get("quantity")
        if quantity is not None and (not isinstance(quantity, int) or isinstance(quantity, bool)):
            raise invalid_input("quantity must be an integer.")
        sim.set_inventory(
            row["sellerSku"],
            quantity,
            split=row.get("split"),
            cancelled_by_fulfiller=row.get("cancelledByFulfiller"),
            weight_lb=row.get("weightLb"),
            silent=bool(row.get("silent", False)),
        )
    return sim.inventory()
