"""The simulator's FBA Inventory v1: `getInventorySummaries` from the same stock the MCF side uses.

Quantities per seller SKU, computed from the `Simulator`'s state at the moment of the call:

- `fulfillableQuantity`: the sellable units (what previews check and creates reserve);
- `reservedQuantity.pendingCustomerOrderQuantity`: units of MCF orders created but not shipped yet
  (held orders included, until Amazon's 14-day hold limit gives them back);
- `totalQuantity`: fulfillable + reserved (a shipment takes its units out of both).

`lastUpdatedTime` is the last moment any of these changed: a create or update reserving units, a
cancellation giving them back, a shipment leaving, a restock or an inventory change through the
controls. `startDateTime` returns the SKUs changed *after* it. `set_inventory(..., silent=True)`
changes a quantity without moving `lastUpdatedTime`, the way Amazon documents that some changes
escape `startDateTime` (so a test can prove the full sweep catches them).

Paging: at most `page_size` summaries per page in seller-SKU order; `pagination.nextToken` is
valid for 30 seconds on the rate clock and only together with the same filters, `startDateTime`
included (Amazon's rule since 2022). Requests are checked against the parameters of Amazon's model
(required `granularityType=Marketplace`, `granularityId`, one `marketplaceIds`, at most 50
`sellerSkus`, ISO 8601 `startDateTime` no older than 18 months) and answered 400 otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request
from jsonschema import Draft202012Validator

from ...schemas import FORMAT_CHECKER, StrictValidator
from .envelope import ApiError, invalid_input
from .fulfilment import IdFactory, milestones
from .render import iso
from .validation import _raise_on_errors

if TYPE_CHECKING:
    from .state import Simulator

OPERATION = "getInventorySummaries"
PATH = "/fba/inventory/v1/summaries"
NEXT_TOKEN_TTL_S = 30.0
MAX_SELLER_SKUS = 50
MAX_LOOKBACK = timedelta(days=548)  # "no earlier than 18 months prior"

_QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["granularityType", "granularityId", "marketplaceIds"],
    "properties": {
        "details": {"enum": ["true", "false"]},
        "granularityType": {"enum": ["Marketplace"]},
        "granularityId": {"type": "string", "minLength": 1},
        "marketplaceIds": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"minLength": 1}},
        "startDateTime": {"type": "string", "format": "date-time"},
        "sellerSkus": {"type": "array", "maxItems": MAX_SELLER_SKUS, "items": {"minLength": 1}},
        "sellerSku": {"type": "string", "minLength": 1},
        "nextToken": {"type": "string", "minLength": 1},
    },
}
_ARRAYS = ("marketplaceIds", "sellerSkus")


class StockTimes:
    """When each SKU's quantities last changed through an explicit event (Amazon's lastUpdatedTime
    before shipments are taken into account). Used under the Simulator's lock."""

    def __init__(self) -> None:
        self._base = datetime(1970, 1, 1, tzinfo=UTC)
        self._touched: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def reset(self, now: datetime) -> None:
        with self._lock:
            self._base = now
            self._touched.clear()

    def touch(self, sku: str, when: datetime) -> None:
        with self._lock:
            self._touched[sku] = max(when, self._touched.get(sku, self._base))

    def get(self, sku: str) -> datetime:
        with self._lock:
            return self._touched.get(sku, self._base)

    def changed_after(self, start: datetime, skus: Iterable[str]) -> set[str]:
        """The SKUs (of `skus`) whose last explicit change is after `start`."""
        with self._lock:
            if self._base > start:
                return set(skus)
            return {sku for sku, when in self._touched.items() if when > start}


@dataclass(frozen=True)
class Stock:
    sku: str
    fulfillable: int
    reserved: int
    updated: datetime

    @property
    def total(self) -> int:
        return self.fulfillable + self.reserved


def _orders_view(sim: Simulator, now: datetime) -> tuple[dict[str, int], dict[str, datetime]]:
    """(units reserved per SKU, when a shipment of the SKU last left) as of `now`.

    Held orders keep their units reserved; a released order's units leave (reserved and total)
    when its shipments leave, which is also a change of the SKU."""
    reserved: dict[str, int] = {}
    shipped: dict[str, datetime] = {}
    for order in sim._orders.values():
        if order.reservation_released or order.invalid:
            continue
        m = milestones(order, sim.config.timings)
        if m is None:
            for line in order.lines:
                reserved[line.sku] = reserved.get(line.sku, 0) + line.fulfillable
            continue
        for shipment in order.plan:
            for package in shipment.packages:
                for _item_id, sku, quantity in package.items:
                    if now < m.shipped:
                        reserved[sku] = reserved.get(sku, 0) + quantity
                    else:
                        shipped[sku] = max(shipped.get(sku, m.shipped), m.shipped)
    return reserved, shipped


def stock(sim: Simulator, now: datetime, skus: Iterable[str] | None = None) -> dict[str, Stock]:
    """The quantities and lastUpdatedTime of `skus` (default: every SKU) as of `now`; call under
    the simulator's lock."""
    reserved, shipped = _orders_view(sim, now)
    return _rows(sim, sim._skus if skus is None else skus, reserved, shipped)


def _rows(
    sim: Simulator, skus: Iterable[str], reserved: dict[str, int], shipped: dict[str, datetime]
) -> dict[str, Stock]:
    out = {}
    for sku in skus:
        if sku not in sim._skus:
            continue
        touched = sim.stock_times.get(sku)
        left = shipped.get(sku)
        out[sku] = Stock(
            sku=sku,
            fulfillable=sim._available.get(sku, 0),
            reserved=reserved.get(sku, 0),
            updated=max(touched, left) if left else touched,
        )
    return out


def changed_after(sim: Simulator, start: datetime, now: datetime) -> dict[str, Stock]:
    """The SKUs whose quantities changed after `start` (work in proportion to the changes)."""
    reserved, shipped = _orders_view(sim, now)
    candidates = sim.stock_times.changed_after(start, sim._skus)
    candidates |= {sku for sku, when in shipped.items() if when > start}
    return {s: row for s, row in _rows(sim, candidates, reserved, shipped).items() if row.updated > start}


# --------------------------------------------------------------------------------------------
# The operation


@cache
def _validator() -> Draft202012Validator:
    validator: Draft202012Validator = StrictValidator(_QUERY_SCHEMA, format_checker=FORMAT_CHECKER)
    return validator


def parse_query(args: Mapping[str, str]) -> dict[str, Any]:
    """The query string as the model types it (arrays comma-separated), or a 400 ApiError."""
    query: dict[str, Any] = dict(args)
    for name in _ARRAYS:
        if name in query:
            query[name] = [v for v in str(query[name]).split(",")]
    _raise_on_errors(_validator(), query)
    return query


def _filters(query: Mapping[str, Any]) -> dict[str, Any]:
    """What selects the summaries (the precedence the model describes), for nextToken checks."""
    if "startDateTime" in query:
        return {"startDateTime": query["startDateTime"]}
    if "sellerSkus" in query:
        return {"sellerSkus": sorted(query["sellerSkus"])}
    if "sellerSku" in query:
        return {"sellerSku": query["sellerSku"]}
    return {}


def _fingerprint(query: Mapping[str, Any]) -> str:
    data = {"f": _filters(query), "m": query["marketplaceIds"], "d": query.get("details", "false")}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(fingerprint: str, after: str, issued: float) -> str:
    raw = json.dumps({"f": fingerprint, "a": after, "t": issued}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str, float]:
    try:
        data = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
        return str(data["f"]), str(data["a"]), float(data["t"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise invalid_input("Value for parameter nextToken is invalid.") from exc


def _parse_start(value: str, now: datetime) -> datetime:
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise invalid_input(
            "Query parameter [startDateTime] value is not a valid ISO date-time object."
        ) from exc
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed < now - MAX_LOOKBACK:
        raise invalid_input("startDateTime must be no earlier than 18 months before now.")
    return parsed


def get_inventory_summaries(sim: Simulator, args: Mapping[str, str]) -> dict[str, Any]:
    query = parse_query(args)
    with sim._lock:
        now = sim.now()
        sim._settle(now)
        after = ""
        fingerprint = _fingerprint(query)
        if "nextToken" in query:
            token_print, after, issued = _decode_token(query["nextToken"])
            if sim.rate_clock.monotonic() - issued > NEXT_TOKEN_TTL_S:
                raise invalid_input("The nextToken has expired; start the listing again.")
            if token_print != fingerprint:
                raise invalid_input(
                    "Value for parameter nextToken is invalid: repeat the filters of the first request "
                    "(startDateTime included) with every nextToken."
                )
        filters = _filters(query)
        if "startDateTime" in filters:
            rows = changed_after(sim, _parse_start(filters["startDateTime"], now), now)
        elif "sellerSkus" in filters:
            rows = stock(sim, now, filters["sellerSkus"])
        elif "sellerSku" in filters:
            rows = stock(sim, now, [filters["sellerSku"]])
        else:
            rows = stock(sim, now)
        skus = list(rows)
        selected = sorted(s for s in set(skus) if s > after)
        page = selected[: sim.config.page_size]
        details = query.get("details") == "true"
        body: dict[str, Any] = {
            "payload": {
                "granularity": {"granularityType": "Marketplace", "granularityId": query["granularityId"]},
                "inventorySummaries": [_render(sim, rows[s], details) for s in page],
            }
        }
        if len(selected) > len(page):
            body["pagination"] = {
                "nextToken": _encode_token(fingerprint, page[-1], sim.rate_clock.monotonic())
            }
        return body


def _render(sim: Simulator, row: Stock, details: bool) -> dict[str, Any]:
    cfg = sim._skus.get(row.sku)
    summary: dict[str, Any] = {
        "asin": "B0" + hashlib.sha256(row.sku.encode()).hexdigest()[:8].upper(),
        "fnSku": (cfg.fnsku if cfg and cfg.fnsku else None) or IdFactory.fnsku(row.sku),
        "sellerSku": row.sku,
        "condition": "NewItem",
        "lastUpdatedTime": iso(row.updated),
        "productName": row.sku,
        "totalQuantity": row.total,
    }
    if details:
        summary["inventoryDetails"] = {
            "fulfillableQuantity": row.fulfillable,
            "inboundWorkingQuantity": 0,
            "inboundShippedQuantity": 0,
            "inboundReceivingQuantity": 0,
            "reservedQuantity": {
                "totalReservedQuantity": row.reserved,
                "pendingCustomerOrderQuantity": row.reserved,
                "pendingTransshipmentQuantity": 0,
                "fcProcessingQuantity": 0,
            },
            "researchingQuantity": {"totalResearchingQuantity": 0, "researchingQuantityBreakdown": []},
            "unfulfillableQuantity": {
                "totalUnfulfillableQuantity": 0,
                "customerDamagedQuantity": 0,
                "warehouseDamagedQuantity": 0,
                "distributorDamagedQuantity": 0,
                "carrierDamagedQuantity": 0,
                "defectiveQuantity": 0,
                "expiredQuantity": 0,
            },
        }
    return summary


# --------------------------------------------------------------------------------------------
# HTTP: the operation and a restock control


def inventory_blueprint(sim: Simulator) -> Blueprint:
    """`GET /fba/inventory/v1/summaries` and `POST /_sim/restock`
    (`{"items": [{"sellerSku", "units", "silent"}]}`: units arrive and become sellable)."""
    from .app import _dispatch, json_response

    bp = Blueprint("fba_inventory", __name__)

    @bp.get(PATH)
    def get_inventory_summaries_route() -> Response:
        args = {k: v for k, v in request.args.items()}
        return _dispatch(sim, OPERATION, lambda: sim.get_inventory_summaries(args))

    @bp.post("/_sim/restock")
    def restock() -> Response:
        try:
            body = request.get_json(silent=True)
            rows = body.get("items") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise invalid_input('The body must be {"items": [{"sellerSku", "units"}]}.')
            for row in rows:
                units = row.get("units") if isinstance(row, dict) else None
                if not isinstance(row, dict) or not isinstance(row.get("sellerSku"), str):
                    raise invalid_input("Each restock row needs a sellerSku.")
                if not isinstance(units, int) or isinstance(units, bool):
                    raise invalid_input("units must be an integer.")
                sim.restock(row["sellerSku"], units, silent=bool(row.get("silent", False)))
            return json_response(sim.inventory(), 200)
        except ApiError as err:
            return json_response(err.body(), err.status)
        except ValueError as err:
            return json_response(invalid_input(str(err)).body(), 400)

    return bp
