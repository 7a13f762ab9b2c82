"""A runnable fake receiver for the bridge's generic-channel callbacks: a Standard Webhooks
consumer that does what the spec asks of one.

`POST /<any path>`:
- verifies `webhook-id` / `webhook-timestamp` / `webhook-signature` against the configured
  secret(s) with the 5-minute tolerance in both directions, on an injectable clock (the same
  check the bridge's own intake runs: `GenericAdapter.verify`); a failure answers 401 and is
  counted in `rejections`, never recorded as an event;
- dedupes by `webhook-id`: a repeat answers 200 `{"ok": true, "duplicate": true}` and is not
  recorded again (it is counted in `duplicates`);
- records the event otherwise (`events`) and answers 200 `{"ok": true, "duplicate": false}`.

Controls: `fail_next(status, count, retry_after)` (answer without looking at the request),
`accept_then_drop_next(count)` (record, then drop the connection unanswered), `events_of(type)`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask, Response, request

from ..amazon.simulator.dropping import ConnectionDropper, mark_drop
from ..channels import Channel
from ..clock import Clock, SystemClock
from ..settings import Secret
from ..storefronts.base import Rejection, header
from ..storefronts.generic import ID_HEADER, TIMESTAMP_HEADER, GenericAdapter


@dataclass(frozen=True)
class ReceivedEvent:
    webhook_id: str
    timestamp: int
    path: str
    payload: Any  # the parsed JSON body (None if the body was not JSON)

    @property
    def type(self) -> str | None:
        return self.payload.get("type") if isinstance(self.payload, dict) else None

    @property
    def data(self) -> dict[str, Any]:
        data = self.payload.get("data") if isinstance(self.payload, dict) else None
        return data if isinstance(data, dict) else {}


@dataclass
class _Fault:
    kind: str  # "status" | "accept_then_drop"
    count: int
    status: int = 503
    retry_after: int | str | None = None


class FakeGenericReceiver:
    """The receiver's state. Thread-safe."""

    def __init__(self, secrets: str | Sequence[str], clock: Clock | None = None) -> None:
        self.secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        self.clock = clock or SystemClock()
        self.events: list[ReceivedEvent] = []
        self.attempts = 0
        self.duplicates = 0
        self.rejections: list[str] = []  # the reasons, safe to show
        self._seen: set[str] = set()
        self._faults: list[_Fault] = []
        self.lock = threading.RLock()
        #: For `inventory.updated`: the SKUs the shop sells (None: all); others are answered as
        #: `unknown_skus`.
        self.known_skus: set[str] | None = None
        # verify() wants a channel; only its secrets matter here
        self._channel = Channel(
            id="fake-generic-receiver",
            platform="generic",
            webhook_secrets=tuple(Secret(s) for s in self.secrets),
            account_id="",
            marketplace_id="",
            sku_map={},
        )

    def fail_next(self, status: int = 503, count: int = 1, retry_after: int | str | None = None) -> None:
        with self.lock:
            self._faults.append(_Fault("status", count, status, retry_after))

    def accept_then_drop_next(self, count: int = 1) -> None:
        with self.lock:
            self._faults.append(_Fault("accept_then_drop", count))

    def events_of(self, event_type: str) -> list[ReceivedEvent]:
        with self.lock:
            return [e for e in self.events if e.type == event_type]

    def take_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.count -= 1
        if fault.count <= 0:
            del self._faults[0]
        return fault

    def receive(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Verify, dedupe, record. Returns (status, JSON body)."""
        try:
            GenericAdapter().verify(self._channel, headers, body, self.clock)
        except Rejection as err:
            self.rejections.append(err.message)
            return err.status, err.body()
        msg_id = header(headers, ID_HEADER)
        if msg_id in self._seen:
            self.duplicates += 1
            return 200, {"ok": True, "duplicate": True}
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self._seen.add(msg_id)
        event = ReceivedEvent(msg_id, int(header(headers, TIMESTAMP_HEADER)), path, payload)
        self.events.append(event)
        return 200, {"ok": True, "duplicate": False, **unknown_skus(event, self.known_skus)}

    def stock(self) -> dict[str, int]:
        """SKU -> the quantity of the newest `inventory.updated` item (highest version) received."""
        with self.lock:
            return stock_levels(self.events)


def unknown_skus(event: ReceivedEvent, known: set[str] | None) -> dict[str, list[str]]:
    if known is None or event.type != "inventory.updated":
        return {}
    items = event.data.get("items")
    skus = [str(i.get("sku")) for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    unknown = sorted({s for s in skus if s not in known})
    return {"unknown_skus": unknown} if unknown else {}


def stock_levels(events: Sequence[ReceivedEvent]) -> dict[str, int]:
    best: dict[str, tuple[int, int]] = {}  # sku -> (version, quantity)
    for event in events:
        if event.type != "inventory.updated":
            continue
        for item in event.data.get("items") or []:
            if not isinstance(item, dict):
                continue
            sku, version, quantity = item.get("sku"), item.get("version"), item.get("quantity")
            if isinstance(sku, str) and isinstance(version, int) and isinstance(quantity, int):
                if sku not in best or version >= best[sku][0]:
                    best[sku] = (version, quantity)
    return {sku: quantity for sku, (_, quantity) in best.items()}


def create_fake_generic_app(fake: FakeGenericReceiver) -> Flask:
    app = Flask("bridge.fakes.generic")
    app.extensions["fake_generic_receiver"] = fake

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def receive(path: str) -> Response:
        body = request.get_data()
        with fake.lock:
            fake.attempts += 1
            fault = fake.take_fault()
            if fault is not None and fault.kind == "status":
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return _json({"error": "fake_fault"}, fault.status, headers)
            status, answer = fake.receive("/" + path, cast(Mapping[str, str], request.headers), body)
            if fault is not None and fault.kind == "accept_then_drop":
                mark_drop(request.environ)
                return Response(status=204)  # discarded by ConnectionDropper
        return _json(answer, status)

    app.wsgi_app = ConnectionDropper(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def main(argv: list[str] | None = None) -> None:
    """`python -m bridge.fakes.generic [--port 8703] [--secret whsec_...]`: the demo's receiver."""
    import argparse

    from ..amazon.simulator.server import serve_in_thread

    parser = argparse.ArgumentParser(description="Serve a fake Standard Webhooks receiver.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8703)
    parser.add_argument("--secret", default="whsec_ZGVtby1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw")
    args = parser.parse_args(argv)
    fake = FakeGenericReceiver(args.secret)
    server = serve_in_thread(create_fake_generic_app(fake), args.host, args.port)
    print(f"fake generic receiver on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
