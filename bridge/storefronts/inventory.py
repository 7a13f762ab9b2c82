"""What the inventory stage hands a storefront, and what every platform's stock writer answers.

A stock writer sets the sellable quantity of storefront SKUs (`set_stock`). Exactly-once per
target value comes from two pieces: each item carries the value the bridge last saw in the
storefront (`expected`), and a writer never overwrites a value that moved since (a sale in the
shop the bridge has not heard of yet): Shopify by compare-and-swap (`changeFromQuantity`),
WooCommerce by reading right before writing. Such an item comes back `STALE` with what the
storefront holds now, and the stage tries again later with fresh numbers. A retried call after a
lost answer (`reread=True`) reads first, so a write that did land is not repeated.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class StockItem:
    sku: str  # the storefront SKU
    target: int  # the quantity to set
    version: int  # which target this is (grows with every change of it)
    expected: int | None = None  # the storefront's value as last seen; None: never looked
    ref: str = ""  # the storefront's id for the SKU, if known
    parent: str = ""  # WooCommerce: the parent product of a variation


class StockStatus(enum.StrEnum):
    SET = "set"  # the storefront now holds the target
    UNCHANGED = "unchanged"  # it already held the target: nothing was written
    STALE = "stale"  # it changed under us (see `quantity`); not overwritten
    MISSING = "missing"  # no product or variant with this SKU
    UNMANAGED = "unmanaged"  # the product does not track stock
    NOT_STOCKED = "not_stocked"  # Shopify: not stocked at the Amazon location
    DUPLICATE = "duplicate"  # several products carry the SKU: which one is meant is unclear
    ERROR = "error"  # the storefront refused this item (see `detail`)


#: Outcomes that need an operator (a product to create, stock tracking to switch on...).
NEEDS_OPERATOR = frozenset(
    {StockStatus.MISSING, StockStatus.UNMANAGED, StockStatus.NOT_STOCKED, StockStatus.DUPLICATE}
)


@dataclass(frozen=True)
class StockOutcome:
    sku: str
    status: StockStatus
    quantity: int | None = None  # the storefront's value now, when known
    ref: str = ""
    parent: str = ""
    detail: str = ""  # why, for an operator (no personal data)


class StockPusher(Protocol):
    platform: str
    #: How many items one `set_stock` call should carry (a platform's batch limit).
    batch_size: int

    def set_stock(self, items: Sequence[StockItem], *, reread: bool = False) -> list[StockOutcome]:
        """One outcome per item (in any order). Raises `PushError` when the call as a whole failed."""
        ...

    def close(self) -> None: ...


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
