"""SP-API's error envelope and the errors the simulator answers with.

Amazon answers every failed SP-API call with `{"errors": [{"code", "message", "details"}]}`; the
code is the stable part a client may branch on, the message is for humans. Messages here never
echo request values, so a client may log them without leaking personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACCESS_DENIED = "Access to requested resource is denied."
TOKEN_MISSING = "Access token is missing in the request header."  # noqa: S105 - a message
TOKEN_INVALID = "The access token you provided is revoked, malformed or invalid."  # noqa: S105
TOKEN_EXPIRED = "The access token you provided has expired."  # noqa: S105
QUOTA_EXCEEDED = "You exceeded your quota for the requested resource."
ORDER_NOT_FOUND = "Requested order not found"


class ApiError(Exception):
    """An SP-API failure: HTTP status plus one envelope entry (and optional extra headers)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.code, "message": self.message, "details": self.details}]}


def invalid_input(message: str, details: str = "") -> ApiError:
    return ApiError(400, "InvalidInput", message, details)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


def order_not_found(seller_fulfillment_order_id: str, *, as_invalid_input: bool) -> ApiError:
    """An unknown `sellerFulfillmentOrderId`. Amazon answers `getFulfillmentOrder` for it with 400
    `InvalidInput` "Requested order not found", not the 404 its model lists."""
    if as_invalid_input:
        return invalid_input(ORDER_NOT_FOUND)
    return not_found(f"Fulfillment order {seller_fulfillment_order_id} was not found.")


def unauthorized(details: str) -> ApiError:
    """Amazon answers every token problem with 403 `Unauthorized`; `details` says which one."""
    return ApiError(403, "Unauthorized", ACCESS_DENIED, details)


def quota_exceeded(headers: Mapping[str, str] | None = None) -> ApiError:
    return ApiError(429, "QuotaExceeded", QUOTA_EXCEEDED, "", headers)


_DEFAULT_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("InvalidInput", "Request has missing or invalid parameters and cannot be parsed."),
    401: ("Unauthorized", ACCESS_DENIED),
    403: ("Unauthorized", ACCESS_DENIED),
    404: ("NotFound", "The specified resource does not exist."),
    429: ("QuotaExceeded", QUOTA_EXCEEDED),
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
}


def for_status(
    status: int,
    code: str | None = None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ApiError:
    """An error for an injected fault: the usual code and message for `status` unless overridden."""
    default_code, default_message = _DEFAULT_BY_STATUS.get(status, ("InternalFailure", "Request failed."))
    return ApiError(status, code or default_code, message or default_message, "", headers)
