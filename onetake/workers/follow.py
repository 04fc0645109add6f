"""The subject-following crop: the analysis's crop path as commands for ffmpeg's ``sendcmd`` filter.

The plan puts ``sendcmd=f=FILE,crop=W:H:x=...`` in the encode; this module writes FILE. Each piece of the
path between two of its points becomes one command that sets the crop's ``x`` to a linear expression in
``t`` (the crop filter evaluates ``x`` on every frame). So the file grows with the number of points in the
path, not with the number of frames, and each frame costs one short expression: an hours-long source with a
still subject is a few lines. A single expression for the whole path would instead be re-parsed as one long
string, evaluated term by term on every frame, and would outgrow an argv string on long sources.

Times: the encode resets the picture's clock to zero (``setpts=PTS-STARTPTS``) as the analysis counts frames
from zero, so point ``frame`` is at ``frame / fps`` seconds. Each command starts half a frame early, so that a
frame on a boundary is never left to the previous piece by rounding (the pieces meet anyway: the path is
continuous, and a jump at a cut is a piece one frame long).
"""

from __future__ import annotations

from typing import Any

import numpy as np

TARGET = "crop"  # the follow encode has exactly one crop filter: sendcmd addresses it by name


def window_left(x: float, width: int, window: int) -> float:
    """The window's left edge in pixels for a centre at fraction ``x`` of the width (not yet clamped)."""
    return x * width - window / 2


def follow_commands(crop_path: dict[str, Any] | None, fps: float | None, width: int, window: int) -> str:
    """sendcmd commands that move a ``window``-pixel-wide crop across a ``width``-pixel picture along
    ``crop_path`` (the analysis's: centres as fractions of the width). No path, or no frame rate: centred."""
    points = sorted((crop_path or {}).get("points") or [], key=lambda p: p["frame"])
    if not points or not fps:
        return f"0.0 {TARGET} x {(width - window) / 2:.1f};\n"  # centred
    half = 0.5 / fps
    limit = float(width - window)
    pieces: list[tuple[float, str]] = []
    points = _simplify(points, width, window)
    for here, there in zip(points, points[1:] + points[-1:]):
        t0, t1 = here["frame"] / fps, there["frame"] / fps
        left0 = window_left(float(here["x"]), width, window)
        left1 = window_left(float(there["x"]), width, window)
        if t1 <= t0 or abs(left1 - left0) < 0.05:
            expression = f"{min(max(left0, 0.0), limit):.1f}"
        else:  # interpolate, then keep inside the picture (quoted: the commas would end the command)
            expression = f"'clip({left0:.2f}{(left1 - left0) / (t1 - t0):+.4f}*(t-{t0:.4f}),0,{limit:g})'"
        if pieces and pieces[-1][1] == expression:
            continue  # a still stretch is one command
        pieces.append((max(0.0, t0 - half), expression))
    lines = [f"{start:.4f} {TARGET} x {expression};" for start, expression in pieces]
    return "\n".join(lines) + "\n"


def _simplify(points: list[dict[str, Any]], width: int, window: int, tolerance_px: float = 0.5,
              longest: int = 500) -> list[dict[str, Any]]:
    """The path without the points that the clamped line between their neighbours already passes within
    ``tolerance_px`` of (as the commands will draw it): sendcmd looks at every command on every frame, so fewer
    commands keep long sources cheap. A jump at a cut is never smoothed over; a piece spans at most ``longest``
    points, so that this stays linear in the path's length."""
    limit = float(width - window)

    frames = np.array([p["frame"] for p in points], dtype=float)
    raw = np.array([window_left(float(p["x"]), width, window) for p in points])
    actual = np.clip(raw, 0.0, limit)
    kept = [points[0]]
    start = 0
    for end in range(2, len(points)):
        span = frames[end] - frames[start]
        inner = slice(start + 1, end)
        drawn = np.clip(raw[start] + (raw[end] - raw[start]) * (frames[inner] - frames[start]) / span, 0.0, limit) \
            if span > 0 else actual[inner]
        if span <= 0 or end - start > longest or np.abs(drawn - actual[inner]).max() > tolerance_px:
            kept.append(points[end - 1])
            start = end - 1
    if len(points) > 1:
        kept.append(points[-1])
    return kept

