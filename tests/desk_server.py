"""The desk as the tests meet it: `onetake serve` as a real subprocess on loopback, and a small HTTP client that
logs in as a browser would (cookie, CSRF token from the page)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from onetake.desk.auth import hash_password
from onetake.pipeline.ledger import Ledger

PASSWORD = "a long test passphrase"
USERS = {"vera": "viewer", "eddie": "editor", "olga": "operator"}


class DeskServer:
    """``onetake serve ARGS`` started and stopped; its URL read from the line it prints."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = cwd / "serve.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "onetake.cli", "serve", "--bind", "127.0.0.1:0", *args],
                                        cwd=cwd, stdout=subprocess.DEVNULL, stderr=self.log,
                                        env={**os.environ, **(env or {})})
        self.url = ""

    def wait_ready(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"desk at (http://\S+?)/?[;\s]", self.log_path.read_text())
            if found:
                self.url = found.group(1)
                return self.url
            if self.process.poll() is not None:
                raise AssertionError(f"onetake serve exited {self.process.returncode}:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"onetake serve printed no URL in {timeout} s:\n{self.log_path.read_text()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGTERM)  # the second signal stops at once
                self.process.wait(timeout=30)
        self.log.close()
        return self.log_path.read_text()


def add_users(ledger: Path) -> None:
    """The three test users, one per role, hashed as `onetake users add` hashes."""
    with Ledger(ledger) as opened:
        for name, role in USERS.items():
            if opened.user(name) is None:
                opened.add_user(name, role, hash_password(PASSWORD))


class Client:
    """Cookie-keeping HTTP/1.1 requests to the desk."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.origin = url.rstrip("/")
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def request(self, method: str, path: str, body: bytes | dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = dict(headers or {})
        if isinstance(body, dict):
            body = urlencode(body).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0].strip('"')
        merged = {k.lower(): v for k, v in response.getheaders()}
        merged["set-cookie"] = "\n".join(v for k, v in response.getheaders() if k.lower() == "set-cookie")
        return response.status, merged, data

    def login(self, name: str, password: str = PASSWORD) -> int:
        status, _, page = self.request("GET", "/login")
        token = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
        status, headers, _ = self.request("POST", "/login", {"csrf": token, "name": name, "password": password,
                                                             "next": "/"})
        if status == 303:
            _, _, board = self.request("GET", "/", headers={"Accept": "text/html"})
            self.csrf = re.search(rb'X-CSRF-Token": "([^"]+)"', board).group(1).decode()
        return status

    def json(self, data: bytes) -> Any:
        return json.loads(data)
