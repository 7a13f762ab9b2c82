"""Which part of a Shopify order is Amazon's (pure): fulfillment orders by location and request
status, configured locations by gid or name, and the channel options that choose the mode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.channels import ConfigError, parse_channels
from bridge.orders import CanonicalOrder, OrderLine, PaymentState
from bridge.storefronts.push import PushError
from bridge.storefronts.shopify_fulfillment import (
    FulfillmentOrderLine,
    FulfillmentOrderView,
    Location,
    OurLocations,
    assignment_of,
    resolve_locations,
)
from bridge.storefronts.shopify_push import allocate
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

AMAZON = "gid://shopify/Location/1"
OTHER = "gid://shopify/Location/2"
OURS = OurLocations(frozenset({AMAZON}), ("Amazon FBA",))


def line(line_id: str, remaining: int, *, shipping: bool = True, sku: str = "SKU") -> FulfillmentOrderLine:
    return FulfillmentOrderLine(
        f"gid://shopify/FulfillmentOrderLineItem/{line_id}0",
        f"gid://shopify/LineItem/{line_id}",
        remaining,
        requires_shipping=shipping,
        sku=sku,
    )


def fo(
    fo_id: int,
    *lines: FulfillmentOrderLine,
    location: str = AMAZON,
    status: str = "OPEN",
    request: str = "UNSUBMITTED",
    service: bool = False,
) -> FulfillmentOrderView:
    return FulfillmentOrderView(
        f"gid://shopify/FulfillmentOrder/{fo_id}",
        status,
        tuple(lines),
        request_status=request,
        location_id=location,
        location_name="Amazon FBA" if location == AMAZON else "Warehouse",
        at_fulfillment_service=service,
    )


def order(*lines: tuple[str, int]) -> CanonicalOrder:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return CanonicalOrder(
        channel_id="shop-a",
        external_id="1001",
        display_id="#1001",
        currency="USD",
        payment_state=PaymentState.PAID,
        created_at=now,
        updated_at=now,
        lines=tuple(OrderLine(i, f"SKU-{i}", q, "1.00") for i, q in lines),
    )


# --------------------------------------------------------------------------------------------
# Merchant-managed


def test_only_fulfillment_orders_at_amazons_location_with_what_remains_are_amazons() -> None:
    found = assignment_of(
        [fo(1, line("11", 1), line("12", 2)), fo(2, line("13", 1), location=OTHER)],
        OURS,
        fulfillment_service=False,
    )

    restricted = found.restrict(order(("11", 3), ("12", 2), ("13", 1)))
    assert [(x.line_id, x.to_fulfil) for x in restricted.lines] == [("11", 1), ("12", 2)]
    assert found.left_to_others == ("line 13 x1 at Warehouse",)
    assert not found.requested and not found.to_accept


def test_a_line_split_between_locations_keeps_only_amazons_units() -> None:
    found = assignment_of(
        [fo(1, line("11", 1)), fo(2, line("11", 2), location=OTHER)], OURS, fulfillment_service=False
    )

    assert found.quantities() == {"11": 1}


def test_lines_needing_no_shipping_and_closed_fulfillment_orders_are_left_out() -> None:
    found = assignment_of(
        [fo(1, line("11", 1), line("12", 1, shipping=False)), fo(3, line("14", 1), status="CLOSED")],
        OURS,
        fulfillment_service=False,
    )

    assert found.quantities() == {"11": 1}
    assert "line 12 needs no shipping" in found.left_to_others


def test_nothing_at_amazons_location_is_not_ours_and_says_where_to_look() -> None:
    found = assignment_of([fo(1, line("11", 1), location=OTHER)], OURS, fulfillment_service=False)
    assert (
        "no fulfillment order of this order is assigned to Amazon's location(s) 'Amazon FBA'"
        in found.not_ours
    )

    done = assignment_of([fo(1, line("11", 0), status="CLOSED")], OURS, fulfillment_service=False)
    assert done.not_ours.startswith("nothing left to ship")


@pytest.mark.parametrize("status", ["ON_HOLD", "SCHEDULED"])
def test_a_held_fulfillment_order_makes_the_whole_order_wait(status: str) -> None:
    found = assignment_of(
        [fo(1, line("11", 1)), fo(2, line("12", 1), status=status)], OURS, fulfillment_service=False
    )

    assert found.waiting and not found.units and not found.requested


def test_an_edited_line_the_stored_order_lacks_is_added_from_the_fulfillment_order() -> None:
    found = assignment_of([fo(1, line("11", 1), line("99", 2, sku="NEW"))], OURS, fulfillment_service=False)

    restricted = found.restrict(order(("11", 1)))
    assert [(x.line_id, x.sku, x.quantity) for x in restricted.lines] == [
        ("11", "SKU-11", 1),
        ("99", "NEW", 2),
    ]


# --------------------------------------------------------------------------------------------
# Fulfillment service


def test_submitted_requests_are_to_accept_and_accepted_ones_stay_ours() -> None:
    found = assignment_of(
        [
            fo(1, line("11", 1), request="SUBMITTED"),
            fo(2, line("12", 1), request="ACCEPTED", status="IN_PROGRESS"),
            fo(3, line("13", 1), request="UNSUBMITTED"),
        ],
        OURS,
        fulfillment_service=True,
    )

    assert found.requested
    assert found.to_accept == ("gid://shopify/FulfillmentOrder/1",)
    assert found.quantities() == {"11": 1, "12": 1}


@pytest.mark.parametrize("request_status", ["UNSUBMITTED", "REJECTED", "CANCELLATION_REQUESTED"])
def test_nothing_requested_waits_for_the_request(request_status: str) -> None:
    status = "IN_PROGRESS" if request_status == "CANCELLATION_REQUESTED" else "OPEN"
    found = assignment_of(
        [fo(1, line("11", 1), request=request_status, status=status)], OURS, fulfillment_service=True
    )

    assert found.waiting and found.requested and not found.units


# --------------------------------------------------------------------------------------------
# Locations


def test_locations_resolve_by_gid_or_by_name_ignoring_case() -> None:
    shop = [Location(AMAZON, "Amazon FBA"), Location(OTHER, "Warehouse")]
    ours, problems = resolve_locations(["amazon fba", OTHER], shop)

    assert ours.ids == {AMAZON, OTHER} and problems == []


def test_unknown_ambiguous_and_deactivated_locations_are_problems_naming_the_shops_locations() -> None:
    shop = [
        Location(AMAZON, "Amazon FBA"),
        Location(OTHER, "Twin"),
        Location("gid://shopify/Location/3", "Twin"),
    ]
    _, problems = resolve_locations(["Amazon", "Twin", "gid://shopify/Location/9"], shop)
    assert problems[0] == "no location 'Amazon' in the shop (its locations: 'Amazon FBA', 'Twin', 'Twin')"
    assert "several locations are named 'Twin'" in problems[1]
    assert "gid://shopify/Location/9" in problems[2]

    _, inactive = resolve_locations(["Amazon FBA"], [Location(AMAZON, "Amazon FBA", active=False)])
    assert inactive == ["location 'Amazon FBA' is deactivated in Shopify"]


# --------------------------------------------------------------------------------------------
# Push-back allocation


def test_allocation_pushes_what_is_open_and_reports_the_rest_with_the_reason() -> None:
    views = [
        fo(1, line("11", 1)),
        fo(2, line("12", 0), status="CLOSED"),
        fo(3, line("13", 1), location=OTHER),
    ]
    eligible = views[:2]
    wanted = {"gid://shopify/LineItem/11": 2, "gid://shopify/LineItem/12": 1, "gid://shopify/LineItem/13": 1}

    allocation, not_pushed = allocate(wanted, eligible, views, "1001")

    assert allocation == {
        "gid://shopify/FulfillmentOrder/1": [("gid://shopify/FulfillmentOrderLineItem/110", 1)]
    }
    reasons = {x.line_id: (x.quantity, x.why) for x in not_pushed}
    assert reasons["11"] == (1, "already fulfilled in Shopify (by the merchant or another app)")
    assert reasons["12"] == (1, "fulfillment order 2 is closed in Shopify")
    assert reasons["13"] == (1, "assigned in Shopify to Warehouse, not to Amazon's location")


def test_allocation_waits_when_the_shortfall_is_on_hold() -> None:
    views = [fo(1, line("11", 1), status="ON_HOLD")]
    with pytest.raises(PushError) as caught:
        allocate({"gid://shopify/LineItem/11": 1}, views, views, "1001")
    assert caught.value.code == "fulfillment_on_hold" and caught.value.retryable


# --------------------------------------------------------------------------------------------
# Channel options


def example(replace_from: str, replace_to: str) -> str:
    text = EXAMPLE_CONFIG.read_text()
    assert replace_from in text
    return text.replace(replace_from, replace_to, 1)


SHOP_BLOCK = "      notify_customer: true\n"


def test_shopify_options_are_typed_and_a_missing_location_list_is_a_warning() -> None:
    plain = parse_channels(EXAMPLE_CONFIG.read_text(), env=TEST_ENV)
    assert any("shopify.locations is not set" in w for w in plain.warnings)
    assert not plain.channels["shop-a"].shopify.restricted

    text = example(
        SHOP_BLOCK, SHOP_BLOCK + "    shopify:\n      locations: [Amazon FBA, 'gid://shopify/Location/7']\n"
    )
    options = parse_channels(text, env=TEST_ENV).channels["shop-a"].shopify
    assert options.locations == ("Amazon FBA", "gid://shopify/Location/7") and options.restricted
    assert options.mode == "merchant_managed"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("    shopify:\n      mode: fulfillment_service\n", "needs the bridge's public base URL"),
        (
            "    shopify:\n      mode: fulfillment_service\n      callback_url: https://b.example\n"
            "      locations: [A]\n",
            "exactly one location",
        ),
        ("    shopify:\n      callback_url: https://b.example\n", "only used in fulfillment_service mode"),
        ("    shopify:\n      mode: dropship\n", "use one of: merchant_managed, fulfillment_service"),
        ("    shopify:\n      locations: []\n", "must not be empty"),
    ],
)
def test_bad_shopify_options_are_explained(block: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_channels(example(SHOP_BLOCK, SHOP_BLOCK + block), env=TEST_ENV)
    assert message in str(caught.value)


def test_shopify_options_on_another_platform_are_refused() -> None:
    text = example(
        "      shipment_tracking_extension: true\n",
        "      shipment_tracking_extension: true\n    shopify:\n      locations: [A]\n",
    )
    with pytest.raises(ConfigError) as caught:
        parse_channels(text, env=TEST_ENV)
    assert "shopify options on a non-Shopify channel" in str(caught.value)
