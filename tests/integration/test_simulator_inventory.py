"""The simulator's FBA Inventory v1 `getInventorySummaries`, over HTTP: quantities from the stock
that previews and creates reserve and shipments consume, `startDateTime`, paging, validation and
its own usage plan."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.amazon.simulator import SimulatorConfig, SkuConfig
from tests.integration.test_simulator import DAY, HOUR, MINUTE, SKUS, Harness, item, order_body

PATH = "/fba/inventory/v1/summaries"
MARKETPLACE = "ATVPDKIKX0DER"


def query(**extra: str) -> dict[str, str]:
    return {
        "details": "true",
        "granularityType": "Marketplace",
        "granularityId": MARKETPLACE,
        "marketplaceIds": MARKETPLACE,
        **extra,
    }


def get(h: Harness, params: dict[str, str]) -> httpx.Response:
    h.rate_clock.advance(1)  # stay within the 2/s plan unless a test wants otherwise
    return h.http.get(PATH, params=params, headers={"x-amz-access-token": h.token})


def summaries(h: Harness, **extra: str) -> dict[str, dict[str, Any]]:
    response = get(h, query(**extra))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "pagination" not in body
    return {s["sellerSku"]: s for s in body["payload"]["inventorySummaries"]}


def quantities(summary: dict[str, Any]) -> tuple[int, int, int]:
    details = summary["inventoryDetails"]
    return (
        details["fulfillableQuantity"],
        details["reservedQuantity"]["totalReservedQuantity"],
        summary["totalQuantity"],
    )


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_a_create_reserves_and_a_shipment_consumes_the_same_stock(h: Harness) -> None:
    assert quantities(summaries(h, sellerSkus="SKU-A")["SKU-A"]) == (100, 0, 100)
    assert h.create(order_body("inv-1", [item("SKU-A", quantity=3)])).status_code == 200
    assert quantities(summaries(h, sellerSkus="SKU-A")["SKU-A"]) == (97, 3, 100)
    h.clock.advance(5 * HOUR)  # shipped
    assert quantities(summaries(h, sellerSkus="SKU-A")["SKU-A"]) == (97, 0, 97)


def test_a_cancellation_gives_the_units_back(h: Harness) -> None:
    h.create(order_body("inv-2", [item("SKU-B", quantity=4)]))
    assert h.call("PUT", "/fulfillmentOrders/inv-2/cancel").status_code == 200
    assert quantities(summaries(h, sellerSkus="SKU-B")["SKU-B"]) == (100, 0, 100)


def test_a_held_order_keeps_its_units_until_amazon_gives_them_back(h: Harness) -> None:
    h.create(order_body("inv-3", [item("SKU-A", quantity=2)], fulfillmentAction="Hold"))
    h.clock.advance(3 * DAY)
    assert quantities(summaries(h, sellerSkus="SKU-A")["SKU-A"]) == (98, 2, 100)
    h.clock.advance(12 * DAY)  # past the 14-day hold limit
    assert quantities(summaries(h, sellerSkus="SKU-A")["SKU-A"]) == (100, 0, 100)


def test_start_date_time_returns_exactly_the_skus_changed_after_it(h: Harness) -> None:
    start = h.sim.now()
    assert summaries(h, startDateTime=start.isoformat()) == {}
    h.clock.advance(MINUTE)
    h.create(order_body("inv-4", [item("SKU-A", quantity=1)]))
    h.clock.advance(MINUTE)
    h.sim.restock("SKU-FEW", 5)
    changed = summaries(h, startDateTime=start.isoformat())
    assert set(changed) == {"SKU-A", "SKU-FEW"}
    assert changed["SKU-FEW"]["inventoryDetails"]["fulfillableQuantity"] == 6
    later = h.sim.now()
    assert summaries(h, startDateTime=later.isoformat()) == {}
    h.clock.advance(5 * HOUR)  # the order ships: its SKU changes again, at the shipping time
    shipped = summaries(h, startDateTime=later.isoformat())
    assert set(shipped) == {"SKU-A"}
    assert shipped["SKU-A"]["lastUpdatedTime"] > later.isoformat().replace("+00:00", "Z")


def test_a_silent_change_escapes_the_change_feed_but_not_a_read_by_sku(h: Harness) -> None:
    start = h.sim.now()
    h.clock.advance(MINUTE)
    h.sim.set_inventory("SKU-B", 40, silent=True)
    assert summaries(h, startDateTime=start.isoformat()) == {}
    assert quantities(summaries(h, sellerSkus="SKU-B")["SKU-B"])[0] == 40


def test_seller_skus_selects_named_skus_and_a_comma_sku_is_asked_for_alone() -> None:
    h = Harness(SimulatorConfig(skus={**SKUS, "ODD,SKU": SkuConfig(quantity=3)}))
    assert set(summaries(h, sellerSkus="SKU-A,SKU-NONE,NOT-AT-AMAZON")) == {"SKU-A", "SKU-NONE"}
    assert set(summaries(h, sellerSku="ODD,SKU")) == {"ODD,SKU"}
    assert len(summaries(h)) == len(SKUS) + 1  # no filter: everything


def test_without_details_the_quantities_breakdown_is_left_out(h: Harness) -> None:
    summary = summaries(h, sellerSkus="SKU-A", details="false")["SKU-A"]
    assert "inventoryDetails" not in summary and summary["totalQuantity"] == 100


def test_pages_follow_next_token_with_the_same_filters_and_expire_after_30_seconds() -> None:
    skus = {f"P-{n:03d}": SkuConfig(quantity=n) for n in range(7)}
    h = Harness(SimulatorConfig(skus=skus, page_size=3))
    start = (h.sim.now()).isoformat()
    h.clock.advance(MINUTE)
    for sku in skus:
        h.sim.restock(sku, 1)
    seen: list[str] = []
    params = query(startDateTime=start)
    while True:
        body = get(h, params).json()
        seen += [s["sellerSku"] for s in body["payload"]["inventorySummaries"]]
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            break
        params = query(startDateTime=start, nextToken=token)
    assert seen == sorted(skus)
    first = get(h, query(startDateTime=start)).json()["pagination"]["nextToken"]
    # a nextToken alone, without the startDateTime it came from, is refused (Amazon since 2022)
    alone = get(h, query(nextToken=first))
    assert alone.status_code == 400 and "startDateTime" in alone.json()["errors"][0]["message"]
    h.rate_clock.advance(31)
    expired = get(h, query(startDateTime=start, nextToken=first))
    assert expired.status_code == 400 and "expired" in expired.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"granularityType": None}, "granularityType"),
        ({"granularityType": "Country"}, "granularityType"),
        ({"granularityId": None}, "granularityId"),
        ({"marketplaceIds": None}, "marketplaceIds"),
        ({"marketplaceIds": "ATVPDKIKX0DER,A2EUQ1WTGCTBG2"}, "marketplaceIds"),
        ({"sellerSkus": ",".join(f"S{n}" for n in range(51))}, "sellerSkus"),
        ({"startDateTime": "yesterday"}, "startDateTime"),
        ({"startDateTime": "2024-01-01T00:00:00Z"}, "18 months"),
        ({"details": "yes"}, "details"),
        ({"sellerSKUs": "SKU-A"}, "sellerSKUs"),
    ],
)
def test_requests_outside_amazons_model_are_refused_with_400(
    h: Harness, params: dict[str, str | None], message: str
) -> None:
    sent = {k: v for k, v in {**query(), **params}.items() if v is not None}
    response = get(h, sent)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "InvalidInput"
    assert message in error["message"] + error["details"]


def test_the_operation_has_its_own_usage_plan_of_2_per_second_burst_2(h: Harness) -> None:
    statuses = [
        h.http.get(PATH, params=query(), headers={"x-amz-access-token": h.token}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    h.rate_clock.advance(0.5)
    ok = h.http.get(PATH, params=query(), headers={"x-amz-access-token": h.token})
    assert ok.status_code == 200 and ok.headers["x-amzn-RateLimit-Limit"] == "2.0"
    assert h.sim.ledger.throttled("getInventorySummaries") == 1
    # the outbound operations keep their own buckets
    assert h.call("GET", "/features", params={"marketplaceId": MARKETPLACE}).status_code == 200


def test_faults_can_be_injected_into_the_inventory_operation(h: Harness) -> None:
    h.sim.inject_fault("getInventorySummaries", status=503, count=1)
    assert get(h, query()).status_code == 503
    assert get(h, query()).status_code == 200


def test_restock_control_over_http(h: Harness) -> None:
    response = h.http.post("/_sim/restock", json={"items": [{"sellerSku": "SKU-NONE", "units": 12}]})
    assert response.status_code == 200 and response.json()["SKU-NONE"]["quantity"] == 12
    bad = h.http.post("/_sim/restock", json={"items": [{"sellerSku": "SKU-NONE", "units": -13}]})
    assert bad.status_code == 400
    start = h.sim.now()
    h.clock.advance(MINUTE)
    silent = h.http.post(
        "/_sim/inventory", json={"items": [{"sellerSku": "SKU-A", "quantity": 5, "silent": True}]}
    )
    assert silent.status_code == 200 and silent.json()["SKU-A"]["quantity"] == 5
    assert summaries(h, startDateTime=start.isoformat()) == {}
