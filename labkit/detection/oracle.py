"""Localization on oracle RoIs: the box head's error when its regions are the ground-truth boxes themselves.

``loc_err`` of :mod:`labkit.detection.localization` measures the true positives, so which boxes count depends on
the detector (a worse one loses its hardest boxes from the average). Here every ground-truth box of the split counts
once: it is given to the RoI heads as the proposal, the head regresses it for the box's own class, and the error
is mean |Δ|/size over (centre x, centre y, width, height) — the units of ``loc_err``, independent of the image
resize (the transform scales both sides by one factor). :func:`pool_rois` is the seam into the model, through
torchvision's own modules (``transform``, ``backbone``, ``roi_heads.box_roi_pool``) as ``RoIHeads`` runs them; the
head study's feature cache goes through it too.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torchvision.ops import boxes as box_ops

from labkit.detection.data import make_loader

__all__ = ["pool_rois", "oracle_localization"]


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
    """``oracle_loc_err`` (mean over boxes and coordinates) and ``oracle_boxes`` (how many) of ``model`` on every
    ground-truth box of ``dataset`` (module docstring)."""
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
            images = [images[i].to(device) for i in keep]
            truth = [targets[i]["boxes"].to(device) for i in keep]
            labels = torch.cat([targets[i]["labels"] for i in keep]).to(device)
            pooled, rois = pool_rois(model, images, truth)
            deltas = heads.box_predictor(heads.box_head(pooled))[1]
            decoded = heads.box_coder.decode(deltas, rois).reshape(len(labels), -1, 4)
            predicted = decoded[torch.arange(len(labels), device=decoded.device), labels]
            gt = box_ops.box_convert(torch.cat(rois), "xyxy", "cxcywh")
            pred = box_ops.box_convert(predicted, "xyxy", "cxcywh")
            size = gt[:, [2, 3, 2, 3]]
            total += float(((pred - gt).abs() / size).mean(dim=1).sum())
            count += len(labels)
    finally:
        model.train(was_training)
    return {"oracle_loc_err": total / count if count else None, "oracle_boxes": count}
