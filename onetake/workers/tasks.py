"""The registry from task kind to the function a worker runs, and those functions.

Every function takes the task's params, the results of its dependencies and a progress callback, and
returns plain data (which Dask moves back to the client).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import av

from ..pipeline.errors import EncodeError, SourceError, StorageError, VerificationError
from ..pipeline.plan import MEASURED
from ..pipeline.probe import probe
from .ffmpeg import run_ffmpeg
from .files import exclusive, publish_dir
from .package import package
from .storage import backend_for, build_manifest, expand
from .verify import SILENCE_LUFS, Check, verify_output

Report = Callable[[float], None]


def measure(params: dict[str, Any], deps: Sequence[Any], report: Report) -> dict[str, Any]:
    """Pass 1 of loudness normalisation: loudnorm's measurement of the programme audio."""
    log = run_ffmpeg(params["argv"], params["limits"], what="loudness measurement")
    block = log[log.rfind("{"):log.rfind("}") + 1]
    try:
        data = json.loads(block)
        values = {"measured_I": float(data["input_i"]), "measured_TP": float(data["input_tp"]),
                  "measured_LRA": float(data["input_lra"]), "measured_thresh": float(data["input_thresh"])}
    except (ValueError, KeyError) as exc:
        raise EncodeError("loudness measurement gave no result", params["argv"], 0, log) from exc
    silent = not math.isfinite(values["measured_I"]) or values["measured_I"] < SILENCE_LUFS
    return {**values, "silent": silent}


def fill_measurements(argv: list[str], measured: dict[str, Any] | None) -> list[str]:
    """Put pass-1 values into loudnorm; a silent programme gets no gain at all."""
    if "-filter_complex" not in argv:
        return list(argv)
    at = argv.index("-filter_complex") + 1
    graph = argv[at]
    if measured is None or measured.get("silent"):
        graph = re.sub(r"loudnorm=[^\[;,]*", "anull", graph)
    else:
        for key in MEASURED:
            graph = graph.replace("{" + key + "}", f"{measured[key]:.2f}")
    return [*argv[:at], graph, *argv[at + 1:]]


def encode(params: dict[str, Any], deps: Sequence[Any], report: Report) -> dict[str, Any]:
    """One ffmpeg for every rendition of the source; outputs appear only when all of them are done."""
    outputs = params["outputs"]
    with exclusive([o["final"] for o in outputs]):
        return _encode(params, outputs, deps, report)


def _encode(params: dict[str, Any], outputs: list[dict[str, Any]], deps: Sequence[Any],
            report: Report) -> dict[str, Any]:
    if all(os.path.isdir(o["final"]) for o in outputs):
        report(1.0)
        return {"reused": True, "outputs": [o["final"] for o in outputs]}
    for o in outputs:
        shutil.rmtree(o["partial"], ignore_errors=True)
        os.makedirs(o["partial"])
    argv = fill_measurements(params["argv"], deps[0] if deps else None)
    duration = float(params["duration"])
    try:
        run_ffmpeg(argv, params["limits"], duration=duration, on_progress=report, what="encode",
                   source=params.get("source", ""))
    except BaseException:
        for o in outputs:
            shutil.rmtree(o["partial"], ignore_errors=True)
        raise
    return {"reused": False, "outputs": [publish_dir(Path(o["partial"]), Path(o["final"])) for o in outputs]}


def package_task(params: dict[str, Any], deps: Sequence[Any], report: Report) -> str:
    with exclusive([params["final"]]):
        return package(params, report)


def verify(params: dict[str, Any], deps: Sequence[Any], report: Report) -> list[dict[str, Any]]:
    measured = next((d for d in deps if isinstance(d, dict) and "measured_I" in d), None)
    return verify_output(params["profile"], params["path"], params["expect"], params["limits"], measured)


def deliver(params: dict[str, Any], deps: Sequence[Any], report: Report) -> dict[str, Any]:
    """Deliver a channel whose every check passed; otherwise raise with every failed check named."""
    checks = [c for result in deps for c in result]
    failed = [Check(**c) for c in checks if not c["passed"]]
    if failed:
        detail = "; ".join(c.describe() for c in failed)
        raise VerificationError(f"channel {params['channel']} failed verification: {detail}")
    files = expand(params["files"])
    manifest = build_manifest(params["channel"], params["asset_id"], params["source"], files, checks,
                              params.get("notes", []), params.get("metadata"))
    path = backend_for(params["dest"], params.get("transfer")).deliver(params["dest"], files, manifest)
    return {"channel": params["channel"], "manifest": path, "files": len(files)}


def fetch(params: dict[str, Any], deps: Sequence[Any], report: Report) -> dict[str, Any]:
    """Copy an S3 source into the work dir's scratch and probe it here, on the worker: the client never reads
    it, and ffmpeg opens the copy as a plain ``file:`` under the same protocol whitelist as any local source."""
    from .s3 import Transfer
    from .s3 import fetch as fetch_object

    url = params["url"]
    local = fetch_object(url, params["work_dir"], Transfer.from_params(params.get("transfer")))
    try:
        info = probe(local)
    except SourceError as exc:
        raise SourceError(url, exc.cause, exc.fix) from None
    report(1.0)
    return dataclasses.replace(info, url=url).to_dict()


REGISTRY: dict[str, Callable[[dict[str, Any], Sequence[Any], Report], Any]] = {
    "fetch": fetch, "measure": measure, "encode": encode, "package": package_task, "verify": verify,
    "deliver": deliver,
}


def run_task(kind: str, params: dict[str, Any], deps: Sequence[Any], report: Report | None = None) -> Any:
    """Run one task; file-system and PyAV errors leave here as onetake's own, saying what to check."""
    try:
        return REGISTRY[kind](params, deps, report or (lambda fraction: None))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise StorageError(f"{where}{exc.strerror or exc} during the {kind} step; check that the output and work "
                           f"folders exist, are writable and have space") from exc
    except av.FFmpegError as exc:
        raise VerificationError(f"{exc.filename or 'an output'}: cannot be read back during the {kind} step "
                                f"({exc.strerror})") from exc
