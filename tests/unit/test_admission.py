"""The webhook admission gate: how many run, how many wait, who is refused at once."""

from __future__ import annotations

import threading

import pytest

from bridge.settings import Settings, SettingsError
from bridge.web.admission import Admission


def test_admits_up_to_the_limit_then_refuses_when_no_queue() -> None:
    gate = Admission(limit=2, queue=0, wait_s=5.0)
    assert gate.enter() and gate.enter()
    assert not gate.enter()
    gate.leave()
    assert gate.enter()


def test_refuses_at_once_when_the_queue_is_full() -> None:
    gate = Admission(limit=1, queue=1, wait_s=30.0)
    assert gate.enter()
    waiter_in = threading.Event()
    results: list[bool] = []

    def wait_for_slot() -> None:
        waiter_in.set()
        results.append(gate.enter())

    waiter = threading.Thread(target=wait_for_slot)
    waiter.start()
    waiter_in.wait(5)
    for _ in range(1000):  # until the waiter has registered itself in the queue
        if gate.waiting == 1:
            break
        threading.Event().wait(0.001)
    assert gate.waiting == 1
    assert not gate.enter()  # the queue (1) is full: refused without waiting 30 s
    gate.leave()  # frees the slot: the waiter takes it
    waiter.join(5)
    assert results == [True]
    assert gate.active == 1 and gate.waiting == 0


def test_a_waiter_gives_up_after_the_queue_wait() -> None:
    gate = Admission(limit=1, queue=4, wait_s=0.01)
    assert gate.enter()
    assert not gate.enter()
    assert gate.waiting == 0 and gate.active == 1


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Admission(limit=0, queue=1, wait_s=1.0)


def test_admission_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "BRIDGE_WEBHOOK_CONCURRENCY": "3",
            "BRIDGE_WEBHOOK_QUEUE": "0",
            "BRIDGE_WEBHOOK_QUEUE_WAIT_S": "0.25",
            "BRIDGE_WEBHOOK_RETRY_AFTER_S": "10",
            "WEB_THREADS": "12",
        }
    )
    assert (settings.webhook_concurrency, settings.webhook_queue) == (3, 0)
    assert (settings.webhook_queue_wait_s, settings.webhook_retry_after_s, settings.web_threads) == (
        0.25,
        10,
        12,
    )
    with pytest.raises(SettingsError, match="BRIDGE_WEBHOOK_QUEUE_WAIT_S"):
        Settings.from_env({"BRIDGE_WEBHOOK_QUEUE_WAIT_S": "soon"})
