"""The README is the front door, read in five minutes; docs/ holds the reference. Every link between them
resolves, and every test docs/guarantees.md names exists."""

import ast
import re
from pathlib import Path

from helpers import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
# [text](target) and ![alt](target) in markdown, src="target" in the README's inline HTML
LINK = re.compile(r"\]\(([^()\s]+)\)|\bsrc=\"([^\"]+)\"")


def links(page: Path) -> list[str]:
    """The link targets of `page`, code blocks left out (a shell glob there is no link)."""
    prose = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return [a or b for a, b in LINK.findall(prose)]


def anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return {anchor(heading) for heading in re.findall(r"^#+ (.+)$", prose, flags=re.M)}


def broken(page: Path) -> list[str]:
    """The relative links of `page` whose file, or whose heading in that file, does not exist."""
    bad = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # http(s)://, mailto: ...: not this repository's
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.is_file() or (fragment and fragment not in anchors(linked)):
            bad.append(target)
    return bad


def test_the_readme_is_read_in_five_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move reference into docs/*.md"


def test_the_two_commands_come_first_and_ci_runs_the_readmes_test_command():
    first_block = re.search(r"^```bash\n(.*?)^```", README.read_text(), flags=re.S | re.M).group(1)
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == ["make repro", "make test"]
    ci = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert [line for line in ci if re.fullmatch(r"make test( [A-Z_]+=.*)?", line)]  # make's variables may follow


def test_every_link_of_the_readme_and_of_docs_resolves():
    assert {page: broken(page) for page in [README, *DOCS] if broken(page)} == {}


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(REPO / target.partition("#")[0]).resolve() for target in links(README)}
    assert [page.name for page in DOCS if page.resolve() not in linked] == []


def test_the_readme_names_no_module_the_layout_speaks():
    """Modules move; the README describes behaviour and commands, and docs/ may name code."""
    assert re.findall(r"seecam/\w[\w/]*\.py|seecam\.\w+", README.read_text()) == []


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
