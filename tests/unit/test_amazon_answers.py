"""Parsing Amazon's answers as Amazon really sends them (pure functions, no I/O)."""

from __future__ import annotations

import pytest

from bridge.amazon.errors import CredentialsRejected, NotFound, ServerError
from bridge.amazon.models import PackageTrackingDetails, tracking_link
from bridge.amazon.simulator import SimulatorConfig
from bridge.amazon.simulator.config import Fidelity

MODEL_EXAMPLE = "https%3A%2F%2Fwww.swiship.com%2Ftrack%3Fid%3D1Z50V7420354708051%0A"


@pytest.mark.parametrize(
    ("raw", "link"),
    [
        (MODEL_EXAMPLE, "https://www.swiship.com/track?id=1Z50V7420354708051"),
        (
            "https://www.ups.com/track?loc=en_US&tracknum=1Z%20X",
            "https://www.ups.com/track?loc=en_US&tracknum=1Z%20X",
        ),
        ("  https://carrier.example/t/1\r\n", "https://carrier.example/t/1"),
        ("HTTPS%253A%252F%252Fcarrier.example%252Ft%250A", "HTTPS://carrier.example/t"),  # encoded twice
        ("http%3A%2F%2Fcarrier.example%2Ft", "http://carrier.example/t"),
    ],
)
def test_tracking_links_are_decoded_only_when_encoded_and_stripped(raw: str, link: str) -> None:
    assert tracking_link(raw) == link


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "javascript:alert(1)",
        "ftp://carrier.example/t",
        "www.swiship.com/track?id=1",
        "https://",
        "https%3A%2F%2Fcarrier.example%2Fa%0Ab",  # a newline inside, not only at the end
        "https://carrier.example/a b",
        "https://[::1",
        "https://carrier.example/" + "x" * 1000,
    ],
)
def test_anything_but_an_openable_http_link_is_dropped(raw: str | None) -> None:
    assert tracking_link(raw) is None


def test_package_tracking_details_carry_the_decoded_links() -> None:
    details = PackageTrackingDetails.from_api(
        {
            "packageNumber": 1,
            "trackingNumber": "1Z50V7420354708051",
            "customerTrackingLink": MODEL_EXAMPLE,
            "carrierURL": "not a url",
        }
    )
    assert details.customer_tracking_link == "https://www.swiship.com/track?id=1Z50V7420354708051"
    assert details.carrier_url is None


def test_describe_is_one_line_with_operation_status_code_message_and_request_id() -> None:
    exc = NotFound(
        "InvalidInput",
        "Amazon found nothing for getFulfillmentOrder: Requested order not found",
        400,
        "0f1e",
        operation="getFulfillmentOrder",
        amazon_message="Requested order not found",
    )
    assert exc.describe() == (
        "getFulfillmentOrder: HTTP 400 InvalidInput: Requested order not found (x-amzn-RequestId 0f1e)"
    )
    ambiguous = ServerError(
        message="Amazon failed", status=503, operation="createFulfillmentOrder", ambiguous=True
    )
    assert ambiguous.describe().startswith("createFulfillmentOrder: HTTP 503 ServerError: Amazon failed")
    assert "read the order back" in ambiguous.describe()
    assert CredentialsRejected("invalid_grant", "re-authorise", operation="lwa.token").describe() == (
        "lwa.token invalid_grant: re-authorise"
    )


def test_the_simulator_answers_like_amazon_unless_told_to_be_kind() -> None:
    assert SimulatorConfig().fidelity == Fidelity(True, True, True)
    kind = SimulatorConfig.from_mapping({"fidelity": {"encoded_tracking_links": False}})
    assert kind.fidelity == Fidelity(False, True, True)
    assert Fidelity.kind() == Fidelity(False, False, False)
    with pytest.raises(TypeError):
        SimulatorConfig.from_mapping({"fidelity": {"made_up": True}})
