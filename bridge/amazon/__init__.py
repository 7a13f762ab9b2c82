"""Amazon Multi-Channel Fulfillment: the SP-API client side and the embedded simulator."""
