"""WooCommerce's changed orders (REST v3), and its webhooks' state, for the reconciliation pass.

What a caller may rely on:

- `WooCommerceOrders.changed(since)` reads `GET /wp-json/wc/v3/orders?modified_after=<since>
  &dates_are_gmt=true&orderby=id&order=asc&per_page=100&page=N` until a page comes back short
  (or `X-WP-TotalPages` says it was the last). Sorting by id, not by modification date, keeps
  the offset pages stable while orders change during the walk: a change can only add an order
  to the result (read twice at worst), never move one past the page being read.
- Each order is yielded as the body of the `order.updated` webhook that would carry it (the REST
  order is the webhook body), so intake parses it with the webhook adapter.
- `webhooks()` lists the store's webhooks (`GET /webhooks`) whose delivery URL ends in
  `/webhooks/<channel id>`: WooCommerce sets a webhook to `disabled` after 5 failed deliveries
  in a row and never retries a delivery, so this is what tells the operator events are lost.
- Failures propagate as `PushError` (from `StorefrontHttp`); no credentials or personal data in
  any message. `calls` counts the requests made.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..channels import Channel
from ..clock import Clock
from .push import PushError, StorefrontHttp
from .reconcile import ListedOrder, WebhookState

WC_API = "/wp-json/wc/v3"
PER_PAGE = 100
MAX_PAGES = 10_000


class WooCommerceOrders:
    def __init__(self, channel: Channel, clock: Clock, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self._http = StorefrontHttp(channel, clock, transport)
        self._auth = httpx.BasicAuth(
            channel.storefront.consumer_key.reveal(), channel.storefront.consumer_secret.reveal()
        )
        self._base = channel.storefront.base_url.rstrip("/")
        self.calls = 0

    def changed(self, since: datetime) -> Iterator[ListedOrder]:
        after = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        for page in range(1, MAX_PAGES + 1):
            response = self._get(
                "/orders",
                {
                    "modified_after": after,
                    "dates_are_gmt": "true",
                    "orderby": "id",
                    "order": "asc",
                    "per_page": PER_PAGE,
                    "page": page,
                },
            )
            orders = _json_list(response)
            for order in orders:
                if isinstance(order, dict) and order.get("id") is not None:
                    yield ListedOrder(
                        external_id=str(order["id"]),
                        topic="order.updated",
                        body=json.dumps(order, separators=(",", ":")).encode(),
                        updated_at=str(order.get("date_modified_gmt") or ""),
                    )
            total_pages = _int(response.headers.get("X-WP-TotalPages"))
            if len(orders) < PER_PAGE or (total_pages is not None and page >= total_pages):
                return
        raise PushError(
            "too_large", f"WooCommerce: more than {MAX_PAGES} pages of changed orders", retryable=False
        )

    def webhooks(self) -> list[WebhookState]:
        found: list[WebhookState] = []
        for hook in _json_list(self._get("/webhooks", {"per_page": 100})):
            if not isinstance(hook, dict):
                continue
            url = str(hook.get("delivery_url") or "")
            if urlsplit(url).path.rstrip("/").endswith(f"/webhooks/{self.channel.id}"):
                found.append(WebhookState(str(hook.get("topic") or ""), str(hook.get("status") or ""), url))
        return found

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        self.calls += 1
        return self._http.request(
            "GET", f"{self._base}{WC_API}{path}", idempotent=True, auth=self._auth, params=params
        )


def _json_list(response: httpx.Response) -> list[Any]:
    try:
        data = response.json()
    except ValueError:
        raise PushError(
            "bad_answer", "WooCommerce answered something that is not JSON; check storefront.base_url"
        ) from None
    if not isinstance(data, list):
        raise PushError("bad_answer", "WooCommerce answered a listing that is not a JSON array")
    return data


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
