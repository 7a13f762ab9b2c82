"""Login with Amazon (LWA): turn a seller's refresh token into short-lived SP-API access tokens.

What a caller may rely on:

- `access_token()` returns a cached token until a few minutes before it expires (time from the
  injected Clock), then fetches a new one. Only one thread refreshes at a time; threads arriving
  meanwhile wait for it and reuse its token, so a thundering herd makes one LWA request.
- `refresh(stale)` forces a new token after Amazon said the token `stale` has expired. If another
  thread already replaced it, the replacement is returned without a second request.
- `invalid_grant`, `invalid_client` and `unauthorized_client` raise `CredentialsRejected` and are
  remembered: later calls raise again at once without touching the token endpoint, until `reset()`
  (an operator fixed the credentials) is called.
- Token endpoint outages raise `TransportError` / `ServerError` / `QuotaExceeded`, never ambiguous
  (nothing was sent to the SP-API yet).
- Tokens, refresh tokens and client secrets never appear in logs, reprs or exception text.
- `grantless_auth()` is the same cache for *grantless* operations (the Notifications API's
  destinations): the token comes from the app's own credentials (`client_credentials` with a
  scope), not from a seller's refresh token, so it must be a separate `LwaAuth`.
"""

from __future__ import annotations

import copy
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

LWA_TOKEN_ENDPOINT = "https://api.amazon.com/auth/o2/token"  # noqa: S105 - a URL, not a secret
#: The scope of grantless Notifications API operations (createDestination, getDestinations, ...).
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"
REFRESH_MARGIN_S = 300.0
_DEFAULT_EXPIRES_IN = 3600.0
_REJECTIONS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
_OPERATION = "lwa.token"

log = logging.getLogger("bridge.amazon")


class AccessTokens(Protocol):
    """What the SP-API client needs from an authenticator."""

    def access_token(self) -> str: ...

    def refresh(self, stale: str) -> str: ...

    def reset(self) -> None: ...


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
    """Tokens for grantless operations of `scope` with the account's app credentials."""
    return LwaAuth(account, clock, http, scope=scope)


class LwaAuth:
    """Access tokens for one Amazon account, shared by every thread of the process.

    With `scope`, tokens are grantless (`client_credentials` for that scope) instead of the
    seller's (`refresh_token`)."""

    def __init__(
        self,
        account: AmazonAccount,
        clock: Clock,
        http: httpx.Client,
        *,
        refresh_margin: float = REFRESH_MARGIN_S,
        timeout: httpx.Timeout | None = None,
        scope: str | None = None,
    ) -> None:
        self._account = account
        self._scope = scope
        self._clock = clock
        self._http = http
        self._endpoint = check_endpoint(
            account.token_endpoint or LWA_TOKEN_ENDPOINT,
            allow_http=account.local_simulator,
            what=f"token_endpoint of Amazon account {account.id!r}",
        )
        self._margin = refresh_margin
        self._timeout = timeout or httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._rejected: CredentialsRejected | None = None

    def __repr__(self) -> str:
        grant = f", scope={self._scope!r}" if self._scope else ""
        return f"LwaAuth(account={self._account.id!r}, endpoint={self._endpoint!r}{grant})"

    def access_token(self) -> str:
        with self._lock:
            self._raise_if_rejected()
            if self._token is not None and self._clock.monotonic() < self._refresh_at:
                return self._token
            return self._fetch()

    def refresh(self, stale: str) -> str:
        with self._lock:
            self._raise_if_rejected()
            if (
                self._token is not None
                and self._token != stale
                and self._clock.monotonic() < self._refresh_at
            ):
                return self._token
            return self._fetch()

    def reset(self) -> None:
        """Forget a remembered rejection and the cached token (after credentials were fixed)."""
        with self._lock:
            self._rejected = None
            self._token = None
            self._refresh_at = 0.0

    @property
    def rejected(self) -> CredentialsRejected | None:
        return self._rejected

    def _raise_if_rejected(self) -> None:
        if self._rejected is not None:
            # A fresh copy per raise: one exception object raised in many threads shares a traceback.
            raise copy.copy(self._rejected)

    def _fetch(self) -> str:
        """Ask LWA for a new token. Caller holds the lock."""
        account = self._account
        needed = account.client_id and account.client_secret and (self._scope or account.refresh_token)
        if not needed:
            self._rejected = CredentialsRejected(
                "missing_credentials",
                f"Amazon account {account.id!r} has no client_id, client_secret or refresh_token configured: "
                "fill them in the channels file (from Seller Central app authorisation).",
                operation=_OPERATION,
            )
            raise copy.copy(self._rejected)
        if self._scope:
            form = grantless_form(account, self._scope)
        else:
            assert account.client_id and account.client_secret and account.refresh_token
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
            return self._store(response)
        raise self._failure(response)

    def _store(self, response: httpx.Response) -> str:
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
        margin = min(self._margin, expires_in * 0.1)
        self._token = token
        self._refresh_at = self._clock.monotonic() + expires_in - margin
        return token

    def _failure(self, response: httpx.Response) -> SpApiError:
        status = response.status_code
        try:
            body = response.json()
            error = str(body.get("error") or "") if isinstance(body, dict) else ""
        except ValueError:
            error = ""
        if error in _REJECTIONS:
            self._rejected = credentials_rejected(error, self._account.id, status)
            return copy.copy(self._rejected)
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
