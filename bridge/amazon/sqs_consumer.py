"""The `notifications` process: Amazon's FULFILLMENT_ORDER_STATUS notifications from SQS.

Amazon writes each notification as one SQS message whose body is the notification JSON. Every
message goes through `ingest_notification`, the same code path as the HTTP relay: it is stored,
deduplicated by `NotificationId` and turned into an immediate order sync, in its own transaction.
A notification is a hint; the clock's periodic sync stays the safety net, so nothing here can
lose an order. What a caller may rely on:

- A message is deleted only after the transaction that stored it has committed. A crash between
  the two redelivers it, and the redelivery is a duplicate (a no-op).
- A body that can never be read (not JSON, wrong shape) is kept in the deliveries table with the
  outcome `refused`, raises the `amazon_notification_refused` alert, and is deleted.
- While the database cannot take the write, nothing is deleted: the message is handed back to
  the queue after `retry_visibility_s`, and receiving pauses (with backoff) until the database
  answers again, so an outage does not burn the messages' receive counts.
- A message that failed for another reason is retried by SQS; once it has been received
  `max_receives` times it is set aside: kept with the outcome `dead`, alert
  `amazon_notification_dead`, deleted. The queue's own redrive policy (a dead-letter queue with a
  higher `maxReceiveCount`) is the last resort for what cannot even be recorded.
- `stop()` (SIGTERM) ends the loop after the current batch; a long poll in flight returns within
  `wait_s` seconds and its messages are handled before exiting.
- SQS being unreachable or refusing us (credentials, permissions, a deleted queue) is retried with
  backoff and raises the `amazon_notifications_down` alert after `alert_after_s`; the alert clears
  when a receive works again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import col

from ..alerts import Severity, clear_alert, raise_alert
from ..clock import Clock
from ..settings import SqsSettings
from ..store import DeliveryRecord, is_unavailable, ping, write_session
from ..storefronts.base import Rejection
from .notifications import CHANNEL, NotificationResult, ingest_notification

log = logging.getLogger("bridge.notifications")

RECEIVE_COUNT = "ApproximateReceiveCount"
ALERT_REFUSED = "amazon_notification_refused"
ALERT_DEAD = "amazon_notification_dead"
ALERT_DOWN = "amazon_notifications_down"

Ingest = Callable[[Engine, bytes, Clock], NotificationResult]


class SqsClient(Protocol):
    """The part of boto3's SQS client the consumer uses (keyword arguments as boto3 takes them)."""

    def receive_message(self, **kwargs: Any) -> dict[str, Any]: ...

    def delete_message(self, **kwargs: Any) -> Any: ...

    def change_message_visibility(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class ConsumerPolicy:
    wait_s: int = 20  # long poll; SQS allows at most 20
    batch: int = 10  # SQS allows at most 10 per receive
    visibility_s: int = 60  # a batch takes well under a second; a stalled one is redelivered
    max_receives: int = 5
    retry_visibility_s: int = 30  # how long a message that failed for a passing reason waits
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    alert_after_s: float = 300.0

    @classmethod
    def from_settings(cls, sqs: SqsSettings) -> ConsumerPolicy:
        return cls(wait_s=sqs.wait_s, visibility_s=sqs.visibility_s, max_receives=sqs.max_receives)


@dataclass
class BatchReport:
    """What one receive did; `outcomes` counts each message's outcome."""

    received: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    database_down: bool = False
    receive_failed: bool = False

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class _DatabaseDown(Exception):
    pass


class SqsConsumer:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        client: SqsClient,
        queue_url: str,
        policy: ConsumerPolicy | None = None,
        *,
        ingest: Ingest = ingest_notification,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._client = client
        self._queue_url = queue_url
        self.policy = policy or ConsumerPolicy()
        self._ingest = ingest
        self.stopping = threading.Event()
        self._failing_since: float | None = None
        self._alerted = False

    def stop(self) -> None:
        self.stopping.set()

    # ------------------------------------------------------------------------------ loop

    def run_forever(self) -> None:
        """Receive and handle batches until `stop()`."""
        log.info("notifications consumer started wait_s=%d", self.policy.wait_s)
        delay = self.policy.backoff_s
        while not self.stopping.is_set():
            report = self.run_once()
            if not (report.database_down or report.receive_failed):
                delay = self.policy.backoff_s
                continue
            if report.database_down:
                delay = self._wait_for_database(delay)
            else:
                self.stopping.wait(delay)
                delay = min(delay * 2, self.policy.max_backoff_s)
        log.info("notifications consumer stopped")

    def _wait_for_database(self, delay: float) -> float:
        while not self.stopping.wait(delay):
            delay = min(delay * 2, self.policy.max_backoff_s)
            if ping(self._engine):
                log.info("database answers again; receiving notifications")
                return self.policy.backoff_s
        return delay

    def run_once(self) -> BatchReport:
        """One receive (long poll) and every message in it."""
        report = BatchReport()
        messages = self._receive(report)
        report.received = len(messages)
        for index, message in enumerate(messages):
            try:
                outcome = self._handle(message)
            except _DatabaseDown:
                report.database_down = True
                for rest in messages[index:]:
                    self._hand_back(rest)
                    report.count("left")
                break
            except Exception as exc:  # recording the failure failed too: SQS redelivers it
                log.error(
                    "could not handle sqs_message_id=%s: %s", message.get("MessageId"), _safe_error(exc)
                )
                self._hand_back(message)
                outcome = "retry"
            report.count(outcome)
        if messages:
            log.info(
                "notifications batch received=%d %s",
                report.received,
                " ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items())),
                extra={"received": report.received, **report.outcomes},
            )
        return report

    # ------------------------------------------------------------------------------ receive

    def _receive(self, report: BatchReport) -> list[dict[str, Any]]:
        try:
            answer = self._client.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self.policy.batch,
                WaitTimeSeconds=self.policy.wait_s,
                VisibilityTimeout=self.policy.visibility_s,
                MessageSystemAttributeNames=[RECEIVE_COUNT],
            )
        except Exception as exc:
            report.receive_failed = True
            self._receive_failed(exc)
            return []
        self._receive_worked()
        messages: list[dict[str, Any]] = answer.get("Messages") or []
        return messages

    def _receive_failed(self, exc: Exception) -> None:
        code = aws_error_code(exc)
        log.warning("could not receive from the notifications queue: %s", code, extra={"error_code": code})
        now = self._clock.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if self._alerted or now - self._failing_since < self.policy.alert_after_s:
            return
        minutes = (now - self._failing_since) / 60
        try:
            with write_session(self._engine) as session:
                raise_alert(
                    session,
                    key=ALERT_DOWN,
                    kind=ALERT_DOWN,
                    severity=Severity.WARNING,
                    message=f"the notifications process has not been able to read the SQS queue for "
                    f"{minutes:.0f} minutes ({code}). Check BRIDGE_SQS_QUEUE_URL, the AWS credentials "
                    "and that they may sqs:ReceiveMessage, sqs:DeleteMessage and "
                    "sqs:ChangeMessageVisibility on the queue. Orders still sync by polling.",
                    now=self._clock.now(),
                )
            self._alerted = True
        except Exception as alert_exc:
            log.warning("could not record the alert: %s", type(alert_exc).__name__)

    def _receive_worked(self) -> None:
        self._failing_since = None
        if not self._alerted:
            return
        try:
            with write_session(self._engine) as session:
                clear_alert(session, ALERT_DOWN, self._clock.now())
            self._alerted = False
        except Exception as exc:
            log.warning("could not clear the alert: %s", type(exc).__name__)

    # ------------------------------------------------------------------------------ one message

    def _handle(self, message: dict[str, Any]) -> str:
        """Store, refuse or set aside one message; the outcome names what happened."""
        message_id = str(message.get("MessageId", "?"))
        body = str(message.get("Body", "")).encode("utf-8")
        receives = _receive_count(message)
        try:
            result = self._ingest(self._engine, body, self._clock)
        except Rejection as exc:
            reason = _rejection_text(exc)
            self._set_aside(message, "refused", reason)
            log.warning("notification refused sqs_message_id=%s: %s", message_id, reason)
            return "refused"
        except Exception as exc:
            if is_unavailable(exc):
                log.warning(
                    "database unavailable; notification left on the queue sqs_message_id=%s", message_id
                )
                raise _DatabaseDown from exc
            error = _safe_error(exc)
            if receives >= self.policy.max_receives:
                self._set_aside(message, "dead", f"failed {receives} times, last: {error}")
                log.error("notification set aside after %d receives sqs_message_id=%s", receives, message_id)
                return "dead"
            log.warning(
                "notification failed (receive %d of %d) sqs_message_id=%s: %s",
                receives,
                self.policy.max_receives,
                message_id,
                error,
            )
            self._hand_back(message)
            return "retry"
        self._delete(message)
        return result.outcome

    def _set_aside(self, message: dict[str, Any], outcome: str, reason: str) -> None:
        """Keep the body and raise the alert in one transaction, then delete the message."""
        message_id = str(message.get("MessageId", "?"))[:100]
        try:
            with write_session(self._engine) as session:
                delivery_id = _keep(
                    session, message_id, str(message.get("Body", "")).encode(), outcome, self._clock
                )
                where = f"kept as delivery {delivery_id}" if delivery_id else "kept earlier"
                if outcome == "refused":
                    raise_alert(
                        session,
                        key=ALERT_REFUSED,
                        kind=ALERT_REFUSED,
                        severity=Severity.WARNING,
                        message=f"an SQS message is not an Amazon notification the bridge can read "
                        f"(SQS message {message_id}, {where}): {reason}. Check that only Amazon's "
                        "FULFILLMENT_ORDER_STATUS subscription writes to the queue. Orders still sync "
                        "by polling.",
                        now=self._clock.now(),
                    )
                else:
                    raise_alert(
                        session,
                        key=ALERT_DEAD,
                        kind=ALERT_DEAD,
                        message=f"an Amazon notification could not be handled and was set aside "
                        f"(SQS message {message_id}, {where}): {reason}. Its order still syncs by "
                        "polling; the logs of the notifications process say why it failed.",
                        now=self._clock.now(),
                    )
        except Exception as exc:
            if is_unavailable(exc):
                raise _DatabaseDown from exc
            raise
        self._delete(message)

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        except Exception as exc:
            # Stored already: the redelivery will be a duplicate and is deleted then.
            log.warning(
                "could not delete sqs_message_id=%s (%s); it comes back as a duplicate",
                message.get("MessageId"),
                aws_error_code(exc),
            )

    def _hand_back(self, message: dict[str, Any]) -> None:
        """Make the message visible again after `retry_visibility_s` (instead of the full timeout)."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=self.policy.retry_visibility_s,
            )
        except Exception as exc:
            log.warning(
                "could not hand back sqs_message_id=%s (%s); it returns after the visibility timeout",
                message.get("MessageId"),
                aws_error_code(exc),
            )


def _keep(session: Any, message_id: str, body: bytes, outcome: str, clock: Clock) -> int | None:
    """Insert the message's delivery row unless this SQS message was kept before; its id or None."""
    values = dict(
        channel_id=CHANNEL,
        delivery_key=f"sqs:{message_id}",
        topic=f"amazon/sqs_{outcome}",
        received_at=clock.now(),
        body=body,
        outcome=outcome,
        order_id=None,
        event_id=None,
    )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(DeliveryRecord).values(**values).on_conflict_do_nothing().returning(col(DeliveryRecord.id))
    )
    found: int | None = session.execute(statement).scalar_one_or_none()
    return found


def _receive_count(message: dict[str, Any]) -> int:
    try:
        return int((message.get("Attributes") or {}).get(RECEIVE_COUNT, 1))
    except (TypeError, ValueError):
        return 1


def _rejection_text(exc: Rejection) -> str:
    paths = ", ".join(f"{p.get('path', '?')} {p.get('rule', '')}".strip() for p in exc.problems[:3])
    return f"{exc.code}: {exc.message}" + (f" ({paths})" if paths else "")


def _safe_error(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if code and type(exc).__module__.startswith("bridge"):
        return f"{type(exc).__name__}[{code}]"
    return type(exc).__name__


def aws_error_code(exc: BaseException) -> str:
    """botocore's error code (`AccessDenied`, `AWS.SimpleQueueService.NonExistentQueue`, ...) or the
    exception's class name: never the message, which may hold the queue URL or a request dump."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if code:
            return str(code)[:100]
    return type(exc).__name__


def sqs_client(sqs: SqsSettings) -> SqsClient:
    """boto3's SQS client. Credentials come from boto3's own chain (AWS_* variables, a profile, an
    instance role); our code never reads or passes them, so they cannot end up in our logs."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=sqs.wait_s + 10,  # a long poll holds the connection for wait_s seconds
        retries={"mode": "standard", "max_attempts": 3},
        user_agent_extra="fba-bridge",
    )
    client: SqsClient = boto3.client(
        "sqs", region_name=sqs.region or None, endpoint_url=sqs.endpoint_url or None, config=config
    )
    return client
