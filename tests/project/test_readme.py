"""The README is the front door: every test its Guarantees section names must exist."""

import ast
import re

from helpers import REPO


def test_every_test_the_guarantees_name_exists():
    readme = (REPO / "README.md").read_text()
    guarantees = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", guarantees))
    assert len(named) >= 20
    missing = []
    for path, name in sorted(named):
        source = REPO / path
        tests = {node.name for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.FunctionDef)} \
            if source.is_file() else set()
        if name not in tests:
            missing.append(f"{path}::{name}")
    assert not missing, f"README Guarantees name tests that do not exist: {missing}"
