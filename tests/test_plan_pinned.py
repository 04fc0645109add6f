"""Plans pinned byte for byte: `onetake plan --json` prints exactly these for these sources. A change to planning
that is meant to change plans regenerates them (ONETAKE_REPIN=1 pytest tests/test_plan_pinned.py) and shows the
difference in review; one that is not meant to (a refactoring) must leave them as they are."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from onetake.pipeline.artwork import Artwork
from onetake.pipeline.models import CaptionsInfo
from onetake.pipeline.plan import plan_job
from test_plan import OPTIONS, audio, source, video

PINNED = Path(__file__).parent / "plans"

CASES = {
    "every-channel": (source(timecode="09:59:50:00"), None),
    "pal-anamorphic-interlaced": (source(name="news-576i.mxf", videos=[video(
        codec="mpeg2video", width=720, height=576, sar="64:45", scan="tff", pix_fmt="yuv422p", color_matrix="",
        color_primaries="", color_transfer="")], audios=[audio(channels=1, layout="mono"), audio(
            index=2, channels=1, layout="mono", default=False)]), ["tv", "edit", "short"]),
    "phone-hdr-vfr-rotated": (source(name="IMG_0042.MOV", videos=[video(
        codec="hevc", width=3840, height=2160, rotation=90, frame_rate="30/1", variable_frame_rate=True,
        pix_fmt="yuv420p10le", color_primaries="bt2020", color_transfer="arib-std-b67", color_matrix="bt2020nc",
        hdr_metadata="Dolby Vision")], audios=[audio(start_time=0.04)]), ["web", "short", "app"]),
    "capture-midgop-d10": (source(name="capture.mxf", videos=[video(
        codec="mpeg2video", width=720, height=608, sar="64:45", scan="tff", pix_fmt="yuv422p", vbi_lines=32,
        start_time=0.6, duration=9.4, lead_skipped=0.6, checked_pictures=24, damaged_pictures=1,
        damage="ac-tex damaged")],
        audios=[audio(channels=4, layout="4.0")]), ["tv", "web"]),
    "radio-programme": (source(name="programme.wav", format="wav", videos=[],
                               audios=[audio(index=0, codec="pcm_s24le")]), None),
    "silent-picture": (source(name="b-roll.mp4", audios=[]), ["tv", "web", "edit"]),
    "bulletin-logo-captions": (dataclasses.replace(source(name="bulletin.mp4"), captions=CaptionsInfo(
        path="/media/bulletin.zh.srt", stream=-1, format="srt", language="zh", sha256="c" * 64, cues=12, first=0.5,
        last=9.8)),
        ["web", "short", "edit", "tv"]),
    "radio-audiogram": (dataclasses.replace(source(name="interview.wav", format="wav", videos=[],
                                                   audios=[audio(index=0, codec="pcm_s16le")]),
                                            cover="/media/interview.jpg", cover_sha256="d" * 64), ["radio", "short"]),
}
BRANDED = dataclasses.replace(OPTIONS, logo=Artwork("/station/logo.png", "e" * 64, "png"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_plan_is_pinned(name: str, catalog) -> None:
    info, channels = CASES[name]
    options = OPTIONS if name in ("every-channel", "radio-programme") else BRANDED  # with and without the logo
    printed = json.dumps(plan_job(info, channels, catalog, options).to_dict(), indent=2, ensure_ascii=False) + "\n"
    pinned = PINNED / f"{name}.json"
    if os.environ.get("ONETAKE_REPIN"):
        pinned.write_text(printed, encoding="utf-8")
    assert printed == pinned.read_text(encoding="utf-8"), f"the plan of {name} changed; see the diff above"
