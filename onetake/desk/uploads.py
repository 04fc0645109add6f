"""Resumable uploads from the field, by tus 1.0 (core and the creation and termination extensions:
https://tus.io/protocols/resumable-upload), into an inbox the watcher takes files from.

An upload is staged inside the inbox, under ``.onetake-uploads/`` (hidden, so the watcher never looks at it, and
on the inbox's own file system, so that landing is a rename): ``ID.data`` holds the bytes received so far (its
size *is* the upload's offset, so a connection cut in the middle of a request keeps what arrived), ``ID.json``
what the sender said about it. When the last byte is in, the sidecar ``NAME.json`` appears in the inbox first,
then the file under its final name, each by a no-clobber link of a finished file: the watcher never sees a
partial file or a file without its sidecar.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..pipeline.errors import IngestError
from ..pipeline.captions import SIDECAR_SUFFIXES, glob_escape
from ..pipeline.inbox import COMPANIONS, TEMP_NAMES, Sidecar, read_sidecar
from ..pipeline.media import file_stem
from ..pipeline.schema import build
from .sniff import SNIFF_BYTES, media_kind

STAGING = ".onetake-uploads"
NAME_MAX = 100
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SIDECAR_KEYS = ("title", "programme", "lane")
OPEN_UPLOADS_PER_USER = 8
FREE_RESERVE = 2**30  # the inbox's file system keeps a GiB free beyond every open upload's promised size
# an extension for a file whose own would not be taken, by what its first bytes are (ffmpeg reads content, not names)
KIND_EXTENSIONS = {"ISO media (MP4/MOV)": ".mp4", "MXF": ".mxf", "RIFF WAVE": ".wav", "RIFF AVI": ".avi",
                   "RIFF WEBP": ".webp", "RF64/BW64 WAVE": ".wav", "Matroska/WebM": ".mkv",
                   "MPEG program stream": ".mpg", "MPEG transport stream": ".ts", "FLV": ".flv", "ASF/WMV": ".wmv",
                   "MPEG audio/ADTS": ".mp3"}


class UploadRefused(Exception):
    """A request the upload endpoint answers with ``status`` and one line saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def safe_file_name(name: str) -> str:
    """A sender's file name made safe to be a file in the inbox, cleaned as asset ids are: the last path part,
    NFC, letters, digits, '-', '_' and one '.' before a short extension; nothing hidden, nothing that climbs."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z0-9]{1,8}", ext):
        stem, ext = name, ""
    cleaned = "".join(ch if (ch.isalnum() or ch in "_-") else "-" for ch in stem)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-_")[:NAME_MAX] or "upload"
    return f"{cleaned}.{ext.lower()}" if ext else cleaned


def parse_metadata(header: str) -> dict[str, str]:
    """tus ``Upload-Metadata``: comma-separated ``key base64(value)`` pairs."""
    found: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        try:
            found[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except (ValueError, UnicodeDecodeError) as exc:
            raise UploadRefused(400, f"Upload-Metadata '{key}': not base64 of UTF-8 text") from exc
    return found


@dataclass
class Upload:
    id: str
    user: str
    length: int
    name: str
    sidecar: dict[str, Any]
    created_at: float
    resumes: int = 0
    media: str = ""  # what the first bytes said it is

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class UploadStore:
    """The uploads staged in ``inbox``."""

    def __init__(self, inbox: str | Path, expiry_s: float, require: str = "none") -> None:
        self.inbox = Path(inbox).absolute()
        self.require = require  # the inbox's watcher waits for NAME.done or NAME.sha256 beside a file
        self.folder = self.inbox / STAGING
        self.expiry_s = expiry_s
        if not self.inbox.is_dir():
            raise IngestError(f"{self.inbox}: the upload inbox is not a folder; create it or fix [serve] upload_inbox")
        self.folder.mkdir(exist_ok=True)

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise UploadRefused(404, "no such upload")
        return self.folder / f"{upload_id}.data", self.folder / f"{upload_id}.json"

    def create(self, user: str, length: int, metadata: dict[str, str]) -> Upload:
        self.expire()
        staged = self.staged()
        if sum(1 for u, _ in staged if u.user == user) >= OPEN_UPLOADS_PER_USER:
            raise UploadRefused(429, f"{user} has {OPEN_UPLOADS_PER_USER} uploads open already; finish or cancel "
                                     f"one first")
        free = shutil.disk_usage(self.folder).free - sum(u.length - received for u, received in staged)
        if free < length + FREE_RESERVE:  # what is promised to open uploads, and room for the watcher's moves
            raise UploadRefused(507, f"the inbox has room for {max(0, free - FREE_RESERVE) / 2**20:,.0f} MiB more; "
                                     f"tell an operator to make space, then send it again")
        fields = {k: v for k, v in metadata.items() if k in SIDECAR_KEYS and v}
        try:
            sidecar = build(Sidecar, fields, "the upload form", IngestError)
        except IngestError as exc:
            raise UploadRefused(400, str(exc)) from None
        upload = Upload(id=secrets.token_urlsafe(18), user=user, length=length,
                        name=safe_file_name(metadata.get("filename") or ""), sidecar=sidecar.metadata(),
                        created_at=time.time())
        data, info = self._paths(upload.id)
        data.touch(exist_ok=False)
        self._save(upload)
        return upload

    def staged(self) -> list[tuple[Upload, int]]:
        """Every open upload and the bytes it has received."""
        found = []
        for info in self.folder.glob("*.json"):
            try:
                found.append(self.get(info.stem))
            except UploadRefused:  # landed or cancelled meanwhile
                continue
        return found

    def get(self, upload_id: str) -> tuple[Upload, int]:
        """The upload and its offset (the bytes received)."""
        data, info = self._paths(upload_id)
        try:
            upload = Upload(**json.loads(info.read_text(encoding="utf-8")))
            return upload, data.stat().st_size
        except (OSError, ValueError, TypeError) as exc:
            raise UploadRefused(404, "no such upload (finished, cancelled or expired); start it again") from exc

    def _save(self, upload: Upload) -> None:
        _, info = self._paths(upload.id)
        temp = info.with_name(f".{info.name}.tmp")
        temp.write_text(json.dumps(upload.to_dict()), encoding="utf-8")
        os.replace(temp, info)

    def resumed(self, upload: Upload) -> None:
        upload.resumes += 1
        self._save(upload)

    def open_for_append(self, upload: Upload, offset: int) -> Any:
        data, _ = self._paths(upload.id)
        try:  # never created here: an upload that has landed (or was cancelled) is gone
            handle = os.fdopen(os.open(data, os.O_WRONLY | os.O_APPEND), "ab")
        except FileNotFoundError:
            raise UploadRefused(404, "no such upload (finished, cancelled or expired); start it again") from None
        received = handle.seek(0, os.SEEK_END)
        if received != offset:
            handle.close()
            raise UploadRefused(409, f"Upload-Offset {offset} does not match the {received} bytes received")
        return handle

    def check_head(self, upload: Upload) -> None:
        """Refuse the upload (and drop it) when its first bytes are not media."""
        data, _ = self._paths(upload.id)
        with open(data, "rb") as f:
            head = f.read(SNIFF_BYTES)
        kind = media_kind(head)
        if kind is None:
            self.delete(upload.id)
            raise UploadRefused(415, f"{upload.name}: its first bytes are not a video, audio or image file onetake "
                                     f"takes (MP4/MOV, MXF, MPEG-TS, WAV, MKV, ...); send the media file itself")
        upload.media = kind
        self._save(upload)

    def delete(self, upload_id: str) -> None:
        for path in self._paths(upload_id):
            path.unlink(missing_ok=True)

    def land(self, upload: Upload) -> Path:
        """Put the finished file and its sidecar into the inbox under a free name the watcher takes, with the
        ``NAME.done`` or ``NAME.sha256`` its inbox requires, both placed before it; its path there."""
        data, info = self._paths(upload.id)
        stem, dot, ext = upload.name.rpartition(".")
        stem, ext = (stem, f".{ext}") if dot else (upload.name, "")
        if not ext or not _watched(ext):  # a name the watcher would skip (clip.part) or take for a companion (x.srt)
            ext = KIND_EXTENSIONS.get(upload.media, ".media")
        digest = ""
        if self.require == "checksum":
            with open(data, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        for n in range(1, 1000):
            name = f"{stem}{ext}" if n == 1 else f"{stem}-{n}{ext}"
            target, side = self.inbox / name, self.inbox / f"{name}.json"
            # not beside a file of the same stem either: it would be taken as that file's companion or cover
            if target.exists() or side.exists() or any(self.inbox.glob(f"{glob_escape(file_stem(name))}.*")):
                continue
            staged_side = self.folder / f"{upload.id}.sidecar"
            staged_side.write_text(json.dumps(upload.sidecar, ensure_ascii=False), encoding="utf-8")
            read_sidecar(staged_side)  # what the watcher will read: it must parse as its sidecar
            markers = {self.folder / f"{upload.id}.sha256": f"{digest}  {name}\n"} if digest else \
                {self.folder / f"{upload.id}.done": ""} if self.require == "done" else {}
            for path, text in markers.items():
                path.write_text(text, encoding="utf-8")
            placed = [(staged, self.inbox / f"{name}{suffix}") for staged, suffix in
                      ((staged_side, ".json"), *((p, "." + p.suffix.lstrip(".")) for p in markers))]
            landed = []
            for staged, final in placed:
                if _place(staged, final):
                    landed.append(final)
            if len(landed) < len(placed) or not _place(data, target):
                for path in landed:  # a name taken meanwhile: take the next one
                    path.unlink(missing_ok=True)
                for staged, _ in placed:
                    staged.unlink(missing_ok=True)
                continue
            for staged, _ in placed:
                staged.unlink(missing_ok=True)
            info.unlink(missing_ok=True)
            return target
        raise UploadRefused(409, f"{upload.name}: no free name for it in the inbox; clear the inbox")

    def expire(self) -> None:
        """Drop the uploads nobody has sent a byte to for the expiry time (each as a whole: its data, its record
        and anything staged for it), and stray files older than that."""
        cutoff = time.time() - self.expiry_s
        newest: dict[str, float] = {}
        for path in self.folder.iterdir():
            try:
                upload_id = path.name.split(".", 1)[0]
                newest[upload_id] = max(newest.get(upload_id, 0.0), path.stat().st_mtime)
            except OSError:
                continue
        for path in self.folder.iterdir():
            if newest.get(path.name.split(".", 1)[0], time.time()) < cutoff:
                path.unlink(missing_ok=True)


def _watched(ext: str) -> bool:
    """Whether the watcher takes a file with this extension as a source (not a temp name, marker or sidecar)."""
    name = f"x{ext}"
    return not (TEMP_NAMES.fullmatch(name) or name.endswith(COMPANIONS) or name.lower().endswith(SIDECAR_SUFFIXES))


def _place(staged: Path, target: Path) -> bool:
    """Move a finished file to ``target`` in one step, never over another file; False when the name is taken.
    A hard link refuses an existing name atomically; where the file system has none (some network shares), a
    rename after a look."""
    try:
        os.link(staged, target)
    except FileExistsError:
        return False
    except OSError:
        if target.exists():
            return False
        os.rename(staged, target)
        return True
    staged.unlink()
    return True
