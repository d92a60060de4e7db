"""Learned per-box uncertainty (the paper's future work, Section 7): the detection head also predicts the scale of
its own prediction distribution, per class and box coordinate, and trains it with the full Laplace KL of eq. 18.

Units. Everything the head predicts and the loss sees is in the σ-scaled target units of the detection stage's box
coder (eqs. 38, 44: t̃ = t*/σ, the units of ``regression_targets``). In those units a stage (λ, α, σ) reads as
D_{label, prediction}(t − t̃*) with label scale k·α and prediction scale 1/(λ·α^m) (Section 5;
:func:`labkit.interpret.uncertainty_scales` with σ = 1); multiplied by σ they are Table 2's scales in anchor sizes,
by σ·w_a the pixels of eq. 42.

The head (:class:`ScalePredictor`: a ``FastRCNNPredictor``'s two layers and a third linear output) returns class logits, box
deltas and one log-scale u per class and coordinate (x, y, w, h), clamped to :data:`LOG_SCALE_RANGE` = [−5, 5], so the
scale e^u lies in [0.0067, 148] target units (≈ [3·10⁻⁴, 7] anchor widths at σ = 1/20): wide enough for any
optimum the losses below reach on real boxes, narrow enough that 1/e^u cannot overflow a float32 gradient. Its
weights start at 0 and its bias at the log of the stage's prediction scale, so training starts at the fixed-α model.

Losses per positive RoI and coordinate, on the residual r = t − t̃* of the RoI's ground-truth class
(:func:`uncertainty_loss`), summed and divided by the sampled RoIs as the stock loss is:

- ``"laplace_kl"`` (this paper): KL(Laplace(t̃*, a) ‖ Laplace(t, b)) = D_{a,b}(r) + log(b/a) + a/b − 1, eq. 18, with
  the stage's label scale a = k·α (an assumption, not learned) and the learned b = e^u. With b fixed it is
  D_{a,b}(r) plus a constant; λ, which only sets the prediction scale (eq. 29), enters through b's start alone;
- ``"laplace_nll"``: −log Laplace(t̃* | t, b) = |r|/b + log 2b (the limit a → 0 of the KL plus the label entropy
  1 + log 2a, eq. 15);
- ``"gaussian_kl_loss"``: KL-Loss of He et al. (CVPR 2019), e^{−s}·H_α(r) + s/2 with s = log σ², here s = 2u, so the
  head predicts the Gaussian's log standard deviation; at α = 1 (both Table 1 detection stages) H_1 is their
  smooth-L1. Its start is σ² = 1/(c·α), c the stage's Huber coefficient: e^{−s}·H_α is then the stock c·H_α.

With ``rpn=True`` the region proposal network learns scales as well (:class:`ScaleRPNHead`, one log-scale per anchor
and coordinate beside its deltas; :class:`~labkit.detection.model.LearnedScaleRPN`), trained with the same loss on
the RPN stage's label scale and normalised as that stage's fixed loss is. Its scales shape training only —
proposals are boxes, as in torchvision — and are read back by :meth:`~labkit.detection.model.LearnedScaleRPN.anchor_scales`
on the anchors matched to ground truth (:func:`labkit.detection.implied.implied_run_settings`).

``anneal_iters`` > 0 blends from the stage's fixed loss (its Table 1 form, e.g. (λ/α)·H_α) to the learned one over
that many training steps, as probdet does: (1 − w)·fixed + w·learned, w = min(1, step/anneal_iters); the step count
is a buffer of the heads (saved with the model, so a resumed run continues the ramp).

Detections carry ``box_scales``: the predicted scale of (centre x, centre y, width, height) in pixels of the
original image — the target-unit scale times the decoder's derivative at the prediction (σ_x·w_a for the centre;
σ_w·ŵ for log size targets, σ_w·w_a for linear ones) — kept aligned with their boxes through score filtering,
NMS and top-k, and rescaled with the image (:class:`ScaleRescalingTransform`); and ``box_target_scales``, the
learned scales e^u themselves in target units. ``var_voting`` (He et al.'s variance voting) moves each kept box to
the scale-weighted mean of the same-class candidates that overlap it (:func:`variance_voting`); its scales stay the
kept box's, as in He et al.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import boxes as box_ops

from labkit.detection.data import check_training_targets
from labkit.detection.losses import LINEAR, BoxLossConfig, box_regression_loss, check_stage_normaliser, make_box_coder
from labkit.interpret.mapping import huber_coefficient, uncertainty_scales
from labkit.interpret.settings import FORMS, check_choice
from labkit.losses import huber, laplace_kl_divergence

__all__ = ["NONE", "LEARNED", "UNCERTAINTY_MODES", "LAPLACE_KL", "LAPLACE_NLL", "GAUSSIAN_KL_LOSS",
           "UNCERTAINTY_LOSSES", "LAPLACE", "GAUSSIAN", "LOG_SCALE_RANGE", "UncertaintyConfig", "label_scale",
           "initial_log_scale", "uncertainty_loss", "learned_box_loss", "ScalePredictor", "ScaleRPNHead",
           "LearnedScaleRoIHeads", "variance_voting", "ScaleRescalingTransform"]

NONE, LEARNED = "none", "learned"
UNCERTAINTY_MODES = (NONE, LEARNED)
LAPLACE_KL = "laplace_kl"  # eq. 18, the label scale from the stage settings
LAPLACE_NLL = "laplace_nll"  # eq. 15 with a Dirac label
GAUSSIAN_KL_LOSS = "gaussian_kl_loss"  # He et al., CVPR 2019
UNCERTAINTY_LOSSES = (LAPLACE_KL, LAPLACE_NLL, GAUSSIAN_KL_LOSS)
LAPLACE, GAUSSIAN = "laplace", "gaussian"
#: the family each loss's predicted scale belongs to (what calibration reads)
DISTRIBUTIONS = {LAPLACE_KL: LAPLACE, LAPLACE_NLL: LAPLACE, GAUSSIAN_KL_LOSS: GAUSSIAN}
#: the clamp of the predicted log-scale u (scale e^u in σ-scaled target units)
LOG_SCALE_RANGE = (-5.0, 5.0)
_BOX_SCALES, _TARGET_SCALES = "box_scales", "box_target_scales"


@dataclass(frozen=True)
class UncertaintyConfig:
    """How the learned scales are trained and used: ``loss`` (one of :data:`UNCERTAINTY_LOSSES`), ``anneal_iters``
    (0: no blend from the fixed loss), ``var_voting`` at inference and its ``var_voting_sigma`` (σ_t of He et al.:
    candidate weight exp(−(1 − IoU)²/σ_t)), and ``rpn``: whether the region proposal network learns its scales too
    (False: the detection head alone, the RPN keeps its fixed loss)."""

    loss: str = LAPLACE_KL
    anneal_iters: int = 0
    var_voting: bool = False
    var_voting_sigma: float = 0.02
    rpn: bool = False

    def __post_init__(self) -> None:
        check_choice("uncertainty loss", self.loss, UNCERTAINTY_LOSSES)
        if isinstance(self.anneal_iters, bool) or not isinstance(self.anneal_iters, int) or self.anneal_iters < 0:
            raise ValueError(f"anneal_iters must be an int >= 0, got anneal_iters={self.anneal_iters!r}")
        for name in ("var_voting", "rpn"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {name}={getattr(self, name)!r}")
        s = self.var_voting_sigma
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < math.inf:
            raise ValueError(f"var_voting_sigma must be a number > 0, got var_voting_sigma={s!r}")

    @property
    def distribution(self) -> str:
        """``"laplace"`` or ``"gaussian"``: the family of the predicted scales (Laplace b, Gaussian σ)."""
        return DISTRIBUTIONS[self.loss]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "UncertaintyConfig":
        return cls(**data)


def _check_form(config: BoxLossConfig) -> BoxLossConfig:
    if config.form not in FORMS:
        raise ValueError(f"learned uncertainty needs a per-coordinate box loss form ({', '.join(FORMS)}), got "
                         f"form={config.form!r}")
    if config.settings.lam == 0:
        raise ValueError("learned uncertainty needs the stage's box loss on (λ > 0), got lam=0")
    return config


def label_scale(config: BoxLossConfig) -> float:
    """The stage's label scale in σ-scaled target units, k·α (eqs. 42, 52; k = 1/2 for ``laplace_upper``)."""
    s = _check_form(config).settings
    return float(uncertainty_scales(s.lam, s.alpha, 1, config.form)[0])


def initial_log_scale(config: BoxLossConfig, loss: str = LAPLACE_KL) -> float:
    """The head's starting log-scale: the log of the stage's prediction scale 1/(λ·α^m) in target units for the
    Laplace losses; log σ with σ² = 1/(c·α) (c the Huber coefficient) for the Gaussian KL-Loss."""
    s = _check_form(config).settings
    check_choice("uncertainty loss", loss, UNCERTAINTY_LOSSES)
    if loss == GAUSSIAN_KL_LOSS:
        return -0.5 * math.log(float(huber_coefficient(s, config.form) * s.alpha))
    return math.log(float(uncertainty_scales(s.lam, s.alpha, 1, config.form)[1]))


def uncertainty_loss(residual: torch.Tensor, log_scale: torch.Tensor, loss: str, label: float,
                     huber_alpha: float) -> torch.Tensor:
    """Element-wise loss of residuals r = t − t̃* under predicted log-scales u (see the module docstring):
    ``laplace_kl`` KL(Laplace(0, ``label``) ‖ Laplace(r, e^u)), ``laplace_nll`` |r|e^{−u} + u + log 2,
    ``gaussian_kl_loss`` e^{−2u}·H_α(r) + u with α = ``huber_alpha``."""
    if loss == LAPLACE_KL:
        return laplace_kl_divergence(torch.zeros_like(residual), label, residual, log_scale.exp())
    if loss == LAPLACE_NLL:
        return residual.abs() * torch.exp(-log_scale) + log_scale + math.log(2.0)
    if loss == GAUSSIAN_KL_LOSS:
        return torch.exp(-2 * log_scale) * huber(residual, huber_alpha) + log_scale
    raise ValueError(f"unknown uncertainty loss {loss!r}; valid: {', '.join(UNCERTAINTY_LOSSES)}")


def learned_box_loss(pred: torch.Tensor, target: torch.Tensor, log_scale: torch.Tensor, uncertainty: UncertaintyConfig,
                     label: float, box_loss: BoxLossConfig, anneal_weight: float, normaliser: int) -> torch.Tensor:
    """One stage's box loss with learned scales: Σ :func:`uncertainty_loss` / ``normaliser`` over the residuals
    r = ``pred`` − ``target`` (positives × 4, computed in at least float32) and their log-scales, blended as (1 − w)·fixed + w·learned with the stage's
    fixed loss (:func:`~labkit.detection.losses.box_regression_loss`, the same normaliser) while the annealing
    weight w = ``anneal_weight`` < 1. A log-scale that is not finite (a diverged head) gives NaN, which stops
    training by name."""
    dtype = torch.promote_types(pred.dtype, torch.float32)  # as the stock loss: never below float32
    residual = pred.to(dtype) - target.to(dtype)
    if not bool(torch.isfinite(log_scale).all()):
        return residual.sum() * math.nan
    learned = uncertainty_loss(residual, log_scale.to(dtype), uncertainty.loss, label,
                               float(box_loss.settings.alpha)).sum() / max(normaliser, 1)
    if anneal_weight < 1:
        fixed = box_regression_loss(residual, box_loss).sum() / max(normaliser, 1)
        learned = anneal_weight * learned + (1 - anneal_weight) * fixed
    return learned


def anneal_weight(step: torch.Tensor, anneal_iters: int) -> float:
    """w of (1 − w)·fixed + w·learned after ``step`` training steps: min(1, step/anneal_iters); 1 without annealing."""
    return 1.0 if anneal_iters == 0 else min(1.0, int(step) / anneal_iters)


def _log_scale_layer(kind: type[nn.Module], like: nn.Module, initial_log_scale: float, *args: Any,
                     **kwargs: Any) -> nn.Module:
    """A ``kind(*args, **kwargs)`` layer on ``like``'s device and dtype with weights 0 and bias
    ``initial_log_scale``, built without drawing from the global random generator."""
    layer = nn.utils.skip_init(kind, *args, device=like.weight.device, dtype=like.weight.dtype, **kwargs)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(float(initial_log_scale))
    return layer


class ScalePredictor(nn.Module):
    """torchvision's ``FastRCNNPredictor`` layers (``cls_score``, ``bbox_pred``: the same state-dict keys) plus
    ``log_scale``: one log-scale per class and coordinate, clamped to :data:`LOG_SCALE_RANGE`. ``log_scale`` starts
    with weights 0 and bias ``initial_log_scale`` and is built without drawing from the global random generator."""

    def __init__(self, cls_score: nn.Linear, bbox_pred: nn.Linear, initial_log_scale: float = 0.0) -> None:
        super().__init__()
        self.cls_score, self.bbox_pred = cls_score, bbox_pred
        self.log_scale = _log_scale_layer(nn.Linear, bbox_pred, initial_log_scale, bbox_pred.in_features,
                                          bbox_pred.out_features)

    @classmethod
    def from_predictor(cls, predictor: FastRCNNPredictor, initial_log_scale: float) -> "ScalePredictor":
        """A scale predictor over ``predictor``'s class and box layers (shared, not copied)."""
        if not isinstance(predictor, FastRCNNPredictor):
            raise TypeError(f"box_predictor must be a torchvision FastRCNNPredictor, got {type(predictor).__name__}")
        return cls(predictor.cls_score, predictor.bbox_pred, initial_log_scale)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x.flatten(start_dim=1)  # FastRCNNPredictor takes [N, C] or [N, C, 1, 1]
        return self.cls_score(x), self.bbox_pred(x), self.log_scale(x).clamp(*LOG_SCALE_RANGE)


class ScaleRPNHead(nn.Module):
    """torchvision's ``RPNHead`` layers (``conv``, ``cls_logits``, ``bbox_pred``: the same modules and state-dict
    keys) plus ``log_scale``, a 1×1 convolution giving one log-scale per anchor and coordinate, clamped to
    :data:`LOG_SCALE_RANGE`, laid out as ``bbox_pred``'s deltas. ``log_scale`` starts with weights 0 and bias
    ``initial_log_scale`` (the RPN stage's prediction scale) and is built without drawing random numbers. Returns
    (objectness, deltas, log-scales), one tensor per feature level each."""

    def __init__(self, conv: nn.Module, cls_logits: nn.Conv2d, bbox_pred: nn.Conv2d,
                 initial_log_scale: float = 0.0) -> None:
        super().__init__()
        self.conv, self.cls_logits, self.bbox_pred = conv, cls_logits, bbox_pred
        self.log_scale = _log_scale_layer(nn.Conv2d, bbox_pred, initial_log_scale, bbox_pred.in_channels,
                                          bbox_pred.out_channels, kernel_size=1)

    @classmethod
    def from_head(cls, head: RPNHead, initial_log_scale: float) -> "ScaleRPNHead":
        """A scale head over ``head``'s layers (shared, not copied)."""
        if not isinstance(head, RPNHead):
            raise TypeError(f"the RPN head must be a torchvision RPNHead, got {type(head).__name__}")
        return cls(head.conv, head.cls_logits, head.bbox_pred, initial_log_scale)

    def forward(self, x: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        logits, deltas, log_scales = [], [], []
        for feature in x:
            t = self.conv(feature)
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
            log_scales.append(self.log_scale(t).clamp(*LOG_SCALE_RANGE))
        return logits, deltas, log_scales


def variance_voting(kept_boxes: torch.Tensor, kept_labels: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor,
                    scales: torch.Tensor, sigma_t: float) -> torch.Tensor:
    """He et al.'s variance voting (CVPR 2019, Algorithm 1), per coordinate of (cx, cy, w, h): each kept xyxy box
    becomes Σ_i p_i·c_i/s_i² / Σ_i p_i/s_i² over the candidates i of its label with IoU > 0, where
    p_i = exp(−(1 − IoU_i)²/σ_t), c_i the candidate's coordinate and s_i its predicted scale. Returns xyxy boxes."""
    iou = box_ops.box_iou(kept_boxes, boxes)
    p = torch.exp(-(1 - iou) ** 2 / sigma_t) * ((iou > 0) & (kept_labels[:, None] == labels[None, :]))
    weights = p[:, :, None] / scales[None] ** 2
    voted = (weights * box_ops.box_convert(boxes, "xyxy", "cxcywh")[None]).sum(1) / weights.sum(1)
    return box_ops.box_convert(voted, "cxcywh", "xyxy")


class LearnedScaleRoIHeads(RoIHeads):
    """torchvision's box RoI heads with the ``detection`` stage's box coder and a learned scale per class and
    coordinate (boxes only). Training returns ``loss_classifier`` (cross-entropy) and ``loss_box_reg`` (the chosen
    :func:`uncertainty_loss`, Σ / #sampled RoIs); inference returns boxes, labels, scores, ``box_scales`` and
    ``box_target_scales``. Takes :class:`~labkit.detection.model.PaperRoIHeads`'s arguments plus ``uncertainty``;
    a plain ``FastRCNNPredictor`` is given its scale output (:meth:`ScalePredictor.from_predictor`)."""

    def __init__(self, *args: Any, box_loss: BoxLossConfig, uncertainty: UncertaintyConfig, **kwargs: Any) -> None:
        check_stage_normaliser("detection", box_loss)
        if not isinstance(uncertainty, UncertaintyConfig):
            raise TypeError(f"uncertainty must be an UncertaintyConfig, got {type(uncertainty).__name__}")
        start = initial_log_scale(box_loss, uncertainty.loss)
        super().__init__(*args, bbox_reg_weights=box_loss.box_coder_weights, **kwargs)
        self.box_loss, self.uncertainty = box_loss, uncertainty
        self.box_coder = make_box_coder(box_loss)
        self.label_scale = label_scale(box_loss)
        if self.box_predictor is not None and not isinstance(self.box_predictor, ScalePredictor):
            self.box_predictor = ScalePredictor.from_predictor(self.box_predictor, start)
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.int64))

    # -------------------------------------------------------------------------------------------------- training
    def anneal_weight(self) -> float:
        """w of (1 − w)·fixed + w·learned at this step (:func:`anneal_weight`)."""
        return anneal_weight(self.anneal_step, self.uncertainty.anneal_iters)

    def compute_loss(self, class_logits, box_regression, log_scales, labels, regression_targets):
        """(cross-entropy, Σ box loss / #sampled RoIs) on each positive RoI's ground-truth class."""
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        classification_loss = F.cross_entropy(class_logits, labels)
        positive = torch.where(labels > 0)[0]
        n, cls = labels.numel(), labels[positive]
        pred = box_regression.reshape(n, -1, 4)[positive, cls]
        log_scale = log_scales.reshape(n, -1, 4)[positive, cls]
        return classification_loss, learned_box_loss(pred, regression_targets[positive], log_scale, self.uncertainty,
                                                     self.label_scale, self.box_loss, self.anneal_weight(), n)

    # -------------------------------------------------------------------------------------------------- inference
    def pixel_scales(self, target_scales: torch.Tensor, pred_boxes: torch.Tensor, proposals: torch.Tensor
                     ) -> torch.Tensor:
        """Target-unit scales [N, C, 4] → pixel scales of (cx, cy, w, h): times the decoder's derivative at the
        prediction, σ·w_a for the centre, σ·ŵ (log size target) or σ·w_a (linear) for the size."""
        wx, wy, ww, wh = self.box_coder.weights
        wa = (proposals[:, 2] - proposals[:, 0])[:, None]
        ha = (proposals[:, 3] - proposals[:, 1])[:, None]
        if self.box_loss.size_target == LINEAR:
            sw, sh = wa, ha
        else:
            sw, sh = pred_boxes[..., 2] - pred_boxes[..., 0], pred_boxes[..., 3] - pred_boxes[..., 1]
        factor = torch.stack(torch.broadcast_tensors(wa / wx, ha / wy, sw / ww, sh / wh), dim=-1)
        return target_scales * factor

    def postprocess_with_scales(self, class_logits, box_regression, log_scales, proposals, image_shapes):
        """torchvision's ``postprocess_detections`` (the same boxes, scores and labels, in the same order) that also
        carries each detection's scales through score filtering, NMS and top-k by the index of its (RoI, class),
        and applies variance voting when asked. Returns one dict per image."""
        num_classes = class_logits.shape[-1]
        per_image = [len(p) for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals)
        target_scales = log_scales.exp().reshape(len(pred_boxes), num_classes, 4)
        pixel = self.pixel_scales(target_scales, pred_boxes, torch.cat(proposals, dim=0))
        scores_all = F.softmax(class_logits, -1)
        out = []
        for boxes, scores, tscales, pscales, shape in zip(pred_boxes.split(per_image), scores_all.split(per_image),
                                                          target_scales.split(per_image), pixel.split(per_image),
                                                          image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)
            labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
            # background dropped, every class prediction a separate instance (as torchvision)
            cols = [boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1),
                    pscales[:, 1:].reshape(-1, 4), tscales[:, 1:].reshape(-1, 4)]
            index = torch.where(cols[1] > self.score_thresh)[0]  # low scores out
            cols = [c[index] for c in cols]
            index = box_ops.remove_small_boxes(cols[0], min_size=1e-2)  # empty boxes out
            cols = [c[index] for c in cols]
            keep = box_ops.batched_nms(cols[0], cols[1], cols[2], self.nms_thresh)[: self.detections_per_img]
            kept = [c[keep] for c in cols]
            if self.uncertainty.var_voting and len(keep):
                voted = variance_voting(kept[0], kept[2], cols[0], cols[2], cols[3], self.uncertainty.var_voting_sigma)
                kept[0] = box_ops.clip_boxes_to_image(voted, shape)
            out.append(dict(zip(("boxes", "scores", "labels", _BOX_SCALES, _TARGET_SCALES), kept)))
        return out

    def forward(self, features, proposals, image_shapes, targets=None):
        # as PaperRoIHeads: torchvision's RoIHeads.forward unpacks two predictor outputs and calls the module-level
        # fastrcnn_loss, so the box branch (sample, pool, head, predictor, loss / postprocess) is restated here
        if self.training:
            check_training_targets(targets)
            proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression, log_scales = self.box_predictor(box_features)
        if not self.training:
            return self.postprocess_with_scales(class_logits, box_regression, log_scales, proposals, image_shapes), {}
        loss_classifier, loss_box_reg = self.compute_loss(class_logits, box_regression, log_scales, labels,
                                                          regression_targets)
        self.anneal_step += 1
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}


class ScaleRescalingTransform(GeneralizedRCNNTransform):
    """torchvision's ``GeneralizedRCNNTransform`` whose ``postprocess`` also maps ``box_scales`` back to the
    original image: (cx, w) scales by its width ratio, (cy, h) by its height ratio, the ratios torchvision's
    ``resize_boxes`` uses (torchvision rescales ``boxes``, masks and keypoints only)."""

    @classmethod
    def like(cls, transform: GeneralizedRCNNTransform) -> "ScaleRescalingTransform":
        """The same transform (sizes, normalisation, padding) as ``transform``, read from its public attributes."""
        return cls(transform.min_size, transform.max_size, transform.image_mean, transform.image_std,
                   size_divisible=transform.size_divisible, fixed_size=transform.fixed_size)

    def postprocess(self, result, image_shapes, original_image_sizes):
        result = super().postprocess(result, image_shapes, original_image_sizes)
        if self.training:
            return result
        for pred, size, original in zip(result, image_shapes, original_image_sizes):
            if _BOX_SCALES in pred:
                scales = pred[_BOX_SCALES]
                rh, rw = (torch.tensor(o, dtype=torch.float32, device=scales.device)
                          / torch.tensor(s, dtype=torch.float32, device=scales.device)
                          for o, s in zip(original, size))
                pred[_BOX_SCALES] = scales * torch.stack([rw, rh, rw, rh]).to(scales.dtype)
        return result
