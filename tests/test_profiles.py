"""Profiles and channel sets: shipped defaults, validation messages, user overrides, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from onetake.cli import cli
from onetake.pipeline.errors import ProfileError
from onetake.pipeline.profiles import load_catalog, load_profile_file

PROFILE_ROWS = {  # PROFILES.md, one row per rendition profile
    "tv-hd-xdcam422", "tv-hd-avci100", "tv-sd-imx50", "radio-bwf", "radio-mp2", "podcast-aac", "podcast-mp3",
    "hls-1080", "hls-720", "hls-540", "hls-360", "web-hls", "app-hls", "web-poster", "web-sprite",
    "short-vertical", "short-landscape", "short-cover", "edit-proxy",
    "photo-web", "photo-app-full", "photo-app-thumb", "photo-short-cover", "photo-original",
}


def test_every_profile_of_the_spec_ships(catalog):
    assert set(catalog.profiles) == PROFILE_ROWS
    assert list(catalog.channels) == ["tv", "radio", "web", "app", "short", "edit", "archive"]


def test_shipped_values_match_profiles_md(catalog):
    tv = catalog.profile("tv-hd-xdcam422")
    assert (tv.video.codec, tv.video.pix_fmt, tv.video.scan, tv.video.gop_frames, tv.video.bframes) == \
        ("mpeg2video", "yuv422p", "tff", 12, 2)
    assert (tv.video.bitrate_kbps, tv.video.bufsize_bits, tv.container.format) == (50000, 17825792, "mxf")
    assert (tv.audio.codec, tv.audio.tracks, tv.audio.silence_if_missing) == ("pcm_s24le", "mono", True)
    assert (tv.loudness.integrated, tv.loudness.true_peak) == (-24.0, -2.0)
    ladder = [catalog.profile(r) for r in catalog.profile("web-hls").hls.rungs]
    assert [(r.video.height, r.video.bitrate_kbps) for r in ladder] == [(1080, 6000), (720, 3000), (540, 2000),
                                                                         (360, 700)]
    assert all(r.video.gop_seconds == 2.0 and not r.video.scene_cut for r in ladder)
    assert catalog.profile("app-hls").hls.rungs == ("hls-720", "hls-540", "hls-360")
    assert catalog.profile("podcast-mp3").loudness.integrated == -16.0
    short = catalog.profile("short-vertical")
    assert (short.video.width, short.video.height, short.video.maxrate_kbps, short.loudness.integrated) == \
        (1080, 1920, 15000, -15.0)
    assert catalog.profile("edit-proxy").video.burn_timecode


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


AUDIO_PROFILE = """kind = "audio"
[container]
format = "wav"
extension = "wav"
[audio]
codec = "pcm_s24le"
[loudness]
integrated = -23.0
"""


def test_unknown_key_is_refused_with_section_and_key(tmp_path):
    path = write(tmp_path, "r128", AUDIO_PROFILE.replace("[audio]\n", "[audio]\nbitdepth = 24\n"))
    with pytest.raises(ProfileError) as err:
        load_profile_file(path)
    assert str(err.value).startswith(f"{path} [audio]: unknown key 'bitdepth'; known keys are ")


def test_out_of_range_value_names_file_field_and_range(tmp_path):
    path = write(tmp_path, "r128", AUDIO_PROFILE.replace("-23.0", "-3.0"))
    with pytest.raises(ProfileError) as err:
        load_profile_file(path)
    assert str(err.value) == f"{path} [loudness]: 'integrated' = -3.0 is out of range; it must be within [-70, -5]"


@pytest.mark.parametrize("edit, message", [
    (('codec = "pcm_s24le"', 'codec = "flac"'), "'codec' = 'flac' is not allowed; choose one of"),
    (('kind = "audio"', 'kind = "video"'), "'kind' = 'video' is not allowed"),
    (('[loudness]', '[loudnes]'), "unknown key 'loudnes'"),
    (('integrated = -23.0', 'integrated = "loud"'), "'integrated' must be a number, got 'loud'"),
    (('[loudness]\nintegrated = -23.0\n', ''), "a profile of kind 'audio' needs a [loudness] section"),
])
def test_bad_values_are_named(tmp_path, edit, message):
    path = write(tmp_path, "r128", AUDIO_PROFILE.replace(*edit))
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_profile_file(path)


def test_codec_options_cannot_smuggle_ffmpeg_flags(tmp_path):
    path = write(tmp_path, "evil", (Path(__file__).parents[1] / "onetake/profiles/edit-proxy.toml").read_text()
                 .replace('profile = "main"', 'profile = "main -f null"'))
    with pytest.raises(ProfileError, match="'profile' = 'main -f null' does not match"):
        load_profile_file(path)


def test_user_folder_overrides_and_adds(tmp_path):
    shipped = (Path(__file__).parents[1] / "onetake/profiles/radio-bwf.toml").read_text()
    write(tmp_path, "radio-bwf", shipped.replace("integrated = -24.0", "integrated = -23.0"))
    write(tmp_path, "radio-r128", AUDIO_PROFILE)
    catalog = load_catalog(tmp_path)
    assert catalog.profile("radio-bwf").loudness.integrated == -23.0
    assert catalog.profile("radio-r128").kind == "audio"
    assert catalog.origins["radio-bwf"] == str(tmp_path / "radio-bwf.toml")
    assert catalog.profile("tv-hd-xdcam422").loudness.integrated == -24.0


def test_user_channels_must_name_known_profiles(tmp_path):
    write(tmp_path, "channels", '[radio]\nprofiles = ["radio-bwf", "no-such-profile"]\n')
    with pytest.raises(ProfileError, match=r"channels.toml \[radio\]: unknown profile 'no-such-profile'"):
        load_catalog(tmp_path)


def test_content_key_ignores_name_and_description(catalog):
    a = catalog.profile("hls-720")
    b = load_profile_file(Path(__file__).parents[1] / "onetake/profiles/hls-720.toml")
    assert a.content_key() == b.content_key()
    assert a.content_key() != catalog.profile("hls-540").content_key()


def test_profiles_cli(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(cli, ["profiles", "list"])
    assert listed.exit_code == 0 and "tv-hd-xdcam422" in listed.output and "web,app" in listed.output
    shown = runner.invoke(cli, ["profiles", "show", "edit-proxy", "--json"])
    assert shown.exit_code == 0 and '"burn_timecode": true' in shown.output
    good = write(tmp_path, "ok", AUDIO_PROFILE)
    bad = write(tmp_path, "bad", AUDIO_PROFILE.replace("wav\"\n[audio]", "wav\"\ncolour = 1\n[audio]"))
    result = runner.invoke(cli, ["profiles", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"ok       {good}" in result.output
    assert f"invalid  {bad} [container]: unknown key 'colour'" in result.output
    missing = runner.invoke(cli, ["profiles", "show", "nope"])
    assert missing.exit_code == 2 and "unknown profile 'nope'" in missing.output


def test_unreadable_user_profiles_are_one_line(tmp_path):
    (tmp_path / "latin1.toml").write_bytes('description = "Überblick"\n'.encode("latin-1"))
    with pytest.raises(ProfileError, match=r"latin1.toml: cannot be read as a UTF-8 TOML file"):
        load_catalog(tmp_path)
    (tmp_path / "latin1.toml").unlink()
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(ProfileError, match=r"folder.toml: cannot be read as a UTF-8 TOML file"):
        load_catalog(tmp_path)
