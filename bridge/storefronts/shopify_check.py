"""Read-only Shopify look-ups for `fba-bridge check channel`: which shop the token reaches, which
access scopes the app was granted, and which webhook subscriptions the app made through the API.

The look-ups go through the push-back's own GraphQL transport (`ShopifyPusher`), so the check
sees exactly what the push-back will see: the same endpoint, headers, destination checks,
throttling and error mapping. Nothing here writes to the shop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .shopify_push import GraphQLOperation, ShopifyPusher

SHOP_AND_SCOPES = GraphQLOperation(
    """
query BridgeCheckShopAndScopes {
  shop {
    myshopifyDomain
  }
  currentAppInstallation {
    accessScopes {
      handle
    }
  }
}
""".strip(),
    estimated_cost=3,
)

WEBHOOK_SUBSCRIPTIONS = GraphQLOperation(
    """
query BridgeCheckWebhookSubscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes {
      topic
      uri
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
""".strip(),
    estimated_cost=103,
)

OPERATIONS: tuple[GraphQLOperation, ...] = (SHOP_AND_SCOPES, WEBHOOK_SUBSCRIPTIONS)

MAX_SUBSCRIPTION_PAGES = 10


@dataclass(frozen=True)
class ShopAccess:
    domain: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class WebhookSubscription:
    topic: str  # e.g. ORDERS_CREATE
    uri: str


class ShopifyLookups(ShopifyPusher):
    """A `ShopifyPusher` that only reads: its transport, nothing of its push-back."""

    def shop_access(self) -> ShopAccess:
        data = self._call(SHOP_AND_SCOPES, {})
        shop: Any = data.get("shop")
        shop = shop if isinstance(shop, dict) else {}
        installation = data.get("currentAppInstallation")
        scopes = installation.get("accessScopes") if isinstance(installation, dict) else None
        handles = {
            str(s.get("handle"))
            for s in (scopes if isinstance(scopes, list) else [])
            if isinstance(s, dict) and s.get("handle")
        }
        return ShopAccess(str(shop.get("myshopifyDomain") or ""), frozenset(handles))

    def webhook_subscriptions(self) -> list[WebhookSubscription]:
        found: list[WebhookSubscription] = []
        after: str | None = None
        for _ in range(MAX_SUBSCRIPTION_PAGES):
            data = self._call(WEBHOOK_SUBSCRIPTIONS, {"after": after})
            connection: Any = data.get("webhookSubscriptions")
            connection = connection if isinstance(connection, dict) else {}
            for node in connection.get("nodes") or []:
                if isinstance(node, dict):
                    found.append(
                        WebhookSubscription(str(node.get("topic") or ""), str(node.get("uri") or ""))
                    )
            page = connection.get("pageInfo") if isinstance(connection.get("pageInfo"), dict) else {}
            after = page.get("endCursor") if page.get("hasNextPage") else None
            if not after:
                break
        return found
