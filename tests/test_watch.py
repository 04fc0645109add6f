"""`onetake watch` as a real subprocess: real files written by a separate writer, real Dask workers and
ffmpeg, real SIGKILL and SIGTERM, the real SQLite ledger read back.

Every clip is 160x90 25p with a stereo tone and the watchers make only the `edit` channel (no loudness pass),
so one job takes about a second; settle times are 0.3 s and polls 0.1 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from conftest import ffmpeg_among, make_clip, sha256
from onetake.pipeline.ledger import Ledger

pytestmark = pytest.mark.timeout(240)

SETTLE = 0.3
CHUNK_WRITER = """
import sys, time
src, dest, chunks, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
data = open(src, "rb").read()
step = len(data) // chunks + 1
with open(dest, "wb") as f:
    for n in range(0, len(data), step):
        f.write(data[n:n + step])
        f.flush()
        time.sleep(pause)
"""


@dataclass
class Watcher:
    proc: subprocess.Popen
    log: Path
    ledger: Path
    seen: set[psutil.Process] = field(default_factory=set)

    def descendants(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(kids)
        return kids

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def jobs(self) -> list:
        with Ledger(self.ledger) as ledger:
            return ledger.list()

    def wait_ready(self) -> None:
        wait_for(lambda: "watching " in self.text(), 90, lambda: self.text())


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    made = {f"c{n}": make_clip(folder / f"c{n}.mp4", size="160x90", seconds=1, rate="25",
                               video_args=(), output_args=("-metadata", f"comment=clip {n}")) for n in range(16)}
    made["long"] = make_clip(folder / "long.mp4", size="160x90", seconds=40)
    made["long2"] = make_clip(folder / "long2.mp4", size="160x90", seconds=41)
    return made


@pytest.fixture
def watchers(tmp_path) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(*args: str, ledger: Path | None = None, name: str = "w") -> Watcher:
        ledger = ledger or tmp_path / "jobs.sqlite"
        log = tmp_path / f"{name}-{len(started)}.log"
        argv = [sys.executable, "-m", "onetake.cli", "watch", *args, "--settle", str(SETTLE), "--poll", "0.1",
                "--workers", "1", "--ledger", str(ledger)]
        if "--channels" not in args and "--config" not in args:
            argv += ["--channels", "edit"]
        with open(log, "w") as stderr:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        watcher = Watcher(proc, log, ledger)
        started.append(watcher)
        return watcher

    yield start
    for w in started:  # nothing outlives a test: the watcher, its Dask workers, their ffmpeg
        w.descendants()
        for p in [*w.seen, psutil.Process(w.proc.pid) if w.proc.poll() is None else None]:
            if p is not None:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
        w.proc.wait(timeout=30)
        psutil.wait_procs([p for p in w.seen], timeout=30)
        assert not [p for p in w.seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def wait_for(condition: Callable[[], object], timeout: float, explain: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s\n{explain()}")
        time.sleep(0.05)


def drop(src: Path, inbox: Path, name: str | None = None) -> Path:
    """Copy to a hidden temp name and rename into place: how a careful sender drops a whole file."""
    target = inbox / (name or src.name)
    temp = inbox / f".{target.name}.part"
    shutil.copy(src, temp)
    os.rename(temp, target)
    return target


def inbox(tmp_path: Path, name: str = "in") -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    return folder


def delivered_names(jobs: list) -> list[str]:
    return sorted(Path(j.source).name for j in jobs if j.state == "delivered")


def stop(w: Watcher, timeout: float = 60) -> int:
    w.proc.send_signal(signal.SIGTERM)
    return w.proc.wait(timeout=timeout)


def ffmpeg_running(w: Watcher) -> bool:
    return bool(ffmpeg_among(w.descendants()))


# ------------------------------------------------------------------------------------------------ ingest contract


def test_a_file_still_being_written_is_not_taken(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    w = watchers(str(box), "--out", str(tmp_path / "out"))
    w.wait_ready()
    target = box / "slow.mp4"
    # 12 chunks, a pause of 0.2 s (less than the 0.3 s settle time) after each
    writer = subprocess.Popen([sys.executable, "-c", CHUNK_WRITER, str(clips["c1"]), str(target), "12", "0.2"])
    while writer.poll() is None:
        assert target.exists() or not (box / "processing" / "slow.mp4").exists(), "taken while being written"
        assert not list((box / "failed").iterdir()), w.text()
        time.sleep(0.02)
    finished = time.time()
    assert writer.returncode == 0
    wait_for(lambda: delivered_names(w.jobs()) == ["slow.mp4"], 60, w.text)
    [job] = w.jobs()
    assert job.stable_at >= finished - 0.05 and job.attempts == 1
    assert sha256(box / "done" / "slow.mp4") == sha256(clips["c1"])  # the whole file, untouched
    manifest = json.loads(Path(job.manifests[0]).read_text())
    assert manifest["source"]["sha256"] == sha256(clips["c1"])
    assert stop(w) == 0


def test_done_marker_and_checksum_contracts(tmp_path, clips, watchers):
    marked, summed = inbox(tmp_path, "marked"), inbox(tmp_path, "summed")
    config = tmp_path / "watch.toml"
    config.write_text(f"""
[farm]
out = "{tmp_path / 'out'}"
channels = ["edit"]

[watch]
events = false  # polling alone, as on a network share where no events arrive

[[inbox]]
path = "{marked}"
require = "done"

[[inbox]]
path = "{summed}"
require = "checksum"
lane = "urgent"
""")
    w = watchers("--config", str(config))
    w.wait_ready()
    drop(clips["c1"], marked, "a.mp4")
    drop(clips["c2"], summed, "b.mp4")
    drop(clips["c3"], summed, "bad.mp4")
    (summed / "bad.mp4.sha256").write_text("0" * 64 + "  bad.mp4\n")
    time.sleep(SETTLE * 6)
    assert (marked / "a.mp4").exists() and (summed / "b.mp4").exists(), "taken without its marker"
    (marked / "a.mp4.done").write_text("")
    (summed / "b.mp4.sha256").write_text(f"{sha256(clips['c2'])}  b.mp4\n")
    wait_for(lambda: delivered_names(w.jobs()) == ["a.mp4", "b.mp4"] and len(w.jobs()) == 3, 60, w.text)
    assert (marked / "done" / "a.mp4.done").exists() and (summed / "done" / "b.mp4.sha256").exists()
    [bad] = [j for j in w.jobs() if j.state == "failed"]
    assert "SHA-256" in bad.error and "send the file again" in bad.error
    assert "SHA-256" in (summed / "failed" / "bad.mp4.error.txt").read_text()
    assert {j.lane for j in w.jobs() if Path(j.source).parent == summed} == {"urgent"}
    assert stop(w) == 0


def test_two_watchers_on_one_inbox_take_each_file_once(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    out = tmp_path / "out"
    first = watchers(str(box), "--out", str(out), ledger=tmp_path / "one.sqlite", name="one")
    second = watchers(str(box), "--out", str(out), ledger=tmp_path / "two.sqlite", name="two")
    first.wait_ready()
    second.wait_ready()
    names = [f"f{n}.mp4" for n in range(8)]
    for n, name in enumerate(names):
        drop(clips[f"c{n}"], box, name)

    def jobs() -> list:
        return first.jobs() + second.jobs()

    wait_for(lambda: len([j for j in jobs() if j.state == "delivered"]) == 8, 120,
             lambda: first.text() + second.text())
    assert sorted(Path(j.source).name for j in jobs()) == names, first.text() + second.text()  # each once
    assert sorted(p.name for p in (box / "done").iterdir()) == names
    assert len(list((out / "edit").iterdir())) == 8
    assert stop(first) == 0 and stop(second) == 0


def test_poison_files_and_bad_sidecars_fail_alone(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    w = watchers(str(box), "--out", str(tmp_path / "out"))
    w.wait_ready()
    (box / "poison.mov").write_bytes(os.urandom(50_000))
    truncated = clips["c1"].read_bytes()
    (box / "truncated.mp4").write_bytes(truncated[: len(truncated) // 2])
    (box / "keys.mp4.json").write_text(json.dumps({"title": "Flood", "titel": "typo"}))
    drop(clips["c2"], box, "keys.mp4")
    (box / "good.json").write_text(json.dumps({"title": "Council vote", "programme": "Evening News",
                                               "air_date": "2026-11-26", "asset_id": "EN-2026-1126-04"}))
    drop(clips["c3"], box, "good.mp4")
    wait_for(lambda: len(w.jobs()) == 4 and all(j.state in ("delivered", "failed") for j in w.jobs()), 60, w.text)
    states = {Path(j.source).name: j for j in w.jobs()}
    assert states["good.mp4"].state == "delivered"
    manifest = json.loads(Path(states["good.mp4"].manifests[0]).read_text())
    assert manifest["metadata"]["programme"] == "Evening News"
    assert manifest["metadata"]["asset_id"] == "EN-2026-1126-04"
    for name in ("poison.mov", "truncated.mp4", "keys.mp4"):
        assert states[name].state == "failed"
        error = (box / "failed" / f"{name}.error.txt").read_text()
        assert "\n" not in states[name].error and f"onetake jobs retry {states[name].id}" in error
    assert "unknown key 'titel'" in states["keys.mp4"].error and "keys.mp4.json" in states["keys.mp4"].error
    assert (box / "failed" / "keys.mp4.json").exists()
    assert "truncated" in states["truncated.mp4"].error
    assert sorted(p.name for p in (box / "done").iterdir()) == ["good.json", "good.mp4"]
    assert not list((box / "processing").iterdir())
    # the operator puts a good file in place of the poison one and retries the job: same id, second attempt
    shutil.copy(clips["c4"], box / "failed" / "poison.mov")
    retry = subprocess.run([sys.executable, "-m", "onetake.cli", "jobs", "retry", str(states["poison.mov"].id),
                            "--ledger", str(w.ledger)], capture_output=True, text=True, timeout=60)
    assert retry.returncode == 0, retry.stderr
    with Ledger(w.ledger) as ledger:
        # the ledger says delivered, then the watcher moves the file to done/ and records where it went
        wait_for(lambda: Path(ledger.get(states["poison.mov"].id).path).parent.name == "done", 60, w.text)
        job = ledger.get(states["poison.mov"].id)
    assert job.state == "delivered" and job.attempts == 2 and Path(job.path) == box / "done" / "poison.mov"
    assert not (box / "failed" / "poison.mov.error.txt").exists()
    assert stop(w) == 0


# ------------------------------------------------------------------------------------------------ restarts


def test_sigkill_mid_encode_then_restart_resumes_the_job(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    out = tmp_path / "out"
    w = watchers(str(box), "--out", str(out))
    w.wait_ready()
    drop(clips["long"], box)
    wait_for(lambda: ffmpeg_running(w), 60, w.text)
    w.proc.send_signal(signal.SIGKILL)
    w.proc.wait(timeout=10)
    [job] = w.jobs()
    assert job.state == "running" and (box / "processing" / "long.mp4").exists()
    # Dask's worker processes notice their parent is gone and end, and ffmpeg dies with its worker
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in w.seen), 30)
    again = watchers(str(box), "--out", str(out))
    wait_for(lambda: again.jobs()[0].state == "delivered", 120, again.text)
    # the watcher records the source's move to done/ just after the delivery
    wait_for(lambda: Path(again.jobs()[0].path).parent.name == "done", 60, again.text)
    [job] = again.jobs()
    assert job.attempts == 2 and Path(job.path) == box / "done" / "long.mp4"
    assert "resuming job 1" in again.text()
    assert len(list((out / "edit").iterdir())) == 1
    assert not list((box / "processing").iterdir())
    assert stop(again) == 0


def test_ctrl_c_drains_and_a_second_signal_stops_at_once(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    out = tmp_path / "out"
    w = watchers(str(box), "--out", str(out))
    w.wait_ready()
    drop(clips["long"], box)
    wait_for(lambda: ffmpeg_running(w), 60, w.text)
    os.killpg(w.proc.pid, signal.SIGINT)  # Ctrl-C on a terminal: the whole process group, Dask workers included
    time.sleep(0.5)
    drop(clips["long2"], box, "late.mp4")  # arrives while draining: left for the next start
    assert w.proc.wait(timeout=120) == 0, w.text()
    assert [(j.state, Path(j.source).name) for j in w.jobs()] == [("delivered", "long.mp4")]
    assert (box / "late.mp4").exists() and "drained" in w.text()

    second = watchers(str(box), "--out", str(out))
    wait_for(lambda: any(j.state == "running" for j in second.jobs()), 60, second.text)
    wait_for(lambda: ffmpeg_running(second), 30, second.text)
    stopped = time.monotonic()
    second.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(timeout=60) == 1
    assert time.monotonic() - stopped < 30
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in second.seen), 30)
    late = [j for j in second.jobs() if Path(j.source).name == "late.mp4"]
    assert [j.state for j in late] == ["queued"]  # back in the queue, its file still claimed in processing/
    assert (box / "processing" / "late.mp4").exists()
    assert not any(j.state == "running" for j in second.jobs())


# ------------------------------------------------------------------------------------------------ lanes and bursts


def test_urgent_overtakes_queued_bulk_work(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    w = watchers(str(box), "--out", str(tmp_path / "out"), "--lane", "bulk")
    w.wait_ready()
    for n in range(6):
        drop(clips[f"c{n}"], box, f"bulk{n}.mp4")
    wait_for(lambda: len(w.jobs()) == 6, 30, w.text)
    (box / "flash.json").write_text(json.dumps({"lane": "urgent", "title": "Breaking"}))
    drop(clips["c9"], box, "flash.mp4")
    wait_for(lambda: len(w.jobs()) == 7 and all(j.state == "delivered" for j in w.jobs()), 120, w.text)
    jobs = {Path(j.source).name: j for j in w.jobs()}
    urgent = jobs["flash.mp4"]
    assert urgent.lane == "urgent"
    overtaken = [j for name, j in jobs.items() if name != "flash.mp4" and j.queued_at < urgent.queued_at
                 and j.started_at > urgent.started_at]
    # one worker, so at most workers + 1 = 2 bulk jobs were on the cluster when the urgent file came
    assert len(overtaken) >= 2, [(n, j.queued_at, j.started_at) for n, j in jobs.items()]
    assert all(j.finished_at > urgent.finished_at for j in overtaken)
    assert stop(w) == 0


def test_a_burst_is_delivered_exactly_once(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    out = tmp_path / "out"
    w = watchers(str(box), "--out", str(out))
    w.wait_ready()
    staging = tmp_path / "staging"
    staging.mkdir()
    for n in range(12):
        shutil.copy(clips[f"c{n}"], staging / f"b{n:02d}.mp4")
    # a separate process drops all of them at once
    subprocess.run(["sh", "-c", f"mv {staging}/*.mp4 {box}/"], check=True)
    wait_for(lambda: len([j for j in w.jobs() if j.state == "delivered"]) == 12, 180, w.text)
    jobs = w.jobs()
    assert len(jobs) == 12 and {j.attempts for j in jobs} == {1}
    assert sorted(p.name for p in (box / "done").iterdir()) == [f"b{n:02d}.mp4" for n in range(12)]
    manifests = sorted(out.glob("edit/*/manifest.json"))
    assert len(manifests) == 12
    assert {json.loads(m.read_text())["metadata"]["job"] for m in manifests} == {j.id for j in jobs}
    listing = subprocess.run([sys.executable, "-m", "onetake.cli", "jobs", "list", "--state", "delivered", "--json",
                              "--ledger", str(w.ledger)], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and len(json.loads(listing.stdout)) == 12
    assert stop(w) == 0


def test_cancel_stops_a_running_job(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    w = watchers(str(box), "--out", str(tmp_path / "out"))
    w.wait_ready()
    drop(clips["long"], box)
    wait_for(lambda: ffmpeg_running(w), 60, w.text)
    cancel = subprocess.run([sys.executable, "-m", "onetake.cli", "jobs", "cancel", "1", "--ledger", str(w.ledger)],
                            capture_output=True, text=True, timeout=60)
    assert cancel.returncode == 0, cancel.stderr
    wait_for(lambda: (box / "failed" / "long.mp4").exists(), 30, w.text)
    wait_for(lambda: not ffmpeg_running(w), 30, w.text)
    assert w.jobs()[0].state == "cancelled"
    assert "cancelled" in (box / "failed" / "long.mp4.error.txt").read_text()
    again = subprocess.run([sys.executable, "-m", "onetake.cli", "jobs", "cancel", "1", "--ledger", str(w.ledger)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "only queued or running" in again.stderr
    assert stop(w) == 0


def test_a_resumed_job_does_not_encode_its_finished_renditions_again(tmp_path, clips, watchers):
    box = inbox(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "edit").write_text("a file where the channel's folder should be")  # the delivery will fail
    w = watchers(str(box), "--out", str(out))
    w.wait_ready()

    def encodes_until(condition: Callable[[], bool]) -> int:
        seen = set()
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, w.text()
            for p in w.descendants():
                try:
                    if "ffmpeg" in p.name() and "-filter_complex" in p.cmdline():  # an encode, not a verify read
                        seen.add(p.pid)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.01)
        return len(seen)

    drop(clips["c5"], box, "again.mp4")
    assert encodes_until(lambda: (box / "failed" / "again.mp4").exists()) == 1
    [job] = w.jobs()
    assert job.state == "failed" and "cannot write the delivery" in job.error
    [rendition] = [p for p in (out / ".onetake" / "renditions").iterdir() if p.is_dir()]
    made = rendition.stat().st_ino
    (out / "edit").unlink()
    retry = subprocess.run([sys.executable, "-m", "onetake.cli", "jobs", "retry", str(job.id), "--ledger",
                            str(w.ledger)], capture_output=True, text=True, timeout=60)
    assert retry.returncode == 0, retry.stderr
    assert encodes_until(lambda: w.jobs()[0].state == "delivered") == 0  # verified and delivered, not re-encoded
    assert rendition.stat().st_ino == made and w.jobs()[0].attempts == 2
    assert stop(w) == 0
