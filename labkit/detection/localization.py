"""How well a detector places its boxes: the localization error of its true positives, in box-size units.

AP75 mixes localization with recall and ranking and moves in steps; the noise study (``labkit.experiments``) asks a
narrower question — does the box loss whose label scale α·σ matches the injected label noise b₁ place boxes best
(eq. 42)? — so it also reports what the box loss is about, on the clean validation labels:

- detections are matched to ground truth exactly as COCO's evaluation matches them at one IoU threshold (default
  0.5; per image and category, detections in descending score, the top ``max_dets`` only, each taking the unmatched
  ground-truth box of highest IoU; crowd boxes absorb detections but are never true positives), see
  :func:`match_detections`;
- for each matched pair, the error of the centre/size coordinates in units of the true box, the parameterisation
  the label noise is injected in (eq. 16 as ``labkit.detection.synthetic`` applies it):
  e = (|x̂_c − x_c| / w, |ŷ_c − y_c| / h, |ŵ − w| / w, |ĥ − h| / h). For Laplace label noise of scale b₁·w the mean
  |noise| / w is exactly b₁, so ``loc_err`` reads on the same scale as b₁;
- :func:`localization_metrics`: ``loc_err`` (mean of e over pairs and the four coordinates), ``loc_iou`` (mean IoU
  of the pairs) and ``loc_recall`` (matched / non-crowd ground-truth boxes).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

__all__ = ["LOCALIZATION_METRICS", "match_detections", "pair_errors", "localization_metrics"]

#: the keys :func:`localization_metrics` returns, with whether larger is better
LOCALIZATION_METRICS = {"loc_err": False, "loc_iou": True, "loc_recall": True}


def _iou_xywh(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of xywh boxes, (detections × ground truth), float64; for a crowd box the union is the detection's area
    (COCO's convention)."""
    if len(dets) == 0 or len(gts) == 0:
        return np.zeros((len(dets), len(gts)))
    dx1, dy1 = dets[:, None, 0], dets[:, None, 1]
    dx2, dy2 = dx1 + dets[:, None, 2], dy1 + dets[:, None, 3]
    gx1, gy1 = gts[None, :, 0], gts[None, :, 1]
    gx2, gy2 = gx1 + gts[None, :, 2], gy1 + gts[None, :, 3]
    inter = np.clip(np.minimum(dx2, gx2) - np.maximum(dx1, gx1), 0, None) * \
        np.clip(np.minimum(dy2, gy2) - np.maximum(dy1, gy1), 0, None)
    det_area = dets[:, None, 2] * dets[:, None, 3]
    union = np.where(crowd[None, :], det_area, det_area + gts[None, :, 2] * gts[None, :, 3] - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _check_threshold(iou_threshold: float) -> float:
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float)) \
            or not 0.0 < iou_threshold < 1.0:
        raise ValueError(f"iou_threshold must be a number in (0, 1), got iou_threshold={iou_threshold!r}")
    return float(iou_threshold)


def match_detections(gt: Any, detections: list[dict], iou_threshold: float = 0.5, max_dets: int = 100
                     ) -> list[tuple[dict, dict, float]]:
    """The true positives of ``detections`` at ``iou_threshold``, matched as COCO's evaluation matches them:
    (detection, ground-truth annotation, IoU) triples.

    ``gt``: a COCO dataset dict, COCO object or path (as :func:`labkit.detection.cocoeval.evaluate_detections`
    takes); ``detections``: COCO results (``image_id``, ``category_id``, ``bbox`` xywh, ``score``). Per image and
    category the detections are taken in descending score (stable), the first ``max_dets`` only; each is matched to
    the not yet matched ground-truth box with the largest IoU ≥ the threshold, non-crowd boxes before crowd ones.
    A detection matched to a crowd box is not returned (COCO ignores it).
    """
    from labkit.detection.cocoeval import _ground_truth_dict

    threshold = _check_threshold(iou_threshold)
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
        raise ValueError(f"max_dets must be an int >= 1, got max_dets={max_dets!r}")
    gt_dict = _ground_truth_dict(gt)
    gts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for ann in gt_dict["annotations"]:
        gts[int(ann["image_id"]), int(ann["category_id"])].append(ann)
    dts: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for det in detections:
        dts[int(det["image_id"]), int(det["category_id"])].append(det)

    pairs = []
    for key, dets in dts.items():
        candidates = sorted(gts.get(key, []), key=lambda a: bool(a.get("iscrowd", 0)))  # stable: non-crowd first
        if not candidates:
            continue
        order = np.argsort([-float(d["score"]) for d in dets], kind="mergesort")[:max_dets]
        dets = [dets[i] for i in order]
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in candidates])
        ious = _iou_xywh(np.array([d["bbox"] for d in dets], dtype=np.float64).reshape(-1, 4),
                         np.array([a["bbox"] for a in candidates], dtype=np.float64).reshape(-1, 4), crowd)
        taken = np.zeros(len(candidates), dtype=bool)
        for i, det in enumerate(dets):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for j in range(len(candidates)):
                if taken[j] and not crowd[j]:
                    continue
                if best > -1 and not crowd[best] and crowd[j]:
                    break  # a non-crowd match is never given up for a crowd box
                if ious[i, j] < best_iou:
                    continue
                best, best_iou = j, ious[i, j]
            if best == -1:
                continue
            taken[best] = True
            if not crowd[best]:
                pairs.append((det, candidates[best], float(ious[i, best])))
    return pairs


def pair_errors(det_boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Absolute centre/size errors of matched xywh boxes in units of the true box: (n, 4) columns
    |Δx_c|/w, |Δy_c|/h, |Δw|/w, |Δh|/h."""
    d = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if d.shape != g.shape:
        raise ValueError(f"det_boxes and gt_boxes must have the same shape, got {d.shape} and {g.shape}")
    if np.any(g[:, 2:] <= 0):
        raise ValueError("gt_boxes must have positive width and height")
    centre = np.abs((d[:, :2] + d[:, 2:] / 2) - (g[:, :2] + g[:, 2:] / 2)) / g[:, 2:]
    size = np.abs(d[:, 2:] - g[:, 2:]) / g[:, 2:]
    return np.concatenate([centre, size], axis=1)


def localization_metrics(gt: Any, detections: Iterable[dict], iou_threshold: float = 0.5, max_dets: int = 100,
                         image_ids: Iterable[int] | None = None) -> dict[str, float]:
    """``loc_err``, ``loc_iou`` and ``loc_recall`` of ``detections`` against ``gt`` (see the module docstring);
    ``image_ids``: only these images count (default: all of ``gt``'s). With no true positive, ``loc_err`` and
    ``loc_iou`` are NaN."""
    from labkit.detection.cocoeval import _ground_truth_dict

    gt_dict = _ground_truth_dict(gt)
    if image_ids is not None:
        ids = {int(i) for i in image_ids}
        gt_dict = {**gt_dict, "images": [im for im in gt_dict["images"] if int(im["id"]) in ids],
                   "annotations": [a for a in gt_dict["annotations"] if int(a["image_id"]) in ids]}
        detections = [d for d in detections if int(d["image_id"]) in ids]
    pairs = match_detections(gt_dict, list(detections), iou_threshold, max_dets)
    n_gt = sum(1 for a in gt_dict["annotations"] if not a.get("iscrowd", 0))
    if not pairs:
        return {"loc_err": math.nan, "loc_iou": math.nan, "loc_recall": 0.0 if n_gt else math.nan}
    errors = pair_errors(np.array([p[0]["bbox"] for p in pairs]), np.array([p[1]["bbox"] for p in pairs]))
    return {"loc_err": float(errors.mean()), "loc_iou": float(np.mean([p[2] for p in pairs])),
            "loc_recall": len(pairs) / n_gt if n_gt else math.nan}
