"""The `intake` job: apply a webhook delivery that a busy web process stored without applying.

Under load the web process only stores a verified delivery and queues this job (`intake.defer`).
The job parses the stored bytes again with the channel's adapter (outside the write
transaction) and settles the delivery exactly as the webhook itself would have, in the job's
finishing transaction: the same state machine, audit entry and next-stage jobs. A delivery that
is no longer `deferred` (settled by an earlier run of this job) is left alone.
"""

from __future__ import annotations

import logging
from functools import cache

from sqlalchemy import bindparam, select
from sqlalchemy.sql import Executable
from sqlmodel import col

from .. import alerts
from ..intake import DEFERRED, settle
from ..store import DeliveryRecord, read_session
from ..storefronts.base import Delivery, Rejection
from ..storefronts.registry import adapter_for
from ..worker import JobContext

log = logging.getLogger("bridge.pipeline.deferred_intake")


def handle_deferred_intake(ctx: JobContext) -> None:
    delivery_id = int(ctx.job.payload["delivery_id"])
    bridge = ctx.bridge
    with read_session(bridge.engine) as session:
        row = session.connection().execute(_stored_stmt(), {"delivery_id": delivery_id}).first()
    if row is None or row[3] != DEFERRED:
        return  # gone with its channel's data, or settled already
    channel_id, topic, body, _, purged_at = row
    channel = bridge.config.channel(channel_id)
    delivery: Delivery | None = None
    unusable = ""
    if channel is None:
        unusable = "its channel is no longer in the channels file"
    elif purged_at is not None:
        unusable = "its body was removed by a privacy request before it was applied"
    else:
        adapter = adapter_for(channel.platform)
        stored_headers = getattr(adapter, "stored_headers", None)
        if stored_headers is None:
            unusable = f"{channel.platform} deliveries cannot be read again from their stored bytes"
        else:
            try:
                delivery = adapter.parse(channel, stored_headers(topic), bytes(body), bridge.clock)
            except Rejection as exc:
                unusable = f"its stored bytes were refused when read again ({exc.code})"
    with ctx.finish() as session:
        still = (
            session.connection().execute(_outcome_stmt(), {"delivery_id": delivery_id}).scalar_one_or_none()
        )
        if still != DEFERRED:
            return
        if delivery is not None and channel is not None:
            outcome, order_id = settle(session, channel, delivery, delivery_id, bridge.clock)
            log.info(
                "deferred delivery applied channel=%s topic=%s outcome=%s order_id=%s",
                channel_id,
                topic,
                outcome,
                order_id,
                extra={"order_id": order_id},
            )
            return
        record = session.get(DeliveryRecord, delivery_id)
        assert record is not None
        record.outcome = "not_applied"
        session.add(record)
        alerts.raise_alert(
            session,
            key=f"intake:deferred:{channel_id}:{delivery_id}",
            kind="intake",
            message=(
                f"a {topic} delivery on channel {channel_id} (delivery {delivery_id}) was stored under "
                f"load but not applied: {unusable}. The raw delivery is kept until the retention purge; "
                f"`fba-bridge reconcile {channel_id}` reads the shop's orders again"
            ),
            now=bridge.clock.now(),
            channel_id=channel_id,
        )
        log.warning(
            "deferred delivery not applied channel=%s delivery=%s: %s", channel_id, delivery_id, unusable
        )


# Core statements built once, run on the session's connection: this job runs once per delivery
# a busy web process deferred, and the ORM's per-statement work cost more than the round trips.
@cache
def _stored_stmt() -> Executable:
    return select(
        col(DeliveryRecord.channel_id),
        col(DeliveryRecord.topic),
        col(DeliveryRecord.body),
        col(DeliveryRecord.outcome),
        col(DeliveryRecord.body_purged_at),
    ).where(col(DeliveryRecord.id) == bindparam("delivery_id"))


@cache
def _outcome_stmt() -> Executable:
    return (
        select(col(DeliveryRecord.outcome))
        .where(col(DeliveryRecord.id) == bindparam("delivery_id"))
        .with_for_update()
    )
