"""Making an executed notebook's rich outputs render in a page with no kernel and no network.

- plotly figures: plotly ≥ 6 emits only ``application/vnd.plotly.v1+json``, which nbconvert's HTML exporter drops;
  :func:`embed_plotly_outputs` adds a ``text/html`` rendering of each (a ``div`` plus ``Plotly.newPlot``; plotly.js
  and no MathJax come from the page);
- widgets: the page draws the recorded widget state with the ``@jupyter-widgets/html-manager`` renderer, which
  knows only the core widgets, so :func:`freeze_third_party_widgets` turns every plotly ``FigureWidget`` into the
  static figure of its recorded state and every ipympl canvas into the image it recorded, runs an anywidget that
  declares an ``offline`` trait (such as the Figure 4 explorer) from its own recorded ES module in the page
  (``static/offline_runner.js``), replaces any other third-party widget with a note, counts each kind, and removes
  their models from the state.
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

__all__ = ["CORE_WIDGET_MODULES", "OFFLINE_RUNNER", "PLOTLY_MIME", "WIDGET_STATE_MIME", "WIDGET_VIEW_MIME",
           "FreezeResult", "embed_plotly_outputs", "freeze_third_party_widgets"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
#: widget modules the vendored html-manager renders by itself
CORE_WIDGET_MODULES = frozenset({"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"})
MODEL_REF = "IPY_MODEL_"
#: the page-side runner of an offline anywidget, inlined after each one's recorded state
OFFLINE_RUNNER = STATIC_DIR / "offline_runner.js"


class FreezeResult(NamedTuple):
    """What :func:`freeze_third_party_widgets` did: FigureWidgets frozen, widgets replaced by a note (their
    ``module.model`` names), anywidgets run offline from their ES module, ipympl canvases frozen to their image."""

    frozen_figures: int
    replaced: list[str]
    offline: int
    frozen_canvases: int


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
                       default_width="100%", validate=False)


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


class _Freezer:
    """Rewrites widget views whose model tree holds a third-party model into outputs the core renderer can show."""

    def __init__(self, state: dict[str, dict[str, Any]]) -> None:
        self.state = state
        self.frozen_figures = 0
        self.offline = 0
        self.frozen_canvases = 0
        self.replaced: list[str] = []
        self._pure: dict[str, bool] = {}

    def pure(self, model_id: str, _seen: frozenset[str] = frozenset()) -> bool:
        """True when the model and everything it references are core widgets (renderable offline)."""
        if model_id not in self._pure:
            model = self.state.get(model_id)
            if model is None or model_id in _seen:
                return model is not None
            self._pure[model_id] = _is_core(model) and all(
                self.pure(ref, _seen | {model_id}) for ref in _refs(model.get("state", {})))
        return self._pure[model_id]

    def outputs_for(self, model_id: str, view: dict[str, Any]) -> list[dict[str, Any]]:
        """Display outputs standing in for the view of ``model_id``: the view itself when pure, else its children
        one by one (layout containers are flattened), plotly figures frozen, anything else a note."""
        if self.pure(model_id):
            return [_display({WIDGET_VIEW_MIME: {**view, "model_id": model_id}, "text/plain": "widget"})]
        model = self.state.get(model_id, {})
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
            return [_html_output(_offline_widget_html(model_id, model))]
        children = model.get("state", {}).get("children") if _is_core(model) else None
        if children:
            return [out for ref in children for child in _refs(ref) for out in self.outputs_for(child, view)]
        name = f"{model.get('model_module', '?')}.{model.get('model_name', '?')}"
        self.replaced.append(name)
        note = f"<p><em>[live widget {name}: needs a running kernel; open the notebook in the lab]</em></p>"
        return [_html_output(note)]


def freeze_third_party_widgets(nb) -> FreezeResult:
    """Make the notebook's widget views renderable offline (changes ``nb`` in place).

    Views built only from core widgets stay live (the html-manager draws them); a plotly ``FigureWidget`` becomes
    the static figure of its recorded state; an ipympl canvas the image it recorded; an anywidget with an
    ``offline`` trait runs from its recorded ES module in the page, its ``offline`` set to true; containers holding
    third-party widgets are flattened into their children; any other third-party widget becomes a note.
    Third-party models are then removed from the embedded state."""
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
            if view is None or freezer.pure(view["model_id"]):
                new_outputs.append(output)
            else:
                new_outputs.extend(freezer.outputs_for(view["model_id"], dict(view)))
        cell.outputs = new_outputs
    widgets_meta["state"] = {k: v for k, v in state.items() if freezer.pure(k)}
    return FreezeResult(freezer.frozen_figures, freezer.replaced, freezer.offline, freezer.frozen_canvases)
