"""DVC stage `evaluate`: every trained model on the test set; writes reports/evaluate/."""

import sys
from pathlib import Path

# Run this workspace's code, also under `dvc exp run --temp` where the checkout is a copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from seecam import paths  # noqa: E402
from seecam.errors import run  # noqa: E402
from seecam.params import load_params  # noqa: E402
from seecam.preflight import check_tracking, check_writable  # noqa: E402


def main() -> None:
    params = load_params()  # before torch and mlflow load: a bad params.yaml is one line in a second, not five,
    check_writable(paths.evaluate_outputs())  # and so are an output in the way,
    check_tracking(params.models)  # a tracking store that is down or damaged,
    from seecam.data.store import load_dataset  # (numpy: after the params check)

    dataset = load_dataset()  # and data changed since the download
    from seecam.device import exact_fp32, resolve_device
    from seecam.evaluate import run_evaluate
    from seecam.tables import points
    from seecam.titles import title

    device = resolve_device(params.evaluate.device, "evaluate.device")
    exact_fp32(device)
    ev = params.evaluate
    report = run_evaluate(ev, list(params.models), dataset, device)
    accuracies = ", ".join(f"{name} {report.models[name]['test_acc']:.4f}" for name in params.models)
    versus = "; ".join(f"{title(name)} - {title(ev.baseline)} {points(c.acc_diff)} points "
                       f"[{points(c.acc_diff_ci_low)}, {points(c.acc_diff_ci_high)}]"
                       for name, c in report.comparison.items())
    print(f"test_acc {accuracies}; {versus} (see reports/evaluate/comparison.md)")


if __name__ == "__main__":
    run(main)
