"""The /metrics answer: database states and stored event counters, in Prometheus' text format.

Computed at scrape time from the bridge's tables in one read transaction, so every web process
answers the same figures whichever of them the scrape reaches; the answer is reused for
`BRIDGE_METRICS_CACHE_S` so several scrapers (or a fast scrape interval) cost one computation.
The queries are grouped counts over indexed columns (the job counts skip finished jobs, which
pile up); `bridge_metrics_collect_seconds` shows what a scrape costs.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from .. import jobs
from ..channels import ChannelsConfig
from ..store import (
    AlertRecord,
    JobRecord,
    OrderRecord,
    RateBucketRecord,
    SyncCursorRecord,
    db_now,
    read_session,
)
from . import catalog, counters
from .catalog import Family
from .events import bucket_label

QUEUE_STATES = (jobs.READY, jobs.RUNNING, jobs.DEAD)


def _family(family: Family) -> Metric:
    if family.kind == "counter":
        return CounterMetricFamily(family.name, family.help, labels=family.labels)
    if family.kind == "histogram":
        return HistogramMetricFamily(family.name, family.help, labels=family.labels)
    return GaugeMetricFamily(family.name, family.help, labels=family.labels)


def _gauge(family: Family, samples: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    metric = _family(family)
    for labels, value in sorted(samples):
        metric.add_metric(list(labels), value)  # type: ignore[attr-defined]
    return metric


def _database_states(session: Session, config: ChannelsConfig) -> list[Metric]:
    now = db_now(session)
    out: list[Metric] = []

    orders = session.execute(
        select(col(OrderRecord.channel_id), col(OrderRecord.state), func.count()).group_by(
            col(OrderRecord.channel_id), col(OrderRecord.state)
        )
    ).all()
    out.append(_gauge(catalog.ORDERS, (((str(c), str(s)), float(n)) for c, s, n in orders)))

    job_rows = session.execute(
        select(col(JobRecord.kind), col(JobRecord.status), func.count())
        .where(col(JobRecord.status).in_(QUEUE_STATES))
        .group_by(col(JobRecord.kind), col(JobRecord.status))
    ).all()
    out.append(_gauge(catalog.JOBS, (((str(k), str(s)), float(n)) for k, s, n in job_rows)))
    oldest = dict(
        session.execute(
            select(col(JobRecord.kind), func.min(col(JobRecord.run_at)))
            .where(col(JobRecord.status) == jobs.READY, col(JobRecord.run_at) <= now)
            .group_by(col(JobRecord.kind))
        ).all()
    )
    kinds = {str(k) for k, _, _ in job_rows}
    out.append(
        _gauge(
            catalog.JOB_QUEUE_AGE,
            (((k,), max(0.0, now - float(oldest[k])) if k in oldest else 0.0) for k in kinds),
        )
    )

    alerts = session.execute(
        select(col(AlertRecord.kind), col(AlertRecord.severity), func.count())
        .where(col(AlertRecord.cleared_at).is_(None))
        .group_by(col(AlertRecord.kind), col(AlertRecord.severity))
    ).all()
    out.append(_gauge(catalog.ALERTS_OPEN, (((str(k), str(s)), float(n)) for k, s, n in alerts)))

    tokens, bursts = [], []
    for bucket in session.execute(select(RateBucketRecord)).scalars():
        account, _, operation = bucket.key.rpartition(":")
        refilled = min(bucket.burst, bucket.tokens + max(0.0, now - bucket.updated) * bucket.rate)
        tokens.append(((account, operation), refilled))
        bursts.append(((account, operation), bucket.burst))
    out.append(_gauge(catalog.SPAPI_TOKENS, tokens))
    out.append(_gauge(catalog.SPAPI_BURST, bursts))

    cursors = {
        c.account_id: _epoch(c.updated_at) for c in session.execute(select(SyncCursorRecord)).scalars()
    }
    out.append(
        _gauge(
            catalog.LAST_SYNC,
            (
                ((channel.id, channel.account_id), cursors[channel.account_id])
                for channel in config.channels.values()
                if channel.account_id in cursors
            ),
        )
    )
    return out


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@dataclass
class _Histogram:
    buckets: dict[float, float]
    total: float = 0.0


def _event_counters(session: Session) -> list[Metric]:
    rows = counters.read(session)
    by_name: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for name, labels, value in rows:
        by_name[name].append((labels, value))
    out: list[Metric] = []
    for family in catalog.FAMILIES:
        if family.source != catalog.EVENTS:
            continue
        metric = _family(family)
        if family.kind == "histogram":
            _add_histograms(metric, family, by_name)
        else:
            for labels, value in sorted(by_name.get(family.name, []), key=lambda r: sorted(r[0].items())):
                metric.add_metric([labels.get(label, "") for label in family.labels], value)  # type: ignore[attr-defined]
        out.append(metric)
    return out


def _add_histograms(
    metric: Metric, family: Family, by_name: dict[str, list[tuple[dict[str, str], float]]]
) -> None:
    series: dict[tuple[str, ...], _Histogram] = {}
    for labels, value in by_name.get(f"{family.name}_bucket", []):
        key = tuple(labels.get(label, "") for label in family.labels)
        bound = float(labels.get("le", "inf"))
        histogram = series.setdefault(key, _Histogram({}))
        histogram.buckets[bound] = histogram.buckets.get(bound, 0.0) + value
    for labels, value in by_name.get(f"{family.name}_sum", []):
        key = tuple(labels.get(label, "") for label in family.labels)
        series.setdefault(key, _Histogram({})).total += value
    for key in sorted(series):
        histogram = series[key]
        running = 0.0
        cumulative: list[tuple[str, float]] = []
        for bound in (*family.buckets, float("inf")):
            running += histogram.buckets.get(bound, 0.0)
            cumulative.append((bucket_label(bound), running))
        metric.add_metric(list(key), cumulative, histogram.total)  # type: ignore[attr-defined]


def collect(engine: Engine, config: ChannelsConfig) -> list[Metric]:
    started = time.perf_counter()
    with read_session(engine) as session:
        metrics = _event_counters(session) + _database_states(session, config)
    timing = _family(catalog.COLLECT_DURATION)
    timing.add_metric([], time.perf_counter() - started)  # type: ignore[attr-defined]
    return [*metrics, timing]


class _Static:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


def render(metrics: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(metrics))  # type: ignore[arg-type]
    return generate_latest(registry)


class ScrapeCache:
    """The last answer, reused for `ttl_s`; concurrent scrapes wait for one computation."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._expires = 0.0

    def get(self, produce: Callable[[], bytes]) -> bytes:
        with self._lock:
            now = self._clock()
            if self._body is None or now >= self._expires:
                self._body = produce()
                self._expires = self._clock() + self.ttl_s
            return self._body
