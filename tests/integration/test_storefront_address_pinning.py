"""DNS rebinding: the storefront client connects to the address it checked, keeps TLS bound to
the host name, and never follows a redirect."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge.storefronts import push
from bridge.storefronts.push import PinnedTransport, PushError

PUBLIC = "93.184.216.34"


def rebinding_dns(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """getaddrinfo answering `answers` one lookup after the other (the attacker's DNS server)."""
    asked: list[str] = []

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        address = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443))]

    monkeypatch.setattr(push.socket, "getaddrinfo", getaddrinfo)
    return asked


def recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


def test_the_connection_goes_to_the_checked_address_not_to_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = rebinding_dns(monkeypatch, [PUBLIC, "127.0.0.1"])
    seen: list[httpx.Request] = []
    with httpx.Client(transport=PinnedTransport(recording_transport(seen)), follow_redirects=False) as client:
        assert client.get("https://shop.example.com/admin/api").status_code == 200
    assert asked == ["shop.example.com"], "resolved once"
    [request] = seen
    assert request.url.host == PUBLIC
    assert request.headers["Host"] == "shop.example.com"
    assert request.extensions["sni_hostname"] == "shop.example.com", "TLS verifies the shop's name"


@pytest.mark.parametrize("private", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "192.168.1.1"])
def test_a_host_that_resolves_to_a_private_address_is_never_called(
    monkeypatch: pytest.MonkeyPatch, private: str
) -> None:
    rebinding_dns(monkeypatch, [private])
    seen: list[httpx.Request] = []
    with httpx.Client(transport=PinnedTransport(recording_transport(seen))) as client:
        with pytest.raises(PushError) as caught:
            client.get("https://shop.example.com/")
    assert caught.value.code == "unsafe_url" and not caught.value.retryable
    assert seen == []


def test_a_redirect_to_another_host_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.channels import load_channels
    from bridge.clock import ManualClock
    from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

    channel = load_channels(EXAMPLE_CONFIG, env=TEST_ENV).channels["woo-main"]
    rebinding_dns(monkeypatch, [PUBLIC])
    seen: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data"})

    http = push.StorefrontHttp(channel, ManualClock(), PinnedTransport(httpx.MockTransport(redirect)))
    with pytest.raises(PushError) as caught:
        http.request("GET", "https://shop.example.com/wp-json/wc/v3/orders/1", idempotent=True)
    assert caught.value.code == "redirect" and len(seen) == 1


# --------------------------------------------------------------------------------------------
# Real TLS on loopback: connecting to the pinned address still verifies the shop's certificate


def _certificates(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("Host") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _tls_server(tmp: Path, name: str) -> Iterator[tuple[int, Path]]:
    ca, cert, key = _certificates(tmp, name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], ca
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def shop_tls(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    yield from _tls_server(tmp_path, "shop.example.com")


def _loopback(host: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address("127.0.0.1")  # the test's stand-in for the checked public address


def test_tls_to_the_pinned_address_verifies_the_shops_name(shop_tls: tuple[int, Path]) -> None:
    port, ca = shop_tls
    inner = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(ca)))
    with httpx.Client(transport=PinnedTransport(inner, resolve=_loopback)) as client:
        response = client.get(f"https://shop.example.com:{port}/")
    assert response.status_code == 200 and response.text == f"shop.example.com:{port}"


def test_tls_to_the_pinned_address_refuses_a_certificate_for_another_name(shop_tls: tuple[int, Path]) -> None:
    port, ca = shop_tls
    inner = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(ca)))
    with httpx.Client(transport=PinnedTransport(inner, resolve=_loopback)) as client:
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate|hostname"):
            client.get(f"https://attacker.example.net:{port}/")
