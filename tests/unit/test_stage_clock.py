"""The stage log's last line: every second since the start is charged to exactly one part."""

import re
import time

import pytest

from seecam.stage_clock import StageClock


def test_laps_cover_the_whole_run_and_carve_out_a_part():
    began = time.perf_counter()
    clock = StageClock(began)
    time.sleep(0.02)
    clock.lap("startup")
    time.sleep(0.05)
    clock.lap("epochs", carve=("compile", 0.03))
    clock.lap("outputs")
    total = time.perf_counter() - began
    assert list(clock.parts) == ["startup", "compile", "epochs", "outputs"]
    assert sum(clock.parts.values()) == pytest.approx(total, abs=1e-3)
    assert clock.parts["compile"] == 0.03 and clock.parts["epochs"] >= 0.02
    assert re.fullmatch(r"cnn: startup 0\.0 s, compile 0\.0 s, epochs 0\.\d s, outputs 0\.0 s", clock.line("cnn"))
