import pytest

from seecam.tables import accuracy_headline, better, format_number, points


def test_better_knows_the_direction_of_each_metric():
    assert better("test_acc", {"cnn": 0.7, "se": 0.8}) == "se"
    assert better("test_loss", {"cnn": 0.7, "se": 0.8}) == "cnn"
    assert better("latency_ms", {"cnn": 2.0, "se": 1.0}) == "se"
    assert better("parameters", {"cnn": 10, "se": 10}) == "tie"
    assert better("test_acc", {"se8": 0.9, "se": 0.8}) == "se8"


@pytest.mark.parametrize("diff,headline", [(0.0123, "SE is more accurate by 1.23 points"),
                                           (-0.005, "CNN is more accurate by 0.50 points"),
                                           (0.0, "Neither model is more accurate (equal test accuracy)")])
def test_accuracy_headline(diff, headline):
    assert accuracy_headline(diff, "cnn", "se") == headline


@pytest.mark.parametrize("value,signed,shown", [(0.12345, False, "0.1235"), (-0.5, True, "-0.5000"),
                                                (0.25, True, "+0.2500"), (1234567, False, "1,234,567"),
                                                (2048.0, True, "+2,048"), (123.456, False, "123.5")])
def test_format_number(value, signed, shown):
    assert format_number(value, signed) == shown


@pytest.mark.parametrize(("fraction", "shown"), [(0.029, "+2.90"), (-0.0123, "-1.23"), (-1e-17, "0.00"),
                                                 (-0.00004, "0.00"), (0.0, "0.00"), (-0.0, "0.00")])
def test_points_are_signed_except_zero(fraction, shown):
    assert points(fraction) == shown
