"""The terminal: probes, analyses, plans, jobs, checks and profiles described in lines, a batch's progress in rows
with bars, and its outcome (what was delivered where; one FAILED line per source that was not)."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from .pipeline.models import JobPlan, SourceInfo, Task
from .pipeline.plan.chunks import SOUND_SUFFIX
from .pipeline.plan.params import TaskKind, kind_of, task_id
from .pipeline.schedule import SourceOutcome

if TYPE_CHECKING:
    from .pipeline.ledger import Job
    from .pipeline.profiles import Catalog


def describe_source(info: SourceInfo) -> list[str]:
    lines = [f"{info.path}", f"  container  {info.format_long} ({info.format}), {info.duration:.3f} s, "
                             f"{info.size:,} bytes", f"  sha256     {info.sha256}"]
    if info.timecode:
        lines.append(f"  timecode   {info.timecode}")
    for v in info.video:
        w, h = v.display_size
        lines.append(f"  video #{v.index}   {v.codec} {v.width}x{v.height} SAR {v.sar} -> {w}x{h} DAR "
                     f"{v.display_aspect.numerator}:{v.display_aspect.denominator}, {float(v.rate):.3f} fps"
                     f"{' (variable)' if v.variable_frame_rate else ''}, {v.scan} ({v.scan_basis}), {v.pix_fmt}"
                     f"{f', rotated {v.rotation} deg' if v.rotation else ''}, colour "
                     f"{v.color_primaries or '?'}/{v.color_transfer or '?'}/{v.color_matrix or '?'}/"
                     f"{v.color_range or '?'}, starts at {v.start_time:.3f} s")
    for a in info.audio:
        lines.append(f"  audio #{a.index}   {a.codec} {a.channels} ch ({a.layout or 'unknown layout'}), "
                     f"{a.sample_rate} Hz, starts at {a.start_time:.3f} s"
                     f"{', default' if a.default else ''}{f', {a.language}' if a.language else ''}")
    if not info.audio:
        lines.append("  audio      none")
    return lines


def _spans(items: Sequence[dict[str, float]]) -> str:
    if not items:
        return "none"
    return ", ".join(f"{x['start']:.2f}-{x['end']:.2f} s" for x in items)


def describe_analysis(path: str, r: dict[str, Any]) -> list[str]:
    lines = [path]
    if r["frames"]:
        kinds = {k: sum(t["kind"] == k for t in r["transitions"]) for k in ("cut", "fade", "dissolve")}
        lines.append(f"  picture     {r['width']}x{r['height']}, {r['frames']} frames at {r['fps']:g} fps, "
                     f"{r['duration']:.3f} s; interlaced: "
                     f"{'unknown' if r['interlaced'] is None else 'yes' if r['interlaced'] else 'no'}")
        area = r["active_area"]
        lines.append(f"  active area {area['width']}x{area['height']} at {area['x']},{area['y']}")
        lines.append(f"  shots       {len(r['shots'])}; transitions: {kinds['cut']} cuts, {kinds['fade']} fades, "
                     f"{kinds['dissolve']} dissolves")
        for t in r["transitions"]:
            span = f" to frame {t['end_frame']}" if "end_frame" in t else ""
            lines.append(f"    {t['time']:9.3f} s  frame {t['frame']}{span}  {t['kind']}")
        lines.append(f"  black       {_spans(r['black'])}")
        lines.append(f"  frozen      {_spans(r['freeze'])}")
    else:
        lines.append(f"  no video, {r['duration']:.3f} s")
    lines.append(f"  silent      {_spans(r['silence'])}")
    loud = r["loudness"]
    if loud["integrated"] is None:
        lines.append("  loudness    not measurable (no audio, or silence only)")
    else:
        lines.append(f"  loudness    {loud['integrated']} LUFS integrated, LRA {loud['lra']} LU, "
                     f"true peak {loud['true_peak']} dBTP")
    if r["poster"]:
        lines.append(f"  poster      frame {r['poster']['frame']} ({r['poster']['time']:.2f} s); cover frame "
                     f"{r['cover']['frame']} ({r['cover']['time']:.2f} s)")
        xs = [p["x"] for p in r["crop_path"]["points"]]
        lines.append(f"  9:16 crop   {len(xs)} path points, centre between {min(xs):.3f} and {max(xs):.3f} "
                     f"of the width")
    return lines


def describe_task(task: Task) -> list[str]:
    lines = [f"  [{task.kind}] {task.id}" + (f"  (after {', '.join(task.deps)})" if task.deps else "")]
    p = task.params
    if "argv" in p:
        lines.append("      " + " ".join(shlex.quote(a) for a in p["argv"]))
    if task.kind == TaskKind.ENCODE:
        lines += [f"      -> {o['final']}  ({o['profile']})" for o in p["outputs"]]
    if task.kind == TaskKind.CHUNK:
        lines.append(f"      chunk {p['index'] + 1}: {p['duration']:g} s from {p['start']:g} s -> {p['final']}")
    if task.kind == TaskKind.JOIN:
        for r, o in zip(p["renditions"], p["outputs"]):
            how = "concat demuxer" if r["method"] == "concat" else "byte for byte"
            lines.append(f"      {len(r['chunks'])} chunks ({how}) + {'its sound' if r['sound'] else 'no sound'}, "
                         f"sync gate ({r['frames']} pictures) -> {o['final']}  ({o['profile']})")
    if task.kind == TaskKind.ANALYZE:
        lines.append(f"      {p['source']} -> {p['cache']}" + ("  (its parts joined)" if task.deps else ""))
    if task.kind == TaskKind.ANALYZE_PART:
        what = ("the sound" if p["part"] == "sound" else
                f"stretch {p['index'] + 1}: {p['duration']:g} s of pictures from {p['start'] or p['origin']:g} s")
        lines.append(f"      {what} -> {p['file']}")
    if task.kind == TaskKind.ENCODE and "follow" in p:
        lines.append(f"      crop window follows the subject: {p['follow']['commands']} from the analysis")
    if task.kind == TaskKind.DELIVER:
        lines += [f"      {f['dest']}  <- {f['src']}" for f in p["files"]]
        if p["qc"]["rules"]:
            rules = ", ".join(f"{k}={v}" for k, v in p["qc"]["rules"].items())
            lines.append(f"      QC ({p['qc']['mode']}): {rules}; record {p['qc']['record']}")
        lines.append(f"      into {p['dest']}/ with manifest.json last")
    return lines


def _moment(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def describe_jobs(jobs: Sequence[Job]) -> list[str]:
    return [f"{j.id:>6}  {j.state:<9} {j.lane:<6} {j.attempts:>2}  {_moment(j.queued_at)}  {j.path}" for j in jobs]


def describe_job(job: Job) -> list[str]:
    lines = []
    for key, value in job.to_dict().items():
        if key.endswith("_at"):
            value = _moment(value)
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, ensure_ascii=False)
        lines.append(f"{key:<12} {value}")
    return lines


def describe_checks(checks: Sequence[dict[str, Any]]) -> list[str]:
    return [f"{'pass' if c['passed'] else 'FAIL'}  {c['name']:<32} {c['value']}  (expected {c['limit']})"
            for c in checks]


def describe_profiles(catalog: Catalog) -> list[str]:
    users: dict[str, list[str]] = {}
    for channel, names in catalog.channels.items():
        for n in names:
            users.setdefault(n, []).append(channel)
    return [f"{name:<18} {p.kind:<6} {','.join(users.get(name, [])) or '-':<10} {p.description}"
            for name, p in sorted(catalog.profiles.items())]


def describe_profile(name: str, catalog: Catalog) -> list[str]:
    profile = catalog.profile(name)
    lines = [f"{name}  ({catalog.origins[name]})", f"  {profile.description}"]
    for section, values in profile.to_dict().items():
        if isinstance(values, dict):
            lines.append(f"  [{section}]")
            lines.extend(f"    {key} = {json.dumps(value, ensure_ascii=False)}" for key, value in values.items())
    if profile.kind in ("av", "image", "hls"):
        for channel, names in catalog.channels.items():
            if name in names:
                logo = catalog.logo_of(channel, profile)
                where = "" if logo is None else f"{logo.corner}, {logo.height:g} of the height, opacity " \
                    f"{logo.opacity:g}, " + (f"file {logo.file}" if logo.file else "the farm's logo (--logo)")
                lines.append(f"  in channel {channel}: " + (f"logo {where}" if logo else "no logo"))
    return lines


class ProgressView:
    """One row per rendition with a bar and an ETA, on a terminal only (``pipeline.run.View``)."""

    def __init__(self, plans: Sequence[JobPlan]) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TimeRemainingColumn(), transient=False)
        self.rows: dict[str, list[Any]] = {}
        self.verify_row: dict[str, Any] = {}
        self.joins_of: dict[str, list[str]] = {}    # chunk (analysis part) -> the joins (analysis) it goes to
        self.chunks_done: dict[str, dict[str, float]] = {}  # join (analysis) -> each of its chunks' (parts') progress
        for plan in plans:
            for task in plan.tasks:
                if task.kind in (TaskKind.ENCODE, TaskKind.JOIN):  # a row per rendition (a sound is its rendition's)
                    outputs = [o for o in task.params["outputs"] if not o["profile"].endswith(SOUND_SUFFIX)]
                    chunks = [d for d in task.deps if kind_of(d) is TaskKind.CHUNK]
                    rows = [self.progress.add_task(f"{plan.asset_id}  {o['profile']}" +
                                                   (f"  ({len(chunks)} chunks)" if chunks else ""), total=100)
                            for o in outputs]
                    self.rows[task.id] = rows
                    for chunk in chunks:
                        self.joins_of.setdefault(chunk, []).append(task.id)
                    self.chunks_done[task.id] = {chunk: 0.0 for chunk in chunks}
                    for o, row in zip(outputs, rows):
                        self.verify_row[task_id(plan.asset_id, TaskKind.VERIFY, o["profile"])] = row
                elif task.kind == TaskKind.ANALYZE:
                    parts = list(task.deps)
                    self.rows[task.id] = [self.progress.add_task(
                        f"{plan.asset_id}  analysis" + (f"  ({len(parts)} parts)" if parts else ""), total=100)]
                    for part in parts:
                        self.joins_of.setdefault(part, []).append(task.id)
                    self.chunks_done[task.id] = {part: 0.0 for part in parts}
                elif task.kind == TaskKind.PACKAGE:
                    name = task.id.rsplit("/", 1)[-1]
                    row = self.progress.add_task(f"{plan.asset_id}  {name}", total=100)
                    self.rows[task.id] = [row]
                    self.verify_row[task_id(plan.asset_id, TaskKind.VERIFY, name)] = row

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def on_progress(self, identifier: str, fraction: float) -> None:
        if identifier in self.joins_of:  # a chunk (an analysis part): as far as all of them together
            for join in self.joins_of[identifier]:
                done = self.chunks_done[join]
                done[identifier] = fraction
                self._show(join, sum(done.values()) / len(done))
        else:
            self._show(identifier, fraction)

    def _show(self, identifier: str, fraction: float) -> None:
        for row in self.rows.get(identifier, []):
            self.progress.update(row, completed=90 * fraction)

    def on_event(self, plan: JobPlan, task: Task, state: str, detail: Any) -> None:
        if task.kind == TaskKind.VERIFY and task.id in self.verify_row:
            row = self.verify_row[task.id]
            passed = state == "done" and all(c["passed"] for c in detail)
            self.progress.update(row, completed=100, description=self.progress.tasks[row].description +
                                 ("  verified" if passed else "  FAILED"))
        elif task.kind == TaskKind.ANALYZE and task.id in self.rows:
            row = self.rows[task.id][0]
            self.progress.update(row, completed=100 if state == "done" else self.progress.tasks[row].completed,
                                 description=self.progress.tasks[row].description +
                                 ("  done" if state == "done" else "  FAILED"))
        elif state == "failed" and task.id in self.rows:
            for row in self.rows[task.id]:
                self.progress.update(row, description=self.progress.tasks[row].description + "  FAILED")


def failed_lines(outcomes: Sequence[SourceOutcome]) -> None:
    for o in outcomes:
        if not o.ok:
            line = o.failure_line()
            click.echo(f"FAILED {line}" if line.startswith(o.source) else f"FAILED {o.source}: {line}", err=True)


def report_outcomes(outcomes: Sequence[SourceOutcome], as_json: bool) -> int:
    ok = all(o.ok for o in outcomes)
    if as_json:
        manifests = [m for o in outcomes for m in o.manifests]
        click.echo(json.dumps({"ok": ok, "manifests": manifests, "sources": [o.to_dict() for o in outcomes]},
                              indent=2, ensure_ascii=False))
        failed_lines(outcomes)  # a log that keeps only stderr still says which source failed and why
    else:
        for o in outcomes:
            for c in o.channels:
                if c.manifest:
                    click.echo(f"delivered {c.channel:<6} {c.manifest.rsplit('/', 1)[0]}")
                for f in c.qc_failed:  # delivered under --qc warn
                    click.echo(f"QC WARNING {o.source}: {c.channel}: {f['name']}: measured {f['value']}, "
                               f"expected {f['limit']}", err=True)
        failed_lines(outcomes)
        delivered = sum(o.ok for o in outcomes)
        click.echo(f"{delivered} of {len(outcomes)} source(s) delivered and verified", err=not ok)
    return 0 if ok else 1
