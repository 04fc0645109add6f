"""Packaging: the HLS ladder a source can fill and the command that segments its rungs, and the thumbnail sprite's
sheets and WebVTT cues."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from ..media import PROTOCOL_WHITELIST
from ..models import SourceInfo
from ..profiles import Catalog, Profile
from .geometry import output_rate
from .graph import GLOBAL_ARGS
from .params import HlsPackageParams, HlsVariant, SpriteCue, SpritePackageParams
from .programme import programme_duration


def ladder_rungs(source: SourceInfo, profile: Profile, catalog: Catalog) -> list[Profile]:
    """The rungs of a ladder that fit the source: none that would upscale it, always at least one."""
    assert profile.hls is not None
    v = source.video[0]
    height = v.display_size[1]

    def fits(rung: Profile) -> bool:
        assert rung.video is not None
        box = Fraction(rung.video.width, rung.video.height)
        # a picture wider than the box is limited by its width, a narrower one by its height
        limit = height * v.display_aspect / box if v.display_aspect > box else height
        return rung.video.height <= limit

    rungs = sorted((catalog.profile(r) for r in profile.hls.rungs), key=lambda p: -p.video.height)  # type: ignore
    # the ladder's logo (or none) on every rung alike, so that it does not jump when the player switches levels
    rungs = [r if r.logo == profile.logo else dataclasses.replace(r, logo=profile.logo) for r in rungs]
    return [r for r in rungs if fits(r)] or rungs[-1:]


def hls_params(source: SourceInfo, profile: Profile, rungs: list[Profile], keys: list[str],
                path_of: dict[str, str], pkg_dir: str) -> HlsPackageParams:
    assert profile.hls is not None
    argv = ["ffmpeg", *GLOBAL_ARGS]
    for k in keys:
        argv += ["-protocol_whitelist", PROTOCOL_WHITELIST, "-f", "mp4", "-i", "file:" + path_of[k]]
    variants = []
    for i, rung in enumerate(rungs):
        argv += ["-map", f"{i}:v:0"]
        if source.audio:
            argv += ["-map", f"{i}:a:0"]
        variants.append(f"v:{i},a:{i},name:{rung.name}" if source.audio else f"v:{i},name:{rung.name}")
    argv += ["-c", "copy", "-f", "hls", "-hls_time", f"{profile.hls.segment_seconds:g}",
             "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
             "-hls_fmp4_init_filename", "init.mp4",
             # plain absolute paths: the hls muxer makes the %v folders from the name as given, 'file:' and all
             "-hls_segment_filename", f"{pkg_dir}.partial/%v/segment_%05d.m4s",
             "-var_stream_map", " ".join(variants), f"{pkg_dir}.partial/%v/index.m3u8"]
    rate_of = {}
    for r in rungs:
        assert r.video is not None
        rate = output_rate(source.video[0].rate, r.video)
        rate_of[r.name] = round(float(rate), 3)
    return HlsPackageParams(kind="hls", argv=argv, partial=f"{pkg_dir}.partial", final=pkg_dir, variants=[
        HlsVariant(name=r.name, width=r.video.width, height=r.video.height,  # type: ignore[union-attr]
                   frame_rate=rate_of[r.name], mp4=path_of[k]) for r, k in zip(rungs, keys)])


def sprite_params(source: SourceInfo, profile: Profile, sheets_dir: str, pkg_dir: str) -> SpritePackageParams:
    assert profile.sprite is not None
    s = profile.sprite
    duration = programme_duration(source)
    count = max(1, math.ceil(duration / s.interval_seconds - 1e-9))
    per_sheet = s.columns * s.rows
    cues = []
    for i in range(count):
        sheet, pos = divmod(i, per_sheet)
        x, y = (pos % s.columns) * s.thumb_width, (pos // s.columns) * s.thumb_height
        cues.append(SpriteCue(start=round(i * s.interval_seconds, 3),
                              end=round(min((i + 1) * s.interval_seconds, duration), 3),
                              image=f"sprite-{sheet + 1:03d}.jpg", xywh=[x, y, s.thumb_width, s.thumb_height]))
    return SpritePackageParams(kind="sprite", sheets=sheets_dir, partial=f"{pkg_dir}.partial", final=pkg_dir,
                               sheet_count=math.ceil(count / per_sheet), cues=cues)
