"""Figure 4 with an α slider that repaints in the browser alone: no kernel round trip per step.

:func:`labkit.figures.live.live_figure4` recomputes the curves in the kernel on every slider step and ships them to
the browser: a step costs the kernel ~1 ms but the round trip (slider message → kernel → figure message → plotly.js)
about 200 ms on a small machine. :class:`Figure4Explorer` computes the whole α family once instead: for every
position of its α slider, :func:`labkit.figures.builders.figure4_panels` gives x, H_α, D_{α,β}, H'_α and D'_{α,β}
(eqs. 5, 19, 21), with where the curves part and where H'_α saturates (the panels' marks and notes), and the
arrays travel to the browser once, as float32 binary buffers (``FAMILY_POINTS`` points per curve,
``ALPHA_POSITIONS`` positions: ≈ 0.5 MB). Its front end (``figure4_explorer.js`` beside this module, an
anywidget module) only picks the arrays of the slider's position and redraws two SVG panels: nothing in the
browser computes a loss. A β change (β slider, or the "β = 1/α" box) goes to the kernel, which recomputes the
family for the new β and sends it; α stays instant in both modes.

The widget needs a kernel only for β changes; its α slider also keeps working without one: in an offline HTML report
(``make report``) the recorded family is embedded and the module runs in the page, β controls disabled.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from labkit.figures import builders
from labkit.figures.builders import ALPHA_RANGE, BETA_RANGE, CURVE_COLORS, CURVE_LABELS, DASHED

__all__ = ["ALPHA_POSITIONS", "FAMILY_POINTS", "FAMILY_CURVES", "FAMILY_MARKS", "Figure4Explorer", "explore_figure4",
           "slider_alphas"]

#: α slider positions, 20 per decade over ALPHA_RANGE, each a round value (2 significant digits: 0.5, 0.56, 0.63)
ALPHA_POSITIONS = 121
#: points per curve in the family (odd: x = 0 is a grid point)
FAMILY_POINTS = 201
#: the curves of Figure 4, in the order of the family buffer: the loss panel's, then the derivative panel's
FAMILY_CURVES = (("huber", "kl"), ("huber_grad", "kl_grad"))
#: the marks of Figure 4, one per panel, in the order of the marks buffer (labkit.figures.panels.figure4_panels)
FAMILY_MARKS = ("part", "kink")
_ESM = Path(__file__).resolve().parent / "figure4_explorer.js"


def slider_alphas(n: int = ALPHA_POSITIONS, bounds: tuple[float, float] = ALPHA_RANGE) -> np.ndarray:
    """The α of each slider position: ``n`` log-spaced values from ``bounds[0]`` to ``bounds[1]`` (both included),
    each rounded to ``builders.SLIDER_DIGITS`` significant digits — one more where that would make two positions
    equal — so a slider shows 0.5, not 0.501. With n − 1 a multiple of the decades (10 or 20 per decade), the
    decades and 2 and 5 × 10^k are positions (the paper's α = 0.01, 0.5, 2 and 100). Increasing; the ends are
    exactly the bounds."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n must be an int >= 2, got n={n!r}")
    lo, hi = bounds
    exact = 10.0 ** np.linspace(math.log10(lo), math.log10(hi), n)
    for digits in range(builders.SLIDER_DIGITS, 8):
        values = np.array([builders.round_value(float(v), digits) for v in exact])
        if np.all(np.diff(values) > 0):
            break
    values[0], values[-1] = lo, hi
    return values


def _nearest(values: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(np.log10(values) - math.log10(value))))


class Figure4Explorer(anywidget.AnyWidget):
    """Figure 4 (H_α against D_{α,β} and their derivatives) with client-side α and a kernel-side β.

    Synced state: ``index`` (the α slider position; ``alpha`` reads it), ``beta``, ``linked`` (β = 1/α),
    ``alphas`` / ``betas`` (the slider positions), the family buffers ``x_data`` (positions × points),
    ``y_data`` (positions × 4 curves × points) and ``mark_data`` (positions × 2: where the loss panel's curves
    part and where H'_α saturates, NaN where nothing is marked), ``notes`` (the loss panel's note per position),
    ``curve_keys``, ``labels``, ``colors``, ``dashed``.
    Set ``index``, ``beta`` or ``linked`` from Python and the view follows.
    """

    _esm = _ESM
    index = traitlets.Int(0).tag(sync=True)
    beta = traitlets.Float(1.0).tag(sync=True)
    linked = traitlets.Bool(True).tag(sync=True)
    alphas = traitlets.List(traitlets.Float()).tag(sync=True)
    betas = traitlets.List(traitlets.Float()).tag(sync=True)
    n_points = traitlets.Int(FAMILY_POINTS).tag(sync=True)
    x_data = traitlets.Bytes(b"").tag(sync=True)
    y_data = traitlets.Bytes(b"").tag(sync=True)
    mark_data = traitlets.Bytes(b"").tag(sync=True)
    notes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    mark_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    family_beta = traitlets.Unicode("").tag(sync=True)
    curve_keys = traitlets.List(traitlets.Unicode()).tag(sync=True)
    labels = traitlets.Dict().tag(sync=True)
    colors = traitlets.Dict().tag(sync=True)
    dashed = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ylabels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: true only where no kernel answers (an offline HTML report, see
    #: :func:`labkit.lab.report.freeze.freeze_third_party_widgets`): the α slider works from the recorded family,
    #: the β controls are disabled
    offline = traitlets.Bool(False).tag(sync=True)
    #: the controls that work in an offline report and those drawn disabled there with a note (what ``make report``
    #: counts)
    offline_controls = traitlets.Dict({"working": ["α"], "disabled": ["β", "β = 1/α"]}).tag(sync=True)

    def __init__(self, alpha: float = 0.5, beta: float | None = None, *, positions: int = ALPHA_POSITIONS,
                 n_points: int = FAMILY_POINTS, **kwargs: Any) -> None:
        alpha = builders.check_alpha(alpha)
        if beta is not None:
            beta = builders.check_beta(beta)
        alphas = slider_alphas(positions, ALPHA_RANGE)
        betas = slider_alphas(positions, BETA_RANGE)
        self._alpha_grid = alphas
        self._beta_grid = betas
        keys = [k for pair in FAMILY_CURVES for k in pair]
        super().__init__(
            alphas=alphas.tolist(), betas=betas.tolist(), n_points=builders.check_n_points(n_points),
            index=_nearest(alphas, alpha), linked=beta is None,
            beta=float(betas[_nearest(betas, beta)]) if beta is not None else 1.0,
            curve_keys=keys, labels={k: CURVE_LABELS[k][1] for k in keys}, colors={k: CURVE_COLORS[k] for k in keys},
            dashed=[k for k in keys if k in DASHED], ylabels=["loss", "derivative"],
            mark_labels=["", "|x| = α"], **kwargs,
        )
        self.add_class("labkit-figure4-explorer")
        self.recompute()
        self.observe(self._on_beta_mode, names=["beta", "linked"])

    @property
    def alpha(self) -> float:
        """α at the slider's position."""
        return float(self._alpha_grid[self.index])

    @traitlets.validate("index")
    def _valid_index(self, proposal: dict[str, Any]) -> int:
        value = proposal["value"]
        if not 0 <= value < len(self._alpha_grid):
            raise traitlets.TraitError(f"index must lie in [0, {len(self._alpha_grid) - 1}], got {value}")
        return value

    @traitlets.validate("beta")
    def _valid_beta(self, proposal: dict[str, Any]) -> float:
        try:
            return builders.check_beta(proposal["value"])
        except (TypeError, ValueError) as exc:
            raise traitlets.TraitError(str(exc)) from None

    def current_beta(self, index: int | None = None) -> float:
        """β of the curves at slider position ``index`` (default: the current one): 1/α when linked."""
        alpha = float(self._alpha_grid[self.index if index is None else index])
        return 1.0 / alpha if self.linked else float(self.beta)

    def _on_beta_mode(self, change: dict[str, Any]) -> None:
        if change["name"] == "beta" and self.linked:
            return  # the front end moves the disabled β slider to 1/α; nothing to recompute
        self.recompute()

    def recompute(self) -> None:
        """Compute the family for the current β mode with :func:`labkit.figures.builders.figure4_panels` and send it."""
        family = self.family()
        with self.hold_sync():
            self.x_data = family["x"].astype(np.float32).tobytes()
            self.y_data = family["y"].astype(np.float32).tobytes()
            self.mark_data = family["marks"].astype(np.float32).tobytes()
            self.notes = family["notes"]
            self.family_beta = "1/α" if self.linked else builders.format_value(self.beta)

    def family(self) -> dict[str, np.ndarray]:
        """``x`` (positions × points), ``y`` (positions × 4 × points, curves in ``curve_keys`` order) and ``marks``
        (positions × 2, ``FAMILY_MARKS``; NaN: none), float64, and ``notes`` (one string per position), from
        :func:`labkit.figures.builders.figure4_panels` at every α position and the current β mode."""
        alphas = self._alpha_grid
        beta = None if self.linked else float(self.beta)
        panels = builders.figure4_panels(tuple(alphas), beta, n_points=self.n_points)
        losses, grads = panels[: len(alphas)], panels[len(alphas):]
        x = np.stack([p.x for p in losses])
        y = np.stack([np.stack([lp.curves[k] for k in FAMILY_CURVES[0]] + [gp.curves[k] for k in FAMILY_CURVES[1]])
                      for lp, gp in zip(losses, grads)])
        marks = np.array([[np.nan if m.at is None else m.at for p in (lp, gp) for m in p.marks]
                          for lp, gp in zip(losses, grads)], dtype=float)
        return {"x": x, "y": y, "marks": marks, "notes": [lp.note or "" for lp in losses]}


def explore_figure4(alpha: float = 0.5, beta: float | None = None) -> Figure4Explorer:
    """Figure 4 whose α slider repaints in the browser (see :class:`Figure4Explorer`); ``beta=None``: β = 1/α."""
    return Figure4Explorer(alpha, beta)
