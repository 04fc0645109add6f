"""Bad sources: each gets one clear line naming the file and the cause, no traceback, a non-zero exit, no
partial files in OUT, the source untouched, and the good sources of the same batch still delivered.

One `onetake run` batch (a subprocess of the console script, so its real stderr can be read) holds every
bad input of the issue beside one good clip; `onetake probe` is then tried on each bad file alone.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ffmpeg, make_clip, sha256
from onetake.cli import cli


def _playlist(path: Path, entry: str) -> Path:
    path.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
                    f"#EXTINF:2.0,\n{entry}\n#EXT-X-ENDLIST\n", encoding="utf-8")
    return path


def _cut_in_half(src: Path, dest: Path) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


@dataclass
class BadBatch:
    folder: Path
    out: Path
    good: Path
    bad: dict[str, Path]          # case -> path given to onetake
    hashes: dict[Path, str]       # sha256 of every source that exists, before the run
    returncode: int
    stdout: str
    stderr: str
    listener_port: int
    listener_connections: int     # connections the playlist's http:// entry made to our listener
    local_ts: Path
    local_ts_atime_before: float
    atime_works: bool


# what the one line for each case must say (a regex on the line, case-insensitive)
CAUSES = {
    "missing": r"no such file",
    "zero-byte": r"empty \(0 bytes\)",
    "faststart cut in half": r"truncated",
    "moov at end, cut": r"truncated",
    "random bytes": r"not a media file",
    "text file": r"text file",
    "png image": r"still image.*not tv",
    "audio only for tv": r"needs video.*only audio",
    "playlist to /etc/passwd": r"playlist",
    "playlist to a local .ts": r"playlist",
    "playlist to http://127.0.0.1:9": r"playlist",
    "playlist disguised as .mp4": r"playlist",
}


@pytest.fixture(scope="module")
def bad_batch(tmp_path_factory: pytest.TempPathFactory) -> BadBatch:
    """Every bad input of the issue, plus one good 1 s 320x240 clip, in one `onetake run --channels tv`:

    - missing: ``missing.mp4`` does not exist
    - zero-byte: ``empty.mov``, 0 bytes
    - faststart cut in half: a 2 s MP4 with moov before mdat, first half of its bytes kept
    - moov at end, cut: a 2 s MP4 with moov after mdat (ffmpeg's default), first half kept
    - random bytes: ``random.mp4``, 64 KiB from a fixed-seed PRNG
    - text file: ``notes.txt``, UTF-8 text with Chinese
    - png image: ``still.png``, one 320x240 testsrc2 frame written by ffmpeg
    - audio only for tv: ``voice.m4a``, 1 s AAC tone, asked for the tv channel
    - playlist to /etc/passwd, to a real local .ts (2 s MPEG-TS beside it, its atime set a day back), and to
      http://127.0.0.1:9/x.ts: three ``.m3u8`` files
    - playlist disguised as .mp4: ``agency-clip.mp4`` is an HLS playlist whose entry is an http:// URL on a
      local port this fixture listens on (any connection to it would be the farm reaching the network)
    """
    folder = tmp_path_factory.mktemp("bad")
    good = make_clip(folder / "good.mp4")
    whole_faststart = make_clip(folder / "whole-faststart.mp4", seconds=2, output_args=("-movflags", "+faststart"))
    whole_moov_last = make_clip(folder / "whole-moov-last.mp4", seconds=2)
    still = folder / "still.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-frames:v", "1", "file:" + str(still))
    local_ts = folder / "segment.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset",
           "ultrafast", "-f", "mpegts", "file:" + str(local_ts))
    empty = folder / "empty.mov"
    empty.touch()
    random_file = folder / "random.mp4"
    random_file.write_bytes(random.Random(7).randbytes(64 * 1024))
    text = folder / "notes.txt"
    text.write_text("Interview notes, take 3\n第二段 采访 记录\n", encoding="utf-8")

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]

    bad = {
        "missing": folder / "missing.mp4",
        "zero-byte": empty,
        "faststart cut in half": _cut_in_half(whole_faststart, folder / "faststart-cut.mp4"),
        "moov at end, cut": _cut_in_half(whole_moov_last, folder / "moov-last-cut.mp4"),
        "random bytes": random_file,
        "text file": text,
        "png image": still,
        "audio only for tv": make_clip(folder / "voice.m4a", video=None),
        "playlist to /etc/passwd": _playlist(folder / "passwd.m3u8", "/etc/passwd"),
        "playlist to a local .ts": _playlist(folder / "local.m3u8", str(local_ts)),
        "playlist to http://127.0.0.1:9": _playlist(folder / "remote.m3u8", "http://127.0.0.1:9/x.ts"),
        "playlist disguised as .mp4": _playlist(folder / "agency-clip.mp4", f"http://127.0.0.1:{port}/x.ts"),
    }
    whole_faststart.unlink()
    whole_moov_last.unlink()
    assert set(bad) == set(CAUSES)
    hashes = {p: sha256(p) for p in [good, *bad.values()] if p.exists()}

    # a read of the .ts would move its access time (relatime updates an atime older than the mtime)
    day_ago = time.time() - 86400
    os.utime(local_ts, (day_ago - 3600, day_ago))
    probe_file = folder / "atime-check.bin"
    probe_file.write_bytes(b"x")
    os.utime(probe_file, (day_ago - 3600, day_ago))
    probe_file.read_bytes()
    atime_works = probe_file.stat().st_atime > day_ago + 60
    ts_atime_before = local_ts.stat().st_atime

    out = folder / "OUT"
    exe = Path(sys.executable).with_name("onetake")  # the console script of this very environment
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "onetake.cli"]
    sources = [str(p) for p in bad.values()]
    sources.insert(len(sources) // 2, str(good))
    try:
        result = subprocess.run([*command, "run", "--out", str(out), "--channels", "tv", *sources],
                                capture_output=True, text=True, timeout=240, cwd=folder)
        connections = 0
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                break
            conn.close()
            connections += 1
    finally:
        listener.close()
    return BadBatch(folder, out, good, bad, hashes, result.returncode, result.stdout, result.stderr, port,
                    connections, local_ts, ts_atime_before, atime_works)


def test_batch_exits_non_zero_without_traceback(bad_batch: BadBatch) -> None:
    assert bad_batch.returncode == 1, bad_batch.stderr
    assert "Traceback" not in bad_batch.stderr, bad_batch.stderr
    assert "Traceback" not in bad_batch.stdout
    assert "internal error" not in bad_batch.stderr
    failed = [line for line in bad_batch.stderr.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == len(bad_batch.bad), bad_batch.stderr
    assert f"1 of {len(bad_batch.bad) + 1} source(s) delivered" in bad_batch.stderr


@pytest.mark.parametrize("case", sorted(CAUSES))
def test_each_bad_source_gets_one_line_naming_file_and_cause(case: str, bad_batch: BadBatch) -> None:
    path = bad_batch.bad[case]
    lines = [line for line in bad_batch.stderr.splitlines() if f"{path}:" in line]
    assert len(lines) == 1, f"{case}: expected one line naming {path.name}, got {lines}\n{bad_batch.stderr}"
    assert lines[0].startswith(f"FAILED {path}:")
    assert re.search(CAUSES[case], lines[0], re.IGNORECASE), f"{case}: cause not stated in {lines[0]!r}"
    assert str(path) not in bad_batch.stdout, f"{case}: the bad source appears among the deliveries"


def test_good_source_in_the_same_batch_is_delivered(bad_batch: BadBatch) -> None:
    [delivered] = [line for line in bad_batch.stdout.splitlines() if line.startswith("delivered")]
    folder = Path(delivered.split()[-1])
    assert folder.parent == bad_batch.out / "tv" and folder.name.startswith("good-")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["path"] == str(bad_batch.good)
    assert manifest["checks"] and all(c["passed"] for c in manifest["checks"])
    assert (folder / "tv-hd-xdcam422.mxf").stat().st_size > 0


def test_out_holds_only_the_good_delivery_and_no_partial_files(bad_batch: BadBatch) -> None:
    out = bad_batch.out
    assert sorted(os.listdir(out)) == [".onetake", "tv"]
    [asset] = os.listdir(out / "tv")
    assert asset.startswith("good-")
    manifest = json.loads((out / "tv" / asset / "manifest.json").read_text(encoding="utf-8"))
    delivered = sorted(p.relative_to(out / "tv" / asset).as_posix() for p in (out / "tv" / asset).rglob("*"))
    assert delivered == sorted([f["path"] for f in manifest["files"]] + ["manifest.json"])
    partial = [str(p.relative_to(out)) for p in out.rglob("*") if ".partial" in p.name]
    assert not partial, f"partial files left in OUT: {partial}"


def test_sources_are_untouched(bad_batch: BadBatch) -> None:
    assert not bad_batch.bad["missing"].exists(), "a missing source must not be created"
    for path, before in bad_batch.hashes.items():
        assert path.exists(), f"{path.name} was moved or deleted"
        assert sha256(path) == before, f"{path.name} was modified"


def test_playlists_do_not_reach_the_network_or_other_files(bad_batch: BadBatch) -> None:
    assert bad_batch.listener_connections == 0, "a playlist entry made onetake open an http:// connection"
    if bad_batch.atime_works:
        assert bad_batch.local_ts.stat().st_atime == bad_batch.local_ts_atime_before, (
            "the .ts a playlist points at was read")
    # and nothing a playlist points at ended up anywhere in OUT
    assert not [p for p in bad_batch.out.rglob("*") if p.suffix in (".ts", ".m3u8") or p.name == "passwd"]


# a voice-only clip and a photo are good sources, bad only for tv
@pytest.mark.parametrize("case", sorted(c for c in CAUSES if c not in ("audio only for tv", "png image")))
def test_probe_of_each_bad_file_is_one_line_and_exit_2(case: str, bad_batch: BadBatch) -> None:
    path = bad_batch.bad[case]
    result = CliRunner().invoke(cli, ["probe", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), f"{case}: probe raised {result.exception!r}"
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"{case}: probe printed {lines}"
    assert lines[0].startswith(f"onetake: {path}:")
    assert re.search(CAUSES[case], lines[0], re.IGNORECASE), f"{case}: cause not stated in {lines[0]!r}"


def test_audio_only_source_probes_fine_and_fails_only_for_tv(bad_batch: BadBatch) -> None:
    path = bad_batch.bad["audio only for tv"]
    result = CliRunner().invoke(cli, ["probe", "--json", str(path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["video"] == [] and len(info["audio"]) == 1
    [line] = [line for line in bad_batch.stderr.splitlines() if f"{path}:" in line]
    assert "--channels radio" in line, "the line should say what to do instead"


def test_a_folder_among_the_sources_is_one_line_and_the_batch_goes_on(tmp_path):
    from click.testing import CliRunner

    from conftest import make_clip
    from onetake.cli import cli

    good = make_clip(tmp_path / "good.mp4")
    folder = tmp_path / "card"
    folder.mkdir()
    result = CliRunner().invoke(cli, ["run", str(folder), str(good), "--out", str(tmp_path / "out"), "--channels",
                                      "radio"])
    assert result.exit_code == 1
    assert f"FAILED {folder}: is not a regular file; give onetake a media file" in result.output
    assert len(list((tmp_path / "out" / "radio").glob("*/manifest.json"))) == 1
