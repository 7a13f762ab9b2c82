"""The simulator's settings as typed, immutable data.

Everything a demo or a test may want to vary (credentials, fulfilment timings, rate limits, page
size, starting inventory, undeliverable postal codes) lives here, so `Simulator` itself has no
magic numbers. A config file (JSON or YAML, snake_case keys mirroring these dataclasses) is read
once at start-up by `load_config`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

BASE_PATH = "/fba/outbound/2020-07-01"

OPERATIONS: tuple[str, ...] = (
    "getFulfillmentPreview",
    "createFulfillmentOrder",
    "getFulfillmentOrder",
    "listAllFulfillmentOrders",
    "updateFulfillmentOrder",
    "cancelFulfillmentOrder",
    "getPackageTrackingDetails",
    "listReturnReasonCodes",
    "createFulfillmentReturn",
    "getFeatures",
    "getFeatureInventory",
    "getFeatureSKU",
    "getInventorySummaries",
)

#: Notifications API v1 operations the simulator serves (`notifications.py`).
NOTIFICATION_OPERATIONS: tuple[str, ...] = (
    "getDestinations",
    "createDestination",
    "getDestination",
    "deleteDestination",
    "getSubscription",
    "createSubscription",
    "getSubscriptionById",
    "deleteSubscriptionById",
)

SPEEDS: tuple[str, ...] = ("Standard", "Expedited", "Priority", "ScheduledDelivery")

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class Credentials:
    """LWA app credentials the token endpoint accepts; each refresh token is one seller."""

    client_id: str = "sim-client"
    client_secret: str = "sim-secret"  # noqa: S105 - public demo credential
    refresh_tokens: tuple[str, ...] = ("sim-refresh",)
    access_token_ttl: int = HOUR


@dataclass(frozen=True)
class Timings:
    """Seconds of *virtual* (fulfilment clock) time between an order's milestones."""

    planning_after: int = 10 * 60
    processing_after: int = HOUR
    ship_after: int = 4 * HOUR
    transit: Mapping[str, int] = field(
        default_factory=lambda: {
            "Standard": 3 * DAY,
            "Expedited": 2 * DAY,
            "Priority": DAY,
            "ScheduledDelivery": DAY,
        }
    )
    out_for_delivery_lead: int = 6 * HOUR
    hold_auto_cancel_after: int = 14 * DAY
    return_processed_after: int = 2 * DAY

    def transit_for(self, speed: str) -> int:
        return int(self.transit.get(speed, self.transit.get("Standard", 3 * DAY)))


@dataclass(frozen=True)
class OperationLimit:
    """A token bucket's shape: refill `rate` tokens per second up to `burst`."""

    rate: float = 2.0
    burst: int = 30


#: Amazon's published usage plans that differ from `default_limit` (Notifications API: 1/s,
#: burst 5; FBA Inventory v1: 2/s, burst 2).
BUILTIN_LIMITS: Mapping[str, OperationLimit] = {
    **{op: OperationLimit(rate=1.0, burst=5) for op in NOTIFICATION_OPERATIONS},
    "getInventorySummaries": OperationLimit(rate=2.0, burst=2),
}


@dataclass(frozen=True)
class SkuConfig:
    """One SKU in the simulated fulfilment network.

    `split` ships every unit of the SKU in its own package of its own shipment;
    `cancelled_by_fulfiller` makes the shipment holding it end `CANCELLED_BY_FULFILLER`.
    `no_fee_estimate`: a preview with this SKU carries no `estimatedFees`, as Amazon's sometimes
    does (reported in its issue tracker), so a fee cap cannot be checked.
    """

    quantity: int = 0
    split: bool = False
    cancelled_by_fulfiller: bool = False
    weight_lb: str = "1.0"
    fnsku: str | None = None
    no_fee_estimate: bool = False


@dataclass(frozen=True)
class Fidelity:
    """Where Amazon answers less conveniently than its documentation suggests. Every switch
    defaults to Amazon's real behaviour; turning one off gives the kinder answer (for a test that
    wants to isolate something else, or to compare).

    - `encoded_tracking_links`: `customerTrackingLink` comes percent-encoded and ends in `%0A`,
      as in the model's own example; off: a plain `https://` link.
    - `order_not_found_as_invalid_input`: an unknown `sellerFulfillmentOrderId` is answered
      400 `InvalidInput` "Requested order not found" (what sellers report for
      `getFulfillmentOrder`; applied to every operation addressing an order by id); off: the
      model's 404 `NotFound`.
    - `revoke_access_tokens_with_grant`: revoking a seller's refresh token also revokes the access
      tokens issued from it (403 "revoked, malformed or invalid"); off: they stay valid until
      they expire.
    """

    encoded_tracking_links: bool = True
    order_not_found_as_invalid_input: bool = True
    revoke_access_tokens_with_grant: bool = True

    @classmethod
    def kind(cls) -> Fidelity:
        """Every switch off: the simulator as it answered before it copied Amazon's quirks."""
        return cls(False, False, False)


@dataclass(frozen=True)
class SimulatorConfig:
    credentials: Credentials = field(default_factory=Credentials)
    fidelity: Fidelity = field(default_factory=Fidelity)
    timings: Timings = field(default_factory=Timings)
    default_limit: OperationLimit = field(default_factory=OperationLimit)
    limits: Mapping[str, OperationLimit] = field(default_factory=dict)
    skus: Mapping[str, SkuConfig] = field(default_factory=dict)
    invalid_postal_codes: frozenset[str] = frozenset({"00000"})
    page_size: int = 50
    default_marketplace_id: str = "ATVPDKIKX0DER"
    carriers: tuple[str, ...] = ("UPS", "USPS", "AMZL_US")
    fulfillment_center_id: str = "PHX7"
    max_fault_delay: float = 30.0
    list_default_lookback: int = 36 * HOUR
    seed: int = 20201
    per_unit_fee: Mapping[str, str] = field(
        default_factory=lambda: {
            "Standard": "3.95",
            "Expedited": "6.45",
            "Priority": "11.90",
            "ScheduledDelivery": "11.90",
        }
    )
    per_order_fee: str = "1.00"
    #: MCF feature -> the seller SKUs eligible for it (`getFeatureInventory`, `getFeatureSKU`); an
    #: order that requires a feature for any other SKU is unfulfillable (preview) or refused (create).
    feature_skus: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: MCF feature -> the surcharge a preview that requires it adds (as `FBATransportationFee`,
    #: one of the fee names Amazon's model allows), per order.
    feature_surcharge: Mapping[str, str] = field(
        default_factory=lambda: {"BLOCK_AMZL": "0.75", "BLANK_BOX": "0.50"}
    )

    def limit_for(self, operation: str) -> OperationLimit:
        return self.limits.get(operation) or BUILTIN_LIMITS.get(operation) or self.default_limit

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SimulatorConfig:
        """Build a config from plain data (a parsed file); unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown simulator config keys: {sorted(unknown)}")
        config = cls()
        changes: dict[str, Any] = {}
        if "credentials" in data:
            creds = dict(data["credentials"])
            if "refresh_tokens" in creds:
                creds["refresh_tokens"] = tuple(creds["refresh_tokens"])
            changes["credentials"] = Credentials(**creds)
        if "timings" in data:
            changes["timings"] = Timings(**data["timings"])
        if "fidelity" in data:
            changes["fidelity"] = Fidelity(**data["fidelity"])
        if "default_limit" in data:
            changes["default_limit"] = OperationLimit(**data["default_limit"])
        if "limits" in data:
            unknown_ops = set(data["limits"]) - set(OPERATIONS) - set(NOTIFICATION_OPERATIONS)
            if unknown_ops:
                raise ValueError(f"unknown operations in limits: {sorted(unknown_ops)}")
            changes["limits"] = {op: OperationLimit(**v) for op, v in data["limits"].items()}
        if "skus" in data:
            changes["skus"] = {
                sku: SkuConfig(quantity=v) if isinstance(v, int) else SkuConfig(**v)
                for sku, v in data["skus"].items()
            }
        if "invalid_postal_codes" in data:
            changes["invalid_postal_codes"] = frozenset(data["invalid_postal_codes"])
        if "carriers" in data:
            changes["carriers"] = tuple(data["carriers"])
        if "feature_skus" in data:
            changes["feature_skus"] = {
                str(k): tuple(str(x) for x in v) for k, v in data["feature_skus"].items()
            }
        if "feature_surcharge" in data:
            changes["feature_surcharge"] = {str(k): str(v) for k, v in data["feature_surcharge"].items()}
        for key in ("per_unit_fee",):
            if key in data:
                changes[key] = {k: str(v) for k, v in data[key].items()}
        for key in (
            "page_size",
            "default_marketplace_id",
            "fulfillment_center_id",
            "max_fault_delay",
            "list_default_lookback",
            "seed",
            "per_order_fee",
        ):
            if key in data:
                changes[key] = data[key]
        return replace(config, **changes)


def load_config(path: str | Path) -> SimulatorConfig:
    """Read a JSON or YAML simulator config file (chosen by extension)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = yaml.safe_load(text) if p.suffix.lower() in {".yaml", ".yml"} else json.loads(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"simulator config {p} must be a mapping at the top level")
    return SimulatorConfig.from_mapping(data)
