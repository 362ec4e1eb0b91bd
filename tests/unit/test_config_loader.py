"""The generic loader on a schema of its own: YAML -> nested frozen dataclasses, each bad key one line.

tests/unit/test_params.py checks seecam's params through it; this file checks what the loader promises any
schema: hints decide types, `problems()` runs children first under dotted keys, tagged dicts build each entry as
its tag says, and a file becomes the same object as the mapping it holds.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import pytest

from seecam.config_loader import TAGGED, flatten, load_config, parse_config, shown
from seecam.errors import SeecamError


@dataclass(frozen=True)
class Square:
    side: float = 1.0


@dataclass(frozen=True)
class Circle:
    radius: float = 1.0

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.radius <= 0:
            yield "radius", "must be > 0"


@dataclass(frozen=True)
class Grid:
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    mode: Literal["fast", "exact"] = "fast"


@dataclass(frozen=True)
class Drawing:
    name: str = "untitled"
    scale: float = 1.0
    steps: int = 3
    shaded: bool = False
    grid: Grid = field(default_factory=Grid)
    weights: dict[str, float] = field(default_factory=dict)
    shapes: dict[str, object] = field(default_factory=dict,
                                      metadata={TAGGED: ("kind", {"square": Square, "circle": Circle})})

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.steps < len(self.grid.sizes):
            yield "steps", f"must be >= the {len(self.grid.sizes)} grid sizes"


def parse(raw: dict) -> Drawing:
    return parse_config(Drawing, raw, source="drawing.yaml")


def test_a_full_mapping_builds_every_kind_of_field():
    drawing = parse({"name": "d", "scale": 2, "steps": 5, "shaded": True, "grid": {"sizes": [4, 5], "mode": "exact"},
                     "weights": {"a": 0.5}, "shapes": {"s": {"kind": "square", "side": 3}, "c": {"kind": "circle"}}})
    assert drawing == Drawing("d", 2.0, 5, True, Grid([4, 5], "exact"), {"a": 0.5},
                              {"s": Square(3.0), "c": Circle()})
    assert isinstance(drawing.scale, float) and isinstance(drawing.shapes["s"].side, float)  # an int is a number


def test_missing_keys_keep_their_defaults():
    assert parse({}) == Drawing()
    assert parse({"grid": {"mode": "exact"}}).grid == Grid([1, 2], "exact")


@pytest.mark.parametrize(("raw", "message"), [
    ({"colour": "red"}, "unknown key 'colour' (allowed: name, scale, steps, shaded, grid, weights, shapes)"),
    ({"grid": {"size": [1]}}, "unknown key 'grid.size' (allowed: sizes, mode)"),
    ({"steps": 2.5}, "steps must be an integer, got 2.5"),
    ({"steps": True}, "steps must be an integer, got True"),  # YAML's true is no 1
    ({"scale": False}, "scale must be a number, got False"),
    ({"scale": ".nan"}, "scale must be a number, got '.nan'"),
    ({"scale": 1e400}, "scale must be a finite number, got inf"),
    ({"scale": 10**400}, "scale must be a finite number, got"),
    ({"shaded": "yes"}, "shaded must be true or false, got 'yes'"),
    ({"name": 7}, "name must be a string, got 7"),
    ({"grid": {"mode": "slow"}}, "grid.mode must be one of fast, exact, got 'slow'"),
    ({"grid": {"sizes": 3}}, "grid.sizes must be a list, got 3"),
    ({"grid": {"sizes": [1, "x"]}}, "grid.sizes[1] must be an integer, got 'x'"),
    ({"grid": [1]}, "grid must be a mapping of keys, got list"),
    ({"weights": {"a": "heavy"}}, "weights.a must be a number, got 'heavy'"),
    ({"weights": [1]}, "weights must be a mapping of names, got list"),
    ({"shapes": {"s": {"side": 1}}}, "shapes.s.kind is missing: one of square, circle"),
    ({"shapes": {"s": {"kind": "star"}}}, "shapes.s.kind must be one of square, circle, got 'star'"),
    ({"shapes": {"s": {"kind": "square", "radius": 1}}}, "unknown key 'shapes.s.radius' (allowed: side)"),
    ({"shapes": {"s": 4}}, "shapes.s must be a mapping of keys, got int"),
])
def test_each_bad_value_is_one_line_naming_its_dotted_key(raw, message):
    with pytest.raises(SeecamError) as error:
        parse(raw)
    assert str(error.value).startswith(f"drawing.yaml: {message}"), str(error.value)
    assert "\n" not in str(error.value)


def test_an_exponent_yaml_1_1_reads_as_a_string_is_a_number():
    assert parse({"scale": "1e-3"}).scale == 0.001


def test_value_checks_run_children_first_under_their_dotted_key():
    with pytest.raises(SeecamError, match=r"^drawing\.yaml: shapes\.c\.radius must be > 0$"):
        parse({"steps": 0, "shapes": {"c": {"kind": "circle", "radius": 0}}})  # steps is bad too, but later
    with pytest.raises(SeecamError, match=r"^drawing\.yaml: steps must be >= the 2 grid sizes$"):
        parse({"steps": 1})


def test_a_hint_the_loader_cannot_check_is_a_bug_not_a_user_error():
    @dataclass(frozen=True)
    class Loose:
        either: int | str = 0

    with pytest.raises(TypeError, match="unsupported params type for either"):
        parse_config(Loose, {"either": 1}, source="x")


def test_a_file_loads_as_its_mapping_and_errors_name_the_file(tmp_path):
    path = tmp_path / "drawing.yaml"
    path.write_text("scale: 2.5\ngrid:\n  sizes: [3]\nshapes:\n  c: {kind: circle, radius: 2}\n")
    assert load_config(Drawing, path) == Drawing(scale=2.5, grid=Grid([3]), shapes={"c": Circle(2.0)})
    path.write_text("grid:\n  mode: slow\n")
    with pytest.raises(SeecamError) as error:
        load_config(Drawing, path)
    assert str(error.value) == f"{path}: grid.mode must be one of fast, exact, got 'slow'"


def test_flatten_names_every_leaf_by_its_dotted_path():
    assert flatten(Drawing(grid=Grid([4], "exact")), "drawing.") == {
        "drawing.name": "untitled", "drawing.scale": 1.0, "drawing.steps": 3, "drawing.shaded": False,
        "drawing.grid.sizes": [4], "drawing.grid.mode": "exact", "drawing.weights": {}, "drawing.shapes": {}}


@pytest.mark.parametrize(("value", "echo"), [
    ("red", "'red'"),
    ("x" * 61, f"{'x' * 60!r}... (61 characters)"),
    (list(range(100)), "[0, 1, 2, 3, 4, 5, ...]"),
    (10**5000, "<an integer of 16,610 bits>"),
], ids=["short", "long string", "long list", "huge integer"])
def test_an_echoed_value_is_its_repr_cut_to_one_short_line(value, echo):
    assert shown(value) == echo
