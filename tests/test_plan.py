"""Pure planning: SourceInfo x channels x profiles -> JobPlan, compared with ==, no subprocess."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction

import pytest

from onetake.pipeline.errors import PlanError
from onetake.pipeline.models import AudioStreamInfo, JobPlan, SourceInfo, Task, VideoStreamInfo
from onetake.pipeline.plan import PlanOptions, analysis_key, asset_id_for, plan_job
from onetake.pipeline.plan.geometry import follow_window, geometry, output_rate
from onetake.pipeline.plan.graph import OVERLAY

OPTIONS = PlanOptions(out_dir="/srv/out", work_dir="/srv/out/.onetake", encoder_version="ffmpeg 9.0.2")


def video(**kw) -> VideoStreamInfo:
    base = dict(index=0, codec="h264", width=1920, height=1080, sar="1:1", rotation=0, frame_rate="25/1",
                variable_frame_rate=False, scan="progressive", scan_basis="flag", pix_fmt="yuv420p",
                color_primaries="bt709", color_transfer="bt709", color_matrix="bt709", color_range="tv",
                start_time=0.0, duration=10.0, frames=250)
    return VideoStreamInfo(**{**base, **kw})


def audio(**kw) -> AudioStreamInfo:
    base = dict(index=1, codec="aac", channels=2, layout="stereo", sample_rate=48000, start_time=0.0,
                duration=10.0, language="und", default=True)
    return AudioStreamInfo(**{**base, **kw})


def source(name="news.mp4", videos=(video(),), audios=(audio(),), **kw) -> SourceInfo:
    base = dict(path=f"/media/in/{name}", size=1000, sha256="ab" * 32, modified="2026-11-26", format="mov",
                format_long="QuickTime / MOV", duration=10.0, start_time=0.0, timecode="", video=tuple(videos),
                audio=tuple(audios))
    return SourceInfo(**{**base, **kw})


def encode_graph(plan: JobPlan) -> str:
    argv = plan.task(f"{plan.asset_id}/encode").params["argv"]
    return argv[argv.index("-filter_complex") + 1]


def encode_outputs(plan: JobPlan) -> list[str]:
    return [o["profile"] for o in plan.task(f"{plan.asset_id}/encode").params["outputs"]]


def test_same_inputs_same_plan(catalog):
    a = plan_job(source(), None, catalog, OPTIONS)
    b = plan_job(source(), None, catalog, OPTIONS)
    assert a == b
    assert JobPlan.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_plan_changes_with_encoder_version_and_source(catalog):
    a = plan_job(source(), ["tv"], catalog, OPTIONS)
    b = plan_job(source(), ["tv"], catalog, replace(OPTIONS, encoder_version="ffmpeg 10"))
    c = plan_job(source(sha256="cd" * 32), ["tv"], catalog, OPTIONS)
    assert a.task(f"{a.asset_id}/encode").params["outputs"] != b.task(f"{b.asset_id}/encode").params["outputs"]
    assert a.asset_id != c.asset_id


def test_decode_once_encode_many(catalog):
    plan = plan_job(source(), ["tv", "radio", "web", "app", "short", "edit"], catalog, OPTIONS)
    encodes = [t for t in plan.tasks if t.kind == "encode"]
    # every rendition in one ffmpeg, but the short video that follows the subject: it waits for the analysis
    assert [t.id for t in encodes] == [f"{plan.asset_id}/encode", f"{plan.asset_id}/encode/short-vertical"]
    argv = encodes[0].params["argv"]
    assert argv.count("-i") == 1, "the source is decoded once"
    # web and app share the 720/540/360 rungs and the poster: each is encoded once
    assert sorted(encode_outputs(plan)) == sorted([
        "tv-hd-xdcam422", "radio-bwf", "podcast-mp3", "podcast-aac", "hls-1080", "hls-720", "hls-540", "hls-360",
        "web-poster", "web-sprite", "short-cover", "edit-proxy"])
    web = plan.task(f"{plan.asset_id}/deliver/web").params["files"]
    app = plan.task(f"{plan.asset_id}/deliver/app").params["files"]
    poster_web = next(f["src"] for f in web if f["profile"] == "web-poster")
    poster_app = next(f["src"] for f in app if f["profile"] == "web-poster")
    assert poster_web == poster_app


def test_ladder_is_cascaded_and_shares_one_fps(catalog):
    graph = encode_graph(plan_job(source(), ["web"], catalog, OPTIONS))
    assert graph.count("fps=25/1") == 1
    assert "scale=1280:720[" in graph and "scale=960:540[" in graph and "scale=640:360[" in graph


def test_rungs_above_the_source_are_not_made(catalog):
    sd = source(videos=[video(width=960, height=540)])
    plan = plan_job(sd, ["web", "app"], catalog, OPTIONS)
    assert sorted(o for o in encode_outputs(plan) if o.startswith("hls")) == ["hls-360", "hls-540"]
    tiny = plan_job(source(videos=[video(width=320, height=240)]), ["web"], catalog, OPTIONS)
    assert [o for o in encode_outputs(tiny) if o.startswith("hls")] == ["hls-360"]


def test_every_argv_reads_the_source_as_a_plain_file(catalog):
    for name in ["-i.mp4", "concat:a.mp4|b.mp4", "中文 新闻 01.mov"]:
        plan = plan_job(source(name=name), ["edit", "radio"], catalog, OPTIONS)
        for task in plan.tasks:
            argv = task.params.get("argv")
            if argv:
                at = argv.index("-i")
                assert argv[at + 1] == f"file:/media/in/{name}"
                assert argv[argv.index("-protocol_whitelist") + 1] == "file"
                assert argv[argv.index("-f") + 1] == "mov", "the demuxer is fixed, not guessed again"


@pytest.mark.parametrize("name, expected", [
    ("中文 新闻 01.mov", "中文-新闻-01-abababab"),
    ("../../etc/passwd", "passwd-abababab"),
    ("-i.mp4", "i-abababab"),
    ("...", "asset-abababab"),
    ("a" * 300 + ".mp4", "a" * 64 + "-abababab"),
])
def test_asset_ids_are_safe_and_readable(name, expected):
    assert asset_id_for(source(name=name.rsplit("/", 1)[-1])) == expected


def test_audio_only_source(catalog):
    radio_only = source(videos=[])
    plan = plan_job(radio_only, None, catalog, OPTIONS)
    assert plan.channels == ("radio",)
    with pytest.raises(PlanError, match="channel 'tv' needs video but the source has only audio; run it with "
                                        "--channels radio"):
        plan_job(radio_only, ["tv"], catalog, OPTIONS)


def test_no_audio_gives_tv_silent_tracks_and_skips_loudness(catalog):
    plan = plan_job(source(audios=[]), ["tv", "edit"], catalog, OPTIONS)
    argv = plan.task(f"{plan.asset_id}/encode").params["argv"]
    assert "anullsrc=r=48000:cl=stereo" in argv
    assert not any(t.kind == "measure" for t in plan.tasks)
    assert "loudnorm" not in encode_graph(plan)
    with pytest.raises(PlanError, match="channel 'radio' needs audio"):
        plan_job(source(audios=[]), ["radio"], catalog, OPTIONS)


def test_each_loudness_target_gets_a_gain_and_a_true_peak_limiter_settled_by_a_measure_task_of_its_own(catalog):
    plan = plan_job(source(), ["tv", "radio", "web"], catalog, OPTIONS)
    measures = [t for t in plan.tasks if t.kind == "measure"]
    targets = [(t["integrated"], t["true_peak"], t["codec"], t["container"]) for m in measures
               for t in m.params["targets"]]
    # tv and radio's BWF share one PCM target; each lossy encoder setting is a target of its own
    assert targets == [(-24.0, -2.0, "pcm_s24le", ""), (-16.0, -1.0, "libmp3lame", "mp3"), (-16.0, -1.0, "aac", "mp4"),
                       (-15.0, -1.0, "aac", "mp4")]
    assert [m.id.rsplit("/", 1)[1] for m in measures] == ["tv-hd-xdcam422", "podcast-mp3", "podcast-aac", "hls-1080"]
    assert [m.params["indices"] for m in measures] == [[0], [1], [2], [3]]  # their places in the encodes' graphs
    assert len({m.params["cache"] for m in measures}) == 4
    for m in measures:  # each settles its own target alone, on its own worker where there are several
        assert "ebur128=framelog=verbose:peak=true" in " ".join(m.params["argv"])
        trial = " ".join(m.params["trial"])
        assert trial.count("alimiter=") == 1 and "{gain_0}" in trial and "{gain_1}" not in trial
    assert "ebur128@target-0" in " ".join(measures[0].params["trial"])
    assert "{scratch}/target-0.mp3" in " ".join(measures[1].params["trial"])
    graph = encode_graph(plan)
    for i in range(4):
        assert graph.count(f"volume={{gain_{i}}}dB") == 1 and graph.count(f"limit={{limit_{i}}}") == 1
    assert graph.count("aresample=192000") == 4 and "loudnorm" not in graph
    assert plan.task(f"{plan.asset_id}/encode").deps == tuple(m.id for m in measures)


@pytest.mark.parametrize("src, box, framing, expected", [
    # anamorphic PAL 16:9 fills a 16:9 box: scaled, no bars
    ((Fraction(16, 9), 720, 576), (1920, 1080), "pad", "scale 1920x1080"),
    # 4:3 into 16:9: pillarbox bars of 240 px each side
    ((Fraction(4, 3), 720, 576), (1920, 1080), "pad", "scale 1440x1080 pad 240,0"),
    # vertical phone video into 16:9: pillarbox
    ((Fraction(9, 16), 1080, 1920), (1280, 720), "pad", "scale 406x720 pad 437,0"),
    # 16:9 into 9:16 by centre crop: crop first, in source pixels, then scale
    ((Fraction(16, 9), 1920, 1080), (1080, 1920), "center", "crop 608x1080+656 scale 1080x1920"),
    # anamorphic 16:9 PAL into 9:16: the crop is narrower in stored pixels than in display pixels
    ((Fraction(16, 9), 720, 576), (1080, 1920), "center", "crop 228x576+246 scale 1080x1920"),
])
def test_geometry_never_stretches(src, box, framing, expected):
    chain = geometry(*src, *box, framing, "bt709", "bt709")
    words = []
    for name, args, _kwargs in chain:
        if name == "scale":
            words.append(f"scale {args[0]}x{args[1]}")
        elif name == "pad":
            words.append(f"pad {args[2]},{args[3]}")
        elif name == "crop":
            words.append(f"crop {args[0]}x{args[1]}+{args[2]}")
    assert " ".join(words) == expected


def test_rotation_uses_the_displayed_shape(catalog):
    phone = source(videos=[video(width=1920, height=1080, rotation=90)])
    graph = encode_graph(plan_job(phone, ["edit"], catalog, OPTIONS))
    assert "scale=304:540" in graph and "pad=960:540:328:0" in graph


def test_frame_rates(catalog):
    hls = catalog.profile("hls-720").video
    assert output_rate(Fraction(60), hls) == 30
    assert output_rate(Fraction(60000, 1001), hls) == Fraction(30000, 1001)
    assert output_rate(Fraction(50), hls) == 25
    assert output_rate(Fraction(24), hls) == 24
    assert output_rate(Fraction(30000, 1001), catalog.profile("tv-hd-xdcam422").video) == 25
    graph = encode_graph(plan_job(source(videos=[video(frame_rate="30000/1001")]), ["tv"], catalog, OPTIONS))
    assert "fps=25/1" in graph and "setfield=tff" in graph and "interlace" not in graph


def test_fifty_p_is_woven_into_true_interlace_for_tv(catalog):
    graph = encode_graph(plan_job(source(videos=[video(frame_rate="50/1")]), ["tv"], catalog, OPTIONS))
    assert "fps=50/1" in graph and "interlace=lowpass=linear:scan=tff" in graph


def test_interlaced_source(catalog):
    i50 = source(videos=[video(scan="tff")])
    graph = encode_graph(plan_job(i50, ["tv", "edit"], catalog, OPTIONS))
    # 1080i25 TFF passes straight through to tv; progressive channels get a deinterlacer
    assert "setfield=tff[" in graph and "bwdif=mode=send_frame" in graph
    sd = source(videos=[video(width=720, height=576, sar="64:45", scan="tff", color_matrix="")])
    graph = encode_graph(plan_job(sd, ["tv"], catalog, OPTIONS))
    assert "bwdif=mode=send_field" in graph and "in_color_matrix=bt601:out_color_matrix=bt709" in graph


def test_variable_frame_rate_is_made_constant(catalog):
    vfr = source(videos=[video(frame_rate="30/1", variable_frame_rate=True)])
    plan = plan_job(vfr, ["edit", "short"], catalog, OPTIONS)
    assert "fps=25/1" in encode_graph(plan)
    follow = plan.task(f"{plan.asset_id}/encode/short-vertical").params["argv"]
    assert "fps=30/1" in follow[follow.index("-filter_complex") + 1]


@pytest.mark.parametrize("streams, expected", [
    ([audio(channels=1, layout="mono")], "channelmap=channel_layout=stereo:map=0|0"),
    ([audio(channels=6, layout="5.1")], "aformat=channel_layouts=stereo"),
    ([audio(index=1, channels=1, layout="mono", default=True), audio(index=2, channels=1, layout="mono")],
     "[0:1][0:2]amerge=inputs=2"),
    ([audio(index=1), audio(index=2, default=False, language="eng")], "[0:1]"),
])
def test_programme_audio_mapping(catalog, streams, expected):
    graph = encode_graph(plan_job(source(audios=streams), ["radio"], catalog, OPTIONS))
    assert expected in graph
    assert "[0:2]" not in graph or "amerge" in expected


def test_audio_and_pictures_share_the_programmes_origin(catalog):
    """Sources are read with -copyts: both start from the first picture's time on the source's own clock, and
    aresample pads late audio with silence from 0 (or cuts what comes before it)."""
    late = plan_job(source(audios=[audio(start_time=0.5)]), ["edit"], catalog, OPTIONS)
    graph = encode_graph(late)
    assert "setpts=PTS-0.000000/TB" in graph and "asetpts=PTS-0.000000/TB" in graph and "first_pts=0" in graph
    assert "-copyts" in late.task(f"{late.asset_id}/encode").params["argv"]
    early = encode_graph(plan_job(source(audios=[audio(start_time=0.0)], videos=[video(start_time=0.2)]),
                                  ["edit"], catalog, OPTIONS))
    assert "setpts=PTS-0.200000/TB" in early and "asetpts=PTS-0.200000/TB" in early


def test_tv_audio_is_two_mono_tracks_and_timecode(catalog):
    plan = plan_job(source(timecode="09:59:50:00"), ["tv"], catalog, OPTIONS)
    argv = plan.task(f"{plan.asset_id}/encode").params["argv"]
    assert argv.count("-map") == 3
    assert argv[argv.index("-timecode") + 1] == "09:59:50:00"
    assert "-mpv_flags" in argv and argv[argv.index("-flags") + 1] == "+ildct+ilme+cgop"
    no_tc = plan_job(source(), ["tv"], catalog, OPTIONS)
    argv = no_tc.task(f"{no_tc.asset_id}/encode").params["argv"]
    assert argv[argv.index("-timecode") + 1] == "10:00:00:00"


def test_deliveries_and_checks_are_planned_per_channel(catalog):
    plan = plan_job(source(), ["web"], catalog, OPTIONS)
    deliver = plan.task(f"{plan.asset_id}/deliver/web")
    assert deliver.params["dest"] == f"/srv/out/web/{plan.asset_id}"
    assert [f["dest"] for f in deliver.params["files"]] == ["web-hls", "web-hls.mp4", "web-poster.jpg",
                                                            "web-sprite", "report.html"]
    assert set(deliver.deps) == {f"{plan.asset_id}/verify/{p}" for p in
                                 ("hls-1080", "hls-720", "hls-540", "hls-360", "web-hls", "web-poster",
                                  "web-sprite")} | {f"{plan.asset_id}/analyze", f"{plan.asset_id}/report"}
    sprite = plan.task(f"{plan.asset_id}/package/web-sprite").params
    assert sprite["sheet_count"] == 1 and len(sprite["cues"]) == 2
    assert sprite["cues"][1] == {"start": 5.0, "end": 10.0, "image": "sprite-001.jpg", "xywh": [160, 0, 160, 90]}


def test_fit_puts_the_whole_picture_over_a_blurred_fill():

    [(name, (background, foreground), kwargs)] = geometry(Fraction(16, 9), 1920, 1080, 1080, 1920, "fit",
                                                          "bt709", "bt709")
    assert name == OVERLAY and dict(kwargs) == {"x": 0, "y": 656}
    assert [f[0] for f in foreground] == ["scale", "setsar"] and foreground[0][1] == (1080, 608)
    assert [f[0] for f in background] == ["crop", "scale", "setsar", "boxblur", "scale"]
    same_shape = geometry(Fraction(9, 16), 1080, 1920, 1080, 1920, "fit", "bt709", "bt709")
    assert [f[0] for f in same_shape] == ["setsar"]


@pytest.mark.parametrize("stream, rungs", [
    (video(width=1920, height=1080), ["hls-1080", "hls-720", "hls-540", "hls-360"]),
    (video(width=640, height=480), ["hls-360"]),                       # 4:3: limited by its height
    (video(width=1920, height=800), ["hls-1080", "hls-720", "hls-540", "hls-360"]),  # 2.4:1: by its width
    (video(width=1280, height=534), ["hls-720", "hls-540", "hls-360"]),
    (video(width=720, height=576, sar="64:45"), ["hls-540", "hls-360"]),  # anamorphic PAL 16:9
    (video(width=1920, height=1080, rotation=90), ["hls-1080", "hls-720", "hls-540", "hls-360"]),
    (video(width=160, height=120), ["hls-360"]),                       # always at least the lowest
])
def test_ladder_rungs_never_upscale(catalog, stream, rungs):
    plan = plan_job(source(videos=[stream]), ["web"], catalog, OPTIONS)
    made = plan.task(f"{plan.asset_id}/package/web-hls").params["variants"]
    assert [v["name"] for v in made] == rungs


@pytest.mark.parametrize("timecode, rate, expected", [
    ("09:59:50:00", "25/1", "09:59:50:00"),
    ("01:02:03:29", "30/1", "01:02:03:24"),          # 29/30 s is 24.17 frames at 25
    ("01:02:03;04", "30000/1001", "01:02:03:03"),     # drop-frame: 111,582 frames at 29.97 = 3723.12 s
    ("00:10:00;00", "30000/1001", "00:10:00:00"),     # DF labels track the clock at every tenth minute
    ("10:00:00:48", "50/1", "10:00:00:24"),
    ("10:00:00:50", "50/1", None),                    # frame 50 does not exist at 50 fps
    ("25:00:00:00", "25/1", None),                    # nor hour 25
])
def test_source_timecode_is_recounted_at_the_output_rate(catalog, timecode, rate, expected):
    plan = plan_job(source(timecode=timecode, videos=[video(frame_rate=rate)]), ["tv", "edit"], catalog, OPTIONS)
    argv = plan.task(f"{plan.asset_id}/encode").params["argv"]
    [tv] = [argv[i + 1] for i, a in enumerate(argv) if a == "-timecode"]  # MPEG-2: in its GOP headers too
    [edit] = [argv[i + 1][9:] for i, a in enumerate(argv) if a == "-metadata" and argv[i + 1].startswith("timecode=")]
    assert (tv, edit) == ((expected, expected) if expected else ("10:00:00:00", "00:00:00:00"))
    assert f"timecode={edit.replace(':', chr(92) * 2 + ':')}" in encode_graph(plan)


def test_a_silent_video_gets_every_channel_but_radio(catalog):
    assert plan_job(source(audios=[]), None, catalog, OPTIONS).channels == ("tv", "web", "app", "short", "edit")


def test_encode_errors_name_the_cause_not_the_aftermath():
    from onetake.pipeline.errors import EncodeError

    stderr = ("[mxf @ 0x1] Drop frame is only allowed with multiples of 30000/1001 FPS\n"
              "[out#0/mxf @ 0x2] Could not write header (incorrect codec parameters ?): Invalid argument\n"
              "[vost#0:0 @ 0x3] Task finished with error code: -22 (Invalid argument)\n"
              "[out#1/mp4 @ 0x4] Nothing was written into output file, because at least one of its streams "
              "received no packets.\nConversion failed!\n")
    error = EncodeError("encode failed", ["ffmpeg"], 234, stderr)
    assert str(error) == ("encode failed (exit status 234): [mxf @ 0x1] Drop frame is only allowed with multiples "
                          "of 30000/1001 FPS")
    assert str(EncodeError("x", [], 1, "")) == "x (exit status 1): no output"


# ---------------------------------------------------------------------------------------------------------
# the analysis, follow framing, QC and the report in the plan


def test_one_analysis_per_source_shared_by_every_channel(catalog):
    plan = plan_job(source(), ["tv", "radio", "web", "short"], catalog, OPTIONS)
    [analyze] = [t for t in plan.tasks if t.kind == "analyze"]
    key = analysis_key(source())
    assert analyze == Task(f"{plan.asset_id}/analyze", "analyze", {
        "source": "/media/in/news.mp4", "cache": f"/srv/out/.onetake/analysis/{key}.json",
        "limits": analyze.params["limits"]})
    [report] = [t for t in plan.tasks if t.kind == "report"]
    assert report.deps == (analyze.id,) and report.params["final"] == f"/srv/out/.onetake/reports/{key}/report.html"
    for channel in plan.channels:
        deliver = plan.task(f"{plan.asset_id}/deliver/{channel}")
        assert deliver.deps[-2:] == (analyze.id, report.id)
        assert {"src": report.params["final"], "dest": "report.html", "profile": "report"} in deliver.params["files"]
    # the key is the source's bytes x the analysis's version x onetake's: not the channels, not the encoder
    assert analysis_key(source(name="other.mov")) == key
    assert analysis_key(source(sha256="cd" * 32)) != key


def test_follow_gets_its_own_encode_and_nothing_else_waits_for_the_analysis(catalog):
    plan = plan_job(source(), ["web", "short"], catalog, OPTIONS)
    shared = plan.task(f"{plan.asset_id}/encode")
    follow = plan.task(f"{plan.asset_id}/encode/short-vertical")
    assert shared.deps == (f"{plan.asset_id}/measure/hls-1080",)
    assert follow.deps == (f"{plan.asset_id}/analyze", f"{plan.asset_id}/measure/short-vertical") and follow.heavy
    assert [o["profile"] for o in follow.params["outputs"]] == ["short-vertical"]
    assert "short-cover" in [o["profile"] for o in shared.params["outputs"]]
    graph = follow.params["argv"][follow.params["argv"].index("-filter_complex") + 1]
    final = follow.params["outputs"][0]["final"]
    commands = f"{final}.partial/follow.cmd"
    # 1920x1080 -> a 608 px wide window the full height, moved by the commands, then scaled to 1080x1920
    assert follow.params["follow"] == {"commands": commands, "width": 1920, "window": 608}
    assert f"sendcmd=f={commands}" in graph and "crop=608:1080:x=656:y=0" in graph
    assert "scale=1080:1920" in graph and "alimiter=" in graph
    assert plan.task(f"{plan.asset_id}/verify/short-vertical").deps[0] == follow.id


def test_center_and_fit_stay_in_the_shared_encode(catalog):
    for framing in ("center", "fit"):
        short = catalog.profile("short-vertical")
        custom = replace(catalog, profiles={**catalog.profiles, "short-vertical": replace(
            short, video=replace(short.video, framing=framing))})
        plan = plan_job(source(), ["short"], custom, OPTIONS)
        assert [t.id for t in plan.tasks if t.kind == "encode"] == [f"{plan.asset_id}/encode"]
        assert "sendcmd" not in encode_graph(plan)


def test_follow_of_a_picture_no_wider_than_the_box_is_a_centre_crop_in_the_shared_encode(catalog):
    vertical = source(videos=[video(width=1080, height=1920)])
    plan = plan_job(vertical, ["short"], catalog, OPTIONS)
    assert [t.id for t in plan.tasks if t.kind == "encode"] == [f"{plan.asset_id}/encode"]
    assert "sendcmd" not in encode_graph(plan)


def test_follow_window_is_in_the_pixels_the_crop_sees():

    assert follow_window(Fraction(16, 9), 1920, 1080, 1080, 1920) == 608
    # anamorphic 720x576 shown 16:9 (SAR 64:45): a 9:16 window is 576 * 9/16 = 324 display px, 228 stored px
    assert follow_window(Fraction(16, 9), 720, 576, 1080, 1920) == 228
    assert follow_window(Fraction(9, 16), 1080, 1920, 1080, 1920) is None
    # a phone clip stored 1920x1080 and turned 90 degrees is 1080x1920 after rotation: nothing to follow
    rotated = video(rotation=90)
    assert follow_window(rotated.display_aspect, *rotated.display_size, 1080, 1920) is None


def test_qc_rules_and_mode_travel_to_deliver(catalog):
    plan = plan_job(source(), ["tv", "web"], catalog, OPTIONS)
    tv = plan.task(f"{plan.asset_id}/deliver/tv").params["qc"]
    assert tv["mode"] == "enforce" and tv["record"] == f"/srv/out/tv/{plan.asset_id}.qc.json"
    assert (tv["rules"]["max_black_s"], tv["rules"]["max_freeze_s"], tv["rules"]["max_silence_s"]) == (2.0, 3.0, 5.0)
    assert plan.task(f"{plan.asset_id}/deliver/web").params["qc"] == {"mode": "enforce", "rules": None,
                                                                     "record": None}
    warn = plan_job(source(), ["tv"], catalog, replace(OPTIONS, farm=replace(OPTIONS.farm, qc="warn")))
    assert warn.task(f"{warn.asset_id}/deliver/tv").params["qc"]["mode"] == "warn"
    again = plan_job(source(), ["tv", "web"], catalog, OPTIONS)
    assert again == plan and JobPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_a_whole_encode_makes_every_picture_its_stated_duration_starts(catalog):
    """A DVB capture cut mid-GOP states 22.456 s of pictures but decodes a picture or two short of it: every video
    output holds its first picture from the programme's 0 and its last to the end, and keeps 562 pictures at
    25 fps (one for each started frame interval, as a chunked encode's join checks), its sound 22.456 s."""
    clip = source(videos=(video(duration=22.456),), audios=(audio(duration=22.456),), duration=22.456)
    plan = plan_job(clip, ["web", "tv"], catalog, OPTIONS)
    argv = plan.task(f"{plan.asset_id}/encode").params["argv"]
    graph = encode_graph(plan)
    videos = [o for o in plan.task(f"{plan.asset_id}/encode").params["outputs"]
              if o["profile"].startswith(("hls-", "tv-"))]
    assert graph.count("tpad=stop=-1:stop_mode=clone") == len(videos) == 5
    assert "fps=25/1[" not in graph and graph.count("fps=25/1:start_time=0.000000") >= 2
    durations = [argv[i + 1] for i, word in enumerate(argv) if word == "-t"]
    assert sorted(durations) == ["22.48"] * len(videos)  # 562 / 25
    assert "apad=whole_dur=22.456" in graph
    # an HD capture in true 25i goes to tv as it is: the same hold, and the same start
    hd = source(videos=(video(duration=22.456, scan="tff"),), audios=(audio(duration=22.456),), duration=22.456)
    tv = encode_graph(plan_job(hd, ["tv"], catalog, OPTIONS))
    assert "bwdif" not in tv and "fps=25/1:start_time=0.000000" in tv and "tpad=stop=-1:stop_mode=clone" in tv
