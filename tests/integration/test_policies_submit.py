"""Merchant policies at submission, end to end: webhook in over HTTP, worker jobs, the simulator
(strict request checks against Amazon's model) and, for risk, the fake Shopify executing real
GraphQL. Held orders wait as `awaiting_approval` and `operator.approve` lets them go."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge import operator
from bridge.amazon.simulator import Simulator, load_config
from bridge.amazon.simulator.config import SkuConfig
from bridge.amazon.simulator.server import serve_in_thread
from bridge.bootstrap import Bridge
from bridge.channels import Channel, HoldRules, MetaHold
from bridge.channels import Money as ConfigMoney
from bridge.clock import ManualClock
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.runtime import make_worker
from bridge.storefronts.registry import Storefronts
from bridge.worker import Worker
from tests.conftest import ROOT, TEST_ENV, due_now
from tests.integration.test_operator import reasons
from tests.integration.test_submit import events, order_row
from tests.support import fixture, generic_delivery, shopify_delivery, shopify_order, woo_delivery, woo_order

SHOPIFY_TOKEN = "demo-shopify-token"


@pytest.fixture
def simulator(clock: ManualClock) -> Simulator:
    """The demo inventory plus a SKU whose previews carry no fee estimate (as Amazon's sometimes
    do) and one whose seller SKU equals a storefront SKU."""
    config = load_config(ROOT / "config" / "simulator.yaml")
    skus = {**config.skus, "NO-FEE-BOX": SkuConfig(50, no_fee_estimate=True), "SAME-SKU": SkuConfig(50)}
    return Simulator(replace(config, skus=skus), clock=clock, rate_clock=clock, delay_clock=clock)


def configure(bridge: Bridge, channel_id: str, **changes: Any) -> Channel:
    channel = replace(bridge.config.channels[channel_id], **changes)
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, channel_id: channel})
    return channel


def send_shopify(client: FlaskClient, order_id: int, **fields: Any) -> None:
    body = shopify_order(order_id)
    for key, value in fields.items():
        if key == "line":
            body["line_items"][0].update(value)
        elif key == "country":
            body["shipping_address"]["country_code"] = value
        else:
            body[key] = value
    raw, headers = shopify_delivery(body)
    assert client.post("/webhooks/shop-a", data=raw, headers=headers).status_code == 200


def send_generic(client: FlaskClient, bridge: Bridge, external_id: str, **order: Any) -> None:
    body = fixture("generic/order_upsert.json")
    body["order"]["external_id"] = external_id
    body["order"]["destination"]["country_code"] = "US"
    body["order"]["lines"] = [{"line_id": "1", "sku": "SKU-1", "quantity": 1, "unit_price": "5.00"}]
    body["order"].update(order)
    raw, headers = generic_delivery(body, bridge.clock.now())
    assert client.post("/webhooks/own-shop", data=raw, headers=headers).status_code == 200


def amazon_order(simulator: Simulator, sfo_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = simulator.get_fulfillment_order(sfo_id)["payload"]
    return payload


# --- approval modes and hold rules -----------------------------------------------------------------


def test_manual_approval_holds_every_order_until_an_operator_approves_it(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "own-shop", approval="manual")
    send_generic(client, bridge, "M-1")
    worker.drain()
    row = order_row(bridge, "M-1")
    assert row.state == "awaiting_approval" and "approval: manual" in row.attention_reason
    assert row.approvals == {"held": ["manual"], "approved": []}
    assert simulator.ledger.calls("getFulfillmentPreview") == 0, "nothing is asked of Amazon while held"

    result = operator.approve(bridge, "own-shop", "M-1", actor="alice")
    assert result.changed
    worker.drain()
    row = order_row(bridge, "M-1")
    assert row.state == "submitted" and row.approvals == {"held": [], "approved": ["manual"]}
    assert simulator.ledger.creates("own-shop-M-1") == 1
    assert events(bridge, row) == ["intake:created", "hold", "approve", "submit_started", "created"]
    assert any("approved by alice" in r and "rule manual" in r for r in reasons(bridge, "M-1"))


def test_a_value_rule_holds_and_an_approved_order_is_not_held_again_by_it(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "own-shop", approval="rules", holds=HoldRules(above=ConfigMoney(Decimal("100"), "EUR")))
    send_generic(
        client, bridge, "V-1", lines=[{"line_id": "1", "sku": "SKU-1", "quantity": 30, "unit_price": "5.00"}]
    )
    send_generic(client, bridge, "V-2")  # 5.00: below the amount
    worker.drain()
    held = order_row(bridge, "V-1")
    assert held.state == "awaiting_approval"
    assert "order total 150.00 EUR is above 100 (rule value)" in held.attention_reason
    assert order_row(bridge, "V-2").state == "submitted"
    operator.approve(bridge, "own-shop", "V-1", actor="bob")
    worker.drain()
    assert order_row(bridge, "V-1").state == "submitted"
    assert simulator.ledger.creates("own-shop-V-1") == 1


def test_tags_skip_or_hold_a_shopify_order_per_order(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_shopify(client, 2001, tags="wholesale, FBA-Skip")
    send_shopify(client, 2002, tags="fba-hold")  # approval: auto, yet the tag holds it
    worker.drain()
    skipped = order_row(bridge, "2001")
    assert skipped.state == "not_for_amazon"
    assert "tagged fba-skip" in reasons(bridge, "2001")[-1]
    held = order_row(bridge, "2002")
    assert held.state == "awaiting_approval" and "tagged fba-hold" in held.attention_reason
    assert simulator.ledger.calls("getFulfillmentPreview") == 0


def test_removing_the_hold_tag_in_the_shop_releases_a_rule_held_order_but_not_an_operator_hold(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    from bridge import operator

    send_shopify(client, 2003, tags="fba-hold")
    send_shopify(client, 2004)
    operator.hold(bridge, "shop-a", "2004", actor="alice", reason="customer asked to wait")
    worker.drain()
    assert order_row(bridge, "2003").state == "awaiting_approval"
    later = "2026-11-01T11:00:00-05:00"
    send_shopify(client, 2003, tags="", updated_at=later, note="tag removed")
    send_shopify(client, 2004, updated_at=later, note="address checked")
    worker.drain()
    released = order_row(bridge, "2003")
    assert released.state == "submitted" and released.attention_reason == ""
    kept = order_row(bridge, "2004")
    assert kept.state == "awaiting_approval" and kept.attention_reason.startswith("held by alice")
    assert simulator.ledger.calls("createFulfillmentOrder") == 1


def test_a_woocommerce_meta_rule_holds_and_names_the_key(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(
        bridge,
        "woo-main",
        approval="rules",
        holds=HoldRules(meta=(MetaHold("_fraud_level", frozenset({"high"})),)),
    )
    order = woo_order(710)
    order["meta_data"] = [{"id": 1, "key": "_fraud_level", "value": "High"}]
    raw, headers = woo_delivery(order)
    client.post("/webhooks/woo-main", data=raw, headers=headers)
    worker.drain()
    row = order_row(bridge, "710")
    assert (
        row.state == "awaiting_approval"
        and "order meta _fraud_level is High (rule meta)" in row.attention_reason
    )
    assert simulator.ledger.calls("getFulfillmentPreview") == 0


# --- fees ---------------------------------------------------------------------------------------------


def test_a_preview_without_fees_holds_under_a_fee_cap_and_approval_creates_it(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "own-shop", sku_map={"BOX": "NO-FEE-BOX"}, fee_cap=ConfigMoney(Decimal("20"), "USD"))
    send_generic(
        client, bridge, "F-1", lines=[{"line_id": "1", "sku": "BOX", "quantity": 1, "unit_price": "9.00"}]
    )
    worker.drain()
    row = order_row(bridge, "F-1")
    assert row.state == "awaiting_approval" and "no fee estimate" in row.attention_reason
    assert "(preview: Amazon quoted no fee estimate)" in row.attention_reason
    assert simulator.ledger.calls("createFulfillmentOrder") == 0
    operator.approve(bridge, "own-shop", "F-1", actor="alice")
    worker.drain()
    assert order_row(bridge, "F-1").state == "submitted"
    assert simulator.ledger.calls("getFulfillmentPreview") == 2, "approval re-plans, with a fresh preview"


def test_when_unknown_pass_creates_without_fees_and_fees_seen_are_recorded(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(
        bridge,
        "own-shop",
        sku_map={"BOX": "NO-FEE-BOX", "SKU-1": "FBA-SKU-1"},
        fee_cap=ConfigMoney(Decimal("20"), "USD"),
        fee_unknown="pass",
    )
    send_generic(
        client, bridge, "F-2", lines=[{"line_id": "1", "sku": "BOX", "quantity": 1, "unit_price": "9.00"}]
    )
    send_generic(client, bridge, "F-3")
    worker.drain()
    assert order_row(bridge, "F-2").state == "submitted"
    assert "preview passed (preview: Amazon quoted no fee estimate)" in reasons(bridge, "F-2")[1]
    assert order_row(bridge, "F-3").state == "submitted"
    assert "FBAPerUnitFulfillmentFee 3.95 USD" in reasons(bridge, "F-3")[1]


# --- cross-border, gift messages, SKU identity ---------------------------------------------------------


def test_a_cross_border_order_declares_each_items_value_and_amazon_accepts_it(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_shopify(client, 2101, country="CA", line={"price": "19.99"})
    worker.drain()
    assert order_row(bridge, "2101").state == "submitted"
    assert simulator.ledger.statuses("getFulfillmentPreview") == {200: 1}
    assert simulator.ledger.statuses("createFulfillmentOrder") == {200: 1}, "the model's checks passed"
    item = amazon_order(simulator, "shop-a-2101")["fulfillmentOrderItems"][0]
    assert item["perUnitDeclaredValue"] == {"currencyCode": "USD", "value": "19.99"}
    assert "cross-border to CA" in reasons(bridge, "2101")[-1]


def test_a_cross_border_order_in_another_currency_without_a_rate_is_parked_with_the_fix(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_shopify(client, 2102, country="CA", currency="EUR")
    worker.drain()
    row = order_row(bridge, "2102")
    assert row.state == "needs_attention" and "declared_value.rates" in row.attention_reason
    assert simulator.ledger.calls("getFulfillmentPreview") == 0
    configure(bridge, "shop-a", declared_value_rates={"EUR": Decimal("1.10")})
    operator.resubmit(bridge, "shop-a", "2102", actor="alice")
    worker.drain()
    assert order_row(bridge, "2102").state == "submitted"
    item = amazon_order(simulator, "shop-a-2102")["fulfillmentOrderItems"][0]
    assert item["perUnitDeclaredValue"]["currencyCode"] == "USD"


def test_gift_messages_reach_amazon_per_line(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_shopify(
        client, 2201, line={"properties": [{"name": "Gift message", "value": "Happy birthday, Sam"}]}
    )
    worker.drain()
    item = amazon_order(simulator, "shop-a-2201")["fulfillmentOrderItems"][0]
    assert item["giftMessage"] == "Happy birthday, Sam"


def test_exact_sku_matching_sends_storefront_skus_and_the_preview_finds_unknown_ones(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    configure(bridge, "own-shop", sku_match="exact")
    send_generic(
        client,
        bridge,
        "S-1",
        lines=[{"line_id": "1", "sku": "SAME-SKU", "quantity": 1, "unit_price": "5.00"}],
    )
    send_generic(
        client,
        bridge,
        "S-2",
        lines=[{"line_id": "1", "sku": "NOT-AT-AMAZON", "quantity": 1, "unit_price": "5.00"}],
    )
    send_generic(client, bridge, "S-3")  # listed in skus.map: the map wins
    worker.drain()
    assert order_row(bridge, "S-1").state == "submitted"
    unknown = order_row(bridge, "S-2")
    assert unknown.state == "needs_attention"
    assert "NOT-AT-AMAZON: Amazon does not know this seller SKU" in unknown.attention_reason
    assert "skus.match: exact" in unknown.attention_reason
    assert amazon_order(simulator, "own-shop-S-3")["fulfillmentOrderItems"][0]["sellerSku"] == "FBA-SKU-1"


# --- Shopify risk --------------------------------------------------------------------------------------


@pytest.fixture
def shop(bridge: Bridge, amazon: Any, clock: ManualClock) -> Iterator[tuple[FakeShopify, Worker]]:
    """shop-a pointed at the fake Shopify (real GraphQL) with `approval: rules` (risk by default)."""
    fake = FakeShopify(SHOPIFY_TOKEN, clock, app_secret=TEST_ENV["SHOP_A_WEBHOOK_SECRET"])
    with serve_in_thread(create_fake_shopify_app(fake)) as server:
        storefronts = Storefronts(clock)
        current = bridge.config.channels["shop-a"]
        configure(
            bridge,
            "shop-a",
            storefront=replace(current.storefront, base_url=server.base_url),
            approval="rules",
            holds=HoldRules(risk=frozenset({"CANCEL", "INVESTIGATE"})),
        )
        yield fake, make_worker(bridge, amazon=amazon, storefronts=storefronts)
        storefronts.close()


def test_shopify_risk_cancel_holds_the_order_and_approval_does_not_ask_again(
    client: FlaskClient, bridge: Bridge, simulator: Simulator, shop: tuple[FakeShopify, Worker]
) -> None:
    fake, worker = shop
    fake.add_order("2301", [("1", "TSHIRT-RED-M", 1)])
    fake.set_risk("2301", "CANCEL", ["HIGH"])
    send_shopify(client, 2301, line={"id": 1})
    worker.drain()
    row = order_row(bridge, "2301")
    assert row.state == "awaiting_approval"
    assert "risk recommendation is CANCEL (assessments: HIGH) (rule risk)" in row.attention_reason
    assert fake.calls("BridgeOrderRisk", "ok") == 1
    assert simulator.ledger.calls("getFulfillmentPreview") == 0
    operator.approve(bridge, "shop-a", "2301", actor="alice")
    worker.drain()
    assert order_row(bridge, "2301").state == "submitted"
    assert fake.calls("BridgeOrderRisk") == 1, "an approved risk is not looked up again"


def test_shopify_risk_accept_goes_through_and_channels_without_risk_rules_never_ask(
    client: FlaskClient, bridge: Bridge, simulator: Simulator, shop: tuple[FakeShopify, Worker]
) -> None:
    fake, worker = shop
    fake.add_order("2302", [("1", "TSHIRT-RED-M", 1)])
    send_shopify(client, 2302, line={"id": 1})  # the fake's default: ACCEPT, LOW
    worker.drain()
    assert order_row(bridge, "2302").state == "submitted"
    assert "storefront risk recommendation: ACCEPT (assessments: LOW)" in reasons(bridge, "2302")
    configure(bridge, "shop-a", approval="auto")
    fake.add_order("2303", [("1", "TSHIRT-RED-M", 1)])
    send_shopify(client, 2303, line={"id": 1})
    worker.drain()
    assert order_row(bridge, "2303").state == "submitted"
    assert fake.calls("BridgeOrderRisk") == 1


def test_a_pending_risk_analysis_is_waited_for_then_decided(
    client: FlaskClient,
    bridge: Bridge,
    clock: ManualClock,
    simulator: Simulator,
    shop: tuple[FakeShopify, Worker],
) -> None:
    fake, worker = shop
    fake.add_order("2304", [("1", "TSHIRT-RED-M", 1)])
    fake.set_risk("2304", "NONE", ["PENDING"])
    send_shopify(client, 2304, line={"id": 1})
    worker.drain()
    assert order_row(bridge, "2304").state == "received", "waits for Shopify's analysis"
    fake.set_risk("2304", "INVESTIGATE", ["MEDIUM"])
    clock.advance(61)
    due_now(bridge.engine)
    worker.drain()
    row = order_row(bridge, "2304")
    assert row.state == "awaiting_approval" and "INVESTIGATE" in row.attention_reason
    assert simulator.ledger.calls("getFulfillmentPreview") == 0


def test_a_risk_shopify_cannot_give_holds_the_order_and_says_why(
    client: FlaskClient, bridge: Bridge, simulator: Simulator, shop: tuple[FakeShopify, Worker]
) -> None:
    _, worker = shop
    send_shopify(client, 2305, line={"id": 1})  # Shopify has no such order (another shop, deleted)
    worker.drain()
    row = order_row(bridge, "2305")
    assert row.state == "awaiting_approval"
    assert "risk assessment could not be read (rule risk)" in row.attention_reason
    assert any(
        "cannot read the order's risk: Shopify has no order 2305" in r for r in reasons(bridge, "2305")
    )
    assert simulator.ledger.calls("getFulfillmentPreview") == 0
