"""Typed shapes of what the bridge sends to and reads from Fulfillment Outbound.

Python attributes are snake_case; `to_api()` / `from_api()` translate to and from Amazon's exact
JSON field names (Fulfillment Outbound 2020-07-01 model). The rest of the bridge never handles the
raw dicts.

Parsing is tolerant: unknown fields are ignored, missing optional fields become None or empty,
status values Amazon spells in another case (`PROCESSING`) are mapped to the documented spelling,
and unknown enum values are kept as plain strings rather than rejected. A value of the wrong
type (a string where an object belongs) raises `ValueError`/`TypeError`, which the client reports
as `UnexpectedResponse`.

Personal data (names, addresses, phone numbers, e-mail addresses, gift messages) is kept out of
every `repr`, so a model that ends up in a log line or a traceback leaks nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

Json = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Enumerations (documented values; responses may carry others, kept as plain strings)


class ShippingSpeedCategory(StrEnum):
    STANDARD = "Standard"
    EXPEDITED = "Expedited"
    PRIORITY = "Priority"
    SCHEDULED_DELIVERY = "ScheduledDelivery"


class FulfillmentAction(StrEnum):
    SHIP = "Ship"
    HOLD = "Hold"


class FulfillmentPolicy(StrEnum):
    FILL_OR_KILL = "FillOrKill"
    FILL_ALL = "FillAll"
    FILL_ALL_AVAILABLE = "FillAllAvailable"


class FulfillmentOrderStatus(StrEnum):
    NEW = "New"
    RECEIVED = "Received"
    PLANNING = "Planning"
    PROCESSING = "Processing"
    CANCELLED = "Cancelled"
    COMPLETE = "Complete"
    COMPLETE_PARTIALLED = "CompletePartialled"
    UNFULFILLABLE = "Unfulfillable"
    INVALID = "Invalid"


#: Amazon statuses after which a fulfillment order no longer moves.
FINAL_ORDER_STATUSES = frozenset(
    {
        FulfillmentOrderStatus.CANCELLED,
        FulfillmentOrderStatus.COMPLETE,
        FulfillmentOrderStatus.COMPLETE_PARTIALLED,
        FulfillmentOrderStatus.UNFULFILLABLE,
        FulfillmentOrderStatus.INVALID,
    }
)


class FulfillmentShipmentStatus(StrEnum):
    PENDING = "PENDING"
    SHIPPED = "SHIPPED"
    CANCELLED_BY_FULFILLER = "CANCELLED_BY_FULFILLER"
    CANCELLED_BY_SELLER = "CANCELLED_BY_SELLER"


class TrackingStatus(StrEnum):
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    RETURNING = "RETURNING"
    RETURNED = "RETURNED"
    UNDELIVERABLE = "UNDELIVERABLE"
    DELAYED = "DELAYED"
    AVAILABLE_FOR_PICKUP = "AVAILABLE_FOR_PICKUP"
    CUSTOMER_ACTION = "CUSTOMER_ACTION"
    UNKNOWN = "UNKNOWN"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERY_ATTEMPTED = "DELIVERY_ATTEMPTED"
    PICKUP_SUCCESSFUL = "PICKUP_SUCCESSFUL"
    PICKUP_CANCELLED = "PICKUP_CANCELLED"
    PICKUP_ATTEMPTED = "PICKUP_ATTEMPTED"
    PICKUP_SCHEDULED = "PICKUP_SCHEDULED"
    RETURN_REQUEST_ACCEPTED = "RETURN_REQUEST_ACCEPTED"
    REFUND_ISSUED = "REFUND_ISSUED"
    RETURN_RECEIVED_IN_FC = "RETURN_RECEIVED_IN_FC"


class ReturnItemStatus(StrEnum):
    NEW = "New"
    PROCESSED = "Processed"


class FeatureFulfillmentPolicy(StrEnum):
    REQUIRED = "Required"
    NOT_REQUIRED = "NotRequired"


E = TypeVar("E", bound=StrEnum)


def canonical(value: Any, enum: type[E]) -> str:
    """The enum member whose value matches `value` ignoring case and `_`, else `value` unchanged."""
    if value is None:
        return ""
    text = str(value)
    wanted = text.replace("_", "").lower()
    for member in enum:
        if member.value.replace("_", "").lower() == wanted:
            return member
    return text


# --------------------------------------------------------------------------------------------
# Small parsing helpers


def _obj(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _objs(value: Any) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected a JSON array, got {type(value).__name__}")
    return [_obj(v) for v in value]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


_ENCODED_SCHEME = re.compile(r"https?%(?:25)*3A", re.IGNORECASE)  # encoded once or more
_MAX_DECODES = 3
MAX_LINK_LENGTH = 1000


def tracking_link(value: Any) -> str | None:
    """A link a customer can open, made from Amazon's `customerTrackingLink` (or `carrierURL`).

    Amazon sends `customerTrackingLink` percent-encoded, down to a trailing `%0A` (the model's
    example: `https%3A%2F%2Fwww.swiship.com%2Ftrack%3Fid%3D...%0A`). It is decoded only when the
    scheme itself is encoded, so the `%20`s of a plain link's query survive; surrounding
    whitespace and newlines are dropped. Anything that is not then an absolute http(s) URL with a
    host and no whitespace or control characters inside is None: no link beats a broken one.
    """
    text = _str(value)
    if text is None:
        return None
    text = text.strip()
    for _ in range(_MAX_DECODES):
        if not _ENCODED_SCHEME.match(text):
            break
        text = unquote(text).strip()
    if not text or len(text) > MAX_LINK_LENGTH or any(c.isspace() or not c.isprintable() for c in text):
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return text


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TypeError(f"expected a JSON array, got {type(value).__name__}")
    return tuple(str(v) for v in value)


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    return int(value)


def _bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from Amazon as an aware UTC datetime (naive ones are taken as UTC)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """`2026-11-23T12:00:00Z`: the form every SP-API operation accepts."""
    if value.tzinfo is None:
        raise ValueError("timestamps sent to Amazon must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(data: Mapping[str, Any]) -> Json:
    """Drop None values and empty lists: Amazon treats absent optionals and empty ones differently."""
    return {k: v for k, v in data.items() if v is not None and v != [] and v != ()}


# --------------------------------------------------------------------------------------------
# Shared value types


@dataclass(frozen=True)
class Money:
    currency_code: str
    value: Decimal

    def to_api(self) -> Json:
        return {"currencyCode": self.currency_code, "value": format(self.value, "f")}

    @classmethod
    def from_api(cls, data: Any) -> Money:
        d = _obj(data)
        try:
            value = Decimal(str(d.get("value", "0")))
        except InvalidOperation:
            raise ValueError("Money.value is not a decimal number") from None
        return cls(str(d.get("currencyCode", "")), value)

    @classmethod
    def maybe(cls, data: Any) -> Money | None:
        return None if data is None else cls.from_api(data)


def _money(value: Money | None) -> Json | None:
    return value.to_api() if value is not None else None


@dataclass(frozen=True, kw_only=True)
class Address:
    """A postal address. Everything but the country is personal data and stays out of `repr`."""

    name: str = field(repr=False)
    address_line1: str = field(repr=False)
    country_code: str
    postal_code: str = field(default="", repr=False)
    address_line2: str | None = field(default=None, repr=False)
    address_line3: str | None = field(default=None, repr=False)
    city: str | None = field(default=None, repr=False)
    district_or_county: str | None = field(default=None, repr=False)
    state_or_region: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)

    def to_api(self) -> Json:
        return _compact(
            {
                "name": self.name,
                "addressLine1": self.address_line1,
                "addressLine2": self.address_line2 or None,
                "addressLine3": self.address_line3 or None,
                "city": self.city or None,
                "districtOrCounty": self.district_or_county or None,
                "stateOrRegion": self.state_or_region or None,
                "postalCode": self.postal_code,
                "countryCode": self.country_code,
                "phone": self.phone or None,
            }
        )

    @classmethod
    def from_api(cls, data: Any) -> Address:
        d = _obj(data)
        return cls(
            name=str(d.get("name", "")),
            address_line1=str(d.get("addressLine1", "")),
            address_line2=_str(d.get("addressLine2")),
            address_line3=_str(d.get("addressLine3")),
            city=_str(d.get("city")),
            district_or_county=_str(d.get("districtOrCounty")),
            state_or_region=_str(d.get("stateOrRegion")),
            postal_code=str(d.get("postalCode", "")),
            country_code=str(d.get("countryCode", "")),
            phone=_str(d.get("phone")),
        )


@dataclass(frozen=True)
class FeatureSettings:
    feature_name: str
    feature_fulfillment_policy: str = FeatureFulfillmentPolicy.REQUIRED

    def to_api(self) -> Json:
        return {
            "featureName": self.feature_name,
            "featureFulfillmentPolicy": str(self.feature_fulfillment_policy),
        }

    @classmethod
    def from_api(cls, data: Any) -> FeatureSettings:
        d = _obj(data)
        return cls(
            str(d.get("featureName", "")),
            canonical(d.get("featureFulfillmentPolicy", "Required"), FeatureFulfillmentPolicy),
        )


@dataclass(frozen=True)
class DeliveryWindow:
    start_date: datetime
    end_date: datetime

    def to_api(self) -> Json:
        return {"startDate": format_timestamp(self.start_date), "endDate": format_timestamp(self.end_date)}


# --------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class CreateFulfillmentOrderItem:
    seller_sku: str
    seller_fulfillment_order_item_id: str
    quantity: int
    gift_message: str | None = field(default=None, repr=False)
    displayable_comment: str | None = None
    fulfillment_network_sku: str | None = None
    per_unit_declared_value: Money | None = None
    per_unit_price: Money | None = None
    per_unit_tax: Money | None = None

    def to_api(self) -> Json:
        return _compact(
            {
                "sellerSku": self.seller_sku,
                "sellerFulfillmentOrderItemId": self.seller_fulfillment_order_item_id,
                "quantity": self.quantity,
                "giftMessage": self.gift_message,
                "displayableComment": self.displayable_comment,
                "fulfillmentNetworkSku": self.fulfillment_network_sku,
                "perUnitDeclaredValue": _money(self.per_unit_declared_value),
                "perUnitPrice": _money(self.per_unit_price),
                "perUnitTax": _money(self.per_unit_tax),
            }
        )


@dataclass(frozen=True, kw_only=True)
class CreateFulfillmentOrderRequest:
    seller_fulfillment_order_id: str
    displayable_order_id: str
    displayable_order_date: datetime
    displayable_order_comment: str
    shipping_speed_category: ShippingSpeedCategory
    destination_address: Address
    items: Sequence[CreateFulfillmentOrderItem]
    marketplace_id: str | None = None
    fulfillment_action: FulfillmentAction | None = None
    fulfillment_policy: FulfillmentPolicy | None = None
    notification_emails: Sequence[str] = field(default=(), repr=False)
    feature_constraints: Sequence[FeatureSettings] = ()
    delivery_window: DeliveryWindow | None = None
    ship_from_country_code: str | None = None

    def to_api(self) -> Json:
        return _compact(
            {
                "marketplaceId": self.marketplace_id,
                "sellerFulfillmentOrderId": self.seller_fulfillment_order_id,
                "displayableOrderId": self.displayable_order_id,
                "displayableOrderDate": format_timestamp(self.displayable_order_date),
                "displayableOrderComment": self.displayable_order_comment,
                "shippingSpeedCategory": str(self.shipping_speed_category),
                "deliveryWindow": self.delivery_window.to_api() if self.delivery_window else None,
                "destinationAddress": self.destination_address.to_api(),
                "fulfillmentAction": str(self.fulfillment_action) if self.fulfillment_action else None,
                "fulfillmentPolicy": str(self.fulfillment_policy) if self.fulfillment_policy else None,
                "shipFromCountryCode": self.ship_from_country_code,
                "notificationEmails": list(self.notification_emails),
                "featureConstraints": [f.to_api() for f in self.feature_constraints],
                "items": [item.to_api() for item in self.items],
            }
        )


@dataclass(frozen=True)
class GetFulfillmentPreviewItem:
    seller_sku: str
    seller_fulfillment_order_item_id: str
    quantity: int
    per_unit_declared_value: Money | None = None

    def to_api(self) -> Json:
        return _compact(
            {
                "sellerSku": self.seller_sku,
                "quantity": self.quantity,
                "perUnitDeclaredValue": _money(self.per_unit_declared_value),
                "sellerFulfillmentOrderItemId": self.seller_fulfillment_order_item_id,
            }
        )


@dataclass(frozen=True, kw_only=True)
class GetFulfillmentPreviewRequest:
    address: Address
    items: Sequence[GetFulfillmentPreviewItem]
    marketplace_id: str | None = None
    shipping_speed_categories: Sequence[ShippingSpeedCategory] = ()
    include_cod_fulfillment_preview: bool | None = None
    include_delivery_windows: bool | None = None
    feature_constraints: Sequence[FeatureSettings] = ()

    def to_api(self) -> Json:
        return _compact(
            {
                "marketplaceId": self.marketplace_id,
                "address": self.address.to_api(),
                "items": [item.to_api() for item in self.items],
                "shippingSpeedCategories": [str(s) for s in self.shipping_speed_categories],
                "includeCODFulfillmentPreview": self.include_cod_fulfillment_preview,
                "includeDeliveryWindows": self.include_delivery_windows,
                "featureConstraints": [f.to_api() for f in self.feature_constraints],
            }
        )


@dataclass(frozen=True)
class UpdateFulfillmentOrderItem:
    seller_fulfillment_order_item_id: str
    quantity: int
    seller_sku: str | None = None
    gift_message: str | None = field(default=None, repr=False)
    displayable_comment: str | None = None
    per_unit_declared_value: Money | None = None
    per_unit_price: Money | None = None
    per_unit_tax: Money | None = None

    def to_api(self) -> Json:
        return _compact(
            {
                "sellerSku": self.seller_sku,
                "sellerFulfillmentOrderItemId": self.seller_fulfillment_order_item_id,
                "quantity": self.quantity,
                "giftMessage": self.gift_message,
                "displayableComment": self.displayable_comment,
                "perUnitDeclaredValue": _money(self.per_unit_declared_value),
                "perUnitPrice": _money(self.per_unit_price),
                "perUnitTax": _money(self.per_unit_tax),
            }
        )


@dataclass(frozen=True, kw_only=True)
class UpdateFulfillmentOrderRequest:
    """Only the fields that are set are sent; Amazon keeps the others as they are."""

    marketplace_id: str | None = None
    displayable_order_id: str | None = None
    displayable_order_date: datetime | None = None
    displayable_order_comment: str | None = None
    shipping_speed_category: ShippingSpeedCategory | None = None
    destination_address: Address | None = None
    fulfillment_action: FulfillmentAction | None = None
    fulfillment_policy: FulfillmentPolicy | None = None
    ship_from_country_code: str | None = None
    notification_emails: Sequence[str] = field(default=(), repr=False)
    feature_constraints: Sequence[FeatureSettings] = ()
    items: Sequence[UpdateFulfillmentOrderItem] = ()

    def to_api(self) -> Json:
        date = self.displayable_order_date
        return _compact(
            {
                "marketplaceId": self.marketplace_id,
                "displayableOrderId": self.displayable_order_id,
                "displayableOrderDate": format_timestamp(date) if date else None,
                "displayableOrderComment": self.displayable_order_comment,
                "shippingSpeedCategory": str(self.shipping_speed_category)
                if self.shipping_speed_category
                else None,
                "destinationAddress": self.destination_address.to_api() if self.destination_address else None,
                "fulfillmentAction": str(self.fulfillment_action) if self.fulfillment_action else None,
                "fulfillmentPolicy": str(self.fulfillment_policy) if self.fulfillment_policy else None,
                "shipFromCountryCode": self.ship_from_country_code,
                "notificationEmails": list(self.notification_emails),
                "featureConstraints": [f.to_api() for f in self.feature_constraints],
                "items": [item.to_api() for item in self.items],
            }
        )


@dataclass(frozen=True)
class CreateReturnItem:
    seller_return_item_id: str
    seller_fulfillment_order_item_id: str
    amazon_shipment_id: str
    return_reason_code: str
    return_comment: str | None = field(default=None, repr=False)

    def to_api(self) -> Json:
        return _compact(
            {
                "sellerReturnItemId": self.seller_return_item_id,
                "sellerFulfillmentOrderItemId": self.seller_fulfillment_order_item_id,
                "amazonShipmentId": self.amazon_shipment_id,
                "returnReasonCode": self.return_reason_code,
                "returnComment": self.return_comment,
            }
        )


@dataclass(frozen=True)
class CreateFulfillmentReturnRequest:
    items: Sequence[CreateReturnItem]

    def to_api(self) -> Json:
        return {"items": [item.to_api() for item in self.items]}


# --------------------------------------------------------------------------------------------
# Responses


@dataclass(frozen=True)
class Fee:
    name: str
    amount: Money

    @classmethod
    def from_api(cls, data: Any) -> Fee:
        d = _obj(data)
        return cls(str(d.get("name", "")), Money.from_api(d.get("amount")))


@dataclass(frozen=True)
class FulfillmentPreviewShipment:
    earliest_ship_date: datetime | None
    latest_ship_date: datetime | None
    earliest_arrival_date: datetime | None
    latest_arrival_date: datetime | None
    shipping_notes: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Any) -> FulfillmentPreviewShipment:
        d = _obj(data)
        return cls(
            parse_timestamp(d.get("earliestShipDate")),
            parse_timestamp(d.get("latestShipDate")),
            parse_timestamp(d.get("earliestArrivalDate")),
            parse_timestamp(d.get("latestArrivalDate")),
            _strs(d.get("shippingNotes")),
        )


@dataclass(frozen=True)
class UnfulfillablePreviewItem:
    seller_sku: str
    seller_fulfillment_order_item_id: str
    quantity: int
    reasons: tuple[str, ...]

    @classmethod
    def from_api(cls, data: Any) -> UnfulfillablePreviewItem:
        d = _obj(data)
        return cls(
            str(d.get("sellerSku", "")),
            str(d.get("sellerFulfillmentOrderItemId", "")),
            _int(d.get("quantity")),
            _strs(d.get("itemUnfulfillableReasons")),
        )


@dataclass(frozen=True)
class FulfillmentPreview:
    shipping_speed_category: str
    is_fulfillable: bool
    is_cod_capable: bool = False
    marketplace_id: str = ""
    estimated_fees: tuple[Fee, ...] = ()
    shipments: tuple[FulfillmentPreviewShipment, ...] = ()
    unfulfillable_items: tuple[UnfulfillablePreviewItem, ...] = ()
    order_unfulfillable_reasons: tuple[str, ...] = ()

    @property
    def estimated_fees_total(self) -> Money | None:
        """The sum of `estimatedFees`, or None when Amazon quoted none.

        Raises ValueError if the fees are in more than one currency (never seen; do not guess).
        """
        if not self.estimated_fees:
            return None
        currencies = {fee.amount.currency_code for fee in self.estimated_fees}
        if len(currencies) != 1:
            raise ValueError("estimated fees are quoted in more than one currency")
        return Money(currencies.pop(), sum((fee.amount.value for fee in self.estimated_fees), Decimal(0)))

    @classmethod
    def from_api(cls, data: Any) -> FulfillmentPreview:
        d = _obj(data)
        return cls(
            shipping_speed_category=canonical(d.get("shippingSpeedCategory"), ShippingSpeedCategory),
            is_fulfillable=_bool(d.get("isFulfillable")),
            is_cod_capable=_bool(d.get("isCODCapable")),
            marketplace_id=str(d.get("marketplaceId", "")),
            estimated_fees=tuple(Fee.from_api(f) for f in _objs(d.get("estimatedFees"))),
            shipments=tuple(
                FulfillmentPreviewShipment.from_api(s) for s in _objs(d.get("fulfillmentPreviewShipments"))
            ),
            unfulfillable_items=tuple(
                UnfulfillablePreviewItem.from_api(i) for i in _objs(d.get("unfulfillablePreviewItems"))
            ),
            order_unfulfillable_reasons=_strs(d.get("orderUnfulfillableReasons")),
        )


@dataclass(frozen=True)
class FulfillmentOrderItem:
    seller_sku: str
    seller_fulfillment_order_item_id: str
    quantity: int
    cancelled_quantity: int = 0
    unfulfillable_quantity: int = 0
    fulfillment_network_sku: str | None = None
    order_item_disposition: str | None = None
    estimated_ship_date: datetime | None = None
    estimated_arrival_date: datetime | None = None
    per_unit_declared_value: Money | None = None

    @classmethod
    def from_api(cls, data: Any) -> FulfillmentOrderItem:
        d = _obj(data)
        return cls(
            seller_sku=str(d.get("sellerSku", "")),
            seller_fulfillment_order_item_id=str(d.get("sellerFulfillmentOrderItemId", "")),
            quantity=_int(d.get("quantity")),
            cancelled_quantity=_int(d.get("cancelledQuantity")),
            unfulfillable_quantity=_int(d.get("unfulfillableQuantity")),
            fulfillment_network_sku=_str(d.get("fulfillmentNetworkSku")),
            order_item_disposition=_str(d.get("orderItemDisposition")),
            estimated_ship_date=parse_timestamp(d.get("estimatedShipDate")),
            estimated_arrival_date=parse_timestamp(d.get("estimatedArrivalDate")),
            per_unit_declared_value=Money.maybe(d.get("perUnitDeclaredValue")),
        )


@dataclass(frozen=True)
class FulfillmentShipmentItem:
    seller_sku: str
    seller_fulfillment_order_item_id: str
    quantity: int
    package_number: int | None = None

    @classmethod
    def from_api(cls, data: Any) -> FulfillmentShipmentItem:
        d = _obj(data)
        package = d.get("packageNumber")
        return cls(
            str(d.get("sellerSku", "")),
            str(d.get("sellerFulfillmentOrderItemId", "")),
            _int(d.get("quantity")),
            None if package is None else _int(package),
        )


@dataclass(frozen=True)
class FulfillmentShipmentPackage:
    package_number: int
    carrier_code: str
    tracking_number: str | None = None
    estimated_arrival_date: datetime | None = None
    amazon_fulfillment_tracking_number: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> FulfillmentShipmentPackage:
        d = _obj(data)
        return cls(
            package_number=_int(d.get("packageNumber")),
            carrier_code=str(d.get("carrierCode", "")),
            tracking_number=_str(d.get("trackingNumber")),
            estimated_arrival_date=parse_timestamp(d.get("estimatedArrivalDate")),
            amazon_fulfillment_tracking_number=_str(d.get("amazonFulfillmentTrackingNumber")),
        )


@dataclass(frozen=True)
class FulfillmentShipment:
    amazon_shipment_id: str
    fulfillment_center_id: str
    status: str
    shipping_date: datetime | None = None
    estimated_arrival_date: datetime | None = None
    items: tuple[FulfillmentShipmentItem, ...] = ()
    packages: tuple[FulfillmentShipmentPackage, ...] = ()

    @classmethod
    def from_api(cls, data: Any) -> FulfillmentShipment:
        d = _obj(data)
        return cls(
            amazon_shipment_id=str(d.get("amazonShipmentId", "")),
            fulfillment_center_id=str(d.get("fulfillmentCenterId", "")),
            status=canonical(d.get("fulfillmentShipmentStatus"), FulfillmentShipmentStatus),
            shipping_date=parse_timestamp(d.get("shippingDate")),
            estimated_arrival_date=parse_timestamp(d.get("estimatedArrivalDate")),
            items=tuple(FulfillmentShipmentItem.from_api(i) for i in _objs(d.get("fulfillmentShipmentItem"))),
            packages=tuple(
                FulfillmentShipmentPackage.from_api(p) for p in _objs(d.get("fulfillmentShipmentPackage"))
            ),
        )


@dataclass(frozen=True)
class ReturnItem:
    seller_return_item_id: str
    seller_fulfillment_order_item_id: str
    amazon_shipment_id: str
    seller_return_reason_code: str
    status: str
    status_changed_date: datetime | None = None
    amazon_return_reason_code: str | None = None
    return_authorization_id: str | None = None
    return_received_condition: str | None = None
    fulfillment_center_id: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> ReturnItem:
        d = _obj(data)
        return cls(
            seller_return_item_id=str(d.get("sellerReturnItemId", "")),
            seller_fulfillment_order_item_id=str(d.get("sellerFulfillmentOrderItemId", "")),
            amazon_shipment_id=str(d.get("amazonShipmentId", "")),
            seller_return_reason_code=str(d.get("sellerReturnReasonCode", "")),
            status=canonical(d.get("status"), ReturnItemStatus),
            status_changed_date=parse_timestamp(d.get("statusChangedDate")),
            amazon_return_reason_code=_str(d.get("amazonReturnReasonCode")),
            return_authorization_id=_str(d.get("returnAuthorizationId")),
            return_received_condition=_str(d.get("returnReceivedCondition")),
            fulfillment_center_id=_str(d.get("fulfillmentCenterId")),
        )


@dataclass(frozen=True)
class ReturnAuthorization:
    return_authorization_id: str
    fulfillment_center_id: str
    amazon_rma_id: str
    rma_page_url: str
    return_to_address: Address | None = None

    @classmethod
    def from_api(cls, data: Any) -> ReturnAuthorization:
        d = _obj(data)
        address = d.get("returnToAddress")
        return cls(
            return_authorization_id=str(d.get("returnAuthorizationId", "")),
            fulfillment_center_id=str(d.get("fulfillmentCenterId", "")),
            amazon_rma_id=str(d.get("amazonRmaId", "")),
            rma_page_url=str(d.get("rmaPageURL", "")),
            return_to_address=Address.from_api(address) if address is not None else None,
        )


@dataclass(frozen=True)
class FulfillmentOrder:
    """An MCF order as Amazon sees it.

    From `get()` the items, shipments and returns are filled in; from `list_changed()` Amazon sends
    only the order header, so those tuples are empty (call `get()` for the details).
    """

    seller_fulfillment_order_id: str
    status: str
    status_updated_date: datetime | None = None
    marketplace_id: str = ""
    displayable_order_id: str = ""
    displayable_order_date: datetime | None = None
    received_date: datetime | None = None
    shipping_speed_category: str = ""
    fulfillment_action: str | None = None
    fulfillment_policy: str | None = None
    destination_address: Address | None = None
    items: tuple[FulfillmentOrderItem, ...] = ()
    shipments: tuple[FulfillmentShipment, ...] = ()
    return_items: tuple[ReturnItem, ...] = ()
    return_authorizations: tuple[ReturnAuthorization, ...] = ()

    @classmethod
    def from_api(cls, data: Any) -> FulfillmentOrder:
        """From a `FulfillmentOrder` object (the order header only)."""
        d = _obj(data)
        address = d.get("destinationAddress")
        action, policy = d.get("fulfillmentAction"), d.get("fulfillmentPolicy")
        return cls(
            seller_fulfillment_order_id=str(d.get("sellerFulfillmentOrderId", "")),
            status=canonical(d.get("fulfillmentOrderStatus"), FulfillmentOrderStatus),
            status_updated_date=parse_timestamp(d.get("statusUpdatedDate")),
            marketplace_id=str(d.get("marketplaceId", "")),
            displayable_order_id=str(d.get("displayableOrderId", "")),
            displayable_order_date=parse_timestamp(d.get("displayableOrderDate")),
            received_date=parse_timestamp(d.get("receivedDate")),
            shipping_speed_category=canonical(d.get("shippingSpeedCategory"), ShippingSpeedCategory),
            fulfillment_action=canonical(action, FulfillmentAction) if action is not None else None,
            fulfillment_policy=canonical(policy, FulfillmentPolicy) if policy is not None else None,
            destination_address=Address.from_api(address) if address is not None else None,
        )

    @classmethod
    def from_result(cls, data: Any) -> FulfillmentOrder:
        """From a `GetFulfillmentOrderResult` (the order with its items, shipments and returns)."""
        d = _obj(data)
        return replace(
            cls.from_api(d["fulfillmentOrder"]),
            items=tuple(FulfillmentOrderItem.from_api(i) for i in _objs(d.get("fulfillmentOrderItems"))),
            shipments=tuple(FulfillmentShipment.from_api(s) for s in _objs(d.get("fulfillmentShipments"))),
            return_items=tuple(ReturnItem.from_api(r) for r in _objs(d.get("returnItems"))),
            return_authorizations=tuple(
                ReturnAuthorization.from_api(r) for r in _objs(d.get("returnAuthorizations"))
            ),
        )

    @property
    def packages(self) -> tuple[FulfillmentShipmentPackage, ...]:
        return tuple(p for s in self.shipments for p in s.packages)


@dataclass(frozen=True)
class TrackingAddress:
    city: str | None = None
    state: str | None = None
    country: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> TrackingAddress:
        d = _obj(data)
        return cls(_str(d.get("city")), _str(d.get("state")), _str(d.get("country")))


@dataclass(frozen=True)
class TrackingEvent:
    event_date: datetime | None
    event_code: str
    event_description: str = ""
    event_address: TrackingAddress | None = None

    @classmethod
    def from_api(cls, data: Any) -> TrackingEvent:
        d = _obj(data)
        address = d.get("eventAddress")
        return cls(
            parse_timestamp(d.get("eventDate")),
            str(d.get("eventCode", "")),
            str(d.get("eventDescription", "")),
            TrackingAddress.from_api(address) if address is not None else None,
        )


@dataclass(frozen=True)
class PackageTrackingDetails:
    """Carrier tracking for one package. The recipient's address and signature are not kept.

    `customer_tracking_link` and `carrier_url` are openable http(s) links or None (see
    `tracking_link`: Amazon's own value is percent-encoded)."""

    package_number: int
    tracking_number: str | None = None
    carrier_code: str | None = None
    carrier_url: str | None = None
    customer_tracking_link: str | None = None
    current_status: str | None = None
    current_status_description: str | None = None
    ship_date: datetime | None = None
    estimated_arrival_date: datetime | None = None
    tracking_events: tuple[TrackingEvent, ...] = ()

    @classmethod
    def from_api(cls, data: Any) -> PackageTrackingDetails:
        d = _obj(data)
        status = d.get("currentStatus")
        return cls(
            package_number=_int(d.get("packageNumber")),
            tracking_number=_str(d.get("trackingNumber")),
            carrier_code=_str(d.get("carrierCode")),
            carrier_url=tracking_link(d.get("carrierURL")),
            customer_tracking_link=tracking_link(d.get("customerTrackingLink")),
            current_status=canonical(status, TrackingStatus) if status is not None else None,
            current_status_description=_str(d.get("currentStatusDescription")),
            ship_date=parse_timestamp(d.get("shipDate")),
            estimated_arrival_date=parse_timestamp(d.get("estimatedArrivalDate")),
            tracking_events=tuple(TrackingEvent.from_api(e) for e in _objs(d.get("trackingEvents"))),
        )


@dataclass(frozen=True)
class ReturnReasonCode:
    return_reason_code: str
    description: str
    translated_description: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> ReturnReasonCode:
        d = _obj(data)
        return cls(
            str(d.get("returnReasonCode", "")),
            str(d.get("description", "")),
            _str(d.get("translatedDescription")),
        )


@dataclass(frozen=True)
class InvalidReturnItem:
    seller_return_item_id: str
    seller_fulfillment_order_item_id: str
    reason_code: str
    description: str = ""

    @classmethod
    def from_api(cls, data: Any) -> InvalidReturnItem:
        d = _obj(data)
        reason = _obj(d.get("invalidItemReason"))
        return cls(
            str(d.get("sellerReturnItemId", "")),
            str(d.get("sellerFulfillmentOrderItemId", "")),
            str(reason.get("invalidItemReasonCode", "")),
            str(reason.get("description", "")),
        )


@dataclass(frozen=True)
class CreateFulfillmentReturnResult:
    return_items: tuple[ReturnItem, ...] = ()
    invalid_return_items: tuple[InvalidReturnItem, ...] = ()
    return_authorizations: tuple[ReturnAuthorization, ...] = ()

    @classmethod
    def from_api(cls, data: Any) -> CreateFulfillmentReturnResult:
        d = _obj(data)
        return cls(
            tuple(ReturnItem.from_api(r) for r in _objs(d.get("returnItems"))),
            tuple(InvalidReturnItem.from_api(r) for r in _objs(d.get("invalidReturnItems"))),
            tuple(ReturnAuthorization.from_api(r) for r in _objs(d.get("returnAuthorizations"))),
        )


@dataclass(frozen=True)
class Feature:
    feature_name: str
    feature_description: str = ""
    seller_eligible: bool | None = None

    @classmethod
    def from_api(cls, data: Any) -> Feature:
        d = _obj(data)
        eligible = d.get("sellerEligible")
        return cls(
            str(d.get("featureName", "")),
            str(d.get("featureDescription", "")),
            None if eligible is None else _bool(eligible),
        )


@dataclass(frozen=True)
class FeatureSku:
    """One SKU of `getFeatureInventory`: eligible for the feature, with the units available."""

    seller_sku: str
    sku_count: int = 0

    @classmethod
    def from_api(cls, data: Any) -> FeatureSku:
        d = _obj(data)
        count = d.get("skuCount")
        return cls(str(d.get("sellerSku", "")), int(count) if isinstance(count, int | float) else 0)


@dataclass(frozen=True)
class FeatureSkuEligibility:
    """`getFeatureSKU`: whether one seller SKU may ship with a feature, and Amazon's reasons if not
    (`MERCHANT_NOT_ENROLLED`, `SKU_NOT_ELIGIBLE`, `INVALID_SKU`)."""

    feature_name: str
    seller_sku: str
    is_eligible: bool
    ineligible_reasons: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Any, seller_sku: str) -> FeatureSkuEligibility:
        d = _obj(data)
        if "isEligible" not in d:
            raise KeyError("isEligible")
        return cls(
            str(d.get("featureName", "")),
            str(d.get("sellerSku") or seller_sku),
            _bool(d.get("isEligible")),
            _strs(d.get("ineligibleReasons")),
        )


def previews_from_api(payload: Any) -> list[FulfillmentPreview]:
    return [FulfillmentPreview.from_api(p) for p in _objs(_obj(payload).get("fulfillmentPreviews"))]


def orders_from_api(items: Iterable[Any]) -> list[FulfillmentOrder]:
    return [FulfillmentOrder.from_api(o) for o in items]
