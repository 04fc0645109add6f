"""Watch folders: take each dropped file once, when it has finished arriving (``inbox``: the ingest contract),
and run it in its lane (``admission``: which waiting job starts when).

Probing, planning and the ledger happen here; the work runs on the farm ``serve`` is handed.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .admission import LANE_ORDER, URGENT, Admission, Drain
from .config import LANE_PRIORITY, FarmConfig, InboxConfig, WatchConfig
from .destinations import absolute_location
from .errors import ConfigError, IngestError, OnetakeError, QcError, SourceError
from .inbox import Inbox, Settling, Sidecar, companions, lock_file, read_sidecar, sidecar_of
from .ledger import Ledger, process_owner
from .models import JobPlan, Task
from .plan import PlanOptions, TaskKind, plan_job
from .plan.urgent import full_version_options, plan_first_version
from .probe import probe
from .profiles import Catalog
from .run import Farm, check_channels, first_version_kept, plan_options, representative_plans
from .schedule import (
    ChannelOutcome,
    SourceOutcome,
    StreamingExecutor,
    channel_outcome,
    describe_error,
    encode_slots,
    encode_workers,
    submit_plan,
)

# job metadata the desk's "deliver anyway" sets, {"mode": "warn", "by": ..., "reason": ...}: the job's next attempt
# is planned under qc = "warn"
QC_OVERRIDE = "qc_override"
TAKE_PER_PASS = 16  # files claimed per pass over the inboxes, so that a burst does not hold up admitting urgent work


# --------------------------------------------------------------------------------------------------------- jobs


@dataclass
class Held:
    """A job this watcher holds the file of: waiting for a slot, or running."""

    job_id: int
    path: Path
    inbox: Inbox
    lock: int
    lane: str
    channels: tuple[str, ...]
    metadata: dict[str, Any]
    plan: JobPlan | None = None
    handles: dict[str, Any] = field(default_factory=dict)
    outcomes: list[ChannelOutcome] = field(default_factory=list)
    full: JobPlan | None = None  # an urgent job's full-quality plan, run once its first version (``plan``) is out
    first: list[ChannelOutcome] = field(default_factory=list)  # how its first version went


def error_text(job_id: int, name: str, lane: str, cause: str, ledger: Path, qc_only: bool = False) -> str:
    """The text of ``NAME.error.txt``; ``qc_only``: every channel failed its QC rules, and nothing else."""
    if qc_only:
        # a retry under the same rules fails the same way: the material itself has to be looked at
        what = (f"look at the material: it breaks the channel's QC rules (the record named above has the "
                f"findings). To deliver it as it is, run `onetake run failed/{name} --qc warn` with this "
                f"watcher's config, or drop a corrected file into the inbox again")
        return (f"onetake did not deliver {name} (job {job_id}, lane {lane}) at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.\n\nCause: {cause}\n\nWhat to do: {what}.\n")
    if "; " in cause and not cause.startswith("channel"):
        what = "fix the cause above"
    else:
        what = "fix the cause above (the file, its sidecar, the channels asked for, or the farm)"
    return (f"onetake could not deliver {name} (job {job_id}, lane {lane}) at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.\n\n"
            f"Cause: {cause}\n\n"
            f"What to do: {what}; then run `onetake jobs retry {job_id} --ledger {ledger}`, or drop a corrected "
            f"file into the inbox again.\n")


class Watcher:
    """Takes complete files from ``inboxes``, runs them in lane order, records every step in ``ledger``."""

    def __init__(self, inboxes: Sequence[InboxConfig], watch: WatchConfig, farm: FarmConfig, ledger: Ledger,
                 executor: StreamingExecutor, catalog: Catalog, plan_options: Callable[[str], PlanOptions],
                 log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inboxes = [Inbox(i.resolved(farm, watch)) for i in inboxes]
        self.watch = watch
        self.ledger = ledger
        self.executor = executor
        self.catalog = catalog
        self.plan_options = plan_options
        self.draining = Drain(watch.drain_timeout_s, clock)
        self.clock = clock
        self.log = log
        self.owner = process_owner()
        self.settling = Settling()
        self.poisoned: set[tuple[Path, tuple[Any, ...]]] = set()
        self.held: dict[int, Held] = {}
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.stop_now = False
        self.stopped_reason = ""

    # ---------------------------------------------------------------------------------------------- control

    def wake(self) -> None:
        self.events.put(("wake",))

    def drain(self) -> None:
        """Stop taking files; let running jobs finish within ``drain_timeout_s``."""
        self.draining.start()
        self.wake()

    def stop(self) -> None:
        """Stop at once: running jobs go back to the queue, to resume at the next start."""
        self.stop_now = True
        self.wake()

    def running(self) -> list[Held]:
        return [h for h in self.held.values() if h.plan is not None]

    def run(self) -> None:
        for job in self.ledger.reconcile():
            self.log(f"job {job.id} was interrupted; it is {job.state} again")
        while True:
            if self.draining.started:
                if not self.running():
                    self.stopped_reason = "drained"
                    break
                if self.draining.overdue():
                    self.stop_now = True
                    self.stopped_reason = f"drain took longer than {self.watch.drain_timeout_s:g} s"
            if self.stop_now:
                self.stopped_reason = self.stopped_reason or "stopped at once"
                break
            if not self.draining.started:
                self.adopt()
                self.scan()
                self.check_cancelled()
                self.admit()
            self.wait_for_events()
        self.shutdown()

    def wait_for_events(self) -> None:
        now = self.clock()
        due = min([now + self.watch.poll_s] + [d for d in (self.settling.next_due(i.config.settle_s)
                                                             for i in self.inboxes) if d is not None])
        timeout = min(max(0.0, due - now), 0.25)  # signals are seen within a quarter of a second
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            if item[0] == "done":
                self.on_done(*item[1:])
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                return

    def shutdown(self) -> None:
        running = self.running()
        if running:
            self.executor.cancel([h for job in running for h in job.handles.values()])
        for job in list(self.held.values()):
            if job.plan is not None:
                self.ledger.requeue(job.job_id, f"interrupted ({self.stopped_reason}); the next `onetake watch` on "
                                                f"its inbox resumes it")
            self.release(job)
        self.log(f"watcher stopped: {self.stopped_reason}; {len(running)} running job(s) put back in the queue")

    def release(self, job: Held) -> None:
        os.close(job.lock)
        self.held.pop(job.job_id, None)

    # ---------------------------------------------------------------------------------------------- intake

    def scan(self) -> None:
        now = self.clock()
        seen: set[Path] = set()
        taken = 0
        # urgent inboxes first, so that their files are claimed (and admitted) before a burst elsewhere
        for inbox in sorted(self.inboxes, key=lambda i: LANE_ORDER[i.config.lane]):
            for path in inbox.candidates():
                seen.add(path)
                if taken >= TAKE_PER_PASS:
                    continue
                since = self.settling.observe(path, inbox.config.settle_s, now)
                if since is None or inbox.ready(path):
                    continue
                key = (path, self.settling.seen[path][0])
                if key in self.poisoned:
                    continue
                taken += 1
                try:
                    lane = self.take(inbox, path, stable_at=time.time() - (now - since - inbox.config.settle_s))
                except Exception as exc:  # a bug must not stop the watcher: leave this file, say so, go on
                    self.poisoned.add(key)
                    self.log(f"cannot take {path}: {describe_error(exc)}")
                    continue
                if lane == "urgent":
                    taken = TAKE_PER_PASS  # admit it before claiming anything else
        self.settling.forget(seen)

    def take(self, inbox: Inbox, path: Path, stable_at: float) -> str | None:
        """Claim ``path`` as a job; its lane, or None when another watcher had it."""
        problem = None
        sidecar = Sidecar()
        try:
            probe(path, compute_hash=False)
            side = sidecar_of(path.parent, path.name)
            if side is not None:
                sidecar = read_sidecar(side)
            for channel in sidecar.channels:
                if channel not in self.catalog.channels:
                    raise IngestError(f"{side}: unknown channel '{channel}'; known channels are "
                                      f"{', '.join(self.catalog.channels)}")
        except OnetakeError as exc:
            problem = str(exc)
        except OSError as exc:  # e.g. the file went while PyAV read it
            problem = f"{path}: cannot be read ({exc.strerror or exc})"
        if problem is not None and not path.exists():
            return None  # another watcher took it meanwhile
        lock = lock_file(path)
        if lock is None:
            return None  # another watcher has it
        try:
            claimed = inbox.move(path, "processing")
        except FileNotFoundError:
            os.close(lock)
            return None
        except OSError as exc:
            os.close(lock)
            self.poisoned.add((path, self.settling.seen[path][0]))
            self.log(f"cannot claim {path} ({exc.strerror}); check that the inbox is writable")
            return None
        lane = sidecar.lane or inbox.config.lane
        channels = sidecar.channels or inbox.config.channels
        job_id = self.ledger.add(kind="watch", source=str(path), path=str(claimed), inbox=str(inbox.path),
                                 lane=lane, out=inbox.config.out, channels=channels, metadata=sidecar.metadata(),
                                 stable_at=stable_at)
        held = Held(job_id, claimed, inbox, lock, lane, channels, sidecar.metadata())
        self.held[job_id] = held
        if problem is not None:
            self.ledger.start(job_id, self.owner)
            self.finish_failed(held, problem)
            return None
        self.log(f"took {path.name} as job {job_id} ({lane})")
        return lane

    def adopt(self) -> None:
        """Files in processing/ that no live process holds: left by a watcher that died, or put back by
        `onetake jobs retry`."""
        mine = {h.path for h in self.held.values()}
        for inbox in self.inboxes:
            for path in inbox.processing():
                if path in mine:
                    continue
                lock = lock_file(path)
                if lock is None:
                    continue
                job = self.ledger.find(str(path))
                if job is None or job.kind != "watch":
                    job_id = self.ledger.add(kind="watch", source=str(inbox.path / path.name), path=str(path),
                                             inbox=str(inbox.path), lane=inbox.config.lane, out=inbox.config.out,
                                             channels=inbox.config.channels)
                    job = self.ledger.get(job_id)
                held = Held(job.id, path, inbox, lock, job.lane, job.channels, job.metadata)
                self.held[job.id] = held
                if job.state == "running":
                    self.ledger.requeue(job.id, "interrupted: resumed by another watcher")
                    job = self.ledger.get(job.id)
                if job.state == "queued":
                    self.log(f"resuming job {job.id} ({path.name})")
                elif job.state == "delivered":
                    self.archive(held)
                else:
                    self.to_failed(held, job.error or f"job {job.id} was {job.state}")

    def check_cancelled(self) -> None:
        if not self.held:
            return
        for job_id, state in self.ledger.states(list(self.held)).items():
            if state == "cancelled":
                held = self.held[job_id]
                if held.handles:
                    self.executor.cancel(list(held.handles.values()))
                self.log(f"job {job_id} cancelled")
                self.to_failed(held, "cancelled with `onetake jobs cancel`")
        waiting = [h.job_id for h in self.held.values() if h.plan is None]
        for job_id, lane in self.ledger.lanes(waiting).items():  # moved by the desk while it waits
            if job_id in self.held and self.held[job_id].lane != lane:
                self.log(f"job {job_id} moved to the {lane} lane")
                self.held[job_id].lane = lane

    # ---------------------------------------------------------------------------------------------- running

    def admit(self) -> None:
        # a job not admitted is not probed or hashed either: the policy decides before any work
        waiting = [h for h in self.held.values() if h.plan is None]
        if not waiting:
            return
        for held in self.admission().start_now(waiting, self.running()):
            if not self.ledger.start(held.job_id, self.owner):
                continue  # cancelled meanwhile: check_cancelled moves it
            try:
                plan = self.make_plan(held)
            except OnetakeError as exc:
                self.finish_failed(held, str(exc))
                continue
            except Exception as exc:  # a bug must not stop the watcher: the job fails with the cause
                self.finish_failed(held, describe_error(exc))
                continue
            self.submit(held, plan)
            first = " (a first version of them first)" if held.full is not None else ""
            self.log(f"started job {held.job_id} {held.path.name} ({held.lane}): "
                     f"{', '.join((held.full or plan).channels)}{first}")

    def admission(self) -> Admission:
        """Normal and bulk jobs run side by side up to ``max_active_jobs``; unset, one more than the workers that
        encode now, so that a farm whose workers join after the watcher started is used as it grows."""
        return Admission(self.watch.max_active_jobs or encode_workers(self.executor) + 1)

    def submit(self, held: Held, plan: JobPlan) -> None:
        held.plan, held.outcomes = plan, []
        held.handles = submit_plan(plan, self.executor, LANE_PRIORITY[held.lane])
        for task in plan.tasks:
            if task.kind == TaskKind.DELIVER:
                self.executor.when_done(held.handles[task.id],
                                        lambda h, r, e, job=held.job_id, t=task: self.events.put(
                                            ("done", job, t, r, e)))

    def make_plan(self, held: Held) -> JobPlan:
        """The plan to run now: the job's, or an urgent job's first version (its full plan then waits in
        ``held.full``)."""
        info = probe(held.path)
        checksum = held.path.parent / f"{held.path.name}.sha256"
        if checksum.is_file():
            expected = checksum.read_text(encoding="utf-8", errors="replace").split()[:1]
            if expected != [info.sha256]:
                raise SourceError(str(held.path), f"its SHA-256 is {info.sha256}, not the {checksum.name} value "
                                                  f"{expected[0] if expected else '(empty)'}",
                                  "the transfer was damaged; send the file again")
        for channel in held.channels:
            if channel not in self.catalog.channels:
                raise IngestError(f"unknown channel '{channel}'; known channels are "
                                  f"{', '.join(self.catalog.channels)}")
        options = dataclasses.replace(self.plan_options(held.inbox.config.out), title=held.metadata.get("title", ""))
        if (held.metadata.get(QC_OVERRIDE) or {}).get("mode") == "warn":  # delivered anyway, from the desk
            options = dataclasses.replace(options, farm=options.farm.merged(qc="warn"))
        if held.lane == URGENT:
            options = full_version_options(options)
        plan = plan_job(info, held.channels or None, self.catalog, options)
        first = plan_first_version(plan.source, plan, self.catalog, options,
                                   encode_slots(self.executor)) if held.lane == URGENT else None
        metadata = {**held.metadata, "job": held.job_id, "lane": held.lane}

        def described(plan: JobPlan) -> JobPlan:
            return dataclasses.replace(plan, tasks=tuple(
                dataclasses.replace(t, params={**t.params, "metadata": metadata}) if t.kind == TaskKind.DELIVER
                else t for t in plan.tasks))

        held.full = described(plan) if first is not None else None
        return described(first or plan)

    def on_done(self, job_id: int, task: Task, result: Any, error: BaseException | None) -> None:
        held = self.held.get(job_id)
        if held is None or held.plan is None:
            return  # cancelled or stopped meanwhile
        outcome = channel_outcome(task, result, error)
        if outcome is None:
            return
        held.outcomes.append(outcome)
        if len(held.outcomes) < len(held.plan.channels):
            return
        if held.full is not None:  # the first version is out (or failed): the full-quality delivery replaces it
            held.first = held.outcomes
            out = [o.channel for o in held.first if o.manifest]
            self.log(f"published the first version of job {job_id} {held.path.name}: {', '.join(out) or 'none'}"
                     + "".join(f"; {o.channel} FAILED: {o.cause}" for o in held.first if o.error is not None))
            full, held.full = held.full, None
            self.submit(held, full)
            return
        if held.first:
            held.outcomes = first_version_kept(SourceOutcome(str(held.path), held.plan.asset_id, held.outcomes),
                                               SourceOutcome(str(held.path), "", held.first)).channels
        manifests = [o.manifest for o in held.outcomes if o.manifest]
        failed = [o for o in held.outcomes if o.error is not None]
        if failed:
            self.finish_failed(held, "; ".join(f"{o.channel}: {o.cause}" for o in failed), manifests,
                               qc_only=all(isinstance(o.error, QcError) for o in failed))
            return
        for o in held.outcomes:
            for finding in o.qc_failed:  # delivered under qc = "warn"
                self.log(f"QC warning job {job_id} {held.path.name}: {o.channel}: {finding['name']}: measured "
                         f"{finding['value']}, expected {finding['limit']}")
        if self.ledger.delivered(job_id, held.plan.asset_id, manifests):
            self.log(f"delivered job {job_id} {held.path.name}: {', '.join(held.plan.channels)}")
            self.archive(held)

    def archive(self, held: Held) -> None:
        try:
            if held.inbox.config.on_success == "delete":
                for companion in companions(held.path.parent, held.path.name):
                    companion.unlink(missing_ok=True)
                held.path.unlink(missing_ok=True)
            else:
                self.ledger.moved(held.job_id, str(held.inbox.move(held.path, "done")))
        except OSError as exc:  # the job is delivered; the next start (or adoption) moves the file
            self.log(f"job {held.job_id} is delivered but {held.path} could not be moved to done/ ({exc.strerror})")
        self.release(held)

    def finish_failed(self, held: Held, cause: str, manifests: list[str] | None = None, qc_only: bool = False) -> None:
        asset = held.plan.asset_id if held.plan else ""
        self.ledger.failed(held.job_id, cause, asset, manifests)
        self.log(f"FAILED job {held.job_id} {held.path.name}: {cause}")
        self.to_failed(held, cause, qc_only)

    def to_failed(self, held: Held, cause: str, qc_only: bool = False) -> None:
        try:
            target = held.inbox.move(held.path, "failed")
            Path(f"{target}.error.txt").write_text(
                error_text(held.job_id, target.name, held.lane, cause, self.ledger.path, qc_only), encoding="utf-8")
            self.ledger.moved(held.job_id, str(target))
        except OSError as exc:  # the ledger has the cause; the file stays in processing/ for the next start
            self.log(f"job {held.job_id}: {held.path} could not be moved to failed/ ({exc.strerror})")
        self.release(held)


class StopSignals:
    """The first SIGTERM or Ctrl-C drains, the second stops at once; the previous handlers come back on exit."""

    def __init__(self) -> None:
        self.count = 0
        self.watcher: Any = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        import signal

        self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self.handle)
        # Ctrl-C on a terminal reaches the whole process group: the Dask workers started meanwhile inherit
        # "ignore" (across exec too), so only the watcher sees it and a drain can let their tasks finish
        self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self

    def arm(self) -> None:
        """Once the workers are started: Ctrl-C drains, like SIGTERM."""
        import signal

        signal.signal(signal.SIGINT, self.handle)

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.watcher is None:
            if self.count == 1:
                return  # still starting: the watcher drains as soon as it exists
            raise KeyboardInterrupt
        if self.count == 1:
            self.watcher.drain()
        else:
            self.watcher.stop()


def observe(watcher: Watcher, log: Callable[[str], None]) -> Any:
    """Wake the watcher on file-system events; polling still runs, for shares where no events arrive (and alone
    when events cannot be had, e.g. the inotify watch limit is reached)."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            watcher.wake()

    observer = Observer()
    for inbox in watcher.inboxes:
        observer.schedule(Wake(), str(inbox.path), recursive=False)
    observer.daemon = True
    try:
        observer.start()
    except OSError as exc:
        log(f"no file-system events ({exc.strerror or exc}); polling every [watch] poll_s instead")
        return None
    return observer


def prepare(inboxes: Sequence[InboxConfig], settings: FarmConfig, catalog: Catalog,
            farm: Farm) -> Callable[[str], PlanOptions]:
    """Check what the inboxes ask for, and the farm's ffmpeg against it; the plan options for an inbox's out."""
    check_channels(settings, catalog)
    for table in inboxes:
        check_channels(settings.merged(channels=table.channels or None, out=table.out or None), catalog)
        if not os.path.isdir(table.path):
            raise ConfigError(f"{table.path}: no such inbox folder; create it or fix the path")

    def options_for(inbox_out: str) -> PlanOptions:
        return plan_options(settings.merged(out=inbox_out), farm.encoder_version)

    # files arrive later: the ffmpeg is checked now against what typical ones would need, inbox by inbox
    farm.check(representative_plans([t.channels or settings.channels for t in inboxes], catalog,
                                    options_for(absolute_location(settings.out))))
    return options_for


def serve(inboxes: Sequence[InboxConfig], watch: WatchConfig, settings: FarmConfig, catalog: Catalog, farm: Farm,
          log: Callable[[str], None]) -> int:
    """`onetake watch`: check what the inboxes ask for, start the farm, and watch until a signal; the exit status
    (0 when a drain let every running job finish)."""
    if not inboxes:
        raise ConfigError("give at least one INBOX folder, or a --config file with [[inbox]] tables")
    options_for = prepare(inboxes, settings, catalog, farm)
    with StopSignals() as signals, Ledger(settings.ledger_path()) as ledger, farm.open() as executor:
        watcher = Watcher(inboxes, watch, settings, ledger, executor, catalog, options_for, log=log)
        signals.watcher = watcher
        signals.arm()
        if signals.count:
            watcher.drain()
        log(f"watching {', '.join(f'{i.config.path} ({i.config.lane})' for i in watcher.inboxes)}; "
            f"ledger {ledger.path}")
        return run_until_stopped(watcher, watch, log)


def run_until_stopped(watcher: Watcher, watch: WatchConfig, log: Callable[[str], None]) -> int:
    """Watch (with the file system's events where configured) until a signal stops it; the exit status: 0 when a
    drain let every running job finish."""
    observer = observe(watcher, log) if watch.events else None
    try:
        watcher.run()
    finally:
        if observer is not None:
            observer.stop()
            observer.join()
    return 0 if watcher.stopped_reason == "drained" else 1
