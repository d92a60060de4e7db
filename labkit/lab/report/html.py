"""Writing the offline HTML reports: nbconvert with the lab's template, the shared ``_static/`` assets, and each
executed notebook made offline-ready (:mod:`labkit.lab.report.freeze`) and written as ``<out>/<name>.html``.

The page loads everything from ``_static/`` beside it: the ``@jupyter-widgets/html-manager`` renderer and its
fonts and KaTeX (vendored under ``labkit/lab/static/assets``), plotly.js (copied from the installed plotly
package). No require.js, MathJax or mermaid; nothing from a CDN. The ``reports/`` folder is what to share.
"""
from __future__ import annotations

import copy
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from plotly.offline import get_plotlyjs

from labkit._io import write_atomic
from labkit.lab import STATIC_DIR
from labkit.lab.report.execute import SMOKE, check_scale, execute_notebook, list_notebooks
from labkit.lab.report.freeze import embed_plotly_outputs, freeze_third_party_widgets

__all__ = ["STATIC_SUBDIR", "TEMPLATE_NAME", "ReportResult", "notebook_to_html", "render_report", "write_reports",
           "write_static_assets"]

#: the nbconvert template (``static/templates/labkit_offline``): JupyterLab's, every CDN script made local
TEMPLATE_NAME = "labkit_offline"
#: the folder, relative to a report, that holds its scripts, styles and fonts
STATIC_SUBDIR = "_static"


@dataclass
class ReportResult:
    """What :func:`write_reports` did for one notebook: the HTML written and what was changed on the way."""

    notebook: Path
    html: Path
    plotly_figures: int = 0
    frozen_figure_widgets: int = 0
    replaced_widgets: list[str] = field(default_factory=list)
    offline_widgets: int = 0
    frozen_canvases: int = 0


def notebook_to_html(nb) -> str:
    """The executed notebook as one HTML page that loads its scripts, styles and fonts from ``_static/``."""
    # here, not at the top: nbconvert takes ~1 s to import, and `python -m labkit` imports this module
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(STATIC_DIR / "templates")])
    body, _ = exporter.from_notebook_node(nb, resources={"labkit_static": STATIC_SUBDIR})
    return body


def write_static_assets(out_dir: str | os.PathLike) -> Path:
    """Write the reports' local assets to ``out_dir/_static``: the widget renderer and its fonts, KaTeX, and
    plotly.js from the installed plotly package. ``*.gz`` files are stored compressed and written expanded."""
    target = Path(out_dir) / STATIC_SUBDIR
    assets = STATIC_DIR / "assets"
    for src in sorted(assets.rglob("*")):
        if not src.is_file() or "LICENSE" in src.name or src.name == "README.md":
            continue
        rel = src.relative_to(assets)
        if src.suffix == ".gz":
            write_atomic(target / rel.with_suffix(""), gzip.decompress(src.read_bytes()))
        else:
            write_atomic(target / rel, src.read_bytes())
    write_atomic(target / "plotly.min.js", get_plotlyjs())
    return target


def render_report(nb, notebook: Path, out_dir: Path) -> ReportResult:
    """Make an executed notebook offline-ready and write ``out_dir/<name>.html`` (atomically)."""
    nb = copy.deepcopy(nb)
    result = ReportResult(notebook=notebook, html=out_dir / f"{notebook.stem}.html")
    result.plotly_figures = embed_plotly_outputs(nb)
    frozen = freeze_third_party_widgets(nb)
    result.frozen_figure_widgets, result.replaced_widgets = frozen.frozen_figures, frozen.replaced
    result.offline_widgets, result.frozen_canvases = frozen.offline, frozen.frozen_canvases
    write_atomic(result.html, notebook_to_html(nb))
    return result


def write_reports(notebooks: Sequence[str | os.PathLike] | None = None, out_dir: str | os.PathLike = "reports",
                  scale: str = SMOKE, *, timeout: int = 600) -> list[ReportResult]:
    """Execute each notebook (default: every notebook in ``notebooks/`` but the dashboard) at ``scale`` and write
    its offline HTML report into ``out_dir`` with the shared ``_static/`` assets."""
    scale = check_scale(scale)
    paths = list_notebooks() if notebooks is None else [Path(p) for p in notebooks]
    if not paths:
        raise ValueError("notebooks must name at least one notebook (none found)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a directory, got the file {str(out)!r}")
    write_static_assets(out)
    return [render_report(execute_notebook(p, scale, timeout=timeout), p, out) for p in paths]
