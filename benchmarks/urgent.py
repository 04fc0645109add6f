"""``python -m benchmarks urgent``: breaking news, from the clip's arrival to its first version being published.

A generated 1080p25 news clip (default 60 s: a presenter in front of a wall, with a camera sensor's noise, and
speech-like sound) is run two ways, in the same run, interleaved when repeated:

  expert    one hand-written ffmpeg (baselines.first_version_expert): web's 720p HLS rung, its progressive MP4
            and the 9:16 short, with one-pass loudnorm and onetake's first-version encoder options; its
            outputs are checked with onetake's verifier afterwards (not timed)
  onetake   ``onetake run --urgent SRC --channels web,short``: probe, plan, an embedded Dask cluster, the
            loudness measurement, the first version encoded, packaged, verified and delivered (manifest
            version 1), then the full-quality delivery that replaces it (version 2)
  onetake-watch  the same job from a running ``onetake watch`` (its cluster already up) with an urgent
            inbox: the clock starts when the clip is renamed into the inbox, and includes the settle time
            (``--settle``, default 1 s) the watcher waits to see that the file has stopped growing
  onetake-follow (``--variants``) ``onetake run --urgent`` with ``first_version_framing = "follow"``: the
            short's first version follows the speaker, after the analysis, in an ffmpeg of its own
  onetake-spread (``--variants``) ``onetake run --urgent --workers N`` (``--spread-workers``, default one per
            usable core): N embedded workers, so N encode slots, and the first version's pictures cut into a
            chunk per slot, joined and gated (a farm's way; on one machine it shows what the chunking costs)

``--presets ultrafast,superfast,veryfast`` also makes the expert's outputs with each x264 preset and scores the
720p MP4 and the short against the source with VMAF (libvmaf, every 5th frame), to show what a faster preset
costs in picture quality at the profiles' bitrates.

The clock starts when the command starts (the clip has arrived). onetake's first version counts as published
when both channels' manifest.json say ``"version": 1`` (polled every 20 ms); the expert's outputs are there when
its ffmpeg exits (plus a master playlist written by hand, timed). ``expert-tee`` (``--variants``) writes the rung
and the MP4 from one encode through ffmpeg's tee muxer.

Targets: ``first_publish_vs_duration`` <= 0.5 (onetake's first version within half the clip's duration) and
``onetake_vs_expert`` <= 1.0 (no later than the expert's command).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from onetake.pipeline.config import FarmConfig
from onetake.pipeline.plan.keys import asset_id_for
from onetake.pipeline.plan.urgent import first_version_catalog
from onetake.pipeline.probe import probe
from onetake.pipeline.profiles import load_catalog
from onetake.workers.ffmpeg import ffmpeg_binary

from .baselines import Fanout, first_version_expert
from .common import (
    MEDIA,
    TreeSampler,
    _busy_s,
    CommandFailed,
    Measurement,
    add_timing_arguments,
    clean,
    describe_source,
    finish,
    header,
    measure,
    phases,
    print_table,
    ratio,
    representative_runs,
    run_step,
    wait_for_quiet,
)
from .framing import SENSOR_NOISE, make_speaker_source

CHANNELS = ("web", "short")
VARIANTS = ("expert", "expert-tee", "onetake", "onetake-watch", "onetake-follow", "onetake-spread")
DEFAULT_VARIANTS = ("expert", "onetake", "onetake-watch")
TARGET_VS_DURATION = 0.5
TARGET_VS_EXPERT = 1.0
POLL_S = 0.02


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_timing_arguments(p, "urgent", seconds=60.0, repeat=1)
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"which of {','.join(VARIANTS)} to run (default {','.join(DEFAULT_VARIANTS)})")
    p.add_argument("--spread-workers", type=int, default=max(2, len(os.sched_getaffinity(0))),
                   help="onetake-spread: embedded workers, each an encode slot (default: one per usable core, "
                        "at least 2)")
    p.add_argument("--presets", default="", help="also score these x264 presets, e.g. ultrafast,superfast,veryfast")
    p.add_argument("--settle", type=float, default=1.0, help="onetake-watch: the watcher's settle time (default 1)")
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder for every variant's outputs")
    p.add_argument("--keep", action="store_true", help="keep the outputs (default: delete them after each run)")
    p.add_argument("--onetake-args", default="", help="extra arguments for `onetake run --urgent`")


# ---------------------------------------------------------------------------------------------------------
# the clip


def speech_source(seconds: float) -> str:
    """A lavfi source that sounds like one person talking: a voice at about 118 Hz with its harmonics, its
    pitch wandering, breath noise, syllables about four times a second and pauses between phrases."""
    phase = "2*PI*118*t-(24/0.7)*cos(2*PI*0.7*t)-(9/2.3)*cos(2*PI*2.3*t)"
    voice = "+".join(f"sin({k}*ld(0))/{k}" for k in range(1, 7))
    syllables = "pow(max(0,sin(2*PI*4.2*t+1.7*sin(2*PI*0.37*t))),1.5)"
    phrases = "gt(sin(2*PI*0.29*t)+sin(2*PI*0.11*t+1),-1.1)"
    return (f"aevalsrc=exprs='st(0,{phase});({voice}+0.35*(random(1)*2-1))*{syllables}*{phrases}'"
            f":s=48000:d={seconds:g}")


def make_news_clip(seconds: float, folder: Path = MEDIA) -> Path:
    """The framing benchmark's presenter scene (1920x1080 25p BT.709, sensor noise) with speech-like stereo
    sound at about -26 LUFS, cached under ``folder``."""
    clip = folder / f"news-speaker-speech-1080p25-bt709-{seconds:g}s.mp4"
    if clip.exists():
        return clip
    picture = make_speaker_source(seconds, SENSOR_NOISE, folder)
    partial = folder / f".{clip.name}.partial.mp4"
    print(f"generating {clip.name} ({seconds:g} s, the presenter scene with speech-like sound) ...", file=sys.stderr,
          flush=True)
    subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i",
                    f"file:{picture}", "-f", "lavfi", "-i", speech_source(seconds), "-map", "0:v", "-map", "1:a",
                    "-af", "highpass=f=90,lowpass=f=5000,volume=-16dB,aformat=channel_layouts=stereo",
                    "-c:v", "copy", "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", "-t", f"{seconds:g}",
                    "file:" + str(partial)], check=True)
    partial.rename(clip)
    return clip


# ---------------------------------------------------------------------------------------------------------
# the runs


class Published:
    """Watches the channels' manifests of one asset under ``out``: when each first showed each version."""

    def __init__(self, out: Path, asset_id: str, t0: float) -> None:
        self.paths = {c: out / c / asset_id / "manifest.json" for c in CHANNELS}
        self.t0 = t0
        self.seen: dict[str, dict[int, float]] = {c: {} for c in CHANNELS}
        self.manifests: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in CHANNELS}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.perf_counter() - self.t0
            for channel, path in self.paths.items():
                try:
                    manifest = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                version = int(manifest.get("version") or 0)
                self.seen[channel].setdefault(version, round(now, 3))
                self.manifests[channel].setdefault(version, manifest)
            self.stop.wait(POLL_S)

    def when(self, version: int) -> float | None:
        """When every channel had shown ``version`` (None if one never did)."""
        times = [self.seen[c].get(version) for c in CHANNELS]
        return None if None in times else max(t for t in times if t is not None)


def run_onetake(source: Path, base: Path, asset_id: str, extra: list[str], follow: bool = False,
                workers: int = 0) -> Measurement:
    out = base / "out"
    if workers:
        extra = ["--workers", str(workers), *extra]
    if follow:
        config = base / "farm.toml"
        config.write_text('[farm]\nfirst_version_framing = "follow"\n', encoding="utf-8")
        extra = ["--config", str(config), *extra]
    argv = [sys.executable, "-m", "onetake.cli", "run", "--urgent", str(source), "--channels", ",".join(CHANNELS),
            "--out", str(out), "--json", *extra]
    result: dict[str, Any] = {}
    watched: list[Published] = []

    def body(steps: list[dict[str, Any]]) -> None:
        published = Published(out, asset_id, time.perf_counter())
        watched.append(published)
        published.thread.start()
        try:
            proc = run_step("onetake run --urgent", argv, steps, capture_stdout=True)
        finally:
            published.stop.set()
            published.thread.join()
        result.update(json.loads(proc.stdout))

    m = measure(body)
    published = watched[0]
    if not result.get("ok"):
        raise CommandFailed(f"onetake run --urgent did not deliver every channel: {json.dumps(result)[:4000]}")
    first, full = published.when(1), published.when(2)
    if first is None:
        raise CommandFailed(f"onetake never showed a first version of {', '.join(CHANNELS)} (seen: {published.seen})")
    m.extra.update({"first_publish_s": first, "full_publish_s": full, "published": published.seen,
                    "versions": versions_summary(published), "phases": phases(m)})
    return m


def run_watch(source: Path, base: Path, asset_id: str, settle: float, extra: list[str]) -> Measurement:
    """The clip renamed into the urgent inbox of a watcher that is already running; timed from the rename until
    the job is delivered. CPU time: the watcher's process tree's from the rename on."""
    from onetake.pipeline.ledger import Ledger

    inbox, out, ledger, log = base / "inbox", base / "out", base / "jobs.sqlite", base / "watch.log"
    inbox.mkdir(parents=True)
    staged = inbox / f".{source.name}.part"
    shutil.copyfile(source, staged)
    argv = [sys.executable, "-m", "onetake.cli", "watch", str(inbox), "--lane", "urgent", "--channels",
            ",".join(CHANNELS), "--out", str(out), "--settle", f"{settle:g}", "--poll", "0.1", "--ledger", str(ledger),
            *extra]
    with open(log, "w") as stderr:
        watcher = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait(lambda: "watching " in log.read_text(errors="replace"), watcher, log, "the watcher to start")
        busy0, mine0, tree0 = _busy_s(), _self_cpu_s(), tree_cpu_s(watcher.pid)
        sampler = TreeSampler(interval=0.5, pss=False).__enter__()  # the ffmpegs' timeline, from the rename
        t0 = time.perf_counter()
        published = Published(out, asset_id, t0)
        published.thread.start()
        os.rename(staged, inbox / source.name)

        def finished() -> bool:
            with Ledger(ledger) as jobs:
                return any(j.state in ("delivered", "failed") for j in jobs.list())

        wait(finished, watcher, log, "the job to end")
        wall = time.perf_counter() - t0
        cpu = tree_cpu_s(watcher.pid) - tree0
        other = max(0.0, _busy_s() - busy0 - cpu - (_self_cpu_s() - mine0))
        published.stop.set()
        published.thread.join()
        sampler.__exit__(None, None, None)
        with Ledger(ledger) as jobs:
            [job] = jobs.list()
    finally:
        watcher.send_signal(signal.SIGTERM)
        try:
            watcher.wait(timeout=120)
        except subprocess.TimeoutExpired:
            watcher.kill()
    if job.state != "delivered":
        raise CommandFailed(f"the urgent job from the watch folder was not delivered: {job.error}")
    first = published.when(1)
    if first is None:
        raise CommandFailed(f"the watcher never showed a first version of {', '.join(CHANNELS)} "
                            f"(seen: {published.seen})")
    m = Measurement(wall, cpu, 0.0, 0.0, other, sampler.result())
    m.extra.update({"first_publish_s": first, "full_publish_s": published.when(2), "published": published.seen,
                    "settle_s": settle, "versions": versions_summary(published), "phases": phases(m),
                    "watch_log": log.read_text(errors="replace").splitlines()[-12:]})
    return m


def score_presets(source: Path, info: Any, presets: list[str], work: Path) -> dict[str, Any]:
    """The expert's first version made with each preset: its time, and VMAF of the 720p MP4 and the short against
    the source scaled (or centre-cropped) the same way with a bicubic scaler."""
    scores: dict[str, Any] = {}
    for preset in presets:
        profile = "main" if preset == "ultrafast" else "high"  # what the preset's stream is
        farm = FarmConfig(first_version_preset=preset, first_version_profile=profile)
        catalog = first_version_catalog(info, load_catalog(), CHANNELS, farm)
        fan = Fanout.build(source, CHANNELS, catalog)
        base = work / f"preset-{preset}"
        clean(base)
        base.mkdir(parents=True)
        print(f"preset {preset} ...", flush=True)
        m = run_expert(fan, base, tee=False, verify=False)
        scores[preset] = {"wall_s": round(m.wall_s, 3), "cpu_s": round(m.cpu_s, 3), "other_cpu_s":
                          round(m.other_cpu_s, 3)}
        for d in fan.deliverables:
            if d.hls:
                continue
            spec = catalog.profile(d.profile).video
            assert spec is not None
            w, h = spec.width, spec.height
            reference = (f"scale={w}:{h}:flags=bicubic" if spec.framing == "pad" else
                         f"crop='min(iw,ih*{w}/{h})':'min(ih,iw*{h}/{w})',scale={w}:{h}:flags=bicubic")
            graph = (f"[0:v]setpts=PTS-STARTPTS[made];[1:v]{reference},setpts=PTS-STARTPTS[ref];"
                     f"[made][ref]libvmaf=n_subsample=5:n_threads={os.cpu_count() or 1}")
            made = base / d.name / d.file_name
            log = subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-i", f"file:{made}", "-i",
                                  f"file:{source}", "-lavfi", graph, "-f", "null", "-"],
                                 capture_output=True, text=True).stderr
            found = re.search(r"VMAF score: ([\d.]+)", log)
            scores[preset][f"vmaf_{d.profile}"] = round(float(found.group(1)), 2) if found else None
        clean(base)
    fastest = min(scores.values(), key=lambda r: r["cpu_s"])["cpu_s"]
    for r in scores.values():
        r["cpu_vs_fastest"] = ratio(r["cpu_s"], fastest)
    return scores


def tree_cpu_s(pid: int) -> float:
    """CPU time of a process tree so far: each live process's own and that of the children it has reaped."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                continue
    except psutil.Error:
        pass
    return total


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait(condition: Any, process: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise CommandFailed(f"gave up waiting for {what}:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(POLL_S)


def versions_summary(published: Published) -> dict[str, Any]:
    """Each version each channel published: its files, whether every check passed, and its loudness."""
    summary: dict[str, Any] = {}
    for channel, versions in published.manifests.items():
        for version, manifest in sorted(versions.items()):
            summary.setdefault(channel, {})[str(version)] = {
                "files": [f["path"] for f in manifest["files"]],
                "checks_passed": all(c["passed"] for c in manifest["checks"]),
                "loudness": {f"{c['profile']} {c['name']}": c["value"] for c in manifest["checks"]
                             if c["name"] in ("integrated loudness", "true peak")}}
    return summary


def run_expert(fan: Fanout, base: Path, tee: bool, verify: bool = True) -> Measurement:
    fan.prepare(base)
    argv = first_version_expert(fan, base, tee=tee)

    def body(steps: list[dict[str, Any]]) -> None:
        run_step("one ffmpeg: 720p HLS rung, MP4, 9:16 short", argv, steps)
        started = time.perf_counter()
        fan.write_hls_masters(base)
        steps.append({"step": "master playlist", "wall_s": round(time.perf_counter() - started, 3)})

    m = measure(body)
    m.extra["first_publish_s"] = round(m.wall_s, 3)
    m.extra["command"] = argv[1:]
    if verify:  # onetake's own checks on the expert's outputs, not timed
        m.extra["verified"] = fan.verify_outputs(base, {})
    return m


# ---------------------------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    data = header("urgent")
    source = args.source.resolve() if args.source else make_news_clip(args.seconds)
    desc = describe_source(source)
    duration = desc["duration_s"]
    variants = [v for v in VARIANTS if v in {x.strip() for x in args.variants.split(",")}]
    farm = FarmConfig()
    info = probe(str(source))
    catalog = first_version_catalog(info, load_catalog(), CHANNELS, farm)
    fan = Fanout.build(source, CHANNELS, catalog)
    asset_id = asset_id_for(info)
    extra = shlex.split(args.onetake_args)
    work = args.work.resolve() / "urgent"
    print(f"source {source} ({duration} s); first version of {', '.join(CHANNELS)}: "
          f"{', '.join(d.name for d in fan.deliverables)}; x264 preset {farm.first_version_preset}")

    samples: dict[str, list[Measurement]] = {v: [] for v in variants}
    for rep in range(args.repeat):
        for v in variants:
            print(f"run {rep + 1}/{args.repeat}: {v} ...", flush=True)
            waited = wait_for_quiet(args.quiet_wait)
            base = work / v
            clean(base)  # onetake's scratch too: nothing from an earlier run is reused
            base.mkdir(parents=True)
            if v in ("onetake", "onetake-follow", "onetake-spread"):
                m = run_onetake(source, base, asset_id, extra, follow=v == "onetake-follow",
                                workers=args.spread_workers if v == "onetake-spread" else 0)
            elif v == "onetake-watch":
                m = run_watch(source, base, asset_id, args.settle, extra)
            else:
                m = run_expert(fan, base, tee=v == "expert-tee")
            m.extra["waited_for_quiet_s"] = waited
            samples[v].append(m)
            print(f"  {v}: first version {m.extra['first_publish_s']:.2f} s, wall {m.wall_s:.2f} s, "
                  f"cpu {m.cpu_s:.2f} s", flush=True)
            verified = m.extra.get("verified")
            if verified and not verified["ok"]:
                print(f"  note: {v}'s outputs fail onetake's checks: {verified['failed']}")
            if not args.keep:
                clean(base)

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if presets:
        data["presets"] = score_presets(source, info, presets, work)
        for preset, r in data["presets"].items():
            print(f"  {preset}: cpu {r['cpu_s']} s ({r['cpu_vs_fastest']}x), VMAF "
                  + ", ".join(f"{k.removeprefix('vmaf_')} {v}" for k, v in r.items() if k.startswith("vmaf_")))
    runs = representative_runs(samples, args.stat, fields=("first_publish_s", "wall_s", "cpu_s"))
    first = {v: r["first_publish_s"] for v, r in runs.items()}
    ratios: dict[str, Any] = {}
    if "onetake" in first:
        ratios["first_publish_vs_duration"] = round(first["onetake"] / duration, 3)
        for base_name in ("expert", "expert-tee"):
            if base_name in first:
                ratios[f"onetake_vs_{base_name.replace('-', '_')}"] = ratio(first["onetake"], first[base_name])
    if "onetake-follow" in first:
        ratios["onetake_follow_vs_center"] = ratio(first["onetake-follow"], first.get("onetake", 0))
    if "onetake-spread" in first:
        ratios["onetake_spread_vs_duration"] = round(first["onetake-spread"] / duration, 3)
        ratios["onetake_spread_vs_onetake"] = ratio(first["onetake-spread"], first.get("onetake", 0))
    if "onetake-watch" in first:
        ratios["onetake_watch_vs_duration"] = round(first["onetake-watch"] / duration, 3)
        if "expert" in first:
            ratios["onetake_watch_vs_expert"] = ratio(first["onetake-watch"], first["expert"])
    data.update({
        "source": {**desc, "generated": not args.source},
        "channels": list(CHANNELS),
        "first_version": {"preset": farm.first_version_preset, "profile": farm.first_version_profile,
                          "outputs": fan.describe()},
        "onetake_command": ["onetake", "run", "--urgent", str(source), "--channels", ",".join(CHANNELS), *extra],
        **({"spread_workers": args.spread_workers} if "onetake-spread" in variants else {}),
        "repeat": args.repeat, "stat": args.stat, "runs": runs, "ratios": ratios,
        "first_publish_vs_duration": ratios.get("first_publish_vs_duration"),
        "onetake_vs_expert": ratios.get("onetake_vs_expert"),
        "targets": {
            "first_publish_vs_duration": {"max": TARGET_VS_DURATION, "value": ratios.get("first_publish_vs_duration"),
                                          "met": _met(ratios.get("first_publish_vs_duration"), TARGET_VS_DURATION)},
            "onetake_vs_expert": {"max": TARGET_VS_EXPERT, "value": ratios.get("onetake_vs_expert"),
                                  "met": _met(ratios.get("onetake_vs_expert"), TARGET_VS_EXPERT)}},
    })
    rows = [[v, r["first_publish_s"], r.get("full_publish_s"), r["wall_s"], r["cpu_s"],
             round(r["first_publish_s"] / duration, 3),
             ratio(first["onetake"], r["first_publish_s"]) if "onetake" in first else None] for v, r in runs.items()]
    print_table(f"urgent: {duration} s 1080p25 clip -> first version of {', '.join(CHANNELS)}",
                ["variant", "first_s", "full_s", "wall_s", "cpu_s", "first/duration", "onetake/this"], rows)
    for name, value in ratios.items():
        print(f"  {name:<26} {value}")
    finish(data, args.output, show_phases=True)
    return 0


def _met(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit
