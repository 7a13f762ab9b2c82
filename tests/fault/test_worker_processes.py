"""Real worker processes against the simulator on loopback: SIGKILL, SIGSTOP, two workers, SIGTERM.

Each test runs on the suite's database (SQLite file, or PostgreSQL when configured).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge.amazon.simulator import RunningServer, Simulator, load_config, serve_in_thread
from bridge.amazon.simulator.app import create_simulator_app
from bridge.bootstrap import Bridge
from bridge.store import OrderEventRecord, OrderRecord, read_session
from tests.conftest import EXAMPLE_CONFIG, ROOT, TEST_ENV
from tests.support import shopify_delivery, shopify_order

LEASE_S = 2
CREATE_ANSWER_DELAY_S = 8


@pytest.fixture
def live_simulator() -> Iterator[tuple[Simulator, RunningServer]]:
    sim = Simulator(load_config(ROOT / "config" / "simulator.yaml"))
    server = serve_in_thread(create_simulator_app(sim))
    yield sim, server
    server.stop()


@pytest.fixture
def spawn(
    database_url: str, live_simulator: tuple[Simulator, RunningServer], tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            **TEST_ENV,
            "DATABASE_URL": database_url,
            "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
            "BRIDGE_SIMULATOR_URL": live_simulator[1].base_url,
            "BRIDGE_JOB_LEASE_S": str(LEASE_S),
            "LOG_LEVEL": "INFO",
        }
        log = (tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        processes.append(proc)
        return proc

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(10)


def wait_for(condition: Callable[[], bool], timeout: float = 90.0, what: str = "condition") -> None:
    """Generous: a worker process starting on a busy 2-core machine can take tens of seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def state_of(bridge: Bridge, external_id: str) -> str:
    with read_session(bridge.engine) as session:
        return session.execute(
            select(OrderRecord.state).where(OrderRecord.external_id == external_id)
        ).scalar_one()


def created_events(bridge: Bridge) -> int:
    with read_session(bridge.engine) as session:
        return len(list(session.execute(select(OrderEventRecord).where(OrderEventRecord.event == "created"))))


def send(client: FlaskClient, order_id: int) -> None:
    body, headers = shopify_delivery(shopify_order(order_id))
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def test_worker_killed_between_amazons_answer_and_our_commit(
    client: FlaskClient,
    bridge: Bridge,
    live_simulator: tuple[Simulator, RunningServer],
    spawn: Callable[..., subprocess.Popen[bytes]],
) -> None:
    sim, _ = live_simulator
    sim.inject_fault("createFulfillmentOrder", kind="accept_then_delay", delay_seconds=CREATE_ANSWER_DELAY_S)
    send(client, 3001)
    first = spawn("first")
    wait_for(lambda: sim.ledger.creates("shop-a-3001") == 1, what="Amazon to accept the create")
    first.kill()  # SIGKILL while the answer is on its way
    first.wait(10)
    assert state_of(bridge, "3001") == "submitting"
    spawn("second")
    wait_for(lambda: state_of(bridge, "3001") == "submitted", what="the second worker to finish the job")
    assert sim.ledger.creates("shop-a-3001") == 1
    assert created_events(bridge) == 1


def test_worker_paused_past_its_lease_makes_no_stale_write(
    client: FlaskClient,
    bridge: Bridge,
    live_simulator: tuple[Simulator, RunningServer],
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    sim, _ = live_simulator
    sim.inject_fault("createFulfillmentOrder", kind="accept_then_delay", delay_seconds=CREATE_ANSWER_DELAY_S)
    send(client, 3002)
    paused = spawn("paused")
    wait_for(lambda: sim.ledger.creates("shop-a-3002") == 1, what="Amazon to accept the create")
    paused.send_signal(signal.SIGSTOP)
    spawn("takeover")
    wait_for(lambda: state_of(bridge, "3002") == "submitted", what="the takeover worker to finish the job")
    paused.send_signal(signal.SIGCONT)
    wait_for(
        lambda: b"its result was discarded" in (tmp_path / "paused.log").read_bytes(),
        timeout=CREATE_ANSWER_DELAY_S + 20,
        what="the paused worker to notice it lost the job",
    )
    assert sim.ledger.creates("shop-a-3002") == 1
    assert created_events(bridge) == 1


def test_two_worker_processes_drain_one_queue_each_job_once_and_stop_on_sigterm(
    client: FlaskClient,
    bridge: Bridge,
    live_simulator: tuple[Simulator, RunningServer],
    spawn: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    sim, _ = live_simulator
    workers = [spawn("a"), spawn("b")]
    for log in (tmp_path / "a.log", tmp_path / "b.log"):  # both polling, SIGTERM handled, before any order
        wait_for(
            lambda log=log: b"worker started" in log.read_bytes(), timeout=60, what=f"{log.name} to start"
        )
    orders = list(range(4000, 4024))
    for order_id in orders:
        send(client, order_id)

    def all_submitted() -> bool:
        with read_session(bridge.engine) as session:
            return set(session.execute(select(OrderRecord.state)).scalars()) == {"submitted"}

    wait_for(all_submitted, timeout=90, what="both workers to drain the queue")
    assert all(sim.ledger.creates(f"shop-a-{n}") == 1 for n in orders)
    assert sim.ledger.calls("getFulfillmentPreview") == len(orders), "no job ran twice"
    assert sim.ledger.throttled() == 0
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        assert proc.wait(30) == 0
