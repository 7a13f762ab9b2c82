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
    return Bridge(
        settings=Settings(max_body_bytes=256 * 1024), config=channels_config, engine=db, clock=clock
    )


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


def due_now(engine: Engine) -> None:
    """Let every waiting job run now: the queue's retry delays are in database time."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET run_at = 0 WHERE status = 'ready'"))
