"""Which ffmpeg onetake runs, and an ffmpeg that cannot run the plans refused before any work.

Old or incomplete ffmpegs are stood in for by scripts in tmp_path that answer ``-version`` (and ``-filters``)
like one would and pass everything else to the real binary; a real Debian ffmpeg is used where one is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_clip
from onetake.workers import capabilities
from onetake.workers.ffmpeg import shipped_ffmpeg

DEBIAN_FFMPEG = Path("/usr/bin/ffmpeg")


def stand_in(folder: Path, version: str, without_filter: str = "") -> Path:
    """An executable that says it is ffmpeg ``version`` (and lacks ``without_filter``), running the real one."""
    script = folder / "ffmpeg"
    drop = f" | grep -v ' {without_filter} '" if without_filter else ""
    script.write_text(f"""#!/bin/sh
for a in "$@"; do
  case "$a" in
    -version) echo "ffmpeg version {version} Copyright (c) 2000-2021 the FFmpeg developers"; exit 0;;
    -filters) "{shipped_ffmpeg()}" "$@"{drop}; exit 0;;
  esac
done
exec "{shipped_ffmpeg()}" "$@"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def onetake(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a process of its own (ONETAKE_FFMPEG is read at start)."""
    return subprocess.run([sys.executable, "-m", "onetake.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_an_old_ffmpeg_is_refused_in_one_line_before_any_work(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    old = stand_in(tmp_path, "4.4.2-0ubuntu0.22.04.1")
    started = time.monotonic()
    run = onetake("run", str(clip), "--out", str(tmp_path / "out"), env={"ONETAKE_FFMPEG": str(old)})
    assert run.returncode == 2 and time.monotonic() - started < 30
    [line] = run.stderr.strip().splitlines()
    assert line == (f"onetake: ffmpeg 4.4.2-0ubuntu0.22.04.1 at {old} is older than 5.1, the oldest onetake works "
                    f"with; unset ONETAKE_FFMPEG (and [farm] ffmpeg) to use the ffmpeg onetake ships, or name an "
                    f"ffmpeg that has them")
    assert not (tmp_path / "out").exists()


def test_an_ffmpeg_without_a_filter_the_plan_uses_is_refused_and_doctor_says_which(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    lacking = stand_in(tmp_path, "6.1.1", without_filter="alimiter")
    env = {"ONETAKE_FFMPEG": str(lacking)}
    run = onetake("run", str(clip), "--out", str(tmp_path / "out"), "--channels", "web", env=env)
    assert run.returncode == 2
    assert re.fullmatch(rf"onetake: ffmpeg 6\.1\.1 at {re.escape(str(lacking))} cannot run these jobs: it lacks the "
                        r"alimiter filter; unset ONETAKE_FFMPEG .*", run.stderr.strip())
    assert not (tmp_path / "out").exists()
    doctor = onetake("doctor", env=env)
    assert doctor.returncode == 1
    assert "  web     CANNOT: lacks the alimiter filter" in doctor.stdout
    assert "alimiter MISSING" in doctor.stdout


def test_the_shipped_ffmpeg_wins_over_one_on_path(tmp_path):
    """An ffmpeg first on PATH (a distribution's, often older) is never run unless named."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "path-ffmpeg-ran"
    fake = bin_dir / "ffmpeg"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake.chmod(0o755)
    clip = make_clip(tmp_path / "clip.mp4")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("ONETAKE_FFMPEG", None)
    run = onetake("run", str(clip), "--out", str(tmp_path / "out"), "--channels", "edit", env=env)
    assert run.returncode == 0, run.stderr
    assert not marker.exists()
    doctor = onetake("doctor", env=env)
    assert doctor.returncode == 0 and f"{shipped_ffmpeg()} (shipped with onetake" in doctor.stdout


@pytest.mark.skipif(not DEBIAN_FFMPEG.exists() or shutil.which("dpkg") is None,
                    reason="no distribution ffmpeg at /usr/bin/ffmpeg (apt-get install ffmpeg)")
def test_debian_ffmpeg_named_explicitly_delivers_every_channel(tmp_path):
    """Debian 12's ffmpeg 5.1, named in ONETAKE_FFMPEG, makes and verifies every channel."""
    version = subprocess.run([str(DEBIAN_FFMPEG), "-version"], capture_output=True, text=True).stdout
    clip = make_clip(tmp_path / "clip.mp4", seconds=2)
    run = onetake("run", str(clip), "--out", str(tmp_path / "out"), env={"ONETAKE_FFMPEG": str(DEBIAN_FFMPEG)})
    assert run.returncode == 0, f"{version.splitlines()[0]}:\n{run.stderr}"
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"tv", "radio", "web", "app", "short", "edit"}


# ---------------------------------------------------------------------------------------------------------
# reading argvs and ffmpeg's own help (no ffmpeg run)


def test_a_filtergraph_is_read_with_its_escapes():
    graph = ("[0:0]setpts=PTS-0.5/TB[s0];[s0]split=2[s1][s2];[s1]drawtext=fontsize=30:timecode=00\\\\:00\\\\:00\\\\:00:"
             "x=(w-tw)/2[s3];[s2]select=gte(t\\,2.5),ebur128@target-0=peak=true:framelog=verbose[s4]")
    assert capabilities.filters_of(graph) == [
        ("setpts", {}), ("split", {}), ("drawtext", {"fontsize": "30", "timecode": "00:00:00:00", "x": "(w-tw)/2"}),
        ("select", {}), ("ebur128", {"peak": "true", "framelog": "verbose"})]


def test_an_argv_is_read_for_what_it_needs():
    argv = ["ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-reinit_filter", "0", "-i", "file:/a.mov", "-f",
            "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-filter_complex", "[0:0]bwdif=mode=send_frame[v]",
            "-map", "[v]", "-c:v", "libx264", "-x264-params", "open-gop=0", "-f", "mp4", "file:/o.mp4",
            "-c", "copy", "-f", "hls", "/p/index.m3u8", "-nostdin", "-y", "-copyts"]
    needs = capabilities.needs_of(argv)
    assert needs.encoders == {"libx264"} and needs.muxers == {"mp4", "hls"} and needs.demuxers == {"mov", "lavfi"}
    assert needs.filters == {"bwdif": {"mode": "send_frame"}, "anullsrc": {"r": "48000", "cl": "stereo"}}
    assert {"protocol_whitelist", "reinit_filter", "x264-params", "filter_complex"} <= needs.options


def test_help_text_is_read_for_options_and_their_values():
    text = """Hyper fast Audio and Video encoder
-progress url       write program-readable progress information
-filter_complex graph_description  create a complex filtergraph
-af filter_graph    set audio filters
AVCodecContext AVOptions:
  -flags             <flags>      ED.VAS..... (default 0)
     ildct                        E..V....... use interlaced DCT
ebur128 AVOptions:
   framelog          <int>        ..F.A...... force frame logging level (from INT_MIN to INT_MAX) (default -1)
     info            32           ..F.A......
     verbose         40           ..F.A......
aformat AVOptions:
   channel_layouts   [<channel_layout>]..F.A...... A '|'-separated list of channel layouts.
(a)split AVOptions:
   outputs           <int>        ..FVA...... set number of outputs (from 1 to INT_MAX) (default 2)
"""
    sections, names = capabilities.parse_help(text)
    assert sections["ebur128"]["framelog"] == {"info", "verbose"}
    assert "channel_layouts" in sections["aformat"] and "outputs" in sections["asplit"]
    assert {"progress", "filter_complex", "flags", "framelog"} <= names
    build = capabilities.FfmpegBuild(path="/x/ffmpeg", version_line="ffmpeg version 5.1.9 Copyright", version=(5, 1),
                                     encoders=frozenset(), decoders=frozenset(), muxers=frozenset(),
                                     demuxers=frozenset(), filters=frozenset({"ebur128", "aformat"}),
                                     filter_options=sections, options=names)
    needs = capabilities.needs_of(["ffmpeg", "-i", "file:x", "-af", "ebur128=framelog=quiet,aformat=cl=mono",
                                   "-f", "null", "-"])
    assert capabilities.lacks(build, needs) == ["the null muxer", "option 'cl' of the aformat filter",
                                                "value 'quiet' of option 'framelog' of the ebur128 filter"]
