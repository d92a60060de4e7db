"""The theory the paper's rule "α·σ = label-noise scale" is tested against: the asymptotic variance of M-estimates
under label noise, the α that minimises it, and Monte Carlo of the same estimates at finite n and p/n.

Symbols and arguments:

=========================  ======================================================================================
theory / paper             here
=========================  ======================================================================================
ρ, ψ = ρ′                  ``loss``: "huber" (H_α, eq. 5), "laplace_kl" (D_{α,β}, eq. 19; ψ eq. 21), "l1", "l2"
α                          ``alpha``: Huber's transition; for D the label-noise scale b₁ (Section 4.1)
β (D_{α,β})                not an argument: it scales ψ and ψ′ alike and cancels from V
ε (eq. 6; ε₁ of eq. 12)    ``noise``: "laplace" (``b``), "gaussian" (``sigma``), "gaussian+laplace" (``sigma``,
                           ``b``), "contaminated" (``sigma``, ``eps``, ``outlier_scale``)
V = E[ψ²]/E[ψ′]²           :func:`asymptotic_variance` (Huber 1964; Huber 1981, Section 3.2)
n, p                       observations and features of the linear model y = Xθ + ε (:func:`simulate_regression`)
=========================  ======================================================================================

- :mod:`.noise` — the four error laws: density, its derivative, variance, sampler;
- :mod:`.variance` — ψ, (E[ψ²], E[ψ′]) in closed form or by quadrature, V, the optimal α;
- :mod:`.curves` — V(α) of Huber and D over a grid of Gaussian + Laplace mixes, with the optima (notebook 07);
- :mod:`.simulation` — Monte Carlo of location and linear-regression M-estimates (Bean, Bickel, El Karoui and Yu,
  PNAS 2013: at p/n > 0 the best loss is no longer the one the asymptotics pick).

NumPy and SciPy only: no torch, no SymPy (the closed forms' derivations are :mod:`labkit.symbolic.mestimation`).
"""
from labkit.theory.curves import VarianceCurves, variance_curves
from labkit.theory.noise import NOISES
from labkit.theory.simulation import simulate_location, simulate_regression
from labkit.theory.variance import (CLOSED_FORMS, LOSSES, OptimumAtBoundary, asymptotic_variance, optimal_alpha,
                                    psi, psi_moments)

__all__ = ["NOISES", "LOSSES", "CLOSED_FORMS", "OptimumAtBoundary", "asymptotic_variance", "optimal_alpha", "psi",
           "psi_moments", "simulate_location", "simulate_regression", "VarianceCurves", "variance_curves"]
