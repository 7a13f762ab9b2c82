"""A runnable fake WooCommerce store: the REST v3 routes the push-back uses, plus the Shipment
Tracking extension's routes, with WooCommerce's error envelopes and fault injection.

Serve it in process (`httpx.WSGITransport(app=create_fake_woocommerce_app(fake))`) or on a real
socket (`serve_in_thread(app)`). Routes (route names in brackets, for fault injection):

- `GET /wp-json/wc/v3/orders` [list_orders] (`per_page`, `page`, `_fields`, `orderby`
  date|id|modified, `order`, `modified_after` with `dates_are_gmt`; `X-WP-Total` and
  `X-WP-TotalPages`; newest first by default). Orders made with `put_order` carry their whole
  REST document and a `date_modified_gmt` the fake stamps on every change.
- `GET /wp-json/wc/v3/orders/<id>` [get_order] (honours `_fields=id,status`)
- `GET /wp-json/wc/v3/webhooks` [list_webhooks] (what `add_webhook` set up; read by
  `fba-bridge check channel`)
- `PUT|PATCH|POST /wp-json/wc/v3/orders/<id>` [update_order] (`{"status": ...}`)
- `GET /wp-json/wc/v3/orders/<id>/notes` [list_notes], `POST` [create_note]
  (`note` required, `customer_note`), `GET .../notes/<note_id>` [get_note]
- `GET|POST /wp-json/wc-shipment-tracking/v3/orders/<id>/shipment-trackings` [list_trackings,
  create_tracking], `GET|DELETE .../shipment-trackings/<tracking_id>` [get_tracking,
  delete_tracking]; `GET /wp-json/wc-shipment-tracking/v3/shipment-trackings/providers`
  [list_providers] (public). With `shipment_tracking=False` these answer 404 `rest_no_route`,
  as a store without the extension does.

The catalog (`fake.catalog`: products and variations with SKUs and stock, the products search
and the batch routes inventory sync uses) is its own block at the end of the module.

Every route but the providers list wants HTTP Basic auth with the fake's consumer key and
secret: none answers 401 `woocommerce_rest_cannot_view` (or `_cannot_create` / `_cannot_edit` /
`_cannot_delete`), a wrong or revoked key 401 `woocommerce_rest_authentication_error`, and a
read-only key a write with 401 "does not have write permissions" -- the codes WooCommerce uses.
Unlike the real store the fake accepts Basic auth over plain http (it is a local test server).

Controls: `add_order` (or `auto_create_orders=True`: any order id exists), `put_order` (a full
REST order, stamped `date_modified_gmt`: what the order listing serves), `order`,
`fail_next(route, status, count, retry_after)` (route "*" for any), `accept_then_drop_next(route,
count)` (do the work, then drop the connection unanswered), `revoke()` / `reinstate()`,
`key_permissions` ("read_write" | "read"), `shipment_tracking`, `calls` / `calls_of(route)` (every
request: method, route, order id, answered status, 0 when dropped).

Run it alone with `python -m bridge.fakes.woocommerce --port 8702` (orders then exist on demand).
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, Response, json, request

from ..amazon.simulator.dropping import ConnectionDropper, mark_drop
from ..clock import Clock, SystemClock

WC = "/wp-json/wc/v3"
ST = "/wp-json/wc-shipment-tracking/v3"

ORDER_STATUSES = frozenset(
    {"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "checkout-draft"}
)

#: The extension's built-in providers (a subset of its list, same names and link formats).
DEFAULT_PROVIDERS: dict[str, dict[str, str]] = {
    "Canada": {
        "Canada Post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=%1$s"
    },
    "United Kingdom": {
        "DHL": "https://www.dhl.com/content/g0/en/express/tracking.shtml?brand=DHL&AWB=%1$s",
        "ParcelForce": "https://www.parcelforce.com/track-trace?trackNumber=%1$s",
        "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/%1$s",
    },
    "United States": {
        "Fedex": "https://www.fedex.com/fedextrack/?action=track&tracknumbers=%1$s",
        "FedEx Sameday": "https://www.fedexsameday.com/fdx_dotracking_ua.aspx?tracknum=%1$s",
        "OnTrac": "https://www.ontrac.com/tracking/?number=%1$s",
        "UPS": "https://www.ups.com/track?tracknum=%1$s",
        "USPS": "https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1=%1$s",
        "DHL US": "https://www.logistics.dhl/us-en/home/tracking/tracking-ecommerce.html?tracking-id=%1$s",
    },
}

TRACKING_ROUTES = frozenset(
    {"list_trackings", "create_tracking", "get_tracking", "delete_tracking", "list_providers"}
)

_WRITE_CODES = {"POST": "create", "PUT": "edit", "PATCH": "edit", "DELETE": "delete"}


def slug(name: str) -> str:
    """WordPress's `sanitize_title`, near enough: how the extension matches provider names."""
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")


@dataclass
class FakeNote:
    id: int
    note: str
    customer_note: bool
    date_created_gmt: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": "system",
            "date_created": self.date_created_gmt,
            "date_created_gmt": self.date_created_gmt,
            "note": self.note,
            "customer_note": self.customer_note,
        }


@dataclass
class FakeTracking:
    tracking_id: str
    tracking_number: str
    tracking_provider: str  # as sent; "" for a custom provider
    custom_tracking_provider: str
    custom_tracking_link: str
    date_shipped: str
    provider_name: str  # what the extension shows: the listed name, or the custom one
    tracking_link: str  # "" when a predefined name is not in the list (as the extension does)

    def to_json(self) -> dict[str, Any]:
        return {
            "tracking_id": self.tracking_id,
            "tracking_provider": self.provider_name,
            "tracking_link": self.tracking_link,
            "tracking_number": self.tracking_number,
            "date_shipped": self.date_shipped,
        }


@dataclass
class FakeOrder:
    id: int
    status: str = "processing"
    notes: list[FakeNote] = field(default_factory=list)
    trackings: list[FakeTracking] = field(default_factory=list)
    status_changes: list[tuple[str, str]] = field(default_factory=list)  # (from, to)
    #: The full REST order `put_order` stored (the webhook body's shape); None for `add_order`.
    document: dict[str, Any] | None = None
    modified: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        if self.document is None:
            return {"id": self.id, "number": str(self.id), "status": self.status, "line_items": []}
        return dict(
            copy.deepcopy(self.document),
            id=self.id,
            status=self.status,
            date_modified_gmt=_gmt(self.modified),
            date_modified=_gmt(self.modified),
        )


@dataclass
class FakeWebhook:
    """A webhook as the store admin or the REST API set it up."""

    id: int
    topic: str  # e.g. "order.created"
    delivery_url: str
    status: str = "active"  # active | paused | disabled

    def to_json(self) -> dict[str, Any]:
        resource, _, event = self.topic.partition(".")
        return {
            "id": self.id,
            "name": f"Order {event}",
            "status": self.status,
            "topic": self.topic,
            "resource": resource,
            "event": event,
            "delivery_url": self.delivery_url,
        }


@dataclass
class _Fault:
    route: str
    kind: str  # "status" | "accept_then_drop"
    count: int
    status: int = 503
    retry_after: int | str | None = None


@dataclass(frozen=True)
class Call:
    method: str
    route: str
    order_id: int | None
    status: int  # 0 when the connection was dropped


class WooError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "data": {"status": status, **(extra or {})}}


class FakeWooCommerce:
    """The store's state. Thread-safe: the app may run under a threaded server."""

    def __init__(
        self,
        consumer_key: str = "ck_demo",
        consumer_secret: str = "cs_demo",  # noqa: S107 - a fake's test credential
        *,
        shipment_tracking: bool = True,
        clock: Clock | None = None,
        providers: dict[str, dict[str, str]] | None = None,
        auto_create_orders: bool = False,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.shipment_tracking = shipment_tracking
        self.key_permissions = "read_write"
        self.clock = clock or SystemClock()
        self.providers = providers if providers is not None else DEFAULT_PROVIDERS
        self.auto_create_orders = auto_create_orders  # the demo: any order id exists, "processing"
        self.orders: dict[int, FakeOrder] = {}
        self.webhooks: list[FakeWebhook] = []
        self.calls: list[Call] = []
        self._revoked = False
        self._faults: list[_Fault] = []
        self._next_note_id = 1000
        self.lock = threading.RLock()
        self.catalog = FakeCatalog(self.clock)

    # ---------------------------------------------------------------------------------------
    # Controls

    def add_order(self, order_id: int | str, status: str = "processing") -> FakeOrder:
        with self.lock:
            order = FakeOrder(id=int(order_id), status=status)
            self.orders[order.id] = order
            return order

    def put_order(self, document: dict[str, Any]) -> dict[str, Any]:
        """Create or change an order as checkout or the shop admin would: `document` is the REST
        order (an `order.*` webhook body). The fake stamps `date_modified_gmt` with its clock
        (`date_created_gmt` the first time) and returns the order as the webhook of this change
        would carry it; `GET /orders?modified_after=` lists it from now on."""
        with self.lock:
            order_id = int(document["id"])
            order = self.orders.get(order_id) or self.add_order(
                order_id, str(document.get("status") or "processing")
            )
            now = self.clock.now()
            doc = copy.deepcopy(document)
            created = (
                (order.document or {}).get("date_created_gmt") or doc.get("date_created_gmt") or _gmt(now)
            )
            doc["date_created_gmt"] = created
            order.document = doc
            order.status = str(doc.get("status") or order.status)
            order.modified = now
            return order.to_json()

    def order(self, order_id: int | str) -> FakeOrder:
        with self.lock:
            return self.orders[int(order_id)]

    def add_webhook(self, topic: str, delivery_url: str, status: str = "active") -> FakeWebhook:
        with self.lock:
            webhook = FakeWebhook(len(self.webhooks) + 1, topic, delivery_url, status)
            self.webhooks.append(webhook)
            return webhook

    def fail_next(
        self, route: str, status: int = 503, count: int = 1, retry_after: int | str | None = None
    ) -> None:
        """The next `count` calls of `route` ("*" for any) answer `status` without doing anything."""
        with self.lock:
            self._faults.append(_Fault(route, "status", count, status, retry_after))

    def accept_then_drop_next(self, route: str, count: int = 1) -> None:
        """The next `count` calls of `route` do their work, then the connection drops unanswered."""
        with self.lock:
            self._faults.append(_Fault(route, "accept_then_drop", count))

    def revoke(self) -> None:
        """The API key is deleted in the store admin: every authenticated call answers 401."""
        with self.lock:
            self._revoked = True

    def reinstate(self) -> None:
        with self.lock:
            self._revoked = False

    def calls_of(self, route: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.route == route]

    # ---------------------------------------------------------------------------------------
    # Behaviour (called by the routes with the lock held)

    def take_fault(self, route: str) -> _Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.route in (route, "*"):
                fault.count -= 1
                if fault.count <= 0:
                    del self._faults[i]
                return fault
        return None

    def check_auth(self, method: str, username: str | None, password: str | None) -> None:
        writing = method in _WRITE_CODES
        if not username and not password:
            action = _WRITE_CODES.get(method, "view")
            messages = {
                "view": "Sorry, you cannot list resources.",
                "create": "Sorry, you are not allowed to create resources.",
                "edit": "Sorry, you are not allowed to edit this resource.",
                "delete": "Sorry, you are not allowed to delete this resource.",
            }
            raise WooError(401, f"woocommerce_rest_cannot_{action}", messages[action])
        if self._revoked or username != self.consumer_key:
            raise WooError(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if password != self.consumer_secret:
            raise WooError(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
        if writing and self.key_permissions != "read_write":
            raise WooError(
                401,
                "woocommerce_rest_authentication_error",
                "The API key provided does not have write permissions.",
            )

    def find_order(self, order_id: int) -> FakeOrder:
        order = self.orders.get(order_id)
        if order is None and self.auto_create_orders:
            order = self.add_order(order_id)
        if order is None:
            raise WooError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def set_status(self, order: FakeOrder, status: Any) -> None:
        if not isinstance(status, str) or status not in ORDER_STATUSES:
            raise WooError(
                400,
                "rest_invalid_param",
                "Invalid parameter(s): status",
                {"params": {"status": f"status is not one of {', '.join(sorted(ORDER_STATUSES))}."}},
            )
        if status != order.status:  # WooCommerce fires transitions (and emails) only on a change
            order.status_changes.append((order.status, status))
            order.status = status
            if order.document is not None:
                order.modified = self.clock.now()

    def add_note(self, order: FakeOrder, body: dict[str, Any]) -> FakeNote:
        text = body.get("note")
        if not isinstance(text, str) or not text:
            raise WooError(
                400, "rest_missing_callback_param", "Missing parameter(s): note", {"params": ["note"]}
            )
        self._next_note_id += 1
        note = FakeNote(
            id=self._next_note_id,
            note=text,
            customer_note=bool(body.get("customer_note", False)),
            date_created_gmt=self.clock.now().strftime("%Y-%m-%dT%H:%M:%S"),
        )
        order.notes.append(note)
        return note

    def add_tracking(self, order: FakeOrder, body: dict[str, Any]) -> FakeTracking:
        number = body.get("tracking_number")
        if not isinstance(number, str) or not number.strip():
            raise WooError(
                400,
                "rest_missing_callback_param",
                "Missing parameter(s): tracking_number",
                {"params": ["tracking_number"]},
            )
        shipped = body.get("date_shipped") or self.clock.now().date().isoformat()
        try:
            date.fromisoformat(str(shipped))
        except ValueError:
            raise WooError(400, "rest_invalid_param", "Invalid parameter(s): date_shipped") from None
        provider = str(body.get("tracking_provider") or "")
        custom = str(body.get("custom_tracking_provider") or "")
        custom_link = str(body.get("custom_tracking_link") or "")
        if custom:
            name, link_format = custom, custom_link
        else:
            name, link_format = provider, ""
            for group in self.providers.values():
                for listed, url_format in group.items():
                    if slug(listed) == slug(provider):
                        name, link_format = listed, url_format
        tracking = FakeTracking(
            tracking_id=uuid.uuid4().hex,
            tracking_number=number.strip(),
            tracking_provider="" if custom else provider,
            custom_tracking_provider=custom,
            custom_tracking_link=custom_link,
            date_shipped=str(shipped),
            provider_name=name,
            tracking_link=link_format.replace("%1$s", number.strip()),
        )
        order.trackings.append(tracking)
        return tracking


# -------------------------------------------------------------------------------------------
# HTTP


def create_fake_woocommerce_app(fake: FakeWooCommerce) -> Flask:
    app = Flask("bridge.fakes.woocommerce")
    app.extensions["fake_woocommerce"] = fake

    def handle(route: str, order_id: int | None, work: Any, *, public: bool = False) -> Response:
        with fake.lock:
            status = 0
            try:
                fault = fake.take_fault(route)
                if fault is not None and fault.kind == "status":
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    status = fault.status
                    return _json(
                        {"code": "fake_fault", "message": "Injected fault.", "data": {"status": status}},
                        status,
                        headers,
                    )
                try:
                    if route in TRACKING_ROUTES and not fake.shipment_tracking:
                        raise _no_route()
                    if not public:
                        auth = request.authorization
                        fake.check_auth(
                            request.method, auth.username if auth else None, auth.password if auth else None
                        )
                    body, status, headers = work()
                except WooError as err:
                    body, status, headers = err.body, err.status, {}
                if fault is not None and fault.kind == "accept_then_drop":
                    request.get_data()
                    status = 0
                    mark_drop(request.environ)
                    return Response(status=204)  # discarded by ConnectionDropper
                return _json(body, status, headers)
            finally:
                fake.calls.append(Call(request.method, route, order_id, status))

    def order_of(order_id: int) -> FakeOrder:
        return fake.find_order(order_id)

    def fields_of(data: dict[str, Any]) -> dict[str, Any]:
        wanted = [f.strip() for f in request.args.get("_fields", "").split(",") if f.strip()]
        return {k: v for k, v in data.items() if k in wanted} if wanted else data

    def per_page() -> int:
        try:
            size = int(request.args.get("per_page", "10"))
        except ValueError:
            raise WooError(400, "rest_invalid_param", "Invalid parameter(s): per_page") from None
        if not 1 <= size <= 100:
            raise WooError(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        return size

    @app.get(f"{WC}/orders")
    def list_orders() -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            size = per_page()
            page = _positive(request.args.get("page", "1"), "page")
            found = list(fake.orders.values())
            modified_after = request.args.get("modified_after")
            if modified_after:
                bound = _date_param(modified_after, "modified_after", request.args.get("dates_are_gmt"))
                found = [o for o in found if o.modified is not None and o.modified > bound]
            orderby = request.args.get("orderby", "date")
            if orderby not in ("date", "id", "modified"):
                raise WooError(400, "rest_invalid_param", "Invalid parameter(s): orderby")
            descending = request.args.get("order", "desc") != "asc"

            def key(o: FakeOrder) -> tuple[Any, int]:
                if orderby == "modified":
                    return (o.modified or datetime.min.replace(tzinfo=UTC), o.id)
                return (o.id, o.id)  # date: orders are created in id order here

            found.sort(key=key, reverse=descending)
            window = found[(page - 1) * size : page * size]
            pages = max(1, -(-len(found) // size))
            headers = {"X-WP-Total": str(len(found)), "X-WP-TotalPages": str(pages)}
            return [fields_of(o.to_json()) for o in window], 200, headers

        return handle("list_orders", None, work)

    @app.get(f"{WC}/webhooks")
    def list_webhooks() -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            return [w.to_json() for w in fake.webhooks[: per_page()]], 200, {}

        return handle("list_webhooks", None, work)

    @app.get(f"{WC}/orders/<int:order_id>")
    def get_order(order_id: int) -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            data = order_of(order_id).to_json()
            wanted = [f.strip() for f in request.args.get("_fields", "").split(",") if f.strip()]
            if wanted:
                data = {k: v for k, v in data.items() if k in wanted}
            return data, 200, {}

        return handle("get_order", order_id, work)

    @app.route(f"{WC}/orders/<int:order_id>", methods=["PUT", "PATCH", "POST"])
    def update_order(order_id: int) -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            order = order_of(order_id)
            body = _body()
            if "status" in body:
                fake.set_status(order, body["status"])
            return order.to_json(), 200, {}

        return handle("update_order", order_id, work)

    @app.get(f"{WC}/orders/<int:order_id>/notes")
    def list_notes(order_id: int) -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            wanted = request.args.get("type", "any")
            notes = order_of(order_id).notes
            if wanted == "customer":
                notes = [n for n in notes if n.customer_note]
            elif wanted == "internal":
                notes = [n for n in notes if not n.customer_note]
            return [n.to_json() for n in reversed(notes)], 200, {}  # newest first, as WooCommerce

        return handle("list_notes", order_id, work)

    @app.post(f"{WC}/orders/<int:order_id>/notes")
    def create_note(order_id: int) -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            note = fake.add_note(order_of(order_id), _body())
            location = f"{WC}/orders/{order_id}/notes/{note.id}"
            return note.to_json(), 201, {"Location": location}

        return handle("create_note", order_id, work)

    @app.get(f"{WC}/orders/<int:order_id>/notes/<int:note_id>")
    def get_note(order_id: int, note_id: int) -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            for note in order_of(order_id).notes:
                if note.id == note_id:
                    return note.to_json(), 200, {}
            raise WooError(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")

        return handle("get_note", order_id, work)

    trackings = f"{ST}/orders/<int:order_id>/shipment-trackings"

    @app.get(trackings)
    def list_trackings(order_id: int) -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            return [t.to_json() for t in order_of(order_id).trackings], 200, {}

        return handle("list_trackings", order_id, work)

    @app.post(trackings)
    def create_tracking(order_id: int) -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            tracking = fake.add_tracking(order_of(order_id), _body())
            location = f"{ST}/orders/{order_id}/shipment-trackings/{tracking.tracking_id}"
            return tracking.to_json(), 201, {"Location": location}

        return handle("create_tracking", order_id, work)

    @app.route(f"{trackings}/<tracking_id>", methods=["GET", "DELETE"])
    def one_tracking(order_id: int, tracking_id: str) -> Response:
        route = "delete_tracking" if request.method == "DELETE" else "get_tracking"

        def work() -> tuple[Any, int, dict[str, str]]:
            order = order_of(order_id)
            for tracking in order.trackings:
                if tracking.tracking_id == tracking_id:
                    if request.method == "DELETE":
                        order.trackings.remove(tracking)
                    return tracking.to_json(), 200, {}
            raise WooError(404, "woocommerce_rest_order_invalid_id", "Invalid tracking ID.")

        return handle(route, order_id, work)

    @app.get(f"{ST}/shipment-trackings/providers")
    def list_providers() -> Response:
        return handle("list_providers", None, lambda: (fake.providers, 200, {}), public=True)

    add_catalog_routes(app, fake, handle)

    @app.errorhandler(404)
    def _not_found(_err: Exception) -> Response:
        return _json(_no_route().body, 404)

    @app.errorhandler(405)
    def _bad_method(_err: Exception) -> Response:
        return _json(_no_route().body, 404)  # WordPress answers an unknown method as no route

    app.wsgi_app = ConnectionDropper(app.wsgi_app)  # type: ignore[method-assign]
    return app


# -------------------------------------------------------------------------------------------
# Catalog: products and variations with SKUs and stock (what inventory sync reads and writes)
#
# Routes: `GET /wp-json/wc/v3/products` [list_products] (`sku` exact, comma-separated, and, as
# WooCommerce does, variations too; `per_page` <= 100, `page`, `_fields`; `X-WP-Total` and
# `X-WP-TotalPages` headers), `POST /wp-json/wc/v3/products/batch` [batch_products] and
# `POST /wp-json/wc/v3/products/<id>/variations/batch` [batch_variations] (`update` only, at most
# 100 objects; each answered with the object or an `error`). `stock_quantity` is applied only
# where the product manages stock. Controls: `fake.catalog.add_product`, `add_variation`,
# `sell(sku, n)` (a sale: WooCommerce reduces the stock at once); evidence: `stock_log`.

CATALOG_BATCH_LIMIT = 100


@dataclass
class FakeProduct:
    id: int
    sku: str
    type: str  # simple | variable | variation
    parent_id: int = 0
    manage_stock: bool | str = True  # a variation may say "parent"
    stock_quantity: int | None = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.sku,
            "type": self.type,
            "status": "publish",
            "sku": self.sku,
            "parent_id": self.parent_id,
            "manage_stock": self.manage_stock,
            "stock_quantity": self.stock_quantity if self.manage_stock is True else None,
            "stock_status": "instock" if (self.stock_quantity or 0) > 0 else "outofstock",
        }


@dataclass(frozen=True)
class StockWrite:
    sku: str
    before: int | None
    after: int | None
    at: str
    via: str  # "api" | "sale"


class FakeCatalog:
    """The store's products; routes use it under the fake's lock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.products: dict[int, FakeProduct] = {}
        self.stock_log: list[StockWrite] = []
        self._next_id = 500

    def add_product(
        self, sku: str, stock_quantity: int | None = 0, *, manage_stock: bool = True, type: str = "simple"
    ) -> int:
        self._next_id += 1
        self.products[self._next_id] = FakeProduct(self._next_id, sku, type, 0, manage_stock, stock_quantity)
        return self._next_id

    def add_variation(
        self, parent_id: int, sku: str, stock_quantity: int | None = 0, *, manage_stock: bool | str = True
    ) -> int:
        if parent_id not in self.products:
            raise KeyError(parent_id)
        self._next_id += 1
        variation = FakeProduct(self._next_id, sku, "variation", parent_id, manage_stock, stock_quantity)
        self.products[self._next_id] = variation
        return self._next_id

    def by_sku(self, sku: str) -> FakeProduct:
        return next(p for p in self.products.values() if p.sku == sku)

    def stock(self, sku: str) -> int | None:
        return self.by_sku(sku).stock_quantity

    def sell(self, sku: str, units: int = 1) -> None:
        product = self.by_sku(sku)
        before = product.stock_quantity or 0
        product.stock_quantity = before - units
        self.stock_log.append(StockWrite(sku, before, product.stock_quantity, self._now(), "sale"))

    def search(self, sku_param: str) -> list[FakeProduct]:
        skus = sku_param.split(",")
        if len(skus) > 1:  # WooCommerce also matches the whole string
            skus.append(sku_param)
        wanted = set(skus)
        return sorted((p for p in self.products.values() if p.sku in wanted), key=lambda p: p.id)

    def update(self, row: Any, parent_id: int | None) -> dict[str, Any]:
        product_id = row.get("id") if isinstance(row, dict) else None
        product = self.products.get(product_id) if isinstance(product_id, int) else None
        wrong_kind = product is not None and (
            (parent_id is None and product.type == "variation")
            or (parent_id is not None and product.parent_id != parent_id)
        )
        if product is None or wrong_kind:
            code = (
                "woocommerce_rest_product_variation_invalid_id"
                if parent_id
                else "woocommerce_rest_product_invalid_id"
            )
            return {
                "id": row.get("id") if isinstance(row, dict) else None,
                "error": {"code": code, "message": "Invalid ID.", "data": {"status": 400}},
            }
        if "stock_quantity" in row and product.manage_stock is True:
            quantity = row["stock_quantity"]
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                return {
                    "id": product.id,
                    "error": {
                        "code": "rest_invalid_param",
                        "message": "Invalid parameter(s): stock_quantity",
                        "data": {"status": 400},
                    },
                }
            self.stock_log.append(
                StockWrite(product.sku, product.stock_quantity, quantity, self._now(), "api")
            )
            product.stock_quantity = quantity
        return product.to_json()

    def _now(self) -> str:
        return self.clock.now().isoformat()


def add_catalog_routes(app: Flask, fake: FakeWooCommerce, handle: Any) -> None:
    catalog = fake.catalog

    @app.get(f"{WC}/products")
    def list_products() -> Response:
        def work() -> tuple[Any, int, dict[str, str]]:
            try:
                per_page = int(request.args.get("per_page", 10))
                page = int(request.args.get("page", 1))
            except ValueError:
                raise WooError(400, "rest_invalid_param", "Invalid parameter(s): per_page, page") from None
            if not 1 <= per_page <= 100 or page < 1:
                raise WooError(400, "rest_invalid_param", "Invalid parameter(s): per_page")
            sku = request.args.get("sku", "")
            found = catalog.search(sku) if sku else sorted(catalog.products.values(), key=lambda p: p.id)
            rows = [p.to_json() for p in found[(page - 1) * per_page : page * per_page]]
            wanted = [f.strip() for f in request.args.get("_fields", "").split(",") if f.strip()]
            if wanted:
                rows = [{k: v for k, v in row.items() if k in wanted} for row in rows]
            pages = max(1, -(-len(found) // per_page))
            return rows, 200, {"X-WP-Total": str(len(found)), "X-WP-TotalPages": str(pages)}

        return handle("list_products", None, work)

    def batch(parent_id: int | None) -> tuple[Any, int, dict[str, str]]:
        body = _body()
        updates = body.get("update") or []
        total = sum(len(body.get(k) or []) for k in ("create", "update", "delete"))
        if total > CATALOG_BATCH_LIMIT:
            raise WooError(
                413,
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {CATALOG_BATCH_LIMIT} items for this request.",
            )
        if parent_id is not None and parent_id not in catalog.products:
            raise WooError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return {"update": [catalog.update(row, parent_id) for row in updates]}, 200, {}

    @app.post(f"{WC}/products/batch")
    def batch_products() -> Response:
        return handle("batch_products", None, lambda: batch(None))

    @app.post(f"{WC}/products/<int:product_id>/variations/batch")
    def batch_variations(product_id: int) -> Response:
        return handle("batch_variations", None, lambda: batch(product_id))


def _gmt(value: datetime | None) -> str | None:
    """WooCommerce's `*_gmt` format: UTC without an offset."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else None


def _positive(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise WooError(400, "rest_invalid_param", f"Invalid parameter(s): {name}")
    return number


def _date_param(value: str, name: str, gmt: str | None) -> datetime:
    """An ISO 8601 query date; without an offset it is the site's time, or UTC with
    `dates_are_gmt=true` (the fake's site runs on UTC either way)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WooError(400, "rest_invalid_param", f"Invalid parameter(s): {name}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _no_route() -> WooError:
    return WooError(404, "rest_no_route", "No route was found matching the URL and request method.")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise WooError(400, "rest_invalid_json", "Invalid JSON body passed.")
    return data


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def main(argv: list[str] | None = None) -> None:
    """`python -m bridge.fakes.woocommerce [--port 8702]`: the demo's store on loopback."""
    import argparse

    from ..amazon.simulator.server import serve_in_thread

    parser = argparse.ArgumentParser(
        description="Serve a fake WooCommerce store (REST v3 + Shipment Tracking)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--consumer-key", default="ck_demo")
    parser.add_argument("--consumer-secret", default="cs_demo")
    args = parser.parse_args(argv)
    fake = FakeWooCommerce(args.consumer_key, args.consumer_secret, auto_create_orders=True)
    server = serve_in_thread(create_fake_woocommerce_app(fake), args.host, args.port)
    print(f"fake WooCommerce on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
