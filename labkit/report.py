"""Offline HTML reports of the lab's notebooks (``make report``, ``python -m labkit report``).

Each notebook is executed with papermill (kernel ``python3``, working directory ``notebooks/``, the parameter
``SCALE`` injected: ``"smoke"`` by default) and converted with nbconvert into ``reports/<name>.html``. The reports
open from disk with no network at all:

- plotly figures: plotly ≥ 6 emits only ``application/vnd.plotly.v1+json``, which nbconvert's HTML exporter drops;
  :func:`embed_plotly_outputs` adds a ``text/html`` rendering of each (a ``div`` plus ``Plotly.newPlot``, no
  MathJax or plotly.js from a CDN), and the page loads plotly.js (copied from the installed plotly package) once;
- widgets: the state nbclient records is embedded and drawn by the ``@jupyter-widgets/html-manager`` renderer,
  vendored under ``labkit/static/assets``. That renderer knows only the core widgets, so
  :func:`freeze_third_party_widgets` turns every plotly ``FigureWidget`` into the static figure of its recorded
  state and every ipympl canvas into the image it recorded, runs an anywidget that declares an ``offline`` trait
  (such as :class:`labkit.explorer.Figure4Explorer`) from its own recorded ES module in the page, replaces any other
  third-party widget with a note, counts each kind, and removes their models from the state;
- math: KaTeX (vendored) instead of MathJax; require.js and mermaid are not loaded.

The assets are written to ``<out>/_static/`` beside the reports, so the ``reports/`` folder is what to share.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

__all__ = [
    "SMOKE",
    "FreezeResult",
    "ReportResult",
    "embed_plotly_outputs",
    "execute_notebook",
    "freeze_third_party_widgets",
    "list_notebooks",
    "notebook_to_html",
    "write_reports",
    "write_static_assets",
]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_NAME = "labkit_offline"
#: the folder, relative to a report, that holds its scripts, styles and fonts
STATIC_SUBDIR = "_static"
#: the ``SCALE`` every notebook knows: the quick pass CI runs. Larger scales are each notebook's own ("full", "lab",
#: "coco", ...); the notebook's parameters cell says which it accepts.
SMOKE = "smoke"
#: the parameter papermill injects into each notebook's ``parameters`` cell: ``SCALE = "<scale>"``, or, for a
#: notebook whose parameters cell has the boolean ``SMOKE`` instead, ``SMOKE = (scale == "smoke")``
SCALE_PARAMETER = "SCALE"
SMOKE_PARAMETER = "SMOKE"
#: notebooks that are not reports (the Voila dashboard is an app, not a document)
NOT_REPORTED = frozenset({"dashboard.ipynb"})

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
#: widget modules the vendored html-manager renders by itself
CORE_WIDGET_MODULES = frozenset({"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"})
MODEL_REF = "IPY_MODEL_"


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


class FreezeResult(NamedTuple):
    """What :func:`freeze_third_party_widgets` did: FigureWidgets frozen, widgets replaced by a note (their
    ``module.model`` names), anywidgets run offline from their ES module, ipympl canvases frozen to their image."""

    frozen_figures: int
    replaced: list[str]
    offline: int
    frozen_canvases: int


# ---------------------------------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------------------------------
def _check_scale(scale: str) -> str:
    if not isinstance(scale, str) or not scale.isidentifier() or not scale.islower():
        raise ValueError(f"scale must be a lower-case word such as {SMOKE!r} (the notebooks' SCALE), got scale={scale!r}")
    return scale


@contextlib.contextmanager
def _kernel_environment(**variables: str) -> Iterator[None]:
    """Set environment variables for the kernels started inside the block (they inherit this process's)."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def parameter_names(nb) -> list[str]:
    """Names assigned at the top level of the notebook's cell tagged ``parameters`` (empty when it has none)."""
    import ast

    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)]
    return []


def scale_parameters(nb, scale: str) -> dict[str, object]:
    """The papermill parameters that select ``scale`` in this notebook (see ``SCALE_PARAMETER``)."""
    scale = _check_scale(scale)
    names = parameter_names(nb)
    if SMOKE_PARAMETER in names and SCALE_PARAMETER not in names:
        return {SMOKE_PARAMETER: scale == SMOKE}
    return {SCALE_PARAMETER: scale}


def execute_notebook(path: str | os.PathLike, scale: str = "smoke", *, timeout: int = 600):
    """Run a notebook top to bottom with papermill in a fresh ``python3`` kernel whose working directory is the
    notebook's folder, ``scale`` selected by :func:`scale_parameters`. Returns the executed ``NotebookNode`` (nothing written); raises
    papermill's ``PapermillExecutionError`` naming the failing cell."""
    import nbformat
    import papermill

    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"path must be an existing .ipynb file, got path={str(path)!r}")
    parameters = scale_parameters(nbformat.read(path, as_version=4), scale)
    # plotly's mimetype alone: embed_plotly_outputs renders it, so no renderer can add a CDN <script>
    with _kernel_environment(PLOTLY_RENDERER="plotly_mimetype"):
        return papermill.execute_notebook(
            str(path), None, parameters=parameters, kernel_name="python3", cwd=str(path.parent),
            progress_bar=False, log_output=False, request_save_on_cell_execute=False, execution_timeout=timeout,
        )


# ---------------------------------------------------------------------------------------------------------------
# making the executed notebook render offline
# ---------------------------------------------------------------------------------------------------------------
def _plotly_html(figure: dict[str, Any]) -> str:
    import plotly.io as pio

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
    import numpy as np

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


#: the page-side runner of an offline anywidget: a model object over the recorded state (binary buffers decoded
#: to DataViews, ``set`` fires ``change:<name>`` locally, nothing is sent anywhere), the widget's ES module
#: imported from a blob URL, ``render`` called on the output's ``div``
_OFFLINE_RUNNER = """<script type="module">
const spec = JSON.parse(document.getElementById("%(data_id)s").textContent);
const state = spec.state;
for (const buf of spec.buffers) {
  const bytes = Uint8Array.from(atob(buf.data), (c) => c.charCodeAt(0));
  let holder = state;
  for (const step of buf.path.slice(0, -1)) holder = holder[step];
  holder[buf.path[buf.path.length - 1]] = new DataView(bytes.buffer);
}
state.offline = true;
const listeners = new Map();
const model = {
  get: (name) => state[name],
  set(name, value) { state[name] = value; for (const f of listeners.get("change:" + name) || []) f(); },
  on(event, f) { listeners.set(event, [...(listeners.get(event) || []), f]); },
  off(event, f) {
    if (!event) listeners.clear();
    else if (!f) listeners.delete(event);
    else listeners.set(event, (listeners.get(event) || []).filter((g) => g !== f));
  },
  save_changes() {}, send() {},
};
const url = URL.createObjectURL(new Blob([state._esm], { type: "text/javascript" }));
let widget = (await import(url)).default;
if (typeof widget === "function") widget = await widget();
if (widget.initialize) await widget.initialize({ model });
await widget.render({ model, el: document.getElementById("%(view_id)s") });
</script>"""


def _offline_widget_html(model_id: str, model: dict[str, Any]) -> str:
    """A ``text/html`` output that draws the anywidget ``model`` in the page with no kernel (see ``_runs_offline``)."""
    import json

    spec = {"state": model["state"], "buffers": [
        {"path": b["path"], "data": b["data"]} for b in model.get("buffers", []) if b.get("encoding", "base64") == "base64"]}
    if len(spec["buffers"]) != len(model.get("buffers", [])):
        raise ValueError(f"widget {model_id}: only base64 buffers can be embedded")
    # "</" cannot end the JSON's <script> element early once escaped
    payload = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    data_id, view_id = f"labkit-offline-state-{model_id}", f"labkit-offline-view-{model_id}"
    return (f'<div id="{view_id}" class="labkit-offline-widget"></div>'
            f'<script type="application/json" id="{data_id}">{payload}</script>'
            + _OFFLINE_RUNNER % {"data_id": data_id, "view_id": view_id})


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
        import nbformat

        if self.pure(model_id):
            return [nbformat.v4.new_output("display_data", data={WIDGET_VIEW_MIME: {**view, "model_id": model_id},
                                                                 "text/plain": "widget"})]
        model = self.state.get(model_id, {})
        if _is_figure_widget(model):
            self.frozen_figures += 1
            figure = _figure_from_widget_state(model)
            return [nbformat.v4.new_output("display_data", data={"text/html": _plotly_html(figure)})]
        image = _canvas_image(model)
        if image is not None:
            import html

            self.frozen_canvases += 1
            label = html.escape(str(model["state"].get("_figure_label", "Figure")), quote=True)
            return [nbformat.v4.new_output("display_data", data={
                "text/html": f'<img class="labkit-frozen-canvas" alt="{label}" src="{image}"/>'})]
        if _runs_offline(model):
            self.offline += 1
            return [nbformat.v4.new_output("display_data", data={"text/html": _offline_widget_html(model_id, model)})]
        children = model.get("state", {}).get("children") if _is_core(model) else None
        if children:
            return [out for ref in children for child in _refs(ref) for out in self.outputs_for(child, view)]
        name = f"{model.get('model_module', '?')}.{model.get('model_name', '?')}"
        self.replaced.append(name)
        note = f"<p><em>[live widget {name}: needs a running kernel; open the notebook in the lab]</em></p>"
        return [nbformat.v4.new_output("display_data", data={"text/html": note})]


def freeze_third_party_widgets(nb) -> FreezeResult:
    """Make the notebook's widget views renderable offline (changes ``nb`` in place).

    Views built only from core widgets stay live (the html-manager draws them); a plotly ``FigureWidget`` becomes
    the static figure of its recorded state; an ipympl canvas the image it recorded; an anywidget with an ``offline`` trait runs from its recorded ES module
    in the page, its ``offline`` set to true; containers holding third-party widgets are flattened into their
    children; any other third-party widget becomes a note. Third-party models are then removed from the embedded
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
            if view is None or freezer.pure(view["model_id"]):
                new_outputs.append(output)
            else:
                new_outputs.extend(freezer.outputs_for(view["model_id"], dict(view)))
        cell.outputs = new_outputs
    widgets_meta["state"] = {k: v for k, v in state.items() if freezer.pure(k)}
    return FreezeResult(freezer.frozen_figures, freezer.replaced, freezer.offline, freezer.frozen_canvases)


# ---------------------------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------------------------
def notebook_to_html(nb) -> str:
    """The executed notebook as one HTML page that loads its scripts, styles and fonts from ``_static/``."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(STATIC_DIR / "templates")])
    body, _ = exporter.from_notebook_node(nb, resources={"labkit_static": STATIC_SUBDIR})
    return body


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; reports are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_static_assets(out_dir: str | os.PathLike) -> Path:
    """Write the reports' local assets to ``out_dir/_static``: the widget renderer and its fonts, KaTeX, and
    plotly.js from the installed plotly package. ``*.gz`` files are stored compressed and written expanded."""
    from plotly.offline import get_plotlyjs

    target = Path(out_dir) / STATIC_SUBDIR
    target.mkdir(parents=True, exist_ok=True)
    assets = STATIC_DIR / "assets"
    for src in sorted(assets.rglob("*")):
        if not src.is_file() or "LICENSE" in src.name or src.name == "README.md":
            continue
        rel = src.relative_to(assets)
        dst = target / (rel.with_suffix("") if src.suffix == ".gz" else rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(dst, gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes())
    _write_atomic(target / "plotly.min.js", get_plotlyjs().encode())
    return target


def list_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """The lab's notebooks that make reports, in name order (``dashboard.ipynb`` is an app and is left out)."""
    folder = Path(notebook_dir)
    if not folder.is_dir():
        raise ValueError(f"notebook_dir must be a directory, got {str(folder)!r}")
    return [p for p in sorted(folder.glob("*.ipynb")) if p.name not in NOT_REPORTED]


def render_report(nb, notebook: Path, out_dir: Path) -> ReportResult:
    """Make an executed notebook offline-ready and write ``out_dir/<name>.html`` (atomically)."""
    nb = copy.deepcopy(nb)
    result = ReportResult(notebook=notebook, html=out_dir / f"{notebook.stem}.html")
    result.plotly_figures = embed_plotly_outputs(nb)
    frozen = freeze_third_party_widgets(nb)
    result.frozen_figure_widgets, result.replaced_widgets = frozen.frozen_figures, frozen.replaced
    result.offline_widgets, result.frozen_canvases = frozen.offline, frozen.frozen_canvases
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(result.html, notebook_to_html(nb).encode())
    return result


def write_reports(notebooks: Sequence[str | os.PathLike] | None = None, out_dir: str | os.PathLike = "reports",
                  scale: str = "smoke", *, timeout: int = 600) -> list[ReportResult]:
    """Execute each notebook (default: every notebook in ``notebooks/`` but the dashboard) at ``scale`` and write
    its offline HTML report into ``out_dir`` with the shared ``_static/`` assets."""
    scale = _check_scale(scale)
    paths = list_notebooks() if notebooks is None else [Path(p) for p in notebooks]
    if not paths:
        raise ValueError("notebooks must name at least one notebook (none found)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a directory, got the file {str(out)!r}")
    write_static_assets(out)
    return [render_report(execute_notebook(p, scale, timeout=timeout), p, out) for p in paths]


# ---------------------------------------------------------------------------------------------------------------
# the `report` command
# ---------------------------------------------------------------------------------------------------------------
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
