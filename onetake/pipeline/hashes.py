"""SHA-256, the two ways onetake uses it: whole files (a source's fingerprint, a delivered file's checksum), and
short content keys for what onetake makes (renditions, packages, analyses, fetched objects)."""

from __future__ import annotations

import hashlib

KEY_HEX = 16  # characters of SHA-256 in a content key


def short_hash(*parts: str) -> str:
    """The content key of ``parts``: the start of the SHA-256 of them joined by '|'."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:KEY_HEX]


def sha256_of(path: str) -> str:
    """The SHA-256 of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
