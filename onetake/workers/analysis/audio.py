"""The audio kernels, fed the decoded frames of one audio stream from the same demux as the video:
EBU R128 loudness by FFmpeg's own ``ebur128`` filter run in-process (a PyAV filter graph), and silence from
the peak of 10 ms blocks."""

from __future__ import annotations

import math
from typing import Any

import av
import numpy as np

from .settings import AnalysisSettings

# ebur128 reports "no measurement" as these
NO_LOUDNESS = -70.0
SILENT_MOMENT = -120.0


def samples_as_float(frame: av.AudioFrame) -> np.ndarray:
    """The frame's samples as float (channels, samples) in -1..1, whatever its sample format."""
    a = frame.to_ndarray()
    channels = frame.layout.nb_channels if frame.layout else 1
    if not frame.format.is_planar:
        a = a.reshape(-1, channels).T
    if a.dtype == np.uint8:
        return (a.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    return a.astype(np.float32, copy=False)


def _db(linear: float) -> float | None:
    return round(20 * math.log10(linear), 2) if linear > 0 else None


class AudioKernels:
    def __init__(self, settings: AnalysisSettings, stream: av.audio.stream.AudioStream) -> None:
        self.s = settings
        self.rate = stream.codec_context.sample_rate or 48000
        self.block = max(1, round(settings.silence_block_s * self.rate))
        self.pending = np.zeros(0, np.float32)
        self.peaks: list[np.ndarray] = []
        self.start: float | None = None
        self.graph: av.filter.Graph | None = None
        self.resampler: av.AudioResampler | None = None
        self.shape: tuple[str, str, int] | None = None
        self.curve: list[tuple[float, float | None]] = []
        self.last: dict[str, str] = {}
        self.true_peak = 0.0

    def add(self, frame: av.AudioFrame) -> None:
        if self.start is None:
            self.start = float(frame.time or 0.0)
        peak = np.abs(samples_as_float(frame)).max(axis=0) if frame.samples else np.zeros(0, np.float32)
        data = np.concatenate([self.pending, peak])
        whole = len(data) // self.block * self.block
        if whole:
            self.peaks.append(data[:whole].reshape(-1, self.block).max(axis=1))
        self.pending = data[whole:]
        for same in self._conformed(frame):
            self.graph.push(same)  # type: ignore[union-attr]
            self._drain()

    def _conformed(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        """The frame as the meter was set up for: its graph takes the first frame's sample format, layout and
        rate (a stream's declared ones can differ from what its decoder gives, as in broadcast MP2), and a
        later frame that changes them (a TS whose audio switches from stereo to 5.1) is converted to those."""
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if self.graph is None:
            self.shape = shape
            self.graph = av.filter.Graph()
            source = self.graph.add_abuffer(format=frame.format.name, layout=frame.layout.name,
                                            sample_rate=frame.sample_rate, time_base=frame.time_base)
            meter = self.graph.add("ebur128", "peak=true:metadata=1")
            sink = self.graph.add("abuffersink")
            source.link_to(meter)
            meter.link_to(sink)
            self.graph.configure()
        if shape == self.shape:
            return [frame]
        if self.resampler is None:
            fmt, layout, rate = self.shape  # type: ignore[misc]
            self.resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        return list(self.resampler.resample(frame))

    def _drain(self) -> None:
        while self.graph is not None:
            try:
                out = self.graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            meta = dict(out.metadata)
            if "lavfi.r128.S" not in meta:
                continue
            self.last = meta
            self.true_peak = max(self.true_peak, float(meta.get("lavfi.r128.true_peak", 0.0)))
            short = float(meta["lavfi.r128.S"])
            self.curve.append((float(out.time or 0.0), None if short <= SILENT_MOMENT else round(short, 2)))

    def finish(self, origin: float, duration: float | None) -> dict[str, Any]:
        """``origin``: the time that is 0 in the result (the first video frame's); ``duration``: where the
        programme ends, which ends its silences (None: not known yet; ``silence_runs`` then holds them whole, for
        ``silences`` to end them later)."""
        s = self.s
        if self.graph is not None:
            self.graph.push(None)
            self._drain()
        if len(self.pending):
            self.peaks.append(np.array([self.pending.max()], np.float32))
        peaks = np.concatenate(self.peaks) if self.peaks else np.zeros(0, np.float32)
        start = (self.start or 0.0) - origin
        step = self.block / self.rate
        quiet = peaks < 10 ** (s.silence_level_db / 20)
        found = [(start + a * step, start + b * step) for a, b in runs(quiet)]
        integrated = float(self.last.get("lavfi.r128.I", NO_LOUDNESS))
        lra = float(self.last.get("lavfi.r128.LRA", 0.0))
        curve = [(t - origin, v) for t, v in self.curve]
        every = max(1, round(s.loudness_curve_step_s / 0.1), math.ceil(len(curve) / s.loudness_curve_max_points))
        loudness = {"integrated": None if integrated <= NO_LOUDNESS else round(integrated, 2),
                    "true_peak": _db(self.true_peak),
                    "lra": round(lra, 2) if integrated > NO_LOUDNESS else None,
                    "short_term": [[round(t, 3), v] for t, v in curve[::every]]}
        if duration is None:
            return {"silence_runs": found, "loudness": loudness}
        return {"silence": silences(found, duration, s), "loudness": loudness}


def silences(found: list[tuple[float, float]], duration: float, s: AnalysisSettings) -> list[dict[str, float]]:
    """The silent runs (seconds) that last long enough once the programme's end (``duration``; 0: none) ends them."""
    silence = []
    for a, b in found:
        t0, t1 = max(0.0, a), min(duration, b) if duration else b
        if t1 - t0 >= s.silence_min_s:
            silence.append({"start": round(t0, 3), "end": round(t1, 3)})
    return silence


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs in ``mask``."""
    if not len(mask):
        return []
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
