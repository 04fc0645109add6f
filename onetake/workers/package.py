"""Packaging: HLS ladders from encoded rungs (segments by ffmpeg, master playlist measured here) and
the WebVTT index of thumbnail sprites."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

from ..pipeline.captions import vtt_time
from ..pipeline.plan.params import HlsPackageParams, HlsSubtitles, PackageParams, SpritePackageParams
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


SUBTITLES_GROUP = "subs"
SUBTITLES_DIR = "subtitles"


def subtitle_rendition(folder: Path, subtitles: HlsSubtitles, duration: float) -> str:
    """The captions as a one-segment WebVTT media playlist in ``folder``/subtitles; its EXT-X-MEDIA line."""
    where = folder / SUBTITLES_DIR
    where.mkdir()
    cues = Path(subtitles["vtt"]).read_text(encoding="utf-8")
    # cue times count from the programme's start, where the fMP4 segments' own timestamps start too
    header, _, rest = cues.partition("\n")
    (where / "captions.vtt").write_text(f"{header}\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n{rest}",
                                        encoding="utf-8")
    (where / "index.m3u8").write_text("\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(duration)}", "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD", f"#EXTINF:{duration:.3f},", "captions.vtt", "#EXT-X-ENDLIST"]) + "\n",
        encoding="utf-8")
    name = subtitles["name"].replace('"', "'")
    return (f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLES_GROUP}",NAME="{name}",'
            f'LANGUAGE="{subtitles["language"]}",DEFAULT=NO,AUTOSELECT=YES,URI="{SUBTITLES_DIR}/index.m3u8"')


def master_playlist(folder: Path, variants: list[dict[str, Any]], subtitles: str = "") -> str:
    """A master playlist whose BANDWIDTH and AVERAGE-BANDWIDTH are measured from the segments written, with the
    subtitle rendition's EXT-X-MEDIA line when there is one."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", *([subtitles] if subtitles else [])]
    for v in variants:
        listed, _ = read_media_playlist(folder / v["name"] / "index.m3u8")
        segments = [(d, folder / v["name"] / uri) for d, uri in listed]
        total_bits = sum(p.stat().st_size for _, p in segments) * 8
        total_s = sum(d for d, _ in segments) or 1.0
        peak = max((p.stat().st_size * 8 / d for d, p in segments if d > 0), default=0.0)
        codecs = codecs_of(v["mp4"])
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={int(peak) + 1},AVERAGE-BANDWIDTH={int(total_bits / total_s) + 1},"
                     f"RESOLUTION={v['width']}x{v['height']},CODECS=\"{codecs}\",FRAME-RATE={v['frame_rate']:.3f}"
                     + (f',SUBTITLES="{SUBTITLES_GROUP}"' if subtitles else ""))
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
        media = ""
        if "subtitles" in params:
            listed, _ = read_media_playlist(partial / params["variants"][0]["name"] / "index.m3u8")
            media = subtitle_rendition(partial, params["subtitles"], sum(d for d, _ in listed))
        (partial / "master.m3u8").write_text(master_playlist(partial, params["variants"], media), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return publish_dir(partial, final)


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
        lines += [f"{vtt_time(cue['start'])} --> {vtt_time(cue['end'])}", f"{cue['image']}#xywh={x},{y},{w},{h}", ""]
    (partial / "sprite.vtt").write_text("\n".join(lines), encoding="utf-8")
    return publish_dir(partial, final)


def package(params: PackageParams, on_progress: Any = None) -> str:
    if params["kind"] == "hls":
        return package_hls(params, on_progress)
    return package_sprite(params, on_progress)



