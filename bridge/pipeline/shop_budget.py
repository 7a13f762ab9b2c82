"""Each Shopify shop's GraphQL cost bucket, shared by every worker through the database.

Shopify meters its Admin GraphQL API per app and shop with a leaky bucket of cost points
(typically 1,000 points restoring 50 a second; larger plans more). Each worker process used to
keep its own copy of that bucket, learnt from the answers it got, so three workers on one shop
each believed the whole bucket was theirs and drew `THROTTLED` answers. Here the bucket lives in
the `rate_buckets` table through the SP-API limiter's own `DatabaseBuckets` (one mechanism for
every rate budget): a call reserves its requested cost in one short transaction (sleeping on
the clock until the points are there, or -- inside a job, past the worker's `rate_wait_s` --
handing the job back with the points reserved for it, `bridge.budget`), and each answer settles
it: Shopify refunds what a query did not use, and its own count of what is left wins when lower
(other apps on the shop spend from the same bucket).

Waiting here never spends a job attempt: `LocalThrottle` becomes `PushError("throttled")`, which
the push-back stage turns into `RetryLater(count_attempt=False)`.
"""

from __future__ import annotations

from ..amazon.errors import LocalThrottle
from ..amazon.limiter import DatabaseBuckets, Limit, MemoryBuckets
from ..storefronts.push import PushError
from ..storefronts.shopify_graphql import ThrottleStatus

OPERATION = "graphql-cost"
#: Until a shop's first answer says otherwise: Shopify's standard bucket, conservatively.
DEFAULT_SHOP_LIMIT = Limit(rate=50.0, burst=1000.0)


def shop_key(channel_id: str) -> str:
    return f"shopify:{channel_id}"


def _limit(status: ThrottleStatus | None) -> Limit | None:
    if status is None or status.restore_rate <= 0 or status.maximum_available <= 0:
        return None
    return Limit(rate=status.restore_rate, burst=status.maximum_available)


class SharedCostBuckets:
    """`storefronts.shopify_graphql.CostBudget` on the SP-API limiter's buckets."""

    def __init__(self, buckets: DatabaseBuckets | MemoryBuckets) -> None:
        self._buckets = buckets

    def take(self, shop: str, cost: float, *, max_wait: float, known: ThrottleStatus | None) -> None:
        try:
            self._buckets.acquire(
                shop_key(shop),
                OPERATION,
                max_wait=max_wait,
                cost=cost,
                limit=_limit(known) or DEFAULT_SHOP_LIMIT,
            )
        except LocalThrottle as exc:
            wait = exc.retry_after if exc.retry_after is not None else max_wait
            raise PushError(
                "throttled",
                f"Shopify's cost bucket for channel {shop} (shared by every worker) needs {wait:.1f}s "
                f"to hold {cost:g} points; nothing was sent",
                retry_after=max(1.0, wait),
            ) from None

    def settle(self, shop: str, *, refund: float, status: ThrottleStatus | None) -> None:
        available = status.currently_available if status is not None else None
        self._buckets.settle(
            shop_key(shop), OPERATION, refund=refund, available=available, limit=_limit(status)
        )
