"""The farm config: a TOML file whose ``[farm]`` table sets the defaults of ``onetake run``.

``FarmConfig`` is the one place each default is written; the CLI options start from it and a value
given on the command line wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .destinations import absolute_location, is_s3, parse_location
from .errors import ConfigError
from .profiles import X264_PRESETS
from .schema import build, option, read_toml

TIME_FLOOR_S = 300.0  # every ffmpeg may take this long, however short its source
CORES_PER_WORKER = 4  # an encode of several renditions keeps about four cores busy


@dataclass(frozen=True)
class FarmConfig:
    out: str = option("out", help="where deliveries land: OUT/<channel>/<asset_id>/; a folder or s3://bucket/prefix")
    work_dir: str = option("", help="scratch for renditions and fetched sources, reused by reruns; default "
                                    "OUT/.onetake, or ./.onetake when OUT is in S3")
    destinations: tuple[str, ...] = option((), pattern=r"[A-Za-z0-9_-]+=.+",
                                           help="CHANNEL=DEST pairs: a channel's own folder or s3://bucket/prefix, "
                                                "delivered as DEST/<asset_id>/ (a [destinations] table in the file)")
    channels: tuple[str, ...] = option((), help="channels to make; empty: every channel the source can feed")
    profiles_dir: str = option("", help="a folder of profile TOML files that add to or override the shipped ones")
    scheduler: str = option("", help="address of an existing Dask scheduler; empty: an embedded cluster")
    workers: int = option(0, min=0, max=512, help="embedded cluster worker processes; 0: one per 4 cores")
    threads_per_worker: int = option(2, min=1, max=64, help="threads of each embedded worker process: one runs an "
                                                             "encode, the others verify, package and deliver")
    scheduler_timeout_s: float = option(15.0, min=1, max=600, help="how long to try reaching --scheduler, and "
                                                                    "reaching it again after it restarted mid-run")
    x264_threads: int = option(0, min=0, max=128, help="threads per x264 encoder; 0: x264 decides")
    ffmpeg: str = option("", help="the ffmpeg binary to run; empty: the one onetake ships (imageio-ffmpeg). The "
                                  "ONETAKE_FFMPEG environment variable beats this key")
    qc: str = option("enforce", choices=("enforce", "warn"),
                     help="enforce: a channel that fails its QC rules is not delivered; warn: deliver it anyway, "
                          "the manifest says what failed")
    accept_damaged: bool = option(False, help="deliver a source whose pictures need error concealment (a worn tape, "
                                                   "a damaged card) as it decodes, and say so in the manifests; "
                                                   "otherwise such a source is refused before encoding")
    chunk_min_s: float = option(120.0, min=10, max=86400,
                                help="a programme longer than this is encoded in chunks spread over the farm's "
                                     "encode slots, joined without re-encoding and checked at every join")
    chunk_s: float = option(60.0, min=4, max=3600,
                            help="the length a chunk aims at (cut on the renditions' common GOP grid)")
    stall_timeout_s: float = option(120.0, min=5, max=3600, help="stop an ffmpeg that makes no progress this long")
    stall_retries: int = option(1, min=0, max=10, help="run a task whose ffmpeg was stopped for making no progress "
                                                       "again this many times (at once, on the same worker) before "
                                                       "its channel fails")
    timeout_factor: float = option(20.0, min=1, max=1000,
                                   help=f"stop an ffmpeg after {TIME_FLOOR_S / 60:g} min + this x the source duration")
    s3_multipart_mb: int = option(8, min=5, max=5120, help="S3 uploads of files this large or larger go up in "
                                                            "parts of this size (S3's smallest part is 5 MiB)")
    s3_concurrency: int = option(10, min=1, max=64, help="S3 uploads (and parts) in flight at once per delivery")
    s3_retry_window_s: float = option(60.0, min=0, max=3600, help="keep retrying an S3 request that fails for a "
                                                                  "transient reason (5xx, throttling, endpoint "
                                                                  "down) this long")
    logo: str = option("", help="the station logo (台标), a PNG or SVG with transparency, placed on every channel "
                                "that has a [CHANNEL.logo] table (web, app and short as shipped); empty: no logo")
    cover: str = option("", help="the station's cover picture (JPEG or PNG) for audiograms of programmes that "
                                 "arrive without a NAME.jpg beside them; empty: the profile's background colour")
    captions: bool = option(True, help="use the captions that come with a source (a NAME.srt/.vtt/.ass sidecar, or "
                                       "a text subtitle stream): burned into the short, WebVTT for web and app")
    captions_language: str = option("zh", pattern=r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?",
                                    help="the language of captions whose file name (clip.en.srt) or stream does "
                                         "not say, as a BCP 47 tag")
    ledger: str = option("", help="the SQLite job ledger; `run` records into it when set, `watch` and `jobs` "
                                  "default to WORK_DIR/jobs.sqlite")
    first_version_channels: tuple[str, ...] = option(
        ("web", "short"), help="an urgent job (`run --urgent`, an urgent lane) first publishes a quick version of "
                               "these of its channels, then replaces it with the full-quality delivery")
    first_version_preset: str = option("ultrafast", choices=X264_PRESETS,
                                       help="the x264 preset of a first version's H.264 renditions")
    first_version_profile: str = option("main", choices=("baseline", "main", "high"),
                                        help="the H.264 profile of a first version's renditions (and what verify "
                                             "checks): ultrafast leaves out CABAC and the 8x8 transform, so its "
                                             "stream is Main; high for the slower presets")
    first_version_framing: str = option("center", choices=("center", "follow"),
                                        help="how a first version crops a 9:16 short that follows the speaker: "
                                             "centred (at once), or following them (after the analysis)")
    first_version_trials: int = option(0, min=0, max=6,
                                       help="loudness trial encodes a first version's measurement may take (a full "
                                            "delivery's take up to 6); 0: it encodes with the gain computed from "
                                            "the programme's loudness, untried, and verify checks what came out "
                                            "(one trial would only measure that same setting: a correction needs "
                                            "two)")
    first_version_chunk_s: float = option(6.0, min=2, max=3600,
                                          help="a first version is cut into as many chunks as the cluster has "
                                               "encode slots, each about this long (s) at least, and joined; on "
                                               "one slot, or for a clip shorter than twice this, it is encoded "
                                               "whole (unless it is longer than chunk_min_s)")
    first_version_height: int = option(720, min=144, max=4320,
                                       help="a first version carries one rung of an HLS ladder: the highest at "
                                            "most this tall")

    def limits(self, duration: float) -> dict[str, float]:
        """The time limits of every ffmpeg run for a source of ``duration`` seconds."""
        return {"stall_timeout_s": self.stall_timeout_s,
                "timeout_s": round(TIME_FLOOR_S + duration * self.timeout_factor, 1)}

    def embedded_workers(self) -> int:
        return self.workers or max(1, (os.cpu_count() or 1) // CORES_PER_WORKER)

    def work_path(self) -> str:
        if self.work_dir:
            return self.work_dir
        return ".onetake" if is_s3(self.out) else str(Path(self.out) / ".onetake")

    def channel_destinations(self) -> dict[str, str]:
        """The per-channel destinations, by channel; each value already checked to be a folder or S3 URL."""
        pairs = dict(entry.split("=", 1) for entry in self.destinations)
        for channel, dest in pairs.items():
            parse_location(dest, f"destination of channel '{channel}'")
        return pairs

    def transfer(self) -> dict[str, float]:
        """How S3 transfers are made, carried in every task that talks to a store."""
        return {"multipart_bytes": self.s3_multipart_mb * 1024 * 1024, "concurrency": self.s3_concurrency,
                "retry_window_s": self.s3_retry_window_s}

    def ledger_path(self) -> str:
        return self.ledger or str(Path(self.work_path()) / "jobs.sqlite")

    def merged(self, **overrides: Any) -> FarmConfig:
        """This config with every override that is not None (command-line values beat the file); destinations
        given are merged channel by channel into the file's."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if given.get("destinations"):
            pairs = {**dict(e.split("=", 1) for e in self.destinations),
                     **dict(e.split("=", 1) for e in given["destinations"])}
            given["destinations"] = tuple(f"{c}={d}" for c, d in pairs.items())
        return replace(self, **given) if given else self


def load_config(path: str | Path | None) -> FarmConfig:
    if path is None:
        return FarmConfig()
    path = Path(path)
    data = read_toml(path, ConfigError, "config file")
    unknown = sorted(set(data) - {"farm", "destinations", *WATCH_SECTIONS, *SERVE_SECTIONS})
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]; the farm config has [farm] and [destinations] "
                          f"sections (and [watch] and [[inbox]] for `onetake watch`)")
    farm = dict(data.get("farm", {}))
    table = data.get("destinations", {})
    if table:
        if "destinations" in farm:
            raise ConfigError(f"{path}: give per-channel destinations either as [destinations] or as "
                              f"[farm] destinations, not both")
        bad = next((k for k, v in table.items() if not isinstance(v, str)), None)
        if bad is not None:
            raise ConfigError(f"{path} [destinations]: '{bad}' must be a string, a folder or s3://bucket/prefix")
        farm["destinations"] = [f"{channel}={dest}" for channel, dest in table.items()]
    config = build(FarmConfig, farm, f"{path} [farm]", ConfigError)
    try:
        parse_location(config.out, "'out'")
        config.channel_destinations()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def field_help(name: str) -> str:
    """The documented meaning and default of a FarmConfig field, for the CLI's --help."""
    for f in fields(FarmConfig):
        if f.name == name:
            default = f.default if f.default not in ("", ()) else "none"
            return f"{f.metadata['help']} [config: {name}; default: {default}]"
    raise KeyError(name)


# ------------------------------------------------------------------------------------------------- watch folders

LANES = ("urgent", "normal", "bulk")
# Dask runs higher priorities first; the gaps leave room for the task-kind order inside a lane
LANE_PRIORITY = {"urgent": 100, "normal": 0, "bulk": -100}
WATCH_SECTIONS = ("watch", "inbox")


@dataclass(frozen=True)
class WatchConfig:
    """The ``[watch]`` table: how every inbox is watched, unless an ``[[inbox]]`` says otherwise."""

    settle_s: float = option(5.0, min=0.05, max=3600,
                             help="a file is taken once its size and mtime held still this long")
    poll_s: float = option(2.0, min=0.05, max=600,
                           help="how often inboxes are listed; the fallback for network shares without events")
    events: bool = option(True, help="also wake on file-system events (watchdog); polling runs either way")
    lane: str = option("normal", choices=LANES, help="the lane of files from inboxes that name none")
    require: str = option("none", choices=("none", "done", "checksum"),
                          help="none: settle time only; done: wait for NAME.done; checksum: wait for NAME.sha256 "
                               "and check it")
    on_success: str = option("move", choices=("move", "delete"),
                             help="after every channel is delivered and verified: move the source to done/, "
                                  "or delete it")
    max_active_jobs: int = option(0, min=0, max=1024,
                                  help="normal and bulk jobs on the cluster at once (urgent ones always go); "
                                       "0: encode workers + 1")
    drain_timeout_s: float = option(600.0, min=0, max=86400,
                                    help="on SIGTERM or a first Ctrl-C, how long running jobs may take to finish")


@dataclass(frozen=True)
class InboxConfig:
    """One ``[[inbox]]``: a folder, what its files become and where they go. Empty values come from
    ``[watch]`` and ``[farm]``."""

    path: str = option("", help="the folder senders drop files into (processing/, done/, failed/ go inside)")
    out: str = option("", help="where this inbox's deliveries land; empty: [farm] out")
    channels: tuple[str, ...] = option((), help="channels to make; empty: [farm] channels")
    lane: str = option("", choices=("", *LANES), help="urgent, normal or bulk; empty: [watch] lane")
    require: str = option("", choices=("", "none", "done", "checksum"), help="empty: [watch] require")
    on_success: str = option("", choices=("", "move", "delete"), help="empty: [watch] on_success")
    settle_s: float = option(0.0, min=0, max=3600, help="0: [watch] settle_s")

    def resolved(self, farm: FarmConfig, watch: WatchConfig) -> InboxConfig:
        """Every empty value filled from ``watch`` and ``farm``, paths made absolute."""
        return replace(self, path=str(Path(self.path).absolute()), out=absolute_location(self.out or farm.out),
                       channels=self.channels or farm.channels, lane=self.lane or watch.lane,
                       require=self.require or watch.require, on_success=self.on_success or watch.on_success,
                       settle_s=self.settle_s or watch.settle_s)


def load_watch_config(path: str | Path) -> tuple[FarmConfig, WatchConfig, list[InboxConfig]]:
    """A farm config with its ``[watch]`` table and ``[[inbox]]`` list."""
    farm = load_config(path)
    data = read_toml(Path(path), ConfigError, "config file")
    watch = build(WatchConfig, data.get("watch", {}), f"{path} [watch]", ConfigError)
    tables = data.get("inbox", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: inboxes are a list of tables, written [[inbox]] (two brackets)")
    inboxes = []
    for n, table in enumerate(tables, 1):
        inbox = build(InboxConfig, table, f"{path} [[inbox]] #{n}", ConfigError)
        if not inbox.path:
            raise ConfigError(f"{path} [[inbox]] #{n}: 'path' is required: the folder to watch")
        inboxes.append(inbox)
    return farm, watch, inboxes


def watch_help(name: str) -> str:
    """The documented meaning and default of a WatchConfig field, for the CLI's --help."""
    for f in fields(WatchConfig):
        if f.name == name:
            return f"{f.metadata['help']} [config: [watch] {name}; default: {f.default}]"
    raise KeyError(name)


# ------------------------------------------------------------------------------------------------- the dispatch desk

SERVE_SECTIONS = ("serve",)
ROLES = ("viewer", "editor", "operator")  # each may do what the one before it may, and more


@dataclass(frozen=True)
class ServeConfig:
    """The ``[serve]`` table: how ``onetake serve`` runs the dispatch desk."""

    bind: str = option("127.0.0.1:8800", pattern=r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}",
                       help="HOST:PORT the desk listens on; keep it on loopback and put a TLS proxy in front")
    public_board: bool = option(False, help="let anyone who reaches the desk see the board, read-only, "
                                           "without logging in")
    upload_inbox: str = option("", help="the inbox folder uploads land in; empty: the first [[inbox]]")
    upload_limit_mb: int = option(4096, min=1, max=1024 * 1024,
                                  help="the largest upload, in MiB, for users without a limit of their own")
    upload_chunk_kib: int = option(8192, min=16, max=1024 * 1024,
                                   help="the size of each upload request from a browser, in KiB: a dropped "
                                        "connection costs at most one chunk")
    upload_expiry_h: float = option(48.0, min=0.1, max=24 * 365,
                                    help="an unfinished upload untouched this long is deleted")
    session_hours: float = option(12.0, min=0.05, max=24 * 90, help="a login lasts this long")
    secure_cookies: str = option("auto", choices=("auto", "always", "never"),
                                 help="auto: cookies are Secure when the request came over HTTPS (as the proxy "
                                      "says in X-Forwarded-Proto)")
    forwarded_allow_ips: str = option("127.0.0.1", help="the proxies whose X-Forwarded-For/-Proto are believed, "
                                                         "comma-separated")
    login_attempts: int = option(5, min=1, max=1000,
                                 help="failed logins allowed per user name and per address in login_window_s")
    login_window_s: float = option(300.0, min=1, max=86400, help="the window of login_attempts")
    page_size: int = option(50, min=5, max=1000, help="jobs per page on the board")


def load_serve_config(path: str | Path | None) -> ServeConfig:
    """The ``[serve]`` table of a farm config (defaults without a file)."""
    if path is None:
        return ServeConfig()
    data = read_toml(Path(path), ConfigError, "config file")
    return build(ServeConfig, data.get("serve", {}), f"{path} [serve]", ConfigError)


def serve_help(name: str) -> str:
    """The documented meaning and default of a ServeConfig field, for the CLI's --help."""
    for f in fields(ServeConfig):
        if f.name == name:
            return f"{f.metadata['help']} [config: [serve] {name}; default: {f.default}]"
    raise KeyError(name)
