"""Write the paper's Figures 1–4 at its parameters as PNG, SVG and PDF files.

:func:`export_figures` does it from Python, the ``figures`` command (:func:`add_arguments`, :func:`run`) from a shell:
``python -m labkit figures --out DIR [--format png svg pdf] [--dpi 200]`` writes ``DIR/figure{1..4}.{png,svg,pdf}``,
each file through :func:`labkit._io.write_atomic` (a reader never sees half a file), and prints the paths.
"""
from __future__ import annotations

import argparse
import numbers
import os
import sys
from pathlib import Path
from typing import Sequence

from labkit._io import write_atomic
from labkit.figures.builders import FIGURES

__all__ = ["EXPORT_FORMATS", "add_arguments", "export_figures", "run"]

EXPORT_FORMATS = ("png", "svg", "pdf")


def export_figures(out_dir: str | os.PathLike, formats: Sequence[str] = EXPORT_FORMATS, dpi: int = 200) -> list[Path]:
    """Write Figures 1–4 at the paper's parameters to ``out_dir`` as ``figure{1..4}.{png,svg,pdf}`` (matplotlib),
    each file atomically. Returns the paths written."""
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of {EXPORT_FORMATS}, got {list(formats)!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Integral) or not 10 <= dpi <= 1200:
        raise ValueError(f"dpi must be an integer in [10, 1200], got dpi={dpi!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a directory, got the file {str(out)!r}")
    written = []
    for name, build in FIGURES.items():
        fig = build()
        for fmt in formats:
            written.append(write_atomic(out / f"{name}.{fmt}", lambda f, fmt=fmt: fig.savefig(f, format=fmt, dpi=dpi)))
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="directory to write figure1..4.{png,svg,pdf} into")
    parser.add_argument("--format", nargs="+", choices=EXPORT_FORMATS, default=list(EXPORT_FORMATS),
                        dest="formats", help="file formats (default: all three)")
    parser.add_argument("--dpi", type=int, default=200, help="resolution of the PNG files (default 200)")


def run(args: argparse.Namespace) -> int:
    """Write Figures 1–4 at the paper's parameters as PNG, SVG and PDF; exit status 2 on bad arguments."""
    try:
        written = export_figures(args.out, args.formats, args.dpi)
    except ValueError as exc:
        print(f"figures: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0
