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
from labkit.lab.report import write_reports
from labkit.lab.report.execute import execute_notebook
from labkit.lab.report.freeze import (PLOTLY_MIME, WIDGET_STATE_MIME, WIDGET_VIEW_MIME, embed_plotly_outputs,
                                      freeze_third_party_widgets)
from labkit.lab.report.html import render_report, write_static_assets
from test_browser import chromium_page, require_browser

CDN_HINTS = ("cdn.", "unpkg.com", "cdnjs", "jsdelivr", "mathjax", "require.js")


# ---------------------------------------------------------------------------------------------------------------
# the transforms, on notebooks made by hand
# ---------------------------------------------------------------------------------------------------------------
def _widget_notebook(state: dict, view_id: str):
    nb = nbformat.v4.new_notebook()
    view = {"model_id": view_id, "version_major": 2, "version_minor": 0}
    out = nbformat.v4.new_output("display_data", data={WIDGET_VIEW_MIME: view})
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[out])]
    nb.metadata["widgets"] = {WIDGET_STATE_MIME: {"state": state, "version_major": 2, "version_minor": 0}}
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
    assert freeze_third_party_widgets(nb) == (1, [], 0, 0)
    outputs = nb.cells[0].outputs
    assert outputs[0].data[WIDGET_VIEW_MIME]["model_id"] == "slider"  # the core part stays live
    html = outputs[1].data["text/html"]
    assert "[0.5,0.125,2.0]" in html.replace(" ", "") and "Plotly.newPlot" in html
    # the container held a third-party model, so it was flattened away; only the pure slider remains
    assert set(nb.metadata.widgets[WIDGET_STATE_MIME]["state"]) == {"slider"}


def test_unknown_third_party_widget_becomes_a_counted_note():
    state = {"canvas": {"model_module": "jupyter-matplotlib", "model_name": "MPLCanvasModel", "state": {}}}
    nb = _widget_notebook(state, "canvas")
    assert freeze_third_party_widgets(nb) == (0, ["jupyter-matplotlib.MPLCanvasModel"], 0, 0)
    assert "needs a running kernel" in nb.cells[0].outputs[0].data["text/html"]
    assert nb.metadata.widgets[WIDGET_STATE_MIME]["state"] == {}


def test_ipympl_canvas_is_frozen_to_the_image_it_recorded():
    png = base64.b64encode(b"\x89PNG fake").decode()
    state = {"a": {"model_module": "jupyter-matplotlib", "model_name": "MPLCanvasModel",
                   "state": {"_data_url": png, "_figure_label": 'Fig "1"', "toolbar": "IPY_MODEL_tb"}},
             "b": {"model_module": "jupyter-matplotlib", "model_name": "MPLCanvasModel",
                   "state": {"_data_url": f"data:image/png;base64,{png}"}},
             "tb": {"model_module": "jupyter-matplotlib", "model_name": "ToolbarModel", "state": {}},
             "box": _core("HBoxModel", children=["IPY_MODEL_a", "IPY_MODEL_b"])}
    nb = _widget_notebook(state, "box")
    assert freeze_third_party_widgets(nb) == (0, [], 0, 2)
    images = [o.data["text/html"] for o in nb.cells[0].outputs]
    assert images == [f'<img class="labkit-frozen-canvas" alt="Fig &quot;1&quot;" src="data:image/png;base64,{png}"/>',
                      f'<img class="labkit-frozen-canvas" alt="Figure" src="data:image/png;base64,{png}"/>']
    assert nb.metadata.widgets[WIDGET_STATE_MIME]["state"] == {}


# an anywidget that declares `offline`: its ES module draws the state it was given (a number, a binary buffer
# summed in the page, the offline flag) and counts `change:` events its own `set` fires
_OFFLINE_ESM = """
export default { render({ model, el }) {
  const values = new Float64Array(model.get("data").buffer);
  let clicks = 0;
  model.on("change:n", () => { clicks += 1; });
  model.set("n", model.get("n") + 1);
  model.save_changes();
  el.innerHTML = `<span class="probe">${model.get("n")}|${values.reduce((a, b) => a + b, 0)}|${model.get("offline")}|${clicks}</span>`;
} };
"""


def _offline_widget(n: int, data: np.ndarray) -> dict:
    return {"model_module": "anywidget", "model_name": "AnyModel", "model_module_version": "~0.9.*",
            "state": {"_esm": _OFFLINE_ESM, "n": n, "offline": False, "note": "</script><b>x</b>"},
            "buffers": [{"path": ["data"], "encoding": "base64", "data": base64.b64encode(data.tobytes()).decode()}]}


def test_offline_anywidget_runs_from_its_module(tmp_path):
    """The recorded ES module runs in the page on the recorded state: buffer decoded, `offline` true, `set` fires
    the model's change events; a `</script>` inside the state does not end the embedding early."""
    data = np.array([0.25, 1.5, 2.0])
    state = {"box": _core("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_w"]),
             "slider": _core("FloatSliderModel", value=1.0), "w": _offline_widget(41, data)}
    nb = _widget_notebook(state, "box")
    assert freeze_third_party_widgets(nb) == (0, [], 1, 0)
    assert set(nb.metadata.widgets[WIDGET_STATE_MIME]["state"]) == {"slider"}
    html = nb.cells[0].outputs[1].data["text/html"]
    assert "</script><b>" not in html
    require_browser()
    page_path = tmp_path / "offline.html"
    page_path.write_text(f"<!doctype html><html><body>{html}</body></html>")
    errors = []
    with chromium_page(tmp_path / "failure.png") as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_selector(".probe", timeout=10_000)
        assert page.locator(".probe").inner_text() == f"42|{data.sum()}|true|1"
    assert not errors, errors


def test_plotly_json_output_gets_offline_html():
    nb = nbformat.v4.new_notebook()
    fig = {"data": [{"type": "scatter", "x": [0, 1], "y": [3, 4]}], "layout": {}}
    nb.cells = [nbformat.v4.new_code_cell("f", outputs=[
        nbformat.v4.new_output("display_data", data={PLOTLY_MIME: fig, "text/plain": "Figure"})])]
    assert embed_plotly_outputs(nb) == 1
    html = nb.cells[0].outputs[0].data["text/html"]
    assert "Plotly.newPlot" in html and "<script src" not in html and "mathjax" not in html.lower()
    assert PLOTLY_MIME not in nb.cells[0].outputs[0].data


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        write_reports([], tmp_path, scale="")
    with pytest.raises(ValueError, match="path"):
        execute_notebook(tmp_path / "missing.ipynb")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="out_dir"):
        write_reports(["x.ipynb"], tmp_path / "file")


# ---------------------------------------------------------------------------------------------------------------
# the real reports in a browser
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    write_static_assets(out)
    return out


def _drag_offline_explorers(page) -> list[bool]:
    """Move each offline Figure 4 explorer's α slider to its other end; True for each whose H_α path changed."""
    moved = []
    for explorer in page.locator(".labkit-offline-widget .labkit-figure4-explorer").all():
        slider, path = explorer.locator("input.labkit-explorer-alpha"), explorer.locator("path.curve-huber").first
        before = path.get_attribute("d")
        target = "0" if int(slider.input_value()) > 0 else slider.get_attribute("max")
        slider.evaluate("(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }", target)
        moved.append(bool(before) and path.get_attribute("d") != before
                     and explorer.locator("input.labkit-explorer-beta").is_disabled())
    return moved


@pytest.mark.slow
@pytest.mark.parametrize("notebook", REPORTED_NOTEBOOKS, ids=[p.stem for p in REPORTED_NOTEBOOKS])
def test_report_renders_offline(notebook, report_dir, tmp_path):
    require_browser()
    result = render_report(executed(notebook.name), notebook, report_dir)
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
        widget_views = html.count(WIDGET_VIEW_MIME)
        rendered = page.locator(".jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, "
                                ".jupyter-widgets.widget-html, .jupyter-widgets.widget-image").count()
        katex = page.locator(".katex").count()
        offline_drawn = page.locator(".labkit-offline-widget > *").count()
        canvases_drawn = page.locator("img.labkit-frozen-canvas").evaluate_all(
            "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
        explorer_moves = _drag_offline_explorers(page)
    assert not failed, failed
    assert not remote, remote
    assert not errors, errors
    if result.plotly_figures or result.frozen_figure_widgets:
        assert plotted >= result.plotly_figures + result.frozen_figure_widgets, plotted
    if widget_views > 0:
        assert rendered > 0, "widget state was embedded but no widget was drawn"
    assert offline_drawn >= result.offline_widgets, (offline_drawn, result.offline_widgets)
    assert canvases_drawn == result.frozen_canvases, (canvases_drawn, result.frozen_canvases)
    assert all(explorer_moves), "an offline Figure 4 explorer did not repaint when its α slider moved"
    if has_math:
        assert katex > 0, "the markdown holds math but nothing was typeset"
    print(f"{notebook.name}: {result.plotly_figures} plotly figures, {result.frozen_figure_widgets} frozen "
          f"FigureWidgets, {result.frozen_canvases} frozen canvases, {result.offline_widgets} widgets running offline, {len(result.replaced_widgets)} widgets "
          f"replaced by a note, {plotted} plots drawn")
