"""The SP-API client's HTTP behaviour against a scripted fake Amazon (httpx.MockTransport).

Time is a ManualClock: backoff, Retry-After, token expiry and circuit cool-downs advance it
instead of sleeping, so the whole file runs in well under a second of real time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bridge.amazon.auth import LwaAuth
from bridge.amazon.errors import (
    AccessDenied,
    CircuitOpen,
    CredentialsRejected,
    InsecureEndpoint,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    ServerError,
    SpApiError,
    TransportError,
)
from bridge.amazon.limiter import MemoryBuckets
from bridge.amazon.models import (
    Address,
    CreateFulfillmentOrderItem,
    CreateFulfillmentOrderRequest,
    FulfillmentOrderStatus,
    Money,
    ShippingSpeedCategory,
)
from bridge.amazon.outbound import FulfillmentOutbound20200701, outbound_client
from bridge.amazon.spapi import (
    CircuitBreaker,
    CircuitPolicy,
    RetryPolicy,
    SpApiClient,
    base_url,
    parse_retry_after,
)
from bridge.channels import AmazonAccount
from bridge.clock import ManualClock
from bridge.settings import Secret

REFRESH_TOKEN = "Atzr|refresh-token-SECRET"
CLIENT_SECRET = "amzn1.oa2-cs.v1.client-SECRET"
CUSTOMER_NAME = "Jane Quincy Customer"
CUSTOMER_STREET = "1 Hidden Lane"
CUSTOMER_PHONE = "+1 206 555 0100"
ORDER_PATH = "/fba/outbound/2020-07-01/fulfillmentOrders"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def envelope(status: int, code: str, message: str, details: str = "", **headers: str) -> httpx.Response:
    headers.setdefault("x-amzn-RequestId", f"req-{status}-{code}")
    return httpx.Response(
        status, json={"errors": [{"code": code, "message": message, "details": details}]}, headers=headers
    )


def order_payload(status: str = "Planning") -> dict[str, Any]:
    return {
        "payload": {
            "fulfillmentOrder": {
                "sellerFulfillmentOrderId": "SO-1",
                "marketplaceId": "ATVPDKIKX0DER",
                "displayableOrderId": "1001",
                "displayableOrderDate": "2026-11-23T12:00:00Z",
                "displayableOrderComment": "Thanks",
                "shippingSpeedCategory": "Standard",
                "destinationAddress": {
                    "name": CUSTOMER_NAME,
                    "addressLine1": CUSTOMER_STREET,
                    "countryCode": "US",
                    "postalCode": "98101",
                },
                "receivedDate": "2026-11-23T12:00:01Z",
                "fulfillmentOrderStatus": status,
                "statusUpdatedDate": "2026-11-23T12:05:00Z",
                "someFieldAmazonAddsLater": {"nested": True},
            },
            "fulfillmentOrderItems": [
                {
                    "sellerSku": "SKU-1",
                    "sellerFulfillmentOrderItemId": "1",
                    "quantity": 2,
                    "cancelledQuantity": 0,
                    "unfulfillableQuantity": 0,
                },
            ],
            "fulfillmentShipments": [
                {
                    "amazonShipmentId": "DchKfcZ9N",
                    "fulfillmentCenterId": "RNO1",
                    "fulfillmentShipmentStatus": "SHIPPED",
                    "shippingDate": "2026-11-24T08:00:00Z",
                    "fulfillmentShipmentItem": [
                        {
                            "sellerSku": "SKU-1",
                            "sellerFulfillmentOrderItemId": "1",
                            "quantity": 2,
                            "packageNumber": 7,
                        }
                    ],
                    "fulfillmentShipmentPackage": [
                        {
                            "packageNumber": 7,
                            "carrierCode": "UPS",
                            "trackingNumber": "1Z999",
                            "estimatedArrivalDate": "2026-11-26T20:00:00Z",
                        }
                    ],
                },
            ],
            "returnItems": [],
            "returnAuthorizations": [],
        }
    }


class FakeAmazon:
    """LWA plus Fulfillment Outbound, answering API calls from a script (then `default`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: deque[Reply] = deque()
        self.default: Reply = lambda request: httpx.Response(
            200, json=order_payload(), headers={"x-amzn-RequestId": "req-ok"}
        )
        self.api_requests: list[httpx.Request] = []
        self.token_requests: list[dict[str, list[str]]] = []
        self.token_reply: Callable[[], httpx.Response] | None = None
        self.issued = 0

    def then(self, *replies: Reply) -> FakeAmazon:
        self.script.extend(replies)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.amazon.com":
            return self._token(request)
        with self.lock:
            self.api_requests.append(request)
            reply = self.script.popleft() if self.script else self.default
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.token_requests.append(parse_qs(request.content.decode()))
        if self.token_reply is not None:
            return self.token_reply()
        with self.lock:
            self.issued += 1
            token = f"Atza|access-{self.issued}"
        return httpx.Response(200, json={"access_token": token, "token_type": "bearer", "expires_in": 3600})

    @property
    def tokens_used(self) -> list[str | None]:
        return [r.headers.get("x-amz-access-token") for r in self.api_requests]


def make_account(**overrides: Any) -> AmazonAccount:
    values: dict[str, Any] = {
        "id": "acct-1",
        "region": "na",
        "seller_id": "A1SELLER",
        "client_id": Secret("amzn1.application-oa2-client.abc"),
        "client_secret": Secret(CLIENT_SECRET),
        "refresh_token": Secret(REFRESH_TOKEN),
    }
    values.update(overrides)
    return AmazonAccount(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


@pytest.fixture
def amazon() -> FakeAmazon:
    return FakeAmazon()


@pytest.fixture
def buckets(clock: ManualClock) -> MemoryBuckets:
    return MemoryBuckets(clock)


def make_client(
    amazon: FakeAmazon,
    clock: ManualClock,
    buckets: MemoryBuckets,
    *,
    retry: RetryPolicy | None = None,
    circuit: CircuitPolicy | None = None,
    account: AmazonAccount | None = None,
) -> FulfillmentOutbound20200701:
    client = SpApiClient(
        account or make_account(),
        clock,
        buckets,
        transport=httpx.MockTransport(amazon),
        retry=retry or RetryPolicy(max_attempts=5),
        circuit=circuit,
    )
    return FulfillmentOutbound20200701(client)


@pytest.fixture
def mcf(amazon: FakeAmazon, clock: ManualClock, buckets: MemoryBuckets) -> FulfillmentOutbound20200701:
    return make_client(amazon, clock, buckets)


def create_request() -> CreateFulfillmentOrderRequest:
    return CreateFulfillmentOrderRequest(
        seller_fulfillment_order_id="SO-1",
        displayable_order_id="1001",
        displayable_order_date=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        displayable_order_comment="Thank you for your order",
        shipping_speed_category=ShippingSpeedCategory.STANDARD,
        destination_address=Address(
            name=CUSTOMER_NAME,
            address_line1=CUSTOMER_STREET,
            country_code="US",
            postal_code="98101",
            city="Seattle",
            phone=CUSTOMER_PHONE,
        ),
        items=[CreateFulfillmentOrderItem("SKU-1", "1", 2, per_unit_price=Money("USD", Decimal("9.50")))],
        notification_emails=["jane@example.com"],
    )


def elapsed(clock: ManualClock, since: float) -> float:
    return clock.monotonic() - since


# --------------------------------------------------------------------------------------------
# 429 and Retry-After


def test_429_storm_waits_exactly_as_long_as_retry_after_seconds_says(mcf, amazon, clock) -> None:
    amazon.then(*[envelope(429, "QuotaExceeded", "You exceeded your quota.", **{"Retry-After": "2"})] * 3)
    start = clock.monotonic()
    order = mcf.get("SO-1")
    assert order.seller_fulfillment_order_id == "SO-1"
    assert len(amazon.api_requests) == 4
    assert 6.0 <= elapsed(clock, start) <= 6.0 + 3 * 0.2 + 0.01


def test_429_with_http_date_retry_after_waits_until_that_date(mcf, amazon, clock) -> None:
    when = format_datetime(clock.now() + timedelta(seconds=10), usegmt=True)
    amazon.then(envelope(429, "QuotaExceeded", "Slow down.", **{"Retry-After": when}))
    start = clock.monotonic()
    mcf.get("SO-1")
    assert 10.0 <= elapsed(clock, start) <= 11.0


def test_retry_after_beyond_the_cap_is_handed_to_the_caller_instead_of_slept(mcf, amazon, clock) -> None:
    amazon.then(envelope(429, "QuotaExceeded", "Come back later.", **{"Retry-After": "3600"}))
    start = clock.monotonic()
    with pytest.raises(QuotaExceeded) as info:
        mcf.get("SO-1")
    assert info.value.retry_after == 3600
    assert info.value.retryable and not info.value.ambiguous
    assert len(amazon.api_requests) == 1
    assert elapsed(clock, start) == 0


def test_429_without_retry_after_backs_off_and_drains_the_local_bucket(mcf, amazon, clock, buckets) -> None:
    amazon.then(envelope(429, "QuotaExceeded", "Slow down."))
    mcf.get("SO-1")
    assert len(amazon.api_requests) == 2
    assert buckets.peek("acct-1", "getFulfillmentOrder").tokens < 29


def test_429_storm_that_never_ends_raises_quota_exceeded_with_the_request_id(amazon, clock, buckets) -> None:
    mcf = make_client(amazon, clock, buckets, retry=RetryPolicy(max_attempts=4))
    amazon.default = envelope(429, "QuotaExceeded", "Nope.", **{"Retry-After": "1"})
    with pytest.raises(QuotaExceeded) as info:
        mcf.get("SO-1")
    assert len(amazon.api_requests) == 4
    assert info.value.request_id == "req-429-QuotaExceeded"
    assert info.value.code == "QuotaExceeded"


def test_429_on_a_create_is_retried_because_amazon_never_ran_it(mcf, amazon) -> None:
    amazon.then(
        envelope(429, "QuotaExceeded", "Slow down.", **{"Retry-After": "1"}), httpx.Response(200, json={})
    )
    mcf.create(create_request())
    assert len(amazon.api_requests) == 2


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now) == 30
    assert parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


# --------------------------------------------------------------------------------------------
# 5xx, timeouts and ambiguity


def test_5xx_on_a_read_is_retried_until_it_succeeds(mcf, amazon, clock) -> None:
    amazon.then(
        envelope(500, "InternalFailure", "Oops."),
        envelope(503, "ServiceUnavailable", "Busy."),
        envelope(502, "BadGateway", "Gateway."),
        envelope(504, "GatewayTimeout", "Slow."),
    )
    start = clock.monotonic()
    assert mcf.get("SO-1").status == FulfillmentOrderStatus.PLANNING
    assert len(amazon.api_requests) == 5
    assert 0 < elapsed(clock, start) <= 1 + 2 + 4 + 8


def test_backoff_is_capped(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon,
        clock,
        buckets,
        retry=RetryPolicy(max_attempts=8, base_delay=1, max_delay=3, max_elapsed=1000),
        circuit=CircuitPolicy(failure_threshold=100),
    )
    amazon.then(*[envelope(500, "InternalFailure", "Oops.")] * 7)
    start = clock.monotonic()
    mcf.get("SO-1")
    assert elapsed(clock, start) <= 1 + 2 + 3 * 5


def test_5xx_on_a_create_is_ambiguous_and_not_repeated(mcf, amazon) -> None:
    amazon.then(envelope(500, "InternalFailure", "Oops."))
    with pytest.raises(ServerError) as info:
        mcf.create(create_request())
    assert info.value.ambiguous
    assert "read the order back" in str(info.value)
    assert len(amazon.api_requests) == 1


def test_create_may_opt_in_to_retrying_ambiguous_failures(mcf, amazon) -> None:
    amazon.then(envelope(503, "ServiceUnavailable", "Busy."), httpx.Response(200, json={}))
    mcf.create(create_request(), retry_ambiguous=True)
    assert len(amazon.api_requests) == 2


def test_read_timeout_on_a_get_is_retried(mcf, amazon) -> None:
    amazon.then(httpx.ReadTimeout("timed out"))
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"
    assert len(amazon.api_requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
)
def test_lost_answer_on_a_create_is_ambiguous(mcf, amazon, failure: Exception) -> None:
    amazon.then(failure)
    with pytest.raises(TransportError) as info:
        mcf.create(create_request())
    assert info.value.ambiguous and info.value.retryable
    assert len(amazon.api_requests) == 1


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ConnectTimeout("timed out")])
def test_unsent_create_is_not_ambiguous_and_is_retried(mcf, amazon, failure: Exception) -> None:
    amazon.then(failure, httpx.Response(200, json={}))
    mcf.create(create_request())
    assert len(amazon.api_requests) == 2


@pytest.mark.parametrize("call", ["update", "cancel", "create_return"])
def test_every_non_idempotent_operation_is_ambiguous_after_a_timeout(mcf, amazon, call: str) -> None:
    from bridge.amazon.models import CreateFulfillmentReturnRequest, UpdateFulfillmentOrderRequest

    amazon.then(httpx.ReadTimeout("timed out"))
    with pytest.raises(TransportError) as info:
        if call == "update":
            mcf.update("SO-1", UpdateFulfillmentOrderRequest(displayable_order_comment="x"))
        elif call == "cancel":
            mcf.cancel("SO-1")
        else:
            mcf.create_return("SO-1", CreateFulfillmentReturnRequest(items=[]))
    assert info.value.ambiguous
    assert len(amazon.api_requests) == 1


def test_transport_errors_give_up_after_max_attempts(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon,
        clock,
        buckets,
        retry=RetryPolicy(max_attempts=3),
        circuit=CircuitPolicy(failure_threshold=100),
    )
    amazon.default = httpx.ConnectError("refused")
    with pytest.raises(TransportError) as info:
        mcf.get("SO-1")
    assert not info.value.ambiguous
    assert len(amazon.api_requests) == 3


# --------------------------------------------------------------------------------------------
# Non-retryable answers


def test_400_is_not_retried_and_carries_amazons_code(mcf, amazon) -> None:
    amazon.then(
        envelope(
            400,
            "InvalidInput",
            f"Value '{CUSTOMER_NAME}' for 'destinationAddress.name' is invalid",
            details="postal code 98101-1234 rejected",
        )
    )
    with pytest.raises(InvalidInput) as info:
        mcf.create(create_request())
    exc = info.value
    assert len(amazon.api_requests) == 1
    assert (exc.code, exc.status, exc.request_id) == ("InvalidInput", 400, "req-400-InvalidInput")
    assert "destinationAddress.name" in str(exc)
    assert CUSTOMER_NAME not in str(exc) and CUSTOMER_NAME not in exc.details
    assert "98101" not in exc.details


def test_404_is_not_found_and_not_retried(mcf, amazon) -> None:
    amazon.then(envelope(404, "NotFound", "The requested resource does not exist."))
    with pytest.raises(NotFound):
        mcf.get("SO-404")
    assert len(amazon.api_requests) == 1


def test_403_access_denied_without_expiry_is_not_refreshed_or_retried(mcf, amazon) -> None:
    amazon.then(envelope(403, "Unauthorized", "Access to requested resource is denied."))
    with pytest.raises(AccessDenied) as info:
        mcf.get("SO-1")
    assert "Amazon Fulfillment role" in str(info.value)
    assert len(amazon.api_requests) == 1
    assert len(amazon.token_requests) == 1


def test_local_validation_rejects_bad_order_ids_without_a_request(mcf, amazon) -> None:
    from dataclasses import replace

    with pytest.raises(InvalidInput) as info:
        mcf.create(replace(create_request(), seller_fulfillment_order_id="has space+plus"))
    assert "sellerFulfillmentOrderId" in str(info.value)
    assert amazon.api_requests == []


# --------------------------------------------------------------------------------------------
# Circuit breaker


def test_circuit_opens_after_consecutive_failures_then_half_opens_and_closes(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon,
        clock,
        buckets,
        retry=RetryPolicy(max_attempts=1),
        circuit=CircuitPolicy(failure_threshold=3, cool_down=30),
    )
    amazon.then(*[envelope(503, "ServiceUnavailable", "Busy.")] * 3)
    for _ in range(3):
        with pytest.raises(ServerError):
            mcf.get("SO-1")
    assert mcf.client.breaker_for("getFulfillmentOrder").state == "open"

    with pytest.raises(CircuitOpen) as info:
        mcf.get("SO-1")
    assert len(amazon.api_requests) == 3  # failed fast, nothing sent
    assert info.value.retry_after == pytest.approx(30)
    assert not info.value.ambiguous

    clock.advance(29)
    with pytest.raises(CircuitOpen):
        mcf.get("SO-1")
    clock.advance(1)
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"  # the probe
    assert mcf.client.breaker_for("getFulfillmentOrder").state == "closed"
    mcf.get("SO-1")
    assert len(amazon.api_requests) == 5


def test_a_failed_probe_reopens_the_circuit(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon,
        clock,
        buckets,
        retry=RetryPolicy(max_attempts=1),
        circuit=CircuitPolicy(failure_threshold=2, cool_down=10),
    )
    amazon.default = httpx.ConnectError("refused")
    for _ in range(2):
        with pytest.raises(TransportError):
            mcf.get("SO-1")
    clock.advance(10)
    with pytest.raises(TransportError):
        mcf.get("SO-1")  # the probe fails
    with pytest.raises(CircuitOpen):
        mcf.get("SO-1")
    assert len(amazon.api_requests) == 3


def test_4xx_answers_do_not_count_as_failures(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon,
        clock,
        buckets,
        retry=RetryPolicy(max_attempts=1),
        circuit=CircuitPolicy(failure_threshold=2, cool_down=10),
    )
    amazon.then(
        envelope(500, "InternalFailure", "x"),
        envelope(404, "NotFound", "x"),
        envelope(500, "InternalFailure", "x"),
    )
    for error in (ServerError, NotFound, ServerError):
        with pytest.raises(error):
            mcf.get("SO-1")
    assert mcf.client.breaker_for("getFulfillmentOrder").state == "closed"


def test_half_open_lets_exactly_one_probe_through(clock) -> None:
    breaker = CircuitBreaker(clock, CircuitPolicy(failure_threshold=1, cool_down=5), "acct")
    breaker.failure()
    clock.advance(5)
    assert breaker.acquire() is True
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    breaker.abandon(True)  # the probe never reached Amazon (e.g. no token)
    assert breaker.acquire() is True
    breaker.success()
    assert breaker.acquire() is False


def test_circuit_open_is_not_retried_inside_the_call(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon,
        clock,
        buckets,
        retry=RetryPolicy(max_attempts=5),
        circuit=CircuitPolicy(failure_threshold=2, cool_down=60),
    )
    amazon.default = envelope(503, "ServiceUnavailable", "Busy.")
    start = clock.monotonic()
    with pytest.raises(CircuitOpen):
        mcf.get("SO-1")
    assert len(amazon.api_requests) == 2
    assert elapsed(clock, start) < 60


# --------------------------------------------------------------------------------------------
# Login with Amazon


def test_token_is_fetched_once_and_reused_until_shortly_before_expiry(mcf, amazon, clock) -> None:
    mcf.get("SO-1")
    mcf.get("SO-1")
    assert len(amazon.token_requests) == 1
    form = amazon.token_requests[0]
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == [REFRESH_TOKEN]
    clock.advance(3600 - 300 + 1)
    mcf.get("SO-1")
    assert len(amazon.token_requests) == 2
    assert amazon.tokens_used == ["Atza|access-1", "Atza|access-1", "Atza|access-2"]


def test_twenty_threads_share_one_token_refresh(amazon, clock, buckets) -> None:
    mcf = make_client(amazon, clock, buckets)
    all_waiting = threading.Event()
    started: list[int] = []
    lock = threading.Lock()

    def slow_token() -> httpx.Response:
        # Hold the one refresh open until every thread has started and had a moment to queue
        # behind it; without the lock each of them would send its own token request meanwhile.
        all_waiting.wait(timeout=5)
        threading.Event().wait(0.05)
        with lock:
            amazon.issued += 1
        return httpx.Response(200, json={"access_token": "Atza|shared", "expires_in": 3600})

    amazon.token_reply = slow_token
    errors: list[BaseException] = []

    def worker() -> None:
        with lock:
            started.append(1)
            if len(started) == 20:
                all_waiting.set()
        try:
            mcf.get("SO-1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert len(amazon.token_requests) == 1
    assert len(amazon.api_requests) == 20
    assert set(amazon.tokens_used) == {"Atza|shared"}


def test_expired_token_403_forces_one_refresh_then_succeeds(mcf, amazon) -> None:
    amazon.then(
        envelope(
            403,
            "Unauthorized",
            "Access to requested resource is denied.",
            details="The access token you provided has expired.",
        )
    )
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"
    assert len(amazon.token_requests) == 2
    assert amazon.tokens_used == ["Atza|access-1", "Atza|access-2"]


def test_expired_token_refresh_happens_at_most_once_per_call(mcf, amazon) -> None:
    expired = envelope(403, "Unauthorized", "The access token you provided has expired.")
    amazon.then(expired, expired, expired)
    with pytest.raises(AccessDenied):
        mcf.get("SO-1")
    assert len(amazon.token_requests) == 2
    assert len(amazon.api_requests) == 2


@pytest.mark.parametrize(
    ("error", "status", "hint"),
    [
        ("invalid_grant", 400, "Re-authorise the app in Seller Central"),
        ("invalid_client", 401, "expire every 180 days"),
    ],
)
def test_rejected_credentials_park_the_account_without_hammering_lwa(
    mcf, amazon, error, status, hint
) -> None:
    amazon.token_reply = lambda: httpx.Response(status, json={"error": error, "error_description": "nope"})
    with pytest.raises(CredentialsRejected) as info:
        mcf.get("SO-1")
    assert info.value.code == error
    assert hint in str(info.value)
    assert not info.value.retryable
    with pytest.raises(CredentialsRejected):
        mcf.get("SO-1")
    assert len(amazon.token_requests) == 1
    assert amazon.api_requests == []

    amazon.token_reply = None  # the operator fixed the credentials
    mcf.client.auth.reset()
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"


def test_missing_credentials_are_rejected_without_a_request(amazon, clock, buckets) -> None:
    mcf = make_client(amazon, clock, buckets, account=make_account(refresh_token=Secret("")))
    with pytest.raises(CredentialsRejected) as info:
        mcf.get("SO-1")
    assert info.value.code == "missing_credentials"
    assert amazon.token_requests == []


def test_token_endpoint_outage_is_retried_even_for_a_create(mcf, amazon) -> None:
    replies = deque([httpx.Response(503, json={}), None])

    def flaky() -> httpx.Response:
        reply = replies.popleft()
        return reply or httpx.Response(200, json={"access_token": "Atza|late", "expires_in": 3600})

    amazon.token_reply = flaky
    amazon.then(httpx.Response(200, json={}))
    mcf.create(create_request())
    assert len(amazon.token_requests) == 2
    assert len(amazon.api_requests) == 1


# --------------------------------------------------------------------------------------------
# Endpoints, headers, logs, parsing


def test_requests_carry_the_token_and_a_descriptive_user_agent(mcf, amazon) -> None:
    mcf.get("SO/1 x")
    request = amazon.api_requests[0]
    assert request.headers["x-amz-access-token"] == "Atza|access-1"
    assert request.headers["User-Agent"].startswith("fba-bridge/")
    assert "(Language=Python/3." in request.headers["User-Agent"]
    assert request.url.raw_path.decode() == ORDER_PATH + "/SO%2F1%20x"
    assert request.url.host == "sellingpartnerapi-na.amazon.com"


def test_endpoints_by_region_sandbox_and_override() -> None:
    assert base_url(make_account(region="eu")) == "https://sellingpartnerapi-eu.amazon.com"
    assert (
        base_url(make_account(region="fe", sandbox=True)) == "https://sandbox.sellingpartnerapi-fe.amazon.com"
    )
    assert base_url(make_account(endpoint="https://proxy.example/")) == "https://proxy.example"
    assert base_url(make_account(endpoint="http://sim", local_simulator=True)) == "http://sim"
    with pytest.raises(InsecureEndpoint):
        base_url(make_account(endpoint="http://sim"))


def test_plain_http_token_endpoint_is_refused_unless_local_simulator(clock) -> None:
    with httpx.Client() as http:
        with pytest.raises(InsecureEndpoint):
            LwaAuth(make_account(token_endpoint="http://sim/auth/o2/token"), clock, http)
        LwaAuth(make_account(token_endpoint="http://sim/auth/o2/token", local_simulator=True), clock, http)


def test_local_simulator_account_routes_to_the_given_transport(amazon, clock, buckets) -> None:
    def sim(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/o2/token":
            return httpx.Response(200, json={"access_token": "Atza|sim", "expires_in": 3600})
        assert request.url.host == "sim"
        return httpx.Response(200, json=order_payload())

    account = make_account(
        endpoint="http://sim", token_endpoint="http://sim/auth/o2/token", local_simulator=True
    )
    mcf = outbound_client(account, clock, buckets, transport=httpx.MockTransport(sim))
    assert mcf.get("SO-1").status == "Planning"
    mcf.close()


def test_rate_limit_header_updates_the_bucket(mcf, amazon, buckets) -> None:
    amazon.then(httpx.Response(200, json=order_payload(), headers={"x-amzn-RateLimit-Limit": "5.0"}))
    mcf.get("SO-1")
    assert buckets.peek("acct-1", "getFulfillmentOrder").rate == 5.0


def test_every_call_is_logged_with_request_id_but_no_token_or_personal_data(mcf, amazon, caplog) -> None:
    amazon.then(
        envelope(503, "ServiceUnavailable", "Busy.", **{"x-amzn-RequestId": "rid-first"}),
        httpx.Response(200, json=order_payload(), headers={"x-amzn-RequestId": "rid-second"}),
    )
    with caplog.at_level(logging.DEBUG, logger="bridge.amazon"):
        mcf.get("SO-1")
        amazon.then(envelope(400, "InvalidInput", f"Bad address for {CUSTOMER_NAME}"))
        with pytest.raises(InvalidInput):
            mcf.create(create_request())
    lines = [r.getMessage() for r in caplog.records]
    calls = [line for line in lines if line.startswith("spapi getFulfillmentOrder status=")]
    assert len(calls) == 2
    assert "status=503" in calls[0] and "request_id=rid-first" in calls[0] and "attempt=1" in calls[0]
    assert "status=200" in calls[1] and "request_id=rid-second" in calls[1] and "attempt=2" in calls[1]
    assert all("latency_ms=" in line for line in calls)
    everything = " ".join(lines + [repr(r.__dict__) for r in caplog.records])
    for secret in (
        "Atza|access-1",
        REFRESH_TOKEN,
        CLIENT_SECRET,
        CUSTOMER_NAME,
        CUSTOMER_STREET,
        CUSTOMER_PHONE,
        "jane@example.com",
        "SO-1",
    ):
        assert secret not in everything


def test_models_and_requests_keep_personal_data_out_of_repr() -> None:
    text = repr(create_request())
    for pii in (CUSTOMER_NAME, CUSTOMER_STREET, CUSTOMER_PHONE, "jane@example.com"):
        assert pii not in text


def test_create_sends_amazons_field_names(mcf, amazon) -> None:
    import json

    amazon.then(httpx.Response(200, json={}))
    mcf.create(create_request())
    body = json.loads(amazon.api_requests[0].content)
    assert body["sellerFulfillmentOrderId"] == "SO-1"
    assert body["displayableOrderDate"] == "2026-11-23T12:00:00Z"
    assert body["destinationAddress"]["addressLine1"] == CUSTOMER_STREET
    assert body["items"] == [
        {
            "sellerSku": "SKU-1",
            "sellerFulfillmentOrderItemId": "1",
            "quantity": 2,
            "perUnitPrice": {"currencyCode": "USD", "value": "9.50"},
        }
    ]
    assert "fulfillmentAction" not in body


def test_get_parses_tolerantly(mcf, amazon) -> None:
    amazon.then(httpx.Response(200, json=order_payload(status="PROCESSING")))
    order = mcf.get("SO-1")
    assert order.status == FulfillmentOrderStatus.PROCESSING
    assert order.items[0].quantity == 2
    package = order.packages[0]
    assert (package.package_number, package.carrier_code, package.tracking_number) == (7, "UPS", "1Z999")
    assert order.shipments[0].status == "SHIPPED"
    assert package.estimated_arrival_date == datetime(2026, 11, 26, 20, tzinfo=UTC)


def test_malformed_payload_is_an_unexpected_response(mcf, amazon) -> None:
    amazon.then(httpx.Response(200, json={"payload": {"fulfillmentOrder": "not an object"}}))
    with pytest.raises(SpApiError) as info:
        mcf.get("SO-1")
    assert info.value.code == "UnexpectedResponse"


def test_list_changed_follows_next_token_through_every_page(mcf, amazon) -> None:
    def page(orders: list[str], token: str | None) -> httpx.Response:
        payload: dict[str, Any] = {
            "fulfillmentOrders": [
                {
                    "sellerFulfillmentOrderId": o,
                    "fulfillmentOrderStatus": "Complete",
                    "statusUpdatedDate": "2026-11-23T12:00:00Z",
                }
                for o in orders
            ]
        }
        if token:
            payload["nextToken"] = token
        return httpx.Response(200, json={"payload": payload})

    amazon.then(page(["A", "B"], "t1"), page(["C"], "t2"), page([], None))
    since = datetime(2026, 11, 22, tzinfo=UTC)
    assert [o.seller_fulfillment_order_id for o in mcf.list_changed(since)] == ["A", "B", "C"]
    queries = [dict(r.url.params) for r in amazon.api_requests]
    assert queries[0] == {"queryStartDate": "2026-11-22T00:00:00Z"}
    assert queries[1:] == [{"nextToken": "t1"}, {"nextToken": "t2"}], "follow-up pages: nextToken alone"


def test_list_changed_stops_on_a_repeating_next_token(mcf, amazon) -> None:
    looping = httpx.Response(200, json={"payload": {"fulfillmentOrders": [], "nextToken": "same"}})
    amazon.then(looping, looping)
    with pytest.raises(SpApiError) as info:
        list(mcf.list_changed(datetime(2026, 11, 22, tzinfo=UTC)))
    assert info.value.code == "UnexpectedResponse"


def test_tracking_preview_and_features_parse(mcf, amazon) -> None:
    amazon.then(
        httpx.Response(
            200,
            json={
                "payload": {
                    "packageNumber": 7,
                    "trackingNumber": "1Z999",
                    "carrierCode": "UPS",
                    "carrierURL": "https://ups.example",
                    "customerTrackingLink": "https://track.example/1Z999",
                    "currentStatus": "in_transit",
                    "shipToAddress": {"name": CUSTOMER_NAME},
                    "signedForBy": CUSTOMER_NAME,
                    "trackingEvents": [
                        {
                            "eventDate": "2026-11-24T10:00:00Z",
                            "eventCode": "EVENT_202",
                            "eventDescription": "Shipment picked up",
                            "eventAddress": {"city": "Reno", "state": "NV", "country": "US"},
                        }
                    ],
                }
            },
        ),
        httpx.Response(
            200,
            json={
                "payload": {
                    "fulfillmentPreviews": [
                        {
                            "shippingSpeedCategory": "Standard",
                            "isFulfillable": False,
                            "isCODCapable": False,
                            "marketplaceId": "ATVPDKIKX0DER",
                            "estimatedFees": [
                                {
                                    "name": "FBAPerUnitFulfillmentFee",
                                    "amount": {"currencyCode": "USD", "value": "3.5"},
                                },
                                {
                                    "name": "FBATransportationFee",
                                    "amount": {"currencyCode": "USD", "value": "1.25"},
                                },
                            ],
                            "unfulfillablePreviewItems": [
                                {
                                    "sellerSku": "SKU-1",
                                    "sellerFulfillmentOrderItemId": "1",
                                    "quantity": 2,
                                    "itemUnfulfillableReasons": ["InventoryUnavailable"],
                                }
                            ],
                            "orderUnfulfillableReasons": ["InvalidAddress"],
                        }
                    ]
                }
            },
        ),
        httpx.Response(
            200,
            json={
                "payload": {
                    "features": [
                        {
                            "featureName": "BLANK_BOX",
                            "featureDescription": "Blank box",
                            "sellerEligible": True,
                        }
                    ]
                }
            },
        ),
    )
    tracking = mcf.tracking(7)
    assert tracking.current_status == "IN_TRANSIT"
    assert tracking.tracking_events[0].event_address is not None
    assert CUSTOMER_NAME not in repr(tracking)
    assert dict(amazon.api_requests[0].url.params) == {"packageNumber": "7"}

    from bridge.amazon.models import GetFulfillmentPreviewItem, GetFulfillmentPreviewRequest

    previews = mcf.preview(
        GetFulfillmentPreviewRequest(
            address=create_request().destination_address, items=[GetFulfillmentPreviewItem("SKU-1", "1", 2)]
        )
    )
    preview = previews[0]
    assert not preview.is_fulfillable
    assert preview.estimated_fees_total == Money("USD", Decimal("4.75"))
    assert preview.unfulfillable_items[0].reasons == ("InventoryUnavailable",)
    assert preview.order_unfulfillable_reasons == ("InvalidAddress",)

    features = mcf.features("ATVPDKIKX0DER")
    assert features[0].feature_name == "BLANK_BOX" and features[0].seller_eligible is True


def test_a_failing_rate_bucket_update_does_not_hide_a_done_create(amazon, clock, buckets) -> None:
    class BrokenAfterAnswer(MemoryBuckets):
        def observe_rate(self, account_id: str, operation: str, rate: float) -> None:
            raise RuntimeError("database is down")

    mcf = make_client(amazon, clock, BrokenAfterAnswer(clock))
    amazon.then(httpx.Response(200, json={}, headers={"x-amzn-RateLimit-Limit": "2.0"}))
    mcf.create(create_request())
    assert len(amazon.api_requests) == 1


def test_redaction_keeps_field_names_and_drops_values() -> None:
    from bridge.amazon.errors import redact

    text = redact(
        f"Value '{CUSTOMER_NAME}' for 'destinationAddress.name' is invalid; call {CUSTOMER_PHONE} "
        "or mail jane@example.com; postal code 98101"
    )
    assert "'destinationAddress.name'" in text
    for pii in (CUSTOMER_NAME, CUSTOMER_PHONE, "jane@example.com", "98101"):
        assert pii not in text


def test_a_probe_that_never_reached_amazon_frees_the_half_open_slot(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon,
        clock,
        buckets,
        retry=RetryPolicy(max_attempts=1),
        circuit=CircuitPolicy(failure_threshold=1, cool_down=10),
    )
    amazon.then(envelope(503, "ServiceUnavailable", "Busy."))
    with pytest.raises(ServerError):
        mcf.get("SO-1")
    clock.advance(10)
    mcf.client.auth.reset()
    amazon.token_reply = lambda: httpx.Response(500, json={})
    with pytest.raises(ServerError) as info:
        mcf.get("SO-1")  # the probe dies at Login with Amazon
    assert info.value.operation == "lwa.token"
    amazon.token_reply = None
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"
    assert mcf.client.breaker_for("getFulfillmentOrder").state == "closed"


# --------------------------------------------------------------------------------------------
# Amazon as it really answers: "not found" as 400, tokens named in a 403, per-operation breakers


def test_400_requested_order_not_found_on_a_read_is_not_found(mcf, amazon) -> None:
    amazon.then(envelope(400, "InvalidInput", "Requested order not found", **{"x-amzn-RequestId": "rid-1"}))
    with pytest.raises(NotFound) as info:
        mcf.get("SO-404")
    exc = info.value
    assert (exc.code, exc.status, exc.request_id) == ("InvalidInput", 400, "rid-1"), (
        "Amazon's own answer kept"
    )
    assert exc.describe() == (
        "getFulfillmentOrder: HTTP 400 InvalidInput: Requested order not found (x-amzn-RequestId rid-1)"
    )
    assert len(amazon.api_requests) == 1


def test_not_found_is_judged_by_code_and_message_not_by_status_alone(mcf, amazon) -> None:
    amazon.then(
        envelope(400, "InvalidInput", "Value for parameter marketplaceId is invalid."),
        httpx.Response(404, text="<html>no route</html>"),
        envelope(400, "InvalidInput", "SKU not found"),
    )
    with pytest.raises(InvalidInput):
        mcf.get("SO-1")  # a 400 that is not about the order
    with pytest.raises(SpApiError) as bare:
        mcf.get("SO-1")  # a 404 with neither Amazon's code nor its words
    assert not isinstance(bare.value, NotFound)
    with pytest.raises(InvalidInput) as create:
        mcf.create(create_request())  # a create addresses no existing order: never "not found"
    assert not isinstance(create.value, NotFound)


@pytest.mark.parametrize(
    "details",
    [
        "The access token you provided is revoked, malformed or invalid.",
        "The access token you provided has expired.",
        "The security token included in the request is expired",
    ],
)
def test_a_403_naming_the_token_forces_one_refresh(mcf, amazon, details: str) -> None:
    amazon.then(envelope(403, "Unauthorized", "Access to requested resource is denied.", details=details))
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"
    assert amazon.tokens_used == ["Atza|access-1", "Atza|access-2"]


def test_a_preview_breaker_leaves_other_operations_of_the_account_alone(amazon, clock, buckets) -> None:
    mcf = make_client(
        amazon, clock, buckets, retry=RetryPolicy(max_attempts=1), circuit=CircuitPolicy(failure_threshold=2)
    )
    from bridge.amazon.models import GetFulfillmentPreviewItem, GetFulfillmentPreviewRequest

    preview = GetFulfillmentPreviewRequest(
        address=create_request().destination_address, items=[GetFulfillmentPreviewItem("SKU-1", "1", 1)]
    )
    amazon.then(*[envelope(503, "ServiceUnavailable", "Busy.")] * 2)
    for _ in range(2):
        with pytest.raises(ServerError):
            mcf.preview(preview)
    with pytest.raises(CircuitOpen) as info:
        mcf.preview(preview)
    assert info.value.operation == "getFulfillmentPreview"
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"
    mcf.create(create_request())
    assert mcf.client.breaker_for("getFulfillmentPreview").state == "open"
    assert mcf.client.breaker_for("createFulfillmentOrder").state == "closed"


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def opened(self, account_id: str, operation: str, failures: int, retry_in: float) -> None:
        self.events.append(("opened", account_id, operation, str(failures), f"{retry_in:.0f}"))

    def closed(self, account_id: str, operation: str) -> None:
        self.events.append(("closed", account_id, operation))


def test_probes_back_off_exponentially_to_a_minute_and_the_first_success_closes(clock) -> None:
    heard = Heard()
    breaker = CircuitBreaker(
        clock, CircuitPolicy(failure_threshold=1), "acct", "getFulfillmentPreview", heard
    )
    breaker.success()  # a fresh process clears an alert an earlier one may have left open
    assert heard.events == [("closed", "acct", "getFulfillmentPreview")]
    breaker.failure()
    waits = []
    for _ in range(7):
        with pytest.raises(CircuitOpen) as info:
            breaker.acquire()
        assert info.value.retry_after is not None
        waits.append(round(info.value.retry_after))
        clock.advance(info.value.retry_after)
        assert breaker.acquire() is True  # the probe
        breaker.failure()
    assert waits == [2, 4, 8, 16, 32, 60, 60]
    clock.advance(60)
    assert breaker.acquire() is True
    breaker.success()
    assert breaker.state == "closed" and breaker.acquire() is False
    assert heard.events[1] == ("opened", "acct", "getFulfillmentPreview", "1", "2")
    assert heard.events[-1] == ("closed", "acct", "getFulfillmentPreview")
    assert [e[0] for e in heard.events].count("closed") == 2
    breaker.failure()  # closed again: one failure of a fresh count
    assert heard.events[-1][:3] == ("opened", "acct", "getFulfillmentPreview")
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.retry_after == pytest.approx(2), "the backoff starts over after a close"


def test_rejected_credentials_are_tried_again_after_a_capped_backoff(mcf, amazon, clock) -> None:
    amazon.token_reply = lambda: httpx.Response(400, json={"error": "invalid_grant"})
    waits = []
    for _ in range(7):
        with pytest.raises(CredentialsRejected) as info:
            mcf.get("SO-1")
        assert info.value.retry_after is not None
        waits.append(round(info.value.retry_after))
        with pytest.raises(CredentialsRejected):
            mcf.get("SO-1")  # parked: no LWA request before the wait is over
        clock.advance(info.value.retry_after)
    assert waits == [30, 60, 120, 240, 480, 600, 600]
    assert len(amazon.token_requests) == 7
    amazon.token_reply = None  # the seller re-authorised
    assert mcf.get("SO-1").seller_fulfillment_order_id == "SO-1"
    assert len(amazon.token_requests) == 8


def test_new_credentials_are_tried_at_once_even_while_the_old_ones_are_parked(amazon, clock) -> None:
    from bridge.amazon.tokens import MemoryTokenStore

    store = MemoryTokenStore()

    def client(refresh_token: str) -> FulfillmentOutbound20200701:
        account = make_account(refresh_token=Secret(refresh_token))
        return FulfillmentOutbound20200701(
            SpApiClient(
                account, clock, MemoryBuckets(clock), transport=httpx.MockTransport(amazon), tokens=store
            )
        )

    amazon.token_reply = lambda: httpx.Response(400, json={"error": "invalid_grant"})
    with pytest.raises(CredentialsRejected):
        client("Atzr|revoked").get("SO-1")
    with pytest.raises(CredentialsRejected):
        client("Atzr|revoked").get("SO-1")  # a restart with the same token: still parked
    assert len(amazon.token_requests) == 1
    amazon.token_reply = None
    assert client("Atzr|new").get("SO-1").seller_fulfillment_order_id == "SO-1"
    assert len(amazon.token_requests) == 2


def test_processes_sharing_a_store_make_one_token_request(amazon, clock) -> None:
    from bridge.amazon.tokens import MemoryTokenStore

    store = MemoryTokenStore()
    first, second = (
        FulfillmentOutbound20200701(
            SpApiClient(
                make_account(),
                clock,
                MemoryBuckets(clock),
                transport=httpx.MockTransport(amazon),
                tokens=store,
            )
        )
        for _ in range(2)
    )
    first.get("SO-1")
    second.get("SO-1")
    assert len(amazon.token_requests) == 1
    # Amazon revokes the token: the first to see the 403 refreshes, the other adopts its token.
    revoked = envelope(
        403,
        "Unauthorized",
        "Access to requested resource is denied.",
        details="The access token you provided is revoked, malformed or invalid.",
    )
    amazon.then(revoked)
    first.get("SO-1")
    amazon.then(revoked)
    second.get("SO-1")
    assert len(amazon.token_requests) == 2
    assert amazon.tokens_used[-1] == "Atza|access-2"
