"""The registry from task kind to the function a worker runs, and those functions.

Every function takes the task's params (the typed dict of its kind, ``pipeline.plan.params``), the results of its
dependencies found by their kind (``Deps``) and a progress callback, and returns plain data (which Dask moves back
to the client).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import av

from ..pipeline.config import TIME_FLOOR_S
from ..pipeline.errors import QcError, SourceError, StorageError, TaskCancelled, VerificationError
from ..pipeline.plan.params import (
    AnalyzeParams,
    AnalyzePartParams,
    CaptionsParams,
    DeliverParams,
    Deps,
    EncodeParams,
    FetchParams,
    Limits,
    MeasureParams,
    PackageParams,
    ReportParams,
    TaskKind,
    VerifyParams,
)
from ..pipeline.profiles import QcSpec
from ..pipeline.qc import evaluate as evaluate_qc
from . import loudness
from .captions import make_captions
from .ffmpeg import run_ffmpeg, task_stop_event
from .files import exclusive, publish_dir, write_atomically
from .join import encode_chunk, join_chunks, write_follow
from .package import package
from .photo import make_photos
from .report import report_page
from .sources import probe_anywhere
from .storage import backend_for, build_manifest, expand, write_qc_record
from .verify import Check, verify_output

Report = Callable[[float], None]


def measure(params: MeasureParams, deps: Deps, report: Report) -> dict[str, Any]:
    """The programme's loudness, and its loudness targets' gains and limiter ceilings, settled before encoding;
    with the targets' places in the encodes' placeholders (not cached: another job numbers them its own way)."""
    result = loudness.measure(params)
    report(1.0)
    return {**result, "indices": params["indices"], **({"kept": params["keep"]["prefix"]} if "keep" in params else {})}


def fill_measurements(argv: list[str], measured: Sequence[dict[str, Any]]) -> list[str]:
    """A planned encode argv with the gains and limiter ceilings its measure tasks settled in place (none for a
    silent programme)."""
    if any(result["silent"] for result in measured):
        return loudness.fill(argv, None)
    return loudness.fill(argv, {index: setting for result in measured
                                for index, setting in zip(result["indices"], result["targets"])})


@contextlib.contextmanager
def guarded(source: str, limits: Limits, report: Report, what: str) -> Iterator[Report]:
    """A progress callback for a decode that runs in this process, checking the task's limits and cancellation each
    time it is called (at least every few packets): past ``timeout_s``, after ``stall_timeout_s`` without
    progress, or once its Dask task is cancelled, the decode stops within a few packets. Not bounded: the probe
    before the decode, and a decode stuck inside one libav call (a hung read), which stops only when that call
    returns; a stall counts only between reports. Only running the decode in a child process would bound those."""
    stall_timeout, timeout = limits["stall_timeout_s"], limits.get("timeout_s")
    started = last_progress = time.monotonic()
    done = -1.0

    with task_stop_event() as stop:
        def checked(fraction: float) -> None:
            nonlocal last_progress, done
            now = time.monotonic()
            if stop.is_set():
                raise TaskCancelled(f"{source}: the {what} was stopped because its task was cancelled")
            if fraction > done:
                done, last_progress = fraction, now
            elif now - last_progress > stall_timeout:
                raise SourceError(source, f"its {what} made no progress for {stall_timeout:g} s and was stopped",
                                  "raise stall_timeout_s in [farm] if the source is on slow storage")
            if timeout is not None and now - started > timeout:
                raise SourceError(source, f"its {what} ran past its limit of {timeout:g} s and was stopped",
                                  f"raise timeout_factor in [farm] (the limit is {TIME_FLOOR_S:g} s + timeout_factor x "
                                  f"the source duration)")
            report(fraction)

        yield checked


def analyze_task(params: AnalyzeParams, deps: Deps, report: Report) -> dict[str, Any]:
    """The source's analysis, made once: a rerun (or a second run of the same file) reads the cached result. A
    long programme's is joined from its parts (``analyze_part``), which it then removes; any other's is one decode
    (and so is a long one's whose parts found the analysis made, when it is gone again by now)."""
    cache = Path(params["cache"])
    parts = deps.all(TaskKind.ANALYZE_PART)
    with exclusive([str(cache)]):
        if cache.is_file():
            result, reused = json.loads(cache.read_text(encoding="utf-8")), True
        else:
            from .analysis import analyze, joined_analysis

            source, reused = params["source"], False
            if parts and not any(p.get("reused") for p in parts):
                pictures = sorted((p for p in parts if p["part"] == "pictures"), key=lambda p: p["index"])
                sound = next((p["sound"] for p in parts if p["part"] == "sound"), None)
                errors = [p["decode_error"] for p in pictures if p["decode_error"]]
                if sound is not None and sound.get("decode_error"):
                    errors.append(sound["decode_error"])
                result = joined_analysis(source, [p["file"] for p in pictures], sound, params["origin"],
                                         errors[0] if errors else None)
            else:
                with guarded(source, params["limits"], report, "analysis") as checked:
                    result = analyze(source, report=checked)
            write_atomically(cache, json.dumps(result, ensure_ascii=False))
        for folder in {Path(p["file"]).parent for p in parts}:  # what the parts made is in the analysis now
            shutil.rmtree(folder, ignore_errors=True)
    report(1.0)
    return {"analysis": result, "path": str(cache), "reused": reused}


def analyze_part(params: AnalyzePartParams, deps: Deps, report: Report) -> dict[str, Any]:
    """A long programme's sound, or one stretch of its pictures, through the analysis kernels (on any worker, beside
    the others): what it finds goes to a file the analysis joins. A part already made is kept; none is made once the
    whole analysis is. The parts' folder is made only when a part is written: another job's analysis of the same
    source may have joined its parts and removed it meanwhile."""
    result: dict[str, Any] = {"part": params["part"], "index": params["index"], "file": params["file"],
                              "decode_error": None}
    target = Path(params["file"])
    trouble = target.with_suffix(".error")  # what went wrong in a stretch's decode, kept for a rerun that reuses it
    try:
        if Path(params["analysis"]).is_file():
            result["reused"] = True
        elif params["part"] == "sound":
            from .analysis import analyze_sound

            if target.is_file():
                result["sound"] = json.loads(target.read_text(encoding="utf-8"))
            else:
                with guarded(params["source"], params["limits"], report, "analysis of the sound") as checked:
                    result["sound"] = analyze_sound(params["source"], params["origin"], report=checked)
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(target, json.dumps(result["sound"]))
        else:
            from .analysis import Stretch, analyze_pictures

            if not target.is_file():
                stretch = Stretch(params["start"], params["end"], params["origin"])
                with guarded(params["source"], params["limits"], report,
                             f"analysis of stretch {params['index'] + 1}") as checked:
                    features, decode_error = analyze_pictures(params["source"], stretch, report=checked)
                target.parent.mkdir(parents=True, exist_ok=True)
                if decode_error:  # before the features, whose file says that the part is made
                    write_atomically(trouble, decode_error)
                write_atomically(target, features.save)
            result["decode_error"] = trouble.read_text(encoding="utf-8") if trouble.is_file() else None
    except FileNotFoundError:
        if not Path(params["analysis"]).is_file():
            raise
        result = {**result, "reused": True, "decode_error": None}  # joined without this part, by another job
    report(1.0)
    return result


def analysis_of(deps: Deps) -> dict[str, Any]:
    """The analysis a task waited for (empty when it waited for none)."""
    done = deps.one(TaskKind.ANALYZE)
    return done["analysis"] if done else {}


def encode(params: EncodeParams, deps: Deps, report: Report) -> dict[str, Any]:
    """One ffmpeg for every rendition of the source; outputs appear only when all of them are done."""
    outputs = params["outputs"]
    with exclusive([o["final"] for o in outputs]):
        return _encode(params, outputs, deps, report)


def _encode(params: EncodeParams, outputs: list[dict[str, Any]], deps: Deps, report: Report) -> dict[str, Any]:
    if all(os.path.isdir(o["final"]) for o in outputs):
        report(1.0)
        return {"reused": True, "outputs": [o["final"] for o in outputs]}
    for o in outputs:
        shutil.rmtree(o["partial"], ignore_errors=True)
        os.makedirs(o["partial"])
    measured = deps.all(TaskKind.MEASURE)
    argv = fill_measurements(params["argv"], measured)
    kept = loudness.kept_sound(argv, outputs[0]["partial"], measured) if len(outputs) == 1 else None
    if kept:  # the measure task's trial made these very samples: take its file
        try:
            os.replace(*kept)
        except OSError:  # taken by another job's encode meanwhile, or on another file system: make it
            pass
        else:
            report(1.0)
            return {"reused": False, "kept_trial": True,
                    "outputs": [publish_dir(Path(outputs[0]["partial"]), Path(outputs[0]["final"]))]}
    if "follow" in params:
        write_follow(dict(params["follow"]), analysis_of(deps))
    duration = float(params["duration"])
    try:
        run_ffmpeg(argv, params["limits"], duration=duration, on_progress=report, what="encode",
                   source=params.get("source", ""))
    except BaseException:
        for o in outputs:
            shutil.rmtree(o["partial"], ignore_errors=True)
        raise
    return {"reused": False, "outputs": [publish_dir(Path(o["partial"]), Path(o["final"])) for o in outputs]}


def package_task(params: PackageParams, deps: Deps, report: Report) -> str:
    with exclusive([params["final"]]):
        return package(params, report)


def verify(params: VerifyParams, deps: Deps, report: Report) -> list[dict[str, Any]]:
    return verify_output(params["profile"], params["path"], params["expect"], params["limits"],
                         deps.one(TaskKind.MEASURE))


def report_task(params: ReportParams, deps: Deps, report: Report) -> dict[str, Any]:
    """The source's HTML report, once per analysis; every channel delivers the same file."""
    final = Path(params["final"])
    with exclusive([str(final)]):
        if not final.is_file():
            # read-only: deliveries hard-link to it
            write_atomically(final, report_page(analysis_of(deps), params["source"], params["title"]), mode=0o444)
    report(1.0)
    return {"report": str(final)}


def deliver(params: DeliverParams, deps: Deps, report: Report) -> dict[str, Any]:
    """Deliver a channel whose every check passed and whose QC passed (or is only warned about); otherwise
    raise with every failed check named. A channel that fails QC gets a record beside where its delivery goes
    (``OUT/<channel>/<asset_id>.qc.json``), delivered or not; a pass removes an earlier run's record."""
    checks = [c for result in deps.all(TaskKind.VERIFY) for c in result]
    failed = [Check(**c) for c in checks if not c["passed"]]
    if failed:
        detail = "; ".join(c.describe() for c in failed)
        raise VerificationError(f"channel {params['channel']} failed verification: {detail}")
    qc = params["qc"]
    findings = evaluate_qc(analysis_of(deps), QcSpec(**qc["rules"])) if qc["rules"] else []
    qc_failed = [f for f in findings if not f["passed"]]
    if qc["record"] and qc_failed:
        write_qc_record(qc["record"], {"asset_id": params["asset_id"], "channel": params["channel"],
                                       "source": params["source"], "mode": qc["mode"], "passed": False,
                                       "delivered": qc["mode"] == "warn", "checks": findings})
    elif qc["record"]:
        Path(qc["record"]).unlink(missing_ok=True)  # an earlier run's failure, fixed since
    if qc_failed and qc["mode"] == "enforce":
        detail = "; ".join(Check(**f).describe() for f in qc_failed)
        raise QcError(f"channel {params['channel']} failed QC: {detail} (record: {qc['record']}; "
                      f"--qc warn delivers anyway)")
    files = expand(params["files"])
    manifest = build_manifest(params["channel"], params["asset_id"], dict(params["source"]), files, checks,
                              params.get("notes", []), params.get("metadata"))
    manifest["qc"] = {"mode": qc["mode"], "failed": qc_failed, "checks": findings}
    if "images" in params:  # a photo's renditions, each as an HTML <picture> takes it
        manifest["images"] = params["images"]
    if "version" in params:  # an urgent job's: its files go in a folder of their own (storage.versioned)
        manifest["version"] = params["version"]
        manifest["first_version"] = params["version"] == 1
    path = backend_for(params["dest"], params.get("transfer")).deliver(params["dest"], files, manifest)
    return {"channel": params["channel"], "manifest": path, "files": len(files), "qc_failed": qc_failed}


def fetch(params: FetchParams, deps: Deps, report: Report) -> dict[str, Any]:
    """Copy an S3 source into the work dir's scratch and probe it here, on the worker: the client never reads
    it, and ffmpeg opens the copy as a plain ``file:`` under the same protocol whitelist as any local source."""
    url = params["url"]
    try:
        info = probe_anywhere(url, params["work_dir"], params["transfer"])
    except SourceError as exc:  # named by its URL, not by the scratch copy
        raise SourceError(url, exc.cause, exc.fix) from None
    report(1.0)
    return info.to_dict()


READS_OUTPUTS = (TaskKind.VERIFY, TaskKind.PACKAGE, TaskKind.DELIVER, TaskKind.JOIN)  # the others read the source

def captions_task(params: CaptionsParams, deps: Deps, report: Report) -> dict[str, Any]:
    """The source's captions on the programme's clock, as WebVTT and as the ASS files burned into pictures."""
    result = make_captions(params)
    report(1.0)
    return result


REGISTRY: dict[TaskKind, Callable[[Any, Deps, Report], Any]] = {
    TaskKind.FETCH: fetch, TaskKind.MEASURE: measure, TaskKind.ANALYZE: analyze_task,
    TaskKind.ANALYZE_PART: analyze_part, TaskKind.ENCODE: encode,
    TaskKind.PACKAGE: package_task, TaskKind.VERIFY: verify, TaskKind.REPORT: report_task, TaskKind.DELIVER: deliver,
    TaskKind.PHOTO: make_photos,
    TaskKind.CAPTIONS: captions_task, TaskKind.CHUNK: encode_chunk, TaskKind.JOIN: join_chunks,
}


def run_task(kind: str, params: Mapping[str, Any], deps: Mapping[str, Any] | None = None,
             report: Report | None = None) -> Any:
    """Run one task; ``deps`` are its dependencies' results by their task ids. File-system and PyAV errors leave
    here as onetake's own, saying what to check."""
    step = TaskKind(kind)
    try:
        return REGISTRY[step](params, Deps(deps or {}), report or (lambda fraction: None))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise StorageError(f"{where}{exc.strerror or exc} during the {kind} step; check that the output and work "
                           f"folders exist, are writable and have space") from exc
    except av.FFmpegError as exc:
        if step in READS_OUTPUTS:
            raise VerificationError(f"{exc.filename or 'an output'}: cannot be read back during the {kind} step "
                                    f"({exc.strerror})") from exc
        source = cast(str, params.get("source") or params.get("url") or exc.filename or "the source")
        raise SourceError(source, f"its {kind} step failed: {exc.strerror or exc}",
                          "check the file with `onetake probe`, or re-export it") from exc
