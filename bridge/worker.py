"""Runs queued jobs: claim, heartbeat while working, finish together with the job's own writes.

A handler gets a `JobContext`. Its last write goes through `ctx.finish()`, which marks the job
done in the same transaction and first checks that this worker still holds the claim; a worker
that was paused past its lease therefore cannot record anything for a job another worker took
over. Handlers signal "try again later" by raising `RetryLater`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from . import alerts, budget, jobs, logs, metrics
from .bootstrap import Bridge
from .claimed_transitions import step_under_claim
from .migrate import schema_problem
from .orders import Event, OrderState
from .store import JobRecord, OrderRecord, write_session

log = logging.getLogger("bridge.worker")

SHUTDOWN_GRACE_S = 25.0


class RetryLater(Exception):
    """The job could not run now (rate limit, outage, storefront throttling); retry after a delay."""

    def __init__(self, reason: str, after_s: float | None = None, *, count_attempt: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_s = after_s
        self.count_attempt = count_attempt


class GiveUp(Exception):
    """Retrying cannot help (the storefront refused the request as invalid): dead-letter it now."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class JobContext:
    bridge: Bridge
    job: jobs.ClaimedJob
    services: Mapping[str, Any] = field(default_factory=dict)
    finished: bool = False

    @contextmanager
    def finish(self) -> Iterator[Session]:
        """The job's final write transaction; raises `jobs.LostLease` if the claim was lost. The
        job is marked done first (that checks and locks the claim) and commits with the rest."""
        with write_session(self.bridge.engine) as session:
            jobs.complete(session, self.job)
            yield session
        self.finished = True

    def step(
        self,
        order_id: int,
        *,
        from_state: OrderState,
        event: Event,
        reason: str,
        values: Mapping[str, Any],
        digest: bytes | None = None,
        complete: bool = False,
    ) -> bool:
        """One plain step of the job's order in one statement (`claimed_transitions`); with
        `complete` it is the job's final write and ends the job. True when it was written. False
        when nothing was written: the caller then takes its general path (`finish()` for a
        final write)."""
        done = step_under_claim(
            self.bridge.engine,
            self.job,
            order_id,
            from_state=from_state,
            event=event,
            now=self.bridge.clock.now(),
            reason=reason,
            values=values,
            digest=digest,
            complete=complete,
        )
        self.finished = self.finished or (done and complete)
        return done


Handler = Callable[[JobContext], None]


def safe_error(exc: BaseException) -> str:
    """An error text safe to store and log: our own exceptions carry a code and a PII-free message."""
    code = getattr(exc, "code", None)
    if code and isinstance(exc, Exception) and type(exc).__module__.startswith("bridge"):
        return f"{type(exc).__name__}[{code}]: {exc}"[:2000]
    if isinstance(exc, RetryLater | GiveUp):
        return exc.reason[:2000]
    return type(exc).__name__


class _Heartbeat:
    """Keeps the leases of a worker's running jobs alive: one thread for all its jobs (a thread
    per job cost ~0.15 ms of CPU to start and stop, 2% of a submit job). It looks every sixth of
    the lease and renews a lease a third of it old, so a running job's lease is renewed at least
    every half lease. It ends when it finds no job running and starts again with the next one,
    so an idle worker keeps no thread."""

    def __init__(self, bridge: Bridge, lease_s: float) -> None:
        self._bridge = bridge
        self._lease_s = lease_s
        self._lock = threading.Lock()  # held while renewing: a job ends only after that
        self._renewed: dict[int, tuple[jobs.ClaimedJob, float]] = {}  # job id -> (job, when)
        self._thread: threading.Thread | None = None

    @contextmanager
    def keeping(self, job: jobs.ClaimedJob) -> Iterator[None]:
        if self._lease_s <= 0:  # nothing to keep (tests of an expired lease)
            yield
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
                thread.start()  # may raise (no thread to be had): then this job fails, nothing else
                self._thread = thread
            self._renewed[job.id] = (job, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._renewed.pop(job.id, None)

    def _run(self) -> None:
        try:
            while self._renew_due():
                time.sleep(self._lease_s / 6)
        except BaseException:
            with self._lock:  # should this thread die, the next job starts another
                self._thread = None
            raise

    def _renew_due(self) -> bool:
        """Renew the leases that are due; False (and this thread is done) when no job runs. The
        decision and clearing `_thread` happen under one lock, so a job that starts meanwhile
        either is seen here or starts a thread of its own."""
        with self._lock:
            if not self._renewed:
                self._thread = None
                return False
            for job, renewed in list(self._renewed.values()):
                if time.monotonic() - renewed >= self._lease_s / 3:
                    self._renewed[job.id] = (job, self._renew(job, renewed))
            return True

    def _renew(self, job: jobs.ClaimedJob, renewed: float) -> float:
        """When the lease was renewed now, or `renewed` again if this failed (retried at the next
        look); infinity once the lease is lost, so it is not tried again."""
        try:
            jobs.heartbeat(self._bridge.engine, job, self._lease_s)
            return time.monotonic()
        except jobs.LostLease:
            log.warning("job %s lost its lease while running", job.id)
            return float("inf")
        except Exception as exc:
            log.warning("heartbeat for job %s failed: %s", job.id, type(exc).__name__)
            return renewed


class Worker:
    def __init__(
        self,
        bridge: Bridge,
        handlers: Mapping[str, Handler],
        *,
        services: Mapping[str, Any] | None = None,
        lease_s: float = jobs.DEFAULT_LEASE_S,
        poll_interval_s: float = 0.5,
        rate_wait_s: float | None = None,
    ) -> None:
        self.bridge = bridge
        self.handlers = dict(handlers)
        self.services = dict(services or {})
        self.lease_s = lease_s
        self.poll_interval_s = poll_interval_s
        #: Longest sleep for a rate token before a job goes back to the queue (`bridge.budget`);
        #: None: always sleep.
        self.rate_wait_s = rate_wait_s
        self.stopping = threading.Event()
        self.fatal = ""
        self._heartbeat = _Heartbeat(bridge, lease_s)

    def run_once(self) -> bool:
        """Claim and run one due job. Returns False when there was nothing to do."""
        job = jobs.claim(
            self.bridge.engine, list(self.handlers), self.lease_s, on_dead=self._dead_letter_alert
        )
        if job is None:
            return False
        self._run(job)
        return True

    def drain(self, limit: int = 10_000) -> int:
        """Run due jobs until none is left (tests and the demo)."""
        done = 0
        while done < limit and self.run_once():
            done += 1
        return done

    def _run(self, job: jobs.ClaimedJob) -> None:
        channel, account = self._scope(job)
        with logs.log_context(job_id=job.id, order_id=job.order_id, channel=channel):
            outcome = self._run_handler(job)
        done_at = self.bridge.clock.now().timestamp() if outcome == "done" else None
        metrics.job_finished(job.kind, outcome, at=done_at, channel=channel, account=account)

    def _scope(self, job: jobs.ClaimedJob) -> tuple[str | None, str | None]:
        """The job's channel and account, for log lines and metrics (None when it names none)."""
        payload = job.payload
        channel = payload.get("channel_id") if isinstance(payload.get("channel_id"), str) else None
        account = payload.get("account_id") if isinstance(payload.get("account_id"), str) else None
        return channel or job.order_channel_id, account

    def _run_handler(self, job: jobs.ClaimedJob) -> str:
        """Run the job's handler and record its result; returns the outcome for the metrics."""
        ctx = JobContext(self.bridge, job, self.services)
        started = time.perf_counter()
        run_budget: budget.JobBudget | None = None
        try:
            with self._heartbeat.keeping(job), self._budget(job) as run_budget:
                self.handlers[job.kind](ctx)
            if not ctx.finished:
                with ctx.finish():
                    pass
            log.info(
                "job %s kind=%s done ms=%.0f late_ms=%.0f",
                job.id,
                job.kind,
                (time.perf_counter() - started) * 1000,
                job.late_s * 1000,
            )
            return "done"
        except jobs.LostLease:
            log.warning(
                "job %s kind=%s was taken over by another worker; its result was discarded", job.id, job.kind
            )
            return "lost"
        except GiveUp as exc:
            return self._fail(job, exc, None, permanent=True)
        except RetryLater as exc:
            if exc.count_attempt:
                return self._fail(job, exc, exc.after_s)
            return self._postpone(job, exc, run_budget.reserved if run_budget else None)
        except Exception as exc:
            return self._fail(job, exc, None)

    def _budget(self, job: jobs.ClaimedJob) -> AbstractContextManager[budget.JobBudget | None]:
        if self.rate_wait_s is None:
            return nullcontext()
        return budget.job_budget(self.rate_wait_s, job.reserved)

    def _fail(
        self, job: jobs.ClaimedJob, exc: BaseException, after_s: float | None, permanent: bool = False
    ) -> str:
        error = safe_error(exc)
        try:
            status = jobs.fail(
                self.bridge.engine,
                job,
                error,
                retry_after_s=after_s,
                permanent=permanent,
                on_dead=self._dead_letter_alert,
            )
        except jobs.LostLease:
            return "lost"
        level = logging.ERROR if status == jobs.DEAD else logging.WARNING
        log.log(
            level, "job %s kind=%s attempt=%d failed (%s): %s", job.id, job.kind, job.attempts, status, error
        )
        return "dead" if status == jobs.DEAD else "retry"

    def _dead_letter_alert(self, session: Session, record: JobRecord) -> None:
        """The operator alert for a job that was just dead-lettered (in the same transaction): it
        names the order, so the order shows in `fba-bridge orders --attention` with this text."""
        order = session.get(OrderRecord, record.order_id) if record.order_id else None
        what = f"for order {order.display_id or order.external_id} " if order else ""
        consequence = (
            "What it owed the storefront (tracking or a note) was NOT pushed. "
            if record.kind == "push" and order is not None
            else ""
        )
        alerts.raise_alert(
            session,
            key=f"job_dead:{record.id}",
            kind="job_dead",
            message=f"{record.kind} job {record.id} {what}was dead-lettered after {record.attempts} "
            f"attempt(s): {record.last_error}. {consequence}Fix the cause, then run "
            f"`fba-bridge jobs retry {record.id}`",
            now=self.bridge.clock.now(),
            order_id=record.order_id,
            channel_id=order.channel_id if order else None,
        )

    def _postpone(self, job: jobs.ClaimedJob, exc: RetryLater, reserved: str | None) -> str:
        delay = exc.after_s if exc.after_s is not None else jobs.BACKOFF_BASE_S
        try:
            if reserved:
                jobs.hand_back(self.bridge.engine, job, delay, reserved, note=exc.reason)
            else:
                jobs.release(self.bridge.engine, job, delay_s=delay, note=exc.reason)
        except jobs.LostLease:
            return "lost"
        if reserved:  # routine with many sellers: the job waits in the queue, not in the worker
            log.info(
                "job %s kind=%s handed back %.1fs late_ms=%.0f: waiting for its reserved rate token",
                job.id,
                job.kind,
                delay,
                job.late_s * 1000,
            )
            return "handed_back"
        log.warning(
            "job %s kind=%s postponed %.1fs late_ms=%.0f: %s",
            job.id,
            job.kind,
            delay,
            job.late_s * 1000,
            exc.reason,
        )
        return "postponed"

    def run_forever(self) -> None:
        """Poll until `stop()`; an in-flight job is finished before returning. Returns early, with
        `fatal` set, when the database answers but its schema is missing or out of date: waiting
        cannot fix that, so the process exits rather than failing every claim forever."""
        log.info("worker started kinds=%s", ",".join(sorted(self.handlers)))
        failures = 0
        while not self.stopping.is_set():
            try:
                worked = self.run_once()
                failures = 0
            except Exception as exc:
                worked = False
                failures += 1
                problem = schema_problem(self.bridge.engine)
                if problem:
                    log.error("worker stopping: %s", problem)
                    self.fatal = problem
                    break
                if failures == 1 or failures % 100 == 0:
                    log.warning(
                        "worker could not claim a job (%d time(s) in a row): %s", failures, type(exc).__name__
                    )
            if not worked:
                self.stopping.wait(self.poll_interval_s * min(failures + 1, 20))
        log.info("worker stopped")

    def stop(self) -> None:
        self.stopping.set()


def install_signal_handlers(stop: Callable[[], None]) -> None:
    """SIGTERM/SIGINT stop claiming; the current job finishes (Heroku allows 30 s)."""

    def _handler(signum: int, _frame: Any) -> None:
        log.info("signal %s: finishing the current job, then exiting", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
