"""The compiled schema gate never passes a payload that jsonschema refuses.

The webhook path asks the compiled gate (fastjsonschema) first and takes its "valid" as final, so
the one disagreement that would change a verdict is gate-valid / jsonschema-invalid. These tests
mutate real payloads with values chosen for where validators differ (floats that are integers,
booleans, unicode digits, trailing newlines, huge numbers, wrong containers) and check that.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.amazon.simulator import validation as simulator
from bridge.schemas import (
    FORMAT_CHECKER,
    _gate,
    compile_gate,
    gate_passes,
    load_schema,
    passes_fast,
    schema_dir,
    validator,
)
from tests.support import fixture

PAYLOADS = {
    "shopify/order": "shopify/orders_create.json",
    "woocommerce/order": "woocommerce/order.json",
    "shopify/customers_data_request": "shopify/customers_data_request.json",
    "shopify/customers_redact": "shopify/customers_redact.json",
    "shopify/shop_redact": "shopify/shop_redact.json",
    "spapi/create_fulfillment_order": "spapi/create_fulfillment_order.json",
}

TRICKY = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        1,
        1.0,
        2.5,
        -0.0,
        10**25,
        "",
        "0",
        "12\n",
        "\u0663",
        "USD",
        "usd",
        "USD\n",
        "2026-11-01T10:00:00-05:00",
        "2026-11-01T10:00:00",
        "2026-11-01T10:00:00Z\n",
        "x" * 300,
        [],
        {},
        [1],
        {"id": 1},
    ]
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*prefix, index))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _create_body() -> dict[str, Any]:
    return fixture(PAYLOADS["spapi/create_fulfillment_order"])


def _preview_body() -> dict[str, Any]:
    create = _create_body()
    return {
        "marketplaceId": create["marketplaceId"],
        "address": create["destinationAddress"],
        "items": [
            {k: i[k] for k in ("sellerSku", "sellerFulfillmentOrderItemId", "quantity")}
            for i in create["items"]
        ],
        "shippingSpeedCategories": ["Standard", "Expedited"],
        "includeCODFulfillmentPreview": False,
        "featureConstraints": create["featureConstraints"],
    }


#: The simulator checks every request against Amazon's model, through the same kind of gate.
SIMULATOR_BODIES = {"createFulfillmentOrder": _create_body, "getFulfillmentPreview": _preview_body}


@st.composite
def mutated(draw: st.DrawFn, source: str = "schemas") -> tuple[str, Any]:
    if source == "simulator":
        name = draw(st.sampled_from(sorted(SIMULATOR_BODIES)))
        doc = copy.deepcopy(SIMULATOR_BODIES[name]())
    else:
        name = draw(st.sampled_from(sorted(PAYLOADS)))
        doc = copy.deepcopy(fixture(PAYLOADS[name]))
    paths = _paths(doc)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        if draw(st.booleans()) and len(path) > 0 and isinstance(path[-1], str):
            parent: Any = doc
            try:
                for part in path[:-1]:
                    parent = parent[part]
                parent.pop(path[-1], None)  # a missing field
            except (KeyError, IndexError, TypeError):
                pass
            continue
        try:
            _set(doc, path, copy.deepcopy(draw(TRICKY)))  # shared samples must stay unchanged
        except (KeyError, IndexError, TypeError):
            pass
        paths = _paths(doc)
    return name, doc


@given(mutated())
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_gate_never_passes_what_jsonschema_refuses(case: tuple[str, Any]) -> None:
    name, doc = case
    if passes_fast(name, doc):
        assert validator(name).is_valid(doc), f"gate passed a document jsonschema refuses ({name})"


@given(mutated("simulator"))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_simulators_gate_never_passes_what_amazons_model_refuses(case: tuple[str, Any]) -> None:
    operation, body = case
    if gate_passes(simulator._body_gate(operation), body):
        assert simulator._body_validator(operation).is_valid(body), f"gate passed a refused {operation} body"


@pytest.mark.parametrize("operation", sorted(SIMULATOR_BODIES))
def test_the_simulators_gate_passes_real_requests(operation: str) -> None:
    body = SIMULATOR_BODIES[operation]()
    assert simulator._body_validator(operation).is_valid(body)
    assert gate_passes(simulator._body_gate(operation), body)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "dependentRequired": {"a": ["b"]}},  # a keyword the compiler skips
        {"$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s", "maxLength": 2}}},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "object", "properties": {"at": {"type": "string", "format": "made-up-format"}}},
        # An `$id` beside a `$ref` moves what it points to in 2020-12; draft-07 code ignores it.
        {
            "$id": "http://root.example/s",
            "$defs": {"y": {"type": "integer"}},
            "properties": {
                "a": {
                    "$id": "http://other.example/x",
                    "$ref": "#/$defs/y",
                    "$defs": {"y": {"type": "string"}},
                }
            },
        },
        {"properties": {"a": {"$id": "http://other.example/x", "type": "string"}}},
        # The compiler reads `$` after an escaped backslash, and inside a class, otherwise.
        {"type": "string", "pattern": "^a\\\\$"},
        {"type": "string", "pattern": "^[$a]+$"},
        {"properties": {"a": {"$ref": "#/$defs/missing"}}},  # the compiler cannot resolve it
    ],
)
def test_a_schema_the_gate_could_read_differently_is_not_gated(schema: dict[str, Any]) -> None:
    assert compile_gate(schema) is None


def test_the_guard_knows_how_the_compiler_rewrites_a_pattern() -> None:
    """`_same_pattern` mirrors fastjsonschema's own `$` rewrite; a new release that rewrites
    otherwise must fail here, not let the gate disagree with jsonschema."""
    from fastjsonschema import draft04

    from bridge.schemas import _GATE_DOLLAR

    assert _GATE_DOLLAR.pattern == draft04.DOLLAR_FINDER.pattern


def test_the_gate_and_jsonschema_read_ordinary_patterns_alike() -> None:
    gate = compile_gate({"type": "string", "pattern": "^x\\$y$"})
    assert gate is not None
    assert gate_passes(gate, "x$y")
    assert not gate_passes(gate, "x$y\n")


def test_a_ref_with_only_annotations_beside_it_is_gated() -> None:
    schema = {
        "$defs": {"s": {"type": "string"}},
        "properties": {"a": {"$ref": "#/$defs/s", "description": "d"}},
    }
    gate = compile_gate(schema)
    assert gate_passes(gate, {"a": "x"})
    assert not gate_passes(gate, {"a": 1})


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_gate_passes_the_real_payloads(name: str) -> None:
    assert passes_fast(name, fixture(PAYLOADS[name]))


def test_only_the_hot_path_schemas_are_gated() -> None:
    folder = str(schema_dir())
    assert _gate(folder, "canonical_order") is None
    assert _gate(folder, "shopify/order") is not None
    assert _gate(folder, "spapi/create_fulfillment_order") is not None  # its date-time: our rule


def test_compiling_the_gate_leaves_the_shared_schema_as_written(tmp_path, monkeypatch) -> None:
    """Every reader shares one loaded schema; the compiler must not rewrite its `$ref`s."""
    (tmp_path / "spapi").mkdir()
    schema = {
        "$id": "https://example.invalid/thing.json",
        "$defs": {"qty": {"type": "integer"}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/qty"}},
    }
    (tmp_path / "spapi" / "thing.json").write_text(json.dumps(schema))
    monkeypatch.setenv("BRIDGE_SCHEMAS_DIR", str(tmp_path))
    assert passes_fast("spapi/thing", {"n": 1})
    assert load_schema("spapi/thing") == schema


def test_a_schema_with_a_format_jsonschema_does_not_check_is_not_gated(tmp_path, monkeypatch) -> None:
    (tmp_path / "shopify").mkdir()
    schema = {"type": "object", "properties": {"at": {"type": "string", "format": "made-up-format"}}}
    (tmp_path / "shopify" / "thing.json").write_text(json.dumps(schema))
    monkeypatch.setenv("BRIDGE_SCHEMAS_DIR", str(tmp_path))
    assert _gate(str(tmp_path), "shopify/thing") is None
    assert not passes_fast("shopify/thing", {"at": "anything"})


@pytest.mark.parametrize(
    "when",
    ["2026-11-01T10:00:00", "2026-11-01", "yesterday", "2026-11-01T10:00:00Z\n", "2026-13-01T10:00:00Z"],
)
def test_the_gate_applies_our_date_time_rule(when: str) -> None:
    """Amazon refuses a timestamp without an offset: the gate must not pass one jsonschema
    (with `FORMAT_CHECKER`) refuses."""
    doc = copy.deepcopy(fixture(PAYLOADS["spapi/create_fulfillment_order"]))
    doc["displayableOrderDate"] = when
    assert not passes_fast("spapi/create_fulfillment_order", doc)
    assert not validator("spapi/create_fulfillment_order").is_valid(doc)


def test_every_format_we_check_passes_values_that_are_not_strings() -> None:
    """fastjsonschema asks a format checker about strings only; jsonschema asks about every
    value. The gate agrees with jsonschema only while no checker refuses a non-string."""
    for name in FORMAT_CHECKER.checkers:
        for value in (0, 1.5, True, None, [], {}):
            assert FORMAT_CHECKER.conforms(value, name), f"format {name!r} refuses {value!r}"
