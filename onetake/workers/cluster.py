"""The farm a batch runs on: a Dask client on an existing scheduler, or an embedded LocalCluster sized by the farm
config, with the checked ffmpeg every worker runs."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..pipeline.config import FarmConfig
from ..pipeline.errors import ConfigError
from ..pipeline.models import JobPlan
from . import capabilities
from .capabilities import check_plans
from .executor import ENCODE_RESOURCE, DaskExecutor
from .ffmpeg import ffmpeg_binary, ffmpeg_version


def quieten_dask() -> None:
    """onetake says what went wrong in one line; Dask's own log (a lost scheduler, a reconnection attempt, with
    tracebacks) is not for users, unless ONETAKE_DEBUG is set. Dask gives some of its loggers handlers of their own
    (distributed.client, tornado.application), so every handler it set up is quietened."""
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if os.environ.get("ONETAKE_DEBUG"):
        return
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.split(".")[0] in ("distributed", "tornado", "bokeh"):
            for handler in logger.handlers:
                handler.setLevel(logging.CRITICAL)


@contextlib.contextmanager
def open_cluster(settings: FarmConfig) -> Iterator[Any]:
    """A Dask client: on an existing scheduler, or on an embedded LocalCluster that ends with the block."""
    import distributed

    quieten_dask()
    with contextlib.ExitStack() as stack:
        if settings.scheduler:
            try:
                client = distributed.Client(settings.scheduler, timeout=f"{settings.scheduler_timeout_s:g}s",
                                            set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {settings.scheduler} ({exc}); start one "
                                  f"with `dask scheduler` and `dask worker {settings.scheduler} --resources "
                                  f"{ENCODE_RESOURCE}=1`, or leave --scheduler out for an embedded cluster") from exc
        else:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=settings.embedded_workers(), threads_per_worker=settings.threads_per_worker,
                processes=True, resources={ENCODE_RESOURCE: 1},
                # no dashboard; its HTTP server (health, metrics) on a free port, so that a second run on the
                # same machine does not warn that 8787 is taken
                dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                silence_logs=logging.CRITICAL))
            client = distributed.Client(cluster, set_as_default=False)
        stack.callback(client.close)
        client.run(importlib.import_module, "onetake.workers.tasks")  # workers import PyAV & co. now, not mid-run
        yield client


class DaskFarm:
    """``pipeline.run.Farm`` on Dask. The encoder's version is read when the farm is made: not while Dask starts
    workers (it edits os.environ as it spawns them, and a subprocess started meanwhile can exec with a
    half-written environment)."""

    def __init__(self, settings: FarmConfig) -> None:
        self.settings = settings
        self.encoder_version = ffmpeg_version()

    def check(self, plans: Sequence[JobPlan]) -> None:
        check_plans(plans)

    @contextlib.contextmanager
    def open(self, on_progress: Callable[[str, float], None] | None = None) -> Iterator[DaskExecutor]:
        with open_cluster(self.settings) as client:
            executor = DaskExecutor(client, on_progress=on_progress, stall_retries=self.settings.stall_retries,
                                    reconnect_s=self.settings.scheduler_timeout_s)
            try:
                yield executor
            finally:
                executor.close()


# ------------------------------------------------------------------------------------------------- cluster check


@dataclass
class WorkerFacts:
    """What ``onetake cluster check`` learns about one Dask worker."""

    address: str
    host: str
    ffmpeg: str                # the first line of its ffmpeg's -version
    ffmpeg_path: str
    encoders: list[str]        # of those onetake's profiles use
    encode_slots: float
    scratch: str               # the farm's work dir as the worker sees it (or the nearest folder that exists)
    scratch_free_gb: float
    scratch_writable: bool
    memory_gb: float
    memory_free_gb: float
    cpus: int


def local_facts(work_dir: str, encoders: list[str]) -> dict[str, Any]:
    """Run on a worker: its host, ffmpeg, scratch space and memory."""
    import psutil

    build = capabilities.inspect(ffmpeg_binary())
    scratch = Path(work_dir)
    while not scratch.exists() and scratch != scratch.parent:
        scratch = scratch.parent
    memory = psutil.virtual_memory()
    return {"host": socket.gethostname(), "ffmpeg": build.version_line, "ffmpeg_path": build.path,
            "encoders": [e for e in encoders if e in build.encoders], "scratch": str(scratch),
            "scratch_free_gb": round(shutil.disk_usage(scratch).free / 1e9, 1),
            "scratch_writable": os.access(scratch, os.W_OK), "memory_gb": round(memory.total / 1e9, 1),
            "memory_free_gb": round(memory.available / 1e9, 1), "cpus": os.cpu_count() or 1}


def inspect_cluster(settings: FarmConfig, encoders: list[str]) -> tuple[list[WorkerFacts], dict[str, str]]:
    """Every worker of the scheduler in ``settings`` as it reports itself, and those that could not, with why."""
    with open_cluster(settings) as client:
        facts = client.run(local_facts, os.path.abspath(settings.work_path()), encoders, on_error="return")
        workers = client.scheduler_info()["workers"]
    failed = {a: f"{type(f).__name__}: {f}" for a, f in facts.items() if isinstance(f, BaseException)}
    return [WorkerFacts(address=address, encode_slots=workers.get(address, {}).get("resources", {}).get(
        ENCODE_RESOURCE, 0), **facts[address]) for address in sorted(facts) if address not in failed], failed


def cluster_problems(workers: Sequence[WorkerFacts], failed: dict[str, str], client_ffmpeg: str,
                     client_encoders: list[str], scheduler: str) -> list[str]:
    """One line per reason the cluster cannot run onetake's work as this client would (empty: it can)."""
    if not workers and not failed:
        return [f"the scheduler at {scheduler} has no workers; start some with `dask worker {scheduler} "
                f"--resources {ENCODE_RESOURCE}=N`"]
    problems = [f"worker {address} cannot say what it has ({why}); install the same onetake there as here"
                for address, why in sorted(failed.items())]
    for w in workers:
        if w.ffmpeg != client_ffmpeg or w.encoders != client_encoders:
            problems.append(f"worker {w.address} ({w.host}) runs {w.ffmpeg or 'no ffmpeg'} at {w.ffmpeg_path}, this "
                            f"client {client_ffmpeg}: outputs must be bit-identical whichever worker makes them; "
                            f"install the same onetake and ffmpeg there (or the same ONETAKE_FFMPEG)")
        if not w.encode_slots:
            problems.append(f"worker {w.address} ({w.host}) has no '{ENCODE_RESOURCE}' slots and would never be "
                            f"given an encode; restart it with `dask worker {scheduler} --resources "
                            f"{ENCODE_RESOURCE}=N`")
        if not w.scratch_writable:
            problems.append(f"worker {w.address} ({w.host}) cannot write to {w.scratch}, where the farm's work dir "
                            f"is; mount the shared store there or fix its permissions")
    return problems
