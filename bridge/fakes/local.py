"""Fake shops on loopback for `fba-bridge run --with-fakes` and `fba-bridge demo`.

The example channels file reads its storefront addresses from `SHOP_A_URL`, `WOO_URL` and
`OWN_SHOP_CALLBACK_URL`; `LocalShops.env()` gives those variables for the running fakes, so the
bridge's push-back reaches them unchanged. The fakes take the credentials the channels file
names, so a wrong token fails here as it would against a real shop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from ..amazon.simulator.server import RunningServer, serve_in_thread
from ..channels import Channel, ChannelsConfig
from ..store import OrderRecord, read_session
from .generic import FakeGenericReceiver, create_fake_generic_app
from .shopify import FakeShopify, OrderSource, create_fake_shopify_app
from .woocommerce import FakeWooCommerce, create_fake_woocommerce_app

GENERIC_PATH = "/fba-bridge/events"


@dataclass
class LocalShops:
    shopify: FakeShopify
    woocommerce: FakeWooCommerce
    generic: FakeGenericReceiver
    servers: dict[str, RunningServer]

    def env(self) -> dict[str, str]:
        """The variables the example channels file reads its storefront addresses from."""
        return {
            "SHOP_A_URL": self.servers["shopify"].base_url,
            "WOO_URL": self.servers["woocommerce"].base_url,
            "OWN_SHOP_CALLBACK_URL": self.servers["generic"].base_url + GENERIC_PATH,
        }

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def start_local_shops(
    *,
    shopify_token: str,
    woo_key: str,
    woo_secret: str,
    generic_secret: str,
    shopify_orders: OrderSource | None = None,
    host: str = "127.0.0.1",
) -> LocalShops:
    """Serve the three fakes on free loopback ports. WooCommerce orders exist on demand; Shopify
    orders are seeded by the caller, or on first sight by `shopify_orders`."""
    shopify = FakeShopify(shopify_token, order_source=shopify_orders)
    woo = FakeWooCommerce(woo_key, woo_secret, auto_create_orders=True)
    receiver = FakeGenericReceiver(generic_secret)
    servers: dict[str, RunningServer] = {}
    try:
        servers["shopify"] = serve_in_thread(create_fake_shopify_app(shopify), host)
        servers["woocommerce"] = serve_in_thread(create_fake_woocommerce_app(woo), host)
        servers["generic"] = serve_in_thread(create_fake_generic_app(receiver), host)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return LocalShops(shopify, woo, receiver, servers)


def shops_for(config: ChannelsConfig, engine: Engine) -> LocalShops:
    """Fakes with the credentials of the config's first channel of each platform; the fake Shopify
    knows every order the bridge stored for a Shopify channel (read from its database)."""
    first: dict[str, Channel] = {}
    for channel in config.channels.values():
        first.setdefault(channel.platform, channel)
    shopify, woo, generic = first.get("shopify"), first.get("woocommerce"), first.get("generic")
    shopify_ids = [c.id for c in config.channels.values() if c.platform == "shopify"]
    return start_local_shops(
        shopify_token=shopify.storefront.access_token.reveal() if shopify else "",
        woo_key=woo.storefront.consumer_key.reveal() if woo else "",
        woo_secret=woo.storefront.consumer_secret.reveal() if woo else "",
        generic_secret=generic.storefront.callback_secret.reveal() if generic else "",
        shopify_orders=stored_order_lines(engine, shopify_ids),
    )


def stored_order_lines(engine: Engine, channel_ids: Sequence[str]) -> OrderSource:
    """An `OrderSource` answering from the bridge's database: the order's lines as it stored them."""

    def lines(order_id: str) -> list[tuple[str, str | None, int]] | None:
        with read_session(engine) as session:
            row = (
                session.execute(
                    select(OrderRecord).where(
                        col(OrderRecord.channel_id).in_(list(channel_ids)),
                        col(OrderRecord.external_id) == order_id,
                    )
                )
                .scalars()
                .first()
            )
        if row is None:
            return None
        return [(line.line_id, line.sku or None, line.quantity) for line in row.canonical().lines]

    return lines
