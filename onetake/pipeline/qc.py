"""The quality gate: a channel's QC rules (``[CHANNEL.qc]`` in channels.toml) judged on the source's analysis.

Pure: an analysis result and the rules in, findings out. Each finding has the shape of a verification check
(``name``, ``passed``, ``value``, ``limit``, ``profile``) so that the CLI, the error and the manifest show both
the same way.
"""

from __future__ import annotations

from typing import Any

from .profiles import QcSpec

QC_PROFILE = "qc"  # the "profile" field of a QC finding: it judges the source, not one rendition


def _longest(segments: list[dict[str, Any]], duration: float, at_edges: bool, edge_s: float) -> dict[str, Any] | None:
    """The longest segment that counts (head and tail excused when ``at_edges``), or None."""
    counted = [s for s in segments
               if not (at_edges and (s["start"] <= edge_s or s["end"] >= duration - edge_s))]
    return max(counted, key=lambda s: s["end"] - s["start"], default=None)


def evaluate(analysis: dict[str, Any], rules: QcSpec) -> list[dict[str, Any]]:
    """One finding per rule that is on; ``passed`` false where the source breaks it."""
    duration = float(analysis.get("duration") or 0.0)
    findings: list[dict[str, Any]] = []
    stretches = (("black", rules.max_black_s, rules.black_at_edges),
                 ("freeze", rules.max_freeze_s, False),
                 ("silence", rules.max_silence_s, rules.silence_at_edges))
    for kind, limit, at_edges in stretches:
        if limit <= 0:
            continue
        worst = _longest(list(analysis.get(kind) or []), duration, at_edges, rules.edge_s)
        length = round(worst["end"] - worst["start"], 3) if worst else 0.0
        value = f"{length:g} s at {worst['start']:g}-{worst['end']:g} s" if worst else "none"
        where = " (head and tail excused)" if at_edges else ""
        findings.append({"name": kind, "passed": length <= limit, "value": value,
                         "limit": f"at most {limit:g} s{where}", "profile": QC_PROFILE})
    if rules.max_lra_lu > 0:
        lra = (analysis.get("loudness") or {}).get("lra")
        findings.append({"name": "loudness range", "passed": lra is None or lra <= rules.max_lra_lu,
                         "value": "unmeasured" if lra is None else f"{lra:g} LU",
                         "limit": f"at most {rules.max_lra_lu:g} LU", "profile": QC_PROFILE})
    return findings
