"""The per-frame video kernels: each decoded picture is reduced once (luma to ~160 px wide, chroma to half) and
a handful of vectorised OpenCV/numpy reductions turn it into a few numbers, a 32x18 thumbnail and two column
profiles. Everything later (transitions, segments, posters, the crop path) works on those arrays alone."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import BinaryIO

import av
import cv2
import numpy as np

from ...pipeline.probe import combing_ratio
from .faces import FaceDetector
from .settings import AnalysisSettings

# 8-bit planar Y'CbCr layouts whose planes can be read as they are; anything else is converted by swscale
PLANAR_8BIT = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p",
               "yuv411p", "yuv410p"}


CLEAR_CHANGE = 6  # gray levels at analysis size: more than coding noise
PERIOD_SLACK = 1e-6  # a frame's time divided by a period lands a hair under the whole number it means


def nominal_range(full: bool) -> tuple[int, float]:
    """Black level and the span up to white of 8-bit luma: full range (JPEG, "pc"), or limited (16-235)."""
    return (0, 255.0) if full else (16, 219.0)


def plane_array(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A plane as a (height, width) uint8 view, without its line padding."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]


def shrink(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average ``a`` down to width x height; decimating first keeps it well under a millisecond at 1080p
    (the averaging still covers 2x2 of the remaining pixels, enough against aliasing for these measures)."""
    step = max(1, min(a.shape[1] // (width * 2), a.shape[0] // (height * 2)))
    if step > 1:
        a = a[::step, ::step]
    return cv2.resize(a, (width, height), interpolation=cv2.INTER_AREA)


def to_bins(row: np.ndarray, bins: int) -> np.ndarray:
    return cv2.resize(row.reshape(1, -1).astype(np.float32), (bins, 1), interpolation=cv2.INTER_AREA).ravel()


FLOAT_SERIES = ("times", "luma", "diff_yuv", "diff_y", "changed", "sharpness", "contrast", "clipped")


@dataclass
class VideoFeatures:
    """What the kernels keep of every frame (index = frame number after the decoder)."""

    times: list[float] = field(default_factory=list)
    luma: list[float] = field(default_factory=list)          # mean Y, 0..1 of the nominal range
    black: list[bool] = field(default_factory=list)
    diff_yuv: list[float] = field(default_factory=list)      # mean |change| from the previous frame, Y+U+V
    diff_y: list[float] = field(default_factory=list)
    changed: list[float] = field(default_factory=list)       # share of pixels that changed clearly (> 6 levels)
    sharpness: list[float] = field(default_factory=list)     # variance of the Laplacian
    contrast: list[float] = field(default_factory=list)      # standard deviation of Y
    clipped: list[float] = field(default_factory=list)       # share of pixels at black or white
    thumbs: list[np.ndarray] = field(default_factory=list)
    still_profile: list[np.ndarray] = field(default_factory=list)    # |Laplacian| per column bin, sums to 1
    motion_profile: list[np.ndarray] = field(default_factory=list)   # |change| per column bin (raw)
    faces: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=dict)  # x, y, w, h fractions
    row_peak: np.ndarray | None = None       # brightest moment of each full-size row / column (for bars)
    col_peak: np.ndarray | None = None
    flagged_interlaced: bool = False
    combing: list[float] = field(default_factory=list)
    width: int = 0                            # display size
    height: int = 0
    analysis_size: tuple[int, int] = (0, 0)

    @property
    def count(self) -> int:
        return len(self.times)

    def save(self, out: BinaryIO) -> None:
        """As an ``.npz`` (plain arrays, no pickles): how a stretch's features reach the task that joins them."""
        n = self.count
        faces = [(i, *box) for i, boxes in sorted(self.faces.items()) for box in boxes]
        bins = len(self.still_profile[0]) if n else 0
        arrays: dict[str, np.ndarray] = {name: np.asarray(getattr(self, name), np.float64) for name in FLOAT_SERIES}
        arrays.update(
            black=np.asarray(self.black, bool), combing=np.asarray(self.combing, np.float64),
            thumbs=np.asarray(self.thumbs, np.uint8).reshape(n, *(self.thumbs[0].shape if n else (0, 0))),
            still_profile=np.asarray(self.still_profile, np.float32).reshape(n, bins),
            motion_profile=np.asarray(self.motion_profile, np.float32).reshape(n, bins),
            faces=np.asarray(faces, np.float64).reshape(len(faces), 5),
            sizes=np.asarray([self.width, self.height, *self.analysis_size, self.flagged_interlaced], np.int64))
        for name in ("row_peak", "col_peak"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        np.savez(out, **arrays)

    @classmethod
    def load(cls, path: str) -> VideoFeatures:
        with np.load(path, allow_pickle=False) as a:
            width, height, aw, ah, flagged = (int(v) for v in a["sizes"])
            f = cls(**{name: a[name].tolist() for name in FLOAT_SERIES}, black=a["black"].tolist(),
                    combing=a["combing"].tolist(), thumbs=list(a["thumbs"]), still_profile=list(a["still_profile"]),
                    motion_profile=list(a["motion_profile"]), width=width, height=height, analysis_size=(aw, ah),
                    flagged_interlaced=bool(flagged), row_peak=a["row_peak"] if "row_peak" in a else None,
                    col_peak=a["col_peak"] if "col_peak" in a else None)
            for i, *box in a["faces"].tolist():
                f.faces.setdefault(int(i), []).append(tuple(box))
        return f

    @classmethod
    def joined(cls, stretches: list[VideoFeatures], interlace_samples: int) -> VideoFeatures:
        """The features of consecutive stretches as one decode of them all would have kept them."""
        f = cls(width=stretches[0].width, height=stretches[0].height, analysis_size=stretches[0].analysis_size)
        for part in stretches:
            offset = f.count
            for name in (*FLOAT_SERIES, "black", "thumbs", "still_profile", "motion_profile"):
                getattr(f, name).extend(getattr(part, name))
            f.faces.update({offset + i: boxes for i, boxes in part.faces.items()})
            for name in ("row_peak", "col_peak"):
                mine, theirs = getattr(f, name), getattr(part, name)
                setattr(f, name, theirs if mine is None else mine if theirs is None else np.maximum(mine, theirs))
            f.flagged_interlaced |= part.flagged_interlaced
            f.combing.extend(part.combing)
        del f.combing[interlace_samples:]
        return f


class VideoKernels:
    """Fed every decoded frame in order (from one thread); ``features`` holds the result."""

    def __init__(self, settings: AnalysisSettings, display_width: int, display_height: int, rotation: int,
                 fps: float, vbi_lines: int = 0, origin: float | None = None,
                 coded: tuple[int, int] | None = None) -> None:
        """``origin``: the time that is 0 in ``times`` (else the first frame's); ``coded``: the size every
        picture is taken at (else the first frame's)."""
        self.s = settings
        self.vbi_lines = vbi_lines
        self.coded = coded
        self.rotation = (rotation // 90) % 4
        w = settings.analysis_width
        h = max(2, round(w * display_height / display_width / 2) * 2)
        self.size = (w, h)
        self.f = VideoFeatures(width=display_width, height=display_height, analysis_size=self.size)
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.frame_s = 1 / fps if fps > 0 else 0.04
        # the full-size samples and the face checks fall on the first frame of each period of the programme's clock
        # (not every n-th frame): a stretch decoded on its own samples the frames one decode of it all would
        self.periods = (settings.sample_every_s, 1 / settings.face_rate)
        self.last_periods: tuple[int, int] | None = None
        self.moment = -self.frame_s
        self.faces = FaceDetector()
        self.origin = origin

    def _oriented(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(a, self.rotation)) if self.rotation else a

    def _coded_size(self, width: int, height: int) -> tuple[int, int]:
        return (height, width) if self.rotation % 2 else (width, height)

    def _planes(self, frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, float]:
        """Y, U, V planes (8-bit), the black level and the nominal range of Y; a picture whose size differs from
        the stream's first (a size change mid-stream) is scaled to it, as the encode does."""
        if self.coded is None:
            self.coded = (frame.width, frame.height)
        if (frame.width, frame.height) != self.coded:
            frame = frame.reformat(width=self.coded[0], height=self.coded[1], format="yuv420p")
        elif frame.format.name not in PLANAR_8BIT:
            frame = frame.reformat(format="yuv420p")
        black, span = nominal_range(frame.format.name.startswith("yuvj") or frame.color_range == 2)
        planes = [plane_array(p) for p in frame.planes[:3]]
        if self.vbi_lines:  # the picture starts below the VBI lines, in every plane at that plane's scale
            planes = [p[self.vbi_lines * p.shape[0] // frame.height:] for p in planes]
        return planes[0], planes[1], planes[2], black, span

    def _small(self, y_full: np.ndarray, u_full: np.ndarray,
               v_full: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w, h = self.size
        return (self._oriented(shrink(y_full, *self._coded_size(w, h))),
                self._oriented(shrink(u_full, *self._coded_size(w // 2, h // 2))),
                self._oriented(shrink(v_full, *self._coded_size(w // 2, h // 2))))

    def _periods(self, frame: av.VideoFrame) -> tuple[int, int]:
        """The sampling periods the frame lies in (a frame without a time: a frame after the last)."""
        self.moment = self.moment + self.frame_s if frame.time is None else float(frame.time) - (self.origin or 0.0)
        return (math.floor(self.moment / self.periods[0] + PERIOD_SLACK),
                math.floor(self.moment / self.periods[1] + PERIOD_SLACK))

    def precedes(self, frame: av.VideoFrame) -> None:
        """The frame just before a stretch: what its first frame's changes are measured against."""
        y_full, u_full, v_full, _, _ = self._planes(frame)
        self.prev = self._small(y_full, u_full, v_full)
        self.last_periods = self._periods(frame)

    def add(self, frame: av.VideoFrame) -> None:
        s, f = self.s, self.f
        index = f.count
        t = float(frame.time or 0.0)
        if self.origin is None:
            self.origin = t
        periods = self._periods(frame)
        new_periods = [self.last_periods is None or now != before
                       for now, before in zip(periods, self.last_periods or periods)]
        self.last_periods = periods
        y_full, u_full, v_full, black_level, span = self._planes(frame)
        w, h = self.size
        y, u, v = self._small(y_full, u_full, v_full)
        f.times.append(t - self.origin)
        mean, std = cv2.meanStdDev(y)
        f.luma.append((float(mean[0, 0]) - black_level) / span)
        f.contrast.append(float(std[0, 0]))
        dark = black_level + s.black_pixel_level * span
        lit = int(np.count_nonzero(y > dark))
        f.black.append(lit <= (1 - s.black_picture_ratio) * y.size)
        f.clipped.append(float(np.count_nonzero((y <= black_level + 2) | (y >= black_level + span - 2))) / y.size)
        lap = cv2.Laplacian(y, cv2.CV_16S, ksize=3)
        _, lap_std = cv2.meanStdDev(lap)
        f.sharpness.append(float(lap_std[0, 0]) ** 2)
        edges = cv2.reduce(cv2.convertScaleAbs(lap), 0, cv2.REDUCE_SUM, dtype=cv2.CV_32F)
        still = to_bins(edges, s.profile_bins)
        f.still_profile.append(still / max(float(still.sum()), 1e-6))
        f.thumbs.append(cv2.resize(y, s.thumb_size, interpolation=cv2.INTER_AREA))
        if self.prev is None:
            f.diff_yuv.append(0.0)
            f.diff_y.append(0.0)
            f.changed.append(1.0)
            f.motion_profile.append(np.zeros(s.profile_bins, np.float32))
        else:
            py, pu, pv = self.prev
            dy = cv2.absdiff(y, py)
            my = float(cv2.mean(dy)[0])
            f.diff_y.append(my)
            f.changed.append(np.count_nonzero(dy > CLEAR_CHANGE) / dy.size)
            f.diff_yuv.append(my + float(cv2.mean(cv2.absdiff(u, pu))[0]) + float(cv2.mean(cv2.absdiff(v, pv))[0]))
            moving = cv2.reduce(cv2.subtract(dy, 3), 0, cv2.REDUCE_SUM, dtype=cv2.CV_32F)  # 3: coding noise
            f.motion_profile.append(to_bins(moving, s.profile_bins) / (h * 255.0))
        self.prev = (y, u, v)
        if frame.interlaced_frame:
            f.flagged_interlaced = True
        if new_periods[0]:
            self._sample_full(y_full)
        if new_periods[1] and self.faces.available:
            fw = s.face_width
            fh = max(2, round(fw * h / w))
            face_gray = self._oriented(shrink(y_full, *self._coded_size(fw, fh)))
            boxes = self.faces.detect(face_gray)
            if boxes:
                f.faces[index] = boxes

    def _sample_full(self, y_full: np.ndarray) -> None:
        """Bars and combing need the full picture: a cheap look at it a few times a second."""
        f = self.f
        coarse = y_full[::4, ::4]
        rows = cv2.reduce(y_full[:, ::8], 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
        cols = cv2.reduce(coarse, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
        f.row_peak = rows if f.row_peak is None else np.maximum(f.row_peak, rows)
        f.col_peak = cols if f.col_peak is None else np.maximum(f.col_peak, cols)
        moving = f.diff_y[-1] > 1.0  # 0 for a programme's first frame
        if (not f.flagged_interlaced and moving and len(f.combing) < self.s.interlace_samples
                and y_full.shape[0] >= 240):
            f.combing.append(combing_ratio(y_full[:, ::4]))
