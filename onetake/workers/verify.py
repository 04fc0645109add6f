"""Check an output against its profile (PROFILES.md, "Checks an output must pass").

Each check is recorded with its measured value and its limit, passed or not; nothing raises for a failed
check, so that the manifest (or the error) can list all of them at once.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..pipeline.config import FarmConfig
from ..pipeline.captions import parse_timed_text
from ..pipeline.errors import OnetakeError, VerificationError
from ..pipeline.media import MATRICES, PRIMARIES, TRANSFERS
from ..pipeline.models import SourceInfo
from ..pipeline.plan import box_sar, colour_tags, expectations, measure_argv, programme_streams
from ..pipeline.probe import open_media
from ..pipeline.profiles import Catalog, Profile, parse_profile
from .loudness import measure_programme, meter, silent
from .package import read_media_playlist

CODEC_NAMES = {"libx264": "h264", "mpeg2video": "mpeg2video", "libmp3lame": "mp3"}
PROFILE_NAMES = {("mpeg2video", "0"): "4:2:2", ("libx264", "high"): "High", ("libx264", "main"): "Main",
                 ("libx264", "baseline"): "Constrained Baseline", ("libx264", "high422"): "High 4:2:2 Intra"}
FORMAT_NAMES = {"mp4": "mov,mp4,m4a,3gp,3g2,mj2", "ipod": "mov,mp4,m4a,3gp,3g2,mj2", "mov": "mov,mp4,m4a,3gp,3g2,mj2",
                "mxf": "mxf", "mxf_d10": "mxf", "wav": "wav", "mp3": "mp3", "mp2": "mp3"}
DECODER_CODECS = {"mp3float": "mp3", "mp2float": "mp2"}  # PyAV names the decoder, not the format
OP1A_UL = "060e2b34.04010101.0d010201.0101"
# The limits verify applies beside each profile's [checks] and [loudness] values, all here.
BITRATE_MIN_GOPS = 5  # a shorter output's video bitrate is not checked (it says nothing about the rate control)
TIMESTAMP_SLACK_S = 0.001  # rounding of container timestamps, on top of a frame's duration
SYNC_SLACK_S = 0.025  # audio may outrun the picture by an AAC frame's padding, on top of a frame's duration
AUDIO_DURATION_SLACK_S = 0.05  # an audio-only output's length against its programme's
HLS_AVERAGE_TOLERANCE = 0.1  # measured average bitrate within this share of AVERAGE-BANDWIDTH (Apple HLS spec)
HLS_PEAK_TO_AVERAGE = 2.0  # peak segment bitrate at most this many times the average (Apple HLS spec)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: Any
    limit: Any
    profile: str = ""

    def describe(self) -> str:
        return f"{self.profile} {self.name}: measured {self.value}, expected {self.limit}"


class _Checks:
    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.items: list[Check] = []

    def add(self, name: str, passed: bool, value: Any, limit: Any) -> None:
        self.items.append(Check(name, bool(passed), value, limit, self.profile))

    def equal(self, name: str, value: Any, expected: Any) -> None:
        self.add(name, value == expected, value, expected)


def _mp4_moov_first(path: str) -> bool:
    with open(path, "rb") as f:
        while True:
            header = f.read(8)
            if len(header) < 8:
                return False
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8]
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size == 1:
                size = int.from_bytes(f.read(8), "big")
                f.seek(size - 16, os.SEEK_CUR)
            elif size < 8:
                return False
            else:
                f.seek(size - 8, os.SEEK_CUR)


def _video_packets(container: av.container.InputContainer) -> tuple[list[int], int, Fraction, int]:
    """Frame numbers of the keyframes in presentation order, the frame count, the frame rate the timestamps
    keep (the median spacing: a two-frame file has no average rate to declare), and the video's bytes; memory
    O(frames)."""
    stream = container.streams.video[0]
    frames, size = [], 0
    for packet in container.demux(stream):
        size += packet.size
        if packet.pts is not None:
            frames.append((packet.pts, packet.is_keyframe))
    frames.sort()
    keys = [n for n, (_, key) in enumerate(frames) if key]
    spacings = sorted(b[0] - a[0] for a, b in zip(frames, frames[1:]) if b[0] > a[0])
    if spacings and stream.time_base:
        rate = 1 / (spacings[len(spacings) // 2] * Fraction(stream.time_base))
    else:  # a single picture: what the stream says
        declared = stream.average_rate or stream.guessed_rate or stream.codec_context.framerate
        rate = Fraction(declared) if declared else Fraction(0)
    return keys, len(frames), rate, size


def _start_seconds(stream: av.stream.Stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _stream_seconds(stream: av.stream.Stream, container: av.container.InputContainer) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return float(container.duration or 0) / av.time_base


def verify_av(profile: Profile, path: str, expect: dict[str, Any], limits: dict[str, float],
              source_loudness: dict[str, Any] | None = None) -> list[Check]:
    checks = _Checks(profile.name)
    size = os.path.getsize(path)
    container_spec = profile.container
    assert container_spec is not None
    with open_media(path) as c:
        checks.equal("container", c.format.name, FORMAT_NAMES.get(container_spec.format, container_spec.format))
        if container_spec.format.startswith("mxf"):
            pattern = c.metadata.get("operational_pattern_ul", "")
            checks.add("operational pattern", pattern.startswith(OP1A_UL), pattern, "OP1a")
        if expect.get("timecode"):
            found = c.metadata.get("timecode") or next(
                (s.metadata["timecode"] for s in c.streams if "timecode" in s.metadata), "")
            checks.equal("start timecode", found, expect["timecode"])
        v = profile.video
        video_seconds = 0.0
        if v is not None:
            if not c.streams.video:
                checks.add("video stream", False, "none", "one")
                return checks.items
            vs = c.streams.video[0]
            cc = vs.codec_context
            checks.equal("video codec", cc.name, CODEC_NAMES.get(v.codec, v.codec))
            want_profile = PROFILE_NAMES.get((v.codec, v.profile))
            if want_profile:
                checks.equal("codec profile", vs.profile, want_profile)
            checks.equal("pixel format", cc.pix_fmt, v.pix_fmt)
            checks.equal("frame size", f"{cc.width}x{cc.height}", f"{v.width}x{v.height}")
            sar = Fraction(cc.sample_aspect_ratio or 1) if cc.sample_aspect_ratio else Fraction(1)
            checks.equal("display aspect", str(Fraction(cc.width, cc.height) * sar),
                         str(Fraction(v.width, v.height) * box_sar(v)))
            rate = Fraction(expect["frame_rate"])
            frames = []
            for frame in c.decode(vs):
                if not frames:
                    tags = colour_tags(v)
                    measured = "/".join([PRIMARIES.get(int(frame.color_primaries), "?"),
                                         TRANSFERS.get(int(frame.color_trc), "?"),
                                         MATRICES.get(int(frame.colorspace), "?")])
                    checks.equal("colour", measured,
                                 f"{tags['color_primaries']}/{tags['color_trc']}/{tags['colorspace']}")
                frames.append(frame)
                if len(frames) >= 3:
                    break
            if v.scan == "tff":
                flagged = all(f.interlaced_frame for f in frames)
                order = str(cc.field_order).lower()
                if flagged:
                    scan = "tff" if order in ("tt", "2") else f"interlaced, field order {order}"
                else:
                    scan = "progressive"
                checks.equal("scan", scan, "tff")
            else:
                interlaced = any(f.interlaced_frame for f in frames)
                checks.equal("scan", "interlaced" if interlaced else "progressive", "progressive")
            c.seek(0)
            keys, count, measured_rate, video_bytes = _video_packets(c)
            checks.add("frame rate", abs(measured_rate - rate) < Fraction(1, 100),
                       str(measured_rate.limit_denominator(100000)), str(rate))
            gop = int(expect["gop"])
            intervals = sorted({b - a for a, b in zip(keys, keys[1:])})
            regular = bool(keys) and keys[0] == 0 and all(i == gop for i in intervals) and count - keys[-1] <= gop
            checks.add("gop", regular, intervals or [count], gop)
            video_seconds = count / float(rate) if rate else _stream_seconds(vs, c)
            checks.add("duration", abs(video_seconds - expect["duration"]) <= 1 / float(rate) + TIMESTAMP_SLACK_S,
                       round(video_seconds, 3), round(expect["duration"], 3))
            # a constant bitrate is only constant over several GOPs: the first carries the buffer's initial fill
            if profile.checks.bitrate_tolerance and count >= BITRATE_MIN_GOPS * gop:
                kbps = video_bytes * 8 / video_seconds / 1000
                tol = profile.checks.bitrate_tolerance
                checks.add("video bitrate", abs(kbps - v.bitrate_kbps) <= tol * v.bitrate_kbps,
                           round(kbps), f"{v.bitrate_kbps} ±{tol:.0%}")
        a = profile.audio
        tracks = list(c.streams.audio)
        if a is not None and (expect.get("has_audio") or a.silence_if_missing):
            want_tracks = a.channels if a.tracks == "mono" else 1
            checks.equal("audio tracks", len(tracks), want_tracks)
            if tracks:
                t = tracks[0].codec_context
                checks.equal("audio codec", DECODER_CODECS.get(t.name, t.name), CODEC_NAMES.get(a.codec, a.codec))
                checks.equal("sample rate", t.sample_rate, a.sample_rate)
                checks.equal("channels per track", t.channels, 1 if a.tracks == "mono" else a.channels)
                audio_seconds = _stream_seconds(tracks[0], c)
                if video_seconds:
                    frame = 1 / float(Fraction(expect["frame_rate"]))
                    offset = _start_seconds(tracks[0]) - _start_seconds(vs)
                    checks.add("audio/video start", abs(offset) <= frame, round(offset, 3), f"±{frame:.3f} s")
                    checks.add("audio/video sync", abs(audio_seconds - video_seconds) <= frame + SYNC_SLACK_S,
                               round(audio_seconds - video_seconds, 3), f"±{frame + SYNC_SLACK_S:.3f} s")
                else:
                    checks.add("duration", abs(audio_seconds - expect["duration"]) <= AUDIO_DURATION_SLACK_S,
                               round(audio_seconds, 3), round(expect["duration"], 3))
    if container_spec.faststart:
        moov_first = _mp4_moov_first(path)
        checks.add("moov before mdat", moov_first, "yes" if moov_first else "no", "yes")
    if container_spec.bext:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        checks.add("bext chunk", b"bext" in head, "present" if b"bext" in head else "missing", "present")
    loud = profile.loudness
    if loud is not None and expect.get("has_audio") and tracks:
        integrated, peak = meter(path, len(tracks), limits)
        if silent(integrated):  # nothing above the BS.1770 absolute gate
            # fine only when the source's programme was silent (or too short) too
            source_silent = bool(source_loudness and source_loudness.get("silent"))
            checks.add("integrated loudness", source_silent, "silent, or too short to measure",
                       f"{loud.integrated} ±{loud.tolerance} LUFS" if not source_silent else "a silent source")
        else:
            checks.add("integrated loudness", abs(integrated - loud.integrated) <= loud.tolerance,
                       integrated, f"{loud.integrated} ±{loud.tolerance} LUFS")
            checks.add("true peak", peak <= loud.true_peak, peak, f"<= {loud.true_peak} dBTP")
    if profile.checks.max_duration_s:
        checks.add("platform duration", expect["duration"] <= profile.checks.max_duration_s,
                   round(expect["duration"], 3), f"<= {profile.checks.max_duration_s:g} s")
    if profile.checks.max_size_mb:
        checks.add("platform size", size <= profile.checks.max_size_mb * 1e6, round(size / 1e6, 1),
                   f"<= {profile.checks.max_size_mb:g} MB")
    return checks.items


def verify_image(profile: Profile, path: str) -> list[Check]:
    checks = _Checks(profile.name)
    assert profile.video is not None
    with open_media(path) as c:
        frame = next(c.decode(video=0))
        checks.equal("codec", c.streams.video[0].codec_context.name, "mjpeg")
        checks.equal("frame size", f"{frame.width}x{frame.height}", f"{profile.video.width}x{profile.video.height}")
    return checks.items


def verify_sprite(profile: Profile, folder: str, expect: dict[str, Any]) -> list[Check]:
    checks = _Checks(profile.name)
    s = profile.sprite
    assert s is not None
    sheets = sorted(Path(folder).glob("sprite-*.jpg"))
    checks.equal("sheets", len(sheets), expect["sheets"])
    for sheet in sheets[:1]:
        with open_media(str(sheet)) as c:
            frame = next(c.decode(video=0))
        checks.equal("sheet size", f"{frame.width}x{frame.height}",
                     f"{s.columns * s.thumb_width}x{s.rows * s.thumb_height}")
    vtt = Path(folder) / "sprite.vtt"
    cues = vtt.read_text(encoding="utf-8").count("#xywh=") if vtt.exists() else 0
    checks.equal("vtt cues", cues, expect["cues"])
    return checks.items


def verify_hls(profile: Profile, folder: str, expect: dict[str, Any]) -> list[Check]:
    checks = _Checks(profile.name)
    root = Path(folder)
    master = root / "master.m3u8"
    if not master.exists():
        checks.add("master playlist", False, "missing", "present")
        return checks.items
    text = master.read_text(encoding="utf-8")
    declared = {m.group(2): int(m.group(1)) for m in
                re.finditer(r"#EXT-X-STREAM-INF:BANDWIDTH=(\d+)[^\n]*\n([^\n]+)", text)}
    averages = {m.group(2): int(m.group(1)) for m in
                re.finditer(r"#EXT-X-STREAM-INF:[^\n]*AVERAGE-BANDWIDTH=(\d+)[^\n]*\n([^\n]+)", text)}
    checks.equal("variants", sorted(u.split("/")[0] for u in declared), sorted(expect["rungs"]))
    keyframes_by_rung: dict[str, list[float]] = {}
    limit = profile.checks.max_segment_seconds
    for uri, bandwidth in declared.items():
        rung = uri.split("/")[0]
        segments, init = read_media_playlist(root / uri)
        longest = max((d for d, _ in segments), default=0.0)
        checks.add(f"{rung} longest segment", longest <= limit, round(longest, 3), f"<= {limit:g} s")
        init_bytes = (root / rung / init).read_bytes()
        peak = 0.0
        starts_on_key = True
        times: list[float] = []
        for duration, name in segments:
            data = (root / rung / name).read_bytes()
            peak = max(peak, len(data) * 8 / duration if duration else 0.0)
            with av.open(io.BytesIO(init_bytes + data), format="mp4") as c:
                packets = [p for p in c.demux(c.streams.video[0]) if p.pts is not None]
            packets.sort(key=lambda p: p.pts)
            if not packets or not packets[0].is_keyframe:
                starts_on_key = False
            times += [round(float(p.pts * p.time_base), 3) for p in packets if p.is_keyframe]
        checks.add(f"{rung} segments start on keyframes", starts_on_key, starts_on_key, True)
        ratio = peak / bandwidth if bandwidth else math.inf
        checks.add(f"{rung} peak segment bitrate", ratio <= profile.checks.peak_to_bandwidth, round(peak),
                   f"<= {profile.checks.peak_to_bandwidth:g} x {bandwidth}")
        seconds = sum(d for d, _ in segments)
        average = sum((root / rung / name).stat().st_size for _, name in segments) * 8 / seconds if seconds else 0.0
        declared = averages.get(uri, 0)
        checks.add(f"{rung} average bitrate",
                   declared > 0 and abs(average - declared) <= HLS_AVERAGE_TOLERANCE * declared,
                   round(average), f"{declared} ±{HLS_AVERAGE_TOLERANCE:.0%}")
        checks.add(f"{rung} peak to average", peak <= HLS_PEAK_TO_AVERAGE * average,
                   round(peak / average, 2) if average else None, f"<= {HLS_PEAK_TO_AVERAGE:g}")
        keyframes_by_rung[rung] = times
    distinct = {tuple(t) for t in keyframes_by_rung.values()}
    checks.add("keyframes aligned across rungs", len(distinct) <= 1, len(distinct), 1)
    if "subtitles" in expect:
        _check_subtitles(checks, root, text, expect["subtitles"])
    return checks.items


def _check_subtitles(checks: _Checks, root: Path, master: str, expect: dict[str, Any]) -> None:
    """The WebVTT rendition: declared in the master and on every variant, parses, every cue inside the programme."""
    media = re.search(r'#EXT-X-MEDIA:TYPE=SUBTITLES,[^\n]*URI="([^"]+)"', master)
    checks.add("subtitle rendition declared", media is not None, media is not None, True)
    variants = master.count("#EXT-X-STREAM-INF:")
    tagged = len(re.findall(r'#EXT-X-STREAM-INF:[^\n]*SUBTITLES="', master))
    checks.add("variants name the subtitles", variants == tagged, tagged, variants)
    if media is None:
        return
    playlist = root / media.group(1)
    segments, _ = read_media_playlist(playlist) if playlist.is_file() else ([], "")
    try:
        cues = [c for _, uri in segments
                for c in parse_timed_text((playlist.parent / uri).read_text(encoding="utf-8"), uri, webvtt=True)]
        problem = "" if segments else "no segment listed"
    except (OSError, OnetakeError) as exc:
        cues, problem = [], str(exc)
    checks.add("subtitles parse as WebVTT", not problem, problem or f"{len(cues)} cues", "parses")
    end = max((c.end for c in cues), default=0.0)
    inside = all(c.start >= 0 for c in cues) and end <= expect["duration"] + 0.001
    checks.add("subtitle cues inside the programme", inside, round(end, 3), f"<= {expect['duration']:.3f} s")


def verify_output(profile_data: dict[str, Any], path: str, expect: dict[str, Any], limits: dict[str, float],
                  source_loudness: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every check of the profile on ``path``; ``source_loudness`` is the measure pass's result, if any."""
    profile = parse_profile(profile_data, profile_data["name"], f"profile {profile_data['name']}")
    try:
        if profile.kind == "hls":
            items = verify_hls(profile, path, expect)
        elif profile.kind == "sprite":
            items = verify_sprite(profile, path, expect)
        elif profile.kind == "image":
            items = verify_image(profile, path)
        elif profile.kind == "photo":
            from .photo import verify_photo  # photo imports this module's checks

            items = verify_photo(profile, path, expect)
        else:
            items = verify_av(profile, path, expect, limits, source_loudness)
    except (av.FFmpegError, OSError, StopIteration) as exc:
        raise VerificationError(f"{path}: cannot be read back for verification ({exc})") from exc
    return [asdict(c) for c in items]


def verify_file(path: str, profile: Profile, basis: SourceInfo, catalog: Catalog,
                measure_source: bool) -> list[dict[str, Any]]:
    """`onetake verify`: every check of ``profile`` on one file or folder, expected as made from ``basis`` (its
    source, or the file itself); ``measure_source``: meter the source's programme, so that a silent output is
    right only for a silent source."""
    limits = FarmConfig().limits(basis.duration)
    measured = None
    if measure_source and profile.loudness and basis.audio:
        integrated, _ = measure_programme(measure_argv(basis, programme_streams(basis)), limits)
        measured = {"silent": silent(integrated)}
    return verify_output(profile.to_dict(), os.path.abspath(path), expectations(basis, profile, catalog), limits,
                         measured)
