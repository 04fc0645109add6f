"""The loudness measure step's search, on a model of a limiter and a lossy encoder, and its argv filling."""

from __future__ import annotations

import json
import math

import pytest

from onetake.workers import loudness

LOG = """[Parsed_ebur128_0 @ 0x1] Summary:

  Integrated loudness:
    I:         -70.0 LUFS
[ebur128@target-0 @ 0x55] Summary:

  Integrated loudness:
    I:         -24.1 LUFS
    Threshold: -34.4 LUFS

  True peak:
    Peak:       -6.8 dBFS
[ebur128@target-2 @ 0x56] Summary:

  Integrated loudness:
    I:         -15.0 LUFS
    Threshold: -25.6 LUFS

  True peak:
    Peak:       -1.3 dBFS
"""


def test_each_meter_summary_is_read_by_its_instance_name():
    assert loudness.summary(LOG, "ebur128@target-0") == (-24.1, -6.8)
    assert loudness.summary(LOG, "ebur128@target-2") == (-15.0, -1.3)
    assert loudness.summary(LOG) == (-15.0, -1.3)  # the last one printed
    with pytest.raises(ValueError):
        loudness.summary(LOG, "ebur128@target-1")


def test_settled_gains_and_ceilings_fill_every_placeholder():
    argv = ["ffmpeg", "-filter_complex", "volume={gain_0}dB,alimiter=limit={limit_0}:release={release_0};"
            "volume={gain_1}dB,alimiter=limit={limit_1}:release={release_1}", "file:{scratch}/target-1.mp4"]
    settled = [{"gain_db": 3.456, "ceiling_db": -2.5, "release_ms": 50},
               {"gain_db": -1.0, "ceiling_db": 0.0, "release_ms": 15}]
    graph, out = loudness.fill(argv, dict(enumerate(settled)), "/w/.trial-1")[2:]
    assert graph == ("volume=3.46dB,alimiter=limit=0.74989:release=50;volume=-1.00dB,alimiter=limit=1.00000:"
                     "release=15")
    assert out == "file:/w/.trial-1/target-1.mp4"
    # a silent programme: no gain, a limiter that never acts
    silent = "volume=0dB,alimiter=limit=1:release=50"
    assert loudness.fill(argv, None)[2] == f"{silent};{silent}"
    # settings come from several measure tasks, each target by its own number; a missing one is a planning error
    assert loudness.fill(argv[:2], {1: settled[1], 0: settled[0]}) == loudness.fill(argv[:2], dict(enumerate(settled)))
    with pytest.raises(ValueError, match="no measured setting for loudness target 0"):
        loudness.fill(argv, {1: settled[1]})


def model(programme_i: float, programme_tp: float, overshoot: float, grip: float):
    """A programme through gain, a limiter and an encoder, as the search sees it: the limiter holds the true peak
    at its ceiling, loses ``grip`` dB of loudness per dB it takes off the peaks, and the encoder adds ``overshoot``
    dB of peak whenever the limiter works."""
    def measure(setting: dict) -> tuple[float, float]:
        peak = programme_tp + setting["gain_db"]
        cut = max(0.0, peak - setting["ceiling_db"])
        grip_now = grip * (0.6 if setting["release_ms"] == 15 else 1.0)
        return programme_i + setting["gain_db"] - grip_now * cut, min(peak, setting["ceiling_db"]) + (
            overshoot if cut else 0.0)
    return measure


SPEC = {"integrated": -15.0, "true_peak": -1.0, "tolerance": 1.0, "headroom": 1.0, "lossy": True}


@pytest.mark.parametrize("programme_i, programme_tp, overshoot, grip", [
    (-23.0, -12.0, 0.0, 0.1),   # plenty of headroom: the first guess is right
    (-17.0, -2.4, 0.3, 0.2),    # speech: a little limiting, a little codec overshoot
    (-15.5, 2.8, 1.3, 0.5),     # clipped, with applause: hard limiting, AAC overshooting its ceiling
    (-19.6, -4.0, 2.0, 0.85),   # nothing but claps: the limiter swallows most of the gain until it lets go sooner
])
def test_the_search_lands_every_target_inside_its_limits(programme_i, programme_tp, overshoot, grip):
    measure = model(programme_i, programme_tp, overshoot, grip)
    target = loudness._Target(SPEC, programme_i)
    for _ in range(loudness.SETTLE_ROUNDS):
        if target.record(*measure(target.setting)):
            break
    best = target.best()
    assert best["true_peak"] <= SPEC["true_peak"] - loudness.PEAK_MARGIN_DB
    assert abs(best["integrated"] - SPEC["integrated"]) <= loudness.LOUDNESS_SETTLED * SPEC["tolerance"]
    # what is kept was measured: the encode makes what the search saw
    assert measure(best) == pytest.approx((best["integrated"], best["true_peak"]))


def test_a_silent_programme_settles_at_once():
    target = loudness._Target(SPEC, -80.0)
    assert target.record(-math.inf, -math.inf) and target.best()["round"] == 1


def test_the_programme_is_metered_once_for_all_its_targets(tmp_path):
    """Each target's measure task starts with the programme's meter; the first to run it writes the result where
    the others read it, and a meter that would run again is a command that fails."""
    metered = tmp_path / "loudness" / "programme-k.json"
    params = {"argv": ["ffmpeg", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-af",
                       "ebur128=peak=true", "-f", "null", "-"], "programme_cache": str(metered),
              "limits": {"stall_timeout_s": 60.0, "timeout_s": 60.0}}
    first = loudness.programme_loudness(params)
    assert -30 < first[0] < -10 and json.loads(metered.read_text()) == {"integrated": first[0], "true_peak": first[1]}
    assert loudness.programme_loudness({**params, "argv": ["ffmpeg", "-i", "file:/nonexistent"]}) == first
