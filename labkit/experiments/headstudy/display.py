"""Plots and tables of the head study (notebook 07), from its results (what ``results.json`` holds): data in,
``ax=None``, the figure out; each table a :class:`~labkit.experiments.display.ResultTable`.

:func:`plot_head_study` draws the answer on one plot — per noise level b₁ the best label scale α·σ of each setting
(median and quartiles of its bootstrap distribution as a thick bar, the 95 % interval as a thin one), the paper's
band [b₁, 2b₁] (eqs. 27 and 42), the M-estimation theory's optima for the clean reference's centre and size
residuals (joined by a line), and the two controls; :func:`plot_error_curves` the clean validation error against α·σ
per condition, each seed a thin line under the mean.

Tables: :func:`slope_table` (the primary endpoint, the slope of log best α·σ against log b₁, per setting),
:func:`argmin_table` (the best α·σ per setting and condition against the paper's band and the theory),
:func:`corners_table` (the end-to-end corners, paired by seed); and the theory the study is held against —
:func:`theory_optimum_table` (the asymptotic optimum against the paper's α = b, from
:func:`labkit.theory.variance_curves`) and :func:`finite_p_table` (Huber at finite p/n, from
:func:`labkit.theory.simulate_regression`).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from labkit.experiments.display import ResultTable
from labkit.experiments.headstudy.design import LAPLACE, LINEAR_SETTING, SETTINGS
from labkit.theory import VarianceCurves, asymptotic_variance, simulate_regression

__all__ = ["plot_head_study", "plot_error_curves", "slope_table", "argmin_table", "corners_table",
           "theory_optimum_table", "finite_p_table"]

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


def slope_table(results: Mapping[str, Any]) -> ResultTable:
    """The primary endpoint per setting: the slope of log best α·σ against log b₁ over the noisy levels
    (:func:`~labkit.experiments.headstudy.analysis.bootstrap_slope`; 1 if α·σ tracks b₁ proportionally, 0 if it
    ignores it), its 95 % and family-wise percentile intervals, the share of censored resamples (some argmin at an
    end of the grid) and the number of seeds. Settings without a slope (fewer than two noisy levels) are left out."""
    rows = []
    for setting, analysis in results["analysis"].items():
        slope = analysis["slope"]
        if not slope:
            continue
        family = slope["familywise"]
        rows.append((setting, f"{slope['slope']:.2f}", f"[{slope['low']:.2f}, {slope['high']:.2f}]",
                     f"[{family['low']:.2f}, {family['high']:.2f}]", f"{slope['censored']:.0%}",
                     str(slope["n_seeds"])))
    return ResultTable("Slope of log best α·σ against log b₁",
                       ("setting", "slope", "95 % interval", "familywise", "censored", "seeds"), tuple(rows))


def argmin_table(results: Mapping[str, Any]) -> ResultTable:
    """Per setting and condition: the best label scale α·σ (the refined argmin of the seed-mean error curve,
    :func:`~labkit.experiments.headstudy.analysis.argmin_scale`), its 95 % paired-bootstrap interval, the paper's
    band [b₁, 2b₁] (eqs. 27, 42; Laplace conditions only), the theory's range of optima for the centre and size
    residuals (:func:`~labkit.experiments.headstudy.analysis.theory_optimum`) and whether the argmin sits at an end
    of the label-scale grid."""
    rows = []
    for setting, analysis in results["analysis"].items():
        for condition, v in analysis["argmin"].items():
            band = f"[{v['paper_band'][0]:g}, {v['paper_band'][1]:g}]" if v["kind"] == LAPLACE else "–"
            theory = v["theory"]["range"]
            rows.append((setting, condition, f"{v['label_scale']:.4f}", f"[{v['low']:.4f}, {v['high']:.4f}]", band,
                         f"{theory[0]:.4f}–{theory[1]:.4f}" if theory else "–", str(v["at_edge"])))
    return ResultTable("Committed head study: best α·σ per setting and condition",
                       ("setting", "condition", "best α·σ", "95 % interval", "paper band", "theory range",
                        "at grid edge"), tuple(rows))


_LIMITS = {"lower": " (α → 0)", "upper": " (α → ∞)"}


def theory_optimum_table(curves: VarianceCurves) -> ResultTable:
    """Per σ/b of :func:`labkit.theory.variance_curves`: the α/b that minimises V for Huber and for D, and what the
    paper's α = b costs, V(α = b)/V(best). An optimum at an end of the α range searched is marked with its limit."""
    losses = ("huber", "laplace_kl")
    rows = tuple((f"{ratio:g}",
                  *(f"{curves.optimum[loss][i][0]:.3g}" + _LIMITS.get(curves.optimum[loss][i][2], "")
                    for loss in losses),
                  *(f"{curves.at_rule[loss][i] / curves.optimum[loss][i][1]:.3f}" for loss in losses))
                 for i, ratio in enumerate(curves.ratios))
    return ResultTable("The optimum against the paper's α = b",
                       ("σ/b", "best α/b, Huber", "best α/b, D", "V(α = b) / V(best), Huber",
                        "V(α = b) / V(best), D"), rows,
                       "α → 0: V is smallest at the lower end of the α range searched (the median is the limit); "
                       "α → ∞: at the upper end (the mean).")


def finite_p_table(n: int = 200, reps: int = 200, ps: tuple[int, ...] = (4, 60),
                   alphas: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0), seed: int = 0) -> ResultTable:
    """Huber regression under Laplace noise (b = 1) at finite p/n: per p in ``ps`` and α/b in ``alphas``, n times
    the squared error per coefficient with its 95 % interval over ``reps`` replications
    (:func:`labkit.theory.simulate_regression`, ``seed`` shared by every cell), next to the asymptotic variance V
    (:func:`labkit.theory.asymptotic_variance`, the limit n/p → ∞)."""
    rows = []
    for p in ps:
        for alpha in alphas:
            s = simulate_regression("huber", alpha, "laplace", n=n, p=p, reps=reps, seed=seed, b=1.0)
            rows.append((f"{p / n:.2f}", f"{alpha:g}", f"{n * s.mean:.3f}", f"[{n * s.low:.3f}, {n * s.high:.3f}]",
                         f"{asymptotic_variance('huber', alpha, 'laplace', b=1.0):.3f}"))
    return ResultTable(f"Huber under Laplace noise, n = {n}, {reps} replications",
                       ("p/n", "α/b", "n·error", "95 % interval", "V (n/p → ∞)"), tuple(rows))


def corners_table(results: Any, metric: str = "oracle_loc_err") -> ResultTable:
    """:func:`~labkit.experiments.headstudy.endtoend.corner_effects` of the end-to-end corners as a table."""
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
