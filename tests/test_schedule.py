"""Scheduling without ffmpeg: run_plans against a fake executor."""

from __future__ import annotations

from onetake.pipeline.errors import EncodeError
from onetake.pipeline.plan import plan_job
from onetake.pipeline.schedule import run_plans
from test_plan import OPTIONS, source


class FakeExecutor:
    """Runs nothing: records submissions, succeeds or fails tasks by id, propagates failures like Dask."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.fail = fail or {}
        self.submitted: list[tuple[str, list[str]]] = []

    def submit(self, task, deps):
        self.submitted.append((task.id, [d["id"] for d in deps]))
        error = next((d["error"] for d in deps if d["error"]), None) or self.fail.get(task.id)
        result = {"channel": task.params.get("channel"), "manifest": f"/m/{task.id}.json"} \
            if task.kind == "deliver" else [{"passed": True}]
        return {"id": task.id, "error": error, "result": None if error else result}

    def completed(self, handles):
        for h in reversed(handles):  # any completion order must do
            yield h, h["result"], h["error"]


def test_every_task_is_submitted_after_its_dependencies(catalog):
    plans = [plan_job(source(name="a.mp4", sha256="aa" * 32), None, catalog, OPTIONS),
             plan_job(source(name="b.mp4", sha256="bb" * 32), ["tv"], catalog, OPTIONS)]
    executor = FakeExecutor()
    outcomes = run_plans(plans, executor)
    seen = set()
    for task_id, deps in executor.submitted:
        assert set(deps) <= seen
        seen.add(task_id)
    assert seen == {t.id for p in plans for t in p.tasks}
    assert [o.ok for o in outcomes] == [True, True]
    assert [c.channel for c in outcomes[0].channels] == list(plans[0].channels)


def test_a_failure_is_reported_per_channel_and_the_batch_goes_on(catalog):
    a = plan_job(source(name="a.mp4", sha256="aa" * 32), ["tv", "edit"], catalog, OPTIONS)
    b = plan_job(source(name="b.mp4", sha256="bb" * 32), ["tv"], catalog, OPTIONS)
    crash = EncodeError("encode failed", ["ffmpeg"], 1, "Conversion failed!")
    events = []
    outcomes = run_plans([a, b], FakeExecutor({f"{a.asset_id}/verify/tv-hd-xdcam422": crash}),
                         on_event=lambda plan, task, state, detail: events.append((task.id, state)))
    assert not outcomes[0].ok and outcomes[1].ok
    tv, edit = outcomes[0].channels
    assert (tv.channel, tv.manifest, tv.error) == ("tv", None, crash)  # the error itself, its type intact
    assert tv.to_dict()["error_type"] == "EncodeError"
    assert tv.cause == "encode failed (exit status 1): Conversion failed!"
    assert edit.error is None and edit.manifest
    assert outcomes[0].failure_line() == "tv: encode failed (exit status 1): Conversion failed!"
    assert (f"{a.asset_id}/deliver/tv", "failed") in events


def test_a_lane_priority_reaches_every_submit_and_lane_less_executors_still_work(catalog):
    from onetake.pipeline.schedule import submit_plan

    class Prioritised(FakeExecutor):
        def submit(self, task, deps, priority=0):
            self.priorities.append(priority)
            return super().submit(task, deps)

    plan = plan_job(source(), ["tv", "edit"], catalog, OPTIONS)
    executor = Prioritised()
    executor.priorities = []
    handles = submit_plan(plan, executor, priority=100)
    assert set(handles) == {t.id for t in plan.tasks} and executor.priorities == [100] * len(plan.tasks)
    assert set(submit_plan(plan, FakeExecutor())) == set(handles)  # no priority: the two-argument submit


def test_errors_cross_a_process_boundary_whole():
    import pickle

    from onetake.pipeline.errors import QcError, SourceError

    for error in (SourceError("/in/a.mp4", "is truncated", "copy it again"), QcError("channel tv failed QC"),
                  EncodeError("encode failed", ["ffmpeg", "-i", "x"], 234, "[mxf] Invalid argument")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error) and vars(again) == vars(error)
