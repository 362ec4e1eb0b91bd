"""Property-based fuzzing of params validation (issue #9: 13 of 87 fuzzed params validated and then crashed).

Each example mutates the repo's valid params.yaml: values of other types, negative/zero/huge numbers, NaN,
infinities, empty and random strings, URIs, unknown keys, missing sections, nested wrong shapes, bytes that
are not UTF-8. The property: validation either returns Params whose every value lies within the documented
bounds (restated here, independently of params.py), or raises SeecamError with one line that starts with the
key at fault; never another exception.
"""

from __future__ import annotations

import copy
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import REPO
from seecam.config_loader import flatten
from seecam.errors import SeecamError
from seecam.params import KINDS, Params, SeParams, load_params, parse_params

BASE = yaml.safe_load((REPO / "params.yaml").read_text())
# derandomize: CI must give the same verdict on the same code; widen max_examples locally to explore more.
FUZZ = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

# The documented bounds (docs/parameters.md); sizes are all bounded above.
SEED = (0, 2**32 - 1)
BOUNDS: dict[str, tuple[float, float]] = {
    "seed": SEED, "data.synthetic.seed": SEED, "data.split_seed": SEED, "evaluate.bootstrap_seed": SEED,
    "data.val_size": (0, 100_000), "data.subset": (0, 100_000), "data.timeout_seconds": (1e-300, 3600),
    "data.deadline_seconds": (1e-300, 86_400),
    "data.retries": (0, 10), "data.synthetic.train_size": (10, 100_000), "data.synthetic.test_size": (10, 100_000),
    "train.epochs": (1, 10_000), "train.batch_size": (1, 10_000), "train.lr": (1e-300, math.inf),
    "train.weight_decay": (0, math.inf), "train.lr_patience": (0, 10_000), "train.lr_factor": (1e-300, 1 - 1e-16),
    "train.augment.crop_padding": (0, 32), "train.augment.brightness": (0, 1), "train.augment.contrast": (0, 1),
    "train.augment.saturation": (0, 1), "train.augment.hue": (0, 0.5), "train.augment.rotation_degrees": (0, 180),
    "evaluate.batch_size": (1, 10_000), "evaluate.bootstrap_samples": (1, 100_000), "evaluate.ece_bins": (1, 1000),
    "evaluate.latency_repeats": (1, 1000), "evaluate.timing_rounds": (3, 100), "evaluate.throughput_batch": (1, 10_000),
    "explain.batch_size": (1, 10_000), "explain.faithfulness_samples": (1, 10_000),
    "explain.deletion_steps": (1, 1024), "explain.feature_map_channels": (1, 64), "explain.top_channels": (1, 64),
    "explain.mistakes": (1, 64),
}
BOUNDS |= {"models.*.hidden": (1, 16_384), "models.*.dropout": (0, 1 - 1e-16)}  # any model's name for *
TRACKING_URI = re.compile(r"$|https?://[^/]|sqlite:///.|(postgresql|mysql|mssql)(\+\w+)?://.|file://.|databricks")


def all_keys() -> set[str]:
    """Dotted keys of the valid params, sections included (from flatten, which lists every leaf; a model's keys
    as models.*.<key>, since its name is the user's)."""
    leaves = set(flatten(Params())) - {"models"}
    leaves |= {"models.*.kind"} | {f"models.*.{key}" for cls in KINDS.values() for key in flatten(cls())}
    return leaves | {".".join(k.split(".")[:i]) for k in leaves for i in range(1, k.count(".") + 1)}


KNOWN_KEYS = all_keys()


def generic(key: str) -> str:
    """`models.se8.reduction` -> `models.*.reduction`: the key whatever the model's name."""
    parts = key.split(".")
    return ".".join(["models", "*", *parts[2:]]) if parts[0] == "models" and len(parts) > 1 else key


def leaf_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [prefix] * bool(prefix) + [p for k, v in node.items() for p in leaf_paths(v, (*prefix, k))]
    return [prefix]


PATHS = leaf_paths(BASE)

weird_values = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**32 - 1, 2**32, 2**63, 10**12, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324]),
    st.text(max_size=20),
    st.sampled_from(["", "nan", ".nan", "inf", "-inf", "1e400", "1e-3", "notascheme", "ftp://x/y", "http://",
                     "https:///x", "sqlite://", "sqlite:///m.db", "file:///tmp/x", "databricks", "s3://b/k",
                     "http://[::1", "head.fc1", "head.fc2", "block3.se", "block3.bn", "block9", "block1.se.fc1",
                     "a\nb", "\x00", "caf\xe9", "x" * 600]),
    st.builds(lambda scheme, rest: scheme + rest,
              st.sampled_from(["http://", "https://", "sqlite:///", "postgresql://", "mysql+pymysql://", "ftp://",
                               "file://", "databricks://", "", "c:", "//"]), st.text(max_size=15)),
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=7),
    st.lists(st.one_of(st.text(max_size=3), st.floats(), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@st.composite
def mutation(draw: st.DrawFn, raw: dict) -> None:
    """Apply one change to `raw` in place: a weird value, a scaled number, a missing or an unknown key."""
    path = draw(st.sampled_from(PATHS))
    *parents, last = path
    node = raw
    for part in parents:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return  # an earlier mutation replaced this section
        node = node[part]
    if not isinstance(node, dict):
        return
    kind = draw(st.sampled_from(["value", "value", "scale", "delete", "unknown"]))
    current = node.get(last)
    if kind == "value":
        node[last] = draw(weird_values)
    elif kind == "scale" and isinstance(current, int | float) and not isinstance(current, bool):
        node[last] = current * draw(st.sampled_from([-1, 0, 2, 10**3, 10**6, 10**12, 10**30]))
    elif kind == "delete":
        node.pop(last, None)
    else:
        node[draw(st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans()))] = draw(weird_values)


@st.composite
def mutated_params(draw: st.DrawFn) -> dict:
    raw = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        draw(mutation(raw))
    return raw


def assert_one_line_naming_a_key(message: str) -> None:
    assert "\n" not in message and len(message) < 500, message
    assert message.startswith("params.yaml: "), message
    rest = message.removeprefix("params.yaml: ")
    if rest.startswith("unknown key "):
        return
    key = re.sub(r"\[\d+\]", "", rest.split(" ")[0])
    assert generic(key) in KNOWN_KEYS, message


def assert_within_bounds(params: Params) -> None:
    leaves = flatten(params) | {key: value for name, block in params.models.items()
                                for key, value in flatten(block, "models.*.").items()}
    for key, value in leaves.items():
        if key in BOUNDS:
            low, high = BOUNDS[key]
            assert math.isfinite(value) and low <= value <= high, (key, value)
        if isinstance(value, str):
            assert value.isprintable(), (key, value)
    assert params.data.val_size < params.data.train_size
    assert 2 <= len(params.models) <= 10 and params.evaluate.baseline in params.models
    for name, block in params.models.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name), name
        assert 1 <= len(block.channels) <= 5 and all(1 <= c <= 4096 for c in block.channels), (name, block)
        assert not isinstance(block, SeParams) or 1 <= block.reduction <= min(block.channels)
    assert 1 <= len(params.explain.images) <= 64 and min(params.explain.images) >= 0
    assert re.fullmatch(r"block[1-5](\.(conv|bn|relu|pool))?", params.explain.layer)
    assert int(params.explain.layer[5]) <= min(len(block.channels) for block in params.models.values())
    assert TRACKING_URI.match(params.tracking.uri) and " " not in params.tracking.uri
    assert 1 <= len(params.tracking.experiment) <= 500


def validate(raw: Any) -> None:
    try:
        params = parse_params(raw, source="params.yaml")
    except SeecamError as exc:
        event("refused")  # --hypothesis-show-statistics shows how the examples split
        assert_one_line_naming_a_key(str(exc))
    else:
        event("validated")
        assert_within_bounds(params)


@FUZZ
@given(mutated_params())
def test_mutated_params_validate_within_bounds_or_name_the_key(raw):
    validate(raw)


@FUZZ
@given(mutated_params(), st.lists(st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=3)),
                                  max_size=2))
def test_params_files_with_any_bytes_load_or_fail_in_one_line(raw, splices):
    """The same mutations written as a file, with random bytes spliced in (bad encodings, broken YAML)."""
    data = yaml.safe_dump(raw, allow_unicode=True).encode()
    for position, chunk in splices:
        position %= len(data) + 1
        data = data[:position] + chunk + data[position:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_bytes(data)
        try:
            params = load_params(path)
        except SeecamError as exc:
            event("refused")
            message = str(exc).replace(str(path), "params.yaml")
            assert "\n" not in message and message.startswith("params.yaml: "), message
            assert len(message) < 500, message
        else:
            event("validated")
            assert_within_bounds(params)
