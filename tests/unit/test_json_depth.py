"""The regex-based nesting check agrees with the character-by-character definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.storefronts.base import _depth


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


JSONISH = st.text(alphabet=st.sampled_from('[]{}"\\:,a1 \n'), max_size=200)


@given(JSONISH)
@settings(max_examples=2000)
def test_regex_depth_equals_the_character_definition(text: str) -> None:
    assert _depth(text) == depth_by_characters(text)


def test_brackets_inside_strings_do_not_count() -> None:
    assert _depth('{"a": "[[[[{{{{", "b": [1]}') == 2
    assert _depth('"[[[') == 0  # an unterminated string runs to the end
    assert _depth('["\\"[", [[]]]') == 3  # an escaped quote does not end the string
