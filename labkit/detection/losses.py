"""Per-stage box-regression losses of Faster R-CNN, parameterised as in Table 1 of the paper.

Each stage (the region proposal network, ``"rpn"``, and the detection head, ``"detection"``) regresses box offsets
t = (t_x, t_y, t_w, t_h) towards targets relative to its anchors (the RPN's anchors, the head's proposals):

======================  ============================================================================================
paper                   here (:class:`BoxLossConfig`: ``settings.lam`` …, ``form``, ``size_target``, ``normaliser``)
======================  ============================================================================================
λ                       ``lam``: the loss weight
α                       ``alpha``: the Huber transition point of H_α (eq. 5)
σ_x, σ_y, σ_w, σ_h      ``sigma_x`` …: target scales of eqs. 38 and 44; they act through the box coder's
                        weights 1/σ, exactly as torchvision's ``BoxCoder(weights)`` scales its targets
μ_x … μ_h               always 0, as in the implementation (Section 6, footnote 1)
loss form               ``form``: ``"implementation"`` λ/α·H_α (eq. 37, what py-faster-rcnn and torchvision use),
                        ``"paper"`` λ·H_α (the published loss, Section 5), ``"laplace_upper"`` λ/α·D_{α/2,1/α}
                        (Table 4: H_α replaced by its upper bound of eq. 27, nothing else changed);
                        detection head only, for comparison: ``"giou"``, ``"diou"``, ``"ciou"`` λ·(1 − IoU + …) of
                        ``torchvision.ops`` on the decoded boxes (:func:`box_iou_loss`; α and σ do not enter)
size target             ``size_target``: ``"log"`` t_w* = log(w*/w_a) (eq. 43) or ``"linear"`` t_w* = w*/w_a − 1
                        (Appendix C, eqs. 93–94); likewise for h
N_reg                   ``normaliser``: what the summed box loss is divided by. ``"sampled"`` (default; torchvision,
                        py-faster-rcnn): the stage's sampled anchors or RoIs (256 anchors per image at the
                        defaults). ``"locations"`` (RPN only): the number of anchor locations of the feature
                        map(s): N_reg ≈ 2400 of eq. 1 of the Faster R-CNN publication, the normaliser its λ = 10
                        was chosen with
======================  ============================================================================================

By eq. 42 the implementation form reads as D_{ασ_x w_a, σ_x w_a/λ}(x̃ − x*) in pixels: the label-noise scale is
ασ w_a and the prediction-noise scale σ w_a/λ (Table 2). Presets come from :data:`labkit.interpret.PRESETS`;
the six numbers are a :class:`labkit.interpret.StageSettings` (the lab's one stage-settings type) and read back
through :func:`labkit.interpret.stage_scales` with the config's form.

The normaliser only rescales λ: λ·Σ/N_locations = (λ·N_sampled/N_locations)·Σ/N_sampled. The publication's
λ = 10 over N_reg ≈ 2400 locations is therefore λ ≈ 10·256/2400 ≈ 1.07 in torchvision's (sampled) normalisation,
close to the released implementation's λ = 1; Table 2 reads λ = 10 as if it were normalised like the sampled
terms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss

from labkit.interpret.presets import get_preset
from labkit.interpret.settings import (FORMS, IMPLEMENTATION, LAPLACE_UPPER, PAPER, STAGES, StageSettings,
                                       check_choice)
from labkit.losses import huber, laplace_kl_loss

__all__ = [
    "LOSS_FORMS",
    "SIZE_TARGETS",
    "STAGES",
    "IMPLEMENTATION",
    "PAPER",
    "LAPLACE_UPPER",
    "GIOU",
    "DIOU",
    "CIOU",
    "IOU_FORMS",
    "LOG",
    "LINEAR",
    "SAMPLED",
    "LOCATIONS",
    "NORMALISERS",
    "BoxLossConfig",
    "BoxLosses",
    "check_stage_normaliser",
    "check_stage_form",
    "from_preset",
    "resolve_box_losses",
    "box_regression_loss",
    "box_iou_loss",
    "LinearSizeBoxCoder",
    "make_box_coder",
]

LOSS_FORMS = FORMS  # implementation λ/α·H_α (eq. 37), paper λ·H_α, laplace_upper λ/α·D_{α/2,1/α} (Table 4)
# torchvision.ops' IoU losses on decoded boxes (Rezatofighi et al. 2019; Zheng et al. 2020): the detection head only
GIOU, DIOU, CIOU = "giou", "diou", "ciou"
IOU_FORMS = (GIOU, DIOU, CIOU)
_IOU_LOSSES = {GIOU: generalized_box_iou_loss, DIOU: distance_box_iou_loss, CIOU: complete_box_iou_loss}

LOG = "log"  # eq. 43
LINEAR = "linear"  # eqs. 93–94
SIZE_TARGETS = (LOG, LINEAR)

SAMPLED = "sampled"  # Σ box loss / #sampled anchors (RPN) or RoIs (head): torchvision's and py-faster-rcnn's
LOCATIONS = "locations"  # Σ box loss / #anchor locations (RPN only): N_reg of the publication's eq. 1
NORMALISERS = (SAMPLED, LOCATIONS)

# torchvision's largest log size change (1000/16) bounds the decoded size ratio of either size target
_MAX_SIZE_RATIO = 1000.0 / 16
_MIN_SIZE_RATIO = 1e-3  # linear target: 1 + t_w/… can be ≤ 0; keep decoded boxes non-degenerate


@dataclass(frozen=True)
class BoxLossConfig:
    """One stage's box-regression loss: its Table 1 numbers (a :class:`~labkit.interpret.StageSettings`), the loss
    form, the size target and what the summed loss is divided by (``normaliser``: ``"sampled"`` or, for the RPN
    only, ``"locations"``). ``settings.lam`` = 0 switches the stage's box regression off."""

    settings: StageSettings
    form: str = IMPLEMENTATION
    size_target: str = LOG
    normaliser: str = SAMPLED

    def __post_init__(self) -> None:
        if not isinstance(self.settings, StageSettings):
            raise TypeError(f"settings must be a labkit.interpret.StageSettings, got {type(self.settings).__name__}")
        check_choice("form", self.form, LOSS_FORMS + IOU_FORMS)
        check_choice("size_target", self.size_target, SIZE_TARGETS)
        check_choice("normaliser", self.normaliser, NORMALISERS)

    @property
    def box_coder_weights(self) -> tuple[float, float, float, float]:
        """torchvision ``BoxCoder`` weights (1/σ_x, 1/σ_y, 1/σ_w, 1/σ_h): eqs. 38 and 44 with μ = 0."""
        return tuple(float(1 / s) for s in self.settings.sigmas)

    def to_dict(self) -> dict[str, str]:
        """JSON-ready: the six numbers as exact strings ("1/9"), form, size target and normaliser as names."""
        return {**self.settings.to_dict(), "form": self.form, "size_target": self.size_target,
                "normaliser": self.normaliser}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BoxLossConfig":
        if not isinstance(data, Mapping):
            raise TypeError(f"a box-loss config must be a mapping, got {type(data).__name__}")
        numbers = {k: v for k, v in data.items() if k not in ("form", "size_target", "normaliser")}
        # configs written before the normaliser existed were normalised by the sampled anchors/RoIs
        return cls(StageSettings.from_dict(numbers), form=data.get("form", IMPLEMENTATION),
                   size_target=data.get("size_target", LOG), normaliser=data.get("normaliser", SAMPLED))


@dataclass(frozen=True)
class BoxLosses:
    """The pair of stage configurations: ``rpn`` (proposal network) and ``detection`` (detection head)."""

    rpn: BoxLossConfig
    detection: BoxLossConfig

    def __post_init__(self) -> None:
        for stage in STAGES:
            if not isinstance(getattr(self, stage), BoxLossConfig):
                raise TypeError(f"{stage} must be a BoxLossConfig, got {type(getattr(self, stage)).__name__}")
        check_stage_normaliser("detection", self.detection)
        check_stage_form("rpn", self.rpn)

    def stage(self, name: str) -> BoxLossConfig:
        return getattr(self, check_choice("stage", name, STAGES))

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {stage: getattr(self, stage).to_dict() for stage in STAGES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BoxLosses":
        if not isinstance(data, Mapping) or set(data) != set(STAGES):
            raise ValueError(f"box losses must be a mapping with exactly the keys {STAGES}, got {data!r}")
        return cls(**{stage: BoxLossConfig.from_dict(data[stage]) for stage in STAGES})


def check_stage_normaliser(stage: str, config: BoxLossConfig) -> BoxLossConfig:
    """``config`` if its normaliser suits ``stage``: anchor locations exist only for the RPN, whose anchors tile the
    feature map; the detection head's RoIs are proposals, with no locations to count."""
    if stage != "rpn" and config.normaliser == LOCATIONS:
        raise ValueError(f"{stage}: normaliser 'locations' (the number of anchor locations of the feature map) "
                         "applies to the RPN only; the detection head's box loss is divided by its sampled RoIs "
                         "(normaliser 'sampled')")
    return config


def check_stage_form(stage: str, config: BoxLossConfig) -> BoxLossConfig:
    """``config`` if its form suits ``stage``: the IoU forms need each anchor's box to decode the prediction, and
    torchvision's ``RegionProposalNetwork.compute_loss`` (the seam :class:`~labkit.detection.model.PaperRPN` uses)
    is not given the anchors, so they apply to the detection head only."""
    if stage == "rpn" and config.form in IOU_FORMS:
        raise ValueError(f"rpn: form {config.form!r} (an IoU loss on decoded boxes) applies to the detection head "
                         f"only; give the RPN one of {LOSS_FORMS}")
    return config


def from_preset(name: str, form: str | None = None, size_target: str = LOG,
                rpn_normaliser: str = SAMPLED) -> BoxLosses:
    """Both stages' configurations from the Table 1 column ``labkit.interpret.PRESETS[name]``.

    ``form=None`` keeps the preset's own reading (the published column is λ·H_α, ``"paper"``; the others
    ``"implementation"``); a form name, and ``size_target``, apply to both stages (Tables 4 and 5 swap them
    everywhere at once). ``rpn_normaliser``: the RPN's box-loss normaliser (``"locations"``: divided by the
    anchor locations, as eq. 1 of the Faster R-CNN publication does); the detection head's is always
    ``"sampled"``.
    """
    preset = get_preset(name)
    form = preset.form if form is None else form
    return BoxLosses(rpn=BoxLossConfig(preset.rpn, form, size_target, rpn_normaliser),
                     detection=BoxLossConfig(preset.detection, form, size_target))


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
    if config.form in IOU_FORMS:
        raise ValueError(f"form {config.form!r} acts on decoded boxes, not on residuals: use box_iou_loss")
    lam, alpha = float(config.settings.lam), float(config.settings.alpha)
    if config.form == IMPLEMENTATION:
        return (lam / alpha) * huber(residual, alpha)
    if config.form == PAPER:
        return lam * huber(residual, alpha)
    return (lam / alpha) * laplace_kl_loss(residual, alpha / 2, 1 / alpha)


def box_iou_loss(boxes: torch.Tensor, target_boxes: torch.Tensor, config: BoxLossConfig) -> torch.Tensor:
    """Per-box loss of an IoU form, λ·L(boxes, target_boxes) with L torchvision's ``generalized_box_iou_loss``
    (``"giou"``: 1 − IoU + |C ∖ (A ∪ B)|/|C|), ``distance_box_iou_loss`` (``"diou"``: 1 − IoU + ρ²/d², the squared
    centre distance over the enclosing box's squared diagonal) or ``complete_box_iou_loss`` (``"ciou"``: DIoU + an
    aspect-ratio term). Boxes (x₁, y₁, x₂, y₂) in pixels, shape (N, 4); unreduced (the caller sums and normalises).
    Only λ enters: α shapes the residual losses only, and σ (the coder's weights 1/σ) only rescales what the
    network outputs before decoding; the loss of given boxes does not depend on it."""
    if config.form not in IOU_FORMS:
        raise ValueError(f"box_iou_loss needs an IoU form {IOU_FORMS}, got form={config.form!r}")
    return float(config.settings.lam) * _IOU_LOSSES[config.form](boxes, target_boxes, reduction="none")


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
