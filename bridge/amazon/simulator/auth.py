"""The simulator's Login with Amazon: refresh-token and grantless grants, access-token checks.

A grantless token (`client_credentials` with a scope) authenticates as `GRANTLESS_PREFIX + scope`
instead of a seller, so an operation can tell which kind of token called it.

Access tokens expire on the *rate* (real-time) clock, like rate limits: both are protocol
concerns of the client, and a 60x demo must not force a token refresh every minute. Errors on
the token endpoint use LWA's OAuth shape (`error`, `error_description`), not SP-API's envelope.

A revoked refresh token gets `invalid_grant` until the seller re-authorises (`restore`); by
default the access tokens issued from it stop working at once too, as Amazon's do (403
"The access token you provided is revoked, malformed or invalid.").
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.clock import Clock

from .config import Credentials
from .envelope import TOKEN_EXPIRED, TOKEN_INVALID, TOKEN_MISSING, unauthorized

GRANTLESS_PREFIX = "grantless:"
GRANTLESS_SCOPES = frozenset({"sellingpartnerapi::notifications"})


@dataclass
class _Issued:
    refresh_token: str
    expires_at: float
    revoked: bool = False


class LwaAuthority:
    def __init__(
        self, credentials: Credentials, clock: Clock, *, revoke_access_with_grant: bool = True
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        #: Whether revoking a refresh token also revokes the access tokens issued from it.
        self.revoke_access_with_grant = revoke_access_with_grant
        self._revoked: set[str] = set()
        self._issued: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer a token request: (HTTP status, JSON body)."""
        creds = self._credentials
        grant_type = form.get("grant_type", "")
        if not grant_type or not form.get("client_id"):
            return 400, _oauth_error("invalid_request", "The request is missing a required parameter.")
        if grant_type not in ("refresh_token", "client_credentials"):
            return 400, _oauth_error(
                "unsupported_grant_type", "The authorization grant type is not supported."
            )
        if form.get("client_id") != creds.client_id or form.get("client_secret") != creds.client_secret:
            return 401, _oauth_error("invalid_client", "Client authentication failed")
        if grant_type == "client_credentials":
            scope = form.get("scope", "")
            if scope not in GRANTLESS_SCOPES:
                return 400, _oauth_error("invalid_scope", "The requested scope is invalid or unknown.")
            token, ttl = self._issue(GRANTLESS_PREFIX + scope)
            return 200, {"access_token": token, "scope": scope, "token_type": "bearer", "expires_in": ttl}
        refresh = form.get("refresh_token", "")
        with self._lock:
            if refresh not in creds.refresh_tokens or refresh in self._revoked:
                return 400, _oauth_error(
                    "invalid_grant", "The request has an invalid grant parameter : refresh_token"
                )
        token, ttl = self._issue(refresh)
        body = {"access_token": token, "refresh_token": refresh, "token_type": "bearer", "expires_in": ttl}
        return 200, body

    def _issue(self, key: str) -> tuple[str, int]:
        token = "Atza|" + secrets.token_urlsafe(32)
        ttl = self._credentials.access_token_ttl
        with self._lock:
            self._issued[token] = _Issued(key, self._clock.monotonic() + ttl)
        return token, ttl

    def authenticate(self, access_token: str | None) -> str:
        """Return the seller key (its refresh token, or `GRANTLESS_PREFIX + scope` for a grantless
        token) for a valid token; raise a 403 ApiError otherwise."""
        if not access_token:
            raise unauthorized(TOKEN_MISSING)
        with self._lock:
            issued = self._issued.get(access_token)
            grant_revoked = (
                self.revoke_access_with_grant
                and issued is not None
                and (issued.refresh_token in self._revoked)
            )
            if issued is None or issued.revoked or grant_revoked:
                raise unauthorized(TOKEN_INVALID)
            if self._clock.monotonic() >= issued.expires_at:
                raise unauthorized(TOKEN_EXPIRED)
            return issued.refresh_token

    def revoke(self, refresh_token: str | None = None) -> None:
        """Revoke one refresh token (or all): the next grant answers `invalid_grant`."""
        with self._lock:
            if refresh_token is None:
                self._revoked.update(self._credentials.refresh_tokens)
            else:
                self._revoked.add(refresh_token)

    def restore(self) -> None:
        """The seller re-authorised: revoked refresh tokens work again (access tokens revoked with
        them stay revoked; the client must fetch new ones)."""
        with self._lock:
            for issued in self._issued.values():
                if issued.refresh_token in self._revoked and self.revoke_access_with_grant:
                    issued.revoked = True
            self._revoked.clear()

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far is revoked (new grants still work): what a client sees
        when Amazon invalidates tokens before they expire."""
        with self._lock:
            for issued in self._issued.values():
                issued.revoked = True

    def expire_all(self) -> None:
        """Every access token issued so far is expired from now on (new grants still work)."""
        with self._lock:
            now = self._clock.monotonic()
            for issued in self._issued.values():
                issued.expires_at = min(issued.expires_at, now)


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}
