"""Adding a model variant is a registry entry, a params block and a stage block: nothing else.

A temp copy of the repo registers `se8` (SE with reduction 8) that way, and `dvc repro` must train,
evaluate, explain and report all three models, with se8 as the comparison's candidate.
"""

import json

import pytest
import yaml

from helpers import mlflow_client, records_of

REGISTRY = 'MODELS: dict[str, type[CnnParams]] = {"cnn": CnnParams, "se": SeParams}'
SMALL = {"channels": [8, 16, 16], "hidden": 32, "dropout": 0.5}
NAMES = ("cnn", "se", "se8")


def register_se8(root):
    """The three edits a user makes: registry entry, params block, train_se8 stage block."""
    params_py = root / "src/seecam/params.py"
    assert REGISTRY in params_py.read_text()
    params_py.write_text(params_py.read_text().replace(REGISTRY, REGISTRY[:-1] + ', "se8": SeParams}'))
    dvc_yaml = root / "dvc.yaml"
    pipeline = yaml.safe_load(dvc_yaml.read_text())
    train_se = pipeline["stages"]["train_se"]
    pipeline["stages"]["train_se8"] = {
        "cmd": "python stages/train.py se8", "deps": train_se["deps"],
        "params": [p for p in train_se["params"] if p != "models.se"] + ["models.se8"],
        "outs": [out.replace("se.pt", "se8.pt").replace("/se/", "/se8/") for out in train_se["outs"]],
    }
    dvc_yaml.write_text(yaml.safe_dump(pipeline, sort_keys=False))


def test_a_third_registered_model_goes_through_every_stage(repo_copy):
    root = repo_copy.root
    register_se8(root)
    repo_copy.use_tiny_synthetic_data(epochs=1, train_size=400, test_size=200)
    repo_copy.set_params(models={"cnn": SMALL, "se": SMALL | {"reduction": 4}, "se8": SMALL | {"reduction": 8}},
                         evaluate__candidate="se8", evaluate__bootstrap_samples=100, evaluate__latency_repeats=2,
                         explain__faithfulness_samples=50)
    repo_copy.dvc("repro")

    evaluation = json.loads((root / "reports/evaluate/metrics.json").read_text())
    assert set(evaluation) == {*NAMES, "comparison", "device"}
    assert evaluation["comparison"]["acc_diff"] == pytest.approx(
        evaluation["se8"]["test_acc"] - evaluation["cnn"]["test_acc"])
    assert "| metric | cnn | se | se8 | se8 − cnn | better |" in (root / "reports/evaluate/comparison.md").read_text()

    explain = json.loads((root / "reports/explain/metrics.json").read_text())
    for name in NAMES:
        assert "deletion_auc" in explain[name]
        assert (root / f"reports/explain/feature_maps_{name}.png").read_bytes()[:4] == b"\x89PNG"
    # SE analysis follows the model's SE blocks, not its name
    assert "se_excitation/block3/within_class_std" in explain["se8"]
    assert "se_excitation/block3/within_class_std" in explain["se"]
    assert not any(key.startswith("se_excitation/") for key in explain["cnn"])

    page = (root / "reports/index.html").read_text()
    client = mlflow_client(root)
    for name in NAMES:
        run_id = json.loads((root / f"reports/train/{name}/run.json").read_text())["run_id"]
        assert run_id in page
        assert client.get_run(run_id).data.tags["model"] == name
        (evaluated,), (explained,), (_,) = (records_of(client, run_id, stage)
                                            for stage in ("evaluate", "explain", "report"))
        assert evaluated.data.metrics["test_acc"] == pytest.approx(evaluation[name]["test_acc"])
        figures = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(explained.info.run_id, "figures/explain")}
        others = {f"feature_maps_{other}.png" for other in NAMES if other != name}
        assert f"feature_maps_{name}.png" in figures and not figures & others
        assert ("se_excitation.png" in figures) == (name != "cnn")
    assert "test accuracy CNN" in page and "SE8 − CNN" in page
