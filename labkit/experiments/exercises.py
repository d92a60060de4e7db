"""Feedback for the exercises of notebooks 05 and 06: predict, then run the check cell.

The values come from the library — the losses of Table 4, :func:`labkit.stats.mean_ci`, the noise study's own
grid (:func:`labkit.experiments.designs.build_experiment`) and Laplace label noise — never typed in
(:class:`labkit.feedback.Feedback`; ``None`` asks for a prediction and reveals nothing).
"""
from __future__ import annotations

import math

import numpy as np

from labkit.experiments.analysis import matched_label_scale
from labkit.experiments.designs import build_experiment
from labkit.experiments.display import noise_text
from labkit.feedback import Feedback, number
from labkit.interpret.calculator import within
from labkit.losses import huber, laplace_kl_loss
from labkit.stats import mean_ci

__all__ = ["matched_alpha", "noisy_fraction", "seeds_needed", "upper_bound_gap"]


def upper_bound_gap(answer, alpha: float = 1.0) -> Feedback:
    """Notebook 05, Table 4: the |x| where D_{α/2,1/α} − H_α is largest (α = 1)."""
    x = np.linspace(0.0, 5.0 * alpha, 500_001)
    gap = laplace_kl_loss(x, alpha / 2, 1 / alpha) - huber(x, alpha)
    at = float(x[np.argmax(gap)])
    return number(answer, at, 0.03,
                  f"The gap peaks at $|x| \\approx {at:.3g}\\,\\alpha$, where it is {gap.max() / alpha**2:.3g}"
                  f"$\\,\\alpha^2$; at 0 both are 0, and far out both are $\\alpha|x| - \\alpha^2/2$, so the gap "
                  f"dies away (it is {gap[-1] / alpha**2:.1g}$\\,\\alpha^2$ at $|x| = 5\\alpha$). Table 4's swap "
                  "changes the loss only for residuals near the kink of $H_\\alpha$: a small difference to expect "
                  "in AP.")


def seeds_needed(answer, spread: float = 1.0, target: float = 0.5) -> Feedback:
    """Notebook 05: the fewest seeds whose 95 % Student-t interval of an arm's mean AP has half-width ≤ 0.5 point,
    when AP varies by a standard deviation of 1 point from seed to seed."""
    def half_width(n: int) -> float:
        values = np.arange(n, dtype=float)
        values *= spread / values.std(ddof=1)  # n runs whose sample standard deviation is `spread`
        return mean_ci(values).half_width

    n = next(n for n in range(2, 10_000) if half_width(n) <= target)
    return number(answer, n, 0.0, floor=0.5, explain=
                  f"The half-width is $t_{{0.975,\\,n-1}}\\,s/\\sqrt{{n}}$: with $s = {spread:g}$ it is "
                  f"{half_width(3):.2f} at 3 seeds, {half_width(10):.2f} at 10 and {half_width(n):.3f} at {n}. "
                  "The paper's gaps between arms are a fraction of a point, one run each: telling them apart takes "
                  "tens of seeds per arm.")


def matched_alpha(answer, label_noise: float = 0.1, scale: str = "lab") -> Feedback:
    """Notebook 06: the α of the arm eq. 42 matches to b₁ = 1/10 (the noise study's grid at ``scale``)."""
    arms = [a for a in build_experiment("noise-study", scale).arms if math.isclose(a.label_noise, label_noise)]
    scales = sorted(float(a.label_scale) for a in arms)
    matched = matched_label_scale(label_noise, scales)
    arm = next(a for a in arms if math.isclose(float(a.label_scale), matched))
    settings = arm.box_losses.rpn.settings
    return number(answer, float(settings.alpha), 0.02,
                  "Eq. 42's label scale is $\\alpha\\sigma$. The swept scale nearest "
                  f"$b_1 = {noise_text(label_noise)}$ is "
                  f"$\\alpha\\sigma = {arm.label_scale}$, and the grid keeps $\\sigma = {settings.sigma_x}$ (and "
                  f"$\\lambda$) fixed, so $\\alpha = {settings.alpha}$: arm \"{arm.label}\".")


def noisy_fraction(answer, label_noise: float = 0.2, times: float = 2.0, samples: int = 200_000) -> Feedback:
    """Notebook 06: the fraction of training boxes whose centre the injected Laplace noise (scale b₁ = 1/5 of the
    box's size) moves by more than 2·b₁."""
    exact = float(1.0 - within(times * label_noise, label_noise))
    drawn = np.random.default_rng(0).laplace(0.0, label_noise, samples)
    seen = float(np.mean(np.abs(drawn) > times * label_noise))
    return number(answer, exact, 0.05, floor=0.005, explain=
                  f"For Laplace noise of scale $b$, $P(|e| > d) = e^{{-d/b}}$ (eq. 16), so $d = {times:g}b$ leaves "
                  f"$e^{{-{times:g}}} = {exact:.3f}$ — at $b_1 = {noise_text(label_noise)}$ about one box in "
                  f"{1 / exact:.0f} has its centre off by more than {times * label_noise:.0%} of its size "
                  f"({seen:.3f} of {samples:,} draws); the mean error is $b_1$ itself.")
