"""Run benchmarks: `python -m bench` (all) or `python -m bench NAME [args]` — each module has a main(argv)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench [{'|'.join(names)}] [args]")
        return 0
    chosen = [argv[0]] if argv else names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    status = 0
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        status = max(status, int(module.main(argv[1:] if argv else []) or 0))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
