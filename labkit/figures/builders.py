"""The paper's Figures 1–4 drawn: matplotlib and plotly renderings of the panels of :mod:`labkit.figures.panels`.

``figure1`` … ``figure4`` compute a figure's panels and draw them with one backend-agnostic renderer per library
(``draw_matplotlib``, ``plotly_figure``); :mod:`labkit.figures.export` writes them to PNG/SVG/PDF (``python -m
labkit figures --out DIR``). The live views of :mod:`labkit.figures.live` recompute the panels and write them into
the existing artists, so a figure's data and its drawing never diverge. This module re-exports the panels' names
(``figure4_panels``, ``Panel``, ``x_range``, …).

Labels: matplotlib draws mathtext (``$H_\\alpha$``), plotly and the explorer plotly's HTML subset
(``H<sub>α</sub>``): both render offline, with no MathJax.

Nothing here changes global matplotlib or plotly state: figures are created as ``matplotlib.figure.Figure`` objects
without pyplot, so building one registers nothing and needs no display.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from labkit.figures.panels import *  # noqa: F403  (re-exported: this module's API includes the panels')
from labkit.figures.panels import __all__ as _panels_all
from labkit.figures.panels import (FIGURE4_ALPHAS, N_POINTS, PAPER_ALPHA, Panel, figure1_panels, figure2_panels,
                                   figure3_panels, figure4_panels, overlays)

__all__ = [*_panels_all, "BACKENDS", "CURVE_COLORS", "CURVE_LABELS", "DASHED", "FIGURES", "MARK_COLOR",
           "draw_matplotlib", "figure1", "figure2", "figure3", "figure4", "plotly_figure", "plotly_texts"]

BACKENDS = ("matplotlib", "plotly")

# curve key -> (matplotlib mathtext label, plotly HTML label)
CURVE_LABELS: dict[str, tuple[str, str]] = {
    "l1": (r"$L_1$", "L<sub>1</sub>"),
    "l2": (r"$L_2$", "L<sub>2</sub>"),
    "huber": (r"$H_\alpha$", "H<sub>α</sub>"),
    "normal": ("standard normal", "standard normal"),
    "laplace": ("standard Laplace", "standard Laplace"),
    "huber_density": (r"Huber density $e^{-H_\alpha}/Z(\alpha)$", "Huber density e<sup>−H<sub>α</sub></sup>/Z(α)"),
    "kl_lower": (r"$D_{\alpha,1/\alpha}$", "D<sub>α,1/α</sub>"),
    "kl_upper": (r"$D_{\alpha/2,1/\alpha}$", "D<sub>α/2,1/α</sub>"),
    "kl": (r"$D_{\alpha,\beta}$", "D<sub>α,β</sub>"),
    "huber_grad": (r"$H'_\alpha$", "H′<sub>α</sub>"),
    "kl_grad": (r"$D'_{\alpha,\beta}$", "D′<sub>α,β</sub>"),
}
# one colour per quantity, the same in every figure and both libraries (matplotlib's tab10)
CURVE_COLORS = {
    "l1": "#2ca02c", "l2": "#d62728", "huber": "#1f77b4", "normal": "#d62728", "laplace": "#2ca02c",
    "huber_density": "#1f77b4", "kl_lower": "#ff7f0e", "kl_upper": "#9467bd", "kl": "#ff7f0e",
    "huber_grad": "#1f77b4", "kl_grad": "#ff7f0e",
}
DASHED = frozenset({"kl_lower", "kl_upper", "kl", "kl_grad"})
GAP_COLOR = "#9467bd"
MARK_COLOR = "#555555"


def _check_backend(backend: str, ax: Any) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got backend={backend!r}")
    if backend == "plotly" and ax is not None:
        raise ValueError("ax is for the matplotlib backend only; pass ax=None with backend='plotly'")
    return backend


# ---------------------------------------------------------------------------------------------------------------
# renderers: panels -> matplotlib Figure or plotly Figure
# ---------------------------------------------------------------------------------------------------------------
def draw_matplotlib(panels: Sequence[Panel], axes: Sequence[Any]) -> None:
    """Draw each panel into the matching axes. Lines carry their curve key as ``gid`` (the shaded gap: ``"gap"``;
    a mark's lines ``"mark:<key>"``, its label a text ``"label:<key>"``, the note a text ``"note"``), so that
    :mod:`labkit.figures.live` can find and update them in place."""
    for panel, ax in zip(panels, axes):
        if panel.shade is not None:
            lo, hi = panel.shade
            ax.fill_between(panel.x, panel.curves[lo], panel.curves[hi], color=GAP_COLOR, alpha=0.15, lw=0,
                            gid="gap", label="gap of eq. 27")
        for key, y in panel.curves.items():
            ax.plot(panel.x, y, label=CURVE_LABELS[key][0], color=CURVE_COLORS[key],
                    ls="--" if key in DASHED else "-", lw=1.6, gid=key)
        for key, x, y, texts in overlays(panel):
            if texts is None:  # a mark's lines
                ax.plot(x, y, color=MARK_COLOR, ls=":", lw=1.0, gid=key)
                continue
            note = key == "note"
            ax.text(x[0], y[0], texts[0] if note else " " + texts[0], ha="center" if note else "left",
                    va="center" if note else "bottom", fontsize="small", color=MARK_COLOR, gid=key)
        ax.set_title(panel.title, fontsize="medium")
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        ax.grid(True, alpha=0.3)
        # short tick labels at every α (2.5 and an offset "1e-4" rather than 0.00025), so a live figure's layout
        # can stay fixed; plain text, not mathtext: parsing mathtext tick labels costs ~3× the whole draw
        ax.ticklabel_format(axis="both", style="sci", scilimits=(-2, 3), useMathText=False)
        ax.legend(fontsize="small", loc=panel.legend_loc)


def _matplotlib_figure(panels: Sequence[Panel], rows: int, cols: int, ax: Any, figsize: tuple[float, float]):
    # matplotlib here, not at the top: `import labkit.figures` stays free of it (~0.3 s; plotly users never pay it)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure  # no pyplot: nothing registered, no backend chosen

    if ax is None:
        axes = Figure(figsize=figsize, layout="constrained").subplots(rows, cols, squeeze=False)
    elif isinstance(ax, Axes):
        axes = [ax]
    else:
        axes = ax
    flat = list(np.asarray(axes, dtype=object).reshape(-1))
    if len(flat) != rows * cols or not all(isinstance(a, Axes) for a in flat):
        raise ValueError(f"ax must be None or {rows * cols} matplotlib Axes ({rows}×{cols}), "
                         f"got {len(flat)} object(s) of type {type(ax).__name__}")
    draw_matplotlib(panels, flat)
    return flat[0].figure


def plotly_texts(texts: Sequence[str]) -> list[str]:
    """An overlay's texts as plotly draws them: its line breaks as ``<br>``."""
    return [t.replace("\n", "<br>") for t in texts]


def plotly_figure(panels: Sequence[Panel], rows: int, cols: int, height: int):
    """Draw the panels on a ``rows × cols`` plotly subplot grid (row-major). One trace per curve and per overlay
    (:func:`overlays`), in :func:`trace_slots` order, with ``meta`` set to its key; a shaded gap fills from the
    first ``shade`` curve to the second."""
    # plotly here, not at the top: `import labkit.figures` stays free of it (~0.15 s; matplotlib users never pay it)
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p.title for p in panels],
                        horizontal_spacing=0.06, vertical_spacing=0.12)
    shown: set[str] = set()
    for i, panel in enumerate(panels):
        row, col = divmod(i, cols)
        fill_to = panel.shade[1] if panel.shade else None
        for key, y in panel.curves.items():
            fig.add_trace(
                go.Scatter(x=panel.x, y=y, mode="lines", name=CURVE_LABELS[key][1], meta=key, legendgroup=key,
                           showlegend=key not in shown,
                           line=dict(color=CURVE_COLORS[key], dash="dash" if key in DASHED else "solid", width=2),
                           fill="tonexty" if key == fill_to else None,
                           fillcolor="rgba(148,103,189,0.15)" if key == fill_to else None),
                row=row + 1, col=col + 1)
            shown.add(key)
        for key, x, y, texts in overlays(panel):
            # a mark's lines and its texts are separate traces: plotly.js drops the texts of a lines+text trace
            # with a gap (NaN) in a subplot
            style = (dict(mode="lines", line=dict(color=MARK_COLOR, dash="dot", width=1)) if texts is None else
                     dict(mode="text", text=plotly_texts(texts), textfont=dict(color=MARK_COLOR, size=11),
                          textposition="middle center" if key == "note" else "top right"))
            fig.add_trace(go.Scatter(x=x, y=y, meta=key, showlegend=False, hoverinfo="skip", cliponaxis=False,
                                     **style), row=row + 1, col=col + 1)
        fig.update_xaxes(title_text=panel.xlabel, row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=panel.ylabel if col == 0 else None, row=row + 1, col=col + 1,
                         **({"range": list(panel.ylim)} if panel.ylim is not None else {}))
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=50, b=40), template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0.0))
    return fig


def _render(panels: list[Panel], rows: int, cols: int, backend: str, ax: Any, figsize: tuple[float, float]):
    if backend == "matplotlib":
        return _matplotlib_figure(panels, rows, cols, ax, figsize)
    return plotly_figure(panels, rows, cols, height=int(figsize[1] * 90))


# ---------------------------------------------------------------------------------------------------------------
# public builders
# ---------------------------------------------------------------------------------------------------------------
def figure1(alpha: float = PAPER_ALPHA, *, x_max: float | None = None, n_points: int = N_POINTS,
            backend: str = "matplotlib", ax: Any = None):
    """Figure 1: L₁, L₂ and H_α (eq. 5). Returns a matplotlib ``Figure`` (drawn into ``ax`` if given) or a plotly
    ``go.Figure``. ``alpha`` in ``ALPHA_RANGE`` (paper: 1); x ∈ [−x_max, x_max], default ``x_range(α)``."""
    backend = _check_backend(backend, ax)
    return _render(figure1_panels(alpha, x_max=x_max, n_points=n_points), 1, 1, backend, ax, (6.0, 4.0))


def figure2(alpha: float = PAPER_ALPHA, *, x_max: float | None = None, n_points: int = N_POINTS,
            backend: str = "matplotlib", ax: Any = None):
    """Figure 2: standard normal, standard Laplace and the normalised Huber density (eq. 11) for ``alpha``
    (paper: 1); x ∈ [−x_max, x_max], default [−4, 4]."""
    backend = _check_backend(backend, ax)
    return _render(figure2_panels(alpha, x_max=x_max, n_points=n_points), 1, 1, backend, ax, (6.0, 4.0))


def figure3(alpha: float = PAPER_ALPHA, *, x_max: float | None = None, n_points: int = N_POINTS,
            backend: str = "matplotlib", ax: Any = None):
    """Figure 3: H_α between D_{α,1/α} and D_{α/2,1/α} (eq. 27), the gap shaded; paper: α = 1, x default ±x_range(α)."""
    backend = _check_backend(backend, ax)
    return _render(figure3_panels(alpha, x_max=x_max, n_points=n_points), 1, 1, backend, ax, (6.0, 4.0))


def figure4(alphas: float | Sequence[float] = FIGURE4_ALPHAS, beta: float | Sequence[float] | None = None, *,
            x_max: float | None = None, n_points: int = N_POINTS, backend: str = "matplotlib", ax: Any = None):
    """Figure 4: H_α, D_{α,β} (top row) and their derivatives (bottom row), one column per α (paper: 0.01, 0.5,
    2, 100). ``beta=None`` uses β = 1/α per column (our choice; the paper does not state β). ``ax``: None or a
    2 × len(alphas) array of matplotlib Axes."""
    backend = _check_backend(backend, ax)
    panels = figure4_panels(alphas, beta, x_max=x_max, n_points=n_points)
    cols = len(panels) // 2
    return _render(panels, 2, cols, backend, ax, (3.3 * cols + 0.6, 6.0))


#: the builders by file name, for :func:`labkit.figures.export.export_figures`
FIGURES = {"figure1": figure1, "figure2": figure2, "figure3": figure3, "figure4": figure4}
