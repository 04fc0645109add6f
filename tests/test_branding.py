"""Station logo and captions on every channel: one real run of a generated source with a logo made here and a
caption sidecar with Chinese, Arabic, overlapping cues and a cue past the end; the pixels of every rung, the
short's frames at and between cue times, the WebVTT rendition, and one-line refusals of bad logos and captions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from onetake.pipeline.captions import parse_timed_text, read_cues
from onetake.pipeline.errors import SourceError
from onetake.pipeline.profiles import load_catalog
from onetake.workers.captions import _width, break_lines, on_programme_clock
from conftest import ffmpeg, make_clip

SECONDS = 3.0
CAPTIONS = """1
00:00:00,800 --> 00:00:01,600
县融媒体中心今天发布了新的防汛通知，请大家注意安全。

2
00:00:01,400 --> 00:00:02,200
مرحبا بكم في نشرة الأخبار

3
00:00:02,700 --> 00:00:09,000
A cue that runs past the end of the programme.
"""
LOGO_W, LOGO_H = 200, 100


def onetake(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "onetake.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def frame_at(path: Path, seconds: float) -> np.ndarray:
    """The RGB picture shown at ``seconds``."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for frame in c.decode(stream):
            if frame.time is not None and frame.time + 1e-6 >= seconds:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{path} has no picture at {seconds} s")


def red_box(picture: np.ndarray) -> tuple[int, int, int, int] | None:
    """x, y, w, h of the strongly red pixels (the logo), or None."""
    r, g, b = (picture[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((r > 150) & (g < 90) & (b < 90))
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def white_pixels(picture: np.ndarray, top: int, bottom: int) -> int:
    band = picture[top:bottom].astype(int)
    return int(((band[..., 0] > 200) & (band[..., 1] > 200) & (band[..., 2] > 200)).sum())


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """web, short and edit of a 3 s dark-blue 1280x720 clip with the logo and the caption sidecar."""
    root = tmp_path_factory.mktemp("branding")
    source = make_clip(root / "bulletin.mp4", seconds=SECONDS, video="color=c=0x102040:size=1280x720:rate=25:"
                                                                      f"duration={SECONDS}")
    (root / "bulletin.srt").write_text(CAPTIONS, encoding="utf-8")
    ffmpeg("-f", "lavfi", "-i", f"color=c=red:size={LOGO_W}x{LOGO_H},format=rgba", "-frames:v", "1",
           "file:" + str(root / "logo.png"))
    run = onetake("run", str(source), "--channels", "web,short,edit", "--logo", str(root / "logo.png"),
                  "--out", str(root / "out"))
    assert run.returncode == 0, run.stderr
    return root / "out"


def asset(out: Path, channel: str) -> Path:
    (folder,) = (out / channel).iterdir()
    return folder


def test_logo_sits_in_the_safe_corner_of_every_rung_and_never_on_the_proxy(delivered: Path, tmp_path: Path) -> None:
    web, catalog = asset(delivered, "web"), load_catalog()
    logo = catalog.logos["web"]
    expected = {"hls-720": (1280, 720), "hls-540": (960, 540), "hls-360": (640, 360)}
    for rung, (w, h) in expected.items():
        (init,) = (web / "web-hls" / rung).glob("init*.mp4")
        segment = (web / "web-hls" / rung / "segment_00000.m4s").read_bytes()
        (tmp_path / f"{rung}.mp4").write_bytes(init.read_bytes() + segment)
        box = red_box(frame_at(tmp_path / f"{rung}.mp4", 1.0))
        assert box is not None, f"no logo in {rung}"
        height = round(h * logo.height)
        width = round(height * LOGO_W / LOGO_H)
        spec = catalog.profile(rung).video
        x = w - round(w * spec.safe_right) - width          # top-right corner of the graphics-safe area
        y = round(h * spec.safe_top)
        assert box == pytest.approx((x, y, width, height), abs=3), rung
    poster = red_box(np.asarray(av.open(str(web / "web-poster.jpg")).decode(video=0).__next__().to_ndarray(
        format="rgb24")))
    assert poster is not None and poster[3] == pytest.approx(round(720 * logo.height), abs=3)
    short = frame_at(asset(delivered, "short") / "short-vertical.mp4", 0.4)
    box = red_box(short)
    vertical = catalog.profile("short-vertical").video
    assert box == pytest.approx((round(1080 * vertical.safe_left), round(1920 * vertical.safe_top),
                                 round(1920 * catalog.logos["short"].height * 2),
                                 round(1920 * catalog.logos["short"].height)), abs=3)
    assert red_box(frame_at(asset(delivered, "edit") / "edit-proxy.mp4", 1.0)) is None


def test_captions_are_burned_into_the_short_only_while_a_cue_runs(delivered: Path) -> None:
    short = asset(delivered, "short") / "short-vertical.mp4"
    spec = load_catalog().profile("short-vertical").video
    bottom = 1920 - round(1920 * spec.safe_bottom)
    band = (bottom - 400, bottom + 8)  # up to four lines of text above the safe area's bottom edge
    # one picture (40 ms) either side of each edge: the first cue starts at 0.8 s, the second ends at 2.2 s
    assert white_pixels(frame_at(short, 0.76), *band) == 0         # before the first cue
    assert white_pixels(frame_at(short, 0.84), *band) > 2000       # the Chinese cue
    assert white_pixels(frame_at(short, 2.16), *band) > 500        # the Arabic cue
    assert white_pixels(frame_at(short, 2.24), *band) == 0         # between cues
    assert white_pixels(frame_at(short, 2.9), *band) > 500         # the cue cut at the end
    assert white_pixels(frame_at(short, 1.0), 0, band[0]) == 0     # nothing above the caption band
    assert white_pixels(frame_at(short, 1.0), band[1], 1920) == 0  # nor below the safe area


def test_web_carries_the_captions_as_a_webvtt_subtitle_rendition(delivered: Path) -> None:
    web = asset(delivered, "web")
    master = (web / "web-hls" / "master.m3u8").read_text(encoding="utf-8")
    assert '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="中文",LANGUAGE="zh"' in master
    assert master.count('SUBTITLES="subs"') == master.count("#EXT-X-STREAM-INF")
    cues = parse_timed_text((web / "web-hls.vtt").read_text(encoding="utf-8"), "web-hls.vtt", webvtt=True)
    assert [c.text[:4] for c in cues] == ["县融媒体", "مرحب", "A cu"]
    assert cues[-1].end == pytest.approx(SECONDS, abs=0.05)     # cut at the programme's end
    manifest = json.loads((web / "manifest.json").read_text(encoding="utf-8"))
    assert "web-hls.vtt" in json.dumps(manifest)
    checks = json.dumps(manifest)
    assert "subtitle cues inside the programme" in checks and "subtitles parse as WebVTT" in checks


def test_cue_times_follow_the_programme_clock() -> None:
    cues = parse_timed_text(CAPTIONS, "x.srt", webvtt=False)
    moved = on_programme_clock(cues, shift=0.9, duration=2.0)   # a programme starting 0.9 s into the sidecar
    assert [(c.start, c.end) for c in moved] == [(0.0, 0.7), (0.5, 1.3), (1.8, 2.0)]


def test_lines_break_between_cjk_characters_and_never_before_closing_punctuation() -> None:
    text = "县融媒体中心今天发布了新的防汛通知，请大家注意安全。明天上午九点将召开新闻发布会。"
    for width in (6.0, 9.0, 12.95):
        lines = break_lines(text, width)
        assert "".join(lines) == text
        assert all(_width([line]) <= width for line in lines)
        assert not any(line[0] in "，。" for line in lines)
    english = "Breaking news from the county council tonight"
    lines = break_lines(english, 12)
    assert " ".join(lines) == english and len(lines) == 3 and all(_width([line]) <= 12 for line in lines)


@pytest.mark.parametrize("text, problem", [
    ("1\n00:00:01,000 -> 00:00:02,000\nhello\n", "line 2: expected"),  # a typo in the arrow
    ("1\n00:00:01,000 --> 00:00:0x,000\nhello\n", "line 2: cannot read the timing"),
    ("1\n00:00:03,000 --> 00:00:02,000\nhello\n", "line 2: the cue ends"),
    ("\n\n", "holds no cues"),
])
def test_a_caption_file_that_does_not_parse_is_one_line_with_its_line_number(tmp_path: Path, text: str,
                                                                             problem: str) -> None:
    sidecar = tmp_path / "clip.srt"
    sidecar.write_text(text, encoding="utf-8")
    with pytest.raises(SourceError, match=problem):
        read_cues(sidecar)


def test_bad_captions_and_logos_are_refused_before_encoding(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4")
    (tmp_path / "clip.srt").write_text("1\n00:00:00,000 --> soon\nhello\n", encoding="utf-8")
    run = onetake("run", str(source), "--channels", "short", "--out", str(tmp_path / "out"))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"{tmp_path / 'clip.srt'}: line 2: cannot read the timing" in run.stderr
    assert not (tmp_path / "out" / "short").exists()
    (tmp_path / "clip.srt").write_text("1\n00:00:05,000 --> 00:00:06,000\nthe captions of another clip\n",
                                       encoding="utf-8")
    run = onetake("run", str(source), "--channels", "short", "--out", str(tmp_path / "out"))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "its cues run from 5.000 to 6.000 s, outside the programme (0 to 1.000 s)" in run.stderr
    assert not (tmp_path / "out" / "short").exists()
    (tmp_path / "clip.srt").unlink()
    (tmp_path / "logo.png").write_bytes(b"GIF89a not a png")
    for logo, problem in [(tmp_path / "missing.png", "no such file"), (tmp_path / "logo.png", "is not a PNG")]:
        run = onetake("run", str(source), "--channels", "web", "--logo", str(logo), "--out", str(tmp_path / "out"))
        assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
        line = run.stderr.strip().splitlines()[-1]
        assert "station logo (--logo, [farm] logo)" in line and problem in line and str(logo) in line
        assert not (tmp_path / "out" / "web").exists()


def test_a_bad_logo_table_names_the_file_and_the_key(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[1] / "onetake" / "profiles" / "channels.toml"
    text = shipped.read_text(encoding="utf-8").replace('corner = "top-left"', 'corner = "middle"')
    (tmp_path / "channels.toml").write_text(text, encoding="utf-8")
    run = onetake("profiles", "list", "--profiles", str(tmp_path))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"{tmp_path / 'channels.toml'} [short.logo]: 'corner' = 'middle' is not allowed" in run.stderr
    (tmp_path / "channels.toml").write_text(text.replace('corner = "middle"', 'corner = "top-left"\nfile = '
                                                         '"station.png"'), encoding="utf-8")
    run = onetake("profiles", "list", "--profiles", str(tmp_path))
    assert run.returncode != 0 and f"[short.logo] 'file': no such file {tmp_path / 'station.png'}" in run.stderr


# ------------------------------------------------------------------------------------------------- audiograms


@pytest.fixture(scope="module")
def programme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s radio interview (loud for half of every second), its green cover and one caption."""
    root = tmp_path_factory.mktemp("audiogram")
    wav = root / "县长访谈.wav"
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=300:duration={SECONDS},volume='if(lt(mod(t,1),0.5),0.8,0.02)'"
           ":eval=frame,aformat=channel_layouts=stereo", "-c:a", "pcm_s16le", "file:" + str(wav))
    ffmpeg("-f", "lavfi", "-i", "color=c=0x00c000:size=600x600", "-frames:v", "1", "file:" + str(root / "县长访谈.png"))
    (root / "县长访谈.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\n今天我们请到了县长。\n", encoding="utf-8")
    return wav


def test_an_audio_programme_becomes_a_short_with_cover_title_waveform_and_captions(programme: Path,
                                                                                  tmp_path: Path) -> None:
    run = onetake("run", str(programme), "--channels", "radio,short", "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    short = asset(tmp_path / "out", "short")
    video = short / "short-vertical.mp4"
    with av.open(str(video)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (1080, 1920) and c.streams.audio
    spec = load_catalog().profile("short-vertical")
    wave_top = round(1920 * spec.audiogram.wave_at)
    wave = (wave_top, wave_top + round(1920 * spec.audiogram.wave_height))
    loud, quiet = frame_at(video, 0.3), frame_at(video, 0.8)
    green = (loud[..., 1] > 150) & (loud[..., 0] < 80)
    assert green.mean() > 0.8                                              # the cover fills the picture
    assert white_pixels(loud, *wave) > 3 * max(1, white_pixels(quiet, *wave))   # the waveform follows the sound
    top = round(1920 * spec.video.safe_top)
    assert white_pixels(loud, top, top + 200) > 1000                       # the title
    caption_band = (1920 - round(1920 * spec.video.safe_bottom) - 240, 1920 - round(1920 * spec.video.safe_bottom))
    assert white_pixels(frame_at(video, 1.5), *caption_band) > 1000
    assert white_pixels(frame_at(video, 2.5), *caption_band) == 0
    manifest = json.loads((short / "manifest.json").read_text(encoding="utf-8"))
    assert "integrated loudness" in json.dumps(manifest, ensure_ascii=False)
    assert (short / "short-cover.jpg").is_file()


def test_an_audio_programme_gets_a_short_only_when_asked(programme: Path, tmp_path: Path) -> None:
    plan = onetake("plan", str(programme), "--out", str(tmp_path / "out"), "--json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["channels"] == ["radio"]
    refused = onetake("plan", str(programme), "--channels", "web", "--out", str(tmp_path / "out"))
    assert refused.returncode != 0 and "needs video but the source has only audio" in refused.stderr


# ------------------------------------------------------------------------------------------------- watch folders


def test_captions_and_covers_travel_with_their_source_in_an_inbox(tmp_path: Path) -> None:
    from onetake.pipeline.inbox import is_candidate, move_with_companions

    for name in ("clip.mp4", "clip.srt", "clip.en.vtt", "clip.json", "show.wav", "show.jpg", "photo.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert [n for n in sorted(os.listdir(tmp_path)) if is_candidate(tmp_path / n)] == \
        ["clip.mp4", "photo.jpg", "show.wav"]
    (tmp_path / "processing").mkdir()
    move_with_companions(tmp_path / "clip.mp4", tmp_path / "processing" / "clip-2.mp4")
    move_with_companions(tmp_path / "show.wav", tmp_path / "processing" / "show.wav")
    assert sorted(os.listdir(tmp_path / "processing")) == ["clip-2.en.vtt", "clip-2.json", "clip-2.mp4",
                                                           "clip-2.srt", "show.jpg", "show.wav"]
    assert sorted(os.listdir(tmp_path)) == ["photo.jpg", "processing"]


DEBIAN_FFMPEG = Path("/usr/bin/ffmpeg")


@pytest.mark.skipif(not DEBIAN_FFMPEG.exists(), reason="no distribution ffmpeg at /usr/bin/ffmpeg (apt-get install "
                                                       "ffmpeg)")
def test_logo_captions_and_audiogram_on_debian_ffmpeg(programme: Path, tmp_path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=100x50,format=rgba", "-frames:v", "1",
           "file:" + str(tmp_path / "logo.png"))
    run = onetake("run", str(programme), "--channels", "short", "--logo", str(tmp_path / "logo.png"),
                  "--out", str(tmp_path / "out"), env={"ONETAKE_FFMPEG": str(DEBIAN_FFMPEG)})
    assert run.returncode == 0, run.stderr
    video = asset(tmp_path / "out", "short") / "short-vertical.mp4"
    assert red_box(frame_at(video, 0.3)) is not None
    spec = load_catalog().profile("short-vertical").video
    band = (1920 - round(1920 * spec.safe_bottom) - 300, 1920 - round(1920 * spec.safe_bottom))
    assert white_pixels(frame_at(video, 1.5), *band) > 1000


# ------------------------------------------------------------------------------------------------- timing


def captions_of_plan(source: Path, tmp_path: Path, channels: tuple[str, ...] = ("web",)) -> list:
    """The captions task of the source's plan, run by the real worker; the WebVTT cues it wrote."""
    from onetake.pipeline.plan import PlanOptions, plan_job
    from onetake.pipeline.probe import probe
    from onetake.workers.tasks import run_task

    plan = plan_job(probe(source), channels, load_catalog(), PlanOptions(str(tmp_path / "out"), str(tmp_path / "w")))
    (task,) = [t for t in plan.tasks if t.kind == "captions"]
    folder = run_task(task.kind, task.params)["folder"]
    return parse_timed_text((Path(folder) / "captions.vtt").read_text(encoding="utf-8"), "captions.vtt", webvtt=True)


def test_a_sidecar_follows_a_programme_that_starts_late(tmp_path: Path) -> None:
    # the picture starts 0.6 s into the file (a camera that starts recording sound first): the programme, and
    # every output, starts with the picture, so a cue the sidecar puts at 1.0 s shows 0.4 s into the outputs
    source = make_clip(tmp_path / "late.mp4", seconds=2.0, video_args=("-itsoffset", "0.6"))
    (tmp_path / "late.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\n晚开始\n", encoding="utf-8")
    (cue,) = captions_of_plan(source, tmp_path)
    assert (cue.start, cue.end) == pytest.approx((0.4, 1.4), abs=0.002)


@pytest.mark.parametrize("container, codec", [("mkv", "srt"), ("mp4", "mov_text")])
def test_a_subtitle_stream_in_the_source_is_used_when_there_is_no_sidecar(tmp_path: Path, container: str,
                                                                          codec: str) -> None:
    (tmp_path / "in.srt").write_text("1\n00:00:00,500 --> 00:00:01,200\n内嵌字幕\n", encoding="utf-8")
    clip = make_clip(tmp_path / "plain.mp4", seconds=2.0)
    source = tmp_path / f"embedded.{container}"
    ffmpeg("-i", "file:" + str(clip), "-i", "file:" + str(tmp_path / "in.srt"), "-map", "0", "-map", "1",
           "-c:v", "copy", "-c:a", "copy", "-c:s", codec, "-metadata:s:s:0", "language=chi", "file:" + str(source))
    (tmp_path / "in.srt").unlink()
    (cue,) = captions_of_plan(source, tmp_path)
    assert (cue.start, cue.end, cue.text) == (pytest.approx(0.5, abs=0.002), pytest.approx(1.2, abs=0.002),
                                              "内嵌字幕")
    from onetake.pipeline.probe import probe

    assert probe(source).captions.language == "zh"  # ISO 639-2 'chi' as HLS wants it


def test_caption_files_as_tools_write_them(tmp_path: Path) -> None:
    (tmp_path / "a.srt").write_bytes("\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>斜体</i> {\\an8}顶部\r\n\r\n"
                                     "00:00:03,000 --> 00:00:04,000 X1:100\r\nno counter\r\n".encode())
    (tmp_path / "b.vtt").write_text("WEBVTT - news\nKind: captions\n\nSTYLE\n::cue { color: red }\n\nNOTE a\nnote\n\n"
                                    "id-1\n00:01.000 --> 00:02.000 align:start line:10%\n<v Roger>Rain &amp; "
                                    "<b>wind</b>\n", encoding="utf-8")
    (tmp_path / "c.srt").write_bytes("1\n00:00:01,000 --> 00:00:02,000\n国标编码的字幕\n".encode("gb18030"))
    (tmp_path / "d.ass").write_text(
        "[Script Info]\nScriptType: v4.00+\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, "
        "MarginV, Effect, Text\nDialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\i1}第一行\\N第二行\n"
        "Comment: 0,0:00:02.00,0:00:03.00,Default,,0,0,0,,not shown\n", encoding="utf-8")
    assert [(c.start, c.end, c.text) for c in read_cues(tmp_path / "a.srt")] == \
        [(1.0, 2.5, "斜体 顶部"), (3.0, 4.0, "no counter")]
    assert [(c.start, c.text) for c in read_cues(tmp_path / "b.vtt")] == [(1.0, "Rain & wind")]
    assert [c.text for c in read_cues(tmp_path / "c.srt")] == ["国标编码的字幕"]
    assert [(c.start, c.end, c.text) for c in read_cues(tmp_path / "d.ass")] == [(1.0, 2.0, "第一行\n第二行")]


def test_an_audiogram_without_captions_burns_its_title_alone(tmp_path: Path) -> None:
    from onetake.pipeline.plan import PlanOptions, plan_job
    from onetake.pipeline.probe import probe
    from onetake.workers.tasks import run_task

    source = make_clip(tmp_path / "早间新闻.m4a", video=None, seconds=2.0)
    plan = plan_job(probe(source), ("radio", "short"), load_catalog(),
                    PlanOptions(str(tmp_path / "out"), str(tmp_path / "w")))
    (task,) = [t for t in plan.tasks if t.kind == "captions"]
    folder = Path(run_task(task.kind, task.params)["folder"])
    short = next(r for r in plan.tasks if r.kind == "encode").params["outputs"]
    keys = {o["profile"]: o["key"] for o in short}
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{keys[n]}.ass" for n in ("short-cover",
                                                                                        "short-vertical"))
    events = [line for line in (folder / f"{keys['short-vertical']}.ass").read_text(encoding="utf-8").splitlines()
              if line.startswith("Dialogue:")]
    assert len(events) == 1 and events[0].endswith("早间新闻") and "0:00:02.00" in events[0]
    encode = next(t for t in plan.tasks if t.kind == "encode")
    assert task.id in encode.deps and "color=c=0x1b2a4a" in " ".join(encode.params["argv"])  # no cover: the colour


def test_no_captions_leaves_a_sidecar_unused(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4")
    (tmp_path / "clip.srt").write_text("1\n00:00:00,100 --> 00:00:00,900\n字幕\n", encoding="utf-8")
    kinds = [[t["kind"] for t in json.loads(onetake("plan", str(source), "--channels", "web,short", *flag, "--out",
                                                    str(tmp_path / "out"), "--json").stdout)["tasks"]]
             for flag in ((), ("--no-captions",))]
    assert "captions" in kinds[0] and "captions" not in kinds[1]


def test_a_watch_sidecar_title_is_the_audiograms_title_and_part_of_its_key(catalog) -> None:
    import dataclasses

    from onetake.pipeline.plan import plan_job
    from test_plan import OPTIONS, audio, source

    programme = source(name="interview.wav", format="wav", videos=[], audios=[audio(index=0, codec="pcm_s16le")])

    def short_of(title: str) -> tuple[str, str]:
        plan = plan_job(programme, ["short"], catalog, dataclasses.replace(OPTIONS, title=title))
        (captions,) = [t for t in plan.tasks if t.kind == "captions"]
        (encode,) = [t for t in plan.tasks if t.kind == "encode"]
        key = next(o["key"] for o in encode.params["outputs"] if o["profile"] == "short-vertical")
        return next(b["title"] for b in captions.params["burn"] if b["name"] == key), key

    assert short_of("")[0] == "interview"
    titled, key = short_of("县长谈防汛")
    assert titled == "县长谈防汛" and key != short_of("")[1]  # a new title is a new video, not the cached one
