"""What a learned-uncertainty run says about fixed Huber settings (issue 17, item 6): read the scales its detection
head predicts and hand them to :func:`labkit.interpret.learned.implied_stage`.

:func:`learned_scales` runs the run's last checkpoint over a split (default: its validation split) and takes, per
coordinate (x, y, w, h), the median of the learned scales e^u in the detection stage's σ-scaled target units
(``target_scales`` of :func:`labkit.detection.evaluate.predict`) over the true positives at IoU 0.5 — the boxes
whose scale describes a real object; with no true positive, over every detection, and it says so.
:func:`implied_run_settings` turns them into the fixed settings whose prediction scale is that median, as a mapping
stage → :class:`~labkit.interpret.StageSettings` that :func:`labkit.interpret.exports.export` takes like any
suggestion, read in the run's loss form (``form``; the RPN, which learns no scale, keeps its settings). Only
Laplace scales have this reading: a run trained with the Gaussian KL-Loss is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit.detection.config import read_config
from labkit.detection.evaluate import load_run, predict
from labkit.detection.localization import match_detections
from labkit.detection.uncertainty import LAPLACE, LearnedScaleRoIHeads
from labkit.interpret.learned import ImpliedStage, implied_stage
from labkit.interpret.settings import StageSettings

__all__ = ["LearnedScales", "learned_scales", "ImpliedRunSettings", "implied_run_settings"]


@dataclass(frozen=True)
class LearnedScales:
    """Median learned scales (x, y, w, h) of the detection stage in its σ-scaled target units, how many detections
    they come from and which (``population``)."""

    median: tuple[float, float, float, float]
    count: int
    population: str


def learned_scales(run_dir: str | Path, split: str | None = None, device: str = "auto", batch_size: int = 4,
                   iou_threshold: float = 0.5) -> LearnedScales:
    """The median learned scales of the run's detection head on ``split`` (see the module docstring)."""
    model, dataset, _, _ = load_run(run_dir, split, device)
    if not isinstance(model.roi_heads, LearnedScaleRoIHeads):
        raise ValueError(f"run: {run_dir} was trained with fixed scales (uncertainty 'none'); it has no learned "
                         "scales to read")
    if model.roi_heads.uncertainty.distribution != LAPLACE:
        raise ValueError(f"run: {run_dir} learned {model.roi_heads.uncertainty.distribution} scales "
                         f"({model.roi_heads.uncertainty.loss}); only Laplace scales read as Huber settings")
    results, image_ids = predict(model, dataset, batch_size=batch_size)
    if not results:
        raise ValueError(f"run: {run_dir} made no detection on its {len(image_ids)} images; no scale to read")
    pairs = match_detections(dataset.coco, results, iou_threshold)
    chosen = [p[0] for p in pairs] or results
    population = (f"true positives at IoU {iou_threshold}" if pairs
                  else "all detections (no true positive)")
    median = np.median(np.array([d["target_scales"] for d in chosen], np.float64), axis=0)
    return LearnedScales(tuple(float(v) for v in median), len(chosen), population)


@dataclass(frozen=True)
class ImpliedRunSettings:
    """``settings`` (stage → StageSettings) and ``form`` — ``export(r.settings, framework, form=r.form)`` —,
    ``detection`` (the implied stage with its reading) and ``scales`` (what it was computed from)."""

    settings: dict[str, StageSettings]
    form: str
    detection: ImpliedStage
    scales: LearnedScales


def implied_run_settings(run_dir: str | Path, split: str | None = None, device: str = "auto",
                         digits: int = 4) -> ImpliedRunSettings:
    """The fixed settings implied by the learned scales of ``run_dir`` (see the module docstring)."""
    config = read_config(run_dir)
    losses = config.losses
    scales = learned_scales(run_dir, split, device)
    detection = implied_stage(losses.detection.settings, scales.median, losses.detection.form, digits)
    return ImpliedRunSettings({"rpn": losses.rpn.settings, "detection": detection.settings}, losses.detection.form,
                              detection, scales)
