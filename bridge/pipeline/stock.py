"""What a storefront may sell of each SKU: pure functions, no I/O.

    target = max(0, fulfillable - in_flight - buffer)

- `fulfillable`: Amazon's `fulfillableQuantity` for the mapped Amazon SKU (not inbound, not
  reserved for orders Amazon already has).
- `in_flight`: units of storefront orders the bridge accepted that Amazon does not hold yet, over
  every channel on the same Amazon account and marketplace (they all draw on one stock). Orders
  in these states count (`IN_FLIGHT_STATES`):
    - `received`, `submitting`: on their way to Amazon (a `submitting` order Amazon has already
      created is counted twice until its state is committed: briefly too low, never too high);
    - `awaiting_payment`: the shop has already counted the sale; if it is never paid the
      merchant cancels it and the units come back;
    - `needs_attention`: a parked order still holds the shop's units until an operator releases
      or cancels it.
  Not counted: orders at Amazon (`submitted`, `held_at_amazon`, ...: Amazon's fulfillable
  quantity already lacks their units, held orders included), finished ones, `not_for_amazon`,
  lines that do not require shipping, and SKUs the channel does not map.
- `buffer`: the channel's safety buffer for the storefront SKU: a number of units, or a share of
  what is left after in-flight units, rounded up (never sells the last unit of a share).

Several storefront SKUs mapped to one Amazon SKU each get the whole quantity (the shop offers the
same units under several listings; a buffer is the guard against selling them twice).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..channels import Channel, StockBuffer
from ..orders import CanonicalOrder, OrderState

IN_FLIGHT_STATES: frozenset[OrderState] = frozenset(
    {
        OrderState.AWAITING_PAYMENT,
        OrderState.RECEIVED,
        OrderState.NEEDS_ATTENTION,
        OrderState.AWAITING_APPROVAL,
        OrderState.SUBMITTING,
    }
)


def held_back(available: int, buffer: StockBuffer) -> int:
    """Units the buffer keeps from `available` (a share is rounded up)."""
    if available <= 0:
        return 0
    share = math.ceil(available * buffer.percent / 100) if buffer.percent else 0
    return buffer.units + share


def sellable(fulfillable: int, in_flight: int, buffer: StockBuffer) -> int:
    """What the storefront may sell: never below zero."""
    available = max(0, fulfillable) - max(0, in_flight)
    return max(0, available - held_back(available, buffer))


def reverse_map(sku_map: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Amazon SKU -> the storefront SKUs mapped to it (sorted)."""
    out: dict[str, list[str]] = {}
    for storefront_sku, amazon_sku in sku_map.items():
        out.setdefault(amazon_sku, []).append(storefront_sku)
    return {amazon: tuple(sorted(skus)) for amazon, skus in out.items()}


def in_flight_units(orders: Iterable[tuple[Channel, CanonicalOrder]]) -> dict[str, int]:
    """Amazon SKU -> units of these orders (already filtered to in-flight states)."""
    units: dict[str, int] = {}
    for channel, order in orders:
        if order.cancelled:
            continue
        for line in order.lines:
            amazon_sku = channel.amazon_sku(line.sku)
            if amazon_sku is None or not line.requires_shipping or line.quantity <= 0:
                continue
            units[amazon_sku] = units.get(amazon_sku, 0) + line.quantity
    return units


@dataclass(frozen=True)
class Target:
    channel_id: str
    storefront_sku: str
    amazon_sku: str
    fulfillable: int
    in_flight: int
    target: int


def targets_for(
    channel: Channel, amazon_skus: Iterable[str], fulfillable: Mapping[str, int], in_flight: Mapping[str, int]
) -> list[Target]:
    """The targets of every storefront SKU of `channel` mapped to one of `amazon_skus`.

    An Amazon SKU missing from `fulfillable` (Amazon has no stock record of it) counts as 0."""
    reverse = reverse_map(channel.sku_map)
    out = []
    for amazon_sku in sorted(set(amazon_skus)):
        quantity = fulfillable.get(amazon_sku, 0)
        flying = in_flight.get(amazon_sku, 0)
        for storefront_sku in reverse.get(amazon_sku, ()):
            buffer = channel.inventory.buffer_for(storefront_sku)
            out.append(
                Target(
                    channel.id,
                    storefront_sku,
                    amazon_sku,
                    quantity,
                    flying,
                    sellable(quantity, flying, buffer),
                )
            )
    return out


def needs_push(target: int, storefront_quantity: int | None) -> bool:
    """A change is pushed only when the storefront's value (as last seen) differs from the target."""
    return storefront_quantity is None or storefront_quantity != target


def mapping_digest(channels: Iterable[Channel]) -> str:
    """Changes when a SKU map or buffer of these channels changes (then every target is recomputed)."""
    data = [
        {
            "id": c.id,
            "map": sorted(c.sku_map.items()),
            "buffer": str(c.inventory.buffer),
            "sku_buffers": sorted((k, str(v)) for k, v in c.inventory.sku_buffers.items()),
        }
        for c in sorted(channels, key=lambda c: c.id)
    ]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
