"""The merchant's policies at submission: skip, hold for approval, or let the order go.

Pure functions over the canonical order, the channel and what the operator already approved.
Each decision names the rule that made it (a stable id the approval is recorded under) and says
why in words an operator reads in the audit trail: amounts, countries, SKUs, tags, never the
customer's data.

The rules, in order:

1. a skip tag (`skip_tags`, default `fba-skip`) keeps the order away from Amazon (Skip);
2. a hold tag (`holds.tags`, default `fba-hold`) holds it, whatever the approval mode;
3. `approval: manual` holds every order (rule `manual`);
4. `approval: rules` holds on value, country, SKU, order meta and Shopify's risk
   recommendation; every rule that fires is named.

A rule the operator approved for this order (`approved`) does not hold it again; approving
re-plans against the current order and channel, so a rule that was not approved still can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..amazon.models import FulfillmentPreview
from ..channels import APPROVAL_MANUAL, APPROVAL_RULES, Channel
from ..orders import CanonicalOrder, OrderRisk
from .plan import Plan, Skip, chosen_preview

# Rule ids, as recorded with a hold and its approval.
RULE_TAG = "tag"
RULE_MANUAL = "manual"
RULE_VALUE = "value"
RULE_COUNTRY = "country"
RULE_SKU = "sku"
RULE_META = "meta"
RULE_RISK = "risk"
RULE_FEES_UNKNOWN = "fees_unknown"


@dataclass(frozen=True)
class Hold:
    """The order waits for an operator's approval; `rules` are the ids of every rule that fired."""

    rules: tuple[str, ...]
    reason: str


def skip_by_tag(order: CanonicalOrder, channel: Channel) -> Skip | None:
    tags = sorted(channel.skip_tags & set(order.tags))
    if not tags:
        return None
    return Skip(f"the order is tagged {tags[0]} in the storefront (skip_tags of channel {channel.id})")


def decide_approval(
    order: CanonicalOrder,
    channel: Channel,
    *,
    approved: frozenset[str] = frozenset(),
    risk: OrderRisk | None = None,
) -> Hold | None:
    """None: the order may go to Amazon. A `Hold` names each rule that fired and why.

    `risk` is needed only when `channel.uses_risk`; None then means the storefront did not say
    (the risk rule holds, since an unknown risk is not an accepted one)."""
    fired: list[tuple[str, str]] = []
    tags = sorted(channel.holds.tags & set(order.tags))
    if tags:
        fired.append((RULE_TAG, f"tagged {tags[0]} in the storefront"))
    if channel.approval == APPROVAL_MANUAL:
        fired.append((RULE_MANUAL, f"channel {channel.id} approves every order manually (approval: manual)"))
    elif channel.approval == APPROVAL_RULES:
        fired.extend(_rules(order, channel, risk))
    pending = [(rule, why) for rule, why in fired if rule not in approved]
    if not pending:
        return None
    rules = tuple(dict.fromkeys(rule for rule, _ in pending))
    return Hold(rules, "held for approval: " + "; ".join(f"{why} (rule {rule})" for rule, why in pending))


def _rules(order: CanonicalOrder, channel: Channel, risk: OrderRisk | None) -> list[tuple[str, str]]:
    holds = channel.holds
    fired: list[tuple[str, str]] = []
    if holds.above is not None:
        total = order.total()
        if order.currency != holds.above.currency:
            fired.append(
                (
                    RULE_VALUE,
                    f"the order is in {order.currency} and holds.above in {holds.above.currency}, so its "
                    "value cannot be compared",
                )
            )
        elif total > holds.above.amount:
            fired.append(
                (RULE_VALUE, f"order total {_amount(total)} {order.currency} is above {holds.above.amount}")
            )
    country = order.destination.country_code if order.destination else ""
    if country and country in holds.countries:
        fired.append((RULE_COUNTRY, f"destination country {country} is listed in holds.countries"))
    skus = sorted({line.sku.strip() for line in order.lines if line.sku.strip() in holds.skus})
    if skus:
        fired.append((RULE_SKU, f"SKU(s) {', '.join(skus)} listed in holds.skus"))
    for rule in holds.meta:
        value = order.attribute(rule.key)
        if value is None or not value.strip():
            continue
        if not rule.values or value.strip().lower() in rule.values:
            fired.append((RULE_META, f"order meta {rule.key} is {_short(value)}"))
            break
    if holds.risk:
        if risk is None:
            fired.append((RULE_RISK, "the storefront's risk assessment could not be read"))
        elif risk.recommendation in holds.risk:
            fired.append((RULE_RISK, f"the storefront's risk recommendation is {risk.describe()}"))
    return fired


RISK_PENDING_WAIT_S = 600.0
RISK_PENDING_RETRY_S = 60.0


def risk_pending_wait(
    risk: OrderRisk, channel: Channel, *, received_at: datetime, now: datetime
) -> float | None:
    """Seconds to wait before asking again while the storefront's risk analysis is still running
    (an assessment `PENDING`, which Shopify reports for a while after checkout) and nothing holds
    the order yet; None to decide now. After `RISK_PENDING_WAIT_S` from intake the bridge decides
    on what is known, and the audit trail shows the pending assessment."""
    if "PENDING" not in risk.levels or risk.recommendation in channel.holds.risk:
        return None
    if (now - received_at).total_seconds() >= RISK_PENDING_WAIT_S:
        return None
    return RISK_PENDING_RETRY_S


def judge_fees(
    previews: Sequence[FulfillmentPreview],
    plan: Plan,
    channel: Channel,
    approved: frozenset[str] = frozenset(),
) -> Hold | None:
    """After `judge_preview` passed: a fee cap with `when_unknown: hold` holds an order whose
    preview carries no fee estimate (Amazon sometimes quotes none) until an operator approves."""
    chosen = chosen_preview(previews, plan)
    if chosen is None or chosen.estimated_fees:
        return None
    if channel.fee_cap is None or channel.fee_unknown != "hold" or RULE_FEES_UNKNOWN in approved:
        return None
    return Hold(
        (RULE_FEES_UNKNOWN,),
        f"held for approval: Amazon's preview carries no fee estimate, so the fee cap "
        f"{channel.fee_cap.amount} {channel.fee_cap.currency} cannot be checked (fee_cap.when_unknown: "
        f"hold; rule {RULE_FEES_UNKNOWN})",
    )


def _amount(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _short(value: str) -> str:
    """A meta value, shortened: the merchant's data, but it may be long."""
    text = " ".join(value.split())
    return text if len(text) <= 40 else text[:39] + "…"
