"""DVC stage `explain`: Grad-CAM family, feature maps, gate excitation and faithfulness; writes reports/explain/."""

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
    check_writable(paths.explain_outputs(list(params.models)))  # and so are an output in the way,
    check_tracking(params.models)  # a tracking store that is down or damaged,
    from seecam.data.store import load_dataset  # (numpy: after the params check)

    dataset = load_dataset()  # and data changed since the download
    from seecam.device import exact_fp32, resolve_device
    from seecam.explain.run import run_explain

    device = resolve_device(params.explain.device, "explain.device")
    exact_fp32(device)
    report = run_explain(params.explain, list(params.models), dataset, device)
    for name in params.models:
        values = report.models[name]
        rho = values.get("randomization_spearman")
        print(f"{name}: deletion AUC {values['deletion_auc']:.3f}, insertion AUC {values['insertion_auc']:.3f}, "
              f"average drop {values['average_drop']:.1f}%, randomisation rho "
              f"{'undefined (constant maps)' if rho is None else f'{rho:.2f}'}")


if __name__ == "__main__":
    run(main)
