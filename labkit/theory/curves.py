"""V(α) curves over a grid of noise mixes, for notebook 07's figure: the asymptotic variance of Huber (H_α) and of
D_{α,β} under Gaussian + Laplace noise (σ, b), in units of b² against α/b, with each loss's optimal α and the
paper's rule α = b (Section 4.1: α is the label-noise scale b₁). Pure data (NumPy), no figure.

σ/b = 0 is pure Laplace noise, where V increases in α for both losses: the optimum is the limit α → 0 (the median),
reported as the grid's smallest α with ``boundary = "lower"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from labkit.theory.variance import OptimumAtBoundary, asymptotic_variance, optimal_alpha

__all__ = ["VarianceCurves", "variance_curves"]

CURVE_LOSSES = ("huber", "laplace_kl")


@dataclass(frozen=True)
class VarianceCurves:
    """``ratios``: σ/b per frame; ``alphas``: α/b (shared x); ``variance[loss]``: V/b², shape (ratios, alphas);
    ``optimum[loss]``: per ratio (α*/b, V*/b², boundary) with boundary None, "lower" or "upper";
    ``at_rule[loss]``: V/b² at α = b per ratio; ``median`` / ``mean``: V/b² of L1 and L2 per ratio."""

    ratios: tuple[float, ...]
    alphas: np.ndarray
    variance: dict[str, np.ndarray]
    optimum: dict[str, list[tuple[float, float, str | None]]]
    at_rule: dict[str, np.ndarray]
    median: np.ndarray
    mean: np.ndarray


def _noise(ratio: float) -> tuple[str, dict[str, float]]:
    return ("laplace", {"b": 1.0}) if ratio == 0.0 else ("gaussian+laplace", {"sigma": ratio, "b": 1.0})


def variance_curves(ratios: Sequence[float], alphas: Sequence[float] | None = None) -> VarianceCurves:
    """V(α)/b² for Huber and D_{α,β} under Gaussian(σ) + Laplace(b) noise, one row per σ/b in ``ratios`` (≥ 0;
    0 is pure Laplace), over α/b in ``alphas`` (default 41 points, 10⁻² … 10², log-spaced), with each loss's
    optimum searched over the same α range (:func:`labkit.theory.optimal_alpha`) and V at the paper's α = b.
    Cost: about 25 ms per V under the mix (quadrature) and 1–2 s per optimum: keep ``ratios`` short for CI."""
    ratios = tuple(float(r) for r in ratios)
    if not ratios or any(not math.isfinite(r) or r < 0.0 for r in ratios):
        raise ValueError(f"ratios must be a non-empty sequence of finite numbers >= 0, got ratios={ratios!r}")
    a = np.geomspace(1e-2, 1e2, 41) if alphas is None else np.asarray(alphas, dtype=float)
    if a.ndim != 1 or len(a) < 2 or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(np.diff(a) <= 0):
        raise ValueError(f"alphas must be at least two increasing numbers > 0, got alphas={alphas!r}")
    bounds = (float(a[0]), float(a[-1]))
    variance = {loss: np.empty((len(ratios), len(a))) for loss in CURVE_LOSSES}
    optimum: dict[str, list[tuple[float, float, str | None]]] = {loss: [] for loss in CURVE_LOSSES}
    at_rule = {loss: np.empty(len(ratios)) for loss in CURVE_LOSSES}
    median, mean = np.empty(len(ratios)), np.empty(len(ratios))
    for i, ratio in enumerate(ratios):
        noise, params = _noise(ratio)
        median[i] = asymptotic_variance("l1", None, noise, **params)
        mean[i] = asymptotic_variance("l2", None, noise, **params)
        for loss in CURVE_LOSSES:
            variance[loss][i] = [asymptotic_variance(loss, float(x), noise, **params) for x in a]
            at_rule[loss][i] = asymptotic_variance(loss, 1.0, noise, **params)
            try:
                best, side = optimal_alpha(loss, noise, bounds=bounds, **params), None
            except OptimumAtBoundary as end:
                best, side = end.alpha, end.side
            optimum[loss].append((float(best), float(asymptotic_variance(loss, best, noise, **params)), side))
    return VarianceCurves(ratios, a, variance, optimum, at_rule, median, mean)
