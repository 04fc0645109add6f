"""A photo's job: the renditions each channel makes of a still (JPEG, PNG, HEIF, WebP), the one task that decodes it
once and makes them all, their checks and each channel's delivery, as data.

A channel's profiles of kind "photo" are what it makes of a photo; a channel without any (tv, radio) cannot take
one. Every size is known here from the probed picture, so the manifest's srcset lists are planned, and verify
checks that the files match them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ... import __version__
from ..destinations import channel_destinations
from ..errors import PlanError
from ..hashes import short_hash
from ..media import PHOTO_CAPTION_FIELDS, PHOTO_FORMATS
from ..models import ImageInfo, JobPlan, SourceInfo, Task
from ..profiles import Catalog, Profile
from .keys import asset_id_for
from .params import (
    DeliveredFile,
    DeliverParams,
    ImageFile,
    ImageSet,
    ImageSource,
    PhotoFile,
    PhotoOutput,
    PhotoParams,
    QcParams,
    SourceRecord,
    TaskKind,
    VerifyParams,
    task_id,
)

if TYPE_CHECKING:
    from .job import PlanOptions

PHOTO_VERSION = 1  # what the photo worker makes of a profile; part of every photo key
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "avif": "avif", "png": "png"}
SOURCE_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "heif": "heic"}
MIME_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif", "png": "image/png",
              "heif": "image/heic"}
METADATA_FIELDS = {name: field for name, (field, _, _) in PHOTO_CAPTION_FIELDS.items()}  # EXIF name -> ImageInfo


def photo_profiles(catalog: Catalog, channel: str) -> list[Profile]:
    """What ``channel`` makes of a photo (none: it cannot take one)."""
    return [p for p in catalog.channel(channel) if p.kind == "photo"]


def photo_channels(catalog: Catalog) -> tuple[str, ...]:
    """Every channel that can take a photo."""
    return tuple(c for c in catalog.channels if photo_profiles(catalog, c))


def photo_key(source: SourceInfo, profile: Profile) -> str:
    # the name too: it names the files (a profile renamed, or two alike but for their names, are other folders)
    return short_hash(source.sha256, profile.name, profile.content_key(), f"photo {PHOTO_VERSION}",
                      f"onetake {__version__}")


def photo_files(image: ImageInfo, profile: Profile) -> list[PhotoFile]:
    """The files of ``profile``'s rendition of ``image``: one per format and size, sizes as the worker makes them."""
    spec = profile.photo
    assert spec is not None
    width, height = image.display_size
    if spec.fit == "original":
        return [PhotoFile(name=f"original.{SOURCE_EXTENSIONS[image.format]}", format="original", width=width,
                          height=height)]
    if spec.fit == "cover":
        return [PhotoFile(name=f"{profile.name}.{EXTENSIONS[f]}", format=f, width=spec.width, height=spec.height)
                for f in spec.formats]
    widths = sorted({min(w, width) for w in spec.widths})  # never enlarged: a wider one is the photo's own width
    return [PhotoFile(name=f"{profile.name}-{w}.{EXTENSIONS[f]}", format=f, width=w,
                      height=max(1, round(height * w / width))) for f in spec.formats for w in widths]


def image_set(image: ImageInfo, profile: Profile, folder: str) -> ImageSet:
    """``profile``'s rendition as a channel's manifest lists it, its files under ``folder`` of the delivery."""
    assert profile.photo is not None
    files = [(f["format"], ImageFile(path=f"{folder}/{f['name']}",
                                     type=MIME_TYPES[image.format if f["format"] == "original" else f["format"]],
                                     width=f["width"], height=f["height"])) for f in photo_files(image, profile)]
    sources, fallback = [], None
    if profile.photo.fit != "original":
        for fmt in profile.photo.formats:
            same = [f for kind, f in files if kind == fmt]
            sources.append(ImageSource(type=MIME_TYPES[fmt],
                                       srcset=", ".join(f"{f['path']} {f['width']}w" for f in same)))
        fallback = [f for kind, f in files if kind == profile.photo.formats[-1]][-1]
    return ImageSet(profile=profile.name, fit=profile.photo.fit, files=[f for _, f in files], sources=sources,
                    fallback=fallback)


def kept_metadata(image: ImageInfo, profile: Profile) -> dict[str, str]:
    """The caption and rights fields ``profile``'s renditions carry: those it keeps that the photo has."""
    assert profile.photo is not None
    return {name: getattr(image, METADATA_FIELDS[name]) for name in profile.photo.keep_metadata
            if getattr(image, METADATA_FIELDS[name])}


def photo_expectations(source: SourceInfo, profile: Profile) -> dict[str, Any]:
    """What verification expects of ``profile``'s rendition of the photo ``source``."""
    assert source.image is not None
    expect: dict[str, Any] = {"files": photo_files(source.image, profile),
                              "kept": kept_metadata(source.image, profile)}
    if profile.photo is not None and profile.photo.fit == "original":
        expect["sha256"] = source.sha256
    return expect


def _refuse(source: SourceInfo, image: ImageInfo, refused: Sequence[str], feeding: Sequence[str]) -> PlanError:
    what = f"{source.url or source.path}: is a still image (a {PHOTO_FORMATS[image.format]} photo)"
    if not feeding:
        return PlanError(f"{what}, and no channel makes photos; give a channel a profile of kind \"photo\" in "
                         f"channels.toml")
    return PlanError(f"{what}, which feeds {', '.join(feeding)}, not {', '.join(refused)}; run it with --channels "
                     f"{','.join(feeding)}")


def _notes(source: SourceInfo, profiles: Sequence[Profile]) -> list[str]:
    """What the plan decided about the photo that a reader of its manifests should know."""
    image = source.image
    assert image is not None
    notes = []
    if image.orientation != 1:
        notes.append(f"EXIF orientation {image.orientation} is applied once: every rendition is upright")
    if image.format == "heif" and image.exif_orientation not in (0, 1):
        notes.append(f"the HEIF decoder turns the picture by the file's own irot/imir; its EXIF orientation "
                     f"({image.exif_orientation}) is not applied a second time")
    if image.identifying:
        notes.append(f"identifying metadata ({', '.join(image.identifying)}) is left out of every rendition but "
                     f"the untouched original")
    if image.frames > 1:
        notes.append(f"the file holds {image.frames} pictures: the renditions are made from the first")
    if image.icc and "srgb" not in image.icc.lower():
        notes.append(f"colours are converted from the photo's profile ({image.icc}) to sRGB")
    width, height = image.display_size
    for p in profiles:
        spec = p.photo
        assert spec is not None
        if spec.fit == "within" and max(spec.widths) > width:
            notes.append(f"the photo is {width} px wide: {p.name} is made no wider, not enlarged")
        if spec.fit == "cover" and min(height, width * spec.height / spec.width) < spec.height:  # the crop's height
            notes.append(f"the photo ({width}x{height}) is smaller than {p.name}'s {spec.width}x{spec.height}: "
                         f"it is enlarged to fill it")
    return notes


def plan_photo(source: SourceInfo, channels: Sequence[str] | None, catalog: Catalog,
               options: PlanOptions) -> JobPlan:
    """Everything that running ``channels`` for the photo ``source`` takes, as data."""
    image = source.image
    assert image is not None
    feeding = photo_channels(catalog)
    channels = tuple(channels) if channels else feeding
    refused = [c for c in channels if not photo_profiles(catalog, c)]
    if refused or not channels:
        raise _refuse(source, image, refused, feeding)
    asset_id = asset_id_for(source)
    work = options.work_dir.rstrip("/")
    limits = options.farm.limits(0.0)
    metadata = {name: getattr(image, field) for name, field in METADATA_FIELDS.items() if getattr(image, field)}
    outputs: dict[str, PhotoOutput] = {}
    verify_of: dict[str, str] = {}
    tasks: list[Task] = []
    photo_id = task_id(asset_id, TaskKind.PHOTO)
    by_channel: dict[str, list[tuple[str, Profile]]] = {}
    for channel in channels:
        for p in photo_profiles(catalog, channel):
            key = photo_key(source, p)
            by_channel.setdefault(channel, []).append((key, p))
            if key not in outputs:
                outputs[key] = PhotoOutput(key=key, profile=p.to_dict(), partial=f"{work}/renditions/{key}.partial",
                                           final=f"{work}/renditions/{key}", files=photo_files(image, p))
                verify_of[key] = task_id(asset_id, TaskKind.VERIFY, p.name)
    tasks.append(Task(photo_id, TaskKind.PHOTO, PhotoParams(
        source=source.path, format=image.format, orientation=image.orientation, metadata=metadata,
        outputs=list(outputs.values()), limits=limits), heavy=True))
    profiles = {key: p for items in by_channel.values() for key, p in items}
    for key, p in profiles.items():
        tasks.append(Task(verify_of[key], TaskKind.VERIFY, VerifyParams(
            profile=p.to_dict(), path=outputs[key]["final"], expect=photo_expectations(source, p), limits=limits),
            deps=(photo_id,)))
    notes = _notes(source, list(profiles.values()))
    farm = options.farm
    where = channel_destinations(options.out_dir, farm.channel_destinations(), channels)
    for channel, items in by_channel.items():
        dest = where[channel].child(asset_id)
        deliver = DeliverParams(
            channel=channel, asset_id=asset_id, dest=str(dest),
            files=[DeliveredFile(src=outputs[key]["final"], dest=p.name, profile=p.name) for key, p in items],
            notes=notes, qc=QcParams(mode=farm.qc, rules=None, record=None),  # the QC rules judge pictures in time
            source=SourceRecord(path=source.url or source.path, size=source.size, sha256=source.sha256),
            images=[image_set(image, p, p.name) for _, p in items])
        if dest.is_s3:
            deliver["transfer"] = farm.transfer()
        tasks.append(Task(task_id(asset_id, TaskKind.DELIVER, channel), TaskKind.DELIVER, deliver,
                          deps=tuple(dict.fromkeys(verify_of[key] for key, _ in items))))
    return JobPlan(asset_id=asset_id, source=source, channels=channels, out_dir=options.out_dir,
                   work_dir=options.work_dir, tasks=tuple(tasks), notes=tuple(notes))
