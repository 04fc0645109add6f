"""The captions task: the source's captions (a sidecar, or a subtitle stream ffmpeg writes out as SRT) put on the
programme's clock and written as WebVTT, and as one ASS file per raster they are burned into, its lines broken to
fit inside the raster's safe area; the fonts those files name are put in the work dir once.

Burned-in style: bold Noto Sans CJK (Chinese, Latin, Cyrillic and more), Noto Sans Arabic for Arabic lines, white
with a black outline a twelfth of the text height and a soft shadow, centred at the bottom of the safe area.
"""

from __future__ import annotations

import functools
import os
import shutil
import unicodedata
import uuid
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..pipeline.captions import CAPTIONS_VTT, STREAM_CAPTIONS, Cue, parse_timed_text, read_cues, vtt_time
from ..pipeline.errors import SourceError
from ..pipeline.plan.params import CaptionsBurn, CaptionsParams
from .ffmpeg import run_ffmpeg
from .files import publish_dir

# (package, file inside it, name in the fonts folder, family name the ASS styles use: the name libass matches, as
# VSFilter does, is the legacy family, name ID 1); both fonts are under the SIL Open Font License 1.1
CJK_FONT = ("cvttf_NotoSansCJK_Bold", "NotoSansCJKtc-Bold.otf", "NotoSansCJKtc-Bold.otf", "Noto Sans CJK TC Bold")
ARABIC_FONT = ("fontpkg_noto_sans_arabic", "files/NotoSansArabic[wdth,wght].ttf", "NotoSansArabic.ttf",
               "Noto Sans Arabic")
FONTS = (CJK_FONT, ARABIC_FONT)
# lines may not start with closing punctuation, nor end with opening punctuation (kinsoku shori)
NO_LINE_START = set("，。、！？：；）」』》〉】〕”’…—,.!?:;)]}%")
NO_LINE_END = set("（「『《〈【〔“‘([{")
WIDE_EM, NARROW_EM, SPACE_EM = 1.0, 0.58, 0.28  # advance widths of the burned-in font, in ems, for line breaking


def install_fonts(folder: Path) -> None:
    """Copy each shipped font into ``folder`` where it is missing (copied, not linked: the caches are made
    read-only), whole or not at all, however many tasks do it at once."""
    folder.mkdir(parents=True, exist_ok=True)
    for package, inside, name, _ in FONTS:
        if (folder / name).is_file():
            continue
        partial = folder / f".{name}.partial-{uuid.uuid4().hex[:8]}"
        try:
            with resources.as_file(resources.files(package).joinpath(inside)) as font:
                shutil.copyfile(font, partial)
            os.replace(partial, folder / name)
        finally:
            partial.unlink(missing_ok=True)


def on_programme_clock(cues: list[Cue], shift: float, duration: float) -> list[Cue]:
    """Cues moved by ``shift``; those wholly outside the programme dropped, one that crosses an end cut there."""
    kept = []
    for c in sorted(cues, key=lambda c: (c.start, c.end)):
        start, end = max(0.0, c.start - shift), min(duration, c.end - shift)
        if end - start >= 0.001:
            kept.append(replace(c, start=round(start, 3), end=round(end, 3)))
    return kept


def _em(ch: str) -> float:
    if ch.isspace():
        return SPACE_EM
    return WIDE_EM if unicodedata.east_asian_width(ch) in "WF" else NARROW_EM


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _units(line: str) -> list[str]:
    """The pieces a line may break between: each wide character, each word of narrow ones; spaces stay with the
    piece before them."""
    units: list[str] = []
    for ch in line:
        if units and (ch.isspace() or not _wide(ch) and not units[-1][-1].isspace() and not _wide(units[-1][-1])):
            units[-1] += ch
        else:
            units.append(ch)
    return units


def _width(units: list[str]) -> float:
    return sum(_em(ch) for ch in "".join(units).rstrip())


def break_lines(text: str, max_em: float) -> list[str]:
    """``text`` broken into as few lines as fit ``max_em`` ems, of about equal width: between words, and between
    CJK characters where punctuation allows (a line does not start with a closing mark nor end with an opening
    one)."""
    lines = _greedy_lines(text, max_em)
    if len(lines) > 1:  # the same number of lines, evened out, instead of a full line and a stub
        even = _greedy_lines(text, min(max_em, 1.08 * sum(_width([line]) for line in lines) / len(lines)))
        if len(even) == len(lines):
            return even
    return lines


def _greedy_lines(text: str, max_em: float) -> list[str]:
    lines: list[str] = []
    for given in text.split("\n"):
        current: list[str] = []
        for unit in _units(given.strip()):
            if current and _width([*current, unit]) > max_em:
                carry = []
                if len(current) > 1 and (unit[0] in NO_LINE_START or current[-1].rstrip()[-1:] in NO_LINE_END):
                    carry = [current.pop()]
                lines.append("".join(current).rstrip())
                current = carry
            current.append(unit)
        if current:
            lines.append("".join(current).rstrip())
    return [line for line in lines if line]


def _ass_time(seconds: float) -> str:
    cs = round(seconds * 100)
    h, rest = divmod(cs, 360000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


@functools.cache
def _em_ratio(font: tuple[str, str, str, str]) -> float:
    """A font's line height over its em: libass sizes text by the line height, so a font with tall ascenders and
    deep descenders (Arabic) looks smaller at the same size."""
    from PIL import ImageFont

    with resources.as_file(resources.files(font[0]).joinpath(font[1])) as path:
        ascent, descent = ImageFont.truetype(str(path), 1000).getmetrics()
    return (ascent + descent) / 1000


def _ass_text(line: str) -> str:
    """A line as ASS dialogue text: braces and backslashes cannot start override codes; Arabic in its own font,
    scaled to look as large as the rest."""
    safe = line.replace("\\", "＼").replace("{", "｛").replace("}", "｝")
    if any("\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" or "\ufb50" <= ch <= "\ufeff" for ch in safe):
        scale = round(100 * _em_ratio(ARABIC_FONT) / _em_ratio(CJK_FONT))
        return f"{{\\fn{ARABIC_FONT[3]}\\fscx{scale}\\fscy{scale}}}{safe}"
    return safe


def ass_document(cues: list[Cue], burn: CaptionsBurn, duration: float) -> str:
    em = burn["font_size"]  # the glyphs' em, in pixels; libass takes a font size as the font's line height
    size = round(em * _em_ratio(CJK_FONT))
    outline, shadow = max(2, round(em / 12)), max(1, round(em / 30))
    max_em = (burn["width"] - burn["margin_left"] - burn["margin_right"]) / em
    head = [
        "[Script Info]", "; made by onetake", "ScriptType: v4.00+", f"PlayResX: {burn['width']}",
        f"PlayResY: {burn['height']}", "WrapStyle: 2", "ScaledBorderAndShadow: yes", "YCbCr Matrix: TV.709", "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
        "MarginR, MarginV, Encoding",
        f"Style: Caption,{CJK_FONT[3]},{size},&H00FFFFFF,&H000000FF,&H00000000,&H64000000,0,0,0,0,100,100,0,0,1,"
        f"{outline},{shadow},2,{burn['margin_left']},{burn['margin_right']},{burn['margin_bottom']},1", "",
        "[Events]", "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"]
    events = [f"Dialogue: 0,{_ass_time(c.start)},{_ass_time(c.end)},Caption,,0,0,0,,"
              + "\\N".join(_ass_text(line) for line in break_lines(c.text, max_em)) for c in cues if burn["cues"]]
    if burn["title"]:  # the whole programme long, at the top of the safe area, as large as the style allows
        scale = round(100 * burn["title_size"] / em)
        title = "\\N".join(_ass_text(line) for line in break_lines(burn["title"], max_em * 100 / scale))
        events.insert(0, f"Dialogue: 1,0:00:00.00,{_ass_time(duration)},Caption,,0,0,{burn['margin_top']},,"
                         f"{{\\an8\\fscx{scale}\\fscy{scale}}}{title}")
    return "\n".join(head + events) + "\n"


def vtt_document(cues: list[Cue]) -> str:
    lines = ["WEBVTT", ""]
    for i, c in enumerate(cues, 1):
        text = c.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        lines += [str(i), f"{vtt_time(c.start)} --> {vtt_time(c.end)}", text, ""]
    return "\n".join(lines)


def make_captions(params: CaptionsParams, on_progress: Any = None) -> dict[str, Any]:
    final = Path(params["final"])
    install_fonts(Path(params["fonts"]))
    if final.is_dir():
        return {"folder": str(final)}
    partial = Path(params["partial"])
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if not params["source"]:  # an audiogram's title alone
            cues = []
        elif params["extract"]:
            run_ffmpeg(params["extract"], params["limits"], what="reading the subtitle stream")
            text = (partial / STREAM_CAPTIONS).read_text(encoding="utf-8", errors="replace")
            (partial / STREAM_CAPTIONS).unlink()
            cues = parse_timed_text(text, f"{params['source']} (subtitle stream {params['stream']})", webvtt=False)
        else:
            cues = read_cues(params["source"], params["format"])
        cues = on_programme_clock(cues, params["shift"], params["duration"])
        if params["source"] and not cues:
            raise SourceError(params["source"], "has no cue inside the programme "
                              f"(0 to {params['duration']:.3f} s)", "check that the captions belong to this source")
        if cues:
            (partial / CAPTIONS_VTT).write_text(vtt_document(cues), encoding="utf-8")
        for burn in params["burn"]:
            (partial / f"{burn['name']}.ass").write_text(ass_document(cues, burn, params["duration"]),
                                                         encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return {"folder": publish_dir(partial, final), "cues": len(cues)}
