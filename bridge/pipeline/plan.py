"""From a canonical order and its channel to an MCF request, or a precise reason not to send one.

Pure functions: everything Amazon would reject (missing address fields, lengths, unmapped SKUs,
countries the channel does not ship to) is found here, before a request is spent, and becomes
an operator-readable reason. Reasons name fields and SKUs, never the customer's data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ..amazon.marketplaces import marketplace
from ..amazon.models import (
    Address,
    CreateFulfillmentOrderItem,
    CreateFulfillmentOrderRequest,
    FulfillmentAction,
    FulfillmentPolicy,
    FulfillmentPreview,
    GetFulfillmentPreviewItem,
    GetFulfillmentPreviewRequest,
    Money,
    ShippingSpeedCategory,
)
from ..channels import Channel
from ..orders import CanonicalOrder, OrderLine
from ..schemas import schema_problems

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")
MAX_ORDER_ID = 40
MAX_ITEM_ID = 50
MAX_GIFT_MESSAGE = 512
DEFAULT_COMMENT = "Thank you for your order {display_id}!"


def seller_fulfillment_order_id(channel_id: str, external_id: str) -> str:
    """Deterministic and stable across retries: `<channel>-<order id>` when that is short and safe
    (readable in Seller Central), otherwise a hash of both. Amazon mangles `+` and spaces."""
    readable = f"{channel_id}-{external_id}"
    if len(readable) <= MAX_ORDER_ID and _SAFE_ID.fullmatch(readable):
        return readable
    digest = hashlib.sha256(f"{channel_id}\0{external_id}".encode()).hexdigest()
    return f"fbb-{digest[: MAX_ORDER_ID - 4]}"


def item_id_for(line_id: str) -> str:
    """Our `sellerFulfillmentOrderItemId` for a storefront line (sync maps it back)."""
    if len(line_id) <= MAX_ITEM_ID and _SAFE_ID.fullmatch(line_id):
        return line_id
    return hashlib.sha256(line_id.encode()).hexdigest()[:MAX_ITEM_ID]


@dataclass(frozen=True)
class Park:
    """The order needs an operator (or a fix in the storefront); `reason` says what and how."""

    reason: str


@dataclass(frozen=True)
class Skip:
    """Nothing in the order is for Amazon to ship."""

    reason: str


@dataclass(frozen=True)
class SkippedLine:
    """A storefront line Amazon is not asked to ship (its SKU is not mapped, under `skip`)."""

    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class Plan:
    seller_fulfillment_order_id: str
    speed: ShippingSpeedCategory
    preview: GetFulfillmentPreviewRequest
    create: CreateFulfillmentOrderRequest
    skipped_skus: tuple[str, ...] = ()
    skipped: tuple[SkippedLine, ...] = ()
    notes: tuple[str, ...] = ()  # what the audit trail should say about how it was planned
    # (item id, storefront line id) of every item sent, in the create request's order.
    line_of_item: tuple[tuple[str, str], ...] = ()
    # Amazon SKUs sent as the storefront SKU (`skus.match: exact`, not listed in skus.map).
    identity_skus: tuple[str, ...] = ()


def _comment(channel: Channel, order: CanonicalOrder) -> str:
    template = channel.packing_slip_comment or DEFAULT_COMMENT
    return template.replace("{display_id}", order.display_id).strip()[:750] or "Thank you for your order!"


def _no_address(channel: Channel) -> Park:
    hint = (
        f", or set shipping_address_fallback: billing on channel {channel.id} to ship such orders to "
        "the billing address"
        if channel.shipping_address_fallback != "billing"
        else ""
    )
    return Park(f"the order needs shipping but has no shipping address; add one in the storefront{hint}")


def destination_address(order: CanonicalOrder, channel: Channel) -> tuple[Address, tuple[str, ...]] | Park:
    """The MCF address for the order (and what the audit trail should say about it), or why there
    is none Amazon would take. Reasons name countries and fields, never the customer's data."""
    dest = order.destination
    if dest is None:
        return _no_address(channel)
    if channel.countries is not None and dest.country_code not in channel.countries:
        return Park(
            f"destination country {dest.country_code or '(none)'} is not in channel {channel.id}'s "
            f"countries ({', '.join(sorted(channel.countries))})"
        )
    postal_code = dest.postal_code
    notes: tuple[str, ...] = ()
    if not postal_code:
        placeholder = channel.postal_code_fallback.get(dest.country_code)
        if placeholder is None:
            return Park(
                f"Amazon requires a postal code and the address has none (country {dest.country_code or '-'} "
                "may not use postal codes); add one in the storefront, or set postal_code_fallback: "
                f'{{{dest.country_code or "XX"}: "00000"}} on channel {channel.id} to send a placeholder '
                "for that country"
            )
        postal_code = placeholder
        notes = (f"no postal code: sent channel {channel.id}'s placeholder for {dest.country_code}",)
    address = Address(
        name=dest.name,
        address_line1=dest.line1,
        address_line2=dest.line2 or None,
        address_line3=dest.line3 or None,
        city=dest.city or None,
        district_or_county=dest.district or None,
        state_or_region=dest.state or None,
        postal_code=postal_code,
        country_code=dest.country_code,
        phone=dest.phone or None,
    )
    return address, notes


def shipping_speed(order: CanonicalOrder, channel: Channel) -> ShippingSpeedCategory:
    return ShippingSpeedCategory(channel.shipping_speed(order.shipping_method, order.shipping_method_code))


def _test_order(order: CanonicalOrder, channel: Channel) -> Skip | tuple[str, ...]:
    if not order.test:
        return ()
    if channel.test_orders != "ship":
        return Skip(
            f"test order (the storefront marks it as a test); not sent to Amazon. Set test_orders: ship "
            f"on channel {channel.id} to send test orders for an end-to-end trial"
        )
    return (f"test order sent to Amazon because channel {channel.id} has test_orders: ship",)


def _to_ship(order: CanonicalOrder) -> list[OrderLine] | Skip:
    needing = [line for line in order.lines if line.requires_shipping]
    if not needing:
        return Skip("no line requires shipping (a virtual or digital order)")
    shippable = [line for line in needing if line.to_fulfil > 0]
    if not shippable:
        return Skip("nothing left to fulfil: every line was removed, refunded or already fulfilled")
    return shippable


def declared_values(
    order: CanonicalOrder, channel: Channel, lines: Sequence[OrderLine]
) -> tuple[dict[str, Money], tuple[str, ...]] | Park:
    """`perUnitDeclaredValue` per storefront line id for a destination outside the marketplace's
    country (customs need it, and Amazon refuses such orders without), from the storefront's line
    prices; in the marketplace's currency, converted with the channel's `declared_value.rates`
    when the order is in another currency. Domestic orders declare nothing."""
    market = marketplace(channel.marketplace_id)
    dest = order.destination
    if dest is None or market is None or dest.country_code == market.country_code:
        return {}, ()
    rate = Decimal(1)
    notes: tuple[str, ...] = ()
    if order.currency != market.currency:
        configured = channel.declared_value_rates.get(order.currency)
        if configured is None:
            return Park(
                f"destination {dest.country_code} is outside the marketplace's country "
                f"({market.country_code}), so Amazon needs each item's declared value in "
                f"{market.currency}, but the order is in {order.currency} and channel {channel.id} has no "
                f'rate for it; add declared_value.rates: {{{order.currency}: "<{market.currency} per '
                f'{order.currency}>"}} to the channel'
            )
        rate = configured
        notes = (f"declared values converted from {order.currency} at {rate} {market.currency} per unit",)
    out: dict[str, Money] = {}
    for line in lines:
        try:
            price = Decimal(line.unit_price)
        except InvalidOperation:
            return Park(f"line {line.line_id} has no usable price to declare for a cross-border shipment")
        value = (price * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        out[line.line_id] = Money(market.currency, value)
    notes = (f"cross-border to {dest.country_code}: declared each item's value in {market.currency}", *notes)
    return out, notes


def plan_submission(order: CanonicalOrder, channel: Channel, *, hold: bool = False) -> Plan | Park | Skip:
    """What to ask Amazon for: the lines still to fulfil (`OrderLine.to_fulfil`) whose SKUs are
    mapped, to the order's address, at the speed its shipping title or code maps to."""
    test = _test_order(order, channel)
    if isinstance(test, Skip):
        return test
    shippable = _to_ship(order)
    if isinstance(shippable, Skip):
        return shippable
    mapped: list[tuple[str, str, int, str]] = []
    unmapped: list[str] = []
    skipped: list[SkippedLine] = []
    identity: list[str] = []
    for line in shippable:
        amazon_sku = channel.amazon_sku(line.sku)
        if amazon_sku is None:
            unmapped.append(line.sku or f"(line {line.line_id} has no SKU)")
            skipped.append(SkippedLine(line.line_id, line.sku, line.to_fulfil))
        else:
            mapped.append((item_id_for(line.line_id), amazon_sku, line.to_fulfil, line.line_id))
            if channel.sku_by_identity(line.sku) and amazon_sku not in identity:
                identity.append(amazon_sku)
    if unmapped and channel.unmapped_policy == "hold":
        return Park(
            f"SKU(s) not mapped to Amazon: {', '.join(unmapped)}; add them to skus.map of channel "
            f"{channel.id} or set skus.unmapped: skip"
        )
    if not mapped:
        return Skip(f"no SKU is mapped to Amazon (unmapped: {', '.join(unmapped)})")
    destination = destination_address(order, channel)
    if isinstance(destination, Park):
        return destination
    address, address_notes = destination
    speed = shipping_speed(order, channel)
    if hold and speed is ShippingSpeedCategory.SCHEDULED_DELIVERY:
        return Park("an unpaid order cannot be held at Amazon with ScheduledDelivery; wait for payment")
    sent_lines = {line.line_id: line for line in shippable}
    declared = declared_values(order, channel, [sent_lines[line_id] for *_, line_id in mapped])
    if isinstance(declared, Park):
        return declared
    declared_by_line, declared_notes = declared
    sfo_id = seller_fulfillment_order_id(channel.id, order.external_id)
    items = [
        CreateFulfillmentOrderItem(
            seller_sku=sku,
            seller_fulfillment_order_item_id=item_id,
            quantity=qty,
            gift_message=_gift(order, sent_lines[line_id], first=i == 0),
            per_unit_declared_value=declared_by_line.get(line_id),
        )
        for i, (item_id, sku, qty, line_id) in enumerate(mapped)
    ]
    create = CreateFulfillmentOrderRequest(
        seller_fulfillment_order_id=sfo_id,
        displayable_order_id=order.display_id[:MAX_ORDER_ID] or order.external_id[:MAX_ORDER_ID],
        displayable_order_date=order.created_at,
        displayable_order_comment=_comment(channel, order),
        shipping_speed_category=speed,
        destination_address=address,
        items=items,
        marketplace_id=channel.marketplace_id,
        fulfillment_action=FulfillmentAction.HOLD if hold else FulfillmentAction.SHIP,
        fulfillment_policy=FulfillmentPolicy(channel.fulfillment_policy),
        notification_emails=channel.notification_emails,
    )
    # Item count is judged by pipeline/split.py (split or park); every other rule here.
    problems = schema_problems("spapi/create_fulfillment_order", replace(create, items=items[:100]).to_api())
    if problems:
        details = "; ".join(f"{p['path'].removeprefix('$.')}: {p['fix']}" for p in problems)
        return Park(f"Amazon would reject this order: {details}")
    preview = GetFulfillmentPreviewRequest(
        address=address,
        items=[
            GetFulfillmentPreviewItem(
                seller_sku=i.seller_sku,
                seller_fulfillment_order_item_id=i.seller_fulfillment_order_item_id,
                quantity=i.quantity,
                per_unit_declared_value=i.per_unit_declared_value,
            )
            for i in items
        ],
        marketplace_id=channel.marketplace_id,
        shipping_speed_categories=[speed],
    )
    return Plan(
        sfo_id,
        speed,
        preview,
        create,
        tuple(unmapped),
        tuple(skipped),
        (*test, *address_notes, *declared_notes),
        tuple((item_id, line_id) for item_id, _, _, line_id in mapped),
        tuple(identity),
    )


def _gift(order: CanonicalOrder, line: OrderLine, *, first: bool) -> str | None:
    """The line's own gift message; else the order's, on the first item only (Amazon prints each
    item's message, and one order-level message should be printed once)."""
    message = line.gift_message or (order.gift_message if first else "")
    return message.strip()[:MAX_GIFT_MESSAGE] or None


def judge_preview(previews: Sequence[FulfillmentPreview], plan: Plan, channel: Channel) -> Park | None:
    """None when the preview allows creating the order under the channel's rules."""
    chosen = chosen_preview(previews, plan)
    if chosen is None:
        return Park(f"Amazon returned no preview for shipping speed {plan.speed}")
    if not chosen.is_fulfillable:
        reasons = [
            _unfulfillable(item.seller_sku, item.reasons, plan, channel)
            for item in chosen.unfulfillable_items
        ]
        reasons += list(chosen.order_unfulfillable_reasons)
        return Park("Amazon cannot fulfil this order: " + ("; ".join(reasons) or "no reason given"))
    cap = channel.fee_cap
    try:
        fees = chosen.estimated_fees_total
    except ValueError:
        return Park("Amazon quoted fees in more than one currency; review the order before creating it")
    if cap is not None and fees is not None:
        if fees.currency_code != cap.currency:
            return Park(
                f"estimated fees are in {fees.currency_code} but the fee cap is in {cap.currency}; "
                "adjust fee_cap"
            )
        if fees.value > cap.amount:
            return Park(
                f"held for an operator: estimated fees {fees.value} {fees.currency_code} exceed the "
                f"channel's cap {cap.amount} {cap.currency}"
            )
    return None


def _unfulfillable(sku: str, reasons: Sequence[str], plan: Plan, channel: Channel) -> str:
    if sku in plan.identity_skus and "InvalidSKU" in reasons:
        return (
            f"{sku}: Amazon does not know this seller SKU (sent as the storefront SKU because channel "
            f"{channel.id} has skus.match: exact); map it to the Amazon SKU in skus.map, or create the "
            "listing at Amazon"
        )
    return f"{sku}: {', '.join(reasons) or 'unfulfillable'}"


def chosen_preview(previews: Sequence[FulfillmentPreview], plan: Plan) -> FulfillmentPreview | None:
    return next((p for p in previews if p.shipping_speed_category == plan.speed), None)


def fees_seen(previews: Sequence[FulfillmentPreview], plan: Plan) -> str:
    """What the audit trail records of the preview's fee estimate."""
    chosen = chosen_preview(previews, plan)
    if chosen is None:
        return "preview: no preview for the chosen speed"
    if not chosen.estimated_fees:
        return "preview: Amazon quoted no fee estimate"
    fees = ", ".join(f"{f.name} {f.amount.value} {f.amount.currency_code}" for f in chosen.estimated_fees)
    try:
        total = chosen.estimated_fees_total
    except ValueError:
        return f"preview fees: {fees}"
    assert total is not None
    return f"preview fees: {fees} (total {total.value} {total.currency_code})"
