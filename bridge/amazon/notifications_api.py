"""Amazon's Notifications API v1: the destinations and subscriptions that make Amazon send us
FULFILLMENT_ORDER_STATUS notifications.

Two kinds of token, one client each: destinations (and `deleteSubscriptionById`) are *grantless*
operations, called with the app's own token (`client_credentials`, scope
`sellingpartnerapi::notifications`); subscriptions belong to the seller and are called with the
seller's token. Both clients share the transport, the rate buckets and the retry policy of
`SpApiClient`.

Amazon answers a second `createDestination` for the same SQS ARN, or a second
`createSubscription` for the same notification type, with 409 `Conflict`: callers read back
instead (see `subscriptions.py`), which is also why the creates may be retried safely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from bridge.channels import AmazonAccount
from bridge.clock import Clock

from .auth import NOTIFICATIONS_SCOPE, grantless_auth
from .errors import NotFound
from .limiter import Buckets
from .spapi import Operation, SpApiClient, SpApiResponse, unexpected

T = TypeVar("T")

FULFILLMENT_ORDER_STATUS = "FULFILLMENT_ORDER_STATUS"
#: The payload version of FULFILLMENT_ORDER_STATUS (the only one Amazon publishes).
PAYLOAD_VERSION = "1.0"

_BASE = "/notifications/v1"


class NotificationsOps:
    """Notifications API v1 operations; `name` is also the rate-bucket name (1 request/s, burst 5)."""

    GET_DESTINATIONS = Operation("getDestinations", "GET", _BASE + "/destinations", idempotent=True)
    CREATE_DESTINATION = Operation("createDestination", "POST", _BASE + "/destinations", idempotent=False)
    GET_SUBSCRIPTION = Operation(
        "getSubscription", "GET", _BASE + "/subscriptions/{notificationType}", idempotent=True
    )
    CREATE_SUBSCRIPTION = Operation(
        "createSubscription", "POST", _BASE + "/subscriptions/{notificationType}", idempotent=False
    )
    DELETE_SUBSCRIPTION = Operation(
        "deleteSubscriptionById",
        "DELETE",
        _BASE + "/subscriptions/{notificationType}/{subscriptionId}",
        idempotent=True,
    )


@dataclass(frozen=True)
class Destination:
    destination_id: str
    name: str
    sqs_arn: str | None  # None for an EventBridge destination

    @classmethod
    def from_api(cls, data: Any) -> Destination:
        sqs = (data.get("resource") or {}).get("sqs") or {}
        return cls(str(data["destinationId"]), str(data["name"]), sqs.get("arn"))


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    destination_id: str
    payload_version: str

    @classmethod
    def from_api(cls, data: Any) -> Subscription:
        return cls(str(data["subscriptionId"]), str(data["destinationId"]), str(data["payloadVersion"]))


def _parse(op: Operation, response: SpApiResponse, parse: Callable[[Any], T]) -> T:
    try:
        payload = response.payload
        if payload is None:
            raise KeyError("payload")
        return parse(payload)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise unexpected(op, type(exc).__name__, response.request_id) from exc


class NotificationsApi:
    """Typed Notifications API operations for one seller account (and its app)."""

    ops = NotificationsOps

    def __init__(
        self, seller: SpApiClient, grantless: SpApiClient, token_http: httpx.Client | None = None
    ) -> None:
        self.seller = seller
        self.grantless = grantless
        self._token_http = token_http

    def __repr__(self) -> str:
        return f"NotificationsApi({self.seller!r})"

    def close(self) -> None:
        self.seller.close()
        self.grantless.close()
        if self._token_http is not None:
            self._token_http.close()

    def destinations(self) -> list[Destination]:
        """Every destination of the application (all sellers share them)."""
        response = self.grantless.call(self.ops.GET_DESTINATIONS)
        return _parse(self.ops.GET_DESTINATIONS, response, lambda p: [Destination.from_api(d) for d in p])

    def create_destination(self, name: str, sqs_arn: str) -> Destination:
        body = {"name": name, "resourceSpecification": {"sqs": {"arn": sqs_arn}}}
        response = self.grantless.call(self.ops.CREATE_DESTINATION, json=body, retry_ambiguous=True)
        return _parse(self.ops.CREATE_DESTINATION, response, Destination.from_api)

    def subscription(self, notification_type: str = FULFILLMENT_ORDER_STATUS) -> Subscription | None:
        """The seller's subscription to `notification_type`, or None if there is none."""
        try:
            response = self.seller.call(
                self.ops.GET_SUBSCRIPTION,
                path_params={"notificationType": notification_type},
                params={"payloadVersion": PAYLOAD_VERSION},
            )
        except NotFound:
            return None
        return _parse(self.ops.GET_SUBSCRIPTION, response, Subscription.from_api)

    def create_subscription(
        self, destination_id: str, notification_type: str = FULFILLMENT_ORDER_STATUS
    ) -> Subscription:
        body = {"payloadVersion": PAYLOAD_VERSION, "destinationId": destination_id}
        response = self.seller.call(
            self.ops.CREATE_SUBSCRIPTION,
            path_params={"notificationType": notification_type},
            json=body,
            retry_ambiguous=True,
        )
        return _parse(self.ops.CREATE_SUBSCRIPTION, response, Subscription.from_api)

    def delete_subscription(
        self, subscription_id: str, notification_type: str = FULFILLMENT_ORDER_STATUS
    ) -> None:
        self.grantless.call(
            self.ops.DELETE_SUBSCRIPTION,
            path_params={"notificationType": notification_type, "subscriptionId": subscription_id},
        )


def notifications_client(
    account: AmazonAccount,
    clock: Clock,
    buckets: Buckets,
    transport: httpx.BaseTransport | None = None,
) -> NotificationsApi:
    """Both clients for one account. `transport` routes them elsewhere (e.g. the simulator)."""
    seller = SpApiClient(account, clock, buckets, transport=transport)
    token_http = httpx.Client(transport=transport, follow_redirects=False)
    grantless = SpApiClient(
        account, clock, buckets, transport=transport, auth=grantless_auth(account, clock, token_http)
    )
    return NotificationsApi(seller, grantless, token_http)


__all__ = [
    "FULFILLMENT_ORDER_STATUS",
    "NOTIFICATIONS_SCOPE",
    "PAYLOAD_VERSION",
    "Destination",
    "NotificationsApi",
    "NotificationsOps",
    "Subscription",
    "notifications_client",
]
