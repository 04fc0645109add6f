"""The watcher's admission policy and drain bound, on jobs and a clock the test makes (no files, no cluster)."""

from __future__ import annotations

from dataclasses import dataclass

from onetake.pipeline.admission import Admission, Drain


@dataclass
class Job:
    job_id: int
    lane: str


def ids(jobs):
    return [j.job_id for j in jobs]


def test_lanes_first_then_arrival_up_to_the_limit():
    waiting = [Job(5, "bulk"), Job(3, "normal"), Job(4, "normal"), Job(2, "bulk")]
    assert ids(Admission(max_active=2).start_now(waiting, running=[])) == [3, 4]
    assert ids(Admission(max_active=2).start_now(waiting, running=[Job(1, "normal")])) == [3]
    assert ids(Admission(max_active=9).start_now(waiting, running=[])) == [3, 4, 2, 5]


def test_urgent_starts_whatever_runs_and_holds_back_the_rest():
    full = [Job(1, "normal"), Job(2, "bulk")]
    assert ids(Admission(max_active=2).start_now([Job(7, "urgent"), Job(3, "normal")], running=full)) == [7]
    # while urgent work runs, no normal or bulk job starts, even with room for it
    assert ids(Admission(max_active=5).start_now([Job(4, "normal")], running=[Job(9, "urgent")])) == []
    assert ids(Admission(max_active=5).start_now([Job(4, "normal"), Job(8, "urgent")], running=[])) == [8]


def test_a_drain_is_overdue_only_after_its_bound():
    now = [100.0]
    drain = Drain(30.0, lambda: now[0])
    assert not drain.started and not drain.overdue()
    drain.start()
    now[0] = 129.0
    assert drain.started and not drain.overdue()
    drain.start()  # a second signal does not restart the bound
    now[0] = 130.5
    assert drain.overdue()
