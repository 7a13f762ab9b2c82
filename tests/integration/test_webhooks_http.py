"""The webhook endpoint over HTTP: every rejection, convergence, and no personal data in logs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bridge.amazon.simulator.server import serve_in_thread
from bridge.app import create_app
from bridge.bootstrap import Bridge
from bridge.intake import DEFERRED, JOB_INTAKE
from bridge.settings import Settings
from bridge.store import AlertRecord, DeliveryRecord, JobRecord, OrderRecord, make_engine, read_session
from tests.conftest import LogOutput, apply_deferred
from tests.support import (
    fixture,
    generic_delivery,
    shopify_delivery,
    shopify_order,
    woo_delivery,
    woo_order,
)

SHOP = "/webhooks/shop-a"
WOO = "/webhooks/woo-main"
OWN = "/webhooks/own-shop"


def rows(db: Engine, model: type) -> int:
    with read_session(db) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def post(client: FlaskClient, url: str, delivery: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = delivery
    return client.post(url, data=body, headers=headers)


def test_shopify_order_is_accepted_stored_and_queued(client: FlaskClient, db: Engine) -> None:
    response = post(client, SHOP, shopify_delivery(shopify_order()))
    assert response.status_code == 200, response.json
    assert response.json == {"status": "accepted", "outcome": "created"}
    assert (rows(db, DeliveryRecord), rows(db, OrderRecord), rows(db, JobRecord)) == (1, 1, 1)


def test_replayed_delivery_is_acknowledged_as_duplicate(client: FlaskClient, db: Engine) -> None:
    delivery = shopify_delivery(shopify_order(), webhook_id="same-id")
    assert post(client, SHOP, delivery).json["status"] == "accepted"
    again = post(client, SHOP, delivery)
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert rows(db, DeliveryRecord) == 1


def test_rotated_secret_still_verifies(client: FlaskClient, bridge: Bridge) -> None:
    from dataclasses import replace

    from bridge.settings import Secret

    shop = bridge.config.channels["shop-a"]
    rotated = replace(shop, webhook_secrets=(Secret("brand-new-secret"), *shop.webhook_secrets))
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, "shop-a": rotated})
    assert post(client, SHOP, shopify_delivery(shopify_order(), secret="brand-new-secret")).status_code == 200
    assert post(client, SHOP, shopify_delivery(shopify_order(1002))).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b, h: (b, {**h, "X-Shopify-Hmac-Sha256": "AAAA"}), 401, "invalid_signature"),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != "X-Shopify-Hmac-Sha256"}),
            401,
            "invalid_signature",
        ),
        (lambda b, h: (b + b" ", h), 401, "invalid_signature"),
    ],
)
def test_bad_signatures_are_401(client: FlaskClient, db: Engine, mutate: Any, status: int, code: str) -> None:
    body, headers = mutate(*shopify_delivery(shopify_order()))
    response = client.post(SHOP, data=body, headers=headers)
    assert (response.status_code, response.json["error"]) == (status, code)
    assert rows(db, DeliveryRecord) == 0


def test_unknown_channel_is_404(client: FlaskClient) -> None:
    response = post(client, "/webhooks/nope", shopify_delivery(shopify_order()))
    assert response.status_code == 404 and "channels file" in response.json["message"]


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    body, headers = shopify_delivery(shopify_order())
    response = client.post(SHOP, data=body, headers={**headers, "Content-Type": "text/plain"})
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b'{"id": 1, "id": 2}', "duplicate_key"),
        (b"[" * 100 + b"]" * 100, "too_deep"),
        (b"\xff\xfe{}", "invalid_encoding"),
        (b'{"total_price": NaN}', "invalid_json"),
        (b'{"total_price": 1e400}', "invalid_json"),
        (b'{"id": ' + b"9" * 5000 + b"}", "invalid_json"),
        (b'{"note": "\\ud800"}', "invalid_encoding"),
    ],
)
def test_malformed_json_is_400(client: FlaskClient, body: bytes, code: str) -> None:
    response = post(client, SHOP, shopify_delivery(body))
    assert (response.status_code, response.json["error"]) == (400, code)


def test_schema_violations_are_parked_with_an_alert_and_answered_200(client: FlaskClient, db: Engine) -> None:
    """Shopify and WooCommerce disable a webhook that keeps failing; the merchant never sees our
    4xx. An authentic delivery our schema refuses is stored, parked as an alert, answered 200."""
    order = shopify_order()
    order["line_items"][0]["quantity"] = "many"
    order["currency"] = 12
    del order["created_at"]
    response = post(client, SHOP, shopify_delivery(order))
    assert response.status_code == 200
    assert response.json["outcome"] == "schema_refused"
    assert "Canary" not in response.get_data(as_text=True)
    assert rows(db, DeliveryRecord) == 1 and rows(db, OrderRecord) == 0
    with read_session(db) as session:
        alert = session.execute(select(AlertRecord)).scalars().one()
    for path in ("$.line_items[0].quantity", "$.currency", "$.created_at"):
        assert path in alert.message
    assert "Canary" not in alert.message and "many" not in alert.message

    broken = woo_order()
    broken["currency"] = "dollars"
    response = post(client, WOO, woo_delivery(broken))
    assert (response.status_code, response.json["outcome"]) == (200, "schema_refused")
    with read_session(db) as session:
        keys = set(session.execute(select(AlertRecord.key)).scalars())
    assert len(keys) == 2 and any("woo-main" in key for key in keys)


def test_the_same_schema_problem_again_counts_on_one_alert(client: FlaskClient, db: Engine) -> None:
    for order_id in (1, 2, 3):
        order = shopify_order(order_id)
        order["currency"] = "usd"
        assert post(client, SHOP, shopify_delivery(order)).status_code == 200
    with read_session(db) as session:
        alert = session.execute(select(AlertRecord)).scalars().one()
    assert alert.occurrences == 3


def test_generic_schema_violations_stay_422_with_paths(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    body = fixture("generic/order_upsert.json")
    body["order"]["currency"] = "usd"
    response = post(client, "/webhooks/own-shop", generic_delivery(body, bridge.clock.now()))
    assert response.status_code == 422
    assert {p["path"] for p in response.json["problems"]} == {"$.order.currency"}
    assert rows(db, DeliveryRecord) == 0


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    big = shopify_order()
    big["note"] = "x" * 300_000
    response = post(client, SHOP, shopify_delivery(big))
    assert response.status_code == 413


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    server = serve_in_thread(app)
    yield server.base_url
    server.stop()


def test_chunked_body_over_the_limit_is_413_over_real_http(served: str) -> None:
    body, headers = shopify_delivery(shopify_order())

    def chunks() -> Iterator[bytes]:
        yield body[:-1]
        for _ in range(40):
            yield b" " * 8192
        yield body[-1:]

    response = httpx.post(served + SHOP, content=chunks(), headers=headers, timeout=10)
    assert response.status_code == 413


def test_chunked_body_within_the_limit_is_accepted_over_real_http(served: str) -> None:
    body, headers = shopify_delivery(shopify_order())
    response = httpx.post(served + SHOP, content=iter([body[:100], body[100:]]), headers=headers, timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "accepted"


def test_unknown_topic_is_acknowledged_and_ignored(client: FlaskClient, db: Engine) -> None:
    response = post(client, SHOP, shopify_delivery({"id": 1, "title": "A product"}, topic="products/update"))
    assert response.status_code == 200 and response.json["outcome"] == "ignored"
    assert rows(db, OrderRecord) == 0


def test_shopify_privacy_topics_are_accepted(client: FlaskClient, db: Engine) -> None:
    for topic, name in (
        ("customers/redact", "customers_redact"),
        ("shop/redact", "shop_redact"),
        ("customers/data_request", "customers_data_request"),
    ):
        response = post(client, SHOP, shopify_delivery(fixture(f"shopify/{name}.json"), topic=topic))
        assert response.status_code == 200, (topic, response.json)
    assert rows(db, JobRecord) == 3
    with read_session(db) as session:
        bodies = list(session.execute(select(DeliveryRecord.body)).scalars())
    kept = [json.loads(body) for body in bodies]
    assert all(
        entry["redacted"] is True and set(entry) == {"redacted", "scope", "orders"} for entry in kept
    ), "a privacy request is kept without the customer it names: its kind and order ids only"


def test_shopify_cancellation_before_create_wins(client: FlaskClient, db: Engine) -> None:
    cancelled = shopify_order(updated_at="2026-11-01T10:05:00-05:00")
    cancelled["cancelled_at"] = "2026-11-01T10:05:00-05:00"
    cancelled["cancel_reason"] = "customer"
    assert post(client, SHOP, shopify_delivery(cancelled, topic="orders/cancelled")).status_code == 200
    assert post(client, SHOP, shopify_delivery(shopify_order())).json["outcome"] == "stale"
    with read_session(db) as session:
        assert session.execute(select(OrderRecord.state)).scalar_one() == "cancelled"
    assert rows(db, JobRecord) == 0


def test_woocommerce_created_and_updated_converge_and_delete_cancels(client: FlaskClient, db: Engine) -> None:
    assert post(client, WOO, woo_delivery(woo_order())).json["outcome"] == "created"
    assert post(client, WOO, woo_delivery(woo_order(), topic="order.updated")).json["outcome"] == "unchanged"
    assert post(client, WOO, woo_delivery({"id": 700}, topic="order.deleted")).json["outcome"] == "cancelled"
    assert rows(db, OrderRecord) == 1


def test_woocommerce_ping_is_answered_without_storing(client: FlaskClient, db: Engine) -> None:
    response = client.post(
        WOO, data=b"webhook_id=12", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    assert rows(db, DeliveryRecord) == 0


def test_generic_channel_accepts_standard_webhooks(client: FlaskClient, bridge: Bridge, db: Engine) -> None:
    body = fixture("generic/order_upsert.json")
    response = post(client, OWN, generic_delivery(body, bridge.clock.now()))
    assert response.status_code == 200 and response.json["outcome"] == "created"


def test_generic_channel_rejects_a_stale_timestamp(client: FlaskClient, bridge: Bridge) -> None:
    delivery = generic_delivery(fixture("generic/order_upsert.json"), bridge.clock.now())
    bridge.clock.advance(301)  # type: ignore[attr-defined]
    assert post(client, OWN, delivery).status_code == 401


def test_database_unavailable_is_503_with_retry_after(bridge: Bridge, tmp_path: Any) -> None:
    broken = Bridge(
        settings=Settings(),
        config=bridge.config,
        engine=make_engine(f"sqlite:///{tmp_path}/missing-dir/x.sqlite3"),
        clock=bridge.clock,
    )
    client = create_app(broken).test_client()
    response = post(client, SHOP, shopify_delivery(shopify_order()))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert client.get("/healthz").status_code == 503


def test_healthz_reports_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "ok"


def test_concurrent_duplicate_storm_over_http_stores_one_order(bridge: Bridge, db: Engine) -> None:
    # Dedupe under concurrency, not the admission gate: a pause of the test process (a full
    # collection of its heap) may outlast the gate's 0.3 s wait, so give waits room here.
    bridge.settings = replace(bridge.settings, webhook_queue_wait_s=10.0)
    app = create_app(bridge)
    deliveries = [shopify_delivery(shopify_order(4242), webhook_id=f"w-{n % 4}") for n in range(40)]
    statuses: list[int] = []
    lock = threading.Lock()

    def send(batch: list[tuple[bytes, dict[str, str]]]) -> None:
        client = app.test_client()
        for body, headers in batch:
            status = client.post(SHOP, data=body, headers=headers).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=send, args=(deliveries[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 40
    # Handlers running side by side may defer their deliveries (`BRIDGE_WEBHOOK_DEFER_AT`): the
    # intake jobs apply them, and the storm still ends as one order with one submit job.
    apply_deferred(bridge)
    with read_session(db) as session:
        kinds = list(session.execute(select(JobRecord.kind).where(JobRecord.kind != JOB_INTAKE)).scalars())
        outcomes = set(session.execute(select(DeliveryRecord.outcome)).scalars())
    assert (rows(db, DeliveryRecord), rows(db, OrderRecord), kinds) == (4, 1, ["submit"])
    assert DEFERRED not in outcomes


def test_no_personal_data_reaches_logs_or_error_bodies(
    client: FlaskClient, bridge: Bridge, caplog: pytest.LogCaptureFixture, log_output: LogOutput
) -> None:
    canaries = ["Zebulon Quixotic", "zq.canary@example.org", "42 Canary Wharf Lane", "+1 555 0100 777"]
    caplog.set_level(logging.DEBUG)
    bodies = []
    ok = shopify_order(9001, name=canaries[0], email=canaries[1])
    bodies.append(post(client, SHOP, shopify_delivery(ok)).get_data(as_text=True))
    bad = shopify_order(9002, name=canaries[0], email=canaries[1])
    bad["line_items"][0]["quantity"] = canaries[1]
    bad["shipping_address"]["country_code"] = canaries[0]
    bodies.append(post(client, SHOP, shopify_delivery(bad)).get_data(as_text=True))
    bodies.append(post(client, SHOP, shopify_delivery(ok, secret="wrong-secret")).get_data(as_text=True))
    bodies.append(post(client, WOO, woo_delivery(woo_order(email=canaries[1]))).get_data(as_text=True))
    text = caplog.text + "\n".join(bodies)
    for canary in canaries:
        assert canary not in text
    log_output.assert_free_of(*canaries)
    assert json.loads(bodies[1])["outcome"] == "schema_refused"
    with read_session(bridge.engine) as session:
        messages = " ".join(session.execute(select(AlertRecord.message)).scalars())
    assert messages and not any(canary in messages for canary in canaries)


def test_a_refused_update_of_a_known_order_is_linked_to_it_and_changes_nothing(
    client: FlaskClient, db: Engine
) -> None:
    assert post(client, SHOP, shopify_delivery(shopify_order(4242))).json["outcome"] == "created"
    broken = shopify_order(4242, updated_at="2026-11-02T10:00:00-05:00")
    broken["currency"] = "usd"
    assert (
        post(client, SHOP, shopify_delivery(broken, topic="orders/updated")).json["outcome"]
        == "schema_refused"
    )
    with read_session(db) as session:
        order = session.execute(select(OrderRecord)).scalars().one()
        alert = session.execute(select(AlertRecord)).scalars().one()
        linked = session.execute(select(DeliveryRecord.order_id)).scalars().all()
    assert alert.order_id == order.id and "#4242" in alert.message
    assert linked == [order.id, order.id]
    assert order.data["currency"] == "USD", "the refused delivery was not applied"
