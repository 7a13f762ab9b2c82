"""The grantless LWA token (Notifications API destinations): the app's credentials and a scope."""

from __future__ import annotations

import httpx
import pytest

from bridge.amazon.auth import NOTIFICATIONS_SCOPE, LwaAuth, grantless_auth
from bridge.amazon.errors import CredentialsRejected
from bridge.channels import AmazonAccount
from bridge.clock import ManualClock
from bridge.settings import Secret


def lwa_recording(seen: list[dict[str, str]]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(httpx.QueryParams(request.content.decode())))
        return httpx.Response(200, json={"access_token": f"Atza|{len(seen)}", "expires_in": 3600})

    return httpx.Client(transport=httpx.MockTransport(answer))


def account(refresh_token: str = "seller-refresh", client_secret: str = "app-secret") -> AmazonAccount:
    return AmazonAccount(
        id="main",
        region="na",
        client_id=Secret("app-id"),
        client_secret=Secret(client_secret),
        refresh_token=Secret(refresh_token),
    )


def test_the_grantless_form_has_the_scope_and_never_the_sellers_refresh_token() -> None:
    seen: list[dict[str, str]] = []
    auth = grantless_auth(account(), ManualClock(), lwa_recording(seen))
    assert auth.access_token() == auth.access_token() == "Atza|1"  # cached like a seller token
    assert seen == [
        {
            "grant_type": "client_credentials",
            "scope": NOTIFICATIONS_SCOPE,
            "client_id": "app-id",
            "client_secret": "app-secret",
        }
    ]
    assert "app-secret" not in repr(auth) and NOTIFICATIONS_SCOPE in repr(auth)


def test_a_grantless_token_needs_no_refresh_token_but_the_sellers_does() -> None:
    seen: list[dict[str, str]] = []
    clock = ManualClock()
    assert grantless_auth(account(refresh_token=""), clock, lwa_recording(seen)).access_token() == "Atza|1"
    with pytest.raises(CredentialsRejected):
        LwaAuth(account(refresh_token=""), clock, lwa_recording(seen)).access_token()
    with pytest.raises(CredentialsRejected):
        grantless_auth(account(client_secret=""), clock, lwa_recording(seen)).access_token()
    assert len(seen) == 1


def test_seller_tokens_still_use_the_refresh_token_grant() -> None:
    seen: list[dict[str, str]] = []
    LwaAuth(account(), ManualClock(), lwa_recording(seen)).access_token()
    assert seen[0]["grant_type"] == "refresh_token" and "scope" not in seen[0]
