"""The analyze task keeps to its time limits and stops when its Dask task is cancelled (the decode runs in the
worker's own process, so it is stopped between packets, not killed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import make_clip
from distributed.worker import thread_state

from onetake.pipeline.config import FarmConfig
from onetake.pipeline.errors import SourceError, TaskCancelled
from onetake.workers import ffmpeg
from onetake.workers.ffmpeg import stop_task
from onetake.workers.tasks import run_task


def _params(source: Path, cache: Path, **limits: float) -> dict:
    return {"source": str(source), "cache": str(cache), "limits": {**FarmConfig().limits(10), **limits}}


def test_an_analysis_past_its_time_limit_stops_with_one_clear_error(tmp_path):
    source = make_clip(tmp_path / "clip.mp4", seconds=2, size="160x120")
    cache = tmp_path / "clip.analysis.json"
    seen: list[float] = []
    with pytest.raises(SourceError) as caught:
        run_task("analyze", _params(source, cache, timeout_s=0.001), [], seen.append)
    message = str(caught.value)
    assert message.startswith(f"{source}: its analysis ran past its limit of 0.001 s and was stopped")
    assert "raise timeout_factor in [farm]" in message
    assert seen == [] and not cache.exists() and not list(tmp_path.glob("*.partial"))


def test_an_analysis_that_reports_without_advancing_past_the_stall_limit_stops(tmp_path):
    # reports come every second of the source and every few packets between: with no stall allowed at all, the
    # first report that does not advance is a stall
    source = make_clip(tmp_path / "clip.mp4", seconds=2, size="160x120", audio=None)
    cache = tmp_path / "clip.analysis.json"
    with pytest.raises(SourceError, match=r"its analysis made no progress for 0 s and was stopped; raise "
                                          r"stall_timeout_s in \[farm\]") as caught:
        run_task("analyze", _params(source, cache, stall_timeout_s=0.0), [], None)
    assert str(caught.value).startswith(str(source)) and not cache.exists()


def test_the_analysis_reports_often_enough_to_be_stopped(tmp_path):
    source = make_clip(tmp_path / "clip.mp4", seconds=4, size="160x120", audio=None)
    seen: list[float] = []
    result = run_task("analyze", _params(source, tmp_path / "a.json"), [], seen.append)
    assert result["reused"] is False and seen[-1] == 1.0
    assert len(seen) >= 4 and seen == sorted(seen)  # at least once a second of the source, never backwards


def test_a_stopped_task_key_stops_its_analysis_at_the_next_packet(tmp_path):
    source = make_clip(tmp_path / "clip.mp4", seconds=4, size="160x120")
    cache = tmp_path / "clip.analysis.json"
    key = "analyze-fake-key"
    reporting, stopped = threading.Event(), threading.Event()
    seen: list[float] = []
    outcome: list[BaseException | None] = []

    def report(fraction: float) -> None:
        seen.append(fraction)
        reporting.set()
        assert stopped.wait(10)  # hold the decode until the stop was asked for

    def worker() -> None:
        thread_state.key = key  # what a Dask worker sets in the thread that runs the task
        try:
            run_task("analyze", _params(source, cache), [], report)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)
        finally:
            del thread_state.key

    thread = threading.Thread(target=worker)
    thread.start()
    assert reporting.wait(10), "the analysis never reported"
    assert key in ffmpeg._STOPS
    stop_task(key)
    asked = time.monotonic()
    stopped.set()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - asked < 2
    [error] = outcome
    assert isinstance(error, TaskCancelled) and str(source) in str(error)
    assert max(seen) < 1.0 and not cache.exists()
    assert key not in ffmpeg._STOPS  # nothing left behind for the next task


def test_stopping_a_key_that_runs_nothing_does_nothing():
    stop_task("never-started")
    assert "never-started" not in ffmpeg._STOPS
