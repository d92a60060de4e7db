"""Scoring the refitted heads on the clean validation RoIs, with and without variance voting.

Every ground-truth box of the validation split has ``val_rois_per_box`` jittered RoIs (the head study's
:func:`~labkit.experiments.headstudy.rois.jitter_boxes`), each one candidate detection of that box: its box decoded
from the arm's prediction (linear size target, eqs. 93–94) and its scale in pixels (the target-unit scale times
w_a or h_a, as ``LearnedScaleRoIHeads.pixel_scales`` gives it). Per box:

- *kept*: the candidate the frozen classifier scores highest for the box's class (what NMS would keep);
- *voted*: the kept box after He et al.'s variance voting over every candidate of the same class in the image
  (``labkit.detection.uncertainty.variance_voting``; the kept box's scales stay, as in He et al.). A fixed arm's
  scales are equal within a coordinate, so its vote is the IoU-weighted mean.

Metrics per (arm, seed, voting) — every box counts, none is dropped by an IoU threshold: ``loc_err`` (mean
|Δ|/size over cx, cy, w, h, the units of ``labkit.detection.localization``), the ``unc_*`` metrics of
``labkit.detection.calibration.scale_metrics`` against the clean box (NLL, calibration error over 15 quantile
levels, sharpness, Spearman ρ with the injected per-box scale), and ``noisy_nll`` / ``noisy_calibration_error``
against a fresh noisy draw of the validation labels (what a scale trained on noisy labels is asked to describe).
``roi_loc_err``: the mean error over all candidates, not only the kept ones. ``pit_histogram`` (per coordinate)
and ``relative_scales`` (per box, the mean of s/size over the coordinates) feed the report's figures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torchvision.ops import boxes as box_ops

from labkit.detection.calibration import MatchedScales, scale_metrics
from labkit.detection.losses import LinearSizeBoxCoder
from labkit.detection.uncertainty import variance_voting
from labkit.experiments.headstudy.rois import RoISet, box_errors

__all__ = ["VOTING", "Candidates", "candidates", "kept_index", "vote", "score_boxes", "evaluate_arms", "example_detections"]

#: evaluated without, then with, variance voting
VOTING = (False, True)
_UNIT_CODER = LinearSizeBoxCoder((1.0, 1.0, 1.0, 1.0))
_VOTING_SIGMA = 0.02  # σ_t of He et al.; labkit.detection.uncertainty.UncertaintyConfig's default


@dataclass(frozen=True)
class Candidates:
    """One arm's candidates: ``boxes`` xyxy [R, 4] and ``scales`` [R, 4] (cx, cy, w, h) in pixels (float64)."""

    boxes: torch.Tensor
    scales: torch.Tensor


def candidates(mu: torch.Tensor, scale: torch.Tensor, rois: torch.Tensor) -> Candidates:
    """Decode one arm's predicted targets ``mu`` and ``scale`` [R, 4] (σ = 1 target units) against ``rois``."""
    rois64 = rois.to(torch.float64)
    size = torch.cat([rois64[:, 2:] - rois64[:, :2]] * 2, dim=1)
    return Candidates(_UNIT_CODER.decode_single(mu.to(torch.float64), rois64), scale.to(torch.float64) * size)


def kept_index(scores: torch.Tensor, owner: torch.Tensor, n_boxes: int) -> torch.Tensor:
    """Per ground-truth box (0..``n_boxes`` − 1), the index of its candidate with the highest ``scores``."""
    order = torch.argsort(scores, descending=True, stable=True)
    kept = torch.full((n_boxes,), -1, dtype=torch.long)
    # reversed so that the highest-scoring candidate of each box is written last
    kept[owner[order].flip(0)] = order.flip(0)
    if bool((kept < 0).any()):
        raise ValueError("every ground-truth box needs at least one candidate RoI")
    return kept


def vote(cands: Candidates, labels: torch.Tensor, image: torch.Tensor, kept: torch.Tensor,
         sigma_t: float = _VOTING_SIGMA) -> torch.Tensor:
    """Variance voting of the ``kept`` candidates over the candidates of their image and class: images are moved
    apart along x so that no two share an IoU > 0, then one call of ``variance_voting``. Returns xyxy [B, 4]."""
    shift = (image.to(torch.float64) * (float(cands.boxes[:, 2].max()) + 1.0e3))[:, None] * torch.tensor(
        [1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    moved = cands.boxes + shift
    voted = variance_voting(moved[kept], labels[kept], moved, labels, cands.scales, sigma_t)
    return voted - shift[kept]


def _cxcywh(xyxy: torch.Tensor) -> np.ndarray:
    return box_ops.box_convert(xyxy, "xyxy", "cxcywh").numpy()


def score_boxes(predicted: torch.Tensor, scales: torch.Tensor, truth: torch.Tensor, noisy: torch.Tensor,
                injected: np.ndarray, distribution: str) -> dict[str, Any]:
    """The module docstring's metrics of one arm's per-box ``predicted`` xyxy boxes with pixel ``scales`` (cx, cy,
    w, h) against the clean ``truth`` and the ``noisy`` validation labels (xyxy), ``injected`` the per-box noise
    scale (constant under homoscedastic noise: no rank correlation)."""
    truth_c, pred_c = _cxcywh(truth.to(torch.float64)), _cxcywh(predicted)
    sizes = truth_c[:, [2, 3, 2, 3]]
    s = scales.numpy()
    clean = scale_metrics(MatchedScales(truth_c, pred_c, s, sizes, injected), distribution)
    against = scale_metrics(MatchedScales(_cxcywh(noisy.to(torch.float64)), pred_c, s, sizes, injected),
                            distribution)
    return {"loc_err": float(np.mean(np.abs(pred_c - truth_c) / sizes)),
            **{k: clean[k] for k in ("unc_nll", "unc_calibration_error", "unc_sharpness", "unc_rank_correlation")},
            "noisy_nll": against["unc_nll"], "noisy_calibration_error": against["unc_calibration_error"],
            "pit_histogram": clean["unc_pit_histogram"],
            "relative_scales": np.round((s / sizes).mean(axis=1), 6).tolist()}


def evaluate_arms(mu: torch.Tensor, scale: torch.Tensor, val: RoISet, scores: torch.Tensor, noisy: torch.Tensor,
                  injected: np.ndarray, distributions: Sequence[str]) -> list[dict[str, Any]]:
    """Per arm m of ``mu``/``scale`` [M, R, 4] and per voting (:data:`VOTING`), the metrics of :func:`score_boxes`
    with ``roi_loc_err`` and ``voting``; ``distributions[m]`` the arm's family; ``noisy`` [M, B, 4]: each arm's
    noisy validation labels (its seed's draw)."""
    n_boxes = len(val.gt_boxes)
    kept = kept_index(scores, val.owner, n_boxes)
    roi_err = box_errors(mu, val.targets, val.rois, val.boxes).mean(dim=(1, 2))
    rows = []
    for m in range(len(mu)):
        cands = candidates(mu[m], scale[m], val.rois)
        for voting in VOTING:
            boxes = vote(cands, val.labels, val.image, kept) if voting else cands.boxes[kept]
            metrics = score_boxes(boxes, cands.scales[kept], val.gt_boxes, noisy[m], injected, distributions[m])
            rows.append({"voting": voting, "roi_loc_err": float(roi_err[m]), **metrics})
    return rows


def example_detections(mu: torch.Tensor, scale: torch.Tensor, val: RoISet, scores: torch.Tensor,
                       arms: Sequence[int], images: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """For the arms (indices into ``mu``) and validation ``images`` given, each ground-truth box's kept candidate:
    ``{m: [{"image", "label", "truth" (xyxy), "box" (xyxy), "scales" (cx, cy, w, h, pixels)}, …]}``, rounded to
    0.01 px (what notebook 08 draws)."""
    kept = kept_index(scores, val.owner, len(val.gt_boxes))
    chosen = [b for b in range(len(kept)) if int(val.image[kept[b]]) in set(images)]
    out: dict[int, list[dict[str, Any]]] = {}
    for m in arms:
        cands = candidates(mu[m], scale[m], val.rois)
        out[m] = [{"image": int(val.image[kept[b]]), "label": int(val.labels[kept[b]]),
                   "truth": [round(float(v), 2) for v in val.gt_boxes[b]],
                   "box": [round(float(v), 2) for v in cands.boxes[kept[b]]],
                   "scales": [round(float(v), 2) for v in cands.scales[kept[b]]]} for b in chosen]
    return out
