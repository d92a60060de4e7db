"""What the head study's numbers say: the best label scale per noise level with a paired bootstrap interval, the
slope of its logarithm against log b₁, and the two predictions it is held against.

Endpoint: the clean validation error of a fitted regressor, mean over validation RoIs and the four coordinates of
|Δ|/w (``rois.box_errors``). For one condition the errors form a matrix E[seed, label scale]; a seed is one noise
draw (and, in setting (b), one initialisation) shared by every label scale, and — common random numbers — the same
standard noise at every b₁, so seeds are resampled whole, across label scales and noise levels at once.

- :func:`argmin_scale`: the grid point with the least mean error, refined by the vertex of the parabola through it
  and its two neighbours in log α·σ (kept between them); at an end of the grid it is that end, flagged;
- :func:`bootstrap_argmin`, :func:`bootstrap_slope`: percentile intervals over ``n_boot`` resamples of the seeds;
  the slope is the least-squares slope of log argmin against log b₁ over the b₁ > 0 conditions: 1 if the best
  α·σ is proportional to b₁ as eq. 42 reads it, 0 if it does not move;
- :func:`paper_band`: eq. 42 with the bounds of eq. 27 — H_α lies between D_{α,1/α} and D_{α/2,1/α}, whose label
  scales are α·σ and α·σ/2, so label noise b₁ asks for α·σ ∈ [b₁, 2b₁];
- :func:`fit_gaussian_laplace` and :func:`theory_optimum`: the clean model's own residuals fitted by the sum of a
  Gaussian and a Laplace error (maximum likelihood), the injected noise added, and the α that minimises the
  asymptotic variance of the Huber M-estimate under that error (``labkit.theory.optimal_alpha``).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
from scipy import optimize

from labkit.experiments.headstudy.design import GAUSSIAN, LAPLACE, Condition
from labkit.theory import OptimumAtBoundary, optimal_alpha
from labkit.theory import noise as theory_noise

__all__ = ["argmin_scale", "bootstrap_argmin", "bootstrap_slope", "paper_band", "fit_gaussian_laplace",
           "theory_optimum", "THEORY_BOUNDS"]

#: α range (box units) searched for the theory's optimum: beyond the grid on both sides
THEORY_BOUNDS = (1e-3, 2.0)


def _grid(label_scales: Sequence[float]) -> np.ndarray:
    u = np.log(np.asarray(label_scales, np.float64))
    if u.ndim != 1 or len(u) < 2 or not np.all(np.diff(u) > 0):
        raise ValueError(f"label_scales must be >= 2 increasing positive numbers, got {list(label_scales)}")
    return u


def _argmin_log(u: np.ndarray, mean: np.ndarray) -> tuple[float, int]:
    """(log argmin, grid index) of a mean-error curve over log label scales ``u`` (see the module docstring)."""
    i = int(np.argmin(mean))
    if i in (0, len(u) - 1):
        return float(u[i]), i
    (x0, x1, x2), (y0, y1, y2) = u[i - 1:i + 2], mean[i - 1:i + 2]
    denominator = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denominator
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denominator
    vertex = -b / (2 * a) if a > 0 else x1
    return float(np.clip(vertex, x0, x2)), i


def argmin_scale(label_scales: Sequence[float], mean_errors: Sequence[float]) -> dict[str, Any]:
    """The best label scale of one mean-error curve: ``{"label_scale", "grid_index", "at_edge"}``."""
    u = _grid(label_scales)
    mean = np.asarray(mean_errors, np.float64)
    if mean.shape != u.shape or not np.all(np.isfinite(mean)):
        raise ValueError(f"mean_errors must be {len(u)} finite numbers, one per label scale, got {mean.tolist()}")
    log_best, i = _argmin_log(u, mean)
    return {"label_scale": math.exp(log_best), "grid_index": i, "at_edge": i in (0, len(u) - 1)}


def _check_errors(errors: np.ndarray, n_scales: int) -> np.ndarray:
    errors = np.asarray(errors, np.float64)
    if errors.ndim != 2 or errors.shape[1] != n_scales or len(errors) < 2 or not np.all(np.isfinite(errors)):
        raise ValueError(f"errors must be a finite [seeds >= 2, {n_scales}] matrix (one row per seed, one column "
                         f"per label scale), got shape {errors.shape}")
    return errors


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 50 * (1 - confidence)
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_argmin(label_scales: Sequence[float], errors: np.ndarray, n_boot: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict[str, Any]:
    """The argmin of the seed-mean of ``errors`` [seeds, label scales] with its paired percentile bootstrap
    interval (seeds resampled whole): ``label_scale``, ``low``, ``high``, the bootstrap ``quartiles``, and the
    fractions of resamples whose argmin is at the grid's lower or upper end."""
    u = _grid(label_scales)
    errors = _check_errors(errors, len(u))
    if not (isinstance(n_boot, int) and n_boot >= 10):
        raise ValueError(f"n_boot must be an int >= 10, got n_boot={n_boot!r}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(errors), (n_boot, len(errors)))
    picks = [_argmin_log(u, errors[d].mean(0)) for d in draws]
    logs = np.array([p[0] for p in picks])
    edges = np.array([p[1] for p in picks])
    low, high = _percentiles(logs, confidence)
    point = argmin_scale(label_scales, errors.mean(0))
    return {**point, "low": math.exp(low), "high": math.exp(high), "confidence": confidence, "n_seeds": len(errors),
            "quartiles": [math.exp(q) for q in np.percentile(logs, [25, 50, 75])],
            "at_lower_edge": float(np.mean(edges == 0)), "at_upper_edge": float(np.mean(edges == len(u) - 1))}


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / (xc @ xc))


def bootstrap_slope(noise_levels: Sequence[float], label_scales: Sequence[float], errors: np.ndarray,
                    n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """The least-squares slope of log argmin α·σ against log b₁ over ``noise_levels`` (b₁ > 0, at least two),
    ``errors`` [levels, seeds, label scales] with the same seeds at every level; a paired percentile bootstrap
    interval (one resample of seeds used at every level). ``censored``: fraction of resamples with some argmin at
    an end of the grid (the slope is then a bound, not an estimate)."""
    b = np.asarray(noise_levels, np.float64)
    u = _grid(label_scales)
    errors = np.asarray(errors, np.float64)
    if b.ndim != 1 or len(b) < 2 or np.any(b <= 0) or len(set(b.tolist())) < len(b):
        raise ValueError(f"noise_levels must be >= 2 distinct numbers > 0, got {list(noise_levels)}")
    if errors.ndim != 3 or errors.shape[0] != len(b):
        raise ValueError(f"errors must be [levels = {len(b)}, seeds, label scales], got shape {errors.shape}")
    for e in errors:
        _check_errors(e, len(u))
    log_b = np.log(b)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, errors.shape[1], (n_boot, errors.shape[1]))
    slopes, censored = np.empty(n_boot), np.zeros(n_boot, bool)
    for k, d in enumerate(draws):
        picks = [_argmin_log(u, e[d].mean(0)) for e in errors]
        slopes[k] = _slope(log_b, np.array([p[0] for p in picks]))
        censored[k] = any(p[1] in (0, len(u) - 1) for p in picks)
    point = [_argmin_log(u, e.mean(0)) for e in errors]
    low, high = _percentiles(slopes, confidence)
    return {"slope": _slope(log_b, np.array([p[0] for p in point])), "low": low, "high": high,
            "confidence": confidence, "n_seeds": errors.shape[1], "noise_levels": b.tolist(),
            "censored": float(censored.mean()), "quartiles": np.percentile(slopes, [25, 50, 75]).tolist()}


def paper_band(label_noise: float) -> tuple[float, float]:
    """The label scales α·σ that eqs. 27 and 42 match to label noise b₁: [b₁, 2b₁] (module docstring)."""
    if not (math.isfinite(label_noise) and label_noise >= 0):
        raise ValueError(f"label_noise must be a finite number >= 0, got label_noise={label_noise!r}")
    return float(label_noise), 2.0 * float(label_noise)


def fit_gaussian_laplace(residuals: np.ndarray) -> dict[str, float]:
    """Maximum-likelihood (σ, b) of the sum of independent N(0, σ²) and Laplace(0, b) errors for ``residuals``
    (signed, box units; density ``labkit.theory`` "gaussian+laplace"), with the log-likelihood per residual."""
    r = np.asarray(residuals, np.float64).ravel()
    if len(r) < 10 or not np.all(np.isfinite(r)):
        raise ValueError(f"residuals must be >= 10 finite numbers, got {len(r)}")
    spread = float(np.std(r)) or 1e-6

    def nll(log_params: np.ndarray) -> float:
        sigma, b = np.exp(log_params)
        density = theory_noise.pdf("gaussian+laplace", r, {"sigma": sigma, "b": b})
        return -float(np.mean(np.log(np.maximum(density, 1e-300))))

    starts = [np.log([spread / 2, spread / 4]), np.log([spread / 4, spread / 2]), np.log([spread, spread / 20])]
    best = min((optimize.minimize(nll, s, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
                for s in starts), key=lambda res: res.fun)
    sigma, b = np.exp(best.x)
    return {"sigma": float(sigma), "b": float(b), "loglik_per_residual": float(-best.fun), "n": len(r)}


def theory_optimum(condition: Condition, sigma: float, b: float) -> dict[str, Any]:
    """The theory's best α·σ for the clean residual fit (``sigma``, ``b``) plus the injected noise of
    ``condition``: Laplace b₁ joins the Laplace part with b = √(b² + b₁²) (the sum of two Laplace errors is not
    Laplace; this keeps its variance — an approximation), Gaussian noise of variance 2b₁² joins the Gaussian part
    exactly. Outliers have no G + L form: no prediction. Returns ``{"label_scale", "boundary", "note"}``;
    ``boundary`` names the end of :data:`THEORY_BOUNDS` when the optimum is a limit."""
    if condition.kind == LAPLACE:
        params = {"sigma": sigma, "b": math.hypot(b, condition.scale)}
    elif condition.kind == GAUSSIAN:
        params = {"sigma": math.sqrt(sigma**2 + 2 * condition.scale**2), "b": b}
    else:
        return {"label_scale": None, "boundary": None, "note": "no Gaussian + Laplace form for outliers"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            best = optimal_alpha("huber", "gaussian+laplace", bounds=THEORY_BOUNDS, **params)
        return {"label_scale": best, "boundary": None, "note": "", **params}
    except OptimumAtBoundary as exc:
        return {"label_scale": exc.alpha, "boundary": exc.side, "note": str(exc), **params}
    except (ArithmeticError, ValueError, RuntimeError, Warning) as exc:  # labkit.theory's quadrature failing
        return {"label_scale": None, "boundary": None, "note": f"labkit.theory failed: {exc!r}", **params}
