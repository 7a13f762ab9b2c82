"""SQLite writers of different processes take turns on a lock file, handed over at once."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from bridge.store import make_engine, one_writer_at_a_time

HOLD_S = 0.4


def _hold_turn(url: str, holding: Event, done: Event) -> None:
    engine = make_engine(url)
    with one_writer_at_a_time(engine):
        holding.set()
        time.sleep(HOLD_S)
        done.set()  # still inside: set after the turn is released, a fast parent could beat it


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (gunicorn's model)"
)
def test_a_forked_process_waits_for_the_turn_and_gets_it_as_soon_as_it_is_free(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    engine = make_engine(url)
    with one_writer_at_a_time(engine):  # the parent opened its lock file before forking
        pass
    context = multiprocessing.get_context("fork")
    holding, done = context.Event(), context.Event()
    child = context.Process(target=_hold_turn, args=(url, holding, done))
    child.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with one_writer_at_a_time(engine):
            waited = time.monotonic() - started
            assert done.is_set(), "the parent got the turn while the child still held it"
        assert waited >= HOLD_S / 2
    finally:
        child.join(10)
    assert (tmp_path / "bridge.sqlite3.writer-lock").exists()


def test_the_same_process_threads_share_one_turn_and_memory_databases_need_no_file(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    assert one_writer_at_a_time(engine) is one_writer_at_a_time(engine)
    memory = make_engine("sqlite://")
    with one_writer_at_a_time(memory):
        pass
    assert not list(tmp_path.glob("*.writer-lock"))
