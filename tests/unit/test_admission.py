"""The webhook admission gate: how many run, how many wait, who is refused at once."""

from __future__ import annotations

import threading

import pytest

from bridge.settings import Settings, SettingsError
from bridge.web.admission import Admission


class Ticks:
    """A hand-driven clock for the gate's congestion window."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_admits_up_to_the_limit_and_refuses_at_once_without_waiting() -> None:
    gate = Admission(limit=2, queue=4, wait_s=0.0)
    assert gate.enter() and gate.enter()
    assert not gate.enter()
    gate.leave()
    assert gate.enter()


def test_a_waiter_gets_the_slot_that_frees() -> None:
    gate = Admission(limit=1, queue=1, wait_s=30.0)
    assert gate.enter()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(gate.enter()))
    waiter.start()
    while gate.waiting == 0 and waiter.is_alive():
        threading.Event().wait(0.001)  # until the waiter is in the queue
    gate.leave()  # frees the slot: the waiter takes it
    waiter.join(5)
    assert results == [True]
    assert gate.active == 1 and gate.waiting == 0


def test_a_wait_that_runs_out_is_refused_and_makes_the_gate_congested() -> None:
    ticks = Ticks()
    gate = Admission(limit=1, queue=0, wait_s=0.01, now=ticks)
    assert gate.enter()
    assert not gate.congested
    assert not gate.enter()  # waited 10 ms for the slot, in vain
    assert gate.congested and gate.waiting == 0 and gate.active == 1


def test_when_congested_a_full_queue_refuses_at_once() -> None:
    ticks = Ticks()
    gate = Admission(limit=1, queue=0, wait_s=0.01, now=ticks)
    assert gate.enter()
    assert not gate.enter()  # a wait ran out: congested for the next 10 ms of the gate's clock
    ticks.t += 0.005
    results: list[bool] = []

    def refused_without_waiting() -> None:
        results.append(gate.enter())

    probe = threading.Thread(target=refused_without_waiting)
    probe.start()
    probe.join(5)
    assert results == [False] and gate.waiting == 0


def test_congestion_ends_after_the_wait_bound_passes_without_another_refusal() -> None:
    ticks = Ticks()
    gate = Admission(limit=1, queue=0, wait_s=0.01, now=ticks)
    assert gate.enter()
    assert not gate.enter()
    assert gate.congested
    ticks.t += 0.02
    assert not gate.congested


def test_a_momentary_pile_up_waits_beyond_the_queue_when_not_congested() -> None:
    gate = Admission(limit=1, queue=0, wait_s=30.0)
    assert gate.enter()
    results: list[bool] = []
    waiters = [threading.Thread(target=lambda: results.append(gate.enter())) for _ in range(3)]
    for w in waiters:
        w.start()
    while gate.waiting < 3:
        threading.Event().wait(0.001)
    for _ in range(3):  # each slot handed on in turn
        gate.leave()
        while gate.active == 0:
            threading.Event().wait(0.001)
    for w in waiters:
        w.join(5)
    assert results == [True, True, True]


def test_the_arrival_rate_counts_about_the_last_second() -> None:
    ticks = Ticks()
    gate = Admission(limit=100, queue=0, wait_s=0.5, now=ticks)
    assert gate.arrival_rate() == 0.0
    for _ in range(40):
        assert gate.enter()
        gate.leave()
    assert gate.arrival_rate() == 40.0
    ticks.t = 1001.25  # a quarter into the next second: three quarters of the last one still count
    assert gate.arrival_rate() == 30.0
    for _ in range(10):
        assert gate.enter()
        gate.leave()
    assert gate.arrival_rate() == 40.0
    ticks.t = 1002.5  # only half of second 1001's 10 remain in the window
    assert gate.arrival_rate() == 5.0
    ticks.t = 1003.0
    assert gate.arrival_rate() == 0.0
    assert gate.enter()
    assert gate.arrival_rate() == 1.0  # the 10 of 1001 are two seconds old: forgotten
    refused = Admission(limit=1, queue=0, wait_s=0.0, now=ticks)
    assert refused.enter() and not refused.enter()
    assert refused.arrival_rate() == 2.0  # a refused arrival is load too


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
    assert Settings.from_env({}).webhook_defer_rate == 50.0
    assert Settings.from_env({"BRIDGE_WEBHOOK_DEFER_RATE": "0"}).webhook_defer_rate == 0.0
    assert Settings.from_env({"BRIDGE_WEBHOOK_DEFER_RATE": "120.5"}).webhook_defer_rate == 120.5
    with pytest.raises(SettingsError, match="BRIDGE_WEBHOOK_DEFER_RATE"):
        Settings.from_env({"BRIDGE_WEBHOOK_DEFER_RATE": "-1"})


def test_time_already_spent_waiting_counts_against_the_bound() -> None:
    ticks = Ticks()
    gate = Admission(limit=4, queue=8, wait_s=0.5, now=ticks)
    assert not gate.enter(waited_s=0.6)  # refused even with free slots
    assert gate.congested and gate.active == 0
    assert gate.enter(waited_s=0.2)


def test_the_serve_command_runs_the_queue_timed_worker() -> None:
    from gunicorn.workers.gthread import ThreadWorker

    from bridge.web.server import WORKER_CLASS, QueueTimedWorker, gunicorn_options

    options = gunicorn_options("127.0.0.1", 5000, 2, 16)
    assert options["worker_class"] == WORKER_CLASS == "bridge.web.server.QueueTimedWorker"
    assert options["threads"] == 16
    assert issubclass(QueueTimedWorker, ThreadWorker)


def test_the_web_worker_freezes_what_loading_the_app_left_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from gunicorn.workers.gthread import ThreadWorker

    from bridge.web.server import QueueTimedWorker

    loaded: list[int] = []
    monkeypatch.setattr(ThreadWorker, "load_wsgi", lambda self: loaded.append(gc.get_freeze_count()))
    gc.unfreeze()
    worker = QueueTimedWorker.__new__(QueueTimedWorker)  # no arbiter or sockets: only the hook runs
    try:
        worker.load_wsgi()
        assert loaded == [0]  # gunicorn's own loading ran first, with nothing frozen yet
        assert gc.get_freeze_count() > 1000  # then every object alive was moved out of collections
    finally:
        gc.unfreeze()
