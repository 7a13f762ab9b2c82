"""Inventory sync end to end, over HTTP: the simulator's FBA stock into the fake Shopify (GraphQL),
WooCommerce (REST) and generic (signed callbacks) storefronts, through the job queue, on SQLite
and PostgreSQL. Time is a ManualClock shared by the bridge, the simulator and the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bridge.alerts import list_alerts
from bridge.amazon.accounts import AmazonAccounts, build_amazon
from bridge.amazon.limiter import DatabaseBuckets
from bridge.amazon.simulator import Simulator
from bridge.app import create_app
from bridge.bootstrap import Bridge
from bridge.channels import Channel, ChannelsConfig, InventoryConfig, StockBuffer
from bridge.clock import ManualClock
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.fakes.shopify import DEFAULT_LOCATION, FakeShopify, create_fake_shopify_app
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app
from bridge.intake import JOB_SUBMIT
from bridge.pipeline.inventory import (
    JOB_INVENTORY_PUSH,
    JOB_INVENTORY_SYNC,
    RECHECK_AFTER,
    STALE_RETRY,
    enqueue_sync,
    stock_report,
)
from bridge.runtime import HANDLERS
from bridge.settings import Settings
from bridge.store import (
    AmazonStockRecord,
    InventoryCursorRecord,
    JobRecord,
    OrderRecord,
    StorefrontStockRecord,
    read_session,
    write_session,
)
from bridge.storefronts.registry import Storefronts
from bridge.worker import Worker
from tests.conftest import TEST_ENV, due_now
from tests.support import shopify_delivery, shopify_order, woo_delivery, woo_order

MINUTE, HOUR = 60, 3600


def with_inventory(config: ChannelsConfig, **overrides: Any) -> ChannelsConfig:
    channels = {}
    for cid, channel in config.channels.items():
        inventory = InventoryConfig(
            sync=True, location=DEFAULT_LOCATION if channel.platform == "shopify" else "", **overrides
        )
        channels[cid] = replace(channel, inventory=inventory)
    return replace(config, channels=channels)


class Rig:
    """The bridge with inventory sync on for every example channel, and everything it talks to."""

    def __init__(self, engine: Engine, config: ChannelsConfig, clock: ManualClock, sim: Simulator) -> None:
        self.clock = clock
        self.sim = sim
        self.config = config
        self.bridge = Bridge(
            settings=Settings(max_body_bytes=256 * 1024), config=config, engine=engine, clock=clock
        )
        self.shop = FakeShopify(config.channels["shop-a"].storefront.access_token.reveal(), clock)
        self.woo = FakeWooCommerce(clock=clock)
        self.receiver = FakeGenericReceiver(TEST_ENV["OWN_SHOP_SECRET"], clock)
        self.amazon: AmazonAccounts = build_amazon(
            self.bridge, simulator=sim, buckets=DatabaseBuckets(engine, clock, use_db_clock=False)
        )
        self.storefronts = Storefronts(
            clock,
            {
                "shop-a": httpx.WSGITransport(app=create_fake_shopify_app(self.shop)),
                "woo-main": httpx.WSGITransport(app=create_fake_woocommerce_app(self.woo)),
                "own-shop": httpx.WSGITransport(app=create_fake_generic_app(self.receiver)),
            },
        )
        self.worker = self.make_worker()
        self.client: FlaskClient = create_app(self.bridge).test_client()

    def make_worker(self, without: tuple[str, ...] = ()) -> Worker:
        handlers = {k: v for k, v in HANDLERS.items() if k not in without}
        return Worker(
            self.bridge, handlers, services={"amazon": self.amazon, "storefronts": self.storefronts}
        )

    def reconfigure(self, config: ChannelsConfig) -> None:
        self.config = self.bridge.config = config
        self.storefronts._stock.clear()  # stock writers keep their channel's settings

    def channel(self, channel_id: str = "shop-a") -> Channel:
        return self.bridge.config.channels[channel_id]

    def cycle(self, worker: Worker | None = None, *, full: bool = False) -> int:
        """What the clock does each interval: queue the sync; then the workers run everything due."""
        with write_session(self.bridge.engine) as session:
            enqueue_sync(session, self.channel(), full=full)
        return (worker or self.worker).drain()

    def retry_everything(self, worker: Worker | None = None, rounds: int = 10) -> int:
        """Run every job that is waiting for a retry, again and again, until none is left."""
        done = 0
        for _ in range(rounds):
            due_now(self.bridge.engine)
            ran = (worker or self.worker).drain()
            done += ran
            if ran == 0:
                break
        return done

    def row(self, channel_id: str, sku: str) -> StorefrontStockRecord:
        with read_session(self.bridge.engine) as session:
            return (
                session.execute(
                    select(StorefrontStockRecord).where(
                        StorefrontStockRecord.channel_id == channel_id,
                        StorefrontStockRecord.storefront_sku == sku,
                    )
                )
                .scalars()
                .one()
            )

    def shopify_order(self, order_id: int, sku: str, quantity: int) -> None:
        self.shop.add_order(str(order_id), [("1", sku, quantity)])
        body, headers = shopify_delivery(shopify_order(order_id, sku=sku, quantity=quantity))
        assert self.client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200

    def calls(self) -> int:
        return self.sim.ledger.calls("getInventorySummaries")

    def close(self) -> None:
        self.storefronts.close()
        self.amazon.close()


@pytest.fixture
def rig(
    db: Engine, channels_config: ChannelsConfig, clock: ManualClock, simulator: Simulator
) -> Iterator[Rig]:
    r = Rig(db, with_inventory(channels_config), clock, simulator)
    r.shop.inventory.add_item("TSHIRT-RED-M", 0)
    r.shop.inventory.add_item("TSHIRT-BLUE-L", 0)
    r.shop.inventory.add_item("MUG-WHITE", 0)
    r.woo.catalog.add_product("MUG-WHITE", 3)
    poster = r.woo.catalog.add_product("POSTER", None, manage_stock=False, type="variable")
    r.woo.catalog.add_variation(poster, "POSTER-A2", 6)
    yield r
    r.close()


def count(engine: Engine, model: type, **where: Any) -> int:
    with read_session(engine) as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(session.execute(query).scalar_one())


# --------------------------------------------------------------------------------------------
# The first sync and the three platforms


def test_first_sync_reads_every_mapped_sku_and_sets_every_storefront(rig: Rig) -> None:
    rig.cycle()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 500
    assert rig.shop.inventory.available("TSHIRT-BLUE-L") == 200
    assert rig.shop.inventory.available("MUG-WHITE") == 1000
    assert rig.woo.catalog.stock("MUG-WHITE") == 1000
    assert rig.woo.catalog.stock("POSTER-A2") == 0  # a variation, through its parent's batch route
    assert rig.woo.calls_of("batch_variations") and rig.woo.calls_of("batch_products")
    assert rig.receiver.stock() == {"SKU-1": 300, "SKU-2": 100}
    [event] = rig.receiver.events_of("inventory.updated")
    assert {i["sku"]: i["version"] for i in event.data["items"]} == {"SKU-1": 1, "SKU-2": 1}
    assert rig.calls() == 1  # 6 mapped Amazon SKUs: one sellerSkus request
    row = rig.row("shop-a", "TSHIRT-RED-M")
    assert (row.amazon_quantity, row.target, row.storefront_quantity, row.pushed_quantity) == (
        500,
        500,
        500,
        500,
    )
    assert row.pushed_at == rig.clock.now() and row.storefront_ref.startswith("gid://shopify/InventoryItem/")
    assert list_alerts(rig.bridge.engine) == []


def test_an_amazon_order_lowers_every_storefront_selling_that_sku_within_one_cycle(rig: Rig) -> None:
    rig.cycle()
    body, headers = woo_delivery(woo_order(700))  # one MUG-WHITE, sold in WooCommerce
    assert rig.client.post("/webhooks/woo-main", data=body, headers=headers).status_code == 200
    rig.worker.drain()  # submitted: Amazon reserves the unit
    assert rig.sim.available("FBA-MUG-WHITE") == 999
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    assert rig.shop.inventory.available("MUG-WHITE") == 999  # Shopify sells the same Amazon units
    assert rig.woo.catalog.stock("MUG-WHITE") == 999
    rig.clock.advance(5 * HOUR)  # the shipment leaves: reserved units go, fulfillable stays
    writes = len(rig.shop.inventory.api_changes())
    rig.cycle()
    assert len(rig.shop.inventory.api_changes()) == writes


def test_units_of_accepted_orders_not_yet_at_amazon_are_held_back(rig: Rig) -> None:
    no_submit = rig.make_worker(without=(JOB_SUBMIT,))
    rig.cycle(no_submit)
    rig.shopify_order(1001, "TSHIRT-RED-M", 2)
    rig.clock.advance(5 * MINUTE)
    rig.cycle(no_submit)  # Amazon has not changed; the order is in flight
    row = rig.row("shop-a", "TSHIRT-RED-M")
    assert (row.amazon_quantity, row.in_flight, row.target) == (500, 2, 498)
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 498
    rig.worker.drain()  # now it reaches Amazon
    rig.clock.advance(5 * MINUTE)
    writes = len(rig.shop.inventory.api_changes())
    rig.cycle()
    row = rig.row("shop-a", "TSHIRT-RED-M")
    assert (row.amazon_quantity, row.in_flight, row.target) == (498, 0, 498)
    assert len(rig.shop.inventory.api_changes()) == writes  # same target: nothing written


def test_a_restock_raises_the_storefront_quantity(rig: Rig) -> None:
    rig.cycle()
    rig.sim.restock("FBA-SKU-1", 25)
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    assert rig.receiver.stock()["SKU-1"] == 325
    assert rig.row("own-shop", "SKU-1").target_version == 2


def test_calls_follow_the_changed_skus_not_the_catalogue(rig: Rig) -> None:
    rig.cycle()
    calls, mutations = rig.calls(), rig.shop.calls("inventorySetQuantities")
    rig.clock.advance(5 * MINUTE)
    rig.cycle()  # nothing changed: one empty change listing, no storefront call
    assert rig.calls() == calls + 1
    assert rig.shop.calls("inventorySetQuantities") == mutations
    assert rig.shop.calls("inventoryItems") == 1
    rig.sim.restock("FBA-TSHIRT-BLUE-L", 1)
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    assert rig.calls() == calls + 2
    assert rig.shop.calls("inventorySetQuantities") == mutations + 1
    assert rig.shop.calls("inventoryItems") == 1  # the item id and value are known: no lookup
    [change] = rig.shop.inventory.api_changes("TSHIRT-BLUE-L")[-1:]
    assert (change.before, change.after) == (200, 201)


def test_buffers_hold_units_back_per_channel_and_per_sku(rig: Rig) -> None:
    config = rig.config
    shop = config.channels["shop-a"]
    inventory = replace(
        shop.inventory,
        buffer=StockBuffer(percent=Decimal(10)),
        sku_buffers={"MUG-WHITE": StockBuffer(units=1)},
    )
    rig.reconfigure(
        replace(config, channels={**config.channels, "shop-a": replace(shop, inventory=inventory)})
    )
    rig.cycle()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 450
    assert rig.shop.inventory.available("MUG-WHITE") == 999
    assert rig.woo.catalog.stock("MUG-WHITE") == 1000  # another channel, no buffer


# --------------------------------------------------------------------------------------------
# Storefront changes are not overwritten


def test_a_concurrent_shopify_sale_is_not_overwritten(rig: Rig) -> None:
    rig.cycle()
    rig.shop.inventory.sell("TSHIRT-RED-M", 1)  # sold in the shop; its webhook is not here yet
    rig.sim.restock("FBA-TSHIRT-RED-M", 10)
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 499  # the 510 was not forced over the sale
    row = rig.row("shop-a", "TSHIRT-RED-M")
    assert (row.target, row.storefront_quantity, row.pushed_quantity) == (510, 499, 500)
    rig.shopify_order(1001, "TSHIRT-RED-M", 1)  # the webhook arrives; the order goes to Amazon
    rig.worker.drain()
    rig.clock.advance(STALE_RETRY.total_seconds())
    rig.cycle()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 509
    assert [(c.before, c.after) for c in rig.shop.inventory.api_changes("TSHIRT-RED-M")] == [
        (0, 500),
        (499, 509),
    ]


def test_a_concurrent_woocommerce_sale_is_not_overwritten(rig: Rig) -> None:
    rig.cycle()
    rig.woo.catalog.sell("MUG-WHITE", 2)
    rig.sim.restock("FBA-MUG-WHITE", 5)
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    assert rig.woo.catalog.stock("MUG-WHITE") == 998
    assert rig.row("woo-main", "MUG-WHITE").storefront_quantity == 998
    body, headers = woo_delivery(
        woo_order(701) | {"line_items": [{**woo_order()["line_items"][0], "quantity": 2}]}
    )
    assert rig.client.post("/webhooks/woo-main", data=body, headers=headers).status_code == 200
    rig.worker.drain()
    rig.clock.advance(STALE_RETRY.total_seconds())
    rig.cycle()
    assert rig.woo.catalog.stock("MUG-WHITE") == 1003
    assert [
        (w.before, w.after) for w in rig.woo.catalog.stock_log if w.via == "api" and w.sku == "MUG-WHITE"
    ] == [
        (3, 1000),
        (998, 1003),
    ]


# --------------------------------------------------------------------------------------------
# SKUs the shop cannot sync are reported once


def test_a_sku_missing_in_the_shop_is_reported_once_and_cleared_when_it_appears(rig: Rig) -> None:
    channels = dict(rig.config.channels)
    shop = channels["shop-a"]
    channels["shop-a"] = replace(shop, sku_map={**shop.sku_map, "HAT-NEW": "FBA-SKU-1"})
    rig.reconfigure(replace(rig.config, channels=channels))
    rig.cycle()
    [alert] = list_alerts(rig.bridge.engine)
    assert alert.key == "inventory:shop-a:sku:HAT-NEW" and alert.severity == "warning"
    assert "HAT-NEW" in alert.message and "not synced" in alert.message
    lookups = rig.shop.calls("inventoryItems")
    for _ in range(4):  # later cycles: no new alert, no lookup of it every cycle
        rig.sim.restock("FBA-SKU-1", 1)
        rig.clock.advance(5 * MINUTE)
        rig.cycle()
    assert rig.shop.calls("inventoryItems") == lookups
    [alert] = list_alerts(rig.bridge.engine)
    assert alert.occurrences == 1
    rig.clock.advance(RECHECK_AFTER.total_seconds())
    rig.cycle()  # looked at again after an hour: still missing, still one quiet alert
    assert rig.shop.calls("inventoryItems") == lookups + 1
    assert [a.occurrences for a in list_alerts(rig.bridge.engine)] == [1]
    rig.shop.inventory.add_item("HAT-NEW", 0)  # the merchant adds the product
    rig.clock.advance(RECHECK_AFTER.total_seconds())
    rig.cycle()
    assert rig.shop.inventory.available("HAT-NEW") == rig.sim.available("FBA-SKU-1")
    assert list_alerts(rig.bridge.engine) == []
    assert rig.row("shop-a", "HAT-NEW").status == "ok"


def test_products_that_do_not_manage_stock_are_left_alone_and_reported(rig: Rig) -> None:
    rig.woo.catalog.by_sku("MUG-WHITE").manage_stock = False
    rig.shop.inventory.set_tracked("TSHIRT-BLUE-L", False)
    rig.cycle()
    assert rig.woo.catalog.by_sku("MUG-WHITE").stock_quantity == 3
    assert rig.shop.inventory.available("TSHIRT-BLUE-L") == 0
    keys = sorted(a.key for a in list_alerts(rig.bridge.engine))
    assert keys == ["inventory:shop-a:sku:TSHIRT-BLUE-L", "inventory:woo-main:sku:MUG-WHITE"]
    assert rig.row("woo-main", "MUG-WHITE").status == "unmanaged"


# --------------------------------------------------------------------------------------------
# Throttling and outages lose nothing


def test_amazon_outages_and_throttling_delay_but_lose_nothing(rig: Rig) -> None:
    first = rig.clock.now()
    rig.cycle()
    rig.sim.restock("FBA-TSHIRT-RED-M", 7)
    rig.sim.inject_fault("getInventorySummaries", status=503, count=5)
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 500
    with read_session(rig.bridge.engine) as session:
        cursor = session.get(InventoryCursorRecord, ("main", "ATVPDKIKX0DER"))
    assert cursor is not None and cursor.changes_until == first  # not moved past the unread change
    rig.sim.inject_fault("getInventorySummaries", status=429, count=2, retry_after=2)
    rig.clock.advance(10 * MINUTE)  # the change is now older than the next cycle's overlap
    rig.retry_everything()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 507


def test_shopify_outages_throttling_and_lost_answers_write_each_value_once(rig: Rig) -> None:
    rig.shop.fail_next("inventorySetQuantities", status=503, count=3)
    rig.cycle()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 0
    assert count(rig.bridge.engine, JobRecord, kind=JOB_INVENTORY_PUSH, status="ready") == 1
    rig.retry_everything()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 500
    rig.sim.restock("FBA-TSHIRT-RED-M", 1)
    rig.shop.set_available(0)  # the cost bucket is empty: THROTTLED, nothing executed
    rig.clock.advance(5 * MINUTE)
    rig.shop.set_available(0)
    rig.cycle()
    rig.clock.advance(30)
    rig.retry_everything()
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 501
    rig.sim.restock("FBA-TSHIRT-RED-M", 1)
    rig.shop.accept_then_drop_next("inventorySetQuantities")  # applied, answer lost
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    rig.retry_everything()  # the retry reads first: already there
    assert rig.shop.inventory.available("TSHIRT-RED-M") == 502
    assert [c.after for c in rig.shop.inventory.api_changes("TSHIRT-RED-M")] == [500, 501, 502]
    assert rig.row("shop-a", "TSHIRT-RED-M").storefront_quantity == 502


def test_woocommerce_outages_and_lost_answers_write_each_value_once(rig: Rig) -> None:
    rig.woo.fail_next("list_products", status=500, count=2)
    rig.cycle()
    rig.retry_everything()
    assert rig.woo.catalog.stock("MUG-WHITE") == 1000
    rig.sim.restock("FBA-MUG-WHITE", 4)
    rig.woo.accept_then_drop_next("batch_products")
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    rig.retry_everything()
    assert rig.woo.catalog.stock("MUG-WHITE") == 1004
    api = [(w.before, w.after) for w in rig.woo.catalog.stock_log if w.via == "api" and w.sku == "MUG-WHITE"]
    assert api == [(3, 1000), (1000, 1004)]


def test_generic_callbacks_survive_outages_and_are_applied_once(rig: Rig) -> None:
    rig.receiver.accept_then_drop_next()
    rig.cycle()
    rig.receiver.fail_next(status=503)
    rig.retry_everything()
    rig.retry_everything()
    assert rig.receiver.stock() == {"SKU-1": 300, "SKU-2": 100}
    assert len(rig.receiver.events_of("inventory.updated")) == 1
    assert rig.receiver.duplicates == 1  # the resend carried the same webhook-id


def test_a_generic_shop_can_name_skus_it_does_not_know(rig: Rig) -> None:
    rig.receiver.known_skus = {"SKU-1"}
    rig.cycle()
    assert rig.row("own-shop", "SKU-2").status == "missing"
    assert [a.key for a in list_alerts(rig.bridge.engine)] == ["inventory:own-shop:sku:SKU-2"]


# --------------------------------------------------------------------------------------------
# The full sweep, configuration changes, the operator view


def test_the_daily_sweep_catches_a_change_the_change_feed_missed(rig: Rig) -> None:
    rig.clock.advance(10 * MINUTE)  # the simulator's start is older than the feed's overlap
    rig.cycle()
    rig.sim.set_inventory("FBA-SKU-2", 60, silent=True)
    rig.clock.advance(5 * MINUTE)
    rig.cycle()
    assert rig.receiver.stock()["SKU-2"] == 100  # the feed did not report it
    rig.clock.advance(24 * HOUR)
    rig.cycle()
    assert rig.receiver.stock()["SKU-2"] == 60
    with read_session(rig.bridge.engine) as session:
        cursor = session.get(InventoryCursorRecord, ("main", "ATVPDKIKX0DER"))
    assert cursor is not None and cursor.swept_at == rig.clock.now()


def test_an_amazon_sku_amazon_does_not_know_sells_nothing(rig: Rig) -> None:
    channels = dict(rig.config.channels)
    own = channels["own-shop"]
    channels["own-shop"] = replace(own, sku_map={**own.sku_map, "SKU-9": "FBA-NOT-STOCKED"})
    rig.reconfigure(replace(rig.config, channels=channels))
    rig.cycle()
    assert rig.receiver.stock()["SKU-9"] == 0
    with read_session(rig.bridge.engine) as session:
        level = session.execute(
            select(AmazonStockRecord).where(AmazonStockRecord.amazon_sku == "FBA-NOT-STOCKED")
        ).scalar_one()
    assert not level.known


def test_a_changed_sku_map_asks_amazon_only_about_new_skus_and_forgets_removed_ones(rig: Rig) -> None:
    rig.cycle()
    channels = dict(rig.config.channels)
    own = channels["own-shop"]
    channels["own-shop"] = replace(own, sku_map={"SKU-1": "FBA-SKU-1", "SKU-3": "FBA-TSHIRT-RED-M"})
    rig.reconfigure(replace(rig.config, channels=channels))
    rig.clock.advance(5 * MINUTE)
    before = rig.calls()
    rig.cycle()
    assert rig.calls() == before + 1  # the change listing; FBA-TSHIRT-RED-M is already known
    assert rig.receiver.stock()["SKU-3"] == 500
    assert count(rig.bridge.engine, StorefrontStockRecord, channel_id="own-shop", storefront_sku="SKU-2") == 0


def test_sync_jobs_are_one_per_account_and_marketplace(rig: Rig) -> None:
    with write_session(rig.bridge.engine) as session:
        assert enqueue_sync(session, rig.channel("shop-a"))
        assert not enqueue_sync(session, rig.channel("woo-main"))  # same account and marketplace
    assert count(rig.bridge.engine, JobRecord, kind=JOB_INVENTORY_SYNC) == 1


def test_the_operator_view_shows_amazon_target_and_pushed_value(rig: Rig) -> None:
    rig.cycle()
    cursors, lines = stock_report(rig.bridge, "shop-a", "TSHIRT-RED-M")
    [line] = lines
    assert (line.amazon_quantity, line.target, line.pushed_quantity, line.in_sync) == (500, 500, 500, True)
    assert line.pushed_at == rig.clock.now()
    [cursor] = cursors
    assert cursor.changes_until == rig.clock.now() and cursor.swept_at == rig.clock.now()
    _, by_amazon_sku = stock_report(rig.bridge, None, "FBA-MUG-WHITE")
    assert sorted(line.channel_id for line in by_amazon_sku) == ["shop-a", "woo-main"]


def test_orders_are_not_touched_by_inventory_sync(rig: Rig) -> None:
    rig.shopify_order(1001, "TSHIRT-RED-M", 1)
    rig.worker.drain()
    rig.cycle()
    with read_session(rig.bridge.engine) as session:
        assert session.execute(select(OrderRecord.state)).scalar_one() == "submitted"
