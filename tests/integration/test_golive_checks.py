"""`fba-bridge check amazon` / `check channel` end to end: the CLI, the channels file given inline
(`BRIDGE_CONFIG_YAML`), and real HTTP to the MCF simulator, the fake storefronts and a running
bridge. A good configuration passes; each broken piece is reported with its fix; nothing secret
is printed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from click.testing import CliRunner, Result

from bridge.amazon.simulator import Simulator, create_simulator_app
from bridge.amazon.simulator.config import SimulatorConfig
from bridge.amazon.simulator.server import RunningServer, serve_in_thread
from bridge.bootstrap import Bridge
from bridge.cli import main
from bridge.clock import ManualClock
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.fakes.shopify import FakeShopify, create_fake_shopify_app
from bridge.fakes.woocommerce import FakeWooCommerce, create_fake_woocommerce_app

SHOP_TOKEN = "shpat_test_token_0123456789"
WOO_KEY, WOO_SECRET = "ck_test_0123456789", "cs_test_0123456789"
GENERIC_SECRET = "whsec_dGVzdC1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw"

ENV = {
    "LWA_CLIENT_ID": "sim-client",
    "LWA_CLIENT_SECRET": "sim-secret",
    "LWA_REFRESH_TOKEN": "sim-refresh",
    "SHOP_A_WEBHOOK_SECRET": "test-shopify-secret-1",
    "SHOP_A_ADMIN_TOKEN": SHOP_TOKEN,
    "WOO_WEBHOOK_SECRET": "test-woo-secret-1",
    "WOO_CONSUMER_KEY": WOO_KEY,
    "WOO_CONSUMER_SECRET": WOO_SECRET,
    "OWN_SHOP_SECRET": GENERIC_SECRET,
}
SECRETS = [v for k, v in ENV.items() if k != "LWA_CLIENT_ID"]

CONFIG = """
version: 1
amazon:
  accounts:
    - id: main
      region: {region}
      endpoint: {sim}
      token_endpoint: {sim}/auth/o2/token
      local_simulator: true
      client_id: ${{LWA_CLIENT_ID}}
      client_secret: ${{LWA_CLIENT_SECRET}}
      refresh_token: ${{LWA_REFRESH_TOKEN}}
channels:
  - id: shop-a
    platform: shopify
    webhook_secrets: ["${{SHOP_A_WEBHOOK_SECRET}}"]
    storefront:
      base_url: {shop}
      local: true
      access_token: ${{SHOP_A_ADMIN_TOKEN}}
    amazon: {{marketplace_id: {marketplace}}}
    skus: {{map: {{TSHIRT: FBA-TSHIRT}}}}
  - id: woo-main
    platform: woocommerce
    webhook_secrets: ["${{WOO_WEBHOOK_SECRET}}"]
    storefront:
      base_url: {woo}
      local: true
      consumer_key: ${{WOO_CONSUMER_KEY}}
      consumer_secret: ${{WOO_CONSUMER_SECRET}}
      shipment_tracking_extension: true
    amazon: {{marketplace_id: ATVPDKIKX0DER}}
    skus: {{map: {{MUG: FBA-MUG}}}}
  - id: own-shop
    platform: generic
    webhook_secrets: ["${{OWN_SHOP_SECRET}}"]
    storefront:
      callback_url: {receiver}/fba-bridge/events
      local: true
    amazon: {{marketplace_id: ATVPDKIKX0DER}}
    skus: {{map: {{SKU-1: FBA-SKU-1}}}}
"""


@dataclass
class World:
    sim: RunningServer
    shop: FakeShopify
    shop_server: RunningServer
    woo: FakeWooCommerce
    woo_server: RunningServer
    receiver: RunningServer
    bridge: RunningServer

    def config(self, *, region: str = "na", marketplace: str = "ATVPDKIKX0DER", shop: str = "") -> str:
        return CONFIG.format(
            region=region,
            marketplace=marketplace,
            sim=self.sim.base_url,
            shop=shop or self.shop_server.base_url,
            woo=self.woo_server.base_url,
            receiver=self.receiver.base_url,
        )

    def run(self, *args: str, config: str | None = None, **env: str | None) -> Result:
        full_env: dict[str, str | None] = {
            **ENV,
            "BRIDGE_CONFIG": None,
            "BRIDGE_SIMULATOR_URL": None,
            "BRIDGE_CONFIG_YAML": config if config is not None else self.config(),
            **env,
        }
        result = CliRunner().invoke(main, list(args), env=full_env)
        for secret in SECRETS:
            assert secret not in result.output, "a secret was printed"
        return result

    def sim_control(self, path: str, body: dict[str, object] | None = None) -> None:
        response = httpx.post(f"{self.sim.base_url}/_sim/{path}", json=body or {}, timeout=5)
        assert response.status_code == 200, response.text


def lines(result: Result, status: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(status)]


@pytest.fixture
def world(bridge: Bridge) -> Iterator[World]:
    from bridge.app import create_app

    simulator = Simulator(SimulatorConfig(), clock=ManualClock(), rate_clock=ManualClock())
    shop = FakeShopify(SHOP_TOKEN)
    woo = FakeWooCommerce(WOO_KEY, WOO_SECRET)
    woo.add_order(4711)
    receiver = FakeGenericReceiver(GENERIC_SECRET)
    with (
        serve_in_thread(create_simulator_app(simulator)) as sim_server,
        serve_in_thread(create_fake_shopify_app(shop)) as shop_server,
        serve_in_thread(create_fake_woocommerce_app(woo)) as woo_server,
        serve_in_thread(create_fake_generic_app(receiver)) as receiver_server,
        serve_in_thread(create_app(bridge)) as bridge_server,
    ):
        for topic in ("orders/create", "orders/paid", "orders/updated", "orders/cancelled"):
            shop.add_webhook_subscription(topic, f"{bridge_server.base_url}/webhooks/shop-a")
        for topic in ("order.created", "order.updated", "order.deleted"):
            woo.add_webhook(topic, f"{bridge_server.base_url}/webhooks/woo-main")
        yield World(sim_server, shop, shop_server, woo, woo_server, receiver_server, bridge_server)


# --------------------------------------------------------------------------------------------
# A good configuration


def test_a_good_configuration_passes_every_check(world: World) -> None:
    amazon = world.run("check", "amazon")
    assert amazon.exit_code == 0, amazon.output
    assert not lines(amazon, "missing")
    assert any(
        "Login with Amazon" in line and "issued an access token" in line for line in lines(amazon, "ok")
    )
    assert any("getFeatures for marketplace ATVPDKIKX0DER" in line for line in lines(amazon, "ok"))
    assert "all checks passed" in amazon.output

    channels = world.run("check", "channel", "--public-url", world.bridge.base_url)
    assert channels.exit_code == 0, channels.output
    ok = "\n".join(lines(channels, "ok"))
    assert f"the bridge answers at {world.bridge.base_url}" in ok
    assert "Shopify Admin API 2026-07 answered for shop-a.myshopify.com" in ok
    assert "access scopes cover" in ok
    assert "orders/create, orders/paid, orders/updated, orders/cancelled point at" in ok
    assert "accepted the consumer key" in ok
    for topic in ("order.created", "order.updated", "order.deleted"):
        assert f"webhook {topic} is active" in ok
    assert "Shipment Tracking extension answers" in ok
    assert "callback URL" in ok
    # What the check cannot see is said, not hidden.
    assert any("write permission cannot be checked" in line for line in lines(channels, "note"))
    # Read-only: the storefronts saw no write.
    assert world.shop.calls("fulfillmentCreate") == 0 and world.shop.calls("orderUpdate") == 0
    assert {c.method for c in world.woo.calls} == {"GET"}


def test_one_channel_can_be_checked_alone(world: World) -> None:
    result = world.run("check", "channel", "woo-main")
    assert result.exit_code == 0, result.output
    assert "channel shop-a" not in result.output and "channel woo-main" in result.output


# --------------------------------------------------------------------------------------------
# Amazon: each broken piece with its fix


def test_revoked_authorisation_is_reported_as_invalid_grant_with_the_fix(world: World) -> None:
    world.sim_control("tokens/revoke")
    result = world.run("check", "amazon")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "invalid_grant" in missing and "revoked" in missing
    assert "Fix: re-authorise the app (Seller Central > Partner Network > Develop Apps" in missing
    assert "getFeatures" not in result.output  # no SP-API call without a token


def test_wrong_or_expired_client_secret_is_reported_as_invalid_client(world: World) -> None:
    result = world.run("check", "amazon", LWA_CLIENT_SECRET="an-expired-secret")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "invalid_client" in missing and "180 days" in missing and "Fix: rotate the secret" in missing
    assert "an-expired-secret" not in result.output


def test_missing_amazon_fulfillment_role_is_reported_from_a_403(world: World) -> None:
    world.sim_control(
        "faults",
        {
            "operation": "getFeatures",
            "status": 403,
            "code": "Unauthorized",
            "message": "Access to requested resource is denied.",
            "count": 3,
        },
    )
    result = world.run("check", "amazon", "main")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "denied getFeatures" in missing and "403 Unauthorized" in missing
    assert "Fix: add the Amazon Fulfillment role" in missing


def test_marketplace_of_another_region_is_reported(world: World) -> None:
    result = world.run("check", "amazon", config=world.config(marketplace="A1PA6795UKMFR9"))
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "marketplace A1PA6795UKMFR9 (DE)" in missing and "Fix: set region: eu" in missing
    assert "sellingpartnerapi-eu.amazon.com" in missing


def test_unknown_account_is_missing(world: World) -> None:
    result = world.run("check", "amazon", "nope")
    assert result.exit_code == 1
    assert "no such account" in result.output and "use one of: main" in result.output


def test_compose_trial_checks_the_shared_simulator(world: World) -> None:
    config = """
version: 1
amazon:
  accounts:
    - id: main
      region: na
      embedded_simulator: true
      client_id: sim-client
      client_secret: sim-secret
      refresh_token: sim-refresh
channels:
  - id: own-shop
    platform: generic
    webhook_secrets: ["whsec_dGVzdC1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw"]
    storefront: {callback_url: "http://127.0.0.1:9/x", local: true}
    amazon: {marketplace_id: ATVPDKIKX0DER}
    skus: {map: {A: B}}
"""
    result = world.run("check", "amazon", config=config, BRIDGE_SIMULATOR_URL=world.sim.base_url)
    assert result.exit_code == 0, result.output
    assert any("talks to the MCF simulator" in line for line in lines(result, "note"))
    assert any("getFeatures" in line for line in lines(result, "ok"))

    alone = world.run("check", "amazon", config=config)
    assert alone.exit_code == 0
    assert "every process runs its own MCF simulator" in alone.output


# --------------------------------------------------------------------------------------------
# Storefronts: each broken piece with its fix


def test_missing_shopify_scopes_are_listed(world: World) -> None:
    world.shop.access_scopes = ["read_orders"]
    result = world.run("check", "channel", "shop-a")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "write_orders (write order notes)" in missing
    assert "write_merchant_managed_fulfillment_orders (create fulfillments with tracking)" in missing
    assert "read_orders" not in missing.split("lacks access scope(s)")[1].split("Fix")[0].replace(
        "write_orders", ""
    )


def test_a_write_scope_counts_as_its_read_scope(world: World) -> None:
    world.shop.access_scopes = ["write_orders", "write_third_party_fulfillment_orders"]
    result = world.run("check", "channel", "shop-a")
    assert result.exit_code == 0, result.output


def test_revoked_shopify_token_is_reported(world: World) -> None:
    world.shop.revoke()
    result = world.run("check", "channel", "shop-a")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert (
        "refused the access token (401)" in missing and "Fix: put the app's Admin API access token" in missing
    )


def test_wrong_shopify_address_is_reported(world: World) -> None:
    result = world.run("check", "channel", "shop-a", config=world.config(shop=world.woo_server.base_url))
    assert result.exit_code == 1
    assert "no Shopify Admin API at" in result.output and "(404)" in result.output


def test_missing_shopify_webhook_topic_is_reported(world: World) -> None:
    world.shop.webhook_subscriptions = [
        s for s in world.shop.webhook_subscriptions if s.topic != "ORDERS_CANCELLED"
    ]
    result = world.run("check", "channel", "shop-a")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "no webhook subscription for orders/cancelled" in missing


def test_shopify_webhooks_set_up_outside_the_api_are_a_note_not_a_failure(world: World) -> None:
    world.shop.webhook_subscriptions = []
    result = world.run("check", "channel", "shop-a")
    assert result.exit_code == 0, result.output
    assert any("not visible to this check" in line for line in lines(result, "note"))


def test_webhooks_pointing_elsewhere_do_not_count(world: World) -> None:
    result = world.run("check", "channel", "shop-a", "--public-url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "the bridge does not answer at http://127.0.0.1:9" in result.output


def test_bad_woocommerce_key_is_reported(world: World) -> None:
    result = world.run("check", "channel", "woo-main", WOO_CONSUMER_SECRET="cs_wrong")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "refused the consumer key (401)" in missing and "Read/Write" in missing
    assert "cs_wrong" not in result.output


def test_disabled_woocommerce_webhook_is_reported(world: World) -> None:
    world.woo.webhooks[1].status = "disabled"
    result = world.run("check", "channel", "woo-main")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "webhook order.updated" in missing and "is disabled" in missing and "Active" in missing


def test_woocommerce_without_the_tracking_extension_is_reported(world: World) -> None:
    world.woo.shipment_tracking = False
    result = world.run("check", "channel", "woo-main")
    assert result.exit_code == 1
    (missing,) = lines(result, "missing")
    assert "Shipment Tracking extension does not answer (404)" in missing
    assert "shipment_tracking_extension: false" in missing


def test_unreachable_generic_callback_is_reported(world: World) -> None:
    world.receiver.stop()
    result = world.run("check", "channel", "own-shop")
    assert result.exit_code == 1
    assert "the callback URL does not answer" in result.output


def test_example_default_secrets_are_missing(world: World) -> None:
    config = world.config().replace(
        "${SHOP_A_WEBHOOK_SECRET}", "${SHOP_A_WEBHOOK_SECRET:-demo-shopify-secret}"
    )
    result = world.run("check", "channel", "shop-a", config=config, SHOP_A_WEBHOOK_SECRET=None)
    assert result.exit_code == 1
    assert "Fix: set SHOP_A_WEBHOOK_SECRET to the real value" in result.output


def test_a_broken_channels_file_points_at_check_config(world: World) -> None:
    result = world.run("check", "amazon", config="version: 1\nchannels: []\n")
    assert result.exit_code == 1
    assert "fba-bridge check-config" in result.output and "$BRIDGE_CONFIG_YAML" in result.output
