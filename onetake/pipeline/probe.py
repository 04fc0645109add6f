"""Read a source into SourceInfo with PyAV, in-process, treating the file as untrusted."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import av
import numpy as np
import PIL.ExifTags
import PIL.Image
import PIL.ImageCms

from .artwork import COVER_KINDS, COVER_SUFFIXES, read_artwork
from .captions import TEXT_SUBTITLE_CODECS, find_sidecar, glob_escape, read_cues, sidecar_language, stream_language
from .errors import SourceError
from .hashes import sha256_of
from .media import (
    MATRICES,
    PHOTO_CAPTION_FIELDS,
    PHOTO_FORMATS,
    PRIMARIES,
    PROTOCOL_WHITELIST,
    RANGES,
    REFERENCING_FORMATS,
    TRANSFERS,
    file_stem,
    file_url,
)
from .models import AudioStreamInfo, CaptionsInfo, ImageInfo, SourceInfo, VideoStreamInfo

IMAGE_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpegls", "jpeg2000", "ppm", "pgm", "pam", "qoi",
                "exr", "dpx", "sgi", "targa", "pcx", "jpegxl", "photocd", "xbm", "xwd", "sunrast", "avif"}
SNIFF_BYTES = 4096
SAMPLE_FRAMES = 12
HEALTH_PICTURES = 24  # decoded at the start (and half as many mid-file) to look for damage before encoding
UNDECODABLE_PACKETS = 600  # packets read in search of a first picture before the video is called undecodable
# What an H.264/HEVC decoder says of pictures that refer to ones before a mid-stream cut: at the start of a capture
# that is the cut, not damage (in the middle of a file it is: packets were lost)
MISSING_REFERENCE = re.compile(r"mmco|reference|POC|short.?term|long.?term|no frame", re.IGNORECASE)
RATE_PACKETS = 240
# D-10 (IMX) frames carry VBI lines above the picture: (codec, coded size) -> lines at the top that are not picture
VBI_RASTERS = {("mpeg2video", 720, 608): 32, ("mpeg2video", 720, 512): 32}


@functools.cache
def _safe_demuxers() -> str:
    """Every demuxer PyAV has but those that open other files or the network, so that even a playlist
    that slipped past the content check cannot be opened as one."""
    return ",".join(sorted(set(av.formats_available) - REFERENCING_FORMATS))


def open_media(path: str) -> av.container.InputContainer:
    """Open a local file for reading, and nothing else: no network, no other files, no playlists; metadata
    that is not UTF-8 (a GBK title from an old edit suite) is read with replacement characters."""
    return av.open(file_url(path), options={"protocol_whitelist": PROTOCOL_WHITELIST,
                                            "format_whitelist": _safe_demuxers()}, metadata_errors="replace")


def _sniff(path: str, head: bytes) -> None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#EXTM3U") or text.startswith(b"#EXTINF"):
        raise SourceError(path, "is an HLS playlist that points at other files, not a media file",
                          "give onetake the media file itself")
    if text.startswith(b"ffconcat") or b"<MPD" in text[:512] or text.startswith(b"v=0"):
        raise SourceError(path, "is a playlist or session description that points at other files or the "
                                "network, not a media file", "give onetake the media file itself")
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return
        raise SourceError(path, "is a text file, not audio or video", "check that the right file was given")


def _ratio(value: Fraction | None) -> str:
    if not value:
        return "1:1"
    return f"{value.numerator}:{value.denominator}"


def _seconds(value: int | None, time_base: Fraction | None) -> float:
    if value is None or time_base is None:
        return 0.0
    return float(value * time_base)


MAX_RATE = 300  # pictures a second; timestamps that say more are broken


def _nominal_rate(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 1 <= rate <= MAX_RATE:
            return Fraction(rate)
    return Fraction(25)


STANDARD_RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                  Fraction(50), Fraction(60000, 1001), Fraction(60)]


def _snap_rate(rate: Fraction) -> Fraction:
    """The standard rate within 1.5 % of ``rate``; phones record 29.6 fps that mean 30."""
    best = min(STANDARD_RATES, key=lambda r: abs(float(r - rate)))
    return best if abs(float(best - rate)) <= 0.015 * float(best) else rate.limit_denominator(1001)


def combing_ratio(gray: np.ndarray) -> float:
    """How much neighbouring lines differ compared with lines two apart: about 0.5 on progressive pictures,
    above 1 where the two fields of a frame were taken at different moments (interlaced motion)."""
    g = gray.astype(np.float32)
    h = g.shape[0] - g.shape[0] % 4
    adjacent = np.abs(g[0:h - 2:2] - g[1:h - 1:2]).mean()
    same_field = np.abs(g[0:h - 2:2] - g[2:h:2]).mean()
    return float(adjacent / (same_field + 1e-3))


def _packet_count(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    container.seek(0)
    count = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return count


def _camera_interval(deltas: np.ndarray) -> float:
    """The picture interval a variable-rate stream was shot at. Where most intervals sit at its shortest (dropped
    pictures, a switch from 15 to 30 fps, and Matroska's millisecond timestamps putting 41.7 ms at 41 or 42 only
    lengthen or round some), that one, averaged; where they wobble around a rate (a phone's jittery clock), the
    mean."""
    shortest = deltas <= 1.25 * float(np.percentile(deltas, 10))
    return float(deltas[shortest].mean() if shortest.mean() > 0.4 else deltas.mean())


def _frame_intervals(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> np.ndarray:
    """Seconds between consecutive pictures, from packets at the start, the middle and near the end of the
    stream (a phone that switches from 15 to 30 fps midway, or drops frames in the dark, shows it there)."""
    if not stream.time_base:
        return np.zeros(0)
    duration = float(container.duration or 0) / av.time_base
    found = []
    for at, count in ((0.0, RATE_PACKETS), (0.5, RATE_PACKETS // 2), (0.9, RATE_PACKETS // 2)):
        if at and duration < 20:
            break
        container.seek(int(at * duration * av.time_base), any_frame=False) if at else container.seek(0)
        pts = []
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(packet.pts)
            if len(pts) >= count:
                break
        if len(pts) > 3:
            window = np.diff(np.sort(np.array(pts, dtype=np.int64))) * float(stream.time_base)
            found.append(window[window > 0])
    container.seek(0)
    return np.concatenate(found) if found else np.zeros(0)


HDR_SIDE_DATA = {"MASTERING_DISPLAY_METADATA": "HDR10", "CONTENT_LIGHT_LEVEL": "HDR10", "DYNAMIC_HDR_PLUS": "HDR10+",
                 "DOVI_METADATA": "Dolby Vision", "DOVI_RPU_BUFFER": "Dolby Vision"}


def _hdr_metadata(frame: av.VideoFrame) -> str:
    """The HDR metadata a decoded picture carries, by name."""
    try:
        kinds = [str(sd.type).rsplit(".", 1)[-1] for sd in frame.side_data]
    except ValueError:  # a kind of side data newer than this PyAV (MV-HEVC's): nothing to tell by
        return ""
    return ", ".join(dict.fromkeys(HDR_SIDE_DATA[k] for k in kinds if k in HDR_SIDE_DATA))


@contextlib.contextmanager
def _decoder_complaints() -> Iterator[list[tuple[int, str, str]]]:
    """FFmpeg's error messages from a single-threaded decode in this thread, as (level, who, message).

    PyAV's log callback is switched on only meanwhile: left on, it can deadlock a threaded decoder whose threads
    log (PyAV-Org/PyAV#751); what other threads say meanwhile goes to the "libav" logger, which keeps it."""
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=True) as logs:
            yield logs
    finally:
        av.logging.set_level(None)


CODEC_NAMES = {"h264": "H.264", "hevc": "HEVC"}


logging.getLogger("libav").addHandler(logging.NullHandler())
logging.getLogger("libav").propagate = False


def _no_pictures(path: str, codec: str, complaints: list[tuple[int, str, str]], error: str = "") -> SourceError:
    """Why a video stream gave no picture at all, in a technician's words."""
    said = " ".join(m for _, _, m in complaints).lower() + " " + error.lower()
    if codec in ("h264", "hevc") and ("pps" in said or "sps" in said or "no frame" in said):
        return SourceError(path, f"its {CODEC_NAMES.get(codec, codec)} video has no parameter sets (SPS/PPS) before "
                                 f"its pictures: the recording or copy was cut before its first complete header",
                           "copy the whole file again from the start, or re-export it")
    first = next((m.strip() for _, _, m in complaints), error)
    detail = f" (the decoder says: {first})" if first else ""
    return SourceError(path, f"its video stream holds no picture that can be decoded{detail}",
                       "copy the file again, or re-export it")


def _damage(path: str, stream: av.video.stream.VideoStream,
            duration: float) -> tuple[int, int, str, list[tuple[int, str, str]]]:
    """Pictures checked, how many needed error concealment, the decoder's first complaint about them, and its
    complaints before any picture came out: a single-threaded decode (so every complaint belongs to the picture
    being decoded) of the start, and of the middle of a long file. Pictures before the first that decodes are a
    mid-GOP start, not damage."""
    checked = damaged = 0
    example = ""
    before_any: list[tuple[int, str, str]] = []
    with open_media(path) as container, _decoder_complaints() as logs:
        s = container.streams[stream.index]
        s.codec_context.thread_count = 1
        name = s.codec_context.name
        for at, wanted in ((0.0, HEALTH_PICTURES), (0.5, HEALTH_PICTURES // 2)):
            if at:
                if duration < 20:
                    break
                container.seek(int(at * duration * av.time_base), any_frame=False)
            started, got, waited = False, 0, 0
            for packet in container.demux(s):
                before = len(logs)
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:
                    frames = []
                    logs.append((av.logging.ERROR, name, exc.strerror or str(exc)))
                complaints = [m.strip() for level, who, m in logs[before:] if level <= av.logging.ERROR and who == name
                              and not (at == 0 and MISSING_REFERENCE.search(m))]
                started = started or bool(frames)
                if not started:
                    if not at:
                        before_any += logs[before:]
                    waited += 1
                    if waited > UNDECODABLE_PACKETS:  # the decode below gives up here too, and says why
                        break
                    continue
                pictures = len(frames) or int(packet.size > 0)
                checked += pictures
                if complaints:
                    damaged += pictures
                    example = example or complaints[0]
                got += len(frames)
                if got >= wanted:
                    break
            if not started:
                break
    return checked, damaged, example, before_any[:20]


def _video_info(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                path: str, sample_frames: int) -> VideoStreamInfo:
    cc = stream.codec_context
    # single-threaded, before the threaded decode below: every complaint it hears is about its own pictures
    health: tuple[int, int, str] = (0, 0, "")
    complaints: list[tuple[int, str, str]] = []
    if sample_frames > 1:  # the analysis, which decodes every picture anyway, asks for one and no damage check
        *counts, complaints = _damage(path, stream, float(container.duration or 0) / av.time_base)
        health = tuple(counts)  # type: ignore[assignment]
    stream.thread_type = "AUTO"
    frames: list[av.VideoFrame] = []
    error = ""
    # packet by packet, past errors: a capture that begins before its first parameter sets decodes once they come
    for tried, packet in enumerate(container.demux(stream)):
        try:
            frames += packet.decode()
        except av.FFmpegError as exc:
            error = error or exc.strerror or str(exc)
        if len(frames) >= sample_frames or (not frames and tried >= UNDECODABLE_PACKETS):
            break
    frames = frames[:sample_frames]
    if not frames:
        raise _no_pictures(path, cc.name, complaints, error)
    first = frames[0]
    rotation = int(getattr(first, "rotation", 0) or 0) % 360
    flagged = [f for f in frames if f.interlaced_frame]
    field_order = str(cc.field_order or "").lower()
    if flagged or field_order in ("tt", "bb", "tb", "bt", "2", "3", "4", "5"):
        scan = "bff" if field_order in ("bb", "bt", "3", "5") else "tff"
        basis = "flag"
    else:
        scan, basis = "progressive", "flag"
        if first.height >= 480 and len(frames) >= 4:
            combs = [combing_ratio(f.to_ndarray(format="gray")[:, ::2]) for f in frames[1::3]]
            if np.median(combs) > 1.0:
                scan, basis = "tff", "sampled"
    rate = _nominal_rate(stream)
    deltas = _frame_intervals(container, stream)
    variable = retimed = False
    if len(deltas) and np.median(deltas) < 1 / MAX_RATE:  # broken timestamps: the pictures are counted instead
        retimed, deltas = True, np.zeros(0)
    pictures = np.diff(sorted(f.time for f in frames if f.time is not None))
    if scan != "progressive" and len(deltas) and len(pictures) >= 3 \
            and 1.8 < np.median(pictures) / np.median(deltas) < 2.2:
        deltas = deltas[:len(deltas) // 2 * 2].reshape(-1, 2).sum(axis=1)  # one packet per field (PAFF): pair them
    if len(deltas):
        variable = bool(deltas.max() - deltas.min() > 0.25 / float(rate))
        if variable:
            rate = Fraction(1 / _camera_interval(deltas)).limit_denominator(100000)
    rate = _snap_rate(rate)
    # A capture cut mid-GOP begins with pictures that refer to ones it does not hold: decoders drop them (or,
    # some, show them broken). The programme starts at the first picture that decodes, for every step alike.
    declared = _seconds(stream.start_time, stream.time_base)
    first_time = float(first.time) if first.time is not None and stream.start_time is not None else declared
    lead = first_time - declared if first_time - declared > 0.5 / float(rate) else 0.0
    duration = _seconds(stream.duration, stream.time_base)
    if retimed:
        lead, duration = 0.0, _packet_count(container, stream) / float(rate)
    sar = Fraction(cc.sample_aspect_ratio or stream.sample_aspect_ratio or 1)
    vbi = VBI_RASTERS.get((cc.name, cc.width, cc.height), 0)
    if vbi:  # the display aspect the file declares is the picture's: its pixels are that much narrower
        sar = sar * Fraction(cc.height - vbi, cc.height)
    return VideoStreamInfo(
        index=stream.index, codec=cc.name, width=cc.width, height=cc.height,
        sar=_ratio(sar), rotation=rotation,
        frame_rate=f"{rate.numerator}/{rate.denominator}", variable_frame_rate=variable, scan=scan,
        scan_basis=basis, pix_fmt=cc.pix_fmt or "", color_primaries=PRIMARIES.get(int(first.color_primaries or 2), ""),
        color_transfer=TRANSFERS.get(int(first.color_trc or 2), ""),
        color_matrix=MATRICES.get(int(first.colorspace or 2), ""),
        color_range=RANGES.get(int(first.color_range or 0), ""),
        start_time=declared + lead, duration=max(0.0, duration - lead) if duration else 0.0,
        frames=int(stream.frames or 0), lead_skipped=round(lead, 6), vbi_lines=vbi, retimed=retimed,
        hdr_metadata=_hdr_metadata(first), **dict(zip(("checked_pictures", "damaged_pictures", "damage"), health)))


def _audio_info(stream: av.audio.stream.AudioStream) -> AudioStreamInfo:
    cc = stream.codec_context
    return AudioStreamInfo(
        index=stream.index, codec=cc.name, channels=cc.channels, layout=cc.layout.name if cc.layout else "",
        sample_rate=cc.sample_rate, start_time=_seconds(stream.start_time, stream.time_base),
        duration=_seconds(stream.duration, stream.time_base), language=stream.metadata.get("language", ""),
        default=bool(stream.disposition & av.stream.Disposition.default))


ISO_TOP_BOXES = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"meta",
                 b"moof", b"mfra", b"sidx"}


def _iso_truncation(local: str, size: int) -> str | None:
    """Why an MP4/MOV that FFmpeg cannot open is cut short: a box that runs past the end of the file,
    or no index (moov, written last by most recorders) at all; None when it does not look cut short."""
    boxes, pos = [], 0
    with open(local, "rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if kind not in ISO_TOP_BOXES:
                break
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # runs to the end of the file: a recording that was never finalised
                box_size = size - pos
            if box_size < 8:
                break
            boxes.append(kind)
            if pos + box_size > size:
                return (f"is truncated: its '{kind.decode()}' box runs {pos + box_size - size} bytes past the end "
                        f"of the file")
            pos += box_size
    if boxes and boxes[0] == b"ftyp" and b"moov" not in boxes and b"moof" not in boxes:
        return "is truncated: it has no 'moov' index (the recording or copy was cut short)"
    return None


MAIN_VIDEO_PACKETS = 2000


def _main_video_first(container: av.container.InputContainer,
                      streams: list[av.video.stream.VideoStream]) -> list[av.video.stream.VideoStream]:
    """The video streams, the one that carries the programme first: of several (a satellite multiplex lists
    scrambled or empty services), the one with the most packets near the start."""
    if len(streams) < 2:
        return streams
    counts = dict.fromkeys((s.index for s in streams), 0)
    try:
        for n, packet in enumerate(container.demux(*streams)):
            if packet.size:
                counts[packet.stream.index] += 1
            if n >= MAIN_VIDEO_PACKETS or max(counts.values()) >= 50:
                break
    except av.FFmpegError:
        pass
    container.seek(0)
    return sorted(streams, key=lambda s: (-counts[s.index], not s.disposition & av.stream.Disposition.default,
                                          s.index))


def _picture_count(container: av.container.InputContainer, stream: av.stream.Stream, enough: int = 2) -> int:
    """Pictures in the stream, counted up to ``enough``: one means a still image, whatever the codec."""
    count = 0
    try:
        for packet in container.demux(stream):
            count += packet.size > 0
            if count >= enough:
                break
    except av.FFmpegError:
        pass
    container.seek(0)
    return count


def _check_complete(container: av.container.InputContainer, target: av.stream.Stream, path: str, size: int,
                    duration: float) -> None:
    """Refuse a file whose data stops before its declared end (an interrupted copy or upload)."""
    for stream in container.streams:
        entries = stream.index_entries
        if entries:
            end = max(e.pos + e.size for e in entries)
            if end > size:
                raise SourceError(path, f"is truncated: its index points {end - size} bytes past the end of the "
                                        f"file", "copy the file again from the card or sender")
    if duration <= 2:
        return
    container.seek(int((duration - 2) * av.time_base), any_frame=False)
    last = None
    try:
        for packet in container.demux(target):
            if packet.pts is not None and packet.time_base:
                last = float(packet.pts * packet.time_base)
    except av.FFmpegError:
        last = None
    start = float(container.start_time or 0) / av.time_base
    if last is None or last - start < duration * 0.9 - 2:
        raise SourceError(path, f"is truncated: it declares {duration:.1f} s but its data stops early",
                          "copy the file again from the card or sender")


def probe(path: str | os.PathLike[str], *, compute_hash: bool = True, sample_scan: bool = True) -> SourceInfo:
    """Describe ``path``; every way it can be unusable raises SourceError naming the file.

    ``sample_scan``: decode a dozen pictures to tell whether an unflagged source is interlaced; the analysis,
    which looks at every picture anyway, turns it off and decodes one."""
    path = os.path.abspath(os.fspath(path))
    shown = path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceError(shown, "no such file", "check the path") from None
    except OSError as exc:
        raise SourceError(shown, f"cannot be read ({exc.strerror})") from exc
    if not Path(path).is_file():
        raise SourceError(shown, "is not a regular file", "give onetake a media file")
    if st.st_size == 0:
        raise SourceError(shown, "is empty (0 bytes)", "the copy or upload probably failed; send it again")
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise SourceError(shown, f"cannot be read ({exc.strerror})", "check its permissions") from exc
    photo = photo_format(head)
    if photo:
        return _probe_photo(path, photo, st, compute_hash)
    _sniff(shown, head)
    try:
        container = open_media(path)
    except av.FFmpegError as exc:
        truncated = _iso_truncation(path, st.st_size)
        if truncated:
            raise SourceError(shown, truncated, "copy the file again from the card or sender") from exc
        raise SourceError(shown, f"is not a media file onetake can read ({exc.strerror})",
                          "check that it is audio or video and was copied completely") from exc
    with container:
        fmt = container.format.name.split(",")[0]
        if fmt in REFERENCING_FORMATS:
            raise SourceError(shown, f"is a {fmt} playlist that points at other files, not a media file",
                              "give onetake the media file itself")
        vstreams = _main_video_first(container, [s for s in container.streams.video
                                                 if not s.disposition & av.stream.Disposition.attached_pic])
        if vstreams and (fmt == "image2" or fmt.endswith("_pipe") or
                         (vstreams[0].codec_context.name in IMAGE_CODECS and not container.streams.audio
                          and _picture_count(container, vstreams[0]) < 2)):
            raise SourceError(shown, f"is a still image ({vstreams[0].codec_context.name}) but not a JPEG, PNG, "
                                     f"HEIF or WebP photo (its first bytes are not one's)",
                              "give onetake a photo in one of those formats, or a video or audio file")
        if not vstreams and not container.streams.audio:
            raise SourceError(shown, "has neither video nor audio streams", "give onetake a media file")
        duration = float(container.duration or 0) / av.time_base
        try:
            _check_complete(container, vstreams[0] if vstreams else container.streams.audio[0], shown, st.st_size,
                            duration)
            container.seek(0)
            videos = []
            for s in vstreams[:1]:  # the programme's picture; the others (a scrambled service, a depth map) not
                videos.append(_video_info(container, s, shown, SAMPLE_FRAMES if sample_scan else 1))
                container.seek(0)
            audios = [_audio_info(s) for s in container.streams.audio if s.codec_context.channels]
        except av.FFmpegError as exc:
            raise SourceError(shown, f"cannot be read to the end ({exc.strerror})",
                              "copy the file again from the card or sender") from exc
        if duration <= 0:
            duration = max([v.duration for v in videos] + [a.duration for a in audios] + [0.0])
        if duration <= 0:
            raise SourceError(shown, "has no duration", "re-wrap the file (for example into MP4) and try again")
        timecode = container.metadata.get("timecode", "")
        for s in container.streams:
            timecode = timecode or s.metadata.get("timecode", "")
        format_long = container.format.long_name
        start_time = float(container.start_time or 0) / av.time_base
        # a stream of a codec this FFmpeg has no decoder for (teletext, say) has no codec context
        text_streams = [s for s in container.streams.subtitles
                        if s.codec_context is not None and s.codec_context.name in TEXT_SUBTITLE_CODECS]
        captions = captions_of(path, text_streams[0] if text_streams else None)
    return SourceInfo(
        path=path, size=st.st_size, sha256=sha256_of(path) if compute_hash else "",
        modified=datetime.fromtimestamp(st.st_mtime, timezone.utc).date().isoformat(),
        format=fmt, format_long=format_long, duration=round(duration, 6), start_time=start_time,
        timecode=timecode, video=tuple(videos), audio=tuple(audios), captions=captions,
        **({} if videos else cover_of(path)))


def cover_of(path: str) -> dict[str, str]:
    """The cover picture beside an audio-only source (STEM.jpg, .jpeg or .png), checked now."""
    for candidate in sorted(Path(path).parent.glob(f"{glob_escape(file_stem(Path(path).name))}.*")):
        if candidate.suffix.lower() in COVER_SUFFIXES and candidate.is_file():
            art = read_artwork(candidate, COVER_KINDS, "the cover picture beside the programme",
                               lambda message: SourceError(str(candidate), message))
            return {"cover": art.path, "cover_sha256": art.sha256}
    return {}


def captions_of(path: str, stream: av.stream.Stream | None) -> CaptionsInfo | None:
    """The source's captions: a sidecar beside it (read and checked now), else its first text subtitle stream."""
    sidecar = find_sidecar(path)
    if sidecar is not None:
        cues = read_cues(sidecar)
        return CaptionsInfo(path=str(sidecar), stream=-1, format=sidecar.suffix.lstrip(".").lower(),
                            language=sidecar_language(sidecar, file_stem(Path(path).name)),
                            sha256=sha256_of(str(sidecar)), cues=len(cues), first=min(c.start for c in cues),
                            last=max(c.end for c in cues))
    if stream is None:
        return None
    return CaptionsInfo(path=path, stream=stream.index, format=stream.codec_context.name,
                        language=stream_language(stream.metadata.get("language", "")), sha256="", cues=0)


PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heif": "HEIF"}
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1"}  # still-image brands (msf1/hevc are sequences)
ORIENTATION_TAG = 0x0112
# EXIF fields that say where a photo was taken, or which device or person took it, by (IFD, tag); none of them
# reaches a rendition (those carry only the fields a profile's keep_metadata names)
GPS_IFD, EXIF_IFD = 0x8825, 0x8769
IDENTIFYING_TAGS = {(None, 0xC62F): "CameraSerialNumber", (None, 0x013C): "HostComputer",
                    (EXIF_IFD, 0xA431): "BodySerialNumber", (EXIF_IFD, 0xA435): "LensSerialNumber",
                    (EXIF_IFD, 0xA430): "CameraOwnerName", (EXIF_IFD, 0xA420): "ImageUniqueID",
                    (EXIF_IFD, 0x927C): "MakerNote"}
# the caption and rights fields a rendition may keep: EXIF tag in IFD0 and its XMP Dublin Core twin
CAPTION_FIELDS = {name: (tag, dc_name) for name, (_, tag, dc_name) in PHOTO_CAPTION_FIELDS.items()}
XMP_DC = "{http://purl.org/dc/elements/1.1/}"
XMP_RDF_LI = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li"


def photo_format(head: bytes) -> str:
    """The photo format a file's first bytes announce: "jpeg", "png", "webp", "heif", or "" for anything else."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return "heif"
    return ""


def xmp_packet(info: dict[str, Any]) -> bytes:
    """The XMP a decoded photo carries (Pillow keeps it under a different key per format), or b""."""
    packet = info.get("xmp") or info.get("XML:com.adobe.xmp") or b""
    return packet.encode("utf-8") if isinstance(packet, str) else bytes(packet)


def xmp_fields(packet: bytes) -> dict[str, str]:
    """dc:creator, dc:rights and dc:description of an XMP packet (the first value of each), by their local name."""
    try:
        root = ElementTree.fromstring(packet.strip(b"\x00 \t\r\n"))
    except ElementTree.ParseError:
        return {}
    found: dict[str, str] = {}
    for _, dc_name in CAPTION_FIELDS.values():
        for element in root.iter(XMP_DC + dc_name):
            values = [li.text for li in element.iter(XMP_RDF_LI) if li.text and li.text.strip()]
            text = values[0] if values else (element.text or "")
            if text.strip():
                found[dc_name] = text.strip()
                break
    return found


def exif_text(value: Any) -> str:
    """An EXIF text field as text: its ASCII type holds UTF-8 in practice (Chinese captions), which Pillow reads
    as Latin-1."""
    if isinstance(value, str):
        try:
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            pass
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    # EXIF 2.3 keeps two copyrights (photographer, editor) apart with a NUL; XML (the XMP twin) holds no controls
    parts = ["".join(ch for ch in part if ch.isprintable() or ch in "\t\n") for part in str(value or "").split("\x00")]
    return "; ".join(p.strip() for p in parts if p.strip())


def read_photo_captions(exif: PIL.Image.Exif, info: dict[str, Any]) -> dict[str, str]:
    """artist, copyright and description: the EXIF field, else its XMP Dublin Core twin."""
    xmp = xmp_fields(xmp_packet(info))
    return {field: exif_text(exif.get(tag)) or xmp.get(dc_name, "")
            for field, tag, dc_name in PHOTO_CAPTION_FIELDS.values()}


def identifying_metadata(exif: PIL.Image.Exif, info: dict[str, Any]) -> tuple[str, ...]:
    """The names of the identifying fields a photo carries."""
    found = ["GPS"] if exif.get_ifd(GPS_IFD) else []
    for (ifd, tag), name in IDENTIFYING_TAGS.items():
        if tag in (exif.get_ifd(ifd) if ifd else exif):
            found.append(name)
    if exif.get_ifd(PIL.ExifTags.IFD.IFD1):
        found.append("EXIF thumbnail")
    if xmp_packet(info):
        found.append("XMP")
    return tuple(found)


@functools.cache
def _heif_opener() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()


@contextlib.contextmanager
def open_photo(path: str, kind: str) -> Iterator[PIL.Image.Image]:
    """A photo of ``kind`` (``photo_format``) opened with Pillow as that format only, decoded whole: a truncated or
    damaged file, or one too large to decode safely, is a SourceError naming it."""
    _heif_opener()
    name = PHOTO_FORMATS[kind]
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 and refuses from 179 megapixels: a 100 MP camera is fine, a decompression bomb not
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path, formats=[PILLOW_FORMATS[kind]]) as image:
                image.load()
                yield image
    except PIL.Image.DecompressionBombError as exc:
        raise SourceError(path, f"is a {name} photo too large to decode safely ({exc})",
                          "send a smaller export of it") from exc
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError) as exc:
        raise SourceError(path, f"is a {name} photo that cannot be decoded ({exc})",
                          "the file is probably cut short or damaged; copy it again from the camera or phone") from exc


def _probe_photo(path: str, kind: str, st: os.stat_result, compute_hash: bool) -> SourceInfo:
    with open_photo(path, kind) as image:
        exif = image.getexif()
        stored = int(exif.get(ORIENTATION_TAG) or 0)
        if kind == "heif":  # pillow-heif has set the tag to 1 and kept what it said
            stored = int(image.info.get("original_orientation") or 0)
        orientation = 1 if kind == "heif" or stored not in range(1, 9) else stored
        icc = image.info.get("icc_profile") or b""
        described = ""
        if icc:
            try:
                described = PIL.ImageCms.getProfileDescription(PIL.ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
            except (OSError, PIL.ImageCms.PyCMSError):
                described = "unreadable ICC profile"
        captions = read_photo_captions(exif, image.info)
        info = ImageInfo(format=kind, width=image.width, height=image.height, orientation=orientation,
                         exif_orientation=stored, mode=image.mode, icc=described,
                         frames=int(getattr(image, "n_frames", 1) or 1),
                         identifying=identifying_metadata(exif, image.info), **captions)
        long_name = image.format_description or PHOTO_FORMATS[kind]
    return SourceInfo(
        path=path, size=st.st_size, sha256=sha256_of(path) if compute_hash else "",
        modified=datetime.fromtimestamp(st.st_mtime, timezone.utc).date().isoformat(),
        format=kind, format_long=long_name, duration=0.0, start_time=0.0, timecode="", image=info)
