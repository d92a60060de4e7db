"""Regions of interest and labels of the head study, drawn and cached once.

- training and validation RoIs are ground-truth boxes jittered to IoU ≥ 0.5
  (:func:`labkit.detection.oracle.jitter_boxes`: the positives torchvision's ``RoIHeads`` sampler passes to the box
  regressor; the oracle localization of every evaluation uses the same RoIs).
- :func:`encode`: the regression target of a RoI under the linear size target (eqs. 32, 93–94, σ = 1): t_x =
  (x* − x_a)/w_a, t_y = (y* − y_a)/h_a, t_w = w*/w_a − 1, t_h = h*/h_a − 1.
- :func:`noisy_boxes`: each ground-truth box's one noisy label for a seed and condition. Laplace noise goes through
  :func:`labkit.detection.synthetic.laplace_label_noise` (eq. 16) with a generator seeded by (seed, stream) only,
  so the same seed draws the same standard noise at every b₁ (common random numbers: paired across b₁ and α).
  Labels are not clipped to valid boxes: with the linear target the noise stays exactly additive and symmetric in
  target space (noise·w*/w_a).
- :func:`box_errors`: |predicted − true target| in units of the *true* box, (|Δx_c|/w, |Δy_c|/h, |Δw|/w, |Δh|/h) —
  ``labkit.detection.localization.pair_errors`` of the decoded boxes, computed without decoding.
- :func:`draw_roi_set`: one split's RoIs and the box head's features of each (``reference.pool_features``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from labkit.detection.losses import LinearSizeBoxCoder
from labkit.detection.oracle import jitter_boxes
from labkit.detection.synthetic import laplace_label_noise
from labkit.experiments.headstudy.design import GAUSSIAN, LAPLACE, Condition
from labkit.experiments.headstudy.reference import pool_features

__all__ = ["RoISet", "encode", "noisy_boxes", "box_errors", "draw_roi_set"]

_NOISE_STREAMS = {LAPLACE: 101, GAUSSIAN: 102, "outliers": 103}
_UNIT_CODER = LinearSizeBoxCoder((1.0, 1.0, 1.0, 1.0))


@dataclass(frozen=True)
class RoISet:
    """One split's RoIs: ``rois`` and their ground-truth ``boxes`` [R, 4] (xyxy pixels), ``labels`` [R] (the box's
    class, 1..K), ``owner`` [R] (index of the ground-truth box among the split's ``gt_boxes`` [M, 4]), ``image``
    [R] (image index), and the box head's features ``fc6`` and ``head`` [R, d] of the frozen reference."""

    rois: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    owner: torch.Tensor
    image: torch.Tensor
    gt_boxes: torch.Tensor
    fc6: torch.Tensor
    head: torch.Tensor

    def __len__(self) -> int:
        return len(self.rois)

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RoISet":
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @property
    def targets(self) -> torch.Tensor:
        """Clean targets [R, 4] (linear size target, σ = 1)."""
        return encode(self.boxes, self.rois)


def encode(boxes: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """Targets of ``boxes`` relative to ``rois`` (both [R, 4] xyxy): eqs. 32 and 93–94 with σ = 1."""
    return _UNIT_CODER.encode_single(boxes, rois)


def _move(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """xyxy boxes with (centre x, centre y, w, h) moved by ``offsets`` in units of each box's (w, h, w, h)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = boxes[:, 0] + w / 2 + offsets[:, 0] * w, boxes[:, 1] + h / 2 + offsets[:, 1] * h
    nw, nh = w * (1 + offsets[:, 2]), h * (1 + offsets[:, 3])
    return np.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], axis=1)


def noisy_boxes(boxes: np.ndarray, condition: Condition, seed: int) -> np.ndarray:
    """The noisy labels of xyxy ``boxes`` (one per box) under ``condition`` for ``seed`` (module docstring)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    rng = np.random.default_rng([int(seed), _NOISE_STREAMS[condition.kind]])
    if condition.kind == LAPLACE:
        return laplace_label_noise(boxes, condition.scale, rng)
    if condition.kind == GAUSSIAN:  # Var Laplace(b) = 2b²: the same variance
        return _move(boxes, rng.standard_normal((len(boxes), 4)) * math.sqrt(2) * condition.scale)
    moved = rng.random(len(boxes)) < condition.fraction
    angle = rng.uniform(0, 2 * math.pi, len(boxes))
    offsets = np.zeros((len(boxes), 4))
    offsets[:, 0], offsets[:, 1] = condition.scale * np.cos(angle), condition.scale * np.sin(angle)
    return _move(boxes, offsets * moved[:, None])


def box_errors(predicted: torch.Tensor, true: torch.Tensor, rois: torch.Tensor, boxes: torch.Tensor
               ) -> torch.Tensor:
    """|predicted − true| targets (σ = 1) in units of the true box (``boxes``): Δx = Δt_x·w_a and Δw = Δt_w·w_a
    under eqs. 32 and 94, divided by w*; likewise y and h. ``predicted`` may carry leading arm dimensions."""
    ratio = torch.cat([(rois[:, 2:] - rois[:, :2]) / (boxes[:, 2:] - boxes[:, :2])] * 2, dim=1)
    return (predicted - true).abs() * ratio


def draw_roi_set(model: torch.nn.Module, dataset: Any, per_box: int, seed: int, batch: int = 16,
                 progress: Any = None) -> RoISet:
    """Jitter ``per_box`` RoIs around every ground-truth box of ``dataset`` (a ``DetectionDataset``; generator
    seeded by (seed, image index)) and pool the frozen ``model``'s box-head features of each."""
    parts: dict[str, list[torch.Tensor]] = {k.name: [] for k in fields(RoISet)}
    n_boxes = 0
    for start in range(0, len(dataset), batch):
        images, rois = [], []
        for i in range(start, min(start + batch, len(dataset))):
            image, target = dataset[i]
            gt = target["boxes"].numpy().astype(np.float64)
            r, owner = jitter_boxes(gt, per_box, np.random.default_rng([seed, i]), image.shape[-1], image.shape[-2])
            images.append(image)
            rois.append(torch.as_tensor(r, dtype=torch.float32))
            parts["rois"].append(rois[-1])
            parts["boxes"].append(target["boxes"][owner])
            parts["labels"].append(target["labels"][owner])
            parts["owner"].append(torch.as_tensor(owner + n_boxes))
            parts["image"].append(torch.full((len(owner),), i))
            parts["gt_boxes"].append(target["boxes"])
            n_boxes += len(gt)
        feats = pool_features(model, images, rois)
        parts["fc6"].append(feats["fc6"])
        parts["head"].append(feats["head"])
        if progress is not None:
            progress(min(start + batch, len(dataset)), len(dataset))
    return RoISet(**{k: torch.cat(v) for k, v in parts.items()})
