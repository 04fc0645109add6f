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
from .single_pass import run_pass

__all__ = ["DEFAULT_SETTINGS", "AnalysisSettings", "analyze"]


def analyze(path: str | os.PathLike[str], *, report: Callable[[float], None] | None = None,
            settings: AnalysisSettings = DEFAULT_SETTINGS, info: SourceInfo | None = None) -> dict[str, Any]:
    """Analyse the local file ``path`` in one decode pass; ``report(fraction)`` is called as it goes.

    ``info``: the source's SourceInfo when the caller has probed it already (saves probing again). A file that
    cannot be used raises SourceError (the same checks and messages as ``probe``)."""
    local = os.path.abspath(os.fspath(path))
    if info is None:
        info = probe(local, compute_hash=False, sample_scan=False)
    return run_pass(local, info, settings, report)
