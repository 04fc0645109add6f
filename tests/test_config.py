"""The farm config: one source of truth for defaults, refused unknown keys, CLI values winning."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from onetake.cli import cli, run_command
from onetake.pipeline.config import FarmConfig, load_config
from onetake.pipeline.errors import ConfigError


def test_defaults_come_from_farm_config():
    config = load_config(None)
    assert config == FarmConfig()
    assert config.work_path().endswith("out/.onetake")


def test_unknown_key_and_section_are_refused(tmp_path):
    path = tmp_path / "farm.toml"
    path.write_text("[farm]\nworkerz = 2\n")
    with pytest.raises(ConfigError, match=r"farm.toml \[farm\]: unknown key 'workerz'; known keys are "):
        load_config(path)
    path.write_text("[farms]\nworkers = 2\n")
    with pytest.raises(ConfigError, match=r"unknown section \[farms\]"):
        load_config(path)


def test_bounds_are_checked_where_values_enter(tmp_path):
    path = tmp_path / "farm.toml"
    path.write_text("[farm]\nstall_timeout_s = 1\n")
    with pytest.raises(ConfigError, match=r"'stall_timeout_s' = 1.0 is out of range; it must be within \[5, 3600\]"):
        load_config(path)


def test_command_line_beats_config_file(tmp_path):
    path = tmp_path / "farm.toml"
    path.write_text('[farm]\nout = "/srv/out"\nworkers = 3\nchannels = ["tv"]\n')
    config = load_config(path).merged(out="/tmp/elsewhere", workers=None, channels=None)
    assert (config.out, config.workers, config.channels) == ("/tmp/elsewhere", 3, ("tv",))


def test_cli_help_shows_the_config_default():
    option = next(p for p in run_command.params if p.name == "workers")
    assert "[config: workers; default: 0]" in option.help
    defaults = {f.name: f.default for f in dataclasses.fields(FarmConfig)}
    assert "[config: stall_timeout_s" not in option.help and defaults["workers"] == 0


def test_bad_config_is_one_line_exit_2(tmp_path, clip):
    path = tmp_path / "farm.toml"
    path.write_text("[farm]\nworkers = -1\n")
    result = CliRunner().invoke(cli, ["run", str(clip), "--config", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"onetake: {path} [farm]: 'workers' = -1 is out of range; it must be within [0, 512]"]


def test_example_configs_load():
    from pathlib import Path

    from onetake.pipeline.profiles import load_catalog

    configs = Path(__file__).parents[1] / "configs"
    for path in sorted(configs.glob("*.toml")):
        load_config(path)
    assert load_catalog(configs / "profiles").profile("radio-bwf").loudness.integrated == -23.0
    strict = load_catalog(configs / "qc")
    assert strict.qc["tv"].max_black_s == 1.0 and strict.qc["short"].max_freeze_s == 5.0
    assert list(strict.channels) == list(load_catalog().channels)


def test_an_unexpected_error_is_one_line_with_a_way_to_the_traceback(tmp_path, clip, monkeypatch):
    import onetake.pipeline.profiles

    def broken(*args, **kwargs):
        raise ValueError("something nobody planned for")

    monkeypatch.setattr(onetake.pipeline.profiles, "load_catalog", broken)
    result = CliRunner().invoke(cli, ["profiles", "list"])
    assert result.exit_code == 3
    assert result.output.strip().splitlines() == [
        "onetake: internal error (ValueError: something nobody planned for); please report it with the command "
        "you ran; set ONETAKE_DEBUG=1 to see the traceback"]
