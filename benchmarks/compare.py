"""``python -m benchmarks compare OLD.json NEW.json --max-regression 5%``: the figures two runs of one benchmark
share, side by side; exit 1 when any got worse by more than the allowance (for CI jobs), 2 when the files cannot
be compared.

Compared are the ratios each benchmark writes to be read by other tools: under ``ratios`` and ``cpu_ratios``
those that involve onetake (``onetake_vs_*``, ``branded_vs_onetake``: lower is better; one baseline against
another, ``expert_vs_naive``, judges no change of onetake's), ``efficiency`` (higher is better), and the top-level
``first_publish_vs_duration`` and ``onetake_vs_expert`` (lower is better). Ratios, not seconds: the two runs may
be on differently loaded machines, while each ratio was measured within one run. A figure the old run has and the
new one lacks counts as a regression.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import print_table

LOWER_IS_BETTER = ("ratios", "cpu_ratios")
HIGHER_IS_BETTER = ("efficiency",)
TOP_LEVEL_LOWER = ("first_publish_vs_duration", "onetake_vs_expert")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", type=Path, help="the reference run's JSON")
    p.add_argument("new", type=Path, help="the run to judge")
    p.add_argument("--max-regression", default="5%", help="how much worse a figure may get, e.g. 5%% or 0.05 "
                                                          "(default 5%%)")


def allowance(text: str) -> float:
    value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 <= value < 10:
        raise ValueError(text)
    return value


def figures(data: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """Every comparable figure: its name, its value and whether lower is better."""
    found: dict[str, tuple[float, bool]] = {}
    for section, lower in [*((s, True) for s in LOWER_IS_BETTER), *((s, False) for s in HIGHER_IS_BETTER)]:
        for key, value in (data.get(section) or {}).items():
            if lower and "onetake" not in key:
                continue  # baselines against each other
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[f"{section}.{key}"] = (float(value), lower)
    for key in TOP_LEVEL_LOWER:
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[key] = (float(value), True)
    return found


def read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"compare: {path}: not a readable benchmark JSON ({exc})") from None
    if not isinstance(data, dict) or "benchmark" not in data:
        raise SystemExit(f"compare: {path}: no 'benchmark' key; give files written by `python -m benchmarks NAME`")
    return data


def main(args: argparse.Namespace) -> int:
    try:
        allowed = allowance(args.max_regression)
    except ValueError:
        print(f"compare: --max-regression {args.max_regression!r}: give a share such as 5% or 0.05", file=sys.stderr)
        return 2
    try:
        old, new = read(args.old), read(args.new)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    if old["benchmark"] != new["benchmark"]:
        print(f"compare: {args.old} is a '{old['benchmark']}' run and {args.new} a '{new['benchmark']}' run; "
              f"compare runs of one benchmark", file=sys.stderr)
        return 2
    before, after = figures(old), figures(new)
    if not before:
        print(f"compare: {args.old} holds no ratio to compare ('{old['benchmark']}' writes none)", file=sys.stderr)
        return 2
    rows, worse = [], []
    for key, (a, lower) in before.items():
        if key not in after:
            rows.append([key, a, None, "missing", "lower" if lower else "higher", "REGRESSED"])
            worse.append(key)
            continue
        b = after[key][0]
        change = (b - a) / a if a else (0.0 if b == a else (1.0 if b > a else -1.0))
        regressed = change > allowed if lower else -change > allowed
        rows.append([key, a, b, f"{change:+.1%}", "lower" if lower else "higher",
                     "REGRESSED" if regressed else "ok"])
        if regressed:
            worse.append(key)
    print_table(f"{old['benchmark']}: {args.old} -> {args.new} (allowed {allowed:.1%} worse)",
                ["figure", "old", "new", "change", "better", "verdict"], rows)
    for key in sorted(set(after) - set(before)):
        print(f"  {key}: new in this run, not compared")
    if worse:
        print(f"compare: {len(worse)} figure(s) regressed by more than {allowed:.1%}: {', '.join(worse)}",
              file=sys.stderr)
    return 1 if worse else 0
