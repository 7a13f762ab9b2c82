"""`fba-bridge run`: web, worker and clock on one machine, a real order end to end, clean SIGTERM,
a non-zero exit when a process dies or the port is taken, and `--with-fakes` closing the loop."""

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
        [sys.executable, "-m", "bridge", "run", "--port", str(port)],
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
                [sys.executable, "-m", "bridge", "order", "shop-a", "8801"],
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
    output = (tmp_path / "run.log").read_bytes()
    assert b"clock is the leader" in output
    assert b"channel(s) own-shop, shop-a, woo-main push tracking to local test servers" in output


def _run_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **TEST_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
        "LOG_LEVEL": "INFO",
        **extra,
    }


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of a process's children, from /proc. A thread or child that exits
    while it is being read (its /proc entry gone) is skipped, not an error."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (FileNotFoundError, ProcessLookupError):
                continue
            out.append((int(child), cmdline))
    return out


def test_bridge_run_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bridge", "run", "--port", str(port)],
            env=_run_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_bridge_run_exits_non_zero_when_one_of_its_processes_dies(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "run", "--port", str(port)],
        env=_run_env(tmp_path),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: any(" worker" in cmd for _, cmd in _children(proc.pid)), timeout=60, what="the worker"
        )
        wait_for(
            lambda: b"worker started" in (tmp_path / "run.log").read_bytes(), timeout=60, what="worker start"
        )
        [worker] = [pid for pid, cmd in _children(proc.pid) if cmd.rstrip().endswith(" worker")]
        os.kill(worker, signal.SIGKILL)
        assert proc.wait(60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = (tmp_path / "run.log").read_bytes()
    assert b"the worker process exited (status -9); stopping the others" in output


def test_bridge_run_with_fakes_closes_the_loop_locally(tmp_path: Path) -> None:
    """The example channels file as shipped, plus `--with-fakes`: a Shopify order goes to the
    simulator, ships, and its tracking lands in the fake Shopify the run started."""
    port = free_port()
    env = _run_env(tmp_path, BRIDGE_SIMULATOR_SPEED="3600", BRIDGE_SYNC_INTERVAL_S="2")
    for name in ("SHOP_A_URL", "WOO_URL", "OWN_SHOP_CALLBACK_URL"):
        env.pop(name, None)
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "run", "--port", str(port), "--with-fakes"],
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
        body, headers = shopify_delivery(shopify_order(8802))
        answer = httpx.post(base + "/webhooks/shop-a", content=body, headers=headers)
        assert answer.json()["status"] == "accepted"

        def pushed() -> bool:
            out = subprocess.run(
                [sys.executable, "-m", "bridge", "order", "shop-a", "8802"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            return "pushed:shipment" in out.stdout

        wait_for(pushed, timeout=90, what="tracking pushed to the fake Shopify")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = (tmp_path / "run.log").read_bytes()
    assert b"fake shops: shopify http://127.0.0.1:" in output
