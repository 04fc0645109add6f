"""Frontal faces, offline: the Viola-Jones Haar cascade that OpenCV 4 shipped
(``models/haarcascade_frontalface_default.xml.gz``, see ``models/README.md`` for where it comes from and its
licence), evaluated with numpy.

OpenCV 5 dropped ``CascadeClassifier`` and the cascade files from its main module, and its DNN face detector
(YuNet) needs an ONNX model that no installed package ships; the cascade is small, needs nothing downloaded and
runs fast enough on a few frames a second at 256 px. The evaluation follows OpenCV's: the picture is scaled down
step by step, each 24x24 window's features (weighted rectangle sums from the integral image) are compared with
their thresholds times the window's standard deviation, a window must pass every stage, and overlapping hits are
grouped (at least ``min_neighbors`` per face).
"""

from __future__ import annotations

import functools
import gzip
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODEL = Path(__file__).with_name("models") / "haarcascade_frontalface_default.xml.gz"


@dataclass(frozen=True)
class Stage:
    threshold: float
    rects: np.ndarray       # (features, 3, 4) x, y, w, h in the 24x24 window (unused rectangles have w = 0)
    weights: np.ndarray     # (features, 3)
    node_thresholds: np.ndarray  # (features,)
    leaves: np.ndarray      # (features, 2): the vote when below / not below the threshold

    @functools.cached_property
    def corners(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each feature as 12 integral-image corners (rows, columns, signed weights: (features, 12) each), so
        that its value is one gather and one weighted sum."""
        x, y, w, h = (self.rects[..., i] for i in range(4))
        rows = np.stack([y + h, y, y + h, y], axis=-1).reshape(len(x), -1)
        cols = np.stack([x + w, x + w, x, x], axis=-1).reshape(len(x), -1)
        signs = np.array([1.0, -1.0, -1.0, 1.0])
        coefficients = (self.weights[..., None] * signs * (w[..., None] > 0)).reshape(len(x), -1)
        return rows, cols, coefficients


@dataclass(frozen=True)
class Cascade:
    size: tuple[int, int]
    stages: tuple[Stage, ...]


def _numbers(texts: list[str], per_text: int) -> np.ndarray:
    """The numbers in ``texts``, one row per text (parsed at once: the file holds ~10^4 of them)."""
    return np.array(" ".join(texts).split(), np.float64).reshape(-1, per_text)


@functools.cache
def load_cascade(path: Path = MODEL) -> Cascade:
    root = ET.fromstring(gzip.decompress(path.read_bytes()))
    cascade = root.find("cascade")
    if cascade is None or cascade.findtext("featureType", "").strip() != "HAAR":
        raise ValueError(f"{path} is not a Haar cascade")
    if any((t.text or "").strip() not in ("", "0") for t in cascade.iterfind("features/_/tilted")):
        raise ValueError(f"{path}: tilted features are not supported")
    size = (int(cascade.findtext("width", "0")), int(cascade.findtext("height", "0")))
    # every feature as 3 rectangles (x, y, w, h, weight); unused ones stay zero
    feature_rects = [f.findall("rects/_") for f in cascade.iterfind("features/_")]
    counts = np.array([len(r) for r in feature_rects])
    features = np.zeros((len(feature_rects), 3, 5))
    features[np.repeat(np.arange(len(counts)), counts), np.concatenate([np.arange(n) for n in counts])] = \
        _numbers([r.text or "" for rects in feature_rects for r in rects], 5)
    stages = []
    for stage in cascade.iterfind("stages/_"):
        weak = stage.findall("weakClassifiers/_")
        nodes = _numbers([w.findtext("internalNodes", "") for w in weak], 4)
        if not (nodes[:, :2] == (0, -1)).all():
            raise ValueError(f"{path}: only stump classifiers are supported")
        chosen = features[nodes[:, 2].astype(np.int64)]
        stages.append(Stage(float(stage.findtext("stageThreshold", "0")), chosen[..., :4].astype(np.int64),
                            chosen[..., 4], nodes[:, 3], _numbers([w.findtext("leafValues", "") for w in weak], 2)))
    return Cascade(size, tuple(stages))


def _grid_sum(ii: np.ndarray, rx: int, ry: int, rw: int, rh: int, ny: int, nx: int, step: int) -> np.ndarray:
    """The sum of rectangle (rx, ry, rw, rh) of every window on the grid at once, by slicing the integral image."""
    def at(dy: int, dx: int) -> np.ndarray:
        return ii[dy:dy + (ny - 1) * step + 1:step, dx:dx + (nx - 1) * step + 1:step]
    return at(ry + rh, rx + rw) - at(ry, rx + rw) - at(ry + rh, rx) + at(ry, rx)


def _windows(cascade: Cascade, gray: np.ndarray, step: int) -> np.ndarray:
    """Top-left corners (x, y) of the windows of ``gray`` that pass every stage.

    The first stage, which every window meets, is evaluated on the whole grid at once by slicing the integral
    image; it leaves few windows, and each later stage gathers its features' corners for those alone."""
    ww, wh = cascade.size
    ii, sq = cv2.integral2(gray, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    ny, nx = (gray.shape[0] - wh) // step + 1, (gray.shape[1] - ww) // step + 1
    if ny <= 0 or nx <= 0:
        return np.zeros((0, 2), np.int64)
    area = (ww - 2) * (wh - 2)
    s = _grid_sum(ii, 1, 1, ww - 2, wh - 2, ny, nx, step)
    q = _grid_sum(sq, 1, 1, ww - 2, wh - 2, ny, nx, step)
    nf = area * q - s * s
    nf = np.where(nf > 0, np.sqrt(np.maximum(nf, 0)), 1.0)
    first, *later = cascade.stages
    total = np.zeros((ny, nx))
    for f in range(len(first.node_thresholds)):
        value = sum(first.weights[f, k] * _grid_sum(ii, *first.rects[f, k].tolist(), ny, nx, step)
                    for k in range(3) if first.rects[f, k, 2])
        total += np.where(value < first.node_thresholds[f] * nf, first.leaves[f, 0], first.leaves[f, 1])
    y, x = np.nonzero(total >= first.threshold)
    nf = nf[y, x]
    y, x = y * step, x * step
    flat, stride = ii.ravel(), ii.shape[1]
    for stage in later:
        if not len(x):
            break
        rows, cols, coefficients = stage.corners
        at = (y * stride + x)[:, None, None] + (rows * stride + cols)[None]   # (windows, features, 12)
        value = np.einsum("nfk,fk->nf", flat[at], coefficients)
        votes = np.where(value < stage.node_thresholds[None] * nf[:, None], stage.leaves[:, 0], stage.leaves[:, 1])
        keep = votes.sum(axis=1) >= stage.threshold
        x, y, nf = x[keep], y[keep], nf[keep]
    return np.stack([x, y], axis=1)


def _group(rects: list[tuple[float, float, float, float]], min_neighbors: int,
           eps: float = 0.2) -> list[tuple[float, float, float, float]]:
    """Merge overlapping hits as OpenCV's groupRectangles does; keep groups of more than ``min_neighbors``."""
    n = len(rects)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            a, b = rects[i], rects[j]
            delta = eps * (min(a[2], b[2]) + min(a[3], b[3])) * 0.5
            if (abs(a[0] - b[0]) <= delta and abs(a[1] - b[1]) <= delta and
                    abs(a[0] + a[2] - b[0] - b[2]) <= delta and abs(a[1] + a[3] - b[1] - b[3]) <= delta):
                parent[root(i)] = root(j)
    groups: dict[int, list[tuple[float, float, float, float]]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(rects[i])
    out = [tuple(float(v) for v in np.mean(g, axis=0)) for g in groups.values() if len(g) > min_neighbors]
    return sorted(out, key=lambda r: -r[2] * r[3])  # type: ignore[return-value]


def detect_faces(gray: np.ndarray, *, scale_factor: float = 1.25, min_neighbors: int = 3,
                 max_size: float = 0.8) -> list[tuple[float, float, float, float]]:
    """Faces in the 8-bit gray picture ``gray`` as (x, y, w, h) in its pixels, largest first."""
    cascade = load_cascade()
    ww, wh = cascade.size
    height, width = gray.shape
    hits = []
    factor = 1.0
    while width / factor >= ww and height / factor >= wh and wh * factor <= max_size * height:
        scaled = cv2.resize(gray, (round(width / factor), round(height / factor)), interpolation=cv2.INTER_LINEAR)
        for x, y in _windows(cascade, scaled, 1 if factor > 2 else 2).tolist():
            hits.append((x * factor, y * factor, ww * factor, wh * factor))
        factor *= scale_factor
    return _group(hits, min_neighbors)


class FaceDetector:
    """Faces as fractions of the picture; unavailable (the analysis goes on without faces) if the model file is
    missing from the installation."""

    def __init__(self) -> None:
        self.available = MODEL.exists()

    def detect(self, gray: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Faces in ``gray`` as (x, y, w, h) fractions of its size, largest first."""
        h, w = gray.shape
        return [(x / w, y / h, fw / w, fh / h) for x, y, fw, fh in detect_faces(gray)]
