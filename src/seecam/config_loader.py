"""Load YAML into nested frozen dataclasses, checking every key, type and value.

Generic: nothing here knows seecam's params (params.py is the schema). A
field's type hint says what its value must be (bool, int, float, str, a
Literal, a list, a nested dataclass, a `dict[str, X]` of named entries); a
dataclass may add a `problems()` method yielding (key, message) for its value
checks. A dict field whose metadata holds TAGGED = (tag key, {tag: dataclass})
builds each entry as the dataclass its tag names (params.py's `kind:`), so
entries of one dict may have different keys. The first unknown key,
wrong type or bad value stops with one line naming the dotted key and what is
allowed, so a typo never runs on a silent default.

The YAML itself is read by `_ParamsLoader`, PyYAML's safe loader minus what lets a small file become a big or
ambiguous one: aliases (a ~700-byte "billion laughs" under a real key took 49 s and 4.4 GB to report), duplicate
keys (the last one silently won; DVC's own parser refuses them) and values Python cannot build (a 5000-digit
integer, the 13th month) are each one line naming the line of the file.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import yaml

from seecam.errors import SeecamError

Config = TypeVar("Config")
TAGGED = "tagged"  # field metadata: (tag key, {tag: dataclass}) for a dict of differently shaped entries


def load_config(cls: type[Config], path: str | Path) -> Config:
    """Read and validate the YAML file at `path` as a `cls`; raise SeecamError naming the first bad key."""
    return parse_config(cls, read_yaml(path), source=str(Path(path)))


def read_yaml(path: str | Path) -> Any:
    """The YAML file at `path`, read by _ParamsLoader; one line for a missing, non-UTF-8, invalid or empty file."""
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
        raw = yaml.load(text, Loader=_ParamsLoader)  # noqa: S506 (a SafeLoader, stricter still)
    except _Refused as exc:
        raise SeecamError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SeecamError(f"{path}: not valid YAML ({next(iter(str(exc).splitlines()), 'parse error')})") from None
    except RecursionError:
        raise SeecamError(f"{path}: nested too deeply to be params") from None
    if raw is None:  # an empty or all-comment file: running on silent defaults would hide a lost file
        raise SeecamError(f"{path}: has no keys; restore it (git checkout {path.name}) or set the keys you want")
    return raw


class _Refused(Exception):
    """What _ParamsLoader will not read, with the line it is on."""


class _ParamsLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases before they are expanded, duplicate keys, and values it cannot build."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(f"line {event.start_mark.line + 1}: YAML alias *{shown(event.anchor)[1:-1]} refused "
                           "(aliases can expand a small file to gigabytes); write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class says so
                continue
            if duplicate:
                raise _Refused(f"line {key_node.start_mark.line + 1}: duplicate key {shown(key)} "
                               "(DVC refuses it too); keep one")
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as exc:  # int() past 4300 digits, datetime.date() of a 13th month...
            reason = str(exc).split(":")[0]
            raise _Refused(f"line {node.start_mark.line + 1}: cannot read {shown(node.value)}: {reason}") from None


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
    values = {name: _convert(hints[name], raw[name], f"{prefix}{name}", source, fields[name].metadata)
              for name in raw}
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, source: str, metadata: Mapping[str, Any] = MappingProxyType({})) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.", source)
    origin = typing.get_origin(hint)
    if origin is dict:
        return _named(hint, value, key, source, metadata.get(TAGGED))
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


def _named(hint: Any, value: Any, key: str, source: str, tagged: tuple[str, Mapping[str, type]] | None) -> dict:
    """A mapping of names to entries, each checked as `hint`'s value type, or as the dataclass its tag names."""
    if not isinstance(value, Mapping):
        raise SeecamError(f"{source}: {key} must be a mapping of names, got {type(value).__name__}")
    item = typing.get_args(hint)[1]
    if tagged is None:
        return {name: _convert(item, entry, f"{key}.{name}", source) for name, entry in value.items()}
    tag, classes = tagged
    out = {}
    for name, entry in value.items():
        where = f"{key}.{name}"
        if not isinstance(entry, Mapping):
            raise SeecamError(f"{source}: {where} must be a mapping of keys, got {type(entry).__name__}")
        if tag not in entry:
            raise SeecamError(f"{source}: {where}.{tag} is missing: one of {', '.join(classes)}")
        chosen = entry[tag]
        if not isinstance(chosen, str) or chosen not in classes:
            raise SeecamError(f"{source}: {where}.{tag} must be one of {', '.join(classes)}, got {shown(chosen)}")
        out[name] = _build(classes[chosen], {k: v for k, v in entry.items() if k != tag}, f"{where}.", source)
    return out


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


class _ShortRepr(reprlib.Repr):
    """reprlib's bounded repr (a few items per level, a few levels), also for integers past str()'s 4300 digits."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4000:
            return f"<an integer of {x.bit_length():,} bits>"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlong = 40


def shown(value: Any) -> str:
    """The one way an error message echoes a value the user gave: its repr, cut to a readable length.

    Bounded in time and memory, not only in length: only the part shown is ever built, so a message stays one
    short line, made at once, whatever was in the file or on the command line.
    """
    if isinstance(value, str) and len(value) > 60:
        return f"{value[:60]!r}... ({len(value):,} characters)"
    text = _SHORT.repr(value)
    return text if len(text) <= 80 else f"{text[:60]}..."


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
        elif isinstance(child, dict):
            for name, entry in child.items():
                if dataclasses.is_dataclass(entry):
                    yield from _problems(entry, f"{prefix}{f.name}.{name}.")
    if hasattr(obj, "problems"):
        for name, problem in obj.problems():
            yield f"{prefix}{name}", problem
