"""The asymptotic variance V(α) of Huber and D_{α,β} under Gaussian + Laplace label noise as one plotly figure
with its own slider over σ/b (``layout.sliders``, a precomputed grid: it works in an offline report too), the
optimum and the paper's rule α = b marked (notebook 07). The numbers are :func:`labkit.theory.variance_curves`'.
"""
from __future__ import annotations

from typing import Any

from labkit.theory.curves import CURVE_LOSSES, VarianceCurves

__all__ = ["variance_figure"]

_NAMES = {"huber": "Huber H<sub>α</sub>", "laplace_kl": "D<sub>α,β</sub> (KL of two Laplaces)"}  # plotly sets <sub> offline
_COLOURS = {"huber": "#1f77b4", "laplace_kl": "#d62728"}


def _title(curves: VarianceCurves, i: int) -> str:
    parts = []
    for loss in CURVE_LOSSES:
        best, _, side = curves.optimum[loss][i]
        where = {"lower": "α → 0 (the median)", "upper": "α → ∞ (the mean)"}.get(side, f"α* = {best:.3g} b")
        parts.append(f"{'Huber' if loss == 'huber' else 'D'}: {where}")
    noise = "pure Laplace" if curves.ratios[i] == 0 else f"σ/b = {curves.ratios[i]:g}"
    return f"{noise} — best " + "; ".join(parts)


def _frame(curves: VarianceCurves, i: int) -> tuple[list[Any], list[Any]]:
    """x and y of every trace at frame ``i``, in the figure's trace order."""
    a = curves.alphas.tolist()
    ends = [a[0], a[-1]]
    xs, ys = [], []
    for loss in CURVE_LOSSES:
        xs.append(a)
        ys.append(curves.variance[loss][i].tolist())
    for loss in CURVE_LOSSES:
        best, v, _ = curves.optimum[loss][i]
        xs.append([best])
        ys.append([v])
    for loss in CURVE_LOSSES:
        xs.append([1.0])
        ys.append([float(curves.at_rule[loss][i])])
    xs += [ends, ends]
    ys += [[float(curves.median[i])] * 2, [float(curves.mean[i])] * 2]
    return xs, ys


def variance_figure(curves: VarianceCurves, active: int = 0, height: int = 460):
    """V(α)/b² against α/b for Huber and D at each σ/b of ``curves`` (slider step i = ``curves.ratios[i]``):
    the curves, each loss's optimum (circle; at an end of the α range when the optimum is a limit), V at the
    paper's α = b (diamond on the dotted line), and the median (L1) and mean (L2) as dashed levels. Returns a
    ``plotly.graph_objects.Figure`` showing step ``active``."""
    import plotly.graph_objects as go

    n = len(curves.ratios)
    if not 0 <= active < n:
        raise ValueError(f"active must index curves.ratios (0 … {n - 1}), got active={active!r}")
    xs, ys = _frame(curves, active)
    fig = go.Figure()
    names = ([_NAMES[loss] for loss in CURVE_LOSSES] + [f"optimum, {loss}" for loss in ("Huber", "D")]
             + [f"α = b, {loss}" for loss in ("Huber", "D")] + ["median (L1, α → 0)", "mean (L2, α → ∞)"])
    colours = [_COLOURS[loss] for loss in CURVE_LOSSES] * 3 + ["#555", "#999"]
    for t, (x, y, name, colour) in enumerate(zip(xs, ys, names, colours)):
        if t < 2:
            fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", line=dict(color=colour, width=2.5)))
        elif t < 6:
            symbol = "circle" if t < 4 else "diamond"
            fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="markers",
                                     marker=dict(color=colour, symbol=symbol, size=11,
                                                 line=dict(color="white", width=1))))
        else:
            fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", line=dict(color=colour, dash="dash")))
    fig.add_vline(x=1.0, line=dict(color="#888", dash="dot"),
                  annotation_text="paper: α = b", annotation_position="top")
    steps = []
    for i, ratio in enumerate(curves.ratios):
        x, y = _frame(curves, i)
        steps.append({"method": "update", "label": "0 (Laplace)" if ratio == 0 else f"{ratio:g}",
                      "args": [{"x": x, "y": y}, {"title.text": _title(curves, i)}, list(range(len(x)))]})
    fig.update_layout(
        title=dict(text=_title(curves, active), font=dict(size=14)), height=height + 80,
        xaxis=dict(type="log", title="α / b (the loss's transition, in units of the Laplace scale)"),
        yaxis=dict(type="log", title="asymptotic variance V / b²"),
        legend=dict(font=dict(size=11)), margin=dict(b=120),
        sliders=[dict(active=active, steps=steps, currentvalue=dict(prefix="σ/b = "), y=-0.18, yanchor="top",
                      len=1.0, x=0.0, pad=dict(t=10))])
    return fig
