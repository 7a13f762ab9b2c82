"""Fulfillment-service Shopify: the bridge registers itself, Shopify's signed callbacks arrive over
real HTTP, and the worker accepts or rejects fulfillment requests and cancellation requests.

The bridge's web app and the fake Shopify both serve on loopback; the simulator is Amazon.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.amazon.simulator import Simulator
from bridge.amazon.simulator.server import serve_in_thread
from bridge.app import create_app
from bridge.bootstrap import Bridge
from bridge.channels import SHOPIFY_FULFILLMENT_SERVICE
from bridge.cli import main
from bridge.clock import ManualClock
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.pipeline.requests import JOB_REQUESTS
from bridge.runtime import make_worker
from bridge.store import DeliveryRecord, JobRecord, read_session
from bridge.storefronts.base import hmac_sha256_b64
from bridge.storefronts.registry import Storefronts
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV
from tests.integration.test_shopify_locations import TOKEN, World, open_alerts, units
from tests.integration.test_submit import order_row
from tests.integration.test_sync import HOUR

SERVICE = "Amazon MCF (fba-bridge)"
SECRET = TEST_ENV["SHOP_A_WEBHOOK_SECRET"]


@pytest.fixture
def fs(
    bridge: Bridge, client: FlaskClient, amazon: Any, simulator: Simulator, clock: ManualClock
) -> Iterator[World]:
    """Channel shop-a in fulfillment-service mode, registered, both sides on loopback HTTP."""
    shop = FakeShopify(TOKEN, clock, app_secret=SECRET)
    shop.add_location("Warehouse")
    with (
        serve_in_thread(create_app(bridge)) as web,
        serve_in_thread(create_fake_shopify_app(shop)) as shopify,
    ):
        storefronts = Storefronts(clock)
        worker = make_worker(bridge, amazon=amazon, storefronts=storefronts)
        world = World(bridge, client, shop, worker, simulator, clock)
        storefront = replace(bridge.config.channels["shop-a"].storefront, base_url=shopify.base_url)
        channel = world.configure(
            mode=SHOPIFY_FULFILLMENT_SERVICE, callback_url=web.base_url, channel={"storefront": storefront}
        )
        registration = storefronts.assignments(channel).register()  # type: ignore[union-attr]
        assert registration.outcome == "created"
        yield world
        storefronts.close()


def reconfigure(world: World, **changes: Any) -> None:
    """Change channel fields of shop-a, keeping its fulfillment-service options."""
    options = world.bridge.config.channels["shop-a"].shopify
    world.configure(mode=options.mode, callback_url=options.callback_url, channel=changes)


def request(world: World, order_id: int, lines: list[tuple[int, str, int]], **kwargs: Any) -> None:
    world.order(order_id, lines, locations=kwargs.pop("locations", SERVICE), send=False, **kwargs)
    assert world.shop.request_fulfillment(str(order_id)) == 200
    world.worker.drain()


# --------------------------------------------------------------------------------------------
# Fulfillment requests


def test_a_fulfillment_request_is_accepted_then_created_at_amazon_and_fulfilled_back(fs: World) -> None:
    request(fs, 9001, [(11, "TSHIRT-RED-M", 2)])

    [fo] = fs.shop.fulfillment_orders("9001")
    assert (fo.request_status, fo.status) == ("ACCEPTED", "IN_PROGRESS")
    row = order_row(fs.bridge, "9001")
    assert row.state == "submitted" and row.display_id == "#9001", "taken in from the request alone"
    assert fs.amazon_items(9001) == {"11": 2}
    assert [u.status for u in units(fs.bridge, "9001")] == ["accepted"]
    assert fs.simulator.ledger.creates("shop-a-9001") == 1

    fs.ship()

    [fulfillment] = fs.shop.fulfillments("9001")
    assert fulfillment.quantities == {"11": 2} and fulfillment.tracking_numbers
    assert fs.shop.fulfillment_orders("9001")[0].status == "CLOSED"


def test_accept_comes_before_the_create_at_amazon(fs: World) -> None:
    fs.simulator.inject_fault("createFulfillmentOrder", status=500, count=1)
    request(fs, 9002, [(12, "MUG-WHITE", 1)])

    assert fs.shop.fulfillment_orders("9002")[0].request_status == "ACCEPTED"
    assert not fs.simulator.has_order("shop-a-9002")


def test_a_request_with_an_unmapped_sku_is_rejected_with_the_reason(fs: World) -> None:
    reconfigure(fs, unmapped_policy="skip")  # even "skip": a request is fulfilled whole or not at all
    request(fs, 9003, [(13, "TSHIRT-RED-M", 1), (14, "NOT-AT-AMAZON", 1)])

    [fo] = fs.shop.fulfillment_orders("9003")
    assert (fo.request_status, fo.status) == ("REJECTED", "OPEN")
    [rejection] = [r for r in fs.shop.requests if r.operation_name == "BridgeRejectFulfillmentRequest"]
    assert (
        rejection.variables["reason"] == "INVALID_SKU" and "NOT-AT-AMAZON" in rejection.variables["message"]
    )
    row = order_row(fs.bridge, "9003")
    assert row.state == "needs_attention" and "NOT-AT-AMAZON" in row.attention_reason
    assert fs.simulator.ledger.calls("createFulfillmentOrder") == 0


def test_a_request_amazon_cannot_fulfil_is_rejected_as_out_of_stock(fs: World) -> None:
    reconfigure(fs, sku_map={"POSTER-A2": "FBA-POSTER-A2"})
    request(fs, 9004, [(15, "POSTER-A2", 1)])

    assert fs.shop.fulfillment_orders("9004")[0].request_status == "REJECTED"
    [rejection] = [r for r in fs.shop.requests if r.operation_name == "BridgeRejectFulfillmentRequest"]
    assert rejection.variables["reason"] == "INVENTORY_OUT_OF_STOCK"


def test_a_rejected_request_asked_again_after_the_fix_is_accepted(fs: World) -> None:
    request(fs, 9005, [(16, "NEW-SKU", 1)])
    assert order_row(fs.bridge, "9005").state == "not_for_amazon"  # nothing mapped, skus.unmapped: skip
    assert fs.shop.fulfillment_orders("9005")[0].request_status == "REJECTED"
    reconfigure(fs, sku_map={**fs.bridge.config.channels["shop-a"].sku_map, "NEW-SKU": "FBA-MUG-WHITE"})

    assert fs.shop.request_fulfillment("9005") == 200
    fs.worker.drain()

    assert fs.shop.fulfillment_orders("9005")[0].request_status == "ACCEPTED"
    assert order_row(fs.bridge, "9005").state == "submitted"


def test_an_order_webhook_alone_sends_nothing_until_fulfilment_is_requested(fs: World) -> None:
    fs.order(9006, [(17, "TSHIRT-RED-M", 1)], locations=SERVICE)  # the webhook arrives first
    fs.worker.drain()
    assert order_row(fs.bridge, "9006").state == "received"
    assert fs.simulator.ledger.calls("getFulfillmentPreview") == 0

    assert fs.shop.request_fulfillment("9006") == 200
    fs.worker.drain()

    assert order_row(fs.bridge, "9006").state == "submitted"
    assert fs.amazon_items(9006) == {"17": 1}


def test_only_the_requested_units_at_our_location_are_shipped(fs: World) -> None:
    fs.order(
        9007,
        [(18, "TSHIRT-RED-M", 1), (19, "MUG-WHITE", 1)],
        groups=[["18"], ["19"]],
        locations=[SERVICE, "Warehouse"],
    )
    assert fs.shop.request_fulfillment("9007") == 200
    fs.worker.drain()

    assert fs.amazon_items(9007) == {"18": 1}
    fs.ship()
    assert fs.shop.remaining("9007") == {"18": 0, "19": 1}


# --------------------------------------------------------------------------------------------
# Cancellation requests


def test_a_cancellation_request_before_amazon_ships_is_cancelled_there_and_accepted(fs: World) -> None:
    request(fs, 9010, [(20, "TSHIRT-RED-M", 1)])

    assert fs.shop.request_cancellation("9010") == 200
    fs.worker.drain()

    assert fs.simulator.order_status("shop-a-9010") == "Cancelled"
    assert order_row(fs.bridge, "9010").state == "cancelled"
    [fo] = fs.shop.fulfillment_orders("9010")
    assert (fo.request_status, fo.status) == ("CANCELLATION_ACCEPTED", "CLOSED")
    assert [u.status for u in units(fs.bridge, "9010")] == ["cancellation_accepted"]


def test_a_cancellation_request_too_late_is_rejected_with_amazons_reason_and_tracking_flows(
    fs: World,
) -> None:
    request(fs, 9011, [(21, "TSHIRT-RED-M", 1)])
    fs.clock.advance(2 * HOUR)  # Amazon is Processing: too late to cancel

    assert fs.shop.request_cancellation("9011") == 200
    fs.worker.drain()

    [fo] = fs.shop.fulfillment_orders("9011")
    assert (fo.request_status, fo.status) == ("CANCELLATION_REJECTED", "IN_PROGRESS")
    [rejection] = [r for r in fs.shop.requests if r.operation_name == "BridgeRejectCancellationRequest"]
    assert "can no longer cancel" in rejection.variables["message"]
    assert open_alerts(fs.bridge, "cancel-refused")

    fs.ship()
    assert fs.shop.remaining("9011") == {"21": 0}, "the shipment Amazon made anyway is fulfilled back"


# --------------------------------------------------------------------------------------------
# The callback endpoint


def callback(client: FlaskClient, body: bytes, *, secret: str = SECRET, **headers: str) -> Any:
    return client.post(
        "/shopify/shop-a/fulfillment_order_notification",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": hmac_sha256_b64(secret.encode(), body),
            **headers,
        },
    )


def test_the_callback_is_stored_and_queued_in_one_step_and_coalesced(fs: World) -> None:
    body = json.dumps({"kind": "FULFILLMENT_REQUEST"}).encode()
    first = callback(fs.client, body)
    second = callback(fs.client, body)

    assert first.status_code == 200 and first.json["outcome"] == "queued"
    assert second.json["outcome"] == "coalesced", "one waiting job reads every request"
    with read_session(fs.bridge.engine) as session:
        deliveries = session.execute(select(DeliveryRecord)).scalars().all()
        queued = session.execute(select(JobRecord).where(JobRecord.kind == JOB_REQUESTS)).scalars().all()
    assert len(deliveries) == 2 and len(queued) == 1


def test_the_callback_refuses_bad_signatures_other_modes_and_bad_bodies(fs: World, bridge: Bridge) -> None:
    good = json.dumps({"kind": "CANCELLATION_REQUEST"}).encode()
    assert callback(fs.client, good, secret="wrong-secret").status_code == 401
    assert callback(fs.client, b"{not json").status_code == 400
    assert callback(fs.client, json.dumps({"nokind": 1}).encode()).status_code == 422
    unknown = callback(fs.client, json.dumps({"kind": "SOMETHING_NEW"}).encode())
    assert unknown.status_code == 200 and unknown.json["outcome"] == "ignored"
    with read_session(fs.bridge.engine) as session:
        assert session.execute(select(JobRecord).where(JobRecord.kind == JOB_REQUESTS)).first() is None

    fs.configure(locations=("Warehouse",))  # merchant-managed again: the endpoint is not there
    assert callback(fs.client, good).status_code == 404


def test_a_callback_from_another_shop_is_refused(fs: World) -> None:
    storefront = fs.bridge.config.channels["shop-a"].storefront
    reconfigure(fs, storefront=replace(storefront, base_url="https://shop-a.myshopify.com"))
    body = json.dumps({"kind": "FULFILLMENT_REQUEST"}).encode()
    answer = callback(fs.client, body, **{"X-Shopify-Shop-Domain": "shop-b.myshopify.com"})
    assert answer.status_code == 403


# --------------------------------------------------------------------------------------------
# Registration


def test_register_is_idempotent_and_follows_a_moved_bridge(fs: World) -> None:
    storefronts = Storefronts(fs.clock)
    channel = fs.bridge.config.channels["shop-a"]
    again = storefronts.assignments(channel).register()  # type: ignore[union-attr]
    assert again.outcome == "already registered"
    moved = fs.configure(
        mode=SHOPIFY_FULFILLMENT_SERVICE,
        callback_url="http://127.0.0.1:9/new",
        channel={"storefront": channel.storefront},
    )
    updated = storefronts.assignments(moved).register()  # type: ignore[union-attr]
    storefronts.close()

    assert updated.outcome == "callback URL updated"
    [service] = [s for s in fs.shop.fulfillment_services() if s.own]
    assert service.callback_url == "http://127.0.0.1:9/new/shopify/shop-a"
    assert service.tracking_support is False and service.inventory_management is False


def test_an_unregistered_service_raises_a_channel_alert_instead_of_losing_requests(
    bridge: Bridge, amazon: Any, simulator: Simulator, clock: ManualClock, client: FlaskClient
) -> None:
    shop = FakeShopify(TOKEN, clock, app_secret=SECRET)
    transports = {"shop-a": httpx.WSGITransport(app=create_fake_shopify_app(shop))}
    world = World(
        bridge,
        client,
        shop,
        make_worker(bridge, amazon=amazon, storefronts=Storefronts(clock, transports)),
        simulator,
        clock,
    )
    world.configure(mode=SHOPIFY_FULFILLMENT_SERVICE, callback_url="https://bridge.example")
    body = json.dumps({"kind": "FULFILLMENT_REQUEST"}).encode()
    assert callback(client, body).status_code == 200

    world.worker.drain()

    [message] = open_alerts(bridge, "storefront")
    assert "bridge shopify register shop-a" in message
    with read_session(bridge.engine) as session:
        job = session.execute(select(JobRecord).where(JobRecord.kind == JOB_REQUESTS)).scalars().one()
    assert job.status == "ready" and job.attempts == 0


def test_the_register_command_creates_the_service_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    shop = FakeShopify(TOKEN, clock)
    config = EXAMPLE_CONFIG.read_text().replace(
        "      notify_customer: true\n",
        "      notify_customer: true\n    shopify:\n      mode: fulfillment_service\n"
        "      callback_url: https://bridge.example.com\n",
        1,
    )
    path = tmp_path / "channels.yaml"
    path.write_text(config)
    runner = CliRunner()
    with serve_in_thread(create_fake_shopify_app(shop)) as server:
        monkeypatch.setenv("BRIDGE_CONFIG", str(path))
        monkeypatch.setenv("SHOP_A_URL", server.base_url)
        first = runner.invoke(main, ["shopify", "register", "shop-a"])
        second = runner.invoke(main, ["shopify", "register", "shop-a"])
        checked = runner.invoke(main, ["check-config", str(path)])
        wrong = runner.invoke(main, ["shopify", "register", "woo-main"])

    assert first.exit_code == 0, first.output
    assert first.output.startswith("created: fulfillment service 'Amazon MCF (fba-bridge)'")
    assert "https://bridge.example.com/shopify/shop-a/fulfillment_order_notification" in first.output
    assert second.output.startswith("already registered")
    assert len(shop.fulfillment_services()) == 1
    assert checked.exit_code == 0 and "shop-a: the shop's set-up matches" in checked.output
    assert wrong.exit_code != 0 and "no Shopify channel" in wrong.output


def test_a_request_whose_callback_was_lost_is_answered_by_the_periodic_read(fs: World) -> None:
    from bridge.scheduler import Clock

    fs.shop.app_secret = "not-the-app-secret"  # the callback fails verification: as good as lost
    fs.order(9020, [(30, "TSHIRT-RED-M", 1)], locations=SERVICE, send=False)
    assert fs.shop.request_fulfillment("9020") == 401
    fs.worker.drain()
    assert fs.shop.fulfillment_orders("9020")[0].request_status == "SUBMITTED"

    clock = Clock(fs.bridge)
    assert clock.lease.renew()
    job = clock.scheduler.get_job("requests:shop-a:fulfillment")
    assert job is not None and clock.scheduler.get_job("requests:shop-a:cancellation") is not None
    job.func()
    fs.worker.drain()
    clock.lease.release()

    assert fs.shop.fulfillment_orders("9020")[0].request_status == "ACCEPTED"
    assert order_row(fs.bridge, "9020").state == "submitted"


def test_no_personal_data_from_a_request_reaches_the_logs(
    fs: World, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    canary = {
        "firstName": "Jon",
        "lastName": "Canary",
        "address1": "42 Canary Wharf Lane",
        "city": "Springfield",
        "province": "NY",
        "zip": "10001",
        "countryCode": "US",
        "phone": "+1 555 0100 777",
        "email": "jon.canary@example.com",
    }
    fs.shop.add_order("9030", [("31", "TSHIRT-RED-M", 1)], locations=SERVICE, destination=canary)
    assert fs.shop.request_fulfillment("9030") == 200
    fs.worker.drain()
    fs.shop.request_cancellation("9030")
    fs.worker.drain()

    assert order_row(fs.bridge, "9030").state == "cancelled"
    for value in ("Canary", "jon.canary@example.com", "42 Canary Wharf Lane", "555 0100", SECRET, TOKEN):
        assert value not in caplog.text


def test_the_callback_secret_is_compared_in_constant_time_and_never_logged(
    fs: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import hmac
    import logging

    caplog.set_level(logging.DEBUG)
    calls: list[int] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    body = json.dumps({"kind": "FULFILLMENT_REQUEST"}).encode()
    wrong = callback(fs.client, body, secret=SECRET + "x")
    assert wrong.status_code == 401 and calls, "compared with hmac.compare_digest"
    right = callback(fs.client, body)
    assert right.status_code == 200
    for text in (caplog.text, wrong.get_data(as_text=True), right.get_data(as_text=True)):
        assert SECRET not in text


def test_a_callback_with_a_control_character_or_a_long_webhook_id_is_stored_once(fs: World) -> None:
    long_id = "w" * 300
    body = json.dumps({"kind": "FULFILLMENT_REQUEST\u0000"}).encode()
    first = callback(fs.client, body, **{"X-Shopify-Webhook-Id": long_id})
    again = callback(fs.client, body, **{"X-Shopify-Webhook-Id": long_id})
    assert (first.status_code, again.status_code) == (200, 200), first.get_data(as_text=True)
    with read_session(fs.bridge.engine) as session:
        rows = list(session.execute(select(DeliveryRecord)).scalars())
    assert len(rows) == 1, "the retry is recognised by its (hashed) webhook id"
    assert rows[0].delivery_key.startswith("sha256:") and "\x00" not in rows[0].topic
