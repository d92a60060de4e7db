"""Faster R-CNN builders with the paper's per-stage box losses (torchvision's RPN, RoI heads, NMS and RoI align).

:class:`PaperRPN` and :class:`PaperRoIHeads` subclass torchvision's ``RegionProposalNetwork`` and ``RoIHeads``:
only the box coder (σ through weights 1/σ, log or linear size target) and the box-regression term of the loss
change, both from a :class:`~labkit.detection.losses.BoxLossConfig`; sampling, matching, classification losses
and inference stay torchvision's.

Models (``MODEL_NAMES``):

- ``"lab"``: a small conv/BN/ReLU backbone trained from scratch, one stride-8 feature map, for 128–320 px CPU runs;
- ``"vgg16"``: the paper's backbone (VGG-16 conv5_3, stride 16, fc6/fc7 head), as in Section 6;
- ``"resnet50_fpn"``: torchvision's ResNet-50 FPN detector, for GPUs.

No weights are downloaded: ``weights`` is a local state dict (or a lab checkpoint) loaded with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from labkit.detection.losses import BoxLossConfig, BoxLosses, box_regression_loss, make_box_coder, resolve_box_losses
from labkit.detection.roi_align import FastMultiScaleRoIAlign

__all__ = ["MODEL_NAMES", "DEFAULT_IMAGE_SIZE", "PaperRPN", "PaperRoIHeads", "build_model", "load_weights"]

MODEL_NAMES = ("lab", "resnet50_fpn", "vgg16")
#: shorter image side fed to each model when ``image_size`` is not given (vgg16: py-faster-rcnn's 600 px)
DEFAULT_IMAGE_SIZE = {"lab": 160, "resnet50_fpn": 800, "vgg16": 600}


def _stage_box_loss(pred: torch.Tensor, target: torch.Tensor, config: BoxLossConfig, normaliser: int) -> torch.Tensor:
    # float32 even under autocast: H_α and D_{α,β} on half-precision residuals lose the small-residual branch
    residual = pred.float() - target.float()
    return box_regression_loss(residual, config).sum() / max(normaliser, 1)


class PaperRPN(RegionProposalNetwork):
    """torchvision's region proposal network with the ``rpn`` stage's box coder and box loss.

    ``compute_loss`` samples anchors as torchvision does and returns (objectness loss, Σ box loss / #sampled)."""

    def __init__(self, *args: Any, box_loss: BoxLossConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.box_loss = box_loss
        self.box_coder = make_box_coder(box_loss)

    def compute_loss(self, objectness, pred_bbox_deltas, labels, regression_targets):
        sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
        sampled_pos = torch.where(torch.cat(sampled_pos, dim=0))[0]
        sampled_neg = torch.where(torch.cat(sampled_neg, dim=0))[0]
        sampled = torch.cat([sampled_pos, sampled_neg], dim=0)
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        box_loss = _stage_box_loss(
            pred_bbox_deltas[sampled_pos], regression_targets[sampled_pos], self.box_loss, sampled.numel()
        )
        objectness_loss = F.binary_cross_entropy_with_logits(objectness.flatten()[sampled], labels[sampled])
        return objectness_loss, box_loss


class PaperRoIHeads(RoIHeads):
    """torchvision's box RoI heads with the ``detection`` stage's box coder and box loss (boxes only: no masks or
    keypoints). Training returns ``loss_classifier`` (cross-entropy) and ``loss_box_reg`` (Σ box loss / #sampled
    RoIs, on the regression of each positive RoI's ground-truth class)."""

    def __init__(self, *args: Any, box_loss: BoxLossConfig, **kwargs: Any) -> None:
        super().__init__(*args, bbox_reg_weights=box_loss.box_coder_weights, **kwargs)
        self.box_loss = box_loss
        self.box_coder = make_box_coder(box_loss)

    def compute_loss(self, class_logits, box_regression, labels, regression_targets):
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        classification_loss = F.cross_entropy(class_logits, labels)
        positive = torch.where(labels > 0)[0]
        box_regression = box_regression.reshape(class_logits.shape[0], -1, 4)
        box_loss = _stage_box_loss(
            box_regression[positive, labels[positive]], regression_targets[positive], self.box_loss, labels.numel()
        )
        return classification_loss, box_loss

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            if targets is None:
                raise ValueError("targets must be given in training mode")
            for t in targets:
                if not t["boxes"].is_floating_point():
                    raise TypeError(f"target boxes must be floating point, got {t['boxes'].dtype}")
                if t["labels"].dtype != torch.int64:
                    raise TypeError(f"target labels must be int64, got {t['labels'].dtype}")
            proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        if self.training:
            loss_classifier, loss_box_reg = self.compute_loss(class_logits, box_regression, labels, regression_targets)
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        return [{"boxes": b, "labels": l, "scores": s} for b, l, s in zip(boxes, labels, scores)], {}


def _with_paper_losses(model: FasterRCNN, losses: BoxLosses) -> FasterRCNN:
    """Swap the model's RPN and RoI heads for the paper's, keeping every sub-module and setting as built."""
    rpn, roi = model.rpn, model.roi_heads
    model.rpn = PaperRPN(
        rpn.anchor_generator,
        rpn.head,
        rpn.proposal_matcher.high_threshold,
        rpn.proposal_matcher.low_threshold,
        rpn.fg_bg_sampler.batch_size_per_image,
        rpn.fg_bg_sampler.positive_fraction,
        dict(rpn._pre_nms_top_n),
        dict(rpn._post_nms_top_n),
        rpn.nms_thresh,
        score_thresh=rpn.score_thresh,
        box_loss=losses.rpn,
    )
    if roi.has_mask() or roi.has_keypoint():
        raise ValueError("the paper's RoI heads handle boxes only; masks and keypoints are not supported")
    model.roi_heads = PaperRoIHeads(
        roi.box_roi_pool,
        roi.box_head,
        roi.box_predictor,
        roi.proposal_matcher.high_threshold,
        roi.proposal_matcher.low_threshold,
        roi.fg_bg_sampler.batch_size_per_image,
        roi.fg_bg_sampler.positive_fraction,
        score_thresh=roi.score_thresh,
        nms_thresh=roi.nms_thresh,
        detections_per_img=roi.detections_per_img,
        box_loss=losses.detection,
    )
    return model


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class LabBackbone(nn.Sequential):
    """Six conv/BN/ReLU layers, three of stride 2: one stride-8 feature map with ``out_channels`` channels."""

    def __init__(self, width: int = 16, out_channels: int = 64) -> None:
        layers = (
            _conv_bn_relu(3, width, 2)
            + _conv_bn_relu(width, width)
            + _conv_bn_relu(width, 2 * width, 2)
            + _conv_bn_relu(2 * width, 2 * width)
            + _conv_bn_relu(2 * width, out_channels, 2)
            + _conv_bn_relu(out_channels, out_channels)
        )
        super().__init__(*layers)
        self.out_channels = out_channels


def _lab(num_classes: int, image_size: int) -> FasterRCNN:
    backbone = LabBackbone()
    # anchors from 1/16 to 1/2 of the image side: the synthetic objects' range
    sizes = tuple(max(4, round(image_size * f)) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2))
    anchors = AnchorGenerator(sizes=(sizes,), aspect_ratios=((0.5, 1.0, 2.0),))
    # one sample per bin: RoI align's CPU backward is the largest single cost of a step; labkit's exact separable
    # RoI align (labkit.detection.roi_align) takes over on CPU where it is faster, torchvision's op elsewhere
    pool = FastMultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=1)
    representation = 256
    return FasterRCNN(
        backbone,
        min_size=image_size,
        max_size=image_size,
        rpn_anchor_generator=anchors,
        box_roi_pool=pool,
        box_head=TwoMLPHead(backbone.out_channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, num_classes),
        # CPU budget: fewer proposals and sampled RoIs than the ImageNet-sized defaults
        rpn_pre_nms_top_n_train=600,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_train=300,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=64,
        box_score_thresh=0.01,
    )


class _VGG16Features(nn.Sequential):
    def __init__(self) -> None:
        from torchvision.models import vgg16

        super().__init__(*list(vgg16(weights=None).features)[:-1])  # up to conv5_3 + ReLU, stride 16
        self.out_channels = 512


def _vgg16(num_classes: int, image_size: int) -> FasterRCNN:
    backbone = _VGG16Features()
    anchors = AnchorGenerator(sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = FastMultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    return FasterRCNN(
        backbone,
        min_size=image_size,
        max_size=round(image_size * 1000 / 600),
        rpn_anchor_generator=anchors,
        box_roi_pool=pool,
        box_head=TwoMLPHead(512 * 7 * 7, 4096),  # fc6, fc7
        box_predictor=FastRCNNPredictor(4096, num_classes),
    )


def _resnet50_fpn(num_classes: int, image_size: int) -> FasterRCNN:
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    return fasterrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes,
        min_size=image_size,
        max_size=round(image_size * 1333 / 800),
        box_roi_pool=FastMultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2),
    )


_BUILDERS = {"lab": _lab, "vgg16": _vgg16, "resnet50_fpn": _resnet50_fpn}


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a local state dict (or a training checkpoint holding one under ``"model"``) into ``model``, strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights: no file at {path} (expected a state dict saved with torch.save)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"weights: {path} holds a {type(state).__name__}, expected a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"weights: {path} does not fit this model: {exc}") from None
    return model


def build_model(
    name: str,
    num_classes: int,
    box_loss: Any = "implemented",
    image_size: int | None = None,
    weights: str | Path | None = None,
) -> FasterRCNN:
    """A torchvision ``FasterRCNN`` named ``name`` (one of ``MODEL_NAMES``) with the paper's per-stage box losses.

    ``num_classes`` counts the background, as in torchvision (K object classes → K + 1). ``box_loss`` is a preset
    name of ``labkit.interpret.PRESETS``, a :class:`~labkit.detection.losses.BoxLosses` or a (rpn, detection)
    pair of :class:`~labkit.detection.losses.BoxLossConfig`. ``image_size`` is the shorter side the model resizes
    images to (default ``DEFAULT_IMAGE_SIZE[name]``). ``weights``: a local state dict to load.
    """
    if name not in _BUILDERS:
        raise ValueError(f"name must be one of {MODEL_NAMES}, got name={name!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2 (object classes + background), got {num_classes!r}")
    size = DEFAULT_IMAGE_SIZE[name] if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"image_size must be an int >= 32 (pixels), got {image_size!r}")
    losses = resolve_box_losses(box_loss)
    model = _with_paper_losses(_BUILDERS[name](num_classes, size), losses)
    if weights is not None:
        load_weights(model, weights)
    return model
