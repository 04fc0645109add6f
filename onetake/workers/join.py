"""Chunks of a long programme: encoding one, joining them with the whole programme's sound, and the sync gate that
stands between a join and its delivery.

The gate reads what was joined, never what was meant: every chunk holds the pictures the plan gave it and starts
on a keyframe; the joined picture has the plan's picture count on evenly spaced, strictly increasing timestamps,
a keyframe at every chunk start and every GOP (HLS segments start on them), and sound as long as the picture to
within one audio frame; and the pictures on both sides of every join are those that one decode of the source
straight through the join makes with the same filters (kept losslessly; a different seek, so a chunk that started
on the wrong picture shows as a picture matching its neighbour's reference better than its own). A chunk that
fails is encoded again, once; a join that still fails is an error and nothing is delivered.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from ..pipeline.errors import EncodeError, VerificationError
from ..pipeline.plan.chunks import GATE_THUMB
from ..pipeline.plan.params import ChunkParams, Deps, JoinedRendition, JoinParams, TaskKind
from .ffmpeg import run_ffmpeg
from .files import exclusive, publish_dir, shared
from .follow import follow_commands

Report = Callable[[float], None]
REFERENCE_MADE = "made"  # written in a reference's folder once its decode has made every file
MATCH_SLACK = 1.0      # grey levels a joined picture may sit further from its own reference picture than from another


def write_follow(follow: dict[str, Any], analysis: dict[str, Any]) -> None:
    """The sendcmd file that moves a rendition's crop window along the analysis's path."""
    commands = follow_commands(analysis.get("crop_path"), analysis.get("fps"), follow["width"], follow["window"])
    Path(follow["commands"]).write_text(commands, encoding="utf-8")


def encode_chunk(params: ChunkParams, deps: Deps, report: Report) -> dict[str, Any]:
    """The chunk's pictures for each of its renditions, in a folder that appears only when all are made."""
    # a rerun of a programme whose renditions were joined before needs no chunk (their folders are gone)
    if not all(os.path.isdir(joined) for joined in params["joined"]):
        with exclusive([params["final"]]):
            if not os.path.isdir(params["final"]):
                done = deps.one(TaskKind.ANALYZE)
                publish_dir(_make_chunk(params, done["analysis"] if done else None, None, report),
                            Path(params["final"]))
    report(1.0)
    return {"index": params["index"], "final": params["final"], "params": params}


def _make_chunk(params: ChunkParams, analysis: dict[str, Any] | None, commands: str | None,
                report: Report) -> Path:
    """The chunk's files in its partial folder (removed if making them fails)."""
    partial = Path(params["partial"])
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        if "follow" in params:
            if commands is not None:
                Path(params["follow"]["commands"]).write_text(commands, encoding="utf-8")
            else:
                write_follow(dict(params["follow"]), analysis or {})
        run_ffmpeg(params["argv"], dict(params["limits"]), duration=params["duration"], on_progress=report,
                   what=f"chunk {params['index'] + 1} encode", source=params["source"])
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return partial


def join_chunks(params: JoinParams, deps: Deps, report: Report) -> dict[str, Any]:
    """A rendition's chunks laid end to end and muxed once with its sound, then the sync gate; a chunk the gate
    finds wrong is encoded again (once). The rendition (and the stills this join puts together) appears only
    when it passed; the chunks go once every rendition of their series is joined."""
    outputs = params["outputs"]
    with exclusive([o["final"] for o in outputs]):
        if all(os.path.isdir(o["final"]) for o in outputs):
            report(1.0)
            _drop_series(params)
            return {"reused": True, "outputs": [o["final"] for o in outputs], "gate": []}
        chunks = sorted(deps.all(TaskKind.CHUNK), key=lambda c: c["index"])
        scratch = Path(params["scratch"])
        timing = {"join_s": 0.0, "gate_s": 0.0}  # what joining and checking cost (the scale benchmark reads it)
        try:
            redone = []
            for attempt in range(2):
                with shared([series_lock(params)]):  # no chunk is swapped while this join reads them
                    started = time.monotonic()
                    made_as = [chunk_made_as(c["final"]) for c in chunks]  # which making of each chunk was read
                    _join_all(params, scratch)
                    joined = time.monotonic()
                    failures = gate(params)
                    timing["join_s"] += joined - started
                    timing["gate_s"] += time.monotonic() - joined
                    if not failures:
                        _join_stills(params)
                        break
                bad = sorted({index for index, _ in failures})
                if attempt:
                    raise VerificationError(f"{params['source']}: the joined chunks still fail the sync gate after "
                                            f"encoding them again: {failures[0][1]}")
                for index in bad:
                    encode_again(chunks[index]["params"], made_as[index], series_lock(params))
                redone = [{"chunk": index, "problem": problem} for index, problem in failures]
            report(1.0)
            finals = [publish_dir(Path(o["partial"]), Path(o["final"])) for o in outputs]
        except BaseException:
            for o in outputs:
                shutil.rmtree(o["partial"], ignore_errors=True)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    _drop_series(params)
    return {"reused": False, "outputs": finals, "gate": redone, **{k: round(v, 3) for k, v in timing.items()}}


def _drop_series(params: JoinParams) -> None:
    """The series' chunks and references, once every rendition and still they make is joined: they have done
    their work (the join that finishes last finds them all)."""
    if all(os.path.isdir(final) for final in params["series_outputs"]):
        shutil.rmtree(params["series"], ignore_errors=True)


def series_lock(params: JoinParams) -> str:
    """What the series' joins hold shared while they read its chunks, and a remade chunk's swap exclusively."""
    return f"{params['series']}/chunks"


def chunk_made_as(folder: str) -> tuple[int, int] | None:
    """Which making of a chunk folder is there (its inode and time), or None when there is none."""
    try:
        found = os.stat(folder)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns


def encode_again(params: ChunkParams, made_as: tuple[int, int] | None, lock: str) -> None:
    """A chunk the gate refused, made again the way it was made (its crop path as it was) and swapped in whole
    while none of its series' joins reads (``lock``); not again when another join has remade it since ``made_as``
    was read."""
    final = Path(params["final"])
    with exclusive([params["final"]]):
        if made_as is None or chunk_made_as(params["final"]) != made_as:
            return
        commands = None
        if "follow" in params:
            kept = final / Path(params["follow"]["commands"]).name
            commands = kept.read_text(encoding="utf-8") if kept.is_file() else None
        partial = _make_chunk(params, None, commands, lambda fraction: None)
        with exclusive([lock]):
            old = final.with_name(f"{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            publish_dir(partial, final)
            shutil.rmtree(old, ignore_errors=True)


def _join_all(params: JoinParams, scratch: Path) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    for o in params["outputs"]:
        shutil.rmtree(o["partial"], ignore_errors=True)
        os.makedirs(o["partial"])
    for r in params["renditions"]:
        missing = [c for c in r["chunks"] if not os.path.isfile(c)]
        if missing:
            raise EncodeError(f"chunk {missing[0]} is missing from the work dir; run the job again to make it")
        if r["method"] == "concat":
            _concat_list(Path(r["joined"]), r["chunks"])
        else:  # elementary streams of closed GOPs, byte for byte: a URL a line for the concatf protocol
            Path(r["joined"]).write_text("".join(f"file:{c}\n" for c in r["chunks"]), encoding="utf-8")
        run_ffmpeg(r["argv"], dict(params["limits"]), what="join")


def _join_stills(params: JoinParams) -> None:
    """The stills the chunks made: an image copied into place, a sprite's thumbnails tiled into its sheets."""
    for still in params.get("stills", []):
        missing = [part for part in still["parts"] if not os.path.isfile(part)]
        if missing:
            raise EncodeError(f"chunk file {missing[0]} is missing from the work dir; run the job again to make it")
        if not still["argv"]:
            shutil.copyfile(still["parts"][0], still["file"])
            continue
        _concat_list(Path(still["list"]), still["parts"])
        run_ffmpeg(still["argv"], dict(params["limits"]), what="sprite sheets")


def _concat_list(path: Path, files: list[str]) -> None:
    """A list for ffmpeg's concat demuxer, quoted as it reads them."""
    quoted = ("'" + f.replace("'", "'\\''") + "'" for f in files)
    path.write_text("".join(f"file {q}\n" for q in quoted), encoding="utf-8")


def gate(params: JoinParams) -> list[tuple[int, str]]:
    """What is wrong with the joined renditions, as (the chunk to encode again, why); empty when nothing is."""
    failures: list[tuple[int, str]] = []
    partial_of = {o["key"]: o["partial"] for o in params["outputs"]}
    for r in params["renditions"]:
        rate = Fraction(r["rate"])
        starts = [round(Fraction(s).limit_denominator(1000000) * rate) for s in params["starts"]]
        for index, chunk in enumerate(r["chunks"]):
            expected = (starts[index + 1] if index + 1 < len(starts) else r["frames"]) - starts[index]
            count, first_key = _chunk_pictures(chunk)
            if count != expected:
                failures.append((index, f"{chunk}: {count} pictures, the plan gives it {expected}"))
            elif not first_key:
                failures.append((index, f"{chunk}: does not start on a keyframe"))
    if failures:
        return failures
    for reference in params["references"]:  # one decode straight through each join, for the series' renditions
        folder = Path(next(iter(reference["files"].values()))).parent
        with exclusive([str(folder)]):  # made whole by the first of the series' joins to need it, read by the rest
            if not (folder / REFERENCE_MADE).is_file():
                shutil.rmtree(folder, ignore_errors=True)  # what a decode that failed left
                folder.mkdir(parents=True)
                run_ffmpeg(reference["argv"], dict(params["limits"]), what="sync gate reference")
                (folder / REFERENCE_MADE).touch()
    for r in params["renditions"]:
        rate = Fraction(r["rate"])
        starts = [round(Fraction(s).limit_denominator(1000000) * rate) for s in params["starts"]]
        path = next(Path(partial_of[r["key"]]).iterdir())
        failures += [(_chunk_of(starts, frame), f"{path}: {why}") for frame, why in _timing(path, r, starts)]
        for index, reference in enumerate(params["references"], 1):
            made = np.fromfile(reference["files"][r["key"]], dtype=np.uint8).astype(np.float32)
            made = made.reshape(-1, GATE_THUMB, GATE_THUMB)
            sides = ((starts[index] - 1, index - 1), (starts[index], index))
            joined = _joined_pictures(path, [frame for frame, _ in sides], rate)
            for frame, owner in sides:
                why = _mismatch(frame, rate, joined.get(frame), list(made), reference["first"])
                if why:
                    failures.append((owner, f"{path}: {why}"))
    return failures


def _mismatch(frame: int, rate: Fraction, joined: np.ndarray | None, reference: list[np.ndarray], first: int) -> str:
    """Why joined picture ``frame`` is not the one a decode straight through the join makes; "" when it is (or
    when the pictures around it are too alike to tell)."""
    if joined is None:
        return f"picture {frame} cannot be decoded"
    shown = _small(joined)
    distance = {n + first - frame: float(np.abs(shown - picture).mean()) for n, picture in enumerate(reference)}
    if 0 not in distance:
        return f"picture {frame} has no reference picture to compare with"
    best = min(distance, key=lambda k: distance[k])
    if distance[0] > distance[best] + MATCH_SLACK:
        return (f"picture {frame} (at {frame / float(rate):.3f} s, beside a join) is the source's picture {best:+d} "
                f"from its own (difference {distance[0]:.1f} against {distance[best]:.1f} grey levels)")
    return ""


def _chunk_of(starts: list[int], frame: int) -> int:
    return max(i for i, s in enumerate(starts) if s <= frame) if frame >= 0 else 0


def _chunk_pictures(path: str) -> tuple[int, bool]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        count, first_key = 0, False
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if count == 0:
                first_key = packet.is_keyframe
            count += 1
    return count, first_key


def _timing(path: Path, r: JoinedRendition, starts: list[int]) -> list[tuple[int, str]]:
    """Picture count, even and increasing timestamps, keyframes where they must be, and the sound's length."""
    rate = Fraction(r["rate"])
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        sound = container.streams.audio[0] if container.streams.audio else None
        times, keys = [], set()
        audio_end, audio_start, audio_frame = None, None, 0.0
        for packet in container.demux(*([video, sound] if sound else [video])):
            if packet.size == 0 or packet.pts is None:
                continue
            if packet.stream is video:
                times.append(packet.pts)
                if packet.is_keyframe:
                    keys.add(packet.pts)
            else:
                tb = packet.time_base
                start, length = float(packet.pts * tb), float((packet.duration or 0) * tb)
                audio_start = start if audio_start is None else min(audio_start, start)
                audio_end = max(audio_end or 0.0, start + length)
                audio_frame = max(audio_frame, length)
        tb = video.time_base
    problems: list[tuple[int, str]] = []
    if len(times) != r["frames"]:
        problems.append((len(times), f"holds {len(times)} pictures, the plan gives it {r['frames']}"))
        return problems
    times.sort()
    step = 1 / (rate * tb)
    for n, (a, b) in enumerate(zip(times, times[1:])):
        if b <= a or abs((b - a) - step) > 1:
            problems.append((n + 1, f"picture {n + 1} is {float((b - a) * tb) * 1000:.1f} ms after the one before "
                                    f"it, not {1000 / float(rate):.1f} ms"))
            break
    index_of = {t: round((t - times[0]) / step) for t in times}
    key_frames = {index_of[t] for t in keys}
    wanted = set(starts) | (set(range(0, r["frames"], r["gop"])) if r["gop"] else set())
    missing = sorted(wanted - key_frames)
    if missing:
        problems.append((missing[0], f"picture {missing[0]} should be a keyframe (a chunk or segment starts there) "
                                     f"and is not"))
    if sound is not None and audio_end is not None:
        picture_s = r["frames"] / float(rate)
        sound_s = audio_end - max(0.0, audio_start or 0.0)
        if abs(sound_s - picture_s) > audio_frame + 1e-6:
            problems.append((r["frames"] - 1, f"its sound lasts {sound_s:.4f} s and its picture {picture_s:.4f} s"))
    return problems


def _joined_pictures(path: Path, frames: list[int], rate: Fraction) -> dict[int, np.ndarray]:
    """The grey pictures ``frames`` (neighbours, by index) of a joined file, from one seek."""
    found: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = stream.start_time or 0  # the file starts at 0 (or at its B-frame delay, the same for every picture)
        container.seek(max(0, int((min(frames) / rate - 1) / stream.time_base)), stream=stream, backward=True)
        for decoded in container.decode(stream):
            if decoded.pts is None:
                continue
            n = round((decoded.pts - first) * stream.time_base * rate)
            if n in frames:
                found[n] = decoded.to_ndarray(format="gray")
            if n >= max(frames):
                break
    return found


def _small(grey: np.ndarray) -> np.ndarray:
    """A thumbnail as the reference decode makes its own (ffmpeg's area scaling)."""
    return cv2.resize(np.ascontiguousarray(grey), (GATE_THUMB, GATE_THUMB),
                      interpolation=cv2.INTER_AREA).astype(np.float32)
