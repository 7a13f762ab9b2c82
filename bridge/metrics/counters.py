"""The `metric_counters` table: event counts summed over every process that ever flushed.

One upsert statement, run for every row of a flush: `INSERT ... ON CONFLICT (name, labels) DO
UPDATE` adds to the stored value (or keeps the larger one, for latest-timestamp gauges). Rows
are written in key order, so two processes flushing at once lock them in the same order and
cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from sqlalchemy import Table, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..store import MetricCounterRecord, one_writer_at_a_time, write_session

LabelSet = tuple[tuple[str, str], ...]
Key = tuple[str, LabelSet]

_TABLE: Table = MetricCounterRecord.metadata.tables[MetricCounterRecord.__tablename__]
_CHUNK = 200
_MAX_LABELS_CHARS = 400


def encode_labels(labels: LabelSet) -> str:
    text = json.dumps(dict(labels), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if len(text) > _MAX_LABELS_CHARS:
        raise ValueError(f"metric labels longer than {_MAX_LABELS_CHARS} characters: {sorted(dict(labels))}")
    return text


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def _rows(values: Mapping[Key, float], now: float) -> list[dict[str, Any]]:
    rows = [
        {"name": name, "labels": encode_labels(labels), "value": float(value), "updated_at": now}
        for (name, labels), value in values.items()
    ]
    return sorted(rows, key=lambda row: (row["name"], row["labels"]))


def add(engine: Engine, sums: Mapping[Key, float], maxes: Mapping[Key, float]) -> None:
    """Add `sums` to the stored values and raise stored values to `maxes`, in one transaction."""
    now = time.time()
    with one_writer_at_a_time(engine), write_session(engine) as session:
        dialect = session.get_bind().dialect.name
        for rows, combine in ((_rows(sums, now), "sum"), (_rows(maxes, now), "max")):
            for chunk in _chunks(rows):
                session.execute(_upsert(dialect, combine), chunk)


@cache
def _upsert(dialect: str, combine: str) -> Any:
    """One row's upsert, executed for many rows: compiled once, where a multi-row VALUES was
    compiled anew for every count of rows (each flush of a busy worker)."""
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(_TABLE)
    new, old = stmt.excluded.value, _TABLE.c.value
    value = old + new if combine == "sum" else case((new > old, new), else_=old)
    return stmt.on_conflict_do_update(
        index_elements=["name", "labels"], set_={"value": value, "updated_at": stmt.excluded.updated_at}
    )


def read(session: Session) -> list[tuple[str, dict[str, str], float]]:
    """Every stored counter as (name, labels, value)."""
    query = select(_TABLE.c.name, _TABLE.c.labels, _TABLE.c.value)
    return [(name, json.loads(labels), float(value)) for name, labels, value in session.execute(query)]
