"""The simulated fulfilment network's order model and its timeline, as pure functions of time.

An order stores only what happened to it (received, released from hold, cancelled) and the
shipment plan made when it was released. Its status, shipments, packages and tracking at any
moment are *computed* from those facts and the fulfilment clock, so nothing runs in the
background, reads are consistent, and advancing a ManualClock is all a test needs to do.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import SkuConfig, Timings

NEW = "New"
RECEIVED = "Received"
PLANNING = "Planning"
PROCESSING = "Processing"
CANCELLED = "Cancelled"
COMPLETE = "Complete"
COMPLETE_PARTIALLED = "CompletePartialled"
UNFULFILLABLE = "Unfulfillable"
INVALID = "Invalid"

CANCELLABLE = frozenset({NEW, RECEIVED, PLANNING})
UPDATABLE = frozenset({NEW, RECEIVED, PLANNING})

PENDING = "PENDING"
SHIPPED = "SHIPPED"
CANCELLED_BY_FULFILLER = "CANCELLED_BY_FULFILLER"

IN_TRANSIT = "IN_TRANSIT"
OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
DELIVERED = "DELIVERED"


@dataclass
class OrderLine:
    sku: str
    item_id: str
    quantity: int
    fulfillable: int
    fnsku: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def short(self) -> int:
        return self.quantity - self.fulfillable


@dataclass(frozen=True)
class PlannedPackage:
    number: int
    carrier: str
    tracking_number: str
    items: tuple[tuple[str, str, int], ...]  # (sellerFulfillmentOrderItemId, sellerSku, quantity)


@dataclass(frozen=True)
class PlannedShipment:
    amazon_shipment_id: str
    packages: tuple[PlannedPackage, ...]
    cancelled_by_fulfiller: bool

    def quantity_of(self, item_id: str) -> int:
        return sum(q for p in self.packages for (i, _, q) in p.items if i == item_id)


@dataclass
class ReturnRecord:
    seller_return_item_id: str
    item_id: str
    amazon_shipment_id: str
    reason_code: str
    comment: str | None
    created_at: datetime
    authorization_id: str


@dataclass
class ReturnAuthorizationRecord:
    authorization_id: str
    amazon_rma_id: str


@dataclass
class SimOrder:
    """What Amazon knows about one fulfillment order; mutated only under the Simulator's lock."""

    seller_fulfillment_order_id: str
    fields: dict[str, Any]
    policy: str
    lines: list[OrderLine]
    received_at: datetime
    released_at: datetime | None
    cancelled_at: datetime | None = None
    invalid: bool = False
    reservation_released: bool = False
    plan: tuple[PlannedShipment, ...] = ()
    returns: list[ReturnRecord] = field(default_factory=list)
    authorizations: list[ReturnAuthorizationRecord] = field(default_factory=list)
    #: Set by the `stall` control: from then on the order makes no progress (a stuck order)
    #: until `resumed_at`, after which its remaining milestones come that much later.
    stalled_at: datetime | None = None
    resumed_at: datetime | None = None

    @property
    def speed(self) -> str:
        return str(self.fields["shippingSpeedCategory"])

    @property
    def held(self) -> bool:
        return self.released_at is None

    def line(self, item_id: str) -> OrderLine | None:
        return next((ln for ln in self.lines if ln.item_id == item_id), None)

    def shipment(self, amazon_shipment_id: str) -> PlannedShipment | None:
        return next((s for s in self.plan if s.amazon_shipment_id == amazon_shipment_id), None)


@dataclass(frozen=True)
class Milestones:
    planning: datetime
    processing: datetime
    shipped: datetime


#: Where a stalled order's next milestones are: never, in practice.
NEVER = datetime(9999, 1, 1, tzinfo=UTC)


def milestones(order: SimOrder, timings: Timings, *, planned: bool = False) -> Milestones | None:
    """When a released order reaches each stage; None while it is held (or if it is invalid).
    A stalled order reaches no stage after the stall, unless `planned` (what Amazon promised:
    the estimated ship date keeps the original plan)."""
    if order.released_at is None or order.invalid:
        return None
    base = order.released_at
    planning = base + timedelta(seconds=timings.planning_after)
    processing = base + timedelta(seconds=timings.processing_after)
    shipped = base + timedelta(seconds=timings.ship_after)
    stall = order.stalled_at
    if stall is not None:
        if order.resumed_at is not None:
            delay = order.resumed_at - stall
            planning, processing, shipped = (
                t if t <= stall else t + delay for t in (planning, processing, shipped)
            )
        elif not planned:
            planning, processing, shipped = (
                t if t <= stall else NEVER for t in (planning, processing, shipped)
            )
    return Milestones(planning=planning, processing=processing, shipped=shipped)


def history(order: SimOrder, timings: Timings) -> list[tuple[datetime, str]]:
    """Every status the order has had or will have, in time order, with the moment it began."""
    if order.invalid:
        return [(order.received_at, INVALID)]
    events: list[tuple[datetime, str]] = [(order.received_at, RECEIVED)]
    end = order.cancelled_at
    m = milestones(order, timings)
    if m is None:
        auto_cancel = order.received_at + timedelta(seconds=timings.hold_auto_cancel_after)
        end = auto_cancel if end is None else min(end, auto_cancel)
    elif not any(ln.fulfillable for ln in order.lines):
        events += [(m.planning, PLANNING), (m.processing, UNFULFILLABLE)]
    else:
        events += [(m.planning, PLANNING), (m.processing, PROCESSING), (m.shipped, _final_status(order))]
    if end is not None:
        events = [e for e in events if e[0] <= end] + [(end, CANCELLED)]
    return events


def _final_status(order: SimOrder) -> str:
    if order.plan and all(s.cancelled_by_fulfiller for s in order.plan):
        return UNFULFILLABLE
    if any(ln.short for ln in order.lines) or any(s.cancelled_by_fulfiller for s in order.plan):
        return COMPLETE_PARTIALLED
    return COMPLETE


def status_at(order: SimOrder, timings: Timings, now: datetime) -> tuple[str, datetime]:
    """(status, when that status began) as of `now`."""
    current = (RECEIVED, order.received_at)
    for when, status in history(order, timings):
        if when <= now:
            current = (status, when)
    return current


def shipment_status(
    order: SimOrder, shipment: PlannedShipment, timings: Timings, now: datetime
) -> str | None:
    """A shipment appears (PENDING) once picking starts and ends SHIPPED or CANCELLED_BY_FULFILLER."""
    m = milestones(order, timings)
    if m is None or now < m.processing:
        return None
    if order.cancelled_at is not None and order.cancelled_at < m.processing:
        return None
    if now < m.shipped:
        return PENDING
    return CANCELLED_BY_FULFILLER if shipment.cancelled_by_fulfiller else SHIPPED


def item_quantities(order: SimOrder, timings: Timings, now: datetime, line: OrderLine) -> tuple[int, int]:
    """(cancelledQuantity, unfulfillableQuantity) of one line as of `now`."""
    status, _ = status_at(order, timings, now)
    if status == CANCELLED:
        return line.quantity, 0
    if order.invalid:
        return 0, line.quantity
    unfulfillable = line.short
    for shipment in order.plan:
        if shipment_status(order, shipment, timings, now) == CANCELLED_BY_FULFILLER:
            unfulfillable += shipment.quantity_of(line.item_id)
    return 0, unfulfillable


@dataclass(frozen=True)
class TrackingEvent:
    at: datetime
    code: str
    description: str
    at_destination: bool


@dataclass(frozen=True)
class Tracking:
    status: str
    description: str
    shipped_at: datetime
    arrival_at: datetime
    events: tuple[TrackingEvent, ...]  # newest first, as Amazon lists them


def tracking(order: SimOrder, timings: Timings, now: datetime) -> Tracking | None:
    """A shipped package's carrier progress, or None if it has not shipped (yet)."""
    m = milestones(order, timings)
    if m is None or now < m.shipped:
        return None
    shipped = m.shipped
    arrival = shipped + timedelta(seconds=timings.transit_for(order.speed))
    out_for_delivery = max(shipped, arrival - timedelta(seconds=timings.out_for_delivery_lead))
    scan = shipped + (out_for_delivery - shipped) / 2
    timeline = [
        TrackingEvent(shipped, "EVENT_101", "Carrier notified to pick up package.", False),
        TrackingEvent(scan, "EVENT_202", "Departure scan.", False),
        TrackingEvent(out_for_delivery, "EVENT_302", "Out for delivery.", True),
        TrackingEvent(arrival, "EVENT_301", "Delivered.", True),
    ]
    seen = tuple(sorted((e for e in timeline if e.at <= now), key=lambda e: e.at, reverse=True))
    if now >= arrival:
        status, description = DELIVERED, "Delivered to the destination address."
    elif now >= out_for_delivery:
        status, description = OUT_FOR_DELIVERY, "Out for delivery."
    else:
        status, description = IN_TRANSIT, "In transit to the destination address."
    return Tracking(status, description, shipped, arrival, seen)


class IdFactory:
    """Amazon-looking identifiers, reproducible from a seed; use under the Simulator's lock."""

    _CARRIER_URLS: Mapping[str, str] = {
        "UPS": "https://www.ups.com",
        "USPS": "https://www.usps.com",
        "AMZL_US": "https://track.amazon.com",
        "FEDEX": "https://www.fedex.com",
    }

    def __init__(self, seed: int, first_package_number: int = 200_000_001) -> None:
        self._rng = random.Random(seed)
        self._next_package = first_package_number

    def package_number(self) -> int:
        number = self._next_package
        self._next_package += 1
        return number

    def shipment_id(self) -> str:
        return "D" + self._token(string.ascii_letters + string.digits, 8)

    def tracking_number(self, carrier: str) -> str:
        if carrier == "UPS":
            return "1Z" + self._token(string.ascii_uppercase + string.digits, 16)
        if carrier == "USPS":
            return "9400" + self._token(string.digits, 18)
        if carrier.startswith("AMZL"):
            return "TBA" + self._token(string.digits, 12)
        return self._token(string.digits, 12)

    def carrier(self, carriers: Sequence[str]) -> str:
        return self._rng.choice(list(carriers))

    def rma(self) -> tuple[str, str]:
        alnum = string.ascii_uppercase + string.digits
        return "RMA" + self._token(alnum, 13), self._token(string.ascii_letters + string.digits, 9) + "RMA"

    @staticmethod
    def fnsku(sku: str) -> str:
        """Stable per SKU, so every order of a SKU shows the same fulfillment network SKU."""
        return "X00" + hashlib.sha256(sku.encode()).hexdigest()[:7].upper()

    @classmethod
    def carrier_url(cls, carrier: str) -> str:
        return cls._CARRIER_URLS.get(carrier, "https://www.swiship.com")

    def _token(self, alphabet: str, n: int) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))


def build_plan(
    lines: Sequence[OrderLine],
    skus: Mapping[str, SkuConfig],
    carriers: Sequence[str],
    ids: IdFactory,
) -> tuple[PlannedShipment, ...]:
    """Group the fulfillable units into shipments and packages.

    Ordinary SKUs share one shipment and one package. A `split` SKU gets its own shipment with
    one package per unit; a `cancelled_by_fulfiller` SKU gets its own shipment so that only its
    units are lost.
    """
    shipments: list[PlannedShipment] = []
    shared: list[tuple[str, str, int]] = []
    for ln in lines:
        if ln.fulfillable <= 0:
            continue
        cfg = skus.get(ln.sku, SkuConfig())
        if cfg.split:
            packages = tuple(
                _package(ids, carriers, ((ln.item_id, ln.sku, 1),)) for _ in range(ln.fulfillable)
            )
            shipments.append(PlannedShipment(ids.shipment_id(), packages, cfg.cancelled_by_fulfiller))
        elif cfg.cancelled_by_fulfiller:
            package = _package(ids, carriers, ((ln.item_id, ln.sku, ln.fulfillable),))
            shipments.append(PlannedShipment(ids.shipment_id(), (package,), True))
        else:
            shared.append((ln.item_id, ln.sku, ln.fulfillable))
    if shared:
        shipments.insert(
            0, PlannedShipment(ids.shipment_id(), (_package(ids, carriers, tuple(shared)),), False)
        )
    return tuple(shipments)


def _package(
    ids: IdFactory, carriers: Sequence[str], items: tuple[tuple[str, str, int], ...]
) -> PlannedPackage:
    carrier = ids.carrier(carriers)
    return PlannedPackage(ids.package_number(), carrier, ids.tracking_number(carrier), items)
