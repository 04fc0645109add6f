"""Writing files so that a reader never sees half of one: temp names, renames, hard links."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | Path, text: str | Callable[[BinaryIO], object], mode: int | None = None) -> Path:
    """``text`` at ``path`` (whose folder exists), whole or not at all: written to a hidden temp name beside it
    (unique per writer), flushed to disk, given ``mode``, then renamed over ``path``. ``text`` may also be a
    function that writes the file's bytes."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        with open(partial, "wb") as f:
            if callable(text):
                text(f)
            else:
                f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            partial.chmod(mode)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` (same file system), else copy it."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def publish_dir(partial: Path, final: Path) -> str:
    """Rename a finished temp folder into place, its files made read-only (deliveries hard-link to them, so an
    edit in place would change the cache too); if another run got there first, keep theirs."""
    for path in partial.rglob("*"):
        if path.is_file():
            path.chmod(0o444)
    try:
        os.rename(partial, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return str(final)


@contextlib.contextmanager
def exclusive(paths: list[str]) -> Iterator[None]:
    """Hold an advisory lock per path (``PATH.lock``) while making or changing what is there: a second run that
    needs the same rendition (chunk, reference) waits here, then finds it made. Locks are taken in sorted order,
    so two runs never deadlock."""
    with _locked(paths, fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def shared(paths: list[str]) -> Iterator[None]:
    """Hold a shared lock per path while reading what is there: any number of readers, and no one holding
    ``exclusive`` on it meanwhile."""
    with _locked(paths, fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def _locked(paths: list[str], mode: int) -> Iterator[None]:
    handles = []
    try:
        for path in sorted(set(paths)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            handle = open(f"{path}.lock", "a+b")
            handles.append(handle)
            fcntl.flock(handle, mode)
        yield
    finally:
        for handle in reversed(handles):
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
