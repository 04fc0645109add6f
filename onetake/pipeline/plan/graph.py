"""The ffmpeg-python plumbing of every planned command: the source as an input, filter lists and trees turned into
one graph (a split inserted wherever a stream feeds several branches), and the options every command shares."""

from __future__ import annotations

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


def apply_filters(stream: Any, filters: list[Filter]) -> Any:
    for name, args, kwargs in filters:
        if name == OVERLAY:
            split = stream.filter_multi_output("split", 2)
            below, above = apply_filters(split[0], args[0]), apply_filters(split[1], args[1])
            stream = ffmpeg.overlay(below, above, **dict(kwargs))
        else:
            stream = stream.filter(name, *args, **dict(kwargs))
    return stream


def emit(stream: Any, chain: Chain, sinks: dict[str, Any], audio: bool) -> None:
    stream = apply_filters(stream, chain.filters)
    fan = len(chain.children) + len(chain.sinks)
    outs = [stream] if fan == 1 else [stream.filter_multi_output("asplit" if audio else "split", fan)[i]
                                      for i in range(fan)]
    for label, out in zip(chain.sinks, outs):
        sinks[label] = out
    for node, out in zip(chain.children, outs[len(chain.sinks):]):
        emit(out, node, sinks, audio)


GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning", "-y")


SOURCE_ARGS = ("-copyts",)  # every command that reads a source: its timestamps as they are (see programme_start)


def source_input(source: SourceInfo) -> Any:
    # reinit_filter 0: a picture size change mid-stream must not rebuild the graph (which would restart every
    # filter's clock, aresample's padding included); the head's scale takes the new size back to the first
    return ffmpeg.input("file:" + source.path, f=source.format, protocol_whitelist=PROTOCOL_WHITELIST,
                        reinit_filter=0)


def kbps(value: int) -> str:
    return f"{value}k"
