"""``python -m benchmarks scale``: one long source, the full channel set, on a farm of k = 1, 2, ... workers.

Each worker is a real ``dask worker`` (one process, two threads, one ``encode`` slot) pinned with ``taskset`` to
its own cores (the usable cores split evenly by the largest k, so a worker has the same cores at every k), beside
a ``dask scheduler`` on loopback; ``onetake``'s own batch path (plan, Dask, encode, join and gate, package,
verify, deliver) runs the source on it. Measured, all in the same run:

- the wall time at each k, its speedup and efficiency ``T1 / (k * Tk)`` (key ``efficiency``);
- the price of chunking itself: the chunked encode on one worker over the unchunked one
  (``ratios.onetake_chunked_vs_unchunked``);
- the cost of each task (Dask's task stream): every chunk, the joins and their sync gate, the rest;
- from those costs, the simulated makespan of a one-hour source on 4, 16 and 64 workers like these (every task's
  cost scaled with the programme's length, chunks as many as the hour holds; encode tasks one per worker slot,
  the others beside them), as a fraction of the hour.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from onetake.pipeline.config import FarmConfig
from onetake.pipeline.models import JobPlan
from onetake.pipeline.plan.params import TaskKind
from onetake.pipeline.profiles import load_catalog
from onetake.pipeline.run import run_batch
from onetake.workers.cluster import DaskFarm
from onetake.workers.executor import COST_TOPIC, task_id_of

from .common import MEDIA, RESULTS, Clock, CommandFailed, clean, finish, header, make_source, print_table

DEFAULT_CHANNELS = "tv,web,app,short,radio,edit"
HOUR_S = 3600.0
SIMULATED_WORKERS = (4, 16, 64)
TARGET_EFFICIENCY = 0.85
TARGET_CHUNKED_VS_UNCHUNKED = 1.05
TARGET_MAKESPAN_16 = 0.1
WORK = MEDIA / "work" / "scale"  # each run's farm and delivery, cleaned before it runs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", type=Path, help="a source file (default: a generated test pattern)")
    p.add_argument("--seconds", type=float, default=300.0, help="length of the generated source (default 300)")
    p.add_argument("--size", default="1920x1080", help="picture size of the generated source (default 1920x1080)")
    p.add_argument("--channels", default=DEFAULT_CHANNELS, help=f"channels to make (default {DEFAULT_CHANNELS})")
    p.add_argument("--workers", default="", help="the k to measure, e.g. 1,2,4 (default 1 up to the usable cores)")
    p.add_argument("--chunk-s", type=float, default=FarmConfig.chunk_s,
                   help=f"chunk length (default {FarmConfig.chunk_s:g}, the farm's)")
    p.add_argument("--hour-chunk-s", type=float, default=FarmConfig.chunk_s,
                   help=f"chunk length of the modelled one-hour programme (default {FarmConfig.chunk_s:g}, the "
                        f"farm's: a shorter --chunk-s only makes a short source measurable)")
    p.add_argument("--output", type=Path, default=RESULTS / "scale.json", help="the JSON result file")


def main(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupted)  # a stopped benchmark still stops its scheduler and workers
    if shutil.which("taskset") is None:
        raise CommandFailed("taskset (util-linux) pins each worker to its cores; install it (apt-get install "
                            "util-linux)")
    cores = sorted(os.sched_getaffinity(0))
    ks = [int(k) for k in args.workers.split(",")] if args.workers else list(range(1, len(cores) + 1))
    if not ks or min(ks) < 1 or max(ks) > len(cores):
        raise CommandFailed(f"--workers must lie between 1 and the {len(cores)} usable cores")
    if 1 not in ks:
        ks = [1, *ks]
    source = args.source.resolve() if args.source else make_source(args.seconds, MEDIA, args.size)
    per_worker = len(cores) // max(ks)
    data = header("scale")
    data.update({"source": str(source), "channels": args.channels, "chunk_s": args.chunk_s,
                 "cores_per_worker": per_worker, "runs": {}})
    runs: dict[str, dict[str, Any]] = {}
    for name, k, chunked in [("unchunked-1", 1, False), *((f"chunked-{k}", k, True) for k in ks)]:
        print(f"running {name} ({k} worker{'s' if k > 1 else ''} of {per_worker} core(s)) ...", file=sys.stderr,
              flush=True)
        runs[name] = _run(source, args, k, [cores[i * per_worker:(i + 1) * per_worker] for i in range(k)], chunked)
    data["runs"] = runs
    duration = runs["chunked-1"]["duration_s"]
    t1 = runs["chunked-1"]["wall_s"]
    data["efficiency"] = {str(k): round(t1 / (k * runs[f"chunked-{k}"]["wall_s"]), 3) for k in ks}
    data["speedup"] = {str(k): round(t1 / runs[f"chunked-{k}"]["wall_s"], 3) for k in ks}
    data["ratios"] = {"onetake_chunked_vs_unchunked": round(t1 / runs["unchunked-1"]["wall_s"], 3)}
    model = runs["chunked-1"]["tasks"]
    data["hour_chunk_s"] = args.hour_chunk_s
    data["simulated"] = {str(w): round(_makespan(model, duration, w, args.hour_chunk_s) / HOUR_S, 4)
                         for w in SIMULATED_WORKERS}
    data["simulated_bounds"] = _bounds(model, duration, args.hour_chunk_s)
    data["targets"] = {"efficiency_at_least": TARGET_EFFICIENCY,
                       "chunked_vs_unchunked_at_most": TARGET_CHUNKED_VS_UNCHUNKED,
                       "simulated_16_workers_hour_fraction_at_most": TARGET_MAKESPAN_16}
    print_table(f"onetake scale: {duration:g} s source, channels {args.channels}, {per_worker} core(s) per worker",
                ["run", "workers", "wall s", "speedup", "efficiency", "chunks", "chunk s (mean)", "join s",
                 "gate s"],
                [[name, r["workers"], r["wall_s"], data["speedup"].get(str(r["workers"])) if r["chunked"] else None,
                  data["efficiency"].get(str(r["workers"])) if r["chunked"] else None, r["chunks"],
                  r["chunk_mean_s"], r["join_s"], r["gate_s"]] for name, r in runs.items()])
    print(f"\nchunked vs unchunked on one worker: {data['ratios']['onetake_chunked_vs_unchunked']:.3f} "
          f"(target <= {TARGET_CHUNKED_VS_UNCHUNKED})")
    print("simulated makespan of a one-hour source, as a fraction of the hour: " +
          ", ".join(f"{w} workers {f:.3f}" for w, f in data["simulated"].items()) +
          f" (target at 16: < {TARGET_MAKESPAN_16})")
    bounds = data["simulated_bounds"]
    print(f"what no schedule beats: the critical path {bounds['critical_path']:.3f} of the hour; the encode work "
          "spread evenly, " + ", ".join(f"{w} workers {f:.3f}" for w, f in bounds["work"].items()))
    finish(data, args.output)
    return 0


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Recorder:
    """A ``pipeline.run.View`` that keeps the plans and every task's result."""

    def __init__(self, plans: list[JobPlan]) -> None:
        self.plans = plans
        self.results: dict[str, Any] = {}

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def on_progress(self, task_id: str, fraction: float) -> None:
        return None

    def on_event(self, plan: JobPlan, task: Any, state: str, detail: Any) -> None:
        if state == "failed":
            raise CommandFailed(f"{task.id} failed: {detail}")
        self.results[task.id] = detail


def _run(source: Path, args: argparse.Namespace, k: int, core_sets: list[list[int]], chunked: bool) -> dict[str, Any]:
    import distributed

    folder = WORK / f"{'chunked' if chunked else 'unchunked'}-{k}"
    clean(folder)
    folder.mkdir(parents=True)
    dask = Path(sys.executable).with_name("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(folder / "dask.log", "wb")
    clock = Clock().__enter__()  # until every worker is reaped: its CPU (and its ffmpegs') is the run's own
    processes = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--dashboard-address", ":0"], stdout=log, stderr=log)]
    try:
        for i, cpus in enumerate(core_sets):
            scratch = folder / f"worker-{i}"
            scratch.mkdir()
            processes.append(subprocess.Popen(
                ["taskset", "-c", ",".join(map(str, cpus)), str(dask), "worker", address, "--nworkers", "1",
                 "--nthreads", "2", "--resources", "encode=1", "--local-directory", str(scratch), "--no-nanny",
                 "--no-dashboard"], stdout=log, stderr=log))
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(k, timeout=60)
            client.get_task_stream(start=0, stop=0)  # the scheduler records task times from now on
            settings = FarmConfig(out=str(folder / "out"), scheduler=address, channels=tuple(args.channels.split(",")),
                                  chunk_s=args.chunk_s, chunk_min_s=FarmConfig.chunk_min_s if chunked else 86400.0)
            if chunked and settings.chunk_min_s >= args.seconds:
                settings = replace(settings, chunk_min_s=max(10.0, min(args.chunk_s, args.seconds / 2)))
            recorder: list[_Recorder] = []

            def view_for(plans: list[JobPlan]) -> _Recorder:
                recorder.append(_Recorder(plans))
                return recorder[0]

            began, started = time.time(), time.monotonic()
            outcomes = run_batch([str(source)], settings, load_catalog(), DaskFarm(settings), view_for=view_for)
            wall = time.monotonic() - started
            stream = client.get_task_stream(start=time.time() - wall - 5)
            cpu = {event["task"]: event["cpu_s"] for _, event in client.get_events(COST_TOPIC)}
        if not all(o.ok for o in outcomes):
            raise CommandFailed(f"{source}: {outcomes[0].failure_line()}")
    finally:
        for p in reversed(processes):
            p.terminate()
        for p in processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()
        clock.__exit__(None, None, None)
    [plan] = recorder[0].plans
    costs, starts = _task_costs(plan, stream, began)
    chunks = [costs[t.id] for t in plan.tasks if t.kind == TaskKind.CHUNK and t.id in costs]
    joins = [recorder[0].results[t.id] for t in plan.tasks if t.kind == TaskKind.JOIN]
    shutil.rmtree(folder / "out", ignore_errors=True)
    return {"workers": k, "chunked": chunked, "cores": core_sets, "wall_s": round(wall, 2),
            "cpu_s": round(clock.cpu_s, 2), "other_cpu_s": round(clock.other_cpu_s, 2),
            "duration_s": round(plan.source.duration, 3), "chunks": len(chunks),
            "chunk_mean_s": round(sum(chunks) / len(chunks), 2) if chunks else None,
            "join_s": round(sum(j.get("join_s", 0.0) for j in joins), 2) if joins else None,
            "gate_s": round(sum(j.get("gate_s", 0.0) for j in joins), 2) if joins else None,
            "tasks": [{"id": t.id, "kind": t.kind, "heavy": t.heavy, "deps": list(t.deps),
                       "seconds": round(costs.get(t.id, 0.0), 3),
                       "started_s": round(starts[t.id], 2) if t.id in starts else None,
                       "cpu_s": round(cpu[t.id], 3) if t.id in cpu else None,
                       "programme_s": t.params["duration"] if _stretch(t.kind, t.params) else None,
                       **({"joins": len(t.params["references"]), "gate_s": recorder[0].results[t.id]["gate_s"]}
                          if t.kind == TaskKind.JOIN else {})}
                      for t in plan.tasks]}


def _stretch(kind: str, params: dict[str, Any]) -> bool:
    """A task whose work is a stretch of the programme (a chunk, a part of the pictures' analysis): a longer
    programme has more of them, not longer ones."""
    return kind == TaskKind.CHUNK or kind == TaskKind.ANALYZE_PART and params["part"] == "pictures"


def _task_costs(plan: JobPlan, stream: list[dict[str, Any]], began: float) -> tuple[dict[str, float],
                                                                                      dict[str, float]]:
    """Seconds each of the plan's tasks computed on its worker (its Dask keys name it: ``task_id_of``), and when
    it first started, in seconds from ``began`` (the run's start, by the clock)."""
    costs: dict[str, float] = {}
    starts: dict[str, float] = {}
    tasks = {t.id: t for t in plan.tasks}
    for record in stream:
        key = record["key"] if isinstance(record["key"], str) else str(record["key"])
        task = tasks.get(task_id_of(key))
        computed = [s for s in record["startstops"] if s["action"] == "compute"]
        if task is not None and computed:
            costs[task.id] = costs.get(task.id, 0.0) + sum(s["stop"] - s["start"] for s in computed)
            starts[task.id] = min(starts.get(task.id, math.inf), *(s["start"] - began for s in computed))
    return costs, starts


def _makespan(tasks: list[dict[str, Any]], duration: float, workers: int, chunk_s: float) -> float:
    """When the last task of a one-hour programme ends on ``workers`` workers like the measured ones."""
    return _schedule(_hour_model(tasks, duration, chunk_s), workers)


def _bounds(tasks: list[dict[str, Any]], duration: float, chunk_s: float) -> dict[str, Any]:
    """What no schedule of a one-hour programme beats, as fractions of the hour: its critical path (every
    encode-slot task on a slot of its own) and, per worker count, its encode-slot work spread evenly over them."""
    model = _hour_model(tasks, duration, chunk_s)
    work = sum(t["seconds"] for t in model if t["heavy"])
    return {"critical_path": round(_schedule(model, max(1, sum(t["heavy"] for t in model))) / HOUR_S, 4),
            "work": {str(w): round(work / w / HOUR_S, 4) for w in SIMULATED_WORKERS}}


def _in_cpu(task: dict[str, Any]) -> dict[str, Any]:
    """A measured task with its CPU time as its cost (its gate's share of it in proportion), where known."""
    if task.get("cpu_s") is None:
        return task
    share = task["cpu_s"] / task["seconds"] if task["seconds"] else 1.0
    return {**task, "seconds": task["cpu_s"], **({"gate_s": task["gate_s"] * share} if "gate_s" in task else {})}


def _hour_model(tasks: list[dict[str, Any]], duration: float, chunk_s: float) -> list[dict[str, Any]]:
    """The measured tasks grown to a one-hour programme.

    A task costs what it took in CPU (its thread's and its ffmpegs'), where the worker said so, else its time on
    the worker (which on a busy worker includes waiting for the CPU). Each series of stretches (chunks, parts of
    the analysis) becomes as many of ``chunk_s`` as the hour holds, each costing the series' measured seconds per
    second of programme; a join's sync gate costs as much per join as measured; every other task's cost grows with
    the programme's length."""
    tasks = [_in_cpu(t) for t in tasks]
    scale = HOUR_S / duration
    count = max(1, round(HOUR_S / chunk_s))
    series: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        if t.get("programme_s") is not None:
            series.setdefault(t["id"].rsplit("-", 1)[0], []).append(t)
    replaced: dict[str, list[str]] = {}
    model: list[dict[str, Any]] = []
    for t in tasks:
        if t["kind"] == TaskKind.JOIN:  # the gate's cost grows with the joins, the rest with the programme
            gate = t["gate_s"] * (count - 1) / max(1, t["joins"])
            model.append({**t, "seconds": (t["seconds"] - t["gate_s"]) * scale + gate})
            continue
        if t.get("programme_s") is None:
            model.append({**t, "seconds": t["seconds"] * scale})
            continue
        name = t["id"].rsplit("-", 1)[0]
        if name in replaced:
            replaced[t["id"]] = replaced[name]
            continue
        members = series[name]
        per_second = sum(m["seconds"] for m in members) / sum(m["programme_s"] for m in members)
        ids = [f"{name}-hour{i:04d}" for i in range(count)]
        replaced[name] = replaced[t["id"]] = ids
        model += [{"id": i, "kind": t["kind"], "heavy": True, "deps": t["deps"], "seconds": per_second * chunk_s}
                  for i in ids]
    for t in model:
        t["deps"] = list(dict.fromkeys(d for dep in t["deps"] for d in replaced.get(dep, [dep])))
    return model


def _schedule(tasks: list[dict[str, Any]], workers: int) -> float:
    """Greedy list scheduling in the plan's order (which puts every task after its dependencies): a task starts
    when they are done and, for one that takes an encode slot, when the earliest free slot is; the light tasks
    run beside them on the workers' other threads."""
    done: dict[str, float] = {}
    slots = [0.0] * workers
    heapq.heapify(slots)
    for t in tasks:
        ready = max((done[d] for d in t["deps"] if d in done), default=0.0)
        if t["heavy"]:
            free = heapq.heappop(slots)
            start = max(ready, free)
            heapq.heappush(slots, start + t["seconds"])
        else:
            start = ready
        done[t["id"]] = start + t["seconds"]
    return max(done.values(), default=0.0)
