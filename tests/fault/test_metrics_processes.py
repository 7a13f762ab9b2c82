"""Metrics across real processes: two gunicorn workers, and a worker process on another "machine".

Counts made in one process must show up in /metrics whichever process answers the scrape.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bridge import metrics
from bridge.amazon.simulator import RunningServer, Simulator
from bridge.bootstrap import Bridge
from bridge.metrics import counters
from bridge.store import OrderRecord, read_session
from tests.conftest import EXAMPLE_CONFIG, JSON_LOG_KEYS, ROOT, TEST_ENV
from tests.fault.test_worker_processes import live_simulator, wait_for  # noqa: F401 (fixture)
from tests.integration.test_metrics import AUTH, TOKEN, bridge, scrape  # noqa: F401 (fixture)
from tests.support import Scrape, shopify_delivery, shopify_order

CREATED = {"channel": "shop-a", "outcome": "created"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bridge_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **TEST_ENV,
        "DATABASE_URL": database_url,
        "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
        "BRIDGE_METRICS_TOKEN": TOKEN,
        "BRIDGE_METRICS_CACHE_S": "0",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture
def gunicorn(database_url: str, db: object, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`gunicorn --workers 2` serving the bridge on loopback; its access log names the worker pid."""
    port = free_port()
    access_log = tmp_path / "access.log"
    launcher = Path(sys.executable).with_name("gunicorn")
    command = [
        *([str(launcher)] if launcher.exists() else [sys.executable, "-m", "gunicorn"]),
        "--worker-class",
        "gthread",
        "--workers",
        "2",
        "--threads",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        str(access_log),
        "--access-logformat",
        "%(p)s %(m)s %(U)s %(s)s",
        "bridge.app:create_app()",
    ]
    with (tmp_path / "gunicorn.log").open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=bridge_env(database_url, BRIDGE_METRICS_FLUSH_S="0.2"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            return False

        wait_for(healthy, timeout=60, what="gunicorn to answer /healthz")
        yield base, access_log
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def pids_serving(access_log: Path, path_prefix: str) -> set[str]:
    pids = set()
    for line in access_log.read_text().splitlines():
        pid, _method, path, _status = line.split(" ")
        if path.startswith(path_prefix):
            pids.add(pid)
    return pids


def scrape_http(base: str) -> Scrape:
    response = httpx.get(base + "/metrics", headers=AUTH, timeout=10)  # a new connection each time
    assert response.status_code == 200, response.text
    return Scrape(response.text)


def test_two_gunicorn_workers_count_every_webhook_whichever_answers_the_scrape(
    gunicorn: tuple[str, Path],
) -> None:
    base, access_log = gunicorn
    sent = 0
    while sent < 200 and (sent < 6 or len(pids_serving(access_log, "/webhooks/")) < 2):
        body, headers = shopify_delivery(shopify_order(20_000 + sent))
        response = httpx.post(base + "/webhooks/shop-a", content=body, headers=headers, timeout=10)
        assert response.status_code == 200 and response.headers["X-Request-Id"]
        sent += 1
    assert len(pids_serving(access_log, "/webhooks/")) == 2, "both workers took webhooks"

    wait_for(
        lambda: scrape_http(base).value("bridge_webhooks_total", **CREATED) == sent,
        timeout=30,
        what=f"/metrics to count all {sent} webhooks",
    )
    for _ in range(100):  # every answer agrees, from either worker
        assert scrape_http(base).value("bridge_webhooks_total", **CREATED) == sent
        if len(pids_serving(access_log, "/metrics")) == 2:
            break
    assert len(pids_serving(access_log, "/metrics")) == 2, "both workers answered scrapes"
    count = scrape_http(base).value("bridge_webhook_duration_seconds_count", channel="shop-a", result="ok")
    assert count == sent


# --------------------------------------------------------------------------------------------
# A worker process (its own machine, on Heroku) and the web process's /metrics


@pytest.fixture
def start_worker(
    database_url: str,
    live_simulator: tuple[Simulator, RunningServer],  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(flush_s: str) -> subprocess.Popen[bytes]:
        env = bridge_env(
            database_url, BRIDGE_SIMULATOR_URL=live_simulator[1].base_url, BRIDGE_METRICS_FLUSH_S=flush_s
        )
        with (tmp_path / "worker.log").open("ab") as log:
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
            proc.kill()
            proc.wait(10)


def send(client: FlaskClient, order_id: int) -> None:
    body, headers = shopify_delivery(shopify_order(order_id))
    assert client.post("/webhooks/shop-a", data=body, headers=headers).status_code == 200


def creates(client: FlaskClient) -> float | None:
    return scrape(client).value(
        "bridge_spapi_calls_total", account="main", operation="createFulfillmentOrder", status="200"
    )


def test_a_worker_process_spapi_calls_show_up_in_the_web_process(
    client: FlaskClient, start_worker: Callable[[str], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    start_worker("0.2")
    send(client, 21_001)

    def submit_counted() -> bool:
        result = scrape(client)
        return result.value("bridge_jobs_finished_total", kind="submit", outcome="done") == 1

    wait_for(submit_counted, timeout=60, what="the worker's submit job to reach /metrics")
    result = scrape(client)
    calls = "bridge_spapi_calls_total"
    for operation in ("getFulfillmentPreview", "createFulfillmentOrder"):
        assert result.value(calls, account="main", operation=operation, status="200") == 1, operation

    records = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()]
    assert records and all(JSON_LOG_KEYS <= record.keys() for record in records)
    submit = [r for r in records if r["job_id"] is not None and r["logger"] == "bridge.amazon"]
    assert submit and all(r["channel"] == "shop-a" and isinstance(r["order_id"], int) for r in submit)


def test_a_stopping_worker_writes_its_last_counts(
    client: FlaskClient,
    bridge: Bridge,  # noqa: F811 (the fixture)
    start_worker: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    worker = start_worker("3600")  # no periodic flush within the test

    def submitted() -> bool:
        with read_session(bridge.engine) as session:
            return session.execute(select(OrderRecord.state)).scalar_one_or_none() == "submitted"

    send(client, 21_002)
    wait_for(submitted, timeout=60, what="the worker to submit the order")
    assert creates(client) is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert creates(client) == 1  # written before the process exited


def test_a_forked_child_does_not_count_its_parents_pending_events(db: Engine) -> None:
    """gunicorn forks its workers: counts still buffered in the parent must be written once."""
    metrics.storefront_call("shop-a", "shopify", 200)  # pending in the parent at fork time
    pid = os.fork()
    if pid == 0:  # the child: its own connections, its own counts only
        code = 1
        try:
            db.dispose(close=False)
            metrics.storefront_call("shop-a", "shopify", 200)
            code = 0 if metrics.flush(db) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert metrics.flush(db)
    with read_session(db) as session:
        [(_, _, value)] = counters.read(session)
    assert value == 2
