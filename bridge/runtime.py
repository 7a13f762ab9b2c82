"""Process entry points: which stage handles which job kind, and the long-running processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from . import metrics
from .alerts import JOB_ALERT_DELIVERY
from .amazon.accounts import build_amazon, require_shared_simulator
from .amazon.limiter import DatabaseBuckets
from .bootstrap import Bridge
from .intake import JOB_AMEND, JOB_CANCEL, JOB_INTAKE, JOB_PRIVACY, JOB_RELEASE, JOB_RETURN, JOB_SUBMIT
from .pipeline.alert_delivery import handle_alert_delivery
from .pipeline.amend import handle_amend
from .pipeline.cancel import handle_cancel
from .pipeline.compaction import JOB_COMPACT, handle_compact
from .pipeline.deferred_intake import handle_deferred_intake
from .pipeline.fallback import JOB_FALLBACK, handle_fallback
from .pipeline.inventory import (
    JOB_INVENTORY_PUSH,
    JOB_INVENTORY_SYNC,
    handle_inventory_push,
    handle_inventory_sync,
)
from .pipeline.privacy import handle_privacy_job, purge_expired
from .pipeline.pushback import handle_push
from .pipeline.reconcile import JOB_RECONCILE, handle_reconcile
from .pipeline.requests import (
    JOB_ANSWER_CANCELLATION,
    JOB_REQUESTS,
    handle_answer_cancellation,
    handle_requests,
)
from .pipeline.returns import handle_return
from .pipeline.scope import check_storefronts
from .pipeline.shop_budget import SharedCostBuckets
from .pipeline.submit import handle_submit
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
    JOB_INTAKE: handle_deferred_intake,
    JOB_SUBMIT: handle_submit,
    JOB_AMEND: handle_amend,
    JOB_RELEASE: handle_amend,
    JOB_FALLBACK: handle_fallback,
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
    JOB_REQUESTS: handle_requests,
    JOB_ANSWER_CANCELLATION: handle_answer_cancellation,
    JOB_INVENTORY_SYNC: handle_inventory_sync,
    JOB_INVENTORY_PUSH: handle_inventory_push,
    JOB_RECONCILE: handle_reconcile,
}


def make_worker(bridge: Bridge, **services: Any) -> Worker:
    if "amazon" not in services:
        services["amazon"] = build_amazon(bridge)
    if "storefronts" not in services:
        shared = SharedCostBuckets(DatabaseBuckets(bridge.engine, bridge.clock))
        services["storefronts"] = Storefronts(bridge.clock, cost_budget=shared)
    return Worker(
        bridge,
        HANDLERS,
        services=services,
        lease_s=bridge.settings.job_lease_s,
        rate_wait_s=bridge.settings.rate_wait_s,
    )


def run_worker(bridge: Bridge) -> int:
    """The `worker` process; returns its exit status (non-zero: the database cannot be used)."""
    require_shared_simulator(bridge)
    worker = make_worker(bridge)
    check_storefronts(bridge, worker.services["storefronts"])
    install_signal_handlers(worker.stop)
    metrics.start(bridge.engine, bridge.settings.metrics_flush_s)
    try:
        worker.run_forever()
    finally:
        metrics.stop()
        metrics.flush(bridge.engine)  # the last counts, before the process exits
    return 1 if worker.fatal else 0


def run_clock(bridge: Bridge) -> int:
    """The `clock` process; returns its exit status (non-zero: the database cannot be used)."""
    clock = Clock(bridge)
    install_signal_handlers(clock.stop)
    clock.run_forever()
    return 1 if clock.fatal else 0


def run_notifications(bridge: Bridge) -> None:
    """The `notifications` process: Amazon's notifications from the SQS queue until SIGTERM."""
    from .amazon.sqs_consumer import ConsumerPolicy, SqsConsumer, sqs_client

    sqs = bridge.settings.sqs
    consumer = SqsConsumer(
        bridge.engine, bridge.clock, sqs_client(sqs), sqs.queue_url, ConsumerPolicy.from_settings(sqs)
    )
    install_signal_handlers(consumer.stop)
    consumer.run_forever()


class PortInUse(RuntimeError):
    pass


def check_port_free(host: str, port: int) -> None:
    """Fail before starting anything when the web port is taken (gunicorn would retry, then die)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); stop what uses it, or pass "
                "--port (or set PORT) to use another port"
            ) from None


def run_all(bridge: Bridge, host: str, port: int, *, with_fakes: bool = False) -> int:
    """Single machine: web, worker and clock (and `notifications` when BRIDGE_SQS_QUEUE_URL is set)
    as child processes on one database; the bundled simulator (for `embedded_simulator` accounts)
    and, with `with_fakes`, the fake shops in this process, shared with them over loopback (the
    simulator publishes notifications to a local SQS when BRIDGE_SQS_ENDPOINT_URL is set).
    Returns 0 after SIGTERM/SIGINT, 1 when a child died (so a supervisor restarts the whole set)."""
    env = dict(os.environ)
    stoppers: list[Callable[[], None]] = []
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if with_fakes:
            from .fakes.local import shops_for

            shops = shops_for(bridge.config, bridge.engine)
            stoppers.append(shops.stop)
            env.update(shops.env())
            log.info("fake shops: %s", ", ".join(f"{name} {s.base_url}" for name, s in shops.servers.items()))
        elif local := sorted(c.id for c in bridge.config.channels.values() if c.storefront.local):
            log.warning(
                "channel(s) %s push tracking to local test servers (storefront.local: true), which only "
                "--with-fakes and the demo start; set the shops' real addresses before going live",
                ", ".join(local),
            )
        if (
            any(a.embedded_simulator for a in bridge.config.accounts.values())
            and not bridge.settings.simulator_url
        ):
            from .amazon.accounts import simulator_for
            from .amazon.simulator import create_simulator_app, serve_in_thread

            simulator = simulator_for(bridge)
            server = serve_in_thread(create_simulator_app(simulator))
            stoppers.append(server.stop)
            env["BRIDGE_SIMULATOR_URL"] = server.base_url
            log.info("MCF simulator (speed x%g) at %s", bridge.settings.simulator_speed, server.base_url)
            if bridge.settings.sqs.endpoint_url:
                # A local SQS (e.g. moto): the simulator publishes notifications to subscribed queues.
                from .amazon.simulator.publisher import NotificationPublisher, SqsSink

                publisher = NotificationPublisher(simulator, SqsSink(bridge.settings.sqs.endpoint_url))
                publisher.start()
                stoppers.append(publisher.stop)
        command = [sys.executable, "-m", "bridge"]
        for name, args in (
            ("web", ["serve", "--host", host, "--port", str(port)]),
            ("worker", ["worker"]),
            ("clock", ["clock"]),
            *([("notifications", ["notifications"])] if bridge.settings.sqs.queue_url else []),
        ):
            children[name] = subprocess.Popen([*command, *args], env=env)  # noqa: S603
        return _supervise(children, host, port)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait(10)
        for stop in reversed(stoppers):
            stop()


def _supervise(children: dict[str, subprocess.Popen[bytes]], host: str, port: int) -> int:
    stopping = threading.Event()

    def stop() -> None:
        stopping.set()
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    install_signal_handlers(stop)
    log.info(
        "fba-bridge running: webhooks at http://%s:%d/webhooks/<channel-id> (%s)",
        host,
        port,
        ", ".join(f"{name} pid {child.pid}" for name, child in children.items()),
    )
    died: list[str] = []
    while not stopping.wait(0.5):
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                log.error("the %s process exited (status %s); stopping the others", name, code)
                died.append(name)
                stop()
                break
    for child in children.values():
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    return 1 if died else 0
