"""Offline HTML reports of the lab's notebooks (``make report``, ``python -m labkit report``).

Each notebook is executed with papermill at a ``SCALE`` (:mod:`~labkit.lab.report.execute`), its plotly figures
and third-party widgets made drawable with no kernel (:mod:`~labkit.lab.report.freeze`), and converted with
nbconvert into ``<out>/<name>.html`` beside the shared ``<out>/_static/`` assets (:mod:`~labkit.lab.report.html`).
The reports open from disk with no network at all.
"""
from __future__ import annotations

import argparse

from labkit.lab.report.execute import SMOKE
from labkit.lab.report.html import ReportResult, write_reports

__all__ = ["ReportResult", "add_arguments", "run", "write_reports"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebooks", nargs="*", help="notebooks to report (default: all in notebooks/ but the dashboard)")
    parser.add_argument("--out", default="reports", help="output directory (default: reports)")
    parser.add_argument("--scale", default=SMOKE, help="the notebooks' SCALE parameter (default smoke)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")


def run(args: argparse.Namespace) -> int:
    """Execute the notebooks and write offline HTML reports."""
    results = write_reports(args.notebooks or None, args.out, args.scale, timeout=args.timeout)
    for r in results:
        notes = (f"{r.plotly_figures} plotly figures, {r.frozen_figure_widgets} FigureWidgets frozen, "
                 f"{r.frozen_canvases} matplotlib canvases frozen, {r.offline_widgets} widgets running offline")
        if r.replaced_widgets:
            notes += f", {len(r.replaced_widgets)} widgets need a kernel and were replaced by a note: " + \
                     ", ".join(sorted(set(r.replaced_widgets)))
        print(f"{r.html}  ({notes})")
    return 0
