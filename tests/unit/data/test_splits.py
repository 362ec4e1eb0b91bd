import numpy as np

from seecam.data.splits import class_quotas, train_val_indices

LABELS = np.random.default_rng(0).permutation(np.arange(1000) % 10)


def test_validation_is_stratified_disjoint_and_seeded():
    train, val = train_val_indices(LABELS, 100, 0, seed=1)
    assert len(val) == 100 and len(train) == 900
    assert not set(train) & set(val)
    assert np.bincount(LABELS[val]).tolist() == [10] * 10
    assert np.array_equal(val, train_val_indices(LABELS, 100, 0, seed=1)[1])
    assert not np.array_equal(val, train_val_indices(LABELS, 100, 0, seed=2)[1])


def test_subset_is_the_first_images_per_class_and_keeps_the_same_validation():
    full_train, val = train_val_indices(LABELS, 100, 0, seed=1)
    train, val_with_subset = train_val_indices(LABELS, 100, 200, seed=1)
    assert np.array_equal(val, val_with_subset)
    assert np.bincount(LABELS[train]).tolist() == [20] * 10
    for cls in range(10):
        assert np.array_equal(train[LABELS[train] == cls], full_train[LABELS[full_train] == cls][:20])


def test_zero_validation_keeps_all_train():
    train, val = train_val_indices(LABELS, 0, 0, seed=0)
    assert len(val) == 0 and np.array_equal(train, np.arange(1000))


def test_quotas_sum_to_total_for_unbalanced_classes():
    labels = np.array([0] * 7 + [1] * 2 + [2] * 1)
    assert sum(class_quotas(labels, 5).values()) == 5
