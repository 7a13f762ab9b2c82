"""`GET /metrics`: Prometheus text format, behind a bearer token (`BRIDGE_METRICS_TOKEN`)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from .. import metrics
from ..metrics.collect import ScrapeCache, collect, render
from ..storefronts.base import Rejection
from .auth import bearer_matches

bp = Blueprint("metrics", __name__)
#: Prometheus' classic text format, which every scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/metrics")
def scrape() -> Response:
    from ..app import current_bridge

    bridge = current_bridge()
    token = bridge.settings.metrics_token
    if not token:
        raise Rejection(404, "disabled", "set BRIDGE_METRICS_TOKEN to enable /metrics")
    if not bearer_matches(request.headers.get("Authorization"), token):
        raise Rejection(
            401,
            "unauthorized",
            "send `Authorization: Bearer <BRIDGE_METRICS_TOKEN>`",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    cache: ScrapeCache = current_app.extensions["metrics_cache"]

    def produce() -> bytes:
        metrics.flush(bridge.engine)  # this process's own recent events, not only the flushed ones
        return render(collect(bridge.engine, bridge.config))

    return Response(cache.get(produce), status=200, content_type=CONTENT_TYPE)
