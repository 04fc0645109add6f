"""Photos as sources: probed, planned, made and checked for real (Pillow, pillow-heif, the analysis kernels, Dask
for `onetake run`), from photos this file makes with Pillow: a camera JPEG, a phone HEIF, a PNG and a WebP, each
stored sideways with EXIF orientation 6 (the HEIF also with its own irot), a GPS block, serial numbers and an
owner's name, and copyright and caption fields (in EXIF and XMP) that must survive."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from onetake.cli import cli
from onetake.pipeline.errors import PlanError, ProfileError, SourceError
from onetake.pipeline.models import JobPlan, SourceInfo
from onetake.pipeline.plan import PlanOptions, plan_job
from onetake.pipeline.probe import probe
from onetake.pipeline.profiles import load_catalog
from onetake.workers.photo import cover_window
from onetake.workers.tasks import run_task
import test_watch

FACE = Path(__file__).parent / "data" / "face-grace-hopper.png"
_watchers = test_watch.watchers  # the `watchers` fixture: starts `onetake watch`, and kills what it started after
UPRIGHT = (640, 480)            # the picture as a person sees it
RED, BLUE = (230, 20, 20), (20, 40, 230)
COPYRIGHT = "© 2026 县融媒体中心"
ARTIST = "Li Wei"
CAPTION = "Flood water at the Qingshui bridge, where the GPS buoys were"  # a caption may say GPS
SERIAL, LENS_SERIAL, OWNER, DATUM = "SN-4711-ONETAKE", "LENS-0815-ONETAKE", "Owner Zhang", "WGS-84-ONETAKE"
COMMENT = b"shot by Owner Zhang with SN-4711-ONETAKE"  # a JPEG comment a camera or an editor wrote
# what no rendition may hold, anywhere in its bytes
SECRETS = [SERIAL.encode(), LENS_SERIAL.encode(), OWNER.encode(), DATUM.encode(), b"GPSLatitude", COMMENT]
XMP = (f'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       f'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
       f'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
       f'xmlns:aux="http://ns.adobe.com/exif/1.0/aux/" exif:GPSLatitude="30,15.5N" aux:SerialNumber="{SERIAL}">'
       f'<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">{COPYRIGHT}</rdf:li></rdf:Alt></dc:rights>'
       f'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()
OPTIONS = dict(out_dir="/srv/out", work_dir="/srv/out/.onetake")


def upright_picture(size: tuple[int, int] = UPRIGHT) -> Image.Image:
    """Grey with soft noise, a red square in the top-left corner and a blue one in the bottom-right."""
    rng = np.random.default_rng(3)
    pixels = (128 + rng.normal(0, 6, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels, "RGB")
    picture.paste(RED, (0, 0, size[0] // 8, size[1] // 8))
    picture.paste(BLUE, (size[0] - size[0] // 8, size[1] - size[1] // 8, size[0], size[1]))
    return picture


def camera_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x013B] = ARTIST
    exif[0x8298] = COPYRIGHT.encode()  # UTF-8 in the ASCII field, as Chinese cameras and editors write it
    exif[0x010E] = CAPTION
    exif[0x010F], exif[0x0110] = "Canon", "EOS R6"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (30.0, 15.0, 30.0), 3: "E", 4: (120.0, 9.0, 7.5), 18: DATUM})
    camera = exif.get_ifd(0x8769)
    camera.update({0xA431: SERIAL, 0xA435: LENS_SERIAL, 0xA430: OWNER})
    return exif


def sideways() -> Image.Image:
    """The upright picture as a camera held on its side stores it: shown upright by EXIF orientation 6."""
    return upright_picture().transpose(Image.Transpose.ROTATE_90)


def write_photo(path: Path, fmt: str) -> Path:
    exif = camera_exif().tobytes()
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
        sideways().save(path, "HEIF", exif=exif, xmp=XMP, quality=90)  # pillow-heif writes irot and keeps EXIF 6
    elif fmt == "PNG":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        sideways().save(path, "PNG", exif=exif, pnginfo=info)
    elif fmt == "JPEG":
        sideways().save(path, fmt, exif=exif, xmp=XMP, quality=92, comment=COMMENT)
    else:
        sideways().save(path, fmt, exif=exif, xmp=XMP, quality=92)
    return path


@dataclass
class Made:
    source: Path
    info: SourceInfo
    plan: object
    results: dict
    out: Path


def make_all(src: Path, tmp: Path, channels: list[str] | None = None) -> Made:
    """Probe, plan and run every task in this process, in plan order (no Dask): the units `onetake run` uses."""
    info = probe(src)
    plan = plan_job(info, channels, load_catalog(), PlanOptions(out_dir=str(tmp / "out"), work_dir=str(tmp / "work")))
    results: dict = {}
    for task in plan.tasks:
        results[task.id] = run_task(task.kind, task.params, {d: results[d] for d in task.deps})
    return Made(src, info, plan, results, tmp / "out")


@pytest.fixture(scope="module", params=["JPEG", "HEIF", "PNG", "WEBP"])
def made(request, tmp_path_factory) -> Made:
    folder = tmp_path_factory.mktemp(request.param.lower())
    extension = {"JPEG": "jpg", "HEIF": "heic", "PNG": "png", "WEBP": "webp"}[request.param]
    return make_all(write_photo(folder / f"IMG_0042.{extension}", request.param), folder)


def renditions(made: Made) -> list[Path]:
    return sorted(p for p in made.out.rglob("*") if p.is_file() and p.name != "manifest.json"
                  and "photo-original" not in p.parts)


def corner_colours(picture: Image.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rgb = np.asarray(picture.convert("RGB"), dtype=np.int32)
    h, w = rgb.shape[:2]
    return tuple(rgb[h // 32, w // 32]), tuple(rgb[h - 1 - h // 32, w - 1 - w // 32])


def near(colour: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected))


def test_probe_reads_the_photo_and_what_it_carries(made):
    image = made.info.image
    assert image is not None and made.info.video == () and made.info.audio == ()
    carried = [s for s in SECRETS if s != COMMENT or image.format == "jpeg"]  # the comment is a JPEG's only
    assert all(secret in made.source.read_bytes() for secret in carried)  # what the renditions must leave out
    assert SourceInfo.from_dict(json.loads(json.dumps(made.info.to_dict()))) == made.info  # crosses Dask whole
    assert JobPlan.from_dict(json.loads(json.dumps(made.plan.to_dict()))) == made.plan
    assert image.display_size == UPRIGHT
    assert image.copyright == COPYRIGHT and image.artist == ARTIST and image.description == CAPTION
    assert {"GPS", "BodySerialNumber", "LensSerialNumber", "CameraOwnerName", "XMP"} <= set(image.identifying)
    if image.format == "heif":  # the decoder has turned it by irot: the EXIF 6 is a record, not applied again
        assert (image.width, image.height, image.orientation, image.exif_orientation) == (640, 480, 1, 6)
    else:
        assert (image.width, image.height, image.orientation) == (480, 640, 6)


def test_a_heif_stores_its_rotation_twice_and_is_turned_once(tmp_path):
    """The HEIF fixture holds irot and EXIF orientation 6 (as phones write them): decoded once, it is upright."""
    import pillow_heif

    src = write_photo(tmp_path / "IMG_0001.heic", "HEIF")
    assert b"irot" in src.read_bytes()  # the container's rotation ...
    heif = pillow_heif.open_heif(src)
    stored = Image.Exif()
    stored.load(heif.info["exif"])
    assert stored[0x0112] == 6  # ... and the EXIF tag, both saying "turn by 90 degrees"
    made = make_all(src, tmp_path, ["web"])
    [jpeg] = [p for p in renditions(made) if p.name == "photo-web-640.jpg"]
    with Image.open(jpeg) as picture:  # turned twice it would be 480x640 with the red square bottom-left
        assert picture.size == UPRIGHT
        top_left, bottom_right = corner_colours(picture)
        assert near(top_left, RED) and near(bottom_right, BLUE)
    assert any("EXIF orientation (6) is not applied a second time" in n for n in made.plan.notes)


def test_every_rendition_is_upright_exactly_once(made):
    files = renditions(made)
    assert files
    for path in files:
        with Image.open(path) as picture:
            if path.parent.name in ("photo-web", "photo-app-full"):  # the whole picture: both markers in place
                assert picture.width > picture.height, path  # 640x480 upright, not turned twice or not at all
                top_left, bottom_right = corner_colours(picture)
                assert near(top_left, RED) and near(bottom_right, BLUE), (path, top_left, bottom_right)
            assert picture.getexif().get(0x0112, 1) == 1, path


def test_no_rendition_carries_location_serials_or_owner(made):
    for path in renditions(made):
        data = path.read_bytes()
        assert not [s for s in SECRETS if s in data], path
        with Image.open(path) as picture:
            exif = picture.getexif()
            assert not exif.get_ifd(0x8825), path
            camera = exif.get_ifd(0x8769)
            assert not {0xA431, 0xA435, 0xA430, 0x927C} & set(camera), path
            assert 0x010F not in exif and 0x0110 not in exif, path  # make and model are not kept either


def test_copyright_and_captions_are_kept_in_exif_and_xmp(made):
    from onetake.pipeline.probe import exif_text, xmp_fields, xmp_packet

    for path in renditions(made):
        with Image.open(path) as picture:
            exif = picture.getexif()
            assert exif_text(exif.get(0x8298)) == COPYRIGHT, path
            assert exif_text(exif.get(0x013B)) == ARTIST and exif_text(exif.get(0x010E)) == CAPTION, path
            assert xmp_fields(xmp_packet(picture.info)) == {"rights": COPYRIGHT, "creator": ARTIST,
                                                            "description": CAPTION}, path


def test_sizes_formats_and_manifests_per_channel(made):
    manifests = {p.parent.parent.name: json.loads(p.read_text()) for p in made.out.rglob("manifest.json")}
    assert set(manifests) == {"web", "app", "short", "archive"}
    found = {}
    for channel, manifest in manifests.items():
        assert all(c["passed"] for c in manifest["checks"]) and manifest["checks"]
        folder = made.out / channel / manifest["asset_id"]
        assert sorted(f["path"] for f in manifest["files"]) == sorted(
            p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != "manifest.json" and p.is_file())
        for image_set in manifest["images"]:
            for f in image_set["files"]:
                path = folder / f["path"]
                with Image.open(path) as picture:
                    found[f["path"]] = (picture.format, picture.size)
                    if image_set["fit"] != "original":
                        assert picture.size == (f["width"], f["height"])
    assert found["photo-web/photo-web-480.avif"] == ("AVIF", (480, 360))
    assert found["photo-web/photo-web-640.webp"] == ("WEBP", (640, 480))  # 960 and up: not enlarged
    assert found["photo-web/photo-web-640.jpg"] == ("JPEG", (640, 480))
    assert len([p for p in found if p.startswith("photo-web/")]) == 6
    assert found["photo-app-full/photo-app-full-640.webp"][1] == (640, 480)
    assert found["photo-app-thumb/photo-app-thumb.jpg"] == ("JPEG", (400, 400))
    assert found["photo-short-cover/photo-short-cover.jpg"] == ("JPEG", (1080, 1920))
    web = manifests["web"]["images"][0]
    assert [s["type"] for s in web["sources"]] == ["image/avif", "image/webp", "image/jpeg"]
    assert web["sources"][0]["srcset"] == "photo-web/photo-web-480.avif 480w, photo-web/photo-web-640.avif 640w"
    assert web["fallback"]["path"] == "photo-web/photo-web-640.jpg"
    [original] = manifests["archive"]["files"]
    archived = made.out / "archive" / manifests["archive"]["asset_id"] / original["path"]
    assert archived.read_bytes() == made.source.read_bytes()  # the archive's copy is untouched, GPS and all


def wide_gamut_icc() -> bytes:
    """A minimal ICC v2 display profile with Display P3's primaries (adapted to D50) and a 2.2 gamma."""
    import struct

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))

    name = b"P3 test profile\0"
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(4 + 4 + 2 + 1 + 67)),
            (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.5151, 0.2412, -0.0011)),
            (b"gXYZ", xyz(0.2920, 0.6922, 0.0419)), (b"bXYZ", xyz(0.1571, 0.0666, 0.7841))]
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2)
    offset = 128 + 4 + 12 * (len(tags) + 3)
    table, data = [], b""
    for sig, body in tags:
        table.append(struct.pack(">4sII", sig, offset + len(data), len(body)))
        data += body + bytes(-len(body) % 4)
    table += [struct.pack(">4sII", sig, offset + len(data), len(curve)) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    data += curve
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s12s4s", size, bytes(4), 0x02100000, b"mntr", b"RGB ", b"XYZ ", bytes(12),
                         b"acsp") + bytes(24) + struct.pack(">I3i", 0, 63190, 65536, 54061) + bytes(48)
    return header + struct.pack(">I", len(tags) + 3) + b"".join(table) + data


def test_wide_gamut_colour_is_converted_to_srgb(tmp_path):
    """A PNG in Display P3 (a phone's export): a muted red, whose sRGB values are further apart than its P3 ones."""
    from PIL import ImageCms

    src = tmp_path / "p3.png"
    Image.new("RGB", (64, 48), (200, 100, 100)).save(src, "PNG", icc_profile=wide_gamut_icc())
    made = make_all(src, tmp_path, ["app"])
    assert made.info.image.icc == "P3 test profile"
    assert any("converted from the photo's profile (P3 test profile) to sRGB" in n for n in made.plan.notes)
    for path in renditions(made):
        with Image.open(path) as out:
            assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))) \
                .strip() == "sRGB built-in"
            red, green, blue = np.asarray(out.convert("RGB"), dtype=np.int32)[24, 32]
            assert red >= 210 and green <= 96 and blue <= 100, (path, red, green, blue)  # not (200, 100, 100)


def test_transparency_and_16_bit_grey(tmp_path):
    """A PNG logo-like picture with transparency, and a 16-bit grey PNG at mid grey (a scanner's)."""
    clear = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    clear.paste((200, 30, 30, 255), (50, 25, 150, 75))
    clear.save(tmp_path / "clear.png")
    made = make_all(tmp_path / "clear.png", tmp_path / "clear", ["app"])
    with Image.open(next(p for p in renditions(made) if p.name == "photo-app-full-200.webp")) as webp:
        assert webp.mode == "RGBA" and webp.getpixel((5, 5))[3] == 0 and webp.getpixel((100, 50))[3] == 255
    with Image.open(next(p for p in renditions(made) if p.name == "photo-app-full-200.jpg")) as jpeg:
        assert near(jpeg.getpixel((5, 5)), (255, 255, 255), 8) and near(jpeg.getpixel((100, 50)), (200, 30, 30))
    deep = Image.fromarray(np.full((60, 80), 32896, np.uint16))  # 0x8080: mid grey, beyond 8 bits
    deep.save(tmp_path / "deep.png")
    made = make_all(tmp_path / "deep.png", tmp_path / "deep", ["app"])
    assert made.info.image.mode.startswith("I")
    with Image.open(next(p for p in renditions(made) if p.name == "photo-app-full-80.jpg")) as jpeg:
        assert near(jpeg.getpixel((40, 30)), (128, 128, 128), 4)  # not clipped to white


def textured(size: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size[1], size[0]), dtype=np.uint8)


def test_the_cover_is_centred_on_the_detail():
    """1600x900 flat grey, a 200x300 patch of fine detail centred at x = 1250."""
    gray = np.full((900, 1600), 120, np.uint8)
    gray[300:600, 1150:1350] = textured((200, 300), 1)
    left, top, right, bottom = cover_window(Image.fromarray(gray).convert("RGB"), 1080, 1920)
    assert (top, bottom, right - left) == (0, 900, 506)
    assert abs((left + right) / 2 - 1250) <= 60
    # a tall panorama: the window slides down to the detail
    tall = np.full((2400, 900), 120, np.uint8)
    tall[1800:2100, 300:600] = textured((300, 300), 2)
    left, top, right, bottom = cover_window(Image.fromarray(tall).convert("RGB"), 400, 400)
    assert (left, right) == (0, 900) and abs((top + bottom) / 2 - 1950) <= 120


def test_the_cover_is_centred_on_a_face_over_busier_detail():
    """The face photo (scaled to 320x240) at x = 200..520 of a 1600x900 frame whose right holds a larger patch of
    fine detail."""
    canvas = np.full((900, 1600), 110, np.uint8)
    canvas[500:800, 1100:1500] = textured((400, 300), 4)
    face = Image.open(FACE).convert("L").resize((320, 240))
    picture = Image.fromarray(canvas)
    picture.paste(face, (200, 330))
    left, _, right, _ = cover_window(picture.convert("RGB"), 1080, 1920)
    assert abs((left + right) / 2 - 360) <= 80, (left, right)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_bad_photos_are_refused_in_one_line_each(tmp_path):
    good = write_photo(tmp_path / "whole.jpg", "JPEG").read_bytes()
    heif = write_photo(tmp_path / "whole.heic", "HEIF").read_bytes()
    bad = {
        "cut.jpg": (good[:len(good) // 2], r"JPEG photo that cannot be decoded.*truncated"),
        "cut.heic": (heif[:len(heif) * 2 // 3], r"HEIF photo that cannot be decoded"),
        "empty.jpg": (b"", r"empty \(0 bytes\)"),
        "notes.jpg": ("不是照片, just notes\n".encode(), r"text file"),
        "noise.png": (np.random.default_rng(5).bytes(4096), r"not a JPEG, PNG, HEIF or WebP photo"),
        "fake.png": (b"\x89PNG\r\n\x1a\n" + bytes(64), r"PNG photo that cannot be decoded"),
    }
    import re

    for name, (data, cause) in bad.items():
        path = tmp_path / name
        path.write_bytes(data)
        before = hashlib.sha256(data).hexdigest()
        code, out, err = _run(str(path), "--out", str(tmp_path / name / "out"))
        lines = [line for line in err.splitlines() if line.startswith("FAILED")]
        assert code != 0 and len(lines) == 1, (name, err)
        assert str(path) in lines[0] and re.search(cause, lines[0]), lines[0]
        assert "Traceback" not in err + out
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert not (tmp_path / name / "out").exists()  # nothing partial delivered


def test_a_photo_asked_for_tv_or_radio_names_what_it_can_feed(tmp_path):
    src = write_photo(tmp_path / "IMG_1.jpg", "JPEG")
    code, _, err = _run(str(src), "--channels", "tv,web", "--out", str(tmp_path / "out"))
    [line] = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert code != 0
    assert line == (f"FAILED {src}: is a still image (a JPEG photo), which feeds web, app, short, archive, not tv; "
                    f"run it with --channels web,app,short,archive")
    with pytest.raises(PlanError, match=r"not radio; run it with --channels web,app,short,archive"):
        plan_job(probe(src), ["radio"], load_catalog(), PlanOptions(**OPTIONS))


def test_video_plans_leave_photo_profiles_out():
    """Every pinned video and audio plan is the same with and without the photo profiles in the catalog."""
    import dataclasses

    from test_plan_pinned import CASES
    from test_plan import OPTIONS as PINNED_OPTIONS, source

    catalog = load_catalog()
    without = dataclasses.replace(
        catalog, profiles={n: p for n, p in catalog.profiles.items() if p.kind != "photo"},
        channels={c: tuple(n for n in names if catalog.profile(n).kind != "photo")
                  for c, names in catalog.channels.items() if c != "archive"})
    for info, channels in CASES.values():
        assert plan_job(info, channels, catalog, PINNED_OPTIONS) == plan_job(info, channels, without, PINNED_OPTIONS)
    video = plan_job(source(), None, catalog, PlanOptions(**OPTIONS))
    assert "archive" not in video.channels and not [t for t in video.tasks if t.kind == "photo"]
    assert not [t for t in video.tasks if "photo" in t.id]
    with pytest.raises(PlanError, match=r"channel 'archive' takes photos only; leave it out of --channels"):
        plan_job(source(), ["archive"], catalog, PlanOptions(**OPTIONS))


@pytest.mark.parametrize("toml, message", [
    ('[photo]\nformats = ["gif"]\n', r"\[photo\]: 'formats' = 'gif' is not allowed; choose one of 'jpeg'"),
    ('[photo]\nwidths = [480, 99999]\n', r"\[photo\]: 'widths' = 99999 is out of range"),
    ('[photo]\nwidths = ["wide"]\n', r"\[photo\]: 'widths' must be a list of integers, got \['wide'\]"),
    ('[photo]\nkeep_metadata = ["GPSInfo"]\n', r"'keep_metadata' = 'GPSInfo' is not allowed"),
    ('[photo]\n[video]\nwidth = 640\n', r"a 'photo' profile has only a \[photo\] section; remove \[video\]"),
    ('[photo]\nformats = []\n', r"\[photo\]: 'formats' must name at least one"),
])
def test_bad_photo_profiles_are_one_line(tmp_path, toml, message):
    from onetake.pipeline.profiles import load_profile_file

    path = tmp_path / "photo-bad.toml"
    path.write_text('kind = "photo"\n' + toml, encoding="utf-8")
    with pytest.raises(ProfileError, match=message) as caught:
        load_profile_file(path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


def test_profiles_show_lists_every_photo_field():
    result = CliRunner().invoke(cli, ["profiles", "show", "photo-web"])
    assert result.exit_code == 0, result.output
    for line in ('fit = "within"', "widths = [480, 960, 1440, 1920, 2560]", 'formats = ["avif", "webp", "jpeg"]',
                 "quality = 82", "avif_speed = 6", 'keep_metadata = ["Artist", "Copyright", "ImageDescription"]'):
        assert line in result.output


def test_onetake_run_delivers_a_heic_and_a_camera_jpeg(tmp_path):
    """Both photos in one batch on the real Dask farm, every channel they feed."""
    (tmp_path / "in").mkdir()
    heic = write_photo(tmp_path / "in" / "IMG_0001.HEIC", "HEIF")
    jpeg = write_photo(tmp_path / "in" / "DSC_0002.JPG", "JPEG")
    hashes = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (heic, jpeg)}
    code, out, err = _run(str(heic), str(jpeg), "--out", str(tmp_path / "out"), "--workers", "1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] and len(summary["manifests"]) == 8
    for source in summary["sources"]:
        assert [c["channel"] for c in source["channels"]] == ["web", "app", "short", "archive"]
    for manifest_path in map(Path, summary["manifests"]):
        manifest = json.loads(manifest_path.read_text())
        assert manifest["checks"] and all(c["passed"] for c in manifest["checks"])
        assert manifest["images"] and manifest["notes"]
        for f in manifest["files"]:
            assert hashlib.sha256((manifest_path.parent / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (heic, jpeg)} == hashes  # sources untouched
    covers = list((tmp_path / "out" / "short").rglob("photo-short-cover.jpg"))
    assert len(covers) == 2
    for cover in covers:
        with Image.open(cover) as picture:
            assert picture.size == (1080, 1920)
    with pytest.raises(SourceError):
        probe(tmp_path / "in" / "missing.heic")


def test_the_watch_folder_takes_a_phone_photo(tmp_path, _watchers):
    """`onetake watch` as a real subprocess: a HEIC dropped whole into the inbox is delivered to web and archive
    and moved to done/, untouched."""
    from test_watch import delivered_names, drop, inbox, stop, wait_for

    box = inbox(tmp_path)
    photo = write_photo(tmp_path / "IMG_0042.HEIC", "HEIF")
    w = _watchers(str(box), "--out", str(tmp_path / "out"), "--channels", "web,archive")
    w.wait_ready()
    drop(photo, box)
    wait_for(lambda: delivered_names(w.jobs()) == ["IMG_0042.HEIC"], 60, w.text)
    [job] = w.jobs()
    assert sorted(Path(m).parts[-3] for m in job.manifests) == ["archive", "web"]
    web = json.loads(Path(next(m for m in job.manifests if "/web/" in m)).read_text())
    assert web["metadata"]["job"] == job.id and web["images"][0]["profile"] == "photo-web"
    assert (box / "done" / "IMG_0042.HEIC").read_bytes() == photo.read_bytes()
    assert stop(w) == 0


def test_a_photo_beside_a_photo_is_a_source_not_a_cover(tmp_path):
    """A phone's IMG_1.HEIC with its IMG_1.JPG export: two photos. A programme's cover (programme.jpg beside
    programme.wav) stays the programme's companion."""
    from onetake.pipeline.inbox import companions, is_candidate

    pairs = ("IMG_1.HEIC", "IMG_1.JPG", "DSC_2.ARW", "DSC_2.JPG", "IMG_8.JPG", "IMG_8.AAE", "DSC_1.jpg", "DSC_1.xmp",
             "IMG_7.JPG", "IMG_7.MOV")  # RAW+JPEG, an iPhone edit file, a Lightroom sidecar, a Live Photo
    for name in (*pairs, "programme.wav", "programme.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert {p.name for p in tmp_path.iterdir() if is_candidate(p)} >= {n for n in pairs if n.lower().endswith(
        (".jpg", ".heic"))} | {"programme.wav"}
    assert "programme.jpg" not in {p.name for p in tmp_path.iterdir() if is_candidate(p)}
    assert companions(tmp_path, "IMG_7.MOV") == []
    assert companions(tmp_path, "IMG_1.HEIC") == [] and companions(tmp_path, "IMG_1.JPG") == []
    assert [p.name for p in companions(tmp_path, "programme.wav")] == ["programme.jpg"]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_turned_as_pillow_reads_it(tmp_path, orientation):
    """All eight EXIF orientations, the mirrored ones (2, 4, 5, 7) included, against Pillow's own exif_transpose."""
    from PIL import ImageOps

    from onetake.workers.photo import upright

    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"  # lossless: the comparison is exact
    picture = Image.new("RGB", (64, 48), (0, 0, 0))
    picture.paste(RED, (0, 0, 16, 8))
    picture.paste(BLUE, (60, 40, 64, 48))
    picture.save(path, exif=exif.tobytes())
    image = probe(path).image
    assert image is not None and image.orientation == orientation
    with Image.open(path) as stored, Image.open(path) as reference:
        ours, theirs = upright(stored.convert("RGB"), image.orientation), ImageOps.exif_transpose(reference)
        assert ours.size == theirs.size == image.display_size
        assert np.array_equal(np.asarray(ours), np.asarray(theirs.convert("RGB")))
