"""Names and content keys: an asset's readable id, and the keys that make outputs content-addressed (a new source,
profile, encoder or onetake gives a new key; the same ones give the same key, so a rerun reuses what exists)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ... import __version__
from ..hashes import short_hash
from ..media import file_stem
from ..models import SourceInfo
from ..profiles import Profile

if TYPE_CHECKING:
    from .audio import LoudnessTarget

ASSET_ID_MAX = 64
ANALYSIS_VERSION = 2  # the analysis result's meaning; part of its cache key and of every key that depends on it
# what an encode makes of a profile, beyond its options: raised when the same profile and source give other
# pictures or sound (2: the whole programme's pictures held to its stated end), so that no older file is reused
RENDITION_VERSION = 2


def asset_id_for(source: SourceInfo) -> str:
    """A readable, storage-safe id: the file's stem cleaned up, plus the start of its SHA-256."""
    stem = unicodedata.normalize("NFC", file_stem(source.name))
    cleaned = "".join(ch if (ch.isalnum() or ch in "_-") else "-" for ch in stem)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-_")[:ASSET_ID_MAX] or "asset"
    return f"{cleaned}-{source.sha256[:8]}"


def rendition_key(source: SourceInfo, profile: Profile, encoder_version: str, title: str = "") -> str:
    """The content key of ``profile``'s rendition of ``source`` (``title``: an audiogram's, burned into it)."""
    parts = [source.sha256, profile.content_key(), encoder_version, f"onetake {__version__}",
             f"renditions {RENDITION_VERSION}"]
    if profile.video is not None and profile.video.framing == "follow":  # the picture depends on the analysis
        parts.append(f"analysis {ANALYSIS_VERSION}")
    if profile.captions is not None and profile.captions.burn and source.captions is not None:
        parts.append(f"captions {captions_identity(source)}")
    if not source.video and profile.audiogram is not None:  # a picture made of the sound, its cover and title
        parts.append(f"cover {source.cover_sha256} title {title or source.name}")
    return short_hash(*parts)


def captions_identity(source: SourceInfo) -> str:
    """What the captions' content is known by: the sidecar's hash, or the stream (covered by the source's hash)."""
    assert source.captions is not None
    c = source.captions
    return c.sha256 if c.stream < 0 else f"{source.sha256} stream {c.stream}"


def captions_key(source: SourceInfo, shift: float, duration: float, burns: str) -> str:
    """The captions task's output: the captions (or none: an audiogram's title alone), where they are put on the
    programme's clock, and every raster they are burned into."""
    identity = captions_identity(source) if source.captions is not None else "title only"
    return short_hash(identity, f"{shift:.6f}", f"{duration:.6f}", burns, __version__)


def loudness_key(source: SourceInfo, targets: Sequence[LoudnessTarget], encoder_version: str) -> str:
    """The measured gains depend on the source's audio, the targets and the encoders that make them."""
    return short_hash(json.dumps([source.sha256, [t.to_dict() for t in targets], encoder_version, __version__]))


def analysis_key(source: SourceInfo) -> str:
    """The analysis depends on the source's bytes and on the code that analyses them, nothing else."""
    return short_hash(source.sha256, f"analysis {ANALYSIS_VERSION}", f"onetake {__version__}")


def package_key(profile: Profile, rung_keys: Sequence[str]) -> str:
    """An HLS package is made of its profile and the renditions of its rungs."""
    return short_hash(profile.content_key(), *rung_keys)
