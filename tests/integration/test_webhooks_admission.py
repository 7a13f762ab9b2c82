"""Bounded webhook admission through the real app: refused early with 503, nothing stored."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bridge.app import create_app
from bridge.bootstrap import Bridge
from bridge.metrics import catalog
from bridge.metrics.events import BUFFER
from bridge.store import DeliveryRecord, JobRecord, OrderRecord, read_session
from bridge.web.admission import Admission, mark_queued
from tests.support import shopify_delivery, shopify_order

SHOP = "/webhooks/shop-a"


def rows(db: Engine) -> tuple[int, int, int]:
    with read_session(db) as session:
        return tuple(  # type: ignore[return-value]
            int(session.execute(select(func.count()).select_from(model)).scalar_one())
            for model in (DeliveryRecord, OrderRecord, JobRecord)
        )


@pytest.fixture
def gated(bridge: Bridge) -> tuple[FlaskClient, Admission]:
    bridge.settings = replace(
        bridge.settings,
        webhook_concurrency=1,
        webhook_queue=0,
        webhook_queue_wait_s=0.0,
        webhook_retry_after_s=7,
    )
    app = create_app(bridge)
    app.config["TESTING"] = True
    gate: Admission = app.extensions["webhook_admission"]
    return app.test_client(), gate


def post(client: FlaskClient, delivery: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = delivery
    return client.post(SHOP, data=body, headers=headers)


def test_saturated_process_answers_503_with_retry_after_and_stores_nothing(
    gated: tuple[FlaskClient, Admission], db: Engine
) -> None:
    client, gate = gated
    assert gate.enter()  # another request holds the only handler slot
    delivery = shopify_delivery(shopify_order(), webhook_id="busy-1")
    refused = post(client, delivery)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "7"
    assert refused.json["error"] == "overloaded"
    assert rows(db) == (0, 0, 0)
    gate.leave()
    # The storefront's retry of the same delivery is then stored once, as a first delivery.
    accepted = post(client, delivery)
    assert accepted.status_code == 200 and accepted.json["status"] == "accepted"
    assert rows(db) == (1, 1, 1)
    assert gate.active == 0


def test_refusal_is_decided_before_the_signature_is_checked(
    gated: tuple[FlaskClient, Admission], db: Engine
) -> None:
    client, gate = gated
    body, headers = shopify_delivery(shopify_order())
    assert gate.enter()
    try:
        answer = client.post(SHOP, data=body, headers={**headers, "X-Shopify-Hmac-Sha256": "AAAA"})
    finally:
        gate.leave()
    assert answer.status_code == 503  # not 401: nothing of the delivery was looked at
    assert rows(db) == (0, 0, 0)


def test_refusals_are_counted_per_configured_channel(gated: tuple[FlaskClient, Admission]) -> None:
    client, gate = gated
    assert gate.enter()
    try:
        post(client, shopify_delivery(shopify_order()))
        client.post("/webhooks/no-such-channel", data=b"{}")
    finally:
        gate.leave()
    counts = BUFFER.take().sums
    assert counts[(catalog.WEBHOOKS.name, (("channel", "shop-a"), ("outcome", "overloaded")))] == 1
    assert counts[(catalog.WEBHOOKS.name, (("channel", "unknown"), ("outcome", "overloaded")))] == 1


def test_other_endpoints_are_not_gated(gated: tuple[FlaskClient, Admission]) -> None:
    client, gate = gated
    assert gate.enter()
    try:
        assert client.get("/healthz").status_code == 200
    finally:
        gate.leave()


def test_a_failing_handler_frees_its_slot(gated: tuple[FlaskClient, Admission], db: Engine) -> None:
    client, gate = gated
    body, headers = shopify_delivery(shopify_order())
    assert post(client, (b"{not json", headers)).status_code in (400, 401)
    assert post(client, (body, headers)).status_code == 200
    assert gate.active == 0


def test_a_request_that_already_waited_too_long_for_a_thread_is_refused_unread(
    bridge: Bridge, db: Engine
) -> None:
    """The server's own queue (gunicorn's thread pool, reported by `QueueTimedWorker`) counts
    against the same wait bound: such a request is answered 503 at once and nothing is stored."""
    bridge.settings = replace(
        bridge.settings, webhook_concurrency=4, webhook_queue=8, webhook_queue_wait_s=0.5
    )
    app = create_app(bridge)
    client = app.test_client()
    delivery = shopify_delivery(shopify_order(), webhook_id="late-1")
    mark_queued(time.monotonic() - 2.0)  # this thread's request waited 2 s for a thread
    try:
        late = post(client, delivery)
    finally:
        mark_queued(None)
    assert late.status_code == 503 and late.headers["Retry-After"] == "5"
    assert rows(db) == (0, 0, 0)
    assert app.extensions["webhook_admission"].congested
    mark_queued(time.monotonic() - 0.1)  # a short wait is fine
    try:
        assert post(client, delivery).status_code == 200
    finally:
        mark_queued(None)
    assert rows(db) == (1, 1, 1)
