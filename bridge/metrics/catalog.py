"""Every metric the bridge exposes: name, type, labels, help, and where its value comes from.

Two sources, because web, worker and clock are separate processes (on Heroku separate machines):

- `events`: counted in the process where the event happens (a webhook in a web worker, an SP-API
  call in a worker), buffered in memory and added to the `metric_counters` table in batches, so
  any web process can expose every process's counts;
- `database`: states read from the bridge's own tables when /metrics is scraped.

Labels are configuration ids (channel, account), job kinds, operation names, platforms, outcome
codes and status codes: bounded sets. Never an order id, a SKU or anything personal.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS = "events"
DATABASE = "database"

WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SPAPI_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str
    source: str
    buckets: tuple[float, ...] = ()


WEBHOOKS = Family(
    "bridge_webhooks_total",
    "counter",
    ("channel", "outcome"),
    "Webhook deliveries answered, by channel and outcome (created, duplicate, invalid_signature, ...)",
    EVENTS,
)
WEBHOOK_DURATION = Family(
    "bridge_webhook_duration_seconds",
    "histogram",
    ("channel", "result"),
    "Time to answer a webhook delivery, by channel and result (ok, rejected, error)",
    EVENTS,
    WEBHOOK_BUCKETS,
)
JOBS = Family(
    "bridge_jobs",
    "gauge",
    ("kind", "state"),
    "Jobs in the queue by kind and state (ready, running, dead); finished ones are counted in "
    "bridge_jobs_finished_total",
    DATABASE,
)
JOB_QUEUE_AGE = Family(
    "bridge_job_queue_age_seconds",
    "gauge",
    ("kind",),
    "How long the oldest due job of a kind has been waiting for a worker (0 when none waits)",
    DATABASE,
)
JOBS_FINISHED = Family(
    "bridge_jobs_finished_total",
    "counter",
    ("kind", "outcome"),
    "Job runs by kind and outcome (done, retry, postponed, handed_back, dead, lost)",
    EVENTS,
)
JOB_LAST_SUCCESS = Family(
    "bridge_job_last_success_timestamp_seconds",
    "gauge",
    ("kind", "channel", "account"),
    "When a job of this kind last finished successfully (Unix time), per channel or account for "
    "jobs that name one (empty label otherwise)",
    EVENTS,
)
SPAPI_CALLS = Family(
    "bridge_spapi_calls_total",
    "counter",
    ("account", "operation", "status"),
    "SP-API requests sent, by account, operation and HTTP status (error: no answer)",
    EVENTS,
)
SPAPI_DURATION = Family(
    "bridge_spapi_call_duration_seconds",
    "histogram",
    ("account", "operation"),
    "SP-API request latency, by account and operation",
    EVENTS,
    SPAPI_BUCKETS,
)
SPAPI_TOKENS = Family(
    "bridge_spapi_rate_tokens",
    "gauge",
    ("account", "operation"),
    "Requests the shared rate budget allows right now without waiting (negative: waiters queued)",
    DATABASE,
)
SPAPI_BURST = Family(
    "bridge_spapi_rate_burst",
    "gauge",
    ("account", "operation"),
    "Size of the rate budget (Amazon's burst minus our headroom)",
    DATABASE,
)
STOREFRONT_CALLS = Family(
    "bridge_storefront_calls_total",
    "counter",
    ("channel", "platform", "status"),
    "Storefront API requests, by channel, platform and HTTP status (error: no answer)",
    EVENTS,
)
STOREFRONT_GRAPHQL_ERRORS = Family(
    "bridge_storefront_graphql_errors_total",
    "counter",
    ("channel", "code"),
    "Shopify GraphQL answers carrying errors (HTTP 200), by channel and error code (THROTTLED, ...)",
    EVENTS,
)
ORDERS = Family(
    "bridge_orders",
    "gauge",
    ("channel", "state"),
    "Orders by channel and state",
    DATABASE,
)
ALERTS_OPEN = Family(
    "bridge_alerts_open",
    "gauge",
    ("kind", "severity"),
    "Operator alerts not yet cleared, by kind and severity",
    DATABASE,
)
LAST_SYNC = Family(
    "bridge_last_sync_timestamp_seconds",
    "gauge",
    ("channel", "account"),
    "Up to when Amazon's change listing of the channel's account was last read completely (Unix time)",
    DATABASE,
)
COLLECT_DURATION = Family(
    "bridge_metrics_collect_seconds",
    "gauge",
    (),
    "Time the last /metrics answer took to compute from the database",
    DATABASE,
)

FAMILIES: tuple[Family, ...] = (
    WEBHOOKS,
    WEBHOOK_DURATION,
    JOBS,
    JOB_QUEUE_AGE,
    JOBS_FINISHED,
    JOB_LAST_SUCCESS,
    SPAPI_CALLS,
    SPAPI_DURATION,
    SPAPI_TOKENS,
    SPAPI_BURST,
    STOREFRONT_CALLS,
    STOREFRONT_GRAPHQL_ERRORS,
    ORDERS,
    ALERTS_OPEN,
    LAST_SYNC,
    COLLECT_DURATION,
)
