"""What a storefront's order listing gives the reconciliation pass (`pipeline/reconcile.py`).

Each platform module that can list changed orders (`shopify_orders`, `woocommerce_orders`)
yields `ListedOrder`s: the body and topic of the webhook that would have announced the order's
current state. The pass hands them to the platform's own webhook adapter (`parse`), so an order
read back from the API is interpreted by exactly the code that interprets webhooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ListedOrder:
    external_id: str
    topic: str
    body: bytes
    #: The storefront's own `updated_at` / `date_modified_gmt`, as it sent it (for the delivery key).
    updated_at: str = ""


@dataclass(frozen=True)
class WebhookState:
    """A webhook the storefront says it holds for us, and whether it still delivers."""

    topic: str
    status: str
    delivery_url: str


class OrderLister(Protocol):
    #: Storefront API requests made so far (benchmarks and the pass summary).
    calls: int

    def changed(self, since: datetime) -> Iterator[ListedOrder]:
        """Every order changed at or after `since` (at least once; duplicates are harmless)."""
        ...

    def webhooks(self) -> list[WebhookState] | None:
        """The storefront's webhooks that deliver to us, or None when the platform cannot tell."""
        ...

    def close(self) -> None: ...
