"""A shop's cost bucket on the SP-API limiter's buckets: reserve the requested cost, settle on the answer."""

from __future__ import annotations

import pytest

from bridge.amazon.limiter import MemoryBuckets
from bridge.clock import ManualClock
from bridge.pipeline.shop_budget import OPERATION, SharedCostBuckets, shop_key
from bridge.storefronts.push import PushError
from bridge.storefronts.shopify_graphql import ThrottleStatus


def _status(available: float, maximum: float = 300.0, rate: float = 10.0) -> ThrottleStatus:
    return ThrottleStatus(maximum, available, rate, observed_at=0.0)


def test_a_reservation_that_does_not_fit_waits_on_the_clock_then_refuses_without_taking_anything() -> None:
    clock = ManualClock()
    buckets = MemoryBuckets(clock)
    budget = SharedCostBuckets(buckets)
    known = _status(300.0)
    budget.take("shop-a", 284, max_wait=10.0, known=known)
    assert buckets.peek(shop_key("shop-a"), OPERATION).tokens == pytest.approx(16.0)
    start = clock.monotonic()
    budget.take("shop-a", 100, max_wait=10.0, known=known)  # 84 missing at 10/s: waits 8.4 s
    assert clock.monotonic() - start == pytest.approx(8.4)
    with pytest.raises(PushError) as refused:
        budget.take("shop-a", 284, max_wait=10.0, known=known)
    assert refused.value.code == "throttled" and refused.value.retry_after == pytest.approx(28.4)
    assert buckets.peek(shop_key("shop-a"), OPERATION).tokens == pytest.approx(0.0), "nothing taken"


def test_settling_refunds_what_shopify_did_not_charge_and_its_lower_count_wins() -> None:
    clock = ManualClock()
    buckets = MemoryBuckets(clock)
    budget = SharedCostBuckets(buckets)
    budget.take("shop-a", 284, max_wait=10.0, known=None)  # unknown shop: 1,000 points assumed
    budget.settle("shop-a", refund=274.0, status=_status(290.0))
    state = buckets.peek(shop_key("shop-a"), OPERATION)
    assert state.tokens == pytest.approx(290.0) and state.burst == 300.0 and state.rate == 10.0
    budget.settle("shop-a", refund=500.0, status=None)
    assert buckets.peek(shop_key("shop-a"), OPERATION).tokens == pytest.approx(300.0), "capped at the size"
