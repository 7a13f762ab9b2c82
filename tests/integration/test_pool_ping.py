"""PostgreSQL connections are pinged only after sitting idle in the pool (bridge.store), and a
connection that died while idle is replaced before anyone gets it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bridge import store
from bridge.store import make_engine


@pytest.fixture
def pg(postgres_url: str | None) -> Iterator[tuple[Engine, Engine]]:
    if postgres_url is None:
        pytest.skip("PostgreSQL only (BRIDGE_TEST_DATABASE_URL): SQLite has no server to lose")
    engine, admin = make_engine(postgres_url), make_engine(postgres_url)
    yield engine, admin
    engine.dispose()
    admin.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        conn.commit()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per ping the pool sent."""
    sent: list[int] = []
    real = store._ping

    def counting(dbapi_conn: object) -> None:
        sent.append(1)
        real(dbapi_conn)

    monkeypatch.setattr(store, "_ping", counting)
    return sent


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_ping(
    pg: tuple[Engine, Engine], pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = pg
    first = _backend(engine)
    assert all(_backend(engine) == first for _ in range(5))  # the same pooled connection
    assert pings == []
    monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 0.0)  # now every checkout follows an idle spell
    assert _backend(engine) == first
    assert pings == [1]


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    pg: tuple[Engine, Engine], pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, admin = pg
    dead = _backend(engine)
    _terminate(admin, dead)
    monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 0.0)  # every checkout counts as after idling
    replacement = _backend(engine)  # no error: the ping failed and the pool connected again
    assert replacement != dead
    assert pings  # the dead one was pinged (and the fresh one after it)
    assert _backend(engine) == replacement


def test_without_the_idle_ping_a_dead_busy_connection_fails_once_then_the_pool_recovers(
    pg: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, admin = pg
    monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 3600.0)
    dead = _backend(engine)
    _terminate(admin, dead)
    with pytest.raises(OperationalError):
        _backend(engine)  # what a statement sees when the server drops a busy connection
    assert _backend(engine) != dead  # SQLAlchemy invalidated it; the next checkout connects anew
