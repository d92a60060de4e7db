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

# command name -> "module" providing ``add_arguments(parser)`` and ``run(args) -> int`` (its docstring's first line
# is the help), or "module:NAME" for an object in it with ``help``, ``add_arguments`` and ``run``
COMMANDS: dict[str, str] = {
    "train": "labkit.detection.cli:TRAIN",
    "evaluate": "labkit.detection.cli:EVALUATE",
    "implied": "labkit.detection.cli:IMPLIED",
    "data": "labkit.detection.cli:DATA",
    "interpret": "labkit.interpret.cli",
    "suggest": "labkit.interpret.exports",
    "figures": "labkit.figures.export",
    "experiment": "labkit.experiments.cli",
    "report": "labkit.lab.report",
    "serve": "labkit.lab.launch",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, target in COMMANDS.items():
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr) if attr else module
        summary = command.help if attr else (module.__doc__ or name).strip().splitlines()[0]
        p = sub.add_parser(name, help=summary)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
