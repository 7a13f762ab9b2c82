"""Secret checks shared by every protected surface: /metrics and Amazon notifications
(`bearer_matches`), the console's form and login tokens (`same_secret`), and any operator surface
to come (`secret_matches` for a value against one or several configured secrets).

What a caller may rely on:

- Comparisons take the same time whatever the guess: both sides are hashed (SHA-256) and the
  digests compared with `hmac.compare_digest`, so neither the content nor the length of the
  secret leaks through timing. With several secrets (rotation), every one is compared.
- An unset secret matches nothing.
- Nothing here logs, and no error raised here quotes a given or expected value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from ..settings import Secret


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).digest()


def secret_matches(given: str | None, expected: Secret | Iterable[Secret] | None) -> bool:
    """True when `given` equals the secret (or one of the secrets), compared in constant time."""
    if expected is None:
        return False
    candidates = [expected] if isinstance(expected, Secret) else list(expected)
    offered = _digest(given or "")
    ok = False
    for secret in candidates:
        value = secret.reveal() if secret else ""
        ok |= bool(value) and hmac.compare_digest(offered, _digest(value))
    return ok and bool(given)


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time equality of two secret strings (a form token, a nonce); empty never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(_digest(given), _digest(expected))


def bearer_matches(authorization: str | None, token: Secret | None) -> bool:
    """True when an `Authorization: Bearer <token>` header carries `token`."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secret_matches(given.strip(), token)
