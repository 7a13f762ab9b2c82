"""Gunicorn embedded, so `fba-bridge serve` and `fba-bridge run` need no separate command line."""

from __future__ import annotations

import gc
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from .admission import MIDDLEWARE_KEY, AdmissionMiddleware, mark_queued, waited_since

WORKER_CLASS = "bridge.web.server.QueueTimedWorker"


class QueueTimedWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, telling the webhook gate how long each request waited.

    gthread hands ready connections to its threads through an unbounded queue; under overload
    that queue, not the app, is where the time goes. The worker stamps a connection when it is
    queued for a thread and the gate (bridge/web/admission.py) refuses a request that already
    waited longer than `BRIDGE_WEBHOOK_QUEUE_WAIT_S`, in well under a millisecond, so the queue
    drains instead of growing past the storefront's timeout. A webhook on a new connection that
    the gate would refuse at once is refused before gunicorn parses it at all."""

    def load_wsgi(self) -> None:
        """Load the app, then move everything alive at that point (modules, the Flask app,
        SQLAlchemy's mappers, compiled schemas: ~120,000 objects) to the permanent generation.
        A full collection walks them otherwise: measured in-process, one every ~3,000 webhooks,
        each 30-90 ms with every thread of the worker stopped, which is what set p99 at a few
        hundred webhooks a second. Collections still run; they just skip what never dies."""
        super().load_wsgi()
        gc.freeze()

    def enqueue_req(self, conn: Any) -> None:
        conn.bridge_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        queued_at = getattr(conn, "bridge_queued_at", None)
        if self._refused_unparsed(conn, queued_at):
            return False  # the request was read and answered; gunicorn closes the connection
        mark_queued(queued_at)
        try:
            return super().handle(conn)
        finally:
            mark_queued(None)

    def _refused_unparsed(self, conn: Any, queued_at: float | None) -> bool:
        # Only a new plain-text connection: on a kept-alive one the parser may already hold the
        # next request, and a TLS socket's bytes are not the request.
        if self.cfg.is_ssl or getattr(conn, "initialized", True):
            return False
        middleware = getattr(self.wsgi, "extensions", {}).get(MIDDLEWARE_KEY)
        if not isinstance(middleware, AdmissionMiddleware):
            return False
        return middleware.refuse_unparsed(conn.sock, waited_since(queued_at))


class _Embedded(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from ..app import create_app

        return create_app()


def gunicorn_options(host: str, port: int, workers: int, threads: int = 16) -> dict[str, Any]:
    """gthread workers. `threads` exceeds the webhook admission bound (concurrency + queue, see
    bridge/web/admission.py) so spare threads answer refusals at once instead of leaving them in
    gunicorn's queue; `backlog` stays at gunicorn's 2048: the kernel holds bursts, not refusals."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": WORKER_CLASS,
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 25,
        "keepalive": 5,
        "accesslog": None,
    }


def run_gunicorn(host: str, port: int, workers: int, threads: int = 16) -> None:
    _Embedded(gunicorn_options(host, port, workers, threads)).run()
