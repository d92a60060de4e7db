"""Statistics over results: per-arm mean ± 95 % CI, the best label scale per noise, and seed-paired differences.

Every interval is a Student-t interval over seeds (:func:`labkit.stats.mean_ci`); runs that failed or have no
value of a metric are counted, never averaged in.

Paired differences (:func:`arm_differences` for Tables 3–5, :func:`paired_differences` for the noise study) share
one sign convention, Δ = arm − reference seed by seed (all arms of a seed train on the same data from the same
initial weights in the same batch order), and one family-wise correction: the rows one call returns are read at
once, so each row also gets a Bonferroni-widened Student-t interval at 1 − (1 − c)/m for m rows, which hold
together with probability ≥ c whatever the rows' dependence; a row's verdict (``better``) is read from that
interval. Bonferroni rather than Holm because intervals, not p-values, are what the tables report. A paired
percentile bootstrap interval at c is given beside the t interval; with 3 seeds it is the range of the 3
differences (each all-one-seed resample has probability 1/27 > 2.5 %), too narrow to read alone.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np

from labkit.experiments.designs import LOWER_IS_BETTER, METRICS, Experiment
from labkit.experiments.results import NO_SUMMARY, OK, Results
from labkit.stats import Summary, mean_ci

__all__ = ["summarise", "noise_grid", "best_label_scales", "matched_label_scale", "paired_differences",
           "REFERENCE_ARMS", "BOOTSTRAP_RESAMPLES", "bootstrap_interval", "paired_difference", "arm_differences"]

#: the arm each table's other arms are measured against (Δ = arm − reference): Table 3 against Implemented (the
#: settings the frameworks ship, and the paper's baseline for Proposed), Table 4 D_{α/2,1/α} − H_α, Table 5
#: linear − log size target
REFERENCE_ARMS = {"table3": "implemented", "table4": "huber", "table5": "log"}
#: resamples of the paired bootstrap (generator seeded, so a table reads the same every time)
BOOTSTRAP_RESAMPLES = 10_000


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


def bootstrap_interval(values: Sequence[float], confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval at ``confidence`` of the mean of ``values`` (one per seed: resampling them
    resamples whole seeds, so paired differences stay paired); (NaN, NaN) for fewer than two values."""
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        return math.nan, math.nan
    means = data[np.random.default_rng(seed).integers(0, data.size, (resamples, data.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def _arm_values(results: Results, metric: str) -> dict[str, dict[int, float]]:
    """arm -> seed -> ``metric`` of the finished runs that have a value of it."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got metric={metric!r}")
    values: dict[str, dict[int, float]] = {}
    for r in results.rows:
        v = r.get(metric)
        if r.get("status") == OK and v is not None and not math.isnan(float(v)):
            values.setdefault(str(r["arm"]), {})[int(r["seed"])] = float(v)
    return values


def _better(family: Summary, higher_is_better: bool) -> str:
    """Which side the family-wise interval of Δ = arm − reference favours: "arm", "reference", "unresolved" (it
    covers 0), or "undefined" (no interval: fewer than two pairs)."""
    if math.isnan(family.half_width):
        return "undefined"
    # the arm's gain over the reference: Δ where larger is better, −Δ where smaller is
    low, high = (family.low, family.high) if higher_is_better else (-family.high, -family.low)
    return "arm" if low > 0 else "reference" if high < 0 else "unresolved"


def paired_difference(arm: Mapping[int, float], reference: Mapping[int, float], metric: str, comparisons: int,
                      confidence: float = 0.95, higher_is_better: bool | None = None) -> dict[str, Any]:
    """Δ = arm − reference over the seeds both have (``arm``, ``reference``: seed → value): the mean with its
    Student-t interval at ``confidence``, the paired bootstrap interval, and the Bonferroni-widened interval for
    ``comparisons`` rows read at once with the verdict it gives. ``higher_is_better``: default from
    :data:`~labkit.experiments.designs.LOWER_IS_BETTER`."""
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise ValueError(f"comparisons must be an int >= 1, got comparisons={comparisons!r}")
    higher = metric not in LOWER_IS_BETTER if higher_is_better is None else bool(higher_is_better)
    seeds = sorted(set(arm) & set(reference))
    diffs = [arm[s] - reference[s] for s in seeds]
    family = mean_ci(diffs, 1 - (1 - confidence) / comparisons) if diffs else NO_SUMMARY
    return {"metric": metric, "higher_is_better": higher, "seeds": tuple(seeds),
            "difference": mean_ci(diffs, confidence) if diffs else NO_SUMMARY,
            "bootstrap": bootstrap_interval(diffs, confidence), "comparisons": comparisons, "family": family,
            "better": _better(family, higher)}


def arm_differences(results: Results, reference: str | None = None, metrics: Sequence[str] | None = None,
                    confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per arm other than ``reference`` (default: :data:`REFERENCE_ARMS` of the experiment) and per metric
    (default: every metric some run has), Δ = arm − reference paired by seed; the family is every row returned,
    m = (arms − 1) × metrics. Each row: ``arm``, ``label``, ``reference``, ``reference_label``, ``metric``,
    ``higher_is_better``, ``seeds`` (paired), ``difference`` (:class:`~labkit.stats.Summary` at ``confidence``),
    ``bootstrap`` (low, high), ``comparisons`` (m), ``family`` (the Summary at 1 − (1 − confidence)/m) and
    ``better`` ("arm", "reference", "unresolved" or "undefined", from ``family``)."""
    arms = list(dict.fromkeys(str(r["arm"]) for r in results.rows))
    reference = REFERENCE_ARMS.get(results.name) if reference is None else reference
    if reference not in arms:
        raise ValueError(f"reference must be an arm of {results.name!r} with runs ({arms}), got {reference!r}")
    if metrics is None:
        metrics = [m for m in METRICS if any(r.get(m) is not None for r in results.rows)]
    values = {m: _arm_values(results, m) for m in metrics}
    if not values:
        raise ValueError(f"metrics must name at least one of {METRICS}, got metrics={metrics!r}")
    labels = {str(r["arm"]): str(r.get("label") or r["arm"]) for r in results.rows}
    others = [a for a in arms if a != reference]
    if not others:
        raise ValueError(f"results of {results.name!r} have no arm besides the reference {reference!r}")
    return [{"arm": a, "label": labels[a], "reference": reference, "reference_label": labels[reference],
             **paired_difference(values[m].get(a, {}), values[m].get(reference, {}), m, len(others) * len(values),
                                 confidence)}
            for a in others for m in values]


def paired_differences(results: Results, metric: str = "loc_err", confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per injected noise b₁, every other swept label scale against the matched one (:func:`matched_label_scale`):
    Δ = ``metric`` of the arm − ``metric`` of the matched arm, same seed, as :func:`arm_differences` gives it
    (``difference``, ``bootstrap``, ``family``, ``better``), the family being every row returned (one metric's
    table), with ``label_noise``, ``matched_label_scale`` and ``label_scale``.

    At one b₁ all arms of a seed train on the same noisy labels from the same initial weights in the same batch
    order, so pairing by seed removes the seed-to-seed spread that widens the per-arm intervals. Seeds where either
    run failed or has no value are left out (``difference.n`` says how many pairs remain); the matched scale is
    chosen from the swept grid, whether or not its runs finished."""
    values = _arm_values(results, metric)
    cells: dict[tuple[float, float], str] = {}
    for r in results.rows:
        if r.get("label_scale") is None:
            raise ValueError(f"results of {results.name!r} have no label scales; expected the noise study's")
        cells[float(r["label_noise"]), float(Fraction(r["label_scale"]))] = str(r["arm"])
    pairs = []
    for b in sorted({b for b, _ in cells}):
        scales = sorted(ls for bb, ls in cells if bb == b)
        matched = matched_label_scale(b, scales)
        pairs += [(b, matched, ls) for ls in scales if ls != matched]
    return [{"label_noise": b, "matched_label_scale": matched, "label_scale": ls,
             **paired_difference(values.get(cells[b, ls], {}), values.get(cells[b, matched], {}), metric, len(pairs),
                       confidence)}
            for b, matched, ls in pairs]
