"""Where deliveries go and where sources come from, as data: local folders and ``s3://bucket/prefix`` URLs.

Pure: parsing, key building, content types and upload order. Talking to a store is ``workers/s3.py``'s job.
"""

from __future__ import annotations

import os
import posixpath
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import ConfigError

S3_SCHEME = "s3://"
# S3's rules for bucket names (3-63 lower-case letters, digits, dots and hyphens, starting and ending with a
# letter or digit); the providers onetake targets (MinIO, Ceph, OSS, COS, OBS) accept the same.
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
KEY_SEGMENT_MAX = 120        # characters of one path segment; S3 allows 1024 bytes for the whole key
MANIFEST = "manifest.json"

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl", ".m4s": "video/iso.segment", ".mp4": "video/mp4",
    ".mxf": "application/mxf", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
    ".aac": "audio/aac", ".mp2": "audio/mpeg", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
    ".vtt": "text/vtt", ".json": "application/json", ".mov": "video/quicktime", ".ts": "video/mp2t",
    ".html": "text/html; charset=utf-8",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Location:
    """A local folder (``bucket`` empty, ``path`` absolute or relative) or an S3 bucket and key prefix."""

    bucket: str = ""
    prefix: str = ""
    path: str = ""

    @property
    def is_s3(self) -> bool:
        return bool(self.bucket)

    def __str__(self) -> str:
        if self.is_s3:
            return f"{S3_SCHEME}{self.bucket}/{self.prefix}".rstrip("/")
        return self.path

    def child(self, *names: str) -> Location:
        """This location with one folder per name added (channel names, asset ids: never '..', '/' or empty)."""
        for name in names:
            if name in ("", ".", "..") or any(c in name for c in "/\\") or any(ord(c) < 32 for c in name):
                raise ConfigError(f"'{name}' is not a safe storage name")
        if self.is_s3:
            return Location(self.bucket, "/".join(p for p in (self.prefix, *names) if p))
        return Location(path="/".join([self.path.rstrip("/") or "/", *names]).replace("//", "/"))


def is_s3(text: str) -> bool:
    return text.startswith(S3_SCHEME)


def absolute_location(text: str) -> str:
    """A local folder or file as an absolute path (workers may run elsewhere); an S3 URL as given."""
    return text if is_s3(text) else os.path.abspath(text)


def parse_location(text: str, what: str = "destination") -> Location:
    """A local folder or ``s3://bucket/prefix``; any other URL scheme, a bad bucket name or a prefix that climbs
    out of itself (``..``) is a ConfigError naming the value and the fix."""
    if is_s3(text):
        bucket, _, prefix = text[len(S3_SCHEME):].partition("/")
        if not BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ConfigError(f"{what} '{text}': '{bucket}' is not a valid bucket name; use 3-63 lower-case "
                              f"letters, digits, dots or hyphens, e.g. s3://playout/incoming")
        parts = [p for p in prefix.split("/") if p]
        if any(p in (".", "..") for p in parts) or "\\" in prefix or any(ord(c) < 32 for c in prefix):
            raise ConfigError(f"{what} '{text}': the prefix may not contain '.' or '..' segments, backslashes or "
                              f"control characters")
        return Location(bucket, "/".join(parts))
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"{what} '{text}': '{scheme}://' is not supported; give a local folder or "
                          f"s3://bucket/prefix")
    if not text:
        raise ConfigError(f"{what} is empty; give a local folder or s3://bucket/prefix")
    return Location(path=text)


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of an object URL such as ``s3://ingest/raw/clip.mxf``."""
    location = parse_location(url, "source")
    if not location.is_s3 or not location.prefix:
        raise ConfigError(f"source '{url}': give the object's full URL, s3://bucket/key")
    return location.bucket, location.prefix


def safe_segment(name: str, limit: int = KEY_SEGMENT_MAX) -> str:
    """One readable path segment that is safe as a file name and as a storage key: letters of any script
    (Chinese stays Chinese), digits, '-', '_' and '.'; everything else becomes '-'; never '.' or '..'."""
    name = unicodedata.normalize("NFC", name)
    cleaned = "".join(ch if (ch.isalnum() or ch in "_-.") else "-" for ch in name)
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", cleaned)).strip("-_.")
    return cleaned[:limit].rstrip("-_.") or "unnamed"


def channel_destinations(out: str, per_channel: Mapping[str, str], channels: Sequence[str]) -> dict[str, Location]:
    """Each channel's base location: its own destination from the config, else OUT/<channel>."""
    base = parse_location(out, "out")
    return {c: parse_location(per_channel[c], f"destination of channel '{c}'") if c in per_channel
            else base.child(c) for c in channels}


def object_key(location: Location, relative: str) -> str:
    """The key of a delivered file: the location's prefix and the file's path inside the delivery. The
    relative path comes from the plan (profile names, packager file names); one that would climb out of the
    prefix is refused rather than cleaned, since it means a bug upstream."""
    parts = relative.split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.isabs(relative):
        raise ConfigError(f"'{relative}' would be written outside {location}")
    return "/".join(p for p in (location.prefix, relative) if p)


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(posixpath.splitext(name)[1].lower(), DEFAULT_CONTENT_TYPE)


def upload_stage(relative: str) -> int:
    """When a file goes up: media first (0), HLS variant playlists (1), master playlists (2), the manifest (3).
    A player that finds a playlist then finds every segment it names, and a consumer that waits for
    manifest.json finds everything."""
    name = posixpath.basename(relative)
    if relative == MANIFEST:
        return 3
    if name.endswith(".m3u8"):
        return 2 if name == "master.m3u8" else 1
    return 0


def upload_stages(relatives: Sequence[str]) -> list[list[str]]:
    """The files grouped by stage, in order; each group can go up concurrently."""
    stages: list[list[str]] = [[], [], [], []]
    for rel in relatives:
        stages[upload_stage(rel)].append(rel)
    return [s for s in stages if s]
