"""Generic-channel push-back: signed callbacks to the fake Standard Webhooks receiver, in process
and once over a real socket."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bridge.amazon.simulator.server import serve_in_thread
from bridge.channels import Channel, ChannelsConfig
from bridge.clock import ManualClock
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.settings import Secret
from bridge.storefronts.generic import sign_standard_webhook
from bridge.storefronts.generic_push import GenericPusher, message_id
from bridge.storefronts.push import OrderNote, PushError, PushLine, ShipmentPush, StorefrontRejected
from tests.conftest import TEST_ENV

SECRET = TEST_ENV["OWN_SHOP_SECRET"]
CALLBACK = "http://own-shop.test/fba-bridge/events"


def generic_channel(channels_config: ChannelsConfig, url: str = CALLBACK, **storefront: Any) -> Channel:
    channel = channels_config.channels["own-shop"]
    return replace(channel, storefront=replace(channel.storefront, callback_url=url, **storefront))


@pytest.fixture
def receiver(clock: ManualClock) -> FakeGenericReceiver:
    return FakeGenericReceiver(SECRET, clock=clock)


@pytest.fixture
def pusher(channels_config, clock, receiver) -> Iterator[GenericPusher]:
    p = GenericPusher(
        generic_channel(channels_config), clock, httpx.WSGITransport(app=create_fake_generic_app(receiver))
    )
    yield p
    p.close()


def package(n: int = 1, *, all_shipped: bool = False) -> ShipmentPush:
    return ShipmentPush(
        order_external_id="1001",
        display_id="#1001",
        package_key=f"own-shop-1001:PKG{n}",
        carrier="UPS",
        tracking_number=f"1Z00{n}",
        tracking_url=f"https://track.example/1Z00{n}",
        lines=(PushLine("1", "SKU-1", 2),),
        shipped_at=datetime(2026, 11, 23, 9, 15, tzinfo=UTC),
        all_shipped=all_shipped,
    )


def test_shipment_callback_is_signed_and_shaped(pusher, receiver, clock) -> None:
    result = pusher.push_shipment(package(all_shipped=True))

    [event] = receiver.events
    assert receiver.rejections == []
    assert (
        event.webhook_id
        == result.storefront_ref
        == message_id("shipment.created", "own-shop", "own-shop-1001:PKG1")
    )
    assert event.timestamp == int(clock.now().timestamp())
    assert event.path == "/fba-bridge/events"
    assert event.payload == {
        "type": "shipment.created",
        "timestamp": "2026-11-23T09:15:00+00:00",
        "data": {
            "order_external_id": "1001",
            "display_id": "#1001",
            "package_key": "own-shop-1001:PKG1",
            "carrier": "UPS",
            "carrier_code": "UPS",
            "tracking_number": "1Z001",
            "tracking_url": "https://track.example/1Z001",
            "lines": [{"line_id": "1", "sku": "SKU-1", "quantity": 2}],
            "shipped_at": "2026-11-23T09:15:00+00:00",
            "all_shipped": True,
            "remaining_lines": [],
        },
    }


def test_find_existing_is_always_none(pusher) -> None:
    pusher.push_shipment(package())
    assert pusher.find_existing(package()) is None


def test_a_retried_package_keeps_its_webhook_id_and_is_recorded_once(pusher, receiver, clock) -> None:
    receiver.accept_then_drop_next()
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    assert caught.value.code == "no_answer" and caught.value.retryable
    assert not caught.value.ambiguous  # the stable webhook-id makes the resend safe

    clock.advance(120)
    again = pusher.push_shipment(package())

    assert receiver.attempts == 2 and receiver.duplicates == 1
    [event] = receiver.events
    assert event.webhook_id == again.storefront_ref


def test_different_packages_get_different_webhook_ids(pusher, receiver) -> None:
    pusher.push_shipment(package(1))
    pusher.push_shipment(package(2, all_shipped=True))
    assert len({e.webhook_id for e in receiver.events}) == 2
    assert [e.data["all_shipped"] for e in receiver.events] == [False, True]


def test_notes_are_sent_once(pusher, receiver) -> None:
    note = OrderNote("1001", "own-shop-1001:unfulfillable", "Amazon could not fulfil SKU-2.")
    first = pusher.add_note(note)
    second = pusher.add_note(note)

    assert first.storefront_ref == second.storefront_ref
    [event] = receiver.events_of("order.note")
    assert event.data == {
        "order_external_id": "1001",
        "note_key": "own-shop-1001:unfulfillable",
        "text": "Amazon could not fulfil SKU-2.",
        "customer_visible": False,
    }
    assert receiver.duplicates == 1


def test_a_note_and_a_package_with_the_same_key_do_not_collide(pusher, receiver) -> None:
    pusher.push_shipment(package())
    pusher.add_note(OrderNote("1001", "own-shop-1001:PKG1", "same key"))
    assert len(receiver.events) == 2


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_or_unavailable_receiver_is_retryable_with_retry_after(pusher, receiver, status) -> None:
    receiver.fail_next(status, retry_after=12)
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    assert caught.value.retryable and caught.value.retry_after == 12.0 and caught.value.status == status
    pusher.push_shipment(package())
    assert len(receiver.events) == 1


def test_receiver_refusing_our_signature_is_an_operator_problem(channels_config, clock, receiver) -> None:
    wrong = generic_channel(channels_config, callback_secret=Secret("whsec_" + "QUJD" * 10))
    p = GenericPusher(wrong, clock, httpx.WSGITransport(app=create_fake_generic_app(receiver)))
    with pytest.raises(StorefrontRejected):
        p.push_shipment(package())
    assert receiver.events == [] and len(receiver.rejections) == 1


def test_an_unusable_callback_secret_is_a_permanent_error(channels_config, clock, receiver) -> None:
    bad = generic_channel(channels_config, callback_secret=Secret("plain"))
    p = GenericPusher(bad, clock, httpx.WSGITransport(app=create_fake_generic_app(receiver)))
    with pytest.raises(PushError) as caught:
        p.push_shipment(package())
    assert caught.value.code == "bad_callback_secret" and not caught.value.retryable
    assert receiver.attempts == 0


def _post(receiver: FakeGenericReceiver, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(transport=httpx.WSGITransport(app=create_fake_generic_app(receiver))) as client:
        return client.post("http://own-shop.test/hook", content=body, headers=headers)


def test_receiver_rejects_bad_signatures(receiver, clock) -> None:
    body = json.dumps({"type": "shipment.created", "data": {}}).encode()
    now = int(clock.now().timestamp())
    good = sign_standard_webhook(SECRET, "msg_a", now, body)

    tampered = _post(receiver, body + b" ", good)
    other_key = _post(receiver, body, sign_standard_webhook("whsec_" + "QUJD" * 10, "msg_a", now, body))
    unsigned = _post(receiver, body, {"webhook-id": "msg_a", "webhook-timestamp": str(now)})
    stale = _post(receiver, body, sign_standard_webhook(SECRET, "msg_a", now - 301, body))
    future = _post(receiver, body, sign_standard_webhook(SECRET, "msg_a", now + 301, body))

    assert [r.status_code for r in (tampered, other_key, unsigned, stale, future)] == [401] * 5
    assert receiver.events == [] and len(receiver.rejections) == 5
    assert _post(receiver, body, good).status_code == 200
    assert [e.webhook_id for e in receiver.events] == ["msg_a"]


def test_receiver_tolerance_follows_its_clock(pusher, receiver, clock) -> None:
    receiver.clock = ManualClock(clock.now())
    receiver.clock.advance(400)  # the receiver's clock runs 400 s ahead of the bridge's
    with pytest.raises(StorefrontRejected):
        pusher.push_shipment(package())
    assert "5 minutes old" in receiver.rejections[0]


def test_no_secrets_or_personal_data_in_logs(pusher, receiver, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    pusher.push_shipment(package())
    pusher.add_note(OrderNote("1001", "k", "hello"))
    assert "own-shop-1001:PKG1" in caplog.text
    assert SECRET not in caplog.text and SECRET.removeprefix("whsec_") not in caplog.text
    body = json.dumps(receiver.events[0].payload)
    for personal in ("@", "address", "name", "phone"):
        assert personal not in body


def test_over_a_real_socket(channels_config, clock, receiver) -> None:
    receiver.accept_then_drop_next()
    with serve_in_thread(create_fake_generic_app(receiver)) as server:
        p = GenericPusher(generic_channel(channels_config, f"{server.base_url}/fba-bridge/events"), clock)
        try:
            with pytest.raises(PushError) as caught:
                p.push_shipment(package())
            assert caught.value.retryable
            p.push_shipment(package())
        finally:
            p.close()
    assert receiver.attempts == 2 and receiver.duplicates == 1 and len(receiver.events) == 1
