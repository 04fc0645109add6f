"""The `onetake` command: options parsed, the pipeline called, progress and results shown (``console``)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .console import (
    describe_analysis,
    describe_checks,
    describe_job,
    describe_jobs,
    describe_profile,
    describe_profiles,
    describe_source,
    describe_task,
    report_outcomes,
)
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
from .pipeline.destinations import absolute_location, is_s3
from .pipeline.errors import ConfigError, OnetakeError, ProfileError
from .pipeline.probe import probe
from .pipeline.schedule import describe_error

if TYPE_CHECKING:
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


def _catalog(profiles_dir: str | None) -> Catalog:
    from .pipeline.profiles import load_catalog

    return load_catalog(Path(profiles_dir) if profiles_dir else None)


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
    click.option("--logo", type=click.Path(dir_okay=False), help=field_help("logo")),
    click.option("--captions/--no-captions", "captions", default=None, help=field_help("captions")),
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


@cli.command("probe")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="print SourceInfo as JSON")
def probe_command(source: str, as_json: bool) -> None:
    """Describe SOURCE (a file or s3://bucket/key): streams, rates, scan, aspect, rotation, colour, audio layout,
    offsets, timecode."""
    from .workers.sources import local_copy

    with local_copy(source) as local:
        info = probe(local)
    if is_s3(source):
        info = dataclasses.replace(info, url=source)
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(describe_source(info)))


# --------------------------------------------------------------------------------------------------------- analyze


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
    from .workers.report import write_report
    from .workers.sources import local_copy

    show = sys.stderr.isatty()

    def report(fraction: float) -> None:
        click.echo(f"\ranalysing {fraction:4.0%}", nl=False, err=True)

    with local_copy(source) as local:
        result = analyze(local, report=report if show else None)
        if show:
            click.echo("\r" + " " * 20 + "\r", nl=False, err=True)
        if report_path:
            write_report(result, local, report_path)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo("\n".join(describe_analysis(absolute_location(source), result)))


# --------------------------------------------------------------------------------------------------------- plan


@cli.command("plan")
@click.argument("source")
@with_common
@click.option("--urgent", is_flag=True, help="plan it as `run --urgent` does: the first version, then the full one")
@click.option("--slots", type=click.IntRange(1, 100000), default=None,
              help="with --urgent: the encode slots the first version is spread over (default: the embedded "
                   "cluster's workers; for a farm, the slots `onetake cluster check` counts)")
@click.option("--json", "as_json", is_flag=True, help="print the JobPlan as JSON")
def plan_command(source: str, channels: str | None, out: str | None, dests: tuple[str, ...], config: str | None,
                 profiles_dir: str | None, qc: str | None, accept_damaged: bool | None, logo: str | None,
                 captions: bool | None, urgent: bool, slots: int | None, as_json: bool) -> None:
    """Print exactly what `onetake run SOURCE` would do, without doing it."""
    settings = _settings(config, out=out, profiles_dir=profiles_dir, channels=_channels(channels),
                         destinations=_dests(dests), qc=qc, accept_damaged=accept_damaged, logo=logo,
                         captions=captions)
    if slots is not None and not urgent:
        raise ConfigError("--slots is for --urgent (how many encode slots a first version is spread over); add "
                          "--urgent or leave --slots out")
    from .pipeline.plan import plan_job
    from .pipeline.plan.urgent import full_version_options, plan_first_version
    from .pipeline.run import check_channels, plan_options
    from .workers.capabilities import check_plans
    from .workers.ffmpeg import ffmpeg_version
    from .workers.sources import probe_anywhere

    catalog = _catalog(settings.profiles_dir)
    check_channels(settings, catalog)
    info = probe_anywhere(source, settings.work_path(), settings.transfer())
    options = plan_options(settings, ffmpeg_version())
    if urgent:
        options = full_version_options(options)
    plan = plan_job(info, settings.channels or None, catalog, options)
    first = plan_first_version(info, plan, catalog, options, slots or settings.embedded_workers()) \
        if urgent else None
    plans = [p for p in (first, plan) if p is not None]
    check_plans(plans)
    if as_json:
        shown = {"first_version": first.to_dict() if first else None, "plan": plan.to_dict()} if urgent \
            else plan.to_dict()
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    if urgent and first is None:
        click.echo(f"no first version: none of its channels is one of first_version_channels "
                   f"({', '.join(settings.first_version_channels)})")
    for shown in plans:
        click.echo(f"asset {shown.asset_id}: {len(shown.tasks)} tasks for channels {', '.join(shown.channels)}")
        for note in shown.notes:
            click.echo(f"  note: {note}")
        for task in shown.tasks:
            click.echo("\n".join(describe_task(task)))


# --------------------------------------------------------------------------------------------------------- run


def _run(sources: Sequence[str], settings: FarmConfig, show_progress: bool, as_json: bool,
         urgent: bool = False) -> int:
    """Every source run on a Dask farm (its ledger kept, if configured); the exit status."""
    from .console import ProgressView
    from .pipeline.run import run_recorded
    from .workers.cluster import DaskFarm

    outcomes = run_recorded(sources, settings, _catalog(settings.profiles_dir), DaskFarm(settings),
                            view_for=ProgressView if show_progress else lambda plans: None, urgent=urgent)
    return report_outcomes(outcomes, as_json)


@cli.command("run")
@click.argument("sources", nargs=-1, required=True)
@with_common
@click.option("--scheduler", help=field_help("scheduler"))
@click.option("--workers", type=click.IntRange(0, 512), help=field_help("workers"))
@click.option("--urgent", is_flag=True, help="breaking news: publish a first version of web and short (one 720p "
              "rung and the MP4, the short; a fast preset) at once, then replace it with the full-quality delivery "
              "(see [farm] first_version_*)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary, no progress")
def run_command(sources: tuple[str, ...], channels: str | None, out: str | None, dests: tuple[str, ...],
                config: str | None, profiles_dir: str | None, qc: str | None, accept_damaged: bool | None,
                logo: str | None, captions: bool | None, scheduler: str | None, workers: int | None,
                urgent: bool, as_json: bool) -> None:
    """Make, verify and deliver every channel's renditions of each SOURCE (a local file or s3://bucket/key)."""
    settings = _settings(config, out=out, profiles_dir=profiles_dir, channels=_channels(channels),
                         scheduler=scheduler, workers=workers, destinations=_dests(dests), qc=qc,
                         accept_damaged=accept_damaged, logo=logo, captions=captions)
    sys.exit(_run(sources, settings, sys.stdout.isatty() and not as_json, as_json, urgent))


# --------------------------------------------------------------------------------------------------------- watch


def _watch_option(name: str, kind: Any) -> Any:
    """A click type for a [watch] value, with the bounds the config itself checks."""
    from dataclasses import fields

    meta = next(f.metadata for f in fields(WatchConfig) if f.name == name)
    return kind(meta["min"], meta["max"]) if kind is click.FloatRange else click.Choice(meta["choices"])


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
                  logo: str | None, captions: bool | None, lane: str | None, settle_s: float | None,
                  poll_s: float | None, require: str | None, ledger: str | None, scheduler: str | None,
                  workers: int | None) -> None:
    """Take every file dropped into each INBOX once it has finished arriving, and deliver it.

    Runs until SIGTERM or Ctrl-C: the first lets running jobs finish (up to [watch] drain_timeout_s), the
    second stops at once. Jobs are recorded in the ledger (`onetake jobs list`)."""
    from dataclasses import replace

    from .pipeline.watch import serve
    from .workers.cluster import DaskFarm

    farm, watch, tables = load_watch_config(config) if config else (FarmConfig(), WatchConfig(), [])
    farm = _choose_ffmpeg(farm.merged(out=out, profiles_dir=profiles_dir, channels=_channels(channels),
                                      ledger=ledger, destinations=_dests(dests), qc=qc, accept_damaged=accept_damaged,
                                      logo=logo, captions=captions, scheduler=scheduler, workers=workers))
    watch = replace(watch, **{k: v for k, v in {"lane": lane, "settle_s": settle_s, "poll_s": poll_s,
                                                "require": require}.items() if v is not None})

    def log(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)

    inboxes_given = [*tables, *(InboxConfig(path=i) for i in inboxes)]
    sys.exit(serve(inboxes_given, watch, farm, _catalog(farm.profiles_dir), DaskFarm(farm), log))


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
    elif jobs:
        click.echo("\n".join(describe_jobs(jobs)))


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
    else:
        click.echo("\n".join(describe_job(job)))


@jobs_group.command("retry")
@click.argument("job_id", type=int)
@with_ledger
def jobs_retry(job_id: int, ledger: str | None, config: str | None, out: str | None) -> None:
    """Queue a failed or cancelled job again; a watcher on its inbox takes it."""
    from .pipeline.inbox import retry_job

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
    """Check an output file (or HLS, sprite or photo folder) against a profile."""
    from .workers.verify import verify_file

    catalog = _catalog(profiles_dir)
    profile = catalog.profile(profile_name)
    if source is None and profile.kind in ("hls", "sprite", "photo"):
        raise ConfigError(f"verifying {profile.kind} output needs --source, the file it was made from, to know "
                          f"what should be there")
    # a photo's original is checked byte for byte against its source: that one is hashed
    info = probe(source or path, compute_hash=profile.kind == "photo")
    checks = verify_file(path, profile, info, catalog, bool(source))
    ok = all(c["passed"] for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": checks}, indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(describe_checks(checks)))
    sys.exit(0 if ok else 1)


# --------------------------------------------------------------------------------------------------------- profiles


@cli.group("profiles")
def profiles_group() -> None:
    """List, show and validate rendition profiles."""


@profiles_group.command("list")
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir"))
def profiles_list(profiles_dir: str | None) -> None:
    """Every profile and which channels use it."""
    click.echo("\n".join(describe_profiles(_catalog(profiles_dir))))


@profiles_group.command("show")
@click.argument("name")
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir"))
@click.option("--json", "as_json", is_flag=True)
def profiles_show(name: str, profiles_dir: str | None, as_json: bool) -> None:
    """Every value of one profile, defaults included."""
    catalog = _catalog(profiles_dir)
    if as_json:
        click.echo(json.dumps(catalog.profile(name).to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(describe_profile(name, catalog)))


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

    from .pipeline.run import plan_options
    from .workers import capabilities
    from .workers.ffmpeg import FFMPEG_ENV, ffmpeg_binary

    settings = _settings(config, profiles_dir=profiles_dir)
    binary = ffmpeg_binary()
    origin = f"from {FFMPEG_ENV}" if os.environ.get(FFMPEG_ENV) else "shipped with onetake, by imageio-ffmpeg"
    build = capabilities.inspect(binary)
    libraries = ", ".join(f"{name} {'.'.join(map(str, v))}" for name, v in av.library_versions.items())
    click.echo(f"ffmpeg      {binary} ({origin})\n            {build.version_line}\n"
               f"PyAV        {av.__version__} with FFmpeg {getattr(av, 'ffmpeg_version_info', '?')} ({libraries})")
    catalog = _catalog(settings.profiles_dir)
    lines, ok = capabilities.doctor(build, catalog, plan_options(settings, build.version_line))
    photo_ok, photo_line = capabilities.photo_support(catalog)
    lines.insert(0, photo_line)
    ok = ok and photo_ok
    click.echo("\n".join(lines))
    if not ok:
        click.echo(f"onetake cannot run every channel with this ffmpeg: {capabilities.fix_hint()}", err=True)
    sys.exit(0 if ok else 1)


# --------------------------------------------------------------------------------------------------------- cluster


@cli.group("cluster")
def cluster_group() -> None:
    """The Dask cluster a farm runs on."""


@cluster_group.command("check")
@click.option("--scheduler", help=field_help("scheduler"))
@click.option("--config", "config", type=click.Path(dir_okay=False), help="a farm config TOML file")
@click.option("--profiles", "profiles_dir", type=click.Path(file_okay=False), help=field_help("profiles_dir"))
def cluster_check(scheduler: str | None, config: str | None, profiles_dir: str | None) -> None:
    """Each worker's host, ffmpeg and encoders, free scratch space, encode slots and memory; exit 1 if any worker
    cannot run onetake's work as this client would (a different ffmpeg, no encode slots, no writable work dir)."""
    from .workers import capabilities
    from .workers.cluster import cluster_problems, inspect_cluster
    from .workers.ffmpeg import ffmpeg_binary

    settings = _settings(config, scheduler=scheduler, profiles_dir=profiles_dir)
    if not settings.scheduler:
        raise ConfigError("give the scheduler to check with --scheduler HOST:8786 (or [farm] scheduler)")
    catalog = _catalog(settings.profiles_dir)
    used = sorted({c for p in catalog.profiles.values() for spec in (p.video, p.audio) if spec is not None
                   for c in [spec.codec]})
    build = capabilities.inspect(ffmpeg_binary())
    client_encoders = [e for e in used if e in build.encoders]
    workers, failed = inspect_cluster(settings, used)
    click.echo(f"client    {build.version_line} ({build.path})")
    for w in workers:
        click.echo(f"{w.address}  {w.host}\n  ffmpeg    {w.ffmpeg} ({w.ffmpeg_path})\n"
                   f"  encoders  {', '.join(w.encoders) or 'none'}\n  slots     {w.encode_slots:g} encode\n"
                   f"  scratch   {w.scratch}: {w.scratch_free_gb:g} GB free"
                   f"{'' if w.scratch_writable else ', NOT WRITABLE'}\n"
                   f"  memory    {w.memory_free_gb:g} of {w.memory_gb:g} GB free, {w.cpus} CPUs")
    problems = cluster_problems(workers, failed, build.version_line, client_encoders, settings.scheduler)
    for line in problems:
        click.echo(f"onetake: {line}", err=True)
    if not problems:
        click.echo(f"{len(workers)} worker(s), {sum(w.encode_slots for w in workers):g} encode slot(s): ready")
    sys.exit(1 if problems else 0)


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
    settings = FarmConfig(out=out)  # recorded in OUT's default ledger, so that `onetake serve --out OUT` shows it
    code = _run([str(clip)], settings.merged(ledger=settings.ledger_path()), sys.stdout.isatty(), as_json=False)
    if code == 0:
        click.echo(f"every channel's files are under {os.path.abspath(out)}/<channel>/<asset_id>/, "
                   f"each with a manifest.json")
    sys.exit(code)


# --------------------------------------------------------------------------------------------------------- desk


def _dask_farm(settings: FarmConfig) -> Any:
    from .workers.cluster import DaskFarm

    return DaskFarm(_choose_ffmpeg(settings))


from .desk.commands import add_desk_commands  # noqa: E402  (the desk's commands: serve, users)

add_desk_commands(cli, _dask_farm, _catalog)


def main() -> None:
    cli(prog_name="onetake")


if __name__ == "__main__":
    main()
