"""The asymptotic variance of a location M-estimate, V = E[ψ(ε)²] / E[ψ′(ε)]² (Huber 1964; Huber 1981,
Section 3.2), in closed form where one exists and by quadrature otherwise, and the α that minimises it.

ψ = ρ′ of each loss (``loss``), with ``alpha`` = α:

- ``"huber"``: ρ = H_α (eq. 5), ψ(x) = clip(x, −α, α);
- ``"laplace_kl"``: ρ = D_{α,β} (eq. 19), ψ(x) = sgn(x)(1 − e^{−|x|/α})/β (eq. 21). β scales ψ and ψ′ alike and
  cancels from V, so it is not an argument (β = 1 here); α is the label-noise scale b₁ of Section 4.1;
- ``"l1"``: ψ = sgn (the median); ``"l2"``: ψ(x) = x (the mean). ``alpha`` is ignored for these two (pass ``None``).

E[ψ′] is read as −d/dt E[ψ(ε − t)] at t = 0 = ∫ψ(x)(−f′(x))dx (integration by parts), the slope that the
estimate's linearisation needs (Huber 1981, Section 3.2); for a ψ with a derivative almost everywhere it is
∫ψ′f, and for ψ = sgn it is 2f(0) — so V(l1) = 1/(4f(0)²) and V(l2) = Var(ε).

Closed forms (``CLOSED_FORMS``), with k = α/b or α/σ, Φ the standard normal CDF, P(s, ·) the regularised lower
incomplete gamma function (``scipy.special.gammainc``) used to avoid cancellation at small k:

- Huber × Laplace(b): E[ψ²] = b²(2 − 2(k+1)e^{−k}) = b²(2P(3, k) + k²e^{−k}), E[ψ′] = 1 − e^{−k}, so
  V = b²(2 − 2(k+1)e^{−k})/(1 − e^{−k})², increasing from b² (α → 0, the median) to 2b² (α → ∞, the mean);
- Huber × N(0, σ²): E[ψ²] = σ²(2Φ(k) − 1 − 2kφ(k)) + 2α²(1 − Φ(k)) = σ²(P(3/2, k²/2) + 2k²Φ(−k)),
  E[ψ′] = 2Φ(k) − 1 (Huber 1964); contaminated normal: the same, mixed linearly over the two components;
- D × Laplace(b), r = b/α: E[ψ²] = 2r²/((1 + r)(1 + 2r)), E[ψ′] = 1/(α + b), V = 2b²(1 + r)/(1 + 2r);
- D × N(0, σ²), u = σ/(α√2), m(c) = E e^{−c|ε|} = erfcx(cσ/√2): E[ψ²] = 1 − 2m(1/α) + m(2/α),
  E[ψ′] = m(1/α)/α (the second difference is summed as a series below u = 1/2, where it would cancel);
- L1: 1/(4f(0)²); L2: Var(ε), under every noise.

Huber and D under G + L ("gaussian+laplace") are integrated numerically (``scipy.integrate.quad``).
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from scipy import integrate, optimize, special

from labkit.theory import noise as _noise

__all__ = ["LOSSES", "CLOSED_FORMS", "OptimumAtBoundary", "psi", "psi_moments", "asymptotic_variance",
           "optimal_alpha"]

LOSSES = ("huber", "laplace_kl", "l1", "l2")
#: (loss, noise) pairs with a closed form; the rest are integrated numerically
CLOSED_FORMS = frozenset({(loss, n) for loss in ("l1", "l2") for n in _noise.NOISES}
                         | {(loss, n) for loss in ("huber", "laplace_kl") for n in ("laplace", "gaussian",
                                                                                   "contaminated")})
METHODS = ("auto", "closed", "quad")
_SQRT2 = math.sqrt(2.0)


def check_loss(loss: str, alpha) -> float | None:
    """Validate ``loss`` and ``alpha``; return α as a float (None for l1/l2, where α plays no part)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got loss={loss!r}")
    if loss in ("l1", "l2"):
        return None
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(float(alpha)) \
            or float(alpha) <= 0.0:
        raise ValueError(f"alpha must be a finite real number > 0 for loss={loss!r}, got alpha={alpha!r}")
    return float(alpha)


def psi(loss: str, x, alpha=None) -> np.ndarray:
    """ψ = ρ′ of ``loss`` at ``x`` (β = 1 for ``"laplace_kl"``)."""
    a = check_loss(loss, alpha)
    x = np.asarray(x, dtype=np.float64)
    if loss == "huber":
        return np.clip(x, -a, a)
    if loss == "laplace_kl":
        return -np.sign(x) * np.expm1(-np.abs(x) / a)
    return np.sign(x) if loss == "l1" else x


# ---------------------------------------------------------------------------------------------------------------
# closed forms: (E[ψ²], E[ψ′])
# ---------------------------------------------------------------------------------------------------------------
def _huber_gaussian(a: float, s: float) -> tuple[float, float]:
    k = a / s
    return s * s * (special.gammainc(1.5, 0.5 * k * k) + k * k * special.erfc(k / _SQRT2)), special.erf(k / _SQRT2)


def _erfcx_second_difference(u: float) -> float:
    """1 − 2·erfcx(u) + erfcx(2u) = Σ_{n≥2} (2ⁿ − 2)(−u)ⁿ/Γ(n/2 + 1), summed directly below u = 1/2."""
    if u >= 0.5:
        return 1.0 - 2.0 * special.erfcx(u) + special.erfcx(2.0 * u)
    return math.fsum((2.0**n - 2.0) * (-u) ** n / math.gamma(0.5 * n + 1.0) for n in range(2, 40))


def _kl_gaussian(a: float, s: float) -> tuple[float, float]:
    u = s / (a * _SQRT2)
    return _erfcx_second_difference(u), special.erfcx(u) / a


def _mixed(component, a: float, p: dict[str, float]) -> tuple[float, float]:
    inlier, outlier = component(a, p["sigma"]), component(a, p["outlier_scale"])
    return tuple((1.0 - p["eps"]) * i + p["eps"] * o for i, o in zip(inlier, outlier))


def _closed(loss: str, a: float | None, noise: str, p: dict[str, float]) -> tuple[float, float]:
    if loss == "l2":
        return _noise.noise_variance(noise, p), 1.0
    if loss == "l1":
        return 1.0, 2.0 * _noise.density_at_zero(noise, p)
    if loss == "huber":
        if noise == "laplace":
            k = a / p["b"]
            return p["b"] ** 2 * (2.0 * special.gammainc(3.0, k) + k * k * math.exp(-k)), -math.expm1(-k)
        return _huber_gaussian(a, p["sigma"]) if noise == "gaussian" else _mixed(_huber_gaussian, a, p)
    if noise == "laplace":
        r = p["b"] / a
        return 2.0 * r * r / ((1.0 + r) * (1.0 + 2.0 * r)), 1.0 / (a + p["b"])
    return _kl_gaussian(a, p["sigma"]) if noise == "gaussian" else _mixed(_kl_gaussian, a, p)


# ---------------------------------------------------------------------------------------------------------------
# quadrature: E[ψ²] = 2∫₀^∞ ψ²f, E[ψ′] = 2∫₀^∞ ψ·(−f′)   (both integrands are even and ≥ 0)
# ---------------------------------------------------------------------------------------------------------------
def _integrate(g, points: list[float]) -> float:
    """2∫₀^∞ g, split at ``points``; each piece to 10⁻¹³ relative where quadpack can, and the summed error estimate
    must be below 10⁻¹¹ of the total (a tiny piece that stalls on roundoff is harmless, a large one is an error)."""
    edges = [0.0] + sorted({float(t) for t in points if t > 0.0}) + [math.inf]
    total, error = 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)  # judged by the error estimate below
        for lo, hi in zip(edges[:-1], edges[1:]):
            value, err = integrate.quad(g, lo, hi, epsabs=0.0, epsrel=1e-13, limit=400)
            total, error = total + value, error + err
    if not error <= 1e-11 * abs(total):
        raise ArithmeticError(f"quadrature did not converge: integral {total!r} with error estimate {error!r}")
    return 2.0 * total


def _quad(loss: str, a: float | None, noise: str, p: dict[str, float]) -> tuple[float, float]:
    points = _noise.cuts(noise, p) + ([a, 4.0 * a, 16.0 * a] if a is not None else [])
    f = lambda x: float(_noise.pdf(noise, x, p))  # noqa: E731
    minus_df = lambda x: -float(_noise.pdf_derivative(noise, x, p))  # noqa: E731
    second = _integrate(lambda x: float(psi(loss, x, a)) ** 2 * f(x), points)
    slope = _integrate(lambda x: float(psi(loss, x, a)) * minus_df(x), points)
    return second, slope


def psi_moments(loss: str, alpha, noise: str, *, method: str = "auto", **params) -> tuple[float, float]:
    """(E[ψ(ε)²], E[ψ′(ε)]) for ``loss`` with ``alpha`` under ``noise`` with its ``params`` (see
    :mod:`labkit.theory.noise`). ``method``: ``"closed"`` (``ValueError`` where no closed form exists),
    ``"quad"`` (numerical integration, for every pair) or ``"auto"`` (closed where it exists)."""
    a = check_loss(loss, alpha)
    p = _noise.check_noise(noise, params)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got method={method!r}")
    if method == "closed" and (loss, noise) not in CLOSED_FORMS:
        raise ValueError(f"no closed form for loss={loss!r} under noise={noise!r}; use method='quad' or 'auto'")
    if method == "quad" or (method == "auto" and (loss, noise) not in CLOSED_FORMS):
        return _quad(loss, a, noise, p)
    return tuple(float(v) for v in _closed(loss, a, noise, p))


def asymptotic_variance(loss: str, alpha, noise: str, *, method: str = "auto", **params) -> float:
    """V = E[ψ(ε)²]/E[ψ′(ε)]², the limit of n·Var(θ̂) for the location M-estimate θ̂ = argmin_t Σ ρ(yᵢ − t) when
    yᵢ = θ + εᵢ, εᵢ i.i.d. and symmetric (Huber 1964; Huber 1981, Section 3.2). In a linear model with features of
    second-moment matrix Σ the same V multiplies Σ⁻¹ (Huber 1973) — as n/p → ∞;
    see :func:`labkit.theory.simulate_regression` for finite p/n.

    ``loss`` ∈ ``LOSSES``; ``alpha``: α of H_α (eq. 5) or of D_{α,β} (eq. 19, the label-noise scale b₁),
    ignored for ``"l1"``/``"l2"``; ``noise`` ∈ ``NOISES`` with its parameters as keywords, e.g.
    ``asymptotic_variance("huber", 0.05, "gaussian+laplace", sigma=0.03, b=0.1)``. ``method`` as in
    :func:`psi_moments`.
    """
    second, slope = psi_moments(loss, alpha, noise, method=method, **params)
    return second / slope**2


class OptimumAtBoundary(Exception):
    """The minimum of V over the α range lies at an end of it: the optimum is a limit, not an interior α.

    ``side``: ``"lower"`` (α → 0: ψ → a multiple of sgn, the median) or ``"upper"`` (α → ∞: ψ → a multiple of x,
    the mean); ``alpha``: that end; ``variance``: V there; ``bounds``: the range searched.
    """

    def __init__(self, side: str, alpha: float, variance: float, bounds: tuple[float, float]):
        self.side, self.alpha, self.variance, self.bounds = side, alpha, variance, bounds
        limit = "the median (L1)" if side == "lower" else "the mean (L2)"
        super().__init__(f"V is smallest at the {side} end alpha={alpha:.4g} of {bounds}: the optimum is the limit "
                         f"alpha -> {'0' if side == 'lower' else 'infinity'}, {limit}")


def optimal_alpha(loss: str, noise: str, *, bounds: tuple[float, float] | None = None, at_boundary: str = "raise",
                  rtol: float = 1e-9, **params) -> float:
    """The α minimising :func:`asymptotic_variance` for ``loss`` ∈ {"huber", "laplace_kl"} under ``noise``.

    Search: V on a 49-point grid in log α over ``bounds`` (default: 10⁻³·sd … 10³·sd, sd = the noise's standard
    deviation), then bounded Brent (``scipy.optimize.minimize_scalar``) on log α between the grid neighbours of
    the best point. If V at an end of the range is within ``rtol`` (relative) of the minimum, the optimum is that
    end: ``at_boundary="raise"`` raises :class:`OptimumAtBoundary`, ``"return"`` returns that end.

    Known cases: Huber and D under pure Laplace noise have V increasing in α (Huber: b² → 2b²), so the optimum is
    α → 0, the median — the Laplace MLE; under Gaussian noise V decreases to σ², the optimum is α → ∞, the mean;
    under contaminated noise (0 < eps) or Gaussian + Laplace noise it is interior — unless it lies beyond
    ``bounds`` (e.g. σ ≪ b pushes the G + L optimum towards the median, eps → 0 the contaminated one towards the
    mean).
    """
    if loss not in ("huber", "laplace_kl"):
        raise ValueError(f"loss must be 'huber' or 'laplace_kl' (the losses with an alpha), got loss={loss!r}")
    if at_boundary not in ("raise", "return"):
        raise ValueError(f"at_boundary must be 'raise' or 'return', got at_boundary={at_boundary!r}")
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not 0.0 <= rtol < 1.0:
        raise ValueError(f"rtol must be a number in [0, 1), got rtol={rtol!r}")
    p = _noise.check_noise(noise, params)
    if bounds is None:
        sd = _noise.noise_std(noise, p)
        bounds = (1e-3 * sd, 1e3 * sd)
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be two numbers (low, high), got bounds={bounds!r}") from None
    if not (0.0 < lo < hi < math.inf):
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got bounds={bounds!r}")

    def v(log_a: float) -> float:
        return asymptotic_variance(loss, math.exp(log_a), noise, **p)

    grid = np.linspace(math.log(lo), math.log(hi), 49)
    values = np.array([v(g) for g in grid])
    i = int(np.argmin(values))
    best_x, best_v = float(grid[i]), float(values[i])
    if 0 < i < len(grid) - 1:
        res = optimize.minimize_scalar(v, bounds=(grid[i - 1], grid[i + 1]), method="bounded",
                                       options={"xatol": 1e-8})
        if res.fun < best_v:
            best_x, best_v = float(res.x), float(res.fun)
    for side, end, value in (("lower", lo, values[0]), ("upper", hi, values[-1])):
        if value <= best_v * (1.0 + rtol):
            if at_boundary == "return":
                return end
            raise OptimumAtBoundary(side, end, float(value), (lo, hi))
    return math.exp(best_x)
