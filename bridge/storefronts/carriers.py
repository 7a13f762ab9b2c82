"""Amazon's carrier codes as each storefront names the carrier.

Amazon reports a package's carrier as a code (`AMZL_US`, `UPS`, `FEDEX`, `USPS`, ...). A
storefront recognises carriers by name: Shopify builds the tracking link and follows the
delivery for the names in its tracking-company list (Admin API 2026-07 `FulfillmentTrackingInfo.
company`); the WooCommerce Shipment Tracking extension for the names in its provider list (the
WooCommerce pusher matches the name given here against that list). So a raw code reaches the
customer as a carrier nobody recognises. `carrier_name` gives the name per platform; a channel's
`carrier_names` overrides it per code; an unknown code passes through unchanged.

Shopify's 2026-07 list has "Amazon" and "Amazon Logistics UK" (no US entry), so Amazon Logistics
outside the UK is "Amazon" there. `tests/fixtures/shopify/tracking_companies.json` is derived from
that schema (tools/derive_contracts.py) and a test keeps these names in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Carrier:
    name: str  # what a person calls it; WooCommerce and generic callbacks get this
    shopify: str  # the name in Shopify's tracking-company list


def normalise_code(code: str) -> str:
    """`amzl-us`, `AMZL US` and `AMZL_US` are the same code."""
    return re.sub(r"[\s\-]+", "_", code.strip().upper())


_AMAZON = Carrier("Amazon Logistics", "Amazon")
_AMAZON_UK = Carrier("Amazon Logistics UK", "Amazon Logistics UK")

CARRIERS: Mapping[str, Carrier] = {
    "UPS": Carrier("UPS", "UPS"),
    "UPS_MAIL_INNOVATIONS": Carrier("UPS", "UPS"),
    "USPS": Carrier("USPS", "USPS"),
    "FEDEX": Carrier("FedEx", "FedEx"),
    "FEDEX_SMARTPOST": Carrier("FedEx", "FedEx"),
    "ONTRAC": Carrier("OnTrac", "OnTrac"),
    "LASERSHIP": Carrier("LaserShip", "Lasership"),
    "DHL": Carrier("DHL", "DHL Express"),
    "DHL_EXPRESS": Carrier("DHL", "DHL Express"),
    "DHL_ECOMMERCE": Carrier("DHL eCommerce", "DHL eCommerce"),
    "DHLECOMMERCE": Carrier("DHL eCommerce", "DHL eCommerce"),
    "DHL_GLOBAL_MAIL": Carrier("DHL eCommerce", "DHL eCommerce"),
    "CANADA_POST": Carrier("Canada Post", "Canada Post"),
    "PUROLATOR": Carrier("Purolator", "Purolator"),
    "ROYAL_MAIL": Carrier("Royal Mail", "Royal Mail"),
    "ROYALMAIL": Carrier("Royal Mail", "Royal Mail"),
    "PARCELFORCE": Carrier("ParcelForce", "Parcelforce"),
    "DPD": Carrier("DPD", "DPD"),
    "DPD_UK": Carrier("DPD UK", "DPD UK"),
    "EVRI": Carrier("Evri", "Evri"),
    "HERMES": Carrier("Evri", "Evri"),
    "GLS": Carrier("GLS", "GLS"),
    "DEUTSCHE_POST": Carrier("Deutsche Post", "Deutsche Post"),
    "CHRONOPOST": Carrier("Chronopost", "Chronopost"),
    "COLISSIMO": Carrier("Colissimo", "Colissimo"),
    "POSTNL": Carrier("PostNL", "PostNL"),
    "AUSTRALIA_POST": Carrier("Australia Post", "Australia Post"),
    "JAPAN_POST": Carrier("Japan Post", "Japan Post (EN)"),
    "YAMATO": Carrier("Yamato", "Yamato (EN)"),
    "SAGAWA": Carrier("Sagawa", "Sagawa (EN)"),
    "AMAZON": _AMAZON,
    "AMAZON_LOGISTICS": _AMAZON,
}


def lookup(code: str) -> Carrier | None:
    key = normalise_code(code)
    if key in CARRIERS:
        return CARRIERS[key]
    if key.startswith(("AMZL", "AMZN")):  # Amazon Logistics per country: AMZL_US, AMZN_UK, ...
        return _AMAZON_UK if key.endswith(("_UK", "_GB")) else _AMAZON
    return None


def carrier_name(code: str, platform: str, overrides: Mapping[str, str] | None = None) -> str:
    """The carrier name `platform` should show for Amazon's `code`. `overrides` (a channel's
    `carrier_names`, keys as written in the channels file) win; unknown codes pass through."""
    key = normalise_code(code)
    for wanted, name in (overrides or {}).items():
        if normalise_code(wanted) == key:
            return name
    known = lookup(code)
    if known is None:
        return code
    return known.shopify if platform == "shopify" else known.name
