"""How well a detector's predicted box scales describe its errors: likelihood, calibration and sharpness of the
true positives (issue 17, item 5).

A detection with learned uncertainty (:mod:`labkit.detection.uncertainty`) carries ``bbox_scales``: the scale of a
Laplace (b) or Gaussian (σ) distribution for each of its centre x, centre y, width and height, in pixels. On the
clean validation labels, for the true positives at one IoU threshold (COCO's own matches,
:func:`labkit.detection.localization.match_detections`), with g the true box's coordinate, μ the detection's, s its
scale and n the true box's size (its width for cx and w, its height for cy and h):

- ``unc_nll``: the negative log-likelihood of the clean box under the predicted distribution, −log p(g | μ, s), in
  units of the true box (g, μ, s divided by n — the units of ``loc_err``), averaged over pairs and coordinates;
- ``unc_calibration_error``: per coordinate, the probability integral transform u = F(g | μ, s) of every pair; for a
  calibrated predictor u is uniform on [0, 1]. At the levels p_j = j/15, j = 1 … 14 (the inner edges of 15 equal
  bins; p = 1 is exact for any predictor) the observed frequency p̂_j = #(u ≤ p_j)/N is compared with p_j:
  mean_j (p̂_j − p_j)², Kuleshov et al. (ICML 2018, eq. 9, weights 1/14) as probdet (Harakeh & Waslander, ICLR
  2021) computes its regression calibration error; the mean over the four coordinates, and each
  (``unc_calibration_error_by_coordinate``), with the 15-bin PIT histogram (``unc_pit_histogram``, fractions);
- ``unc_sharpness``: the mean predicted scale s/n (a sharper predictor has smaller scales; sharpness counts only
  beside calibration);
- ``unc_rank_correlation``: Spearman's ρ between each pair's mean relative scale mean_c(s_c/n_c) and the per-box
  label-noise scale recorded in the annotation (``label_noise_scale``, heteroscedastic synthetic data); None when
  an annotation lacks it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from scipy import special, stats

from labkit.detection.localization import match_detections
from labkit.detection.synthetic import NOISE_SCALE_KEY

__all__ = ["CALIBRATION_BINS", "BOX_COORDINATES", "DISTRIBUTIONS", "INJECTED_SCALE_KEY", "UNCERTAINTY_METRICS",
           "cdf", "nll", "pit_histogram", "calibration_curve", "calibration_error", "MatchedScales",
           "matched_scales", "uncertainty_metrics", "scale_metrics"]

CALIBRATION_BINS = 15
BOX_COORDINATES = ("cx", "cy", "w", "h")
DISTRIBUTIONS = ("laplace", "gaussian")
#: the annotation key of a box's injected label-noise scale (b_i as a fraction of its width/height)
INJECTED_SCALE_KEY = NOISE_SCALE_KEY
#: the scalar keys :func:`uncertainty_metrics` returns, with whether larger is better
UNCERTAINTY_METRICS = {"unc_nll": False, "unc_calibration_error": False, "unc_sharpness": False,
                       "unc_rank_correlation": True}


def _check_distribution(distribution: str) -> str:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got distribution={distribution!r}")
    return distribution


def cdf(y: Any, mu: Any, scale: Any, distribution: str = "laplace") -> np.ndarray:
    """F(y | μ, s): Laplace ½e^{z} (z < 0), 1 − ½e^{−z} (z ≥ 0) with z = (y − μ)/s; Gaussian Φ((y − μ)/s)."""
    z = (np.asarray(y, np.float64) - np.asarray(mu, np.float64)) / np.asarray(scale, np.float64)
    if _check_distribution(distribution) == "gaussian":
        return special.ndtr(z)
    tail = 0.5 * np.exp(-np.abs(z))  # never overflows, and keeps the digits of both tails
    return np.where(z < 0, tail, 1.0 - tail)


def nll(y: Any, mu: Any, scale: Any, distribution: str = "laplace") -> np.ndarray:
    """−log p(y | μ, s): Laplace |y − μ|/s + log 2s (eq. 17); Gaussian (y − μ)²/(2s²) + log s + ½ log 2π."""
    s = np.asarray(scale, np.float64)
    z = (np.asarray(y, np.float64) - np.asarray(mu, np.float64)) / s
    if _check_distribution(distribution) == "gaussian":
        return 0.5 * z * z + np.log(s) + 0.5 * math.log(2 * math.pi)
    return np.abs(z) + np.log(2 * s)


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got bins={bins!r}")
    return bins


def pit_histogram(pit: Any, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """The fraction of PIT values in each of ``bins`` equal bins of [0, 1] (uniform: 1/bins each)."""
    u = np.asarray(pit, np.float64).ravel()
    counts, _ = np.histogram(u, bins=_check_bins(bins), range=(0.0, 1.0))
    return counts / max(u.size, 1)


def calibration_curve(pit: Any, bins: int = CALIBRATION_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(levels p_j = j/bins for j = 1 … bins − 1, observed frequencies #(u ≤ p_j)/N): the reliability diagram."""
    u = np.sort(np.asarray(pit, np.float64).ravel())
    levels = np.arange(1, _check_bins(bins)) / bins
    return levels, np.searchsorted(u, levels, side="right") / max(u.size, 1)


def calibration_error(pit: Any, bins: int = CALIBRATION_BINS) -> float:
    """mean_j (p̂_j − p_j)² over the levels of :func:`calibration_curve` (0 for a calibrated predictor); NaN for no
    values."""
    if np.asarray(pit).size == 0:
        return math.nan
    levels, observed = calibration_curve(pit, bins)
    return float(np.mean((observed - levels) ** 2))


@dataclass(frozen=True)
class MatchedScales:
    """The true positives' coordinates (N, 4) as (cx, cy, w, h) in pixels — ``truth`` (clean box), ``predicted``
    (detection), ``scales`` (its predicted scales), ``sizes`` (w, h, w, h of the true box) — and ``injected`` (N,),
    the annotations' label-noise scales (NaN where one is missing)."""

    truth: np.ndarray
    predicted: np.ndarray
    scales: np.ndarray
    sizes: np.ndarray
    injected: np.ndarray

    def pit(self, distribution: str = "laplace") -> np.ndarray:
        """(N, 4) probability integral transforms F(truth | predicted, scales)."""
        return cdf(self.truth, self.predicted, self.scales, distribution)


def _cxcywh(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2] + xywh[:, 2:] / 2, xywh[:, 2:]], axis=1)


def matched_scales(gt: Any, detections: Iterable[dict], iou_threshold: float = 0.5, max_dets: int = 100,
                   image_ids: Iterable[int] | None = None) -> MatchedScales:
    """The true positives of ``detections`` (COCO results with ``bbox_scales``) against ``gt`` (a COCO dataset dict,
    COCO object or path), matched as :func:`~labkit.detection.localization.match_detections` does; ``image_ids``:
    only these images count."""
    from labkit.detection.cocoeval import _ground_truth_dict

    gt_dict = _ground_truth_dict(gt)
    detections = list(detections)
    if image_ids is not None:
        ids = {int(i) for i in image_ids}
        gt_dict = {**gt_dict, "images": [im for im in gt_dict["images"] if int(im["id"]) in ids],
                   "annotations": [a for a in gt_dict["annotations"] if int(a["image_id"]) in ids]}
        detections = [d for d in detections if int(d["image_id"]) in ids]
    missing = sum("bbox_scales" not in d for d in detections)
    if missing:
        raise ValueError(f"detections: {missing} of {len(detections)} have no 'bbox_scales' (a model with learned "
                         "uncertainty writes them)")
    pairs = match_detections(gt_dict, detections, iou_threshold, max_dets)
    det = np.array([p[0]["bbox"] for p in pairs], np.float64).reshape(-1, 4)
    ann = np.array([p[1]["bbox"] for p in pairs], np.float64).reshape(-1, 4)
    scales = np.array([p[0]["bbox_scales"] for p in pairs], np.float64).reshape(-1, 4)
    injected = np.array([float(p[1].get(INJECTED_SCALE_KEY, math.nan)) for p in pairs], np.float64)
    return MatchedScales(_cxcywh(ann), _cxcywh(det), scales, ann[:, [2, 3, 2, 3]], injected)


def uncertainty_metrics(gt: Any, detections: Iterable[dict], distribution: str = "laplace",
                        iou_threshold: float = 0.5, max_dets: int = 100, image_ids: Iterable[int] | None = None,
                        bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """``unc_nll``, ``unc_calibration_error`` (and by coordinate), ``unc_pit_histogram``, ``unc_sharpness``,
    ``unc_rank_correlation``, ``unc_true_positives`` and ``unc_distribution`` (see the module docstring) of the
    true positives of ``detections`` (:func:`matched_scales`). Without a true positive the numbers are NaN."""
    _check_distribution(distribution)
    return scale_metrics(matched_scales(gt, detections, iou_threshold, max_dets, image_ids), distribution, bins)


def scale_metrics(m: MatchedScales, distribution: str = "laplace", bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """The ``unc_*`` metrics of the module docstring for the boxes of ``m``, however they were paired (COCO's
    matches in :func:`uncertainty_metrics`; each ground-truth box's own prediction in the uncertainty study)."""
    _check_distribution(distribution)
    n = len(m.truth)
    pit = m.pit(distribution)
    by_coordinate = {c: calibration_error(pit[:, k], bins) for k, c in enumerate(BOX_COORDINATES)}
    relative = m.scales / m.sizes
    rho = math.nan
    if n >= 3 and not np.isnan(m.injected).any():
        per_box = relative.mean(axis=1)
        if np.ptp(per_box) > 0 and np.ptp(m.injected) > 0:  # a constant has no ranks to correlate
            rho = float(stats.spearmanr(per_box, m.injected).statistic)
    return {
        "unc_distribution": distribution,
        "unc_true_positives": n,
        "unc_nll": float(nll(m.truth / m.sizes, m.predicted / m.sizes, relative, distribution).mean()) if n
        else math.nan,
        "unc_calibration_error": float(np.mean(list(by_coordinate.values()))) if n else math.nan,
        "unc_calibration_error_by_coordinate": by_coordinate,
        "unc_pit_histogram": {c: pit_histogram(pit[:, k], bins).tolist() for k, c in enumerate(BOX_COORDINATES)},
        "unc_sharpness": float(relative.mean()) if n else math.nan,
        "unc_rank_correlation": rho,
    }
