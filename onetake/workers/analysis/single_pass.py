"""The one decode pass: PyAV demuxes the source once and decodes its video (threaded) and first audio stream;
a worker thread runs the kernels on each frame while the main thread decodes the next ones (OpenCV and most
numpy reductions release the GIL, and FFmpeg's decoder threads run outside it)."""

from __future__ import annotations

import collections
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import cv2

from ...pipeline.errors import SourceError
from ...pipeline.models import SourceInfo
from ...pipeline.probe import UNDECODABLE_PACKETS, open_media
from . import detect, framing, poster
from .audio import AudioKernels, silences
from .settings import AnalysisSettings
from .video import VideoFeatures, VideoKernels, nominal_range

QUEUE_FRAMES = 8
# The kernels look at pictures area-averaged to 160 px: the in-loop deblocking filter changes them by about a tenth of
# a grey level there, and skipping it saves about 8 % of an H.264 decode's CPU time (measured on the 1080p25
# benchmark source). Decoders without such a filter ignore the option.
DECODER_OPTIONS = {"skip_loop_filter": "all"}
RESULT_VERSION = 2
# ``report`` is also where a caller stops the pass (time limits, a cancelled task): it is called at least every
# second of the source and every this many packets, so that a slow decode is still checked often
REPORT_PACKETS = 16
SEEK_BACK_S = (1.0, 5.0, 30.0)  # how far before a stretch its decode seeks, until a keyframe before it comes out
KEYFRAME_SEARCH_FRAMES = 1000


@dataclass(frozen=True)
class Stretch:
    """Where a stretch of the pictures lies on the source's clock (seconds): from ``start`` (None: the first
    picture) up to ``end`` (None: to the end); ``origin`` is 0 of the analysis's times."""

    start: float | None
    end: float | None
    origin: float


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


def _open(path: str) -> av.container.InputContainer:
    try:
        return open_media(path)
    except av.FFmpegError as exc:
        raise SourceError(path, f"cannot be opened ({exc.strerror})", "check the file and try again") from exc


def _video_stream(container: av.container.InputContainer, info: SourceInfo) -> av.video.stream.VideoStream:
    vstream = container.streams.video[[s.index for s in container.streams.video].index(info.video[0].index)]
    vstream.thread_type = "AUTO"
    # one decoding thread per core (FFmpeg's default is one more): the kernels' thread needs a share too
    vstream.thread_count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    vstream.codec_context.options = dict(DECODER_OPTIONS)
    return vstream


def _audio_stream(container: av.container.InputContainer, info: SourceInfo) -> av.audio.stream.AudioStream:
    """The stream the probe calls the source's first audio."""
    return next(s for s in container.streams.audio if s.index == info.audio[0].index)


def _video_kernels(info: SourceInfo, settings: AnalysisSettings, origin: float | None = None,
                   coded: tuple[int, int] | None = None) -> VideoKernels:
    width, height = _display_size(info)
    return VideoKernels(settings, width, height, info.video[0].rotation, float(Fraction(info.video[0].frame_rate)),
                        info.video[0].vbi_lines, origin, coded)


def _decode(container: av.container.InputContainer, streams: list[Any], handle: Callable[[Any], None],
            place: Callable[[Any], float | None], total: float, report: Callable[[float], None] | None) -> str | None:
    """Demux ``streams`` and hand every decoded frame to ``handle`` on the kernels' thread while decoding goes on
    here. ``place(frame)``: how many of the pass's ``total`` seconds lie before the frame, or None to stop there.
    ``report(fraction)`` is called each second of them with the new fraction, and with the same one every
    ``REPORT_PACKETS`` packets between (a report that does not advance is what a stall looks like). Returns
    what went wrong in decoding, if anything did (the pass goes on past a few bad packets, as ffmpeg's own
    decode does)."""
    worker = _Worker(handle)
    worker.start()
    decode_error = None
    covered = fraction = 0.0
    next_report = 0.0
    unreported = 0
    try:
        failures = 0
        for packet in container.demux(streams):
            try:
                frames = packet.decode()
                failures = 0
            except av.FFmpegError as exc:  # before the first parameter sets, or a damaged packet
                at = float(packet.pts or 0) * float(packet.time_base or 0)
                decode_error = decode_error or f"a packet at {at:.2f} s did not decode: {exc.strerror}"
                failures += 1
                if failures > UNDECODABLE_PACKETS:
                    decode_error = f"decoding stopped after {failures} packets in a row did not decode"
                    break
                continue
            stop = False
            for frame in frames:
                where = place(frame)
                if where is None:
                    stop = True
                    break
                covered = max(covered, where)
                worker.queue.put(frame)
            if stop or worker.error is not None:
                break
            if report:
                unreported += 1
                second_passed = covered >= next_report
                if second_passed:
                    fraction = min(1.0, covered / total) if total > 0 else 0.0
                    next_report = covered + 1.0
                if second_passed or unreported >= REPORT_PACKETS:
                    report(fraction)
                    unreported = 0
    finally:
        worker.queue.put(None)
        worker.join()
    if worker.error is not None:
        raise worker.error
    return decode_error


def _seconds_from(start: float) -> Callable[[Any], float]:
    def place(frame: Any) -> float:
        return 0.0 if frame.time is None else max(0.0, float(frame.time) - start)
    return place


def run_pass(path: str, info: SourceInfo, settings: AnalysisSettings,
             report: Callable[[float], None] | None = None) -> dict[str, Any]:
    """The whole source in one decode: pictures and programme sound together."""
    # the kernels' pictures are a few hundred pixels: OpenCV's thread pool would only add hand-offs and compete
    # with the decoder's threads for the cores
    cv2.setNumThreads(1)
    with _open(path) as container:
        streams = []
        video_kernels = audio_kernels = None
        if info.video:
            streams.append(_video_stream(container, info))
            video_kernels = _video_kernels(info, settings)
        if info.audio:
            astream = _audio_stream(container, info)
            audio_kernels = AudioKernels(settings, astream)
            streams.append(astream)

        def handle(frame: av.VideoFrame | av.AudioFrame) -> None:
            if isinstance(frame, av.VideoFrame):
                video_kernels.add(frame)  # type: ignore[union-attr]
            else:
                audio_kernels.add(frame)  # type: ignore[union-attr]

        decode_error = _decode(container, streams, handle, _seconds_from(info.start_time), info.duration or 0.0,
                               report)
    origin = video_kernels.origin if video_kernels and video_kernels.origin is not None else 0.0
    features = video_kernels.f if video_kernels else None
    return summarise(path, info, settings, features, origin,
                     (lambda duration: audio_kernels.finish(origin, duration)) if audio_kernels else None,
                     decode_error, report)


def pictures_pass(path: str, info: SourceInfo, settings: AnalysisSettings, stretch: Stretch,
                  report: Callable[[float], None] | None = None) -> tuple[VideoFeatures, str | None]:
    """The features of one stretch of the pictures, as the whole decode would have kept them: decoded from a
    seek before it, the frame before it measured against, its frames from ``stretch.start`` up to ``stretch.end``
    (seconds on the source's clock; None: to the end). Every stretch takes its pictures at the probed size (one
    decode takes them at its first picture's, which is the same but in odd files)."""
    cv2.setNumThreads(1)
    v = info.video[0]
    kernels = _video_kernels(info, settings, stretch.origin, (v.width, v.height) if v.width and v.height else None)
    frame_s = float(1 / v.rate) if v.rate else 0.04
    with _open(path) as container:
        vstream = _video_stream(container, info)
        begin = stretch.origin if stretch.start is None else _seek_before(container, vstream, stretch.start)
        before: collections.deque[bool] = collections.deque()  # per frame handed on: whether it precedes the stretch
        last = [begin - frame_s]

        def place(frame: av.VideoFrame) -> float | None:
            t = last[0] + frame_s if frame.time is None else float(frame.time)  # no time: a picture after the last
            last[0] = t
            if stretch.end is not None and t >= stretch.end:
                return None
            before.append(stretch.start is not None and t < stretch.start)
            return max(0.0, t - begin)

        def handle(frame: av.VideoFrame) -> None:
            if before.popleft():
                kernels.precedes(frame)
            else:
                kernels.add(frame)

        total = (stretch.origin + info.duration if stretch.end is None else stretch.end) - begin
        decode_error = _decode(container, [vstream], handle, place, total, report)
    return kernels.f, decode_error


def _seek_before(container: av.container.InputContainer, vstream: Any, start: float) -> float:
    """Seek to a keyframe before ``start`` (seconds), so that the frame before it and every frame from it decode
    whole: a seek lands on a keyframe at or before its target in most formats, but MPEG-TS finds its place by
    bytes and can land after, so further back each time it does not, and from the very start at last. Returns
    the time the decode starts from."""
    base = float(vstream.time_base)
    for back in SEEK_BACK_S:
        target = max(0, int((start - back) / base))
        try:
            container.seek(target, stream=vstream, backward=True)
        except av.FFmpegError:  # a format that cannot seek there: from the start
            break
        key = _first_keyframe(container, vstream)
        if key is not None and key.time is not None and key.time < start:
            container.seek(target, stream=vstream, backward=True)  # again, so that the frames on the way count
            return float(key.time)
    first = vstream.start_time or 0
    container.seek(first, stream=vstream, backward=True)
    return first * base


def _first_keyframe(container: av.container.InputContainer, vstream: Any) -> av.VideoFrame | None:
    """The first keyframe decoded from where the container is (the frames shown before it may be an open GOP's
    leading pictures, which cannot be decoded whole after a seek), looked for a few GOPs' worth at most."""
    for count, frame in enumerate(f for packet in container.demux(vstream) for f in _decoded(packet)):
        if frame.key_frame:
            return frame
        if count >= KEYFRAME_SEARCH_FRAMES:
            break
    return None


def _decoded(packet: av.Packet) -> list[av.VideoFrame]:
    try:
        return list(packet.decode())
    except av.FFmpegError:
        return []


def sound_pass(path: str, info: SourceInfo, settings: AnalysisSettings, origin: float,
               report: Callable[[float], None] | None = None) -> dict[str, Any]:
    """The programme sound's analysis (silence, loudness) alone, its times from ``origin``: the pictures of a
    long programme are analysed in stretches on other workers meanwhile. Its silent runs are kept whole
    (``silence_runs``); ``joined_pass`` ends them where the programme does."""
    with _open(path) as container:
        astream = _audio_stream(container, info)
        kernels = AudioKernels(settings, astream)
        decode_error = _decode(container, [astream], kernels.add, _seconds_from(info.start_time),
                               info.duration or 0.0, report)
    return {**kernels.finish(origin, None), "decode_error": decode_error}


def summarise(path: str, info: SourceInfo, settings: AnalysisSettings, features: VideoFeatures | None,
              origin: float, audio: Callable[[float], dict[str, Any]] | None, decode_error: str | None,
              report: Callable[[float], None] | None = None) -> dict[str, Any]:
    """The analysis from what the decode kept: ``audio(duration)``: the sound's part of it."""
    has_video = bool(info.video)
    fps = float(Fraction(info.video[0].frame_rate)) if has_video else 0.0
    duration = info.duration or 0.0
    if has_video and (features is None or not features.count):
        raise SourceError(path, "its video stream holds no pictures that can be decoded",
                          "re-export the file and try again")
    result: dict[str, Any] = {"version": RESULT_VERSION, "fps": round(fps, 3) if has_video else None}
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
    if audio is not None:
        result.update(audio(result["duration"]))
    else:
        result.update({"silence": [], "loudness": {"integrated": None, "true_peak": None, "lra": None,
                                                   "short_term": []}})
    if decode_error:
        result["decode_error"] = decode_error
    if report:
        report(1.0)
    return result


def joined_pass(path: str, info: SourceInfo, settings: AnalysisSettings, stretches: list[str],
                sound: dict[str, Any] | None, origin: float, decode_error: str | None) -> dict[str, Any]:
    """The analysis from its stretches' features (files that ``pictures_pass``'s features were saved to, in
    programme order) and the sound's part made by ``sound_pass``."""
    features = VideoFeatures.joined([VideoFeatures.load(p) for p in stretches], settings.interlace_samples)

    def audio(duration: float) -> dict[str, Any]:
        assert sound is not None
        return {"silence": silences(sound["silence_runs"], duration, settings), "loudness": sound["loudness"]}

    return summarise(path, info, settings, features, origin, audio if sound is not None else None, decode_error)
