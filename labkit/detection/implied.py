"""What a learned-uncertainty run says about fixed Huber settings (issue 17, item 6): read the scales its detection
head predicts and hand them to :func:`labkit.interpret.learned.implied_stage`.

:func:`learned_scales` runs the run's last checkpoint over a split (default: its validation split) and takes, per
coordinate (x, y, w, h), the median of the learned scales e^u in the detection stage's σ-scaled target units
(``target_scales`` of :func:`labkit.detection.evaluate.predict`) over the true positives at IoU 0.5 — the boxes
whose scale describes a real object; with no true positive, over every detection, and it says so.
:func:`implied_run_settings` turns them into the fixed settings whose prediction scale is that median, as a mapping
stage → :class:`~labkit.interpret.StageSettings` that :func:`labkit.interpret.exports.export` takes like any
suggestion, read in the run's loss form (``form``). The RPN keeps its settings unless it learned scales too
(``--uncertainty-rpn``): then :func:`learned_rpn_scales` takes the median over every anchor the RPN's matcher makes
positive for the split's ground-truth boxes (:meth:`~labkit.detection.model.LearnedScaleRPN.anchor_scales`) and
the RPN stage is re-chosen from it the same way. Only Laplace scales have this reading: a run trained with the
Gaussian KL-Loss is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from labkit.detection.config import read_config
from labkit.detection.data import make_loader
from labkit.detection.evaluate import load_run, predict
from labkit.detection.localization import match_detections
from labkit.detection.model import LearnedScaleRPN
from labkit.detection.uncertainty import LAPLACE, LearnedScaleRoIHeads
from labkit.interpret.learned import ImpliedStage, implied_stage
from labkit.interpret.settings import StageSettings

__all__ = ["LearnedScales", "learned_scales", "learned_rpn_scales", "ImpliedRunSettings", "implied_run_settings"]


@dataclass(frozen=True)
class LearnedScales:
    """Median learned scales (x, y, w, h) of a stage in its σ-scaled target units, how many boxes (detections or
    anchors) they come from and which (``population``)."""

    median: tuple[float, float, float, float]
    count: int
    population: str


def learned_scales(run_dir: str | Path, split: str | None = None, device: str = "auto", batch_size: int = 4,
                   iou_threshold: float = 0.5) -> LearnedScales:
    """The median learned scales of the run's detection head on ``split`` (see the module docstring)."""
    model, dataset, _, _ = load_run(run_dir, split, device)
    _check_laplace(run_dir, model.roi_heads, LearnedScaleRoIHeads, "uncertainty 'none'")
    results, image_ids = predict(model, dataset, batch_size=batch_size)
    if not results:
        raise ValueError(f"run: {run_dir} made no detection on its {len(image_ids)} images; no scale to read")
    pairs = match_detections(dataset.coco, results, iou_threshold)
    chosen = [p[0] for p in pairs] or results
    population = (f"true positives at IoU {iou_threshold}" if pairs
                  else "all detections (no true positive)")
    median = np.median(np.array([d["target_scales"] for d in chosen], np.float64), axis=0)
    return LearnedScales(tuple(float(v) for v in median), len(chosen), population)


def _check_laplace(run_dir, module, kind, otherwise: str) -> None:
    if not isinstance(module, kind):
        raise ValueError(f"run: {run_dir} was trained with fixed scales ({otherwise}); it has no learned scales to "
                         "read")
    if module.uncertainty.distribution != LAPLACE:
        raise ValueError(f"run: {run_dir} learned {module.uncertainty.distribution} scales "
                         f"({module.uncertainty.loss}); only Laplace scales read as Huber settings")


def learned_rpn_scales(run_dir: str | Path, split: str | None = None, device: str = "auto",
                       batch_size: int = 4) -> LearnedScales:
    """The median learned scales of the run's RPN on ``split`` over the anchors its matcher makes positive for the
    ground-truth boxes (the images resized as in training; see the module docstring)."""
    model, dataset, _, _ = load_run(run_dir, split, device)
    _check_laplace(run_dir, model.rpn, LearnedScaleRPN, "no --uncertainty-rpn")
    dev = next(model.parameters()).device
    model.eval()
    scales = []
    with torch.no_grad():
        for images, targets in make_loader(dataset, batch_size=batch_size, device=dev):
            images = [im.to(dev) for im in images]
            targets = [{"boxes": t["boxes"].to(dev), "labels": t["labels"].to(dev)} for t in targets]
            image_list, targets = model.transform(images, targets)
            features = model.backbone(image_list.tensors)
            if isinstance(features, torch.Tensor):  # one feature map: named as GeneralizedRCNN names it
                features = {"0": features}
            scales.append(model.rpn.anchor_scales(image_list, features, targets))
    chosen = torch.cat(scales).double().cpu().numpy() if scales else np.zeros((0, 4))
    if not len(chosen):
        raise ValueError(f"run: no anchor matches a ground-truth box on the {len(dataset)} images of {run_dir}'s "
                         "split; no RPN scale to read")
    median = np.median(chosen, axis=0)
    return LearnedScales(tuple(float(v) for v in median), len(chosen), "positive anchors of the ground-truth boxes")


@dataclass(frozen=True)
class ImpliedRunSettings:
    """``settings`` (stage → StageSettings) and ``form`` — ``export(r.settings, framework, form=r.form)`` —,
    ``detection`` (the implied stage with its reading) and ``scales`` (what it was computed from); ``rpn`` and
    ``rpn_scales`` the same for an RPN that learned scales (None otherwise: the RPN keeps its settings)."""

    settings: dict[str, StageSettings]
    form: str
    detection: ImpliedStage
    scales: LearnedScales
    rpn: ImpliedStage | None = None
    rpn_scales: LearnedScales | None = None


def implied_run_settings(run_dir: str | Path, split: str | None = None, device: str = "auto",
                         digits: int = 4) -> ImpliedRunSettings:
    """The fixed settings implied by the learned scales of ``run_dir`` (see the module docstring)."""
    config = read_config(run_dir)
    losses = config.losses
    scales = learned_scales(run_dir, split, device)
    detection = implied_stage(losses.detection.settings, scales.median, losses.detection.form, digits)
    rpn = rpn_scales = None
    if config.uncertainty_rpn:
        rpn_scales = learned_rpn_scales(run_dir, split, device)
        rpn = implied_stage(losses.rpn.settings, rpn_scales.median, losses.rpn.form, digits)
    return ImpliedRunSettings({"rpn": losses.rpn.settings if rpn is None else rpn.settings,
                               "detection": detection.settings}, losses.detection.form, detection, scales, rpn,
                              rpn_scales)
