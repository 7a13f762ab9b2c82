"""How long a job may wait for a rate budget before it goes back to the queue.

With many Amazon accounts a worker that claims a job whose account has no token left must not
sleep while other accounts' jobs wait. The worker runs each handler inside a `JobBudget`; the
rate limiter consults it:

- the job's first token that would make it wait longer than `max_wait` is still *reserved* (the
  bucket counts it, so later callers queue behind it), but instead of sleeping the limiter raises
  `LocalThrottle` and notes the reservation here; the worker hands the job back with its due time
  at the reservation's and the reservation recorded (`jobs.hand_back`);
- the next claim of that job brings the reservation along (`prepaid`), and the limiter spends it
  without taking another token;
- once a job has taken a token it never goes back (it may have sent something): later waits in
  the same run are slept, as outside a worker.

Outside a worker (CLI checks, tests of the client) there is no budget and nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class JobBudget:
    max_wait: float
    #: Bucket keys with a token reserved for this run by an earlier hand-back.
    prepaid: set[str] = field(default_factory=set)
    #: This run took a token: from now on it waits instead of going back to the queue.
    spent: bool = False
    #: Set by the limiter when it reserved a token and asked for the job to be handed back.
    reserved: str | None = None

    def may_hand_back(self, wait: float) -> bool:
        return not self.spent and self.reserved is None and wait > self.max_wait


_current: ContextVar[JobBudget | None] = ContextVar("bridge_job_budget", default=None)


def current() -> JobBudget | None:
    return _current.get()


@contextmanager
def job_budget(max_wait: float, prepaid: str | None = None) -> Iterator[JobBudget]:
    budget = JobBudget(max_wait, {prepaid} if prepaid else set())
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
