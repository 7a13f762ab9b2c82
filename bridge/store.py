"""Database tables, engine set-up and the two kinds of session the bridge uses.

Write transactions on SQLite start with `BEGIN IMMEDIATE`: they take the write lock up front and
wait (busy timeout) instead of failing halfway through on a lock upgrade. Readers start deferred
so they never queue behind writers (WAL lets them read alongside). PostgreSQL needs none of this.

Lease and retry times are kept as epoch seconds taken from the database's own clock
(`db_now`), so several worker machines agree on who holds a lease even if their clocks drift.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    cast,
    event,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlmodel import Field, Session, SQLModel, col, create_engine

from .orders import CanonicalOrder, OrderState

try:
    import fcntl
except ImportError:  # Windows has none: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_S = 30
REDACTED_BODY = b'{"redacted": true}'
#: Column widths every storefront schema's limits must fit (tests/integration/test_hostile_input.py).
EXTERNAL_ID_LENGTH = 255
DELIVERY_KEY_LENGTH = 200
DISPLAY_ID_LENGTH = 128


#: An order that needs a look by itself: parked, or flagged with a reason (`admin.attention_order_ids`).
ORDER_ATTENTION = "state = 'needs_attention' OR attention_reason != ''"


class OrderRecord(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel_id", "external_id", name="uq_orders_channel_external"),
        # The console's list (`admin.list_orders`): search by shop id or name, channel + state.
        Index("ix_orders_external_id", "external_id"),
        Index("ix_orders_display_id", "display_id"),
        Index("ix_orders_channel_state", "channel_id", "state"),
        Index(
            "ix_orders_attention",
            "id",
            sqlite_where=text(ORDER_ATTENTION),
            postgresql_where=text(ORDER_ATTENTION),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    external_id: str = Field(sa_column=Column(String(EXTERNAL_ID_LENGTH), nullable=False))
    display_id: str = Field(
        default="", sa_column=Column(String(DISPLAY_ID_LENGTH), nullable=False, default="")
    )
    state: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    seller_fulfillment_order_id: str | None = Field(
        default=None, sa_column=Column(String(40), unique=True, nullable=True)
    )
    attention_reason: str = Field(default="", sa_column=Column(String(2000), nullable=False, default=""))
    amazon_status: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    amazon_status_updated_at: datetime | None = None
    last_synced_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    pii_purged_at: datetime | None = None
    # What was sent to Amazon (pipeline/amendment.py `Submission`): the base of every amendment.
    # Item ids, SKUs, quantities and a digest of the address; never the address itself.
    submission: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: When the routine entries of this finished order's audit trail were dropped (`compaction.py`).
    audit_compacted_at: datetime | None = None
    #: The latest `estimatedShipDate` Amazon gave for the order's items (stuck-order alerts).
    amazon_ship_by: datetime | None = None
    #: Merchant-policy rules that held the order for approval and those an operator approved:
    #: `{"held": [rule ids], "approved": [rule ids]}` (pipeline/policies.py).
    approvals: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))

    @property
    def approved_rules(self) -> frozenset[str]:
        return frozenset((self.approvals or {}).get("approved", ()))

    @property
    def held_rules(self) -> tuple[str, ...]:
        return tuple((self.approvals or {}).get("held", ()))

    @property
    def order_state(self) -> OrderState:
        return OrderState(self.state)

    def canonical(self) -> CanonicalOrder:
        return CanonicalOrder.from_json(self.data)


class OrderEventRecord(SQLModel, table=True):
    """The audit trail: one row per state change or notable decision, never personal data."""

    __tablename__ = "order_events"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    at: datetime
    event: str = Field(sa_column=Column(String(64), nullable=False))
    from_state: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    to_state: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    reason: str = Field(default="", sa_column=Column(String(2000), nullable=False, default=""))
    delivery_id: int | None = Field(default=None, foreign_key="deliveries.id")


class DeliveryRecord(SQLModel, table=True):
    """The inbox: every accepted webhook delivery, byte for byte, before any interpretation."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("channel_id", "delivery_key", name="uq_deliveries_channel_key"),
        # The bodies the retention purge still has to replace, oldest first.
        Index(
            "ix_deliveries_unpurged",
            "received_at",
            sqlite_where=text("body_purged_at IS NULL"),
            postgresql_where=text("body_purged_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(sa_column=Column(String(64), nullable=False))
    delivery_key: str = Field(sa_column=Column(String(DELIVERY_KEY_LENGTH), nullable=False))
    event_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True, index=True))
    topic: str = Field(sa_column=Column(String(64), nullable=False))
    received_at: datetime
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    outcome: str = Field(default="", sa_column=Column(String(40), nullable=False, default=""))
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    #: When `body` was replaced by `REDACTED_BODY` (privacy request, retention, a redacted order).
    body_purged_at: datetime | None = None
    #: `webhook` (the storefront posted it) or `reconcile` (a reconciliation pass read the order
    #: from the storefront's API and fed it through the same intake; `pipeline/reconcile.py`).
    source: str = Field(default="webhook", sa_column=Column(String(16), nullable=False, default="webhook"))


class JobRecord(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        # Partial indexes only, one per question, so no index on `status` can tempt a planner
        # (SQLite without ANALYZE statistics) into sorting every ready job: `jobs.claim` takes the
        # head of `ix_jobs_due` or `ix_jobs_expiring`; compaction walks `ix_jobs_finished`.
        Index(
            "ix_jobs_due",
            "run_at",
            "id",
            sqlite_where=text("status = 'ready'"),
            postgresql_where=text("status = 'ready'"),
        ),
        Index(
            "ix_jobs_expiring",
            "lease_until",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index(
            "ix_jobs_finished",
            "updated_at",
            sqlite_where=text("status = 'done'"),
            postgresql_where=text("status = 'done'"),
        ),
        # Only waiting jobs are deduplicated: a running job may have read stale state (jobs.py).
        Index(
            "uq_jobs_waiting_dedupe",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status = 'ready'"),
            postgresql_where=text("status = 'ready'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    run_at: float
    attempts: int = 0
    max_attempts: int = 8
    lease_until: float | None = None
    claim_token: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    last_error: str = Field(default="", sa_column=Column(String(2000), nullable=False, default=""))
    created_at: float
    updated_at: float
    #: The rate bucket (account:operation) holding a token reserved for this job's next run, set
    #: when the job was handed back instead of sleeping (`bridge.budget`), cleared by the claim.
    reserved: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    #: Claims of this job whose worker stopped renewing the lease (crashed, killed, hung): a job
    #: that keeps taking its worker down is dead-lettered (`jobs.claim`), not claimed forever.
    lost_leases: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, default=0, server_default="0")
    )


class ShipmentRecord(SQLModel, table=True):
    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("order_id", "amazon_shipment_id", name="uq_shipments_order_shipment"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    amazon_shipment_id: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    shipped_at: datetime | None = None
    updated_at: datetime


class PackageRecord(SQLModel, table=True):
    """One Amazon package: what gets pushed to the storefront, exactly once."""

    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("order_id", "package_number", name="uq_packages_order_number"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    shipment_id: int = Field(foreign_key="shipments.id")
    package_number: int
    carrier_code: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    carrier_name: str = Field(default="", sa_column=Column(String(128), nullable=False, default=""))
    tracking_number: str = Field(default="", sa_column=Column(String(128), nullable=False, default=""))
    tracking_url: str | None = Field(default=None, sa_column=Column(String(1000), nullable=True))
    estimated_arrival: datetime | None = None
    tracking_status: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    delivered_at: datetime | None = None
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class PushRecord(SQLModel, table=True):
    """Something owed to a storefront (a shipment or a note), keyed so it is owed only once."""

    __tablename__ = "pushes"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    package_id: int | None = Field(default=None, foreign_key="packages.id")
    note: str = Field(default="", sa_column=Column(String(2000), nullable=False, default=""))
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    storefront_ref: str = Field(default="", sa_column=Column(String(200), nullable=False, default=""))
    created_at: datetime
    done_at: datetime | None = None
    #: Committed before the first request that could create something at the storefront: from then
    #: on an earlier attempt may have landed, so every later run (an operator retry included) asks
    #: the storefront what it already has before pushing again.
    sent_at: datetime | None = None


class FulfillmentUnitRecord(SQLModel, table=True):
    """A storefront fulfilment unit (Shopify fulfillment order) the order's Amazon order covers, or
    a request about one we answered: push-back fulfils these, and nothing of anyone else's."""

    __tablename__ = "fulfillment_units"
    __table_args__ = (UniqueConstraint("order_id", "unit_id", name="uq_fulfillment_units_order_unit"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    unit_id: str = Field(sa_column=Column(String(100), nullable=False))
    location_id: str = Field(default="", sa_column=Column(String(100), nullable=False, default=""))
    # covered | accepted | rejected | cancellation_requested | cancellation_accepted | cancellation_rejected
    status: str = Field(sa_column=Column(String(32), nullable=False))
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime
    updated_at: datetime


class OrderPartRecord(SQLModel, table=True):
    """One Amazon order of a storefront order split under `split_large_orders` (pipeline/split.py):
    part 1 is also the order row's `seller_fulfillment_order_id`. Sync reads every part and
    records their shipments and packages on the order, so push-back stays once per package."""

    __tablename__ = "order_parts"
    __table_args__ = (
        UniqueConstraint("order_id", "part", name="uq_order_parts_order_part"),
        UniqueConstraint("seller_fulfillment_order_id", name="uq_order_parts_sfo_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    part: int
    seller_fulfillment_order_id: str = Field(sa_column=Column(String(40), nullable=False))
    amazon_status: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    amazon_status_updated_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


def record_parts(session: Session, order_id: int, sfo_ids: list[str], now: datetime) -> None:
    """The Amazon orders of a split order (none for an order sent whole); idempotent."""
    if not sfo_ids:
        return
    known = set(
        session.execute(
            select(col(OrderPartRecord.seller_fulfillment_order_id)).where(
                col(OrderPartRecord.order_id) == order_id
            )
        ).scalars()
    )
    for part, sfo_id in enumerate(sfo_ids, start=1):
        if sfo_id not in known:
            session.add(
                OrderPartRecord(
                    order_id=order_id,
                    part=part,
                    seller_fulfillment_order_id=sfo_id,
                    created_at=now,
                    updated_at=now,
                )
            )


def order_by_amazon_id(session: Session, seller_fulfillment_order_id: str) -> OrderRecord | None:
    """The order an Amazon order id belongs to: the order itself, or the order it is a part of."""
    row = (
        session.execute(
            select(OrderRecord).where(
                col(OrderRecord.seller_fulfillment_order_id) == seller_fulfillment_order_id
            )
        )
        .scalars()
        .first()
    )
    if row is not None:
        return row
    part = (
        session.execute(
            select(OrderPartRecord).where(
                col(OrderPartRecord.seller_fulfillment_order_id) == seller_fulfillment_order_id
            )
        )
        .scalars()
        .first()
    )
    return session.get(OrderRecord, part.order_id) if part is not None else None


def order_parts(session: Session, order_id: int) -> list[OrderPartRecord]:
    """The parts of a split order, in order (empty for an order sent whole)."""
    query = (
        select(OrderPartRecord)
        .where(col(OrderPartRecord.order_id) == order_id)
        .order_by(col(OrderPartRecord.part))
    )
    return list(session.execute(query).scalars())


class AlertRecord(SQLModel, table=True):
    """An operator alert, one row per cause (`key`); see `bridge/alerts.py`."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "cleared_at", "last_seen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    severity: str = Field(sa_column=Column(String(16), nullable=False))
    message: str = Field(sa_column=Column(String(2000), nullable=False))
    channel_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    account_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int = 1
    cleared_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str = Field(default="", sa_column=Column(String(128), nullable=False, default=""))


class SyncCursorRecord(SQLModel, table=True):
    """Per Amazon account: up to when the change listing has been read completely."""

    __tablename__ = "sync_cursors"

    account_id: str = Field(sa_column=Column(String(64), primary_key=True))
    synced_until: datetime
    updated_at: datetime


class ReconcileCursorRecord(SQLModel, table=True):
    """Per channel: up to when the storefront's changed orders have been read completely
    (`pipeline/reconcile.py`), and who is reading them now (one pass per channel at a time)."""

    __tablename__ = "reconcile_cursors"

    channel_id: str = Field(sa_column=Column(String(64), primary_key=True))
    #: Our clock at the start of the last complete pass; the next pass reads from here minus an overlap.
    synced_until: datetime | None = None
    #: Lease of the pass running now, epoch seconds in database time (`db_now`).
    running_until: float | None = None
    holder: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    #: Counts of the last complete pass (JSON), for `fba-bridge channels` and the console.
    last_summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class InventoryCursorRecord(SQLModel, table=True):
    """Per Amazon account and marketplace: how far Amazon's inventory changes have been read."""

    __tablename__ = "inventory_cursors"

    account_id: str = Field(sa_column=Column(String(64), primary_key=True))
    marketplace_id: str = Field(sa_column=Column(String(20), primary_key=True))
    #: The change feed has been read completely up to here (our clock, at the start of that read).
    changes_until: datetime | None = None
    #: The last complete read of every mapped SKU.
    swept_at: datetime | None = None
    #: Digest of the channels' SKU maps and buffers the targets were computed with.
    mapping: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    updated_at: datetime


class AmazonStockRecord(SQLModel, table=True):
    """Amazon's quantities of one seller SKU in one marketplace, as last read."""

    __tablename__ = "amazon_stock"
    __table_args__ = (
        UniqueConstraint("account_id", "marketplace_id", "amazon_sku", name="uq_amazon_stock_sku"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(sa_column=Column(String(64), nullable=False))
    marketplace_id: str = Field(sa_column=Column(String(20), nullable=False))
    amazon_sku: str = Field(sa_column=Column(String(50), nullable=False))
    fulfillable: int = 0
    total: int = 0
    reserved: int = 0
    inbound: int = 0
    #: False when Amazon had no summary for the SKU at the last full read (sellable: 0).
    known: bool = True
    amazon_updated_at: datetime | None = None  # Amazon's lastUpdatedTime
    changed_at: datetime  # when our copy of `fulfillable` last changed
    seen_at: datetime


#: A storefront SKU whose known value differs from its target (see `ix_storefront_stock_due`).
STOCK_DUE = "storefront_quantity IS NULL OR storefront_quantity != target"


class StorefrontStockRecord(SQLModel, table=True):
    """One storefront SKU of a channel: what it may sell, and what the storefront was last told.

    `target` is recomputed whenever Amazon's quantity or the units of orders in flight change;
    `target_version` counts those changes. A push carries the version it sets, so a result that
    arrives after the target moved again is recorded as what the storefront has, not as done."""

    __tablename__ = "storefront_stock"
    __table_args__ = (
        UniqueConstraint("channel_id", "storefront_sku", name="uq_storefront_stock_sku"),
        Index("ix_storefront_stock_amazon", "channel_id", "amazon_sku"),
        # The SKUs a push is owed for, without reading the whole catalogue of a channel.
        Index(
            "ix_storefront_stock_due",
            "channel_id",
            "target_changed_at",
            sqlite_where=text(STOCK_DUE),
            postgresql_where=text(STOCK_DUE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(sa_column=Column(String(64), nullable=False))
    storefront_sku: str = Field(sa_column=Column(String(255), nullable=False))
    amazon_sku: str = Field(sa_column=Column(String(50), nullable=False))
    amazon_quantity: int = 0
    in_flight: int = 0
    target: int = 0
    target_version: int = 1
    target_changed_at: datetime
    #: Amazon's lastUpdatedTime behind the current target (how late the storefront is).
    amazon_changed_at: datetime | None = None
    #: The storefront's value as last seen or set by us (None: not looked at yet).
    storefront_quantity: int | None = None
    pushed_quantity: int | None = None
    pushed_version: int = 0
    pushed_at: datetime | None = None
    #: The storefront's id: Shopify inventory item gid, WooCommerce product or variation id.
    storefront_ref: str = Field(default="", sa_column=Column(String(200), nullable=False, default=""))
    storefront_parent: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    #: ok | missing | unmanaged | not_stocked | duplicate | error
    status: str = Field(default="ok", sa_column=Column(String(16), nullable=False, default="ok"))
    status_detail: str = Field(default="", sa_column=Column(String(500), nullable=False, default=""))
    #: Not before then (a concurrent storefront change was seen, or the SKU is to be looked up again).
    retry_at: datetime | None = None
    updated_at: datetime


class LeaderLeaseRecord(SQLModel, table=True):
    """Who may run the periodic schedule; held in database time, renewed by its holder."""

    __tablename__ = "leader_leases"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    holder: str = Field(sa_column=Column(String(128), nullable=False))
    lease_until: float
    term: int = 0


class RateBucketRecord(SQLModel, table=True):
    """A token bucket shared by every worker process (per seller account and SP-API operation)."""

    __tablename__ = "rate_buckets"

    key: str = Field(sa_column=Column(String(200), primary_key=True))
    tokens: float
    updated: float
    rate: float
    burst: float


class LwaTokenRecord(SQLModel, table=True):
    """Per Amazon account: the current LWA access token (valid one hour), shared by every worker
    process, and whether Login with Amazon has refused the account's credentials.

    Times are epoch seconds of the injected clock. The token is used until `refresh_at` (a few
    minutes before LWA's `expires_at`). `refreshing_until` is the lease of the one process fetching
    a new token; the others wait for its result. While `rejected_code` is set the account is
    parked: nobody asks LWA again before `retry_at`.
    """

    __tablename__ = "lwa_tokens"

    account_id: str = Field(sa_column=Column(String(64), primary_key=True))
    access_token: str | None = Field(default=None, sa_column=Column(String(4096), nullable=True))
    expires_at: float | None = None
    refresh_at: float | None = None
    refreshing_until: float | None = None
    rejected_code: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    rejected_message: str = Field(default="", sa_column=Column(String(2000), nullable=False, default=""))
    rejected_status: int | None = None
    #: Fingerprint (truncated SHA-256) of the credentials LWA refused: new ones are tried at once.
    rejected_credentials: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    failures: int = 0
    retry_at: float | None = None
    updated_at: float


class StorefrontCredentialRecord(SQLModel, table=True):
    """Per channel: whether the storefront refused our credentials, shared by every worker.

    While `rejected_code` is set the channel is parked: its push jobs wait without spending
    attempts, one probe a `recheck_at` (a minute apart) asks the storefront again, and the first
    success (or `fba-bridge channels recheck`) clears the row, the alert and the wait.
    Times are epoch seconds of the injected clock.
    """

    __tablename__ = "storefront_credentials"

    channel_id: str = Field(sa_column=Column(String(100), primary_key=True))
    rejected_code: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    rejected_message: str = Field(default="", sa_column=Column(String(2000), nullable=False, default=""))
    recheck_at: float | None = None
    updated_at: float


class MetricCounterRecord(SQLModel, table=True):
    """An event counter (or a latest-timestamp) summed over every process; see `bridge/metrics`."""

    __tablename__ = "metric_counters"

    name: str = Field(sa_column=Column(String(100), primary_key=True))
    #: The label set as compact JSON with sorted keys, e.g. `{"channel":"shop-a","outcome":"created"}`.
    labels: str = Field(sa_column=Column(String(400), primary_key=True))
    value: float
    updated_at: float


def storage_key(value: str, limit: int = DELIVERY_KEY_LENGTH) -> str:
    """A delivery key or event id as stored and looked up: itself when it fits the column and is
    printable ASCII, else `sha256:<digest>` -- the same for every retry, so a retry of a delivery
    with a long or unusual id is still recognised (never cut, which made two ids one and the
    lookup miss the row it had stored)."""
    if len(value) <= limit and value.isascii() and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()


def printable(value: str, limit: int) -> str:
    """Text for a column that must never hold control characters (U+0000 fails on PostgreSQL)."""
    return "".join(ch if ch.isprintable() else "?" for ch in value)[:limit]


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=10)
    _ping_when_idle(engine)
    return engine


def _ping(dbapi_conn: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()
    dbapi_conn.rollback()  # the ping's implicit transaction must not leak into the checkout


#: A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping`, but only for a connection that sat idle in the pool.

    Connections die while idle (a server restart, a proxy's or firewall's idle timeout); one
    that was in use a moment ago is not worth a round trip each time it is checked out, and a
    job takes it out up to ten times (claim, reads, rate buckets, the final write). A ping that
    fails raises `DisconnectionError`, on which the pool discards the connection and hands out
    a fresh one. Should a busy connection die anyway, its statement fails, SQLAlchemy marks the
    pool stale, and the job or webhook fails like any other outage and is retried."""

    @event.listens_for(engine.pool, "connect")
    def _on_connect(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_s = PING_AFTER_IDLE_S
        if time.monotonic() - record.info.get("idle_since", 0.0) <= idle_s:
            return
        try:
            _ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(
                f"a pooled connection idle for over {idle_s:g} s failed its ping"
            ) from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class _SqliteWriterTurn:
    """One SQLite writer at a time, handed over at once: this process's threads queue on a
    lock, and processes sharing the file (gunicorn's workers) on an `flock` of
    `<database>.writer-lock` beside it. Both wake the next writer the moment the turn is free,
    where SQLite's busy handler would poll in sleeps of up to 100 ms. SQLite's own lock still
    decides; writers that do not take a turn (the worker's jobs) simply meet it there."""

    def __init__(self, database: str | None) -> None:
        self._lock = threading.Lock()
        self._path = f"{database}.writer-lock" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> _SqliteWriterTurn:
        self._lock.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _file(self) -> int | None:
        """This process's own descriptor: a forked child must not share its parent's, since an
        `flock` belongs to the open file, and parent and child would then never exclude each other."""
        if self._path is None or fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                self._path = None  # a read-only folder: SQLite's busy handler alone, as before
                return None
            self._pid = os.getpid()
        return self._fd


_sqlite_writers: dict[str, _SqliteWriterTurn] = {}
_sqlite_writers_lock = threading.Lock()


def one_writer_at_a_time(engine: Engine) -> AbstractContextManager[object]:
    """On SQLite, the busy writers (webhooks, the metrics flush) of every process on the file
    take turns here (`_SqliteWriterTurn`). PostgreSQL needs no such thing (row locks, concurrent
    commits). Not re-entrant: take it around a whole transaction, never inside one."""
    if not is_sqlite(engine):
        return nullcontext()
    key = engine.url.render_as_string(hide_password=True)
    with _sqlite_writers_lock:
        turn = _sqlite_writers.get(key)
        if turn is None:
            turn = _sqlite_writers[key] = _SqliteWriterTurn(engine.url.database)
    return turn


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement (SQLite)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading only. On SQLite a deferred transaction: one snapshot for all its
    statements. On PostgreSQL each statement runs on its own (autocommit), which under READ
    COMMITTED, the isolation the bridge runs at, reads exactly what a transaction would (every
    statement takes a fresh snapshot either way) and saves the BEGIN and ROLLBACK round trips:
    0.15 ms of a worker's CPU per session, one per submit job."""
    if is_sqlite(engine):
        with Session(engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False) as session:
            yield session  # closing ends the transaction and leaves loaded objects readable
        return
    with Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


@contextmanager
def one_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for a write that is one statement, atomic on its own (an `UPDATE ...
    RETURNING`, a data-modifying CTE). PostgreSQL runs it autocommitted: one round trip instead
    of BEGIN, the statement and COMMIT. SQLite runs it in the usual write transaction, which
    takes its write lock at BEGIN."""
    if is_sqlite(engine):
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def lock_order(session: Session, order_id: int) -> OrderRecord:
    """The order row, locked for the rest of the caller's write transaction (`FOR UPDATE` on
    PostgreSQL; SQLAlchemy leaves it out on SQLite, whose `BEGIN IMMEDIATE` already holds the lock)."""
    row: OrderRecord = session.execute(_order_stmt(lock=True), {"order_id": order_id}).scalars().one()
    return row


def load_order(session: Session, order_id: int) -> OrderRecord | None:
    """The order row, or None when it is gone (purged)."""
    row: OrderRecord | None = (
        session.execute(_order_stmt(lock=False), {"order_id": order_id}).scalars().first()
    )
    return row


@cache
def _order_stmt(*, lock: bool) -> Any:
    """Built once: a submit job loads its order three times (building the query each time was 3%
    of a busy worker's CPU)."""
    query = select(OrderRecord).where(col(OrderRecord.id) == bindparam("order_id"))
    return query.with_for_update() if lock else query


def data_digest() -> Any:
    """SHA-256 of the order's `data` as stored (PostgreSQL; its `json` type keeps the text as
    written). Equal digests mean the order says the same thing; a step planned from a snapshot
    compares it in the statement that writes (`claimed_transitions`)."""
    return func.sha256(func.convert_to(cast(col(OrderRecord.data), Text), literal_column("'UTF8'")))


def commit_without_waiting_for_disk(conn: Connection) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL's
    `synchronous_commit = off`, for this transaction only; SQLite: nothing to do). A crash of the
    database server can lose such a commit, never corrupt it, and any later commit that did wait
    makes it durable too. Only for bookkeeping whose loss the bridge survives anyway: a job's
    claim (lost, it is as if the worker's lease had run out) and rate-bucket tokens (a few handed
    out again). A commit waits ~2 ms for the disk on this class of machine, several times a job's
    own statements."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def without_waiting_for_disk_columns(dialect: str) -> tuple[Any, ...]:
    """`commit_without_waiting_for_disk` as columns to add to a statement the transaction runs
    anyway (PostgreSQL's `set_config(..., is_local => true)` is `SET LOCAL`), saving a round trip
    of its own. It takes effect only when the statement returns a row; none on SQLite."""
    if dialect != "postgresql":
        return ()
    return (func.set_config("synchronous_commit", "off", true()),)


def db_epoch_sql(dialect: str, *, statement_start: bool = False) -> str:
    """The SQL expression of the current epoch seconds by the database's clock. PostgreSQL's
    `clock_timestamp()` moves on within a statement (a lock waited for is counted);
    `statement_start` takes the statement's start instead, one value however often it appears
    (SQLite's 'now' is one value per statement either way)."""
    if dialect == "sqlite":
        return "(julianday('now') - 2440587.5) * 86400.0"
    return (
        "EXTRACT(EPOCH FROM statement_timestamp())"
        if statement_start
        else "EXTRACT(EPOCH FROM clock_timestamp())"
    )


def db_clock_column(dialect: str, *, statement_start: bool = False) -> Any:
    """The database's clock as a column, to read it in the same statement as other values
    instead of a round trip of its own (`db_now`)."""
    return literal_column(db_epoch_sql(dialect, statement_start=statement_start))


def db_now(session: Session) -> float:
    """Current epoch seconds by the database's clock."""
    sql = f"SELECT {db_epoch_sql(session.get_bind().dialect.name)}"
    return float(session.connection().execute(text(sql)).scalar_one())


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that mean 'the database cannot take the write right now' (retry later)."""
    if isinstance(exc, OperationalError):
        return True
    return type(exc).__name__ in {"DatabaseError", "InterfaceError"} and "closed" in str(exc).lower()


def ping(engine: Engine) -> bool:
    try:
        with read_session(engine) as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)
