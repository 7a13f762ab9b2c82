"""Every surface that checks a secret compares it in constant time and never logs it: the
/metrics token, the Amazon notifications token, the webhook secrets (Shopify, WooCommerce,
generic); the Shopify fulfillment service callback's is in
test_shopify_fulfillment_service.py. Each test spies on
`hmac.compare_digest` (the comparison must go through it) and scans the logs (text and JSON
formats) and the answer for the secret, after a right and a wrong attempt."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.bootstrap import Bridge
from bridge.settings import Secret
from bridge.web.auth import bearer_matches, secret_matches
from tests.conftest import TEST_ENV, LogOutput
from tests.support import generic_delivery, shopify_delivery, shopify_order, woo_delivery, woo_order

METRICS_TOKEN = "metrics-token-3d7be1f0c2"
RELAY_TOKEN = "relay-token-9a1c44e5b8"


@pytest.fixture
def compares(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of `hmac.compare_digest` (the constant-time comparison), and checks that both
    sides always have the same length: `compare_digest` returns early on a length difference, so
    comparing a guess with the secret itself would tell the secret's length."""
    calls: list[int] = []
    real: Callable[[Any, Any], bool] = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        assert len(a) == len(b), "compared values of different lengths (the length leaks)"
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


@pytest.fixture
def tokens(bridge: Bridge) -> Bridge:
    bridge.settings = type(bridge.settings)(
        max_body_bytes=256 * 1024,
        metrics_flush_s=0,
        metrics_cache_s=0,
        metrics_token=Secret(METRICS_TOKEN),
        notifications_token=Secret(RELAY_TOKEN),
    )
    return bridge


def no_secret_anywhere(
    secret: str, caplog: pytest.LogCaptureFixture, log_output: LogOutput, *answers: Any
) -> None:
    assert secret not in caplog.text
    assert secret not in log_output.text
    for answer in answers:
        assert secret not in answer.get_data(as_text=True)


@pytest.mark.parametrize("guess", ["wrong", METRICS_TOKEN[:-1], METRICS_TOKEN + "x", ""])
def test_the_metrics_token_is_compared_in_constant_time_and_never_logged(
    client: FlaskClient,
    tokens: Bridge,
    compares: list[int],
    caplog: pytest.LogCaptureFixture,
    log_output: LogOutput,
    guess: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {guess}"})
    assert wrong.status_code == 401
    right = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200
    assert compares, "compared with hmac.compare_digest"
    no_secret_anywhere(METRICS_TOKEN, caplog, log_output, wrong, right)


def test_the_notifications_token_is_compared_in_constant_time_and_never_logged(
    client: FlaskClient,
    tokens: Bridge,
    compares: list[int],
    caplog: pytest.LogCaptureFixture,
    log_output: LogOutput,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = "/notifications/amazon"
    body = json.dumps({"NotificationType": "FULFILLMENT_ORDER_STATUS"})
    wrong = client.post(url, data=body, headers={"Authorization": f"Bearer {RELAY_TOKEN[:-2]}"})
    assert wrong.status_code == 401
    assert compares, "compared with hmac.compare_digest"
    compares.clear()
    right = client.post(
        url, data=body, headers={"Authorization": f"Bearer {RELAY_TOKEN}", "Content-Type": "application/json"}
    )
    assert right.status_code < 500 and right.status_code != 401
    assert compares
    no_secret_anywhere(RELAY_TOKEN, caplog, log_output, wrong, right)


@pytest.mark.parametrize(
    ("url", "secret", "make"),
    [
        ("/webhooks/shop-a", "SHOP_A_WEBHOOK_SECRET", "shopify"),
        ("/webhooks/woo-main", "WOO_WEBHOOK_SECRET", "woo"),
        ("/webhooks/own-shop", "OWN_SHOP_SECRET", "generic"),
    ],
)
def test_webhook_secrets_are_compared_in_constant_time_and_never_logged(
    client: FlaskClient,
    bridge: Bridge,
    compares: list[int],
    caplog: pytest.LogCaptureFixture,
    log_output: LogOutput,
    url: str,
    secret: str,
    make: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    if make == "shopify":
        body, headers = shopify_delivery(shopify_order())
    elif make == "woo":
        body, headers = woo_delivery(woo_order())
    else:
        from tests.support import fixture

        body, headers = generic_delivery(fixture("generic/order_upsert.json"), bridge.clock.now())
    tampered = body.replace(b"}", b" }", 1)
    wrong = client.post(url, data=tampered, headers=headers)
    assert wrong.status_code == 401
    assert compares, "compared with hmac.compare_digest"
    right = client.post(url, data=body, headers=headers)
    assert right.status_code == 200
    no_secret_anywhere(TEST_ENV[secret], caplog, log_output, wrong, right)


def test_secret_matches_takes_any_of_several_and_nothing_when_unset() -> None:
    old, new = Secret("old-secret"), Secret("new-secret")
    assert secret_matches("new-secret", [old, new]) and secret_matches("old-secret", [old, new])
    assert not secret_matches("other", [old, new])
    assert not secret_matches("", Secret(""))
    assert not secret_matches(None, old)
    assert not secret_matches("old-secret", None)
    assert bearer_matches("Bearer old-secret", old) and bearer_matches("bearer  old-secret ", old)
    assert not bearer_matches("Basic old-secret", old)
