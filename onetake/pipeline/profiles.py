"""Rendition profiles and channel sets: TOML files, validated when they are loaded.

A profile is one file ``NAME.toml``; ``channels.toml`` maps each channel to its profiles. The shipped
files live in the ``onetake.profiles`` package; a user folder adds profiles or overrides them by name.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .artwork import LOGO_KINDS, read_artwork
from .errors import ProfileError
from .hashes import short_hash
from .media import PHOTO_CAPTION_FIELDS
from .schema import build, option, read_toml

KINDS = ("av", "audio", "image", "sprite", "hls", "photo")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
CODEC_OPTION = r"[A-Za-z0-9.]*"  # profile/level values go to ffmpeg as they are: no spaces, no dashes


@dataclass(frozen=True)
class ContainerSpec:
    format: str = option("mp4", choices=("mp4", "mov", "mxf", "mxf_d10", "wav", "mp3", "ipod", "mp2", "image2"))
    extension: str = option("mp4", pattern=r"[a-z0-9]{1,5}")
    faststart: bool = option(False, help="move the moov atom before mdat (progressive download)")
    start_timecode: str = option("", pattern=r"|\d\d:\d\d:\d\d[:;]\d\d", help="HH:MM:SS:FF, or '' for none")
    source_timecode: bool = option(False, help="start at the source's timecode when it has one")
    bext: bool = option(False, help="write a Broadcast WAV bext chunk")


@dataclass(frozen=True)
class VideoSpec:
    codec: str = option("libx264", choices=("libx264", "mpeg2video"))
    profile: str = option("high", pattern=CODEC_OPTION, help="encoder profile as ffmpeg takes it")
    level: str = option("", pattern=CODEC_OPTION)
    width: int = option(1920, min=16, max=7680)
    height: int = option(1080, min=16, max=4320)
    pix_fmt: str = option("yuv420p", choices=("yuv420p", "yuv422p", "yuv422p10le"))
    scan: str = option("progressive", choices=("progressive", "tff"))
    frame_rate: str = option("source", pattern=r"source|\d{1,3}(/1001)?",
                             help="'source' keeps the source's rate (halved above max_frame_rate)")
    max_frame_rate: float = option(30.0, min=1, max=120)
    framing: str = option("pad", choices=("pad", "center", "fit", "follow"),
                          help="pad: pillar/letterbox; center: crop to fill; fit: over a blurred copy; "
                               "follow: crop to fill, the window following the subject the analysis found")
    gop_seconds: float = option(0.0, min=0, max=20, help="keyframe interval in seconds (or use gop_frames)")
    gop_frames: int = option(0, min=0, max=600)
    bframes: int = option(2, min=0, max=16)
    closed_gop: bool = option(True)
    scene_cut: bool = option(False, help="extra keyframes at scene cuts; off keeps ladders aligned")
    rate_control: str = option("vbr", choices=("cbr", "vbr"))
    bitrate_kbps: int = option(3000, min=100, max=400_000)
    maxrate_kbps: int = option(0, min=0, max=400_000, help="0: same as bitrate_kbps")
    bufsize_bits: int = option(0, min=0, max=1_000_000_000, help="0: two seconds of maxrate")
    preset: str = option("medium", choices=X264_PRESETS)
    x264_params: str = option("", pattern=r"[A-Za-z0-9=:._-]*")
    burn_timecode: bool = option(False, help="burn the source timecode in, bottom centre")
    display_aspect: str = option("", pattern=r"|\d{1,2}:\d{1,2}",
                                 help="the frame's shape on screen when pixels are not square, e.g. 16:9 for "
                                      "anamorphic SD; '' for square pixels")
    # where burned-in graphics (logo, captions) may go: EBU R 95's graphics-safe area by default; a 9:16 short
    # keeps clear of the platforms' own buttons and captions
    safe_top: float = option(0.05, min=0, max=0.4, help="graphics keep this fraction of the height from the top")
    safe_bottom: float = option(0.05, min=0, max=0.4, help="... and this fraction from the bottom")
    safe_left: float = option(0.05, min=0, max=0.4, help="... this fraction of the width from the left")
    safe_right: float = option(0.05, min=0, max=0.4, help="... and this fraction from the right")


@dataclass(frozen=True)
class AudioSpec:
    codec: str = option("aac", choices=("aac", "libmp3lame", "mp2", "pcm_s16le", "pcm_s24le"))
    sample_rate: int = option(48000, choices=(44100, 48000))
    channels: int = option(2, min=1, max=8)
    tracks: str = option("interleaved", choices=("interleaved", "mono"),
                         help="mono: one mono track per channel, as playout servers want")
    bitrate_kbps: int = option(0, min=0, max=1024, help="0 for PCM")
    silence_if_missing: bool = option(False, help="give a source without audio silent tracks")


@dataclass(frozen=True)
class LoudnessSpec:
    integrated: float = option(-24.0, min=-70, max=-5, help="target integrated loudness, LUFS/LKFS")
    tolerance: float = option(1.0, min=0.1, max=5, help="allowed distance from the target, LU")
    true_peak: float = option(-2.0, min=-9, max=0, help="maximum true peak, dBTP")
    headroom: float = option(0.0, min=0, max=12,
                             help="dB under true_peak where the limiter starts; 0: 0.5 for PCM, 1.0 for lossy codecs "
                                  "(the measure step lowers it where an encoder's own peaks need more)")


CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


@dataclass(frozen=True)
class LogoSpec:
    """The station logo (台标), as a channel's [CHANNEL.logo] table or a profile's [logo] section (which wins)."""

    enabled: bool = option(True, help="false: no logo here, whatever the farm's `logo` says")
    file: str = option("", help="a PNG (or SVG) with transparency, relative to the file naming it; '' for the "
                                "farm's station logo (`logo` in [farm], --logo); no file at all: no logo")
    corner: str = option("top-right", choices=CORNERS, help="the corner of the safe area it sits in")
    height: float = option(0.08, min=0.02, max=0.5, help="its height, as a fraction of the picture's height")
    margin: float = option(0.0, min=0, max=0.25, help="further inset from the safe area's edges, as a fraction of "
                                                       "the picture's height")
    opacity: float = option(0.85, min=0.05, max=1.0)
    sha256: str = option("", pattern=r"|[0-9a-f]{64}", help="set by onetake from the file: part of the output keys")


PHOTO_FORMATS = ("jpeg", "webp", "avif", "png")
KEEPABLE_METADATA = tuple(PHOTO_CAPTION_FIELDS)


@dataclass(frozen=True)
class PhotoSpec:
    """A photo's renditions for one use (a still source: JPEG, PNG, HEIF, WebP); kind = "photo"."""

    fit: str = option("within", choices=("within", "cover", "original"),
                      help="within: the whole picture at each of `widths` (never enlarged); cover: width x height "
                           "filled, cropped around the faces or detail the analysis kernels find; original: the "
                           "source file, untouched")
    widths: tuple[int, ...] = option((1280,), min=16, max=16384, help="fit = within: the widths made, in pixels")
    width: int = option(1080, min=16, max=16384, help="fit = cover: the picture's width")
    height: int = option(1920, min=16, max=16384, help="fit = cover: the picture's height")
    formats: tuple[str, ...] = option(("jpeg",), choices=PHOTO_FORMATS,
                                      help="one file per format and size, in <picture> order: the last is the "
                                           "fallback; JPEG drops transparency (over white)")
    quality: int = option(85, min=1, max=100, help="JPEG and WebP quality")
    avif_quality: int = option(60, min=1, max=100)
    avif_speed: int = option(6, min=0, max=10, help="AVIF encoder effort: 0 slowest and smallest, 10 fastest")
    keep_metadata: tuple[str, ...] = option(KEEPABLE_METADATA, choices=KEEPABLE_METADATA,
                                            help="EXIF fields (and their XMP dc: twins) a rendition keeps; "
                                                 "everything else (GPS, serial numbers, maker notes, thumbnails) "
                                                 "is left out")


@dataclass(frozen=True)
class CaptionsSpec:
    """What a profile does with the source's captions (a sidecar NAME.srt/.vtt/.ass, or a text subtitle stream)."""

    burn: bool = option(False, help="burn them into the picture: bold white text with a black outline, bottom "
                                     "centre inside the safe area, lines broken to fit (CJK between characters)")
    size: float = option(0.03, min=0.01, max=0.12, help="burned text size (a CJK character's height) as a fraction "
                                                         "of the picture height")
    subtitles: bool = option(False, help="an HLS ladder: a WebVTT subtitle rendition in the master playlist, and "
                                         "the .vtt beside the progressive MP4")


@dataclass(frozen=True)
class AudiogramSpec:
    """How a picture profile is made from a source with no picture (a radio programme, a podcast): the cover (a
    sidecar NAME.jpg or NAME.png, else the farm's `cover`, else the background colour), the programme title in
    the top of the safe area, a waveform that moves with the sound, and any captions below it."""

    background: str = option("0x1b2a4a", pattern=r"0x[0-9a-fA-F]{6}", help="colour behind a missing cover")
    wave_colour: str = option("0xffffff", pattern=r"0x[0-9a-fA-F]{6}")
    wave_height: float = option(0.16, min=0.05, max=0.5, help="the waveform's height, fraction of the picture's")
    wave_at: float = option(0.45, min=0, max=0.9, help="the waveform's top edge, fraction of the picture height "
                                                      "(above the captions)")
    title_size: float = option(0.045, min=0.01, max=0.12, help="title text height, fraction of the picture height")


@dataclass(frozen=True)
class ImageSpec:
    at: float = option(0.25, min=0, max=1, help="where the still is taken, as a fraction of the duration")
    quality: int = option(2, min=1, max=31, help="JPEG qscale: 1 best, 31 worst")


@dataclass(frozen=True)
class SpriteSpec:
    interval_seconds: float = option(5.0, min=0.5, max=600)
    thumb_width: int = option(160, min=16, max=1920)
    thumb_height: int = option(90, min=16, max=1080)
    columns: int = option(10, min=1, max=50)
    rows: int = option(10, min=1, max=50)


@dataclass(frozen=True)
class HlsSpec:
    rungs: tuple[str, ...] = option(())
    segment_seconds: float = option(6.0, min=1, max=30)
    progressive_mp4: bool = option(True, help="also deliver the top rung as a progressive MP4")


@dataclass(frozen=True)
class CheckSpec:
    bitrate_tolerance: float = option(0.0, min=0, max=1, help="video bitrate within this fraction; 0 skips")
    max_segment_seconds: float = option(6.5, min=1, max=60)
    peak_to_bandwidth: float = option(1.1, min=1, max=3)
    max_duration_s: float = option(0.0, min=0, max=86400, help="platform limit; 0 for none")
    max_size_mb: float = option(0.0, min=0, max=1_000_000, help="platform limit; 0 for none")


@dataclass(frozen=True)
class QcSpec:
    """A channel's quality gate, judged on the source's analysis; 0 turns a rule off."""

    max_black_s: float = option(0.0, min=0, max=86400, help="longest black stretch allowed; 0: no rule")
    black_at_edges: bool = option(True, help="black touching the head or the tail is allowed at any length")
    max_freeze_s: float = option(0.0, min=0, max=86400, help="longest frozen picture allowed; 0: no rule")
    max_silence_s: float = option(0.0, min=0, max=86400, help="longest silence allowed; 0: no rule")
    silence_at_edges: bool = option(True, help="silence touching the head or the tail is allowed at any length")
    max_lra_lu: float = option(0.0, min=0, max=50, help="largest loudness range of the programme; 0: no rule")
    edge_s: float = option(0.5, min=0, max=60, help="a stretch starting or ending this close to the head or the "
                                                     "tail counts as at the edge")


SECTIONS: dict[str, type] = {
    "container": ContainerSpec, "video": VideoSpec, "audio": AudioSpec, "loudness": LoudnessSpec,
    "image": ImageSpec, "sprite": SpriteSpec, "hls": HlsSpec, "checks": CheckSpec, "photo": PhotoSpec,
    "logo": LogoSpec, "captions": CaptionsSpec, "audiogram": AudiogramSpec,
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "av": ("container", "video", "audio"),
    "audio": ("container", "audio", "loudness"),
    "image": ("container", "video", "image"),
    "sprite": ("sprite",),
    "hls": ("hls",),
    "photo": ("photo",),
}


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str
    description: str = ""
    container: ContainerSpec | None = None
    video: VideoSpec | None = None
    audio: AudioSpec | None = None
    loudness: LoudnessSpec | None = None
    image: ImageSpec | None = None
    sprite: SpriteSpec | None = None
    hls: HlsSpec | None = None
    checks: CheckSpec = CheckSpec()
    logo: LogoSpec | None = None
    captions: CaptionsSpec | None = None
    audiogram: AudiogramSpec | None = None  # present: this picture can be made from audio alone
    photo: PhotoSpec | None = None

    def encoding(self) -> dict[str, Any]:
        """What decides the bytes of the output: everything but the name and description."""
        data = dataclasses.asdict(self)
        data.pop("name")
        data.pop("description")
        if data["photo"] is None:  # the keys of every other kind stay as they were before photos
            del data["photo"]
        if data["logo"]:  # the logo's bytes (its SHA-256), not where they are
            data["logo"].pop("file")
        return data

    def content_key(self) -> str:
        """Same key for profiles that would produce the same file, whatever they are called."""
        return short_hash(json.dumps(self.encoding(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def parse_profile(data: dict[str, Any], name: str, where: str, folder: Path | None = None) -> Profile:
    """Build a Profile from a TOML document; ``where`` names the file in messages, ``folder`` is where a relative
    logo file is looked for."""
    top = {"name", "kind", "description", *SECTIONS}
    unknown = sorted(set(data) - top)
    if unknown:
        raise ProfileError(f"{where}: unknown key '{unknown[0]}'; known keys are {', '.join(sorted(top))}")
    if data.get("name", name) != name:
        raise ProfileError(f"{where}: 'name' = {data['name']!r} must match the file name {name!r}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ProfileError(f"{where}: 'kind' = {kind!r} is not allowed; choose one of {', '.join(KINDS)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{where}: 'description' must be a string")
    missing = [s for s in REQUIRED[kind] if s not in data]
    if missing:
        raise ProfileError(f"{where}: a profile of kind '{kind}' needs a [{missing[0]}] section")
    sections = {s: build(cls, data[s], f"{where} [{s}]", ProfileError) for s, cls in SECTIONS.items() if s in data}
    if "logo" in sections:
        sections["logo"] = resolve_logo(sections["logo"], folder, f"{where} [logo]")
    profile = Profile(name=name, kind=kind, description=description, **sections)
    _check_consistency(profile, where)
    return profile


def resolve_logo(spec: LogoSpec, folder: Path | None, where: str) -> LogoSpec:
    """``spec`` with its file made absolute and its SHA-256 filled in (ProfileError naming ``where`` if the file
    is missing or not a PNG or SVG)."""
    if not spec.file or spec.sha256:  # none, or already read (a plan's profile, checked again by verify)
        return spec
    path = Path(spec.file).expanduser()
    if not path.is_absolute() and folder is not None:
        path = folder / path
    art = read_artwork(path, LOGO_KINDS, f"{where} 'file'", ProfileError)
    return dataclasses.replace(spec, file=art.path, sha256=art.sha256)


def _check_consistency(p: Profile, where: str) -> None:
    v = p.video
    if v is not None and p.kind == "av":
        if (v.gop_seconds > 0) == (v.gop_frames > 0):
            raise ProfileError(f"{where} [video]: set exactly one of 'gop_seconds' and 'gop_frames'")
        if v.width % 2 or v.height % 2:
            raise ProfileError(f"{where} [video]: width and height must be even for {v.pix_fmt}")
    if v is not None and v.framing == "follow" and (p.kind != "av" or v.scan != "progressive"):
        raise ProfileError(f"{where} [video]: framing = \"follow\" is for progressive 'av' profiles; use "
                           f"\"center\" here")
    if p.audio is not None and p.audio.tracks == "interleaved" and p.audio.channels not in (1, 2, 4):
        raise ProfileError(f"{where} [audio]: interleaved audio has 1, 2 or 4 channels; use tracks = \"mono\" "
                           f"for {p.audio.channels} tracks")
    if p.audio is not None and p.audio.codec.startswith("pcm") and p.audio.bitrate_kbps:
        raise ProfileError(f"{where} [audio]: 'bitrate_kbps' must be 0 for PCM codec {p.audio.codec}")
    if p.logo is not None and p.kind not in ("av", "image", "hls"):
        raise ProfileError(f"{where} [logo]: a logo goes on pictures: 'av', 'image' and 'hls' profiles only")
    if p.logo is not None and p.logo.enabled and v is not None and v.burn_timecode:
        raise ProfileError(f"{where} [logo]: an edit proxy (burn_timecode = true) never carries the logo; set "
                           f"enabled = false")
    if v is not None and (v.safe_top + v.safe_bottom >= 0.8 or v.safe_left + v.safe_right >= 0.8):
        raise ProfileError(f"{where} [video]: the safe area leaves less than a fifth of the picture; lower the "
                           f"safe_* values")
    if p.kind == "photo":
        _check_photo(p, where)
    if p.captions is not None and p.captions.burn and p.kind != "av":
        raise ProfileError(f"{where} [captions]: burn = true is for 'av' profiles")
    if p.captions is not None and p.captions.subtitles and p.kind != "hls":
        raise ProfileError(f"{where} [captions]: subtitles = true is for 'hls' ladders; burn them in elsewhere")
    if p.kind == "hls" and p.hls is not None and not p.hls.rungs:
        raise ProfileError(f"{where} [hls]: 'rungs' must name at least one profile")


def _check_photo(p: Profile, where: str) -> None:
    assert p.photo is not None
    others = [s for s in SECTIONS if s not in ("photo", "checks") and getattr(p, s) is not None]
    if others:
        raise ProfileError(f"{where}: a 'photo' profile has only a [photo] section; remove [{others[0]}]")
    if p.photo.fit != "original" and not p.photo.formats:
        raise ProfileError(f"{where} [photo]: 'formats' must name at least one of {', '.join(PHOTO_FORMATS)}")
    if p.photo.fit == "within" and not p.photo.widths:
        raise ProfileError(f"{where} [photo]: 'widths' must give at least one width for fit = \"within\"")


def load_profile_file(path: Path) -> Profile:
    return parse_profile(read_toml(path, ProfileError, "profile file"), path.stem, str(path), path.parent)


@dataclass(frozen=True)
class Catalog:
    """Every known profile and channel set, after user overrides."""

    profiles: dict[str, Profile]
    channels: dict[str, tuple[str, ...]]
    origins: dict[str, str]
    qc: dict[str, QcSpec] = dataclasses.field(default_factory=dict)  # channels without rules are absent
    logos: dict[str, LogoSpec] = dataclasses.field(default_factory=dict)  # channels without a [logo] are absent

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise ProfileError(f"unknown profile '{name}'; `onetake profiles list` shows the known ones") from None

    def channel(self, name: str) -> tuple[Profile, ...]:
        if name not in self.channels:
            raise ProfileError(f"unknown channel '{name}'; known channels are {', '.join(self.channels)}")
        return tuple(self.profile(p) for p in self.channels[name])

    def logo_of(self, channel: str, profile: Profile) -> LogoSpec | None:
        """The logo placement ``profile`` gets in ``channel``: the profile's own, else the channel's (None: none)."""
        spec = profile.logo or self.logos.get(channel)
        return spec if spec is not None and spec.enabled else None


def _parse_channels(text: str, where: str, catalog_names: set[str], folder: Path | None
                    ) -> tuple[dict[str, tuple[str, ...]], dict[str, QcSpec], dict[str, LogoSpec]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: not valid TOML ({exc})") from exc
    channels: dict[str, tuple[str, ...]] = {}
    qc: dict[str, QcSpec] = {}
    logos: dict[str, LogoSpec] = {}
    for channel, table in data.items():
        if not isinstance(table, dict) or set(table) - {"profiles", "description", "qc", "logo"}:
            raise ProfileError(f"{where} [{channel}]: only 'profiles', 'description', a [{channel}.qc] and a "
                               f"[{channel}.logo] table are allowed")
        if "qc" in table:
            qc[channel] = build(QcSpec, table["qc"], f"{where} [{channel}.qc]", ProfileError)
        if "logo" in table:
            logos[channel] = resolve_logo(build(LogoSpec, table["logo"], f"{where} [{channel}.logo]", ProfileError),
                                          folder, f"{where} [{channel}.logo]")
        names = table.get("profiles")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ProfileError(f"{where} [{channel}]: 'profiles' must be a non-empty list of profile names")
        for n in names:
            if n not in catalog_names:
                raise ProfileError(f"{where} [{channel}]: unknown profile '{n}'")
        channels[channel] = tuple(names)
    return channels, qc, logos


def load_catalog(user_dir: Path | None = None) -> Catalog:
    """Load the shipped profiles, then the user folder's, which add to or override them by name."""
    texts: dict[str, tuple[str, str]] = {}
    folders: dict[str, Path | None] = {}  # where a relative logo file of each is found (shipped files name none)
    shipped = resources.files("onetake.profiles")
    for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            texts[entry.name[:-5]] = (entry.read_text(encoding="utf-8"), f"onetake/profiles/{entry.name}")
            folders[entry.name[:-5]] = None
    if user_dir is not None:
        if not user_dir.is_dir():
            raise ProfileError(f"{user_dir}: profiles folder does not exist")
        for path in sorted(user_dir.glob("*.toml")):
            try:
                texts[path.stem] = (path.read_text(encoding="utf-8"), str(path))
                folders[path.stem] = path.parent
            except (OSError, UnicodeDecodeError) as exc:
                raise ProfileError(f"{path}: cannot be read as a UTF-8 TOML file ({exc})") from exc
    channels_text = texts.pop("channels", None)
    profiles: dict[str, Profile] = {}
    for name, (text, where) in texts.items():
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{where}: not valid TOML ({exc})") from exc
        profiles[name] = parse_profile(data, name, where, folders[name])
    for p in profiles.values():
        if p.hls is not None:
            for rung in p.hls.rungs:
                if rung not in profiles or profiles[rung].kind != "av":
                    raise ProfileError(f"{texts[p.name][1]} [hls]: rung '{rung}' is not a known 'av' profile")
    if channels_text is None:
        raise ProfileError("channels.toml is missing from the profiles")
    channels, qc, logos = _parse_channels(channels_text[0], channels_text[1], set(profiles), folders["channels"])
    return Catalog(profiles=profiles, channels=channels, origins={n: w for n, (_, w) in texts.items()}, qc=qc,
                   logos=logos)
