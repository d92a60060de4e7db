"""From learned prediction scales back to fixed Huber settings (issue 17, item 6): which (λ, α, σ) would a stage need
for its fixed prediction scale to equal the scale a learned-uncertainty detector settled on?

A stage (λ, α, σ) read in ``form`` assumes, per coordinate c, label scale k·α·σ_c and prediction scale
σ_c/(λ·α^m) in anchor sizes (:mod:`.mapping`). A detector with learned uncertainty predicts, in the σ-scaled target
units its box loss sees, a scale b_c per box and coordinate (:mod:`labkit.detection.uncertainty`); b_c·σ_c is that
prediction scale in anchor sizes. Given a typical (median) b_c per coordinate, the implied settings are the ones
whose prediction scale is P_c = b_c·σ_c exactly.

One λ and one α per stage force label/prediction = ρ to be the same for x, y, w, h (:func:`.suggest_stage`), while
learned scales need not keep the assumed label scales L_c = k·α·σ_c in one ratio. So ρ is the geometric mean of
L_c/P_c (the least-squares choice on the log scale) and the implied label scales are ρ·P_c; α is kept, so the Huber
transition in target units stays the stage's. Then λ = ρ/(k·α^{m+1}) and σ_c = ρ·P_c/(k·α) — the stage's own
settings when every b_c is its starting value 1/(λ·α^m), and the assumed label scales exactly whenever the four
L_c/P_c agree (then ρ is exact). The learned scales, and ρ when it is a geometric mean, are rounded to ``digits``
significant decimal digits before they become exact fractions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Sequence

from labkit.interpret.mapping import stage_scales, suggest_stage
from labkit.interpret.settings import COORDINATES, IMPLEMENTATION, STAGES, StageSettings, check_choice, exact

__all__ = ["ImpliedStage", "implied_stage", "implied_settings"]


@dataclass(frozen=True)
class ImpliedStage:
    """The fixed settings implied by learned scales, and what they read as (anchor sizes, x, y, w, h):
    ``prediction_scales`` = the learned ones, ``label_scales`` = ρ times them, ``assumed_label_scales`` the stage's
    own; ``ratio`` is ρ = label/prediction."""

    settings: StageSettings
    prediction_scales: tuple[Fraction, ...]
    label_scales: tuple[Fraction, ...]
    assumed_label_scales: tuple[Fraction, ...]
    ratio: Fraction


def _rounded(name: str, value: float, digits: int) -> Fraction:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")
    return exact(name, f"{v:.{digits}g}")


def implied_stage(stage: StageSettings, learned_scales: Sequence[float], form: str = IMPLEMENTATION,
                  digits: int = 4) -> ImpliedStage:
    """The settings of ``stage`` (trained in ``form``) re-chosen so that their prediction scale equals
    ``learned_scales`` — four numbers (x, y, w, h), typically the median learned scale, in the σ-scaled target
    units of ``stage`` (see the module docstring)."""
    if not isinstance(stage, StageSettings):
        raise TypeError(f"stage must be a StageSettings, got {type(stage).__name__}")
    values = tuple(learned_scales)
    if len(values) != len(COORDINATES):
        raise ValueError(f"learned_scales must be four numbers (x, y, w, h), got {len(values)}")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 15:
        raise ValueError(f"digits must be an int in 1..15, got digits={digits!r}")
    assumed, _ = stage_scales(stage, form)
    learned = [_rounded(f"learned_scales[{c}]", v, digits) for c, v in zip(COORDINATES, values)]
    predictions = tuple(b * s for b, s in zip(learned, stage.sigmas))
    ratios = {lab / p for lab, p in zip(assumed, predictions)}
    # one exact ratio keeps the assumed label scales exactly; otherwise their geometric mean, rounded
    ratio = ratios.pop() if len(ratios) == 1 else _rounded(
        "ratio", math.exp(sum(math.log(lab / p) for lab, p in zip(assumed, predictions)) / len(predictions)), digits)
    labels = tuple(ratio * p for p in predictions)
    settings = suggest_stage(labels, predictions, alpha=stage.alpha, form=form)
    return ImpliedStage(settings, predictions, labels, tuple(assumed), ratio)


def implied_settings(stages: Mapping[str, StageSettings], learned: Mapping[str, Sequence[float]],
                     form: str = IMPLEMENTATION, digits: int = 4) -> dict[str, StageSettings]:
    """stage → :class:`StageSettings` for :func:`labkit.interpret.exports.export`: the stages in ``learned`` (stage →
    four learned scales) re-chosen by :func:`implied_stage`, the others as in ``stages``."""
    for name in learned:
        check_choice("stage", name, STAGES)
        if name not in stages:
            raise ValueError(f"learned scales for stage {name!r}, but stages has no settings for it")
    return {name: implied_stage(s, learned[name], form, digits).settings if name in learned else s
            for name, s in stages.items()}
