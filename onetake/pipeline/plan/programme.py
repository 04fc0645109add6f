"""What of a source makes the programme every output carries: its audio streams, its start and its length."""

from __future__ import annotations

from ..models import AudioStreamInfo, SourceInfo


def programme_streams(source: SourceInfo) -> list[AudioStreamInfo]:
    """The audio that makes the stereo programme: the default stream, or two mono tracks as L/R."""
    audio = sorted(source.audio, key=lambda a: (not a.default, a.index))
    if not audio:
        return []
    first = audio[0]
    if first.channels == 1:
        partner = next((a for a in source.audio if a.index != first.index and a.channels == 1), None)
        if partner is not None:
            return sorted([first, partner], key=lambda a: a.index)
    return [first]


def programme_start(source: SourceInfo) -> float:
    """Where every output's 0 lies on the source's own clock (ffmpeg reads sources with -copyts, so a timestamp
    means the same to it as to PyAV, and a filter graph that is rebuilt mid-stream keeps the same origin): the
    first picture that decodes; without usable picture times, the programme audio's start."""
    if source.video and not source.video[0].retimed:
        return source.video[0].start_time
    programme = programme_streams(source)
    return programme[0].start_time if programme else 0.0


def programme_duration(source: SourceInfo) -> float:
    """How long every output runs: the picture's duration, or the audio's for audio-only sources."""
    if source.video and source.video[0].duration > 0:
        return round(source.video[0].duration, 6)
    return round(source.duration, 6)
