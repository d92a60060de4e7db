"""labkit.detection.cocoeval: the fast backend's 12 stats equal pycocotools' (the reference) to 1e-9, and both
give the values of hand-computed one-box cases."""
from __future__ import annotations

import copy
import json

import pytest
from pycocotools.coco import COCO

from labkit.detection.cocoeval import BACKENDS, STAT_NAMES, evaluate_detections, synthetic_eval_problem


def _one_box_problem(det_box, gt_box=(0.0, 0.0, 100.0, 100.0)):
    gt = {
        "images": [{"id": 7, "width": 200, "height": 200}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": list(gt_box),
                         "area": gt_box[2] * gt_box[3], "iscrowd": 0}],
        "categories": [{"id": 3, "name": "thing"}],
    }
    return gt, [{"image_id": 7, "category_id": 3, "bbox": list(det_box), "score": 0.9}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_perfect_medium_box_by_hand(backend):
    # one 50 × 50 object (medium: 32² ≤ area < 96²) found exactly: every AP/AR is 1, the empty ranges are -1
    gt, dets = _one_box_problem((10.0, 20.0, 50.0, 50.0), gt_box=(10.0, 20.0, 50.0, 50.0))
    stats = evaluate_detections(gt, dets, backend=backend)
    expected = dict.fromkeys(STAT_NAMES, 1.0)
    expected.update(AP_small=-1.0, AP_large=-1.0, AR_small=-1.0, AR_large=-1.0)
    assert stats == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_overlap_by_hand(backend):
    # IoU = 62/100 = 0.62 clears the thresholds 0.50, 0.55, 0.60 of the ten: AP = AR = 3/10; AP50 = 1, AP75 = 0
    gt, dets = _one_box_problem((0.0, 0.0, 100.0, 62.0))
    stats = evaluate_detections(gt, dets, backend=backend)
    assert stats["AP"] == pytest.approx(0.3, abs=1e-12)
    assert stats["AP50"] == pytest.approx(1.0, abs=1e-12)
    assert stats["AP75"] == pytest.approx(0.0, abs=1e-12)
    assert stats["AP_large"] == pytest.approx(0.3, abs=1e-12)  # 100² > 96²
    assert stats["AR100"] == pytest.approx(0.3, abs=1e-12)
    assert stats["AP_small"] == -1.0


@pytest.mark.parametrize("score_decimals", [None, 2])  # 2 decimals: many tied scores, the sort order matters
def test_fast_backend_equals_pycocotools(score_decimals):
    gt, dets = synthetic_eval_problem(150, seed=3, score_decimals=score_decimals)
    fast = evaluate_detections(gt, dets, backend="fast")
    reference = evaluate_detections(gt, dets, backend="pycocotools")
    assert list(fast) == list(STAT_NAMES)
    assert 0.05 < reference["AP"] < 0.9 and reference["AP_small"] > 0  # a problem with something to measure
    for name in STAT_NAMES:
        assert fast[name] == pytest.approx(reference[name], abs=1e-9), name


def test_image_subset_paths_and_coco_objects(tmp_path):
    gt, dets = synthetic_eval_problem(40, seed=5)
    subset = [img["id"] for img in gt["images"][::3]]
    reference = evaluate_detections(gt, dets, backend="pycocotools", image_ids=subset)
    gt_path, det_path = tmp_path / "gt.json", tmp_path / "dets.json"
    gt_path.write_text(json.dumps(gt))
    det_path.write_text(json.dumps(dets))
    assert evaluate_detections(gt_path, det_path, image_ids=subset) == pytest.approx(reference, abs=1e-9)
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    assert evaluate_detections(coco, dets, image_ids=subset) == pytest.approx(reference, abs=1e-9)
    assert evaluate_detections(gt, dets) != pytest.approx(reference, abs=1e-9)  # the subset did change things


def test_arguments_are_not_modified():
    gt, dets = synthetic_eval_problem(5, seed=2)
    before = copy.deepcopy((gt, dets))
    for backend in BACKENDS:
        evaluate_detections(gt, dets, backend=backend)
    assert (gt, dets) == before


def test_no_detections_score_zero_in_both_backends():
    gt, _ = synthetic_eval_problem(6, seed=4)
    for backend in BACKENDS:
        stats = evaluate_detections(gt, [], backend=backend)
        assert stats["AP"] == 0.0 and stats["AR100"] == 0.0, backend


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(backend="detectron"), "backend"),
        (dict(detections=[{"image_id": 7, "bbox": [0, 0, 1, 1], "score": 1.0}]), r"detections\[0\]"),
        (dict(detections=[{"image_id": 7, "category_id": 3, "bbox": [0, 0, 1], "score": 1.0}]), "bbox"),
        (dict(detections=[{"image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 1.0}]), "image_id"),
        (dict(gt={"images": []}), "gt"),
        (dict(image_ids=[7, 8]), "image_ids"),
        (dict(detections={"not": "a list"}), "detections"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    gt, dets = _one_box_problem((0.0, 0.0, 10.0, 10.0))
    args = dict(gt=gt, detections=dets) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        evaluate_detections(**args)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="gt"):
        evaluate_detections(tmp_path / "nope.json", [])


def test_eval_benchmark_prints_equal_stats_as_json(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_eval.py"
    done = subprocess.run([sys.executable, str(bench), "--images", "20", "--repeats", "1"], capture_output=True,
                          text=True, check=True, cwd=tmp_path)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["stats_equal_1e-9"] and result["images"] == 20 and result["ratio"] > 0
