"""``python -m benchmarks storage``: upload throughput of a delivery to a local S3 endpoint, in the same run as
plain boto3.

(a) boto3    ``client.upload_file`` of each file in turn, boto3's default settings, one client
(b) onetake  the S3 storage backend's delivery of the same files (list, upload in stages concurrently with one
             client and transfer manager, read every checksum back, manifest last)

Two file sets, laid out as deliveries are: ``large`` (a few big files, as TV MXF and MP4) and ``segments`` (an
HLS ladder of many small fMP4 segments and their playlists). Their bytes are random: what is measured is the
upload path, not the media. The endpoint is moto's server mode on 127.0.0.1 (``--endpoint URL`` for another
one), which runs on the same machine; its CPU time is reported, since a single-process moto is often the
bottleneck. Ratios are onetake's throughput over boto3's: above 1 is faster.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import psutil

from onetake.pipeline.config import FarmConfig
from onetake.workers.storage import S3Storage, build_manifest, expand

from .common import (
    MB,
    MEDIA,
    RESULTS,
    STATS,
    Clock,
    Measurement,
    clean,
    disturbed,
    header,
    print_table,
    ratio,
    representative_runs,
    wait_for_quiet,
    write_json,
)

TARGETS = {"large": ("min", 0.9), "segments": ("min", 1.0)}   # onetake / boto3 throughput


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--large-files", type=int, default=2, help="files in the large set (default 2)")
    p.add_argument("--large-mb", type=int, default=64, help="size of each large file in MiB (default 64)")
    p.add_argument("--segments", type=int, default=300, help="HLS segments in the segments set (default 300)")
    p.add_argument("--segment-kb", type=int, default=120, help="size of each segment in KiB (default 120)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each variant per set, interleaved (default 3)")
    p.add_argument("--stat", choices=STATS, default="min", help="which run represents a variant (default min)")
    p.add_argument("--endpoint", help="an S3 endpoint URL to use instead of starting moto (credentials from the "
                                      "standard chain)")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                   help="before each timed run, wait up to this long for other processes to go quiet")
    p.add_argument("--output", type=Path, default=RESULTS / "storage.json", help="the JSON result file")
    p.add_argument("--work", type=Path, default=MEDIA / "work", help="scratch folder for the generated files")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto server did not start")


def make_set(kind: str, folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The files of one set as a deliver task lists them."""
    clean(folder)
    folder.mkdir(parents=True)
    if kind == "large":
        for i in range(args.large_files):
            (folder / f"large-{i}.mxf").write_bytes(os.urandom(args.large_mb * MB))
        return [{"src": str(p), "dest": p.name, "profile": "large"} for p in sorted(folder.iterdir())]
    ladder = folder / "web-hls"
    rungs = ("hls-1080", "hls-720", "hls-540", "hls-360")
    per_rung = max(1, args.segments // len(rungs))
    for rung in rungs:
        (ladder / rung).mkdir(parents=True)
        (ladder / rung / "init.mp4").write_bytes(os.urandom(1200))
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", '#EXT-X-MAP:URI="init.mp4"']
        for i in range(per_rung):
            (ladder / rung / f"segment_{i:05d}.m4s").write_bytes(os.urandom(args.segment_kb * 1024))
            lines += ["#EXTINF:2.000000,", f"segment_{i:05d}.m4s"]
        (ladder / rung / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    (ladder / "master.m3u8").write_text("#EXTM3U\n" + "".join(f"{r}/index.m3u8\n" for r in rungs))
    return [{"src": str(ladder), "dest": "web-hls", "profile": "web-hls"}]


def cpu_of(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    t = process.cpu_times()
    return t.user + t.system


def run_variant(name: str, files: list[tuple[Path, str, str]], manifest: dict[str, Any], bucket: str,
                s3: Any, moto: psutil.Process | None) -> Measurement:
    prefix = f"{name}/{uuid.uuid4().hex[:8]}"
    moto_cpu = cpu_of(moto)
    with Clock() as clock:
        if name == "boto3":
            for src, rel, _ in files:
                s3.upload_file(str(src), bucket, f"{prefix}/{rel}")
        else:
            S3Storage(FarmConfig().transfer()).deliver(f"s3://{bucket}/{prefix}", files, manifest)
    moto_cpu = cpu_of(moto) - moto_cpu
    size = sum(src.stat().st_size for src, _, _ in files)
    m = Measurement(clock.wall_s, clock.cpu_s, clock.user_s, clock.system_s, max(0.0, clock.other_cpu_s - moto_cpu))
    self_cpu = (clock.self1.ru_utime - clock.self0.ru_utime) + (clock.self1.ru_stime - clock.self0.ru_stime)
    m.extra.update({"bytes": size, "files": len(files), "mb_per_s": round(size / MB / clock.wall_s, 2),
                    "client_cpu_s": round(self_cpu, 3), "endpoint_cpu_s": round(moto_cpu, 3)})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    return m


def main(args: argparse.Namespace) -> int:
    data = header("storage")
    moto_process = None
    if args.endpoint:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint
    else:
        moto_process, url = start_moto()
        os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "benchmark",
                           "AWS_SECRET_ACCESS_KEY": "benchmark", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        s3 = boto3.session.Session().client("s3")  # boto3's defaults: the baseline's client
        bucket = f"onetake-bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        moto = psutil.Process(moto_process.pid) if moto_process else None
        sets: dict[str, Any] = {}
        rows = []
        for kind in ("large", "segments"):
            files = expand(make_set(kind, args.work.resolve() / "storage" / kind, args))
            manifest = build_manifest("bench", "bench", {"path": "", "size": 0, "sha256": ""}, files, [], [])
            print(f"{kind}: {len(files)} files, {sum(s.stat().st_size for s, _, _ in files) / MB:.1f} MiB", flush=True)
            samples: dict[str, list[Measurement]] = {"boto3": [], "onetake": []}
            for rep in range(args.repeat):
                for v, taken in samples.items():
                    waited = wait_for_quiet(args.quiet_wait)
                    m = run_variant(v, files, manifest, bucket, s3, moto)
                    m.extra["waited_for_quiet_s"] = waited
                    taken.append(m)
                    print(f"  run {rep + 1}/{args.repeat} {v}: {m.wall_s:.2f} s, {m.extra['mb_per_s']} MiB/s, "
                          f"endpoint cpu {m.extra['endpoint_cpu_s']} s", flush=True)
            runs = representative_runs(samples, args.stat, ("wall_s", "mb_per_s"))
            value = ratio(runs["onetake"]["mb_per_s"], runs["boto3"]["mb_per_s"])
            target = TARGETS[kind][1]
            sets[kind] = {"files": len(files), "bytes": runs["boto3"]["bytes"], "runs": runs,
                          "ratio_onetake_vs_boto3": value,
                          "target": {"min": target, "met": value is not None and (value >= target if kind == "large"
                                                                                  else value > target)}}
            for v, r in runs.items():
                rows.append([f"{kind} {v}", r["wall_s"], r["mb_per_s"], r["client_cpu_s"], r["endpoint_cpu_s"],
                             value if v == "onetake" else None])
            clean(args.work.resolve() / "storage" / kind)
        data.update({"endpoint": "moto server (127.0.0.1)" if moto_process else "given", "repeat": args.repeat,
                     "stat": args.stat, "onetake_transfer": FarmConfig().transfer(), "sets": sets,
                     "ratios": {f"{k}_onetake_vs_boto3": s["ratio_onetake_vs_boto3"] for k, s in sets.items()}})
        data["disturbed"] = [line for k, s in sets.items() for line in disturbed(
            {f"{k} {v}": r for v, r in s["runs"].items()})]
        print_table("storage: upload throughput to the endpoint (MiB/s; ratio = onetake / boto3)",
                    ["variant", "wall_s", "MiB/s", "client_cpu_s", "endpoint_cpu_s", "ratio"], rows)
        for line in data["disturbed"]:
            print(f"warning: {line}")
        write_json(data, args.output)
    finally:
        if moto_process is not None:
            moto_process.kill()
            moto_process.wait()
    return 0
