"""Feedback for notebook 04's exercises: read Tables 1–2, predict a setting, then run the check.

The answers come from the presets and the mapping (:func:`labkit.interpret.table2`,
:func:`labkit.interpret.suggest_stage`), never typed in (:class:`labkit.feedback.Feedback`; ``None`` asks for a
prediction and reveals nothing).
"""
from __future__ import annotations

from fractions import Fraction

from labkit.feedback import Feedback, choice, number
from labkit.interpret.mapping import stage_scales, suggest_stage
from labkit.interpret.presets import PRESET_NAMES, PRESETS
from labkit.interpret.settings import COORDINATES, STAGES, fraction_text

__all__ = ["largest_label_noise", "loss_weight"]


def largest_label_noise(answer, coordinate: str = "w") -> Feedback:
    """Which Table 1 preset assumes the largest label noise for ``coordinate`` (in either stage): Table 2's row."""
    i = COORDINATES.index(coordinate)
    scales = {(p, s): stage_scales(PRESETS[p].stage(s), PRESETS[p].form)[0][i] for p in PRESET_NAMES for s in STAGES}
    largest = max(scales.values())
    winners = sorted({p for (p, _), v in scales.items() if v == largest})
    listed = "; ".join(f"{p} {s}: {fraction_text(v)}" for (p, s), v in scales.items())
    others = [v for (p, _), v in scales.items() if p not in winners]
    return choice(answer, winners[0], PRESET_NAMES,
                  f"Table 2's label scales for ${coordinate}$ (in anchor sizes) are {listed}. The label scale is "
                  f"$\\alpha\\sigma_{coordinate}$ (eqs. 42, 53), so {' and '.join(winners)} assumes labels off "
                  f"by about {fraction_text(largest)} anchor size(s): {float(largest / max(others)):.3g} to "
                  f"{float(largest / min(others)):.3g} times the other presets' label noise.")


def loss_weight(answer, label: float = 0.1, prediction: float = 0.4, alpha: float = 0.5) -> Feedback:
    """λ for label noise ``label`` and prediction noise ``prediction`` (fractions of the anchor size, every
    coordinate) at ``alpha`` (eqs. 42, 53); by default 10 %, 40 % and α = 1/2."""
    settings = suggest_stage([Fraction(label).limit_denominator(1000)] * 4,
                             [Fraction(prediction).limit_denominator(1000)] * 4, alpha=alpha)
    return number(answer, float(settings.lam), 0.02,
                  f"Eq. 42 reads the label scale as $\\alpha\\sigma$ and the prediction scale as $\\sigma/\\lambda$, "
                  f"so their ratio is $\\lambda\\alpha$: $\\lambda = {label:g}/({prediction:g}\\cdot {alpha:g}) = "
                  f"{fraction_text(settings.lam)}$, and $\\sigma = {fraction_text(settings.sigma_x)}$ for every "
                  "coordinate. Less trust in the predictions (a larger prediction scale) means a smaller loss "
                  "weight.")
