"""Command line: `seecam check-data [DIR]` for CI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seecam.atomic import write_json
from seecam.checks import check_directory, summary_text
from seecam.errors import run
from seecam.paths import DATA_CHECKS, DATA_DIR


def check_data(directory: Path, report: Path) -> None:
    """Check a data directory, write the JSON report, exit 1 on any error."""
    result = check_directory(directory)
    write_json(report, result)
    print(summary_text(result))
    if not result["ok"]:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seecam", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-data", help="check a data directory (counts, shapes, labels, leakage)")
    check.add_argument("directory", nargs="?", type=Path, default=DATA_DIR)
    check.add_argument("--report", type=Path, default=DATA_CHECKS)
    args = parser.parse_args(argv)
    run(lambda: check_data(args.directory, args.report))


if __name__ == "__main__":
    main()
