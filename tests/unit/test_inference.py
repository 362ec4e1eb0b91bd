import io
import pickle

import numpy as np
import pytest
import torch

from helpers import RunsCodeOnLoad
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
    with pytest.raises(SeecamError, match=r"model \(.normalize.\); `dvc checkout --relink -f .*cnn.pt` restores it"):
        load_model(tmp_path / "cnn.pt", "cnn")


def test_missing_model_names_the_stage_to_run(tmp_path):
    with pytest.raises(SeecamError, match=r"se.pt: model file missing; run `dvc repro train_se`"):
        load_model(tmp_path / "se.pt", "se")


def test_model_of_the_other_architecture_says_so(tmp_path):
    save_model(tmp_path / "cnn.pt", build_model("se", SeParams()), model_config("se", SeParams()), [])
    with pytest.raises(SeecamError, match="holds a 'se' model, expected 'cnn'; `dvc checkout --relink -f "):
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


RESTORE = ("`dvc checkout --relink -f {path}` restores it from DVC's cache (`dvc repro -f -s train_cnn` retrains "
           "it)")


def test_a_damaged_model_file_is_one_line_naming_the_commands_that_replace_it(tmp_path):
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / "cnn.pt"
    for kind, content in damaged_model_files(tmp_path):
        path.write_bytes(content)
        with pytest.raises(SeecamError) as caught:
            load_model(path, "cnn")
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and message.endswith(f"; {RESTORE.format(path=path)}"), kind
        assert "\n" not in message, kind


class Custom:
    """A class of this module: torch.save pickles it by reference, and a safe load refuses it."""


def untrusted_files():
    """A model file as an attacker, or another tool, might write it: seecam loads none of them."""
    yield "os.system payload, plain pickle", pickle.dumps({"config": RunsCodeOnLoad(), "state_dict": {}}), ""
    zipped = io.BytesIO()
    torch.save({"config": Custom(), "state_dict": {}}, zipped)
    yield "custom class, torch.save's zip", zipped.getvalue(), f" ({__name__}.Custom)"
    yield "plain dict, plain pickle", pickle.dumps({"config": {"name": "cnn"}, "state_dict": {}}), ""


@pytest.mark.parametrize(("content", "refused"), [(c, r) for _, c, r in untrusted_files()],
                         ids=[kind for kind, _, _ in untrusted_files()])
def test_a_model_file_that_would_run_code_is_refused_without_torchs_unsafe_advice(tmp_path, capfd, content, refused):
    """torch's message advises `weights_only=False`, which would run the file's code: its message never reaches the
    user, whatever it looks like (for plain pickles torch leaves out the marker the old filter looked for)."""
    path = tmp_path / "cnn.pt"
    path.write_bytes(content)
    with pytest.raises(SeecamError) as caught:
        load_model(path, "cnn")
    assert str(caught.value) == (
        f"{path}: holds objects seecam will not load{refused}: a model file is tensors and plain values, and "
        f"loading anything else could run code; {RESTORE.format(path=path)}")
    out, err = capfd.readouterr()
    assert "loaded: code ran" not in out and err == ""  # nor torch's warning about plain pickles
