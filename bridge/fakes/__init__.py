"""Runnable fake storefronts for tests and `fba-bridge demo`.

Each fake is a small stateful object plus a Flask app serving the platform's real endpoints with
the platform's answer shapes, so the bridge's own push-back adapters talk to it unchanged: in
process through `httpx.WSGITransport`, or over loopback with
`bridge.amazon.simulator.server.serve_in_thread`. Each can also be told to misbehave (throttle,
fail, drop a connection after acting) and records every call for assertions.

- `shopify`: the Admin GraphQL API (fulfillment orders, `fulfillmentCreate`, order notes).
- `woocommerce`: REST v3 orders, notes and the Shipment Tracking extension.
- `generic`: a Standard Webhooks receiver for the bridge's callbacks.
"""
