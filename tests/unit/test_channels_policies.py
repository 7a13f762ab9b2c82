"""Policies in the channels file: typed, defaulted, and every mistake explained with a fix."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bridge.channels import ConfigError, parse_channels

BASE = """\
version: 1
amazon:
  accounts:
    - id: main
      region: na
      embedded_simulator: true
channels:
  - id: shop-a
    platform: {platform}
    webhook_secrets: ["s3cret-value-1"]
    storefront: {storefront}
    amazon: {{marketplace_id: ATVPDKIKX0DER}}
{extra}
"""
STOREFRONTS = {
    "shopify": '{base_url: "https://shop-a.myshopify.com", access_token: "shpat_x"}',
    "woocommerce": '{base_url: "https://woo.example.com", consumer_key: ck_x, consumer_secret: cs_x}',
}


def config(extra: str, platform: str = "shopify") -> str:
    return BASE.format(platform=platform, storefront=STOREFRONTS[platform], extra=extra)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_channels(text, "channels.yaml", {})
    return str(info.value).splitlines()


def test_policies_are_read_into_typed_objects() -> None:
    text = config(
        """\
    skus: {match: exact, map: {A: FBA-A}}
    approval: rules
    holds:
      above: {amount: "500.00", currency: USD}
      countries: [CA, MX]
      skus: [GOLD-1]
      tags: [Review-Me]
      meta: [{key: fraud_flag, values: [high, 3]}]
    skip_tags: [FBA-Skip, not-amazon]
    fee_cap: {amount: "25.00", currency: USD, when_unknown: pass}
    declared_value: {rates: {EUR: "1.08"}}"""
    )
    channel = parse_channels(text, "channels.yaml", {}).channels["shop-a"]
    assert channel.approval == "rules" and channel.sku_match == "exact"
    assert channel.amazon_sku("A") == "FBA-A" and channel.amazon_sku("B") == "B"
    holds = channel.holds
    assert holds.above is not None and holds.above.amount == Decimal("500.00")
    assert holds.countries == {"CA", "MX"} and holds.skus == {"GOLD-1"} and holds.tags == {"review-me"}
    assert holds.meta[0].key == "fraud_flag" and holds.meta[0].values == {"high", "3"}
    assert holds.risk == {"CANCEL", "INVESTIGATE"}, "a Shopify channel with rules holds on risk by default"
    assert channel.uses_risk
    assert channel.skip_tags == {"fba-skip", "not-amazon"}
    assert channel.fee_unknown == "pass" and channel.declared_value_rates == {"EUR": Decimal("1.08")}


def test_defaults_change_nothing_for_an_existing_channel() -> None:
    channel = parse_channels(config("    skus: {map: {A: FBA-A}}"), "channels.yaml", {}).channels["shop-a"]
    assert channel.approval == "auto" and not channel.uses_risk
    assert channel.holds.tags == {"fba-hold"} and channel.skip_tags == {"fba-skip"}
    assert channel.sku_match == "map" and channel.amazon_sku("B") is None


def test_risk_holds_can_be_turned_off() -> None:
    text = config("    skus: {map: {A: FBA-A}}\n    approval: rules\n    holds: {risk: []}")
    assert not parse_channels(text, "channels.yaml", {}).channels["shop-a"].uses_risk


def test_rules_outside_rules_mode_are_explained() -> None:
    lines = problems(config("    skus: {map: {A: FBA-A}}\n    holds: {countries: [CA]}"))
    assert len(lines) == 1
    assert (
        "channels[0].holds" in lines[0] and "only apply with approval: rules (approval is auto)" in lines[0]
    )
    assert "Fix: set approval: rules" in lines[0]


def test_risk_on_a_woocommerce_channel_is_explained() -> None:
    lines = problems(
        config("    skus: {map: {A: FBA-A}}\n    approval: rules\n    holds: {risk: [CANCEL]}", "woocommerce")
    )
    assert any("holds.risk" in line and "hold on a meta key" in line for line in lines)


def test_a_missing_sku_map_names_both_ways_out() -> None:
    lines = problems(config("    skus: {unmapped: hold}"))
    assert len(lines) == 1 and "skus.map is missing" in lines[0] and "skus.match: exact" in lines[0]
    assert (
        parse_channels(config("    skus: {match: exact}"), "channels.yaml", {}).channels["shop-a"].sku_map
        == {}
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("approval: sometimes", "use one of: auto, manual, rules"),
        ('fee_cap: {amount: "5.00", currency: USD, when_unknown: maybe}', "use one of: hold, pass"),
        ("holds: {risk: [HIGH]}", "use one of: CANCEL, INVESTIGATE, ACCEPT, NONE"),
        ("holds: {meta: [{values: [x]}]}", "add `key`"),
        ("declared_value: {rates: {EUR: 1.08}}", "put the value in quotes"),
        ("skus: {map: {A: FBA-A}, match: fuzzy}", "use one of: map, exact"),
    ],
)
def test_bad_policy_values_are_explained(extra: str, expected: str) -> None:
    skus = "" if extra.startswith("skus") else "    skus: {map: {A: FBA-A}}\n"
    lines = problems(
        config(f"{skus}    approval: rules\n    {extra}" if "approval" not in extra else f"{skus}    {extra}")
    )
    assert any(expected in line for line in lines), lines


def test_check_config_explains_a_policy_mistake_with_its_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bridge.cli import main

    path = tmp_path / "channels.yaml"
    path.write_text(config("    skus: {map: {A: FBA-A}}\n    holds:\n      countries: [CA]"))
    result = CliRunner().invoke(main, ["check-config", "--offline", str(path)])
    assert result.exit_code != 0
    assert f"{path}:15: channels[0].holds: holds.countries only apply with approval: rules" in result.output
