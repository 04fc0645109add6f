"""Names that planning, probing and verification share about media, with no media library behind them (so that
planning imports neither PyAV nor numpy)."""

from __future__ import annotations

import os

# Only plain local files may be opened: a crafted file cannot make ffmpeg reach the network or other files.
PROTOCOL_WHITELIST = "file"
# Demuxers that read other files or the network on a source's behalf; never accepted as sources.
REFERENCING_FORMATS = {"hls", "applehttp", "dash", "concat", "imf", "sdp", "rtsp", "rtp", "tee", "webm_dash_manifest"}
# FFmpeg's enum values, as PyAV reports them, by the names ffmpeg's options take.
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 12: "smpte432"}
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 8: "linear", 13: "iec61966-2-1",
             14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}
MATRICES = {0: "gbr", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
RANGES = {1: "tv", 2: "pc"}

PHOTO_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "heif": "HEIF"}  # a photo source's kind, as named
# the caption and rights fields a photo's renditions may keep: EXIF name -> (ImageInfo field, EXIF tag, XMP dc: twin)
PHOTO_CAPTION_FIELDS = {"Artist": ("artist", 0x013B, "creator"), "Copyright": ("copyright", 0x8298, "rights"),
                        "ImageDescription": ("description", 0x010E, "description")}


def file_url(path: str) -> str:
    """The ``file:`` URL for a local path, so that '-i.mp4' or 'concat:a|b' stay plain file names."""
    return "file:" + os.path.abspath(path)


def file_stem(name: str) -> str:
    """A file name without its extension; a name that is only an extension ('.mov') or has none is its own stem."""
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
