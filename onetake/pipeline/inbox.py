"""The watch-folder ingest contract, per inbox folder:

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
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artwork import COVER_SUFFIXES
from .captions import LANGUAGE, SIDECAR_SUFFIXES, glob_escape
from .config import LANES, InboxConfig
from .errors import IngestError
from .ledger import Ledger
from .media import file_stem
from .schema import build, option

FOLDERS = ("processing", "done", "failed")


COMPANIONS = (".json", ".done", ".sha256", ".error.txt")
# STEM.EXT companions: the sidecar, captions, and the cover of an audio programme (a picture beside a sound file of
# the same stem; beside anything else, another picture, a RAW, a video, an editor's sidecar, it is a photo of its own)
STEM_COMPANIONS = (".json", *SIDECAR_SUFFIXES)
AUDIO_FILES = (".wav", ".bwf", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".amr", ".wma", ".aif", ".aiff",
               ".mp2")


TEMP_NAMES = re.compile(r".*(\.part|\.partial|\.tmp|\.temp|\.crdownload|\.filepart|~)$", re.IGNORECASE)


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
    found = [folder / f"{name}{suffix}" for suffix in (*COMPANIONS, *SIDECAR_SUFFIXES)]
    stem = file_stem(name)
    found += [folder / f"{stem}{suffix}" for suffix in STEM_COMPANIONS]
    if name.lower().endswith(AUDIO_FILES):
        found += [p for p in folder.glob(f"{glob_escape(stem)}.*") if p.suffix.lower() in COVER_SUFFIXES]
    found += [p for suffix in SIDECAR_SUFFIXES for p in folder.glob(f"{glob_escape(stem)}.*{suffix}")
              if LANGUAGE.fullmatch(p.name[len(stem) + 1:-len(suffix)])]  # clip.zh.srt
    return [p for p in dict.fromkeys(found) if p.is_file() and p.name != name]


def sidecar_of(folder: Path, name: str) -> Path | None:
    return next((p for p in (folder / f"{name}.json", folder / f"{file_stem(name)}.json") if p.is_file()), None)


def is_candidate(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or TEMP_NAMES.fullmatch(name) or not path.is_file() or path.is_symlink():
        return False
    if name.endswith(COMPANIONS) or name.lower().endswith(SIDECAR_SUFFIXES):
        return False  # a lone JSON, marker or caption file is not media either
    if name.lower().endswith(COVER_SUFFIXES):  # the cover of a programme beside it, not a photo
        return not any(p.suffix.lower() in AUDIO_FILES for p in path.parent.glob(f"{glob_escape(file_stem(name))}.*"))
    return True


def _signature(path: Path) -> tuple[Any, ...]:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ino,
            *((p.name, c.st_size, c.st_mtime_ns) for p in companions(path.parent, path.name) for c in [p.stat()]))


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

    def move(self, path: Path, folder: str) -> Path:
        """Move ``path`` and its companions into ``folder`` under a name not taken there; returns the new path."""
        return move_with_companions(path, _free_name(self.folders[folder], path.name))


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem-2.ext`` ... when a file of that name is already there."""
    target = folder / name
    n = 2
    while target.exists() or any(p.exists() for p in companions(folder, target.name)):
        ext = name[len(file_stem(name)):]
        target = folder / f"{file_stem(name)}-{n}{ext}"
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
        move_with_companions(current, target)
    return target


def move_with_companions(path: Path, target: Path) -> Path:
    """Rename ``path`` to ``target`` with its companions (``NAME.EXT`` ones follow the new name, ``STEM.EXT`` ones
    the new stem); going into processing/, an old ``NAME.error.txt`` is dropped."""
    parts = companions(path.parent, path.name)
    os.rename(path, target)
    for companion in parts:
        if companion.name.endswith(".error.txt") and target.parent.name == "processing":
            companion.unlink(missing_ok=True)
        elif companion.name.startswith(path.name):
            os.rename(companion, target.parent / (target.name + companion.name[len(path.name):]))
        else:
            os.rename(companion, target.parent / (file_stem(target.name) + companion.name[len(file_stem(path.name)):]))
    return target
