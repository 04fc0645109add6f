"""``onetake serve``: the watcher and the web server in one process, on one ledger.

The watcher runs in the main thread (it owns the signals: the first SIGTERM or Ctrl-C drains, the second stops),
the web server in a thread beside it. A monitor thread writes what the farm is doing into the ledger (each
running task's progress, each Dask worker's load), so that any desk on the same ledger, in this process or
another, shows the same board.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..pipeline.config import FarmConfig, InboxConfig, ServeConfig, WatchConfig
from ..pipeline.errors import ConfigError
from ..pipeline.ledger import Ledger
from ..pipeline.models import JobPlan
from ..pipeline.plan import TaskKind
from ..pipeline.profiles import Catalog
from ..pipeline.run import Farm
from ..pipeline.watch import Held, StopSignals, Watcher, prepare, run_until_stopped

MONITOR_INTERVAL_S = 0.5
FARM_INTERVAL_S = 2.0
SHOWN_KINDS = (TaskKind.ANALYZE, TaskKind.ANALYZE_PART, TaskKind.MEASURE, TaskKind.ENCODE, TaskKind.CHUNK,
               TaskKind.JOIN, TaskKind.PACKAGE)


def task_label(task: Any) -> str:
    """What a person calls a task: the renditions an encode makes, else its kind and name."""
    if task.kind in (TaskKind.ENCODE, TaskKind.JOIN):
        return f"{task.kind.value} " + ", ".join(o["profile"] for o in task.params.get("outputs", []))
    if task.kind == TaskKind.CHUNK:
        return f"chunk {task.params['index'] + 1} ({task.params['start']:g} s on)"
    if task.kind == TaskKind.ANALYZE_PART:
        p = task.params
        return "analysis of the sound" if p["part"] == "sound" else f"analysis of stretch {p['index'] + 1}"
    name = task.id.split("/", 2)[2] if task.id.count("/") >= 2 else ""
    return f"{task.kind.value} {name}".strip()


class Monitor:
    """Collects task progress (from the farm's events, any thread) and writes it, with the workers' load, into
    the ledger from its own thread."""

    def __init__(self, ledger_path: str) -> None:
        self.ledger_path = ledger_path
        self.lock = threading.Lock()
        self.tasks: dict[str, tuple[int, str]] = {}          # task id -> (job id, label)
        self.pending: dict[str, float] = {}                  # task id -> latest fraction, not yet written
        self.expected: list[tuple[int, list[tuple[str, str]]]] = []
        self.client: Any = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="onetake-desk-monitor", daemon=True)

    def expect(self, job_id: int, plan: JobPlan) -> None:
        shown = [(t.id, task_label(t)) for t in plan.tasks if t.kind in SHOWN_KINDS]
        with self.lock:
            for task_id, label in shown:
                self.tasks[task_id] = (job_id, label)
            self.expected.append((job_id, shown))

    def on_progress(self, task_id: str, fraction: float) -> None:
        with self.lock:
            if task_id in self.tasks:
                self.pending[task_id] = fraction

    def loop(self) -> None:
        with Ledger(self.ledger_path) as ledger:
            next_farm = 0.0
            while not self.stopping.wait(MONITOR_INTERVAL_S):
                self.flush(ledger)
                if time.monotonic() >= next_farm:
                    next_farm = time.monotonic() + FARM_INTERVAL_S
                    self.sample_farm(ledger)
            self.flush(ledger)

    def flush(self, ledger: Ledger) -> None:
        with self.lock:
            expected, self.expected = self.expected, []
            pending, self.pending = self.pending, {}
            named = {t: self.tasks[t] for t in pending}
        for job_id, shown in expected:
            ledger.clear_progress(job_id)
            for task_id, label in shown:
                ledger.record_progress(job_id, task_id, label, 0.0)
        for task_id, fraction in pending.items():
            job_id, label = named[task_id]
            ledger.record_progress(job_id, task_id, label, fraction)

    def sample_farm(self, ledger: Ledger) -> None:
        if self.client is None:
            return
        try:
            info = self.client.scheduler_info(n_workers=-1)
            processing = self.client.processing()
        except Exception:  # the cluster is going away: the board shows the last report and its age
            return
        with self.lock:
            labels = {task_id: label for task_id, (_, label) in self.tasks.items()}
        workers = []
        for address, worker in sorted(info.get("workers", {}).items()):
            metrics = worker.get("metrics", {})
            keys = [str(k) for k in processing.get(address, ())]
            workers.append({"name": worker.get("name", address), "address": address,
                            "cpu": round(float(metrics.get("cpu", 0.0)), 1), "memory": int(metrics.get("memory", 0)),
                            "memory_limit": int(worker.get("memory_limit") or 0),
                            "tasks": [next((lab for t, lab in labels.items() if t in k), k) for k in keys]})
        ledger.set_farm_status(workers, getattr(self.client, "dashboard_link", "") or "")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)


class ObservedFarm:
    """A farm whose progress events and Dask client the monitor sees."""

    def __init__(self, farm: Farm, monitor: Monitor) -> None:
        self.farm = farm
        self.monitor = monitor
        self.encoder_version = farm.encoder_version

    def check(self, plans: Sequence[JobPlan]) -> None:
        self.farm.check(plans)

    @contextlib.contextmanager
    def open(self, on_progress: Callable[[str, float], None] | None = None) -> Iterator[Any]:
        with self.farm.open(self.monitor.on_progress) as executor:
            self.monitor.client = getattr(executor, "client", None)
            try:
                yield executor
            finally:
                self.monitor.client = None


class DeskWatcher(Watcher):
    """The watcher, with every plan's tasks shown on the board as they progress."""

    monitor: Monitor

    def make_plan(self, held: Held) -> JobPlan:
        plan = super().make_plan(held)
        self.monitor.expect(held.job_id, plan)
        return plan


def bind_socket(bind: str) -> socket.socket:
    """A listening socket on HOST:PORT (port 0: a free one)."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--bind {bind}: cannot listen there ({exc.strerror or exc}); choose another port or "
                          f"stop what uses it") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


class WebServer:
    """uvicorn serving ``app`` on ``sock``, in the calling thread or a thread of its own."""

    def __init__(self, app: Any, sock: socket.socket, serve: ServeConfig) -> None:
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", proxy_headers=True,
                                forwarded_allow_ips=serve.forwarded_allow_ips, server_header=False,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="onetake-desk-web", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


def run_desk(app_for: Callable[[], Any], sock: socket.socket, serve: ServeConfig, settings: FarmConfig,
             watch: WatchConfig, inboxes: Sequence[InboxConfig], catalog: Catalog | None, farm: Farm | None,
             log: Callable[[str], None]) -> int:
    """Serve the desk; with inboxes, run the watcher beside it until a signal. The exit status."""
    web = WebServer(app_for(), sock, serve)
    if not inboxes:
        log(f"desk at {url_of(sock)} on ledger {settings.ledger_path()} (no inboxes: not watching)")
        web.run()
        return 0
    assert catalog is not None and farm is not None
    options_for = prepare(inboxes, settings, catalog, farm)
    monitor = Monitor(settings.ledger_path())
    observed = ObservedFarm(farm, monitor)
    with StopSignals() as signals, Ledger(settings.ledger_path()) as ledger, observed.open() as executor:
        watcher = DeskWatcher(inboxes, watch, settings, ledger, executor, catalog, options_for, log=log)
        watcher.monitor = monitor
        signals.watcher = watcher
        signals.arm()
        if signals.count:
            watcher.drain()
        monitor.start()
        web.start()
        watched = ", ".join(f"{i.config.path} ({i.config.lane})" for i in watcher.inboxes)
        log(f"desk at {url_of(sock)}; watching {watched}; ledger {ledger.path}")
        try:
            return run_until_stopped(watcher, watch, log)
        finally:
            web.stop()
            monitor.stop()
