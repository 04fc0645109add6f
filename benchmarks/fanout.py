"""``python -m benchmarks fanout``: one source, every channel's renditions, three ways, in the same run.

(a) naive    one ffmpeg per rendition, in sequence, each decoding the source
(b) expert   one hand-written ffmpeg: one decode, ``split`` to every rendition, each scaled from the source
(c) onetake  ``onetake run SOURCE --channels ...`` (probe, plan, Dask, encode, package, verify, deliver)
(d) onetake-branded  the same with a station logo (``--logo``) and a caption sidecar with a Chinese cue every 3 s:
    the logo on every picture of web, app and short, captions burned into the short and carried as WebVTT by web;
    its cost over (c) is ``branded_vs_onetake`` (target <= 1.05)

(a) and (b) are built from onetake's own plan (see baselines.py), so every output has onetake's encoder
settings; both include the loudness measurement pass and onetake's analysis with its report (``onetake
analyze --json --report``, which onetake run does for every source too), whose crop path moves the crop of
the follow-framed ``short-vertical`` as in onetake. Ratios are onetake's wall time over each baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from .baselines import REPORT_NAME, Fanout, onetake_run_argv
from onetake.workers.ffmpeg import ffmpeg_binary

from .common import (
    MEDIA,
    CommandFailed,
    Measurement,
    add_timing_arguments,
    clean,
    finish,
    header,
    measure,
    phases,
    print_table,
    ratio,
    representative_runs,
    run_step,
    source_for,
    wait_for_quiet,
)

DEFAULT_CHANNELS = "tv,web,short,radio,edit"
VARIANTS = ("naive", "expert", "expert-tee", "onetake", "onetake-branded")
DEFAULT_VARIANTS = ("naive", "expert", "onetake")
TARGET_VS_EXPERT = 1.0
TARGET_BRANDED_VS_ONETAKE = 1.05
CUE = "县融媒体中心记者报道：今天上午全县防汛工作会议召开。"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_timing_arguments(p, "fanout", seconds=30.0, repeat=1)
    p.add_argument("--channels", default=DEFAULT_CHANNELS, help=f"channels to make (default {DEFAULT_CHANNELS})")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help="which of naive,expert,expert-tee,onetake,onetake-branded to run (default naive,expert,"
                        "onetake); expert-tee is the expert with the web MP4 and the top HLS rung from one encode; "
                        "onetake-branded adds a logo and captions")
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder for every variant's outputs")
    p.add_argument("--keep", action="store_true", help="keep the outputs (default: delete them after each run)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip checking the baselines' outputs with onetake's verifier (untimed)")
    p.add_argument("--onetake-args", default="", help="extra arguments for `onetake run`, e.g. '--workers 2'")


def output_bytes(folder: Path) -> int:
    seen, total = set(), 0
    for root, _, files in os.walk(folder):
        for f in files:
            st = os.stat(os.path.join(root, f))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def check_baseline_outputs(fan: Fanout, base: Path) -> list[str]:
    missing = [] if (base / REPORT_NAME).is_file() else [REPORT_NAME]
    for d in fan.deliverables:
        folder = base / d.name
        if not folder.is_dir() or not any(f.stat().st_size > 0 for f in folder.iterdir() if f.is_file()):
            missing.append(d.name)
    return missing


def run_variant(name: str, fan: Fanout, base: Path, onetake_extra: list[str], verify: bool = True) -> Measurement:
    clean(base)  # nothing from an earlier run is reused, onetake's scratch (OUT/.onetake) included
    base.mkdir(parents=True)
    result: dict[str, Any] = {}
    if name == "naive":
        fan.prepare(base)

        def body(steps: list[dict[str, Any]]) -> None:
            measured = fan.measure_loudness(base, steps)
            fan.analyze(base, steps)
            for step, argv in fan.naive_commands(base, measured):
                run_step(step, argv, steps)
            fan.write_hls_masters(base)
    elif name in ("expert", "expert-tee"):
        fan.prepare(base)

        def body(steps: list[dict[str, Any]]) -> None:
            measured = fan.measure_loudness(base, steps)
            fan.analyze(base, steps)
            run_step("one ffmpeg, every output", fan.expert_command(base, measured, tee=name == "expert-tee"), steps)
            fan.write_hls_masters(base)
    elif name == "onetake-branded":
        source, logo = branded_source(fan.source, base / "source", fan.info.duration)
        argv = onetake_run_argv(source, fan.channels, base / "out", [*onetake_extra, "--logo", str(logo)])

        def body(steps: list[dict[str, Any]]) -> None:
            proc = run_step("onetake run (logo, captions)", argv, steps, capture_stdout=True)
            result.update(json.loads(proc.stdout))
    else:
        argv = onetake_run_argv(fan.source, fan.channels, base, onetake_extra)

        def body(steps: list[dict[str, Any]]) -> None:
            proc = run_step("onetake run", argv, steps, capture_stdout=True)
            result.update(json.loads(proc.stdout))

    m = measure(body)
    m.extra["output_bytes"] = output_bytes(base)
    m.extra["phases"] = phases(m)
    if name.startswith("onetake"):
        m.extra["ok"] = bool(result.get("ok"))
        if not result.get("ok"):
            raise CommandFailed(f"onetake run did not deliver every channel: {json.dumps(result)[:4000]}")
    else:
        m.extra["analysis_wall_s"] = next(s["wall_s"] for s in m.steps if s["step"].startswith("analysis"))
        missing = check_baseline_outputs(fan, base)
        m.extra["ok"] = not missing
        if missing:
            raise CommandFailed(f"{name}: no output for {', '.join(missing)}")
        if verify:
            m.extra["verified"] = fan.verify_outputs(base, fan.last_measured)
            if not m.extra["verified"]["ok"]:
                print(f"  warning: {name}'s outputs fail onetake's checks: {m.extra['verified']['failed']}")
    return m


def branded_source(source: Path, folder: Path, duration: float) -> tuple[Path, Path]:
    """The source (linked) beside a caption sidecar with a cue every 3 s, and a 400x200 logo with transparency."""
    folder.mkdir(parents=True)
    linked = folder / source.name
    linked.symlink_to(source)
    cues = []
    for i, start in enumerate(range(0, int(duration), 3), 1):
        cues.append(f"{i}\n{srt_time(start)} --> {srt_time(min(start + 2.5, duration))}\n{CUE}\n")
    (folder / (source.stem + ".srt")).write_text("\n".join(cues), encoding="utf-8")
    logo = folder / "logo.png"
    subprocess.run([ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i",
                    "color=c=red@0.8:size=400x200,format=rgba,drawbox=x=40:y=40:w=320:h=120:color=white@0.9:t=fill",
                    "-frames:v", "1", str(logo)], check=True)
    return linked, logo


def srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def main(args: argparse.Namespace) -> int:
    data = header("fanout")
    source, desc, warnings = source_for(args.source, args.seconds, 30.0)
    channels = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    variants = [v for v in VARIANTS if v in {x.strip() for x in args.variants.split(",")}]
    fan = Fanout.build(source, channels)
    onetake_extra = shlex.split(args.onetake_args)
    work = args.work.resolve() / "fanout"

    print(f"source {source} ({desc['duration_s']} s); channels {','.join(channels)}; onetake makes "
          f"{len(fan.onetake_outputs)} renditions; each baseline {len(fan.deliverables)} outputs from them "
          f"(the top HLS rung's MP4 is an output of its own) + {REPORT_NAME}")
    for w in warnings:
        print(f"warning: {w}")
    samples: dict[str, list[Measurement]] = {v: [] for v in variants}
    for rep in range(args.repeat):
        for v in variants:
            print(f"run {rep + 1}/{args.repeat}: {v} ...", flush=True)
            waited = wait_for_quiet(args.quiet_wait)
            m = run_variant(v, fan, work / v, onetake_extra, not args.no_verify)
            m.extra["waited_for_quiet_s"] = waited
            samples[v].append(m)
            print(f"  {v}: wall {m.wall_s:.2f} s, cpu {m.cpu_s:.2f} s, peak RSS {m.memory.get('peak_rss_mb')} MB",
                  flush=True)
            if not args.keep:
                clean(work / v)

    runs = representative_runs(samples, args.stat)
    ratios: dict[str, Any] = {}
    cpu_ratios: dict[str, Any] = {}
    if "onetake" in runs:
        for base in ("naive", "expert", "expert-tee"):
            if base in runs:
                key = f"onetake_vs_{base.replace('-', '_')}"
                ratios[key] = ratio(runs["onetake"]["wall_s"], runs[base]["wall_s"])
                cpu_ratios[key] = ratio(runs["onetake"]["cpu_s"], runs[base]["cpu_s"])
    if "naive" in runs and "expert" in runs:
        ratios["expert_vs_naive"] = ratio(runs["expert"]["wall_s"], runs["naive"]["wall_s"])
        cpu_ratios["expert_vs_naive"] = ratio(runs["expert"]["cpu_s"], runs["naive"]["cpu_s"])
    if "onetake" in runs and "onetake-branded" in runs:
        ratios["branded_vs_onetake"] = ratio(runs["onetake-branded"]["wall_s"], runs["onetake"]["wall_s"])
        cpu_ratios["branded_vs_onetake"] = ratio(runs["onetake-branded"]["cpu_s"], runs["onetake"]["cpu_s"])
    data.update({
        "source": {**desc, "generated": not args.source, "warnings": warnings},
        "channels": list(channels),
        "outputs": fan.describe(),
        "renditions": fan.onetake_outputs,
        "onetake_command": onetake_run_argv(source, channels, work / "onetake", onetake_extra)[1:],
        "repeat": args.repeat,
        "stat": args.stat,
        "runs": runs,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
        "targets": {"onetake_vs_expert": {"max": TARGET_VS_EXPERT, "value": ratios.get("onetake_vs_expert"),
                                          "met": (ratios["onetake_vs_expert"] <= TARGET_VS_EXPERT)
                                          if "onetake_vs_expert" in ratios else None},
                    "branded_vs_onetake": {"max": TARGET_BRANDED_VS_ONETAKE, "value": ratios.get("branded_vs_onetake"),
                                           "met": (ratios["branded_vs_onetake"] <= TARGET_BRANDED_VS_ONETAKE)
                                           if "branded_vs_onetake" in ratios else None}},
    })
    rows = [[v, r["wall_s"], r["cpu_s"], r.get("peak_rss_mb"), len(r.get("steps", [])),
             ratio(runs["onetake"]["wall_s"], r["wall_s"]) if "onetake" in runs else None]
            for v, r in runs.items()]
    print_table(f"fanout: {desc['duration_s']} s 1080p25 source -> {','.join(channels)} "
                f"({len(fan.deliverables)} outputs)",
                ["variant", "wall_s", "cpu_s", "peak_rss_mb", "processes", "onetake/this"], rows)
    for name, value in ratios.items():
        print(f"  {name:<20} {value}")
    finish(data, args.output, show_phases=True)
    return 0
