"""Real files from public test suites (tests/realworld/corpus.toml) through `onetake run`, every channel each
can feed: each delivers and verifies, or is refused in the one line its entry names.

The files are not in the repository: this test runs where ONETAKE_REALWORLD (or ../shared/realworld beside the
checkout) holds them, and is skipped, saying so, where it does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from onetake.cli import cli

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = tomllib.loads((ROOT / "tests" / "realworld" / "corpus.toml").read_text(encoding="utf-8"))["file"]


def corpus_folder() -> Path | None:
    for candidate in (os.environ.get("ONETAKE_REALWORLD"), ROOT.parent / "shared" / "realworld"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = corpus_folder()
    if folder is None:
        pytest.skip("no real-world corpus here: set ONETAKE_REALWORLD to a folder with the files of "
                    "tests/realworld/corpus.toml")
    present = []
    for entry in ENTRIES:
        path = folder / entry["name"]
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]:
            present.append(path)
    if not present:
        pytest.skip(f"{folder} holds none of the files of tests/realworld/corpus.toml")
    out = tmp_path_factory.mktemp("corpus") / "out"
    result = CliRunner().invoke(cli, ["run", "--json", "--out", str(out), "--", *map(str, present)])
    summary = json.loads(result.stdout)
    return {Path(s["source"]).name: s for s in summary["sources"]}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_real_file(entry: dict, corpus: dict[str, dict]) -> None:
    if entry["name"] not in corpus:
        pytest.skip(f"{entry['name']} is not in the corpus folder")
    outcome = corpus[entry["name"]]
    if entry["expect"] == "deliver":
        assert outcome["ok"], f"{entry['name']} ({entry['what']}) was not delivered: {outcome}"
        assert outcome["channels"] and all(c["manifest"] for c in outcome["channels"])
    else:
        assert not outcome["ok"] and entry["refuse"] in (outcome["error"] or ""), outcome
