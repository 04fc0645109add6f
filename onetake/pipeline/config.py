"""The farm config: a TOML file whose ``[farm]`` table sets the defaults of ``onetake run``.

``FarmConfig`` is the one place each default is written; the CLI options start from it and a value
given on the command line wins.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .schema import build, option, read_toml


TIME_FLOOR_S = 300.0  # every ffmpeg may take this long, however short its source


@dataclass(frozen=True)
class FarmConfig:
    out: str = option("out", help="where deliveries land: OUT/<channel>/<asset_id>/")
    work_dir: str = option("", help="scratch for renditions, reused by reruns; default OUT/.onetake")
    channels: tuple[str, ...] = option((), help="channels to make; empty: every channel the source can feed")
    profiles_dir: str = option("", help="a folder of profile TOML files that add to or override the shipped ones")
    scheduler: str = option("", help="address of an existing Dask scheduler; empty: an embedded cluster")
    workers: int = option(0, min=0, max=512, help="embedded cluster worker processes; 0: one per 4 cores")
    x264_threads: int = option(0, min=0, max=128, help="threads per x264 encoder; 0: x264 decides")
    qc: str = option("enforce", choices=("enforce", "warn"),
                     help="enforce: a channel that fails its QC rules is not delivered; warn: deliver it anyway, "
                          "the manifest says what failed")
    stall_timeout_s: float = option(120.0, min=5, max=3600, help="stop an ffmpeg that makes no progress this long")
    timeout_factor: float = option(20.0, min=1, max=1000,
                                   help=f"stop an ffmpeg after {TIME_FLOOR_S / 60:g} min + this x the source duration")

    def limits(self, duration: float) -> dict[str, float]:
        """The time limits of every ffmpeg run for a source of ``duration`` seconds."""
        return {"stall_timeout_s": self.stall_timeout_s,
                "timeout_s": round(TIME_FLOOR_S + duration * self.timeout_factor, 1)}

    def work_path(self) -> str:
        return self.work_dir or str(Path(self.out) / ".onetake")

    def merged(self, **overrides: Any) -> FarmConfig:
        """This config with every override that is not None (command-line values beat the file)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given) if given else self


def load_config(path: str | Path | None) -> FarmConfig:
    if path is None:
        return FarmConfig()
    path = Path(path)
    data = read_toml(path, ConfigError, "config file")
    unknown = sorted(set(data) - {"farm"})
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]; the farm config has a [farm] section")
    return build(FarmConfig, data.get("farm", {}), f"{path} [farm]", ConfigError)


def field_help(name: str) -> str:
    """The documented meaning and default of a FarmConfig field, for the CLI's --help."""
    for f in fields(FarmConfig):
        if f.name == name:
            default = f.default if f.default not in ("", ()) else "none"
            return f"{f.metadata['help']} [config: {name}; default: {default}]"
    raise KeyError(name)
