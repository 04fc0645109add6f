"""Material as a newsroom receives it, each case made by ffmpeg to reproduce what real files do that test patterns
never do: captures cut mid-GOP, phones that drop frames and switch rates, HDR flagged only in the bitstream,
608-line D-10, pictures that change size, damaged tape and cards, audio with sharp transients and clipping.
Each delivers every channel asked for and passes verify, or is refused before encoding in one line.

Sources are batched, one `onetake run --json` per channel set (module fixtures), as in test_realworld.py.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ffmpeg, make_clip
from media import Batch, audio_of, probe_json, run_batch, video_frames, video_timing
from onetake.cli import cli
from onetake.workers.package import read_media_playlist

# ---------------------------------------------------------------------------------------------------------
# sources


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("material")


@pytest.fixture(scope="module")
def midgop_ts(media: Path) -> Path:
    """A broadcast capture cut mid-GOP: 16:9 anamorphic SD MPEG-2 (720x576, SAR 64:45, flagged TFF, GOP 12 with
    B-frames) and MP2 in a transport stream, 6 s of black with a white flash on the first frame of every second
    and a 40 ms 1 kHz beep at the same instants, then cut at a packet boundary 37 % into the file, so it starts
    with a partial PES and pictures that refer to ones it does not hold."""
    whole = media / "capture-whole.ts"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=720x576:rate=25:duration=6,"
           "drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t\\,1)\\,0.02)',setfield=tff",
           "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=6,"
           "volume=0:enable='gte(mod(t\\,1)\\,0.04)'",
           "-c:v", "mpeg2video", "-b:v", "6M", "-g", "12", "-bf", "2", "-flags", "+ildct+ilme", "-aspect", "16:9",
           "-c:a", "mp2", "-b:a", "256k", "-f", "mpegts", "file:" + str(whole))
    data = whole.read_bytes()
    cut = media / "capture-midgop.ts"
    cut.write_bytes(data[int(len(data) * 0.37) // 188 * 188:])
    return cut


@pytest.fixture(scope="module")
def vfr_phone(media: Path) -> Path:
    """A phone clip shot at 15 fps for 2 s, then 30 fps, dropping one picture in seven and pausing 1.2 s (no
    pictures at all) at 6 s; 10 s, 640x360, timestamps kept as shot; AAC tone."""
    return make_clip(media / "phone-vfr.mp4", seconds=10, size="640x360", rate="30",
                     video_args=(), output_args=("-fps_mode", "vfr"),
                     video="testsrc2=size=640x360:rate=30:duration=10,"
                           "select='(gte(t\\,2)+not(mod(n\\,2)))*not(eq(mod(n\\,7)\\,3))*not(between(t\\,6\\,7.2))'")


@pytest.fixture(scope="module")
def live_photo(media: Path) -> Path:
    """A phone's "live photo" MOV: 1440x1080, 15 fps for 1.5 s then 30 fps, mono LPCM at 44.1 kHz, plus a
    timed-text track and a timecode track beside the picture; 3 s."""
    srt = media / "live.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:02,000\nlive\n", encoding="utf-8")
    path = media / "IMG_0042.MOV"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1440x1080:rate=30:duration=3", "-f", "lavfi", "-i",
           "sine=frequency=500:sample_rate=44100:duration=3", "-i", str(srt),
           "-vf", "select='if(lt(t\\,1.5)\\,not(mod(n\\,2))\\,1)'", "-fps_mode", "vfr", "-map", "0:v", "-map", "1:a",
           "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", "-ac", "1",
           "-c:s", "mov_text", "-timecode", "01:02:03:04", "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def odd_screen(media: Path) -> Path:
    """A phone screen recording: 1179x2556 (odd width), 4:4:4 H.264, variable rate (60 fps for 0.5 s, then
    every third picture); 1.5 s, no audio."""
    return make_clip(media / "screen-recording.mp4", seconds=1.5, size="1179x2556", rate="60", audio=None,
                     video="testsrc2=size=1179x2556:rate=60:duration=1.5,select='not(mod(n\\,3))+lt(t\\,0.5)'",
                     output_args=("-fps_mode", "vfr", "-pix_fmt", "yuv444p"))


@pytest.fixture(scope="module")
def messenger(media: Path) -> Path:
    """A clip forwarded by a messenger app: 544x960 portrait, 30 fps, AAC at 32 kb/s; 2 s."""
    return make_clip(media / "forwarded.mp4", seconds=2, size="544x960", rate="30")


@pytest.fixture(scope="module")
def size_change(media: Path) -> Path:
    """A feed whose pictures change size mid-stream: 2 s of 640x360, then 2 s of 960x540, in one H.264 stream
    in a transport stream (new parameter sets in-band); AAC tone."""
    parts = []
    for size in ("640x360", "960x540"):
        part = media / f"part-{size}.h264"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=2", "-c:v", "libx264", "-preset",
               "ultrafast", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "file:" + str(part))
        parts.append(part.read_bytes())
    joined = media / "joined.h264"
    joined.write_bytes(b"".join(parts))
    path = media / "feed-size-change.ts"
    ffmpeg("-r", "25", "-f", "h264", "-i", "file:" + str(joined), "-f", "lavfi", "-i", "sine=duration=4",
           "-c:v", "copy", "-c:a", "aac", "-f", "mpegts", "file:" + str(path))
    return path


def _hdr(media: Path, name: str, transfer: str, container: str) -> Path:
    """320x240 HEVC 10-bit: a white left half (100 cd/m2, SDR white) and a black right half, converted to
    ``transfer`` with zscale and flagged only in the HEVC bitstream's VUI (a transport stream has no colour
    tags of its own)."""
    path = media / name
    ffmpeg("-f", "lavfi", "-i", "color=white:size=320x240:rate=25:duration=1,"
           "drawbox=x=160:y=0:w=160:h=240:color=black:t=fill,format=gbrpf32le,"
           f"zscale=tin=bt709:pin=bt709:min=bt709:t={transfer}:p=bt2020:m=bt2020nc:r=tv:npl=100,format=yuv420p10le",
           "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc",
           "-f", container, "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def hdr_pq(media: Path) -> Path:
    return _hdr(media, "hdr10-bitstream-only.ts", "smpte2084", "mpegts")


@pytest.fixture(scope="module")
def hdr_hlg(media: Path) -> Path:
    return _hdr(media, "phone-hlg.mov", "arib-std-b67", "mov")


@pytest.fixture(scope="module")
def d10(media: Path) -> Path:
    """D-10 (IMX 50) MXF, 2 frames: MPEG-2 4:2:2 I-frames of 720x608 whose 576-line picture is flat blue and
    whose 32 lines above it are white (where VBI data would be), 16:9, 4-channel PCM."""
    path = media / "imx50.mxf"
    ffmpeg("-f", "lavfi", "-i", "color=c=0x2050c0:size=720x576:rate=25:duration=0.08", "-f", "lavfi", "-i",
           "sine=frequency=1000:sample_rate=48000:duration=0.08", "-filter_complex",
           "[0]pad=720:608:0:32:color=white,setfield=tff,format=yuv422p[v];"
           "[1]aformat=channel_layouts=quad[a]", "-map", "[v]", "-map", "[a]", "-c:v", "mpeg2video", "-g", "1",
           "-b:v", "50M", "-minrate", "50M", "-maxrate", "50M", "-bufsize", "2000000", "-rc_init_occupancy", "2000000",
           "-flags", "+ildct+ilme+low_delay", "-aspect", "16:9", "-c:a", "pcm_s16le", "-f", "mxf_d10",
           "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def avchd(media: Path) -> Path:
    """A camcorder's AVCHD .MTS: H.264 1080i50 flagged TFF, AC-3 stereo, in M2TS (192-byte packets); 1 s."""
    path = media / "00001.MTS"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=50:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
           "-vf", "interlace=scan=tff,setfield=tff", "-c:v", "libx264", "-preset", "ultrafast", "-flags",
           "+ildct+ilme", "-x264-params", "tff=1", "-c:a", "ac3", "-f", "mpegts", "-mpegts_m2ts_mode", "1",
           "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def drone(media: Path) -> Path:
    """A drone's HEVC MP4 with tracks beside picture and sound (timed text, timecode); 1280x720 30 fps, 1 s."""
    srt = media / "telemetry.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nALT 120m\n", encoding="utf-8")
    path = media / "DJI_0001.MP4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
           "-i", str(srt), "-map", "0:v", "-map", "1:a", "-map", "2", "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", "log-level=error", "-c:a", "aac", "-c:s", "mov_text", "-timecode", "00:00:10:00",
           "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def audio_first(media: Path) -> Path:
    """An MP4 whose first stream is its audio: stream 0 AAC, stream 1 H.264 320x240; 1 s."""
    path = media / "audio-first.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
           "-map", "1:a", "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
           "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def eight_tracks(media: Path) -> Path:
    """Broadcast audio as playout servers write it: 8 mono PCM tracks (1 and 2 the programme, 3-8 more copies)
    beside MPEG-2 1080 in MXF; 1 s."""
    path = media / "eight-tracks.mxf"
    inputs = ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=1"]
    maps = ["-map", "0:v"]
    for i in range(8):
        inputs += ["-f", "lavfi", "-i", f"sine=frequency={440 + 110 * (i % 2)}:sample_rate=48000:duration=1"]
        maps += ["-map", f"{i + 1}:a"]
    ffmpeg(*inputs, *maps, "-c:v", "mpeg2video", "-pix_fmt", "yuv422p", "-b:v", "20M", "-c:a", "pcm_s24le",
           "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def voice_memos(media: Path) -> list[Path]:
    """A voice memo as AMR-NB (8 kHz mono, 12.2 kb/s) and as M4A (AAC mono); 2 s each."""
    amr = media / "memo.amr"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb",
           "-b:a", "12.2k", "file:" + str(amr))
    m4a = media / "memo.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-ac", "1", "-c:a", "aac", "file:" + str(m4a))
    return [amr, m4a]


@pytest.fixture(scope="module")
def transients(media: Path) -> Path:
    """Sound that tests true-peak limits: 8 s of speech-like bursts (pink noise opened and closed 3.7 times a
    second, with pauses), handclaps (white noise bursts decaying in 20 ms) from 5 s on, all driven into hard
    clipping, under a 320x240 picture. Peaks sit 15-18 dB above the loudness, so the web's -15 LUFS at -1 dBTP
    needs a working limiter, and AAC overshoots the limiter's ceiling on the claps."""
    path = media / "applause.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=8",
           "-f", "lavfi", "-i", "anoisesrc=d=8:c=pink:r=48000:a=0.5:seed=3",
           "-f", "lavfi", "-i", "anoisesrc=d=8:c=white:r=48000:a=1:seed=5", "-filter_complex",
           "[1:a]volume='max(0\\,sin(2*PI*3.7*t))*if(lt(mod(t\\,2.5)\\,1.8)\\,1\\,0.05)*1.5':eval=frame[speech];"
           "[2:a]volume='if(gte(t\\,5)\\,2*exp(-mod(t\\,0.37)*50)\\,0)':eval=frame[claps];"
           "[speech][claps]amix=inputs=2:normalize=0,asoftclip=type=hard,aformat=channel_layouts=stereo[mix]",
           "-map", "0:v", "-map", "[mix]", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "256k",
           "file:" + str(path))
    return path


# ---------------------------------------------------------------------------------------------------------
# batches: one `onetake run` per channel set


@pytest.fixture(scope="module")
def pictures(media: Path, vfr_phone: Path, live_photo: Path, odd_screen: Path, messenger: Path, size_change: Path,
             hdr_pq: Path, hdr_hlg: Path, drone: Path, audio_first: Path) -> Batch:
    return run_batch([vfr_phone, live_photo, odd_screen, messenger, size_change, hdr_pq, hdr_hlg, drone, audio_first],
                     media / "out-pictures", "web,short,edit")


@pytest.fixture(scope="module")
def broadcast(media: Path, midgop_ts: Path, d10: Path, avchd: Path, eight_tracks: Path, live_photo: Path) -> Batch:
    return run_batch([midgop_ts, d10, avchd, eight_tracks, live_photo], media / "out-broadcast", "tv,edit")


@pytest.fixture(scope="module")
def sound(media: Path, transients: Path, voice_memos: list[Path], eight_tracks: Path) -> Batch:
    return run_batch([transients, *voice_memos], media / "out-sound", "radio")


@pytest.fixture(scope="module")
def loud(media: Path, transients: Path) -> Batch:
    return run_batch([transients], media / "out-loud", "web,short")


def manifest(batch: Batch, source: Path, channel: str) -> dict:
    return json.loads((batch.delivery(source, channel) / "manifest.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------
# what every source must get


@pytest.mark.parametrize("name", ["vfr_phone", "live_photo", "odd_screen", "messenger", "size_change", "hdr_pq",
                                  "hdr_hlg", "drone", "audio_first"])
def test_picture_sources_deliver_web_short_and_edit(name: str, pictures: Batch,
                                                    request: pytest.FixtureRequest) -> None:
    source = request.getfixturevalue(name)
    for channel in ("web", "short", "edit"):
        checks = manifest(pictures, source, channel)["checks"]
        assert checks and all(c["passed"] for c in checks)


@pytest.mark.parametrize("name", ["midgop_ts", "d10", "avchd", "eight_tracks", "live_photo"])
def test_broadcast_sources_deliver_tv_and_edit(name: str, broadcast: Batch, request: pytest.FixtureRequest) -> None:
    source = request.getfixturevalue(name)
    for channel in ("tv", "edit"):
        assert all(c["passed"] for c in manifest(broadcast, source, channel)["checks"])


def test_voice_memos_and_transients_deliver_radio(sound: Batch, transients: Path, voice_memos: list[Path]) -> None:
    for source in (transients, *voice_memos):
        assert all(c["passed"] for c in manifest(sound, source, "radio")["checks"])


# ---------------------------------------------------------------------------------------------------------
# loudness: true peaks under every limit on sound that is not a tone


def test_true_peak_stays_under_the_limit_on_transients_and_clipping(sound: Batch, loud: Batch,
                                                                   transients: Path) -> None:
    """The source peaks at +2.8 dBTP (clipped) and 15-18 dB above its loudness: every output, PCM, MP3 and AAC at
    three bitrates, is within its loudness tolerance and under its true-peak limit, measured as verify measures."""
    seen = 0
    for batch, channel in ((sound, "radio"), (loud, "web"), (loud, "short")):
        checks = manifest(batch, transients, channel)["checks"]
        peaks = {c["profile"]: c for c in checks if c["name"] == "true peak"}
        loudness = {c["profile"]: c for c in checks if c["name"] == "integrated loudness"}
        assert peaks and peaks.keys() == loudness.keys()
        for profile, check in peaks.items():
            limit = float(check["limit"].split()[1])
            assert check["value"] <= limit, f"{profile}: true peak {check['value']} over {limit}"
            target, tolerance = (float(x) for x in loudness[profile]["limit"].replace("±", " ").split()[:2])
            assert abs(loudness[profile]["value"] - target) <= tolerance
            seen += 1
    assert seen == 5  # radio-bwf, podcast-mp3, podcast-aac, hls-360, short-vertical


# ---------------------------------------------------------------------------------------------------------
# timing


def test_variable_rate_drops_switches_and_gaps_give_a_constant_rate_and_aligned_segments(pictures: Batch,
                                                                                         vfr_phone: Path) -> None:
    assert Fraction(probe_json(vfr_phone)["video"][0]["frame_rate"]) == 30  # the rate it was shot at, not 23.x
    hls = pictures.delivery(vfr_phone, "web") / "web-hls"
    rungs = [p for p in hls.iterdir() if p.is_dir()]
    assert rungs
    for rung in rungs:
        segments, _ = read_media_playlist(rung / "index.m3u8")
        assert max(d for d, _ in segments) <= 6.5 and sum(d for d, _ in segments) == pytest.approx(10, abs=0.1)
    rate, times = video_timing(pictures.delivery(vfr_phone, "web") / "web-hls.mp4")
    assert rate == 30 and np.allclose(np.diff(times), 1 / 30, atol=1e-3)


# ---------------------------------------------------------------------------------------------------------
# geometry


def test_live_photo_short_is_a_full_height_crop(pictures: Batch, live_photo: Path) -> None:
    [frame] = video_frames(pictures.delivery(live_photo, "short") / "short-vertical.mp4", 1)
    assert (frame.width, frame.height) == (1080, 1920)
    gray = frame.to_ndarray(format="gray")
    assert gray[:40].mean() > 30 and gray[-40:].mean() > 30  # picture to the top and bottom: cropped, not padded


def test_odd_sized_screen_recording_keeps_its_shape(pictures: Batch, odd_screen: Path) -> None:
    [frame] = video_frames(pictures.delivery(odd_screen, "edit") / "edit-proxy.mp4", 1)
    gray = frame.to_ndarray(format="gray")
    columns = np.flatnonzero(gray.mean(axis=0) > 20)
    width = columns[-1] - columns[0] + 1
    assert width == pytest.approx(540 * 1179 / 2556, abs=4)  # pillarboxed at its own shape


def test_pictures_that_change_size_mid_stream_all_arrive(pictures: Batch, size_change: Path) -> None:
    frames = video_frames(pictures.delivery(size_change, "edit") / "edit-proxy.mp4")
    assert len(frames) == 100 and {(f.width, f.height) for f in frames} == {(960, 540)}
    assert frames[-1].time == pytest.approx(3.96, abs=0.001)


# ---------------------------------------------------------------------------------------------------------
# a capture cut mid-GOP: where the programme starts, and sync


def _flashes(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [f.time for f in c.decode(video=0) if f.to_ndarray(format="gray").mean() > 128]


def _beeps(path: Path) -> list[float]:
    samples, rate = audio_of(path)
    envelope = np.abs(samples[0])
    block = rate // 1000  # 1 ms
    loud = envelope[: len(envelope) // block * block].reshape(-1, block).max(axis=1) > 0.05
    onsets = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    return [i / 1000 for i in onsets]


def test_a_capture_cut_mid_gop_starts_at_its_first_whole_picture_in_sync(broadcast: Batch, midgop_ts: Path) -> None:
    """Each flash and its beep were made on the same instant: after the undecodable start is skipped they still
    are, within a frame, in what the editors get."""
    info = probe_json(midgop_ts)["video"][0]
    assert info["lead_skipped"] > 0
    proxy = broadcast.delivery(midgop_ts, "edit") / "edit-proxy.mp4"
    flashes, beeps = _flashes(proxy), _beeps(proxy)
    assert len(flashes) >= 2 and len(beeps) >= len(flashes)
    for flash in flashes:
        assert min(abs(flash - b) for b in beeps) <= 0.04, f"flash at {flash:.3f} s has no beep within a frame"
    notes = manifest(broadcast, midgop_ts, "tv")["notes"]
    assert any("mid-GOP" in n for n in notes)


# ---------------------------------------------------------------------------------------------------------
# D-10 with VBI lines


def test_d10_vbi_lines_are_removed_and_two_frames_verify(broadcast: Batch, d10: Path) -> None:
    info = probe_json(d10)["video"][0]
    assert (info["width"], info["height"], info["vbi_lines"], info["sar"]) == (720, 608, 32, "64:45")
    checks = manifest(broadcast, d10, "tv")["checks"]
    rate = next(c for c in checks if c["name"] == "frame rate")
    assert rate["passed"] and rate["value"] == "25"
    [picture] = video_frames(d10, 1)
    blue = float(picture.to_ndarray(format="gray")[40:60].mean())
    for channel, file in (("edit", "edit-proxy.mp4"), ("tv", "tv-hd-xdcam422.mxf")):
        [frame] = video_frames(broadcast.delivery(d10, channel) / file, 1)
        top = frame.to_ndarray(format="gray")[:4].astype(float)
        assert abs(top.mean() - blue) < 12, f"{channel}: the top rows are not the picture (white VBI lines?)"


# ---------------------------------------------------------------------------------------------------------
# HDR


@pytest.mark.parametrize("name, kind", [("hdr_pq", "PQ"), ("hdr_hlg", "HLG")])
def test_hdr_is_tone_mapped_to_sdr(name: str, kind: str, pictures: Batch, request: pytest.FixtureRequest) -> None:
    """SDR white encoded as HDR comes back white (untouched, PQ's 100 cd/m2 would show as mid-grey), black stays
    black, and the manifest says what was done."""
    source = request.getfixturevalue(name)
    assert probe_json(source)["video"][0]["color_transfer"] in ("smpte2084", "arib-std-b67")
    for channel, file in (("web", "web-hls.mp4"), ("edit", "edit-proxy.mp4")):
        [frame] = video_frames(pictures.delivery(source, channel) / file, 1)
        gray = frame.to_ndarray(format="gray").astype(float)
        height, width = gray.shape
        inner = gray[height // 4: 3 * height // 4]
        white = inner[:, int(width * 0.3): int(width * 0.4)].mean()
        black = inner[:, int(width * 0.6): int(width * 0.7)].mean()
        assert white > 200 and black < 30, f"{channel}: white {white:.0f}, black {black:.0f}"
        assert frame.color_trc == 1 and frame.colorspace == 1  # BT.709
    notes = manifest(pictures, source, "web")["notes"]
    assert any(f"HDR ({kind}" in n and "tone-mapped" in n for n in notes)


# ---------------------------------------------------------------------------------------------------------
# damaged and unusable files: refused before encoding


@pytest.fixture(scope="module")
def no_parameter_sets(media: Path) -> Path:
    """An H.264 transport stream whose SPS and PPS were never captured (filter_units removed them)."""
    path = media / "no-sps.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-preset",
           "ultrafast", "-bsf:v", "filter_units=remove_types=7|8", "-f", "mpegts", "file:" + str(path))
    return path


@pytest.fixture(scope="module")
def worn_tape(media: Path) -> Path:
    """DV from a worn tape: 1 s of PAL DV whose video DIF blocks have 3000 random bytes each per frame (the
    header and subcode blocks of each DIF sequence left whole), so the decoder conceals errors in every picture."""
    good = media / "tape-good.dv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:duration=1", "-f", "lavfi", "-i",
           "sine=sample_rate=48000:duration=1", "-ac", "2", "-c:v", "dvvideo", "-pix_fmt", "yuv420p", "-c:a",
           "pcm_s16le", "-f", "dv", "file:" + str(good))
    data = bytearray(good.read_bytes())
    chance = random.Random(7)
    frame = 144000
    for start in range(0, len(data) - frame + 1, frame):
        for _ in range(3000):
            at = start + chance.randrange(480, frame)
            if (at - start) % 12000 // 80 >= 6:
                data[at] = chance.randrange(256)
    worn = media / "tape-worn.dv"
    worn.write_bytes(data)
    return worn


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_stream_without_parameter_sets_is_refused_before_encoding(no_parameter_sets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = _run(str(no_parameter_sets), "--out", str(out), "--channels", "edit")
    assert code == 1
    [line] = [x for x in stderr.splitlines() if x.startswith("FAILED")]
    assert str(no_parameter_sets) in line and "no parameter sets (SPS/PPS)" in line and "copy" in line
    assert not (out / "edit").exists() and not list(out.glob(".onetake/renditions/*"))


def test_a_worn_tape_is_refused_unless_damage_is_accepted(worn_tape: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = _run(str(worn_tape), "--out", str(out), "--channels", "edit")
    assert code == 1
    [line] = [x for x in stderr.splitlines() if x.startswith("FAILED")]
    assert "is damaged" in line and "error concealment" in line and "--accept-damaged" in line
    assert not list(out.glob(".onetake/renditions/*"))  # refused before any encode started
    code, _, stderr = _run(str(worn_tape), "--out", str(out), "--channels", "edit", "--accept-damaged")
    assert code == 0, stderr
    [delivery] = (out / "edit").iterdir()
    notes = json.loads((delivery / "manifest.json").read_text())["notes"]
    assert any(n.startswith("the source is damaged") for n in notes)


def test_json_runs_still_say_failed_on_stderr(no_parameter_sets: Path, tmp_path: Path) -> None:
    code, stdout, stderr = _run(str(no_parameter_sets), "--out", str(tmp_path / "out"), "--channels", "edit", "--json")
    assert code == 1
    summary = json.loads(stdout)  # stdout stays pure JSON
    assert summary["ok"] is False
    assert [x for x in stderr.splitlines() if x.startswith("FAILED")] == [
        f"FAILED {summary['sources'][0]['error']}"]
