"""Deliveries to and sources from S3, against moto's real HTTP server in its own process (through a logging,
fault-injecting proxy where the test needs to see or disturb the traffic)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from conftest import make_clip
from s3_endpoint import MotoServer, Proxy
from test_plan import source

from onetake.cli import cli
from onetake.pipeline.config import FarmConfig, load_config
from onetake.pipeline.destinations import (
    Location,
    channel_destinations,
    content_type,
    object_key,
    parse_location,
    safe_segment,
    upload_stages,
)
from onetake.pipeline.errors import ConfigError, StorageError
from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.workers.storage import backend_for, build_manifest, expand

ACCESS_KEY = "AKIAONETAKETEST12345"
SECRET_KEY = "onetake/test+secret/never-printed-0123456789"
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.kill()


class Store:
    def __init__(self, proxy: Proxy, moto: MotoServer, bucket: str) -> None:
        self.proxy, self.moto, self.bucket = proxy, moto, bucket
        # the test's own view goes straight to moto, so it does not show in the proxy's log
        self.direct = boto3.session.Session().client("s3", endpoint_url=moto.url)

    def create_bucket(self) -> None:
        self.direct.create_bucket(Bucket=self.bucket)

    def listing(self, prefix: str = "") -> dict[str, int]:
        pages = self.direct.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}

    def head(self, key: str) -> dict:
        return self.direct.head_object(Bucket=self.bucket, Key=key)

    def read(self, key: str) -> bytes:
        return self.direct.get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture
def store(moto, monkeypatch):
    """A fresh bucket behind a proxy; the standard chain's variables point at the proxy (Dask workers started by
    the test inherit them), with dummy credentials and no config files."""
    proxy = Proxy(moto.port)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    s = Store(proxy, moto, f"onetake-{uuid.uuid4().hex[:12]}")
    s.create_bucket()
    yield s
    proxy.close()


def transfer(**overrides) -> dict:
    return {**FarmConfig(s3_multipart_mb=5, s3_retry_window_s=20).transfer(), **overrides}


def fake_delivery(folder: Path, big: int = 0) -> tuple[list, dict]:
    """A channel's files as the packager lays them out: an HLS ladder of two rungs, and one file of every other
    kind; ``big`` bytes of random data in the MXF."""
    def write(rel: str, data: bytes) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    for rung in ("hls-360", "hls-540"):
        write(f"web-hls/{rung}/init.mp4", os.urandom(900))
        for i in range(3):
            write(f"web-hls/{rung}/segment_{i:05d}.m4s", os.urandom(3000 + i))
        write(f"web-hls/{rung}/index.m3u8", b"#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\nsegment_00000.m4s\n")
    write("web-hls/master.m3u8", b"#EXTM3U\nhls-360/index.m3u8\nhls-540/index.m3u8\n")
    write("tv.mxf", os.urandom(big or 2000))
    for name in ("radio.wav", "web.mp4", "poster.jpg", "sprite/sprite.vtt", "sprite/sprite-001.jpg"):
        write(name, os.urandom(500))
    items = [{"src": str(folder / "web-hls"), "dest": "web-hls", "profile": "web-hls"}]
    items += [{"src": str(p), "dest": p.relative_to(folder).as_posix(), "profile": p.stem}
              for p in sorted(folder.rglob("*")) if p.is_file() and "web-hls" not in p.parts]
    files = expand(items)
    manifest = build_manifest("web", "news-abababab", {"path": "/in/news.mp4", "size": 1, "sha256": "ab"}, files,
                              [], [])
    return files, manifest


def deliver(store: Store, prefix: str, files, manifest, **settings) -> str:
    dest = f"s3://{store.bucket}/{prefix}"
    return backend_for(dest, transfer(**settings)).deliver(dest, files, manifest)


# ---------------------------------------------------------------------------------------------------------
# pure: destinations, keys, content types, order


def test_destinations_are_folders_or_s3_urls():
    assert parse_location("s3://playout/incoming/") == Location("playout", "incoming")
    assert parse_location("/mnt/nas/proxies") == Location(path="/mnt/nas/proxies")
    for bad, says in [("gs://bucket/x", "'gs://' is not supported"), ("s3://Bad_Bucket/x", "not a valid bucket"),
                      ("s3://ok-bucket/a/../b", "may not contain '.' or '..'"), ("", "is empty")]:
        with pytest.raises(ConfigError, match=says):
            parse_location(bad)
    where = channel_destinations("s3://vod-origin/news", {"tv": "s3://playout/incoming", "edit": "/mnt/nas/proxies"},
                                 ["tv", "web", "edit"])
    assert {c: str(w.child("a-1")) for c, w in where.items()} == {
        "tv": "s3://playout/incoming/a-1", "web": "s3://vod-origin/news/web/a-1", "edit": "/mnt/nas/proxies/a-1"}


@pytest.mark.parametrize("name, expected", [
    ("中文 新闻 01.mov", "中文-新闻-01.mov"), ("../../etc/passwd", "etc-passwd"), ("..", "unnamed"),
    ("a b\tc\nd", "a-b-c-d"), ("x" * 500, "x" * 120),
])
def test_names_become_safe_readable_segments(name, expected):
    assert safe_segment(name) == expected


def test_keys_never_leave_the_prefix():
    where = Location("bucket", "incoming/a-1")
    assert object_key(where, "web-hls/hls-360/index.m3u8") == "incoming/a-1/web-hls/hls-360/index.m3u8"
    for bad in ("../other/x", "/etc/passwd", "a//b", "a/./b"):
        with pytest.raises(ConfigError, match="outside"):
            object_key(where, bad)
    with pytest.raises(ConfigError, match="not a safe storage name"):
        where.child("../x")


def test_hostile_file_names_plan_to_keys_under_the_prefix(catalog):
    options = PlanOptions(out_dir="s3://vod-origin/news", work_dir="/work",
                          farm=FarmConfig(destinations=("tv=s3://playout/incoming",)))
    for name in ("中文 新闻 01.mov", "../../../etc/passwd.mov", "a" * 400 + ".mov", "x/../../y .mov"):
        plan = plan_job(source(name=name.rsplit("/", 1)[-1]), ["tv", "web"], catalog, options)
        for task in plan.tasks:
            if task.kind == "deliver":
                dest = parse_location(task.params["dest"])
                base = "incoming/" if task.params["channel"] == "tv" else "news/web/"
                assert dest.prefix.startswith(base) and ".." not in dest.prefix and " " not in dest.prefix
                assert len(dest.prefix) < 200 and task.params["transfer"] == FarmConfig().transfer()


def test_content_types_and_upload_stages():
    expected = {"a/index.m3u8": "application/vnd.apple.mpegurl", "a/segment_00001.m4s": "video/iso.segment",
                "x.mp4": "video/mp4", "tv.MXF": "application/mxf", "r.wav": "audio/wav", "p.jpg": "image/jpeg",
                "s.vtt": "text/vtt", "report.html": "text/html; charset=utf-8",
                "manifest.json": "application/json", "odd.bin": "application/octet-stream"}
    assert {k: content_type(k) for k in expected} == expected
    assert upload_stages(["w/master.m3u8", "manifest.json", "w/a/index.m3u8", "w/a/s.m4s", "tv.mxf"]) == [
        ["w/a/s.m4s", "tv.mxf"], ["w/a/index.m3u8"], ["w/master.m3u8"], ["manifest.json"]]


def test_config_takes_per_channel_destinations(tmp_path):
    path = tmp_path / "farm.toml"
    path.write_text('[farm]\nout = "s3://vod-origin/news"\n[destinations]\ntv = "s3://playout/incoming"\n'
                    'edit = "/mnt/nas/proxies"\n')
    config = load_config(path)
    assert config.channel_destinations() == {"tv": "s3://playout/incoming", "edit": "/mnt/nas/proxies"}
    assert config.work_path() == ".onetake"
    merged = config.merged(destinations=("tv=/srv/tv", "web=s3://cdn/web"))
    assert merged.channel_destinations() == {"tv": "/srv/tv", "edit": "/mnt/nas/proxies", "web": "s3://cdn/web"}
    path.write_text('[destinations]\ntv = "ftp://x/y"\n')
    with pytest.raises(ConfigError, match=r"farm.toml: destination of channel 'tv' 'ftp://x/y': 'ftp://' is not"):
        load_config(path)
    path.write_text('[farm]\ns3_multipart_mb = 1\n')
    with pytest.raises(ConfigError, match=r"'s3_multipart_mb' = 1 is out of range"):
        load_config(path)


def test_shipped_example_configs_load():
    root = Path(__file__).parents[1] / "configs"
    config = load_config(root / "s3.toml")
    assert parse_location(config.out).is_s3 and config.channel_destinations()


# ---------------------------------------------------------------------------------------------------------
# uploads against the endpoint


def test_delivery_order_types_and_checksums(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    where = deliver(store, "news/web/news-abababab", files, manifest)
    assert where == f"s3://{store.bucket}/news/web/news-abababab/manifest.json"
    puts = [p.key.removeprefix("news/web/news-abababab/") for p in store.proxy.object_puts()]
    assert sorted(puts) == sorted([rel for _, rel, _ in files] + ["manifest.json"])
    stage = [0 if not k.endswith((".m3u8", ".json")) else 1 if k.endswith("index.m3u8") else
             2 if k.endswith("master.m3u8") else 3 for k in puts]
    assert stage == sorted(stage), f"out of order: {puts}"
    assert puts[-1] == "manifest.json"
    for src, rel, _ in files:
        head = store.head(f"news/web/news-abababab/{rel}")
        assert head["ContentType"] == content_type(rel)
        assert head["Metadata"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert store.read(f"news/web/news-abababab/{rel}") == src.read_bytes()
    assert json.loads(store.read("news/web/news-abababab/manifest.json")) == manifest
    assert store.head("news/web/news-abababab/manifest.json")["ContentType"] == "application/json"


def test_rerun_sends_nothing_and_a_lost_object_is_restored(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    deliver(store, "p/a", files, manifest)
    store.proxy.clear()
    deliver(store, "p/a", files, manifest)
    assert store.proxy.object_puts() == []
    assert not [s for s in store.proxy.seen if s.method in ("PUT", "POST", "DELETE")]

    store.direct.delete_object(Bucket=store.bucket, Key="p/a/web-hls/hls-360/segment_00001.m4s")
    store.proxy.clear()
    deliver(store, "p/a", files, manifest)
    writes = [(s.method, s.key) for s in store.proxy.seen if s.method in ("PUT", "POST", "DELETE")]
    # the old manifest is withdrawn before the repair, so nobody reads a manifest naming a missing file
    assert writes == [("DELETE", "p/a/manifest.json"), ("PUT", "p/a/web-hls/hls-360/segment_00001.m4s"),
                      ("PUT", "p/a/manifest.json")]


def test_two_deliveries_at_once_end_whole(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    errors = []

    def one() -> None:
        try:
            deliver(store, "same/asset", files, manifest)
        except StorageError as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for src, rel, _ in files:
        assert store.read(f"same/asset/{rel}") == src.read_bytes()
    assert json.loads(store.read("same/asset/manifest.json")) == manifest


def test_injected_5xx_answers_are_retried(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    store.proxy.fail_puts = 6
    deliver(store, "flaky", files, manifest)
    assert sum(s.status == 503 for s in store.proxy.seen) == 6
    assert set(store.listing("flaky/")) == {f"flaky/{rel}" for _, rel, _ in files} | {"flaky/manifest.json"}


def test_endpoint_down_for_seconds_mid_upload(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    store.proxy.hold.clear()
    result: list = []
    worker = threading.Thread(target=lambda: result.append(deliver(store, "outage", files, manifest)))
    worker.start()
    assert store.proxy.held.wait(20), "no upload started"
    store.proxy.refuse_until = time.monotonic() + 4  # every connection cut for 4 s
    started = time.monotonic()
    store.proxy.hold.set()
    worker.join(60)
    assert result and time.monotonic() - started >= 3.5
    assert set(store.listing("outage/")) == {f"outage/{rel}" for _, rel, _ in files} | {"outage/manifest.json"}


def test_failure_after_retries_leaves_no_manifest_and_a_rerun_completes(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    store.proxy.hold.clear()
    failure: list = []

    def first() -> None:
        try:
            deliver(store, "down", files, manifest, retry_window_s=1.0)
        except StorageError as exc:
            failure.append(exc)

    worker = threading.Thread(target=first)
    worker.start()
    assert store.proxy.held.wait(20)
    store.proxy.refuse_until = time.monotonic() + 3600
    store.proxy.hold.set()
    worker.join(60)
    [error] = failure
    assert "still failing after retrying for 1 s" in str(error) and f"s3://{store.bucket}" in str(error)
    assert ACCESS_KEY not in str(error) and SECRET_KEY not in str(error)
    assert "down/manifest.json" not in store.listing("down/")
    uploaded_before = set(store.listing("down/"))

    store.proxy.refuse_until = 0
    store.proxy.clear()
    deliver(store, "down", files, manifest)
    sent = {p.key for p in store.proxy.object_puts()}
    assert sent == ({f"down/{rel}" for _, rel, _ in files} - uploaded_before) | {"down/manifest.json"}


def test_bytes_damaged_on_the_way_fail_the_delivery(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    store.proxy.corrupt_puts = 1
    with pytest.raises(StorageError, match="the store received different bytes"):
        deliver(store, "damaged", files, manifest)
    assert "damaged/manifest.json" not in store.listing("damaged/")
    deliver(store, "damaged", files, manifest)  # the damaged object was removed, so it goes up again
    for src, rel, _ in files:
        assert store.read(f"damaged/{rel}") == src.read_bytes()


def test_large_files_go_up_in_parts(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files", big=11 * MIB)
    deliver(store, "big", files, manifest, multipart_bytes=5 * MIB)
    parts = [s for s in store.proxy.seen if s.method == "PUT" and "partNumber" in s.query and s.key == "big/tv.mxf"]
    assert len(parts) == 3
    head = store.head("big/tv.mxf")
    assert head["ContentLength"] == 11 * MIB and head["ContentType"] == "application/mxf"
    assert head["Metadata"]["sha256"] == hashlib.sha256((tmp_path / "files/tv.mxf").read_bytes()).hexdigest()
    assert store.read("big/tv.mxf") == (tmp_path / "files/tv.mxf").read_bytes()


def test_no_bucket_is_one_line_without_secrets(store, tmp_path):
    files, manifest = fake_delivery(tmp_path / "files")
    with pytest.raises(StorageError) as caught:
        backend_for("s3://no-such-bucket-here/x", transfer()).deliver("s3://no-such-bucket-here/x", files, manifest)
    message = str(caught.value)
    assert "NoSuchBucket" in message and "\n" not in message
    assert ACCESS_KEY not in message and SECRET_KEY not in message


# ---------------------------------------------------------------------------------------------------------
# onetake run end to end: real ffmpeg, Dask worker processes, the endpoint


def run(*args: str) -> tuple[int, str, dict | None]:
    result = CliRunner().invoke(cli, ["run", *args])
    summary = json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None
    return result.exit_code, result.output, summary


def test_every_channel_to_s3_then_a_rerun_sends_nothing(store, tmp_path):
    src = make_clip(tmp_path / "in" / "中文 新闻.mp4", seconds=2, size="640x360")
    proxies = tmp_path / "nas" / "proxies"
    args = [str(src), "--out", f"s3://{store.bucket}/news", "--dest", f"edit={proxies}",
            "--dest", f"tv=s3://{store.bucket}/playout/incoming", "--json",
            "--config", str(_config(tmp_path, work_dir=str(tmp_path / "work")))]
    code, output, summary = run(*args)
    assert code == 0, output
    assert ACCESS_KEY not in output and SECRET_KEY not in output
    manifests = summary["manifests"]
    assert len(manifests) == 6
    [local] = [m for m in manifests if not m.startswith("s3://")]
    assert Path(local).parent.parent == proxies and Path(local).is_file()
    puts = [p.key for p in store.proxy.object_puts()]
    for url in (m for m in manifests if m.startswith("s3://")):
        key = url.removeprefix(f"s3://{store.bucket}/")
        prefix = key.removesuffix("manifest.json")
        assert prefix.startswith(("news/", "playout/incoming/"))
        manifest = json.loads(store.read(key))
        assert manifest["source"]["path"] == str(src)
        for f in manifest["files"]:
            head = store.head(prefix + f["path"])
            assert head["Metadata"]["sha256"] == f["sha256"] and head["ContentLength"] == f["size"]
            assert head["ContentType"] == content_type(f["path"])
        mine = [k for k in puts if k.startswith(prefix)]
        assert mine[-1] == key and sorted(mine[:-1]) == sorted(prefix + f["path"] for f in manifest["files"])
        playlists = [i for i, k in enumerate(mine) if k.endswith(".m3u8")]
        media = [i for i, k in enumerate(mine) if k.endswith((".m4s", "init.mp4"))]
        masters = [i for i, k in enumerate(mine) if k.endswith("master.m3u8")]
        if playlists:
            assert max(media) < min(playlists) and max(playlists) == max(masters)
    before = {m: store.read(m.removeprefix(f"s3://{store.bucket}/")) for m in manifests if m.startswith("s3://")}

    store.proxy.clear()
    code, output, again = run(*args)
    assert code == 0, output
    assert store.proxy.object_puts() == []
    assert sorted(again["manifests"]) == sorted(manifests)
    assert before == {m: store.read(m.removeprefix(f"s3://{store.bucket}/")) for m in before}


def test_a_source_read_from_s3(store, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", seconds=1)
    store.direct.upload_file(str(src), store.bucket, "raw/中文 clip.mp4")
    url = f"s3://{store.bucket}/raw/中文 clip.mp4"
    out, work = tmp_path / "out", tmp_path / "work"
    code, output, summary = run(url, f"s3://{store.bucket}/raw/missing.mxf", "--channels", "radio", "--out", str(out),
                                "--config", str(_config(tmp_path, work_dir=str(work))), "--json")
    assert code == 1, output
    ok, missing = summary["sources"]
    assert ok["source"] == url and ok["ok"] is True, ok
    assert missing["source"].endswith("missing.mxf") and "no such object" in missing["error"]
    [manifest] = summary["manifests"]
    assert json.loads(Path(manifest).read_text())["source"]["path"] == url
    [copy] = [p for p in (work / "sources").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert copy.read_bytes() == src.read_bytes() and copy.name == "中文-clip.mp4"


def test_probe_and_analyze_read_an_s3_source_and_leave_no_copy(store, tmp_path, monkeypatch):
    src = make_clip(tmp_path / "clip.mp4", seconds=1)
    store.direct.upload_file(str(src), store.bucket, "raw/clip.mp4")
    url = f"s3://{store.bucket}/raw/clip.mp4"
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # gettempdir() caches; TMPDIR is read once
    probed = CliRunner().invoke(cli, ["probe", url, "--json"])
    assert probed.exit_code == 0, probed.output
    info = json.loads(probed.stdout)
    assert info["url"] == url and info["size"] == src.stat().st_size
    analysed = CliRunner().invoke(cli, ["analyze", url, "--json", "--report", str(tmp_path / "report.html")])
    assert analysed.exit_code == 0, analysed.output
    assert json.loads(analysed.stdout)["frames"] == 25 and (tmp_path / "report.html").is_file()
    assert not list((tmp_path / "tmp").iterdir())  # the temporary copies are gone
    missing = CliRunner().invoke(cli, ["probe", f"s3://{store.bucket}/raw/none.mp4"])
    assert missing.exit_code == 2 and "no such object" in missing.output and "Traceback" not in missing.output


def _config(tmp_path: Path, **farm) -> Path:
    path = tmp_path / "farm.toml"
    path.write_text("[farm]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in farm.items()))
    return path


def test_endpoint_killed_and_restarted_mid_upload(store, tmp_path):
    """moto keeps its objects in memory, so a restart loses what was uploaded before it: the first run may end
    either way, but it must end cleanly, and the rerun must leave every object of the manifest in place."""
    src = make_clip(tmp_path / "clip.mp4", seconds=1)
    config = _config(tmp_path, s3_multipart_mb=5, s3_retry_window_s=30.0, work_dir=str(tmp_path / "work"))
    args = [str(src), "--channels", "tv,edit", "--out", f"s3://{store.bucket}/out", "--config", str(config), "--json"]
    store.proxy.hold_after = 1  # one object (or part) reaches the endpoint that then dies
    store.proxy.hold.clear()
    first: list = []
    worker = threading.Thread(target=lambda: first.append(run(*args)))
    worker.start()
    assert store.proxy.held.wait(120), "no upload started"
    time.sleep(0.5)  # the other uploads in flight reach the hold too
    store.moto.kill()
    store.moto.start()  # same port, empty
    store.create_bucket()
    store.proxy.hold.set()
    worker.join(180)
    [(code, output, summary)] = first
    assert code in (0, 1), output
    for channel in summary["sources"][0]["channels"]:
        if channel["manifest"] is None:  # failed cleanly: the cause named, no manifest in the store
            assert channel["error"].startswith(f"s3://{store.bucket}: ")
            assert not [k for k in store.listing() if k.endswith("manifest.json") and f"/{channel['channel']}/" in k]
    kept = store.listing()
    store.proxy.clear()
    code, output, summary = run(*args)
    assert code == 0, output
    wanted = set()
    for url in summary["manifests"]:
        key = url.removeprefix(f"s3://{store.bucket}/")
        manifest = json.loads(store.read(key))
        wanted |= {key} | {key.removesuffix("manifest.json") + f["path"] for f in manifest["files"]}
        for f in manifest["files"]:
            data = store.read(key.removesuffix("manifest.json") + f["path"])
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
    # whatever the restart lost (or the first run never finished) went up again, and only that, plus the
    # manifests that had to be withdrawn for the repair
    def files(keys: set[str]) -> set[str]:
        return {k for k in keys if not k.endswith("manifest.json")}

    assert files({p.key for p in store.proxy.object_puts()}) == files(wanted - set(kept))


def test_plan_shows_destinations_without_credentials(store, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", seconds=1)
    result = CliRunner().invoke(cli, ["plan", str(src), "--channels", "tv,edit", "--out", f"s3://{store.bucket}/o",
                                      "--dest", "edit=/mnt/nas/proxies", "--config",
                                      str(_config(tmp_path, work_dir=str(tmp_path / "work")))])
    assert result.exit_code == 0, result.output
    assert f"into s3://{store.bucket}/o/tv/clip-" in result.output and "into /mnt/nas/proxies/clip-" in result.output
    assert ACCESS_KEY not in result.output and SECRET_KEY not in result.output
    bad = CliRunner().invoke(cli, ["plan", str(src), "--dest", "nope=/x"])
    assert bad.exit_code == 2 and "unknown channel 'nope'" in bad.output


def test_a_failed_upload_reports_the_channel_and_the_rerun_does_not_encode_again(store, tmp_path):
    src = make_clip(tmp_path / "clip.mp4", seconds=1)
    work = tmp_path / "work"
    missing = f"{store.bucket}-later"
    args = [str(src), "--channels", "radio,edit", "--out", f"s3://{missing}/o", "--dest", f"edit={tmp_path / 'nas'}",
            "--config", str(_config(tmp_path, work_dir=str(work), s3_retry_window_s=2.0))]
    result = CliRunner().invoke(cli, ["run", *args])
    assert result.exit_code == 1, result.output
    [failed] = [line for line in result.output.splitlines() if line.startswith("FAILED")]
    assert "radio: " in failed and f"s3://{missing}" in failed and "NoSuchBucket" in failed
    assert "delivered edit" in result.output  # the other channel is not held back
    assert ACCESS_KEY not in result.output and SECRET_KEY not in result.output
    renditions = {p: p.stat().st_ino for p in (work / "renditions").rglob("*") if p.is_file()}
    assert renditions, "the encoded files stay in the work dir"

    store.direct.create_bucket(Bucket=missing)
    result = CliRunner().invoke(cli, ["run", *args])
    assert result.exit_code == 0, result.output
    assert {p: p.stat().st_ino for p in (work / "renditions").rglob("*") if p.is_file()} == renditions
    assert [k for k in Store(store.proxy, store.moto, missing).listing() if k.endswith("manifest.json")]
