"""The QC gate: rules from channels.toml judged on an analysis (pure), and bad rules refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from onetake.pipeline.errors import ProfileError
from onetake.pipeline.profiles import QcSpec, load_catalog
from onetake.pipeline.qc import evaluate

TV = QcSpec(max_black_s=2.0, max_freeze_s=3.0, max_silence_s=5.0)


def analysis(**kw) -> dict:
    """A 20 s analysis result as the contract shapes it, clean unless told otherwise."""
    return {"duration": 20.0, "black": [], "freeze": [], "silence": [],
            "loudness": {"integrated": -23.0, "true_peak": -3.0, "lra": 6.0, "short_term": []}, **kw}


def failed(findings: list[dict]) -> list[str]:
    return [f["name"] for f in findings if not f["passed"]]


def test_clean_source_passes_every_rule_that_is_on():
    findings = evaluate(analysis(), TV)
    assert [f["name"] for f in findings] == ["black", "freeze", "silence"]
    assert failed(findings) == [] and all(f["profile"] == "qc" for f in findings)


def test_black_in_the_middle_fails_but_head_and_tail_are_excused():
    middle = evaluate(analysis(black=[{"start": 8.0, "end": 12.0}]), TV)
    assert failed(middle) == ["black"]
    black = next(f for f in middle if f["name"] == "black")
    assert black["value"] == "4 s at 8-12 s" and black["limit"].startswith("at most 2 s")
    edges = analysis(black=[{"start": 0.0, "end": 4.0}, {"start": 16.2, "end": 20.0}])
    assert failed(evaluate(edges, TV)) == []
    assert failed(evaluate(edges, QcSpec(max_black_s=2.0, black_at_edges=False))) == ["black"]


def test_freeze_and_silence_limits():
    assert failed(evaluate(analysis(freeze=[{"start": 5.0, "end": 8.0}]), TV)) == []   # exactly 3 s is allowed
    assert failed(evaluate(analysis(freeze=[{"start": 5.0, "end": 8.5}]), TV)) == ["freeze"]
    assert failed(evaluate(analysis(silence=[{"start": 5.0, "end": 11.0}]), TV)) == ["silence"]
    assert failed(evaluate(analysis(silence=[{"start": 14.0, "end": 20.0}]), TV)) == []  # the tail


def test_loudness_range_rule_and_rules_that_are_off():
    assert evaluate(analysis(black=[{"start": 8.0, "end": 12.0}]), QcSpec()) == []
    wide = analysis(loudness={"integrated": -23.0, "true_peak": -1.0, "lra": 24.5, "short_term": []})
    assert failed(evaluate(wide, QcSpec(max_lra_lu=20.0))) == ["loudness range"]
    silent = analysis(loudness={"integrated": None, "true_peak": None, "lra": None, "short_term": []})
    assert failed(evaluate(silent, QcSpec(max_lra_lu=20.0))) == []


def test_shipped_channels_carry_the_tv_and_radio_rules(catalog):
    assert catalog.qc["tv"] == QcSpec(max_black_s=2.0, max_freeze_s=3.0, max_silence_s=5.0)
    assert catalog.qc["radio"].max_silence_s == 5.0
    assert "web" not in catalog.qc


@pytest.mark.parametrize("table, message", [
    ("[tv.qc]\nmax_black_s = -1\n", "channels.toml [tv.qc]: 'max_black_s' = -1.0 is out of range"),
    ("[tv.qc]\nmax_freeze_s = \"long\"\n", "channels.toml [tv.qc]: 'max_freeze_s' must be a number, got 'long'"),
    ("[tv.qc]\nmax_blak_s = 2\n", "channels.toml [tv.qc]: unknown key 'max_blak_s'; known keys are"),
    ("[tv.qc]\nblack_at_edges = 1\n", "channels.toml [tv.qc]: 'black_at_edges' must be true or false, got 1"),
    ("qc = 3\n", "channels.toml [tv.qc]: expected a table of keys, got int"),
])
def test_bad_qc_rules_are_one_line_naming_file_section_and_key(tmp_path: Path, table: str, message: str):
    (tmp_path / "channels.toml").write_text(f'[tv]\nprofiles = ["tv-hd-xdcam422"]\n{table}', encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_catalog(tmp_path)
    text = str(info.value)
    assert "\n" not in text and message in text and text.startswith(str(tmp_path / "channels.toml"))
