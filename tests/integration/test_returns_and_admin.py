"""Customer returns (generic channel and CLI) and the operator commands."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.cli import main
from bridge.clock import ManualClock
from bridge.store import JobRecord, read_session
from bridge.worker import Worker
from tests.integration.test_submit import events, order_row
from tests.integration.test_sync import HOUR, send_generic, sync_cycle
from tests.support import generic_delivery


@pytest.fixture
def shipped(client: FlaskClient, bridge: Bridge, worker: Worker, clock: ManualClock) -> str:
    from tests.integration.test_sync import JOB_PUSH

    amazon_only = Worker(
        bridge, {k: v for k, v in worker.handlers.items() if k != JOB_PUSH}, services=worker.services
    )
    send_generic(client, bridge, "R-1", ["SKU-1"])
    amazon_only.drain()
    clock.advance(5 * HOUR)
    sync_cycle(bridge, amazon_only)
    assert order_row(bridge, "R-1").state == "shipped"
    return "R-1"


def post_return(client: FlaskClient, bridge: Bridge, external_id: str, **item: object) -> int:
    body = {
        "type": "return.request",
        "return": {"external_id": external_id, "items": [{"line_id": "1", "quantity": 1, **item}]},
    }
    raw, headers = generic_delivery(body, bridge.clock.now())
    return client.post("/webhooks/own-shop", data=raw, headers=headers).status_code


def test_return_through_the_generic_channel_is_authorised_by_amazon(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator, shipped: str
) -> None:
    assert post_return(client, bridge, shipped, comment="too small") == 200
    worker.drain()
    assert simulator.ledger.calls("listReturnReasonCodes") == 1
    assert simulator.ledger.calls("createFulfillmentReturn") == 1
    trail = events(bridge, order_row(bridge, shipped))
    assert "return:requested" in trail and "return:authorised" in trail


def test_return_with_a_reason_amazon_does_not_know_is_dead_lettered_with_the_valid_codes(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator, shipped: str
) -> None:
    assert post_return(client, bridge, shipped, reason_code="NOT-A-CODE") == 200
    worker.drain()
    with read_session(bridge.engine) as session:
        job = session.execute(select(JobRecord).where(JobRecord.kind == "return")).scalars().one()
    assert job.status == "dead" and "NOT-A-CODE" in job.last_error and "Amazon's codes" in job.last_error
    assert simulator.ledger.calls("createFulfillmentReturn") == 0


def test_return_for_an_unknown_order_is_refused(client: FlaskClient, bridge: Bridge) -> None:
    assert post_return(client, bridge, "NO-SUCH-ORDER") == 422


def test_operator_cli_requests_a_return_and_shows_orders_and_jobs(
    bridge: Bridge,
    worker: Worker,
    simulator: Simulator,
    shipped: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    bad = runner.invoke(main, ["return", "own-shop", shipped, "--item", "1"])
    assert bad.exit_code != 0 and "LINE_ID:QUANTITY" in bad.output
    ok = runner.invoke(main, ["return", "own-shop", shipped, "--item", "1:1"])
    assert ok.exit_code == 0, ok.output
    worker.drain()
    assert simulator.ledger.calls("createFulfillmentReturn") == 1
    listing = runner.invoke(main, ["orders"])
    assert listing.exit_code == 0 and "#1001" in listing.output and "shipped" in listing.output
    detail = runner.invoke(main, ["order", "own-shop", shipped])
    assert detail.exit_code == 0 and "return:authorised" in detail.output
    assert "Erika" not in detail.output, "no personal data in operator output"
    assert runner.invoke(main, ["jobs"]).exit_code == 0
    assert "not dead-lettered" in runner.invoke(main, ["jobs", "retry", "999"]).output
