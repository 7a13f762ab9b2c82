"""Shared fixtures: a migrated database (SQLite file, or PostgreSQL via BRIDGE_TEST_DATABASE_URL),
the example channels file with test secrets, a manual clock and a Flask test client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from bridge.bootstrap import Bridge
from bridge.channels import ChannelsConfig, load_channels
from bridge.clock import ManualClock
from bridge.migrate import upgrade
from bridge.settings import Settings, normalise_database_url
from bridge.store import make_engine

pytest_plugins = ("tests.sqs_support",)  # local_sqs / sqs_queue: moto's SQS server on loopback

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "config" / "channels.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

TEST_ENV = {
    "SHOP_A_WEBHOOK_SECRET": "test-shopify-secret-1",
    "WOO_WEBHOOK_SECRET": "test-woo-secret-1",
    "OWN_SHOP_SECRET": "whsec_dGVzdC1nZW5lcmljLXNlY3JldC0xMjM0NTY3ODkw",
}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session (migrated once), or None for SQLite."""
    base = os.environ.get("BRIDGE_TEST_DATABASE_URL")
    if not base:
        yield None
        return
    admin = make_engine(normalise_database_url(base))
    name = f"bridge_test_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(postgres_url: str | None, tmp_path: Path) -> str:
    return postgres_url or f"sqlite:///{tmp_path / 'bridge.sqlite3'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    if eng.dialect.name == "postgresql":
        tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
        with eng.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


@pytest.fixture
def channels_config() -> ChannelsConfig:
    return load_channels(EXAMPLE_CONFIG, env=TEST_ENV)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def bridge(db: Engine, channels_config: ChannelsConfig, clock: ManualClock) -> Bridge:
    # No background metrics flusher in tests: /metrics flushes this process's counts itself.
    # Deliveries are applied in the request however fast a test posts them (no rate-based
    # deferral); tests/integration/test_deferred_intake.py turns deferring on where it is tested.
    settings = Settings(max_body_bytes=256 * 1024, metrics_flush_s=0, metrics_cache_s=0, webhook_defer_rate=0)
    return Bridge(settings=settings, config=channels_config, engine=db, clock=clock)


@pytest.fixture(autouse=True)
def _fresh_metric_counts() -> Iterator[None]:
    """Event counts recorded by an earlier test never reach this test's database, and no flusher
    an earlier test started (the demo's) takes this test's counts elsewhere."""
    from bridge.metrics import events

    events.stop(write=False)
    events.BUFFER.reset()
    yield
    events.stop(write=False)


@pytest.fixture
def app(bridge: Bridge):  # type: ignore[no-untyped-def]
    from bridge.app import create_app

    application = create_app(bridge)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def simulator(clock: ManualClock):  # type: ignore[no-untyped-def]
    """The bundled simulator with the demo inventory, on the test's clock for everything."""
    from bridge.amazon.simulator import Simulator, load_config

    return Simulator(
        load_config(ROOT / "config" / "simulator.yaml"), clock=clock, rate_clock=clock, delay_clock=clock
    )


@pytest.fixture
def amazon(bridge: Bridge, simulator):  # type: ignore[no-untyped-def]
    from bridge.amazon.accounts import build_amazon
    from bridge.amazon.limiter import DatabaseBuckets

    accounts = build_amazon(
        bridge, simulator=simulator, buckets=DatabaseBuckets(bridge.engine, bridge.clock, use_db_clock=False)
    )
    yield accounts
    accounts.close()


@pytest.fixture
def worker(bridge: Bridge, amazon):  # type: ignore[no-untyped-def]
    from bridge.runtime import make_worker

    return make_worker(bridge, amazon=amazon)


def apply_deferred(bridge: Bridge) -> int:
    """Run the `intake` jobs of deliveries a busy web process deferred, and no other job (so the
    next stage's jobs stay queued for the test to see). Returns how many `intake` jobs it finished
    (one run may finish several: `deferred_intake.BATCH`)."""
    from sqlalchemy import func, select

    from bridge.intake import JOB_INTAKE
    from bridge.jobs import DONE
    from bridge.pipeline.deferred_intake import handle_deferred_intake
    from bridge.store import JobRecord, read_session
    from bridge.worker import Worker

    def finished() -> int:
        with read_session(bridge.engine) as session:
            query = select(func.count()).where(JobRecord.kind == JOB_INTAKE, JobRecord.status == DONE)
            return int(session.execute(query).scalar_one())

    before = finished()
    Worker(bridge, {JOB_INTAKE: handle_deferred_intake}).drain()
    return finished() - before


def due_now(engine: Engine) -> None:
    """Let every waiting job run now: the queue's retry delays are in database time."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET run_at = 0 WHERE status = 'ready'"))


JSON_LOG_KEYS = {"time", "level", "logger", "message", "channel", "order_id", "job_id", "request_id"}


class LogOutput:
    """What the bridge's own log handler wrote, in one of its formats (`text` or `json`)."""

    def __init__(self, fmt: str) -> None:
        import io

        self.format = fmt
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, object]]:
        """Every JSON line, parsed; fails unless each line is one object with the stable keys."""
        import json

        out = []
        for line in self.text.splitlines():
            record = json.loads(line)
            assert isinstance(record, dict), line
            missing = JSON_LOG_KEYS - record.keys()
            assert not missing, f"{missing} missing from {line}"
            out.append(record)
        return out

    def assert_free_of(self, *values: str) -> None:
        assert self.text, "nothing was logged"
        if self.format == "json":
            self.records()
        for value in values:
            assert value not in self.text, f"{value!r} reached the {self.format} log"


@pytest.fixture(params=["text", "json"])
def log_output(request: pytest.FixtureRequest) -> Iterator[LogOutput]:
    """The bridge's formatter and context filter (`LOG_FORMAT=text` and `=json`) on a handler of
    the test's own, at DEBUG, for the personal-data canary tests."""
    import logging

    from bridge.logs import ContextFilter, formatter_for

    output = LogOutput(request.param)
    handler = logging.StreamHandler(output.stream)
    handler.setFormatter(formatter_for(request.param))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield output
    root.removeHandler(handler)
    root.setLevel(level)
