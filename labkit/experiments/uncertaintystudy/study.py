"""The uncertainty study end to end (``python -m labkit experiment uncertainty``).

Order of work: (1) synthetic shapes whose contrast varies (recorded per box) and a clean reference detector trained
on them once (the head study's :func:`~labkit.experiments.headstudy.reference.train_reference`, reused while the
commit and config stay the same); (2) training and validation RoIs with the frozen box head's features, cached in
``<out>/runs/features.pt`` (:func:`~labkit.experiments.headstudy.study.roi_sets`); (3) per noise condition, each
seed's noisy training labels (a fresh draw per seed; the same standard Laplace draws in every condition, so
conditions are paired too) and one batched fit of every (seed, arm) (:mod:`.fitting`); (4) every arm scored on the
clean validation boxes with and without variance voting (:mod:`.evaluation`), and for the first ``ap_seeds`` seeds
put back into the detector for COCO AP (:mod:`.detector`); (5) the analysis and files (:mod:`.report`).
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from labkit import PROJECT_ROOT
from labkit.detection.data import load_dataset
from labkit.detection.runs import resolve_device
from labkit.detection.synthetic import CONTRAST_KEY, laplace_label_noise, noise_scales
from labkit.experiments.headstudy.reference import prepare_reference
from labkit.experiments.headstudy.rois import RoISet, encode
from labkit.experiments.headstudy.study import check_seeds, frozen_roi_sets, timed
from labkit.experiments.uncertaintystudy.design import (ARMS, Arm, NoiseCondition, UncertaintyScale,
                                                        resolve_uncertainty_scale)
from labkit.experiments.uncertaintystudy.detector import detector_metrics, scale_detector
from labkit.experiments.uncertaintystudy.evaluation import VOTING, evaluate_arms, example_detections
from labkit.experiments.uncertaintystudy.fitting import ScaleHeadsFit, fit_scale_heads
from labkit.experiments.uncertaintystudy.report import build_results, write_uncertainty_study
from labkit.provenance import describe

__all__ = ["EXPERIMENT", "LAB_DATA", "TRAIN_STREAM", "VAL_STREAM", "noisy_labels", "run_uncertainty_study"]

EXPERIMENT = "uncertainty"
#: the lab scale's data: the bundled generator's shapes with a contrast per object (no label noise in the files)
LAB_DATA = PROJECT_ROOT / "data" / "synthetic-contrast"
#: noise generators default_rng([seed, stream]): training labels, the validation labels' noisy twin
TRAIN_STREAM, VAL_STREAM = 301, 302
#: validation images whose boxes the results keep for drawing (first seed, every arm, voting off)
EXAMPLE_IMAGES = (0, 1, 2, 3, 4, 5)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"uncertainty: {message}", file=sys.stderr, flush=True)


def noisy_labels(boxes: np.ndarray, scales: np.ndarray, seed: int, stream: int) -> torch.Tensor:
    """Each xyxy box's noisy label (eq. 16, per-box Laplace scale ``scales``, box sizes) for ``seed`` (float64)."""
    rng = np.random.default_rng([int(seed), int(stream)])
    return torch.as_tensor(laplace_label_noise(np.asarray(boxes, np.float64), scales, rng), dtype=torch.float64)


def _targets(rois: RoISet, scales: np.ndarray, seeds: Sequence[int]) -> torch.Tensor:
    """[S, N, 4] training targets (σ = 1): each box's noisy label for the seed, encoded against its RoIs."""
    gt = rois.gt_boxes.numpy()
    return torch.stack([encode(noisy_labels(gt, scales, s, TRAIN_STREAM)[rois.owner], rois.rois.to(torch.float64))
                        .to(torch.float32) for s in seeds])


def _median_scales(fit: ScaleHeadsFit, scale: torch.Tensor, seed_count: int) -> dict[str, list[float]]:
    """Per learned Laplace arm, the median over seeds of the median predicted scale per coordinate in the arm's
    σ-scaled target units (what ``labkit.interpret.implied_stage`` reads)."""
    out: dict[str, list[float]] = {}
    weights = fit.coder_weights()
    for a, arm in enumerate(fit.arms):
        if arm.learned and arm.distribution == "laplace":
            per_seed = [(scale[s * len(fit.arms) + a] * weights[a]).median(dim=0).values.tolist()
                        for s in range(seed_count)]
            out[arm.name] = [statistics.median(v) for v in zip(*per_seed)]
    return out


def _relative(path: Path) -> str:
    """``path`` relative to the project when inside it (results stay valid in another checkout)."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _condition_rows(condition: NoiseCondition, arms: Sequence[Arm], seeds: Sequence[int], fit: ScaleHeadsFit,
                    metrics: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for m in range(len(fit.loss)):
        arm, seed = arms[m % len(arms)], seeds[m // len(arms)]
        for k, voting in enumerate(VOTING):
            rows.append({"condition": condition.name, "noise_model": condition.model, "b1": condition.b1,
                         "seed": int(seed), "arm": arm.name, "label": arm.label, "loss": arm.loss,
                         "preset": arm.preset, "distribution": arm.distribution, "voting": voting,
                         "train_loss": float(fit.loss[m]), "seconds_per_fit": seconds / len(fit.loss),
                         **metrics[m * len(VOTING) + k]})
    return rows


def run_uncertainty_study(scale: str | UncertaintyScale = "smoke", seeds: int | Sequence[int] | None = None,
                          out: str | Path | None = None, device: str = "cpu", reuse: str = "same-commit",
                          progress: bool = True) -> dict[str, Any]:
    """Run the study at ``scale`` (``"smoke"``, ``"lab"`` or an :class:`UncertaintyScale`) for ``seeds`` and write
    ``runs.csv``, ``summary.csv``, ``differences.csv``, ``results.json`` and ``uncertainty_study.png`` under ``out``
    (default ``runs/uncertainty-<scale>``). ``reuse``: the reference detector and feature cache are reused at the
    same commit (``"same-commit"``), at any commit (``"any"``), or never. Returns what ``results.json`` holds."""
    sc = resolve_uncertainty_scale(scale)
    seed_list = check_seeds(seeds, sc)
    out = Path(out if out is not None else Path("runs") / f"{EXPERIMENT}-{sc.name}").resolve()
    dev = resolve_device(device)
    started = time.perf_counter()
    data_root = LAB_DATA if sc.name == "lab" else out / "runs" / "data"
    config, reference, timings = prepare_reference(sc, out, data_root, dev, reuse, EXPERIMENT, progress)
    train_dataset, val_dataset = load_dataset(data_root, "train"), load_dataset(data_root, "val")
    num_classes = len(val_dataset.categories)
    model, sets, cached, timings["features"] = frozen_roi_sets(reference, data_root, sc, num_classes + 1, out, reuse,
                                                               progress)
    train_set, val = sets["train"], sets["val"]
    contrast = {"train": train_dataset.box_extra(CONTRAST_KEY), "val": val_dataset.box_extra(CONTRAST_KEY)}
    for split, rois in sets.items():
        if len(contrast[split]) != len(rois.gt_boxes) or np.isnan(contrast[split]).any():
            raise ValueError(f"data: the {split} annotations of {data_root} must record each box's contrast "
                             f"(heteroscedastic synthetic data); got {len(contrast[split])} for "
                             f"{len(rois.gt_boxes)} boxes")
    with torch.no_grad():
        probs = torch.softmax(model.roi_heads.box_predictor.cls_score(val.head), dim=-1)
    scores = probs.gather(1, val.labels[:, None])[:, 0]
    detector = scale_detector(reference["run_dir"], num_classes + 1)
    arms, rows, implied, scatter, examples = ARMS, [], {}, {}, {}
    timings.update(fit=0.0, score=0.0, detector=0.0)
    for condition in sc.conditions:
        train_scales = noise_scales(contrast["train"], condition.b1, condition.model)
        val_scales = noise_scales(contrast["val"], condition.b1, condition.model)
        targets = _targets(train_set, train_scales, seed_list)
        fit, seconds = timed(fit_scale_heads, train_set.fc6, train_set.labels, targets, arms, seed_list, sc.epochs,
                             sc.batch, sc.lr, num_classes, train_set.head.shape[1])
        timings["fit"] += seconds
        _say(progress, f"{condition.name}: {len(fit.loss)} heads fitted in {seconds:.0f} s")
        tic = time.perf_counter()
        mu, scale = fit.predict(val.fc6, val.labels)
        noisy = torch.stack([noisy_labels(val.gt_boxes.numpy(), val_scales, seed_list[m // len(arms)], VAL_STREAM)
                             for m in range(len(mu))])
        metrics = evaluate_arms(mu, scale, val, scores, noisy, val_scales,
                                [arms[m % len(arms)].distribution for m in range(len(mu))])
        drawn = example_detections(mu, scale, val, scores, range(len(arms)), EXAMPLE_IMAGES)
        examples[condition.name] = {arms[m].name: v for m, v in drawn.items()}
        timings["score"] += time.perf_counter() - tic
        condition_rows = _condition_rows(condition, arms, seed_list, fit, metrics, seconds)
        tic = time.perf_counter()
        for row in condition_rows:
            m = seed_list.index(row["seed"]) * len(arms) + [a.name for a in arms].index(row["arm"])
            if row["seed"] in seed_list[:sc.ap_seeds]:
                row.update(detector_metrics(detector, fit, m, row["voting"], val_dataset, dev))
        timings["detector"] += time.perf_counter() - tic
        rows += condition_rows
        implied[condition.name] = _median_scales(fit, scale, len(seed_list))
        # the first seed's boxes: predicted relative scale (mean over coordinates) beside the injected scale
        kept = [r for r in condition_rows if r["seed"] == seed_list[0] and not r["voting"]]
        scatter[condition.name] = {"injected": [round(float(v), 6) for v in val_scales],
                                   **{r["arm"]: r.pop("relative_scales") for r in kept}}
        for r in condition_rows:
            r.pop("relative_scales", None)
        _say(progress, f"{condition.name}: scored in {time.perf_counter() - tic:.0f} s (detector included)")
    timings["total"] = time.perf_counter() - started
    results = build_results(sc, seed_list, rows, reference, implied, scatter, examples, timings,
                            {"train": len(train_set), "val": len(val), "train_boxes": len(train_set.gt_boxes),
                             "val_boxes": len(val.gt_boxes), "cached": cached},
                            {"root": _relative(data_root), "split": "val",
                             "images": [i for i in EXAMPLE_IMAGES if i < len(val_dataset)]}, describe(str(dev)))
    write_uncertainty_study(results, out)
    return results
