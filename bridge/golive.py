"""Going-live checks behind `fba-bridge check amazon` and `fba-bridge check channel`.

Each check calls the real API read-only, through the same clients the pipeline uses (the SP-API
client and its Login with Amazon authenticator, the storefront push-back transports), and turns
what it sees into findings: `ok`, `missing` (with the fix) or `note` (something to know that
does not stop the bridge, or that the check cannot see). A finding never holds a secret, a
token or personal data: only ids, hosts, scope names, topics and statuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlsplit

import httpx

from .amazon.auth import LWA_TOKEN_ENDPOINT, LwaAuth
from .amazon.errors import (
    AccessDenied,
    CircuitOpen,
    CredentialsRejected,
    InsecureEndpoint,
    InvalidInput,
    NotFound,
    SpApiError,
    TransportError,
)
from .amazon.limiter import MemoryBuckets
from .amazon.outbound import FulfillmentOutbound, outbound_client
from .amazon.spapi import REGION_HOSTS, RetryPolicy, base_url
from .channels import AmazonAccount, Channel, ChannelsConfig, unsafe_url_reason
from .clock import Clock, SystemClock
from .settings import Settings
from .storefronts.push import PushError, StorefrontHttp, StorefrontRejected
from .storefronts.shopify_check import ShopifyLookups, WebhookSubscription
from .storefronts.woocommerce_push import TRACKING_API, WC_API

OK, MISSING, NOTE = "ok", "missing", "note"

#: Marketplace id -> SP-API region (Amazon's published ids; others are not checked).
MARKETPLACE_REGIONS = {
    "ATVPDKIKX0DER": ("na", "US"),
    "A2EUQ1WTGCTBG2": ("na", "CA"),
    "A1AM78C64UM0Y8": ("na", "MX"),
    "A1F83G8C2ARO7P": ("eu", "UK"),
    "A1PA6795UKMFR9": ("eu", "DE"),
    "A13V1IB3VIYZZH": ("eu", "FR"),
    "APJ6JRA9NG5V4": ("eu", "IT"),
    "A1RKKUPIHCS9HS": ("eu", "ES"),
    "A1VC38T7YXB528": ("fe", "JP"),
    "A39IBJ37TRP1C6": ("fe", "AU"),
}

SELF_AUTHORISE = (
    "re-authorise the app (Seller Central > Partner Network > Develop Apps > Authorize app) and put "
    "the new refresh token in the account's refresh_token"
)
GO_LIVE_AMAZON = (
    "to go live remove embedded_simulator and set client_id, client_secret and refresh_token "
    "(README: Going live > Amazon)"
)
#: Retries are for the pipeline; a check answers within seconds and says what it saw.
CHECK_RETRY = RetryPolicy(
    max_attempts=2, base_delay=0.5, max_delay=1.0, max_retry_after=2.0, max_elapsed=20.0
)

#: Shopify access scopes the push-back needs: (needed scope, scopes that grant it, what for).
#: A write scope also grants read access to the same resource.
SHOPIFY_SCOPES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("read_orders", frozenset({"read_orders", "write_orders"}), "read orders"),
    ("write_orders", frozenset({"write_orders"}), "write order notes"),
    (
        "write_merchant_managed_fulfillment_orders",
        frozenset(
            {
                "write_merchant_managed_fulfillment_orders",
                "write_third_party_fulfillment_orders",
                "write_assigned_fulfillment_orders",
            }
        ),
        "create fulfillments with tracking",
    ),
)
SHOPIFY_TOPICS = ("ORDERS_CREATE", "ORDERS_PAID", "ORDERS_UPDATED", "ORDERS_CANCELLED")
WOOCOMMERCE_TOPICS = ("order.created", "order.updated", "order.deleted")

_ENV_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Finding:
    status: str  # ok | missing | note
    subject: str  # "amazon main", "channel shop-a"
    message: str
    fix: str = ""

    def render(self) -> str:
        text = f"{self.status:<8} {self.subject}: {self.message}"
        label = "Fix" if self.status == MISSING else "Hint"
        return f"{text}. {label}: {self.fix}" if self.fix else text


@dataclass
class Findings:
    items: list[Finding] = field(default_factory=list)

    def add(self, status: str, subject: str, message: str, fix: str = "") -> None:
        self.items.append(Finding(status, subject, message.rstrip("."), fix.rstrip(".")))

    @property
    def passed(self) -> bool:
        return not any(f.status == MISSING for f in self.items)


# --------------------------------------------------------------------------------------------
# Amazon


def check_amazon(
    config: ChannelsConfig,
    settings: Settings,
    account_ids: Sequence[str] = (),
    *,
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Findings:
    """Every named account (default: all): credentials, region, Login with Amazon, one SP-API call."""
    clock = clock or SystemClock()
    out = Findings()
    for account_id in account_ids or list(config.accounts):
        account = config.accounts.get(account_id)
        if account is None:
            known = ", ".join(config.accounts) or "(none)"
            out.add(
                MISSING,
                f"amazon {account_id}",
                "no such account in the channels file",
                f"use one of: {known}",
            )
            continue
        _check_account(account, config, settings, clock, transport, out)
    return out


def _check_account(
    account: AmazonAccount,
    config: ChannelsConfig,
    settings: Settings,
    clock: Clock,
    transport: httpx.BaseTransport | None,
    out: Findings,
) -> None:
    subject = f"amazon {account.id}"
    simulated = account.embedded_simulator
    if simulated:
        if not settings.simulator_url:
            out.add(
                NOTE,
                subject,
                "embedded_simulator: every process runs its own MCF simulator, there is no Amazon to check",
                GO_LIVE_AMAZON,
            )
            return
        url = settings.simulator_url.rstrip("/")
        # The same redirection `amazon.accounts.build_amazon` applies for BRIDGE_SIMULATOR_URL.
        account = replace(account, endpoint=url, token_endpoint=f"{url}/auth/o2/token", local_simulator=True)
        out.add(
            NOTE,
            subject,
            f"talks to the MCF simulator at {_host(url)} (BRIDGE_SIMULATOR_URL), not to Amazon",
            GO_LIVE_AMAZON,
        )
    else:
        for warning in _warnings_for(config, "amazon.accounts", list(config.accounts).index(account.id)):
            _add_warning(out, subject, warning)
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if not getattr(account, k)]
        if missing:
            out.add(
                MISSING,
                subject,
                f"{', '.join(missing)} not set",
                "copy the LWA client id and secret from the app's page in Seller Central (Develop Apps > "
                "View LWA credentials), get the refresh token by self-authorising the app, and set them",
            )
            return
    marketplaces = _account_marketplaces(account, config)
    _check_region(account, marketplaces, subject, out)
    if account.sandbox:
        out.add(
            NOTE,
            subject,
            "sandbox: Amazon answers canned examples and fulfils nothing",
            "set sandbox: false to go live",
        )
    with httpx.Client(transport=transport, follow_redirects=False) as http:
        auth = LwaAuth(account, clock, http)
        if not _check_lwa(auth, account, subject, out):
            return
        try:
            client = outbound_client(
                account, clock, MemoryBuckets(clock), transport, retry=CHECK_RETRY, auth=auth
            )
        except (InsecureEndpoint, ValueError) as exc:
            out.add(MISSING, subject, str(exc), "fix the account's region, endpoint or sandbox setting")
            return
        try:
            _check_spapi(client, account, marketplaces, subject, out)
        finally:
            client.close()


def _account_marketplaces(account: AmazonAccount, config: ChannelsConfig) -> dict[str, list[str]]:
    """Marketplace id -> ids of the enabled channels that ship through this account there."""
    found: dict[str, list[str]] = {}
    for channel in config.channels.values():
        if channel.enabled and channel.account_id == account.id:
            found.setdefault(channel.marketplace_id, []).append(channel.id)
    return found


def _check_region(
    account: AmazonAccount, marketplaces: dict[str, list[str]], subject: str, out: Findings
) -> None:
    for marketplace, channel_ids in sorted(marketplaces.items()):
        region, country = MARKETPLACE_REGIONS.get(marketplace, ("", ""))
        if not region:
            out.add(
                NOTE,
                subject,
                f"marketplace {marketplace} is not in the check's region table; region not checked",
            )
        elif region != account.region:
            out.add(
                MISSING,
                subject,
                f"channel(s) {', '.join(channel_ids)} ship in marketplace {marketplace} ({country}), "
                f"which is served by region {region}, but the account says region {account.region}",
                f"set region: {region} (endpoint https://{REGION_HOSTS[region]})",
            )
        else:
            out.add(OK, subject, f"marketplace {marketplace} ({country}) belongs to region {region}")


def _check_lwa(auth: LwaAuth, account: AmazonAccount, subject: str, out: Findings) -> bool:
    endpoint = _host(account.token_endpoint or LWA_TOKEN_ENDPOINT)
    try:
        auth.access_token()
    except CredentialsRejected as exc:
        out.add(MISSING, subject, *_lwa_rejection(exc))
        return False
    except InsecureEndpoint as exc:
        out.add(MISSING, subject, exc.message, "use the https:// token endpoint, or remove token_endpoint")
        return False
    except TransportError:
        out.add(
            MISSING,
            subject,
            f"could not reach Login with Amazon at {endpoint}",
            "check the network path to it (proxy, firewall) and token_endpoint",
        )
        return False
    except SpApiError as exc:
        out.add(
            MISSING,
            subject,
            f"Login with Amazon at {endpoint} refused the token request: {exc.message}",
            "check client_id, client_secret and refresh_token",
        )
        return False
    out.add(OK, subject, f"Login with Amazon ({endpoint}) issued an access token for the refresh token")
    return True


def _lwa_rejection(exc: CredentialsRejected) -> tuple[str, str]:
    if exc.code == "invalid_client":
        return (
            "Login with Amazon rejected the app's client credentials (invalid_client): the client secret is "
            "wrong or expired (LWA client secrets must be rotated every 180 days)",
            "rotate the secret on the app's page (Develop Apps > View LWA credentials), then set "
            "client_id and client_secret",
        )
    if exc.code == "invalid_grant":
        return (
            "Login with Amazon rejected the refresh token (invalid_grant): the seller revoked the "
            "authorisation, or the token belongs to another app or was copied wrong",
            SELF_AUTHORISE,
        )
    if exc.code == "unauthorized_client":
        return (
            "Login with Amazon says this client may not use the refresh token (unauthorized_client)",
            "use the client id of the SP-API application the seller authorised",
        )
    return (
        f"Login with Amazon refused the credentials ({exc.code})",
        "check client_id, client_secret and refresh_token",
    )


def _check_spapi(
    client: FulfillmentOutbound,
    account: AmazonAccount,
    marketplaces: dict[str, list[str]],
    subject: str,
    out: Findings,
) -> None:
    host = _host(base_url(account))
    if not marketplaces:
        out.add(NOTE, subject, "no enabled channel ships through this account; no SP-API call was made")
        return
    for marketplace in sorted(marketplaces):
        try:
            features = client.features(marketplace)
        except AccessDenied as exc:
            out.add(
                MISSING,
                subject,
                f"the SP-API at {host} denied getFeatures for marketplace {marketplace} ({exc.status} "
                f"{exc.code}): the app lacks the Amazon Fulfillment role, the seller has not authorised "
                "it, or the region is wrong",
                "add the Amazon Fulfillment role to the developer profile and to the app, then "
                + SELF_AUTHORISE,
            )
        except (InvalidInput, NotFound) as exc:
            if account.sandbox:
                out.add(
                    NOTE,
                    subject,
                    f"the sandbox answered getFeatures with {exc.code}: it only answers "
                    "Amazon's canned examples, so the role is proven in production only",
                )
            else:
                out.add(
                    MISSING,
                    subject,
                    f"the SP-API at {host} refused marketplace {marketplace}: {exc.message}",
                    "use the marketplace id of a marketplace the seller sells in (README: Going live)",
                )
        except (TransportError, CircuitOpen):
            out.add(
                MISSING,
                subject,
                f"could not reach the SP-API at {host}",
                "check region, endpoint and the network path",
            )
        except SpApiError as exc:
            out.add(
                MISSING,
                subject,
                f"the SP-API at {host} failed getFeatures: {exc.message}",
                "retry later; if it persists, check Amazon's API status",
            )
        else:
            eligible = sorted(f.feature_name for f in features if f.seller_eligible)
            listed = f"; eligible features: {', '.join(eligible)}" if eligible else ""
            out.add(
                OK,
                subject,
                f"the SP-API at {host} answered getFeatures for marketplace {marketplace} "
                f"(Amazon Fulfillment role granted){listed}",
            )


# --------------------------------------------------------------------------------------------
# Storefronts


def check_channels(
    config: ChannelsConfig,
    channel_ids: Sequence[str] = (),
    *,
    public_url: str | None = None,
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Findings:
    """Every named channel (default: all): secrets, the storefront API read-only, its webhooks."""
    clock = clock or SystemClock()
    out = Findings()
    for channel_id in channel_ids or list(config.channels):
        channel = config.channels.get(channel_id)
        subject = f"channel {channel_id}"
        if channel is None:
            known = ", ".join(config.channels) or "(none)"
            out.add(MISSING, subject, "no such channel in the channels file", f"use one of: {known}")
            continue
        if not channel.enabled:
            out.add(NOTE, subject, "disabled in the channels file; not checked")
            continue
        for warning in _warnings_for(config, "channels", list(config.channels).index(channel.id)):
            _add_warning(out, subject, warning)
        if public_url:
            _check_public_url(channel, public_url, clock, transport, out)
        check = {"shopify": _check_shopify, "woocommerce": _check_woocommerce, "generic": _check_generic}
        check[channel.platform](channel, public_url, clock, transport, out)
    return out


def _check_public_url(
    channel: Channel, public_url: str, clock: Clock, transport: httpx.BaseTransport | None, out: Findings
) -> None:
    subject = f"channel {channel.id}"
    webhook_url = _webhook_url(public_url, channel)
    reason = unsafe_url_reason(public_url, allow_local=channel.storefront.local)
    if reason:
        out.add(
            MISSING,
            subject,
            f"the webhook URL {webhook_url} {reason}",
            "give the bridge's public https address (e.g. https://<app>.herokuapp.com)",
        )
        return
    health = f"{public_url.rstrip('/')}/healthz"
    try:
        with _http(channel, clock, transport) as http:
            http.request("GET", health, idempotent=True)
    except PushError as exc:
        out.add(
            MISSING,
            subject,
            f"the bridge does not answer at {public_url} (GET /healthz: {exc.message})",
            "check the app is running (heroku ps) and the URL",
        )
        return
    out.add(OK, subject, f"the bridge answers at {public_url}; webhook URL: {webhook_url}")


def _check_shopify(
    channel: Channel,
    public_url: str | None,
    clock: Clock,
    transport: httpx.BaseTransport | None,
    out: Findings,
) -> None:
    subject = f"channel {channel.id}"
    _note_local(channel, channel.storefront.base_url, out)
    lookups = ShopifyLookups(channel, clock, transport)
    try:
        try:
            access = lookups.shop_access()
        except PushError as exc:
            out.add(MISSING, subject, *_shopify_failure(channel, exc))
            return
        where = access.domain or _host(channel.storefront.base_url)
        out.add(OK, subject, f"Shopify Admin API {channel.storefront.api_version} answered for {where}")
        missing = [(need, why) for need, grants, why in SHOPIFY_SCOPES if not grants & access.scopes]
        if missing:
            names = ", ".join(f"{need} ({why})" for need, why in missing)
            out.add(
                MISSING,
                subject,
                f"the app lacks access scope(s) {names}",
                "add them to the app's Admin API scopes, release or save, and install or update the app "
                "on the store",
            )
        else:
            out.add(OK, subject, "access scopes cover orders, order notes and fulfillment orders")
        try:
            subscriptions = lookups.webhook_subscriptions()
        except PushError as exc:
            out.add(
                NOTE,
                subject,
                f"cannot list the app's webhook subscriptions ({exc.code})",
                "check them in the app's configuration or the store admin",
            )
            return
        _check_shopify_webhooks(channel, public_url, subscriptions, out)
    finally:
        lookups.close()


def _shopify_failure(channel: Channel, exc: PushError) -> tuple[str, str]:
    endpoint = f"{channel.storefront.base_url}/admin/api/{channel.storefront.api_version}/graphql.json"
    if isinstance(exc, StorefrontRejected) and exc.status == 401:
        return (
            "Shopify refused the access token (401): it is wrong, the app was uninstalled, or it has "
            "expired (client-credentials tokens expire after about 24 hours)",
            "put the app's Admin API access token in storefront.access_token (README: Going live > Shopify)",
        )
    if isinstance(exc, StorefrontRejected):
        return (
            f"Shopify denied the app ({exc.status or exc.code})",
            "grant the app the scopes listed in the README",
        )
    if exc.status == 404:
        return (
            f"no Shopify Admin API at {endpoint} (404)",
            "set storefront.base_url to https://<shop>.myshopify.com and api_version to a supported version",
        )
    if exc.code == "redirect":
        return (exc.message, "set storefront.base_url to https://<shop>.myshopify.com")
    return (
        f"Shopify Admin API at {_host(endpoint)}: {exc.message}",
        "check storefront.base_url and the network path",
    )


def _check_shopify_webhooks(
    channel: Channel, public_url: str | None, subscriptions: list[WebhookSubscription], out: Findings
) -> None:
    subject = f"channel {channel.id}"
    ours = [s for s in subscriptions if _is_our_url(s.uri, channel, public_url)]
    where = _webhook_url(public_url, channel) if public_url else f".../webhooks/{channel.id}"
    if not ours:
        out.add(
            NOTE,
            subject,
            f"no webhook subscription made through the API points at {where}; subscriptions made in the "
            "store admin or in the app's shopify.app.toml are not visible to this check",
            f"make sure {', '.join(_shopify_topic(t) for t in SHOPIFY_TOPICS)} are subscribed to {where}",
        )
        return
    have = {s.topic for s in ours}
    lacking = [t for t in SHOPIFY_TOPICS if t not in have]
    if lacking:
        out.add(
            MISSING,
            subject,
            f"no webhook subscription for {', '.join(_shopify_topic(t) for t in lacking)}",
            f"subscribe the topic(s) to {where}, format JSON",
        )
    else:
        out.add(
            OK,
            subject,
            f"webhook subscriptions for {', '.join(map(_shopify_topic, SHOPIFY_TOPICS))} point at {where}",
        )


def _check_woocommerce(
    channel: Channel,
    public_url: str | None,
    clock: Clock,
    transport: httpx.BaseTransport | None,
    out: Findings,
) -> None:
    subject = f"channel {channel.id}"
    sf = channel.storefront
    _note_local(channel, sf.base_url, out)
    auth = httpx.BasicAuth(sf.consumer_key.reveal(), sf.consumer_secret.reveal())
    base = sf.base_url.rstrip("/")
    with _http(channel, clock, transport) as http:
        try:
            response = http.request(
                "GET",
                f"{base}{WC_API}/orders",
                idempotent=True,
                auth=auth,
                params={"per_page": 1, "_fields": "id"},
            )
        except PushError as exc:
            out.add(MISSING, subject, *_woocommerce_failure(base, exc))
            return
        out.add(
            OK,
            subject,
            f"WooCommerce REST API v3 at {_host(base)} accepted the consumer key (orders readable)",
        )
        out.add(
            NOTE,
            subject,
            "write permission cannot be checked without writing",
            "make sure the key's permissions are Read/Write (WooCommerce > Settings > Advanced > REST API)",
        )
        order_id = _first_id(response)
        _check_woocommerce_webhooks(channel, http, base, auth, public_url, out)
        if sf.shipment_tracking_extension:
            _check_tracking_extension(channel, http, base, auth, order_id, out)
        else:
            out.add(
                NOTE, subject, "shipment_tracking_extension is off: tracking goes into an order note only"
            )


def _woocommerce_failure(base: str, exc: PushError) -> tuple[str, str]:
    if isinstance(exc, StorefrontRejected):
        return (
            f"WooCommerce refused the consumer key ({exc.status}): it is wrong or was revoked, or the web "
            "server drops the Authorization header",
            "create a REST API key with Read/Write permissions and set consumer_key and consumer_secret",
        )
    if exc.status == 404:
        return (
            f"no WooCommerce REST API v3 at {base}{WC_API} (404)",
            "set storefront.base_url to the shop's address and enable pretty permalinks so /wp-json/ answers",
        )
    return (f"WooCommerce at {_host(base)}: {exc.message}", "check storefront.base_url and the network path")


def _check_woocommerce_webhooks(
    channel: Channel, http: StorefrontHttp, base: str, auth: httpx.Auth, public_url: str | None, out: Findings
) -> None:
    subject = f"channel {channel.id}"
    where = _webhook_url(public_url, channel) if public_url else f".../webhooks/{channel.id}"
    try:
        response = http.request(
            "GET", f"{base}{WC_API}/webhooks", idempotent=True, auth=auth, params={"per_page": 100}
        )
        data = response.json()
    except (PushError, ValueError) as exc:
        code = exc.code if isinstance(exc, PushError) else "not JSON"
        out.add(
            NOTE,
            subject,
            f"cannot list the store's webhooks ({code}); the key may belong to a user "
            "who cannot manage WooCommerce",
            f"check WooCommerce > Settings > Advanced > Webhooks for {where}",
        )
        return
    hooks = [h for h in data if isinstance(h, dict)] if isinstance(data, list) else []
    ours = [h for h in hooks if _is_our_url(str(h.get("delivery_url") or ""), channel, public_url)]
    for topic in WOOCOMMERCE_TOPICS:
        found = [h for h in ours if h.get("topic") == topic]
        active = [h for h in found if h.get("status") == "active"]
        if active:
            out.add(OK, subject, f"webhook {topic} is active and delivers to {where}")
        elif found:
            status = str(found[0].get("status"))
            out.add(
                MISSING,
                subject,
                f"webhook {topic} to {where} is {status} (WooCommerce disables a webhook "
                "after 5 failed deliveries in a row)",
                "set its status to Active again",
            )
        else:
            out.add(
                MISSING,
                subject,
                f"no webhook {topic} delivers to {where}",
                "add it under WooCommerce > Settings > Advanced > Webhooks (API version WP REST API v3) "
                "with the channel's webhook secret",
            )


def _check_tracking_extension(
    channel: Channel, http: StorefrontHttp, base: str, auth: httpx.Auth, order_id: str | None, out: Findings
) -> None:
    subject = f"channel {channel.id}"
    path = (
        f"{TRACKING_API}/orders/{quote(order_id, safe='')}/shipment-trackings"
        if order_id
        else f"{TRACKING_API}/shipment-trackings/providers"
    )
    try:
        http.request("GET", f"{base}{path}", idempotent=True, auth=auth)
    except PushError as exc:
        if exc.status == 404:
            out.add(
                MISSING,
                subject,
                "the Shipment Tracking extension does not answer (404)",
                "install and activate it, or set storefront.shipment_tracking_extension: false",
            )
        else:
            out.add(
                MISSING,
                subject,
                f"the Shipment Tracking extension failed: {exc.message}",
                "check the extension is active",
            )
        return
    out.add(OK, subject, "the Shipment Tracking extension answers")


def _check_generic(
    channel: Channel,
    public_url: str | None,
    clock: Clock,
    transport: httpx.BaseTransport | None,
    out: Findings,
) -> None:
    subject = f"channel {channel.id}"
    url = channel.storefront.callback_url
    _note_local(channel, url, out)
    try:
        with _http(channel, clock, transport) as http:
            http.request("GET", url, idempotent=True)
    except PushError as exc:
        if exc.status is None:
            out.add(
                MISSING,
                subject,
                f"the callback URL does not answer: {exc.message}",
                "check storefront.callback_url and that the receiver is running",
            )
            return
        answered = exc.status
    else:
        answered = 200
    out.add(
        OK,
        subject,
        f"the callback URL at {_host(url)} answers (GET: HTTP {answered}); callbacks are POSTed "
        "and signed with callback_secret",
    )


# --------------------------------------------------------------------------------------------
# Helpers


def _http(channel: Channel, clock: Clock, transport: httpx.BaseTransport | None) -> closing[StorefrontHttp]:
    """The push-back's storefront transport for one channel, closed on exit."""
    return closing(StorefrontHttp(channel, clock, transport))


def _note_local(channel: Channel, url: str, out: Findings) -> None:
    if channel.storefront.local:
        out.add(
            NOTE,
            f"channel {channel.id}",
            f"local: true: {url} is treated as a test server",
            "a live shop needs its public https address and no `local`",
        )


def _webhook_url(public_url: str | None, channel: Channel) -> str:
    return f"{(public_url or '').rstrip('/')}/webhooks/{channel.id}"


def _is_our_url(uri: str, channel: Channel, public_url: str | None) -> bool:
    if public_url:
        return uri.rstrip("/") == _webhook_url(public_url, channel)
    return urlsplit(uri).path.rstrip("/").endswith(f"/webhooks/{channel.id}")


def _shopify_topic(topic: str) -> str:
    """ORDERS_CREATE -> orders/create (how the admin and the README name it)."""
    resource, _, event = topic.lower().partition("_")
    return f"{resource}/{event}"


def _first_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("id") is not None:
        return str(data[0]["id"])
    return None


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


def _warnings_for(config: ChannelsConfig, prefix: str, index: int) -> Iterable[str]:
    """The channels file's example-default warnings about one account or channel."""
    head = f"{prefix}[{index}]"
    for warning in config.warnings:
        if warning.startswith((head + ".", head + " ")):
            yield warning


def _add_warning(out: Findings, subject: str, warning: str) -> None:
    """An example default still in place blocks going live; other warnings of the channels file
    (e.g. Shopify locations not named) are worth reading but the bridge works without acting."""
    if _ENV_NAME.search(warning):
        out.add(MISSING, subject, warning, _set_variable_fix(warning))
    else:
        out.add(NOTE, subject, warning, "see the channels-file table in the README")


def _set_variable_fix(warning: str) -> str:
    match = _ENV_NAME.search(warning)
    return f"set {match.group(1)} to the real value" if match else "replace the example default"
