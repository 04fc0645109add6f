"""The job: which renditions each channel needs, and the tasks that make, check and deliver them, as data.

Nothing here touches the file system, runs a process or reads the clock: the same inputs give the same plan, and
tests compare plans with ``==``. A value known only after measuring (loudness) is a ``{placeholder}`` the worker
fills in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..artwork import Artwork
from ..captions import CAPTION_FONTS, CAPTIONS_VTT, LANGUAGE_NAMES, STREAM_CAPTIONS
from ..config import FarmConfig
from ..destinations import Location, channel_destinations
from ..errors import PlanError
from ..hashes import short_hash
from ..media import PROTOCOL_WHITELIST, file_stem
from ..models import JobPlan, SourceInfo, Task
from ..profiles import CaptionsSpec, Catalog, LogoSpec, Profile
from .audio import LoudnessTarget, loudness_target, measure_argv, trial_argv, written_into
from .chunks import (
    SOUND_SUFFIX,
    analysis_stretches,
    chunk_params,
    chunkable,
    has_sound,
    join_params,
    reference,
    rides_along,
    series,
    sound_rendition,
)
from .encode import AUDIOGRAM_RATE, Cut, Rendition, encode_argv, follow_params, start_timecode
from .geometry import audiogram, follows, gop_frames, output_rate
from .graph import GLOBAL_ARGS, SOURCE_ARGS
from .keys import analysis_key, asset_id_for, captions_key, loudness_key, package_key, rendition_key
from .package import hls_params, ladder_rungs, sprite_params
from .params import (
    AnalyzeParams,
    AnalyzePartParams,
    CaptionsBurn,
    CaptionsParams,
    DeliveredFile,
    DeliverParams,
    EncodeOutput,
    EncodeParams,
    HlsPackageParams,
    HlsSubtitles,
    KeptTrial,
    Limits,
    MeasureParams,
    QcParams,
    ReportParams,
    SourceRecord,
    TaskKind,
    VerifyParams,
    task_id,
)
from .photo import photo_channels, photo_expectations, plan_photo
from .programme import programme_duration, programme_start, programme_streams

VIDEO_KINDS = ("av", "image", "sprite", "hls")
DAMAGED_SHARE = 0.1  # a source with more of its checked pictures needing error concealment is refused
FOLLOW_COMMANDS = "follow.cmd"  # the crop window's path for ffmpeg's sendcmd, written by the worker
REPORT_NAME = "report.html"


@dataclass(frozen=True)
class PlanOptions:
    out_dir: str
    work_dir: str
    encoder_version: str = "ffmpeg"   # part of every output key: a new encoder makes new outputs
    x264_threads: int = FarmConfig.x264_threads
    farm: FarmConfig = FarmConfig()   # the time limits of every ffmpeg run
    logo: Artwork | None = None       # the station logo, for channels whose logo names no file of its own
    cover: Artwork | None = None      # the station's cover for audiograms of programmes that come without one
    title: str = ""                   # the programme's title (a watch sidecar's); "" for its file name
    chunk_s: float = 0.0              # the chunk length a long programme is cut into; 0: the farm's chunk_s
    version: int = 0                  # an urgent job's delivery: 1 its first version, 2 its full one; 0 neither
    spread: int = 0                   # cut the programme into this many even chunks (at most chunk_s each), however
    #                                   short it is: an urgent first version over the cluster's encode slots


def _check_fit(source: SourceInfo, channel: str, profiles: Sequence[Profile]) -> None:
    if not profiles:
        raise PlanError(f"{source.path}: channel '{channel}' takes photos only; leave it out of --channels")
    for p in profiles:
        if p.kind in VIDEO_KINDS and not source.video and not (p.audiogram is not None and source.audio):
            raise PlanError(f"{source.path}: channel '{channel}' needs video but the source has only audio; "
                            f"run it with --channels radio")
        if p.kind == "audio" and not source.audio:
            raise PlanError(f"{source.path}: channel '{channel}' needs audio but the source has none; "
                            f"leave '{channel}' out of --channels")


def _damage_notes(source: SourceInfo, options: PlanOptions) -> list[str]:
    """Refuse a damaged source (PlanError, one line) unless damage is accepted; else what to say about it."""
    if not source.video:
        return []
    v = source.video[0]
    if programme_duration(source) < 1 / float(v.rate) - 1e-6:
        after = " after its undecodable start" if v.lead_skipped else ""
        raise PlanError(f"{source.url or source.path}: holds less than one whole picture{after} "
                        f"({programme_duration(source) * 1000:.0f} ms); copy the whole recording again")
    if not v.damaged_pictures:
        return []
    said = f"{v.damaged_pictures} of the {v.checked_pictures} pictures checked needed error concealment (the " \
           f"decoder says: {v.damage})"
    if v.damaged_pictures >= 2 and v.damaged_pictures > DAMAGED_SHARE * v.checked_pictures \
            and not options.farm.accept_damaged:
        raise PlanError(f"{source.url or source.path}: is damaged: {said}; copy it again from the tape or card, or "
                        f"run with --accept-damaged to deliver what decodes")
    return [f"the source is damaged: {said}; delivered as it decodes"]


def default_channels(source: SourceInfo, catalog: Catalog) -> tuple[str, ...]:
    """Every channel the source can feed: no picture channels without video, no radio without audio; for a photo,
    those with photo profiles."""
    if source.image is not None:
        return photo_channels(catalog)

    def feeds(channel: str) -> bool:
        kinds = {p.kind for p in catalog.channel(channel)} - {"photo"}
        return bool(kinds) and (bool(source.video) or not kinds & set(VIDEO_KINDS)) and \
            (bool(source.audio) or "audio" not in kinds)

    return tuple(c for c in catalog.channels if feeds(c))


def _source_notes(source: SourceInfo, options: PlanOptions) -> list[str]:
    """What the plan decided about the source that a reader of its manifests should know."""
    notes = _damage_notes(source, options)
    if not source.video:
        return notes
    v = source.video[0]
    if v.lead_skipped:
        notes.append(f"the first {v.lead_skipped:.2f} s of the video cannot be decoded (the file starts mid-GOP): "
                     f"every output starts at its first whole picture")
    if v.hdr:
        carried = f" with {v.hdr_metadata} metadata" if v.hdr_metadata else ""
        notes.append(f"the source is HDR ({v.hdr}{carried}): every output is tone-mapped to BT.709 SDR")
    if v.retimed:
        notes.append(f"the video's timestamps are broken (they put hundreds of pictures in a second): its pictures "
                     f"are timed at {float(v.rate):g} fps instead")
    if v.vbi_lines:
        notes.append(f"the top {v.vbi_lines} lines of each frame carry VBI data (D-10): they are not part of any "
                     f"output")
    return notes


@dataclass
class _Job:
    """The plan being built: its renditions, and its tasks in the order they are added."""

    source: SourceInfo
    catalog: Catalog
    options: PlanOptions
    asset_id: str
    limits: Limits
    renditions: dict[str, Rendition] = dataclasses.field(default_factory=dict)
    tasks: list[Task] = dataclasses.field(default_factory=list)
    encode_of: dict[str, str] = dataclasses.field(default_factory=dict)   # rendition key -> its encode task
    path_of: dict[str, str] = dataclasses.field(default_factory=dict)     # rendition key -> its file
    verify_of: dict[str, str] = dataclasses.field(default_factory=dict)   # output key -> its verify task
    targets: list[LoudnessTarget] = dataclasses.field(default_factory=list)  # in {gain_N} order
    measure_of: dict[LoudnessTarget, str] = dataclasses.field(default_factory=dict)  # target -> its measure task
    captions_id: str | None = None  # the captions task, when any output carries the source's captions
    captions_dir: str = ""

    @property
    def work(self) -> str:
        return self.options.work_dir.rstrip("/")

    def id(self, kind: TaskKind, name: str = "") -> str:
        return task_id(self.asset_id, kind, name)

    def add(self, task: Task) -> str:
        if not any(t.id == task.id for t in self.tasks):
            self.tasks.append(task)
        return task.id

    def measures(self, profiles: Sequence[Profile]) -> tuple[str, ...]:
        """The measure tasks that settle the loudness of ``profiles``' sound."""
        targets = (loudness_target(p) for p in profiles)
        return tuple(dict.fromkeys(self.measure_of[t] for t in targets if t in self.measure_of))

    def need(self, profile: Profile) -> str:
        """The rendition of ``profile``, made once however many channels need it."""
        key = rendition_key(self.source, profile, self.options.encoder_version, self.options.title)
        if key not in self.renditions:  # one that follows the subject reads its crop path from a file
            commands = f"{self.work}/renditions/{key}.partial/{FOLLOW_COMMANDS}" if follows(self.source, profile) \
                else ""
            self.renditions[key] = Rendition(key, profile, commands)
        return key


def plan_job(source: SourceInfo, channels: Sequence[str] | None, catalog: Catalog,
             options: PlanOptions) -> JobPlan:
    """Everything that running ``channels`` for ``source`` takes, as data."""
    if source.image is not None:
        return plan_photo(source, channels, catalog, options)
    channels = tuple(channels) if channels else default_channels(source, catalog)
    if not channels:
        raise PlanError(f"{source.path}: no channel can be made from this source")
    if source.captions is not None and not options.farm.captions:
        source = dataclasses.replace(source, captions=None)
    if not source.video and not source.cover and options.cover is not None:  # the station's, for audiograms
        source = dataclasses.replace(source, cover=options.cover.path, cover_sha256=options.cover.sha256)
    job = _Job(source, catalog, options, asset_id_for(source), options.farm.limits(programme_duration(source)))
    notes = _source_notes(source, options)
    deliverables = {channel: _deliverables(job, channel) for channel in channels}
    _captions(job, [p for items in deliverables.values() for _, p in items])
    notes += _measure(job)
    analyze_id = _analysis(job)
    _encodes(job, analyze_id)
    report_file = f"{job.work}/reports/{analysis_key(source)}/{REPORT_NAME}"
    report_id = job.add(Task(job.id(TaskKind.REPORT), TaskKind.REPORT, ReportParams(
        source=source.path, final=report_file, title=source.name), deps=(analyze_id,)))
    where = channel_destinations(options.out_dir, options.farm.channel_destinations(), channels)
    delivers = [_deliver(job, channel, items, str(where[channel]), where[channel].child(job.asset_id), notes,
                         report_file, (analyze_id, report_id))
                for channel, items in deliverables.items()]
    return JobPlan(asset_id=job.asset_id, source=source, channels=channels, out_dir=options.out_dir,
                   work_dir=options.work_dir, tasks=(*job.tasks, *delivers), notes=tuple(notes))


def _analysis(job: _Job) -> str:
    """The analysis: one decode of the programme; a long one's (longer than ``chunk_min_s``) in parts on any workers
    (its sound, and its pictures in stretches as long as its chunks), which the analysis task joins."""
    source = job.source
    cache = f"{job.work}/analysis/{analysis_key(source)}.json"
    params = AnalyzeParams(source=source.path, cache=cache, limits=job.limits)
    stretches = (analysis_stretches(source, job.options.chunk_s or job.options.farm.chunk_s)
                 if programme_duration(source) > job.options.farm.chunk_min_s else [])
    if not stretches:
        return job.add(Task(job.id(TaskKind.ANALYZE), TaskKind.ANALYZE, params))
    origin = programme_start(source)
    params["origin"] = origin
    folder = f"{cache.removesuffix('.json')}.parts"
    half = 0.5 / float(source.video[0].rate)  # a stretch's first picture lies on its start: look from before it
    parts = [AnalyzePartParams(source=source.path, part="pictures", index=cut.index,
                               start=origin + float(cut.start) - half if cut.index else None,
                               end=None if cut.last else origin + float(cut.end) - half,
                               duration=float(cut.end - cut.start), origin=origin,
                               # named by its bounds: the parts of a run cut otherwise are not taken for its own
                               file=f"{folder}/{cut.index:04d}-{short_hash(str(cut.start), str(cut.end))}.npz",
                               analysis=cache, limits=job.limits)
             for cut in sorted(stretches, key=lambda c: (c.start - c.end, c.index))]  # longest first, as chunks
    if source.audio:
        parts.append(AnalyzePartParams(source=source.path, part="sound", index=0, start=None, end=None,
                                       duration=programme_duration(source), origin=origin,
                                       file=f"{folder}/sound.json", analysis=cache, limits=job.limits))
    deps = tuple(job.add(Task(job.id(TaskKind.ANALYZE_PART, "sound" if p["part"] == "sound" else
                                     f"pictures-{p['index']:04d}"), TaskKind.ANALYZE_PART, p, heavy=True))
                 for p in parts)
    return job.add(Task(job.id(TaskKind.ANALYZE), TaskKind.ANALYZE, params, deps=deps))


def _deliverables(job: _Job, channel: str) -> list[tuple[str, Profile]]:
    """(rendition key, profile) for each profile of ``channel``; an HLS ladder needs its rungs' renditions."""
    profiles = [with_logo(p, job.catalog.logo_of(channel, p), job.options.logo) for p in job.catalog.channel(channel)
                if p.kind != "photo"]
    _check_fit(job.source, channel, profiles)
    items = []
    for p in profiles:
        if p.kind == "hls":
            for rung in ladder_rungs(job.source, p, job.catalog):
                job.need(rung)
            items.append(("hls", p))
        else:
            items.append((job.need(p), p))
    return items


def with_logo(profile: Profile, logo: LogoSpec | None, station: Artwork | None) -> Profile:
    """``profile`` as a channel makes it: with the logo placed (its file, or the station's), or with none."""
    if logo is not None and not logo.file and station is not None:
        logo = dataclasses.replace(logo, file=station.path, sha256=station.sha256)
    proxy = profile.video is not None and profile.video.burn_timecode  # an edit proxy never carries the logo
    if logo is not None and not logo.file or profile.kind == "sprite" or proxy:
        logo = None
    return profile if logo == profile.logo else dataclasses.replace(profile, logo=logo)


def _captions(job: _Job, delivered: list[Profile]) -> None:
    """The captions task, when the source has captions and an output burns them in or carries them as WebVTT;
    the renditions that burn them are told their ASS file."""
    source = job.source
    titled = [r for r in job.renditions.values() if audiogram(source, r.profile)]  # the title is burned in too
    burning = [r for r in job.renditions.values() if r in titled or source.captions is not None
               and r.profile.captions is not None and r.profile.captions.burn and r.profile.video is not None]
    subtitles = source.captions is not None and any(p.captions is not None and p.captions.subtitles
                                                    for p in delivered)
    if not burning and not subtitles:
        return
    title = job.options.title or file_stem(source.name)
    burns = [_burn(source, r, title if r in titled else "") for r in sorted(burning, key=lambda r: r.key)]
    # a sidecar is timed from the start a player shows; a stream on the source's own clock, as ffmpeg reads it
    captions = source.captions
    shift = programme_start(source) - (source.start_time if captions is None or captions.stream < 0 else 0.0)
    duration = programme_duration(source)
    spanned = captions is not None and captions.last > captions.first  # a sidecar's cues, read at probe
    if spanned and (captions.first - shift >= duration or captions.last <= shift):  # type: ignore[union-attr]
        raise PlanError(f"{captions.path}: its cues run from {captions.first:.3f} to {captions.last:.3f} s, outside "
                        f"the programme (0 to {duration:.3f} s); check that the captions belong to this source, or "
                        f"run it with --no-captions")
    key = captions_key(source, shift, duration, repr(burns))
    job.captions_dir = f"{job.work}/captions/{key}"
    extract = [] if captions is None or captions.stream < 0 else [  # a subtitle stream as SRT, times as they are
        "ffmpeg", *GLOBAL_ARGS, *SOURCE_ARGS, "-protocol_whitelist", PROTOCOL_WHITELIST, "-i", f"file:{source.path}",
        "-map", f"0:{captions.stream}", "-c:s", "srt", "-f", "srt",
        f"file:{job.captions_dir}.partial/{STREAM_CAPTIONS}"]
    job.captions_id = job.add(Task(job.id(TaskKind.CAPTIONS), TaskKind.CAPTIONS, CaptionsParams(
        source=captions.path if captions else "", stream=captions.stream if captions else -1,
        format=captions.format if captions else "",
        shift=round(shift, 6), duration=duration, partial=f"{job.captions_dir}.partial", final=job.captions_dir,
        burn=burns, fonts=f"{job.work}/{CAPTION_FONTS}", extract=extract, limits=job.limits)))
    for r in burning:
        r.captions, r.fonts = f"{job.captions_dir}/{r.key}.ass", f"{job.work}/{CAPTION_FONTS}"


def _burn(source: SourceInfo, rendition: Rendition, title: str) -> CaptionsBurn:
    """How text is burned into a rendition's picture: its size and the safe area, in pixels; an audiogram's
    ``title`` goes under a logo in a top corner, not beside it."""
    profile = rendition.profile
    spec, captions, logo, look = profile.video, profile.captions or CaptionsSpec(), profile.logo, profile.audiogram
    assert spec is not None
    below_logo = logo.height + logo.margin + 0.01 if logo and logo.file and logo.corner.startswith("top") else 0
    return CaptionsBurn(name=rendition.key, width=spec.width, height=spec.height,
                        font_size=round(spec.height * captions.size), margin_left=round(spec.width * spec.safe_left),
                        margin_right=round(spec.width * spec.safe_right),
                        margin_bottom=round(spec.height * spec.safe_bottom),
                        margin_top=round(spec.height * (spec.safe_top + below_logo)),
                        cues=source.captions is not None and captions.burn,
                        title=title, title_size=round(spec.height * look.title_size) if title and look else 0)


def _subtitles(job: _Job, ladder: Profile) -> HlsSubtitles | None:
    """The WebVTT rendition of a ladder that carries the source's captions as subtitles."""
    if not (job.captions_id and ladder.captions is not None and ladder.captions.subtitles):
        return None
    assert job.source.captions is not None
    language = job.source.captions.language or job.options.farm.captions_language
    return HlsSubtitles(vtt=f"{job.captions_dir}/{CAPTIONS_VTT}", language=language,
                        name=LANGUAGE_NAMES.get(language.split("-")[0], language))


def _measure(job: _Job) -> list[str]:
    """A loudness measure task per target, when any output is normalised and there is audio to normalise (what
    to note when there is none). The targets are settled apart: on a farm, side by side, so that a long
    programme's sound waits for the slowest target's trials, not for all of them one after another."""
    targets = list(dict.fromkeys(t for r in job.renditions.values() if (t := loudness_target(r.profile)) is not None))
    programme = programme_streams(job.source)
    if not targets:
        return []
    if not programme:
        return ["the source has no audio: loudness is not normalised"]
    job.targets = targets
    metered = f"{job.work}/loudness/programme-{loudness_key(job.source, [], job.options.encoder_version)}.json"
    meter = measure_argv(job.source, programme)
    for index, target in enumerate(targets):
        cache = f"{job.work}/loudness/{loudness_key(job.source, [target], job.options.encoder_version)}.json"
        params = MeasureParams(argv=meter, programme_cache=metered,
                               trial=trial_argv(job.source, programme, [target]), targets=[target.to_dict()],
                               indices=[index], source=job.source.path, limits=job.limits, cache=cache)
        first = next(r.profile.name for r in job.renditions.values() if loudness_target(r.profile) == target)
        job.measure_of[target] = job.add(Task(job.id(TaskKind.MEASURE, first), TaskKind.MEASURE, params))
    return []


def _encodes(job: _Job, analyze_id: str) -> None:
    """One encode for every rendition that does not follow the subject (it starts at once), and one for each that
    does (it waits for the analysis's crop path). A programme longer than ``chunk_min_s`` has the pictures of its
    chunkable renditions made in chunks instead, the sounds by whole-file encodes, one per loudness target."""
    source = job.source
    followers = [r for r in job.renditions.values() if r.commands]
    shared = [r for r in job.renditions.values() if not r.commands]
    groups = [("", shared, ())] if shared else []
    groups += [(r.profile.name, [r], (analyze_id,)) for r in followers]
    farm = job.options.farm
    chunk_s = job.options.chunk_s or farm.chunk_s
    spread = job.options.spread if job.options.spread > 1 else 0
    long = bool(spread) or programme_duration(source) > farm.chunk_min_s
    # spread over the slots in even pieces, unless they would be longer than chunk_s: then in chunks of that
    pieces = spread if spread and programme_duration(source) / spread <= chunk_s else 0
    programme = bool(programme_streams(source))
    whole, chunked, sounds = [], [], {}
    made: dict[tuple[str, float], Rendition] = {}  # renditions whose sound is the same share one (an HLS ladder's)
    for name, members, after in groups:
        if job.captions_id and any(r.captions for r in members):
            after = (*after, job.captions_id)
        for number, (cut_members, chunk_cuts) in enumerate(series(
                source, [r for r in members if chunkable(source, r.profile)] if long else [], chunk_s, pieces)):
            members = [r for r in members if r not in cut_members]
            # the stills ride along the first series' decode: no decode of the whole programme for them alone
            stills = [r for r in members if rides_along(source, r)] if number == 0 else []
            members = [r for r in members if r not in stills]
            chunked.append((f"{name or 'all'}-{number}", cut_members, chunk_cuts, after, stills))
            for r in cut_members:
                if has_sound(source, r.profile, programme):
                    sound = sound_rendition(source, r)
                    sounds[r.key] = made.setdefault((sound.profile.content_key(), sound.length), sound)
        whole.append((job.id(TaskKind.ENCODE, name), members, after))
    if sounds:  # the sound of every chunked rendition, and every other sound, in an encode per loudness target
        # that waits for its measure (and the captions, where any); pictures still made whole (an audiogram's) apart
        first_id, first, after = whole[0]
        by_target: dict[LoudnessTarget | None, list[Rendition]] = {}
        for r in [r for r in first if r.profile.audio is not None] + list(made.values()):
            by_target.setdefault(loudness_target(r.profile) if programme else None, []).append(r)
        whole[0:1] = [(first_id, [r for r in first if r.profile.audio is None], after),
                      *((job.id(TaskKind.ENCODE, f"sound-{group[0].profile.name.removesuffix(SOUND_SUFFIX)}"),
                         group, after) for group in by_target.values())]
    for encode_id, members, after in whole:
        if members:
            _encode(job, encode_id, members, (*after, *job.measures([r.profile for r in members])))
            if sounds and len(members) == 1:
                _trial_is_encode(job, encode_id, members[0])
    for name, members, chunk_cuts, after, stills in chunked:
        _chunks(job, name, members, stills, chunk_cuts, after,
                {key: job.path_of[sound.key] for key, sound in sounds.items()},
                {key: job.encode_of[sound.key] for key, sound in sounds.items()})


def _trial_is_encode(job: _Job, encode_id: str, rendition: Rendition) -> None:
    """Where one lossy loudness target's sound is an encode of its own (a chunked programme's), its measure task's
    trial is that very encode, writing into the trial's scratch folder: the measure keeps the file of the round it
    chooses (``keep``), and the encode takes that file instead of making the same samples again."""
    encode = next(t for t in job.tasks if t.id == encode_id)
    target = loudness_target(rendition.profile)
    audio, container = rendition.profile.audio, rendition.profile.container
    if (rendition.profile.video is not None or target is None or not target.lossy or target not in job.measure_of
            or audio is None or audio.tracks != "interleaved" or container is None  # the trial meters one track
            or len(encode.params["outputs"]) != 1):
        return
    made = written_into(encode.params["argv"], encode.params["outputs"][0]["partial"])
    assert made is not None
    at = next(i for i, t in enumerate(job.tasks) if t.id == job.measure_of[target])
    measure = job.tasks[at]
    index = job.targets.index(target)
    trial_file = f"target-0.{container.extension}"
    trial = [f"file:{{scratch}}/{trial_file}" if w == made else
             re.sub(rf"\{{(gain|limit|release)_{index}\}}", r"{\1_0}", w) for w in encode.params["argv"]]
    job.tasks[at] = dataclasses.replace(measure, params={
        **measure.params, "trial": trial,
        "keep": KeptTrial(file=trial_file, prefix=measure.params["cache"].removesuffix(".json") + ".kept")})


def _encode(job: _Job, encode_id: str, members: list[Rendition], deps: tuple[str, ...]) -> None:
    """One ffmpeg making ``members`` from one decode of the whole programme."""
    source, work = job.source, job.work
    argv, encoded = encode_argv(source, members, job.asset_id, work, job.options.x264_threads,
                                programme_streams(source), job.targets)
    params = EncodeParams(argv=argv, source=source.path, duration=programme_duration(source), limits=job.limits,
                          outputs=[EncodeOutput(key=r.key, profile=r.profile.name,
                                                partial=f"{work}/renditions/{r.key}.partial",
                                                final=f"{work}/renditions/{r.key}") for r in encoded])
    if members[0].commands:
        params["follow"] = follow_params(source, members[0])
    job.add(Task(encode_id, TaskKind.ENCODE, params, deps=deps, heavy=True))
    for r in encoded:
        job.encode_of[r.key] = encode_id
        job.path_of[r.key] = f"{work}/renditions/{r.key}/{r.file_name}"


def _chunks(job: _Job, name: str, members: list[Rendition], stills: list[Rendition], chunk_cuts: list[Cut],
            after: tuple[str, ...], sounds: dict[str, str], sound_encodes: dict[str, str]) -> None:
    """The chunk tasks of ``members`` and ``stills`` (longest first, so that the last to start is short) and a
    join per rendition (on a farm, side by side: the joins are what a programme waits for after its last chunk);
    the first rendition's also puts the stills together."""
    source, work = job.source, job.work
    series_key = short_hash(*(r.key for r in [*members, *stills]), *(f"{c.start}-{c.end}" for c in chunk_cuts))
    series_dir = f"{work}/chunks/{series_key}"
    folders = [f"{series_dir}/{c.index:04d}" for c in chunk_cuts]
    chunk_ids = []
    for cut in sorted(chunk_cuts, key=lambda c: (c.start - c.end, c.index)):
        folder = folders[cut.index]
        # a chunk that follows the subject writes its own copy of the crop path
        chunk_members = [dataclasses.replace(r, commands=f"{folder}.partial/{FOLLOW_COMMANDS}") if r.commands
                         else r for r in members]
        params = chunk_params(source, chunk_members, cut, folder, job.options.x264_threads, job.limits, stills, work)
        if members[0].commands:
            params["follow"] = follow_params(source, chunk_members[0])
        chunk_ids.append(job.add(Task(job.id(TaskKind.CHUNK, f"{name}-{cut.index:04d}"), TaskKind.CHUNK, params,
                                      deps=after, heavy=True)))
    references = [reference(source, [dataclasses.replace(r, commands=f"{folders[cut.index]}/{FOLLOW_COMMANDS}")
                                     if r.commands else r for r in members], cut,
                            f"{series_dir}/references/{cut.index:04d}")
                  for cut in chunk_cuts[1:]]  # a follower's window as the chunk after the join moved it
    series_outputs = [f"{work}/renditions/{r.key}" for r in [*members, *stills]]
    for number, r in enumerate(members):
        made = stills if number == 0 else []
        join_id = job.add(Task(job.id(TaskKind.JOIN, r.profile.name), TaskKind.JOIN, join_params(
            source, [r], chunk_cuts, folders, {r.key: sounds[r.key]} if r.key in sounds else {}, work,
            f"{series_dir}/join-{r.key}", job.asset_id, job.limits, references, made, series_dir, series_outputs),
            deps=(*sorted(chunk_ids), *([sound_encodes[r.key]] if r.key in sound_encodes else []))))
        for joined in [r, *made]:
            job.encode_of[joined.key] = join_id
            job.path_of[joined.key] = f"{work}/renditions/{joined.key}/{joined.file_name}"


def _verify(job: _Job, key: str, profile: Profile, path: str, dep: str, sound_of: Sequence[Profile] = ()) -> str:
    """The check of one output (once, however many channels deliver it), whose sound is that of ``sound_of``
    (the profile's own when not given)."""
    if key not in job.verify_of:
        # a loudness check needs the source's measurement: a silent output is right only for a silent source
        deps = (dep, *(job.measures(sound_of or [profile])[:1] if profile.loudness else ()))
        job.verify_of[key] = job.add(Task(job.id(TaskKind.VERIFY, profile.name), TaskKind.VERIFY, VerifyParams(
            profile=profile.to_dict(), path=path, expect=expectations(job.source, profile, job.catalog),
            limits=job.limits), deps=deps))
    return job.verify_of[key]


def _deliver(job: _Job, channel: str, items: list[tuple[str, Profile]], folder: str, dest: Location,
             notes: list[str], report_file: str, after: tuple[str, str]) -> Task:
    """The channel's packages and checks, and its delivery task: its files, QC rules, destination."""
    source, work = job.source, job.work
    files: list[DeliveredFile] = []
    checks: list[str] = []
    for key, p in items:
        if p.kind == "hls":
            rungs = ladder_rungs(source, p, job.catalog)
            rung_keys = [rendition_key(source, r, job.options.encoder_version) for r in rungs]
            vtt = _subtitles(job, p)  # new captions (or their language) make a new package, the rungs the same
            pkg_key = package_key(p, [*rung_keys, *([repr(sorted(vtt.items()))] if vtt else [])])
            pkg_dir = f"{work}/packages/{pkg_key}"
            package: HlsPackageParams = {**hls_params(source, p, rungs, rung_keys, job.path_of, pkg_dir),
                                         "limits": job.limits}
            deps = tuple(dict.fromkeys(job.encode_of[k] for k in rung_keys))
            if vtt:
                package["subtitles"] = vtt
                deps += (job.captions_id,)  # type: ignore[assignment]
            pkg_id = job.add(Task(job.id(TaskKind.PACKAGE, p.name), TaskKind.PACKAGE, package, deps=deps))
            for rung, rk in zip(rungs, rung_keys):
                checks.append(_verify(job, rk, rung, job.path_of[rk], job.encode_of[rk]))
            checks.append(_verify(job, pkg_key, p, pkg_dir, pkg_id, rungs))
            files.append(DeliveredFile(src=pkg_dir, dest=p.name, profile=p.name))
            assert p.hls is not None
            if p.hls.progressive_mp4:
                files.append(DeliveredFile(src=job.path_of[rung_keys[0]], dest=f"{p.name}.mp4",
                                           profile=rungs[0].name))
                if vtt:
                    files.append(DeliveredFile(src=vtt["vtt"], dest=f"{p.name}.vtt", profile=p.name))
        elif p.kind == "sprite":
            pkg_dir = f"{work}/packages/{key}"
            pkg_id = job.add(Task(job.id(TaskKind.PACKAGE, p.name), TaskKind.PACKAGE,
                                  sprite_params(source, p, f"{work}/renditions/{key}", pkg_dir),
                                  deps=(job.encode_of[key],)))
            checks.append(_verify(job, key, p, pkg_dir, pkg_id))
            files.append(DeliveredFile(src=pkg_dir, dest=p.name, profile=p.name))
        else:
            checks.append(_verify(job, key, p, job.path_of[key], job.encode_of[key]))
            assert p.container is not None
            files.append(DeliveredFile(src=job.path_of[key], dest=f"{p.name}.{p.container.extension}",
                                       profile=p.name))
    files.append(DeliveredFile(src=report_file, dest=REPORT_NAME, profile="report"))
    rules = job.catalog.qc.get(channel)
    # a failed channel's QC record sits beside its delivery folder, or in the work dir for an S3 destination
    record_dir = f"{work}/qc/{channel}" if dest.is_s3 else folder
    farm = job.options.farm
    deliver = DeliverParams(channel=channel, asset_id=job.asset_id, dest=str(dest), files=files, notes=notes,
                            qc=QcParams(mode=farm.qc, rules=dataclasses.asdict(rules) if rules else None,
                                        record=f"{record_dir}/{job.asset_id}.qc.json" if rules else None),
                            source=SourceRecord(path=source.url or source.path, size=source.size,
                                                sha256=source.sha256))
    if dest.is_s3:
        deliver["transfer"] = farm.transfer()
    if job.options.version:
        deliver["version"] = job.options.version
    # deps: the verify results, then the analysis (for QC) and the report, in that order
    return Task(job.id(TaskKind.DELIVER, channel), TaskKind.DELIVER, deliver, deps=(*dict.fromkeys(checks), *after))


def expectations(source: SourceInfo, profile: Profile, catalog: Catalog) -> dict[str, Any]:
    """What verification expects of ``profile``'s output made from ``source``."""
    if profile.kind == "photo":
        return photo_expectations(source, profile)
    if profile.kind == "hls":
        expect: dict[str, Any] = {"rungs": [r.name for r in ladder_rungs(source, profile, catalog)]}
        if profile.captions is not None and profile.captions.subtitles and source.captions is not None:
            expect["subtitles"] = {"duration": programme_duration(source)}
        return expect
    if profile.kind == "sprite":
        layout = sprite_params(source, profile, "", "")
        return {"sheets": layout["sheet_count"], "cues": len(layout["cues"])}
    expect = {"duration": programme_duration(source), "has_audio": bool(source.audio)}
    if profile.video is not None and (source.video or audiogram(source, profile)):
        rate = output_rate(source.video[0].rate if source.video else Fraction(AUDIOGRAM_RATE), profile.video)
        expect["frame_rate"] = f"{rate.numerator}/{rate.denominator}"
        expect["gop"] = gop_frames(profile.video, rate)
    timecode = start_timecode(profile, source)
    if timecode:
        expect["timecode"] = timecode
    return expect
