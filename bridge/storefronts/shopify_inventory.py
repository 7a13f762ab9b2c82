"""Shopify stock: the `available` quantity of each SKU's inventory item at the channel's Amazon
location, set with `inventorySetQuantities` over the Admin GraphQL API (2026-07).

- Lookup: `inventoryItems(query: "sku:\\"A\\" OR sku:\\"B\\"")`, 50 SKUs per query, with the
  item's `tracked` flag and its level at the location (`quantities(names: ["available"])`).
  No item: MISSING; two items with the SKU: DUPLICATE; `tracked: false`: UNMANAGED; no level at
  the location: NOT_STOCKED. Only exact SKU matches count (Shopify's search also matches prefixes).
- Write: `inventorySetQuantities` with `name: "available"`, `reason: "correction"`, a
  `referenceDocumentUri` naming the bridge, up to 100 quantities per call, each with
  `changeFromQuantity` = the value the bridge last saw. Shopify refuses the whole call with
  `CHANGE_FROM_QUANTITY_STALE` when one of them moved (a sale the bridge has not heard of): those
  items are read again and answered STALE with their new value, the others are sent again.
- Since 2026-04 the mutation needs an idempotency key (`@idempotent(key:)`): it is derived from
  the call's input, so a repeat of the same write is answered from Shopify's record instead of
  being applied twice; a key Shopify reports as failed earlier is replaced by a fresh one.
- Calls go through the channel's `ShopifyPusher` (its transport, cost-based throttling and error
  mapping, and the same cost bucket as push-back): `ShopifyGraphQL` is a thin wrapper around it.

Scopes needed: `read_inventory`, `write_inventory`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..channels import Channel
from .inventory import StockItem, StockOutcome, StockStatus, chunks
from .push import PushError
from .shopify_push import GraphQLOperation, ShopifyPusher

log = logging.getLogger(__name__)

LOOKUP_BATCH = 50
WRITE_BATCH = 100
REFERENCE_DOCUMENT = "gid://fba-bridge/InventorySync/{channel}"
MAX_MESSAGE_CHARS = 200

INVENTORY_ITEMS_BY_SKU = GraphQLOperation(
    """
query BridgeInventoryItemsBySku($query: String!, $first: Int!, $after: String, $locationId: ID!) {
  inventoryItems(first: $first, after: $after, query: $query) {
    nodes {
      id
      sku
      tracked
      inventoryLevel(locationId: $locationId) {
        id
        quantities(names: ["available"]) {
          name
          quantity
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
""".strip(),
    estimated_cost=302,
)

# Repeating it is harmless: `changeFromQuantity` refuses a second application, and the same input
# carries the same idempotency key.
INVENTORY_SET_QUANTITIES = GraphQLOperation(
    """
mutation BridgeInventorySetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup {
      id
    }
    userErrors {
      field
      message
      code
    }
  }
}
""".strip(),
    estimated_cost=10,
)

OPERATIONS: tuple[GraphQLOperation, ...] = (INVENTORY_ITEMS_BY_SKU, INVENTORY_SET_QUANTITIES)


class ShopifyGraphQL:
    """The call/throttle machinery of a `ShopifyPusher`, for another module's documents."""

    def __init__(self, pusher: ShopifyPusher) -> None:
        self._pusher = pusher

    def call(self, operation: GraphQLOperation, variables: dict[str, Any]) -> dict[str, Any]:
        return self._pusher._call(operation, variables)


@dataclass(frozen=True)
class ItemLevel:
    """One inventory item carrying a SKU, and its `available` units at the location."""

    item_id: str
    tracked: bool
    stocked: bool
    available: int | None


def sku_search(skus: Iterable[str]) -> str:
    """Shopify search syntax for any of these SKUs (quoted, `\\` and `"` escaped)."""
    terms = []
    for sku in skus:
        escaped = sku.replace("\\", "\\\\").replace('"', '\\"')
        terms.append(f'sku:"{escaped}"')
    return " OR ".join(terms)


def idempotency_key(channel_id: str, payload: Any, salt: str = "") -> str:
    digest = hashlib.sha256(
        json.dumps([channel_id, payload, salt], sort_keys=True, separators=(",", ":")).encode()
    ).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


class ShopifyStock:
    """`StockPusher` for a Shopify channel. Thread-safe; one per channel."""

    platform = "shopify"
    batch_size = WRITE_BATCH

    def __init__(self, channel: Channel, pusher: ShopifyPusher) -> None:
        self.channel = channel
        self.location = channel.inventory.location
        self._gql = ShopifyGraphQL(pusher)

    def close(self) -> None:
        """The pusher (and its connections) belongs to push-back; it is closed there."""

    # -- StockPusher ---------------------------------------------------------------------------

    def set_stock(self, items: Sequence[StockItem], *, reread: bool = False) -> list[StockOutcome]:
        if not self.location:
            raise PushError(
                "no_location",
                f"channel {self.channel.id}: inventory.location is not set (the Shopify location whose "
                "stock the bridge sets)",
                retryable=False,
            )
        unread = [i for i in items if reread or not i.ref or i.expected is None]
        levels = self.lookup(i.sku for i in unread)
        outcomes: list[StockOutcome] = []
        writes: list[tuple[StockItem, str, int]] = []  # (item, inventory item id, current available)
        unread_skus = {i.sku for i in unread}
        for item in items:
            if item.sku in unread_skus:
                found = levels.get(item.sku, [])
                problem = _problem(item.sku, found, self.location)
                if problem is not None:
                    outcomes.append(problem)
                    continue
                ref, current = found[0].item_id, found[0].available
                assert current is not None
            else:
                assert item.expected is not None
                ref, current = item.ref, item.expected
            if current == item.target:
                outcomes.append(StockOutcome(item.sku, StockStatus.UNCHANGED, current, ref))
            else:
                writes.append((item, ref, current))
        for start in range(0, len(writes), WRITE_BATCH):
            outcomes.extend(self._write(writes[start : start + WRITE_BATCH], retries=2))
        return outcomes

    # -- reads -----------------------------------------------------------------------------------

    def lookup(self, skus: Iterable[str]) -> dict[str, list[ItemLevel]]:
        """SKU -> the inventory items carrying exactly that SKU, with their level at the location."""
        wanted = list(dict.fromkeys(skus))
        out: dict[str, list[ItemLevel]] = {}
        for part in chunks(wanted, LOOKUP_BATCH):
            names = set(part)
            after: str | None = None
            for _ in range(20):
                variables = {
                    "query": sku_search(part),
                    "first": min(250, 2 * len(part)),
                    "after": after,
                    "locationId": self.location,
                }
                data = self._gql.call(INVENTORY_ITEMS_BY_SKU, variables)
                connection = _object(data.get("inventoryItems"))
                for node in map(_object, _list(connection.get("nodes"))):
                    sku = node.get("sku")
                    if not isinstance(sku, str) or sku not in names:
                        continue
                    out.setdefault(sku, []).append(_level(node))
                page = _object(connection.get("pageInfo"))
                after = page.get("endCursor") if page.get("hasNextPage") is True else None
                if not isinstance(after, str):
                    break
        return out

    # -- writes ----------------------------------------------------------------------------------

    def _write(self, writes: list[tuple[StockItem, str, int]], *, retries: int) -> list[StockOutcome]:
        if not writes:
            return []
        quantities = [
            {
                "inventoryItemId": ref,
                "locationId": self.location,
                "quantity": item.target,
                "changeFromQuantity": current,
            }
            for item, ref, current in writes
        ]
        payload = {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": REFERENCE_DOCUMENT.format(channel=self.channel.id),
            "quantities": quantities,
        }
        errors = self._mutate(payload)
        if not errors:
            return [StockOutcome(item.sku, StockStatus.SET, item.target, ref) for item, ref, _ in writes]
        # Shopify applied none of them: sort out the refused items, send the rest again.
        refused: dict[int, tuple[str, str]] = {}
        general: list[str] = []
        for error in errors:
            index = _quantity_index(error.get("field"), len(writes))
            code, message = str(error.get("code") or ""), _truncate(str(error.get("message") or ""))
            if index is None:
                general.append(f"{code or 'error'}: {message}")
            else:
                refused[index] = (code, message)
        if general and not refused:
            raise PushError(
                "user_errors",
                f"Shopify refused inventorySetQuantities for channel {self.channel.id}: {'; '.join(general)}",
                retryable=False,
            )
        outcomes: list[StockOutcome] = []
        stale = [writes[i] for i, (code, _) in refused.items() if code == "CHANGE_FROM_QUANTITY_STALE"]
        if stale:
            now = self.lookup(item.sku for item, _, _ in stale)
            for item, _ref, _ in stale:
                found = now.get(item.sku, [])
                problem = _problem(item.sku, found, self.location)
                if problem is not None:
                    outcomes.append(problem)
                    continue
                observed = found[0].available
                status = StockStatus.UNCHANGED if observed == item.target else StockStatus.STALE
                outcomes.append(StockOutcome(item.sku, status, observed, found[0].item_id))
        for index, (code, message) in refused.items():
            if code == "CHANGE_FROM_QUANTITY_STALE":
                continue
            item, ref, _ = writes[index]
            outcomes.append(StockOutcome(item.sku, _status_for(code), None, ref, detail=f"{code}: {message}"))
        rest = [w for i, w in enumerate(writes) if i not in refused]
        if rest and retries > 0:
            outcomes.extend(self._write(rest, retries=retries - 1))
        else:
            # Not sent again: the next cycle reads them afresh.
            outcomes.extend(StockOutcome(item.sku, StockStatus.STALE, None, ref) for item, ref, _ in rest)
        return outcomes

    def _mutate(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Send the mutation; Shopify's user errors (empty: done). Key trouble is handled here."""
        salt = ""
        for _ in range(3):
            variables = {"input": payload, "idempotencyKey": idempotency_key(self.channel.id, payload, salt)}
            data = self._gql.call(INVENTORY_SET_QUANTITIES, variables)
            result = _object(data.get("inventorySetQuantities"))
            errors = [_object(e) for e in _list(result.get("userErrors"))]
            codes = {str(e.get("code") or "") for e in errors}
            if "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED" in codes:
                salt = uuid.uuid4().hex  # that key is spent: the same write with a new one
                continue
            if "IDEMPOTENCY_CONCURRENT_REQUEST" in codes:
                raise PushError("busy", "Shopify is still running the same inventory change", retry_after=5.0)
            if not errors and result.get("inventoryAdjustmentGroup") is None:
                log.info("shopify inventory: channel=%s nothing to adjust", self.channel.id)
            return errors
        raise PushError("idempotency", "Shopify refused three idempotency keys for one inventory change")


# --------------------------------------------------------------------------------------------
# Parsing helpers


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _level(node: dict[str, Any]) -> ItemLevel:
    item_id = node.get("id")
    if not isinstance(item_id, str):
        raise PushError("bad_answer", f"unexpected answer from Shopify to {INVENTORY_ITEMS_BY_SKU.name}")
    level = node.get("inventoryLevel")
    available = None
    if isinstance(level, dict):
        for quantity in map(_object, _list(level.get("quantities"))):
            if quantity.get("name") == "available" and isinstance(quantity.get("quantity"), int):
                available = int(quantity["quantity"])
    return ItemLevel(
        item_id=item_id,
        tracked=node.get("tracked") is True,
        stocked=isinstance(level, dict) and available is not None,
        available=available,
    )


def _problem(sku: str, found: list[ItemLevel], location: str) -> StockOutcome | None:
    if not found:
        return StockOutcome(sku, StockStatus.MISSING, detail="no Shopify product variant has this SKU")
    if len(found) > 1:
        return StockOutcome(
            sku, StockStatus.DUPLICATE, detail=f"{len(found)} Shopify inventory items carry this SKU"
        )
    level = found[0]
    if not level.tracked:
        return StockOutcome(
            sku, StockStatus.UNMANAGED, ref=level.item_id, detail="Shopify does not track this item's stock"
        )
    if not level.stocked:
        return StockOutcome(
            sku,
            StockStatus.NOT_STOCKED,
            ref=level.item_id,
            detail=f"the item is not stocked at the Amazon location {location}",
        )
    return None


def _quantity_index(field: Any, size: int) -> int | None:
    """The index of `input.quantities[i]` a user error names, if any."""
    path = [str(p) for p in _list(field)]
    if len(path) >= 3 and path[0] == "input" and path[1] == "quantities" and path[2].isdigit():
        index = int(path[2])
        return index if index < size else None
    return None


def _status_for(code: str) -> StockStatus:
    return {
        "ITEM_NOT_STOCKED_AT_LOCATION": StockStatus.NOT_STOCKED,
        "INVALID_INVENTORY_ITEM": StockStatus.MISSING,
        "NON_MUTABLE_INVENTORY_ITEM": StockStatus.UNMANAGED,
    }.get(code, StockStatus.ERROR)
