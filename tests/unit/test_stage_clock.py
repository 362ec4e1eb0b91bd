"""The stage log's last line: every second since the start is charged to exactly one part."""

from collections.abc import Callable, Iterator

import pytest

from seecam.stage_clock import StageClock


def readings(*seconds: float) -> Callable[[], float]:
    """A fake clock that reads `seconds` in turn: each lap reads it once."""
    values: Iterator[float] = iter(seconds)
    return lambda: next(values)


def test_laps_cover_the_whole_run_and_carve_out_a_part():
    clock = StageClock(100.0, readings(117.1, 420.0, 421.4))
    clock.lap("startup")
    clock.lap("epochs", carve=("compile", 2.4))
    clock.lap("outputs")
    assert clock.parts == pytest.approx({"compile": 2.4, "startup": 17.1, "epochs": 300.5, "outputs": 1.4})
    assert list(clock.parts) == ["startup", "compile", "epochs", "outputs"]  # in the order they ended
    assert sum(clock.parts.values()) == pytest.approx(421.4 - 100.0)
    assert clock.line("cnn") == "cnn: startup 17.1 s, compile 2.4 s, epochs 300.5 s, outputs 1.4 s"


def test_a_clock_made_without_a_start_starts_when_it_is_made():
    clock = StageClock(now=readings(5.0, 5.25))
    clock.lap("outputs")
    assert clock.parts == {"outputs": 0.25}


def test_a_part_repeated_adds_up():
    clock = StageClock(0.0, readings(1.0, 3.0, 6.0))
    for part in ("epochs", "outputs", "epochs"):
        clock.lap(part)
    assert clock.parts == {"epochs": 4.0, "outputs": 2.0}


def test_each_block_of_work_is_a_part_and_the_time_between_blocks_goes_to_the_next():
    """explain's line: a part per block, with how many images it took where that is worth saying."""
    clock = StageClock(now=readings(10.0, 10.4, 16.5, 16.6))
    with clock.part("gallery"):
        pass
    with clock.part("faithfulness", "1,000 images"):  # 10.4 -> 16.5: 0.1 s of it before the block began
        pass
    with clock.part("writing"):
        pass
    assert clock.line("explain") == "explain: gallery 0.4 s, faithfulness 6.1 s (1,000 images), writing 0.1 s"


def test_a_block_that_fails_is_no_part():
    clock = StageClock(now=readings(0.0, 1.0))
    with pytest.raises(RuntimeError), clock.part("gallery"):
        raise RuntimeError("no figure")
    assert clock.parts == {}
