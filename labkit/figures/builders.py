"""The paper's Figures 1–4 as data (:class:`Panel`) and their static matplotlib / plotly renderings.

The curves come from :mod:`labkit.losses` and :mod:`labkit.densities`; :mod:`labkit.figures.export` writes them to
PNG/SVG/PDF (``python -m labkit figures --out DIR``).

Each figure is computed once as a list of :class:`Panel` (an x grid and named y arrays, one panel per axes) and then
drawn by one backend-agnostic renderer per library. The live views of :mod:`labkit.figures.live` recompute the
panels and write them into the existing artists, so a figure's data and its drawing never diverge.

=========  ==============================================================================================
figure     curves (paper)
=========  ==============================================================================================
Figure 1   L₁(x) = |x|, L₂(x) = ½x² (Section 3.1) and H_α (eq. 5); paper: α = 1
Figure 2   standard normal (eq. 8), standard Laplace (eqs. 16–17) and the Huber density (eq. 11, normalised)
Figure 3   H_α between D_{α,1/α} and D_{α/2,1/α} (eqs. 19, 27), the gap between the bounds shaded
Figure 4   H_α, D_{α,β} (eq. 19) and their derivatives (eq. 5 differentiated, eq. 21); α = 0.01, 0.5, 2, 100
=========  ==============================================================================================

The paper does not state β for Figure 4; we use β = 1/α (the pairing of eqs. 25 and 27) unless told otherwise.
Nothing here changes global matplotlib or plotly state: figures are created as ``matplotlib.figure.Figure`` objects
without pyplot, so building one registers nothing and needs no display.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from labkit.densities import huber_density, laplace_pdf, normal_pdf
from labkit.losses import huber, huber_grad, l1_loss, l2_loss, laplace_kl_loss, laplace_kl_loss_grad

__all__ = [
    "ALPHA_RANGE",
    "BETA_RANGE",
    "BACKENDS",
    "CURVE_COLORS",
    "CURVE_LABELS",
    "DASHED",
    "FIGURE4_ALPHAS",
    "FIGURES",
    "N_POINTS",
    "PAPER_ALPHA",
    "Panel",
    "check_alpha",
    "check_beta",
    "check_n_points",
    "draw_matplotlib",
    "figure1",
    "figure1_panels",
    "figure2",
    "figure2_panels",
    "figure3",
    "figure3_panels",
    "figure4",
    "figure4_panels",
    "plotly_figure",
    "x_range",
]

#: α and β accepted by the builders: the range of the live views' log sliders (10⁻³ … 10³)
ALPHA_RANGE = (1e-3, 1e3)
BETA_RANGE = (1e-3, 1e3)
#: α of Figures 1–3 in the paper
PAPER_ALPHA = 1.0
#: the four panels of Figure 4, (a)–(d)
FIGURE4_ALPHAS = (0.01, 0.5, 2.0, 100.0)
#: the loss figures span x ∈ [−3a, 3a], a = α rounded up to the 1–2–5 sequence (see ``x_range``)
X_SPAN_IN_ALPHAS = 3.0
#: Figure 2 spans x ∈ [−4, 4]: the standard normal and Laplace do not depend on α
DENSITY_X_MAX = 4.0
#: odd, so that x = 0 (the minimum of every loss) is a grid point
N_POINTS = 401
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


@dataclass(frozen=True)
class Panel:
    """One axes' worth of data: an x grid, named y arrays (keys of ``CURVE_LABELS``), and how to label it.

    ``name`` says what the panel shows, ``params`` the parameter values (e.g. "α = 1"); the title joins them.
    ``shade`` names two curve keys whose gap is filled (Figure 3's bounds of eq. 27).
    """

    name: str
    params: str
    x: np.ndarray
    curves: dict[str, np.ndarray]
    ylabel: str
    shade: tuple[str, str] | None = None
    xlabel: str = "x"
    legend_loc: str = "upper center"

    @property
    def title(self) -> str:
        return f"{self.name}, {self.params}" if self.name else self.params


# ---------------------------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------------------------
def _check_scalar_in(name: str, value: Any, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    lo, hi = bounds
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}] (the slider range), got {name}={value!r}")
    return v


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """α as a float in ``ALPHA_RANGE``, or a ``ValueError`` naming ``name`` (``TypeError`` if not a number)."""
    return _check_scalar_in(name, alpha, ALPHA_RANGE)


def check_beta(beta: float, name: str = "beta") -> float:
    """β as a float in ``BETA_RANGE``, or a ``ValueError`` naming ``name``."""
    return _check_scalar_in(name, beta, BETA_RANGE)


def _check_x_max(x_max: float | None, default: float) -> float:
    if x_max is None:
        return default
    if isinstance(x_max, bool) or not isinstance(x_max, numbers.Real):
        raise TypeError(f"x_max must be a real number or None, got {x_max!r}")
    if not math.isfinite(float(x_max)) or x_max <= 0:
        raise ValueError(f"x_max must be finite and > 0 (the plot spans [-x_max, x_max]), got x_max={x_max!r}")
    return float(x_max)


def check_n_points(n_points: int) -> int:
    """``n_points`` as an int in [3, 100000] (points per curve), or a ``ValueError``."""
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or not 3 <= n_points <= 100_000:
        raise ValueError(f"n_points must be an integer in [3, 100000], got n_points={n_points!r}")
    return int(n_points)


def _check_backend(backend: str, ax: Any) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got backend={backend!r}")
    if backend == "plotly" and ax is not None:
        raise ValueError("ax is for the matplotlib backend only; pass ax=None with backend='plotly'")
    return backend


def x_range(alpha: float) -> float:
    """Half-width of the x-range of the loss figures for this α: 3·a, with a = α rounded up to 1, 2 or 5 × 10^k.

    So 3α ≤ x_range(α) < 7.5α: the quadratic part, both kinks and some linear tail are always in view. The steps
    matter for the live views: were the range exactly 3α, every α would draw the very same picture (eqs. 28–29
    make H_α and D_{α,1/α} self-similar), and moving the slider would only relabel the axes. With steps, the
    kinks visibly move within a range and the range jumps at 1, 2, 5 × 10^k. At 1–2–5 values of α, such as all
    the paper's, the range is exactly ±3α.
    """
    alpha = check_alpha(alpha)
    exponent = math.floor(math.log10(alpha))
    mantissa = alpha / 10.0 ** exponent
    step = next(m for m in (1.0, 2.0, 5.0, 10.0) if mantissa <= m * (1 + 1e-12))  # 1e-12: log10 rounding
    return X_SPAN_IN_ALPHAS * step * 10.0 ** exponent


def _grid(x_max: float, n_points: int) -> np.ndarray:
    return np.linspace(-x_max, x_max, n_points)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


# ---------------------------------------------------------------------------------------------------------------
# figure data: one function per figure, all values from labkit.losses / labkit.densities
# ---------------------------------------------------------------------------------------------------------------
def figure1_panels(alpha: float = PAPER_ALPHA, *, x_max: float | None = None,
                   n_points: int = N_POINTS) -> list[Panel]:
    """Figure 1: L₁, L₂ and H_α (eq. 5) on x ∈ [−x_max, x_max] (default ``x_range(α)``, 3α at α = 1)."""
    alpha = check_alpha(alpha)
    x = _grid(_check_x_max(x_max, x_range(alpha)), check_n_points(n_points))
    curves = {"l1": l1_loss(x), "l2": l2_loss(x), "huber": huber(x, alpha)}
    return [Panel("L1, L2 and Huber loss", f"α = {_fmt(alpha)}", x, curves, "loss")]


def figure2_panels(alpha: float = PAPER_ALPHA, *, x_max: float | None = None,
                   n_points: int = N_POINTS) -> list[Panel]:
    """Figure 2: standard normal (eq. 8, σ = 1), standard Laplace (b = 1) and the Huber density of eq. 11,
    normalised by Z(α) so that it integrates to 1."""
    alpha = check_alpha(alpha)
    x = _grid(_check_x_max(x_max, DENSITY_X_MAX), check_n_points(n_points))
    curves = {"normal": normal_pdf(x), "laplace": laplace_pdf(x), "huber_density": huber_density(x, alpha)}
    return [Panel("Densities", f"Huber α = {_fmt(alpha)}", x, curves, "density", legend_loc="upper right")]


def figure3_panels(alpha: float = PAPER_ALPHA, *, x_max: float | None = None,
                   n_points: int = N_POINTS) -> list[Panel]:
    """Figure 3: D_{α,1/α} ≤ H_α ≤ D_{α/2,1/α} (eq. 27), the gap between the bounds shaded."""
    alpha = check_alpha(alpha)
    x = _grid(_check_x_max(x_max, x_range(alpha)), check_n_points(n_points))
    curves = {
        "kl_lower": laplace_kl_loss(x, alpha, 1.0 / alpha),
        "kl_upper": laplace_kl_loss(x, alpha / 2.0, 1.0 / alpha),
        "huber": huber(x, alpha),
    }
    return [Panel("Huber loss between its bounds (eq. 27)", f"α = {_fmt(alpha)}", x, curves, "loss",
                  shade=("kl_lower", "kl_upper"))]


def _figure4_betas(alphas: Sequence[float], beta: float | Sequence[float] | None) -> list[float]:
    if beta is None:
        return [1.0 / a for a in alphas]
    if isinstance(beta, numbers.Real) and not isinstance(beta, bool):
        return [check_beta(beta)] * len(alphas)
    betas = list(beta)
    if len(betas) != len(alphas):
        raise ValueError(f"beta must be None, one number, or one per alpha ({len(alphas)}), got {len(betas)} values")
    return [check_beta(b, f"beta[{i}]") for i, b in enumerate(betas)]


def figure4_panels(alphas: float | Sequence[float] = FIGURE4_ALPHAS, beta: float | Sequence[float] | None = None,
                   *, x_max: float | None = None, n_points: int = N_POINTS) -> list[Panel]:
    """Figure 4: for each α, one panel with H_α and D_{α,β} (eqs. 5, 19) and one below with their derivatives
    (H'_α = x clipped to [−α, α]; D'_{α,β}, eq. 21). Panels are ordered row-major: all loss panels, then all
    derivative panels. ``beta=None`` means β = 1/α per panel (the paper does not say); x spans ±x_range(α) unless
    ``x_max`` fixes it for every panel.
    """
    if isinstance(alphas, numbers.Real) and not isinstance(alphas, bool):
        alphas = (alphas,)
    alphas = [check_alpha(a, f"alphas[{i}]") for i, a in enumerate(alphas)]
    if not alphas:
        raise ValueError("alphas must hold at least one α")
    betas = _figure4_betas(alphas, beta)
    n_points = check_n_points(n_points)
    losses, grads = [], []
    for alpha, b in zip(alphas, betas):
        x = _grid(_check_x_max(x_max, x_range(alpha)), n_points)
        params = f"α = {_fmt(alpha)}, β = {_fmt(b)}"
        losses.append(Panel("", params, x, {"huber": huber(x, alpha), "kl": laplace_kl_loss(x, alpha, b)}, "loss"))
        grads.append(Panel("", params, x, {"huber_grad": huber_grad(x, alpha), "kl_grad": laplace_kl_loss_grad(x, alpha, b)},
                           "derivative", legend_loc="upper left"))
    return losses + grads


# ---------------------------------------------------------------------------------------------------------------
# renderers: panels -> matplotlib Figure or plotly Figure
# ---------------------------------------------------------------------------------------------------------------
def draw_matplotlib(panels: Sequence[Panel], axes: Sequence[Any]) -> None:
    """Draw each panel into the matching axes. Lines carry their curve key as ``gid`` (the shaded gap: ``"gap"``)
    so that :mod:`labkit.figures.live` can find and update them in place."""
    for panel, ax in zip(panels, axes):
        if panel.shade is not None:
            lo, hi = panel.shade
            ax.fill_between(panel.x, panel.curves[lo], panel.curves[hi], color=GAP_COLOR, alpha=0.15, lw=0,
                            gid="gap", label="gap of eq. 27")
        for key, y in panel.curves.items():
            ax.plot(panel.x, y, label=CURVE_LABELS[key][0], color=CURVE_COLORS[key],
                    ls="--" if key in DASHED else "-", lw=1.6, gid=key)
        ax.set_title(panel.title, fontsize="medium")
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
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


def plotly_figure(panels: Sequence[Panel], rows: int, cols: int, height: int):
    """Draw the panels on a ``rows × cols`` plotly subplot grid (row-major). One trace per curve, in panel order,
    with ``meta`` set to the curve key; a shaded gap fills from the first ``shade`` curve to the second."""
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
        fig.update_xaxes(title_text=panel.xlabel, row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=panel.ylabel if col == 0 else None, row=row + 1, col=col + 1)
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=50, b=40), template="plotly_white")
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
