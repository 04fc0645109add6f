"""``python -m benchmarks overhead``: what onetake costs on top of the ffmpeg work it plans.

``onetake run SOURCE --channels web`` on a 10 s source, against the same work run directly: the argvs of
``onetake plan SOURCE --channels web --json`` (the loudness measurement, the encodes with the measured values
filled in, and the HLS packaging) run back to back with the same ffmpeg, and the analysis that ``onetake
run`` makes of every source, as a hand-run makes it: ``onetake.workers.analysis.analyze`` called directly
(in a forked child of this process, so that its CPU time and memory are counted as the ffmpegs' are, and
no interpreter start-up is added). A follow-framed rendition's sendcmd file is written from the analysis's
crop path as onetake's worker writes it. Target: onetake's wall time <= 1.2 x the direct run's. A
breakdown, timed separately afterwards, shows where onetake's extra time goes (start-up and planning, the
Dask cluster, packaging, the HTML report, verification and delivery).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from onetake.workers.ffmpeg import ffmpeg_binary
from onetake.workers.follow import follow_commands
from onetake.workers.tasks import fill_measurements

from .baselines import onetake_run_argv
from .common import (
    MEDIA,
    ROOT,
    Clock,
    CommandFailed,
    Measurement,
    add_timing_arguments,
    clean,
    finish,
    header,
    measure,
    measure_loudness_step,
    phases,
    print_table,
    ratio,
    representative_runs,
    run_step,
    source_for,
    wait_for_quiet,
)

TARGET = 1.2


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_timing_arguments(p, "overhead", seconds=10.0, repeat=3)
    p.add_argument("--channels", default="web", help="channels to make (default web)")
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder")
    p.add_argument("--no-breakdown", action="store_true", help="skip timing onetake's parts separately")


def plan_json(source: Path, channels: str, out: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "onetake.cli", "plan", str(source), "--channels", channels,
                           "--out", str(out), "--json"], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise CommandFailed(f"onetake plan failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def tasks_of(plan: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [t for t in plan["tasks"] if t["kind"] == kind]


def analyze_in_child(params: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The analyze task's work done by hand: ``analyze(source)``, its JSON written where the plan keeps it.

    It runs in a forked child: the analysis module is imported here beforehand, so the child starts at once,
    and its CPU time (reaped like an ffmpeg's) and memory (sampled as a descendant) count as the ffmpegs' do."""
    from onetake.workers.analysis import analyze

    cache = Path(params["cache"])

    def child() -> None:
        result = analyze(params["source"])
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")

    with Clock() as clock:
        process = multiprocessing.get_context("fork").Process(target=child, name="analysis")
        process.start()
        process.join()
    steps.append({"step": "analysis (analyze(), forked child)", "wall_s": round(clock.wall_s, 3),
                  "cpu_s": round(clock.cpu_s, 3), "other_cpu_s": round(clock.other_cpu_s, 3)})
    if process.exitcode != 0:
        raise CommandFailed(f"the analysis of {params['source']} failed (exit status {process.exitcode}); "
                            f"`onetake analyze {params['source']}` shows why")
    return json.loads(cache.read_text(encoding="utf-8"))


def direct_work(plan: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan's work, back to back: measure -> analysis -> encodes -> HLS packaging.

    Returns the loudness measurements (``measured``, by measure task) and the analysis."""
    ffmpeg = ffmpeg_binary()
    measures = tasks_of(plan, "measure")
    measured = dict(zip((t["id"] for t in measures), measure_loudness_step(
        [t["params"] for t in measures], Path(measures[0]["params"]["cache"]).parent, steps) if measures else []))
    analysis: dict[str, Any] = {}
    for t in tasks_of(plan, "analyze"):
        analysis = analyze_in_child(t["params"], steps)
    for t in tasks_of(plan, "encode"):
        outputs = t["params"]["outputs"]
        for o in outputs:
            os.makedirs(o["partial"], exist_ok=True)
        if "follow" in t["params"]:  # the follow crop's sendcmd file, as the worker writes it
            f = t["params"]["follow"]
            Path(f["commands"]).write_text(follow_commands(analysis.get("crop_path"), analysis.get("fps"),
                                                           f["width"], f["window"]), encoding="utf-8")
        run_step("encode", [ffmpeg, *fill_measurements(t["params"]["argv"], list(measured.values()))[1:]], steps)
        for o in outputs:
            os.rename(o["partial"], o["final"])
    for t in tasks_of(plan, "package"):
        p = t["params"]
        if p["kind"] != "hls":
            continue
        for v in p["variants"]:
            os.makedirs(os.path.join(p["partial"], v["name"]), exist_ok=True)
        run_step("hls packaging", [ffmpeg, *p["argv"][1:]], steps)
    return {"measured": measured, "analysis": analysis}


def breakdown(source: Path, channels: str, work: Path) -> dict[str, Any]:
    """onetake's parts, timed one by one (each in the same way onetake runs it)."""
    from onetake.workers.tasks import run_task

    out: dict[str, Any] = {}

    def timed(name: str, argv: list[str]) -> None:
        with Clock() as c:
            proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise CommandFailed(f"{name} failed: {proc.stderr[-2000:]}")
        out[name] = {"wall_s": round(c.wall_s, 3), "cpu_s": round(c.cpu_s, 3)}

    timed("python + onetake import (`onetake --version`)", [sys.executable, "-m", "onetake.cli", "--version"])
    timed("probe + plan (`onetake plan --json`)", [sys.executable, "-m", "onetake.cli", "plan", str(source),
                                                   "--channels", channels, "--out", str(work / "plan"), "--json"])
    timed("Dask LocalCluster start + stop (onetake's open_cluster)", [sys.executable, "-c",
          "from onetake.workers.cluster import open_cluster\nfrom onetake.pipeline.config import FarmConfig\n"
          "with open_cluster(FarmConfig()) as client: client.submit(sum, [1]).result()"])
    # packaging and verification of the direct run's outputs, in this process, one task after another
    base = work / "parts"
    clean(base)
    plan = plan_json(source, channels, base)
    steps: list[dict[str, Any]] = []
    done = direct_work(plan, steps)
    for t in tasks_of(plan, "package"):  # onetake's package task redoes the HLS step, playlists included
        clean(Path(t["params"]["partial"]))
    # the results onetake's tasks pass on, as the direct run made them
    results: dict[str, Any] = dict(done["measured"])
    results.update({t["id"]: {"analysis": done["analysis"], "path": t["params"]["cache"], "reused": False}
                    for t in tasks_of(plan, "analyze")})
    results.update({t["id"]: {"reused": False} for t in tasks_of(plan, "encode")})
    for kind in ("package", "report", "verify", "deliver"):
        total_wall = total_cpu = 0.0
        detail = []
        for t in tasks_of(plan, kind):
            deps = {d: results[d] for d in t["deps"]}
            self0 = os.times()
            with Clock() as c:
                results[t["id"]] = run_task(kind, t["params"], deps)
            self1 = os.times()
            cpu = c.cpu_s + (self1.user - self0.user) + (self1.system - self0.system)
            total_wall += c.wall_s
            total_cpu += cpu
            detail.append({"task": t["id"].split("/", 1)[1], "wall_s": round(c.wall_s, 3), "cpu_s": round(cpu, 3)})
        out[f"{kind} tasks, one after another"] = {"wall_s": round(total_wall, 3), "cpu_s": round(total_cpu, 3),
                                                   "tasks": detail}
    clean(base)
    return out


def main(args: argparse.Namespace) -> int:
    data = header("overhead")
    source, desc, warnings = source_for(args.source, args.seconds, 10.0)
    channels = ",".join(c.strip() for c in args.channels.split(",") if c.strip())
    work = args.work.resolve() / "overhead"
    onetake_out, direct_out = work / "onetake", work / "direct"
    print(f"source {source} ({desc['duration_s']} s); channels {channels}")
    samples: dict[str, list[Measurement]] = {"direct": [], "onetake": []}
    plan = plan_json(source, channels, direct_out)
    for rep in range(args.repeat):
        for variant in ("direct", "onetake"):
            print(f"run {rep + 1}/{args.repeat}: {variant} ...", flush=True)
            wait_for_quiet(args.quiet_wait)
            if variant == "direct":
                clean(direct_out)
                m = measure(lambda steps: direct_work(plan, steps), interval=0.1)
                clean(direct_out)
            else:
                clean(onetake_out)
                result: dict[str, Any] = {}

                def body(steps: list[dict[str, Any]]) -> None:
                    proc = run_step("onetake run", onetake_run_argv(source, channels.split(","), onetake_out),
                                    steps, capture_stdout=True)
                    result.update(json.loads(proc.stdout))
                m = measure(body, interval=0.1)
                clean(onetake_out)
                if not result.get("ok"):
                    raise CommandFailed(f"onetake run failed: {json.dumps(result)[:4000]}")
            m.extra["phases"] = phases(m)
            samples[variant].append(m)
            print(f"  {variant}: wall {m.wall_s:.2f} s, cpu {m.cpu_s:.2f} s, other load {m.other_cpu_s:.1f} cpu-s",
                  flush=True)
    runs = representative_runs(samples, args.stat, ("wall_s", "cpu_s", "other_cpu_s", "phases"))
    value = ratio(runs["onetake"]["wall_s"], runs["direct"]["wall_s"])
    data.update({
        "source": {**desc, "generated": not args.source, "warnings": warnings},
        "channels": channels.split(","),
        "direct_commands": [["ffmpeg", *t["params"]["argv"][1:]] for kind in ("measure", "encode", "package")
                            for t in tasks_of(plan, kind) if "argv" in t["params"]],
        "direct_analysis": [f"onetake.workers.analysis.analyze({t['params']['source']!r}) in a forked child, "
                            f"before the encodes" for t in tasks_of(plan, "analyze")],
        "repeat": args.repeat,
        "stat": args.stat,
        "runs": runs,
        "ratios": {"onetake_vs_direct": value,
                   "cpu_onetake_vs_direct": ratio(runs["onetake"]["cpu_s"], runs["direct"]["cpu_s"])},
        "overhead_s": round(runs["onetake"]["wall_s"] - runs["direct"]["wall_s"], 3),
        "targets": {"onetake_vs_direct": {"max": TARGET, "value": value, "met": value is not None and value <= TARGET}},
    })
    if not args.no_breakdown:
        print("timing onetake's parts one by one ...", flush=True)
        data["breakdown"] = breakdown(source, channels, work)
    clean(work)
    print_table(f"overhead: onetake run --channels {channels} on a {desc['duration_s']} s source "
                f"({args.stat} of {args.repeat})", ["variant", "wall_s", "cpu_s", "peak_rss_mb", "other_cpu_s"],
                [[v, r["wall_s"], r["cpu_s"], r.get("peak_rss_mb"), r["other_cpu_s"]] for v, r in runs.items()])
    print(f"  onetake_vs_direct     {value}  (target <= {TARGET})")
    if "breakdown" in data:
        print_table("onetake's parts, timed separately", ["part", "wall_s", "cpu_s"],
                    [[k, v["wall_s"], v["cpu_s"]] for k, v in data["breakdown"].items()])
    finish(data, args.output, show_phases=True)
    return 0
