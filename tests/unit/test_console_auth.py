"""The console's access rules that need no app: throttling, names, loopback, signed notes."""

from __future__ import annotations

from bridge.settings import ConsoleSettings, Secret
from bridge.web.console.auth import ConsoleAuth, LoginLimiter, clean_name, is_loopback_host


def test_the_throttle_stops_one_address_and_a_spread_out_run() -> None:
    limiter = LoginLimiter(per_address=3, overall=10, window_s=60)
    for _ in range(3):
        limiter.failed("198.51.100.1", 0)
    assert limiter.wait_s("198.51.100.1", 1) == 59
    assert limiter.wait_s("198.51.100.2", 1) == 0
    for n in range(7):
        limiter.failed(f"203.0.113.{n}", 2)
    assert limiter.wait_s("192.0.2.99", 3) > 0  # ten failures in all: everyone waits
    assert limiter.wait_s("192.0.2.99", 62.5) == 0  # the window moved on


def test_a_successful_sign_in_clears_only_that_address() -> None:
    limiter = LoginLimiter(per_address=2, overall=100, window_s=60)
    for address in ("198.51.100.1", "198.51.100.2"):
        limiter.failed(address, 0)
        limiter.failed(address, 0)
    limiter.succeeded("198.51.100.1")
    assert limiter.wait_s("198.51.100.1", 1) == 0 and limiter.wait_s("198.51.100.2", 1) > 0


def test_operator_names_are_plain_and_short() -> None:
    assert clean_name('<script>alert("x")</script> Ann') == "scriptalertxscript Ann"
    assert clean_name("   ") == "operator"
    assert len(clean_name("x" * 500)) == 48


def test_only_loopback_names_count_as_a_developer_machine() -> None:
    for host in ("localhost", "localhost:8000", "127.0.0.1:5000", "[::1]:8000"):
        assert is_loopback_host(host), host
    for host in ("bridge.example.com", "127.0.0.1.example.com", "10.0.0.1:80", "[bad"):
        assert not is_loopback_host(host), host


def test_notes_and_sessions_do_not_survive_tampering_or_another_key() -> None:
    auth = ConsoleAuth(ConsoleSettings(password_hash=Secret("pbkdf2:sha256:1000$salt$00")))
    note = auth.sign_note("ok:done")
    assert auth.read_note(note) == "ok:done" and auth.read_note(note + "x") == ""
    _, cookie = auth.new_session("Ann")
    assert auth.read_session(cookie) is not None
    other = ConsoleAuth(ConsoleSettings(password_hash=Secret("pbkdf2:sha256:1000$salt$11")))
    assert other.read_session(cookie) is None  # a new password ends every session
