"""What the benchmarks share: a throw-away migrated database, percentiles, ports, the error type.

The benchmarks run as scripts (`python bench/<name>.py`), which puts this folder on `sys.path`.
"""

from __future__ import annotations

import contextlib
import math
import socket
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


class BenchError(RuntimeError):
    """The benchmark could not run (a process did not start, the database is unreachable...)."""


@dataclass(frozen=True)
class Database:
    url: str  # what the bridge's processes get as DATABASE_URL
    kind: str  # sqlite | postgresql
    name: str = ""  # the throw-away PostgreSQL database, if any


@contextlib.contextmanager
def prepared_database(requested: str | None, workdir: Path) -> Iterator[Database]:
    """A migrated database: a fresh SQLite file, or a fresh `bench_<random>` database dropped after."""
    from sqlalchemy import text

    from bridge.migrate import upgrade
    from bridge.settings import normalise_database_url
    from bridge.store import make_engine

    url = normalise_database_url(requested) if requested else f"sqlite:///{workdir / 'bench.sqlite3'}"
    if url.startswith("sqlite"):
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield Database(url, "sqlite")
        return
    admin = make_engine(url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise BenchError(f"cannot create a database on {admin.url.render_as_string()}: {exc}") from exc
    bench_url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(bench_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield Database(bench_url, "postgresql", name)
    finally:
        try:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:
            print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        admin.dispose()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p=100 is the maximum); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
