"""Which waiting watch jobs start now: priorities plus admission control, no pre-emption.

- urgent jobs start as soon as they are claimed, whatever runs;
- normal and bulk jobs start in lane order, then arrival order, at most ``max_active`` of them on the cluster at
  once, and none while an urgent job runs (those already running go on);
- a drain lets running jobs finish for at most its bound, then stops them.

Pure: the watcher hands in its jobs and its clock, and tests hand in theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .config import LANES

URGENT = "urgent"
LANE_ORDER = {lane: n for n, lane in enumerate(LANES)}


class Job(Protocol):
    job_id: int   # the ledger's id: it grows with arrival
    lane: str


J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class Admission:
    max_active: int  # normal and bulk jobs on the cluster at once

    def start_now(self, waiting: Iterable[J], running: Sequence[Job]) -> list[J]:
        """The waiting jobs to start now, in the order to start them."""
        active = sum(1 for job in running if job.lane != URGENT)
        urgent_running = any(job.lane == URGENT for job in running)
        chosen = []
        for job in sorted(waiting, key=lambda j: (LANE_ORDER[j.lane], j.job_id)):
            if job.lane == URGENT:
                chosen.append(job)
                urgent_running = True
            elif active < self.max_active and not urgent_running:
                chosen.append(job)
                active += 1
        return chosen


class Drain:
    """A drain's bound: started by the first signal, over once ``timeout_s`` has passed on ``clock``."""

    def __init__(self, timeout_s: float, clock: Callable[[], float]) -> None:
        self.timeout_s = timeout_s
        self.clock = clock
        self.since: float | None = None

    @property
    def started(self) -> bool:
        return self.since is not None

    def start(self) -> None:
        if self.since is None:
            self.since = self.clock()

    def overdue(self) -> bool:
        return self.since is not None and self.clock() - self.since > self.timeout_s
