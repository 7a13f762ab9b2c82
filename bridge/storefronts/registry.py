"""Which adapter serves a channel's `platform`: the one place that knows every platform module.

The web layer asks `adapter_for(channel.platform)`; the channels schema already limits
`platform` to the names registered here, so `UnknownPlatform` means the two drifted apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from . import generic, shopify, woocommerce
from .base import StorefrontAdapter


class UnknownPlatform(LookupError):
    def __init__(self, platform: str) -> None:
        super().__init__(
            f"no storefront adapter for platform {platform!r}; use one of: {', '.join(sorted(ADAPTERS))}"
        )
        self.platform = platform


ADAPTERS: Mapping[str, StorefrontAdapter] = MappingProxyType(
    {adapter.platform: adapter for adapter in (shopify.adapter, woocommerce.adapter, generic.adapter)}
)


def adapter_for(platform: str) -> StorefrontAdapter:
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise UnknownPlatform(platform) from None
