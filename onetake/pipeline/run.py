"""A batch run, as `onetake run` and `onetake demo` make one: sources probed and planned, the farm's ffmpeg
checked against the plans, every plan run on the farm, one outcome per source in the order given, and each
source recorded as a `run` job where a ledger is configured.

The farm is handed in (``workers.cluster.DaskFarm``): this module never imports the workers, so a batch can be
run on a fake farm.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .artwork import COVER_KINDS, LOGO_KINDS, read_artwork
from .config import FarmConfig
from .destinations import absolute_location, is_s3, parse_location
from .errors import ConfigError, PlanError
from .ledger import Ledger, process_owner
from .models import AudioStreamInfo, CaptionsInfo, JobPlan, SourceInfo, Task, VideoStreamInfo
from .plan import PlanOptions, plan_job
from .plan.urgent import FIRST_VERSION_MARK, full_version_options, plan_first_version
from .probe import probe
from .profiles import Catalog
from .schedule import (
    ChannelOutcome,
    Event,
    Executor,
    SourceOutcome,
    describe_error,
    encode_slots,
    fetch_sources,
    run_plans,
)


class Farm(Protocol):
    """Where plans run: the identity of its encoder (part of every output key), a check that its ffmpeg can run
    the plans, and an executor on its cluster."""

    encoder_version: str

    def check(self, plans: Sequence[JobPlan]) -> None:
        """Raise ConfigError (one line) when the farm's ffmpeg cannot run ``plans``."""

    def open(self, on_progress: Callable[[str, float], None] | None = None) -> AbstractContextManager[Executor]:
        """The cluster, for the length of the batch."""


class View(Protocol):
    """What shows a batch's progress (the CLI's rows with bars), made once every source is planned."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...

    def on_progress(self, task_id: str, fraction: float) -> None: ...

    def on_event(self, plan: JobPlan, task: Task, state: str, detail: Any) -> None: ...


def plan_options(settings: FarmConfig, encoder_version: str) -> PlanOptions:
    """The planning options of a farm config: locations made absolute, the encoder named."""
    destinations = tuple(f"{c}={absolute_location(d)}" for c, d in settings.channel_destinations().items())
    farm = settings.merged(destinations=destinations)
    logo = read_artwork(settings.logo, LOGO_KINDS, "the station logo (--logo, [farm] logo)",
                                ConfigError) if settings.logo else None
    cover = read_artwork(settings.cover, COVER_KINDS, "the station cover ([farm] cover)",
                         ConfigError) if settings.cover else None
    return PlanOptions(out_dir=absolute_location(settings.out), work_dir=os.path.abspath(settings.work_path()),
                       encoder_version=encoder_version, x264_threads=settings.x264_threads, farm=farm, logo=logo,
                       cover=cover)


def check_channels(settings: FarmConfig, catalog: Catalog) -> None:
    """Every channel asked for or given a destination exists; --out is a folder or an S3 URL."""
    parse_location(settings.out, "--out")
    for name in [*settings.channels, *settings.channel_destinations()]:
        if name not in catalog.channels:
            raise ConfigError(f"unknown channel '{name}'; known channels are {', '.join(catalog.channels)}")


def make_plans(sources: Sequence[str | SourceInfo], settings: FarmConfig, catalog: Catalog,
               encoder_version: str, urgent: bool = False) -> tuple[list[JobPlan], list[SourceOutcome]]:
    """A plan per source, and a failed outcome per source that cannot be read or planned (the batch goes on).
    ``urgent``: the plans are of full-quality deliveries that replace a first version (``first_versions``)."""
    plans, failures = [], []
    options = plan_options(settings, encoder_version)
    if urgent:
        options = full_version_options(options)
    for source in sources:
        try:
            info = source if isinstance(source, SourceInfo) else probe(source)
            plans.append(plan_job(info, settings.channels or None, catalog, options))
        except Exception as exc:  # one bad source is one line; the batch goes on
            name = source.url or source.path if isinstance(source, SourceInfo) else absolute_location(source)
            failures.append(SourceOutcome(name, error=exc))
    return plans, failures


def first_versions(plans: Sequence[JobPlan], settings: FarmConfig, catalog: Catalog, encoder_version: str,
                   slots: int) -> tuple[list[JobPlan], list[SourceOutcome]]:
    """The first version of each urgent full-quality plan that gets one, spread over ``slots`` encode slots; and
    a failed outcome for each source whose first version cannot be planned (its full plan is not run either)."""
    options = full_version_options(plan_options(settings, encoder_version))
    firsts, failures = [], []
    for plan in plans:
        try:
            first = plan_first_version(plan.source, plan, catalog, options, slots)
        except Exception as exc:  # one bad source is one line; the batch goes on
            failures.append(SourceOutcome(plan.source.url or plan.source.path, plan.asset_id, error=exc))
            continue
        if first is not None:
            firsts.append(first)
    return firsts, failures


def run_batch(sources: Sequence[str], settings: FarmConfig, catalog: Catalog, farm: Farm,
              view_for: Callable[[list[JobPlan]], View | None] = lambda plans: None,
              urgent: bool = False) -> list[SourceOutcome]:
    """Run every source; one outcome each, in the order given (a source given twice is run once). ``urgent``:
    every source's first version is published first (``run_urgent``)."""
    check_channels(settings, catalog)
    remote = [s for s in sources if is_s3(s)]
    plans, failures = make_plans([s for s in sources if not is_s3(s)], settings, catalog, farm.encoder_version,
                                 urgent)
    farm.check(plans)
    outcomes: list[SourceOutcome] = []
    if plans or remote:
        view: View | None = None  # made once every source is planned; progress reaches it then

        def on_progress(task_id: str, fraction: float) -> None:
            if view is not None:
                view.on_progress(task_id, fraction)

        with farm.open(on_progress) as executor:
            if remote:  # probed where they are read: on a worker
                infos, fetch_failures = fetch_sources(remote, os.path.abspath(settings.work_path()),
                                                      settings.transfer(), executor)
                more, plan_failures = make_plans(infos, settings, catalog, farm.encoder_version, urgent)
                farm.check(more)
                plans += more
                failures += fetch_failures + plan_failures
            unique = list({p.asset_id: p for p in reversed(plans)}.values())[::-1]  # the same file given twice
            firsts: list[JobPlan] = []
            if urgent:  # planned on the open cluster: a first version is cut into a chunk per encode slot it has
                firsts, first_failures = first_versions(unique, settings, catalog, farm.encoder_version,
                                                        encode_slots(executor))
                failed = {o.asset_id for o in first_failures}
                plans = [p for p in plans if p.asset_id not in failed]
                unique = [p for p in unique if p.asset_id not in failed]
                failures += first_failures
                farm.check(firsts)
            view = view_for([*firsts, *unique]) if unique else None
            if view is not None:
                with view:
                    outcomes = run_urgent(firsts, unique, executor, on_event=view.on_event)
            elif unique:
                outcomes = run_urgent(firsts, unique, executor)
    by_asset = {o.asset_id: o for o in outcomes}
    by_source = {o.source: o for o in failures}
    for plan in plans:
        done = by_asset[plan.asset_id]
        name = plan.source.url or plan.source.path
        by_source[name] = SourceOutcome(name, plan.asset_id, done.channels, done.error)
    return [by_source[absolute_location(s)] for s in dict.fromkeys(sources)]


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a batch as Ctrl-C does (KeyboardInterrupt): its tasks are released on the farm, which kills
    their ffmpegs, and its jobs are recorded as interrupted, instead of the process ending where it stands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@terminate_as_interrupt()
def run_recorded(sources: Sequence[str], settings: FarmConfig, catalog: Catalog, farm: Farm,
                 view_for: Callable[[list[JobPlan]], View | None] = lambda plans: None,
                 urgent: bool = False) -> list[SourceOutcome]:
    """``run_batch``, each source recorded as a `run` job in the ledger when one is configured: running while it
    runs, then delivered or failed with its cause."""
    if not settings.ledger:
        return run_batch(sources, settings, catalog, farm, view_for, urgent)
    with Ledger(settings.ledger) as ledger:
        owner = process_owner()
        jobs = [ledger.add(kind="run", source=p, path=p, lane="urgent" if urgent else "normal",
                           out=absolute_location(settings.out), channels=settings.channels, state="running",
                           owner=owner)
                for p in (absolute_location(s) for s in dict.fromkeys(sources))]
        try:
            outcomes = run_batch(sources, settings, catalog, farm, view_for, urgent)
        except KeyboardInterrupt:
            for job_id in jobs:
                ledger.failed(job_id, "interrupted (Ctrl-C or SIGTERM) before it was delivered; run it again")
            raise
        for job_id, outcome in zip(jobs, outcomes, strict=True):
            if outcome.ok:
                ledger.delivered(job_id, outcome.asset_id, outcome.manifests)
            else:
                ledger.failed(job_id, outcome.failure_line(), outcome.asset_id, outcome.manifests)
    return outcomes


def run_urgent(firsts: Sequence[JobPlan], plans: Sequence[JobPlan], executor: Executor,
               on_event: Event | None = None) -> list[SourceOutcome]:
    """Breaking news first: the first versions (``firsts``) delivered, then ``plans``, the full-quality deliveries
    that replace them; one outcome per plan. A channel whose full-quality delivery fails keeps its first version:
    its outcome names that manifest, and its error says so."""
    published = {o.asset_id.removesuffix(FIRST_VERSION_MARK): o
                 for o in (run_plans(firsts, executor, on_event) if firsts else [])}
    return [first_version_kept(o, published.get(o.asset_id)) for o in run_plans(plans, executor, on_event)]


def first_version_kept(full: SourceOutcome, first: SourceOutcome | None) -> SourceOutcome:
    """``full``, each channel it failed to deliver naming its first version where that was published."""
    manifests = {c.channel: c.manifest for c in first.channels if c.manifest} if first is not None else {}
    channels = []
    for c in full.channels:
        if c.error is not None and c.channel in manifests:
            kept = copy.copy(c.error)  # its type kept: callers decide by it
            kept.args = (f"the full-quality delivery failed ({describe_error(c.error)}); its first version stays "
                         f"published ({manifests[c.channel]})",)
            c = ChannelOutcome(c.channel, manifests[c.channel], kept, c.qc_failed)
        channels.append(c)
    return SourceOutcome(full.source, full.asset_id, channels, full.error)


def representative_sources() -> list[SourceInfo]:
    """Sources standing for what a farm meets, to check an ffmpeg against before any file arrives: 1080i25
    with stereo, 2160p HDR (PQ) from a phone with mono audio, and an audio-only programme."""
    def video(**changes: Any) -> VideoStreamInfo:
        base = VideoStreamInfo(index=0, codec="h264", width=1920, height=1080, sar="1:1", rotation=0,
                               frame_rate="25/1", variable_frame_rate=False, scan="tff", scan_basis="flag",
                               pix_fmt="yuv420p", color_primaries="bt709", color_transfer="bt709",
                               color_matrix="bt709", color_range="tv", start_time=0.0, duration=60.0, frames=1500)
        return dataclasses.replace(base, **changes)

    def audio(channels: int) -> AudioStreamInfo:
        return AudioStreamInfo(index=1, codec="aac", channels=channels, layout="stereo" if channels == 2 else "mono",
                               sample_rate=48000, start_time=0.0, duration=60.0, language="", default=True)

    def source(name: str, videos: tuple[VideoStreamInfo, ...], audios: tuple[AudioStreamInfo, ...]) -> SourceInfo:
        captions = CaptionsInfo(path=f"/representative/{name}.srt", stream=-1, format="srt", language="",
                                sha256="0" * 64, cues=1)  # burned in and carried as WebVTT, as captions are
        return SourceInfo(path=f"/representative/{name}", size=1, sha256="0" * 64, modified="2000-01-01",
                          format="mov", format_long="QuickTime / MOV", duration=60.0, start_time=0.0, timecode="",
                          video=videos, audio=audios, captions=captions)

    hdr = video(codec="hevc", width=3840, height=2160, frame_rate="30/1", scan="progressive",
                pix_fmt="yuv420p10le", color_primaries="bt2020", color_transfer="smpte2084",
                color_matrix="bt2020nc", variable_frame_rate=True)
    return [source("interlaced.mov", (video(),), (audio(2),)), source("hdr.mov", (hdr,), (audio(1),)),
            source("programme.wav", (), (dataclasses.replace(audio(2), index=0),))]


def representative_plans(channel_sets: Sequence[Sequence[str]], catalog: Catalog,
                         options: PlanOptions) -> list[JobPlan]:
    """Plans of the representative sources for each channel set they can feed."""
    plans = []
    for channels in dict.fromkeys(tuple(c) for c in channel_sets):
        for source in representative_sources():
            try:
                plans.append(plan_job(source, channels or None, catalog, options))
            except PlanError:  # e.g. video channels for the audio-only programme
                continue
    return plans
