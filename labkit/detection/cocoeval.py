"""COCO bbox evaluation with a choice of backend: ``faster-coco-eval`` (C++, the default) or pycocotools (reference).

Both compute the same 12 ``COCOeval.stats`` (tests assert equality to 1e-9 against pycocotools); the fast backend
does the per-image matching and the accumulation in C++. Each library is used through its own API and quietened,
never patched. :func:`evaluate_detections` is the one entry point; :func:`synthetic_eval_problem` makes random
ground truth with jittered, scored detections to test and time it.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["BACKENDS", "FAST", "REFERENCE", "STAT_NAMES", "evaluate_detections", "synthetic_eval_problem"]

FAST = "fast"  # faster-coco-eval
REFERENCE = "pycocotools"
BACKENDS = (FAST, REFERENCE)

#: COCOeval.stats, in order (areas: small < 32², medium < 96², large; AR at 1, 10, 100 detections per image)
STAT_NAMES = (
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
)
_DETECTION_KEYS = ("image_id", "category_id", "bbox", "score")


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file at {path}")
    with open(path) as f:
        return json.load(f)


def _ground_truth_dict(gt: Any) -> dict:
    """The COCO ground-truth dataset dict from a path, a dict, or a COCO object of either library; annotations are
    copied (COCOeval writes an ``ignore`` flag into each)."""
    if isinstance(gt, (str, os.PathLike)):
        gt = _read_json(Path(gt), "gt")
    elif hasattr(gt, "dataset") and hasattr(gt, "getImgIds"):
        gt = gt.dataset
    if not isinstance(gt, Mapping) or not all(k in gt for k in ("images", "annotations", "categories")):
        raise ValueError("gt must be a COCO object, a COCO dataset dict or a path to one "
                         "(with 'images', 'annotations' and 'categories')")
    return {**gt, "annotations": [dict(ann) for ann in gt["annotations"]]}


def _detection_list(detections: Any, image_ids: set[int]) -> list[dict]:
    """Shallow copies of the detections (both libraries add keys to what they are given), checked."""
    if isinstance(detections, (str, os.PathLike)):
        detections = _read_json(Path(detections), "detections")
    if not isinstance(detections, list):
        raise TypeError(f"detections must be a list of dicts or a path to a JSON list, got {type(detections).__name__}")
    out = []
    unknown = 0
    for i, det in enumerate(detections):
        if not isinstance(det, Mapping) or any(k not in det for k in _DETECTION_KEYS):
            raise ValueError(f"detections[{i}] must be a dict with keys {_DETECTION_KEYS}, got {det!r}")
        if len(det["bbox"]) != 4:
            raise ValueError(f"detections[{i}]['bbox'] must be [x, y, width, height], got {det['bbox']!r}")
        unknown += det["image_id"] not in image_ids
        out.append(dict(det))
    if unknown:
        raise ValueError(f"detections: {unknown} of {len(out)} detections name an image_id that is not in gt")
    return out


def _stats_pycocotools(gt: dict, detections: list[dict], image_ids: list[int] | None) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and the summary table
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if detections:
            coco_dt = coco_gt.loadRes(detections)
        else:  # loadRes cannot take an empty list; no detections score 0 wherever there is ground truth
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        if image_ids is not None:
            evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats, dtype=np.float64)


def _stats_fast(gt: dict, detections: list[dict], image_ids: list[int] | None) -> np.ndarray:
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*args: Any, **kwargs: Any) -> None:
        return None

    coco_gt = COCO(gt, print_function=quiet)
    coco_dt = coco_gt.loadRes(detections)
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=quiet)
    if image_ids is not None:
        evaluator.params.imgIds = image_ids
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return np.asarray(evaluator.stats[: len(STAT_NAMES)], dtype=np.float64)


_BACKEND_FUNCTIONS = {FAST: _stats_fast, REFERENCE: _stats_pycocotools}


def evaluate_detections(
    gt: Any,
    detections: list[dict] | str | os.PathLike,
    backend: str = FAST,
    image_ids: Iterable[int] | None = None,
) -> dict[str, float]:
    """The 12 COCO bbox stats (``STAT_NAMES``: AP, AP50, AP75, AP_small, …, AR_large) of ``detections``.

    ``gt``: a COCO object (pycocotools or faster-coco-eval), a COCO dataset dict or a path to its JSON.
    ``detections``: COCO results, a list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` or a
    path to such a JSON list; every ``image_id`` must be in ``gt``. ``backend``: ``"fast"`` (faster-coco-eval) or
    ``"pycocotools"`` (the reference). ``image_ids``: evaluate on these images only (default: all of ``gt``'s).
    Neither argument is modified.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got backend={backend!r}")
    gt_dict = _ground_truth_dict(gt)
    known = {img["id"] for img in gt_dict["images"]}
    dets = _detection_list(detections, known)
    ids = None
    if image_ids is not None:
        ids = sorted({int(i) for i in image_ids})
        missing = [i for i in ids if i not in known]
        if missing:
            raise ValueError(f"image_ids: {len(missing)} ids are not in gt, e.g. {missing[:5]}")
    stats = _BACKEND_FUNCTIONS[backend](gt_dict, dets, ids)
    return {name: float(value) for name, value in zip(STAT_NAMES, stats)}


def synthetic_eval_problem(
    n_images: int, n_categories: int = 5, seed: int = 0, score_decimals: int | None = None
) -> tuple[dict, list[dict]]:
    """Random COCO ground truth and detections to exercise an evaluator: (gt dataset dict, detections list).

    Images are 640 × 480 with 0–15 objects of sizes from 6 to 400 px (all three area ranges), a few crowd regions
    and masks' areas below their boxes'; category ids are not contiguous. Detections: most objects found with a
    jittered box (some with the wrong category), duplicates, and false positives, up to ~120 per image so the
    100-detection cap matters. ``score_decimals`` rounds scores (ties between detections) when given.
    """
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ValueError(f"n_images must be an int >= 1, got {n_images!r}")
    if isinstance(n_categories, bool) or not isinstance(n_categories, int) or n_categories < 1:
        raise ValueError(f"n_categories must be an int >= 1, got {n_categories!r}")
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    category_ids = [int(c) for c in 1 + 3 * np.arange(n_categories)]  # 1, 4, 7, …: not contiguous
    images = [{"id": 1000 + i, "width": width, "height": height, "file_name": f"{i:06d}.png"} for i in range(n_images)]
    annotations, detections = [], []

    def random_box(n: int, lo: float, hi: float) -> np.ndarray:
        size = np.exp(rng.uniform(np.log(lo), np.log(hi), (n, 1))) * rng.uniform(0.5, 1.5, (n, 2))
        size = np.minimum(size, [width - 1, height - 1])
        corner = rng.uniform(0, 1, (n, 2)) * ([width, height] - size)
        return np.concatenate([corner, size], axis=1)

    def score(low: float, high: float) -> float:
        value = float(rng.uniform(low, high))
        return round(value, score_decimals) if score_decimals is not None else value

    for image in images:
        n_objects = int(rng.integers(0, 16))
        boxes = random_box(n_objects, 6, 400)
        for box in boxes:
            crowd = int(rng.uniform() < 0.03)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image["id"], "category_id": int(rng.choice(category_ids)),
                "bbox": [float(v) for v in box], "area": float(box[2] * box[3] * rng.uniform(0.6, 1.0)),
                "iscrowd": crowd,
            })
        for ann in annotations[len(annotations) - n_objects:]:
            for _ in range(int(rng.integers(0, 3))):  # 0–2 detections per object: misses and duplicates
                x, y, w, h = ann["bbox"]
                jitter = rng.normal(0, 0.07, 4) * [w, h, w, h]
                box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
                category = ann["category_id"] if rng.uniform() < 0.9 else int(rng.choice(category_ids))
                detections.append({"image_id": image["id"], "category_id": category,
                                   "bbox": [round(float(v), 2) for v in box], "score": score(0.2, 1.0)})
        for box in random_box(int(rng.integers(0, 90)), 4, 500):  # false positives
            detections.append({"image_id": image["id"], "category_id": int(rng.choice(category_ids)),
                               "bbox": [round(float(v), 2) for v in box], "score": score(0.01, 0.8)})
    categories = [{"id": c, "name": f"class{c}", "supercategory": "synthetic"} for c in category_ids]
    gt = {"info": {"description": "labkit synthetic evaluation problem"}, "images": images,
          "annotations": annotations, "categories": categories}
    return gt, detections
