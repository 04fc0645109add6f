"""See the picture: one PyAV decode pass feeding fused numpy/OpenCV kernels (transitions, black/frozen/silent
segments, loudness, active area, scan, posters, the 9:16 crop path). The result is plain JSON data; its keys
are the contract in ``docs``/README ("onetake analyze")."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ...pipeline.models import SourceInfo
from ...pipeline.probe import probe
from .settings import DEFAULT_SETTINGS, AnalysisSettings
from .single_pass import Stretch, joined_pass, pictures_pass, run_pass, sound_pass
from .video import VideoFeatures

__all__ = ["DEFAULT_SETTINGS", "AnalysisSettings", "Stretch", "analyze", "analyze_pictures", "analyze_sound",
           "joined_analysis"]


def analyze(path: str | os.PathLike[str], *, report: Callable[[float], None] | None = None,
            settings: AnalysisSettings = DEFAULT_SETTINGS, info: SourceInfo | None = None) -> dict[str, Any]:
    """Analyse the local file ``path`` in one decode pass; ``report(fraction)`` is called as it goes.

    ``info``: the source's SourceInfo when the caller has probed it already (saves probing again). A file that
    cannot be used raises SourceError (the same checks and messages as ``probe``)."""
    local, probed = _local(path)
    return run_pass(local, info or probed(), settings, report)


def _local(path: str | os.PathLike[str]) -> tuple[str, Callable[[], SourceInfo]]:
    """The file's absolute path, and how to probe it as the passes need (no hash, no scan sampling)."""
    local = os.path.abspath(os.fspath(path))
    return local, lambda: probe(local, compute_hash=False, sample_scan=False)


def analyze_pictures(path: str, stretch: Stretch, *, report: Callable[[float], None] | None = None,
                     settings: AnalysisSettings = DEFAULT_SETTINGS) -> tuple[VideoFeatures, str | None]:
    """One stretch of a long programme's pictures through the kernels: what they keep of it (``save`` writes it
    to a file) and what went wrong in decoding, if anything did."""
    local, probed = _local(path)
    return pictures_pass(local, probed(), settings, stretch, report)


def analyze_sound(path: str, origin: float, *, report: Callable[[float], None] | None = None,
                  settings: AnalysisSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """A long programme's sound through the kernels, beside its pictures' stretches."""
    local, probed = _local(path)
    return sound_pass(local, probed(), settings, origin, report)


def joined_analysis(path: str, features_files: list[str], sound: dict[str, Any] | None, origin: float,
                    decode_error: str | None = None, *,
                    settings: AnalysisSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """The analysis of a programme analysed in stretches, as one pass over it would have made it."""
    local, probed = _local(path)
    return joined_pass(local, probed(), settings, features_files, sound, origin, decode_error)
