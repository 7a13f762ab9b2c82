"""Log formats and log context: what every process writes, as text for a terminal or JSON lines.

Context travels in `contextvars`: the web layer binds a request id (and the channel of a webhook
URL) around each request, the worker binds the job id, order id and channel around each job. A
filter on the bridge's handler copies them onto every record, so a log line deep inside the
pipeline says which job, order and request it belongs to without each call passing them along.

Both formats keep exception *text* out of the log: an exception's message can quote a payload
(a name, an address), so only its type and the frames (file, line, function) are written.

JSON keys (stable; `null` when not known): `time` (ISO 8601 UTC), `level`, `logger`, `message`,
`channel`, `order_id` (the bridge's order id, not the storefront's), `job_id`, `request_id`; plus
`exc_type` and `exc_frames` for an exception and a few structured fields when a call supplies
them (`EXTRA_KEYS`).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

HANDLER_NAME = "fba-bridge"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"

CONTEXT_KEYS = ("channel", "order_id", "job_id", "request_id")
#: Structured fields a call may pass with `extra=` that the JSON format keeps (ids, codes and
#: numbers only; anything else a call passes is left out).
EXTRA_KEYS = (
    "account",
    "operation",
    "status",
    "latency_ms",
    "attempt",
    "error_code",
    "upstream_request_id",
)

_VARS: dict[str, ContextVar[Any]] = {
    key: ContextVar(f"bridge_log_{key}", default=None) for key in CONTEXT_KEYS
}
_MARK = "_bridge_context"

ContextTokens = list[tuple[ContextVar[Any], Token[Any]]]


def bind(**fields: Any) -> ContextTokens:
    """Set context fields (None leaves a field unset) until `unbind` with the returned tokens."""
    tokens: ContextTokens = []
    for key, value in fields.items():
        var = _VARS[key]  # KeyError for a field that is not a context key: a programming error
        if value is not None:
            tokens.append((var, var.set(value)))
    return tokens


def unbind(tokens: ContextTokens | None) -> None:
    for var, token in reversed(tokens or []):
        var.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    tokens = bind(**fields)
    try:
        yield
    finally:
        unbind(tokens)


def current(key: str) -> Any:
    return _VARS[key].get()


class ContextFilter(logging.Filter):
    """Adds the context fields to a record (once, whichever handler sees it first).

    A `request_id` a call passes with `extra=` names another system's request (Amazon's
    `x-amzn-RequestId`); it moves to `upstream_request_id` so `request_id` always means ours.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attrs = record.__dict__
        if attrs.get(_MARK):
            return True
        if "request_id" in attrs:
            attrs["upstream_request_id"] = attrs.pop("request_id")
        for key, var in _VARS.items():
            if attrs.get(key) is None:
                attrs[key] = var.get()
        attrs[_MARK] = True
        return True


def _frames(tb: TracebackType | None) -> list[str]:
    return [f"{_short_path(f.filename)}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)]


def _short_path(path: str) -> str:
    """`bridge/pipeline/submit.py` rather than the install location (which can name a home dir)."""
    parts = path.replace("\\", "/").split("/")
    for index in range(len(parts) - 2, -1, -1):  # the innermost anchor wins
        if parts[index] in ("bridge", "tests"):
            return "/".join(parts[index:])
        if parts[index] == "site-packages":
            return "/".join(parts[index + 1 :])
    return "/".join(parts[-2:])


def _exception_chain(exc: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return list(reversed(chain))


def safe_exception_text(exc: BaseException | None) -> str:
    """A traceback with frames and exception types only (no exception messages)."""
    lines: list[str] = []
    for index, item in enumerate(_exception_chain(exc)):
        if index:
            lines.append("The above exception led to:")
        lines.append("Traceback (most recent call last):")
        lines.extend(f'  File "{frame}"' for frame in _frames(item.__traceback__))
        lines.append(f"{type(item).__qualname__} (message not logged)")
    return "\n".join(lines)


def _context_suffix(record: logging.LogRecord) -> str:
    pairs = [
        f"{key}={getattr(record, key)}" for key in CONTEXT_KEYS if getattr(record, key, None) is not None
    ]
    return f" [{' '.join(pairs)}]" if pairs else ""


class TextFormatter(logging.Formatter):
    """The classic one-line format, with the context appended in brackets when there is any."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        # Not `logging.Formatter.format`: it reuses `record.exc_text` that another handler may
        # have filled with the full exception text.
        record.message = record.getMessage()
        record.context = _context_suffix(record)
        record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + safe_exception_text(record.exc_info[1])
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside the message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            out[key] = getattr(record, key, None)
        for key in EXTRA_KEYS:
            value = getattr(record, key, None)
            if isinstance(value, str | int | float | bool):
                out[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out["exc_type"] = type(exc).__qualname__
            out["exc_frames"] = _frames(exc.__traceback__)
        return json.dumps(out, ensure_ascii=False, default=str)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the moment (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def formatter_for(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(level: str, fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Install (or update) the bridge's one handler on the root logger.

    Without `stream`, an application that already configured logging (root has handlers of its
    own, e.g. a test runner) is left alone, like `logging.basicConfig` does.
    """
    root = logging.getLogger()
    if stream is not None:
        remove_handler()
    handler = next((h for h in root.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        if stream is None and root.handlers:
            return
        handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
        handler.set_name(HANDLER_NAME)
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    handler.setFormatter(formatter_for(fmt))
    root.setLevel(level)


def remove_handler() -> None:
    """Take the bridge's handler off the root logger again (tests)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
