"""Storage backends: where a channel's verified files end up. The manifest is always written last."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import __version__
from ..pipeline.destinations import MANIFEST, content_type, object_key, parse_location, upload_stages
from ..pipeline.errors import ConfigError, StorageError
from ..pipeline.hashes import sha256_of, short_hash
from .files import link_or_copy, write_atomically


def expand(files: list[dict[str, Any]]) -> list[tuple[Path, str, str]]:
    """(source file, path inside the delivery, profile) for every file, folders walked in name order."""
    out = []
    for item in files:
        src = Path(item["src"])
        if src.is_dir():
            for path in sorted(p for p in src.rglob("*") if p.is_file()):
                out.append((path, f"{item['dest']}/{path.relative_to(src).as_posix()}", item["profile"]))
        else:
            out.append((src, item["dest"], item["profile"]))
    return out


def build_manifest(channel: str, asset_id: str, source: dict[str, Any], files: list[tuple[Path, str, str]],
                   checks: list[dict[str, Any]], notes: list[str],
                   metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """``metadata``: what a watch folder's sidecar said about the source (title, programme, ...), when any."""
    manifest = {
        "asset_id": asset_id, "channel": channel, "source": source,
        "files": [{"path": rel, "size": src.stat().st_size, "sha256": sha256_of(str(src)), "profile": profile}
                  for src, rel, profile in files],
        "checks": [{k: c[k] for k in ("name", "passed", "value", "limit", "profile")} for c in checks],
        "notes": notes, "onetake": __version__,
    }
    if metadata:
        manifest["metadata"] = metadata
    return manifest


def write_qc_record(path: str, record: dict[str, Any]) -> str:
    """A channel's failed QC, beside where its delivery goes (``OUT/<channel>/<asset_id>.qc.json``), written
    to a temp name and renamed, whether the channel is delivered (``--qc warn``) or not."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return str(write_atomically(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n"))
    except OSError as exc:
        raise StorageError(f"{path}: cannot write the QC record ({exc.strerror or exc})") from exc


def versioned(files: list[tuple[Path, str, str]], manifest: dict[str, Any]
              ) -> tuple[str, list[tuple[Path, str, str]], dict[str, Any]]:
    """An urgent job's delivery as it is published: every file inside the version's own folder, named by the
    version and the files' content (``v1-1a2b3c4d``), so that a publish never writes into a folder a manifest
    points at; the manifest lists the paths inside it and names it as ``folder``."""
    digest = short_hash(*(f"{f['path']} {f['sha256']}" for f in manifest["files"]))[:8]
    folder = f"v{manifest['version']}-{digest}"
    inside = [(src, f"{folder}/{rel}", profile) for src, rel, profile in files]
    listed = [{**f, "path": f"{folder}/{f['path']}"} for f in manifest["files"]]
    return folder, inside, {**manifest, "folder": folder, "files": listed}


def supersedes(new: dict[str, Any], published: bytes | str | None) -> bool:
    """Whether ``new`` may replace the manifest published now: not when that is a later version of the same
    source (a first version finishing after its full-quality delivery, or run again, never takes its place)."""
    if published is None:
        return True
    try:
        old = json.loads(published)
        later = int(old.get("version") or 0) > int(new["version"])
        return not (later and old["source"]["sha256"] == new["source"]["sha256"])
    except (ValueError, TypeError, KeyError, AttributeError):  # unreadable: replaced by a whole one
        return True


class StorageBackend(ABC):
    """One destination kind (local folder, S3, ...)."""

    @abstractmethod
    def deliver(self, dest: str, files: list[tuple[Path, str, str]], manifest: dict[str, Any]) -> str:
        """Put every file under ``dest``, then the manifest; return where the manifest is."""


@contextlib.contextmanager
def _staging(dest: str, staging: Path) -> Iterator[None]:
    """Writing a delivery through ``staging``: removed if the writing fails, and a failed write one line that
    names ``dest``."""
    try:
        yield
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(f"{dest}: cannot write the delivery ({exc.strerror or exc})") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class LocalStorage(StorageBackend):
    """A folder on a local or shared file system; the delivery appears whole, by one rename."""

    def deliver(self, dest: str, files: list[tuple[Path, str, str]], manifest: dict[str, Any]) -> str:
        if manifest.get("version"):
            return self.publish(dest, files, manifest)
        final = Path(dest)
        body = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        existing = final / MANIFEST
        if existing.is_file() and existing.read_text(encoding="utf-8") == body:
            return str(existing)  # already delivered, byte for byte
        staging = final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"
        with _staging(dest, staging):
            for src, rel, _ in files:
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(src, target)
            (staging / MANIFEST).write_text(body, encoding="utf-8")
            if final.exists():  # an older delivery of the same asset: swap, never write into it
                old = final.parent / f".{final.name}.replaced-{uuid.uuid4().hex[:8]}"
                os.rename(final, old)
                os.rename(staging, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(staging, final)
        return str(final / MANIFEST)

    def publish(self, dest: str, files: list[tuple[Path, str, str]], manifest: dict[str, Any]) -> str:
        """A version of an urgent job's delivery: its folder written whole (by one rename), then the manifest
        (by one rename), then every older version removed."""
        final = Path(dest)
        existing = final / MANIFEST
        try:
            published = existing.read_text(encoding="utf-8") if existing.is_file() else None
        except (OSError, UnicodeDecodeError):
            published = None
        if not supersedes(manifest, published):
            return str(existing)
        folder, files, manifest = versioned(files, manifest)
        body = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        staging = final / f".{folder}.partial-{uuid.uuid4().hex[:8]}"
        with _staging(dest, staging):
            if published != body:
                final.mkdir(parents=True, exist_ok=True)
                if not all((final / rel).is_file() for _, rel, _ in files):  # absent, or left half removed
                    for src, rel, _ in files:
                        target = staging / rel.removeprefix(f"{folder}/")
                        target.parent.mkdir(parents=True, exist_ok=True)
                        link_or_copy(src, target)
                    shutil.rmtree(final / folder, ignore_errors=True)
                    os.rename(staging, final / folder)
                write_atomically(existing, body)
        for entry in final.iterdir():  # older versions, and an unversioned delivery; another writer's staging stays
            if entry.name not in (MANIFEST, folder) and ".partial-" not in entry.name:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        return str(existing)


class S3Storage(StorageBackend):
    """A bucket and prefix in any S3-compatible store. Files go up concurrently in stages (media, variant
    playlists, master playlists) and manifest.json last; a file already there with the same SHA-256 is not sent
    again. A delivery that has to change files withdraws its old manifest first, so a consumer waiting for
    manifest.json never sees a mix."""

    def __init__(self, transfer: dict[str, Any] | None = None) -> None:
        from .s3 import Transfer  # boto3 is imported only where a delivery goes to S3

        self.transfer = Transfer.from_params(transfer)

    def deliver(self, dest: str, files: list[tuple[Path, str, str]], manifest: dict[str, Any]) -> str:
        from .s3 import Upload, Uploader

        if manifest.get("version"):
            return self.publish(dest, files, manifest)
        location = parse_location(dest)
        body = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        try:
            listed = {f["path"]: f for f in manifest["files"]}
            uploads = {rel: Upload(src, object_key(location, rel), listed[rel]["sha256"], listed[rel]["size"],
                                   content_type(rel)) for src, rel, _ in files}
            manifest_key = object_key(location, MANIFEST)
        except ConfigError as exc:
            raise StorageError(f"{dest}: {exc}") from None
        with Uploader(location.bucket, self.transfer) as up:
            present = up.listing(location.prefix)
            same_size = [u for u in uploads.values() if present.get(u.key) == u.size]
            there = {u.key for u, stored in zip(same_size, up.each(lambda u: up.recorded(u.key), same_size))
                     if stored == (u.sha256, u.size)}
            missing = {rel: u for rel, u in uploads.items() if u.key not in there}
            old = up.read(manifest_key) if manifest_key in present else None
            if not missing and old == body:
                return f"{dest}/{MANIFEST}"  # already delivered, object for object
            if old is not None:
                up.delete(manifest_key)
            for stage in upload_stages(list(missing)):
                up.each(up.put, [missing[rel] for rel in stage])
            up.put_bytes(manifest_key, body, content_type(MANIFEST))
        return f"{dest}/{MANIFEST}"

    def publish(self, dest: str, files: list[tuple[Path, str, str]], manifest: dict[str, Any]) -> str:
        """A version of an urgent job's delivery: its objects under the version's own prefix, then the manifest
        (one PUT replaces it whole), then every object of an older version removed. The published manifest is
        never withdrawn: a consumer always finds one, and every object it lists."""
        from .s3 import Upload, Uploader

        location = parse_location(dest)
        try:
            manifest_key = object_key(location, MANIFEST)
        except ConfigError as exc:
            raise StorageError(f"{dest}: {exc}") from None
        with Uploader(location.bucket, self.transfer) as up:
            present = up.listing(location.prefix)
            published = up.read(manifest_key) if manifest_key in present else None
            if not supersedes(manifest, published):
                return f"{dest}/{MANIFEST}"
            folder, files, manifest = versioned(files, manifest)
            body = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
            listed = {f["path"]: f for f in manifest["files"]}
            try:
                uploads = {rel: Upload(src, object_key(location, rel), listed[rel]["sha256"], listed[rel]["size"],
                                       content_type(rel)) for src, rel, _ in files}
            except ConfigError as exc:
                raise StorageError(f"{dest}: {exc}") from None
            if published != body:
                same_size = [u for u in uploads.values() if present.get(u.key) == u.size]
                there = {u.key for u, stored in zip(same_size, up.each(lambda u: up.recorded(u.key), same_size))
                         if stored == (u.sha256, u.size)}
                missing = {rel: u for rel, u in uploads.items() if u.key not in there}
                for stage in upload_stages(list(missing)):
                    up.each(up.put, [missing[rel] for rel in stage])
                up.put_bytes(manifest_key, body, content_type(MANIFEST))
            keep = {manifest_key, *(u.key for u in uploads.values())}
            up.delete_all(sorted(k for k in present if k not in keep))
        return f"{dest}/{MANIFEST}"


def backend_for(dest: str, transfer: dict[str, Any] | None = None) -> StorageBackend:
    try:
        location = parse_location(dest)
    except ConfigError as exc:
        raise StorageError(str(exc)) from None
    return S3Storage(transfer) if location.is_s3 else LocalStorage()
