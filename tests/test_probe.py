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
