"""Retry policies: a push-back outlasts 48 hours of failures even with the unluckiest jitter."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import retry_policy
from bridge.retry_policy import DEFAULT, PUSH, RetryPolicy


def test_push_policy_keeps_trying_for_at_least_48_hours_on_its_shortest_schedule() -> None:
    assert PUSH.shortest_span_s() >= 48 * 3600
    fewer = RetryPolicy(PUSH.base_s, PUSH.cap_s, PUSH.max_attempts - 1, PUSH.jitter)
    assert fewer.shortest_span_s() < 48 * 3600, "no more attempts than the window needs"


def test_push_policy_spends_at_most_a_handful_of_attempts_on_a_five_minute_outage() -> None:
    rng = random.Random(7)
    elapsed, attempts = 0.0, 1
    while elapsed < 300:
        elapsed += PUSH.delay(attempts, rng=rng)
        attempts += 1
    assert attempts <= 6 < PUSH.max_attempts


@given(attempts=st.integers(min_value=1, max_value=500), seed=st.integers(0, 2**32 - 1))
def test_push_delays_grow_to_the_cap_and_stay_within_the_jitter_band(attempts: int, seed: int) -> None:
    delay = PUSH.delay(attempts, rng=random.Random(seed))
    ceiling = min(PUSH.cap_s, PUSH.base_s * 2 ** (attempts - 1))
    assert ceiling * (1 - PUSH.jitter) <= delay <= ceiling <= PUSH.cap_s


def test_a_short_retry_after_never_shortens_the_push_backoff_but_a_long_one_lengthens_it() -> None:
    rng = random.Random(1)
    assert PUSH.delay(10, retry_after=1.0, rng=rng) >= PUSH.shortest_s(10)
    assert PUSH.delay(1, retry_after=600.0, rng=rng) == 600.0


def test_the_default_policy_is_unchanged_eight_attempts_full_jitter_retry_after_wins() -> None:
    assert DEFAULT.max_attempts == 8 and DEFAULT.jitter == 1.0
    assert DEFAULT.delay(3, retry_after=2.5) == 2.5
    assert 0.0 <= DEFAULT.delay(3, rng=random.Random(3)) <= 20.0
    assert retry_policy.for_kind("submit") is DEFAULT and retry_policy.for_kind("push") is PUSH


def test_nonsense_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="base_s"):
        RetryPolicy(base_s=0, cap_s=1, max_attempts=1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(base_s=1, cap_s=1, max_attempts=1, jitter=2)
    with pytest.raises(ValueError, match="full jitter"):
        RetryPolicy.lasting(60, base_s=1, cap_s=10, jitter=1.0)
