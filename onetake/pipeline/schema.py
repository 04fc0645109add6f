"""Typed option tables: one dataclass per TOML section, each field carrying its default and bounds.

The dataclasses are the single source of truth for every default: the loaders validate TOML tables
against them and the CLI takes its defaults from them.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def option(default: Any, *, choices: tuple[Any, ...] | None = None, min: float | None = None,
           max: float | None = None, pattern: str | None = None, help: str = "") -> Any:
    """A dataclass field that knows its allowed values."""
    meta = {"choices": choices, "min": min, "max": max, "pattern": pattern, "help": help}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for list defaults so that specs stay frozen")
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if typing.get_args(tp)[:1] == (int,):
        return "a list of integers"
    return "a list of strings"


def _coerce(value: Any, tp: Any) -> Any:
    """Return value as tp, or raise ValueError; TOML gives ints where floats are meant."""
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(tp) is tuple and typing.get_args(tp)[:1] == (int,):
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    elif typing.get_origin(tp) is tuple:
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
    raise ValueError(_type_name(tp))


def build(cls: type[T], table: Mapping[str, Any], where: str, error: type[Exception]) -> T:
    """Validate a TOML table against dataclass ``cls`` and build it.

    ``where`` names the file and section for messages, e.g. ``"tv.toml [video]"``.
    """
    import re

    if not isinstance(table, Mapping):
        raise error(f"{where}: expected a table of keys, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise error(f"{where}: unknown key '{unknown[0]}'; known keys are {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, value in table.items():
        meta = known[name].metadata
        try:
            value = _coerce(value, hints[name])
        except ValueError as exc:
            raise error(f"{where}: '{name}' must be {exc}, got {value!r}") from None
        choices = meta.get("choices")
        if choices is not None:
            bad = [v for v in (value if isinstance(value, tuple) else (value,)) if v not in choices]
            if bad:
                raise error(f"{where}: '{name}' = {bad[0]!r} is not allowed; choose one of "
                            f"{', '.join(repr(c) for c in choices)}")
        low, high = meta.get("min"), meta.get("max")
        for each in (value if isinstance(value, tuple) else (value,)):  # a list's every item
            if (low is not None and each < low) or (high is not None and each > high):
                raise error(f"{where}: '{name}' = {each!r} is out of range; it must be within [{low}, {high}]")
        pattern = meta.get("pattern")
        bad = [v for v in (value if isinstance(value, tuple) else (value,)) if pattern and not re.fullmatch(pattern, v)]
        if bad:
            raise error(f"{where}: '{name}' = {bad[0]!r} does not match {pattern}")
        values[name] = value
    return cls(**values)


def read_toml(path: Path, error: type[Exception], what: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing or unreadable file is ``error`` naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise error(f"{path}: not a readable TOML file ({exc})") from exc
