"""Run job plans on an executor: submit every task by its kind, collect each channel's outcome.

The executor is handed in (cli.py gives a Dask one); this module never imports the workers, so the
scheduling can be tested with a fake executor and no ffmpeg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import OnetakeError
from .models import JobPlan, Task


class Executor(Protocol):
    def submit(self, task: Task, deps: Sequence[Any]) -> Any:
        """Start ``task`` once ``deps`` (handles from earlier submits) are done; return a handle."""

    def completed(self, handles: Sequence[Any]) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """Yield (handle, result, error) for each handle as it finishes."""


@dataclass
class ChannelOutcome:
    channel: str
    manifest: str | None = None
    error: str | None = None
    qc_failed: list[dict[str, Any]] = field(default_factory=list)  # delivered anyway under --qc warn


@dataclass
class SourceOutcome:
    source: str
    asset_id: str = ""
    channels: list[ChannelOutcome] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.error is None for c in self.channels)

    def failure_line(self) -> str:
        if self.error:
            return self.error
        failed = [c for c in self.channels if c.error]
        return "; ".join(f"{c.channel}: {c.error}" for c in failed)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "asset_id": self.asset_id, "ok": self.ok, "error": self.error,
                "channels": [c.__dict__ for c in self.channels]}


def describe_error(error: BaseException) -> str:
    if isinstance(error, OnetakeError):
        return str(error)
    return f"internal error ({type(error).__name__}: {error}); please report it with the command you ran"


Event = Callable[[JobPlan, Task, str, Any], None]


def run_plans(plans: Sequence[JobPlan], executor: Executor, on_event: Event | None = None) -> list[SourceOutcome]:
    """Submit every task of every plan, then wait; ``on_event(plan, task, 'done'|'failed', detail)``."""
    handles: dict[str, Any] = {}
    owner: dict[int, tuple[JobPlan, Task]] = {}
    for plan in plans:
        for task in plan.tasks:
            handle = executor.submit(task, [handles[d] for d in task.deps])
            handles[task.id] = handle
            owner[id(handle)] = (plan, task)
    outcomes = {plan.asset_id: SourceOutcome(plan.source.path, plan.asset_id) for plan in plans}
    for handle, result, error in executor.completed(list(handles.values())):
        plan, task = owner[id(handle)]
        if on_event is not None:
            on_event(plan, task, "failed" if error else "done", error or result)
        if task.kind == "deliver":
            channel = task.params["channel"]
            outcome = ChannelOutcome(channel)
            if error is not None:
                outcome.error = describe_error(error)
            else:
                outcome.manifest = result["manifest"]
                outcome.qc_failed = list(result.get("qc_failed") or [])
            outcomes[plan.asset_id].channels.append(outcome)
    for plan in plans:
        outcomes[plan.asset_id].channels.sort(key=lambda c: plan.channels.index(c.channel))
    return [outcomes[p.asset_id] for p in plans]
