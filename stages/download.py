"""DVC stage `download`: fetch or generate the images, check them, write data/cifar10/."""

import sys
from pathlib import Path

# Run this workspace's code, also under `dvc exp run --temp` where the checkout is a copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from seecam.download import run_download  # noqa: E402
from seecam.errors import run  # noqa: E402
from seecam.params import load_params  # noqa: E402
from seecam.paths import DATA_DIR  # noqa: E402

if __name__ == "__main__":
    run(lambda: run_download(load_params().data, DATA_DIR))
