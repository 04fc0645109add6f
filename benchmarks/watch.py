"""``python -m benchmarks watch``: a burst of small clips dropped into a watch folder at once.

One ``onetake watch`` process (embedded Dask cluster) watches two inboxes, one in the bulk lane and one in
the urgent lane. In the same run:

1. urgent clips are dropped on the idle farm, one after the other (the reference);
2. N bulk clips (default 200) are dropped at once into the bulk inbox;
3. once at least 10 bulk jobs are waiting or running, as many urgent clips are dropped, one after the other;
4. the run waits until every file is delivered, then stops the watcher with SIGTERM (a drain).

Each urgent figure is the median of its clips (``--urgent``, default 3), since one small job's time is easily
disturbed by other work on the machine.

Reported, from the watcher's own ledger: throughput (files per minute, from the drop to the last delivery),
ingest latency (file stable -> claimed, and file stable -> job started, p50 and p95), the urgent file's
latency (stable -> delivered) on the idle farm and under the backlog, and peak memory of the whole process
tree (watcher, Dask scheduler and workers, every ffmpeg). Every clip has its own content (its own
fingerprint), so no rendition is reused between them.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from onetake.pipeline.ledger import Ledger
from onetake.workers.ffmpeg import ffmpeg_binary

from .common import MEDIA, RESULTS, CommandFailed, clean, header, measure, print_table, write_json

BACKLOG = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--files", type=int, default=200, help="bulk clips dropped at once (default 200)")
    p.add_argument("--seconds", type=float, default=1.0, help="length of each clip (default 1)")
    p.add_argument("--size", default="320x180", help="picture size of each clip (default 320x180)")
    p.add_argument("--channels", default="edit", help="channels each clip becomes (default edit)")
    p.add_argument("--workers", type=int, default=0, help="embedded cluster workers (default: onetake's)")
    p.add_argument("--settle", type=float, default=1.0, help="the watcher's settle time in seconds (default 1)")
    p.add_argument("--output", type=Path, default=RESULTS / "watch.json", help="the JSON result file")
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder")
    p.add_argument("--keep", action="store_true", help="keep inboxes and outputs")
    p.add_argument("--urgent", type=int, default=3, help="urgent clips on the idle farm, and again under the backlog "
                                                          "(default 3; the medians are reported)")
    p.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds (default 3600)")


def make_clips(folder: Path, count: int, seconds: float, size: str, prefix: str) -> list[Path]:
    """``count`` clips that differ in content (the first frame's pattern time), made by one ffmpeg each."""
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for n in range(count):
        clip = folder / f"{prefix}{n:04d}.mp4"
        subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds:g}",
                        "-f", "lavfi", "-i", f"sine=frequency={300 + n % 1000}:sample_rate=48000:duration={seconds:g}",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        "-metadata", f"comment={prefix}{n}", "file:" + str(clip)], check=True)
        clips.append(clip)
    return clips


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


def wait_until(condition: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise CommandFailed(f"timed out waiting for {what}\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)


def main(args: argparse.Namespace) -> int:
    data = header("watch")
    work = args.work.resolve() / "watch"
    clean(work)
    bulk_box, urgent_box, staging = work / "bulk", work / "urgent", work / "staging"
    for folder in (bulk_box, urgent_box, staging):
        folder.mkdir(parents=True)
    print(f"generating {args.files} + {2 * args.urgent} clips ({args.size}, {args.seconds:g} s) ...", flush=True)
    bulk = make_clips(staging / "bulk", args.files, args.seconds, args.size, "bulk")
    urgent = make_clips(staging / "urgent", 2 * args.urgent, args.seconds, args.size, "urgent")
    idle_clips, busy_clips = urgent[:args.urgent], urgent[args.urgent:]
    ledger_path = work / "jobs.sqlite"
    config = work / "watch.toml"
    config.write_text(f"""[farm]
out = "{work / 'out'}"
channels = {[c.strip() for c in args.channels.split(',') if c.strip()]!r}
workers = {args.workers}
ledger = "{ledger_path}"

[watch]
settle_s = {args.settle}
poll_s = 0.2

[[inbox]]
path = "{bulk_box}"
lane = "bulk"

[[inbox]]
path = "{urgent_box}"
lane = "urgent"
""".replace("'", '"'))
    log = work / "watcher.log"
    marks: dict[str, float] = {}

    def jobs() -> list[Any]:
        if not ledger_path.exists():
            return []
        with Ledger(ledger_path) as ledger:
            return ledger.list()

    def delivered(name: str) -> bool:
        return any(Path(j.source).name == name and j.state in ("delivered", "failed") for j in jobs())

    def body(steps: list[dict[str, Any]]) -> None:
        with open(log, "w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "onetake.cli", "watch", "--config", str(config)],
                                    stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        try:
            wait_until(lambda: "watching " in log.read_text(errors="replace"), 120, "the watcher to start", log)
            for clip in idle_clips:
                os.rename(clip, urgent_box / clip.name)
                wait_until(lambda c=clip: delivered(c.name), 300, "an urgent clip on the idle farm", log)
            marks["burst"] = time.time()
            for clip in bulk:
                os.rename(clip, bulk_box / clip.name)
            backlog = min(BACKLOG, args.files)
            wait_until(lambda: sum(j.lane == "bulk" and j.state in ("queued", "running") for j in jobs()) >= backlog,
                       args.timeout, f"{backlog} bulk jobs in the backlog", log)
            backlogs = []
            for clip in busy_clips:
                backlogs.append(sum(j.lane == "bulk" and j.state in ("queued", "running") for j in jobs()))
                os.rename(clip, urgent_box / clip.name)
                wait_until(lambda c=clip: delivered(c.name), 300, "an urgent clip under the backlog", log)
            marks["backlog_at_urgent"] = min(backlogs)
            total = args.files + 2 * args.urgent
            wait_until(lambda: sum(j.state in ("delivered", "failed") for j in jobs()) >= total, args.timeout,
                       "every clip to be delivered", log)
            marks["all_done"] = time.time()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=600)
            if code != 0:
                raise CommandFailed(f"the watcher exited with {code}\n{log.read_text(errors='replace')[-4000:]}")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    print(f"watching: urgent on the idle farm, then {args.files} bulk clips at once, then urgent again ...",
          flush=True)
    m = measure(body)
    all_jobs = jobs()
    failed = [j for j in all_jobs if j.state != "delivered"]
    if failed:
        raise CommandFailed(f"{len(failed)} job(s) not delivered, e.g. {failed[0].source}: {failed[0].error}")
    by_name = {Path(j.source).name: j for j in all_jobs}
    idle_jobs = [by_name[c.name] for c in idle_clips]
    busy_jobs = [by_name[c.name] for c in busy_clips]
    bulk_jobs = [j for j in all_jobs if j.lane == "bulk"]
    claim = [j.queued_at - j.stable_at for j in bulk_jobs]
    start = [j.started_at - j.stable_at for j in bulk_jobs]
    last = max(j.finished_at for j in bulk_jobs)
    throughput = len(bulk_jobs) / (last - marks["burst"]) * 60
    idle_latency = statistics.median(j.finished_at - j.stable_at for j in idle_jobs)
    idle_run = statistics.median(j.finished_at - j.started_at for j in idle_jobs)
    busy_latency = statistics.median(j.finished_at - j.stable_at for j in busy_jobs)
    bound = idle_latency + idle_run
    counted = {name: sum(1 for j in all_jobs if Path(j.source).name == name) for name in by_name}
    data.update({
        "files": args.files, "clip": {"size": args.size, "seconds": args.seconds}, "channels": args.channels,
        "settle_s": args.settle, "wall_s": round(m.wall_s, 2), "cpu_s": round(m.cpu_s, 2),
        "other_cpu_s": round(m.other_cpu_s, 2),
        "throughput_files_per_min": round(throughput, 1),
        "ingest_latency_s": {"stable_to_claimed": {"p50": percentile(claim, 50), "p95": percentile(claim, 95)},
                             "stable_to_started": {"p50": percentile(start, 50), "p95": percentile(start, 95)}},
        "urgent": {"idle_stable_to_delivered_s": round(idle_latency, 3),
                   "each_s": {name: [{"stable_to_claimed": round(j.queued_at - j.stable_at, 3),
                                      "claimed_to_started": round(j.started_at - j.queued_at, 3),
                                      "started_to_delivered": round(j.finished_at - j.started_at, 3)}
                                     for j in group]
                              for name, group in (("idle", idle_jobs), ("backlog", busy_jobs))},
                   "idle_job_run_s": round(idle_run, 3),
                   "backlog_stable_to_delivered_s": round(busy_latency, 3),
                   "bulk_backlog_when_dropped": marks["backlog_at_urgent"],
                   "bound_s": round(bound, 3), "met": busy_latency <= bound,
                   "bound": "idle latency + the run time of one job like it on the idle farm (medians)"},
        "exactly_once": all(n == 1 for n in counted.values()) and len(counted) == args.files + 2 * args.urgent,
        "peak_rss_mb": m.memory.get("peak_rss_mb"), "peak_rss_by_role_mb": m.memory.get("peak_rss_by_role_mb"),
        "peak_single_process_rss_mb": m.memory.get("peak_single_process_rss_mb"),
    })
    print_table(f"watch: {args.files} bulk clips ({args.size}, {args.seconds:g} s -> {args.channels}) dropped at once",
                ["measure", "value"],
                [["throughput (files/min)", data["throughput_files_per_min"]],
                 ["stable -> claimed p50 / p95 (s)", f"{percentile(claim, 50)} / {percentile(claim, 95)}"],
                 ["stable -> started p50 / p95 (s)", f"{percentile(start, 50)} / {percentile(start, 95)}"],
                 ["urgent, idle farm (s)", round(idle_latency, 2)],
                 [f"urgent, >= {marks['backlog_at_urgent']} bulk jobs waiting (s)", round(busy_latency, 2)],
                 ["bound: idle + one job (s)", round(bound, 2)],
                 ["every file exactly once", data["exactly_once"]],
                 ["peak RSS, whole tree (MB)", data["peak_rss_mb"]]])
    if m.other_cpu_s > 0.1 * m.wall_s * (os.cpu_count() or 1):
        print(f"warning: other processes used {m.other_cpu_s:.0f} s of CPU during the run; timings are disturbed")
        data["disturbed"] = True
    write_json(data, args.output)
    if not args.keep:
        clean(work)
    return 0
