"""Turn a bench/gpu_run.py bundle into the README's GPU results and docs/results/gpu/.

    python3 bench/gpu_results.py BUNDLE [--root .]

It copies the bundle's figures (summary.txt, results.json, verdict.json, verdict.md, seeds.csv; not the logs)
into <root>/docs/results/gpu/ and rewrites two marked blocks of <root>/README.md:
  <!-- gpu-run:seeds -->      the per-seed table under "Does SE help?", with the verdict's plain sentence;
  <!-- gpu-run:benchmark -->  the GPU row of the benchmarks: seconds per epoch (default, eager, the tutorial's
                              loop), the fraction of the matmul peak, the stage's timing line, tests/gpu.
A bundle from --dry-run says so in both blocks: its numbers are a check of the script, not a result.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEPT = ("summary.txt", "results.json", "verdict.json", "verdict.md", "seeds.csv")


def block(readme: str, name: str, body: str) -> str:
    """`readme` with the text between <!-- gpu-run:name --> and <!-- /gpu-run:name --> replaced by `body`."""
    pattern = re.compile(rf"(<!-- gpu-run:{name} -->\n).*?(<!-- /gpu-run:{name} -->)", re.S)
    if not pattern.search(readme):
        raise SystemExit(f"error: README.md has no <!-- gpu-run:{name} --> ... <!-- /gpu-run:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), readme, count=1)


def where(results: dict) -> str:
    """The machine and the data, or a warning that the bundle is a dry run's."""
    if results.get("dry_run"):
        return "a DRY RUN (a CPU, tiny synthetic data: a check of bench/gpu_run.py, not a result)"
    return f"one {results.get('device', 'GPU')}, {results.get('data', '')}"


def flops(value: float) -> str:
    return f"{value / 1e12:,.0f} TFLOP/s" if value >= 1e12 else f"{value / 1e9:,.0f} GFLOP/s"


def seeds_table(results: dict, rows: list[dict[str, str]]) -> str:
    """Per-seed test accuracy (%) of both models and their difference, mean and sd, then the verdict."""
    verdict = results.get("verdict") or {}
    if not rows or not verdict:
        return f"No seed verdict in this bundle ({where(results)}): the sweep did not finish."
    base, cand = verdict["baseline"], verdict["candidate"]
    title = {"cnn": "CNN", "se": "SE"}
    epochs = results.get("epochs", "?")
    lines = [f"Test accuracy (%) by `bench/gpu_run.py` on {where(results)}; default params, {epochs} "
             f"epoch{'' if epochs == 1 else 's'}:", "",
             f"| seed | {title.get(base, base)} | {title.get(cand, cand)} | {title.get(cand, cand)} − "
             f"{title.get(base, base)} |", "|---:|---:|---:|---:|"]
    columns = {key: [100 * float(row[key]) for row in rows] for key in (base, cand, "diff")}
    for i, row in enumerate(rows):
        lines.append(f"| {row['seed']} | {columns[base][i]:.2f} | {columns[cand][i]:.2f} | {columns['diff'][i]:+.2f} |")
    spread = {key: f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}" for key, v in columns.items()}
    lines.append(f"| mean ± sd | {spread[base]} | {spread[cand]} | {statistics.mean(columns['diff']):+.2f} "
                 f"[95% t: {100 * verdict['acc_diff_t_low']:+.2f}, {100 * verdict['acc_diff_t_high']:+.2f}] |")
    lines += ["", f"*{verdict['plain']}* ({verdict['sentence']}; `seecam verdict`, config_sha "
                  f"`{verdict['config_sha']}`; all figures in `docs/results/gpu/`)"]
    return "\n".join(lines)


def benchmark_text(results: dict) -> str:
    """Seconds per epoch and fraction of the matmul peak per model, then the stage line and tests/gpu."""
    bench = results.get("benchmark")
    lines = []
    if bench:
        lines.append(f"`bench/train_throughput.py` on {where(results)}: {bench['images']:,} images an epoch, "
                     f"{bench['device']}, matmul peak {flops(bench['peak_flops'])}:")
        lines += ["", "| model | variant | s/epoch | img/s | vs the tutorial's loop | of the matmul peak |",
                  "|---|---|---:|---:|---:|---:|"]
        for model, variants in bench["models"].items():
            for label, row in variants.items():
                lines.append(f"| {model} | {label} | {row['seconds_per_epoch']:.1f} | {row['img_per_s']:,.0f} | "
                             f"{row['ratio']:.2f}x | {row['peak_fraction']:.1%} |")
    else:
        lines.append(f"No benchmark in this bundle ({where(results)}).")
    if results.get("stage"):
        lines += ["", f"A train stage: `{results['stage']}`."]
    if results.get("pytest"):
        lines += ["", f"`pytest tests/gpu`: {results['pytest']}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="the folder bench/gpu_run.py wrote ($OUT)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose README and docs/ to update")
    args = parser.parse_args()
    if not (args.bundle / "results.json").is_file():
        sys.exit(f"error: {args.bundle} holds no results.json: give the folder bench/gpu_run.py wrote")
    results = json.loads((args.bundle / "results.json").read_text())
    rows = []
    if (args.bundle / "seeds.csv").is_file():
        with (args.bundle / "seeds.csv").open() as file:
            rows = list(csv.DictReader(file))
    readme_path = args.root / "README.md"
    readme = block(readme_path.read_text(), "seeds", seeds_table(results, rows))
    readme = block(readme, "benchmark", benchmark_text(results))
    docs = args.root / "docs" / "results" / "gpu"
    docs.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        if (args.bundle / name).is_file():
            shutil.copy2(args.bundle / name, docs / name)
    readme_path.write_text(readme)
    print(f"wrote the seeds and benchmark blocks of {readme_path} and {docs}/ ({where(results)})")


if __name__ == "__main__":
    main()
