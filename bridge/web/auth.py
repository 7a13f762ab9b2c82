"""Bearer-token checks shared by every protected endpoint (metrics, Amazon notifications)."""

from __future__ import annotations

import hmac

from ..settings import Secret


def bearer_matches(authorization: str | None, token: Secret) -> bool:
    """True when an `Authorization: Bearer <token>` header carries `token`.

    Compared in constant time; an unset token matches nothing. Neither value is ever logged.
    """
    if not token or not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.reveal().encode())
