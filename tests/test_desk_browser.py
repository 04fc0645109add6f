"""The dispatch desk in a real browser: headless Chromium (Debian's, through Playwright) against `onetake serve`
running as a real subprocess with its watcher and Dask farm. A real job runs while the board is open; its HLS
ladder plays on the asset page; retry and cancel are clicked; a phone uploads a clip over a connection that drops
mid-way and resumes; a forged cross-site form is refused."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import make_clip
from desk_server import PASSWORD, DeskServer, add_users

from onetake.pipeline.ledger import Ledger

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install "
                                                         "chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    root = tmp_path_factory.mktemp("desk-browser")
    news, field = root / "news", root / "field"
    for folder in (news, field, root / "elsewhere" / "failed", root / "elsewhere" / "processing"):
        folder.mkdir(parents=True)
    ledger = root / "jobs.sqlite"
    config = root / "farm.toml"
    config.write_text(f'[farm]\nout = "{root / "out"}"\nledger = "{ledger}"\nworkers = 1\n\n'
                      f'[watch]\nsettle_s = 0.3\npoll_s = 0.2\n\n'
                      f'[[inbox]]\npath = "{news}"\nchannels = ["web"]\n\n'
                      f'[[inbox]]\npath = "{field}"\nchannels = ["radio"]\n\n'
                      f'[serve]\nupload_inbox = "{field}"\nupload_chunk_kib = 64\n')
    add_users(ledger)
    server = DeskServer(["--config", str(config)], root)
    try:
        server.wait_ready()
        yield {"url": server.url, "root": root, "news": news, "field": field, "ledger": ledger}
    finally:
        log = server.stop()
        assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--autoplay-policy=no-user-gesture-required"])
        yield launched
        launched.close()


def log_in(browser, desk, name, **context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(desk["url"] + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#jobs")
    page.problems = problems
    return page


def test_the_board_updates_live_while_a_real_job_runs_and_its_ladder_plays(desk, browser, tmp_path):
    page = log_in(browser, desk, "vera")
    page.evaluate("""() => {
        window.stillTheSamePage = true;
        window.seen = new Set();
        const look = () => {
            document.querySelectorAll('#jobs tr[data-state]').forEach(tr => window.seen.add(tr.dataset.state));
            if (document.querySelector('#jobs .task progress')) window.seen.add('progress');
        };
        new MutationObserver(look).observe(document.getElementById('live'), {childList: true, subtree: true});
    }""")
    clip = make_clip(tmp_path / "flood.mp4", seconds=2, size="1280x720")
    (desk["news"] / "flood.mp4.json").write_text(json.dumps({"title": "Flood at the weir"}))
    clip.rename(desk["news"] / "flood.mp4")

    row = page.locator("#jobs tr", has_text="Flood at the weir")
    row.locator("[data-state=delivered], .badge.delivered").first.wait_for(timeout=120_000)
    seen = page.evaluate("[...window.seen]")
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place, never reloaded
    assert {"queued", "running", "delivered", "progress"} <= set(seen) or {"running", "delivered", "progress"} <= \
        set(seen), seen
    page.locator("#farm tr.worker").first.wait_for(timeout=10_000)  # the Dask worker and what it runs

    row.locator("a").first.click()
    page.wait_for_selector("#probe")
    assert "1280×720" in page.inner_text("#probe")
    video = page.locator("#delivery-web video.hls")
    video.evaluate("v => v.play()")
    page.wait_for_function("() => document.querySelector('#delivery-web video.hls').currentTime > 0.5",
                           timeout=20_000)
    assert int(video.get_attribute("data-levels")) >= 2
    page.select_option("#delivery-web select.levels", "1")
    page.wait_for_function("() => document.querySelector('#delivery-web video.hls').dataset.level === '1'",
                           timeout=20_000)
    poster = page.locator("#delivery-web img").first
    assert poster.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.frame_locator("#report").locator("svg").first.is_visible()  # the analysis report's timeline
    assert page.locator("#delivery-web tr.pass").count() > 5 and page.locator("#delivery-web tr.fail").count() == 0
    assert page.problems == []


def seeded_failed_job(desk, name):
    """A failed watch job of an inbox no watcher here looks at, so that it stays as the test leaves it."""
    inbox = desk["root"] / "elsewhere"
    (inbox / "failed" / name).write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with Ledger(desk["ledger"]) as ledger:
        job_id = ledger.add(kind="watch", source=str(inbox / name), path=str(inbox / "failed" / name),
                            inbox=str(inbox), lane="normal", metadata={"title": name})
        ledger.start(job_id, "elsewhere")
        ledger.failed(job_id, "encoder crashed (exit status 1): test")
    return job_id


def test_retry_and_cancel_are_clicked_and_audited(desk, browser):
    job_id = seeded_failed_job(desk, "retry-me.mp4")
    viewer = log_in(browser, desk, "vera")
    viewer.goto(f"{desk['url']}/jobs/{job_id}")
    assert viewer.locator(".actions button").count() == 0  # a viewer gets no buttons

    page = log_in(browser, desk, "olga")
    page.goto(f"{desk['url']}/jobs/{job_id}")
    page.fill("form[action$='/retry'] input[name=reason]", "the encoder host was rebooted")
    page.click("#retry")
    page.wait_for_selector("#job-state:has-text('queued')")
    page.click("#cancel")
    page.wait_for_selector("#job-state:has-text('cancelled')")
    audit = page.inner_text("#audit")
    assert "olga\tretry" in audit and "the encoder host was rebooted" in audit and "olga\tcancel" in audit
    with Ledger(desk["ledger"]) as ledger:
        assert ledger.get(job_id).state == "cancelled"


def test_a_forged_form_from_another_site_is_refused(desk, browser):
    job_id = seeded_failed_job(desk, "forged.mp4")
    attack = (f'<form id="f" method="post" action="{desk["url"]}/jobs/{job_id}/retry">'
              f'<input name="reason" value="forged"></form><p>hello</p>').encode()

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(attack)

        def log_message(self, *args):
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page = log_in(browser, desk, "olga")  # logged in to the desk in this browser
        page.goto(f"http://localhost:{evil.server_address[1]}/")  # another site
        with page.expect_navigation():
            page.evaluate("document.getElementById('f').submit()")
        assert "log in first" in page.content() or "another site" in page.content() or "CSRF" in page.content()
    finally:
        evil.shutdown()
        evil.server_close()
    with Ledger(desk["ledger"]) as ledger:
        assert ledger.get(job_id).state == "failed" and ledger.audit_log(job_ids=[job_id]) == []


def test_a_phone_upload_cut_off_mid_way_resumes_and_the_watcher_takes_it(desk, browser, tmp_path):
    clip = make_clip(tmp_path / "riverbank.mp4", seconds=4, size="640x360")
    page = log_in(browser, desk, "eddie", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                  device_scale_factor=2)
    page.goto(f"{desk['url']}/upload")
    page.set_input_files("#file", str(clip))
    page.fill("#title", "Riverbank from the phone")
    page.fill("#programme", "Noon news")
    page.click("#send")
    page.wait_for_function("() => parseInt(document.getElementById('status').dataset.percent) >= 15",
                           timeout=30_000, polling=5)
    page.context.set_offline(True)
    page.wait_for_selector("#upload[data-state=interrupted]", timeout=30_000)
    staged = [p for p in (desk["field"] / ".onetake-uploads").glob("*.data")]
    assert len(staged) == 1 and 0 < staged[0].stat().st_size < clip.stat().st_size
    time.sleep(0.5)
    page.context.set_offline(False)
    try:
        page.wait_for_selector("#upload[data-state=done]", timeout=5_000)
    except Exception:  # the 'online' event may come late in an emulated network: the button does the same
        page.click("#resume")
        page.wait_for_selector("#upload[data-state=done]", timeout=30_000)

    deadline = time.monotonic() + 60
    job = None
    while job is None and time.monotonic() < deadline:
        with Ledger(desk["ledger"]) as ledger:
            job = next((j for j in ledger.list() if j.metadata.get("title") == "Riverbank from the phone"), None)
        time.sleep(0.2)
    assert job is not None, "the watcher did not take the upload"
    assert job.inbox == str(desk["field"]) and job.metadata["programme"] == "Noon news"
    landed = Path(job.path)  # where the watcher has it now: processing/, done/ or failed/ of the inbox
    assert landed.parent.parent == desk["field"]
    assert hashlib.sha256(landed.read_bytes()).hexdigest() == hashlib.sha256(clip.read_bytes()).hexdigest()
    with Ledger(desk["ledger"]) as ledger:
        [entry] = [e for e in ledger.audit_log() if e["action"] == "upload"]
    assert entry["user"] == "eddie" and "resumed 1 time(s)" in entry["detail"]
    assert page.problems == []
