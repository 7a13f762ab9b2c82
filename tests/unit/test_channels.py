from pathlib import Path

import pytest

from bridge.channels import ConfigError, load_channels, parse_channels, unsafe_url_reason
from bridge.orders import PaymentState
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

MINIMAL = """\
version: 1
amazon:
  accounts:
    - id: main
      region: na
      embedded_simulator: true
channels:
  - id: shop-a
    platform: shopify
    webhook_secrets: ["${SECRET}"]
    storefront: {base_url: "https://shop-a.myshopify.com", access_token: "${TOKEN}"}
    amazon: {marketplace_id: ATVPDKIKX0DER}
    skus: {map: {A: FBA-A}}
"""
ENV = {"SECRET": "s3cret-value-1", "TOKEN": "shpat_x"}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_channels(text, "channels.yaml", env if env is not None else ENV)
    return str(info.value).splitlines()


def test_example_file_is_valid_and_typed() -> None:
    config = load_channels(EXAMPLE_CONFIG, env=TEST_ENV)
    shop = config.channels["shop-a"]
    assert shop.platform == "shopify"
    assert shop.webhook_secrets[0].reveal() == TEST_ENV["SHOP_A_WEBHOOK_SECRET"]
    assert shop.amazon_sku("TSHIRT-RED-M") == "FBA-TSHIRT-RED-M"
    assert shop.shipping_speed("express  shipping") == "Expedited"
    assert shop.shipping_speed("unknown method") == "Standard"
    assert shop.ship_on == frozenset({PaymentState.PAID})
    assert config.channels["woo-main"].account_id == "main"
    assert config.channels["own-shop"].intake_policy().submit_unpaid_on_hold


def test_example_defaults_for_secrets_are_reported_as_warnings() -> None:
    config = load_channels(EXAMPLE_CONFIG, env={})
    assert any("SHOP_A_WEBHOOK_SECRET" in w for w in config.warnings)


def test_missing_env_var_names_the_variable_the_path_and_the_line() -> None:
    lines = problems(MINIMAL, {"TOKEN": "x"})
    assert len(lines) == 1
    assert lines[0].startswith(
        "channels.yaml:10: channels[0].webhook_secrets[0]: environment variable SECRET"
    )
    assert "export SECRET=" in lines[0]


def test_every_schema_problem_is_listed_with_line_and_fix() -> None:
    bad = MINIMAL.replace("platform: shopify", "platform: shopfy").replace("ATVPDKIKX0DER", "us")
    bad = bad.replace("skus: {map: {A: FBA-A}}", "skus: {map: {A: FBA-A}, unmaped: skip}")
    lines = problems(bad)
    assert len(lines) == 3
    assert any(
        "channels.yaml:9: channels[0].platform" in line and "use one of: shopify" in line for line in lines
    )
    assert any("channels[0].amazon.marketplace_id" in line and ":12:" in line for line in lines)
    assert any(
        "channels[0].skus" in line and "unmaped" in line and "allowed: map, match, unmapped" in line
        for line in lines
    )


def test_secret_values_never_appear_in_problems() -> None:
    bad = MINIMAL.replace('webhook_secrets: ["${SECRET}"]', 'webhook_secrets: ["short"]')
    text = "\n".join(problems(bad))
    assert "webhook_secrets[0]" in text
    assert "short" not in text


def test_duplicate_yaml_keys_are_reported() -> None:
    lines = problems(
        MINIMAL.replace("    platform: shopify\n", "    platform: shopify\n    platform: generic\n")
    )
    assert any("appears twice" in line and ":10:" in line for line in lines)


def test_yaml_syntax_error_has_a_line() -> None:
    lines = problems("version: 1\nchannels:\n  - id: [unclosed\n")
    assert lines[0].startswith("channels.yaml:")
    assert "YAML syntax error" in lines[0]


def test_semantic_problems_unknown_account_and_duplicate_ids() -> None:
    bad = MINIMAL.replace(
        "amazon: {marketplace_id: ATVPDKIKX0DER}", "amazon: {account: other, marketplace_id: ATVPDKIKX0DER}"
    )
    assert any("unknown Amazon account 'other'" in line for line in problems(bad))
    doubled = MINIMAL + MINIMAL[MINIMAL.index("  - id: shop-a") :]
    assert any("used twice" in line for line in problems(doubled))


def test_storefront_urls_must_be_public_https_unless_marked_local() -> None:
    bad = MINIMAL.replace("https://shop-a.myshopify.com", "http://169.254.169.254")
    assert any("must use https" in line for line in problems(bad))
    assert unsafe_url_reason("https://10.0.0.5/x", allow_local=False) is not None
    assert unsafe_url_reason("https://169.254.169.254/latest", allow_local=False) is not None
    assert unsafe_url_reason("https://shop.example.com", allow_local=False) is None
    assert unsafe_url_reason("http://127.0.0.1:8701", allow_local=True) is None


def test_push_back_credentials_are_required_per_platform() -> None:
    bad = MINIMAL.replace(', access_token: "${TOKEN}"', "")
    assert any("storefront.access_token is missing" in line for line in problems(bad))


def test_generic_channel_needs_a_standard_webhooks_secret() -> None:
    generic = MINIMAL.replace("platform: shopify", "platform: generic").replace(
        'storefront: {base_url: "https://shop-a.myshopify.com", access_token: "${TOKEN}"}',
        'storefront: {callback_url: "https://shop.example.com/hook"}',
    )
    assert any("Standard Webhooks secret" in line for line in problems(generic))


def test_missing_file_tells_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_channels(tmp_path / "nope.yaml")
    assert "BRIDGE_CONFIG" in str(info.value)


def test_what_ships_options_are_read_and_default_to_the_safe_choice() -> None:
    defaults = parse_channels(MINIMAL, "channels.yaml", ENV).channels["shop-a"]
    assert (defaults.test_orders, defaults.shipping_address_fallback) == ("skip", "none")
    assert (dict(defaults.postal_code_fallback), dict(defaults.carrier_names)) == ({}, {})
    text = MINIMAL + (
        "    test_orders: ship\n"
        "    shipping_address_fallback: billing\n"
        '    postal_code_fallback: {AE: "00000", HK: "000"}\n'
        '    carrier_names: {AMZL_US: "Amazon Shipping"}\n'
        "    shipping: {map: {next-day-air: Priority}}\n"
    )
    shop = parse_channels(text, "channels.yaml", ENV).channels["shop-a"]
    assert (shop.test_orders, shop.shipping_address_fallback) == ("ship", "billing")
    assert shop.postal_code_fallback == {"AE": "00000", "HK": "000"}
    assert shop.carrier_names == {"AMZL_US": "Amazon Shipping"}
    assert shop.shipping_speed("Overnight", "NEXT-DAY-AIR") == "Priority", "matched by code"


def test_bad_what_ships_options_are_reported_with_fixes() -> None:
    text = MINIMAL + "    test_orders: always\n    postal_code_fallback: {uae: 0}\n"
    lines = "\n".join(problems(text))
    assert "test_orders" in lines and "use one of: skip, ship" in lines
    assert "postal_code_fallback" in lines


# YAML 1.2: what the author wrote is what the bridge reads


def test_norway_and_other_yaml_1_1_booleans_stay_text() -> None:
    text = MINIMAL + "    countries: [NO, SE, DK]\n    packing_slip_comment: yes\n"
    shop = parse_channels(text, "channels.yaml", ENV).channels["shop-a"]
    assert shop.countries == frozenset({"NO", "SE", "DK"})
    assert shop.packing_slip_comment == "yes"


def test_sku_keys_and_values_keep_their_digits() -> None:
    text = MINIMAL.replace("skus: {map: {A: FBA-A}}", 'skus: {map: {010: "0755", 1_000: FBA-A}}')
    shop = parse_channels(text, "channels.yaml", ENV).channels["shop-a"]
    assert shop.amazon_sku("010") == "0755", "a leading zero is neither octal nor dropped in a key"
    assert shop.amazon_sku("1_000") == "FBA-A"


def test_yes_for_a_boolean_is_refused_with_the_yaml_1_2_hint_and_its_line() -> None:
    text = MINIMAL.replace(
        '    storefront: {base_url: "https://shop-a.myshopify.com", access_token: "${TOKEN}"}\n',
        '    storefront:\n      base_url: "https://shop-a.myshopify.com"\n      access_token: "${TOKEN}"\n'
        "      notify_customer: yes\n",
    )
    [line] = problems(text)
    assert line.startswith("channels.yaml:14: channels[0].storefront.notify_customer:")
    assert "write true or false" in line


def test_unquoted_numbers_where_text_is_needed_say_to_quote_them() -> None:
    [line] = problems(MINIMAL.replace("skus: {map: {A: FBA-A}}", "skus: {map: {A: 12345}}"))
    assert line.startswith("channels.yaml:13: channels[0].skus.map.A:")
    assert "put the value in quotes" in line


def test_true_false_and_numbers_still_parse_as_yaml_1_2_says() -> None:
    text = MINIMAL.replace("embedded_simulator: true", "embedded_simulator: True\n      sandbox: false")
    text += '    fee_cap: {amount: "25.00", currency: USD}\n    enabled: TRUE\n'
    config = parse_channels(text, "channels.yaml", ENV)
    assert config.accounts["main"].embedded_simulator is True and config.accounts["main"].sandbox is False
    assert config.channels["shop-a"].enabled is True


def test_a_short_secret_says_how_long_it_must_be_without_showing_it() -> None:
    [line] = problems(MINIMAL, {"SECRET": "abc1234", "TOKEN": "x"})
    assert line.startswith("channels.yaml:10: channels[0].webhook_secrets[0]:")
    assert "must be at least 8 characters" in line and "must not be empty" not in line
    assert "abc1234" not in line


def test_reconciliation_is_on_by_default_where_the_platform_has_an_order_api() -> None:
    config = load_channels(EXAMPLE_CONFIG, env=TEST_ENV)
    assert config.channels["shop-a"].reconcile.enabled
    assert config.channels["woo-main"].reconcile.enabled
    assert not config.channels["own-shop"].reconcile.enabled
    assert config.channels["shop-a"].reconcile.interval_s == 600
    assert config.accounts["main"].stuck_received_h == 24


def test_reconciliation_and_stuck_thresholds_are_configurable() -> None:
    text = MINIMAL.replace(
        "      embedded_simulator: true\n",
        "      embedded_simulator: true\n      stuck: {received_h: 6, processing_grace_h: 2}\n",
    )
    text += "    reconcile: {interval_s: 120, overlap_s: 60, first_lookback_h: 24}\n"
    config = parse_channels(text, "channels.yaml", ENV)
    reconcile = config.channels["shop-a"].reconcile
    assert (reconcile.enabled, reconcile.interval_s, reconcile.overlap_s, reconcile.first_lookback_h) == (
        True,
        120,
        60,
        24,
    )
    assert (config.accounts["main"].stuck_received_h, config.accounts["main"].stuck_processing_grace_h) == (
        6,
        2,
    )
    off = parse_channels(MINIMAL + "    reconcile: {enabled: false}\n", "channels.yaml", ENV)
    assert not off.channels["shop-a"].reconcile.enabled


def test_reconciliation_of_a_generic_channel_is_refused_with_the_reason() -> None:
    text = (
        MINIMAL.replace("platform: shopify", "platform: generic")
        .replace(
            'webhook_secrets: ["${SECRET}"]',
            'webhook_secrets: ["whsec_dGVzdC1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw"]',
        )
        .replace('    storefront: {base_url: "https://shop-a.myshopify.com", access_token: "${TOKEN}"}\n', "")
    )
    found = problems(text + "    reconcile: {enabled: true}\n")
    assert any("no order API to reconcile from" in line for line in found)
    assert any("sender must retry" in line for line in found)


def test_a_reconcile_interval_below_a_minute_is_refused() -> None:
    found = problems(MINIMAL + "    reconcile: {interval_s: 5}\n")
    assert any("reconcile" in line and "60" in line for line in found)
