"""Which adapter serves a channel's `platform`: the one place that knows every platform module.

The web layer asks `adapter_for(channel.platform)`; the channels schema already limits
`platform` to the names registered here, so `UnknownPlatform` means the two drifted apart.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import httpx

from ..channels import Channel
from ..clock import Clock
from ..orders import OrderRisk
from . import generic, shopify, woocommerce
from .assignment import FulfillmentAssignments
from .base import StorefrontAdapter
from .inventory import StockPusher
from .push import StorefrontPusher
from .reconcile import OrderLister
from .shopify_graphql import CostBudget


@runtime_checkable
class RiskSource(Protocol):
    def order_risk(self, order_external_id: str) -> OrderRisk: ...


class UnknownPlatform(LookupError):
    def __init__(self, platform: str) -> None:
        super().__init__(
            f"no storefront adapter for platform {platform!r}; use one of: {', '.join(sorted(ADAPTERS))}"
        )
        self.platform = platform


ADAPTERS: Mapping[str, StorefrontAdapter] = MappingProxyType(
    {adapter.platform: adapter for adapter in (shopify.adapter, woocommerce.adapter, generic.adapter)}
)


def adapter_for(platform: str) -> StorefrontAdapter:
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise UnknownPlatform(platform) from None


def make_pusher(
    channel: Channel,
    clock: Clock,
    transport: httpx.BaseTransport | None = None,
    cost_budget: CostBudget | None = None,
) -> StorefrontPusher:
    """The push-back side of a channel's platform (one instance per channel and process); a
    Shopify channel's calls draw on `cost_budget` (the shop's bucket shared by every worker)."""
    from .generic_push import GenericPusher
    from .shopify_push import ShopifyPusher
    from .woocommerce_push import WooCommercePusher

    pushers: dict[str, type[ShopifyPusher] | type[WooCommercePusher] | type[GenericPusher]] = {
        "shopify": ShopifyPusher,
        "woocommerce": WooCommercePusher,
        "generic": GenericPusher,
    }
    if channel.platform not in pushers:
        raise UnknownPlatform(channel.platform)
    if channel.platform == "shopify":
        return ShopifyPusher(channel, clock, transport, cost_budget)
    return pushers[channel.platform](channel, clock, transport)


def make_stock_pusher(
    channel: Channel, clock: Clock, transport: httpx.BaseTransport | None, pusher: StorefrontPusher
) -> StockPusher:
    """The inventory side of a channel's platform. Shopify's shares the channel's push-back pusher
    (one cost bucket per shop)."""
    from .generic_inventory import GenericStock
    from .shopify_inventory import ShopifyStock
    from .shopify_push import ShopifyPusher
    from .woocommerce_inventory import WooCommerceStock

    if channel.platform == "shopify":
        assert isinstance(pusher, ShopifyPusher)
        return ShopifyStock(channel, pusher)
    if channel.platform == "woocommerce":
        return WooCommerceStock(channel, clock, transport)
    if channel.platform == "generic":
        return GenericStock(channel, clock, transport)
    raise UnknownPlatform(channel.platform)


class Storefronts:
    """Pushers by channel, created on first use and reused (they hold HTTP connection pools).
    `cost_budget`: Shopify cost buckets shared with the other workers (`pipeline/shop_budget.py`)."""

    def __init__(
        self,
        clock: Clock,
        transports: Mapping[str, httpx.BaseTransport] | None = None,
        cost_budget: CostBudget | None = None,
    ) -> None:
        self._clock = clock
        self._cost_budget = cost_budget
        self._transports = dict(transports or {})
        self._pushers: dict[str, StorefrontPusher] = {}
        self._channels: dict[str, Channel] = {}
        self._stock: dict[str, StockPusher] = {}
        self._orders: dict[str, OrderLister] = {}
        self._lock = threading.Lock()

    def orders_for(self, channel: Channel) -> OrderLister:
        """The channel's order listing (reconciliation). Shopify's shares the push-back's GraphQL
        client, so one cost bucket per shop is respected by both."""
        from .shopify_orders import ShopifyOrders
        from .shopify_push import ShopifyPusher
        from .woocommerce_orders import WooCommerceOrders

        if channel.platform == "shopify":
            pusher = self.for_channel(channel)
            assert isinstance(pusher, ShopifyPusher)
            return ShopifyOrders(pusher.graphql)
        if channel.platform != "woocommerce":
            raise UnknownPlatform(channel.platform)
        with self._lock:
            lister = self._orders.get(channel.id)
            if lister is None or getattr(lister, "channel", None) != channel:
                if lister is not None:
                    lister.close()
                lister = WooCommerceOrders(channel, self._clock, self._transports.get(channel.id))
                self._orders[channel.id] = lister
            return lister

    def stock_for(self, channel: Channel) -> StockPusher:
        """The channel's stock writer (inventory sync), created on first use."""
        pusher = self.for_channel(channel)
        with self._lock:
            if channel.id not in self._stock:
                self._stock[channel.id] = make_stock_pusher(
                    channel, self._clock, self._transports.get(channel.id), pusher
                )
            return self._stock[channel.id]

    def for_channel(self, channel: Channel) -> StorefrontPusher:
        """The channel's pusher; a changed channel definition gets a new one."""
        with self._lock:
            if self._channels.get(channel.id) != channel:
                old = self._pushers.pop(channel.id, None)
                if old is not None:
                    old.close()
                self._pushers[channel.id] = make_pusher(
                    channel, self._clock, self._transports.get(channel.id), self._cost_budget
                )
                self._channels[channel.id] = channel
            return self._pushers[channel.id]

    def assignments(self, channel: Channel) -> FulfillmentAssignments | None:
        """What the channel's storefront assigns to Amazon (Shopify's fulfillment orders), on the
        pusher's connection; None for platforms that do not split orders."""
        found = getattr(self.for_channel(channel), "assignments", None)
        return found if isinstance(found, FulfillmentAssignments) else None

    def risk(self, channel: Channel) -> RiskSource | None:
        """Where the channel's storefront says how risky an order is (Shopify), or None."""
        found = getattr(self.for_channel(channel), "risk", None)
        return found if isinstance(found, RiskSource) else None

    def close(self) -> None:
        for lister in self._orders.values():
            lister.close()
        for stock in self._stock.values():
            stock.close()
        for pusher in self._pushers.values():
            pusher.close()
