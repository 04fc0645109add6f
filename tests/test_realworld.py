"""Real-world sources, end to end: real ffmpeg makes each source, the real CLI runs it, and the delivered
files are decoded with PyAV to check what a viewer or a playout server would get.

Sources are batched: one `onetake run` per channel set (edit+radio, tv, web), each a module fixture, and
every case asserts on its own source's deliveries.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ffmpeg, make_clip
from media import Batch, audio_of, dominant_hz, is_colour, level, probe_json, rgb_at, run_batch, shift_between, tone, \
    video_frames, video_timing
from onetake.pipeline.probe import combing_ratio

BLACK, RED, BLUE, GREEN, GREY = (16, 16, 16), (255, 0, 0), (0, 0, 255), (0, 255, 0), (128, 128, 128)

# ---------------------------------------------------------------------------------------------------------
# sources


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the sources are made in."""
    return tmp_path_factory.mktemp("realworld")


@pytest.fixture(scope="module")
def rotated(media: Path) -> Path:
    """Phone clip: 320x240 coded, left half red and right half blue, 1 s 25p + 1 kHz tone, with a display
    matrix rotating it 90 degrees counter-clockwise (ffmpeg -display_rotation 90, stream copy): it is
    meant to be seen as a 240x320 portrait picture, blue on top, red at the bottom."""
    base = media / "rotated-base.mp4"
    make_clip(base, video="color=c=red:size=160x240:rate=25:duration=1[l];"
                          "color=c=blue:size=160x240:rate=25:duration=1[r];[l][r]hstack")
    path = media / "phone-rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", "file:" + str(base), "-c", "copy", "file:" + str(path))
    return path


def _sar_clip(path: Path, sar: str, width: int = 720) -> Path:
    """A grey ``width``x576 picture with a 16 px red stripe at the left edge and a green one at the right."""
    picture = (f"color=c=gray:size={width}x576:rate=25:duration=1,"
               "drawbox=x=0:y=0:w=16:h=576:color=red:t=fill,"
               f"drawbox=x={width - 16}:y=0:w=16:h=576:color=lime:t=fill,"
               f"setsar={sar}")
    return make_clip(path, video=picture)


@pytest.fixture(scope="module")
def anamorphic_16x9(media: Path) -> Path:
    """PAL SD anamorphic widescreen: 720x576 25p, SAR 64:45 (display 16:9), grey with a 16 px red stripe
    at the left edge and a green one at the right edge; 1 s + 1 kHz tone."""
    return _sar_clip(media / "pal-16x9.mp4", "64/45")


@pytest.fixture(scope="module")
def anamorphic_704(media: Path) -> Path:
    """PAL SD anamorphic widescreen from the 704 px active width: 704x576 25p, SAR 16:11 (display 16:9),
    same red/green edge stripes; 1 s + 1 kHz tone."""
    return _sar_clip(media / "pal-704-16x9.mp4", "16/11", width=704)


@pytest.fixture(scope="module")
def anamorphic_4x3(media: Path) -> Path:
    """PAL SD 4:3: 720x576 25p, SAR 16:15 (display 4:3), same red/green edge stripes; 1 s + 1 kHz tone."""
    return _sar_clip(media / "pal-4x3.mp4", "16/15")


@pytest.fixture(scope="module")
def vfr(media: Path) -> Path:
    """Phone-style variable frame rate: 2 s, 60 frames of 320x240 whose intervals cycle 39.3/39.3/21.3 ms
    (about 30 fps on average), timestamps on a 1/90000 clock; + 1 kHz tone."""
    return make_clip(media / "phone-vfr.mp4", seconds=2, output_args=("-fps_mode", "vfr", "-enc_time_base", "1/90000"),
                     video="testsrc2=size=320x240:rate=30:duration=2,settb=1/90000,"
                           "setpts='(N/30+0.006*(mod(N\\,3)-1))/TB'")


@pytest.fixture(scope="module")
def interlaced(media: Path) -> Path:
    """PAL SD interlaced: 720x576i25 top field first, made from 50p testsrc2 scrolling sideways 7 px per
    field (interlace=scan=tff, x264 with -flags +ildct+ilme, flagged TFF); 1 s + 1 kHz tone."""
    return make_clip(media / "pal-576i25.mp4", video="testsrc2=size=720x576:rate=50:duration=1,"
                     "scroll=h=0.01,interlace=scan=tff:lowpass=0,setfield=tff",
                     output_args=("-flags", "+ildct+ilme"))


def _rate_clip(media: Path, name: str, rate: str) -> Path:
    return make_clip(media / name, rate=rate)


@pytest.fixture(scope="module")
def ntsc_2997(media: Path) -> Path:
    """320x240 at 30000/1001 fps, 1 s (30 frames) + 1 kHz tone."""
    return _rate_clip(media, "ntsc-29.97.mp4", "30000/1001")


@pytest.fixture(scope="module")
def rate_30(media: Path) -> Path:
    """320x240 at exactly 30 fps, 1 s (30 frames) + 1 kHz tone."""
    return _rate_clip(media, "phone-30.mp4", "30")


@pytest.fixture(scope="module")
def rate_60(media: Path) -> Path:
    """320x240 at 60 fps, 1 s (60 frames) + 1 kHz tone."""
    return _rate_clip(media, "action-60.mp4", "60")


@pytest.fixture(scope="module")
def mono(media: Path) -> Path:
    """320x240 25p, 1 s, one mono audio stream: 1 kHz tone at -20 dBFS."""
    return make_clip(media / "mono.mp4", audio_channels=1)


@pytest.fixture(scope="module")
def surround(media: Path) -> Path:
    """320x240 25p, 1 s, one 5.1 AAC stream: 440 Hz in front left, 1 kHz in front right, 700 Hz in the
    centre, silence in LFE and the surrounds."""
    return make_clip(media / "surround-5.1.mp4", audio_channels=6,
                     audio="aevalsrc='0.5*sin(2*PI*440*t)|0.5*sin(2*PI*1000*t)|0.5*sin(2*PI*700*t)|0|0|0'"
                           ":channel_layout=5.1:sample_rate=48000:duration=1")


@pytest.fixture(scope="module")
def several_audio(media: Path) -> Path:
    """Matroska, 320x240 25p, 1 s, two stereo audio streams: #1 English 440 Hz (not default),
    #2 Chinese 1 kHz (the default stream)."""
    path = media / "two-languages.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=1",
           "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-af", "volume=-20dB",
           "-disposition:a:0", "0", "-disposition:a:1", "default",
           "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=chi", "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def dual_mono(media: Path) -> Path:
    """320x240 25p, 1 s, two mono audio streams (dual mono): #1 440 Hz (left), #2 1 kHz (right)."""
    path = media / "dual-mono.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=1",
           "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1", "-af", "volume=-20dB", "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def no_audio(media: Path) -> Path:
    """320x240 25p, 1 s, video only."""
    return make_clip(media / "mute.mp4", audio=None)


@pytest.fixture(scope="module")
def late_audio(media: Path) -> Path:
    """320x240 25p, 2 s of video from 0 s; a mono 1 kHz tone (1.5 s) that starts 0.5 s later than the
    picture (-itsoffset 0.5 on the audio input)."""
    return make_clip(media / "late-audio.mp4", seconds=2, audio="sine=frequency=1000:sample_rate=48000:duration=1.5",
                     audio_args=("-itsoffset", "0.5"), audio_channels=1)


@pytest.fixture(scope="module")
def named(media: Path) -> dict[str, Path]:
    """Files whose names are traps, each a 1 s 320x240 clip of one solid colour + tone:
    ``中文 新闻 01.mov`` (yellow), ``-i.mp4`` (green), ``concat:a.mp4|b.mp4`` (magenta); and beside them
    the decoys ``a.mp4`` (red) and ``b.mp4`` (blue) that the concat: protocol would read instead."""
    folder = media / "names"
    colours = {"中文 新闻 01.mov": "yellow", "-i.mp4": "lime", "concat:a.mp4|b.mp4": "magenta",
               "a.mp4": "red", "b.mp4": "blue"}
    for name, colour in colours.items():
        make_clip(folder / name, video=f"color=c={colour}:size=320x240:rate=25:duration=1")
    return {name: folder / name for name in colours}


# ---------------------------------------------------------------------------------------------------------
# the runs


@pytest.fixture(scope="module")
def edit_radio(media: Path, rotated: Path, anamorphic_16x9: Path, anamorphic_704: Path, anamorphic_4x3: Path,
               vfr: Path,
               interlaced: Path, mono: Path, surround: Path, several_audio: Path, dual_mono: Path,
               late_audio: Path, named: dict[str, Path]) -> Batch:
    """One `onetake run --channels edit,radio` over every source that has audio; the trap names are
    passed relative to their folder, after `--`."""
    sources = [rotated, anamorphic_16x9, anamorphic_704, anamorphic_4x3, vfr, interlaced, mono, surround, several_audio,
               dual_mono, late_audio]
    traps = ["中文 新闻 01.mov", "-i.mp4", "concat:a.mp4|b.mp4"]
    return run_batch(sources, media / "out-edit-radio", "edit,radio", cwd=named["a.mp4"].parent, names=traps)


@pytest.fixture(scope="module")
def tv(media: Path, interlaced: Path, ntsc_2997: Path, rate_30: Path, rate_60: Path, no_audio: Path,
       dual_mono: Path) -> Batch:
    """One `onetake run --channels tv` over the interlaced, 29.97/30/60 fps, silent and dual-mono sources."""
    return run_batch([interlaced, ntsc_2997, rate_30, rate_60, no_audio, dual_mono], media / "out-tv", "tv")


@pytest.fixture(scope="module")
def web(media: Path, rate_60: Path) -> Batch:
    """One `onetake run --channels web` over the 60 fps source."""
    return run_batch([rate_60], media / "out-web", "web")


def edit_proxy(batch: Batch, source: Path) -> Path:
    return batch.delivery(source, "edit") / "edit-proxy.mp4"


def bwf(batch: Batch, source: Path) -> Path:
    return batch.delivery(source, "radio") / "radio-bwf.wav"


def xdcam(batch: Batch, source: Path) -> Path:
    return batch.delivery(source, "tv") / "tv-hd-xdcam422.mxf"


# ---------------------------------------------------------------------------------------------------------
# pictures


def test_rotation_applied(rotated: Path, edit_radio: Batch) -> None:
    info = probe_json(rotated)["video"][0]
    assert (info["width"], info["height"], info["rotation"]) == (320, 240, 90)

    picture = rgb_at(edit_proxy(edit_radio, rotated))
    assert picture.shape == (540, 960, 3)
    # a 240x320 portrait picture scaled to 540 high is ~405 wide: pillarbox bars of ~277 px each side
    assert is_colour(picture[:400, :260], BLACK, 30), "no left bar: the picture was not turned upright"
    assert is_colour(picture[:400, 700:], BLACK, 30), "no right bar: the picture was not turned upright"
    # turned 90 degrees counter-clockwise: the left (red) half is at the bottom, the blue half on top
    assert is_colour(picture[20:250, 300:660], BLUE), "top half of the upright picture is not the blue half"
    assert is_colour(picture[290:440, 300:660], RED), "bottom half of the upright picture is not the red half"


def _stripes(picture: np.ndarray, rows: slice) -> tuple[int, int, int, int]:
    """First/last columns of the red stripe and of the green stripe, in ``rows``."""
    band = picture[rows].mean(axis=0)
    red = np.where((band[:, 0] > 150) & (band[:, 1] < 100))[0]
    green = np.where((band[:, 1] > 150) & (band[:, 0] < 100))[0]
    assert red.size and green.size, "the red and green edge stripes of the source are not in the output"
    return int(red.min()), int(red.max()), int(green.min()), int(green.max())


@pytest.mark.parametrize("fixture, width, sar", [("anamorphic_16x9", 720, "64:45"), ("anamorphic_704", 704, "16:11")])
def test_anamorphic_16x9_fills_the_frame(fixture: str, width: int, sar: str, edit_radio: Batch,
                                         request: pytest.FixtureRequest) -> None:
    source = request.getfixturevalue(fixture)
    info = probe_json(source)["video"][0]
    assert (info["width"], info["height"], info["sar"]) == (width, 576, sar)

    picture = rgb_at(edit_proxy(edit_radio, source))
    assert picture.shape == (540, 960, 3)
    red_left, red_right, green_left, green_right = _stripes(picture, slice(50, 400))
    # 720 px at SAR 64:45 (or 704 at 16:11) is 1024 square pixels wide: the whole 960 px, no bars, no crop
    assert red_left <= 1 and green_right >= 958, "16:9 anamorphic picture got bars or was cropped"
    assert 18 <= red_right - red_left + 1 <= 25, "the 16 px stripe should be 21-22 px wide once de-squeezed"
    assert is_colour(picture[50:400, 100:860], GREY, 30)


def test_anamorphic_4x3_pillarboxed_not_stretched(anamorphic_4x3: Path, edit_radio: Batch) -> None:
    info = probe_json(anamorphic_4x3)["video"][0]
    assert (info["width"], info["height"], info["sar"]) == (720, 576, "16:15")

    picture = rgb_at(edit_proxy(edit_radio, anamorphic_4x3))
    assert picture.shape == (540, 960, 3)
    assert is_colour(picture[50:400, :110], BLACK, 30), "4:3 picture has no left pillarbox bar"
    assert is_colour(picture[50:400, 850:], BLACK, 30), "4:3 picture has no right pillarbox bar"
    red_left, red_right, green_left, green_right = _stripes(picture, slice(50, 400))
    # a 4:3 picture 540 high is 720 wide: it spans columns 120..839
    assert abs(red_left - 120) <= 2 and abs(green_right - 839) <= 2, (
        f"4:3 picture spans columns {red_left}..{green_right}, expected 120..839 (stretched or shifted)")
    assert 14 <= red_right - red_left + 1 <= 18, "the 16 px edge stripe changed width: the picture was stretched"


def test_variable_frame_rate_made_constant(vfr: Path, edit_radio: Batch) -> None:
    info = probe_json(vfr)["video"][0]
    assert info["variable_frame_rate"] is True
    assert abs(float(Fraction(info["frame_rate"])) - 30) < 0.1

    rate, times = video_timing(edit_proxy(edit_radio, vfr))
    assert rate == 25
    steps = np.diff(times)
    assert np.allclose(steps, 0.04, atol=0.001), f"output frame intervals are not constant: {sorted(set(steps))}"
    assert abs(len(times) - 50) <= 1, f"2 s at 25 fps should be 50 frames, got {len(times)}"


def test_interlaced_source_deinterlaced_for_edit(interlaced: Path, edit_radio: Batch) -> None:
    info = probe_json(interlaced)["video"][0]
    assert info["scan"] == "tff"
    source_combing = np.median([combing_ratio(f.to_ndarray(format="gray")) for f in video_frames(interlaced, 6)])
    assert source_combing > 3, "test source should show combing on motion"

    frames = video_frames(edit_proxy(edit_radio, interlaced), 6)
    assert not any(f.interlaced_frame for f in frames), "edit proxy is flagged interlaced"
    combing = np.median([combing_ratio(f.to_ndarray(format="gray")[:440, 80:880]) for f in frames])
    assert combing < 1.0, f"edit proxy still shows interlace combing ({combing:.2f})"


def test_interlaced_source_stays_tff_for_tv(interlaced: Path, tv: Batch) -> None:
    path = xdcam(tv, interlaced)
    with av.open(str(path)) as c:
        assert str(c.streams.video[0].codec_context.field_order).lower() in ("tt", "2")
    frames = video_frames(path, 4)
    assert all(f.interlaced_frame for f in frames), "tv output is not flagged interlaced"
    # the source scrolls sideways at a constant speed: in true TFF, top field -> bottom field -> next top
    # field are three equal steps in time, so the two shifts are equal (swapped fields give -d then +3d)
    gray = [f.to_ndarray(format="gray")[100:900] for f in frames[1:3]]
    top, bottom, next_top = gray[0][0::2], gray[0][1::2], gray[1][0::2]
    first, second = shift_between(top, bottom), shift_between(bottom, next_top)
    assert first != 0 and abs(first - second) <= 2, f"field order is not top first: shifts {first}, {second}"


@pytest.mark.parametrize("fixture, frames", [("ntsc_2997", 30), ("rate_30", 30), ("rate_60", 60)])
def test_frame_rate_made_25_for_tv(fixture: str, frames: int, tv: Batch, request: pytest.FixtureRequest) -> None:
    source = request.getfixturevalue(fixture)
    _, source_times = video_timing(source)
    assert len(source_times) == frames
    path = xdcam(tv, source)
    rate, times = video_timing(path)
    assert rate == 25
    assert all(f.interlaced_frame for f in video_frames(path, 3)), "tv output is not flagged interlaced (TFF)"
    duration = source_times[-1] + (source_times[1] - source_times[0])
    assert abs(len(times) - round(duration * 25)) <= 1, f"{len(times)} frames for a {duration:.3f} s source"
    assert np.allclose(np.diff(times), 0.04, atol=0.001)


def test_60fps_halved_to_30_for_web(rate_60: Path, web: Batch) -> None:
    folder = web.delivery(rate_60, "web")
    rate, times = video_timing(folder / "web-hls.mp4")
    assert rate == 30
    assert abs(len(times) - 30) <= 1
    assert np.allclose(np.diff(times), 1 / 30, atol=0.001)
    master = (folder / "web-hls" / "master.m3u8").read_text()
    assert re.findall(r"FRAME-RATE=([\d.]+)", master) == ["30.000"]


# ---------------------------------------------------------------------------------------------------------
# sound


def test_mono_source_fills_both_channels(mono: Path, edit_radio: Batch) -> None:
    assert [a["channels"] for a in probe_json(mono)["audio"]] == [1]
    audio, rate = audio_of(bwf(edit_radio, mono))
    assert audio.shape[0] == 2
    left, right = audio[0], audio[1]
    assert level(left) > -40 and level(right) > -40, "a channel of the mono programme is silent"
    assert np.allclose(left, right, atol=1e-4), "mono source should give identical left and right"
    assert abs(dominant_hz(left, rate) - 1000) <= 2


def test_surround_downmixed_with_centre(surround: Path, edit_radio: Batch) -> None:
    info = probe_json(surround)["audio"]
    assert [(a["channels"], a["layout"]) for a in info] == [(6, "5.1")]
    audio, rate = audio_of(bwf(edit_radio, surround))
    assert audio.shape[0] == 2
    left, right = audio[0], audio[1]
    # front left only on the left, front right only on the right, the centre (dialogue) in both
    assert tone(left, rate, 440) > 10 * tone(left, rate, 1000)
    assert tone(right, rate, 1000) > 10 * tone(right, rate, 440)
    for side in (left, right):
        assert tone(side, rate, 700) > 0.3 * max(tone(side, rate, 440), tone(side, rate, 1000)), \
            "the centre channel is missing from the stereo downmix"


def test_several_audio_streams_take_the_default(several_audio: Path, edit_radio: Batch) -> None:
    info = probe_json(several_audio)["audio"]
    assert [(a["language"], a["default"]) for a in info] == [("eng", False), ("chi", True)]
    audio, rate = audio_of(bwf(edit_radio, several_audio))
    assert abs(dominant_hz(audio[0], rate) - 1000) <= 2, "radio programme is not the default audio stream"
    edit_audio, edit_rate = audio_of(edit_proxy(edit_radio, several_audio))
    assert abs(dominant_hz(edit_audio[0], edit_rate) - 1000) <= 2
    assert tone(audio[0], rate, 440) < 0.05 * tone(audio[0], rate, 1000), "the other language leaked in"


def test_dual_mono_becomes_left_and_right(dual_mono: Path, edit_radio: Batch, tv: Batch) -> None:
    assert [a["channels"] for a in probe_json(dual_mono)["audio"]] == [1, 1]
    audio, rate = audio_of(bwf(edit_radio, dual_mono))
    assert audio.shape[0] == 2
    assert abs(dominant_hz(audio[0], rate) - 440) <= 2, "left should be the first mono stream"
    assert abs(dominant_hz(audio[1], rate) - 1000) <= 2, "right should be the second mono stream"
    # playout: ch1/ch2 are separate mono tracks carrying the same left/right
    path = xdcam(tv, dual_mono)
    track1, r1 = audio_of(path, 0)
    track2, r2 = audio_of(path, 1)
    assert track1.shape[0] == track2.shape[0] == 1
    assert abs(dominant_hz(track1[0], r1) - 440) <= 2 and abs(dominant_hz(track2[0], r2) - 1000) <= 2


def test_no_audio_gets_silent_tracks_for_tv(no_audio: Path, tv: Batch) -> None:
    assert probe_json(no_audio)["audio"] == []
    path = xdcam(tv, no_audio)
    with av.open(str(path)) as c:
        tracks = list(c.streams.audio)
        assert len(tracks) == 2, "playout needs audio tracks even for a silent source"
        assert all(t.codec_context.name == "pcm_s24le" and t.codec_context.channels == 1 for t in tracks)
    _, times = video_timing(path)
    for i in range(2):
        audio, rate = audio_of(path, i)
        assert level(audio) < -90, "the added tracks should be silent"
        assert abs(audio.shape[1] / rate - len(times) / 25) <= 0.05, "silent track does not run as long as the picture"


def _late_audio_checks(audio: np.ndarray, rate: int, what: str) -> None:
    env = np.abs(audio).max(axis=0)
    assert level(audio[:, : int(0.4 * rate)]) < -70, f"{what}: the first 0.4 s should be silent"
    assert level(audio[:, int(0.6 * rate): int(1.4 * rate)]) > -50, f"{what}: the tone is missing after 0.6 s"
    onset = int(np.argmax(env > 0.3 * env.max())) / rate
    assert abs(onset - 0.5) <= 0.03, f"{what}: tone starts at {onset:.3f} s, it should start at 0.5 s"


def test_late_audio_kept_in_sync(late_audio: Path, edit_radio: Batch) -> None:
    info = probe_json(late_audio)
    offset = info["audio"][0]["start_time"] - info["video"][0]["start_time"]
    assert abs(offset - 0.5) <= 0.03, f"probe reports an audio offset of {offset:.3f} s"

    audio, rate = audio_of(bwf(edit_radio, late_audio))
    _late_audio_checks(audio, rate, "radio-bwf")
    assert abs(audio.shape[1] / rate - 2.0) <= 0.05
    audio, rate = audio_of(edit_proxy(edit_radio, late_audio))
    _late_audio_checks(audio, rate, "edit-proxy")


# ---------------------------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize("name, colour, asset_prefix", [
    ("中文 新闻 01.mov", (255, 255, 0), "中文-新闻-01-"),
    ("-i.mp4", GREEN, "i-"),
    ("concat:a.mp4|b.mp4", (255, 0, 255), "concat-a-mp4-b-"),
])
def test_awkward_names_read_as_plain_files(name: str, colour: tuple[int, int, int], asset_prefix: str,
                                           named: dict[str, Path], edit_radio: Batch) -> None:
    source = named[name]
    folder = edit_radio.delivery(source, "edit")
    assert folder.name.startswith(asset_prefix)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["path"] == str(source)
    proxy = folder / "edit-proxy.mp4"
    # the very file named, not what ffmpeg would make of the name as an option or a protocol
    assert is_colour(rgb_at(proxy)[50:400, 200:760], colour), f"{name}: delivered picture is not the file's"
    rate, times = video_timing(proxy)
    assert abs(len(times) - 25) <= 1, f"{name}: 1 s source gave {len(times)} frames"
    radio = edit_radio.delivery(source, "radio")
    assert (radio / "radio-bwf.wav").is_file()
