"""Statistics over results: per-arm mean ± 95 % CI, the best label scale per noise, and seed-paired differences.

Every interval is a Student-t interval over seeds (:func:`labkit.stats.mean_ci`); runs that failed or have no
value of a metric are counted, never averaged in.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Mapping, Sequence

from labkit.experiments.designs import LOWER_IS_BETTER, METRICS, Experiment
from labkit.experiments.results import NO_SUMMARY, OK, Results
from labkit.stats import Summary, mean_ci

__all__ = ["summarise", "noise_grid", "best_label_scales", "matched_label_scale", "paired_differences"]


def _summary(values: Sequence[float | None]) -> Summary:
    """Mean ± CI of the defined values (a run with no true positive has no localization error; a results file
    written before a metric existed has none of it)."""
    defined = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return mean_ci(defined) if defined else NO_SUMMARY


def summarise(experiment: Experiment, rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Per arm of ``experiment`` with runs in ``rows``: the arm's fields, seeds that finished and failed, and a
    :class:`~labkit.stats.Summary` per metric over the finished ones."""
    out = []
    for arm in experiment.arms:
        mine = [r for r in rows if r["arm"] == arm.name]
        if not mine:
            continue
        ok = [r for r in mine if r["status"] == OK]
        entry = {"experiment": experiment.name, "arm": arm.name, "label": arm.label,
                 "label_noise": arm.label_noise,
                 "label_scale": None if arm.label_scale is None else str(arm.label_scale), "n_seeds": len(ok),
                 "n_failed": len(mine) - len(ok)}
        # failed runs are counted, not averaged in as zeros; an arm with none left has no mean
        entry.update({m: _summary([r.get(m) for r in ok]) for m in METRICS})
        out.append(entry)
    return tuple(out)


def noise_grid(results: Results, metric: str) -> dict[float, list[tuple[float, Summary]]]:
    """A noise study's summaries of ``metric``: b₁ -> [(α·σ, summary)] sorted by α·σ."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got metric={metric!r}")
    grid: dict[float, list[tuple[float, Summary]]] = {}
    for s in results.summary:
        if s.get("label_scale") is None:
            raise ValueError(f"results of {results.name!r} have no label scales; expected the noise study's")
        grid.setdefault(float(s["label_noise"]), []).append((float(Fraction(s["label_scale"])), s[metric]))
    return {b: sorted(v, key=lambda t: t[0]) for b, v in sorted(grid.items())}


def best_label_scales(results: Results, metric: str = "AP75") -> list[dict[str, Any]]:
    """Per label noise b₁: the swept label scale α·σ with the best mean ``metric`` (the largest; the smallest for
    ``loc_err``), and its ratio to b₁.
    A tie for the best mean gives ``best_label_scale`` None (no preference)."""
    out = []
    for b, points in noise_grid(results, metric).items():
        points = [p for p in points if not math.isnan(p[1].mean)]  # arms whose every run diverged
        if not points:
            out.append({"label_noise": b, "best_label_scale": None, "ratio_to_noise": None, metric: math.nan,
                        "ci95": math.nan})
            continue
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        ls, s = max(points, key=lambda t: sign * t[1].mean)
        if sum(p[1].mean == s.mean for p in points) > 1:
            ls = None
        out.append({"label_noise": b, "best_label_scale": ls,
                    "ratio_to_noise": ls / b if b and ls is not None else None, metric: s.mean, "ci95": s.half_width})
    return out


def matched_label_scale(label_noise: float, label_scales: Sequence[float]) -> float:
    """The swept label scale eq. 42 matches to the injected noise b₁: the one nearest b₁ on a log scale (ties: the
    smaller); for b₁ = 0, the smallest."""
    scales = sorted(float(x) for x in label_scales)
    if not scales or scales[0] <= 0:
        raise ValueError(f"label_scales must be positive numbers, got {label_scales!r}")
    if label_noise <= 0:
        return scales[0]
    return min(scales, key=lambda x: abs(math.log(x / label_noise)))


def paired_differences(results: Results, metric: str = "loc_err") -> list[dict[str, Any]]:
    """Per injected noise b₁, every other swept label scale against the matched one (:func:`matched_label_scale`):
    the mean over seeds of (``metric`` of the arm − ``metric`` of the matched arm, same seed) with its 95 % CI.

    At one b₁ all arms of a seed train on the same noisy labels from the same initial weights in the same batch
    order, so pairing by seed removes the seed-to-seed spread that widens the per-arm intervals. Seeds where either
    run failed or has no value are left out (``n`` says how many pairs remain)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got metric={metric!r}")
    values: dict[tuple[float, float], dict[int, float]] = {}
    for r in results.rows:
        if r.get("label_scale") is None:
            raise ValueError(f"results of {results.name!r} have no label scales; expected the noise study's")
        v = r.get(metric)
        if r.get("status") == OK and v is not None and not math.isnan(float(v)):
            values.setdefault((float(r["label_noise"]), float(Fraction(r["label_scale"]))), {})[int(r["seed"])] = float(v)
    out = []
    for b in sorted({b for b, _ in values}):
        scales = sorted(ls for bb, ls in values if bb == b)
        matched = matched_label_scale(b, scales)
        for ls in scales:
            if ls == matched:
                continue
            seeds = sorted(set(values[b, ls]) & set(values[b, matched]))
            diffs = [values[b, ls][s] - values[b, matched][s] for s in seeds]
            out.append({"label_noise": b, "matched_label_scale": matched, "label_scale": ls, "metric": metric,
                        "difference": mean_ci(diffs) if diffs else NO_SUMMARY})
    return out
