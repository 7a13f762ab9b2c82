"""The control-character walk may be skipped only for a body that cannot hold one: with and
without the raw body, the result is the same for any document."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from bridge.storefronts.base import parse_json, strip_control_characters

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values, st.booleans())
@example("\b", False)  # JSON's short escapes: `"\b"` and `"\f"` carry control characters too
@example({"k\f": "x"}, False)
def test_the_raw_body_shortcut_never_changes_what_is_stripped(document: object, ascii_only: bool) -> None:
    body = json.dumps({"doc": document}, ensure_ascii=ascii_only).encode()
    parsed = parse_json(body)
    assert strip_control_characters(parsed, body) == strip_control_characters(parsed)
