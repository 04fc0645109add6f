"""The benchmark entry point still runs and writes the JSON shape CI jobs compare (timing is not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.heavy  # about 30 s each: the CI job that runs the benchmarks runs them
def test_fanout_writes_comparable_json(tmp_path):
    output = tmp_path / "fanout.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "fanout", "--seconds", "1", "--channels",
                             "tv,short,radio,edit", "--work", str(tmp_path / "work"), "--output", str(output)],
                            check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert set(data["runs"]) == {"naive", "expert", "onetake"}
    for run in data["runs"].values():
        assert run["wall_s"] > 0 and run["cpu_s"] > 0
    ratio = data["runs"]["onetake"]["wall_s"] / data["runs"]["naive"]["wall_s"]
    assert abs(data["ratios"]["onetake_vs_naive"] - ratio) < 0.002
    assert "onetake_vs_expert" in data["ratios"]
    # the baselines make every rendition onetake makes, the follow-framed one included, and pass its checks
    assert {o["profile"] for o in data["outputs"]} == set(data["renditions"])
    assert [o["profile"] for o in data["outputs"] if o.get("framing", "").startswith("follow")] == ["short-vertical"]
    for name in ("naive", "expert"):
        run = data["runs"][name]
        assert run["verified"]["ok"], run["verified"]["failed"]
        assert run["analysis_wall_s"] > 0 and run["steps"][1]["step"].startswith("analysis")


@pytest.mark.heavy  # about 30 s each: the CI job that runs the benchmarks runs them
def test_overhead_runs_with_the_analysis_and_a_follow_encode(tmp_path):
    output = tmp_path / "overhead.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "overhead", "--seconds", "1", "--repeat", "1",
                             "--channels", "short", "--work", str(tmp_path / "work"), "--output", str(output)],
                            check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    ratio = data["runs"]["onetake"]["wall_s"] / data["runs"]["direct"]["wall_s"]
    assert abs(data["ratios"]["onetake_vs_direct"] - ratio) < 0.002
    steps = [s["step"] for s in data["runs"]["direct"]["steps"]]
    assert steps[0] == "measure" and steps[1].startswith("analysis") and steps.count("encode") == 2
    assert {"report tasks, one after another", "deliver tasks, one after another"} <= set(data["breakdown"])


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


@pytest.mark.heavy  # about 10 s each: the CI job that runs the benchmarks runs them
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


@pytest.mark.heavy  # about 10 s each: the CI job that runs the benchmarks runs them
def test_framing_writes_its_ratios(tmp_path):
    output = tmp_path / "framing.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "framing", "--seconds", "1", "--repeat", "1",
                             "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert set(data["runs"]) == {"center", "parked", "follow", "sweep"}
    assert data["source"]["scene"] == "speaker" and 0 < data["parked_x"] < 1
    ratio = data["runs"]["follow"]["wall_s"] / data["runs"]["center"]["wall_s"]
    assert abs(data["ratios"]["follow_vs_center"] - ratio) < 0.002
    assert data["analysis"]["wall_s"] > 0 and data["sendcmd_lines"]["parked"] == 1
    assert "sendcmd" in " ".join(data["commands"]["follow"]) and "sendcmd" not in " ".join(data["commands"]["center"])


@pytest.mark.heavy  # about 10 s each: the CI job that runs the benchmarks runs them
def test_analyze_writes_comparable_json(tmp_path):
    output = tmp_path / "analyze.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "analyze", "--seconds", "2", "--output", str(output)],
                            check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert {"decode", "scenedetect", "onetake"} <= set(data["runs"])
    for name in ("decode", "onetake"):
        assert data["runs"][name]["wall_s"] > 0 and data["runs"][name]["cpu_s"] > 0
    ratio = data["runs"]["onetake"]["wall_s"] / data["runs"]["decode"]["wall_s"]
    assert abs(data["ratios"]["onetake_vs_decode"] - ratio) < 0.002
    if data["runs"]["scenedetect"].get("ran", True):
        assert data["ratios"]["onetake_vs_scenedetect"] > 0
    else:  # not installed: said so, and no ratio made up
        assert "not installed" in data["runs"]["scenedetect"]["reason"]
        assert data["ratios"]["onetake_vs_scenedetect"] is None
    assert data["accuracy"]["fifty_cuts"]["truth"] == 50


def test_compare_flags_a_regressed_ratio_and_passes_a_steady_one(tmp_path):
    reference = Path(__file__).parents[1] / "benchmarks" / "reference" / "fanout.json"
    old = json.loads(reference.read_text(encoding="utf-8"))
    slower = {**old, "ratios": {**old["ratios"], "onetake_vs_expert": old["ratios"]["onetake_vs_expert"] * 1.08}}
    steady = {**old, "ratios": {**old["ratios"], "onetake_vs_expert": old["ratios"]["onetake_vs_expert"] * 1.03}}
    for name, data in (("slower", slower), ("steady", steady)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")

    def compare(new: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "benchmarks", "compare", str(reference), new, *extra],
                              capture_output=True, text=True, cwd=Path(__file__).parents[1])

    regressed = compare(str(tmp_path / "slower.json"), "--max-regression", "5%")
    assert regressed.returncode == 1 and "ratios.onetake_vs_expert" in regressed.stderr
    assert "REGRESSED" in regressed.stdout
    assert compare(str(tmp_path / "steady.json"), "--max-regression", "5%").returncode == 0
    assert compare(str(tmp_path / "slower.json"), "--max-regression", "0.1").returncode == 0
    other = Path(__file__).parents[1] / "benchmarks" / "reference" / "storage.json"
    mismatched = compare(str(other))
    assert mismatched.returncode == 2 and "compare runs of one benchmark" in mismatched.stderr


def test_compare_judges_efficiency_upwards_and_a_lost_figure_as_a_regression(tmp_path):
    def run(old: dict, new: dict) -> subprocess.CompletedProcess[str]:
        (tmp_path / "old.json").write_text(json.dumps({"benchmark": "scale", **old}), encoding="utf-8")
        (tmp_path / "new.json").write_text(json.dumps({"benchmark": "scale", **new}), encoding="utf-8")
        return subprocess.run([sys.executable, "-m", "benchmarks", "compare", str(tmp_path / "old.json"),
                               str(tmp_path / "new.json")], capture_output=True, text=True, cwd=ROOT)

    assert run({"efficiency": {"2": 0.9}}, {"efficiency": {"2": 0.95}}).returncode == 0
    assert run({"efficiency": {"2": 0.9}}, {"efficiency": {"2": 0.8}}).returncode == 1
    assert run({"first_publish_vs_duration": 0.4}, {"first_publish_vs_duration": 0.5}).returncode == 1
    assert run({"ratios": {"onetake_vs_expert": 0.9}}, {"ratios": {}}).returncode == 1
    assert run({"ratios": {"expert_vs_naive": 0.5}, "efficiency": {"2": 0.9}},
               {"ratios": {"expert_vs_naive": 0.9}, "efficiency": {"2": 0.9}}).returncode == 0  # baselines only


def test_scale_reads_each_tasks_cost_from_dask_keys_whose_prefix_is_its_kind():
    from distributed.utils import key_split

    from benchmarks.scale import _task_costs
    from onetake.pipeline.models import Task
    from onetake.workers.executor import dask_key

    tasks = [Task("clip-ab@first/chunk/all-0-0001", "chunk", {}, ()),
             Task("clip-ab/analyze-part/sound", "analyze-part", {}, ())]
    plan = SimpleNamespace(tasks=tasks)  # all _task_costs reads of a plan

    def record(task: Task, launch: int, start: float, stop: float) -> dict:
        return {"key": dask_key(task, "0123abcd", launch), "startstops": [{"action": "compute", "start": start,
                                                                           "stop": stop}]}

    stream = [record(tasks[0], 1, 100.0, 103.0), record(tasks[0], 2, 104.0, 110.0), record(tasks[1], 1, 101.0, 102.0),
              {"key": "finalize-0123", "startstops": [{"action": "compute", "start": 100.0, "stop": 200.0}]}]
    costs, starts = _task_costs(plan, stream, began=99.0)
    assert costs == {tasks[0].id: 9.0, tasks[1].id: 1.0} and starts == {tasks[0].id: 1.0, tasks[1].id: 2.0}
    assert [key_split(dask_key(t, "0123abcd", 1)) for t in tasks] == ["chunk", "analyze-part"], "learned per kind"


def test_scale_models_an_hour_on_more_workers_from_measured_task_costs():
    from benchmarks.scale import HOUR_S, _bounds, _makespan

    # a 20 s programme measured on one worker: two 10 s chunks of 20 s each, a sound encode after the measure,
    # and the join (its gate 0.5 s for its one join)
    tasks = [{"id": "a/measure", "kind": "measure", "heavy": False, "deps": [], "seconds": 1.0},
             {"id": "a/encode/sound", "kind": "encode", "heavy": True, "deps": ["a/measure"], "seconds": 1.0},
             *({"id": f"a/chunk/all-0-000{i}", "kind": "chunk", "heavy": True, "deps": [], "seconds": 20.0,
                "programme_s": 10.0} for i in range(2)),
             {"id": "a/join/all-0", "kind": "join", "heavy": False, "seconds": 1.5, "gate_s": 0.5, "joins": 1,
              "deps": ["a/chunk/all-0-0000", "a/chunk/all-0-0001", "a/encode/sound"]}]
    spans = {w: _makespan(tasks, 20.0, w, 10.0) for w in (4, 16, 64)}
    chunks = HOUR_S / 10.0 * 20.0  # 360 chunks of 20 s
    assert spans[4] >= chunks / 4 and spans[4] > spans[16] > spans[64]
    # on 64 workers the hour's 360 chunks take six rounds (120 s), done before the measure and the sound (each
    # 180 s for the hour) are: those and the join (180 s, and 0.5 s of gate for each of 359 joins) set the pace
    assert spans[64] == 3 * 1.0 * HOUR_S / 20 + 0.5 * 359
    # where the workers said what a task cost in CPU, that is its cost (not its time on a shared core)
    halved = [{**t, "cpu_s": t["seconds"] / 2} for t in tasks]
    assert _makespan(halved, 20.0, 64, 10.0) == spans[64] / 2
    bounds = _bounds(tasks, 20.0, 10.0)
    assert bounds["critical_path"] == round(spans[64] / HOUR_S, 4)
    assert bounds["work"]["4"] == round((HOUR_S / 20 * 1.0 + chunks) / 4 / HOUR_S, 4) <= spans[4] / HOUR_S
