"""What a storefront has assigned to Amazon, in terms the pipeline can use on any platform.

Shopify splits every order into *fulfillment orders*, one per location, and tracks what remains
to fulfil on each; a fulfillment service is asked (a *request*) before it may fulfil one. Those
are "fulfilment units" here. Platforms without the concept (WooCommerce, generic) have no
`FulfillmentAssignments` at all, and the pipeline treats the whole order as Amazon's.

What a caller may rely on:

- `Assignment.restrict(order)` is the order with only the lines and quantities assigned to Amazon
  (what remains to fulfil, lines needing shipping only), in the order's own line order.
- `Assignment.not_ours` / `waiting` say, in an operator-readable sentence, why nothing is to be
  shipped (never personal data: ids, location names, statuses).
- The answering methods return False when the storefront no longer holds the request in the state
  the answer needs (withdrawn, already answered); other failures raise `PushError`.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from ..orders import CanonicalOrder, OrderLine


class RequestKind(enum.StrEnum):
    FULFILLMENT = "fulfillment"
    CANCELLATION = "cancellation"


class RejectReason(enum.StrEnum):
    """Why a fulfilment request is refused; platforms map these to their own codes."""

    INVALID_SKU = "invalid_sku"
    OUT_OF_STOCK = "out_of_stock"
    INCORRECT_ADDRESS = "incorrect_address"
    UNDELIVERABLE = "undeliverable"
    OTHER = "other"


@dataclass(frozen=True)
class UnitLine:
    line_id: str  # the storefront order line (`OrderLine.line_id`)
    unit_line_id: str  # the unit's own id for the line (Shopify: FulfillmentOrderLineItem gid)
    sku: str
    quantity: int  # what remains to fulfil


@dataclass(frozen=True)
class FulfillmentUnit:
    id: str
    location_id: str
    status: str
    request_status: str
    lines: tuple[UnitLine, ...]

    def to_json(self) -> list[dict[str, object]]:
        return [
            {"line_id": x.line_id, "unit_line_id": x.unit_line_id, "sku": x.sku, "quantity": x.quantity}
            for x in self.lines
        ]


@dataclass(frozen=True)
class Assignment:
    """The units Amazon is to ship for one order now, or why there are none."""

    units: tuple[FulfillmentUnit, ...] = ()
    to_accept: tuple[str, ...] = ()  # unit ids whose fulfilment request is to be accepted first
    requested: bool = False  # the storefront asked explicitly: payment is its business, not ours
    waiting: str = ""  # nothing to ship yet (not requested, on hold): why
    not_ours: str = ""  # nothing is assigned to Amazon: why
    left_to_others: tuple[str, ...] = ()  # what stays with other locations or needs no shipping

    def quantities(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for unit in self.units:
            for line in unit.lines:
                out[line.line_id] = out.get(line.line_id, 0) + line.quantity
        return out

    def restrict(self, order: CanonicalOrder) -> CanonicalOrder:
        wanted = self.quantities()
        lines: list[OrderLine] = []
        for line in order.lines:
            quantity = wanted.pop(line.line_id, 0)
            if quantity > 0 and line.requires_shipping:
                # What Shopify still assigns to Amazon caps the units shipped (`to_fulfil`); the
                # line's own quantity stays the storefront's, which amendments compare against.
                lines.append(replace(line, fulfillable_quantity=quantity))
        # Lines the storefront assigns to Amazon but the stored order lacks (added by an edit).
        skus = {x.line_id: x.sku for unit in self.units for x in unit.lines}
        for line_id, quantity in wanted.items():
            if quantity > 0:
                lines.append(
                    OrderLine(
                        line_id=line_id,
                        sku=skus.get(line_id, ""),
                        quantity=quantity,
                        unit_price="0",
                        fulfillable_quantity=quantity,
                    )
                )
        return replace(order, lines=tuple(lines))

    def summary(self) -> str:
        covered = ", ".join(
            f"{u.id.rsplit('/', 1)[-1]} ({sum(x.quantity for x in u.lines)} unit(s))" for u in self.units
        )
        text = f"Amazon's part: fulfillment order(s) {covered or '(none)'}"
        if self.left_to_others:
            text += "; left to others: " + "; ".join(self.left_to_others)
        return text


@dataclass(frozen=True)
class RequestedUnit:
    """A unit the storefront asks us to fulfil (or to stop fulfilling), with its order's id and
    the order as far as the request describes it (used when no order webhook arrived)."""

    unit: FulfillmentUnit
    order_external_id: str
    order: CanonicalOrder


@runtime_checkable
class FulfillmentAssignments(Protocol):
    def assigned(self, order: CanonicalOrder) -> Assignment | None:
        """Amazon's part of `order` now; None when the channel does not restrict it."""
        ...

    def accept(self, unit_id: str, message: str) -> bool: ...

    def reject(self, unit_id: str, reason: RejectReason, message: str) -> bool: ...

    def requests(self, kind: RequestKind) -> list[RequestedUnit]:
        """Units waiting for our answer to a request of `kind`."""
        ...

    def answer_cancellation(self, unit_id: str, accept: bool, message: str) -> bool: ...

    def release(
        self,
        order_external_id: str,
        lines: dict[str, int] | None,
        location_id: str,
        recorded: Collection[str],
    ) -> dict[str, int]:
        """Routing fallback: move what Amazon will not ship (storefront line id -> units; None:
        all of Amazon's part) to another location; the units moved per line."""
        ...

    def setup_problems(self) -> list[str]:
        """What in the channel's set-up does not match the storefront (checked now, not cached)."""
        ...
