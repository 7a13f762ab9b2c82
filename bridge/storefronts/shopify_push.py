"""Shopify push-back: one Amazon package becomes one Shopify fulfillment, over the Admin GraphQL API.

What a caller may rely on:

- `push_shipment` reads the order's fulfillment orders and keeps only those the bridge may fulfil
  (`ShopifyFulfillmentOrders.eligible`: the ones the Amazon order covers and the ones at Amazon's
  location(s), never another app's). It takes exactly the package's lines and quantities from the
  OPEN / IN_PROGRESS ones (split across several when the order was split), and sends one
  `fulfillmentCreate` with the tracking number, carrier and URL. It never sends an empty line-item
  list (Shopify reads that as "fulfil everything").
- Units Shopify no longer holds open (fulfilled or closed by someone else, moved to another
  location) are not an error: what is still open is pushed, and the rest comes back in
  `PushResult.not_pushed` with the reason, for the push-back stage to note on the order and raise
  as an alert. When nothing is open, no fulfillment is created at all. Units on held or scheduled
  fulfillment orders make the push wait (`fulfillment_on_hold`, retryable).
- When Shopify refuses the line items because the fulfillment orders changed between our read and
  our create, the push reads them once more and allocates again.
- `fulfillmentCreate` is not idempotent: a lost answer (dropped connection, 5xx) is raised as an
  *ambiguous* `PushError`. The caller then asks `find_existing`, which finds the fulfillment by its
  tracking number, before trying again.
- `add_note` appends to the order's `note` (Shopify has no public timeline API) behind a marker
  `[fba-bridge:<note_key>]`; a retried note is recognised by its marker and not appended twice.
  The note is read, then written: an edit the merchant saves between the two is overwritten, and
  the note is only visible to staff (`customer_visible` cannot be honoured on Shopify).
- Calls, cost throttling and error mapping are `shopify_graphql.ShopifyGraphQL`'s.

Scopes needed: `read_orders`, `write_orders` (for notes) and
`write_merchant_managed_fulfillment_orders` (or `write_assigned_fulfillment_orders` for a
fulfillment service).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..channels import Channel
from ..clock import Clock
from .carriers import carrier_name
from .push import INVALID_TRACKING_URL, BeforeWrite, NotPushed, OrderNote, PushError, PushResult, ShipmentPush
from .shopify_fulfillment import (
    FINISHED_STATUSES,
    FULFILLABLE_STATUSES,
    WAITING_STATUSES,
    FulfillmentOrderView,
    ShopifyFulfillmentOrders,
)
from .shopify_graphql import (
    CostBudget,
    GraphQLOperation,
    ShopifyGraphQL,
    gid,
    items,
    legacy,
    obj,
    order_not_found,
    raise_user_errors,
)
from .shopify_risk import ShopifyRisk

log = logging.getLogger(__name__)

ON_HOLD_RETRY_S = 900.0

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

# The cheapest read there is: does the shop take our access token (`fba-bridge channels recheck`)?
CREDENTIAL_CHECK = GraphQLOperation(
    """
query BridgeCredentialCheck {
  shop {
    myshopifyDomain
  }
}
""".strip(),
    estimated_cost=1,
)

OPERATIONS: tuple[GraphQLOperation, ...] = (
    FULFILLMENT_CREATE,
    ORDER_FULFILLMENTS,
    ORDER_NOTE,
    ORDER_NOTE_UPDATE,
    CREDENTIAL_CHECK,
)


def note_marker(note_key: str) -> str:
    safe = re.sub(r"[\[\]\s]", "_", note_key)
    return f"[fba-bridge:{safe}]"


# --------------------------------------------------------------------------------------------
# The allocation of a package's lines to fulfillment orders (pure)


Allocation = dict[str, list[tuple[str, int]]]  # fulfillment order id -> [(its line item id, quantity)]


def allocate(
    wanted: Mapping[str, int],
    eligible: Sequence[FulfillmentOrderView],
    every: Sequence[FulfillmentOrderView],
    order_id: str,
) -> tuple[Allocation, tuple[NotPushed, ...]]:
    """Take each wanted line item's quantity from the fulfillable `eligible` fulfillment orders, in
    Shopify's order, splitting a line across several when one does not hold enough.

    Returns what to fulfil and what cannot be (with the reason, from `every` fulfillment order of
    the order). Raises a retryable `PushError("fulfillment_on_hold")` when a shortfall sits on held
    or scheduled fulfillment orders: they become fulfillable without anyone's help.
    """
    allocation: Allocation = {}
    short: dict[str, int] = {}
    for line_item_id, quantity in wanted.items():
        need = quantity
        for fo in eligible:
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
        return allocation, ()
    held = {
        line.line_item_id
        for fo in eligible
        if fo.status in WAITING_STATUSES
        for line in fo.lines
        if line.remaining > 0
    }
    if held & set(short):
        lines = ", ".join(legacy(k) for k in sorted(held & set(short)))
        raise PushError(
            "fulfillment_on_hold",
            f"Shopify order {order_id}: line(s) {lines} are on held or scheduled fulfillment orders; "
            "retrying when the merchant releases them",
            retry_after=ON_HOLD_RETRY_S,
        )
    not_pushed = tuple(
        NotPushed(legacy(line_item_id), quantity, _why_not(line_item_id, eligible, every))
        for line_item_id, quantity in short.items()
    )
    return allocation, not_pushed


def _why_not(
    line_item_id: str, eligible: Sequence[FulfillmentOrderView], every: Sequence[FulfillmentOrderView]
) -> str:
    def holds(fo: FulfillmentOrderView) -> bool:
        return any(line.line_item_id == line_item_id for line in fo.lines)

    ours = [fo for fo in eligible if holds(fo)]
    closed = [fo for fo in ours if fo.status in FINISHED_STATUSES]
    if closed:
        return "; ".join(
            f"fulfillment order {legacy(fo.id)} is {fo.status.lower()} in Shopify" for fo in closed
        )
    if ours:
        return "already fulfilled in Shopify (by the merchant or another app)"
    others = [fo for fo in every if holds(fo) and fo not in eligible]
    if others:
        where = ", ".join(sorted({fo.location_name or "another location" for fo in others}))
        return f"assigned in Shopify to {where}, not to Amazon's location"
    return "not on the order in Shopify (removed by an edit?)"


def _stale(payload: dict[str, Any]) -> bool:
    """userErrors about the line items (not the tracking): the fulfillment orders changed since we
    read them, so reading them again may succeed."""
    errors = [obj(e) for e in items(payload.get("userErrors"))]
    paths = [".".join(str(p) for p in items(e.get("field"))) for e in errors]
    return bool(errors) and not any(path.startswith("fulfillment.trackingInfo") for path in paths)


# --------------------------------------------------------------------------------------------
# The pusher


class ShopifyPusher:
    """`StorefrontPusher` for a Shopify channel. Thread-safe; one per channel is enough. Its
    `assignments` (the channel's fulfillment orders) share its GraphQL client and cost budget."""

    def __init__(
        self,
        channel: Channel,
        clock: Clock,
        transport: httpx.BaseTransport | None = None,
        budget: CostBudget | None = None,
    ) -> None:
        self.channel = channel
        self.clock = clock
        self.graphql = ShopifyGraphQL(channel, clock, transport, budget)
        self.assignments = ShopifyFulfillmentOrders(channel, clock, self.graphql)
        self.risk = ShopifyRisk(channel, self.graphql)

    # -- StorefrontPusher ----------------------------------------------------------------------

    def push_shipment(self, push: ShipmentPush, *, before_write: BeforeWrite | None = None) -> PushResult:
        wanted = _wanted(push)
        for attempt in (1, 2):
            every = self.assignments.read(push.order_external_id)
            eligible = self.assignments.eligible(every, push.fulfillment_units)
            allocation, not_pushed = allocate(wanted, eligible, every, push.order_external_id)
            if not allocation:
                log.warning(
                    "shopify: nothing of package %s is open on order %s; %d unit(s) not pushed",
                    push.package_key,
                    push.order_external_id,
                    sum(x.quantity for x in not_pushed),
                )
                return PushResult(
                    storefront_ref="", details={"fulfillment_orders": []}, not_pushed=not_pushed
                )
            if before_write is not None:
                before_write()
            data = self._call(FULFILLMENT_CREATE, {"fulfillment": self._fulfillment_input(push, allocation)})
            payload = obj(data.get("fulfillmentCreate"))
            if attempt == 1 and _stale(payload):
                log.info(
                    "shopify: order %s changed between read and create; reading again", push.order_external_id
                )
                continue
            if push.tracking_url and _only_the_tracking_url_refused(payload):
                raise PushError(
                    INVALID_TRACKING_URL,
                    f"Shopify refused the tracking URL of order {push.order_external_id}: invalid",
                    retryable=False,
                )
            raise_user_errors(FULFILLMENT_CREATE, payload, f"order {push.order_external_id}")
            return self._created(push, payload, allocation, not_pushed, sum(wanted.values()))
        raise AssertionError("unreachable")

    def _fulfillment_input(self, push: ShipmentPush, allocation: Allocation) -> dict[str, Any]:
        tracking: dict[str, str] = {"number": push.tracking_number}
        if push.carrier:
            tracking["company"] = carrier_name(push.carrier, "shopify", self.channel.carrier_names)
        if push.tracking_url:
            tracking["url"] = push.tracking_url
        return {
            "lineItemsByFulfillmentOrder": [
                {
                    "fulfillmentOrderId": fo_id,
                    "fulfillmentOrderLineItems": [{"id": li, "quantity": q} for li, q in lines],
                }
                for fo_id, lines in allocation.items()
            ],
            "trackingInfo": tracking,
            "notifyCustomer": self._notify(push),
        }

    def _notify(self, push: ShipmentPush) -> bool:
        return bool(self.channel.storefront.notify_customer and push.notify_customer)

    def _created(
        self,
        push: ShipmentPush,
        payload: dict[str, Any],
        allocation: Allocation,
        not_pushed: tuple[NotPushed, ...],
        units: int,
    ) -> PushResult:
        fulfillment = obj(payload.get("fulfillment"))
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
            units - sum(x.quantity for x in not_pushed),
            self._notify(push),
        )
        return PushResult(
            storefront_ref=fulfillment_id,
            details={
                "status": fulfillment.get("status"),
                "name": fulfillment.get("name"),
                "fulfillment_orders": list(allocation),
                "notify_customer": self._notify(push),
            },
            not_pushed=not_pushed,
        )

    def find_existing(self, push: ShipmentPush) -> PushResult | None:
        """The fulfillment of this order carrying `push.tracking_number`, whatever its status
        (a fulfillment the merchant cancelled is still ours: re-creating it would undo their act)."""
        data = self._call(ORDER_FULFILLMENTS, {"id": gid("Order", push.order_external_id)})
        order = data.get("order")
        if order is None:
            return None
        wanted = push.tracking_number.strip()
        for fulfillment in map(obj, items(obj(order).get("fulfillments"))):
            numbers = {
                str(t.get("number") or "").strip() for t in map(obj, items(fulfillment.get("trackingInfo")))
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

    def check_credentials(self) -> bool:
        self._call(CREDENTIAL_CHECK, {})
        return True

    def add_note(self, note: OrderNote) -> PushResult:
        order_gid = gid("Order", note.order_external_id)
        marker = note_marker(note.note_key)
        ref = f"{order_gid}#note:{marker[1:-1]}"
        data = self._call(ORDER_NOTE, {"id": order_gid})
        order = data.get("order")
        if order is None:
            raise order_not_found(note.order_external_id)
        current = str(obj(order).get("note") or "")
        if marker in current:
            return PushResult(storefront_ref=ref, details={"already_present": True})
        entry = f"{marker} {note.text.strip()}"
        updated = f"{current.rstrip()}\n\n{entry}" if current.strip() else entry
        data = self._call(ORDER_NOTE_UPDATE, {"input": {"id": order_gid, "note": updated}})
        payload = obj(data.get("orderUpdate"))
        raise_user_errors(ORDER_NOTE_UPDATE, payload, f"order {note.order_external_id}")
        log.info("shopify: note %s added to order %s", marker, note.order_external_id)
        return PushResult(storefront_ref=ref, details={"already_present": False})

    def close(self) -> None:
        self.graphql.close()

    def _call(self, operation: GraphQLOperation, variables: dict[str, Any]) -> dict[str, Any]:
        return self.graphql.call(operation, variables)


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


def _only_the_tracking_url_refused(payload: dict[str, Any]) -> bool:
    """Every userError of a `fulfillmentCreate` is about `trackingInfo.url` (Shopify answers
    "Tracking url is invalid." on field `["fulfillment", "trackingInfo", "url"]`)."""
    user_errors = [obj(e) for e in items(payload.get("userErrors"))]
    return bool(user_errors) and all(
        [str(f) for f in items(e.get("field"))][-2:] in (["trackingInfo", "url"], ["trackingInfo", "urls"])
        for e in user_errors
    )
