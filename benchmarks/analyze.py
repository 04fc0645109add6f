"""``python -m benchmarks analyze``: the whole analysis beside a plain decode and PySceneDetect, in the same run,
plus its accuracy on generated clips of known truth.

(a) decode       ``ffmpeg -i SRC -an -f null -`` (the imageio-ffmpeg binary onetake runs)
(b) scenedetect  ``scenedetect -i SRC detect-content`` (PySceneDetect, the ``bench`` extra; recorded as not run when
                 it is not installed)
(c) onetake      ``onetake analyze --json SRC`` (one decode: transitions, black/freeze/silence, loudness, active
                 area, scan, posters, crop path), a process of its own like the others, interpreter start included
(d) onetake_in_process  the same analysis timed inside its process (without interpreter start and imports)

Ratios are onetake's wall time over each baseline's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from onetake.workers.ffmpeg import ffmpeg_binary

from . import analysis_clips as clips
from .common import (
    MEDIA,
    Measurement,
    add_timing_arguments,
    disturbed,
    header,
    measure,
    print_table,
    ratio,
    representative_runs,
    run_step,
    source_for,
    wait_for_quiet,
    write_json,
)

TARGET_VS_DECODE = 1.15
TARGET_VS_SCENEDETECT = 1 / 1.4
IN_PROCESS = ("import json, resource, sys, time\n"
              "from onetake.workers.analysis import analyze\n"
              "r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.perf_counter()\n"
              "analyze(sys.argv[1])\n"
              "t1 = time.perf_counter(); r1 = resource.getrusage(resource.RUSAGE_SELF)\n"
              "print(json.dumps({'wall_s': t1 - t0, 'cpu_s': r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime}))")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_timing_arguments(p, "analyze", seconds=30.0, repeat=1)
    p.add_argument("--no-accuracy", action="store_true", help="skip the accuracy figures on generated clips")


def scenedetect_binary() -> str | None:
    beside = Path(sys.executable).parent / "scenedetect"
    return str(beside) if beside.exists() else shutil.which("scenedetect")


def commands(source: Path) -> dict[str, list[str] | None]:
    scenedetect = scenedetect_binary()
    return {
        "decode": [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", "file:" + str(source),
                   "-an", "-f", "null", "-"],
        "scenedetect": [scenedetect, "--quiet", "-i", str(source), "detect-content"] if scenedetect else None,
        "onetake": [sys.executable, "-m", "onetake.cli", "analyze", "--json", str(source)],
        "onetake_in_process": [sys.executable, "-c", IN_PROCESS, str(source)],
    }


def run_variant(name: str, argv: list[str]) -> Measurement:
    out: dict[str, Any] = {}

    def body(steps: list[dict[str, Any]]) -> None:
        proc = run_step(name, argv, steps, capture_stdout=name.startswith("onetake"))
        if name == "onetake":
            result = json.loads(proc.stdout)
            out["found"] = {"transitions": len(result["transitions"]), "black": len(result["black"]),
                            "freeze": len(result["freeze"]), "silence": len(result["silence"]),
                            "integrated_lufs": result["loudness"]["integrated"],
                            "crop_points": len(result["crop_path"]["points"])}
        elif name == "onetake_in_process":
            out["inside"] = {k: round(v, 3) for k, v in json.loads(proc.stdout).items()}

    m = measure(body)
    m.extra.update(out)
    if name == "onetake_in_process":  # the figure that counts is the one timed inside the process
        m.extra["process_wall_s"], m.extra["process_cpu_s"] = round(m.wall_s, 3), round(m.cpu_s, 3)
        m.wall_s, m.cpu_s = out["inside"]["wall_s"], out["inside"]["cpu_s"]
    return m


def accuracy(folder: Path) -> dict[str, Any]:
    """Figures on the generated clips (see benchmarks/analysis_clips.py for each clip's truth)."""
    from onetake.workers.analysis import analyze

    frame = 1 / clips.FPS
    out: dict[str, Any] = {}
    path, truth = clips.transitions_clip(folder)
    r = analyze(path)
    cuts = [t["frame"] for t in r["transitions"] if t["kind"] == "cut"]
    gradual = [t for t in r["transitions"] if t["kind"] != "cut"]
    out["transitions_clip"] = {
        "cuts": clips.match_frames(cuts, truth.cuts, 1),
        "gradual": [{"truth": [a, b, kind], "found": [g["frame"], g.get("end_frame"), g["kind"]] if g else None}
                    for (a, b, kind), g in zip(truth.gradual, gradual + [None] * len(truth.gradual), strict=False)],
        "black_error_frames": [e / frame if e is not None else None
                               for e in clips.segment_errors(r["black"], truth.black)],
        "silence_error_s": clips.segment_errors(r["silence"], truth.silence)}
    path, truth = clips.segments_clip(folder)
    r = analyze(path)
    out["segments_clip"] = {
        "freeze_error_frames": [round(e / frame, 2) if e is not None else None
                                for e in clips.segment_errors(r["freeze"], truth.freeze)],
        "black_error_frames": [round(e / frame, 2) if e is not None else None
                               for e in clips.segment_errors(r["black"], truth.black)],
        "silence_error_s": clips.segment_errors(r["silence"], truth.silence)}
    path, truth = clips.many_cuts_clip(folder)
    r = analyze(path)
    out["fifty_cuts"] = clips.match_frames([t["frame"] for t in r["transitions"] if t["kind"] == "cut"],
                                           truth.cuts, 1)
    path, _ = clips.static_clip(folder)
    out["static_shot_jitter"] = clips.jitter(analyze(path))
    path, truth = clips.moving_subject_clip(folder)
    out["moving_subject_inside_window"] = round(clips.subject_inside(analyze(path), truth), 4)
    return out


def main(args: argparse.Namespace) -> int:
    data = header("analyze")
    source, desc, warnings = source_for(args.source, args.seconds, 30.0)
    argvs = commands(source)
    print(f"source {source} ({desc['duration_s']} s)")
    for w in warnings:
        print(f"warning: {w}")
    not_run: dict[str, str] = {}
    if argvs["scenedetect"] is None:
        not_run["scenedetect"] = ("PySceneDetect is not installed (pip install -e '.[bench]' installs "
                                  "scenedetect-headless); not run")
        print(f"scenedetect: {not_run['scenedetect']}")
    variants = [v for v, argv in argvs.items() if argv is not None]
    samples: dict[str, list[Measurement]] = {v: [] for v in variants}
    for rep in range(args.repeat):
        for v in variants:
            print(f"run {rep + 1}/{args.repeat}: {v} ...", flush=True)
            waited = wait_for_quiet(args.quiet_wait)
            m = run_variant(v, argvs[v])  # type: ignore[arg-type]
            m.extra["waited_for_quiet_s"] = waited
            samples[v].append(m)
            print(f"  {v}: wall {m.wall_s:.2f} s, cpu {m.cpu_s:.2f} s", flush=True)
    runs: dict[str, Any] = representative_runs(samples, args.stat)
    for v, why in not_run.items():
        runs[v] = {"ran": False, "reason": why}
    ran = {v: r for v, r in runs.items() if r.get("ran", True)}

    def onetake_vs(base: str, who: str = "onetake") -> float | None:
        return ratio(ran[who]["wall_s"], ran[base]["wall_s"]) if base in ran and who in ran else None

    ratios = {"onetake_vs_decode": onetake_vs("decode"), "onetake_vs_scenedetect": onetake_vs("scenedetect"),
              "onetake_in_process_vs_decode": onetake_vs("decode", "onetake_in_process"),
              "onetake_in_process_vs_scenedetect": onetake_vs("scenedetect", "onetake_in_process")}
    targets = {
        "onetake_vs_decode": {"max": TARGET_VS_DECODE, "value": ratios["onetake_vs_decode"],
                              "met": None if ratios["onetake_vs_decode"] is None
                              else ratios["onetake_vs_decode"] <= TARGET_VS_DECODE},
        "onetake_vs_scenedetect": {"max": round(TARGET_VS_SCENEDETECT, 3), "value": ratios["onetake_vs_scenedetect"],
                                   "met": None if ratios["onetake_vs_scenedetect"] is None
                                   else ratios["onetake_vs_scenedetect"] <= TARGET_VS_SCENEDETECT}}
    data.update({"source": {**desc, "generated": not args.source, "warnings": warnings},
                 "commands": {v: argv for v, argv in argvs.items() if argv},
                 "repeat": args.repeat, "stat": args.stat, "runs": runs, "ratios": ratios, "targets": targets})
    rows = [[v, r["wall_s"], r["cpu_s"], ratio(ran["onetake"]["wall_s"], r["wall_s"])] for v, r in ran.items()]
    print_table(f"analyze: {desc['duration_s']} s source", ["variant", "wall_s", "cpu_s", "onetake/this"], rows)
    for name, value in ratios.items():
        print(f"  {name:<34} {value}")
    if not args.no_accuracy:
        print("accuracy on generated clips ...", flush=True)
        data["accuracy"] = accuracy(MEDIA / "analysis-clips")
        print(json.dumps(data["accuracy"], indent=2))
    data["disturbed"] = disturbed(ran)
    for line in data["disturbed"]:
        print(f"warning: {line}")
    write_json(data, args.output)
    return 0
