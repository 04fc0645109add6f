"""The job ledger: every job's source, lane, state, attempts, timings, error and manifests, in SQLite.

One row per job. States and who moves a job between them:

    queued ──(a watcher starts it)──► running ──► delivered
       ▲                                 │  └───► failed ──(jobs retry)──► queued
       └──(its process died; restart)────┘
    queued / running ──(jobs cancel)──► cancelled ──(jobs retry)──► queued

Every change is one SQL statement that checks the state it expects (``UPDATE ... WHERE state = ?``), so a
watcher and a ``jobs`` command working on the same row at once cannot both win. The file is in WAL mode:
readers (``jobs list``) never wait for a writer, and a SIGKILL leaves the last committed state.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LedgerError

STATES = ("queued", "running", "delivered", "failed", "cancelled")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,              -- watch | run
    source      TEXT NOT NULL,              -- where the file was given or dropped
    path        TEXT NOT NULL,              -- where it is now (processing/, done/, failed/ for watch jobs)
    inbox       TEXT NOT NULL DEFAULT '',
    lane        TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    owner       TEXT NOT NULL DEFAULT '',   -- host:pid:start-time of the process running it
    asset_id    TEXT NOT NULL DEFAULT '',
    out         TEXT NOT NULL DEFAULT '',
    channels    TEXT NOT NULL DEFAULT '[]',
    metadata    TEXT NOT NULL DEFAULT '{}', -- the sidecar, as validated
    stable_at   REAL,                       -- the file was seen complete
    queued_at   REAL NOT NULL,
    started_at  REAL,                       -- of the latest attempt
    finished_at REAL,
    error       TEXT NOT NULL DEFAULT '',
    manifests   TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_path ON jobs (path);
"""


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    source: str
    path: str
    inbox: str
    lane: str
    state: str
    attempts: int
    owner: str
    asset_id: str
    out: str
    channels: tuple[str, ...]
    metadata: dict[str, Any]
    stable_at: float | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    error: str
    manifests: tuple[str, ...]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        data["channels"] = tuple(json.loads(data["channels"]))
        data["metadata"] = json.loads(data["metadata"])
        data["manifests"] = tuple(json.loads(data["manifests"]))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["channels"], data["manifests"] = list(self.channels), list(self.manifests)
        return data


def process_owner(pid: int | None = None) -> str:
    """``host:pid:start`` of a process: a pid alone could be reused by another process after a restart."""
    import psutil

    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{int(psutil.Process(pid).create_time())}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by ``owner`` still runs; None when it ran on another host."""
    import psutil

    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return None
    pid, _, started = rest.partition(":")
    try:
        return int(psutil.Process(int(pid)).create_time()) == int(started)
    except (psutil.NoSuchProcess, ValueError):
        return False


class Ledger:
    """The job table at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).absolute()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedgerError(f"{self.path}: written by a newer onetake (ledger schema {version}); upgrade "
                                  f"onetake or give another --ledger")
            self.db.executescript(_SCHEMA)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"{self.path}: cannot open the job ledger ({exc}); check the path is a writable "
                              f"SQLite file, or give another with --ledger") from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _update(self, sql: str, args: tuple[Any, ...]) -> int:
        try:
            return self.db.execute(sql, args).rowcount
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot update the job ledger ({exc})") from exc

    # ------------------------------------------------------------------------------------------------- reading

    def get(self, job_id: int) -> Job:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no job {job_id} in {self.path}; `onetake jobs list` shows the jobs there")
        return Job.from_row(row)

    def list(self, state: str | None = None) -> list[Job]:
        if state is None:
            rows = self.db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM jobs WHERE state = ? ORDER BY id", (state,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def states(self, job_ids: list[int]) -> dict[int, str]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self.db.execute(f"SELECT id, state FROM jobs WHERE id IN ({marks})", job_ids).fetchall()
        return {row["id"]: row["state"] for row in rows}

    def find(self, path: str) -> Job | None:
        """The latest job whose file is now at ``path``."""
        row = self.db.execute("SELECT * FROM jobs WHERE path = ? ORDER BY id DESC LIMIT 1", (path,)).fetchone()
        return Job.from_row(row) if row else None

    # ------------------------------------------------------------------------------------------------- writing

    def add(self, *, kind: str, source: str, path: str, lane: str, inbox: str = "", out: str = "",
            channels: tuple[str, ...] = (), metadata: dict[str, Any] | None = None, state: str = "queued",
            stable_at: float | None = None, owner: str = "") -> int:
        now = time.time()
        started = now if state == "running" else None
        try:
            cursor = self.db.execute(
                "INSERT INTO jobs (kind, source, path, inbox, lane, state, attempts, owner, out, channels, metadata,"
                " stable_at, queued_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, source, path, inbox, lane, state, int(state == "running"), owner, out,
                 json.dumps(list(channels)), json.dumps(metadata or {}, ensure_ascii=False), stable_at, now, started))
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot add a job ({exc})") from exc
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def start(self, job_id: int, owner: str) -> bool:
        """queued -> running, one more attempt; False when the job was not queued (cancelled meanwhile)."""
        return self._update("UPDATE jobs SET state = 'running', attempts = attempts + 1, owner = ?, started_at = ?,"
                            " finished_at = NULL, error = '' WHERE id = ? AND state = 'queued'",
                            (owner, time.time(), job_id)) == 1

    def delivered(self, job_id: int, asset_id: str, manifests: list[str]) -> bool:
        return self._update("UPDATE jobs SET state = 'delivered', asset_id = ?, manifests = ?, finished_at = ?,"
                            " error = '' WHERE id = ? AND state = 'running'",
                            (asset_id, json.dumps(manifests), time.time(), job_id)) == 1

    def failed(self, job_id: int, error: str, asset_id: str = "", manifests: list[str] | None = None) -> bool:
        return self._update("UPDATE jobs SET state = 'failed', error = ?, asset_id = COALESCE(NULLIF(?, ''), "
                            "asset_id), manifests = ?, finished_at = ? WHERE id = ? AND state IN ('queued', "
                            "'running')", (error, asset_id, json.dumps(manifests or []), time.time(), job_id)) == 1

    def requeue(self, job_id: int, reason: str) -> bool:
        """running -> queued: its process stopped before the job ended; the next start resumes it."""
        return self._update("UPDATE jobs SET state = 'queued', owner = '', error = ? WHERE id = ? AND "
                            "state = 'running'", (reason, job_id)) == 1

    def moved(self, job_id: int, path: str) -> None:
        self._update("UPDATE jobs SET path = ? WHERE id = ?", (path, job_id))

    def cancel(self, job_id: int) -> Job:
        job = self.get(job_id)
        if not self._update("UPDATE jobs SET state = 'cancelled', finished_at = ?, error = 'cancelled with "
                            "`onetake jobs cancel`' WHERE id = ? AND state IN ('queued', 'running')",
                            (time.time(), job_id)):
            raise LedgerError(f"job {job_id} is {job.state}; only queued or running jobs can be cancelled")
        return self.get(job_id)

    def retry(self, job_id: int, path: str) -> Job:
        """failed or cancelled -> queued, its file now at ``path``."""
        job = self.get(job_id)
        if not self._update("UPDATE jobs SET state = 'queued', path = ?, owner = '', error = '', finished_at = NULL,"
                            " queued_at = ? WHERE id = ? AND state IN ('failed', 'cancelled')",
                            (path, time.time(), job_id)):
            raise LedgerError(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
        return self.get(job_id)

    def reconcile(self) -> list[Job]:
        """Running jobs whose process on this machine has died: a watch job goes back to the queue (the next
        watcher on its inbox resumes it), a run job is failed (its command must be run again)."""
        changed = []
        for job in self.list("running"):
            if job.owner and owner_alive(job.owner) is False:
                if job.kind == "watch":
                    self.requeue(job.id, "interrupted: the watcher stopped; the next `onetake watch` on its inbox "
                                         "resumes it")
                else:
                    self._update("UPDATE jobs SET state = 'failed', finished_at = ?, error = ? WHERE id = ? AND "
                                 "state = 'running'", (time.time(), "interrupted: the `onetake run` process ended "
                                                       "before the job finished; run it again", job.id))
                changed.append(self.get(job.id))
        return changed
