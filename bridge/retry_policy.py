"""How long, and how often, a failing job is tried again: one policy per job kind, pure.

A job's retries live in the database (`jobs.fail` sets the next `run_at`), across worker
processes and restarts, for days. A policy only answers two questions: how long to wait after
the n-th failed attempt, and how many attempts a job gets. (tenacity's wait functions compute the
same capped exponential delay, but they are built to wrap a call inside one process; a queue row
needs the number, not a retrying decorator, so a few lines here beat a dependency.)

- `DEFAULT`: every kind without its own policy, as before: 8 attempts, 5 s doubling to an
  hour, full jitter (a retry storm after an outage spreads over the whole interval).
- `PUSH`: a tracking push-back must outlast a storefront outage as long as the storefront itself
  retries its webhooks (Shopify: 48 hours). It waits 30 s doubling to 30 min, with a quarter of
  each delay random, and gets as many attempts as make the *shortest* possible schedule last
  48 hours (`PUSH.shortest_span_s() >= 48 h`, tested). A storefront's `Retry-After` can lengthen
  a wait but never shorten it (a 503 answering `Retry-After: 1` must not burn the 48 hours in
  minutes).

What never spends an attempt, whatever the policy: a throttled answer (Shopify `THROTTLED`, HTTP
429), a channel or account parked on rejected credentials, waiting for a sibling job
(`worker.RetryLater(count_attempt=False)`).

A job whose worker stops renewing its lease (the process crashed or was killed while running it)
loses that attempt like a failure; after `max_lost_leases` such losses, or when its attempts are
used up, the next claim dead-letters it instead of running it again (`jobs.claim`): a job that
takes its worker down must not do so forever.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

HOUR = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    #: Wait after the first failed attempt; doubled after each further one, up to `cap_s`.
    base_s: float
    cap_s: float
    max_attempts: int
    #: Share of each delay that is random: 1.0 waits uniformly in [0, d], 0.25 in [0.75 d, d].
    jitter: float = 1.0
    #: A `Retry-After` from the other side only lengthens our delay (else it replaces it).
    retry_after_is_floor: bool = False
    #: Claims lost to a dead worker before the job is dead-lettered (see the module docstring).
    max_lost_leases: int = 5

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.max_attempts < 1:
            raise ValueError("a retry policy needs 0 < base_s <= cap_s and at least one attempt")
        if not 0.0 <= self.jitter <= 1.0 or self.max_lost_leases < 1:
            raise ValueError("jitter must be within [0, 1] and max_lost_leases at least 1")

    def ceiling_s(self, attempts: int) -> float:
        """The longest wait after `attempts` failed attempts (no jitter)."""
        exponent = max(0, attempts - 1)
        if exponent >= 64:  # 2**64 * base is past any cap
            return self.cap_s
        return min(self.cap_s, self.base_s * 2.0**exponent)

    def shortest_s(self, attempts: int) -> float:
        return self.ceiling_s(attempts) * (1.0 - self.jitter)

    def delay(
        self, attempts: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        ceiling = self.ceiling_s(attempts)
        chosen = (rng or random).uniform(ceiling * (1.0 - self.jitter), ceiling)
        if retry_after is None:
            return chosen
        return max(chosen, retry_after) if self.retry_after_is_floor else retry_after

    def shortest_span_s(self) -> float:
        """The least time between a job's first attempt and its last (every delay at its minimum)."""
        return sum(self.shortest_s(n) for n in range(1, self.max_attempts))

    @classmethod
    def lasting(
        cls, window_s: float, *, base_s: float, cap_s: float, jitter: float, **kwargs: object
    ) -> RetryPolicy:
        """A policy whose shortest schedule still spans `window_s`: the fewest attempts that do."""
        if jitter >= 1.0:
            raise ValueError("a policy with full jitter has no shortest span; use jitter < 1")
        probe = cls(base_s=base_s, cap_s=cap_s, max_attempts=1, jitter=jitter, **kwargs)  # type: ignore[arg-type]
        attempts, span = 1, 0.0
        while span < window_s:
            span += probe.shortest_s(attempts)
            attempts += 1
        return replace(probe, max_attempts=attempts)


DEFAULT = RetryPolicy(base_s=5.0, cap_s=HOUR, max_attempts=8)

PUSH_WINDOW_S = 48 * HOUR
PUSH = RetryPolicy.lasting(PUSH_WINDOW_S, base_s=30.0, cap_s=HOUR / 2, jitter=0.25, retry_after_is_floor=True)

POLICIES: Mapping[str, RetryPolicy] = MappingProxyType({"push": PUSH})


def for_kind(kind: str) -> RetryPolicy:
    return POLICIES.get(kind, DEFAULT)
