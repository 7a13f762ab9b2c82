"""Dropping a connection without an answer, the failure that makes creates ambiguous.

A view marks the request (`mark_drop`); this WSGI middleware then throws the response away and:
- under werkzeug's server (real HTTP) shuts the client socket down (werkzeug puts it in the
  environ as `werkzeug.socket`) and raises `SimulatedConnectionDrop`, a ConnectionError that
  werkzeug treats as a dropped connection and does not log; the client sees the server close the
  connection without a response (httpx: `RemoteProtocolError`, sometimes `ReadError`);
- in process (httpx.WSGITransport, no socket) raises `httpx.RemoteProtocolError` itself, which
  WSGITransport lets propagate, so the client code sees the same exception type either way.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

DROP_KEY = "fba_bridge.simulator.drop_connection"
DISCONNECT_MESSAGE = "Server disconnected without sending a response."


class SimulatedConnectionDrop(ConnectionAbortedError):
    """Raised inside werkzeug's server after the client socket has been shut down."""


def mark_drop(environ: dict[str, Any]) -> None:
    environ[DROP_KEY] = True


class ConnectionDropper:
    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        captured: list[tuple[str, list[tuple[str, str]], Any]] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], Any]:
            captured.append((status, headers, exc_info))
            return lambda _data: None

        result = self.app(environ, capture)
        if not environ.get(DROP_KEY):
            status, headers, exc_info = captured[-1]
            start_response(status, headers, exc_info)
            return result
        close = getattr(result, "close", None)
        if callable(close):
            close()
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client may already have gone; dropped either way
            raise SimulatedConnectionDrop(DISCONNECT_MESSAGE)
        raise httpx.RemoteProtocolError(DISCONNECT_MESSAGE)
