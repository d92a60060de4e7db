"""Per-stage box-regression losses of Faster R-CNN, parameterised as in Table 1 of the paper.

Each stage (the region proposal network, ``"rpn"``, and the detection head, ``"detection"``) regresses box offsets
t = (t_x, t_y, t_w, t_h) towards targets relative to its anchors (the RPN's anchors, the head's proposals):

======================  ============================================================================================
paper                   here (:class:`BoxLossConfig`)
======================  ============================================================================================
λ                       ``lam``: the loss weight
α                       ``alpha``: the Huber transition point of H_α (eq. 5)
σ_x, σ_y, σ_w, σ_h      ``sigma_x`` …: target scales of eqs. 38 and 44; they act through the box coder's
                        weights 1/σ, exactly as torchvision's ``BoxCoder(weights)`` scales its targets
μ_x … μ_h               always 0, as in the implementation (Section 6, footnote 1)
loss form               ``form``: ``"implementation"`` λ/α·H_α (eq. 37, what py-faster-rcnn and torchvision use),
                        ``"paper"`` λ·H_α (the published loss, Section 5), ``"laplace_upper"`` λ/α·D_{α/2,1/α}
                        (Table 4: H_α replaced by its upper bound of eq. 27, nothing else changed)
size target             ``size_target``: ``"log"`` t_w* = log(w*/w_a) (eq. 43) or ``"linear"`` t_w* = w*/w_a − 1
                        (Appendix C, eqs. 93–94); likewise for h
======================  ============================================================================================

By eq. 42 the implementation form reads as D_{ασ_x w_a, σ_x w_a/λ}(x̃ − x*) in pixels: the label-noise scale is
ασ w_a and the prediction-noise scale σ w_a/λ (Table 2). Presets come from :data:`labkit.interpret.PRESETS`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any, Mapping

import torch
from torchvision.models.detection._utils import BoxCoder

from labkit.losses import huber, laplace_kl_loss

__all__ = [
    "LOSS_FORMS",
    "SIZE_TARGETS",
    "STAGES",
    "IMPLEMENTATION",
    "PAPER",
    "LAPLACE_UPPER",
    "LOG",
    "LINEAR",
    "BoxLossConfig",
    "BoxLosses",
    "from_preset",
    "resolve_box_losses",
    "box_regression_loss",
    "LinearSizeBoxCoder",
    "make_box_coder",
]

IMPLEMENTATION = "implementation"  # λ/α·H_α, eq. 37
PAPER = "paper"  # λ·H_α
LAPLACE_UPPER = "laplace_upper"  # λ/α·D_{α/2,1/α}, Table 4
LOSS_FORMS = (IMPLEMENTATION, PAPER, LAPLACE_UPPER)

LOG = "log"  # eq. 43
LINEAR = "linear"  # eqs. 93–94
SIZE_TARGETS = (LOG, LINEAR)

STAGES = ("rpn", "detection")

_NUMBERS = ("lam", "alpha", "sigma_x", "sigma_y", "sigma_w", "sigma_h")
# torchvision's largest log size change (1000/16) bounds the decoded size ratio of either size target
_MAX_SIZE_RATIO = 1000.0 / 16
_MIN_SIZE_RATIO = 1e-3  # linear target: 1 + t_w/… can be ≤ 0; keep decoded boxes non-degenerate


def _fraction(name: str, value: Any) -> Fraction:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a number (int, Fraction, float or a string like '1/9'), got {value!r}")
    try:
        frac = Fraction(value) if not isinstance(value, float) else Fraction(value).limit_denominator(10**9)
    except (TypeError, ValueError, ZeroDivisionError):
        raise TypeError(
            f"{name} must be a number (int, Fraction, float or a string like '1/9'), got {value!r}") from None
    return frac


@dataclass(frozen=True)
class BoxLossConfig:
    """One stage's box-regression loss: the Table 1 column (λ, α, σ_x, σ_y, σ_w, σ_h), loss form and size target.

    Numbers are stored as exact :class:`~fractions.Fraction` (floats are accepted and rationalised). ``lam`` ≥ 0
    (0 switches box regression off), ``alpha`` and every σ > 0.
    """

    lam: Fraction
    alpha: Fraction
    sigma_x: Fraction
    sigma_y: Fraction
    sigma_w: Fraction
    sigma_h: Fraction
    form: str = IMPLEMENTATION
    size_target: str = LOG

    def __post_init__(self) -> None:
        for name in _NUMBERS:
            value = _fraction(name, getattr(self, name))
            if value < 0 or (value == 0 and name != "lam"):
                bound = ">= 0" if name == "lam" else "> 0"
                raise ValueError(f"{name} must be {bound}, got {name}={value}")
            object.__setattr__(self, name, value)
        if self.form not in LOSS_FORMS:
            raise ValueError(f"form must be one of {LOSS_FORMS}, got form={self.form!r}")
        if self.size_target not in SIZE_TARGETS:
            raise ValueError(f"size_target must be one of {SIZE_TARGETS}, got size_target={self.size_target!r}")

    @property
    def box_coder_weights(self) -> tuple[float, float, float, float]:
        """torchvision ``BoxCoder`` weights (1/σ_x, 1/σ_y, 1/σ_w, 1/σ_h): eqs. 38 and 44 with μ = 0."""
        return tuple(float(1 / s) for s in (self.sigma_x, self.sigma_y, self.sigma_w, self.sigma_h))

    def to_dict(self) -> dict[str, str]:
        """JSON-ready: numbers as exact strings ("1/9"), form and size target as names."""
        out = {name: str(getattr(self, name)) for name in _NUMBERS}
        out.update(form=self.form, size_target=self.size_target)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BoxLossConfig":
        if not isinstance(data, Mapping):
            raise TypeError(f"a box-loss config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        missing = sorted(set(_NUMBERS) - set(data))
        if unknown or missing:
            raise ValueError(
                f"box-loss config: unknown keys {unknown}, missing keys {missing}; expected {sorted(known)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class BoxLosses:
    """The pair of stage configurations: ``rpn`` (proposal network) and ``detection`` (detection head)."""

    rpn: BoxLossConfig
    detection: BoxLossConfig

    def __post_init__(self) -> None:
        for stage in STAGES:
            if not isinstance(getattr(self, stage), BoxLossConfig):
                raise TypeError(f"{stage} must be a BoxLossConfig, got {type(getattr(self, stage)).__name__}")

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {stage: getattr(self, stage).to_dict() for stage in STAGES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BoxLosses":
        if not isinstance(data, Mapping) or set(data) != set(STAGES):
            raise ValueError(f"box losses must be a mapping with exactly the keys {STAGES}, got {data!r}")
        return cls(**{stage: BoxLossConfig.from_dict(data[stage]) for stage in STAGES})


def _stage_from(stage: Any, form: str | None, size_target: str, where: str) -> BoxLossConfig:
    try:
        numbers = {name: getattr(stage, name) for name in _NUMBERS}
    except AttributeError as exc:
        raise TypeError(f"{where} must have the fields {_NUMBERS}: {exc}") from None
    form = form if form is not None else getattr(stage, "form", IMPLEMENTATION)
    return BoxLossConfig(**numbers, form=form, size_target=size_target)


def from_preset(name: str, form: str | None = None, size_target: str = LOG) -> BoxLosses:
    """Both stages' configurations from the Table 1 column ``labkit.interpret.PRESETS[name]``.

    ``form=None`` keeps each stage's own reading (the published column is λ·H_α, ``"paper"``; the others
    ``"implementation"``); a form name, and ``size_target``, apply to both stages (Tables 4 and 5 swap them
    everywhere at once).
    """
    from labkit.interpret import PRESETS  # figures/interpret floor, below detection

    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got preset={name!r}")
    preset = PRESETS[name]
    return BoxLosses(
        rpn=_stage_from(preset.rpn, form, size_target, f"PRESETS[{name!r}].rpn"),
        detection=_stage_from(preset.detection, form, size_target, f"PRESETS[{name!r}].detection"),
    )


def resolve_box_losses(spec: Any) -> BoxLosses:
    """Accept a preset name, a :class:`BoxLosses`, a (rpn, detection) pair of :class:`BoxLossConfig`, or a mapping
    as written by :meth:`BoxLosses.to_dict`."""
    if isinstance(spec, BoxLosses):
        return spec
    if isinstance(spec, str):
        return from_preset(spec)
    if isinstance(spec, Mapping):
        return BoxLosses.from_dict(spec)
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return BoxLosses(rpn=spec[0], detection=spec[1])
    raise TypeError(
        "box_loss must be a preset name, a BoxLosses, a (rpn, detection) pair of BoxLossConfig or a mapping, "
        f"got {type(spec).__name__}"
    )


def box_regression_loss(residual: torch.Tensor, config: BoxLossConfig) -> torch.Tensor:
    """Element-wise box loss of one stage on residuals t − t̃* (unreduced; the caller sums and normalises).

    ``"implementation"``: (λ/α)·H_α(x), eq. 37 (equal to λ·``smooth_l1_loss(beta=α)``); ``"paper"``: λ·H_α(x);
    ``"laplace_upper"``: (λ/α)·D_{α/2,1/α}(x), the upper bound of eq. 27 put in H_α's place (Table 4).
    """
    lam, alpha = float(config.lam), float(config.alpha)
    if config.form == IMPLEMENTATION:
        return (lam / alpha) * huber(residual, alpha)
    if config.form == PAPER:
        return lam * huber(residual, alpha)
    return (lam / alpha) * laplace_kl_loss(residual, alpha / 2, 1 / alpha)


class LinearSizeBoxCoder(BoxCoder):
    """torchvision's box coder with the linear size targets of Appendix C: t_w* = w_w·(w*/w_a − 1) (eq. 93),
    t_h* = w_h·(h*/h_a − 1) (eq. 94); the centre targets are eq. 32 as before. Decoding inverts them:
    w = (1 + t_w/w_w)·w_a, with the ratio kept in [1e-3, 1000/16] (the log coder's own clip)."""

    def encode_single(self, reference_boxes: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        wx, wy, ww, wh = self.weights
        ex_w = proposals[:, 2] - proposals[:, 0]
        ex_h = proposals[:, 3] - proposals[:, 1]
        ex_x = proposals[:, 0] + 0.5 * ex_w
        ex_y = proposals[:, 1] + 0.5 * ex_h
        gt_w = reference_boxes[:, 2] - reference_boxes[:, 0]
        gt_h = reference_boxes[:, 3] - reference_boxes[:, 1]
        gt_x = reference_boxes[:, 0] + 0.5 * gt_w
        gt_y = reference_boxes[:, 1] + 0.5 * gt_h
        return torch.stack(
            (wx * (gt_x - ex_x) / ex_w, wy * (gt_y - ex_y) / ex_h, ww * (gt_w / ex_w - 1), wh * (gt_h / ex_h - 1)),
            dim=1,
        )

    def decode_single(self, rel_codes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        boxes = boxes.to(rel_codes.dtype)
        widths = (boxes[:, 2] - boxes[:, 0])[:, None]
        heights = (boxes[:, 3] - boxes[:, 1])[:, None]
        ctr_x = boxes[:, 0, None] + 0.5 * widths
        ctr_y = boxes[:, 1, None] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        x = rel_codes[:, 0::4] / wx * widths + ctr_x
        y = rel_codes[:, 1::4] / wy * heights + ctr_y
        w = torch.clamp(1 + rel_codes[:, 2::4] / ww, _MIN_SIZE_RATIO, _MAX_SIZE_RATIO) * widths
        h = torch.clamp(1 + rel_codes[:, 3::4] / wh, _MIN_SIZE_RATIO, _MAX_SIZE_RATIO) * heights
        return torch.stack((x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h), dim=2).flatten(1)


def make_box_coder(config: BoxLossConfig) -> BoxCoder:
    """The stage's box coder: weights 1/σ (eqs. 38, 44), log (eq. 43) or linear (eqs. 93–94) size targets."""
    if config.size_target == LINEAR:
        return LinearSizeBoxCoder(config.box_coder_weights, bbox_xform_clip=math.log(_MAX_SIZE_RATIO))
    return BoxCoder(config.box_coder_weights, bbox_xform_clip=math.log(_MAX_SIZE_RATIO))
