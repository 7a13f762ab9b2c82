"""Amendments are computed against what Amazon was sent, not against the stored order."""

from dataclasses import replace

import pytest

from bridge.amazon.models import FulfillmentAction
from bridge.channels import Channel, ChannelsConfig
from bridge.orders import Address, CanonicalOrder, OrderLine
from bridge.pipeline.amendment import Submission, left_for_merchant, plan_amendment, submission_of
from bridge.pipeline.plan import Plan, plan_submission
from tests.integration.test_intake_service import make_order


@pytest.fixture
def shop(channels_config: ChannelsConfig) -> Channel:
    return channels_config.channels["shop-a"]


def submitted(order: CanonicalOrder, channel: Channel, *, hold: bool = False) -> Submission:
    plan = plan_submission(order, channel, hold=hold)
    assert isinstance(plan, Plan)
    return (
        Submission.from_json(submission_of(order, plan, order.content_version()).to_json()) or pytest.fail()
    )


TWO_LINES = (OrderLine("1", "TSHIRT-RED-M", 3, "1"), OrderLine("2", "MUG-WHITE", 1, "1"))


def test_nothing_amazon_cares_about_changed_means_no_request(shop: Channel) -> None:
    order = make_order(lines=TWO_LINES)
    amendment = plan_amendment(replace(order, notes="hi"), shop, submitted(order, shop), release=False)
    assert amendment.empty and not amendment.refused and not amendment.cancel


def test_address_and_speed_go_in_one_request_quantities_in_another(shop: Channel) -> None:
    order = make_order(lines=TWO_LINES)
    before = submitted(order, shop)
    moved = Address(name="A B", line1="2 Other St", country_code="US", postal_code="10002")
    edited = replace(
        order,
        destination=moved,
        shipping_method="Express Shipping",
        lines=(OrderLine("1", "TSHIRT-RED-M", 2, "1"), TWO_LINES[1]),
    )
    amendment = plan_amendment(edited, shop, before, release=False)
    assert amendment.order_fields is not None and amendment.items is not None
    fields = amendment.order_fields.to_api()
    assert set(fields) == {"destinationAddress", "shippingSpeedCategory"}
    assert amendment.items.to_api() == {"items": [{"sellerFulfillmentOrderItemId": "1", "quantity": 2}]}
    after = amendment.result(before, fields_applied=True, items_applied=False)
    assert after.speed == "Expedited" and [i.quantity for i in after.items] == [3, 1]
    assert after.version == edited.content_version()
    assert plan_amendment(edited, shop, after, release=False).order_fields is None, "applied once"


def test_quantities_follow_the_storefronts_change_not_its_absolute_value(shop: Channel) -> None:
    """Amazon was sent 2 of a line the storefront wanted 3 of (1 was fulfilled elsewhere); the
    storefront lowers it to 2: one unit fewer, so Amazon ships 1, not 2."""
    order = make_order(lines=(OrderLine("1", "TSHIRT-RED-M", 3, "1", fulfillable_quantity=2),))
    before = submitted(order, shop)
    assert [i.quantity for i in before.items] == [2]
    edited = replace(order, lines=(OrderLine("1", "TSHIRT-RED-M", 2, "1", fulfillable_quantity=1),))
    amendment = plan_amendment(edited, shop, before, release=False)
    assert amendment.items is not None
    assert amendment.items.to_api()["items"][0]["quantity"] == 1


def test_what_update_cannot_express_is_refused_and_everything_gone_is_a_cancel(shop: Channel) -> None:
    order = make_order(lines=TWO_LINES)
    before = submitted(order, shop)
    added = replace(order, lines=(*TWO_LINES, OrderLine("3", "MUG-WHITE", 1, "1")))
    assert any("was added" in r for r in plan_amendment(added, shop, before, release=False).refused)
    removed = replace(order, lines=(TWO_LINES[0], replace(TWO_LINES[1], quantity=0)))
    assert any("was removed" in r for r in plan_amendment(removed, shop, before, release=False).refused)
    emptied = replace(order, lines=tuple(replace(line, quantity=0) for line in TWO_LINES))
    assert plan_amendment(emptied, shop, before, release=False).cancel


def test_payment_releases_a_hold(shop: Channel) -> None:
    order = make_order()
    before = submitted(order, shop, hold=True)
    amendment = plan_amendment(order, shop, before, release=True)
    assert amendment.releases and amendment.order_fields is not None
    assert amendment.order_fields.fulfillment_action is FulfillmentAction.SHIP


def test_a_new_address_amazon_would_reject_is_refused_without_its_values(shop: Channel) -> None:
    order = make_order()
    before = submitted(order, shop)
    bad = replace(
        order, destination=Address(name="Canary", line1="x" * 300, country_code="US", postal_code="1")
    )
    amendment = plan_amendment(bad, shop, before, release=False)
    assert amendment.order_fields is None
    assert any("addressLine1" in r for r in amendment.refused) and not any(
        "Canary" in r for r in amendment.refused
    )


def test_what_is_left_for_the_merchant_is_what_amazon_was_not_asked_to_ship(shop: Channel) -> None:
    order = make_order(lines=(OrderLine("1", "TSHIRT-RED-M", 1, "1"), OrderLine("2", "NOT-MAPPED", 2, "1")))
    before = submitted(order, shop)
    left = left_for_merchant(order, before, shipped={"1": 1})
    assert [(line.line_id, line.sku, line.quantity) for line in left] == [("2", "NOT-MAPPED", 2)]
    assert left_for_merchant(order, None, shipped={"1": 1, "2": 2}) == []
