"""Is this media? A look at a file's first bytes, so that an upload of something else is refused while it is
still arriving, not after a reporter has sent a gigabyte of it."""

from __future__ import annotations

SNIFF_BYTES = 64 * 1024  # enough for every signature below, MPEG-TS's sync bytes five packets in included

# ISO base media (MP4, MOV, 3GP, HEIF): a box of type ftyp, moov, mdat, free, skip or wide first
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")


def _mpeg_ts(head: bytes, packet: int, offset: int) -> bool:
    count = min(5, (len(head) - offset) // packet)
    return count >= 2 and all(head[offset + i * packet] == 0x47 for i in range(count))


def _mpeg_audio(head: bytes) -> bool:
    """An MPEG audio frame header (sync, a layer, a bitrate and sample rate that exist), or an ADTS one."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    if head[1] & 0xF6 == 0xF0:  # ADTS: layer 00, its sampling index below 13
        return (head[2] >> 2) & 0x0F < 13
    # Layer III or II (Layer I is all but unused, and its bits are a UTF-16 text's FF FE), a bitrate and a rate
    layer, bitrate, rate = (head[1] >> 1) & 0x03, head[2] >> 4, (head[2] >> 2) & 0x03
    return layer in (1, 2) and bitrate not in (0, 15) and rate != 3


def media_kind(head: bytes) -> str | None:
    """The kind of media these first bytes start, or None when they start none onetake takes."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return "ISO media (MP4/MOV)"
    if head.startswith(b"\x06\x0e\x2b\x34"):
        return "MXF"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI ", b"WEBP"):
        return "RIFF " + head[8:12].decode().strip()
    if head.startswith((b"RF64", b"BW64")):
        return "RF64/BW64 WAVE"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "MPEG program stream"
    if _mpeg_ts(head, 188, 0) or _mpeg_ts(head, 192, 4) or _mpeg_ts(head, 204, 0):
        return "MPEG transport stream"
    if head.startswith((b"ID3", b"fLaC", b"OggS", b"FORM", b"#!AMR", b".snd")):
        return "audio"
    if _mpeg_audio(head):
        return "MPEG audio/ADTS"
    if head.startswith(b"FLV"):
        return "FLV"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "ASF/WMV"
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image"
    return None
