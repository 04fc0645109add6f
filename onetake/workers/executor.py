"""Executors that run plan tasks: on a Dask cluster, or inline in this process."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..pipeline.models import Task
from .tasks import run_task

PROGRESS_TOPIC = "onetake-progress"
ENCODE_RESOURCE = "encode"


def _on_worker(kind: str, task_id: str, params: dict[str, Any], *deps: Any) -> Any:
    """What a Dask worker runs: the registered function, with progress sent back as worker events."""
    from distributed import get_worker

    worker = get_worker()
    last = [-1.0]

    def report(fraction: float) -> None:
        if fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            worker.log_event(PROGRESS_TOPIC, {"task": task_id, "fraction": fraction})

    return run_task(kind, params, list(deps), report)


class DaskExecutor:
    """Submits each task to a Dask cluster; heavy tasks hold one ``encode`` slot of a worker."""

    def __init__(self, client: Any, on_progress: Callable[[str, float], None] | None = None) -> None:
        self.client = client
        self.run_id = uuid.uuid4().hex[:8]
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        self.encode_slots = any(ENCODE_RESOURCE in w.get("resources", {}) for w in workers.values())
        if on_progress is not None:
            client.subscribe_topic(PROGRESS_TOPIC, lambda event: on_progress(event[1]["task"], event[1]["fraction"]))

    def submit(self, task: Task, deps: Sequence[Any]) -> Any:
        resources = {ENCODE_RESOURCE: 1} if task.heavy and self.encode_slots else None
        return self.client.submit(_on_worker, task.kind, task.id, task.params, *deps,
                                  key=f"{task.kind}-{task.id}-{self.run_id}", pure=False, resources=resources,
                                  priority=1 if task.kind in ("verify", "deliver", "package") else 0)

    def completed(self, handles: Sequence[Any]) -> Iterator[tuple[Any, Any, BaseException | None]]:
        from distributed import as_completed

        for future in as_completed(list(handles)):
            if future.status == "error":
                yield future, None, future.exception()
            elif future.status == "cancelled":
                yield future, None, RuntimeError("cancelled")
            else:
                yield future, future.result(), None


class InlineExecutor:
    """Runs every task at once in this process, in submit order (for tests and debugging)."""

    def __init__(self, on_progress: Callable[[str, float], None] | None = None) -> None:
        self.on_progress = on_progress

    def submit(self, task: Task, deps: Sequence[Any]) -> Any:
        failed = next((d for d in deps if d[2] is not None), None)
        if failed is not None:
            return (task, None, failed[2])
        report = (lambda f: self.on_progress(task.id, f)) if self.on_progress else None
        try:
            return (task, run_task(task.kind, task.params, [d[1] for d in deps], report), None)
        except Exception as exc:  # carried to dependants, as Dask does
            return (task, None, exc)

    def completed(self, handles: Sequence[Any]) -> Iterator[tuple[Any, Any, BaseException | None]]:
        for handle in handles:
            yield handle, handle[1], handle[2]
