"""A job that kills its worker process, run by real processes: dead-lettered, not claimed forever."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bridge import alerts, jobs, retry_policy
from bridge.store import JobRecord, read_session, write_session
from tests.conftest import ROOT

LEASE_S = 0.5

#: One worker process: claims one job; the `poison` handler takes the whole process down.
WORKER = f"""
import os, sys
from bridge.bootstrap import Bridge
from bridge.channels import load_channels
from bridge.settings import Settings
from bridge.store import make_engine
from bridge.worker import Worker
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

bridge = Bridge(Settings(), load_channels(EXAMPLE_CONFIG, env=TEST_ENV), make_engine(sys.argv[1]))
worker = Worker(bridge, {{"poison": lambda ctx: os._exit(137)}}, lease_s={LEASE_S})
sys.exit(0 if not worker.run_once() else 3)
"""


def run_worker(database_url: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, database_url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode


def test_a_job_that_kills_its_worker_process_is_dead_lettered_after_its_lost_leases(
    db: Engine, database_url: str
) -> None:
    with write_session(db) as session:
        jobs.enqueue(session, "poison")
    exits = []
    for _ in range(10):
        code = run_worker(database_url)
        exits.append(code)
        if code == 0:  # nothing left to claim: the job was dead-lettered
            break
        time.sleep(LEASE_S + 0.2)  # the dead worker's lease runs out (database time)
    assert exits == [137] * retry_policy.DEFAULT.max_lost_leases + [0]
    with read_session(db) as session:
        [job] = session.execute(select(JobRecord).where(JobRecord.kind == "poison")).scalars()
    assert job.status == jobs.DEAD and job.lost_leases == retry_policy.DEFAULT.max_lost_leases
    [alert] = alerts.list_alerts(db)
    assert alert.kind == "job_dead" and "worker stopped while running it 5 time(s)" in alert.message
