"""Every GraphQL document the Shopify inventory sync sends is valid against Shopify's real 2026-07
Admin schema and runs on the fake, and what it relies on in that schema is really there
(`changeFromQuantity`, the required idempotency directive, `quantities(names:)`)."""

from __future__ import annotations

import pytest
from graphql import GraphQLInputObjectType, GraphQLSchema, OperationDefinitionNode, parse, validate

from bridge.fakes import shopify as fake_shopify
from bridge.storefronts import shopify_inventory
from bridge.storefronts.shopify_push import GraphQLOperation
from tests.unit.test_shopify_graphql_schema import shopify_schema  # noqa: F401  (the fixture)


def _operations() -> dict[str, GraphQLOperation]:
    found = {n: v for n, v in vars(shopify_inventory).items() if isinstance(v, GraphQLOperation)}
    stray = [
        n
        for n, v in vars(shopify_inventory).items()
        if isinstance(v, str) and v.lstrip().startswith(("query ", "mutation ", "{", "fragment "))
    ]
    assert not stray, f"GraphQL documents outside GraphQLOperation constants: {stray}"
    return found


OPERATIONS = _operations()


def test_the_module_lists_every_operation_it_defines() -> None:
    assert set(OPERATIONS.values()) == set(shopify_inventory.OPERATIONS)
    assert len({op.name for op in OPERATIONS.values()}) == len(OPERATIONS)


@pytest.mark.parametrize("constant", sorted(OPERATIONS))
def test_inventory_document_is_valid_against_shopify_2026_07(
    shopify_schema: GraphQLSchema,  # noqa: F811
    constant: str,
) -> None:
    operation = OPERATIONS[constant]
    document = parse(operation.document)
    errors = validate(shopify_schema, document)
    assert not errors, [e.message for e in errors]
    [definition] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert definition.name is not None and definition.name.value == operation.name


@pytest.mark.parametrize("constant", sorted(OPERATIONS))
def test_inventory_document_runs_on_the_fake_schema(constant: str) -> None:
    assert not validate(fake_shopify.build_fake_schema(), parse(OPERATIONS[constant].document))


def test_set_quantities_uses_what_2026_07_has(shopify_schema: GraphQLSchema) -> None:  # noqa: F811
    mutation = shopify_schema.mutation_type
    assert mutation is not None
    field = mutation.fields["inventorySetQuantities"]
    assert field.deprecation_reason is None
    assert str(field.args["input"].type) == "InventorySetQuantitiesInput!"
    quantity_input = shopify_schema.get_type("InventoryQuantityInput")
    assert isinstance(quantity_input, GraphQLInputObjectType)
    # compare-and-swap is `changeFromQuantity` in 2026-07 (`compareQuantity` is gone)
    assert str(quantity_input.fields["changeFromQuantity"].type) == "Int"
    assert "compareQuantity" not in quantity_input.fields
    set_input = shopify_schema.get_type("InventorySetQuantitiesInput")
    assert isinstance(set_input, GraphQLInputObjectType)
    assert "ignoreCompareQuantity" not in set_input.fields
    directive = shopify_schema.get_directive("idempotent")
    assert directive is not None and str(directive.args["key"].type) == "String!"
    assert "@idempotent(key: $idempotencyKey)" in shopify_inventory.INVENTORY_SET_QUANTITIES.document
