"""How well a detector places its boxes: the localization error of its true positives, in box-size units.

AP75 mixes localization with recall and ranking and moves in steps; the noise study (``labkit.experiments``) asks a
narrower question — does the box loss whose label scale α·σ matches the injected label noise b₁ place boxes best
(eq. 42)? — so it also reports what the box loss is about, on the clean validation labels:

- the true positives at one IoU threshold (default 0.5) are COCO's own: pycocotools' ``COCOeval.evaluate()`` is
  run at that threshold, area range "all", ``max_dets`` detections per image and category, and its ``evalImgs``
  matches are read (:func:`match_detections`). COCO's rule (``COCOeval.evaluateImg``): per image and category the
  detections are taken in descending score, the first ``max_dets`` only, and each takes the not yet matched
  ground-truth box of highest IoU ≥ the threshold, ignored boxes (crowd) last; a crowd box absorbs any number of
  detections, and a detection matched to an ignored box is ignored, not a true positive;
- for each matched pair, the error of the centre/size coordinates in units of the true box, the parameterisation
  the label noise is injected in (eq. 16 as ``labkit.detection.synthetic`` applies it):
  e = (|x̂_c − x_c| / w, |ŷ_c − y_c| / h, |ŵ − w| / w, |ĥ − h| / h). For Laplace label noise of scale b₁·w the mean
  |noise| / w is exactly b₁, so ``loc_err`` reads on the same scale as b₁;
- :func:`localization_metrics`: ``loc_err`` (mean of e over pairs and the four coordinates), ``loc_iou`` (mean IoU
  of the pairs) and ``loc_recall`` (matched / non-crowd ground-truth boxes).
"""
from __future__ import annotations

import contextlib
import io
import math
from typing import Any, Iterable

import numpy as np

__all__ = ["LOCALIZATION_METRICS", "match_detections", "pair_errors", "localization_metrics"]

#: the keys :func:`localization_metrics` returns, with whether larger is better
LOCALIZATION_METRICS = {"loc_err": False, "loc_iou": True, "loc_recall": True}


def _check_threshold(iou_threshold: float) -> float:
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float)) \
            or not 0.0 < iou_threshold < 1.0:
        raise ValueError(f"iou_threshold must be a number in (0, 1), got iou_threshold={iou_threshold!r}")
    return float(iou_threshold)


def _check_max_dets(max_dets: int) -> int:
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
        raise ValueError(f"max_dets must be an int >= 1, got max_dets={max_dets!r}")
    return max_dets


def _true_positives(annotations: list[dict], detections: list[dict], iou_threshold: float, max_dets: int
                    ) -> list[tuple[int, int]]:
    """(index in ``detections``, index in ``annotations``) of each true positive, in the order of ``detections``,
    read from pycocotools' ``COCOeval.evalImgs`` after ``evaluate()`` at ``iou_threshold``, area range "all" and
    ``max_dets`` detections per image and category.

    COCOeval is given copies renumbered by position (annotation ids and, by ``loadRes``, detection ids are index + 1),
    so missing or repeated ids in the inputs do not matter; ``iscrowd`` defaults to 0 and ``area`` to the box's.
    Only the (image, category) cells with ground truth are evaluated: a detection elsewhere is never a true positive
    and does not change the matching of any other cell.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gts = []
    for k, ann in enumerate(annotations):
        box = [float(v) for v in ann["bbox"]]
        area = ann.get("area")
        gts.append({"id": k + 1, "image_id": int(ann["image_id"]), "category_id": int(ann["category_id"]),
                    "bbox": box, "area": box[2] * box[3] if area is None else float(area),
                    "iscrowd": int(bool(ann.get("iscrowd", 0)))})
    cells = {(g["image_id"], g["category_id"]) for g in gts}
    kept, dts = [], []
    for i, det in enumerate(detections):
        key = int(det["image_id"]), int(det["category_id"])
        if key in cells:
            kept.append(i)
            dts.append({"image_id": key[0], "category_id": key[1], "bbox": [float(v) for v in det["bbox"]],
                        "score": float(det["score"])})
    if not dts:  # loadRes cannot take an empty list
        return []
    image_ids = sorted({g["image_id"] for g in gts})
    category_ids = sorted({g["category_id"] for g in gts})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = {"images": [{"id": i} for i in image_ids], "annotations": gts,
                           "categories": [{"id": c} for c in category_ids]}
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(dts), iouType="bbox")
        params = evaluator.params
        all_areas = params.areaRng[params.areaRngLbl.index("all")]
        params.imgIds, params.catIds = image_ids, category_ids
        params.iouThrs, params.maxDets = np.array([iou_threshold]), [max_dets]
        params.areaRng, params.areaRngLbl = [all_areas], ["all"]
        evaluator.evaluate()
    pairs = []
    for result in evaluator.evalImgs:  # one per (category, image); None where a cell has neither gt nor detections
        if result is None:
            continue
        # dtMatches: the matched gt id (0: none) per IoU threshold; dtIgnore: matched to an ignored (crowd) box
        for det_id, gt_id, ignored in zip(result["dtIds"], result["dtMatches"][0], result["dtIgnore"][0]):
            if gt_id > 0 and not ignored:
                pairs.append((kept[int(det_id) - 1], int(gt_id) - 1))
    pairs.sort()
    return pairs


def _pair_iou(det_boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """IoU of each xywh detection box with the ground-truth box in the same row (neither a crowd box)."""
    d, g = det_boxes, gt_boxes
    inter = np.clip(np.minimum(d[:, 0] + d[:, 2], g[:, 0] + g[:, 2]) - np.maximum(d[:, 0], g[:, 0]), 0, None) * \
        np.clip(np.minimum(d[:, 1] + d[:, 3], g[:, 1] + g[:, 3]) - np.maximum(d[:, 1], g[:, 1]), 0, None)
    union = d[:, 2] * d[:, 3] + g[:, 2] * g[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _boxes(items: list[dict]) -> np.ndarray:
    return np.array([item["bbox"] for item in items], dtype=np.float64).reshape(-1, 4)


def match_detections(gt: Any, detections: list[dict], iou_threshold: float = 0.5, max_dets: int = 100
                     ) -> list[tuple[dict, dict, float]]:
    """The true positives of ``detections`` at ``iou_threshold``, as COCO's evaluation finds them: (detection,
    ground-truth annotation, IoU) triples, in the order of ``detections``.

    ``gt``: a COCO dataset dict, COCO object or path (as :func:`labkit.detection.cocoeval.evaluate_detections`
    takes); ``detections``: COCO results (``image_id``, ``category_id``, ``bbox`` xywh, ``score``); neither is
    modified, and detections on images or categories without ground truth are never matched. The matches are
    pycocotools' ``COCOeval`` matches at this one threshold (area range "all", the top ``max_dets`` per image and
    category; the rule is in the module docstring): a detection matched to a crowd box is not returned (COCO
    ignores it). The annotations returned are copies of ``gt``'s; the IoU is the pair's plain IoU.
    """
    from labkit.detection.cocoeval import _ground_truth_dict

    threshold, max_dets = _check_threshold(iou_threshold), _check_max_dets(max_dets)
    annotations = _ground_truth_dict(gt)["annotations"]
    detections = list(detections)
    pairs = _true_positives(annotations, detections, threshold, max_dets)
    dets, anns = [detections[i] for i, _ in pairs], [annotations[j] for _, j in pairs]
    ious = _pair_iou(_boxes(dets), _boxes(anns))
    return [(det, ann, float(iou)) for det, ann, iou in zip(dets, anns, ious)]


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
    """``loc_err``, ``loc_iou`` and ``loc_recall`` of ``detections`` against ``gt`` (see the module docstring) over
    the true positives :func:`match_detections` finds; ``image_ids``: only these images count (default: all of
    ``gt``'s). With no true positive, ``loc_err`` and ``loc_iou`` are NaN."""
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
