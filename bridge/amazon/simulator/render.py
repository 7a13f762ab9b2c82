"""Amazon's response shapes (Fulfillment Outbound 2020-07-01 model), built from simulator state.

Field names, casing and which fields are present follow the model's definitions: e.g.
`shippingDate`/`estimatedArrivalDate` are left out of a cancelled shipment, packages appear
only once a shipment has SHIPPED, and a pending shipment's items carry `packageNumber` 0 as
in Amazon's own example.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from .config import Timings
from .fulfilment import (
    CANCELLED_BY_FULFILLER,
    SHIPPED,
    IdFactory,
    PlannedPackage,
    ReturnAuthorizationRecord,
    ReturnRecord,
    SimOrder,
    Tracking,
    item_quantities,
    milestones,
    shipment_status,
    status_at,
)

FC_ADDRESS = {"city": "Phoenix", "state": "AZ", "country": "US"}
RETURN_TO_ADDRESS = {
    "name": "Amazon Returns (simulated)",
    "addressLine1": "1 Simulator Way",
    "city": "Phoenix",
    "stateOrRegion": "AZ",
    "postalCode": "85043",
    "countryCode": "US",
}
_LINE_EXTRAS = ("giftMessage", "displayableComment", "perUnitDeclaredValue", "perUnitPrice", "perUnitTax")
_ORDER_OPTIONAL = ("deliveryWindow", "notificationEmails", "featureConstraints")


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with whole seconds and `Z`, as Amazon writes timestamps."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fulfillment_order(order: SimOrder, timings: Timings, now: datetime) -> dict[str, Any]:
    status, since = status_at(order, timings, now)
    f = order.fields
    out: dict[str, Any] = {
        "sellerFulfillmentOrderId": order.seller_fulfillment_order_id,
        "marketplaceId": f["marketplaceId"],
        "displayableOrderId": f["displayableOrderId"],
        "displayableOrderDate": f["displayableOrderDate"],
        "displayableOrderComment": f["displayableOrderComment"],
        "shippingSpeedCategory": f["shippingSpeedCategory"],
        "destinationAddress": f["destinationAddress"],
        "fulfillmentAction": "Hold" if order.held else "Ship",
        "fulfillmentPolicy": order.policy,
        "receivedDate": iso(order.received_at),
        "fulfillmentOrderStatus": status,
        "statusUpdatedDate": iso(since),
    }
    out.update({k: f[k] for k in _ORDER_OPTIONAL if k in f})
    return out


def order_items(order: SimOrder, timings: Timings, now: datetime) -> list[dict[str, Any]]:
    m = milestones(order, timings, planned=True)  # estimates keep the plan, even when it stalls
    items = []
    for ln in order.lines:
        cancelled, unfulfillable = item_quantities(order, timings, now, ln)
        item: dict[str, Any] = {
            "sellerSku": ln.sku,
            "sellerFulfillmentOrderItemId": ln.item_id,
            "quantity": ln.quantity,
            **{k: ln.extras[k] for k in _LINE_EXTRAS if k in ln.extras},
            "fulfillmentNetworkSku": ln.fnsku,
            "orderItemDisposition": "Sellable",
            "cancelledQuantity": cancelled,
            "unfulfillableQuantity": unfulfillable,
        }
        if m is not None and ln.fulfillable and not cancelled:
            item["estimatedShipDate"] = iso(m.shipped)
            item["estimatedArrivalDate"] = iso(
                m.shipped + timedelta(seconds=timings.transit_for(order.speed))
            )
        items.append(item)
    return items


def shipments(order: SimOrder, timings: Timings, now: datetime, fc_id: str) -> list[dict[str, Any]]:
    m = milestones(order, timings)
    out = []
    for shipment in order.plan:
        status = shipment_status(order, shipment, timings, now)
        if status is None or m is None:
            continue
        shipped = status == SHIPPED
        item_rows = [
            {
                "sellerSku": sku,
                "sellerFulfillmentOrderItemId": item_id,
                "quantity": qty,
                "packageNumber": package.number if shipped else 0,
            }
            for package in shipment.packages
            for (item_id, sku, qty) in package.items
        ]
        row: dict[str, Any] = {
            "amazonShipmentId": shipment.amazon_shipment_id,
            "fulfillmentCenterId": fc_id,
            "fulfillmentShipmentStatus": status,
        }
        if status != CANCELLED_BY_FULFILLER:
            arrival = m.shipped + timedelta(seconds=timings.transit_for(order.speed))
            row["shippingDate"] = iso(m.shipped)
            row["estimatedArrivalDate"] = iso(arrival)
        row["fulfillmentShipmentItem"] = item_rows
        if shipped:
            row["fulfillmentShipmentPackage"] = [
                _package(p, row["estimatedArrivalDate"]) for p in shipment.packages
            ]
        out.append(row)
    return out


def _package(package: PlannedPackage, arrival: str) -> dict[str, Any]:
    return {
        "packageNumber": package.number,
        "carrierCode": package.carrier,
        "trackingNumber": package.tracking_number,
        "estimatedArrivalDate": arrival,
    }


def return_item(record: ReturnRecord, timings: Timings, now: datetime, fc_id: str) -> dict[str, Any]:
    processed_at = record.created_at + timedelta(seconds=timings.return_processed_after)
    processed = now >= processed_at
    item: dict[str, Any] = {
        "sellerReturnItemId": record.seller_return_item_id,
        "sellerFulfillmentOrderItemId": record.item_id,
        "amazonShipmentId": record.amazon_shipment_id,
        "sellerReturnReasonCode": record.reason_code,
    }
    if record.comment is not None:
        item["returnComment"] = record.comment
    item.update(
        {
            "status": "Processed" if processed else "New",
            "statusChangedDate": iso(processed_at if processed else record.created_at),
            "returnAuthorizationId": record.authorization_id,
        }
    )
    if processed:
        item["amazonReturnReasonCode"] = record.reason_code
        item["returnReceivedCondition"] = "Sellable"
        item["fulfillmentCenterId"] = fc_id
    return item


def return_authorization(auth: ReturnAuthorizationRecord, fc_id: str) -> dict[str, Any]:
    return {
        "returnAuthorizationId": auth.authorization_id,
        "fulfillmentCenterId": fc_id,
        "returnToAddress": RETURN_TO_ADDRESS,
        "amazonRmaId": auth.amazon_rma_id,
        "rmaPageURL": f"https://www.amazon.com/gp/orc/rml/{auth.amazon_rma_id}",
    }


def get_fulfillment_order(order: SimOrder, timings: Timings, now: datetime, fc_id: str) -> dict[str, Any]:
    return {
        "payload": {
            "fulfillmentOrder": fulfillment_order(order, timings, now),
            "fulfillmentOrderItems": order_items(order, timings, now),
            "fulfillmentShipments": shipments(order, timings, now, fc_id),
            "returnItems": [return_item(r, timings, now, fc_id) for r in order.returns],
            "returnAuthorizations": [return_authorization(a, fc_id) for a in order.authorizations],
        }
    }


def customer_tracking_link(tracking_number: str, *, encoded: bool) -> str:
    """Amazon's tracking page for a package. Amazon sends it percent-encoded with a trailing
    newline (`https%3A%2F%2F...%0A`, the model's own example); `encoded=False` gives the plain URL."""
    link = f"https://www.swiship.com/track?id={tracking_number}"
    return quote(link + "\n", safe="") if encoded else link


def package_tracking(
    order: SimOrder, package: PlannedPackage, progress: Tracking, *, encoded_link: bool = True
) -> dict[str, Any]:
    address = order.fields["destinationAddress"]
    destination = {
        "city": str(address.get("city", ""))[:150],
        "state": str(address.get("stateOrRegion", ""))[:150],
        "country": str(address.get("countryCode", ""))[:6],
    }
    payload: dict[str, Any] = {
        "packageNumber": package.number,
        "trackingNumber": package.tracking_number,
        "customerTrackingLink": customer_tracking_link(package.tracking_number, encoded=encoded_link),
        "carrierCode": package.carrier,
        "carrierURL": IdFactory.carrier_url(package.carrier),
        "shipDate": iso(progress.shipped_at),
        "estimatedArrivalDate": iso(progress.arrival_at),
        "shipToAddress": destination,
        "currentStatus": progress.status,
        "currentStatusDescription": progress.description,
        "trackingEvents": [
            {
                "eventDate": iso(e.at),
                "eventAddress": destination if e.at_destination else FC_ADDRESS,
                "eventCode": e.code,
                "eventDescription": e.description,
            }
            for e in progress.events
        ],
    }
    if progress.status == "DELIVERED":
        payload["additionalLocationInfo"] = "FRONT_DOOR"
    return {"payload": payload}
