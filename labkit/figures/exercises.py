"""Feedback for notebook 01's exercises: predict what a figure will show, then move its slider and run the check.

Each check compares the reader's number with the value computed here from :mod:`labkit.losses` and
:mod:`labkit.densities` on the figures' own windows (never typed in) and says why in one sentence
(:class:`labkit.feedback.Feedback`; ``None`` asks for a prediction and reveals nothing).
"""
from __future__ import annotations

import numpy as np

from labkit.densities import huber_density, normal_pdf
from labkit.feedback import Feedback, number
from labkit.figures.panels import FIGURE4_X_MAX, N_POINTS, format_value
from labkit.losses import huber, l2_loss, laplace_kl_loss, laplace_kl_loss_grad

__all__ = ["far_gap", "huber_peak", "quadratic_window", "saturation"]


def quadratic_window(answer) -> Feedback:
    """The smallest α for which H_α is ½x² on the whole of Figure 4's window [−3, 3] (bisection on α)."""
    x = np.linspace(-FIGURE4_X_MAX, FIGURE4_X_MAX, N_POINTS)
    lo, hi = 1e-3, 1e3  # H_lo differs from ½x² on the window, H_hi does not
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        if np.allclose(huber(x, mid), l2_loss(x), rtol=1e-12, atol=0.0):
            hi = mid
        else:
            lo = mid
    alpha = float(hi)
    return number(answer, alpha, 0.02,
                  f"$H_\\alpha(x) = \\tfrac12 x^2$ exactly where $|x| \\le \\alpha$ (eq. 5), so the whole window "
                  f"$[-{format_value(FIGURE4_X_MAX)}, {format_value(FIGURE4_X_MAX)}]$ is quadratic once $\\alpha$ "
                  f"reaches {alpha:.3g}: the lines at $|x| = \\alpha$ leave the window and the loss is $L_2$'s. "
                  "Below that the ends are lines of slope $\\pm\\alpha$, like $L_1$ scaled by $\\alpha$.")


def far_gap(answer, alpha: float = 0.5, x: float = FIGURE4_X_MAX) -> Feedback:
    """H_α(x) − D_{α,1/α}(x) at the edge of Figure 4's window (α = 0.5, x = 3)."""
    gap = float(huber(x, alpha) - laplace_kl_loss(x, alpha, 1.0 / alpha))
    return number(answer, gap, 0.03,
                  f"Far out both are lines of slope $\\alpha$: $H_\\alpha = \\alpha|x| - \\alpha^2/2$ and "
                  f"$D_{{\\alpha,1/\\alpha}} \\approx \\alpha|x| - \\alpha^2$ (eq. 23), so the gap settles at "
                  f"$\\alpha^2/2 = {alpha * alpha / 2:.4g}$; at $x = {format_value(x)}$ the exponential "
                  f"$\\alpha^2 e^{{-|x|/\\alpha}}$ still left is {alpha * alpha * np.exp(-x / alpha):.2g}.")


def saturation(answer, alpha: float = 1.0, beta: float = 0.25) -> Feedback:
    """The value D′_{α,β}(x) tends to as x grows (α = 1, β = 0.25): eq. 21 far out."""
    far = float(laplace_kl_loss_grad(1e6 * alpha, alpha, beta))
    edge = float(laplace_kl_loss_grad(FIGURE4_X_MAX, alpha, beta))
    return number(answer, far, 0.02,
                  f"By eq. 21, $D'_{{\\alpha,\\beta}}(x) = (1 - e^{{-x/\\alpha}})/\\beta$ for $x > 0$: it "
                  f"saturates at $1/\\beta = {far:.4g}$, whatever $\\alpha$ (at the window's edge it has reached "
                  f"{edge:.3g}). $\\alpha$ sets how soon it gets there, $\\beta$ only the height — and $H'_\\alpha$ "
                  f"stops at $\\alpha$, so only $\\beta = 1/\\alpha$ makes the two slopes agree far out.")


def huber_peak(answer, alpha: float = 0.01) -> Feedback:
    """The normalised Huber density's value at 0 for α = 0.01 (Figure 2)."""
    peak = float(huber_density(0.0, alpha))
    return number(answer, peak, 0.05, floor=0.0, explain=
                  f"For small $\\alpha$ almost all of $e^{{-H_\\alpha}}$ is the Laplace-like tail "
                  f"$e^{{-\\alpha|x| + \\alpha^2/2}}$, whose integral is about $2/\\alpha$; so the peak "
                  f"$1/Z(\\alpha)$ is about $\\alpha/2 = {alpha / 2:.4g}$ (exactly {peak:.4g}): a density of "
                  f"scale $1/\\alpha = {1 / alpha:.3g}$, {float(normal_pdf(0.0)) / peak:.0f} times lower than the "
                  "standard "
                  f"normal's peak {float(normal_pdf(0.0)):.2f}.")
