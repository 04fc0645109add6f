"""The job ledger on a real SQLite file, the watch config and the sidecar contract, without a watcher."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from onetake.pipeline.config import InboxConfig, load_watch_config
from onetake.pipeline.errors import ConfigError, IngestError, LedgerError
from onetake.pipeline.ledger import Ledger, process_owner
from onetake.pipeline.inbox import Settling, is_candidate, read_sidecar
from onetake.pipeline.watch import error_text


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        yield ledger


def test_a_job_moves_through_its_states_and_no_step_applies_twice(ledger):
    job_id = ledger.add(kind="watch", source="/in/a.mp4", path="/in/processing/a.mp4", lane="urgent",
                        channels=("edit",), metadata={"title": "Flood"}, stable_at=1.0)
    assert ledger.get(job_id).state == "queued"
    assert ledger.start(job_id, "me") and not ledger.start(job_id, "other")  # a second taker loses
    assert ledger.delivered(job_id, "a-1234", ["/out/edit/a-1234/manifest.json"])
    assert not ledger.failed(job_id, "too late")  # a delivered job stays delivered
    job = ledger.get(job_id)
    assert (job.state, job.attempts, job.lane, job.channels, job.metadata) == (
        "delivered", 1, "urgent", ("edit",), {"title": "Flood"})
    assert job.manifests == ("/out/edit/a-1234/manifest.json",) and job.finished_at >= job.started_at
    with pytest.raises(LedgerError, match="only queued or running jobs can be cancelled"):
        ledger.cancel(job_id)
    with pytest.raises(LedgerError, match="only failed or cancelled jobs can be retried"):
        ledger.retry(job_id, "/in/processing/a.mp4")


def test_cancel_and_retry(ledger):
    job_id = ledger.add(kind="watch", source="/in/b.mp4", path="/in/processing/b.mp4", lane="bulk")
    assert ledger.cancel(job_id).state == "cancelled"
    assert not ledger.start(job_id, "me")  # a watcher does not start a job cancelled while it waited
    job = ledger.retry(job_id, "/in/processing/b.mp4")
    assert job.state == "queued" and job.error == ""
    assert ledger.start(job_id, "me") and ledger.failed(job_id, "exit status 1")
    assert ledger.retry(job_id, "/in/processing/b.mp4").state == "queued"
    assert ledger.start(job_id, "me") and ledger.get(job_id).attempts == 2


def test_jobs_of_a_dead_process_are_put_right(ledger):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = process_owner(dead.pid)
    dead.wait()
    watch_job = ledger.add(kind="watch", source="/in/c.mp4", path="/in/processing/c.mp4", lane="normal")
    ledger.start(watch_job, owner)
    run_job = ledger.add(kind="run", source="/x/d.mp4", path="/x/d.mp4", lane="normal", state="running",
                         owner=owner)
    alive = ledger.add(kind="watch", source="/in/e.mp4", path="/in/processing/e.mp4", lane="normal")
    ledger.start(alive, process_owner())
    changed = {j.id: j.state for j in ledger.reconcile()}
    assert changed == {watch_job: "queued", run_job: "failed"}
    assert "resumes it" in ledger.get(watch_job).error and "run it again" in ledger.get(run_job).error
    assert ledger.get(alive).state == "running"


def test_the_ledger_is_wal_and_readable_while_written(tmp_path, ledger):
    ledger.add(kind="run", source="/a", path="/a", lane="normal")
    with sqlite3.connect(tmp_path / "jobs.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1


def test_a_ledger_that_is_not_sqlite_is_one_line(tmp_path):
    bad = tmp_path / "jobs.sqlite"
    bad.write_text("not a database, just text " * 100)
    with pytest.raises(LedgerError, match=r"jobs.sqlite: cannot open the job ledger .*--ledger"):
        Ledger(bad)


def test_sidecars_are_validated(tmp_path):
    good = tmp_path / "a.mp4.json"
    good.write_text(json.dumps({"title": "Flood", "lane": "urgent", "channels": ["edit"], "air_date": "2026-11-26"}))
    assert read_sidecar(good).metadata() == {"title": "Flood", "lane": "urgent", "channels": ["edit"],
                                             "air_date": "2026-11-26"}
    cases = {'{"titel": "x"}': "unknown key 'titel'; known keys are air_date, asset_id",
             '{"lane": "fast"}': "'lane' = 'fast' is not allowed",
             '{"channels": "edit"}': "'channels' must be a list of strings",
             '{"asset_id": "../../etc"}': "'asset_id' = '../../etc' does not match",
             '["title"]': "a sidecar is a JSON object",
             '{"title": ': "not a readable JSON sidecar"}
    for text, message in cases.items():
        good.write_text(text)
        with pytest.raises(IngestError, match=message) as caught:
            read_sidecar(good)
        assert str(caught.value).startswith(str(good)) and "\n" not in str(caught.value)


def test_what_counts_as_a_dropped_file(tmp_path):
    for name in ("clip.mp4", "新闻 01.mov", "a.mp4.json", "a.mp4.done", "a.json", ".hidden.mp4", "b.mp4.part",
                 "c.mov.crdownload", "d.mp4.sha256", "e.mp4.error.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert sorted(p.name for p in tmp_path.iterdir() if is_candidate(p)) == ["clip.mp4", "新闻 01.mov"]


def test_settling_needs_the_file_unchanged_for_the_settle_time(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"a")
    settling = Settling()
    assert settling.observe(clip, 1.0, now=100.0) is None
    assert settling.observe(clip, 1.0, now=100.5) is None
    with open(clip, "ab") as f:
        f.write(b"b")
    assert settling.observe(clip, 1.0, now=100.9) is None  # changed: the clock starts again
    assert settling.observe(clip, 1.0, now=101.5) is None
    assert settling.observe(clip, 1.0, now=101.9) == 100.9
    (tmp_path / "clip.mp4.json").write_text("{}")  # a sidecar arriving late counts as a change too
    assert settling.observe(clip, 1.0, now=102.0) is None


def test_watch_config_inboxes(tmp_path):
    config = tmp_path / "watch.toml"
    config.write_text('[farm]\nout = "/srv/out"\nchannels = ["edit"]\n[watch]\nsettle_s = 3\nlane = "bulk"\n'
                      '[[inbox]]\npath = "/srv/in/news"\nlane = "urgent"\nchannels = ["tv", "web"]\n'
                      '[[inbox]]\npath = "/srv/in/archive"\nrequire = "done"\n')
    farm, watch, inboxes = load_watch_config(config)
    news, archive = (i.resolved(farm, watch) for i in inboxes)
    assert (news.lane, news.channels, news.settle_s, news.out) == ("urgent", ("tv", "web"), 3.0, "/srv/out")
    assert (archive.lane, archive.channels, archive.require) == ("bulk", ("edit",), "done")
    assert isinstance(news, InboxConfig)
    errors = {'[[inbox]]\npath = "/a"\nlane = "express"\n': "[[inbox]] #1: 'lane' = 'express' is not allowed",
              '[[inbox]]\nlane = "urgent"\n': "[[inbox]] #1: 'path' is required",
              '[inbox]\npath = "/a"\n': "inboxes are a list of tables, written [[inbox]]",
              '[watch]\nsettle = 2\n': "[watch]: unknown key 'settle'",
              '[watch]\nsettle_s = 0\n': "'settle_s' = 0.0 is out of range"}
    for text, message in errors.items():
        config.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_watch_config(config)


def test_watch_and_jobs_usage_errors_are_one_line(tmp_path):
    from click.testing import CliRunner

    from onetake.cli import cli

    cases = [(["watch"], "give at least one INBOX folder"),
             (["watch", str(tmp_path / "nowhere")], "nowhere: no such inbox folder"),
             (["watch", str(tmp_path), "--channels", "telly"], "unknown channel 'telly'"),
             (["jobs", "list", "--ledger", str(tmp_path / "none.sqlite")], "none.sqlite: no job ledger there"),
             (["jobs", "show", "7", "--ledger", str(tmp_path / "jobs.sqlite")], "no job 7 in")]
    Ledger(tmp_path / "jobs.sqlite").close()
    for args, message in cases:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and result.output.count("\n") == 1, (args, result.output)


def test_the_example_watch_config_loads():
    from pathlib import Path

    farm, watch, inboxes = load_watch_config(Path(__file__).parents[1] / "configs" / "watch.toml")
    assert farm.ledger and [i.lane for i in inboxes] == ["urgent", "", "bulk"]
    assert inboxes[2].resolved(farm, watch).require == "done"


def test_run_records_into_the_ledger_when_one_is_configured(tmp_path):
    from click.testing import CliRunner

    from conftest import make_clip
    from onetake.cli import cli

    good = make_clip(tmp_path / "good.mp4", size="160x90")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not media")
    config = tmp_path / "farm.toml"
    config.write_text(f'[farm]\nout = "{tmp_path / "out"}"\nledger = "{tmp_path / "jobs.sqlite"}"\nworkers = 1\n')
    result = CliRunner().invoke(cli, ["run", str(good), str(bad), "--config", str(config), "--channels", "edit"])
    assert result.exit_code == 1, result.output
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        jobs = ledger.list()
    assert [(j.kind, j.source, j.state, j.attempts) for j in jobs] == [
        ("run", str(good), "delivered", 1), ("run", str(bad), "failed", 1)]
    assert jobs[0].manifests and jobs[0].asset_id.startswith("good-") and "text file" in jobs[1].error


def test_a_qc_failure_says_to_look_at_the_material_not_to_retry(tmp_path):
    """The advice is chosen by the failure's type (the watcher passes qc_only for QcError), not by its words."""
    cause = "tv: channel tv failed QC: black 4.0 s > 2.0 s"
    qc = error_text(7, "clip.mp4", "bulk", cause, tmp_path / "jobs.sqlite", qc_only=True)
    assert "--qc warn" in qc and "failed/clip.mp4" in qc and "jobs retry" not in qc
    assert "--qc warn" not in error_text(7, "clip.mp4", "bulk", cause, tmp_path / "jobs.sqlite")
    other = error_text(7, "clip.mp4", "bulk", "clip.mp4: truncated", tmp_path / "jobs.sqlite")
    assert f"onetake jobs retry 7 --ledger {tmp_path / 'jobs.sqlite'}" in other
