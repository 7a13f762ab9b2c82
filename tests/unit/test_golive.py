"""Pure parts of the going-live checks: their GraphQL documents, the rendering of findings, the
region table."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from bridge.amazon.spapi import REGION_HOSTS
from bridge.fakes.shopify import build_fake_schema
from bridge.golive import MARKETPLACE_REGIONS, MISSING, NOTE, OK, SHOPIFY_TOPICS, Finding, Findings
from bridge.storefronts import shopify_check
from bridge.storefronts.shopify_check import OPERATIONS, GraphQLOperation


def test_the_check_module_lists_every_graphql_operation_it_defines() -> None:
    defined = {v for v in vars(shopify_check).values() if isinstance(v, GraphQLOperation)}
    assert defined == set(OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_check_documents_are_read_only_and_valid_on_the_fake_schema(operation: GraphQLOperation) -> None:
    # The fake's schema is itself checked to be a subset of Shopify's 2026-07 Admin schema.
    assert operation.document.startswith("query ")
    assert not validate(build_fake_schema(), parse(operation.document))


def test_shopify_topics_exist_in_the_schema() -> None:
    topics = build_fake_schema().get_type("WebhookSubscriptionTopic")
    assert set(SHOPIFY_TOPICS) <= set(topics.values)  # type: ignore[union-attr]


def test_every_marketplace_maps_to_a_region_with_a_host() -> None:
    assert {region for region, _ in MARKETPLACE_REGIONS.values()} <= set(REGION_HOSTS)


def test_findings_fail_only_on_missing() -> None:
    findings = Findings()
    findings.add(OK, "amazon main", "fine.")
    findings.add(NOTE, "amazon main", "sandbox", "set sandbox: false")
    assert findings.passed
    findings.add(MISSING, "channel a", "no key", "create one.")
    assert not findings.passed


def test_rendering_says_fix_for_missing_and_hint_for_notes() -> None:
    assert Finding(MISSING, "channel a", "no key", "create one").render() == (
        "missing  channel a: no key. Fix: create one"
    )
    assert (
        Finding(NOTE, "amazon main", "sandbox", "set sandbox: false")
        .render()
        .endswith(". Hint: set sandbox: false")
    )
    assert Finding(OK, "amazon main", "fine").render() == "ok       amazon main: fine"
