"""What every benchmark shares: timing (wall, CPU, peak memory of the process tree), the generated source,
the table on the terminal and the JSON file a CI job compares.

CPU time is the ``RUSAGE_CHILDREN`` delta of this process: every descendant that was waited for (ffmpeg
children of Dask workers included, since each parent reaps its children) adds its user + system time.
Memory is sampled with psutil over every live descendant of this process; the peak is the largest sum
of RSS (and of PSS, which counts shared pages once) seen at one instant.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from onetake.workers.ffmpeg import ffmpeg_binary, ffmpeg_version

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MEDIA = HERE / "media"          # git-ignored: generated sources and scratch outputs
RESULTS = HERE / "results"      # *.json there is git-ignored
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------------------
# the source


# how generated sources are coded: an HD camera file's H.264 and AAC, tagged BT.709 limited range
SOURCE_CODING = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-g", "50",
                 "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
                 "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart"]


def make_source(seconds: float, folder: Path = MEDIA, size: str = "1920x1080") -> Path:
    """A 25p test pattern (testsrc2) of ``size`` (1920x1080) with a stereo tone, cached by length under ``folder``.

    The picture is converted to Y'CbCr with the BT.709 matrix and tagged BT.709 (primaries, transfer,
    matrix, limited range), as an HD camera file is: no filter then has to guess the source's colours.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = "1080p25" if size == "1920x1080" else f"{size}p25"
    clip = folder / f"src-{name}-bt709-{seconds:g}s.mp4"
    if clip.exists():
        return clip
    partial = folder / f".{clip.name}.partial.mp4"
    argv = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds:g}",
            "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=48000:beep_factor=4:duration={seconds:g}",
            "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
            "-af", "volume=-18dB,aformat=channel_layouts=stereo", *SOURCE_CODING, "file:" + str(partial)]
    print(f"generating {clip.relative_to(ROOT) if clip.is_relative_to(ROOT) else clip} "
          f"({seconds:g} s, {size} 25p BT.709 + stereo tone) ...", file=sys.stderr, flush=True)
    subprocess.run(argv, check=True)
    partial.rename(clip)
    return clip


def describe_source(path: Path) -> dict[str, Any]:
    from onetake.pipeline.probe import probe

    info = probe(str(path), compute_hash=False)
    out: dict[str, Any] = {"path": str(path), "size_bytes": info.size, "duration_s": round(info.duration, 3),
                           "format": info.format}
    if info.video:
        v = info.video[0]
        out["video"] = {"codec": v.codec, "width": v.width, "height": v.height, "rate": str(v.rate),
                        "scan": v.scan, "pix_fmt": v.pix_fmt,
                        "colour": "/".join(x or "?" for x in (v.color_primaries, v.color_transfer, v.color_matrix,
                                                               v.color_range))}
    if info.audio:
        a = info.audio[0]
        out["audio"] = {"codec": a.codec, "channels": a.channels, "sample_rate": a.sample_rate}
    return out


def check_source(desc: dict[str, Any], min_seconds: float) -> list[str]:
    """Warnings when a given source is not what the benchmark asks for (1080p25, long enough)."""
    warnings = []
    v = desc.get("video")
    if not v or (v["width"], v["height"]) != (1920, 1080) or v["rate"] != "25":
        warnings.append(f"the source is not 1920x1080 25p ({v})")
    if desc["duration_s"] + 0.05 < min_seconds:
        warnings.append(f"the source lasts {desc['duration_s']} s, less than {min_seconds:g} s")
    return warnings


def source_for(given: Path | None, seconds: float, min_seconds: float) -> tuple[Path, dict[str, Any], list[str]]:
    """The source to benchmark (the given file, or one generated of ``seconds``), its description, and
    warnings where a given file is shorter than the benchmark's spec asks."""
    source = given.resolve() if given else make_source(seconds)
    desc = describe_source(source)
    return source, desc, check_source(desc, min_seconds) if given else []


# ---------------------------------------------------------------------------------------------------------
# measuring


class CommandFailed(RuntimeError):
    pass


class TreeSampler:
    """Samples the memory of every descendant of this process until stopped; keeps the peak."""

    def __init__(self, interval: float = 0.2, pss: bool = True) -> None:
        self.interval = interval
        self.pss = pss
        self.me = psutil.Process()
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_single_rss = 0
        self.peak_by_role: dict[str, int] = {}
        self.samples = 0
        self.t0 = time.time()
        self.boot_shift = 0.0
        self.spans: dict[int, dict[str, Any]] = {}
        self.cpu_seen: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self.t0 = time.time()
        # psutil's create_time() counts from the boot time in whole seconds; shift it to the real one
        try:
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            self.boot_shift = (time.time() - uptime) - psutil.boot_time()
        except (OSError, ValueError):
            self.boot_shift = 0.0
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def role(proc: psutil.Process) -> str:
        try:
            name = proc.name()
            if "ffmpeg" in name:
                return "ffmpeg"
            cmd = " ".join(proc.cmdline()[:4])
        except (psutil.Error, OSError):
            return "other"
        if "onetake" in cmd:
            return "onetake client"
        if "multiprocessing" in cmd or "distributed" in cmd:
            return "dask workers"
        return "python" if "python" in name else name

    @staticmethod
    def what(cmdline: list[str]) -> str:
        """What an ffmpeg child is doing, from its argv."""
        text = " ".join(cmdline)
        if "alimiter" in text and "-c:v" not in text or "/.trial-" in text:
            return "ffmpeg: loudness trial"
        if "ebur128" in text and "asetpts" in text:
            return "ffmpeg: loudness measurement"
        if "ebur128" in text:
            return "ffmpeg: verify loudness"
        if "-f hls" in text and "-c copy" in text:
            return "ffmpeg: HLS packaging"
        if "-filter_complex" in text:
            return "ffmpeg: encode"
        if "-version" in cmdline:
            return "ffmpeg: version query"
        return "ffmpeg: other"

    def _track(self, p: psutil.Process, now: float) -> None:
        span = self.spans.get(p.pid)
        if span is None:
            try:
                if "ffmpeg" not in p.name():
                    self.spans[p.pid] = {"what": None}
                    return
                start = p.create_time() + self.boot_shift - self.t0
                span = {"what": self.what(p.cmdline()), "start_s": round(start, 2)}
            except (psutil.Error, OSError):
                return
            self.spans[p.pid] = span
        if span.get("what"):
            span["end_s"] = round(now - self.t0, 2)

    def timeline(self) -> list[dict[str, Any]]:
        """The ffmpeg children seen, with start (exact) and end (to one sampling interval) times."""
        return sorted((s for s in self.spans.values() if s.get("what")), key=lambda s: s["start_s"])

    def sample(self) -> None:
        rss = pss = 0
        now = time.time()
        by_role: dict[str, int] = {}
        try:
            procs = self.me.children(recursive=True)
        except psutil.Error:
            return
        for p in procs:
            self._track(p, now)
            try:
                t = p.cpu_times()
                self.cpu_seen[p.pid] = (self.role(p) if p.pid not in self.cpu_seen else self.cpu_seen[p.pid][0],
                                        t.user + t.system)
            except (psutil.Error, OSError):
                pass
            try:
                if self.pss:
                    info = p.memory_full_info()
                    r, s = info.rss, getattr(info, "pss", info.rss)
                else:
                    r = s = p.memory_info().rss
            except (psutil.Error, OSError):
                continue
            rss += r
            pss += s
            self.peak_single_rss = max(self.peak_single_rss, r)
            role = self.role(p)
            by_role[role] = by_role.get(role, 0) + r
        self.samples += 1
        if rss > self.peak_rss:
            self.peak_rss = rss
            self.peak_by_role = by_role
        self.peak_pss = max(self.peak_pss, pss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def result(self) -> dict[str, Any]:
        pss = {"peak_pss_mb": round(self.peak_pss / MB, 1)} if self.pss else {}
        return {"peak_rss_mb": round(self.peak_rss / MB, 1), **pss,
                "peak_single_process_rss_mb": round(self.peak_single_rss / MB, 1),
                "peak_rss_by_role_mb": {k: round(v / MB, 1) for k, v in sorted(self.peak_by_role.items())},
                "memory_samples": self.samples, "cpu_by_role_s": self.cpu_by_role(),
                "ffmpeg_timeline": self.timeline()}

    def cpu_by_role(self) -> dict[str, float]:
        """CPU time per kind of process as last sampled (a lower bound: a process's last interval is
        missed); it shows how much of a run's ``cpu_s`` is Python and Dask rather than ffmpeg."""
        out: dict[str, float] = {}
        for role, cpu in self.cpu_seen.values():
            out[role] = out.get(role, 0.0) + cpu
        return {k: round(v, 2) for k, v in sorted(out.items())}


@dataclass
class Measurement:
    wall_s: float
    cpu_s: float
    user_s: float
    system_s: float
    other_cpu_s: float = 0.0
    memory: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3),
                               "user_s": round(self.user_s, 3), "system_s": round(self.system_s, 3),
                               "other_cpu_s": round(self.other_cpu_s, 3)}
        out.update(self.memory)
        if self.steps:
            out["steps"] = self.steps
        out.update(self.extra)
        return out


def _busy_s() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


class Clock:
    """Wall time and the CPU time of reaped children between start and stop.

    ``other_cpu_s`` is the CPU time the rest of the machine used meanwhile (all busy CPU time minus this
    process and its children): anything well above zero means the timings were disturbed.
    """

    def __enter__(self) -> Clock:
        self.busy0 = _busy_s()
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)
        self.r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.t1 = time.perf_counter()
        self.r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.self1 = resource.getrusage(resource.RUSAGE_SELF)
        busy = _busy_s() - self.busy0
        self.wall_s = self.t1 - self.t0
        self.user_s = self.r1.ru_utime - self.r0.ru_utime
        self.system_s = self.r1.ru_stime - self.r0.ru_stime
        self.cpu_s = self.user_s + self.system_s
        mine = (self.self1.ru_utime - self.self0.ru_utime) + (self.self1.ru_stime - self.self0.ru_stime)
        self.other_cpu_s = max(0.0, busy - self.cpu_s - mine)


def measure(body: Callable[[list[dict[str, Any]]], Any], *, sample_memory: bool = True,
            interval: float = 0.5, pss: bool = False, keep_going: bool = False) -> Measurement:
    """Run ``body(steps)``; it may append per-step timings to ``steps``.

    The memory sampler runs in this process, beside the timed work: by default it reads RSS only, twice a
    second, to stay out of the way (the memory benchmark reads PSS too, more often). ``keep_going``: a
    CommandFailed from ``body`` is kept as ``extra["error"]`` instead of raised.
    """
    steps: list[dict[str, Any]] = []
    error: CommandFailed | None = None
    sampler = TreeSampler(interval=interval, pss=pss) if sample_memory else None
    if sampler is not None:
        sampler.__enter__()
    try:
        with Clock() as clock:
            try:
                body(steps)
            except CommandFailed as exc:
                if not keep_going:
                    raise
                error = exc
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
    m = Measurement(clock.wall_s, clock.cpu_s, clock.user_s, clock.system_s, clock.other_cpu_s,
                    sampler.result() if sampler else {}, steps)
    if error is not None:
        m.extra["error"] = str(error)[-6000:]
    return m


def wait_for_quiet(max_wait_s: float, threshold_cores: float = 0.25, window_s: float = 3.0) -> float:
    """Before a timed run: wait, up to ``max_wait_s``, until the rest of the machine uses fewer than
    ``threshold_cores`` cores over ``window_s``. Returns the seconds waited (0 when ``max_wait_s`` <= 0)."""
    if max_wait_s <= 0:
        return 0.0
    start = time.perf_counter()
    while True:
        busy0 = _busy_s()
        time.sleep(window_s)
        load = (_busy_s() - busy0) / window_s
        waited = time.perf_counter() - start
        if load < threshold_cores or waited >= max_wait_s:
            if load >= threshold_cores:
                print(f"  the machine is still busy ({load:.2f} cores used by others); running anyway",
                      flush=True)
            return round(waited, 1)


def run_step(name: str, argv: Sequence[str], steps: list[dict[str, Any]] | None = None,
             capture_stdout: bool = False) -> subprocess.CompletedProcess[str]:
    """Run one command to completion (no shell); time it into ``steps``; raise with stderr on failure."""
    with Clock() as clock:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, text=True, errors="replace",
                              stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    if steps is not None:
        steps.append({"step": name, "wall_s": round(clock.wall_s, 3), "cpu_s": round(clock.cpu_s, 3),
                      "other_cpu_s": round(clock.other_cpu_s, 3)})
    if proc.returncode != 0:
        raise CommandFailed(f"{name} failed with exit status {proc.returncode}: {' '.join(argv)}\n"
                            f"{(proc.stdout or '')[-4000:]}{proc.stderr[-4000:]}")
    return proc


def measure_loudness_step(measures: Sequence[dict[str, Any]], folder: Path, steps: list[dict[str, Any]],
                          name: str = "measure") -> list[dict[str, Any]]:
    """The plan's measure tasks as a worker runs each (the programme meter, then its loudness target settled by
    trial encodes), one after another, their results kept under ``folder`` instead of the plan's work dir;
    timed into ``steps`` as one step."""
    from onetake.pipeline.plan.params import Deps
    from onetake.workers.tasks import measure

    results = []
    programme = folder / "loudness-programme.json"  # metered by the first, read by the others, as on a worker
    programme.unlink(missing_ok=True)
    with Clock() as clock:
        for number, params in enumerate(measures):
            cache = folder / f"loudness-{number}.json"
            cache.unlink(missing_ok=True)
            results.append(measure({**params, "cache": str(cache), "programme_cache": str(programme)}, Deps({}),
                                   lambda fraction: None))
    steps.append({"step": name, "wall_s": round(clock.wall_s, 3),
                  "cpu_s": round(clock.cpu_s, 3), "other_cpu_s": round(clock.other_cpu_s, 3)})
    return results


def clean(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


STATS = ("min", "median")


def representative_runs(samples: dict[str, list[Measurement]], stat: str,
                        fields: Sequence[str] = ("wall_s", "cpu_s")) -> dict[str, dict[str, Any]]:
    """Each variant's representative run (``pick_run``), with ``fields`` of every sample under ``samples``
    (a Measurement attribute, rounded, or a key of its ``extra``)."""
    def value(m: Measurement, name: str) -> Any:
        return m.extra[name] if name in m.extra else round(getattr(m, name), 3)

    runs = {}
    for v, ms in samples.items():
        runs[v] = pick_run(ms, stat).to_dict()
        runs[v]["samples"] = [{name: value(m, name) for name in fields} for m in ms]
    return runs


def add_timing_arguments(p: Any, name: str, *, seconds: float, repeat: int) -> None:
    """The options every timed benchmark shares: its source, the JSON it writes, repeats, quiet wait."""
    p.add_argument("--source", type=Path, help="a source file (default: a generated 1080p25 test clip)")
    p.add_argument("--seconds", type=float, default=seconds,
                   help=f"length of the generated source (default {seconds:g})")
    p.add_argument("--output", type=Path, default=RESULTS / f"{name}.json", help="the JSON result file")
    p.add_argument("--repeat", type=int, default=repeat,
                   help=f"runs of each variant, interleaved (default {repeat})")
    p.add_argument("--stat", choices=STATS, default="min",
                   help="which run represents a variant when repeated: the fastest (default) or the median")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="before each timed run, wait up to this long for other processes to go quiet")


def pick_run(samples: list[Measurement], stat: str = "min") -> Measurement:
    """The sample that represents a variant: the fastest (``min``: other work on the machine only ever
    adds time, so the fastest run is the best estimate of the variant's own cost) or the median one."""
    ordered = sorted(samples, key=lambda m: m.wall_s)
    return ordered[0] if stat == "min" else ordered[(len(ordered) - 1) // 2]


# ---------------------------------------------------------------------------------------------------------
# context: machine and versions


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {"hostname": platform.node(), "platform": platform.platform(), "cpu_model": model or platform.processor(),
            "logical_cpus": os.cpu_count(), "usable_cpus": affinity,
            "memory_gb": round(psutil.virtual_memory().total / 1024 ** 3, 1),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def versions() -> dict[str, Any]:
    import importlib.metadata as md

    import onetake

    out: dict[str, Any] = {"onetake": onetake.__version__, "python": platform.python_version(),
                           "ffmpeg_binary": ffmpeg_binary(), "ffmpeg": ffmpeg_version()}
    for pkg in ("dask", "distributed", "av", "ffmpeg-python", "imageio-ffmpeg", "psutil"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "onetake"],
                               capture_output=True, timeout=30).returncode != 0
        out["git_commit"] = commit or None
        out["onetake_tree_modified"] = dirty
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def compile_onetake() -> None:
    """Write onetake's bytecode before anything is timed, as installing a package does: an editable install
    run with PYTHONDONTWRITEBYTECODE set would otherwise compile every changed module at every start."""
    import compileall

    import onetake

    compileall.compile_dir(Path(onetake.__file__).parent, quiet=1)


def header(benchmark: str) -> dict[str, Any]:
    compile_onetake()
    return {"benchmark": benchmark, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
            "machine": machine(), "versions": versions()}


# ---------------------------------------------------------------------------------------------------------
# output


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2f}"
        return "-" if v is None else str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in text)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths))))
    print("  ".join("-" * w for w in widths))
    for r in text:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))


def write_json(data: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"\nwrote {path}")
    return path


def phases(m: Measurement) -> dict[str, Any]:
    """Where a run's wall time went, from the ffmpeg timeline: before the first ffmpeg, in each kind of
    ffmpeg (merged intervals), and after the last one (ends are known to one sampling interval)."""
    spans = [s for s in m.memory.get("ffmpeg_timeline") or [] if s["what"] != "ffmpeg: version query"]
    if not spans:
        return {}
    first = min(s["start_s"] for s in spans)
    last = max(s.get("end_s", s["start_s"]) for s in spans)
    out: dict[str, Any] = {"before_first_ffmpeg_s": round(first, 2)}
    for what in dict.fromkeys(s["what"] for s in spans):
        intervals = sorted((s["start_s"], s.get("end_s", s["start_s"])) for s in spans if s["what"] == what)
        total, cur_start, cur_end = 0.0, *intervals[0]
        for a, b in intervals[1:]:
            if a > cur_end:
                total += cur_end - cur_start
                cur_start, cur_end = a, b
            else:
                cur_end = max(cur_end, b)
        total += cur_end - cur_start
        out[f"{what.removeprefix('ffmpeg: ')}_s"] = round(total, 2)
    encode = [s for s in spans if s["what"] == "ffmpeg: encode"]
    if encode:
        out["after_encode_s"] = round(m.wall_s - max(s.get("end_s", 0.0) for s in encode), 2)
    out["after_last_ffmpeg_s"] = round(m.wall_s - last, 2)
    return out


def disturbed(runs: dict[str, dict[str, Any]], share: float = 0.1) -> list[str]:
    """Runs during which other processes used more than ``share`` of the machine's CPU time."""
    cpus = os.cpu_count() or 1
    out = []
    for name, r in runs.items():
        if r.get("other_cpu_s", 0.0) > share * r["wall_s"] * cpus:
            out.append(f"{name}: other processes used {r['other_cpu_s']:.1f} cpu-s during its {r['wall_s']:.1f} s "
                       f"on {cpus} cpus; its times are disturbed")
    return out


def finish(data: dict[str, Any], output: Path, *, show_phases: bool = False) -> None:
    """Mark the runs other processes disturbed, print them (and each run's phases), write the JSON."""
    data["disturbed"] = disturbed(data["runs"])
    if show_phases:
        for v, r in data["runs"].items():
            if r.get("phases"):
                print(f"  {v} phases (s): " + ", ".join(f"{k.removesuffix('_s')} {x}" for k, x in r["phases"].items()))
    for line in data["disturbed"]:
        print(f"warning: {line}")
    write_json(data, output)


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None
