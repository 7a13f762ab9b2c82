"""The derived external contracts are whole, traceable and exactly what the derive script makes.

The full upstream files are not in the repository, so the fixtures are checked from inside:
every reference resolves, every operation we call or serve is there, no upstream prose is left,
each names its upstream file (commit and sha256), and each is a fixed point of the script's own
pruning (pruning it again with today's documents and operations gives it back byte for byte, so
nothing was added or edited by hand and nothing we use is missing).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from graphql import build_schema, parse, print_ast
from graphql.language import ast

from bridge.amazon.contract import (
    FBA_INVENTORY_V1,
    HEADER_KEY,
    MODELS,
    OUTBOUND_2020_07_01,
    load_model,
    operations,
)
from bridge.amazon.outbound import Ops20200701
from bridge.amazon.simulator import Simulator, create_simulator_app
from bridge.amazon.simulator.config import BASE_PATH
from bridge.amazon.spapi import Operation

ROOT = Path(__file__).resolve().parent.parent.parent
SHOPIFY = ROOT / "tests" / "contracts" / "shopify-admin-2026-07.graphql"
HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
PROSE_KEYS = {"description", "example", "examples", "x-amzn-api-sandbox", "x-docgen-enum-table-extension"}
REGENERATE = "re-run tools/derive_contracts.py (see tests/contracts/README.md)"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_contracts", ROOT / "tools" / "derive_contracts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("derive_contracts", module)
    spec.loader.exec_module(module)
    return module


derive = _load_script()


def _walk(node: Any, path: str = "$") -> list[tuple[str, str, Any]]:
    """(path, key, value) for every key of every object in a JSON document."""
    found: list[tuple[str, str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key, value))
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _walk(item, f"{path}[{i}]")
    return found


# ----------------------------------------------------------------------------- Amazon


@pytest.mark.parametrize("name", MODELS)
def test_amazon_contract_names_its_upstream_file(name: str) -> None:
    model = load_model(name)
    header = model[HEADER_KEY]
    source = header["source"]
    assert source["repository"] == "amzn/selling-partner-api-models"
    assert source["path"].startswith("models/") and source["path"].endswith(".json")
    assert HEX40.match(source["commit"]) and HEX64.match(source["sha256"])
    assert source["version"] == model["info"]["version"]
    assert header["generator"] == "tools/derive_contracts.py"
    assert sorted(header["operations"]) == sorted(operations(model)), "the header lists what the file holds"


@pytest.mark.parametrize("name", MODELS)
def test_amazon_contract_holds_no_upstream_prose_and_every_reference_resolves(name: str) -> None:
    model = load_model(name)
    prose = [
        f"{path}.{key}"
        for path, key, value in _walk(model)
        if key in PROSE_KEYS and not (key == "description" and path.endswith(".properties"))
    ]
    assert not prose, f"upstream prose left in {name}: {prose[:5]}; {REGENERATE}"
    definitions = model["definitions"]
    dangling = [
        f"{path}: {value}"
        for path, key, value in _walk(model)
        if key == "$ref" and value.removeprefix("#/definitions/") not in definitions
    ]
    assert not dangling, dangling


def test_every_outbound_operation_the_client_calls_is_in_amazons_model() -> None:
    contracts = operations(load_model(OUTBOUND_2020_07_01))
    calls = [op for op in vars(Ops20200701).values() if isinstance(op, Operation)]
    assert len(calls) == 12
    for op in calls:
        contract = contracts.get(op.name)
        assert contract is not None, f"{op.name} is not in the derived model; {REGENERATE}"
        assert (contract.method, contract.path) == (op.method, op.path), op.name


def test_every_outbound_route_the_simulator_serves_is_an_operation_in_amazons_model() -> None:
    contracts = operations(load_model(OUTBOUND_2020_07_01))
    app = create_simulator_app(Simulator())
    routes = [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(BASE_PATH + "/")
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    ]
    assert len(routes) == 12
    for method, route in routes:
        pattern = re.compile("^" + re.sub(r"<[^>]+>", "[^/]+", route) + "$")
        matches = [
            c.operation_id
            for c in contracts.values()
            if c.method == method and pattern.match(re.sub(r"\{[^}]+\}", "x", c.path))
        ]
        assert len(matches) == 1, f"{method} {route}: {matches}; {REGENERATE}"


def test_the_inventory_contract_holds_get_inventory_summaries() -> None:
    contract = operations(load_model(FBA_INVENTORY_V1))["getInventorySummaries"]
    assert (contract.method, contract.path) == ("GET", "/fba/inventory/v1/summaries")
    params = {p.name: p for p in contract.parameters}
    assert params["marketplaceIds"].required and params["marketplaceIds"].schema["maxItems"] == 1
    assert params["granularityType"].schema["enum"] == ["Marketplace"]


@pytest.mark.parametrize(
    ("name", "fixture", "ops"),
    [
        (OUTBOUND_2020_07_01, derive.OUTBOUND_FIXTURE, derive.operations_we_use),
        (FBA_INVENTORY_V1, derive.INVENTORY_FIXTURE, lambda _m: sorted(derive.INVENTORY_OPERATIONS)),
        ("notifications_v1", derive.NOTIFICATIONS_FIXTURE, lambda _m: list(derive.NOTIFICATIONS_OPERATIONS)),
    ],
)
def test_amazon_contract_is_exactly_what_the_script_derives(name: str, fixture: Path, ops: Any) -> None:
    model = json.loads(fixture.read_text(encoding="utf-8"))
    wanted = ops(model)
    assert wanted == model[HEADER_KEY]["operations"], f"the operations we use changed; {REGENERATE}"
    assert derive.json_content_digest(model) == model[HEADER_KEY]["derived_sha256"], (
        f"{fixture.name} was edited by hand; {REGENERATE}"
    )
    again = derive.dump_json(derive.seal_json(derive.prune_swagger(model, wanted, model[HEADER_KEY])))
    assert again == fixture.read_text(encoding="utf-8"), f"{fixture.name} was edited by hand; {REGENERATE}"


# ----------------------------------------------------------------------------- Shopify


def test_shopify_contract_names_its_upstream_file_and_holds_no_descriptions() -> None:
    text = SHOPIFY.read_text(encoding="utf-8")
    header = derive.read_shopify_header(text)
    assert header["version"] == "2026-07" and HEX64.match(header["sha256"])
    assert "commit" in header["origin"]
    build_schema(text)  # a valid schema on its own
    described = []
    document = parse(text, no_location=True)
    stack: list[Any] = list(document.definitions)
    while stack:
        node = stack.pop()
        if getattr(node, "description", None) is not None:
            described.append(getattr(getattr(node, "name", None), "value", "?"))
        for key in ("fields", "arguments", "values"):
            stack.extend(getattr(node, key, None) or ())
        for directive in getattr(node, "directives", None) or ():
            if directive.name.value == "deprecated":
                assert not directive.arguments, "deprecation reasons are upstream prose"
    assert not described, described


def test_shopify_contract_is_exactly_what_the_script_derives() -> None:
    text = SHOPIFY.read_text(encoding="utf-8")
    recorded = derive.read_shopify_header(text)
    assert derive.sdl_content_digest(text) == recorded["derived-sha256"], f"edited by hand; {REGENERATE}"
    header = derive.shopify_header(recorded)
    again = derive.prune_sdl(text, derive.graphql_documents(), [derive.fake_shopify_sdl()], header)
    assert again == text, f"{SHOPIFY.name} differs from what our documents and the fake use; {REGENERATE}"


# ----------------------------------------------------------------------------- the script itself

UPSTREAM_MODEL: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "T", "version": "v9", "description": "prose", "license": {"name": "Apache 2.0"}},
    "paths": {
        "/things/{id}": {
            "x-amzn-api-sandbox": {"static": []},
            "get": {
                "operationId": "getThing",
                "description": "prose",
                "tags": ["t"],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "type": "string", "maxLength": 9},
                    {"name": "n", "in": "query", "type": "integer", "format": "int32", "description": "p"},
                ],
                "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Thing"}}},
            },
            "put": {"operationId": "putThing", "responses": {"200": {"description": "ok"}}},
        }
    },
    "definitions": {
        "Thing": {
            "type": "object",
            "description": "prose",
            "required": ["part"],
            "properties": {
                "part": {"$ref": "#/definitions/Part"},
                "description": {"type": "string", "maxLength": 3, "example": "abc"},
            },
        },
        "Part": {"type": "string", "enum": ["A"], "x-docgen-enum-table-extension": [{"value": "A"}]},
        "Unused": {"type": "string"},
    },
}


def test_the_swagger_pruner_keeps_constraints_and_referenced_definitions_and_drops_prose() -> None:
    pruned = derive.prune_swagger(UPSTREAM_MODEL, ["getThing"], {"source": "x"})
    assert set(pruned["definitions"]) == {"Thing", "Part"}
    assert pruned["definitions"]["Thing"] == {
        "type": "object",
        "required": ["part"],
        "properties": {
            "part": {"$ref": "#/definitions/Part"},
            "description": {"type": "string", "maxLength": 3},
        },
    }
    assert pruned["definitions"]["Part"] == {"type": "string", "enum": ["A"]}
    assert set(pruned["paths"]["/things/{id}"]) == {"get"}
    assert pruned["paths"]["/things/{id}"]["get"]["parameters"][1] == {
        "name": "n",
        "in": "query",
        "type": "integer",
        "format": "int32",
    }
    assert pruned["info"] == {"title": "T", "version": "v9", "license": {"name": "Apache 2.0"}}
    text = derive.dump_json(pruned)
    assert derive.dump_json(derive.prune_swagger(pruned, ["getThing"], {"source": "x"})) == text


def test_the_swagger_pruner_refuses_unknown_keywords_and_missing_operations() -> None:
    odd = {
        **UPSTREAM_MODEL,
        "definitions": {**UPSTREAM_MODEL["definitions"], "Part": {"type": "string", "x-new": 1}},
    }
    with pytest.raises(derive.DeriveError, match="x-new"):
        derive.prune_swagger(odd, ["getThing"], {})
    with pytest.raises(derive.DeriveError, match="getNothing"):
        derive.prune_swagger(UPSTREAM_MODEL, ["getThing", "getNothing"], {})


UPSTREAM_SDL = '''
schema { query: Query mutation: Mutation }
"""prose"""
directive @costly(weight: Int) on FIELD_DEFINITION
type Query {
  "prose"
  shop(id: ID!, "prose" locale: String = "en"): Shop @costly(weight: 2)
  unused: Int
}
type Mutation { rename(input: RenameInput!): Shop }
interface Node { id: ID! }
type Shop implements Node {
  id: ID!
  name(short: Boolean): String!
  kind: Kind @deprecated(reason: "prose")
  other: Int
}
enum Kind { BIG SMALL @deprecated(reason: "prose") }
input RenameInput { id: ID! name: String flags: [Flag!] }
input Flag { key: String! }
'''


def test_the_sdl_pruner_keeps_what_documents_use_closed_over_and_without_prose() -> None:
    documents = {"q": "query Q($id: ID!) { shop(id: $id) { name kind } }"}
    extra = ["type Mutation { rename(input: RenameInput!): Shop } type Shop { id: ID! }"]
    text = derive.prune_sdl(UPSTREAM_SDL, documents, extra, ["# header"])
    schema = build_schema(text)
    shop = schema.get_type("Shop")
    assert set(shop.fields) == {"id", "name", "kind"}  # type: ignore[union-attr]
    assert set(shop.fields["name"].args) == set()  # type: ignore[union-attr]
    assert set(schema.query_type.fields) == {"shop"}  # type: ignore[union-attr]
    assert set(schema.query_type.fields["shop"].args) == {"id"}  # type: ignore[union-attr]
    assert set(schema.get_type("RenameInput").fields) == {"id", "name", "flags"}  # type: ignore[union-attr]
    assert schema.get_type("Flag") is not None and schema.get_type("Node") is None
    assert '"' not in text.replace('"en"', "") and "prose" not in text
    assert "@costly" not in text and text.startswith("# header\n")
    printed = print_ast(parse(text))
    assert derive.prune_sdl(text, documents, extra, ["# header"]) == text, "pruning is a fixed point"
    assert isinstance(parse(printed).definitions[0], ast.SchemaDefinitionNode)


def test_the_sdl_pruner_refuses_documents_the_upstream_schema_rejects() -> None:
    with pytest.raises(derive.DeriveError, match="not valid"):
        derive.prune_sdl(UPSTREAM_SDL, {"q": "query Q { nope }"}, [], [])
