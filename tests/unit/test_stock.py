"""What a storefront may sell: buffers, in-flight units, reverse SKU maps (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bridge.channels import Channel, InventoryConfig, StockBuffer
from bridge.orders import CanonicalOrder, OrderLine, OrderState, PaymentState
from bridge.pipeline.stock import (
    IN_FLIGHT_STATES,
    held_back,
    in_flight_units,
    mapping_digest,
    needs_push,
    reverse_map,
    sellable,
    targets_for,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def channel(channel_id: str = "shop", sku_map: dict[str, str] | None = None, **inventory: object) -> Channel:
    return Channel(
        id=channel_id,
        platform="generic",
        webhook_secrets=(),
        account_id="main",
        marketplace_id="ATVPDKIKX0DER",
        sku_map=sku_map
        if sku_map is not None
        else {"RED": "FBA-RED", "RED-BUNDLE": "FBA-RED", "MUG": "FBA-MUG"},
        inventory=InventoryConfig(sync=True, **inventory),  # type: ignore[arg-type]
    )


def order(*lines: tuple[str, int], cancelled: bool = False, shipping: bool = True) -> CanonicalOrder:
    return CanonicalOrder(
        channel_id="shop",
        external_id="1",
        display_id="#1",
        currency="USD",
        payment_state=PaymentState.PAID,
        created_at=NOW,
        updated_at=NOW,
        lines=tuple(
            OrderLine(str(i), sku, qty, "1.00", requires_shipping=shipping)
            for i, (sku, qty) in enumerate(lines)
        ),
        cancelled=cancelled,
    )


@pytest.mark.parametrize(
    ("fulfillable", "in_flight", "buffer", "expected"),
    [
        (10, 0, StockBuffer(), 10),
        (10, 3, StockBuffer(), 7),
        (10, 0, StockBuffer(units=2), 8),
        (10, 3, StockBuffer(units=2), 5),
        (1, 0, StockBuffer(units=2), 0),  # never below zero
        (2, 5, StockBuffer(), 0),  # more in flight than Amazon holds
        (100, 0, StockBuffer(percent=Decimal(10)), 90),
        (15, 0, StockBuffer(percent=Decimal(10)), 13),  # 1.5 units held back: rounded up to 2
        (1, 0, StockBuffer(percent=Decimal("0.5")), 0),  # a share never sells the last unit
        (20, 10, StockBuffer(percent=Decimal(50)), 5),  # the share is of what is left after in-flight
        (0, 0, StockBuffer(units=3), 0),
        (-4, 0, StockBuffer(), 0),  # a negative report from Amazon counts as none
    ],
)
def test_sellable_is_fulfillable_minus_in_flight_minus_buffer_never_below_zero(
    fulfillable: int, in_flight: int, buffer: StockBuffer, expected: int
) -> None:
    assert sellable(fulfillable, in_flight, buffer) == expected


def test_held_back_is_nothing_when_nothing_is_left() -> None:
    assert held_back(0, StockBuffer(units=5)) == 0
    assert held_back(-3, StockBuffer(percent=Decimal(20))) == 0


def test_stock_buffer_parses_units_and_shares() -> None:
    assert StockBuffer.parse(3) == StockBuffer(units=3)
    assert StockBuffer.parse("12.5%") == StockBuffer(percent=Decimal("12.5"))
    assert str(StockBuffer.parse("10%")) == "10%"
    assert str(StockBuffer.parse(2)) == "2"


def test_a_sku_buffer_overrides_the_channel_buffer() -> None:
    ch = channel(buffer=StockBuffer(units=5), sku_buffers={"MUG": StockBuffer(percent=Decimal(50))})
    by_sku = {
        t.storefront_sku: t.target
        for t in targets_for(ch, ["FBA-RED", "FBA-MUG"], {"FBA-RED": 20, "FBA-MUG": 20}, {})
    }
    assert by_sku == {"RED": 15, "RED-BUNDLE": 15, "MUG": 10}


def test_reverse_map_lists_every_storefront_sku_of_an_amazon_sku() -> None:
    assert reverse_map({"A": "X", "B": "X", "C": "Y"}) == {"X": ("A", "B"), "Y": ("C",)}


def test_several_storefront_skus_of_one_amazon_sku_each_get_the_whole_quantity() -> None:
    targets = targets_for(channel(), ["FBA-RED"], {"FBA-RED": 7}, {"FBA-RED": 2})
    assert [(t.storefront_sku, t.fulfillable, t.in_flight, t.target) for t in targets] == [
        ("RED", 7, 2, 5),
        ("RED-BUNDLE", 7, 2, 5),
    ]


def test_an_amazon_sku_without_a_stock_record_sells_nothing() -> None:
    [target] = targets_for(channel(), ["FBA-MUG"], {}, {})
    assert (target.fulfillable, target.target) == (0, 0)


def test_targets_only_for_the_asked_amazon_skus_of_the_channel() -> None:
    targets = targets_for(channel(), ["FBA-MUG", "FBA-OTHER"], {"FBA-MUG": 1, "FBA-RED": 9}, {})
    assert [t.storefront_sku for t in targets] == ["MUG"]


def test_in_flight_units_sum_mapped_shipped_lines_over_channels() -> None:
    a = channel("a", {"RED": "FBA-RED", "MUG": "FBA-MUG"})
    b = channel("b", {"red-b": "FBA-RED"})
    units = in_flight_units(
        [
            (a, order(("RED", 2), ("MUG", 1), ("UNMAPPED", 5))),
            (b, order(("red-b", 3))),
            (a, order(("RED", 4), cancelled=True)),  # a cancelled order holds nothing
            (a, order(("MUG", 9), shipping=False)),  # not a physical line
        ]
    )
    assert units == {"FBA-RED": 5, "FBA-MUG": 1}


def test_in_flight_states_are_the_accepted_orders_amazon_does_not_hold_yet() -> None:
    assert {
        OrderState.RECEIVED,
        OrderState.AWAITING_PAYMENT,
        OrderState.AWAITING_APPROVAL,
        OrderState.NEEDS_ATTENTION,
        OrderState.SUBMITTING,
    } == IN_FLIGHT_STATES
    # Amazon's fulfillable quantity already lacks the units of these:
    for state in (OrderState.SUBMITTED, OrderState.HELD_AT_AMAZON, OrderState.PARTIALLY_SHIPPED):
        assert state not in IN_FLIGHT_STATES


def test_a_push_is_needed_only_when_the_storefront_value_differs() -> None:
    assert needs_push(5, None)
    assert needs_push(5, 4)
    assert not needs_push(5, 5)


def test_the_mapping_digest_follows_maps_and_buffers_only() -> None:
    base = channel()
    assert mapping_digest([base]) == mapping_digest([replace(base)])
    assert mapping_digest([base]) != mapping_digest([replace(base, sku_map={"RED": "FBA-RED"})])
    assert mapping_digest([base]) != mapping_digest(
        [replace(base, inventory=replace(base.inventory, buffer=StockBuffer(units=1)))]
    )
    assert mapping_digest([base]) != mapping_digest(
        [replace(base, inventory=replace(base.inventory, sku_buffers={"RED": StockBuffer(units=1)}))]
    )
    assert mapping_digest([base]) == mapping_digest(
        [replace(base, inventory=replace(base.inventory, interval_s=60.0))]
    )
