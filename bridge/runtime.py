"""Process entry points: which stage handles which job kind, and the long-running processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

from .alerts import JOB_ALERT_DELIVERY
from .amazon.accounts import build_amazon
from .bootstrap import Bridge
from .intake import JOB_CANCEL, JOB_PRIVACY, JOB_RELEASE, JOB_RETURN, JOB_SUBMIT
from .pipeline.alert_delivery import handle_alert_delivery
from .pipeline.cancel import handle_cancel
from .pipeline.compaction import JOB_COMPACT, handle_compact
from .pipeline.privacy import handle_privacy_job, purge_expired
from .pipeline.pushback import handle_push
from .pipeline.returns import handle_return
from .pipeline.submit import handle_release, handle_submit
from .pipeline.sync import (
    JOB_PUSH,
    JOB_SYNC,
    JOB_SYNC_ORDER,
    JOB_SYNC_STALE,
    JOB_TRACK,
    handle_sync,
    handle_sync_order,
    handle_sync_stale,
    handle_track,
)
from .scheduler import JOB_PURGE, Clock
from .storefronts.registry import Storefronts
from .worker import Handler, JobContext, Worker, install_signal_handlers

log = logging.getLogger("bridge.runtime")


def _handle_purge(ctx: JobContext) -> None:
    days = int(ctx.job.payload.get("retention_days", ctx.bridge.settings.retention_days))
    purged = purge_expired(ctx, timedelta(days=days))
    log.info("retention purge removed personal data of %d order(s)", purged)


HANDLERS: dict[str, Handler] = {
    JOB_SUBMIT: handle_submit,
    JOB_RELEASE: handle_release,
    JOB_CANCEL: handle_cancel,
    JOB_PRIVACY: handle_privacy_job,
    JOB_SYNC: handle_sync,
    JOB_SYNC_ORDER: handle_sync_order,
    JOB_SYNC_STALE: handle_sync_stale,
    JOB_PUSH: handle_push,
    JOB_TRACK: handle_track,
    JOB_PURGE: _handle_purge,
    JOB_COMPACT: handle_compact,
    JOB_RETURN: handle_return,
    JOB_ALERT_DELIVERY: handle_alert_delivery,
}


def make_worker(bridge: Bridge, **services: Any) -> Worker:
    if "amazon" not in services:
        services["amazon"] = build_amazon(bridge)
    if "storefronts" not in services:
        services["storefronts"] = Storefronts(bridge.clock)
    return Worker(
        bridge,
        HANDLERS,
        services=services,
        lease_s=bridge.settings.job_lease_s,
        rate_wait_s=bridge.settings.rate_wait_s,
    )


def run_worker(bridge: Bridge) -> None:
    worker = make_worker(bridge)
    install_signal_handlers(worker.stop)
    worker.run_forever()


def run_clock(bridge: Bridge) -> None:
    clock = Clock(bridge)
    install_signal_handlers(clock.stop)
    clock.run_forever()


def run_notifications(bridge: Bridge) -> None:
    """The `notifications` process: Amazon's notifications from the SQS queue until SIGTERM."""
    from .amazon.sqs_consumer import ConsumerPolicy, SqsConsumer, sqs_client

    sqs = bridge.settings.sqs
    consumer = SqsConsumer(
        bridge.engine, bridge.clock, sqs_client(sqs), sqs.queue_url, ConsumerPolicy.from_settings(sqs)
    )
    install_signal_handlers(consumer.stop)
    consumer.run_forever()


def run_all(bridge: Bridge, host: str, port: int) -> None:
    """Single machine: web, worker and clock (and `notifications` when BRIDGE_SQS_QUEUE_URL is set)
    as child processes on one database; the bundled simulator (for `embedded_simulator` accounts)
    in this process, shared with them over loopback, publishing notifications to a local SQS
    (BRIDGE_SQS_ENDPOINT_URL) when a seller subscribed."""
    env = dict(os.environ)
    server = None
    publisher = None
    if (
        any(a.embedded_simulator for a in bridge.config.accounts.values())
        and not bridge.settings.simulator_url
    ):
        from .amazon.accounts import simulator_for
        from .amazon.simulator import create_simulator_app, serve_in_thread

        simulator = simulator_for(bridge)
        server = serve_in_thread(create_simulator_app(simulator))
        env["BRIDGE_SIMULATOR_URL"] = server.base_url
        log.info("MCF simulator (speed x%g) at %s", bridge.settings.simulator_speed, server.base_url)
        if bridge.settings.sqs.endpoint_url:
            from .amazon.simulator.publisher import NotificationPublisher, SqsSink

            publisher = NotificationPublisher(simulator, SqsSink(bridge.settings.sqs.endpoint_url))
            publisher.start()
    command = [sys.executable, "-m", "bridge.cli"]
    children = [
        subprocess.Popen([*command, "serve", "--host", host, "--port", str(port)], env=env),  # noqa: S603
        subprocess.Popen([*command, "worker"], env=env),  # noqa: S603
        subprocess.Popen([*command, "clock"], env=env),  # noqa: S603
    ]
    if bridge.settings.sqs.queue_url:
        children.append(subprocess.Popen([*command, "notifications"], env=env))  # noqa: S603
    stopping = threading.Event()

    def stop() -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    install_signal_handlers(stop)
    log.info("bridge running: webhooks at http://%s:%d/webhooks/<channel-id>", host, port)
    try:
        while not stopping.wait(1.0):
            if any(child.poll() is not None for child in children):
                log.error("a bridge process exited; stopping the others")
                stop()
        for child in children:
            child.wait(timeout=30)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        if publisher is not None:
            publisher.stop()
        if server is not None:
            server.stop()
