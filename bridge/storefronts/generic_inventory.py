"""Generic channel stock: a signed `inventory.updated` callback to the storefront's `callback_url`.

Same signing and transport as the generic push-back (Standard Webhooks, `generic_push.py`). Body::

    {"type": "inventory.updated", "timestamp": "<now, ISO 8601 UTC>",
     "data": {"items": [{"sku": "SKU-1", "quantity": 7, "version": 12}]}}

`quantity` is what the shop may sell now (absolute, not a delta); `version` grows with every
change of a SKU's quantity, so a receiver can ignore an older value that arrives late. The
`webhook-id` is derived from the items (SKU, version, quantity): a resend of the same values
carries the same id and a receiver that dedupes by it (as the spec asks) applies them once.

A receiver may answer 2xx with `{"unknown_skus": ["SKU-9"]}`: those SKUs are reported to the
operator as missing in the shop. There is nothing to read back, so `expected` is not used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import httpx

from ..channels import Channel
from ..clock import Clock
from .generic_push import GenericPusher, message_id
from .inventory import StockItem, StockOutcome, StockStatus, chunks

INVENTORY_UPDATED = "inventory.updated"
BATCH = 500


def inventory_payload(items: Sequence[StockItem], now_iso: str) -> dict[str, Any]:
    return {
        "type": INVENTORY_UPDATED,
        "timestamp": now_iso,
        "data": {"items": [{"sku": i.sku, "quantity": i.target, "version": i.version} for i in items]},
    }


def batch_key(items: Sequence[StockItem]) -> str:
    text = "\n".join(sorted(f"{i.sku}\x1f{i.version}\x1f{i.target}" for i in items))
    return hashlib.sha256(text.encode()).hexdigest()


class GenericStock:
    """`StockPusher` for a generic channel; sends through a `GenericPusher` (signing, transport)."""

    platform = "generic"
    batch_size = BATCH

    def __init__(self, channel: Channel, clock: Clock, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self.clock = clock
        self._pusher = GenericPusher(channel, clock, transport)

    def close(self) -> None:
        self._pusher.close()

    def set_stock(self, items: Sequence[StockItem], *, reread: bool = False) -> list[StockOutcome]:
        outcomes: list[StockOutcome] = []
        for part in chunks(items, BATCH):
            msg_id = message_id(INVENTORY_UPDATED, self.channel.id, batch_key(part))
            payload = inventory_payload(part, self.clock.now().isoformat())
            answer = self._pusher.send_json(msg_id, payload)
            unknown = answer.get("unknown_skus") if isinstance(answer, dict) else None
            missing = {str(s) for s in unknown} if isinstance(unknown, list) else set()
            for item in part:
                if item.sku in missing:
                    outcomes.append(
                        StockOutcome(item.sku, StockStatus.MISSING, detail="the shop does not know this SKU")
                    )
                else:
                    outcomes.append(StockOutcome(item.sku, StockStatus.SET, item.target, msg_id))
        return outcomes
