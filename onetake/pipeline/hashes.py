"""SHA-256, the two ways onetake uses it: whole files (a source's fingerprint, a delivered file's checksum), and
short content keys for what onetake makes (renditions, packages, analyses, fetched objects)."""

from __future__ import annotations

import hashlib

KEY_HEX = 16  # characters of SHA-256 in a content key
HASH_CHUNK = 1 << 20


def short_hash(*parts: str) -> str:
    """The content key of ``parts``: the start of the SHA-256 of them joined by '|'."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:KEY_HEX]


def sha256_of(path: str) -> str:
    """The SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
