"""fba-bridge: storefront orders shipped by Amazon Multi-Channel Fulfillment."""

__version__ = "0.1.0"
