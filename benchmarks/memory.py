"""``python -m benchmarks memory``: peak memory of ``onetake run`` for a short and a long source.

The whole process tree is sampled with psutil (the onetake client, the Dask scheduler's and workers'
processes, every ffmpeg they start): the peak is the largest total RSS (and PSS) seen at one instant.
Target: the long source's peak is at most 1.1 x the short one's (memory must not grow with length).
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from .baselines import Fanout, onetake_run_argv
from .common import (
    MEDIA,
    RESULTS,
    clean,
    describe_source,
    finish,
    header,
    make_source,
    measure,
    print_table,
    ratio,
    run_step,
    wait_for_quiet,
)
from .fanout import DEFAULT_CHANNELS

TARGET = 1.1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--short-seconds", type=float, default=30.0, help="the short source's length (default 30)")
    p.add_argument("--long-seconds", type=float, default=300.0, help="the long source's length (default 300)")
    p.add_argument("--short-source", type=Path, help="use this file as the short source")
    p.add_argument("--long-source", type=Path, help="use this file as the long source")
    p.add_argument("--channels", default=DEFAULT_CHANNELS, help=f"channels to make (default {DEFAULT_CHANNELS})")
    p.add_argument("--output", type=Path, default=RESULTS / "memory.json", help="the JSON result file")
    p.add_argument("--interval", type=float, default=0.25, help="seconds between memory samples (default 0.25)")
    p.add_argument("--with-expert", action="store_true",
                   help="also sample the hand-written single ffmpeg (the fanout benchmark's expert) for reference")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="before each run, wait up to this long for other processes to go quiet")
    p.add_argument("--stall-timeout", type=float, default=0.0, metavar="SECONDS",
                   help="run onetake with a farm config whose stall_timeout_s is this (0: onetake's default)")
    p.add_argument("--onetake-args", default="", help="extra arguments for `onetake run`")
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder")


def main(args: argparse.Namespace) -> int:
    data = header("memory")
    channels = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    work = args.work.resolve() / "memory"
    sources = {"short": args.short_source.resolve() if args.short_source else make_source(args.short_seconds),
               "long": args.long_source.resolve() if args.long_source else make_source(args.long_seconds)}
    runs: dict[str, Any] = {}
    described: dict[str, Any] = {}
    extra = shlex.split(args.onetake_args)
    if args.stall_timeout:
        work.mkdir(parents=True, exist_ok=True)
        config = work.parent / "memory-farm.toml"
        config.write_text(f"[farm]\nstall_timeout_s = {args.stall_timeout:g}\n", encoding="utf-8")
        extra += ["--config", str(config)]
    for label, source in sources.items():
        desc = describe_source(source)
        described[label] = desc
        out = work / label
        clean(out)
        result: dict[str, Any] = {}

        def body(steps: list[dict[str, Any]]) -> None:
            proc = run_step("onetake run", onetake_run_argv(source, channels, out, extra), steps, capture_stdout=True)
            result.update(json.loads(proc.stdout))

        print(f"{label}: onetake run on {source.name} ({desc['duration_s']} s) ...", flush=True)
        wait_for_quiet(args.quiet_wait)
        m = measure(body, interval=args.interval, pss=True, keep_going=True)
        clean(out)
        m.extra["ok"] = bool(result.get("ok")) and "error" not in m.extra
        runs[label] = {"source_s": desc["duration_s"], **m.to_dict()}
        print(f"  wall {m.wall_s:.1f} s, peak RSS {m.memory['peak_rss_mb']} MB, peak PSS {m.memory['peak_pss_mb']} MB"
              + ("" if m.extra["ok"] else "  -- onetake run FAILED (see runs.*.error)"), flush=True)
        if args.with_expert:
            fan = Fanout.build(source, channels)
            base = work / f"{label}-expert"
            clean(base)
            base.mkdir(parents=True)
            fan.prepare(base)

            def expert(steps: list[dict[str, Any]]) -> None:
                measured = fan.measure_loudness(base, steps)
                fan.analyze(base, steps)  # the analysis, the report and the follow crop's commands
                run_step("one ffmpeg, every output", fan.expert_command(base, measured), steps)

            print(f"{label}: expert ffmpeg ...", flush=True)
            e = measure(expert, interval=args.interval, pss=True)
            clean(base)
            runs[f"{label}-expert"] = {"source_s": desc["duration_s"], **e.to_dict()}
    clean(work)
    ratios = {"peak_rss_long_vs_short": ratio(runs["long"]["peak_rss_mb"], runs["short"]["peak_rss_mb"]),
              "peak_pss_long_vs_short": ratio(runs["long"]["peak_pss_mb"], runs["short"]["peak_pss_mb"])}
    if args.with_expert:
        ratios["expert_peak_rss_long_vs_short"] = ratio(runs["long-expert"]["peak_rss_mb"],
                                                        runs["short-expert"]["peak_rss_mb"])
    value = ratios["peak_rss_long_vs_short"]
    failed = [k for k in ("short", "long") if not runs[k].get("ok")]
    data.update({
        "sources": described,
        "channels": list(channels),
        "sample_interval_s": args.interval,
        "onetake_extra_args": extra,
        "runs": runs,
        "ratios": ratios,
        "targets": {"peak_rss_long_vs_short": {"max": TARGET, "value": value,
                                               "met": (value is not None and value <= TARGET) if not failed
                                               else None}},
        "failed_runs": failed,
    })
    print_table(f"memory: onetake run --channels {','.join(channels)}",
                ["run", "source_s", "wall_s", "peak_rss_mb", "peak_pss_mb", "largest_process_mb"],
                [[k, r["source_s"], r["wall_s"], r["peak_rss_mb"], r["peak_pss_mb"], r["peak_single_process_rss_mb"]]
                 for k, r in runs.items()])
    for k, v in ratios.items():
        print(f"  {k:<32} {v}")
    finish(data, args.output)
    for k in failed:
        print(f"onetake run failed on the {k} source: {runs[k].get('error', '')[-1500:]}")
    return 1 if failed else 0
