"""`make report`: every report opens from file:// in headless chromium with every network request aborted, no console
error, its plotly figures drawn, its widgets rendered from the embedded state and its math typeset; every control in
it either changes an output of its own cell when moved or is disabled beside a visible "needs the live lab" note, and
the page holds exactly the controls `make report` counted; every link resolves, and links between notebooks point at
their reports. Also the report transforms on hand-made notebooks and on real widgets (a live figure, the
calculator). Budget ≤ 3 min on 2 cores (the notebooks' execution is shared with test_notebooks.py through
_notebook_runs)."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import numpy as np
import pytest
import torch

from _notebook_runs import REPORTED_NOTEBOOKS, executed
from labkit.figures.explorer import slider_alphas
from labkit.lab.report import summary, write_reports
from labkit.lab.report.execute import execute_notebook
from labkit.lab.report.freeze import (PLOTLY_MIME, WIDGET_STATE_MIME, WIDGET_VIEW_MIME, FreezeResult,
                                      embed_plotly_outputs, freeze_third_party_widgets,
                                      native_plotly_controls)
from labkit.lab.report.html import link_reports, render_report, write_static_assets
from labkit.lab.report.twins import NEEDS_LAB_CLASS, POSITIONS
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
    state = {"box": _core("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_fig"], layout="IPY_MODEL_layout"),
             "layout": {"model_module": "@jupyter-widgets/base", "model_name": "LayoutModel",
                        "state": {"width": "50%", "grid_column": None, "_view_name": "LayoutView"}},
             "slider": _core("FloatSliderModel", value=1.0), "fig": figure_widget,
             "other": {"model_module": "jupyter-matplotlib", "model_name": "MPLCanvasModel", "state": {}}}
    nb = _widget_notebook(state, "box")
    # the slider drives nothing without a kernel: disabled, and a note says so
    assert freeze_third_party_widgets(nb) == FreezeResult(1, [], 0, 0, working_controls=0, disabled_controls=1)
    (output,) = nb.cells[0].outputs  # the box, drawn as a div with its layout: note, slider, figure in order
    html = output.data["text/html"]
    assert html.startswith('<div class="labkit-frozen-box" style="display:flex;flex-direction:column;width:50%;">')
    note, slider, figure = (html.index(NEEDS_LAB_CLASS), html.index(f'<script type="{WIDGET_VIEW_MIME}">'),
                            html.index("Plotly.newPlot"))
    assert note < slider < figure and "make lab" in html
    assert json.loads(html[slider:].split(">", 1)[1].split("</script>")[0])["model_id"] == "slider"
    assert nb.metadata.widgets[WIDGET_STATE_MIME]["state"]["slider"]["state"]["disabled"] is True
    assert "[0.5,0.125,2.0]" in html.replace(" ", "")
    # the container held a third-party model, so it is a div now; the pure slider (and its layout) remain
    assert set(nb.metadata.widgets[WIDGET_STATE_MIME]["state"]) == {"slider", "layout"}


def test_unknown_third_party_widget_becomes_a_counted_note():
    state = {"canvas": {"model_module": "jupyter-matplotlib", "model_name": "MPLCanvasModel", "state": {}}}
    nb = _widget_notebook(state, "canvas")
    assert freeze_third_party_widgets(nb) == FreezeResult(0, ["jupyter-matplotlib.MPLCanvasModel"], 0, 0,
                                                          disabled_controls=1)
    assert "needs the live lab" in nb.cells[0].outputs[0].data["text/html"]
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
    assert freeze_third_party_widgets(nb) == FreezeResult(0, [], 0, 2)
    (output,) = nb.cells[0].outputs
    assert output.data["text/html"] == (
        '<div class="labkit-frozen-box" style="display:flex;flex-direction:row;"><div style="">'
        f'<img class="labkit-frozen-canvas" alt="Fig &quot;1&quot;" src="data:image/png;base64,{png}"/></div>'
        f'<div style=""><img class="labkit-frozen-canvas" alt="Figure" src="data:image/png;base64,{png}"/></div></div>')
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
    assert freeze_third_party_widgets(nb) == FreezeResult(0, [], 1, 0, disabled_controls=1)
    assert set(nb.metadata.widgets[WIDGET_STATE_MIME]["state"]) == {"slider"}
    html = nb.cells[0].outputs[-1].data["text/html"]
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
    fig = {"data": [{"type": "scatter", "x": [0, 1], "y": [3, 4]}],
           "layout": {"sliders": [{"steps": [{"method": "restyle", "args": ["visible", [True]]}]}]}}
    nb.cells = [nbformat.v4.new_code_cell("f", outputs=[
        nbformat.v4.new_output("display_data", data={PLOTLY_MIME: fig, "text/plain": "Figure"})])]
    assert native_plotly_controls(nb) == 1  # plotly.js runs its own slider in the page: a working control
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
# ---------------------------------------------------------------------------------------------------------------
# real widgets through the freezer: a live figure and the calculator
# ---------------------------------------------------------------------------------------------------------------
def _embedded(widget) -> nbformat.NotebookNode:
    """A notebook whose one cell shows ``widget``, with the widget state a saved notebook would hold."""
    from ipywidgets.embed import embed_data

    data = embed_data(views=[widget])
    nb = _widget_notebook(data["manager_state"]["state"], widget.model_id)
    return nb


def _plotly_call(html: str) -> tuple[list, dict]:
    """The data and layout that a plotly HTML snippet hands to ``Plotly.newPlot``."""
    decoder = json.JSONDecoder()
    rest = html[html.index("Plotly.newPlot(") + len("Plotly.newPlot("):]
    _, end = decoder.raw_decode(rest.lstrip())  # the div id
    rest = rest.lstrip()[end:].lstrip(" \n,")
    data, end = decoder.raw_decode(rest)
    layout, _ = decoder.raw_decode(rest[end:].lstrip(" \n,"))
    return data, layout


def test_live_figure_becomes_a_figure_whose_slider_steps_hold_the_huber_loss():
    """Figure 4's live view becomes one plotly figure with a native slider over POSITIONS values of α; each step's
    H_α is torch's huber_loss at that α (to the 4 digits the steps keep), β and its box disabled beside the note."""
    from labkit.figures.live import live_figure4

    view = live_figure4(alpha=0.5)
    nb = _embedded(view)
    result = freeze_third_party_widgets(nb)
    assert (result.twins, result.working_controls, result.disabled_controls) == (1, 1, 2)
    (output,) = nb.cells[0].outputs
    html = output.data["text/html"]
    assert NEEDS_LAB_CLASS in html and html.count(" disabled") == 2
    data, layout = _plotly_call(html)
    (slider,) = layout["sliders"]
    steps = slider["steps"]
    assert len(steps) == POSITIONS and float(steps[slider["active"]]["label"]) == 0.5
    huber_trace = next(i for i, t in enumerate(data) if t["meta"] == "huber")
    alphas = slider_alphas(POSITIONS)  # the grid the steps are labelled with
    for alpha, step in list(zip(alphas, steps))[::6]:
        update, titles, traces = step["args"]
        k = traces.index(huber_trace)
        # Figure 4 keeps one window, [−3, 3]: the steps carry x only for what moves (its marks)
        x = torch.tensor(update["x"][k] if "x" in update else data[huber_trace]["x"], dtype=torch.float64)
        want = torch.nn.functional.huber_loss(x, torch.zeros_like(x), reduction="none", delta=alpha)
        np.testing.assert_allclose(update["y"][k], want.numpy(), rtol=1e-3, atol=1e-12 * alpha)
        # the slider's values are round (0.5, not 0.501) and read as written
        assert step["label"] == f"{alpha:.4g}" and titles["annotations[0].text"].startswith(f"α = {alpha:.4g}")


def test_calculator_menu_and_plot_buttons_work_offline_and_the_rest_is_disabled():
    from labkit.interpret.calculator import calculator

    calc = calculator("proposed", "detectron2")
    nb = _embedded(calc)
    result = freeze_third_party_widgets(nb)
    # working: the framework menu and the plot buttons (front-end links); disabled: 16 noise sliders, 2 α boxes,
    # the ratio box
    assert (result.working_controls, result.disabled_controls) == (2, 19)
    state = nb.metadata.widgets[WIDGET_STATE_MIME]["state"]
    assert not state[calc.framework.model_id]["state"].get("disabled")
    assert state[calc.sliders["rpn", "label", "x"].model_id]["state"]["disabled"] is True
    assert NEEDS_LAB_CLASS in nb.cells[0].outputs[0].data["text/html"]


def test_calculator_snippets_are_monospace_with_numbers_a_person_reads():
    from labkit.interpret.calculator import calculator, readable_numbers

    snippet = calculator("proposed", "torchvision").snippets["torchvision"].value
    assert snippet.startswith('<pre class="labkit-snippet"') and "monospace" in snippet
    assert "bbox_reg_weights=(20/9, 20/9, 10/9, 10/9)" in snippet and "2.2222" not in snippet
    # Python snippets: the fraction is the very float (20/9 == 2.2222222222222223); elsewhere 6 digits
    assert 20 / 9 == 2.2222222222222223
    assert readable_numbers("BETA = 0.1111111111111111  # 1/9", python=True) == "BETA = 1/9"
    assert readable_numbers("beta: 0.1111111111111111", python=False) == "beta: 0.111111"


def test_links_between_notebooks_point_at_their_reports():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "[a](01_a.ipynb), [b](02_b.ipynb#Part-2), [c](elsewhere/03_c.ipynb), [d](https://x.org/04_d.ipynb)")])
    assert link_reports(nb, {"01_a.ipynb", "02_b.ipynb", "03_c.ipynb"}) == 2
    assert nb.cells[0].source == ("[a](01_a.html), [b](02_b.html#Part-2), [c](elsewhere/03_c.ipynb), "
                                  "[d](https://x.org/04_d.ipynb)")


# ---------------------------------------------------------------------------------------------------------------
# the real reports in a browser, network blocked
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Every notebook's report, written side by side as `make report` writes them (links between them resolve)."""
    out = tmp_path_factory.mktemp("reports")
    write_static_assets(out)
    return {p.name: render_report(executed(p.name), p, out) for p in REPORTED_NOTEBOOKS}


# in the page: every control in a code cell, tagged data-probe=<n>, with its cell and kind
FIND_CONTROLS_JS = """() => {
  const found = [];
  document.querySelectorAll('.jp-Cell').forEach((cell, c) => {
    const tag = (el, kind) => { el.dataset.probe = found.length; found.push({probe: found.length, cell: c, kind}); };
    for (const el of cell.querySelectorAll('input, select, textarea')) tag(el, el.tagName === 'INPUT' ? el.type : 'select');
    for (const el of cell.querySelectorAll('.noUi-target')) tag(el, 'nouislider');
    for (const el of cell.querySelectorAll('.widget-toggle-buttons')) tag(el, 'togglebuttons');
    for (const el of cell.querySelectorAll('button.widget-button')) tag(el, 'button');
    for (const el of cell.querySelectorAll('.js-plotly-plot g.slider-container')) tag(el, 'plotly-slider');
  });
  return found;
}"""
IS_DISABLED_JS = """el => el.disabled === true || el.hasAttribute('disabled')
  || (el.matches('.widget-toggle-buttons') && [...el.querySelectorAll('button')].every(b => b.disabled))"""
# in the page: what cell c shows, its controls (and their readouts) left out, canvases as pixels
OUTPUTS_JS = """c => {
  const cell = document.querySelectorAll('.jp-Cell')[c];
  const copy = cell.cloneNode(true);
  copy.querySelectorAll('input, select, textarea, .widget-readout, .noUi-target, .widget-toggle-buttons, '
    + '.labkit-explorer-controls, .labkit-offline-controls, .slider-container, .hoverlayer').forEach(e => e.remove());
  const pixels = [...cell.querySelectorAll('canvas')].map(cv => { try { return cv.toDataURL(); } catch (e) { return ''; } });
  return copy.innerHTML + pixels.join('');
}"""
LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map(a => [a.getAttribute('href'), a.href])"


def _open_offline(page, result) -> tuple[list[str], list[str]]:
    """Open the report from disk with every request that is not a file, data: or blob: URL aborted; wait until its
    plots, widgets and offline widgets are drawn. Returns (console errors, aborted requests)."""
    errors, aborted = [], []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:", "blob:"))
               else (aborted.append(route.request.url), route.abort()))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(result.html.as_uri(), wait_until="load")
    plots = result.plotly_figures + result.frozen_figure_widgets + result.twins
    page.wait_for_function("([plots, offline]) => document.querySelectorAll('.js-plotly-plot .main-svg').length >= plots"
                           " && document.querySelectorAll('.labkit-offline-widget > *').length >= offline",
                           arg=[plots, result.offline_widgets], timeout=60_000)
    page.wait_for_timeout(500)  # the widget renderer starts on `load`
    return errors, aborted


def _move(page, probe: int, kind: str) -> None:
    """Operate control ``probe`` as a reader would: to the far end of a slider, the next option of a menu, …"""
    el = page.locator(f'[data-probe="{probe}"]')
    el.scroll_into_view_if_needed()
    if kind == "range":
        el.evaluate("s => { s.value = Number(s.value) - Number(s.min) > (Number(s.max) - Number(s.min)) / 2 ? s.min"
                    " : s.max; s.dispatchEvent(new Event('input', {bubbles: true}));"
                    " s.dispatchEvent(new Event('change', {bubbles: true})); }")
    elif kind == "select":
        el.evaluate("s => { s.selectedIndex = (s.selectedIndex + 1) % s.options.length;"
                    " s.dispatchEvent(new Event('change', {bubbles: true})); }")
    elif kind in ("checkbox", "button"):
        el.click()
    elif kind == "togglebuttons":
        el.locator("button:not(.mod-active)").first.click()
    elif kind in ("text", "number", "textarea"):
        el.fill("2")
        el.press("Enter")
    elif kind in ("nouislider", "plotly-slider"):
        track = el.locator("rect.slider-rail-touch-rect").first if kind == "plotly-slider" else el
        grip = el.locator("rect.slider-grip-rect, .noUi-handle").first.bounding_box()
        box = track.bounding_box()
        right = grip["x"] + grip["width"] / 2 < box["x"] + box["width"] / 2
        page.mouse.click(box["x"] + box["width"] * (0.95 if right else 0.05), box["y"] + box["height"] / 2)
    else:
        raise AssertionError(f"no way to operate a control of kind {kind!r}")


def _check_controls(page, result) -> list[str]:
    """Every control changes its cell's output or is disabled beside a visible note; returns the problems."""
    problems = []
    controls = page.evaluate(FIND_CONTROLS_JS)
    working = 0
    for c in controls:
        name = f"cell {c['cell']}: {c['kind']} #{c['probe']}"
        el = page.locator(f'[data-probe="{c["probe"]}"]')
        if el.evaluate(IS_DISABLED_JS):
            note = page.locator(".jp-Cell").nth(c["cell"]).locator(f".{NEEDS_LAB_CLASS}").first
            if not note.count() or not note.is_visible():
                problems.append(f"{name} is disabled without a visible 'needs the live lab' note")
            continue
        working += 1
        before = page.evaluate(OUTPUTS_JS, c["cell"])
        _move(page, c["probe"], c["kind"])
        for _ in range(20):  # up to 2 s for the repaint
            page.wait_for_timeout(100)
            if page.evaluate(OUTPUTS_JS, c["cell"]) != before:
                break
        else:
            problems.append(f"{name} moved and nothing else in its cell changed")
    counted = (result.working_controls, result.disabled_controls)
    if (working, len(controls) - working) != counted:
        problems.append(f"the page has {working} working and {len(controls) - working} disabled controls, "
                        f"`make report` counted {counted}")
    return problems


def _check_links(page, report: Path) -> tuple[list[str], list[str]]:
    """Every link in the page: an anchor that exists, or a file that exists (never a notebook: links between
    notebooks must point at their reports). Returns (problems, external links, which are not followed offline)."""
    problems, external = [], []
    for raw, resolved in page.evaluate(LINKS_JS):
        if raw.startswith("#"):  # as a browser looks it up: the fragment as written, then percent-decoded
            found = [page.evaluate("t => !!(document.getElementById(t) || document.getElementsByName(t).length)", t)
                     for t in (raw[1:], unquote(raw[1:]))]
            if not any(found):
                problems.append(f"{raw}: no element with that id in {report.name}")
        elif resolved.startswith("file:"):
            path = Path(unquote(urlparse(resolved).path))
            if path.suffix == ".ipynb":
                problems.append(f"{raw}: links a notebook, not its report")
            elif not path.exists():
                problems.append(f"{raw}: {path} does not exist")
        else:
            external.append(raw)
    return problems, external


@pytest.mark.slow
@pytest.mark.parametrize("notebook", REPORTED_NOTEBOOKS, ids=[p.stem for p in REPORTED_NOTEBOOKS])
def test_report_works_offline(notebook, reports, tmp_path):
    require_browser()
    result = reports[notebook.name]
    html = result.html.read_text()
    srcs = re.findall(r"""<(?:script|link)[^>]+(?:src|href)=["']([^"']+)""", html)
    assert not [s for s in srcs if "://" in s or any(h in s.lower() for h in CDN_HINTS)], srcs
    nb = nbformat.read(notebook, as_version=4)
    has_math = any("$" in c.source for c in nb.cells if c.cell_type == "markdown")
    with chromium_page(tmp_path / "failure.png") as page:
        errors, aborted = _open_offline(page, result)
        widget_views = html.count(WIDGET_VIEW_MIME)
        rendered = page.locator(".jupyter-widgets.widget-container, .jupyter-widgets.widget-inline-hbox, "
                                ".jupyter-widgets.widget-html, .jupyter-widgets.widget-image").count()
        katex = page.locator(".katex").count()
        canvases_drawn = page.locator("img.labkit-frozen-canvas").evaluate_all(
            "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
        link_problems, external = _check_links(page, result.html)
        control_problems = _check_controls(page, result)
        page.screenshot(path=str(tmp_path / f"{notebook.stem}.png"), full_page=True)
    assert not aborted, f"the report asked the network for {aborted}"
    assert not errors, errors
    if widget_views > 0:
        assert rendered > 0, "widget state was embedded but no widget was drawn"
    assert canvases_drawn == result.frozen_canvases, (canvases_drawn, result.frozen_canvases)
    if has_math:
        assert katex > 0, "the markdown holds math but nothing was typeset"
    assert not link_problems, link_problems
    assert not control_problems, control_problems
    print(f"{summary(result)}; external links not followed offline: {external or 'none'}")
