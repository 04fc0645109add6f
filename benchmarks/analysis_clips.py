"""Clips of known truth for the analysis, made by ffmpeg's lavfi sources, and the scores against that truth.

Shared by the tests (tests/test_analysis.py) and ``python -m benchmarks analyze`` (its accuracy figures).
Every clip is 25 fps; frame ``i`` starts at ``i / 25`` s.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onetake.workers.ffmpeg import ffmpeg_binary

FPS = 25
SIZE = "320x180"
# looks that differ from each other at every cut (no two adjacent segments share one)
LOOKS = ["testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "testsrc", "color=c=red", "color=c=0x2060c0",
         "color=c=0xe0e0e0", "smptehdbars", "color=c=0x208020"]


@dataclass
class Truth:
    cuts: list[int] = field(default_factory=list)                           # first frame of the new shot
    gradual: list[tuple[int, int, str]] = field(default_factory=list)        # (frame, end_frame, kind)
    black: list[tuple[float, float]] = field(default_factory=list)
    freeze: list[tuple[float, float]] = field(default_factory=list)
    silence: list[tuple[float, float]] = field(default_factory=list)
    subject: tuple[float, float, float, float] | None = None                # x0 (fraction), speed (fraction/s),
                                                                            # width (fraction), seconds


def _ffmpeg(*args: str) -> None:
    argv = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"making a test clip failed: {' '.join(argv)}\n{result.stderr[-2000:]}")


def _source(look: str, seconds: float, size: str = SIZE) -> str:
    """A lavfi source of ``look`` lasting exactly round(seconds * FPS) frames."""
    sep = ":" if "=" in look else "="
    return f"{look}{sep}s={size}:r={FPS},trim=end_frame={round(seconds * FPS)},setpts=PTS-STARTPTS,format=yuv420p"


def _encode(graph: str, audio: str, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    _ffmpeg("-filter_complex", graph, "-f", "lavfi", "-i", audio, "-map", "[v]", "-map", "0:a",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50",
            "-c:a", "aac", "-shortest", "file:" + str(out))
    return out


def transitions_clip(folder: Path) -> tuple[Path, Truth]:
    """10 s: testsrc2 (2 s) | cut | smptebars (3 s, fading out over its last second) | black (1 s) |
    mandelbrot (3 s, fading in over its first second) dissolving (1 s, from 8 s) into testsrc (2 s).
    Audio: a 1 kHz tone, silent from 3.0 to 4.5 s."""
    graph = (f"{_source('testsrc2', 2)}[a];{_source('smptebars', 3)},fade=t=out:st=2:d=1[b];"
             f"{_source('color=c=black', 1)}[k];{_source('mandelbrot', 3)},fade=t=in:st=0:d=1[c];"
             f"{_source('testsrc', 2)}[d];[a][b][k][c]concat=n=4:v=1:a=0,settb=1/{FPS}[abkc];"
             f"[abkc][d]xfade=transition=fade:duration=1:offset=8,format=yuv420p[v]")
    audio = "sine=frequency=1000:sample_rate=48000:duration=10,volume=enable='between(t,3,4.5)':volume=0"
    truth = Truth(cuts=[50], gradual=[(100, 125, "fade"), (150, 175, "fade"), (200, 225, "dissolve")],
                  black=[(5.0, 6.0)], silence=[(3.0, 4.5)])
    return _encode(graph, audio, folder / "transitions.mp4"), truth


def segments_clip(folder: Path) -> tuple[Path, Truth]:
    """7.6 s: testsrc2 for 2 s whose last picture (1.96 s) holds until 4 s, black 4.0-5.6 s, testsrc2 again.
    Audio: a tone, silent 5.0-6.0 s."""
    graph = (f"{_source('testsrc2', 2)},tpad=stop_mode=clone:stop_duration=2[a];{_source('color=c=black', 1.6)}[k];"
             f"{_source('testsrc2', 2)}[b];[a][k][b]concat=n=3:v=1:a=0,format=yuv420p[v]")
    audio = "sine=frequency=440:sample_rate=48000:duration=7.6,volume=enable='between(t,5,6)':volume=0"
    truth = Truth(cuts=[100, 140], freeze=[(1.96, 4.0)], black=[(4.0, 5.6)], silence=[(5.0, 6.0)])
    return _encode(graph, audio, folder / "segments.mp4"), truth


def many_cuts_clip(folder: Path, cuts: int = 50, seed: int = 4) -> tuple[Path, Truth]:
    """``cuts`` hard cuts between segments of 6 to 14 frames of different looks (320x180)."""
    rng = random.Random(seed)
    lengths = [rng.randint(6, 14) for _ in range(cuts + 1)]
    looks: list[str] = []
    for _ in lengths:
        looks.append(rng.choice([x for x in LOOKS if not looks or x != looks[-1]]))
    parts = [f"{_source(look, n / FPS)}[s{i}]" for i, (look, n) in enumerate(zip(looks, lengths, strict=True))]
    graph = ";".join(parts) + ";" + "".join(f"[s{i}]" for i in range(len(lengths))) + \
        f"concat=n={len(lengths)}:v=1:a=0,format=yuv420p[v]"
    seconds = sum(lengths) / FPS
    truth = Truth(cuts=np.cumsum(lengths)[:-1].tolist())
    return _encode(graph, f"sine=frequency=1000:sample_rate=48000:duration={seconds:g}", folder / "cuts.mp4"), truth


def moving_subject_clip(folder: Path, seconds: float = 6.0) -> tuple[Path, Truth]:
    """640x360: a bright 40x40 square with a dark core crossing a dark grey picture from left to right."""
    w, box = 640, 40
    graph = (f"color=c=0x303030:s=640x360:r={FPS}:d={seconds:g}[bg];color=c=white:s={box}x{box}:r={FPS}:"
             f"d={seconds:g},drawbox=x=12:y=12:w=16:h=16:c=black:t=fill[fg];"
             f"[bg][fg]overlay=x='(W-w)*t/{seconds:g}':y=160:shortest=1,format=yuv420p[v]")
    truth = Truth(subject=(0.0, (w - box) / w / seconds, box / w, seconds))
    return _encode(graph, f"sine=frequency=1000:sample_rate=48000:duration={seconds:g}", folder / "moving.mp4"), truth


def static_clip(folder: Path, seconds: float = 4.0) -> tuple[Path, Truth]:
    """A still shot: SMPTE bars, 640x360, nothing moves."""
    graph = f"smptebars=s=640x360:r={FPS}:d={seconds:g},format=yuv420p[v]"
    return _encode(graph, f"sine=frequency=1000:sample_rate=48000:duration={seconds:g}", folder / "static.mp4"), \
        Truth()


# ---------------------------------------------------------------------------------------------------------
# scores


def match_frames(found: list[int], truth: list[int], tolerance: int) -> dict[str, Any]:
    """Greedy one-to-one matching within ``tolerance`` frames: precision, recall, F1 and the offsets."""
    left = sorted(found)
    offsets = []
    for t in truth:
        near = [f for f in left if abs(f - t) <= tolerance]
        if near:
            best = min(near, key=lambda f: abs(f - t))
            offsets.append(best - t)
            left.remove(best)
    hit = len(offsets)
    precision = hit / len(found) if found else 1.0
    recall = hit / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"found": len(found), "truth": len(truth), "matched": hit, "precision": round(precision, 4),
            "recall": round(recall, 4), "f1": round(f1, 4), "max_offset_frames": max(map(abs, offsets), default=None)}


def segment_errors(found: list[dict[str, float]], truth: list[tuple[float, float]]) -> list[float | None]:
    """For each true segment, the larger of its start and end errors (s) against the nearest found one."""
    out: list[float | None] = []
    for a, b in truth:
        if not found:
            out.append(None)
            continue
        best = min(found, key=lambda s: abs(s["start"] - a) + abs(s["end"] - b))
        out.append(round(max(abs(best["start"] - a), abs(best["end"] - b)), 3))
    return out


def subject_inside(result: dict[str, Any], truth: Truth) -> float:
    """Share of frames whose whole subject box lies inside the 9:16 window of the crop path."""
    from onetake.workers.analysis.framing import window_fraction, x_at

    assert truth.subject is not None
    x0, speed, width, _ = truth.subject
    n = result["frames"]
    centres = x_at(result["crop_path"]["points"], n)
    wf = window_fraction(result["width"], result["height"], (9, 16))
    t = np.arange(n) / FPS
    left = x0 + speed * t
    inside = (left >= centres - wf / 2 - 1e-9) & (left + width <= centres + wf / 2 + 1e-9)
    return float(inside.mean())


def jitter(result: dict[str, Any]) -> float:
    """Largest frame-to-frame move of the crop centre (fraction of the width)."""
    from onetake.workers.analysis.framing import x_at

    xs = x_at(result["crop_path"]["points"], result["frames"])
    return float(np.abs(np.diff(xs)).max()) if len(xs) > 1 else 0.0
