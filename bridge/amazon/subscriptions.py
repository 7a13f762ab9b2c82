"""`fba-bridge amazon subscribe`: make Amazon send a seller's FULFILLMENT_ORDER_STATUS
notifications to the operator's SQS queue, idempotently.

Running it again changes nothing: a destination with the same ARN is reused (destinations belong
to the app, so another seller of the same app may have created it), and so is the seller's
subscription when it already points there. A subscription that points at another destination is
reported, not moved, unless the operator asks for `replace`. A 409 from a create (a concurrent
run, or a retried create that had worked) is answered by reading back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SpApiError
from .notifications_api import FULFILLMENT_ORDER_STATUS, Destination, NotificationsApi, Subscription

#: Amazon's pattern for `SqsResource.arn` (Notifications API model), and its length limit.
SQS_ARN = re.compile(r"arn:aws:sqs:(\S+):(\S+):(\S+)")
MAX_ARN = 1000
MAX_NAME = 256


class SubscriptionError(Exception):
    """Subscribing cannot go on; the message says what to do. Carries a stable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SubscribeResult:
    destination: Destination
    subscription: Subscription
    destination_created: bool
    subscription_created: bool
    replaced_subscription_id: str | None = None


def check_sqs_arn(arn: str) -> str:
    """The ARN, or a `SubscriptionError` saying what a queue ARN looks like."""
    arn = arn.strip()
    if len(arn) > MAX_ARN or not SQS_ARN.fullmatch(arn):
        raise SubscriptionError(
            "invalid_arn",
            "--sqs-arn must be an SQS queue ARN like arn:aws:sqs:us-east-1:123456789012:fba-bridge "
            "(the queue's Details tab in the AWS console, or `aws sqs get-queue-attributes "
            "--attribute-names QueueArn`)",
        )
    return arn


def destination_name(sqs_arn: str) -> str:
    """A readable destination name: the queue's name, so Seller Central lists it recognisably."""
    match = SQS_ARN.fullmatch(sqs_arn)
    queue = match.group(3) if match else "queue"
    return f"fba-bridge {queue}"[:MAX_NAME]


def _is_conflict(exc: SpApiError) -> bool:
    return exc.status == 409


def ensure_destination(api: NotificationsApi, sqs_arn: str) -> tuple[Destination, bool]:
    """(the destination for `sqs_arn`, whether it was created now)."""
    for destination in api.destinations():
        if destination.sqs_arn == sqs_arn:
            return destination, False
    try:
        return api.create_destination(destination_name(sqs_arn), sqs_arn), True
    except SpApiError as exc:
        if not _is_conflict(exc):
            raise
    for destination in api.destinations():
        if destination.sqs_arn == sqs_arn:
            return destination, False
    raise SubscriptionError(
        "destination_conflict",
        "Amazon says a destination for this queue exists but does not list it; try again in a minute",
    )


def subscribe(api: NotificationsApi, sqs_arn: str, *, replace: bool = False) -> SubscribeResult:
    """Make the seller's FULFILLMENT_ORDER_STATUS notifications go to `sqs_arn`."""
    sqs_arn = check_sqs_arn(sqs_arn)
    destination, destination_created = ensure_destination(api, sqs_arn)
    existing = api.subscription(FULFILLMENT_ORDER_STATUS)
    replaced = None
    if existing is not None and existing.destination_id == destination.destination_id:
        return SubscribeResult(destination, existing, destination_created, False)
    if existing is not None:
        if not replace:
            raise SubscriptionError(
                "subscribed_elsewhere",
                f"the seller's {FULFILLMENT_ORDER_STATUS} subscription {existing.subscription_id} sends to "
                f"destination {existing.destination_id}, not to this queue; run again with --replace to "
                "move it (notifications stop going to the old destination)",
            )
        api.delete_subscription(existing.subscription_id, FULFILLMENT_ORDER_STATUS)
        replaced = existing.subscription_id
    try:
        subscription = api.create_subscription(destination.destination_id, FULFILLMENT_ORDER_STATUS)
        created = True
    except SpApiError as exc:
        if not _is_conflict(exc):
            raise
        found = api.subscription(FULFILLMENT_ORDER_STATUS)
        if found is None or found.destination_id != destination.destination_id:
            raise SubscriptionError(
                "subscription_conflict",
                "Amazon refused the subscription as conflicting; `fba-bridge amazon subscriptions ACCOUNT` "
                "shows what exists",
            ) from exc
        subscription, created = found, False
    return SubscribeResult(destination, subscription, destination_created, created, replaced)


@dataclass(frozen=True)
class SubscriptionState:
    destinations: list[Destination]
    subscription: Subscription | None

    @property
    def destination(self) -> Destination | None:
        if self.subscription is None:
            return None
        return next(
            (d for d in self.destinations if d.destination_id == self.subscription.destination_id), None
        )


def describe(api: NotificationsApi) -> SubscriptionState:
    """The app's destinations and the seller's FULFILLMENT_ORDER_STATUS subscription."""
    return SubscriptionState(api.destinations(), api.subscription(FULFILLMENT_ORDER_STATUS))
