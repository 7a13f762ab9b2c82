"""What every storefront adapter shares: the delivery it produces, how it rejects, and the
mechanisms (HMAC check, strict JSON, schema problems) that must behave the same on every platform.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..channels import Channel
from ..clock import Clock
from ..orders import CanonicalOrder, DeliveryKind
from ..schemas import passes_fast, schema_problems
from ..settings import Secret

MAX_JSON_DEPTH = 32


class Rejection(Exception):
    """A delivery we refuse, with the HTTP status and a body safe to return (no personal data)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.problems:
            out["problems"] = self.problems
        return out


def unauthorized(message: str = "signature missing or invalid") -> Rejection:
    return Rejection(401, "invalid_signature", message + "; check the channel's webhook_secrets")


class PrivacyScope(enum.StrEnum):
    DATA_REQUEST = "data_request"
    CUSTOMER_REDACT = "customer_redact"
    SHOP_REDACT = "shop_redact"


@dataclass(frozen=True)
class PrivacyRequest:
    scope: PrivacyScope
    order_external_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReturnItemRequest:
    line_id: str
    quantity: int
    reason_code: str = ""
    comment: str = ""


@dataclass(frozen=True)
class ReturnRequest:
    """A customer return the storefront asks Amazon to authorise (generic channel or CLI)."""

    external_id: str
    items: tuple[ReturnItemRequest, ...]


@dataclass(frozen=True)
class Delivery:
    """A verified, parsed delivery. `kind is None` means: acknowledge and store, nothing to apply."""

    topic: str
    delivery_key: str
    event_id: str | None = None
    kind: DeliveryKind | None = None
    order: CanonicalOrder | None = None
    external_id: str | None = None
    privacy: PrivacyRequest | None = None
    return_request: ReturnRequest | None = None
    store: bool = True
    notes: tuple[str, ...] = field(default=())
    #: Authentic and parseable, but refused by our schema (Shopify, WooCommerce): stored and parked
    #: with these problems (JSON paths and rules, never values) instead of a 4xx (see `park_refused`).
    refused: tuple[dict[str, str], ...] = ()


class StorefrontAdapter(Protocol):
    platform: str

    def verify(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> None:
        """Raise a 401 `Rejection` unless the body was signed with one of the channel's secrets."""
        ...

    def parse(self, channel: Channel, headers: Mapping[str, str], body: bytes, clock: Clock) -> Delivery:
        """Turn a verified body into a `Delivery`; raise a 400/415/422 `Rejection` if it is unusable."""
        ...


# --------------------------------------------------------------------------------------------
# Signatures


def hmac_sha256_b64(secret: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode("ascii")


def verify_hmac_b64(secrets: Iterable[Secret], body: bytes, signature: str | None) -> None:
    """Shopify and WooCommerce: base64 HMAC-SHA256 of the raw body, any configured secret.

    Every secret is tried (no early exit) and compared in constant time, so timing does not tell
    which secret matched or how much of the signature was right.
    """
    if not signature:
        raise unauthorized("signature header missing")
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise unauthorized() from None
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.reveal().encode("utf-8"), body, hashlib.sha256).digest()
        ok |= hmac.compare_digest(expected, given)
    if not ok:
        raise unauthorized()


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------------------------
# Strict JSON


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Rejection(
                400, "duplicate_key", f"the JSON object key {key!r} appears twice; send each key once"
            )
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise Rejection(400, "invalid_json", f"{name} is not valid JSON; send finite numbers only")


def nesting_depth(value: Any, limit: int) -> int:
    """How deep containers nest in a parsed JSON value (a scalar 0, `{}` or `[]` 1), counted no
    further than `limit + 1`. Walked without recursion, after `json.loads` (C), instead of scanning
    the text in Python first: a 6.6 KB order costs ~40 us this way, the text scan ~130 us. Nesting
    too deep for the parser itself ends in its RecursionError, which `parse_json` also refuses."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest = 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                if depth + 1 > deepest:
                    deepest = depth + 1
                    if deepest > limit:
                        return deepest
                stack.append((child, depth + 1))
    return deepest


def _too_deep(max_depth: int) -> Rejection:
    return Rejection(400, "too_deep", f"the JSON nests deeper than {max_depth} levels; flatten it")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Rejection(400, "invalid_json", "a number is too large to represent; send finite numbers only")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a request body as JSON, refusing what a lenient parser would quietly accept:
    invalid UTF-8, duplicate keys, deep nesting, NaN/Infinity, numbers too large to represent
    and escaped lone surrogates (strings that could not be stored or logged as UTF-8)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(400, "invalid_encoding", "the body is not UTF-8; send UTF-8 encoded JSON") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant, parse_float=_finite_float
        )
    except json.JSONDecodeError as exc:
        raise Rejection(
            400,
            "invalid_json",
            f"the body is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
        ) from None
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError:  # int() refuses integers of more than 4300 digits
        raise Rejection(400, "invalid_json", "the body holds a number too long to read") from None
    if nesting_depth(value, max_depth) > max_depth:
        raise _too_deep(max_depth)
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Rejection(
                400, "invalid_encoding", "the body escapes an unpaired UTF-16 surrogate"
            ) from None
    return value


#: C0 control characters other than tab, line feed and carriage return, and DEL. PostgreSQL cannot
#: store U+0000 in text at all; the others garble logs, CSV exports and Amazon's fields.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def path_key(key: str) -> str:
    """An object key as it may appear in a JSON path we store, log or answer: control characters
    shown as `?`, at most 64 characters (a key is the sender's text too)."""
    return CONTROL_CHARACTERS.sub("?", key)[:64]


def _walk_strings(value: Any, path: str, visit: Any) -> Any:
    if isinstance(value, str):
        return visit(value, path)
    if isinstance(value, list):
        return [_walk_strings(item, f"{path}[{i}]", visit) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _walk_strings(item, f"{path}.{path_key(key)}", visit) for key, item in value.items()}
    return value


def may_hold_control_characters(body: bytes) -> bool:
    """Whether a JSON body parsed by `parse_json` can hold a control character in any string.
    Strict JSON carries C0 characters only escaped (raw ones are refused): as `\\u00XX`, or, for
    backspace and form feed, as the short escapes `\\b` and `\\f`; DEL raw or as `\\u007f`. A
    body with none of these needs no walk (most webhooks: the walk costs about as much as parsing)."""
    return b"\\u00" in body or b"\\b" in body or b"\\f" in body or b"\x7f" in body


def strip_control_characters(document: Any, body: bytes | None = None) -> tuple[Any, tuple[str, ...]]:
    """The document with control characters removed from every string, and the JSON paths of
    the strings that had some (Shopify and WooCommerce pass customer-typed text through, so a
    pasted control character is noise, not an attack on us). With the raw `body`, a body that
    cannot hold one is returned as it is."""
    if body is not None and not may_hold_control_characters(body):
        return document, ()
    paths: list[str] = []

    def visit(text: str, path: str) -> str:
        if CONTROL_CHARACTERS.search(text) is None:
            return text
        paths.append(path)
        return CONTROL_CHARACTERS.sub("", text)

    return _walk_strings(document, "$", visit), tuple(paths)


def refuse_control_characters(document: Any, what: str, body: bytes | None = None) -> None:
    """A 422 naming every JSON path whose string holds a control character (the generic channel:
    its sender is the merchant's own code, which can be fixed). With the raw `body`, a body that
    cannot hold one is not walked."""
    if body is not None and not may_hold_control_characters(body):
        return
    paths: list[str] = []

    def visit(text: str, path: str) -> str:
        if CONTROL_CHARACTERS.search(text) is not None:
            paths.append(path)
        return text

    _walk_strings(document, "$", visit)
    if paths:
        problems = [
            {
                "path": path,
                "rule": "control_character",
                "fix": "remove control characters (U+0000-U+001F other than tab and line breaks, U+007F)",
            }
            for path in paths[:20]
        ]
        raise Rejection(
            422,
            "control_character",
            f"the {what} holds control characters in {len(paths)} field(s); remove them",
            problems,
        )


def control_character_note(paths: tuple[str, ...]) -> tuple[str, ...]:
    if not paths:
        return ()
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return (f"control characters removed from {shown}",)


_PLATFORM_ID = re.compile(r"[1-9][0-9]{0,19}")


def readable_id(data: Any) -> str | None:
    """The platform's order id of a refused payload, if it still reads as one (to link the
    delivery and its alert to an order the bridge already holds)."""
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value)
    return text if _PLATFORM_ID.fullmatch(text) else None


def parked(
    topic: str, delivery_key: str, event_id: str | None, refusal: Rejection, data: Any = None
) -> Delivery:
    """What a Shopify or WooCommerce delivery our schema refuses becomes: stored, not applied, an
    operator alert with the problems. Both platforms disable a webhook that keeps failing
    (WooCommerce after 5 failures in a row, without retrying), and the merchant never sees our
    4xx, so an authentic delivery is never answered with one (see README, webhook answers)."""
    if refusal.status != 422:
        raise refusal
    return Delivery(
        topic=topic,
        delivery_key=delivery_key,
        event_id=event_id,
        external_id=readable_id(data),
        refused=tuple(refusal.problems),
    )


def header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive header lookup for werkzeug headers and plain dicts alike, stripped."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == wanted), None)
    return value.strip() if isinstance(value, str) else ""


def require_json_content_type(headers: Mapping[str, str]) -> None:
    ctype = header(headers, "Content-Type").split(";", 1)[0].strip().lower()
    if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise Rejection(
            415, "unsupported_media_type", "send the body as application/json (Content-Type header)"
        )


# --------------------------------------------------------------------------------------------
# Schema validation without echoing values


def validate_or_reject(schema_name: str, document: Any, what: str) -> None:
    if passes_fast(schema_name, document):
        return
    problems = schema_problems(schema_name, document)
    if problems:
        raise Rejection(
            422,
            "schema_violation",
            f"the {what} does not match the expected format ({len(problems)} problem(s))",
            problems,
        )


def parse_timestamp(value: str | None, default: datetime | None = None) -> datetime:
    """ISO 8601 with or without offset; a missing offset means UTC (WooCommerce's `*_gmt` fields)."""
    if not value:
        if default is None:
            raise ValueError("timestamp missing")
        return default
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def payload_timestamp(data: Mapping[str, Any], field: str, *, path: str, example: str, what: str) -> datetime:
    """A timestamp the schema already shaped; a well-shaped but impossible date (month 13) is a 422."""
    try:
        return parse_timestamp(data[field])
    except ValueError:
        problem = {
            "path": f"{path}.{field}",
            "rule": "format",
            "fix": f"send a real calendar date-time, such as {example}",
        }
        raise Rejection(
            422,
            "schema_violation",
            f"the {what} does not match the expected format (1 problem(s))",
            [problem],
        ) from None


def payload_id(value: Any) -> str:
    """A platform id as text; JSON Schema's "integer" also admits 7.0, which must still read as "7"."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()


def payload_text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def split_tags(text: str) -> tuple[str, ...]:
    """A comma-separated tag list as the storefront sends it -> lower-cased, trimmed, unique tags."""
    return tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))


def policy_meta(channel: Channel, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Only the order meta the channel's `holds.meta` rules test is kept: meta is free-form and
    may hold personal data the bridge has no business storing."""
    keys = {rule.key.lower() for rule in channel.holds.meta}
    return tuple((k, v) for k, v in pairs if k.strip().lower() in keys)
