"""The README is the front door; docs/guarantees.md holds its promises: every test it names must exist."""

import ast
import re

from helpers import REPO


def test_every_test_the_guarantees_name_exists():
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", (REPO / "docs/guarantees.md").read_text()))
    assert len(named) >= 20
    missing = []
    for path, name in sorted(named):
        source = REPO / path
        tests = {node.name for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.FunctionDef)} \
            if source.is_file() else set()
        if name not in tests:
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/guarantees.md names tests that do not exist: {missing}"
