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
    MEASURE = "measure"    # the programme's loudness, and one loudness target's settled gain and limiter
    ANALYZE = "analyze"    # one decode through the analysis kernels (cached per source), or its stretches joined
    ANALYZE_PART = "analyze-part"  # a long programme's sound, or one stretch of its pictures, through the kernels
    ENCODE = "encode"      # one ffmpeg making one or more renditions
    CHUNK = "chunk"        # one ffmpeg making the pictures of one stretch of a long programme, for several renditions
    JOIN = "join"          # a chunked programme's pictures laid end to end with its whole sound, then the sync gate
    PHOTO = "photo"        # one decode of a photo making its renditions (Pillow)
    PACKAGE = "package"    # HLS segments and master playlist, or a sprite's WebVTT
    VERIFY = "verify"      # one output against its profile
    REPORT = "report"      # the analysis as an HTML page
    DELIVER = "deliver"    # QC, then a channel's files and manifest into its destination
    CAPTIONS = "captions"  # the source's captions on the programme's clock: WebVTT, and ASS for each burn-in


def task_id(asset_id: str, kind: TaskKind, name: str = "") -> str:
    return f"{asset_id}/{kind.value}/{name}" if name else f"{asset_id}/{kind.value}"


def kind_of(identifier: str) -> TaskKind:
    """The kind of the task with this id."""
    return TaskKind(identifier.split("/")[1])


class Limits(TypedDict):
    stall_timeout_s: float
    timeout_s: float


class KeptTrial(TypedDict):
    file: str                       # the trial's output, in each round's {scratch} folder
    prefix: str                     # kept as PREFIX-<hash of the argv that made it, its output aside>.EXT


class MeasureParams(TypedDict):
    argv: list[str]                 # the programme's meter
    programme_cache: str            # its result, shared by the source's measure tasks
    trial: list[str]                # its targets' branches, with {gain_N}, {limit_N}, {release_N}, {scratch}
    targets: list[dict[str, Any]]   # LoudnessTarget.to_dict(), in the trial's placeholder order
    indices: list[int]              # each target's N in the encodes' {gain_N}, {limit_N}, {release_N}
    source: str
    limits: Limits
    cache: str
    rounds: NotRequired[int]        # trial rounds at most (a first version's: a few); the worker's own limit otherwise
    keep: NotRequired[KeptTrial]    # the trial is the target's sound encode: its chosen round's file is kept


class AnalyzeParams(TypedDict):
    source: str
    cache: str
    limits: Limits
    origin: NotRequired[float]      # analysed in parts (its deps): 0 of the analysis's times, on the source's clock


class AnalyzePartParams(TypedDict):
    source: str
    part: Literal["pictures", "sound"]
    index: int                      # the stretch's number (pictures)
    start: float | None             # seconds on the source's clock where the stretch starts (its first frame's
    end: float | None               # time, less half a frame; None: the first) and where the next one does
                                    # (None: the last)
    duration: float                 # programme seconds it covers
    origin: float
    file: str                       # the part's features (an .npz) or the sound's analysis (JSON)
    analysis: str                   # the whole analysis: once it is made, a part has nothing to do
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


class ChunkParams(TypedDict):
    argv: list[str]       # video only: one output per rendition, the chunk's pictures from its first keyframe
    source: str
    index: int            # in programme order
    start: float          # where it starts on the programme's clock (seconds)
    duration: float       # its length, for progress and the time limit
    limits: Limits
    partial: str
    final: str            # a folder: KEY.mp4 (H.264) or KEY.m2v (MPEG-2 elementary stream) per rendition
    joined: list[str]     # what the join makes of the chunks: when all of it is there, the chunk is not needed
    follow: NotRequired[FollowParams]


class JoinedRendition(TypedDict):
    key: str
    chunks: list[str]     # its chunk files, in programme order
    method: Literal["concat", "bytes"]  # MP4 chunks through ffmpeg's concat demuxer; elementary streams byte for byte
    joined: str           # where the worker writes the list of chunks (the concat demuxer's, or concatf's)
    argv: list[str]       # reads ``joined`` (and the whole sound) and writes the rendition, stream-copied
    sound: str            # the whole programme's sound for it, made once; "" for a rendition without sound
    frames: int           # the pictures the whole rendition holds
    rate: str             # "num/den"
    gop: int              # frames between keyframes when they are fixed (HLS segments start on them); 0 otherwise


class JoinedStill(TypedDict):
    """A still the chunks' decode made: an image (the one chunk it lies in made it) or a sprite (each chunk made
    its thumbnails, tiled into sheets by ``argv``)."""

    key: str
    parts: list[str]      # the chunks' files, in programme order
    file: str             # the image's path, or the sheets' pattern
    list: str             # the concat list of a sprite's thumbnails
    argv: list[str]       # a sprite's tiling; empty for an image


class JoinReference(TypedDict):
    """The pictures either side of a join as one decode straight through it makes them (the same filters, a
    different seek), as raw grey thumbnails: what the sync gate compares the joined pictures with."""

    first: int            # the frame index of its first picture (a few before the join)
    argv: list[str]
    files: dict[str, str]  # rendition key -> its reference pictures


class JoinParams(TypedDict):
    source: str
    starts: list[float]   # each chunk's start on the programme's clock (seconds)
    references: list[JoinReference]  # one per chunk boundary, in programme order, shared by the series' joins
    scratch: str          # this join's working folder, removed when it is done
    outputs: list[EncodeOutput]
    renditions: list[JoinedRendition]
    stills: list[JoinedStill]
    limits: Limits
    series: str           # the chunks' folder (and the references'), removed once all of the series is joined
    series_outputs: list[str]  # the final folders of every rendition and still the series' chunks make


class CaptionsBurn(TypedDict):
    """One raster the captions are burned into, and where its ASS file goes."""

    name: str             # the rendition's key; the file is NAME.ass
    width: int
    height: int
    font_size: int        # pixels
    margin_left: int      # the safe area, in pixels
    margin_right: int
    margin_bottom: int
    margin_top: int
    cues: bool            # the captions are burned in (else only the title)
    title: str            # an audiogram's programme title, burned in at the top of the safe area; "" for none
    title_size: int       # pixels


class CaptionsParams(TypedDict):
    source: str           # the sidecar, or the source holding the subtitle stream
    stream: int           # -1 for a sidecar
    format: str
    shift: float          # seconds taken off every cue time to put it on the programme's clock
    duration: float       # the programme's: cues after it are dropped, one running past it is cut
    partial: str
    final: str            # a folder: captions.vtt, NAME.ass per burn, fonts/
    burn: list[CaptionsBurn]
    fonts: str            # where the fonts the ASS files name are put
    extract: list[str]    # for a stream: the ffmpeg argv that writes it out as SRT; [] for a sidecar
    limits: Limits


class HlsSubtitles(TypedDict):
    vtt: str
    language: str
    name: str


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
    subtitles: NotRequired[HlsSubtitles]


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


class PhotoFile(TypedDict):
    name: str             # inside the rendition's folder
    format: str           # "jpeg" | "webp" | "avif" | "png", or "original"
    width: int            # 0 for the original
    height: int


class PhotoOutput(TypedDict):
    key: str
    profile: dict[str, Any]   # Profile.to_dict()
    partial: str
    final: str
    files: list[PhotoFile]


class PhotoParams(TypedDict):
    source: str
    format: str                # the source's: "jpeg" | "png" | "webp" | "heif"
    orientation: int           # EXIF orientation to apply to the decoded picture
    metadata: dict[str, str]   # the caption and rights fields the renditions may keep (EXIF name -> value)
    outputs: list[PhotoOutput]
    limits: Limits


class ImageFile(TypedDict):
    path: str             # inside the delivery
    type: str             # MIME type
    width: int
    height: int


class ImageSource(TypedDict):
    type: str
    srcset: str           # "PATH 480w, PATH 960w", as <source srcset> and <img srcset> take it


class ImageSet(TypedDict):
    """A photo rendition in a channel's manifest: its files, and what an HTML <picture> element needs."""

    profile: str
    fit: str
    files: list[ImageFile]
    sources: list[ImageSource]   # one per format, in the profile's order
    fallback: ImageFile | None   # the largest file of the last format: <img src>


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
    images: NotRequired[list[ImageSet]]    # a photo's renditions, for the manifest
    version: NotRequired[int]              # an urgent job's: 1 for its first version, 2 for the full one


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
