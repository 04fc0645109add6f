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
CREATE INDEX IF NOT EXISTS jobs_asset ON jobs (asset_id);
-- the dispatch desk (`onetake serve`): its people, their sessions, what they did, and what the farm is doing
CREATE TABLE IF NOT EXISTS users (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL,             -- viewer | editor | operator
    password     TEXT NOT NULL,             -- an argon2id hash, never the password
    upload_limit INTEGER NOT NULL DEFAULT 0,  -- bytes per upload; 0: the desk's default
    created_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS desk_sessions (
    token_hash  TEXT PRIMARY KEY,           -- SHA-256 of the cookie's token
    user        TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL NOT NULL,
    user     TEXT NOT NULL,
    action   TEXT NOT NULL,                 -- retry | cancel | urgent | force | upload | login | user ...
    job_id   INTEGER,
    asset_id TEXT NOT NULL DEFAULT '',
    detail   TEXT NOT NULL DEFAULT '',
    reason   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_job ON audit (job_id);
CREATE TABLE IF NOT EXISTS task_progress (
    job_id     INTEGER NOT NULL,
    task       TEXT NOT NULL,
    label      TEXT NOT NULL,
    fraction   REAL NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, task)
);
CREATE TABLE IF NOT EXISTS farm_status (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    updated_at REAL NOT NULL,
    dashboard  TEXT NOT NULL DEFAULT '',
    workers    TEXT NOT NULL DEFAULT '[]'   -- [{name, cpu, memory, memory_limit, tasks}]
);
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

    # ------------------------------------------------------------------------------------- the dispatch desk

    def page(self, *, states: tuple[str, ...] = (), lane: str = "", inbox: str = "", since: float | None = None,
             until: float | None = None, search: str = "", limit: int = 50, offset: int = 0) -> tuple[list[Job], int]:
        """One page of jobs, newest first, and how many match: by state, lane, inbox, arrival time, and text
        in the file name, title or asset id."""
        where, args = self._filters(states, lane, inbox, since, until, search)
        total = self.db.execute(f"SELECT COUNT(*) FROM jobs{where}", args).fetchone()[0]
        rows = self.db.execute(f"SELECT * FROM jobs{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                               (*args, limit, offset)).fetchall()
        return [Job.from_row(r) for r in rows], total

    @staticmethod
    def _filters(states: tuple[str, ...], lane: str, inbox: str, since: float | None, until: float | None,
                 search: str) -> tuple[str, tuple[Any, ...]]:
        clauses: list[str] = []
        args: list[Any] = []
        if states:
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            args += states
        for column, value in (("lane", lane), ("inbox", inbox)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            clauses.append("queued_at >= ?")
            args.append(since)
        if until is not None:
            clauses.append("queued_at < ?")
            args.append(until)
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(source LIKE ? ESCAPE '\\' OR asset_id LIKE ? ESCAPE '\\' OR "
                           "json_extract(metadata, '$.title') LIKE ? ESCAPE '\\')")
            args += [pattern] * 3
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)

    def counts(self) -> dict[tuple[str, str], int]:
        """Jobs by (lane, state)."""
        rows = self.db.execute("SELECT lane, state, COUNT(*) AS n FROM jobs GROUP BY lane, state").fetchall()
        return {(r["lane"], r["state"]): r["n"] for r in rows}

    def inboxes(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT inbox FROM jobs WHERE inbox != '' ORDER BY inbox")]

    def for_asset(self, asset_id: str) -> list[Job]:
        rows = self.db.execute("SELECT * FROM jobs WHERE asset_id = ? ORDER BY id DESC", (asset_id,)).fetchall()
        return [Job.from_row(r) for r in rows]

    def set_lane(self, job_id: int, lane: str) -> Job:
        """Move a job that has not started (queued, failed, cancelled) to another lane."""
        job = self.get(job_id)
        if not self._update("UPDATE jobs SET lane = ? WHERE id = ? AND state IN ('queued', 'failed', 'cancelled')",
                            (lane, job_id)):
            raise LedgerError(f"job {job_id} is {job.state}; only a job that waits (queued, failed or cancelled) "
                              f"can change lane")
        return self.get(job_id)

    def lanes(self, job_ids: list[int]) -> dict[int, str]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self.db.execute(f"SELECT id, lane FROM jobs WHERE id IN ({marks})", job_ids).fetchall()
        return {row["id"]: row["lane"] for row in rows}

    def update_metadata(self, job_id: int, changes: dict[str, Any]) -> Job:
        """The job's metadata with ``changes`` merged in (what a later attempt of it reads)."""
        job = self.get(job_id)
        self._update("UPDATE jobs SET metadata = ? WHERE id = ?",
                     (json.dumps({**job.metadata, **changes}, ensure_ascii=False), job_id))
        return self.get(job_id)

    # users and sessions

    def add_user(self, name: str, role: str, password_hash: str, upload_limit: int = 0) -> None:
        try:
            self.db.execute("INSERT INTO users (name, role, password, upload_limit, created_at) VALUES (?, ?, ?, ?, ?)",
                            (name, role, password_hash, upload_limit, time.time()))
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"a user named '{name}' exists already; `onetake users remove {name}` first, or "
                              f"choose another name") from exc

    def user(self, name: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def users(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT name, role, upload_limit, created_at FROM users ORDER BY name")
        return [dict(r) for r in rows]

    def set_user(self, name: str, *, role: str | None = None, password_hash: str | None = None,
                 upload_limit: int | None = None) -> None:
        if self.user(name) is None:
            raise LedgerError(f"no user named '{name}'; `onetake users list` shows them")
        for column, value in (("role", role), ("password", password_hash), ("upload_limit", upload_limit)):
            if value is not None:
                self._update(f"UPDATE users SET {column} = ? WHERE name = ?", (value, name))
        if password_hash is not None or role is not None:  # a changed password or role signs the user out
            self._update("DELETE FROM desk_sessions WHERE user = ?", (name,))

    def remove_user(self, name: str) -> None:
        if not self._update("DELETE FROM users WHERE name = ?", (name,)):
            raise LedgerError(f"no user named '{name}'; `onetake users list` shows them")
        self._update("DELETE FROM desk_sessions WHERE user = ?", (name,))

    def add_session(self, token_hash: str, user: str, csrf: str, lifetime_s: float) -> None:
        now = time.time()
        self._update("DELETE FROM desk_sessions WHERE expires_at < ?", (now,))
        self._update("INSERT INTO desk_sessions (token_hash, user, csrf, created_at, expires_at) "
                     "VALUES (?, ?, ?, ?, ?)", (token_hash, user, csrf, now, now + lifetime_s))

    def session(self, token_hash: str) -> dict[str, Any] | None:
        """The live session with this token, joined with its user."""
        row = self.db.execute("SELECT s.csrf, s.expires_at, u.name, u.role, u.upload_limit FROM desk_sessions s "
                              "JOIN users u ON u.name = s.user WHERE s.token_hash = ? AND s.expires_at > ?",
                              (token_hash, time.time())).fetchone()
        return dict(row) if row else None

    def end_session(self, token_hash: str) -> None:
        self._update("DELETE FROM desk_sessions WHERE token_hash = ?", (token_hash,))

    # the audit log

    def audit(self, user: str, action: str, *, job_id: int | None = None, asset_id: str = "", detail: str = "",
              reason: str = "") -> None:
        self._update("INSERT INTO audit (at, user, action, job_id, asset_id, detail, reason) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (time.time(), user, action, job_id, asset_id, detail, reason))

    def audit_log(self, *, job_ids: list[int] | None = None, asset_id: str = "",
                  limit: int = 200) -> list[dict[str, Any]]:
        """Entries about these jobs or this asset (every entry when neither is given), newest first."""
        clauses, args = [], []
        if job_ids:
            clauses.append(f"job_id IN ({','.join('?' * len(job_ids))})")
            args += job_ids
        if asset_id:
            clauses.append("asset_id = ?")
            args.append(asset_id)
        where = " WHERE " + " OR ".join(clauses) if clauses else ""
        rows = self.db.execute(f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(r) for r in rows]

    # what the farm is doing (written by the process that runs the watcher, read by any desk on the ledger)

    def record_progress(self, job_id: int, task: str, label: str, fraction: float) -> None:
        now = time.time()
        self._update("INSERT INTO task_progress (job_id, task, label, fraction, started_at, updated_at) VALUES "
                     "(?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, task) DO UPDATE SET fraction = excluded.fraction, "
                     "updated_at = excluded.updated_at, started_at = CASE WHEN task_progress.fraction = 0 AND "
                     "excluded.fraction > 0 THEN excluded.updated_at ELSE task_progress.started_at END",
                     (job_id, task, label, fraction, now, now))

    def clear_progress(self, job_id: int) -> None:
        self._update("DELETE FROM task_progress WHERE job_id = ?", (job_id,))

    def progress(self, job_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        found: dict[int, list[dict[str, Any]]] = {}
        for row in self.db.execute(f"SELECT * FROM task_progress WHERE job_id IN ({marks}) ORDER BY task", job_ids):
            found.setdefault(row["job_id"], []).append(dict(row))
        return found

    def set_farm_status(self, workers: list[dict[str, Any]], dashboard: str) -> None:
        self._update("INSERT INTO farm_status (id, updated_at, dashboard, workers) VALUES (1, ?, ?, ?) ON CONFLICT "
                     "(id) DO UPDATE SET updated_at = excluded.updated_at, dashboard = excluded.dashboard, "
                     "workers = excluded.workers", (time.time(), dashboard, json.dumps(workers)))

    def farm_status(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM farm_status WHERE id = 1").fetchone()
        if row is None:
            return None
        return {"updated_at": row["updated_at"], "dashboard": row["dashboard"], "workers": json.loads(row["workers"])}

    def data_version(self) -> int:
        """Changes whenever another connection commits to the ledger: the desk's cue to look again."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]
