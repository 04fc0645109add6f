"""The Dask executor on a real LocalCluster with worker processes."""

from __future__ import annotations

import time

import psutil
import pytest
from conftest import ffmpeg, ffmpeg_among, make_clip
from distributed import Client, LocalCluster

from onetake.pipeline.config import FarmConfig
from onetake.pipeline.models import Task
from onetake.workers.executor import DaskExecutor


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, resources={"encode": 1},
                      dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"}) as cluster, \
            Client(cluster) as client:
        yield client


def _ffmpeg_children() -> list[psutil.Process]:
    return ffmpeg_among(psutil.Process().children(recursive=True))


def test_cancelling_a_running_task_stops_its_ffmpeg(client, tmp_path):
    executor = DaskExecutor(client)
    endless = Task("endless/measure", "measure", {
        "argv": ["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "null", "-"],
        "limits": FarmConfig().limits(3600), "cache": str(tmp_path / "loudness.json"),
        "programme_cache": str(tmp_path / "programme.json")})
    future = executor.submit(endless, [])
    deadline = time.monotonic() + 30
    while not _ffmpeg_children():
        assert time.monotonic() < deadline, "ffmpeg did not start"
        time.sleep(0.2)
    future.cancel()
    deadline = time.monotonic() + 20
    while _ffmpeg_children():
        assert time.monotonic() < deadline, "ffmpeg kept running after its task was cancelled"
        time.sleep(0.2)


def _worker_task_states(client) -> dict[str, str]:
    [states] = client.run(lambda dask_worker: {str(k): ts.state for k, ts in dask_worker.state.tasks.items()}).values()
    return states


def test_cancelling_a_running_analysis_stops_its_decode(client, tmp_path):
    """The analysis decodes in the worker's process (no child to kill): a cancelled one must stop by itself.
    Dask keeps a cancelled task on the worker until its function returns, so its leaving shows the decode ended."""
    make_clip(tmp_path / "ten.mp4", seconds=10, size="160x120", audio=None)
    source = tmp_path / "long.mp4"  # 300 s: several seconds of analysis, made in a moment by copying
    ffmpeg("-stream_loop", "29", "-i", str(tmp_path / "ten.mp4"), "-c", "copy", str(source))
    cache = tmp_path / "long.analysis.json"
    seen = []
    executor = DaskExecutor(client, on_progress=lambda task_id, fraction: seen.append(fraction))
    analysis = Task("long/analyze", "analyze", {"source": str(source), "cache": str(cache),
                                                "limits": FarmConfig().limits(300)})
    future = executor.submit(analysis, [])
    deadline = time.monotonic() + 30
    while not seen:
        assert time.monotonic() < deadline, "the analysis never reported progress"
        time.sleep(0.05)
    future.cancel()
    cancelled = time.monotonic()
    while future.key in _worker_task_states(client):
        assert time.monotonic() - cancelled < 20, "the analysis kept running after its task was cancelled"
        time.sleep(0.1)
    assert not cache.exists(), "the analysis ran to the end although its task was cancelled"
    assert max(seen) < 1.0


def test_progress_comes_back_from_the_worker(client, tmp_path):
    seen = []
    executor = DaskExecutor(client, on_progress=lambda task_id, fraction: seen.append((task_id, fraction)))
    short = Task("short/encode", "encode", {
        "argv": ["ffmpeg", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-f",
                 "null", "-"], "duration": 2.0, "limits": FarmConfig().limits(2),
        "outputs": [{"key": "k", "profile": "p", "partial": str(tmp_path / "k.partial"),
                     "final": str(tmp_path / "k")}]},
        heavy=True)
    [(handle, result, error)] = list(executor.completed([executor.submit(short, [])]))
    assert error is None and result["reused"] is False
    deadline = time.monotonic() + 10
    while not seen or seen[-1] != ("short/encode", 1.0):
        assert time.monotonic() < deadline, f"progress events: {seen}"
        time.sleep(0.1)


def test_encodes_waiting_for_the_slot_run_in_the_order_they_were_submitted(client, tmp_path):
    """A plan's order is what the worker follows (the analysis's stretches before the chunks, the longest chunk
    first): Dask alone ran tasks of equal priority submitted together last-submitted first."""
    executor = DaskExecutor(client)

    def encode(name: str, seconds: float, realtime: bool = False) -> Task:
        return Task(f"{name}/encode", "encode", {
            "argv": ["ffmpeg", "-nostdin", *(["-re"] if realtime else []), "-f", "lavfi", "-i",
                     f"testsrc2=size=64x48:rate=25:duration={seconds:g}", "-f", "null", "-"],
            "duration": seconds, "limits": FarmConfig().limits(seconds),
            "outputs": [{"key": name, "profile": "p", "partial": str(tmp_path / f"{name}.partial"),
                         "final": str(tmp_path / name)}]}, heavy=True)

    first = executor.submit(encode("holds-the-slot", 2.0, realtime=True), [])  # the others queue behind it
    names = ["stretch-0", "stretch-1", "chunk-long", "chunk-mid", "chunk-short"]
    queued = [executor.submit(encode(name, 0.2), []) for name in names]
    finished = [handle.task.id.split("/")[0] for handle, _, error in executor.completed([first, *queued])
                if error is None]
    assert finished == ["holds-the-slot", *names]
