"""Request validation against our own JSON Schemas in `schemas/spapi/`.

The schemas describe what *we* send Amazon (stricter than Amazon in places, e.g. the
sellerFulfillmentOrderId alphabet), so the simulator rejects exactly what the bridge must never
send, with Amazon's 400 `InvalidInput` envelope. The bridge's client may load the same schemas
through `load_request_schema` to check a request before sending it.

Error messages name the offending field and the broken rule but never echo the value, because
request values are addresses and names.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ...schemas import FORMAT_CHECKER, load_schema, validator
from .envelope import ApiError, invalid_input

REQUEST_SCHEMAS: tuple[str, ...] = (
    "create_fulfillment_order",
    "get_fulfillment_preview",
    "update_fulfillment_order",
    "create_fulfillment_return",
)


def load_request_schema(name: str) -> dict[str, Any]:
    """`schemas/spapi/<name>.json` (e.g. `create_fulfillment_order`) as a dict."""
    return load_schema(f"spapi/{name}")


def request_validator(name: str) -> Draft202012Validator:
    return validator(f"spapi/{name}")


def validate_request(name: str, body: Any) -> dict[str, Any]:
    """Return `body` if it satisfies schema `name`, else raise a 400 `InvalidInput` ApiError."""
    _raise_on_errors(request_validator(name), body)
    assert isinstance(body, dict)
    return body


# Query-string rules are simulator-only (the bridge builds queries in code), so they live here.
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "listAllFulfillmentOrders": {
        "type": "object",
        "properties": {
            "queryStartDate": {"type": "string", "format": "date-time"},
            "nextToken": {"type": "string", "minLength": 1},
        },
    },
    "getPackageTrackingDetails": {
        "type": "object",
        "required": ["packageNumber"],
        "properties": {"packageNumber": {"type": "string", "pattern": "^[0-9]{1,10}$"}},
    },
    "listReturnReasonCodes": {
        "type": "object",
        "required": ["sellerSku"],
        "properties": {
            "sellerSku": {"type": "string", "minLength": 1, "maxLength": 50},
            "marketplaceId": {"type": "string", "minLength": 1},
            "sellerFulfillmentOrderId": {"type": "string", "minLength": 1, "maxLength": 40},
            "language": {"type": "string", "minLength": 1},
        },
    },
    "getFeatures": {
        "type": "object",
        "required": ["marketplaceId"],
        "properties": {"marketplaceId": {"type": "string", "minLength": 1}},
    },
    "sellerFulfillmentOrderId": {
        "type": "object",
        "properties": {"sellerFulfillmentOrderId": {"type": "string", "minLength": 1, "maxLength": 40}},
    },
}


@cache
def _query_validator(operation: str) -> Draft202012Validator:
    return Draft202012Validator(_QUERY_SCHEMAS[operation], format_checker=FORMAT_CHECKER)


def validate_query(operation: str, params: dict[str, str]) -> dict[str, str]:
    """Check an operation's query (or path) parameters; raise a 400 `InvalidInput` ApiError."""
    _raise_on_errors(_query_validator(operation), params)
    return params


def _raise_on_errors(validator: Draft202012Validator, instance: Any) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(e.absolute_path), e.validator))
    if not errors:
        return
    descriptions = [_describe(e) for e in errors]
    raise invalid_input(descriptions[0], "; ".join(descriptions))


def _describe(error: ValidationError) -> str:
    at = _path(error)
    path = at or "request body"
    rule = error.validator
    value = error.validator_value
    if rule == "required":
        missing = _missing_property(error)
        return f"Missing required parameter {at + '.' if at else ''}{missing}."
    if rule == "maxLength":
        return f"Value for parameter {path} is too long (maximum {value} characters)."
    if rule == "minLength":
        return f"Value for parameter {path} is too short (minimum {value} characters)."
    if rule == "pattern":
        return f"Value for parameter {path} is invalid. Reason: must match {value}."
    if rule in {"enum", "const"}:
        allowed = ", ".join(map(str, value if isinstance(value, list) else [value]))
        return f"Value for parameter {path} is invalid. Reason: must be one of {allowed}."
    if rule == "type":
        return f"Value for parameter {path} is invalid. Reason: must be of type {value}."
    if rule in {"minimum", "maximum"}:
        return f"Value for parameter {path} is invalid. Reason: {rule} is {value}."
    if rule == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"Unknown parameter(s) {', '.join(extra)} in {path}."
    if rule == "format":
        return f"Value for parameter {path} is invalid. Reason: must be an ISO 8601 {value} with offset."
    return f"Value for parameter {path} is invalid. Reason: {rule}."


def _path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _missing_property(error: ValidationError) -> str:
    # jsonschema's message is "'name' is a required property"; take the quoted name, not the value.
    message = error.message
    return message.split("'")[1] if message.count("'") >= 2 else "?"


__all__ = [
    "REQUEST_SCHEMAS",
    "ApiError",
    "load_request_schema",
    "request_validator",
    "validate_query",
    "validate_request",
]
