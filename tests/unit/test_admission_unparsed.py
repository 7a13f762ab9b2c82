"""Refusing a webhook from the socket, before the server parses it (`refuse_unparsed`): only when
the gate would refuse at once, only a plain webhook request, read to its end, answered the same
503 as the middleware's; anything else is left untouched for the usual path."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bridge.web.admission import Admission, AdmissionMiddleware

BODY = b'{"id": 1, "note": "' + b"x" * 6000 + b'"}'


def request(
    path: str = "/webhooks/shop-a", body: bytes = BODY, method: str = "POST", extra: str = ""
) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n"
        f"X-Shopify-Topic: orders/create\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    client, server = socket.socketpair()
    server.setblocking(False)  # as gunicorn hands a new connection to its thread
    yield client, server
    client.close()
    server.close()


def full_gate(wait_s: float = 0.0) -> Admission:
    gate = Admission(limit=1, queue=0, wait_s=wait_s)
    assert gate.enter()
    return gate


def middleware(gate: Admission, refusals: list[tuple[str, float]]) -> AdmissionMiddleware:
    def app(environ: object, start_response: object) -> list[bytes]:
        raise AssertionError("the app is never called here")

    return AdmissionMiddleware(app, gate, 7, lambda channel, s: refusals.append((channel, s)))


def unread(server: socket.socket) -> bytes:
    try:
        return server.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, TimeoutError):  # nothing there (the latter once a timeout is set)
        return b""


def answer(client: socket.socket) -> bytes:
    client.settimeout(5)
    return client.recv(4096)


def test_a_webhook_the_full_gate_refuses_is_read_to_its_end_and_answered_503(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    refusals: list[tuple[str, float]] = []
    client.sendall(request())
    assert middleware(full_gate(), refusals).refuse_unparsed(server, 0.0)
    assert unread(server) == b""  # nothing left that would reset the connection under the answer
    head, _, body = answer(client).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"Retry-After: 7" in lines and b"Connection: close" in lines
    assert body.startswith(b'{"error":"overloaded"') and f"Content-Length: {len(body)}".encode() in lines
    assert [c for c, _ in refusals] == ["shop-a"]


def test_a_gate_with_room_leaves_the_request_untouched(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    refusals: list[tuple[str, float]] = []
    client.sendall(request())
    gate = Admission(limit=2, queue=0, wait_s=0.0)
    assert gate.enter()
    assert not middleware(gate, refusals).refuse_unparsed(server, 0.0)
    assert unread(server) == request() and refusals == []
    assert gate.active == 1


def test_a_request_that_waited_past_the_bound_is_refused_and_congests_the_gate(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    client.sendall(request())
    gate = Admission(limit=4, queue=8, wait_s=0.5)
    assert middleware(gate, []).refuse_unparsed(server, 0.8)
    assert gate.congested and gate.active == 0
    assert answer(client).startswith(b"HTTP/1.1 503 ")


@pytest.mark.parametrize(
    "sent",
    [
        request(path="/healthz", method="GET", body=b""),
        request(path="/console/orders"),
        request(method="PUT"),
        request(extra="Transfer-Encoding: chunked\r\n"),
        request(extra="Expect: 100-continue\r\n"),
        request(body=b"x" * (64 * 1024 + 1)),
        request(extra="Content-Length: 5\r\n"),  # two lengths: for the server to refuse
        request(extra="Content-Length: 5\r\n")[:-1],  # both, and the body not all there
        request().replace(b"Content-Length: ", b"Content-Length: +"),
        request()[:40],  # the head has not fully arrived
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
    ids=[
        "get",
        "other-path",
        "put",
        "chunked",
        "expect",
        "too-large",
        "two-lengths",
        "two-lengths-short",
        "signed-length",
        "partial",
        "h2",
    ],
)
def test_anything_else_is_left_for_the_usual_path(
    pair: tuple[socket.socket, socket.socket], sent: bytes
) -> None:
    client, server = pair
    client.sendall(sent)
    refusals: list[tuple[str, float]] = []
    assert not middleware(full_gate(), refusals).refuse_unparsed(server, 0.0)
    assert unread(server) == sent and refusals == []


def test_nothing_sent_yet_is_left_for_the_usual_path(pair: tuple[socket.socket, socket.socket]) -> None:
    _, server = pair
    assert not middleware(full_gate(), []).refuse_unparsed(server, 0.0)


def test_turn_away_agrees_with_enter_without_waiting() -> None:
    gate = Admission(limit=1, queue=0, wait_s=0.0)
    assert not gate.full(0.0) and not gate.turn_away(0.0)
    assert gate.enter()
    assert gate.full(0.0) and gate.turn_away(0.0)
    waiting_gate = Admission(limit=1, queue=2, wait_s=5.0)
    assert waiting_gate.enter()
    assert waiting_gate.full(0.0) and not waiting_gate.turn_away(0.0)  # not congested: it may wait
    assert waiting_gate.turn_away(6.0) and waiting_gate.congested
