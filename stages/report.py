"""DVC stage `report`: reports/index.html, one self-contained page comparing and explaining every model."""

import sys
from pathlib import Path

# Run this workspace's code, also under `dvc exp run --temp` where the checkout is a copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from seecam.errors import run  # noqa: E402
from seecam.params import load_params  # noqa: E402


def main() -> None:
    params = load_params()  # before torch and mlflow load: a bad params.yaml is one line in a second, not five
    from seecam.report import run_report

    print(f"wrote {run_report(params)}")


if __name__ == "__main__":
    run(main)
