"""Admission under real gunicorn (the Procfile's worker class): refusals are early 503s with
Retry-After (most of them before gunicorn parses the request), every acknowledged delivery is
stored, and no refused one is."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bridge.store import DeliveryRecord, read_session
from tests.conftest import ROOT
from tests.fault.test_metrics_processes import bridge_env, free_port
from tests.fault.test_worker_processes import wait_for
from tests.support import shopify_delivery, shopify_order


@pytest.fixture
def narrow_server(database_url: str, db: Engine, tmp_path: Path) -> Iterator[str]:
    """One worker, 4 threads, one webhook handler at a time and no waiting: any overlap is refused."""
    port = free_port()
    launcher = Path(sys.executable).with_name("gunicorn")
    command = [
        *([str(launcher)] if launcher.exists() else [sys.executable, "-m", "gunicorn"]),
        "--worker-class",
        "bridge.web.server.QueueTimedWorker",
        "--workers",
        "1",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "bridge.app:create_app()",
    ]
    env = bridge_env(
        database_url,
        BRIDGE_WEBHOOK_CONCURRENCY="1",
        BRIDGE_WEBHOOK_QUEUE="0",
        BRIDGE_WEBHOOK_QUEUE_WAIT_S="0",
        BRIDGE_WEBHOOK_RETRY_AFTER_S="3",
        LOG_LEVEL="WARNING",
    )
    with (tmp_path / "gunicorn.log").open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            return False

        wait_for(healthy, timeout=60, what="gunicorn to answer /healthz")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


async def _burst(base: str, deliveries: list[tuple[bytes, dict[str, str]]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post("/webhooks/shop-a", content=body, headers={**headers, "Connection": "close"})
                    for body, headers in deliveries
                )
            )
        )


def test_a_burst_beyond_capacity_gets_early_503s_and_only_acknowledged_deliveries_are_stored(
    narrow_server: str, db: Engine
) -> None:
    deliveries = [shopify_delivery(shopify_order(7000 + n), webhook_id=f"burst-{n}") for n in range(40)]
    answers = asyncio.run(_burst(narrow_server, deliveries))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 503}, statuses
    refused = [a for a in answers if a.status_code == 503]
    assert refused, "40 simultaneous deliveries to one handler slot: some must be refused"
    assert all(a.headers["Retry-After"] == "3" and a.json()["error"] == "overloaded" for a in refused)
    # Refusals the gate decides as the thread takes the connection are answered from the socket,
    # before gunicorn parses the request: those lack the `Server` header gunicorn adds.
    assert any("server" not in a.headers for a in refused), [dict(a.headers) for a in refused[:3]]
    acknowledged = {f"burst-{n}" for n, a in enumerate(answers) if a.status_code == 200}
    with read_session(db) as session:
        stored = set(session.execute(select(DeliveryRecord.delivery_key)).scalars())
    assert stored == acknowledged
