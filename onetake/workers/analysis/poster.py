"""Choosing frames a person would pick: sharp, well exposed, not black, with some contrast, faces preferred,
away from transitions. One poster for the file, one per shot, and a cover whose subject sits in the 9:16
window."""

from __future__ import annotations

from typing import Any

import numpy as np

from .framing import window_fraction, x_at
from .settings import AnalysisSettings
from .video import VideoFeatures


def frame_scores(f: VideoFeatures, transitions: list[dict[str, Any]], fps: float,
                 s: AnalysisSettings) -> np.ndarray:
    luma = np.asarray(f.luma)
    sharp = np.log1p(np.asarray(f.sharpness))
    sharp = sharp / max(float(sharp.max()), 1e-6)
    exposure = np.exp(-(((luma - s.poster_exposure_centre) / s.poster_exposure_width) ** 2)) * (1 - np.asarray(
        f.clipped))
    contrast = np.minimum(1.0, np.asarray(f.contrast) / s.poster_contrast_full)
    score = (s.poster_floor + sharp) * exposure * (s.poster_floor + contrast)
    score[np.asarray(f.black, bool)] = 0.0
    faces = np.zeros(f.count)
    for index in f.faces:
        faces[index] = 1.0
    score *= 1 + faces
    margin = round(s.poster_margin_s * fps)
    near = np.zeros(f.count, bool)
    for t in transitions:
        near[max(0, t["frame"] - margin):t.get("end_frame", t["frame"]) + margin + 1] = True
    score[near] *= s.poster_transition_penalty
    return score


def _pick(score: np.ndarray, f: VideoFeatures, a: int, b: int) -> dict[str, Any]:
    i = a + int(np.argmax(score[a:b]))
    return {"frame": i, "time": round(f.times[i], 3)}


def posters(f: VideoFeatures, transitions: list[dict[str, Any]], shots: list[dict[str, Any]],
            crop: dict[str, Any], fps: float, s: AnalysisSettings) -> dict[str, Any]:
    if not f.count:
        return {"poster": None, "cover": None, "shot_posters": []}
    score = frame_scores(f, transitions, fps, s)
    # the cover: the share of the frame's detail that the 9:16 window holds counts too
    bins = s.profile_bins
    wf = window_fraction(f.width, f.height, s.crop_aspect)
    centres = x_at(crop["points"], f.count)
    lo = np.clip(((centres - wf / 2) * bins).astype(int), 0, bins - 1)
    hi = np.clip(((centres + wf / 2) * bins).round().astype(int), 1, bins)
    still = np.stack(f.still_profile)
    cum = np.concatenate([np.zeros((f.count, 1)), np.cumsum(still, axis=1)], axis=1)
    inside = cum[np.arange(f.count), hi] - cum[np.arange(f.count), lo]
    return {"poster": _pick(score, f, 0, f.count),
            "cover": _pick(score * (s.poster_floor + inside), f, 0, f.count),
            "shot_posters": [_pick(score, f, shot["start_frame"], shot["end_frame"]) for shot in shots]}
