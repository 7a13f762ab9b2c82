"""What was sent to Amazon, and what a later storefront change asks Amazon to change. Pure.

A `Submission` is recorded (with the order row, under its lock) when the create is sent: the
items with their quantities, the speed, whether it was held, a digest of the address (never the
address), the storefront lines' quantities at that moment and the lines Amazon was not asked to
ship. Every later storefront change is compared with it, not with the order as it was stored:

- an address or speed change becomes one `updateFulfillmentOrder` with those fields (and the
  release of a hold once the order is paid);
- a line's quantity follows the storefront's change to it (its `quantity`, Shopify's
  `current_quantity`): 2 submitted, storefront 3 -> 2 gives 1. Quantities go in a second request,
  because Amazon takes them only while the order is on hold and a refusal must not cost the
  address change;
- what `updateFulfillmentOrder` cannot express (a line added, a line removed entirely, an address
  Amazon would reject) is `refused` for an operator; every line gone means cancel instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..amazon.models import (
    Address,
    FulfillmentAction,
    UpdateFulfillmentOrderItem,
    UpdateFulfillmentOrderRequest,
)
from ..channels import Channel
from ..orders import CanonicalOrder
from ..schemas import schema_problems
from .plan import Park, Plan, SkippedLine, destination_address, shipping_speed


@dataclass(frozen=True)
class SubmittedItem:
    item_id: str
    line_id: str
    seller_sku: str
    quantity: int


@dataclass(frozen=True)
class Submission:
    version: str  # `CanonicalOrder.content_version()` of the order this reflects
    address_digest: str
    speed: str
    hold: bool
    items: tuple[SubmittedItem, ...]
    lines: Mapping[str, int] = field(default_factory=dict)  # storefront line -> its quantity then
    skipped: tuple[SkippedLine, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "address_digest": self.address_digest,
            "speed": self.speed,
            "hold": self.hold,
            "items": [vars(item) for item in self.items],
            "lines": dict(self.lines),
            "skipped": [vars(line) for line in self.skipped],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Submission | None:
        if not data:
            return None
        return cls(
            version=str(data.get("version", "")),
            address_digest=str(data.get("address_digest", "")),
            speed=str(data.get("speed", "")),
            hold=bool(data.get("hold", False)),
            items=tuple(SubmittedItem(**item) for item in data.get("items", ())),
            lines={str(k): int(v) for k, v in dict(data.get("lines", {})).items()},
            skipped=tuple(SkippedLine(**line) for line in data.get("skipped", ())),
        )


def address_digest(address: Address) -> str:
    """Tells whether the address changed without keeping it (the order's data holds it once)."""
    text = json.dumps(address.to_api(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def submission_of(order: CanonicalOrder, plan: Plan, version: str) -> Submission:
    """The record of a create request planned from `order` (the order as stored)."""
    line_of_item = dict(plan.line_of_item)
    return Submission(
        version=version,
        address_digest=address_digest(plan.create.destination_address),
        speed=str(plan.speed),
        hold=plan.create.fulfillment_action is FulfillmentAction.HOLD,
        items=tuple(
            SubmittedItem(
                item.seller_fulfillment_order_item_id,
                line_of_item.get(
                    item.seller_fulfillment_order_item_id, item.seller_fulfillment_order_item_id
                ),
                item.seller_sku,
                item.quantity,
            )
            for item in plan.create.items
        ),
        lines={line.line_id: line.quantity for line in order.lines},
        skipped=plan.skipped,
    )


@dataclass(frozen=True)
class Amendment:
    """What to ask Amazon, in two requests, and what cannot be asked at all."""

    order_fields: UpdateFulfillmentOrderRequest | None
    items: UpdateFulfillmentOrderRequest | None
    changes: tuple[str, ...]  # of the order fields, in words
    item_changes: tuple[str, ...]
    refused: tuple[str, ...]  # changes updateFulfillmentOrder cannot express
    cancel: bool  # nothing is left for Amazon to ship
    releases: bool
    fields_after: Submission
    items_after: Submission

    @property
    def empty(self) -> bool:
        return self.order_fields is None and self.items is None

    def result(self, before: Submission, *, fields_applied: bool, items_applied: bool) -> Submission:
        """The submission once Amazon took what it took; the version is the one evaluated."""
        out = replace(before, version=self.fields_after.version)
        if fields_applied:
            out = replace(
                out,
                address_digest=self.fields_after.address_digest,
                speed=self.fields_after.speed,
                hold=self.fields_after.hold,
            )
        if items_applied:
            out = replace(out, items=self.items_after.items)
        lines = dict(before.lines)
        for line_id, quantity in self.items_after.lines.items():
            if items_applied or line_id not in {item.line_id for item in before.items}:
                lines[line_id] = quantity
        return replace(out, lines=lines)


def plan_amendment(
    order: CanonicalOrder, channel: Channel, before: Submission, *, release: bool
) -> Amendment:
    """Compare the order as the storefront has it now with what Amazon was sent."""
    version = order.content_version()
    changes: list[str] = []
    refused: list[str] = []
    fields: dict[str, Any] = {}

    destination = destination_address(order, channel)
    digest = before.address_digest
    if isinstance(destination, Park):
        refused.append(f"the new shipping address cannot be sent: {destination.reason}")
    else:
        address, _ = destination
        if address_digest(address) != before.address_digest:
            problems = schema_problems(
                "spapi/update_fulfillment_order",
                UpdateFulfillmentOrderRequest(destination_address=address).to_api(),
            )
            if problems:
                details = "; ".join(f"{p['path'].removeprefix('$.')}: {p['fix']}" for p in problems)
                refused.append(f"Amazon would reject the new shipping address: {details}")
            else:
                fields["destination_address"] = address
                digest = address_digest(address)
                changes.append("shipping address")
    speed = shipping_speed(order, channel)
    if str(speed) != before.speed:
        fields["shipping_speed_category"] = speed
        changes.append(f"shipping speed {before.speed} -> {speed}")
    releases = release and before.hold
    if releases:
        fields["fulfillment_action"] = FulfillmentAction.SHIP
        changes.append("release the hold (payment received)")

    items, item_changes, item_refusals, refused_lines, cancel = _item_changes(order, channel, before)
    refused += item_refusals
    fields_after = replace(
        before,
        version=version,
        address_digest=digest,
        speed=str(fields.get("shipping_speed_category", before.speed)),
        hold=before.hold and not releases,
    )
    items_after = replace(
        before,
        version=version,
        items=tuple(replace(i, quantity=items.get(i.item_id, i.quantity)) for i in before.items),
        lines=_line_quantities(order, before, refused_lines),
    )
    return Amendment(
        order_fields=UpdateFulfillmentOrderRequest(**fields) if fields else None,
        items=UpdateFulfillmentOrderRequest(
            items=[
                UpdateFulfillmentOrderItem(seller_fulfillment_order_item_id=item_id, quantity=quantity)
                for item_id, quantity in items.items()
            ]
        )
        if items and not cancel
        else None,
        changes=tuple(changes),
        item_changes=tuple(item_changes),
        refused=tuple(refused),
        cancel=cancel,
        releases=releases,
        fields_after=fields_after,
        items_after=items_after,
    )


def _item_changes(
    order: CanonicalOrder, channel: Channel, before: Submission
) -> tuple[dict[str, int], list[str], list[str], set[str], bool]:
    """(item id -> new quantity, changes in words, refusals, lines refused, every item gone)."""
    lines = {line.line_id: line for line in order.lines}
    wanted: dict[str, int] = {}
    changes: list[str] = []
    refused: list[str] = []
    refused_lines: set[str] = set()
    targets: list[int] = []
    for item in before.items:
        line = lines.get(item.line_id)
        now = line.quantity if line is not None and line.requires_shipping else 0
        target = max(0, item.quantity + now - before.lines.get(item.line_id, item.quantity))
        targets.append(target)
        if target == item.quantity:
            continue
        if target == 0:
            refused_lines.add(item.line_id)
            refused.append(
                f"line {item.line_id} ({item.seller_sku}) was removed; Amazon cannot drop a line from an "
                f"order it holds (it still ships {item.quantity})"
            )
            continue
        wanted[item.item_id] = target
        changes.append(f"line {item.line_id} ({item.seller_sku}) {item.quantity} -> {target}")
    submitted = {item.line_id for item in before.items} | {line.line_id for line in before.skipped}
    for line in order.lines:
        if line.line_id in submitted or not line.requires_shipping:
            continue
        if line.quantity > before.lines.get(line.line_id, 0) and channel.amazon_sku(line.sku) is not None:
            refused_lines.add(line.line_id)
            refused.append(
                f"line {line.line_id} ({line.sku}) was added; Amazon cannot add a line to an order it holds"
            )
    cancel = bool(targets) and all(target == 0 for target in targets)
    if cancel:  # not a refusal: the whole Amazon order goes
        refused = [r for r in refused if "was removed" not in r]
    return wanted, changes, refused, refused_lines, cancel


def _line_quantities(order: CanonicalOrder, before: Submission, refused_lines: set[str]) -> dict[str, int]:
    """The storefront quantities the next amendment compares with: the new ones, except for a line
    whose change Amazon could not take (it stays what Amazon has)."""
    out = dict(before.lines)
    for line in order.lines:
        if line.line_id not in refused_lines:
            out[line.line_id] = line.quantity
    return out


def left_for_merchant(
    order: CanonicalOrder, submission: Submission | None, shipped: Mapping[str, int]
) -> list[SkippedLine]:
    """Units the storefront wants shipped that Amazon was never asked for or did not ship:
    what the merchant still has to send. `shipped`: storefront line id -> units Amazon shipped."""
    lines = {line.line_id: line for line in order.lines if line.requires_shipping}
    left: dict[str, SkippedLine] = {}

    def owe(line_id: str, sku: str, quantity: int) -> None:
        if quantity > 0:
            prior = left.get(line_id)
            left[line_id] = SkippedLine(line_id, sku, quantity + (prior.quantity if prior else 0))

    if submission is None:
        for line in lines.values():
            owe(line.line_id, line.sku, line.to_fulfil - shipped.get(line.line_id, 0))
        return list(left.values())
    for skipped in submission.skipped:
        still = lines.get(skipped.line_id)
        if still is not None:
            owe(skipped.line_id, skipped.sku, min(skipped.quantity, still.quantity))
    for item in submission.items:
        still = lines.get(item.line_id)
        if still is not None:
            owe(item.line_id, still.sku, min(item.quantity, still.quantity) - shipped.get(item.line_id, 0))
    known = {item.line_id for item in submission.items} | {s.line_id for s in submission.skipped}
    for line in lines.values():
        if line.line_id not in known:
            owe(line.line_id, line.sku, line.quantity - submission.lines.get(line.line_id, 0))
    return list(left.values())
