"""Typed failures of the SP-API client, each with a stable `code` and a message for the operator.

What a caller may rely on:

- `code` is stable: Amazon's error code from the `{"errors": [...]}` envelope when there is one
  (`InvalidInput`, `NotFound`, `QuotaExceeded`, ...), else the class default (`TransportError`,
  `CircuitOpen`, `invalid_grant`, ...). Branch on the class or the code, never on the message.
- `ambiguous` is True when the request may have been carried out by Amazon although we did not
  get a clear answer (read timeout, dropped connection, 5xx) AND the operation is not idempotent
  (create, update, cancel, create return). The caller must read the order back before sending the
  request again. A GET never carries the flag: repeating it is harmless.
- `NotFound` means Amazon said the order (or package) does not exist, whether it said so the
  documented way (404 `NotFound`) or the way it really answers `getFulfillmentOrder` for an unknown
  id (400 `InvalidInput` "Requested order not found"); `code` and `status` keep what Amazon sent.
- `describe()` is the one line an operator sees in job errors and `orders --attention`:
  operation, HTTP status, Amazon's code and message, and the `x-amzn-RequestId` Amazon support
  asks for. Never a request body.
- `retryable` says whether the same call may succeed later without anyone fixing anything
  (throttling, Amazon outages, network trouble, an open circuit). `CredentialsRejected`,
  `InvalidInput`, `AccessDenied` and `NotFound` are not retryable.
- Messages never contain personal data, tokens or secrets. Amazon's own message text is passed
  through `redact()` first, because Amazon sometimes echoes submitted values (names, addresses,
  e-mail addresses, phone numbers) back in its errors.
"""

from __future__ import annotations

import re

_AMBIGUOUS_HINT = (
    "The request may have been carried out: read the order back from Amazon before sending it again."
)


class SpApiError(Exception):
    """Base of every error the SP-API client raises."""

    default_code = "SpApiError"
    default_retryable = False

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        status: int | None = None,
        request_id: str | None = None,
        details: str = "",
        *,
        operation: str = "",
        ambiguous: bool = False,
        retryable: bool | None = None,
        retry_after: float | None = None,
        amazon_message: str = "",
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.status = status
        self.request_id = request_id
        self.details = details
        self.operation = operation
        self.ambiguous = ambiguous
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        #: Amazon's own message (redacted), when Amazon answered with one.
        self.amazon_message = amazon_message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [f"[{self.code}] {self.message}"]
        if self.ambiguous:
            parts.append(_AMBIGUOUS_HINT)
        tail = []
        if self.operation:
            tail.append(f"operation={self.operation}")
        if self.status is not None:
            tail.append(f"status={self.status}")
        if self.request_id:
            tail.append(f"request_id={self.request_id}")
        if tail:
            parts.append(f"({', '.join(tail)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__str__()!r})"

    def describe(self) -> str:
        """`getFulfillmentOrder: HTTP 400 InvalidInput: Requested order not found
        (x-amzn-RequestId 1b2c...)`: what an operator (and Amazon support) needs, nothing more."""
        head = self.operation or "SP-API"
        if self.status is not None:
            head += f": HTTP {self.status}"
        line = f"{head} {self.code}: {self.amazon_message or self.message}"
        if self.request_id:
            line += f" (x-amzn-RequestId {self.request_id})"
        if self.ambiguous:
            line += " " + _AMBIGUOUS_HINT
        return line

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only state would be lost by Exception's default pickling (args only).
        return (_rebuild, (type(self), dict(self.__dict__)))


class InvalidInput(SpApiError):
    """400: Amazon refused the request's content. Fix the data (or the mapping) and resubmit."""

    default_code = "InvalidInput"


class NotFound(SpApiError):
    """No such fulfillment order / package for this seller: 404 `NotFound`, or the 400
    `InvalidInput` "Requested order not found" Amazon really answers for an unknown order id."""

    default_code = "NotFound"


class AccessDenied(SpApiError):
    """401/403 that a fresh access token did not cure: the app lacks the role or the region is wrong."""

    default_code = "Unauthorized"


Unauthorized = AccessDenied


class QuotaExceeded(SpApiError):
    """429: the SP-API usage plan is exhausted for now. Never executed, so always safe to retry."""

    default_code = "QuotaExceeded"
    default_retryable = True


class LocalThrottle(QuotaExceeded):
    """Our own shared token bucket would make this call wait longer than the caller allows.

    Nothing was sent. Re-queue the work for `retry_after` seconds from now.
    """

    default_code = "LocalThrottle"


class ServerError(SpApiError):
    """5xx from Amazon. Retryable; `ambiguous` for non-idempotent operations."""

    default_code = "ServerError"
    default_retryable = True


class TransportError(SpApiError):
    """No HTTP answer: connection refused or reset, TLS failure, timeout.

    If the connection was never established (`ambiguous` False) Amazon cannot have acted on the
    request. Otherwise (`ambiguous` True, non-idempotent operations only) it may have.
    """

    default_code = "TransportError"
    default_retryable = True


class UnexpectedResponse(SpApiError):
    """Amazon (or whatever answered) sent something that is not the documented shape."""

    default_code = "UnexpectedResponse"


class CredentialsRejected(SpApiError):
    """Login with Amazon refused the app's credentials; retrying at once cannot help.

    The account is parked: the authenticator asks LWA again after a capped backoff
    (`retry_after` says when), or at once on `fba-bridge amazon recheck ACCOUNT`, and resumes by
    itself when the seller has re-authorised. Park the seller's work until then, without
    spending attempts.
    """

    default_code = "CredentialsRejected"


class CircuitOpen(SpApiError):
    """Calls of this operation for this seller account are paused after repeated Amazon failures.
    Nothing was sent; `retry_after` says when the next probe may go."""

    default_code = "CircuitOpen"
    default_retryable = True


class InsecureEndpoint(SpApiError, ValueError):
    """A configured endpoint is not https:// (only allowed for a local simulator)."""

    default_code = "InsecureEndpoint"


def _rebuild(cls: type[SpApiError], state: dict[str, object]) -> SpApiError:
    exc = cls.__new__(cls)
    exc.__dict__.update(state)
    Exception.__init__(exc, exc.__str__())
    return exc


_CREDENTIAL_FIXES = {
    "invalid_grant": (
        "Login with Amazon rejected the refresh token: the seller revoked the authorisation or the "
        "refresh token is wrong. Re-authorise the app in Seller Central and put the new refresh_token "
        "in the channels file."
    ),
    "invalid_client": (
        "Login with Amazon rejected the app's client credentials: the LWA client secret is wrong or "
        "has expired. Rotate the LWA client secret in the Solution Provider Portal / Developer Console "
        "(they expire every 180 days) and update client_id/client_secret in the channels file."
    ),
    "unauthorized_client": (
        "Login with Amazon says this app may not use the refresh-token grant: check that client_id "
        "belongs to the SP-API application the seller authorised."
    ),
}


def credentials_rejected(
    lwa_error: str, account_id: str, status: int | None, request_id: str | None = None
) -> CredentialsRejected:
    """The `CredentialsRejected` for an LWA `error` value, with the fix spelled out."""
    fix = _CREDENTIAL_FIXES.get(
        lwa_error,
        "Login with Amazon refused the credentials; check client_id, client_secret and refresh_token.",
    )
    return CredentialsRejected(
        lwa_error or "CredentialsRejected",
        f"Amazon account {account_id!r}: {fix} Work for this account is parked until then "
        f"(`fba-bridge amazon recheck {account_id}` resumes it at once).",
        status,
        request_id,
        operation="lwa.token",
    )


def parked_marker(account_id: str) -> str:
    """How a job parked on an account's credentials starts its `last_error`, so the recovery can
    find the jobs to resume."""
    return f"Amazon account {account_id} is parked:"


_QUOTED = re.compile(r"""(['"`])(.*?)\1""")
_FIELD_PATH = re.compile(r"[a-z][A-Za-z0-9]*(?:(?:\.[a-z][A-Za-z0-9]*)|(?:\[\d+\]))*")
_EMAIL = re.compile(r"[^\s@'\"<>,;]+@[^\s@'\"<>,;]+")
_LONG_NUMBER = re.compile(r"\+?\d[\d\s().-]{3,}\d")
_MAX_TEXT = 300


def redact(text: str | None) -> str:
    """Amazon's error text with submitted values blanked out (best effort, for logs and messages).

    Quoted strings survive only when they look like a field path (`destinationAddress.postalCode`,
    `items[0].quantity`); other quoted text, e-mail addresses and long digit runs (phones, postal
    codes, card-like numbers) become `…`. The result is cut to a few hundred characters.
    """
    if not text:
        return ""

    def keep_fields(match: re.Match[str]) -> str:
        inner = match.group(2)
        return match.group(0) if _FIELD_PATH.fullmatch(inner) else f"{match.group(1)}…{match.group(1)}"

    out = _QUOTED.sub(keep_fields, str(text))
    out = _EMAIL.sub("…", out)
    out = _LONG_NUMBER.sub("…", out)
    out = " ".join(out.split())
    return out if len(out) <= _MAX_TEXT else out[: _MAX_TEXT - 1] + "…"
