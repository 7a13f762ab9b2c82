"""`bridge run`: web, worker and clock on one machine, a real order end to end, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import EXAMPLE_CONFIG, ROOT, TEST_ENV
from tests.fault.test_worker_processes import wait_for
from tests.support import shopify_delivery, shopify_order


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bridge_run_serves_submits_and_stops(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "run.sqlite3"
    env = {
        **os.environ,
        **TEST_ENV,
        "DATABASE_URL": f"sqlite:///{db}",
        "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
        "BRIDGE_SIMULATOR_SPEED": "600",
        "LOG_LEVEL": "INFO",
    }
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=60, what="the web process")
        body, headers = shopify_delivery(shopify_order(8801))
        assert (
            httpx.post(base + "/webhooks/shop-a", content=body, headers=headers).json()["status"]
            == "accepted"
        )

        def submitted() -> bool:
            out = subprocess.run(
                [sys.executable, "-m", "bridge.cli", "order", "shop-a", "8801"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            return "state=submitted" in out.stdout or "state=shipped" in out.stdout

        wait_for(submitted, timeout=60, what="the worker to create the order at the simulator")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
        assert time.monotonic() - started < 35
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert b"clock is the leader" in (tmp_path / "run.log").read_bytes()
