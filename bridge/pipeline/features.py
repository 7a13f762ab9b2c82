"""MCF features per order (`BLOCK_AMZL`, `BLANK_BOX`): which an order asks for, and what to do
when one of its SKUs may not ship with them.

Pure decisions, kept apart from `plan.py`: a channel's `mcf_features.always` applies to every
order, an order tag (`MCF_BLOCK_AMZL`, `MCF_BLANK_BOX`, as Amazon's own Shopify app reads them)
adds a feature to that order when `mcf_features.from_tags` is on. The features go into **both**
the preview and the create request as `featureConstraints` with policy `Required`, so the preview
judges what will really be created. Eligibility answers come from
`bridge.amazon.feature_eligibility` (cached); `judge_eligibility` turns them into a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..amazon.feature_eligibility import Ineligible
from ..amazon.models import FeatureFulfillmentPolicy, FeatureSettings
from ..channels import FEATURE_TAGS, MCF_FEATURES, Channel
from ..orders import CanonicalOrder
from .plan import Park, Plan


def requested_features(order: CanonicalOrder, channel: Channel) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The features the order asks for, in the order of `MCF_FEATURES`, and a note per
    feature saying where it came from (the channel or a tag)."""
    sources: dict[str, str] = {
        f: f"channel {channel.id}'s mcf_features.always" for f in channel.features.always
    }
    if channel.features.from_tags:
        for tag in order.tags:
            feature = FEATURE_TAGS.get(tag.strip().upper())
            if feature is not None and feature not in sources:
                sources[feature] = f"order tag MCF_{feature}"  # storefronts may lower-case tags
    ordered = tuple(f for f in MCF_FEATURES if f in sources)
    return ordered, tuple(f"feature {f} required ({sources[f]})" for f in ordered)


def with_features(plan: Plan, features: Sequence[str], notes: Sequence[str] = ()) -> Plan:
    """The plan with `featureConstraints` (policy Required) in both the preview and the create."""
    if not features:
        return plan
    constraints = tuple(FeatureSettings(f, FeatureFulfillmentPolicy.REQUIRED) for f in features)
    return replace(
        plan,
        preview=replace(plan.preview, feature_constraints=constraints),
        create=replace(plan.create, feature_constraints=constraints),
        notes=(*plan.notes, *notes),
    )


def plan_features(plan: Plan) -> tuple[str, ...]:
    return tuple(f.feature_name for f in plan.create.feature_constraints)


def judge_eligibility(found: Sequence[Ineligible], channel: Channel) -> Park | None:
    """None when every SKU may ship with every feature the order requires; else why not and how
    to fix it (reasons name SKUs and features, never the customer)."""
    if not found:
        return None
    parts = []
    for item in found:
        why = f" ({', '.join(item.reasons)})" if item.reasons else ""
        parts.append(f"{item.seller_sku} is not eligible for {item.feature}{why}")
    return Park(
        "Amazon cannot ship this order with the required feature(s): "
        + "; ".join(parts)
        + f". Remove the MCF_ tag from the order, or the feature from channel {channel.id}'s "
        "mcf_features.always, or enrol the SKU for the feature in Seller Central; then resubmit"
    )
