"""Which seller SKUs may ship with an MCF feature (`BLOCK_AMZL`, `BLANK_BOX`), asked rarely.

Amazon answers eligibility two ways: `getFeatureInventory` lists every eligible SKU of a
marketplace (paged), `getFeatureSKU` answers for one SKU with the reasons it is not eligible.
Asking per order would spend a call (and rate budget) per order, so the list is read once per
(account, marketplace, feature) and kept for `ttl_s` seconds of the injectable clock. A SKU
missing from the list is confirmed once with `getFeatureSKU` (the list may predate a new
listing) and that answer is kept for the same time: an ineligible SKU costs one call per TTL, not
one per order. Both calls go through the account's SP-API client, so its rate limiter and
breaker apply.

Thread-safe: worker threads share one cache; two threads that miss at once may both read (the
later answer wins), which costs a call, never a wrong answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..clock import Clock
from .outbound import FulfillmentOutbound

DEFAULT_TTL_S = 900.0


@dataclass(frozen=True)
class Ineligible:
    """A SKU that may not ship with a feature, and Amazon's reasons (may be empty)."""

    feature: str
    seller_sku: str
    reasons: tuple[str, ...] = ()


class FeatureEligibility:
    def __init__(self, clock: Clock, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._clock = clock
        self.ttl_s = ttl_s
        self._lists: dict[tuple[str, str, str], tuple[float, frozenset[str]]] = {}
        self._skus: dict[tuple[str, str, str, str], tuple[float, Ineligible | None]] = {}
        self._lock = threading.Lock()

    def ineligible(
        self,
        outbound: FulfillmentOutbound,
        account_id: str,
        marketplace_id: str,
        features: Iterable[str],
        seller_skus: Iterable[str],
    ) -> list[Ineligible]:
        """The (feature, SKU) pairs Amazon would refuse, in the order asked. Raises the client's
        `SpApiError` when Amazon cannot be asked (the caller retries the job)."""
        skus = list(dict.fromkeys(seller_skus))
        found: list[Ineligible] = []
        for feature in dict.fromkeys(features):
            eligible = self._eligible_list(outbound, account_id, marketplace_id, feature)
            for sku in skus:
                if sku in eligible:
                    continue
                verdict = self._one_sku(outbound, account_id, marketplace_id, feature, sku)
                if verdict is not None:
                    found.append(verdict)
        return found

    def _eligible_list(
        self, outbound: FulfillmentOutbound, account_id: str, marketplace_id: str, feature: str
    ) -> frozenset[str]:
        key = (account_id, marketplace_id, feature)
        now = self._clock.monotonic()
        with self._lock:
            cached = self._lists.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        listed = frozenset(
            s.seller_sku for s in outbound.feature_inventory(marketplace_id, feature) if s.seller_sku
        )
        with self._lock:
            self._lists[key] = (self._clock.monotonic() + self.ttl_s, listed)
        return listed

    def _one_sku(
        self, outbound: FulfillmentOutbound, account_id: str, marketplace_id: str, feature: str, sku: str
    ) -> Ineligible | None:
        key = (account_id, marketplace_id, feature, sku)
        now = self._clock.monotonic()
        with self._lock:
            cached = self._skus.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = outbound.feature_sku(marketplace_id, feature, sku)
        verdict = None if answer.is_eligible else Ineligible(feature, sku, answer.ineligible_reasons)
        with self._lock:
            self._skus[key] = (self._clock.monotonic() + self.ttl_s, verdict)
        return verdict

    def cached(self) -> Mapping[tuple[str, str, str], frozenset[str]]:
        """The eligible lists held now (for `check-config`-style reports and tests)."""
        with self._lock:
            return {k: v[1] for k, v in self._lists.items()}
