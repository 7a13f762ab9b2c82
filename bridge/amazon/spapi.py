"""The SP-API HTTP layer: endpoints, auth headers, rate limiting, retries, circuit breaking, errors.

One `SpApiClient` per Amazon account per process; it is thread-safe and should be reused (it owns
the connection pool, the LWA authenticator and the account's circuit breakers, one per operation).
Operation-specific code (paths, payload shapes) lives in `outbound.py`; this module knows nothing
about orders.

What a caller may rely on:

- Only https:// endpoints, unless the account is marked `local_simulator`.
- Every attempt takes a token from the shared bucket first, so throttling happens on our side.
- Retried: 429, 500, 502, 503, 504, connection errors and timeouts, with capped exponential
  backoff and jitter, or exactly what `Retry-After` asks for. A `Retry-After` longer than
  `RetryPolicy.max_retry_after` is not slept through: the error is raised with `retry_after` set so
  the job queue can come back later. Other 4xx are never retried.
- A non-idempotent operation (`Operation.idempotent=False`: create, update, cancel, create return)
  is not repeated after a reply that leaves its outcome unknown (5xx, read timeout, dropped
  connection): the error is raised with `ambiguous=True` and the caller must read before trying
  again, unless it passed `retry_ambiguous=True`. 429 and "could not connect" are not ambiguous
  (Amazon never saw or never ran the request) and are retried for every operation.
- A 401/403 that names the token (expired; revoked, malformed or invalid; missing) triggers one
  forced token refresh per call; a 403 that does not (the app lacks a role) is `AccessDenied`.
- "Not found" is recognised by Amazon's code and message on operations that address an order or a
  package by id: 404 `NotFound`, and the 400 `InvalidInput` "Requested order not found" Amazon
  really answers for an unknown `sellerFulfillmentOrderId`. A bare 404 with neither is not.
- One circuit breaker per (account, operation): a 5xx burst on previews leaves creates and
  listing alone. It opens after `CircuitPolicy.failure_threshold` consecutive 5xx or transport
  failures, answers `CircuitOpen` without sending anything, and lets one probe through after
  `cool_down` seconds, doubling after each failed probe up to `max_cool_down`; the first success
  closes it. A `BreakerListener` hears every opening and closing (the bridge turns them into
  operator alerts).
- Each attempt is logged on logger `bridge.amazon` with operation, status, latency, attempt and
  `x-amzn-RequestId`. Bodies, URLs (they hold order ids), tokens and personal data are never logged.
- All waiting goes through the injected Clock.

Retries use tenacity with our own `wait`/`stop` callables, because the backoff must sleep on the
injected Clock, honour `Retry-After` and stop on the Clock's elapsed time rather than the wall clock.
"""

from __future__ import annotations

import email.utils
import logging
import platform
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import tenacity

import bridge
from bridge import metrics
from bridge.channels import AmazonAccount
from bridge.clock import Clock

from .auth import AccessTokens, LwaAuth, check_endpoint
from .errors import (
    AccessDenied,
    CircuitOpen,
    InvalidInput,
    LocalThrottle,
    NotFound,
    QuotaExceeded,
    ServerError,
    SpApiError,
    TransportError,
    UnexpectedResponse,
    redact,
)
from .limiter import Buckets
from .tokens import TokenStore

log = logging.getLogger("bridge.amazon")

REGION_HOSTS: Mapping[str, str] = {
    "na": "sellingpartnerapi-na.amazon.com",
    "eu": "sellingpartnerapi-eu.amazon.com",
    "fe": "sellingpartnerapi-fe.amazon.com",
}
USER_AGENT = f"fba-bridge/{getattr(bridge, '__version__', '0')} (Language=Python/{platform.python_version()})"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=15.0, pool=10.0)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: Amazon names the token in every 401/403 a new token can cure: "The access token you provided has
#: expired.", "... is revoked, malformed or invalid.", "Access token is missing ...", "The security
#: token included in the request is expired".
_NAMES_THE_TOKEN = re.compile(r"\btoken\b", re.IGNORECASE)
_SAYS_NOT_FOUND = re.compile(r"\bnot\s+found\b|\bdoes\s+not\s+exist\b", re.IGNORECASE)
_NOT_FOUND_CODES = frozenset({"NotFound", "ResourceNotFound"})
# Raised before a single byte reached Amazon: safe to repeat any operation.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def http_client(
    transport: httpx.BaseTransport | None = None, timeout: httpx.Timeout = DEFAULT_TIMEOUT
) -> httpx.Client:
    """The HTTP client of SP-API calls. One per process can serve every account (`http=` of
    `SpApiClient`): each request carries its account's token, and the accounts of a region share
    one endpoint, so their calls reuse warm connections instead of each account keeping its own.
    It keeps no cookies: SP-API authenticates by header, and one account's cookies are no business
    of another's."""
    return _CookielessClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


class _NoCookies(httpx.Cookies):
    """Keeps no cookie without looking at one. httpx offers every response's cookies to the
    client's store by building a urllib request for it: ~3% of a busy worker's CPU, spent for a
    store that refused them all (a jar whose policy allows no domain)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise TypeError("SP-API calls carry no cookies")


class _CookielessClient(httpx.Client):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("SP-API calls carry no cookies")


def base_url(account: AmazonAccount) -> str:
    """The SP-API endpoint for an account: its override, else the region's (sandbox) host."""
    if account.endpoint:
        return check_endpoint(
            account.endpoint,
            allow_http=account.local_simulator,
            what=f"endpoint of Amazon account {account.id!r}",
        )
    host = REGION_HOSTS.get(account.region)
    if host is None:
        raise ValueError(
            f"Amazon account {account.id!r}: unknown region {account.region!r}; use na, eu or fe"
        )
    return f"https://{'sandbox.' if account.sandbox else ''}{host}"


@dataclass(frozen=True)
class Operation:
    """One SP-API operation: its name (also the rate-bucket and breaker name), HTTP method and path
    template. `by_id`: it addresses an existing order or package, so Amazon may answer "not found"."""

    name: str
    method: str
    path: str
    idempotent: bool
    by_id: bool = False

    def url_path(self, params: Mapping[str, str] | None = None) -> str:
        return self.path.format(**{k: quote(str(v), safe="") for k, v in (params or {}).items()})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    #: Stop retrying once the call (sleeps included) would take longer than this, on the Clock.
    max_elapsed: float = 180.0


@dataclass(frozen=True)
class CircuitPolicy:
    failure_threshold: int = 5
    #: Wait before the first probe; doubled after each failed probe, up to `max_cool_down`.
    cool_down: float = 2.0
    max_cool_down: float = 60.0


class BreakerListener(Protocol):
    """Hears a breaker change state (called outside the breaker's lock; must not raise)."""

    def opened(self, account_id: str, operation: str, failures: int, retry_in: float) -> None: ...

    def closed(self, account_id: str, operation: str) -> None: ...


@dataclass(frozen=True)
class SpApiResponse:
    status: int
    body: Any
    request_id: str | None
    rate_limit: float | None

    @property
    def payload(self) -> Any:
        """The `payload` member of the body (most operations), or None."""
        return self.body.get("payload") if isinstance(self.body, dict) else None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class CircuitBreaker:
    """Consecutive-failure breaker for one operation of one seller account
    (closed -> open -> half-open -> closed), probing with capped exponential backoff."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self,
        clock: Clock,
        policy: CircuitPolicy,
        account_id: str,
        operation: str = "",
        listener: BreakerListener | None = None,
    ) -> None:
        self._clock = clock
        self._policy = policy
        self._account_id = account_id
        self._operation = operation
        self._listener = listener
        self._lock = threading.Lock()
        self._state = self.CLOSED
        self._failures = 0
        self._trips = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        # An earlier process may have left this breaker's alert open: the first success says so.
        self._maybe_stale_alert = listener is not None

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def operation(self) -> str:
        return self._operation

    def _cool_down(self) -> float:
        return min(self._policy.max_cool_down, self._policy.cool_down * 2 ** max(0, self._trips - 1))

    def acquire(self) -> bool:
        """Permission to send; True when this call is the half-open probe. Raises `CircuitOpen`."""
        with self._lock:
            if self._state == self.CLOSED:
                return False
            now = self._clock.monotonic()
            if self._state == self.OPEN:
                remaining = self._opened_at + self._cool_down() - now
                if remaining > 0:
                    raise self._open_error(remaining)
                self._state = self.HALF_OPEN
            elif self._probe_started is not None:
                # A probe is in flight; a probe that never reported back frees its slot after a cool-down.
                remaining = self._probe_started + self._cool_down() - now
                if remaining > 0:
                    raise self._open_error(remaining)
            self._probe_started = now
            return True

    def success(self) -> None:
        with self._lock:
            was_open = self._state != self.CLOSED or self._maybe_stale_alert
            self._state, self._failures, self._trips, self._probe_started = self.CLOSED, 0, 0, None
            self._maybe_stale_alert = False
        if was_open and self._listener is not None:
            self._listener.closed(self._account_id, self._operation)

    def failure(self) -> None:
        with self._lock:
            tripped = False
            if self._state == self.HALF_OPEN:
                tripped = self._trip()
            elif self._state == self.CLOSED:
                self._failures += 1
                if self._failures >= self._policy.failure_threshold:
                    tripped = self._trip()
            failures, retry_in = self._failures, self._cool_down()
        if tripped and self._listener is not None:
            self._listener.opened(self._account_id, self._operation, failures, retry_in)

    def abandon(self, probe: bool) -> None:
        """The probe ended without an answer from Amazon (e.g. no token): let the next call probe."""
        if probe:
            with self._lock:
                if self._state == self.HALF_OPEN:
                    self._probe_started = None

    def _trip(self) -> bool:
        self._state = self.OPEN
        self._trips += 1
        self._opened_at = self._clock.monotonic()
        self._probe_started = None
        log.warning(
            "spapi circuit opened account=%s operation=%s next_probe_s=%.0f",
            self._account_id,
            self._operation,
            self._cool_down(),
            extra={"account": self._account_id, "operation": self._operation},
        )
        return True

    def _open_error(self, remaining: float) -> CircuitOpen:
        return CircuitOpen(
            message=f"{self._operation or 'calls'} for Amazon account {self._account_id!r} paused for "
            f"{remaining:.0f}s after {self._policy.failure_threshold} consecutive failures (Amazon 5xx "
            "or network errors); nothing was sent, other operations continue",
            operation=self._operation,
            retry_after=remaining,
        )


@dataclass
class _Call:
    op: Operation
    url: str
    params: Mapping[str, Any] | None
    body: Any
    retry_ambiguous: bool
    started: float
    attempt: int = 0
    refreshed: bool = False
    #: Whether this attempt's outcome reached the circuit breaker.
    reported: bool = False


class SpApiClient:
    """Sends SP-API operations for one Amazon account. Thread-safe; reuse one per account and process."""

    def __init__(
        self,
        account: AmazonAccount,
        clock: Clock,
        buckets: Buckets,
        *,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
        auth: AccessTokens | None = None,
        tokens: TokenStore | None = None,
        retry: RetryPolicy | None = None,
        circuit: CircuitPolicy | None = None,
        breaker_listener: BreakerListener | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limiter_max_wait: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.account = account
        self._clock = clock
        self._buckets = buckets
        self._base = base_url(account)
        self._owns_http = http is None
        self._http = http or http_client(transport, timeout)
        self.auth: AccessTokens = auth or LwaAuth(account, clock, self._http, store=tokens)
        self._retry = retry or RetryPolicy()
        self._circuit = circuit or CircuitPolicy()
        self._breaker_listener = breaker_listener
        self._breakers: dict[str, CircuitBreaker] = {}
        self._breakers_lock = threading.Lock()
        self._limiter_max_wait = limiter_max_wait
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"SpApiClient(account={self.account.id!r}, base={self._base!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def breaker_for(self, operation: str) -> CircuitBreaker:
        """The circuit breaker of one operation of this account (created closed on first use)."""
        with self._breakers_lock:
            breaker = self._breakers.get(operation)
            if breaker is None:
                breaker = self._breakers[operation] = CircuitBreaker(
                    self._clock, self._circuit, self.account.id, operation, self._breaker_listener
                )
            return breaker

    def __enter__(self) -> SpApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------

    def call(
        self,
        op: Operation,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_ambiguous: bool = False,
    ) -> SpApiResponse:
        """Send `op` (retrying as the module docstring says) and return the 2xx response."""
        call = _Call(
            op, self._base + op.url_path(path_params), params, json, retry_ambiguous, self._clock.monotonic()
        )
        retrying = tenacity.Retrying(
            sleep=self._clock.sleep,
            retry=tenacity.retry_if_exception(lambda exc: self._should_retry(call, exc)),
            wait=self._wait,
            stop=lambda state: self._should_stop(call, state),
            before_sleep=lambda state: self._log_retry(call, state),
            reraise=True,
        )
        return retrying(self._attempt, call)

    def _should_retry(self, call: _Call, exc: BaseException) -> bool:
        if not isinstance(exc, SpApiError) or isinstance(exc, CircuitOpen | LocalThrottle):
            return False
        if not exc.retryable:
            return False
        return not (exc.ambiguous and not call.retry_ambiguous)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # Spread the herd a little past the instant the server named.
            return float(retry_after) + self._rng.uniform(0.0, min(1.0, 0.1 * float(retry_after)))
        ceiling = min(self._retry.max_delay, self._retry.base_delay * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def _should_stop(self, call: _Call, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self._retry.max_attempts:
            return True
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > self._retry.max_retry_after:
            return True
        elapsed = self._clock.monotonic() - call.started
        return elapsed + (state.upcoming_sleep or 0.0) > self._retry.max_elapsed

    def _log_retry(self, call: _Call, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        code = getattr(exc, "code", type(exc).__name__)
        log.warning(
            "spapi %s retry in %.1fs after %s attempt=%d account=%s",
            call.op.name,
            state.upcoming_sleep,
            code,
            state.attempt_number,
            self.account.id,
            extra={
                "operation": call.op.name,
                "attempt": state.attempt_number,
                "account": self.account.id,
                "error_code": code,
            },
        )

    # ----------------------------------------------------------------------------------------

    def _attempt(self, call: _Call) -> SpApiResponse:
        call.attempt += 1
        call.reported = False
        breaker = self.breaker_for(call.op.name)
        probe = breaker.acquire()
        try:
            token = self.auth.access_token()
            response = self._send(call, token, breaker)
            if response.status_code in (401, 403) and not call.refreshed and _names_the_token(response):
                call.refreshed = True
                token = self.auth.refresh(token)
                response = self._send(call, token, breaker)
            return self._interpret(call, response)
        finally:
            if not call.reported:
                # Nothing reached Amazon (no token, local throttle): free the half-open probe slot.
                breaker.abandon(probe)

    def _send(self, call: _Call, token: str, breaker: CircuitBreaker) -> httpx.Response:
        op = call.op
        self._buckets.acquire(self.account.id, op.name, max_wait=self._limiter_max_wait)
        headers = {"x-amz-access-token": token, "Accept": "application/json"}
        started = time.perf_counter()
        try:
            response = self._http.request(
                op.method, call.url, params=call.params, json=call.body, headers=headers
            )
        except httpx.TransportError as exc:
            breaker.failure()
            call.reported = True
            latency_ms = round((time.perf_counter() - started) * 1000)
            self._log(call, type(exc).__name__, latency_ms, None, logging.WARNING)
            sent = not isinstance(exc, _NOT_SENT)
            raise TransportError(
                message=f"no answer from Amazon for {op.name} on account {self.account.id!r} "
                f"({type(exc).__name__}{'' if sent else '; the request was not sent'})",
                operation=op.name,
                ambiguous=sent and not op.idempotent,
            ) from exc
        latency_ms = round((time.perf_counter() - started) * 1000)
        if response.status_code >= 500:
            breaker.failure()
        else:
            breaker.success()
        call.reported = True
        request_id = response.headers.get("x-amzn-RequestId")
        level = logging.INFO if response.status_code < 400 else logging.WARNING
        self._log(call, response.status_code, latency_ms, request_id, level)
        return response

    def _log(self, call: _Call, status: object, latency_ms: int, request_id: str | None, level: int) -> None:
        metrics.spapi_call(self.account.id, call.op.name, status, latency_ms)
        log.log(
            level,
            "spapi %s status=%s latency_ms=%d attempt=%d request_id=%s account=%s",
            call.op.name,
            status,
            latency_ms,
            call.attempt,
            request_id or "-",
            self.account.id,
            extra={
                "operation": call.op.name,
                "status": status,
                "latency_ms": latency_ms,
                "attempt": call.attempt,
                "request_id": request_id,
                "account": self.account.id,
            },
        )

    def _interpret(self, call: _Call, response: httpx.Response) -> SpApiResponse:
        op, status = call.op, response.status_code
        request_id = response.headers.get("x-amzn-RequestId")
        rate = _float_header(response.headers.get("x-amzn-RateLimit-Limit"))
        if rate is not None:
            self._tell_buckets(op, lambda: self._buckets.observe_rate(self.account.id, op.name, rate))
        body = _json_or_none(response)
        if 200 <= status < 300:
            return SpApiResponse(status, body if body is not None else {}, request_id, rate)
        if status == 429:
            self._tell_buckets(op, lambda: self._buckets.drain(self.account.id, op.name))
        raise self._error(op, response, body, request_id)

    def _tell_buckets(self, op: Operation, update: Callable[[], None]) -> None:
        """Best effort: once Amazon has answered, a limiter failure (database down) must not turn a
        done create into an apparent failure."""
        try:
            update()
        except Exception as exc:
            log.warning(
                "spapi %s could not update the rate bucket: %s",
                op.name,
                type(exc).__name__,
                extra={"operation": op.name, "account": self.account.id},
            )

    def _error(
        self, op: Operation, response: httpx.Response, body: Any, request_id: str | None
    ) -> SpApiError:
        """The typed exception for a non-2xx answer, with Amazon's text redacted."""
        status = response.status_code
        code, message, details = _first_error(body)
        text = redact(message) or "no reason given"
        common: dict[str, Any] = {
            "status": status,
            "request_id": request_id,
            "details": redact(details),
            "operation": op.name,
            "amazon_message": redact(message),
        }
        if op.by_id and _says_not_found(status, code, message):
            return NotFound(code, f"Amazon found nothing for {op.name}: {text}", **common)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            return QuotaExceeded(
                code, f"Amazon throttled {op.name} (429): {text}", retry_after=retry_after, **common
            )
        if status in (401, 403):
            return AccessDenied(
                code,
                f"Amazon denied {op.name}: {text}. Check that the seller authorised this app with the "
                "Amazon Fulfillment role and that the account's region matches the seller's marketplace.",
                **common,
            )
        if status == 400:
            return InvalidInput(code, f"Amazon rejected {op.name} as invalid: {text}", **common)
        if status == 404 and _says_not_found(status, code, message):
            return NotFound(code, f"Amazon found nothing for {op.name}: {text}", **common)
        if status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            return ServerError(
                code,
                f"Amazon failed {op.name} with HTTP {status}: {text}",
                ambiguous=not op.idempotent,
                retryable=status in RETRYABLE_STATUS,
                retry_after=retry_after,
                **common,
            )
        return SpApiError(
            code or f"HTTP{status}", f"Amazon answered {op.name} with HTTP {status}: {text}", **common
        )


def _names_the_token(response: httpx.Response) -> bool:
    _, message, details = _first_error(_json_or_none(response))
    return bool(_NAMES_THE_TOKEN.search(f"{message} {details}"))


def _says_not_found(status: int, code: str | None, message: str) -> bool:
    """Amazon's "no such order/package", by its code and message rather than the status alone."""
    says = bool(_SAYS_NOT_FOUND.search(message))
    if status == 404:
        return code in _NOT_FOUND_CODES or says
    return status == 400 and code == "InvalidInput" and says


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _first_error(body: Any) -> tuple[str | None, str, str]:
    """(code, message, details) of the first entry of Amazon's `{"errors": [...]}` envelope."""
    if not isinstance(body, dict):
        return None, "", ""
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, "", ""
    first = errors[0]
    code = first.get("code")
    return (str(code) if code else None), str(first.get("message") or ""), str(first.get("details") or "")


def _float_header(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def unexpected(op: Operation, what: str, request_id: str | None = None) -> UnexpectedResponse:
    return UnexpectedResponse(
        message=f"Amazon's answer to {op.name} does not match the documented shape ({what})",
        request_id=request_id,
        operation=op.name,
    )
