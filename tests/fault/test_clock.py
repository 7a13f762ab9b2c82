"""The clock process for real: one leader among two, takeover after a crash, coalesced catch-up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import EXAMPLE_CONFIG, ROOT, TEST_ENV
from tests.fault.test_worker_processes import wait_for

RUN_LINE = re.compile(rb"^(\S+ \S+) INFO bridge.clock periodic sync:main", re.MULTILINE)


@pytest.fixture
def spawn_clock(
    database_url: str, db: Engine, tmp_path: Path
) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, lease_s: float, interval_s: float) -> tuple[subprocess.Popen[bytes], Path]:
        env = {
            **os.environ,
            **TEST_ENV,
            "DATABASE_URL": database_url,
            "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
            "BRIDGE_LEADER_LEASE_S": str(lease_s),
            "BRIDGE_SYNC_INTERVAL_S": str(interval_s),
            "LOG_LEVEL": "INFO",
        }
        log_path = tmp_path / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "clock"],
            env=env,
            cwd=ROOT,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        processes.append(proc)
        return proc, log_path

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(10)


def leading(log_path: Path) -> bool:
    return b"clock is the leader" in log_path.read_bytes()


def run_times(log_path: Path) -> list[float]:
    stamps = RUN_LINE.findall(log_path.read_bytes())
    return [datetime.strptime(s.decode(), "%Y-%m-%d %H:%M:%S,%f").timestamp() for s in stamps]


# Windows are whole seconds wide and every moment is taken on the safe side of its signal, so a
# busy 2-core machine (a process descheduled for a second or more) cannot fail these tests.
LEASE_S = 6.0
INTERVAL_S = 1.0
PAUSE_S = 6.0  # six intervals missed while stopped


def test_a_second_clock_stays_idle_until_the_leader_dies(
    spawn_clock: Callable[..., tuple[subprocess.Popen[bytes], Path]],
) -> None:
    first, first_log = spawn_clock("first", lease_s=LEASE_S, interval_s=INTERVAL_S)
    wait_for(lambda: leading(first_log), what="the first clock to lead")
    second, second_log = spawn_clock("second", lease_s=LEASE_S, interval_s=INTERVAL_S)
    time.sleep(LEASE_S + 1)  # longer than a lease: the second clock must still be idle
    assert not leading(second_log)
    assert run_times(second_log) == [], "an idle clock enqueues nothing"
    first.kill()
    first.wait(10)
    died = time.time()
    wait_for(lambda: leading(second_log), timeout=LEASE_S + 30, what="the second clock to take over")
    assert all(t >= died for t in run_times(second_log))
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0


def test_a_paused_clock_catches_up_once(
    spawn_clock: Callable[..., tuple[subprocess.Popen[bytes], Path]],
) -> None:
    clock, log_path = spawn_clock("paused", lease_s=30, interval_s=INTERVAL_S)
    wait_for(lambda: len(run_times(log_path)) >= 2, what="regular runs")
    clock.send_signal(signal.SIGSTOP)
    stopped = time.time()  # after the signal: whatever the clock logged before has an earlier time
    time.sleep(PAUSE_S)
    resuming = time.time()  # before the signal: whatever it logs after has a later time
    clock.send_signal(signal.SIGCONT)
    after = resuming - 0.002  # asctime keeps milliseconds, truncated
    wait_for(
        lambda: any(t >= after for t in run_times(log_path)),
        timeout=60,
        what="the first run after the pause",
    )
    first = min(t for t in run_times(log_path) if t >= after)
    # Replayed runs would follow the first at once; give them well over the window to show up.
    wait_for(lambda: time.time() > first + INTERVAL_S * 2, timeout=60, what="time to pass")
    runs = run_times(log_path)
    # 0.1 s covers a stop signal still in flight.
    assert not [t for t in runs if stopped + 0.1 < t < after], "nothing ran while stopped"
    burst = [t for t in runs if first <= t <= first + INTERVAL_S / 2]
    assert 1 <= len(burst) <= 2, (
        f"{PAUSE_S / INTERVAL_S:.0f} missed runs were coalesced into one catch-up, not replayed: {len(burst)}"
    )
    assert b"late" in log_path.read_bytes(), "a late run is logged with how late it was"
    clock.send_signal(signal.SIGTERM)
    assert clock.wait(30) == 0


def test_web_processes_never_load_the_scheduler() -> None:
    probe = "import sys, bridge.app; print('apscheduler' in sys.modules or 'bridge.scheduler' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
