"""Chunked encoding of long programmes: where the plan cuts, that the sound is made once, and, with the real ffmpeg,
that the joined outputs keep every picture and the sound in sync to the millisecond at every join, pass the checks
every output passes (``onetake verify``), and that the sync gate catches a chunk that starts on the wrong picture."""

from __future__ import annotations

import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from media import flashes_and_beeps, make_flash_beep
from onetake.cli import cli
from onetake.pipeline.config import FarmConfig
from onetake.pipeline.errors import VerificationError
from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.pipeline.plan.geometry import gop_frames
from onetake.pipeline.plan.params import TaskKind
from onetake.pipeline.plan.urgent import plan_first_version
from onetake.pipeline.probe import probe
from onetake.pipeline.profiles import load_catalog
from onetake.workers.join import chunk_made_as, encode_again, series_lock
from onetake.workers.tasks import run_task
from test_plan import audio, source, video

LONG = 600.0
FARM = FarmConfig(chunk_min_s=120, chunk_s=60)
OPTIONS = PlanOptions(out_dir="/srv/out", work_dir="/srv/out/.onetake", encoder_version="ffmpeg 9.0.2", farm=FARM)


def long_source(seconds: float = LONG, **changes):
    return source(videos=(video(duration=seconds, frames=round(seconds * 25), **changes),),
                  audios=(audio(duration=seconds),), duration=seconds)


def tasks_of(plan, kind: TaskKind):
    return [t for t in plan.tasks if t.kind == kind]


def test_a_long_programme_is_cut_on_every_renditions_gop_grid_and_its_sound_made_once(catalog):
    plan = plan_job(long_source(), ["tv", "web", "edit"], catalog, OPTIONS)
    chunks, joins = tasks_of(plan, TaskKind.CHUNK), tasks_of(plan, TaskKind.JOIN)
    assert len(chunks) == 10 and all(t.heavy for t in chunks)
    sounds = {f"{plan.asset_id}/encode/sound-{p}": p for p in ("tv-hd-xdcam422", "hls-1080", "edit-proxy")}
    sound_of = {"tv-hd-xdcam422": "tv-hd-xdcam422", "edit-proxy": "edit-proxy",
                **{f"hls-{h}": "hls-1080" for h in (1080, 720, 540, 360)}}
    # a join per rendition, after every chunk and its own sound only: on a farm they run side by side
    assert sorted(j.id for j in joins) == sorted(f"{plan.asset_id}/join/{p}" for p in sound_of)
    starts = sorted(Fraction(str(t.params["start"])) for t in chunks)
    for join in joins:
        [r] = join.params["renditions"]
        profile = join.id.rsplit("/", 1)[1]
        assert join.deps == (*sorted(t.id for t in chunks), f"{plan.asset_id}/encode/sound-{sound_of[profile]}")
        assert sum(_frames(t, r["key"]) for t in chunks) == r["frames"] == 15000
        if r["gop"]:  # every cut starts a GOP (for HLS, a 2 s segment) of every rendition
            assert all(s * Fraction(r["rate"]) % r["gop"] == 0 for s in starts)
        assert r["sound"].endswith(f"/{sound_of[profile]}-sound.mov")
        # the series' chunk folder and its references are shared, each join's scratch is its own
        assert join.params["series"] == os.path.dirname(chunks[0].params["final"])
        assert len(join.params["series_outputs"]) == 6 + 2 and r["key"] in join.params["scratch"]  # + poster, sprite
        assert all(ref["files"][r["key"]].startswith(f"{join.params['series']}/references/")
                   for ref in join.params["references"])
    # a sound encode per loudness target, each waiting for that target's measure only (no analysis); the edit
    # proxy's sound is not normalised and waits for nothing
    made = {}
    for sound_id, first in sounds.items():
        sound = plan.task(sound_id)
        assert sound.deps == ((f"{plan.asset_id}/measure/{first}",) if first != "edit-proxy" else ())
        made[first] = [o["profile"] for o in sound.params["outputs"]]
    # the ladder's rungs sound alike (codec, bitrate, loudness): one sound, encoded once, serves them all
    assert made == {"tv-hd-xdcam422": ["tv-hd-xdcam422-sound"], "edit-proxy": ["edit-proxy-sound"],
                    "hls-1080": ["hls-1080-sound"]}
    for chunk in chunks:  # pictures only, from a seek before the chunk, on the programme's clock
        argv = chunk.params["argv"]
        graph = argv[argv.index("-filter_complex") + 1]
        assert "[0:1]" not in graph and "fps=25/1:start_time=" in graph and "setpts=PTS-STARTPTS" in graph
        if chunk.params["start"]:
            assert float(argv[argv.index("-ss") + 1]) == chunk.params["start"] - 2.0
    assert [t.params["duration"] for t in chunks] == sorted((t.params["duration"] for t in chunks), reverse=True)
    mpeg2 = next(r for j in joins for r in j.params["renditions"] if r["chunks"][0].endswith(".m2v"))
    assert mpeg2["method"] == "bytes" and "-metadata" in mpeg2["argv"] and "timecode=10:00:00:00" in mpeg2["argv"]


def _frames(task, key: str) -> int:
    argv = task.params["argv"]
    at = next(i for i, a in enumerate(argv) if a.endswith(f"/{key}.mp4") or a.endswith(f"/{key}.m2v"))
    return int(argv[argv.index("-frames:v", at - 40) + 1])


def test_the_cut_grid_is_the_least_common_multiple_of_the_gops(catalog):
    plan = plan_job(long_source(), ["tv", "web"], catalog, OPTIONS)
    starts = sorted(t.params["start"] for t in tasks_of(plan, TaskKind.CHUNK))
    tv, web = catalog.profile("tv-hd-xdcam422").video, catalog.profile("hls-720").video
    grid = max(gop_frames(tv, Fraction(25)) / 25, gop_frames(web, Fraction(25)) / 25)
    assert grid == 2.0 and all(s % 12 == 0 for s in starts)  # 0.48 s and 2 s: a cut every 12 s at most
    assert starts[1] == 60.0


@pytest.mark.parametrize("changes, why", [({}, "short"), ({"retimed": True}, "its pictures are counted, not timed")])
def test_what_is_not_chunked(catalog, changes, why):
    seconds = 100.0 if why == "short" else LONG
    plan = plan_job(long_source(seconds, **changes), ["web"], catalog, OPTIONS)
    assert not tasks_of(plan, TaskKind.CHUNK) and not tasks_of(plan, TaskKind.JOIN), why


def test_the_sound_is_made_whole_and_the_stills_ride_along_the_chunks(catalog):
    plan = plan_job(long_source(), ["web", "radio"], catalog, OPTIONS)
    assert f"{plan.asset_id}/encode" not in {t.id for t in plan.tasks}  # no decode of the whole for the stills
    sound = [o["profile"] for t in tasks_of(plan, TaskKind.ENCODE) if "/encode/sound-" in t.id
             for o in t.params["outputs"]]
    assert {"radio-bwf", "podcast-mp3", "podcast-aac", "hls-1080-sound"} <= set(sound)
    chunks = tasks_of(plan, TaskKind.CHUNK)
    [join] = [j for j in tasks_of(plan, TaskKind.JOIN) if j.params["stills"]]  # the first rendition's join
    sprite = catalog.profile("web-sprite").sprite
    thumbnails = {}  # each chunk makes the sprite's thumbnails that lie in it, raw, and one of them the poster
    posters = []
    for chunk in chunks:
        argv = chunk.params["argv"]
        nut = next(i for i, a in enumerate(argv) if a.endswith(".nut"))
        thumbnails[chunk.params["start"]] = int(argv[argv.index("-frames:v", nut - 8) + 1])
        posters += [a for a in argv if a.endswith(".jpg")]
    assert sum(thumbnails.values()) == LONG / sprite.interval_seconds
    assert all(n == chunk.params["duration"] / sprite.interval_seconds
               for n, chunk in zip(thumbnails.values(), chunks))
    assert len(posters) == 1 and chunks[0].params["argv"].count(posters[0]) == 0  # the one at 10 %: in the second chunk
    stills = {s["key"]: s for s in join.params["stills"]}
    assert {o["profile"] for o in join.params["outputs"]} >= {"web-poster", "web-sprite"}
    assert sorted(len(s["parts"]) for s in stills.values()) == [1, 10] and plan.task(
        f"{plan.asset_id}/verify/web-poster").deps == (join.id,)
    assert plan == plan_job(long_source(), ["web", "radio"], catalog, OPTIONS)


@pytest.fixture(scope="module")
def small_profiles(tmp_path_factory) -> Path:
    """The playout MXF and the 9:16 short as shipped but at small rasters, so that a test can afford them."""
    folder = tmp_path_factory.mktemp("profiles")
    shipped = Path(__file__).parents[1] / "onetake/profiles"
    for name, (width, height, kbps) in {"tv-hd-xdcam422": (720, 576, 15000),
                                        "short-vertical": (272, 480, 800)}.items():
        text = (shipped / f"{name}.toml").read_text()
        for key, value in (("width", width), ("height", height), ("bitrate_kbps", kbps)):
            text = "\n".join(f"{key} = {value}" if line.split("=")[0].strip() == key else line
                             for line in text.splitlines())
        (folder / f"{name}.toml").write_text(text + "\n")
    return folder


def run(src: Path, out: Path, profiles: Path, chunk_min_s: float, channels: str) -> dict:
    config = out.parent / f"{out.name}.toml"
    config.write_text(f"[farm]\nchunk_min_s = {chunk_min_s}\nchunk_s = 4\n")
    result = CliRunner().invoke(cli, ["run", str(src), "--out", str(out), "--channels", channels, "--profiles",
                                      str(profiles), "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_joined_chunks_keep_every_picture_and_the_sound_in_sync_at_every_join(tmp_path, small_profiles):
    src = make_flash_beep(tmp_path / "flash-beep.mp4", 12)
    summary = run(src, tmp_path / "chunked", small_profiles, 10, "web,tv,short")
    assert [c["channel"] for c in summary["sources"][0]["channels"] if c["manifest"]] == ["web", "tv", "short"]
    for name in ("web/*/web-hls.mp4", "tv/*/tv-hd-xdcam422.mxf", "short/*/short-vertical.mp4"):
        [made] = (tmp_path / "chunked").glob(name)
        flashes, beeps = flashes_and_beeps(made)
        # joins at 4 s and 8 s: a flash on every whole second, none lost or repeated, each beep on its flash
        assert [round(t, 3) for t in flashes] == [float(s) for s in range(12)], name
        offsets = [round((b - f) * 1000, 2) for f, b in zip(flashes, beeps)]
        assert len(beeps) == 12 and all(abs(o) <= 1.0 for o in offsets), (name, offsets)
        assert _frames_in(made) == 300
        manifest = json.loads((made.parent / "manifest.json").read_text())
        profile = next(f["profile"] for f in manifest["files"] if f["path"] == made.name)
        ok = CliRunner().invoke(cli, ["verify", str(made), "--profile", profile, "--profiles", str(small_profiles)])
        assert ok.exit_code == 0, ok.output
    [hls] = (tmp_path / "chunked").glob("web/*/web-hls")
    verify = CliRunner().invoke(cli, ["verify", str(hls), "--profile", "web-hls", "--source", str(src)])
    assert verify.exit_code == 0, verify.output
    work = tmp_path / "chunked" / ".onetake"
    assert not list((work / "chunks").iterdir()), "joined chunks are removed from the store"
    assert not list(work.rglob("*.partial"))


def test_stills_made_by_the_chunks_are_the_whole_decodes_to_the_byte(tmp_path, small_profiles):
    """The poster and the sprite's sheets of a chunked programme (the thumbnails at 5 s and 10 s from chunks that
    seek) are the files the one decode of the whole programme makes."""
    src = make_flash_beep(tmp_path / "flash-beep.mp4", 12)
    made = {}
    for name, chunk_min_s in (("chunked", 10), ("whole", 3600)):
        run(src, tmp_path / name, small_profiles, chunk_min_s, "web")
        [delivered] = (tmp_path / name / "web").iterdir()
        made[name] = {p.relative_to(delivered).as_posix(): p.read_bytes() for p in delivered.rglob("*.jpg")}
    assert sorted(made["chunked"]) == ["web-poster.jpg", "web-sprite/sprite-001.jpg"]
    assert made["chunked"] == made["whole"]
    # run again: what was joined is reused, and no chunk is encoded again (nor left behind)
    work = tmp_path / "chunked" / ".onetake"
    before = {p: p.stat().st_mtime_ns for p in (work / "renditions").rglob("*") if p.is_file()}
    run(src, tmp_path / "chunked", small_profiles, 10, "web")
    assert {p: p.stat().st_mtime_ns for p in (work / "renditions").rglob("*") if p.is_file()} == before
    assert not list((work / "chunks").iterdir())


def _frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)


def _run_until(plan, stop_kind: TaskKind) -> dict:
    results: dict = {}
    for task in plan.tasks:
        if task.kind == stop_kind:
            break
        results[task.id] = run_task(task.kind, task.params, {d: results[d] for d in task.deps})
    return results


def _shifted(params: dict, frames: int) -> dict:
    """A chunk's params made to start ``frames`` pictures late: the fault a wrong seek would cause."""
    argv = list(params["argv"])
    at = next(i for i, a in enumerate(argv) if "start_time=" in a)
    start = params["start"]
    argv[at] = argv[at].replace(f"start_time={start:.6f}", f"start_time={start + frames / 25:.6f}")
    return {**params, "argv": argv}


def test_the_sync_gate_encodes_a_chunk_that_starts_on_the_wrong_picture_again(tmp_path):
    src = make_flash_beep(tmp_path / "flash-beep.mp4", 12, gop=50)
    options = PlanOptions(out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work"),
                          farm=FarmConfig(chunk_min_s=10, chunk_s=4))
    plan = plan_job(probe(str(src)), ["edit"], load_catalog(), options)
    results = _run_until(plan, TaskKind.JOIN)
    [join] = tasks_of(plan, TaskKind.JOIN)
    second = next(t for t in tasks_of(plan, TaskKind.CHUNK) if t.params["index"] == 1)
    wrong = _shifted(second.params, 2)
    shutil.rmtree(second.params["final"])
    run_task("chunk", wrong)  # made two pictures late, as a bad seek would
    made_wrong_again = {**results, second.id: {**results[second.id], "params": wrong}}
    with pytest.raises(VerificationError, match="still fail the sync gate.*picture 100 .* is the source's "
                                                "picture \\+2"):
        run_task("join", join.params, {d: made_wrong_again[d] for d in join.deps})
    assert not any(Path(o["final"]).exists() or Path(o["partial"]).exists() for o in join.params["outputs"])

    result = run_task("join", join.params, {d: results[d] for d in join.deps})  # the chunk is still wrong
    assert [g["chunk"] for g in result["gate"]] == [1, 1]  # its first picture and its last
    assert "picture 100 (at 4.000 s, beside a join) is the source's picture +2" in result["gate"][0]["problem"]
    [made] = [Path(o["final"]) / "edit-proxy.mp4" for o in join.params["outputs"]]
    flashes, beeps = flashes_and_beeps(made)
    assert [round(t, 3) for t in flashes] == [float(s) for s in range(12)]
    assert all(abs(b - f) <= 0.001 for f, b in zip(flashes, beeps))


def test_a_chunk_made_again_for_one_join_serves_the_other_joins_of_its_series(tmp_path):
    """Each rendition of a series has its own join; a chunk the first join's gate refuses is made again once,
    swapped in whole, and the other joins use it (a join that read the old one does not make it a third time)."""
    src = make_flash_beep(tmp_path / "flash-beep.mp4", 12, gop=50)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "channels.toml").write_text('[edit]\ndescription = "editors"\nprofiles = ["edit-proxy", "hls-360"]\n')
    options = PlanOptions(out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work"),
                          farm=FarmConfig(chunk_min_s=10, chunk_s=4))
    plan = plan_job(probe(str(src)), ["edit"], load_catalog(profiles), options)
    results = _run_until(plan, TaskKind.JOIN)
    first, other = tasks_of(plan, TaskKind.JOIN)
    assert first.params["series"] == other.params["series"]
    second = next(t for t in tasks_of(plan, TaskKind.CHUNK) if t.params["index"] == 1)
    shutil.rmtree(second.params["final"])
    run_task("chunk", _shifted(second.params, 2))  # both renditions' pictures two late
    stale = chunk_made_as(second.params["final"])
    [key] = [r["key"] for r in first.params["renditions"]]
    killed = Path(first.params["references"][0]["files"][key])
    killed.parent.mkdir(parents=True)
    killed.write_bytes(bytes(100))  # what a reference decode killed midway left: made again, not read

    made = run_task("join", first.params, {d: results[d] for d in first.deps})
    assert [g["chunk"] for g in made["gate"]] == [1, 1]
    fixed = chunk_made_as(second.params["final"])
    assert fixed != stale
    encode_again(second.params, stale, series_lock(other.params))  # a join that had read the wrong chunk asks
    assert chunk_made_as(second.params["final"]) == fixed, "made a third time"
    assert Path(first.params["series"]).is_dir(), "the other rendition still needs the chunks"

    joined = run_task("join", other.params, {d: results[d] for d in other.deps})
    assert joined["gate"] == []
    for join in (first, other):
        [out] = [Path(o["final"]) for o in join.params["outputs"]]
        [made_file] = out.iterdir()
        flashes, _ = flashes_and_beeps(made_file)
        assert [round(t, 3) for t in flashes] == [float(s) for s in range(12)]
    assert not Path(first.params["series"]).exists(), "every rendition joined: the chunks are removed"


def test_a_chunked_rendition_keeps_its_profile(catalog):
    """The whole-programme sound of a chunked rendition is the rendition's: same codec, tracks and loudness."""
    plan = plan_job(long_source(), ["tv"], catalog, OPTIONS)
    whole = plan.task(f"{plan.asset_id}/encode/sound-tv-hd-xdcam422").params["argv"]
    sound = next(a for a in whole if a.endswith("tv-hd-xdcam422-sound.mov"))
    at = whole.index(sound)
    assert "pcm_s24le" in whole[at - 12:at] and whole[at - 14:at].count("-map") == 2  # two mono tracks


@pytest.mark.parametrize("profile, kept, method", [("tv-hd-xdcam422", ".m2v", "bytes"),
                                                    ("tv-hd-avci100", ".h264", "bytes"),
                                                    ("tv-sd-imx50", ".m2v", "bytes"), ("hls-720", ".mp4", "concat")])
def test_each_encoder_keeps_its_chunks_the_way_they_join(catalog, tmp_path, profile, kept, method):
    """Long-GOP H.264 in MP4 (timestamps kept for its B-frames), the rest as elementary streams (AVC-Intra's
    encoder writes no separate headers, which MP4 needs)."""
    (tmp_path / "channels.toml").write_text(f'[tv]\ndescription = "playout"\nprofiles = ["{profile}"]\n')
    plan = plan_job(long_source(), ["tv"], load_catalog(tmp_path), OPTIONS)
    [join] = tasks_of(plan, TaskKind.JOIN)
    [r] = join.params["renditions"]
    assert r["method"] == method and all(c.endswith(kept) for c in r["chunks"])


def test_the_progress_view_shows_a_chunked_rendition_as_far_as_all_its_chunks(catalog):
    from onetake.console import ProgressView

    plan = plan_job(long_source(), ["edit"], catalog, OPTIONS)
    view = ProgressView([plan])
    chunks = tasks_of(plan, TaskKind.CHUNK)
    [join] = tasks_of(plan, TaskKind.JOIN)
    [row] = view.rows[join.id]
    assert view.progress.tasks[row].description.endswith("edit-proxy  (10 chunks)")
    view.on_progress(chunks[0].id, 1.0)
    view.on_progress(chunks[1].id, 0.5)
    assert view.progress.tasks[row].completed == pytest.approx(90 * 1.5 / 10)
    sound = view.rows[f"{plan.asset_id}/encode/sound-edit-proxy"]
    assert not sound, "a rendition's sound has no row of its own"


def test_a_long_programme_is_analysed_in_stretches_as_long_as_its_chunks_on_any_worker(catalog):
    plan = plan_job(long_source(), ["short", "edit"], catalog, OPTIONS)
    parts = tasks_of(plan, TaskKind.ANALYZE_PART)
    [analysis] = tasks_of(plan, TaskKind.ANALYZE)
    pictures = sorted((t.params for t in parts if t.params["part"] == "pictures"), key=lambda p: p["index"])
    assert len(pictures) == 10 and all(t.heavy and not t.deps for t in parts)
    assert [p["part"] for p in (t.params for t in parts)].count("sound") == 1
    assert set(analysis.deps) == {t.id for t in parts}
    # consecutive stretches: each starts where the one before ends, half a picture before its first picture
    assert pictures[0]["start"] is None and pictures[-1]["end"] is None
    assert all(a["end"] == b["start"] == pytest.approx(60 * b["index"] - 0.02) for a, b in zip(pictures, pictures[1:]))
    # the short's chunks wait for the joined analysis (its crop path), the others for nothing of it
    chunks = tasks_of(plan, TaskKind.CHUNK)
    assert {analysis.id in t.deps for t in chunks} == {True, False}
    # a programme under chunk_min_s is one decode, and so is a first version's (which has none)
    assert not tasks_of(plan_job(long_source(100), ["short"], catalog, OPTIONS), TaskKind.ANALYZE_PART)
    first = plan_first_version(plan.source, plan, catalog, OPTIONS)
    assert first is not None and not {TaskKind.ANALYZE, TaskKind.ANALYZE_PART} & {t.kind for t in first.tasks}


def test_a_chunked_programmes_sound_is_its_measures_chosen_trial(catalog):
    """A lossy target whose sound is an encode of its own has that encode as its trial (writing into the trial's
    folder, placeholders numbered as the trial's); the measure keeps the chosen round's file for it. A PCM target's
    trial stays a meter (nothing to keep), and so does a target whose encode makes more than its sound."""
    plan = plan_job(long_source(), ["web", "radio", "short", "tv"], catalog, OPTIONS)
    sounds = [t for t in tasks_of(plan, TaskKind.ENCODE) if "/encode/sound-" in t.id]
    kept = 0
    for encode in sounds:
        [measure] = [plan.task(d) for d in encode.deps if plan.task(d).kind == TaskKind.MEASURE] or [None]
        if measure is None or not measure.params["targets"][0]["lossy"] or len(encode.params["outputs"]) > 1:
            assert measure is None or "keep" not in measure.params, encode.id
            continue
        kept += 1
        [index] = measure.params["indices"]
        [output] = encode.params["outputs"]
        trial = measure.params["trial"]
        made = next(w for w in encode.params["argv"] if w.startswith(f"file:{output['partial']}/"))
        keep = measure.params["keep"]
        assert keep["file"] == f"target-0.{made.rsplit('.', 1)[1]}"
        assert [w.replace(f"file:{{scratch}}/{keep['file']}", "OUT") for w in trial] == [
            w.replace(made, "OUT").replace(f"_{index}}}", "_0}") for w in encode.params["argv"]]
        assert keep["prefix"] == measure.params["cache"].removesuffix(".json") + ".kept"
    assert kept == 4  # podcast MP3 and AAC, the ladder's sound, the short's
    [pcm] = [t for t in tasks_of(plan, TaskKind.MEASURE) if not t.params["targets"][0]["lossy"]]
    assert "keep" not in pcm.params and "null" in pcm.params["trial"]


def test_the_sound_encode_takes_the_kept_trial_which_is_what_it_would_make(tmp_path):
    """The sound a chunked programme's encode takes from its measure is, to the byte, what running that encode
    makes; once taken it is gone from the loudness folder, and an encode that finds it gone makes the sound. A kept
    file is named by the argv that made it: an encode with another setting does not take it."""
    src = make_flash_beep(tmp_path / "flash-beep.mp4", 12, gop=50)
    options = PlanOptions(out_dir=str(tmp_path / "out"), work_dir=str(tmp_path / "work"),
                          farm=FarmConfig(chunk_min_s=10, chunk_s=4))
    plan = plan_job(probe(str(src)), ["short"], load_catalog(), options)
    [encode] = [t for t in tasks_of(plan, TaskKind.ENCODE) if "/encode/sound-" in t.id]
    [measure] = [plan.task(d) for d in encode.deps]
    results = {measure.id: run_task(measure.kind, measure.params)}
    loudness = Path(measure.params["cache"]).parent
    [kept] = loudness.glob("*.kept-*")
    assert [p.name for p in loudness.iterdir() if p.name.startswith(".trial-")] == []
    [final] = [Path(o["final"]) for o in encode.params["outputs"]]

    louder = {measure.id: {**results[measure.id], "targets": [
        {**results[measure.id]["targets"][0], "gain_db": results[measure.id]["targets"][0]["gain_db"] + 1}]}}
    assert "kept_trial" not in run_task(encode.kind, encode.params, louder) and kept.is_file()
    shutil.rmtree(final)

    taken = run_task(encode.kind, encode.params, results)
    assert taken["kept_trial"] and not kept.exists()
    [sound] = final.iterdir()
    trial = sound.read_bytes()
    shutil.rmtree(final)
    made = run_task(encode.kind, encode.params, results)  # the kept file is gone: the encode makes the sound
    assert "kept_trial" not in made and (final / sound.name).read_bytes() == trial
    assert not list(Path(options.work_dir).rglob("*.partial"))
