"""Plots of the head study, from its results (what ``results.json`` holds): data in, ``ax=None``, the figure out.

:func:`plot_head_study` draws the answer on one plot — per noise level b₁ the best label scale α·σ of each setting
(median and quartiles of its bootstrap distribution as a thick bar, the 95 % interval as a thin one), the paper's
band [b₁, 2b₁] (eqs. 27 and 42), the M-estimation theory's optima for the clean reference's centre and size
residuals (joined by a line), and the two controls; :func:`plot_error_curves` the clean validation error against α·σ
per condition, each seed a thin line under the mean.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from labkit.experiments.headstudy.design import LAPLACE, LINEAR_SETTING, SETTINGS

__all__ = ["plot_head_study", "plot_error_curves", "corners_table"]

_SETTING_LABELS = {"a_linear": "(a) last layer (convex)", "b_mlp": "(b) fc7 + regressor (MLP)"}


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    return Figure(figsize=size, layout="constrained").subplots() if ax is None else ax


def _positions(argmins: Mapping[str, Any]) -> dict[str, float]:
    """x of each condition: b₁ for the Laplace levels, b₁ = 0 half a step left of the least, controls right."""
    noisy = sorted(v["label_noise"] for v in argmins.values() if v["kind"] == LAPLACE and v["label_noise"] > 0)
    low, high = (noisy[0], noisy[-1]) if noisy else (0.1, 0.1)
    x, extra = {}, 0
    for name, v in argmins.items():
        if v["kind"] == LAPLACE:
            x[name] = v["label_noise"] if v["label_noise"] > 0 else low / 2
        else:
            extra += 1
            x[name] = high * 2**extra
    return x


def plot_head_study(results: Mapping[str, Any], ax: Any = None) -> Figure:
    """Best α·σ against the injected noise for both settings, with the paper's band and the theory (module
    docstring). Returns the figure."""
    ax = _axes(ax, (6.8, 4.4))
    scales = [float(Fraction(s)) for s in results["scale"]["label_scales"]]
    first = results["analysis"][LINEAR_SETTING]["argmin"]
    x = _positions(first)
    noisy = np.array(sorted(v["label_noise"] for v in first.values() if v["kind"] == LAPLACE and v["label_noise"] > 0))
    if len(noisy):
        span = np.geomspace(noisy[0] / 1.3, noisy[-1] * 1.3, 50)
        ax.fill_between(span, span, 2 * span, color="0.85", label="paper: α·σ ∈ [b₁, 2b₁] (eqs. 27, 42)")
    theory = sorted((x[n], v["theory"]["range"]) for n, v in first.items() if v["theory"]["range"] is not None)
    for i, (xi, (low, high)) in enumerate(theory):
        ax.plot([xi, xi], [low, high], "k-", linewidth=0.8)
        ax.plot([xi, xi], [low, high], "k_", markersize=8,
                label="theory: argmin V(α) for the centre / size residuals" if i == 0 else None)
    for k, setting in enumerate(SETTINGS):
        shift = 1.06 ** (2 * k - 1)
        for i, (name, v) in enumerate(results["analysis"][setting]["argmin"].items()):
            xi = x[name] * shift
            q1, med, q3 = v["quartiles"]
            ax.plot([xi, xi], [v["low"], v["high"]], color=f"C{k}", linewidth=1)
            ax.plot([xi, xi], [q1, q3], color=f"C{k}", linewidth=4, solid_capstyle="butt")
            ax.plot([xi], [v["label_scale"]], "o", color=f"C{k}", markersize=4,
                    label=_SETTING_LABELS[setting] if i == 0 else None)
    for s in (scales[0], scales[-1]):
        ax.axhline(s, color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(x.items(), key=lambda t: t[1])
    ax.set_xticks([t[1] for t in ticks],
                  [("0" if first[n]["label_noise"] == 0 else f"{first[n]['label_noise']:g}")
                   if first[n]["kind"] == LAPLACE else first[n]["kind"] for n, _ in ticks])
    ax.minorticks_off()
    ax.set_xlabel("injected label noise b₁ (box sizes); controls at the right")
    ax.set_ylabel("best label scale α·σ (RoI sizes)")
    ax.set_title(f"Does α·σ track the label noise? ({results['scale']['name']} scale, "
                 f"{len(results['seeds'])} seeds)", fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper left")
    return ax.figure


def plot_error_curves(results: Mapping[str, Any], setting: str = LINEAR_SETTING, ax: Any = None) -> Figure:
    """Clean validation error against α·σ, one colour per condition: each seed a thin line, the mean thick, the
    argmin marked. Returns the figure."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got setting={setting!r}")
    ax = _axes(ax, (6.8, 4.2))
    labels = [str(s) for s in results["scale"]["label_scales"]]
    xs = [float(Fraction(s)) for s in labels]
    for i, (name, v) in enumerate(results["analysis"][setting]["argmin"].items()):
        rows = [r for r in results["runs"] if r["setting"] == setting and r["condition"] == name]
        for seed in sorted({r["seed"] for r in rows}):
            by_scale = {r["label_scale"]: r["val_err"] for r in rows if r["seed"] == seed}
            ax.plot(xs, [by_scale[s] for s in labels], color=f"C{i}", linewidth=0.4, alpha=0.3)
        ax.plot(xs, v["mean_curve"], "o-", color=f"C{i}", markersize=3, label=name)
        ax.plot([v["label_scale"]], [float(np.interp(np.log(v["label_scale"]), np.log(xs), v["mean_curve"]))],
                "v", color=f"C{i}", markersize=8)
    ax.set_xscale("log")
    ax.set_xlabel("label scale α·σ of the loss (RoI sizes, eq. 42)")
    ax.set_ylabel("clean validation error (mean |Δ|/w)")
    ax.set_title(_SETTING_LABELS[setting], fontsize="medium")
    ax.legend(fontsize="x-small", ncol=2)
    return ax.figure


def corners_table(results: Any, metric: str = "oracle_loc_err") -> Any:
    """:func:`~labkit.experiments.headstudy.endtoend.corner_effects` of the end-to-end corners as a table."""
    from labkit.experiments.display import ResultTable
    from labkit.experiments.headstudy.endtoend import corner_effects

    rows = corner_effects(results, metric)

    def fmt(x: float) -> str:
        return "–" if x != x else f"{x:+.4f}"

    return ResultTable(
        f"End to end, {metric}: paired by seed ({results.scale['name']})",
        ("effect", "mean ± 95 %", "family-wise interval (3 rows)", "seeds", "verdict"),
        tuple((r["effect"], fmt(r["difference"].mean) + ("" if r["difference"].half_width != r["difference"].half_width
                                                          else f" ± {r['difference'].half_width:.4f}"),
               f"[{fmt(r['family'].low)}, {fmt(r['family'].high)}]", str(r["difference"].n),
               "not resolved" if r["better"] == "unresolved" else
               ("> 0" if r["family"].low > 0 else "< 0") if r["better"] in ("arm", "reference") else "–")
              for r in rows),
        "Each row is a mean over seeds of a within-seed difference; eq. 42 predicts the interaction of an error "
        "metric to be < 0 (the larger label scale helping more under noise).")
