"""Watch folders: take each dropped file once, when it has finished arriving, and run it in its lane.

The ingest contract, per inbox folder:

1. A *candidate* is a regular file in the inbox that is not hidden, not a sender's temp name (``.part``,
   ``.tmp``, ...) and not a companion of another file (``NAME.json`` sidecar, ``NAME.done`` marker,
   ``NAME.sha256`` checksum, ``NAME.error.txt``).
2. It is *complete* when its size and mtime (and its companions') have held still for the settle time
   across polls, the marker the inbox requires is there, and it opens and probes cleanly.
3. It is *claimed* by taking an exclusive ``flock`` on the file, then renaming it (and its companions)
   into ``processing/`` on the same file system. The lock is held until the job ends, so a second watcher
   on the same inbox neither takes it from the inbox nor adopts it from ``processing/``; if this watcher
   dies, the kernel drops the lock and the next watcher adopts the file (its job resumes).
4. When every channel is delivered and verified, the ledger says so first, then the file moves to
   ``done/`` (or is deleted); a failure moves it to ``failed/`` beside ``NAME.error.txt``.

Probing, planning and the ledger happen here; the work runs on the executor ``cli.py`` hands in.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import queue
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import LANE_PRIORITY, LANES, FarmConfig, InboxConfig, WatchConfig
from .errors import IngestError, OnetakeError, QcError, SourceError
from .ledger import Ledger, process_owner
from .models import JobPlan, Task
from .plan import PlanOptions, plan_job
from .probe import probe
from .profiles import Catalog
from .schedule import ChannelOutcome, StreamingExecutor, channel_outcome, describe_error, submit_plan
from .schema import build, option

FOLDERS = ("processing", "done", "failed")
COMPANIONS = (".json", ".done", ".sha256", ".error.txt")
TEMP_NAMES = re.compile(r".*(\.part|\.partial|\.tmp|\.temp|\.crdownload|\.filepart|~)$", re.IGNORECASE)
LANE_ORDER = {lane: n for n, lane in enumerate(LANES)}
TAKE_PER_PASS = 16  # files claimed per pass over the inboxes, so that a burst does not hold up admitting urgent work


@dataclass(frozen=True)
class Sidecar:
    """``NAME.json`` (or ``STEM.json``) beside a dropped file: what the newsroom knows about it."""

    title: str = option("", help="the item's title")
    asset_id: str = option("", pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", help="the newsroom system's id")
    channels: tuple[str, ...] = option((), help="channels to make, instead of the inbox's")
    lane: str = option("", choices=("", *LANES), help="urgent, normal or bulk, instead of the inbox's")
    programme: str = option("", help="the programme it belongs to")
    episode: str = option("", help="episode or edition")
    air_date: str = option("", pattern=r"\d{4}-\d{2}-\d{2}", help="first broadcast, YYYY-MM-DD")
    description: str = option("", help="a description for the website and apps")

    def metadata(self) -> dict[str, Any]:
        """The values given, for the manifests."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if v}


def read_sidecar(path: Path) -> Sidecar:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IngestError(f"{path}: not a readable JSON sidecar ({exc}); write a JSON object such as "
                          f'{{"title": "...", "lane": "urgent"}}') from exc
    if not isinstance(data, dict):
        raise IngestError(f"{path}: a sidecar is a JSON object of keys, got {type(data).__name__}")
    return build(Sidecar, data, str(path), IngestError)


def companions(folder: Path, name: str) -> list[Path]:
    """The companion files of ``name`` that exist in ``folder``."""
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    found = [folder / f"{name}{suffix}" for suffix in COMPANIONS]
    found.append(folder / f"{stem}.json")
    return [p for p in dict.fromkeys(found) if p.is_file()]


def sidecar_of(folder: Path, name: str) -> Path | None:
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return next((p for p in (folder / f"{name}.json", folder / f"{stem}.json") if p.is_file()), None)


def is_candidate(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or TEMP_NAMES.fullmatch(name) or not path.is_file() or path.is_symlink():
        return False
    return not name.endswith(COMPANIONS)  # a lone JSON or marker is not media either


def _signature(path: Path) -> tuple[Any, ...]:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ino,
            *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in companions(path.parent, path.name)))


class Settling:
    """Which files have held still for the settle time across polls."""

    def __init__(self) -> None:
        self.seen: dict[Path, tuple[tuple[Any, ...], float]] = {}

    def observe(self, path: Path, settle_s: float, now: float) -> float | None:
        """The time the file was first seen as it is now when it has not changed for ``settle_s``, else None."""
        try:
            signature = _signature(path)
        except OSError:
            self.seen.pop(path, None)
            return None
        previous = self.seen.get(path)
        if previous is None or previous[0] != signature:
            self.seen[path] = (signature, now)
            return None
        return previous[1] if now - previous[1] >= settle_s else None

    def next_due(self, settle_s: float) -> float | None:
        return min((since + settle_s for _, since in self.seen.values()), default=None)

    def forget(self, keep: set[Path]) -> None:
        for path in set(self.seen) - keep:
            del self.seen[path]


class Inbox:
    """One watched folder and its processing/, done/ and failed/ folders."""

    def __init__(self, config: InboxConfig) -> None:
        self.config = config
        self.path = Path(config.path)
        if not self.path.is_dir():
            raise IngestError(f"{self.path}: no such inbox folder; create it or fix the path")
        self.folders = {name: self.path / name for name in FOLDERS}
        for folder in self.folders.values():
            try:
                folder.mkdir(exist_ok=True)
            except OSError as exc:
                raise IngestError(f"{folder}: cannot create it ({exc.strerror or exc}); the watcher needs write "
                                  f"access to the inbox for processing/, done/ and failed/") from exc

    def candidates(self) -> list[Path]:
        try:
            entries = sorted(self.path.iterdir())
        except OSError:
            return []
        return [p for p in entries if is_candidate(p)]

    def processing(self) -> list[Path]:
        try:
            return sorted(p for p in self.folders["processing"].iterdir() if is_candidate(p))
        except OSError:
            return []

    def ready(self, path: Path) -> str | None:
        """Why a settled file is not ready yet (a missing marker), or None."""
        require = self.config.require
        if require == "done" and not (path.parent / f"{path.name}.done").is_file():
            return "waiting for NAME.done"
        if require == "checksum" and not (path.parent / f"{path.name}.sha256").is_file():
            return "waiting for NAME.sha256"
        return None

    def move(self, path: Path, folder: str, lock: int | None = None) -> Path:
        """Move ``path`` and its companions into ``folder`` under a name not taken there; returns the new path."""
        target_dir = self.folders[folder]
        target = _free_name(target_dir, path.name)
        parts = companions(path.parent, path.name)
        os.rename(path, target)
        for companion in parts:
            if companion.name.endswith(".error.txt") and folder == "processing":
                companion.unlink(missing_ok=True)
                continue
            suffix = companion.name[len(path.name):] if companion.name.startswith(path.name) else None
            new_name = target.name + suffix if suffix else _stem(target.name) + ".json"
            os.rename(companion, target_dir / new_name)
        return target


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem-2.ext`` ... when a file of that name is already there."""
    target = folder / name
    n = 2
    while target.exists() or any(p.exists() for p in companions(folder, target.name)):
        ext = name[len(_stem(name)):]
        target = folder / f"{_stem(name)}-{n}{ext}"
        n += 1
    return target


def lock_file(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None when another process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    try:  # the name may now be another file's (ours was taken and a new one arrived under its name)
        same = os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        same = False
    if not same:
        os.close(fd)
        return None
    return fd


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
                 encode_workers: int = 1, log: Callable[[str], None] = print) -> None:
        self.inboxes = [Inbox(i.resolved(farm, watch)) for i in inboxes]
        self.watch = watch
        self.ledger = ledger
        self.executor = executor
        self.catalog = catalog
        self.plan_options = plan_options
        self.max_active = watch.max_active_jobs or encode_workers + 1
        self.log = log
        self.owner = process_owner()
        self.settling = Settling()
        self.poisoned: set[tuple[Path, tuple[Any, ...]]] = set()
        self.held: dict[int, Held] = {}
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.draining_since: float | None = None
        self.stop_now = False
        self.stopped_reason = ""

    # ---------------------------------------------------------------------------------------------- control

    def wake(self) -> None:
        self.events.put(("wake",))

    def drain(self) -> None:
        """Stop taking files; let running jobs finish within ``drain_timeout_s``."""
        if self.draining_since is None:
            self.draining_since = time.monotonic()
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
            if self.draining_since is not None:
                if not self.running():
                    self.stopped_reason = "drained"
                    break
                if time.monotonic() - self.draining_since > self.watch.drain_timeout_s:
                    self.stop_now = True
                    self.stopped_reason = f"drain took longer than {self.watch.drain_timeout_s:g} s"
            if self.stop_now:
                self.stopped_reason = self.stopped_reason or "stopped at once"
                break
            if self.draining_since is None:
                self.adopt()
                self.scan()
                self.check_cancelled()
                self.admit()
            self.wait_for_events()
        self.shutdown()

    def wait_for_events(self) -> None:
        now = time.monotonic()
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
        now = time.monotonic()
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

    # ---------------------------------------------------------------------------------------------- running

    def admit(self) -> None:
        waiting = sorted((h for h in self.held.values() if h.plan is None),
                         key=lambda h: (LANE_ORDER[h.lane], h.job_id))
        active = sum(1 for h in self.running() if h.lane != "urgent")
        urgent_running = any(h.lane == "urgent" for h in self.running())
        for held in waiting:
            # while urgent work runs, no more normal or bulk work is started (nor probed and hashed here)
            if held.lane != "urgent" and (active >= self.max_active or urgent_running):
                continue
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
            held.plan = plan
            held.handles = submit_plan(plan, self.executor, LANE_PRIORITY[held.lane])
            for task in plan.tasks:
                if task.kind == "deliver":
                    self.executor.when_done(held.handles[task.id],
                                            lambda h, r, e, job=held.job_id, t=task: self.events.put(
                                                ("done", job, t, r, e)))
            if held.lane != "urgent":
                active += 1
            else:
                urgent_running = True
            self.log(f"started job {held.job_id} {held.path.name} ({held.lane}): {', '.join(plan.channels)}")

    def make_plan(self, held: Held) -> JobPlan:
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
        plan = plan_job(info, held.channels or None, self.catalog, self.plan_options(held.inbox.config.out))
        metadata = {**held.metadata, "job": held.job_id, "lane": held.lane}
        tasks = tuple(dataclasses.replace(t, params={**t.params, "metadata": metadata}) if t.kind == "deliver"
                      else t for t in plan.tasks)
        return dataclasses.replace(plan, tasks=tasks)

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


def retry_job(ledger: Ledger, job_id: int) -> Path:
    """Put a failed or cancelled watch job's file back into processing/, where a watcher adopts it."""
    job = ledger.get(job_id)
    if job.kind != "watch":
        raise IngestError(f"job {job_id} came from `onetake run`; run that command again to retry it")
    if job.state not in ("failed", "cancelled"):
        raise IngestError(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
    current = Path(job.path)
    if not current.is_file():
        raise IngestError(f"{current}: the file of job {job_id} is not there any more; drop it into the inbox "
                          f"{job.inbox} again")
    inbox_folder = Path(job.inbox)
    target = _free_name(inbox_folder / "processing", current.name)
    if job.state == "cancelled" and current.parent == target.parent:
        target = current  # cancelled while waiting and no watcher moved it yet
    ledger.retry(job_id, str(target))
    if target != current:
        os.rename(current, target)
        for companion in companions(current.parent, current.name):
            if companion.name.endswith(".error.txt"):
                companion.unlink(missing_ok=True)
            elif companion.name.startswith(current.name):
                os.rename(companion, target.parent / (target.name + companion.name[len(current.name):]))
            else:
                os.rename(companion, target.parent / (_stem(target.name) + ".json"))
    return target
