"""Shared fixtures: test media made by the real ffmpeg from lavfi sources, in tmp_path."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

import psutil
import pytest

from onetake.pipeline.profiles import load_catalog
from onetake.workers.ffmpeg import ffmpeg_binary


def ffmpeg(*args: str) -> None:
    """Run the real ffmpeg quietly; fail the test with its stderr if it fails."""
    cmd = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"test media generation failed: {' '.join(cmd)}\n{result.stderr}")


def make_clip(path: Path, *, seconds: float = 1.0, size: str = "320x240", rate: str = "25",
              video: str | None = "testsrc2", audio: str | None = "sine", audio_channels: int = 2,
              video_args: tuple[str, ...] = (), audio_args: tuple[str, ...] = (),
              output_args: tuple[str, ...] = ()) -> Path:
    """A clip from lavfi: ``video`` testsrc2/color pattern, ``audio`` a 1 kHz sine at -20 dBFS."""
    inputs: list[str] = []
    maps: list[str] = []
    if video:
        source = f"{video}=size={size}:rate={rate}:duration={seconds}" if video == "testsrc2" else video
        inputs += [*video_args, "-f", "lavfi", "-i", source]
        maps += ["-map", f"{len(maps) // 2}:v"]
    if audio:
        source = (f"sine=frequency=1000:sample_rate=48000:duration={seconds}" if audio == "sine" else audio)
        inputs += [*audio_args, "-f", "lavfi", "-i", source]
        maps += ["-map", f"{len(maps) // 2}:a"]
    codec = []
    if video:
        codec += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio_channels]
        codec += ["-c:a", "aac", "-af", f"volume=-20dB,aformat=channel_layouts={layout}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(*inputs, *maps, *codec, *output_args, "file:" + str(path))
    return path


def ffmpeg_among(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """The ffmpeg processes among these; one that exits while it is being looked at is not among them."""
    found = []
    for process in processes:
        try:
            if "ffmpeg" in process.name():
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """1 s, 320x240 25p H.264 + stereo AAC 1 kHz tone at -20 dBFS, in MP4."""
    return make_clip(tmp_path / "clip.mp4")
