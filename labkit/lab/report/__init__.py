"""Offline HTML reports of the lab's notebooks (``make report``, ``python -m labkit report``).

Each notebook is executed with papermill at a ``SCALE`` (:mod:`~labkit.lab.report.execute`), its plotly figures
and third-party widgets made drawable with no kernel (:mod:`~labkit.lab.report.freeze`; live figures drawn again
with a slider that works in the page, :mod:`~labkit.lab.report.twins`), and converted with nbconvert into
``<out>/<name>.html`` beside the shared ``<out>/_static/`` assets (:mod:`~labkit.lab.report.html`). The reports open
from disk with no network at all. Every control in them either works or is disabled beside the note "needs the live
lab: ``make lab``"; the command prints, per report, how many of each.
"""
from __future__ import annotations

import argparse

from labkit.lab.report.execute import SMOKE
from labkit.lab.report.html import ReportResult, write_reports

__all__ = ["ReportResult", "add_arguments", "run", "summary", "write_reports"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebooks", nargs="*", help="notebooks to report (default: all in notebooks/, the dashboard too)")
    parser.add_argument("--out", default="reports", help="output directory (default: reports)")
    parser.add_argument("--scale", default=SMOKE, help="the notebooks' SCALE parameter (default smoke)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")


def summary(r: ReportResult) -> str:
    """One line per report: its controls, each working offline or disabled with a note, then what was drawn."""
    line = f"{r.html}: {r.working_controls} controls work offline, {r.disabled_controls} disabled with a note"
    drawn = [f"{n} {what}" for n, what in ((r.twins, "live figures with an offline slider"),
                                           (r.offline_widgets, "widgets running in the page"),
                                           (r.plotly_figures, "plotly figures"),
                                           (r.frozen_figure_widgets, "static FigureWidgets"),
                                           (r.frozen_canvases, "static matplotlib canvases")) if n]
    if r.replaced_widgets:
        drawn.append(f"{len(r.replaced_widgets)} widgets replaced by the note: " + ", ".join(sorted(set(r.replaced_widgets))))
    return line + (f"; {', '.join(drawn)}" if drawn else "")


def run(args: argparse.Namespace) -> int:
    """Execute the notebooks and write offline HTML reports."""
    for r in write_reports(args.notebooks or None, args.out, args.scale, timeout=args.timeout):
        print(summary(r))
    return 0
