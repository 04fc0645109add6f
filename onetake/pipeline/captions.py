"""Captions: a sidecar beside the source (``NAME.srt``, ``NAME.vtt``, ``NAME.ass``, optionally with a language,
``NAME.zh.srt``) or a text subtitle stream inside it, read into cues on the sidecar's own clock.

SRT and WebVTT are read strictly here, so that a file which does not parse is one line naming the file, the line
and the fix, before anything is encoded; ASS and SSA are read by pysubs2 (their text is kept, their styling is
replaced by the channel's).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError
from .media import file_stem

SIDECAR_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
# subtitle codecs whose text ffmpeg converts to SRT; bitmap ones (DVB, PGS) are not read
TEXT_SUBTITLE_CODECS = ("mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text")
# a BCP 47 tag as a file name carries it (clip.zh.srt, clip.zh-Hans.srt): a two-letter code, or a three-letter one
# that is not a media file's extension (clip.mov.srt is the captions of clip.mov)
LANGUAGE = re.compile(r"(?!(?:mov|mkv|mxf|avi|wav|flv|mts|m2t|vob|ogg|ogv|aac|mp3|m4a|m4v|dv|ts|wmv|mpg|3gp|amr|aif)"
                      r"\b)[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"\s*{_TIME}\s*-->\s*{_TIME}(\s+.*)?\s*")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
MAX_CAPTION_BYTES = 20_000_000  # a day of dense captions is a few MB
CAPTIONS_VTT = "captions.vtt"  # the captions task's WebVTT, beside its ASS files
STREAM_CAPTIONS = "stream.srt"  # a subtitle stream of the source, as ffmpeg writes it out
CAPTION_FONTS = "fonts"         # the work dir's folder of the fonts burned-in captions name
# the names players show for the subtitle track (HLS NAME), by language; others are shown by their code
LANGUAGE_NAMES = {"zh": "中文", "yue": "粤语", "en": "English", "ar": "العربية", "bo": "བོད་ཡིག", "ug": "ئۇيغۇرچە",
                  "mn": "Монгол", "ja": "日本語", "ko": "한국어", "fr": "Français", "es": "Español", "ru": "Русский"}


@dataclass(frozen=True)
class Cue:
    start: float   # seconds
    end: float
    text: str      # plain text, lines joined by "\n"


def find_sidecar(source: str | Path) -> Path | None:
    """The caption sidecar of ``source``: STEM.srt (or .vtt, .ass, .ssa), NAME.srt, or STEM.LANG.srt."""
    source = Path(source)
    stem = file_stem(source.name)
    for suffix in SIDECAR_SUFFIXES:
        for candidate in (source.with_name(stem + suffix), source.with_name(source.name + suffix)):
            if candidate.is_file():
                return candidate
    for suffix in SIDECAR_SUFFIXES:
        tagged = sorted(p for p in source.parent.glob(f"{glob_escape(stem)}.*{suffix}")
                        if LANGUAGE.fullmatch(p.name[len(stem) + 1:-len(suffix)]))
        if tagged:
            return tagged[0]
    return None


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def sidecar_language(path: Path, stem: str) -> str:
    """The language a sidecar's name gives (``clip.zh-Hans.srt`` -> ``zh-Hans``), or ""."""
    middle = path.name[len(stem) + 1:-len(path.suffix)] if path.name.startswith(stem + ".") else ""
    return middle if LANGUAGE.fullmatch(middle) else ""


# a stream's language tag is ISO 639-2 (chi, zho, eng ...); HLS and WebVTT want BCP 47, the two-letter code
ISO_639_2 = {"chi": "zh", "zho": "zh", "eng": "en", "ara": "ar", "tib": "bo", "bod": "bo", "uig": "ug",
             "mon": "mn", "jpn": "ja", "kor": "ko", "fre": "fr", "fra": "fr", "spa": "es", "rus": "ru",
             "ger": "de", "deu": "de", "por": "pt", "kaz": "kk"}


def stream_language(tag: str) -> str:
    """A stream's language tag as BCP 47; "" for none or undetermined."""
    tag = ISO_639_2.get(tag.strip().lower(), tag.strip())
    return tag if tag != "und" and LANGUAGE.fullmatch(tag) else ""  # a tag is data from the file: nothing else


def vtt_time(seconds: float) -> str:
    """A WebVTT timestamp, HH:MM:SS.mmm."""
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def plain(text: str) -> str:
    """Cue text without markup (SRT/WebVTT tags, ASS override blocks), its non-empty lines kept (a blank line would
    end a WebVTT cue)."""
    lines = _TAG.sub("", text.replace("\\N", "\n").replace("\\n", "\n")).splitlines()
    return "\n".join(line.strip() for line in lines if line.strip())


def parse_timed_text(text: str, where: str, webvtt: bool) -> list[Cue]:
    """The cues of an SRT or WebVTT document; SourceError at the first line that is not what it must be."""
    lines = text.lstrip("\ufeff").splitlines()
    fix = "fix or remove that cue and send the file again"
    if webvtt and not (lines and lines[0].startswith("WEBVTT")):
        raise SourceError(where, "line 1: a WebVTT file starts with 'WEBVTT'", "add that header line")
    cues: list[Cue] = []
    i = 0
    if webvtt:  # the header runs to the first blank line (X-TIMESTAMP-MAP and the like)
        while i < len(lines) and lines[i].strip():
            i += 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        if webvtt and re.match(r"(NOTE|STYLE|REGION)\b", lines[i]):
            while i < len(lines) and lines[i].strip():
                i += 1
            continue
        if "-->" not in lines[i]:  # an SRT counter or a WebVTT cue id comes first
            i += 1
        if i >= len(lines) or "-->" not in lines[i]:
            at = min(i, len(lines) - 1) if lines[min(i, len(lines) - 1)].strip() else block_start
            raise SourceError(where, f"line {at + 1}: expected a timing line such as "
                                     f"'00:00:01,000 --> 00:00:03,500', found {lines[at][:60]!r}", fix)
        m = _TIMING.fullmatch(lines[i])
        if not m:
            raise SourceError(where, f"line {i + 1}: cannot read the timing {lines[i].strip()[:60]!r}",
                              "write it as HH:MM:SS,mmm --> HH:MM:SS,mmm")
        start, end = _seconds(*m.group(1, 2, 3, 4)), _seconds(*m.group(5, 6, 7, 8))
        if end <= start:
            raise SourceError(where, f"line {i + 1}: the cue ends ({end:.3f} s) before it starts ({start:.3f} s)",
                              "give it an end time after its start")
        i += 1
        body = []
        while i < len(lines) and lines[i].strip():
            body.append(lines[i])
            i += 1
        words = plain("\n".join(body))
        if webvtt:  # WebVTT escapes &, < and > as HTML does
            words = html.unescape(words)
        if words:
            cues.append(Cue(start, end, words))
    if not cues:
        raise SourceError(where, "holds no cues", "check that it is the right file, or remove it")
    return cues


def parse_ass(text: str, where: str) -> list[Cue]:
    import pysubs2

    try:
        subs = pysubs2.SSAFile.from_string(text, format_="ass")
    except Exception as exc:  # pysubs2 raises several kinds on a broken file
        raise SourceError(where, f"is not a readable ASS/SSA file ({exc})", "export it again, or send SRT") from None
    cues = [Cue(e.start / 1000, e.end / 1000, plain(e.text)) for e in subs
            if not e.is_comment and e.end > e.start and plain(e.text)]
    if not cues:
        raise SourceError(where, "holds no dialogue cues", "check that it is the right file, or remove it")
    return cues


def read_cues(path: str | Path, format: str | None = None) -> list[Cue]:
    """The cues of a caption file (its format from its suffix unless given)."""
    path = Path(path)
    where = str(path)
    try:
        if path.stat().st_size > MAX_CAPTION_BYTES:
            raise SourceError(where, f"is {path.stat().st_size / 1e6:.0f} MB, too large for a caption file",
                              "check that it is a caption file, or remove it")
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(where, f"cannot be read ({exc.strerror})", "check the caption file's permissions") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")  # Chinese subtitle files from older tools
        except UnicodeDecodeError:
            raise SourceError(where, "is neither UTF-8 nor GB18030 text", "save it as UTF-8") from None
    kind = (format or path.suffix.lstrip(".")).lower()
    if kind in ("ass", "ssa"):
        return parse_ass(text, where)
    return parse_timed_text(text, where, webvtt=kind == "vtt")
