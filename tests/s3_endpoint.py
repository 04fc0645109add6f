"""A real S3 HTTP endpoint for tests: moto's server mode in its own process, and a forwarding proxy in front of
it that logs every request and can answer 5xx, refuse connections for a while, or hold requests back."""

from __future__ import annotations

import http.client
import http.server
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1:port, a separate process; its state lives in its memory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@dataclass(frozen=True)
class Seen:
    method: str
    key: str          # the object key (bucket removed), '' for bucket-level requests
    query: str
    status: int


HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "trailer"}


class Proxy:
    """Forwards HTTP to ``upstream_port``; ``seen`` lists every answered request in order."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.fail_puts = 0                 # answer this many object PUTs (and part uploads) with fail_status
        self.fail_status = 503
        self.refuse_until = 0.0            # close every connection at once until this monotonic time
        self.hold = threading.Event()      # while clear, requests wait here (set = pass)
        self.hold.set()
        self.held = threading.Event()      # set when a request waits at the hold
        self.hold_after = 0                # let this many object PUTs through before holding the rest
        self.corrupt_puts = 0              # flip a byte in the body of this many object PUTs
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                if time.monotonic() < proxy.refuse_until:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self._body()
                url = urllib.parse.urlsplit(self.path)
                key = urllib.parse.unquote(url.path.lstrip("/").partition("/")[2])
                is_put = self.command == "PUT" and key
                if not proxy.hold.is_set() and is_put:
                    with proxy.lock:
                        through = proxy.hold_after > 0
                        proxy.hold_after -= through
                    if not through:
                        proxy.held.set()
                        proxy.hold.wait()
                with proxy.lock:
                    inject = bool(is_put and proxy.fail_puts > 0)
                    if inject:
                        proxy.fail_puts -= 1
                    corrupt = bool(is_put and not inject and proxy.corrupt_puts > 0 and len(body) > 200)
                    if corrupt:
                        proxy.corrupt_puts -= 1
                if corrupt:
                    middle = len(body) // 2
                    body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
                if inject:
                    payload = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ServiceUnavailable</Code>"
                               b"<Message>injected by the test proxy</Message></Error>")
                    self.send_response(proxy.fail_status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    proxy.record(Seen(self.command, key, url.query, proxy.fail_status))
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                try:
                    upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                except OSError:  # the endpoint is down: the client sees its connection cut
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        self.send_header(k, v)
                length = answer.getheader("Content-Length")
                self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()
                proxy.record(Seen(self.command, key, url.query, answer.status))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def object_puts(self) -> list[Seen]:
        """Successful object writes: single PUTs and completed multipart uploads (by their key)."""
        with self.lock:
            return [s for s in self.seen if s.status == 200 and s.key and
                    ((s.method == "PUT" and "partNumber" not in s.query) or
                     (s.method == "POST" and "uploadId" in s.query))]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
