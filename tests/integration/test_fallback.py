"""Routing fallback through the simulator and the fake storefronts over HTTP: an order Amazon
cannot take is parked and noted, or handed back (Shopify: its fulfillment order moves to the
fallback location); what Amazon cancels after the create is released, and only that."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.channels import FallbackOptions
from bridge.store import PushRecord, read_session
from bridge.worker import Worker
from tests.integration.test_shopify_locations import AMAZON, World, world  # noqa: F401 (fixture)
from tests.integration.test_submit import _reasons, order_row
from tests.support import woo_delivery, woo_order


def set_fallback(bridge: Bridge, channel_id: str, action: str, location: str = "", **changes: Any) -> None:
    channel = replace(
        bridge.config.channels[channel_id], fallback=FallbackOptions(action, location), **changes
    )
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, channel_id: channel})


def notes_owed(bridge: Bridge, order_id: int | None) -> list[str]:
    with read_session(bridge.engine) as session:
        query = select(PushRecord).where(PushRecord.order_id == order_id, PushRecord.kind == "note")
        return [p.note for p in session.execute(query).scalars()]


def locations_of(shop_world: World, order_id: int) -> list[tuple[str, dict[str, int]]]:
    """(location name, REST line id -> units still to fulfil there) per open fulfillment order."""
    out = []
    for fo in shop_world.shop.fulfillment_orders(str(order_id)):
        if fo.status == "CLOSED":
            continue
        name = next(
            n for n in (AMAZON, "Warehouse") if shop_world.shop.location_gid(n).endswith(f"/{fo.location_id}")
        )
        out.append((name, {li.line.line_id: li.remaining for li in fo.line_items if li.remaining}))
    return out


def test_shopify_release_moves_an_order_amazon_cannot_fulfil_to_the_fallback_location(world: World) -> None:  # noqa: F811 (the fixture)
    set_fallback(world.bridge, "shop-a", "release", world.shop.location_gid("Warehouse"))
    world.simulator.set_inventory("FBA-MUG-WHITE", 0)
    world.order(9001, [(91, "MUG-WHITE", 1)])
    world.worker.drain()
    row = order_row(world.bridge, "9001")
    assert row.state == "not_for_amazon"
    assert "handed back to the storefront" in _reasons(world.bridge, row)
    assert world.simulator.ledger.calls("createFulfillmentOrder") == 0
    assert locations_of(world, 9001) == [("Warehouse", {"91": 1})]
    assert world.shop.calls("BridgeMoveFulfillmentOrder", "ok") == 1
    assert "moved to gid://shopify/Location/" in _reasons(world.bridge, row)


def test_a_cancelled_shipment_releases_only_its_units_and_amazon_ships_the_rest(world: World) -> None:  # noqa: F811 (the fixture)
    shop = world.bridge.config.channels["shop-a"]
    set_fallback(
        world.bridge,
        "shop-a",
        "release",
        world.shop.location_gid("Warehouse"),
        sku_map={**shop.sku_map, "SKU-2": "FBA-SKU-2"},
        fulfillment_policy="FillAll",
    )
    world.order(9002, [(92, "TSHIRT-RED-M", 1), (93, "SKU-2", 2)])
    world.worker.drain()
    assert order_row(world.bridge, "9002").state == "submitted"
    world.ship()
    world.ship()
    assert world.shop.remaining("9002") == {"92": 0, "93": 2}, "Amazon's part was fulfilled back"
    assert locations_of(world, 9002) == [("Warehouse", {"93": 2})]
    world.ship()
    assert world.shop.calls("BridgeMoveFulfillmentOrder", "ok") == 1, "released once"


def test_notify_parks_the_order_and_tells_woocommerce(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    set_fallback(bridge, "woo-main", "notify")
    order = woo_order(9003)
    order["line_items"][0]["sku"] = "POSTER-A2"
    body, headers = woo_delivery(order)
    assert client.post("/webhooks/woo-main", data=body, headers=headers).status_code == 200
    worker.drain()
    row = order_row(bridge, "9003")
    assert row.state == "needs_attention"
    notes = notes_owed(bridge, row.id)
    assert len(notes) == 1 and "Amazon cannot fulfil" in notes[0] and "another way" in notes[0]


def test_without_a_fallback_an_unfulfillable_order_is_parked_and_nothing_is_owed(
    client: FlaskClient, bridge: Bridge, worker: Worker
) -> None:
    order = woo_order(9004)
    order["line_items"][0]["sku"] = "POSTER-A2"
    body, headers = woo_delivery(order)
    client.post("/webhooks/woo-main", data=body, headers=headers)
    worker.drain()
    row = order_row(bridge, "9004")
    assert row.state == "needs_attention" and notes_owed(bridge, row.id) == []


def test_release_on_woocommerce_hands_the_order_back_with_a_note(
    client: FlaskClient, bridge: Bridge, worker: Worker
) -> None:
    set_fallback(bridge, "woo-main", "release")
    order = woo_order(9005)
    order["line_items"][0]["sku"] = "POSTER-A2"
    body, headers = woo_delivery(order)
    client.post("/webhooks/woo-main", data=body, headers=headers)
    worker.drain()
    row = order_row(bridge, "9005")
    assert row.state == "not_for_amazon"
    assert any("Handed back" in n for n in notes_owed(bridge, row.id))


def test_the_shops_set_up_check_names_a_fallback_location_the_shop_does_not_have(
    world: World,  # noqa: F811 (the fixture)
) -> None:
    set_fallback(world.bridge, "shop-a", "release", "gid://shopify/Location/999999")
    source = world.worker.services["storefronts"].assignments(world.bridge.config.channels["shop-a"])
    problems = source.setup_problems()
    assert any(
        "fallback_location gid://shopify/Location/999999 is not an active location" in p for p in problems
    )
    set_fallback(world.bridge, "shop-a", "release", world.shop.location_gid("Warehouse"))
    source = world.worker.services["storefronts"].assignments(world.bridge.config.channels["shop-a"])
    assert source.setup_problems() == []
