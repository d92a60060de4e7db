"""Making an executed notebook's rich outputs render in a page with no kernel and no network.

- plotly figures: plotly ≥ 6 emits only ``application/vnd.plotly.v1+json``, which nbconvert's HTML exporter drops;
  :func:`embed_plotly_outputs` adds a ``text/html`` rendering of each (a ``div`` plus ``Plotly.newPlot``; plotly.js
  and no MathJax come from the page);
- widgets: the page draws the recorded widget state with the ``@jupyter-widgets/html-manager`` renderer, which
  knows only the core widgets, so :func:`freeze_third_party_widgets` draws a box holding a third-party widget as a
  ``div`` with the box's layout (its core children still drawn by the renderer), turns every plotly
  ``FigureWidget`` into the static figure of its recorded state and every ipympl canvas into the image it
  recorded, runs an anywidget that declares an ``offline`` trait (such as the Figure 4 explorer) from its own
  recorded ES module in the page (``static/offline_runner.js``), draws a live figure of :mod:`labkit.figures.live`
  again with a slider that works in the page (:mod:`~labkit.lab.report.twins`), replaces any other third-party
  widget with a note, counts each kind, and removes their models from the state;
- controls: no control in a report moves without its output changing. A core control (slider, menu, box, text,
  button …) works offline only through a front-end link (``jslink``); every other one is drawn disabled, with the
  note "needs the live lab: ``make lab``" before its view. Each control is counted as working or disabled.
"""
from __future__ import annotations

import base64
import copy
import functools
import html
import json
from typing import Any, Iterator, NamedTuple

import numpy as np
import plotly.io as pio

from labkit.lab import STATIC_DIR
from labkit.lab.report.twins import PLOTLY_CONFIG, live_figure_twin, needs_lab

__all__ = ["CONTROL_MODELS", "CORE_WIDGET_MODULES", "OFFLINE_RUNNER", "PLOTLY_MIME", "WIDGET_STATE_MIME", "WIDGET_VIEW_MIME",
           "FreezeResult", "native_plotly_controls", "embed_plotly_outputs", "freeze_third_party_widgets"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
#: widget modules the vendored html-manager renders by itself
CORE_WIDGET_MODULES = frozenset({"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"})
MODEL_REF = "IPY_MODEL_"
#: core models a reader operates (what a report must either run or draw disabled)
CONTROL_MODELS = frozenset({
    "BoundedFloatTextModel", "BoundedIntTextModel", "ButtonModel", "CheckboxModel", "ColorPickerModel",
    "ColorsInputModel", "ComboboxModel", "DatePickerModel", "DatetimeModel", "DropdownModel", "FileUploadModel",
    "FloatLogSliderModel", "FloatRangeSliderModel", "FloatSliderModel", "FloatTextModel", "FloatsInputModel",
    "IntRangeSliderModel", "IntSliderModel", "IntTextModel", "IntsInputModel", "NaiveDatetimeModel", "PasswordModel",
    "PlayModel", "RadioButtonsModel", "SelectModel", "SelectMultipleModel", "SelectionRangeSliderModel",
    "SelectionSliderModel", "TagsInputModel", "TextModel", "TextareaModel", "TimePickerModel", "ToggleButtonModel",
    "ToggleButtonsModel"})
#: front-end links between models (``jslink``, ``jsdlink``): what lets a control act with no kernel
LINK_MODELS = frozenset({"LinkModel", "DirectionalLinkModel"})
#: the page-side runner of an offline anywidget, inlined after each one's recorded state
OFFLINE_RUNNER = STATIC_DIR / "offline_runner.js"


class FreezeResult(NamedTuple):
    """What :func:`freeze_third_party_widgets` did: FigureWidgets frozen, widgets replaced by a note (their
    ``module.model`` names), anywidgets run offline from their ES module, ipympl canvases frozen to their image;
    controls that work in the page, controls drawn disabled with a note (every control is one or the other), and
    live figures drawn again with an offline slider."""

    frozen_figures: int
    replaced: list[str]
    offline: int
    frozen_canvases: int
    working_controls: int = 0
    disabled_controls: int = 0
    twins: int = 0


def _display(data: dict[str, Any]):
    """A ``display_data`` output carrying ``data`` (mimetype -> content)."""
    # here, not at the top: nbformat takes ~1 s to import (jsonschema), and `python -m labkit` imports this module
    import nbformat

    return nbformat.v4.new_output("display_data", data=data)


def _html_output(text: str):
    return _display({"text/html": text})


def _plotly_html(figure: dict[str, Any]) -> str:
    # plotly.js comes from the page's <head>; include_mathjax=False keeps plotly from adding a MathJax CDN script
    return pio.to_html(figure, include_plotlyjs=False, include_mathjax=False, full_html=False,
                       default_width="100%", validate=False, config=PLOTLY_CONFIG)


def native_plotly_controls(nb) -> int:
    """The sliders and menus plotly figures carry themselves (``layout.sliders``, ``layout.updatemenus``): plotly.js
    runs them in the page, so each is a control that works offline. Count them before :func:`embed_plotly_outputs`."""
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            layout = output.get("data", {}).get(PLOTLY_MIME, {}).get("layout", {})
            count += len(layout.get("sliders", ())) + len(layout.get("updatemenus", ()))
    return count


def embed_plotly_outputs(nb) -> int:
    """Give every output carrying plotly's JSON mimetype a ``text/html`` rendering (replacing any other) and drop
    the JSON copy. Returns the number of figures embedded. Changes ``nb`` in place."""
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                data["text/html"] = _plotly_html(data.pop(PLOTLY_MIME))
                count += 1
    return count


# ---------------------------------------------------------------------------------------------------------------
# reading recorded widget models
# ---------------------------------------------------------------------------------------------------------------
#: how a box model lays out its children (what ipywidgets' own CSS gives each)
BOX_CSS = {"VBoxModel": "display:flex;flex-direction:column;", "HBoxModel": "display:flex;flex-direction:row;",
           "BoxModel": "display:flex;", "GridBoxModel": "display:grid;"}
#: the layout properties that place a child in its parent (they go on the child's slot in a drawn box)
PLACEMENT = frozenset({"align_self", "flex", "grid_area", "grid_column", "grid_row", "justify_self", "order"})


def _layout_css(state: dict[str, dict[str, Any]], model_id: str, only: frozenset[str] | None = None) -> str:
    """The CSS of the model's ``Layout`` (``grid_template_columns`` → ``grid-template-columns: …;``), attribute-safe;
    ``only``: just those properties."""
    layout_id = next(_refs(state.get(model_id, {}).get("state", {}).get("layout")), None)
    layout = state.get(layout_id, {}).get("state", {}) if layout_id else {}
    css = "".join(f"{key.replace('_', '-')}:{value};" for key, value in sorted(layout.items())
                  if not key.startswith("_") and isinstance(value, str) and value and (only is None or key in only))
    return html.escape(css, quote=True)


def _output_html(output: dict[str, Any]) -> str:
    """An output as a piece of a page: HTML as it is; a widget view as the tag the widget renderer replaces."""
    view = output.get("data", {}).get(WIDGET_VIEW_MIME)
    if view is None:
        return output["data"]["text/html"]
    return f'<script type="{WIDGET_VIEW_MIME}">{json.dumps(view)}</script>'


def _refs(value: Any) -> Iterator[str]:
    """Model ids referenced (``"IPY_MODEL_<id>"``) anywhere inside a widget state value."""
    if isinstance(value, str):
        if value.startswith(MODEL_REF):
            yield value[len(MODEL_REF):]
    elif isinstance(value, dict):
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _refs(v)


def _is_core(model: dict[str, Any]) -> bool:
    return model.get("model_module") in CORE_WIDGET_MODULES


def _figure_from_widget_state(model: dict[str, Any]) -> dict[str, Any]:
    """The plotly figure dict recorded in a ``FigureWidget``'s state. Its arrays travel as binary buffers beside
    the state (``buffers``: path into the state + base64 bytes; the state holds ``dtype`` and ``shape``)."""
    state = copy.deepcopy(model["state"])
    for buf in model.get("buffers", []):
        *parent_path, key = buf["path"]
        holder, container = state, None
        for step in parent_path:
            container, holder = holder, holder[step]
        if key != "buffer" or container is None or buf.get("encoding", "base64") != "base64":
            raise ValueError(f"unexpected FigureWidget buffer at {buf['path']!r}")
        array = np.frombuffer(base64.b64decode(buf["data"]), dtype=holder["dtype"]).reshape(holder["shape"])
        container[parent_path[-1]] = array.tolist()
    return {"data": state["_widget_data"], "layout": state["_widget_layout"]}


def _is_figure_widget(model: dict[str, Any]) -> bool:
    state = model.get("state", {})
    return model.get("model_module") == "anywidget" and "_widget_data" in state and "_widget_layout" in state


def _canvas_image(model: dict[str, Any]) -> str | None:
    """The image an ipympl canvas recorded (``_data_url``: ipympl keeps it in the state while no front end is
    attached, as under nbclient), as a data URL; None when it is not an ipympl canvas or recorded nothing."""
    if (model.get("model_module"), model.get("model_name")) != ("jupyter-matplotlib", "MPLCanvasModel"):
        return None
    url = model.get("state", {}).get("_data_url")
    if not isinstance(url, str) or not url:
        return None
    return url if url.startswith("data:image/") else f"data:image/png;base64,{url}"


def _runs_offline(model: dict[str, Any]) -> bool:
    """An anywidget whose state carries its ES module and an ``offline`` flag: it knows how to work without a
    kernel (the flag tells its front end that none will answer)."""
    state = model.get("state", {})
    return (model.get("model_module") == "anywidget" and isinstance(state.get("_esm"), str)
            and isinstance(state.get("offline"), bool))


# ---------------------------------------------------------------------------------------------------------------
# what stands in for a third-party widget
# ---------------------------------------------------------------------------------------------------------------
@functools.cache
def _offline_runner_script() -> str:
    """``static/offline_runner.js`` as an inline module script (read once)."""
    source = OFFLINE_RUNNER.read_text(encoding="utf-8")
    if "</script" in source.lower():
        raise ValueError(f"{OFFLINE_RUNNER} must not contain '</script': it is inlined into the page")
    return f'<script type="module">\n{source}</script>'


def _offline_widget_html(model_id: str, model: dict[str, Any]) -> str:
    """A ``text/html`` output that draws the anywidget ``model`` in the page with no kernel (see ``_runs_offline``):
    an empty ``div`` naming the JSON element that holds the recorded state, that element, and the runner."""
    buffers = model.get("buffers", [])
    spec = {"state": model["state"], "buffers": [{"path": b["path"], "data": b["data"]} for b in buffers
                                                 if b.get("encoding", "base64") == "base64"]}
    if len(spec["buffers"]) != len(buffers):
        raise ValueError(f"widget {model_id}: only base64 buffers can be embedded")
    # "<" occurs only inside JSON strings, where \u003c reads the same: no "</script" or "<!--" reaches the parser
    payload = json.dumps(spec, separators=(",", ":")).replace("<", "\\u003c")
    data_id = html.escape(f"labkit-offline-state-{model_id}", quote=True)
    return (f'<div class="labkit-offline-widget" data-labkit-state="{data_id}"></div>'
            f'<script type="application/json" id="{data_id}">{payload}</script>' + _offline_runner_script())


def _linked_ends(state: dict[str, dict[str, Any]]) -> set[str]:
    """Models whose change a front-end link carries to another model: both ends of a ``jslink``, the source of a
    ``jsdlink``."""
    ends = set()
    for model in state.values():
        if _is_core(model) and model.get("model_name") in LINK_MODELS:
            st = model.get("state", {})
            ends.update(_refs(st.get("source")))
            if model["model_name"] == "LinkModel":
                ends.update(_refs(st.get("target")))
    return ends


class _Freezer:
    """Rewrites widget views whose model tree holds a third-party model into outputs the core renderer can show,
    and makes every control either work in the page or be drawn disabled with a note."""

    def __init__(self, state: dict[str, dict[str, Any]]) -> None:
        self.state = state
        self.frozen_figures = self.offline = self.frozen_canvases = self.twins = 0
        self.working = self.disabled = 0
        self.replaced: list[str] = []
        self._pure: dict[str, bool] = {}
        self._linked = _linked_ends(state)
        self._counted: set[str] = set()

    def pure(self, model_id: str, _seen: frozenset[str] = frozenset()) -> bool:
        """True when the model and everything it references are core widgets (renderable offline)."""
        if model_id not in self._pure:
            model = self.state.get(model_id)
            if model is None or model_id in _seen:
                return model is not None
            self._pure[model_id] = _is_core(model) and all(
                self.pure(ref, _seen | {model_id}) for ref in _refs(model.get("state", {})))
        return self._pure[model_id]

    def _controls(self, model_id: str, seen: set[str]) -> Iterator[str]:
        if model_id in seen or model_id not in self.state:
            return
        seen.add(model_id)
        model = self.state[model_id]
        if model.get("model_name") in CONTROL_MODELS:
            yield model_id
        for ref in _refs(model.get("state", {})):
            yield from self._controls(ref, seen)

    def pure_view(self, output: dict[str, Any], model_id: str) -> list[dict[str, Any]]:
        """A pure view kept as it is, each of its controls counted: working when a front-end link carries its
        change, else disabled in the recorded state; a note comes before the view when any is disabled."""
        disabled = 0
        for control in self._controls(model_id, set()):
            if control in self._counted:
                continue
            self._counted.add(control)
            if control in self._linked and not self.state[control]["state"].get("disabled"):
                self.working += 1
            else:
                self.state[control]["state"]["disabled"] = True
                disabled += 1
        self.disabled += disabled
        if not disabled:
            return [output]
        return [_html_output(needs_lab(f"The greyed-out controls below ({disabled}) need", tag="p")), output]

    def outputs_for(self, model_id: str, view: dict[str, Any]) -> list[dict[str, Any]]:
        """Display outputs standing in for the view of ``model_id``: the view itself when pure, a live figure drawn
        again with an offline slider, a box as a ``div`` with its children, plotly figures frozen, anything else a
        note."""
        if self.pure(model_id):
            return self.pure_view(_display({WIDGET_VIEW_MIME: {**view, "model_id": model_id}, "text/plain": "widget"}),
                                  model_id)
        model = self.state.get(model_id, {})
        spec = model.get("state", {}).get("offline_twin") if _is_core(model) else None
        if spec:
            twin = live_figure_twin(spec, self.state)
            self.twins += 1
            self.working, self.disabled = self.working + twin.working, self.disabled + twin.disabled
            self._counted.update(self._controls(model_id, set()))
            return [_html_output(twin.html)]
        if _is_figure_widget(model):
            self.frozen_figures += 1
            return [_html_output(_plotly_html(_figure_from_widget_state(model)))]
        image = _canvas_image(model)
        if image is not None:
            self.frozen_canvases += 1
            label = html.escape(str(model["state"].get("_figure_label", "Figure")), quote=True)
            return [_html_output(f'<img class="labkit-frozen-canvas" alt="{label}" src="{image}"/>')]
        if _runs_offline(model):
            self.offline += 1
            controls = model["state"].get("offline_controls", {})
            self.working += len(controls.get("working", []))
            self.disabled += len(controls.get("disabled", []))
            return [_html_output(_offline_widget_html(model_id, model))]
        children = model.get("state", {}).get("children") if _is_core(model) else None
        if children:  # the box drawn as a div with its layout, each child inside in its place
            parts = [f'<div style="{_layout_css(self.state, child, PLACEMENT)}">'
                     + "".join(_output_html(out) for out in self.outputs_for(child, view)) + "</div>"
                     for ref in children for child in _refs(ref)]
            classes = " ".join(["labkit-frozen-box", *map(str, model["state"].get("_dom_classes", []))])
            style = BOX_CSS.get(model.get("model_name"), "") + _layout_css(self.state, model_id)
            return [_html_output(f'<div class="{html.escape(classes, quote=True)}" style="{style}">'
                                 + "".join(parts) + "</div>")]
        name = f"{model.get('model_module', '?')}.{model.get('model_name', '?')}"
        self.replaced.append(name)
        self.disabled += 1
        return [_html_output(needs_lab(f"This live widget ({name}) needs", tag="p"))]


def freeze_third_party_widgets(nb) -> FreezeResult:
    """Make the notebook's widget views renderable offline (changes ``nb`` in place).

    Views built only from core widgets stay live (the html-manager draws them), their controls disabled unless a
    front-end link makes them act; a live figure of :mod:`labkit.figures.live` is drawn again over an α grid with
    a slider that works in the page; a plotly ``FigureWidget`` becomes the static figure of its recorded state; an
    ipympl canvas the image it recorded; an anywidget with an ``offline`` trait runs from its recorded ES module in
    the page, its ``offline`` set to true; a box holding third-party widgets becomes a ``div`` with its layout, its
    children in it; any other third-party widget becomes a note. Third-party models are then removed from the embedded
    state."""
    widgets_meta = nb.metadata.get("widgets", {}).get(WIDGET_STATE_MIME)
    if not widgets_meta:
        return FreezeResult(0, [], 0, 0)
    state = widgets_meta["state"]
    freezer = _Freezer(state)
    for cell in nb.cells:
        if "outputs" not in cell:
            continue
        new_outputs = []
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW_MIME)
            if view is None:
                new_outputs.append(output)
            elif freezer.pure(view["model_id"]):
                new_outputs.extend(freezer.pure_view(output, view["model_id"]))
            else:
                new_outputs.extend(freezer.outputs_for(view["model_id"], dict(view)))
        cell.outputs = new_outputs
    widgets_meta["state"] = {k: v for k, v in state.items() if freezer.pure(k)}
    return FreezeResult(freezer.frozen_figures, freezer.replaced, freezer.offline, freezer.frozen_canvases,
                        freezer.working, freezer.disabled, freezer.twins)
