"""The simulator publishes FULFILLMENT_ORDER_STATUS notifications, as Amazon does, to the SQS
queue of every seller subscription (`notifications.py`).

Orders in the simulator change by the passing of time, not by events, so the publisher compares
what each order looks like now with what it last published: a new order status is an `Order`
event, a new shipment status a `Shipment` event (with its packages), a return Amazon processed a
`Return` event. Changes while nobody is subscribed are not delivered later, as with Amazon.

`publish_due()` does one comparison (tests call it after advancing the clock); `start()` runs it
every `interval_s` seconds in a thread (the `fba-bridge simulator --sqs-endpoint` process). Sending
goes through a `QueueSink`; `SqsSink` is boto3 against any SQS endpoint (moto, ElasticMQ, AWS).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .render import iso

if TYPE_CHECKING:
    from .state import Simulator

log = logging.getLogger(__name__)

NOTIFICATION_TYPE = "FULFILLMENT_ORDER_STATUS"
SIMULATED_SELLER_ID = "A2SIMULATEDSELLER"


class QueueSink(Protocol):
    def send(self, queue_arn: str, body: str) -> None: ...


class SqsSink:
    """Sends to SQS queues named by ARN (`arn:aws:sqs:<region>:<account>:<name>`) with boto3.

    Credentials come from boto3's own chain (for a local SQS any values do)."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def send(self, queue_arn: str, body: str) -> None:
        parts = queue_arn.split(":")
        if len(parts) != 6:
            raise ValueError("not an SQS queue ARN")
        region, account, name = parts[3], parts[4], parts[5]
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                import boto3

                client = self._clients[region] = boto3.client(
                    "sqs", region_name=region, endpoint_url=self._endpoint_url
                )
            url = self._urls.get(queue_arn)
            if url is None:
                url = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
                self._urls[queue_arn] = url
        client.send_message(QueueUrl=url, MessageBody=body)


@dataclass(frozen=True)
class _Seen:
    status: str
    shipments: tuple[tuple[str, str], ...]
    returns: frozenset[str]


def order_events(previous: _Seen | None, order: dict[str, Any]) -> list[dict[str, Any]]:
    """The notification payloads (`FulfillmentOrderStatusNotification`) that turn `previous` into
    the `getFulfillmentOrder` payload `order`; pure."""
    header = order["fulfillmentOrder"]
    base = {
        "SellerId": SIMULATED_SELLER_ID,
        "SellerFulfillmentOrderId": header["sellerFulfillmentOrderId"],
        "FulfillmentOrderStatus": header["fulfillmentOrderStatus"],
        "StatusUpdatedDateTime": header["statusUpdatedDate"],
    }
    events: list[dict[str, Any]] = []
    if previous is None or previous.status != header["fulfillmentOrderStatus"]:
        events.append({**base, "EventType": "Order"})
    before = dict(previous.shipments) if previous else {}
    for shipment in order.get("fulfillmentShipments") or []:
        if before.get(shipment["amazonShipmentId"]) == shipment["fulfillmentShipmentStatus"]:
            continue
        events.append({**base, "EventType": "Shipment", "FulfillmentShipment": _shipment(shipment)})
    skus = {
        i["sellerFulfillmentOrderItemId"]: i["sellerSku"] for i in order.get("fulfillmentOrderItems") or []
    }
    returned = previous.returns if previous else frozenset()
    for item in order.get("returnItems") or []:
        if item["status"] != "Processed" or item["sellerReturnItemId"] in returned:
            continue
        events.append(
            {
                **base,
                "EventType": "Return",
                "FulfillmentReturnItem": {
                    "ReceivedDateTime": item["statusChangedDate"],
                    "ReturnedQuantity": 1,
                    "SellerSKU": skus.get(item["sellerFulfillmentOrderItemId"], ""),
                },
            }
        )
    return events


def _shipment(shipment: dict[str, Any]) -> dict[str, Any]:
    packages = [
        {
            "PackageNumber": p["packageNumber"],
            "CarrierCode": p["carrierCode"],
            "TrackingNumber": p["trackingNumber"],
        }
        for p in shipment.get("fulfillmentShipmentPackage") or []
    ]
    out: dict[str, Any] = {
        "FulfillmentShipmentStatus": shipment["fulfillmentShipmentStatus"],
        "AmazonShipmentId": shipment["amazonShipmentId"],
        "FulfillmentShipmentPackages": packages,
    }
    if shipment.get("estimatedArrivalDate"):
        out["EstimatedArrivalDateTime"] = shipment["estimatedArrivalDate"]
    return out


def _seen(order: dict[str, Any]) -> _Seen:
    return _Seen(
        order["fulfillmentOrder"]["fulfillmentOrderStatus"],
        tuple(
            (s["amazonShipmentId"], s["fulfillmentShipmentStatus"])
            for s in order.get("fulfillmentShipments") or []
        ),
        frozenset(
            r["sellerReturnItemId"] for r in order.get("returnItems") or [] if r["status"] == "Processed"
        ),
    )


class NotificationPublisher:
    def __init__(self, sim: Simulator, sink: QueueSink) -> None:
        self._sim = sim
        self._sink = sink
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_due(self) -> int:
        """Send a notification for every change since the last call; returns how many were sent.
        A change whose send failed is tried again next time."""
        sent = 0
        with self._lock:
            subscribers = self._sim.notifications.subscribers(NOTIFICATION_TYPE)
            for summary in self._sim.orders_summary():
                sfo_id = summary["sellerFulfillmentOrderId"]
                order = self._sim.get_fulfillment_order(sfo_id)["payload"]
                events = order_events(self._seen.get(sfo_id), order)
                try:
                    for event in events:
                        for subscriber in subscribers:
                            self._sink.send(
                                subscriber.sqs_arn, self._document(event, subscriber.subscription_id)
                            )
                            sent += 1
                except Exception as exc:
                    log.warning("could not publish a notification: %s", type(exc).__name__)
                    continue
                self._seen[sfo_id] = _seen(order)
        return sent

    def _document(self, event: dict[str, Any], subscription_id: str) -> str:
        now = iso(self._sim.now())
        return json.dumps(
            {
                "NotificationVersion": "1.0",
                "NotificationType": NOTIFICATION_TYPE,
                "PayloadVersion": "1.0",
                "EventTime": now,
                "Payload": {"FulfillmentOrderStatusNotification": event},
                "NotificationMetadata": {
                    "ApplicationId": self._sim.notifications.application_id,
                    "SubscriptionId": subscription_id,
                    "PublishTime": now,
                    "NotificationId": str(uuid.uuid4()),
                },
            }
        )

    def start(self, interval_s: float = 1.0) -> None:
        """Publish every `interval_s` real seconds in a daemon thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.publish_due()
                except Exception as exc:
                    log.warning("notification publisher failed: %s", type(exc).__name__)

        self._thread = threading.Thread(target=loop, name="sim-notifications", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
