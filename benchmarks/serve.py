"""``python -m benchmarks serve``: the dispatch desk under load, beside a plain loopback server.

(a) board latency  GET / (the first page, then filtered and searched pages) with --jobs jobs in the ledger and
                   --live open live-board connections (server-sent events), while a writer changes the ledger
                   (so every live connection re-renders): p50 and p95 over --requests sequential requests
(b) upload         an --upload-mb file sent through the desk's tus endpoint in the browser's chunk size, beside
                   one HTTP PUT of the same file to a minimal loopback server (Python's http.server writing it
                   to disk): MB/s of each, and their ratio (target >= 0.8)
(c) memory         the desk server's resident memory: idle, under the live connections, and at its peak during
                   the upload

The desk runs as ``onetake serve`` in its own process, as in production (no watcher: the ledger is filled
directly, which is what a watcher writes).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil

from onetake.desk.auth import hash_password
from onetake.pipeline.config import ServeConfig
from onetake.pipeline.ledger import Ledger

from .common import MB, MEDIA, RESULTS, CommandFailed, clean, header, print_table, ratio, wait_for_quiet, write_json

TARGET_UPLOAD_RATIO = 0.8
PASSWORD = "benchmark passphrase"
LANES = ("urgent", "normal", "bulk")
STATES = ("delivered",) * 7 + ("failed", "queued", "running")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=10_000, help="jobs in the ledger (default 10000)")
    p.add_argument("--live", type=int, default=50, help="open live-board connections (default 50)")
    p.add_argument("--requests", type=int, default=300, help="board requests timed (default 300)")
    p.add_argument("--upload-mb", type=int, default=1024, help="size of the uploaded file in MiB (default 1024)")
    p.add_argument("--chunk-mb", type=int, default=ServeConfig.upload_chunk_kib // 1024,
                   help="upload request size in MiB, as the browser sends it (default: [serve] upload_chunk_kib)")
    p.add_argument("--repeat", type=int, default=2, help="uploads of each variant, interleaved; the fastest "
                                                         "counts (default 2)")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="before each timed upload, wait up to this long for other processes to go quiet")
    p.add_argument("--output", type=Path, default=RESULTS / "serve.json", help="the JSON result file")
    p.add_argument("--work", type=Path, default=MEDIA / "serve", help="scratch folder (ledger, inbox, the file)")


def fill_ledger(path: Path, jobs: int) -> None:
    with Ledger(path) as ledger:
        ledger.add_user("bench", "operator", hash_password(PASSWORD))
        ledger.db.execute("BEGIN")
        for n in range(jobs):
            state = STATES[n % len(STATES)]
            name = f"/srv/ingest/news/clip-{n:05d}.mp4"
            job_id = ledger.add(kind="watch", source=name, path=name, inbox="/srv/ingest/news", lane=LANES[n % 3],
                                metadata={"title": f"story {n}"}, state="running" if state == "running" else "queued")
            if state in ("delivered", "failed"):
                ledger.db.execute("UPDATE jobs SET state = ?, asset_id = ?, finished_at = queued_at + 60, "
                                  "error = ? WHERE id = ?", (state, f"clip-{n:05d}-0123abcd",
                                                             "encoder crashed" if state == "failed" else "", job_id))
            if state == "running":
                for rung in ("hls-1080", "hls-720", "hls-540"):
                    ledger.record_progress(job_id, f"a/encode/{rung}", f"encode {rung}", 0.5)
        ledger.db.execute("COMMIT")


class Desk:
    def __init__(self, work: Path, ledger: Path, inbox: Path, chunk_mb: int) -> None:
        config = work / "serve.toml"
        config.write_text(f'[farm]\nout = "{work / "out"}"\nledger = "{ledger}"\n\n[serve]\nupload_inbox = "{inbox}"\n'
                          f'upload_limit_mb = {1024 * 1024}\nupload_chunk_kib = {chunk_mb * 1024}\n')
        self.log = work / "serve.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "onetake.cli", "serve", "--config", str(config),
                                             "--bind", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"desk at http://127\.0\.0\.1:(\d+)/", self.log.read_text())
            if found:
                self.port = int(found.group(1))
                break
            if self.process.poll() is not None:
                raise CommandFailed(f"onetake serve exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            raise CommandFailed("onetake serve printed no address in 60 s")
        self.ps = psutil.Process(self.process.pid)
        self.cookie, self.csrf = self.login()

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def login(self) -> tuple[str, str]:
        c = self.connection()
        c.request("GET", "/login")
        r = c.getresponse()
        page = r.read().decode()
        login_cookie = r.getheader("set-cookie", "").split(";", 1)[0]
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        c.request("POST", "/login", urlencode({"csrf": token, "name": "bench", "password": PASSWORD, "next": "/"}),
                  {"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie})
        r = c.getresponse()
        r.read()
        cookie = r.getheader("set-cookie", "").split(";", 1)[0]
        c.request("GET", "/", headers={"Cookie": cookie})
        board = c.getresponse().read().decode()
        c.close()
        return cookie, re.search(r'X-CSRF-Token": "([^"]+)"', board).group(1)

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def open_live(desk: Desk, count: int, stop: threading.Event) -> tuple[list[threading.Thread], list[int]]:
    """``count`` live-board connections, each read by a thread; the bytes each received."""
    received = [0] * count
    threads = []

    def reader(n: int) -> None:
        with socket.create_connection(("127.0.0.1", desk.port)) as sock:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {desk.cookie}\r\n"
                         f"Accept: text/event-stream\r\n\r\n".encode())
            sock.settimeout(0.5)
            while not stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                received[n] += len(data)

    for n in range(count):
        thread = threading.Thread(target=reader, args=(n,), daemon=True)
        thread.start()
        threads.append(thread)
    return threads, received


def board_latency(desk: Desk, requests: int) -> dict[str, Any]:
    paths = ["/", "/?state=running", "/?lane=urgent&page=40", "/?q=story%209999", "/?state=failed&page=3"]
    times: list[float] = []
    c = desk.connection()
    for n in range(requests):
        start = time.perf_counter()
        c.request("GET", paths[n % len(paths)], headers={"Cookie": desk.cookie, "Accept": "text/html"})
        r = c.getresponse()
        body = r.read()
        times.append(time.perf_counter() - start)
        if r.status != 200 or b'id="jobs"' not in body:
            raise CommandFailed(f"GET {paths[n % len(paths)]}: status {r.status}")
    c.close()
    times.sort()
    return {"requests": requests, "p50_ms": round(statistics.median(times) * 1000, 1),
            "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000, 1), "max_ms": round(times[-1] * 1000, 1)}


def make_file(path: Path, size_mb: int) -> str:
    """A file that starts like an MP4 (the desk sniffs it) and is random after; its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
        block = os.urandom(MB)
        f.write(head)
        digest.update(head)
        for n in range(size_mb):
            piece = block[: MB - len(head)] if n == 0 else block
            f.write(piece)
            digest.update(piece)
    return digest.hexdigest()


def upload_tus(desk: Desk, path: Path, chunk_mb: int) -> float:
    size = path.stat().st_size
    c = desk.connection()
    auth = {"Cookie": desk.cookie, "X-CSRF-Token": desk.csrf, "Tus-Resumable": "1.0.0"}
    start = time.perf_counter()
    c.request("POST", "/uploads", headers={**auth, "Upload-Length": str(size),
                                           "Upload-Metadata": "filename YmVuY2gubXA0"})  # bench.mp4
    r = c.getresponse()
    r.read()
    if r.status != 201:
        raise CommandFailed(f"tus create: status {r.status}")
    location = r.getheader("location")
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            piece = f.read(chunk_mb * MB)
            c.request("PATCH", location, body=piece, headers={**auth, "Upload-Offset": str(offset),
                                                              "Content-Type": "application/offset+octet-stream"})
            r = c.getresponse()
            r.read()
            if r.status != 204:
                raise CommandFailed(f"tus PATCH at {offset}: status {r.status}")
            offset += len(piece)
    elapsed = time.perf_counter() - start
    c.close()
    return elapsed


class PlainPut(BaseHTTPRequestHandler):
    """The baseline: a PUT written to disk as it arrives, nothing else."""

    target: Path

    def do_PUT(self) -> None:
        left = int(self.headers["Content-Length"])
        with open(self.target, "wb") as f:
            while left:
                data = self.rfile.read(min(left, MB))
                if not data:
                    break
                f.write(data)
                left -= len(data)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def upload_plain(path: Path, target: Path) -> float:
    PlainPut.target = target
    server = ThreadingHTTPServer(("127.0.0.1", 0), PlainPut)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=120, blocksize=MB)
        start = time.perf_counter()
        with open(path, "rb") as f:
            c.request("PUT", "/file", body=f, headers={"Content-Length": str(path.stat().st_size)})
            c.getresponse().read()
        elapsed = time.perf_counter() - start
        c.close()
    finally:
        server.shutdown()
        server.server_close()
    return elapsed


def main(args: argparse.Namespace) -> int:
    data = header("serve")
    work = args.work
    clean(work)
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    ledger = work / "jobs.sqlite"
    started = time.perf_counter()
    fill_ledger(ledger, args.jobs)
    print(f"ledger with {args.jobs} jobs in {time.perf_counter() - started:.1f} s")
    desk = Desk(work, ledger, inbox, args.chunk_mb)
    stop = threading.Event()
    try:
        time.sleep(1.0)
        idle = desk.rss()
        threads, received = open_live(desk, args.live, stop)
        time.sleep(1.0)

        def write_changes() -> None:  # what a running watcher does: progress every half second
            with Ledger(ledger) as writer:
                n = 0
                while not stop.is_set():
                    n += 1
                    writer.record_progress(2, "a/encode/hls-1080", "encode hls-1080", (n % 100) / 100)
                    time.sleep(0.5)

        changer = threading.Thread(target=write_changes, daemon=True)
        changer.start()
        latency = board_latency(desk, args.requests)
        live_rss = desk.rss()
        live_open = sum(t.is_alive() for t in threads)
        live_bytes = sum(received)
        stop.set()
        changer.join()

        source = work / "upload.bin"
        digest = make_file(source, args.upload_mb)
        peak = [desk.rss()]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak.append(desk.rss())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        tus_runs, plain_runs, intact = [], [], True
        for _ in range(args.repeat):
            os.sync()  # each upload starts with no other write-back under way
            wait_for_quiet(args.quiet_wait)
            tus_runs.append(upload_tus(desk, source, args.chunk_mb))
            landed = inbox / "bench.mp4"
            with open(landed, "rb") as f:
                intact = intact and hashlib.file_digest(f, "sha256").hexdigest() == digest
            for path in inbox.glob("bench.*"):  # the file and its companions: sidecar, checksum, done marker
                path.unlink()
            plain_target = work / "plain.bin"
            os.sync()
            wait_for_quiet(args.quiet_wait)
            plain_runs.append(upload_plain(source, plain_target))
            plain_target.unlink()
        sampling.set()
        sampler.join()
        tus_s, plain_s = min(tus_runs), min(plain_runs)  # the least disturbed run of each
        source.unlink()
    finally:
        stop.set()
        desk.stop()
    size_mb = args.upload_mb
    tus_rate, plain_rate = size_mb / tus_s, size_mb / plain_s
    data.update({
        "jobs": args.jobs, "live_connections": args.live, "live_connections_open": live_open,
        "live_bytes_received": live_bytes, "board": latency,
        "load_average": os.getloadavg(),
        "upload": {"mb": size_mb, "tus_median_s": round(statistics.median(tus_runs), 2),
                   "plain_put_median_s": round(statistics.median(plain_runs), 2), "chunk_mb": args.chunk_mb,
                   "tus_s": round(tus_s, 2), "plain_put_s": round(plain_s, 2),
                   "tus_runs_s": [round(t, 2) for t in tus_runs], "plain_put_runs_s": [round(t, 2) for t in plain_runs],
                   "tus_mb_s": round(tus_rate, 1), "plain_put_mb_s": round(plain_rate, 1),
                   "ratio": ratio(tus_rate, plain_rate), "target": TARGET_UPLOAD_RATIO, "intact": intact},
        "rss_mb": {"idle": round(idle / MB, 1), "with_live": round(live_rss / MB, 1),
                   "upload_peak": round(max(peak) / MB, 1)},
    })
    print_table(f"board page, {args.jobs} jobs, {live_open} of {args.live} live connections open",
                ["requests", "p50 ms", "p95 ms", "max ms"],
                [[latency["requests"], latency["p50_ms"], latency["p95_ms"], latency["max_ms"]]])
    print_table(f"upload of {size_mb} MiB", ["variant", "seconds", "MB/s"],
                [["desk (tus)", round(tus_s, 2), round(tus_rate, 1)], ["plain PUT", round(plain_s, 2),
                                                                       round(plain_rate, 1)]])
    print(f"ratio desk/plain {data['upload']['ratio']} (fastest of {args.repeat} each; target >= "
          f"{TARGET_UPLOAD_RATIO}); medians {data['upload']['tus_median_s']} s vs "
          f"{data['upload']['plain_put_median_s']} s; landed intact: {intact}; load average "
          f"{os.getloadavg()[0]:.1f}")
    print_table("desk server resident memory", ["when", "MiB"],
                [[k, v] for k, v in data["rss_mb"].items()])
    write_json(data, args.output)
    return 0 if intact and live_open == args.live else 1
