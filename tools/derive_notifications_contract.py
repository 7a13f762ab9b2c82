#!/usr/bin/env python3
"""Derive `tests/contracts/notifications_v1.json` from Amazon's Notifications API model.

The fixture keeps only what the bridge calls and the simulator serves: the operations in
`OPERATIONS`, their parameters and responses, and every definition they reference, with all
descriptions, examples and sandbox cases removed (constraints are kept). The tests check our
requests and the simulator's answers against it, so our reading of Amazon's contract is tested.

Upstream: https://github.com/amzn/selling-partner-api-models, path
`models/notifications-api-model/notifications.json` (the commit is recorded in the fixture).

    python tools/derive_notifications_contract.py PATH/notifications.json --commit SHA [--check]

Standard library only; the output is deterministic (sorted keys).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "contracts" / "notifications_v1.json"
UPSTREAM_PATH = "models/notifications-api-model/notifications.json"
OPERATIONS = (
    "getDestinations",
    "createDestination",
    "getSubscription",
    "createSubscription",
    "deleteSubscriptionById",
)
_PROSE = frozenset({"description", "example", "examples", "x-amzn-api-sandbox", "summary", "title"})


def _strip(node: Any, names: bool = False) -> Any:
    """`node` without prose; the keys of a `properties` mapping are field names and stay."""
    if isinstance(node, dict):
        return {k: _strip(v, k == "properties") for k, v in node.items() if names or k not in _PROSE}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def derive(model: dict[str, Any], commit: str, sha256: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, operations in model["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and operation.get("operationId") in OPERATIONS:
                kept = {k: operation[k] for k in ("operationId", "parameters", "responses") if k in operation}
                paths.setdefault(path, {})[method] = _strip(kept)
    missing = set(OPERATIONS) - {op["operationId"] for ops in paths.values() for op in ops.values()}
    if missing:
        raise SystemExit(f"operations not in the model: {sorted(missing)}")
    wanted, todo = set(), _refs(paths)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo |= _refs(model["definitions"][name])
    return {
        "x-fba-bridge-contract": {
            "generator": "tools/derive_notifications_contract.py",
            "source": {
                "repository": "amzn/selling-partner-api-models",
                "path": UPSTREAM_PATH,
                "commit": commit,
            },
            "sha256": sha256,
            "operations": list(OPERATIONS),
        },
        "swagger": model["swagger"],
        "basePath": model.get("basePath"),
        "paths": paths,
        "definitions": {name: _strip(model["definitions"][name]) for name in sorted(wanted)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="the upstream notifications.json")
    parser.add_argument("--commit", required=True, help="the upstream commit the file comes from")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    raw = args.model.read_bytes()
    text = json.dumps(
        derive(json.loads(raw), args.commit, hashlib.sha256(raw).hexdigest()), indent=1, sort_keys=True
    )
    text += "\n"
    if args.check:
        if not FIXTURE.is_file() or FIXTURE.read_text() != text:
            print(f"{FIXTURE} is out of date", file=sys.stderr)
            return 1
        return 0
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
