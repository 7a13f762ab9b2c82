"""Gunicorn embedded, so `fba-bridge serve` and `fba-bridge run` need no separate command line."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


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
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 25,
        "keepalive": 5,
        "accesslog": None,
    }


def run_gunicorn(host: str, port: int, workers: int, threads: int = 16) -> None:
    _Embedded(gunicorn_options(host, port, workers, threads)).run()
