"""The Dask executor: plan tasks submitted to a cluster, progress and cancellation brought back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from distributed import WorkerPlugin

from ..pipeline.errors import TaskCancelled
from ..pipeline.models import Task
from ..pipeline.plan.params import TaskKind
from .ffmpeg import forget_task, stop_task
from .tasks import run_task

PROGRESS_TOPIC = "onetake-progress"
ENCODE_RESOURCE = "encode"
# a started job's finishing steps run before its lane's further encodes
FINISHING = (TaskKind.VERIFY, TaskKind.DELIVER, TaskKind.PACKAGE)


class StopCancelledEncodes(WorkerPlugin):
    """Dask does not stop a running task when its future is cancelled (and its resource slot stays held until
    the function returns): kill the ffmpeg it started, and tell in-process work (the analysis) to stop within a
    few packets, so the slot and the CPU come back at once."""

    name = "onetake-stop-cancelled"

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start == "executing" and finish in ("cancelled", "released", "forgotten"):
            stop_task(str(key))
        elif finish == "forgotten":
            forget_task(str(key))


def _on_worker(kind: str, task_id: str, params: dict[str, Any], dep_ids: list[str], *deps: Any) -> Any:
    """What a Dask worker runs: the registered function, with progress sent back as worker events."""
    from distributed import get_worker

    worker = get_worker()
    last = [-1.0]

    def report(fraction: float) -> None:
        if fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            worker.log_event(PROGRESS_TOPIC, {"task": task_id, "fraction": fraction})

    return run_task(kind, params, dict(zip(dep_ids, deps, strict=True)), report)


class DaskExecutor:
    """Submits each task to a Dask cluster; heavy tasks hold one ``encode`` slot of a worker."""

    def __init__(self, client: Any, on_progress: Callable[[str, float], None] | None = None) -> None:
        self.client = client
        self.run_id = uuid.uuid4().hex[:8]
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        self.encode_workers = sum(ENCODE_RESOURCE in w.get("resources", {}) for w in workers.values())
        self.encode_slots = self.encode_workers > 0
        client.register_plugin(StopCancelledEncodes())
        if on_progress is not None:
            client.subscribe_topic(PROGRESS_TOPIC, lambda event: on_progress(event[1]["task"], event[1]["fraction"]))

    def submit(self, task: Task, deps: Sequence[Any], priority: int = 0) -> Any:
        """``priority`` is the job's lane (higher first); inside it, finishing a started job comes first."""
        resources = {ENCODE_RESOURCE: 1} if task.heavy and self.encode_slots else None
        return self.client.submit(_on_worker, task.kind, task.id, task.params, list(task.deps), *deps,
                                  key=f"{task.kind}-{task.id}-{self.run_id}", pure=False, resources=resources,
                                  priority=priority + (1 if task.kind in FINISHING else 0))

    def when_done(self, handle: Any, callback: Callable[[Any, Any, BaseException | None], None]) -> None:
        handle.add_done_callback(lambda future: callback(future, *self._outcome(future)))

    def cancel(self, handles: Sequence[Any]) -> None:
        self.client.cancel(list(handles))

    @staticmethod
    def _outcome(future: Any) -> tuple[Any, BaseException | None]:
        if future.status == "error":
            return None, future.exception()
        if future.status == "cancelled":
            return None, TaskCancelled(f"{future.key}: cancelled")
        return future.result(), None

    def completed(self, handles: Sequence[Any]) -> Iterator[tuple[Any, Any, BaseException | None]]:
        from distributed import as_completed

        for future in as_completed(list(handles), loop=self.client.loop):
            yield future, *self._outcome(future)
