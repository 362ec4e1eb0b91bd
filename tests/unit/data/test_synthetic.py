import numpy as np
import torch
from torch import nn

from seecam.data.synthetic import make_synthetic


def test_same_seed_same_bytes_and_other_seed_differs():
    a, b, c = make_synthetic(100, 20, 3), make_synthetic(100, 20, 3), make_synthetic(100, 20, 4)
    np.testing.assert_array_equal(a.train.images, b.train.images)
    np.testing.assert_array_equal(a.test.boxes, b.test.boxes)
    assert not np.array_equal(a.train.images, c.train.images)
    assert not np.array_equal(a.train.images[:20], a.test.images)


def test_balanced_uint8_nhwc_with_boxes_around_the_object():
    data = make_synthetic(500, 100, 0)
    assert data.train.images.shape == (500, 32, 32, 3) and data.train.images.dtype == np.uint8
    assert np.bincount(data.train.labels).tolist() == [50] * 10
    x0, y0, x1, y1 = data.train.boxes.T
    assert ((x1 - x0 >= 6) & (x1 - x0 <= 16) & (y1 - y0 >= 6) & (y1 - y0 <= 16)).all()
    # The object differs from the background: pixels inside the box vary more from the image mean.
    img = data.train.images.astype(float)
    inside = np.zeros(img.shape[:3], bool)
    for i, (a, b, c, d) in enumerate(data.train.boxes):
        inside[i, b:d, a:c] = True
    contrast_in = np.abs(img - img.mean(axis=(1, 2), keepdims=True)).mean(-1)[inside].mean()
    contrast_out = np.abs(img - img.mean(axis=(1, 2), keepdims=True)).mean(-1)[~inside].mean()
    assert contrast_in > 1.5 * contrast_out


def test_a_small_cnn_learns_it_far_above_chance_in_two_epochs():
    torch.manual_seed(0)
    data = make_synthetic(3000, 500, 0)

    def tensors(split):
        return torch.from_numpy(split.images).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(split.labels)

    x, y = tensors(data.train)
    xt, yt = tensors(data.test)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(2):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model(xt).argmax(1) == yt).float().mean().item()
    assert accuracy > 0.5, accuracy  # chance is 0.1
