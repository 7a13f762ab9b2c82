"""Shopify fulfillment orders: which part of an order is Amazon's, and the fulfillment-service protocol.

Shopify splits each order into fulfillment orders (FOs), one per location, and tracks what remains
to fulfil on each. This module reads them and answers for the bridge, in both ways a channel can
connect (`channel.shopify.mode`):

- `merchant_managed`: the FOs assigned to the channel's `shopify.locations` (gids or names,
  resolved against the shop and cached for `LOCATION_CACHE_S`) are Amazon's; with no locations
  named, `assigned` returns None and the whole order is (today's behaviour).
- `fulfillment_service`: the bridge is a fulfillment service; its location is found through the
  shop's fulfillment services (matched by our callback URL, else by `service_name`), so there is
  no second copy of it to drift. Only FOs whose fulfillment request is submitted (to be accepted)
  or accepted are Amazon's; `requests` lists the ones Shopify is waiting for us to answer.

Scopes: merchant-managed needs `read_merchant_managed_fulfillment_orders` and `read_locations`;
fulfillment service needs `read_assigned_fulfillment_orders`, `write_assigned_fulfillment_orders`
and `write_fulfillments` (README, "Shopify: two ways to connect").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..channels import SHOPIFY_LOCATION_GID, Channel
from ..clock import Clock
from ..orders import Address, CanonicalOrder, OrderLine, PaymentState
from .assignment import (
    Assignment,
    FulfillmentUnit,
    RejectReason,
    RequestedUnit,
    RequestKind,
    UnitLine,
)
from .push import PushError
from .shopify_graphql import (
    MAX_PAGES,
    GraphQLOperation,
    ShopifyGraphQL,
    bad_answer,
    gid,
    items,
    legacy,
    next_cursor,
    obj,
    order_not_found,
    raise_user_errors,
    too_large,
    user_error_messages,
)

log = logging.getLogger(__name__)

LOCATION_CACHE_S = 600.0
MAX_ANSWER_MESSAGE = 500
NOTIFICATION_PATH = "fulfillment_order_notification"  # Shopify appends it to the callback URL

FULFILLABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})
# Fulfillment orders that will become fulfillable without our doing (a hold released, a date reached).
WAITING_STATUSES = frozenset({"ON_HOLD", "SCHEDULED"})
FINISHED_STATUSES = frozenset({"CLOSED", "CANCELLED", "INCOMPLETE"})

# Request statuses that make a fulfillment order ours to ship in fulfillment-service mode.
TO_ACCEPT = "SUBMITTED"
ACCEPTED = "ACCEPTED"

ASSIGNMENT_STATUS = {
    RequestKind.FULFILLMENT: "FULFILLMENT_REQUESTED",
    RequestKind.CANCELLATION: "CANCELLATION_REQUESTED",
}
REJECTION_REASONS = {
    RejectReason.INVALID_SKU: "INVALID_SKU",
    RejectReason.OUT_OF_STOCK: "INVENTORY_OUT_OF_STOCK",
    RejectReason.INCORRECT_ADDRESS: "INCORRECT_ADDRESS",
    RejectReason.UNDELIVERABLE: "UNDELIVERABLE_DESTINATION",
    RejectReason.OTHER: "OTHER",
}

_LINE_FIELDS = """
          nodes {
            id
            remainingQuantity
            requiresShipping
            sku
            lineItem {
              id
              sku
            }
          }
          pageInfo {
            hasNextPage
            endCursor
          }"""

FULFILLMENT_ORDERS = GraphQLOperation(
    f"""
query BridgeFulfillmentOrders($id: ID!, $after: String, $withLocation: Boolean!) {{
  order(id: $id) {{
    id
    fulfillmentOrders(first: 5, after: $after) {{
      nodes {{
        id
        status
        requestStatus
        assignedLocation {{
          name
          location @include(if: $withLocation) {{
            id
            isFulfillmentService
          }}
        }}
        lineItems(first: 25) {{{_LINE_FIELDS}
        }}
      }}
      pageInfo {{
        hasNextPage
        endCursor
      }}
    }}
  }}
}}
""".strip(),
    estimated_cost=284,
)

FULFILLMENT_ORDER_LINE_ITEMS = GraphQLOperation(
    f"""
query BridgeFulfillmentOrderLineItems($id: ID!, $after: String) {{
  fulfillmentOrder(id: $id) {{
    id
    lineItems(first: 100, after: $after) {{{_LINE_FIELDS}
    }}
  }}
}}
""".strip(),
    estimated_cost=204,
)

ASSIGNED_FULFILLMENT_ORDERS = GraphQLOperation(
    f"""
query BridgeAssignedFulfillmentOrders(
  $status: FulfillmentOrderAssignmentStatus
  $locationIds: [ID!]
  $after: String
) {{
  assignedFulfillmentOrders(assignmentStatus: $status, locationIds: $locationIds, first: 10, after: $after) {{
    nodes {{
      id
      status
      requestStatus
      orderId
      orderName
      orderProcessedAt
      assignedLocation {{
        name
        location {{
          id
          isFulfillmentService
        }}
      }}
      destination {{
        firstName
        lastName
        company
        address1
        address2
        city
        province
        zip
        countryCode
        phone
        email
      }}
      deliveryMethod {{
        presentedName
      }}
      lineItems(first: 25) {{{_LINE_FIELDS}
      }}
    }}
    pageInfo {{
      hasNextPage
      endCursor
    }}
  }}
}}
""".strip(),
    estimated_cost=583,
)

LOCATIONS = GraphQLOperation(
    """
query BridgeLocations($after: String) {
  locations(first: 50, after: $after, includeInactive: true) {
    nodes {
      id
      name
      isActive
      isFulfillmentService
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
""".strip(),
    estimated_cost=53,
)

FULFILLMENT_SERVICES = GraphQLOperation(
    """
query BridgeFulfillmentServices {
  shop {
    id
    fulfillmentServices {
      id
      serviceName
      callbackUrl
      location {
        id
        name
      }
    }
  }
}
""".strip(),
    estimated_cost=3,
)

_SERVICE_FIELDS = """
    fulfillmentService {
      id
      serviceName
      callbackUrl
      location {
        id
        name
      }
    }
    userErrors {
      field
      message
    }"""

# Not idempotent: a lost answer may have created the service. `register` finds it by its callback
# URL the next time, so running the command again is the recovery.
FULFILLMENT_SERVICE_CREATE = GraphQLOperation(
    f"""
mutation BridgeFulfillmentServiceCreate($name: String!, $callbackUrl: URL!) {{
  fulfillmentServiceCreate(
    name: $name
    callbackUrl: $callbackUrl
    trackingSupport: false
    inventoryManagement: false
    requiresShippingMethod: true
  ) {{{_SERVICE_FIELDS}
  }}
}}
""".strip(),
    estimated_cost=10,
    idempotent=False,
)

FULFILLMENT_SERVICE_UPDATE = GraphQLOperation(
    f"""
mutation BridgeFulfillmentServiceUpdate($id: ID!, $callbackUrl: URL!) {{
  fulfillmentServiceUpdate(id: $id, callbackUrl: $callbackUrl) {{{_SERVICE_FIELDS}
  }}
}}
""".strip(),
    estimated_cost=10,
)

_ANSWER_FIELDS = """
    fulfillmentOrder {
      id
      status
      requestStatus
    }
    userErrors {
      field
      message
    }"""

# The four answers are safe to repeat after a lost answer: the repeat is refused (the request is no
# longer in the state it needs) and the caller reads the request status again.
ACCEPT_FULFILLMENT_REQUEST = GraphQLOperation(
    f"""
mutation BridgeAcceptFulfillmentRequest($id: ID!, $message: String) {{
  fulfillmentOrderAcceptFulfillmentRequest(id: $id, message: $message) {{{_ANSWER_FIELDS}
  }}
}}
""".strip(),
    estimated_cost=10,
)

REJECT_FULFILLMENT_REQUEST = GraphQLOperation(
    f"""
mutation BridgeRejectFulfillmentRequest(
  $id: ID!
  $reason: FulfillmentOrderRejectionReason
  $message: String
) {{
  fulfillmentOrderRejectFulfillmentRequest(id: $id, reason: $reason, message: $message) {{{_ANSWER_FIELDS}
  }}
}}
""".strip(),
    estimated_cost=10,
)

ACCEPT_CANCELLATION_REQUEST = GraphQLOperation(
    f"""
mutation BridgeAcceptCancellationRequest($id: ID!, $message: String) {{
  fulfillmentOrderAcceptCancellationRequest(id: $id, message: $message) {{{_ANSWER_FIELDS}
  }}
}}
""".strip(),
    estimated_cost=10,
)

REJECT_CANCELLATION_REQUEST = GraphQLOperation(
    f"""
mutation BridgeRejectCancellationRequest($id: ID!, $message: String) {{
  fulfillmentOrderRejectCancellationRequest(id: $id, message: $message) {{{_ANSWER_FIELDS}
  }}
}}
""".strip(),
    estimated_cost=10,
)

# Not idempotent in general (a repeat moves what is left again), so `release` reads the order's
# fulfillment orders first and skips the ones already at the target location.
MOVE_FULFILLMENT_ORDER = GraphQLOperation(
    """
mutation BridgeMoveFulfillmentOrder(
  $id: ID!
  $newLocationId: ID!
  $fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
) {
  fulfillmentOrderMove(
    id: $id
    newLocationId: $newLocationId
    fulfillmentOrderLineItems: $fulfillmentOrderLineItems
  ) {
    movedFulfillmentOrder {
      id
    }
    userErrors {
      field
      message
    }
  }
}
""".strip(),
    estimated_cost=10,
    idempotent=False,
)

OPERATIONS: tuple[GraphQLOperation, ...] = (
    FULFILLMENT_ORDERS,
    FULFILLMENT_ORDER_LINE_ITEMS,
    ASSIGNED_FULFILLMENT_ORDERS,
    LOCATIONS,
    FULFILLMENT_SERVICES,
    FULFILLMENT_SERVICE_CREATE,
    FULFILLMENT_SERVICE_UPDATE,
    ACCEPT_FULFILLMENT_REQUEST,
    REJECT_FULFILLMENT_REQUEST,
    ACCEPT_CANCELLATION_REQUEST,
    REJECT_CANCELLATION_REQUEST,
    MOVE_FULFILLMENT_ORDER,
)


def service_callback_url(channel: Channel) -> str:
    """The callback URL we register; Shopify posts to `<it>/fulfillment_order_notification`, which
    the bridge serves at `/shopify/<channel>/fulfillment_order_notification`."""
    return f"{channel.shopify.callback_url.rstrip('/')}/shopify/{channel.id}"


# --------------------------------------------------------------------------------------------
# Views of Shopify's answers (pure)


@dataclass(frozen=True)
class FulfillmentOrderLine:
    id: str  # gid://shopify/FulfillmentOrderLineItem/...
    line_item_id: str  # gid://shopify/LineItem/<REST line id>
    remaining: int
    requires_shipping: bool = True
    sku: str = ""


@dataclass(frozen=True)
class FulfillmentOrderView:
    id: str
    status: str
    lines: tuple[FulfillmentOrderLine, ...]
    request_status: str = "UNSUBMITTED"
    location_id: str = ""  # empty when Shopify names no location (deleted)
    location_name: str = ""
    at_fulfillment_service: bool = False


@dataclass(frozen=True)
class Location:
    id: str
    name: str
    active: bool = True
    fulfillment_service: bool = False


@dataclass(frozen=True)
class OurLocations:
    ids: frozenset[str]
    names: tuple[str, ...]

    def describe(self) -> str:
        return ", ".join(f"'{n}'" for n in self.names) or "(none)"


@dataclass(frozen=True)
class FulfillmentService:
    id: str
    name: str
    callback_url: str
    location_id: str
    location_name: str


@dataclass(frozen=True)
class Registration:
    service: FulfillmentService
    outcome: str  # "created" | "already registered" | "callback URL updated"


def _unit(view: FulfillmentOrderView, shipping_only: bool = True) -> FulfillmentUnit:
    return FulfillmentUnit(
        id=view.id,
        location_id=view.location_id,
        status=view.status,
        request_status=view.request_status,
        lines=tuple(
            UnitLine(legacy(x.line_item_id), x.id, x.sku, x.remaining)
            for x in view.lines
            if x.remaining > 0 and (x.requires_shipping or not shipping_only)
        ),
    )


def _left(view: FulfillmentOrderView, where: str) -> list[str]:
    return [
        f"line {legacy(x.line_item_id)} x{x.remaining} {where}"
        for x in view.lines
        if x.remaining > 0 and view.status not in FINISHED_STATUSES
    ]


def assignment_of(
    views: Iterable[FulfillmentOrderView], ours: OurLocations, *, fulfillment_service: bool
) -> Assignment:
    """Amazon's part of an order from its fulfillment orders (pure; see `Assignment`)."""
    views = list(views)
    mine = [v for v in views if v.location_id in ours.ids]
    left: list[str] = []
    for view in views:
        if view.location_id not in ours.ids:
            left += _left(view, f"at {view.location_name or 'another location'}")
    for view in mine:
        left += [
            f"line {legacy(x.line_item_id)} needs no shipping" for x in view.lines if not x.requires_shipping
        ]
    waiting = [v for v in mine if v.status in WAITING_STATUSES and any(x.remaining for x in v.lines)]
    if fulfillment_service:
        active = [
            v for v in mine if v.status in FULFILLABLE_STATUSES and v.request_status in (TO_ACCEPT, ACCEPTED)
        ]
        unrequested = [
            v
            for v in mine
            if v not in active and v.status not in FINISHED_STATUSES and any(x.remaining for x in v.lines)
        ]
    else:
        active = [v for v in mine if v.status in FULFILLABLE_STATUSES]
        unrequested = []
    units = tuple(u for u in map(_unit, active) if u.lines)
    if not units:
        if waiting and not fulfillment_service:
            ids = ", ".join(legacy(v.id) for v in waiting)
            return Assignment(
                waiting=f"fulfillment order(s) {ids} at Amazon's location are on hold or scheduled",
                left_to_others=tuple(left),
            )
        if unrequested or waiting:
            ids = ", ".join(legacy(v.id) for v in unrequested + waiting)
            return Assignment(
                requested=True,
                waiting=f"fulfillment order(s) {ids} at Amazon's location are not requested yet",
                left_to_others=tuple(left),
            )
        where = ours.describe()
        reason = (
            f"nothing left to ship at Amazon's location(s) {where}"
            if mine
            else f"no fulfillment order of this order is assigned to Amazon's location(s) {where}"
        )
        return Assignment(not_ours=reason, left_to_others=tuple(left), requested=fulfillment_service)
    if waiting and not fulfillment_service:
        ids = ", ".join(legacy(v.id) for v in waiting)
        # One Amazon order per storefront order: ship nothing until the held part is released too.
        return Assignment(
            waiting=f"fulfillment order(s) {ids} at Amazon's location are on hold or scheduled",
            left_to_others=tuple(left),
        )
    to_accept = tuple(u.id for u in units if u.request_status == TO_ACCEPT) if fulfillment_service else ()
    return Assignment(
        units=units, to_accept=to_accept, requested=fulfillment_service, left_to_others=tuple(left)
    )


@dataclass(frozen=True)
class Move:
    """One `fulfillmentOrderMove`: the whole fulfillment order (`lines` None) or some units."""

    fulfillment_order_id: str
    lines: tuple[tuple[str, int], ...] | None  # (fulfillment order line item gid, units)
    moved: tuple[tuple[str, int], ...]  # (storefront line id, units), for the audit trail


def moves_for(
    views: Iterable[FulfillmentOrderView],
    candidates: Collection[str],
    wanted: dict[str, int] | None,
    target: str,
) -> list[Move]:
    """The moves that hand `wanted` (storefront line id -> units; None: everything) of the
    fulfillment orders `candidates` to location `target` (pure). Fulfillment orders already at the
    target, finished, or not candidates are left alone, so repeating a release moves nothing twice."""
    left = dict(wanted) if wanted is not None else None
    out: list[Move] = []
    for view in views:
        if view.id not in candidates or view.location_id == target or view.status in FINISHED_STATUSES:
            continue
        open_lines = [x for x in view.lines if x.remaining > 0]
        if left is None:
            if open_lines:
                moved = tuple((legacy(x.line_item_id), x.remaining) for x in open_lines)
                out.append(Move(view.id, None, moved))
            continue
        chosen: list[tuple[str, int]] = []
        moved_lines: list[tuple[str, int]] = []
        for x in open_lines:
            line_id = legacy(x.line_item_id)
            take = min(x.remaining, left.get(line_id, 0))
            if take > 0:
                chosen.append((x.id, take))
                moved_lines.append((line_id, take))
                left[line_id] -= take
        if chosen:
            out.append(Move(view.id, tuple(chosen), tuple(moved_lines)))
    return out


def resolve_locations(wanted: Iterable[str], shop: Iterable[Location]) -> tuple[OurLocations, list[str]]:
    """Configured location gids or names -> the shop's locations, and a problem per entry that
    matches none (or several)."""
    shop = list(shop)
    ids: set[str] = set()
    names: list[str] = []
    problems: list[str] = []
    listed = ", ".join(sorted(f"'{x.name}'" for x in shop)) or "(none)"
    for entry in wanted:
        if SHOPIFY_LOCATION_GID.match(entry):
            found = [x for x in shop if x.id == entry]
        else:
            found = [x for x in shop if x.name.strip().casefold() == entry.strip().casefold()]
        if not found:
            problems.append(f"no location {entry!r} in the shop (its locations: {listed})")
        elif len(found) > 1:
            problems.append(f"several locations are named {entry!r}; write its gid instead")
        else:
            location = found[0]
            if not location.active:
                problems.append(f"location {location.name!r} is deactivated in Shopify")
            ids.add(location.id)
            names.append(location.name)
    return OurLocations(frozenset(ids), tuple(names)), problems


def _parse_lines(connection: dict[str, Any], operation: GraphQLOperation) -> list[FulfillmentOrderLine]:
    out = []
    for node in map(obj, items(connection.get("nodes"))):
        line_item = obj(node.get("lineItem"))
        fo_line_id, line_item_id, remaining = (
            node.get("id"),
            line_item.get("id"),
            node.get("remainingQuantity"),
        )
        if (
            not isinstance(fo_line_id, str)
            or not isinstance(line_item_id, str)
            or not isinstance(remaining, int)
        ):
            raise bad_answer(operation)
        out.append(
            FulfillmentOrderLine(
                fo_line_id,
                line_item_id,
                remaining,
                requires_shipping=node.get("requiresShipping") is not False,
                sku=str(node.get("sku") or line_item.get("sku") or "").strip(),
            )
        )
    return out


def _parse_view(
    node: dict[str, Any], lines: list[FulfillmentOrderLine], operation: GraphQLOperation
) -> FulfillmentOrderView:
    fo_id, status = node.get("id"), node.get("status")
    if not isinstance(fo_id, str) or not isinstance(status, str):
        raise bad_answer(operation)
    assigned = obj(node.get("assignedLocation"))
    location = obj(assigned.get("location"))
    return FulfillmentOrderView(
        id=fo_id,
        status=status,
        lines=tuple(lines),
        request_status=str(node.get("requestStatus") or "UNSUBMITTED"),
        location_id=str(location.get("id") or ""),
        location_name=str(assigned.get("name") or ""),
        at_fulfillment_service=location.get("isFulfillmentService") is True,
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _timestamp(value: Any, fallback: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def requested_order(
    channel_id: str, node: dict[str, Any], view: FulfillmentOrderView, now: datetime
) -> CanonicalOrder:
    """The order as a fulfillment request describes it: enough to ship it without an order webhook."""
    dest = obj(node.get("destination"))
    name = " ".join(p for p in (_text(dest.get("firstName")), _text(dest.get("lastName"))) if p)
    address = (
        Address(
            name=name,
            line1=_text(dest.get("address1")),
            line2=_text(dest.get("address2")),
            company=_text(dest.get("company")),
            city=_text(dest.get("city")),
            state=_text(dest.get("province")),
            postal_code=_text(dest.get("zip")),
            country_code=_text(dest.get("countryCode")).upper(),
            phone=_text(dest.get("phone")),
        )
        if dest
        else None
    )
    processed = _timestamp(node.get("orderProcessedAt"), now)
    order_id = legacy(str(node.get("orderId") or ""))
    return CanonicalOrder(
        channel_id=channel_id,
        external_id=order_id,
        display_id=_text(node.get("orderName")) or order_id,
        currency="",
        payment_state=PaymentState.UNKNOWN,
        created_at=processed,
        updated_at=processed,
        lines=tuple(
            OrderLine(line_id=legacy(x.line_item_id), sku=x.sku, quantity=x.remaining, unit_price="0")
            for x in view.lines
            if x.remaining > 0 and x.requires_shipping
        ),
        destination=address,
        shipping_method=_text(obj(node.get("deliveryMethod")).get("presentedName")),
        buyer_email=_text(dest.get("email")),
        buyer_phone=_text(dest.get("phone")),
    )


# --------------------------------------------------------------------------------------------
# The adapter


class ShopifyFulfillmentOrders:
    """`FulfillmentAssignments` for one Shopify channel, on the channel's shared GraphQL client."""

    def __init__(self, channel: Channel, clock: Clock, graphql: ShopifyGraphQL) -> None:
        self.channel = channel
        self.clock = clock
        self.graphql = graphql
        self._lock = threading.Lock()
        self._ours: tuple[float, OurLocations] | None = None

    # -- locations -----------------------------------------------------------------------------

    def our_locations(self) -> OurLocations:
        """Amazon's location(s) in this shop, cached for `LOCATION_CACHE_S`. Raises a non-retryable
        `PushError` (`unknown_location` / `not_registered`) when the configuration does not match."""
        now = self.clock.monotonic()
        with self._lock:
            if self._ours is not None and now - self._ours[0] < LOCATION_CACHE_S:
                return self._ours[1]
        ours, problems = self.check()
        if problems:
            code = "not_registered" if self.channel.shopify.fulfillment_service else "unknown_location"
            raise PushError(code, f"channel {self.channel.id}: " + "; ".join(problems), retryable=False)
        with self._lock:
            self._ours = (now, ours)
        return ours

    def check(self) -> tuple[OurLocations, list[str]]:
        """Resolve the channel's location(s) against the shop now: (locations, problems)."""
        options = self.channel.shopify
        if options.fulfillment_service:
            service = self.find_service()
            if service is None or not service.location_id:
                return OurLocations(frozenset(), ()), [
                    f"no fulfillment service {options.service_name!r} with callback URL "
                    f"{service_callback_url(self.channel)} in the shop; run `fba-bridge shopify register "
                    f"{self.channel.id}`"
                ]
            return OurLocations(frozenset({service.location_id}), (service.location_name,)), []
        return resolve_locations(options.locations, self.locations())

    def setup_problems(self) -> list[str]:
        problems = self.check()[1] if self.channel.shopify.restricted else []
        return problems + self.fallback_problems()

    def fallback_problems(self) -> list[str]:
        """`fallback: release` needs `fallback_location` to be an active location of the shop."""
        fallback = self.channel.fallback
        if fallback.action != "release" or not fallback.location:
            return []
        found = next((x for x in self.locations() if x.id == fallback.location), None)
        if found is None or not found.active:
            return [
                f"fallback_location {fallback.location} is not an active location of the shop; use the id "
                "of the location that ships what Amazon cannot (Settings > Locations)"
            ]
        return []

    def locations(self) -> list[Location]:
        out: list[Location] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            connection = obj(self.graphql.call(LOCATIONS, {"after": after}).get("locations"))
            for node in map(obj, items(connection.get("nodes"))):
                if isinstance(node.get("id"), str):
                    out.append(
                        Location(
                            node["id"],
                            str(node.get("name") or ""),
                            active=node.get("isActive") is not False,
                            fulfillment_service=node.get("isFulfillmentService") is True,
                        )
                    )
            after = next_cursor(connection)
            if after is None:
                return out
        raise too_large("locations")

    # -- reading an order's fulfillment orders -------------------------------------------------

    def read(self, order_external_id: str, *, with_location: bool = False) -> list[FulfillmentOrderView]:
        out: list[FulfillmentOrderView] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            # The Location object needs `read_locations`; a channel that names no locations does
            # without it, as it did before locations could be named (a release needs it).
            variables = {
                "id": gid("Order", order_external_id),
                "after": after,
                "withLocation": with_location or self.channel.shopify.restricted,
            }
            data = self.graphql.call(FULFILLMENT_ORDERS, variables)
            order = data.get("order")
            if order is None:
                raise order_not_found(order_external_id)
            connection = obj(obj(order).get("fulfillmentOrders"))
            for node in map(obj, items(connection.get("nodes"))):
                out.append(self._view(node, FULFILLMENT_ORDERS))
            after = next_cursor(connection)
            if after is None:
                return out
        raise too_large(f"order {order_external_id}")

    def _view(self, node: dict[str, Any], operation: GraphQLOperation) -> FulfillmentOrderView:
        line_items = obj(node.get("lineItems"))
        lines = _parse_lines(line_items, operation)
        after = next_cursor(line_items)
        if node.get("status") not in FINISHED_STATUSES:
            pages = 0
            while after is not None:
                pages += 1
                if pages > MAX_PAGES:
                    raise too_large(f"fulfillment order {legacy(str(node.get('id')))}")
                data = self.graphql.call(FULFILLMENT_ORDER_LINE_ITEMS, {"id": node.get("id"), "after": after})
                page = obj(obj(data.get("fulfillmentOrder")).get("lineItems"))
                lines.extend(_parse_lines(page, FULFILLMENT_ORDER_LINE_ITEMS))
                after = next_cursor(page)
        return _parse_view(node, lines, operation)

    def eligible(
        self, views: list[FulfillmentOrderView], recorded: Collection[str]
    ) -> list[FulfillmentOrderView]:
        """The fulfillment orders the bridge may fulfil: the ones its Amazon order covers and the
        ones at Amazon's location(s). A channel that names no locations reads no locations (its
        app may lack `read_locations`): every fulfillment order Shopify shows the app is eligible,
        as before; with merchant-managed scopes Shopify shows it no other app's."""
        if self.channel.shopify.restricted:
            ours = self.our_locations().ids
            return [v for v in views if v.id in recorded or v.location_id in ours]
        return [v for v in views if v.id in recorded or not v.at_fulfillment_service]

    # -- FulfillmentAssignments ----------------------------------------------------------------

    def assigned(self, order: CanonicalOrder) -> Assignment | None:
        options = self.channel.shopify
        if not options.restricted:
            return None
        ours = self.our_locations()
        return assignment_of(
            self.read(order.external_id), ours, fulfillment_service=options.fulfillment_service
        )

    def requests(self, kind: RequestKind) -> list[RequestedUnit]:
        ours = self.our_locations()
        out: list[RequestedUnit] = []
        after: str | None = None
        now = self.clock.now()
        for _ in range(MAX_PAGES):
            data = self.graphql.call(
                ASSIGNED_FULFILLMENT_ORDERS,
                {"status": ASSIGNMENT_STATUS[kind], "locationIds": sorted(ours.ids), "after": after},
            )
            connection = obj(data.get("assignedFulfillmentOrders"))
            for node in map(obj, items(connection.get("nodes"))):
                view = self._view(node, ASSIGNED_FULFILLMENT_ORDERS)
                if view.location_id not in ours.ids or not isinstance(node.get("orderId"), str):
                    continue
                out.append(
                    RequestedUnit(
                        unit=_unit(view, shipping_only=False),
                        order_external_id=legacy(node["orderId"]),
                        order=requested_order(self.channel.id, node, view, now),
                    )
                )
            after = next_cursor(connection)
            if after is None:
                return out
        raise too_large("assigned fulfillment orders")

    def accept(self, unit_id: str, message: str) -> bool:
        return self._answer(ACCEPT_FULFILLMENT_REQUEST, unit_id, {"message": _message(message)})

    def reject(self, unit_id: str, reason: RejectReason, message: str) -> bool:
        variables = {"reason": REJECTION_REASONS[reason], "message": _message(message)}
        return self._answer(REJECT_FULFILLMENT_REQUEST, unit_id, variables)

    def answer_cancellation(self, unit_id: str, accept: bool, message: str) -> bool:
        operation = ACCEPT_CANCELLATION_REQUEST if accept else REJECT_CANCELLATION_REQUEST
        return self._answer(operation, unit_id, {"message": _message(message)})

    def _answer(self, operation: GraphQLOperation, unit_id: str, variables: dict[str, Any]) -> bool:
        data = self.graphql.call(operation, {"id": unit_id, **variables})
        payload = obj(next(iter(data.values()), None))
        messages = user_error_messages(payload)
        if messages:
            # The request is no longer in the state this answer needs (withdrawn, answered before).
            log.info(
                "shopify: %s for %s refused: %s", operation.name, legacy(unit_id), "; ".join(messages)[:300]
            )
            return False
        if not isinstance(obj(payload.get("fulfillmentOrder")).get("id"), str):
            raise bad_answer(operation)
        log.info("shopify: %s for fulfillment order %s", operation.name, legacy(unit_id))
        return True

    # -- routing fallback ----------------------------------------------------------------------

    def release(
        self,
        order_external_id: str,
        lines: dict[str, int] | None,
        location_id: str,
        recorded: Collection[str],
    ) -> dict[str, int]:
        """Move what Amazon will not ship (`lines`: storefront line id -> units; None: all of
        Amazon's part) to `location_id`; returns the units moved per storefront line."""
        views = self.read(order_external_id, with_location=True)
        candidates = {v.id for v in self.eligible(views, recorded)}
        moved: dict[str, int] = {}
        for move in moves_for(views, candidates, lines, location_id):
            variables: dict[str, Any] = {"id": move.fulfillment_order_id, "newLocationId": location_id}
            if move.lines is not None:
                variables["fulfillmentOrderLineItems"] = [{"id": i, "quantity": q} for i, q in move.lines]
            data = self.graphql.call(MOVE_FULFILLMENT_ORDER, variables)
            payload = obj(data.get("fulfillmentOrderMove"))
            raise_user_errors(
                MOVE_FULFILLMENT_ORDER, payload, f"fulfillment order {legacy(move.fulfillment_order_id)}"
            )
            if not isinstance(obj(payload.get("movedFulfillmentOrder")).get("id"), str):
                raise bad_answer(MOVE_FULFILLMENT_ORDER)
            for line_id, quantity in move.moved:
                moved[line_id] = moved.get(line_id, 0) + quantity
            log.info(
                "shopify: fulfillment order %s moved to the fallback location",
                legacy(move.fulfillment_order_id),
            )
        return moved

    # -- registration --------------------------------------------------------------------------

    def services(self) -> list[FulfillmentService]:
        shop = obj(self.graphql.call(FULFILLMENT_SERVICES, {}).get("shop"))
        return [
            _service(node)
            for node in map(obj, items(shop.get("fulfillmentServices")))
            if isinstance(node.get("id"), str)
        ]

    def find_service(self) -> FulfillmentService | None:
        url = service_callback_url(self.channel)
        services = self.services()
        by_url = [s for s in services if s.callback_url.rstrip("/") == url]
        by_name = [s for s in services if s.name == self.channel.shopify.service_name]
        found = by_url or by_name
        return found[0] if found else None

    def register(self) -> Registration:
        """Idempotent: find our service (by callback URL, else by name) or create it."""
        url = service_callback_url(self.channel)
        found = self.find_service()
        if found is not None and found.callback_url.rstrip("/") == url:
            outcome, service = "already registered", found
        elif found is not None:
            data = self.graphql.call(FULFILLMENT_SERVICE_UPDATE, {"id": found.id, "callbackUrl": url})
            payload = obj(data.get("fulfillmentServiceUpdate"))
            raise_user_errors(FULFILLMENT_SERVICE_UPDATE, payload, f"fulfillment service {legacy(found.id)}")
            outcome, service = "callback URL updated", _service(obj(payload.get("fulfillmentService")))
        else:
            variables = {"name": self.channel.shopify.service_name, "callbackUrl": url}
            data = self.graphql.call(FULFILLMENT_SERVICE_CREATE, variables)
            payload = obj(data.get("fulfillmentServiceCreate"))
            raise_user_errors(FULFILLMENT_SERVICE_CREATE, payload, f"channel {self.channel.id}")
            outcome, service = "created", _service(obj(payload.get("fulfillmentService")))
        if not service.id:
            raise bad_answer(FULFILLMENT_SERVICE_CREATE)
        with self._lock:
            self._ours = None
        return Registration(service, outcome)


def _service(node: dict[str, Any]) -> FulfillmentService:
    location = obj(node.get("location"))
    return FulfillmentService(
        id=str(node.get("id") or ""),
        name=str(node.get("serviceName") or ""),
        callback_url=str(node.get("callbackUrl") or ""),
        location_id=str(location.get("id") or ""),
        location_name=str(location.get("name") or ""),
    )


def _message(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ANSWER_MESSAGE else text[: MAX_ANSWER_MESSAGE - 1] + "…"
