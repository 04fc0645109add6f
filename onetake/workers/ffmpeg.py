"""Run ffmpeg as a child that cannot outlive its task: own process group, parent-death signal,
a stall watchdog fed by ``-progress`` and a hard time limit."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from ..pipeline.errors import EncodeError, EncodeStalled, TaskCancelled

PR_SET_PDEATHSIG = 1
STDERR_KEEP = 400  # lines

# ffmpeg process groups by the Dask task that started them, so that a cancelled task can stop its child; the
# stop events of in-process work (the analysis decode) by task, which that work checks between steps; and the tasks
# stopped while running, so that an ffmpeg they start afterwards (or one forked just as the stop came) is killed too
_RUNNING: dict[str, set[int]] = {}
_STOPS: dict[str, set[threading.Event]] = {}
_STOPPED: set[str] = set()
_RUNNING_LOCK = threading.Lock()
# the CPU seconds of the ffmpegs each worker thread has run to the end (a task runs in one thread)
_CHILDREN_CPU = threading.local()


def _current_task_key() -> str | None:
    try:
        from distributed.worker import thread_state
    except ImportError:
        return None
    key = getattr(thread_state, "key", None)
    return str(key) if key is not None else None


def kill_task_children(key: str) -> int:
    """Kill every ffmpeg process group started by task ``key``; return how many there were."""
    with _RUNNING_LOCK:
        groups = _RUNNING.pop(str(key), set())
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(groups)


def stop_task(key: str) -> None:
    """Stop what task ``key`` runs: kill its ffmpeg children, and any it starts from now on, and set the stop
    events of its in-process work."""
    with _RUNNING_LOCK:
        _STOPPED.add(str(key))
        events = set(_STOPS.get(str(key), ()))
    for event in events:
        event.set()
    kill_task_children(key)


def stop_every_task() -> None:
    """Stop what every task of this process runs: its worker is closing."""
    with _RUNNING_LOCK:
        keys = set(_RUNNING) | set(_STOPS)
    for key in keys:
        stop_task(key)


def _was_stopped(key: str | None) -> bool:
    with _RUNNING_LOCK:
        return key is not None and key in _STOPPED


def forget_task(key: str) -> None:
    """Task ``key`` has left the worker: nothing of it can start any more."""
    with _RUNNING_LOCK:
        _STOPPED.discard(str(key))


@contextlib.contextmanager
def task_stop_event() -> Iterator[threading.Event]:
    """An event that ``stop_task`` sets when the Dask task running this thread is cancelled (never set outside
    a Dask worker): for in-process work, which cannot be killed like a child and must check it as it goes."""
    key = _current_task_key()
    event = threading.Event()
    if key is None:
        yield event
        return
    with _RUNNING_LOCK:
        _STOPS.setdefault(key, set()).add(event)
    try:
        yield event
    finally:
        with _RUNNING_LOCK:
            events = _STOPS.get(key, set())
            events.discard(event)
            if not events:
                _STOPS.pop(key, None)


FFMPEG_ENV = "ONETAKE_FFMPEG"
# what to do about an ffmpeg that cannot be run: every such message ends with it
USE_ANOTHER_FFMPEG = f"unset {FFMPEG_ENV} (and [farm] ffmpeg) to use the ffmpeg onetake ships, or name a working one"


@functools.cache
def shipped_ffmpeg() -> str:
    """The ffmpeg of the imageio-ffmpeg wheel, found by its own rules: IMAGEIO_FFMPEG_EXE, then the binary it
    bundles, and only then one on the system."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_binary() -> str:
    """The ffmpeg onetake runs: the one named in ONETAKE_FFMPEG (the CLI sets it from [farm] ffmpeg), else the
    one it ships. An ``ffmpeg`` on PATH is never picked by accident: distributions ship older ones."""
    return os.environ.get(FFMPEG_ENV) or shipped_ffmpeg()


def ffmpeg_version() -> str:
    """First line of ``ffmpeg -version``: part of every output key."""
    return _version_of(ffmpeg_binary())


@functools.cache
def _version_of(binary: str) -> str:
    try:
        out = subprocess.run([binary, "-hide_banner", "-version"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise EncodeError(f"ffmpeg at {binary} cannot be started; {USE_ANOTHER_FFMPEG}", [binary, "-version"], None,
                          str(exc)) from exc
    return out.splitlines()[0].strip() if out else "ffmpeg"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


Progress = Callable[[float], None]
CPU_TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def _cpu_seconds(pid: int) -> float | None:
    """CPU time the process has used (Linux /proc); None where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * CPU_TICK_S
    except (OSError, IndexError, ValueError):
        return None


def _read_offset(pid: int, path: str) -> int | None:
    """How far the process has read into ``path`` (Linux /proc fdinfo); None if it has no such file open."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    return int(info.readline().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return None


def children_cpu_s() -> float:
    """The CPU seconds of every ffmpeg this thread has run to the end."""
    return float(getattr(_CHILDREN_CPU, "seconds", 0.0))


def run_ffmpeg(argv: Sequence[str], limits: dict[str, float], *, duration: float = 0.0,
               on_progress: Progress | None = None, what: str = "ffmpeg", source: str = "") -> str:
    """Run a planned ffmpeg argv (``argv[0]`` is a placeholder) and return its stderr.

    ``limits`` holds ``stall_timeout_s`` and ``timeout_s`` (FarmConfig.limits). ``on_progress`` gets the
    fraction done (0..1). Raises EncodeError on failure or timeout and EncodeStalled on a stall, with the argv,
    the exit status and the tail of stderr.

    ffmpeg reports ``-progress`` only once every output has written its first packet (a sprite sheet or a
    poster can take most of the encode), so progress also counts how far it has read ``source``, and the
    stall watchdog also counts CPU time: a child that neither reports, reads nor computes has stalled.
    """
    stall_timeout, timeout = limits["stall_timeout_s"], limits.get("timeout_s")
    full = [ffmpeg_binary(), "-progress", "pipe:1", *argv[1:]]
    try:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=_die_with_parent)
    except OSError as exc:
        raise EncodeError(f"{what} could not start; {USE_ANOTHER_FFMPEG}", full, None, str(exc)) from exc
    task_key = _current_task_key()
    stopped = False
    if task_key is not None:
        with _RUNNING_LOCK:  # the lock stop_task takes: either it sees this ffmpeg, or this sees the stop
            stopped = task_key in _STOPPED
            if not stopped:
                _RUNNING.setdefault(task_key, set()).add(proc.pid)
    stderr: deque[str] = deque(maxlen=STDERR_KEEP)
    reader = threading.Thread(target=lambda: stderr.extend(
        line.decode("utf-8", "replace") for line in proc.stderr), daemon=True)  # type: ignore[union-attr]
    reader.start()
    started = last_progress = time.monotonic()
    done_s = 0.0
    fraction = 0.0
    cpu_s = 0.0
    source_size = os.path.getsize(source) if source and os.path.isfile(source) else 0
    buffer = b""
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        if stopped:
            raise TaskCancelled(f"{what} was not run: its task was cancelled")
        while True:
            events = selector.select(timeout=1.0)
            now = time.monotonic()
            if events:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    m = re.match(rb"out_time_us=(\d+)", line)
                    if m:
                        seconds = int(m.group(1)) / 1e6
                        if seconds > done_s:
                            done_s, last_progress = seconds, now
            cpu = _cpu_seconds(proc.pid)
            if cpu is not None and cpu > cpu_s + 0.05:
                cpu_s, last_progress = cpu, now
            estimate = done_s / duration if duration > 0 else 0.0
            if source_size:
                offset = _read_offset(proc.pid, source)
                estimate = max(estimate, (offset or 0) / source_size)
            if on_progress is not None and min(1.0, estimate) > fraction + 0.005:
                fraction = min(1.0, estimate)
                on_progress(fraction)
            if now - last_progress > stall_timeout:
                _kill_group(proc)
                raise EncodeStalled(f"{what} made no progress for {stall_timeout:.0f} s and was stopped", full,
                                    None, "".join(stderr))
            if timeout is not None and now - started > timeout:
                _kill_group(proc)
                raise EncodeError(f"{what} ran past its limit of {timeout:.0f} s and was stopped", full, None,
                                  "".join(stderr))
        try:  # reaped here for its CPU time, which a task's cost counts
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            _CHILDREN_CPU.seconds = children_cpu_s() + usage.ru_utime + usage.ru_stime
        except ChildProcessError:  # reaped already (SIGCHLD ignored): its status as Popen knows it
            proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        if task_key is not None:
            with _RUNNING_LOCK:
                _RUNNING.get(task_key, set()).discard(proc.pid)
        selector.close()
        reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()  # type: ignore[union-attr]
    tail = "".join(stderr)
    if proc.returncode != 0 and _was_stopped(task_key):
        raise TaskCancelled(f"{what} was stopped: its task was cancelled")
    if proc.returncode != 0:
        raise EncodeError(f"{what} failed", full, proc.returncode, tail)
    if on_progress is not None:
        on_progress(1.0)
    return tail
