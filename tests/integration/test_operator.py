"""Operator actions (`bridge/operator.py`): re-submit, approve, hold, cancel, preview, through the
simulator, and the same actions from the CLI."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge import operator
from bridge.amazon.simulator import Simulator
from bridge.bootstrap import Bridge
from bridge.channels import ChannelsConfig
from bridge.cli import main
from bridge.store import JobRecord, OrderEventRecord, read_session
from bridge.worker import Worker
from tests.integration.test_submit import events, order_row
from tests.integration.test_sync import send_generic


def with_sku_mapped(config: ChannelsConfig, sku: str, seller_sku: str) -> ChannelsConfig:
    """The channels file after the merchant added `sku` to own-shop's map."""
    channel = config.channels["own-shop"]
    changed = dataclasses.replace(channel, sku_map={**channel.sku_map, sku: seller_sku})
    return dataclasses.replace(config, channels={**config.channels, "own-shop": changed})


def reasons(bridge: Bridge, external_id: str) -> list[str]:
    row = order_row(bridge, external_id)
    with read_session(bridge.engine) as session:
        query = select(OrderEventRecord.reason).where(OrderEventRecord.order_id == row.id)
        return list(session.execute(query.order_by(OrderEventRecord.id)).scalars())


@pytest.fixture
def parked(client: FlaskClient, bridge: Bridge, worker: Worker) -> str:
    """An order parked because one of its SKUs is not in the channel's map."""
    send_generic(client, bridge, "P-1", ["SKU-1", "SKU-NEW"])
    worker.drain()
    row = order_row(bridge, "P-1")
    assert row.state == "needs_attention" and "SKU-NEW" in row.attention_reason
    return "P-1"


def test_resubmit_after_the_sku_is_mapped_reaches_amazon_exactly_once(
    bridge: Bridge, worker: Worker, simulator: Simulator, parked: str
) -> None:
    bridge.config = with_sku_mapped(bridge.config, "SKU-NEW", "FBA-SKU-1")
    result = operator.resubmit(bridge, "own-shop", parked, actor="alice")
    assert result.changed and result.state == "received"
    # A second click before the worker ran changes nothing and queues nothing twice.
    again = operator.resubmit(bridge, "own-shop", parked, actor="alice")
    assert not again.changed
    worker.drain()
    row = order_row(bridge, parked)
    assert row.state == "submitted" and row.attention_reason == ""
    assert simulator.ledger.calls("createFulfillmentOrder") == 1
    assert "re-submitted by alice" in reasons(bridge, parked)


def test_resubmit_without_a_fix_parks_the_order_again_with_the_current_reason(
    bridge: Bridge, worker: Worker, simulator: Simulator, parked: str
) -> None:
    operator.resubmit(bridge, "own-shop", parked, actor="alice")
    worker.drain()
    row = order_row(bridge, parked)
    assert row.state == "needs_attention" and "SKU-NEW" in row.attention_reason
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_resubmit_all_is_a_dry_run_until_asked(bridge: Bridge, worker: Worker, parked: str) -> None:
    bridge.config = with_sku_mapped(bridge.config, "SKU-NEW", "FBA-SKU-1")
    dry = operator.resubmit_all(bridge, actor="alice")
    assert [(r.order_ref, r.changed) for r in dry] == [("#1001", False)]
    assert order_row(bridge, parked).state == "needs_attention"
    done = operator.resubmit_all(bridge, actor="alice", dry_run=False)
    assert [r.changed for r in done] == [True]
    worker.drain()
    assert order_row(bridge, parked).state == "submitted"


def test_hold_keeps_an_order_from_amazon_until_approved(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_generic(client, bridge, "H-1", ["SKU-1"])
    held = operator.hold(bridge, "own-shop", "H-1", actor="bob", reason="customer called")
    assert held.changed and held.state == "awaiting_approval"
    worker.drain()  # the submit job queued by intake finds the order held and does nothing
    assert simulator.ledger.calls("createFulfillmentOrder") == 0
    assert order_row(bridge, "H-1").attention_reason == "held by bob: customer called"
    approved = operator.approve(bridge, "own-shop", "H-1", actor="carol")
    assert approved.changed and approved.state == "received"
    worker.drain()
    assert order_row(bridge, "H-1").state == "submitted"
    assert simulator.ledger.calls("createFulfillmentOrder") == 1
    trail = events(bridge, order_row(bridge, "H-1"))
    assert trail.index("hold") < trail.index("approve") < trail.index("submit_started")


def test_actions_that_do_not_fit_the_state_say_why(
    client: FlaskClient, bridge: Bridge, worker: Worker, parked: str
) -> None:
    with pytest.raises(operator.OperatorError, match="not waiting for approval; re-submit it instead"):
        operator.approve(bridge, "own-shop", parked, actor="alice")
    send_generic(client, bridge, "S-1", ["SKU-1"])
    worker.drain()
    with pytest.raises(operator.OperatorError, match="only an order that has not reached Amazon can be held"):
        operator.hold(bridge, "own-shop", "S-1", actor="alice")
    with pytest.raises(operator.OperatorError, match="only a parked order"):
        operator.resubmit(bridge, "own-shop", "S-1", actor="alice")
    with pytest.raises(operator.OperatorError, match="no order 'NOPE'"):
        operator.cancel(bridge, "own-shop", "NOPE", actor="alice")
    with pytest.raises(operator.OperatorError, match="no channel 'nope'"):
        operator.cancel(bridge, "nope", "S-1", actor="alice")
    with pytest.raises(operator.OperatorError, match="say who is acting"):
        operator.cancel(bridge, "own-shop", "S-1", actor="  ")


def test_cancel_at_amazon_requests_the_cancellation(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send_generic(client, bridge, "C-1", ["SKU-1"])
    worker.drain()
    result = operator.cancel(bridge, "own-shop", "C-1", actor="dana")
    assert result.state == "cancel_requested" and "also cancel or refund" in result.message
    worker.drain()
    assert order_row(bridge, "C-1").state == "cancelled"
    assert simulator.ledger.calls("cancelFulfillmentOrder") == 1
    assert not operator.cancel(bridge, "own-shop", "C-1", actor="dana").changed


def test_cancel_before_submission_ends_the_order(bridge: Bridge, worker: Worker, parked: str) -> None:
    assert operator.cancel(bridge, "own-shop", parked, actor="dana").state == "cancelled"
    worker.drain()
    with read_session(bridge.engine) as session:
        kinds = session.execute(select(JobRecord.kind).where(JobRecord.status == "ready")).scalars().all()
    assert "cancel" not in kinds


def test_preview_now_reports_what_amazon_would_do_and_creates_nothing(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator, amazon: object
) -> None:
    send_generic(client, bridge, "V-1", ["SKU-1"])
    operator.hold(bridge, "own-shop", "V-1", actor="erin")
    result = operator.preview_now(bridge, "own-shop", "V-1", actor="erin", amazon=amazon)  # type: ignore[arg-type]
    assert result.fulfillable and result.verdict == "" and result.previews
    assert simulator.ledger.calls("getFulfillmentPreview") == 1
    assert simulator.ledger.calls("createFulfillmentOrder") == 0
    assert "operator:preview" in events(bridge, order_row(bridge, "V-1"))


def test_reconcile_request_is_refused_for_a_channel_without_an_order_api(bridge: Bridge) -> None:
    with pytest.raises(operator.OperatorError, match="no order API"):
        operator.request_reconcile(bridge, "own-shop", actor="alice")
    assert operator.request_reconcile(bridge, "shop-a", actor="alice")
    assert not operator.request_reconcile(bridge, "shop-a", actor="alice"), "one waiting pass per channel"


def test_cli_order_actions_take_the_name_the_shop_shows(
    bridge: Bridge, worker: Worker, parked: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    dry = runner.invoke(main, ["orders", "--attention", "--resubmit-all"])
    assert dry.exit_code == 0 and "dry run: 1 orders would be re-submitted" in dry.output
    hold = runner.invoke(main, ["order", "own-shop", "#1001", "hold", "--reason", "check stock"])
    assert hold.exit_code == 0 and "held" in hold.output, hold.output
    approve = runner.invoke(main, ["order", "own-shop", "1001", "approve"])
    assert approve.exit_code == 0 and "queued for submission" in approve.output, approve.output
    wrong = runner.invoke(main, ["order", "own-shop", "#1001", "approve"])
    assert wrong.exit_code == 0 and "already on its way" in wrong.output
    assert "operator:approve" in events(bridge, order_row(bridge, parked))
