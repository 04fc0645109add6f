"""The commands that onetake is compared with, built from onetake's own planning so that they cannot drift.

For every rendition the channels need, ``plan_job`` is asked for a plan of that one rendition alone (a
catalog whose only channel holds just that profile). Such a plan's encode argv is what a careful engineer
would type for that rendition: one input, the rendition's own filter chain straight from the source (no
cascade: a lone rendition has nothing to cascade from), and onetake's exact encoder and muxer options.
The benchmark checks that those output options are identical, token for token, to the ones in the full
plan that ``onetake run`` executes.

* naive: each such argv run on its own, one ffmpeg per rendition in sequence, each decoding the source.
* expert: one ffmpeg; all the per-rendition filter graphs merged into one (identical filter chains, such
  as the common ``setpts``/``fps`` head or one gain and limiter per loudness target, are computed once and
  ``split``), every output encoded separately.
* expert-tee (optional): the expert, with the top HLS rung and the web MP4 from one encode (``-f tee``).

Both write HLS rungs straight from the encoder (``-f hls``, fMP4 segments of the profile's length) and
the web MP4 as its own encode of the top rung, and both run the loudness measurement that onetake's plan runs
(its measure tasks: the programme meter and a target's trial encodes each); their gains and limiter settings go
into their encodes with onetake's ``fill_measurements``.

Both also run onetake's analysis as one runs it by hand, ``onetake analyze --json --report FILE SOURCE``
(``onetake run`` analyses every source: its figure includes that pass, and it delivers the report). A
rendition framed by following the subject (``short-vertical``) is planned with a ``sendcmd`` file that
moves its crop window: the baselines write that file from their analysis's crop path with onetake's own
``follow_commands``, as onetake's worker does, so their follow output has the same crop. The follow crop
is given an instance name of its own (``crop@follow_...``): in the expert's merged graph other renditions
have crop filters too, and ``sendcmd`` sends a command to the first filter of the name it is given.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onetake.pipeline import run
from onetake.pipeline.config import FarmConfig
from onetake.pipeline.models import JobPlan, SourceInfo
from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.pipeline.probe import probe
from onetake.pipeline.profiles import Catalog, load_catalog
from onetake.workers.capabilities import split_unescaped
from onetake.workers.ffmpeg import ffmpeg_binary
from onetake.workers.follow import TARGET as FOLLOW_CROP
from onetake.workers.follow import follow_commands
from onetake.workers.tasks import fill_measurements

from .common import measure_loudness_step, run_step

WORK_MARK = "/__onetake_benchmark_work__"  # stands for onetake's scratch folder in the plans built here
BENCH_CHANNEL = "__benchmark_one_rendition__"
SPLITS = ("split", "asplit")
REPORT_NAME = "report.html"     # the analysis's HTML report, which onetake delivers with every channel


# ---------------------------------------------------------------------------------------------------------
# reading a planned ffmpeg argv


@dataclass
class PlannedOutput:
    profile: str
    options: list[str]          # every token of the output but its URL, -map included
    file_name: str


@dataclass
class PlannedCommand:
    head: list[str]             # input options and -i (argv[0], the "ffmpeg" placeholder, excluded)
    graph: str
    outputs: list[PlannedOutput]
    tail: list[str]             # global options, which ffmpeg-python puts last


def split_argv(argv: Sequence[str], profiles: Sequence[str]) -> PlannedCommand:
    """Cut a planned encode argv into input, graph, one option list per output, and global options."""
    argv = list(argv)
    at = argv.index("-filter_complex")
    urls = [i for i, a in enumerate(argv) if a.startswith(f"file:{WORK_MARK}/")]
    if len(urls) != len(profiles):
        raise RuntimeError(f"expected {len(profiles)} outputs in the planned argv, found {len(urls)}")
    outputs, start = [], at + 2
    for profile, url_at in zip(profiles, urls):
        outputs.append(PlannedOutput(profile, argv[start:url_at], argv[url_at].rsplit("/", 1)[1]))
        start = url_at + 1
    return PlannedCommand(argv[1:at], argv[at + 1], outputs, argv[start:])


def without_maps(options: Sequence[str]) -> list[str]:
    out, i = [], 0
    while i < len(options):
        if options[i] == "-map":
            i += 2
            continue
        out.append(options[i])
        i += 1
    return out


# ---------------------------------------------------------------------------------------------------------
# filter graphs: parse ffmpeg-python's output, merge several graphs with common subexpressions shared


@dataclass
class Segment:
    inputs: list[str]
    spec: str
    outputs: list[str]

    @property
    def name(self) -> str:
        return self.spec.split("=", 1)[0]


SEGMENT = re.compile(r"^((?:\[[^\]]+\])*)(.*?)((?:\[[^\]]+\])*)$", re.S)


def parse_graph(graph: str) -> list[Segment]:
    segments = []
    for text in split_unescaped(graph, ";"):
        m = SEGMENT.match(text.strip())
        if not m or not m.group(2):
            raise RuntimeError(f"cannot read filter graph segment {text!r}")
        labels = lambda s: re.findall(r"\[([^\]]+)\]", s)  # noqa: E731
        segments.append(Segment(labels(m.group(1)), m.group(2), labels(m.group(3))))
    return segments


Key = tuple[Any, ...]


class GraphMerger:
    """Merges filter graphs that read the same input pads into one, computing each distinct chain once.

    A stream's identity is its expression: the filter that made it and the expressions of that filter's
    inputs, down to an input pad such as ``0:0``. ``split``/``asplit`` are transparent. Streams with the
    same expression are made once and split to every consumer.
    """

    def __init__(self, audio_pads: set[str]) -> None:
        self.audio_pads = audio_pads
        self.sinks: list[Key] = []

    def add(self, graph: str, labels: Sequence[str]) -> list[int]:
        """Add the streams ``labels`` of ``graph`` as sinks; returns their sink numbers."""
        segments = parse_graph(graph)
        made_by = {label: (seg, j) for seg in segments for j, label in enumerate(seg.outputs)}

        def key_of(label: str) -> Key:
            if label not in made_by:
                return ("pad", label)
            seg, j = made_by[label]
            if seg.name in SPLITS:
                return key_of(seg.inputs[0])
            if len(seg.outputs) != 1:
                raise RuntimeError(f"filter {seg.spec!r} has {len(seg.outputs)} outputs; cannot merge it")
            return ("node", seg.spec, tuple(key_of(i) for i in seg.inputs))

        numbers = []
        for label in labels:
            numbers.append(len(self.sinks))
            self.sinks.append(key_of(label))
        return numbers

    def is_audio(self, key: Key) -> bool:
        if key[0] == "pad":
            return key[1] in self.audio_pads
        return any(self.is_audio(k) for k in key[2])

    def emit(self) -> tuple[str, list[str]]:
        """The merged graph and, for each sink in the order added, the label of its stream."""
        order: list[Key] = []
        seen: set[Key] = set()

        def visit(key: Key) -> None:
            if key in seen:
                return
            if key[0] == "node":
                for k in key[2]:
                    visit(k)
            seen.add(key)
            order.append(key)

        for key in self.sinks:
            visit(key)
        uses: dict[Key, int] = {}
        for key in order:
            if key[0] == "node":
                for k in key[2]:
                    uses[k] = uses.get(k, 0) + 1
        for key in self.sinks:
            uses[key] = uses.get(key, 0) + 1
        segments: list[str] = []
        queue: dict[Key, list[str]] = {}
        counter = 0
        for key in order:
            if key[0] == "pad":
                label = key[1]
            else:
                label = f"{'a' if self.is_audio(key) else 'v'}{counter}"
                counter += 1
                inputs = "".join(f"[{queue[k].pop(0)}]" for k in key[2])
                segments.append(f"{inputs}{key[1]}[{label}]")
            n = uses[key]
            if n == 1:
                queue[key] = [label]
            else:
                outs = [f"{label}_{i}" for i in range(n)]
                segments.append(f"[{label}]{'asplit' if self.is_audio(key) else 'split'}={n}"
                                + "".join(f"[{o}]" for o in outs))
                queue[key] = outs
        return ";".join(segments), [queue[key].pop(0) for key in self.sinks]


def graph_value(text: str) -> str:
    """``text`` as a filter option's value inside a filter graph, escaped as ffmpeg-python escapes the plan's."""
    for special in ("\\'=:", "\\'[],;"):  # the option level, then the graph level
        text = "".join("\\" + c if c in special else c for c in text)
    return text


def follow_crop_name(profile: str) -> str:
    return f"{FOLLOW_CROP}@follow_{re.sub(r'[^A-Za-z0-9_]', '_', profile)}"


def with_follow_commands(graph: str, planned_commands: str, commands: Path, crop_name: str) -> str:
    """The planned follow graph reading its sendcmd file from ``commands``, its crop named ``crop_name``."""
    segments = parse_graph(graph)
    sendcmd = [s for s in segments if s.name == "sendcmd"]
    if len(sendcmd) != 1 or sendcmd[0].spec != f"sendcmd=f={graph_value(planned_commands)}":
        raise RuntimeError(f"expected one sendcmd reading {planned_commands} in the planned graph {graph!r}")
    crop = [s for s in segments if s.inputs == sendcmd[0].outputs and s.name == FOLLOW_CROP]
    if len(crop) != 1:
        raise RuntimeError(f"expected the planned sendcmd to feed one {FOLLOW_CROP} filter in {graph!r}")
    sendcmd[0].spec = f"sendcmd=f={graph_value(str(commands))}"
    crop[0].spec = crop_name + crop[0].spec[len(FOLLOW_CROP):]
    return ";".join("".join(f"[{i}]" for i in s.inputs) + s.spec + "".join(f"[{o}]" for o in s.outputs)
                    for s in segments)


# ---------------------------------------------------------------------------------------------------------
# the deliverables and the commands


@dataclass
class Deliverable:
    """One output file (or HLS rung folder) that every variant makes."""

    name: str                   # folder name under the variant's output folder
    profile: str
    hls: bool = False           # written as one HLS variant stream (fMP4 segments + index.m3u8)
    planned: PlannedCommand | None = None
    file_name: str = ""
    segment_seconds: float = 6.0  # HLS segment length, from the ladder's profile
    follow: dict[str, Any] | None = None  # the plan's follow params (commands, width, window): a follow crop

    def commands_file(self, base: Path) -> Path:
        """Where this deliverable's follow crop reads its sendcmd commands when writing under ``base``."""
        return base / ".follow" / f"{self.profile}.cmd"

    def graph(self, base: Path) -> str:
        """The planned filter graph, a follow crop reading its commands from under ``base``."""
        assert self.planned is not None
        if self.follow is None:
            return self.planned.graph
        return with_follow_commands(self.planned.graph, self.follow["commands"], self.commands_file(base),
                                    follow_crop_name(self.profile))

    def target(self, base: Path) -> tuple[list[str], str]:
        """The output options and URL when writing under ``base``."""
        assert self.planned is not None
        options = list(self.planned.outputs[0].options)
        folder = base / self.name
        if not self.hls:
            return options, f"file:{folder}/{self.file_name}"
        kept, i = [], 0
        while i < len(options):
            if options[i] in ("-f", "-movflags"):
                i += 2
                continue
            kept.append(options[i])
            i += 1
        return kept + ["-f", "hls", "-hls_time", f"{self.segment_seconds:g}", "-hls_playlist_type", "vod",
                       "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
                       "-hls_fmp4_init_filename", "init.mp4",
                       "-hls_segment_filename", f"file:{folder}/segment_%05d.m4s"], f"file:{folder}/index.m3u8"

    def tee_target(self, base: Path, mp4: Deliverable) -> tuple[list[str], str]:
        """This HLS rung and ``mp4`` (the same profile as a progressive MP4) from one encode: ``-f tee``."""
        options, _ = self.target(base)
        at = options.index("-f")  # target() put the HLS muxer's options last
        codec, muxer = options[:at], options[at + 2:]
        hls = ":".join(f"{k.lstrip('-')}={v.removeprefix('file:')}" for k, v in zip(muxer[::2], muxer[1::2]))
        slaves = [f"[f=mp4:movflags=+faststart]{base / mp4.name / mp4.file_name}",
                  f"[f=hls:{hls}]{base / self.name / 'index.m3u8'}"]
        # the tee muxer cannot ask the encoders for global headers as mp4 does: say so (ffmpeg-formats, tee)
        return codec + ["-flags:v", "+global_header", "-flags:a", "+global_header", "-f", "tee"], "|".join(slaves)


@dataclass
class Fanout:
    """What ``onetake run SOURCE --channels ...`` would make, and the baselines that make the same."""

    source: Path
    channels: tuple[str, ...]
    info: SourceInfo
    catalog: Catalog
    plan: JobPlan
    measures: dict[str, dict[str, Any]]     # the plan's measure tasks: id -> params
    deliverables: list[Deliverable] = field(default_factory=list)
    hls_masters: list[dict[str, Any]] = field(default_factory=list)
    onetake_outputs: list[str] = field(default_factory=list)
    last_measured: dict[str, dict[str, Any]] = field(default_factory=dict)  # measure task id -> its result

    # -------------------------------------------------------------- building

    @classmethod
    def build(cls, source: Path, channels: Sequence[str], catalog: Catalog | None = None) -> Fanout:
        catalog = catalog or load_catalog()
        info = probe(str(source))
        options = plan_options()
        plan = plan_job(info, tuple(channels), catalog, options)
        # every encode of the plan: the shared one, and one per rendition that follows the subject
        planned: list[tuple[PlannedOutput, bool]] = []
        for encode in (t for t in plan.tasks if t.kind == "encode"):
            names = [o["profile"] for o in encode.params["outputs"]]
            planned += [(o, "follow" in encode.params) for o in split_argv(encode.params["argv"], names).outputs]
        self = cls(Path(source), tuple(channels), info, catalog, plan,
                   {t.id: dict(t.params) for t in plan.tasks if t.kind == "measure"},
                   onetake_outputs=[o.profile for o, _ in planned])

        rung_of: dict[str, tuple[str, int, float, bool]] = {}  # rung profile -> (hls profile, index, seg, mp4)
        for task in plan.tasks:
            if task.kind == "package" and task.params.get("kind") == "hls":
                hls_name = task.id.rsplit("/", 1)[1]
                hls = catalog.profile(hls_name).hls
                assert hls is not None
                variants = task.params["variants"]
                for i, v in enumerate(variants):
                    rung_of[v["name"]] = (hls_name, i, hls.segment_seconds, hls.progressive_mp4)
                self.hls_masters.append({"name": hls_name, "variants": variants})

        for output, follows in planned:
            single, follow = self._single(output.profile, options)
            mine = without_maps(single.outputs[0].options)
            theirs = without_maps(output.options)
            if mine != theirs:
                raise RuntimeError(f"the one-rendition plan of {output.profile} encodes with other options than "
                                   f"onetake's full plan:\n  {mine}\n  {theirs}")
            if follows != (follow is not None):
                raise RuntimeError(f"{output.profile}: the one-rendition plan and the full plan differ on whether "
                                   f"it follows the subject")
            if output.profile in rung_of:
                hls_name, index, seconds, mp4 = rung_of[output.profile]
                self.deliverables.append(Deliverable(f"{hls_name}/{output.profile}", output.profile, True,
                                                     single, output.file_name, seconds))
                if index == 0 and mp4:  # the progressive MP4 of the top rung: its own encode, by hand
                    self.deliverables.append(Deliverable(f"{hls_name}.mp4", output.profile, False, single,
                                                         output.file_name))
            else:
                self.deliverables.append(Deliverable(output.profile, output.profile, False, single,
                                                     output.file_name, follow=follow))
        made = {d.profile for d in self.deliverables}
        if made != set(self.onetake_outputs):
            raise RuntimeError(f"the baselines would make {sorted(made)}, onetake {sorted(self.onetake_outputs)}")
        return self

    def _single(self, profile: str, options: PlanOptions) -> tuple[PlannedCommand, dict[str, Any] | None]:
        """The plan of ``profile`` alone: its encode, and its follow params when it follows the subject."""
        catalog = dataclasses.replace(self.catalog, channels={BENCH_CHANNEL: (profile,)})
        plan = plan_job(self.info, (BENCH_CHANNEL,), catalog, options)
        [encode] = [t for t in plan.tasks if t.kind == "encode"]
        names = [o["profile"] for o in encode.params["outputs"]]
        if names != [profile]:
            raise RuntimeError(f"a plan of {profile} alone made {names}")
        argv = encode.params["argv"]
        full = {json.dumps(t, sort_keys=True): i for m in self.measures.values()
                for t, i in zip(m["targets"], m["indices"])}
        numbers = {i: full[json.dumps(t, sort_keys=True)] for m in (t.params for t in plan.tasks if t.kind == "measure")
                   for t, i in zip(m["targets"], m["indices"])}  # its loudness target, numbered as in the full plan
        if numbers:
            argv = [re.sub(r"\{(gain|limit|release)_(\d+)\}", lambda m: f"{{{m.group(1)}_{numbers[int(m.group(2))]}}}",
                           word) for word in argv]
        return split_argv(argv, names), encode.params.get("follow")

    # -------------------------------------------------------------- running

    def measure_loudness(self, base: Path, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """onetake's measure tasks (the programme meter and a settled loudness target each), one after another;
        none when nothing is normalised."""
        if not self.measures:
            return []
        results = measure_loudness_step(list(self.measures.values()), base, steps, "loudness measurement and trials")
        self.last_measured = dict(zip(self.measures, results))
        return results

    def analyze(self, base: Path, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """onetake's analysis of the source and its HTML report, run by hand (``onetake analyze --json --report``),
        and each follow crop's sendcmd file written from its crop path as onetake's worker writes it."""
        argv = [sys.executable, "-m", "onetake.cli", "analyze", "--json", "--report", str(base / REPORT_NAME),
                str(self.source)]
        analysis = json.loads(run_step("analysis + report (onetake analyze)", argv, steps, capture_stdout=True).stdout)
        for d in self.deliverables:
            if d.follow is None:
                continue
            commands = follow_commands(analysis.get("crop_path"), analysis.get("fps"), d.follow["width"],
                                       d.follow["window"])
            # the same commands, addressed to this crop's own name (see with_follow_commands)
            commands = re.sub(rf"^(\S+) {FOLLOW_CROP} ", rf"\1 {follow_crop_name(d.profile)} ", commands,
                              flags=re.MULTILINE)
            path = d.commands_file(base)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(commands, encoding="utf-8")
        return analysis

    def prepare(self, base: Path) -> None:
        for d in self.deliverables:
            (base / d.name).mkdir(parents=True, exist_ok=True)

    def naive_commands(self, base: Path, measured: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
        commands = []
        for d in self.deliverables:
            assert d.planned is not None
            options, url = d.target(base)
            argv = ["ffmpeg", *d.planned.head, "-filter_complex", d.graph(base), *options, url, *d.planned.tail]
            commands.append((d.name, [ffmpeg_binary(), *fill_measurements(argv, measured)[1:]]))
        return commands

    def expert_command(self, base: Path, measured: list[dict[str, Any]], tee: bool = False) -> list[str]:
        """One ffmpeg for every deliverable; ``tee``: the top HLS rung and the web MP4 share one encode."""
        first = self.deliverables[0].planned
        assert first is not None
        audio_pads = {f"0:{a.index}" for a in self.info.audio}
        merger = GraphMerger(audio_pads)
        per_output: list[tuple[list[str], str, list[int]]] = []
        shared = {d.profile: d for d in self.deliverables if not d.hls} if tee else {}
        teed: set[str] = set()
        for d in self.deliverables:
            p = d.planned
            assert p is not None
            if p.head != first.head or p.tail != first.tail:
                raise RuntimeError(f"{d.name}: its planned input or global options differ from the others'")
            if d.name in teed:
                continue
            if d.hls and d.profile in shared:
                options, url = d.tee_target(base, shared[d.profile])
                teed.add(shared[d.profile].name)
            else:
                options, url = d.target(base)
            maps = [options[i + 1] for i, a in enumerate(options) if a == "-map"]
            labels = [m[1:-1] for m in maps if m.startswith("[")]
            per_output.append((options, url, merger.add(d.graph(base), labels)))
        graph, sink_labels = merger.emit()
        argv = ["ffmpeg", *first.head, "-filter_complex", graph]
        for options, url, numbers in per_output:
            it = iter(numbers)
            out, i = [], 0
            while i < len(options):
                if options[i] == "-map" and options[i + 1].startswith("["):
                    out += ["-map", f"[{sink_labels[next(it)]}]"]
                    i += 2
                    continue
                out.append(options[i])
                i += 1
            argv += [*out, url]
        argv += first.tail
        return [ffmpeg_binary(), *fill_measurements(argv, measured)[1:]]

    def write_hls_masters(self, base: Path) -> None:
        """A master playlist per ladder, as one writes it by hand: declared rates from the profiles."""
        for ladder in self.hls_masters:
            lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
            for v in ladder["variants"]:
                p = self.catalog.profile(v["name"])
                assert p.video is not None
                video = p.video.maxrate_kbps or p.video.bitrate_kbps
                audio = p.audio.bitrate_kbps if p.audio is not None and self.info.audio else 0
                lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={(video + audio) * 1000},"
                             f"AVERAGE-BANDWIDTH={(p.video.bitrate_kbps + audio) * 1000},"
                             f"RESOLUTION={v['width']}x{v['height']},FRAME-RATE={v['frame_rate']:.3f}")
                lines.append(f"{v['name']}/index.m3u8")
            folder = base / ladder["name"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "master.m3u8").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # -------------------------------------------------------------- checking

    def verify_outputs(self, base: Path, measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Run onetake's own checks (the plan's verify tasks) on a baseline's outputs; not timed.

        An HLS rung is checked as the fragmented MP4 its init segment and media segments make (all checks
        but audio/video sync: the joined fragments keep the segments' 2-frame composition offset, which
        an MP4's edit list would hide), plus the ladder check on the folder. The sprite's WebVTT index is
        onetake packaging that the baselines skip, so only the sheets are checked.
        """
        from onetake.workers.tasks import run_task

        checked, failed = 0, []
        skipped = {"sprite": {"vtt cues"}, "joined": {"audio/video sync"}}
        tasks = {t.params["profile"]["name"]: t for t in self.plan.tasks if t.kind == "verify"}
        for name, task in tasks.items():
            profile = task.params["profile"]
            targets: list[tuple[str, set[str]]] = []
            if profile["kind"] == "hls":
                targets = [(str(base / name), set())]
            elif profile["kind"] == "sprite":
                targets = [(str(base / name), skipped["sprite"])]
            for d in self.deliverables:
                if d.profile != name:
                    continue
                if d.hls:
                    folder = base / d.name
                    joined = folder.parent / f".{folder.name}.joined.mp4"
                    with open(joined, "wb") as out:
                        for part in [folder / "init.mp4", *sorted(folder.glob("segment_*.m4s"))]:
                            out.write(part.read_bytes())
                    targets.append((str(joined), skipped["joined"]))
                elif profile["kind"] not in ("hls", "sprite"):
                    targets.append((str(base / d.name / d.file_name), set()))
            for target, skip in targets:
                checked += 1
                try:  # onetake's verify task, on the baseline's file, with the baseline's loudness measurement
                    checks = run_task("verify", {**task.params, "path": target},
                                      {d: measured[d] for d in task.deps if d in measured})
                except Exception as exc:  # a baseline output onetake cannot read back
                    failed.append(f"{name} {target}: {exc}")
                    continue
                failed += [f"{name} {c['name']}: {c['value']} (expected {c['limit']})" for c in checks
                           if not c["passed"] and c["name"] not in skip]
        return {"outputs_checked": checked, "failed": failed, "ok": not failed,
                "skipped_checks": {"web-sprite": ["vtt cues"], "hls rungs (joined segments)": ["audio/video sync"]}}

    # -------------------------------------------------------------- description

    def describe(self) -> list[dict[str, Any]]:
        return [{"output": d.name, "profile": d.profile, "as": "hls rung" if d.hls else "file",
                 **({"framing": "follow (sendcmd file from the analysis's crop path)"} if d.follow else {})}
                for d in self.deliverables]


def plan_options() -> PlanOptions:
    """The options `onetake run` plans with (its defaults: x264 threads, time limits, ...), writing under
    WORK_MARK so that the planned output URLs can be found and replaced."""
    return run.plan_options(FarmConfig(out=f"{WORK_MARK}/out", work_dir=WORK_MARK), "benchmark")


def onetake_run_argv(source: Path, channels: Sequence[str], out: Path, extra: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-m", "onetake.cli", "run", str(source), "--channels", ",".join(channels),
            "--out", str(out), "--json", *extra]


# ---------------------------------------------------------------------------------------------------------
# breaking news: the expert's one command for a first version of web and short


def first_version_expert(fan: Fanout, base: Path, tee: bool = False) -> list[str]:
    """The one ffmpeg an expert types to get a first version of web (its HLS rung and the progressive MP4) and
    the 9:16 short out at once, written into ``fan``'s layout under ``base``: one decode, each picture scaled (or
    centre-cropped) from the source, the loudness normalised in the same pass by one-pass ``loudnorm`` (no time
    to measure first), and every encoder option onetake's first version has (``fan`` is built on the first
    version's catalog: ``onetake.pipeline.plan.urgent.first_version_catalog``). The rung and the MP4 are two
    encodes of one picture, or one encode written twice through ``-f tee`` (``tee``)."""
    from fractions import Fraction

    from onetake.pipeline.plan.audio import HEADROOM_DB
    from onetake.pipeline.plan.encode import audio_options, video_options
    from onetake.pipeline.plan.geometry import output_rate

    def options(values: dict[str, Any]) -> list[str]:
        return [word for key, value in values.items() for word in (f"-{key}", str(value))]

    rate = fan.info.video[0].rate
    pictures: dict[str, list[Deliverable]] = {}   # one chain per profile: a rung and its MP4 share it
    for d in fan.deliverables:
        pictures.setdefault(d.profile, []).append(d)
    loudness = {}
    graph = [f"[0:v]split={len(pictures)}" + "".join(f"[in{n}]" for n in range(len(pictures)))]
    outputs: list[list[str]] = []
    for n, (name, made) in enumerate(pictures.items()):
        profile = fan.catalog.profile(name)
        spec, audio, loud = profile.video, profile.audio, profile.loudness
        assert spec is not None and audio is not None and loud is not None
        w, h = spec.width, spec.height
        if spec.framing == "pad":
            frame = f"scale={w}:{h}:force_original_aspect_ratio=decrease:out_color_matrix=bt709,pad={w}:{h}:-1:-1"
        elif spec.framing == "center":
            frame = f"crop='min(iw,ih*{w}/{h})':'min(ih,iw*{h}/{w})',scale={w}:{h}:out_color_matrix=bt709"
        else:
            raise RuntimeError(f"{name}: the expert's command has no {spec.framing} framing")
        copies = 1 if tee else len(made)
        graph.append(f"[in{n}]{frame},setsar=1,setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709"
                     f",format={spec.pix_fmt}" + (f",split={copies}" if copies > 1 else "")
                     + "".join(f"[v{n}_{i}]" for i in range(copies)))
        target = (loud.integrated, loud.true_peak - HEADROOM_DB["lossy"])
        loudness.setdefault(target, []).extend(f"{n}_{i}" for i in range(copies))
        codec = [*options(video_options(spec, output_rate(Fraction(rate), spec), FarmConfig().x264_threads)),
                 *options(audio_options(audio))]
        files = {d.hls: d for d in made}
        if tee and len(made) > 1:
            planned, url = files[True].tee_target(base, files[False])
            muxer = planned[planned.index("-flags:v"):]  # global headers, -f tee
            outputs.append(["-map", f"[v{n}_0]", "-map", f"[a{n}_0]", *codec, *muxer, url])
            continue
        for i, d in enumerate(made):
            planned, url = d.target(base)
            at = planned.index("-f") if d.hls else len(planned)  # the HLS muxer's options, as fanout's expert has
            muxer = planned[at:] if d.hls else ["-movflags", "+faststart", "-f", "mp4"]
            outputs.append(["-map", f"[v{n}_{i}]", "-map", f"[a{n}_{i}]", *codec, *muxer, url])
    for m, ((integrated, peak), labels) in enumerate(loudness.items()):
        graph.append(f"[0:a:0]loudnorm=I={integrated:g}:TP={peak:g}:LRA=11,aresample=48000,"
                     f"asplit={len(labels)}" + "".join(f"[a{label}]" for label in labels))
    return [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", f"file:{fan.source}",
            "-filter_complex", ";".join(graph), *(word for out in outputs for word in out)]
