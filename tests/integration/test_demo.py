"""`bridge demo` runs the whole loop on this machine and tells the story order by order."""

from pathlib import Path

import pytest

from bridge.demo import run_demo
from tests.conftest import ROOT


def test_demo_runs_the_whole_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    lines: list[str] = []
    assert run_demo(lines.append, timeout_s=90, workdir=tmp_path) == 0, "\n".join(lines)
    story = "\n".join(lines)
    assert "created at Amazon as shop-a-1001" in story
    assert story.count("Shopify #1001: 2 blue + 1 red T-shirt (several packages)   tracking pushed") >= 2
    assert "Shopify #1002: a mug, cancelled by the shop" in story and "cancelled" in story
    assert "needs attention: Amazon cannot fulfil this order: FBA-POSTER-A2: InventoryUnavailable" in story
    assert "generic shop received 1 signed event(s): shipment.created" in story
    assert "left to others: line 32 x1 at Print on demand" in story
    assert "Shopify order #1003 at 'Amazon FBA' (line 31 x2): CLOSED, fulfilled by Amazon, tracking " in story
    assert (
        "Shopify order #1003 at 'Print on demand' (line 32 x1): OPEN, left to its own app, unfulfilled"
        in story
    )
    held = [
        line.split("  ", 1)[1].strip() for line in lines if line.startswith("Shopify #1004: a T-shirt tagged")
    ]
    assert held[:3] == [
        "accepted",
        "on hold: held for approval: tagged fba-hold in the storefront (rule tag)",
        "approved by an operator; planned again",
    ]
    assert "created at Amazon as shop-a-1004" in held and "tracking pushed" in " ".join(held)
    assert "feature BLOCK_AMZL required (order tag MCF_BLOCK_AMZL)" in story
    blocked = next(
        line for line in lines if line.startswith("Shopify order #1006 (BLOCK_AMZL) shipped with ")
    )
    assert "AMZL" not in blocked.split(" shipped with ")[1].split(":")[0]
    assert "created at Amazon as 2 orders (shop-a-1007-1, shop-a-1007-2)" in story
    assert "Shopify order #1007 (260 units) went to Amazon as shop-a-1007-1, shop-a-1007-2" in story
    assert "0 unit(s) left to fulfil" in story
    assert "Demo Buyer" not in story and "demo.buyer@example.com" not in story
    stock = {tuple(line.split()[1:4]): line.split()[5] for line in lines if line.startswith("stock ")}
    assert stock[("before", "shop-a", "TSHIRT-RED-M")] == "500"  # a sale lowers the shop's stock
    assert stock[("after", "shop-a", "TSHIRT-RED-M")] == "496"  # 1 in #1001, 2 in #1003, 1 in #1004
    assert stock[("after", "shop-a", "TSHIRT-BLUE-L")] == "198"
    # the cancelled mug came back; #1004 (1) and the split #1005 (260) shipped from the same SKU
    assert stock[("after", "woo-main", "MUG-WHITE")] == "739"
    assert stock[("after", "own-shop", "SKU-1")] == "299"
    assert "generic shop received 2 signed stock update(s)" in story
