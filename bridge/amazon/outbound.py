"""Fulfillment Outbound (Multi-Channel Fulfillment) operations, behind a version-neutral interface.

The pipeline depends on `FulfillmentOutbound` only. Method names say what the bridge wants
(preview, create, get, ...), not what a given API version calls it, so a 2026-07-04
implementation (`createOrder`, `getOrder`, `listOrders`, ... under `/fulfillment/outbound/2026-07-04`)
can be added beside `FulfillmentOutbound20200701`, registered in `IMPLEMENTATIONS`, and chosen in
`outbound_client(..., version=...)` without touching any caller. Each implementation translates
its version's JSON to the typed models in `models.py`.

Errors are the typed exceptions of `errors.py`; see `spapi.py` for retries and ambiguity. The
non-idempotent methods (`create`, `update`, `cancel`, `create_return`) raise with `ambiguous=True`
when Amazon may have acted without telling us; pass `retry_ambiguous=True` only where repeating
the request is known to be harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol, TypeVar

import httpx

from bridge.channels import AmazonAccount
from bridge.clock import Clock

from ..schemas import schema_problems
from .auth import AccessTokens
from .errors import InvalidInput
from .limiter import Buckets
from .models import (
    CreateFulfillmentOrderRequest,
    CreateFulfillmentReturnRequest,
    CreateFulfillmentReturnResult,
    Feature,
    FeatureSku,
    FeatureSkuEligibility,
    FulfillmentOrder,
    FulfillmentPreview,
    GetFulfillmentPreviewRequest,
    PackageTrackingDetails,
    ReturnReasonCode,
    UpdateFulfillmentOrderRequest,
    format_timestamp,
    previews_from_api,
)
from .spapi import (
    BreakerListener,
    CircuitPolicy,
    Operation,
    RetryPolicy,
    SpApiClient,
    SpApiResponse,
    unexpected,
)
from .tokens import TokenStore

T = TypeVar("T")

_MAX_PAGES = 10_000


class FulfillmentOutbound(Protocol):
    """What the bridge does with Amazon MCF, independent of the SP-API version."""

    version: str

    def preview(self, request: GetFulfillmentPreviewRequest) -> list[FulfillmentPreview]:
        """One preview per shipping speed: fulfillable or not (and why), fees, ship/arrival dates."""
        ...

    def create(self, request: CreateFulfillmentOrderRequest, *, retry_ambiguous: bool = False) -> None:
        """Create the MCF order. Amazon answers with no body: call `get()` to see it."""
        ...

    def get(self, seller_fulfillment_order_id: str) -> FulfillmentOrder:
        """The order with its items, shipments (packages, tracking numbers) and returns."""
        ...

    def list_changed(self, since: datetime) -> Iterator[FulfillmentOrder]:
        """Every order whose status changed at or after `since`, across all pages (headers only)."""
        ...

    def tracking(self, package_number: int) -> PackageTrackingDetails: ...

    def update(
        self,
        seller_fulfillment_order_id: str,
        request: UpdateFulfillmentOrderRequest,
        *,
        retry_ambiguous: bool = False,
    ) -> None: ...

    def cancel(self, seller_fulfillment_order_id: str, *, retry_ambiguous: bool = False) -> None:
        """Ask Amazon to cancel; only possible while the order is Received or Planning."""
        ...

    def return_reason_codes(
        self,
        seller_sku: str,
        *,
        marketplace_id: str | None = None,
        seller_fulfillment_order_id: str | None = None,
        language: str | None = None,
    ) -> list[ReturnReasonCode]: ...

    def create_return(
        self,
        seller_fulfillment_order_id: str,
        request: CreateFulfillmentReturnRequest,
        *,
        retry_ambiguous: bool = False,
    ) -> CreateFulfillmentReturnResult: ...

    def features(self, marketplace_id: str) -> list[Feature]: ...

    def feature_inventory(self, marketplace_id: str, feature_name: str) -> list[FeatureSku]:
        """Every SKU eligible for the feature in the marketplace, across all pages."""
        ...

    def feature_sku(self, marketplace_id: str, feature_name: str, seller_sku: str) -> FeatureSkuEligibility:
        """Whether one SKU may ship with the feature, and why not."""
        ...

    def recheck_credentials(self) -> None:
        """Ask Login with Amazon now whether the account's credentials work; a parked account
        resumes on success, `CredentialsRejected` says why not."""
        ...

    def close(self) -> None: ...


_BASE = "/fba/outbound/2020-07-01"
_ORDER = _BASE + "/fulfillmentOrders/{sellerFulfillmentOrderId}"


class Ops20200701:
    """The 2020-07-01 operations. `name` doubles as the rate-bucket name (usage plans are per operation)."""

    PREVIEW = Operation(
        "getFulfillmentPreview", "POST", _BASE + "/fulfillmentOrders/preview", idempotent=True
    )
    CREATE = Operation("createFulfillmentOrder", "POST", _BASE + "/fulfillmentOrders", idempotent=False)
    GET = Operation("getFulfillmentOrder", "GET", _ORDER, idempotent=True, by_id=True)
    LIST = Operation("listAllFulfillmentOrders", "GET", _BASE + "/fulfillmentOrders", idempotent=True)
    UPDATE = Operation("updateFulfillmentOrder", "PUT", _ORDER, idempotent=False, by_id=True)
    CANCEL = Operation("cancelFulfillmentOrder", "PUT", _ORDER + "/cancel", idempotent=False, by_id=True)
    TRACKING = Operation("getPackageTrackingDetails", "GET", _BASE + "/tracking", idempotent=True, by_id=True)
    RETURN_REASONS = Operation("listReturnReasonCodes", "GET", _BASE + "/returnReasonCodes", idempotent=True)
    CREATE_RETURN = Operation(
        "createFulfillmentReturn", "PUT", _ORDER + "/return", idempotent=False, by_id=True
    )
    FEATURES = Operation("getFeatures", "GET", _BASE + "/features", idempotent=True)
    FEATURE_INVENTORY = Operation(
        "getFeatureInventory", "GET", _BASE + "/features/inventory/{featureName}", idempotent=True
    )
    FEATURE_SKU = Operation(
        "getFeatureSKU", "GET", _BASE + "/features/inventory/{featureName}/{sellerSku}", idempotent=True
    )


def _parse(op: Operation, response: SpApiResponse, parse: Callable[[Any], T]) -> T:
    try:
        return parse(response.payload)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise unexpected(op, type(exc).__name__, response.request_id) from exc


def _payload(value: Any) -> Any:
    if value is None:
        raise KeyError("payload")
    return value


class FulfillmentOutbound20200701:
    """`FulfillmentOutbound` on the Fulfillment Outbound API version 2020-07-01."""

    version = "2020-07-01"
    ops = Ops20200701

    def __init__(self, client: SpApiClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"FulfillmentOutbound20200701({self.client!r})"

    def close(self) -> None:
        self.client.close()

    def recheck_credentials(self) -> None:
        self.client.auth.recheck()

    def preview(self, request: GetFulfillmentPreviewRequest) -> list[FulfillmentPreview]:
        response = self.client.call(self.ops.PREVIEW, json=request.to_api())
        return _parse(self.ops.PREVIEW, response, lambda p: previews_from_api(_payload(p)))

    def create(self, request: CreateFulfillmentOrderRequest, *, retry_ambiguous: bool = False) -> None:
        body = request.to_api()
        problems = schema_problems("spapi/create_fulfillment_order", body)
        if problems:
            fixes = "; ".join(f"{p['path'].removeprefix('$.')}: {p['fix']}" for p in problems)
            raise InvalidInput(
                message="the fulfillment order was not sent; fix: " + fixes,
                operation=self.ops.CREATE.name,
                details="checked locally before sending",
            )
        self.client.call(self.ops.CREATE, json=body, retry_ambiguous=retry_ambiguous)

    def get(self, seller_fulfillment_order_id: str) -> FulfillmentOrder:
        response = self.client.call(self.ops.GET, path_params=_order_id(seller_fulfillment_order_id))
        return _parse(self.ops.GET, response, lambda p: FulfillmentOrder.from_result(_payload(p)))

    def list_changed(self, since: datetime) -> Iterator[FulfillmentOrder]:
        op = self.ops.LIST
        params: dict[str, str] = {"queryStartDate": format_timestamp(since)}
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            response = self.client.call(op, params=params)
            payload = response.payload or {}
            orders = _parse(
                op,
                response,
                lambda p: [FulfillmentOrder.from_api(o) for o in ((p or {}).get("fulfillmentOrders") or [])],
            )
            yield from orders
            token = payload.get("nextToken") if isinstance(payload, dict) else None
            if not token:
                return
            if token in seen:
                raise unexpected(op, "nextToken repeats an earlier page", response.request_id)
            seen.add(token)
            # Follow-up pages take nextToken alone: Amazon ignores queryStartDate next to it.
            params = {"nextToken": str(token)}
        raise unexpected(op, f"more than {_MAX_PAGES} pages")

    def tracking(self, package_number: int) -> PackageTrackingDetails:
        response = self.client.call(self.ops.TRACKING, params={"packageNumber": int(package_number)})
        return _parse(self.ops.TRACKING, response, lambda p: PackageTrackingDetails.from_api(_payload(p)))

    def update(
        self,
        seller_fulfillment_order_id: str,
        request: UpdateFulfillmentOrderRequest,
        *,
        retry_ambiguous: bool = False,
    ) -> None:
        self.client.call(
            self.ops.UPDATE,
            path_params=_order_id(seller_fulfillment_order_id),
            json=request.to_api(),
            retry_ambiguous=retry_ambiguous,
        )

    def cancel(self, seller_fulfillment_order_id: str, *, retry_ambiguous: bool = False) -> None:
        self.client.call(
            self.ops.CANCEL,
            path_params=_order_id(seller_fulfillment_order_id),
            retry_ambiguous=retry_ambiguous,
        )

    def return_reason_codes(
        self,
        seller_sku: str,
        *,
        marketplace_id: str | None = None,
        seller_fulfillment_order_id: str | None = None,
        language: str | None = None,
    ) -> list[ReturnReasonCode]:
        params = {
            "sellerSku": seller_sku,
            "marketplaceId": marketplace_id,
            "sellerFulfillmentOrderId": seller_fulfillment_order_id,
            "language": language,
        }
        response = self.client.call(
            self.ops.RETURN_REASONS, params={k: v for k, v in params.items() if v is not None}
        )
        return _parse(
            self.ops.RETURN_REASONS,
            response,
            lambda p: [ReturnReasonCode.from_api(r) for r in ((p or {}).get("reasonCodeDetails") or [])],
        )

    def create_return(
        self,
        seller_fulfillment_order_id: str,
        request: CreateFulfillmentReturnRequest,
        *,
        retry_ambiguous: bool = False,
    ) -> CreateFulfillmentReturnResult:
        response = self.client.call(
            self.ops.CREATE_RETURN,
            path_params=_order_id(seller_fulfillment_order_id),
            json=request.to_api(),
            retry_ambiguous=retry_ambiguous,
        )
        return _parse(self.ops.CREATE_RETURN, response, CreateFulfillmentReturnResult.from_api)

    def features(self, marketplace_id: str) -> list[Feature]:
        response = self.client.call(self.ops.FEATURES, params={"marketplaceId": marketplace_id})
        return _parse(
            self.ops.FEATURES,
            response,
            lambda p: [Feature.from_api(f) for f in (_payload(p).get("features") or [])],
        )

    def feature_inventory(self, marketplace_id: str, feature_name: str) -> list[FeatureSku]:
        op = self.ops.FEATURE_INVENTORY
        params: dict[str, str] = {"marketplaceId": marketplace_id}
        seen: set[str] = set()
        found: list[FeatureSku] = []
        for _ in range(_MAX_PAGES):
            response = self.client.call(op, path_params={"featureName": feature_name}, params=params)
            payload = _parse(op, response, _payload)
            found += _parse(
                op, response, lambda p: [FeatureSku.from_api(s) for s in (p.get("featureSkus") or [])]
            )
            token = payload.get("nextToken") if isinstance(payload, dict) else None
            if not token:
                return found
            if token in seen:
                raise unexpected(op, "nextToken repeats an earlier page", response.request_id)
            seen.add(token)
            params = {"marketplaceId": marketplace_id, "nextToken": str(token)}
        raise unexpected(op, f"more than {_MAX_PAGES} pages")

    def feature_sku(self, marketplace_id: str, feature_name: str, seller_sku: str) -> FeatureSkuEligibility:
        op = self.ops.FEATURE_SKU
        response = self.client.call(
            op,
            path_params={"featureName": feature_name, "sellerSku": seller_sku},
            params={"marketplaceId": marketplace_id},
        )
        return _parse(op, response, lambda p: FeatureSkuEligibility.from_api(_payload(p), seller_sku))


def _order_id(seller_fulfillment_order_id: str) -> dict[str, str]:
    if not seller_fulfillment_order_id:
        raise ValueError("sellerFulfillmentOrderId must not be empty")
    return {"sellerFulfillmentOrderId": seller_fulfillment_order_id}


#: API version -> implementation. Add "2026-07-04" here when it is written.
IMPLEMENTATIONS: dict[str, Callable[[SpApiClient], FulfillmentOutbound]] = {
    FulfillmentOutbound20200701.version: FulfillmentOutbound20200701,
}
DEFAULT_VERSION = FulfillmentOutbound20200701.version


def outbound_client(
    account: AmazonAccount,
    clock: Clock,
    buckets: Buckets,
    transport: httpx.BaseTransport | None = None,
    *,
    http: httpx.Client | None = None,
    version: str = DEFAULT_VERSION,
    retry: RetryPolicy | None = None,
    circuit: CircuitPolicy | None = None,
    auth: AccessTokens | None = None,
    tokens: TokenStore | None = None,
    breaker_listener: BreakerListener | None = None,
    limiter_max_wait: float | None = None,
) -> FulfillmentOutbound:
    """The MCF client for one Amazon account. Build it once per account and process, and reuse it.

    `transport` routes the HTTP traffic elsewhere (e.g. `httpx.WSGITransport(app=simulator)` with an
    account whose `endpoint`/`token_endpoint` point at `http://sim` and `local_simulator` is set).
    `http` is a client shared with other accounts (`spapi.http_client`); the caller closes it.
    """
    try:
        implementation = IMPLEMENTATIONS[version]
    except KeyError:
        raise ValueError(
            f"unsupported Fulfillment Outbound version {version!r}; "
            f"known: {', '.join(sorted(IMPLEMENTATIONS))}"
        ) from None
    client = SpApiClient(
        account,
        clock,
        buckets,
        transport=transport,
        http=http,
        retry=retry,
        circuit=circuit,
        auth=auth,
        tokens=tokens,
        breaker_listener=breaker_listener,
        limiter_max_wait=limiter_max_wait,
    )
    return implementation(client)
