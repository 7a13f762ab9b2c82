"""Splitting an order beyond Amazon's limits (pure): parts within 100 items and 250 units, ids
`<id>-<n>` derived from the order, one combined status, and a cancellation's outcome over parts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.amazon.models import FulfillmentOrder, FulfillmentShipment
from bridge.channels import load_channels
from bridge.orders import Address, CanonicalOrder, OrderLine, PaymentState
from bridge.pipeline.cancel import parts_outcome
from bridge.pipeline.plan import Park, Plan, plan_submission
from bridge.pipeline.split import MAX_ITEMS, MAX_UNITS, combine, combined_status, part_id, plan_parts
from bridge.schemas import schema_problems
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

SHOP = load_channels(EXAMPLE_CONFIG, env=TEST_ENV).channels["shop-a"]
SPLITTING = replace(SHOP, split_large_orders=True, sku_map={f"S{n}": f"FBA-S{n}" for n in range(300)})
WHEN = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def plan_for(quantities: list[int]) -> Plan:
    order = CanonicalOrder(
        channel_id="shop-a",
        external_id="1001",
        display_id="#1001",
        currency="USD",
        payment_state=PaymentState.PAID,
        created_at=WHEN,
        updated_at=WHEN,
        lines=tuple(OrderLine(f"L{n}", f"S{n}", q, "1.00") for n, q in enumerate(quantities)),
        destination=Address(
            name="A B", line1="1 Main St", postal_code="10001", country_code="US", state="NY"
        ),
        gift_message="Happy birthday",
    )
    plan = plan_submission(order, SPLITTING)
    assert isinstance(plan, Plan)
    return plan


def test_an_order_within_the_limits_is_one_part_unchanged() -> None:
    plan = plan_for([1, 2, 3])
    assert plan_parts(plan, SPLITTING) == (plan,)


def test_an_order_beyond_the_limits_is_parked_unless_the_channel_splits_it() -> None:
    parked = plan_parts(plan_for([250, 1]), SHOP)
    assert isinstance(parked, Park)
    assert "251 unit(s)" in parked.reason and "split_large_orders: true" in parked.reason
    many = plan_parts(plan_for([1] * 101), SHOP)
    assert isinstance(many, Park) and "101 item(s)" in many.reason
    split = plan_parts(plan_for([1] * 101), SPLITTING)
    assert isinstance(split, tuple) and [len(p.create.items) for p in split] == [100, 1]


def test_units_beyond_250_go_to_further_parts_with_derived_ids() -> None:
    parts = plan_parts(plan_for([300, 10]), SPLITTING)
    assert isinstance(parts, tuple)
    assert [p.seller_fulfillment_order_id for p in parts] == ["shop-a-1001-1", "shop-a-1001-2"]
    assert [[(i.seller_sku, i.quantity) for i in p.create.items] for p in parts] == [
        [("FBA-S0", 250)],
        [("FBA-S0", 50), ("FBA-S1", 10)],
    ]
    assert [[(i.seller_sku, i.quantity) for i in p.preview.items] for p in parts] == [
        [(i.seller_sku, i.quantity) for i in p.create.items] for p in parts
    ]
    assert parts[0].create.items[0].gift_message == "Happy birthday"
    assert parts[1].create.items[0].gift_message is None, "the gift message goes once"
    assert parts[1].create.displayable_order_comment.endswith("(part 2 of 2)")
    assert dict(parts[1].line_of_item) == {"L0": "L0", "L1": "L1"}
    for part in parts:
        assert schema_problems("spapi/create_fulfillment_order", part.create.to_api()) == []


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=260))
def test_every_part_is_within_amazons_limits_and_every_unit_is_sent_once(quantities: list[int]) -> None:
    base = plan_for([1])
    items = tuple(
        replace(
            base.create.items[0],
            seller_sku=f"FBA-S{n}",
            seller_fulfillment_order_item_id=f"L{n}",
            quantity=q,
            gift_message=None,
        )
        for n, q in enumerate(quantities)
    )
    parts = plan_parts(replace(base, create=replace(base.create, items=items)), SPLITTING)
    assert isinstance(parts, tuple)
    sent: dict[str, int] = {}
    for part in parts:
        assert len(part.create.items) <= MAX_ITEMS
        assert sum(i.quantity for i in part.create.items) <= MAX_UNITS
        ids = [i.seller_fulfillment_order_item_id for i in part.create.items]
        assert len(ids) == len(set(ids)), "an item appears once per part"
        for i in part.create.items:
            sent[i.seller_fulfillment_order_item_id] = (
                sent.get(i.seller_fulfillment_order_item_id, 0) + i.quantity
            )
    assert sent == {f"L{n}": q for n, q in enumerate(quantities)}
    assert len({p.seller_fulfillment_order_id for p in parts}) == len(parts)


def test_part_ids_stay_within_40_characters() -> None:
    assert part_id("shop-a-1001", 3) == "shop-a-1001-3"
    long = part_id("x" * 39, 12)
    assert len(long) <= 40 and long.endswith("-12") and long.startswith("fbb-")
    assert part_id("x" * 39, 12) == long, "deterministic"


@pytest.mark.parametrize(
    ("statuses", "combined"),
    [
        (["Received", "Received"], "Received"),
        (["Complete", "Processing"], "Processing"),
        (["Received", "Planning"], "Processing"),
        (["Complete", "Complete"], "Complete"),
        (["Complete", "Unfulfillable"], "CompletePartialled"),
        (["Cancelled", "Unfulfillable"], "Unfulfillable"),
        (["Cancelled", "Cancelled"], "Cancelled"),
        (["CompletePartialled", "Cancelled"], "CompletePartialled"),
    ],
)
def test_the_parts_statuses_combine_into_one(statuses: list[str], combined: str) -> None:
    assert combined_status(statuses) == combined


def test_combined_parts_hold_every_shipment() -> None:
    parts = [
        replace(
            FulfillmentOrder("x-1", "Complete"), shipments=(FulfillmentShipment("s1", "PHX7", "SHIPPED"),)
        ),
        replace(
            FulfillmentOrder("x-2", "Processing"), shipments=(FulfillmentShipment("s2", "PHX7", "PENDING"),)
        ),
    ]
    merged = combine(parts)
    assert merged.status == "Processing"
    assert [s.amazon_shipment_id for s in merged.shipments] == ["s1", "s2"]


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([None, None], None),
        (["Received", "Planning"], "Cancelled"),
        (["Received", None], "Cancelled"),
        (["Received", "Processing"], "part(s) x-2 (Processing)"),
        (["too late", "Received"], "part(s) x-1 (too late)"),
    ],
)
def test_a_split_orders_cancellation_names_the_parts_amazon_cannot_cancel(
    statuses: list[str | None], outcome: str | None
) -> None:
    assert parts_outcome(["x-1", "x-2"], statuses) == outcome
