"""The nesting check: the walk over the parsed value agrees with the character definition, and
`parse_json` refuses nesting past its limit however it is written."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.storefronts.base import MAX_JSON_DEPTH, Rejection, nesting_depth, parse_json


def depth_by_characters(text: str) -> int:
    """Deepest bracket nesting outside JSON strings, one character at a time (the definition)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


# Strings full of brackets and quotes: they must never count.
SCALARS = st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\:,a ', max_size=8)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[{"a', max_size=3), inner, max_size=4)
    ),
    max_leaves=40,
)


@given(JSON_VALUES)
@settings(max_examples=2000)
def test_the_walk_equals_the_character_definition(value: object) -> None:
    assert nesting_depth(value, 10_000) == depth_by_characters(json.dumps(value))


def test_the_walk_stops_past_the_limit() -> None:
    deep: object = 1
    for _ in range(50):
        deep = {"a": [deep]}
    assert nesting_depth(deep, 10) == 11
    assert nesting_depth(deep, 100) == 100


@pytest.mark.parametrize(
    "text",
    [
        "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
        '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1),
        '[{"a": [' * 11 + "]}]" * 11,  # 33 levels, mixed
        "[" * 200_000 + "]" * 200_000,  # deeper than the parser goes: its RecursionError
    ],
)
def test_parse_json_refuses_nesting_past_the_limit(text: str) -> None:
    with pytest.raises(Rejection) as caught:
        parse_json(text.encode())
    assert caught.value.code == "too_deep"


def test_parse_json_takes_nesting_at_the_limit_and_brackets_in_strings() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert nesting_depth(parse_json(at_limit.encode()), MAX_JSON_DEPTH) == MAX_JSON_DEPTH
    assert parse_json(b'{"a": "[[[[{{{{", "b": ["\\"["]}') == {"a": "[[[[{{{{", "b": ['"[']}
