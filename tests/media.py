"""Running the CLI over batches of sources and decoding what it delivered: shared by the real-world tests."""

from __future__ import annotations

import json
import os
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from click.testing import CliRunner

from onetake.cli import cli
from onetake.workers.ffmpeg import ffmpeg_binary


class Batch:
    """The outcome of one `onetake run --json` over several sources."""

    def __init__(self, out: Path, channels: str, result: Any) -> None:
        self.out = out
        self.channels = channels
        self.result = result
        try:
            self.summary = json.loads(result.stdout)
        except ValueError:
            raise AssertionError(f"onetake run printed no JSON summary (exit {result.exit_code}):\n"
                                 f"{result.stdout}\n{result.stderr}") from result.exception
        self.by_source = {s["source"]: s for s in self.summary["sources"]}

    def outcome(self, source: Path) -> dict[str, Any]:
        outcome = self.by_source[os.path.abspath(source)]
        assert outcome["ok"], f"{source.name} was not delivered: {outcome}"
        return outcome

    def delivery(self, source: Path, channel: str) -> Path:
        """The delivered folder of ``source`` for ``channel`` (the one its manifest is in)."""
        outcome = self.outcome(source)
        manifests = [c["manifest"] for c in outcome["channels"] if c["channel"] == channel]
        assert manifests and manifests[0], f"{source.name}: no {channel} delivery in {outcome}"
        folder = Path(manifests[0]).parent
        assert folder.parent == self.out / channel
        return folder


def run_batch(sources: list[Path], out: Path, channels: str, cwd: Path | None = None,
              names: list[str] | None = None) -> Batch:
    """``onetake run --json`` in-process; ``names`` are passed as given (relative to ``cwd``) after ``--``."""
    args = ["run", "--json", "--out", str(out), "--channels", channels, "--", *[str(s) for s in sources],
            *(names or [])]
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=True)
    finally:
        os.chdir(old)
    return Batch(out, channels, result)


def probe_json(path: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["probe", "--json", str(path)])
    assert result.exit_code == 0, f"probe failed: {result.stderr}"
    return json.loads(result.stdout)


def video_frames(path: Path, count: int | None = None) -> list[av.VideoFrame]:
    frames = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            frames.append(frame)
            if count is not None and len(frames) >= count:
                break
    return frames


def rgb_at(path: Path, seconds: float = 0.3) -> np.ndarray:
    """The first picture at or after ``seconds``, as an RGB array (rows, columns, 3)."""
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            if frame.time is not None and frame.time >= seconds - 1e-6:
                return frame.to_ndarray(format="rgb24").astype(np.int32)
    raise AssertionError(f"{path}: no picture at {seconds} s")


def video_timing(path: Path) -> tuple[Fraction, list[float]]:
    """The stream's average rate and every frame's presentation time, in order."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(s) if p.pts is not None)
        times = [float(p * s.time_base) for p in pts]
        return Fraction(s.average_rate), times


def audio_of(path: Path, index: int = 0) -> tuple[np.ndarray, int]:
    """Audio stream ``index`` (among audio streams) decoded as float planar: (channels, samples), rate."""
    with av.open(str(path)) as c:
        s = c.streams.audio[index]
        resampler = av.AudioResampler(format="fltp")
        chunks = []
        for frame in c.decode(s):
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
        return np.concatenate(chunks, axis=1), s.rate


def level(x: np.ndarray) -> float:
    """RMS in dBFS (-200 for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else -200.0


def tone(x: np.ndarray, rate: int, hz: float) -> float:
    """Magnitude of the spectrum of mono ``x`` at ``hz`` (Hann window, summed over +-5 Hz)."""
    x = x[: rate]  # one second: 1 Hz bins
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[(freqs > hz - 5) & (freqs < hz + 5)].sum())


def dominant_hz(x: np.ndarray, rate: int) -> float:
    x = x[: rate]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def is_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 60) -> bool:
    mean = pixels.reshape(-1, 3).mean(axis=0)
    return bool(np.all(np.abs(mean - np.array(rgb)) < tol))


def shift_between(a: np.ndarray, b: np.ndarray, span: int = 40) -> int:
    """The horizontal shift (pixels) that best maps picture ``a`` onto ``b``."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    best, best_err = 0, float("inf")
    for s in range(-span, span + 1):
        err = float(np.abs(np.roll(a, s, axis=1)[:, span:-span] - b[:, span:-span]).mean())
        if err < best_err:
            best, best_err = s, err
    return best


def make_flash_beep(path: Path, seconds: float, size: str = "320x180", gop: int = 250) -> Path:
    """A moving test pattern that flashes white for one picture on every whole second, with a 1 kHz beep starting
    on the same sample: any drift between picture and sound shows as the beep's distance from the flash. Encoded
    with long GOPs, so that a chunk's seek has to decode its way in from a keyframe far before its start."""
    flash = "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,1),0.02)'"
    beep = "if(lt(mod(t,1),0.03),0.5*sin(2*PI*1000*t),0)"
    subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds},{flash}",
                    "-f", "lavfi", "-i", f"aevalsrc='{beep}|{beep}':s=48000:d={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "192k", "file:" + str(path)], check=True)
    return path


def flashes_and_beeps(path: Path) -> tuple[list[float], list[float]]:
    """When each flash is shown and each beep starts (seconds, on the file's clock): the pictures much brighter
    than the pattern, and the first sample of each burst louder than half its peak."""
    with av.open(str(path)) as container:  # (bars around a padded picture keep a flash's mean below white)
        means = [(float(f.pts * f.time_base), float(f.to_ndarray(format="gray").mean()))
                 for f in container.decode(video=0)]
    middle, brightest = float(np.median([m for _, m in means])), max(m for _, m in means)
    flashes = [t for t, m in means if m > (middle + brightest) / 2]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        first, chunks = None, []
        for frame in container.decode(stream):
            if first is None:
                first = float(frame.pts * frame.time_base)
            chunks.append(frame.to_ndarray().astype(np.float64).reshape(-1, frame.samples)[0])
        rate = stream.rate
    sound = np.abs(np.concatenate(chunks))
    beeps, at = [], 0
    loud = sound > 0.5 * sound.max()
    while True:
        ahead = np.flatnonzero(loud[at:])
        if not len(ahead):
            break
        start = at + int(ahead[0])
        beeps.append((first or 0.0) + start / rate)
        at = start + rate // 2  # the next burst is a second on
    return flashes, beeps
