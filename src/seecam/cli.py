"""Command line: `seecam check-data [DIR]` for CI, `seecam ui` for the MLflow UI, `seecam server` for a team's
MLflow server, `seecam sweep` over training seeds and `seecam verdict` across them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seecam.atomic import write_json
from seecam.data.checks import check_directory, summary_text
from seecam.errors import SeecamError, run
from seecam.params import Params, load_params
from seecam.paths import DATA_CHECKS, DATA_DIR, VERDICT_DIR, train_dir
from seecam.server import ServerConfig, artifacts_destination, serve
from seecam.sweep import parse_seeds, sweep
from seecam.tracking.store import (
    RunInfo,
    default_artifacts_dir,
    default_store_uri,
    repo_root,
)
from seecam.ui import ui


def check_data(directory: Path, report: Path) -> None:
    """Check a data directory, write the JSON report, exit 1 on any error."""
    result = check_directory(directory)
    write_json(report, result)
    print(summary_text(result))
    if not result["ok"]:
        sys.exit(1)


def server_config(args: argparse.Namespace) -> ServerConfig:
    """`seecam server`'s flags, defaulting to the project's own store and artifact directory."""
    return ServerConfig(args.backend_store_uri or default_store_uri(),
                        artifacts_destination(args.artifacts_destination or str(default_artifacts_dir())),
                        args.host, args.port, args.allowed_hosts, args.cors_allowed_origins, args.workers)


def verdict(sha: str | None, baseline: str | None, candidate: str | None) -> None:
    """Pool the seeds of one configuration from MLflow and print the verdict (seecam.verdict)."""
    from seecam.verdict.run import run_verdict  # imports matplotlib and mlflow: only this command pays for them

    params = load_params()
    verdict = run_verdict(params, sha, baseline or params.evaluate.baseline, candidate or only_candidate(params))
    print(f"{verdict.plain}.")
    print(f"  {verdict.sentence} (config_sha {verdict.config_sha}, {verdict.seeds} seeds; "
          f"mean {verdict.candidate} - {verdict.baseline} {verdict.acc_diff_mean * 100:+.2f} points, "
          f"95% t interval [{verdict.acc_diff_t_low * 100:+.2f}, {verdict.acc_diff_t_high * 100:+.2f}]); "
          f"wrote {VERDICT_DIR}/verdict.{{json,md}}, seeds.png; MLflow run {verdict.mlflow_run_id}")
    print(f"next: {report_step(verdict.config_sha, verdict.experiments, list(params.models))}")


def only_candidate(params: Params) -> str:
    """The verdict's default candidate: the one model of params.yaml that is not evaluate.baseline."""
    if len(params.candidates) > 1:
        raise SeecamError(f"params.yaml has {len(params.candidates)} candidates ({', '.join(params.candidates)}); "
                          f"name the one to compare with {params.evaluate.baseline}: seecam verdict --candidate "
                          f"{params.candidates[0]}")
    return params.candidates[0]


def report_step(config: str, experiments: list[str], names: list[str]) -> str:
    """How to get a verdict onto reports/index.html: the page shows it when its models (`names`) are of that
    configuration (their run.json says which, as training resolved it)."""
    runs = [RunInfo.load(train_dir(name) / "run.json") for name in names]
    if all(info and info.config_sha == config for info in runs):
        return "`dvc repro report` puts it on top of reports/index.html"
    if experiments:
        return (f"the workspace holds another configuration: `dvc exp apply {experiments[0]}` (this one's params "
                "and outputs; it restores the experiment's reports/ too), `seecam verdict` again, then "
                "`dvc repro report` puts the verdict on top of reports/index.html")
    return (f"`dvc repro report` puts it on top of reports/index.html once the workspace trains config_sha {config} "
            "(the same params, data and code)")


def model_list(text: str) -> list[str]:
    """`--models cnn,se8` -> ["cnn", "se8"]."""
    return [name.strip() for name in text.split(",") if name.strip()]


class _DefaultsShown(argparse.HelpFormatter):
    """Appends "(default: X)" where there is a default worth reading (not a flag's False, not an empty one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, "", []) or action.default is argparse.SUPPRESS or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """Every command and option, each with its help (tests/unit/test_cli.py checks), defaults shown."""
    shown = _DefaultsShown
    parser = argparse.ArgumentParser(prog="seecam", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="one of these; `seecam COMMAND --help` for its options")
    check = commands.add_parser("check-data", help="check a data directory (counts, shapes, labels, leakage)",
                                formatter_class=shown)
    check.add_argument("directory", nargs="?", type=Path, default=DATA_DIR,
                       help="a data directory as the download stage writes it (arrays + meta.json)")
    check.add_argument("--report", type=Path, default=DATA_CHECKS, help="where to write the checks as JSON")
    browse = commands.add_parser("ui", help="start the MLflow UI on 127.0.0.1 and print the experiment's URLs",
                                 formatter_class=shown)
    browse.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 to serve the UI on")
    browse.add_argument("--access-log", action="store_true",
                        help="print the server's line per HTTP request (off: the links stay on screen)")
    team = commands.add_parser("server", help="run a team's MLflow server (PostgreSQL backend, served artifacts)",
                               formatter_class=shown)
    team.add_argument("--backend-store-uri", help="e.g. postgresql://user:pass@db/mlflow; "
                      "default: the project's sqlite:///<repo>/mlflow.db")
    team.add_argument("--artifacts-destination", help="directory or s3://bucket/prefix; default: <repo>/mlartifacts")
    team.add_argument("--host", default="127.0.0.1", help="interface to bind; another needs --allowed-hosts")
    team.add_argument("--port", type=int, default=5000, help="port to listen on")
    team.add_argument("--allowed-hosts", default="", help="Host headers clients use, comma-separated (MLflow's)")
    team.add_argument("--cors-allowed-origins", default="", help="browser origins allowed (MLflow's)")
    team.add_argument("--workers", type=int, default=1, help="server worker processes")
    seeds = commands.add_parser("sweep", help="queue one `dvc exp run` per training seed (DVC's queue)",
                                formatter_class=shown)
    seeds.add_argument("--seeds", required=True, help="e.g. 0-4, 0,2,5 or 3")
    seeds.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="params override for every seed, as dvc exp run -S")
    seeds.add_argument("--run", action="store_true", help="start the queue workers and wait for the sweep")
    seeds.add_argument("-j", "--jobs", type=int, default=1, help="queue workers with --run")
    seeds.add_argument("--models", type=model_list, help="comma-separated models to train, e.g. cnn,se8, "
                       "evaluate.baseline among them; default: every model of params.yaml")
    seeds.add_argument("targets", nargs="*", help="stages to run (default: the whole pipeline, as dvc repro)")
    pool = commands.add_parser("verdict", help="is the candidate better across training seeds? (pools MLflow runs)",
                               formatter_class=shown)
    pool.add_argument("--config-sha", help="config_sha tag (or a prefix) of the runs; default: the latest sweep's "
                      "configuration, else the only one with >= 2 seeds (several are listed)")
    pool.add_argument("--baseline", help="default: evaluate.baseline")
    pool.add_argument("--candidate", help="default: the one other model of params.yaml (with several, name one)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ui":
        run(lambda: ui(args.port, args.access_log))
    elif args.command == "server":
        run(lambda: serve(server_config(args)))
    elif args.command == "sweep":
        run(lambda: sweep(repo_root(), parse_seeds(args.seeds), args.overrides, args.targets, args.jobs, args.run,
                          args.models))
    elif args.command == "verdict":
        run(lambda: verdict(args.config_sha, args.baseline, args.candidate))
    else:
        run(lambda: check_data(args.directory, args.report))


if __name__ == "__main__":
    main()
