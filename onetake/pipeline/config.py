"""The farm config: a TOML file whose ``[farm]`` table sets the defaults of ``onetake run``.

``FarmConfig`` is the one place each default is written; the CLI options start from it and a value
given on the command line wins.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .destinations import is_s3, parse_location
from .errors import ConfigError
from .schema import build, option, read_toml

TIME_FLOOR_S = 300.0  # every ffmpeg may take this long, however short its source


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
    x264_threads: int = option(0, min=0, max=128, help="threads per x264 encoder; 0: x264 decides")
    stall_timeout_s: float = option(120.0, min=5, max=3600, help="stop an ffmpeg that makes no progress this long")
    timeout_factor: float = option(20.0, min=1, max=1000,
                                   help=f"stop an ffmpeg after {TIME_FLOOR_S / 60:g} min + this x the source duration")
    s3_multipart_mb: int = option(8, min=5, max=5120, help="S3 uploads of files this large or larger go up in "
                                                            "parts of this size (S3's smallest part is 5 MiB)")
    s3_concurrency: int = option(10, min=1, max=64, help="S3 uploads (and parts) in flight at once per delivery")
    s3_retry_window_s: float = option(60.0, min=0, max=3600, help="keep retrying an S3 request that fails for a "
                                                                  "transient reason (5xx, throttling, endpoint "
                                                                  "down) this long")

    def limits(self, duration: float) -> dict[str, float]:
        """The time limits of every ffmpeg run for a source of ``duration`` seconds."""
        return {"stall_timeout_s": self.stall_timeout_s,
                "timeout_s": round(TIME_FLOOR_S + duration * self.timeout_factor, 1)}

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
    unknown = sorted(set(data) - {"farm", "destinations"})
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]; the farm config has [farm] and [destinations] "
                          f"sections")
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
