"""DVC stages `train_cnn` and `train_se`: `python stages/train.py cnn|se`."""

import sys
import time
from pathlib import Path

STARTED = time.perf_counter()  # before seecam's heavy imports (torch, mlflow): the log's last line counts them

# Run this workspace's code, also under `dvc exp run --temp` where the checkout is a copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from seecam import paths  # noqa: E402
from seecam.errors import run  # noqa: E402
from seecam.params import load_params  # noqa: E402
from seecam.preflight import check_writable  # noqa: E402
from seecam.stage_clock import StageClock  # noqa: E402
from seecam.tracking.store import check_store, tracking_uri  # noqa: E402


def main(name: str) -> None:
    clock = StageClock(STARTED)
    params = load_params()  # before torch and mlflow load: a bad params.yaml is one line in a second, not five
    params.model(name)  # an unknown model name stops here, before any work,
    check_writable(paths.train_outputs(name))  # and so do an output in the way
    check_store(tracking_uri(params.tracking))  # and a tracking store that is down or damaged
    from seecam import distributed
    from seecam.data.store import load_dataset
    from seecam.device import resolve_device
    from seecam.train import run_train

    device = resolve_device(params.train.device)
    distributed.check_processes(params.train, device)
    if params.train.processes > 1 and not distributed.under_launcher():
        distributed.relaunch(params.train.processes, [__file__, name])  # raises if any process failed
        return
    with distributed.process_group(device) as (world, rank_device):
        run_train(name, params, load_dataset(), rank_device, world, clock)


if __name__ == "__main__":
    run(lambda: main(sys.argv[1] if len(sys.argv) > 1 else ""))
