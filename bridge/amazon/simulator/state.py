"""`Simulator`: Amazon's side of Multi-Channel Fulfillment, held in memory and thread-safe.

It owns the orders, the sellable inventory and the control knobs (faults, scenarios), and it
answers each SP-API operation with the model's response shape or raises `ApiError`. HTTP lives
in `app.py`; this class can be driven directly from Python (tests, the demo).

Two clocks on purpose: `clock` moves fulfilment (a ManualClock in tests, a ScaledClock in the
demo) while `rate_clock` measures rate limits and token lifetimes in real seconds.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import heapq
import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.clock import Clock, SystemClock

from . import render
from .auth import LwaAuthority
from .buckets import RateLimiter
from .config import Fidelity, SimulatorConfig, SkuConfig
from .envelope import ApiError, for_status, invalid_input, not_found, order_not_found, quota_exceeded
from .faults import Fault, FaultBook, FaultKind
from .fulfilment import (
    CANCELLABLE,
    CANCELLED,
    RECEIVED,
    SHIPPED,
    UPDATABLE,
    IdFactory,
    OrderLine,
    PlannedPackage,
    PlannedShipment,
    ReturnAuthorizationRecord,
    ReturnRecord,
    SimOrder,
    build_plan,
    shipment_status,
    status_at,
    tracking,
)
from .inventory import StockTimes, get_inventory_summaries
from .ledger import Ledger
from .notifications import NotificationsService, check_token_kind
from .preview import fulfillment_preview, ineligible_for, is_undeliverable, required_features
from .validation import validate_body, validate_parameters

DROPPED = 0  # ledger status for a call answered by dropping the connection

RETURN_REASON_CODES: tuple[tuple[str, str], ...] = (
    ("CR-UNWANTED_ITEM", "No longer needed/wanted"),
    ("AMZ-PG-BAD-DESC", "Different from website description"),
    ("CR-DEFECTIVE", "Defective/Does not work properly"),
    ("CR-ORDERED_WRONG_ITEM", "Accidental order"),
    ("CR-FOUND_BETTER_PRICE", "Better price available"),
    ("CR-DAMAGED_BY_FC", "Damaged due to inappropriate packaging"),
    ("CR-MISSED_ESTIMATED_DELIVERY", "Missed estimated delivery date"),
    ("CR-MISSING_PARTS", "Missing parts or accessories"),
    ("CR-DAMAGED_BY_CARRIER", "Damaged during shipping"),
    ("CR-SWITCHEROO", "Different from what was ordered"),
    ("CR-EXTRA_ITEM", "Arrived in addition to what was ordered"),
    ("CR-UNAUTHORIZED_PURCHASE", "Unauthorized purchase"),
)

FEATURES: tuple[tuple[str, str], ...] = (
    ("BLANK_BOX", "Provides the ability to ship in non-Amazon branded packaging (blank boxes)."),
    ("PSLIP", "Provides the ability to insert customized packing slips with messages."),
    ("BLOCK_AMZL", "Blocks orders from being shipped using Amazon Logistics (AMZL)."),
)

_ORDER_FIELDS = (
    "displayableOrderId",
    "displayableOrderDate",
    "displayableOrderComment",
    "shippingSpeedCategory",
    "destinationAddress",
    "deliveryWindow",
    "notificationEmails",
    "featureConstraints",
)
_LINE_EXTRAS = ("giftMessage", "displayableComment", "perUnitDeclaredValue", "perUnitPrice", "perUnitTax")


class _AdvanceableClock:
    """Wraps a clock so `advance` works on any clock (a ManualClock advances itself)."""

    def __init__(self, inner: Clock) -> None:
        self.inner = inner
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self.inner.now() + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self.inner.monotonic() + self._offset

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)

    def advance(self, seconds: float) -> None:
        advance = getattr(self.inner, "advance", None)
        if callable(advance):
            advance(seconds)
        else:
            with self._lock:
                self._offset += seconds


@dataclass(frozen=True)
class CallPermit:
    """What `begin_call` decided: the rate-limit header and whether to drop the connection."""

    operation: str
    rate_limit: str
    drop_before: bool = False
    drop_after: bool = False
    delay_after: float = 0.0  # the operation runs, then the answer waits (a slow network back)


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        rate_clock: Clock | None = None,
        delay_clock: Clock | None = None,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.clock = _AdvanceableClock(clock or SystemClock())
        self.rate_clock = _AdvanceableClock(rate_clock or SystemClock())
        self.delay_clock: Clock = delay_clock or SystemClock()
        self.ledger = Ledger()
        self.faults = FaultBook()
        self.fidelity = self.config.fidelity
        self.auth = LwaAuthority(
            self.config.credentials,
            self.rate_clock,
            revoke_access_with_grant=self.fidelity.revoke_access_tokens_with_grant,
        )
        self.buckets = RateLimiter(self.rate_clock, self.config.limit_for)
        self._lock = threading.RLock()
        self._orders: dict[str, SimOrder] = {}
        # Orders that were put on hold, oldest first: `_settle` looks at the due ones only.
        self._holds: list[tuple[datetime, int, SimOrder]] = []
        self._hold_seq = itertools.count()
        self._packages: dict[int, tuple[SimOrder, PlannedShipment, PlannedPackage]] = {}
        self._skus: dict[str, SkuConfig] = {}
        self._available: dict[str, int] = {}
        self._invalid_postal_codes: frozenset[str] = frozenset()
        self._ids = IdFactory(self.config.seed)
        self.notifications = NotificationsService(f"amzn1.sp.solution.{self.config.credentials.client_id}")
        self.stock_times = StockTimes()
        self.reset()

    # ----------------------------------------------------------------- protocol: auth, limits, faults

    def grant_token(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """LWA refresh-token grant: (HTTP status, JSON body)."""
        self.ledger.record_call("lwaToken", self.rate_clock.monotonic())
        status, body = self.auth.grant(form)
        self.ledger.record_status("lwaToken", status)
        return status, body

    def begin_call(self, operation: str, access_token: str | None) -> CallPermit:
        """Everything Amazon does before an operation runs: faults, token check, token bucket."""
        self.ledger.record_call(operation, self.rate_clock.monotonic())
        rate_limit = str(float(self.config.limit_for(operation).rate))
        fault = self.faults.take(operation)
        delay_after = 0.0
        if fault is not None and fault.kind is FaultKind.ACCEPT_THEN_DELAY:
            delay_after = min(fault.delay_seconds, self.config.max_fault_delay)
        elif fault is not None:
            if fault.delay_seconds > 0:
                self.delay_clock.sleep(min(fault.delay_seconds, self.config.max_fault_delay))
            if fault.kind is FaultKind.EXPIRE_TOKENS:
                self.auth.expire_all()
            elif fault.kind is FaultKind.REVOKE_ACCESS_TOKENS:
                self.auth.revoke_access_tokens()
            elif fault.kind is FaultKind.STATUS:
                raise for_status(fault.status, fault.code, fault.message, self._retry_after(fault))
            elif fault.kind is FaultKind.DROP:
                return CallPermit(operation, rate_limit, drop_before=True)
        seller = self.auth.authenticate(access_token)
        check_token_kind(operation, seller)
        if not self.buckets.try_acquire(seller, operation):
            raise quota_exceeded()
        drop_after = fault is not None and fault.kind is FaultKind.ACCEPT_THEN_DROP
        return CallPermit(operation, rate_limit, drop_after=drop_after, delay_after=delay_after)

    def finish_call(self, operation: str, status: int) -> None:
        """Record how a call was answered (`DROPPED` when the connection was dropped)."""
        self.ledger.record_status(operation, status)

    def _retry_after(self, fault: Fault) -> dict[str, str]:
        if fault.retry_after is None:
            return {}
        if isinstance(fault.retry_after, str):
            return {"Retry-After": fault.retry_after}
        if fault.retry_after_as_date:
            when = self.rate_clock.now() + timedelta(seconds=fault.retry_after)
            return {"Retry-After": email.utils.format_datetime(when.astimezone(UTC), usegmt=True)}
        return {"Retry-After": str(int(fault.retry_after))}

    # ----------------------------------------------------------------- SP-API operations

    def get_fulfillment_preview(self, body: Any) -> dict[str, Any]:
        body = validate_body("getFulfillmentPreview", body)
        with self._lock:
            self._settle(self._now())
            return fulfillment_preview(
                body,
                available=dict(self._available),
                skus=dict(self._skus),
                config=replace(self.config, invalid_postal_codes=self._invalid_postal_codes),
                now=self._now(),
            )

    def create_fulfillment_order(self, body: Any) -> dict[str, Any]:
        body = validate_body("createFulfillmentOrder", body)
        sfo_id = body["sellerFulfillmentOrderId"]
        with self._lock:
            if sfo_id in self._orders:
                raise invalid_input(
                    f"A fulfillment order with SellerFulfillmentOrderId {sfo_id} already exists.",
                    "Each sellerFulfillmentOrderId may be used for one order only.",
                )
            self._settle(self._now())
            item_ids = [i["sellerFulfillmentOrderItemId"] for i in body["items"]]
            if len(set(item_ids)) != len(item_ids):
                raise invalid_input("SellerFulfillmentOrderItemId values must be unique within an order.")
            required = required_features(body)
            for item in body["items"]:
                if item["sellerSku"] not in self._skus:
                    raise invalid_input(
                        f"the SellerSKU for Item Id: {item['sellerFulfillmentOrderItemId']} is invalid."
                    )
                refused = ineligible_for(item["sellerSku"], required, self.config)
                if refused:
                    raise invalid_input(
                        f"Item Id: {item['sellerFulfillmentOrderItemId']} is not eligible for the required "
                        f"feature(s) {', '.join(refused)}."
                    )
            now = self._now().replace(microsecond=0)
            policy = body.get("fulfillmentPolicy", "FillOrKill")
            lines = self._allocate(body["items"])
            short = any(ln.short for ln in lines)
            invalid = is_undeliverable(body["destinationAddress"], self._invalid_postal_codes) or (
                short and policy != "FillAllAvailable"
            )
            if invalid:
                for ln in lines:
                    ln.fulfillable = 0
            for ln in lines:
                self._available[ln.sku] -= ln.fulfillable
                self.stock_times.touch(ln.sku, self._now())
            fields = {k: body[k] for k in _ORDER_FIELDS if k in body}
            fields["marketplaceId"] = body.get("marketplaceId", self.config.default_marketplace_id)
            order = SimOrder(
                seller_fulfillment_order_id=sfo_id,
                fields=fields,
                policy=policy,
                lines=lines,
                received_at=now,
                released_at=None if body.get("fulfillmentAction") == "Hold" else now,
                invalid=invalid,
            )
            if order.held:
                self._held(order)
            elif not invalid:
                self._plan(order)
            self._orders[sfo_id] = order
            self.ledger.record_create(sfo_id)
        return {}

    def _allocate(self, items: list[dict[str, Any]]) -> list[OrderLine]:
        remaining = dict(self._available)
        lines = []
        for item in items:
            sku, qty = item["sellerSku"], int(item["quantity"])
            fulfillable = max(0, min(qty, remaining.get(sku, 0)))
            remaining[sku] = remaining.get(sku, 0) - fulfillable
            fnsku = self._skus[sku].fnsku or IdFactory.fnsku(sku)
            extras = {k: item[k] for k in _LINE_EXTRAS if k in item}
            lines.append(
                OrderLine(sku, item["sellerFulfillmentOrderItemId"], qty, fulfillable, fnsku, extras)
            )
        return lines

    def _plan(self, order: SimOrder) -> None:
        carriers = self.config.carriers
        if "BLOCK_AMZL" in required_features(order.fields):
            carriers = tuple(c for c in carriers if not c.startswith("AMZL")) or carriers
        order.plan = build_plan(order.lines, self._skus, carriers, self._ids)
        for shipment in order.plan:
            for package in shipment.packages:
                self._packages[package.number] = (order, shipment, package)

    def _unplan(self, order: SimOrder) -> None:
        for shipment in order.plan:
            for package in shipment.packages:
                self._packages.pop(package.number, None)
        order.plan = ()

    def get_fulfillment_order(self, seller_fulfillment_order_id: str) -> dict[str, Any]:
        validate_parameters("getFulfillmentOrder", {"sellerFulfillmentOrderId": seller_fulfillment_order_id})
        with self._lock:
            order = self._order(seller_fulfillment_order_id)
            return render.get_fulfillment_order(
                order, self.config.timings, self._now(), self.config.fulfillment_center_id
            )

    def list_all_fulfillment_orders(
        self, query_start_date: str | None = None, next_token: str | None = None
    ) -> dict[str, Any]:
        validate_parameters(
            "listAllFulfillmentOrders", {"queryStartDate": query_start_date, "nextToken": next_token}
        )
        with self._lock:
            now = self._now()
            after: tuple[datetime, str] | None = None
            if next_token:
                if query_start_date:
                    # Amazon ignores queryStartDate on follow-up pages and says so in a warning.
                    self.ledger.record_warning(
                        "listAllFulfillmentOrders", "queryStartDate is ignored when nextToken is given"
                    )
                start, after = _decode_next_token(next_token)
            elif query_start_date:
                start = _parse_time(query_start_date)
            else:
                start = now - timedelta(seconds=self.config.list_default_lookback)
            rows = []
            for order in self._orders.values():
                _, since = status_at(order, self.config.timings, now)
                key = (since, order.seller_fulfillment_order_id)
                if since >= start and (after is None or key > after):
                    rows.append((key, order))
            rows.sort(key=lambda r: r[0])
            page = rows[: self.config.page_size]
            payload: dict[str, Any] = {
                "fulfillmentOrders": [render.fulfillment_order(o, self.config.timings, now) for _, o in page]
            }
            if len(rows) > len(page):
                payload["nextToken"] = _encode_next_token(start, page[-1][0])
            return {"payload": payload}

    def update_fulfillment_order(self, seller_fulfillment_order_id: str, body: Any) -> dict[str, Any]:
        validate_parameters(
            "updateFulfillmentOrder", {"sellerFulfillmentOrderId": seller_fulfillment_order_id}
        )
        body = validate_body("updateFulfillmentOrder", body)
        with self._lock:
            order = self._order(seller_fulfillment_order_id)
            now = self._now().replace(microsecond=0)
            status, _ = status_at(order, self.config.timings, now)
            if status not in UPDATABLE:
                raise invalid_input(
                    f"Fulfillment order {seller_fulfillment_order_id} can no longer be updated: "
                    f"its status is {status}."
                )
            if "items" in body:
                self._settle(now)
                self._update_items(order, body["items"])
            for key in _ORDER_FIELDS:
                if key in body:
                    order.fields[key] = body[key]
            if "fulfillmentPolicy" in body:
                order.policy = body["fulfillmentPolicy"]
            action = body.get("fulfillmentAction")
            if action == "Ship" and order.held:
                order.released_at = now
                self._plan(order)
            elif action == "Hold" and not order.held:
                if status != RECEIVED:
                    raise invalid_input("An order hold can only be placed while the order is Received.")
                order.released_at = None
                self._unplan(order)
                self._held(order)
        return {}

    def _update_items(self, order: SimOrder, items: list[dict[str, Any]]) -> None:
        if not order.held:
            raise invalid_input("Items can only be changed while the order is on hold.")
        for item in items:
            line = order.line(item["sellerFulfillmentOrderItemId"])
            if line is None or item.get("sellerSku", line.sku) != line.sku:
                raise invalid_input("Unknown sellerFulfillmentOrderItemId or sellerSku in items.")
            wanted = int(item["quantity"])
            extra = wanted - line.fulfillable
            available = self._available.get(line.sku, 0)
            if extra > available and order.policy != "FillAllAvailable":
                raise invalid_input(f"Not enough sellable inventory for item {line.item_id}.")
            extra = min(extra, available)
            self._available[line.sku] -= extra
            self.stock_times.touch(line.sku, self._now())
            line.fulfillable += extra
            line.quantity = wanted
            line.extras.update({k: item[k] for k in _LINE_EXTRAS if k in item})

    def cancel_fulfillment_order(self, seller_fulfillment_order_id: str) -> dict[str, Any]:
        validate_parameters(
            "cancelFulfillmentOrder", {"sellerFulfillmentOrderId": seller_fulfillment_order_id}
        )
        with self._lock:
            order = self._order(seller_fulfillment_order_id)
            now = self._now().replace(microsecond=0)
            status, _ = status_at(order, self.config.timings, now)
            if status == CANCELLED:
                return {}
            if status not in CANCELLABLE:
                raise invalid_input(
                    f"Fulfillment order {seller_fulfillment_order_id} cannot be cancelled: its status is "
                    f"{status}. An order can be cancelled only while it is Received or Planning.",
                    "Picking has started or the order is finished; it is too late to cancel.",
                )
            order.cancelled_at = now
            self._release(order)
        return {}

    def get_package_tracking_details(self, package_number: str | int | None) -> dict[str, Any]:
        number = None if package_number is None else str(package_number)
        validate_parameters("getPackageTrackingDetails", {"packageNumber": number})
        assert number is not None
        with self._lock:
            now = self._now()
            entry = self._packages.get(int(number))
            if entry is None:
                raise not_found(f"Package {number} was not found.")
            order, shipment, package = entry
            progress = tracking(order, self.config.timings, now)
            if progress is None or shipment_status(order, shipment, self.config.timings, now) != SHIPPED:
                raise not_found(f"Package {number} was not found.")
            return render.package_tracking(
                order, package, progress, encoded_link=self.fidelity.encoded_tracking_links
            )

    def list_return_reason_codes(
        self,
        seller_sku: str | None,
        marketplace_id: str | None = None,
        seller_fulfillment_order_id: str | None = None,
        language: str | None = None,
    ) -> dict[str, Any]:
        raw = {
            "sellerSku": seller_sku,
            "marketplaceId": marketplace_id,
            "sellerFulfillmentOrderId": seller_fulfillment_order_id,
            "language": language,
        }
        validate_parameters("listReturnReasonCodes", raw)
        with self._lock:
            if seller_sku not in self._skus:
                raise invalid_input("Value for parameter sellerSku is invalid. Reason: unknown SKU.")
            if seller_fulfillment_order_id:
                self._order(seller_fulfillment_order_id)
        details = []
        for code, description in RETURN_REASON_CODES:
            row = {"returnReasonCode": code, "description": description}
            if language:
                row["translatedDescription"] = description
            details.append(row)
        return {"payload": {"reasonCodeDetails": details}}

    def create_fulfillment_return(self, seller_fulfillment_order_id: str, body: Any) -> dict[str, Any]:
        validate_parameters(
            "createFulfillmentReturn", {"sellerFulfillmentOrderId": seller_fulfillment_order_id}
        )
        body = validate_body("createFulfillmentReturn", body)
        fc_id = self.config.fulfillment_center_id
        with self._lock:
            order = self._order(seller_fulfillment_order_id)
            now = self._now().replace(microsecond=0)
            accepted: list[dict[str, Any]] = []
            refused: list[dict[str, Any]] = []
            auth: ReturnAuthorizationRecord | None = None
            for item in body["items"]:
                problem = self._return_problem(order, item, now)
                if problem is not None:
                    code, description = problem
                    refused.append(
                        {
                            "sellerReturnItemId": item["sellerReturnItemId"],
                            "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"],
                            "invalidItemReason": {"invalidItemReasonCode": code, "description": description},
                        }
                    )
                    continue
                if auth is None:
                    auth = ReturnAuthorizationRecord(*self._ids.rma())
                    order.authorizations.append(auth)
                record = ReturnRecord(
                    seller_return_item_id=item["sellerReturnItemId"],
                    item_id=item["sellerFulfillmentOrderItemId"],
                    amazon_shipment_id=item["amazonShipmentId"],
                    reason_code=item["returnReasonCode"],
                    comment=item.get("returnComment"),
                    created_at=now,
                    authorization_id=auth.authorization_id,
                )
                order.returns.append(record)
                accepted.append(render.return_item(record, self.config.timings, now, fc_id))
            payload = {
                "returnItems": accepted,
                "invalidReturnItems": refused,
                "returnAuthorizations": [render.return_authorization(auth, fc_id)] if auth else [],
            }
        return {"payload": payload}

    def _return_problem(
        self, order: SimOrder, item: Mapping[str, Any], now: datetime
    ) -> tuple[str, str] | None:
        item_id = item["sellerFulfillmentOrderItemId"]
        shipment = order.shipment(item["amazonShipmentId"])
        if order.line(item_id) is None or shipment is None or not shipment.quantity_of(item_id):
            return "InvalidValues", "The item was not found in a fulfillment order."
        if item["returnReasonCode"] not in {c for c, _ in RETURN_REASON_CODES}:
            return "InvalidValues", "The return reason code is not valid for this item."
        if any(r.seller_return_item_id == item["sellerReturnItemId"] for r in order.returns):
            return "DuplicateRequest", "A fulfillment return has already been requested for this item."
        if shipment_status(order, shipment, self.config.timings, now) != SHIPPED:
            return "NoCompletedShipItems", "The fulfillment order containing this item has not yet shipped."
        returned = sum(
            1
            for r in order.returns
            if r.item_id == item_id and r.amazon_shipment_id == shipment.amazon_shipment_id
        )
        if returned >= shipment.quantity_of(item_id):
            return (
                "NoReturnableQuantity",
                "All item quantity available for return has been allocated to other return items.",
            )
        return None

    def get_features(self, marketplace_id: str | None) -> dict[str, Any]:
        validate_parameters("getFeatures", {"marketplaceId": marketplace_id})
        features = [
            {"featureName": name, "featureDescription": description, "sellerEligible": True}
            for name, description in FEATURES
        ]
        return {"payload": {"features": features}}

    def get_feature_inventory(
        self, marketplace_id: str | None, feature_name: str, next_token: str | None
    ) -> dict[str, Any]:
        validate_parameters(
            "getFeatureInventory",
            {"marketplaceId": marketplace_id, "featureName": feature_name, "nextToken": next_token},
        )
        self._known_feature(feature_name)
        eligible = sorted(self.config.feature_skus.get(feature_name, ()))
        start = self._page_start(next_token)
        page = eligible[start : start + self.config.page_size]
        with self._lock:
            skus = [
                {
                    "sellerSku": sku,
                    "fnSku": (self._skus[sku].fnsku if sku in self._skus else None) or IdFactory.fnsku(sku),
                    "skuCount": max(0, self._available.get(sku, 0)),
                }
                for sku in page
            ]
        payload: dict[str, Any] = {
            "marketplaceId": marketplace_id,
            "featureName": feature_name,
            "featureSkus": skus,
        }
        if start + self.config.page_size < len(eligible):
            payload["nextToken"] = f"features-{start + self.config.page_size}"
        return {"payload": payload}

    def get_feature_sku(
        self, marketplace_id: str | None, feature_name: str, seller_sku: str
    ) -> dict[str, Any]:
        validate_parameters(
            "getFeatureSKU",
            {"marketplaceId": marketplace_id, "featureName": feature_name, "sellerSku": seller_sku},
        )
        self._known_feature(feature_name)
        with self._lock:
            known = seller_sku in self._skus
            count = max(0, self._available.get(seller_sku, 0))
        eligible = known and seller_sku in self.config.feature_skus.get(feature_name, ())
        payload: dict[str, Any] = {
            "marketplaceId": marketplace_id,
            "featureName": feature_name,
            "isEligible": eligible,
            "sellerSku": seller_sku,
        }
        if eligible:
            payload["skuCount"] = count
        else:
            payload["ineligibleReasons"] = ["SKU_NOT_ELIGIBLE" if known else "INVALID_SKU"]
        return {"payload": payload}

    @staticmethod
    def _known_feature(feature_name: str) -> None:
        if feature_name not in {name for name, _ in FEATURES}:
            raise invalid_input(f"Unknown feature name {feature_name[:40]!r}.")

    @staticmethod
    def _page_start(next_token: str | None) -> int:
        if not next_token:
            return 0
        prefix, _, number = next_token.partition("-")
        if prefix != "features" or not number.isdigit():
            raise invalid_input("The nextToken is invalid or expired.")
        return int(number)

    # ----------------------------------------------------------------- controls (tests and demo)

    def set_inventory(
        self,
        sku: str,
        quantity: int | None = None,
        *,
        split: bool | None = None,
        cancelled_by_fulfiller: bool | None = None,
        weight_lb: str | None = None,
        silent: bool = False,
    ) -> None:
        """Create or change a SKU: sellable quantity now, and its scenario flags. `silent` leaves
        the SKU's lastUpdatedTime alone (a change Amazon's change feed would not report)."""
        if quantity is not None and quantity < 0:
            raise ValueError("quantity must not be negative")
        with self._lock:
            self._settle(self._now())
            cfg = self._skus.get(sku, SkuConfig())
            changes: dict[str, Any] = {}
            if quantity is not None:
                changes["quantity"] = quantity
                self._available[sku] = quantity
                if not silent:
                    self.stock_times.touch(sku, self._now())
            if split is not None:
                changes["split"] = split
            if cancelled_by_fulfiller is not None:
                changes["cancelled_by_fulfiller"] = cancelled_by_fulfiller
            if weight_lb is not None:
                changes["weight_lb"] = str(weight_lb)
            self._skus[sku] = replace(cfg, **changes)
            self._available.setdefault(sku, 0)

    def restock(self, sku: str, units: int, *, silent: bool = False) -> None:
        """`units` more (or, negative, fewer: damaged, removed) sellable units of a known SKU."""
        with self._lock:
            if sku not in self._skus:
                raise ValueError(f"unknown SKU {sku!r}; create it with set_inventory first")
            self._settle(self._now())
            if self._available.get(sku, 0) + units < 0:
                raise ValueError("a restock cannot take the sellable quantity below zero")
            self._available[sku] = self._available.get(sku, 0) + units
            if not silent:
                self.stock_times.touch(sku, self._now())

    def get_inventory_summaries(self, args: Mapping[str, str]) -> dict[str, Any]:
        """FBA Inventory v1 (see `inventory.py`): summaries of the same stock orders draw on."""
        return get_inventory_summaries(self, args)

    def inventory(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            self._settle(self._now())
            return {
                sku: {
                    "quantity": self._available.get(sku, 0),
                    "split": cfg.split,
                    "cancelledByFulfiller": cfg.cancelled_by_fulfiller,
                    "weightLb": cfg.weight_lb,
                }
                for sku, cfg in sorted(self._skus.items())
            }

    def available(self, sku: str) -> int:
        with self._lock:
            self._settle(self._now())
            return self._available.get(sku, 0)

    def set_invalid_postal_codes(self, postal_codes: set[str] | frozenset[str] | list[str]) -> None:
        with self._lock:
            self._invalid_postal_codes = frozenset(postal_codes)

    def invalid_postal_codes(self) -> list[str]:
        with self._lock:
            return sorted(self._invalid_postal_codes)

    def inject_fault(
        self,
        operation: str,
        *,
        kind: FaultKind | str = FaultKind.STATUS,
        status: int = 503,
        count: int = 1,
        retry_after: int | str | None = None,
        retry_after_as_date: bool = False,
        delay_seconds: float = 0.0,
        code: str | None = None,
        message: str | None = None,
    ) -> Fault:
        fault = Fault(
            operation=operation,
            kind=FaultKind(kind),
            status=status,
            count=count,
            retry_after=retry_after,
            retry_after_as_date=retry_after_as_date,
            delay_seconds=delay_seconds,
            code=code,
            message=message,
        )
        self.faults.add(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def revoke_refresh_token(self, refresh_token: str | None = None) -> None:
        """The seller revoked the app's authorisation: grants answer `invalid_grant` until
        `restore_refresh_tokens` (re-authorisation)."""
        self.auth.revoke(refresh_token)

    def restore_refresh_tokens(self) -> None:
        """The seller re-authorised the app: the refresh token works again."""
        self.auth.restore()

    def revoke_access_tokens(self) -> None:
        self.auth.revoke_access_tokens()

    def set_fidelity(self, **changes: bool) -> Fidelity:
        """Switch Amazon's quirks on or off at run time (names as in `Fidelity`)."""
        unknown = set(changes) - set(Fidelity.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fidelity switches: {sorted(unknown)}")
        with self._lock:
            self.fidelity = replace(self.fidelity, **changes)
            self.auth.revoke_access_with_grant = self.fidelity.revoke_access_tokens_with_grant
            return self.fidelity

    def expire_access_tokens(self) -> None:
        self.auth.expire_all()

    def advance(self, seconds: float, which: str = "fulfilment") -> None:
        """Move the fulfilment clock, the rate clock, or both ("both") forward."""
        if which not in {"fulfilment", "rate", "both"}:
            raise ValueError("which must be 'fulfilment', 'rate' or 'both'")
        if seconds < 0:
            raise ValueError("clocks only move forward")
        if which in {"fulfilment", "both"}:
            self.clock.advance(seconds)
        if which in {"rate", "both"}:
            self.rate_clock.advance(seconds)

    def stall(self, seller_fulfillment_order_id: str, stalled: bool = True) -> None:
        """From now on the order makes no progress (stays Received, Planning or Processing), as
        an order stuck in Amazon's network does; `stalled=False` lets it go on from now, each
        remaining milestone later by the time it stood still. One stall per order."""
        with self._lock:
            order = self._order(seller_fulfillment_order_id)
            now = self._now().replace(microsecond=0)
            if stalled:
                order.stalled_at, order.resumed_at = now, None
            elif order.stalled_at is not None and order.resumed_at is None:
                order.resumed_at = now

    def now(self) -> datetime:
        """The fulfilment clock's current time."""
        return self._now()

    def has_order(self, seller_fulfillment_order_id: str) -> bool:
        with self._lock:
            return seller_fulfillment_order_id in self._orders

    def order_status(self, seller_fulfillment_order_id: str) -> str:
        with self._lock:
            order = self._order(seller_fulfillment_order_id)
            return status_at(order, self.config.timings, self._now())[0]

    def orders_summary(self) -> list[dict[str, str]]:
        with self._lock:
            now = self._now()
            return [
                {
                    "sellerFulfillmentOrderId": sfo,
                    "fulfillmentOrderStatus": status_at(o, self.config.timings, now)[0],
                }
                for sfo, o in sorted(self._orders.items())
            ]

    def reset(self) -> None:
        """Back to the configured starting state: no orders, starting inventory, no faults, empty
        ledger, full buckets, configured fidelity, refresh tokens un-revoked. Issued access tokens
        of grants that were never revoked stay valid."""
        with self._lock:
            self._orders.clear()
            self._holds.clear()
            self._packages.clear()
            self._skus = dict(self.config.skus)
            self._available = {sku: cfg.quantity for sku, cfg in self.config.skus.items()}
            self._invalid_postal_codes = frozenset(self.config.invalid_postal_codes)
            self._ids = IdFactory(self.config.seed)
            self.fidelity = self.config.fidelity
            self.auth.revoke_access_with_grant = self.fidelity.revoke_access_tokens_with_grant
            self.stock_times.reset(self._now())
        self.faults.clear()
        self.ledger.reset()
        self.buckets.reset()
        self.auth.restore()
        self.notifications.reset()

    # ----------------------------------------------------------------- helpers

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def _settle(self, now: datetime) -> None:
        """Give back the units of held orders Amazon has cancelled on its own (14-day hold limit).

        Everything else about an order is computed from the clock; inventory is the one piece
        of state another order can observe, so it is settled before any read or write of it.
        Every call looks at the due holds only: a scan of every order on every request made the
        simulator slower with each order it had taken.
        """
        limit = timedelta(seconds=self.config.timings.hold_auto_cancel_after)
        while self._holds and now >= self._holds[0][0] + limit:
            order = heapq.heappop(self._holds)[2]
            if order.held:  # released since (it is queued again if it is held again)
                self._release(order)

    def _held(self, order: SimOrder) -> None:
        heapq.heappush(self._holds, (order.received_at, next(self._hold_seq), order))

    def _release(self, order: SimOrder) -> None:
        if not order.reservation_released:
            for ln in order.lines:
                self._available[ln.sku] = self._available.get(ln.sku, 0) + ln.fulfillable
                self.stock_times.touch(ln.sku, self._now())
            order.reservation_released = True

    def _order(self, seller_fulfillment_order_id: str) -> SimOrder:
        order = self._orders.get(seller_fulfillment_order_id)
        if order is None:
            raise order_not_found(
                seller_fulfillment_order_id, as_invalid_input=self.fidelity.order_not_found_as_invalid_input
            )
        return order


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid_input("Value for parameter queryStartDate is invalid. Reason: not ISO 8601.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _encode_next_token(start: datetime, last: tuple[datetime, str]) -> str:
    raw = json.dumps({"s": start.isoformat(), "t": last[0].isoformat(), "id": last[1]})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_next_token(token: str) -> tuple[datetime, tuple[datetime, str]]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return (
            datetime.fromisoformat(data["s"]),
            (datetime.fromisoformat(data["t"]), str(data["id"])),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise invalid_input("Value for parameter nextToken is invalid.") from exc


__all__ = ["DROPPED", "ApiError", "CallPermit", "Simulator"]
