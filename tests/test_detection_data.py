"""labkit.detection.data / synthetic / voc: the synthetic generator, the COCO and VOC readers, the loader.

References: pycocotools (loads the json, COCOeval of the ground truth against itself), scipy.stats (Laplace
law of the injected label noise), torchvision.transforms.v2 (box flipping), hand-written VOC xml and COCO json
whose right answers are counted by hand.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, strategies as st
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from labkit.__main__ import main
from labkit.detection import synthetic
from labkit.detection.data import (CLIPPED_TO_IMAGE, DEFAULT_SYNTHETIC, SKIP_CROWD, SKIP_DEGENERATE, SKIP_OUTSIDE,
                                   SKIP_UNKNOWN_CATEGORY, SKIP_UNKNOWN_IMAGE, RandomHorizontalFlip, collate_fn,
                                   load_dataset, make_loader)
from labkit.detection.synthetic import SHAPES, clip_boxes, ensure_synthetic, generate_synthetic, laplace_label_noise

SMALL = dict(n_train=10, n_val=4, seed=3, image_size=64, workers=1)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("synth") / "data", **SMALL)


# ------------------------------------------------------------------------------------------- generator
def test_generator_is_deterministic_by_seed(synth, tmp_path, monkeypatch):
    again = generate_synthetic(tmp_path / "again", **SMALL)
    assert _files(again) == _files(synth)
    monkeypatch.setattr(synthetic, "PARALLEL_FROM", 1)  # the process-pool path draws the same bytes
    parallel = generate_synthetic(tmp_path / "parallel", **{**SMALL, "workers": 2})
    assert _files(parallel) == _files(synth)
    other = generate_synthetic(tmp_path / "other", **{**SMALL, "seed": 4})
    assert (other / "train" / "000001.png").read_bytes() != (synth / "train" / "000001.png").read_bytes()


def test_generated_layout_images_and_boxes(synth):
    settings = json.loads((synth / "synth.json").read_text())["settings"]
    assert settings["seed"] == 3 and settings["image_size"] == 64 and settings["label_noise"] == 0
    for split, n in (("train", 10), ("val", 4)):
        data = json.loads((synth / "annotations" / f"instances_{split}.json").read_text())
        assert len(data["images"]) == n == len(list((synth / split).glob("*.png")))
        assert [c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])] == list(SHAPES)
        per_image = np.bincount([a["image_id"] for a in data["annotations"]], minlength=n + 1)[1:]
        assert per_image.min() >= 1 and per_image.max() <= 4
        for img in data["images"]:
            with Image.open(synth / split / img["file_name"]) as im:
                assert im.size == (64, 64) and im.mode == "RGB"
        for a in data["annotations"]:
            x, y, w, h = a["bbox"]
            assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64
            assert w >= 3 and h >= 3 and a["iscrowd"] == 0 and a["area"] == pytest.approx(w * h)


def test_regenerating_removes_stale_images_and_refuses_foreign_folders(tmp_path):
    out = generate_synthetic(tmp_path / "d", **{**SMALL, "n_train": 5})
    generate_synthetic(out, **{**SMALL, "n_train": 3})
    assert sorted(p.name for p in (out / "train").iterdir()) == ["000001.png", "000002.png", "000003.png"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match=str(foreign)):
        generate_synthetic(foreign, **SMALL)


@pytest.mark.parametrize("bad, name", [({"n_train": -1}, "n_train"), ({"image_size": 8}, "image_size"),
                                       ({"label_noise": -0.1}, "label_noise"), ({"workers": 0}, "workers"),
                                       ({"max_objects": 0}, "min_objects")])
def test_generator_rejects_bad_settings_by_name(tmp_path, bad, name):
    with pytest.raises(ValueError, match=name):
        generate_synthetic(tmp_path / "x", **{**SMALL, **bad})


def test_ensure_synthetic_draws_only_when_settings_change(tmp_path):
    out = ensure_synthetic(tmp_path / "e", **SMALL)
    stamp = (out / "synth.json").stat().st_mtime_ns
    ensure_synthetic(out, **SMALL)
    assert (out / "synth.json").stat().st_mtime_ns == stamp
    ensure_synthetic(out, **{**SMALL, "n_val": 2})
    assert json.loads((out / "synth.json").read_text())["settings"]["n_val"] == 2
    assert len(list((out / "val").glob("*.png"))) == 2


def test_default_location_is_the_project_data_folder():
    assert DEFAULT_SYNTHETIC == Path(__file__).resolve().parents[1] / "data" / "synthetic"


# ----------------------------------------------------------------------------------------- label noise
def test_label_noise_is_laplace_of_the_scale_asked_for():
    b1, n = 0.07, 20_000
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (n, 2))
    wh = rng.uniform(10, 200, (n, 2))
    clean = np.hstack([xy, xy + wh])
    noisy = laplace_label_noise(clean, b1, np.random.default_rng(1))

    def centre_size(b):
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)

    size = np.hstack([wh, wh])  # x and w scale with width, y and h with height
    r = (centre_size(noisy) - centre_size(clean)) / size
    # |r|/b1 ~ Exp(1): the scale estimate mean|r| has standard error b1/sqrt(n); allow 5 of them
    for k in range(4):
        assert abs(np.abs(r[:, k]).mean() - b1) < 5 * b1 / math.sqrt(n)
        assert abs(np.median(r[:, k])) < 5 * b1 / math.sqrt(n) * 1.5
        assert scipy.stats.kstest(r[:, k], scipy.stats.laplace(scale=b1).cdf).pvalue > 1e-3
    corr = np.corrcoef(r.T)[np.triu_indices(4, 1)]
    assert np.abs(corr).max() < 5 / math.sqrt(n)
    assert np.array_equal(laplace_label_noise(clean, 0.0, rng), clean)


def test_noise_reaches_training_labels_only(synth, tmp_path):
    b1 = 0.05
    clean = generate_synthetic(tmp_path / "clean", **{**SMALL, "n_train": 120})
    noisy = generate_synthetic(tmp_path / "noisy", **{**SMALL, "n_train": 120, "label_noise": b1})
    ann = {name: {s: json.loads((root / "annotations" / f"instances_{s}.json").read_text()) for s in ("train", "val")}
           for name, root in (("clean", clean), ("noisy", noisy))}
    # images identical, validation labels untouched
    assert {k: v for k, v in _files(noisy).items() if k.endswith(".png")} == \
           {k: v for k, v in _files(clean).items() if k.endswith(".png")}
    assert ann["noisy"]["val"]["annotations"] == ann["clean"]["val"]["annotations"]
    info = ann["noisy"]["train"]["info"]["label_noise"]
    assert info["scale"] == b1 and info["seed"] == SMALL["seed"]
    assert ann["noisy"]["val"]["info"]["label_noise"]["scale"] == 0
    assert json.loads((noisy / "synth.json").read_text())["settings"]["label_noise"] == b1
    c = np.array([a["bbox"] for a in ann["clean"]["train"]["annotations"]])
    z = np.array([a["bbox"] for a in ann["noisy"]["train"]["annotations"]])
    assert c.shape == z.shape and (z[:, 2:] > 0).all()
    assert (z[:, :2] >= 0).all() and (z[:, :2] + z[:, 2:] <= 64 + 1e-9).all()
    # along an axis, boxes 10 noise scales from the border are never clipped: their residuals are pure noise
    r = []
    for axis in (0, 1):  # x: centre x and width; y: centre y and height
        lo, size = c[:, axis], c[:, axis + 2]
        far = (lo > 10 * b1 * size) & (lo + size < 64 - 10 * b1 * size)
        centre = lambda b: b[:, axis] + b[:, axis + 2] / 2  # noqa: E731
        r += [((centre(z) - centre(c)) / size)[far], ((z[:, axis + 2] - size) / size)[far]]
    r = np.concatenate(r)
    assert len(r) > 400
    assert abs(np.abs(r).mean() - b1) < 5 * b1 / math.sqrt(len(r))


@given(st.lists(st.tuples(*[st.floats(-300, 300)] * 4), min_size=1, max_size=20),
       st.integers(8, 256), st.integers(8, 256))
def test_clipped_boxes_are_valid_labels(raw, width, height):
    boxes, n_resized, n_moved = clip_boxes(np.array(raw, float), width, height)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (w >= 1 - 1e-9).all() and (h >= 1 - 1e-9).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    raw = np.array(raw, float)
    valid = ((raw[:, 2] - raw[:, 0] >= 1) & (raw[:, 3] - raw[:, 1] >= 1) & (raw[:, :2] >= 0).all(1)
             & (raw[:, 2] <= width) & (raw[:, 3] <= height))
    assert np.array_equal(boxes[valid], raw[valid])
    assert n_resized + n_moved >= (~valid).sum() >= max(n_resized, n_moved)


# --------------------------------------------------------------------------------------------- readers
CLASSES = ["cat", "dog", "bird"]
SIZES = [(40, 30), (50, 60)]  # (width, height) of the two hand-made images
# (image, class name, x1, y1, x2, y2, crowd/difficult) in 0-based pixel-edge coordinates
OBJECTS = [
    (1, "cat", 2, 3, 20, 25, 0),       # kept
    (1, "dog", 10, 0, 40, 30, 0),      # kept, touches the border
    (1, "bird", 5, 5, 15, 15, 1),      # crowd / difficult: evaluation only
    (1, "dog", 30, 10, 30, 20, 0),     # degenerate: zero width
    (2, "cat", 45, 10, 60, 20, 0),     # clipped to the image: x2 60 -> 50
    (2, "bird", 52, 10, 58, 20, 0),    # outside the image
    (2, "zebra", 1, 1, 9, 9, 0),       # unknown category
    (2, "bird", 0, 0, 50, 60, 0),      # kept, the whole image
]
EXPECTED_SKIPS = {SKIP_CROWD: 1, SKIP_DEGENERATE: 1, SKIP_OUTSIDE: 1, SKIP_UNKNOWN_CATEGORY: 1}
EXPECTED_TARGETS = {1: ([[2, 3, 20, 25], [10, 0, 40, 30]], [1, 2]), 2: ([[45, 10, 50, 20], [0, 0, 50, 60]], [1, 3])}


def _write_images(folder: Path, suffix: str = ".png") -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, (w, h) in enumerate(SIZES, start=1):
        pixels = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        names.append(f"img{i}{suffix}")
        Image.fromarray(pixels).save(folder / names[-1])
    return names


def write_coco(root: Path, split: str = "val", extra: list | None = None) -> Path:
    names = _write_images(root / split)
    ids = {name: 7 * (k + 1) for k, name in enumerate(CLASSES)}  # category ids need not be 1..K
    anns = []
    for k, (img, name, x1, y1, x2, y2, crowd) in enumerate(OBJECTS, start=1):
        anns.append({"id": k, "image_id": img, "category_id": ids.get(name, 999), "bbox": [x1, y1, x2 - x1, y2 - y1],
                     "area": (x2 - x1) * (y2 - y1), "iscrowd": crowd})
    data = {"images": [{"id": i, "file_name": n, "width": w, "height": h}
                       for i, (n, (w, h)) in enumerate(zip(names, SIZES), start=1)],
            "annotations": anns + (extra or []),
            "categories": [{"id": ids[n], "name": n} for n in reversed(CLASSES)]}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def write_voc(root: Path, split: str = "val") -> Path:
    names = _write_images(root / "JPEGImages")
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    stems = []
    for i, (name, (w, h)) in enumerate(zip(names, SIZES), start=1):
        objects = "".join(
            f"<object><name>{c}</name><difficult>{d}</difficult><bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for img, c, x1, y1, x2, y2, d in OBJECTS if img == i)
        stems.append(f"2024_{i:06d}")
        (root / "Annotations" / f"{stems[-1]}.xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth>"
            f"</size>{objects}</annotation>")
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return root


@pytest.mark.parametrize("layout", ["coco", "voc"])
def test_readers_count_every_skip_and_yield_the_hand_counted_targets(tmp_path, layout):
    root = (write_coco if layout == "coco" else write_voc)(tmp_path / layout)
    ds = load_dataset(root, "val")
    assert ds.layout == layout and ds.categories == CLASSES and len(ds) == 2
    assert dict(ds.skipped) == EXPECTED_SKIPS and dict(ds.clipped) == {CLIPPED_TO_IMAGE: 1}
    for i in range(2):
        image, target = ds[i]
        w, h = SIZES[i]
        assert image.dtype == torch.float32 and image.shape == (3, h, w)
        assert 0 <= image.min() and image.max() <= 1
        boxes, labels = EXPECTED_TARGETS[target["image_id"]]
        assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
        assert target["boxes"].tolist() == boxes and target["labels"].tolist() == labels
    summary = ds.summary()
    assert all(reason in summary for reason in EXPECTED_SKIPS) and "clipped" in summary


def test_coco_and_voc_layouts_give_identical_items(tmp_path):
    coco, voc = load_dataset(write_coco(tmp_path / "c"), "val"), load_dataset(write_voc(tmp_path / "v"), "val")
    assert coco.categories == voc.categories
    for (ia, ta), (ib, tb) in zip(coco, voc):
        assert torch.equal(ia, ib) and ta["image_id"] == tb["image_id"]
        assert torch.equal(ta["boxes"], tb["boxes"]) and torch.equal(ta["labels"], tb["labels"])


def test_synthetic_split_reads_the_same_through_voc_xml(synth, tmp_path):
    data = json.loads((synth / "annotations" / "instances_val.json").read_text())
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    shutil.copytree(synth / "val", root / "JPEGImages")
    (root / "labels.txt").write_text("\n".join(SHAPES))
    for img in data["images"]:
        objects = "".join(
            f"<object><name>{SHAPES[a['category_id'] - 1]}</name><bndbox><xmin>{int(a['bbox'][0]) + 1}</xmin>"
            f"<ymin>{int(a['bbox'][1]) + 1}</ymin><xmax>{int(a['bbox'][0] + a['bbox'][2])}</xmax>"
            f"<ymax>{int(a['bbox'][1] + a['bbox'][3])}</ymax></bndbox></object>"
            for a in data["annotations"] if a["image_id"] == img["id"])
        (root / "Annotations" / f"{img['id']}.xml").write_text(
            f"<annotation><filename>{img['file_name']}</filename><size><width>{img['width']}</width>"
            f"<height>{img['height']}</height></size>{objects}</annotation>")
    (root / "ImageSets" / "Main" / "val.txt").write_text("\n".join(str(img["id"]) for img in data["images"]))
    a, b = load_dataset(synth, "val"), load_dataset(root, "val")
    assert len(a) == len(b) == 4 and not a.skipped and not b.skipped
    for (ia, ta), (ib, tb) in zip(a, b):
        assert torch.equal(ia, ib) and torch.equal(ta["boxes"], tb["boxes"]) and torch.equal(ta["labels"], tb["labels"])


def test_coco_2014_split_names_and_voc_default_classes(tmp_path):
    ds = load_dataset(write_coco(tmp_path / "coco", split="val2014"), "val2014")
    assert ds.split == "val2014" and ds.image_dir == tmp_path / "coco" / "val2014" and len(ds) == 2
    root = write_voc(tmp_path / "voc")
    (root / "labels.txt").unlink()  # without labels.txt: the 20 Pascal VOC classes, in their usual order
    ds = load_dataset(root, "val")
    assert len(ds.categories) == 20 and ds.categories[7] == "cat" and ds.categories[11] == "dog"
    assert ds[0][1]["labels"].tolist() == [8, 12]
    assert ds.skipped[SKIP_UNKNOWN_CATEGORY] == 1  # the zebra; bird, cat and dog are VOC classes


def test_unknown_image_ids_are_counted(tmp_path):
    root = write_coco(tmp_path, extra=[{"id": 99, "image_id": 12345, "category_id": 7, "bbox": [1, 1, 5, 5]}])
    assert load_dataset(root, "val").skipped[SKIP_UNKNOWN_IMAGE] == 1


def _self_eval(gt: COCO) -> np.ndarray:
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt.dataset["annotations"] if not a["iscrowd"]]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


def test_pycocotools_loads_the_json_and_ground_truth_scores_ap_1(synth):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(synth / "annotations" / "instances_train.json"))
    assert len(gt.getImgIds()) == 10 and sorted(gt.getCatIds()) == [1, 2, 3, 4, 5]
    stats = _self_eval(gt)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0) and stats[2] == pytest.approx(1.0)


@pytest.mark.parametrize("layout", ["coco", "voc"])
def test_dataset_ground_truth_matches_targets_and_scores_ap_1(tmp_path, layout):
    ds = load_dataset((write_coco if layout == "coco" else write_voc)(tmp_path / layout), "val")
    gt = ds.coco
    assert sum(a["iscrowd"] for a in gt.dataset["annotations"]) == 1  # the crowd box stays for evaluation
    for image, target in ds:
        anns = [a for a in gt.imgToAnns[target["image_id"]] if not a["iscrowd"]]
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        assert xyxy == target["boxes"].tolist()
        assert [ds.label_to_category_id[k] for k in target["labels"].tolist()] == [a["category_id"] for a in anns]
    stats = _self_eval(gt)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- errors
def _break_json(root):
    (root / "annotations" / "instances_val.json").write_text('{"images": [')
    return root / "annotations" / "instances_val.json"


def _drop_images(root):
    data = json.loads((root / "annotations" / "instances_val.json").read_text())
    del data["images"]
    (root / "annotations" / "instances_val.json").write_text(json.dumps(data))
    return root / "annotations" / "instances_val.json"


def _bad_bbox(root):
    data = json.loads((root / "annotations" / "instances_val.json").read_text())
    data["annotations"][0]["bbox"] = [1, 2, 3]
    (root / "annotations" / "instances_val.json").write_text(json.dumps(data))
    return root / "annotations" / "instances_val.json"


def _missing_image(root):
    (root / "val" / "img2.png").unlink()
    return root / "val" / "img2.png"


@pytest.mark.parametrize("damage", [_break_json, _drop_images, _bad_bbox, _missing_image])
def test_coco_errors_name_the_path_and_layout(tmp_path, damage):
    root = write_coco(tmp_path / "c")
    path = damage(root)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        load_dataset(root, "val")
    assert str(path) in str(info.value) and "COCO layout" in str(info.value)


def _break_xml(root):
    path = root / "Annotations" / "2024_000001.xml"
    path.write_text("<annotation><size>")
    return path


def _no_split_file(root):
    (root / "ImageSets" / "Main" / "val.txt").unlink()
    return root / "ImageSets" / "Main" / "val.txt"


def _missing_xml(root):
    (root / "Annotations" / "2024_000002.xml").unlink()
    return root / "Annotations" / "2024_000002.xml"


def _missing_voc_image(root):
    (root / "JPEGImages" / "img1.png").unlink()
    return root / "JPEGImages" / "img1.png"


def _xml_without_box(root):
    path = root / "Annotations" / "2024_000001.xml"
    path.write_text("<annotation><size><width>4</width><height>4</height></size><object><name>cat</name>"
                    "</object></annotation>")
    return path


@pytest.mark.parametrize("damage", [_break_xml, _no_split_file, _missing_xml, _missing_voc_image, _xml_without_box])
def test_voc_errors_name_the_path_and_layout(tmp_path, damage):
    root = write_voc(tmp_path / "v")
    path = damage(root)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        load_dataset(root, "val")
    assert str(path) in str(info.value) and "VOC layout" in str(info.value)


def test_unknown_layout_and_bad_arguments_are_named(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(tmp_path, "val")
    assert str(tmp_path / "annotations" / "instances_val.json") in str(info.value)
    assert "COCO layout" in str(info.value) and "VOC layout" in str(info.value)
    with pytest.raises(ValueError, match="split"):
        load_dataset(tmp_path, "../val")
    with pytest.raises(TypeError, match="transforms"):
        load_dataset(write_coco(tmp_path / "c"), "val", transforms="flip")


def test_image_whose_size_disagrees_with_its_annotation_is_named(tmp_path):
    root = write_coco(tmp_path)
    Image.new("RGB", (7, 7)).save(root / "val" / "img1.png")
    ds = load_dataset(root, "val")
    with pytest.raises(ValueError, match=str(root / "val" / "img1.png")):
        ds[0]


# ----------------------------------------------------------------------------------- loader, transforms
def test_loader_batches_seeded_order_and_workers(synth):
    ds = load_dataset(synth, "train")
    order = lambda loader: [t["image_id"] for _, ts in loader for t in ts]  # noqa: E731
    images, targets = next(iter(make_loader(ds, batch_size=4, shuffle=True, seed=5)))
    assert isinstance(images, list) and len(images) == 4 and len(targets) == 4
    first, again = (make_loader(ds, batch_size=4, shuffle=True, seed=5) for _ in range(2))
    epochs = [order(first), order(first)]  # each epoch reshuffles, the same way for the same seed
    assert epochs == [order(again), order(again)]
    assert epochs[0] != epochs[1] and epochs[0] != order(make_loader(ds, 4, shuffle=True, seed=6))
    assert sorted(epochs[0]) == list(range(1, 11)) and order(make_loader(ds, 4)) == list(range(1, 11))
    assert not first.pin_memory and make_loader(ds, 2, device="cuda").pin_memory
    parallel = make_loader(ds, batch_size=3, shuffle=True, workers=1, seed=5)
    assert order(parallel) == order(make_loader(ds, 3, shuffle=True, seed=5))
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(ds, 0)
    with pytest.raises(ValueError, match="workers"):
        make_loader(ds, 1, workers=-1)


def test_collate_keeps_images_of_different_sizes(tmp_path):
    ds = load_dataset(write_coco(tmp_path), "val")
    images, targets = collate_fn([ds[0], ds[1]])
    assert [tuple(i.shape) for i in images] == [(3, 30, 40), (3, 60, 50)]
    assert [t["image_id"] for t in targets] == [1, 2]


def test_horizontal_flip_matches_torchvision_v2(tmp_path):
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as F

    ds = load_dataset(write_coco(tmp_path), "val", transforms=RandomHorizontalFlip(p=1.0))
    plain = load_dataset(tmp_path, "val")
    for (image, target), (ref_image, ref_target) in zip(ds, plain):
        boxes = tv_tensors.BoundingBoxes(ref_target["boxes"], format="XYXY", canvas_size=ref_image.shape[-2:])
        assert torch.equal(image, F.horizontal_flip(ref_image))
        assert torch.equal(target["boxes"], F.horizontal_flip(boxes).as_subclass(torch.Tensor))
        assert torch.equal(target["labels"], ref_target["labels"])
    never = load_dataset(tmp_path, "val", transforms=RandomHorizontalFlip(p=0.0))
    assert torch.equal(never[0][0], plain[0][0])


# ---------------------------------------------------------------------------------------------------- cli
def test_cli_synth_and_check(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["data", "synth", "--out", str(out), "--train", "3", "--val", "2", "--image-size", "48",
                 "--label-noise", "0.1", "--seed", "9", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "train 3 images" in printed and "b1=0.1" in printed
    assert json.loads((out / "synth.json").read_text())["settings"]["seed"] == 9
    assert main(["data", "check", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("train (coco") and "skipped annotations: none" in line for line in lines)
    root = write_coco(tmp_path / "bad")
    assert main(["data", "check", str(root), "--split", "val"]) == 0
    assert "1 degenerate box" in capsys.readouterr().out
    _break_json(root)
    assert main(["data", "check", str(root), "--split", "val"]) == 1
    assert str(root / "annotations" / "instances_val.json") in capsys.readouterr().err
