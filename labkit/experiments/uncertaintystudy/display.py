"""Plots and tables of the uncertainty study, from its results (what ``results.json`` holds): data in, ``ax=None``,
the figure out.

- :func:`plot_reliability`: the reliability diagram of one condition — for each arm, the observed fraction of clean
  boxes with PIT u ≤ p against p (the diagonal is calibration; above it the scales are too wide, below too narrow),
  from the PIT histograms averaged over seeds, pooled over the four coordinates;
- :func:`plot_scale_vs_injected`: each validation box's predicted scale (mean over coordinates, box sizes) against
  the label-noise scale injected for it (first seed; heteroscedastic conditions make the second vary);
- :func:`plot_metric`: one metric per arm and condition, mean and 95 % interval over seeds;
- :func:`comparison_table`: the table the notebook and the README show;
- :func:`plot_uncertainty_study`: the three plots side by side (``uncertainty_study.png``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from labkit.experiments.uncertaintystudy.design import ARMS

__all__ = ["plot_reliability", "plot_scale_vs_injected", "plot_metric", "comparison_table",
           "plot_uncertainty_study"]

_COLOURS = dict(zip([a.name for a in ARMS], ("#4c72b0", "#8172b3", "#c44e52", "#dd8452", "#55a868")))
_LABELS = {a.name: a.label for a in ARMS}
METRIC_LABELS = {"unc_calibration_error": "calibration error (clean boxes)", "unc_nll": "NLL of the clean box",
                 "loc_err": "localization error (box units)", "det_AP75": "detector AP75",
                 "unc_sharpness": "mean predicted scale (box units)", "noisy_calibration_error":
                 "calibration error (noisy labels)", "unc_rank_correlation": "Spearman ρ, predicted vs injected"}


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    return Figure(figsize=size, layout="constrained").subplots() if ax is None else ax


def _heteroscedastic(results: Mapping[str, Any]) -> str:
    names = [c["name"] for c in results["scale"]["conditions"]]
    return next((n for n in names if n.startswith("hetero")), names[0])


def plot_reliability(results: Mapping[str, Any], condition: str | None = None, voting: bool = False,
                     ax: Any = None) -> Figure:
    """Observed cumulative frequency of the PIT against the nominal level, one line per arm (module docstring)."""
    condition = condition or _heteroscedastic(results)
    ax = _axes(ax, (4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for arm in ARMS:
        key = f"{arm.name}{' + voting' if voting else ''}"
        hist = results["pit"].get(condition, {}).get(key)
        if hist is None:
            continue
        pooled = np.mean([hist[c] for c in hist], axis=0)
        levels = np.linspace(0, 1, len(pooled) + 1)
        ax.plot(levels, np.concatenate([[0], np.cumsum(pooled)]), color=_COLOURS[arm.name], lw=1.8,
                label=_LABELS[arm.name])
    ax.set(xlabel="nominal level p", ylabel="observed fraction with PIT ≤ p", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability, {condition}{' (voting)' if voting else ''}")
    ax.legend(fontsize=7, loc="upper left")
    return ax.figure


def plot_scale_vs_injected(results: Mapping[str, Any], condition: str | None = None, ax: Any = None) -> Figure:
    """Predicted per-box scale against the injected label-noise scale, learned arms (first seed)."""
    condition = condition or _heteroscedastic(results)
    ax = _axes(ax, (4.6, 4.2))
    data = results["scatter"].get(condition, {})
    injected = np.asarray(data.get("injected", []), float)
    for arm in ARMS:
        if arm.learned and arm.name in data:
            ax.scatter(injected, data[arm.name], s=6, alpha=0.45, color=_COLOURS[arm.name], label=_LABELS[arm.name])
    if injected.size:
        grid = np.linspace(injected.min(), injected.max(), 2)
        ax.plot(grid, grid, color="0.4", ls="--", lw=1, label="predicted = injected")
    ax.set(xlabel="injected label-noise scale b_i (box sizes)", ylabel="predicted scale (box sizes)",
           title=f"Learned vs injected scale, {condition}")
    ax.legend(fontsize=7, loc="upper left")
    return ax.figure


def plot_metric(results: Mapping[str, Any], metric: str = "unc_calibration_error", voting: bool = False,
                ax: Any = None) -> Figure:
    """``metric``'s mean ± 95 % interval per arm (colour) and condition (x)."""
    ax = _axes(ax, (5.2, 4.2))
    conditions = [c["name"] for c in results["scale"]["conditions"]]
    width = 0.8 / len(ARMS)
    for k, arm in enumerate(ARMS):
        rows = {s["condition"]: s for s in results["summary"] if s["arm"] == arm.name and s["voting"] == voting}
        x = np.arange(len(conditions)) + (k - (len(ARMS) - 1) / 2) * width
        mean = [rows[c][f"{metric}_mean"] if c in rows else None for c in conditions]
        ci = [rows[c][f"{metric}_ci95"] if c in rows else None for c in conditions]
        ok = [i for i, v in enumerate(mean) if v is not None]
        ax.errorbar(x[ok], [mean[i] for i in ok], yerr=[0 if ci[i] is None else ci[i] for i in ok], fmt="o",
                    ms=4, capsize=2, color=_COLOURS[arm.name], label=_LABELS[arm.name])
    ax.set_xticks(range(len(conditions)), conditions, fontsize=8)
    ax.set(ylabel=METRIC_LABELS.get(metric, metric), title=f"{METRIC_LABELS.get(metric, metric)} per arm")
    ax.legend(fontsize=7)
    return ax.figure


def comparison_table(results: Mapping[str, Any], condition: str | None = None) -> list[dict[str, Any]]:
    """One row per arm and voting of ``condition`` (default: the first heteroscedastic one): the means ± 95 %
    intervals of calibration error, NLL, sharpness, ρ, loc_err and AP75, formatted."""
    condition = condition or _heteroscedastic(results)

    def cell(s: Mapping[str, Any], metric: str, digits: int = 3) -> str:
        mean, ci = s.get(f"{metric}_mean"), s.get(f"{metric}_ci95")
        if mean is None:
            return "–"
        return f"{mean:.{digits}f}" + ("" if ci is None or ci != ci else f" ± {ci:.{digits}f}")

    return [{"arm": s["label"] + (" + voting" if s["voting"] else ""),
             "calibration error": cell(s, "unc_calibration_error"), "NLL": cell(s, "unc_nll", 2),
             "scale (box units)": cell(s, "unc_sharpness"), "ρ vs injected": cell(s, "unc_rank_correlation", 2),
             "loc_err": cell(s, "loc_err", 4), "AP75": cell(s, "det_AP75")}
            for s in results["summary"] if s["condition"] == condition]


def plot_uncertainty_study(results: Mapping[str, Any]) -> Figure:
    """Reliability, learned vs injected scale, and calibration error per arm, side by side."""
    figure = Figure(figsize=(14.5, 4.4), layout="constrained")
    axes = figure.subplots(1, 3)
    plot_reliability(results, ax=axes[0])
    plot_scale_vs_injected(results, ax=axes[1])
    plot_metric(results, ax=axes[2])
    return figure
