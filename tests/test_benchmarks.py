"""The benchmark entry point still runs and writes the JSON shape CI jobs compare (timing is not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_fanout_writes_comparable_json(tmp_path):
    output = tmp_path / "fanout.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "fanout", "--seconds", "1", "--channels",
                             "tv,radio,edit", "--output", str(output)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert set(data["runs"]) == {"naive", "expert", "onetake"}
    for run in data["runs"].values():
        assert run["wall_s"] > 0 and run["cpu_s"] > 0
    ratio = data["runs"]["onetake"]["wall_s"] / data["runs"]["naive"]["wall_s"]
    assert abs(data["ratios"]["onetake_vs_naive"] - ratio) < 0.002
    assert "onetake_vs_expert" in data["ratios"]


def test_storage_writes_comparable_json(tmp_path):
    output = tmp_path / "storage.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "storage", "--large-files", "1", "--large-mb", "9",
                             "--segments", "8", "--segment-kb", "16", "--repeat", "1", "--work", str(tmp_path),
                             "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert set(data["sets"]) == {"large", "segments"}
    for kind, s in data["sets"].items():
        runs = s["runs"]
        assert set(runs) == {"boto3", "onetake"} and all(r["bytes"] == s["bytes"] > 0 for r in runs.values())
        expected = runs["onetake"]["mb_per_s"] / runs["boto3"]["mb_per_s"]
        assert abs(data["ratios"][f"{kind}_onetake_vs_boto3"] - expected) < 0.002


def test_watch_benchmark_runs_tiny(tmp_path):
    output = tmp_path / "watch.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "watch", "--files", "10", "--size", "160x90",
                             "--settle", "0.3", "--urgent", "1", "--work", str(tmp_path / "work"),
                             "--output", str(output)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert data["exactly_once"] is True and data["files"] == 10
    assert data["throughput_files_per_min"] > 0 and data["peak_rss_mb"] > 0
    latency = data["ingest_latency_s"]["stable_to_started"]
    assert 0 <= latency["p50"] <= latency["p95"]
    assert data["urgent"]["backlog_stable_to_delivered_s"] > 0 and data["urgent"]["bulk_backlog_when_dropped"] >= 10
