"""The channels file's `inventory:` section: off by default, typed buffers, clear problems."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.channels import InventoryConfig, StockBuffer, load_channels, parse_channels
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV
from tests.unit.test_channels import ENV, MINIMAL, problems


def with_inventory(block: str) -> str:
    return MINIMAL + "".join(f"    {line}\n" for line in block.strip("\n").splitlines())


def test_inventory_sync_is_off_in_the_example_file_and_by_default() -> None:
    config = load_channels(EXAMPLE_CONFIG, env=TEST_ENV)
    assert all(c.inventory == InventoryConfig() for c in config.channels.values())
    assert not InventoryConfig().sync
    text = EXAMPLE_CONFIG.read_text()
    assert "# inventory:" in text and "#   sync: true" in text  # the commented example


def test_inventory_section_is_typed() -> None:
    text = with_inventory(
        """
inventory:
  sync: true
  location: gid://shopify/Location/42
  buffer: "12.5%"
  sku_buffers: {A: 3}
  interval_s: 600
  full_sweep_h: 12
"""
    )
    inventory = parse_channels(text, "channels.yaml", ENV).channels["shop-a"].inventory
    assert inventory == InventoryConfig(
        sync=True,
        buffer=StockBuffer(percent=Decimal("12.5")),
        sku_buffers={"A": StockBuffer(units=3)},
        interval_s=600.0,
        full_sweep_h=12.0,
        location="gid://shopify/Location/42",
    )
    assert inventory.buffer_for("A") == StockBuffer(units=3)
    assert inventory.buffer_for("B") == StockBuffer(percent=Decimal("12.5"))


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("inventory: {sync: true, location: gid://shopify/Location/1, buffer: -1}", "inventory.buffer"),
        ("inventory: {sync: true, location: gid://shopify/Location/1, buffer: 150%}", "inventory.buffer"),
        ("inventory: {sync: true, location: gid://shopify/Location/1, interval_s: 5}", "interval_s"),
        ("inventory: {sync: true, location: gid://shopify/Location/1, full_sweep_h: 0}", "full_sweep_h"),
        ("inventory: {sync: true, location: '1234'}", "gid://shopify/Location/123"),
        ("inventory: {sync: true, location: gid://shopify/Location/1, sku_buffers: {NOPE: 1}}", "NOPE"),
        ("inventory: {sync: true}", "add `location: gid://shopify/Location/<id>`"),
        ("inventory: {sync: true, location: gid://shopify/Location/1, every: 5}", "every"),
    ],
)
def test_bad_inventory_settings_are_explained(block: str, expected: str) -> None:
    found = problems(with_inventory(block))
    assert any(expected in line for line in found), found
    assert all("channels.yaml:" in line for line in found)
