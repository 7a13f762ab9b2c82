from dataclasses import replace
from decimal import Decimal

import pytest

from bridge.amazon.models import Fee, FulfillmentPreview, Money, UnfulfillablePreviewItem
from bridge.channels import Channel, ChannelsConfig
from bridge.orders import Address, OrderLine
from bridge.pipeline.plan import Park, Plan, Skip, judge_preview, plan_submission, seller_fulfillment_order_id
from tests.integration.test_intake_service import make_order


@pytest.fixture
def shop(channels_config: ChannelsConfig) -> Channel:
    return channels_config.channels["shop-a"]


def test_seller_fulfillment_order_id_is_readable_deterministic_and_safe() -> None:
    assert seller_fulfillment_order_id("shop-a", "5001") == "shop-a-5001"
    odd = seller_fulfillment_order_id("shop-a", "A+B 12/3")
    assert odd == seller_fulfillment_order_id("shop-a", "A+B 12/3")
    long = seller_fulfillment_order_id("a-very-long-channel-identifier", "12345678901234567890")
    for value in (odd, long):
        assert len(value) <= 40 and value.replace("-", "").replace("_", "").isalnum()
    assert seller_fulfillment_order_id("c1", "x y") != seller_fulfillment_order_id("c2", "x y")


def test_plan_maps_skus_speed_comment_and_policy(shop: Channel) -> None:
    order = make_order(shipping_method="Express Shipping", gift_message="Enjoy")
    plan = plan_submission(order, shop)
    assert isinstance(plan, Plan)
    body = plan.create.to_api()
    assert body["sellerFulfillmentOrderId"] == "shop-a-5001"
    assert body["shippingSpeedCategory"] == "Expedited"
    assert body["items"] == [
        {
            "sellerSku": "FBA-TSHIRT-RED-M",
            "sellerFulfillmentOrderItemId": "11",
            "quantity": 1,
            "giftMessage": "Enjoy",
        }
    ]
    assert body["displayableOrderComment"] == "Thank you for your order #5001!"
    assert body["fulfillmentPolicy"] == "FillOrKill" and body["fulfillmentAction"] == "Ship"
    assert plan.preview.to_api()["shippingSpeedCategories"] == ["Expedited"]


def test_unmapped_sku_is_skipped_or_held_per_channel_policy(shop: Channel) -> None:
    order = make_order(
        lines=(OrderLine("1", "TSHIRT-RED-M", 1, "1.00"), OrderLine("2", "NOT-AT-AMAZON", 1, "1.00"))
    )
    plan = plan_submission(order, shop)
    assert isinstance(plan, Plan) and plan.skipped_skus == ("NOT-AT-AMAZON",)
    assert [i["sellerSku"] for i in plan.create.to_api()["items"]] == ["FBA-TSHIRT-RED-M"]
    held = plan_submission(order, replace(shop, unmapped_policy="hold"))
    assert isinstance(held, Park) and "NOT-AT-AMAZON" in held.reason and "skus.map" in held.reason


def test_nothing_for_amazon_is_skipped(shop: Channel) -> None:
    assert isinstance(plan_submission(make_order(lines=(OrderLine("1", "OTHER", 1, "1"),)), shop), Skip)
    digital = make_order(lines=(OrderLine("1", "TSHIRT-RED-M", 1, "1", requires_shipping=False),))
    assert isinstance(plan_submission(digital, shop), Skip)


def test_country_outside_the_channel_is_parked(shop: Channel) -> None:
    order = make_order(destination=Address(name="X Y", line1="1 Rue", country_code="FR", postal_code="75001"))
    parked = plan_submission(order, shop)
    assert isinstance(parked, Park) and "FR" in parked.reason and "CA, US" in parked.reason


def test_what_amazon_would_reject_is_parked_with_field_names_not_values(shop: Channel) -> None:
    long_line = "Canary Street " * 20
    order = make_order(
        destination=Address(
            name="Canary Person", line1=long_line, country_code="US", postal_code="1" * 21, phone="9" * 21
        )
    )
    parked = plan_submission(order, shop)
    assert isinstance(parked, Park)
    assert all(
        f"destinationAddress.{field}" in parked.reason for field in ("addressLine1", "postalCode", "phone")
    )
    assert "Canary" not in parked.reason


def test_missing_address_is_parked(shop: Channel) -> None:
    parked = plan_submission(make_order(destination=None), shop)
    assert isinstance(parked, Park) and "no shipping address" in parked.reason


def test_unpaid_order_on_hold_channel_is_created_with_hold(shop: Channel) -> None:
    plan = plan_submission(make_order(), shop, hold=True)
    assert isinstance(plan, Plan) and plan.create.to_api()["fulfillmentAction"] == "Hold"


def preview(
    fulfillable: bool = True,
    fee: str = "5.00",
    currency: str = "USD",
    speed: str = "Standard",
    items: tuple[UnfulfillablePreviewItem, ...] = (),
) -> FulfillmentPreview:
    return FulfillmentPreview(
        shipping_speed_category=speed,
        is_fulfillable=fulfillable,
        estimated_fees=(Fee("FBAPerUnitFulfillmentFee", Money(currency, Decimal(fee))),),
        unfulfillable_items=items,
        order_unfulfillable_reasons=() if fulfillable else ("InvalidDestinationAddress",),
    )


def test_preview_rules(shop: Channel) -> None:
    plan = plan_submission(make_order(), shop)
    assert isinstance(plan, Plan)
    assert judge_preview([preview()], plan, shop) is None
    over = judge_preview([preview(fee="31.20")], plan, shop)
    assert isinstance(over, Park) and "31.20 USD exceed the channel's cap 25.00 USD" in over.reason
    item = UnfulfillablePreviewItem("FBA-TSHIRT-RED-M", "11", 1, ("InventoryUnavailable",))
    bad = judge_preview([preview(fulfillable=False, items=(item,))], plan, shop)
    assert isinstance(bad, Park)
    assert (
        "FBA-TSHIRT-RED-M: InventoryUnavailable" in bad.reason and "InvalidDestinationAddress" in bad.reason
    )
    other_speed = judge_preview([preview(speed="Priority")], plan, shop)
    assert isinstance(other_speed, Park) and "no preview for shipping speed Standard" in other_speed.reason
    wrong_currency = judge_preview([preview(currency="EUR")], plan, shop)
    assert isinstance(wrong_currency, Park) and "fee_cap" in wrong_currency.reason


def test_a_test_order_is_skipped_unless_the_channel_ships_test_orders(shop: Channel) -> None:
    test_order = make_order(test=True)
    skipped = plan_submission(test_order, shop)
    assert isinstance(skipped, Skip) and "test_orders: ship" in skipped.reason
    shipped = plan_submission(test_order, replace(shop, test_orders="ship"))
    assert isinstance(shipped, Plan) and any("test_orders: ship" in note for note in shipped.notes)


def test_the_fulfillable_quantity_is_planned_and_emptied_lines_are_left_out(shop: Channel) -> None:
    order = make_order(
        lines=(
            OrderLine("1", "TSHIRT-RED-M", 2, "1", fulfillable_quantity=1, ordered_quantity=3),
            OrderLine("2", "MUG-WHITE", 0, "1", ordered_quantity=1),
        )
    )
    plan = plan_submission(order, shop)
    assert isinstance(plan, Plan)
    assert [(i.seller_sku, i.quantity) for i in plan.create.items] == [("FBA-TSHIRT-RED-M", 1)]
    gone = make_order(lines=(OrderLine("1", "TSHIRT-RED-M", 2, "1", fulfillable_quantity=0),))
    skipped = plan_submission(gone, shop)
    assert isinstance(skipped, Skip) and "nothing left to fulfil" in skipped.reason


def test_the_shipping_code_is_matched_when_the_title_is_not(shop: Channel) -> None:
    channel = replace(shop, shipping_map={**shop.shipping_map, "next-day": "Priority"})
    plan = plan_submission(make_order(shipping_method="Overnight", shipping_method_code="Next-Day"), channel)
    assert isinstance(plan, Plan) and plan.create.to_api()["shippingSpeedCategory"] == "Priority"
    by_title = plan_submission(make_order(shipping_method="Next Day", shipping_method_code="x"), channel)
    assert isinstance(by_title, Plan) and str(by_title.speed) == "Priority", "the title wins when listed"


def test_a_missing_postal_code_is_explained_and_a_placeholder_needs_opting_in(shop: Channel) -> None:
    dubai = Address(name="X Y", line1="Tower 1", city="Dubai", country_code="AE")
    channel = replace(shop, countries=None)
    parked = plan_submission(make_order(destination=dubai), channel)
    assert isinstance(parked, Park)
    assert "Amazon requires a postal code" in parked.reason and "postal_code_fallback" in parked.reason
    placeholder = plan_submission(
        make_order(destination=dubai), replace(channel, postal_code_fallback={"AE": "000000"})
    )
    assert isinstance(placeholder, Plan)
    assert placeholder.create.destination_address.postal_code == "000000"
