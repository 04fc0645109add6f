"""Follow framing with the real ffmpeg: the 9:16 window keeps a moving subject in the picture."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import make_clip
from onetake.cli import cli
from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.pipeline.probe import probe
from onetake.workers.follow import follow_commands
from onetake.workers.tasks import run_task

SECONDS, RATE, WIDTH, BOX = 4, 25, 640, 40
SPEED = 60  # px/s: from x=20 to x=260; a centred 202 px window (219..421) would miss it for 3 s


def box_left(t: float) -> float:
    return 20 + SPEED * t


@pytest.fixture(scope="module")
def moving_box(tmp_path_factory) -> Path:
    """4 s 640x360 25p, no audio: a 40x40 white box on black at y=160 moving right at 60 px/s."""
    folder = tmp_path_factory.mktemp("follow")
    graph = (f"color=c=black:s={WIDTH}x360:r={RATE}:d={SECONDS}[bg];color=c=white:s={BOX}x{BOX}:r={RATE}:d={SECONDS}"
             f"[box];[bg][box]overlay=x='20+t*{SPEED}':y=160:shortest=1[out0]")
    return make_clip(folder / "moving box.mp4", video=graph, audio=None)


def box_columns(path: Path) -> list[tuple[int, int, int]]:
    """(leftmost, rightmost, count) of the bright pixels in each frame of an output."""
    spans = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            gray = frame.to_ndarray(format="gray")
            cols = np.flatnonzero((gray > 128).any(axis=0))
            spans.append((int(cols[0]), int(cols[-1]), int((gray > 128).sum())) if cols.size else (-1, -1, 0))
    return spans


def whole_box_inside(spans: list[tuple[int, int, int]], width: int, box_px: float) -> float:
    """The share of frames in which the whole box is inside the picture (all of its area, off the edges)."""
    inside = [left > 0 and right < width - 1 and count >= 0.9 * box_px ** 2 for left, right, count in spans]
    return sum(inside) / len(inside)


def test_commands_follow_a_hand_written_crop_path(moving_box: Path, catalog, tmp_path: Path):
    """The follow encode alone, fed an analysis result shaped like the contract's: the crop path of the box."""
    frames = SECONDS * RATE
    path = {"aspect": "9:16", "points": [{"frame": f, "x": (box_left(f / RATE) + BOX / 2) / WIDTH, "y": 0.5}
                                         for f in (0, frames - 1)]}
    analysis = {"version": 1, "fps": float(RATE), "duration": float(SECONDS), "crop_path": path}
    options = PlanOptions(out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work: odd, [name]"))
    plan = plan_job(probe(moving_box), ["short"], catalog, options)
    task = plan.task(f"{plan.asset_id}/encode/short-vertical")
    result = run_task("encode", task.params, {task.deps[0]: {"analysis": analysis, "path": "", "reused": False}})
    [final] = result["outputs"]
    commands = (Path(final) / "follow.cmd").read_text()
    # one linear piece across the clip, then the last point held
    assert commands == follow_commands(path, RATE, WIDTH, 202) and commands.count("crop x") == 2
    spans = box_columns(Path(final) / "short-vertical.mp4")
    assert len(spans) == frames
    assert whole_box_inside(spans, 1080, BOX * 1920 / 360) >= 0.98
    # the box is in the middle of the 9:16 picture wherever the window need not stop at the picture's edge
    free = [i for i in range(frames) if 0 <= box_left(i / RATE) + BOX / 2 - 101 <= WIDTH - 202]
    assert len(free) > frames // 2
    assert all(abs((spans[i][0] + spans[i][1]) / 2 - 540) < 12 for i in free)


def test_follow_commands_clamp_inside_the_picture_and_jump_at_a_cut():
    path = {"points": [{"frame": 0, "x": 0.0, "y": 0.5}, {"frame": 49, "x": 0.0, "y": 0.5},
                       {"frame": 50, "x": 1.0, "y": 0.5}, {"frame": 99, "x": 0.5, "y": 0.5}]}
    lines = follow_commands(path, 25.0, 640, 202).splitlines()
    # the window's left edge is kept within 0..438; still stretches are one line; the cut is a one-frame piece
    assert lines == ["0.0000 crop x 0.0;", "1.9400 crop x 'clip(-101.00+16000.0000*(t-1.9600),0,438)';",
                     "1.9800 crop x 'clip(539.00-163.2653*(t-2.0000),0,438)';", "3.9400 crop x 219.0;"]
    assert follow_commands(None, None, 640, 202) == "0.0 crop x 219.0;\n"


def test_run_keeps_the_moving_subject_in_the_short_video(moving_box: Path, tmp_path: Path):
    """End to end with the real analysis: `onetake run --channels short`, the default framing follows."""
    pytest.importorskip("onetake.workers.analysis")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(moving_box), "--channels", "short", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    [manifest] = [Path(m) for m in json.loads(result.stdout)["manifests"]]
    spans = box_columns(manifest.parent / "short-vertical.mp4")
    assert whole_box_inside(spans, 1080, BOX * 1920 / 360) >= 0.98


def test_a_path_of_many_points_on_a_line_is_one_command_and_a_cut_stays_a_jump():
    steady = [{"frame": f, "x": 0.3 + 0.4 * f / 1000, "y": 0.5} for f in range(1000)]
    cut = [{"frame": 1000, "x": 0.9, "y": 0.5}, {"frame": 1999, "x": 0.9, "y": 0.5}]
    lines = follow_commands({"points": steady + cut}, 25.0, 1920, 608).splitlines()
    assert len(lines) == 4  # the pan (pieces of at most 500 points: two), the one-frame jump, then still
    assert lines[0].startswith("0.0000 crop x 'clip(272.00+") and lines[-1] == "39.9800 crop x 1312.0;"


def test_the_plan_keys_the_analysis_cache_by_the_version_the_analysis_writes():
    from onetake.pipeline.plan import ANALYSIS_VERSION
    from onetake.workers.analysis.single_pass import RESULT_VERSION

    assert ANALYSIS_VERSION == RESULT_VERSION, "bump both: cached analyses and followed renditions are keyed by it"


def test_follow_maps_the_path_through_an_anamorphic_picture(catalog, tmp_path: Path):
    """720x576 16:9 anamorphic (SAR 64:45), red left half, green right half: a window at 0.15 of the display
    width is all red, at 0.85 all green, and the output keeps 1080x1920 square pixels."""
    graph = ("color=c=red:s=360x576:r=25:d=2[a];color=c=green:s=360x576:r=25:d=2[b];"
             "[a][b]hstack,setsar=64/45[out0]")
    source = make_clip(tmp_path / "pal 16x9.mp4", video=graph, audio=None, seconds=2)
    path = {"aspect": "9:16", "points": [{"frame": 0, "x": 0.15, "y": 0.5}, {"frame": 24, "x": 0.15, "y": 0.5},
                                         {"frame": 25, "x": 0.85, "y": 0.5}, {"frame": 49, "x": 0.85, "y": 0.5}]}
    info = probe(source)
    assert info.video[0].sar == "64:45"
    plan = plan_job(info, ["short"], catalog, PlanOptions(out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "w")))
    task = plan.task(f"{plan.asset_id}/encode/short-vertical")
    assert task.params["follow"]["window"] == 228
    analysis = {task.deps[0]: {"analysis": {"fps": 25.0, "crop_path": path}}}
    [final] = run_task("encode", task.params, analysis)["outputs"]
    with av.open(str(Path(final) / "short-vertical.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1080, 1920) and stream.sample_aspect_ratio in (None, 1)
        pictures = [f.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0) for f in container.decode(stream)]
    red = [i for i, (r, g, _) in enumerate(pictures) if r > 200 and g < 60]
    green = [i for i, (r, g, _) in enumerate(pictures) if g > 90 and r < 60]
    assert red == list(range(25)) and green == list(range(25, 50))
