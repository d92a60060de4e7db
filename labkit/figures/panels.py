"""The paper's Figures 1–4 as data: each figure is a list of :class:`Panel` (an x grid, named y arrays, marks and
a note), computed from :mod:`labkit.losses` and :mod:`labkit.densities`; :mod:`labkit.figures.builders` draws them
with matplotlib or plotly, :mod:`labkit.figures.live` and :mod:`labkit.figures.explorer` redraw them per slider step.

=========  ==============================================================================================
figure     curves (paper)
=========  ==============================================================================================
Figure 1   L₁(x) = |x|, L₂(x) = ½x² (Section 3.1) and H_α (eq. 5); paper: α = 1
Figure 2   standard normal (eq. 8), standard Laplace (eqs. 16–17) and the Huber density (eq. 11, normalised)
Figure 3   H_α between D_{α,1/α} and D_{α/2,1/α} (eqs. 19, 27), the gap between the bounds shaded
Figure 4   H_α, D_{α,β} (eq. 19) and their derivatives (eq. 5 differentiated, eq. 21); α = 0.01, 0.5, 2, 100
=========  ==============================================================================================

The paper does not state β for Figure 4; we use β = 1/α (the pairing of eqs. 25 and 27) unless told otherwise.
Figure 4's panels share one window, x ∈ [−3, 3]: with β = 1/α, eqs. 28–29 make every panel on a window of ±3α the
same picture, while on a common window α moves the curves from L₁-like (α ≪ 3) to L₂-like (α ≫ 3). Its loss panels
say where H_α and D_{α,β} touch and where they part (:data:`TOUCH_FRACTION`), its derivative panels where H′_α
saturates (|x| = α). Figure 2's window follows the Huber density's scale (≈ 1/α for small α). Notes and mark
labels are plain Unicode, which every renderer shows as it is.
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
    "ALPHA_RANGE", "BETA_RANGE", "DENSITY_X_MAX", "DENSITY_Y_HEADROOM", "FIGURE4_ALPHAS", "FIGURE4_X_MAX", "Mark",
    "N_POINTS", "PAPER_ALPHA", "Panel", "SLIDER_DIGITS", "TOUCH_FRACTION", "check_alpha", "check_beta",
    "check_n_points", "density_x_range", "figure1_panels", "figure2_panels", "figure3_panels", "figure4_panels",
    "format_value", "overlays", "round_value", "trace_data", "trace_slots", "x_range",
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
#: Figure 2 spans x ∈ [−4a, 4a], a = max(1, 1/α rounded up to 1, 2 or 5 × 10^k): ±4 for α ≥ 1, where the standard
#: densities and the Huber density are alike, and four Laplace-like scales 1/α of the Huber density below
DENSITY_X_MAX = 4.0
#: Figure 2's y axis stops at this multiple of the Huber density's peak when the standard densities' peaks stand
#: higher (small α): their cut-off needles are named in a note, and the wide Huber density stays in view
DENSITY_Y_HEADROOM = 2.5
#: Figure 4's common window x ∈ [−3, 3]: α moves the curves from L₁-like to L₂-like within it
FIGURE4_X_MAX = 3.0
#: Figure 4's loss panels: H_α and D_{α,β} "touch" while their gap is under this fraction of the panel's height
#: (a few pixels: the eye cannot separate them) and "part" where it first exceeds it
TOUCH_FRACTION = 0.02
#: significant digits of an α or β a slider shows and the figures use (0.5, not 0.501)
SLIDER_DIGITS = 2
#: odd, so that x = 0 (the minimum of every loss) is a grid point
N_POINTS = 401


@dataclass(frozen=True)
class Mark:
    """Two vertical lines at x = ±``at`` (``None``: nothing to mark at this α) across the panel's curves, with
    ``label`` (plain Unicode) at the top of the right one. ``key`` names it (``"part"``, ``"kink"``)."""

    key: str
    at: float | None
    label: str


@dataclass(frozen=True)
class Panel:
    """One axes' worth of data: an x grid, named y arrays (keys of ``CURVE_LABELS``), and how to label it.

    ``name`` says what the panel shows, ``params`` the parameter values (e.g. "α = 1"); the title joins them.
    Notes may hold a line break ("\\n"; plotly draws it as ``<br>``).
    ``shade`` names two curve keys whose gap is filled (Figure 3's bounds of eq. 27). ``marks`` are vertical line
    pairs (:class:`Mark`); ``note`` a line of plain text drawn in the panel (None: the panel has no note; "": an
    empty one, so that a live view keeps one text per panel at every α); ``ylim`` fixes the y range (None: fit).
    """

    name: str
    params: str
    x: np.ndarray
    curves: dict[str, np.ndarray]
    ylabel: str
    shade: tuple[str, str] | None = None
    xlabel: str = "x"
    legend_loc: str = "upper center"
    marks: tuple[Mark, ...] = ()
    note: str | None = None
    ylim: tuple[float, float] | None = None
    #: where the note's centre sits, as fractions of the x range and of the y span
    note_at: tuple[float, float] = (0.5, 0.55)

    @property
    def title(self) -> str:
        return f"{self.name}, {self.params}" if self.name else self.params

    def y_span(self) -> tuple[float, float]:
        """The y range the panel shows: ``ylim``, or the lowest and highest curve value."""
        if self.ylim is not None:
            return self.ylim
        values = [y for y in self.curves.values()]
        return float(min(v.min() for v in values)), float(max(v.max() for v in values))


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


def x_range(alpha: float) -> float:
    """Half-width of the x-range of the loss figures for this α: 3·a, with a = α rounded up to 1, 2 or 5 × 10^k.

    So 3α ≤ x_range(α) < 7.5α: the quadratic part, both kinks and some linear tail are always in view (Figures 1
    and 3). The steps matter for the live views: were the range exactly 3α, every α would draw the very same
    picture (eqs. 28–29 make H_α and D_{α,1/α} self-similar), and moving the slider would only relabel the axes.
    With steps, the kinks visibly move within a range and the range jumps at 1, 2, 5 × 10^k. Figure 4 uses one
    window for every α instead (:data:`FIGURE4_X_MAX`).
    """
    return X_SPAN_IN_ALPHAS * _step_up(check_alpha(alpha))


def _step_up(value: float) -> float:
    """``value`` rounded up to 1, 2, 5 or 10 × 10^k."""
    exponent = math.floor(math.log10(value))
    mantissa = value / 10.0 ** exponent
    return next(m for m in (1.0, 2.0, 5.0, 10.0) if mantissa <= m * (1 + 1e-12)) * 10.0 ** exponent  # 1e-12: log10


def density_x_range(alpha: float) -> float:
    """Half-width of Figure 2's window: 4 for α ≥ 1, else 4 × (1/α rounded up to 1, 2 or 5 × 10^k). The Huber
    density's tails fall like exp(−α|x|), so below α = 1 its scale is about 1/α and the window follows it."""
    alpha = check_alpha(alpha)
    return DENSITY_X_MAX * (1.0 if alpha >= 1.0 else _step_up(1.0 / alpha))


def round_value(value: float, digits: int = SLIDER_DIGITS) -> float:
    """``value`` to ``digits`` significant digits: the α or β a log slider stands for (0.501 → 0.5)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits - 1}e}")


def format_value(value: float) -> str:
    """An α or β as a reader writes it: 0.5, 0.0013, 630, 1000 (no exponent within the slider range)."""
    return f"{value:.4g}"


def _grid(x_max: float, n_points: int) -> np.ndarray:
    return np.linspace(-x_max, x_max, n_points)


_fmt = format_value


# ---------------------------------------------------------------------------------------------------------------
# figure data: one function per figure, all values from labkit.losses / labkit.densities
# ---------------------------------------------------------------------------------------------------------------
def figure1_panels(alpha: float = PAPER_ALPHA, *, x_max: float | None = None,
                   n_points: int = N_POINTS) -> list[Panel]:
    """Figure 1: L₁, L₂ and H_α (eq. 5) on x ∈ [−x_max, x_max] (default ``x_range(α)``, 3α at α = 1)."""
    alpha = check_alpha(alpha)
    x = _grid(_check_x_max(x_max, x_range(alpha)), check_n_points(n_points))
    curves = {"l1": l1_loss(x), "l2": l2_loss(x), "huber": huber(x, alpha)}
    return [Panel("L₁, L₂ and Huber loss", f"α = {_fmt(alpha)}", x, curves, "loss")]


def figure2_panels(alpha: float = PAPER_ALPHA, *, x_max: float | None = None,
                   n_points: int = N_POINTS) -> list[Panel]:
    """Figure 2: standard normal (eq. 8, σ = 1), standard Laplace (b = 1) and the Huber density of eq. 11,
    normalised by Z(α) so that it integrates to 1. x ∈ ±``density_x_range(α)`` unless ``x_max`` is given; where
    the standard densities' peaks stand more than ``DENSITY_Y_HEADROOM`` times above the Huber density's, the y
    axis stops there and the note gives their heights."""
    alpha = check_alpha(alpha)
    x = _grid(_check_x_max(x_max, density_x_range(alpha)), check_n_points(n_points))
    curves = {"normal": normal_pdf(x), "laplace": laplace_pdf(x), "huber_density": huber_density(x, alpha)}
    peak = float(huber_density(0.0, alpha))
    tallest = max(float(y.max()) for y in curves.values())
    note, ylim = "", None
    if tallest > DENSITY_Y_HEADROOM * peak:
        ylim = (0.0, 1.1 * DENSITY_Y_HEADROOM * peak)
        note = (f"normal and Laplace peak at\n{float(normal_pdf(0.0)):.2f} and {float(laplace_pdf(0.0)):.2f},"
                " above this axis")
    return [Panel("Densities", f"Huber α = {_fmt(alpha)}", x, curves, "density", legend_loc="upper right",
                  note=note, ylim=ylim, note_at=(0.22, 0.8))]


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


def _parting(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float | None:
    """The smallest x > 0 where curves a and b are more than ``TOUCH_FRACTION`` of the panel's height apart."""
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    apart = (x > 0) & (np.abs(a - b) > TOUCH_FRACTION * span)
    return float(x[np.argmax(apart)]) if apart.any() else None


def _touch_note(part: float | None, x: np.ndarray) -> str:
    if part is None:
        return f"touch across\n[−{_fmt(x[-1])}, {_fmt(x[-1])}]"
    if part <= 2 * (x[1] - x[0]):
        return "touch only at x = 0,\npart at once"
    return f"touch for |x| < {part:.2g},\npart beyond"


def figure4_panels(alphas: float | Sequence[float] = FIGURE4_ALPHAS, beta: float | Sequence[float] | None = None,
                   *, x_max: float | None = None, n_points: int = N_POINTS) -> list[Panel]:
    """Figure 4: for each α, one panel with H_α and D_{α,β} (eqs. 5, 19) and one below with their derivatives
    (H'_α = x clipped to [−α, α]; D'_{α,β}, eq. 21). Panels are ordered row-major: all loss panels, then all
    derivative panels. ``beta=None`` means β = 1/α per panel (the paper does not say); every panel spans
    x ∈ [−x_max, x_max], default [−3, 3] (:data:`FIGURE4_X_MAX`).

    A loss panel marks where H_α and D_{α,β} part (their gap first exceeds ``TOUCH_FRACTION`` of the panel's
    height; the note says how far they touch); a derivative panel marks |x| = α, where H'_α saturates.
    """
    if isinstance(alphas, numbers.Real) and not isinstance(alphas, bool):
        alphas = (alphas,)
    alphas = [check_alpha(a, f"alphas[{i}]") for i, a in enumerate(alphas)]
    if not alphas:
        raise ValueError("alphas must hold at least one α")
    betas = _figure4_betas(alphas, beta)
    n_points = check_n_points(n_points)
    losses, grads = [], []
    x = _grid(_check_x_max(x_max, FIGURE4_X_MAX), n_points)
    for alpha, b in zip(alphas, betas):
        params = f"α = {_fmt(alpha)}, β = {_fmt(b)}"
        h, d = huber(x, alpha), laplace_kl_loss(x, alpha, b)
        part = _parting(x, h, d)
        losses.append(Panel("", params, x, {"huber": h, "kl": d}, "loss", marks=(Mark("part", part, ""),),
                            note=_touch_note(part, x)))
        kink = alpha if 0.02 * x[-1] < alpha < x[-1] else None
        slopes = {"huber_grad": huber_grad(x, alpha), "kl_grad": laplace_kl_loss_grad(x, alpha, b)}
        grads.append(Panel("", params, x, slopes,
                           "derivative", legend_loc="upper left", marks=(Mark("kink", kink, "|x| = α"),)))
    return losses + grads


# ---------------------------------------------------------------------------------------------------------------
# what a panel draws besides its curves
# ---------------------------------------------------------------------------------------------------------------
def overlays(panel: Panel) -> list[tuple[str, np.ndarray, np.ndarray, list[str] | None]]:
    """What a panel draws besides its curves, as (key, x, y, texts) in a fixed order: per mark its lines
    (``"mark:<key>"``, no texts: x = ±at from the bottom of the panel up to 90 % of its height, or 45 % below a
    note; a NaN gap between them, all NaN for an absent mark) and its label (``"label:<key>"``: one text at the
    foot of the right line, "" when absent); then the note (``"note"``: one text centred at ``note_at``) unless the
    panel has none. Every renderer draws these, so the live views, the explorer and the offline copies show the
    same marks."""
    lo, hi = panel.y_span()
    top = lo + (0.45 if panel.note is not None else 0.9) * (hi - lo)
    out: list[tuple[str, np.ndarray, np.ndarray, list[str] | None]] = []
    for mark in panel.marks:
        if mark.at is None:
            out.append((f"mark:{mark.key}", np.full(5, np.nan), np.full(5, np.nan), None))
            out.append((f"label:{mark.key}", np.array([0.0]), np.array([lo]), [""]))
            continue
        out.append((f"mark:{mark.key}", np.array([-mark.at, -mark.at, np.nan, mark.at, mark.at]),
                    np.array([lo, top, np.nan, lo, top]), None))
        out.append((f"label:{mark.key}", np.array([mark.at]), np.array([lo]), [mark.label]))
    if panel.note is not None:
        fx, fy = panel.note_at
        x0 = float(panel.x[0] + fx * (panel.x[-1] - panel.x[0]))
        out.append(("note", np.array([x0]), np.array([lo + fy * (hi - lo)]), [panel.note]))
    return out


def trace_slots(panels: Sequence[Panel]) -> list[tuple[int, str]]:
    """(panel index, key) of every trace :func:`labkit.figures.builders.plotly_figure` draws, in its order: per
    panel its curves, then its overlays (:func:`overlays`)."""
    return [(i, key) for i, p in enumerate(panels) for key in [*p.curves, *(o[0] for o in overlays(p))]]


def trace_data(panels: Sequence[Panel]) -> list[tuple[np.ndarray, np.ndarray, list[str] | None]]:
    """(x, y, texts) of every trace in :func:`trace_slots` order; a curve or a mark's lines have no texts (None)."""
    out = []
    for p in panels:
        out += [(p.x, y, None) for y in p.curves.values()]
        out += [(x, y, texts) for _, x, y, texts in overlays(p)]
    return out
