"""Load YAML into nested frozen dataclasses, checking every key, type and value.

Generic: nothing here knows seecam's params (params.py is the schema). A
field's type hint says what its value must be (bool, int, float, str, a
Literal, a list, a nested dataclass); a dataclass may add a `problems()`
method yielding (key, message) for its value checks. The first unknown key,
wrong type or bad value stops with one line naming the dotted key and what is
allowed, so a typo never runs on a silent default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from seecam.errors import SeecamError

Config = TypeVar("Config")


def load_config(cls: type[Config], path: str | Path) -> Config:
    """Read and validate the YAML file at `path` as a `cls`; raise SeecamError naming the first bad key."""
    path = Path(path)
    if not path.is_file():
        raise SeecamError(f"{path}: not found; run from the repo root or pass the params file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SeecamError(f"{path}: not UTF-8 text ({data[exc.start:exc.start + 1]!r} on line {line}); "
                          "save it as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SeecamError(f"{path}: not valid YAML ({next(iter(str(exc).splitlines()), 'parse error')})") from None
    except RecursionError:
        raise SeecamError(f"{path}: nested too deeply to be params") from None
    if raw is None:  # an empty or all-comment file: running on silent defaults would hide a lost file
        raise SeecamError(f"{path}: has no keys; restore it (git checkout {path.name}) or set the keys you want")
    return parse_config(cls, raw, source=str(path))


def parse_config(cls: type[Config], raw: Mapping[str, Any], source: str) -> Config:
    """Build a `cls` from a plain mapping, checking keys, types and values."""
    config = _build(cls, raw, prefix="", source=source)
    for key, problem in _problems(config, prefix=""):
        raise SeecamError(f"{source}: {key} {problem}")
    return config


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys -> values, e.g. {'train.lr': 0.001}, for MLflow params."""
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            out.update(flatten(getattr(obj, f.name), f"{prefix}{f.name}."))
        return out
    return {prefix.rstrip("."): obj}


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, Mapping):
        where = prefix.rstrip(".") or "the top level"
        raise SeecamError(f"{source}: {where} must be a mapping of keys, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(str(key) for key in raw if key not in fields)  # YAML keys may be ints, bools, null...
    if unknown:
        raise SeecamError(f"{source}: unknown key {shown(prefix + unknown[0])} (allowed: {', '.join(fields)})")
    values = {name: _convert(hints[name], raw[name], f"{prefix}{name}", source) for name in raw}
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, source: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.", source)
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise SeecamError(f"{source}: {key} must be one of {', '.join(map(str, allowed))}, got {shown(value)}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise SeecamError(f"{source}: {key} must be a list, got {shown(value)}")
        return [_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported params type for {key}: {hint}")
    return _scalar(hint, value, key, source)


def _scalar(hint: type, value: Any, key: str, source: str) -> Any:
    if hint is float and isinstance(value, str):
        value = _yaml11_float(value)
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
        raise SeecamError(f"{source}: {key} must be {kind}, got {shown(value)}")
    if hint is float:
        return _finite(value, key, source)
    return hint(value)


def _finite(value: int | float, key: str, source: str) -> float:
    """No float param means anything as NaN or infinity, and NaN passes every `<` bound check."""
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    if not math.isfinite(number):
        raise SeecamError(f"{source}: {key} must be a finite number, got {shown(value)}")
    return number


def shown(value: Any) -> str:
    """repr cut to a readable length: the message stays one short line whatever was in the file."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _yaml11_float(text: str) -> float | str:
    """PyYAML (YAML 1.1) reads `1e-3` as a string; DVC's `-S train.lr=1e-3` writes it so."""
    try:
        return float(text)
    except ValueError:
        return text


def _problems(obj: Any, prefix: str) -> Iterator[tuple[str, str]]:
    # Children first: a parent's cross-key checks (in params: model size, explain.layer) may assume valid children.
    for f in dataclasses.fields(obj):
        child = getattr(obj, f.name)
        if dataclasses.is_dataclass(child):
            yield from _problems(child, f"{prefix}{f.name}.")
    if hasattr(obj, "problems"):
        for name, problem in obj.problems():
            yield f"{prefix}{name}", problem
