"""MCF features end to end: storefront tag or channel setting -> eligibility (cached) -> preview and
create with `featureConstraints` at the simulator, or a parked order that says which SKU is not
eligible. The simulator checks every request against Amazon's model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.amazon.simulator import Simulator
from bridge.amazon.simulator.faults import Fault
from bridge.bootstrap import Bridge
from bridge.channels import FeatureOptions
from bridge.store import OrderEventRecord, OrderRecord, read_session
from bridge.worker import Worker
from tests.support import shopify_delivery, shopify_order, woo_delivery, woo_order

REQUIRED = {"featureFulfillmentPolicy": "Required"}


def row_of(bridge: Bridge, external_id: str) -> OrderRecord:
    with read_session(bridge.engine) as session:
        return (
            session.execute(select(OrderRecord).where(OrderRecord.external_id == external_id)).scalars().one()
        )


def reasons(bridge: Bridge, row: OrderRecord) -> list[str]:
    with read_session(bridge.engine) as session:
        query = select(OrderEventRecord.reason).where(OrderEventRecord.order_id == row.id)
        return [r or "" for r in session.execute(query).scalars()]


def send(client: FlaskClient, order_id: int, tags: str = "", **kwargs: Any) -> None:
    order = shopify_order(order_id, **kwargs)
    order["tags"] = tags
    body, headers = shopify_delivery(order)
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def set_features(bridge: Bridge, **options: Any) -> None:
    shop = bridge.config.channels["shop-a"]
    changed = replace(shop, features=FeatureOptions(**options))
    bridge.config = replace(bridge.config, channels={**bridge.config.channels, "shop-a": changed})


def test_a_tagged_order_is_previewed_and_created_with_block_amzl(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send(client, 1101, tags="vip, MCF_BLOCK_AMZL")
    worker.drain()
    row = row_of(bridge, "1101")
    assert row.state == "submitted"
    created = simulator.get_fulfillment_order("shop-a-1101")["payload"]["fulfillmentOrder"]
    assert created["featureConstraints"] == [{"featureName": "BLOCK_AMZL", **REQUIRED}]
    assert simulator.ledger.statuses("getFulfillmentPreview") == {200: 1}
    assert simulator.ledger.statuses("createFulfillmentOrder") == {200: 1}, "Amazon's model accepted it"
    assert any("feature BLOCK_AMZL required (order tag MCF_BLOCK_AMZL)" in r for r in reasons(bridge, row))


def test_the_preview_carries_the_features_the_create_will_carry(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    set_features(bridge, always=("BLANK_BOX",))
    seen: list[Any] = []
    original = simulator.get_fulfillment_preview

    def recording(body: Any) -> dict[str, Any]:
        seen.append(body)
        return original(body)

    simulator.get_fulfillment_preview = recording  # type: ignore[method-assign]
    send(client, 1102, tags="MCF_BLOCK_AMZL")
    worker.drain()
    wanted = [{"featureName": "BLOCK_AMZL", **REQUIRED}, {"featureName": "BLANK_BOX", **REQUIRED}]
    assert seen and seen[0]["featureConstraints"] == wanted
    created = simulator.get_fulfillment_order("shop-a-1102")["payload"]["fulfillmentOrder"]
    assert created["featureConstraints"] == wanted


def test_an_ineligible_sku_parks_the_order_before_any_preview(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    send(client, 1103, tags="MCF_BLANK_BOX", sku="MUG-WHITE")
    worker.drain()
    row = row_of(bridge, "1103")
    assert row.state == "needs_attention"
    assert "FBA-MUG-WHITE is not eligible for BLANK_BOX (SKU_NOT_ELIGIBLE)" in row.attention_reason
    assert simulator.ledger.calls("getFulfillmentPreview") == 0
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_eligibility_is_asked_once_for_many_orders(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    for n in range(6):
        send(client, 1110 + n, tags="MCF_BLOCK_AMZL")
    send(client, 1120, tags="MCF_BLANK_BOX", sku="MUG-WHITE")
    send(client, 1121, tags="MCF_BLANK_BOX", sku="MUG-WHITE")
    worker.drain()
    assert simulator.ledger.calls("getFeatureInventory") == 2  # one per feature
    assert simulator.ledger.calls("getFeatureSKU") == 1  # the ineligible SKU, confirmed once
    assert simulator.ledger.calls("createFulfillmentOrder") == 6


def test_eligibility_checks_can_be_turned_off_and_amazons_preview_judges(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    set_features(bridge, check_eligibility=False)
    send(client, 1104, tags="MCF_BLANK_BOX", sku="MUG-WHITE")
    worker.drain()
    row = row_of(bridge, "1104")
    assert row.state == "needs_attention" and "FeatureNotEligible" in row.attention_reason
    assert simulator.ledger.calls("getFeatureInventory") == 0


def test_tags_are_ignored_when_the_channel_turns_them_off(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    set_features(bridge, from_tags=False)
    send(client, 1105, tags="MCF_BLANK_BOX", sku="MUG-WHITE")
    worker.drain()
    assert row_of(bridge, "1105").state == "submitted"
    created = simulator.get_fulfillment_order("shop-a-1105")["payload"]["fulfillmentOrder"]
    assert "featureConstraints" not in created


def test_an_eligibility_check_amazon_refuses_parks_the_order_saying_what_to_change(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    simulator.faults.add(
        Fault("getFeatureInventory", status=400, code="InvalidInput", message="Feature is not supported")
    )
    send(client, 1106, tags="MCF_BLOCK_AMZL")
    worker.drain()
    row = row_of(bridge, "1106")
    assert row.state == "needs_attention"
    assert "Amazon refused to check eligibility for BLOCK_AMZL" in row.attention_reason
    assert "check_eligibility: false" in row.attention_reason
    assert simulator.ledger.calls("createFulfillmentOrder") == 0


def test_a_woocommerce_order_asks_for_a_feature_through_its_fba_tags_meta(
    client: FlaskClient, bridge: Bridge, worker: Worker, simulator: Simulator
) -> None:
    order = woo_order(1107)
    order["line_items"][0]["sku"] = "MUG-WHITE"
    order["meta_data"] = [{"id": 1, "key": "fba_tags", "value": "gift, MCF_BLOCK_AMZL"}]
    body, headers = woo_delivery(order)
    assert client.post("/webhooks/woo-main", data=body, headers=headers).status_code == 200
    worker.drain()
    assert row_of(bridge, "1107").state == "submitted"
    created = simulator.get_fulfillment_order("woo-main-1107")["payload"]["fulfillmentOrder"]
    assert created["featureConstraints"] == [{"featureName": "BLOCK_AMZL", **REQUIRED}]
