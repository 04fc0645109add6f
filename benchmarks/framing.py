"""``python -m benchmarks framing``: what following the subject costs over a centre crop, same output.

Encodes of the ``short-vertical`` rendition (1080x1920 H.264) of a 1080p25 source, each the argv that
``onetake plan`` makes for it, run with the same ffmpeg, interleaved and repeated:

  center   ``framing = "center"``: a fixed crop
  follow   ``framing = "follow"``: the crop window moved by sendcmd along the crop path of onetake's analysis
           of the same source
  parked   ``follow`` along a path that holds the window still where the follow path spends its time on
           average: the same mechanism (sendcmd, a crop whose x is an expression) and about the same part of
           the picture, without the moves
  sweep    ``follow`` along a synthetic path that moves on every 5th frame, back and forth across the picture
           (more commands and more movement than a real path)

The source (``--scene``, unless ``--source`` names a file):

  speaker        a presenter (a portrait photograph) standing, walking across the frame and stepping back, in
                 front of a textured wall, with the temporal noise of a camera sensor: what follow framing is
                 for, and the default
  speaker-clean  the same without sensor noise: a picture no camera makes, where every still block is free
  testsrc2       FFmpeg's moving test pattern, whose parts differ a lot in how hard they are to encode

What moves the ratio: x264 skips the blocks of a still window that did not change, and a moving window has
none. On camera pictures few blocks are skipped anyway, so the moves cost little; on clean synthetic pictures
they cost a lot. ``parked`` against ``center`` shows how much of a ratio is the part of the picture that is
framed rather than the following. CPU-time ratios are reported beside the wall-time ones.

Target: follow's wall time <= 1.15 x center's. The analysis is not in the follow encode's time: run makes
it once per source for QC, the report and the follow framing together, beside the encodes that do not
need it; its own time is measured and reported separately (``analysis``), with the ratio it would give if
it were counted (``follow_plus_analysis_vs_center``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.pipeline.plan.params import Deps
from onetake.pipeline.probe import probe
from onetake.pipeline.profiles import load_catalog
from onetake.workers.analysis.framing import x_at
from onetake.workers.ffmpeg import ffmpeg_binary
from onetake.workers.follow import follow_commands
from onetake.workers.tasks import fill_measurements
from onetake.workers.tasks import measure as measure_task

from .common import (
    MEDIA,
    ROOT,
    SOURCE_CODING,
    Clock,
    Measurement,
    add_timing_arguments,
    clean,
    describe_source,
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
VARIANTS = ("center", "parked", "follow", "sweep")
SCENES = ("speaker", "speaker-clean", "testsrc2")
PORTRAIT = ROOT / "tests" / "data" / "face-grace-hopper.png"
# the presenter's centre, as a fraction of the picture width, and when (fractions of the clip) they move:
# they stand, walk across, stand, step back part of the way, stand
PRESENTER_START = 0.3
PRESENTER_MOVES = ((0.3, 0.5, 0.68), (0.8, 0.9, 0.55))   # (start, end, new centre)
SENSOR_NOISE = 3   # strength of FFmpeg's temporal noise filter (uniform); 0 for speaker-clean


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_timing_arguments(p, "framing", seconds=10.0, repeat=3)
    p.add_argument("--scene", choices=SCENES, default="speaker",
                   help="what the generated source shows (default speaker; see the module help)")
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder")


def _presenter_x(seconds: float) -> str:
    """An FFmpeg expression of t: the presenter's centre (fraction of the width), eased in and out of each move."""
    expr, at = f"{PRESENTER_START}", PRESENTER_START
    for start, end, to in PRESENTER_MOVES:
        t0, length = start * seconds, (end - start) * seconds
        u = f"clip((t-{t0:g})/{length:g},0,1)"
        expr += f"+({to - at:.3f})*{u}*{u}*(3-2*{u})"
        at = to
    return expr


def make_speaker_source(seconds: float, noise: int, folder: Path = MEDIA) -> Path:
    """The ``speaker`` scene as a 1920x1080 25p BT.709 H.264 file with a stereo tone, cached under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / f"speaker-noise{noise}-1080p25-bt709-{seconds:g}s.mp4"
    if clip.exists():
        return clip
    wall = ("color=c=0x4a5560:s=1920x1080:r=25:d=0.04,"
            "geq=lum='110+28*sin(X/37)*sin(Y/29)+14*sin((X+2*Y)/11)':cb='128+6*sin(X/90)':cr='128+5*cos(Y/70)',"
            f"loop=loop=-1:size=1,trim=duration={seconds:g},setpts=N/25/TB")
    if noise:
        wall += f",noise=alls={noise}:allf=t"
    # the portrait is 160x120: enlarged, the face is about a quarter of the picture height, a medium shot
    graph = (f"[1:v]scale=640:480,format=yuv420p[presenter];"
             f"[0:v][presenter]overlay=x='W*({_presenter_x(seconds)})-w/2':y='(H-h)/2+6*sin(4*PI*t)':eval=frame"
             f":shortest=1,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p[v]")
    partial = folder / f".{clip.name}.partial.mp4"
    argv = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", wall, "-loop", "1", "-framerate", "25", "-i", f"file:{PORTRAIT}",
            "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=48000:duration={seconds:g}",
            "-filter_complex", graph, "-map", "[v]", "-map", "2:a",
            "-af", "volume=-20dB,aformat=channel_layouts=stereo", *SOURCE_CODING, "-t", f"{seconds:g}",
            "file:" + str(partial)]
    print(f"generating {clip.name} ({seconds:g} s speaker scene, sensor noise {noise}) ...", file=sys.stderr,
          flush=True)
    subprocess.run(argv, check=True)
    partial.rename(clip)
    return clip


def _encode_task(source: Path, framing: str, work: Path) -> dict[str, Any]:
    catalog = load_catalog()
    short = catalog.profile("short-vertical")
    profile = dataclasses.replace(short, video=dataclasses.replace(short.video, framing=framing))
    catalog = dataclasses.replace(catalog, profiles={**catalog.profiles, "short-vertical": profile},
                                  channels={**catalog.channels, "bench": ("short-vertical",)})
    plan = plan_job(probe(str(source), compute_hash=False), ["bench"], catalog,
                    PlanOptions(out_dir=str(work / framing / "out"), work_dir=str(work / framing / "work")))
    [task] = [t for t in plan.tasks if t.kind == "encode"]
    return {"params": task.params, "measures": [t.params for t in plan.tasks if t.kind == "measure"]}


def _sweep_path(frames: int) -> dict[str, Any]:
    points = [{"frame": f, "x": 0.5 + 0.45 * (1 if (f // 125) % 2 else -1) * (0.5 - (f % 125) / 125), "y": 0.5}
              for f in range(0, frames, 5)]
    return {"aspect": "9:16", "points": points + [{"frame": frames - 1, "x": points[-1]["x"], "y": 0.5}]}


def _moving_share(points: list[dict[str, Any]], frames: int, width: int) -> float:
    """The share of frames at which the follow window moves by half a pixel or more of the source's width."""
    x = x_at(points, frames) * width
    return round(float((abs(x[1:] - x[:-1]) >= 0.5).mean()), 3) if frames > 1 else 0.0


def main(args: argparse.Namespace) -> int:
    from onetake.workers.analysis import analyze

    data = header("framing")
    scene = "file" if args.source else args.scene
    if scene.startswith("speaker"):
        source = make_speaker_source(args.seconds, 0 if scene == "speaker-clean" else SENSOR_NOISE)
        desc, warnings = describe_source(source), []
    else:
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
    tasks["parked"] = _encode_task(source, "follow", work / "parked")
    measured = [measure_task(params, Deps({}), lambda fraction: None) for params in tasks["center"]["measures"]]
    frames = int(analysis.get("frames") or 0) or 250
    follow_path = analysis.get("crop_path") or {"points": []}
    parked_x = round(float(x_at(follow_path["points"], frames).mean()), 4)
    paths = {"follow": follow_path, "sweep": _sweep_path(frames),
             "parked": {"aspect": "9:16", "points": [{"frame": 0, "x": parked_x, "y": 0.5},
                                                     {"frame": frames - 1, "x": parked_x, "y": 0.5}]}}
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
        "source": {**desc, "scene": scene, "generated": not args.source, "warnings": warnings},
        "commands": {"center": tasks["center"]["params"]["argv"], "follow": tasks["follow"]["params"]["argv"]},
        "sendcmd_lines": commands_lines,
        "crop_path_points": {k: len((p or {}).get("points") or []) for k, p in paths.items()},
        "parked_x": parked_x,
        "follow_moving_share": _moving_share(follow_path["points"], frames, int(analysis.get("width") or 1920)),
        "repeat": args.repeat, "stat": args.stat,
        "runs": runs,
        "analysis": {**analysis_run, "note": "onetake's analyze(), in this process, once; not in the encode "
                                              "times (run shares it between QC, the report and framing)"},
        "ratios": {"follow_vs_center": follow,
                   "parked_vs_center": ratio(runs["parked"]["wall_s"], runs["center"]["wall_s"]),
                   "follow_vs_parked": ratio(runs["follow"]["wall_s"], runs["parked"]["wall_s"]),
                   "sweep_vs_center": ratio(runs["sweep"]["wall_s"], runs["center"]["wall_s"]),
                   "cpu_follow_vs_center": ratio(runs["follow"]["cpu_s"], runs["center"]["cpu_s"]),
                   "cpu_parked_vs_center": ratio(runs["parked"]["cpu_s"], runs["center"]["cpu_s"]),
                   "follow_plus_analysis_vs_center": ratio(runs["follow"]["wall_s"] + analysis_run["wall_s"],
                                                           runs["center"]["wall_s"])},
        "targets": {"follow_vs_center": {"max": TARGET, "value": follow, "met": follow is not None
                                         and follow <= TARGET}},
    })
    clean(work)
    print_table(f"framing: short-vertical from a {desc['duration_s']} s {scene} source ({args.stat} of "
                f"{args.repeat})",
                ["variant", "wall_s", "cpu_s", "other_cpu_s"],
                [[v, r["wall_s"], r["cpu_s"], r["other_cpu_s"]] for v, r in runs.items()])
    print(f"  analysis (separate)   wall {analysis_run['wall_s']} s")
    for k, v in data["ratios"].items():
        print(f"  {k:<30} {v}" + (f"  (target <= {TARGET})" if k == "follow_vs_center" else ""))
    finish(data, args.output)
    return 0
