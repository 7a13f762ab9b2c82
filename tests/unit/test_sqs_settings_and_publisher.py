"""SQS settings (12-factor, no AWS secrets of ours) and the simulator's notification diffing."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.amazon.simulator.publisher import _seen, order_events
from bridge.schemas import schema_problems
from bridge.settings import Settings, SettingsError

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/fba-bridge"


def test_the_region_comes_from_aws_region_or_the_queue_url() -> None:
    assert Settings.from_env({"BRIDGE_SQS_QUEUE_URL": QUEUE}).sqs.region == "eu-west-1"
    env = {"BRIDGE_SQS_QUEUE_URL": QUEUE, "AWS_REGION": "us-west-2"}
    assert Settings.from_env(env).sqs.region == "us-west-2"
    local = {
        "BRIDGE_SQS_QUEUE_URL": "http://127.0.0.1:4566/000000000000/q",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    assert Settings.from_env(local).sqs.region == "us-east-1"
    with pytest.raises(SettingsError, match="AWS_REGION"):
        Settings.from_env({"BRIDGE_SQS_QUEUE_URL": "http://localhost:9324/queue/q"})


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"BRIDGE_SQS_QUEUE_URL": "http://sqs.example.com/1/q"}, "https"),
        ({"BRIDGE_SQS_ENDPOINT_URL": "http://10.0.0.5:4566"}, "https"),
        ({"BRIDGE_SQS_QUEUE_URL": "https://key:secret@sqs.us-east-1.amazonaws.com/1/q"}, "credentials"),
        ({"BRIDGE_SQS_WAIT_S": "30"}, "at most 20"),
        ({"BRIDGE_SQS_VISIBILITY_S": "1"}, "minimum"),
    ],
)
def test_unusable_sqs_settings_say_what_to_fix(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint) as failed:
        Settings.from_env(env)
    assert "secret" not in str(failed.value)


def test_defaults_suit_a_long_poll() -> None:
    sqs = Settings.from_env({}).sqs
    assert (sqs.queue_url, sqs.wait_s, sqs.visibility_s, sqs.max_receives) == ("", 20, 60, 5)


def order(
    status: str, shipments: list[dict[str, Any]] | None = None, returns: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "fulfillmentOrder": {
            "sellerFulfillmentOrderId": "shop-a-1",
            "fulfillmentOrderStatus": status,
            "statusUpdatedDate": "2026-11-23T12:00:00Z",
        },
        "fulfillmentOrderItems": [{"sellerFulfillmentOrderItemId": "1", "sellerSku": "FBA-MUG"}],
        "fulfillmentShipments": shipments or [],
        "returnItems": returns or [],
    }


SHIPPED = {
    "amazonShipmentId": "D1",
    "fulfillmentShipmentStatus": "SHIPPED",
    "estimatedArrivalDate": "2026-11-26T12:00:00Z",
    "fulfillmentShipmentPackage": [{"packageNumber": 7, "carrierCode": "UPS", "trackingNumber": "1Z1"}],
}


def test_each_change_is_one_event_and_nothing_changed_is_none() -> None:
    received = order("Received")
    assert [e["EventType"] for e in order_events(None, received)] == ["Order"]
    assert order_events(_seen(received), received) == []
    pending = order("Processing", [{**SHIPPED, "fulfillmentShipmentStatus": "PENDING"}])
    assert [e["EventType"] for e in order_events(_seen(received), pending)] == ["Order", "Shipment"]
    complete = order("Complete", [SHIPPED])
    events = order_events(_seen(pending), complete)
    assert [e["EventType"] for e in events] == ["Order", "Shipment"]
    assert events[1]["FulfillmentShipment"]["FulfillmentShipmentPackages"] == [
        {"PackageNumber": 7, "CarrierCode": "UPS", "TrackingNumber": "1Z1"}
    ]
    returned = order(
        "Complete",
        [SHIPPED],
        [
            {
                "sellerReturnItemId": "r1",
                "sellerFulfillmentOrderItemId": "1",
                "status": "Processed",
                "statusChangedDate": "2026-11-30T12:00:00Z",
            }
        ],
    )
    (event,) = order_events(_seen(complete), returned)
    assert event["EventType"] == "Return" and event["FulfillmentReturnItem"]["SellerSKU"] == "FBA-MUG"


def test_published_documents_are_what_the_bridge_accepts() -> None:
    for event in order_events(None, order("Complete", [SHIPPED])):
        document = {
            "NotificationVersion": "1.0",
            "NotificationType": "FULFILLMENT_ORDER_STATUS",
            "PayloadVersion": "1.0",
            "EventTime": "2026-11-23T12:00:00Z",
            "Payload": {"FulfillmentOrderStatusNotification": event},
            "NotificationMetadata": {"NotificationId": "n", "PublishTime": "2026-11-23T12:00:00Z"},
        }
        assert schema_problems("amazon/fulfillment_order_status_notification", document) == []
