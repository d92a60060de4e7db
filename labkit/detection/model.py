"""Faster R-CNN builders with the paper's per-stage box losses (torchvision's RPN, RoI heads, NMS and RoI align).

:class:`PaperRPN` and :class:`PaperRoIHeads` subclass torchvision's ``RegionProposalNetwork`` and ``RoIHeads``:
only the box coder (σ through weights 1/σ, eqs. 38 and 44; log or linear size target, eqs. 43 and 93–94) and the
box-regression term of the loss (eq. 37 and its variants) change, both from a
:class:`~labkit.detection.losses.BoxLossConfig`; sampling, matching, classification losses and inference stay
torchvision's. :func:`paper_faster_rcnn` builds torchvision's ``FasterRCNN(backbone, **options)`` and gives the
paper's heads the same constructor arguments, so at torchvision's own box-loss settings
(``labkit.interpret.exports.TORCHVISION_DEFAULTS``) the model computes what stock torchvision computes
(tests/test_detection_model.py holds the losses and gradients equal in float64).

Models (``MODEL_NAMES``):

- ``"lab"``: a small conv/BN/ReLU backbone trained from scratch, one stride-8 feature map, for 128–320 px CPU runs;
- ``"vgg16"``: the paper's backbone (VGG-16 conv5_3, stride 16, fc6/fc7 head), as in Section 6;
- ``"resnet50_fpn"``: torchvision's ResNet-50 FPN detector, for GPUs.

Starting weights: ``backbone_weights`` (:mod:`labkit.detection.backbones`: ``"none"``, ``"imagenet"`` through
torchvision's weights API and the torch hub cache, or a local state dict) and ``weights``, a whole-model state dict
(or a lab checkpoint) read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, concat_box_prediction_layers

from labkit.detection.backbones import (NONE, check_backbone_weights, lab_backbone, read_state_dict,
                                        resnet50_fpn_backbone, vgg16_parts)
from labkit.detection.data import check_training_targets
from labkit.detection.losses import (IOU_FORMS, LOCATIONS, BoxLossConfig, box_iou_loss, box_regression_loss,
                                     check_stage_form, check_stage_normaliser, make_box_coder, resolve_box_losses)
from labkit.detection.roi_align import FastMultiScaleRoIAlign
from labkit.detection.uncertainty import (LearnedScaleRoIHeads, ScaleRescalingTransform, ScaleRPNHead,
                                          UncertaintyConfig, anneal_weight, initial_log_scale, label_scale,
                                          learned_box_loss)

__all__ = ["MODEL_NAMES", "DEFAULT_IMAGE_SIZE", "PaperRPN", "LearnedScaleRPN", "PaperRoIHeads", "paper_faster_rcnn", "model_parts",
           "build_model", "load_weights"]

MODEL_NAMES = ("lab", "resnet50_fpn", "vgg16")
#: shorter image side fed to each model when ``image_size`` is not given (vgg16: py-faster-rcnn's 600 px)
DEFAULT_IMAGE_SIZE = {"lab": 160, "resnet50_fpn": 800, "vgg16": 600}
#: torchvision's own defaults of every FasterRCNN argument (read from its signature, not copied)
_FASTER_RCNN_DEFAULTS = {name: p.default for name, p in inspect.signature(FasterRCNN.__init__).parameters.items()
                         if p.default is not inspect.Parameter.empty}


def _stage_box_loss(pred: torch.Tensor, target: torch.Tensor, config: BoxLossConfig, normaliser: int) -> torch.Tensor:
    # at least float32 even under autocast: H_α and D_{α,β} on half-precision residuals lose the small-residual
    # branch; float64 stays float64 (the torchvision equivalence test runs there)
    dtype = torch.promote_types(pred.dtype, torch.float32)
    residual = pred.to(dtype) - target.to(dtype)
    return box_regression_loss(residual, config).sum() / max(normaliser, 1)


def _stage_iou_loss(pred: torch.Tensor, target: torch.Tensor, reference: torch.Tensor, coder, config: BoxLossConfig,
                    normaliser: int) -> torch.Tensor:
    # an IoU form compares boxes, not σ-scaled deltas: decode both with the stage's coder against the reference boxes
    # (decode(encode(g, r), r) = g, so the decoded target is the matched ground truth, as in torchvision's
    # _box_loss and mmdetection's reg_decoded_bbox)
    dtype = torch.promote_types(pred.dtype, torch.float32)
    reference = reference.to(dtype)
    boxes, target_boxes = (coder.decode_single(d.to(dtype), reference) for d in (pred, target))
    return box_iou_loss(boxes, target_boxes, config).sum() / max(normaliser, 1)


class PaperRPN(RegionProposalNetwork):
    """torchvision's region proposal network with the ``rpn`` stage's box coder and box loss.

    ``compute_loss`` (torchvision's own seam, called from ``RegionProposalNetwork.forward``) samples anchors as
    torchvision does and returns (objectness loss, Σ box loss / N): eq. 37 (or its variants) summed over the
    positive sampled anchors. N (:meth:`box_loss_normaliser`) is the number of sampled anchors, as in torchvision's
    smooth-L1 term, or with ``box_loss.normaliser == "locations"`` the number of anchor locations of the batch's
    feature maps (N_reg of the Faster R-CNN publication's eq. 1)."""

    def __init__(self, *args: Any, box_loss: BoxLossConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.box_loss = check_stage_form("rpn", box_loss)  # IoU forms: the detection head only
        # RegionProposalNetwork takes no box-coder argument: it always builds BoxCoder((1, 1, 1, 1))
        self.box_coder = make_box_coder(box_loss)

    def anchor_locations(self, labels: list[torch.Tensor]) -> int:
        """Σ over the batch's images of its anchor locations: anchors per image / anchors per location, which is
        Σ_levels H·W of the feature maps per image. Images of a batch share the padded size, so padding counts
        (py-faster-rcnn trained one image per batch: there it is that image's H·W)."""
        per_location = set(self.anchor_generator.num_anchors_per_location())
        if len(per_location) != 1:  # torchvision's RPNHead predicts the same number at every level
            raise ValueError(f"normaliser 'locations' needs the same number of anchors per location at every level, "
                             f"got {self.anchor_generator.num_anchors_per_location()}")
        (a,) = per_location
        total = 0
        for image_labels in labels:
            anchors = image_labels.numel()
            if anchors % a:
                raise ValueError(f"{anchors} anchors are not a whole number of locations of {a} anchors each")
            total += anchors // a
        return total

    def box_loss_normaliser(self, labels: list[torch.Tensor], sampled: int) -> int:
        """What the summed box loss is divided by: ``sampled`` (the sampled anchors of the batch) or, for
        normaliser ``"locations"``, :meth:`anchor_locations`."""
        return self.anchor_locations(labels) if self.box_loss.normaliser == LOCATIONS else sampled

    def sample_anchors(self, labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """torchvision's positive/negative anchor sampling: (positive indices, all sampled indices) into the
        batch's concatenated anchors, and the box loss's normaliser (:meth:`box_loss_normaliser`)."""
        sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
        sampled_pos = torch.where(torch.cat(sampled_pos, dim=0))[0]
        sampled_neg = torch.where(torch.cat(sampled_neg, dim=0))[0]
        sampled = torch.cat([sampled_pos, sampled_neg], dim=0)
        return sampled_pos, sampled, self.box_loss_normaliser(labels, sampled.numel())

    def compute_loss(self, objectness, pred_bbox_deltas, labels, regression_targets):
        positive, sampled, normaliser = self.sample_anchors(labels)
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        box_loss = _stage_box_loss(pred_bbox_deltas[positive], regression_targets[positive], self.box_loss, normaliser)
        objectness_loss = F.binary_cross_entropy_with_logits(objectness.flatten()[sampled], labels[sampled])
        return objectness_loss, box_loss


class LearnedScaleRPN(PaperRPN):
    """:class:`PaperRPN` whose head also predicts a log-scale per anchor and coordinate
    (:class:`~labkit.detection.uncertainty.ScaleRPNHead`; a plain ``RPNHead`` is given one) and whose box loss is
    the learned-scale loss of :mod:`labkit.detection.uncertainty` on the RPN stage's label scale, Σ over the
    positive sampled anchors / the stage's normaliser, with the same annealing as the detection head. Proposals are
    torchvision's: the scales shape training and are read back by :meth:`anchor_scales`."""

    def __init__(self, *args: Any, box_loss: BoxLossConfig, uncertainty: UncertaintyConfig, **kwargs: Any) -> None:
        if not isinstance(uncertainty, UncertaintyConfig):
            raise TypeError(f"uncertainty must be an UncertaintyConfig, got {type(uncertainty).__name__}")
        start = initial_log_scale(box_loss, uncertainty.loss)  # per-coordinate form and λ > 0, before building
        super().__init__(*args, box_loss=box_loss, **kwargs)
        self.uncertainty = uncertainty
        self.label_scale = label_scale(box_loss)
        if not isinstance(self.head, ScaleRPNHead):
            self.head = ScaleRPNHead.from_head(self.head, start)
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.int64))

    def anneal_weight(self) -> float:
        """w of (1 − w)·fixed + w·learned at this step (:func:`~labkit.detection.uncertainty.anneal_weight`)."""
        return anneal_weight(self.anneal_step, self.uncertainty.anneal_iters)

    def compute_loss(self, objectness, pred_bbox_deltas, log_scales, labels, regression_targets):
        """(objectness loss, learned-scale box loss) over torchvision's sampled anchors."""
        positive, sampled, normaliser = self.sample_anchors(labels)
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        box_loss = learned_box_loss(pred_bbox_deltas[positive], regression_targets[positive], log_scales[positive],
                                    self.uncertainty, self.label_scale, self.box_loss, self.anneal_weight(),
                                    normaliser)
        objectness_loss = F.binary_cross_entropy_with_logits(objectness.flatten()[sampled], labels[sampled])
        return objectness_loss, box_loss

    def _predict(self, images, features):
        # the head on every level, flattened as torchvision does (log-scales laid out as the deltas)
        features = list(features.values())
        objectness, deltas, log_scales = self.head(features)
        anchors = self.anchor_generator(images, features)
        per_level = [o[0].shape[0] * o[0].shape[1] * o[0].shape[2] for o in objectness]
        _, log_scales = concat_box_prediction_layers(objectness, log_scales)
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        return objectness, deltas, log_scales, anchors, per_level

    def anchor_scales(self, images, features, targets) -> torch.Tensor:
        """The learned scales e^u (σ-scaled target units of the RPN stage) at every anchor the RPN's matcher makes
        positive for ``targets`` (IoU ≥ its foreground threshold, or an image's best anchor): [P, 4] (x, y, w, h)."""
        _, _, log_scales, anchors, _ = self._predict(images, features)
        labels, _ = self.assign_targets_to_anchors(anchors, targets)
        return log_scales[torch.cat(labels) == 1].exp()

    def forward(self, images, features, targets=None):
        # torchvision's RegionProposalNetwork.forward unpacks two head outputs: restated with the third, the
        # proposals made exactly as there (held to PaperRPN's by the start-equivalence test)
        objectness, deltas, log_scales, anchors, per_level = self._predict(images, features)
        proposals = self.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes, _ = self.filter_proposals(proposals, objectness, images.image_sizes, per_level)
        if not self.training:
            return boxes, {}
        if targets is None:
            raise ValueError("targets should not be None")
        labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
        regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
        loss_objectness, loss_box = self.compute_loss(objectness, deltas, log_scales, labels, regression_targets)
        self.anneal_step += 1
        return boxes, {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}


class PaperRoIHeads(RoIHeads):
    """torchvision's box RoI heads with the ``detection`` stage's box coder and box loss (boxes only: no masks or
    keypoints). Training returns ``loss_classifier`` (cross-entropy) and ``loss_box_reg`` (Σ box loss / #sampled
    RoIs, on the regression of each positive RoI's ground-truth class, eq. 37 or its variants, or an IoU form on the
    decoded boxes); inference is torchvision's ``RoIHeads.forward`` itself."""

    def __init__(self, *args: Any, box_loss: BoxLossConfig, **kwargs: Any) -> None:
        check_stage_normaliser("detection", box_loss)  # RoIs have no anchor locations to count
        super().__init__(*args, bbox_reg_weights=box_loss.box_coder_weights, **kwargs)
        self.box_loss = box_loss
        self.box_coder = make_box_coder(box_loss)  # the weights above, and the linear size target when chosen

    def compute_loss(self, class_logits, box_regression, labels, regression_targets, proposals=None):
        """What torchvision's ``fastrcnn_loss`` computes, with the stage's box loss in place of smooth-L1(β = 1/9).
        An IoU form needs the sampled ``proposals`` (per image, as ``labels``) to decode the deltas."""
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        classification_loss = F.cross_entropy(class_logits, labels)
        positive = torch.where(labels > 0)[0]
        box_regression = box_regression.reshape(class_logits.shape[0], -1, 4)
        pred, target = box_regression[positive, labels[positive]], regression_targets[positive]
        if self.box_loss.form in IOU_FORMS:
            if proposals is None:
                raise ValueError(f"form {self.box_loss.form!r} decodes the deltas: compute_loss needs the proposals")
            reference = torch.cat(proposals, dim=0)[positive]
            return classification_loss, _stage_iou_loss(pred, target, reference, self.box_coder, self.box_loss,
                                                        labels.numel())
        return classification_loss, _stage_box_loss(pred, target, self.box_loss, labels.numel())

    def forward(self, features, proposals, image_shapes, targets=None):
        # torchvision computes the training loss in the module-level fastrcnn_loss, called from inside
        # RoIHeads.forward: there is no method or argument to override it, and patching the module global would
        # change every RoIHeads in the process. So inference is super().forward and only the training branch (box
        # part: sample, pool, head, predictor, loss) is restated here, held to torchvision's by the equivalence test.
        if not self.training:
            return super().forward(features, proposals, image_shapes, targets)
        check_training_targets(targets)
        proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        loss_classifier, loss_box_reg = self.compute_loss(class_logits, box_regression, labels, regression_targets,
                                                          proposals)
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}


def paper_faster_rcnn(backbone: nn.Module, box_loss: Any, uncertainty: UncertaintyConfig | None = None,
                      **options: Any) -> FasterRCNN:
    """torchvision's ``FasterRCNN(backbone, **options)`` with :class:`PaperRPN` and :class:`PaperRoIHeads` in place
    of its RPN and RoI heads, built from the same constructor arguments (``options`` over torchvision's defaults)
    and the sub-modules torchvision made or was given (anchor generator, RPN head, RoI pool, box head, predictor).

    ``box_loss``, ``uncertainty``: as for :func:`build_model`. The detection stage's σ set the RoI box coder, so
    ``bbox_reg_weights`` is not an option here.
    """
    if "bbox_reg_weights" in options:
        raise ValueError("bbox_reg_weights: the detection stage's σ set the RoI box coder's weights (1/σ, eq. 44); "
                         "pass them through box_loss")
    losses = resolve_box_losses(box_loss)
    # FasterRCNN accepts no RPN or RoI-heads instance or class: let it build its own (and any default sub-modules),
    # then make the paper's from the same arguments, read from what was passed, never from private attributes
    model = FasterRCNN(backbone, **options)
    o = {**_FASTER_RCNN_DEFAULTS, **options}
    stock_rpn, stock_roi = model.rpn, model.roi_heads
    learned = {} if uncertainty is None else {"uncertainty": uncertainty}  # labkit.detection.uncertainty
    model.rpn = (LearnedScaleRPN if learned and uncertainty.rpn else PaperRPN)(
        stock_rpn.anchor_generator, stock_rpn.head, o["rpn_fg_iou_thresh"], o["rpn_bg_iou_thresh"],
        o["rpn_batch_size_per_image"], o["rpn_positive_fraction"],
        dict(training=o["rpn_pre_nms_top_n_train"], testing=o["rpn_pre_nms_top_n_test"]),
        dict(training=o["rpn_post_nms_top_n_train"], testing=o["rpn_post_nms_top_n_test"]),
        o["rpn_nms_thresh"], score_thresh=o["rpn_score_thresh"], box_loss=losses.rpn,
        **(learned if learned and uncertainty.rpn else {}),
    )
    model.roi_heads = (LearnedScaleRoIHeads if learned else PaperRoIHeads)(
        stock_roi.box_roi_pool, stock_roi.box_head, stock_roi.box_predictor, o["box_fg_iou_thresh"],
        o["box_bg_iou_thresh"], o["box_batch_size_per_image"], o["box_positive_fraction"],
        score_thresh=o["box_score_thresh"], nms_thresh=o["box_nms_thresh"],
        detections_per_img=o["box_detections_per_img"], box_loss=losses.detection, **learned,
    )
    if learned:  # torchvision's postprocess rescales boxes only; this one rescales box_scales too
        model.transform = ScaleRescalingTransform.like(model.transform)
    return model


def _lab(num_classes: int, image_size: int, weights: str, load: bool) -> tuple[nn.Module, dict[str, Any]]:
    backbone = lab_backbone(weights, load)
    # anchors from 1/16 to 1/2 of the image side: the synthetic objects' range
    sizes = tuple(max(4, round(image_size * f)) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2))
    # one sample per bin: RoI align's CPU backward is the largest single cost of a step; labkit's exact separable
    # RoI align (labkit.detection.roi_align) takes over on CPU where it is faster, torchvision's op elsewhere
    representation = 256
    return backbone, dict(
        min_size=image_size,
        max_size=image_size,
        rpn_anchor_generator=AnchorGenerator(sizes=(sizes,), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=FastMultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=1),
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


def _vgg16(num_classes: int, image_size: int, weights: str, load: bool) -> tuple[nn.Module, dict[str, Any]]:
    backbone, fc6_fc7 = vgg16_parts(weights, load)
    return backbone, dict(
        min_size=image_size,
        max_size=round(image_size * 1000 / 600),
        rpn_anchor_generator=AnchorGenerator(sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=FastMultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2),
        box_head=fc6_fc7,
        box_predictor=FastRCNNPredictor(4096, num_classes),
    )


def _resnet50_fpn(num_classes: int, image_size: int, weights: str, load: bool) -> tuple[nn.Module, dict[str, Any]]:
    # what torchvision's fasterrcnn_resnet50_fpn passes to FasterRCNN, with labkit's RoI align
    return resnet50_fpn_backbone(weights, load), dict(
        num_classes=num_classes,
        min_size=image_size,
        max_size=round(image_size * 1333 / 800),
        box_roi_pool=FastMultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2),
    )


_BUILDERS = {"lab": _lab, "vgg16": _vgg16, "resnet50_fpn": _resnet50_fpn}


def model_parts(name: str, num_classes: int, image_size: int | None = None, backbone_weights: str = NONE,
                load_backbone: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The backbone and ``FasterRCNN`` keyword arguments of model ``name``: ``FasterRCNN(backbone, **options)`` is
    torchvision's stock detector of that architecture, :func:`paper_faster_rcnn` the paper's.
    ``load_backbone=False`` keeps the pretrained layout of ``backbone_weights`` but reads no file."""
    if name not in _BUILDERS:
        raise ValueError(f"name must be one of {MODEL_NAMES}, got name={name!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2 (object classes + background), got {num_classes!r}")
    size = DEFAULT_IMAGE_SIZE[name] if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"image_size must be an int >= 32 (pixels), got {image_size!r}")
    return _BUILDERS[name](num_classes, size, check_backbone_weights(name, backbone_weights), load_backbone)


def _learned_scale_key(key: str) -> bool:
    # what a model with learned scales has beyond the fixed-scale model: the log-scale layers and annealing steps
    return ".log_scale." in key or key.endswith("anneal_step")


def load_weights(model: nn.Module, weights: str | Path | Mapping[str, Any]) -> nn.Module:
    """Load a whole-model state dict — a mapping, or a local file holding one or a training checkpoint with one
    under ``"model"`` — into ``model``, strictly, with one allowance: a model with learned scales
    (:mod:`labkit.detection.uncertainty`) takes a fixed-scale model's weights, its log-scale layers and annealing
    steps keeping their start (zero weights, the stage's prediction scale), so that it starts as that trained
    fixed-α model. Every other missing or unexpected key is an error."""
    source = "the given state dict" if isinstance(weights, Mapping) else str(weights)
    state = weights if isinstance(weights, Mapping) else read_state_dict(weights)
    if "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]
    # learned-scale keys the state lacks (a fixed model's, or a run whose RPN learned no scale) keep their start
    state = {**{k: v for k, v in model.state_dict().items() if _learned_scale_key(k) and k not in state}, **state}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"weights: {source} does not fit this model: {exc}") from None
    return model


def build_model(
    name: str,
    num_classes: int,
    box_loss: Any = "implemented",
    image_size: int | None = None,
    weights: str | Path | Mapping[str, Any] | None = None,
    backbone_weights: str = NONE,
    uncertainty: UncertaintyConfig | None = None,
) -> FasterRCNN:
    """A torchvision ``FasterRCNN`` named ``name`` (one of ``MODEL_NAMES``) with the paper's per-stage box losses.

    ``num_classes`` counts the background, as in torchvision (K object classes → K + 1). ``box_loss`` is a preset
    name of ``labkit.interpret.PRESETS``, a :class:`~labkit.detection.losses.BoxLosses` or a (rpn, detection)
    pair of :class:`~labkit.detection.losses.BoxLossConfig`. ``image_size`` is the shorter side the model resizes
    images to (default ``DEFAULT_IMAGE_SIZE[name]``). ``backbone_weights``: ``"none"``, ``"imagenet"`` or a local
    state dict of the backbone (:mod:`labkit.detection.backbones`). ``weights``: a whole-model state dict (path or
    mapping) loaded last; it replaces every parameter, so ``backbone_weights`` then only sets the layout (which
    layers stay fixed) and no backbone file is read. ``uncertainty``: None (fixed scales, the paper's model) or a
    :class:`~labkit.detection.uncertainty.UncertaintyConfig`: the RoI heads then learn a scale per box coordinate
    and detections carry ``box_scales`` (:mod:`labkit.detection.uncertainty`).
    """
    losses = resolve_box_losses(box_loss)  # a bad setting fails before a backbone is built or downloaded
    backbone, options = model_parts(name, num_classes, image_size, backbone_weights, load_backbone=weights is None)
    model = paper_faster_rcnn(backbone, losses, uncertainty=uncertainty, **options)
    if weights is not None:
        load_weights(model, weights)
    return model
