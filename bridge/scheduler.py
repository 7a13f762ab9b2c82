"""The clock process: one leader enqueues periodic work; workers do it; web processes never do.

Leadership is a lease row in the database, in database time. The leader renews it well before
it runs out; it also keeps a local deadline measured from *before* each renewal began, so after
losing its database connection it stops enqueueing before the lease can pass to another clock.
Every enqueue re-checks the lease inside its own transaction, a second fence.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from . import jobs
from .bootstrap import Bridge
from .migrate import schema_problem
from .pipeline.compaction import JOB_COMPACT
from .pipeline.inventory import JOB_INVENTORY_SYNC, sync_key
from .pipeline.reconcile import JOB_RECONCILE, reconcile_key
from .pipeline.requests import JOB_REQUESTS
from .pipeline.sync import JOB_SYNC, JOB_SYNC_STALE
from .store import LeaderLeaseRecord, db_now, write_session

log = logging.getLogger("bridge.clock")

JOB_PURGE = "purge"
LEASE_NAME = "clock"


class NotLeader(RuntimeError):
    pass


class LeaderLease:
    def __init__(self, bridge: Bridge, lease_s: float, holder: str | None = None) -> None:
        self.bridge = bridge
        self.lease_s = lease_s
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._valid_until = 0.0  # time.monotonic() deadline
        self.failing = False  # the last renewal could not reach the database

    def renew(self) -> bool:
        """Take or extend the lease; False when another holder has it (or the database is away)."""
        started = time.monotonic()
        self.failing = False
        try:
            with write_session(self.bridge.engine) as session:
                now = db_now(session)
                query = select(LeaderLeaseRecord).where(col(LeaderLeaseRecord.name) == LEASE_NAME)
                row = session.execute(query.with_for_update()).scalars().first()
                if row is None:
                    session.add(
                        LeaderLeaseRecord(
                            name=LEASE_NAME, holder=self.holder, lease_until=now + self.lease_s, term=1
                        )
                    )
                elif row.holder == self.holder or row.lease_until < now:
                    if row.holder != self.holder:
                        row.term += 1
                        log.info(
                            "taking over the clock lease (term %d) from a holder whose lease ran out",
                            row.term,
                        )
                    row.holder = self.holder
                    row.lease_until = now + self.lease_s
                    session.add(row)
                else:
                    self._valid_until = 0.0
                    return False
        except IntegrityError:
            self._valid_until = 0.0
            return False
        except Exception as exc:
            self.failing = True
            log.warning(
                "clock lease renewal failed (%s); standing down until it succeeds", type(exc).__name__
            )
            return self.is_leader()
        self._valid_until = started + self.lease_s * 0.8
        return True

    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    def check(self, session: Session) -> None:
        """Inside an enqueue transaction: refuse unless this process still holds the lease."""
        row = session.get(LeaderLeaseRecord, LEASE_NAME)
        if (
            not self.is_leader()
            or row is None
            or row.holder != self.holder
            or row.lease_until < db_now(session)
        ):
            raise NotLeader("this clock no longer holds the lease")

    def release(self) -> None:
        try:
            with write_session(self.bridge.engine) as session:
                row = session.get(LeaderLeaseRecord, LEASE_NAME)
                if row is not None and row.holder == self.holder:
                    row.lease_until = 0.0
                    session.add(row)
        except Exception as exc:
            log.warning("could not release the clock lease: %s", type(exc).__name__)
        self._valid_until = 0.0


class Clock:
    """The `clock` process: periodic jobs guarded by the leader lease."""

    def __init__(self, bridge: Bridge, *, lease: LeaderLease | None = None) -> None:
        settings = bridge.settings
        self.bridge = bridge
        self.lease = lease or LeaderLease(bridge, settings.leader_lease_s)
        self.stopping = threading.Event()
        self.fatal = ""
        self.scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
        interval = settings.sync_interval_s
        for account_id in bridge.config.accounts:
            self._every(interval, f"sync:{account_id}", JOB_SYNC, {"account_id": account_id})
        self._every(max(interval * 3, 60.0), "sync-stale", JOB_SYNC_STALE, {})
        self._every(3600.0, "purge", JOB_PURGE, {"retention_days": settings.retention_days})
        # A fulfillment service's callbacks are hints: unanswered requests are also read periodically.
        for channel in bridge.config.channels.values():
            if channel.enabled and channel.shopify.fulfillment_service:
                for request_kind in ("fulfillment", "cancellation"):
                    payload: dict[str, object] = {"channel_id": channel.id, "kind": request_kind}
                    self._every(interval, f"requests:{channel.id}:{request_kind}", JOB_REQUESTS, payload)
        for channel in bridge.config.channels.values():
            if channel.enabled and channel.inventory.sync:
                # Channels on one account and marketplace share one job (and one read of Amazon).
                self._every(
                    channel.inventory.interval_s,
                    f"inventory:{channel.id}",
                    JOB_INVENTORY_SYNC,
                    {
                        "account_id": channel.account_id,
                        "marketplace_id": channel.marketplace_id,
                        "channel_id": channel.id,
                    },
                    key=sync_key(channel.account_id, channel.marketplace_id),
                )
        for channel in bridge.config.channels.values():
            if channel.enabled and channel.reconcile.enabled:
                # Missed webhooks: one pass per channel at a time (`pipeline/reconcile.py`).
                self._every(
                    channel.reconcile.interval_s,
                    f"reconcile:{channel.id}",
                    JOB_RECONCILE,
                    {"channel_id": channel.id, "since": None},
                    key=reconcile_key(channel.id),
                )
        self._every(3600.0, "compact", JOB_COMPACT, {"retention_days": settings.retention_days})

    def _every(
        self, seconds: float, name: str, kind: str, payload: dict[str, object], key: str | None = None
    ) -> None:
        # A run that is late by less than one interval still happens (once: coalesce); a later one
        # is dropped and logged, the next regular run covers it.
        self.scheduler.add_job(
            self._enqueue(kind, payload, seconds, key),
            IntervalTrigger(seconds=seconds),
            id=name,
            name=name,
            misfire_grace_time=max(1, int(seconds)),
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )

    def _enqueue(
        self, kind: str, payload: dict[str, object], interval: float, dedupe_key: str | None = None
    ) -> Callable[[], None]:
        key = dedupe_key or f"{kind}:{payload.get('account_id', '')}"
        if dedupe_key is None and "channel_id" in payload:
            key += f"{payload['channel_id']}:{payload.get('kind', '')}"
        last_run: list[float] = []

        def run() -> None:
            now = time.monotonic()
            if last_run and now - last_run[0] > interval * 1.5:
                # apscheduler reports a coalesced run as on time; the gap tells how late it really is.
                log.warning(
                    "periodic %s ran %.1fs late; the missed runs were coalesced into this one",
                    key,
                    now - last_run[0] - interval,
                )
            last_run[:] = [now]
            try:
                with write_session(self.bridge.engine) as session:
                    self.lease.check(session)
                    added = jobs.enqueue(session, kind, payload=dict(payload), dedupe_key=key)
                log.info("periodic %s %s", key, "enqueued" if added else "already queued")
            except NotLeader:
                log.info("periodic %s skipped: not the leader", key)

        return run

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("periodic %s missed its run at %s", event.job_id, event.scheduled_run_time)
            return
        late = (datetime.now(UTC) - event.scheduled_run_time).total_seconds()
        if late > 1.0:
            log.warning("periodic %s ran %.1fs late", event.job_id, late)

    def run_forever(self) -> None:
        renew_every = self.lease.lease_s / 3
        self.scheduler.start(paused=True)
        leading = False
        try:
            while not self.stopping.is_set():
                now_leading = self.lease.renew()
                if now_leading and not leading:
                    log.info("clock is the leader (%s); periodic jobs run here", self.lease.holder)
                    self.scheduler.resume()
                elif leading and not now_leading:
                    log.warning("clock lost the lead; periodic jobs paused")
                    self.scheduler.pause()
                leading = now_leading
                problem = schema_problem(self.bridge.engine) if self.lease.failing else None
                if problem:
                    log.error("clock stopping: %s", problem)
                    self.fatal = problem
                    break
                self.stopping.wait(renew_every)
        finally:
            self.scheduler.shutdown(wait=True)
            if leading:
                self.lease.release()
            log.info("clock stopped")

    def stop(self) -> None:
        self.stopping.set()
