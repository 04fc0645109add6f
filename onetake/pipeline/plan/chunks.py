"""Chunked encoding of a long programme, as data: where it is cut, the chunk tasks that encode its pictures stretch
by stretch on any worker, and the join that lays them end to end with the whole programme's sound.

Cuts lie on a grid every chunked rendition has a keyframe on (the least common multiple of their GOP durations, so
HLS segments keep their 2 s cadence across a join); each chunk is decoded frame-accurately from a seek before its
start (never a stream copy of the source) and starts a closed GOP. Sound is never chunked: AAC cut with the picture
and joined again drifts by a frame's priming per join, so each rendition's sound is made once, by its loudness
target's whole-file sound encode, and muxed once. The stills (poster, cover, sprite) ride along the chunks'
decode: no second decode of the whole programme is made for them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import ffmpeg

from ..models import SourceInfo
from ..profiles import CheckSpec, ContainerSpec, Profile, VideoSpec
from .encode import (
    PREROLL_S,
    Cut,
    Rendition,
    chunk_timecode,
    container_options,
    pictures_span,
    planned_frames,
    start_timecode,
    still_at,
    still_options,
    thumbnails_in,
    video_options,
    video_tree,
)
from .geometry import audiogram, gop_frames, output_rate
from .graph import GLOBAL_ARGS, SOURCE_ARGS, emit, source_input
from .params import ChunkParams, EncodeOutput, JoinedRendition, JoinedStill, JoinParams, JoinReference, Limits
from .programme import programme_duration, programme_start


@dataclass(frozen=True)
class ChunkFile:
    """How an encoder's chunks are kept and joined: H.264 with B-frames in MP4 (its timestamps kept) through
    ffmpeg's concat demuxer; closed-GOP MPEG-2 and intra-only H.264 (AVC-Intra, whose encoder writes no separate
    headers for MP4) as elementary streams, byte for byte."""

    muxer: str
    extension: str
    method: Literal["concat", "bytes"]
    demuxer: str = ""   # what reads the joined elementary stream


LONG_GOP_H264 = ChunkFile("mp4", "mp4", "concat")
INTRA_H264 = ChunkFile("h264", "h264", "bytes", "h264")
MPEG2 = ChunkFile("mpeg2video", "m2v", "bytes", "mpegvideo")


def chunk_file(spec: VideoSpec) -> ChunkFile:
    if spec.codec == "mpeg2video":
        return MPEG2
    return INTRA_H264 if "avcintra" in spec.x264_params else LONG_GOP_H264


SOUND_SUFFIX = "-sound"
REFERENCE_SIDE = 3           # pictures on each side of a join that the sync gate compares
REFERENCE_PREROLL_S = 1.0    # how much further back than a chunk's the gate's reference decode seeks from
GATE_THUMB = 64              # the sync gate compares pictures as grey thumbnails of this side, area-averaged


def chunkable(source: SourceInfo, profile: Profile) -> bool:
    """Whether ``profile``'s rendition of ``source`` can be made in chunks: a picture from the source's pictures,
    by an encoder whose chunks join without re-encoding, on a clock a seek can find."""
    v = source.video[0] if source.video else None
    return (profile.kind == "av" and profile.video is not None and v is not None and not v.retimed
            and profile.video.codec in ("libx264", "mpeg2video") and not audiogram(source, profile))


def gop_grid(source: SourceInfo, renditions: list[Rendition]) -> Fraction:
    """The shortest stretch (seconds) every rendition's GOP divides: a cut on it starts a GOP in all of them."""
    grid = Fraction(0)
    for r in renditions:
        assert r.profile.video is not None
        rate = output_rate(source.video[0].rate, r.profile.video)
        gop = Fraction(gop_frames(r.profile.video, rate)) / rate
        grid = gop if not grid else Fraction(math.lcm(grid.numerator, gop.numerator),
                                             math.gcd(grid.denominator, gop.denominator))
    return grid


def cuts(duration: float, grid: Fraction, chunk_s: float) -> list[Cut]:
    """Chunks of about ``chunk_s`` seconds on ``grid``; a short tail joins the chunk before it."""
    end = Fraction(str(duration))
    step = grid * max(1, round(Fraction(str(chunk_s)) / grid))
    starts = [step * i for i in range(math.ceil(end / step))]
    if len(starts) > 1 and end - starts[-1] < step / 2:
        starts.pop()
    return _between(starts, end)


def even_cuts(duration: float, grid: Fraction, pieces: int) -> list[Cut]:
    """``pieces`` chunks as even as ``grid`` allows (each within a grid step of an even share; fewer where the grid
    is coarser than a share): side by side, the programme is ready when its longest chunk is."""
    end = Fraction(str(duration))
    starts = sorted({grid * round(end * i / pieces / grid) for i in range(pieces)} - {end})
    return _between(starts, end)


def _between(starts: list[Fraction], end: Fraction) -> list[Cut]:
    return [Cut(i, start, starts[i + 1] if i + 1 < len(starts) else end, i + 1 == len(starts))
            for i, start in enumerate(starts)]


def analysis_stretches(source: SourceInfo, chunk_s: float) -> list[Cut]:
    """The stretches a long programme's pictures are analysed in, side by side (about ``chunk_s`` each, in whole
    pictures): none where a seek cannot find a picture by its time, or there are no pictures."""
    v = source.video[0] if source.video else None
    if v is None or v.retimed:
        return []
    found = cuts(programme_duration(source), 1 / v.rate, chunk_s)
    return found if len(found) > 1 else []


def series(source: SourceInfo, renditions: list[Rendition], chunk_s: float,
           pieces: int = 0) -> list[tuple[list[Rendition], list[Cut]]]:
    """The chunked renditions in series that share their cuts: those of one output rate together (one decode
    per chunk), as long as their common grid fits in a chunk. ``pieces``: cut into that many even chunks instead
    (as far as the common grid allows), whatever ``chunk_s`` says."""
    by_rate: dict[Fraction, list[Rendition]] = {}
    for r in renditions:
        assert r.profile.video is not None
        by_rate.setdefault(output_rate(source.video[0].rate, r.profile.video), []).append(r)
    found = []
    for members in by_rate.values():
        grid = gop_grid(source, members)
        if pieces:
            found.append((members, even_cuts(programme_duration(source), grid, pieces)))
        elif grid > chunk_s:  # GOPs of very different lengths: each rendition is cut on its own grid
            found += [([r], cuts(programme_duration(source), gop_grid(source, [r]), chunk_s)) for r in members]
        else:
            found.append((members, cuts(programme_duration(source), grid, chunk_s)))
    return [(members, found_cuts) for members, found_cuts in found if len(found_cuts) > 1]


def sound_rendition(source: SourceInfo, rendition: Rendition) -> Rendition:
    """The sound of a chunked rendition, made once for the whole programme by its loudness target's sound encode:
    its tracks, codec and loudness as the rendition has them, in a MOV (which keeps AAC's priming in its edit
    list), as long as the rendition's picture (the programme rounded up to a whole picture)."""
    profile = rendition.profile
    assert profile.video is not None
    rate = output_rate(source.video[0].rate, profile.video)
    sound = dataclasses.replace(profile, name=f"{profile.name}{SOUND_SUFFIX}", kind="audio", video=None,
                                container=ContainerSpec(format="mov", extension="mov"), logo=None, captions=None,
                                audiogram=None, hls=None, checks=CheckSpec())  # what makes no sound of its own
    return Rendition(f"{rendition.key}{SOUND_SUFFIX}", sound, length=pictures_span(programme_duration(source), rate))


def has_sound(source: SourceInfo, profile: Profile, programme: bool) -> bool:
    return profile.audio is not None and (programme or profile.audio.silence_if_missing)


def rides_along(source: SourceInfo, rendition: Rendition) -> bool:
    """Whether a still (a poster, a cover, a sprite) of ``source`` can be made by the chunks' decode: a picture
    of the source's, framed without the analysis."""
    p = rendition.profile
    jpeg = p.kind == "sprite" or p.container is not None and p.container.extension in ("jpg", "jpeg")
    return (p.kind in ("image", "sprite") and jpeg and bool(source.video) and not source.video[0].retimed
            and not rendition.commands and not audiogram(source, p))


def still_part(folder: str, still: Rendition) -> str:
    """What a chunk makes of a still: an image's JPEG, or a sprite's thumbnails as raw pictures."""
    return f"{folder}/{still.key}.{'jpg' if still.profile.kind == 'image' else 'nut'}"


def stills_in(source: SourceInfo, stills: list[Rendition], cut: Cut) -> list[Rendition]:
    """The stills a chunk makes: an image whose moment lies in it, a sprite's thumbnails whose times do."""
    found = []
    for r in stills:
        if r.profile.kind == "image":
            if cut.start <= Fraction(str(still_at(source, r.profile))) < cut.end:
                found.append(r)
        else:
            assert r.profile.sprite is not None
            first, end = thumbnails_in(r.profile.sprite.interval_seconds, cut, programme_duration(source))
            if end > first:
                found.append(r)
    return found


def chunk_argv(source: SourceInfo, renditions: list[Rendition], cut: Cut, folder: str, x264_threads: int,
               reference: bool = False, stills: list[Rendition] | None = None) -> list[str]:
    """One decode of the chunk's stretch (from a seek ``PREROLL_S`` before it) and one video-only output per
    rendition, ``cut.frames`` pictures long, starting with a keyframe, and the ``stills`` that fall in it (an
    image's JPEG, a sprite's thumbnails as raw pictures); for a ``reference``, the same pictures as the sync gate
    compares them (grey thumbnails, raw), from a seek further back."""
    preroll = PREROLL_S + (REFERENCE_PREROLL_S if reference else 0.0)
    seek = max(0.0, programme_start(source) - source.start_time + float(cut.start) - preroll)
    inp = source_input(source, ss=f"{seek:.6f}") if seek else source_input(source)
    sinks: dict[str, Any] = {}
    made = stills_in(source, stills or [], cut)
    emit(inp[str(source.video[0].index)], video_tree(source, [*renditions, *made], cut), sinks, audio=False)
    duration = programme_duration(source)
    outputs = []
    for r in renditions:
        spec = r.profile.video
        assert spec is not None
        rate = output_rate(source.video[0].rate, spec)
        kept = chunk_file(spec)
        frames = cut.frames(rate, planned_frames(duration, rate))
        stream = sinks[r.key]
        if reference:
            stream = stream.filter("scale", GATE_THUMB, GATE_THUMB, flags="area").filter("format", "gray")
            opts = {"f": "rawvideo", "frames:v": frames}
            extension = "gray"
        else:
            opts = {**video_options(spec, rate, x264_threads), "f": kept.muxer, "frames:v": frames}
            extension = kept.extension
        timecode = start_timecode(r.profile, source)
        if timecode and spec.codec == "mpeg2video" and not reference:  # GOP headers count on from the start
            opts["timecode"] = chunk_timecode(timecode, rate, cut)
        outputs.append(ffmpeg.output(stream, f"file:{folder}/{r.key}.{extension}", **opts))
    for r in made:
        if r.profile.kind == "image":
            outputs.append(ffmpeg.output(sinks[r.key], f"file:{still_part(folder, r)}", **still_options(r.profile)))
        else:
            assert r.profile.sprite is not None
            first, end = thumbnails_in(r.profile.sprite.interval_seconds, cut, duration)
            outputs.append(ffmpeg.output(sinks[r.key], f"file:{still_part(folder, r)}", f="nut", vcodec="rawvideo",
                                         **{"frames:v": end - first}))
    return ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS, *SOURCE_ARGS).compile(cmd="ffmpeg")


def chunk_params(source: SourceInfo, renditions: list[Rendition], cut: Cut, folder: str, x264_threads: int,
                 limits: Limits, stills: list[Rendition], work: str) -> ChunkParams:
    return ChunkParams(argv=chunk_argv(source, renditions, cut, f"{folder}.partial", x264_threads, stills=stills),
                       source=source.path, index=cut.index, start=float(cut.start),
                       duration=float(cut.end - cut.start), limits=limits, partial=f"{folder}.partial", final=folder,
                       joined=[f"{work}/renditions/{r.key}" for r in [*renditions, *stills]])


def reference(source: SourceInfo, renditions: list[Rendition], cut: Cut, folder: str) -> JoinReference:
    """The pictures either side of the join at ``cut.start``, made by one decode straight through it."""
    spec = renditions[0].profile.video
    assert spec is not None
    rate = output_rate(source.video[0].rate, spec)  # one rate for a series
    around = Cut(cut.index, cut.start - REFERENCE_SIDE / rate, cut.start + REFERENCE_SIDE / rate, False)
    return JoinReference(first=round(around.start * rate),
                         argv=chunk_argv(source, renditions, around, folder, 0, reference=True),
                         files={r.key: f"{folder}/{r.key}.gray" for r in renditions})


def join_params(source: SourceInfo, renditions: list[Rendition], chunk_cuts: list[Cut], chunk_folders: list[str],
                sounds: dict[str, str], work: str, scratch: str, asset_id: str, limits: Limits,
                references: list[JoinReference], stills: list[Rendition], series: str,
                series_outputs: list[str]) -> JoinParams:
    """How each rendition's chunks are laid end to end and given their sound, what the sync gate expects, and
    how the stills the chunks made are put together; ``series``: the chunks' folder, which the join that finds
    every one of ``series_outputs`` made removes."""
    duration = programme_duration(source)
    joined: list[JoinedRendition] = []
    outputs: list[EncodeOutput] = []
    partial_of = {r.key: f"{work}/renditions/{r.key}.partial" for r in renditions}
    for r in renditions:
        spec = r.profile.video
        assert spec is not None
        rate = output_rate(source.video[0].rate, spec)
        kept = chunk_file(spec)
        target = f"{scratch}/{r.key}.txt"
        if kept.method == "concat":
            reader = ["-f", "concat", "-safe", "0", "-protocol_whitelist", "file", "-i", f"file:{target}"]
        else:  # the chunks read as one byte stream (ffmpeg's concatf protocol): no joined copy is written first
            reader = ["-f", kept.demuxer, "-framerate", f"{rate.numerator}/{rate.denominator}",
                      "-protocol_whitelist", "concatf,file", "-i", f"concatf:{target}"]
        sound = sounds.get(r.key, "")
        muxer_opts, extra = container_options(r.profile, source, asset_id)
        timecode = muxer_opts.pop("timecode", None)  # the encoder's option; the container takes it as metadata
        if timecode:
            extra += ["-metadata", f"timecode={timecode}"]
        argv = ["ffmpeg", *GLOBAL_ARGS, *reader, *(["-i", f"file:{sound}"] if sound else []), "-map", "0:v",
                *(["-map", "1:a"] if sound else []), "-c", "copy", *extra,
                *[a for key, value in muxer_opts.items() for a in (f"-{key}", str(value))],
                f"file:{partial_of[r.key]}/{r.file_name}"]
        joined.append(JoinedRendition(
            key=r.key, chunks=[f"{folder}/{r.key}.{kept.extension}" for folder in chunk_folders], method=kept.method,
            joined=target, argv=argv, sound=sound, frames=planned_frames(duration, rate),
            rate=f"{rate.numerator}/{rate.denominator}", gop=0 if spec.scene_cut else gop_frames(spec, rate)))
        outputs.append(EncodeOutput(key=r.key, profile=r.profile.name, partial=partial_of[r.key],
                                    final=f"{work}/renditions/{r.key}"))
    made: list[JoinedStill] = []
    for r in stills:
        partial = f"{work}/renditions/{r.key}.partial"
        parts = [still_part(folder, r) for cut, folder in zip(chunk_cuts, chunk_folders)
                 if r in stills_in(source, [r], cut)]
        argv: list[str] = []
        if r.profile.kind == "image":
            assert len(parts) == 1
        else:  # the thumbnails, in programme order, tiled into sheets (NUT keeps no colour range:
            # they are full range, and the blank of a sheet's last row is full-range black)
            assert r.profile.sprite is not None
            grid = f"{r.profile.sprite.columns}x{r.profile.sprite.rows}"
            argv = ["ffmpeg", *GLOBAL_ARGS, "-f", "concat", "-safe", "0", "-protocol_whitelist", "file", "-i",
                    f"file:{scratch}/{r.key}.txt", "-vf", f"setparams=range=pc,format=yuvj420p,tile={grid}",
                    "-fps_mode", "passthrough",
                    *[a for key, value in still_options(r.profile).items() for a in (f"-{key}", str(value))],
                    f"file:{partial}/{r.file_name}"]
        made.append(JoinedStill(key=r.key, parts=parts, file=f"{partial}/{r.file_name}", list=f"{scratch}/{r.key}.txt",
                                argv=argv))
        outputs.append(EncodeOutput(key=r.key, profile=r.profile.name, partial=partial,
                                    final=f"{work}/renditions/{r.key}"))
    return JoinParams(source=source.path, starts=[float(c.start) for c in chunk_cuts], references=references,
                      scratch=scratch, outputs=outputs, renditions=joined, stills=made, limits=limits,
                      series=series, series_outputs=series_outputs)
