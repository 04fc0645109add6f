"""Loudness: one meter (ffmpeg's ``ebur128``, as verify reads every output), and the measure step that settles
a loudness target's gain and limiter ceiling before the encodes that make it start (a measure task per target).

Why settle instead of computing: a gain from the programme's measured loudness and a 4x-oversampled look-ahead
limiter keep PCM outputs where they belong, but a lossy encoder moves both numbers on its own (AAC on sharp
transients adds 1-3 dB of true peak and takes up to 1.5 LU off broadband noise). So the measure step runs the
target's branch as the encode will (``trial`` in the plan), meters what comes out exactly as verify will, and
corrects the gain and the ceiling until the target lands inside its limits (``SETTLE_ROUNDS`` at most). The
encode then makes the same samples, and verify finds what the measure step found. Where the trial is that very
encode (a chunked programme's sound, made once for the whole programme), the chosen round's file is kept, and the
encode takes it instead of making it again. (An urgent first version
takes no trial: it encodes the computed setting, and verify checks it.)
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

from ..pipeline.errors import EncodeError, VerificationError
from ..pipeline.hashes import short_hash
from ..pipeline.media import PROTOCOL_WHITELIST
from ..pipeline.plan.audio import METER, written_into
from .ffmpeg import run_ffmpeg
from .files import exclusive, write_atomically

SILENCE_LUFS = -70.0           # BS.1770's absolute gate: nothing above it is a silent (or too short) programme
SETTLE_ROUNDS = 6
PEAK_MARGIN_DB = 0.1           # a settled output's true peak stays this far under its limit
LOUDNESS_SETTLED = 0.5         # a target counts as met within this share of its tolerance
MAX_DRIVE_STEP_DB = 8.0
# The limiter's release: 50 ms is clean on speech and music; where more drive hardly lowers the peaks (handclaps,
# door slams: sound that is mostly transients) it lets go after 15 ms, so that the gain reaches the body of the
# sound instead of only holding its peaks down.
RELEASE_MS = (50, 15)
SLUGGISH = 0.3                 # peak-to-loudness ratio lowered by less than this per dB of drive: release sooner
FIRST_SENSITIVITY = 0.6        # a first guess of the same, before two rounds have measured it


def summary(log: str, instance: str = "") -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) from the last summary ebur128 printed (of the filter
    instance named ``instance``, e.g. ``ebur128@target-0``, when given)."""
    at = log.rfind(f"[{instance} @") if instance else log.rfind("Summary:")
    block = log[log.find("Summary:", at):] if at >= 0 else ""
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf|nan) LUFS", block)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf|nan) dBFS", block)
    if not integrated or not peak:
        raise ValueError(f"no loudness summary{f' from {instance}' if instance else ''} in ffmpeg's output")
    return float(integrated.group(1)), float(peak.group(1))


def meter_argv(path: str, tracks: int) -> list[str]:
    """ebur128 over a file's audio: its tracks merged into one programme when there are several (mono tracks
    of a playout file)."""
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-protocol_whitelist", PROTOCOL_WHITELIST, "-i",
            "file:" + path]
    meter = "ebur128=" + ":".join(f"{key}={value}" for key, value in METER.items())  # the planned meter's options
    if tracks > 1:
        inputs = "".join(f"[0:a:{i}]" for i in range(tracks))
        argv += ["-filter_complex", f"{inputs}amerge=inputs={tracks},{meter}[out]", "-map", "[out]"]
    else:
        argv += ["-map", "0:a:0", "-af", meter]
    return argv + ["-f", "null", "-"]


def meter(path: str, tracks: int, limits: dict[str, float]) -> tuple[float, float]:
    """Integrated loudness and true peak of a file's audio, measured as verify measures every output."""
    log = run_ffmpeg(meter_argv(path, tracks), limits, what="loudness measurement")
    try:
        return summary(log)
    except ValueError as exc:
        raise VerificationError(f"{path}: the loudness meter gave no summary") from exc


def silent(integrated: float) -> bool:
    return not math.isfinite(integrated) or integrated <= SILENCE_LUFS


def fill(argv: list[str], targets: Mapping[int, dict[str, Any]] | None, scratch: str = "") -> list[str]:
    """Put each target's gain and limiter ceiling (and the trial's scratch folder) into a planned argv: target N's
    setting (``targets[N]``) in place of ``{gain_N}``, ``{limit_N}`` and ``{release_N}``. None: the programme is
    silent, and every gain is 0 dB and no limiter acts."""
    values: dict[str, str] = {"scratch": scratch}
    for i, t in (targets or {}).items():
        values[f"gain_{i}"] = f"{t['gain_db']:.2f}"
        values[f"limit_{i}"] = f"{10 ** (t['ceiling_db'] / 20):.5f}"
        values[f"release_{i}"] = f"{t.get('release_ms', RELEASE_MS[0]):g}"
    unsettled = {"gain": "0", "limit": "1", "release": f"{RELEASE_MS[0]}"}

    def value(m: re.Match[str]) -> str:
        if targets is None:
            return unsettled[m.group(1)]
        if m.group(0)[1:-1] not in values:  # a plan whose encode does not wait for this target's measure
            raise ValueError(f"no measured setting for loudness target {m.group(2)} ({m.group(0)}): the encode "
                             f"does not wait for that target's measure task")
        return values[m.group(0)[1:-1]]

    def put(word: str) -> str:
        word = re.sub(r"\{(gain|limit|release)_(\d+)\}", value, word)
        return word.replace("{scratch}", scratch) if scratch else word

    return [put(word) for word in argv]


class _Target:
    """One target's search, in two independent numbers (alimiter and, nearly, an encoder do the same to a
    signal scaled up or down):

    - the drive, how far the gain pushes the programme into the limiter, sets the peak-to-loudness ratio
      (PLR, true peak minus integrated loudness) of what comes out. It rises until the PLR fits the target's
      (its true-peak limit minus its loudness), in steps sized by how much the last step lowered the PLR;
    - the level, gain and ceiling moved together, then puts the loudness on the target, and the peaks follow.

    Only measured settings are kept: the encode gets one of those, never an untried guess (unless the plan
    allows no trial round at all: an urgent first version's)."""

    def __init__(self, spec: dict[str, Any], programme_i: float) -> None:
        self.spec = spec
        self.ceiling = spec["true_peak"] - spec["headroom"]
        self.drive = spec["integrated"] - programme_i - self.ceiling
        self.release = RELEASE_MS[0]
        self.tried: list[dict[str, Any]] = []

    @property
    def setting(self) -> dict[str, Any]:
        return {"gain_db": round(self.ceiling + self.drive, 2), "ceiling_db": round(self.ceiling, 2),
                "release_ms": self.release}

    def peak_ok(self, tried: dict[str, Any]) -> bool:
        return tried["true_peak"] <= self.spec["true_peak"] - PEAK_MARGIN_DB or silent(tried["integrated"])

    def loudness_ok(self, tried: dict[str, Any]) -> bool:
        return (silent(tried["integrated"]) or
                abs(tried["integrated"] - self.spec["integrated"]) <= LOUDNESS_SETTLED * self.spec["tolerance"])

    def record(self, integrated: float, true_peak: float) -> bool:
        """Note what the current setting gave and choose the next one; True when this one is good."""
        tried = {**self.setting, "drive_db": round(self.drive, 2), "integrated": integrated,
                 "true_peak": true_peak, "round": len(self.tried) + 1}
        self.tried.append(tried)
        if self.peak_ok(tried) and self.loudness_ok(tried) or silent(integrated):
            return True
        self.ceiling += self.spec["integrated"] - integrated
        excess = (true_peak - integrated) - (self.spec["true_peak"] - self.spec["integrated"] - PEAK_MARGIN_DB)
        if excess > 0:
            sensitivity = FIRST_SENSITIVITY
            same = [t for t in self.tried if t["release_ms"] == self.release]
            if len(same) >= 2 and abs(same[-1]["drive_db"] - same[-2]["drive_db"]) > 0.05:
                lowered = (same[-2]["true_peak"] - same[-2]["integrated"]) - (true_peak - integrated)
                sensitivity = lowered / (same[-1]["drive_db"] - same[-2]["drive_db"])
            if sensitivity < SLUGGISH and len(same) >= 2 and self.release != RELEASE_MS[-1]:
                self.release = RELEASE_MS[RELEASE_MS.index(self.release) + 1]
            else:
                sensitivity = max(0.15, min(1.0, sensitivity))
                step = min(MAX_DRIVE_STEP_DB, (excess + PEAK_MARGIN_DB) / sensitivity)
                self.drive += step
                self.ceiling -= sensitivity * step  # more drive is also louder: by what it took off the PLR
        if self.ceiling > 0:  # the limiter cannot hold peaks above full scale: the rest of the level is drive
            self.drive += self.ceiling
            self.ceiling = 0.0
        return False

    def best(self) -> dict[str, Any]:
        """The measured setting to encode with: under the peak limit and nearest the loudness target, else the
        one with the lowest peak (verify will then say what was missed)."""
        safe = [t for t in self.tried if self.peak_ok(t)]
        if safe:
            return min(safe, key=lambda t: abs(t["integrated"] - self.spec["integrated"]))
        return min(self.tried, key=lambda t: t["true_peak"])


def _settle(params: dict[str, Any], integrated: float) -> list[dict[str, Any]]:
    """Each target's measured setting; where the trial is the target's sound encode (``keep``), the chosen round's
    file is kept for that encode (``kept_path``)."""
    targets = [_Target(spec, integrated) for spec in params["targets"]]
    rounds = min(SETTLE_ROUNDS, params.get("rounds", SETTLE_ROUNDS))
    if not rounds:  # an urgent first version's: the computed setting, untried
        return [t.setting for t in targets]
    keep = params.get("keep")
    work = Path(params["cache"]).parent
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".trial-", dir=work) as scratch:
        def folder(number: int) -> str:
            return os.path.join(scratch, f"round-{number}")

        for number in range(1, rounds + 1):
            os.mkdir(folder(number))
            settings = [t.setting for t in targets]
            log = run_ffmpeg(fill(params["trial"], dict(enumerate(settings)), folder(number)), params["limits"],
                             what="loudness trial")
            settled = True
            for i, target in enumerate(targets):
                if target.spec["lossy"]:
                    made = keep["file"] if keep else f"target-{i}.{target.spec['container']}"
                    got = meter(os.path.join(folder(number), made), 1, params["limits"])
                else:
                    got = summary(log, f"ebur128@target-{i}")
                settled &= target.record(*got)
            if len(targets) == 1:  # a round that is not the best so far never becomes it: its files can go
                best = targets[0].best()["round"]
                for older in range(1, number + 1):
                    if older != best:
                        shutil.rmtree(folder(older), ignore_errors=True)
            if settled:
                break
        chosen = [t.best() for t in targets]
        if keep:
            argv = fill(params["trial"], {0: chosen[0]})
            os.replace(os.path.join(folder(chosen[0]["round"]), keep["file"]),
                       kept_path(keep["prefix"], argv, f"file:{{scratch}}/{keep['file']}"))
    return chosen


def kept_path(prefix: str, argv: list[str], output: str) -> str:
    """Where a measure keeps a trial for its sound encode: named by the filled argv that made it (its ``output``
    word aside), so that an encode finds only a file its own argv makes."""
    suffix = os.path.splitext(output)[1]
    return f"{prefix}-{short_hash(*(w if w != output else 'OUTPUT' + suffix for w in argv))}{suffix}"


def kept_sound(argv: list[str], partial: str, measured: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """The file a measure task kept of a trial that was exactly this encode (the filled ``argv``, writing its one
    output into the folder ``partial``), if there is one, and where the encode would write it."""
    made = written_into(argv, partial)
    for result in measured:
        if made and result.get("kept"):
            kept = kept_path(result["kept"], argv, made)
            if os.path.isfile(kept):
                return kept, made.removeprefix("file:")
    return None


def measure_programme(argv: list[str], limits: dict[str, float]) -> tuple[float, float]:
    """The planned programme meter's integrated loudness and true peak."""
    log = run_ffmpeg(argv, limits, what="loudness measurement")
    try:
        return summary(log)
    except ValueError as exc:
        raise EncodeError("loudness measurement gave no result", argv, 0, log) from exc


def programme_loudness(params: dict[str, Any]) -> tuple[float, float]:
    """The programme meter's integrated loudness and true peak, metered once per source: the measure tasks of
    its other targets wait for it and read it (``programme_cache``)."""
    shared = Path(params["programme_cache"])
    with exclusive([str(shared)]):
        if shared.is_file():
            metered = json.loads(shared.read_text(encoding="utf-8"))
            return float(metered["integrated"]), float(metered["true_peak"])
        integrated, peak = measure_programme(params["argv"], params["limits"])
        write_atomically(shared, json.dumps({"integrated": integrated, "true_peak": peak}))  # -inf kept as such
    return integrated, peak


def measure(params: dict[str, Any]) -> dict[str, Any]:
    """The programme's loudness and, for each target of the task (one, as planned), the gain and limiter ceiling
    that meet it. Cached by source, target and encoder: a rerun, or another job with that target, reads it."""
    cache = Path(params["cache"])
    if cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8"))
    integrated, peak = programme_loudness(params)
    quiet = silent(integrated)
    targets = [] if quiet else _settle(params, integrated)
    result = {"integrated": integrated if math.isfinite(integrated) else None,
              "true_peak": peak if math.isfinite(peak) else None, "silent": quiet, "targets": targets}
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(cache, json.dumps(result))
    return result
