"""Atomic writes: what a killed writer leaves behind is swept or recovered by the next one."""

import os

import numpy as np
import pytest

from seecam.atomic import atomic_dir, write_text
from seecam.data.store import attach_meta, load_dataset, save_dataset
from seecam.data.synthetic import make_synthetic


def test_write_sweeps_temp_files_a_killed_writer_of_the_same_target_left(tmp_path):
    stale = [tmp_path / ".fig.png.k3x9_abc.tmp", tmp_path / ".fig.png.zz00zz00.tmp"]
    others = [tmp_path / ".other.png.k3x9_abc.tmp", tmp_path / ".fig.png.b.k3x9_abc.tmp"]  # other targets' temps
    for path in stale + others:
        path.write_text("half a figure")
    write_text(tmp_path / "fig.png", "whole")
    assert (tmp_path / "fig.png").read_text() == "whole"
    assert not any(p.exists() for p in stale) and all(p.exists() for p in others)


def test_directory_swap_sweeps_a_killed_swaps_temp_dir(tmp_path):
    stale = tmp_path / ".cifar10.q1w2e3r4.tmp"
    stale.mkdir()
    (stale / "train_images.npy").write_bytes(b"\0" * 1000)
    with atomic_dir(tmp_path / "cifar10") as tmp:
        (tmp / "a").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10"]


def dataset(seed):
    return attach_meta(make_synthetic(40, 20, seed=seed), {"kind": "synthetic", "seed": seed})


@pytest.fixture
def killed_mid_swap(tmp_path):
    """The exact state a kill between the swap's two renames leaves: no data dir, the old one aside, the new in tmp."""
    out = tmp_path / "cifar10"
    save_dataset(dataset(1), out)
    new = tmp_path / ".cifar10.a1b2c3d4.tmp"
    save_dataset(dataset(2), new)
    os.replace(out, tmp_path / ".cifar10.old")
    return out


def test_loading_after_a_kill_mid_swap_recovers_the_previous_data(killed_mid_swap):
    loaded = load_dataset(killed_mid_swap)
    np.testing.assert_array_equal(loaded.train.images, dataset(1).train.images)
    assert sorted(p.name for p in killed_mid_swap.parent.iterdir()) == [".cifar10.a1b2c3d4.tmp", "cifar10"]


def test_next_swap_after_a_kill_mid_swap_publishes_and_leaves_nothing(killed_mid_swap):
    save_dataset(dataset(3), killed_mid_swap)
    np.testing.assert_array_equal(load_dataset(killed_mid_swap).train.images, dataset(3).train.images)
    assert sorted(p.name for p in killed_mid_swap.parent.iterdir()) == ["cifar10"]


def test_a_kill_after_the_swap_leaves_an_old_copy_the_next_swap_removes(tmp_path):
    out = tmp_path / "cifar10"
    save_dataset(dataset(1), out)
    save_dataset(dataset(2), tmp_path / ".cifar10.old")
    save_dataset(dataset(3), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10"]
