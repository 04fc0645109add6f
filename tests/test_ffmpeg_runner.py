"""The ffmpeg runner with real child processes: errors carry argv/status/stderr; no child outlives a task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from conftest import ffmpeg_among

from onetake.pipeline.errors import EncodeError, TaskCancelled
from onetake.pipeline.config import FarmConfig
from onetake.workers.ffmpeg import ffmpeg_binary, forget_task, run_ffmpeg, stop_task

LIMITS = FarmConfig().limits(10)


def test_failure_carries_argv_status_and_stderr_tail(tmp_path):
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-i", "file:" + str(tmp_path / "missing.mp4"), "-f", "null", "-"]
    with pytest.raises(EncodeError) as err:
        run_ffmpeg(argv, LIMITS, what="encode")
    e = err.value
    assert e.returncode not in (0, None)
    assert e.argv[0] == ffmpeg_binary() and e.argv[-3:] == ["-f", "null", "-"]
    assert "No such file or directory" in e.stderr_tail
    assert str(e).startswith(f"encode failed (exit status {e.returncode}): ")


def test_progress_reaches_one(tmp_path):
    seen = []
    run_ffmpeg(["ffmpeg", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2",
                "-f", "null", "-"], LIMITS, duration=2.0, on_progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_a_stalled_ffmpeg_is_killed(tmp_path):
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(EncodeError, match="made no progress for 2 s and was stopped"):
        # reading a FIFO nobody writes to blocks forever: a real hang
        run_ffmpeg(["ffmpeg", "-nostdin", "-f", "s16le", "-i", "file:" + str(fifo), "-f", "null", "-"],
                   {"stall_timeout_s": 2, "timeout_s": 60})
    assert time.monotonic() - started < 30


def test_an_ffmpeg_past_its_hard_limit_is_killed():
    started = time.monotonic()
    with pytest.raises(EncodeError, match="ran past its limit of 2 s and was stopped"):
        run_ffmpeg(["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "null",
                    "-"], {"stall_timeout_s": 60, "timeout_s": 2})
    assert time.monotonic() - started < 15


ENDLESS = ["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "null", "-"]


def test_an_ffmpeg_started_after_its_task_was_stopped_is_killed_at_once():
    """A cancellation can land between ffmpeg's fork and its registration, or a task can start another ffmpeg
    after its first was killed: both must end at once, not run on unseen. The worker thread's Dask key is set
    by hand, as a Dask worker sets it, because that moment cannot be hit on purpose."""
    from distributed.worker import thread_state

    thread_state.key = "measure-endless-test"
    try:
        stop_task("measure-endless-test")
        started = time.monotonic()
        with pytest.raises(TaskCancelled, match="its task was cancelled"):
            run_ffmpeg(ENDLESS, {"stall_timeout_s": 60, "timeout_s": 30})
        assert time.monotonic() - started < 10
        assert not ffmpeg_among(psutil.Process().children(recursive=True))
    finally:
        del thread_state.key
        forget_task("measure-endless-test")


def test_a_killed_parent_takes_its_ffmpeg_with_it(tmp_path):
    """SIGKILL the process that runs ffmpeg (as a dying Dask worker would be): the child must go too."""
    script = textwrap.dedent("""
        from onetake.workers.ffmpeg import run_ffmpeg
        run_ffmpeg(["ffmpeg", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
                    "-f", "null", "-"], {"stall_timeout_s": 600})
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        children = []
        while time.monotonic() < deadline and not children:
            children = ffmpeg_among(psutil.Process(parent.pid).children(recursive=True))
            time.sleep(0.2)
        assert children, "ffmpeg did not start"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, "ffmpeg outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_busy_ffmpeg_that_reports_nothing_yet_is_not_a_stall(tmp_path):
    """ffmpeg prints -progress only after every output's first packet; a sprite sheet comes at the very end.
    The watchdog must see the work (CPU time, bytes read) and not kill a healthy encode."""
    from conftest import make_clip

    src = make_clip(tmp_path / "src.mp4", seconds=16, size="960x540", audio=None)
    seen = []
    started = time.monotonic()
    run_ffmpeg(["ffmpeg", "-nostdin", "-y", "-i", "file:" + str(src), "-filter_complex",
                "[0:v]split=2[a][b];[b]fps=1/5:round=up,scale=160:90,tile=10x10[sheet]", "-map", "[a]",
                "-c:v", "libx264", "-preset", "slow", "-f", "mp4", "file:" + str(tmp_path / "a.mp4"),
                "-map", "[sheet]", "-f", "image2", "-update", "1", "file:" + str(tmp_path / "sheet.jpg")],
               {"stall_timeout_s": 1.0, "timeout_s": 300}, duration=16, source=str(src), on_progress=seen.append)
    assert time.monotonic() - started > 2.5, "the encode was too quick to show anything"
    assert (tmp_path / "sheet.jpg").exists()
    assert len(seen) >= 3 and seen[0] < 1.0 and seen[-1] == 1.0
