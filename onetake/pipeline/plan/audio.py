"""The programme audio: its streams made stereo 48 kHz on the picture's clock, the loudness targets (a gain and a
true-peak limiter each, settled by the measure step), and the tracks each output wants."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ffmpeg

from ..models import AudioStreamInfo, SourceInfo
from ..profiles import AudioSpec, Profile
from .graph import SOURCE_ARGS, Chain, Filter, apply_filters, emit, flt, kbps, source_input
from .programme import programme_duration, programme_start

if TYPE_CHECKING:
    from .encode import Rendition

AUDIO_RATE = 48000


def _stereo_filters(stream: AudioStreamInfo) -> list[Filter]:
    # channelmap rather than pan: ffmpeg-python escapes the '=' that pan's syntax needs
    if stream.channels == 1:
        return [flt("channelmap", map="0|0", channel_layout="stereo")]
    if stream.channels == 2 and stream.layout == "stereo":
        return []
    if stream.channels > 2 and not re.fullmatch(r"\d+ channels|", stream.layout):
        return [flt("aformat", channel_layouts="stereo")]  # the standard downmix
    return [flt("channelmap", map="0|1", channel_layout="stereo")]


def _sync_filters(start: float) -> list[Filter]:
    """Audio on the picture's clock: time 0 at the programme's start; audio before it is cut, a late start is
    preceded by silence (aresample pads or trims to its first_pts, and fills gaps in the timestamps)."""
    return [flt("asetpts", f"PTS-{start:.6f}/TB"), flt("aresample", AUDIO_RATE, **{"async": 1, "first_pts": 0})]


def programme_input(inp: Any, source: SourceInfo, programme: list[AudioStreamInfo]) -> tuple[Any, list[Filter]]:
    """The programme's input stream and the filters that make it stereo 48 kHz on the picture's clock."""
    start = programme_start(source)
    if len(programme) == 2:
        stream = ffmpeg.filter([inp[str(programme[0].index)], inp[str(programme[1].index)]], "amerge", inputs=2)
        return stream, _sync_filters(start)
    return inp[str(programme[0].index)], _stereo_filters(programme[0]) + _sync_filters(start)


TRUE_PEAK_RATE = 4 * AUDIO_RATE  # peaks are limited where BS.1770 measures them: between samples, at 4x


# alimiter: 5 ms look-ahead, no automatic make-up gain, its look-ahead delay taken back out; the release time is
# the measure step's to choose
LIMITER = {"attack": 5, "level": 0, "latency": 1}


# Where a target's limiter starts, under its true-peak limit (dB) when the profile names none. A lossy encoder adds
# peaks of its own; the measure step lowers the limiter further for the outputs that need it.
HEADROOM_DB = {"pcm": 0.5, "lossy": 1.0}


# What a trial of a lossy target is written as: the delivery's own kind of container, because where the encoder's
# priming samples go (cut by an MP4 edit list, kept in a raw stream) shifts the meter's 400 ms blocks, and on
# impulsive sound that alone moves the integrated loudness by up to 1 LU.
TRIAL_CONTAINERS = {"mp4": "mp4", "ipod": "mp4", "mov": "mp4", "mp3": "mp3", "mp2": "mp2", "wav": "wav"}


@dataclass(frozen=True)
class LoudnessTarget:
    """One loudness-normalised version of the programme: a gain and a true-peak limiter ahead of one encoder
    setting. Renditions with the same target share the branch of the filter graph that makes it."""

    integrated: float
    true_peak: float
    tolerance: float
    headroom: float
    codec: str
    bitrate_kbps: int
    channels: int
    container: str

    @property
    def lossy(self) -> bool:
        return not self.codec.startswith("pcm")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "lossy": self.lossy}


def loudness_target(profile: Profile) -> LoudnessTarget | None:
    if profile.loudness is None or profile.audio is None:
        return None
    loud, audio = profile.loudness, profile.audio
    pcm = audio.codec.startswith("pcm")
    channels = 2 if audio.tracks == "mono" or audio.channels == 4 else audio.channels
    container = TRIAL_CONTAINERS.get(profile.container.format, "mp4") if profile.container and not pcm else ""
    return LoudnessTarget(loud.integrated, loud.true_peak, loud.tolerance,
                          loud.headroom or HEADROOM_DB["pcm" if pcm else "lossy"], audio.codec,
                          audio.bitrate_kbps, channels, container)


def gain_filters(index: int) -> list[Filter]:
    """Target ``index``'s gain and true-peak limiter; the measure step fills in ``{gain_N}`` (dB), ``{limit_N}``
    (the limiter's ceiling, linear) and ``{release_N}`` (ms)."""
    return [flt("volume", f"{{gain_{index}}}dB"), flt("aresample", TRUE_PEAK_RATE),
            flt("alimiter", limit=f"{{limit_{index}}}", release=f"{{release_{index}}}", **LIMITER),
            flt("aresample", AUDIO_RATE)]


def _track_filters(spec: AudioSpec) -> list[list[Filter]]:
    """One filter list per output audio stream, from the stereo programme."""
    if spec.tracks == "mono":  # programme left and right, then silent tracks
        return [[flt("channelmap", map=str(min(i, 1)), channel_layout="mono")] + ([flt("volume", 0)] if i > 1 else [])
                for i in range(spec.channels)]
    # aresample converts inside its own branch; aformat would make every branch of the shared asplit negotiate
    # that layout, and the stereo outputs would then be downmixed from it (4.6 dB quieter from quad)
    if spec.channels == 1:
        return [[flt("aresample", out_chlayout="mono")]]
    if spec.channels == 4:  # the programme on 1/2, silence on 3/4 (D-10 carries one 4-channel track)
        return [[flt("aresample", out_chlayout="quad")]]
    return [[]]


METER = {"peak": "true", "framelog": "verbose"}  # ebur128 as verify reads it; per-block lines below -loglevel info


def measure_argv(source: SourceInfo, programme: list[AudioStreamInfo]) -> list[str]:
    """The programme's integrated loudness and true peak, by ffmpeg's ebur128 (the meter verify uses)."""
    stream, chain = programme_input(source_input(source), source, programme)
    stream = apply_filters(stream, [*chain, flt("ebur128", **METER)])
    out = ffmpeg.output(stream, "-", f="null")
    return out.global_args("-nostdin", "-hide_banner", "-nostats", *SOURCE_ARGS).compile(cmd="ffmpeg")


def written_into(argv: Sequence[str], folder: str) -> str | None:
    """The word of ``argv`` naming the file ffmpeg writes into ``folder`` (the first, if several)."""
    return next((w for w in argv if w.startswith(f"file:{folder}/")), None)


def trial_argv(source: SourceInfo, programme: list[AudioStreamInfo], targets: Sequence[LoudnessTarget]) -> list[str]:
    """Every target's branch as the encode will make it: a lossy one encoded into ``{scratch}/target-N.FORMAT``
    (measured afterwards as verify measures an output), a PCM one metered as it leaves the limiter
    (``ebur128@target-N`` in the log). The measure step runs it until each target lands within its limits."""
    inp = source_input(source)
    stream, chain = programme_input(inp, source, programme)
    root = Chain(chain)
    duration = programme_duration(source)
    for i, target in enumerate(targets):
        # padded to the programme's length as in the encode: the meter's last blocks span the end of the sound
        node = root.child(*gain_filters(i), flt("apad", whole_dur=duration))
        if target.lossy and target.channels == 1:
            node = node.child(flt("aresample", out_chlayout="mono"))
        if not target.lossy:
            node = node.child(flt(f"ebur128@target-{i}", **METER))
        node.sinks.append(str(i))
    sinks: dict[str, Any] = {}
    emit(stream, root, sinks, audio=True)
    outputs = []
    for i, target in enumerate(targets):
        if target.lossy:
            opts = {"c:a": target.codec, "ar": AUDIO_RATE, "f": target.container, "t": duration}
            if target.bitrate_kbps:
                opts["b:a"] = kbps(target.bitrate_kbps)
            outputs.append(ffmpeg.output(sinks[str(i)], f"file:{{scratch}}/target-{i}.{target.container}", **opts))
        else:
            outputs.append(ffmpeg.output(sinks[str(i)], "-", f="null", t=duration))
    return ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-nostats", "-y",
                                                      *SOURCE_ARGS).compile(cmd="ffmpeg")


def audio_tree(inp: Any, source: SourceInfo, renditions: list[Rendition], programme: list[AudioStreamInfo],
                targets: list[LoudnessTarget], duration: float, sinks: dict[str, Any]) -> None:
    with_audio = [r for r in renditions if r.profile.audio is not None]
    if programme:
        stream, chain = programme_input(inp, source, programme)
    else:
        silent = [r for r in with_audio if r.profile.audio.silence_if_missing]  # type: ignore[union-attr]
        if not silent:
            return
        with_audio = silent
        stream = ffmpeg.input(f"anullsrc=r={AUDIO_RATE}:cl=stereo", f="lavfi")
        chain = []
    root = Chain(chain)
    by_target: dict[int | None, Chain] = {}
    for r in with_audio:
        target = loudness_target(r.profile) if programme else None
        index = targets.index(target) if target is not None else None
        if index not in by_target:
            filters = gain_filters(index) if index is not None else []
            by_target[index] = root.child(*filters, flt("apad", whole_dur=duration))
        assert r.profile.audio is not None
        longer = [flt("apad", whole_dur=r.length)] if r.length > duration else []
        for i, track in enumerate(_track_filters(r.profile.audio)):
            node = by_target[index].child(*longer, *track)
            node.sinks.append(f"{r.key}#{i}")
    emit(stream, root, sinks, audio=True)
