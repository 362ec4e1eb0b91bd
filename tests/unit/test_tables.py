import pytest

from seecam.tables import accuracy_headline, better, cell, difference, format_number, points


def timed(median: float, low: float, high: float, key: str = "latency_ms") -> dict[str, float]:
    return {key: median, f"{key}_q1": low, f"{key}_q3": high}


def test_better_knows_the_direction_of_each_metric():
    assert better("test_acc", {"cnn": {"test_acc": 0.7}, "se": {"test_acc": 0.8}}) == "se"
    assert better("test_loss", {"cnn": {"test_loss": 0.7}, "se": {"test_loss": 0.8}}) == "cnn"
    assert better("parameters", {"cnn": {"parameters": 10}, "se": {"parameters": 10}}) == "tie"
    assert better("test_acc", {"se8": {"test_acc": 0.9}, "se": {"test_acc": 0.8}}) == "se8"


def test_a_timing_is_better_only_when_the_rounds_interquartile_ranges_do_not_overlap():
    """Issue 26: SE measured 5.97 ms in one run, 4.37 ms in a rerun; a 'better' inside that noise is no claim."""
    assert better("latency_ms", {"cnn": timed(2.0, 1.9, 2.2), "se": timed(1.0, 0.9, 1.1)}) == "se"
    assert better("latency_ms", {"cnn": timed(2.0, 1.5, 2.5), "se": timed(1.8, 1.2, 1.6)}) == "within timing noise"
    key = "throughput_images_per_s"
    assert better(key, {"cnn": timed(900, 850, 950, key), "se": timed(500, 480, 520, key)}) == "cnn"
    assert better(key, {"cnn": timed(900, 600, 950, key), "se": timed(500, 480, 700, key)}) == "within timing noise"


def test_training_wall_time_never_decides():
    assert better("train_seconds", {"cnn": {"train_seconds": 100.0}, "se": {"train_seconds": 300.0}}) == \
        "not compared (wall time)"


@pytest.mark.parametrize(("values", "key", "shown"), [
    (timed(4.372, 3.91, 5.51), "latency_ms", "4.4 [3.9, 5.5]"),  # a range of 1.6: tenths
    (timed(4.372, 4.2, 4.55), "latency_ms", "4.37 [4.20, 4.55]"),  # 0.35: hundredths
    (timed(12_345.6, 11_900, 12_700, "throughput_images_per_s"), "throughput_images_per_s",
     "12,350 [11,900, 12,700]"),  # 800: tens
    (timed(3.0, 3.0, 3.0), "latency_ms", "3.0000 [3.0000, 3.0000]"),  # no spread: no rounding claimed from it
    ({"train_seconds": 152.34}, "train_seconds", "152"),
    ({"parameters": 1_150_602}, "parameters", "1,150,602"),
    ({"flops_per_image": 22_756_608}, "flops_per_image", "22,756,608"),
    ({"test_acc": 0.8123, "test_acc_ci_low": 0.8, "test_acc_ci_high": 0.82}, "test_acc",
     "0.8123 [0.8000, 0.8200]"),
])
def test_cells_show_the_digits_their_spread_supports(values, key, shown):
    assert cell(key, values) == shown


def test_differences_of_timings_keep_the_digits_of_the_wider_range():
    assert difference("latency_ms", timed(4.372, 3.91, 5.51), timed(4.571, 4.4, 4.7)) == "+0.2"
    assert difference("train_seconds", {"train_seconds": 100.4}, {"train_seconds": 130.0}) == "+30"
    assert difference("parameters", {"parameters": 10}, {"parameters": 2698}) == "+2,688"


@pytest.mark.parametrize("diff,headline", [(0.0123, "SE is more accurate by 1.23 points"),
                                           (-0.005, "CNN is more accurate by 0.50 points"),
                                           (0.0, "Neither model is more accurate (equal test accuracy)")])
def test_accuracy_headline(diff, headline):
    assert accuracy_headline(diff, "cnn", "se") == headline


@pytest.mark.parametrize("value,signed,shown", [(0.12345, False, "0.1235"), (-0.5, True, "-0.5000"),
                                                (0.25, True, "+0.2500"), (1234567, False, "1,234,567"),
                                                (2048.0, True, "+2,048"), (123.456, False, "123.5"),
                                                (10, False, "10"), (-3, True, "-3")])
def test_format_number(value, signed, shown):
    assert format_number(value, signed) == shown


@pytest.mark.parametrize(("fraction", "shown"), [(0.029, "+2.90"), (-0.0123, "-1.23"), (-1e-17, "0.00"),
                                                 (-0.00004, "0.00"), (0.0, "0.00"), (-0.0, "0.00")])
def test_points_are_signed_except_zero(fraction, shown):
    assert points(fraction) == shown
