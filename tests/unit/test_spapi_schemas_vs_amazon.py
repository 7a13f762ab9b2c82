"""Our pre-flight request schemas (`schemas/spapi/`) are at least as strict as Amazon's model.

The plan and the SP-API client check a request against our schemas before sending it; the
simulator checks what arrives against Amazon's model (`bridge.amazon.contract`) plus its short
table of rules Amazon states in prose (`bridge.amazon.simulator.validation.EXTRA_RULES`). If ours
were looser anywhere, a request could pass our check and be refused by Amazon: so for every
constraint Amazon states (type, required, enum, lengths, item counts, bounds, pattern, format,
additionalProperties) ours must state the same or stricter, and ours must not allow a property
Amazon does not define. Failures name the JSON path and the constraint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bridge.amazon.contract import OUTBOUND_2020_07_01, json_schema, load_model, operations
from bridge.amazon.models import (
    Address,
    CreateFulfillmentOrderItem,
    CreateFulfillmentOrderRequest,
    CreateFulfillmentReturnRequest,
    CreateReturnItem,
    DeliveryWindow,
    FeatureFulfillmentPolicy,
    FeatureSettings,
    FulfillmentAction,
    FulfillmentPolicy,
    GetFulfillmentPreviewItem,
    GetFulfillmentPreviewRequest,
    Money,
    ShippingSpeedCategory,
    UpdateFulfillmentOrderItem,
    UpdateFulfillmentOrderRequest,
    format_timestamp,
)
from bridge.amazon.simulator.envelope import ApiError
from bridge.amazon.simulator.validation import body_schema, validate_body, validate_parameters
from bridge.schemas import load_schema, schema_dir

#: Our schema (below schemas/) -> the operation whose body it describes.
OURS: dict[str, str] = {
    "spapi/create_fulfillment_order": "createFulfillmentOrder",
    "spapi/get_fulfillment_preview": "getFulfillmentPreview",
    "spapi/update_fulfillment_order": "updateFulfillmentOrder",
    "spapi/create_fulfillment_return": "createFulfillmentReturn",
}

_UPPER = ("maxLength", "maxItems", "maximum", "exclusiveMaximum", "maxProperties")
_LOWER = ("minLength", "minItems", "minimum", "exclusiveMinimum", "minProperties")
_JSON_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


class Side:
    """One schema document and a way to follow its local `$ref`s."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            seen += 1
            assert seen < 50, "reference cycle"
        assert isinstance(node, dict)
        return node


def _types_allowed(node: dict[str, Any]) -> set[str] | None:
    """The JSON types `node` allows, or None for any."""
    if "type" in node:
        declared = node["type"]
        return set(declared if isinstance(declared, list) else [declared])
    values = node["enum"] if "enum" in node else [node["const"]] if "const" in node else None
    if values is None:
        return None
    return {_JSON_TYPES.get(type(v), "null" if v is None else "object") for v in values}


def _within(ours: set[str], theirs: set[str]) -> bool:
    widened = theirs | ({"integer"} if "number" in theirs else set())
    return ours <= widened


def looser(ours: Side, theirs: Side, o: Any, a: Any, path: str = "$") -> list[str]:
    """Every place where schema `o` (ours) accepts something `a` (Amazon's) refuses."""
    o, a = ours.resolve(o), theirs.resolve(a)
    problems: list[str] = []
    fixed_values = o["enum"] if "enum" in o else [o["const"]] if "const" in o else None

    if "type" in a:
        allowed = _types_allowed(o)
        theirs_types = set(a["type"] if isinstance(a["type"], list) else [a["type"]])
        if allowed is None or not _within(allowed, theirs_types):
            problems.append(f"{path}: type: Amazon {a['type']}, ours {sorted(allowed or {'any'})}")
    if fixed_values is not None:
        # Ours lists its values: each must pass Amazon's scalar constraints.
        scalar = {k: v for k, v in a.items() if k not in {"properties", "items", "required", "$defs"}}
        check = Draft202012Validator(scalar)
        bad = [v for v in fixed_values if not check.is_valid(v)]
        if bad:
            problems.append(f"{path}: enum: ours allows {bad}, Amazon refuses them")
    else:
        if "enum" in a or "const" in a:
            problems.append(f"{path}: enum: Amazon allows only {a.get('enum', [a.get('const')])}, ours any")
        for key in _UPPER:
            if key in a and not (key in o and o[key] <= a[key]):
                problems.append(f"{path}: {key}: Amazon {a[key]}, ours {o.get(key, 'none')}")
        for key in _LOWER:
            if key in a and not (key in o and o[key] >= a[key]):
                problems.append(f"{path}: {key}: Amazon {a[key]}, ours {o.get(key, 'none')}")
        for key in ("pattern", "format"):
            if key in a and o.get(key) != a[key]:
                problems.append(f"{path}: {key}: Amazon {a[key]!r}, ours {o.get(key, 'none')!r}")
    if a.get("uniqueItems") and not o.get("uniqueItems"):
        problems.append(f"{path}: uniqueItems: Amazon requires unique items, ours does not")
    for key in ("if", "then", "else"):
        if key in a and o.get(key) != a[key]:
            problems.append(f"{path}: {key}: Amazon {json.dumps(a[key])}, ours {json.dumps(o.get(key))}")
    if "allOf" in a or "anyOf" in a or "oneOf" in a:
        problems.append(f"{path}: Amazon combines schemas here; extend this comparison")

    missing = set(a.get("required", [])) - set(o.get("required", []))
    problems += [f"{path}.{name}: required: Amazon requires it, ours does not" for name in sorted(missing)]
    if "properties" in a or a.get("type") == "object" or "additionalProperties" in a:
        problems += _object_looser(ours, theirs, o, a, path)
    if "items" in a:
        if "items" in o:
            problems += looser(ours, theirs, o["items"], a["items"], f"{path}[]")
        elif fixed_values is None:
            problems.append(f"{path}[]: items: Amazon constrains the items, ours does not")
    return problems


def _object_looser(ours: Side, theirs: Side, o: dict[str, Any], a: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    theirs_props: dict[str, Any] = a.get("properties", {})
    theirs_extra = a.get("additionalProperties", True)
    ours_extra = o.get("additionalProperties", True)
    if ours_extra is not False:
        if theirs_extra is False or "properties" in a:
            if theirs_extra in (True, False) or not isinstance(ours_extra, dict):
                problems.append(
                    f"{path}: additionalProperties: ours allows properties Amazon does not define"
                )
            else:
                problems += looser(ours, theirs, ours_extra, theirs_extra, f"{path}.*")
    for name, schema in o.get("properties", {}).items():
        if name in theirs_props:
            problems += looser(ours, theirs, schema, theirs_props[name], f"{path}.{name}")
        elif isinstance(theirs_extra, dict):
            problems += looser(ours, theirs, schema, theirs_extra, f"{path}.{name}")
        elif theirs_extra is False or "properties" in a:
            problems.append(f"{path}.{name}: ours allows a property Amazon does not define")
    return problems


def amazon_model_schema(operation: str) -> dict[str, Any]:
    model = load_model(OUTBOUND_2020_07_01)
    body = operations(model)[operation].body
    assert body is not None
    return json_schema(model, body)


REFERENCES: dict[str, Callable[[str], dict[str, Any]]] = {
    "amazons-model": amazon_model_schema,
    "simulator-rules": body_schema,
}


def test_every_request_schema_of_ours_is_compared() -> None:
    files = {f"spapi/{p.stem}" for p in (schema_dir() / "spapi").glob("*.json")}
    assert files == set(OURS), "map every schemas/spapi file to the Amazon operation it describes"


@pytest.mark.parametrize("reference", sorted(REFERENCES))
@pytest.mark.parametrize("name", sorted(OURS))
def test_our_request_schema_is_at_least_as_strict_as_amazon(name: str, reference: str) -> None:
    ours = load_schema(name)
    theirs = REFERENCES[reference](OURS[name])
    problems = looser(Side(ours), Side(theirs), ours, theirs)
    assert not problems, f"schemas/{name}.json is looser than {reference}:\n" + "\n".join(problems)


# ----------------------------------------------------------------------------- the comparison can fail

AMAZON_LIKE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "items"],
    "properties": {
        "id": {"type": "string", "maxLength": 40},
        "speed": {"$ref": "#/$defs/Speed"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        "when": {"type": "string", "format": "date-time"},
    },
    "$defs": {
        "Speed": {"type": "string", "enum": ["Standard", "Expedited"]},
        "Item": {"type": "object", "properties": {"quantity": {"type": "integer", "minimum": 1}}},
    },
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": {"type": "string", "maxLength": 41}}, "$.id: maxLength: Amazon 40, ours 41"),
        ({"id": {"type": "string"}}, "$.id: maxLength: Amazon 40, ours none"),
        ({"speed": {"enum": ["Standard", "Overnight"]}}, "$.speed: enum: ours allows ['Overnight']"),
        ({"speed": {"type": "string"}}, "$.speed: enum: Amazon allows only ['Standard', 'Expedited']"),
        ({"id": {"type": ["string", "null"], "maxLength": 40}}, "$.id: type: Amazon string"),
        ({"when": {"type": "string"}}, "$.when: format: Amazon 'date-time', ours 'none'"),
        (
            {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"quantity": {"type": "integer"}},
                    },
                }
            },
            "$.items[].quantity: minimum: Amazon 1, ours none",
        ),
        ({"items": {"type": "array"}}, "$.items[]: items: Amazon constrains the items"),
        ({"extra": {"type": "string"}}, "$.extra: ours allows a property Amazon does not define"),
    ],
)
def test_the_comparison_names_the_path_and_constraint_where_ours_is_looser(
    change: dict[str, Any], expected: str
) -> None:
    strict = {
        "type": "object",
        "required": ["id", "items"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "maxLength": 40},
            "speed": {"enum": ["Standard"]},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"quantity": {"type": "integer", "minimum": 1, "maximum": 9}},
                },
            },
            "when": {"type": "string", "format": "date-time"},
        },
    }
    assert looser(Side(strict), Side(AMAZON_LIKE), strict, AMAZON_LIKE) == []
    changed = {**strict, "properties": {**strict["properties"], **change}}
    problems = looser(Side(changed), Side(AMAZON_LIKE), changed, AMAZON_LIKE)
    assert any(expected in p for p in problems), problems


def test_the_comparison_finds_missing_required_and_open_objects() -> None:
    ours = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "maxLength": 1}}}
    problems = looser(Side(ours), Side(AMAZON_LIKE), ours, AMAZON_LIKE)
    assert "$.items: required: Amazon requires it, ours does not" in problems
    assert "$: additionalProperties: ours allows properties Amazon does not define" in problems


# ----------------------------------------------------------------------------- what we build, Amazon accepts

NOW = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
ADDRESS = Address(
    name="N" * 50,
    address_line1="A" * 180,
    address_line2="B" * 60,
    address_line3="C" * 60,
    city="D" * 50,
    district_or_county="E" * 150,
    state_or_region="F" * 150,
    postal_code="9" * 20,
    country_code="US",
    phone="1" * 20,
)
PRICE = Money("USD", Decimal("12.50"))


def _every_request() -> dict[str, dict[str, Any]]:
    """One request per operation with every field we can set, at our own limits."""
    create = CreateFulfillmentOrderRequest(
        seller_fulfillment_order_id="s" * 40,
        displayable_order_id="#" * 40,
        displayable_order_date=NOW,
        displayable_order_comment="c" * 750,
        shipping_speed_category=ShippingSpeedCategory.SCHEDULED_DELIVERY,
        destination_address=ADDRESS,
        items=[
            CreateFulfillmentOrderItem(
                "sku", "line-1", 3, "g" * 512, "d" * 250, "X00", PRICE, PRICE, Money("EUR", Decimal("0"))
            )
        ],
        marketplace_id="ATVPDKIKX0DER",
        fulfillment_action=FulfillmentAction.SHIP,
        fulfillment_policy=FulfillmentPolicy.FILL_ALL_AVAILABLE,
        notification_emails=["e" * 64],
        feature_constraints=[FeatureSettings("BLANK_BOX")],
        delivery_window=DeliveryWindow(NOW, NOW + timedelta(hours=4)),
        ship_from_country_code="US",
    )
    preview = GetFulfillmentPreviewRequest(
        address=ADDRESS,
        items=[GetFulfillmentPreviewItem("sku", "line-1", 1, PRICE)],
        marketplace_id="ATVPDKIKX0DER",
        shipping_speed_categories=list(ShippingSpeedCategory),
        include_cod_fulfillment_preview=False,
        include_delivery_windows=True,
        feature_constraints=[FeatureSettings("PSLIP", FeatureFulfillmentPolicy.NOT_REQUIRED)],
    )
    update = UpdateFulfillmentOrderRequest(
        displayable_order_comment="late",
        destination_address=ADDRESS,
        fulfillment_action=FulfillmentAction.HOLD,
        notification_emails=["e@x.invalid"],
        items=[UpdateFulfillmentOrderItem("line-1", 2, "sku", "g", "d", PRICE, PRICE, PRICE)],
    )
    returns = CreateFulfillmentReturnRequest(
        [CreateReturnItem("r" * 80, "line-1", "ship-1", "CR-DEFECTIVE", "x" * 1000)]
    )
    return {
        "createFulfillmentOrder": create.to_api(),
        "getFulfillmentPreview": preview.to_api(),
        "updateFulfillmentOrder": update.to_api(),
        "createFulfillmentReturn": returns.to_api(),
    }


@pytest.mark.parametrize("operation", sorted(_every_request()))
def test_every_request_body_we_build_is_valid_against_amazons_model(operation: str) -> None:
    body = _every_request()[operation]
    model_errors = list(Draft202012Validator(amazon_model_schema(operation)).iter_errors(body))
    assert not model_errors, [e.message for e in model_errors]
    assert validate_body(operation, body) == body  # the simulator's rules too


def test_every_query_and_path_parameter_we_send_is_valid_against_amazons_model() -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("listAllFulfillmentOrders", {"queryStartDate": format_timestamp(NOW), "nextToken": "t"}),
        ("getPackageTrackingDetails", {"packageNumber": str(2**31 - 1)}),
        ("getFulfillmentOrder", {"sellerFulfillmentOrderId": "s" * 40}),
        (
            "listReturnReasonCodes",
            {"sellerSku": "sku", "marketplaceId": "M", "sellerFulfillmentOrderId": "s", "language": "en_US"},
        ),
        ("getFeatures", {"marketplaceId": "ATVPDKIKX0DER"}),
    ]
    for operation, params in calls:
        validate_parameters(operation, params)
    with pytest.raises(ApiError, match="packageNumber"):
        validate_parameters("getPackageTrackingDetails", {"packageNumber": str(2**31)})
    with pytest.raises(ApiError, match="sellerFulfillmentOrderId is too long"):
        validate_parameters("cancelFulfillmentOrder", {"sellerFulfillmentOrderId": "s" * 41})
    with pytest.raises(ApiError, match="Missing required parameter marketplaceId"):
        validate_parameters("getFeatures", {"marketplaceId": None})
    with pytest.raises(ApiError, match="sellerSku is too short"):
        validate_parameters("listReturnReasonCodes", {"sellerSku": ""})
