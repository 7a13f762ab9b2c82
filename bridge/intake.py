"""Storing a verified delivery: one short transaction, then the caller answers 2xx.

The transaction writes the raw delivery (the inbox row), applies `orders.decide_intake` to the
order it concerns, records the decision in the audit trail, and enqueues the next stage's job.
Nothing is sent to another system here, so the storefront gets its answer in milliseconds.
A busy web process may `defer` instead: the inbox row and an `intake` job, whose worker later
calls `settle` on the stored delivery exactly as `ingest` does in the request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable
from sqlmodel import Session, col

from . import alerts, jobs
from .channels import Channel
from .clock import Clock
from .orders import (
    CanonicalOrder,
    IntakeDecision,
    OrderState,
    Outcome,
    PaymentState,
    StoredOrder,
    decide_intake,
)
from .store import (
    DISPLAY_ID_LENGTH,
    REDACTED_BODY,
    DeliveryRecord,
    OrderEventRecord,
    OrderRecord,
    one_statement,
    one_writer_at_a_time,
    printable,
    read_session,
    storage_key,
)
from .storefronts.base import Delivery, Rejection, ReturnRequest

log = logging.getLogger("bridge.intake")

JOB_SUBMIT = "submit"
JOB_CANCEL = "cancel"
JOB_RELEASE = "release"  # older name of the amendment job (a payment releasing a hold); still run
JOB_AMEND = "amend"
JOB_PRIVACY = "privacy"
JOB_RETURN = "return"
JOB_INTAKE = "intake"  # applies a delivery stored under load (`defer`)
DEFERRED = "deferred"
_CONFLICT_RETRIES = 3
PARKED = frozenset({OrderState.NEEDS_ATTENTION, OrderState.NOT_FOR_AMAZON, OrderState.AWAITING_APPROVAL})
SCHEMA_REFUSED = "schema_refused"


@dataclass(frozen=True)
class IngestResult:
    duplicate: bool
    outcome: str
    order_id: int | None = None


def privacy_body(scope: str, order_external_ids: tuple[str, ...]) -> bytes:
    """What is kept of a privacy request's body: its kind and the order ids, never the customer."""
    return json.dumps(
        {"redacted": True, "scope": scope, "orders": list(order_external_ids)}, separators=(",", ":")
    ).encode()


def _deliveries() -> Table:
    return cast(Table, DeliveryRecord.__table__)  # type: ignore[attr-defined]


def _orders() -> Table:
    return cast(Table, OrderRecord.__table__)  # type: ignore[attr-defined]


def _events() -> Table:
    return cast(Table, OrderEventRecord.__table__)  # type: ignore[attr-defined]


@cache
def _insert_delivery_stmt(dialect: str) -> Executable:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING id`: the dedupe is the unique constraint itself
    (a replay inserts nothing and gets no id), in one statement, compiled once per dialect."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = _deliveries()
    return insert(table).on_conflict_do_nothing().returning(table.c.id)


@cache
def _insert_order_stmt() -> Executable:
    orders = _orders()
    return insert(orders).returning(orders.c.id)


@cache
def _insert_event_stmt() -> Executable:
    return insert(_events())


@cache
def _set_outcome_stmt() -> Executable:
    deliveries = _deliveries()
    return update(deliveries).where(deliveries.c.id == bindparam("delivery"))


@cache
def _find_order_stmt() -> Executable:
    orders = _orders()
    return (
        select(orders.c.id)
        .where(
            orders.c.channel_id == bindparam("channel_id"), orders.c.external_id == bindparam("external_id")
        )
        .with_for_update()
    )


def _delivery_values(
    channel: Channel, delivery: Delivery, body: bytes, clock: Clock, source: str, outcome: str
) -> dict[str, object]:
    """The inbox row of a delivery."""
    now = clock.now()
    privacy = delivery.privacy
    return {
        "channel_id": channel.id,
        "delivery_key": storage_key(delivery.delivery_key),
        "event_id": storage_key(delivery.event_id) if delivery.event_id else None,
        "topic": printable(delivery.topic, 64),
        "received_at": now,
        # A privacy request names the customer it is about; keeping it would defeat its purpose.
        # Only its kind and the order ids stay (what `fba-bridge privacy export` needs).
        "body": privacy_body(privacy.scope.value, privacy.order_external_ids)
        if privacy is not None
        else body,
        "body_purged_at": now if privacy is not None else None,
        "outcome": outcome,
        "order_id": None,
        "source": source,
    }


def _insert_delivery(
    session: Session,
    channel: Channel,
    delivery: Delivery,
    body: bytes,
    clock: Clock,
    source: str,
    outcome: str = "",
) -> int | None:
    """The inbox row's id, or None if this delivery was stored before (a replay)."""
    conn = session.connection()
    row = conn.execute(
        _insert_delivery_stmt(conn.dialect.name),
        _delivery_values(channel, delivery, body, clock, source, outcome),
    ).first()
    return None if row is None else int(row[0])


def _tombstone(channel: Channel, external_id: str, clock: Clock) -> CanonicalOrder:
    now = clock.now()
    return CanonicalOrder(
        channel_id=channel.id,
        external_id=external_id,
        display_id=external_id,
        currency="",
        payment_state=PaymentState.UNKNOWN,
        created_at=now,
        updated_at=now,
        cancelled=True,
    )


def _apply(
    session: Session, channel: Channel, delivery: Delivery, delivery_id: int, clock: Clock
) -> tuple[IntakeDecision, int, bool]:
    """The decision, the order's id and whether its personal data was removed (privacy)."""
    external_id = delivery.order.external_id if delivery.order else delivery.external_id
    assert external_id and delivery.kind is not None
    # The id first, as plain Core (a first delivery finds nothing, and that is most of them);
    # an existing order is then loaded through the ORM, locked the same way.
    found = (
        session.connection()
        .execute(_find_order_stmt(), {"channel_id": channel.id, "external_id": external_id})
        .first()
    )
    row = (
        session.get(OrderRecord, found[0], with_for_update=True, populate_existing=True)
        if found is not None
        else None
    )
    stored = (
        StoredOrder(
            row.order_state,
            row.canonical(),
            reached_amazon=row.amazon_status is not None,
            held_by_rules=row.order_state is OrderState.AWAITING_APPROVAL and bool(row.held_rules),
        )
        if row
        else None
    )

    incoming = delivery.order
    if incoming is None:
        incoming = (
            replace(stored.order, cancelled=True) if stored else _tombstone(channel, external_id, clock)
        )
    if row is not None and row.pii_purged_at is not None:
        # Redacted stays redacted: a later delivery (Shopify sends `orders/updated` for archived
        # or edited orders) never writes the personal data back.
        incoming = incoming.without_personal_data()
    decision = decide_intake(stored, incoming, delivery.kind, channel.intake_policy())

    now = clock.now()
    if row is None:
        # A first delivery (nearly all of them): Core inserts, no ORM unit of work.
        assert decision.state is not None and decision.order is not None
        order_id = _create_order(session, channel, delivery, delivery_id, decision, external_id, now)
        return decision, order_id, False
    else:
        from_state = row.state
        if decision.order is not None:
            row.data = decision.order.to_json()
            row.display_id = decision.order.display_id[:DISPLAY_ID_LENGTH]
        if decision.state is not None:
            if decision.state.value != row.state and row.order_state in PARKED:
                # Re-planned from scratch: the old reason (and a rule's hold) no longer applies.
                row.attention_reason = ""
                row.approvals = {**(row.approvals or {}), "held": []}
            row.state = decision.state.value
        row.updated_at = now
        session.add(row)
        session.flush()
    assert row.id is not None
    session.add(
        OrderEventRecord(
            order_id=row.id,
            at=now,
            event=f"intake:{decision.outcome.value}",
            from_state=from_state,
            to_state=row.state,
            reason=_reason(decision, delivery),
            delivery_id=delivery_id,
        )
    )
    _enqueue_effects(session, decision, row.id)
    if decision.alert:
        alerts.raise_alert(
            session,
            key=f"order:{row.id}:intake:{decision.outcome.value}",
            kind="intake",
            message=f"order {row.display_id or row.external_id} ({channel.id}) {decision.alert}",
            now=now,
            order_id=row.id,
            channel_id=channel.id,
        )
    return decision, row.id, row.pii_purged_at is not None


def _create_order(
    session: Session,
    channel: Channel,
    delivery: Delivery,
    delivery_id: int,
    decision: IntakeDecision,
    external_id: str,
    now: datetime,
) -> int:
    """The new order, its first audit entry and its jobs, as Core statements on the session's
    connection (same transaction). Raises IntegrityError when a concurrent delivery created the
    order first (the caller retries and then finds it)."""
    assert decision.state is not None and decision.order is not None
    conn = session.connection()
    order_id = conn.execute(
        _insert_order_stmt(),
        {
            "channel_id": channel.id,
            "external_id": external_id,
            "display_id": decision.order.display_id[:DISPLAY_ID_LENGTH],
            "state": decision.state.value,
            "data": decision.order.to_json(),
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    conn.execute(
        _insert_event_stmt(),
        {
            "order_id": order_id,
            "at": now,
            "event": f"intake:{decision.outcome.value}",
            "from_state": None,
            "to_state": decision.state.value,
            "reason": _reason(decision, delivery),
            "delivery_id": delivery_id,
        },
    )
    _enqueue_effects(session, decision, order_id)
    if decision.alert:
        alerts.raise_alert(
            session,
            key=f"order:{order_id}:intake:{decision.outcome.value}",
            kind="intake",
            message=f"order {decision.order.display_id[:DISPLAY_ID_LENGTH] or external_id} ({channel.id}) "
            f"{decision.alert}",
            now=now,
            order_id=order_id,
            channel_id=channel.id,
        )
    return int(order_id)


def _reason(decision: IntakeDecision, delivery: Delivery) -> str:
    return "; ".join(part for part in (decision.reason, *delivery.notes) if part)[:2000]


def _enqueue_effects(session: Session, decision: IntakeDecision, order_id: int) -> None:
    # Each job plans from the order as it is when the job runs, so one waiting job per kind is
    # enough; a job that is already running gets a successor (see `jobs.enqueue`).
    for wanted, kind in (
        (decision.enqueue_submit, JOB_SUBMIT),
        (decision.enqueue_cancel, JOB_CANCEL),
        (decision.enqueue_amend, JOB_AMEND),
    ):
        if wanted:
            jobs.enqueue(session, kind, order_id=order_id, dedupe_key=f"{kind}:{order_id}")


SOURCE_WEBHOOK = "webhook"
SOURCE_RECONCILE = "reconcile"


def ingest(
    engine: Engine,
    channel: Channel,
    delivery: Delivery,
    body: bytes,
    clock: Clock,
    *,
    source: str = SOURCE_WEBHOOK,
) -> IngestResult:
    """Store one delivery and its effect atomically. Database errors propagate (caller: 503).

    `source` says where the delivery came from: the storefront's webhook, or a reconciliation
    pass that read the order back (a synthetic delivery); both converge the same way."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            # One transaction on one connection; the ORM session joins it for the rarer paths
            # (an existing order, an alert) and never commits on its own: leaving `begin()`
            # commits everything at once, or rolls everything back.
            with (
                one_writer_at_a_time(engine),
                engine.begin() as conn,
                Session(bind=conn, expire_on_commit=False) as session,
            ):
                delivery_id = _insert_delivery(session, channel, delivery, body, clock, source)
                if delivery_id is None:
                    return IngestResult(duplicate=True, outcome="duplicate")
                outcome, order_id = settle(session, channel, delivery, delivery_id, clock)
                return IngestResult(duplicate=False, outcome=outcome, order_id=order_id)
        except IntegrityError:
            # Two first deliveries for the same delivery id or order raced (PostgreSQL); the
            # loser retries and now sees the winner's row, so both converge on one order.
            if attempt == _CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def settle(
    session: Session, channel: Channel, delivery: Delivery, delivery_id: int, clock: Clock
) -> tuple[str, int | None]:
    """Apply a stored delivery's effect and record its outcome, in the caller's transaction:
    the webhook's own (`ingest`) or, for a deferred one, the intake job's."""
    outcome, order_id, purged = _record_effect(session, channel, delivery, delivery_id, clock)
    session.flush()  # the ORM's pending writes (an existing order) before Core's
    values: dict[str, object] = {"delivery": delivery_id, "outcome": outcome, "order_id": order_id}
    if purged is None:
        purged = _order_purged(session, channel, delivery, order_id)
    if purged:
        values.update(body=REDACTED_BODY, body_purged_at=clock.now())
    session.connection().execute(_set_outcome_stmt(), values)
    return outcome, order_id


def deferrable(delivery: Delivery) -> bool:
    """An order delivery a worker can apply later from its stored bytes. Privacy requests (whose
    body is never kept), returns and deliveries our schema refused are always settled at once."""
    return (
        delivery.kind is not None
        and bool(delivery.order or delivery.external_id)
        and delivery.privacy is None
        and delivery.return_request is None
        and not delivery.refused
    )


def defer(engine: Engine, channel: Channel, delivery: Delivery, body: bytes, clock: Clock) -> IngestResult:
    """Store a verified, parsed delivery and queue an `intake` job to apply it, instead of
    applying it here: two inserts, so a web process under load holds the database for as little
    as the least receiver would. The inbox row is the same (dedupe, durable before the 2xx); its
    outcome says `deferred` until the job settles it.

    On SQLite, deferrals that arrive while another one is being committed are stored together,
    in the next transaction (`_GroupCommit`): each still returns only once its own rows are
    committed. On PostgreSQL each is one statement of its own (`_store_deferral_in_one_statement`)."""
    if engine.dialect.name == "postgresql":
        return _store_deferral_in_one_statement(engine, channel, delivery, body, clock)
    return _group(engine).store(engine, _Deferral(channel, delivery, body, clock))


@dataclass(eq=False)
class _Deferral:
    channel: Channel
    delivery: Delivery
    body: bytes
    clock: Clock
    result: IngestResult | None = None
    #: The shared transaction failed: store this one in a transaction of its own.
    alone: bool = False


class _GroupCommit:
    """Group commit for the deferrals of one process and SQLite database.

    Under load the web process's handlers queue for the database (SQLite: one writer at a time),
    and each transaction's fixed cost -- taking the writer's turn, BEGIN, COMMIT -- is paid per
    delivery. Here a handler that finds no transaction in progress commits every deferral
    waiting at that moment (its own included, at most `MAX_BATCH`) in one; the others wait for
    it and return their own result, or lead the next one. Alone (the usual case when idle) a
    handler commits just its own, as before. If the shared transaction fails, each of its
    deferrals is stored again in its own transaction, so one bad delivery fails only itself.
    """

    MAX_BATCH = 32

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._waiting: list[_Deferral] = []
        self._committing = False

    def store(self, engine: Engine, item: _Deferral) -> IngestResult:
        with self._cond:
            self._waiting.append(item)
            while self._committing and item.result is None and not item.alone:
                self._cond.wait()
            batch = None if item.result is not None or item.alone else self._lead(item)
        if batch is not None:
            try:
                self._commit(engine, batch)
            finally:
                with self._cond:
                    for taken in batch:  # not stored (the transaction raised): each tries alone
                        taken.alone = taken.result is None
                    self._committing = False
                    self._cond.notify_all()
        if item.result is not None:
            return item.result
        return _store_deferrals(engine, [item])[item]

    def _lead(self, item: _Deferral) -> list[_Deferral]:
        """Take `item` and the longest-waiting others for one transaction (caller holds the lock)."""
        self._committing = True
        self._waiting.remove(item)
        batch = [item, *self._waiting[: self.MAX_BATCH - 1]]
        del self._waiting[: len(batch) - 1]
        return batch

    def _commit(self, engine: Engine, batch: list[_Deferral]) -> None:
        if len(batch) == 1:
            batch[0].result = _store_deferrals(engine, batch)[batch[0]]
            return
        try:
            results = _store_deferrals(engine, batch)
        except Exception as exc:
            # The class only: a database error's text quotes the bound values (the order body).
            log.warning(
                "storing %d deferred deliveries together failed (%s); storing each on its own",
                len(batch),
                type(exc).__name__,
            )
            return  # `store` marks the batch: each deferral is tried again on its own
        for item, result in results.items():
            item.result = result


def _store_deferrals(engine: Engine, batch: list[_Deferral]) -> dict[_Deferral, IngestResult]:
    """The inbox rows and `intake` jobs of `batch` in one transaction (SQLite, one writer at a
    time). Results are handed out only after the commit."""
    results: dict[_Deferral, IngestResult] = {}
    with (
        one_writer_at_a_time(engine),
        engine.begin() as conn,
        Session(bind=conn, expire_on_commit=False) as session,
    ):
        for item in batch:
            delivery_id = _insert_delivery(
                session, item.channel, item.delivery, item.body, item.clock, SOURCE_WEBHOOK, outcome=DEFERRED
            )
            if delivery_id is None:
                results[item] = _DUPLICATE
                continue
            jobs.enqueue(
                session, JOB_INTAKE, payload={"delivery_id": delivery_id, "channel_id": item.channel.id}
            )
            results[item] = _DEFERRED
    return results


_DUPLICATE = IngestResult(duplicate=True, outcome="duplicate")
_DEFERRED = IngestResult(duplicate=False, outcome=DEFERRED)


@cache
def _defer_stmt() -> Executable:
    """`WITH stored AS (INSERT INTO deliveries ... ON CONFLICT DO NOTHING RETURNING ...), queued
    AS (INSERT INTO jobs ... SELECT ... FROM stored) SELECT id FROM stored`: no row back means
    a replay (nothing inserted, no job)."""
    deliveries = _deliveries()
    stored = (
        pg_insert(deliveries)
        .values(
            {
                name: bindparam(name, type_=column.type)
                for name, column in deliveries.c.items()
                if name != "id"
            }
        )
        .on_conflict_do_nothing()
        .returning(deliveries.c.id, deliveries.c.channel_id)
        .cte("stored")
    )
    payload = func.json_build_object(
        literal("delivery_id"), stored.c.id, literal("channel_id"), stored.c.channel_id
    )
    queued = jobs.enqueue_for_rows("postgresql", JOB_INTAKE, payload, stored).cte("queued")
    return select(stored.c.id).add_cte(queued)


def _store_deferral_in_one_statement(
    engine: Engine, channel: Channel, delivery: Delivery, body: bytes, clock: Clock
) -> IngestResult:
    """PostgreSQL: the inbox row and its job as one autocommitted statement (a data-modifying
    CTE): one round trip instead of BEGIN, two inserts and COMMIT, and no turn to wait for, since
    PostgreSQL commits concurrent statements side by side. A statement is atomic on its own: the
    row and its job are committed together, or neither. A replay inserts neither."""
    values = _delivery_values(channel, delivery, body, clock, SOURCE_WEBHOOK, DEFERRED)
    with one_statement(engine) as conn:
        stored = conn.execute(_defer_stmt(), values).first()
    return _DUPLICATE if stored is None else _DEFERRED


_groups: weakref.WeakKeyDictionary[Engine, _GroupCommit] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def _group(engine: Engine) -> _GroupCommit:
    with _groups_lock:
        group = _groups.get(engine)
        if group is None:
            group = _groups[engine] = _GroupCommit()
        return group


def _park_refused(
    session: Session, channel: Channel, delivery: Delivery, delivery_id: int, now: datetime
) -> int | None:
    """One alert per channel, topic and set of problems; it counts the deliveries that had them.
    When the payload still names an order the bridge holds, the delivery and the alert are linked
    to it (the order itself is not changed). Returns that order's id."""
    problems = [f"{p.get('path', '$')} ({p.get('rule', '?')}: {p.get('fix', '')})" for p in delivery.refused]
    cause = hashlib.sha256("\n".join(sorted(problems)).encode()).hexdigest()[:16]
    topic = printable(delivery.topic, 64)
    row = None
    if delivery.external_id:
        row = (
            session.execute(
                select(OrderRecord).where(
                    col(OrderRecord.channel_id) == channel.id,
                    col(OrderRecord.external_id) == delivery.external_id,
                )
            )
            .scalars()
            .first()
        )
    about = f" for order {row.display_id or row.external_id}" if row is not None else ""
    alerts.raise_alert(
        session,
        key=f"intake:schema_refused:{channel.id}:{topic}:{cause}",
        kind="intake",
        message=(
            f"a {topic} delivery{about} on channel {channel.id} (delivery {delivery_id}) is authentic "
            "but does not match the format the bridge reads, so it was stored and not applied; it was "
            "answered 200 so the storefront keeps the webhook enabled. "
            f"Problems: {'; '.join(problems)}. Check the storefront's webhook API version and the "
            "plugins that change its orders; the raw delivery is kept until the retention purge"
        )[:2000],
        now=now,
        channel_id=channel.id,
        order_id=row.id if row is not None else None,
    )
    return row.id if row is not None else None


def _order_purged(session: Session, channel: Channel, delivery: Delivery, order_id: int | None) -> bool:
    """Whether the order this delivery concerns had its personal data removed: then the delivery
    is kept without its body too (also one that changes nothing, such as a WooCommerce draft)."""
    if order_id is not None:
        purged_at = session.execute(
            select(col(OrderRecord.pii_purged_at)).where(col(OrderRecord.id) == order_id)
        ).scalar_one_or_none()
        return purged_at is not None
    external_id = delivery.order.external_id if delivery.order else delivery.external_id
    if not external_id:
        return False
    purged = session.execute(
        select(col(OrderRecord.pii_purged_at)).where(
            col(OrderRecord.channel_id) == channel.id, col(OrderRecord.external_id) == external_id
        )
    ).first()
    return purged is not None and purged[0] is not None


@dataclass(frozen=True)
class StoredDelivery:
    outcome: str
    same_body: bool


def stored_delivery(engine: Engine, channel_id: str, delivery_key: str, body: bytes) -> StoredDelivery | None:
    """The delivery stored under `delivery_key`, if any: what it did and whether `body` is the
    same bytes (a sender's retry), read in one indexed lookup. Lets the web layer answer a retry
    without parsing or validating the body again."""
    with read_session(engine) as session:
        row = session.execute(
            select(
                col(DeliveryRecord.outcome), col(DeliveryRecord.body), col(DeliveryRecord.body_purged_at)
            ).where(
                col(DeliveryRecord.channel_id) == channel_id,
                col(DeliveryRecord.delivery_key) == storage_key(delivery_key),
            )
        ).first()
    if row is None:
        return None
    # A body removed for privacy cannot be compared: the retry is taken for what it says it is.
    same = row[2] is not None or bytes(row[1]) == body
    return StoredDelivery(outcome=row[0] or "duplicate", same_body=same)


def queue_return(session: Session, row: OrderRecord, request: ReturnRequest, now: datetime) -> None:
    """Queue a customer return in the caller's transaction (generic channel and CLI)."""
    assert row.id is not None
    items = [
        {"line_id": i.line_id, "quantity": i.quantity, "reason_code": i.reason_code, "comment": i.comment}
        for i in request.items
    ]
    jobs.enqueue(session, JOB_RETURN, order_id=row.id, payload={"items": items})
    session.add(
        OrderEventRecord(
            order_id=row.id,
            at=now,
            event="return:requested",
            from_state=row.state,
            to_state=row.state,
            reason=f"{sum(i.quantity for i in request.items)} unit(s)",
        )
    )


class _Effect(NamedTuple):
    outcome: str
    order_id: int | None
    #: Whether the order's personal data was removed, when applying the delivery found out (a new
    #: order: no); None: `settle` looks it up.
    purged: bool | None = None


def _record_effect(
    session: Session, channel: Channel, delivery: Delivery, delivery_id: int, clock: Clock
) -> _Effect:
    if delivery.refused:
        return _Effect(SCHEMA_REFUSED, _park_refused(session, channel, delivery, delivery_id, clock.now()))
    if delivery.privacy is not None:
        jobs.enqueue(
            session,
            JOB_PRIVACY,
            payload={
                "channel_id": channel.id,
                "scope": delivery.privacy.scope.value,
                "order_external_ids": list(delivery.privacy.order_external_ids),
                "delivery_id": delivery_id,
            },
        )
        return _Effect("privacy_queued", None)
    if delivery.return_request is not None:
        row = (
            session.execute(
                select(OrderRecord).where(
                    col(OrderRecord.channel_id) == channel.id,
                    col(OrderRecord.external_id) == delivery.return_request.external_id,
                )
            )
            .scalars()
            .first()
        )
        if row is None:
            raise Rejection(
                422,
                "unknown_order",
                "no order with this external_id; send the return for an order the bridge received",
            )
        queue_return(session, row, delivery.return_request, clock.now())
        return _Effect("return_queued", row.id)
    if delivery.kind is None or not (delivery.order or delivery.external_id):
        return _Effect("ignored", None)
    decision, order_id, purged = _apply(session, channel, delivery, delivery_id, clock)
    if decision.outcome is Outcome.STALE:
        log.info("stale delivery ignored channel=%s order_id=%s", channel.id, order_id)
    return _Effect(decision.outcome.value, order_id, purged)
