"""Shopify push-back: one Amazon package becomes one Shopify fulfillment, over the Admin GraphQL API.

What a caller may rely on:

- `push_shipment` reads the order's fulfillment orders, takes exactly the package's lines and
  quantities from the OPEN / IN_PROGRESS ones (split across several fulfillment orders when the
  order was split), and sends one `fulfillmentCreate` with the tracking number, carrier and URL.
  It never sends an empty line-item list (Shopify reads that as "fulfil everything").
- `fulfillmentCreate` is not idempotent: a lost answer (dropped connection, 5xx) is raised as an
  *ambiguous* `PushError`. The caller then asks `find_existing`, which finds the fulfillment by its
  tracking number, before trying again.
- `add_note` appends to the order's `note` (Shopify has no public timeline API) behind a marker
  `[fba-bridge:<note_key>]`; a retried note is recognised by its marker and not appended twice.
  The note is read, then written: an edit the merchant saves between the two is overwritten, and
  the note is only visible to staff (`customer_visible` cannot be honoured on Shopify).
- Throttling is cost based. Every answer's `extensions.cost.throttleStatus` is remembered; before
  a call whose estimated cost exceeds what the bucket holds now, the pusher waits on the clock
  (at most `MAX_THROTTLE_WAIT_S`), else raises a retryable `PushError("throttled")` with
  `retry_after`. A `THROTTLED` answer (nothing was executed) is raised the same way.
- Errors carry operation names, ids, field paths and Shopify's messages (truncated), never the
  access token, and never the variables sent.

Scopes needed: `read_orders`, `write_orders` (for notes) and
`write_merchant_managed_fulfillment_orders` (or the assigned / third-party variant).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .. import metrics
from ..channels import Channel
from ..clock import Clock
from .push import (
    MAX_RETRY_AFTER_S,
    OrderNote,
    PushError,
    PushResult,
    ShipmentPush,
    StorefrontHttp,
    StorefrontRejected,
)

log = logging.getLogger(__name__)

MAX_THROTTLE_WAIT_S = 10.0
MIN_THROTTLE_RETRY_S = 1.0
THROTTLE_MARGIN_S = 0.05  # our clock and Shopify's are not the same clock
ON_HOLD_RETRY_S = 900.0
MAX_PAGES = 50
MAX_MESSAGE_CHARS = 200
MAX_MESSAGES = 3

FULFILLABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})
# Fulfillment orders that will become fulfillable without our doing (a hold released, a date reached).
WAITING_STATUSES = frozenset({"ON_HOLD", "SCHEDULED"})

_OPERATION_NAME = re.compile(r"^\s*(query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)")


@dataclass(frozen=True)
class GraphQLOperation:
    """A GraphQL document with one named operation, what it is estimated to cost (Shopify's
    calculated query cost: objects 1, connections 2 + first x node cost, mutations 10) and whether
    repeating it after a lost answer is harmless."""

    document: str
    estimated_cost: int
    idempotent: bool = True
    name: str = field(init=False)

    def __post_init__(self) -> None:
        match = _OPERATION_NAME.match(self.document)
        if match is None:
            raise ValueError("a GraphQL operation document must start with `query Name` or `mutation Name`")
        object.__setattr__(self, "name", match.group(2))


FULFILLMENT_ORDERS = GraphQLOperation(
    """
query BridgeFulfillmentOrders($id: ID!, $after: String) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 5, after: $after) {
      nodes {
        id
        status
        lineItems(first: 25) {
          nodes {
            id
            remainingQuantity
            lineItem {
              id
              sku
            }
          }
          pageInfo {
            hasNextPage
            endCursor
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
""".strip(),
    estimated_cost=274,
)

FULFILLMENT_ORDER_LINE_ITEMS = GraphQLOperation(
    """
query BridgeFulfillmentOrderLineItems($id: ID!, $after: String) {
  fulfillmentOrder(id: $id) {
    id
    lineItems(first: 100, after: $after) {
      nodes {
        id
        remainingQuantity
        lineItem {
          id
          sku
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
}
""".strip(),
    estimated_cost=204,
)

FULFILLMENT_CREATE = GraphQLOperation(
    """
mutation BridgeFulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment {
      id
      name
      status
      trackingInfo {
        company
        number
        url
      }
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

ORDER_FULFILLMENTS = GraphQLOperation(
    """
query BridgeOrderFulfillments($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 100) {
      id
      name
      status
      createdAt
      trackingInfo {
        company
        number
        url
      }
    }
  }
}
""".strip(),
    estimated_cost=203,
)

ORDER_NOTE = GraphQLOperation(
    """
query BridgeOrderNote($id: ID!) {
  order(id: $id) {
    id
    note
  }
}
""".strip(),
    estimated_cost=1,
)

# Repeating it is harmless: a retry re-reads the note and finds its marker, so a lost answer is
# not ambiguous.
ORDER_NOTE_UPDATE = GraphQLOperation(
    """
mutation BridgeOrderNoteUpdate($input: OrderInput!) {
  orderUpdate(input: $input) {
    order {
      id
      note
    }
    userErrors {
      field
      message
    }
  }
}
""".strip(),
    estimated_cost=10,
)

OPERATIONS: tuple[GraphQLOperation, ...] = (
    FULFILLMENT_ORDERS,
    FULFILLMENT_ORDER_LINE_ITEMS,
    FULFILLMENT_CREATE,
    ORDER_FULFILLMENTS,
    ORDER_NOTE,
    ORDER_NOTE_UPDATE,
)


def gid(kind: str, legacy_id: str) -> str:
    """Shopify's global id for a REST id (`gid://shopify/Order/1001`)."""
    return f"gid://shopify/{kind}/{legacy_id}"


def note_marker(note_key: str) -> str:
    safe = re.sub(r"[\[\]\s]", "_", note_key)
    return f"[fba-bridge:{safe}]"


# --------------------------------------------------------------------------------------------
# Fulfillment orders and the allocation of a package's lines to them (pure)


@dataclass(frozen=True)
class FulfillmentOrderLine:
    id: str  # gid://shopify/FulfillmentOrderLineItem/...
    line_item_id: str  # gid://shopify/LineItem/<REST line id>
    remaining: int


@dataclass(frozen=True)
class FulfillmentOrderView:
    id: str
    status: str
    lines: tuple[FulfillmentOrderLine, ...]


Allocation = dict[str, list[tuple[str, int]]]  # fulfillment order id -> [(its line item id, quantity)]


def allocate(
    wanted: Mapping[str, int], fulfillment_orders: Sequence[FulfillmentOrderView], order_id: str
) -> Allocation:
    """Take each wanted line item's quantity from the fulfillable fulfillment orders, in Shopify's
    order, splitting a line across several when one does not hold enough.

    Raises a `PushError`: retryable (`fulfillment_on_hold`) when the shortfall sits on held or
    scheduled fulfillment orders, else `not_fulfillable` (already fulfilled, by the merchant or by
    an earlier attempt of ours, or the line is not on the order).
    """
    allocation: Allocation = {}
    short: dict[str, int] = {}
    for line_item_id, quantity in wanted.items():
        need = quantity
        for fo in fulfillment_orders:
            if need == 0:
                break
            if fo.status not in FULFILLABLE_STATUSES:
                continue
            for line in fo.lines:
                if line.line_item_id != line_item_id or line.remaining <= 0 or need == 0:
                    continue
                take = min(need, line.remaining)
                allocation.setdefault(fo.id, []).append((line.id, take))
                need -= take
        if need:
            short[line_item_id] = need
    if not short:
        return allocation
    waiting: dict[str, int] = {}
    for fo in fulfillment_orders:
        if fo.status in WAITING_STATUSES:
            for line in fo.lines:
                waiting[line.line_item_id] = waiting.get(line.line_item_id, 0) + line.remaining
    lines = ", ".join(f"{_legacy(k)} ({v} short)" for k, v in short.items())
    if all(waiting.get(k, 0) >= v for k, v in short.items()):
        raise PushError(
            "fulfillment_on_hold",
            f"Shopify order {order_id}: line(s) {lines} are on held or scheduled fulfillment orders; "
            "retrying when the merchant releases them",
            retry_after=ON_HOLD_RETRY_S,
        )
    raise PushError(
        "not_fulfillable",
        f"Shopify order {order_id}: line(s) {lines} have fewer units left to fulfil than this package "
        "holds; they may already be fulfilled (by the merchant, or by an earlier attempt: see "
        "find_existing) or the line is not on the order",
        retryable=False,
    )


def _legacy(global_id: str) -> str:
    return global_id.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------
# Cost-based throttling


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float
    observed_at: float  # clock.monotonic() when Shopify reported it

    def available_at(self, now: float) -> float:
        restored = self.restore_rate * max(0.0, now - self.observed_at)
        return min(self.maximum_available, self.currently_available + restored)

    def wait_for(self, cost: float, now: float) -> float:
        missing = cost - self.available_at(now)
        if missing <= 0:
            return 0.0
        return math.inf if self.restore_rate <= 0 else missing / self.restore_rate


def _throttle_status(extensions: Any, now: float) -> tuple[ThrottleStatus | None, int | None]:
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return None, None
    requested = cost.get("requestedQueryCost")
    requested_cost = int(requested) if isinstance(requested, int | float) else None
    status = cost.get("throttleStatus")
    if not isinstance(status, dict):
        return None, requested_cost
    try:
        throttle = ThrottleStatus(
            maximum_available=float(status["maximumAvailable"]),
            currently_available=float(status["currentlyAvailable"]),
            restore_rate=float(status["restoreRate"]),
            observed_at=now,
        )
    except (KeyError, TypeError, ValueError):
        return None, requested_cost
    return throttle, requested_cost


# --------------------------------------------------------------------------------------------
# The pusher


class ShopifyPusher:
    """`StorefrontPusher` for a Shopify channel. Thread-safe; one per channel is enough."""

    def __init__(self, channel: Channel, clock: Clock, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self.clock = clock
        storefront = channel.storefront
        self.endpoint = f"{storefront.base_url.rstrip('/')}/admin/api/{storefront.api_version}/graphql.json"
        self._http = StorefrontHttp(channel, clock, transport)
        self._lock = threading.Lock()
        self._throttle: ThrottleStatus | None = None
        self._costs: dict[str, int] = {}

    # -- StorefrontPusher ----------------------------------------------------------------------

    def push_shipment(self, push: ShipmentPush) -> PushResult:
        wanted = _wanted(push)
        fulfillment_orders = self._fulfillment_orders(push.order_external_id)
        allocation = allocate(wanted, fulfillment_orders, push.order_external_id)
        tracking: dict[str, str] = {"number": push.tracking_number}
        if push.carrier:
            tracking["company"] = push.carrier
        if push.tracking_url:
            tracking["url"] = push.tracking_url
        notify = bool(self.channel.storefront.notify_customer and push.notify_customer)
        fulfillment_input = {
            "lineItemsByFulfillmentOrder": [
                {
                    "fulfillmentOrderId": fo_id,
                    "fulfillmentOrderLineItems": [{"id": li, "quantity": q} for li, q in lines],
                }
                for fo_id, lines in allocation.items()
            ],
            "trackingInfo": tracking,
            "notifyCustomer": notify,
        }
        data = self._call(FULFILLMENT_CREATE, {"fulfillment": fulfillment_input})
        payload = _object(data.get("fulfillmentCreate"))
        _raise_user_errors(FULFILLMENT_CREATE, payload, push.order_external_id)
        fulfillment = _object(payload.get("fulfillment"))
        fulfillment_id = fulfillment.get("id")
        if not isinstance(fulfillment_id, str):
            raise PushError(
                "bad_answer",
                f"Shopify answered {FULFILLMENT_CREATE.name} for order {push.order_external_id} without a "
                "fulfillment id; it may have been created",
                ambiguous=True,
            )
        log.info(
            "shopify: created %s for order %s (%d fulfillment order(s), %d unit(s), notify=%s)",
            fulfillment_id,
            push.order_external_id,
            len(allocation),
            sum(wanted.values()),
            notify,
        )
        return PushResult(
            storefront_ref=fulfillment_id,
            details={
                "status": fulfillment.get("status"),
                "name": fulfillment.get("name"),
                "fulfillment_orders": list(allocation),
                "notify_customer": notify,
            },
        )

    def find_existing(self, push: ShipmentPush) -> PushResult | None:
        """The fulfillment of this order carrying `push.tracking_number`, whatever its status
        (a fulfillment the merchant cancelled is still ours: re-creating it would undo their act)."""
        data = self._call(ORDER_FULFILLMENTS, {"id": gid("Order", push.order_external_id)})
        order = data.get("order")
        if order is None:
            return None
        wanted = push.tracking_number.strip()
        for fulfillment in _list(_object(order).get("fulfillments")):
            fulfillment = _object(fulfillment)
            numbers = {
                str(t.get("number") or "").strip()
                for t in map(_object, _list(fulfillment.get("trackingInfo")))
            }
            if wanted in numbers and isinstance(fulfillment.get("id"), str):
                return PushResult(
                    storefront_ref=fulfillment["id"],
                    details={
                        "status": fulfillment.get("status"),
                        "name": fulfillment.get("name"),
                        "found": True,
                    },
                )
        return None

    def add_note(self, note: OrderNote) -> PushResult:
        order_gid = gid("Order", note.order_external_id)
        marker = note_marker(note.note_key)
        ref = f"{order_gid}#note:{marker[1:-1]}"
        data = self._call(ORDER_NOTE, {"id": order_gid})
        order = data.get("order")
        if order is None:
            raise _order_not_found(note.order_external_id)
        current = str(_object(order).get("note") or "")
        if marker in current:
            return PushResult(storefront_ref=ref, details={"already_present": True})
        entry = f"{marker} {note.text.strip()}"
        updated = f"{current.rstrip()}\n\n{entry}" if current.strip() else entry
        data = self._call(ORDER_NOTE_UPDATE, {"input": {"id": order_gid, "note": updated}})
        payload = _object(data.get("orderUpdate"))
        _raise_user_errors(ORDER_NOTE_UPDATE, payload, note.order_external_id)
        log.info("shopify: note %s added to order %s", marker, note.order_external_id)
        return PushResult(storefront_ref=ref, details={"already_present": False})

    def close(self) -> None:
        self._http.close()

    # -- fulfillment orders ---------------------------------------------------------------------

    def _fulfillment_orders(self, order_external_id: str) -> list[FulfillmentOrderView]:
        out: list[FulfillmentOrderView] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = self._call(FULFILLMENT_ORDERS, {"id": gid("Order", order_external_id), "after": after})
            order = data.get("order")
            if order is None:
                raise _order_not_found(order_external_id)
            connection = _object(_object(order).get("fulfillmentOrders"))
            for node in map(_object, _list(connection.get("nodes"))):
                out.append(self._fulfillment_order(node))
            after = _next_cursor(connection)
            if after is None:
                return out
        raise _too_large(f"order {order_external_id}")

    def _fulfillment_order(self, node: dict[str, Any]) -> FulfillmentOrderView:
        fo_id, status = node.get("id"), node.get("status")
        if not isinstance(fo_id, str) or not isinstance(status, str):
            raise _bad_answer(FULFILLMENT_ORDERS)
        line_items = _object(node.get("lineItems"))
        lines = _lines(line_items)
        after = _next_cursor(line_items)
        if status in FULFILLABLE_STATUSES | WAITING_STATUSES:
            pages = 0
            while after is not None:
                pages += 1
                if pages > MAX_PAGES:
                    raise _too_large(f"fulfillment order {_legacy(fo_id)}")
                data = self._call(FULFILLMENT_ORDER_LINE_ITEMS, {"id": fo_id, "after": after})
                page = _object(_object(data.get("fulfillmentOrder")).get("lineItems"))
                lines.extend(_lines(page))
                after = _next_cursor(page)
        return FulfillmentOrderView(fo_id, status, tuple(lines))

    # -- transport --------------------------------------------------------------------------------

    def _call(self, operation: GraphQLOperation, variables: dict[str, Any]) -> dict[str, Any]:
        self._await_budget(operation)
        response = self._http.request(
            "POST",
            self.endpoint,
            idempotent=operation.idempotent,
            json={"query": operation.document, "variables": variables, "operationName": operation.name},
            headers={
                "X-Shopify-Access-Token": self.channel.storefront.access_token.reveal(),
                "Accept": "application/json",
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _bad_answer(operation)
        throttle, requested = self._observe(operation, body.get("extensions"))
        errors = body.get("errors")
        if errors:
            error = _graphql_error(operation, errors, throttle, requested)
            metrics.storefront_graphql_error(self.channel.id, error.code)
            raise error
        data = body.get("data")
        if not isinstance(data, dict):
            raise _bad_answer(operation)
        return data

    def _await_budget(self, operation: GraphQLOperation) -> None:
        with self._lock:
            throttle = self._throttle
            cost = self._costs.get(operation.name, operation.estimated_cost)
        if throttle is None:
            return
        if cost > throttle.maximum_available:
            raise PushError(
                "query_too_costly",
                f"{operation.name} costs {cost} points, more than the shop's bucket holds "
                f"({throttle.maximum_available:g})",
                retryable=False,
            )
        wait = throttle.wait_for(cost, self.clock.monotonic())
        if wait <= 0:
            return
        if wait > MAX_THROTTLE_WAIT_S:
            raise PushError(
                "throttled",
                f"Shopify's cost bucket needs {wait:.1f}s to hold {cost} points for {operation.name}",
                retry_after=_retry_after(wait),
            )
        log.debug("shopify: waiting %.2fs for %d cost points before %s", wait, cost, operation.name)
        self.clock.sleep(wait + THROTTLE_MARGIN_S)

    def _observe(
        self, operation: GraphQLOperation, extensions: Any
    ) -> tuple[ThrottleStatus | None, int | None]:
        throttle, requested = _throttle_status(extensions, self.clock.monotonic())
        with self._lock:
            if throttle is not None:
                self._throttle = throttle
            if requested is not None:
                self._costs[operation.name] = requested
        return throttle, requested


# --------------------------------------------------------------------------------------------
# Answer parsing and error mapping


def _wanted(push: ShipmentPush) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for line in push.lines:
        if line.quantity <= 0:
            raise PushError(
                "invalid_package",
                f"package {push.package_key}: line {line.line_id} has quantity {line.quantity}",
                retryable=False,
            )
        key = gid("LineItem", line.line_id)
        wanted[key] = wanted.get(key, 0) + line.quantity
    if not wanted:
        raise PushError("invalid_package", f"package {push.package_key} has no lines", retryable=False)
    return wanted


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _lines(connection: dict[str, Any]) -> list[FulfillmentOrderLine]:
    out = []
    for node in map(_object, _list(connection.get("nodes"))):
        line_item = _object(node.get("lineItem"))
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
            raise _bad_answer(FULFILLMENT_ORDERS)
        out.append(FulfillmentOrderLine(fo_line_id, line_item_id, remaining))
    return out


def _next_cursor(connection: dict[str, Any]) -> str | None:
    page_info = _object(connection.get("pageInfo"))
    cursor = page_info.get("endCursor")
    return cursor if page_info.get("hasNextPage") is True and isinstance(cursor, str) else None


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _raise_user_errors(operation: GraphQLOperation, payload: dict[str, Any], order_id: str) -> None:
    user_errors = [_object(e) for e in _list(payload.get("userErrors"))]
    if not user_errors:
        return
    parts = []
    for error in user_errors[:MAX_MESSAGES]:
        path = ".".join(str(p) for p in _list(error.get("field"))) or "(input)"
        parts.append(f"{path}: {_truncate(str(error.get('message') or ''))}")
    more = f" (+{len(user_errors) - MAX_MESSAGES} more)" if len(user_errors) > MAX_MESSAGES else ""
    raise PushError(
        "user_errors",
        f"Shopify refused {operation.name} for order {order_id}: {'; '.join(parts)}{more}",
        retryable=False,
    )


def _graphql_error(
    operation: GraphQLOperation, errors: Any, throttle: ThrottleStatus | None, requested: int | None
) -> PushError:
    items = [_object(e) for e in errors] if isinstance(errors, list) else [{"message": str(errors)}]
    codes = {str(_object(e.get("extensions")).get("code") or "") for e in items}
    if "THROTTLED" in codes:
        cost = requested if requested is not None else operation.estimated_cost
        wait = throttle.wait_for(cost, throttle.observed_at) if throttle else MIN_THROTTLE_RETRY_S
        return PushError(
            "throttled",
            f"Shopify throttled {operation.name} (cost {cost})",
            retry_after=_retry_after(wait),
        )
    messages = "; ".join(_truncate(str(e.get("message") or "")) for e in items[:MAX_MESSAGES])
    if "ACCESS_DENIED" in codes:
        return StorefrontRejected(
            "access_denied",
            f"Shopify denied {operation.name}: {messages}; grant the app the scopes it needs",
            retryable=False,
        )
    if "INTERNAL_SERVER_ERROR" in codes:
        return PushError(
            "server_error", f"Shopify failed {operation.name}: {messages}", ambiguous=not operation.idempotent
        )
    return PushError("graphql_error", f"Shopify rejected {operation.name}: {messages}", retryable=False)


def _retry_after(wait: float) -> float:
    """Seconds to wait, rounded up to a tenth, at least `MIN_THROTTLE_RETRY_S`, at most an hour."""
    return math.ceil(max(MIN_THROTTLE_RETRY_S, min(wait, MAX_RETRY_AFTER_S)) * 10) / 10


def _bad_answer(operation: GraphQLOperation) -> PushError:
    return PushError(
        "bad_answer",
        f"unexpected answer from Shopify to {operation.name}",
        ambiguous=not operation.idempotent,
    )


def _order_not_found(order_id: str) -> PushError:
    return PushError(
        "order_not_found",
        f"Shopify has no order {order_id} (deleted, or the channel points at another shop)",
        retryable=False,
    )


def _too_large(what: str) -> PushError:
    return PushError("too_large", f"Shopify {what}: more than {MAX_PAGES} pages to read", retryable=False)
