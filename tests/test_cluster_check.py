"""`onetake cluster check` against a real `dask scheduler` and real `dask worker` processes on loopback: one
worker like the client, one whose ffmpeg says it is another version, one without encode slots."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_ffmpeg_choice import stand_in

DASK = Path(sys.executable).with_name("dask")


def onetake(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onetake.cli", *args], capture_output=True, text=True, timeout=180)


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "scheduler.json"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                    "--scheduler-file", str(self.file)])
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.processes.append(subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, start_new_session=True))

    def worker(self, name: str, slots: int, env: dict[str, str] | None = None, threads: int = 1) -> None:
        scratch = self.folder / name
        scratch.mkdir()
        resources = ["--resources", f"encode={slots}"] if slots else []
        self.start([str(DASK), "worker", self.address, "--name", name, "--nthreads", str(threads), "--no-nanny",
                    "--local-directory", str(scratch), *resources], env)

    def wait_for(self, count: int) -> None:
        import distributed

        with distributed.Client(self.address, timeout="30s") as client:
            client.wait_for_workers(count, timeout=60)

    def stop(self) -> None:
        for p in reversed(self.processes):
            os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10  # one bound for all: a worker whose scheduler went first may linger
        for p in self.processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    yield c
    c.stop()


def test_like_workers_are_ready_and_a_worker_with_another_ffmpeg_or_no_slots_is_refused(cluster: Cluster,
                                                                                         tmp_path: Path) -> None:
    cluster.worker("same", 2)
    cluster.wait_for(1)
    run = onetake("cluster", "check", "--scheduler", cluster.address)
    assert run.returncode == 0, run.stderr
    assert "slots     2 encode" in run.stdout and "libx264" in run.stdout and "GB free" in run.stdout
    assert "1 worker(s), 2 encode slot(s): ready" in run.stdout

    other = tmp_path / "other-ffmpeg"
    other.mkdir()
    cluster.worker("other", 1, env={"ONETAKE_FFMPEG": str(stand_in(other, "6.1.1"))})
    cluster.worker("slotless", 0)
    cluster.wait_for(3)
    run = onetake("cluster", "check", "--scheduler", cluster.address)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    refusals = run.stderr.strip().splitlines()
    assert len(refusals) == 2, refusals
    assert any("runs ffmpeg version 6.1.1" in line and "bit-identical" in line for line in refusals)
    assert any("has no 'encode' slots" in line and "--resources encode=N" in line for line in refusals)


def test_an_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "farm.toml"
    config.write_text("[farm]\nscheduler_timeout_s = 2\n", encoding="utf-8")
    run = onetake("cluster", "check", "--scheduler", "tcp://127.0.0.1:9", "--config", str(config))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("onetake: cannot reach the Dask scheduler at "
                                                          "tcp://127.0.0.1:9")


def test_workers_that_join_later_are_counted_and_give_heavy_tasks_slots(cluster: Cluster, tmp_path: Path) -> None:
    """A watcher is often started before the farm's workers: what joins later is seen (admission, slots)."""
    import distributed

    from onetake.pipeline.config import FarmConfig
    from onetake.pipeline.models import Task
    from onetake.pipeline.schedule import encode_slots, encode_workers
    from onetake.workers.executor import DaskExecutor

    cluster.worker("slotless", 0)
    cluster.wait_for(1)
    # the tasks looked at wait for this one, so that they stay on the scheduler with their restrictions
    endless = Task("endless/measure", "measure", {
        "argv": ["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "anullsrc", "-f", "null", "-"],
        "limits": FarmConfig().limits(3600), "cache": str(tmp_path / "loudness.json"),
        "programme_cache": str(tmp_path / "programme.json")})

    def restrictions(client: distributed.Client, key: str) -> dict[str, float] | None:
        def on_scheduler(dask_scheduler: Any) -> tuple[bool, dict[str, float] | None]:
            task = dask_scheduler.tasks.get(key)
            return task is not None, task.resource_restrictions if task is not None else None

        deadline = time.monotonic() + 10  # the client sends its graph to the scheduler in the background
        while not (seen := client.run_on_scheduler(on_scheduler))[0]:
            assert time.monotonic() < deadline, f"{key} never reached the scheduler"
            time.sleep(0.05)
        return seen[1]

    with distributed.Client(cluster.address, timeout="30s", set_as_default=False) as client:
        executor = DaskExecutor(client, workers_seen_for_s=0)
        assert (encode_workers(executor), encode_slots(executor), executor.encode_slots) == (1, 1, False)
        first = executor.submit(endless, [])
        before = executor.submit(Task("a/encode", "encode", {}, heavy=True), [first])
        assert restrictions(client, before.key) is None  # no slot to wait for: any thread runs it

        cluster.worker("four-slots", 4)
        cluster.worker("two-slots", 2)
        cluster.wait_for(3)
        after = executor.submit(Task("b/encode", "encode", {}, heavy=True), [first])  # it looks again by itself
        light = executor.submit(Task("b/verify", "verify", {}), [first])
        assert restrictions(client, after.key) == {"encode": 1}
        assert restrictions(client, light.key) is None
        assert (encode_workers(executor), encode_slots(executor)) == (2, 6)
        executor.close()
        executor.cancel([first, before, after, light])


def test_an_encode_queued_behind_a_busy_slot_moves_to_a_worker_with_a_free_one(cluster: Cluster,
                                                                               tmp_path: Path) -> None:
    """Two encodes wait on the only worker (one slot, two threads, as the systemd unit runs it); a second worker
    joins. Dask's work stealing would leave the queued encode where it is (no more tasks there than threads) until
    the first ends; onetake's balancer hands it to the new worker's free slot."""
    import distributed
    import psutil

    from onetake.pipeline.config import FarmConfig
    from onetake.pipeline.models import Task
    from onetake.workers.executor import SLOT_BALANCE_S, DaskExecutor

    seconds = 40.0
    marker = "size=162x122"  # the test's ffmpegs, among any others on the machine

    def encode(name: str) -> Task:
        return Task(f"{name}/encode", "encode", {
            "argv": ["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i",
                     f"testsrc2={marker}:rate=25:duration={seconds:g}", "-f", "null", "-"],
            "duration": seconds, "limits": FarmConfig().limits(seconds),
            "outputs": [{"key": name, "profile": "p", "partial": str(tmp_path / f"{name}.partial"),
                         "final": str(tmp_path / name)}]}, heavy=True)

    def running() -> int:
        return sum(1 for p in psutil.process_iter(["name", "cmdline"])
                   if (p.info["name"] or "").startswith("ffmpeg") and marker in " ".join(p.info["cmdline"] or []))

    cluster.worker("first", 1, threads=2)
    cluster.wait_for(1)
    with distributed.Client(cluster.address, timeout="30s", set_as_default=False) as client:
        executor = DaskExecutor(client)
        encodes = [executor.submit(encode(name), []) for name in ("one", "two")]
        deadline = time.monotonic() + 30
        while running() < 1:
            assert time.monotonic() < deadline, "the first encode never started"
            time.sleep(0.1)
        time.sleep(2 * SLOT_BALANCE_S)
        assert running() == 1  # one slot: the other encode waits on the same worker

        cluster.worker("joined", 1, threads=2)
        cluster.wait_for(2)
        joined = time.monotonic()
        while running() < 2:
            assert time.monotonic() - joined < 10 * SLOT_BALANCE_S, \
                "the queued encode stayed behind the busy slot while the new worker's slot was free"
            time.sleep(0.1)
        executor.close()
        executor.cancel(encodes)


def test_an_idle_client_prepares_a_restarted_scheduler_again(tmp_path: Path) -> None:
    """A watcher with nothing running loses no task when the scheduler restarts, so nothing tells it: the next look
    at the farm sees a new scheduler and gives it what the first one had (the balancer, the first estimates, the
    workers' plugin)."""
    from fault_farm import Farm, poll

    from onetake.workers.executor import SLOT_BALANCER, DaskExecutor

    def balancing(client: Any) -> bool:
        return client.run_on_scheduler(lambda dask_scheduler: SLOT_BALANCER in dask_scheduler.periodic_callbacks)

    farm = Farm(tmp_path / "farm", workers=0)
    try:
        client = farm.client()
        executor = DaskExecutor(client, workers_seen_for_s=0)
        assert balancing(client)
        farm.kill_scheduler()
        farm.start_scheduler()
        poll(lambda: client.status == "running" and executor.encode_worker_count(), 60,
             "the client never reached the restarted scheduler")
        assert balancing(client)
        client.close()
    finally:
        farm.stop()
