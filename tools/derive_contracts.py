#!/usr/bin/env python3
"""Derive the external-contract fixtures from the full upstream files.

The tests (and the MCF simulator, at run time) check us against the contracts of the systems we
talk to. The full upstream files are large and mostly prose, so the repository keeps only the
parts we use, with every description removed, and this script that cuts them out:

- `tests/contracts/shopify-admin-2026-07.graphql`, from Shopify's Admin GraphQL schema 2026-07
  (SDL): the types, fields, arguments, enums and input objects our GraphQL documents (every
  `GraphQLOperation` in `bridge`) and the fake Shopify's schema use, closed over so that the
  subset is itself a valid schema.
- `bridge/amazon/contract/fulfillmentOutbound_2020-07-01.json`, from amzn/selling-partner-api-models
  `models/fulfillment-outbound-api-model/fulfillmentOutbound_2020-07-01.json`: the operations the
  client calls and the simulator serves (found in code), with their parameters, responses and
  every definition they reference; every constraint kept.
- `bridge/amazon/contract/fbaInventory_v1.json`, from the same repository,
  `models/fba-inventory-api-model/fbaInventory.json`: `getInventorySummaries`, the same way.
- `tests/contracts/notifications_v1.json`, from `models/notifications-api-model/notifications.json`:
  the destination and subscription operations `fba-bridge amazon subscribe` calls.
- `tests/fixtures/shopify/tracking_companies.json`, from the same Shopify schema: the carrier
  names Shopify recognises (listed in `FulfillmentTrackingInfo.company`'s description).

Where to get the upstream files:

- Amazon: https://github.com/amzn/selling-partner-api-models at the commit recorded in each
  fixture's `x-fba-bridge-contract.source.commit` (the raw file URL is
  `https://raw.githubusercontent.com/amzn/selling-partner-api-models/<commit>/<path>`).
- Shopify: a standard introspection of the Admin API version 2026-07 printed as SDL (any shop,
  any app with read access; e.g. Shopify's `graphql-codegen` or `rover`-style introspection
  tooling). The copy used is a public capture, recorded in the fixture's header comment
  (repository, path, commit, sha256).

Regenerate (from the repository root, in the project's virtualenv, because the script imports
`bridge` to find the documents we send and the operations we call):

    .venv/bin/python tools/derive_contracts.py \\
        --shopify-schema PATH/shopify-admin-2026-07.graphql \\
        --outbound-model PATH/fulfillmentOutbound_2020-07-01.json \\
        --inventory-model PATH/fbaInventory.json \\
        --notifications-model PATH/notifications.json

Each input is optional; only the fixtures whose input is given are rewritten. `--check` compares
instead of writing (exit status 1 when a fixture is out of date). The output is deterministic
(sorted keys and type names), so running it twice changes nothing. When an upstream file is not
the one recorded in the fixture (a different sha256), the script refuses unless you name where
the new file came from with `--amazon-commit` / `--shopify-origin`.

Only the standard library, graphql-core and `bridge` itself are used.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import importlib
import json
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHOPIFY_FIXTURE = ROOT / "tests" / "contracts" / "shopify-admin-2026-07.graphql"
OUTBOUND_FIXTURE = ROOT / "bridge" / "amazon" / "contract" / "fulfillmentOutbound_2020-07-01.json"
INVENTORY_FIXTURE = ROOT / "bridge" / "amazon" / "contract" / "fbaInventory_v1.json"
NOTIFICATIONS_FIXTURE = ROOT / "tests" / "contracts" / "notifications_v1.json"
TRACKING_COMPANIES_FIXTURE = ROOT / "tests" / "fixtures" / "shopify" / "tracking_companies.json"

AMAZON_REPOSITORY = "amzn/selling-partner-api-models"
OUTBOUND_PATH = "models/fulfillment-outbound-api-model/fulfillmentOutbound_2020-07-01.json"
INVENTORY_PATH = "models/fba-inventory-api-model/fbaInventory.json"
NOTIFICATIONS_PATH = "models/notifications-api-model/notifications.json"
#: What `fba-bridge amazon subscribe` calls and the simulator serves.
NOTIFICATIONS_OPERATIONS = (
    "createDestination",
    "createSubscription",
    "deleteSubscriptionById",
    "getDestinations",
    "getSubscription",
)
#: FBA Inventory operations kept although no module calls them yet (inventory sync builds on them).
INVENTORY_OPERATIONS = ("getInventorySummaries",)

HEADER_KEY = "x-fba-bridge-contract"
SHOPIFY_HEADER_PREFIX = "# fba-bridge contract:"
GENERATOR = "tools/derive_contracts.py"


class DeriveError(Exception):
    """The upstream file does not contain what we use, or is not the recorded version."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- Amazon (Swagger 2.0)

#: Schema keywords kept as they are (everything that constrains a value).
_SCHEMA_KEEP = frozenset(
    {
        "$ref",
        "type",
        "format",
        "enum",
        "required",
        "maxLength",
        "minLength",
        "maximum",
        "minimum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "pattern",
        "multipleOf",
        "default",
        "readOnly",
        "discriminator",
        "x-nullable",
    }
)
#: Keywords that hold schemas.
_SCHEMA_NESTED = frozenset({"items", "additionalProperties", "allOf", "properties"})
#: Prose and documentation-tooling keys: dropped.
_PROSE = frozenset(
    {
        "description",
        "title",
        "example",
        "examples",
        "externalDocs",
        "x-docgen-enum-table-extension",
        "x-amzn-api-sandbox",
        "x-amzn-api-sandbox-only",
        "x-amzn-api-internal",  # marks operations Amazon documents as internal-only; no constraint
        "tags",
        "summary",
    }
)
_PARAMETER_KEEP = (_SCHEMA_KEEP - {"$ref", "required", "readOnly", "discriminator"}) | {
    "name",
    "in",
    "required",
    "collectionFormat",
    "allowEmptyValue",
}
_OPERATION_KEEP = frozenset({"operationId", "consumes", "produces", "parameters", "responses", "deprecated"})
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _unknown(where: str, key: str) -> DeriveError:
    return DeriveError(
        f"{where}: keyword {key!r} is neither a known constraint nor known prose; "
        "decide whether it constrains values and teach tools/derive_contracts.py"
    )


def strip_schema(schema: Any, where: str) -> Any:
    """A Swagger schema object without prose, every constraint kept; unknown keywords are an error."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PROSE:
            continue
        if key == "properties":
            out[key] = {name: strip_schema(sub, f"{where}.{name}") for name, sub in value.items()}
        elif key == "allOf":
            out[key] = [strip_schema(sub, f"{where}.allOf[{i}]") for i, sub in enumerate(value)]
        elif key in _SCHEMA_NESTED:
            out[key] = strip_schema(value, f"{where}.{key}")
        elif key in _SCHEMA_KEEP:
            out[key] = value
        else:
            raise _unknown(where, key)
    return out


def _strip_parameter(param: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in param.items():
        if key in _PROSE:
            continue
        if key == "schema":
            out[key] = strip_schema(value, f"{where}.schema")
        elif key == "items":
            out[key] = strip_schema(value, f"{where}.items")
        elif key in _PARAMETER_KEEP:
            out[key] = value
        else:
            raise _unknown(where, key)
    return out


def _strip_response(response: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in response.items():
        if key in _PROSE:
            continue
        if key == "schema":
            out[key] = strip_schema(value, f"{where}.schema")
        elif key == "headers":
            out[key] = {name: strip_schema(h, f"{where}.headers.{name}") for name, h in value.items()}
        else:
            raise _unknown(where, key)
    return out


def _strip_operation(operation: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in operation.items():
        if key in _PROSE:
            continue
        if key == "parameters":
            out[key] = [_strip_parameter(p, f"{where}.parameters[{i}]") for i, p in enumerate(value)]
        elif key == "responses":
            out[key] = {code: _strip_response(r, f"{where}.responses.{code}") for code, r in value.items()}
        elif key in _OPERATION_KEEP:
            out[key] = value
        else:
            raise _unknown(where, key)
    return out


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _definition_name(ref: str) -> str:
    prefix = "#/definitions/"
    if not ref.startswith(prefix):
        raise DeriveError(f"only local definition references are supported, found {ref!r}")
    return ref[len(prefix) :]


def prune_swagger(
    model: dict[str, Any], operation_ids: Iterable[str], source: dict[str, Any]
) -> dict[str, Any]:
    """The operations `operation_ids` of a Swagger 2.0 model with every definition they reference,
    without prose; `source` becomes the `x-fba-bridge-contract` header."""
    wanted = set(operation_ids)
    paths: dict[str, dict[str, Any]] = {}
    for path, item in model.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation and operation.get("operationId") in wanted:
                kept = paths.setdefault(path, {})
                if "parameters" in item:
                    kept["parameters"] = [
                        _strip_parameter(p, f"paths.{path}.parameters[{i}]")
                        for i, p in enumerate(item["parameters"])
                    ]
                kept[method] = _strip_operation(operation, f"paths.{path}.{method}")
                wanted.discard(operation["operationId"])
    if wanted:
        raise DeriveError(f"operations not in the upstream model: {', '.join(sorted(wanted))}")
    definitions = model.get("definitions", {})
    kept_definitions: dict[str, Any] = {}
    pending = [_definition_name(r) for r in _refs(paths)]
    while pending:
        name = pending.pop()
        if name in kept_definitions:
            continue
        if name not in definitions:
            raise DeriveError(f"definition {name!r} is referenced but not defined upstream")
        kept_definitions[name] = strip_schema(definitions[name], f"definitions.{name}")
        pending.extend(_definition_name(r) for r in _refs(kept_definitions[name]))
    info = model.get("info", {})
    out: dict[str, Any] = {
        HEADER_KEY: source,
        "swagger": model.get("swagger", "2.0"),
        "info": {k: info[k] for k in ("title", "version", "license") if k in info},
        "paths": paths,
        "definitions": kept_definitions,
    }
    for key in ("host", "basePath", "schemes", "consumes", "produces"):
        if key in model:
            out[key] = model[key]
    return out


def dump_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def json_content_digest(document: dict[str, Any]) -> str:
    """sha256 of the derived content (everything but the header), as the script writes it."""
    return sha256_of(dump_json({k: v for k, v in document.items() if k != HEADER_KEY}).encode("utf-8"))


def seal_json(document: dict[str, Any]) -> dict[str, Any]:
    """Record the content's sha256 in the header, so a hand edit shows."""
    document[HEADER_KEY] = {**document[HEADER_KEY], "derived_sha256": json_content_digest(document)}
    return document


def sdl_content_digest(text: str) -> str:
    """sha256 of a derived SDL's body (everything after the header comment block)."""
    return sha256_of(text.split("\n\n", 1)[1].encode("utf-8"))


def _path_regex(template: str) -> re.Pattern[str]:
    """`/a/{x}/b` and `/a/<x>/b` both as a pattern matching any one segment in place of `x`."""
    parts = re.split(r"\{[^}]+\}|<[^>]+>", template)
    return re.compile("^" + "[^/]+".join(re.escape(p) for p in parts) + "$")


def operations_we_use(model: dict[str, Any]) -> list[str]:
    """operationIds of every Fulfillment Outbound call the client makes or the simulator serves.

    Found in code, not listed by hand: `Ops20200701` (the client) and the simulator's Flask
    routes under its base path. A route or call with no operation in Amazon's model is an error.
    """
    from bridge.amazon.outbound import Ops20200701
    from bridge.amazon.simulator import Simulator, create_simulator_app
    from bridge.amazon.simulator.config import BASE_PATH
    from bridge.amazon.spapi import Operation

    calls = {(op.method.upper(), op.path) for op in vars(Ops20200701).values() if isinstance(op, Operation)}
    app = create_simulator_app(Simulator())
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(BASE_PATH + "/") or rule.rule == BASE_PATH:
            calls |= {(m, rule.rule) for m in rule.methods or () if m not in {"HEAD", "OPTIONS"}}
    found: set[str] = set()
    for method, template in sorted(calls):
        pattern = _path_regex(template)
        matches = [
            operation["operationId"]
            for path, item in model["paths"].items()
            for m, operation in item.items()
            if m.upper() == method and isinstance(operation, dict) and pattern.match(_placeholder(path))
        ]
        if len(matches) != 1:
            raise DeriveError(f"{method} {template}: {len(matches)} operations in Amazon's model match")
        found.add(matches[0])
    return sorted(found)


def _placeholder(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X", path)


# ----------------------------------------------------------------------------- Shopify (GraphQL SDL)


def graphql_documents() -> dict[str, str]:
    """Every `GraphQLOperation` defined in any module of `bridge`, by `module.CONSTANT`."""
    import bridge
    from bridge.storefronts.shopify_push import GraphQLOperation

    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(bridge.__path__, "bridge."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, GraphQLOperation):
                found.setdefault(value.document, f"{info.name}.{name}")
    return {where: document for document, where in found.items()}


def _replace(node: Any, **changes: Any) -> Any:
    """A copy of an AST node with some attributes changed (graphql-core 3.2 and 3.3 alike)."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return dataclasses.replace(node, **changes)
    clone = copy.copy(node)
    for key, value in changes.items():
        setattr(clone, key, value)
    return clone


@dataclass
class _Usage:
    """What a set of documents and SDL subsets touch in the full schema."""

    types: set[str] = dataclasses.field(default_factory=set)
    fields: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    args: dict[tuple[str, str], set[str]] = dataclasses.field(default_factory=dict)
    directives: set[str] = dataclasses.field(default_factory=set)

    def field(self, type_name: str, field_name: str, args: Iterable[str] = ()) -> bool:
        names = self.fields.setdefault(type_name, set())
        arg_names = self.args.setdefault((type_name, field_name), set())
        before = (len(names), len(arg_names))
        names.add(field_name)
        arg_names.update(args)
        self.types.add(type_name)
        return (len(names), len(arg_names)) != before


def _document_usage(schema: Any, documents: dict[str, str], usage: _Usage) -> None:
    from graphql import TypeInfo, TypeInfoVisitor, Visitor, parse, validate, visit

    class Collect(Visitor):
        def __init__(self, info: TypeInfo) -> None:
            super().__init__()
            self.info = info

        def enter_field(self, node: Any, *_: Any) -> None:
            parent = self.info.get_parent_type()
            if parent is not None and not node.name.value.startswith("__"):
                usage.field(parent.name, node.name.value, (a.name.value for a in node.arguments or ()))

        def enter_named_type(self, node: Any, *_: Any) -> None:
            usage.types.add(node.name.value)

        def enter_directive(self, node: Any, *_: Any) -> None:
            usage.directives.add(node.name.value)

    for where, text in sorted(documents.items()):
        document = parse(text)
        errors = validate(schema, document)
        if errors:
            raise DeriveError(f"{where} is not valid against the upstream schema: {errors[0].message}")
        info = TypeInfo(schema)
        visit(document, TypeInfoVisitor(info, Collect(info)))


def _sdl_usage(sdl: str, usage: _Usage) -> None:
    """Everything an SDL subset (the fake Shopify's schema) declares counts as used."""
    from graphql import parse
    from graphql.language import ast

    for definition in parse(sdl).definitions:
        if isinstance(definition, ast.SchemaDefinitionNode):
            usage.types.update(op.type.name.value for op in definition.operation_types)
        elif isinstance(
            definition,
            ast.ObjectTypeDefinitionNode
            | ast.InterfaceTypeDefinitionNode
            | ast.ObjectTypeExtensionNode
            | ast.InterfaceTypeExtensionNode,
        ):
            name = definition.name.value
            usage.types.add(name)
            for field in definition.fields or ():
                usage.field(name, field.name.value, (a.name.value for a in field.arguments or ()))
        elif isinstance(definition, ast.TypeDefinitionNode):
            usage.types.add(definition.name.value)


def _is_required(arg: Any) -> bool:
    from graphql import GraphQLNonNull

    return (
        isinstance(arg.type, GraphQLNonNull)
        and arg.ast_node is not None
        and arg.ast_node.default_value is None
    )


def _close(
    schema: Any, usage: _Usage
) -> tuple[set[str], dict[str, set[str]], dict[tuple[str, str], set[str]]]:
    """Close `usage` over the schema: every type a kept field, argument or input field names."""
    from graphql import (
        GraphQLInputObjectType,
        GraphQLInterfaceType,
        GraphQLObjectType,
        GraphQLUnionType,
        get_named_type,
        is_specified_scalar_type,
    )

    kept: set[str] = set()
    fields = {k: set(v) for k, v in usage.fields.items()}
    args = {k: set(v) for k, v in usage.args.items()}
    pending = list(usage.types) + [
        op.name
        for op in (schema.query_type, schema.mutation_type)
        if op is not None and op.name in usage.types
    ]
    changed = True
    while changed:
        changed = False
        while pending:
            name = pending.pop()
            graphql_type = schema.get_type(name)
            if graphql_type is None:
                raise DeriveError(f"type {name!r} is not in the upstream schema")
            if name in kept or is_specified_scalar_type(graphql_type):
                kept.add(name)
                continue
            kept.add(name)
            changed = True
            if isinstance(graphql_type, GraphQLInputObjectType):
                pending.extend(get_named_type(f.type).name for f in graphql_type.fields.values())
        for name in sorted(kept):
            graphql_type = schema.get_type(name)
            if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
                for interface in graphql_type.interfaces:
                    if interface.name in kept:
                        for field_name in fields.get(interface.name, ()):
                            inherited = args.get((interface.name, field_name), set())
                            if _add_field(fields, args, name, field_name, inherited):
                                changed = True
                for field_name in sorted(fields.get(name, ())):
                    field = graphql_type.fields.get(field_name)
                    if field is None:
                        raise DeriveError(f"{name}.{field_name} is not in the upstream schema")
                    required = {a for a, v in field.args.items() if _is_required(v)}
                    if _add_field(fields, args, name, field_name, required):
                        changed = True
                    pending.append(get_named_type(field.type).name)
                    pending.extend(
                        get_named_type(field.args[a].type).name
                        for a in args.get((name, field_name), ())
                        if a in field.args
                    )
            elif isinstance(graphql_type, GraphQLUnionType):
                if not any(member.name in kept for member in graphql_type.types):
                    raise DeriveError(f"union {name} is used but none of its members is; select one")
        pending = [p for p in pending if p not in kept]
        changed = changed or bool(pending)
    for name in kept:
        graphql_type = schema.get_type(name)
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType) and not fields.get(name):
            raise DeriveError(f"type {name} is kept but none of its fields is used")
    return kept, fields, args


def _add_field(
    fields: dict[str, set[str]],
    args: dict[tuple[str, str], set[str]],
    type_name: str,
    field: str,
    more: set[str],
) -> bool:
    names = fields.setdefault(type_name, set())
    arg_names = args.setdefault((type_name, field), set())
    before = (len(names), len(arg_names))
    names.add(field)
    arg_names.update(more)
    return (len(names), len(arg_names)) != before


def _strip_directives(directives: Any, kept_directives: set[str]) -> tuple[Any, ...]:
    """Keep directives the subset defines; `@deprecated` stays but loses its (prose) reason."""
    out = []
    for directive in directives or ():
        name = directive.name.value
        if name == "deprecated":
            out.append(_replace(directive, arguments=()))
        elif name in kept_directives:
            out.append(directive)
    return tuple(out)


def prune_sdl(full_sdl: str, documents: dict[str, str], extra_sdl: Iterable[str], header: list[str]) -> str:
    """The subset of `full_sdl` that `documents` and the SDL subsets `extra_sdl` use, as valid SDL."""
    from graphql import build_ast_schema, parse, print_ast
    from graphql.language import ast

    full = parse(full_sdl, no_location=True)
    schema = build_ast_schema(full, assume_valid=True, assume_valid_sdl=True)
    usage = _Usage()
    _document_usage(schema, documents, usage)
    for sdl in extra_sdl:
        _sdl_usage(sdl, usage)
    kept, fields, args = _close(schema, usage)

    directive_defs = {d.name.value: d for d in full.definitions if isinstance(d, ast.DirectiveDefinitionNode)}
    kept_directives = set(usage.directives) & set(directive_defs)

    def prune_type(node: Any) -> Any:
        name = node.name.value
        changes: dict[str, Any] = {
            "description": None,
            "directives": _strip_directives(node.directives, kept_directives),
        }
        if isinstance(node, ast.ObjectTypeDefinitionNode | ast.InterfaceTypeDefinitionNode):
            changes["interfaces"] = tuple(i for i in node.interfaces or () if i.name.value in kept)
            changes["fields"] = tuple(
                _replace(
                    f,
                    description=None,
                    directives=_strip_directives(f.directives, kept_directives),
                    arguments=tuple(
                        _replace(
                            a, description=None, directives=_strip_directives(a.directives, kept_directives)
                        )
                        for a in f.arguments or ()
                        if a.name.value in args.get((name, f.name.value), set())
                    ),
                )
                for f in sorted(node.fields or (), key=lambda f: f.name.value)
                if f.name.value in fields.get(name, set())
            )
        elif isinstance(node, ast.InputObjectTypeDefinitionNode):
            changes["fields"] = tuple(
                _replace(f, description=None, directives=_strip_directives(f.directives, kept_directives))
                for f in sorted(node.fields or (), key=lambda f: f.name.value)
            )
        elif isinstance(node, ast.EnumTypeDefinitionNode):
            changes["values"] = tuple(
                _replace(v, description=None, directives=_strip_directives(v.directives, kept_directives))
                for v in node.values or ()
            )
        elif isinstance(node, ast.UnionTypeDefinitionNode):
            changes["types"] = tuple(t for t in node.types or () if t.name.value in kept)
        return _replace(node, **changes)

    definitions: list[Any] = []
    for definition in full.definitions:
        if isinstance(definition, ast.SchemaDefinitionNode):
            operations = tuple(op for op in definition.operation_types if op.type.name.value in kept)
            definitions.append(
                _replace(definition, description=None, directives=(), operation_types=operations)
            )
    for name in sorted(kept_directives):
        node = directive_defs[name]
        definitions.append(
            _replace(
                node,
                description=None,
                arguments=tuple(_replace(a, description=None) for a in node.arguments or ()),
            )
        )
    by_name = {
        d.name.value: d
        for d in full.definitions
        if isinstance(d, ast.TypeDefinitionNode) and d.name.value in kept
    }
    definitions.extend(prune_type(by_name[name]) for name in sorted(by_name))
    for directive in kept_directives:
        for arg in directive_defs[directive].arguments or ():
            if _named(arg.type) not in kept and _named(arg.type) not in _BUILTIN_SCALARS:
                raise DeriveError(f"directive @{directive} needs type {_named(arg.type)}")
    body = print_ast(ast.DocumentNode(definitions=tuple(definitions))).rstrip("\n") + "\n"
    seal = f"# derived-sha256: {sha256_of(body.encode('utf-8'))}" if header else None
    return "\n".join([*header, *([seal] if seal else [])]) + "\n\n" + body


_BUILTIN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})


def _named(type_node: Any) -> str:
    while not hasattr(type_node, "name"):
        type_node = type_node.type
    return str(type_node.name.value)


def shopify_header(source: dict[str, str]) -> list[str]:
    lines = [
        f"{SHOPIFY_HEADER_PREFIX} derived by {GENERATOR}; do not edit by hand.",
        "# Only the types, fields and arguments fba-bridge uses (its GraphQL documents and the fake",
        "# Shopify's schema), closed over into a valid schema; upstream descriptions removed.",
    ]
    lines += [f"# {key}: {source[key]}" for key in ("api", "version", "origin", "sha256")]
    return lines


def read_shopify_header(text: str) -> dict[str, str]:
    """The `# key: value` lines of a derived SDL's header."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"^# (api|version|origin|sha256|derived-sha256): (.+)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def fake_shopify_sdl() -> str:
    from bridge.fakes.shopify import fake_schema_sdl

    return fake_schema_sdl()


# ----------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class Job:
    fixture: Path
    render: Callable[[], str]


def _previous_json_source(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    source: dict[str, Any] = (
        json.loads(path.read_text(encoding="utf-8")).get(HEADER_KEY, {}).get("source", {})
    )
    return source


def _amazon_source(
    path: Path, upstream_path: str, fixture: Path, commit: str | None, version: str
) -> dict[str, Any]:
    data = path.read_bytes()
    digest = sha256_of(data)
    previous = _previous_json_source(fixture)
    if commit is None:
        if previous.get("sha256") != digest:
            raise DeriveError(
                f"{path} (sha256 {digest}) is not the upstream file recorded in {fixture.relative_to(ROOT)}; "
                "pass --amazon-commit with the commit of amzn/selling-partner-api-models it came from"
            )
        commit = str(previous["commit"])
    return {
        "repository": AMAZON_REPOSITORY,
        "path": upstream_path,
        "commit": commit,
        "version": version,
        "sha256": digest,
        "license": "Apache-2.0 (the upstream model's licence; this file is a derived excerpt)",
    }


def amazon_job(
    model_path: Path,
    fixture: Path,
    upstream_path: str,
    operations: Callable[[dict[str, Any]], list[str]],
    commit: str | None,
) -> Job:
    def render() -> str:
        model = json.loads(model_path.read_text(encoding="utf-8"))
        version = str(model.get("info", {}).get("version", ""))
        source = _amazon_source(model_path, upstream_path, fixture, commit, version)
        ops = operations(model)
        header = {"generator": GENERATOR, "source": source, "operations": ops}
        return dump_json(seal_json(prune_swagger(model, ops, header)))

    return Job(fixture, render)


def shopify_job(schema_path: Path, origin: str | None) -> Job:
    def render() -> str:
        data = schema_path.read_bytes()
        digest = sha256_of(data)
        previous = (
            read_shopify_header(SHOPIFY_FIXTURE.read_text(encoding="utf-8"))
            if SHOPIFY_FIXTURE.is_file()
            else {}
        )
        recorded_origin = origin
        if recorded_origin is None:
            if previous.get("sha256") != digest:
                raise DeriveError(
                    f"{schema_path} (sha256 {digest}) is not the schema recorded in "
                    f"{SHOPIFY_FIXTURE.relative_to(ROOT)}; pass --shopify-origin saying where it came from"
                )
            recorded_origin = previous["origin"]
        source = {
            "api": "Shopify Admin GraphQL",
            "version": "2026-07",
            "origin": recorded_origin,
            "sha256": digest,
        }
        return prune_sdl(
            data.decode("utf-8"), graphql_documents(), [fake_shopify_sdl()], shopify_header(source)
        )

    return Job(SHOPIFY_FIXTURE, render)


def tracking_companies(schema_text: str) -> list[str]:
    """The carrier names Shopify recognises, listed in the description of
    `FulfillmentTrackingInfo.company` (the only prose we keep, as names: bridge/storefronts/carriers.py
    is checked against them)."""
    try:
        start = schema_text.index("### Supported tracking companies")
        end = schema_text.index('"""', start)
    except ValueError:
        raise DeriveError("the schema has no 'Supported tracking companies' list") from None
    names: set[str] = set()
    for line in schema_text[start:end].splitlines():
        line = line.strip()
        country = re.match(r"^\* \*\*[^*]+\*\*: (.+?)\.?$", line)
        if country:
            names.update(name.strip() for name in country.group(1).split(","))
        elif line.startswith("* "):
            names.add(line[2:].strip())
    return sorted(names)


def tracking_companies_job(schema_path: Path) -> Job:
    def render() -> str:
        names = tracking_companies(schema_path.read_text(encoding="utf-8"))
        document = {
            "source": f"Shopify Admin GraphQL {schema_path.name}: FulfillmentTrackingInfo.company",
            "names": names,
        }
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"

    return Job(TRACKING_COMPANIES_FIXTURE, render)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--shopify-schema", type=Path, help="Shopify Admin GraphQL 2026-07 schema (SDL)")
    parser.add_argument("--outbound-model", type=Path, help="fulfillmentOutbound_2020-07-01.json")
    parser.add_argument("--inventory-model", type=Path, help="fbaInventory.json")
    parser.add_argument("--notifications-model", type=Path, help="notifications.json")
    parser.add_argument(
        "--amazon-commit", help="commit of amzn/selling-partner-api-models the models came from"
    )
    parser.add_argument(
        "--shopify-origin", help="where the Shopify schema came from (repository, path, commit)"
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed fixtures; write nothing"
    )
    options = parser.parse_args(argv)

    jobs: list[Job] = []
    if options.shopify_schema:
        jobs.append(shopify_job(options.shopify_schema, options.shopify_origin))
        jobs.append(tracking_companies_job(options.shopify_schema))
    if options.outbound_model:
        jobs.append(
            amazon_job(
                options.outbound_model,
                OUTBOUND_FIXTURE,
                OUTBOUND_PATH,
                operations_we_use,
                options.amazon_commit,
            )
        )
    if options.inventory_model:
        jobs.append(
            amazon_job(
                options.inventory_model,
                INVENTORY_FIXTURE,
                INVENTORY_PATH,
                lambda _model: sorted(INVENTORY_OPERATIONS),
                options.amazon_commit,
            )
        )
    if options.notifications_model:
        jobs.append(
            amazon_job(
                options.notifications_model,
                NOTIFICATIONS_FIXTURE,
                NOTIFICATIONS_PATH,
                lambda _model: list(NOTIFICATIONS_OPERATIONS),
                options.amazon_commit,
            )
        )
    if not jobs:
        parser.error("give at least one upstream file (see --help)")
    stale = []
    try:
        for job in jobs:
            text = job.render()
            current = job.fixture.read_text(encoding="utf-8") if job.fixture.is_file() else None
            if current == text:
                print(f"up to date: {job.fixture.relative_to(ROOT)}")
            elif options.check:
                stale.append(job.fixture)
                print(f"OUT OF DATE: {job.fixture.relative_to(ROOT)}")
            else:
                job.fixture.parent.mkdir(parents=True, exist_ok=True)
                job.fixture.write_text(text, encoding="utf-8")
                print(f"wrote {job.fixture.relative_to(ROOT)} ({len(text)} bytes)")
    except DeriveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
