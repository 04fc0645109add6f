"""Pure planning: (SourceInfo, channels, profiles) -> JobPlan. Every ffmpeg argv is built here, with ffmpeg-python.

    keys       asset ids and content keys
    programme  which audio makes the programme, where it starts, how long it runs
    graph      ffmpeg-python plumbing: the source input, filter trees, shared options
    geometry   rates, GOPs, a picture's shape in a box, colour, HDR tone mapping
    audio      the stereo programme, loudness targets, the measure and trial commands
    encode     encoder, muxer and timecode options; one encode's argv
    package    HLS ladders and thumbnail sprites
    params     task kinds, ids and each kind's typed parameters
    job        plan_job: the renditions each channel needs and the tasks that make, check and deliver them
    photo      a still photo's job: its renditions per channel, the one task that makes them, checks, deliveries

Nothing here touches the file system, runs a process or imports PyAV or numpy.
"""

from .audio import measure_argv
from .geometry import box_sar, colour_tags
from .job import PlanOptions, expectations, plan_job
from .keys import ANALYSIS_VERSION, analysis_key, asset_id_for
from .params import TaskKind, task_id
from .programme import programme_streams

__all__ = ["ANALYSIS_VERSION", "PlanOptions", "TaskKind", "analysis_key", "asset_id_for", "box_sar", "colour_tags",
           "expectations", "measure_argv", "plan_job", "programme_streams", "task_id"]
