"""The encode: encoder, muxer and timecode options, and the one ffmpeg argv that makes a group of renditions from
one decode (a split video tree, a split audio tree, one output per rendition)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import ffmpeg

from ..models import AudioStreamInfo, SourceInfo, VideoStreamInfo
from ..profiles import AudioSpec, LogoSpec, Profile, VideoSpec
from .audio import LoudnessTarget, audio_tree
from .geometry import (
    audiogram,
    box_sar,
    follow_window,
    geometry,
    gop_frames,
    output_format,
    output_matrix,
    output_rate,
    source_matrix,
    tone_map_filters,
)
from .graph import (
    GLOBAL_ARGS,
    PICTURE_OVER,
    SOURCE_ARGS,
    Chain,
    Filter,
    Pictures,
    apply_filters,
    emit,
    flt,
    kbps,
    source_input,
)
from .params import FollowParams
from .programme import programme_duration, programme_start

# sc_threshold by whether a profile wants keyframes at scene cuts: x264's own default, or none (0); ffmpeg's
# MPEG-2 encoder takes 0 as "at every cut" and needs a threshold it never reaches to place none
X264_SCENE_CUT = {True: 40, False: 0}
MPEG2_SCENE_CUT = {True: 0, False: 1000000000}
SPRITE_QUALITY = 4  # JPEG qscale of thumbnail sheets: small pictures, seen small


def video_options(spec: VideoSpec, rate: Fraction, threads: int) -> dict[str, Any]:
    gop = gop_frames(spec, rate)
    maxrate = spec.maxrate_kbps or spec.bitrate_kbps
    bufsize = spec.bufsize_bits or maxrate * 2000
    opts: dict[str, Any] = {"c:v": spec.codec, "pix_fmt": spec.pix_fmt, "profile:v": spec.profile}
    if spec.level:
        opts["level:v"] = spec.level
    flags = ["+ildct+ilme"] if spec.scan != "progressive" else []
    if spec.codec == "mpeg2video":
        opts.update({"b:v": kbps(spec.bitrate_kbps), "maxrate": kbps(maxrate), "bufsize": bufsize,
                     "g": gop, "bf": spec.bframes, "sc_threshold": MPEG2_SCENE_CUT[spec.scene_cut]})
        if spec.rate_control == "cbr":
            opts.update({"minrate": kbps(spec.bitrate_kbps), "rc_init_occupancy": bufsize})
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
            opts.update({"b:v": kbps(spec.bitrate_kbps), "maxrate": kbps(maxrate), "bufsize": bufsize,
                         "g": gop, "keyint_min": gop, "bf": spec.bframes,
                         "sc_threshold": X264_SCENE_CUT[spec.scene_cut]})
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
        opts["b:a"] = kbps(spec.bitrate_kbps)
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


@dataclass(frozen=True)
class Cut:
    """A chunk of the programme: the pictures from ``start`` seconds on, ``index`` in the chunk order; every rate
    of every rendition puts a picture exactly at ``start`` (it lies on their common GOP grid)."""

    index: int
    start: Fraction     # seconds on the programme's clock
    end: Fraction
    last: bool

    def frames(self, rate: Fraction, total: int) -> int:
        """How many pictures of a rendition at ``rate`` (``total`` in all) lie in the chunk."""
        return (total if self.last else round(self.end * rate)) - round(self.start * rate)


def still_options(profile: Profile) -> dict[str, Any]:
    """The output options of a sprite's sheets or an image rendition's JPEG."""
    if profile.kind == "sprite":
        return {"f": "image2", "q:v": SPRITE_QUALITY}
    assert profile.image is not None
    return {"f": "image2", "frames:v": 1, "update": 1, "q:v": profile.image.quality}


def still_at(source: SourceInfo, profile: Profile) -> float:
    """Where on the programme's clock an image rendition (a poster, a cover) takes its picture: never past the
    last picture (on a source of a frame or two, the first is the still)."""
    assert profile.image is not None
    duration = programme_duration(source)
    return round(max(0.0, min(duration * profile.image.at, duration - 1 / float(source.video[0].rate))), 3)


def thumbnails_in(interval: float, cut: Cut, duration: float) -> tuple[int, int]:
    """The sprite thumbnails a chunk makes, as indices ``first`` up to (not including) ``end``: those whose time
    (one every ``interval`` seconds from 0) lies in the chunk."""
    step = Fraction(str(interval))
    stop = Fraction(str(duration)) if cut.last else cut.end
    return math.ceil(cut.start / step), max(math.ceil(cut.start / step), math.ceil(stop / step))


PREROLL_S = 2.0  # a chunk's seek lands this far before its start: the decoder settles before the first picture kept


def planned_frames(duration: float, rate: Fraction) -> int:
    """The pictures of a whole output at ``rate``: one for every started frame interval of the programme."""
    return max(1, math.ceil(round(duration * rate, 3)))


def pictures_span(duration: float, rate: Fraction) -> float:
    """How long the planned pictures of a programme of ``duration`` run at ``rate``: an output's ``-t``, which
    keeps the pictures that end by then (a stated duration between two pictures would lose the last one)."""
    return float(planned_frames(duration, rate) / rate)


def fps_filter(rate: Fraction, cut: Cut | None) -> Filter:
    """Pictures at ``rate`` on the programme's clock, from its start (or a chunk's) exactly: earlier ones dropped,
    and a first picture that decodes a little late (a capture cut mid-GOP) held from there."""
    return flt("fps", f"{rate.numerator}/{rate.denominator}", start_time=f"{float(cut.start if cut else 0):.6f}")


@dataclass
class Rendition:
    key: str
    profile: Profile
    commands: str = ""  # the follow crop's sendcmd file, for a rendition that follows the subject
    captions: str = ""  # the ASS file of captions burned into it
    fonts: str = ""     # the folder of the fonts it names
    length: float = 0.0  # seconds it runs when not the programme's duration (a chunked picture's sound: its picture's)

    @property
    def file_name(self) -> str:
        if self.profile.kind == "sprite":
            return "sprite-%03d.jpg"
        assert self.profile.container is not None
        return f"{self.profile.name}.{self.profile.container.extension}"


def follow_params(source: SourceInfo, rendition: Rendition) -> FollowParams:
    """What the worker needs to turn the analysis's crop path into the sendcmd file: the picture's width and
    the window's, in the pixels the crop filter sees (after rotation, before SAR)."""
    spec = rendition.profile.video
    assert spec is not None
    v = source.video[0]
    width, height = v.display_size
    window = follow_window(v.display_aspect, width, height, spec.width, spec.height, box_sar(spec))
    return FollowParams(commands=rendition.commands, width=width, window=window)


def encode_argv(source: SourceInfo, renditions: list[Rendition], asset_id: str, work: str,
                 x264_threads: int, programme: list[AudioStreamInfo],
                 targets: list[LoudnessTarget]) -> tuple[list[str], list[Rendition]]:
    inp = source_input(source)
    duration = programme_duration(source)
    video_sinks: dict[str, Any] = {}
    audio_sinks: dict[str, Any] = {}
    encoded = [r for r in renditions if r.profile.kind != "hls"]
    tree = video_tree(source, encoded) if source.video and any(
        r.profile.video is not None or r.profile.sprite is not None for r in encoded) else None
    of_sound = {r.key: _audiogram_finish(r) for r in encoded if audiogram(source, r.profile) and programme}
    # one reading of each overlaid picture file for the whole command, however many outputs show it
    pictures = Pictures(Chain(children=[*([tree] if tree else []), *(Chain(f) for f in of_sound.values())]))
    if tree is not None:
        emit(inp[str(source.video[0].index)], tree, video_sinks, audio=False, pictures=pictures)
    if any(r.profile.audio is not None for r in encoded):
        audio_tree(inp, source, encoded, programme, targets, duration, audio_sinks)
    for r in encoded:
        if r.key in of_sound:
            video_sinks[r.key] = apply_filters(_audiogram(inp, source, r, programme[0]), of_sound[r.key], pictures)
    outputs = []
    extras: dict[str, list[str]] = {}
    for r in encoded:
        p = r.profile
        url = f"file:{work}/renditions/{r.key}.partial/{r.file_name}"
        streams = []
        opts: dict[str, Any] = {}
        if p.kind in ("sprite", "image"):
            opts.update(still_options(p))
            streams.append(video_sinks[r.key])
        else:
            opts["t"] = r.length or duration
            if p.video is not None:
                rate = output_rate(source.video[0].rate if source.video else Fraction(AUDIOGRAM_RATE), p.video)
                streams.append(video_sinks[r.key])
                opts.update(video_options(p.video, rate, x264_threads))
                opts["t"] = r.length or pictures_span(duration, rate)
            if p.audio is not None:
                tracks = [audio_sinks[k] for k in sorted(audio_sinks) if k.startswith(r.key + "#")]
                streams.extend(tracks)
                if tracks:
                    opts.update(audio_options(p.audio))
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


def video_tree(source: SourceInfo, renditions: list[Rendition], cut: Cut | None = None) -> Chain:
    """The split picture tree of ``renditions``; for a chunk, of the pictures in ``cut`` only, each video
    output's clock starting at 0 (a still's stays on the programme's)."""
    v: VideoStreamInfo = source.video[0]
    aspect = v.display_aspect
    width, height = v.display_size
    in_matrix = source_matrix(v)
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

    cascades: dict[tuple[Any, ...], list[Rendition]] = {}
    for r in renditions:
        p = r.profile
        if p.kind == "sprite":
            assert p.sprite is not None
            s = p.sprite
            node = progressive_base().child(
                flt("fps", f"1/{s.interval_seconds:g}", round="up"),  # a thumbnail for every started interval
                *geometry(aspect, width, height, s.thumb_width, s.thumb_height, "pad", in_matrix, "bt709"),
                # the JPEG's pixels made here, by the thumbnail's scaler, whether the sheet is tiled now or later
                flt("format", "yuvj420p"))
            if cut is None:
                node.filters.append(flt("tile", f"{s.columns}x{s.rows}"))
            else:  # the chunk's own thumbnails, to be tiled once all are made
                first, end = thumbnails_in(s.interval_seconds, cut, programme_duration(source))
                interval = Fraction(str(s.interval_seconds))
                node.filters.append(flt("select", f"between(t,{float((first - Fraction(1, 2)) * interval):.6f},"
                                                  f"{float((end - Fraction(1, 2)) * interval):.6f})"))
            node.sinks.append(r.key)
        elif p.kind == "image":
            assert p.video is not None and p.image is not None
            at = still_at(source, p)
            assert cut is None or cut.start <= Fraction(str(at)) < cut.end, "a still is made by the chunk it is in"
            node = progressive_base().child(
                flt("select", f"gte(t,{at:g})"),
                *geometry(aspect, width, height, p.video.width, p.video.height, p.video.framing, in_matrix,
                          output_matrix(p.video), box_sar(p.video)),
                *logo_filters(p.video, p.logo), flt("format", "yuvj420p"))
            node.sinks.append(r.key)
        elif p.video is not None and p.video.scan != "progressive":
            assert cut is None or p.kind == "av", "only whole pictures and stills are chunked"
            _interlaced_branch(root, v, r, in_matrix, cut)
        elif p.video is not None:
            spec = p.video
            rate = output_rate(v.rate, spec)
            group = (rate, spec.framing, Fraction(spec.width, spec.height) * box_sar(spec), spec.burn_timecode)
            cascades.setdefault(group, []).append(r)
    by_rate: dict[Fraction, Chain] = {}
    for (rate, framing, _, _), members in cascades.items():
        if rate not in by_rate:
            by_rate[rate] = progressive_base().child(fps_filter(rate, cut))
        parent = by_rate[rate]
        previous: tuple[int, int] | None = None
        for r in sorted(members, key=lambda m: -(m.profile.video.width * m.profile.video.height)):  # type: ignore
            spec = r.profile.video
            assert spec is not None
            out_matrix = output_matrix(spec)
            if previous is None:
                node = parent.child(*geometry(aspect, width, height, spec.width, spec.height, framing,
                                              in_matrix, out_matrix, box_sar(spec), r.commands))
            else:  # cascaded: scale the previous rung's picture down, same shape, same padding
                node = parent.child(flt("scale", spec.width, spec.height))
            tail = node.child(*_finish(spec, source, r, rate, cut))
            tail.sinks.append(r.key)
            parent, previous = node, (spec.width, spec.height)
    return root


def logo_filters(spec: VideoSpec, logo: LogoSpec | None) -> list[Filter]:
    """The logo over the picture, in its corner of the raster's safe area, sized by the raster's height (and
    widened back where the raster's pixels are not square)."""
    if logo is None or not logo.enabled or not logo.file:
        return []
    w, h = spec.width, spec.height
    vertical, horizontal = logo.corner.split("-")
    inset_x = round(w * (spec.safe_left if horizontal == "left" else spec.safe_right) + h * logo.margin)
    inset_y = round(h * (spec.safe_top if vertical == "top" else spec.safe_bottom) + h * logo.margin)
    x = inset_x if horizontal == "left" else f"main_w-overlay_w-{inset_x}"
    y = inset_y if vertical == "top" else f"main_h-overlay_h-{inset_y}"
    sar = box_sar(spec)
    width = -1 if sar == 1 else f"round(oh*a/{float(sar):.6f})"
    return [flt(PICTURE_OVER, logo.file, width, round(h * logo.height), logo.opacity, x=x, y=y)]


AUDIOGRAM_RATE = 25


def _audiogram(inp: Any, source: SourceInfo, rendition: Rendition, programme: AudioStreamInfo) -> Any:
    """A picture made from the sound: the cover cropped to fill the raster (or a plain background) and, for a
    video, the programme's waveform across it."""
    spec, look = rendition.profile.video, rendition.profile.audiogram
    assert spec is not None and look is not None
    w, h = spec.width, spec.height
    still = rendition.profile.kind == "image"
    rate = output_rate(Fraction(AUDIOGRAM_RATE), spec)
    fps = f"{rate.numerator}/{rate.denominator}"
    if source.cover:  # its name as it is: a '%d' in it is no image sequence
        picture = ffmpeg.input("file:" + source.cover, f="image2", pattern_type="none", loop=1, framerate=fps)
    else:
        picture = ffmpeg.input(f"color=c={look.background}:s={w}x{h}:r={fps}", f="lavfi")
    if still:  # one picture (which also keeps its chain apart from the video's)
        picture = picture.filter("trim", end_frame=1)
    if source.cover:
        picture = (picture.filter("scale", w, h, force_original_aspect_ratio="increase").filter("crop", w, h)
                   .filter("setsar", 1))
    if rendition.profile.kind == "av":
        # one wave for all channels; also keeps this chain apart from the audio tree's (same input, same start)
        wave = (inp[str(programme.index)].filter("aformat", channel_layouts="mono")
                .filter("asetpts", f"PTS-{programme_start(source):.6f}/TB")
                .filter("showwaves", s=f"{w}x{round(h * look.wave_height) // 2 * 2}", mode="cline",
                        rate=fps, colors=look.wave_colour, scale="sqrt", draw="full"))
        picture = ffmpeg.overlay(picture, wave, x=0, y=round(h * look.wave_at), shortest=1)
    return picture


def _audiogram_finish(rendition: Rendition) -> list[Filter]:
    """The logo and the burned-in title and captions over a picture made from the sound."""
    spec = rendition.profile.video
    assert spec is not None
    finish = [*logo_filters(spec, rendition.profile.logo)]
    if rendition.captions:
        finish.append(flt("subtitles", filename=rendition.captions, fontsdir=rendition.fonts))
    return finish + (output_format(spec) if rendition.profile.kind == "av" else [flt("format", "yuvj420p")])


def _finish(spec: VideoSpec, source: SourceInfo, rendition: Rendition, rate: Fraction,
            cut: Cut | None) -> list[Filter]:
    profile = rendition.profile
    chain = logo_filters(spec, profile.logo)
    if rendition.captions:
        chain.append(flt("subtitles", filename=rendition.captions, fontsdir=rendition.fonts))
    if spec.burn_timecode:
        timecode = chunk_timecode(start_timecode(profile, source) or "00:00:00:00", rate, cut)
        size = max(12, spec.height // 18)
        chain.append(flt("drawtext", timecode=timecode, rate=f"{rate.numerator}/{rate.denominator}",
                         fontsize=size, fontcolor="white", box=1, boxcolor="black@0.6", boxborderw=size // 4,
                         x="(w-tw)/2", y=f"h-th-{spec.height // 20}"))
    return chain + output_format(spec) + output_clock(cut)


def output_clock(cut: Cut | None) -> list[Filter]:
    """The end of a video output's chain, after every filter that reads the programme's clock (captions, the
    follow crop). The last picture is held for as long as the programme runs, its output's ``-t`` (real files
    often end a picture or two short of their stated duration: a capture cut mid-GOP loses the B-pictures that
    pointed past its end; the sound runs its length); in a chunk, only the last chunk's, and a chunk's pictures
    are timed from 0: the join lays the chunks end to end."""
    hold = [flt("tpad", stop=-1, stop_mode="clone")] if cut is None or cut.last else []
    return [*hold, *([flt("setpts", "PTS-STARTPTS")] if cut is not None else [])]


def chunk_timecode(timecode: str, rate: Fraction, cut: Cut | None) -> str:
    """The timecode of a chunk's first picture, for an output that starts at ``timecode``."""
    seconds = timecode_seconds(timecode, rate) if cut is not None and cut.start else None
    return timecode if seconds is None or cut is None else format_timecode(seconds + float(cut.start), rate)


def _interlaced_branch(root: Chain, v: VideoStreamInfo, r: Rendition, in_matrix: str, cut: Cut | None) -> None:
    """Make a TFF interlaced picture: pass true 25i through, interlace 50p, flag slower rates as PsF."""
    spec = r.profile.video
    assert spec is not None
    rate = output_rate(v.rate, spec)
    width, height = v.display_size
    out_matrix = output_matrix(spec)
    same_raster = ((width, height) == (spec.width, spec.height)
                   and v.display_aspect == Fraction(spec.width, spec.height) * box_sar(spec))
    if v.interlaced and v.scan == "tff" and v.rate == rate and same_raster and in_matrix == out_matrix:
        chain = [fps_filter(rate, cut), flt("setfield", "tff")]
    elif v.interlaced or v.rate >= 2 * rate - Fraction(1, 10):
        # to fields: deinterlace to double rate (or take 50p/60p as it is), resize, weave back to TFF
        chain = [flt("bwdif", mode="send_field", parity="auto")] if v.interlaced else []
        chain += [fps_filter(2 * rate, cut),  # a chunk starts on a whole frame: its first two fields
                  *geometry(v.display_aspect, width, height, spec.width, spec.height, spec.framing, in_matrix,
                            out_matrix, box_sar(spec)),
                  flt("interlace", scan="tff", lowpass="linear"), flt("setfield", "tff")]
    else:  # progressive 25p (or slower): segmented frames, flagged TFF
        chain = [fps_filter(rate, cut),
                 *geometry(v.display_aspect, width, height, spec.width, spec.height, spec.framing, in_matrix,
                           out_matrix, box_sar(spec)), flt("setfield", "tff")]
    node = root.child(*chain, *logo_filters(spec, r.profile.logo), *output_format(spec), *output_clock(cut))
    node.sinks.append(r.key)
