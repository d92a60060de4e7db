"""labkit.detection.localization: true positives exactly pycocotools' (its evalImgs from a default COCOeval, IoU 0.5,
area "all", are the reference), hand-computed COCO matching cases (score order, top-k, crowd regions), IoUs against
torchvision's box_iou, errors against the Laplace noise they measure, and the metrics recomputed from the
reference matches on labkit's synthetic evaluation problem."""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import box_iou

from labkit.detection.localization import localization_metrics, match_detections, pair_errors
from labkit.detection.oracle import jitter_boxes, paired_iou


def _random_case(seed: int, n_images: int = 6, n_cats: int = 3, crowd_rate: float = 0.0):
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img in range(1, n_images + 1):
        images.append({"id": img, "width": 100, "height": 100})
        for _ in range(rng.integers(0, 6)):
            xy, wh = rng.uniform(0, 70, 2), rng.uniform(4, 30, 2)
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": int(rng.integers(1, n_cats + 1)),
                         "bbox": [*xy, *wh], "area": float(wh.prod()), "iscrowd": int(rng.random() < crowd_rate)})
        own = [a for a in anns if a["image_id"] == img]
        for _ in range(rng.integers(0, 25)):
            if own and rng.random() < 0.7:  # near a true box, sometimes of another category
                a = own[rng.integers(len(own))]
                box = np.array(a["bbox"]) + rng.normal(0, 0.15, 4) * np.r_[a["bbox"][2:], a["bbox"][2:]]
                box[2:] = np.abs(box[2:]) + 1
                cat = a["category_id"] if rng.random() < 0.85 else int(rng.integers(1, n_cats + 1))
            else:
                box, cat = np.r_[rng.uniform(0, 70, 2), rng.uniform(4, 30, 2)], int(rng.integers(1, n_cats + 1))
            # a few exactly equal scores: the stable order decides, as in pycocotools
            score = float(np.round(rng.random(), 1 if rng.random() < 0.3 else 6))
            dets.append({"id": len(dets) + 1, "image_id": img, "category_id": cat, "bbox": box.tolist(),
                         "score": score})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"c{c}"} for c in range(1, n_cats + 1)]}
    return gt, dets


def _pycocotools_pairs(gt: dict, dets: list[dict], max_dets: int = 100) -> set[tuple[int, int]]:
    """(detection id, gt id) of every true positive at IoU 0.5, area range "all", ``max_dets`` per image and
    category, from pycocotools' evalImgs with its default parameters otherwise (ten IoU thresholds, four area
    ranges, as the COCO stats are computed); a match to a crowd box is not a true positive."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        if not dets:
            return set()
        res = coco.loadRes([dict(d) for d in dets])
        ev = COCOeval(coco, res, "bbox")
        ev.params.maxDets = [m for m in (1, 10) if m < max_dets] + [max_dets]  # evaluate() uses the last
        ev.evaluate()
    t = int(np.flatnonzero(np.isclose(ev.params.iouThrs, 0.5))[0])
    all_areas = ev.params.areaRng[ev.params.areaRngLbl.index("all")]
    crowd = {a["id"] for a in gt["annotations"] if a["iscrowd"]}
    pairs = set()
    for e in ev.evalImgs:
        if e is None or e["aRng"] != all_areas:
            continue
        assert e["maxDet"] == max_dets
        for det_id, gt_id in zip(e["dtIds"], e["dtMatches"][t]):
            if gt_id > 0 and int(gt_id) not in crowd:
                pairs.add((int(det_id), int(gt_id)))
    return pairs


@pytest.mark.parametrize("seed,crowd_rate,max_dets", [(0, 0.0, 100), (1, 0.0, 3), (2, 0.3, 100), (3, 0.3, 5),
                                                      (4, 0.5, 10)])
def test_matches_are_pycocotools_matches(seed, crowd_rate, max_dets):
    gt, dets = _random_case(seed, crowd_rate=crowd_rate)
    ours = {(d["id"], a["id"]) for d, a, _ in match_detections(gt, dets, 0.5, max_dets)}
    reference = _pycocotools_pairs(gt, dets, max_dets)
    assert len(reference) > 5
    assert ours == reference


@pytest.mark.parametrize("seed,score_decimals,subset", [(0, None, False), (1, 1, True), (2, 2, False)])
def test_metrics_are_those_of_the_pycocotools_matches(seed, score_decimals, subset):
    """On labkit's synthetic evaluation problem (all area ranges, crowd regions, duplicates, > 100 detections per
    image, tied scores): loc_err, loc_iou and loc_recall recomputed from pycocotools' own matches."""
    from labkit.detection.cocoeval import synthetic_eval_problem

    gt, dets = synthetic_eval_problem(30, n_categories=3, seed=seed, score_decimals=score_decimals)
    image_ids = None
    if subset:  # the images evaluate() passes; the reference sees only those
        image_ids = [im["id"] for im in gt["images"][::2]]
        gt = {**gt, "images": gt["images"][::2],
              "annotations": [a for a in gt["annotations"] if a["image_id"] in set(image_ids)]}
        dets = [d for d in dets if d["image_id"] in set(image_ids)]
    reference = sorted(_pycocotools_pairs(gt, dets))
    assert len(reference) > 20
    anns = {a["id"]: a for a in gt["annotations"]}
    pairs = match_detections(gt, dets)
    assert [(dets.index(d) + 1, a["id"]) for d, a, _ in pairs] == reference  # in the order of the detections
    det_boxes = np.array([dets[i - 1]["bbox"] for i, _ in reference])
    gt_boxes = np.array([anns[j]["bbox"] for _, j in reference])
    to_xyxy = lambda b: torch.tensor(np.c_[b[:, :2], b[:, :2] + b[:, 2:]], dtype=torch.float64)  # noqa: E731
    ious = torch.diagonal(box_iou(to_xyxy(det_boxes), to_xyxy(gt_boxes))).numpy()
    centre = lambda b: b[:, :2] + b[:, 2:] / 2  # noqa: E731
    errors = np.c_[np.abs(centre(det_boxes) - centre(gt_boxes)), np.abs(det_boxes[:, 2:] - gt_boxes[:, 2:])] / \
        np.c_[gt_boxes[:, 2:], gt_boxes[:, 2:]]
    n_gt = sum(not a["iscrowd"] for a in gt["annotations"])
    full_gt, full_dets = synthetic_eval_problem(30, n_categories=3, seed=seed, score_decimals=score_decimals)
    metrics = localization_metrics(full_gt, full_dets, image_ids=image_ids)
    assert metrics == pytest.approx({"loc_err": errors.mean(), "loc_iou": ious.mean(),
                                     "loc_recall": len(reference) / n_gt}, rel=1e-12)


def test_ious_are_torchvision_box_iou():
    gt, dets = _random_case(7)
    pairs = match_detections(gt, dets)
    assert pairs
    xyxy = lambda b: torch.tensor([[b[0], b[1], b[0] + b[2], b[1] + b[3]]], dtype=torch.float64)  # noqa: E731
    for det, ann, iou in pairs:
        assert iou == pytest.approx(float(box_iou(xyxy(det["bbox"]), xyxy(ann["bbox"]))), rel=1e-12)
        assert iou >= 0.5


def test_threshold_and_top_k_are_applied():
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0}]}
    shifted = lambda dx, s: {"image_id": 1, "category_id": 1, "bbox": [dx, 0, 10, 10], "score": s}  # noqa: E731
    # IoU of a 10×10 box shifted by dx: (10 − dx) / (10 + dx); dx = 10/3 gives exactly 0.5
    assert len(match_detections(gt, [shifted(10 / 3 - 1e-9, 0.9)], 0.5)) == 1
    assert match_detections(gt, [shifted(10 / 3 + 1e-6, 0.9)], 0.5) == []
    # the better-placed box scores lower: the higher score takes the match (COCO), the other is a false positive
    (det, _, iou), = match_detections(gt, [shifted(2, 0.9), shifted(0, 0.8)])
    assert det["score"] == 0.9 and iou == pytest.approx(8 / 12)
    assert match_detections(gt, [shifted(5, 0.9), shifted(0, 0.8)], max_dets=1) == []


def test_crowd_regions_absorb_detections_but_are_never_true_positives():
    box = lambda x, y, w, h, s: {"image_id": 1, "category_id": 1, "bbox": [x, y, w, h], "score": s}  # noqa: E731
    # no ids, areas or iscrowd flags on the plain boxes: COCO's defaults (iscrowd 0, the box's area) apply
    crowd = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 1}
    plain = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}], "annotations": [crowd, plain]}
    dets = [box(50, 50, 10, 10, 0.95), box(0, 0, 10, 12, 0.9), box(0, 0, 10, 10, 0.8)]
    before = repr((gt, dets))
    # 0.95: inside the crowd region only (crowd IoU = intersection / detection area = 1): ignored, not a match;
    # 0.9: IoU 100/120 with the plain box and 1 with the crowd region listed first: the plain box wins (COCO
    # tries ignored boxes last); 0.8: the plain box is taken, the crowd region absorbs it
    (det, ann, iou), = match_detections(gt, dets)
    assert det is dets[1] and ann["bbox"] == [0, 0, 10, 10] and iou == pytest.approx(100 / 120)
    assert localization_metrics(gt, dets) == pytest.approx(
        {"loc_err": (0 + 1 / 10 + 0 + 2 / 10) / 4, "loc_iou": 100 / 120, "loc_recall": 1.0})
    # detections on an image or category without ground truth are never matched, and nothing is modified
    assert match_detections(gt, [{**dets[1], "image_id": 7}, {**dets[1], "category_id": 2}]) == []
    assert repr((gt, dets)) == before


@settings(max_examples=60, deadline=None)
@given(cx=st.floats(-3, 3), cy=st.floats(-3, 3), dw=st.floats(-0.9, 3), dh=st.floats(-0.9, 3),
       w=st.floats(1, 200), h=st.floats(1, 200))
def test_pair_errors_are_centre_size_errors_in_box_units(cx, cy, dw, dh, w, h):
    g = np.array([[5.0, 7.0, w, h]])
    # a detection whose centre moved by (cx·w, cy·h) and whose size changed by (dw·w, dh·h)
    dwidth, dheight = w * (1 + dw), h * (1 + dh)
    centre = (5 + w / 2 + cx * w, 7 + h / 2 + cy * h)
    d = np.array([[centre[0] - dwidth / 2, centre[1] - dheight / 2, dwidth, dheight]])
    np.testing.assert_allclose(pair_errors(d, g)[0], [abs(cx), abs(cy), abs(dw), abs(dh)], atol=1e-9)


def test_loc_err_reads_on_the_scale_of_laplace_label_noise():
    """Boxes perturbed by Laplace noise of scale b·w (centre x, width) and b·h (centre y, height), the way
    labkit.detection.synthetic perturbs training labels: loc_err ≈ b (the mean |Laplace(0, b)| is b)."""
    from labkit.detection.synthetic import laplace_label_noise

    rng = np.random.default_rng(0)
    b = 0.05
    xy, wh = rng.uniform(0, 400, (4000, 2)), rng.uniform(20, 60, (4000, 2))
    xyxy = np.concatenate([xy, xy + wh], 1)
    noisy = laplace_label_noise(xyxy, b, rng)
    to_xywh = lambda a: np.concatenate([a[:, :2], a[:, 2:] - a[:, :2]], 1)  # noqa: E731
    errors = pair_errors(to_xywh(noisy), to_xywh(xyxy))
    assert errors.mean() == pytest.approx(b, rel=0.05)
    gt = {"images": [{"id": i} for i in range(len(xy))], "categories": [{"id": 1}],
          "annotations": [{"id": i + 1, "image_id": i, "category_id": 1, "bbox": box.tolist(), "iscrowd": 0}
                          for i, box in enumerate(to_xywh(xyxy))]}
    dets = [{"image_id": i, "category_id": 1, "bbox": box.tolist(), "score": 0.5} for i, box in enumerate(to_xywh(noisy))]
    metrics = localization_metrics(gt, dets)
    assert metrics["loc_recall"] > 0.95
    assert metrics["loc_err"] == pytest.approx(b, rel=0.1)  # the few unmatched (IoU < 0.5) are the largest errors


def test_empty_and_bad_input():
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0}]}
    m = localization_metrics(gt, [])
    assert math.isnan(m["loc_err"]) and math.isnan(m["loc_iou"]) and m["loc_recall"] == 0.0
    with pytest.raises(ValueError, match="iou_threshold"):
        match_detections(gt, [], 1.5)
    with pytest.raises(ValueError, match="max_dets"):
        match_detections(gt, [], 0.5, 0)
    with pytest.raises(ValueError, match="gt_boxes"):
        pair_errors(np.ones((1, 4)), np.array([[0, 0, 0, 5.0]]))


# ---------------------------------------------------------------------------------------------------------------
# oracle RoIs: every ground-truth box, given as the RoI
# ---------------------------------------------------------------------------------------------------------------
def test_oracle_localization_against_the_jittered_rois_by_hand(tmp_path):
    """A box regressor with zero weights and biases returns each RoI itself, so the oracle error is the error of the
    jittered RoIs against their boxes, computed here from jitter_boxes and pair_errors (seeded as the oracle
    seeds); with a bias of 0.1·w_x on x, each box moves by 0.1 RoI widths."""
    from labkit.detection.data import generate_synthetic, load_dataset
    from labkit.detection.evaluate import evaluate
    from labkit.detection.model import build_model
    from labkit.detection.oracle import ORACLE_ROIS_PER_BOX, ORACLE_SEED, oracle_localization

    root = generate_synthetic(tmp_path / "d", n_train=1, n_val=3, image_size=64, workers=1)
    val = load_dataset(root, "val")
    model = build_model("lab", len(val.categories) + 1, image_size=96)  # resizes 64 → 96: errors are relative
    predictor = model.roi_heads.box_predictor.bbox_pred
    with torch.no_grad():
        predictor.weight.zero_()
        predictor.bias.zero_()
    errors = []
    for i in range(len(val)):
        image, target = val[i]
        boxes = target["boxes"].numpy().astype(np.float64)
        rois, owner = jitter_boxes(boxes, ORACLE_ROIS_PER_BOX, np.random.default_rng([ORACLE_SEED, target["image_id"]]),
                                   image.shape[-1], image.shape[-2])
        xywh = lambda b: np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)  # noqa: E731
        errors.append(pair_errors(xywh(rois), xywh(boxes[owner])))
    expected = np.concatenate(errors)
    got = oracle_localization(model, val, device="cpu")
    assert got["oracle_rois"] == len(expected) == ORACLE_ROIS_PER_BOX * sum(len(val[i][1]["boxes"])
                                                                          for i in range(len(val)))
    assert got["oracle_loc_err"] == pytest.approx(expected.mean(), rel=1e-4)
    assert evaluate(model, val, device="cpu")["oracle_loc_err"] == pytest.approx(expected.mean(), rel=1e-4)
    assert "oracle_loc_err" not in evaluate(model, val, device="cpu", oracle=False)


# jittered RoIs (what torchvision's sampler passes to the box head; the oracle's proposals and the head study's RoIs)
@given(st.lists(st.tuples(st.floats(0, 150), st.floats(0, 150), st.floats(4, 100), st.floats(4, 100)),
                min_size=1, max_size=6), st.integers(1, 4), st.integers(0, 2**31))
def test_jittered_rois_overlap_their_box_by_at_least_half(raw, per_box, seed):
    boxes = np.array([[x, y, min(x + w, 160.0), min(y + h, 160.0)] for x, y, w, h in raw])
    boxes = boxes[np.all(boxes[:, 2:] - boxes[:, :2] >= 4, axis=1)]
    if not len(boxes):
        return
    r, owner = jitter_boxes(boxes, per_box, np.random.default_rng(seed), 160, 160)
    assert r.shape == (len(boxes) * per_box, 4) and owner.tolist() == np.repeat(np.arange(len(boxes)), per_box).tolist()
    iou = box_iou(torch.as_tensor(r), torch.as_tensor(boxes))[torch.arange(len(r)), torch.as_tensor(owner)]
    assert bool((iou >= 0.5 - 1e-9).all())  # torchvision's sampler: positives at IoU >= 0.5
    assert (r[:, :2] >= 0).all() and (r[:, 2:] <= 160).all() and (r[:, 2:] - r[:, :2] >= 2).all()


def test_jitter_is_not_degenerate():
    boxes = np.array([[20.0, 30.0, 80.0, 70.0]])
    r, _ = jitter_boxes(boxes, 500, np.random.default_rng(0), 160, 160)
    iou = paired_iou(r, np.repeat(boxes, 500, axis=0))
    assert iou.min() >= 0.5 and iou.max() < 1 and np.median(iou) < 0.85  # a spread of positives, not the box


@pytest.mark.parametrize("call, name", [
    (lambda: jitter_boxes(np.array([[0, 0, 10, 10.0]]), 0, np.random.default_rng(0), 64, 64), "per_box"),
    (lambda: jitter_boxes(np.array([[0, 0, 10, 10.0]]), 1, np.random.default_rng(0), 64, 64, 1.5), "min_iou"),
])
def test_jitter_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
