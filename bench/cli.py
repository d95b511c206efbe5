"""Benchmark of the command's start-up: ``python -m bench cli [--runs N]``.

Times ``erpsync --help`` and ``erpsync run --help`` as a user starts them (a new process each time) and prints
the median and the worst of N runs. The help path must import neither Prefect, pandas, SQLAlchemy nor Great
Expectations (``tests/cli/test_cli.py`` checks that; this measures what it costs).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cli")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(list(argv))
    commands = {
        "erpsync --help": [sys.executable, "-m", "erpsync.app.cli", "--help"],
        "erpsync run --help": [sys.executable, "-m", "erpsync.app.cli", "run", "--help"],
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
    }
    for label, command in commands.items():
        times = [_seconds(command) for _ in range(args.runs)]
        print(f"{label:<24} median {statistics.median(times):.3f} s, worst {max(times):.3f} s ({args.runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
