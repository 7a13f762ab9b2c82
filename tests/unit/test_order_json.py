"""`CanonicalOrder.to_json` gives exactly what `dataclasses.asdict` gave, without the deep copy."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.orders import Address, CanonicalOrder, OrderLine, PaymentState


def legacy_to_json(order: CanonicalOrder) -> dict[str, Any]:
    data = asdict(order)
    data["payment_state"] = order.payment_state.value
    data["created_at"] = order.created_at.isoformat()
    data["updated_at"] = order.updated_at.isoformat()
    meta: dict[str, str] = {}
    for name, value in order.meta:
        meta.setdefault(name, value)
    data["meta"] = meta
    return data


BASE = CanonicalOrder(
    channel_id="shop-a",
    external_id="1001",
    display_id="#1001",
    currency="USD",
    payment_state=PaymentState.PAID,
    created_at=datetime(2026, 11, 1, 15, 0, tzinfo=UTC),
    updated_at=datetime(2026, 11, 1, 15, 5, tzinfo=UTC),
    lines=(
        OrderLine("1", "TSHIRT-RED-M", 2, "19.99", "T-Shirt", fulfillable_quantity=1, ordered_quantity=3),
        OrderLine("2", "MUG-WHITE", 0, "9.00", requires_shipping=False),
    ),
    destination=Address("A Buyer", "1 Main St", "US", "10001", city="Springfield", state="NY"),
    shipping_method="Standard",
    gift_message="Happy birthday",
    tags=("vip", "wholesale"),
    meta=(("fba_priority", "high"), ("fba_note", "gift")),
)


@pytest.mark.parametrize(
    "order",
    [
        BASE,
        replace(BASE, destination=None, lines=()),
        replace(
            BASE, cancelled=True, test=True, cancel_reason="customer", payment_state=PaymentState.UNKNOWN
        ),
    ],
)
def test_to_json_equals_the_asdict_form(order: CanonicalOrder) -> None:
    assert order.to_json() == legacy_to_json(order)
    assert type(order.to_json()["lines"]) is tuple
    assert CanonicalOrder.from_json(order.to_json()) == order


def test_to_json_does_not_share_the_order_s_objects() -> None:
    data = BASE.to_json()
    data["lines"][0]["quantity"] = 99
    data["destination"]["name"] = "changed"
    assert BASE.lines[0].quantity == 2 and BASE.destination is not None and BASE.destination.name == "A Buyer"
