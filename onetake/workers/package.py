"""Packaging: HLS ladders from encoded rungs (segments by ffmpeg, master playlist measured here) and
the WebVTT index of thumbnail sprites."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from ..pipeline.plan.params import HlsPackageParams, PackageParams, SpritePackageParams
from ..pipeline.probe import open_media
from .ffmpeg import run_ffmpeg
from .files import link_or_copy, publish_dir


def codecs_of(mp4: str) -> str:
    """The RFC 6381 CODECS string of an MP4: avc1.PPCCLL from its avcC record, plus mp4a.40.2 (AAC-LC)."""
    with open_media(mp4) as c:
        avcc = c.streams.video[0].codec_context.extradata
        codecs = [f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"]
        if c.streams.audio:
            codecs.append("mp4a.40.2")
    return ",".join(codecs)


def read_media_playlist(playlist: Path) -> tuple[list[tuple[float, str]], str]:
    """(duration, segment URI) for every segment of an HLS media playlist, and its EXT-X-MAP URI."""
    segments, duration, init = [], None, ""
    for line in playlist.read_text(encoding="utf-8").splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-MAP:"):
            found = re.search(r'URI="([^"]+)"', line)
            init = found.group(1) if found else ""
        elif line and not line.startswith("#") and duration is not None:
            segments.append((duration, line))
            duration = None
    return segments, init


def master_playlist(folder: Path, variants: list[dict[str, Any]]) -> str:
    """A master playlist whose BANDWIDTH and AVERAGE-BANDWIDTH are measured from the segments written."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        listed, _ = read_media_playlist(folder / v["name"] / "index.m3u8")
        segments = [(d, folder / v["name"] / uri) for d, uri in listed]
        total_bits = sum(p.stat().st_size for _, p in segments) * 8
        total_s = sum(d for d, _ in segments) or 1.0
        peak = max((p.stat().st_size * 8 / d for d, p in segments if d > 0), default=0.0)
        codecs = codecs_of(v["mp4"])
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={int(peak) + 1},AVERAGE-BANDWIDTH={int(total_bits / total_s) + 1},"
                     f"RESOLUTION={v['width']}x{v['height']},CODECS=\"{codecs}\",FRAME-RATE={v['frame_rate']:.3f}")
        lines.append(f"{v['name']}/index.m3u8")
    return "\n".join(lines) + "\n"


def package_hls(params: HlsPackageParams, on_progress: Any = None) -> str:
    final = Path(params["final"])
    if final.is_dir():
        return str(final)
    partial = Path(params["partial"])
    shutil.rmtree(partial, ignore_errors=True)
    for v in params["variants"]:
        (partial / v["name"]).mkdir(parents=True)
    try:
        run_ffmpeg(params["argv"], params["limits"], what="HLS packaging", on_progress=on_progress)
        (partial / "master.m3u8").write_text(master_playlist(partial, params["variants"]), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return publish_dir(partial, final)


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def package_sprite(params: SpritePackageParams, on_progress: Any = None) -> str:
    final = Path(params["final"])
    if final.is_dir():
        return str(final)
    partial = Path(params["partial"])
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    sheets = sorted(p for p in Path(params["sheets"]).iterdir() if re.fullmatch(r"sprite-\d+\.jpg", p.name))
    for sheet in sheets[:params["sheet_count"]]:
        link_or_copy(sheet, partial / sheet.name)
    lines = ["WEBVTT", ""]
    for cue in params["cues"]:
        x, y, w, h = cue["xywh"]
        lines += [f"{_vtt_time(cue['start'])} --> {_vtt_time(cue['end'])}", f"{cue['image']}#xywh={x},{y},{w},{h}", ""]
    (partial / "sprite.vtt").write_text("\n".join(lines), encoding="utf-8")
    return publish_dir(partial, final)


def package(params: PackageParams, on_progress: Any = None) -> str:
    if params["kind"] == "hls":
        return package_hls(params, on_progress)
    return package_sprite(params, on_progress)



