"""Breaking news first: the plan of an urgent job's first version, published before its full-quality delivery.

An urgent job is delivered twice, to the same places. First a *first version* of each of the job's channels that
``first_version_channels`` names (web and short as shipped), made of their moving pictures only: an HLS ladder cut
down to one rung (the highest of at most ``first_version_height``) with its progressive MP4, every other video
rendition as it is, all encoded with x264's ``first_version_preset``; the 9:16 short cropped in the centre
(``first_version_framing``: following the subject would wait for the analysis, a second decode of the source, and
encode apart from the ladder, a third); its pictures cut into as many chunks as the cluster has encode slots (each
about ``first_version_chunk_s`` at least), joined and gated as a long programme's are; the loudness settled in
``first_version_trials`` trial encodes (none as shipped: the gain computed from the programme's loudness); no
poster, cover, sprite or report, nor the analysis behind them. Its manifests say ``"version": 1``.
Then the job's full plan (every channel, the whole ladder, the profiles' own presets, ``"version": 2``) replaces
it. The storage backends keep each version in a folder of its own and remove the older one only once the newer
manifest is in place (README, "Breaking news first").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..config import FarmConfig
from ..models import JobPlan, SourceInfo, Task
from ..profiles import Catalog, Profile
from .chunks import SOUND_SUFFIX
from .job import PlanOptions, plan_job
from .package import ladder_rungs
from .params import TaskKind
from .programme import programme_duration

FIRST_VERSION = 1
FULL_VERSION = 2
MOVING_PICTURES = ("hls", "av")  # what a first version keeps of a channel: no stills, sprites or photos
# the first version's plan and task ids: apart from the full plan's, so that both can be on one cluster
FIRST_VERSION_MARK = "@first"


def full_version_options(options: PlanOptions) -> PlanOptions:
    """The planning options of an urgent job's full-quality delivery."""
    return dataclasses.replace(options, version=FULL_VERSION)


def first_version_channels(channels: Sequence[str], farm: FarmConfig) -> tuple[str, ...]:
    """The channels of a job that get a first version."""
    return tuple(c for c in channels if c in farm.first_version_channels)


def plan_first_version(source: SourceInfo, full: JobPlan, catalog: Catalog, options: PlanOptions,
                       slots: int = 1) -> JobPlan | None:
    """The first version of the job whose full plan is ``full``, spread over ``slots`` encode slots; None when none
    of its channels gets one (or the source is a photo, whose renditions are quick anyway)."""
    if source.image is not None:
        return None
    fast = first_version_catalog(source, catalog, first_version_channels(full.channels, options.farm), options.farm)
    if not fast.channels:
        return None
    spread = first_version_chunks(programme_duration(source), slots, options.farm)
    plan = plan_job(source, tuple(fast.channels), fast, dataclasses.replace(options, version=FIRST_VERSION,
                                                                            spread=spread))
    plan = _quick_loudness(_without_analysis(plan), options.farm.first_version_trials)
    chunks = sum(t.kind == TaskKind.CHUNK for t in plan.tasks)
    return _apart(_sound_alongside(plan), _note(fast, options.farm, chunks))


def first_version_chunks(duration: float, slots: int, farm: FarmConfig) -> int:
    """How many chunks a first version of ``duration`` seconds is cut into on a cluster of ``slots`` encode slots:
    one per slot, each about ``first_version_chunk_s`` long at least (cuts fall on the renditions' GOP grid).
    Every slot counts, not only those free now: an urgent job's tasks go before any other waiting task, so a busy
    slot takes a chunk queued on it as soon as its task ends."""
    return max(1, min(slots, int(duration // farm.first_version_chunk_s)))


def first_version_catalog(source: SourceInfo, catalog: Catalog, channels: Sequence[str],
                          farm: FarmConfig) -> Catalog:
    """``catalog`` with only ``channels``, each holding its moving pictures, made fast: a ladder's one rung, the
    fast preset, a centred crop, one sound for all."""
    fast: dict[str, Profile] = {}
    kept: dict[str, tuple[str, ...]] = {}
    for channel in channels:
        names = []
        for profile in catalog.channel(channel):
            if profile.kind not in MOVING_PICTURES:
                continue
            if profile.kind == "hls" and profile.hls is not None and source.video:
                rung = catalog.profile(_first_rung(source, profile, catalog, farm.first_version_height).name)
                fast[rung.name] = _fast(rung, farm)
                profile = dataclasses.replace(profile, hls=dataclasses.replace(profile.hls, rungs=(rung.name,)))
            fast[profile.name] = _fast(profile, farm)
            names.append(profile.name)
        if names:
            kept[channel] = tuple(names)
    return dataclasses.replace(catalog, profiles={**catalog.profiles, **_one_sound(fast)}, channels=kept)


def _one_sound(profiles: dict[str, Profile]) -> dict[str, Profile]:
    """``profiles`` with one sound where they all aim at one loudness: the leanest of their audio specs (AAC at
    128 kb/s as shipped), so that it is measured and limited once, not once per bitrate."""
    sounding = [p for p in profiles.values() if p.audio is not None and p.loudness is not None]
    if len({p.loudness for p in sounding}) != 1:
        return profiles
    audio = min((p.audio for p in sounding if p.audio is not None), key=lambda a: (a.bitrate_kbps, a.channels))
    return {name: dataclasses.replace(p, audio=audio) if p in sounding else p for name, p in profiles.items()}


def _first_rung(source: SourceInfo, ladder: Profile, catalog: Catalog, height: int) -> Profile:
    """The rung of ``ladder`` a first version carries: the highest of those the source fills that is at most
    ``height`` tall (the lowest of them when every one is taller)."""
    fitted = ladder_rungs(source, ladder, catalog)
    return next((r for r in fitted if r.video is not None and r.video.height <= height), fitted[-1])


def _fast(profile: Profile, farm: FarmConfig) -> Profile:
    spec = profile.video
    if spec is None or spec.codec != "libx264":
        return profile
    framing = farm.first_version_framing if spec.framing == "follow" else spec.framing
    return dataclasses.replace(profile, video=dataclasses.replace(
        spec, preset=farm.first_version_preset, profile=farm.first_version_profile, framing=framing))


def _without_analysis(plan: JobPlan) -> JobPlan:
    """``plan`` without the analysis and the report, where only the report and deliveries without QC rules need
    them: the first version does not wait for them (the full plan makes both, once per source)."""
    dropped = {t.id for t in plan.tasks if t.kind in (TaskKind.ANALYZE, TaskKind.ANALYZE_PART, TaskKind.REPORT)}

    def spared(task: Task) -> bool:
        return task.kind == TaskKind.REPORT or task.kind == TaskKind.DELIVER and not task.params["qc"]["rules"]

    if any(set(task.deps) & dropped and not spared(task) for task in plan.tasks if task.id not in dropped):
        return plan
    tasks = []
    for task in plan.tasks:
        if task.id in dropped:
            continue
        if task.kind == TaskKind.DELIVER:
            params = {**task.params, "files": [f for f in task.params["files"] if f["profile"] != "report"]}
            task = dataclasses.replace(task, params=params, deps=tuple(d for d in task.deps if d not in dropped))
        tasks.append(task)
    return dataclasses.replace(plan, tasks=tuple(tasks))


def _quick_loudness(plan: JobPlan, rounds: int) -> JobPlan:
    """``plan`` with its loudness settled in at most ``rounds`` trial encodes (0: untried), kept apart from the full
    measurement (which settles the same targets further, and is cached by them)."""
    def quick(task: Task) -> Task:
        if task.kind != TaskKind.MEASURE:
            return task
        cache = task.params["cache"].removesuffix(".json")
        return dataclasses.replace(task, params={**task.params, "rounds": rounds, "cache": f"{cache}-{rounds}.json"})

    return dataclasses.replace(plan, tasks=tuple(quick(t) for t in plan.tasks))


def _sound_alongside(plan: JobPlan) -> JobPlan:
    """``plan`` with a chunked first version's sound encode (one AAC of the programme: a core for a few seconds a
    minute) run beside the chunks, holding no encode slot: taking one, it would wait for a chunk to end, and the
    joins for it."""
    def alongside(task: Task) -> Task:
        sound_only = task.kind == TaskKind.ENCODE and all(
            o["profile"].endswith(SOUND_SUFFIX) for o in task.params["outputs"])
        return dataclasses.replace(task, heavy=False) if sound_only else task

    return dataclasses.replace(plan, tasks=tuple(alongside(t) for t in plan.tasks))


def _note(catalog: Catalog, farm: FarmConfig, chunks: int) -> str:
    made = "; ".join(f"{channel}: {', '.join(names)}" for channel, names in catalog.channels.items())
    crops = "centred" if farm.first_version_framing == "center" else "following the subject"
    spread = f", its pictures in {chunks} chunks side by side" if chunks else ""
    return (f"first version ({made}; x264 preset {farm.first_version_preset}, 9:16 crops {crops}{spread}): the "
            f"full-quality delivery replaces it")


def _apart(plan: JobPlan, note: str) -> JobPlan:
    """``plan`` under an id of its own (its tasks' too), every delivery noting that it is the first version."""
    asset = plan.asset_id
    mark = asset + FIRST_VERSION_MARK

    def renamed(identifier: str) -> str:
        return mark + identifier[len(asset):] if identifier.startswith(asset + "/") else identifier

    tasks = []
    for task in plan.tasks:
        params = {**task.params, "notes": [*task.params["notes"], note]} if task.kind == TaskKind.DELIVER \
            else task.params
        tasks.append(Task(renamed(task.id), task.kind, params, tuple(renamed(d) for d in task.deps), task.heavy))
    return dataclasses.replace(plan, asset_id=mark, tasks=tuple(tasks), notes=(*plan.notes, note))
