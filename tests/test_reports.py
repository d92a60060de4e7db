"""`make report`: each notebook's offline HTML opens in headless chromium with no failed request, no request leaving
the machine, no console error, its plotly figures drawn, its widgets rendered from the embedded state, and its math
typeset. Also the report transforms on hand-made notebooks. Budget ≤ 2 min (the notebooks' execution is shared with
test_notebooks.py through _notebook_runs)."""
from __future__ import annotations

import base64
import re

import nbformat
import numpy as np
import pytest

from _notebook_runs import REPORTED_NOTEBOOKS, executed
from labkit import report
from test_browser import chromium_page, require_browser

CDN_HINTS = ("cdn.", "unpkg.com", "cdnjs", "jsdelivr", "mathjax", "require.js")


# ---------------------------------------------------------------------------------------------------------------
# the transforms, on notebooks made by hand
# ---------------------------------------------------------------------------------------------------------------
def _widget_notebook(state: dict, view_id: str):
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("display_data", data={report.WIDGET_VIEW_MIME: {"model_id": view_id,
                                                                                  "version_major": 2,
                                                                                  "version_minor": 0}})
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[out])]
    nb.metadata["widgets"] = {report.WIDGET_STATE_MIME: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def _core(name: str, **state):
    return {"model_module": "@jupyter-widgets/controls", "model_name": name, "model_module_version": "2.0.0",
            "state": state}


def test_figure_widget_is_frozen_with_its_binary_arrays():
    y = np.array([0.5, 0.125, 2.0])
    figure_widget = {"model_module": "anywidget", "model_name": "AnyModel", "model_module_version": "~0.11.*",
                     "state": {"_esm": "x" * 100, "_widget_layout": {"title": {"text": "t"}},
                               "_widget_data": [{"type": "scatter", "x": [1, 2, 3], "y": {"dtype": "float64",
                                                                                          "shape": [3]}}]},
                     "buffers": [{"path": ["_widget_data", 0, "y", "buffer"], "encoding": "base64",
                                  "data": base64.b64encode(y.tobytes()).decode()}]}
    state = {"box": _core("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_fig"]),
             "slider": _core("FloatSliderModel", value=1.0), "fig": figure_widget,
             "other": {"model_module": "jupyter-matplotlib", "model_name": "MPLCanvasModel", "state": {}}}
    nb = _widget_notebook(state, "box")
    frozen, replaced = report.freeze_third_party_widgets(nb)
    assert (frozen, replaced) == (1, [])
    outputs = nb.cells[0].outputs
    assert outputs[0].data[report.WIDGET_VIEW_MIME]["model_id"] == "slider"  # the core part stays live
    html = outputs[1].data["text/html"]
    assert "[0.5,0.125,2.0]" in html.replace(" ", "") and "Plotly.newPlot" in html
    # the container held a third-party model, so it was flattened away; only the pure slider remains
    assert set(nb.metadata.widgets[report.WIDGET_STATE_MIME]["state"]) == {"slider"}


def test_unknown_third_party_widget_becomes_a_counted_note():
    state = {"canvas": {"model_module": "jupyter-matplotlib", "model_name": "MPLCanvasModel", "state": {}}}
    nb = _widget_notebook(state, "canvas")
    frozen, replaced = report.freeze_third_party_widgets(nb)
    assert (frozen, replaced) == (0, ["jupyter-matplotlib.MPLCanvasModel"])
    assert "needs a running kernel" in nb.cells[0].outputs[0].data["text/html"]
    assert nb.metadata.widgets[report.WIDGET_STATE_MIME]["state"] == {}


def test_plotly_json_output_gets_offline_html():
    nb = nbformat.v4.new_notebook()
    fig = {"data": [{"type": "scatter", "x": [0, 1], "y": [3, 4]}], "layout": {}}
    nb.cells = [nbformat.v4.new_code_cell("f", outputs=[
        nbformat.v4.new_output("display_data", data={report.PLOTLY_MIME: fig, "text/plain": "Figure"})])]
    assert report.embed_plotly_outputs(nb) == 1
    html = nb.cells[0].outputs[0].data["text/html"]
    assert "Plotly.newPlot" in html and "<script src" not in html and "mathjax" not in html.lower()
    assert report.PLOTLY_MIME not in nb.cells[0].outputs[0].data


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        report.write_reports([], tmp_path, scale="")
    with pytest.raises(ValueError, match="path"):
        report.execute_notebook(tmp_path / "missing.ipynb")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="out_dir"):
        report.write_reports(["x.ipynb"], tmp_path / "file")


# ---------------------------------------------------------------------------------------------------------------
# the real reports in a browser
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    report.write_static_assets(out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("notebook", REPORTED_NOTEBOOKS, ids=[p.stem for p in REPORTED_NOTEBOOKS])
def test_report_renders_offline(notebook, report_dir, tmp_path):
    require_browser()
    result = report.render_report(executed(notebook.name), notebook, report_dir)
    html = result.html.read_text()
    srcs = re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["']([^"']+)""", html)
    assert not [s for s in srcs if "://" in s or any(h in s.lower() for h in CDN_HINTS)], srcs
    nb = nbformat.read(notebook, as_version=4)
    has_math = any("$" in c.source for c in nb.cells if c.cell_type == "markdown")

    failed, errors, remote = [], [], []
    with chromium_page(tmp_path / "failure.png") as page:
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(result.html.as_uri(), wait_until="load")
        page.wait_for_timeout(500)  # the widget renderer starts on `load`
        plotted = page.locator(".js-plotly-plot .main-svg").count()
        widget_views = html.count(report.WIDGET_VIEW_MIME)
        rendered = page.locator(".jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, "
                                ".jupyter-widgets.widget-html, .jupyter-widgets.widget-image").count()
        katex = page.locator(".katex").count()
    assert not failed, failed
    assert not remote, remote
    assert not errors, errors
    if result.plotly_figures or result.frozen_figure_widgets:
        assert plotted >= result.plotly_figures + result.frozen_figure_widgets, plotted
    if widget_views > 0:
        assert rendered > 0, "widget state was embedded but no widget was drawn"
    if has_math:
        assert katex > 0, "the markdown holds math but nothing was typeset"
    print(f"{notebook.name}: {result.plotly_figures} plotly figures, {result.frozen_figure_widgets} frozen "
          f"FigureWidgets, {len(result.replaced_widgets)} widgets replaced by a note, {plotted} plots drawn")
