"""What the push-back stage hands a storefront, and what every platform pusher shares.

A pusher turns one Amazon package into one storefront fulfilment (or a note). Exactly-once is
built from three pieces: the push-back stage calls `push_shipment` at most once per attempt for a
package; the pusher calls its `before_write` right before the first request that could create
something, and the stage records that durably; and every later run of a push so marked asks
`find_existing` what the storefront already has before pushing again. So a pusher must be able
to recognise its own earlier fulfilment (by tracking number, or the platform's idempotency key).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from .. import metrics
from ..channels import Channel, unsafe_url_reason
from ..clock import Clock

PUSH_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=5.0)
MAX_RETRY_AFTER_S = 3600.0
USER_AGENT = "fba-bridge/0.1 (+https://github.com/fba-bridge)"


@dataclass(frozen=True)
class PushLine:
    """A storefront order line (its storefront id) and how many of it this package holds."""

    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ShipmentPush:
    order_external_id: str
    display_id: str
    package_key: str  # stable per Amazon package, e.g. "shop-a-1001:1234567"
    carrier: str  # Amazon's carrier code (AMZL_US, UPS); pushers name it with storefronts/carriers.py
    tracking_number: str
    tracking_url: str | None
    lines: tuple[PushLine, ...]
    shipped_at: datetime  # when Amazon shipped the package (its shipment's shipping date)
    notify_customer: bool = True
    # The storefront's fulfilment units (Shopify fulfillment orders) the Amazon order covers.
    fulfillment_units: tuple[str, ...] = ()
    all_shipped: bool = False  # after this package nothing of the order is left to ship, by anyone
    # Amazon is done with the order, and these units were not shipped by Amazon (a SKU it does not
    # stock, a line added later): what the merchant still has to send. Set on the last package.
    remaining: tuple[PushLine, ...] = ()


@dataclass(frozen=True)
class OrderNote:
    """A note for the merchant (and optionally the customer) on the storefront order."""

    order_external_id: str
    note_key: str  # stable id so a retried note is recognisable
    text: str
    customer_visible: bool = False


@dataclass(frozen=True)
class NotPushed:
    """Units of a package the storefront no longer holds open (fulfilled or closed by someone else)."""

    line_id: str
    quantity: int
    why: str


@dataclass(frozen=True)
class PushResult:
    storefront_ref: str  # the storefront's id for what was created (fulfilment id, note id, event id)
    details: dict[str, Any] = field(default_factory=dict)
    # What of the package could not be pushed (the rest was); the caller notes it on the order.
    not_pushed: tuple[NotPushed, ...] = ()


class PushError(Exception):
    """A push that did not succeed. `ambiguous`: the storefront may have acted anyway."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = True,
        ambiguous: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        self.status = status


#: `PushError.code` of a pusher whose storefront refused the package's tracking URL (and nothing
#: else): the push-back stage sends the tracking number and carrier again without the URL.
INVALID_TRACKING_URL = "invalid_tracking_url"


BeforeWrite = Callable[[], None]


class StorefrontRejected(PushError):
    """Credentials revoked or scopes missing (401/403): an operator has to act; retrying won't help soon."""


class StorefrontPusher(Protocol):
    def find_existing(self, push: ShipmentPush) -> PushResult | None:
        """The storefront's record of this package if an earlier attempt created it."""
        ...

    def push_shipment(self, push: ShipmentPush, *, before_write: BeforeWrite | None = None) -> PushResult:
        """Create the package's fulfilment. `before_write` is called right before the first
        request that could create something at the storefront (the caller records, durably, that
        from then on an earlier attempt may have landed)."""
        ...

    def add_note(self, note: OrderNote) -> PushResult: ...

    def check_credentials(self) -> bool:
        """Ask the storefront, read-only, whether it accepts our credentials now: raises
        `StorefrontRejected` if not (or another `PushError` when it cannot tell); returns False
        when the platform has nothing to ask without pushing (the generic channel)."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------
# Outbound HTTP shared by every pusher


def _resolved_addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def check_destination(url: str, *, allow_local: bool) -> None:
    """Refuse URLs that are not https or that resolve to private, loopback or metadata addresses.

    Checked when the request is made (not only at start-up), so a DNS change cannot point the
    bridge at an internal service.
    """
    reason = unsafe_url_reason(url, allow_local=allow_local)
    if reason is None and not allow_local:
        host = urlsplit(url).hostname or ""
        try:
            addresses = _resolved_addresses(host)
        except OSError:
            raise PushError("dns", f"cannot resolve the storefront host {host!r}", retryable=True) from None
        if any(not address.is_global for address in addresses):
            reason = "resolves to a private, loopback, link-local or metadata address"
    if reason:
        raise PushError("unsafe_url", f"refusing to call {url.split('?', 1)[0]}: {reason}", retryable=False)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))


class StorefrontHttp:
    """httpx for storefront calls: explicit timeouts, no redirects, destination checks, and every
    failure mapped to a `PushError` that says whether a retry may help and whether it is ambiguous.
    """

    def __init__(self, channel: Channel, clock: Clock, transport: httpx.BaseTransport | None = None) -> None:
        self.channel = channel
        self.clock = clock
        self.allow_local = channel.storefront.local
        self._client = httpx.Client(
            timeout=PUSH_TIMEOUT,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    def request(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        check_destination(url, allow_local=self.allow_local)
        try:
            response = self._client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            metrics.storefront_call(self.channel.id, self.channel.platform, None)
            raise PushError("unreachable", f"storefront not reachable ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            metrics.storefront_call(self.channel.id, self.channel.platform, None)
            raise PushError(
                "no_answer", f"no answer from the storefront ({type(exc).__name__})", ambiguous=not idempotent
            ) from None
        metrics.storefront_call(self.channel.id, self.channel.platform, response.status_code)
        self._raise_for(response, idempotent=idempotent)
        return response

    def _raise_for(self, response: httpx.Response, *, idempotent: bool) -> None:
        status = response.status_code
        if status < 300:
            return
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
        if 300 <= status < 400:
            raise PushError(
                "redirect",
                f"the storefront answered a redirect ({status}); update the configured URL",
                retryable=False,
                status=status,
            )
        if status in (401, 403):
            raise StorefrontRejected(
                "rejected",
                f"the storefront refused our credentials ({status}); check the "
                f"channel's storefront credentials and scopes",
                retryable=False,
                status=status,
            )
        if status == 429:
            raise PushError(
                "throttled", "the storefront throttled us (429)", retry_after=retry_after, status=status
            )
        if status >= 500:
            raise PushError(
                "server_error",
                f"the storefront failed ({status})",
                retry_after=retry_after,
                ambiguous=not idempotent,
                status=status,
            )
        raise PushError(
            "refused", f"the storefront refused the request ({status})", retryable=False, status=status
        )

    def close(self) -> None:
        self._client.close()
