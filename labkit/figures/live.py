"""Live versions of Figures 1–4: sliders over α (and β) that update the existing plot in place.

``live_figure1 … live_figure4`` return a :class:`LiveFigure`, an ipywidgets ``VBox`` with the sliders on top and the
figure below. A slider step recomputes the figure's panels with :mod:`labkit.figures.builders` (so every value
still comes from :mod:`labkit.losses` / :mod:`labkit.densities`) and writes the new arrays into the artists already
on screen:

- plotly: one ``go.FigureWidget``; the x/y arrays of its traces and the subplot titles change inside one
  ``batch_update`` (one message to the browser per step);
- matplotlib: an ipympl canvas (shown as a widget; use ``%matplotlib widget`` in the notebook); the lines get
  ``set_data``, the shaded gap of Figure 3 its new polygon, the axes rescale, then ``draw_idle``.

Under Voila 0.5 use the matplotlib views (the dashboard does): plotly's FigureWidget is an anywidget whose ~5 MB
ES module must load within anywidget's 2 s initialisation window; Voila creates all models at page load, the window
closes first, and anywidget then drops every later update of that model ("Failed to initialize model"), so the
figure draws once and never repaints. ipympl is a classic widget module without that window.

No figure is rebuilt per step. Everything works without a kernel too: setting ``slider.value`` in plain Python runs
the same update, which is how the tests and ``benchmarks/bench_sliders.py`` drive it.

A view records in its widget state which figure it shows and which models are its controls (``offline_twin``), so
that an offline report (:mod:`labkit.lab.report`) can draw it again over a grid of α with :func:`view_panels`, the
function the view itself calls, as a figure whose slider works with no kernel.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np
import traitlets

from labkit.figures import builders
from labkit.figures.builders import ALPHA_RANGE, BETA_RANGE, Panel

__all__ = ["LOG_STEP", "POINTS", "VIEWS", "LiveFigure", "css_class", "live_figure1", "live_figure2", "live_figure3", "live_figure4",
           "view_panels"]

#: slider step in log10 units: 600 positions over 10⁻³ … 10³ (the value a position stands for is rounded to
#: ``builders.SLIDER_DIGITS`` significant digits, the readout shows that)
LOG_STEP = 0.01
#: a log slider's width, its label's, its readout's and the track's inset on each side, in CSS pixels: a track of
#: 356 px (the decade labels under it are placed by these numbers; checked against ipywidgets 8 in Chromium)
SLIDER_PX, LABEL_PX, READOUT_PX, TRACK_PAD_PX = 480, 28, 64, 16
#: points per curve by backend (``n_points=None``): plotly ships every step's arrays to the browser and redraws
#: them there, so its views draw 201 (a step's message and plotly.js's redraw are half as long; the kinks stay
#: sharp at these plot widths); matplotlib draws in the kernel and ships pixels, so it keeps the builders' 401
POINTS = {"plotly": 201, "matplotlib": builders.N_POINTS}
#: each live figure's grid of panels, (rows, cols), and its size in inches per backend (``figsize=`` of
#: ``live_figure1`` … ``live_figure4`` overrides it; plotly takes the height and fills the width it is given). matplotlib draws at 100 dpi
#: and ipympl shows the canvas at that size: 7.2 in (720 px) leaves room for ipympl's toolbar in a notebook column
#: of a 1280 px window with the file browser open.
VIEWS: dict[int, tuple[int, int, dict[str, tuple[float, float]]]] = {
    1: (1, 1, {"plotly": (6.0, 4.0), "matplotlib": (5.2, 3.5)}),
    2: (1, 1, {"plotly": (6.0, 4.0), "matplotlib": (5.2, 3.5)}),
    3: (1, 1, {"plotly": (6.0, 4.0), "matplotlib": (5.2, 3.5)}),
    4: (1, 2, {"plotly": (10.0, 4.2), "matplotlib": (7.2, 3.2)}),
}


def view_panels(figure: int, alpha: float, beta: float | None = None, n_points: int = builders.N_POINTS) -> list[Panel]:
    """The panels live Figure ``figure`` (1–4) shows at ``alpha`` (and, for Figure 4, ``beta``; None: β = 1/α),
    from :mod:`labkit.figures.builders`: what a slider step draws, and what an offline report draws per step."""
    if figure == 4:
        return builders.figure4_panels((alpha,), beta, n_points=n_points)
    panels = {1: builders.figure1_panels, 2: builders.figure2_panels, 3: builders.figure3_panels}.get(figure)
    if panels is None:
        raise ValueError(f"figure must be one of {tuple(VIEWS)}, got figure={figure!r}")
    return panels(alpha, n_points=n_points)


def css_class(figure: int, backend: str) -> str:
    """CSS class of a live view's container, for styling and for browser tests to find it: ``labkit-figure4`` for
    the plotly view of Figure 4, ``labkit-figure4-matplotlib`` for its ipympl twin (so each class is unique)."""
    return f"labkit-figure{figure}" if backend == "plotly" else f"labkit-figure{figure}-{backend}"


class _PlotlyTarget:
    """A ``go.FigureWidget`` built once by :func:`labkit.figures.builders.plotly_figure`; ``show`` swaps its arrays."""

    def __init__(self, panels: Sequence[Panel], rows: int, cols: int, height: int) -> None:
        # here, not at the top: plotly's FigureWidget costs ~0.9 s to import and the matplotlib views never use it
        import plotly.graph_objects as go

        self.figure = go.FigureWidget(builders.plotly_figure(panels, rows, cols, height))
        for annotation, panel in zip(self.figure.layout.annotations, panels):
            annotation.text = panel.name or panel.ylabel  # without the values: they would go stale
        self.widget = self.figure
        self._x = [x for x, _, _ in builders.trace_data(panels)]
        self._texts = [t for _, _, t in builders.trace_data(panels)]
        self._ylims = [p.ylim for p in panels]

    def show(self, panels: Sequence[Panel]) -> None:
        # one message per step: every trace's y (and x and texts where they changed) in one restyle, or in one
        # update with the y ranges of panels whose range is fixed (Figure 2); setting trace.x/y one by one costs
        # ~3× more Python time. The titles are not touched: a relayout of the subplot titles alone costs ~5–10 ms
        # a step, so the live titles name the panel and the slider readouts give α and β. x changes only when a
        # window or a mark moves, so many steps send y alone: half the bytes to ship and for plotly.js to take in.
        # float32: half the bytes of float64, and all a screen can show
        data = builders.trace_data(panels)
        update: dict[str, Any] = {"y": [y.astype(np.float32) for _, y, _ in data]}
        if any(not np.array_equal(old, x, equal_nan=True) for old, (x, _, _) in zip(self._x, data)):
            update["x"] = [x.astype(np.float32) for x, _, _ in data]
            self._x = [x for x, _, _ in data]
        texts = [t for _, _, t in data]
        if texts != self._texts:
            update["text"] = [None if t is None else builders.plotly_texts(t) for t in texts]
            self._texts = texts
        ylims = [p.ylim for p in panels]
        if ylims != self._ylims:
            layout = {}
            for i, ylim in enumerate(ylims):
                axis = "yaxis" if i == 0 else f"yaxis{i + 1}"
                layout.update({f"{axis}.range": list(ylim)} if ylim is not None else {f"{axis}.autorange": True})
            self._ylims = ylims
            self.figure.plotly_update(restyle_data=update, relayout_data=layout)
            return
        self.figure.plotly_restyle(update)


class _MatplotlibTarget:
    """A matplotlib ``Figure`` on an ipympl canvas, drawn once by :func:`labkit.figures.builders.draw_matplotlib`."""

    def __init__(self, panels: Sequence[Panel], rows: int, cols: int, figsize: tuple[float, float]) -> None:
        # here, not at the top: matplotlib + ipympl cost ~0.25 s to import and the plotly views never use them
        from ipympl.backend_nbagg import Canvas, FigureManager
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=figsize, layout="constrained")
        # Canvas + FigureManager directly, not pyplot or new_figure_manager_given_figure: those register the
        # figure for a second display at the end of the cell.
        self.widget = Canvas(self.figure)
        FigureManager(self.widget, 0)
        self.widget.header_visible = False
        self.axes = list(self.figure.subplots(rows, cols, squeeze=False).reshape(-1))
        builders.draw_matplotlib(panels, self.axes)
        # solve the constrained layout once, then keep it: re-solving it on every slider step costs more than the
        # drawing itself, and the tick labels stay short at every α (see draw_matplotlib)
        self.figure.get_layout_engine().execute(self.figure)
        self.figure.set_layout_engine("none")
        self._lines = {(i, line.get_gid()): line for i, ax in enumerate(self.axes) for line in ax.get_lines()}
        self._texts = {(i, t.get_gid()): t for i, ax in enumerate(self.axes) for t in ax.texts}
        self._gaps = {i: c for i, ax in enumerate(self.axes) for c in ax.collections if c.get_gid() == "gap"}
        self._record_image()

    def _record_image(self) -> None:
        """While no front end has attached (a notebook executed by nbclient/papermill), keep a PNG of the figure in
        the canvas's ``_data_url``, the trait ipympl embeds in saved widget state, so offline reports show the
        figure (see :func:`labkit.lab.report.freeze.freeze_third_party_widgets`). ipympl stops syncing it once a
        view attaches."""
        if not getattr(self.widget, "syncing_data_url", False):
            return
        with io.BytesIO() as png:
            self.figure.savefig(png, format="png")
            self.widget._data_url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()

    def show(self, panels: Sequence[Panel]) -> None:
        for i, (ax, panel) in enumerate(zip(self.axes, panels)):
            for key, y in panel.curves.items():
                self._lines[i, key].set_data(panel.x, y)
            if panel.shade is not None:
                lo, hi = panel.shade
                self._gaps[i].set_data(panel.x, panel.curves[lo], panel.curves[hi])
            ax.set_title(panel.title, fontsize="medium")
            ax.relim()
            ax.set_autoscaley_on(panel.ylim is None)  # a fixed range (set_ylim) turns autoscaling off
            ax.autoscale_view()
            if panel.ylim is not None:
                ax.set_ylim(*panel.ylim)
            # marks and notes after the axes' range: they are placed by the panel's y span
            for key, x, y, texts in builders.overlays(panel):
                if texts is None:
                    self._lines[i, key].set_data(x, y)
                    continue
                self._texts[i, key].set_position((x[0], y[0]))
                self._texts[i, key].set_text(texts[0] if key == "note" else " " + texts[0])
        self.widget.draw_idle()
        self._record_image()


def _target(backend: str, panels: Sequence[Panel], rows: int, cols: int, figsize: tuple[float, float]):
    if backend == "plotly":
        return _PlotlyTarget(panels, rows, cols, height=int(figsize[1] * 90))
    if backend == "matplotlib":
        return _MatplotlibTarget(panels, rows, cols, figsize)
    raise ValueError(f"backend must be one of {builders.BACKENDS}, got backend={backend!r}")


def _log_slider(value: float, bounds: tuple[float, float], description: str) -> widgets.FloatLogSlider:
    """A log slider over ``bounds`` whose readout shows the value the figure uses: 2 significant digits (0.5, not
    0.501; d3-format ``.2r``: 0.50), ``SLIDER_PX`` wide, with the decades marked under its track
    (:func:`_with_decades`)."""
    return widgets.FloatLogSlider(
        value=value, base=10.0, min=math.log10(bounds[0]), max=math.log10(bounds[1]), step=LOG_STEP,
        description=description, readout_format=f".{builders.SLIDER_DIGITS}r", continuous_update=True,
        style={"description_width": f"{LABEL_PX}px"}, layout=widgets.Layout(width=f"{SLIDER_PX}px"),
    )


def _decades(bounds: tuple[float, float]) -> list[str]:
    lo, hi = (round(math.log10(b)) for b in bounds)
    sup = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    return [f"10{str(k).translate(sup)}" if k not in (0, 1) else ("1" if k == 0 else "10") for k in range(lo, hi + 1)]


def _with_decades(slider: widgets.FloatLogSlider, bounds: tuple[float, float]) -> widgets.VBox:
    """``slider`` with a row of decade labels (10⁻³ … 10³) under its track, evenly spaced as the decades are."""
    labels = _decades(bounds)
    step = 100.0 / (len(labels) - 1)
    spans = "".join(f'<span style="position:absolute;left:{i * step:.4g}%;transform:translateX(-50%)">{t}</span>'
                    for i, t in enumerate(labels))
    ticks = widgets.HTML(
        f'<div class="labkit-decades" style="position:relative;height:1.2em;margin:-6px {READOUT_PX + TRACK_PAD_PX}px'
        f' 0 {LABEL_PX + TRACK_PAD_PX}px;font-size:11px;color:#666;line-height:1.2em">{spans}</div>',
        layout=widgets.Layout(width=f"{SLIDER_PX}px", margin="0"))
    box = widgets.VBox([slider, ticks], layout=widgets.Layout(width="auto"))
    box.add_class("labkit-log-slider")
    return box


class LiveFigure(widgets.VBox):
    """Sliders over a figure that updates in place. Display it in a notebook; drive it from Python by setting
    ``alpha_slider.value`` (and, for Figure 4, ``beta_slider.value`` / ``link.value``).

    Attributes: ``alpha_slider``; ``beta_slider`` and ``link`` (Figure 4, else None); ``figure`` (the plotly
    ``FigureWidget`` or the matplotlib ``Figure``); ``canvas`` (the widget that shows it); ``backend``;
    ``panels`` (the data currently shown, a list of :class:`labkit.figures.builders.Panel`).
    """

    #: what an offline report needs to draw this view again (see :mod:`labkit.lab.report.twins`): the figure, the
    #: backend, ``n_points`` and the models of the α slider, the β slider and the "β = 1/α" box (None without β)
    offline_twin = traitlets.Dict().tag(sync=True, **widgets.widget_serialization)

    def __init__(self, figure: int, backend: str, alpha: float, beta: float | None, n_points: int,
                 figsize: tuple[float, float] | None = None) -> None:
        rows, cols, sizes = VIEWS[figure]
        with_beta = figure == 4
        self.backend = backend
        self._compute = lambda a, b: view_panels(figure, a, b, n_points)
        self.alpha_slider = _log_slider(alpha, ALPHA_RANGE, "α")
        self.beta_slider = self.link = None
        controls: list[widgets.Widget] = [_with_decades(self.alpha_slider, ALPHA_RANGE)]
        if with_beta:
            linked = beta is None
            self.beta_slider = _log_slider(1.0 / alpha if linked else beta, BETA_RANGE, "β")
            self.beta_slider.disabled = linked
            self.link = widgets.Checkbox(value=linked, description="β = 1/α", indent=False)
            controls += [_with_decades(self.beta_slider, BETA_RANGE), self.link]
        self._shown = (self._alpha(), self._beta())
        self.panels = self._compute(*self._shown)
        self._target = _target(backend, self.panels, rows, cols, _check_figsize(figsize) or sizes[backend])
        self.figure = self._target.figure
        self.canvas = self._target.widget
        self._syncing = False
        super().__init__([widgets.HBox(controls, layout=widgets.Layout(flex_flow="row wrap")), self.canvas])
        self.offline_twin = {"figure": figure, "backend": backend, "n_points": n_points, "alpha": self.alpha_slider,
                             "beta": self.beta_slider, "link": self.link}
        self.add_class("labkit-live-figure")
        self.add_class(f"labkit-backend-{backend}")
        self.add_class(css_class(figure, backend))
        self.alpha_slider.observe(self._on_alpha, names="value")
        if with_beta:
            self.beta_slider.observe(self._on_beta, names="value")
            self.link.observe(self._on_link, names="value")

    def _alpha(self) -> float:
        """α as the figure uses it: the slider's value to the digits its readout shows."""
        return builders.round_value(self.alpha_slider.value)

    def _beta(self) -> float | None:
        if self.beta_slider is None:
            return None
        if self.link.value:
            return 1.0 / self._alpha()
        return builders.round_value(self.beta_slider.value)

    def _follow_alpha(self) -> None:
        # move the (disabled) β slider to 1/α without triggering a second redraw
        self._syncing = True
        try:
            lo, hi = BETA_RANGE
            self.beta_slider.value = min(max(1.0 / self._alpha(), lo), hi)
        finally:
            self._syncing = False

    def _on_alpha(self, change: dict[str, Any]) -> None:
        if self.link is not None and self.link.value:
            self._follow_alpha()
        self.redraw()

    def _on_beta(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.redraw()

    def _on_link(self, change: dict[str, Any]) -> None:
        self.beta_slider.disabled = bool(change["new"])
        if change["new"]:
            self._follow_alpha()
        self.redraw()

    def redraw(self) -> None:
        """Recompute the panels at the sliders' values and write them into the existing plot — unless they stand
        for the α and β already shown: the β slider echoes the 1/α it is given back at its own step (0.5 → β = 2
        is shown as 10^0.3 = 1.995), and a redundant redraw would repaint the figure a second time."""
        params = (self._alpha(), self._beta())
        if params == self._shown:
            return
        self._shown = params
        self.panels = self._compute(*params)
        self._target.show(self.panels)


def _check_live(alpha: float, backend: str) -> float:
    if backend not in builders.BACKENDS:
        raise ValueError(f"backend must be one of {builders.BACKENDS}, got backend={backend!r}")
    return builders.check_alpha(alpha)


def _points(n_points: int | None, backend: str) -> int:
    return builders.check_n_points(n_points if n_points is not None else POINTS[backend])


def _check_figsize(figsize: tuple[float, float] | None) -> tuple[float, float] | None:
    if figsize is None:
        return None
    try:
        width, height = (float(v) for v in figsize)
    except (TypeError, ValueError):
        raise ValueError(f"figsize must be (width, height) in inches or None, got figsize={figsize!r}") from None
    if not (0 < width <= 30 and 0 < height <= 30):
        raise ValueError(f"figsize must be two sizes in (0, 30] inches, got figsize={figsize!r}")
    return width, height


def _one_panel(figure: int, alpha: float, backend: str, n_points: int | None,
               figsize: tuple[float, float] | None) -> LiveFigure:
    """The live view of a one-panel figure (1–3), which depends on α alone."""
    alpha = _check_live(alpha, backend)
    return LiveFigure(figure, backend, alpha, None, _points(n_points, backend), figsize)


def live_figure1(alpha: float = builders.PAPER_ALPHA, *, backend: str = "plotly",
                 n_points: int | None = None, figsize: tuple[float, float] | None = None) -> LiveFigure:
    """Figure 1 (L₁, L₂, H_α) with an α slider; x follows α (see :func:`labkit.figures.builders.x_range`)."""
    return _one_panel(1, alpha, backend, n_points, figsize)


def live_figure2(alpha: float = builders.PAPER_ALPHA, *, backend: str = "plotly",
                 n_points: int | None = None, figsize: tuple[float, float] | None = None) -> LiveFigure:
    """Figure 2 (normal, Laplace, normalised Huber density) with an α slider for the Huber density; x follows the
    density's scale (see :func:`labkit.figures.builders.density_x_range`)."""
    return _one_panel(2, alpha, backend, n_points, figsize)


def live_figure3(alpha: float = builders.PAPER_ALPHA, *, backend: str = "plotly",
                 n_points: int | None = None, figsize: tuple[float, float] | None = None) -> LiveFigure:
    """Figure 3 (H_α between D_{α,1/α} and D_{α/2,1/α}, eq. 27) with an α slider; x follows α (see
    :func:`labkit.figures.builders.x_range`)."""
    return _one_panel(3, alpha, backend, n_points, figsize)


def live_figure4(alpha: float = 0.5, beta: float | None = None, *, backend: str = "plotly",
                 n_points: int | None = None, figsize: tuple[float, float] | None = None) -> LiveFigure:
    """Figure 4 for one α: H_α and D_{α,β} (left), their derivatives (right), on x ∈ [−3, 3] at every α, so α moves
    the curves from L₁-like to L₂-like. α on a log slider 10⁻³ … 10³, β on another; the "β = 1/α" checkbox (on
    when ``beta`` is None) ties β to α."""
    alpha = _check_live(alpha, backend)
    if beta is not None:
        beta = builders.check_beta(beta)
    return LiveFigure(4, backend, alpha, beta, _points(n_points, backend), figsize)
