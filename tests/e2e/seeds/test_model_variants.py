"""Issue 25: a model variant is data. The README's "Add a model variant" steps, taken literally (its two YAML
blocks pasted into params.yaml and dvc.yaml), in a repo that already has a verdict across three seeds (a copy of
seeds/conftest.py's sweep, seed 0 applied): `dvc repro` trains the new models alone, every table and figure takes
them, the verdict stays the page's answer, nothing undeclared is left for git, and a 2-seed sweep gives each new
model its own verdict. Two models are added together, each by the README's two edits: `se8` (a variant of a kind
in the pipeline) and `eca` (a kind shipped but not in the default pipeline); one `dvc repro` and one sweep.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import REPO, UNUSUAL_DIR, RepoCopy, copy_with_store, mlflow_client, records_of

EVALUATE_FIGURES = {"confusion.png", "reliability.png", "per_class_accuracy.png"}
SHARED_EXPLAIN_FIGURES = {"gradcam_side_by_side.png", "cam_methods.png", "se_excitation.png", "se_mistakes.png"}


def readme_blocks() -> tuple[str, str]:
    """The two YAML blocks of the README's "Add a model variant": the params block and the stage, for se8."""
    section = (REPO / "README.md").read_text().split("## Add a model variant\n", 1)[1].split("\n## ", 1)[0]
    params_block, stage = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return params_block, stage


def add_model(root: Path, name: str, kind_lines: str | None = None) -> None:
    """The README's two edits for model `name`: its block at the end of `models:` in params.yaml (the README's se8
    block, or `kind_lines` in place of its fields) and its stage after train_se in dvc.yaml."""
    params_block, stage = readme_blocks()
    if kind_lines is not None:
        params_block = "  se8:\n" + kind_lines
    params = root / "params.yaml"
    lines = params.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if re.match(r"models:(\s|$)", line))
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"[^\s#]", lines[i]))  # after the last block
    params.write_text("".join([*lines[:end], params_block.replace("se8", name), *lines[end:]]))
    pipeline = root / "dvc.yaml"
    text = pipeline.read_text()
    after_train_se = text.index("\n\n", text.index("\n  train_se:\n")) + 1
    pipeline.write_text(text[:after_train_se] + "\n" + stage.replace("se8", name) + text[after_train_se:])


def seecam(repo: RepoCopy, *args: str) -> str:
    return repo.run(sys.executable, "-m", "seecam.cli", *args, PYTHONPATH=str(repo.root / "src"), timeout=1200).stdout


def trainings(root: Path, model: str) -> list:
    """The training runs (not evaluate/explain/report records, which are their children) of `model`."""
    client = mlflow_client(root)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], f"tags.model = '{model}'")
    return [run for run in runs if "mlflow.parentRunId" not in run.data.tags]


def run_ids(root: Path, names: tuple[str, ...]) -> dict[str, dict]:
    return {name: json.loads((root / f"reports/train/{name}/run.json").read_text()) for name in names}


@dataclass
class Added:
    """What the workspace showed right after `dvc repro` with the models `names` added, and each one's verdict after
    the sweep."""

    names: tuple[str, ...]
    before: tuple[str, ...]  # the models already there
    status: str  # `dvc status` of their train stages, before the repro
    log: str  # `dvc repro`'s output
    trained: dict[str, dict]  # their run.json, before the repro
    after: dict[str, dict]  # and after it
    comparison: str
    evaluation: dict
    explain: dict
    page: str
    plotted: list[set[str]]  # the models in each of `dvc plots show`'s charts
    untracked: list[str]  # `git status` lines of files git does not know
    verdicts: dict[str, dict] = field(default_factory=dict)  # by added model


@pytest.fixture(scope="module")
def added(sweep, tmp_path_factory) -> tuple[RepoCopy, Added]:
    """A copy of the three-seed sweep (cnn and se) with seed 0's experiment applied and committed: the page shows
    the verdict from the next `dvc repro` on. Then se8 and eca, each added by the README's two edits, one
    `dvc repro`, committed; then a 2-seed sweep up to evaluate (what the verdict pools) and each one's verdict
    against cnn."""
    repo = copy_with_store(sweep.repo, tmp_path_factory.mktemp("variants") / UNUSUAL_DIR)
    root = repo.root
    repo.dvc("exp", "apply", sweep.names[0])  # seed 0's params (the sweep's -S included) and outputs
    repo.dvc("commit", "-f")  # the .gitignore entries of the cached outputs, which `dvc exp apply` (3.67) leaves out
    assert "3 seeds" in seecam(repo, "verdict")
    repo.commit("cnn and se, a verdict across three seeds")

    before = ("cnn", "se")
    trained = run_ids(root, before)
    status = repo.dvc("status", *(f"train_{model}" for model in before)).stdout
    add_model(root, "se8")
    add_model(root, "eca", "    kind: eca\n")
    log = repo.dvc("repro").stdout
    plots = json.loads(repo.dvc("plots", "show", "--json").stdout)["data"]
    found = Added(
        ("se8", "eca"), before, status, log, trained, run_ids(root, before),
        (root / "reports/evaluate/comparison.md").read_text(),
        json.loads((root / "reports/evaluate/metrics.json").read_text()),
        json.loads((root / "reports/explain/metrics.json").read_text()),
        (root / "reports/index.html").read_text(),
        [{row["model"] for row in chart["content"]["data"]["values"]} for chart, *_ in plots.values()],
        [line for line in repo.run("git", "status", "--porcelain", "--untracked-files=all").stdout.splitlines()
         if line.startswith("??")])
    repo.commit("add se8 and eca")
    seecam(repo, "sweep", "--seeds", "0-1", "evaluate", "--run", "-j", "2")  # the verdict reads evaluate's records
    for name in found.names:
        seecam(repo, "verdict", "--candidate", name)
        found.verdicts[name] = json.loads((root / "reports/verdict/verdict.json").read_text())
    return repo, found


def test_the_added_models_train_alone_every_table_and_chart_takes_them_and_the_verdict_stays(added):
    """`dvc repro` after the README's two edits for each model: the new models train alone, every table and chart
    takes them, the verdict stays, nothing is left undeclared; the sweep trains only them."""
    repo, added = added
    root, names = repo.root, (*added.before, *added.names)
    assert "up to date" in added.status, added.status
    ran = re.findall(r"^Running stage '(\w+)'", added.log, re.MULTILINE)
    assert sorted(ran) == sorted([*(f"train_{name}" for name in added.names), "evaluate", "explain", "report"]), \
        added.log
    assert added.after == added.trained  # the same runs, identities and files: nothing else retrained

    # every table: evaluate's, the report's metrics and faithfulness tables, in params.yaml's order
    deltas = "".join(f" {model} − cnn | better |" for model in names[1:])
    assert f"| metric | {' | '.join(names)} |{deltas}" in added.comparison, added.comparison
    assert set(added.evaluation["comparison"]) == set(names[1:])
    # the verdict (cnn vs se, seeds 0-2) is still this page's answer
    assert "Verdict across seeds" in added.page and "not this page's answer" not in added.page
    # dvc.yaml's plots draw them from evaluate's long table
    assert added.plotted == [set(names)] * 3
    # no undeclared output: the new files are DVC's own .gitignore for each new model's folder
    assert sorted(added.untracked) == [f"?? reports/train/{name}/.gitignore" for name in sorted(added.names)]
    # the sweep: the models there before came from DVC's run cache (the first sweep trained cnn and se for seeds
    # 0-2); the new ones trained for seed 0 in the workspace, for seed 1 in the sweep
    assert [len(trainings(root, model)) for model in names] == [3, 3, 2, 2]


@pytest.mark.parametrize("name", ["se8", "eca"])
def test_an_added_model_reaches_the_page_and_its_mlflow_records_and_gets_its_own_verdict(added, name):
    """se8 (a variant of the se kind) and eca (a kind shipped but not in the default pipeline): each one's numbers
    on the page, every figure showing it on its MLflow records, and a verdict against cnn pooling two seeds."""
    repo, added = added
    root = repo.root
    if name == "eca":
        assert "kind: eca" in (root / "params.yaml").read_text()
    assert added.evaluation["comparison"][name]["acc_diff"] == pytest.approx(
        added.evaluation[name]["test_acc"] - added.evaluation["cnn"]["test_acc"])
    assert added.page.count(f"<th>{name} − cnn</th>") == 1 and added.page.count(f"<th>{name}</th>") >= 2
    # every figure: evaluate's and explain's shared figures go to the MLflow record of each model they show
    client = mlflow_client(root)
    run_id = json.loads((root / f"reports/train/{name}/run.json").read_text())["run_id"]
    assert run_id in added.page
    (evaluated, *_), (explained, *_) = (records_of(client, run_id, stage) for stage in ("evaluate", "explain"))
    assert {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(evaluated.info.run_id, "figures/evaluate")} \
        == EVALUATE_FIGURES
    explained_figures = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(explained.info.run_id,
                                                                                  "figures/explain")}
    # both kinds have gates: the excitation figures show them
    assert explained_figures == SHARED_EXPLAIN_FIGURES | {f"feature_maps_{name}.png", f"top_channels_{name}.png"}
    assert any(key.startswith("se_excitation/") for key in added.explain[name])
    verdict = added.verdicts[name]
    assert (verdict["baseline"], verdict["candidate"], verdict["seeds"]) == ("cnn", name, 2), verdict
    assert sorted(verdict["per_seed"]) == ["0", "1"]
