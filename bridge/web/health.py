"""`GET /healthz`: is the process up and can it reach its database."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ..store import ping

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    from ..app import current_bridge

    ok = ping(current_bridge().engine)
    return jsonify(
        status="ok" if ok else "degraded", database="ok" if ok else "unreachable"
    ), 200 if ok else 503
