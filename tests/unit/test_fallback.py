"""Routing fallback decisions (pure): what an unfulfillable preview does per channel setting and
platform, which units Amazon will not ship after the create, and which Shopify moves hand them back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bridge.amazon.models import (
    FulfillmentOrder,
    FulfillmentOrderItem,
    FulfillmentShipment,
    FulfillmentShipmentItem,
)
from bridge.channels import ConfigError, FallbackOptions, load_channels
from bridge.pipeline.fallback import (
    on_unfulfillable_preview,
    to_lines,
    units_not_shipped,
    units_of_cancelled_shipment,
)
from bridge.storefronts.shopify_fulfillment import FulfillmentOrderLine, FulfillmentOrderView, Move, moves_for
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

CONFIG = load_channels(EXAMPLE_CONFIG, env=TEST_ENV)
WAREHOUSE = "gid://shopify/Location/2"
AMAZON = "gid://shopify/Location/1"


def channel(channel_id: str, action: str, location: str = ""):  # type: ignore[no-untyped-def]
    return replace(CONFIG.channels[channel_id], fallback=FallbackOptions(action, location))


# ------------------------------------------------------------------ unfulfillable preview


@pytest.mark.parametrize(
    ("channel_id", "action", "park", "noted", "release_all"),
    [
        ("shop-a", "none", True, False, False),
        ("shop-a", "notify", True, True, False),
        ("shop-a", "release", False, True, True),
        ("woo-main", "notify", True, True, False),
        ("woo-main", "release", False, True, False),
        ("own-shop", "release", False, True, False),
        ("own-shop", "none", True, False, False),
    ],
)
def test_an_unfulfillable_preview_parks_notifies_or_hands_back_per_channel(
    channel_id: str, action: str, park: bool, noted: bool, release_all: bool
) -> None:
    decision = on_unfulfillable_preview(
        channel(channel_id, action, WAREHOUSE), "Amazon cannot fulfil this order"
    )
    assert (decision.park, bool(decision.note), decision.release_all) == (park, noted, release_all)
    if noted:
        assert decision.note.startswith("Amazon cannot fulfil this order")


def test_a_shopify_release_note_names_the_fallback_location() -> None:
    decision = on_unfulfillable_preview(channel("shop-a", "release", WAREHOUSE), "no stock")
    assert WAREHOUSE in decision.note


# ------------------------------------------------------------------ after the create


def shipment(shipment_id: str, status: str, *items: tuple[str, int]) -> FulfillmentShipment:
    return FulfillmentShipment(
        shipment_id, "PHX7", status, items=tuple(FulfillmentShipmentItem("SKU", i, q) for i, q in items)
    )


def amazon(status: str, shipments: tuple[FulfillmentShipment, ...]) -> FulfillmentOrder:
    return replace(
        FulfillmentOrder("shop-a-1", status),
        items=(FulfillmentOrderItem("A", "item-a", 3), FulfillmentOrderItem("B", "item-b", 2)),
        shipments=shipments,
    )


def test_a_cancelled_shipment_releases_only_its_own_units() -> None:
    order = amazon(
        "Processing",
        (
            shipment("s1", "SHIPPED", ("item-a", 1)),
            shipment("s2", "CANCELLED_BY_FULFILLER", ("item-a", 1), ("item-b", 2)),
        ),
    )
    assert units_of_cancelled_shipment(order, "s2") == {"item-a": 1, "item-b": 2}
    assert units_of_cancelled_shipment(order, "s1") == {}
    assert units_not_shipped(order) == {}, "the order is not final: nothing else is released yet"


@pytest.mark.parametrize("status", ["Unfulfillable", "Invalid", "CompletePartialled"])
def test_a_final_order_releases_what_neither_shipped_nor_was_released_with_a_cancelled_shipment(
    status: str,
) -> None:
    order = amazon(
        status,
        (shipment("s1", "SHIPPED", ("item-a", 1)), shipment("s2", "CANCELLED_BY_FULFILLER", ("item-b", 2))),
    )
    assert units_not_shipped(order) == {"item-a": 2}


def test_a_complete_order_releases_nothing() -> None:
    assert (
        units_not_shipped(amazon("Complete", (shipment("s1", "SHIPPED", ("item-a", 3), ("item-b", 2)),)))
        == {}
    )


def test_amazon_units_become_storefront_line_units() -> None:
    lines = to_lines({"item-a": 2, "item-b": 1, "item-x": 1}, {"item-a": ("L1", "A"), "item-b": ("L1", "B")})
    assert lines == {"L1": 3, "item-x": 1}


# ------------------------------------------------------------------ Shopify moves


def view(fo_id: str, location: str, *lines: tuple[str, int], status: str = "OPEN") -> FulfillmentOrderView:
    return FulfillmentOrderView(
        id=f"gid://shopify/FulfillmentOrder/{fo_id}",
        status=status,
        lines=tuple(
            FulfillmentOrderLine(
                f"gid://shopify/FulfillmentOrderLineItem/{fo_id}{n}", f"gid://shopify/LineItem/{n}", q
            )
            for n, q in lines
        ),
        location_id=location,
    )


FO = "gid://shopify/FulfillmentOrder/"


def test_releasing_everything_moves_whole_fulfillment_orders_at_amazons_location() -> None:
    views = [view("1", AMAZON, ("11", 2)), view("2", "gid://shopify/Location/9", ("12", 1))]
    moves = moves_for(views, {FO + "1"}, None, WAREHOUSE)
    assert moves == [Move(FO + "1", None, (("11", 2),))]


def test_releasing_some_units_moves_only_those_line_items() -> None:
    views = [view("1", AMAZON, ("11", 3), ("12", 1))]
    moves = moves_for(views, {FO + "1"}, {"11": 2}, WAREHOUSE)
    assert moves == [Move(FO + "1", (("gid://shopify/FulfillmentOrderLineItem/111", 2),), (("11", 2),))]


def test_a_release_spans_fulfillment_orders_and_never_moves_more_than_remains() -> None:
    views = [view("1", AMAZON, ("11", 1)), view("2", AMAZON, ("11", 1))]
    moves = moves_for(views, {FO + "1", FO + "2"}, {"11": 5}, WAREHOUSE)
    assert [m.moved for m in moves] == [(("11", 1),), (("11", 1),)]


def test_fulfillment_orders_already_at_the_target_or_finished_are_left_alone() -> None:
    views = [view("1", WAREHOUSE, ("11", 1)), view("2", AMAZON, ("11", 1), status="CLOSED")]
    assert moves_for(views, {FO + "1", FO + "2"}, None, WAREHOUSE) == []


# ------------------------------------------------------------------ configuration


def test_release_on_shopify_without_a_location_is_a_config_error(tmp_path: Path) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        "    fallback: none ", "    fallback: release ", 1
    )
    path = tmp_path / "channels.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_channels(path, env=TEST_ENV)
    assert "fallback_location" in str(caught.value)
    fixed = text.replace(
        "    # fallback_location: gid://shopify/Location/2",
        "    fallback_location: gid://shopify/Location/7",
        1,
    )
    path.write_text(fixed, encoding="utf-8")
    loaded = load_channels(path, env=TEST_ENV).channels["shop-a"].fallback
    assert (loaded.action, loaded.location) == ("release", "gid://shopify/Location/7")
