"""The analysis as one self-contained HTML page: a poster per shot, the transition timeline, black, freeze
and silence bands, the loudness curve.

Everything is inline (CSS, SVG, posters as base64 JPEG data URIs), so the page opens from a delivery folder
or an e-mail with no network and no JavaScript. Every string that comes from the file (its name, metadata)
is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from ..pipeline.errors import SourceError, StorageError
from ..pipeline.probe import open_media
from .files import write_atomically

MAX_POSTERS = 60        # a page for people: longer shot lists show every n-th shot's poster
POSTER_HEIGHT = 108
TIMELINE_WIDTH = 1000   # SVG user units; the SVG scales to the page
LOUDNESS_FLOOR = -60.0  # LUFS at the bottom of the curve
COLOURS = {"cut": "#d62728", "fade": "#1f77b4", "dissolve": "#9467bd",
           "black": "#222222", "freeze": "#17becf", "silence": "#ff7f0e"}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.2em 0 .4em}
.facts{color:#555}.facts b{color:#222}
svg{width:100%;height:auto;background:#fff;border:1px solid #ddd}
.shots{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:3px;font-size:12px;text-align:center}
figure img{display:block;height:108px}
.key span{display:inline-block;margin-right:1em}.key i{display:inline-block;width:.9em;height:.9em;
vertical-align:-.1em;margin-right:.3em}
"""


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:06.3f}" if hours else f"{minutes}:{rest:06.3f}"


def _posters(source: str, analysis: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(shot, JPEG data URI) for the shots shown, each poster decoded at the analysis's time for it."""
    shots = list(analysis.get("shots") or [])
    picks = list(analysis.get("shot_posters") or [])[:len(shots)]
    if not picks:
        return []
    step = max(1, -(-len(picks) // MAX_POSTERS))
    chosen = list(range(0, len(picks), step))
    width, height = analysis.get("width") or 16, analysis.get("height") or 9
    thumb_w = max(2, round(POSTER_HEIGHT * width / height / 2) * 2)
    out: list[tuple[dict[str, Any], str]] = []
    try:
        container = open_media(source)
    except av.FFmpegError as exc:
        raise SourceError(source, f"cannot be read for the report's posters ({exc.strerror})") from exc
    with container:
        index = analysis.get("video_stream")
        stream = next((s for s in container.streams.video if s.index == index), container.streams.video[0])
        stream.thread_type = "AUTO"
        origin = analysis.get("video_start")  # seconds on the source's clock that are the analysis's 0
        base = round(origin / stream.time_base) if origin is not None else (stream.start_time or 0)
        for i in chosen:
            at = float(picks[i]["time"])
            try:
                container.seek(base + int(at / stream.time_base), stream=stream, backward=True)
                frame = next((f for f in container.decode(stream)
                              if f.pts is None or float((f.pts - base) * stream.time_base) >= at - 1e-3), None)
            except av.FFmpegError:  # a poster that does not decode is left out, not the report
                continue
            if frame is None:
                continue
            rotation = int(getattr(frame, "rotation", 0) or 0) % 360
            w, h = (POSTER_HEIGHT, thumb_w) if rotation % 180 else (thumb_w, POSTER_HEIGHT)
            image = frame.to_ndarray(width=w, height=h, format="bgr24")
            if rotation:
                image = np.ascontiguousarray(np.rot90(image, rotation // 90))
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok:
                out.append((shots[i], "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()))
    return out


def _x(t: float, duration: float) -> float:
    return round(TIMELINE_WIDTH * min(max(t / duration, 0.0), 1.0), 2) if duration > 0 else 0.0


def _timeline(analysis: dict[str, Any], duration: float) -> str:
    """Transitions as ticks above, then one row of bands for each of black, freeze and silence."""
    rows = ("black", "freeze", "silence")
    row_h, top = 18, 30
    height = top + row_h * len(rows) + 20
    parts = [f'<svg viewBox="0 0 {TIMELINE_WIDTH + 70} {height}" role="img" aria-label="timeline">',
             f'<g transform="translate(60,0)"><rect x="0" y="4" width="{TIMELINE_WIDTH}" height="20" fill="#eee"/>']
    for tr in analysis.get("transitions") or []:
        kind = str(tr.get("kind", "cut"))
        colour = COLOURS.get(kind, "#000")
        start = float(tr.get("time", 0.0))
        fps = float(analysis.get("fps") or 25.0)
        end = start + (float(tr["end_frame"]) - float(tr["frame"])) / fps if "end_frame" in tr else start
        x0, x1 = _x(start, duration), _x(end, duration)
        label = html.escape(f"{kind} at {_clock(start)} (frame {tr.get('frame')})")
        parts.append(f'<rect x="{x0}" y="4" width="{max(1.5, round(x1 - x0, 2))}" height="20" fill="{colour}">'
                     f'<title>{label}</title></rect>')
    for r, kind in enumerate(rows):
        y = top + r * row_h
        parts.append(f'<text x="-6" y="{y + 12}" text-anchor="end" font-size="11">{kind}</text>'
                     f'<rect x="0" y="{y}" width="{TIMELINE_WIDTH}" height="{row_h - 4}" fill="#f3f3f3"/>')
        for seg in analysis.get(kind) or []:
            x0, x1 = _x(float(seg["start"]), duration), _x(float(seg["end"]), duration)
            label = html.escape(f"{kind} {_clock(float(seg['start']))} to {_clock(float(seg['end']))}")
            parts.append(f'<rect x="{x0}" y="{y}" width="{max(1.0, round(x1 - x0, 2))}" height="{row_h - 4}" '
                         f'fill="{COLOURS[kind]}"><title>{label}</title></rect>')
    axis = top + row_h * len(rows) + 12
    for i in range(5):
        t = duration * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text x="{_x(t, duration)}" y="{axis}" font-size="11" text-anchor="{anchor}">'
                     f'{_clock(t)}</text>')
    parts.append("</g></svg>")
    return "".join(parts)


def _loudness_curve(analysis: dict[str, Any], duration: float) -> str:
    loudness = analysis.get("loudness") or {}
    points = [(float(t), float(v)) for t, v in loudness.get("short_term") or [] if v is not None]
    if not points or duration <= 0:
        return "<p>No loudness curve: the source has no measurable audio.</p>"
    height = 120

    def y(lufs: float) -> float:
        return round(height * min(max(lufs, LOUDNESS_FLOOR), 0.0) / LOUDNESS_FLOOR, 2)

    step = max(1, len(points) // 2000)  # the curve needs no more points than the page has pixels
    line = " ".join(f"{_x(t, duration)},{y(v)}" for t, v in points[::step])
    grid = "".join(f'<line x1="0" x2="{TIMELINE_WIDTH}" y1="{y(v)}" y2="{y(v)}" stroke="#ddd"/>'
                   f'<text x="-6" y="{y(v) + 4}" text-anchor="end" font-size="11">{v:g}</text>'
                   for v in (-10, -20, -30, -40, -50))
    integrated = loudness.get("integrated")
    target = (f'<line x1="0" x2="{TIMELINE_WIDTH}" y1="{y(integrated)}" y2="{y(integrated)}" stroke="#2ca02c" '
              f'stroke-dasharray="4 3"><title>integrated {integrated} LUFS</title></line>'
              if isinstance(integrated, (int, float)) else "")
    return (f'<svg viewBox="0 0 {TIMELINE_WIDTH + 70} {height + 10}" role="img" aria-label="short-term loudness">'
            f'<g transform="translate(60,5)">{grid}{target}'
            f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="1.2"/></g></svg>')


def _fmt(value: Any, unit: str) -> str:
    return f"{value:g} {unit}" if isinstance(value, (int, float)) else "n/a"


def render_report(analysis: dict[str, Any], posters: list[tuple[dict[str, Any], str]], title: str) -> str:
    """The page, from an analysis result and its posters (already data URIs)."""
    duration = float(analysis.get("duration") or 0.0)
    loudness = analysis.get("loudness") or {}
    kinds = [str(t.get("kind")) for t in analysis.get("transitions") or []]
    counts = ", ".join(f"{kinds.count(k)} {k}{'s' if kinds.count(k) != 1 else ''}" for k in ("cut", "fade", "dissolve"))
    facts = [f"{_clock(duration)} long",
             f"{analysis.get('width')}x{analysis.get('height')} at {_fmt(analysis.get('fps'), 'fps')}"
             if analysis.get("width") else "no picture",
             f"{len(analysis.get('shots') or [])} shots ({counts})",
             f"loudness {_fmt(loudness.get('integrated'), 'LUFS')}, range {_fmt(loudness.get('lra'), 'LU')}, "
             f"true peak {_fmt(loudness.get('true_peak'), 'dBTP')}"]
    for kind in ("black", "freeze", "silence"):
        segs = analysis.get(kind) or []
        total = sum(float(s["end"]) - float(s["start"]) for s in segs)
        facts.append(f"{kind}: {len(segs)} stretch{'es' if len(segs) != 1 else ''}, {total:.1f} s")
    key = "".join(f'<span><i style="background:{c}"></i>{k}</span>' for k, c in COLOURS.items())
    figures = "".join(
        f'<figure><img src="{uri}" alt="shot at {_clock(float(shot["start"]))}">'
        f'<figcaption>{_clock(float(shot["start"]))}</figcaption></figure>' for shot, uri in posters)
    shown = (f"<p>Every {-(-len(analysis.get('shots') or []) // max(1, len(posters)))}th shot shown.</p>"
             if len(posters) < len(analysis.get("shots") or []) else "")
    name = html.escape(title)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{name} - onetake report</title><style>{STYLE}</style></head><body>"
            f"<h1>{name}</h1><p class=\"facts\">{' &middot; '.join(html.escape(f) for f in facts)}</p>"
            f"<h2>Timeline</h2><p class=\"key\">{key}</p>{_timeline(analysis, duration)}"
            f"<h2>Loudness (short-term, LUFS)</h2>{_loudness_curve(analysis, duration)}"
            f"<h2>Shots</h2>{shown}<div class=\"shots\">{figures or '<p>No picture.</p>'}</div>"
            f"</body></html>\n")


def write_report(analysis: dict[str, Any], source: str, path: str) -> None:
    """The report of ``source`` at ``path`` (`onetake analyze --report`), whole or not at all."""
    try:
        write_atomically(Path(path).absolute(), report_page(analysis, os.path.abspath(source), Path(source).name))
    except OSError as exc:
        raise StorageError(f"{path}: cannot write the report ({exc.strerror or exc}); give a writable path") from exc


def report_page(analysis: dict[str, Any], source: str, title: str) -> str:
    """The report of ``source`` (analysed as ``analysis``), its posters read from the source."""
    return render_report(analysis, _posters(source, analysis) if analysis.get("shots") else [], title)
