"""The subject track and the 9:16 crop path.

Per frame, a column profile says where the subject is: still contrast (|Laplacian|), motion (|change|)
weighted higher, faces higher still. Averaged over a short time within the shot, the window position that
holds the most of it is the subject's position. A follower turns that into a camera move: it keeps still
while the subject stays near the window's centre (a still subject gives exactly the same x every frame),
otherwise moves with bounded speed and acceleration, looking a little ahead; only a new shot makes it jump.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .settings import AnalysisSettings
from .video import VideoFeatures

MOTION_FLOOR = 0.05  # motion summed over a frame's profile below this is noise, not a subject


def window_fraction(width: int, height: int, aspect: tuple[int, int]) -> float:
    """Width of the full-height crop window as a fraction of the picture width (1 when it is as wide)."""
    return min(1.0, height * aspect[0] / aspect[1] / width)


def _box_mean(a: np.ndarray, radius: int) -> np.ndarray:
    """Average over +-radius rows (clipped at the ends)."""
    if radius <= 0 or len(a) < 2:
        return a
    c = np.concatenate([np.zeros((1, a.shape[1]), a.dtype), np.cumsum(a, axis=0)])
    idx = np.arange(len(a))
    lo, hi = np.maximum(0, idx - radius), np.minimum(len(a), idx + radius + 1)
    return (c[hi] - c[lo]) / (hi - lo)[:, None]


def subject_positions(f: VideoFeatures, a: int, b: int, wf: float, fps: float, s: AnalysisSettings) -> np.ndarray:
    """The window centre (fraction of the width) that holds the most of the subject, per frame of a shot."""
    bins = s.profile_bins
    still = np.stack(f.still_profile[a:b]).astype(np.float64)
    motion = np.stack(f.motion_profile[a:b]).astype(np.float64)
    total = motion.sum(axis=1, keepdims=True)
    profile = still + s.motion_weight * motion / np.maximum(total, MOTION_FLOOR)
    hold = max(1, round(fps / s.face_rate))
    for index, boxes in f.faces.items():
        if a <= index < b:
            x, _, w, _ = boxes[0]
            lo, hi = int(x * bins), max(int(x * bins) + 1, round((x + w) * bins))
            profile[index - a:index - a + hold, lo:hi] += s.face_weight / (hi - lo)
    profile = _box_mean(profile, round(s.subject_smooth_s * fps / 2))
    span = max(1, round(wf * bins))
    # what a window starting at each bin holds, the middle of the window counting more (a box plus a tent), so
    # that of the windows that hold the whole subject the one centred on it wins
    weights = 0.5 + 0.5 * (1 - np.abs(np.linspace(-1, 1, span)))
    held = np.lib.stride_tricks.sliding_window_view(profile, span, axis=1) @ weights
    centres = (np.arange(held.shape[1]) + span / 2) / bins
    held = held - 1e-3 * np.abs(centres - 0.5)[None, :]     # a tie goes to the middle
    return centres[np.argmax(held, axis=1)]


def follow(targets: np.ndarray, wf: float, fps: float, s: AnalysisSettings) -> np.ndarray:
    """A camera that follows ``targets``: still until the subject is a dead band away from the centre, then
    moving (closing the distance and matching the subject's speed, both bounded) until the subject is near the
    centre again and stops."""
    lo, hi = wf / 2, 1 - wf / 2
    lead = round(s.follow_lead_s * fps)
    radius = round(s.subject_smooth_s * fps / 2)
    smooth = _box_mean(targets[:, None], radius).ravel()
    ahead = np.concatenate([smooth[lead:], np.repeat(smooth[-1:], min(lead, len(smooth)))])[:len(smooth)]
    ahead = np.clip(ahead, lo, hi)
    speed = _box_mean((np.gradient(ahead) * fps)[:, None], radius).ravel() if len(ahead) > 1 else np.zeros(1)
    dt = 1.0 / fps
    band, settle = s.follow_deadband * wf, s.follow_settle * wf
    still_speed = 0.1 * s.follow_max_speed
    x, v, moving = float(ahead[0]), 0.0, False
    out = np.empty(len(targets))
    for i, target in enumerate(ahead.tolist()):
        error = target - x
        if not moving and abs(error) > band:
            moving = True
        elif moving and abs(error) < settle and abs(speed[i]) < still_speed:
            moving = False
        wanted = float(np.clip(error / s.follow_response_s + speed[i], -s.follow_max_speed, s.follow_max_speed)) \
            if moving else 0.0
        v += float(np.clip(wanted - v, -s.follow_max_accel * dt, s.follow_max_accel * dt))
        if not moving and abs(v) < 1e-6:
            v = 0.0
        x += v * dt
        if x < lo or x > hi:
            x, v = min(hi, max(lo, x)), 0.0
        out[i] = x
    return out


def simplify(xs: np.ndarray, tolerance: float) -> list[int]:
    """Indices of the points that keep the polyline within ``tolerance`` (Ramer-Douglas-Peucker)."""
    keep = {0, len(xs) - 1}
    stack = [(0, len(xs) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        t = np.arange(a + 1, b)
        line = xs[a] + (xs[b] - xs[a]) * (t - a) / (b - a)
        dev = np.abs(xs[a + 1:b] - line)
        i = int(np.argmax(dev))
        if dev[i] > tolerance:
            m = a + 1 + i
            keep.add(m)
            stack += [(a, m), (m, b)]
    return sorted(keep)


def crop_path(f: VideoFeatures, shots: list[dict[str, Any]], fps: float, s: AnalysisSettings) -> dict[str, Any]:
    aspect = f"{s.crop_aspect[0]}:{s.crop_aspect[1]}"
    n = f.count
    if not n:
        return {"aspect": aspect, "points": []}
    wf = window_fraction(f.width, f.height, s.crop_aspect)
    xs = np.full(n, 0.5)
    if wf < 1:
        for shot in shots:
            a, b = shot["start_frame"], shot["end_frame"]
            xs[a:b] = follow(subject_positions(f, a, b, wf, fps, s), wf, fps, s)
    xs = np.round(xs, 4)
    points: list[dict[str, Any]] = []
    for shot in shots:
        a, b = shot["start_frame"], shot["end_frame"]
        for i in simplify(xs[a:b], s.path_tolerance):
            points.append({"frame": a + i, "x": float(xs[a + i]), "y": 0.5})
    return {"aspect": aspect, "points": points}


def x_at(points: list[dict[str, Any]], n: int) -> np.ndarray:
    """The crop centre at every frame, interpolated as consumers do."""
    if not points:
        return np.full(n, 0.5)
    return np.interp(np.arange(n), [p["frame"] for p in points], [p["x"] for p in points])
