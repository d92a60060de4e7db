"""COCO evaluation of a detector: AP, AP50, AP75 and all 12 COCOeval stats (labkit.detection.cocoeval: the fast
faster-coco-eval backend by default, pycocotools as the reference; the two agree to 1e-9), and the localization
error of its true positives (labkit.detection.localization).

:func:`evaluate_run` (``python -m labkit evaluate --run runs/NAME``) rebuilds the run's model from ``config.json``, loads its last
checkpoint, evaluates on the validation split and writes ``metrics.json`` (atomically).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from labkit._io import write_json
from labkit.detection.cocoeval import FAST, STAT_NAMES, evaluate_detections
from labkit.detection.config import read_config
from labkit.detection.data import load_dataset, make_loader
from labkit.detection.localization import localization_metrics
from labkit.detection.model import build_model
from labkit.detection.runs import latest_checkpoint, resolve_device

__all__ = ["STAT_NAMES", "predict", "evaluate", "evaluate_run"]


def _check_dataset(dataset: Any) -> None:
    for attr in ("coco", "label_to_category_id"):
        if not hasattr(dataset, attr):
            raise TypeError(f"dataset must have a `{attr}` attribute (a labkit.detection.data.DetectionDataset), "
                            f"got {type(dataset).__name__}")


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: Any, device: str | torch.device | None = None, batch_size: int = 4,
            progress: bool = False) -> tuple[list[dict[str, Any]], list[int]]:
    """Run ``model`` (eval mode) over ``dataset``; return COCO-format results (xywh boxes, category ids, scores)
    and the image ids seen."""
    _check_dataset(dataset)
    if device is None:
        device = next(model.parameters()).device
    loader = make_loader(dataset, batch_size=batch_size, device=device)
    was_training = model.training
    model.eval()
    results, image_ids = [], []
    try:
        for images, targets in tqdm(loader, desc="evaluate", disable=None if progress else True, leave=False):
            outputs = model([im.to(device) for im in images])
            for target, out in zip(targets, outputs):
                image_id = int(target["image_id"])
                image_ids.append(image_id)
                boxes = out["boxes"].detach().float().cpu().clone()  # never edit the model's output
                boxes[:, 2:] -= boxes[:, :2]  # xyxy -> xywh
                for box, label, score in zip(boxes.tolist(), out["labels"].tolist(), out["scores"].tolist()):
                    results.append({"image_id": image_id, "category_id": dataset.label_to_category_id[int(label)],
                                    "bbox": [round(v, 3) for v in box], "score": round(score, 5)})
    finally:
        model.train(was_training)
    return results, image_ids


def evaluate(model: torch.nn.Module, dataset: Any, device: str | torch.device | None = None, batch_size: int = 4,
             progress: bool = False, backend: str = FAST) -> dict[str, Any]:
    """COCO bbox evaluation of ``model`` on ``dataset`` (a DetectionDataset: items (image, target), ``.coco``
    ground truth, ``.label_to_category_id``). Returns the 12 stats (AP, AP50, AP75, …), the localization of the
    true positives at IoU 0.5 (``loc_err``, ``loc_iou``, ``loc_recall``: :mod:`labkit.detection.localization`),
    ``num_images``, ``num_detections`` and ``seconds``. ``backend``: ``"fast"`` (faster-coco-eval) or ``"pycocotools"``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got batch_size={batch_size!r}")
    start = time.perf_counter()
    results, image_ids = predict(model, dataset, device=device, batch_size=batch_size, progress=progress)
    stats = evaluate_detections(dataset.coco, results, backend=backend, image_ids=image_ids)
    # no true positive leaves loc_err / loc_iou undefined: null in metrics.json (JSON has no NaN)
    stats.update({k: None if math.isnan(v) else v
                  for k, v in localization_metrics(dataset.coco, results, image_ids=image_ids).items()})
    stats.update(num_images=len(image_ids), num_detections=len(results), seconds=time.perf_counter() - start)
    return stats


def evaluate_run(run_dir: str | Path, split: str | None = None, device: str = "auto", batch_size: int = 4,
                 progress: bool = False) -> dict[str, Any]:
    """Evaluate the last checkpoint of ``run_dir`` on ``split`` (default: the run's ``val_split``) and write
    ``run_dir/metrics.json``. Returns the metrics."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    split = split or config.val_split
    if not split:
        raise ValueError(f"split: the run {run_dir} has no val_split; pass split=")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"run: no checkpoint in {run_dir / 'checkpoints'} (has the run trained?)")
    dev = resolve_device(device)
    dataset = load_dataset(config.data, split=split)
    model = build_model(config.model, len(dataset.categories) + 1, config.losses, image_size=config.image_size,
                        weights=checkpoint, backbone_weights=config.backbone_weights)
    metrics = evaluate(model.to(dev), dataset, device=dev, batch_size=batch_size, progress=progress)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    metrics.update(split=split, checkpoint=checkpoint.name, iteration=int(state["iteration"]))
    write_json(run_dir / "metrics.json", metrics)
    return metrics
