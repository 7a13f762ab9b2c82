"""Pure pieces of the MCF simulator: token buckets, the ledger's rate maths, the order timeline,
configuration and where request checks come from."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.amazon.simulator import Fault, Simulator, SimulatorConfig, SkuConfig, load_config
from bridge.amazon.simulator.buckets import TokenBucket
from bridge.amazon.simulator.config import OperationLimit, Timings
from bridge.amazon.simulator.envelope import ApiError
from bridge.amazon.simulator.fulfilment import OrderLine, SimOrder, history, status_at
from bridge.amazon.simulator.ledger import Ledger
from bridge.amazon.simulator.validation import validate_body
from bridge.clock import ManualClock, ScaledClock


def test_a_token_bucket_allows_its_burst_then_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(OperationLimit(rate=2.0, burst=3), now=0.0)
    assert [bucket.try_take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.try_take(0.4) is False  # 0.8 of a token
    assert bucket.try_take(0.5) is True
    assert [bucket.try_take(100.0) for _ in range(4)] == [True, True, True, False]


def test_the_ledger_finds_the_busiest_second_even_across_whole_second_boundaries() -> None:
    ledger = Ledger()
    for t in (10.8, 10.9, 11.1, 11.2, 13.5):
        ledger.record_call("op", t)
    assert ledger.calls_per_second("op") == [2, 2, 0, 1]
    assert ledger.max_calls_per_second("op") == 4
    assert ledger.max_calls_per_second("other") == 0


def _order(quantity: int, fulfillable: int, *, held: bool = False) -> SimOrder:
    clock = ManualClock()
    line = OrderLine("SKU", "line", quantity, fulfillable, "X00TEST")
    return SimOrder(
        "o-1",
        {"shippingSpeedCategory": "Standard"},
        "FillAllAvailable",
        [line],
        received_at=clock.now(),
        released_at=None if held else clock.now(),
    )


def test_an_order_with_nothing_fulfillable_plans_then_becomes_unfulfillable() -> None:
    order = _order(quantity=2, fulfillable=0)
    timings = Timings()
    assert [s for _, s in history(order, timings)] == ["Received", "Planning", "Unfulfillable"]
    later = order.received_at + timedelta(hours=2)
    assert status_at(order, timings, later) == ("Unfulfillable", order.received_at + timedelta(hours=1))


def test_a_held_order_is_cancelled_when_the_hold_limit_passes() -> None:
    order = _order(quantity=1, fulfillable=1, held=True)
    timings = Timings(hold_auto_cancel_after=60)
    assert status_at(order, timings, order.received_at + timedelta(seconds=59))[0] == "Received"
    assert status_at(order, timings, order.received_at + timedelta(seconds=60))[0] == "Cancelled"


def test_config_files_are_read_into_typed_settings(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(
        "skus:\n  MUG: 12\n  LAMP: {quantity: 2, split: true}\n"
        "timings: {planning_after: 5}\nlimits: {createFulfillmentOrder: {rate: 0.5, burst: 5}}\n"
    )
    config = load_config(path)
    assert config.skus["MUG"] == SkuConfig(quantity=12)
    assert config.skus["LAMP"].split is True
    assert config.timings.planning_after == 5
    assert config.limit_for("createFulfillmentOrder") == OperationLimit(rate=0.5, burst=5)
    assert config.limit_for("getFeatures") == OperationLimit()
    with pytest.raises(ValueError, match="unknown simulator config keys"):
        SimulatorConfig.from_mapping({"sku": {}})


def test_request_checks_come_from_amazons_model_in_the_package_not_from_our_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stricter (or missing) `schemas/spapi/` changes nothing: the simulator reads Amazon's model."""
    stricter = {"type": "object", "properties": {"items": {"maxItems": 0}}}
    (tmp_path / "spapi").mkdir()
    (tmp_path / "spapi" / "create_fulfillment_return.json").write_text(json.dumps(stricter))
    monkeypatch.setenv("BRIDGE_SCHEMAS_DIR", str(tmp_path))
    item = {
        "sellerReturnItemId": "r",
        "sellerFulfillmentOrderItemId": "i",
        "amazonShipmentId": "s",
        "returnReasonCode": "CR-DEFECTIVE",
        "returnComment": "four",
    }
    assert validate_body("createFulfillmentReturn", {"items": [item]})["items"][0] == item
    with pytest.raises(ApiError) as raised:
        validate_body("createFulfillmentReturn", {"items": [{**item, "returnComment": "c" * 1001}]})
    assert raised.value.status == 400 and raised.value.code == "InvalidInput"
    assert "items[0].returnComment is too long (maximum 1000 characters)" in raised.value.message
    assert "ccc" not in raised.value.message + raised.value.details


def test_faults_reject_unknown_operations_and_nonsense() -> None:
    with pytest.raises(ValueError):
        Fault(operation="nope")
    with pytest.raises(ApiError):
        Fault.from_json({"operation": "getFeatures", "status": 200})
    assert Fault.from_json({"operation": "*", "kind": "drop"}).operation == "*"


def test_a_demo_simulator_on_a_scaled_clock_can_still_be_fast_forwarded() -> None:
    sim = Simulator(SimulatorConfig(), clock=ScaledClock(speed=1.0), rate_clock=ManualClock())
    before = sim.now()
    sim.advance(3600)
    assert sim.now() - before >= timedelta(hours=1)
