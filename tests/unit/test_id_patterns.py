"""Id patterns end at the end of the text: a trailing newline is not part of a valid id."""

from __future__ import annotations

import pytest

from bridge.pipeline.plan import item_id_for, seller_fulfillment_order_id
from bridge.schemas import schema_problems
from tests.support import shopify_order, woo_order


def test_seller_fulfillment_order_id_with_trailing_newline_is_hashed_not_readable() -> None:
    readable = seller_fulfillment_order_id("shop-a", "1001")
    assert readable == "shop-a-1001"
    with_newline = seller_fulfillment_order_id("shop-a", "1001\n")
    assert "\n" not in with_newline and with_newline.startswith("fbb-")


def test_item_id_with_trailing_newline_is_hashed() -> None:
    assert item_id_for("7") == "7"
    assert "\n" not in item_id_for("7\n")


@pytest.mark.parametrize(
    ("schema", "document", "path"),
    [
        ("shopify/order", {**shopify_order(), "currency": "USD\n"}, "$.currency"),
        ("woocommerce/order", {**woo_order(), "currency": "EUR\n"}, "$.currency"),
        ("woocommerce/order_deleted", {"id": "12\n"}, "$.id"),
    ],
)
def test_schema_patterns_refuse_a_trailing_newline(schema: str, document: dict, path: str) -> None:
    problems = schema_problems(schema, document)
    assert {"path": path, "rule": "pattern"}.items() <= problems[0].items(), problems


def test_schema_pattern_dollar_inside_a_class_or_escaped_stays_literal() -> None:
    from bridge.schemas import _strict_regex

    assert _strict_regex(r"^a[$]b$").search("a$b")
    assert not _strict_regex(r"^a[$]b$").search("a$b\n")
    assert _strict_regex(r"^\$5$").search("$5")
