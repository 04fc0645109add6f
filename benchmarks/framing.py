"""``python -m benchmarks framing``: what following the subject costs over a centre crop, same output.

Three encodes of the ``short-vertical`` rendition (1080x1920 H.264) of a 1080p25 source, each the argv that
``onetake plan`` makes for it, run with the same ffmpeg, interleaved and repeated:

  center   ``framing = "center"``: a fixed crop
  follow   ``framing = "follow"``: the crop window moved by sendcmd along the crop path of onetake's analysis
           of the same source
  still    ``follow`` along a path that holds the window still, off centre: the cost of the mechanism
           (sendcmd, a crop whose x is an expression) without a moving picture
  sweep    ``follow`` along a synthetic path that moves on every 5th frame, back and forth across the picture
           (more commands than a real path)

A window that moves makes a panning picture, which x264 spends more on than a still one: ``follow`` against
``still`` is that cost, which depends on how much the subject moves; ``still`` against ``center`` is the
mechanism's. CPU-time ratios are reported beside the wall-time ones (on a busy machine they are the steadier).

Target: follow's wall time <= 1.15 x center's. The analysis is not in the follow encode's time: run makes
it once per source for QC, the report and the follow framing together, beside the encodes that do not
need it; its own time is measured and reported separately (``analysis``), with the ratio it would give if
it were counted (``follow_plus_analysis_vs_center``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.pipeline.probe import probe
from onetake.pipeline.profiles import load_catalog
from onetake.workers.ffmpeg import ffmpeg_binary
from onetake.workers.follow import follow_commands
from onetake.workers.tasks import fill_measurements
from onetake.workers.tasks import measure as measure_task

from .common import (
    MEDIA,
    Clock,
    Measurement,
    add_timing_arguments,
    clean,
    finish,
    header,
    measure,
    print_table,
    ratio,
    representative_runs,
    run_step,
    source_for,
    wait_for_quiet,
)

TARGET = 1.15
VARIANTS = ("center", "still", "follow", "sweep")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_timing_arguments(p, "framing", seconds=10.0, repeat=3)
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder")


def _encode_task(source: Path, framing: str, work: Path) -> dict[str, Any]:
    catalog = load_catalog()
    short = catalog.profile("short-vertical")
    profile = dataclasses.replace(short, video=dataclasses.replace(short.video, framing=framing))
    catalog = dataclasses.replace(catalog, profiles={**catalog.profiles, "short-vertical": profile},
                                  channels={**catalog.channels, "bench": ("short-vertical",)})
    plan = plan_job(probe(str(source), compute_hash=False), ["bench"], catalog,
                    PlanOptions(out_dir=str(work / framing / "out"), work_dir=str(work / framing / "work")))
    [task] = [t for t in plan.tasks if t.kind == "encode"]
    measure_params = next((t.params for t in plan.tasks if t.kind == "measure"), None)
    return {"params": task.params, "measure": measure_params}


def _sweep_path(frames: int) -> dict[str, Any]:
    points = [{"frame": f, "x": 0.5 + 0.45 * (1 if (f // 125) % 2 else -1) * (0.5 - (f % 125) / 125), "y": 0.5}
              for f in range(0, frames, 5)]
    return {"aspect": "9:16", "points": points + [{"frame": frames - 1, "x": points[-1]["x"], "y": 0.5}]}


def main(args: argparse.Namespace) -> int:
    from onetake.workers.analysis import analyze

    data = header("framing")
    source, desc, warnings = source_for(args.source, args.seconds, 10.0)
    work = args.work.resolve() / "framing"
    clean(work)
    print(f"source {source} ({desc['duration_s']} s)")
    cpu0 = time.process_time()
    with Clock() as clock:
        analysis = analyze(str(source))
    analysis_run = {"wall_s": round(clock.wall_s, 3), "cpu_s": round(time.process_time() - cpu0 + clock.cpu_s, 3)}
    tasks = {"center": _encode_task(source, "center", work), "follow": _encode_task(source, "follow", work)}
    tasks["sweep"] = _encode_task(source, "follow", work / "sweep")
    tasks["still"] = _encode_task(source, "follow", work / "still")
    measured = None
    if tasks["center"]["measure"]:
        measured = measure_task(tasks["center"]["measure"], [], lambda fraction: None)
    frames = int(analysis.get("frames") or 0) or 250
    paths = {"follow": analysis.get("crop_path"), "sweep": _sweep_path(frames),
             "still": {"aspect": "9:16", "points": [{"frame": 0, "x": 0.3, "y": 0.5}, {"frame": frames - 1, "x": 0.3,
                                                                                       "y": 0.5}]}}
    commands_lines = {}
    ffmpeg = ffmpeg_binary()
    samples: dict[str, list[Measurement]] = {v: [] for v in VARIANTS}
    for rep in range(args.repeat):
        for variant in VARIANTS:
            params = tasks[variant]["params"]
            outputs = params["outputs"]
            for o in outputs:
                clean(Path(o["partial"]))
                os.makedirs(o["partial"])
            if "follow" in params:
                f = params["follow"]
                text = follow_commands(paths[variant], analysis.get("fps"), f["width"], f["window"])
                Path(f["commands"]).write_text(text, encoding="utf-8")
                commands_lines[variant] = text.count("\n")
            argv = [ffmpeg, *fill_measurements(params["argv"], measured)[1:]]
            print(f"run {rep + 1}/{args.repeat}: {variant} ...", flush=True)
            wait_for_quiet(args.quiet_wait)
            m = measure(lambda steps, argv=argv, name=variant: run_step(f"encode {name}", argv, steps),
                        interval=0.5)
            samples[variant].append(m)
            print(f"  {variant}: wall {m.wall_s:.2f} s, cpu {m.cpu_s:.2f} s, other load {m.other_cpu_s:.1f} cpu-s",
                  flush=True)
    runs = representative_runs(samples, args.stat, ("wall_s", "cpu_s", "other_cpu_s"))
    follow = ratio(runs["follow"]["wall_s"], runs["center"]["wall_s"])
    data.update({
        "source": {**desc, "generated": not args.source, "warnings": warnings},
        "commands": {"center": tasks["center"]["params"]["argv"], "follow": tasks["follow"]["params"]["argv"]},
        "sendcmd_lines": commands_lines,
        "crop_path_points": {k: len((p or {}).get("points") or []) for k, p in paths.items()},
        "repeat": args.repeat, "stat": args.stat,
        "runs": runs,
        "analysis": {**analysis_run, "note": "onetake's analyze(), in this process, once; not in the encode "
                                              "times (run shares it between QC, the report and framing)"},
        "ratios": {"follow_vs_center": follow,
                   "still_vs_center": ratio(runs["still"]["wall_s"], runs["center"]["wall_s"]),
                   "sweep_vs_center": ratio(runs["sweep"]["wall_s"], runs["center"]["wall_s"]),
                   "cpu_follow_vs_center": ratio(runs["follow"]["cpu_s"], runs["center"]["cpu_s"]),
                   "cpu_still_vs_center": ratio(runs["still"]["cpu_s"], runs["center"]["cpu_s"]),
                   "follow_plus_analysis_vs_center": ratio(runs["follow"]["wall_s"] + analysis_run["wall_s"],
                                                           runs["center"]["wall_s"])},
        "targets": {"follow_vs_center": {"max": TARGET, "value": follow, "met": follow is not None
                                         and follow <= TARGET}},
    })
    clean(work)
    print_table(f"framing: short-vertical from a {desc['duration_s']} s source ({args.stat} of {args.repeat})",
                ["variant", "wall_s", "cpu_s", "other_cpu_s"],
                [[v, r["wall_s"], r["cpu_s"], r["other_cpu_s"]] for v, r in runs.items()])
    print(f"  analysis (separate)   wall {analysis_run['wall_s']} s")
    for k, v in data["ratios"].items():
        print(f"  {k:<30} {v}" + (f"  (target <= {TARGET})" if k == "follow_vs_center" else ""))
    finish(data, args.output)
    return 0
