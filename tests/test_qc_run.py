"""The QC gate in `onetake run`: real analysis, real encodes, real deliveries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ffmpeg
from onetake.cli import cli


@pytest.fixture(scope="module")
def black_middle(tmp_path_factory) -> Path:
    """8 s 320x240 25p with a 1 kHz tone: 2 s testsrc2, 4 s black (2..6 s), 2 s testsrc2."""
    path = tmp_path_factory.mktemp("qc") / "black middle.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi",
           "-i", "color=c=black:size=320x240:rate=25:duration=4", "-f", "lavfi",
           "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi",
           "-i", "sine=frequency=1000:sample_rate=48000:duration=8",
           "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0[v]", "-map", "[v]", "-map", "3:a",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "file:" + str(path))
    return path


def run(*args: str):
    result = CliRunner().invoke(cli, ["run", *args])
    return result.exit_code, result.output, result.stdout


def test_black_in_the_middle_stops_tv_and_warn_delivers_it(black_middle: Path, tmp_path: Path):
    out = tmp_path / "out"
    code, output, _ = run(str(black_middle), "--channels", "tv,edit", "--out", str(out))
    assert code == 1
    assert "tv: channel tv failed QC: qc black: measured 4 s at 2-6 s" in output, output
    assert "--qc warn delivers anyway" in output and "Traceback" not in output
    [asset] = [p for p in (out / "edit").iterdir() if p.is_dir()]
    assert (asset / "manifest.json").is_file() and (asset / "report.html").is_file()  # edit has no QC rules
    assert not (out / "tv" / asset.name).exists(), "a channel that fails QC must not be delivered"
    record = json.loads((out / "tv" / f"{asset.name}.qc.json").read_text())
    assert (record["channel"], record["mode"], record["passed"], record["delivered"]) == ("tv", "enforce", False,
                                                                                         False)
    black = next(c for c in record["checks"] if c["name"] == "black")
    assert not black["passed"] and black["value"] == "4 s at 2-6 s"
    analyses = list((out / ".onetake" / "analysis").glob("*.json"))
    assert len(analyses) == 1
    written = analyses[0].stat().st_mtime_ns

    code, output, stdout = run(str(black_middle), "--channels", "tv", "--out", str(out), "--qc", "warn", "--json")
    assert code == 0, output
    [manifest_path] = json.loads(stdout)["manifests"]
    manifest = json.loads(Path(manifest_path).read_text())
    assert manifest["qc"]["mode"] == "warn"
    assert "black" in [f["name"] for f in manifest["qc"]["failed"]]
    assert "report.html" in [f["path"] for f in manifest["files"]]
    assert json.loads((out / "tv" / f"{asset.name}.qc.json").read_text())["delivered"] is True
    assert not list((out / "edit").glob("*.qc.json")), "a channel without QC rules gets no record"
    # the second run read the analysis from the cache: same file, not rewritten
    assert list((out / ".onetake" / "analysis").glob("*.json")) == analyses
    assert analyses[0].stat().st_mtime_ns == written
