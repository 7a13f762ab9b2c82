"""Every GraphQL document we send Shopify is valid against Shopify's 2026-07 Admin schema, and the
fake Shopify's schema is a faithful subset of it (same names, same types), so the fake cannot
accept what Shopify would refuse.

Shopify's schema is the in-repository subset `tests/contracts/shopify-admin-2026-07.graphql`,
derived from the full schema by `tools/derive_contracts.py` (see `tests/contracts/README.md`).
Documents are found, not listed: every `GraphQLOperation` in any module of `bridge.storefronts`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
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

import bridge.storefronts
from bridge.fakes import shopify as fake_shopify
from bridge.storefronts import shopify_push
from bridge.storefronts.shopify_graphql import GraphQLOperation

CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "shopify-admin-2026-07.graphql"
REGENERATE = (
    "if Shopify's 2026-07 schema has it, re-run tools/derive_contracts.py with the full schema "
    "(see tests/contracts/README.md) so the subset includes it"
)
_DOCUMENT_START = re.compile(r"^\s*(query|mutation|subscription|fragment)\b|^\s*\{")


@pytest.fixture(scope="module")
def shopify_schema() -> GraphQLSchema:
    # Built with full validation: the derived subset must be a valid schema on its own.
    return build_schema(CONTRACT.read_text(encoding="utf-8"))


def _storefront_modules() -> list[object]:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(bridge.storefronts.__path__, "bridge.storefronts.")
    ]


def _operations() -> dict[str, GraphQLOperation]:
    """`module.CONSTANT` -> operation, for every GraphQLOperation defined in bridge.storefronts
    (an operation imported into another module is listed once, under its first name)."""
    found: dict[int, tuple[str, GraphQLOperation]] = {}
    for module in _storefront_modules():
        for name, value in vars(module).items():
            if isinstance(value, GraphQLOperation):
                found.setdefault(id(value), (f"{module.__name__}.{name}", value))  # type: ignore[attr-defined]
    return dict(found.values())


OPERATIONS = _operations()


def test_documents_are_found_in_every_storefront_module_and_only_as_operations() -> None:
    assert {id(op) for op in shopify_push.OPERATIONS} <= {id(op) for op in OPERATIONS.values()}
    stray = [
        f"{module.__name__}.{name}"  # type: ignore[attr-defined]
        for module in _storefront_modules()
        for name, value in vars(module).items()
        if isinstance(value, str) and _DOCUMENT_START.match(value)
    ]
    assert not stray, f"GraphQL documents outside GraphQLOperation constants: {stray}"


def test_each_module_lists_every_operation_it_defines() -> None:
    for module in _storefront_modules():
        listed = getattr(module, "OPERATIONS", None)
        if listed is None:
            continue
        own = {
            v
            for v in vars(module).values()
            if isinstance(v, GraphQLOperation) and v.document in {op.document for op in listed}
        }
        assert own == set(listed), module.__name__  # type: ignore[attr-defined]
    names = [op.name for op in OPERATIONS.values()]
    assert len(set(names)) == len(names), "operation names must be unique across storefront modules"


@pytest.mark.parametrize("constant", sorted(OPERATIONS))
def test_every_document_we_send_is_valid_against_shopify_2026_07(
    shopify_schema: GraphQLSchema, constant: str
) -> None:
    operation = OPERATIONS[constant]
    document = parse(operation.document)
    errors = validate(shopify_schema, document)
    assert not errors, f"{constant}: {[e.message for e in errors]}; {REGENERATE}"
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
    assert not problems, f"{problems}; {REGENERATE}"
    assert fake.query_type is not None and shopify_schema.query_type is not None
    assert fake.query_type.name == shopify_schema.query_type.name
    assert fake.mutation_type is not None and shopify_schema.mutation_type is not None
    assert fake.mutation_type.name == shopify_schema.mutation_type.name


@pytest.mark.parametrize("constant", sorted(OPERATIONS))
def test_every_document_we_send_runs_on_the_fake_schema(constant: str) -> None:
    schema = fake_shopify.build_fake_schema()
    assert not validate(schema, parse(OPERATIONS[constant].document))
