"""Amazon's published SP-API models, cut down to the operations we use, as JSON Schema.

The JSON files beside this module are derived from amzn/selling-partner-api-models by
`tools/derive_contracts.py` (only our operations and what they reference; constraints kept,
prose removed; each file's `x-fba-bridge-contract` header names the upstream commit and sha256).
They ship inside the package because the MCF simulator validates every request against them at
run time, and tests compare our own pre-flight schemas (`schemas/spapi/`) with them.

Swagger 2.0 schemas are not quite JSON Schema; `json_schema` converts them to Draft 2020-12:
`#/definitions/X` becomes `#/$defs/X`, the integer formats become bounds, `x-nullable` allows
null, and draft-4 boolean `exclusiveMinimum`/`exclusiveMaximum` become numbers.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

OUTBOUND_2020_07_01 = "fulfillmentOutbound_2020-07-01"
FBA_INVENTORY_V1 = "fbaInventory_v1"
MODELS = (OUTBOUND_2020_07_01, FBA_INVENTORY_V1)
HEADER_KEY = "x-fba-bridge-contract"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

_DEFINITIONS = "#/definitions/"
_INTEGER_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_SWAGGER_ONLY = frozenset({"discriminator", "x-nullable"})


@cache
def _load(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")


def load_model(name: str) -> dict[str, Any]:
    """The derived model `name` (one of `MODELS`) as a fresh dict the caller may change."""
    if name not in MODELS:
        raise ValueError(f"unknown contract {name!r}; known: {', '.join(MODELS)}")
    data: dict[str, Any] = json.loads(_load(name))
    return data


@dataclass(frozen=True)
class Parameter:
    """A query or path parameter as the model declares it; `schema` is JSON Schema for its value."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    collection_format: str = "csv"
    allow_empty: bool = False


@dataclass(frozen=True)
class OperationContract:
    """One operation of a model: method, path template, parameters, body schema (if any)."""

    operation_id: str
    method: str
    path: str
    parameters: tuple[Parameter, ...]
    body: dict[str, Any] | None
    body_required: bool
    responses: dict[str, dict[str, Any]]


def operations(model: dict[str, Any]) -> dict[str, OperationContract]:
    """Every operation of a (derived) model by operationId."""
    found: dict[str, OperationContract] = {}
    for path, item in model.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, dict):
                continue
            params: list[Parameter] = []
            body: dict[str, Any] | None = None
            body_required = False
            for raw in [*shared, *operation.get("parameters", [])]:
                if raw["in"] == "body":
                    body, body_required = raw["schema"], bool(raw.get("required", False))
                    continue
                value_schema = {
                    k: v
                    for k, v in raw.items()
                    if k not in {"name", "in", "required", "collectionFormat", "allowEmptyValue"}
                }
                params.append(
                    Parameter(
                        name=raw["name"],
                        location=raw["in"],
                        required=bool(raw.get("required", False)) or raw["in"] == "path",
                        schema=convert(value_schema),
                        collection_format=str(raw.get("collectionFormat", "csv")),
                        allow_empty=bool(raw.get("allowEmptyValue", False)),
                    )
                )
            found[operation["operationId"]] = OperationContract(
                operation_id=operation["operationId"],
                method=method.upper(),
                path=path,
                parameters=tuple(params),
                body=body,
                body_required=body_required,
                responses={code: r.get("schema", {}) for code, r in operation.get("responses", {}).items()},
            )
    return found


def convert(schema: Any) -> Any:
    """One Swagger 2.0 schema object as Draft 2020-12 (references point into `$defs`)."""
    if isinstance(schema, list):
        return [convert(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            if not isinstance(value, str) or not value.startswith(_DEFINITIONS):
                raise ValueError(f"unsupported reference {value!r}")
            out[key] = "#/$defs/" + value[len(_DEFINITIONS) :]
        elif key == "properties":
            out[key] = {name: convert(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties", "allOf"}:
            out[key] = convert(value)
        elif key in _SWAGGER_ONLY:
            continue
        else:
            out[key] = copy.deepcopy(value)
    bounds = _INTEGER_BOUNDS.get(str(out.get("format", "")))
    if bounds is not None:
        out.pop("format")
        out["minimum"] = max(out.get("minimum", bounds[0]), bounds[0])
        out["maximum"] = min(out.get("maximum", bounds[1]), bounds[1])
    elif out.get("format") in {"float", "double"}:
        out.pop("format")
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(exclusive) is True and inclusive in out:
            out[exclusive] = out.pop(inclusive)
        elif out.get(exclusive) is False:
            out.pop(exclusive)
    if schema.get("x-nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def json_schema(model: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (e.g. a body parameter's) as a self-contained Draft 2020-12 document: the model's
    definitions it needs (all of them, under `$defs`) travel with it."""
    document = convert(schema)
    document["$schema"] = DRAFT_2020_12
    document["$defs"] = {name: convert(d) for name, d in model.get("definitions", {}).items()}
    return document


def reachable_definitions(model: dict[str, Any], schema: Any) -> list[str]:
    """Names of the definitions `schema` references, directly or through other definitions."""
    definitions = model.get("definitions", {})
    seen: list[str] = []
    pending = list(_refs(schema))
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.append(name)
        pending.extend(_refs(definitions.get(name, {})))
    return seen


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_DEFINITIONS):
                found.append(value[len(_DEFINITIONS) :])
            else:
                found.extend(_refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_refs(item))
    return found


__all__ = [
    "FBA_INVENTORY_V1",
    "HEADER_KEY",
    "MODELS",
    "OUTBOUND_2020_07_01",
    "OperationContract",
    "Parameter",
    "convert",
    "json_schema",
    "load_model",
    "operations",
    "reachable_definitions",
]
