"""After the pass: transitions, shots, black and frozen segments, the active picture area and the scan, all from
the per-frame arrays the video kernels kept (no pixels are read again)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .audio import runs
from .settings import AnalysisSettings
from .video import VideoFeatures


def frame_end(times: list[float], i: int, fps: float) -> float:
    """When frame ``i`` stops being shown."""
    return times[i + 1] if i + 1 < len(times) else times[i] + 1.0 / fps


def hard_cuts(f: VideoFeatures, fps: float, s: AnalysisSettings) -> list[int]:
    """Frames that start a new shot abruptly: far more change than their neighbourhood and a local peak."""
    d = np.asarray(f.diff_yuv, np.float32)
    w = max(2, round(s.cut_neighbourhood_s * fps))
    cuts: list[int] = []
    for i in np.flatnonzero(d >= s.cut_min_score).tolist():
        if i == 0 or _flash(f, i, s):
            continue
        around = np.concatenate([d[max(1, i - w):i], d[i + 1:i + 1 + w]])
        local = float(np.median(around)) if len(around) else 0.0
        if d[i] < s.cut_local_ratio * local + s.cut_local_margin or d[i] < d[max(1, i - 2):i + 3].max():
            continue
        if cuts and i - cuts[-1] < s.min_shot_frames:
            if d[i] > d[cuts[-1]]:
                cuts[-1] = i
            continue
        cuts.append(i)
    return cuts


def _flash(f: VideoFeatures, i: int, s: AnalysisSettings) -> bool:
    """The start or the end of a photographer's flash or a glitch of a few frames: the picture before the jump
    comes back within ``flash_max_frames``, or the picture after it was there just before the interruption."""
    def differ(a: int, b: int) -> float:
        return float(np.abs(f.thumbs[a].astype(np.float32) - f.thumbs[b].astype(np.float32)).mean())

    jump = differ(i, i - 1)
    n = s.flash_max_frames
    back = s.flash_return_ratio * jump
    return (any(differ(k, i - 1) < back for k in range(i + 1, min(f.count, i + 1 + n))) or
            any(differ(i, k) < back for k in range(max(0, i - 1 - n), i - 1)))


STEP_CHUNK = 4096  # frames of thumbnails turned into float at a time (an hour at 25 fps is 90 000)


def _step_measures(thumbs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the mean |change| from the previous thumbnail, and the cosine between that change and the
    previous one (0 for the first frames); computed in chunks so that hours of video stay small in memory."""
    n = len(thumbs)
    magnitude = np.zeros(n, np.float32)
    agree = np.zeros(n, np.float32)
    for lo in range(0, n, STEP_CHUNK):
        a = max(0, lo - 2)
        block = np.stack(thumbs[a:lo + STEP_CHUNK]).reshape(-1, thumbs[0].size).astype(np.float32)
        steps = block[1:] - block[:-1]                      # steps[k] is the change into frame a + 1 + k
        norms = np.linalg.norm(steps, axis=1) + 1e-6
        cos = (steps[1:] * steps[:-1]).sum(axis=1) / (norms[1:] * norms[:-1])   # into frame a + 2 + k
        magnitude[a + 1:a + 1 + len(steps)] = np.abs(steps).mean(axis=1)
        agree[a + 2:a + 2 + len(cos)] = cos
    return magnitude, agree


def gradual_transitions(f: VideoFeatures, cuts: list[int], s: AnalysisSettings) -> list[dict[str, Any]]:
    """Fades and dissolves: runs of frames that each move the picture the same way, whose ends differ a lot,
    and whose middle frames are a linear blend of the ends. Returns ``{frame, end_frame, kind}``
    (``frame`` the last picture before the blend starts, ``end_frame`` the first one fully after it)."""
    n = f.count
    if n < s.gradual_min_frames + 2:
        return []
    magnitude, agree = _step_measures(f.thumbs)
    along = np.maximum(agree, np.concatenate([agree[1:], [0.0]]))  # agrees with the step before or after
    moving = (magnitude >= s.gradual_step_min) & (along >= s.gradual_direction_min)
    moving[0] = False
    moving[cuts] = False
    out = []
    for a, b in runs(moving):
        if b - a < s.gradual_min_frames:
            continue
        first, last = a - 1, b - 1
        thumbs = np.stack(f.thumbs[first:last + 1]).reshape(last + 1 - first, -1).astype(np.float32)
        start, end = thumbs[0], thumbs[-1]
        change = end - start
        size = float(np.abs(change).mean())
        if size < s.gradual_min_change or size / float(magnitude[a:b].sum()) < s.gradual_net_ratio_min:
            continue
        middle = thumbs[1:-1] - start
        scale = float(change @ change)
        alpha = middle @ change / scale
        residual = np.linalg.norm(middle - alpha[:, None] * change[None, :], axis=1) / np.sqrt(scale)
        if len(residual) and float(residual.mean()) > s.gradual_residual_max:
            continue
        kind = "fade" if f.black[first] or f.black[last] else "dissolve"
        out.append({"frame": first, "end_frame": last, "kind": kind})
    return out


def transitions_and_shots(f: VideoFeatures, fps: float,
                          s: AnalysisSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cuts = hard_cuts(f, fps, s)
    gradual = gradual_transitions(f, cuts, s)
    items = [{"frame": i, "time": round(f.times[i], 3), "kind": "cut"} for i in cuts]
    items += [{"frame": g["frame"], "time": round(f.times[g["frame"]], 3), "kind": g["kind"],
               "end_frame": g["end_frame"]} for g in gradual]
    items.sort(key=lambda t: t["frame"])
    bounds = sorted({t["frame"] if t["kind"] == "cut" else (t["frame"] + t["end_frame"] + 1) // 2
                     for t in items} - {0})
    edges = [0, *bounds, f.count]
    shots = [{"start_frame": a, "end_frame": b, "start": round(f.times[a], 3),
              "end": round(frame_end(f.times, b - 1, fps), 3)} for a, b in itertools.pairwise(edges)
             if b > a]
    return items, shots


def segments(mask: np.ndarray, times: list[float], fps: float, min_s: float,
             lead: int = 0) -> list[dict[str, float]]:
    """{start, end} of the True runs of ``mask`` that last at least ``min_s``; ``lead`` frames before each run
    belong to it (a frozen run starts at the picture that the next frames repeat)."""
    out = []
    for a, b in runs(mask):
        a = max(0, a - lead)
        start, end = times[a], frame_end(times, b - 1, fps)
        if end - start >= min_s - 0.5 / fps:
            out.append({"start": round(start, 3), "end": round(end, 3)})
    return out


def black_and_freeze(f: VideoFeatures, transitions: list[dict[str, Any]], fps: float,
                     s: AnalysisSettings) -> tuple[list, list]:
    black = np.asarray(f.black, bool)
    blacks = black.copy()
    for t in transitions:  # the frames of a fade belong to the fade, not to the black it reaches
        if t["kind"] == "fade":
            blacks[t["frame"] + 1:t["end_frame"]] = False
    still = (np.asarray(f.diff_y, np.float32) < s.freeze_max_diff) & \
        (np.asarray(f.changed, np.float32) <= s.freeze_max_changed)
    still[0] = False
    # a black stretch is reported as black, not also as a freeze
    frozen = still & ~black & ~np.concatenate([[True], black[:-1]])
    return (segments(blacks, f.times, fps, s.black_min_s), segments(frozen, f.times, fps, s.freeze_min_s, lead=1))


def active_area(f: VideoFeatures, coded: tuple[int, int], rotation: int, black_level: int, span: float,
                s: AnalysisSettings) -> dict[str, int] | None:
    """The box outside which every sampled picture stayed black (letterbox and pillarbox bars), in display
    pixels."""
    if f.row_peak is None or f.col_peak is None:
        return None
    w, h = coded
    level = black_level + s.bar_level * span
    rows = np.flatnonzero(f.row_peak > level)
    cols = np.flatnonzero(f.col_peak > level)
    if not len(rows) or not len(cols):
        x0, x1, y0, y1 = 0, w, 0, h
    else:
        col_step = w / len(f.col_peak)
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        x0, x1 = int(cols[0] * col_step), min(w, round((cols[-1] + 1) * col_step))
    k = (rotation // 90) % 4
    if k == 1:
        x0, x1, y0, y1, w, h = y0, y1, w - x1, w - x0, h, w
    elif k == 2:
        x0, x1, y0, y1 = w - x1, w - x0, h - y1, h - y0
    elif k == 3:
        x0, x1, y0, y1, w, h = h - y1, h - y0, x0, x1, h, w
    sx, sy = f.width / w, f.height / h
    return {"x": round(x0 * sx), "y": round(y0 * sy), "width": round((x1 - x0) * sx),
            "height": round((y1 - y0) * sy)}


def interlaced(f: VideoFeatures, s: AnalysisSettings) -> bool | None:
    """Flagged interlaced; else combing on moving full-size samples; None when nothing moved to tell by."""
    if f.flagged_interlaced:
        return True
    if len(f.combing) < 3:
        return None
    return bool(np.median(f.combing) > s.interlace_combing_min)
