"""The `onetake` command: parse, call the pipeline, show progress and results."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .pipeline.config import (
    LANES,
    FarmConfig,
    InboxConfig,
    WatchConfig,
    field_help,
    load_config,
    load_watch_config,
    watch_help,
)
from .pipeline.destinations import absolute_location, is_s3, parse_location
from .pipeline.errors import ConfigError, OnetakeError, ProfileError, StorageError
from .pipeline.models import JobPlan, SourceInfo, Task
from .pipeline.probe import probe
from .pipeline.schedule import SourceOutcome, describe_error, fetch_sources, run_plans

if TYPE_CHECKING:
    from .pipeline.plan import PlanOptions
    from .pipeline.profiles import Catalog

# Planning, profiles, Dask and the workers are imported by the commands that use them, so that `probe` and
# `analyze` start without them.


class OnetakeGroup(click.Group):
    """Turns every OnetakeError into one line on stderr and exit status 2 (an unexpected error: status 3)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OnetakeError as exc:
            click.echo(f"onetake: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("onetake: interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug: one line for the operator, the traceback on request
            if os.environ.get("ONETAKE_DEBUG"):
                raise
            click.echo(f"onetake: {describe_error(exc)}; set ONETAKE_DEBUG=1 to see the traceback", err=True)
            ctx.exit(3)


def _channels(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not names:
        raise click.BadParameter("give at least one channel, e.g. --channels tv,web")
    return names


def _settings(config: str | None, **overrides: Any) -> FarmConfig:
    return _choose_ffmpeg(load_config(config).merged(**overrides))


def _choose_ffmpeg(settings: FarmConfig) -> FarmConfig:
    """[farm] ffmpeg names the binary for this process and the workers it starts, unless ONETAKE_FFMPEG does."""
    from .workers.ffmpeg import FFMPEG_ENV

    if settings.ffmpeg and not os.environ.get(FFMPEG_ENV):
        os.environ[FFMPEG_ENV] = os.path.abspath(settings.ffmpeg)
    return settings


def _representative_plans(channel_sets: Sequence[Sequence[str]], catalog: Catalog,
                          options: PlanOptions) -> list[JobPlan]:
    """Plans of the representative sources (interlaced, HDR, audio-only) for each channel set they can feed."""
    from .pipeline.errors import PlanError
    from .pipeline.plan import plan_job
    from .workers.capabilities import representative_sources

    plans = []
    for channels in dict.fromkeys(tuple(c) for c in channel_sets):
        for source in representative_sources():
            try:
                plans.append(plan_job(source, channels or None, catalog, options))
            except PlanError:  # e.g. video channels for the audio-only programme
                continue
    return plans


def _check_ffmpeg(plans: Sequence[JobPlan]) -> None:
    """Refuse, before any work, an ffmpeg that cannot run these plans (one line: what it lacks)."""
    from .workers.capabilities import check_plans

    check_plans(plans)


def _load_catalog(profiles_dir: str | None) -> Catalog:
    from .pipeline.profiles import load_catalog

    return load_catalog(Path(profiles_dir) if profiles_dir else None)


def _catalog(settings: FarmConfig) -> Catalog:
    return _load_catalog(settings.profiles_dir)


def _plan_options(settings: FarmConfig, encoder_version: str) -> PlanOptions:
    from .pipeline.plan import PlanOptions

    destinations = tuple(f"{c}={absolute_location(d)}" for c, d in settings.channel_destinations().items())
    farm = settings.merged(destinations=destinations)
    return PlanOptions(out_dir=absolute_location(settings.out), work_dir=os.path.abspath(settings.work_path()),
                       encoder_version=encoder_version, x264_threads=settings.x264_threads, farm=farm)


def _check_channels(settings: FarmConfig, catalog: Catalog) -> None:
    """Every channel asked for or given a destination exists; --out is a folder or an S3 URL."""
    parse_location(settings.out, "--out")
    for name in [*settings.channels, *settings.channel_destinations()]:
        if name not in catalog.channels:
            raise ConfigError(f"unknown channel '{name}'; known channels are {', '.join(catalog.channels)}")


def _dests(values: Sequence[str]) -> tuple[str, ...] | None:
    for value in values:
        if "=" not in value or not value.split("=", 1)[0]:
            raise click.BadParameter(f"'{value}': give CHANNEL=DEST, e.g. --dest tv=s3://playout/incoming")
    return tuple(values) or None


common_options = [
    click.option("--channels", help=field_help("channels") + " Comma-separated, e.g. tv,web."),
    click.option("--out", help=field_help("out")),
    click.option("--dest", "dests", multiple=True, metavar="CHANNEL=DEST", help=field_help("destinations")),
    click.option("--config", "config", type=click.Path(dir_okay=False), help="a farm config TOML file"),
    click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir")),
    click.option("--qc", "qc", type=click.Choice(["enforce", "warn"]), help=field_help("qc")),
    click.option("--accept-damaged", "accept_damaged", is_flag=True, default=None, help=field_help("accept_damaged")),
]


def with_common(f: Any) -> Any:
    for decorator in reversed(common_options):
        f = decorator(f)
    return f


@click.group(cls=OnetakeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="onetake")
def cli() -> None:
    """Collect once, publish everywhere: one capture in, every channel's deliverables out."""


# --------------------------------------------------------------------------------------------------------- probe


def _describe_source(info: SourceInfo) -> list[str]:
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


@contextlib.contextmanager
def _readable_here(source: str) -> Iterator[str]:
    """A local path for ``source``: itself, or for s3://bucket/key a copy in a temporary folder, removed after."""
    if not is_s3(source):
        yield source
        return
    from .workers.s3 import Transfer, fetch

    with tempfile.TemporaryDirectory(prefix="onetake-") as scratch:
        yield fetch(source, scratch, Transfer.from_params(FarmConfig().transfer()))


@cli.command("probe")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="print SourceInfo as JSON")
def probe_command(source: str, as_json: bool) -> None:
    """Describe SOURCE (a file or s3://bucket/key): streams, rates, scan, aspect, rotation, colour, audio layout,
    offsets, timecode."""
    import dataclasses

    with _readable_here(source) as local:
        info = probe(local)
    if is_s3(source):
        info = dataclasses.replace(info, url=source)
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(_describe_source(info)))


# --------------------------------------------------------------------------------------------------------- analyze


def _spans(items: Sequence[dict[str, float]]) -> str:
    if not items:
        return "none"
    return ", ".join(f"{x['start']:.2f}-{x['end']:.2f} s" for x in items)


def _describe_analysis(path: str, r: dict[str, Any]) -> list[str]:
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


def _write_html_report(result: dict[str, Any], source: str, path: str) -> None:
    """The report at ``path``, whole or not at all."""
    from .workers.files import write_atomically
    from .workers.report import report_page

    try:
        write_atomically(Path(path).absolute(), report_page(result, os.path.abspath(source), Path(source).name))
    except OSError as exc:
        raise StorageError(f"{path}: cannot write the report ({exc.strerror or exc}); give a writable path") from exc


@cli.command("analyze")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="print the analysis as JSON (the shape other tools read)")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="also write the analysis as a self-contained HTML page (posters, timeline, loudness) here")
def analyze_command(source: str, as_json: bool, report_path: str | None) -> None:
    """Look at SOURCE in one decode: cuts, fades and dissolves, black, frozen and silent stretches, loudness
    (EBU R128), active picture area, interlacing, poster and cover frames, and a 9:16 crop path that follows
    the subject."""
    from .workers.analysis import analyze

    show = sys.stderr.isatty()

    def report(fraction: float) -> None:
        click.echo(f"\ranalysing {fraction:4.0%}", nl=False, err=True)

    with _readable_here(source) as local:
        result = analyze(local, report=report if show else None)
        if show:
            click.echo("\r" + " " * 20 + "\r", nl=False, err=True)
        if report_path:
            _write_html_report(result, local, report_path)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo("\n".join(_describe_analysis(absolute_location(source), result)))


# --------------------------------------------------------------------------------------------------------- plan


def _make_plans(sources: Sequence[str | SourceInfo], settings: FarmConfig, catalog: Catalog,
                channels: Sequence[str] | None, encoder_version: str) -> tuple[list[JobPlan], list[SourceOutcome]]:
    from .pipeline.plan import plan_job

    plans, failures = [], []
    options = _plan_options(settings, encoder_version)
    for source in sources:
        try:
            info = source if isinstance(source, SourceInfo) else probe(source)
            plans.append(plan_job(info, channels, catalog, options))
        except Exception as exc:  # one bad source is one line; the batch goes on
            name = source.url or source.path if isinstance(source, SourceInfo) else os.path.abspath(source)
            failures.append(SourceOutcome(name, error=exc))
    return plans, failures


def _source_key(source: str) -> str:
    return source if is_s3(source) else os.path.abspath(source)


def _probe_here(source: str, settings: FarmConfig) -> SourceInfo:
    """Probe a source in this process; an S3 source is fetched into the work dir first (plan and probe only:
    `run` has its workers fetch and probe S3 sources)."""
    if not is_s3(source):
        return probe(source)
    import dataclasses

    from .workers.s3 import Transfer, fetch

    local = fetch(source, os.path.abspath(settings.work_path()), Transfer.from_params(settings.transfer()))
    return dataclasses.replace(probe(local), url=source)


def _encoder_version() -> str:
    from .workers.ffmpeg import ffmpeg_version

    return ffmpeg_version()


def _describe_task(task: Task) -> list[str]:
    lines = [f"  [{task.kind}] {task.id}" + (f"  (after {', '.join(task.deps)})" if task.deps else "")]
    p = task.params
    if "argv" in p:
        lines.append("      " + " ".join(_quote(a) for a in p["argv"]))
    if task.kind == "encode":
        lines += [f"      -> {o['final']}  ({o['profile']})" for o in p["outputs"]]
    if task.kind == "analyze":
        lines.append(f"      {p['source']} -> {p['cache']}")
    if task.kind == "encode" and "follow" in p:
        lines.append(f"      crop window follows the subject: {p['follow']['commands']} from the analysis")
    if task.kind == "deliver":
        lines += [f"      {f['dest']}  <- {f['src']}" for f in p["files"]]
        if p["qc"]["rules"]:
            rules = ", ".join(f"{k}={v}" for k, v in p["qc"]["rules"].items())
            lines.append(f"      QC ({p['qc']['mode']}): {rules}; record {p['qc']['record']}")
        lines.append(f"      into {p['dest']}/ with manifest.json last")
    return lines


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


@cli.command("plan")
@click.argument("source")
@with_common
@click.option("--json", "as_json", is_flag=True, help="print the JobPlan as JSON")
def plan_command(source: str, channels: str | None, out: str | None, dests: tuple[str, ...], config: str | None,
                 profiles_dir: str | None, qc: str | None, accept_damaged: bool | None, as_json: bool) -> None:
    """Print exactly what `onetake run SOURCE` would do, without doing it."""
    settings = _settings(config, out=out, profiles_dir=profiles_dir, channels=_channels(channels),
                         destinations=_dests(dests), qc=qc, accept_damaged=accept_damaged)
    from .pipeline.plan import plan_job

    catalog = _catalog(settings)
    _check_channels(settings, catalog)
    plan = plan_job(_probe_here(source, settings), settings.channels or None, catalog,
                    _plan_options(settings, _encoder_version()))
    _check_ffmpeg([plan])
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"asset {plan.asset_id}: {len(plan.tasks)} tasks for channels {', '.join(plan.channels)}")
    for note in plan.notes:
        click.echo(f"  note: {note}")
    for task in plan.tasks:
        click.echo("\n".join(_describe_task(task)))


# --------------------------------------------------------------------------------------------------------- run


@contextlib.contextmanager
def open_cluster(settings: FarmConfig) -> Iterator[Any]:
    """A Dask client: on an existing scheduler, or on an embedded LocalCluster that ends with the run."""
    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with contextlib.ExitStack() as stack:
        if settings.scheduler:
            try:
                client = distributed.Client(settings.scheduler, timeout="15s", set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {settings.scheduler} ({exc}); start one "
                                  f"with `dask scheduler` and `dask worker {settings.scheduler} --resources "
                                  f"encode=1`, or leave --scheduler out for an embedded cluster") from exc
        else:
            workers = settings.workers or max(1, (os.cpu_count() or 1) // 4)
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=workers, threads_per_worker=2, processes=True, resources={"encode": 1},
                # no dashboard; its HTTP server (health, metrics) on a free port, so that a second run on the
                # same machine does not warn that 8787 is taken
                dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                silence_logs=logging.CRITICAL))
            client = distributed.Client(cluster, set_as_default=False)
        stack.callback(client.close)
        client.run(importlib.import_module, "onetake.workers.tasks")  # workers import PyAV & co. now, not mid-run
        yield client


class ProgressView:
    """One row per rendition with a bar and an ETA, on a terminal only."""

    def __init__(self, plans: Sequence[JobPlan]) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TimeRemainingColumn(), transient=False)
        self.rows: dict[str, list[Any]] = {}
        self.verify_row: dict[str, Any] = {}
        for plan in plans:
            for task in plan.tasks:
                if task.kind == "encode":
                    rows = [self.progress.add_task(f"{plan.asset_id}  {o['profile']}", total=100)
                            for o in task.params["outputs"]]
                    self.rows[task.id] = rows
                    for o, row in zip(task.params["outputs"], rows):
                        self.verify_row[f"{plan.asset_id}/verify/{o['profile']}"] = row
                elif task.kind == "analyze":
                    self.rows[task.id] = [self.progress.add_task(f"{plan.asset_id}  analysis", total=100)]
                elif task.kind == "package":
                    row = self.progress.add_task(f"{plan.asset_id}  {task.id.rsplit('/', 1)[-1]}", total=100)
                    self.rows[task.id] = [row]
                    self.verify_row[f"{plan.asset_id}/verify/{task.id.rsplit('/', 1)[-1]}"] = row

    def on_progress(self, task_id: str, fraction: float) -> None:
        for row in self.rows.get(task_id, []):
            self.progress.update(row, completed=90 * fraction)

    def on_event(self, plan: JobPlan, task: Task, state: str, detail: Any) -> None:
        if task.kind == "verify" and task.id in self.verify_row:
            row = self.verify_row[task.id]
            passed = state == "done" and all(c["passed"] for c in detail)
            self.progress.update(row, completed=100, description=self.progress.tasks[row].description +
                                 ("  verified" if passed else "  FAILED"))
        elif task.kind == "analyze" and task.id in self.rows:
            row = self.rows[task.id][0]
            self.progress.update(row, completed=100 if state == "done" else self.progress.tasks[row].completed,
                                 description=self.progress.tasks[row].description +
                                 ("  done" if state == "done" else "  FAILED"))
        elif state == "failed" and task.id in self.rows:
            for row in self.rows[task.id]:
                self.progress.update(row, description=self.progress.tasks[row].description + "  FAILED")


def execute(sources: Sequence[str], settings: FarmConfig, show_progress: bool) -> list[SourceOutcome]:
    catalog = _catalog(settings)
    _check_channels(settings, catalog)
    from .workers.executor import DaskExecutor

    outcomes: list[SourceOutcome] = []
    channels = settings.channels or None
    remote = [s for s in sources if is_s3(s)]
    # Not overlapped with starting the cluster: Dask edits os.environ while it spawns workers, and a
    # subprocess started meanwhile (ffmpeg -version) can exec with a half-written environment (EFAULT).
    encoder = _encoder_version()
    plans, failures = _make_plans([s for s in sources if not is_s3(s)], settings, catalog, channels, encoder)
    _check_ffmpeg(plans)
    if plans or remote:
        with open_cluster(settings) as client:
            view: ProgressView | None = None  # made once every source is planned; progress reaches it then

            def on_progress(task_id: str, fraction: float) -> None:
                if view is not None:
                    view.on_progress(task_id, fraction)

            executor = DaskExecutor(client, on_progress=on_progress)
            if remote:  # probed where they are read: on a worker
                infos, fetch_failures = fetch_sources(remote, os.path.abspath(settings.work_path()),
                                                      settings.transfer(), executor)
                more, plan_failures = _make_plans(infos, settings, catalog, channels, encoder)
                _check_ffmpeg(more)
                plans += more
                failures += fetch_failures + plan_failures
            unique = list({p.asset_id: p for p in reversed(plans)}.values())[::-1]  # the same file given twice
            view = ProgressView(unique) if show_progress and unique else None
            if view is not None:
                with view.progress:
                    outcomes = run_plans(unique, executor, on_event=view.on_event)
            elif unique:
                outcomes = run_plans(unique, executor)
    by_asset = {o.asset_id: o for o in outcomes}
    by_path = {o.source: o for o in failures}
    for plan in plans:
        done = by_asset[plan.asset_id]
        name = plan.source.url or plan.source.path
        by_path[name] = SourceOutcome(name, plan.asset_id, done.channels, done.error)
    return [by_path[_source_key(s)] for s in dict.fromkeys(sources)]


def _failed_lines(outcomes: Sequence[SourceOutcome]) -> None:
    for o in outcomes:
        if not o.ok:
            line = o.failure_line()
            click.echo(f"FAILED {line}" if line.startswith(o.source) else f"FAILED {o.source}: {line}", err=True)


def _report(outcomes: Sequence[SourceOutcome], as_json: bool) -> int:
    ok = all(o.ok for o in outcomes)
    if as_json:
        manifests = [c.manifest for o in outcomes for c in o.channels if c.manifest]
        click.echo(json.dumps({"ok": ok, "manifests": manifests, "sources": [o.to_dict() for o in outcomes]},
                              indent=2, ensure_ascii=False))
        _failed_lines(outcomes)  # a log that keeps only stderr still says which source failed and why
    else:
        for o in outcomes:
            for c in o.channels:
                if c.manifest:
                    click.echo(f"delivered {c.channel:<6} {c.manifest.rsplit('/', 1)[0]}")
                for f in c.qc_failed:  # delivered under --qc warn
                    click.echo(f"QC WARNING {o.source}: {c.channel}: {f['name']}: measured {f['value']}, "
                               f"expected {f['limit']}", err=True)
        _failed_lines(outcomes)
        delivered = sum(o.ok for o in outcomes)
        click.echo(f"{delivered} of {len(outcomes)} source(s) delivered and verified", err=not ok)
    return 0 if ok else 1


@cli.command("run")
@click.argument("sources", nargs=-1, required=True)
@with_common
@click.option("--scheduler", help=field_help("scheduler"))
@click.option("--workers", type=click.IntRange(0, 512), help=field_help("workers"))
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary, no progress")
def run_command(sources: tuple[str, ...], channels: str | None, out: str | None, dests: tuple[str, ...],
                config: str | None, profiles_dir: str | None, qc: str | None, accept_damaged: bool | None,
                scheduler: str | None,
                workers: int | None, as_json: bool) -> None:
    """Make, verify and deliver every channel's renditions of each SOURCE (a local file or s3://bucket/key)."""
    settings = _settings(config, out=out, profiles_dir=profiles_dir, channels=_channels(channels),
                         scheduler=scheduler, workers=workers, destinations=_dests(dests), qc=qc,
                         accept_damaged=accept_damaged)
    show = sys.stdout.isatty() and not as_json
    if not settings.ledger:
        sys.exit(_report(execute(sources, settings, show), as_json))
    from .pipeline.ledger import Ledger, process_owner

    with Ledger(settings.ledger) as ledger:
        owner = process_owner()
        paths = [absolute_location(s) for s in dict.fromkeys(sources)]
        jobs = [ledger.add(kind="run", source=p, path=p, lane="normal", out=absolute_location(settings.out),
                           channels=settings.channels, state="running", owner=owner) for p in paths]
        outcomes = execute(sources, settings, show)
        for job_id, outcome in zip(jobs, outcomes):
            manifests = [c.manifest for c in outcome.channels if c.manifest]
            if outcome.ok:
                ledger.delivered(job_id, outcome.asset_id, manifests)
            else:
                ledger.failed(job_id, outcome.failure_line(), outcome.asset_id, manifests)
    sys.exit(_report(outcomes, as_json))


# --------------------------------------------------------------------------------------------------------- watch


def _watch_option(name: str, kind: Any) -> Any:
    """A click type for a [watch] value, with the bounds the config itself checks."""
    from dataclasses import fields

    meta = next(f.metadata for f in fields(WatchConfig) if f.name == name)
    return kind(meta["min"], meta["max"]) if kind is click.FloatRange else click.Choice(meta["choices"])


class StopSignals:
    """The first SIGTERM or Ctrl-C drains, the second stops at once; the previous handlers come back on exit."""

    def __init__(self) -> None:
        self.count = 0
        self.watcher: Any = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        import signal

        self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self.handle)
        # Ctrl-C on a terminal reaches the whole process group: the Dask workers started meanwhile inherit
        # "ignore" (across exec too), so only the watcher sees it and a drain can let their tasks finish
        self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self

    def arm(self) -> None:
        """Once the workers are started: Ctrl-C drains, like SIGTERM."""
        import signal

        signal.signal(signal.SIGINT, self.handle)

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.watcher is None:
            if self.count == 1:
                return  # still starting: the watcher drains as soon as it exists
            raise KeyboardInterrupt
        if self.count == 1:
            self.watcher.drain()
        else:
            self.watcher.stop()


@cli.command("watch")
@click.argument("inboxes", nargs=-1, type=click.Path(file_okay=False))
@with_common
@click.option("--lane", type=click.Choice(LANES), help=watch_help("lane"))
@click.option("--settle", "settle_s", type=_watch_option("settle_s", click.FloatRange), help=watch_help("settle_s"))
@click.option("--poll", "poll_s", type=_watch_option("poll_s", click.FloatRange), help=watch_help("poll_s"))
@click.option("--require", type=_watch_option("require", click.Choice), help=watch_help("require"))
@click.option("--ledger", type=click.Path(dir_okay=False), help=field_help("ledger"))
@click.option("--scheduler", help=field_help("scheduler"))
@click.option("--workers", type=click.IntRange(0, 512), help=field_help("workers"))
def watch_command(inboxes: tuple[str, ...], channels: str | None, out: str | None, dests: tuple[str, ...],
                  config: str | None, profiles_dir: str | None, qc: str | None, accept_damaged: bool | None,
                  lane: str | None,
                  settle_s: float | None, poll_s: float | None, require: str | None, ledger: str | None,
                  scheduler: str | None, workers: int | None) -> None:
    """Take every file dropped into each INBOX once it has finished arriving, and deliver it.

    Runs until SIGTERM or Ctrl-C: the first lets running jobs finish (up to [watch] drain_timeout_s), the
    second stops at once. Jobs are recorded in the ledger (`onetake jobs list`)."""
    from dataclasses import replace

    from .pipeline.ledger import Ledger
    from .pipeline.watch import Watcher
    from .workers.executor import DaskExecutor

    farm, watch, tables = load_watch_config(config) if config else (FarmConfig(), WatchConfig(), [])
    farm = _choose_ffmpeg(farm.merged(out=out, profiles_dir=profiles_dir, channels=_channels(channels),
                                      ledger=ledger, destinations=_dests(dests), qc=qc, accept_damaged=accept_damaged,
                                      scheduler=scheduler,
                                      workers=workers))
    watch = replace(watch, **{k: v for k, v in {"lane": lane, "settle_s": settle_s, "poll_s": poll_s,
                                                "require": require}.items() if v is not None})
    tables = [*tables, *(InboxConfig(path=i) for i in inboxes)]
    if not tables:
        raise ConfigError("give at least one INBOX folder, or a --config file with [[inbox]] tables")
    catalog = _catalog(farm)
    _check_channels(farm, catalog)
    for table in tables:
        _check_channels(farm.merged(channels=table.channels or None, out=table.out or None), catalog)
        if not os.path.isdir(table.path):
            raise ConfigError(f"{table.path}: no such inbox folder; create it or fix the path")
    encoder = _encoder_version()

    def plan_options(inbox_out: str) -> PlanOptions:
        return _plan_options(farm.merged(out=inbox_out), encoder)

    # files arrive later: the ffmpeg is checked now against what typical ones would need, inbox by inbox
    _check_ffmpeg(_representative_plans([t.channels or farm.channels for t in tables], catalog,
                                        plan_options(absolute_location(farm.out))))

    def log(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)

    with StopSignals() as signals, Ledger(farm.ledger_path()) as job_ledger, open_cluster(farm) as client:
        executor = DaskExecutor(client)
        watcher = Watcher(tables, watch, farm, job_ledger, executor, catalog, plan_options,
                          encode_workers=max(1, executor.encode_workers), log=log)
        signals.watcher = watcher
        signals.arm()
        if signals.count:
            watcher.drain()
        names = ", ".join(f"{i.config.path} ({i.config.lane})" for i in watcher.inboxes)
        click.echo(f"watching {names}; ledger {job_ledger.path}", err=True)
        observer = _observe(watcher, log) if watch.events else None
        try:
            watcher.run()
        finally:
            if observer is not None:
                observer.stop()
                observer.join()
    sys.exit(0 if watcher.stopped_reason == "drained" else 1)


def _observe(watcher: Any, log: Callable[[str], None]) -> Any:
    """Wake the watcher on file-system events; polling still runs, for shares where no events arrive (and alone
    when events cannot be had, e.g. the inotify watch limit is reached)."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Wake(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            watcher.wake()

    observer = Observer()
    for inbox in watcher.inboxes:
        observer.schedule(Wake(), str(inbox.path), recursive=False)
    observer.daemon = True
    try:
        observer.start()
    except OSError as exc:
        log(f"no file-system events ({exc.strerror or exc}); polling every [watch] poll_s instead")
        return None
    return observer


# --------------------------------------------------------------------------------------------------------- jobs


def _open_ledger(ledger: str | None, config: str | None, out: str | None) -> Any:
    from .pipeline.ledger import Ledger

    settings = _settings(config, out=out, ledger=ledger)
    path = settings.ledger_path()
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no job ledger there; give the one `onetake watch` or `run` uses with --ledger "
                          f"(or --config / --out)")
    job_ledger = Ledger(path)
    job_ledger.reconcile()
    return job_ledger


ledger_options = [
    click.option("--ledger", type=click.Path(dir_okay=False), help=field_help("ledger")),
    click.option("--config", "config", type=click.Path(dir_okay=False), help="a farm config TOML file"),
    click.option("--out", type=click.Path(file_okay=False), help="the default ledger is WORK_DIR/jobs.sqlite, WORK_DIR "
                 "defaulting to OUT/.onetake (./.onetake when OUT is in S3)"),
]


def with_ledger(f: Any) -> Any:
    for decorator in reversed(ledger_options):
        f = decorator(f)
    return f


@cli.group("jobs")
def jobs_group() -> None:
    """List, show, retry and cancel the jobs in the ledger."""


def _age(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


@jobs_group.command("list")
@with_ledger
@click.option("--state", type=click.Choice(("queued", "running", "delivered", "failed", "cancelled")))
@click.option("--json", "as_json", is_flag=True)
def jobs_list(ledger: str | None, config: str | None, out: str | None, state: str | None, as_json: bool) -> None:
    """One line per job: id, state, lane, attempts, when it was queued, its file."""
    with _open_ledger(ledger, config, out) as job_ledger:
        jobs = job_ledger.list(state)
    if as_json:
        click.echo(json.dumps([j.to_dict() for j in jobs], indent=2, ensure_ascii=False))
        return
    for j in jobs:
        click.echo(f"{j.id:>6}  {j.state:<9} {j.lane:<6} {j.attempts:>2}  {_age(j.queued_at)}  {j.path}")


@jobs_group.command("show")
@click.argument("job_id", type=int)
@with_ledger
@click.option("--json", "as_json", is_flag=True)
def jobs_show(job_id: int, ledger: str | None, config: str | None, out: str | None, as_json: bool) -> None:
    """Every field of one job."""
    with _open_ledger(ledger, config, out) as job_ledger:
        job = job_ledger.get(job_id)
    if as_json:
        click.echo(json.dumps(job.to_dict(), indent=2, ensure_ascii=False))
        return
    for key, value in job.to_dict().items():
        if key.endswith("_at"):
            value = _age(value)
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, ensure_ascii=False)
        click.echo(f"{key:<12} {value}")


@jobs_group.command("retry")
@click.argument("job_id", type=int)
@with_ledger
def jobs_retry(job_id: int, ledger: str | None, config: str | None, out: str | None) -> None:
    """Queue a failed or cancelled job again; a watcher on its inbox takes it."""
    from .pipeline.watch import retry_job

    with _open_ledger(ledger, config, out) as job_ledger:
        path = retry_job(job_ledger, job_id)
    click.echo(f"job {job_id} queued again: {path}")


@jobs_group.command("cancel")
@click.argument("job_id", type=int)
@with_ledger
def jobs_cancel(job_id: int, ledger: str | None, config: str | None, out: str | None) -> None:
    """Cancel a queued or running job; its watcher stops it and moves its file to failed/."""
    with _open_ledger(ledger, config, out) as job_ledger:
        job_ledger.cancel(job_id)
    click.echo(f"job {job_id} cancelled")


# --------------------------------------------------------------------------------------------------------- verify


@cli.command("verify")
@click.argument("path", type=click.Path(exists=True))
@click.option("--profile", "profile_name", required=True, help="the profile PATH must meet")
@click.option("--source", type=click.Path(dir_okay=False),
              help="the source it was made from: checks duration, timecode, loudness against it")
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir"))
@click.option("--json", "as_json", is_flag=True)
def verify_command(path: str, profile_name: str, source: str | None, profiles_dir: str | None, as_json: bool) -> None:
    """Check an output file (or HLS/sprite folder) against a profile."""
    from .pipeline.plan import expectations, measure_argv, programme_streams
    from .workers.loudness import measure_programme, silent
    from .workers.verify import verify_output

    catalog = _load_catalog(profiles_dir)
    profile = catalog.profile(profile_name)
    if source is None and profile.kind in ("hls", "sprite"):
        raise ConfigError(f"verifying {profile.kind} output needs --source, the file it was made from, to know "
                          f"what should be there")
    basis = probe(source or path, compute_hash=False)
    measured = None
    limits = FarmConfig().limits(basis.duration)
    if source and profile.loudness and basis.audio:
        integrated, _ = measure_programme(measure_argv(basis, programme_streams(basis)), limits)
        measured = {"silent": silent(integrated)}
    checks = verify_output(profile.to_dict(), os.path.abspath(path), expectations(basis, profile, catalog), limits,
                           measured)
    ok = all(c["passed"] for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": checks}, indent=2, ensure_ascii=False))
    else:
        for c in checks:
            click.echo(f"{'pass' if c['passed'] else 'FAIL'}  {c['name']:<32} {c['value']}  (expected {c['limit']})")
    sys.exit(0 if ok else 1)


# --------------------------------------------------------------------------------------------------------- profiles


@cli.group("profiles")
def profiles_group() -> None:
    """List, show and validate rendition profiles."""


@profiles_group.command("list")
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir"))
def profiles_list(profiles_dir: str | None) -> None:
    """Every profile and which channels use it."""
    catalog = _load_catalog(profiles_dir)
    users: dict[str, list[str]] = {}
    for channel, names in catalog.channels.items():
        for n in names:
            users.setdefault(n, []).append(channel)
    for name, p in sorted(catalog.profiles.items()):
        used = ",".join(users.get(name, [])) or "-"
        click.echo(f"{name:<18} {p.kind:<6} {used:<10} {p.description}")


@profiles_group.command("show")
@click.argument("name")
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir"))
@click.option("--json", "as_json", is_flag=True)
def profiles_show(name: str, profiles_dir: str | None, as_json: bool) -> None:
    """Every value of one profile, defaults included."""
    catalog = _load_catalog(profiles_dir)
    profile = catalog.profile(name)
    data = profile.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"{name}  ({catalog.origins[name]})\n  {profile.description}")
    for section, values in data.items():
        if isinstance(values, dict):
            click.echo(f"  [{section}]")
            for key, value in values.items():
                click.echo(f"    {key} = {json.dumps(value, ensure_ascii=False)}")


@profiles_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def profiles_validate(files: tuple[str, ...]) -> None:
    """Check profile files; prints one line per file, exits 1 if any is invalid."""
    from .pipeline.profiles import load_profile_file

    bad = 0
    for f in files:
        try:
            load_profile_file(Path(f))
            click.echo(f"ok       {f}")
        except ProfileError as exc:
            bad += 1
            click.echo(f"invalid  {exc}", err=True)
    sys.exit(1 if bad else 0)


# --------------------------------------------------------------------------------------------------------- doctor


@cli.command("doctor")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="a farm config TOML file")
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir"))
def doctor_command(config: str | None, profiles_dir: str | None) -> None:
    """Which ffmpeg onetake runs and where it came from, what it and PyAV's FFmpeg have, and whether every channel
    can be made with them (exit 1 if not)."""
    import av

    from .workers import capabilities
    from .workers.ffmpeg import FFMPEG_ENV, ffmpeg_binary

    settings = _settings(config, profiles_dir=profiles_dir)
    binary = ffmpeg_binary()
    origin = f"from {FFMPEG_ENV}" if os.environ.get(FFMPEG_ENV) else "shipped with onetake, by imageio-ffmpeg"
    build = capabilities.inspect(binary)
    click.echo(f"ffmpeg      {binary} ({origin})")
    click.echo(f"            {build.version_line}")
    libraries = ", ".join(f"{name} {'.'.join(map(str, v))}" for name, v in av.library_versions.items())
    click.echo(f"PyAV        {av.__version__} with FFmpeg {getattr(av, 'ffmpeg_version_info', '?')} ({libraries})")
    ok = build.version is None or build.version >= capabilities.MIN_VERSION
    if not ok:
        click.echo(f"            too old: onetake needs ffmpeg {'.'.join(map(str, capabilities.MIN_VERSION))} or newer")
    catalog = _catalog(settings)
    options = _plan_options(settings, build.version_line)
    everything = capabilities.Needs()
    rows = []
    for channel in catalog.channels:
        needs = capabilities.Needs()
        for argv in capabilities.planned_argvs(_representative_plans([(channel,)], catalog, options)):
            needs.add(capabilities.needs_of(argv))
        everything.add(needs)
        missing = capabilities.lacks(build, needs)
        ok &= not missing
        uses = ", ".join(sorted(needs.encoders))
        rows.append(f"  {channel:<7} {'ok' if not missing else 'CANNOT: lacks ' + ', '.join(missing)}  ({uses})")
    for argv in capabilities.worker_argvs():
        everything.add(capabilities.needs_of(argv))
    click.echo("encoders    " + ", ".join(f"{e} {'yes' if e in build.encoders else 'MISSING'}"
                                          for e in sorted(everything.encoders)))
    click.echo("filters     " + ", ".join(f if f in build.filters else f"{f} MISSING"
                                          for f in sorted(everything.filters)))
    click.echo("channels (for an interlaced, an HDR and an audio-only source):")
    click.echo("\n".join(rows))
    if not ok:
        click.echo(f"onetake cannot run every channel with this ffmpeg: {capabilities.fix_hint()}", err=True)
    sys.exit(0 if ok else 1)


# --------------------------------------------------------------------------------------------------------- demo


@cli.command("demo")
@click.option("--out", default=FarmConfig.out, show_default=True, type=click.Path(file_okay=False))
@click.option("--seconds", default=6.0, show_default=True, type=click.FloatRange(1, 120),
              help="length of the generated clip")
def demo_command(out: str, seconds: float) -> None:
    """Generate a 1080p25 clip with tone and deliver every channel from it to OUT."""
    from .workers.demo import make_demo_clip

    clip = make_demo_clip(Path(out) / "demo-source", seconds)
    click.echo(f"generated {clip} ({seconds:g} s, 1920x1080 25p, 1 kHz tone)", err=True)
    settings = FarmConfig(out=out)
    outcomes = execute([str(clip)], settings, sys.stdout.isatty())
    code = _report(outcomes, as_json=False)
    if code == 0:
        click.echo(f"every channel's files are under {os.path.abspath(out)}/<channel>/<asset_id>/, "
                   f"each with a manifest.json")
    sys.exit(code)


def main() -> None:
    cli(prog_name="onetake")


if __name__ == "__main__":
    main()


