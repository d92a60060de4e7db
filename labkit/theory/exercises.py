"""Feedback for notebook 07's exercises (does α track the label noise?): predict, then run the check cell.

The values come from :func:`labkit.theory.asymptotic_variance` and :func:`labkit.theory.optimal_alpha`, never
typed in (:class:`labkit.feedback.Feedback`; ``None`` asks for a prediction and reveals nothing).
"""
from __future__ import annotations

from labkit.feedback import Feedback, number
from labkit.theory.variance import asymptotic_variance, optimal_alpha

__all__ = ["rule_cost_under_laplace", "optimum_under_mix"]


def rule_cost_under_laplace(answer, b: float = 1.0) -> Feedback:
    """Notebook 07: under pure Laplace noise of scale b, V of Huber at the paper's α = b over V at the best α
    (the limit α → 0, the median)."""
    at_rule = asymptotic_variance("huber", b, "laplace", b=b)
    best = asymptotic_variance("l1", None, "laplace", b=b)
    ratio = at_rule / best
    return number(answer, ratio, 0.03,
                  f"With $k = \\alpha/b = 1$, $V = b^2(2 - 2(k+1)e^{{-k}})/(1 - e^{{-k}})^2 = {at_rule / b**2:.4g}"
                  f"\\,b^2$, while the median reaches $V = 1/(4f(0)^2) = b^2$ (the Laplace MLE, $\\alpha \\to 0$): "
                  f"the paper's rule costs a factor {ratio:.3g} in variance, as if {100 * (1 - 1 / ratio):.0f} % of "
                  "the data were thrown away. Every $\\alpha > 0$ is worse than the median here: under pure "
                  "Laplace noise $V$ increases in $\\alpha$, so the theory's best $\\alpha$ is the smallest.")


def optimum_under_mix(answer, ratio: float = 0.3) -> Feedback:
    """Notebook 07: the Huber α (in units of b) that minimises V under Gaussian(σ) + Laplace(b) noise with
    σ/b = ``ratio``."""
    best = optimal_alpha("huber", "gaussian+laplace", sigma=ratio, b=1.0)
    return number(answer, best, 0.15,
                  f"Under $\\varepsilon = \\mathrm{{N}}(0, \\sigma^2) + \\mathrm{{Laplace}}(b)$ with $\\sigma/b = "
                  f"{ratio:g}$ the best Huber transition is $\\alpha^* \\approx {best:.3g}\\,b$ — set by the "
                  "Gaussian part, which makes the density smooth at 0 (the median loses its edge there), not by "
                  "$b$: the optimum grows with $\\sigma$ and stays below $b$ while $\\sigma$ is small against $b$.")
