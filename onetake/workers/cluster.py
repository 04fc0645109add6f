"""The farm a batch runs on: a Dask client on an existing scheduler, or an embedded LocalCluster sized by the farm
config, with the checked ffmpeg every worker runs."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..pipeline.config import FarmConfig
from ..pipeline.errors import ConfigError
from ..pipeline.models import JobPlan
from .capabilities import check_plans
from .executor import ENCODE_RESOURCE, DaskExecutor
from .ffmpeg import ffmpeg_version


@contextlib.contextmanager
def open_cluster(settings: FarmConfig) -> Iterator[Any]:
    """A Dask client: on an existing scheduler, or on an embedded LocalCluster that ends with the block."""
    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)
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
            yield DaskExecutor(client, on_progress=on_progress)
