"""One rank of test_ddp.py's random-stream check: `torchrun --nproc-per-node=2 tests/e2e/ddp_streams.py OUT`.

Each rank trains the tiny CNN three times in one process group (gloo, CPU) and saves what it saw to
OUT/rank<N>.pt: the first training step's dropout input and output, each run's history and final weights, and
how often it computed the validation metrics. Run A keeps the epoch-1 state (rank 0's, which gathers every
rank's random streams, as the train stage's checkpoint does); run B trains again from scratch; run C resumes
from A's epoch-1 state, which rank 0 hands to every rank as the stage does (distributed.from_main).
"""

import copy
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from seecam import distributed, training_loop
from seecam.data.store import attach_meta
from seecam.data.synthetic import make_synthetic
from seecam.models import build_model
from seecam.params import parse_params

CPU = torch.device("cpu")


def main(out: Path) -> None:
    dataset = attach_meta(make_synthetic(600, 100, seed=0), {"kind": "synthetic"})
    params = parse_params({"data": {"source": "synthetic", "val_size": 100,
                                    "synthetic": {"train_size": 600, "test_size": 100}},
                           "train": {"epochs": 2, "processes": 2}})
    splits = training_loop.training_splits(dataset, params.data, CPU)
    evaluations = 0
    evaluate = training_loop.evaluate_split

    def counted(*args):
        nonlocal evaluations
        evaluations += 1
        return evaluate(*args)

    training_loop.evaluate_split = counted  # counts this rank's validation passes; computes them as before

    with distributed.process_group(CPU) as (world, device):
        def run(resume=None):
            training_loop.seed_everything(params.seed)
            model = build_model("cnn", params.model("cnn"))
            seen = []
            hook = model.head.dropout.register_forward_hook(
                lambda module, inputs, output: seen.append((inputs[0].detach().clone(), output.detach().clone()))
                if module.training and not seen else None)
            states = []
            config = training_loop.FitConfig(params.train, params.seed, device, world=world)
            result = training_loop.fit(model, splits, config, resume=resume,
                                       on_epoch=lambda row, state: states.append(copy.deepcopy(state)))
            hook.remove()
            history = [{k: v for k, v in asdict(row).items() if k != "epoch_seconds"} for row in result.history]
            return {"history": history, "weights": model.state_dict(), "dropout": seen[0], "states": states}

        first = run()
        again = run()
        resumed = run(resume=distributed.from_main(first["states"][0], world))
        torch.save({"rank": world.rank, "evaluations": evaluations, "dropout": first["dropout"],
                    "runs": {name: {"history": r["history"], "weights": r["weights"]}
                             for name, r in (("first", first), ("again", again), ("resumed", resumed))}},
                   out / f"rank{world.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
