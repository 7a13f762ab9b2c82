"""Finds and compiles the JSON Schemas in the repository's `schemas/` folder.

Schemas live outside the package so operators and other tools can read them; a deployment
runs from the repository checkout (Heroku-style), and `BRIDGE_SCHEMAS_DIR` overrides the place.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker


class SchemaNotFound(FileNotFoundError):
    pass


def schema_dir() -> Path:
    override = os.environ.get("BRIDGE_SCHEMAS_DIR")
    candidates = [Path(override)] if override else []
    candidates += [Path(__file__).resolve().parents[1] / "schemas", Path.cwd() / "schemas"]
    for candidate in candidates:
        if (candidate / "channels.json").is_file():
            return candidate
    raise SchemaNotFound(
        "cannot find the schemas/ folder; run from the repository checkout or set BRIDGE_SCHEMAS_DIR"
    )


@cache
def load_schema(name: str) -> dict[str, Any]:
    """`name` is a path below schemas/, without `.json` (e.g. `shopify/order`)."""
    path = schema_dir() / f"{name}.json"
    if not path.is_file():
        raise SchemaNotFound(f"schema {name!r} not found at {path}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())
