"""Pure planning: (SourceInfo, channels, profiles) -> JobPlan.

Nothing here touches the file system, runs a process or reads the clock: the same inputs give the same
plan, and tests compare plans with ``==``. Every ffmpeg argv is built here (with ffmpeg-python); a value
that depends on a measurement (the loudness of the source) is left as a ``{placeholder}`` that the worker
fills in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import ffmpeg

from .. import __version__
from .config import FarmConfig
from .destinations import channel_destinations
from .errors import PlanError
from .models import AudioStreamInfo, JobPlan, SourceInfo, Task, VideoStreamInfo
from .probe import PROTOCOL_WHITELIST
from .profiles import AudioSpec, Catalog, Profile, VideoSpec

VIDEO_KINDS = ("av", "image", "sprite", "hls")
ASSET_ID_MAX = 64
AUDIO_RATE = 48000
DAMAGED_SHARE = 0.1  # a source with more of its checked pictures needing error concealment is refused
ANALYSIS_VERSION = 2  # the analysis result's meaning; part of its cache key and of every key that depends on it
FOLLOW_COMMANDS = "follow.cmd"  # the crop window's path for ffmpeg's sendcmd, written by the worker
REPORT_NAME = "report.html"


@dataclass(frozen=True)
class PlanOptions:
    out_dir: str
    work_dir: str
    encoder_version: str = "ffmpeg"   # part of every output key: a new encoder makes new outputs
    x264_threads: int = FarmConfig.x264_threads
    farm: FarmConfig = FarmConfig()   # the time limits of every ffmpeg run


# ---------------------------------------------------------------------------------------------------------
# names and keys


def asset_id_for(source: SourceInfo) -> str:
    """A readable, storage-safe id: the file's stem cleaned up, plus the start of its SHA-256."""
    stem = source.name.rsplit(".", 1)[0] if "." in source.name.lstrip(".") else source.name
    stem = unicodedata.normalize("NFC", stem)
    cleaned = "".join(ch if (ch.isalnum() or ch in "_-") else "-" for ch in stem)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-_")[:ASSET_ID_MAX] or "asset"
    return f"{cleaned}-{source.sha256[:8]}"


def rendition_key(source: SourceInfo, profile: Profile, options: PlanOptions) -> str:
    blob = f"{source.sha256}|{profile.content_key()}|{options.encoder_version}|onetake {__version__}"
    if profile.video is not None and profile.video.framing == "follow":  # the picture depends on the analysis
        blob += f"|analysis {ANALYSIS_VERSION}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def loudness_key(source: SourceInfo, targets: Sequence[LoudnessTarget], options: PlanOptions) -> str:
    """The measured gains depend on the source's audio, the targets and the encoders that make them."""
    blob = json.dumps([source.sha256, [t.to_dict() for t in targets], options.encoder_version, __version__])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def analysis_key(source: SourceInfo) -> str:
    """The analysis depends on the source's bytes and on the code that analyses them, nothing else."""
    blob = f"{source.sha256}|analysis {ANALYSIS_VERSION}|onetake {__version__}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# pictures: rates and geometry


def output_rate(source_rate: Fraction, spec: VideoSpec) -> Fraction:
    if spec.frame_rate != "source":
        return Fraction(spec.frame_rate)
    rate = source_rate
    while rate > spec.max_frame_rate + Fraction(1, 100):
        rate /= 2
    return rate


def gop_frames(spec: VideoSpec, rate: Fraction) -> int:
    return spec.gop_frames or max(1, round(spec.gop_seconds * rate))


def _even(x: float) -> int:
    return max(2, int(x / 2 + Fraction(1, 2)) * 2)  # half up, not to even


MATRIX_FOR_SCALE = {"bt709": "bt709", "bt470bg": "bt601", "smpte170m": "bt601", "smpte240m": "smpte240m",
                    "bt2020nc": "bt2020", "bt2020c": "bt2020"}


def _source_matrix(v: VideoStreamInfo) -> str:
    """The source's YUV matrix as scale names it (after tone mapping, for HDR: BT.709); untagged sources are guessed
    by their line count."""
    if v.hdr:
        return "bt709"
    return MATRIX_FOR_SCALE.get(v.color_matrix) or ("bt709" if v.height >= 720 else "bt601")


# HDR to SDR: linear light at a nominal peak of 100 cd/m2, BT.2020 primaries to BT.709, then the Mobius curve,
# which keeps everything below about the SDR peak as it is and rolls off only the highlights above it
TONE_MAP = {"tonemap": "mobius", "desat": 0}
NOMINAL_PEAK_NITS = 100


def tone_map_filters(v: VideoStreamInfo) -> list[Filter]:
    """PQ or HLG pictures to BT.709 SDR, every input property named (container tags are often missing), kept at
    10 bits and the source's chroma until each output's own conversion."""
    chroma = "yuv422p10le" if "422" in v.pix_fmt else "yuv444p10le" if "444" in v.pix_fmt else "yuv420p10le"
    return [flt("zscale", tin=v.color_transfer, min=v.color_matrix or "bt2020nc", pin=v.color_primaries or "bt2020",
                rin=v.color_range or "tv", t="linear", npl=NOMINAL_PEAK_NITS),
            flt("format", "gbrpf32le"), flt("zscale", p="bt709"), flt("tonemap", **TONE_MAP),
            flt("zscale", t="bt709", m="bt709", r="tv"), flt("format", chroma)]


SD_RASTERS = {(720, 576), (704, 576), (720, 608), (720, 480), (720, 486), (704, 480)}


def _output_matrix(spec: VideoSpec) -> str:
    """BT.601 for broadcast SD rasters only; every other output (web rungs and proxies included) is BT.709."""
    return "bt601" if (spec.width, spec.height) in SD_RASTERS else "bt709"


Filter = tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]


def flt(name: str, *args: Any, **kwargs: Any) -> Filter:
    return (name, args, tuple(kwargs.items()))


def box_sar(spec: VideoSpec) -> Fraction:
    """The output's sample aspect ratio: square, unless the profile declares a display shape (anamorphic SD)."""
    if not spec.display_aspect:
        return Fraction(1)
    num, den = (int(x) for x in spec.display_aspect.split(":"))
    return Fraction(num, den) / Fraction(spec.width, spec.height)


def follow_window(aspect: Fraction, width: int, height: int, box_w: int, box_h: int,
                  sar: Fraction = Fraction(1)) -> int | None:
    """The width in source pixels of the crop window that ``follow`` moves across a picture of ``width`` x
    ``height`` pixels (display ``aspect``); None when the picture is not wider than the box, and there is
    nothing to follow sideways (the window is then centred like ``center``)."""
    box_aspect = Fraction(box_w, box_h) * sar
    if aspect <= box_aspect:
        return None
    source_sar = aspect / Fraction(width, height)
    window = min(width, _even(height * box_aspect / source_sar))
    return window if window < width else None


def geometry(aspect: Fraction, width: int, height: int, box_w: int, box_h: int, framing: str,
             in_matrix: str, out_matrix: str, sar: Fraction = Fraction(1), commands: str = "") -> list[Filter]:
    """Filters that put a picture of display ``aspect`` into a box of ``box_w`` x ``box_h`` pixels of shape
    ``sar`` without stretching it. ``follow`` crops like ``center`` and moves the crop window sideways by the
    ``commands`` file (ffmpeg's sendcmd), which the worker writes from the analysis's crop path."""
    box_aspect = Fraction(box_w, box_h) * sar
    if framing == "follow":
        window = follow_window(aspect, width, height, box_w, box_h, sar)
        if window is None or not commands:
            return geometry(aspect, width, height, box_w, box_h, "center", in_matrix, out_matrix, sar)
        # x is an expression evaluated on every frame: the commands replace it, one linear piece at a time
        chain = [flt("sendcmd", f=commands), flt("crop", window, height, x=f"{(width - window) // 2}", y=0)]
        return chain + geometry(Fraction(window, height) * (aspect / Fraction(width, height)), window, height,
                                box_w, box_h, "center", in_matrix, out_matrix, sar)
    if framing == "fit":  # the whole picture, centred over a blurred copy that fills the box
        background = geometry(aspect, width, height, box_w // 4 * 2, box_h // 4 * 2, "center", in_matrix,
                              out_matrix, sar)
        background += [flt("boxblur", luma_radius=min(box_w, box_h) // 40, luma_power=2),
                       flt("scale", box_w, box_h)]
        foreground = geometry(aspect, width, height, box_w, box_h, "pad", in_matrix, out_matrix, sar)
        pad = next((f for f in foreground if f[0] == "pad"), None)
        if pad is None:  # same shape as the box: nothing to fill
            return foreground
        foreground.remove(pad)
        return [flt(OVERLAY, background, foreground, x=pad[1][2], y=pad[1][3])]
    chain = []
    if framing == "pad":
        if aspect > box_aspect:
            w, h = box_w, min(box_h, _even(box_w * sar / aspect))
        else:
            w, h = min(box_w, _even(box_h * aspect / sar)), box_h
    else:  # "center": crop the source to the box's shape first, so no more pixels than needed are scaled
        source_sar = aspect / Fraction(width, height)
        if aspect > box_aspect:
            cw, ch = min(width, _even(height * box_aspect / source_sar)), height
        else:
            cw, ch = width, min(height, _even(width * source_sar / box_aspect))
        if (cw, ch) != (width, height):
            chain.append(flt("crop", cw, ch, (width - cw) // 2, (height - ch) // 2))
        w, h = box_w, box_h
        width, height = cw, ch
    if (w, h) != (width, height) or in_matrix != out_matrix:
        chain.append(flt("scale", w, h, in_color_matrix=in_matrix, out_color_matrix=out_matrix))
    chain.append(flt("setsar", f"{sar.numerator}/{sar.denominator}" if sar != 1 else 1))
    if (w, h) != (box_w, box_h):
        chain.append(flt("pad", box_w, box_h, (box_w - w) // 2, (box_h - h) // 2, color="black"))
    return chain


# ---------------------------------------------------------------------------------------------------------
# a filter tree, turned into one ffmpeg-python graph (splits inserted where a stream feeds several)


@dataclass
class Chain:
    filters: list[Filter] = field(default_factory=list)
    children: list[Chain] = field(default_factory=list)
    sinks: list[str] = field(default_factory=list)

    def child(self, *filters: Filter) -> Chain:
        node = Chain(list(filters))
        self.children.append(node)
        return node


OVERLAY = "overlay-of-branches"  # a pseudo-filter: split, filter each branch, overlay the second on the first


def _apply(stream: Any, filters: list[Filter]) -> Any:
    for name, args, kwargs in filters:
        if name == OVERLAY:
            split = stream.filter_multi_output("split", 2)
            below, above = _apply(split[0], args[0]), _apply(split[1], args[1])
            stream = ffmpeg.overlay(below, above, **dict(kwargs))
        else:
            stream = stream.filter(name, *args, **dict(kwargs))
    return stream


def _emit(stream: Any, chain: Chain, sinks: dict[str, Any], audio: bool) -> None:
    stream = _apply(stream, chain.filters)
    fan = len(chain.children) + len(chain.sinks)
    outs = [stream] if fan == 1 else [stream.filter_multi_output("asplit" if audio else "split", fan)[i]
                                      for i in range(fan)]
    for label, out in zip(chain.sinks, outs):
        sinks[label] = out
    for node, out in zip(chain.children, outs[len(chain.sinks):]):
        _emit(out, node, sinks, audio)


# ---------------------------------------------------------------------------------------------------------
# the programme audio


def programme_streams(source: SourceInfo) -> list[AudioStreamInfo]:
    """The audio that makes the stereo programme: the default stream, or two mono tracks as L/R."""
    audio = sorted(source.audio, key=lambda a: (not a.default, a.index))
    if not audio:
        return []
    first = audio[0]
    if first.channels == 1:
        partner = next((a for a in source.audio if a.index != first.index and a.channels == 1), None)
        if partner is not None:
            return sorted([first, partner], key=lambda a: a.index)
    return [first]


def _stereo_filters(stream: AudioStreamInfo) -> list[Filter]:
    # channelmap rather than pan: ffmpeg-python escapes the '=' that pan's syntax needs
    if stream.channels == 1:
        return [flt("channelmap", map="0|0", channel_layout="stereo")]
    if stream.channels == 2 and stream.layout == "stereo":
        return []
    if stream.channels > 2 and not re.fullmatch(r"\d+ channels|", stream.layout):
        return [flt("aformat", channel_layouts="stereo")]  # the standard downmix
    return [flt("channelmap", map="0|1", channel_layout="stereo")]


def programme_start(source: SourceInfo) -> float:
    """Where every output's 0 lies on the source's own clock (ffmpeg reads sources with -copyts, so a timestamp
    means the same to it as to PyAV, and a filter graph that is rebuilt mid-stream keeps the same origin): the
    first picture that decodes; without usable picture times, the programme audio's start."""
    if source.video and not source.video[0].retimed:
        return source.video[0].start_time
    programme = programme_streams(source)
    return programme[0].start_time if programme else 0.0


def _sync_filters(start: float) -> list[Filter]:
    """Audio on the picture's clock: time 0 at the programme's start; audio before it is cut, a late start is
    preceded by silence (aresample pads or trims to its first_pts, and fills gaps in the timestamps)."""
    return [flt("asetpts", f"PTS-{start:.6f}/TB"), flt("aresample", AUDIO_RATE, **{"async": 1, "first_pts": 0})]


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


# ---------------------------------------------------------------------------------------------------------
# encoder and muxer options


def _kbps(value: int) -> str:
    return f"{value}k"


def video_options(spec: VideoSpec, rate: Fraction, threads: int) -> dict[str, Any]:
    gop = gop_frames(spec, rate)
    maxrate = spec.maxrate_kbps or spec.bitrate_kbps
    bufsize = spec.bufsize_bits or maxrate * 2000
    opts: dict[str, Any] = {"c:v": spec.codec, "pix_fmt": spec.pix_fmt, "profile:v": spec.profile}
    if spec.level:
        opts["level:v"] = spec.level
    flags = ["+ildct+ilme"] if spec.scan != "progressive" else []
    if spec.codec == "mpeg2video":
        opts.update({"b:v": _kbps(spec.bitrate_kbps), "maxrate": _kbps(maxrate), "bufsize": bufsize,
                     "g": gop, "bf": spec.bframes, "sc_threshold": 0 if spec.scene_cut else 1000000000})
        if spec.rate_control == "cbr":
            opts.update({"minrate": _kbps(spec.bitrate_kbps), "rc_init_occupancy": bufsize})
        if spec.closed_gop and gop > 1:
            flags.append("+cgop")
            opts["mpv_flags"] = "+strict_gop"  # without it +cgop shrinks the GOP
    else:
        opts["preset"] = spec.preset
        if threads:
            opts["threads"] = threads
        if "avcintra" in spec.x264_params:
            opts["x264-params"] = spec.x264_params  # the class fixes rate, GOP and profile
        else:
            opts.update({"b:v": _kbps(spec.bitrate_kbps), "maxrate": _kbps(maxrate), "bufsize": bufsize,
                         "g": gop, "keyint_min": gop, "bf": spec.bframes,
                         "sc_threshold": 40 if spec.scene_cut else 0})
            params = ["open-gop=0" if spec.closed_gop else "open-gop=1"]
            if spec.rate_control == "cbr":
                params.append("nal-hrd=cbr")
            if spec.x264_params:
                params.append(spec.x264_params)
            opts["x264-params"] = ":".join(params)
    if flags:
        opts["flags"] = "".join(flags)
    return opts


def audio_options(spec: AudioSpec) -> dict[str, Any]:
    opts: dict[str, Any] = {"c:a": spec.codec, "ar": spec.sample_rate}
    if spec.bitrate_kbps:
        opts["b:a"] = _kbps(spec.bitrate_kbps)
    return opts


def container_options(profile: Profile, source: SourceInfo, asset_id: str) -> tuple[dict[str, Any], list[str]]:
    """Muxer options, and extra options that repeat a flag (ffmpeg-python takes each key once)."""
    c = profile.container
    assert c is not None
    opts: dict[str, Any] = {"f": c.format}
    extra: list[str] = []
    if c.faststart:
        opts["movflags"] = "+faststart"
    timecode = start_timecode(profile, source)
    if timecode and profile.video is not None and profile.video.codec == "mpeg2video":
        opts["timecode"] = timecode  # also the GOP headers' timecode
    elif timecode:  # -timecode would also set an MPEG-2 encoder option, which ffmpeg refuses for other encoders
        extra += ["-metadata", f"timecode={timecode}"]
    if c.bext:
        opts.update({"write_bext": 1, "rf64": "auto"})
        extra += ["-metadata", f"description={source.name[:256]}", "-metadata", "originator=onetake",
                  "-metadata", f"originator_reference={asset_id[:32]}",
                  "-metadata", f"origination_date={source.modified}", "-metadata", "origination_time=00:00:00"]
    return opts, extra


def timecode_seconds(timecode: str, rate: Fraction) -> float | None:
    """Seconds since midnight of an SMPTE timecode counted at ``rate`` (';' marks drop-frame); None if invalid."""
    m = re.fullmatch(r"(\d\d):(\d\d):(\d\d)([:;.,])(\d\d)", timecode)
    if not m or rate <= 0:
        return None
    hh, mm, ss, ff = (int(m.group(i)) for i in (1, 2, 3, 5))
    nominal = round(rate)
    if hh > 23 or mm > 59 or ss > 59 or ff >= nominal:
        return None
    frames = (hh * 3600 + mm * 60 + ss) * nominal + ff
    if m.group(4) in ";," and rate.denominator == 1001:  # drop-frame: labels 0 and 1 (0-3 at 59.94) skipped
        drop = 2 * nominal // 30
        minutes = hh * 60 + mm
        frames -= drop * (minutes - minutes // 10)
    return frames / float(rate)


def format_timecode(seconds: float, rate: Fraction) -> str:
    """Non-drop-frame SMPTE timecode at ``rate`` for a time of day (wrapping at 24 h)."""
    nominal = round(rate)
    frames = round(seconds * float(rate)) % (24 * 3600 * nominal)
    ss, ff = divmod(frames, nominal)
    return f"{ss // 3600:02d}:{ss // 60 % 60:02d}:{ss % 60:02d}:{ff:02d}"


def start_timecode(profile: Profile, source: SourceInfo) -> str:
    """The output's start timecode: the source's, re-counted at the output's frame rate, or the profile's."""
    c = profile.container
    if c is None:
        return ""
    if c.source_timecode and source.timecode and source.video and profile.video is not None:
        source_rate = source.video[0].rate
        seconds = timecode_seconds(source.timecode, source_rate)
        if seconds is not None:
            return format_timecode(seconds, output_rate(source_rate, profile.video))
    return c.start_timecode


# ---------------------------------------------------------------------------------------------------------
# the plan


@dataclass
class _Rendition:
    key: str
    profile: Profile
    commands: str = ""  # the follow crop's sendcmd file, for a rendition that follows the subject

    @property
    def file_name(self) -> str:
        if self.profile.kind == "sprite":
            return "sprite-%03d.jpg"
        assert self.profile.container is not None
        return f"{self.profile.name}.{self.profile.container.extension}"


def _check_fit(source: SourceInfo, channel: str, profiles: Sequence[Profile]) -> None:
    for p in profiles:
        if p.kind in VIDEO_KINDS and not source.video:
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


def ladder_rungs(source: SourceInfo, profile: Profile, catalog: Catalog) -> list[Profile]:
    """The rungs of a ladder that fit the source: none that would upscale it, always at least one."""
    assert profile.hls is not None
    v = source.video[0]
    height = v.display_size[1]

    def fits(rung: Profile) -> bool:
        assert rung.video is not None
        box = Fraction(rung.video.width, rung.video.height)
        # a picture wider than the box is limited by its width, a narrower one by its height
        limit = height * v.display_aspect / box if v.display_aspect > box else height
        return rung.video.height <= limit

    rungs = sorted((catalog.profile(r) for r in profile.hls.rungs), key=lambda p: -p.video.height)  # type: ignore
    return [r for r in rungs if fits(r)] or rungs[-1:]


def default_channels(source: SourceInfo, catalog: Catalog) -> tuple[str, ...]:
    """Every channel the source can feed: no picture channels without video, no radio without audio."""
    def feeds(channel: str) -> bool:
        kinds = {p.kind for p in catalog.channel(channel)}
        return (bool(source.video) or not kinds & set(VIDEO_KINDS)) and (bool(source.audio) or "audio" not in kinds)

    return tuple(c for c in catalog.channels if feeds(c))


def plan_job(source: SourceInfo, channels: Sequence[str] | None, catalog: Catalog,
             options: PlanOptions) -> JobPlan:
    """Everything that running ``channels`` for ``source`` takes, as data."""
    channels = tuple(channels) if channels else default_channels(source, catalog)
    if not channels:
        raise PlanError(f"{source.path}: no channel can be made from this source")
    asset_id = asset_id_for(source)
    work = options.work_dir.rstrip("/")
    notes: list[str] = []
    renditions: dict[str, _Rendition] = {}
    deliverables: dict[str, list[tuple[str, Profile]]] = {}

    def need(profile: Profile) -> str:
        key = rendition_key(source, profile, options)
        renditions.setdefault(key, _Rendition(key, profile))
        return key

    notes += _damage_notes(source, options)
    if source.video and source.video[0].lead_skipped:
        notes.append(f"the first {source.video[0].lead_skipped:.2f} s of the video cannot be decoded (the file starts "
                     f"mid-GOP): every output starts at its first whole picture")
    if source.video and source.video[0].hdr:
        v = source.video[0]
        carried = f" with {v.hdr_metadata} metadata" if v.hdr_metadata else ""
        notes.append(f"the source is HDR ({v.hdr}{carried}): every output is tone-mapped to BT.709 SDR")
    if source.video and source.video[0].retimed:
        notes.append(f"the video's timestamps are broken (they put hundreds of pictures in a second): its pictures "
                     f"are timed at {float(source.video[0].rate):g} fps instead")
    if source.video and source.video[0].vbi_lines:
        notes.append(f"the top {source.video[0].vbi_lines} lines of each frame carry VBI data (D-10): they are not "
                     f"part of any output")
    for channel in channels:
        profiles = catalog.channel(channel)
        _check_fit(source, channel, profiles)
        items: list[tuple[str, Profile]] = []
        for p in profiles:
            if p.kind == "hls":
                for rung in ladder_rungs(source, p, catalog):
                    need(rung)
                items.append(("hls", p))
            else:
                items.append((need(p), p))
        deliverables[channel] = items

    tasks: list[Task] = []
    limits = options.farm.limits(programme_duration(source))
    measure_id = None
    programme = programme_streams(source)
    targets = list(dict.fromkeys(t for r in renditions.values() if (t := loudness_target(r.profile)) is not None))
    if programme and targets:
        measure_id = f"{asset_id}/measure"
        tasks.append(Task(measure_id, "measure", {
            "argv": measure_argv(source, programme), "trial": trial_argv(source, programme, targets),
            "targets": [t.to_dict() for t in targets], "source": source.path, "limits": limits,
            "cache": f"{work}/loudness/{loudness_key(source, targets, options)}.json"}))
    elif not programme and targets:
        notes.append("the source has no audio: loudness is not normalised")
    if not programme:
        targets = []

    # one analysis per source, shared by follow framing, QC and the report; the shared encode does not wait for
    # it (every deliver does: QC and the report need it)
    analyze_id = f"{asset_id}/analyze"
    analysis_file = f"{work}/analysis/{analysis_key(source)}.json"
    tasks.append(Task(analyze_id, "analyze", {"source": source.path, "cache": analysis_file, "limits": limits}))

    # a rendition that follows the subject needs the analysis: it gets an encode of its own, so that the
    # shared encode of every other rendition starts at once
    followers = [r for r in renditions.values() if follows(source, r.profile)]
    shared = [r for r in renditions.values() if r not in followers]
    encode_of: dict[str, str] = {}
    path_of: dict[str, str] = {}
    groups = [(f"{asset_id}/encode", shared, ())] if shared else []
    for r in followers:
        r.commands = f"{work}/renditions/{r.key}.partial/{FOLLOW_COMMANDS}"
        groups.append((f"{asset_id}/encode/{r.profile.name}", [r], (analyze_id,)))
    for encode_id, members, after in groups:
        argv, encoded = _encode_argv(source, members, asset_id, work, options, programme, targets)
        params: dict[str, Any] = {
            "argv": argv, "source": source.path, "duration": programme_duration(source), "limits": limits,
            "outputs": [{"key": r.key, "profile": r.profile.name, "partial": f"{work}/renditions/{r.key}.partial",
                         "final": f"{work}/renditions/{r.key}"} for r in encoded]}
        if after:
            params["follow"] = follow_params(source, members[0])
        tasks.append(Task(encode_id, "encode", params, deps=(*after, *((measure_id,) if measure_id else ())),
                          heavy=True))
        for r in encoded:
            encode_of[r.key] = encode_id
            path_of[r.key] = f"{work}/renditions/{r.key}/{r.file_name}"
    report_id = f"{asset_id}/report"
    report_file = f"{work}/reports/{analysis_key(source)}/{REPORT_NAME}"
    tasks.append(Task(report_id, "report", {"source": source.path, "final": report_file, "title": source.name},
                      deps=(analyze_id,)))

    verify_ids: dict[str, str] = {}

    def verify(key: str, profile: Profile, target: str, expect: dict[str, Any], dep: str) -> str:
        task_id = f"{asset_id}/verify/{profile.name}"
        if key not in verify_ids:
            verify_ids[key] = task_id
            # a loudness check needs the source's measurement: a silent output is right only for a silent source
            deps = (dep, measure_id) if measure_id and profile.loudness else (dep,)
            tasks.append(Task(task_id, "verify", {"profile": profile.to_dict(), "path": target,
                                                  "expect": expect, "limits": limits}, deps=deps))
        return verify_ids[key]

    delivers: list[Task] = []
    where = channel_destinations(options.out_dir, options.farm.channel_destinations(), channels)
    for channel, items in deliverables.items():
        files: list[dict[str, Any]] = []
        checks: list[str] = []
        for key, p in items:
            if p.kind == "hls":
                rungs = ladder_rungs(source, p, catalog)
                rung_keys = [rendition_key(source, r, options) for r in rungs]
                pkg_key = hashlib.sha256("|".join([p.content_key(), *rung_keys]).encode()).hexdigest()[:16]
                pkg_id = f"{asset_id}/package/{p.name}"
                pkg_dir = f"{work}/packages/{pkg_key}"
                if not any(t.id == pkg_id for t in tasks):
                    tasks.append(Task(pkg_id, "package", {**_hls_params(source, p, rungs, rung_keys, path_of,
                                                                         pkg_dir), "limits": limits},
                                      deps=tuple(dict.fromkeys(encode_of[k] for k in rung_keys))))
                for rung, rk in zip(rungs, rung_keys):
                    checks.append(verify(rk, rung, path_of[rk], expectations(source, rung, catalog),
                                         encode_of[rk]))
                checks.append(verify(pkg_key, p, pkg_dir, expectations(source, p, catalog), pkg_id))
                files.append({"src": pkg_dir, "dest": p.name, "profile": p.name})
                assert p.hls is not None
                if p.hls.progressive_mp4:
                    files.append({"src": path_of[rung_keys[0]], "dest": f"{p.name}.mp4", "profile": rungs[0].name})
            elif p.kind == "sprite":
                pkg_id = f"{asset_id}/package/{p.name}"
                pkg_dir = f"{work}/packages/{key}"
                sprite = sprite_params(source, p, f"{work}/renditions/{key}", pkg_dir)
                if not any(t.id == pkg_id for t in tasks):
                    tasks.append(Task(pkg_id, "package", sprite, deps=(encode_of[key],)))
                checks.append(verify(key, p, pkg_dir, expectations(source, p, catalog), pkg_id))
                files.append({"src": pkg_dir, "dest": p.name, "profile": p.name})
            else:
                checks.append(verify(key, p, path_of[key], expectations(source, p, catalog), encode_of[key]))
                assert p.container is not None
                files.append({"src": path_of[key], "dest": f"{p.name}.{p.container.extension}", "profile": p.name})
        files.append({"src": report_file, "dest": REPORT_NAME, "profile": "report"})
        rules = catalog.qc.get(channel)
        dest = where[channel].child(asset_id)
        # a failed channel's QC record sits beside its delivery folder, or in the work dir for an S3 destination
        record_dir = f"{work}/qc/{channel}" if dest.is_s3 else str(where[channel])
        deliver = {"channel": channel, "asset_id": asset_id, "dest": str(dest), "files": files, "notes": notes,
                   "qc": {"mode": options.farm.qc, "rules": dataclasses.asdict(rules) if rules else None,
                          "record": f"{record_dir}/{asset_id}.qc.json" if rules else None},
                   "source": {"path": source.url or source.path, "size": source.size, "sha256": source.sha256}}
        if dest.is_s3:
            deliver["transfer"] = options.farm.transfer()
        # deps: the verify results, then the analysis (for QC) and the report, in that order
        delivers.append(Task(f"{asset_id}/deliver/{channel}", "deliver", deliver,
                             deps=(*dict.fromkeys(checks), analyze_id, report_id)))
    tasks.extend(delivers)
    return JobPlan(asset_id=asset_id, source=source, channels=channels, out_dir=options.out_dir,
                   work_dir=options.work_dir, tasks=tuple(tasks), notes=tuple(notes))


def follows(source: SourceInfo, profile: Profile) -> bool:
    """Whether ``profile``'s output moves its crop window with the subject (a picture wider than its box)."""
    spec = profile.video
    if profile.kind != "av" or spec is None or spec.framing != "follow" or not source.video:
        return False
    v = source.video[0]
    return follow_window(v.display_aspect, *v.display_size, spec.width, spec.height, box_sar(spec)) is not None


def follow_params(source: SourceInfo, rendition: _Rendition) -> dict[str, Any]:
    """What the worker needs to turn the analysis's crop path into the sendcmd file: the picture's width and
    the window's, in the pixels the crop filter sees (after rotation, before SAR)."""
    spec = rendition.profile.video
    assert spec is not None
    v = source.video[0]
    width, height = v.display_size
    window = follow_window(v.display_aspect, width, height, spec.width, spec.height, box_sar(spec))
    return {"commands": rendition.commands, "width": width, "window": window}


def programme_duration(source: SourceInfo) -> float:
    """How long every output runs: the picture's duration, or the audio's for audio-only sources."""
    if source.video and source.video[0].duration > 0:
        return round(source.video[0].duration, 6)
    return round(source.duration, 6)


def expectations(source: SourceInfo, profile: Profile, catalog: Catalog) -> dict[str, Any]:
    """What verification expects of ``profile``'s output made from ``source``."""
    if profile.kind == "hls":
        return {"rungs": [r.name for r in ladder_rungs(source, profile, catalog)]}
    if profile.kind == "sprite":
        layout = sprite_params(source, profile, "", "")
        return {"sheets": layout["sheet_count"], "cues": len(layout["cues"])}
    expect: dict[str, Any] = {"duration": programme_duration(source), "has_audio": bool(source.audio)}
    if profile.video is not None and source.video:
        rate = output_rate(source.video[0].rate, profile.video)
        expect["frame_rate"] = f"{rate.numerator}/{rate.denominator}"
        expect["gop"] = gop_frames(profile.video, rate)
    timecode = start_timecode(profile, source)
    if timecode:
        expect["timecode"] = timecode
    return expect


def _input(source: SourceInfo) -> Any:
    # reinit_filter 0: a picture size change mid-stream must not rebuild the graph (which would restart every
    # filter's clock, aresample's padding included); the head's scale takes the new size back to the first
    return ffmpeg.input("file:" + source.path, f=source.format, protocol_whitelist=PROTOCOL_WHITELIST,
                        reinit_filter=0)


GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning", "-y")
SOURCE_ARGS = ("-copyts",)  # every command that reads a source: its timestamps as they are (see programme_start)


def _programme(inp: Any, source: SourceInfo, programme: list[AudioStreamInfo]) -> tuple[Any, list[Filter]]:
    """The programme's input stream and the filters that make it stereo 48 kHz on the picture's clock."""
    start = programme_start(source)
    if len(programme) == 2:
        stream = ffmpeg.filter([inp[str(programme[0].index)], inp[str(programme[1].index)]], "amerge", inputs=2)
        return stream, _sync_filters(start)
    return inp[str(programme[0].index)], _stereo_filters(programme[0]) + _sync_filters(start)


METER = {"peak": "true", "framelog": "verbose"}  # ebur128 as verify reads it; per-block lines below -loglevel info


def measure_argv(source: SourceInfo, programme: list[AudioStreamInfo]) -> list[str]:
    """The programme's integrated loudness and true peak, by ffmpeg's ebur128 (the meter verify uses)."""
    stream, chain = _programme(_input(source), source, programme)
    stream = _apply(stream, [*chain, flt("ebur128", **METER)])
    out = ffmpeg.output(stream, "-", f="null")
    return out.global_args("-nostdin", "-hide_banner", "-nostats", *SOURCE_ARGS).compile(cmd="ffmpeg")


def trial_argv(source: SourceInfo, programme: list[AudioStreamInfo], targets: Sequence[LoudnessTarget]) -> list[str]:
    """Every target's branch as the encode will make it: a lossy one encoded into ``{scratch}/target-N.FORMAT``
    (measured afterwards as verify measures an output), a PCM one metered as it leaves the limiter
    (``ebur128@target-N`` in the log). The measure step runs it until each target lands within its limits."""
    inp = _input(source)
    stream, chain = _programme(inp, source, programme)
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
    _emit(stream, root, sinks, audio=True)
    outputs = []
    for i, target in enumerate(targets):
        if target.lossy:
            opts = {"c:a": target.codec, "ar": AUDIO_RATE, "f": target.container, "t": duration}
            if target.bitrate_kbps:
                opts["b:a"] = _kbps(target.bitrate_kbps)
            outputs.append(ffmpeg.output(sinks[str(i)], f"file:{{scratch}}/target-{i}.{target.container}", **opts))
        else:
            outputs.append(ffmpeg.output(sinks[str(i)], "-", f="null", t=duration))
    return ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-nostats", "-y",
                                                      *SOURCE_ARGS).compile(cmd="ffmpeg")


def _encode_argv(source: SourceInfo, renditions: list[_Rendition], asset_id: str, work: str,
                 options: PlanOptions, programme: list[AudioStreamInfo],
                 targets: list[LoudnessTarget]) -> tuple[list[str], list[_Rendition]]:
    inp = _input(source)
    duration = programme_duration(source)
    video_sinks: dict[str, Any] = {}
    audio_sinks: dict[str, Any] = {}
    encoded = [r for r in renditions if r.profile.kind != "hls"]
    if source.video and any(r.profile.video is not None or r.profile.sprite is not None for r in encoded):
        tree = _video_tree(source, encoded)
        _emit(inp[str(source.video[0].index)], tree, video_sinks, audio=False)
    if any(r.profile.audio is not None for r in encoded):
        _audio_tree(inp, source, encoded, programme, targets, duration, audio_sinks)
    outputs = []
    extras: dict[str, list[str]] = {}
    for r in encoded:
        p = r.profile
        url = f"file:{work}/renditions/{r.key}.partial/{r.file_name}"
        streams = []
        opts: dict[str, Any] = {}
        if p.kind == "sprite":
            opts.update({"f": "image2", "q:v": 4})
            streams.append(video_sinks[r.key])
        elif p.kind == "image":
            assert p.image is not None
            opts.update({"f": "image2", "frames:v": 1, "update": 1, "q:v": p.image.quality})
            streams.append(video_sinks[r.key])
        else:
            if p.video is not None:
                rate = output_rate(source.video[0].rate, p.video)
                streams.append(video_sinks[r.key])
                opts.update(video_options(p.video, rate, options.x264_threads))
            if p.audio is not None:
                tracks = [audio_sinks[k] for k in sorted(audio_sinks) if k.startswith(r.key + "#")]
                streams.extend(tracks)
                if tracks:
                    opts.update(audio_options(p.audio))
            opts["t"] = duration
            muxer, extra = container_options(p, source, asset_id)
            opts.update(muxer)
            if extra:
                extras[url] = extra
        outputs.append(ffmpeg.output(*streams, url, **opts))
    argv = ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS, *SOURCE_ARGS).compile(cmd="ffmpeg")
    for url, extra in extras.items():
        at = argv.index(url)
        argv[at:at] = extra
    return argv, encoded


def _video_tree(source: SourceInfo, renditions: list[_Rendition]) -> Chain:
    v: VideoStreamInfo = source.video[0]
    aspect = v.display_aspect
    width, height = v.display_size
    in_matrix = _source_matrix(v)
    # pictures on the source's clock from 0; a source whose timestamps are broken is timed by counting pictures
    head = [flt("setpts", f"N*{v.rate.denominator}/({v.rate.numerator}*TB)" if v.retimed
                else f"PTS-{programme_start(source):.6f}/TB"),
            # pictures that change size mid-stream (phones, re-encoded feeds) keep the first one's: the graph
            # below is cut for it (ffmpeg passes pictures of that size through untouched)
            flt("scale", *((v.height, v.width) if v.rotation % 180 else (v.width, v.height)))]
    if v.vbi_lines:  # D-10: the VBI lines above the picture are data, not part of any output
        head.append(flt("crop", v.width, v.picture_height, 0, v.vbi_lines))
    if v.hdr:  # every output is SDR: tone-mapped once, before the picture is split
        head += tone_map_filters(v)
    if v.lead_skipped:  # pictures some decoders show broken before the first whole one: never part of the programme
        head.insert(0, flt("trim", start=round(v.start_time - 0.25 / float(v.rate), 6)))
    root = Chain(head)
    progressive: Chain | None = None

    def progressive_base() -> Chain:
        nonlocal progressive
        if progressive is None:
            progressive = root.child(flt("bwdif", mode="send_frame", parity="auto")) if v.interlaced else root
        return progressive

    cascades: dict[tuple[Any, ...], list[_Rendition]] = {}
    for r in renditions:
        p = r.profile
        if p.kind == "sprite":
            assert p.sprite is not None
            s = p.sprite
            node = progressive_base().child(
                flt("fps", f"1/{s.interval_seconds:g}", round="up"),  # a thumbnail for every started interval
                *geometry(aspect, width, height, s.thumb_width, s.thumb_height, "pad", in_matrix, "bt709"),
                flt("tile", f"{s.columns}x{s.rows}"))
            node.sinks.append(r.key)
        elif p.kind == "image":
            assert p.video is not None and p.image is not None
            # never past the last picture: on a source of a frame or two, the first is the still
            at = round(max(0.0, min(programme_duration(source) * p.image.at,
                                    programme_duration(source) - 1 / float(v.rate))), 3)
            node = progressive_base().child(
                flt("select", f"gte(t,{at:g})"),
                *geometry(aspect, width, height, p.video.width, p.video.height, p.video.framing, in_matrix,
                          _output_matrix(p.video), box_sar(p.video)),
                flt("format", "yuvj420p"))
            node.sinks.append(r.key)
        elif p.video is not None and p.video.scan != "progressive":
            _interlaced_branch(root, v, r, in_matrix)
        elif p.video is not None:
            spec = p.video
            rate = output_rate(v.rate, spec)
            group = (rate, spec.framing, Fraction(spec.width, spec.height) * box_sar(spec), spec.burn_timecode)
            cascades.setdefault(group, []).append(r)
    by_rate: dict[Fraction, Chain] = {}
    for (rate, framing, _, _), members in cascades.items():
        if rate not in by_rate:
            by_rate[rate] = progressive_base().child(flt("fps", f"{rate.numerator}/{rate.denominator}"))
        parent = by_rate[rate]
        previous: tuple[int, int] | None = None
        for r in sorted(members, key=lambda m: -(m.profile.video.width * m.profile.video.height)):  # type: ignore
            spec = r.profile.video
            assert spec is not None
            out_matrix = _output_matrix(spec)
            if previous is None:
                node = parent.child(*geometry(aspect, width, height, spec.width, spec.height, framing,
                                              in_matrix, out_matrix, box_sar(spec), r.commands))
            else:  # cascaded: scale the previous rung's picture down, same shape, same padding
                node = parent.child(flt("scale", spec.width, spec.height))
            tail = node.child(*_finish(spec, source, r.profile, rate))
            tail.sinks.append(r.key)
            parent, previous = node, (spec.width, spec.height)
    return root


def _finish(spec: VideoSpec, source: SourceInfo, profile: Profile, rate: Fraction) -> list[Filter]:
    chain = []
    if spec.burn_timecode:
        timecode = start_timecode(profile, source) or "00:00:00:00"
        size = max(12, spec.height // 18)
        chain.append(flt("drawtext", timecode=timecode, rate=f"{rate.numerator}/{rate.denominator}",
                         fontsize=size, fontcolor="white", box=1, boxcolor="black@0.6", boxborderw=size // 4,
                         x="(w-tw)/2", y=f"h-th-{spec.height // 20}"))
    chain += output_format(spec)
    return chain


def colour_tags(spec: VideoSpec) -> dict[str, str]:
    """What an output is tagged as, matching the matrix it was converted to; limited range."""
    if _output_matrix(spec) == "bt709":
        return {"color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709", "range": "tv"}
    return {"color_primaries": "bt470bg", "color_trc": "smpte170m", "colorspace": "bt470bg", "range": "tv"}


def output_format(spec: VideoSpec) -> list[Filter]:
    # setparams, not -color_* options: ffmpeg's encoders take colour from the frames they are given
    return [flt("setparams", **colour_tags(spec)), flt("format", spec.pix_fmt)]


def _interlaced_branch(root: Chain, v: VideoStreamInfo, r: _Rendition, in_matrix: str) -> None:
    """Make a TFF interlaced picture: pass true 25i through, interlace 50p, flag slower rates as PsF."""
    spec = r.profile.video
    assert spec is not None
    rate = output_rate(v.rate, spec)
    width, height = v.display_size
    out_matrix = _output_matrix(spec)
    same_raster = ((width, height) == (spec.width, spec.height)
                   and v.display_aspect == Fraction(spec.width, spec.height) * box_sar(spec))
    if v.interlaced and v.scan == "tff" and v.rate == rate and same_raster and in_matrix == out_matrix:
        chain = [flt("setfield", "tff")]
    elif v.interlaced or v.rate >= 2 * rate - Fraction(1, 10):
        # to fields: deinterlace to double rate (or take 50p/60p as it is), resize, weave back to TFF
        chain = [flt("bwdif", mode="send_field", parity="auto")] if v.interlaced else []
        chain += [flt("fps", f"{2 * rate.numerator}/{rate.denominator}"),
                  *geometry(v.display_aspect, width, height, spec.width, spec.height, spec.framing, in_matrix,
                            out_matrix, box_sar(spec)),
                  flt("interlace", scan="tff", lowpass="linear"), flt("setfield", "tff")]
    else:  # progressive 25p (or slower): segmented frames, flagged TFF
        chain = [flt("fps", f"{rate.numerator}/{rate.denominator}"),
                 *geometry(v.display_aspect, width, height, spec.width, spec.height, spec.framing, in_matrix,
                           out_matrix, box_sar(spec)), flt("setfield", "tff")]
    node = root.child(*chain, *output_format(spec))
    node.sinks.append(r.key)


def _audio_tree(inp: Any, source: SourceInfo, renditions: list[_Rendition], programme: list[AudioStreamInfo],
                targets: list[LoudnessTarget], duration: float, sinks: dict[str, Any]) -> None:
    with_audio = [r for r in renditions if r.profile.audio is not None]
    if programme:
        stream, chain = _programme(inp, source, programme)
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
        for i, track in enumerate(_track_filters(r.profile.audio)):
            node = by_target[index].child(*track)
            node.sinks.append(f"{r.key}#{i}")
    _emit(stream, root, sinks, audio=True)


def _hls_params(source: SourceInfo, profile: Profile, rungs: list[Profile], keys: list[str],
                path_of: dict[str, str], pkg_dir: str) -> dict[str, Any]:
    assert profile.hls is not None
    argv = ["ffmpeg", *GLOBAL_ARGS]
    for k in keys:
        argv += ["-protocol_whitelist", PROTOCOL_WHITELIST, "-f", "mp4", "-i", "file:" + path_of[k]]
    variants = []
    for i, rung in enumerate(rungs):
        argv += ["-map", f"{i}:v:0"]
        if source.audio:
            argv += ["-map", f"{i}:a:0"]
        variants.append(f"v:{i},a:{i},name:{rung.name}" if source.audio else f"v:{i},name:{rung.name}")
    argv += ["-c", "copy", "-f", "hls", "-hls_time", f"{profile.hls.segment_seconds:g}",
             "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
             "-hls_fmp4_init_filename", "init.mp4",
             # plain absolute paths: the hls muxer makes the %v folders from the name as given, 'file:' and all
             "-hls_segment_filename", f"{pkg_dir}.partial/%v/segment_%05d.m4s",
             "-var_stream_map", " ".join(variants), f"{pkg_dir}.partial/%v/index.m3u8"]
    rate_of = {}
    for r in rungs:
        assert r.video is not None
        rate = output_rate(source.video[0].rate, r.video)
        rate_of[r.name] = round(float(rate), 3)
    return {"kind": "hls", "argv": argv, "partial": f"{pkg_dir}.partial", "final": pkg_dir,
            "variants": [{"name": r.name, "width": r.video.width, "height": r.video.height,  # type: ignore
                          "frame_rate": rate_of[r.name], "mp4": path_of[k]} for r, k in zip(rungs, keys)]}


def sprite_params(source: SourceInfo, profile: Profile, sheets_dir: str, pkg_dir: str) -> dict[str, Any]:
    assert profile.sprite is not None
    s = profile.sprite
    duration = programme_duration(source)
    count = max(1, math.ceil(duration / s.interval_seconds - 1e-9))
    per_sheet = s.columns * s.rows
    cues = []
    for i in range(count):
        sheet, pos = divmod(i, per_sheet)
        x, y = (pos % s.columns) * s.thumb_width, (pos // s.columns) * s.thumb_height
        cues.append({"start": round(i * s.interval_seconds, 3),
                     "end": round(min((i + 1) * s.interval_seconds, duration), 3),
                     "image": f"sprite-{sheet + 1:03d}.jpg", "xywh": [x, y, s.thumb_width, s.thumb_height]})
    return {"kind": "sprite", "sheets": sheets_dir, "partial": f"{pkg_dir}.partial", "final": pkg_dir,
            "sheet_count": math.ceil(count / per_sheet), "cues": cues}
