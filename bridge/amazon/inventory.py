"""FBA Inventory v1 `getInventorySummaries`: how many units Amazon can ship, per seller SKU.

The bridge reads one number per SKU: `inventoryDetails.fulfillableQuantity` (sellable now, not
inbound, reserved or damaged). Three ways to ask, all at marketplace granularity with
`details=true` (without it Amazon leaves `inventoryDetails` out):

- `changed_since(marketplace, since)`: summaries whose quantities changed after `since`
  (`startDateTime`). Amazon ignores `sellerSkus` then, and wants `startDateTime` repeated with
  every `nextToken` (a `nextToken` alone has been an error since October 2022). Amazon documents
  that some changes (inbound quantities) are not reported this way, so a caller must sweep now
  and then.
- `for_skus(marketplace, skus)`: the named SKUs, 50 per request (`sellerSkus`, comma-joined).
  Amazon cannot tell a comma inside a SKU from the separator, so a SKU holding a comma is asked
  for alone with `sellerSku`.
- `all(marketplace)`: every summary of the seller (no filter).

Pages are followed through `pagination.nextToken` (it expires 30 s after Amazon issues it, so
pages are fetched back to back). The operation has its own usage plan (2 requests/s, burst 2),
metered in the shared rate buckets under its operation name like every other SP-API call; auth,
retries, circuit breaking and error mapping are the `SpApiClient`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .models import _int, _obj, _objs, _str, format_timestamp, parse_timestamp
from .spapi import Operation, SpApiClient, SpApiResponse, unexpected

GET_INVENTORY_SUMMARIES = Operation(
    "getInventorySummaries", "GET", "/fba/inventory/v1/summaries", idempotent=True
)

#: `sellerSkus` takes at most 50 SKUs (the model's `maxItems`).
MAX_SKUS_PER_REQUEST = 50
_MAX_PAGES = 10_000


@dataclass(frozen=True)
class InventorySummary:
    """One SKU's quantities in one marketplace, as Amazon reports them."""

    seller_sku: str
    fulfillable: int
    total: int
    reserved: int = 0
    inbound: int = 0
    unfulfillable: int = 0
    fnsku: str | None = None
    asin: str | None = None
    condition: str | None = None
    last_updated: datetime | None = None

    @classmethod
    def from_api(cls, data: Any) -> InventorySummary:
        if not isinstance(data, Mapping):
            raise TypeError("an inventory summary must be an object")
        sku = _str(data.get("sellerSku"))
        if not sku:
            raise ValueError("an inventory summary without sellerSku")
        details = _obj(data.get("inventoryDetails"))
        inbound = sum(
            _int(details.get(k))
            for k in ("inboundWorkingQuantity", "inboundShippedQuantity", "inboundReceivingQuantity")
        )
        return cls(
            seller_sku=sku,
            fulfillable=max(0, _int(details.get("fulfillableQuantity"))),
            total=max(0, _int(data.get("totalQuantity"))),
            reserved=_int(_obj(details.get("reservedQuantity")).get("totalReservedQuantity")),
            inbound=inbound,
            unfulfillable=_int(_obj(details.get("unfulfillableQuantity")).get("totalUnfulfillableQuantity")),
            fnsku=_str(data.get("fnSku")),
            asin=_str(data.get("asin")),
            condition=_str(data.get("condition")),
            last_updated=parse_timestamp(data.get("lastUpdatedTime")),
        )


@dataclass(frozen=True)
class InventoryPage:
    summaries: tuple[InventorySummary, ...]
    next_token: str | None


def parse_page(body: Any) -> InventoryPage:
    """`{"payload": {"granularity", "inventorySummaries"}, "pagination": {"nextToken"}}`."""
    if not isinstance(body, Mapping):
        raise TypeError("the answer must be an object")
    payload = body.get("payload")
    if not isinstance(payload, Mapping):
        raise KeyError("payload")
    rows = payload.get("inventorySummaries")
    if not isinstance(rows, list):
        raise KeyError("inventorySummaries")
    token = _str(_obj(body.get("pagination")).get("nextToken"))
    return InventoryPage(tuple(InventorySummary.from_api(r) for r in _objs(rows)), token or None)


def base_query(marketplace_id: str) -> dict[str, str]:
    """What every request carries: marketplace granularity, with the details Amazon omits by default."""
    if not marketplace_id:
        raise ValueError("a marketplace id is required")
    return {
        "details": "true",
        "granularityType": "Marketplace",
        "granularityId": marketplace_id,
        "marketplaceIds": marketplace_id,
    }


def sku_queries(skus: Iterable[str]) -> list[dict[str, str]]:
    """The SKU part of each request: up to 50 SKUs per `sellerSkus`, a SKU with a comma alone."""
    plain: list[str] = []
    out: list[dict[str, str]] = []
    for sku in dict.fromkeys(s for s in skus if s):
        if "," in sku:
            out.append({"sellerSku": sku})
        else:
            plain.append(sku)
    for start in range(0, len(plain), MAX_SKUS_PER_REQUEST):
        out.append({"sellerSkus": ",".join(plain[start : start + MAX_SKUS_PER_REQUEST])})
    return out


class FbaInventory:
    """The FBA Inventory operations for one Amazon account (shares the account's `SpApiClient`)."""

    op = GET_INVENTORY_SUMMARIES

    def __init__(self, client: SpApiClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"FbaInventory({self.client!r})"

    def changed_since(self, marketplace_id: str, since: datetime) -> Iterator[InventorySummary]:
        """Every SKU whose quantities changed after `since`, across all pages."""
        query = {**base_query(marketplace_id), "startDateTime": format_timestamp(since)}
        yield from self._pages(query)

    def for_skus(self, marketplace_id: str, skus: Iterable[str]) -> Iterator[InventorySummary]:
        """The summaries of `skus` (a SKU Amazon does not know is simply absent)."""
        for part in sku_queries(skus):
            yield from self._pages({**base_query(marketplace_id), **part})

    def all(self, marketplace_id: str) -> Iterator[InventorySummary]:
        yield from self._pages(base_query(marketplace_id))

    def _pages(self, query: dict[str, str]) -> Iterator[InventorySummary]:
        params = dict(query)
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            response = self.client.call(self.op, params=params)
            page = self._parse(response)
            yield from page.summaries
            if not page.next_token:
                return
            if page.next_token in seen:
                raise unexpected(self.op, "nextToken repeats an earlier page", response.request_id)
            seen.add(page.next_token)
            # Every filter is repeated with the token: Amazon requires it for startDateTime.
            params = {**query, "nextToken": page.next_token}
        raise unexpected(self.op, f"more than {_MAX_PAGES} pages")

    def _parse(self, response: SpApiResponse) -> InventoryPage:
        try:
            return parse_page(response.body)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise unexpected(self.op, type(exc).__name__, response.request_id) from exc

    def close(self) -> None:
        """The client belongs to the account's outbound client; closing that closes it."""
