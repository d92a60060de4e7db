"""Plots and tables of the uncertainty study, from its results (what ``results.json`` holds): data in, ``ax=None``,
the figure out.

- :func:`plot_reliability`: the reliability diagram of one condition — for each arm, the observed fraction of clean
  boxes with PIT u ≤ p against p (the diagonal is calibration; above it the scales are too wide, below too narrow),
  from the PIT histograms averaged over seeds, pooled over the four coordinates;
- :func:`plot_scale_vs_injected`: each validation box's predicted scale (mean over coordinates, box sizes) against
  the label-noise scale injected for it (first seed; heteroscedastic conditions make the second vary);
- :func:`plot_metric`: one metric per arm and condition, mean and 95 % interval over seeds;
- :func:`plot_examples`: validation images with each box's kept candidate and its ±1-scale band per edge (an edge
  x₁ = c_x − w/2 gets the scale √(s_cx² + (s_w/2)²), the two coordinates' scales combined as independent), beside the
  clean box;
- :func:`comparison_table`, :func:`differences_table`: the tables notebook 08 shows;
- :func:`implied_table`, :func:`implied_stage_settings`: the fixed Huber settings the learned scales imply
  (``results.json`` → ``implied``), in decimals for people and exact for an export;
- :func:`plot_best_scales`: the scale each learned loss pushes a head to for a residual;
- :func:`plot_uncertainty_study`: the three plots side by side (``uncertainty_study.png``).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from labkit.experiments.display import ResultTable
from labkit.experiments.uncertaintystudy.design import ARMS
from labkit.interpret.settings import StageSettings

__all__ = ["plot_reliability", "plot_scale_vs_injected", "plot_metric", "plot_examples", "comparison_table",
           "differences_table", "implied_table", "implied_stage_settings", "plot_best_scales",
           "plot_uncertainty_study"]

_COLOURS = dict(zip([a.name for a in ARMS], ("#4c72b0", "#8172b3", "#c44e52", "#dd8452", "#55a868")))
_LABELS = {a.name: a.label for a in ARMS}
METRIC_LABELS = {"unc_calibration_error": "calibration error (clean boxes)", "unc_nll": "NLL of the clean box",
                 "loc_err": "localization error (box units)", "det_AP75": "detector AP75",
                 "unc_sharpness": "mean predicted scale (box units)", "noisy_calibration_error":
                 "calibration error (noisy labels)", "unc_rank_correlation": "Spearman ρ, predicted vs injected"}
#: the metrics as the comparison table's columns name them (the differences table's rows)
_SHORT = {"unc_calibration_error": "calibration error", "unc_nll": "NLL", "loc_err": "loc_err", "det_AP75": "AP75",
          "unc_sharpness": "scale (box units)", "noisy_calibration_error": "calibration error (noisy labels)",
          "unc_rank_correlation": "ρ vs injected"}


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
    ax.legend(fontsize=8, loc="lower right")  # a rising curve through about (½, ½) leaves that corner empty
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
    ax.set(xlabel=r"injected label-noise scale $b_i$ (box sizes)", ylabel="predicted scale (box sizes)",
           title=f"Learned vs injected scale, {condition}")
    # below the axes (the points fill the box), packed so that it is no wider than the axes
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, columnspacing=0.8,
              handletextpad=0.3, handlelength=1.2, markerscale=1.5)
    return ax.figure


def plot_metric(results: Mapping[str, Any], metric: str = "unc_calibration_error", voting: bool = False,
                ax: Any = None) -> Figure:
    """``metric``'s mean ± 95 % interval per arm (colour) and condition (x)."""
    ax = _axes(ax, (8.0, 4.2))  # the legend stands right of the axes
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
    ax.set_xticks(range(len(conditions)), conditions, fontsize=8, rotation=15)
    ax.set(ylabel=METRIC_LABELS.get(metric, metric), title=f"{METRIC_LABELS.get(metric, metric)} per arm")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # off the data
    return ax.figure


def _edges(box: Sequence[float], scales: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(outer, inner) xyxy rectangles at ±1 scale of each edge."""
    sx, sy = np.hypot(scales[0], scales[2] / 2), np.hypot(scales[1], scales[3] / 2)
    grow = np.array([-sx, -sy, sx, sy])
    b = np.asarray(box, float)
    return b + grow, b - grow


def plot_examples(results: Mapping[str, Any], images: Mapping[int, Any], condition: str | None = None,
                  arms: Sequence[str] = ("fixed-implemented", "learned-kl"), figure: Figure | None = None) -> Figure:
    """One row per arm, one column per image of ``images`` (index → [3, H, W] tensor or H×W×3 array): the clean
    box (white, dashed), the kept candidate (the arm's colour) and its ±1-scale band (shaded between the outer and
    inner rectangles)."""
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path as MplPath

    condition = condition or _heteroscedastic(results)
    shown = list(images)
    figure = figure or Figure(figsize=(2.3 * len(shown), 2.5 * len(arms)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(arms), len(shown), squeeze=False))
    for r, arm in enumerate(arms):
        boxes = results["examples"][condition][arm]
        for c, index in enumerate(shown):
            ax = axes[r, c]
            picture = images[index]
            picture = picture.permute(1, 2, 0).numpy() if hasattr(picture, "permute") else np.asarray(picture)
            ax.imshow(picture)
            for b in (b for b in boxes if b["image"] == index):
                x1, y1, x2, y2 = b["truth"]
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=1, ls="--"))
                outer, inner = _edges(b["box"], b["scales"])
                ring = MplPath.make_compound_path(MplPath(_corners(outer)), MplPath(_corners(inner)[::-1]))
                ax.add_patch(PathPatch(ring, fc=_COLOURS[arm], alpha=0.35, ec="none"))
                x1, y1, x2, y2 = b["box"]
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=_COLOURS[arm], lw=1.4))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(_LABELS[arm], fontsize=8)
    figure.suptitle(f"Kept boxes with their ±1-scale bands, {condition} (white dashed: the clean box)", fontsize=9)
    return figure


def _corners(b: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = b
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]])


def comparison_table(results: Mapping[str, Any], condition: str | None = None) -> ResultTable:
    """One row per arm and voting of ``condition`` (default: the first heteroscedastic one): the means ± 95 %
    intervals over seeds of calibration error, NLL, sharpness, ρ, loc_err and AP75."""
    condition = condition or _heteroscedastic(results)

    def cell(s: Mapping[str, Any], metric: str, digits: int = 3) -> str:
        mean, ci = s.get(f"{metric}_mean"), s.get(f"{metric}_ci95")
        if mean is None:
            return "–"
        return f"{mean:.{digits}f}" + ("" if ci is None or ci != ci else f" ± {ci:.{digits}f}")

    rows = tuple((s["label"] + (" + voting" if s["voting"] else ""), cell(s, "unc_calibration_error"),
                  cell(s, "unc_nll", 2), cell(s, "unc_sharpness"), cell(s, "unc_rank_correlation", 2),
                  cell(s, "loc_err", 4), cell(s, "det_AP75"))
                 for s in results["summary"] if s["condition"] == condition)
    n = len(results["seeds"])
    return ResultTable(f"Arms on {condition} (mean ± 95 % interval over {n} seeds)",
                       ("arm", "calibration error", "NLL", "scale (box units)", "ρ vs injected", "loc_err", "AP75"),
                       rows, f"Against the clean validation boxes; AP75 of the detector with the head put back, "
                             f"first {results['scale']['ap_seeds']} seeds.")


def differences_table(results: Mapping[str, Any], condition: str | None = None) -> ResultTable:
    """Δ = arm − fixed Implemented (no voting), paired by seed, for ``condition``: mean, 95 % interval, the
    family-wise interval and its verdict."""
    condition = condition or _heteroscedastic(results)
    rows = [d for d in results["differences"] if d["condition"] == condition]
    words = {"arm": "arm better", "reference": "arm worse", "unresolved": "not resolved", "undefined": "–"}

    def num(x: Any, digits: int = 4) -> str:
        return "–" if x is None or x != x else f"{x:+.{digits}f}"

    body = tuple((_LABELS[d["arm"]] + (" + voting" if d["voting"] else ""), _SHORT.get(d["metric"], d["metric"]),
                  num(d["diff_mean"]),
                  "–" if d["diff_ci95"] is None or d["diff_ci95"] != d["diff_ci95"] else f"± {d['diff_ci95']:.4f}",
                  f"[{num(d['family_low'])}, {num(d['family_high'])}]", words[d["better"]]) for d in rows)
    comparisons = rows[0]["comparisons"] if rows else 0
    reference = _LABELS.get(results["reference_arm"], results["reference_arm"])
    return ResultTable(f"Paired differences against {reference} (no voting) on {condition}",
                       ("arm", "metric", "Δ", "95 %", "family-wise interval", "verdict"), body,
                       f"Δ = arm − reference, seed by seed; the family-wise interval is Bonferroni over the "
                       f"{comparisons} rows of this table.")


def _implied(results: Mapping[str, Any], condition: str, arm: str) -> Mapping[str, Any]:
    implied = results["implied"]
    if condition not in implied:
        raise ValueError(f"condition must be one of {tuple(implied)}, got condition={condition!r}")
    if arm not in implied[condition]:
        raise ValueError(f"arm must be a learned arm of the study, one of {tuple(implied[condition])}, got arm={arm!r}")
    return implied[condition][arm]


def _decimal(value: str, places: int = 3) -> str:
    """An exact value of ``results.json`` ("1923/2500") to ``places`` decimals, rounded half to even from the exact
    fraction (not from its float)."""
    return f"{float(round(Fraction(value), places)):.{places}f}"


def implied_table(results: Mapping[str, Any], arm: str = "learned-kl", places: int = 3) -> ResultTable:
    """The fixed detection-stage settings that ``arm``'s learned scales imply, one row per condition: λ, α (kept
    from the arm's stage), σ (x, y, w, h), the prediction scales (anchor sizes) they reproduce and ρ = label /
    prediction scale — ``results.json`` → ``implied`` (:func:`labkit.interpret.implied_stage`, the median over
    seeds of each seed's median learned scale), in ``places`` decimals; the exact values stay in the results
    (:func:`implied_stage_settings` for an export)."""
    if isinstance(places, bool) or not isinstance(places, int) or not 1 <= places <= 10:
        raise ValueError(f"places must be an int in 1..10, got places={places!r}")

    def vector(values: Sequence[str]) -> str:
        return ", ".join(_decimal(v, places) for v in values)

    rows = []
    for condition in (c["name"] for c in results["scale"]["conditions"] if c["name"] in results["implied"]):
        got = _implied(results, condition, arm)
        s = got["settings"]
        rows.append((condition, _decimal(s["lam"], places), str(Fraction(s["alpha"])),
                     vector([s["sigma_x"], s["sigma_y"], s["sigma_w"], s["sigma_h"]]),
                     vector(got["prediction_scales"]), _decimal(got["ratio"], places)))
    return ResultTable(f"Fixed detection-stage settings implied by {_LABELS.get(arm, arm)}",
                       ("condition", "λ", "α", "σ (x, y, w, h)", "prediction scale (x, y, w, h)",
                        "label / prediction"), tuple(rows),
                       f"The stage whose fixed prediction scale σ/(λα) equals the median learned scale (median over "
                       f"{len(results['seeds'])} seeds of the median over boxes), α kept; prediction scales in anchor "
                       f"sizes; {places} decimals of the exact values in results.json.")


def implied_stage_settings(results: Mapping[str, Any], condition: str | None = None,
                           arm: str = "learned-kl") -> StageSettings:
    """The exact implied detection stage of ``arm`` on ``condition`` (default: the study's last condition, its
    noisiest — heteroscedastic b₁ = 0.2 in the lab study), ready for :func:`labkit.interpret.exports.export`."""
    condition = condition or results["scale"]["conditions"][-1]["name"]
    return StageSettings.from_dict(_implied(results, condition, arm)["settings"])


def plot_best_scales(label_scale: float = 1.0, ax: Any = None) -> Figure:
    """The scale each learned loss pushes a head to for a residual x (units of the label scale a): eq. 18's KL,
    b* = |x| + a·e^{−|x|/a} (:func:`labkit.losses.laplace_kl_best_scale`); the Laplace NLL, b* = |x|."""
    from labkit.losses import laplace_kl_best_scale

    ax = _axes(ax, (5.0, 3.6))
    x = np.linspace(0, 4 * label_scale, 201)
    ax.plot(x / label_scale, np.asarray(laplace_kl_best_scale(x, label_scale)) / label_scale,
            color=_COLOURS["learned-kl"], lw=2, label=r"Laplace KL (eq. 18): $|x| + a\,e^{-|x|/a}$")
    ax.plot(x / label_scale, x / label_scale, color=_COLOURS["laplace-nll"], lw=2, ls="--",
            label=r"Laplace NLL: $|x|$")
    ax.axhline(1, color="0.6", lw=1, ls=":")
    ax.set(xlabel="residual |x| / label scale a", ylabel="best predicted scale / a", ylim=(0, None),
           title="The scale each loss learns for a residual")
    ax.legend(fontsize=8)
    return ax.figure


def plot_uncertainty_study(results: Mapping[str, Any]) -> Figure:
    """Reliability, learned vs injected scale, and calibration error per arm, side by side."""
    figure = Figure(figsize=(14.5, 4.4), layout="constrained")
    axes = figure.subplots(1, 3)
    plot_reliability(results, ax=axes[0])
    plot_scale_vs_injected(results, ax=axes[1])
    plot_metric(results, ax=axes[2])
    return figure
