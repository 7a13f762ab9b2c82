"""The compiled schema gate never passes a payload that jsonschema refuses.

The webhook path asks the compiled gate (fastjsonschema) first and takes its "valid" as final, so
the one disagreement that would change a verdict is gate-valid / jsonschema-invalid. These tests
mutate real payloads with values chosen for where validators differ (floats that are integers,
booleans, unicode digits, trailing newlines, huge numbers, wrong containers) and check that.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.schemas import _gate, passes_fast, schema_dir, validator
from tests.support import fixture

PAYLOADS = {
    "shopify/order": "shopify/orders_create.json",
    "woocommerce/order": "woocommerce/order.json",
    "shopify/customers_data_request": "shopify/customers_data_request.json",
    "shopify/customers_redact": "shopify/customers_redact.json",
    "shopify/shop_redact": "shopify/shop_redact.json",
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


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
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


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_gate_passes_the_real_payloads(name: str) -> None:
    assert passes_fast(name, fixture(PAYLOADS[name]))


def test_schemas_outside_the_storefront_payloads_are_not_gated() -> None:
    folder = str(schema_dir())
    assert _gate(folder, "canonical_order") is None
    assert _gate(folder, "spapi/create_fulfillment_order") is None  # has `format`: never gated
    assert _gate(folder, "shopify/order") is not None
