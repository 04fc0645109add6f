"""The one decode pass: PyAV demuxes the source once and decodes its video (threaded) and first audio stream;
a worker thread runs the kernels on each frame while the main thread decodes the next ones (OpenCV and most
numpy reductions release the GIL, and FFmpeg's decoder threads run outside it)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import cv2

from ...pipeline.errors import SourceError
from ...pipeline.models import SourceInfo
from ...pipeline.probe import UNDECODABLE_PACKETS, open_media
from . import detect, framing, poster
from .audio import AudioKernels
from .settings import AnalysisSettings
from .video import VideoKernels, nominal_range

QUEUE_FRAMES = 8
# The kernels look at pictures area-averaged to 160 px: the in-loop deblocking filter changes them by about a tenth of
# a grey level there, and skipping it saves about 8 % of an H.264 decode's CPU time (measured on the 1080p25
# benchmark source). Decoders without such a filter ignore the option.
DECODER_OPTIONS = {"skip_loop_filter": "all"}
RESULT_VERSION = 2
# ``report`` is also where a caller stops the pass (time limits, a cancelled task): it is called at least every
# second of the source and every this many packets, so that a slow decode is still checked often
REPORT_PACKETS = 16


def _display_size(info: SourceInfo) -> tuple[int, int]:
    v = info.video[0]
    _, h = v.display_size
    return round(h * v.display_aspect / 2) * 2, h


class _Worker(threading.Thread):
    """Runs ``handle(item)`` for each queued item until None; keeps the first exception for the caller."""

    def __init__(self, handle: Callable[[Any], None]) -> None:
        super().__init__(name="onetake-analysis-kernels", daemon=True)
        self.handle = handle
        self.queue: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.handle(item)
                except Exception as exc:  # noqa: BLE001 - re-raised in the decoding thread
                    self.error = exc


def run_pass(path: str, info: SourceInfo, settings: AnalysisSettings,
             report: Callable[[float], None] | None = None) -> dict[str, Any]:
    # the kernels' pictures are a few hundred pixels: OpenCV's thread pool would only add hand-offs and compete
    # with the decoder's threads for the cores
    cv2.setNumThreads(1)
    duration = info.duration or 0.0
    has_video = bool(info.video)
    fps = float(Fraction(info.video[0].frame_rate)) if has_video else 0.0
    try:
        container = open_media(path)
    except av.FFmpegError as exc:
        raise SourceError(path, f"cannot be opened ({exc.strerror})", "check the file and try again") from exc
    with container:
        streams = []
        video_kernels = audio_kernels = None
        if has_video:
            vstream = container.streams.video[[s.index for s in container.streams.video].index(info.video[0].index)]
            vstream.thread_type = "AUTO"
            # one decoding thread per core (FFmpeg's default is one more): the kernels' thread needs a share too
            vstream.thread_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
            vstream.codec_context.options = dict(DECODER_OPTIONS)
            width, height = _display_size(info)
            video_kernels = VideoKernels(settings, width, height, info.video[0].rotation, fps,
                                         info.video[0].vbi_lines)
            streams.append(vstream)
        if info.audio:
            astream = next(s for s in container.streams.audio if s.index == info.audio[0].index)
            audio_kernels = AudioKernels(settings, astream)
            streams.append(astream)

        def handle(frame: av.VideoFrame | av.AudioFrame) -> None:
            if isinstance(frame, av.VideoFrame):
                video_kernels.add(frame)  # type: ignore[union-attr]
            else:
                audio_kernels.add(frame)  # type: ignore[union-attr]

        worker = _Worker(handle)
        worker.start()
        decode_error = None
        next_report = 0.0
        fraction = 0.0
        unreported = 0
        try:
            failures = 0
            for packet in container.demux(streams):
                try:
                    frames = packet.decode()
                    failures = 0
                except av.FFmpegError as exc:  # a packet that does not decode (before the first parameter sets,
                    # a damaged one): noted, and the pass goes on, as ffmpeg's own decode does
                    at = float(packet.pts or 0) * float(packet.time_base or 0)
                    decode_error = decode_error or f"a packet at {at:.2f} s did not decode: {exc.strerror}"
                    failures += 1
                    if failures > UNDECODABLE_PACKETS:
                        decode_error = f"decoding stopped after {failures} packets in a row did not decode"
                        break
                    continue
                for frame in frames:
                    worker.queue.put(frame)
                if worker.error is not None:
                    break
                if report:
                    unreported += 1
                    t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
                    second_passed = t is not None and duration > 0 and t >= next_report
                    if second_passed:
                        fraction = max(fraction, min(1.0, t / duration))
                        next_report = t + 1.0
                    if second_passed or unreported >= REPORT_PACKETS:
                        report(fraction)
                        unreported = 0
        finally:
            worker.queue.put(None)
            worker.join()
        if worker.error is not None:
            raise worker.error
    features = video_kernels.f if video_kernels else None
    if has_video and (features is None or not features.count):
        raise SourceError(path, "its video stream holds no pictures that can be decoded",
                          "re-export the file and try again")
    result: dict[str, Any] = {"version": RESULT_VERSION, "fps": round(fps, 3) if has_video else None}
    origin = video_kernels.origin if video_kernels and video_kernels.origin is not None else 0.0
    if has_video:  # where the times below are counted from, for whoever reads pictures at them again
        result.update({"video_stream": info.video[0].index, "video_start": round(origin, 6)})
    if features is not None:
        f = features
        end = detect.frame_end(f.times, f.count - 1, fps)
        v = info.video[0]
        coded = (v.width, v.picture_height)
        black_level, span = nominal_range(v.color_range == "pc" or v.pix_fmt.startswith("yuvj"))
        transitions, shots = detect.transitions_and_shots(f, fps, settings)
        black, freeze = detect.black_and_freeze(f, transitions, fps, settings)
        crop = framing.crop_path(f, shots, fps, settings)
        result.update({"duration": round(max(end, duration), 3), "frames": f.count, "width": f.width,
                       "height": f.height, "transitions": transitions, "shots": shots, "black": black,
                       "freeze": freeze,
                       "active_area": detect.active_area(f, coded, v.rotation, black_level, span, settings),
                       "interlaced": detect.interlaced(f, settings),
                       **poster.posters(f, transitions, shots, crop, fps, settings), "crop_path": crop})
    else:
        result.update({"duration": round(duration, 3), "frames": 0, "width": None, "height": None,
                       "transitions": [], "shots": [], "black": [], "freeze": [], "active_area": None,
                       "interlaced": None, "poster": None, "cover": None, "shot_posters": [],
                       "crop_path": {"aspect": f"{settings.crop_aspect[0]}:{settings.crop_aspect[1]}", "points": []}})
    if audio_kernels is not None:
        result.update(audio_kernels.finish(origin, result["duration"]))
    else:
        result.update({"silence": [], "loudness": {"integrated": None, "true_peak": None, "lra": None,
                                                   "short_term": []}})
    if decode_error:
        result["decode_error"] = decode_error
    if report:
        report(1.0)
    return result
