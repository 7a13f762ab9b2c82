"""The `notifications` process for real: it consumes the local SQS queue and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bridge.store import DeliveryRecord, read_session
from tests.conftest import EXAMPLE_CONFIG, ROOT, TEST_ENV
from tests.fault.test_worker_processes import wait_for
from tests.integration.test_sync import notification
from tests.sqs_support import FAKE_AWS_ENV, Queue


def kept(engine: Engine) -> list[str]:
    with read_session(engine) as session:
        query = select(DeliveryRecord.delivery_key).where(DeliveryRecord.channel_id == "amazon")
        return list(session.execute(query).scalars())


def test_the_process_stores_notifications_and_exits_cleanly_on_sigterm(
    database_url: str, db: Engine, sqs_queue: Queue, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **TEST_ENV,
        **FAKE_AWS_ENV,
        "AWS_ACCESS_KEY_ID": "CANARYKEYID",  # boto3 finds it itself; it must never reach a log
        "AWS_SECRET_ACCESS_KEY": "canary-secret-access-key",
        "DATABASE_URL": database_url,
        "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
        "BRIDGE_SQS_QUEUE_URL": sqs_queue.url,
        "BRIDGE_SQS_ENDPOINT_URL": sqs_queue.sqs.endpoint_url,
        "BRIDGE_SQS_WAIT_S": "2",
        "LOG_LEVEL": "DEBUG",  # even botocore's request dumps stay silent
    }
    log_path = tmp_path / "notifications.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "notifications"], env=env, stdout=log, stderr=log, cwd=ROOT
        )
    try:
        sqs_queue.send(notification("shop-a-1", "process-1"))
        wait_for(lambda: kept(db) == ["process-1"], what="the notification to be stored")
        wait_for(lambda: sqs_queue.counts() == (0, 0), what="the message to be deleted")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0  # within one long poll (2 s) plus start-up slack
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = log_path.read_text()
    assert "notifications consumer stopped" in output
    assert "notifications batch received=1" in output
    assert "CANARYKEYID" not in output and "canary-secret-access-key" not in output


def test_without_a_queue_url_the_process_says_what_to_set(database_url: str, db: Engine) -> None:
    env = {**os.environ, **TEST_ENV, "DATABASE_URL": database_url, "BRIDGE_CONFIG": str(EXAMPLE_CONFIG)}
    env.pop("BRIDGE_SQS_QUEUE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "notifications"],
        env=env,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 1
    assert b"BRIDGE_SQS_QUEUE_URL" in done.stderr
