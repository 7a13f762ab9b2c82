"""WooCommerce stock: `stock_quantity` of the products and variations carrying each SKU (REST v3).

- Read: `GET /wp-json/wc/v3/products?sku=A,B,...&per_page=100` (WooCommerce searches variations
  too when `sku` is given, each with its `parent_id`). A SKU holding a comma is asked for alone:
  WooCommerce splits the parameter at commas. Only exact SKU matches count.
- Only a product or variation that manages its own stock (`manage_stock: true`) is written;
  `false` (or a variation inheriting its parent's stock, `"parent"`) is UNMANAGED.
- Write: `POST /products/batch` `{"update": [{"id", "stock_quantity"}]}` for products, and
  `POST /products/<parent>/variations/batch` for variations, at most 100 per request; each item
  of the answer says whether it was applied (an item with `error` was not).

WooCommerce has no compare-and-swap, so every write is preceded by a read of the same items: an
item whose quantity moved since the bridge last saw it (a sale WooCommerce already took off) is
not written but answered STALE with its new value; an item already at its target is UNCHANGED.
What is left unguarded is the moment between that read and the write. The writes themselves set
absolute values, so repeating one after a lost answer changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..channels import Channel
from ..clock import Clock
from .inventory import StockItem, StockOutcome, StockStatus, chunks
from .push import PushError, StorefrontHttp

log = logging.getLogger(__name__)

WC_API = "/wp-json/wc/v3"
PAGE_SIZE = 100
BATCH_LIMIT = 100  # WooCommerce refuses batches of more than 100 objects
MAX_PAGES = 50
FIELDS = "id,sku,type,parent_id,manage_stock,stock_quantity"


@dataclass(frozen=True)
class WooProduct:
    id: int
    sku: str
    parent_id: int  # 0 for a product, the parent product for a variation
    manage_stock: Any  # True, False, or "parent" for a variation following its parent
    stock_quantity: int | None

    @property
    def is_variation(self) -> bool:
        return self.parent_id > 0


class WooCommerceStock:
    """`StockPusher` for a WooCommerce channel. Safe to share between threads."""

    platform = "woocommerce"
    batch_size = BATCH_LIMIT

    def __init__(self, channel: Channel, clock: Clock, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self._http = StorefrontHttp(channel, clock, transport)
        self._auth = httpx.BasicAuth(
            channel.storefront.consumer_key.reveal(), channel.storefront.consumer_secret.reveal()
        )
        self._base = channel.storefront.base_url.rstrip("/")

    def close(self) -> None:
        self._http.close()

    def set_stock(self, items: Sequence[StockItem], *, reread: bool = False) -> list[StockOutcome]:
        found = self.lookup(item.sku for item in items)
        outcomes: list[StockOutcome] = []
        products: list[tuple[StockItem, WooProduct]] = []
        variations: dict[int, list[tuple[StockItem, WooProduct]]] = {}
        for item in items:
            matches = found.get(item.sku, [])
            problem = _problem(item.sku, matches)
            if problem is not None:
                outcomes.append(problem)
                continue
            product = matches[0]
            ref, parent = str(product.id), str(product.parent_id or "")
            current = product.stock_quantity
            if current == item.target:
                outcomes.append(StockOutcome(item.sku, StockStatus.UNCHANGED, current, ref, parent))
            elif item.expected is not None and current != item.expected:
                outcomes.append(StockOutcome(item.sku, StockStatus.STALE, current, ref, parent))
            elif product.is_variation:
                variations.setdefault(product.parent_id, []).append((item, product))
            else:
                products.append((item, product))
        for part in chunks(products, BATCH_LIMIT):
            outcomes.extend(self._batch(f"{self._base}{WC_API}/products/batch", part))
        for parent_id, group in variations.items():
            url = f"{self._base}{WC_API}/products/{parent_id}/variations/batch"
            for part in chunks(group, BATCH_LIMIT):
                outcomes.extend(self._batch(url, part))
        return outcomes

    # -- reads -----------------------------------------------------------------------------------

    def lookup(self, skus: Iterable[str]) -> dict[str, list[WooProduct]]:
        """SKU -> the products and variations carrying exactly that SKU."""
        wanted = list(dict.fromkeys(skus))
        plain = [s for s in wanted if "," not in s]
        queries = [",".join(part) for part in chunks(plain, PAGE_SIZE)] + [s for s in wanted if "," in s]
        out: dict[str, list[WooProduct]] = {}
        names = set(wanted)
        for query in queries:
            for page in range(1, MAX_PAGES + 1):
                response = self._request(
                    "GET",
                    f"{self._base}{WC_API}/products",
                    idempotent=True,
                    params={"sku": query, "per_page": PAGE_SIZE, "page": page, "_fields": FIELDS},
                )
                for row in _rows(response):
                    product = _product(row)
                    if product is not None and product.sku in names:
                        if all(p.id != product.id for p in out.get(product.sku, [])):
                            out.setdefault(product.sku, []).append(product)
                if page >= _total_pages(response):
                    break
        return out

    # -- writes ----------------------------------------------------------------------------------

    def _batch(self, url: str, part: Sequence[tuple[StockItem, WooProduct]]) -> list[StockOutcome]:
        body = {"update": [{"id": product.id, "stock_quantity": item.target} for item, product in part]}
        response = self._request("POST", url, idempotent=True, json=body)
        answered = {}
        for row in _list(_json(response).get("update") if isinstance(_json(response), dict) else None):
            if isinstance(row, dict) and isinstance(row.get("id"), int):
                answered[row["id"]] = row
        outcomes = []
        for item, product in part:
            ref, parent = str(product.id), str(product.parent_id or "")
            row = answered.get(product.id)
            if row is None:
                outcomes.append(
                    StockOutcome(
                        item.sku, StockStatus.STALE, None, ref, parent, "not in WooCommerce's answer"
                    )
                )
            elif isinstance(row.get("error"), dict):
                error = row["error"]
                detail = f"{error.get('code', 'error')}: {str(error.get('message', ''))[:200]}"
                outcomes.append(StockOutcome(item.sku, StockStatus.ERROR, None, ref, parent, detail))
            else:
                quantity = row.get("stock_quantity")
                applied = quantity if isinstance(quantity, int) else item.target
                status = StockStatus.SET if applied == item.target else StockStatus.STALE
                outcomes.append(StockOutcome(item.sku, status, applied, ref, parent))
        return outcomes

    def _request(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        return self._http.request(method, url, idempotent=idempotent, auth=self._auth, **kwargs)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PushError(
            "unexpected_answer",
            "WooCommerce answered something that is not JSON; check storefront.base_url and that the "
            "site's REST API is reachable at /wp-json/",
            status=response.status_code,
        ) from None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _rows(response: httpx.Response) -> list[dict[str, Any]]:
    data = _json(response)
    if not isinstance(data, list):
        raise PushError("unexpected_answer", "WooCommerce answered the product search with something else")
    return [row for row in data if isinstance(row, dict)]


def _total_pages(response: httpx.Response) -> int:
    try:
        return max(1, int(response.headers.get("X-WP-TotalPages", "1")))
    except ValueError:
        return 1


def _product(row: dict[str, Any]) -> WooProduct | None:
    product_id, sku = row.get("id"), row.get("sku")
    if not isinstance(product_id, int) or not isinstance(sku, str) or not sku:
        return None
    quantity = row.get("stock_quantity")
    parent = row.get("parent_id")
    return WooProduct(
        id=product_id,
        sku=sku,
        parent_id=parent if isinstance(parent, int) else 0,
        manage_stock=row.get("manage_stock"),
        stock_quantity=quantity if isinstance(quantity, int) else None,
    )


def _problem(sku: str, matches: list[WooProduct]) -> StockOutcome | None:
    if not matches:
        return StockOutcome(
            sku, StockStatus.MISSING, detail="no WooCommerce product or variation has this SKU"
        )
    if len(matches) > 1:
        return StockOutcome(
            sku, StockStatus.DUPLICATE, detail=f"{len(matches)} WooCommerce products carry this SKU"
        )
    product = matches[0]
    ref, parent = str(product.id), str(product.parent_id or "")
    if product.manage_stock is not True:
        why = (
            "the variation takes its stock from its parent product"
            if product.manage_stock == "parent"
            else "the product does not manage stock (Inventory: Manage stock? is off)"
        )
        return StockOutcome(sku, StockStatus.UNMANAGED, product.stock_quantity, ref, parent, why)
    return None
