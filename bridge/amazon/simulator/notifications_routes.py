"""HTTP routes of the simulator's Notifications API v1 (state and rules in `notifications.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from .notifications import NotificationsService

BASE_PATH = "/notifications/v1"

Dispatch = Callable[[str, Callable[[str], Any]], Response]


def notifications_blueprint(
    service: NotificationsService, dispatch: Dispatch, json_body: Callable[[], Any]
) -> Blueprint:
    """Routes of the Notifications API. `dispatch(operation, handler)` runs Amazon's protocol
    (faults, token, rate limit, headers) and calls `handler(caller)`, where the caller is the
    token's seller key, or `GRANTLESS_PREFIX + scope`."""
    bp = Blueprint("notifications_api", __name__, url_prefix=BASE_PATH)

    @bp.get("/destinations")
    def get_destinations() -> Response:
        return dispatch("getDestinations", lambda _caller: service.get_destinations())

    @bp.post("/destinations")
    def create_destination() -> Response:
        return dispatch("createDestination", lambda _caller: service.create_destination(json_body()))

    @bp.get("/destinations/<destination_id>")
    def get_destination(destination_id: str) -> Response:
        return dispatch("getDestination", lambda _caller: service.get_destination(destination_id))

    @bp.delete("/destinations/<destination_id>")
    def delete_destination(destination_id: str) -> Response:
        return dispatch("deleteDestination", lambda _caller: service.delete_destination(destination_id))

    @bp.get("/subscriptions/<notification_type>")
    def get_subscription(notification_type: str) -> Response:
        version = request.args.get("payloadVersion")
        return dispatch(
            "getSubscription", lambda caller: service.get_subscription(caller, notification_type, version)
        )

    @bp.post("/subscriptions/<notification_type>")
    def create_subscription(notification_type: str) -> Response:
        return dispatch(
            "createSubscription",
            lambda caller: service.create_subscription(caller, notification_type, json_body()),
        )

    @bp.get("/subscriptions/<notification_type>/<subscription_id>")
    def get_subscription_by_id(notification_type: str, subscription_id: str) -> Response:
        return dispatch(
            "getSubscriptionById",
            lambda _caller: service.get_subscription_by_id(notification_type, subscription_id),
        )

    @bp.delete("/subscriptions/<notification_type>/<subscription_id>")
    def delete_subscription_by_id(notification_type: str, subscription_id: str) -> Response:
        return dispatch(
            "deleteSubscriptionById",
            lambda _caller: service.delete_subscription_by_id(notification_type, subscription_id),
        )

    return bp
