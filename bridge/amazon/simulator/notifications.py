"""The simulator's Notifications API (v1): destinations and subscriptions, as Amazon keeps them.

What Amazon does and the simulator copies:

- Destinations belong to the *application* and are managed with grantless tokens
  (`createDestination`, `getDestinations`, `getDestination`, `deleteDestination`); one destination
  per SQS ARN (a second `createDestination` for the same ARN answers 409 `Conflict`).
- Subscriptions belong to a *seller* (a seller's token) for one notification type and payload
  version; a second `createSubscription` answers 409 `Conflict`, `getSubscription` answers 404 when
  there is none. `deleteSubscriptionById` is grantless.
- A token of the wrong kind gets 403 `Unauthorized`.

HTTP routes are in `notifications_routes.py`; `NotificationPublisher` (`publisher.py`) reads
`subscribers()` to know where to send.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from .auth import GRANTLESS_PREFIX
from .envelope import ApiError, invalid_input, not_found, unauthorized

#: Operations Amazon lists as grantless; every other operation needs a seller's token.
GRANTLESS_OPERATIONS = frozenset(
    {
        "createDestination",
        "getDestinations",
        "getDestination",
        "deleteDestination",
        "getSubscriptionById",
        "deleteSubscriptionById",
    }
)
#: Known notification types and their payload versions (only what the simulator can publish).
NOTIFICATION_TYPES: dict[str, tuple[str, ...]] = {"FULFILLMENT_ORDER_STATUS": ("1.0",)}

_SQS_ARN = re.compile(r"arn:aws:sqs:\S+:\S+:\S+")
_WRONG_TOKEN = "The access token is not valid for this operation: {}"  # noqa: S105 - a message


def check_token_kind(operation: str, caller: str) -> None:
    """A seller's token for a grantless operation, or a grantless one for a seller's, is refused."""
    grantless = caller.startswith(GRANTLESS_PREFIX)
    if operation in GRANTLESS_OPERATIONS and not grantless:
        raise unauthorized(_WRONG_TOKEN.format("it needs a grantless token (scope notifications)"))
    if operation not in GRANTLESS_OPERATIONS and grantless:
        raise unauthorized(_WRONG_TOKEN.format("it needs the selling partner's authorization"))


def conflict(details: str) -> ApiError:
    return ApiError(
        409, "Conflict", "The requested resource conflict with a resource in the server.", details
    )


@dataclass(frozen=True)
class Subscriber:
    """Where one seller's subscription sends a notification type."""

    seller: str
    subscription_id: str
    destination_id: str
    sqs_arn: str


class NotificationsService:
    """Destinations and subscriptions, thread-safe; one instance per `Simulator`."""

    def __init__(self, application_id: str) -> None:
        self.application_id = application_id
        self._lock = threading.Lock()
        self._destinations: dict[str, dict[str, Any]] = {}
        self._subscriptions: dict[tuple[str, str], dict[str, Any]] = {}  # (seller, type) -> row

    def reset(self) -> None:
        with self._lock:
            self._destinations.clear()
            self._subscriptions.clear()

    # ------------------------------------------------------------------ destinations (grantless)

    def get_destinations(self) -> dict[str, Any]:
        with self._lock:
            return {"payload": [dict(d) for d in self._destinations.values()]}

    def create_destination(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise invalid_input("name is required.")
        if len(body["name"]) > 256:
            raise invalid_input("name must be at most 256 characters.")
        spec = body.get("resourceSpecification")
        sqs = spec.get("sqs") if isinstance(spec, dict) else None
        arn = sqs.get("arn") if isinstance(sqs, dict) else None
        if not isinstance(arn, str) or len(arn) > 1000 or not _SQS_ARN.fullmatch(arn):
            raise invalid_input(
                "resourceSpecification.sqs.arn is required and must be an SQS queue ARN.",
                "The simulator supports SQS destinations only.",
            )
        with self._lock:
            if any(d["resource"]["sqs"]["arn"] == arn for d in self._destinations.values()):
                raise conflict(f"A destination with arn {arn} already exists for the application")
            row = {
                "name": body["name"],
                "destinationId": str(uuid.uuid4()),
                "resource": {"sqs": {"arn": arn}},
            }
            self._destinations[row["destinationId"]] = row
            return {"payload": dict(row)}

    def get_destination(self, destination_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._destinations.get(destination_id)
            if row is None:
                raise not_found("The destination was not found.")
            return {"payload": dict(row)}

    def delete_destination(self, destination_id: str) -> dict[str, Any]:
        with self._lock:
            if destination_id not in self._destinations:
                raise not_found("The destination was not found.")
            if any(s["destinationId"] == destination_id for s in self._subscriptions.values()):
                raise ApiError(
                    403, "Unauthorized", "The requested action is forbidden.", "Destination has subscriptions"
                )
            del self._destinations[destination_id]
        return {}

    # ------------------------------------------------------------------ subscriptions

    def get_subscription(self, seller: str, notification_type: str, payload_version: str | None) -> Any:
        self._check_type(notification_type, payload_version)
        with self._lock:
            row = self._subscriptions.get((seller, notification_type))
            if row is None or (payload_version and row["payloadVersion"] != payload_version):
                raise not_found("The subscription was not found.")
            return {"payload": dict(row)}

    def create_subscription(self, seller: str, notification_type: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid_input("The request body is required.")
        for key in ("payloadVersion", "destinationId"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise invalid_input(f"{key} is required.")
        self._check_type(notification_type, body["payloadVersion"])
        with self._lock:
            if body["destinationId"] not in self._destinations:
                raise invalid_input("The destinationId does not exist.")
            if (seller, notification_type) in self._subscriptions:
                raise conflict(f"A subscription for {notification_type} already exists")
            row = {
                "subscriptionId": str(uuid.uuid4()),
                "payloadVersion": body["payloadVersion"],
                "destinationId": body["destinationId"],
            }
            if isinstance(body.get("processingDirective"), dict):
                row["processingDirective"] = body["processingDirective"]
            self._subscriptions[(seller, notification_type)] = row
            return {"payload": dict(row)}

    def get_subscription_by_id(self, notification_type: str, subscription_id: str) -> dict[str, Any]:
        self._check_type(notification_type, None)
        with self._lock:
            for (_, kind), row in self._subscriptions.items():
                if kind == notification_type and row["subscriptionId"] == subscription_id:
                    return {"payload": dict(row)}
        raise not_found("The subscription was not found.")

    def delete_subscription_by_id(self, notification_type: str, subscription_id: str) -> dict[str, Any]:
        self._check_type(notification_type, None)
        with self._lock:
            for key, row in list(self._subscriptions.items()):
                if key[1] == notification_type and row["subscriptionId"] == subscription_id:
                    del self._subscriptions[key]
                    return {}
        raise not_found("The subscription was not found.")

    def subscribers(self, notification_type: str) -> list[Subscriber]:
        """Every seller subscribed to `notification_type`, with the destination's SQS ARN."""
        with self._lock:
            return [
                Subscriber(
                    seller,
                    row["subscriptionId"],
                    row["destinationId"],
                    self._destinations[row["destinationId"]]["resource"]["sqs"]["arn"],
                )
                for (seller, kind), row in self._subscriptions.items()
                if kind == notification_type and row["destinationId"] in self._destinations
            ]

    @staticmethod
    def _check_type(notification_type: str, payload_version: str | None) -> None:
        versions = NOTIFICATION_TYPES.get(notification_type)
        if versions is None:
            raise invalid_input(f"{notification_type} is not a supported notification type.")
        if payload_version and payload_version not in versions:
            raise invalid_input(f"payloadVersion {payload_version} is not supported for {notification_type}.")
