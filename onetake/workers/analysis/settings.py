"""Every threshold and size the analysis uses, in one place (the single source of truth for its defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnalysisSettings:
    # the picture the kernels see: luma this wide (height follows the display aspect), chroma half of it
    analysis_width: int = 160
    # gray thumbnails kept for the whole file, for gradual transitions (bytes per frame = width * height)
    thumb_size: tuple[int, int] = (32, 18)
    # hard cuts: mean absolute Y+U+V difference to the previous frame (0..255 per plane, summed)
    cut_min_score: float = 12.0
    cut_local_ratio: float = 3.0          # ... and this many times the median of its neighbours
    cut_local_margin: float = 4.0         # ... plus this
    cut_neighbourhood_s: float = 0.5      # neighbours on each side
    min_shot_frames: int = 4              # a second cut closer than this to the last one is a flash, not a shot
    flash_max_frames: int = 3             # a change that is undone within this many frames is a flash, not a cut
    flash_return_ratio: float = 0.25      # ... "undone": back within this share of the jump
    # gradual transitions (fades, dissolves) on the thumbnails
    gradual_step_min: float = 0.35        # mean |change| per frame (gray levels) that counts as a step at all
    gradual_direction_min: float = 0.6    # correlation of consecutive steps: a blend keeps its direction
    gradual_min_frames: int = 4
    gradual_min_change: float = 8.0       # mean |end - start| of the whole transition (gray levels)
    gradual_net_ratio_min: float = 0.75   # |end - start| / sum of |steps|: a blend does not go back and forth
    gradual_residual_max: float = 0.3     # middle frames explained by a linear blend of the ends
    # black: a frame whose pixels are nearly all at black level (as ffmpeg's blackdetect pic_th / pix_th)
    black_pixel_level: float = 0.10       # fraction of the nominal range above black
    black_picture_ratio: float = 0.98
    black_min_s: float = 0.1
    # frozen: consecutive frames (not black) that do not differ
    freeze_max_diff: float = 0.5          # mean |Y difference| at analysis size, gray levels
    freeze_max_changed: float = 0.0005    # ... and at most this share of pixels changed clearly (a small
                                          # object moving is not a freeze)
    freeze_min_s: float = 0.5
    # silence: 10 ms blocks whose peak on every channel stays under this
    silence_block_s: float = 0.01
    silence_level_db: float = -60.0
    silence_min_s: float = 0.5
    # the short-term loudness curve: one point per this many seconds (ebur128 gives one per 0.1 s)
    loudness_curve_step_s: float = 0.1
    loudness_curve_max_points: int = 6000
    # active picture: rows/columns whose brightest moment stays within this of black are bars
    bar_level: float = 0.06               # fraction of the nominal range above black
    sample_every_s: float = 0.2           # full-size samples for bars (cheap row/column means)
    interlace_samples: int = 12           # full-size frames checked for combing (unflagged sources only)
    interlace_combing_min: float = 1.0
    # poster and cover
    poster_margin_s: float = 0.5          # keep this far from a transition
    # faces: checked on this many frames per second at this width (the cascade costs 10-30 ms a frame)
    face_rate: float = 0.5
    face_width: int = 192                 # faces smaller than 24/192 of the width are not looked for
    # the 9:16 crop path
    # poster and cover scores: sharp, well exposed, with contrast, not black, faces doubled, away from transitions
    poster_exposure_centre: float = 0.45  # mean luma (0..1 of the nominal range) that scores best ...
    poster_exposure_width: float = 0.3    # ... falling off as a Gaussian of this width
    poster_contrast_full: float = 40.0    # standard deviation of Y at which contrast counts fully
    poster_floor: float = 0.2             # sharpness, contrast and the cover's window share each count from this
    poster_transition_penalty: float = 0.05  # a frame this near a transition scores this share of its worth
    crop_aspect: tuple[int, int] = (9, 16)
    profile_bins: int = 64                # columns of the saliency profile
    motion_weight: float = 2.0            # motion counts this much more than still contrast
    face_weight: float = 6.0
    subject_smooth_s: float = 0.4         # the subject's position is averaged over this
    follow_lead_s: float = 0.2            # the window looks this far ahead (the whole file is known)
    follow_deadband: float = 0.25         # a still window starts moving when the subject is this far from its
                                          # centre (fraction of the window width) ...
    follow_settle: float = 0.03           # ... and stops when it is back this near and no longer moving
    follow_response_s: float = 0.3        # how fast a moving window closes the distance to the subject
    follow_max_speed: float = 0.6         # picture widths per second
    follow_max_accel: float = 1.5         # picture widths per second squared
    path_tolerance: float = 0.0005        # crop points dropped where linear interpolation is this close


DEFAULT_SETTINGS = AnalysisSettings()
