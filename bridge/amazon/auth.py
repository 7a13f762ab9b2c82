"""Login with Amazon (LWA): turn a seller's refresh token into short-lived SP-API access tokens.

What a caller may rely on:

- `access_token()` returns a cached token until a few minutes before it expires (time from the
  injected Clock), then a new one. The token lives in a `TokenStore`: with the database store every
  worker process uses the same token, and only one of them (holding a lease) asks LWA for the next
  one while the others wait for its result. Within a process one thread refreshes at a time.
- `refresh(stale)` gives a token other than `stale` after Amazon refused it (expired, or revoked,
  malformed or invalid). If another thread or process already replaced it, the replacement is
  returned without asking LWA again.
- `invalid_grant`, `invalid_client` and `unauthorized_client` raise `CredentialsRejected` and park
  the account (in the store, so for every process): calls raise again at once, with
  `retry_after` set, until the next try after a capped backoff (30 s doubling up to 10 min), or
  until `recheck()` (`fba-bridge amazon recheck ACCOUNT`). The first successful refresh unparks
  the account, with no restart. New credentials (a process started with another refresh token
  or client secret) are tried at once.
- Token endpoint outages raise `TransportError` / `ServerError` / `QuotaExceeded`, never ambiguous
  (nothing was sent to the SP-API yet).
- Tokens, refresh tokens and client secrets never appear in logs, reprs or exception text.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Protocol

import httpx

from bridge.channels import AmazonAccount
from bridge.clock import Clock

from .errors import (
    CredentialsRejected,
    InsecureEndpoint,
    QuotaExceeded,
    ServerError,
    SpApiError,
    TransportError,
    UnexpectedResponse,
    credentials_rejected,
)
from .tokens import MemoryTokenStore, Rejection, TokenState, TokenStore

LWA_TOKEN_ENDPOINT = "https://api.amazon.com/auth/o2/token"  # noqa: S105 - a URL, not a secret
#: The scope of grantless tokens for the Notifications API's destination operations.
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"
REFRESH_MARGIN_S = 300.0
#: After LWA refused the credentials: first automatic retry, doubling up to the cap.
RETRY_BASE_S = 30.0
RETRY_CAP_S = 600.0
#: How long one process may take to fetch a token before another may try (LWA's timeouts are shorter).
REFRESH_LEASE_S = 30.0
_WAIT_STEP_S = 0.2
_DEFAULT_EXPIRES_IN = 3600.0
_REJECTIONS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
_OPERATION = "lwa.token"

log = logging.getLogger("bridge.amazon")


class AccessTokens(Protocol):
    """What the SP-API client needs from an authenticator."""

    def access_token(self) -> str: ...

    def refresh(self, stale: str) -> str: ...

    def reset(self) -> None: ...

    def recheck(self) -> str: ...


def check_endpoint(url: str, *, allow_http: bool, what: str) -> str:
    """`url` without a trailing slash, or `InsecureEndpoint` unless it is https:// (or allowed http://)."""
    parts = httpx.URL(url)
    if parts.scheme == "https" or (allow_http and parts.scheme == "http"):
        if not parts.host:
            raise InsecureEndpoint(message=f"{what} {url!r} has no host")
        if parts.userinfo:
            raise InsecureEndpoint(message=f"{what} must not carry credentials in the URL")
        return url.rstrip("/")
    raise InsecureEndpoint(
        message=f"{what} must use https:// (got {parts.scheme or 'no'} scheme); plain http:// is only "
        "accepted for an account marked local_simulator"
    )


def credentials_fingerprint(account: AmazonAccount) -> str:
    """A short one-way digest of the LWA credentials: tells a rejection of these credentials from
    a rejection of the ones they replaced (an operator put in a new refresh token and restarted)."""
    parts = (account.client_id, account.client_secret, account.refresh_token)
    material = "\x1f".join(p.reveal() if p else "" for p in parts)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def grantless_form(account: AmazonAccount, scope: str) -> dict[str, str]:
    """LWA's form for a grantless token: the app's credentials and a scope, no refresh token."""
    assert account.client_id and account.client_secret
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_id": account.client_id.reveal(),
        "client_secret": account.client_secret.reveal(),
    }


def grantless_auth(
    account: AmazonAccount, clock: Clock, http: httpx.Client, scope: str = NOTIFICATIONS_SCOPE
) -> LwaAuth:
    """Tokens for grantless operations of `scope` with the account's app credentials (kept in
    this process: grantless calls are rare operator commands)."""
    return LwaAuth(account, clock, http, scope=scope)


class LwaAuth:
    """Access tokens for one Amazon account, shared by every thread (and, with the database store,
    every process). With `scope`, tokens are grantless (`client_credentials` for that scope)
    instead of the seller's (`refresh_token`)."""

    def __init__(
        self,
        account: AmazonAccount,
        clock: Clock,
        http: httpx.Client,
        *,
        store: TokenStore | None = None,
        refresh_margin: float = REFRESH_MARGIN_S,
        timeout: httpx.Timeout | None = None,
        retry_base: float = RETRY_BASE_S,
        retry_cap: float = RETRY_CAP_S,
        lease_s: float = REFRESH_LEASE_S,
        scope: str | None = None,
    ) -> None:
        self._account = account
        self._scope = scope
        # The store's key: a grantless token must never be mistaken for the seller's.
        self._key = account.id if scope is None else f"{account.id}#grantless"
        self._clock = clock
        self._http = http
        self._endpoint = check_endpoint(
            account.token_endpoint or LWA_TOKEN_ENDPOINT,
            allow_http=account.local_simulator,
            what=f"token_endpoint of Amazon account {account.id!r}",
        )
        self._store: TokenStore = store or MemoryTokenStore()
        self._margin = refresh_margin
        self._timeout = timeout or httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._lease_s = lease_s
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._fingerprint = credentials_fingerprint(account)

    def __repr__(self) -> str:
        scope = f", scope={self._scope!r}" if self._scope else ""
        return f"LwaAuth(account={self._account.id!r}, endpoint={self._endpoint!r}{scope})"

    def access_token(self) -> str:
        with self._lock:
            if self._token is not None and self._now() < self._refresh_at:
                return self._token
            return self._obtain(refused=None, force=False)

    def refresh(self, stale: str) -> str:
        with self._lock:
            if self._token is not None and self._token != stale and self._now() < self._refresh_at:
                return self._token
            return self._obtain(refused=stale, force=False)

    def recheck(self) -> str:
        """Ask LWA now, parked or not (the seller re-authorised); unparks the account on success."""
        with self._lock:
            return self._obtain(refused=self._token, force=True)

    def reset(self) -> None:
        """Forget the cached token and let the next call ask LWA at once (credentials were fixed)."""
        with self._lock:
            self._token = None
            self._refresh_at = 0.0
            self._store.allow_retry(self._key)

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _obtain(self, *, refused: str | None, force: bool) -> str:
        """A usable token from the store, or a new one from LWA. Caller holds the lock."""
        account_id = self._key
        give_up = self._now() + 2 * self._lease_s
        while True:
            now = self._now()
            state = self._store.load(account_id)
            if not force and state is not None:
                if state.usable(now, refused):
                    return self._adopt(state)
                if (
                    state.rejection is not None
                    and state.rejection.credentials == self._fingerprint
                    and state.retry_at is not None
                    and now < state.retry_at
                ):
                    raise self._parked(state, now)
            if self._store.claim_refresh(account_id, now, self._lease_s):
                # Another process may have stored a token between our read and our claim.
                state = self._store.load(account_id)
                if not force and state is not None and state.usable(now, refused):
                    self._store.release(account_id)
                    return self._adopt(state)
                return self._refresh_holding_lease(state, now)
            if now >= give_up:
                raise TransportError(
                    message=f"another process has been fetching the LWA token of account {account_id!r} "
                    f"for over {2 * self._lease_s:.0f}s",
                    operation=_OPERATION,
                )
            self._clock.sleep(_WAIT_STEP_S)

    def _adopt(self, state: TokenState) -> str:
        assert state.access_token is not None and state.refresh_at is not None
        self._token, self._refresh_at = state.access_token, state.refresh_at
        return state.access_token

    def _parked(self, state: TokenState, now: float) -> CredentialsRejected:
        assert state.rejection is not None and state.retry_at is not None
        return CredentialsRejected(
            state.rejection.code,
            state.rejection.message,
            state.rejection.status,
            operation=_OPERATION,
            retry_after=max(0.0, state.retry_at - now),
        )

    def _refresh_holding_lease(self, state: TokenState | None, now: float) -> str:
        account_id = self._key
        self._token = None
        try:
            token, expires_in = self._fetch()
        except CredentialsRejected as exc:
            same = (
                state is not None
                and state.rejection is not None
                and (state.rejection.credentials == self._fingerprint)
            )
            failures = (state.failures if state is not None and same else 0) + 1
            delay = min(self._retry_cap, self._retry_base * 2 ** (failures - 1))
            exc.retry_after = delay
            rejection = Rejection(exc.code, exc.message, exc.status, self._fingerprint)
            self._store.store_rejection(account_id, rejection, now, failures, now + delay)
            log.error(
                "lwa rejected the credentials of account=%s (%s); parked, next try in %.0fs",
                account_id,
                exc.code,
                delay,
                extra={"operation": _OPERATION, "account": account_id, "error_code": exc.code},
            )
            raise
        except BaseException:
            self._store.release(account_id)
            raise
        margin = min(self._margin, expires_in * 0.1)
        expires_at = self._now() + expires_in
        self._store.store_token(account_id, token, expires_at, expires_at - margin, now)
        if state is not None and state.rejection is not None:
            log.warning(
                "lwa accepted the credentials of account=%s again; unparked",
                account_id,
                extra={"operation": _OPERATION, "account": account_id},
            )
        self._token, self._refresh_at = token, expires_at - margin
        return token

    def _fetch(self) -> tuple[str, float]:
        """Ask LWA for a new token: (token, seconds it is valid). Caller holds the lease."""
        account = self._account
        if not (account.client_id and account.client_secret and (self._scope or account.refresh_token)):
            raise CredentialsRejected(
                "missing_credentials",
                f"Amazon account {account.id!r} has no client_id, client_secret or refresh_token configured: "
                "fill them in the channels file (from Seller Central app authorisation).",
                operation=_OPERATION,
            )
        if self._scope:
            form = grantless_form(account, self._scope)
        else:
            assert account.refresh_token
            form = {
                "grant_type": "refresh_token",
                "refresh_token": account.refresh_token.reveal(),
                "client_id": account.client_id.reveal(),
                "client_secret": account.client_secret.reveal(),
            }
        started = self._clock.monotonic()
        try:
            response = self._http.post(
                self._endpoint, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            log.warning(
                "lwa token request failed account=%s error=%s",
                account.id,
                type(exc).__name__,
                extra={"operation": _OPERATION, "account": account.id},
            )
            raise TransportError(
                message=f"could not reach Login with Amazon for account {account.id!r} "
                f"({type(exc).__name__})",
                operation=_OPERATION,
            ) from exc
        latency_ms = round((self._clock.monotonic() - started) * 1000)
        log.info(
            "lwa token refresh account=%s status=%s latency_ms=%s",
            account.id,
            response.status_code,
            latency_ms,
            extra={
                "operation": _OPERATION,
                "status": response.status_code,
                "latency_ms": latency_ms,
                "account": account.id,
            },
        )
        if response.status_code == 200:
            return self._parse(response)
        raise self._failure(response)

    def _parse(self, response: httpx.Response) -> tuple[str, float]:
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in") or _DEFAULT_EXPIRES_IN)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UnexpectedResponse(
                message="Login with Amazon answered 200 without a usable access_token",
                status=200,
                operation=_OPERATION,
            ) from None
        if not isinstance(token, str) or not token:
            raise UnexpectedResponse(
                message="Login with Amazon returned an empty access_token", status=200, operation=_OPERATION
            )
        return token, expires_in

    def _failure(self, response: httpx.Response) -> SpApiError:
        status = response.status_code
        try:
            body = response.json()
            error = str(body.get("error") or "") if isinstance(body, dict) else ""
        except ValueError:
            error = ""
        if error in _REJECTIONS:
            return credentials_rejected(
                error, self._account.id, status, response.headers.get("x-amzn-RequestId")
            )
        if status == 429:
            return QuotaExceeded(
                message="Login with Amazon is throttling token requests", status=status, operation=_OPERATION
            )
        if status >= 500:
            return ServerError(
                message=f"Login with Amazon failed with HTTP {status}", status=status, operation=_OPERATION
            )
        return SpApiError(
            error or "LwaError",
            f"Login with Amazon refused the token request for account {self._account.id!r} "
            f"(HTTP {status}{', ' + error if error else ''}); check the account's LWA credentials",
            status,
            operation=_OPERATION,
        )
