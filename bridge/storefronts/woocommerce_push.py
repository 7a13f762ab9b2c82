"""WooCommerce push-back: one Amazon package becomes a Shipment Tracking entry, an order note and,
for the order's last package, the `completed` status.

Calls (REST v3, HTTP Basic auth with the channel's consumer key and secret):

- `GET  /wp-json/wc/v3/orders/<id>/notes`                       recognise our notes by marker
- `GET  /wp-json/wc-shipment-tracking/v3/orders/<id>/shipment-trackings`   (extension only)
- `POST /wp-json/wc-shipment-tracking/v3/orders/<id>/shipment-trackings`   (extension only)
  `{"tracking_provider": "UPS", "tracking_number": "...", "date_shipped": "YYYY-MM-DD"}`, or for a
  carrier the extension does not list `{"custom_tracking_provider": "...",
  "custom_tracking_link": "...", "tracking_number": "...", "date_shipped": "..."}`
- `POST /wp-json/wc/v3/orders/<id>/notes`   `{"note": "...", "customer_note": bool}`
- `GET  /wp-json/wc/v3/orders/<id>?_fields=id,status`   then, unless already completed,
  `PUT  /wp-json/wc/v3/orders/<id>`   `{"status": "completed"}`            (last package only)

Exactly-once, step by step. WooCommerce has no idempotency key, so every step is guarded by a
read: `push_shipment` first lists the order's trackings and notes and only creates what is
missing -- a tracking entry with this tracking number, a note carrying the marker
`[fba-bridge:<package_key>]`. A retry after a crash or a dropped answer between two steps
therefore completes the missing steps and repeats none. The status step is a PUT of a fixed
value, idempotent by nature; it is skipped when the order is already completed, and never
applied to a cancelled, refunded or trashed order (a late package must not resurrect it).

`find_existing` answers only for a push that is complete (every step done); a partial earlier
push answers None, so a caller that trusts `find_existing` and skips `push_shipment` never
leaves a step out, and a caller that calls `push_shipment` anyway duplicates nothing.

Order of steps: tracking, note, status. WooCommerce's "Completed order" email lists the
extension's tracking entries, so they must exist before the status changes.

No personal data leaves or enters this module: the note names the carrier, tracking number and
link, and the package's SKUs and quantities. The consumer key and secret go only into the
Authorization header; they are never logged or put in an error.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx

from ..channels import Channel
from ..clock import Clock
from .carriers import carrier_name
from .push import BeforeWrite, OrderNote, PushError, PushResult, ShipmentPush, StorefrontHttp

log = logging.getLogger(__name__)

WC_API = "/wp-json/wc/v3"
TRACKING_API = "/wp-json/wc-shipment-tracking/v3"

#: Carrier (normalised: lower case, `_`/`-` as spaces) -> the provider name the Shipment Tracking
#: extension lists (its providers endpoint). The extension builds the customer link from its own
#: URL format for these; any other carrier is sent as a custom provider with Amazon's link.
KNOWN_PROVIDERS: Mapping[str, str] = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "Fedex",  # the extension's spelling; it compares names by slug, so case does not matter
    "fedex sameday": "FedEx Sameday",
    "dhl": "DHL",
    "dhl us": "DHL US",
    "dhl ecommerce": "DHL US",
    "ontrac": "OnTrac",
    "canada post": "Canada Post",
    "royal mail": "Royal Mail",
    "parcelforce": "ParcelForce",
}

#: Order statuses the last package leaves alone: already completed, or an outcome a shipment
#: must not overwrite (a failed, cancelled, refunded or unpaid order never becomes completed).
KEEP_STATUSES = frozenset(
    {"completed", "cancelled", "refunded", "trash", "failed", "pending", "checkout-draft"}
)

MARKER_PREFIX = "[fba-bridge:"


def marker(key: str) -> str:
    """The tag that makes a note recognisably ours: `[fba-bridge:<package_key or note_key>]`."""
    return f"{MARKER_PREFIX}{key}]"


def normalise_carrier(carrier: str) -> str:
    return " ".join(carrier.replace("_", " ").replace("-", " ").casefold().split())


def shipment_note_text(push: ShipmentPush, carrier: str | None = None) -> str:
    """The order note for a package: carrier, number, link, SKUs and quantities, what Amazon left
    for the merchant to send, and the marker."""
    lines = [f"Shipped with {carrier or push.carrier}, tracking number {push.tracking_number}."]
    if push.tracking_url:
        lines.append(f"Track the package: {push.tracking_url}")
    items = ", ".join(f"{line.sku or 'line ' + line.line_id} x {line.quantity}" for line in push.lines)
    if items:
        lines.append(f"In this package: {items}")
    if push.all_shipped:
        lines.append("Every item of the order has now shipped.")
    if push.remaining:
        left = ", ".join(f"{line.sku or 'line ' + line.line_id} x {line.quantity}" for line in push.remaining)
        lines.append(f"Amazon has shipped its part. Not shipped by Amazon, still to send: {left}.")
    lines.append(marker(push.package_key))
    return "\n".join(lines)


@dataclass(frozen=True)
class _Existing:
    """What an earlier attempt left on the order for one package."""

    tracking_id: str | None
    note_id: str | None


class WooCommercePusher:
    """`StorefrontPusher` for a WooCommerce channel. One instance per channel; safe to share
    between threads (its only state is httpx's thread-safe client); `close()` when done."""

    def __init__(
        self,
        channel: Channel,
        clock: Clock,
        transport: httpx.BaseTransport | None = None,
        *,
        providers: Mapping[str, str] | None = None,
    ) -> None:
        self.channel = channel
        self.clock = clock
        self._http = StorefrontHttp(channel, clock, transport)
        self._auth = httpx.BasicAuth(
            channel.storefront.consumer_key.reveal(), channel.storefront.consumer_secret.reveal()
        )
        self._base = channel.storefront.base_url.rstrip("/")
        self._tracking_enabled = channel.storefront.shipment_tracking_extension
        self._providers = KNOWN_PROVIDERS if providers is None else providers

    # ---------------------------------------------------------------------------------------
    # StorefrontPusher

    def find_existing(self, push: ShipmentPush) -> PushResult | None:
        found = self._existing(push.order_external_id, push.package_key, push.tracking_number)
        if (self._tracking_enabled and found.tracking_id is None) or found.note_id is None:
            return None
        status = None
        if push.all_shipped:
            status = self._order_status(push.order_external_id)
            if status not in KEEP_STATUSES:
                return None
        return PushResult(
            storefront_ref=found.tracking_id or found.note_id or "",
            details={"tracking_id": found.tracking_id, "note_id": found.note_id, "order_status": status},
        )

    def push_shipment(self, push: ShipmentPush, *, before_write: BeforeWrite | None = None) -> PushResult:
        found = self._existing(push.order_external_id, push.package_key, push.tracking_number)
        if before_write is not None:
            before_write()
        created: list[str] = []
        tracking_id = found.tracking_id
        if self._tracking_enabled and tracking_id is None:
            tracking_id = self._create_tracking(push)
            created.append("tracking")
        note_id = found.note_id
        if note_id is None:
            customer = self.channel.storefront.notify_customer and push.notify_customer
            text = shipment_note_text(push, self._carrier(push))
            note_id = self._create_note(push.order_external_id, text, customer)
            created.append("note")
        status = self._complete(push.order_external_id) if push.all_shipped else None
        if status == "completed":
            created.append("status")
        log.info(
            "woocommerce push-back: channel=%s order=%s package=%s created=%s order_status=%s",
            self.channel.id,
            push.order_external_id,
            push.package_key,
            ",".join(created) or "nothing (already there)",
            status or "unchanged",
        )
        return PushResult(
            storefront_ref=tracking_id or note_id,
            details={
                "tracking_id": tracking_id,
                "note_id": note_id,
                "created": created,
                "order_status": status,
            },
        )

    def add_note(self, note: OrderNote) -> PushResult:
        tag = marker(note.note_key)
        existing = self._find_note(self._list_notes(note.order_external_id), tag)
        if existing is not None:
            return PushResult(storefront_ref=existing, details={"created": False})
        note_id = self._create_note(note.order_external_id, f"{note.text}\n{tag}", note.customer_visible)
        log.info(
            "woocommerce note added: channel=%s order=%s note_key=%s",
            self.channel.id,
            note.order_external_id,
            note.note_key,
        )
        return PushResult(storefront_ref=note_id, details={"created": True})

    def check_credentials(self) -> bool:
        self._request(
            "GET", f"{self._base}{WC_API}/orders", idempotent=True, params={"per_page": 1, "_fields": "id"}
        )
        return True

    def close(self) -> None:
        self._http.close()

    # ---------------------------------------------------------------------------------------
    # Steps

    def _carrier(self, push: ShipmentPush) -> str:
        return carrier_name(push.carrier, "woocommerce", self.channel.carrier_names)

    def _existing(self, order_id: str, package_key: str, tracking_number: str) -> _Existing:
        # Notes first: a 404 there means the order is gone; a 404 on the trackings route after a
        # good notes call means the extension is not installed.
        note_id = self._find_note(self._list_notes(order_id), marker(package_key))
        tracking_id = None
        if self._tracking_enabled:
            wanted = _norm_number(tracking_number)
            for item in self._list_trackings(order_id):
                if _norm_number(str(item.get("tracking_number", ""))) == wanted:
                    tracking_id = str(item.get("tracking_id", ""))
                    break
        return _Existing(tracking_id=tracking_id, note_id=note_id)

    def _list_notes(self, order_id: str) -> list[dict[str, Any]]:
        try:
            data = self._json(self._request("GET", f"{self._order_url(order_id)}/notes", idempotent=True))
        except PushError as err:
            if err.status == 404:
                raise PushError(
                    "order_not_found",
                    f"WooCommerce has no order {order_id} (404); it may have been deleted",
                    retryable=False,
                    status=404,
                ) from None
            raise
        return _list_of_objects(data, "order notes")

    def _list_trackings(self, order_id: str) -> list[dict[str, Any]]:
        try:
            data = self._json(self._request("GET", self._trackings_url(order_id), idempotent=True))
        except PushError as err:
            if err.status == 404:
                raise _extension_missing() from None
            raise
        return _list_of_objects(data, "shipment trackings")

    def _create_tracking(self, push: ShipmentPush) -> str:
        body: dict[str, str] = {
            "tracking_number": push.tracking_number,
            "date_shipped": push.shipped_at.astimezone(UTC).date().isoformat(),
        }
        carrier = self._carrier(push)
        provider = self._providers.get(normalise_carrier(carrier))
        if provider:
            body["tracking_provider"] = provider
        else:
            body["custom_tracking_provider"] = carrier
            body["custom_tracking_link"] = push.tracking_url or ""
        try:
            response = self._request(
                "POST", self._trackings_url(push.order_external_id), idempotent=False, json=body
            )
        except PushError as err:
            if err.status == 404:
                raise _extension_missing() from None
            raise
        return self._created_id(response, "tracking_id", "shipment tracking")

    def _create_note(self, order_id: str, text: str, customer_note: bool) -> str:
        response = self._request(
            "POST",
            f"{self._order_url(order_id)}/notes",
            idempotent=False,
            json={"note": text, "customer_note": customer_note},
        )
        return self._created_id(response, "id", "order note")

    def _order_status(self, order_id: str) -> str:
        data = self._json(
            self._request("GET", self._order_url(order_id), idempotent=True, params={"_fields": "id,status"})
        )
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, str):
            raise PushError("unexpected_answer", "WooCommerce answered an order without a status")
        return status

    def _complete(self, order_id: str) -> str:
        """`completed` if this call set it; otherwise the status that was kept."""
        status = self._order_status(order_id)
        if status in KEEP_STATUSES:
            if status != "completed":
                log.warning(
                    "woocommerce push-back: order %s is %s; not marking it completed", order_id, status
                )
            return f"kept:{status}"
        self._request("PUT", self._order_url(order_id), idempotent=True, json={"status": "completed"})
        return "completed"

    @staticmethod
    def _find_note(notes: list[dict[str, Any]], tag: str) -> str | None:
        for note in notes:
            text = str(note.get("note", ""))
            if tag in text or tag in html.unescape(text):
                return str(note.get("id", ""))
        return None

    # ---------------------------------------------------------------------------------------
    # HTTP

    def _order_url(self, order_id: str) -> str:
        return f"{self._base}{WC_API}/orders/{quote(order_id, safe='')}"

    def _trackings_url(self, order_id: str) -> str:
        return f"{self._base}{TRACKING_API}/orders/{quote(order_id, safe='')}/shipment-trackings"

    def _request(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        return self._http.request(method, url, idempotent=idempotent, auth=self._auth, **kwargs)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise PushError(
                "unexpected_answer",
                "WooCommerce answered something that is not JSON; check storefront.base_url and that "
                "the site's REST API is reachable at /wp-json/ (pretty permalinks enabled)",
                status=response.status_code,
            ) from None

    def _created_id(self, response: httpx.Response, key: str, what: str) -> str:
        """The id of what a POST created. An unreadable 2xx may still have created it: ambiguous."""
        try:
            data = response.json()
        except ValueError:
            data = None
        value = data.get(key) if isinstance(data, dict) else None
        if value in (None, ""):
            raise PushError(
                "unexpected_answer",
                f"WooCommerce accepted the {what} but its answer carries no {key}",
                ambiguous=True,
                status=response.status_code,
            )
        return str(value)


def _norm_number(number: str) -> str:
    return "".join(number.split()).casefold()


def _list_of_objects(data: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise PushError(
            "unexpected_answer", f"WooCommerce answered the {what} with something other than a list"
        )
    return [item for item in data if isinstance(item, dict)]


def _extension_missing() -> PushError:
    return PushError(
        "tracking_extension_missing",
        "the WooCommerce Shipment Tracking REST route answered 404; install and activate the "
        "Shipment Tracking extension, or set storefront.shipment_tracking_extension: false",
        retryable=False,
        status=404,
    )
