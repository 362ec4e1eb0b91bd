"""DDP plumbing: shards, batch-size rules, launch checks, and a real process group of one equalling no group."""

import pytest
import torch
import torch.distributed as dist

from seecam import distributed
from seecam.data.store import attach_meta
from seecam.data.synthetic import make_synthetic
from seecam.distributed import SINGLE, World
from seecam.errors import SeecamError
from seecam.models import build_model
from seecam.params import TrainParams, parse_params
from seecam.training_loop import FitConfig, fit, seed_everything, training_splits

CPU = torch.device("cpu")


@pytest.mark.parametrize("n", [1, 7, 64, 601, 1000])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_each_kept_index_is_on_exactly_one_rank_and_every_rank_runs_the_same_steps(n, size):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    shards = [distributed.shard(order, World(rank, size, rank, True)) for rank in range(size)]
    taken = torch.cat(shards)
    assert len(taken) == len(set(taken.tolist())) == n - n % size  # each once; at most size-1 dropped
    assert {len(s) for s in shards} == {n // size}  # equal lengths, so equal steps at any per-rank batch
    assert torch.equal(distributed.shard(order, SINGLE), order)


def test_step_i_of_all_ranks_together_is_the_one_process_run_s_step_i_of_the_global_batch():
    order, size, per_rank = torch.randperm(100), 4, 5
    shards = [distributed.shard(order, World(rank, size, rank, True)) for rank in range(size)]
    for i in range(100 // (size * per_rank)):
        together = torch.cat([s[i * per_rank:(i + 1) * per_rank] for s in shards])
        assert set(together.tolist()) == set(order[i * size * per_rank:(i + 1) * size * per_rank].tolist())


@pytest.mark.parametrize(("scale_batch", "world", "per_rank"), [
    (False, World(0, 4, 0, True), 16),
    (True, World(0, 4, 0, True), 64),
    (False, SINGLE, 64),
])
def test_the_global_batch_is_split_over_ranks_unless_scale_batch(scale_batch, world, per_rank):
    assert distributed.rank_batch_size(TrainParams(batch_size=64, scale_batch=scale_batch), world) == per_rank


def test_a_global_batch_that_does_not_split_is_refused():
    with pytest.raises(SeecamError, match="batch_size 64 does not split over 3 processes"):
        distributed.rank_batch_size(TrainParams(batch_size=64), World(0, 3, 0, True))


@pytest.mark.parametrize(("train", "message"), [
    ({"processes": 0}, r"train\.processes must be >= 1"),
    ({"processes": 65}, r"train\.processes must be <= 64"),
    ({"processes": 3}, r"train\.processes 3 must divide train\.batch_size 64 .* train\.scale_batch: true"),
    ({"processes": 2.5}, r"train\.processes"),
    ({"scale_batch": "yes"}, r"train\.scale_batch"),
])
def test_bad_distributed_params_are_one_line_errors(train, message):
    with pytest.raises(SeecamError, match=message) as error:
        parse_params({"train": train})
    assert "\n" not in str(error.value)


def test_scale_batch_lifts_the_divisibility_rule():
    assert parse_params({"train": {"processes": 3, "scale_batch": True}}).train.processes == 3


def test_two_cpu_processes_may_launch():
    distributed.check_processes(TrainParams(processes=2), CPU)


@pytest.mark.parametrize(("train", "device", "message"), [
    (TrainParams(processes=2), "mps", "no MPS backend"),
    (TrainParams(processes=2, sync_batchnorm=True), "cpu", "sync_batchnorm needs CUDA"),
    (TrainParams(processes=2), "cuda", "train.processes is 2 but only 1 CUDA GPU"),
])
def test_launch_checks_refuse_what_the_device_cannot_run(monkeypatch, train, device, message):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SeecamError, match=message):
        distributed.check_processes(train, torch.device(device))


def test_a_ddp_process_group_of_one_trains_exactly_like_no_group(tmp_path):
    """DDP's bucketed all-reduce, the stacked sums and the broadcasts change no number."""
    dataset = attach_meta(make_synthetic(800, 100, seed=0), {"kind": "synthetic"})
    p = parse_params({"data": {"source": "synthetic", "val_size": 100,
                               "synthetic": {"train_size": 800, "test_size": 100}}, "train": {"epochs": 1}})
    splits = training_splits(dataset, p.data, CPU)

    def first_epoch(world):
        seed_everything(p.seed)
        model = build_model("cnn", p.model("cnn"), p.train.normalize)
        return fit(model, splits, FitConfig(p.train, p.seed, CPU, world=world)).history[0]

    plain = first_epoch(SINGLE)
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        grouped = first_epoch(World(0, 1, 0, True))
    finally:
        dist.destroy_process_group()
    assert abs(grouped.train_loss - plain.train_loss) < 1e-6
    assert (grouped.train_acc, grouped.val_loss, grouped.val_acc) == (plain.train_acc, plain.val_loss, plain.val_acc)
