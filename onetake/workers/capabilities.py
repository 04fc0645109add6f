"""What the ffmpeg onetake runs can do, and whether it can run what the plans ask of it.

An ffmpeg binary is inspected once per process (``-version``, ``-encoders``, ``-muxers``, ``-demuxers``,
``-filters`` and ``-h full``, about 0.05 s for the shipped build and 0.3 s for Debian's), and every argv a
plan holds is read for the encoders, muxers, demuxers, filters, filter options and values and command-line
options it uses. Anything missing is one line naming the binary, its version and what it lacks, said before
any work starts: an older ffmpeg that cannot parse one option would otherwise encode for minutes and then fail
at verification.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..pipeline.errors import ConfigError
from ..pipeline.models import JobPlan
from ..pipeline.plan import PlanOptions
from ..pipeline.profiles import Catalog
from ..pipeline.run import representative_plans
from .ffmpeg import FFMPEG_ENV, USE_ANOTHER_FFMPEG, ffmpeg_binary

# The oldest ffmpeg onetake is tested with (Debian 12's); older ones are refused before any check of their parts.
MIN_VERSION = (5, 1)
# Command-line words that take no value.
FLAGS = {"-y", "-n", "-nostdin", "-hide_banner", "-nostats", "-vn", "-an", "-sn", "-dn", "-stats", "-xerror",
         "-copyts", "-shortest"}
# Options of the ffmpeg program itself, present in every version onetake supports, that ``-h full`` lists in a
# shape this reader does not take apart (``-map``'s long synopsis) or not at all (``-i``).
ALWAYS = {"i", "map", "filter_complex", "f", "c", "codec", "progress", "loglevel", "v"}
# Filters whose options also come from a library's context that ``-h full`` lists under that name.
CHILD_CLASSES = {"aresample": "SWResampler", "scale": "SWScaler", "amix": "SWResampler"}


@dataclass(frozen=True)
class FfmpegBuild:
    """What one ffmpeg binary has."""

    path: str
    version_line: str
    version: tuple[int, int] | None      # None: a build from git, whose number says nothing
    encoders: frozenset[str]
    decoders: frozenset[str]
    muxers: frozenset[str]
    demuxers: frozenset[str]
    filters: frozenset[str]
    filter_options: dict[str, dict[str, frozenset[str]]]  # filter -> option -> its named values
    options: frozenset[str]              # every command-line, codec and format option name

    @property
    def label(self) -> str:
        words = self.version_line.split()
        return f"ffmpeg {words[2] if len(words) > 2 else '(unknown version)'} at {self.path}"


@dataclass
class Needs:
    """What a set of argvs asks of ffmpeg."""

    encoders: set[str] = field(default_factory=set)
    muxers: set[str] = field(default_factory=set)
    demuxers: set[str] = field(default_factory=set)
    filters: dict[str, dict[str, str]] = field(default_factory=dict)  # filter -> option -> value used
    options: set[str] = field(default_factory=set)

    def add(self, other: Needs) -> None:
        self.encoders |= other.encoders
        self.muxers |= other.muxers
        self.demuxers |= other.demuxers
        self.options |= other.options
        for name, opts in other.filters.items():
            self.filters.setdefault(name, {}).update(opts)


# ---------------------------------------------------------------------------------------------------------
# reading argvs (pure)


def split_unescaped(text: str, separators: str) -> list[str]:
    """``text`` split on unescaped, unquoted ``separators``; escapes and quotes are kept as they are."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        if ch in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    """One level of ffmpeg's quoting undone: '\\x' is x, quotes removed."""
    out, quoted, i = [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and not quoted:
            out.append(text[i + 1])
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def filters_of(graph: str) -> list[tuple[str, dict[str, str]]]:
    """Every filter of a filtergraph description with its named options (positional values left out). Escapes
    have two levels, as ffmpeg reads them: the graph's (around ',' and ';'), then each filter's (around ':')."""
    found = []
    for spec in split_unescaped(graph, ";,"):
        spec = re.sub(r"^\s*(\[[^\]]*\]\s*)+", "", spec)
        spec = re.sub(r"(\s*\[[^\]]*\])+\s*$", "", spec)
        if not spec:
            continue
        name, _, args = spec.partition("=")
        options = {}
        for arg in split_unescaped(_unescape(args), ":") if args else []:
            key, eq, value = arg.partition("=")
            if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                options[key] = _unescape(value)
        found.append((name.split("@", 1)[0].strip(), options))
    return found


def needs_of(argv: Sequence[str]) -> Needs:
    """What one planned ffmpeg argv uses. Options are read by position: an ``-f`` before ``-i`` is a demuxer,
    one before an output name a muxer."""
    needs = Needs()
    fmt = None
    args = list(argv[1:])
    i = 0
    while i < len(args):
        word = args[i]
        if not word.startswith("-") or word == "-":  # an output name ends that output's options
            if fmt:
                needs.muxers.add(fmt)
            fmt = None
            i += 1
            continue
        if word in FLAGS:
            i += 1
            continue
        value = args[i + 1] if i + 1 < len(args) else ""
        name = word[1:].split(":", 1)[0]
        if name == "i":
            if fmt:
                needs.demuxers.add(fmt)
                if fmt == "lavfi":
                    for filter_name, options in filters_of(value):
                        needs.filters.setdefault(filter_name, {}).update(options)
            fmt = None
        elif name == "f":
            fmt = value
        elif name in ("c", "codec", "acodec", "vcodec") and value != "copy":
            needs.encoders.add(value)
        elif name in ("filter_complex", "af", "vf", "filter"):
            for filter_name, options in filters_of(value):
                needs.filters.setdefault(filter_name, {}).update(options)
        needs.options.add(name)
        i += 2
    return needs


# ---------------------------------------------------------------------------------------------------------
# inspecting a binary


def _run(path: str, *args: str) -> str:
    try:
        done = subprocess.run([path, "-hide_banner", *args], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"ffmpeg at {path} cannot be started ({exc}); {USE_ANOTHER_FFMPEG}") from exc
    if done.returncode != 0 and not done.stdout:
        raise ConfigError(f"ffmpeg at {path} fails when asked for {' '.join(args)} (exit status "
                          f"{done.returncode}: {done.stderr.strip()[-200:]}); {USE_ANOTHER_FFMPEG}")
    return done.stdout


def parse_version(line: str) -> tuple[int, int] | None:
    """(major, minor) from ``ffmpeg version n9.0.2-17-g...`` or ``5.1.9-0+deb12u1``; None for git builds."""
    m = re.match(r"ffmpeg version n?(\d+)\.(\d+)", line)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _listed(text: str) -> frozenset[str]:
    """Names from ``-encoders``/``-muxers``/``-filters``: the word after the flags column, below the header."""
    names: set[str] = set()
    body = text.split("---", 1)[-1] if "---" in text else text
    for line in body.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] != "=" and re.fullmatch(r"[A-Z.|]{1,8}", words[0]):
            names.update(words[1].split(","))
    return frozenset(names)


def _split_listing(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Demuxer names, muxer names from ``-formats`` (flags D and E before the name)."""
    demuxers, muxers = set(), set()
    for line in text.splitlines():
        m = re.match(r"^ ([D ])([E ])[d ]?\s+(\S+)", line)
        if m:
            names = m.group(3).split(",")
            if m.group(1) == "D":
                demuxers.update(names)
            if m.group(2) == "E":
                muxers.update(names)
    return frozenset(demuxers), frozenset(muxers)


def _section_names(header: str) -> list[str]:
    """Filter names an ``-h full`` section stands for: '(a)split' is split and asplit, 'scale(2ref)' scale."""
    if header.startswith("(a)"):
        return [header[3:], "a" + header[3:]]
    if "(" in header:
        base = header.split("(", 1)[0]
        return [base, base + header.split("(", 1)[1].rstrip(")")]
    return [header]


def parse_help(text: str) -> tuple[dict[str, dict[str, frozenset[str]]], frozenset[str]]:
    """From ``-h full``: every section's options with their named values, and every option name."""
    sections: dict[str, dict[str, set[str]]] = {}
    names: set[str] = set()
    current: dict[str, set[str]] | None = None
    last: set[str] | None = None
    for line in text.splitlines():
        top = re.match(r"^-([A-Za-z0-9_\-]+)", line)
        if top and current is None:
            names.add(top.group(1))
            continue
        header = re.match(r"^(\S.*) AVOptions:$", line)
        if header:
            current = sections.setdefault(header.group(1), {})
            last = None
            continue
        if current is None:
            continue
        option = re.match(r"^ {2,3}-?([A-Za-z0-9_\-]+)\s+\[?<", line)
        if option:
            last = current.setdefault(option.group(1), set())
            names.add(option.group(1))
            continue
        constant = re.match(r"^ {4,}(\S+)\s", line)
        if constant and last is not None:
            last.add(constant.group(1))
    by_filter: dict[str, dict[str, frozenset[str]]] = {}
    for header, options in sections.items():
        for name in _section_names(header):
            merged = by_filter.setdefault(name, {})
            for option_name, constants in options.items():
                merged[option_name] = frozenset(constants) | merged.get(option_name, frozenset())
    return by_filter, frozenset(names)


@functools.cache
def _inspect(path: str, stamp: tuple[int, int]) -> FfmpegBuild:
    version_line = _run(path, "-version").splitlines()[0].strip() if path else ""
    sections, names = parse_help(_run(path, "-h", "full"))
    demuxers, muxers = _split_listing(_run(path, "-formats"))
    return FfmpegBuild(path=path, version_line=version_line, version=parse_version(version_line),
                       encoders=_listed(_run(path, "-encoders")), decoders=_listed(_run(path, "-decoders")),
                       muxers=muxers, demuxers=demuxers, filters=_listed(_run(path, "-filters")),
                       filter_options=sections, options=names)


def inspect(path: str) -> FfmpegBuild:
    """What the binary at ``path`` has; inspected once per process (again if the file changes)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"ffmpeg at {path} does not exist ({exc.strerror}); {USE_ANOTHER_FFMPEG}") from exc
    return _inspect(path, (st.st_mtime_ns, st.st_size))


# ---------------------------------------------------------------------------------------------------------
# checking


def lacks(build: FfmpegBuild, needs: Needs) -> list[str]:
    """What ``build`` lacks of ``needs``, each in a few words; empty when it has everything."""
    missing = [f"the {e} encoder" for e in sorted(needs.encoders - build.encoders)]
    missing += [f"the {m} muxer" for m in sorted(needs.muxers - build.muxers)]
    missing += [f"the {d} demuxer" for d in sorted(needs.demuxers - build.demuxers)]
    for name, used in sorted(needs.filters.items()):
        if name not in build.filters:
            missing.append(f"the {name} filter")
            continue
        known = dict(build.filter_options.get(CHILD_CLASSES.get(name, ""), {}))
        known.update(build.filter_options.get(name, {}))
        if not known:
            continue  # a filter without listed options: nothing more can be checked
        for option, value in sorted(used.items()):
            if option not in known and option != "enable":
                missing.append(f"option '{option}' of the {name} filter")
            elif known.get(option) and re.fullmatch(r"[A-Za-z_]+", value) and value not in known[option]:
                missing.append(f"value '{value}' of option '{option}' of the {name} filter")
    options = needs.options - build.options - ALWAYS
    missing += [f"the -{o} option" for o in sorted(options)]
    return missing


def refusal(build: FfmpegBuild, missing: Sequence[str], fix: str) -> str:
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return f"{build.label} cannot run these jobs: it lacks {shown}; {fix}"


def check(build: FfmpegBuild, argvs: Iterable[Sequence[str]], fix: str) -> None:
    """Raise ConfigError (one line) when ``build`` is too old or lacks anything ``argvs`` use."""
    if build.version is not None and build.version < MIN_VERSION:
        raise ConfigError(f"{build.label} is older than {'.'.join(map(str, MIN_VERSION))}, the oldest onetake "
                          f"works with; {fix}")
    needs = Needs()
    for argv in argvs:
        needs.add(needs_of(argv))
    missing = lacks(build, needs)
    if missing:
        raise ConfigError(refusal(build, missing, fix))


# ---------------------------------------------------------------------------------------------------------
# the ffmpeg onetake runs, checked against plans


def fix_hint() -> str:
    if os.environ.get(FFMPEG_ENV):
        return (f"unset {FFMPEG_ENV} (and [farm] ffmpeg) to use the ffmpeg onetake ships, or name an ffmpeg that "
                f"has them")
    return "reinstall the ffmpeg onetake ships: pip install --force-reinstall imageio-ffmpeg"


def worker_argvs() -> list[list[str]]:
    """The ffmpeg commands workers build themselves (the meter verify runs on every output)."""
    from .loudness import meter_argv

    return [meter_argv("output", 2)]


def planned_argvs(plans: Iterable[JobPlan]) -> list[list[str]]:
    return [task.params[key] for plan in plans for task in plan.tasks for key in ("argv", "trial")
            if key in task.params]


def check_plans(plans: Iterable[JobPlan]) -> FfmpegBuild:
    """The ffmpeg onetake runs, refused in one line (ConfigError) when it cannot run ``plans``."""
    build = inspect(ffmpeg_binary())
    check(build, [*planned_argvs(plans), *worker_argvs()], fix_hint())
    return build


def photo_support(catalog: Catalog) -> tuple[bool, str]:
    """Whether this Pillow writes every photo format the profiles ask for (a Pillow built without libavif cannot
    write AVIF), as a line for `onetake doctor`."""
    import PIL
    import pillow_heif
    from PIL import features

    wanted = sorted({f for p in catalog.profiles.values() if p.photo is not None for f in p.photo.formats})
    missing = [f for f in wanted if f in ("avif", "webp") and not features.check(f)]
    line = (f"Pillow      {PIL.__version__} (writes {', '.join(f for f in wanted if f not in missing)}), "
            f"pillow-heif {pillow_heif.__version__}")
    if missing:
        line += f"; CANNOT write {', '.join(missing)}: install a Pillow wheel (pip install -U pillow)"
    return not missing, line


def doctor(build: FfmpegBuild, catalog: Catalog, options: PlanOptions) -> tuple[list[str], bool]:
    """What `onetake doctor` says of ``build``: its parts onetake uses and, channel by channel, whether the
    representative sources can be made; and whether all can."""
    ok = build.version is None or build.version >= MIN_VERSION
    lines = [] if ok else [f"            too old: onetake needs ffmpeg {'.'.join(map(str, MIN_VERSION))} or newer"]
    everything = Needs()
    rows = []
    for channel in catalog.channels:
        needs = Needs()
        for argv in planned_argvs(representative_plans([(channel,)], catalog, options)):
            needs.add(needs_of(argv))
        everything.add(needs)
        missing = lacks(build, needs)
        ok &= not missing
        state = "ok" if not missing else "CANNOT: lacks " + ", ".join(missing)
        rows.append(f"  {channel:<7} {state}  ({', '.join(sorted(needs.encoders))})")
    for argv in worker_argvs():
        everything.add(needs_of(argv))
    lines.append("encoders    " + ", ".join(f"{e} {'yes' if e in build.encoders else 'MISSING'}"
                                           for e in sorted(everything.encoders)))
    lines.append("filters     " + ", ".join(f if f in build.filters else f"{f} MISSING"
                                           for f in sorted(everything.filters)))
    lines.append("channels (for an interlaced, an HDR and an audio-only source):")
    return [*lines, *rows], ok
