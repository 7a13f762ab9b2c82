"""Fault injection: make the next N calls of an operation fail the ways Amazon's calls fail.

Kinds:
- `status`: answer `status` (429, 500, 503, ...) with Amazon's envelope, optionally with a
  `Retry-After` header (seconds, or an HTTP date computed on the rate clock).
- `accept_then_drop`: do the work (e.g. store the order), then drop the connection with no
  response; the client cannot know whether its call took effect.
- `drop`: drop the connection without doing the work.
- `expire_tokens`: expire every issued access token, then handle the call normally (it gets the
  expired-token 403).
- `revoke_access_tokens`: revoke every issued access token (refresh tokens keep working), then
  handle the call normally (it gets the 403 "revoked, malformed or invalid").
Any kind may add `delay_seconds` (real time, bounded by the config) before the call is handled.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from .config import NOTIFICATION_OPERATIONS, OPERATIONS
from .envelope import invalid_input

ANY_OPERATION = "*"


class FaultKind(StrEnum):
    STATUS = "status"
    ACCEPT_THEN_DROP = "accept_then_drop"
    ACCEPT_THEN_DELAY = "accept_then_delay"
    DROP = "drop"
    EXPIRE_TOKENS = "expire_tokens"
    REVOKE_ACCESS_TOKENS = "revoke_access_tokens"


@dataclass
class Fault:
    operation: str
    kind: FaultKind = FaultKind.STATUS
    status: int = 503
    count: int = 1
    retry_after: int | str | None = None
    retry_after_as_date: bool = False
    delay_seconds: float = 0.0
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.operation != ANY_OPERATION and self.operation not in (*OPERATIONS, *NOTIFICATION_OPERATIONS):
            raise ValueError(f"unknown operation {self.operation!r}")
        self.kind = FaultKind(self.kind)
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.delay_seconds < 0:
            raise ValueError("delay_seconds must not be negative")
        if self.kind is FaultKind.STATUS and not 400 <= self.status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Parse the body of `POST /_sim/faults` (camelCase keys); raise a 400 ApiError if wrong."""
        keys = {
            "operation": "operation",
            "kind": "kind",
            "status": "status",
            "count": "count",
            "retryAfter": "retry_after",
            "retryAfterAsDate": "retry_after_as_date",
            "delaySeconds": "delay_seconds",
            "code": "code",
            "message": "message",
        }
        unknown = set(data) - set(keys)
        if unknown:
            raise invalid_input(f"Unknown fault parameter(s): {', '.join(sorted(unknown))}.")
        if "operation" not in data:
            raise invalid_input("Missing required parameter operation.")
        try:
            return cls(**{keys[k]: v for k, v in data.items()})
        except (TypeError, ValueError) as exc:
            raise invalid_input(f"Invalid fault: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = str(self.kind)
        return d


class FaultBook:
    """Pending faults, consumed first-in first-out per operation; thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, operation: str) -> Fault | None:
        """Consume one use of the oldest fault matching `operation` (or `*`)."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.operation in (operation, ANY_OPERATION):
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[i]
                    return fault
            return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
