"""The dispatch desk over HTTP: `onetake serve` as a real subprocess on a real ledger, requests as a browser
sends them. Login, security headers, CSRF/role/origin refusals, the board's paging and filters, the job actions
with their audit log, and the tus upload protocol (a request cut mid-body, resumed; non-media and oversized
uploads refused early; hostile names kept inside the inbox). The browser itself: test_desk_browser.py."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from conftest import make_clip
from desk_server import PASSWORD, Client, DeskServer, add_users
from s3_endpoint import MotoServer
from test_layers import PACKAGE, imports_of

from onetake.pipeline.config import load_serve_config, load_watch_config

from onetake.pipeline.ledger import Ledger


ROOT = Path(__file__).parents[1]
S3_ENV = {"AWS_ACCESS_KEY_ID": "desk-test", "AWS_SECRET_ACCESS_KEY": "desk-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def desk(tmp_path_factory, moto):
    root = tmp_path_factory.mktemp("desk")
    inbox = root / "inbox"
    inbox.mkdir()
    ledger = root / "jobs.sqlite"
    config = root / "farm.toml"
    config.write_text(f'[farm]\nout = "{root / "out"}"\nledger = "{ledger}"\n\n'
                      f'[serve]\nupload_inbox = "{inbox}"\nupload_limit_mb = 20\nlogin_attempts = 3\npage_size = 25\n')
    add_users(ledger)
    server = DeskServer(["--config", str(config)], root, env={**S3_ENV, "AWS_ENDPOINT_URL": moto.url})
    try:
        server.wait_ready()
        yield {"url": server.url, "root": root, "inbox": inbox, "ledger": ledger, "server": server, "moto": moto}
    finally:
        server.stop()


def logged_in(desk, name: str) -> Client:
    client = Client(desk["url"])
    assert client.login(name) == 303
    return client


def seed(desk, **fields) -> int:
    values = {"kind": "watch", "source": "/nowhere/clip.mp4", "path": "/nowhere/clip.mp4", "lane": "normal"} | fields
    with Ledger(desk["ledger"]) as ledger:
        return ledger.add(**values)


def job(desk, job_id: int):
    with Ledger(desk["ledger"]) as ledger:
        return ledger.get(job_id)


def audit(desk, job_id: int | None = None) -> list[dict]:
    with Ledger(desk["ledger"]) as ledger:
        return ledger.audit_log(job_ids=[job_id] if job_id else None)


def test_pages_need_a_login_and_carry_security_headers(desk):
    client = Client(desk["url"])
    status, headers, _ = client.request("GET", "/", headers={"Accept": "text/html"})
    assert status == 303 and headers["location"].startswith("/login?next=")
    status, headers, body = client.request("GET", "/jobs/1")
    assert status == 401 and body == b"log in to see this page\n"
    csp = headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "SAMEORIGIN"

    assert client.login("eddie", "not the password") == 401
    assert "onetake_session" not in client.cookies
    status, headers, _ = client.request("GET", "/login")
    token = re.search(r'name="csrf" value="([^"]+)"', _.decode()).group(1)
    status, headers, _ = client.request("POST", "/login", {"csrf": token, "name": "eddie", "password": PASSWORD,
                                                           "next": "//evil.example/"})
    assert status == 303 and headers["location"] == "/"  # no open redirect
    [cookie] = [c.lower() for c in headers["set-cookie"].splitlines() if c.startswith("onetake_session=")]
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # plain HTTP on loopback
    status, _, page = client.request("GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and b"eddie (editor)" in page and b"<script>" not in page


def test_actions_refused_without_csrf_from_another_site_or_below_the_role(desk):
    job_id = seed(desk)
    viewer, editor, operator = logged_in(desk, "vera"), logged_in(desk, "eddie"), logged_in(desk, "olga")
    status, _, body = viewer.request("POST", f"/jobs/{job_id}/cancel", {"csrf": viewer.csrf})
    assert status == 403 and b"needs the operator role; vera is a viewer" in body
    status, _, body = editor.request("POST", f"/jobs/{job_id}/cancel", {"csrf": editor.csrf})
    assert status == 403 and b"eddie is a editor" in body
    status, _, body = operator.request("POST", f"/jobs/{job_id}/cancel", {"reason": "no token"})
    assert status == 403 and b"CSRF token is missing" in body
    status, _, body = operator.request("POST", f"/jobs/{job_id}/cancel", {"csrf": editor.csrf})  # someone else's
    assert status == 403
    status, _, body = operator.request("POST", f"/jobs/{job_id}/cancel", {"csrf": operator.csrf},
                                       headers={"Origin": "http://evil.example"})
    assert status == 403 and b"another site" in body
    assert job(desk, job_id).state == "queued" and audit(desk, job_id) == []

    status, headers, _ = operator.request("POST", f"/jobs/{job_id}/cancel",
                                          {"csrf": operator.csrf, "reason": "duplicate of a job already on air"},
                                          headers={"Origin": operator.origin})
    assert status == 303 and headers["location"] == f"/jobs/{job_id}"
    assert job(desk, job_id).state == "cancelled"
    [entry] = audit(desk, job_id)
    assert (entry["user"], entry["action"], entry["reason"]) == ("olga", "cancel", "duplicate of a job already on air")
    status, _, page = viewer.request("GET", f"/jobs/{job_id}", headers={"Accept": "text/html"})
    assert b"duplicate of a job already on air" in page  # the audit log is on the asset page


def test_retry_urgent_and_deliver_anyway_act_on_the_ledger_and_the_inbox(desk):
    inbox = desk["root"] / "news"
    for folder in ("failed", "processing"):
        (inbox / folder).mkdir(parents=True)
    failed_file = inbox / "failed" / "story.mp4"
    failed_file.write_bytes(b"x")
    editor, operator = logged_in(desk, "eddie"), logged_in(desk, "olga")
    job_id = seed(desk, source=str(inbox / "story.mp4"), path=str(failed_file), inbox=str(inbox))
    with Ledger(desk["ledger"]) as ledger:
        ledger.start(job_id, "test")
        ledger.failed(job_id, "channel tv failed QC: black 3 s")

    status, _, body = editor.request("POST", f"/jobs/{job_id}/force", {"csrf": editor.csrf, "reason": "on air now"})
    assert status == 403
    status, _, body = operator.request("POST", f"/jobs/{job_id}/force", {"csrf": operator.csrf, "reason": " "})
    assert status == 400 and b"needs a reason" in body
    status, _, _ = operator.request("POST", f"/jobs/{job_id}/force",
                                    {"csrf": operator.csrf, "reason": "breaking news: the black is the story"})
    assert status == 303
    forced = job(desk, job_id)
    assert forced.state == "queued" and forced.path == str(inbox / "processing" / "story.mp4")
    assert forced.metadata["qc_override"] == {"mode": "warn", "by": "olga",
                                              "reason": "breaking news: the black is the story"}
    assert (inbox / "processing" / "story.mp4").is_file() and not failed_file.exists()

    status, _, _ = editor.request("POST", f"/jobs/{job_id}/urgent", {"csrf": editor.csrf})
    assert status == 303 and job(desk, job_id).lane == "urgent"
    status, _, body = editor.request("POST", f"/jobs/{job_id}/retry", {"csrf": editor.csrf})
    assert status == 409 and b"only failed or cancelled jobs can be retried" in body
    assert [e["action"] for e in audit(desk, job_id)] == ["urgent", "force"]


def test_the_board_pages_filters_and_searches_the_ledger(desk):
    with Ledger(desk["ledger"]) as ledger:
        first = ledger.add(kind="watch", source="/in/bulk-000.mxf", path="/in/bulk-000.mxf", lane="bulk",
                           metadata={"title": "archive reel 0"})
        for n in range(1, 60):
            ledger.add(kind="watch", source=f"/in/bulk-{n:03d}.mxf", path=f"/in/bulk-{n:03d}.mxf", lane="bulk",
                       metadata={"title": f"archive reel {n}"})
        ledger.add(kind="watch", source="/in/flood.mp4", path="/in/flood.mp4", lane="urgent",
                   inbox="/srv/ingest/urgent", metadata={"title": "河水上涨 flood warning"})
    viewer = logged_in(desk, "vera")
    status, _, page = viewer.request("GET", "/?lane=bulk", headers={"Accept": "text/html"})
    assert status == 200 and b"60 jobs, page 1 of 3" in page
    status, _, page = viewer.request("GET", "/?lane=bulk&page=3", headers={"Accept": "text/html"})
    ids = [int(i) for i in re.findall(rb'<tr id="job-(\d+)"', page)]
    assert ids == list(range(first + 9, first - 1, -1))  # newest first: the oldest ten on the last page
    status, _, page = viewer.request("GET", "/?q=%E6%B2%B3%E6%B0%B4", headers={"Accept": "text/html"})  # 河水
    assert b"1 job" in page and "河水上涨".encode() in page
    status, _, page = viewer.request("GET", "/?q=reel%205", headers={"Accept": "text/html"})
    found = [int(n) for n in re.findall(rb"archive reel (\d+)", page)]
    assert found == [*range(59, 49, -1), 5]
    status, _, page = viewer.request("GET", "/?inbox=%2Fsrv%2Fingest%2Furgent", headers={"Accept": "text/html"})
    assert b"1 job<" in page and "河水上涨".encode() in page
    today = time.strftime("%Y-%m-%d")
    status, _, page = viewer.request("GET", f"/?lane=bulk&date={today}", headers={"Accept": "text/html"})
    assert b"60 jobs" in page
    status, _, page = viewer.request("GET", "/?lane=bulk&date=2001-09-11", headers={"Accept": "text/html"})
    assert b"0 jobs" in page and b"No jobs match." in page
    status, _, page = viewer.request("GET", "/?state=boiling", headers={"Accept": "text/html"})
    assert status == 400 and b"state &#39;boiling&#39;: choose one of active" in page


def tus(client: Client, method: str, path: str, body: bytes | None = None, **headers: str):
    return client.request(method, path, body, {"Tus-Resumable": "1.0.0", "X-CSRF-Token": client.csrf, **headers})


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_an_upload_cut_mid_request_resumes_and_lands_whole_in_the_inbox(desk, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, size="640x360")
    data = clip.read_bytes()
    editor = logged_in(desk, "eddie")
    status, headers, _ = tus(editor, "POST", "/uploads", **{
        "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata(filename="../../../escape/Flood at 河口 (cam 2).MP4", title="Flood at the estuary",
                                    programme="Evening news", lane="urgent")})
    assert status == 201
    location = headers["location"]
    staged = desk["inbox"] / ".onetake-uploads" / (location.rsplit("/", 1)[1] + ".data")

    # the connection drops in the middle of a request: what arrived is kept
    half = len(data) // 2
    with socket.create_connection((editor.host, editor.port)) as sock:
        sock.sendall((f"PATCH {location} HTTP/1.1\r\nHost: {editor.host}\r\nTus-Resumable: 1.0.0\r\n"
                      f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
                      f"Content-Length: {len(data)}\r\nX-CSRF-Token: {editor.csrf}\r\n"
                      f"Cookie: onetake_session={editor.cookies['onetake_session']}\r\n\r\n").encode() + data[:half])
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, headers, _ = tus(editor, "HEAD", location)
        if int(headers["upload-offset"]) == half:
            break
        time.sleep(0.1)
    assert int(headers["upload-offset"]) == half and staged.stat().st_size == half
    assert not [p for p in desk["inbox"].iterdir() if not p.name.startswith(".")]  # nothing visible yet

    status, _, _ = tus(editor, "PATCH", location, data[half + 10:], **{
        "Upload-Offset": str(half + 10), "Content-Type": "application/offset+octet-stream"})
    assert status == 409  # a gap is refused
    status, headers, _ = tus(editor, "PATCH", location, data[half:], **{
        "Upload-Offset": str(half), "Content-Type": "application/offset+octet-stream"})
    assert status == 204 and int(headers["upload-offset"]) == len(data)

    landed = desk["inbox"] / "Flood-at-河口-cam-2.mp4"
    assert sorted(p.name for p in desk["inbox"].iterdir()) == [".onetake-uploads", landed.name, landed.name + ".json"]
    assert hashlib.sha256(landed.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert json.loads((desk["inbox"] / (landed.name + ".json")).read_text()) == {
        "title": "Flood at the estuary", "programme": "Evening news", "lane": "urgent"}
    assert list((desk["inbox"] / ".onetake-uploads").iterdir()) == []
    assert not (desk["root"] / "escape").exists()
    [entry] = [e for e in audit(desk) if e["action"] == "upload"]
    assert entry["user"] == "eddie" and "resumed 1 time(s)" in entry["detail"] and landed.name in entry["detail"]


def test_uploads_refused_early_for_non_media_size_role_and_bad_fields(desk, tmp_path):
    editor, viewer, other = logged_in(desk, "eddie"), logged_in(desk, "vera"), logged_in(desk, "olga")
    declared = 10 * 2**20
    status, headers, _ = tus(editor, "POST", "/uploads", **{"Upload-Length": str(declared),
                                                            "Upload-Metadata": metadata(filename="notes.mp4")})
    location = headers["location"]
    status, _, body = tus(editor, "PATCH", location, b"%PDF-1.7\n" + bytes(128 * 1024), **{
        "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert status == 415 and b"notes.mp4: its first bytes are not a video, audio or image file" in body
    assert list((desk["inbox"] / ".onetake-uploads").iterdir()) == []  # dropped at 64 KiB of 10 MiB
    assert tus(editor, "HEAD", location)[0] == 404

    status, _, body = tus(editor, "POST", "/uploads", **{"Upload-Length": str(21 * 2**20),
                                                         "Upload-Metadata": metadata(filename="big.mxf")})
    assert status == 413 and b"eddie may upload up to 20 MiB" in body
    status, _, body = tus(editor, "POST", "/uploads", **{"Upload-Length": "100",
                                                         "Upload-Metadata": metadata(filename="a.mp4", lane="asap")})
    assert status == 400 and b"'lane'" in body
    status, _, body = tus(viewer, "POST", "/uploads", **{"Upload-Length": "100"})
    assert status == 403 and b"uploading needs the editor role" in body
    status, _, body = editor.request("POST", "/uploads", None, {"Tus-Resumable": "1.0.0", "Upload-Length": "100"})
    assert status == 403 and b"CSRF" in body

    status, headers, _ = tus(editor, "POST", "/uploads", **{"Upload-Length": "100",
                                                            "Upload-Metadata": metadata(filename="mine.mp4")})
    assert tus(other, "HEAD", headers["location"])[0] == 200  # an operator may look after any upload
    assert tus(viewer, "HEAD", headers["location"])[0] == 403
    assert tus(editor, "HEAD", "/uploads/..%2F..%2Fjobs.sqlite")[0] == 404
    status, _, _ = editor.request("GET", "/files/1/web/..%2F..%2F..%2Fjobs.sqlite")
    assert status == 404


def test_users_are_managed_from_the_command_line(desk):
    def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "onetake.cli", "users", *args, "--ledger", str(desk["ledger"])],
                              input=stdin, capture_output=True, text=True)

    added = users("add", "night-editor", "--role", "editor", "--password-stdin", stdin="night shift passphrase\n")
    assert added.returncode == 0, added.stderr
    again = users("add", "night-editor", "--role", "viewer", "--password-stdin", stdin="night shift passphrase\n")
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        "onetake: a user named 'night-editor' exists already; `onetake users remove night-editor` first, or "
        "choose another name"]
    short = users("add", "temp", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr and "Traceback" not in short.stderr
    assert "night-editor             editor" in users("list").stdout
    client = Client(desk["url"])
    assert client.login("night-editor", "night shift passphrase") == 303
    assert users("set", "night-editor", "--role", "viewer").returncode == 0
    assert client.request("GET", "/jobs/1")[0] == 401  # a new role signs the user out


def test_a_delivery_in_object_storage_is_shown_from_its_manifest_with_presigned_links(desk):
    s3 = boto3.session.Session().client("s3", endpoint_url=desk["moto"].url, aws_access_key_id="desk-test",
                                        aws_secret_access_key="desk-test-secret", region_name="us-east-1")
    s3.create_bucket(Bucket="vod-origin")
    poster = b"\xff\xd8\xff poster bytes"
    manifest = {"asset_id": "flood-0123abcd", "channel": "web", "files": [
        {"path": "web-poster.jpg", "size": len(poster), "sha256": hashlib.sha256(poster).hexdigest(),
         "profile": "web-poster"}], "checks": [
        {"name": "frame size", "passed": True, "value": "1280x720", "limit": "1280x720", "profile": "web-poster"}],
        "qc": {"mode": "enforce", "failed": [], "checks": []}, "notes": []}
    s3.put_object(Bucket="vod-origin", Key="news/web/flood-0123abcd/web-poster.jpg", Body=poster)
    s3.put_object(Bucket="vod-origin", Key="news/web/flood-0123abcd/manifest.json", Body=json.dumps(manifest))
    url = "s3://vod-origin/news/web/flood-0123abcd/manifest.json"
    job_id = seed(desk, state="running")
    with Ledger(desk["ledger"]) as ledger:
        ledger.delivered(job_id, "flood-0123abcd", [url, "s3://vod-origin/news/tv/flood-0123abcd/manifest.json"])
    viewer = logged_in(desk, "vera")
    status, _, page = viewer.request("GET", f"/jobs/{job_id}", headers={"Accept": "text/html"})
    assert status == 200 and b"1280x720" in page
    links = re.findall(r'href="(http://127\.0\.0\.1:\d+/vod-origin/news/web/flood-0123abcd/web-poster\.jpg\?[^"]+)"',
                       page.decode())
    assert len(links) == 1 and "Signature" in links[0]
    with urllib.request.urlopen(links[0].replace("&amp;", "&")) as response:  # the browser's fetch, from the store
        assert response.read() == poster
    assert b"s3://vod-origin/news/tv/flood-0123abcd/manifest.json: cannot be read from object storage" in page


def test_the_board_is_public_only_when_configured(desk, tmp_path):
    config = tmp_path / "public.toml"
    config.write_text(f'[farm]\nledger = "{desk["ledger"]}"\n\n[serve]\npublic_board = true\n')
    server = DeskServer(["--config", str(config)], tmp_path)
    try:
        anonymous = Client(server.wait_ready())
        status, _, page = anonymous.request("GET", "/", headers={"Accept": "text/html"})
        assert status == 200 and b'id="jobs"' in page and b"Log in" in page and b'href="/upload"' not in page
        assert anonymous.request("GET", "/jobs/1")[0] == 401  # the board only
        assert anonymous.request("POST", "/jobs/1/retry", {"csrf": "x"})[0] == 401
        where = urlsplit(server.url)
        streams = []
        for _ in range(5):  # live boards without a login: four per address
            connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
            connection.request("GET", "/events")
            streams.append((connection, connection.getresponse()))
        assert [response.status for _, response in streams] == [200, 200, 200, 200, 429]
        for connection, _ in streams:
            connection.close()
    finally:
        server.stop()


def test_serve_refuses_bad_settings_in_one_line(desk, tmp_path):
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "onetake.cli", "serve", *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=60)

    port = desk["url"].rsplit(":", 1)[1]
    for args, line in [
        (["--bind", "everywhere"], "onetake: --bind everywhere: give HOST:PORT, e.g. 127.0.0.1:8800"),
        (["--ledger", str(tmp_path / "none.sqlite")],
         f"onetake: {tmp_path / 'none.sqlite'}: no job ledger there; give the one `onetake watch` or `run` uses"),
        (["--ledger", str(desk["ledger"]), "--bind", f"127.0.0.1:{port}"],
         f"onetake: --bind 127.0.0.1:{port}: cannot listen there (Address already in use); choose another port or "
         f"stop what uses it"),
    ]:
        result = serve(*args)
        assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (2, line), result.stderr
        assert "Traceback" not in result.stderr


def test_the_shipped_serve_config_loads_and_the_desk_never_imports_the_workers():
    farm, watch, inboxes = load_watch_config(ROOT / "configs" / "serve.toml")
    serve = load_serve_config(ROOT / "configs" / "serve.toml")
    assert serve.bind == "127.0.0.1:8800" and serve.upload_inbox == inboxes[1].path and farm.ledger
    offenders = {str(p.relative_to(PACKAGE)): sorted(i for i in imports_of(p) if i.startswith("onetake.workers"))
                 for p in (PACKAGE / "desk").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_failed_logins_are_rate_limited(desk):
    client = Client(desk["url"])
    # three failures per name or address in the window (one from this address came in an earlier test)
    assert [client.login("olga", f"guess number {n}") for n in range(3)] == [401, 401, 429]
    assert client.login("olga") == 429  # even the right password waits now


def test_the_serve_benchmark_runs_small_and_writes_its_json(tmp_path):
    output = tmp_path / "serve.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "serve", "--jobs", "300", "--live", "3",
                             "--requests", "10", "--upload-mb", "4", "--repeat", "1", "--work", str(tmp_path / "w"),
                             "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(output.read_text())
    assert data["live_connections_open"] == 3 and data["live_bytes_received"] > 0
    assert 0 < data["board"]["p50_ms"] <= data["board"]["p95_ms"] <= data["board"]["max_ms"]
    upload = data["upload"]
    assert upload["intact"] and abs(upload["ratio"] - upload["tus_mb_s"] / upload["plain_put_mb_s"]) < 0.02
    assert data["rss_mb"]["idle"] > 10


def test_a_watcher_plans_a_job_delivered_anyway_under_qc_warn_and_follows_lane_moves(tmp_path, catalog):
    # the desk's watcher, which also shows each plan's tasks; a plain `onetake watch` does the same with both
    from onetake.desk.service import DeskWatcher, Monitor
    from onetake.pipeline.config import FarmConfig, InboxConfig, WatchConfig
    from onetake.pipeline.run import plan_options
    from onetake.pipeline.watch import QC_OVERRIDE, Held

    inbox = tmp_path / "news"
    inbox.mkdir()
    farm = FarmConfig(out=str(tmp_path / "out"))
    with Ledger(tmp_path / "jobs.sqlite") as ledger:
        watcher = DeskWatcher([InboxConfig(path=str(inbox), channels=("tv", "radio"))], WatchConfig(), farm, ledger,
                              None, catalog, lambda out: plan_options(farm.merged(out=out), "ffmpeg under test"))
        watcher.monitor = Monitor(str(tmp_path / "jobs.sqlite"))
        clip = make_clip(inbox / "processing" / "story.mp4")
        modes = {}
        for override in (None, {"mode": "warn", "by": "olga", "reason": "the black is the story"}):
            job_id = ledger.add(kind="watch", source=str(clip), path=str(clip), inbox=str(inbox), lane="normal")
            held = Held(job_id, clip, watcher.inboxes[0], -1, "normal", ("tv", "radio"),
                        {QC_OVERRIDE: override} if override else {})
            plan = watcher.make_plan(held)
            modes[bool(override)] = {t.params["channel"]: t.params["qc"]["mode"] for t in plan.tasks
                                     if t.kind == "deliver"}
        assert modes == {False: {"tv": "enforce", "radio": "enforce"}, True: {"tv": "warn", "radio": "warn"}}
        labels = [label for _, shown in watcher.monitor.expected for _, label in shown]
        # a measure per loudness target, named by the first rendition it is for; one ffmpeg makes every
        # rendition: its bar names them all
        assert labels[:5] == ["measure tv-hd-xdcam422", "measure podcast-mp3", "measure podcast-aac", "analyze",
                              "encode tv-hd-xdcam422, radio-bwf, podcast-mp3, podcast-aac"]

        waiting = Held(job_id, clip, watcher.inboxes[0], -1, "normal", ("tv",), {})
        watcher.held[job_id] = waiting
        ledger.set_lane(job_id, "urgent")  # what "move to urgent" on the desk does
        watcher.check_cancelled()
        assert waiting.lane == "urgent"


def test_uploaded_names_the_watcher_would_skip_get_their_kind_and_forms_are_small(tmp_path):
    from onetake.desk.sniff import media_kind
    from onetake.desk.uploads import Upload, UploadStore

    store = UploadStore(tmp_path, 3600)
    for name, expected in (("clip.part", "clip.mp4"), ("interview.srt", "interview.mp4"), ("x.json", "x.mp4"),
                           ("photo.jpg", "photo.jpg")):
        upload = Upload(id="a" * 24, user="eddie", length=8, name=name, sidecar={}, created_at=0.0,
                        media="ISO media (MP4/MOV)")
        (tmp_path / ".onetake-uploads" / f"{upload.id}.data").write_bytes(b"\x00\x00\x00\x08ftyp")
        (tmp_path / ".onetake-uploads" / f"{upload.id}.json").write_text("{}")
        assert store.land(upload).name == expected
    for require, marker in (("checksum", ".sha256"), ("done", ".done")):  # what an inbox's watcher waits for
        inbox = tmp_path / require
        inbox.mkdir()
        strict = UploadStore(inbox, 3600, require)
        upload = Upload(id="e" * 24, user="eddie", length=8, name="clip.mp4", sidecar={}, created_at=0.0,
                        media="ISO media (MP4/MOV)")
        (inbox / ".onetake-uploads" / f"{upload.id}.data").write_bytes(b"\x00\x00\x00\x08ftyp")
        (inbox / ".onetake-uploads" / f"{upload.id}.json").write_text("{}")
        landed = strict.land(upload)
        assert sorted(p.name for p in inbox.iterdir()) == sorted([".onetake-uploads", "clip.mp4", "clip.mp4.json",
                                                                  "clip.mp4" + marker])
        if require == "checksum":
            assert (inbox / "clip.mp4.sha256").read_text().split()[0] == hashlib.sha256(landed.read_bytes()).hexdigest()
    assert media_kind(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "RIFF WEBP"  # a phone's WebP photo
    assert media_kind("plain text saved as UTF-16".encode("utf-16")) is None  # FF FE is no MPEG audio header
    assert media_kind(bytes([0xFF, 0xFB, 0x90, 0x64])) == "MPEG audio/ADTS"  # an MP3 frame header


def test_logins_sent_at_once_cannot_slip_past_the_limit(tmp_path):
    """Twelve wrong passwords at the same instant, with three allowed: the rest are refused before their
    (memory-hard) check runs."""
    from concurrent.futures import ThreadPoolExecutor

    ledger = tmp_path / "jobs.sqlite"
    config = tmp_path / "farm.toml"
    config.write_text(f'[farm]\nout = "{tmp_path / "out"}"\nledger = "{ledger}"\n\n[serve]\nlogin_attempts = 3\n')
    add_users(ledger)
    server = DeskServer(["--config", str(config), "--no-watch"], tmp_path)
    try:
        server.wait_ready()
        with ThreadPoolExecutor(12) as pool:
            codes = sorted(pool.map(lambda n: Client(server.url).login("olga", f"guess {n}"), range(12)))
        assert codes.count(401) <= 3 and codes.count(429) >= 9, codes
    finally:
        server.stop()


def test_staging_expires_whole_uploads_and_a_landing_keeps_clear_of_another_files_stem(tmp_path):
    import os
    import time

    from onetake.desk.uploads import Upload, UploadStore

    store = UploadStore(tmp_path, 3600)
    staging = tmp_path / ".onetake-uploads"
    old = time.time() - 7200
    for upload_id, data_age in (("b" * 24, old), ("c" * 24, time.time())):  # c is still receiving bytes
        (staging / f"{upload_id}.json").write_text("{}")
        (staging / f"{upload_id}.data").write_bytes(b"x")
        os.utime(staging / f"{upload_id}.json", (old, old))
        os.utime(staging / f"{upload_id}.data", (data_age, data_age))
    store.expire()
    assert sorted(p.name for p in staging.iterdir()) == [f"{'c' * 24}.data", f"{'c' * 24}.json"]

    (tmp_path / "interview.wav").write_bytes(b"RIFF")  # a radio programme dropped by FTP
    upload = Upload(id="d" * 24, user="eddie", length=4, name="interview.jpg", sidecar={}, created_at=0.0,
                    media="image")
    (staging / f"{upload.id}.data").write_bytes(b"\xff\xd8\xff\xe0")
    (staging / f"{upload.id}.json").write_text("{}")
    assert store.land(upload).name == "interview-2.jpg"  # a photo of its own, not the programme's cover
