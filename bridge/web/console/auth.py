"""Who may use the console: sessions, form tokens, login throttling and security headers.

One scheme a single-merchant deployment sets up with one variable: `BRIDGE_CONSOLE_PASSWORD_HASH`
(a werkzeug scrypt/pbkdf2 hash; `fba-bridge console-password` makes one). Behind an OIDC-aware
reverse proxy, `BRIDGE_CONSOLE_TRUSTED_HEADER` names the header that carries the signed-in user,
believed only from `BRIDGE_CONSOLE_TRUSTED_PROXIES`. With neither set the console is off.

A session is a signed, timed cookie (`itsdangerous`, which Flask already uses) holding the
operator's name and a random form token; every POST must echo that token (CSRF). Cookies are
`HttpOnly`, `SameSite=Strict`, scoped to `/console/`, and `Secure` unless the console is reached
over plain http on a loopback name (a developer's machine). Passwords and cookies are never
logged; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from ...settings import ConsoleSettings

SESSION_COOKIE = "fba_console"
LOGIN_COOKIE = "fba_console_login"
COOKIE_PATH = "/console/"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_NAME = re.compile(r"[^A-Za-z0-9 ._@+-]")

#: Content-Security-Policy: everything from the bridge itself, no inline script or style, no
#: framing (clickjacking), forms post only to the bridge.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Operator:
    """The signed-in operator: `name` goes into the audit trail; `csrf` must come back in forms."""

    name: str
    csrf: str

    @property
    def actor(self) -> str:
        return f"console:{self.name}"


def clean_name(name: str) -> str:
    """An operator name safe for the audit trail and the page: a few plain characters."""
    cleaned = " ".join(_NAME.sub("", name).split())[:48]
    return cleaned or "operator"


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, `127.0.0.1` and `[::1]`, with or without a port."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    return name in LOOPBACK_NAMES


MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    """The value for `BRIDGE_CONSOLE_PASSWORD_HASH` (werkzeug's scrypt)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"use a console password of at least {MIN_PASSWORD} characters")
    return generate_password_hash(password, method="scrypt")


class LoginLimiter:
    """Failed logins per client address and in all, over a sliding window, in this process.

    Per process on purpose: it needs no table and no write per attempt; with N gunicorn workers
    an address gets at most N x `per_address` tries per window (README, "Console"). A success
    clears the address's count; the global cap stops a spread-out guessing run."""

    def __init__(self, per_address: int = 5, overall: int = 50, window_s: float = 900.0) -> None:
        self.per_address = per_address
        self.overall = overall
        self.window_s = window_s
        self._by_address: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for address in list(self._by_address):
            times = self._by_address[address]
            while times and times[0] <= horizon:
                times.popleft()
            if not times:
                del self._by_address[address]

    def wait_s(self, address: str, now: float) -> float:
        """0 when `address` may try now, else how many seconds until it may."""
        with self._lock:
            self._prune(now)
            waits = [0.0]
            times = self._by_address.get(address)
            if times and len(times) >= self.per_address:
                waits.append(times[0] + self.window_s - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window_s - now)
            return max(waits)

    def failed(self, address: str, now: float) -> None:
        with self._lock:
            self._prune(now)
            if len(self._by_address) > 10_000:  # a flood of addresses: keep memory bounded
                self._by_address.clear()
            self._by_address.setdefault(address, deque()).append(now)
            self._all.append(now)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._by_address.pop(address, None)


class ConsoleAuth:
    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        key = (
            settings.secret_key.reveal()
            or hmac.new(
                b"fba-bridge console session key", settings.password_hash.reveal().encode(), hashlib.sha256
            ).hexdigest()
        )
        self._sessions = URLSafeTimedSerializer(key, salt="fba-bridge.console.session")
        self._login = URLSafeTimedSerializer(key, salt="fba-bridge.console.login")
        self._notes = URLSafeSerializer(key, salt="fba-bridge.console.note")
        self.max_age_s = int(settings.session_hours * 3600)
        self.limiter = LoginLimiter()

    @property
    def uses_password(self) -> bool:
        return bool(self.settings.password_hash)

    def password_matches(self, password: str) -> bool:
        """werkzeug compares the derived keys in constant time; an empty password never matches."""
        if not password or not self.uses_password:
            return False
        return check_password_hash(self.settings.password_hash.reveal(), password)

    def new_session(self, name: str) -> tuple[Operator, str]:
        operator = Operator(clean_name(name), secrets.token_urlsafe(24))
        return operator, self._sessions.dumps({"u": operator.name, "c": operator.csrf})

    def read_session(self, cookie: str | None) -> Operator | None:
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        name, csrf = data.get("u"), data.get("c")
        if not isinstance(name, str) or not isinstance(csrf, str):
            return None
        return Operator(name, csrf)

    def trusted_user(self, remote_addr: str | None, header_value: str | None) -> str | None:
        """The proxy's signed-in user, when the request really came from a trusted proxy."""
        if not self.settings.trusted_header or not header_value or not remote_addr:
            return None
        try:
            remote = ip_address(remote_addr)
        except ValueError:
            return None
        for proxy in self.settings.trusted_proxies:
            try:
                if ip_address(proxy) == remote:
                    return clean_name(header_value)
            except ValueError:
                continue
        return None

    # The login form's own token: a nonce in a cookie, signed in the form (login CSRF).
    def new_login_token(self) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(16)
        return nonce, self._login.dumps(nonce)

    def login_token_matches(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        try:
            signed = self._login.loads(token, max_age=3600)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed.encode(), nonce.encode())

    # A result message carried across the redirect after an action, signed so a link cannot
    # put words of someone else's into the console.
    def sign_note(self, text: str) -> str:
        return self._notes.dumps(text[:500])

    def read_note(self, token: str | None) -> str:
        if not token:
            return ""
        try:
            text = self._notes.loads(token)
        except BadSignature:
            return ""
        return text if isinstance(text, str) else ""


@dataclass(frozen=True)
class SignIn:
    """What became of one sign-in attempt: `cookie` on success, else `error` and its status."""

    status: int
    error: str = ""
    cookie: str = ""
    operator: Operator | None = None
    retry_after_s: int = 0


def sign_in(
    auth: ConsoleAuth,
    address: str,
    now: float,
    *,
    nonce: str | None,
    token: str | None,
    password: str,
    name: str,
) -> SignIn:
    """Throttle, then check the form's own token, then the password (counting a failure)."""
    wait = auth.limiter.wait_s(address, now)
    if wait > 0:
        return SignIn(429, "Too many failed sign-ins; wait and retry.", retry_after_s=int(wait) + 1)
    if not auth.login_token_matches(nonce, token):
        return SignIn(400, "The sign-in form expired; try again.")
    if not auth.password_matches(password):
        auth.limiter.failed(address, now)
        return SignIn(401, "Wrong password.")
    auth.limiter.succeeded(address)
    operator, cookie = auth.new_session(name)
    return SignIn(302, cookie=cookie, operator=operator)


def csrf_matches(operator: Operator, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(operator.csrf.encode(), (given or "").encode())
