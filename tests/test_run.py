"""`onetake run` end to end: real ffmpeg, real PyAV, real Dask scheduler and worker processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import make_clip, sha256
from onetake.cli import cli

CHANNELS = ["tv", "radio", "web", "app", "short", "edit"]


def run(*args: str) -> tuple[int, str, dict | None]:
    result = CliRunner().invoke(cli, ["run", *args])
    summary = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result.exit_code, result.output, summary


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """Every channel of a 2 s 640x360 25p clip with stereo tone, run once for the module."""
    folder = tmp_path_factory.mktemp("full")
    src = make_clip(folder / "in" / "news.mp4", seconds=2, size="640x360")
    out = folder / "out"
    code, output, summary = run(str(src), "--out", str(out), "--json")
    assert code == 0, output
    return src, out, summary


def test_every_channel_is_delivered_with_a_manifest(delivered):
    src, out, summary = delivered
    assert summary["ok"] is True
    assert len(summary["manifests"]) == len(CHANNELS)
    for channel in CHANNELS:
        [manifest_path] = [Path(m) for m in summary["manifests"] if Path(m).parts[-3] == channel]
        manifest = json.loads(manifest_path.read_text())
        assert manifest["channel"] == channel and manifest_path.parent.name == manifest["asset_id"]
        assert manifest["source"] == {"path": str(src), "size": src.stat().st_size, "sha256": sha256(src)}
        on_disk = sorted(p.relative_to(manifest_path.parent).as_posix()
                         for p in manifest_path.parent.rglob("*") if p.is_file() and p.name != "manifest.json")
        assert sorted(f["path"] for f in manifest["files"]) == on_disk
        for f in manifest["files"]:
            path = manifest_path.parent / f["path"]
            assert f["size"] == path.stat().st_size and f["sha256"] == sha256(path)
        assert manifest["checks"] and all(c["passed"] for c in manifest["checks"])
        assert all(set(c) >= {"name", "passed", "value", "limit"} for c in manifest["checks"])


def test_loudness_reaches_every_channel_target(delivered):
    _, out, summary = delivered
    targets = {"tv-hd-xdcam422": -24.0, "radio-bwf": -24.0, "podcast-mp3": -16.0, "podcast-aac": -16.0,
               "hls-360": -15.0, "short-vertical": -15.0}
    seen = {}
    for m in summary["manifests"]:
        for c in json.loads(Path(m).read_text())["checks"]:
            if c["name"] == "integrated loudness":
                seen[c["profile"]] = c["value"]
    assert set(seen) == set(targets)
    for profile, target in targets.items():
        assert abs(seen[profile] - target) <= 1.0, (profile, seen[profile])


def test_the_tv_file_is_xdcam_hd422(delivered):
    import av

    _, out, _ = delivered
    [mxf] = list((out / "tv").rglob("*.mxf"))
    with av.open(str(mxf)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.profile, v.codec_context.pix_fmt) == ("mpeg2video", "4:2:2", "yuv422p")
        assert (v.codec_context.width, v.codec_context.height, v.average_rate) == (1920, 1080, 25)
        assert [a.codec_context.channels for a in c.streams.audio] == [1, 1]
        assert c.metadata["timecode"] == "10:00:00:00"
        frame = next(c.decode(v))
        assert frame.interlaced_frame
        assert (int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace)) == (1, 1, 1)  # BT.709


def test_a_rerun_encodes_nothing_and_yields_the_same_manifests(delivered):
    src, out, summary = delivered
    renditions = out / ".onetake" / "renditions"
    before = {p: p.stat().st_mtime_ns for p in renditions.rglob("*") if p.is_file()}
    manifests = {m: Path(m).read_bytes() for m in summary["manifests"]}
    code, output, again = run(str(src), "--out", str(out), "--json")
    assert code == 0, output
    assert {p: p.stat().st_mtime_ns for p in renditions.rglob("*") if p.is_file()} == before
    assert {m: Path(m).read_bytes() for m in again["manifests"]} == manifests


def test_verify_command(delivered):
    src, out, _ = delivered
    [proxy] = list((out / "edit").rglob("edit-proxy.mp4"))
    ok = CliRunner().invoke(cli, ["verify", str(proxy), "--profile", "edit-proxy"])
    assert ok.exit_code == 0, ok.output
    assert "pass  gop" in ok.output
    wrong = CliRunner().invoke(cli, ["verify", str(proxy), "--profile", "tv-hd-xdcam422"])
    assert wrong.exit_code == 1
    assert "FAIL  video codec" in wrong.output and "FAIL  frame size" in wrong.output
    [hls] = list((out / "web").rglob("web-hls"))
    assert CliRunner().invoke(cli, ["verify", str(hls), "--profile", "web-hls", "--source", str(src)]).exit_code == 0
    no_source = CliRunner().invoke(cli, ["verify", str(hls), "--profile", "web-hls"])
    assert no_source.exit_code == 2 and "needs --source" in no_source.output


def test_a_failed_check_blocks_the_channel(tmp_path, clip):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shipped = (Path(__file__).parents[1] / "onetake/profiles/edit-proxy.toml").read_text()
    (profiles / "edit-proxy.toml").write_text(shipped + "\n[checks]\nmax_size_mb = 0.001\n")
    out = tmp_path / "out"
    code, output, summary = run(str(clip), "--out", str(out), "--channels", "edit,radio", "--profiles",
                                str(profiles), "--json")
    assert code == 1
    [outcome] = summary["sources"]
    edit = next(c for c in outcome["channels"] if c["channel"] == "edit")
    assert edit["manifest"] is None
    assert "edit-proxy platform size: measured" in edit["error"] and "expected <= 0.001 MB" in edit["error"]
    assert not (out / "edit").exists() or not list((out / "edit").rglob("manifest.json"))
    assert list((out / "radio").rglob("manifest.json"))


def test_plan_command_matches_what_run_does(tmp_path, clip):
    result = CliRunner().invoke(cli, ["plan", str(clip), "--channels", "tv,edit", "--out", str(tmp_path / "o"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["channels"] == ["tv", "edit"]
    assert [t["kind"] for t in plan["tasks"]].count("encode") == 1
    text = CliRunner().invoke(cli, ["plan", str(clip), "--channels", "tv,edit", "--out", str(tmp_path / "o")])
    assert "[encode]" in text.output and "-filter_complex" in text.output
    assert not (tmp_path / "o").exists(), "plan must not run anything"


def test_no_progress_output_without_a_terminal(tmp_path, clip):
    code, output, _ = run(str(clip), "--out", str(tmp_path / "o"), "--channels", "radio")
    assert code == 0
    assert "━" not in output and "%" not in output
    assert output.splitlines()[-1] == "1 of 1 source(s) delivered and verified"


def _free_port() -> int:
    """A port nothing listens on (only used where nothing should answer)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_on_an_existing_dask_cluster(tmp_path, clip):
    """`--scheduler` with a `dask scheduler` and a `dask worker --resources encode=1`, both real processes."""
    info = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline, "the Dask scheduler did not come up"
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "2",
                                   "--resources", "encode=1", "--no-dashboard"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=env)
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
        code, output, summary = run(str(clip), "--out", str(tmp_path / "o"), "--channels", "edit,radio",
                                    "--scheduler", address, "--json")
        assert code == 0, output
        assert len(summary["manifests"]) == 2
    finally:
        for p in (worker, scheduler):
            if p is None:
                continue
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_an_unreachable_scheduler_is_one_line(tmp_path, clip):
    config = tmp_path / "farm.toml"
    config.write_text("[farm]\nscheduler_timeout_s = 2\n", encoding="utf-8")  # the default waits 15 s
    code, output, _ = run(str(clip), "--out", str(tmp_path / "o"), "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
                          "--config", str(config))
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("onetake: cannot reach the Dask scheduler at tcp://127.0.0.1:")


def _ladder_checks(out: Path) -> tuple[dict, str]:
    [manifest_path] = list((out / "web").rglob("manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    master = (manifest_path.parent / "web-hls" / "master.m3u8").read_text()
    return {(c["profile"], c["name"]): c for c in manifest["checks"]}, master


def test_a_ladder_has_aligned_keyframes_and_measured_bandwidth(tmp_path, monkeypatch):
    """7 s of 960x540 25p: rungs 540 and 360 (none above the source), two 6 s-target segments each."""
    src = make_clip(tmp_path / "ladder.mp4", seconds=7, size="960x540")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # the embedded cluster's workers start here
    code, output, _ = run(str(src), "--out", str(tmp_path / "out"), "--channels", "web", "--json")
    assert code == 0, output
    checks, master = _ladder_checks(tmp_path / "out")
    assert checks[("web-hls", "variants")]["value"] == ["hls-360", "hls-540"]
    assert checks[("web-hls", "keyframes aligned across rungs")]["passed"]
    assert checks[("web-hls", "hls-540 longest segment")]["value"] == 6.0
    assert checks[("hls-540", "gop")]["value"] == [50]
    assert master.count("#EXT-X-STREAM-INF:") == 2
    assert 'RESOLUTION=960x540,CODECS="avc1.64' in master and "FRAME-RATE=25.000" in master
    assert not list((tmp_path / "cwd").iterdir()), "the HLS muxer made folders from a 'file:' name"


@pytest.mark.heavy
def test_full_size_1080i50_source_every_channel(tmp_path):
    """10 s of 1920x1080 interlaced 25i TFF with stereo tone: the full ladder, XDCAM, 9:16 at full size."""
    src = make_clip(tmp_path / "i50.mp4", seconds=10, size="1920x1080", rate="50",
                    output_args=("-vf", "interlace=scan=tff", "-flags", "+ildct+ilme", "-x264-params", "tff=1"))
    code, output, summary = run(str(src), "--out", str(tmp_path / "out"), "--json")
    assert code == 0, output
    assert len(summary["manifests"]) == 6
    checks, master = _ladder_checks(tmp_path / "out")
    assert checks[("web-hls", "variants")]["value"] == ["hls-1080", "hls-360", "hls-540", "hls-720"]
    assert checks[("web-hls", "keyframes aligned across rungs")]["passed"]


def test_demo_delivers_every_channel(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "out"), "--seconds", "1"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*/*/manifest.json"))) == len(CHANNELS)
    assert "1 of 1 source(s) delivered and verified" in result.output


def test_the_same_content_twice_in_a_batch_is_encoded_once(tmp_path, clip):
    copy = tmp_path / "copy of clip.mp4"
    copy.write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    code, output, summary = run(str(clip), str(copy), str(clip), "--out", str(out), "--channels", "edit", "--json")
    assert code == 0, output
    assert [s["ok"] for s in summary["sources"]] == [True, True]
    assert sorted(p.parent.name for p in out.glob("edit/*/manifest.json")) == [
        "clip-" + summary["sources"][0]["asset_id"][-8:], "copy-of-clip-" + summary["sources"][0]["asset_id"][-8:]]
    assert len([p for p in (out / ".onetake" / "renditions").iterdir() if p.is_dir()]) == 1


def test_very_short_and_silent_sources_are_delivered(tmp_path):
    """0.3 s (under one 400 ms loudness block) and 2 s with a silent stereo track."""
    short = make_clip(tmp_path / "blink.mp4", seconds=0.3)
    silent = make_clip(tmp_path / "mic-off.mp4", seconds=2, audio="anullsrc=r=48000:cl=stereo:d=2")
    code, output, summary = run(str(short), str(silent), "--out", str(tmp_path / "out"), "--channels", "tv,radio",
                                "--json")
    assert code == 0, output
    for m in summary["manifests"]:
        checks = {(c["profile"], c["name"]): c for c in json.loads(Path(m).read_text())["checks"]}
        loudness = [c for (_, name), c in checks.items() if name == "integrated loudness"]
        assert loudness and all(c["value"] == "silent, or too short to measure" for c in loudness)
        durations = [c for (_, name), c in checks.items() if name in ("duration", "audio/video sync")]
        assert durations and all(c["passed"] for c in durations)


def test_an_unwritable_work_folder_is_one_line_per_channel(tmp_path, clip):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the work folder should be")
    config = tmp_path / "farm.toml"
    config.write_text(f'[farm]\nwork_dir = "{blocker}"\n')
    code, output, summary = run(str(clip), "--out", str(tmp_path / "out"), "--channels", "edit", "--config",
                                str(config), "--json")
    assert code == 1
    [edit] = summary["sources"][0]["channels"]
    # the encode and the analysis both write under the work folder and start together: either fails first
    assert (edit["error"].startswith(f"{blocker}/renditions: Not a directory during the encode step")
            or edit["error"].startswith(f"{blocker}/analysis: Not a directory during the analyze step")), edit
    assert edit["error"].endswith("check that the output and work folders exist, are writable and have space")
    assert "internal error" not in output


def test_a_silent_output_of_a_loud_source_fails_verification(delivered, tmp_path):
    from conftest import ffmpeg

    src, out, _ = delivered
    silent = tmp_path / "silent.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo:d=2", "-c:a", "pcm_s24le", "-write_bext", "1",
           "file:" + str(silent))
    result = CliRunner().invoke(cli, ["verify", str(silent), "--profile", "radio-bwf", "--source", str(src)])
    assert result.exit_code == 1
    assert "FAIL  integrated loudness" in result.output


def test_audio_shifted_against_the_picture_fails_verification(delivered, tmp_path):
    from conftest import ffmpeg

    src, out, _ = delivered
    [proxy] = list((out / "edit").rglob("edit-proxy.mp4"))
    shifted = tmp_path / "shifted.mp4"
    ffmpeg("-i", "file:" + str(proxy), "-itsoffset", "0.4", "-i", "file:" + str(proxy), "-map", "0:v", "-map", "1:a",
           "-c", "copy", "-shortest", "-movflags", "+faststart", "file:" + str(shifted))
    result = CliRunner().invoke(cli, ["verify", str(shifted), "--profile", "edit-proxy", "--source", str(src)])
    assert result.exit_code == 1
    assert "FAIL  audio/video start" in result.output


def test_every_shipped_profile_delivers_from_one_decode(tmp_path):
    """The profiles no default channel uses, together in one ffmpeg with the defaults they share audio with."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "channels.toml").write_text(
        '[sd]\nprofiles = ["tv-sd-imx50"]\n[avci]\nprofiles = ["tv-hd-avci100"]\n'
        '[radio]\nprofiles = ["radio-mp2", "radio-bwf"]\n[landscape]\nprofiles = ["short-landscape"]\n')
    src = make_clip(tmp_path / "src.mp4", seconds=1, size="640x360")
    code, output, summary = run(str(src), "--out", str(tmp_path / "out"), "--profiles", str(profiles), "--json")
    assert code == 0, output
    assert len(summary["manifests"]) == 4
    [sd] = list((tmp_path / "out" / "sd").rglob("manifest.json"))
    checks = {c["name"]: c for c in json.loads(sd.read_text())["checks"]}
    assert checks["display aspect"]["value"] == "16/9" and checks["channels per track"]["value"] == 4
