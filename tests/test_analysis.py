"""The analysis against clips of known truth (benchmarks/analysis_clips.py), the contract's shape, and the CLI."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ffmpeg, make_clip

from benchmarks import analysis_clips as clips
from onetake.cli import cli
from onetake.pipeline.config import FarmConfig
from onetake.pipeline.errors import SourceError
from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.pipeline.probe import probe
from onetake.pipeline.profiles import load_catalog
from onetake.workers.analysis import analyze
from onetake.workers.ffmpeg import ffmpeg_binary
from onetake.workers.tasks import run_task

FRAME = 1 / clips.FPS
CONTRACT_KEYS = {"version", "duration", "fps", "frames", "width", "height", "transitions", "shots", "black",
                 "freeze", "silence", "loudness", "active_area", "interlaced", "poster", "cover", "shot_posters",
                 "crop_path"}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("analysis")


@pytest.fixture(scope="module")
def transitions(media):
    path, truth = clips.transitions_clip(media)
    return analyze(path), truth, path


def assert_segments(found, truth, tolerance):
    assert len(found) == len(truth), (found, truth)
    for seg, (start, end) in zip(found, truth, strict=True):
        assert abs(seg["start"] - start) <= tolerance + 1e-6, (seg, (start, end))
        assert abs(seg["end"] - end) <= tolerance + 1e-6, (seg, (start, end))


def test_cuts_fades_and_dissolves_are_found_where_they_are(transitions):
    result, truth, _ = transitions
    cuts = [t["frame"] for t in result["transitions"] if t["kind"] == "cut"]
    assert clips.match_frames(cuts, truth.cuts, 1)["f1"] == 1.0
    gradual = [t for t in result["transitions"] if t["kind"] != "cut"]
    assert [t["kind"] for t in gradual] == [kind for _, _, kind in truth.gradual]
    for found, (start, end, _) in zip(gradual, truth.gradual, strict=True):
        assert abs(found["frame"] - start) <= 3 and abs(found["end_frame"] - end) <= 3, (found, start, end)
        assert found["time"] == pytest.approx(found["frame"] * FRAME, abs=1e-3)


def test_black_and_silence_bounds(transitions):
    result, truth, _ = transitions
    assert_segments(result["black"], truth.black, 2 * FRAME)
    assert_segments(result["silence"], truth.silence, 0.05)


def test_frozen_black_and_silent_stretches(media):
    path, truth = clips.segments_clip(media)
    result = analyze(path)
    assert_segments(result["freeze"], truth.freeze, 2 * FRAME)
    assert_segments(result["black"], truth.black, 2 * FRAME)
    assert_segments(result["silence"], truth.silence, 0.05)
    assert [t["frame"] for t in result["transitions"]] == truth.cuts


def test_fifty_cuts(media):
    path, truth = clips.many_cuts_clip(media)
    result = analyze(path)
    score = clips.match_frames([t["frame"] for t in result["transitions"] if t["kind"] == "cut"], truth.cuts, 1)
    assert score["f1"] >= 0.98, score
    assert [s["start_frame"] for s in result["shots"]] == [0, *truth.cuts]


def test_the_crop_window_keeps_still_on_a_static_shot(media):
    path, _ = clips.static_clip(media)
    result = analyze(path)
    assert clips.jitter(result) == 0.0
    points = result["crop_path"]["points"]
    assert [p["frame"] for p in points] == [0, result["frames"] - 1]
    assert len({p["x"] for p in points}) == 1


@pytest.mark.parametrize("seconds", [6.0, 3.0])
def test_the_crop_window_follows_a_moving_subject(media, seconds):
    path, truth = clips.moving_subject_clip(media, seconds)
    result = analyze(path)
    assert clips.subject_inside(result, truth) >= 0.98
    # bounded speed: never more than the settings allow, plus rounding
    assert clips.jitter(result) <= 0.6 / clips.FPS + 1e-3


def test_result_follows_the_contract(transitions):
    result, _, path = transitions
    assert CONTRACT_KEYS <= set(result)
    assert json.loads(json.dumps(result)) == result
    assert analyze(path) == result, "the same file gives the same result"
    assert (result["width"], result["height"], result["frames"], result["fps"]) == (320, 180, 250, 25.0)
    shots = result["shots"]
    assert shots[0]["start_frame"] == 0 and shots[-1]["end_frame"] == result["frames"]
    assert all(a["end_frame"] == b["start_frame"] for a, b in itertools.pairwise(shots))
    assert len(result["shot_posters"]) == len(shots)
    for shot, poster in zip(shots, result["shot_posters"], strict=True):
        assert shot["start_frame"] <= poster["frame"] < shot["end_frame"]
    black_frames = [(round(b["start"] * 25), round(b["end"] * 25)) for b in result["black"]]
    for key in ("poster", "cover"):
        assert not any(a <= result[key]["frame"] < b for a, b in black_frames), key
    points = result["crop_path"]["points"]
    assert result["crop_path"]["aspect"] == "9:16"
    assert points[0]["frame"] == 0 and points[-1]["frame"] == result["frames"] - 1
    assert all(0 <= p["x"] <= 1 and p["y"] == 0.5 for p in points)
    # the window only jumps at a cut: a jump is two points on consecutive frames across a shot boundary
    starts = {s["start_frame"] for s in shots}
    for a, b in itertools.pairwise(points):
        if b["frame"] - a["frame"] == 1 and abs(b["x"] - a["x"]) > 0.6 / 25 + 1e-3:
            assert b["frame"] in starts
    curve = result["loudness"]["short_term"]
    assert len(curve) > 50 and all(len(p) == 2 for p in curve)


def test_loudness_matches_ffmpegs_own_meter(transitions):
    result, _, path = transitions
    run = subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-i", f"file:{path}", "-map", "0:a",
                          "-af", "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = run.stderr[run.stderr.rindex("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    lra = float(re.search(r"LRA:\s+(-?[\d.]+) LU", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    loud = result["loudness"]
    assert loud["integrated"] == pytest.approx(integrated, abs=0.1)
    assert loud["lra"] == pytest.approx(lra, abs=0.1)
    assert loud["true_peak"] == pytest.approx(peak, abs=0.1)


def test_letterbox_and_pillarbox(tmp_path):
    letterbox = make_clip(tmp_path / "lb.mp4", seconds=1, video_args=(),
                          output_args=("-vf", "scale=320:180,setsar=1,pad=320:240:0:30"))
    area = analyze(letterbox)["active_area"]
    assert area["x"] == 0 and area["width"] == 320
    assert abs(area["y"] - 30) <= 2 and abs(area["height"] - 180) <= 4
    pillar = make_clip(tmp_path / "pb.mp4", seconds=1, size="240x240", output_args=("-vf", "pad=320:240:40:0"))
    area = analyze(pillar)["active_area"]
    assert abs(area["x"] - 40) <= 4 and abs(area["width"] - 240) <= 8 and area["height"] == 240


def test_unflagged_interlaced_content_is_found(tmp_path):
    combed = tmp_path / "combed.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480:rate=50:duration=2", "-vf", "interlace", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "file:" + str(combed))
    assert analyze(combed)["interlaced"] is True
    progressive = make_clip(tmp_path / "progressive.mp4", seconds=2, size="640x480")
    assert analyze(progressive)["interlaced"] is False


def test_audio_only_and_video_only(tmp_path):
    audio = analyze(make_clip(tmp_path / "a.m4a", seconds=2, video=None))
    assert audio["frames"] == 0 and audio["transitions"] == [] and audio["poster"] is None
    assert audio["crop_path"]["points"] == [] and audio["loudness"]["integrated"] is not None
    video = analyze(make_clip(tmp_path / "v.mp4", seconds=1, audio=None))
    assert video["frames"] == 25 and video["silence"] == []
    assert video["loudness"] == {"integrated": None, "true_peak": None, "lra": None, "short_term": []}


def test_bad_input_is_one_line(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(SourceError):
        analyze(text)
    result = CliRunner().invoke(cli, ["analyze", str(text)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "notes.mp4" in result.output
    assert "Traceback" not in result.output


def test_cli_summary_and_json(transitions):
    _, _, path = transitions
    human = CliRunner().invoke(cli, ["analyze", str(path)])
    assert human.exit_code == 0, human.output
    assert "1 cuts, 2 fades, 1 dissolves" in human.output and "LUFS" in human.output
    as_json = CliRunner().invoke(cli, ["analyze", "--json", str(path)])
    assert as_json.exit_code == 0
    assert CONTRACT_KEYS <= set(json.loads(as_json.output))


FACE = Path(__file__).parent / "data" / "face-grace-hopper.png"


def test_the_shipped_cascade_finds_a_real_face_and_nothing_in_patterns(tmp_path):
    import cv2

    from onetake.workers.analysis.faces import detect_faces

    gray = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
    faces = detect_faces(gray)
    assert len(faces) == 1
    x, y, w, _ = faces[0]
    assert abs(x - 47) <= 6 and abs(y - 21) <= 6 and 60 <= w <= 90
    bars = tmp_path / "bars.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=192x108", "-frames:v", "1", "-pix_fmt", "gray", str(bars))
    assert detect_faces(cv2.imread(str(bars), cv2.IMREAD_GRAYSCALE)) == []


def test_a_face_wins_the_crop_over_a_busier_moving_pattern(tmp_path, monkeypatch):
    """Left half: testsrc2 (moving, full of edges); right half: the face photo on grey."""
    clip = tmp_path / "face.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x360:r=25:d=4", "-loop", "1", "-framerate", "25", "-t", "4",
           "-i", str(FACE), "-filter_complex",
           "[1:v]scale=320:240,pad=320:360:0:60:color=0x404040,format=yuv420p[f];[0:v]format=yuv420p[b];"
           "[b][f]hstack=inputs=2,format=yuv420p[v]", "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast",
           "-t", "4", "file:" + str(clip))
    with_faces = analyze(clip)
    assert all(p["x"] > 0.6 for p in with_faces["crop_path"]["points"])
    assert clips.jitter(with_faces) == 0.0
    from onetake.workers.analysis import faces

    monkeypatch.setattr(faces.FaceDetector, "__init__", lambda self: setattr(self, "available", False))
    without = analyze(clip)
    assert all(p["x"] < 0.5 for p in without["crop_path"]["points"])


def test_active_area_of_a_rotated_phone_clip_matches_ffmpegs_cropdetect(tmp_path):
    """Coded 320x180 with black bars on the left 80 columns, shown turned by 90 degrees."""
    coded, rotated = tmp_path / "coded.mp4", tmp_path / "rotated.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=240x180:r=25:d=1", "-vf", "pad=320:180:80:0", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "file:" + str(coded))
    ffmpeg("-display_rotation", "90", "-i", "file:" + str(coded), "-c", "copy", "file:" + str(rotated))
    run = subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-i", f"file:{rotated}", "-vf",
                          "cropdetect=limit=24:round=2:reset=0", "-f", "null", "-"], capture_output=True, text=True,
                         check=True)
    w, h, x, y = (int(v) for v in re.findall(r"crop=(\d+):(\d+):(\d+):(\d+)", run.stderr)[-1])
    result = analyze(rotated)
    assert (result["width"], result["height"]) == (180, 320)
    area = result["active_area"]
    assert abs(area["x"] - x) <= 2 and abs(area["y"] - y) <= 2
    assert abs(area["width"] - w) <= 4 and abs(area["height"] - h) <= 4


def test_a_flash_is_not_a_cut(tmp_path):
    """A one-frame and a two-frame white flash over testsrc2 (frames 25 and 60-61), and a real cut at 80."""
    clip = tmp_path / "flash.mp4"
    ffmpeg("-filter_complex", "testsrc2=s=320x180:r=25:d=3.2,drawbox=c=white:t=fill:enable='eq(n\\,25)+eq(n\\,60)"
           "+eq(n\\,61)'[a];smptebars=s=320x180:r=25:d=1[b];[a][b]concat=n=2:v=1:a=0[v]", "-map", "[v]",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "file:" + str(clip))
    assert [(t["frame"], t["kind"]) for t in analyze(clip)["transitions"]] == [(80, "cut")]


@pytest.fixture(scope="module")
def programme(media):
    """24 s of what the analysis looks for: the transitions clip (cut, fades, black, dissolve, silence), the
    segments clip (freeze, black, silence) and 4 s of the face photo beside a moving pattern, one after another."""
    transitions_path, _ = clips.transitions_clip(media)
    segments_path, _ = clips.segments_clip(media)
    path = media / "programme.mp4"
    look = "scale=640:360,setsar=1,fps=25,format=yuv420p"
    ffmpeg("-i", str(transitions_path), "-i", str(segments_path), "-f", "lavfi", "-i", "testsrc2=s=320x360:r=25:d=6.4",
           "-loop", "1", "-framerate", "25", "-t", "6.4", "-i", str(FACE), "-f", "lavfi", "-i",
           "sine=frequency=300:sample_rate=48000:duration=6.4", "-filter_complex",
           f"[3:v]scale=320:240,pad=320:360:0:60:color=0x404040,format=yuv420p[f];[2:v]format=yuv420p[b];"
           f"[b][f]hstack=inputs=2,{look}[face];[0:v]{look}[t];[1:v]{look}[s];"
           f"[t][0:a][s][1:a][face][4:a]concat=n=3:v=1:a=1[v][a]", "-map", "[v]", "-map", "[a]",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "file:" + str(path))
    return path


def _messy(programme: Path, kind: str) -> Path:
    if kind == "open_gop_ts":  # a broadcast capture: open GOPs, B-frames, MP2, a clock that starts at 10 s
        out = programme.with_name("programme-open-gop.ts")
        ffmpeg("-i", str(programme), "-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
               "-x264-params", "keyint=30:open-gop=1", "-c:a", "mp2", "-output_ts_offset", "10", "file:" + str(out))
    elif kind == "dropped_frames":  # a phone's: every 37th picture dropped, the rest at their own times
        out = programme.with_name("programme-dropped.mp4")
        ffmpeg("-i", str(programme), "-vf", r"select=not(eq(mod(n\,37)\,0))", "-fps_mode", "vfr", "-c:v", "libx264",
               "-preset", "veryfast", "-c:a", "copy", "file:" + str(out))
    else:  # a feed whose pictures change size mid-stream (640x360, then 960x540 from 11 s on), in one H.264 stream
        halves = []
        for i, (size, trim) in enumerate([("640x360", "-t"), ("960x540", "-ss")]):
            halves.append(programme.with_name(f"half-{i}.h264"))
            ffmpeg(trim, "11", "-i", str(programme), "-an", "-s", size, "-c:v", "libx264", "-preset", "ultrafast",
                   "-bsf:v", "h264_mp4toannexb", "-f", "h264", "file:" + str(halves[-1]))
        joined = programme.with_name("size-change.h264")
        joined.write_bytes(b"".join(h.read_bytes() for h in halves))
        out = programme.with_name("programme-size-change.mkv")
        ffmpeg("-fflags", "+genpts", "-r", "25", "-f", "h264", "-i", "file:" + str(joined), "-i", str(programme),
               "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "file:" + str(out))
    return out


@pytest.mark.parametrize("kind", ["open_gop_ts", "dropped_frames", "size_change"])
def test_a_long_programme_analysed_in_stretches_gives_what_one_decode_gives(programme, kind, tmp_path):
    """The stretches start mid-GOP, inside fades, a dissolve, a freeze and black, and the face shot: their features
    joined are what one decode keeps, so the analysis is the same to the last digit."""
    source = _messy(programme, kind)
    farm = dataclasses.replace(FarmConfig(), chunk_min_s=10, chunk_s=4.3)
    plan = plan_job(probe(str(source)), ["edit"], load_catalog(),
                    PlanOptions(out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work"), farm=farm))
    parts = [t for t in plan.tasks if t.kind == "analyze-part"]
    [joined] = [t for t in plan.tasks if t.kind == "analyze"]
    stretches = [t for t in parts if t.params["part"] == "pictures"]
    assert len(stretches) >= 5 and len(parts) == len(stretches) + 1 and set(joined.deps) == {t.id for t in parts}
    results = {t.id: run_task(t.kind, t.params) for t in parts}
    folder = Path(parts[0].params["file"]).parent
    assert sorted(p.name[:4] for p in folder.glob("*.npz")) == [f"{i:04d}" for i in range(len(stretches))]
    assert (folder / "sound.json").is_file()
    analysis = run_task(joined.kind, joined.params, results)["analysis"]
    assert not folder.exists(), "the parts are removed once joined"
    whole = analyze(source)
    assert whole["crop_path"]["points"] and whole["transitions"] and whole["black"] and whole["freeze"]
    assert any(p["x"] > 0.6 for p in whole["crop_path"]["points"]), "the face shot is found"
    assert json.dumps(analysis, sort_keys=True) == json.dumps(whole, sort_keys=True)
    # once the analysis is made, the parts of a rerun decode nothing; were it gone again before their join, the
    # join makes it in one decode
    again = {t.id: run_task(t.kind, t.params) for t in parts}
    assert all(r["reused"] for r in again.values()) and not folder.exists()
    Path(joined.params["cache"]).unlink()
    assert run_task(joined.kind, joined.params, again)["analysis"] == whole
