"""Station artwork that goes into pictures: the logo (台标) and the cover of an audiogram. Each is checked once,
where it is named, and carried into the plan with its SHA-256 (part of every output key it changes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .hashes import sha256_of

# what the first bytes of each kind of picture file are; anything else is refused before a plan is made
SIGNATURES = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",), "svg": (b"<svg", b"<?xml")}
LOGO_KINDS = ("png", "svg")          # a logo needs transparency
COVER_KINDS = ("png", "jpeg")
COVER_SUFFIXES = (".jpg", ".jpeg", ".png")  # a cover beside an audio programme: STEM.jpg and the like, any case


@dataclass(frozen=True)
class Artwork:
    path: str     # absolute
    sha256: str
    kind: str     # png | jpeg | svg


def read_artwork(path: str | Path, kinds: tuple[str, ...], named_by: str,
                 error: Callable[[str], Exception]) -> Artwork:
    """The artwork at ``path``, or ``error`` in one line naming ``named_by`` (the file and key, or the option)."""
    file = Path(path).expanduser().absolute()
    want = " or ".join(k.upper() for k in kinds)
    if not file.is_file():
        raise error(f"{named_by}: no such file {file}; give the path of a {want} file")
    try:
        with open(file, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise error(f"{named_by}: cannot read {file} ({exc.strerror})") from None
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    kind = next((k for k in kinds if start.startswith(SIGNATURES[k])), None)
    if kind == "svg" and b"<svg" not in head:  # an XML file, but not an SVG one
        kind = None
    if kind is None:
        raise error(f"{named_by}: {file} is not a {want} file; export it as {want}"
                    + (" with transparency" if "png" in kinds and "jpeg" not in kinds else ""))
    return Artwork(str(file), sha256_of(str(file)), kind)
