"""Merchant policies at submission, as decision tables: skip, hold for approval, or go."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.amazon.models import Fee, FulfillmentPreview, Money, UnfulfillablePreviewItem
from bridge.channels import Channel, ChannelsConfig, HoldRules, MetaHold
from bridge.channels import Money as ConfigMoney
from bridge.orders import Address, OrderLine, OrderRisk
from bridge.pipeline.plan import Park, Plan, Skip, fees_seen, judge_preview, plan_submission
from bridge.pipeline.policies import Hold, decide_approval, judge_fees, risk_pending_wait, skip_by_tag
from tests.integration.test_intake_service import make_order


@pytest.fixture
def shop(channels_config: ChannelsConfig) -> Channel:
    return channels_config.channels["shop-a"]


def rules(shop: Channel, **holds: object) -> Channel:
    return replace(shop, approval="rules", holds=replace(HoldRules(), **holds))  # type: ignore[arg-type]


# --- skip and tags -----------------------------------------------------------------------------


def test_the_skip_tag_keeps_an_order_away_from_amazon_whatever_the_approval_mode(shop: Channel) -> None:
    order = make_order(tags=("vip", "fba-skip"))
    for mode in ("auto", "manual", "rules"):
        skipped = skip_by_tag(order, replace(shop, approval=mode))
        assert isinstance(skipped, Skip) and "tagged fba-skip" in skipped.reason
    assert skip_by_tag(make_order(tags=("vip",)), shop) is None
    assert skip_by_tag(order, replace(shop, skip_tags=frozenset({"no-amazon"}))) is None


def test_the_hold_tag_holds_even_in_auto_mode_until_approved(shop: Channel) -> None:
    order = make_order(tags=("fba-hold",))
    held = decide_approval(order, shop)
    assert isinstance(held, Hold) and held.rules == ("tag",)
    assert "tagged fba-hold" in held.reason and "(rule tag)" in held.reason
    assert decide_approval(order, shop, approved=frozenset({"tag"})) is None
    assert decide_approval(make_order(), shop) is None


# --- approval modes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "approved", "held_by"),
    [
        ("auto", frozenset(), None),
        ("manual", frozenset(), ("manual",)),
        ("manual", frozenset({"manual"}), None),
        ("rules", frozenset(), None),  # no rule fires for a plain order
    ],
)
def test_approval_modes(
    shop: Channel, mode: str, approved: frozenset[str], held_by: tuple[str, ...] | None
) -> None:
    held = decide_approval(make_order(), replace(shop, approval=mode), approved=approved)
    assert (held.rules if held else None) == held_by


def test_manual_mode_says_so_in_the_reason(shop: Channel) -> None:
    held = decide_approval(make_order(), replace(shop, approval="manual"))
    assert held is not None and "approval: manual" in held.reason


# --- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "holds"),
    [("20.00", False), ("100.00", False), ("100.01", True)],
)
def test_value_rule_holds_orders_above_the_amount(shop: Channel, total: str, holds: bool) -> None:
    channel = rules(shop, above=ConfigMoney(Decimal("100.00"), "USD"))
    order = make_order(lines=(OrderLine("11", "TSHIRT-RED-M", 1, total),))
    held = decide_approval(order, channel)
    assert (held is not None) is holds
    if held:
        assert held.rules == ("value",) and "order total 100.01 USD is above 100.00" in held.reason


def test_value_rule_holds_an_order_in_another_currency_it_cannot_compare(shop: Channel) -> None:
    channel = rules(shop, above=ConfigMoney(Decimal("100.00"), "USD"))
    held = decide_approval(make_order(currency="EUR"), channel)
    assert held is not None and "in EUR and holds.above in USD" in held.reason


def test_country_sku_and_meta_rules(shop: Channel) -> None:
    channel = rules(
        shop,
        countries=frozenset({"CA"}),
        skus=frozenset({"TSHIRT-RED-M"}),
        meta=(MetaHold("fraud_flag", frozenset({"high"})),),
    )
    canada = Address(name="x", line1="y", country_code="CA", postal_code="K1A 0B1")
    order = make_order(destination=canada, meta=(("Fraud_Flag", "HIGH"),))
    held = decide_approval(order, channel)
    assert held is not None and held.rules == ("country", "sku", "meta")
    assert "destination country CA" in held.reason and "SKU(s) TSHIRT-RED-M" in held.reason
    assert "order meta fraud_flag is HIGH" in held.reason
    # Approving some rules leaves the others holding; approving all lets it go.
    partly = decide_approval(order, channel, approved=frozenset({"country", "sku"}))
    assert partly is not None and partly.rules == ("meta",)
    assert decide_approval(order, channel, approved=frozenset({"country", "sku", "meta"})) is None
    low = replace(order, meta=(("fraud_flag", "low"),), destination=make_order().destination, lines=())
    assert decide_approval(low, channel) is None


def test_a_meta_rule_without_values_holds_on_any_non_empty_value(shop: Channel) -> None:
    channel = rules(shop, meta=(MetaHold("needs_review"),))
    assert decide_approval(make_order(meta=(("needs_review", "yes"),)), channel) is not None
    assert decide_approval(make_order(meta=(("needs_review", " "),)), channel) is None
    assert decide_approval(make_order(), channel) is None


@pytest.mark.parametrize(
    ("risk", "holds"),
    [
        (OrderRisk("CANCEL", ("HIGH",)), True),
        (OrderRisk("INVESTIGATE", ("MEDIUM",)), True),
        (OrderRisk("ACCEPT", ("LOW",)), False),
        (OrderRisk("NONE", ("PENDING",)), False),
        (None, True),  # the storefront could not say: not an accepted risk
    ],
)
def test_risk_rule_holds_cancel_and_investigate_by_default(
    shop: Channel, risk: OrderRisk | None, holds: bool
) -> None:
    channel = rules(shop, risk=frozenset({"CANCEL", "INVESTIGATE"}))
    assert channel.uses_risk
    held = decide_approval(make_order(), channel, risk=risk)
    assert (held is not None) is holds
    if held and risk:
        assert f"risk recommendation is {risk.recommendation} (assessments: {risk.levels[0]})" in held.reason
    assert decide_approval(make_order(), channel, risk=risk, approved=frozenset({"risk"})) is None


def test_a_pending_risk_analysis_is_waited_for_a_while_unless_it_already_holds(shop: Channel) -> None:
    channel = rules(shop, risk=frozenset({"CANCEL", "INVESTIGATE"}))
    t0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    pending = OrderRisk("NONE", ("PENDING",))
    assert risk_pending_wait(pending, channel, received_at=t0, now=t0 + timedelta(minutes=1)) == 60.0
    assert risk_pending_wait(pending, channel, received_at=t0, now=t0 + timedelta(minutes=10)) is None
    already = OrderRisk("INVESTIGATE", ("PENDING", "MEDIUM"))
    assert risk_pending_wait(already, channel, received_at=t0, now=t0) is None
    assert risk_pending_wait(OrderRisk("ACCEPT", ("LOW",)), channel, received_at=t0, now=t0) is None


def test_rules_other_than_tags_do_not_apply_outside_rules_mode(shop: Channel) -> None:
    channel = replace(rules(shop, countries=frozenset({"US"})), approval="auto")
    assert not channel.uses_risk
    assert decide_approval(make_order(), channel) is None


# --- fees ------------------------------------------------------------------------------------------


def preview(
    fees: tuple[Fee, ...] = (), *, unfulfillable: tuple[UnfulfillablePreviewItem, ...] = ()
) -> FulfillmentPreview:
    return FulfillmentPreview(
        shipping_speed_category="Standard",
        is_fulfillable=not unfulfillable,
        estimated_fees=fees,
        unfulfillable_items=unfulfillable,
    )


def test_fee_cap_without_a_fee_estimate_holds_by_default_and_passes_when_told(shop: Channel) -> None:
    plan = plan_submission(make_order(), shop)
    assert isinstance(plan, Plan) and shop.fee_unknown == "hold"
    assert judge_preview([preview()], plan, shop) is None  # the cap cannot trip without fees ...
    held = judge_fees([preview()], plan, shop)  # ... so when_unknown decides
    assert isinstance(held, Hold) and held.rules == ("fees_unknown",)
    assert "no fee estimate" in held.reason and "25.00 USD" in held.reason
    assert judge_fees([preview()], plan, shop, frozenset({"fees_unknown"})) is None
    assert judge_fees([preview()], plan, replace(shop, fee_unknown="pass")) is None
    assert judge_fees([preview()], plan, replace(shop, fee_cap=None)) is None
    quoted = preview((Fee("FBAPerUnitFulfillmentFee", Money("USD", Decimal("4.75"))),))
    assert judge_fees([quoted], plan, shop) is None


def test_the_fees_seen_are_described_for_the_audit_trail(shop: Channel) -> None:
    plan = plan_submission(make_order(), shop)
    assert isinstance(plan, Plan)
    fees = (
        Fee("FBAPerUnitFulfillmentFee", Money("USD", Decimal("4.75"))),
        Fee("FBATransportationFee", Money("USD", Decimal("1.25"))),
    )
    text = fees_seen([preview(fees)], plan)
    assert "FBAPerUnitFulfillmentFee 4.75 USD" in text and "(total 6.00 USD)" in text
    assert fees_seen([preview()], plan) == "preview: Amazon quoted no fee estimate"


# --- cross-border declared value ----------------------------------------------------------------------


CANADA = Address(name="x", line1="1 Main St", city="Ottawa", country_code="CA", postal_code="K1A 0B1")


def test_domestic_orders_declare_no_value(shop: Channel) -> None:
    plan = plan_submission(make_order(), shop)
    assert isinstance(plan, Plan)
    assert "perUnitDeclaredValue" not in plan.create.to_api()["items"][0]


def test_cross_border_orders_declare_each_line_price_in_the_marketplace_currency(shop: Channel) -> None:
    order = make_order(destination=CANADA, lines=(OrderLine("11", "TSHIRT-RED-M", 2, "19.99"),))
    plan = plan_submission(order, shop)
    assert isinstance(plan, Plan)
    declared = {"currencyCode": "USD", "value": "19.99"}
    assert plan.create.to_api()["items"][0]["perUnitDeclaredValue"] == declared
    assert plan.preview.to_api()["items"][0]["perUnitDeclaredValue"] == declared
    assert any("cross-border to CA" in n for n in plan.notes)


def test_another_currency_is_converted_only_with_a_configured_rate(shop: Channel) -> None:
    order = make_order(
        destination=CANADA, currency="EUR", lines=(OrderLine("11", "TSHIRT-RED-M", 1, "10.00"),)
    )
    parked = plan_submission(order, shop)
    assert isinstance(parked, Park)
    assert (
        "no rate for it" in parked.reason
        and "declared_value.rates" in parked.reason
        and "EUR" in parked.reason
    )
    plan = plan_submission(order, replace(shop, declared_value_rates={"EUR": Decimal("1.085")}))
    assert isinstance(plan, Plan)
    assert plan.create.to_api()["items"][0]["perUnitDeclaredValue"] == {
        "currencyCode": "USD",
        "value": "10.85",
    }
    assert any("converted from EUR at 1.085" in n for n in plan.notes)


# --- gift messages ---------------------------------------------------------------------------------


def test_a_lines_own_gift_message_goes_on_its_item_and_the_orders_on_the_first_only(shop: Channel) -> None:
    order = make_order(
        gift_message="Happy birthday",
        lines=(
            OrderLine("11", "TSHIRT-RED-M", 1, "20.00"),
            OrderLine("12", "MUG-WHITE", 1, "9.00", gift_message="For the coffee"),
            OrderLine("13", "TSHIRT-BLUE-L", 1, "20.00"),
        ),
    )
    plan = plan_submission(order, shop)
    assert isinstance(plan, Plan)
    messages = [item.get("giftMessage") for item in plan.create.to_api()["items"]]
    assert messages == ["Happy birthday", "For the coffee", None]
    long = plan_submission(
        make_order(lines=(OrderLine("11", "TSHIRT-RED-M", 1, "1", gift_message="x" * 600),)), shop
    )
    assert isinstance(long, Plan) and len(long.create.items[0].gift_message or "") == 512


# --- SKU identity ----------------------------------------------------------------------------------


def test_exact_matching_sends_unlisted_skus_as_they_are_and_the_map_still_wins(shop: Channel) -> None:
    exact = replace(shop, sku_match="exact")
    order = make_order(
        lines=(OrderLine("11", "TSHIRT-RED-M", 1, "20.00"), OrderLine("12", "SAME-AT-AMAZON", 1, "5.00"))
    )
    plan = plan_submission(order, exact)
    assert isinstance(plan, Plan)
    assert [i.seller_sku for i in plan.create.items] == ["FBA-TSHIRT-RED-M", "SAME-AT-AMAZON"]
    assert plan.identity_skus == ("SAME-AT-AMAZON",)
    assert exact.amazon_sku("X" * 51) is None  # longer than any Amazon seller SKU
    assert shop.amazon_sku("SAME-AT-AMAZON") is None  # match: map (the default) lists every SKU


def test_an_unknown_identity_sku_is_found_by_the_preview_and_the_reason_says_so(shop: Channel) -> None:
    exact = replace(shop, sku_match="exact")
    plan = plan_submission(make_order(lines=(OrderLine("11", "NOT-LISTED", 1, "5.00"),)), exact)
    assert isinstance(plan, Plan)
    item = UnfulfillablePreviewItem("NOT-LISTED", "11", 1, ("InvalidSKU",))
    verdict = judge_preview([preview(unfulfillable=(item,))], plan, exact)
    assert isinstance(verdict, Park)
    assert "Amazon does not know this seller SKU" in verdict.reason and "skus.match: exact" in verdict.reason
