"""getFulfillmentPreview: what Amazon would do with an order, computed without storing anything.

Reason strings: the model documents `orderUnfulfillableReasons` examples
(`DeliverySLAUnavailable`, `InvalidDestinationAddress`) but no list for
`itemUnfulfillableReasons`; the simulator uses `InvalidSKU` (SKU unknown to the network) and
`InventoryUnavailable` (not enough sellable units), the values MWS-era clients saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .config import SimulatorConfig, SkuConfig
from .render import iso

INVALID_SKU = "InvalidSKU"
#: A SKU not eligible for a feature the request requires. Amazon's model documents no list of
#: item reasons; this is the simulator's own name for it.
FEATURE_NOT_ELIGIBLE = "FeatureNotEligible"
INVENTORY_UNAVAILABLE = "InventoryUnavailable"
INVALID_DESTINATION = "InvalidDestinationAddress"
DELIVERY_SLA_UNAVAILABLE = "DeliverySLAUnavailable"

DEFAULT_PREVIEW_SPEEDS = ("Standard", "Expedited", "Priority")
JP_MARKETPLACE = "A1VC38T7YXB528"
CURRENCY_BY_MARKETPLACE = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
}
_CENTS = Decimal("0.01")


@dataclass(frozen=True)
class _Item:
    sku: str
    item_id: str
    quantity: int
    reasons: tuple[str, ...]
    weight: Decimal
    split: bool


def is_undeliverable(address: Mapping[str, Any], invalid_postal_codes: frozenset[str]) -> bool:
    return str(address.get("postalCode", "")).strip() in invalid_postal_codes


def fulfillment_preview(
    body: Mapping[str, Any],
    *,
    available: Mapping[str, int],
    skus: Mapping[str, SkuConfig],
    config: SimulatorConfig,
    now: datetime,
) -> dict[str, Any]:
    marketplace = str(body.get("marketplaceId") or config.default_marketplace_id)
    required = required_features(body)
    items = [_assess(raw, available, skus, required, config) for raw in body["items"]]
    undeliverable = is_undeliverable(body["address"], config.invalid_postal_codes)
    speeds = body.get("shippingSpeedCategories") or list(DEFAULT_PREVIEW_SPEEDS)
    previews = []
    for speed in speeds:
        order_reasons = [INVALID_DESTINATION] if undeliverable else []
        if speed == "ScheduledDelivery" and marketplace != JP_MARKETPLACE:
            order_reasons.append(DELIVERY_SLA_UNAVAILABLE)
        previews.append(_one_preview(speed, marketplace, items, order_reasons, body, config, now))
    return {"payload": {"fulfillmentPreviews": previews}}


def required_features(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The features a request requires (`featureFulfillmentPolicy: Required`, Amazon's default)."""
    return tuple(
        str(f.get("featureName"))
        for f in body.get("featureConstraints") or ()
        if f.get("featureFulfillmentPolicy", "Required") == "Required"
    )


def ineligible_for(sku: str, required: tuple[str, ...], config: SimulatorConfig) -> list[str]:
    """The required features `sku` is not eligible for."""
    return [f for f in required if sku not in config.feature_skus.get(f, ())]


def _assess(
    raw: Mapping[str, Any],
    available: Mapping[str, int],
    skus: Mapping[str, SkuConfig],
    required: tuple[str, ...],
    config: SimulatorConfig,
) -> _Item:
    sku, quantity = str(raw["sellerSku"]), int(raw["quantity"])
    cfg = skus.get(sku)
    if cfg is None:
        reasons: tuple[str, ...] = (INVALID_SKU,)
    elif ineligible_for(sku, required, config):
        reasons = (FEATURE_NOT_ELIGIBLE,)
    elif available.get(sku, 0) < quantity:
        reasons = (INVENTORY_UNAVAILABLE,)
    else:
        reasons = ()
    weight = Decimal((cfg or SkuConfig()).weight_lb)
    split = bool(cfg and cfg.split)
    return _Item(sku, str(raw["sellerFulfillmentOrderItemId"]), quantity, reasons, weight, split)


def _one_preview(
    speed: str,
    marketplace: str,
    items: list[_Item],
    order_reasons: list[str],
    body: Mapping[str, Any],
    config: SimulatorConfig,
    now: datetime,
) -> dict[str, Any]:
    good = [i for i in items if not i.reasons]
    bad = [i for i in items if i.reasons]
    preview: dict[str, Any] = {
        "shippingSpeedCategory": speed,
        "isFulfillable": not bad and not order_reasons,
        "isCODCapable": False,
        "estimatedShippingWeight": {
            "unit": "POUNDS",
            "value": str(sum((i.weight * i.quantity for i in good), Decimal(0))),
        },
        "estimatedFees": _fees(speed, marketplace, good, config, required_features(body))
        if _quoted(good, config) and not order_reasons
        else [],
        "fulfillmentPreviewShipments": _shipments(speed, good, config, now) if not order_reasons else [],
        "unfulfillablePreviewItems": [
            {
                "sellerSku": i.sku,
                "quantity": i.quantity,
                "sellerFulfillmentOrderItemId": i.item_id,
                "itemUnfulfillableReasons": list(i.reasons),
            }
            for i in bad
        ],
        "orderUnfulfillableReasons": order_reasons,
        "marketplaceId": marketplace,
    }
    if "featureConstraints" in body:
        preview["featureConstraints"] = body["featureConstraints"]
    return preview


def _quoted(good: list[_Item], config: SimulatorConfig) -> bool:
    """Amazon quotes fees for a fulfillable preview, except where it does not (`no_fee_estimate`)."""
    return bool(good) and not any(config.skus.get(i.sku, SkuConfig()).no_fee_estimate for i in good)


def _fees(
    speed: str, marketplace: str, good: list[_Item], config: SimulatorConfig, features: tuple[str, ...]
) -> list[dict[str, Any]]:
    currency = CURRENCY_BY_MARKETPLACE.get(marketplace, "USD")
    units = sum(i.quantity for i in good)
    per_unit = Decimal(config.per_unit_fee.get(speed, config.per_unit_fee.get("Standard", "0")))
    fees = [
        {"name": "FBAPerUnitFulfillmentFee", "amount": _money(currency, per_unit * units)},
        {"name": "FBAPerOrderFulfillmentFee", "amount": _money(currency, Decimal(config.per_order_fee))},
    ]
    surcharge = sum((Decimal(config.feature_surcharge.get(f, "0")) for f in features), Decimal(0))
    if surcharge:
        fees.append({"name": "FBATransportationFee", "amount": _money(currency, surcharge)})
    return fees


def _money(currency: str, value: Decimal) -> dict[str, str]:
    return {"currencyCode": currency, "value": str(value.quantize(_CENTS))}


def _shipments(speed: str, good: list[_Item], config: SimulatorConfig, now: datetime) -> list[dict[str, Any]]:
    timings = config.timings
    earliest_ship = now + timedelta(seconds=timings.ship_after)
    latest_ship = earliest_ship + timedelta(days=1)
    transit = timedelta(seconds=timings.transit_for(speed))
    groups = [[i] for i in good if i.split]
    shared = [i for i in good if not i.split]
    if shared:
        groups.insert(0, shared)
    return [
        {
            "earliestShipDate": iso(earliest_ship),
            "latestShipDate": iso(latest_ship),
            "earliestArrivalDate": iso(earliest_ship + transit),
            "latestArrivalDate": iso(latest_ship + transit),
            "fulfillmentPreviewItems": [
                {
                    "sellerSku": i.sku,
                    "quantity": i.quantity,
                    "sellerFulfillmentOrderItemId": i.item_id,
                    "estimatedShippingWeight": {"unit": "POUNDS", "value": str(i.weight * i.quantity)},
                    "shippingWeightCalculationMethod": "Package",
                }
                for i in group
            ],
        }
        for group in groups
    ]
