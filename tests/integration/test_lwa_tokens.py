"""LWA access tokens in the database: one refresh at a time across processes, a parked account
shared by all of them (the SP-API traffic itself is scripted with httpx.MockTransport)."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine

from bridge import alerts
from bridge.amazon.auth import LwaAuth
from bridge.amazon.errors import CredentialsRejected
from bridge.amazon.tokens import DatabaseTokenStore, credentials_alert_key
from bridge.clock import ManualClock
from bridge.store import LwaTokenRecord, read_session
from tests.unit.test_spapi_retry import make_account


class LwaCounter:
    def __init__(self) -> None:
        self.requests = 0
        self.reply: httpx.Response | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.reply is not None:
            return self.reply
        return httpx.Response(200, json={"access_token": f"Atza|db-{self.requests}", "expires_in": 3600})


class OtherProcessClock(ManualClock):
    """While this 'process' waits for the refresh lease, another one finishes its refresh."""

    def __init__(self, on_first_sleep: object) -> None:
        super().__init__()
        self.on_first_sleep = on_first_sleep
        self.slept = 0.0

    def sleep(self, seconds: float) -> None:
        if self.slept == 0.0 and callable(self.on_first_sleep):
            self.on_first_sleep()
        self.slept += seconds
        super().sleep(seconds)


def auth(engine: Engine, clock: ManualClock, lwa: LwaCounter) -> LwaAuth:
    http = httpx.Client(transport=httpx.MockTransport(lwa))
    return LwaAuth(make_account(), clock, http, store=DatabaseTokenStore(engine, clock))


def test_a_process_waiting_on_anothers_refresh_adopts_its_token(db: Engine) -> None:
    lwa = LwaCounter()
    other_clock = ManualClock()
    other_store = DatabaseTokenStore(db, other_clock)
    now = other_clock.now().timestamp()
    assert other_store.claim_refresh("acct-1", now, 30)  # the other process is fetching

    clock = OtherProcessClock(
        lambda: other_store.store_token("acct-1", "Atza|from-the-other", now + 3600, now + 3300, now)
    )
    assert auth(db, clock, lwa).access_token() == "Atza|from-the-other"
    assert lwa.requests == 0 and 0 < clock.slept < 30


def test_a_lease_left_by_a_dead_process_expires(db: Engine) -> None:
    lwa = LwaCounter()
    clock = ManualClock()
    assert DatabaseTokenStore(db, clock).claim_refresh("acct-1", clock.now().timestamp(), 30)  # then died
    assert auth(db, clock, lwa).access_token() == "Atza|db-1"
    assert lwa.requests == 1


def test_a_rejection_parks_every_process_raises_one_alert_and_recovery_clears_it(db: Engine) -> None:
    lwa = LwaCounter()
    clock = ManualClock()
    lwa.reply = httpx.Response(400, json={"error": "invalid_grant"})
    first, second = auth(db, clock, lwa), auth(db, clock, lwa)
    for process in (first, second, first):
        try:
            process.access_token()
        except CredentialsRejected as exc:
            assert exc.retry_after is not None and 0 < exc.retry_after <= 30
    assert lwa.requests == 1, "the other process saw the parked state and did not ask LWA"
    [alert] = alerts.list_alerts(db)
    assert alert.key == credentials_alert_key("acct-1") and alert.account_id == "acct-1"
    assert "invalid_grant" in alert.message and "Next automatic try" in alert.message

    lwa.reply = None  # the seller re-authorised
    clock.advance(30)
    assert second.access_token() == "Atza|db-2"
    assert first.access_token() == "Atza|db-2", "adopted from the database"
    assert lwa.requests == 2
    assert alerts.list_alerts(db) == []
    with read_session(db) as session:
        row = session.get(LwaTokenRecord, "acct-1")
    assert row is not None and row.rejected_code == "" and row.failures == 0 and row.refreshing_until is None
