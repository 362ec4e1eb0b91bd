"""The explain stage's checks before its work, and its mistake gallery when there is no mistake to show."""

import pytest
import torch

from seecam.errors import SeecamError
from seecam.explain.run import check_inputs, confident_mistakes
from seecam.inference import predict_logits, to_device
from seecam.params import ExplainParams

CPU = torch.device("cpu")


def test_bad_explain_inputs_fail_before_work(trained):
    model, _ = trained
    with pytest.raises(SeecamError, match=r"explain.images has index 500, but the test set has 400 images"):
        check_inputs(ExplainParams(images=[1, 500]), {"se": model}, 400)
    with pytest.raises(SeecamError, match="explain.layer: no layer named 'block7'"):
        check_inputs(ExplainParams(layer="block7"), {"se": model}, 400)
    with pytest.raises(SeecamError, match=r"explain.layer: layer 'head.fc1' has a 2-D output; .*block3.pool"):
        check_inputs(ExplainParams(layer="head.fc1"), {"se": model}, 400)


def test_mistake_gallery_of_a_model_without_mistakes(trained):
    model, data = trained
    images = to_device(data.test.images[:50], CPU)
    predicted = predict_logits(model, images).argmax(1).numpy()  # labels = predictions: no mistakes
    figure = confident_mistakes({"se": model}, images, predicted, list(data.classes), ExplainParams())
    assert figure._suptitle.get_text() == "SE: no mistakes on the test set"
