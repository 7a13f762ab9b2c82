"""Shopify's changed orders, read through Admin GraphQL for the reconciliation pass.

What a caller may rely on:

- `ShopifyOrders.changed(since)` yields every order whose `updatedAt` is at or after `since`,
  oldest change first, as a `ListedOrder`: the REST order body an `orders/updated` webhook would
  carry (the shape `schemas/shopify/order.json` describes), so intake parses it with the very
  adapter that parses webhooks. A cancelled order is listed as `orders/cancelled`.
- Pages of `PAGE_SIZE` orders with `LINES_PER_ORDER` line items each; an order with more lines
  is completed with `order(id).lineItems` pages before it is yielded. Pages follow the cursor
  Shopify returns (sorted by `UPDATED_AT`), so an order changing during the walk never makes it
  skip another one; at worst an order is listed twice.
- Calls go through the channel's `ShopifyGraphQL` client (cost throttling, error mapping);
  storefront errors propagate as `PushError`. `calls` counts the GraphQL requests made.
- Note Shopify lists orders older than 60 days only to apps with the `read_all_orders` scope.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .push import PushError
from .reconcile import ListedOrder, WebhookState
from .shopify_graphql import (
    MIN_THROTTLE_RETRY_S,
    GraphQLOperation,
    ShopifyGraphQL,
    items,
    legacy,
    next_cursor,
    obj,
    too_large,
)

PAGE_SIZE = 20
LINES_PER_ORDER = 8
LINES_PAGE = 100
MAX_ORDER_PAGES = 10_000
THROTTLE_RETRIES = 3
#: A pass runs in the background: it may wait for the bucket longer than a push would (a full
#: bucket restores in 20 s at the standard 50 points/s).
MAX_PASS_WAIT_S = 30.0

_LINE_FIELDS = """
      id
      sku
      title
      name
      quantity
      currentQuantity
      unfulfilledQuantity
      requiresShipping
      isGiftCard
      originalUnitPriceSet { shopMoney { amount } }
      customAttributes { key value }
"""

_ADDRESS_FIELDS = """
      name
      firstName
      lastName
      company
      address1
      address2
      city
      province
      provinceCode
      zip
      countryCodeV2
      phone
"""

# Requested cost (Shopify's calculation): 3 + 20 x (1 + 6 objects + shipping lines 2 + 2 x 1
# + line items 3 + 8 x 4) = 923 of the 1,000 a query may cost; the actual cost charged is what
# the answer holds (a few points per order with one or two lines).
RECONCILE_ORDERS = GraphQLOperation(
    """query ReconcileOrders($first: Int!, $after: String, $query: String!, $lines: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      legacyResourceId
      name
      number
      email
      phone
      test
      note
      createdAt
      updatedAt
      cancelledAt
      cancelReason
      currencyCode
      displayFinancialStatus
      customAttributes { key value }
      tags
      customer {
        defaultEmailAddress { emailAddress }
        defaultPhoneNumber { phoneNumber }
      }
      shippingAddress {"""
    + _ADDRESS_FIELDS
    + """}
      billingAddress {"""
    + _ADDRESS_FIELDS
    + """}
      shippingLines(first: 2) { nodes { title code isRemoved } }
      lineItems(first: $lines) {
        pageInfo { hasNextPage endCursor }
        nodes {"""
    + _LINE_FIELDS
    + """}
      }
    }
  }
}""",
    estimated_cost=923,
)

RECONCILE_ORDER_LINES = GraphQLOperation(
    """query ReconcileOrderLines($id: ID!, $after: String, $first: Int!) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {"""
    + _LINE_FIELDS
    + """}
    }
  }
}""",
    estimated_cost=404,
)


class ShopifyOrders:
    """The order listing of one channel's shop, on the channel's shared GraphQL client."""

    def __init__(self, client: ShopifyGraphQL) -> None:
        self.client = client
        self.calls = 0

    def changed(self, since: datetime) -> Iterator[ListedOrder]:
        query = f"updated_at:>='{_iso(since)}'"
        after: str | None = None
        for _ in range(MAX_ORDER_PAGES):
            data = self._call(
                RECONCILE_ORDERS,
                {"first": PAGE_SIZE, "after": after, "query": query, "lines": LINES_PER_ORDER},
            )
            connection = obj(data.get("orders"))
            for node in map(obj, items(connection.get("nodes"))):
                lines = obj(node.get("lineItems"))
                line_nodes = list(items(lines.get("nodes")))
                cursor = next_cursor(lines)
                if cursor is not None:
                    line_nodes += self._more_lines(str(node.get("id") or ""), cursor)
                yield listed_order(node, line_nodes)
            after = next_cursor(connection)
            if after is None:
                return
        raise too_large("orders changed since the cursor")

    def _more_lines(self, order_gid: str, after: str | None) -> list[Any]:
        found: list[Any] = []
        for _ in range(50):
            data = self._call(RECONCILE_ORDER_LINES, {"id": order_gid, "after": after, "first": LINES_PAGE})
            order = data.get("order")
            if not isinstance(order, dict):
                raise PushError(
                    "order_not_found",
                    f"Shopify lost order {legacy(order_gid)} while listing it",
                    retryable=True,
                )
            lines = obj(order.get("lineItems"))
            found += items(lines.get("nodes"))
            after = next_cursor(lines)
            if after is None:
                return found
        raise too_large(f"order {legacy(order_gid)} line items")

    def webhooks(self) -> list[WebhookState] | None:
        """Shopify's subscriptions have no disabled state to read; `fba-bridge check channel`
        reports a missing one."""
        return None

    def close(self) -> None:
        """The GraphQL client is the channel's shared one (one cost bucket per shop): kept open."""

    def _call(self, operation: GraphQLOperation, variables: dict[str, Any]) -> dict[str, Any]:
        """One call. Without a shared cost budget (`fba-bridge reconcile` in a shell) a
        `THROTTLED` answer (nothing was executed) is waited out on the clock and asked again, a
        few times, so a pass does not end on a busy bucket. In a worker the shared budget waits
        before each call and may hand the job back instead (`pipeline/shop_budget.py`): its
        `throttled` error propagates, and the job runs again later without spending an attempt."""
        for attempt in range(THROTTLE_RETRIES + 1):
            self.calls += 1
            try:
                return self.client.call(operation, variables)
            except PushError as exc:
                wait = exc.retry_after or MIN_THROTTLE_RETRY_S
                if (
                    exc.code != "throttled"
                    or self.client.budget is not None
                    or attempt == THROTTLE_RETRIES
                    or wait > MAX_PASS_WAIT_S
                ):
                    raise
                self.client.clock.sleep(wait)
        raise AssertionError("unreachable")


def listed_order(node: dict[str, Any], line_nodes: list[Any]) -> ListedOrder:
    """A GraphQL `Order` as the REST body of its webhook (only the fields the adapter reads)."""
    external_id = str(node.get("legacyResourceId") or legacy(str(node.get("id") or "")))
    cancelled_at = node.get("cancelledAt")
    body: dict[str, Any] = {
        "id": int(external_id) if external_id.isdigit() else external_id,
        "admin_graphql_api_id": node.get("id"),
        "name": node.get("name"),
        "order_number": node.get("number"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "test": node.get("test") is True,
        "note": node.get("note"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": cancelled_at,
        "cancel_reason": _lower(node.get("cancelReason")),
        "currency": node.get("currencyCode"),
        "financial_status": _lower(node.get("displayFinancialStatus")),
        "tags": ", ".join(str(t) for t in items(node.get("tags"))),
        "note_attributes": [
            {"name": a.get("key"), "value": a.get("value")}
            for a in map(obj, items(node.get("customAttributes")))
        ],
        "customer": _customer(node.get("customer")),
        "shipping_address": _address(node.get("shippingAddress")),
        "billing_address": _address(node.get("billingAddress")),
        "shipping_lines": [
            {"title": s.get("title"), "code": s.get("code"), "is_removed": s.get("isRemoved") is True}
            for s in map(obj, items(obj(node.get("shippingLines")).get("nodes")))
        ],
        "line_items": [_line(line) for line in map(obj, line_nodes)],
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    topic = "orders/cancelled" if cancelled_at else "orders/updated"
    return ListedOrder(
        external_id=external_id, topic=topic, body=raw, updated_at=str(node.get("updatedAt") or "")
    )


def _line(node: dict[str, Any]) -> dict[str, Any]:
    price = obj(obj(node.get("originalUnitPriceSet")).get("shopMoney")).get("amount")
    line_id = legacy(str(node.get("id") or ""))
    return {
        "id": int(line_id) if line_id.isdigit() else line_id,
        "sku": node.get("sku"),
        "title": node.get("title"),
        "name": node.get("name"),
        "quantity": node.get("quantity"),
        "current_quantity": node.get("currentQuantity"),
        "fulfillable_quantity": node.get("unfulfilledQuantity"),
        "requires_shipping": node.get("requiresShipping"),
        "gift_card": node.get("isGiftCard"),
        "price": _price(price),
        "properties": [
            {"name": a.get("key"), "value": a.get("value")}
            for a in map(obj, items(node.get("customAttributes")))
        ],
    }


def _price(amount: Any) -> Any:
    """GraphQL's `Decimal` may drop trailing zeros ("12.5"); REST bodies carry two decimals
    ("12.50"). The same order read both ways must compare equal, so both get at least two."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return amount
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")


def _customer(value: Any) -> dict[str, Any] | None:
    """The customer's default e-mail and phone, which a webhook's `customer` block carries and the
    canonical order falls back to when the order itself has none."""
    if not isinstance(value, dict):
        return None
    return {
        "email": obj(value.get("defaultEmailAddress")).get("emailAddress"),
        "phone": obj(value.get("defaultPhoneNumber")).get("phoneNumber"),
    }


def _address(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {
        "name": value.get("name"),
        "first_name": value.get("firstName"),
        "last_name": value.get("lastName"),
        "company": value.get("company"),
        "address1": value.get("address1"),
        "address2": value.get("address2"),
        "city": value.get("city"),
        "province": value.get("province"),
        "province_code": value.get("provinceCode"),
        "zip": value.get("zip"),
        "country_code": value.get("countryCodeV2"),
        "phone": value.get("phone"),
    }


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
