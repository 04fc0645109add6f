"""probe on generated clips: what it reports, and the second line of defence against playlists."""

from __future__ import annotations

import pytest

from conftest import make_clip
from onetake.pipeline import probe as probe_module
from onetake.pipeline.errors import SourceError
from onetake.pipeline.probe import probe


def test_probe_reports_streams_rate_timecode_and_colour(tmp_path):
    clip = make_clip(tmp_path / "tc.mov", seconds=1, rate="30000/1001",
                     output_args=("-timecode", "01:02:03;04", "-vf",
                                  "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709"))
    info = probe(clip)
    assert info.format == "mov" and info.timecode == "01:02:03;04"
    [v] = info.video
    assert (v.codec, v.width, v.height, v.frame_rate, v.scan, v.variable_frame_rate) == \
        ("h264", 320, 240, "30000/1001", "progressive", False)
    assert (v.color_primaries, v.color_transfer, v.color_matrix) == ("bt709", "bt709", "bt709")
    [a] = info.audio
    assert (a.codec, a.channels, a.layout, a.sample_rate, a.default) == ("aac", 2, "stereo", 48000, True)
    assert len(info.sha256) == 64 and info.size == clip.stat().st_size


def test_a_playlist_past_the_content_check_is_still_refused(tmp_path, monkeypatch):
    """Without the content sniff, the demuxer whitelist alone keeps the HLS reader from opening."""
    target = make_clip(tmp_path / "other.mp4")
    playlist = tmp_path / "innocent.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{target}\n#EXT-X-ENDLIST\n")
    monkeypatch.setattr(probe_module, "_sniff", lambda path, head: None)
    with pytest.raises(SourceError, match="is not a media file onetake can read"):
        probe(playlist)


def test_unflagged_interlace_is_found_by_sampling(tmp_path):
    """720x576: 50p woven into 25i without interlace flags, and plain 25p for contrast."""
    woven = make_clip(tmp_path / "woven.mp4", size="720x576", rate="50", audio=None,
                      output_args=("-vf", "interlace=scan=tff"))
    plain = make_clip(tmp_path / "plain.mp4", size="720x576", rate="25", audio=None)
    assert (probe(woven).video[0].scan, probe(woven).video[0].scan_basis) == ("tff", "sampled")
    assert probe(plain).video[0].scan == "progressive"


def test_cover_art_does_not_make_audio_look_like_video(tmp_path):
    """3 s AAC in .m4a with a PNG cover picture attached."""
    cover = tmp_path / "cover.png"
    from conftest import ffmpeg
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=64x64", "-frames:v", "1", "file:" + str(cover))
    tone = make_clip(tmp_path / "tone.m4a", seconds=3, video=None)
    song = tmp_path / "song.m4a"
    ffmpeg("-i", "file:" + str(tone), "-i", "file:" + str(cover), "-map", "0", "-map", "1", "-c", "copy",
           "-disposition:v:0", "attached_pic", "file:" + str(song))
    info = probe(song)
    assert info.video == () and info.audio[0].duration > 2.9


def test_motion_jpeg_video_is_video_not_a_still(tmp_path):
    """1 s of MJPEG in Matroska, whose container declares no frame count."""
    clip = tmp_path / "mj.mkv"
    from conftest import ffmpeg
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-c:v", "mjpeg", "file:" + str(clip))
    assert probe(clip).video[0].codec == "mjpeg"


def test_metadata_that_is_not_utf8_is_read_with_replacements(tmp_path):
    clip = make_clip(tmp_path / "gbk.mov", output_args=("-metadata", "title=placeholder"))
    data = clip.read_bytes().replace(b"placeholder", "新闻联播xyz".encode("gbk"))
    clip.write_bytes(data)
    assert probe(clip).duration > 0.9
