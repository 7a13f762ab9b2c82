"""WooCommerce push-back against the fake store: in process over httpx.WSGITransport, and once
over a real socket."""

from __future__ import annotations

import base64
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
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app
from bridge.storefronts.push import OrderNote, PushError, PushLine, ShipmentPush, StorefrontRejected
from bridge.storefronts.woocommerce_push import WooCommercePusher, marker

KEY, SECRET = "ck_test_0123456789abcdef", "cs_test_fedcba9876543210"
BASE = "http://woo.test"


@pytest.fixture
def fake(clock: ManualClock) -> FakeWooCommerce:
    store = FakeWooCommerce(KEY, SECRET, clock=clock)
    store.add_order(700)
    return store


def woo_channel(channels_config: ChannelsConfig, base_url: str = BASE, **storefront: Any) -> Channel:
    channel = channels_config.channels["woo-main"]
    return replace(channel, storefront=replace(channel.storefront, base_url=base_url, **storefront))


@pytest.fixture
def channel(channels_config: ChannelsConfig) -> Channel:
    from bridge.settings import Secret

    return woo_channel(channels_config, consumer_key=Secret(KEY), consumer_secret=Secret(SECRET))


@pytest.fixture
def pusher(channel: Channel, clock: ManualClock, fake: FakeWooCommerce) -> Iterator[WooCommercePusher]:
    p = WooCommercePusher(channel, clock, httpx.WSGITransport(app=create_fake_woocommerce_app(fake)))
    yield p
    p.close()


def package(
    n: int = 1,
    *,
    carrier: str = "UPS",
    all_shipped: bool = True,
    order: str = "700",
    url: str | None = "https://track.example/1Z999AA10000000001",
) -> ShipmentPush:
    return ShipmentPush(
        order_external_id=order,
        display_id=f"#{order}",
        package_key=f"woo-main-{order}:PKG{n}",
        carrier=carrier,
        tracking_number=f"1Z999AA1000000000{n}",
        tracking_url=url,
        lines=(PushLine("315", "MUG-WHITE", 2), PushLine("316", "POSTER-A2", 1)),
        shipped_at=datetime(2026, 11, 24, 23, 30, tzinfo=UTC),
        all_shipped=all_shipped,
    )


def test_last_package_adds_tracking_then_note_then_completes(pusher, fake) -> None:
    result = pusher.push_shipment(package())

    order = fake.order(700)
    [tracking] = order.trackings
    assert (tracking.tracking_provider, tracking.tracking_number, tracking.date_shipped) == (
        "UPS",
        "1Z999AA10000000001",
        "2026-11-24",
    )
    assert tracking.tracking_link.startswith("https://www.ups.com/")  # a provider the extension lists
    [note] = order.notes
    assert "UPS" in note.note and "1Z999AA10000000001" in note.note
    assert "https://track.example/1Z999AA10000000001" in note.note
    assert "MUG-WHITE x 2" in note.note and "POSTER-A2 x 1" in note.note
    assert marker("woo-main-700:PKG1") in note.note
    assert note.customer_note is True  # the channel's notify_customer
    assert order.status == "completed" and order.status_changes == [("processing", "completed")]
    assert result.storefront_ref == tracking.tracking_id
    assert result.details["created"] == ["tracking", "note", "status"]
    # the status changes last, so WooCommerce's "Completed order" email lists the tracking
    routes = [c.route for c in fake.calls if c.method != "GET"]
    assert routes == ["create_tracking", "create_note", "update_order"]


def test_each_package_gets_its_own_tracking_and_note_and_the_last_completes(pusher, fake) -> None:
    pusher.push_shipment(package(1, all_shipped=False))
    pusher.push_shipment(package(2, all_shipped=True))

    order = fake.order(700)
    assert [t.tracking_number for t in order.trackings] == ["1Z999AA10000000001", "1Z999AA10000000002"]
    assert len(order.notes) == 2
    assert order.status_changes == [("processing", "completed")]
    assert [c.route for c in fake.calls].count("update_order") == 1


def test_partial_shipment_does_not_complete(pusher, fake) -> None:
    pusher.push_shipment(package(all_shipped=False))
    assert fake.order(700).status == "processing"
    assert fake.calls_of("update_order") == [] and fake.calls_of("get_order") == []


def test_a_carrier_the_extension_does_not_list_is_a_custom_provider_named_in_words(pusher, fake) -> None:
    pusher.push_shipment(package(carrier="AMZN_US", url="https://track.amazon.com/tracking/TBA1"))

    [tracking] = fake.order(700).trackings
    assert tracking.tracking_provider == ""
    assert tracking.custom_tracking_provider == "Amazon Logistics", "not Amazon's raw code"
    assert tracking.custom_tracking_link == "https://track.amazon.com/tracking/TBA1"


def test_an_unknown_carrier_code_passes_through_as_a_custom_provider(pusher, fake) -> None:
    pusher.push_shipment(package(carrier="ACME_FREIGHT", url="https://track.example/1"))
    [tracking] = fake.order(700).trackings
    assert tracking.custom_tracking_provider == "ACME_FREIGHT"


@pytest.mark.parametrize(("carrier", "provider"), [("FEDEX", "Fedex"), ("usps", "USPS"), ("DHL", "DHL")])
def test_known_carriers_use_the_extensions_provider_names(pusher, fake, carrier, provider) -> None:
    pusher.push_shipment(package(carrier=carrier))
    [tracking] = fake.order(700).trackings
    assert tracking.provider_name == provider and tracking.tracking_link  # the fake matched it


def test_without_the_extension_only_a_note_is_added(channel, clock, fake) -> None:
    fake.shipment_tracking = False
    plain = replace(channel, storefront=replace(channel.storefront, shipment_tracking_extension=False))
    with_notes = WooCommercePusher(plain, clock, httpx.WSGITransport(app=create_fake_woocommerce_app(fake)))
    result = with_notes.push_shipment(package())

    order = fake.order(700)
    assert order.trackings == [] and len(order.notes) == 1 and order.status == "completed"
    assert result.storefront_ref == str(order.notes[0].id)
    assert with_notes.find_existing(package()) is not None


def test_extension_enabled_but_missing_is_a_clear_permanent_error(pusher, fake) -> None:
    fake.shipment_tracking = False
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    assert caught.value.code == "tracking_extension_missing" and not caught.value.retryable


def test_retry_after_a_dropped_tracking_answer_creates_no_second_tracking(pusher, fake) -> None:
    fake.accept_then_drop_next("create_tracking")
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    assert caught.value.ambiguous and caught.value.retryable
    assert len(fake.order(700).trackings) == 1 and fake.order(700).notes == []

    # the stage's retry: find_existing sees an incomplete push, push_shipment finishes it
    assert pusher.find_existing(package()) is None
    result = pusher.push_shipment(package())

    order = fake.order(700)
    assert len(order.trackings) == 1 and len(order.notes) == 1 and order.status == "completed"
    assert result.details["created"] == ["note", "status"]
    assert result.storefront_ref == order.trackings[0].tracking_id
    assert len(fake.calls_of("create_tracking")) == 1
    assert pusher.find_existing(package()) is not None


def test_crash_between_tracking_and_note_completes_just_the_note(pusher, fake) -> None:
    # an earlier worker created the tracking entry and died before the note
    fake.add_tracking(fake.order(700), {"tracking_provider": "UPS", "tracking_number": "1z999aa10000000001"})

    result = pusher.push_shipment(package())

    order = fake.order(700)
    assert len(order.trackings) == 1 and len(order.notes) == 1
    assert result.details["created"] == ["note", "status"]
    assert fake.calls_of("create_tracking") == []


def test_note_failure_after_tracking_is_retried_without_a_second_tracking(pusher, fake) -> None:
    fake.fail_next("create_note", 503)
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    assert caught.value.code == "server_error" and caught.value.ambiguous

    pusher.push_shipment(package())
    order = fake.order(700)
    assert len(order.trackings) == 1 and len(order.notes) == 1 and order.status == "completed"


def test_dropped_completion_is_found_complete_on_retry(pusher, fake) -> None:
    fake.accept_then_drop_next("update_order")
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    assert not caught.value.ambiguous  # a PUT of a fixed status may simply be repeated

    found = pusher.find_existing(package())
    assert found is not None and found.details["order_status"] == "completed"
    assert fake.order(700).status_changes == [("processing", "completed")]


def test_a_whole_push_repeated_changes_nothing(pusher, fake) -> None:
    pusher.push_shipment(package())
    again = pusher.push_shipment(package())
    order = fake.order(700)
    assert len(order.trackings) == 1 and len(order.notes) == 1
    assert order.status_changes == [("processing", "completed")]
    assert again.details["created"] == [] and again.details["order_status"] == "kept:completed"


def test_a_cancelled_order_is_not_resurrected_by_its_last_package(pusher, fake) -> None:
    fake.order(700).status = "cancelled"
    result = pusher.push_shipment(package())
    assert fake.order(700).status == "cancelled" and fake.calls_of("update_order") == []
    assert result.details["order_status"] == "kept:cancelled"


def test_find_existing_is_none_before_any_push(pusher) -> None:
    assert pusher.find_existing(package()) is None


def test_throttling_is_retryable_with_retry_after(pusher, fake) -> None:
    fake.fail_next("list_notes", 429, retry_after=7)
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    err = caught.value
    assert (err.code, err.status, err.retryable, err.retry_after, err.ambiguous) == (
        "throttled",
        429,
        True,
        7.0,
        False,
    )
    assert fake.order(700).notes == []


def test_unavailable_store_is_retryable_with_retry_after(pusher, fake) -> None:
    fake.fail_next("create_tracking", 503, retry_after=30)
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package())
    err = caught.value
    assert (err.code, err.retryable, err.retry_after) == ("server_error", True, 30.0)
    assert err.ambiguous  # a POST the store may have acted on


def test_revoked_key_is_rejected_for_an_operator(pusher, fake) -> None:
    fake.revoke()
    with pytest.raises(StorefrontRejected) as caught:
        pusher.push_shipment(package())
    assert caught.value.status == 401 and not caught.value.retryable


def test_read_only_key_is_rejected_on_the_first_write(pusher, fake) -> None:
    fake.key_permissions = "read"
    with pytest.raises(StorefrontRejected):
        pusher.push_shipment(package())
    assert fake.order(700).trackings == []


def test_wrong_secret_is_rejected(channels_config, clock, fake) -> None:
    from bridge.settings import Secret

    wrong = woo_channel(channels_config, consumer_key=Secret(KEY), consumer_secret=Secret("cs_wrong"))
    p = WooCommercePusher(wrong, clock, httpx.WSGITransport(app=create_fake_woocommerce_app(fake)))
    with pytest.raises(StorefrontRejected):
        p.push_shipment(package())


def test_unknown_order_is_a_permanent_error(pusher) -> None:
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(order="999"))
    assert caught.value.code == "order_not_found" and not caught.value.retryable


def test_notes_are_added_once(pusher, fake) -> None:
    note = OrderNote("700", "woo-main-700:cancel-unfulfillable", "Amazon could not fulfil MUG-WHITE.")
    first = pusher.add_note(note)
    second = pusher.add_note(note)

    [stored] = fake.order(700).notes
    assert first.storefront_ref == second.storefront_ref == str(stored.id)
    assert (first.details["created"], second.details["created"]) == (True, False)
    assert stored.note.startswith("Amazon could not fulfil MUG-WHITE.")
    assert marker("woo-main-700:cancel-unfulfillable") in stored.note
    assert stored.customer_note is False


def test_customer_visible_note(pusher, fake) -> None:
    pusher.add_note(OrderNote("700", "k1", "Your order is on its way.", customer_visible=True))
    assert fake.order(700).notes[0].customer_note is True


def test_notify_customer_off_keeps_the_note_private(channel, clock, fake) -> None:
    quiet = replace(channel, storefront=replace(channel.storefront, notify_customer=False))
    p = WooCommercePusher(quiet, clock, httpx.WSGITransport(app=create_fake_woocommerce_app(fake)))
    p.push_shipment(package())
    assert fake.order(700).notes[0].customer_note is False


def test_note_marker_survives_html_escaping(pusher, fake) -> None:
    key = "woo-main-700:A&B"
    fake.add_note(fake.order(700), {"note": "earlier\n[fba-bridge:woo-main-700:A&amp;B]"})
    assert pusher.add_note(OrderNote("700", key, "x")).details["created"] is False


def test_credentials_and_personal_data_stay_out_of_logs_and_errors(pusher, fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    pusher.push_shipment(package(1, all_shipped=False))
    fake.revoke()
    with pytest.raises(StorefrontRejected) as caught:
        pusher.push_shipment(package(2))

    basic = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    text = caplog.text + str(caught.value)
    for secret in (KEY, SECRET, basic):
        assert secret not in text
    assert "woo-main-700:PKG1" in caplog.text  # the push-back is logged, by keys only
    note = fake.order(700).notes[0].note
    for personal in ("@", "John", "Doe", "Market", "555"):
        assert personal not in note


def test_over_a_real_socket(channels_config, clock, fake) -> None:
    from bridge.settings import Secret

    fake.accept_then_drop_next("create_tracking")
    with serve_in_thread(create_fake_woocommerce_app(fake)) as server:
        real = woo_channel(
            channels_config, server.base_url, consumer_key=Secret(KEY), consumer_secret=Secret(SECRET)
        )
        p = WooCommercePusher(real, clock)
        try:
            with pytest.raises(PushError) as caught:
                p.push_shipment(package())
            assert caught.value.code == "no_answer" and caught.value.ambiguous
            assert p.find_existing(package()) is None
            p.push_shipment(package())
            assert p.find_existing(package()) is not None
        finally:
            p.close()
    order = fake.order(700)
    assert len(order.trackings) == 1 and len(order.notes) == 1 and order.status == "completed"
