"""Carrier names: every name we give Shopify is in Shopify's own list, WooCommerce gets names the
Shipment Tracking extension knows, overrides win, and unknown codes pass through."""

import json

import pytest

from bridge.fakes.woocommerce import DEFAULT_PROVIDERS, slug
from bridge.storefronts.carriers import CARRIERS, carrier_name, lookup
from bridge.storefronts.woocommerce_push import KNOWN_PROVIDERS, normalise_carrier
from tests.conftest import FIXTURES

SHOPIFY_NAMES = set(json.loads((FIXTURES / "shopify" / "tracking_companies.json").read_text())["names"])


@pytest.mark.parametrize("code", [*CARRIERS, "AMZL_US", "AMZN_UK", "AMZL_DE"])
def test_every_shopify_name_is_in_shopifys_tracking_company_list(code: str) -> None:
    assert carrier_name(code, "shopify") in SHOPIFY_NAMES


@pytest.mark.parametrize(
    ("code", "shopify", "words"),
    [
        ("AMZL_US", "Amazon", "Amazon Logistics"),
        ("amzl-uk", "Amazon Logistics UK", "Amazon Logistics UK"),
        ("FEDEX", "FedEx", "FedEx"),
        ("USPS", "USPS", "USPS"),
        ("UPS", "UPS", "UPS"),
        ("DHL eCommerce", "DHL eCommerce", "DHL eCommerce"),
    ],
)
def test_amazons_codes_become_names(code: str, shopify: str, words: str) -> None:
    assert carrier_name(code, "shopify") == shopify
    assert carrier_name(code, "woocommerce") == carrier_name(code, "generic") == words


def test_names_the_shipment_tracking_extension_lists_are_matched_as_its_providers() -> None:
    listed = {slug(name) for providers in DEFAULT_PROVIDERS.values() for name in providers}
    for code in ("UPS", "USPS", "FEDEX", "ONTRAC", "DHL", "CANADA_POST", "ROYAL_MAIL", "PARCELFORCE"):
        provider = KNOWN_PROVIDERS.get(normalise_carrier(carrier_name(code, "woocommerce")))
        assert provider is not None and slug(provider) in listed, code


def test_a_channels_override_wins_whatever_the_spelling_of_the_code() -> None:
    assert carrier_name("AMZL_US", "shopify", {"amzl us": "Amazon Shipping"}) == "Amazon Shipping"
    assert carrier_name("UPS", "shopify", {"amzl us": "Amazon Shipping"}) == "UPS"


def test_an_unknown_code_passes_through() -> None:
    assert lookup("ACME_FREIGHT") is None
    assert carrier_name("ACME_FREIGHT", "shopify") == "ACME_FREIGHT"
