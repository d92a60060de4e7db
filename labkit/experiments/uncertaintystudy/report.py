"""The uncertainty study's result files and verdict, written from the numbers.

``runs.csv``: one row per (condition, seed, arm, voting). ``summary.csv``: per (condition, arm, voting), mean ±
95 % Student-t interval over seeds of each metric. ``differences.csv``: per condition, every (arm, voting) against
the fixed Implemented arm without voting, Δ = arm − reference paired by seed
(:func:`labkit.experiments.analysis.paired_difference`), with the Bonferroni family = the rows of one condition
((arms × votings − 1) × metrics), and which side the family-wise interval favours. ``results.json``: all of it, with
the mean PIT histograms (reliability diagrams), the first seed's per-box scales beside the injected ones, the fixed
settings the learned scales imply (``labkit.interpret.implied_stage``), the reference detector, timings, provenance
the loc_err gain of variance voting per arm (paired, one family), and the verdict. Every file is written atomically (:mod:`labkit._io`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from labkit._io import write_atomic, write_json
from labkit.experiments.analysis import paired_difference
from labkit.experiments.headstudy.report import csv_text
from labkit.experiments.uncertaintystudy.design import ARMS, UncertaintyScale
from labkit.interpret import PRESETS, implied_stage
from labkit.stats import mean_ci

__all__ = ["RUN_COLUMNS", "SUMMARY_METRICS", "DIFFERENCE_METRICS", "HIGHER_IS_BETTER", "REFERENCE",
           "build_results", "verdict", "write_uncertainty_study"]

SUMMARY_METRICS = ("loc_err", "roi_loc_err", "unc_nll", "unc_calibration_error", "unc_sharpness",
                   "unc_rank_correlation", "noisy_nll", "noisy_calibration_error", "train_loss", "det_AP", "det_AP75",
                   "det_loc_err", "det_unc_nll", "det_unc_calibration_error")
RUN_COLUMNS = ("condition", "noise_model", "b1", "seed", "arm", "loss", "preset", "distribution", "voting",
               *SUMMARY_METRICS, "det_AP50", "det_unc_sharpness", "det_unc_rank_correlation", "seconds_per_fit")
#: the metrics the paired comparison reads (a family per condition)
DIFFERENCE_METRICS = ("loc_err", "unc_nll", "unc_calibration_error", "det_AP75")
HIGHER_IS_BETTER = frozenset({"det_AP", "det_AP75", "unc_rank_correlation"})
#: (arm, voting) every other is measured against: the settings the frameworks ship, read as a fixed scale
REFERENCE = ("fixed-implemented", False)


def _key(arm: str, voting: bool) -> str:
    return f"{arm}{' + voting' if voting else ''}"


def _values(rows: Sequence[Mapping[str, Any]], condition: str, arm: str, voting: bool, metric: str
            ) -> dict[int, float]:
    return {int(r["seed"]): float(r[metric]) for r in rows
            if r["condition"] == condition and r["arm"] == arm and r["voting"] == voting
            and r.get(metric) is not None and not math.isnan(float(r[metric]))}


def _summary(rows, conditions: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for c in conditions:
        for arm in ARMS:
            for voting in (False, True):
                entry: dict[str, Any] = {"condition": c, "arm": arm.name, "label": arm.label, "voting": voting}
                for metric in SUMMARY_METRICS:
                    values = list(_values(rows, c, arm.name, voting, metric).values())
                    s = mean_ci(values) if values else None
                    entry.update({f"{metric}_n": len(values), f"{metric}_mean": s.mean if s else None,
                                  f"{metric}_ci95": s.half_width if s else None})
                out.append(entry)
    return out


def _differences(rows, conditions: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    others = [(a.name, v) for a in ARMS for v in (False, True) if (a.name, v) != REFERENCE]
    for c in conditions:
        family = len(others) * len(DIFFERENCE_METRICS)
        ref = {m: _values(rows, c, *REFERENCE, m) for m in DIFFERENCE_METRICS}
        for arm, voting in others:
            for metric in DIFFERENCE_METRICS:
                d = paired_difference(_values(rows, c, arm, voting, metric), ref[metric], metric, family,
                                      higher_is_better=metric in HIGHER_IS_BETTER)
                out.append({"condition": c, "arm": arm, "voting": voting, "reference": _key(*REFERENCE),
                            "metric": metric, "n_pairs": len(d["seeds"]), "diff_mean": d["difference"].mean,
                            "diff_ci95": d["difference"].half_width, "family_low": d["family"].low,
                            "family_high": d["family"].high, "comparisons": family, "better": d["better"]})
    return out


def _voting_gains(rows, conditions: Sequence[str]) -> list[dict[str, Any]]:
    """Per condition and arm, Δ loc_err = with voting − without, paired by seed; one family over all rows."""
    family = len(conditions) * len(ARMS)
    out = []
    for c in conditions:
        for arm in ARMS:
            d = paired_difference(_values(rows, c, arm.name, True, "loc_err"),
                                  _values(rows, c, arm.name, False, "loc_err"), "loc_err", family,
                                  higher_is_better=False)
            out.append({"condition": c, "arm": arm.name, "n_pairs": len(d["seeds"]),
                        "diff_mean": d["difference"].mean, "diff_ci95": d["difference"].half_width,
                        "family_low": d["family"].low, "family_high": d["family"].high, "comparisons": family,
                        "better": d["better"]})
    return out


def _pit(rows, conditions: Sequence[str]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """condition → "arm[ + voting]" → coordinate → the PIT histogram averaged over seeds."""
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for c in conditions:
        for arm in ARMS:
            for voting in (False, True):
                hists = [r["pit_histogram"] for r in rows
                         if r["condition"] == c and r["arm"] == arm.name and r["voting"] == voting]
                if hists:
                    out.setdefault(c, {})[_key(arm.name, voting)] = {
                        k: np.mean([h[k] for h in hists], axis=0).round(6).tolist() for k in hists[0]}
    return out


def _implied(medians: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for condition, arms in medians.items():
        for name, scales in arms.items():
            preset = PRESETS[next(a for a in ARMS if a.name == name).preset]
            stage = implied_stage(preset.detection, scales, preset.form)
            out.setdefault(condition, {})[name] = {
                "median_learned_scales": [float(v) for v in scales], "settings": stage.settings.to_dict(),
                "prediction_scales": [str(v) for v in stage.prediction_scales],
                "label_scales": [str(v) for v in stage.label_scales], "ratio": str(stage.ratio)}
    return out


def _mean(summary, condition: str, arm: str, voting: bool, metric: str) -> float | None:
    for s in summary:
        if (s["condition"], s["arm"], s["voting"]) == (condition, arm, voting):
            return s[f"{metric}_mean"]
    return None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def verdict(summary: Sequence[Mapping[str, Any]], differences: Sequence[Mapping[str, Any]],
            voting: Sequence[Mapping[str, Any]], conditions: Sequence[str]) -> dict[str, str]:
    """Per condition, one paragraph read from the means and the family-wise paired intervals."""
    out = {}
    for c in conditions:
        ce = {a.name: _mean(summary, c, a.name, False, "unc_calibration_error") for a in ARMS}
        best = min((a for a in ce if ce[a] is not None), key=lambda a: ce[a], default=None)
        d = {(r["arm"], r["voting"], r["metric"]): r for r in differences if r["condition"] == c}

        def said(arm: str, metric: str, voting: bool = False) -> str:
            r = d.get((arm, voting, metric))
            if r is None:
                return "not measured"
            side = {"arm": "better", "reference": "worse", "unresolved": "not resolved",
                    "undefined": "undefined (under two seeds)"}[r["better"]]
            return f"Δ = {_fmt(r['diff_mean'], 4)}, {side} (family-wise, {r['comparisons']} comparisons)"

        parts = [f"Calibration error against the clean boxes (voting off): "
                 + ", ".join(f"{a} {_fmt(v)}" for a, v in ce.items()) + f"; least: {best}.",
                 f"Learned Laplace KL vs fixed Implemented: calibration {said('learned-kl', 'unc_calibration_error')}; "
                 f"NLL {said('learned-kl', 'unc_nll')}; loc_err {said('learned-kl', 'loc_err')}; "
                 f"AP75 {said('learned-kl', 'det_AP75')}.",
                 "Variance voting, loc_err with − without (paired): " + ", ".join(
                     f"{g['arm']} {_fmt(g['diff_mean'], 4)}" for g in voting if g["condition"] == c)
                 + f" ({voting[0]['comparisons'] if voting else 0} comparisons read at once)."]
        noisy = {a.name: _mean(summary, c, a.name, False, "noisy_calibration_error") for a in ARMS}
        parts.append("Calibration error against a noisy draw of the validation labels: "
                     + ", ".join(f"{a} {_fmt(v, 4)}" for a, v in noisy.items()) + ".")
        rho = {a.name: _mean(summary, c, a.name, False, "unc_rank_correlation") for a in ARMS if a.learned}
        if any(v is not None for v in rho.values()):
            parts.append("Spearman ρ of predicted against injected per-box scale: "
                         + ", ".join(f"{a} {_fmt(v, 2)}" for a, v in rho.items()) + ".")
        out[c] = " ".join(parts)
    return out


def build_results(scale: UncertaintyScale, seeds: Sequence[int], rows: list[dict[str, Any]],
                  reference: Mapping[str, Any], medians: Mapping[str, Any], scatter: Mapping[str, Any],
                  examples: Mapping[str, Any], timings: Mapping[str, float], rois: Mapping[str, Any],
                  data: Mapping[str, Any], provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Everything ``results.json`` holds (module docstring); ``rows`` lose their PIT histograms to ``pit``."""
    conditions = [c.name for c in scale.conditions]
    pit = _pit(rows, conditions)
    runs = [{k: v for k, v in r.items() if k != "pit_histogram"} for r in rows]
    summary = _summary(runs, conditions)
    differences = _differences(runs, conditions)
    voting = _voting_gains(runs, conditions)
    return {
        "experiment": "uncertainty", "scale": scale.to_dict(), "seeds": list(seeds),
        "arms": [{"name": a.name, "label": a.label, "preset": a.preset, "loss": a.loss,
                  "distribution": a.distribution, "start_log_scale": a.start_log_scale} for a in ARMS],
        "reference_arm": _key(*REFERENCE), "confidence": 0.95,
        "endpoints": {"loc_err": "mean |Δ|/size over cx, cy, w, h of each validation box's kept candidate (the "
                                 "top-scoring of its jittered RoIs), every box counted",
                      "unc_calibration_error": "Kuleshov et al.'s calibration error over 14 inner quantile levels "
                                               "of 15 bins, against the clean box, mean over the coordinates",
                      "det_AP75": "COCO AP75 of the reference detector with the refitted head (first "
                                  f"{scale.ap_seeds} seeds)"},
        "reference": dict(reference), "rois": dict(rois), "data": dict(data), "implied": _implied(medians),
        "scatter": dict(scatter), "examples": dict(examples),
        "pit": pit, "verdict": verdict(summary, differences, voting, conditions), "voting": voting, "timings": dict(timings),
        "provenance": dict(provenance), "runs": runs, "summary": summary, "differences": differences,
    }


def write_uncertainty_study(results: Mapping[str, Any], out: str | Path) -> tuple[Path, ...]:
    """Write ``runs.csv``, ``summary.csv``, ``differences.csv``, ``results.json`` and ``uncertainty_study.png``
    under ``out`` (atomically)."""
    from labkit.experiments.uncertaintystudy.display import plot_uncertainty_study

    out = Path(out)
    paths = tuple(out / f for f in ("runs.csv", "summary.csv", "differences.csv", "results.json",
                                    "uncertainty_study.png"))
    write_atomic(paths[0], csv_text(RUN_COLUMNS, results["runs"]))
    write_atomic(paths[1], csv_text(tuple(results["summary"][0]), results["summary"]))
    write_atomic(paths[2], csv_text(tuple(results["differences"][0]), results["differences"]))
    write_json(paths[3], results)
    figure = plot_uncertainty_study(results)
    write_atomic(paths[4], lambda f: figure.savefig(f, format="png", dpi=120, bbox_inches="tight"))
    return paths
