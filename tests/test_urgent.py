"""Breaking news first: an urgent job publishes a first version of web and short, then replaces it with the
full-quality delivery, for folders and S3 alike; a failed full-quality delivery leaves the first version as it was.

The planning is tested as data; the deliveries with `onetake run --urgent` and `onetake watch` as real
subprocesses (real ffmpeg, Dask workers, moto's S3 server behind the tests' proxy), each manifest polled while
they run.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from fractions import Fraction
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from click.testing import CliRunner
from conftest import make_clip, sha256
from media import flashes_and_beeps, make_flash_beep
from test_plan import OPTIONS, audio, source, video
from test_s3 import ACCESS_KEY, SECRET_KEY, _config, fake_delivery, moto, store, transfer  # noqa: F401 (fixtures)
from test_watch import drop, stop, wait_for, watchers  # noqa: F401 (a fixture)

from onetake.cli import cli
from onetake.pipeline.config import FarmConfig
from onetake.pipeline.plan import asset_id_for, plan_job
from onetake.pipeline.plan.chunks import even_cuts
from onetake.pipeline.plan.urgent import FIRST_VERSION_MARK, full_version_options, plan_first_version
from onetake.pipeline.probe import probe
from onetake.workers.storage import backend_for

pytestmark = pytest.mark.timeout(240)

URGENT = full_version_options(OPTIONS)
SECONDS = 4
FRAMES = SECONDS * 25


# ---------------------------------------------------------------------------------------------------------
# planning


def test_a_first_version_is_one_rung_its_mp4_and_a_centred_short_made_fast(catalog):
    full = plan_job(source(), ["tv", "web", "short"], catalog, URGENT)
    first = plan_first_version(full.source, full, catalog, URGENT)
    assert first is not None and first.channels == ("web", "short")
    assert first.asset_id == full.asset_id + FIRST_VERSION_MARK
    assert not {t.id for t in first.tasks} & {t.id for t in full.tasks}, "both plans can share one cluster"
    # no analysis to wait for: one decode makes the rung and a centre-cropped short
    assert {t.kind for t in first.tasks} == {"measure", "encode", "package", "verify", "deliver"}
    [encode] = [t for t in first.tasks if t.kind == "encode"]
    assert sorted(o["profile"] for o in encode.params["outputs"]) == ["hls-720", "short-vertical"]
    argv = encode.params["argv"]
    assert argv.count("ultrafast") == 2 and argv.count("main") == 2 and "high" not in argv
    assert "sendcmd" not in " ".join(argv) and "follow" not in encode.params
    [package] = [t for t in first.tasks if t.kind == "package"]
    assert [v["name"] for v in package.params["variants"]] == ["hls-720"]
    [quick], settled = ([t.params for t in p.tasks if t.kind == "measure"] for p in (first, full))
    assert quick["rounds"] == 0 and not any("rounds" in s for s in settled)
    assert quick["cache"] not in {s["cache"] for s in settled}
    # one sound for the rung and the short: measured, limited and encoded at the rung's 128 kb/s
    assert [t["bitrate_kbps"] for t in quick["targets"]] == [128] and len(settled) == 3
    assert argv.count("128k") == 2 and argv[argv.index("-filter_complex") + 1].count("alimiter") == 1
    delivers = {t.params["channel"]: t.params for t in first.tasks if t.kind == "deliver"}
    assert {c: [f["dest"] for f in d["files"]] for c, d in delivers.items()} == {
        "web": ["web-hls", "web-hls.mp4"], "short": ["short-vertical.mp4"]}
    assert all(d["version"] == 1 and d["notes"][-1].startswith("first version") for d in delivers.values())
    fulls = {t.params["channel"]: t.params for t in full.tasks if t.kind == "deliver"}
    assert {c: d["version"] for c, d in fulls.items()} == {"tv": 2, "web": 2, "short": 2}
    assert all(delivers[c]["dest"] == fulls[c]["dest"] for c in delivers), "the same places"
    # a job that is not urgent is delivered as before, unversioned
    plain = plan_job(source(), ["web"], catalog, OPTIONS)
    assert all("version" not in t.params for t in plain.tasks if t.kind == "deliver")


def test_a_first_version_takes_the_rung_the_source_fills_and_the_farms_choices(catalog):
    small = source(videos=(video(width=640, height=360),))
    options = dataclasses.replace(URGENT, farm=FarmConfig(first_version_preset="superfast",
                                                          first_version_profile="high", first_version_height=540))
    full = plan_job(small, ["web"], catalog, options)
    first = plan_first_version(full.source, full, catalog, options)
    [package] = [t for t in first.tasks if t.kind == "package"]
    assert [v["name"] for v in package.params["variants"]] == ["hls-360"], "never an enlarged picture"
    [encode] = [t for t in first.tasks if t.kind == "encode"]
    assert "superfast" in encode.params["argv"] and "high" in encode.params["argv"]
    big = plan_job(source(), ["web"], catalog, options)
    [package] = [t for t in plan_first_version(big.source, big, catalog, options).tasks if t.kind == "package"]
    assert [v["name"] for v in package.params["variants"]] == ["hls-540"]
    # channels without a first version, and photos, are delivered once
    playout = plan_job(source(), ["tv", "radio"], catalog, URGENT)
    assert plan_first_version(playout.source, playout, catalog, URGENT) is None


def timed_source(seconds: float):
    return source(videos=(video(duration=seconds, frames=round(seconds * 25)),), audios=(audio(duration=seconds),),
                  duration=seconds)


def test_a_first_version_is_cut_into_a_chunk_per_encode_slot(catalog):
    """On a farm, a first version's pictures are cut into a chunk per encode slot (none shorter than
    first_version_chunk_s), then joined, gated and packaged as a long programme's; on one slot it is one encode."""
    clip = timed_source(60.0)
    full = plan_job(clip, ["web", "short"], catalog, URGENT)
    assert not [t for t in full.tasks if t.kind == "chunk"], "a 60 s clip is not long for the full delivery"
    whole = plan_first_version(clip, full, catalog, URGENT, slots=1)
    assert {t.kind for t in whole.tasks} == {"measure", "encode", "package", "verify", "deliver"}
    spread = plan_first_version(clip, full, catalog, URGENT, slots=4)
    chunks = [t for t in spread.tasks if t.kind == "chunk"]
    assert len(chunks) == 4 and not [t for t in spread.tasks if t.kind in ("analyze", "analyze_part")]
    cuts = sorted((c.params["start"], c.params["duration"]) for c in chunks)
    assert cuts == [(0, 16), (16, 14), (30, 14), (44, 16)], "as even as the 2 s GOP grid allows"
    for chunk in chunks:
        argv = " ".join(chunk.params["argv"])
        assert argv.count("ultrafast") == 2 and "sendcmd" not in argv
    joins = {t.params["outputs"][0]["profile"]: t for t in spread.tasks if t.kind == "join"}
    assert sorted(joins) == ["hls-720", "short-vertical"]
    assert all(len(j.deps) == 5 for j in joins.values()), "every chunk, and the one sound they share"
    [sound] = [t for t in spread.tasks if t.kind == "encode"]
    assert sound.params["argv"].count("128k") == 1
    assert not sound.heavy and all(c.heavy for c in chunks), "the sound beside the chunks, not after one of them"
    assert [t for t in whole.tasks if t.kind == "encode"][0].heavy
    [package] = [t for t in spread.tasks if t.kind == "package"]
    assert package.deps == (joins["hls-720"].id,)
    notes = [t.params["notes"][-1] for t in spread.tasks if t.kind == "deliver"]
    assert len(notes) == 2 and all("its pictures in 4 chunks side by side" in n for n in notes)
    assert all(t.id.startswith(full.asset_id + FIRST_VERSION_MARK + "/") for t in spread.tasks)
    # never more chunks than slots, whatever the clip's length; none shorter than first_version_chunk_s
    for seconds in (13.0, 37.4, 61.0, 119.96):
        for slots in (2, 3, 5, 7, 16):
            clip = timed_source(seconds)
            plan = plan_first_version(clip, plan_job(clip, ["web", "short"], catalog, URGENT), catalog, URGENT,
                                      slots)
            made = sorted(t.params["duration"] for t in plan.tasks if t.kind == "chunk")
            assert 2 <= len(made) <= slots and made[0] >= FarmConfig.first_version_chunk_s - 2, (seconds, slots)
            assert made[-1] - made[0] <= 4, ("even: each within a grid step of its share", seconds, slots)
    # a grid coarser than a share makes fewer, whole-grid chunks (one series: one decode each)
    assert [(c.start, c.end) for c in even_cuts(30.0, Fraction(10), 5)] == [(0, 10), (10, 20), (20, 30)]
    assert [(c.start, c.end) for c in even_cuts(13.0, Fraction(2), 2)] == [(0, 6), (6, 13)]
    # a long programme on few slots is cut into chunks no longer than chunk_s, as its full delivery is
    hour = timed_source(600.0)
    plan = plan_first_version(hour, plan_job(hour, ["web"], catalog, URGENT), catalog, URGENT, slots=2)
    assert sorted({t.params["duration"] for t in plan.tasks if t.kind == "chunk"}) == [60]
    # a clip shorter than two chunks is encoded whole, however many slots
    short = timed_source(11.0)
    plan = plan_first_version(short, plan_job(short, ["web"], catalog, URGENT), catalog, URGENT, slots=16)
    assert not [t for t in plan.tasks if t.kind == "chunk"]


def test_plan_shows_an_urgent_jobs_first_version_spread_over_the_slots_given(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", seconds=13, size="640x360")
    shown = CliRunner().invoke(cli, ["plan", str(src), "--channels", "web,short", "--urgent", "--slots", "3"])
    assert shown.exit_code == 0, shown.output
    first, full = [line for line in shown.output.splitlines() if line.startswith("asset ")]
    assert FIRST_VERSION_MARK in first and FIRST_VERSION_MARK not in full
    assert "its pictures in 2 chunks side by side" in shown.output, "13 s is two chunks of about 6 s at least"
    as_json = json.loads(CliRunner().invoke(cli, ["plan", str(src), "--channels", "web,short", "--urgent",
                                                  "--slots", "3", "--json"]).output)
    assert sum(t["kind"] == "chunk" for t in as_json["first_version"]["tasks"]) == 2
    assert not [t for t in as_json["plan"]["tasks"] if t["kind"] == "chunk"]
    playout = CliRunner().invoke(cli, ["plan", str(src), "--channels", "tv", "--urgent"])
    assert playout.exit_code == 0 and "no first version" in playout.output
    wrong = CliRunner().invoke(cli, ["plan", str(src), "--slots", "3"])
    assert wrong.exit_code != 0 and "--slots is for --urgent" in wrong.output and "Traceback" not in wrong.output


# ---------------------------------------------------------------------------------------------------------
# the storage backends: each version in its own folder, the older one removed after the new manifest


def _published(manifest: dict, version: int) -> dict:
    return {**manifest, "version": version, "first_version": version == 1}


def test_a_folder_takes_the_full_version_and_never_goes_back(tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    dest = tmp_path / "out" / "web" / "news-abababab"
    backend = backend_for(str(dest))
    first = json.loads(Path(backend.deliver(str(dest), files, _published(manifest, 1))).read_text())
    [v1] = [p.name for p in dest.iterdir() if p.is_dir()]
    assert first["folder"] == v1 and v1.startswith("v1-") and first["version"] == 1 and first["first_version"]
    assert all((dest / f["path"]).is_file() and f["path"].startswith(f"{v1}/") for f in first["files"])
    path = backend.deliver(str(dest), files, _published(manifest, 2))
    second = json.loads(Path(path).read_text())
    assert sorted(p.name for p in dest.iterdir()) == sorted(["manifest.json", second["folder"]])
    assert all(sha256(dest / f["path"]) == f["sha256"] for f in second["files"])
    # a first version finishing late (or run again) does not take the full one's place
    assert backend.deliver(str(dest), files, _published(manifest, 1)) == path
    assert json.loads(Path(path).read_text()) == second and (dest / second["folder"]).is_dir()


def test_s3_publishes_the_new_version_before_removing_the_old(store, tmp_path):  # noqa: F811
    files, manifest = fake_delivery(tmp_path / "files")
    dest = f"s3://{store.bucket}/web/news-abababab"
    backend = backend_for(dest, transfer())
    backend.deliver(dest, files, _published(manifest, 1))
    first = json.loads(store.read("web/news-abababab/manifest.json"))
    old = {k for k in store.listing("web/") if k.endswith(".m4s") or k.endswith(".mp4")}
    assert old and all(k.startswith(f"web/news-abababab/{first['folder']}/") for k in old)
    store.proxy.clear()
    backend.deliver(dest, files, _published(manifest, 2))
    second = json.loads(store.read("web/news-abababab/manifest.json"))
    seen = [(s.method, s.key, s.query) for s in store.proxy.seen if s.status in (200, 204)]
    puts = [i for i, (method, key, _) in enumerate(seen) if method == "PUT"]
    [manifest_put] = [i for i in puts if seen[i][1].endswith("manifest.json")]
    [removal] = [i for i, (method, _, query) in enumerate(seen) if method == "POST" and "delete" in query]
    assert max(puts) == manifest_put < removal, "every new object, then the manifest, then the old ones go"
    assert not [s for s in seen if s[0] == "DELETE"], "the manifest is never withdrawn"
    assert set(store.listing("web/")) == {"web/news-abababab/manifest.json",
                                           *(f"web/news-abababab/{f['path']}" for f in second["files"])}
    store.proxy.clear()
    backend.deliver(dest, files, _published(manifest, 1))
    assert store.proxy.object_puts() == [] and json.loads(store.read("web/news-abababab/manifest.json")) == second


# ---------------------------------------------------------------------------------------------------------
# end to end


def version_of(read: Callable[[], bytes]) -> int:
    try:
        return int(json.loads(read()).get("version") or 0)
    except Exception:  # not there yet
        return 0


def materialise(manifest: dict, fetch: Callable[[str], bytes], folder: Path) -> Path:
    """Every file the manifest lists, fetched while it is published, checked against its SHA-256."""
    for f in manifest["files"]:
        data = fetch(f["path"])
        target = folder / f["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        assert sha256(target) == f["sha256"] and len(data) == f["size"], f["path"]
    return folder / manifest["folder"]


def frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def check_first_version(manifest: dict, files: Path, channel: str, pictures: int = FRAMES) -> None:
    """A first version as a player finds it: marked, and every picture decodable."""
    assert manifest["version"] == 1 and manifest["first_version"] is True
    assert "first version" in manifest["notes"][-1] and all(c["passed"] for c in manifest["checks"])
    if channel == "short":
        assert [f["path"].split("/", 1)[1] for f in manifest["files"]] == ["short-vertical.mp4"]
        assert frames(files / "short-vertical.mp4") == pictures
        return
    assert frames(files / "web-hls.mp4") == pictures
    master = (files / "web-hls" / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == 1 and "hls-360/index.m3u8" in master
    rung = files / "web-hls" / "hls-360"
    joined = files / "rung.mp4"
    joined.write_bytes(b"".join(p.read_bytes() for p in [rung / "init.mp4", *sorted(rung.glob("segment_*.m4s"))]))
    assert frames(joined) == pictures


def test_a_full_delivery_replaces_the_first_and_a_failed_one_leaves_it(store, tmp_path):  # noqa: F811
    """web goes to S3, short to a folder; once the first version of both is out, the store refuses every write:
    short's full-quality delivery replaces its first version, web's fails and its first version stays."""
    src = make_clip(tmp_path / "in" / "breaking.mp4", seconds=SECONDS, size="640x360")
    asset = asset_id_for(probe(str(src)))
    folder = tmp_path / "nas" / "short"
    config = _config(tmp_path, work_dir=str(tmp_path / "work"), s3_retry_window_s=0.0)
    argv = [sys.executable, "-m", "onetake.cli", "run", "--urgent", str(src), "--channels", "web,short", "--out",
            str(tmp_path / "out"), "--dest", f"web=s3://{store.bucket}/web", "--dest", f"short={folder}",
            "--config", str(config), "--workers", "1", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    web_key, short_manifest = f"web/{asset}/manifest.json", folder / asset / "manifest.json"
    try:
        wait_for(lambda: version_of(lambda: store.read(web_key)) and version_of(short_manifest.read_bytes)
                 or proc.poll() is not None, 180)
        assert proc.poll() is None, proc.communicate()
        store.proxy.fail_puts = 10 ** 6  # the store goes down
        web = json.loads(store.read(web_key))
        short = json.loads(short_manifest.read_text())
        web_files = materialise(web, lambda p: store.read(f"web/{asset}/{p}"), tmp_path / "seen" / "web")
        short_files = materialise(short, lambda p: (folder / asset / p).read_bytes(), tmp_path / "seen" / "short")
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    check_first_version(web, web_files, "web")
    check_first_version(short, short_files, "short")
    # the first version encoded with the computed gain, no trial encode before it
    [quick] = (tmp_path / "work").rglob("loudness/*-0.json")
    assert [sorted(t) for t in json.loads(quick.read_text())["targets"]] == [["ceiling_db", "gain_db", "release_ms"]]
    assert proc.returncode == 1, err
    summary = json.loads(out)
    result = {c["channel"]: c for c in summary["sources"][0]["channels"]}
    # short: the full-quality version, and nothing of the first left
    assert result["short"]["error"] is None and result["short"]["manifest"] == str(short_manifest)
    full = json.loads(short_manifest.read_text())
    assert full["version"] == 2 and full["first_version"] is False
    assert sorted(p.name for p in (folder / asset).iterdir()) == sorted(["manifest.json", full["folder"]])
    assert {f["path"].split("/", 1)[1] for f in full["files"]} == {"short-vertical.mp4", "short-cover.jpg",
                                                                   "report.html"}
    assert all(sha256(folder / asset / f["path"]) == f["sha256"] for f in full["files"])
    # web: its first version as it was, every object in place, and one line that says so
    assert json.loads(store.read(web_key)) == web
    assert set(store.listing(f"web/{asset}/")) == {web_key, *(f"web/{asset}/{f['path']}" for f in web["files"])}
    assert result["web"]["error_type"] == "StorageError" and result["web"]["manifest"] == f"s3://{store.bucket}/{web_key}"
    line = result["web"]["error"]
    assert line.startswith("the full-quality delivery failed (") and "\n" not in line
    assert line.endswith(f"its first version stays published (s3://{store.bucket}/{web_key})")
    [failed] = [x for x in err.splitlines() if x.startswith("FAILED")]
    assert failed == f"FAILED {src}: web: {line}" and "Traceback" not in err
    assert ACCESS_KEY not in out + err and SECRET_KEY not in out + err


def test_a_first_version_spread_over_two_workers_keeps_every_picture_and_the_sound_in_sync(tmp_path):
    """Two workers, two encode slots: the first version's pictures are made in two chunks side by side, joined
    through the sync gate; published, it shows every flash once, each beep on its flash, before the full version
    replaces it."""
    src = make_flash_beep(tmp_path / "flash-beep.mp4", 12, size="640x360", gop=50)
    asset = asset_id_for(probe(str(src)))
    config = tmp_path / "farm.toml"
    config.write_text(f"[farm]\nfirst_version_chunk_s = 4\nwork_dir = '{tmp_path / 'work'}'\n")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "onetake.cli", "run", "--urgent", str(src), "--channels", "web,short", "--out",
            str(out), "--config", str(config), "--workers", "2", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifests = {c: out / c / asset / "manifest.json" for c in ("web", "short")}
    try:
        wait_for(lambda: all(version_of(m.read_bytes) for m in manifests.values()) or proc.poll() is not None, 180)
        assert proc.poll() is None, proc.communicate()
        firsts = {c: json.loads(m.read_text()) for c, m in manifests.items()}
        seen = {c: materialise(m, lambda p, c=c: (out / c / asset / p).read_bytes(), tmp_path / "seen" / c)
                for c, m in firsts.items()}
        out_text, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    for channel, manifest in firsts.items():
        check_first_version(manifest, seen[channel], channel, pictures=300)
        assert "its pictures in 2 chunks side by side" in manifest["notes"][-1]
    for made in (seen["web"] / "web-hls.mp4", seen["short"] / "short-vertical.mp4"):
        flashes, beeps = flashes_and_beeps(made)  # the join at 6 s: no picture lost or repeated, no drift
        assert [round(t, 3) for t in flashes] == [float(s) for s in range(12)], made.name
        offsets = [round((b - f) * 1000, 2) for f, b in zip(flashes, beeps)]
        assert len(beeps) == 12 and all(abs(o) <= 1.0 for o in offsets), (made.name, offsets)
    assert proc.returncode == 0, err
    for channel, manifest in manifests.items():
        full = json.loads(manifest.read_text())
        assert full["version"] == 2 and sorted(p.name for p in manifest.parent.iterdir()) == sorted(
            ["manifest.json", full["folder"]]), "the first version's files went"
    work = tmp_path / "work"
    assert not list((work / "chunks").iterdir()) and not list(work.rglob("*.partial")), "no chunk left behind"


def test_the_urgent_lane_of_a_watch_folder_publishes_first_then_replaces_it(store, tmp_path, watchers):  # noqa: F811
    """An urgent inbox delivering to S3: the first version of web and short, then the full one in its place."""
    clip = make_clip(tmp_path / "clips" / "flash.mp4", seconds=SECONDS, size="640x360")
    asset = asset_id_for(probe(str(clip)))
    inbox = tmp_path / "urgent"
    inbox.mkdir()
    w = watchers(str(inbox), "--lane", "urgent", "--channels", "web,short", "--out", f"s3://{store.bucket}/news",
                 "--config", str(_config(tmp_path, work_dir=str(tmp_path / "work"))))
    w.wait_ready()
    keys = {c: f"news/{c}/{asset}/manifest.json" for c in ("web", "short")}
    drop(clip, inbox)
    wait_for(lambda: all(version_of(lambda k=k: store.read(k)) for k in keys.values()) or w.proc.poll() is not None,
             120, w.text)
    firsts = {c: json.loads(store.read(k)) for c, k in keys.items()}
    for channel, manifest in firsts.items():
        files = materialise(manifest, lambda p, c=channel: store.read(f"news/{c}/{asset}/{p}"),
                            tmp_path / "seen" / channel)
        check_first_version(manifest, files, channel)
        assert manifest["metadata"]["lane"] == "urgent"
    wait_for(lambda: [j.state for j in w.jobs()] == ["delivered"], 180, w.text)
    for channel, key in keys.items():
        full = json.loads(store.read(key))
        assert full["version"] == 2 and full["folder"] != firsts[channel]["folder"]
        assert set(store.listing(f"news/{channel}/{asset}/")) == {
            key, *(f"news/{channel}/{asset}/{f['path']}" for f in full["files"])}, "the first version's files went"
    [job] = w.jobs()
    assert job.lane == "urgent" and sorted(job.manifests) == sorted(f"s3://{store.bucket}/{k}" for k in keys.values())
    assert "published the first version of job" in w.text()
    assert stop(w) == 0


@pytest.mark.heavy
def test_the_urgent_benchmark_writes_its_figures(tmp_path):
    output = tmp_path / "urgent.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "urgent", "--seconds", "3", "--variants",
                             "expert,onetake", "--work", str(tmp_path / "work"), "--output", str(output)],
                            cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = json.loads(output.read_text())
    expert, onetake = data["runs"]["expert"], data["runs"]["onetake"]
    assert abs(data["first_publish_vs_duration"] - onetake["first_publish_s"] / data["source"]["duration_s"]) < 0.002
    assert abs(data["onetake_vs_expert"] - onetake["first_publish_s"] / expert["first_publish_s"]) < 0.002
    for channel in ("web", "short"):
        assert 0 < onetake["published"][channel]["1"] < onetake["published"][channel]["2"]
        assert onetake["versions"][channel]["1"]["checks_passed"]
    assert expert["verified"]["outputs_checked"] == 4 and "loudnorm" in " ".join(expert["command"])
