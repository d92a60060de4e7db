"""Feedback for the exercises of notebook 08: predict, then run the check cell.

The values come from the library — :func:`labkit.losses.laplace_kl_best_scale`, the presets' scales
(:func:`labkit.interpret.uncertainty_scales`) and Laplace coverage (:func:`labkit.interpret.calculator.within`) —
never typed in (:class:`labkit.feedback.Feedback`; ``None`` asks for a prediction and reveals nothing).
"""
from __future__ import annotations

from labkit.feedback import Feedback, number
from labkit.interpret import PRESETS, uncertainty_scales
from labkit.interpret.calculator import within
from labkit.losses import laplace_kl_best_scale

__all__ = ["kl_scale_floor", "fixed_scale_coverage"]


def kl_scale_floor(answer, label_scale: float = 0.1) -> Feedback:
    """Notebook 08: the scale b₂ eq. 18's KL pushes a head to for a box it predicts exactly (x = 0), label scale
    ``label_scale`` (the Implemented stage's, σ-scaled: 0.1)."""
    best = float(laplace_kl_best_scale(0.0, label_scale))
    off = float(laplace_kl_best_scale(2 * label_scale, label_scale))
    return number(answer, best, 0.02, floor=1e-4, explain=
                  f"Setting the derivative of eq. 63 in $b_2$ to zero gives $b_2^* = |x| + b_1 e^{{-|x|/b_1}}$: at "
                  f"$x = 0$ that is $b_1 = {best:g}$ itself, and at $x = 2b_1$ it is {off:.3g}. $b_2^*$ never falls "
                  "below the label scale: a head trained with the KL can say 'this box is as uncertain as the "
                  "labels', never 'surer than the labels'. The NLL ($b_1 \\to 0$) has $b_2^* = |x|$ and can.")


def fixed_scale_coverage(answer, preset: str = "implemented", error_scale: float = 0.03) -> Feedback:
    """Notebook 08: the share of clean boxes inside ±1 fixed prediction scale (the ``preset``'s detection stage,
    x coordinate, in box sizes) when the detector's real errors are Laplace of scale ``error_scale`` box sizes."""
    stage = PRESETS[preset].detection
    _, prediction = uncertainty_scales(stage.lam, stage.alpha, stage.sigma_x, form=PRESETS[preset].form)
    share = float(within(float(prediction), error_scale))
    nominal = float(within(1.0, 1.0))
    return number(answer, share, 0.02, floor=0.005, explain=
                  f"The fixed reading of {preset}'s detection stage predicts Laplace scale "
                  f"$\\sigma/(\\lambda\\alpha) = {float(prediction):g}$ box; with errors of scale {error_scale:g}, "
                  f"$P(|e| \\le {float(prediction):g}) = 1 - e^{{-{float(prediction):g}/{error_scale:g}}} = "
                  f"{share:.3f}$, against {nominal:.3f} ($1 - e^{{-1}}$) for a calibrated Laplace. The fixed scale "
                  f"is {float(prediction) / error_scale:.1f}× too wide for a good detector's own errors: its PIT "
                  "piles up in the middle bins and its reliability curve is S-shaped.")

