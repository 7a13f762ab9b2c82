"""The simulator's request checks: Amazon's published model, plus a short table of stated rules.

Every request is checked, per operation, against Amazon's Fulfillment Outbound 2020-07-01 model
(the derived subset in `bridge.amazon.contract`): the body against the body parameter's
definition, and query/path parameters with the types, requirements, enums, lengths and bounds the
model declares. The simulator does not read our own `schemas/spapi/` (the bridge's pre-flight
check), so a mistake in our idea of what Amazon accepts fails a test instead of passing two
copies of the same mistake; `tests/unit/test_spapi_schemas_vs_amazon.py` checks the pre-flight
schemas are at least as strict as this.

Amazon's machine-readable model does not hold every rule Amazon states. `EXTRA_RULES` adds, on
top of it, only rules with a named source (`ExtraRule.source`):

- address lengths (name 50, line 1 180, lines 2/3 60, city 50, district/county 150, state 150,
  postal code 20, phone 20): Amazon's MWS-era FBA Outbound limits; the 2020-07-01 model states
  none (`ADDRESS_LIMITS`);
- the feature names `FeatureSettings.featureName` lists in its text (`BLOCK_AMZL`, `BLANK_BOX`,
  `OVERBOX`, `PACKING_SLIP`, `SIGNATURE_CONFIRMATION`, and `PSLIP` from its getFeatures example);
- ISO 3166-1 alpha-2 country codes (`Address.countryCode`, `shipFromCountryCode`), ISO 4217
  currency codes (`Money.currencyCode`), decimals as RFC 7159 numbers (`Decimal`), a
  `displayableOrderId` of one to 40 characters, and no `Hold` with `ScheduledDelivery`: each
  stated in the model's own field text, not in its constraints;
- every object a request body reaches refuses properties the model does not define
  (`CLOSED_OBJECTS_SOURCE`): simulator strictness. Amazon may ignore an unknown property;
  refusing it makes a misspelt optional field fail a test instead of vanishing silently.

Query and path parameters follow Swagger 2.0's rule that a parameter may not be sent empty
unless the model allows it (`allowEmptyValue`). A refused request gets Amazon's 400
`InvalidInput` envelope; messages name the field and the broken rule but never echo the value,
because request values are addresses and names.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ...schemas import FORMAT_CHECKER, Gate, StrictValidator, compile_gate, gate_passes
from ..contract import (
    DRAFT_2020_12,
    OUTBOUND_2020_07_01,
    OperationContract,
    Parameter,
    convert,
    load_model,
    operations,
    reachable_definitions,
)
from .envelope import ApiError, invalid_input

MWS_ADDRESS = "Amazon's MWS-era FBA Outbound address limits; the 2020-07-01 model states no lengths"

#: Address field -> maximum length (MWS-era limits).
ADDRESS_LIMITS: dict[str, int] = {
    "name": 50,
    "addressLine1": 180,
    "addressLine2": 60,
    "addressLine3": 60,
    "city": 50,
    "districtOrCounty": 150,
    "stateOrRegion": 150,
    "postalCode": 20,
    "phone": 20,
}

#: `FeatureSettings.featureName`: the model types it as a string and lists the valid names in its
#: text; `PSLIP` is the packing-slip name its getFeatures example answers with.
FEATURE_NAMES = ("BLOCK_AMZL", "BLANK_BOX", "OVERBOX", "PACKING_SLIP", "SIGNATURE_CONFIRMATION", "PSLIP")
COUNTRY_CODE = "^[A-Z]{2}$"
CURRENCY_CODE = "^[A-Z]{3}$"
#: RFC 7159 number: optional minus, no leading zeros, optional fraction and exponent.
RFC7159_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
SCHEDULED_DELIVERY_SHIPS: dict[str, Any] = {
    "if": {
        "properties": {"shippingSpeedCategory": {"const": "ScheduledDelivery"}},
        "required": ["shippingSpeedCategory"],
    },
    "then": {"properties": {"fulfillmentAction": {"const": "Ship"}}},
}


@dataclass(frozen=True)
class ExtraRule:
    """JSON Schema `keywords` added to `definition` (or one of its properties) of Amazon's model."""

    definition: str
    property: str | None
    keywords: Mapping[str, Any]
    source: str


EXTRA_RULES: tuple[ExtraRule, ...] = (
    *(ExtraRule("Address", name, {"maxLength": n}, MWS_ADDRESS) for name, n in ADDRESS_LIMITS.items()),
    ExtraRule("Address", "countryCode", {"pattern": COUNTRY_CODE}, "model text: ISO 3166-1 alpha-2"),
    ExtraRule(
        "CreateFulfillmentOrderRequest",
        "shipFromCountryCode",
        {"pattern": COUNTRY_CODE},
        "model text: ISO 3166-1 alpha-2",
    ),
    ExtraRule(
        "UpdateFulfillmentOrderRequest",
        "shipFromCountryCode",
        {"pattern": COUNTRY_CODE},
        "model text: ISO 3166-1 alpha-2",
    ),
    ExtraRule("Money", "currencyCode", {"pattern": CURRENCY_CODE}, "model text: ISO 4217"),
    ExtraRule(
        "FeatureSettings",
        "featureName",
        {"enum": list(FEATURE_NAMES)},
        "model text: FeatureSettings.featureName lists the names; getFeatures example: PSLIP",
    ),
    ExtraRule("Decimal", None, {"pattern": RFC7159_NUMBER}, "model text: RFC 7159 number representation"),
    ExtraRule(
        "CreateFulfillmentOrderRequest",
        "displayableOrderId",
        {"minLength": 1},
        "model text: 1 to 40 characters",
    ),
    ExtraRule(
        "UpdateFulfillmentOrderRequest",
        "displayableOrderId",
        {"minLength": 1},
        "model text: 1 to 40 characters",
    ),
    ExtraRule(
        "CreateFulfillmentOrderRequest",
        None,
        SCHEDULED_DELIVERY_SHIPS,
        "model text: Hold is not a valid fulfillmentAction with ScheduledDelivery",
    ),
    ExtraRule(
        "UpdateFulfillmentOrderRequest",
        None,
        SCHEDULED_DELIVERY_SHIPS,
        "model text: Hold is not a valid fulfillmentAction with ScheduledDelivery",
    ),
)
CLOSED_OBJECTS_SOURCE = "simulator strictness: an unknown property is refused, not silently ignored"


@cache
def _contracts() -> dict[str, OperationContract]:
    return operations(load_model(OUTBOUND_2020_07_01))


def operation_contract(operation: str) -> OperationContract:
    try:
        return _contracts()[operation]
    except KeyError:
        raise ValueError(f"operation {operation!r} is not in the derived Amazon model") from None


@cache
def _request_definitions() -> dict[str, Any]:
    """Amazon's definitions as JSON Schema, with `EXTRA_RULES` applied and request objects closed."""
    model = load_model(OUTBOUND_2020_07_01)
    definitions: dict[str, Any] = {name: convert(d) for name, d in model["definitions"].items()}
    for rule in EXTRA_RULES:
        _apply(definitions, rule)
    bodies = [c.body for c in _contracts().values() if c.body is not None]
    for name in reachable_definitions(model, bodies):
        schema = definitions[name]
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
    return definitions


def _apply(definitions: dict[str, Any], rule: ExtraRule) -> None:
    target = definitions.get(rule.definition)
    if target is not None and rule.property is not None:
        target = target.get("properties", {}).get(rule.property)
    if target is None:
        where = rule.definition + (f".{rule.property}" if rule.property else "")
        raise ValueError(f"extra rule for {where}: not in Amazon's model any more; review EXTRA_RULES")
    for key, value in rule.keywords.items():
        if key in {"maxLength", "maxItems", "maximum"}:
            target[key] = min(target.get(key, value), value)
        elif key in {"minLength", "minItems", "minimum"}:
            target[key] = max(target.get(key, value), value)
        elif key in target and target[key] != value:
            raise ValueError(f"extra rule for {rule.definition}: {key} is already set by Amazon's model")
        else:
            target[key] = copy.deepcopy(value)


def body_schema(operation: str) -> dict[str, Any]:
    """The JSON Schema the simulator checks `operation`'s body with (model + `EXTRA_RULES`)."""
    contract = operation_contract(operation)
    if contract.body is None:
        raise ValueError(f"{operation} takes no body")
    document = convert(contract.body)
    document["$schema"] = DRAFT_2020_12
    document["$defs"] = copy.deepcopy(_request_definitions())
    return document


@cache
def _body_validator(operation: str) -> Draft202012Validator:
    schema = body_schema(operation)
    Draft202012Validator.check_schema(schema)
    validator: Draft202012Validator = StrictValidator(schema, format_checker=FORMAT_CHECKER)
    return validator


@cache
def _body_gate(operation: str) -> Gate | None:
    """The compiled gate (`bridge.schemas.compile_gate`): every request's check took 9% of a busy
    simulator's CPU through jsonschema; a body the gate refuses still goes through jsonschema,
    whose problems are what the 400 says."""
    return compile_gate(body_schema(operation))


def validate_body(operation: str, body: Any) -> dict[str, Any]:
    """Return `body` if Amazon's model (and `EXTRA_RULES`) accept it, else raise a 400 `ApiError`."""
    if body is None and operation_contract(operation).body_required:
        raise invalid_input("Missing required parameter body.", "The request needs a JSON body.")
    if not gate_passes(_body_gate(operation), body):
        _raise_on_errors(_body_validator(operation), body)
    assert isinstance(body, dict)
    return body


def parameters_schema(operation: str) -> dict[str, Any]:
    """The JSON Schema for `operation`'s query and path parameters (after type coercion)."""
    contract = operation_contract(operation)
    properties: dict[str, Any] = {}
    for param in contract.parameters:
        schema = copy.deepcopy(param.schema)
        if schema.get("type") == "string" and not param.allow_empty:
            schema["minLength"] = max(1, schema.get("minLength", 1))
        properties[param.name] = schema
    return {
        "$schema": DRAFT_2020_12,
        "type": "object",
        "properties": properties,
        "required": [p.name for p in contract.parameters if p.required],
    }


@cache
def _parameters_validator(operation: str) -> Draft202012Validator:
    schema = parameters_schema(operation)
    Draft202012Validator.check_schema(schema)
    validator: Draft202012Validator = StrictValidator(schema, format_checker=FORMAT_CHECKER)
    return validator


def validate_parameters(operation: str, params: Mapping[str, str | list[str] | None]) -> dict[str, Any]:
    """Check `operation`'s query/path parameters as received (strings; lists for repeated ones).

    Values are first read as the model's types (an integer parameter's "12" is 12; an array is
    split by its collection format). Absent (None) parameters are left out. Returns the typed
    values, or raises a 400 `InvalidInput` ApiError."""
    declared = {p.name: p for p in operation_contract(operation).parameters}
    typed: dict[str, Any] = {}
    for name, raw in params.items():
        if raw is None:
            continue
        param = declared.get(name)
        typed[name] = _coerce(raw, param.schema, param) if param is not None else raw
    _raise_on_errors(_parameters_validator(operation), typed)
    return typed


_INTEGER = re.compile(r"-?[0-9]+")
_SEPARATORS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}


def _coerce(raw: str | list[str], schema: Mapping[str, Any], param: Parameter | None = None) -> Any:
    kind = schema.get("type")
    if kind == "array":
        if isinstance(raw, list):
            parts = raw
        else:
            fmt = param.collection_format if param is not None else "csv"
            parts = [raw] if fmt == "multi" else raw.split(_SEPARATORS.get(fmt, ","))
        return [_coerce(p, schema.get("items", {})) for p in parts]
    if isinstance(raw, list):
        raw = raw[-1] if raw else ""
    if kind == "integer" and _INTEGER.fullmatch(raw):
        return int(raw)
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "boolean" and raw.lower() in {"true", "false"}:
        return raw.lower() == "true"
    return raw


def _raise_on_errors(validator: Draft202012Validator, instance: Any) -> None:
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator))
    )
    if not errors:
        return
    descriptions = list(dict.fromkeys(_describe(e) for e in errors))
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
    if rule in {"minimum", "maximum", "minItems", "maxItems"}:
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
    "ADDRESS_LIMITS",
    "CLOSED_OBJECTS_SOURCE",
    "EXTRA_RULES",
    "ApiError",
    "ExtraRule",
    "body_schema",
    "operation_contract",
    "parameters_schema",
    "validate_body",
    "validate_parameters",
]
