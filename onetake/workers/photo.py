"""The photo task and its check: a still decoded once (Pillow; pillow-heif for HEIF), turned upright exactly once,
converted to sRGB, and written as every rendition its plan lists, each carrying only the caption and rights fields
its profile keeps.

Orientation: a JPEG, PNG or WebP is turned by its EXIF tag (the plan says which); a HEIF is turned by its decoder,
which applies the container's irot/imir properties, and its EXIF tag (pillow-heif resets it to 1 as it does so) is
not applied again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import cv2
import numpy as np
from PIL import Image, ImageCms, PngImagePlugin, features

from ..pipeline.errors import ConfigError, SourceError, TaskCancelled
from ..pipeline.plan.params import Deps, PhotoParams
from ..pipeline.probe import (
    CAPTION_FIELDS,
    XMP_DC,
    exif_text,
    identifying_metadata,
    open_photo,
    xmp_fields,
    xmp_packet,
)
from ..pipeline.profiles import PhotoSpec, Profile, parse_profile
from .analysis.faces import FaceDetector
from .analysis.framing import subject_positions
from .analysis.settings import DEFAULT_SETTINGS, AnalysisSettings
from .analysis.video import VideoFeatures, shrink, to_bins
from .ffmpeg import task_stop_event
from .files import exclusive, publish_dir
from .verify import Check, _Checks

# EXIF orientation -> the transpose that makes the stored picture upright
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
PILLOW_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "png": "PNG"}
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
SRGB_ICC = SRGB.tobytes()
# the analysis kernels at sizes for one still rather than every frame of a video: finer detail, and faces down to
# 24/640 of the width (a person in a landscape photo; one pass of the cascade at 640 px takes about 0.1 s)
PHOTO_ANALYSIS = dataclasses.replace(DEFAULT_SETTINGS, analysis_width=320, face_width=640)
XMP_NS = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
          "dc": "http://purl.org/dc/elements/1.1/", "xml": "http://www.w3.org/XML/1998/namespace"}
Report = Callable[[float], None]


def upright(picture: Image.Image, orientation: int) -> Image.Image:
    return picture.transpose(UPRIGHT[orientation]) if orientation in UPRIGHT else picture


def to_srgb(picture: Image.Image) -> Image.Image:
    """8-bit RGB (RGBA where the photo has transparency) in sRGB: converted through its ICC profile when it has
    one (Display P3 from phones, Adobe RGB from cameras, CMYK), else taken as sRGB."""
    icc = picture.info.get("icc_profile")
    alpha = picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info
    target = "RGBA" if alpha else "RGB"
    if picture.mode.startswith("I"):  # 16-bit gray: keep the top 8 bits (a plain convert would clip)
        deep = np.asarray(picture, dtype=np.uint32)
        picture = Image.fromarray((deep >> 8).clip(0, 255).astype(np.uint8))
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            # palette and 1-bit pictures, and RGB or grey ones with a tRNS transparent colour, to the target first
            if picture.mode not in ("RGB", "RGBA", "CMYK", "L") or target == "RGBA" and picture.mode != "RGBA":
                picture = picture.convert(target)
            if picture.mode == "RGBA" or target == "RGB":
                converted = ImageCms.profileToProfile(picture, source, SRGB, outputMode=target)
                assert converted is not None
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or mismatched profile: the pixels are taken as sRGB
    return picture if picture.mode == target else picture.convert(target)


@dataclass(frozen=True)
class Subject:
    """Where a photo's subject is, by the analysis's kernels: its still contrast (|Laplacian|) per column and per
    row, and its faces (x, y, w, h fractions, largest first)."""

    columns: np.ndarray
    rows: np.ndarray
    faces: list[tuple[float, float, float, float]]


def find_subject(picture: Image.Image, settings: AnalysisSettings = PHOTO_ANALYSIS) -> Subject:
    gray = np.asarray(picture.convert("L"))
    height, width = gray.shape
    small = shrink(gray, settings.analysis_width, max(2, round(settings.analysis_width * height / width)))
    faces: list[tuple[float, float, float, float]] = []
    detector = FaceDetector()
    if detector.available:
        face_width = min(width, settings.face_width)
        faces = detector.detect(shrink(gray, face_width, max(2, round(face_width * height / width))))

    def profile(a: np.ndarray) -> np.ndarray:
        edges = cv2.reduce(cv2.convertScaleAbs(cv2.Laplacian(a, cv2.CV_16S, ksize=3)), 0, cv2.REDUCE_SUM,
                           dtype=cv2.CV_32F)
        still = to_bins(edges, settings.profile_bins)
        return still / max(float(still.sum()), 1e-6)

    return Subject(profile(small), profile(np.ascontiguousarray(small.T)), faces)


def subject_centre(subject: Subject, fraction: float, vertical: bool,
                   settings: AnalysisSettings = PHOTO_ANALYSIS) -> float:
    """Where (fraction of the width, or of the height when ``vertical``) a window ``fraction`` of the picture long
    holds most of the subject: the analysis's 9:16 framing, on one picture."""
    boxes = [(y, x, h, w) for x, y, w, h in subject.faces] if vertical else subject.faces
    features = VideoFeatures(times=[0.0], still_profile=[subject.rows if vertical else subject.columns],
                             motion_profile=[np.zeros(settings.profile_bins, np.float32)],
                             faces={0: boxes} if boxes else {})
    return float(subject_positions(features, 0, 1, fraction, 1.0, settings)[0])


def cover_window(picture: Image.Image, width: int, height: int,
                 subject: Subject | None = None) -> tuple[int, int, int, int]:
    """The largest (left, top, right, bottom) box of the shape width:height, centred on the subject."""
    pw, ph = picture.size
    if pw * height > ph * width:  # wider than the box: full height, the window slides across
        size, room, vertical = max(1, round(ph * width / height)), pw, False
    else:
        size, room, vertical = max(1, round(pw * height / width)), ph, True
    if size >= room:
        return 0, 0, pw, ph
    centre = subject_centre(subject or find_subject(picture), size / room, vertical)
    start = min(room - size, max(0, round(centre * room - size / 2)))
    return (0, start, pw, start + size) if vertical else (start, 0, start + size, ph)


def exif_for(kept: dict[str, str]) -> bytes:
    """An EXIF block with only the kept caption and rights fields (UTF-8 where they are not ASCII)."""
    exif = Image.Exif()
    for name, value in kept.items():
        exif[CAPTION_FIELDS[name][0]] = value if value.isascii() else value.encode("utf-8")
    return exif.tobytes() if kept else b""


def xmp_for(kept: dict[str, str]) -> bytes:
    """An XMP packet with only the kept fields' Dublin Core twins (dc:creator, dc:rights, dc:description)."""
    if not kept:
        return b""
    for prefix, uri in XMP_NS.items():
        if prefix != "xml":
            ElementTree.register_namespace(prefix, uri)
    ns = {k: f"{{{v}}}" for k, v in XMP_NS.items()}
    meta = ElementTree.Element(ns["x"] + "xmpmeta")
    description = ElementTree.SubElement(ElementTree.SubElement(meta, ns["rdf"] + "RDF"), ns["rdf"] + "Description",
                                         {ns["rdf"] + "about": ""})
    for name, value in kept.items():
        dc_name = CAPTION_FIELDS[name][1]
        container = ElementTree.SubElement(ElementTree.SubElement(description, ns["dc"] + dc_name),
                                           ns["rdf"] + ("Seq" if dc_name == "creator" else "Alt"))
        item = ElementTree.SubElement(container, ns["rdf"] + "li",
                                      {} if dc_name == "creator" else {ns["xml"] + "lang": "x-default"})
        item.text = value
    return ElementTree.tostring(meta, encoding="utf-8", xml_declaration=False)


def save(picture: Image.Image, path: Path, fmt: str, spec: PhotoSpec, kept: dict[str, str]) -> None:
    """Write one rendition file: sRGB-tagged, only the kept metadata."""
    if fmt == "jpeg" and picture.mode == "RGBA":  # JPEG has no transparency: over white
        flat = Image.new("RGB", picture.size, (255, 255, 255))
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    options: dict[str, Any] = {"icc_profile": SRGB_ICC}
    exif, xmp = exif_for(kept), xmp_for(kept)
    if exif:
        options["exif"] = exif
    if fmt == "jpeg":
        options.update(quality=spec.quality, optimize=True, progressive=True)
    elif fmt == "webp":
        options.update(quality=spec.quality, method=4)
    elif fmt == "avif":
        options.update(quality=spec.avif_quality, speed=spec.avif_speed)
    if xmp and fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
        options["pnginfo"] = info
    elif xmp:
        options["xmp"] = xmp
    picture.save(path, PILLOW_FORMATS[fmt], **options)


def _render(picture: Image.Image, subject: Callable[[], Subject], output: dict[str, Any], source: str,
            metadata: dict[str, str], checkpoint: Callable[[], None]) -> None:
    profile = parse_profile(output["profile"], output["profile"]["name"], f"profile {output['profile']['name']}")
    spec = profile.photo
    assert spec is not None
    partial = Path(output["partial"])
    kept = {name: value for name, value in metadata.items() if name in spec.keep_metadata}
    window = cover_window(picture, spec.width, spec.height, subject()) if spec.fit == "cover" else None
    for f in output["files"]:
        checkpoint()
        if f["format"] == "original":
            shutil.copyfile(source, partial / f["name"])
            continue
        sized = picture.crop(window) if window else picture
        if sized.size != (f["width"], f["height"]):
            sized = sized.resize((f["width"], f["height"]), Image.Resampling.LANCZOS, reducing_gap=3.0)
        save(sized, partial / f["name"], f["format"], spec, kept)


def make_photos(params: PhotoParams, deps: Deps, report: Report) -> dict[str, Any]:
    """The photo task: every rendition of the plan that is not made yet, from one decode; each appears whole (its
    folder renamed into place) or not at all."""
    outputs = params["outputs"]
    if any("avif" in f["format"] for o in outputs for f in o["files"]) and not features.check("avif"):
        raise ConfigError("this Pillow cannot write AVIF; install Pillow 11.3 or newer (pip install -U pillow), or "
                          "take 'avif' out of the photo profiles' formats")
    with exclusive([o["final"] for o in outputs]):
        todo = [o for o in outputs if not os.path.isdir(o["final"])]
        if todo:
            with task_stop_event() as stop:
                started, timeout = time.monotonic(), params["limits"]["timeout_s"]

                def checkpoint() -> None:
                    """Between files: stop once the task is cancelled, or past its time limit."""
                    if stop.is_set():
                        raise TaskCancelled(f"{params['source']}: its photo renditions were stopped because their "
                                            f"task was cancelled")
                    if time.monotonic() - started > timeout:
                        raise SourceError(params["source"], f"its photo renditions ran past their limit of "
                                                            f"{timeout:g} s and were stopped",
                                          "the farm may be overloaded; run it again, or send a smaller export "
                                          "of the photo")

                with open_photo(params["source"], params["format"]) as decoded:
                    picture = to_srgb(upright(decoded, params["orientation"]).copy())
                picture.info.clear()  # nothing of the source's own (a JPEG comment, PNG text) rides along on a save
                subject = functools.cache(lambda: find_subject(picture))  # once, for every cover
                for n, output in enumerate(todo):
                    partial = Path(output["partial"])
                    shutil.rmtree(partial, ignore_errors=True)
                    partial.mkdir(parents=True)
                    try:
                        _render(picture, subject, output, params["source"], params["metadata"], checkpoint)
                    except BaseException:
                        shutil.rmtree(partial, ignore_errors=True)
                        raise
                    publish_dir(partial, Path(output["final"]))
                    report((n + 1) / len(todo))
    report(1.0)
    return {"reused": not todo, "outputs": [o["final"] for o in outputs]}


def xmp_extra_fields(packet: bytes) -> list[str]:
    """Every field of a rendition's XMP packet but the kept Dublin Core ones (dc:creator, dc:rights,
    dc:description): what must not be there."""
    if not packet:
        return []
    try:
        root = ElementTree.fromstring(packet.strip(b"\x00 \t\r\n"))
    except ElementTree.ParseError:
        return ["(unreadable packet)"]
    kept = {XMP_DC + dc_name for _, dc_name in CAPTION_FIELDS.values()}
    rdf = "{" + XMP_NS["rdf"] + "}"
    extra = []
    for description in root.iter(rdf + "Description"):
        extra += [name for name in description.attrib if name != rdf + "about"]
        extra += [child.tag for child in description if child.tag not in kept]
    return [name.rsplit("}", 1)[-1] for name in extra]


def verify_photo(profile: Profile, folder: str, expect: dict[str, Any]) -> list[Check]:
    """Every file of a photo rendition: there, of its format and size, upright, sRGB, without identifying metadata,
    with the kept caption and rights fields (in EXIF and XMP); the original byte for byte."""
    checks = _Checks(profile.name)
    for f in expect["files"]:
        name, path = f["name"], Path(folder) / f["name"]
        if not path.is_file():
            checks.add(f"{name} present", False, "missing", "present")
            continue
        if f["format"] == "original":
            with open(path, "rb") as original:
                checks.equal(f"{name} sha256", hashlib.file_digest(original, "sha256").hexdigest(), expect["sha256"])
            continue
        with Image.open(path) as image:
            checks.equal(f"{name} format", image.format, PILLOW_FORMATS[f["format"]])
            checks.equal(f"{name} size", f"{image.width}x{image.height}", f"{f['width']}x{f['height']}")
            exif = image.getexif()
            checks.equal(f"{name} orientation", exif.get(0x0112, 1), 1)
            xmp = xmp_packet(image.info)
            leaks = [n for n in identifying_metadata(exif, image.info) if n != "XMP"]
            leaks += [f"XMP {field}" for field in xmp_extra_fields(xmp)]
            leaks += ["comment"] if image.info.get("comment") else []
            leaks += ["IPTC"] if image.info.get("photoshop") else []
            leaks += [f"PNG text {k}" for k in getattr(image, "text", {}) if k != "XML:com.adobe.xmp"]
            checks.add(f"{name} identifying metadata", not leaks, ", ".join(leaks) or "none", "none")
            icc = image.info.get("icc_profile")
            colour = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip() if icc \
                else "untagged"
            checks.add(f"{name} colour", "srgb" in colour.lower(), colour, "sRGB")
            in_xmp = xmp_fields(xmp)
            for field, value in expect["kept"].items():
                tag, dc_name = CAPTION_FIELDS[field]
                checks.equal(f"{name} {field}", exif_text(exif.get(tag)), value)
                checks.equal(f"{name} XMP dc:{dc_name}", in_xmp.get(dc_name, ""), value)
    return checks.items
