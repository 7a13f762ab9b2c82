"""Every GraphQL document the Shopify pusher sends is valid against Shopify's real 2026-07 Admin
schema, and the fake Shopify's schema is a faithful subset of it (same names, same types), so
the fake cannot accept what Shopify would refuse.

The schema file lives outside the repository (`<workspace>/shared/reference/`); set
`BRIDGE_SHARED_DIR` to the directory holding `reference/` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    parse,
    validate,
)

from bridge.fakes import shopify as fake_shopify
from bridge.storefronts import shopify_push
from bridge.storefronts.shopify_push import GraphQLOperation

SCHEMA_NAME = "reference/shopify-admin-2026-07.graphql"


def _schema_path() -> Path:
    shared = os.environ.get("BRIDGE_SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[2].parent / "shared"
    return base / SCHEMA_NAME


@pytest.fixture(scope="module")
def shopify_schema() -> GraphQLSchema:
    path = _schema_path()
    if not path.is_file():
        pytest.fail(
            f"Shopify's Admin schema not found at {path}: check out shared/ beside the repository "
            "or set BRIDGE_SHARED_DIR; our GraphQL documents must be validated against it"
        )
    # assume_valid: Shopify's live schema breaks one rule newer graphql-core releases enforce on
    # schemas (a field deprecated on a type but not on its interface); documents are still
    # validated in full against it.
    return build_schema(
        path.read_text(encoding="utf-8"), assume_valid=True, assume_valid_sdl=True, no_location=True
    )


def _pusher_operations() -> dict[str, GraphQLOperation]:
    found = {n: v for n, v in vars(shopify_push).items() if isinstance(v, GraphQLOperation)}
    stray = [
        n
        for n, v in vars(shopify_push).items()
        if isinstance(v, str) and v.lstrip().startswith(("query ", "mutation ", "{", "fragment "))
    ]
    assert not stray, f"GraphQL documents outside GraphQLOperation constants: {stray}"
    return found


OPERATIONS = _pusher_operations()


def test_the_pusher_module_lists_every_operation_it_defines() -> None:
    assert set(OPERATIONS.values()) == set(shopify_push.OPERATIONS)
    assert len({op.name for op in OPERATIONS.values()}) == len(OPERATIONS), "operation names must be unique"


@pytest.mark.parametrize("constant", sorted(OPERATIONS))
def test_pusher_document_is_valid_against_shopify_2026_07(
    shopify_schema: GraphQLSchema, constant: str
) -> None:
    operation = OPERATIONS[constant]
    document = parse(operation.document)
    errors = validate(shopify_schema, document)
    assert not errors, [e.message for e in errors]
    definitions = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(definitions) == 1
    assert definitions[0].name is not None and definitions[0].name.value == operation.name
    is_mutation = definitions[0].operation.value == "mutation"
    assert operation.idempotent or is_mutation


def test_pusher_sends_fulfillment_create_with_fulfillment_input(shopify_schema: GraphQLSchema) -> None:
    mutation = shopify_schema.mutation_type
    assert mutation is not None
    field = mutation.fields["fulfillmentCreate"]
    assert str(field.args["fulfillment"].type) == "FulfillmentInput!"
    assert field.deprecation_reason is None
    fulfillment_input = shopify_schema.get_type("FulfillmentInput")
    assert isinstance(fulfillment_input, GraphQLInputObjectType)
    assert (
        str(fulfillment_input.fields["lineItemsByFulfillmentOrder"].type)
        == "[FulfillmentOrderLineItemsInput!]!"
    )
    assert str(fulfillment_input.fields["trackingInfo"].type) == "FulfillmentTrackingInput"
    assert "fulfillmentCreate" in shopify_push.FULFILLMENT_CREATE.document
    assert not shopify_push.FULFILLMENT_CREATE.idempotent


def _named_types(schema: GraphQLSchema) -> dict[str, object]:
    return {n: t for n, t in schema.type_map.items() if not n.startswith("__")}


def test_fake_schema_is_a_subset_of_shopify_2026_07(shopify_schema: GraphQLSchema) -> None:
    fake = build_schema(fake_shopify.fake_schema_sdl())
    real = _named_types(shopify_schema)
    problems: list[str] = []
    for name, fake_type in _named_types(fake).items():
        real_type = real.get(name)
        if real_type is None or type(real_type) is not type(fake_type):
            problems.append(f"{name}: missing or of another kind in Shopify's schema")
            continue
        if isinstance(fake_type, GraphQLEnumType):
            assert isinstance(real_type, GraphQLEnumType)
            problems += [f"{name}.{v}" for v in fake_type.values if v not in real_type.values]
        elif isinstance(fake_type, GraphQLObjectType):
            assert isinstance(real_type, GraphQLObjectType)
            for field_name, field in fake_type.fields.items():
                real_field = real_type.fields.get(field_name)
                if real_field is None or str(real_field.type) != str(field.type):
                    problems.append(f"{name}.{field_name}: {field.type}")
                    continue
                for arg_name, arg in field.args.items():
                    real_arg = real_field.args.get(arg_name)
                    if real_arg is None or str(real_arg.type) != str(arg.type):
                        problems.append(f"{name}.{field_name}({arg_name}): {arg.type}")
                required = {a for a, v in real_field.args.items() if str(v.type).endswith("!")}
                problems += [f"{name}.{field_name}({a}) missing" for a in required - set(field.args)]
        elif isinstance(fake_type, GraphQLInputObjectType):
            assert isinstance(real_type, GraphQLInputObjectType)
            for field_name, input_field in fake_type.fields.items():
                real_input = real_type.fields.get(field_name)
                if real_input is None or str(real_input.type) != str(input_field.type):
                    problems.append(f"{name}.{field_name}: {input_field.type}")
            required = {f for f, v in real_type.fields.items() if str(v.type).endswith("!")}
            problems += [f"{name}.{f} (required) missing" for f in required - set(fake_type.fields)]
    assert not problems, problems
    assert fake.query_type is not None and fake.query_type.name == shopify_schema.query_type.name  # type: ignore[union-attr]
    assert fake.mutation_type is not None and fake.mutation_type.name == shopify_schema.mutation_type.name  # type: ignore[union-attr]


@pytest.mark.parametrize("constant", sorted(OPERATIONS))
def test_pusher_document_runs_on_the_fake_schema(constant: str) -> None:
    schema = fake_shopify.build_fake_schema()
    assert not validate(schema, parse(OPERATIONS[constant].document))
