"""Localization on oracle RoIs: the box head's error on proposals drawn around every ground-truth box.

``loc_err`` of :mod:`labkit.detection.localization` measures the true positives, so which boxes count depends on
the detector (a worse one loses its hardest boxes from the average). Here every ground-truth box of the split counts,
the same way for every detector: :func:`jitter_boxes` draws :data:`ORACLE_ROIS_PER_BOX` RoIs around it — the box
moved and resized at random, kept when its IoU with the box is ≥ 0.5, the positives torchvision's ``RoIHeads``
sampler passes to the box regressor (``box_fg_iou_thresh`` = 0.5); centre offsets uniform within
±``JITTER_SHIFT`` box sizes, log width and height within ±log ``JITTER_RESIZE``, clipped to the image, draws
under the IoU threshold drawn again (rejection) — from a generator seeded by (:data:`ORACLE_SEED`, image id).
The head regresses each RoI for the box's own class; the error is mean |Δ|/size over (centre x, centre y, width,
height) — the units of ``loc_err``, independent of the image resize (the transform scales both sides by one
factor). (The ground-truth box itself as the RoI would reward a regressor that does nothing.)

:func:`pool_rois` is the seam into the model, through torchvision's own modules (``transform``, ``backbone``,
``roi_heads.box_roi_pool``) as ``RoIHeads`` runs them; the head study's feature cache goes through it too.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torchvision.ops import boxes as box_ops

from labkit.detection.data import make_loader

__all__ = ["MIN_IOU", "JITTER_SHIFT", "JITTER_RESIZE", "ORACLE_ROIS_PER_BOX", "ORACLE_SEED", "paired_iou",
           "jitter_boxes", "pool_rois", "oracle_localization"]

MIN_IOU = 0.5
JITTER_SHIFT = 0.3
JITTER_RESIZE = 1.6
_MIN_SIDE = 2.0  # pixels: narrower RoIs are drawn again
ORACLE_ROIS_PER_BOX = 4
ORACLE_SEED = 3_000


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each xyxy box of ``a`` with the box in the same row of ``b``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def jitter_boxes(boxes: np.ndarray, per_box: int, rng: np.random.Generator, width: float, height: float,
                 min_iou: float = MIN_IOU, max_rounds: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``per_box`` RoIs around each xyxy box (see the module docstring): (rois [M·per_box, 4], owner [M·per_box]),
    every RoI inside the ``width`` × ``height`` image with IoU ≥ ``min_iou`` with its box."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not (isinstance(per_box, int) and per_box >= 1):
        raise ValueError(f"per_box must be an int >= 1, got per_box={per_box!r}")
    if not 0 < min_iou < 1:
        raise ValueError(f"min_iou must be in (0, 1), got min_iou={min_iou!r}")
    if len(boxes) and np.any(boxes[:, 2:] - boxes[:, :2] < _MIN_SIDE):
        raise ValueError(f"boxes must be at least {_MIN_SIDE:g} px wide and high")
    owner = np.repeat(np.arange(len(boxes)), per_box)
    gt = boxes[owner]
    rois = np.full_like(gt, np.nan)
    todo = np.arange(len(gt))
    size = np.concatenate([gt[:, 2:] - gt[:, :2]] * 2, axis=1)
    centre = np.concatenate([(gt[:, :2] + gt[:, 2:]) / 2] * 2, axis=1)
    for _ in range(max_rounds):
        if not len(todo):
            break
        shift = rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, (len(todo), 2)) * size[todo, :2]
        scale = np.exp(rng.uniform(-math.log(JITTER_RESIZE), math.log(JITTER_RESIZE), (len(todo), 2)))
        half = size[todo, :2] * scale / 2
        c = centre[todo, :2] + shift
        draw = np.concatenate([c - half, c + half], axis=1)
        draw[:, [0, 2]] = np.clip(draw[:, [0, 2]], 0, width)
        draw[:, [1, 3]] = np.clip(draw[:, [1, 3]], 0, height)
        ok = (paired_iou(draw, gt[todo]) >= min_iou) & np.all(draw[:, 2:] - draw[:, :2] >= _MIN_SIDE, axis=1)
        rois[todo[ok]] = draw[ok]
        todo = todo[~ok]
    if len(todo):  # not reached for boxes of a few pixels or more; the box itself always qualifies
        rois[todo] = gt[todo]
    return rois, owner



@torch.no_grad()
def pool_rois(model: nn.Module, images: Sequence[torch.Tensor], boxes: Sequence[torch.Tensor]
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """RoI-pooled backbone features [R, C, k, k] of ``boxes[i]`` (xyxy pixels of ``images[i]``), and the boxes
    resized as the model resized their images. ``model``: a torchvision ``FasterRCNN`` (eval mode is the caller's)."""
    if len(images) != len(boxes):
        raise ValueError(f"images and boxes must pair up, got {len(images)} images and {len(boxes)} box sets")
    if not all(b.ndim == 2 and b.shape[-1] == 4 for b in boxes):
        raise ValueError("boxes must be [R, 4] xyxy tensors, one per image")
    targets = [{"boxes": b.to(torch.float32), "labels": torch.zeros(len(b), dtype=torch.int64)} for b in boxes]
    batch, targets = model.transform(list(images), targets)
    features = model.backbone(batch.tensors)
    if isinstance(features, torch.Tensor):
        features = {"0": features}
    resized = [t["boxes"] for t in targets]
    return model.roi_heads.box_roi_pool(features, resized, batch.image_sizes), resized


@torch.no_grad()
def oracle_localization(model: nn.Module, dataset: Any, device: str | torch.device | None = None,
                        batch_size: int = 4) -> dict[str, Any]:
    """``oracle_loc_err`` (mean over RoIs and coordinates) and ``oracle_rois`` (how many) of ``model`` on the
    jittered RoIs of every ground-truth box of ``dataset`` (module docstring)."""
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    heads = model.roi_heads
    total, count = 0.0, 0
    try:
        for images, targets in make_loader(dataset, batch_size=batch_size, device=device):
            keep = [i for i, t in enumerate(targets) if len(t["boxes"])]
            if not keep:
                continue
            chosen, rois, truth, labels = [], [], [], []
            for i in keep:
                boxes = targets[i]["boxes"].to(torch.float64)
                rng = np.random.default_rng([ORACLE_SEED, int(targets[i]["image_id"])])
                r, owner = jitter_boxes(boxes.numpy(), ORACLE_ROIS_PER_BOX, rng, images[i].shape[-1],
                                        images[i].shape[-2])
                chosen.append(images[i].to(device))
                rois.append(torch.as_tensor(r, dtype=torch.float32, device=device))
                truth.append(boxes[owner].to(torch.float32))
                labels.append(targets[i]["labels"][owner])
            labels = torch.cat(labels).to(device)
            pooled, resized = pool_rois(model, chosen, rois)
            scale = torch.cat([torch.full((len(r),), f, dtype=torch.float32)
                               for r, f in zip(rois, _factors(rois, resized))]).to(device)[:, None]
            deltas = heads.box_predictor(heads.box_head(pooled))[1]
            decoded = heads.box_coder.decode(deltas, resized).reshape(len(labels), -1, 4)
            predicted = decoded[torch.arange(len(labels), device=decoded.device), labels] / scale
            gt = box_ops.box_convert(torch.cat(truth).to(device), "xyxy", "cxcywh")
            pred = box_ops.box_convert(predicted, "xyxy", "cxcywh")
            size = gt[:, [2, 3, 2, 3]]
            total += float(((pred - gt).abs() / size).mean(dim=1).sum())
            count += len(labels)
    finally:
        model.train(was_training)
    return {"oracle_loc_err": total / count if count else None, "oracle_rois": count}


def _factors(rois: Sequence[torch.Tensor], resized: Sequence[torch.Tensor]) -> list[float]:
    """The transform's resize factor of each image (one factor for both sides), from its RoIs before and after."""
    out = []
    for before, after in zip(rois, resized):
        w0, w1 = (before[:, 2] - before[:, 0]).sum(), (after[:, 2] - after[:, 0]).sum()
        out.append(float(w1 / w0) if float(w0) > 0 else 1.0)
    return out
