"""`run_simulator`: the standalone simulator process behind `fba-bridge simulator`."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from werkzeug.serving import make_server

from bridge.clock import ScaledClock, SystemClock

from .app import create_simulator_app
from .config import SimulatorConfig, load_config
from .publisher import NotificationPublisher, SqsSink
from .state import Simulator

log = logging.getLogger(__name__)


def run_simulator(
    host: str, port: int, speed: float, config_path: str | None, sqs_endpoint: str | None = None
) -> None:
    """Serve the simulator until interrupted (Ctrl-C / SIGINT, or SIGTERM from a supervisor).

    Fulfilment runs `speed` times faster than real time; rate limits and token lifetimes stay
    in real time. `config_path` is an optional JSON/YAML `SimulatorConfig` file. With
    `sqs_endpoint` (a local SQS), subscribed sellers get FULFILLMENT_ORDER_STATUS notifications.
    """
    config = load_config(config_path) if config_path else SimulatorConfig()
    sim = Simulator(config, clock=ScaledClock(speed), rate_clock=SystemClock())
    publisher = None
    if sqs_endpoint:
        publisher = NotificationPublisher(sim, SqsSink(sqs_endpoint))
        publisher.start()
    server = make_server(host, port, create_simulator_app(sim), threaded=True)
    log.info(
        "MCF simulator on http://%s:%s (fulfilment x%s); LWA client_id %s; %d SKU(s)",
        host,
        server.server_port,
        speed,
        config.credentials.client_id,
        len(config.skus),
    )
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        server.serve_forever()  # werkzeug's loop returns on KeyboardInterrupt
    finally:
        server.server_close()
        if publisher is not None:
            publisher.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    log.info("simulator stopped")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
