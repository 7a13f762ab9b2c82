"""What each storefront carries for the policies: tags, order meta, per-line gift messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bridge.channels import Channel, ChannelsConfig, HoldRules, MetaHold
from bridge.clock import ManualClock
from bridge.orders import CanonicalOrder
from bridge.storefronts.registry import adapter_for
from tests.support import fixture, generic_delivery, shopify_delivery, shopify_order, woo_delivery, woo_order

CLOCK = ManualClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


def parse(channel: Channel, body: bytes, headers: dict[str, str]) -> CanonicalOrder:
    delivery = adapter_for(channel.platform).parse(channel, headers, body, CLOCK)
    assert delivery.order is not None
    return delivery.order


def with_meta_rule(channel: Channel, key: str) -> Channel:
    return replace(channel, approval="rules", holds=replace(HoldRules(), meta=(MetaHold(key),)))


def test_shopify_tags_note_attributes_and_line_properties(channels_config: ChannelsConfig) -> None:
    shop = with_meta_rule(channels_config.channels["shop-a"], "Fraud flag")
    body = shopify_order(1001)
    body["tags"] = "VIP, fba-hold ,  wholesale"
    body["note_attributes"] = [
        {"name": "Fraud flag", "value": "high"},
        {"name": "Delivery instructions", "value": "leave at the door"},
        {"name": "Gift message", "value": "For the whole order"},
    ]
    body["line_items"][0]["properties"] = [
        {"name": "Engraving", "value": "S"},
        {"name": "_Gift-Message", "value": "Enjoy the shirt"},  # a private property (hidden at checkout)
    ]
    order = parse(shop, *shopify_delivery(body))
    assert order.tags == ("vip", "fba-hold", "wholesale")
    assert order.meta == (("Fraud flag", "high"),), "only meta a rule tests is kept (it may be personal)"
    assert order.gift_message == "For the whole order"
    assert order.lines[0].gift_message == "Enjoy the shirt"
    assert CanonicalOrder.from_json(order.to_json()) == order


def test_shopify_without_tags_or_properties(channels_config: ChannelsConfig) -> None:
    body = shopify_order(1002)
    body["tags"] = None
    order = parse(channels_config.channels["shop-a"], *shopify_delivery(body))
    assert order.tags == () and order.meta == () and order.lines[0].gift_message == ""


def test_woocommerce_tags_meta_and_line_gift_message(channels_config: ChannelsConfig) -> None:
    woo = with_meta_rule(channels_config.channels["woo-main"], "_fraud_score")
    body = woo_order(700)
    body["meta_data"] = [
        {"id": 1, "key": "fba_tags", "value": "fba-skip"},
        {"id": 2, "key": "_fraud_score", "value": 87},
        {"id": 3, "key": "_billing_vat", "value": "GB123"},
    ]
    body["line_items"][0]["meta_data"] = [{"id": 9, "key": "_Gift Message", "value": "Cheers"}]
    order = parse(woo, *woo_delivery(body))
    assert order.tags == ("fba-skip",)
    assert order.meta == (("_fraud_score", "87"),)
    assert order.lines[0].gift_message == "Cheers"


def test_generic_tags_meta_and_line_gift_message(channels_config: ChannelsConfig) -> None:
    own = with_meta_rule(channels_config.channels["own-shop"], "risk")
    body = fixture("generic/order_upsert.json")
    body["order"]["tags"] = ["FBA-Hold"]
    body["order"]["meta"] = {"risk": "high", "score": 3, "manual": True}
    body["order"]["lines"][0]["gift_message"] = "Hi"
    order = parse(own, *generic_delivery(body, CLOCK.now()))
    assert order.tags == ("fba-hold",) and order.meta == (("risk", "high"),)
    assert order.lines[0].gift_message == "Hi"
