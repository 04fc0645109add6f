"""The ffmpeg-python plumbing of every planned command: the source as an input, filter lists and trees turned into
one graph (a split inserted wherever a stream feeds several branches), and the options every command shares."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ffmpeg

from ..media import PROTOCOL_WHITELIST
from ..models import SourceInfo

Filter = tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]


def flt(name: str, *args: Any, **kwargs: Any) -> Filter:
    return (name, args, tuple(kwargs.items()))


@dataclass
class Chain:
    filters: list[Filter] = field(default_factory=list)
    children: list[Chain] = field(default_factory=list)
    sinks: list[str] = field(default_factory=list)

    def child(self, *filters: Filter) -> Chain:
        node = Chain(list(filters))
        self.children.append(node)
        return node


OVERLAY = "overlay-of-branches"  # a pseudo-filter: split, filter each branch, overlay the second on the first
# a pseudo-filter: args (file, width, height, opacity) read, sized and faded as an input of its own, kwargs placing it
# over the picture (a single picture: overlay repeats it to the end)
PICTURE_OVER = "overlay-picture-file"


class Pictures:
    """The picture files a tree overlays, each read and sized once and split as often as it is used (ffmpeg-python
    would merge two identical chains into one node with two outputs, which ffmpeg refuses)."""

    def __init__(self, tree: Chain) -> None:
        uses = Counter(args for f in _all_filters(tree) for name, args, _ in [f] if name == PICTURE_OVER)
        self.streams: dict[tuple[Any, ...], list[Any]] = {}
        for args, count in uses.items():
            path, width, height, opacity = args
            # its name as it is: a '%d' in it is no image sequence
            picture = (ffmpeg.input("file:" + path, f="image2", pattern_type="none")
                       .filter("scale", width, height, flags="lanczos")
                       .filter("format", "rgba").filter("colorchannelmixer", aa=opacity))
            self.streams[args] = [picture] if count == 1 else \
                [picture.filter_multi_output("split", count)[i] for i in range(count)]

    def take(self, args: tuple[Any, ...]) -> Any:
        return self.streams[args].pop()


def _all_filters(chain: Chain) -> list[Filter]:
    found = []
    for f in chain.filters:
        found += _all_filters(Chain(list(f[1][0]) + list(f[1][1]))) if f[0] == OVERLAY else [f]
    for child in chain.children:
        found += _all_filters(child)
    return found


def apply_filters(stream: Any, filters: list[Filter], pictures: Pictures | None = None) -> Any:
    for name, args, kwargs in filters:
        if name == OVERLAY:
            split = stream.filter_multi_output("split", 2)
            below, above = apply_filters(split[0], args[0], pictures), apply_filters(split[1], args[1], pictures)
            stream = ffmpeg.overlay(below, above, **dict(kwargs))
        elif name == PICTURE_OVER:
            assert pictures is not None
            stream = ffmpeg.overlay(stream, pictures.take(args), **dict(kwargs))
        else:
            stream = stream.filter(name, *args, **dict(kwargs))
    return stream


def emit(stream: Any, chain: Chain, sinks: dict[str, Any], audio: bool, pictures: Pictures | None = None) -> None:
    """Build ``chain`` (a tree) on ``stream``; each sink's stream lands in ``sinks`` under its label."""
    if pictures is None and not audio:
        pictures = Pictures(chain)
    stream = apply_filters(stream, chain.filters, pictures)
    fan = len(chain.children) + len(chain.sinks)
    outs = [stream] if fan == 1 else [stream.filter_multi_output("asplit" if audio else "split", fan)[i]
                                      for i in range(fan)]
    for label, out in zip(chain.sinks, outs):
        sinks[label] = out
    for node, out in zip(chain.children, outs[len(chain.sinks):]):
        emit(out, node, sinks, audio, pictures)


GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning", "-y")


SOURCE_ARGS = ("-copyts",)  # every command that reads a source: its timestamps as they are (see programme_start)


def source_input(source: SourceInfo, **options: Any) -> Any:
    # reinit_filter 0: a picture size change mid-stream must not rebuild the graph (which would restart every
    # filter's clock, aresample's padding included); the head's scale takes the new size back to the first
    return ffmpeg.input("file:" + source.path, f=source.format, protocol_whitelist=PROTOCOL_WHITELIST,
                        reinit_filter=0, **options)


def kbps(value: int) -> str:
    return f"{value}k"
