import numpy as np
import pytest
import torch

from seecam.errors import SeecamError
from seecam.inference import load_model, predict_logits, save_model
from seecam.models import build_model, model_config
from seecam.params import CnnParams, SeParams


def test_model_file_round_trip_with_weights_only(tmp_path):
    model = build_model("se", SeParams())
    save_model(tmp_path / "se.pt", model, model_config("se", SeParams()), ["a"] * 10)
    payload = torch.load(tmp_path / "se.pt", weights_only=True)
    assert payload["config"]["name"] == "se" and payload["classes"] == ["a"] * 10
    loaded, _ = load_model(tmp_path / "se.pt", "se")
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(predict_logits(loaded, x), predict_logits(model, x))


def test_a_model_trained_with_tutorial_normalisation_is_evaluated_with_the_tutorial_constants(tmp_path):
    model = build_model("cnn", CnnParams(), "tutorial").eval()
    save_model(tmp_path / "cnn.pt", model, model_config("cnn", CnnParams(), "tutorial"), ["a"] * 10)
    assert torch.load(tmp_path / "cnn.pt", weights_only=True)["config"]["normalize"] == "tutorial"
    loaded, _ = load_model(tmp_path / "cnn.pt", "cnn")
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    tutorial, cifar10 = (torch.tensor(std).view(1, 3, 1, 1) for std in ((0.2023, 0.1994, 0.2010),
                                                                         (0.2470, 0.2435, 0.2616)))
    with torch.no_grad():
        expected = model((x.float() / 255 - mean) / tutorial)
        other = model((x.float() / 255 - mean) / cifar10)
    torch.testing.assert_close(predict_logits(loaded, x), expected)
    assert not torch.allclose(predict_logits(loaded, x), other)


def test_a_model_file_without_its_normalisation_asks_for_retraining(tmp_path):
    config = model_config("cnn", CnnParams())
    del config["normalize"]
    save_model(tmp_path / "cnn.pt", build_model("cnn", CnnParams()), config, [])
    with pytest.raises(SeecamError, match=r"model \(.normalize.\); rerun `dvc repro train_cnn`"):
        load_model(tmp_path / "cnn.pt", "cnn")


def test_missing_model_names_the_stage_to_run(tmp_path):
    with pytest.raises(SeecamError, match=r"se.pt: model file missing; run `dvc repro train_se`"):
        load_model(tmp_path / "se.pt", "se")


def test_model_of_the_other_architecture_says_so(tmp_path):
    save_model(tmp_path / "cnn.pt", build_model("se", SeParams()), model_config("se", SeParams()), [])
    with pytest.raises(SeecamError, match="holds a 'se' model, expected 'cnn'; rerun `dvc repro train_cnn`"):
        load_model(tmp_path / "cnn.pt", "cnn")


def test_weights_that_do_not_fit_the_config_say_so(tmp_path):
    wide = build_model("cnn", CnnParams(channels=[32, 64, 256]))
    save_model(tmp_path / "cnn.pt", wide, model_config("cnn", CnnParams()), [])
    with pytest.raises(SeecamError, match="weights do not fit the architecture in its config"):
        load_model(tmp_path / "cnn.pt", "cnn")


def test_predict_restores_training_mode():
    model = build_model("cnn", CnnParams()).train()
    predict_logits(model, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert model.training


def damaged_model_files(tmp_path):
    """A good model file cut, overwritten or emptied, and torch files that are not model files."""
    good = tmp_path / "good.pt"
    save_model(good, build_model("cnn", CnnParams()), model_config("cnn", CnnParams()), [])
    data = good.read_bytes()
    yield "truncated", data[: len(data) // 2]
    yield "random bytes", bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))
    yield "empty", b""
    for name, payload in (("not a dict", [1, 2]), ("no state_dict", {"config": {"name": "cnn"}}),
                          ("bad config", {"config": {"name": "cnn", "params": {"depth": 3}}, "state_dict": {}})):
        torch.save(payload, good)
        yield name, good.read_bytes()


def test_a_damaged_model_file_is_one_line_naming_the_stage_to_rerun(tmp_path):
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / "cnn.pt"
    for kind, content in damaged_model_files(tmp_path):
        path.write_bytes(content)
        with pytest.raises(SeecamError) as caught:
            load_model(path, "cnn")
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and message.endswith("; rerun `dvc repro train_cnn`"), kind
        assert "\n" not in message, kind


class RunsCodeOnLoad:
    def __reduce__(self):
        return print, ("loaded: code ran",)


def test_a_model_file_that_would_run_code_is_refused_without_torchs_unsafe_advice(tmp_path, capsys):
    """torch's message advises `weights_only=False`, which would run the file's code: never pass that on."""
    path = tmp_path / "cnn.pt"
    torch.save({"config": RunsCodeOnLoad(), "state_dict": {}}, path)
    with pytest.raises(SeecamError) as caught:
        load_model(path, "cnn")
    message = str(caught.value)
    assert message == (f"{path}: not a readable model file (it holds an object a safe load refuses: print); "
                       "rerun `dvc repro train_cnn`")
    assert "loaded: code ran" not in capsys.readouterr().out
