"""The demo source: a generated 1080p25 test pattern with a tone, made by ffmpeg's lavfi sources."""

from __future__ import annotations

from pathlib import Path

from ..pipeline.config import FarmConfig
from .ffmpeg import run_ffmpeg


def make_demo_clip(folder: Path, seconds: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / f"demo-{seconds:g}s.mp4"
    if clip.exists():
        return clip
    partial = folder / f".{clip.name}.partial.mp4"
    run_ffmpeg(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds:g}",
                "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate=48000:duration={seconds:g}",
                "-af", "volume=-12dB", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", "file:" + str(partial)],
               FarmConfig().limits(seconds), duration=seconds, what="demo clip generation")
    partial.rename(clip)
    return clip
