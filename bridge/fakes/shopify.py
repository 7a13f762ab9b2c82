"""A fake Shopify Admin GraphQL API: the part of it the push-back stage uses.

It executes real GraphQL (graphql-core, a runtime dependency of this module) against
`SCHEMA_SDL`, a subset of Shopify's 2026-07 Admin schema with identical type, field and argument
names (a test checks it against the full schema), so any document the bridge sends is validated
and answered in exactly the selection's shape, aliases included. What it holds and does:

- Orders seeded with `add_order` (or by `order_source` on first sight): each gets one OPEN
  fulfillment order holding every line (or several, with `fulfillment_order_groups`).
  `fulfillmentCreate` takes quantities off the fulfillment order line items, moves a
  fulfillment order to IN_PROGRESS, or CLOSED when nothing remains, records the fulfillment,
  and refuses over-fulfilment, unknown ids and closed fulfillment orders with `userErrors`.
  `orderUpdate` stores the note.
- Authentication by `X-Shopify-Access-Token` (401 with Shopify's body otherwise; `revoke()`).
- Shopify's calculated query cost (objects 1, connections 2 + first x node cost, mutations 10),
  a leaky bucket on an injectable clock (`maximum_available` 1000, `restore_rate` 50/s by
  default), `extensions.cost` on every executed or throttled answer, `THROTTLED` errors when the
  bucket holds less than the requested cost and `MAX_COST_EXCEEDED` above 1000.
- Faults, matched by operation name or root field name (`"fulfillmentCreate"`):
  `fail_next(name, status, count, retry_after)` answers an HTTP error without acting;
  `accept_then_drop_next(name)` acts, then drops the connection (see
  `bridge.amazon.simulator.dropping`).
- Evidence: `requests` (operation name, root fields, variables, outcome; never the token),
  `calls(name, outcome=None)`, `fulfillments(order_id)`, `fulfillment_orders(order_id)`,
  `note(order_id)`.

Control endpoints for a fake running in another process (no auth; bind it to loopback):
`POST /_fake/orders` `{"order_id", "lines": [{"line_id", "sku", "quantity"}]}` and
`GET /_fake/orders/<order_id>`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, request
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from graphql.utilities import get_operation_ast

from bridge.amazon.simulator.dropping import ConnectionDropper, mark_drop
from bridge.clock import Clock, SystemClock

TOKEN_HEADER = "X-Shopify-Access-Token"  # noqa: S105 (a header name)
MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MUTATION_COST = 10
UNAUTHORIZED_BODY = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"

SCHEMA_SDL = """
schema {
  query: QueryRoot
  mutation: Mutation
}

scalar DateTime
scalar URL

type QueryRoot {
  order(id: ID!): Order
  fulfillmentOrder(id: ID!): FulfillmentOrder
}

type Mutation {
  fulfillmentCreate(fulfillment: FulfillmentInput!, message: String): FulfillmentCreatePayload
  orderUpdate(input: OrderInput!): OrderUpdatePayload
}

type Order {
  id: ID!
  name: String!
  note: String
  fulfillmentOrders(
    displayable: Boolean = false
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    query: String
  ): FulfillmentOrderConnection!
  fulfillments(first: Int, query: String): [Fulfillment!]!
}

type PageInfo {
  endCursor: String
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
}

enum FulfillmentOrderStatus {
  OPEN
  IN_PROGRESS
  CANCELLED
  INCOMPLETE
  CLOSED
  SCHEDULED
  ON_HOLD
}

type FulfillmentOrderConnection {
  edges: [FulfillmentOrderEdge!]!
  nodes: [FulfillmentOrder!]!
  pageInfo: PageInfo!
}

type FulfillmentOrderEdge {
  cursor: String!
  node: FulfillmentOrder!
}

type FulfillmentOrder {
  id: ID!
  status: FulfillmentOrderStatus!
  order: Order!
  lineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): FulfillmentOrderLineItemConnection!
}

type FulfillmentOrderLineItemConnection {
  edges: [FulfillmentOrderLineItemEdge!]!
  nodes: [FulfillmentOrderLineItem!]!
  pageInfo: PageInfo!
}

type FulfillmentOrderLineItemEdge {
  cursor: String!
  node: FulfillmentOrderLineItem!
}

type FulfillmentOrderLineItem {
  id: ID!
  lineItem: LineItem!
  remainingQuantity: Int!
  totalQuantity: Int!
  sku: String
}

type LineItem {
  id: ID!
  name: String!
  quantity: Int!
  sku: String
}

enum FulfillmentStatus {
  SUCCESS
  CANCELLED
  ERROR
  FAILURE
}

type Fulfillment {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  createdAt: DateTime!
  order: Order!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): FulfillmentLineItemConnection!
}

type FulfillmentTrackingInfo {
  company: String
  number: String
  url: URL
}

type FulfillmentLineItemConnection {
  edges: [FulfillmentLineItemEdge!]!
  nodes: [FulfillmentLineItem!]!
  pageInfo: PageInfo!
}

type FulfillmentLineItemEdge {
  cursor: String!
  node: FulfillmentLineItem!
}

type FulfillmentLineItem {
  id: ID!
  lineItem: LineItem!
  quantity: Int
}

input FulfillmentInput {
  trackingInfo: FulfillmentTrackingInput
  notifyCustomer: Boolean = false
  lineItemsByFulfillmentOrder: [FulfillmentOrderLineItemsInput!]!
}

input FulfillmentOrderLineItemsInput {
  fulfillmentOrderId: ID!
  fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
}

input FulfillmentOrderLineItemInput {
  id: ID!
  quantity: Int!
}

input FulfillmentTrackingInput {
  number: String
  url: URL
  company: String
  numbers: [String!]
  urls: [URL!]
}

type UserError {
  field: [String!]
  message: String!
}

type FulfillmentCreatePayload {
  fulfillment: Fulfillment
  userErrors: [UserError!]!
}

input OrderInput {
  id: ID!
  note: String
}

type OrderUpdatePayload {
  order: Order
  userErrors: [UserError!]!
}
"""


# --------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class FakeLine:
    line_id: str  # the REST line item id, as the bridge's canonical order knows it
    sku: str | None
    quantity: int
    name: str = "Item"


@dataclass
class FakeFulfillmentOrderLineItem:
    id: int
    line: FakeLine
    total: int
    remaining: int


@dataclass
class FakeFulfillmentOrder:
    id: int
    order_id: str
    status: str
    line_items: list[FakeFulfillmentOrderLineItem]


@dataclass(frozen=True)
class FakeTracking:
    company: str | None
    number: str | None
    url: str | None


@dataclass(frozen=True)
class FakeFulfillmentLine:
    id: int
    line: FakeLine
    quantity: int
    fulfillment_order_id: int


@dataclass(frozen=True)
class FakeFulfillment:
    id: int
    order_id: str
    name: str
    status: str
    created_at: datetime
    tracking: tuple[FakeTracking, ...]
    lines: tuple[FakeFulfillmentLine, ...]
    notify_customer: bool

    @property
    def gid(self) -> str:
        return f"gid://shopify/Fulfillment/{self.id}"

    @property
    def quantities(self) -> dict[str, int]:
        """REST line item id -> units in this fulfillment."""
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.line.line_id] = out.get(line.line.line_id, 0) + line.quantity
        return out

    @property
    def tracking_numbers(self) -> tuple[str, ...]:
        return tuple(t.number for t in self.tracking if t.number)


@dataclass
class FakeOrder:
    id: str
    name: str
    note: str | None
    lines: list[FakeLine]
    fulfillment_orders: list[FakeFulfillmentOrder]
    fulfillments: list[FakeFulfillment] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedRequest:
    """One call as the fake saw it: never the access token; `outcome` is one of `ok`, `throttled`,
    `invalid` (body, syntax, validation, cost), `unauthorized`, `fault:<status>`, `dropped`."""

    operation_name: str | None
    fields: tuple[str, ...]
    variables: Mapping[str, Any]
    outcome: str
    api_version: str


@dataclass(frozen=True)
class FakeAnswer:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class _Fault:
    name: str
    kind: str  # "status" | "accept_then_drop"
    count: int
    status: int = 503
    retry_after: float | None = None


class CostBucket:
    """Shopify's leaky bucket of query-cost points, per app and shop."""

    def __init__(self, clock: Clock, maximum_available: float = 1000.0, restore_rate: float = 50.0) -> None:
        self.clock = clock
        self.maximum_available = float(maximum_available)
        self.restore_rate = float(restore_rate)
        self._available = self.maximum_available
        self._updated = clock.monotonic()

    def available(self) -> float:
        now = self.clock.monotonic()
        self._available = min(
            self.maximum_available, self._available + self.restore_rate * max(0.0, now - self._updated)
        )
        self._updated = now
        return self._available

    def spend(self, points: float) -> None:
        self._available = max(0.0, self.available() - points)

    def set_available(self, points: float) -> None:
        self.available()
        self._available = max(0.0, min(self.maximum_available, float(points)))

    def status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": int(self.available()),
            "restoreRate": self.restore_rate,
        }


# --------------------------------------------------------------------------------------------
# Calculated query cost


_REQUESTED = object()  # walk the document with the page sizes it asks for, not the data returned


class QueryCost:
    """Shopify's calculated query cost for one operation: the *requested* cost (from `first` /
    `last`, before execution) or the *actual* cost (from what the answer holds)."""

    def __init__(
        self, document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any]
    ):
        self.operation = operation
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def requested(self) -> int:
        return self._root(_REQUESTED)

    def actual(self, data: Any) -> int:
        return self._root(data)

    def _root(self, value: Any) -> int:
        if self.operation.operation is OperationType.MUTATION:
            return MUTATION_COST * sum(1 for _ in self._fields(self.operation.selection_set))
        return self._selection(self.operation.selection_set, value)

    def _fields(self, selection_set: SelectionSetNode) -> Iterator[FieldNode]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self._fields(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self.fragments:
                yield from self._fields(self.fragments[selection.name.value].selection_set)

    def _size(self, node: FieldNode) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode) and isinstance(self.variables.get(value.name.value), int):
                return int(self.variables[value.name.value])
        return None

    @staticmethod
    def _child(value: Any, node: FieldNode) -> Any:
        if value is _REQUESTED:
            return _REQUESTED
        key = node.alias.value if node.alias else node.name.value
        return value.get(key) if isinstance(value, dict) else None

    @staticmethod
    def _items(value: Any, size: int) -> list[Any]:
        if value is _REQUESTED:
            return [_REQUESTED] * size
        return value if isinstance(value, list) else []

    def _selection(self, selection_set: SelectionSetNode | None, value: Any) -> int:
        if selection_set is None or value is None:
            return 0
        total = 0
        for node in self._fields(selection_set):
            if node.selection_set is None or node.name.value.startswith("__"):
                continue  # scalars and enums cost nothing
            size = self._size(node)
            child = self._child(value, node)
            total += (
                1 + self._selection(node.selection_set, child)
                if size is None
                else self._sized(node, size, child)
            )
        return total

    def _sized(self, node: FieldNode, size: int, value: Any) -> int:
        assert node.selection_set is not None
        parts = list(self._fields(node.selection_set))
        if not any(p.name.value in ("nodes", "edges") for p in parts):  # a sized list of objects
            return 2 + sum(1 + self._selection(node.selection_set, item) for item in self._items(value, size))
        total = 2
        for part in parts:
            if part.selection_set is None:
                continue
            child = self._child(value, part)
            if part.name.value == "nodes":
                total += sum(1 + self._selection(part.selection_set, i) for i in self._items(child, size))
            elif part.name.value == "edges":
                total += sum(self._selection(part.selection_set, i) for i in self._items(child, size))
            else:
                total += 1 + self._selection(part.selection_set, child)
        return total


# --------------------------------------------------------------------------------------------
# Resolvers


def _gid(kind: str, legacy_id: object) -> str:
    return f"gid://shopify/{kind}/{legacy_id}"


def _parse_gid(value: str, kind: str) -> str | None:
    """The legacy id in `gid://shopify/<kind>/<id>`; None for another kind; error when malformed."""
    prefix = "gid://shopify/"
    rest = value[len(prefix) :] if value.startswith(prefix) else ""
    found_kind, _, legacy = rest.partition("/")
    if not found_kind or not legacy.isdigit():
        raise GraphQLError(
            f"Invalid global id '{value[:100]}'",
            extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
        )
    return legacy if found_kind == kind else None


def _encode_cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"index": index}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        index = json.loads(base64.b64decode(cursor, validate=True))["index"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise GraphQLError("Invalid cursor for current pagination sort.") from None
    if not isinstance(index, int):
        raise GraphQLError("Invalid cursor for current pagination sort.")
    return index


def _connection(items: Sequence[Any], args: Mapping[str, Any]) -> dict[str, Any]:
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for size in (first, last):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}.")
    ordered = list(enumerate(reversed(items) if args.get("reverse") else items))
    if args.get("after"):
        after = _decode_cursor(args["after"])
        ordered = [(i, x) for i, x in ordered if i > after]
    if args.get("before"):
        before = _decode_cursor(args["before"])
        ordered = [(i, x) for i, x in ordered if i < before]
    window = ordered
    has_next = has_previous = False
    if first is not None:
        has_next = len(window) > first
        window = window[:first]
    if last is not None:
        has_previous = len(window) > last
        window = window[len(window) - last :] if last else []
    return {
        "nodes": [x for _, x in window],
        "edges": [{"cursor": _encode_cursor(i), "node": x} for i, x in window],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous or bool(args.get("after")),
            "startCursor": _encode_cursor(window[0][0]) if window else None,
            "endCursor": _encode_cursor(window[-1][0]) if window else None,
        },
    }


def _limit(items: Sequence[Any], first: int | None) -> list[Any]:
    if first is not None and not 0 <= first <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}.")
    return list(items if first is None else items[:first])


Resolver = Callable[..., Any]


def _resolvers() -> dict[tuple[str, str], Resolver]:
    def ctx(info: Any) -> FakeShopify:
        fake: FakeShopify = info.context
        return fake

    return {
        ("QueryRoot", "order"): lambda _r, info, **a: ctx(info)._order_by_gid(a["id"]),
        ("QueryRoot", "fulfillmentOrder"): lambda _r, info, **a: ctx(info)._fulfillment_order_by_gid(a["id"]),
        ("Mutation", "fulfillmentCreate"): lambda _r, info, **a: ctx(info)._fulfillment_create(
            a["fulfillment"]
        ),
        ("Mutation", "orderUpdate"): lambda _r, info, **a: ctx(info)._order_update(a["input"]),
        ("Order", "id"): lambda o, _i: _gid("Order", o.id),
        ("Order", "fulfillmentOrders"): lambda o, _i, **a: _connection(o.fulfillment_orders, a),
        ("Order", "fulfillments"): lambda o, _i, **a: _limit(o.fulfillments, a.get("first")),
        ("FulfillmentOrder", "id"): lambda fo, _i: _gid("FulfillmentOrder", fo.id),
        ("FulfillmentOrder", "order"): lambda fo, info: ctx(info)._orders[fo.order_id],
        ("FulfillmentOrder", "lineItems"): lambda fo, _i, **a: _connection(fo.line_items, a),
        ("FulfillmentOrderLineItem", "id"): lambda li, _i: _gid("FulfillmentOrderLineItem", li.id),
        ("FulfillmentOrderLineItem", "lineItem"): lambda li, _i: li.line,
        ("FulfillmentOrderLineItem", "remainingQuantity"): lambda li, _i: li.remaining,
        ("FulfillmentOrderLineItem", "totalQuantity"): lambda li, _i: li.total,
        ("FulfillmentOrderLineItem", "sku"): lambda li, _i: li.line.sku,
        ("LineItem", "id"): lambda line, _i: _gid("LineItem", line.line_id),
        ("Fulfillment", "id"): lambda f, _i: f.gid,
        ("Fulfillment", "createdAt"): lambda f, _i: f.created_at.isoformat().replace("+00:00", "Z"),
        ("Fulfillment", "order"): lambda f, info: ctx(info)._orders[f.order_id],
        ("Fulfillment", "trackingInfo"): lambda f, _i, **a: _limit(f.tracking, a.get("first")),
        ("Fulfillment", "fulfillmentLineItems"): lambda f, _i, **a: _connection(f.lines, a),
        ("FulfillmentLineItem", "id"): lambda fl, _i: _gid("FulfillmentLineItem", fl.id),
        ("FulfillmentLineItem", "lineItem"): lambda fl, _i: fl.line,
    }


def build_fake_schema() -> GraphQLSchema:
    schema = build_schema(SCHEMA_SDL)
    for (type_name, field_name), resolve in _resolvers().items():
        graphql_type = schema.get_type(type_name)
        graphql_type.fields[field_name].resolve = resolve  # type: ignore[union-attr]
    return schema


def _user_error(path: Iterable[str], message: str) -> dict[str, Any]:
    return {"field": list(path), "message": message}


def _max_cost_exceeded(requested: int) -> dict[str, Any]:
    message = f"Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
    extensions = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST}
    return {"errors": [{"message": message, "extensions": {**extensions, "documentation": RATE_LIMIT_DOCS}}]}


def _throttled(requested: int, throttle_status: dict[str, Any]) -> dict[str, Any]:
    return {
        "errors": [
            {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS}}
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": throttle_status,
            }
        },
    }


def _is_url(value: str) -> bool:
    scheme, sep, rest = value.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and bool(rest) and " " not in value


# --------------------------------------------------------------------------------------------
# The fake


OrderSource = Callable[[str], Sequence[tuple[str, str | None, int]] | None]
"""Lines (REST line id, sku, quantity) of an order the fake was not seeded with, or None."""


class FakeShopify:
    """One shop's Admin GraphQL API state. Thread-safe: calls are handled one at a time.

    `order_source` seeds an unknown order on first sight (`fba-bridge run --with-fakes` reads it
    from the bridge's own database, so any order sent to the bridge exists in the fake shop)."""

    def __init__(
        self,
        access_token: str,
        clock: Clock | None = None,
        *,
        maximum_available: float = 1000.0,
        restore_rate: float = 50.0,
        shop_name: str = "shop-a",
        order_source: OrderSource | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.order_source = order_source
        self.shop_name = shop_name
        self.bucket = CostBucket(self.clock, maximum_available, restore_rate)
        self.schema = build_fake_schema()
        self._token = access_token
        self._revoked = False
        self._lock = threading.RLock()
        self._orders: dict[str, FakeOrder] = {}
        self._fulfillment_orders: dict[int, FakeFulfillmentOrder] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._ledger: Counter[tuple[str, str]] = Counter()
        self._next_id = 5_000_000_001

    # -- seeding and inspection ------------------------------------------------------------------

    def add_order(
        self,
        order_id: str,
        lines: Sequence[tuple[str, str | None, int]],
        *,
        name: str | None = None,
        note: str | None = None,
        fulfillment_order_groups: Sequence[Sequence[str | tuple[str, int]]] | None = None,
    ) -> None:
        """Seed an order: `lines` are (REST line id, sku, quantity).

        One OPEN fulfillment order holds every line, unless `fulfillment_order_groups` says what
        each fulfillment order holds: a line id (all of its units) or (line id, units), as after
        Shopify split a fulfillment order. Every unit must be in exactly one group.
        """
        order_id = str(order_id)
        fake_lines = [FakeLine(str(line_id), sku, int(qty)) for line_id, sku, qty in lines]
        by_id = {line.line_id: line for line in fake_lines}
        raw_groups = fulfillment_order_groups or [list(by_id)]
        groups = [
            [
                (str(e), by_id[str(e)].quantity) if isinstance(e, str) else (str(e[0]), int(e[1]))
                for e in group
            ]
            for group in raw_groups
        ]
        placed: Counter[str] = Counter()
        for group in groups:
            for line_id, quantity in group:
                placed[line_id] += quantity
        if placed != Counter({line.line_id: line.quantity for line in fake_lines}):
            raise ValueError("fulfillment_order_groups must place every unit of every line exactly once")
        with self._lock:
            if order_id in self._orders:
                raise ValueError(f"order {order_id} already exists")
            fulfillment_orders = []
            for group in groups:
                items = [FakeFulfillmentOrderLineItem(self._new_id(), by_id[i], q, q) for i, q in group]
                fo = FakeFulfillmentOrder(self._new_id(), order_id, "OPEN", items)
                self._fulfillment_orders[fo.id] = fo
                fulfillment_orders.append(fo)
            self._orders[order_id] = FakeOrder(
                order_id, name or f"#{order_id}", note, fake_lines, fulfillment_orders
            )

    def set_fulfillment_order_status(self, order_id: str, index: int, status: str) -> None:
        """Put the order's `index`-th fulfillment order on hold, schedule it, close it..."""
        with self._lock:
            self._orders[str(order_id)].fulfillment_orders[index].status = status

    def fulfillments(self, order_id: str) -> list[FakeFulfillment]:
        with self._lock:
            return list(self._orders[str(order_id)].fulfillments)

    def fulfillment_orders(self, order_id: str) -> list[FakeFulfillmentOrder]:
        with self._lock:
            return copy.deepcopy(self._orders[str(order_id)].fulfillment_orders)

    def remaining(self, order_id: str) -> dict[str, int]:
        """REST line id -> units not yet fulfilled, over all fulfillment orders."""
        out: dict[str, int] = {}
        for fo in self.fulfillment_orders(order_id):
            for li in fo.line_items:
                out[li.line.line_id] = out.get(li.line.line_id, 0) + li.remaining
        return out

    def note(self, order_id: str) -> str | None:
        with self._lock:
            return self._orders[str(order_id)].note

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, name: str, outcome: str | None = None) -> int:
        """Calls whose operation name or a root field is `name` (optionally with that outcome)."""
        with self._lock:
            return sum(n for (key, out), n in self._ledger.items() if key == name and outcome in (None, out))

    # -- controls -----------------------------------------------------------------------------------

    def revoke(self) -> None:
        """Every later call gets 401, as after the merchant uninstalls the app."""
        with self._lock:
            self._revoked = True

    def restore_access(self) -> None:
        with self._lock:
            self._revoked = False

    def fail_next(
        self, name: str, status: int = 503, count: int = 1, retry_after: float | None = None
    ) -> None:
        if not 400 <= status <= 599 or count < 1:
            raise ValueError("status must be 4xx/5xx and count at least 1")
        with self._lock:
            self._faults.append(_Fault(name, "status", count, status, retry_after))

    def accept_then_drop_next(self, name: str, count: int = 1) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(_Fault(name, "accept_then_drop", count))

    def set_available(self, points: float) -> None:
        """Set what the cost bucket holds now (it keeps restoring from there)."""
        with self._lock:
            self.bucket.set_available(points)

    # -- one HTTP call ------------------------------------------------------------------------------

    def handle(self, *, api_version: str, token: str | None, body: bytes, content_type: str) -> FakeAnswer:
        with self._lock:
            params = self._params(body, content_type)
            if self._revoked or not token or token != self._token:
                name, variables = (params[2], params[1]) if params else (None, {})
                self._record(name, (), variables, "unauthorized", api_version)
                return FakeAnswer(401, UNAUTHORIZED_BODY)
            if params is None:
                self._record(None, (), {}, "invalid", api_version)
                return FakeAnswer(400, {"errors": {"query": "Required parameter missing or invalid"}})
            query, variables, operation_name = params
            try:
                document = parse(query)
            except GraphQLError as exc:
                self._record(operation_name, (), variables, "invalid", api_version)
                return FakeAnswer(200, {"errors": [exc.formatted]})
            operation = get_operation_ast(document, operation_name)
            fields = self._root_fields(operation) if operation else ()
            name = operation.name.value if operation and operation.name else operation_name
            errors = validate(self.schema, document)
            if operation is None and not errors:
                errors = [
                    GraphQLError(
                        f"No operation named '{operation_name}'"
                        if operation_name
                        else "An operation name is required"
                    )
                ]
            if errors or operation is None:
                self._record(name, fields, variables, "invalid", api_version)
                return FakeAnswer(200, {"errors": [e.formatted for e in errors]})
            fault = self._take_fault(name, fields)
            if fault is not None and fault.kind == "status":
                self._record(name, fields, variables, f"fault:{fault.status}", api_version)
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return FakeAnswer(fault.status, {"errors": HTTPStatus(fault.status).phrase}, headers)
            return self._execute(document, operation, name, fields, variables, api_version, fault)

    def _execute(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        name: str | None,
        fields: tuple[str, ...],
        variables: dict[str, Any],
        api_version: str,
        fault: _Fault | None,
    ) -> FakeAnswer:
        cost = QueryCost(document, operation, variables)
        requested = cost.requested()
        if requested > MAX_QUERY_COST:
            self._record(name, fields, variables, "invalid", api_version)
            return FakeAnswer(200, _max_cost_exceeded(requested))
        if requested > self.bucket.available():
            self._record(name, fields, variables, "throttled", api_version)
            return FakeAnswer(200, _throttled(requested, self.bucket.status()))
        result: ExecutionResult = execute_sync(
            self.schema, document, context_value=self, variable_values=variables, operation_name=name
        )
        actual = cost.actual(result.data) if operation.operation is OperationType.QUERY else requested
        self.bucket.spend(actual)
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["data"] = result.data
        answer["extensions"] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self.bucket.status(),
            }
        }
        dropped = fault is not None and fault.kind == "accept_then_drop"
        self._record(name, fields, variables, "dropped" if dropped else "ok", api_version)
        return FakeAnswer(200, answer, drop=dropped)

    @staticmethod
    def _params(body: bytes, content_type: str) -> tuple[str, dict[str, Any], str | None] | None:
        if content_type == "application/graphql":
            return body.decode("utf-8", "replace"), {}, None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return None
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName")
        if not isinstance(variables, dict) or not isinstance(operation_name, str | None):
            return None
        return payload["query"], variables, operation_name

    @staticmethod
    def _root_fields(operation: OperationDefinitionNode) -> tuple[str, ...]:
        return tuple(s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode))

    def _take_fault(self, name: str | None, fields: tuple[str, ...]) -> _Fault | None:
        for fault in self._faults:
            if fault.name == name or fault.name in fields:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _record(
        self,
        name: str | None,
        fields: tuple[str, ...],
        variables: dict[str, Any],
        outcome: str,
        api_version: str,
    ) -> None:
        self._requests.append(RecordedRequest(name, fields, copy.deepcopy(variables), outcome, api_version))
        for key in {name, *fields} - {None}:
            self._ledger[(str(key), outcome)] += 1

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- resolvers' access to the state ------------------------------------------------------------

    def _order_by_gid(self, value: str) -> FakeOrder | None:
        legacy = _parse_gid(value, "Order")
        if not legacy:
            return None
        if legacy not in self._orders and self.order_source is not None:
            lines = self.order_source(legacy)
            if lines:
                self.add_order(legacy, lines)
        return self._orders.get(legacy)

    def _fulfillment_order_by_gid(self, value: str) -> FakeFulfillmentOrder | None:
        legacy = _parse_gid(value, "FulfillmentOrder")
        return self._fulfillment_orders.get(int(legacy)) if legacy else None

    def _fulfillment_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        plan, errors = self._fulfillment_plan(data)
        tracking = self._tracking(data.get("trackingInfo") or {}, errors)
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        order = self._orders[plan[0][0].order_id]
        lines = []
        for fo, items in plan:
            for li, quantity in items:
                li.remaining -= quantity
                lines.append(FakeFulfillmentLine(self._new_id(), li.line, quantity, fo.id))
            fo.status = "CLOSED" if all(li.remaining == 0 for li in fo.line_items) else "IN_PROGRESS"
        fulfillment = FakeFulfillment(
            id=self._new_id(),
            order_id=order.id,
            name=f"{order.name}-F{len(order.fulfillments) + 1}",
            status="SUCCESS",
            created_at=self.clock.now(),
            tracking=tracking,
            lines=tuple(lines),
            notify_customer=bool(data.get("notifyCustomer")),
        )
        order.fulfillments.append(fulfillment)
        return {"fulfillment": fulfillment, "userErrors": []}

    def _fulfillment_plan(
        self, data: Mapping[str, Any]
    ) -> tuple[list[tuple[FakeFulfillmentOrder, list[tuple[FakeFulfillmentOrderLineItem, int]]]], list[Any]]:
        plan: list[tuple[FakeFulfillmentOrder, list[tuple[FakeFulfillmentOrderLineItem, int]]]] = []
        errors: list[Any] = []
        groups = data.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            errors.append(_user_error(["fulfillment"], "Line items by fulfillment order can't be blank."))
        for g, group in enumerate(groups):
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(g)]
            known_errors = len(errors)
            legacy = _parse_gid(group["fulfillmentOrderId"], "FulfillmentOrder")
            fo = self._fulfillment_orders.get(int(legacy)) if legacy else None
            if fo is None:
                errors.append(_user_error([*path, "fulfillmentOrderId"], "Fulfillment order does not exist."))
                continue
            if fo.status not in ("OPEN", "IN_PROGRESS"):
                errors.append(
                    _user_error(
                        [*path, "fulfillmentOrderId"],
                        f"Fulfillment order {fo.id} has an unfulfillable status= {fo.status.lower()}.",
                    )
                )
                continue
            requested = group.get("fulfillmentOrderLineItems")
            items: list[tuple[FakeFulfillmentOrderLineItem, int]] = []
            if requested is None:
                items = [(li, li.remaining) for li in fo.line_items if li.remaining > 0]
            by_id = {_gid("FulfillmentOrderLineItem", li.id): li for li in fo.line_items}
            taken: Counter[int] = Counter()
            for i, item in enumerate(requested or []):
                li = by_id.get(item["id"])
                if li is None:
                    errors.append(
                        _user_error(
                            [*path, "fulfillmentOrderLineItems", str(i), "id"],
                            "Fulfillment order line item does not exist.",
                        )
                    )
                    continue
                taken[li.id] += item["quantity"]
                if item["quantity"] <= 0 or taken[li.id] > li.remaining:
                    errors.append(
                        _user_error(
                            ["fulfillment"], "Invalid fulfillment order line item quantity requested."
                        )
                    )
                    continue
                items.append((li, item["quantity"]))
            if not items and len(errors) == known_errors:
                errors.append(_user_error([*path], "Fulfillment order has no line items left to fulfill."))
            plan.append((fo, items))
        if len({fo.order_id for fo, _ in plan}) > 1:
            errors.append(
                _user_error(["fulfillment"], "All fulfillment orders must belong to the same order.")
            )
        return plan, errors

    @staticmethod
    def _tracking(data: Mapping[str, Any], errors: list[Any]) -> tuple[FakeTracking, ...]:
        numbers = [data["number"]] if data.get("number") else list(data.get("numbers") or [])
        urls = [data["url"]] if data.get("url") else list(data.get("urls") or [])
        for url in urls:
            if not _is_url(str(url)):
                errors.append(_user_error(["fulfillment", "trackingInfo", "url"], "Tracking url is invalid."))
        company = data.get("company")
        return tuple(
            FakeTracking(company, number, urls[i] if i < len(urls) else None)
            for i, number in enumerate(numbers)
        )

    def _order_update(self, data: Mapping[str, Any]) -> dict[str, Any]:
        order = self._order_by_gid(data["id"])
        if order is None:
            return {"order": None, "userErrors": [_user_error(["id"], "Order does not exist")]}
        if "note" in data:
            order.note = data["note"]
        return {"order": order, "userErrors": []}


# --------------------------------------------------------------------------------------------
# HTTP


def create_fake_shopify_app(fake: FakeShopify) -> Flask:
    """A Flask app serving `fake`; wrap it with `serve_in_thread` or `httpx.WSGITransport`."""
    app = Flask("bridge.fakes.shopify")
    app.extensions["fake_shopify"] = fake

    @app.post("/admin/api/<version>/graphql.json")
    def graphql_endpoint(version: str) -> Response:
        answer = fake.handle(
            api_version=version,
            token=request.headers.get(TOKEN_HEADER),
            body=request.get_data(),
            content_type=request.mimetype,
        )
        if answer.drop:
            mark_drop(request.environ)
        return _json(answer.body, answer.status, answer.headers)

    @app.post("/_fake/orders")
    def seed_order() -> Response:
        data = request.get_json(silent=True) or {}
        try:
            lines = [(str(x["line_id"]), x.get("sku"), int(x["quantity"])) for x in data["lines"]]
            fake.add_order(str(data["order_id"]), lines, name=data.get("name"), note=data.get("note"))
        except (KeyError, TypeError, ValueError) as exc:
            return _json({"error": f"cannot seed the order: {exc}"}, 400)
        return _json({"order_id": str(data["order_id"])}, 201)

    @app.get("/_fake/orders/<order_id>")
    def show_order(order_id: str) -> Response:
        try:
            fulfillments = fake.fulfillments(order_id)
        except KeyError:
            return _json({"error": "no such order"}, 404)
        return _json(
            {
                "order_id": order_id,
                "note": fake.note(order_id),
                "remaining": fake.remaining(order_id),
                "fulfillment_orders": [
                    {"id": fo.id, "status": fo.status} for fo in fake.fulfillment_orders(order_id)
                ],
                "fulfillments": [
                    {
                        "id": f.gid,
                        "name": f.name,
                        "tracking_numbers": list(f.tracking_numbers),
                        "quantities": f.quantities,
                        "notify_customer": f.notify_customer,
                    }
                    for f in fulfillments
                ],
            }
        )

    app.wsgi_app = ConnectionDropper(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json")
