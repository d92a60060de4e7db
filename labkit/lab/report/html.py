"""Writing the offline HTML reports: nbconvert with the lab's template, the shared ``_static/`` assets, and each
executed notebook made offline-ready (:mod:`labkit.lab.report.freeze`) and written as ``<out>/<name>.html``.

The page loads everything from ``_static/`` beside it: the ``@jupyter-widgets/html-manager`` renderer and its
fonts and KaTeX (vendored under ``labkit/lab/static/assets``), plotly.js (copied from the installed plotly
package). No require.js, MathJax or mermaid; nothing from a CDN. A link from one notebook to another
(``[…](01_huber_and_laplace.ipynb)``) points at that notebook's report. The ``reports/`` folder is what to share.
"""
from __future__ import annotations

import copy
import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from plotly.offline import get_plotlyjs

from labkit._io import write_atomic
from labkit.lab import STATIC_DIR
from labkit.lab.launch import DASHBOARD_NOTEBOOK
from labkit.lab.report.execute import SMOKE, check_scale, execute_notebook, list_notebooks
from labkit.lab.report.freeze import embed_plotly_outputs, freeze_third_party_widgets, native_plotly_controls

__all__ = ["STATIC_SUBDIR", "TEMPLATE_NAME", "ReportResult", "link_reports", "notebook_to_html", "render_report",
           "write_reports", "write_static_assets"]

#: the nbconvert template (``static/templates/labkit_offline``): JupyterLab's, every CDN script made local
TEMPLATE_NAME = "labkit_offline"
#: the folder, relative to a report, that holds its scripts, styles and fonts
STATIC_SUBDIR = "_static"
# a Markdown link to a notebook beside this one: [text](name.ipynb) or (name.ipynb#anchor)
_NOTEBOOK_LINK = re.compile(r"\]\(([\w.-]+)\.ipynb(#[^)\s]*)?\)")


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
    #: controls that work in the page, and controls drawn disabled with a note: every control is one of the two
    working_controls: int = 0
    disabled_controls: int = 0
    #: live figures drawn again with an offline slider (labkit.lab.report.twins)
    twins: int = 0


def notebook_to_html(nb, *, exclude_input: bool = False) -> str:
    """The executed notebook as one HTML page that loads its scripts, styles and fonts from ``_static/``
    (``exclude_input``: outputs and text only, as an app shows them)."""
    # here, not at the top: nbconvert takes ~1 s to import, and `python -m labkit` imports this module
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(STATIC_DIR / "templates")],
                            exclude_input=exclude_input, exclude_input_prompt=exclude_input,
                            exclude_output_prompt=exclude_input)
    body, _ = exporter.from_notebook_node(nb, resources={"labkit_static": STATIC_SUBDIR})
    return body


def link_reports(nb, reported: set[str]) -> int:
    """Point each Markdown link to a notebook in ``reported`` (file names) at its report: ``name.ipynb`` becomes
    ``name.html`` (an anchor kept). Changes ``nb`` in place; returns the number of links changed."""
    count = 0

    def to_html(match: re.Match) -> str:
        nonlocal count
        if f"{match.group(1)}.ipynb" not in reported:
            return match.group(0)
        count += 1
        return f"]({match.group(1)}.html{match.group(2) or ''})"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _NOTEBOOK_LINK.sub(to_html, cell.source)
    return count


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


def render_report(nb, notebook: Path, out_dir: Path, reported: set[str] | None = None) -> ReportResult:
    """Make an executed notebook offline-ready and write ``out_dir/<name>.html`` (atomically). Links to the
    notebooks named in ``reported`` (default: every notebook beside this one) point at their reports."""
    nb = copy.deepcopy(nb)
    result = ReportResult(notebook=notebook, html=out_dir / f"{notebook.stem}.html")
    link_reports(nb, {p.name for p in list_notebooks(notebook.parent)} if reported is None else reported)
    native = native_plotly_controls(nb)
    result.plotly_figures = embed_plotly_outputs(nb)
    frozen = freeze_third_party_widgets(nb)
    result.frozen_figure_widgets, result.replaced_widgets = frozen.frozen_figures, frozen.replaced
    result.offline_widgets, result.frozen_canvases = frozen.offline, frozen.frozen_canvases
    result.working_controls, result.disabled_controls = native + frozen.working_controls, frozen.disabled_controls
    result.twins = frozen.twins
    # the dashboard is an app (`make dashboard` shows it in Voila, without code): its report leaves the code out too
    write_atomic(result.html, notebook_to_html(nb, exclude_input=notebook.name == DASHBOARD_NOTEBOOK))
    return result


def write_reports(notebooks: Sequence[str | os.PathLike] | None = None, out_dir: str | os.PathLike = "reports",
                  scale: str = SMOKE, *, timeout: int = 600) -> list[ReportResult]:
    """Execute each notebook (default: every notebook in ``notebooks/``, the dashboard too) at ``scale`` and write
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
