"""What the desk's pages show, read from the ledger and the delivery folders: plain data for the templates."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..pipeline.config import LANES
from ..pipeline.destinations import is_s3
from ..pipeline.errors import ConfigError, OnetakeError
from ..pipeline.ledger import STATES, Job, Ledger
from ..pipeline.media import file_stem
from ..pipeline.probe import probe
from .objects import presigned, read_s3_manifest

FARM_STALE_S = 10.0  # a farm report older than this is shown as old: the process running the watcher may be gone
PLAYABLE = {".mp4": "video", ".m4v": "video", ".mov": "video", ".webm": "video", ".m4a": "audio", ".mp3": "audio",
            ".wav": "audio", ".aac": "audio", ".ogg": "audio"}
PICTURES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class BoardQuery:
    """The board's filters and page, from the query string; every value checked."""

    state: str = ""
    lane: str = ""
    inbox: str = ""
    date: str = ""
    q: str = ""
    page: int = 1

    @classmethod
    def parse(cls, params: Any) -> BoardQuery:
        state, lane = params.get("state", ""), params.get("lane", "")
        if state not in ("", "active", *STATES):
            raise ConfigError(f"state '{state}': choose one of active, {', '.join(STATES)}")
        if lane not in ("", *LANES):
            raise ConfigError(f"lane '{lane}': choose one of {', '.join(LANES)}")
        date = params.get("date", "")
        if date:
            try:
                if not 1970 <= datetime.strptime(date, "%Y-%m-%d").year <= 9998:
                    raise ValueError(date)
            except ValueError:
                raise ConfigError(f"date '{date}': give it as YYYY-MM-DD, 1970 to 9998") from None
        try:
            page = min(max(1, int(params.get("page", "1") or 1)), 10**9)
        except ValueError:
            raise ConfigError("page: give a whole number") from None
        return cls(state, lane, params.get("inbox", "")[:1000], date, params.get("q", "")[:200].strip(), page)

    def query_string(self, **changes: Any) -> str:
        values = {**self.__dict__, **changes}
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == 1)})


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def task_progress(rows: list[dict[str, Any]], now: float) -> tuple[list[dict[str, Any]], float | None]:
    """Each task's progress with its ETA, and the job's ETA (its slowest task's)."""
    tasks, etas = [], []
    for row in rows:
        fraction = min(1.0, max(0.0, row["fraction"]))
        eta = None
        if 0 < fraction < 1:
            elapsed = max(0.0, now - row["started_at"])
            eta = elapsed * (1 - fraction) / fraction
            etas.append(eta)
        tasks.append({"label": row["label"], "percent": math.floor(fraction * 100), "eta": _age(eta) if eta else ""})
    return tasks, (max(etas) if etas else None)


def board_rows(ledger: Ledger, query: BoardQuery, page_size: int) -> dict[str, Any]:
    now = time.time()
    since = until = None
    if query.date:
        day = datetime.strptime(query.date, "%Y-%m-%d")
        since, until = day.timestamp(), (day + timedelta(days=1)).timestamp()
    states = ("queued", "running") if query.state == "active" else ((query.state,) if query.state else ())
    jobs, total = ledger.page(states=states, lane=query.lane, inbox=query.inbox, since=since, until=until,
                              search=query.q, limit=page_size, offset=(query.page - 1) * page_size)
    progress = ledger.progress([j.id for j in jobs if j.state == "running"])
    rows = []
    for job in jobs:
        tasks, eta = task_progress(progress.get(job.id, []), now) if job.state == "running" else ([], None)
        end = job.finished_at or now
        rows.append({"job": job, "name": os.path.basename(job.source), "title": job.metadata.get("title", ""),
                     "inbox": os.path.basename(job.inbox), "since": job.queued_at, "age": _age(now - job.queued_at),
                     "took": _age(end - (job.started_at or job.queued_at)) if job.started_at else "",
                     "tasks": tasks, "eta": _age(eta) if eta else "", "error": job.error})
    pages = max(1, -(-total // page_size))
    return {"rows": rows, "total": total, "page": query.page, "pages": pages, "query": query,
            "newer": query.query_string(page=query.page - 1) if query.page > 1 else None,
            "older": query.query_string(page=query.page + 1) if query.page < pages else None}


def board_summary(ledger: Ledger) -> dict[str, Any]:
    counts = ledger.counts()
    lanes = [{"lane": lane, "states": {s: counts.get((lane, s), 0) for s in STATES}} for lane in LANES]
    extra = sorted({lane for lane, _ in counts} - set(LANES))
    lanes += [{"lane": lane, "states": {s: counts.get((lane, s), 0) for s in STATES}} for lane in extra]
    return {"lanes": lanes, "states": STATES, "queued": sum(n for (_, s), n in counts.items() if s == "queued"),
            "running": sum(n for (_, s), n in counts.items() if s == "running")}


def farm_view(ledger: Ledger) -> dict[str, Any]:
    status = ledger.farm_status()
    if status is None:
        return {"known": False}
    age = time.time() - status["updated_at"]
    workers = [{**w, "memory_text": f"{w.get('memory', 0) / 2**20:,.0f} MiB",
                "limit_text": f"{w.get('memory_limit', 0) / 2**30:,.1f} GiB" if w.get("memory_limit") else "",
                "tasks_text": ", ".join(w.get("tasks", [])[:3]) or "idle"} for w in status["workers"]]
    return {"known": True, "stale": age > FARM_STALE_S, "age": _age(age), "workers": workers,
            "dashboard": status["dashboard"]}


# ------------------------------------------------------------------------------------------------- asset page

_probe_cache: dict[tuple[str, int, int], dict[str, Any]] = {}


def probe_facts(path: str) -> dict[str, Any] | str:
    """What the source is, as probe reports it; a line saying why not when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}: not there any more (moved or deleted after delivery)"
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _probe_cache:
        try:
            info = probe(path, compute_hash=False)
        except OnetakeError as exc:
            return str(exc)
        if len(_probe_cache) > 256:
            _probe_cache.clear()
        _probe_cache[key] = info.to_dict()
    return _probe_cache[key]


def read_manifest(path: str) -> dict[str, Any] | str:
    if is_s3(path):
        return read_s3_manifest(path)
    if "://" in path:
        return f"{path}: not a local file or s3:// object"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{path}: cannot be read ({exc})"
    return data if isinstance(data, dict) else f"{path}: not a manifest"


def media_of(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The files of a delivery a browser can show: HLS masters, audio and video files, pictures."""
    shown = []
    for f in files:
        path = f["path"]
        ext = os.path.splitext(path)[1].lower()
        if path.endswith("master.m3u8"):
            shown.append({"kind": "hls", "path": path})
        elif ext in PLAYABLE:
            shown.append({"kind": PLAYABLE[ext], "path": path})
        elif ext in PICTURES:
            shown.append({"kind": "picture", "path": path})
    return shown


def qc_records(job: Job, delivered: set[str]) -> list[dict[str, Any]]:
    """QC records of channels that were not delivered: OUT/CHANNEL/ASSET.qc.json."""
    if not job.asset_id or not job.out or "://" in job.out:
        return []
    found = []
    for path in sorted(Path(job.out).glob(f"*/{job.asset_id}.qc.json")):
        channel = path.parent.name
        if channel in delivered:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append({"channel": channel, "path": str(path), "record": data})
    return found


def asset_view(ledger: Ledger, job: Job) -> dict[str, Any]:
    deliveries = []
    for manifest_path in job.manifests:
        manifest = read_manifest(manifest_path)
        if isinstance(manifest, str):
            deliveries.append({"channel": Path(manifest_path).parent.parent.name, "problem": manifest, "qc": {},
                               "failed_checks": 0, "files": [], "media": []})
            continue
        checks = manifest.get("checks") or []
        qc = manifest.get("qc") or {}
        files = manifest.get("files") or []
        remote = is_s3(manifest_path)
        if remote:  # the browser fetches them from the store by presigned links; players need the desk's origin
            files = [{**f, "link": presigned(manifest_path, f["path"])} for f in files]
        deliveries.append({"channel": manifest.get("channel", ""), "manifest_path": manifest_path, "remote": remote,
                           "manifest_link": presigned(manifest_path, "manifest.json") if remote else "",
                           "files": files, "checks": checks,
                           "failed_checks": sum(1 for c in checks if not c.get("passed")),
                           "qc": qc, "notes": manifest.get("notes") or [],
                           "media": [] if remote else media_of(files),
                           "metadata": manifest.get("metadata") or {}})
    report = next((d for d in deliveries if not d.get("remote")
                   and any(f["path"] == "report.html" for f in d.get("files", []))), None)
    related = [j for j in ledger.for_asset(job.asset_id) if j.id != job.id] if job.asset_id else []
    source = job.path if os.path.exists(job.path) else job.source
    return {"job": job, "name": os.path.basename(job.source), "stem": file_stem(os.path.basename(job.source)),
            "facts": probe_facts(source) if "://" not in source else f"{source}: in object storage",
            "deliveries": deliveries, "qc_records": qc_records(job, {d["channel"] for d in deliveries}),
            "report_channel": report["channel"] if report else None, "related": related,
            "audit": ledger.audit_log(job_ids=[job.id, *(j.id for j in related)], asset_id=job.asset_id)}


def delivery_file(job: Job, channel: str, path: str) -> Path | None:
    """The local file ``path`` of ``channel``'s delivery of ``job``, only when its manifest lists it."""
    for manifest_path in job.manifests:
        if "://" in manifest_path:
            continue
        manifest = read_manifest(manifest_path)
        if isinstance(manifest, str) or manifest.get("channel") != channel:
            continue
        listed = {f["path"] for f in manifest.get("files") or []} | {"manifest.json"}
        if path in listed:
            return Path(manifest_path).parent / path
    return None
