"""`python -m labkit <command>`: a thin command line over the library (argparse subcommands).

Each command lives in the module that owns its job and registers itself here through ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Before torch loads: idle OpenMP threads sleep instead of spinning (on a shared 2-core machine spinning threads
# made a CPU training step 2-3x slower; benchmarks/bench_train_cpu.py), and the allocator may use huge pages.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

# command name -> module providing ``add_arguments(parser)`` and ``run(args) -> int``
COMMANDS: dict[str, str] = {
    "train": "labkit.detection.train",
    "evaluate": "labkit.detection.evaluate",
    "data": "labkit.detection.data_cli",
    "interpret": "labkit.interpret",
    "suggest": "labkit.frameworks",
    "figures": "labkit.figures",
    "experiment": "labkit.experiments",
    "report": "labkit.report",
    "serve": "labkit.launch",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=(module.__doc__ or name).strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
