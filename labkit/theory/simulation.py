"""Monte Carlo of M-estimates at finite n, to hold :func:`labkit.theory.asymptotic_variance` against, and to show
where it stops holding: in a linear model with p/n = κ > 0 (a box head fitting hundreds of weights from a few
thousand RoIs) the error of an M-estimate exceeds V/n by a factor that depends on the loss, so the best α moves
(Huber 1973; El Karoui, Bean, Bickel, Lim and Yu, PNAS 2013; Bean, Bickel, El Karoui and Yu, PNAS 2013).

Both simulations take the true parameter θ* = 0 (M-estimates are equivariant, so this loses nothing) and return a
:class:`labkit.stats.Summary` over the ``reps`` replications of the squared error per coefficient, ‖θ̂‖²/p, with
its Student-t interval: n·mean → V as n → ∞ with p fixed.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from scipy import optimize

from labkit.stats import Summary, mean_ci
from labkit.theory import noise as _noise
from labkit.theory.variance import check_loss, psi

__all__ = ["simulate_location", "simulate_regression"]

_CHUNK_ELEMENTS = 2_000_000  # design-matrix entries held at once


def _count(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {name}={value!r}")
    return int(value)


def _seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
        raise ValueError(f"seed must be an integer (or numpy SeedSequence), got seed={seed!r}")
    return np.random.default_rng(seed)


def _location(loss: str, alpha, x: np.ndarray) -> np.ndarray:
    """The M-estimate argmin_t Σ ρ(xᵢ − t) of each row of ``x`` (bisection on Σψ(xᵢ − t), which decreases in t)."""
    if loss == "l1":
        return np.median(x, axis=1)
    if loss == "l2":
        return x.mean(axis=1)
    lo, hi = x.min(axis=1), x.max(axis=1)
    for _ in range(60):  # the bracket shrinks 2⁻⁶⁰-fold: below float resolution
        mid = 0.5 * (lo + hi)
        above = psi(loss, x - mid[:, None], alpha).sum(axis=1) > 0  # root lies above mid
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def simulate_location(loss: str, alpha, noise: str, *, n: int, reps: int, seed, **params) -> Summary:
    """Squared error θ̂² of the location M-estimate over ``reps`` samples of size ``n`` (yᵢ = εᵢ); n·mean → V."""
    check_loss(loss, alpha)
    p = _noise.check_noise(noise, params)
    n, reps = _count("n", n, 1), _count("reps", reps, 1)
    rng, chunk = _seed(seed), max(1, _CHUNK_ELEMENTS // n)
    estimates = [_location(loss, alpha, _noise.sample(noise, p, (min(chunk, reps - start), n), rng))
                 for start in range(0, reps, chunk)]
    return mean_ci(np.concatenate(estimates) ** 2)


def _rho_psi_curvature(loss: str, alpha: float, r: np.ndarray, newton: bool):
    """ρ(r), ψ(r) and the weight whose X'WX scales the step: ψ′(r) (Newton) or ψ(r)/r (IRLS, its r → 0 limit at 0)."""
    u = np.abs(r) / alpha
    if loss == "huber":
        rho = np.where(u <= 1.0, 0.5 * r * r, alpha * (np.abs(r) - 0.5 * alpha))
        return rho, np.clip(r, -alpha, alpha), (u <= 1.0) * 1.0 if newton else 1.0 / np.maximum(u, 1.0)
    rho, em = alpha * (u + np.expm1(-u)), -np.expm1(-u)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.exp(-u) / alpha if newton else np.where(u > 1e-8, em / u, 1.0 - 0.5 * u) / alpha
    return rho, np.sign(r) * em, weight


def _fit(loss: str, alpha: float, X: np.ndarray, y: np.ndarray, tol: float, max_iter: int):
    """argmin_θ Σ ρ(y − Xθ) for a batch X (c, n, p), y (c, n), from the least-squares fit; returns (θ̂, converged).

    Damped Newton (Hessian X'diag(ψ′)X, Armijo backtracking on Σρ). For Huber with at most 1.25p residuals in the
    quadratic zone that Hessian is (near) singular, and the IRLS matrix X'diag(ψ(r)/r)X is used instead: its full
    step never increases Σρ (ψ(r)/r is non-increasing in |r|; Huber 1981, Ch. 7) but it converges slowly. A
    replication stops when its step is below ``tol``."""
    Xt = np.swapaxes(X, 1, 2)
    theta = np.linalg.solve(Xt @ X, Xt @ y[..., None])[..., 0]
    done = np.full(len(y), loss == "l2")
    p = X.shape[2]
    for _ in range(0 if loss == "l2" else max_iter):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        Xa, Xta, ya, th = X[idx], Xt[idx], y[idx], theta[idx]
        r = ya - (Xa @ th[..., None])[..., 0]
        rho, psi_r, w = _rho_psi_curvature(loss, alpha, r, True)
        if loss == "huber":
            irls = (np.abs(r) <= alpha).sum(axis=1) <= p + p // 4
            w = np.where(irls[:, None], _rho_psi_curvature(loss, alpha, r, False)[2], w)
        grad = (Xta @ psi_r[..., None])[..., 0]  # −∇Σρ
        step = np.linalg.solve((Xta * w[:, None, :]) @ Xa, grad[..., None])[..., 0]
        f0, slope, t = rho.sum(axis=1), np.sum(grad * step, axis=1), np.ones(idx.size)
        Xd = (Xa @ step[..., None])[..., 0]
        slack = 1e-12 * np.abs(f0)  # Σρ's rounding: near the minimum a full Newton step may not show a decrease
        for _ in range(30):  # Armijo: halve t where Σρ has not dropped by 10⁻⁴·t·slope
            bad = _rho_psi_curvature(loss, alpha, r - t[:, None] * Xd, True)[0].sum(axis=1) > \
                f0 - 1e-4 * t * slope + slack
            if not bad.any():
                break
            t = np.where(bad, 0.5 * t, t)
        theta[idx] = th + t[:, None] * step
        done[idx] = np.max(np.abs(step), axis=1) <= tol
    return theta, done


def _lad(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The least-absolute-deviations fit, exactly: the LP dual max yᵀd s.t. Xᵀd = 0, −1 ≤ d ≤ 1 (HiGHS); θ̂ is
    minus the multipliers of the equality constraints."""
    out = np.empty((len(y), X.shape[2]))
    for i in range(len(y)):
        res = optimize.linprog(-y[i], A_eq=X[i].T, b_eq=np.zeros(X.shape[2]), bounds=(-1.0, 1.0), method="highs")
        if res.status != 0:
            raise RuntimeError(f"the LAD linear program failed: {res.message}")
        out[i] = -res.eqlin.marginals
    return out


def simulate_regression(loss: str, alpha, noise: str, *, n: int, p: int, reps: int, seed, tol: float = 1e-6,
                        max_iter: int = 500, **params) -> Summary:
    """Squared estimation error per coefficient ‖θ̂ − θ*‖²/p of the linear M-estimate
    θ̂ = argmin_θ Σᵢ ρ(yᵢ − xᵢᵀθ), yᵢ = xᵢᵀθ* + εᵢ with xᵢ ~ N(0, I_p), over ``reps`` replications.

    As n/p → ∞, n·mean → V = :func:`~labkit.theory.asymptotic_variance` (E[xxᵀ] = I); at p/n = κ > 0 it is larger
    (for L2 and Gaussian design exactly Var(ε)·n/(n − p − 1)), by a loss-dependent factor, which moves the best α
    (Bean, Bickel, El Karoui, Yu 2013). Solved by damped Newton / IRLS, vectorised over replications (see
    ``_fit``); ``tol`` (× sd/√n, sd the noise's standard deviation) is the step at which it stops, ``max_iter``
    its cap (a ``RuntimeWarning`` if reached); "l1" is solved exactly as a linear program per replication. Cost
    ~ reps·n·p² per iteration, a handful of iterations except for Huber with α far below sd (few residuals in
    the quadratic zone: IRLS steps, slow): keep p ≤ 100, n ≤ 2000, reps ≤ 200 for interactive use.
    """
    a = check_loss(loss, alpha)
    q = _noise.check_noise(noise, params)
    n, p, reps = _count("n", n, 2), _count("p", p, 1), _count("reps", reps, 1)
    if p >= n:
        raise ValueError(f"p must be < n (the M-estimate is not unique otherwise), got n={n}, p={p}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1), got tol={tol!r}")
    max_iter = _count("max_iter", max_iter, 1)
    rng = _seed(seed)
    sd = _noise.noise_std(noise, q)
    chunk = max(1, _CHUNK_ELEMENTS // (n * p))
    errors, unconverged = [], 0
    for start in range(0, reps, chunk):
        c = min(chunk, reps - start)
        X = rng.standard_normal((c, n, p))
        y = _noise.sample(noise, q, (c, n), rng)
        theta, ok = (_lad(X, y), True) if loss == "l1" else _fit(loss, a, X, y, tol * sd / math.sqrt(n), max_iter)
        unconverged += int(np.sum(~np.asarray(ok)))
        errors.append(np.sum(theta**2, axis=1) / p)
    if unconverged:
        warnings.warn(f"the fit did not converge within max_iter={max_iter} for {unconverged} of {reps} replications"
                      + (" (Huber with alpha far below the noise scale: few residuals in the quadratic zone; "
                         "use loss='l1' for the alpha -> 0 limit)" if loss == "huber" else ""),
                      RuntimeWarning, stacklevel=2)
    return mean_ci(np.concatenate(errors))
