"""The HTML report: self-contained (inline CSS, SVG, data-URI posters), and every string from the file escaped."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np

from conftest import make_clip
from onetake.workers.tasks import run_task

HOSTILE = '"><img src=x onerror=alert(1)><script>alert("x") & 新闻.mp4'  # no '/': it is one file name


def analysis() -> dict:
    """A 2 s 320x240 25p analysis as the contract shapes it: two shots, a fade, black, freeze and silence."""
    return {"version": 1, "duration": 2.0, "fps": 25.0, "frames": 50, "width": 320, "height": 240,
            "transitions": [{"frame": 25, "time": 1.0, "kind": "cut"},
                            {"frame": 40, "time": 1.6, "kind": "fade", "end_frame": 48}],
            "shots": [{"start_frame": 0, "end_frame": 25, "start": 0.0, "end": 1.0},
                      {"start_frame": 25, "end_frame": 50, "start": 1.0, "end": 2.0}],
            "black": [{"start": 1.8, "end": 2.0}], "freeze": [{"start": 0.2, "end": 0.6}],
            "silence": [{"start": 0.0, "end": 0.3}],
            "loudness": {"integrated": -23.0, "true_peak": -3.0, "lra": 2.0,
                         "short_term": [[0.0, None], [0.5, -25.0], [1.0, -23.5], [1.5, -22.0]]},
            "poster": {"frame": 12, "time": 0.48}, "shot_posters": [{"frame": 12, "time": 0.48},
                                                                    {"frame": 37, "time": 1.48}],
            "crop_path": {"aspect": "9:16", "points": [{"frame": 0, "x": 0.5, "y": 0.5}]}}


def test_report_is_self_contained_and_escapes_the_file_name(tmp_path: Path):
    source = make_clip(tmp_path / HOSTILE, seconds=2)
    final = tmp_path / "reports" / "report.html"
    result = run_task("report", {"source": str(source), "final": str(final), "title": source.name},
                      {"talk/analyze": {"analysis": analysis(), "path": "", "reused": False}})
    assert result == {"report": str(final)}
    page = final.read_text(encoding="utf-8")
    # nothing to fetch: no URLs, no scripts, no external style sheets or images
    assert "http" not in page and 'src="//' not in page and "<script" not in page and "<link" not in page
    assert "<style>" in page and page.count("<svg") == 2 and "<polyline" in page
    for svg in re.findall(r"<svg.*?</svg>", page, re.DOTALL):  # well-formed, so browsers draw all of it
        ElementTree.fromstring(svg)
    posters = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(posters) == 2
    for data in posters:  # real pictures of the clip: 144x108 (4:3), not blank
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (108, 144, 3) and image.std() > 20
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(&quot;x&quot;) &amp; 新闻.mp4" in page
    assert "<img src=x" not in page
    # the timeline shows each transition and band, with its time
    for label in ("cut at 0:01.000", "fade at 0:01.600", "black 0:01.800 to 0:02.000",
                  "freeze 0:00.200 to 0:00.600", "silence 0:00.000 to 0:00.300"):
        assert label in page


def test_report_of_an_audio_only_analysis_has_no_posters(tmp_path: Path):
    source = make_clip(tmp_path / "talk.m4a", seconds=1, video=None)
    final = tmp_path / "report.html"
    audio_only = {"version": 1, "duration": 1.0, "fps": None, "width": None, "height": None, "transitions": [],
                  "shots": [], "black": [], "freeze": [], "silence": [], "shot_posters": [],
                  "loudness": {"integrated": -20.0, "true_peak": -19.0, "lra": 0.0, "short_term": [[0.0, -20.0]]}}
    run_task("report", {"source": str(source), "final": str(final), "title": "talk.m4a"},
             {"talk/analyze": {"analysis": audio_only, "path": "", "reused": False}})
    page = final.read_text(encoding="utf-8")
    assert "data:image" not in page and "no picture" in page and "<polyline" in page


def test_analyze_report_writes_the_page_and_a_bad_path_is_one_line(tmp_path: Path):
    from click.testing import CliRunner

    from onetake.cli import cli

    source = make_clip(tmp_path / "cut.mp4", seconds=2, video="testsrc2")
    page = tmp_path / "cut.html"
    result = CliRunner().invoke(cli, ["analyze", str(source), "--report", str(page), "--json"])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and "data:image/jpeg;base64," in text and "http" not in text
    assert not list(tmp_path.glob(".*partial"))
    missing = tmp_path / "no such folder" / "cut.html"
    result = CliRunner().invoke(cli, ["analyze", str(source), "--report", str(missing)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"onetake: {missing}: cannot write the report (No such file or directory); give a writable path"]
