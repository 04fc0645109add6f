"""The Dask executor: plan tasks submitted to a cluster, progress and cancellation brought back, and the work kept
going through the faults of a farm.

Dask itself redoes a task whose worker died or froze (the scheduler gives it to another worker: see "A farm of
several machines" in the README for the bounds). What Dask leaves to its users, this executor does:

- a task whose ffmpeg stalled (``EncodeStalled``) is run again, ``stall_retries`` times, on the same worker;
- when the client loses its scheduler, Dask cancels every future; once the client has reached the scheduler again
  (a restarted one on the same address, within ``scheduler_timeout_s``), every task not yet finished is submitted
  again. Outputs are content-addressed, so a task whose output was made before the loss finds it and returns at
  once; a task that finished and was reported keeps its result, which its dependents get as a value;
- a task whose workers kept dying (Dask's ``KilledWorker``) and a scheduler that never came back end as
  ``FarmError``, one line that says what to look at.
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from distributed import WorkerPlugin

from ..pipeline.errors import EncodeStalled, FarmError, TaskCancelled
from ..pipeline.models import Task
from ..pipeline.plan.params import TaskKind
from .ffmpeg import children_cpu_s, forget_task, stop_every_task, stop_task
from .tasks import run_task

PROGRESS_TOPIC = "onetake-progress"
COST_TOPIC = "onetake-cost"
ENCODE_RESOURCE = "encode"
# a started job's finishing steps run before its lane's further encodes
FINISHING = (TaskKind.VERIFY, TaskKind.DELIVER, TaskKind.PACKAGE)
ORDER_SPAN = 10**16  # above any submission order (microseconds since 1970): a lane's room in a priority
# a task lost with its scheduler this many times is not submitted again: something else is wrong
MAX_LOSSES = 5
# Dask puts a task on the worker where it would start soonest, judged by the work it estimates is queued there: per
# key prefix (a task's kind: ``dask_key``), learned as tasks of that kind finish. A worker's free threads do not show
# that its encode slots are taken, and tasks of a kind not yet seen count 0.5 s; so the slot-holding kinds start with
# these estimates, and a run's first chunks go to different workers instead of queueing behind each other on one
# (where one still waits behind a busy slot, ``start_slot_balancer`` moves it).
FIRST_ESTIMATES_S = {TaskKind.ENCODE: 60, TaskKind.CHUNK: 60, TaskKind.ANALYZE_PART: 30, TaskKind.PHOTO: 5}
SLOT_BALANCER = "onetake-slot-balancer"
SLOT_BALANCE_S = 1.0
# how long what the scheduler said of its workers is taken as still true: a farm's workers join (and leave) while a
# watcher runs, and it asks again at most this often
WORKERS_SEEN_FOR_S = 10.0


def dask_key(task: Task, run_id: str, launch: int) -> str:
    """KIND-RUN-LAUNCH-ID: its prefix (Dask's ``key_split``, by which the scheduler learns durations) is the kind,
    the same in every job; the run id (8 hex digits) ends the prefix."""
    return f"{task.kind}-{run_id}-{launch}-{task.id}"


def dask_priority(lane: int, kind: str, order: int) -> int:
    """Dask's priority of a task (higher first): its job's lane, then a started job's finishing steps, then the order
    it was submitted in (``order``: microseconds, increasing), which is its plan's (the analysis's stretches before
    the chunks, the longest chunks first), job after job, and client after client on a shared scheduler. Dask orders
    tasks of equal priority submitted together in no useful way: a worker took them last-submitted first, so a
    programme's shortest chunk started first and its analysis, which the short's chunks wait for, last."""
    return (2 * lane + (1 if kind in FINISHING else 0)) * ORDER_SPAN - order


def task_id_of(key: str) -> str:
    """The task id in a ``dask_key``; "" for a key that is not one."""
    kind = max((k for k in TaskKind if key.startswith(f"{k}-")), key=len, default="")
    parts = key[len(kind) + 1:].split("-", 2)
    return parts[2] if kind and len(parts) == 3 else ""


def _slots_of(workers: dict[str, Any]) -> int:
    return int(sum(w.get("resources", {}).get(ENCODE_RESOURCE, 0) for w in workers.values()))


def expect_long_tasks() -> None:
    """On the scheduler: the first estimates of the slot-holding kinds (``FIRST_ESTIMATES_S``), for the kinds it
    has not seen yet."""
    import dask.config

    path = "distributed.scheduler.default-task-durations"
    known = dask.config.get(path, default={}) or {}
    dask.config.set({path: {**{str(k): f"{v}s" for k, v in FIRST_ESTIMATES_S.items()}, **known}})


def start_slot_balancer(dask_scheduler: Any) -> None:
    """On the scheduler: every ``SLOT_BALANCE_S``, hand each encode task that waits for a slot on a worker whose
    slots are all taken to a worker with a slot free, through Dask's own steal protocol (the worker gives a task
    up only while it has not started it). Dask's work stealing leaves it where it is: it takes tasks only from a
    worker with more of them than threads, and a worker of one slot runs two threads (its running chunk and the
    one queued behind it are not more). So a chunk would wait there for the length of a chunk while a worker that
    joined since, or finished its own early, had a slot free."""
    from tornado.ioloop import PeriodicCallback

    if SLOT_BALANCER in dask_scheduler.periodic_callbacks:
        return
    callback = PeriodicCallback(functools.partial(_balance_slots, dask_scheduler), SLOT_BALANCE_S * 1000)
    dask_scheduler.periodic_callbacks[SLOT_BALANCER] = callback
    callback.start()


def _balance_slots(scheduler: Any) -> None:
    from distributed.core import Status

    stealing = scheduler.extensions.get("stealing")
    if stealing is None:  # work stealing switched off: Dask moves no task, and neither does onetake
        return
    try:
        free: dict[Any, float] = {}  # the slots of each running worker that no task of its own waits for
        queued: dict[Any, list[Any]] = {}  # of each worker, the encodes that wait for a slot there, to move
        coming: dict[Any, int] = {}  # encodes being handed to each worker, not yet in its tasks
        for info in stealing.in_flight.values():
            coming[info["thief"]] = coming.get(info["thief"], 0) + 1
        for ws in scheduler.workers.values():
            slots = ws.resources.get(ENCODE_RESOURCE, 0)
            if not slots or ws.status not in (Status.running, Status.paused):
                continue
            heavy = [ts for ts in ws.processing if ENCODE_RESOURCE in (ts.resource_restrictions or {})]
            waiting = sorted((ts for ts in heavy if ts not in ws.executing and ts not in stealing.in_flight),
                             key=lambda ts: ts.priority)  # Dask's order: the most urgent first
            if ws.status == Status.running:
                free[ws] = slots - len(heavy) - coming.get(ws, 0)
                queued[ws] = waiting[:max(0, round(-free[ws]))]
            else:  # paused (short of memory): it starts nothing
                queued[ws] = waiting
        for victim, waiting in queued.items():
            for ts in waiting:
                valid = scheduler.valid_workers(ts)  # None: any worker (its other restrictions, if any, kept)
                able = [ws for ws in free if free[ws] >= 1 and ws is not victim and (valid is None or ws in valid)]
                if able:
                    thief = max(able, key=free.__getitem__)
                    stealing.move_task_request(ts, victim, thief)
                    free[thief] -= 1
    except Exception:  # noqa: BLE001 (Dask's internals of another version: place tasks as Dask alone does)
        logging.getLogger("distributed.scheduler").exception("onetake's encode slot balancer stopped")
        scheduler.periodic_callbacks.pop(SLOT_BALANCER).stop()


class StopCancelledEncodes(WorkerPlugin):
    """Dask does not stop a running task when its future is cancelled (and its resource slot stays held until
    the function returns): kill the ffmpeg it started, and tell in-process work (the analysis) to stop within a
    few packets, so the slot and the CPU come back at once. A worker that closes (told to, or because it lost its
    scheduler) stops everything it runs the same way, so that its tasks remove their partial outputs before the
    process ends; the scheduler gives their work to another worker (or the client submits it again)."""

    name = "onetake-stop-cancelled"
    idempotent = True  # registered once per scheduler: registering it again would tear down the workers' copies

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start == "executing" and finish in ("cancelled", "released", "forgotten"):
            stop_task(str(key))
        elif finish == "forgotten":
            forget_task(str(key))

    def teardown(self, worker: Any) -> None:
        stop_every_task()


def _on_worker(kind: str, task_id: str, params: dict[str, Any], dep_ids: list[str], stall_retries: int,
               *deps: Any) -> Any:
    """What a Dask worker runs: the registered function, with progress sent back as worker events, run again
    (here, at once) when its ffmpeg stalled. A retry in place keeps Dask out of it: a failed future would fail its
    dependents at once, however the retry went."""
    from distributed import get_worker

    worker = get_worker()
    last = [-1.0]

    def report(fraction: float) -> None:
        if fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            worker.log_event(PROGRESS_TOPIC, {"task": task_id, "fraction": fraction})

    by_id = dict(zip(dep_ids, deps, strict=True))
    # what the task costs in CPU (benchmarks read it from the scheduler): its thread's and its ffmpegs'; the
    # analysis (and its parts) decodes on threads of its own, so its cost is the worker process's CPU time meanwhile
    clock = time.process_time if kind in (TaskKind.ANALYZE, TaskKind.ANALYZE_PART) else time.thread_time
    cpu0 = clock() + children_cpu_s()
    for tries in itertools.count(1):
        try:
            result = run_task(kind, params, by_id, report)
            worker.log_event(COST_TOPIC, {"task": task_id, "cpu_s": clock() + children_cpu_s() - cpu0})
            return result
        except EncodeStalled as stalled:
            if tries > stall_retries:
                if tries == 1:
                    raise
                raise EncodeStalled(f"{stalled.reason}, on each of {tries} tries", stalled.argv, stalled.returncode,
                                    stalled.stderr_tail) from None
            last[0] = -1.0


class Handle:
    """A submitted task for as long as it is wanted: the Dask future it runs as now (a new one after the scheduler
    was lost and reached again), and its outcome once it has one."""

    def __init__(self, executor: DaskExecutor, task: Task, deps: list[Handle], priority: int, order: int) -> None:
        self.executor = executor
        self.task = task
        self.deps = deps
        self.priority = priority
        self.order = order  # submission order: dependencies come before their dependents
        self.future: Any = None
        self.key: str | None = None  # the Dask key of its latest launch
        self.launches = 0
        self.losses = 0
        self.lost = False
        self.cancelled = False
        self.outcome: tuple[Any, BaseException | None] | None = None
        self.listeners: list[Callable[[Handle], None]] = []

    def cancel(self) -> None:
        self.executor.cancel([self])

    def __repr__(self) -> str:
        state = "pending" if self.outcome is None else "failed" if self.outcome[1] is not None else "done"
        return f"<Handle {self.task.id} {state}>"


class DaskExecutor:
    """Submits each task to a Dask cluster; heavy tasks hold one ``encode`` slot of a worker.

    ``stall_retries``: how many more times a task whose ffmpeg stalled is run. ``reconnect_s``: how long the
    client tries to reach a lost scheduler again (the ``timeout`` it was made with)."""

    def __init__(self, client: Any, on_progress: Callable[[str, float], None] | None = None,
                 stall_retries: int = 0, reconnect_s: float = 30.0, workers_seen_for_s: float = WORKERS_SEEN_FOR_S
                 ) -> None:
        self.client = client
        self.address = client.scheduler.address
        self.run_id = uuid.uuid4().hex[:8]
        self.on_progress = on_progress
        self.stall_retries = stall_retries
        self.reconnect_s = reconnect_s
        self.workers_seen_for_s = workers_seen_for_s
        self.encode_workers = 0   # workers with encode slots, when last seen
        self.encode_slots = False  # whether heavy tasks hold a slot: from the first time a worker with slots is seen
        self._slot_count = 0
        self._seen_at = time.monotonic()  # the look just below
        self._scheduler_id = ""
        self._look_at_workers(self._identity())
        self._lock = threading.RLock()
        self._pending: dict[int, Handle] = {}  # submitted, no outcome yet; by submission order
        self._last_order = 0
        self._recovering = False
        self._closing = False
        self._prepare_scheduler()

    def encode_slot_count(self) -> int:
        """The ``encode`` slots of the cluster's workers now, busy or not (at least 1)."""
        self._refresh(now=True)
        return max(1, self._slot_count)

    def encode_worker_count(self) -> int:
        """The workers with ``encode`` slots, as seen at most ``workers_seen_for_s`` ago (at least 1)."""
        self._refresh()
        return max(1, self.encode_workers)

    def _refresh(self, now: bool = False) -> None:
        """Ask the scheduler about its workers again, unless it was asked less than ``workers_seen_for_s`` ago (or
        the client is not connected: a watcher does not wait for a lost scheduler here)."""
        if not now and time.monotonic() - self._seen_at < self.workers_seen_for_s or self.client.status != "running":
            return
        self._seen_at = time.monotonic()
        try:
            identity = self._identity()
        except (OSError, TimeoutError):  # the scheduler is away: the run notices where it matters
            return
        if self._scheduler_id and identity.get("id") != self._scheduler_id:  # restarted while no task was lost
            try:
                self._prepare_scheduler()
            except (OSError, TimeoutError):
                return
        self._look_at_workers(identity)

    def _look_at_workers(self, identity: dict[str, Any]) -> None:
        self._scheduler_id = identity.get("id", "")
        workers = identity.get("workers", {})
        self.encode_workers = sum(ENCODE_RESOURCE in w.get("resources", {}) for w in workers.values())
        self._slot_count = _slots_of(workers)
        # once the farm has shown workers with slots, heavy tasks wait for a slot, also while those workers restart;
        # until then there is nothing to wait for (a cluster whose workers have none runs them on any thread)
        self.encode_slots = self.encode_slots or self.encode_workers > 0

    def _identity(self) -> dict[str, Any]:
        """The scheduler's id and its view of every worker, asked now (``scheduler_info`` may answer from a cache
        that a periodic refresh fills without the workers)."""
        return self.client.sync(self.client.scheduler.identity, n_workers=-1)

    def _prepare_scheduler(self) -> None:
        """What the scheduler must know of this client: the plugin its workers load, the progress it forwards."""
        self.client.register_plugin(StopCancelledEncodes())
        try:
            self.client.run_on_scheduler(expect_long_tasks)
            self.client.run_on_scheduler(start_slot_balancer)
        except OSError:
            raise
        except Exception:  # noqa: BLE001 (a scheduler without onetake places tasks as Dask alone does)
            pass
        if self.on_progress is not None:
            report = self.on_progress
            self.client.subscribe_topic(PROGRESS_TOPIC, lambda event: report(event[1]["task"], event[1]["fraction"]))

    # ------------------------------------------------------------------------------------------------ the protocol

    def submit(self, task: Task, deps: Sequence[Handle], priority: int = 0) -> Handle:
        """``priority`` is the job's lane (higher first); inside it, finishing a started job comes first."""
        if task.heavy and not self.encode_slots:  # have workers with slots joined since?
            self._refresh()
        with self._lock:
            self._last_order = max(self._last_order + 1, time.time_ns() // 1000)
            handle = Handle(self, task, list(deps), priority, self._last_order)
            self._pending[handle.order] = handle
            settle = self._launch(handle)
        if settle is not None:
            self._settle(handle, None, settle)
        return handle

    def when_done(self, handle: Handle, callback: Callable[[Any, Any, BaseException | None], None]) -> None:
        self._listen(handle, lambda done: callback(done, *done.outcome))  # type: ignore[misc]

    def completed(self, handles: Sequence[Handle]) -> Iterator[tuple[Any, Any, BaseException | None]]:
        finished: queue.SimpleQueue[Handle] = queue.SimpleQueue()
        for handle in handles:
            self._listen(handle, finished.put)
        for _ in range(len(handles)):
            done = finished.get()
            yield done, *done.outcome  # type: ignore[misc]

    def cancel(self, handles: Sequence[Handle]) -> None:
        with self._lock:
            wanted = [h for h in handles if h.outcome is None]
            for h in wanted:
                h.cancelled = True
            futures = [h.future for h in wanted if h.future is not None]
        for h in wanted:
            self._settle(h, None, TaskCancelled(f"{h.task.id}: cancelled"))
        if futures and self.client.status == "running":
            try:
                self.client.cancel(futures)  # the workers' plugin kills what they run
            except (OSError, TimeoutError):
                pass  # the scheduler is gone: so are its tasks

    def close(self) -> None:
        """The batch is over: what Dask cancels from now on is not lost work."""
        self._closing = True

    # ------------------------------------------------------------------------------------------------ launching

    def _launch(self, handle: Handle) -> BaseException | None:
        """Submit ``handle`` on the scheduler the client has now (lock held); the error to settle it with instead,
        when a dependency failed."""
        handle.lost = False
        failed = next((d.outcome[1] for d in handle.deps if d.outcome is not None and d.outcome[1] is not None),
                      None)
        if failed is not None:
            return failed
        task = handle.task
        handle.launches += 1
        args = [d.future if d.outcome is None else d.outcome[0] for d in handle.deps]
        handle.key = dask_key(task, self.run_id, handle.launches)
        resources = {ENCODE_RESOURCE: 1} if task.heavy and self.encode_slots else None
        handle.future = self.client.submit(_on_worker, task.kind, task.id, task.params, list(task.deps),
                                           self.stall_retries, *args,
                                           key=handle.key, pure=False, resources=resources,
                                           priority=dask_priority(handle.priority, task.kind, handle.order))
        handle.future.add_done_callback(functools.partial(self._finished, handle))
        return None

    def _finished(self, handle: Handle, future: Any) -> None:
        """A future of ``handle`` is done (on Dask's callback thread): settle it, try it again, or count it lost."""
        from distributed.client import FutureCancelledError

        if handle.future is not future or handle.outcome is not None:
            return  # an earlier launch's
        if future.status == "error":
            self._failed(handle, future, future.exception())
            return
        if future.cancelled():
            if handle.cancelled or self._closing:
                self._settle(handle, None, TaskCancelled(f"{handle.task.id}: cancelled"))
            else:  # Dask cancels every future when its client loses the scheduler
                self._lose(handle, future)
            return
        try:
            result = future.result()
        except (OSError, TimeoutError, FutureCancelledError):  # the scheduler went while the result came back
            if handle.cancelled or self._closing:
                self._settle(handle, None, TaskCancelled(f"{handle.task.id}: cancelled"))
            else:
                self._lose(handle, future)
            return
        self._settle(handle, result, None)

    def _failed(self, handle: Handle, future: Any, error: BaseException) -> None:
        from distributed.scheduler import KilledWorker

        if isinstance(error, KilledWorker):
            error = FarmError(f"the {handle.task.kind} step of {handle.task.id} was running on a worker that died, "
                              f"each of the times it ran (distributed.scheduler.allowed-failures); look in the "
                              f"workers' logs (or the kernel's: the OOM killer) for what ended them")
        self._settle(handle, None, error)

    # ------------------------------------------------------------------------------------------------ a lost scheduler

    def _lose(self, handle: Handle, future: Any) -> None:
        with self._lock:
            if handle.future is not future or handle.outcome is not None:
                return
            handle.lost = True
            if self._recovering:
                return
            self._recovering = True
        threading.Thread(target=self._recover, name="onetake-resubmit", daemon=True).start()

    def _recover(self) -> None:
        """Wait for the client to reach its scheduler again, then submit every unfinished task anew; or, when it
        cannot, fail them all with one line."""
        deadline = time.monotonic() + self.reconnect_s + 5
        try:
            while not self._closing:
                if not self._wait_for_scheduler():
                    break
                try:
                    self._prepare_scheduler()
                except OSError:  # reached and lost again, or not answering yet
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                    continue
                with self._lock:
                    failed, again = self._relaunch()
                    self._recovering = again
                for handle, error in failed:
                    self._settle(handle, None, error)
                if not again:
                    return
                deadline = time.monotonic() + self.reconnect_s + 5
        except Exception as exc:  # the tasks must not wait for ever on a recovery that broke
            self._give_up(f"{type(exc).__name__}: {exc}")
            return
        if not self._closing:
            self._give_up()

    def _wait_for_scheduler(self) -> bool:
        """Whether the client is connected again before its own attempts (``reconnect_s``) have surely ended."""
        deadline = time.monotonic() + self.reconnect_s + 5
        while time.monotonic() < deadline and not self._closing:
            if self.client.status == "running":
                return True
            if self.client.status in ("closing", "closed"):
                return False
            time.sleep(0.1)
        return False

    def _relaunch(self) -> tuple[list[tuple[Handle, BaseException]], bool]:
        """Submit again every pending task whose future went with the scheduler, and what depends on one (lock
        held); the tasks to fail instead, and whether a loss came meanwhile and another round is needed."""
        redo: set[int] = set()
        settle: list[tuple[Handle, BaseException]] = []
        for handle in [self._pending[k] for k in sorted(self._pending)]:
            gone = handle.lost or handle.future is None or handle.future.status in ("cancelled", "lost")
            if not (gone or any(d.order in redo for d in handle.deps)):
                continue
            redo.add(handle.order)
            handle.losses += 1
            if handle.losses > MAX_LOSSES:
                handle.lost = False
                settle.append((handle, FarmError(f"the {handle.task.kind} step of {handle.task.id} was lost with "
                                                 f"the Dask scheduler {handle.losses} times; look in the scheduler's "
                                                 f"log for why it keeps going away")))
                continue
            failed = self._launch(handle)
            if failed is not None:
                settle.append((handle, failed))
        return settle, any(h.lost for h in self._pending.values())

    def _give_up(self, why: str = "") -> None:
        if why:
            error = FarmError(f"lost the Dask scheduler at {self.address}, and submitting the unfinished tasks again "
                              f"failed ({why}); renditions already made are kept, and running the same command again "
                              f"reuses them")
        else:
            error = FarmError(f"lost the Dask scheduler at {self.address} and could not reach it again within "
                              f"{self.reconnect_s:g} s (scheduler_timeout_s); renditions already made are kept, and "
                              f"running the same command again reuses them")
        with self._lock:
            pending = [h for h in self._pending.values() if h.outcome is None]
            self._recovering = False
        for handle in pending:
            self._settle(handle, None, error)

    # ------------------------------------------------------------------------------------------------ outcomes

    def _settle(self, handle: Handle, result: Any, error: BaseException | None) -> None:
        with self._lock:
            if handle.outcome is not None:
                return
            handle.outcome = (result, error)
            handle.future = None  # its key is released on the scheduler
            self._pending.pop(handle.order, None)
            listeners, handle.listeners = handle.listeners, []
        for listener in listeners:
            listener(handle)

    def _listen(self, handle: Handle, listener: Callable[[Handle], None]) -> None:
        with self._lock:
            if handle.outcome is None:
                handle.listeners.append(listener)
                return
        listener(handle)
