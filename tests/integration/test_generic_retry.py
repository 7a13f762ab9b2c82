"""The generic channel has no pull API: its sender must retry, and the bridge's answer to a retry of
a stored delivery is cheap (a signature check and one indexed lookup) and exact (the same 2xx and
the outcome the delivery had)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bridge.bootstrap import Bridge
from bridge.clock import ManualClock
from bridge.store import DeliveryRecord, JobRecord, OrderEventRecord, read_session
from bridge.storefronts.generic import GenericAdapter
from tests.support import fixture, generic_delivery

OWN = "/webhooks/own-shop"


def count(db: Engine, model: type) -> int:
    with read_session(db) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def post(client: FlaskClient, delivery: tuple[bytes, dict[str, str]]) -> Any:
    body, headers = delivery
    return client.post(OWN, data=body, headers=headers)


def test_a_retry_of_a_stored_delivery_gets_the_same_answer_without_being_parsed_again(
    client: FlaskClient, bridge: Bridge, db: Engine, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = fixture("generic/order_upsert.json")
    first = post(client, generic_delivery(body, clock.now(), msg_id="msg_retry_1"))
    assert first.status_code == 200 and first.json == {"status": "accepted", "outcome": "created"}
    before = (count(db, DeliveryRecord), count(db, JobRecord), count(db, OrderEventRecord))

    def no_parsing(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a retry of a stored delivery must not be parsed or validated again")

    monkeypatch.setattr(GenericAdapter, "parse", no_parsing)
    clock.advance(120)  # the sender retries later, signing the same message again
    retry = post(client, generic_delivery(body, clock.now(), msg_id="msg_retry_1"))

    assert retry.status_code == 200
    assert retry.json == {"status": "duplicate", "outcome": "created"}
    assert (count(db, DeliveryRecord), count(db, JobRecord), count(db, OrderEventRecord)) == before


def test_a_retry_still_needs_a_valid_signature(client: FlaskClient, clock: ManualClock) -> None:
    body = fixture("generic/order_upsert.json")
    assert post(client, generic_delivery(body, clock.now(), msg_id="msg_retry_2")).status_code == 200
    raw, headers = generic_delivery(body, clock.now(), msg_id="msg_retry_2")
    headers["webhook-signature"] = "v1,aW52YWxpZA=="
    assert client.post(OWN, data=raw, headers=headers).status_code == 401


def test_a_delivery_id_reused_for_another_body_is_refused(
    client: FlaskClient, db: Engine, clock: ManualClock
) -> None:
    body = fixture("generic/order_upsert.json")
    assert post(client, generic_delivery(body, clock.now(), msg_id="msg_retry_3")).status_code == 200
    other = dict(body, order=dict(body["order"], external_id="other-order"))

    refused = post(client, generic_delivery(other, clock.now(), msg_id="msg_retry_3"))

    assert refused.status_code == 409 and refused.json["error"] == "delivery_id_reused"
    assert count(db, DeliveryRecord) == 1
