"""Storefront webhook intake and push-back, one module per platform."""
