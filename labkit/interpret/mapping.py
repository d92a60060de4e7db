"""Section 5's mapping in plain, exact code: a stage's (λ, α, σ) → the label and prediction noise it assumes, and back.

A stage trains its box regression with c·H_α on targets divided by σ. Reading H_α as D_{α,1/α} (eq. 25) and moving
the scales with the laws of eqs. 28–31 (D_{a,b}(x/s) = D_{as,bs}(x), c·D_{a,b} = D_{a,b/c}), the loss on the residual
in image units is D_{label, prediction}. In units of the anchor size (eqs. 36, 42, 52–53):

==================  =====================  ===================  =================
form                loss                   label scale          prediction scale
==================  =====================  ===================  =================
``implementation``  (λ/α)·H_α              α·σ                  σ/λ
``paper``           λ·H_α                  α·σ                  σ/(λ·α)
``laplace_upper``   (λ/α)·D_{α/2,1/α}      α·σ/2                σ/λ
==================  =====================  ===================  =================

i.e. label = k·α·σ and prediction = σ/(λ·α^m) with (k, m) in :data:`SCALE_LAWS`. :mod:`labkit.symbolic.detector`
derives the first two rows in SymPy (the tests hold this module to it) — this module only evaluates and inverts
them, so reading the presets needs no SymPy.

A stage has one λ and one α for its four coordinates, so label/prediction (= λ·α^{m+1}/k) is the same for x, y, w, h:
:func:`suggest_stage` enforces it and says which coordinate breaks it.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping

from labkit.interpret.settings import (COORDINATES, FORMS, IMPLEMENTATION, LAPLACE_UPPER, PAPER, Number,
                                       StageSettings, check_choice, exact,
                                       fraction_text)

__all__ = [
    "SCALE_LAWS",
    "uncertainty_scales",
    "stage_scales",
    "huber_coefficient",
    "Suggestion",
    "suggest",
    "suggest_stage",
]

#: form → (k, m): label scale k·α·σ, prediction scale σ/(λ·α^m), in anchor sizes (eqs. 36, 42, 52–53; eq. 27)
SCALE_LAWS: dict[str, tuple[Fraction, int]] = {
    IMPLEMENTATION: (Fraction(1), 0),
    PAPER: (Fraction(1), 1),
    LAPLACE_UPPER: (Fraction(1, 2), 0),
}


def _law(form: str) -> tuple[Fraction, int]:
    return SCALE_LAWS[check_choice("form", form, FORMS)]


def uncertainty_scales(lam: Number, alpha: Number, sigma: Number,
                       form: str = IMPLEMENTATION) -> tuple[Fraction, Fraction]:
    """(label_scale, prediction_scale) implied by loss weight λ, Huber transition α and target scaling σ, in units
    of the anchor size (Table 1 → Table 2). E.g. the implementation's proposal network (1, 1/9, 1) gives (1/9, 1).

    λ = 0 switches the loss off and implies no prediction scale: it raises. Numbers are read by
    :func:`~labkit.interpret.settings.exact`.
    """
    k, m = _law(form)
    lam_, alpha_, sigma_ = exact("lam", lam), exact("alpha", alpha), exact("sigma", sigma)
    return k * alpha_ * sigma_, sigma_ / (lam_ * alpha_**m)


def _check_active(stage: StageSettings) -> StageSettings:
    if not isinstance(stage, StageSettings):
        raise TypeError(f"stage must be a StageSettings, got {type(stage).__name__}")
    if stage.lam == 0:
        raise ValueError("this stage has λ = 0: its box loss is off, so it assumes no noise scales")
    return stage


def stage_scales(stage: StageSettings, form: str = IMPLEMENTATION) -> tuple[tuple[Fraction, ...], tuple[Fraction, ...]]:
    """((label x, y, w, h), (prediction x, y, w, h)) of one stage, in anchor sizes: one column of Table 2."""
    pairs = [uncertainty_scales(_check_active(stage).lam, stage.alpha, s, form) for s in stage.sigmas]
    return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)


def huber_coefficient(stage: StageSettings, form: str = IMPLEMENTATION) -> Fraction:
    """c in the stage's box loss c·H_α(r) on the σ-scaled residual r: λ/α for ``implementation`` (eq. 37) and
    ``laplace_upper`` (its D_{α/2,1/α} has the same weight), λ for ``paper`` (eq. 36)."""
    _check_active(stage)
    return stage.lam if _law(form)[1] else stage.lam / stage.alpha


@dataclass(frozen=True)
class Suggestion:
    """λ, α, σ for one coordinate that imply the requested label and prediction noise scales."""

    lam: Fraction
    alpha: Fraction
    sigma: Fraction


def _exactly_one(alpha, sigma) -> None:
    if (alpha is None) == (sigma is None):
        which = "both were given" if alpha is not None else "neither was given"
        raise ValueError(f"give exactly one of alpha= or sigma= (the mapping leaves one free choice); {which}. "
                         "E.g. alpha=1 keeps the usual smooth-L1 β, sigma=... keeps the box coder's scaling")


def suggest(label_scale: Number, prediction_scale: Number, *, alpha: Number | None = None,
            sigma: Number | None = None, form: str = IMPLEMENTATION) -> Suggestion:
    """λ, α, σ whose loss reads as label noise ``label_scale`` and prediction noise ``prediction_scale`` (both in
    anchor sizes, e.g. 0.05 = 5 % of the anchor): :func:`uncertainty_scales` inverted.

    The mapping has three parameters and two outputs, so exactly one of ``alpha`` or ``sigma`` must be given.
    """
    k, m = _law(form)
    _exactly_one(alpha, sigma)
    label, prediction = exact("label_scale", label_scale), exact("prediction_scale", prediction_scale)
    if alpha is not None:
        alpha_ = exact("alpha", alpha)
        sigma_ = label / (k * alpha_)
    else:
        sigma_ = exact("sigma", sigma)
        alpha_ = label / (k * sigma_)
    return Suggestion(sigma_ / (prediction * alpha_**m), alpha_, sigma_)


def _four(name: str, value) -> tuple:
    if isinstance(value, (str, numbers.Number)) or value is None:
        return (value,) * 4
    if isinstance(value, Mapping):
        missing = [c for c in COORDINATES if c not in value]
        if missing:
            raise ValueError(f"{name} is missing coordinate(s) {', '.join(missing)}; give x, y, w, h")
        return tuple(value[c] for c in COORDINATES)
    value = tuple(value)
    if len(value) != 4:
        raise ValueError(f"{name} must be one number or four (x, y, w, h), got {len(value)} values")
    return value


def suggest_stage(label_scales, prediction_scales, *, alpha=None, sigma=None,
                  form: str = IMPLEMENTATION) -> StageSettings:
    """A whole stage's settings from label and prediction noise per coordinate.

    ``label_scales`` / ``prediction_scales``: one number for all of x, y, w, h, four numbers, or a mapping by
    coordinate. ``alpha`` (one number) or ``sigma`` (one or four numbers): exactly one of them. A stage has a single
    λ and α, so the coordinates must agree on them; if they do not, the error names the coordinates and the ratio
    label/prediction each asked for.
    """
    labels = _four("label_scales", label_scales)
    predictions = _four("prediction_scales", prediction_scales)
    _exactly_one(alpha, sigma)
    if alpha is not None and not isinstance(alpha, (str, numbers.Number)):
        raise TypeError(f"alpha is one number per stage (one Huber transition for x, y, w, h), got {alpha!r}")
    sigmas = _four("sigma", sigma) if sigma is not None else (None,) * 4
    per = [suggest(lab, pred, alpha=alpha, sigma=s, form=form) for lab, pred, s in zip(labels, predictions, sigmas)]
    for name in ("lam", "alpha"):
        if len({getattr(p, name) for p in per}) > 1:
            ratios = ", ".join(f"{c}: {fraction_text(exact('label', lab) / exact('prediction', pred))}"
                               for c, lab, pred in zip(COORDINATES, labels, predictions))
            detail = {c: fraction_text(getattr(p, name)) for c, p in zip(COORDINATES, per)}
            raise ValueError(f"one stage has a single {name}, but the coordinates ask for {detail}. With one λ and one "
                             f"α, label/prediction must be the same for x, y, w, h; got {ratios}")
    return StageSettings(per[0].lam, per[0].alpha, *(p.sigma for p in per))
