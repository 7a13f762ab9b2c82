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
        destination=Address(name="Canary Person", line1=long_line, country_code="US", postal_code="")
    )
    parked = plan_submission(order, shop)
    assert isinstance(parked, Park)
    assert (
        "destinationAddress.addressLine1" in parked.reason
        and "destinationAddress.postalCode" in parked.reason
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
