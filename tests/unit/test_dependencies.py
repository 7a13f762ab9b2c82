"""Every package `bridge/` imports is one pyproject.toml declares: a package that only arrives
through another's requirements can disappear with that package's next release."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = set()
    for requirement in project["dependencies"]:
        names.add(_normalise(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]))
    return names


def imported_top_level_modules() -> dict[str, str]:
    """Top-level module -> one file importing it, for absolute imports in `bridge/`."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_in_bridge_is_a_declared_dependency() -> None:
    declared = declared_distributions()
    providers = packages_distributions()
    undeclared = []
    for module, where in imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in {"bridge", "__future__", "_typeshed"}:
            continue
        distributions = {_normalise(d) for d in providers.get(module, [])}
        assert distributions, f"{module} (imported in {where}) is not installed"
        if not distributions & declared:
            undeclared.append(f"{module} ({where}; from {', '.join(sorted(distributions))})")
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
