"""The data that flows through onetake: frozen dataclasses that round-trip through JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

HDR_TRANSFERS = {"smpte2084": "PQ", "arib-std-b67": "HLG"}


@dataclass(frozen=True)
class VideoStreamInfo:
    index: int
    codec: str
    width: int                 # coded picture size
    height: int
    sar: str                   # "num:den"
    rotation: int              # degrees counter-clockwise the picture is turned for display
    frame_rate: str            # "num/den", the nominal rate
    variable_frame_rate: bool
    scan: str                  # "progressive" | "tff" | "bff"
    scan_basis: str            # "flag" | "sampled"
    pix_fmt: str
    color_primaries: str
    color_transfer: str
    color_matrix: str
    color_range: str
    start_time: float          # seconds on the container's clock: the first picture that decodes
    duration: float            # from that picture on
    frames: int                # frame count the container declares, 0 when unknown
    lead_skipped: float = 0.0  # seconds of pictures before start_time that cannot be decoded (a mid-GOP cut)
    vbi_lines: int = 0         # lines at the top of the coded picture that carry VBI data, not picture (D-10)
    retimed: bool = False      # its timestamps are unusable (hundreds of pictures a second): pictures are counted
    hdr_metadata: str = ""     # HDR metadata the pictures carry: "HDR10", "HDR10+", "Dolby Vision", comma-separated
    checked_pictures: int = 0  # pictures decoded to look for damage (at the start, and the middle of long files)
    damaged_pictures: int = 0  # of those, the ones the decoder had to conceal errors in
    damage: str = ""           # the decoder's first complaint about them

    @property
    def rate(self) -> Fraction:
        return Fraction(self.frame_rate)

    @property
    def picture_height(self) -> int:
        """Coded lines that are picture (without the VBI lines of a D-10 frame)."""
        return self.height - self.vbi_lines

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height of the picture after rotation, before SAR is applied."""
        if self.rotation % 180:
            return self.picture_height, self.width
        return self.width, self.picture_height

    @property
    def display_aspect(self) -> Fraction:
        num, den = (int(x) for x in self.sar.split(":"))
        sar = Fraction(num, den) if num and den else Fraction(1)
        w, h = self.display_size
        if self.rotation % 180:
            sar = 1 / sar
        return Fraction(w, h) * sar

    @property
    def interlaced(self) -> bool:
        return self.scan != "progressive"

    @property
    def hdr(self) -> str:
        """"PQ" or "HLG" for high-dynamic-range pictures (by their transfer function), "" for SDR."""
        return HDR_TRANSFERS.get(self.color_transfer, "")


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str
    channels: int
    layout: str
    sample_rate: int
    start_time: float
    duration: float
    language: str
    default: bool


@dataclass(frozen=True)
class ImageInfo:
    """A still photo, as Pillow (with pillow-heif for HEIF) decodes it."""

    format: str                # "jpeg" | "png" | "webp" | "heif"
    width: int                 # the decoded picture, before ``orientation`` is applied
    height: int
    orientation: int           # EXIF orientation (1-8) the renditions apply to the decoded picture; always 1 for
                               # HEIF, whose decoder applies the container's irot/imir itself
    exif_orientation: int      # the EXIF tag as stored, 0 when absent (for HEIF a record only: irot/imir rule)
    mode: str                  # Pillow's mode of the decoded picture: "RGB", "RGBA", "L", "CMYK", "I;16" ...
    icc: str                   # the embedded colour profile's description, "" when none (sRGB is assumed)
    frames: int                # pictures in the file (an animated WebP or a HEIF burst): the first is used
    identifying: tuple[str, ...] = ()  # identifying metadata it carries (GPS, serial numbers ...), by name
    artist: str = ""           # EXIF Artist, else XMP dc:creator
    copyright: str = ""        # EXIF Copyright, else XMP dc:rights
    description: str = ""      # EXIF ImageDescription, else XMP dc:description

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height once upright."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageInfo:
        return cls(**{**data, "identifying": tuple(data.get("identifying", ()))})


@dataclass(frozen=True)
class CaptionsInfo:
    """The captions that come with a source: a sidecar file, or a text subtitle stream of the source itself."""

    path: str                  # the sidecar, or the source itself
    stream: int                # the subtitle stream's index in the source; -1 for a sidecar
    format: str                # srt | vtt | ass | ssa, or the stream's codec
    language: str              # from the sidecar's name (clip.zh.srt) or the stream's tag; "" when unknown
    sha256: str                # of the sidecar (a stream is covered by the source's own hash)
    cues: int                  # how many cues it holds (0: not counted, a stream is read when it is used)
    first: float = 0.0         # where its first cue starts and its last one ends, on its own clock (a sidecar)
    last: float = 0.0


@dataclass(frozen=True)
class SourceInfo:
    path: str                  # absolute path
    size: int
    sha256: str
    modified: str              # ISO date of the file's modification time
    format: str                # demuxer, as ffmpeg's -f takes it
    format_long: str
    duration: float
    start_time: float
    timecode: str              # "" when the source has none
    video: tuple[VideoStreamInfo, ...] = ()
    audio: tuple[AudioStreamInfo, ...] = ()
    url: str = ""              # where it came from when not a local file (s3://...); path is then the local copy
    image: ImageInfo | None = None  # a still photo (then no video or audio streams)
    captions: CaptionsInfo | None = None
    cover: str = ""            # a cover picture beside an audio-only source (NAME.jpg, NAME.png), for audiograms
    cover_sha256: str = ""

    @property
    def name(self) -> str:
        return (self.url or self.path).rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.image is None:  # absent, not null, for audio and video: their plans read as they always did
            del data["image"]
        if self.captions is None:
            del data["captions"]
        if not self.cover:
            del data["cover"], data["cover_sha256"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceInfo:
        data = dict(data)
        data["video"] = tuple(VideoStreamInfo(**v) for v in data.get("video", ()))
        data["audio"] = tuple(AudioStreamInfo(**a) for a in data.get("audio", ()))
        if data.get("image") is not None:
            data["image"] = ImageInfo.from_dict(data["image"])
        if data.get("captions"):
            data["captions"] = CaptionsInfo(**data["captions"])
        return cls(**data)


@dataclass(frozen=True)
class Task:
    """One unit of work for a worker. ``params`` is plain JSON; ``deps`` name other tasks' ids."""

    id: str
    kind: str                  # fetch | measure | analyze | encode | package | verify | report | deliver
    params: dict[str, Any]
    deps: tuple[str, ...] = ()
    heavy: bool = False        # holds an encode slot while it runs

    def __post_init__(self) -> None:
        # params are kept exactly as JSON gives them back, so a plan survives a round trip unchanged
        object.__setattr__(self, "params", json.loads(json.dumps(self.params)))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "deps": list(self.deps), "heavy": self.heavy,
                "params": self.params}


@dataclass(frozen=True)
class JobPlan:
    """Everything `onetake run` will do for one source."""

    asset_id: str
    source: SourceInfo
    channels: tuple[str, ...]
    out_dir: str
    work_dir: str
    tasks: tuple[Task, ...]
    notes: tuple[str, ...] = field(default=())

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def to_dict(self) -> dict[str, Any]:
        return {"asset_id": self.asset_id, "source": json.loads(json.dumps(self.source.to_dict())),
                "channels": list(self.channels), "out_dir": self.out_dir, "work_dir": self.work_dir,
                "notes": list(self.notes), "tasks": [t.to_dict() for t in self.tasks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobPlan:
        return cls(asset_id=data["asset_id"], source=SourceInfo.from_dict(data["source"]),
                   channels=tuple(data["channels"]), out_dir=data["out_dir"], work_dir=data["work_dir"],
                   notes=tuple(data["notes"]),
                   tasks=tuple(Task(t["id"], t["kind"], t["params"], tuple(t["deps"]), t["heavy"])
                               for t in data["tasks"]))
