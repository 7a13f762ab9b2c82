"""MCF features per order: which features an order asks for, how they reach both requests, what an
ineligible SKU does, how rarely eligibility is asked, and what the simulator makes of them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.amazon.feature_eligibility import FeatureEligibility, Ineligible
from bridge.amazon.models import FeatureSku, FeatureSkuEligibility
from bridge.amazon.simulator import Simulator, load_config
from bridge.amazon.simulator.envelope import ApiError
from bridge.channels import FeatureOptions, load_channels
from bridge.clock import ManualClock
from bridge.orders import Address, CanonicalOrder, OrderLine, PaymentState
from bridge.pipeline.features import judge_eligibility, plan_features, requested_features, with_features
from bridge.pipeline.plan import Plan, plan_submission
from bridge.schemas import schema_problems
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

ROOT = Path(__file__).resolve().parents[2]
SHOP = load_channels(EXAMPLE_CONFIG, env=TEST_ENV).channels["shop-a"]
WHEN = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def order(*tags: str, sku: str = "TSHIRT-RED-M") -> CanonicalOrder:
    return CanonicalOrder(
        channel_id="shop-a",
        external_id="1001",
        display_id="#1001",
        currency="USD",
        payment_state=PaymentState.PAID,
        created_at=WHEN,
        updated_at=WHEN,
        lines=(OrderLine(line_id="L1", sku=sku, quantity=1, unit_price="10.00"),),
        destination=Address(
            name="A B",
            line1="1 Main St",
            city="Springfield",
            state="NY",
            postal_code="10001",
            country_code="US",
        ),
        tags=tags,
    )


def channel(always: tuple[str, ...] = (), from_tags: bool = True):  # type: ignore[no-untyped-def]
    return replace(SHOP, features=FeatureOptions(always=always, from_tags=from_tags))


# ------------------------------------------------------------------ which features an order asks for


@pytest.mark.parametrize(
    ("always", "from_tags", "tags", "expected"),
    [
        ((), True, (), ()),
        ((), True, ("MCF_BLOCK_AMZL",), ("BLOCK_AMZL",)),
        ((), True, (" mcf_blank_box ", "vip"), ("BLANK_BOX",)),
        ((), False, ("MCF_BLOCK_AMZL",), ()),
        (("BLANK_BOX",), True, ("MCF_BLOCK_AMZL",), ("BLOCK_AMZL", "BLANK_BOX")),
        (("BLANK_BOX",), False, ("MCF_BLOCK_AMZL",), ("BLANK_BOX",)),
        ((), True, ("MCF_OVERBOX", "MCF_"), ()),
    ],
)
def test_features_come_from_the_channel_and_from_order_tags_when_allowed(
    always: tuple[str, ...], from_tags: bool, tags: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    features, notes = requested_features(order(*tags), channel(always, from_tags))
    assert features == expected
    assert len(notes) == len(expected)


def test_each_feature_note_says_where_the_feature_came_from() -> None:
    _, notes = requested_features(order("MCF_BLOCK_AMZL"), channel(("BLANK_BOX",)))
    assert notes == (
        "feature BLOCK_AMZL required (order tag MCF_BLOCK_AMZL)",
        "feature BLANK_BOX required (channel shop-a's mcf_features.always)",
    )


def test_features_go_into_both_the_preview_and_the_create_as_required() -> None:
    base = plan_submission(order(), SHOP)
    assert isinstance(base, Plan)
    plan = with_features(base, ("BLOCK_AMZL", "BLANK_BOX"), ("note",))
    wanted = [
        {"featureName": "BLOCK_AMZL", "featureFulfillmentPolicy": "Required"},
        {"featureName": "BLANK_BOX", "featureFulfillmentPolicy": "Required"},
    ]
    assert plan.preview.to_api()["featureConstraints"] == wanted
    assert plan.create.to_api()["featureConstraints"] == wanted
    assert plan_features(plan) == ("BLOCK_AMZL", "BLANK_BOX") and plan.notes[-1] == "note"
    assert schema_problems("spapi/create_fulfillment_order", plan.create.to_api()) == []
    assert schema_problems("spapi/get_fulfillment_preview", plan.preview.to_api()) == []


def test_an_order_without_features_sends_no_feature_constraints() -> None:
    base = plan_submission(order(), SHOP)
    assert isinstance(base, Plan)
    assert with_features(base, ()) is base
    assert "featureConstraints" not in base.create.to_api()
    assert "featureConstraints" not in base.preview.to_api()


def test_an_ineligible_sku_parks_the_order_naming_sku_feature_and_the_fix() -> None:
    assert judge_eligibility([], SHOP) is None
    park = judge_eligibility([Ineligible("BLANK_BOX", "FBA-MUG-WHITE", ("SKU_NOT_ELIGIBLE",))], SHOP)
    assert park is not None
    assert "FBA-MUG-WHITE is not eligible for BLANK_BOX (SKU_NOT_ELIGIBLE)" in park.reason
    assert "mcf_features.always" in park.reason and "resubmit" in park.reason


# ------------------------------------------------------------------ eligibility is cached


class CountingFeatures:
    """Amazon's two eligibility operations, answering from a fixed list and counting calls."""

    def __init__(self, eligible: dict[str, set[str]]) -> None:
        self.eligible = eligible
        self.inventory_calls = 0
        self.sku_calls = 0

    def feature_inventory(self, marketplace_id: str, feature_name: str) -> list[FeatureSku]:
        self.inventory_calls += 1
        return [FeatureSku(s, 5) for s in sorted(self.eligible.get(feature_name, set()))]

    def feature_sku(self, marketplace_id: str, feature_name: str, seller_sku: str) -> FeatureSkuEligibility:
        self.sku_calls += 1
        ok = seller_sku in self.eligible.get(feature_name, set())
        return FeatureSkuEligibility(feature_name, seller_sku, ok, () if ok else ("SKU_NOT_ELIGIBLE",))


def test_eligibility_is_read_once_per_ttl_not_once_per_order() -> None:
    clock = ManualClock()
    amazon = CountingFeatures({"BLOCK_AMZL": {"A", "B"}})
    cache = FeatureEligibility(clock, ttl_s=600)
    for _ in range(50):
        assert cache.ineligible(amazon, "main", "M", ["BLOCK_AMZL"], ["A", "B"]) == []  # type: ignore[arg-type]
    assert (amazon.inventory_calls, amazon.sku_calls) == (1, 0)
    clock.advance(601)
    cache.ineligible(amazon, "main", "M", ["BLOCK_AMZL"], ["A"])  # type: ignore[arg-type]
    assert amazon.inventory_calls == 2


def test_a_sku_missing_from_the_list_is_confirmed_once_and_its_answer_kept() -> None:
    clock = ManualClock()
    amazon = CountingFeatures({"BLANK_BOX": {"A"}})
    cache = FeatureEligibility(clock, ttl_s=600)
    for _ in range(10):
        found = cache.ineligible(amazon, "main", "M", ["BLANK_BOX"], ["A", "C"])  # type: ignore[arg-type]
        assert found == [Ineligible("BLANK_BOX", "C", ("SKU_NOT_ELIGIBLE",))]
    assert (amazon.inventory_calls, amazon.sku_calls) == (1, 1)


def test_a_sku_eligible_since_the_list_was_read_is_not_refused() -> None:
    amazon = CountingFeatures({"BLANK_BOX": {"A"}})
    cache = FeatureEligibility(ManualClock(), ttl_s=600)
    cache.ineligible(amazon, "main", "M", ["BLANK_BOX"], ["A"])  # type: ignore[arg-type]
    amazon.eligible["BLANK_BOX"].add("NEW")
    assert cache.ineligible(amazon, "main", "M", ["BLANK_BOX"], ["NEW"]) == []  # type: ignore[arg-type]


def test_eligibility_is_kept_per_account_marketplace_and_feature() -> None:
    amazon = CountingFeatures({"BLANK_BOX": {"A"}, "BLOCK_AMZL": {"A"}})
    cache = FeatureEligibility(ManualClock())
    for account, marketplace, feature in [
        ("x", "M", "BLANK_BOX"),
        ("y", "M", "BLANK_BOX"),
        ("x", "N", "BLANK_BOX"),
    ]:
        cache.ineligible(amazon, account, marketplace, [feature], ["A"])  # type: ignore[arg-type]
    cache.ineligible(amazon, "x", "M", ["BLOCK_AMZL", "BLANK_BOX"], ["A"])  # type: ignore[arg-type]
    assert amazon.inventory_calls == 4


# ------------------------------------------------------------------ the simulator models the features


@pytest.fixture
def sim() -> Simulator:
    clock = ManualClock()
    return Simulator(
        load_config(ROOT / "config" / "simulator.yaml"), clock=clock, rate_clock=clock, delay_clock=clock
    )


def preview_body(sku: str, *features: str) -> dict[str, object]:
    body: dict[str, object] = {
        "marketplaceId": "ATVPDKIKX0DER",
        "address": {
            "name": "A B",
            "addressLine1": "1 Main St",
            "city": "Springfield",
            "stateOrRegion": "NY",
            "postalCode": "10001",
            "countryCode": "US",
        },
        "items": [{"sellerSku": sku, "sellerFulfillmentOrderItemId": "L1", "quantity": 1}],
        "shippingSpeedCategories": ["Standard"],
    }
    if features:
        body["featureConstraints"] = [
            {"featureName": f, "featureFulfillmentPolicy": "Required"} for f in features
        ]
    return body


def fees(preview: dict[str, object]) -> dict[str, Decimal]:
    return {f["name"]: Decimal(f["amount"]["value"]) for f in preview["estimatedFees"]}  # type: ignore[index,union-attr]


def test_simulated_preview_adds_each_required_features_surcharge(sim: Simulator) -> None:
    plain = sim.get_fulfillment_preview(preview_body("FBA-TSHIRT-RED-M"))["payload"]["fulfillmentPreviews"][0]
    both = sim.get_fulfillment_preview(preview_body("FBA-TSHIRT-RED-M", "BLOCK_AMZL", "BLANK_BOX"))[
        "payload"
    ]["fulfillmentPreviews"][0]
    assert "FBATransportationFee" not in fees(plain)
    assert fees(both)["FBATransportationFee"] == Decimal("1.25")
    assert both["isFulfillable"] is True


def test_simulated_preview_refuses_a_sku_not_eligible_for_a_required_feature(sim: Simulator) -> None:
    preview = sim.get_fulfillment_preview(preview_body("FBA-MUG-WHITE", "BLANK_BOX"))["payload"][
        "fulfillmentPreviews"
    ][0]
    assert preview["isFulfillable"] is False
    assert preview["unfulfillablePreviewItems"][0]["itemUnfulfillableReasons"] == ["FeatureNotEligible"]


def test_simulated_block_amzl_order_never_ships_with_an_amzl_carrier(sim: Simulator) -> None:
    for n in range(20):
        body = dict(preview_body("FBA-MUG-WHITE", "BLOCK_AMZL"))
        address = body.pop("address")
        body.pop("shippingSpeedCategories")
        body.update(
            sellerFulfillmentOrderId=f"blk-{n}",
            displayableOrderId=f"blk-{n}",
            displayableOrderDate="2026-11-23T12:00:00Z",
            displayableOrderComment="Thanks",
            shippingSpeedCategory="Standard",
            destinationAddress=address,
        )
        sim.create_fulfillment_order(body)
    sim.clock.advance(10 * 24 * 3600)
    carriers = {
        package["carrierCode"]
        for n in range(20)
        for shipment in sim.get_fulfillment_order(f"blk-{n}")["payload"]["fulfillmentShipments"]
        for package in shipment.get("fulfillmentShipmentPackage", [])
    }
    assert carriers and not any(c.startswith("AMZL") for c in carriers)


def test_simulated_create_refuses_a_sku_not_eligible_for_a_required_feature(sim: Simulator) -> None:
    body = dict(preview_body("FBA-MUG-WHITE", "BLANK_BOX"))
    address = body.pop("address")
    body.pop("shippingSpeedCategories")
    body.update(
        sellerFulfillmentOrderId="bb-1",
        displayableOrderId="bb-1",
        displayableOrderDate="2026-11-23T12:00:00Z",
        displayableOrderComment="Thanks",
        shippingSpeedCategory="Standard",
        destinationAddress=address,
    )
    with pytest.raises(ApiError) as caught:
        sim.create_fulfillment_order(body)
    assert caught.value.status == 400 and "BLANK_BOX" in str(caught.value.body())


def test_simulated_feature_endpoints_answer_in_amazons_shape(sim: Simulator) -> None:
    listed = sim.get_feature_inventory("ATVPDKIKX0DER", "BLANK_BOX", None)["payload"]
    assert {s["sellerSku"] for s in listed["featureSkus"]} == {"FBA-TSHIRT-RED-M", "FBA-SKU-1"}
    no = sim.get_feature_sku("ATVPDKIKX0DER", "BLANK_BOX", "FBA-MUG-WHITE")["payload"]
    assert (no["isEligible"], no["ineligibleReasons"]) == (False, ["SKU_NOT_ELIGIBLE"])
    unknown = sim.get_feature_sku("ATVPDKIKX0DER", "BLANK_BOX", "NOPE")["payload"]
    assert unknown["ineligibleReasons"] == ["INVALID_SKU"]
    with pytest.raises(ApiError):
        sim.get_feature_inventory(None, "BLANK_BOX", None)  # marketplaceId is required by the model
    with pytest.raises(ApiError):
        sim.get_feature_inventory("ATVPDKIKX0DER", "NO_SUCH_FEATURE", None)


def test_simulator_refuses_a_feature_name_amazons_model_does_not_list(sim: Simulator) -> None:
    with pytest.raises(ApiError) as caught:
        sim.get_fulfillment_preview(preview_body("FBA-TSHIRT-RED-M", "BLOCK_AMZ"))
    assert caught.value.status == 400 and "featureName" in str(caught.value.body())


def test_our_preflight_schemas_refuse_a_feature_name_amazon_does_not_list() -> None:
    base = plan_submission(order(), SHOP)
    assert isinstance(base, Plan)
    plan = with_features(base, ("NO_SUCH_FEATURE",))
    assert schema_problems("spapi/create_fulfillment_order", plan.create.to_api())
    assert schema_problems("spapi/get_fulfillment_preview", plan.preview.to_api())
