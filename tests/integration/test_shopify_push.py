"""The Shopify pusher against the fake Shopify Admin GraphQL API, over httpx: in process
(`httpx.WSGITransport`) for most cases, over real loopback HTTP where connection drops matter."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLError,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    Undefined,
    VariableDefinitionNode,
    build_schema,
    parse,
    print_ast,
    validate,
)
from graphql.utilities import coerce_input_value, type_from_ast

from bridge.amazon.simulator.server import serve_in_thread
from bridge.channels import Channel, ChannelsConfig
from bridge.clock import ManualClock
from bridge.fakes.shopify import FakeShopify, QueryCost, create_fake_shopify_app
from bridge.storefronts.push import OrderNote, PushError, PushLine, ShipmentPush, StorefrontRejected
from bridge.storefronts.shopify_fulfillment import FULFILLMENT_ORDER_LINE_ITEMS, FULFILLMENT_ORDERS
from bridge.storefronts.shopify_fulfillment import OPERATIONS as FULFILLMENT_OPERATIONS
from bridge.storefronts.shopify_graphql import raise_user_errors
from bridge.storefronts.shopify_push import (
    FULFILLMENT_CREATE,
    OPERATIONS,
    ORDER_FULFILLMENTS,
    ShopifyPusher,
)
from tests.conftest import LogOutput

SHOP_URL = "https://shop-a.myshopify.com"
SHOPIFY_CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "shopify-admin-2026-07.graphql"
TRACKING = "1Z999AA10123456784"

PusherFactory = Callable[..., ShopifyPusher]


def shopify_channel(config: ChannelsConfig, base_url: str, **storefront: Any) -> Channel:
    channel = config.channels["shop-a"]
    return replace(channel, storefront=replace(channel.storefront, base_url=base_url, **storefront))


def package(
    *lines: tuple[str, int],
    order: str = "1001",
    tracking: str = TRACKING,
    carrier: str = "UPS",
    url: str | None = "https://www.ups.com/track?tracknum=1Z999AA10123456784",
) -> ShipmentPush:
    return ShipmentPush(
        order_external_id=order,
        display_id=f"#{order}",
        package_key=f"shop-a-{order}:{tracking}",
        carrier=carrier,
        tracking_number=tracking,
        tracking_url=url,
        lines=tuple(PushLine(line_id, f"SKU-{line_id}", qty) for line_id, qty in lines),
        shipped_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    )


@pytest.fixture
def token(channels_config: ChannelsConfig) -> str:
    return channels_config.channels["shop-a"].storefront.access_token.reveal()


@pytest.fixture
def fake(clock: ManualClock, token: str) -> FakeShopify:
    shop = FakeShopify(token, clock)
    shop.add_order("1001", [("11", "TSHIRT-RED-M", 2), ("12", "MUG-WHITE", 1), ("13", "TSHIRT-BLUE-L", 1)])
    return shop


@pytest.fixture
def make_pusher(channels_config: ChannelsConfig, clock: ManualClock) -> Iterator[PusherFactory]:
    """A pusher for shop-a talking to `shop` in process; storefront settings may be overridden."""
    made: list[ShopifyPusher] = []

    def make(shop: FakeShopify, **storefront: Any) -> ShopifyPusher:
        transport = httpx.WSGITransport(app=create_fake_shopify_app(shop))
        pusher = ShopifyPusher(shopify_channel(channels_config, SHOP_URL, **storefront), clock, transport)
        made.append(pusher)
        return pusher

    yield make
    for pusher in made:
        pusher.close()


@pytest.fixture
def pusher(make_pusher: PusherFactory, fake: FakeShopify) -> ShopifyPusher:
    return make_pusher(fake)


def create_variables(shop: FakeShopify) -> list[dict[str, Any]]:
    return [
        dict(r.variables["fulfillment"]) for r in shop.requests if r.operation_name == FULFILLMENT_CREATE.name
    ]


# --------------------------------------------------------------------------------------------
# Fulfilments


def test_push_creates_one_fulfillment_with_tracking_for_exactly_the_package_lines(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    result = pusher.push_shipment(package(("11", 2), ("12", 1)))

    [fulfillment] = fake.fulfillments("1001")
    assert result.storefront_ref == fulfillment.gid
    assert fulfillment.quantities == {"11": 2, "12": 1}
    assert fulfillment.tracking_numbers == (TRACKING,)
    assert fulfillment.tracking[0].company == "UPS"
    assert fulfillment.tracking[0].url == "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    assert fake.remaining("1001") == {"11": 0, "12": 0, "13": 1}
    [sent] = create_variables(fake)
    [group] = sent["lineItemsByFulfillmentOrder"]
    assert sorted(item["quantity"] for item in group["fulfillmentOrderLineItems"]) == [1, 2]
    assert sent["trackingInfo"] == {
        "number": TRACKING,
        "company": "UPS",
        "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    }


def test_two_packages_of_one_order_make_two_fulfillments_and_the_second_leaves_nothing(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    first = pusher.push_shipment(package(("11", 2), tracking="TBA000000000001"))
    assert [fo.status for fo in fake.fulfillment_orders("1001")] == ["IN_PROGRESS"]

    second = pusher.push_shipment(package(("12", 1), ("13", 1), tracking="TBA000000000002"))

    fulfillments = fake.fulfillments("1001")
    assert [f.gid for f in fulfillments] == [first.storefront_ref, second.storefront_ref]
    assert [f.quantities for f in fulfillments] == [{"11": 2}, {"12": 1, "13": 1}]
    assert [f.tracking_numbers for f in fulfillments] == [("TBA000000000001",), ("TBA000000000002",)]
    assert set(fake.remaining("1001").values()) == {0}
    assert [fo.status for fo in fake.fulfillment_orders("1001")] == ["CLOSED"]


def test_partial_shipment_leaves_the_other_lines_and_units_unfulfilled(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    pusher.push_shipment(package(("11", 1)))

    assert fake.remaining("1001") == {"11": 1, "12": 1, "13": 1}
    assert [fo.status for fo in fake.fulfillment_orders("1001")] == ["IN_PROGRESS"]


def test_a_line_split_over_two_fulfillment_orders_is_taken_from_both_in_one_fulfillment(
    make_pusher: PusherFactory, clock: ManualClock, token: str
) -> None:
    shop = FakeShopify(token, clock)
    shop.add_order(
        "2002",
        [("21", "TSHIRT-RED-M", 3), ("22", "MUG-WHITE", 1)],
        fulfillment_order_groups=[[("21", 1)], [("21", 2), "22"]],
    )

    make_pusher(shop).push_shipment(package(("21", 3), order="2002"))

    [fulfillment] = shop.fulfillments("2002")
    assert fulfillment.quantities == {"21": 3}
    assert len({line.fulfillment_order_id for line in fulfillment.lines}) == 2
    assert [fo.status for fo in shop.fulfillment_orders("2002")] == ["CLOSED", "IN_PROGRESS"]
    assert shop.remaining("2002") == {"21": 0, "22": 1}


def test_lines_on_later_pages_of_fulfillment_orders_and_line_items_are_found(
    make_pusher: PusherFactory, clock: ManualClock, token: str
) -> None:
    shop = FakeShopify(token, clock)
    lines = [(str(100 + i), f"SKU-{i}", 1) for i in range(40)]
    big = [line_id for line_id, _, _ in lines[:30]]
    small = [[line_id] for line_id, _, _ in lines[30:]]
    shop.add_order("3003", lines, fulfillment_order_groups=[big, *small])

    make_pusher(shop).push_shipment(package(("129", 1), ("139", 1), order="3003"))

    [fulfillment] = shop.fulfillments("3003")
    assert fulfillment.quantities == {"129": 1, "139": 1}
    assert shop.calls(FULFILLMENT_ORDERS.name) == 3  # 11 fulfillment orders, 5 a page
    assert shop.calls(FULFILLMENT_ORDER_LINE_ITEMS.name) == 1  # 30 line items, 25 on the first page


def test_lines_already_fulfilled_are_reported_not_pushed_without_a_second_fulfillment(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    pusher.push_shipment(package(("11", 2)))

    result = pusher.push_shipment(package(("11", 1), tracking="TBA000000000009"))

    assert result.storefront_ref == ""
    assert [(x.line_id, x.quantity) for x in result.not_pushed] == [("11", 1)]
    assert "already fulfilled" in result.not_pushed[0].why
    assert len(fake.fulfillments("1001")) == 1
    assert fake.calls("fulfillmentCreate") == 1


def test_a_partly_fulfilled_fulfillment_order_gets_the_open_units_and_reports_the_rest(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    fake.merchant_fulfill("1001", 0, {"11": 1})  # the merchant shipped one red T-shirt by hand

    result = pusher.push_shipment(package(("11", 2), ("12", 1)))

    created = fake.fulfillments("1001")[-1]
    assert result.storefront_ref == created.gid
    assert created.quantities == {"11": 1, "12": 1} and created.tracking_numbers == (TRACKING,)
    assert [(x.line_id, x.quantity) for x in result.not_pushed] == [("11", 1)]


def test_a_closed_fulfillment_order_pushes_nothing_and_says_why(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    fake.set_fulfillment_order_status("1001", 0, "CLOSED")

    result = pusher.push_shipment(package(("11", 2)))

    assert result.storefront_ref == "" and fake.calls("fulfillmentCreate") == 0
    [missing] = result.not_pushed
    assert (missing.line_id, missing.quantity) == ("11", 2) and "closed" in missing.why


def test_lines_on_a_held_fulfillment_order_are_retried_later(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    fake.set_fulfillment_order_status("1001", 0, "ON_HOLD")

    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(("11", 1)))

    assert caught.value.code == "fulfillment_on_hold"
    assert caught.value.retryable and caught.value.retry_after
    assert fake.calls("fulfillmentCreate") == 0


def test_a_fulfillment_order_closed_between_read_and_create_is_read_again(
    channels_config: ChannelsConfig, clock: ManualClock, fake: FakeShopify
) -> None:
    app_transport = httpx.WSGITransport(app=create_fake_shopify_app(fake))

    class MerchantClosesInBetween(httpx.BaseTransport):
        """The merchant closes the fulfillment order between our read and our create."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if json.loads(request.content)["operationName"] == FULFILLMENT_CREATE.name:
                fake.set_fulfillment_order_status("1001", 0, "CLOSED")
            return app_transport.handle_request(request)

    pusher = ShopifyPusher(shopify_channel(channels_config, SHOP_URL), clock, MerchantClosesInBetween())
    result = pusher.push_shipment(package(("11", 1)))
    pusher.close()

    assert fake.calls(FULFILLMENT_ORDERS.name) == 2 and fake.calls("fulfillmentCreate") == 1
    assert fake.fulfillments("1001") == []
    assert result.storefront_ref == "" and "closed" in result.not_pushed[0].why


def test_a_refused_tracking_url_alone_is_reported_as_such_and_nothing_is_created(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(("11", 1), url="not a url"))

    assert caught.value.code == "invalid_tracking_url"
    assert not caught.value.retryable and not caught.value.ambiguous
    assert fake.fulfillments("1001") == [] and fake.calls("fulfillmentCreate") == 1


def test_shopify_user_errors_become_a_non_retryable_error_with_field_paths() -> None:
    payload = {
        "userErrors": [
            {"field": ["fulfillment", "lineItemsByFulfillmentOrder", "0"], "message": "Invalid  line\nitem"},
            {"field": None, "message": "Something else"},
        ]
    }
    with pytest.raises(PushError) as caught:
        raise_user_errors(FULFILLMENT_CREATE, payload, "order 1001")

    assert caught.value.code == "user_errors"
    assert not caught.value.retryable and not caught.value.ambiguous
    assert "fulfillment.lineItemsByFulfillmentOrder.0: Invalid line item" in caught.value.message
    assert "(input): Something else" in caught.value.message


def test_an_unknown_order_is_refused(pusher: ShopifyPusher) -> None:
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(("11", 1), order="999"))

    assert caught.value.code == "order_not_found"
    assert not caught.value.retryable


def test_graphql_errors_become_a_non_retryable_error(pusher: ShopifyPusher) -> None:
    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(("11", 1), order="not-a-number"))

    assert caught.value.code == "graphql_error"
    assert not caught.value.retryable
    assert "Invalid global id" in caught.value.message


@pytest.mark.parametrize("notify", [True, False])
def test_notify_customer_follows_the_channel_setting(
    make_pusher: PusherFactory, fake: FakeShopify, notify: bool
) -> None:
    make_pusher(fake, notify_customer=notify).push_shipment(package(("11", 1)))

    [fulfillment] = fake.fulfillments("1001")
    assert fulfillment.notify_customer is notify
    assert create_variables(fake)[0]["notifyCustomer"] is notify


# --------------------------------------------------------------------------------------------
# Ambiguous creates and find_existing


def test_find_existing_finds_the_fulfillment_after_an_accept_then_drop(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    push = package(("11", 2))
    fake.accept_then_drop_next("fulfillmentCreate")

    with pytest.raises(PushError) as caught:
        pusher.push_shipment(push)

    assert caught.value.ambiguous and caught.value.retryable
    [created] = fake.fulfillments("1001")
    found = pusher.find_existing(push)
    assert found is not None and found.storefront_ref == created.gid
    assert pusher.find_existing(package(("11", 2), tracking="SOMETHING-ELSE")) is None


def test_find_existing_finds_nothing_before_the_first_push(pusher: ShopifyPusher) -> None:
    assert pusher.find_existing(package(("11", 1))) is None


def test_over_real_http_a_dropped_create_is_ambiguous_and_found_afterwards(
    channels_config: ChannelsConfig, clock: ManualClock, fake: FakeShopify
) -> None:
    with serve_in_thread(create_fake_shopify_app(fake)) as server:
        pusher = ShopifyPusher(shopify_channel(channels_config, server.base_url), clock)
        try:
            first = pusher.push_shipment(package(("12", 1), tracking="TBA000000000001"))
            fake.accept_then_drop_next("fulfillmentCreate")
            dropped = package(("11", 2), tracking="TBA000000000002")
            with pytest.raises(PushError) as caught:
                pusher.push_shipment(dropped)
            found = pusher.find_existing(dropped)
        finally:
            pusher.close()

    assert caught.value.code == "no_answer" and caught.value.ambiguous
    assert [f.gid for f in fake.fulfillments("1001")] == [
        first.storefront_ref,
        found.storefront_ref if found else None,
    ]
    assert fake.requests[-1].api_version == "2026-07"


# --------------------------------------------------------------------------------------------
# Throttling and HTTP failures


def test_with_a_nearly_empty_bucket_the_pusher_waits_on_the_clock_instead_of_failing(
    pusher: ShopifyPusher, fake: FakeShopify, clock: ManualClock
) -> None:
    fake.set_available(220)
    pusher.find_existing(package(("11", 1)))  # learns the bucket: about 217 points left
    before = clock.monotonic()

    pusher.push_shipment(package(("11", 1)))

    waited = clock.monotonic() - before
    assert 1.0 < waited < 2.0  # (284 - 217) / 50 points a second
    assert fake.calls(FULFILLMENT_ORDERS.name, outcome="throttled") == 0
    assert len(fake.fulfillments("1001")) == 1


def test_a_wait_longer_than_the_cap_is_a_retryable_error_without_a_call(
    make_pusher: PusherFactory, clock: ManualClock, token: str
) -> None:
    shop = FakeShopify(token, clock, restore_rate=5)
    shop.add_order("1001", [("11", "TSHIRT-RED-M", 1)])
    pusher = make_pusher(shop)
    shop.set_available(205)
    pusher.find_existing(package(("11", 1)))
    before = clock.monotonic()

    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(("11", 1)))

    assert caught.value.code == "throttled" and caught.value.retryable
    assert caught.value.retry_after is not None and caught.value.retry_after > 10
    assert clock.monotonic() == before
    assert shop.calls(FULFILLMENT_ORDERS.name) == 0


def test_a_throttled_answer_is_a_retryable_error_with_retry_after_from_cost_and_restore_rate(
    pusher: ShopifyPusher, fake: FakeShopify, clock: ManualClock
) -> None:
    fake.set_available(100)

    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(("11", 1)))

    assert caught.value.code == "throttled"
    assert caught.value.retryable and not caught.value.ambiguous
    assert caught.value.retry_after == pytest.approx((FULFILLMENT_ORDERS.estimated_cost - 100) / 50, abs=0.1)
    assert fake.calls(FULFILLMENT_ORDERS.name, outcome="throttled") == 1

    clock.advance(caught.value.retry_after or 0)
    pusher.push_shipment(package(("11", 1)))
    assert len(fake.fulfillments("1001")) == 1


@pytest.mark.parametrize(
    ("operation", "status", "ambiguous"),
    [
        (FULFILLMENT_ORDERS.name, 429, False),
        ("fulfillmentCreate", 503, True),
        (FULFILLMENT_ORDERS.name, 503, False),
    ],
)
def test_429_and_503_are_retryable(
    pusher: ShopifyPusher, fake: FakeShopify, operation: str, status: int, ambiguous: bool
) -> None:
    fake.fail_next(operation, status=status, retry_after=7)

    with pytest.raises(PushError) as caught:
        pusher.push_shipment(package(("11", 1)))

    assert caught.value.retryable
    assert caught.value.status == status
    assert caught.value.retry_after == 7
    assert caught.value.ambiguous is ambiguous
    assert fake.fulfillments("1001") == []
    pusher.push_shipment(package(("11", 1)))
    assert len(fake.fulfillments("1001")) == 1


def test_a_revoked_token_is_rejected_for_an_operator(pusher: ShopifyPusher, fake: FakeShopify) -> None:
    fake.revoke()

    with pytest.raises(StorefrontRejected) as caught:
        pusher.push_shipment(package(("11", 1)))

    assert caught.value.status == 401
    assert not caught.value.retryable


# --------------------------------------------------------------------------------------------
# Notes


def test_a_note_is_appended_once_even_when_retried(
    pusher: ShopifyPusher, fake: FakeShopify, token: str
) -> None:
    fake.add_order("4004", [("41", "MUG-WHITE", 1)], note="Gift wrap please")
    note = OrderNote("4004", "shop-a-4004:amazon-cancelled", "Amazon cancelled line 41: out of stock")
    fake.accept_then_drop_next("orderUpdate")

    with pytest.raises(PushError) as caught:
        pusher.add_note(note)
    assert not caught.value.ambiguous  # a retry re-reads the note: harmless
    retried = pusher.add_note(note)
    again = pusher.add_note(note)

    stored = fake.note("4004") or ""
    assert stored.startswith("Gift wrap please\n\n")
    assert stored.count("[fba-bridge:shop-a-4004:amazon-cancelled]") == 1
    assert stored.count("Amazon cancelled line 41") == 1
    assert retried.details["already_present"] and again.details["already_present"]
    assert fake.calls("orderUpdate") == 1

    other = pusher.add_note(OrderNote("4004", "shop-a-4004:second", "Second note"))
    assert not other.details["already_present"]
    assert (fake.note("4004") or "").endswith("[fba-bridge:shop-a-4004:second] Second note")


def test_every_request_the_pusher_sends_is_valid_against_shopifys_contract(
    pusher: ShopifyPusher, fake: FakeShopify
) -> None:
    """Documents *and* variables, as sent, against the derived 2026-07 schema (not the fake's)."""
    schema = build_schema(SHOPIFY_CONTRACT.read_text(encoding="utf-8"))
    fake.add_order("5005", [("51", "MUG-WHITE", 1)], note="n")
    pusher.push_shipment(package(("11", 2), ("12", 1)))
    pusher.find_existing(package(("11", 2), ("12", 1)))
    pusher.add_note(OrderNote("5005", "shop-a-5005:k", "a note"))
    by_name = {op.name: op for op in (*OPERATIONS, *FULFILLMENT_OPERATIONS)}
    sent = [r for r in fake.requests if r.outcome == "ok"]
    assert {r.operation_name for r in sent} >= {FULFILLMENT_CREATE.name, "BridgeOrderNoteUpdate"}
    for request in sent:
        document = parse(by_name[str(request.operation_name)].document)
        assert not validate(schema, document)
        [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            assert _coerces(schema, definition, request.variables.get(name)), (
                f"{request.operation_name}: ${name} as sent is not a valid {print_ast(definition.type)}"
            )


def _coerces(schema: GraphQLSchema, definition: VariableDefinitionNode, value: Any) -> bool:
    """Whether `value` is a valid value for the variable's type (graphql-core 3.2 raises, 3.3 returns
    Undefined)."""
    var_type = type_from_ast(schema, definition.type)
    assert var_type is not None
    if value is None:
        return not isinstance(var_type, GraphQLNonNull) or definition.default_value is not None
    try:
        return coerce_input_value(value, var_type) is not Undefined  # type: ignore[arg-type]
    except GraphQLError:
        return False


# --------------------------------------------------------------------------------------------
# Secrets and personal data


def test_no_access_token_or_personal_data_in_logs_or_errors(
    pusher: ShopifyPusher,
    fake: FakeShopify,
    token: str,
    caplog: pytest.LogCaptureFixture,
    log_output: LogOutput,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = "call Jon Canary on +1 555 0100 777 or jon.canary@example.com"
    errors: list[PushError] = []

    pusher.push_shipment(package(("11", 1)))
    pusher.find_existing(package(("11", 1)))
    pusher.add_note(OrderNote("1001", "k1", secret_text))
    fake.set_available(0)
    for call in (
        lambda: pusher.push_shipment(package(("12", 1))),
        lambda: pusher.add_note(OrderNote("1001", "k2", secret_text)),
    ):
        try:
            call()
        except PushError as exc:
            errors.append(exc)
    fake.revoke()
    try:
        pusher.push_shipment(package(("12", 1)))
    except PushError as exc:
        errors.append(exc)

    assert [e.code for e in errors] == ["throttled", "rejected"]  # the cheap note waited instead
    text = caplog.text + "\n".join(str(e) for e in errors)
    assert token not in text
    assert "Jon Canary" not in text and "jon.canary@example.com" not in text and "555 0100" not in text
    log_output.assert_free_of(token, "Jon Canary", "jon.canary@example.com", "555 0100")
    assert all(token not in json.dumps(r.variables) for r in fake.requests)


# --------------------------------------------------------------------------------------------
# The fake itself


def test_pusher_cost_estimates_match_the_calculated_query_cost() -> None:
    for operation in OPERATIONS + FULFILLMENT_OPERATIONS:
        document = parse(operation.document)
        [definition] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        assert QueryCost(document, definition, {}).requested() == operation.estimated_cost, operation.name


def test_fake_answers_like_shopify(fake: FakeShopify, token: str) -> None:
    client = httpx.Client(transport=httpx.WSGITransport(app=create_fake_shopify_app(fake)), base_url=SHOP_URL)
    url = "/admin/api/2026-07/graphql.json"
    headers = {"X-Shopify-Access-Token": token}

    ok = client.post(
        url,
        headers=headers,
        json={"query": ORDER_FULFILLMENTS.document, "variables": {"id": "gid://shopify/Order/1001"}},
    )
    unknown = client.post(
        url, headers=headers, json={"query": "query C { customers(first: 1) { nodes { id } } }"}
    )
    unauthorised = client.post(
        url, headers={"X-Shopify-Access-Token": "wrong"}, json={"query": "{ shop { name } }"}
    )
    client.close()

    body = ok.json()
    assert ok.status_code == 200
    assert body["data"] == {"order": {"id": "gid://shopify/Order/1001", "fulfillments": []}}
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == ORDER_FULFILLMENTS.estimated_cost
    assert cost["actualQueryCost"] < cost["requestedQueryCost"]
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    assert unknown.status_code == 200 and "customers" in unknown.json()["errors"][0]["message"]
    assert "data" not in unknown.json()
    assert unauthorised.status_code == 401
    assert unauthorised.json()["errors"].startswith("[API] Invalid API key or access token")
    assert [r.outcome for r in fake.requests] == ["ok", "invalid", "unauthorized"]


def test_fake_executes_any_valid_selection_with_aliases(
    fake: FakeShopify, pusher: ShopifyPusher, token: str
) -> None:
    pusher.push_shipment(package(("11", 2)))
    query = """
    query Look($id: ID!) {
      o: order(id: $id) {
        name
        fulfillments(first: 5) {
          name
          fulfillmentLineItems(first: 5) { edges { cursor node { quantity lineItem { id sku } } } }
        }
        fulfillmentOrders(first: 1) { nodes { status lineItems(first: 1) { pageInfo { hasNextPage } } } }
      }
    }"""
    client = httpx.Client(transport=httpx.WSGITransport(app=create_fake_shopify_app(fake)), base_url=SHOP_URL)
    answer = client.post(
        "/admin/api/2026-07/graphql.json",
        headers={"X-Shopify-Access-Token": token},
        json={"query": query, "variables": {"id": "gid://shopify/Order/1001"}, "operationName": "Look"},
    ).json()
    client.close()

    order = answer["data"]["o"]
    assert order["name"] == "#1001"
    [edge] = order["fulfillments"][0]["fulfillmentLineItems"]["edges"]
    assert edge["node"] == {
        "quantity": 2,
        "lineItem": {"id": "gid://shopify/LineItem/11", "sku": "TSHIRT-RED-M"},
    }
    assert order["fulfillmentOrders"]["nodes"] == [
        {"status": "IN_PROGRESS", "lineItems": {"pageInfo": {"hasNextPage": True}}}
    ]


def test_fake_can_be_seeded_and_inspected_over_http(fake: FakeShopify, make_pusher: PusherFactory) -> None:
    client = httpx.Client(transport=httpx.WSGITransport(app=create_fake_shopify_app(fake)), base_url=SHOP_URL)
    seeded = client.post(
        "/_fake/orders", json={"order_id": "5005", "lines": [{"line_id": "51", "sku": "X", "quantity": 2}]}
    )
    make_pusher(fake).push_shipment(package(("51", 1), order="5005"))
    shown = client.get("/_fake/orders/5005").json()
    missing = client.get("/_fake/orders/404")
    client.close()

    assert seeded.status_code == 201
    assert shown["remaining"] == {"51": 1}
    assert shown["fulfillments"][0]["quantities"] == {"51": 1}
    assert shown["fulfillments"][0]["tracking_numbers"] == [TRACKING]
    assert missing.status_code == 404
