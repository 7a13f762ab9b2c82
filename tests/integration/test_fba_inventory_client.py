"""The FBA Inventory client against the simulator over HTTP: paging, filters, SKU batching,
retries and its own rate bucket; and every request it sends checked against Amazon's model.

The model: `bridge/amazon/contract/fbaInventory_v1.json`, the repository's derived subset of
Amazon's (see tests/contracts/README.md).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from jsonschema import Draft4Validator

from bridge.amazon.errors import QuotaExceeded, UnexpectedResponse
from bridge.amazon.inventory import MAX_SKUS_PER_REQUEST, FbaInventory, InventorySummary, sku_queries
from bridge.amazon.limiter import MemoryBuckets
from bridge.amazon.simulator import SimulatorConfig, SkuConfig
from bridge.amazon.spapi import RetryPolicy, SpApiClient
from bridge.channels import AmazonAccount
from bridge.settings import Secret
from tests.integration.test_simulator import HOUR, MINUTE, SKUS, Harness, item, order_body

ROOT = Path(__file__).resolve().parents[2]
IN_REPO_MODEL = ROOT / "bridge" / "amazon" / "contract" / "fbaInventory_v1.json"
MARKETPLACE = "ATVPDKIKX0DER"


class Recording(httpx.BaseTransport):
    """Forwards to the simulator and keeps every SP-API request it saw."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/fba/"):
            self.requests.append(request)
        return self.inner.handle_request(request)


def account() -> AmazonAccount:
    return AmazonAccount(
        id="main",
        region="na",
        endpoint="http://sim",
        token_endpoint="http://sim/auth/o2/token",
        local_simulator=True,
        client_id=Secret("sim-client"),
        client_secret=Secret("sim-secret"),
        refresh_token=Secret("sim-refresh"),
    )


class Rig:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.h = Harness(config)
        # one clock for the client and the simulator's rate limits, so waiting refills both
        self.h.sim.rate_clock.inner = self.h.clock
        self.transport = Recording(httpx.WSGITransport(app=self.h.app))
        self.buckets = MemoryBuckets(self.h.clock)
        self.client = SpApiClient(
            account(), self.h.clock, self.buckets, transport=self.transport, retry=RetryPolicy(max_attempts=4)
        )
        self.inventory = FbaInventory(self.client)

    def params(self) -> list[list[tuple[str, str]]]:
        return [
            parse_qsl(urlsplit(str(r.url)).query, keep_blank_values=True) for r in self.transport.requests
        ]


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_changed_since_follows_every_page_repeating_start_date_time() -> None:
    skus = {f"P-{n:03d}": SkuConfig(quantity=n) for n in range(8)}
    rig = Rig(SimulatorConfig(skus=skus, page_size=3))
    since = rig.h.sim.now()
    rig.h.clock.advance(MINUTE)
    for sku in skus:
        rig.h.sim.restock(sku, 2)
    found = list(rig.inventory.changed_since(MARKETPLACE, since))
    assert [s.seller_sku for s in found] == sorted(skus)
    assert [s.fulfillable for s in found] == [n + 2 for n in range(8)]
    sent = rig.params()
    assert len(sent) == 3
    assert all(dict(p)["startDateTime"] == "2026-11-23T12:00:00Z" for p in sent)
    assert ["nextToken" in dict(p) for p in sent] == [False, True, True]


def test_for_skus_asks_50_per_request_and_a_comma_sku_alone() -> None:
    skus = {f"S-{n:03d}": SkuConfig(quantity=1) for n in range(120)} | {"A,B": SkuConfig(quantity=4)}
    rig = Rig(SimulatorConfig(skus=skus, page_size=50))
    found = {s.seller_sku: s for s in rig.inventory.for_skus(MARKETPLACE, [*skus, "NOT-AT-AMAZON"])}
    assert set(found) == set(skus)
    sent = [dict(p) for p in rig.params()]
    assert [len(p["sellerSkus"].split(",")) for p in sent if "sellerSkus" in p] == [50, 50, 21]
    assert [p["sellerSku"] for p in sent if "sellerSku" in p] == ["A,B"]


def test_sku_queries_batches_and_dedupes() -> None:
    parts = sku_queries(["A", "B", "A", "", "C,D", *[f"X{n}" for n in range(MAX_SKUS_PER_REQUEST)]])
    assert parts[0] == {"sellerSku": "C,D"}
    assert [len(p["sellerSkus"].split(",")) for p in parts[1:]] == [50, 2]


def test_a_create_and_a_shipment_show_in_the_summary(rig: Rig) -> None:
    rig.h.create(order_body("c-1", [item("SKU-A", quantity=2)]))
    [summary] = rig.inventory.for_skus(MARKETPLACE, ["SKU-A"])
    assert (summary.fulfillable, summary.reserved, summary.total) == (98, 2, 100)
    since = rig.h.sim.now()
    rig.h.clock.advance(5 * HOUR)
    [shipped] = rig.inventory.changed_since(MARKETPLACE, since)
    assert (shipped.seller_sku, shipped.fulfillable, shipped.reserved, shipped.total) == ("SKU-A", 98, 0, 98)
    assert shipped.last_updated is not None and shipped.last_updated > since


def test_throttling_and_outages_are_retried_on_the_operations_own_bucket(rig: Rig) -> None:
    rig.h.sim.inject_fault("getInventorySummaries", status=503, count=2)
    rig.h.sim.inject_fault("getInventorySummaries", status=429, count=1, retry_after=3)
    assert len(list(rig.inventory.for_skus(MARKETPLACE, ["SKU-A", "SKU-B"]))) == 2
    assert rig.h.sim.ledger.statuses("getInventorySummaries") == {503: 2, 429: 1, 200: 1}
    state = rig.buckets.peek("main", "getInventorySummaries")
    assert (state.rate, state.burst) == (2.0, 1.0)  # Amazon's 2/s, burst 2, minus one token of headroom


def test_a_throttle_that_does_not_end_is_raised(rig: Rig) -> None:
    rig.h.sim.inject_fault("getInventorySummaries", status=429, count=10)
    with pytest.raises(QuotaExceeded):
        list(rig.inventory.all(MARKETPLACE))


def test_an_answer_of_the_wrong_shape_is_unexpected() -> None:
    def amazon(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "Atza|x", "expires_in": 3600})
        return httpx.Response(200, json={"payload": {"inventorySummaries": "nope"}})

    h = Harness()
    client = SpApiClient(account(), h.clock, MemoryBuckets(h.clock), transport=httpx.MockTransport(amazon))
    with pytest.raises(UnexpectedResponse):
        list(FbaInventory(client).all(MARKETPLACE))


def test_a_summary_without_details_reads_as_nothing_sellable() -> None:
    summary = InventorySummary.from_api({"sellerSku": "X", "totalQuantity": 4})
    assert (summary.fulfillable, summary.total, summary.last_updated) == (0, 4, None)
    with pytest.raises(ValueError):
        InventorySummary.from_api({"totalQuantity": 4})


# --------------------------------------------------------------------------------------------
# Amazon's model


def _model() -> dict[str, Any]:
    return dict(json.loads(IN_REPO_MODEL.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    return _model()


def _check_against_parameters(operation: dict[str, Any], params: list[tuple[str, str]]) -> list[str]:
    """Problems of one query string against the operation's Swagger 2.0 parameters."""
    problems = []
    declared = {p["name"]: p for p in operation["parameters"] if p.get("in") == "query"}
    sent: dict[str, list[str]] = {}
    for name, value in params:
        sent.setdefault(name, []).append(value)
    for name, spec in declared.items():
        if spec.get("required") and name not in sent:
            problems.append(f"{name}: required, not sent")
    for name, values in sent.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(f"{name}: not a parameter of the operation")
            continue
        if len(values) != 1:
            problems.append(f"{name}: sent {len(values)} times")
        value = values[0]
        if spec["type"] == "array":
            items = value.split(",")  # Swagger 2.0's default collectionFormat: csv
            if len(items) > spec.get("maxItems", len(items)):
                problems.append(f"{name}: {len(items)} items, at most {spec['maxItems']}")
            if not all(items):
                problems.append(f"{name}: an empty item")
        elif spec["type"] == "boolean" and value not in ("true", "false"):
            problems.append(f"{name}: not a boolean")
        elif spec["type"] == "string":
            if "enum" in spec and value not in spec["enum"]:
                problems.append(f"{name}: {value!r} not in {spec['enum']}")
            if spec.get("format") == "date-time" and not value.endswith("Z"):
                problems.append(f"{name}: not an ISO 8601 UTC date-time")
    return problems


def test_every_request_the_client_sends_is_valid_against_amazons_model(model: dict[str, Any]) -> None:
    operation = model["paths"]["/fba/inventory/v1/summaries"]["get"]
    assert operation["operationId"] == "getInventorySummaries"
    skus = {f"S-{n:03d}": SkuConfig(quantity=1) for n in range(60)} | {"A,B": SkuConfig(quantity=1)}
    rig = Rig(SimulatorConfig(skus=skus, page_size=20))
    since = rig.h.sim.now() - timedelta(minutes=5)
    rig.h.clock.advance(MINUTE)
    for sku in list(skus)[:45]:
        rig.h.sim.restock(sku, 1)
    list(rig.inventory.changed_since(MARKETPLACE, since))
    list(rig.inventory.for_skus(MARKETPLACE, list(skus)))
    list(rig.inventory.all(MARKETPLACE))
    assert len(rig.transport.requests) >= 8
    for request in rig.transport.requests:
        assert request.method == "GET" and request.url.path == "/fba/inventory/v1/summaries"
        params = parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True)
        assert _check_against_parameters(operation, params) == [], str(request.url)


def test_the_simulators_answers_are_valid_against_amazons_model(model: dict[str, Any]) -> None:
    response_schema = model["paths"]["/fba/inventory/v1/summaries"]["get"]["responses"]["200"]["schema"]
    validator = Draft4Validator({**response_schema, "definitions": model["definitions"]})
    h = Harness(SimulatorConfig(skus=SKUS, page_size=2))
    h.create(order_body("m-1", [item("SKU-A", quantity=2)]))
    for details in ("true", "false"):
        body = h.sim.get_inventory_summaries(
            {
                "details": details,
                "granularityType": "Marketplace",
                "granularityId": MARKETPLACE,
                "marketplaceIds": MARKETPLACE,
            }
        )
        assert "nextToken" in body["pagination"]
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert errors == []
