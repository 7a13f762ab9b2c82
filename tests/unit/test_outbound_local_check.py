"""The SP-API client refuses a create our own schema rejects, before anything is sent."""

from datetime import UTC, datetime

import httpx
import pytest

from bridge.amazon.errors import InvalidInput
from bridge.amazon.limiter import MemoryBuckets
from bridge.amazon.models import (
    Address,
    CreateFulfillmentOrderItem,
    CreateFulfillmentOrderRequest,
    FulfillmentAction,
    ShippingSpeedCategory,
)
from bridge.amazon.outbound import outbound_client
from bridge.channels import AmazonAccount
from bridge.clock import ManualClock
from bridge.settings import Secret


def test_invalid_create_is_refused_locally_with_field_paths_and_no_values() -> None:
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(500))
    account = AmazonAccount(
        id="main",
        region="na",
        endpoint="http://sim",
        token_endpoint="http://sim/auth/o2/token",
        local_simulator=True,
        client_id=Secret("c"),
        client_secret=Secret("s"),
        refresh_token=Secret("r"),
    )
    clock = ManualClock()
    client = outbound_client(account, clock, MemoryBuckets(clock), transport)
    request = CreateFulfillmentOrderRequest(
        seller_fulfillment_order_id="x" * 41,
        displayable_order_id="#1",
        displayable_order_date=datetime(2026, 11, 23, tzinfo=UTC),
        displayable_order_comment="thanks",
        shipping_speed_category=ShippingSpeedCategory.SCHEDULED_DELIVERY,
        destination_address=Address(
            name="Canary Person", address_line1="1 Road", country_code="US", postal_code="1"
        ),
        items=[
            CreateFulfillmentOrderItem(seller_sku="SKU", seller_fulfillment_order_item_id="1", quantity=1)
        ],
        fulfillment_action=FulfillmentAction.HOLD,
    )
    with pytest.raises(InvalidInput) as info:
        client.create(request)
    assert sent == [], "nothing reached Amazon"
    assert "sellerFulfillmentOrderId" in info.value.message and "fulfillmentAction" in info.value.message
    assert "Canary" not in info.value.message
