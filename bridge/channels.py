"""The channels file: load, interpolate `${ENV}`, validate, and turn into typed objects.

This is the only place that reads the YAML. A bad file yields a `ConfigError` listing every
problem with its line, its path in the document and what to write instead, so `bridge
check-config` and start-up can refuse to run rather than half-start.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import ValidationError

from .orders import IntakePolicy, PaymentState
from .schemas import validator
from .settings import Secret, Settings

Path_ = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = {
    "webhook_secrets",
    "access_token",
    "consumer_key",
    "consumer_secret",
    "callback_secret",
    "client_id",
    "client_secret",
    "refresh_token",
}


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    fix: str = ""
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        text = f"{where}: {self.path or '(top level)'}: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


class ConfigError(ValueError):
    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class AmazonAccount:
    id: str
    region: str
    sandbox: bool = False
    endpoint: str | None = None
    token_endpoint: str | None = None
    local_simulator: bool = False
    embedded_simulator: bool = False
    seller_id: str = ""
    client_id: Secret = field(default_factory=lambda: Secret(""))
    client_secret: Secret = field(default_factory=lambda: Secret(""))
    refresh_token: Secret = field(default_factory=lambda: Secret(""))
    #: An order at Amazon Received/Planning longer than this raises a stuck-order alert.
    stuck_received_h: float = 24.0
    #: An order Processing this long past Amazon's estimated ship date raises one too.
    stuck_processing_grace_h: float = 12.0


@dataclass(frozen=True)
class StorefrontConfig:
    base_url: str = ""
    local: bool = False
    api_version: str = "2026-07"
    access_token: Secret = field(default_factory=lambda: Secret(""))
    consumer_key: Secret = field(default_factory=lambda: Secret(""))
    consumer_secret: Secret = field(default_factory=lambda: Secret(""))
    callback_url: str = ""
    callback_secret: Secret = field(default_factory=lambda: Secret(""))
    shipment_tracking_extension: bool = False
    notify_customer: bool = True


SHOPIFY_MERCHANT_MANAGED = "merchant_managed"
SHOPIFY_FULFILLMENT_SERVICE = "fulfillment_service"
DEFAULT_SERVICE_NAME = "Amazon MCF (fba-bridge)"
SHOPIFY_LOCATION_GID = re.compile(r"^gid://shopify/Location/[0-9]+$")


@dataclass(frozen=True)
class ShopifyOptions:
    """How a Shopify channel hands work to Amazon (see the README, "Shopify: two ways to connect").

    `merchant_managed`: order webhooks, and only the fulfillment orders assigned to `locations`
    (gids or names) are Amazon's; with no `locations` the whole order is (and a warning says so).
    `fulfillment_service`: the bridge is a fulfillment service registered with `callback_url`
    (the bridge's public base URL); fulfillment requests are the trigger.
    """

    mode: str = SHOPIFY_MERCHANT_MANAGED
    locations: tuple[str, ...] = ()
    callback_url: str = ""
    service_name: str = DEFAULT_SERVICE_NAME

    @property
    def fulfillment_service(self) -> bool:
        return self.mode == SHOPIFY_FULFILLMENT_SERVICE

    @property
    def restricted(self) -> bool:
        """True when only part of an order may be Amazon's (locations named, or a service)."""
        return self.fulfillment_service or bool(self.locations)


@dataclass(frozen=True)
class StockBuffer:
    """Units a channel holds back from what Amazon can ship: a fixed number, or a share (rounded up)."""

    units: int = 0
    percent: Decimal = Decimal(0)

    @classmethod
    def parse(cls, value: int | str) -> StockBuffer:
        if isinstance(value, str) and value.endswith("%"):
            return cls(percent=Decimal(value[:-1]))
        return cls(units=int(value))

    def __str__(self) -> str:
        return f"{self.percent.normalize():f}%" if self.percent else str(self.units)


@dataclass(frozen=True)
class InventoryConfig:
    """`inventory:` of a channel: push Amazon's sellable stock to the storefront (off by default)."""

    sync: bool = False
    buffer: StockBuffer = field(default_factory=StockBuffer)
    sku_buffers: Mapping[str, StockBuffer] = field(default_factory=dict)
    interval_s: float = 300.0
    full_sweep_h: float = 24.0
    location: str = ""  # Shopify: the location (gid) whose `available` quantity the bridge sets

    def buffer_for(self, storefront_sku: str) -> StockBuffer:
        return self.sku_buffers.get(storefront_sku, self.buffer)


#: The MCF features a channel or an order may ask for (Amazon's `featureConstraints` names).
MCF_FEATURES: tuple[str, ...] = ("BLOCK_AMZL", "BLANK_BOX")
#: Storefront order tag -> the feature it asks for (the tags Amazon's own Shopify app reads).
FEATURE_TAGS: Mapping[str, str] = {f"MCF_{name}": name for name in MCF_FEATURES}


@dataclass(frozen=True)
class FeatureOptions:
    """`mcf_features`: what every order of the channel asks Amazon for (`always`), whether order
    tags such as `MCF_BLOCK_AMZL` add a feature per order, and whether SKU eligibility is checked
    before the preview (`check_eligibility`; parked with the reason when a SKU is not eligible)."""

    always: tuple[str, ...] = ()
    from_tags: bool = True
    check_eligibility: bool = True


@dataclass(frozen=True)
class FallbackOptions:
    """`fallback`: what happens when Amazon cannot fulfil an order (or part of it).

    `none` (the default) parks it for an operator; `notify` also tells the storefront (an order
    note, a callback); `release` hands what Amazon will not ship back to the storefront so another
    warehouse ships it (Shopify: `fulfillmentOrderMove` to `location`)."""

    action: str = "none"
    location: str = ""


APPROVAL_AUTO, APPROVAL_MANUAL, APPROVAL_RULES = "auto", "manual", "rules"
DEFAULT_RISK_HOLDS = frozenset({"CANCEL", "INVESTIGATE"})


@dataclass(frozen=True)
class MetaHold:
    """Hold when the order's attribute `key` (case ignored) has one of `values` (case ignored),
    or, with no `values`, any non-empty value."""

    key: str
    values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HoldRules:
    """`holds:` of a channel: what makes an order wait for an operator's approval.

    `tags` apply in every approval mode (a per-order instruction from the merchant); the other
    rules apply with `approval: rules`. `risk` (Shopify's `Order.risk.recommendation` values)
    defaults to CANCEL and INVESTIGATE on a Shopify channel with `approval: rules`."""

    above: Money | None = None
    countries: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset({"fba-hold"})
    risk: frozenset[str] = frozenset()
    meta: tuple[MetaHold, ...] = ()


@dataclass(frozen=True)
class ReconcileConfig:
    """`reconcile:` of a channel: read the storefront's changed orders periodically, so a missed
    webhook is found (`pipeline/reconcile.py`). On by default where the platform has an order API."""

    enabled: bool = False
    interval_s: float = 600.0
    overlap_s: float = 300.0
    first_lookback_h: float = 1.0


#: Platforms with an order listing the reconciliation pass can read.
RECONCILABLE_PLATFORMS = frozenset({"shopify", "woocommerce"})


@dataclass(frozen=True)
class Channel:
    id: str
    platform: str
    webhook_secrets: tuple[Secret, ...]
    account_id: str
    marketplace_id: str
    sku_map: Mapping[str, str]
    unmapped_policy: str = "hold"
    shipping_map: Mapping[str, str] = field(default_factory=dict)
    default_shipping_speed: str = "Standard"
    countries: frozenset[str] | None = None
    fulfillment_policy: str = "FillOrKill"
    fee_cap: Money | None = None
    fee_unknown: str = "hold"  # fee_cap.when_unknown: the preview carries no fee estimate
    approval: str = APPROVAL_AUTO
    holds: HoldRules = field(default_factory=HoldRules)
    skip_tags: frozenset[str] = frozenset({"fba-skip"})
    sku_match: str = "map"  # "exact": a storefront SKU not in skus.map is sent as it is
    declared_value_rates: Mapping[str, Decimal] = field(default_factory=dict)  # currency -> rate
    packing_slip_comment: str = ""
    notification_emails: tuple[str, ...] = ()
    ship_on: frozenset[PaymentState] = frozenset({PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED})
    unpaid_policy: str = "wait"
    enabled: bool = True
    storefront: StorefrontConfig = field(default_factory=StorefrontConfig)
    shopify: ShopifyOptions = field(default_factory=ShopifyOptions)
    test_orders: str = "skip"  # "skip": a storefront test order never reaches Amazon; "ship": it does
    shipping_address_fallback: str = "none"  # "billing": ship to the billing address when none is given
    postal_code_fallback: Mapping[str, str] = field(default_factory=dict)  # country -> placeholder
    carrier_names: Mapping[str, str] = field(default_factory=dict)  # Amazon carrier code -> shown name
    inventory: InventoryConfig = field(default_factory=InventoryConfig)
    features: FeatureOptions = field(default_factory=FeatureOptions)
    fallback: FallbackOptions = field(default_factory=FallbackOptions)
    # Orders beyond Amazon's limits (100 items, 250 units) become several MCF orders, not parked.
    split_large_orders: bool = False
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)

    def intake_policy(self) -> IntakePolicy:
        return IntakePolicy(
            ship_on=self.ship_on, submit_unpaid_on_hold=self.unpaid_policy == "hold_at_amazon"
        )

    def amazon_sku(self, storefront_sku: str) -> str | None:
        """`skus.map` first; with `skus.match: exact` an unlisted SKU is sent as it is (Amazon
        seller SKUs are at most 50 characters, so a longer one stays unmapped)."""
        if not storefront_sku:
            return None
        sku = storefront_sku.strip()
        mapped = self.sku_map.get(sku)
        if mapped is None and self.sku_match == "exact" and 0 < len(sku) <= 50:
            return sku
        return mapped

    def sku_by_identity(self, storefront_sku: str) -> bool:
        """True when the SKU reaches Amazon only through `skus.match: exact` (not listed)."""
        return self.sku_match == "exact" and storefront_sku.strip() not in self.sku_map

    @property
    def uses_risk(self) -> bool:
        """Whether planning needs the storefront's risk assessment (a GraphQL read per order)."""
        return self.approval == APPROVAL_RULES and bool(self.holds.risk)

    def shipping_speed(self, method: str, code: str = "") -> str:
        """Map a storefront shipping title, or else its code (case and spacing ignored), to an MCF
        speed; neither listed in `shipping.map`: the channel's default."""
        for key in (method, code):
            speed = self.shipping_map.get(_norm_method(key)) if key else None
            if speed is not None:
                return speed
        return self.default_shipping_speed


@dataclass(frozen=True)
class ChannelsConfig:
    channels: Mapping[str, Channel]
    accounts: Mapping[str, AmazonAccount]
    source: str = ""
    warnings: tuple[str, ...] = ()

    def channel(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)


def _norm_method(method: str) -> str:
    return " ".join(method.lower().split())


def _render_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --------------------------------------------------------------------------------------------
# YAML 1.2 with line numbers


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's plain scalars.

    PyYAML follows YAML 1.1, where `NO` (Norway), `yes`, `on` and `off` are booleans, `1:30` is a
    number in base 60, `010` is octal and `2026-01-01` a date. In YAML 1.2 only `true`/`false`
    are booleans, and everything else above stays text, which is what the file's author meant."""


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    value = str(loader.construct_scalar(node))
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)  # 010 is ten in YAML 1.2, not eight


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _Doc:
    """The parsed YAML plus the line of every node, keyed by its path."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}
        self.problems: list[ConfigProblem] = []

    def line_of(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = _LOADER.construct_scalar(key_node)  # type: ignore[arg-type]
                key = str(key)
                if key in out:
                    self.problems.append(
                        ConfigProblem(
                            _render_path((*path, key)),
                            f"key {key!r} appears twice",
                            "keep one of the two entries",
                            key_node.start_mark.line + 1,
                        )
                    )
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return _LOADER.construct_object(node, deep=True)


_LOADER = _Yaml12Loader("")


def _interpolate(value: Any, path: Path_, doc: _Doc, env: Mapping[str, str], defaulted: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), doc, env, defaulted) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), doc, env, defaulted) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            if any(part in _SECRET_KEYS for part in path if isinstance(part, str)):
                defaulted.add(
                    f"{_render_path(path)} uses the example default for ${{{name}}}; set the variable "
                    "before going live"
                )
            return default
        doc.problems.append(
            ConfigProblem(
                _render_path(path),
                f"environment variable {name} is not set",
                f"export {name}=..., or write ${{{name}:-value}} to give a default",
                doc.line_of(path),
            )
        )
        return ""

    return _ENV_REF.sub(substitute, value)


# --------------------------------------------------------------------------------------------
# Schema errors -> problems with fixes


def _fix_for(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return f"add `{missing[0]}`" if missing else "add the missing field"
    if kind == "additionalProperties":
        allowed = sorted((schema.get("properties") or {}).keys())
        return "remove it or fix its spelling" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if kind == "enum":
        return "use one of: " + ", ".join(str(v) for v in error.validator_value)
    if kind == "const":
        return f"write {error.validator_value!r}"
    if kind == "type":
        expected = error.validator_value
        if expected == "boolean":
            return "write true or false (yes, no, on and off are text in YAML 1.2)"
        if expected == "string" and not isinstance(error.instance, dict | list):
            return "put the value in quotes to write it as text"
        return f"write a value of type {expected}"
    if kind in ("pattern", "format"):
        return (
            f"write {schema['description']}" if "description" in schema else f"match {error.validator_value}"
        )
    if kind == "minLength":
        n = error.validator_value
        return "write a value" if n == 1 else f"write at least {n} characters"
    if kind == "minItems":
        n = error.validator_value
        return "it must not be empty" if n == 1 else f"list at least {n} entries"
    if kind in ("maxItems", "maxLength"):
        return f"shorten it to at most {error.validator_value}"
    if kind == "uniqueItems":
        return "remove the repeated entries"
    return str(schema.get("description", ""))


def _secret_message(error: ValidationError) -> str:
    """What is wrong with a secret, without quoting it (jsonschema's messages include the value)."""
    if error.validator == "minLength":
        return f"must be at least {error.validator_value} characters"
    if error.validator == "type":
        return f"not a {error.validator_value}"
    return f"invalid value ({error.validator} rule)"


def _secret(value: Any) -> Secret:
    return Secret(str(value)) if value else Secret("")


def _semantic_checks(raw: dict[str, Any], doc: _Doc) -> None:
    def problem(path: Path_, message: str, fix: str) -> None:
        doc.problems.append(ConfigProblem(_render_path(path), message, fix, doc.line_of(path)))

    accounts = {a["id"] for a in raw.get("amazon", {}).get("accounts", [])}
    seen: dict[str, int] = {}
    for i, ch in enumerate(raw.get("channels", [])):
        cid = ch.get("id")
        if cid in seen:
            problem(
                ("channels", i, "id"), f"channel id {cid!r} is used twice", "give every channel its own id"
            )
        seen[cid] = i
        account = ch.get("amazon", {}).get("account")
        if account is None and len(accounts) != 1:
            problem(
                ("channels", i, "amazon"),
                "no Amazon account named",
                "add `account: <id>` naming one of amazon.accounts" if accounts else "add amazon.accounts",
            )
        elif account is not None and account not in accounts:
            problem(
                ("channels", i, "amazon", "account"),
                f"unknown Amazon account {account!r}",
                "use an id listed under amazon.accounts: " + (", ".join(sorted(accounts)) or "(none)"),
            )
        _check_storefront(ch, ("channels", i), problem)
        _check_shopify(ch, ("channels", i), problem)
        _check_inventory(ch, ("channels", i), problem)
        _check_fallback(ch, ("channels", i), problem)
        _check_policies(ch, ("channels", i), problem)
        if ch.get("platform") not in RECONCILABLE_PLATFORMS and (ch.get("reconcile") or {}).get("enabled"):
            problem(
                ("channels", i, "reconcile", "enabled"),
                f"the {ch.get('platform')} platform has no order API to reconcile from",
                "remove `reconcile` (the sender must retry failed deliveries; see the README)",
            )
        if ch.get("platform") == "generic":
            for j, secret in enumerate(ch.get("webhook_secrets", [])):
                if not _is_standard_webhooks_secret(secret):
                    problem(
                        ("channels", i, "webhook_secrets", j),
                        "not a Standard Webhooks secret",
                        "write whsec_ followed by base64 of at least 24 random bytes",
                    )


def _check_fallback(ch: dict[str, Any], path: Path_, problem: Any) -> None:
    if ch.get("fallback") != "release" or ch.get("platform") != "shopify":
        return
    if not ch.get("fallback_location"):
        problem(
            (*path, "fallback"),
            "fallback: release needs the Shopify location that ships what Amazon cannot",
            "add fallback_location: gid://shopify/Location/<id> (Settings > Locations in Shopify), "
            "or use fallback: notify",
        )


def _check_storefront(ch: dict[str, Any], path: Path_, problem: Any) -> None:
    sf = ch.get("storefront", {})
    needed = {
        "shopify": ("base_url", "access_token"),
        "woocommerce": ("base_url", "consumer_key", "consumer_secret"),
        "generic": ("callback_url",),
    }.get(ch.get("platform", ""), ())
    for key in needed:
        if not sf.get(key):
            problem(
                (*path, "storefront"),
                f"storefront.{key} is missing (needed to push shipments back)",
                f"add storefront.{key}",
            )
    for key in ("base_url", "callback_url"):
        url = sf.get(key)
        if url:
            reason = unsafe_url_reason(url, allow_local=bool(sf.get("local")))
            if reason:
                problem(
                    (*path, "storefront", key),
                    reason,
                    "use the shop's public https:// address (set `local: true` only for test servers)",
                )


def _check_shopify(ch: dict[str, Any], path: Path_, problem: Any) -> None:
    options = ch.get("shopify")
    if options is None:
        return
    if ch.get("platform") != "shopify":
        problem((*path, "shopify"), "shopify options on a non-Shopify channel", "remove the `shopify` block")
        return
    if options.get("mode") == SHOPIFY_FULFILLMENT_SERVICE:
        if not options.get("callback_url"):
            problem(
                (*path, "shopify"),
                "fulfillment_service mode needs the bridge's public base URL",
                "add shopify.callback_url: https://<your-bridge-host>",
            )
        if options.get("locations"):
            problem(
                (*path, "shopify", "locations"),
                "a fulfillment service has exactly one location, the one Shopify creates for it",
                "remove shopify.locations (or use mode: merchant_managed)",
            )
    elif options.get("callback_url"):
        problem(
            (*path, "shopify", "callback_url"),
            "callback_url is only used in fulfillment_service mode",
            "remove it, or set mode: fulfillment_service",
        )
    url = options.get("callback_url")
    if url:
        reason = unsafe_url_reason(url, allow_local=bool(ch.get("storefront", {}).get("local")))
        if reason:
            problem(
                (*path, "shopify", "callback_url"),
                reason,
                "use the bridge's public https:// address (Shopify must reach it)",
            )


def _shopify_warnings(raw: dict[str, Any]) -> list[str]:
    out = []
    for i, ch in enumerate(raw.get("channels", [])):
        options = ch.get("shopify") or {}
        if ch.get("platform") == "shopify" and ch.get("enabled", True) and not options.get("locations"):
            if options.get("mode", SHOPIFY_MERCHANT_MANAGED) == SHOPIFY_MERCHANT_MANAGED:
                out.append(
                    f"channels[{i}] ({ch.get('id')}): shopify.locations is not set, so every line of every "
                    "order goes to Amazon, including lines Shopify assigned to another location; name "
                    "the location(s) whose stock is at Amazon"
                )
    return out


def _check_inventory(ch: dict[str, Any], path: Path_, problem: Any) -> None:
    inventory = ch.get("inventory") or {}
    mapped = set((ch.get("skus") or {}).get("map") or {})
    for sku in inventory.get("sku_buffers") or {}:
        if sku.strip() not in {m.strip() for m in mapped}:
            problem(
                (*path, "inventory", "sku_buffers", sku),
                f"{sku!r} is not a storefront SKU of skus.map",
                "name a storefront SKU listed under skus.map, or remove the entry",
            )
    if (
        inventory.get("sync")
        and ch.get("platform") == "shopify"
        and not inventory.get("location")
        and not _first_location_gid(ch)
    ):
        problem(
            (*path, "inventory"),
            "inventory sync on Shopify needs the location whose stock the bridge sets",
            "add `location: gid://shopify/Location/<id>` (the location Amazon fulfils from), or name "
            "that location by its gid first in shopify.locations",
        )


def _check_policies(ch: dict[str, Any], path: Path_, problem: Any) -> None:
    """Policy keys that the schema accepts but that would silently do nothing."""
    holds = ch.get("holds") or {}
    approval = ch.get("approval", APPROVAL_AUTO)
    unused = sorted(k for k in holds if k != "tags")
    if unused and approval != APPROVAL_RULES:
        problem(
            (*path, "holds"),
            f"holds.{', holds.'.join(unused)} only apply with approval: rules (approval is {approval})",
            "set approval: rules, or remove those rules",
        )
    if holds.get("risk") and ch.get("platform") != "shopify":
        problem(
            (*path, "holds", "risk"),
            "risk holds read Shopify's order risk; this channel is not a Shopify channel",
            "remove holds.risk, or hold on a meta key your risk plugin writes (holds.meta)",
        )
    skus = ch.get("skus") or {}
    if skus.get("match", "map") == "map" and "map" not in skus:
        problem(
            (*path, "skus"),
            "skus.map is missing",
            "add skus.map (storefront SKU -> Amazon seller SKU), or set skus.match: exact when the "
            "storefront's SKUs are the Amazon seller SKUs",
        )
    rates = (ch.get("declared_value") or {}).get("rates") or {}
    for currency, rate in rates.items():
        try:
            ok = Decimal(str(rate)) > 0
        except ArithmeticError:
            ok = False
        if not ok:
            problem(
                (*path, "declared_value", "rates", currency),
                f"rate {rate!r} is not a positive number",
                "write how much of the marketplace currency one unit of the order currency is worth, "
                'such as "1.08"',
            )


def _first_location_gid(ch: dict[str, Any]) -> str:
    """The first of `shopify.locations` when it is a gid: the default inventory location."""
    locations = (ch.get("shopify") or {}).get("locations") or []
    first = str(locations[0]) if locations else ""
    return first if first.startswith("gid://shopify/Location/") else ""


def unsafe_url_reason(url: str, *, allow_local: bool) -> str | None:
    """Why an outbound storefront URL must not be used, or None if it is acceptable."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allow_local:
        return None if parts.scheme in ("http", "https") and host else "not an http(s) URL"
    if parts.scheme != "https":
        return "must use https"
    if parts.username or parts.password:
        return "must not carry credentials in the URL"
    if host in ("localhost",) or host.endswith((".local", ".internal", ".localhost")):
        return "points at a local or internal host"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not ip.is_global:
        return "points at a private, loopback, link-local or metadata address"
    return None


def _is_standard_webhooks_secret(secret: str) -> bool:
    body = secret.removeprefix("whsec_")
    try:
        return len(base64.b64decode(body + "==", validate=False)) >= 24 and secret.startswith("whsec_")
    except (binascii.Error, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# Public entry points


def parse_channels(
    text: str, source: str = "<channels>", env: Mapping[str, str] | None = None
) -> ChannelsConfig:
    env = os.environ if env is None else env
    doc = _Doc()
    try:
        node = yaml.compose(text, Loader=_Yaml12Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "", f"YAML syntax error: {reason}", "fix the indentation or quoting on that line", line
                )
            ],
        ) from None
    if node is None:
        raise ConfigError(source, [ConfigProblem("", "the file is empty", "start from config/channels.yaml")])
    raw = doc.build(node, ())
    defaulted: set[str] = set()
    raw = _interpolate(raw, (), doc, env, defaulted)
    if not isinstance(raw, dict):
        raise ConfigError(
            source, [ConfigProblem("", "the top level must be a mapping", "start with `version: 1`", 1)]
        )
    reported = {p.path for p in doc.problems}
    for error in sorted(
        validator("channels").iter_errors(raw), key=lambda e: list(map(str, e.absolute_path))
    ):
        path = tuple(error.absolute_path)
        if _render_path(path) in reported:
            continue  # already explained by a missing environment variable
        message = error.message
        if any(part in _SECRET_KEYS for part in path if isinstance(part, str)):
            message = _secret_message(error)
        doc.problems.append(ConfigProblem(_render_path(path), message, _fix_for(error), doc.line_of(path)))
    if not doc.problems:
        _semantic_checks(raw, doc)
    if doc.problems:
        raise ConfigError(source, doc.problems)
    return _build(raw, source, tuple(sorted(defaulted)) + tuple(_shopify_warnings(raw)))


def _build(raw: dict[str, Any], source: str, warnings: tuple[str, ...]) -> ChannelsConfig:
    accounts = {}
    for a in raw.get("amazon", {}).get("accounts", []):
        accounts[a["id"]] = AmazonAccount(
            id=a["id"],
            region=a["region"],
            sandbox=a.get("sandbox", False),
            endpoint=a.get("endpoint"),
            token_endpoint=a.get("token_endpoint"),
            local_simulator=a.get("local_simulator", False),
            embedded_simulator=a.get("embedded_simulator", False),
            seller_id=a.get("seller_id", ""),
            client_id=_secret(a.get("client_id")),
            client_secret=_secret(a.get("client_secret")),
            refresh_token=_secret(a.get("refresh_token")),
            stuck_received_h=float((a.get("stuck") or {}).get("received_h", 24)),
            stuck_processing_grace_h=float((a.get("stuck") or {}).get("processing_grace_h", 12)),
        )
    only_account = next(iter(accounts)) if len(accounts) == 1 else ""
    channels = {}
    for ch in raw["channels"]:
        sf = ch.get("storefront", {})
        shipping = ch.get("shipping", {})
        payment = ch.get("payment", {})
        fee_cap = ch.get("fee_cap")
        stock = ch.get("inventory") or {}
        reconcile = ch.get("reconcile") or {}
        channels[ch["id"]] = Channel(
            id=ch["id"],
            platform=ch["platform"],
            enabled=ch.get("enabled", True),
            webhook_secrets=tuple(Secret(s) for s in ch["webhook_secrets"]),
            account_id=ch["amazon"].get("account", only_account),
            marketplace_id=ch["amazon"]["marketplace_id"],
            sku_map={k.strip(): v for k, v in ch["skus"].get("map", {}).items()},
            unmapped_policy=ch["skus"].get("unmapped", "hold"),
            shipping_map={_norm_method(k): v for k, v in shipping.get("map", {}).items()},
            default_shipping_speed=shipping.get("default", "Standard"),
            countries=frozenset(ch["countries"]) if "countries" in ch else None,
            fulfillment_policy=ch.get("fulfillment_policy", "FillOrKill"),
            fee_cap=Money(Decimal(fee_cap["amount"]), fee_cap["currency"]) if fee_cap else None,
            fee_unknown=(fee_cap or {}).get("when_unknown", "hold"),
            approval=ch.get("approval", APPROVAL_AUTO),
            holds=_hold_rules(ch),
            skip_tags=frozenset(t.strip().lower() for t in ch.get("skip_tags", ["fba-skip"])),
            sku_match=ch["skus"].get("match", "map"),
            declared_value_rates={
                k: Decimal(str(v)) for k, v in (ch.get("declared_value") or {}).get("rates", {}).items()
            },
            packing_slip_comment=ch.get("packing_slip_comment", ""),
            notification_emails=tuple(ch.get("notification_emails", ())),
            ship_on=frozenset(
                PaymentState(p) for p in payment.get("ship_on", ["paid", "partially_refunded"])
            ),
            unpaid_policy=payment.get("unpaid", "wait"),
            test_orders=ch.get("test_orders", "skip"),
            shipping_address_fallback=ch.get("shipping_address_fallback", "none"),
            postal_code_fallback=dict(ch.get("postal_code_fallback", {})),
            carrier_names={k.strip(): v for k, v in ch.get("carrier_names", {}).items()},
            storefront=StorefrontConfig(
                base_url=sf.get("base_url", "").rstrip("/"),
                local=sf.get("local", False),
                api_version=sf.get("api_version", "2026-07"),
                access_token=_secret(sf.get("access_token")),
                consumer_key=_secret(sf.get("consumer_key")),
                consumer_secret=_secret(sf.get("consumer_secret")),
                callback_url=sf.get("callback_url", ""),
                callback_secret=_secret(sf.get("callback_secret") or ch["webhook_secrets"][0]),
                shipment_tracking_extension=sf.get("shipment_tracking_extension", False),
                notify_customer=sf.get("notify_customer", True),
            ),
            shopify=_shopify_options(ch.get("shopify") or {}),
            inventory=InventoryConfig(
                sync=stock.get("sync", False),
                buffer=StockBuffer.parse(stock.get("buffer", 0)),
                sku_buffers={
                    k.strip(): StockBuffer.parse(v) for k, v in (stock.get("sku_buffers") or {}).items()
                },
                interval_s=float(stock.get("interval_s", 300)),
                full_sweep_h=float(stock.get("full_sweep_h", 24)),
                location=stock.get("location", "") or _first_location_gid(ch),
            ),
            features=_feature_options(ch.get("mcf_features") or {}),
            split_large_orders=ch.get("split_large_orders", False),
            fallback=FallbackOptions(
                action=ch.get("fallback", "none"), location=ch.get("fallback_location", "")
            ),
            reconcile=ReconcileConfig(
                enabled=reconcile.get("enabled", True) and ch["platform"] in RECONCILABLE_PLATFORMS,
                interval_s=float(reconcile.get("interval_s", 600)),
                overlap_s=float(reconcile.get("overlap_s", 300)),
                first_lookback_h=float(reconcile.get("first_lookback_h", 1)),
            ),
        )
    return ChannelsConfig(channels=channels, accounts=accounts, source=source, warnings=warnings)


def _feature_options(raw: dict[str, Any]) -> FeatureOptions:
    return FeatureOptions(
        always=tuple(dict.fromkeys(raw.get("always", ()))),
        from_tags=raw.get("from_tags", True),
        check_eligibility=raw.get("check_eligibility", True),
    )


def _hold_rules(ch: dict[str, Any]) -> HoldRules:
    raw = ch.get("holds") or {}
    above = raw.get("above")
    if "risk" in raw:
        risk = frozenset(raw["risk"])
    elif ch.get("platform") == "shopify" and ch.get("approval") == APPROVAL_RULES:
        risk = DEFAULT_RISK_HOLDS
    else:
        risk = frozenset()
    return HoldRules(
        above=Money(Decimal(str(above["amount"])), above["currency"]) if above else None,
        countries=frozenset(raw.get("countries", ())),
        skus=frozenset(s.strip() for s in raw.get("skus", ())),
        tags=frozenset(t.strip().lower() for t in raw.get("tags", ["fba-hold"])),
        risk=risk,
        meta=tuple(
            MetaHold(m["key"].strip(), frozenset(str(v).strip().lower() for v in m.get("values", ())))
            for m in raw.get("meta", ())
        ),
    )


def _shopify_options(raw: dict[str, Any]) -> ShopifyOptions:
    return ShopifyOptions(
        mode=raw.get("mode", SHOPIFY_MERCHANT_MANAGED),
        locations=tuple(str(x).strip() for x in raw.get("locations", ())),
        callback_url=str(raw.get("callback_url", "")).rstrip("/"),
        service_name=raw.get("service_name", DEFAULT_SERVICE_NAME),
    )


def load_channels(path: Path | str, env: Mapping[str, str] | None = None) -> ChannelsConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "",
                    "file not found",
                    "set BRIDGE_CONFIG to your channels file, or copy config/channels.yaml",
                )
            ],
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "",
                    f"cannot read the file ({type(exc).__name__})",
                    "check the path and that it is UTF-8 text",
                )
            ],
        ) from None
    return parse_channels(text, str(path), env)


#: How problems in an inline channels file (`BRIDGE_CONFIG_YAML`) name their source.
INLINE_SOURCE = "$BRIDGE_CONFIG_YAML"


def load_configured_channels(settings: Settings, env: Mapping[str, str] | None = None) -> ChannelsConfig:
    """The channels file the settings point at: the inline text of `BRIDGE_CONFIG_YAML` when set,
    else the file named by `BRIDGE_CONFIG`. Both are validated the same way."""
    if settings.config_yaml:
        return parse_channels(settings.config_yaml, INLINE_SOURCE, env)
    return load_channels(settings.config_path, env)
