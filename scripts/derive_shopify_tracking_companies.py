"""Derive tests/fixtures/shopify/tracking_companies.json from Shopify's Admin GraphQL schema.

Shopify lists the tracking-company names it recognises (it builds the tracking link and follows
the delivery for them) in the description of `FulfillmentTrackingInfo.company`. The fixture keeps
only those names, no prose, so the tests can check `bridge/storefronts/carriers.py` against
Shopify's list without the schema file.

    python scripts/derive_shopify_tracking_companies.py [path/to/shopify-admin-2026-07.graphql]

The default path is `$BRIDGE_SHARED_DIR/reference/shopify-admin-2026-07.graphql` (or
`../shared/reference/...` beside the repository).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "shopify" / "tracking_companies.json"
SCHEMA = "reference/shopify-admin-2026-07.graphql"


def default_schema() -> Path:
    shared = os.environ.get("BRIDGE_SHARED_DIR")
    return (Path(shared) if shared else ROOT.parent / "shared") / SCHEMA


def tracking_companies(schema_text: str) -> list[str]:
    start = schema_text.index("### Supported tracking companies")
    end = schema_text.index('"""', start)
    block = schema_text[start:end]
    names: set[str] = set()
    for line in block.splitlines():
        line = line.strip()
        country = re.match(r"^\* \*\*[^*]+\*\*: (.+?)\.?$", line)
        if country:
            names.update(name.strip() for name in country.group(1).split(","))
        elif line.startswith("* "):
            names.add(line[2:].strip())
    return sorted(names)


def main(argv: list[str]) -> int:
    schema = Path(argv[1]) if len(argv) > 1 else default_schema()
    names = tracking_companies(schema.read_text(encoding="utf-8"))
    document = {
        "source": f"Shopify Admin GraphQL {schema.name}: FulfillmentTrackingInfo.company",
        "names": names,
    }
    OUT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(names)} names -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
