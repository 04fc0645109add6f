"""Fault drills on a real farm: a `dask scheduler` and two `dask worker` processes (nanny, own scratch folder, one
encode slot each) on loopback, and `onetake run` against them as a user runs it (``fault_farm``).

Each drill ends with the same checks: the right output (one delivery per channel whose manifest's files are all
there, nothing else, each passing `onetake verify` and decoding for the full duration), the ledger's job
delivered once, no ffmpeg left that mentions the test's folder, and no partial or temporary file in the store.
The times measured (kill to redo, freeze to redo, stall to kill, cancel to no ffmpeg) are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import psutil
import pytest
from conftest import make_clip, sha256
from fault_farm import (
    FROZEN_BOUND_S,
    SILENT_S,
    WORKER_TTL_S,
    Farm,
    Run,
    busy_encode,
    command_lines,
    deliveries,
    farm_config,
    ffmpegs,
    gone,
    poll,
    signal_all,
    strays,
)

from onetake.pipeline.ledger import Ledger
from onetake.pipeline.probe import probe
from onetake.workers.verify import verify_file

CHANNEL, PROFILE, RATE = "edit", "edit-proxy", 25  # the cheapest channel: one 960x540 H.264 proxy
STALL_S = 5.0  # the drills' stall_timeout_s (the config's floor)


CLIPS: dict[float, Path] = {}  # by length: made once while the farm starts, linked into each drill's folder


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    farm = Farm(tmp_path_factory.mktemp("farm"))
    try:
        media = tmp_path_factory.mktemp("media")
        for seconds in (4, 6, 8):
            CLIPS[seconds] = make_clip(media / f"{seconds}s.mp4", seconds=seconds, size="640x360")
        farm.wait_for_workers()
        yield farm
    finally:
        farm.stop()


@pytest.fixture
def ready(farm: Farm) -> Farm:
    """The farm with every worker back (a drill before may have killed some)."""
    farm.wait_for_workers()
    return farm


def clip(folder: Path, name: str, seconds: float) -> Path:
    """A 640x360 25p clip with a tone, ``seconds`` long, as ``folder/name`` (a hard link: made once per length)."""
    path = folder / name
    if seconds in CLIPS:
        os.link(CLIPS[seconds], path)
        return path
    return make_clip(path, seconds=seconds, size="640x360")


def frames_of(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def assert_delivered_once(tmp_path: Path, out: Path, source: Path, seconds: float, summary: dict, catalog) -> Path:
    """``source`` delivered on the channel exactly once, right, and recorded so; the rendition delivered."""
    [outcome] = [s for s in summary["sources"] if s["source"] == str(source)]
    assert outcome["ok"], outcome
    folders = [f for f in deliveries(out, CHANNEL) if f.name == outcome["asset_id"]]
    assert len(folders) == 1 and len(deliveries(out, CHANNEL)) == sum(s["ok"] for s in summary["sources"])
    folder = folders[0]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    names = [f["path"] for f in manifest["files"]]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "manifest.json"]), "a file twice, or a stray"
    assert len(set(names)) == len(names)
    for f in manifest["files"]:
        assert sha256(folder / f["path"]) == f["sha256"], f["path"]
    assert manifest["checks"] and all(c["passed"] for c in manifest["checks"])
    proxy = folder / f"{PROFILE}.mp4"
    checks = verify_file(str(proxy), catalog.profile(PROFILE), probe(str(source)), catalog, True)
    assert all(c["passed"] for c in checks), [c for c in checks if not c["passed"]]
    assert frames_of(proxy) == round(seconds * RATE)
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        jobs = [j for j in ledger.list() if j.source == str(source)]
    assert [(j.kind, j.state, j.attempts, j.manifests) for j in jobs] == [
        ("run", "delivered", 1, (str(folder / "manifest.json"),))]
    return proxy


def assert_nothing_left(tmp_path: Path, out: Path) -> None:
    """No ffmpeg of this test's job runs on, and the store holds no partial or temporary file."""
    poll(lambda: not ffmpegs(tmp_path), 5, lambda: f"ffmpeg left running: {command_lines(ffmpegs(tmp_path))}")
    poll(lambda: not strays(out), 5, lambda: f"stray temporary files in the store: {strays(out)}")


@pytest.mark.heavy
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_dask_worker_stops_its_encode_and_the_encode_is_redone_elsewhere(ready, tmp_path, catalog, stop):
    """The `dask worker` itself (the nanny) stopped: SIGTERM, as `systemctl stop` sends, makes the nanny close its
    worker process; SIGKILL leaves the worker process to notice its parent is gone and exit."""
    source, out = clip(tmp_path, "stopped.mp4", 8), tmp_path / "out"
    run = Run(tmp_path, [source], ready, out, CHANNEL, farm_config(tmp_path))
    try:
        first = poll(lambda: busy_encode(tmp_path, PROFILE), 60, "no encode started")
        victim = ready.nanny_of(psutil.Process(first.ppid()))
        assert victim is not None
        ready.workers[victim].send_signal(stop)
        stopped = time.monotonic()
        poll(lambda: gone(first), 10, "the ffmpeg outlived its stopped worker")
        died = time.monotonic() - stopped
        second = poll(lambda: busy_encode(tmp_path, PROFILE, skip={first.pid}, cpu_s=0), 60,
                      "the encode was not redone")
        redone = time.monotonic() - stopped
        assert ready.nanny_of(psutil.Process(second.ppid())) not in (None, victim), "not redone on the other worker"
        code, summary, stderr = run.wait()
    finally:
        run.kill()
    print(f"\n{stop.name} of a `dask worker`: its ffmpeg gone after {died:.2f} s, the encode redone after "
          f"{redone:.2f} s")
    assert code == 0, stderr
    assert_delivered_once(tmp_path, out, source, 8, summary, catalog)
    assert_nothing_left(tmp_path, out)


@pytest.mark.parametrize("chunked", [pytest.param(False, marks=pytest.mark.heavy), True],
                         ids=["encode", "chunk"])
def test_a_worker_killed_mid_encode_takes_its_ffmpeg_along_and_the_encode_is_redone_elsewhere(ready, tmp_path,
                                                                                               catalog, chunked):
    """The worker running an encode is killed. Chunked (a 12 s programme in 4 s chunks), the chunk it was making is
    made again by another worker process, the join gets every chunk once, and no chunk is left in the store."""
    seconds = 12 if chunked else 6
    source, out = clip(tmp_path, "killed.mp4", seconds), tmp_path / "out"
    config = farm_config(tmp_path, chunk_min_s=10, chunk_s=4) if chunked else farm_config(tmp_path)
    marker = "/chunks/" if chunked else PROFILE  # a chunk's output is in the store's chunks folder
    run = Run(tmp_path, [source], ready, out, CHANNEL, config)
    try:
        first = poll(lambda: busy_encode(tmp_path, marker), 60, "no encode started")
        made = next(a for a in first.cmdline() if marker in a)  # the chunk (or rendition) it was making
        worker = psutil.Process(first.ppid())
        victim = ready.nanny_of(worker)
        # the ffmpeg is a child of the worker process its nanny forked, not of the `dask worker` itself
        assert victim is not None and worker.pid != ready.workers[victim].pid
        worker.kill()
        killed = time.monotonic()
        poll(lambda: gone(first), 5, "the ffmpeg outlived its worker")
        died = time.monotonic() - killed
        second = poll(lambda: next((p for p in ffmpegs(tmp_path) if p.pid != first.pid and made in p.cmdline()),
                                   None), 60, "the encode was not redone")
        redone = time.monotonic() - killed
        # by the other worker, or by the worker process the victim's nanny started in place of the killed one
        # (which of them is free first depends on what else the farm is doing)
        redoer = psutil.Process(second.ppid())
        assert redoer.pid != worker.pid and ready.nanny_of(redoer) is not None, "not redone by a farm worker"
        code, summary, stderr = run.wait()
    finally:
        run.kill()
    print(f"\nkill -9 of the worker mid-{'chunk' if chunked else 'encode'}: its ffmpeg gone after {died:.2f} s, "
          f"redone after {redone:.2f} s by {'the other worker' if ready.nanny_of(redoer) != victim else 'its restart'}")
    assert code == 0, stderr
    assert_delivered_once(tmp_path, out, source, seconds, summary, catalog)
    assert_nothing_left(tmp_path, out)
    assert not [p for p in (out / ".onetake" / "chunks").rglob("*") if not p.name.endswith(".lock")], \
        "chunks left in the store after the join"


def test_a_frozen_worker_is_stopped_within_the_bound_and_its_encode_redone_elsewhere(ready, tmp_path, catalog):
    source, out = clip(tmp_path, "frozen.mp4", 6), tmp_path / "out"
    run = Run(tmp_path, [source], ready, out, CHANNEL, farm_config(tmp_path))
    frozen: list[psutil.Process] = []
    try:
        first = poll(lambda: busy_encode(tmp_path, PROFILE), 60, "no encode started")
        worker = psutil.Process(first.ppid())
        victim = ready.nanny_of(worker)
        frozen = [worker, first]  # the whole worker frozen mid-encode, its ffmpeg too: only a redo can finish it
        signal_all(frozen, signal.SIGSTOP)
        stopped = time.monotonic()
        second = poll(lambda: busy_encode(tmp_path, PROFILE, skip={first.pid}, cpu_s=0), FROZEN_BOUND_S + 30,
                      "the frozen worker's encode was not redone")
        redone = time.monotonic() - stopped
        assert ready.nanny_of(psutil.Process(second.ppid())) not in (None, victim), "not redone on the other worker"
        # the scheduler gave up on it and its nanny killed it (SIGKILL ends a stopped process), its ffmpeg with it:
        # whatever it was doing can never come back as a late result
        poll(lambda: gone(worker) and gone(first), 5, "the frozen worker or its ffmpeg is still there")
        signal_all(frozen, signal.SIGCONT)  # a late wake-up finds nothing to wake
        code, summary, stderr = run.wait()
    finally:
        signal_all(frozen, signal.SIGCONT)
        run.kill()
    print(f"\nSIGSTOP of the worker (worker-ttl {WORKER_TTL_S:g} s): its encode redone after {redone:.2f} s "
          f"(bound {FROZEN_BOUND_S:g} s)")
    assert SILENT_S - 1 <= redone <= FROZEN_BOUND_S + 3  # a heartbeat before the freeze; noise on a busy machine
    assert code == 0, stderr
    assert_delivered_once(tmp_path, out, source, 6, summary, catalog)
    assert_nothing_left(tmp_path, out)


def hang(tmp_path: Path, run: Run, hangs: Callable[[int], bool]) -> tuple[list[int], list[float]]:
    """Stop (SIGSTOP) the encodes of ``run`` for which ``hangs(n)`` holds, n counting them from 1, until the run
    ends; every encode's pid, and how long each stopped one hung before the watchdog killed it."""
    started: list[int] = []
    hung: dict[int, tuple[psutil.Process, float]] = {}
    hung_for: dict[int, float] = {}
    try:
        while run.process.poll() is None:
            ffmpeg = busy_encode(tmp_path, PROFILE, skip=started, cpu_s=0.2)
            if ffmpeg is not None:
                started.append(ffmpeg.pid)
                if hangs(len(started)):
                    ffmpeg.send_signal(signal.SIGSTOP)
                    hung[ffmpeg.pid] = (ffmpeg, time.monotonic())
            for pid, (ffmpeg, since) in hung.items():
                if pid not in hung_for and gone(ffmpeg):
                    hung_for[pid] = time.monotonic() - since
            time.sleep(0.05)
    finally:
        signal_all([p for p, _ in hung.values()], signal.SIGCONT)
    assert sorted(hung_for) == sorted(hung), "a hung ffmpeg was not killed"
    print(f"\nhung ffmpeg (stall_timeout_s {STALL_S:g}): killed after "
          f"{', '.join(f'{t:.2f}' for t in hung_for.values())} s")
    assert all(STALL_S - 0.5 <= t <= STALL_S + 3 for t in hung_for.values())  # its 1 s checks; a busy machine
    return started, list(hung_for.values())


def test_a_hung_ffmpeg_is_killed_by_the_watchdog_and_its_retry_delivers(ready, tmp_path, catalog):
    """A stopped ffmpeg stands for one blocked on a dead mount: no CPU, no progress, which is all the watchdog can
    see of either. The first try hangs; the retry goes through."""
    source, out = clip(tmp_path, "hung.mp4", 6), tmp_path / "out"
    run = Run(tmp_path, [source], ready, out, CHANNEL, farm_config(tmp_path, stall_timeout_s=STALL_S, stall_retries=1))
    try:
        started, _ = hang(tmp_path, run, lambda n: n == 1)
        code, summary, stderr = run.wait()
    finally:
        run.kill()
    assert len(started) == 2, "the hung encode was not tried again"
    assert code == 0, stderr
    assert_delivered_once(tmp_path, out, source, 6, summary, catalog)
    assert_nothing_left(tmp_path, out)


@pytest.mark.heavy
def test_an_ffmpeg_that_hangs_on_every_try_fails_its_channel_with_one_line(ready, tmp_path):
    source, out = clip(tmp_path, "stuck.mp4", 8), tmp_path / "out"
    run = Run(tmp_path, [source], ready, out, CHANNEL, farm_config(tmp_path, stall_timeout_s=STALL_S, stall_retries=1))
    try:
        started, _ = hang(tmp_path, run, lambda n: True)
        code, summary, stderr = run.wait()
    finally:
        run.kill()
    assert len(started) == 2 and code == 1
    [failed] = summary["sources"]
    assert failed["channels"][0]["error_type"] == "EncodeStalled"
    lines = stderr.strip().splitlines()
    assert lines == [f"FAILED {source}: {CHANNEL}: encode made no progress for {STALL_S:g} s and was stopped, on each "
                     f"of 2 tries (no exit status): {lines[0].rsplit(': ', 1)[-1]}"], stderr
    assert not deliveries(out, CHANNEL)
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        [job] = ledger.list()
    assert job.state == "failed" and "made no progress" in job.error
    assert_nothing_left(tmp_path, out)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_cancelled_run_leaves_no_ffmpeg_within_a_second_and_delivers_nothing(ready, tmp_path, stop):
    source, out = clip(tmp_path, "cancelled.mp4", 6), tmp_path / "out"
    run = Run(tmp_path, [source], ready, out, CHANNEL, farm_config(tmp_path))
    try:
        poll(lambda: busy_encode(tmp_path, PROFILE), 60, "no encode started")
        run.process.send_signal(stop)
        sent = time.monotonic()
        poll(lambda: not ffmpegs(tmp_path), 10, "ffmpeg kept running after the run was stopped", every=0.01)
        cancelled = time.monotonic() - sent
        code, summary, stderr = run.wait()
    finally:
        run.kill()
    print(f"\n{stop.name} to `onetake run`: no ffmpeg of the job after {cancelled:.3f} s")
    assert cancelled < 1.0
    assert code == 130 and summary is None  # SIGTERM is taken as Ctrl-C
    assert stderr.strip().splitlines() == ["onetake: interrupted"]
    assert not deliveries(out, CHANNEL)
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        [job] = ledger.list()
    assert job.state == "failed" and job.error.startswith("interrupted")
    assert_nothing_left(tmp_path, out)


def test_a_restarted_scheduler_gets_the_unfinished_work_again_and_finished_renditions_are_reused(ready, tmp_path,
                                                                                                  catalog):
    short, long, out = clip(tmp_path, "short.mp4", 4), clip(tmp_path, "long.mp4", 8), tmp_path / "out"
    run = Run(tmp_path, [short, long], ready, out, CHANNEL, farm_config(tmp_path, scheduler_timeout_s=60))
    renditions = out / ".onetake" / "renditions"

    def short_made_long_encoding() -> tuple[Path, psutil.Process] | None:
        made = [p for p in renditions.glob(f"*/{PROFILE}.mp4") if not p.parent.name.endswith(".partial")]
        encoding = busy_encode(tmp_path, "/long.mp4")
        return (made[0], encoding) if made and encoding else None

    try:
        finished, first = poll(short_made_long_encoding, 60, "no moment with the short source's rendition made "
                                                            "and the long one's being encoded")
        before = finished.stat()
        ready.kill_scheduler()
        lost = time.monotonic()
        poll(lambda: gone(first), 10, "the long source's ffmpeg outlived its worker")
        time.sleep(1.0)  # systemd's RestartSec for the scheduler
        ready.start_scheduler()
        second = poll(lambda: busy_encode(tmp_path, "/long.mp4", skip={first.pid}, cpu_s=0), 90,
                      "the long source's encode was not submitted again")
        resumed = time.monotonic() - lost
        code, summary, stderr = run.wait()
    finally:
        run.kill()
    print(f"\nscheduler killed and restarted after 1 s: the lost encode running again after {resumed:.2f} s")
    assert code == 0, stderr
    assert "Traceback" not in stderr and not stderr.strip(), stderr
    after = finished.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "a finished rendition was redone"
    assert_delivered_once(tmp_path, out, short, 4, summary, catalog)
    assert_delivered_once(tmp_path, out, long, 8, summary, catalog)
    assert second.pid != first.pid
    assert_nothing_left(tmp_path, out)


def test_a_scheduler_that_does_not_come_back_fails_the_run_with_one_line(ready, tmp_path):
    source, out = clip(tmp_path, "orphaned.mp4", 6), tmp_path / "out"
    run = Run(tmp_path, [source], ready, out, CHANNEL, farm_config(tmp_path, scheduler_timeout_s=2))
    try:
        poll(lambda: busy_encode(tmp_path, PROFILE), 60, "no encode started")
        ready.kill_scheduler()
        code, summary, stderr = run.wait(60)
    finally:
        run.kill()
        ready.start_scheduler()
    assert code == 1 and summary is not None and not summary["ok"]
    assert stderr.strip().splitlines() == [
        f"FAILED {source}: {CHANNEL}: lost the Dask scheduler at {ready.address} and could not reach it again within "
        f"2 s (scheduler_timeout_s); renditions already made are kept, and running the same command again reuses "
        f"them"]
    assert not deliveries(out, CHANNEL)
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        [job] = ledger.list()
    assert job.state == "failed" and "lost the Dask scheduler" in job.error
    assert_nothing_left(tmp_path, out)


@pytest.mark.heavy
def test_a_frozen_worker_without_a_nanny_wakes_too_late_and_its_result_is_ignored(tmp_path, catalog):
    """Without a nanny nothing stops a frozen worker: the scheduler drops it after the same silence and gives its
    encode to the other worker, which waits on the lock the frozen one still holds on the rendition. Woken
    (SIGCONT), the frozen worker goes on; its result goes to a scheduler that dropped it and is ignored, and the
    worker closes itself. The rendition is the same bytes whoever makes it: there is still one delivery."""
    farm = Farm(tmp_path / "farm", nanny=False)
    frozen: list[psutil.Process] = []
    try:
        farm.wait_for_workers()
        source, out = clip(tmp_path, "late.mp4", 8), tmp_path / "out"
        run = Run(tmp_path, [source], farm, out, CHANNEL, farm_config(tmp_path))
        try:
            first = poll(lambda: busy_encode(tmp_path, PROFILE), 60, "no encode started")
            worker = psutil.Process(first.ppid())
            victim = farm.nanny_of(worker)
            assert victim is not None and worker.pid == farm.workers[victim].pid  # no nanny: ffmpeg's parent
            frozen = [worker, first]
            signal_all(frozen, signal.SIGSTOP)
            stopped = time.monotonic()
            with farm.client() as client:
                names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
                poll(lambda: any(names.get(a) not in (None, victim) and any(str(k).startswith("encode-") for k in keys)
                                 for a, keys in client.processing().items()), FROZEN_BOUND_S + 30,
                     "the frozen worker's encode was not given to the other worker")
            given = time.monotonic() - stopped
            signal_all(frozen, signal.SIGCONT)
            code, summary, stderr = run.wait()
            poll(lambda: gone(worker), 30, "the woken worker did not close itself")
        finally:
            run.kill()
    finally:
        signal_all(frozen, signal.SIGCONT)
        farm.stop()
    print(f"\nSIGSTOP of a worker without a nanny: its encode given to the other worker after {given:.2f} s")
    assert given <= SILENT_S + WORKER_TTL_S + 3
    assert code == 0, stderr
    assert_delivered_once(tmp_path, out, source, 8, summary, catalog)
    assert_nothing_left(tmp_path, out)


@pytest.mark.heavy
def test_a_job_cancelled_in_the_watcher_leaves_no_ffmpeg_within_a_second(ready, tmp_path):
    inbox, out, ledger = tmp_path / "inbox", tmp_path / "out", tmp_path / "jobs.sqlite"
    inbox.mkdir()
    with open(tmp_path / "watch.stderr", "wb") as log:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "onetake.cli", "watch", str(inbox), "--out", str(out), "--channels", CHANNEL,
             "--scheduler", ready.address, "--ledger", str(ledger), "--settle", "0.2", "--poll", "0.2"],
            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    try:
        clip(tmp_path, "dropped.mp4", 8).rename(inbox / "dropped.mp4")
        poll(lambda: busy_encode(tmp_path, PROFILE), 60, "no encode started")
        with Ledger(ledger) as jobs:  # what `onetake jobs cancel` and the desk's Cancel do
            [job] = jobs.list()
            jobs.cancel(job.id)
        asked = time.monotonic()
        poll(lambda: not ffmpegs(tmp_path), 10, "ffmpeg kept running after its job was cancelled", every=0.01)
        cancelled = time.monotonic() - asked
        poll(lambda: (inbox / "failed" / "dropped.mp4").exists(), 10, "the cancelled file was not moved to failed/")
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(60) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    print(f"\na running watch job cancelled in the ledger: no ffmpeg of it after {cancelled:.3f} s")
    assert cancelled < 1.0
    with Ledger(ledger) as jobs:
        assert [j.state for j in jobs.list()] == ["cancelled"]
    assert not deliveries(out, CHANNEL)
    assert_nothing_left(tmp_path, out)
