"""One Shopify Admin GraphQL client for every Shopify adapter: calls, cost throttling, error mapping.

What a caller may rely on:

- Every document is a `GraphQLOperation` constant (tests validate each against Shopify's schema).
- Throttling is cost based. Every answer's `extensions.cost.throttleStatus` is remembered; before
  a call whose estimated cost exceeds what the bucket holds now, the client waits on the clock (at
  most `MAX_THROTTLE_WAIT_S`), else raises a retryable `PushError("throttled")` with
  `retry_after`. A `THROTTLED` answer (nothing was executed) is raised the same way.
- With a `CostBudget` (every worker gets one: `pipeline/shop_budget.py`), the shop's bucket is
  kept in the database and shared by every worker process: each call reserves its cost there
  first and each answer settles it, so three workers on one shop queue behind each other instead
  of drawing `THROTTLED` answers. Without one (CLI checks) the bucket is this client's own.
- `call` returns the answer's `data`; GraphQL errors become `PushError`s (`access_denied` as
  `StorefrontRejected`), a lost answer to a non-idempotent operation is *ambiguous*.
- Errors carry operation names, ids, field paths and Shopify's messages (truncated), never the
  access token, and never the variables sent.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .. import metrics
from ..channels import Channel
from ..clock import Clock
from .push import MAX_RETRY_AFTER_S, PushError, StorefrontHttp, StorefrontRejected

log = logging.getLogger(__name__)

MAX_THROTTLE_WAIT_S = 10.0
MIN_THROTTLE_RETRY_S = 1.0
THROTTLE_MARGIN_S = 0.05  # our clock and Shopify's are not the same clock
MAX_PAGES = 50
MAX_MESSAGE_CHARS = 200
MAX_MESSAGES = 3

_OPERATION_NAME = re.compile(r"^\s*(query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)")


@dataclass(frozen=True)
class GraphQLOperation:
    """A GraphQL document with one named operation, what it is estimated to cost (Shopify's
    calculated query cost: objects 1, connections 2 + first x node cost, mutations 10) and whether
    repeating it after a lost answer is harmless."""

    document: str
    estimated_cost: int
    idempotent: bool = True
    name: str = field(init=False)

    def __post_init__(self) -> None:
        match = _OPERATION_NAME.match(self.document)
        if match is None:
            raise ValueError("a GraphQL operation document must start with `query Name` or `mutation Name`")
        object.__setattr__(self, "name", match.group(2))


def gid(kind: str, legacy_id: str) -> str:
    """Shopify's global id for a REST id (`gid://shopify/Order/1001`)."""
    return f"gid://shopify/{kind}/{legacy_id}"


def legacy(global_id: str) -> str:
    """The REST id at the end of a global id (`gid://shopify/Order/1001` -> `1001`)."""
    return global_id.rsplit("/", 1)[-1]


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def next_cursor(connection: dict[str, Any]) -> str | None:
    page_info = obj(connection.get("pageInfo"))
    cursor = page_info.get("endCursor")
    return cursor if page_info.get("hasNextPage") is True and isinstance(cursor, str) else None


def truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


# --------------------------------------------------------------------------------------------
# Cost-based throttling


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float
    observed_at: float  # clock.monotonic() when Shopify reported it

    def available_at(self, now: float) -> float:
        restored = self.restore_rate * max(0.0, now - self.observed_at)
        return min(self.maximum_available, self.currently_available + restored)

    def wait_for(self, cost: float, now: float) -> float:
        missing = cost - self.available_at(now)
        if missing <= 0:
            return 0.0
        return math.inf if self.restore_rate <= 0 else missing / self.restore_rate


def _charged(extensions: Any) -> float:
    """Points Shopify took for a call: its actual cost, 0 for a throttled or costless answer."""
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    actual = cost.get("actualQueryCost") if isinstance(cost, dict) else None
    return float(actual) if isinstance(actual, int | float) else 0.0


def _throttle_status(extensions: Any, now: float) -> tuple[ThrottleStatus | None, int | None]:
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return None, None
    requested = cost.get("requestedQueryCost")
    requested_cost = int(requested) if isinstance(requested, int | float) else None
    status = cost.get("throttleStatus")
    if not isinstance(status, dict):
        return None, requested_cost
    try:
        throttle = ThrottleStatus(
            maximum_available=float(status["maximumAvailable"]),
            currently_available=float(status["currentlyAvailable"]),
            restore_rate=float(status["restoreRate"]),
            observed_at=now,
        )
    except (KeyError, TypeError, ValueError):
        return None, requested_cost
    return throttle, requested_cost


class CostBudget(Protocol):
    """A shop's cost bucket shared beyond this process (`pipeline/shop_budget.py`)."""

    def take(self, shop: str, cost: float, *, max_wait: float, known: ThrottleStatus | None) -> None:
        """Reserve `cost` points, sleeping on the clock for at most `max_wait`; else raise a
        retryable `PushError("throttled")` with `retry_after` (possibly keeping the reservation
        for the job, which goes back to the queue until then: `bridge.budget`)."""
        ...

    def settle(self, shop: str, *, refund: float, status: ThrottleStatus | None) -> None:
        """Shopify answered: give back what it did not charge, adopt what it reports."""
        ...


# --------------------------------------------------------------------------------------------
# The client


class ShopifyGraphQL:
    """The Admin GraphQL endpoint of one channel's shop. Thread-safe; share one per channel."""

    def __init__(
        self,
        channel: Channel,
        clock: Clock,
        transport: httpx.BaseTransport | None = None,
        budget: CostBudget | None = None,
    ) -> None:
        self.channel = channel
        self.clock = clock
        self.budget = budget
        storefront = channel.storefront
        self.endpoint = f"{storefront.base_url.rstrip('/')}/admin/api/{storefront.api_version}/graphql.json"
        self._http = StorefrontHttp(channel, clock, transport)
        self._lock = threading.Lock()
        self._throttle: ThrottleStatus | None = None
        self._costs: dict[str, int] = {}

    def call(self, operation: GraphQLOperation, variables: dict[str, Any]) -> dict[str, Any]:
        reserved = self._await_budget(operation)
        response = self._http.request(
            "POST",
            self.endpoint,
            idempotent=operation.idempotent,
            json={"query": operation.document, "variables": variables, "operationName": operation.name},
            headers={
                "X-Shopify-Access-Token": self.channel.storefront.access_token.reveal(),
                "Accept": "application/json",
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise bad_answer(operation)
        throttle, requested = self._observe(operation, body.get("extensions"), reserved)
        errors = body.get("errors")
        if errors:
            error = _graphql_error(operation, errors, throttle, requested)
            metrics.storefront_graphql_error(self.channel.id, error.code)
            raise error
        data = body.get("data")
        if not isinstance(data, dict):
            raise bad_answer(operation)
        return data

    def close(self) -> None:
        self._http.close()

    def _await_budget(self, operation: GraphQLOperation) -> float:
        """Wait (or refuse) until the bucket holds the operation's cost; returns the points
        reserved in the shared budget (0 without one)."""
        with self._lock:
            throttle = self._throttle
            cost = self._costs.get(operation.name, operation.estimated_cost)
        if throttle is not None and cost > throttle.maximum_available:
            raise PushError(
                "query_too_costly",
                f"{operation.name} costs {cost} points, more than the shop's bucket holds "
                f"({throttle.maximum_available:g})",
                retryable=False,
            )
        if self.budget is not None:
            self.budget.take(self.channel.id, cost, max_wait=MAX_THROTTLE_WAIT_S, known=throttle)
            return float(cost)
        if throttle is None:
            return 0.0
        wait = throttle.wait_for(cost, self.clock.monotonic())
        if wait <= 0:
            return 0.0
        if wait > MAX_THROTTLE_WAIT_S:
            raise PushError(
                "throttled",
                f"Shopify's cost bucket needs {wait:.1f}s to hold {cost} points for {operation.name}",
                retry_after=_retry_after(wait),
            )
        log.debug("shopify: waiting %.2fs for %d cost points before %s", wait, cost, operation.name)
        self.clock.sleep(wait + THROTTLE_MARGIN_S)
        return 0.0

    def _observe(
        self, operation: GraphQLOperation, extensions: Any, reserved: float = 0.0
    ) -> tuple[ThrottleStatus | None, int | None]:
        throttle, requested = _throttle_status(extensions, self.clock.monotonic())
        with self._lock:
            if throttle is not None:
                self._throttle = throttle
            if requested is not None:
                self._costs[operation.name] = requested
        if self.budget is not None and (reserved or throttle is not None):
            # Shopify charges the actual cost of what it ran (nothing when it throttled us).
            charged = _charged(extensions)
            self.budget.settle(self.channel.id, refund=max(0.0, reserved - charged), status=throttle)
        return throttle, requested


# --------------------------------------------------------------------------------------------
# Error mapping


def user_error_messages(payload: dict[str, Any]) -> list[str]:
    """`userErrors` of a mutation payload as `path: message` texts (truncated)."""
    out = []
    for error in map(obj, items(payload.get("userErrors"))):
        path = ".".join(str(p) for p in items(error.get("field"))) or "(input)"
        out.append(f"{path}: {truncate(str(error.get('message') or ''))}")
    return out


def raise_user_errors(operation: GraphQLOperation, payload: dict[str, Any], what: str) -> None:
    """Raise a non-retryable `PushError("user_errors")` when the payload carries userErrors."""
    messages = user_error_messages(payload)
    if not messages:
        return
    more = f" (+{len(messages) - MAX_MESSAGES} more)" if len(messages) > MAX_MESSAGES else ""
    raise PushError(
        "user_errors",
        f"Shopify refused {operation.name} for {what}: {'; '.join(messages[:MAX_MESSAGES])}{more}",
        retryable=False,
    )


def _graphql_error(
    operation: GraphQLOperation, errors: Any, throttle: ThrottleStatus | None, requested: int | None
) -> PushError:
    found = [obj(e) for e in errors] if isinstance(errors, list) else [{"message": str(errors)}]
    codes = {str(obj(e.get("extensions")).get("code") or "") for e in found}
    if "THROTTLED" in codes:
        cost = requested if requested is not None else operation.estimated_cost
        wait = throttle.wait_for(cost, throttle.observed_at) if throttle else MIN_THROTTLE_RETRY_S
        return PushError(
            "throttled",
            f"Shopify throttled {operation.name} (cost {cost})",
            retry_after=_retry_after(wait),
        )
    messages = "; ".join(truncate(str(e.get("message") or "")) for e in found[:MAX_MESSAGES])
    if "ACCESS_DENIED" in codes:
        return StorefrontRejected(
            "access_denied",
            f"Shopify denied {operation.name}: {messages}; grant the app the scopes it needs",
            retryable=False,
        )
    if "INTERNAL_SERVER_ERROR" in codes:
        return PushError(
            "server_error", f"Shopify failed {operation.name}: {messages}", ambiguous=not operation.idempotent
        )
    return PushError("graphql_error", f"Shopify rejected {operation.name}: {messages}", retryable=False)


def _retry_after(wait: float) -> float:
    """Seconds to wait, rounded up to a tenth, at least `MIN_THROTTLE_RETRY_S`, at most an hour."""
    return math.ceil(max(MIN_THROTTLE_RETRY_S, min(wait, MAX_RETRY_AFTER_S)) * 10) / 10


def bad_answer(operation: GraphQLOperation) -> PushError:
    return PushError(
        "bad_answer",
        f"unexpected answer from Shopify to {operation.name}",
        ambiguous=not operation.idempotent,
    )


def order_not_found(order_id: str) -> PushError:
    return PushError(
        "order_not_found",
        f"Shopify has no order {order_id} (deleted, or the channel points at another shop)",
        retryable=False,
    )


def too_large(what: str) -> PushError:
    return PushError("too_large", f"Shopify {what}: more than {MAX_PAGES} pages to read", retryable=False)
