"""The channels file given inline (`BRIDGE_CONFIG_YAML`), for a Heroku Button app or a container
without a mounted file: chosen over `BRIDGE_CONFIG`'s default, validated the same way, and never
silently mixed with an explicit `BRIDGE_CONFIG`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.channels import ConfigError, load_configured_channels
from bridge.cli import main
from bridge.settings import Settings, SettingsError
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

EXAMPLE = EXAMPLE_CONFIG.read_text(encoding="utf-8")


def test_inline_yaml_is_loaded_instead_of_the_default_file() -> None:
    settings = Settings.from_env({"BRIDGE_CONFIG_YAML": EXAMPLE})
    config = load_configured_channels(settings, env=TEST_ENV)
    assert set(config.channels) == {"shop-a", "woo-main", "own-shop"}
    assert config.source == "$BRIDGE_CONFIG_YAML"


def test_without_inline_yaml_the_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    config = load_configured_channels(Settings.from_env({"BRIDGE_CONFIG": str(path)}), env=TEST_ENV)
    assert config.source == str(path)


def test_blank_inline_yaml_counts_as_unset(tmp_path: Path) -> None:
    settings = Settings.from_env({"BRIDGE_CONFIG_YAML": "  \n", "BRIDGE_CONFIG": str(tmp_path / "x.yaml")})
    assert settings.config_yaml == ""


def test_both_set_is_refused_with_the_fix() -> None:
    with pytest.raises(SettingsError, match="keep one"):
        Settings.from_env({"BRIDGE_CONFIG_YAML": EXAMPLE, "BRIDGE_CONFIG": "config/channels.yaml"})


def test_inline_problems_name_the_variable_and_the_line() -> None:
    broken = EXAMPLE.replace("fulfillment_policy: FillOrKill", "fulfillment_policy: FillSome")
    settings = Settings.from_env({"BRIDGE_CONFIG_YAML": broken})
    with pytest.raises(ConfigError) as err:
        load_configured_channels(settings, env=TEST_ENV)
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "FillSome" in text)
    assert f"$BRIDGE_CONFIG_YAML:{line}: channels[0].fulfillment_policy" in str(err.value)


def test_the_inline_text_stays_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"BRIDGE_CONFIG_YAML": EXAMPLE.replace("ATVPDKIKX0DER", "SECRETMARKER1")})
    assert "SECRETMARKER1" not in repr(settings)


def test_check_config_validates_the_inline_file() -> None:
    runner = CliRunner()
    ok = runner.invoke(
        main, ["check-config"], env={**TEST_ENV, "BRIDGE_CONFIG": None, "BRIDGE_CONFIG_YAML": EXAMPLE}
    )
    assert ok.exit_code == 0, ok.output
    assert "$BRIDGE_CONFIG_YAML: OK (3 channel(s)" in ok.output
    bad = runner.invoke(
        main,
        ["check-config"],
        env={"BRIDGE_CONFIG": None, "BRIDGE_CONFIG_YAML": "version: 1\nchannels: []\n"},
    )
    assert bad.exit_code == 1
    assert "problem(s) in $BRIDGE_CONFIG_YAML" in bad.output
