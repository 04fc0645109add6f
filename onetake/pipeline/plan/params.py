"""The task kinds, their ids, and each kind's parameters as a typed dict: the contract between the plan (which
writes them), the workers (which read them), the CLI's progress view and the watcher.

A task id is ``ASSET/KIND`` or ``ASSET/KIND/NAME`` (asset ids never hold a '/'), so a task's kind, and the kinds of
its dependencies, are read from their ids. Parameters stay plain JSON in a plan; these types say which keys each
kind has, in the order the plan writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict


class TaskKind(StrEnum):
    FETCH = "fetch"        # an s3:// source copied into the work dir and probed there
    MEASURE = "measure"    # the programme's loudness, and each loudness target's settled gain and limiter
    ANALYZE = "analyze"    # one decode through the analysis kernels (cached per source)
    ENCODE = "encode"      # one ffmpeg making one or more renditions
    PACKAGE = "package"    # HLS segments and master playlist, or a sprite's WebVTT
    VERIFY = "verify"      # one output against its profile
    REPORT = "report"      # the analysis as an HTML page
    DELIVER = "deliver"    # QC, then a channel's files and manifest into its destination


def task_id(asset_id: str, kind: TaskKind, name: str = "") -> str:
    return f"{asset_id}/{kind.value}/{name}" if name else f"{asset_id}/{kind.value}"


def kind_of(identifier: str) -> TaskKind:
    """The kind of the task with this id."""
    return TaskKind(identifier.split("/")[1])


class Limits(TypedDict):
    stall_timeout_s: float
    timeout_s: float


class MeasureParams(TypedDict):
    argv: list[str]                 # the programme's meter
    trial: list[str]                # every target's branch, with {gain_N}, {limit_N}, {release_N}, {scratch}
    targets: list[dict[str, Any]]   # LoudnessTarget.to_dict(), in placeholder order
    source: str
    limits: Limits
    cache: str


class AnalyzeParams(TypedDict):
    source: str
    cache: str
    limits: Limits


class EncodeOutput(TypedDict):
    key: str
    profile: str
    partial: str
    final: str


class FollowParams(TypedDict):
    commands: str         # the sendcmd file the worker writes from the analysis's crop path
    width: int            # the picture's width in the pixels the crop sees
    window: int | None    # the crop window's width


class EncodeParams(TypedDict):
    argv: list[str]
    source: str
    duration: float
    limits: Limits
    outputs: list[EncodeOutput]
    follow: NotRequired[FollowParams]


class HlsVariant(TypedDict):
    name: str
    width: int
    height: int
    frame_rate: float
    mp4: str


class HlsPackageParams(TypedDict):
    kind: Literal["hls"]
    argv: list[str]
    partial: str
    final: str
    variants: list[HlsVariant]
    limits: NotRequired[Limits]


class SpriteCue(TypedDict):
    start: float
    end: float
    image: str
    xywh: list[int]


class SpritePackageParams(TypedDict):
    kind: Literal["sprite"]
    sheets: str
    partial: str
    final: str
    sheet_count: int
    cues: list[SpriteCue]


PackageParams = HlsPackageParams | SpritePackageParams


class VerifyParams(TypedDict):
    profile: dict[str, Any]
    path: str
    expect: dict[str, Any]
    limits: Limits


class ReportParams(TypedDict):
    source: str
    final: str
    title: str


class DeliveredFile(TypedDict):
    src: str
    dest: str
    profile: str


class QcParams(TypedDict):
    mode: str
    rules: dict[str, Any] | None
    record: str | None


class SourceRecord(TypedDict):
    path: str
    size: int
    sha256: str


class DeliverParams(TypedDict):
    channel: str
    asset_id: str
    dest: str
    files: list[DeliveredFile]
    notes: list[str]
    qc: QcParams
    source: SourceRecord
    transfer: NotRequired[dict[str, float]]
    metadata: NotRequired[dict[str, Any]]  # a watch folder's sidecar, added by the watcher


class FetchParams(TypedDict):
    url: str
    work_dir: str
    transfer: dict[str, float]


class Deps:
    """The results of a task's dependencies, found by the kind of task that made them."""

    def __init__(self, results: Mapping[str, Any]) -> None:
        self.results = dict(results)

    def all(self, kind: TaskKind) -> list[Any]:
        return [result for identifier, result in self.results.items() if kind_of(identifier) is kind]

    def one(self, kind: TaskKind) -> Any:
        """The result of the dependency of this kind; None when the task has none (a source without audio is not
        measured)."""
        found = self.all(kind)
        return found[0] if found else None
