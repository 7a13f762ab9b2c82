"""Process entry points: which stage handles which job kind, and the long-running loops."""

from __future__ import annotations

import logging
from typing import Any

from .amazon.accounts import build_amazon
from .bootstrap import Bridge
from .intake import JOB_PRIVACY, JOB_RELEASE, JOB_SUBMIT
from .pipeline.privacy import handle_privacy_job
from .pipeline.submit import handle_release, handle_submit
from .worker import Handler, Worker, install_signal_handlers

log = logging.getLogger("bridge.runtime")

HANDLERS: dict[str, Handler] = {
    JOB_SUBMIT: handle_submit,
    JOB_RELEASE: handle_release,
    JOB_PRIVACY: handle_privacy_job,
}


def make_worker(bridge: Bridge, **services: Any) -> Worker:
    services.setdefault("amazon", build_amazon(bridge))
    return Worker(bridge, HANDLERS, services=services, lease_s=bridge.settings.job_lease_s)


def run_worker(bridge: Bridge) -> None:
    worker = make_worker(bridge)
    install_signal_handlers(worker.stop)
    worker.run_forever()
