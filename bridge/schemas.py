"""Finds and compiles the JSON Schemas of the repository's `schemas/` folder.

Operators and other tools read them there; the package carries them (`bridge.resources`), so an
installed wheel needs no checkout. `BRIDGE_SCHEMAS_DIR` points at another folder instead.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from .resources import schemas_dir


class SchemaNotFound(FileNotFoundError):
    pass


def schema_dir() -> Path:
    override = os.environ.get("BRIDGE_SCHEMAS_DIR")
    if override:
        return Path(override)
    return _packaged_schemas()


@cache
def _packaged_schemas() -> Path:
    """Checked once per process: every webhook asks for the folder, and a `stat` per request
    showed in the webhook profile."""
    packaged = schemas_dir()
    if not (packaged / "channels.json").is_file():
        raise SchemaNotFound(
            f"the JSON Schemas are missing from the installed package ({packaged}); reinstall "
            "fba-bridge, or set BRIDGE_SCHEMAS_DIR to a copy of the repository's schemas/ folder"
        )
    return packaged


def load_schema(name: str) -> dict[str, Any]:
    """`name` is a path below schemas/, without `.json` (e.g. `shopify/order`)."""
    return _load(str(schema_dir()), name)


@cache
def _load(folder: str, name: str) -> dict[str, Any]:
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise SchemaNotFound(f"schema {name!r} not found at {path}; check BRIDGE_SCHEMAS_DIR")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


FORMAT_CHECKER = FormatChecker()


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    """RFC 3339 date-time with an explicit offset (jsonschema skips the format without an extra
    package, and Amazon refuses timestamps without one)."""
    if not isinstance(value, str):
        return True  # type errors are the `type` keyword's business
    return "T" in value.upper() and datetime.fromisoformat(value).tzinfo is not None


@cache
def _strict_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` with every unescaped `$` read as end of input (`\\Z`), as in ECMA-262.

    JSON Schema patterns are ECMA-262 regular expressions, where `$` ends the input; Python's `$`
    also matches before a trailing newline, so `^[0-9]+$` would accept `"42\\n"` and an id would
    carry the newline into the database and to Amazon.
    """
    out: list[str] = []
    escaped = in_class = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(ch)
    return re.compile("".join(out))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _strict_regex(pattern).search(instance):
        yield ValidationError(f"the value does not match {pattern!r}")


StrictValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})


def validator(name: str) -> Draft202012Validator:
    return _validator(str(schema_dir()), name)


@cache
def _validator(folder: str, name: str) -> Draft202012Validator:
    schema = _load(folder, name)
    Draft202012Validator.check_schema(schema)
    strict: Draft202012Validator = StrictValidator(schema, format_checker=FORMAT_CHECKER)
    return strict


# A compiled gate for the schemas on hot paths: the storefront payloads (every webhook), our
# SP-API request bodies (the create request is checked twice per order submitted) and the MCF
# simulator's check of each request against Amazon's model (`compile_gate`). fastjsonschema
# turns a schema into straight Python code: ~0.03 ms for a 6.6 KB Shopify order where
# jsonschema's interpreter takes ~0.7 ms. It only ever says "valid" early: a document it refuses
# goes through jsonschema, whose verdict and problems are what callers get. So its answer counts
# only where both agree that a document is valid (tests/unit/test_schema_gate.py checks that it
# never passes what jsonschema refuses). A `format` is checked by the same function jsonschema
# uses (`FORMAT_CHECKER`: our date-time rule; fastjsonschema asks it for strings only, and every
# checker there passes other types, as jsonschema's own do); a schema with a format that checker
# does not know is never gated.
GATED_PREFIXES = ("shopify/", "woocommerce/", "spapi/")

Gate = Callable[[Any], Any]

#: Keywords that mean the same to fastjsonschema's draft-07 code and to jsonschema's 2020-12 as
#: our schemas use them. A schema with any other keyword is not gated: a keyword the compiler
#: does not know would be skipped, and the gate would pass what jsonschema refuses.
_GATE_KEYWORDS = frozenset(
    {
        *("$schema", "$id", "$defs", "$ref", "$comment", "title", "description", "default", "examples"),
        *("type", "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum", "maximum"),
        *("properties", "required", "additionalProperties", "minProperties", "maxProperties"),
        *("items", "minItems", "maxItems", "uniqueItems", "not", "if", "then", "else"),
    }
)
#: What may stand beside a `$ref` (draft-07 code ignores a `$ref`'s siblings; these change nothing).
_BESIDE_REF = frozenset({"$comment", "title", "description", "default", "examples"})
#: fastjsonschema's rewrite of a pattern: every `$` not after a backslash, inside `[...]` too.
_GATE_DOLLAR = re.compile(r"(?<!\\)\$")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "if", "then", "else")
_SUBSCHEMA_MAPS = ("properties", "$defs")


def passes_fast(name: str, document: Any) -> bool:
    """True when the compiled gate accepts `document`; False means "ask jsonschema", not invalid."""
    return gate_passes(_gate(str(schema_dir()), name), document)


def gate_passes(gate: Gate | None, document: Any) -> bool:
    """True when `gate` (from `compile_gate`) accepts `document`; False: no gate, or ask jsonschema."""
    if gate is None:
        return False
    try:
        gate(document)
    except Exception:  # JsonSchemaException, or anything the generated code trips over
        return False
    return True


def compile_gate(schema: dict[str, Any]) -> Gate | None:
    """The compiled gate for `schema`, or None where it could disagree with jsonschema: a keyword
    outside `_GATE_KEYWORDS`, anything but annotations beside a `$ref` (draft-07 code ignores
    them), an `$id` below the root (it would move what a `$ref` points to), a `pattern` that
    fastjsonschema reads otherwise than `_strict_regex`, a `format` that `FORMAT_CHECKER` does not
    know, or a schema the compiler cannot handle."""
    if not _gateable(schema, root=True):
        return None
    try:
        import fastjsonschema
    except ImportError:  # an environment installed from an older lock: jsonschema alone, as before
        return None
    formats = _formats(schema)
    try:
        # A copy: compiling rewrites every local `$ref` in the document it is given to an
        # absolute one, and `schema` may be a cached document everyone else reads.
        compiled: Gate = fastjsonschema.compile(
            copy.deepcopy(schema), use_default=False, formats={f: _format_check(f) for f in formats}
        )
    except Exception:  # e.g. a `$ref` it cannot resolve: jsonschema alone decides
        return None
    return compiled


def _gateable(node: Any, root: bool = False) -> bool:
    if isinstance(node, bool):
        return True
    if not isinstance(node, dict) or not set(node) <= _GATE_KEYWORDS:
        return False
    if "$id" in node and not root:
        return False
    beside_ref = _BESIDE_REF | ({"$schema", "$id", "$defs"} if root else set())
    if "$ref" in node and set(node) - beside_ref - {"$ref"}:
        return False
    if "format" in node and node["format"] not in FORMAT_CHECKER.checkers:
        return False
    if "pattern" in node and not _same_pattern(node["pattern"]):
        return False
    subschemas = [node[key] for key in _SUBSCHEMAS if key in node]
    for key in _SUBSCHEMA_MAPS:
        members = node.get(key, {})
        if not isinstance(members, dict):
            return False
        subschemas += members.values()
    return all(_gateable(sub) for sub in subschemas)


def _same_pattern(pattern: Any) -> bool:
    """Whether fastjsonschema's compiled pattern is the one jsonschema's `StrictValidator` uses."""
    return isinstance(pattern, str) and _GATE_DOLLAR.sub(r"\\Z", pattern) == _strict_regex(pattern).pattern


def _formats(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["format"]} if isinstance(node.get("format"), str) else set()
        return found.union(*(_formats(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_formats(value) for value in node))
    return set()


def _format_check(name: str) -> Callable[[Any], bool]:
    def conforms(value: Any) -> bool:
        return FORMAT_CHECKER.conforms(value, name)

    return conforms


@cache
def _gate(folder: str, name: str) -> Gate | None:
    if not name.startswith(GATED_PREFIXES):
        return None
    return compile_gate(_load(folder, name))


# Problems as JSON path + rule + how to fix, never quoting the offending value (it may be
# personal data): what 422 answers, the pre-flight check and the SP-API client all report.


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def json_path(path: Iterable[Any]) -> str:
    """`$.a.b[0]`; object keys (the sender's text) with control characters shown as `?` and cut
    to 64 characters, so a path can be stored, logged and answered."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{_UNPRINTABLE.sub('?', str(part))[:64]}"
    return out


def _problem(error: ValidationError) -> dict[str, str]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    rule = str(error.validator)
    value = error.validator_value
    where = json_path(error.absolute_path)
    if rule == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a field"
        return {
            "path": json_path([*error.absolute_path, missing]),
            "rule": "required",
            "fix": f"include `{missing}`",
        }
    fixes = {
        "type": f"send a value of type {value}",
        "enum": "use one of: " + ", ".join(map(str, value))
        if isinstance(value, list)
        else "use an allowed value",
        "const": f"send {value!r}",
        "minLength": f"send at least {value} character(s)",
        "maxLength": f"send at most {value} characters",
        "minimum": f"send a number >= {value}",
        "maximum": f"send a number <= {value}",
        "exclusiveMinimum": f"send a number > {value}",
        "minItems": f"send at least {value} item(s)",
        "maxItems": f"send at most {value} items",
        "pattern": schema.get("description") or f"match the pattern {value}",
        "format": f"send a valid {value}",
        "additionalProperties": "remove fields that are not part of the format",
    }
    return {
        "path": where,
        "rule": rule,
        "fix": str(fixes.get(rule, schema.get("description", "see the schema"))),
    }


def schema_problems(schema_name: str, document: Any) -> list[dict[str, str]]:
    if passes_fast(schema_name, document):
        return []
    errors = validator(schema_name).iter_errors(document)
    return [_problem(e) for e in sorted(errors, key=lambda e: json_path(e.absolute_path))]
