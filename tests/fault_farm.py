"""A real Dask farm on loopback for the fault drills, and what the drills look at in /proc and in the store.

The farm is a `dask scheduler` and `dask worker` processes, as `configs/systemd/` runs them: each worker with its
nanny (which forks the real worker process; an ffmpeg is that process's child), two threads, one `encode` slot and
its own scratch folder (`--local-directory`, also its working directory); they share only the store under the
test's folder. Like systemd's ``Restart=always``, the farm starts a `dask worker` again when it exits (a worker
ends itself when it loses its scheduler). `onetake run` runs against it as a user runs it, as a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

DASK = Path(sys.executable).with_name("dask")
WORKER_TTL_S = 2.0  # distributed.scheduler.worker-ttl of the drills' scheduler
# A frozen worker's task is given to another worker within this: every worker-ttl the scheduler looks for workers
# silent for longer than max(worker-ttl, 5 s) (Dask's floor with up to 10 workers), and asks their nanny to restart
# them; the nanny kills one that does not stop within 4 s, and its tasks go to other workers at once.
SILENT_S = max(WORKER_TTL_S, 5.0)
FROZEN_BOUND_S = SILENT_S + WORKER_TTL_S + 4.0
RESTART_S = 0.5  # systemd's RestartSec, for the workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(condition: Callable[[], Any], timeout: float, what: str | Callable[[], str], every: float = 0.05) -> Any:
    """``condition()``'s first true value, checked every ``every`` seconds; fails the test after ``timeout``, saying
    ``what`` (or what it returns then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what if isinstance(what, str) else what()} (waited {timeout:g} s)")
        time.sleep(every)


class Farm:
    """A `dask scheduler` on a free loopback port and ``workers`` supervised `dask worker` processes."""

    def __init__(self, root: Path, workers: int = 2, nanny: bool = True) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.nanny = nanny
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.lock = threading.Lock()
        self.start_scheduler()
        for n in range(1, workers + 1):
            self.start_worker(f"w{n}")
        self.supervisor = threading.Thread(target=self.supervise, daemon=True)
        self.supervisor.start()

    def _start(self, argv: list[str], log: str, cwd: Path,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.logs / log, "ab") as out:
            return subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start_scheduler(self) -> None:
        self.scheduler = self._start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--no-dashboard"], "scheduler.log", self.root,
                                     {"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": f"{WORKER_TTL_S:g}s"})

    def start_worker(self, name: str) -> None:
        scratch = self.root / "scratch" / name
        scratch.mkdir(parents=True, exist_ok=True)
        self.workers[name] = self._start(
            [str(DASK), "worker", self.address, "--name", name, "--nthreads", "2", "--resources", "encode=1",
             "--local-directory", str(scratch), "--no-dashboard", *([] if self.nanny else ["--no-nanny"])],
            f"{name}.log", scratch)

    def supervise(self) -> None:
        """Start a worker again when its `dask worker` exits, as systemd's Restart=always does."""
        while not self.stopping:
            time.sleep(RESTART_S)
            with self.lock:
                for name, process in list(self.workers.items()):
                    if process.poll() is not None and not self.stopping:
                        self.start_worker(name)

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.kill()
        self.scheduler.wait()

    def client(self) -> Any:
        import distributed

        return distributed.Client(self.address, timeout="30s", set_as_default=False)

    def wait_for_workers(self, count: int | None = None, timeout: float = 60) -> None:
        with self.client() as client:
            client.wait_for_workers(count or len(self.workers), timeout=timeout)

    def nanny_of(self, worker_process: psutil.Process) -> str | None:
        """The name of the worker whose `dask worker` (nanny) started this process, or whose process it is."""
        pids = {p.pid: name for name, p in self.workers.items()}
        try:
            return pids.get(worker_process.pid) or pids.get(worker_process.ppid())
        except psutil.NoSuchProcess:
            return None

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            processes = [p for p in [*self.workers.values(), self.scheduler] if p is not None]
        for p in processes:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# ------------------------------------------------------------------------------------------------- processes


def ffmpegs(root: Path) -> list[psutil.Process]:
    """The live ffmpeg processes whose command line mentions ``root`` (read from /proc)."""
    found = []
    for p in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if ("ffmpeg" in (p.info["name"] or "") and p.info["status"] != psutil.STATUS_ZOMBIE
                    and any(str(root) in arg for arg in p.info["cmdline"] or ())):
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


def command_lines(processes: Iterable[psutil.Process]) -> list[str]:
    lines = []
    for p in processes:
        try:
            lines.append(" ".join(p.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return lines


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def busy_encode(root: Path, marker: str, skip: Iterable[int] = (), cpu_s: float = 0.3) -> psutil.Process | None:
    """An ffmpeg under ``root`` whose command line mentions ``marker`` (a profile's name, a source's), once it has
    done some work (``cpu_s`` of CPU), if any; none of those in ``skip``."""
    for p in ffmpegs(root):
        try:
            if p.pid not in skip and any(marker in a for a in p.cmdline()) and sum(p.cpu_times()[:2]) >= cpu_s:
                return p
        except psutil.NoSuchProcess:
            continue
    return None


def signal_all(processes: Iterable[psutil.Process], sig: int) -> None:
    for p in processes:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


# ------------------------------------------------------------------------------------------------- `onetake run`


class Run:
    """`onetake run --json` as a subprocess; stdout and stderr go to files (nothing blocks on a pipe)."""

    def __init__(self, root: Path, sources: list[Path], farm: Farm, out: Path, channels: str, config: Path) -> None:
        self.stdout, self.stderr = root / "run.stdout", root / "run.stderr"
        with open(self.stdout, "wb") as stdout, open(self.stderr, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "onetake.cli", "run", "--json", "--scheduler", farm.address, "--out", str(out),
                 "--channels", channels, "--config", str(config), "--", *map(str, sources)],
                cwd=root, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)

    def wait(self, timeout: float = 120) -> tuple[int, dict[str, Any] | None, str]:
        """Exit status, the JSON summary (None when there is none) and stderr."""
        code = self.process.wait(timeout=timeout)
        text = self.stdout.read_text(encoding="utf-8")
        return code, json.loads(text) if text.strip() else None, self.stderr.read_text(encoding="utf-8")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def farm_config(root: Path, **values: Any) -> Path:
    """A farm config with a ledger in ``root`` and ``values`` in its [farm] table."""
    lines = [f'ledger = "{root / "jobs.sqlite"}"', *(f"{k} = {json.dumps(v)}" for k, v in values.items())]
    path = root / "farm.toml"
    path.write_text("[farm]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- the store


def strays(out: Path) -> list[Path]:
    """Temporary things left in the store: ``.partial`` folders and files, temp names (locks are meant to stay)."""
    return sorted(p for p in out.rglob("*") if ".partial" in p.name or p.name.endswith((".tmp", ".temp"))
                  or p.name.startswith(".tmp"))


def deliveries(out: Path, channel: str) -> list[Path]:
    """The delivery folders of ``channel`` under ``out``."""
    folder = out / channel
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
