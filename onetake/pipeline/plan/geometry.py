"""Pictures: output rates and GOPs, the shape of a picture in a box (pad, centre crop, fit, follow), colour
matrices and tags, and tone mapping HDR to SDR."""

from __future__ import annotations

from fractions import Fraction

from ..models import SourceInfo, VideoStreamInfo
from ..profiles import Profile, VideoSpec
from .graph import OVERLAY, Filter, flt


def output_rate(source_rate: Fraction, spec: VideoSpec) -> Fraction:
    if spec.frame_rate != "source":
        return Fraction(spec.frame_rate)
    rate = source_rate
    while rate > spec.max_frame_rate + Fraction(1, 100):
        rate /= 2
    return rate


def gop_frames(spec: VideoSpec, rate: Fraction) -> int:
    return spec.gop_frames or max(1, round(spec.gop_seconds * rate))


def _even(x: float) -> int:
    return max(2, int(x / 2 + Fraction(1, 2)) * 2)  # half up, not to even


MATRIX_FOR_SCALE = {"bt709": "bt709", "bt470bg": "bt601", "smpte170m": "bt601", "smpte240m": "smpte240m",
                    "bt2020nc": "bt2020", "bt2020c": "bt2020"}


def source_matrix(v: VideoStreamInfo) -> str:
    """The source's YUV matrix as scale names it (after tone mapping, for HDR: BT.709); untagged sources are guessed
    by their line count."""
    if v.hdr:
        return "bt709"
    return MATRIX_FOR_SCALE.get(v.color_matrix) or ("bt709" if v.height >= 720 else "bt601")


# HDR to SDR: linear light at a nominal peak of 100 cd/m2, BT.2020 primaries to BT.709, then the Mobius curve,
# which keeps everything below about the SDR peak as it is and rolls off only the highlights above it
TONE_MAP = {"tonemap": "mobius", "desat": 0}


NOMINAL_PEAK_NITS = 100


def tone_map_filters(v: VideoStreamInfo) -> list[Filter]:
    """PQ or HLG pictures to BT.709 SDR, every input property named (container tags are often missing), kept at
    10 bits and the source's chroma until each output's own conversion."""
    chroma = "yuv422p10le" if "422" in v.pix_fmt else "yuv444p10le" if "444" in v.pix_fmt else "yuv420p10le"
    return [flt("zscale", tin=v.color_transfer, min=v.color_matrix or "bt2020nc", pin=v.color_primaries or "bt2020",
                rin=v.color_range or "tv", t="linear", npl=NOMINAL_PEAK_NITS),
            flt("format", "gbrpf32le"), flt("zscale", p="bt709"), flt("tonemap", **TONE_MAP),
            flt("zscale", t="bt709", m="bt709", r="tv"), flt("format", chroma)]


SD_RASTERS = {(720, 576), (704, 576), (720, 608), (720, 480), (720, 486), (704, 480)}


def output_matrix(spec: VideoSpec) -> str:
    """BT.601 for broadcast SD rasters only; every other output (web rungs and proxies included) is BT.709."""
    return "bt601" if (spec.width, spec.height) in SD_RASTERS else "bt709"


def colour_tags(spec: VideoSpec) -> dict[str, str]:
    """What an output is tagged as, matching the matrix it was converted to; limited range."""
    if output_matrix(spec) == "bt709":
        return {"color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709", "range": "tv"}
    return {"color_primaries": "bt470bg", "color_trc": "smpte170m", "colorspace": "bt470bg", "range": "tv"}


def output_format(spec: VideoSpec) -> list[Filter]:
    # setparams, not -color_* options: ffmpeg's encoders take colour from the frames they are given
    return [flt("setparams", **colour_tags(spec)), flt("format", spec.pix_fmt)]


def box_sar(spec: VideoSpec) -> Fraction:
    """The output's sample aspect ratio: square, unless the profile declares a display shape (anamorphic SD)."""
    if not spec.display_aspect:
        return Fraction(1)
    num, den = (int(x) for x in spec.display_aspect.split(":"))
    return Fraction(num, den) / Fraction(spec.width, spec.height)


def follow_window(aspect: Fraction, width: int, height: int, box_w: int, box_h: int,
                  sar: Fraction = Fraction(1)) -> int | None:
    """The width in source pixels of the crop window that ``follow`` moves across a picture of ``width`` x
    ``height`` pixels (display ``aspect``); None when the picture is not wider than the box, and there is
    nothing to follow sideways (the window is then centred like ``center``)."""
    box_aspect = Fraction(box_w, box_h) * sar
    if aspect <= box_aspect:
        return None
    source_sar = aspect / Fraction(width, height)
    window = min(width, _even(height * box_aspect / source_sar))
    return window if window < width else None


def audiogram(source: SourceInfo, profile: Profile) -> bool:
    """Whether ``profile``'s picture is made from the sound (the source has none of its own)."""
    return not source.video and bool(source.audio) and profile.audiogram is not None and profile.video is not None


def follows(source: SourceInfo, profile: Profile) -> bool:
    """Whether ``profile``'s output moves its crop window with the subject (a picture wider than its box)."""
    spec = profile.video
    if profile.kind != "av" or spec is None or spec.framing != "follow" or not source.video:
        return False
    v = source.video[0]
    return follow_window(v.display_aspect, *v.display_size, spec.width, spec.height, box_sar(spec)) is not None


def geometry(aspect: Fraction, width: int, height: int, box_w: int, box_h: int, framing: str,
             in_matrix: str, out_matrix: str, sar: Fraction = Fraction(1), commands: str = "") -> list[Filter]:
    """Filters that put a picture of display ``aspect`` into a box of ``box_w`` x ``box_h`` pixels of shape
    ``sar`` without stretching it. ``follow`` crops like ``center`` and moves the crop window sideways by the
    ``commands`` file (ffmpeg's sendcmd), which the worker writes from the analysis's crop path."""
    box_aspect = Fraction(box_w, box_h) * sar
    if framing == "follow":
        window = follow_window(aspect, width, height, box_w, box_h, sar)
        if window is None or not commands:
            return geometry(aspect, width, height, box_w, box_h, "center", in_matrix, out_matrix, sar)
        # x is an expression evaluated on every frame: the commands replace it, one linear piece at a time
        chain = [flt("sendcmd", f=commands), flt("crop", window, height, x=f"{(width - window) // 2}", y=0)]
        return chain + geometry(Fraction(window, height) * (aspect / Fraction(width, height)), window, height,
                                box_w, box_h, "center", in_matrix, out_matrix, sar)
    if framing == "fit":  # the whole picture, centred over a blurred copy that fills the box
        background = geometry(aspect, width, height, box_w // 4 * 2, box_h // 4 * 2, "center", in_matrix,
                              out_matrix, sar)
        background += [flt("boxblur", luma_radius=min(box_w, box_h) // 40, luma_power=2),
                       flt("scale", box_w, box_h)]
        foreground = geometry(aspect, width, height, box_w, box_h, "pad", in_matrix, out_matrix, sar)
        pad = next((f for f in foreground if f[0] == "pad"), None)
        if pad is None:  # same shape as the box: nothing to fill
            return foreground
        foreground.remove(pad)
        return [flt(OVERLAY, background, foreground, x=pad[1][2], y=pad[1][3])]
    chain = []
    if framing == "pad":
        if aspect > box_aspect:
            w, h = box_w, min(box_h, _even(box_w * sar / aspect))
        else:
            w, h = min(box_w, _even(box_h * aspect / sar)), box_h
    else:  # "center": crop the source to the box's shape first, so no more pixels than needed are scaled
        source_sar = aspect / Fraction(width, height)
        if aspect > box_aspect:
            cw, ch = min(width, _even(height * box_aspect / source_sar)), height
        else:
            cw, ch = width, min(height, _even(width * source_sar / box_aspect))
        if (cw, ch) != (width, height):
            chain.append(flt("crop", cw, ch, (width - cw) // 2, (height - ch) // 2))
        w, h = box_w, box_h
        width, height = cw, ch
    if (w, h) != (width, height) or in_matrix != out_matrix:
        chain.append(flt("scale", w, h, in_color_matrix=in_matrix, out_color_matrix=out_matrix))
    chain.append(flt("setsar", f"{sar.numerator}/{sar.denominator}" if sar != 1 else 1))
    if (w, h) != (box_w, box_h):
        chain.append(flt("pad", box_w, box_h, (box_w - w) // 2, (box_h - h) // 2, color="black"))
    return chain
