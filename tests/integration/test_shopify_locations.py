"""Merchant-managed Shopify: only the fulfillment orders at Amazon's location(s) go to Amazon and
are fulfilled back; what someone else fulfilled or closed meanwhile is noted, not fatal.

Webhook in, simulator and fake Shopify over httpx (the fake executes real GraphQL), worker jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.alerts import list_alerts
from bridge.amazon.simulator import Simulator
from bridge.amazon.simulator.server import serve_in_thread
from bridge.bootstrap import Bridge
from bridge.channels import Channel, ShopifyOptions
from bridge.clock import ManualClock
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.runtime import make_worker
from bridge.store import FulfillmentUnitRecord, JobRecord, PushRecord, read_session
from bridge.storefronts.registry import Storefronts
from bridge.worker import Worker
from tests.conftest import TEST_ENV, due_now
from tests.integration.test_submit import order_row
from tests.integration.test_sync import HOUR, count, sync_cycle
from tests.support import shopify_delivery, shopify_line, shopify_order

AMAZON = "Amazon FBA"
TOKEN = "demo-shopify-token"


@dataclass
class World:
    bridge: Bridge
    client: FlaskClient
    shop: FakeShopify
    worker: Worker
    simulator: Simulator
    clock: ManualClock

    def configure(self, **options: Any) -> Channel:
        """Give channel shop-a these `shopify:` options (and any other Channel field via `channel`)."""
        changes = options.pop("channel", {})
        current = self.bridge.config.channels["shop-a"]
        changes.setdefault("storefront", current.storefront)
        channel = replace(current, shopify=ShopifyOptions(**options), **changes)
        self.bridge.config = replace(
            self.bridge.config, channels={**self.bridge.config.channels, "shop-a": channel}
        )
        return channel

    def order(
        self,
        order_id: int,
        lines: list[tuple[int, str, int]],
        *,
        locations: str | list[str] = AMAZON,
        groups: list[list[Any]] | None = None,
        send: bool = True,
    ) -> None:
        self.shop.add_order(
            str(order_id),
            [(str(i), sku, q) for i, sku, q in lines],
            locations=locations,
            fulfillment_order_groups=groups,
        )
        if send:
            self.send(order_id, lines)

    def send(self, order_id: int, lines: list[tuple[int, str, int]], topic: str = "orders/create") -> None:
        body = shopify_order(order_id)
        template = body["line_items"][0]
        body["line_items"] = [shopify_line(template, id=i, sku=sku, quantity=q) for i, sku, q in lines]
        raw, headers = shopify_delivery(body, topic=topic)
        assert self.client.post("/webhooks/shop-a", data=raw, headers=headers).status_code == 200

    def ship(self) -> None:
        """Let Amazon ship everything and run sync and push-back."""
        self.clock.advance(5 * HOUR)
        sync_cycle(self.bridge, self.worker)
        self.worker.drain()

    def amazon_items(self, order_id: int) -> dict[str, int]:
        order = self.simulator.get_fulfillment_order(f"shop-a-{order_id}")["payload"]
        return {
            item["sellerFulfillmentOrderItemId"]: item["quantity"] for item in order["fulfillmentOrderItems"]
        }


@pytest.fixture
def world(
    bridge: Bridge, client: FlaskClient, amazon: Any, simulator: Simulator, clock: ManualClock
) -> Iterator[World]:
    """Channel shop-a naming "Amazon FBA"; the fake Shopify on loopback HTTP, with a warehouse and
    another app's print-on-demand service besides."""
    shop = FakeShopify(TOKEN, clock, app_secret=TEST_ENV["SHOP_A_WEBHOOK_SECRET"])
    shop.add_location(AMAZON)
    shop.add_location("Warehouse")
    shop.add_fulfillment_service("Print on demand", "https://pod.example/callback")
    with serve_in_thread(create_fake_shopify_app(shop)) as server:
        storefronts = Storefronts(clock)
        worker = make_worker(bridge, amazon=amazon, storefronts=storefronts)
        world = World(bridge, client, shop, worker, simulator, clock)
        storefront = replace(bridge.config.channels["shop-a"].storefront, base_url=server.base_url)
        world.configure(locations=(AMAZON,), channel={"storefront": storefront})
        yield world
        storefronts.close()


def units(bridge: Bridge, order_id: str) -> list[FulfillmentUnitRecord]:
    row = order_row(bridge, order_id)
    with read_session(bridge.engine) as session:
        query = select(FulfillmentUnitRecord).where(FulfillmentUnitRecord.order_id == row.id)
        return list(session.execute(query).scalars())


def open_alerts(bridge: Bridge, kind: str) -> list[str]:
    return [a.message for a in list_alerts(bridge.engine) if a.kind == kind]


# --------------------------------------------------------------------------------------------
# Submission


def test_an_order_split_across_locations_ships_only_the_amazon_part_and_fulfils_only_its_fo(
    world: World,
) -> None:
    world.order(
        8001,
        [(81, "TSHIRT-RED-M", 2), (82, "MUG-WHITE", 1)],
        groups=[["81"], ["82"]],
        locations=[AMAZON, "Warehouse"],
    )
    world.worker.drain()

    row = order_row(world.bridge, "8001")
    assert row.state == "submitted"
    assert world.amazon_items(8001) == {"81": 2}, "the mug at the warehouse is not Amazon's"
    [unit] = units(world.bridge, "8001")
    amazon_fo, _ = world.shop.fulfillment_orders("8001")
    assert unit.unit_id == f"gid://shopify/FulfillmentOrder/{amazon_fo.id}" and unit.status == "covered"

    world.ship()

    [fulfillment] = world.shop.fulfillments("8001")
    assert fulfillment.quantities == {"81": 2}
    assert {line.fulfillment_order_id for line in fulfillment.lines} == {amazon_fo.id}
    assert world.shop.remaining("8001") == {"81": 0, "82": 1}
    assert [fo.status for fo in world.shop.fulfillment_orders("8001")] == ["CLOSED", "OPEN"]
    assert order_row(world.bridge, "8001").state == "shipped"


def test_a_print_on_demand_line_of_another_app_no_longer_parks_the_order(world: World) -> None:
    world.configure(locations=(AMAZON,), channel={"unmapped_policy": "hold"})
    world.order(
        8002,
        [(83, "TSHIRT-RED-M", 1), (84, "POD-HOODIE", 1)],
        groups=[["83"], ["84"]],
        locations=[AMAZON, "Print on demand"],
    )
    world.worker.drain()

    row = order_row(world.bridge, "8002")
    assert row.state == "submitted", row.attention_reason
    assert world.amazon_items(8002) == {"83": 1}
    world.ship()
    assert world.shop.remaining("8002") == {"83": 0, "84": 1}, "the other app's line is never fulfilled by us"


def test_an_order_with_nothing_at_amazons_location_is_not_for_amazon(world: World) -> None:
    world.order(8003, [(85, "TSHIRT-RED-M", 1)], locations="Warehouse")
    world.worker.drain()

    row = order_row(world.bridge, "8003")
    assert row.state == "not_for_amazon"
    assert "not for Amazon" in events_reason(world.bridge, "8003", "skip")
    assert world.simulator.ledger.calls("getFulfillmentPreview") == 0


def test_only_the_remaining_quantity_is_sent_when_part_was_fulfilled_already(world: World) -> None:
    world.order(8004, [(86, "TSHIRT-RED-M", 3)], send=False)
    world.shop.merchant_fulfill("8004", 0, {"86": 1})
    world.send(8004, [(86, "TSHIRT-RED-M", 3)])
    world.worker.drain()

    assert world.amazon_items(8004) == {"86": 2}


def test_lines_that_need_no_shipping_stay_out(world: World) -> None:
    world.shop.add_order(
        "8005", [("87", "TSHIRT-RED-M", 1), ("88", "MUG-WHITE", 1)], locations=AMAZON, no_shipping={"88"}
    )
    world.send(8005, [(87, "TSHIRT-RED-M", 1), (88, "MUG-WHITE", 1)])
    world.worker.drain()

    assert world.amazon_items(8005) == {"87": 1}


def test_a_held_fulfillment_order_at_amazons_location_waits_for_its_release(world: World) -> None:
    world.order(8006, [(89, "TSHIRT-RED-M", 1)], send=False)
    world.shop.set_fulfillment_order_status("8006", 0, "ON_HOLD")
    world.send(8006, [(89, "TSHIRT-RED-M", 1)])
    world.worker.drain()
    assert order_row(world.bridge, "8006").state == "received"
    assert world.simulator.ledger.calls("getFulfillmentPreview") == 0

    world.shop.set_fulfillment_order_status("8006", 0, "OPEN")
    due_now(world.bridge.engine)
    world.worker.drain()
    assert order_row(world.bridge, "8006").state == "submitted"


def test_an_unknown_location_name_raises_a_channel_alert_and_loses_nothing(world: World) -> None:
    world.configure(locations=("Amazon Warehouse (typo)",))
    world.order(8007, [(90, "TSHIRT-RED-M", 1)])
    world.worker.drain()

    assert order_row(world.bridge, "8007").state == "received"
    [message] = open_alerts(world.bridge, "storefront")
    assert "Amazon Warehouse (typo)" in message and "'Amazon FBA'" in message
    with read_session(world.bridge.engine) as session:
        job = session.execute(select(JobRecord).where(JobRecord.kind == "submit")).scalars().one()
    assert job.status == "ready" and job.attempts == 0, "a channel problem spends no attempts"

    world.configure(
        locations=("gid://shopify/Location/" + world.shop.location_gid(AMAZON).rsplit("/", 1)[-1],)
    )
    due_now(world.bridge.engine)
    world.worker.drain()
    assert order_row(world.bridge, "8007").state == "submitted"
    assert open_alerts(world.bridge, "storefront") == []


def test_a_retried_create_sends_what_was_decided_not_a_new_read(world: World) -> None:
    world.simulator.inject_fault("createFulfillmentOrder", kind="accept_then_drop")
    world.order(
        8008, [(91, "TSHIRT-RED-M", 1), (92, "MUG-WHITE", 1)], groups=[["91"], ["92"]], locations=AMAZON
    )
    world.worker.drain()
    assert order_row(world.bridge, "8008").state in ("submitting", "submitted")

    due_now(world.bridge.engine)
    world.worker.drain()
    assert order_row(world.bridge, "8008").state == "submitted"
    assert world.simulator.ledger.creates("shop-a-8008") == 1
    assert world.amazon_items(8008) == {"91": 1, "92": 1}
    assert len(units(world.bridge, "8008")) == 2


# --------------------------------------------------------------------------------------------
# Push-back of fulfillment orders someone else fulfilled or closed (issue item 12)


def test_a_partly_fulfilled_fo_gets_the_open_units_tracking_plus_a_note_and_an_alert(world: World) -> None:
    world.order(8010, [(93, "TSHIRT-RED-M", 2)])
    world.worker.drain()
    world.shop.merchant_fulfill("8010", 0, {"93": 1})  # someone ships one unit by hand

    world.ship()

    by_hand, ours = world.shop.fulfillments("8010")
    assert by_hand.tracking_numbers == () and ours.quantities == {"93": 1} and ours.tracking_numbers
    note = world.shop.note("8010") or ""
    assert "[fba-bridge:" in note and "line 93 x1" in note and "already fulfilled" in note
    [alert] = open_alerts(world.bridge, "not-pushed")
    assert "#8010" in alert
    assert count(world.bridge, PushRecord, status="done") == 2  # the package and the note
    assert order_row(world.bridge, "8010").state == "shipped"


def test_a_fo_closed_by_someone_else_is_noted_and_alerted_not_dead_lettered(world: World) -> None:
    world.order(8011, [(94, "TSHIRT-RED-M", 1)])
    world.worker.drain()
    world.shop.set_fulfillment_order_status("8011", 0, "CLOSED")

    world.ship()

    assert world.shop.fulfillments("8011") == []
    assert "is closed in Shopify" in (world.shop.note("8011") or "")
    assert open_alerts(world.bridge, "not-pushed")
    with read_session(world.bridge.engine) as session:
        dead = session.execute(select(JobRecord).where(JobRecord.status == "dead")).scalars().all()
    assert dead == []


def test_push_back_never_fulfils_a_fo_at_another_location_even_for_the_same_line(world: World) -> None:
    # Line 95 is split: one unit at Amazon's location, one at the warehouse.
    world.order(
        8012, [(95, "TSHIRT-RED-M", 2)], groups=[[("95", 1)], [("95", 1)]], locations=[AMAZON, "Warehouse"]
    )
    world.worker.drain()
    assert world.amazon_items(8012) == {"95": 1}

    world.ship()

    [fulfillment] = world.shop.fulfillments("8012")
    amazon_fo, warehouse_fo = world.shop.fulfillment_orders("8012")
    assert {line.fulfillment_order_id for line in fulfillment.lines} == {amazon_fo.id}
    assert warehouse_fo.status == "OPEN" and world.shop.remaining("8012") == {"95": 1}


def test_without_locations_the_whole_order_is_amazons_and_no_location_is_read(world: World) -> None:
    world.configure()  # no locations: today's behaviour, for apps without read_locations
    world.order(
        8013,
        [(96, "TSHIRT-RED-M", 1), (97, "MUG-WHITE", 1)],
        groups=[["96"], ["97"]],
        locations=[AMAZON, "Warehouse"],
    )
    world.worker.drain()
    assert world.amazon_items(8013) == {"96": 1, "97": 1}

    world.ship()

    assert world.shop.remaining("8013") == {"96": 0, "97": 0}
    reads = [r for r in world.shop.requests if r.operation_name == "BridgeFulfillmentOrders"]
    assert reads and all(r.variables["withLocation"] is False for r in reads)
    assert units(world.bridge, "8013") == []


def events_reason(bridge: Bridge, external_id: str, event: str) -> str:
    from bridge.store import OrderEventRecord

    row = order_row(bridge, external_id)
    with read_session(bridge.engine) as session:
        query = select(OrderEventRecord.reason).where(
            OrderEventRecord.order_id == row.id, OrderEventRecord.event == event
        )
        return " ".join(session.execute(query).scalars())


def test_worker_start_up_checks_the_locations_and_raises_a_channel_alert(world: World) -> None:
    from bridge.pipeline.scope import check_storefronts

    world.configure(locations=("Nowhere",))
    [problem] = check_storefronts(world.bridge, world.worker.services["storefronts"])
    assert problem.startswith("shop-a: no location 'Nowhere' in the shop (its locations: 'Amazon FBA'")
    assert open_alerts(world.bridge, "storefront")

    world.configure(locations=(AMAZON,))
    assert check_storefronts(world.bridge, world.worker.services["storefronts"]) == []
    assert open_alerts(world.bridge, "storefront") == []
