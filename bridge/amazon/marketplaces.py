"""Amazon marketplaces the bridge knows: id -> (ISO country code, currency).

Amazon's published marketplace ids. The planning code uses the country to tell a cross-border
destination (which needs `perUnitDeclaredValue`) and the currency to declare values in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Marketplace:
    id: str
    country_code: str
    currency: str


MARKETPLACES: dict[str, Marketplace] = {
    m.id: m
    for m in (
        Marketplace("ATVPDKIKX0DER", "US", "USD"),
        Marketplace("A2EUQ1WTGCTBG2", "CA", "CAD"),
        Marketplace("A1AM78C64UM0Y8", "MX", "MXN"),
        Marketplace("A2Q3Y263D00KWC", "BR", "BRL"),
        Marketplace("A1F83G8C2ARO7P", "GB", "GBP"),
        Marketplace("A1PA6795UKMFR9", "DE", "EUR"),
        Marketplace("A13V1IB3VIYZZH", "FR", "EUR"),
        Marketplace("APJ6JRA9NG5V4", "IT", "EUR"),
        Marketplace("A1RKKUPIHCS9HS", "ES", "EUR"),
        Marketplace("A1805IZSGTT6HS", "NL", "EUR"),
        Marketplace("A2NODRKZP88ZB9", "SE", "SEK"),
        Marketplace("A1C3SOZRARQ6R3", "PL", "PLN"),
        Marketplace("AMEN7PMS3EDWL", "BE", "EUR"),
        Marketplace("A1VC38T7YXB528", "JP", "JPY"),
        Marketplace("A39IBJ37TRP1C6", "AU", "AUD"),
        Marketplace("A19VAU5U5O7RUS", "SG", "SGD"),
        Marketplace("A2VIGQ35RCS4UG", "AE", "AED"),
        Marketplace("A21TJRUUN4KGV", "IN", "INR"),
    )
}


def marketplace(marketplace_id: str) -> Marketplace | None:
    return MARKETPLACES.get(marketplace_id)
