"""Retention that really forgets: by age, in every state, with or without an order; a redacted
order stays redacted; a customer data request is an alert and an export of what is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bridge import jobs
from bridge.bootstrap import Bridge
from bridge.cli import main
from bridge.orders import OrderState
from bridge.runtime import HANDLERS
from bridge.scheduler import JOB_PURGE
from bridge.store import (
    REDACTED_BODY,
    AlertRecord,
    DeliveryRecord,
    OrderRecord,
    read_session,
    write_session,
)
from bridge.worker import Worker
from tests.support import fixture, shopify_delivery, shopify_order, woo_delivery, woo_order

SHOP = "/webhooks/shop-a"
WOO = "/webhooks/woo-main"
DAY = 86400.0
EMAIL = "retention.canary@example.com"


def post(client: FlaskClient, url: str, delivery: tuple[bytes, dict[str, str]]) -> dict:
    body, headers = delivery
    response = client.post(url, data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.json or {})


def run_purge(bridge: Bridge, days: int = 30) -> None:
    with write_session(bridge.engine) as session:
        jobs.enqueue(session, JOB_PURGE, payload={"retention_days": days})
    assert Worker(bridge, {JOB_PURGE: HANDLERS[JOB_PURGE]}).drain() == 1


def order_row(db: Engine, external_id: str, channel: str = "shop-a") -> OrderRecord:
    with read_session(db) as session:
        return (
            session.execute(
                select(OrderRecord).where(
                    OrderRecord.channel_id == channel, OrderRecord.external_id == external_id
                )
            )
            .scalars()
            .one()
        )


def bodies(db: Engine) -> list[bytes]:
    with read_session(db) as session:
        return list(session.execute(select(DeliveryRecord.body)).scalars())


@pytest.mark.parametrize("state", list(OrderState))
def test_an_order_idle_past_retention_is_purged_whatever_its_state(
    client: FlaskClient, bridge: Bridge, db: Engine, state: OrderState
) -> None:
    post(client, SHOP, shopify_delivery(shopify_order(5001, email=EMAIL)))
    with write_session(db) as session:
        session.execute(update(OrderRecord).values(state=state.value))
    bridge.clock.advance(29 * DAY)  # type: ignore[attr-defined]
    run_purge(bridge)
    assert EMAIL in json.dumps(order_row(db, "5001").data), "not yet: the order is younger than retention"

    bridge.clock.advance(2 * DAY)  # type: ignore[attr-defined]
    run_purge(bridge)
    row = order_row(db, "5001")
    assert row.pii_purged_at is not None and row.state == state.value
    assert EMAIL not in json.dumps(row.data) and row.data["destination"] is None
    assert row.data["lines"], "what reconciliation needs stays"
    assert bodies(db) == [REDACTED_BODY]


def test_delivery_bodies_without_an_order_are_purged_by_age(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    draft = woo_order(801, status="checkout-draft", email=EMAIL)
    assert post(client, WOO, woo_delivery(draft))["outcome"] == "ignored"
    other = shopify_order(5002, email=EMAIL)
    assert post(client, SHOP, shopify_delivery(other, topic="app/uninstalled"))["outcome"] == "ignored"
    refused = shopify_order(5003, email=EMAIL)
    refused["currency"] = "usd"
    assert post(client, SHOP, shopify_delivery(refused))["outcome"] == "schema_refused"
    assert all(EMAIL.encode() in body for body in bodies(db))

    bridge.clock.advance(31 * DAY)  # type: ignore[attr-defined]
    run_purge(bridge)
    assert bodies(db) == [REDACTED_BODY] * 3


def test_a_delivery_after_the_purge_is_stored_scrubbed_and_never_restores_personal_data(
    client: FlaskClient, bridge: Bridge, db: Engine
) -> None:
    post(client, SHOP, shopify_delivery(shopify_order(5004, email=EMAIL)))
    bridge.clock.advance(31 * DAY)  # type: ignore[attr-defined]
    run_purge(bridge)
    assert order_row(db, "5004").pii_purged_at is not None

    archived = shopify_order(5004, email=EMAIL, updated_at="2026-12-01T10:00:00-05:00")
    archived["note"] = "leave at the back door"
    post(client, SHOP, shopify_delivery(archived, topic="orders/updated"))
    row = order_row(db, "5004")
    assert EMAIL not in json.dumps(row.data) and "back door" not in json.dumps(row.data)
    assert row.data["destination"] is None
    assert bodies(db) == [REDACTED_BODY, REDACTED_BODY], "the later delivery is kept without its body"

    draft = woo_order(802, email=EMAIL)
    post(client, WOO, woo_delivery(draft))
    bridge.clock.advance(31 * DAY)  # type: ignore[attr-defined]
    run_purge(bridge)
    draft_again = woo_order(802, status="checkout-draft", modified="2026-12-02T10:00:00", email=EMAIL)
    assert post(client, WOO, woo_delivery(draft_again))["outcome"] == "ignored"
    assert all(EMAIL.encode() not in body for body in bodies(db)), "an ignored delivery of a purged order too"


def test_a_customer_data_request_opens_an_alert_and_the_export_writes_the_stored_orders(
    client: FlaskClient,
    bridge: Bridge,
    db: Engine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    post(client, SHOP, shopify_delivery(shopify_order(5005, email=EMAIL)))
    post(client, SHOP, shopify_delivery(shopify_order(5006, email="someone.else@example.com")))
    request = fixture("shopify/customers_data_request.json")
    request["orders_requested"] = [5005, 9999]
    post(client, SHOP, shopify_delivery(request, topic="customers/data_request"))
    assert Worker(bridge, {"privacy": HANDLERS["privacy"]}).drain() == 1

    with read_session(db) as session:
        alert = session.execute(select(AlertRecord).where(AlertRecord.kind == "privacy")).scalars().one()
        request_id = session.execute(
            select(DeliveryRecord.id).where(DeliveryRecord.topic == "customers/data_request")
        ).scalar_one()
    assert f"fba-bridge privacy export shop-a {request_id}" in alert.message
    assert alert.cleared_at is None

    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "export.json"
    result = CliRunner().invoke(main, ["privacy", "export", "shop-a", str(request_id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out.stat().st_mode & 0o077) == 0, "the export holds personal data: owner-only"
    export = json.loads(out.read_text())
    assert export["orders_requested"] == ["5005", "9999"]
    assert export["orders_not_stored"] == ["9999"]
    [stored] = export["orders"]
    assert stored["external_id"] == "5005" and stored["order"]["buyer_email"] == EMAIL
    assert stored["deliveries"][0]["body"]["email"] == EMAIL
    assert stored["audit_trail"] and "someone.else" not in out.read_text()

    wrong = CliRunner().invoke(main, ["privacy", "export", "woo-main", str(request_id), "--out", str(out)])
    assert wrong.exit_code != 0 and "no customers/data_request delivery" in wrong.output
