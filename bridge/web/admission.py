"""Bounded admission for webhooks: past capacity, answer `503` + `Retry-After` at once.

Without a bound, a web process that is offered more webhooks than it can store queues them
(gunicorn's thread pool queue, then the database lock), every answer comes later and later, and
past the storefront's delivery timeout (Shopify: 5 s) each one is retried, adding load. With it:

- at most `limit` webhook handlers run at once in this process (they verify, parse and store);
- others wait for a free slot, each for at most `wait_s` seconds; once a wait ran out (sustained
  overload, not a momentary pile-up) only `queue` may wait, for the next `wait_s` seconds;
- any other webhook is answered `503` with `Retry-After` before its body is parsed, verified or
  stored, so a refused delivery leaves nothing behind and the storefront retries it later.

The gate is WSGI middleware in front of Flask, so a refusal costs a few microseconds and never
competes with the admitted handlers for the interpreter. Under gunicorn (`QueueTimedWorker`) a
request that would be refused at once is refused even earlier, from the socket, before gunicorn
parses it (`AdmissionMiddleware.refuse_unparsed`). Threads beyond `limit + queue` in the
gunicorn worker are what answer the refusals promptly (see README "Throughput").
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from ..bootstrap import Bridge

WEBHOOK_PREFIX = "/webhooks/"
#: Where `install` leaves the middleware for the server (`QueueTimedWorker`) to find.
MIDDLEWARE_KEY = "webhook_admission_middleware"
_DRAIN_LIMIT = 64 * 1024  # unread bodies up to this size are discarded, not left in the socket
_DRAIN_CHUNK = 16 * 1024
_PEEK_BYTES = 16 * 1024  # a webhook's head is 1-2 KB
_SOCKET_TIMEOUT_S = 1.0
_WEBHOOK_REQUEST_LINE = re.compile(rb"POST /webhooks/([A-Za-z0-9._~-]+)(?:[/?][^ ]*)? HTTP/1\.[01]\r\n")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:([^\r\n]*)(?=\r\n)", re.IGNORECASE)
_DIGITS = re.compile(rb"[ \t]*([0-9]{1,9})[ \t]*")
#: A chunked body or a client waiting for `100 Continue`: not read here, left to the server.
_NOT_PLAIN = re.compile(rb"\r\n(?:transfer-encoding|expect):", re.IGNORECASE)


class Admission:
    """A counting gate: `enter()` True means admitted (call `leave()` after), False means refuse.

    Up to `limit` run. Others wait for a slot, each for at most `wait_s`; one that waited that
    long without a slot is refused, and from then on, for `wait_s`, the gate counts as congested:
    at most `queue` may wait and any more are refused at once. Before that, a momentary pile-up
    (a pause of the process, a burst of deliveries) waits in full, bounded only by the server's
    threads -- refusing it would turn a 50 ms hiccup into retries.
    """

    def __init__(
        self, limit: int, queue: int, wait_s: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or queue < 0 or wait_s < 0:
            raise ValueError("limit must be >= 1, queue and wait_s >= 0")
        self.limit = limit
        self.queue = queue
        self.wait_s = wait_s
        self._now = now
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._waiting = 0
        self._gave_up_at: float | None = None
        # Arrivals per whole second of the clock: this second's and the one before.
        self._second = 0
        self._this_second = 0
        self._last_second = 0

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def congested(self) -> bool:
        """A waiter gave up within the last `wait_s` seconds (sustained overload)."""
        return self._gave_up_at is not None and self._now() - self._gave_up_at < self.wait_s

    def arrival_rate(self) -> float:
        """Webhooks that reached the gate in about the last second (a sliding-window estimate:
        this second's count plus the part of the previous second's that the window still
        covers), without the lock: a moment's stale read only shifts a threshold decision."""
        now = self._now()
        second, into = int(now), now - int(now)
        if second == self._second:
            return self._this_second + self._last_second * (1.0 - into)
        if second == self._second + 1:
            return self._this_second * (1.0 - into)
        return 0.0

    def _arrived(self) -> None:
        second = int(self._now())
        if second != self._second:
            self._last_second = self._this_second if second == self._second + 1 else 0
            self._this_second = 0
            self._second = second
        self._this_second += 1

    def enter(self, waited_s: float = 0.0) -> bool:
        """`waited_s`: how long the request already waited in the server before reaching the
        gate (see `QueueTimedWorker`); it counts against the same `wait_s` bound."""
        with self._cond:
            self._arrived()
            if waited_s > self.wait_s:
                self._gave_up_at = self._now()
                return False
            if self._active < self.limit:
                self._active += 1
                return True
            if self.wait_s <= 0 or (self._waiting >= self.queue and self.congested):
                return False
            self._waiting += 1
            try:
                budget = self.wait_s - waited_s
                if not self._cond.wait_for(lambda: self._active < self.limit, timeout=budget):
                    self._gave_up_at = self._now()
                    return False
                self._active += 1
                return True
            finally:
                self._waiting -= 1

    def full(self, waited_s: float) -> bool:
        """A cheap look without the lock: whether `turn_away` could say yes."""
        return waited_s > self.wait_s or self._active >= self.limit

    def turn_away(self, waited_s: float) -> bool:
        """Whether `enter(waited_s)` would refuse at once, without waiting for a slot; a request
        that already waited past the bound counts as a wait that ran out, as in `enter`."""
        with self._cond:
            if waited_s > self.wait_s:
                self._gave_up_at = self._now()
                return True
            if self._active < self.limit:
                return False
            return self.wait_s <= 0 or (self._waiting >= self.queue and self.congested)

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify()


_request = threading.local()


def mark_queued(since: float | None) -> None:
    """Called by the server thread that takes a request: when (monotonic) it became ready to be
    handled. gunicorn's gthread worker queues ready connections for its threads without a bound,
    and that wait is invisible from inside the app; `QueueTimedWorker` reports it here."""
    _request.since = since


def queued_for() -> float:
    """Seconds this thread's request waited for a thread (0 when the server does not say)."""
    return waited_since(getattr(_request, "since", None))


def waited_since(since: float | None) -> float:
    """Seconds since `since` (monotonic), 0 when unknown."""
    return 0.0 if since is None else max(0.0, time.monotonic() - since)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AdmissionMiddleware:
    """Gate `POST /webhooks/...` through an `Admission`; every other request passes untouched.

    `on_refused(channel_id, seconds)` is told about each refusal (metrics); the channel id is the
    raw URL segment, which the callback must check against the configured channels.
    """

    def __init__(
        self,
        app: WsgiApp,
        admission: Admission,
        retry_after_s: int,
        on_refused: Callable[[str, float], None] | None = None,
    ) -> None:
        self.app = app
        self.admission = admission
        self.retry_after = str(retry_after_s)
        self.on_refused = on_refused
        self.body = (
            b'{"error":"overloaded","message":"the bridge is at its webhook capacity; '
            b'retry after the Retry-After seconds (deliveries are retried by the storefront)"}'
        )
        self.raw_answer = (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(self.body)}\r\nRetry-After: {self.retry_after}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + self.body
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(WEBHOOK_PREFIX):
            return self.app(environ, start_response)
        started = time.perf_counter()
        if not self.admission.enter(queued_for()):
            return self._refuse(environ, start_response, path, started)
        try:
            # Flask builds the whole response (no streaming), so the slot is free once it returns.
            return self.app(environ, start_response)
        finally:
            self.admission.leave()

    def refuse_unparsed(self, sock: socket.socket, waited_s: float) -> bool:
        """Refuse a webhook straight from a new connection's socket when the gate would refuse it
        at once, before the server parses it: at 4x overload most requests are refusals, and
        gunicorn's parse, environ and response objects cost more CPU than the refusal itself.

        The request head is peeked at; only a `POST /webhooks/...` with a Content-Length of at
        most 64 KiB whose head has fully arrived qualifies. Its bytes are then read to the end
        (closing with unread bytes would reset the connection under the answer) and the same 503
        goes out. Anything else returns False with nothing consumed, for the usual path; after
        True the caller closes the connection."""
        if not self.admission.full(waited_s):
            return False
        started = time.perf_counter()
        try:
            peeked = sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            return False
        request = _webhook_request(peeked)
        if request is None or not self.admission.turn_away(waited_s):
            return False
        channel, length = request
        try:
            sock.settimeout(_SOCKET_TIMEOUT_S)
            while length > 0:
                chunk = sock.recv(min(length, _DRAIN_CHUNK))
                if not chunk:
                    break
                length -= len(chunk)
            sock.sendall(self.raw_answer)
        except OSError:
            pass  # the client left or stalled; closing the connection is all that remains
        if self.on_refused is not None:
            self.on_refused(channel, time.perf_counter() - started)
        return True

    def _refuse(
        self, environ: dict[str, Any], start_response: Callable[..., Any], path: str, started: float
    ) -> Iterable[bytes]:
        _discard_body(environ)
        start_response(
            "503 SERVICE UNAVAILABLE",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(self.body))),
                ("Retry-After", self.retry_after),
            ],
        )
        if self.on_refused is not None:
            channel = path[len(WEBHOOK_PREFIX) :].split("/", 1)[0]
            self.on_refused(channel, time.perf_counter() - started)
        return [self.body]


def _webhook_request(peeked: bytes) -> tuple[str, int] | None:
    """(channel id, bytes in the whole request) of a webhook whose head is all in `peeked` and
    whose length is plain: one Content-Length of at most `_DRAIN_LIMIT`, no Transfer-Encoding
    and no Expect."""
    line = _WEBHOOK_REQUEST_LINE.match(peeked)
    head_end = peeked.find(b"\r\n\r\n")
    if line is None or head_end < 0:
        return None
    head = peeked[: head_end + 2]
    lengths = _CONTENT_LENGTH.findall(head)
    length = _DIGITS.fullmatch(lengths[0]) if len(lengths) == 1 else None
    if length is None or _NOT_PLAIN.search(head) or int(length.group(1)) > _DRAIN_LIMIT:
        return None
    return line.group(1).decode("ascii"), head_end + 4 + int(length.group(1))


def _discard_body(environ: dict[str, Any]) -> None:
    """Read and drop a small unread body, so closing the connection cannot reset it before the
    client reads the answer; a larger one is left to the server (it closes the connection)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    stream = environ.get("wsgi.input")
    if stream is None or not 0 < length <= _DRAIN_LIMIT:
        return
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, _DRAIN_CHUNK))
        if not chunk:
            break
        remaining -= len(chunk)


def install(app: Flask, bridge: Bridge) -> Admission | None:
    """Put the gate in front of `app` as the settings say (`BRIDGE_WEBHOOK_CONCURRENCY=0`: none)."""
    from .. import metrics

    settings = bridge.settings
    if settings.webhook_concurrency < 1:
        return None
    gate = Admission(settings.webhook_concurrency, settings.webhook_queue, settings.webhook_queue_wait_s)

    def refused(channel_id: str, seconds: float) -> None:
        known = channel_id if bridge.config.channel(channel_id) is not None else "unknown"
        metrics.webhook(known, "overloaded", 503, seconds)

    middleware = AdmissionMiddleware(app.wsgi_app, gate, settings.webhook_retry_after_s, refused)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    app.extensions["webhook_admission"] = gate
    app.extensions[MIDDLEWARE_KEY] = middleware
    return gate
