"""Run job plans on an executor: submit every task by its kind, collect each channel's outcome.

The executor is handed in (cli.py gives a Dask one); this module never imports the workers, so the
scheduling can be tested with a fake executor and no ffmpeg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import OnetakeError
from .models import JobPlan, SourceInfo, Task
from .plan.params import FetchParams, TaskKind


class Executor(Protocol):
    def submit(self, task: Task, deps: Sequence[Any]) -> Any:
        """Start ``task`` once ``deps`` (handles from earlier submits) are done; return a handle.

        Executors that order work may also take ``priority=`` (higher first); it is passed only when not 0."""

    def completed(self, handles: Sequence[Any]) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """Yield (handle, result, error) for each handle as it finishes."""


def encode_slots(executor: Executor) -> int:
    """How many encodes ``executor``'s cluster runs side by side: what it says (``encode_slot_count()``), else 1."""
    count = getattr(executor, "encode_slot_count", None)
    return count() if callable(count) else 1


def encode_workers(executor: Executor) -> int:
    """How many of ``executor``'s workers take encodes: what it says (``encode_worker_count()``), else 1."""
    count = getattr(executor, "encode_worker_count", None)
    return count() if callable(count) else 1


class StreamingExecutor(Executor, Protocol):
    """What a long-running watcher needs beyond a batch: a callback per finished handle, and cancellation."""

    def when_done(self, handle: Any, callback: Callable[[Any, Any, BaseException | None], None]) -> None:
        """Call ``callback(handle, result, error)`` (from any thread) once ``handle`` has finished."""

    def cancel(self, handles: Sequence[Any]) -> None:
        """Stop these tasks, running ones included."""


@dataclass
class ChannelOutcome:
    """A channel's delivery, or the exception that stopped it (its type intact: a caller decides by it)."""

    channel: str
    manifest: str | None = None
    error: BaseException | None = None
    qc_failed: list[dict[str, Any]] = field(default_factory=list)  # delivered anyway under --qc warn

    @property
    def cause(self) -> str | None:
        return describe_error(self.error) if self.error is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "manifest": self.manifest, "error": self.cause,
                "error_type": type(self.error).__name__ if self.error is not None else None,
                "qc_failed": self.qc_failed}


@dataclass
class SourceOutcome:
    source: str
    asset_id: str = ""
    channels: list[ChannelOutcome] = field(default_factory=list)
    error: BaseException | None = None  # the source could not be read or planned

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.error is None for c in self.channels)

    @property
    def manifests(self) -> list[str]:
        return [c.manifest for c in self.channels if c.manifest]

    def failure_line(self) -> str:
        if self.error is not None:
            return describe_error(self.error)
        return "; ".join(f"{c.channel}: {c.cause}" for c in self.channels if c.error is not None)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "asset_id": self.asset_id, "ok": self.ok,
                "error": describe_error(self.error) if self.error is not None else None,
                "error_type": type(self.error).__name__ if self.error is not None else None,
                "channels": [c.to_dict() for c in self.channels]}


def describe_error(error: BaseException) -> str:
    if isinstance(error, OnetakeError):
        return str(error)
    return f"internal error ({type(error).__name__}: {error}); please report it with the command you ran"


Event = Callable[[JobPlan, Task, str, Any], None]


def submit_plan(plan: JobPlan, executor: Executor, priority: int = 0) -> dict[str, Any]:
    """Submit every task of ``plan`` after its dependencies; the handles by task id."""
    handles: dict[str, Any] = {}
    for task in plan.tasks:
        deps = [handles[d] for d in task.deps]
        handles[task.id] = (executor.submit(task, deps, priority=priority) if priority  # type: ignore[call-arg]
                            else executor.submit(task, deps))
    return handles


def channel_outcome(task: Task, result: Any, error: BaseException | None) -> ChannelOutcome | None:
    """What a finished deliver task says about its channel (None for the other kinds)."""
    if task.kind != TaskKind.DELIVER:
        return None
    if error is not None:
        return ChannelOutcome(task.params["channel"], error=error)
    return ChannelOutcome(task.params["channel"], manifest=result["manifest"],
                          qc_failed=list(result.get("qc_failed") or []))


def run_plans(plans: Sequence[JobPlan], executor: Executor, on_event: Event | None = None) -> list[SourceOutcome]:
    """Submit every task of every plan, then wait; ``on_event(plan, task, 'done'|'failed', detail)``."""
    handles: dict[str, Any] = {}
    owner: dict[int, tuple[JobPlan, Task]] = {}
    for plan in plans:
        submitted = submit_plan(plan, executor)
        for task in plan.tasks:
            handles[task.id] = submitted[task.id]
            owner[id(submitted[task.id])] = (plan, task)
    outcomes = {plan.asset_id: SourceOutcome(plan.source.url or plan.source.path, plan.asset_id) for plan in plans}
    for handle, result, error in executor.completed(list(handles.values())):
        plan, task = owner[id(handle)]
        if on_event is not None:
            on_event(plan, task, "failed" if error else "done", error or result)
        outcome = channel_outcome(task, result, error)
        if outcome is not None:
            outcomes[plan.asset_id].channels.append(outcome)
    for plan in plans:
        outcomes[plan.asset_id].channels.sort(key=lambda c: plan.channels.index(c.channel))
    return [outcomes[p.asset_id] for p in plans]


def fetch_sources(urls: Sequence[str], work_dir: str, transfer: dict[str, Any],
                  executor: Executor) -> tuple[list[SourceInfo], list[SourceOutcome]]:
    """Probe sources that live in object storage on the workers (each fetched into the work dir's scratch
    there), so the client never reads them; returns their SourceInfo (``path`` the worker's copy, ``url`` the
    object) and one failure per source that could not be read."""
    handles = {url: executor.submit(Task(f"fetch/{url}", TaskKind.FETCH,
                                         FetchParams(url=url, work_dir=work_dir, transfer=transfer)), [])
               for url in dict.fromkeys(urls)}
    url_of = {id(h): url for url, h in handles.items()}
    infos: dict[str, SourceInfo] = {}
    failures: list[SourceOutcome] = []
    for handle, result, error in executor.completed(list(handles.values())):
        url = url_of[id(handle)]
        if error is not None:
            failures.append(SourceOutcome(url, error=error))
        else:
            infos[url] = SourceInfo.from_dict(result)
    return [infos[u] for u in handles if u in infos], failures
