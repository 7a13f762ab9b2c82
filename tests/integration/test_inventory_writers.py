"""Each platform's stock writer against its fake storefront over httpx: lookups, compare-and-swap,
batching, idempotency and the cases an operator must hear about."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from bridge.channels import Channel, ChannelsConfig, InventoryConfig
from bridge.clock import ManualClock
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.fakes.shopify import DEFAULT_LOCATION, FakeShopify, create_fake_shopify_app
from bridge.fakes.woocommerce import FakeProduct, FakeWooCommerce, create_fake_woocommerce_app
from bridge.storefronts.generic_inventory import GenericStock
from bridge.storefronts.inventory import StockItem, StockOutcome, StockStatus
from bridge.storefronts.push import PushError
from bridge.storefronts.shopify_inventory import (
    INVENTORY_SET_QUANTITIES,
    ShopifyStock,
    idempotency_key,
    sku_search,
)
from bridge.storefronts.shopify_push import ShopifyPusher
from bridge.storefronts.woocommerce_inventory import WooCommerceStock
from tests.conftest import TEST_ENV


def by_sku(outcomes: list[StockOutcome]) -> dict[str, StockOutcome]:
    return {o.sku: o for o in outcomes}


def item(sku: str, target: int, expected: int | None = None, ref: str = "", version: int = 1) -> StockItem:
    return StockItem(sku=sku, target=target, version=version, expected=expected, ref=ref)


# --------------------------------------------------------------------------------------------
# Shopify


@pytest.fixture
def shop(clock: ManualClock, channels_config: ChannelsConfig) -> FakeShopify:
    return FakeShopify(channels_config.channels["shop-a"].storefront.access_token.reveal(), clock)


@pytest.fixture
def shopify(shop: FakeShopify, channels_config: ChannelsConfig, clock: ManualClock) -> Iterator[ShopifyStock]:
    channel = channels_config.channels["shop-a"]
    channel = replace(channel, inventory=InventoryConfig(sync=True, location=DEFAULT_LOCATION))
    pusher = ShopifyPusher(channel, clock, httpx.WSGITransport(app=create_fake_shopify_app(shop)))
    yield ShopifyStock(channel, pusher)
    pusher.close()


def test_shopify_sets_available_with_change_from_and_reports_the_unsyncable(
    shop: FakeShopify, shopify: ShopifyStock
) -> None:
    shop.inventory.add_item("A", 1)
    shop.inventory.add_item("B", 2)
    shop.inventory.add_item("TWIN", 0)
    shop.inventory.add_item("TWIN", 0)
    shop.inventory.add_item("UNTRACKED", 0, tracked=False)
    shop.inventory.add_item("ELSEWHERE", 5, location="gid://shopify/Location/2")
    shop.inventory.add_item("A-LONGER", 9)  # Shopify's search matches prefixes too
    outcomes = by_sku(
        shopify.set_stock(
            [
                item("A", 10),
                item("B", 2),
                item("TWIN", 1),
                item("UNTRACKED", 1),
                item("ELSEWHERE", 1),
                item("NONE", 1),
            ]
        )
    )
    assert (outcomes["A"].status, outcomes["A"].quantity) == (StockStatus.SET, 10)
    assert outcomes["A"].ref.startswith("gid://shopify/InventoryItem/")
    assert outcomes["B"].status is StockStatus.UNCHANGED
    assert outcomes["TWIN"].status is StockStatus.DUPLICATE
    assert outcomes["UNTRACKED"].status is StockStatus.UNMANAGED
    assert outcomes["ELSEWHERE"].status is StockStatus.NOT_STOCKED
    assert outcomes["NONE"].status is StockStatus.MISSING
    assert shop.inventory.available("A") == 10 and shop.inventory.available("A-LONGER") == 9
    [mutation] = [r for r in shop.requests if r.operation_name == INVENTORY_SET_QUANTITIES.name]
    [quantity] = mutation.variables["input"]["quantities"]
    assert quantity["changeFromQuantity"] == 1 and quantity["locationId"] == DEFAULT_LOCATION
    assert mutation.variables["input"]["name"] == "available"
    assert mutation.variables["input"]["referenceDocumentUri"] == "gid://fba-bridge/InventorySync/shop-a"


def test_shopify_sends_the_rest_again_when_one_value_moved_and_reports_that_one_stale(
    shop: FakeShopify, shopify: ShopifyStock
) -> None:
    refs = {sku: shop.inventory.add_item(sku, 5) for sku in ("A", "B", "C")}
    shop.inventory.sell("B", 2)  # a sale the bridge has not heard of
    outcomes = by_sku(shopify.set_stock([item(s, 8, expected=5, ref=refs[s]) for s in refs]))
    assert {s: (o.status, o.quantity) for s, o in outcomes.items()} == {
        "A": (StockStatus.SET, 8),
        "B": (StockStatus.STALE, 3),
        "C": (StockStatus.SET, 8),
    }
    assert (shop.inventory.available("A"), shop.inventory.available("B")) == (8, 3)
    assert shop.calls("inventorySetQuantities") == 2
    assert shop.calls("inventorySetQuantities", "ok") == 2  # the refused one applied nothing


def test_shopify_repeats_of_the_same_write_are_answered_from_the_idempotency_record(
    shop: FakeShopify, shopify: ShopifyStock
) -> None:
    ref = shop.inventory.add_item("A", 4)
    shop.accept_then_drop_next("inventorySetQuantities")
    with pytest.raises(PushError) as info:
        shopify.set_stock([item("A", 9, expected=4, ref=ref)])
    assert not info.value.ambiguous  # the key and changeFromQuantity make a repeat harmless
    [outcome] = shopify.set_stock([item("A", 9, expected=4, ref=ref)])  # same input, same key
    assert (outcome.status, shop.inventory.available("A")) == (StockStatus.SET, 9)
    assert len(shop.inventory.api_changes("A")) == 1
    keys = {
        r.variables["idempotencyKey"]
        for r in shop.requests
        if r.operation_name == INVENTORY_SET_QUANTITIES.name
    }
    assert len(keys) == 1


def test_shopify_replaces_a_key_shopify_saw_fail(shop: FakeShopify, shopify: ShopifyStock) -> None:
    ref = shop.inventory.add_item("A", 4)
    shop.inventory.sell("A", 1)
    [stale] = shopify.set_stock([item("A", 9, expected=4, ref=ref)])  # refused: that key has failed
    assert (stale.status, stale.quantity) == (StockStatus.STALE, 3)
    shop.inventory.sell("A", -1)  # the sale is refunded: the value is 4 again
    [done] = shopify.set_stock([item("A", 9, expected=4, ref=ref)])
    assert (done.status, shop.inventory.available("A")) == (StockStatus.SET, 9)


def test_shopify_fake_requires_the_idempotency_key(shop: FakeShopify) -> None:
    ref = shop.inventory.add_item("A", 0)
    document = INVENTORY_SET_QUANTITIES.document.replace(" @idempotent(key: $idempotencyKey)", "").replace(
        ", $idempotencyKey: String!", ""
    )
    answer = shop.handle(
        api_version="2026-07",
        token=shop._token,
        body=httpx.Request(
            "POST",
            "http://x",
            json={
                "query": document,
                "variables": {
                    "input": {
                        "name": "available",
                        "reason": "correction",
                        "quantities": [
                            {
                                "inventoryItemId": ref,
                                "locationId": DEFAULT_LOCATION,
                                "quantity": 1,
                                "changeFromQuantity": 0,
                            }
                        ],
                    }
                },
            },
        ).read(),
        content_type="application/json",
    )
    assert "idempotency key is required" in answer.body["errors"][0]["message"]
    assert shop.inventory.available("A") == 0


def test_shopify_sku_search_quotes_and_escapes() -> None:
    assert sku_search(['A "1"', "B\\2"]) == 'sku:"A \\"1\\"" OR sku:"B\\\\2"'
    assert idempotency_key("c", {"x": 1}) == idempotency_key("c", {"x": 1}) != idempotency_key("c", {"x": 2})


def test_shopify_without_a_location_refuses_to_guess(
    shop: FakeShopify, channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    channel = replace(channels_config.channels["shop-a"], inventory=InventoryConfig(sync=True))
    pusher = ShopifyPusher(channel, clock, httpx.WSGITransport(app=create_fake_shopify_app(shop)))
    with pytest.raises(PushError) as info:
        ShopifyStock(channel, pusher).set_stock([item("A", 1)])
    assert not info.value.retryable and "inventory.location" in info.value.message


# --------------------------------------------------------------------------------------------
# WooCommerce


@pytest.fixture
def woo(clock: ManualClock) -> FakeWooCommerce:
    return FakeWooCommerce(clock=clock)


@pytest.fixture
def woo_channel(channels_config: ChannelsConfig) -> Channel:
    return replace(channels_config.channels["woo-main"], inventory=InventoryConfig(sync=True))


@pytest.fixture
def woocommerce(woo: FakeWooCommerce, woo_channel: Channel, clock: ManualClock) -> Iterator[WooCommerceStock]:
    writer = WooCommerceStock(woo_channel, clock, httpx.WSGITransport(app=create_fake_woocommerce_app(woo)))
    yield writer
    writer.close()


def test_woocommerce_writes_products_and_variations_in_their_batches(
    woo: FakeWooCommerce, woocommerce: WooCommerceStock
) -> None:
    simple = [woo.catalog.add_product(f"S{n:03d}", 0) for n in range(150)]
    parent = woo.catalog.add_product("SHIRT", None, manage_stock=False, type="variable")
    woo.catalog.add_variation(parent, "SHIRT-M", 1)
    woo.catalog.add_variation(parent, "SHIRT-L", 1, manage_stock="parent")
    woo.catalog.add_product("A,B", 0)
    woo.catalog.add_product("DUP", 0)
    woo.catalog.add_product("DUP", 0)
    woo.catalog.add_product("OFF", 4, manage_stock=False)
    items = [item(f"S{n:03d}", n) for n in range(150)]
    items += [
        item("SHIRT-M", 7),
        item("SHIRT-L", 7),
        item("A,B", 2),
        item("DUP", 1),
        item("OFF", 1),
        item("NONE", 1),
    ]
    outcomes = by_sku(woocommerce.set_stock(items))
    assert all(
        outcomes[f"S{n:03d}"].status is (StockStatus.UNCHANGED if n == 0 else StockStatus.SET)
        for n in range(150)
    )
    assert woo.catalog.stock("S149") == 149 and outcomes["S149"].ref == str(simple[149])
    assert (outcomes["SHIRT-M"].status, outcomes["SHIRT-M"].parent) == (StockStatus.SET, str(parent))
    assert woo.catalog.stock("SHIRT-M") == 7
    assert outcomes["SHIRT-L"].status is StockStatus.UNMANAGED and "parent" in outcomes["SHIRT-L"].detail
    assert outcomes["A,B"].status is StockStatus.SET and woo.catalog.stock("A,B") == 2
    assert outcomes["DUP"].status is StockStatus.DUPLICATE
    assert outcomes["OFF"].status is StockStatus.UNMANAGED and woo.catalog.by_sku("OFF").stock_quantity == 4
    assert outcomes["NONE"].status is StockStatus.MISSING
    assert [c.status for c in woo.calls_of("batch_products")] == [200, 200]  # 149 + 1, at most 100 each
    assert len(woo.calls_of("batch_variations")) == 1
    searches = [c for c in woo.calls_of("list_products")]
    assert len(searches) == 3  # 100 + the rest in two comma-joined reads, "A,B" alone


def test_woocommerce_leaves_a_value_that_moved_since_it_was_seen(
    woo: FakeWooCommerce, woocommerce: WooCommerceStock
) -> None:
    woo.catalog.add_product("MUG", 10)
    woo.catalog.sell("MUG", 1)
    [outcome] = woocommerce.set_stock([item("MUG", 12, expected=10)])
    assert (outcome.status, outcome.quantity) == (StockStatus.STALE, 9)
    assert woo.catalog.stock("MUG") == 9
    [again] = woocommerce.set_stock([item("MUG", 12, expected=9)])
    assert (again.status, woo.catalog.stock("MUG")) == (StockStatus.SET, 12)


def test_woocommerce_reports_an_item_it_refused(
    woo: FakeWooCommerce, woocommerce: WooCommerceStock, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = woo.catalog.add_product("GONE", 1)
    search = woo.catalog.search

    def found_then_deleted(sku: str) -> list[FakeProduct]:
        found = search(sku)
        woo.catalog.products.pop(product)  # deleted between our read and our write
        return found

    monkeypatch.setattr(woo.catalog, "search", found_then_deleted)
    [outcome] = woocommerce.set_stock([item("GONE", 3)])
    assert outcome.status is StockStatus.ERROR and "invalid_id" in outcome.detail


# --------------------------------------------------------------------------------------------
# Generic


def test_generic_sends_one_signed_event_per_batch_with_a_stable_id(
    channels_config: ChannelsConfig, clock: ManualClock
) -> None:
    receiver = FakeGenericReceiver(TEST_ENV["OWN_SHOP_SECRET"], clock)
    channel = replace(channels_config.channels["own-shop"], inventory=InventoryConfig(sync=True))
    writer = GenericStock(channel, clock, httpx.WSGITransport(app=create_fake_generic_app(receiver)))
    items = [item("SKU-1", 4, version=3), item("SKU-2", 0, version=1)]
    first = writer.set_stock(items)
    again = writer.set_stock(list(reversed(items)))  # the same values, resent
    assert [o.status for o in first + again] == [StockStatus.SET] * 4
    [event] = receiver.events_of("inventory.updated")
    assert event.data == {
        "items": [
            {"sku": "SKU-1", "quantity": 4, "version": 3},
            {"sku": "SKU-2", "quantity": 0, "version": 1},
        ]
    }
    assert receiver.duplicates == 1 and first[0].ref == again[0].ref == event.webhook_id
    writer.set_stock([item("SKU-1", 4, version=4)])  # a new version is a new event
    assert len(receiver.events_of("inventory.updated")) == 2
    writer.close()
