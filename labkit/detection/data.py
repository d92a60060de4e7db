"""Detection datasets: COCO json and Pascal VOC xml read into one validated form, and their data loader.

``load_dataset(root, split)`` detects the layout and returns a :class:`DetectionDataset` whose item ``i`` is
``(image, target)`` as torchvision's detection models take them: a float32 [3, H, W] image in [0, 1] and
``{"boxes": float32 [N, 4] xyxy pixels, "labels": int64 [N] in 1..K, "image_id": int}``.

Invalid annotations are neither silently dropped nor silently kept: each is skipped under a named reason
(:data:`SKIP_REASONS`) and counted in ``dataset.skipped``; boxes that stick out of the image are cut to it and
counted in ``dataset.clipped``. Crowd regions (COCO ``iscrowd=1``, VOC ``difficult``) are left out of the
training targets but kept in ``dataset.coco``, the pycocotools ground truth used for evaluation.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import numbers
import os
import random
import warnings
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.io import ImageReadMode, decode_image, read_file

from labkit.detection import voc
from labkit.detection.synthetic import (CONTRAST_KEY, DEFAULT_SYNTHETIC, NOISE_SCALE_KEY, ensure_synthetic,
                                        generate_synthetic)

__all__ = ["DetectionDataset", "load_dataset", "collate_fn", "make_loader", "RandomHorizontalFlip", "hflip", "check_training_targets",
           "generate_synthetic", "ensure_synthetic", "DEFAULT_SYNTHETIC", "SKIP_REASONS", "COCO_LAYOUT",
           "VOC_LAYOUT"]

if TYPE_CHECKING:
    from pycocotools.coco import COCO

log = logging.getLogger(__name__)

COCO_LAYOUT = ("COCO layout: ROOT/annotations/instances_<split>.json with images in ROOT/<split>/ "
               "(COCO 2014: split 'train2014' or 'val2014')")
VOC_LAYOUT = voc.LAYOUT

SKIP_UNKNOWN_IMAGE = "unknown image"
SKIP_UNKNOWN_CATEGORY = "unknown category"
SKIP_DEGENERATE = "degenerate box"  # width <= 0 or height <= 0
SKIP_OUTSIDE = "outside image"  # no overlap with the image
SKIP_CROWD = "crowd (kept for evaluation)"  # COCO iscrowd=1, VOC difficult=1
SKIP_REASONS = (SKIP_UNKNOWN_IMAGE, SKIP_UNKNOWN_CATEGORY, SKIP_DEGENERATE, SKIP_OUTSIDE, SKIP_CROWD)
CLIPPED_TO_IMAGE = "clipped to image"

Transform = Callable[[torch.Tensor, dict], tuple[torch.Tensor, dict]]


# ------------------------------------------------------------------------------------------ layout reading
def _malformed(source: Path, what: str, layout: str) -> ValueError:
    return ValueError(f"{source}: {what}; expected {layout}")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _read_coco_json(path: Path) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise _malformed(path, f"malformed json ({exc})", COCO_LAYOUT) from None
    if not isinstance(data, dict):
        raise _malformed(path, f"the top level should be an object, got {type(data).__name__}", COCO_LAYOUT)
    return data


def _detect_layout(root: Path, split: str) -> tuple[str, dict, Path, Path]:
    """Return (layout name, COCO-format dict, annotation source, image folder) for ``root`` and ``split``."""
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a folder; expected the {COCO_LAYOUT}, "
                                f"or the {VOC_LAYOUT}")
    coco_json = root / "annotations" / f"instances_{split}.json"
    if coco_json.is_file():
        return "coco", _read_coco_json(coco_json), coco_json, root / split
    if (root / "Annotations").is_dir():
        return "voc", voc.read_voc(root, split), root / "Annotations", root / "JPEGImages"
    have = sorted(p.name for p in (root / "annotations").glob("instances_*.json"))
    hint = f" (found {have})" if have else ""
    raise FileNotFoundError(f"no annotations for split {split!r} under {root}: {coco_json} is missing{hint} and "
                            f"there is no {root / 'Annotations'} folder; expected the {COCO_LAYOUT}, "
                            f"or the {VOC_LAYOUT}")


def _check_structure(data: dict, source: Path, layout: str) -> None:
    """Raise naming ``source`` when the COCO-format dict lacks the fields the reader relies on."""
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise _malformed(source, f"'{key}' should be a list", layout)
    if not isinstance(data.get("annotations", []), list):
        raise _malformed(source, "'annotations' should be a list", layout)
    for img in data["images"]:
        ok = (isinstance(img, dict) and _is_int(img.get("id")) and isinstance(img.get("file_name"), str)
              and _is_int(img.get("width")) and _is_int(img.get("height")) and img["width"] > 0 and img["height"] > 0)
        if not ok:
            raise _malformed(source, f"image entry {str(img)[:200]} should have an int id, a file_name and "
                                     f"positive int width and height", layout)
    for cat in data["categories"]:
        if not (isinstance(cat, dict) and _is_int(cat.get("id")) and isinstance(cat.get("name"), str)):
            raise _malformed(source, f"category entry {str(cat)[:200]} should have an int id and a name", layout)
    for ann in data.get("annotations", []):
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        ok = (isinstance(bbox, list) and len(bbox) == 4
              and all(isinstance(c, numbers.Real) and not isinstance(c, bool) and math.isfinite(c) for c in bbox))
        if not ok:
            raise _malformed(source, f"annotation {str(ann)[:200]} should have a bbox of 4 finite numbers "
                                     f"[x, y, width, height]", layout)
    for key, entries in (("images", data["images"]), ("categories", data["categories"])):
        ids = Counter(e["id"] for e in entries)
        repeated = [i for i, n in ids.items() if n > 1]
        if repeated:
            raise _malformed(source, f"{key} ids repeat: {repeated[:10]}", layout)


# ------------------------------------------------------------------------------------------------- dataset
class DetectionDataset(Dataset):
    """Images and box targets of one split of a COCO- or VOC-layout dataset (see the module docstring).

    Attributes: ``categories`` (label k names ``categories[k-1]``), ``label_to_category_id``, ``coco`` (the
    pycocotools ground truth, built on first use), ``skipped`` and ``clipped`` (Counters by reason), ``root``,
    ``split``, ``layout`` ("coco" or "voc"), ``transforms`` (callable (image, target) -> (image, target)).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", transforms: Transform | None = None):
        if not isinstance(split, str) or not split or "/" in split or "\\" in split:
            raise ValueError(f"split must be a split name such as 'train' or 'val2014', got split={split!r}")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms must be callable (image, target) -> (image, target) or None, "
                            f"got {type(transforms).__name__}")
        self.root, self.split, self.transforms = Path(root), split, transforms
        self.layout, data, self.source, self.image_dir = _detect_layout(self.root, split)
        layout_text = COCO_LAYOUT if self.layout == "coco" else VOC_LAYOUT
        _check_structure(data, self.source, layout_text)
        self._read(data, layout_text)
        if self.skipped or self.clipped:
            log.warning("%s", self.summary())

    def _read(self, data: dict, layout_text: str) -> None:
        categories = sorted(data["categories"], key=lambda c: c["id"])
        self.categories: list[str] = [c["name"] for c in categories]
        self.label_to_category_id: dict[int, int] = {k + 1: c["id"] for k, c in enumerate(categories)}
        label_of = {cid: k for k, cid in self.label_to_category_id.items()}
        images = {img["id"]: img for img in data["images"]}
        missing = [self.image_dir / img["file_name"] for img in data["images"]
                   if not (self.image_dir / img["file_name"]).is_file()]
        if missing:
            raise FileNotFoundError(f"image file {missing[0]} is missing ({len(missing)} of {len(images)} listed in "
                                    f"{self.source} are); expected the {layout_text}")
        self.skipped: Counter = Counter()
        self.clipped: Counter = Counter()
        boxes: dict[int, list] = {i: [] for i in images}
        labels: dict[int, list] = {i: [] for i in images}
        truth = []  # annotations for evaluation: the training boxes and the valid crowd regions
        for ann in data.get("annotations", []):
            img = images.get(ann.get("image_id")) if _is_int(ann.get("image_id")) else None
            if img is None:
                self.skipped[SKIP_UNKNOWN_IMAGE] += 1
                continue
            if not _is_int(ann.get("category_id")) or ann["category_id"] not in label_of:
                self.skipped[SKIP_UNKNOWN_CATEGORY] += 1
                continue
            x, y, w, h = (float(c) for c in ann["bbox"])
            if w <= 0 or h <= 0:
                self.skipped[SKIP_DEGENERATE] += 1
                continue
            x1, y1 = max(x, 0.0), max(y, 0.0)
            x2, y2 = min(x + w, float(img["width"])), min(y + h, float(img["height"]))
            if x2 <= x1 or y2 <= y1:
                self.skipped[SKIP_OUTSIDE] += 1
                continue
            if (x1, y1, x2, y2) != (x, y, x + w, y + h):
                self.clipped[CLIPPED_TO_IMAGE] += 1
            crowd = bool(ann.get("iscrowd", 0))
            area = ann.get("area") if isinstance(ann.get("area"), numbers.Real) else (x2 - x1) * (y2 - y1)
            truth.append({"id": ann.get("id"), "image_id": img["id"], "category_id": ann["category_id"],
                          "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(area), "iscrowd": int(crowd),
                          # a box's own label-noise scale (heteroscedastic synthetic data), for the evaluation
                          **{k: ann[k] for k in (NOISE_SCALE_KEY, CONTRAST_KEY) if k in ann}})
            if crowd:
                self.skipped[SKIP_CROWD] += 1
                continue
            boxes[img["id"]].append((x1, y1, x2, y2))
            labels[img["id"]].append(label_of[ann["category_id"]])
        ids = [a["id"] for a in truth]
        if not all(_is_int(i) for i in ids) or len(set(ids)) != len(ids):
            for k, a in enumerate(truth, start=1):  # pycocotools needs unique annotation ids
                a["id"] = k
        self._records = [(img["id"], self.image_dir / img["file_name"], img["width"], img["height"],
                          np.asarray(boxes[img["id"]], np.float32).reshape(-1, 4),
                          np.asarray(labels[img["id"]], np.int64)) for img in data["images"]]
        self._truth = {"info": data.get("info", {}), "licenses": data.get("licenses", []),
                       "images": [{k: img[k] for k in ("id", "file_name", "width", "height")} for img in data["images"]],
                       "categories": [{"id": c["id"], "name": c["name"]} for c in categories], "annotations": truth}

    @cached_property
    def coco(self) -> "COCO":
        """The split's ground truth as a pycocotools ``COCO`` object (training boxes, clipped, plus crowd regions)."""
        from pycocotools.coco import COCO

        api = COCO()
        api.dataset = self._truth
        with contextlib.redirect_stdout(io.StringIO()):
            api.createIndex()
        return api

    def __len__(self) -> int:
        return len(self._records)

    def box_extra(self, key: str) -> np.ndarray:
        """Annotation field ``key`` (``label_noise_scale`` or ``contrast`` of heteroscedastic synthetic data) of
        every box the items carry, image by image in the order of ``self[i][1]["boxes"]``; NaN where an
        annotation lacks it."""
        if key not in (NOISE_SCALE_KEY, CONTRAST_KEY):
            raise ValueError(f"key must be {NOISE_SCALE_KEY!r} or {CONTRAST_KEY!r}, got key={key!r}")
        per_image: dict[int, list[float]] = {r[0]: [] for r in self._records}
        for ann in self._truth["annotations"]:
            if not ann["iscrowd"]:
                per_image[ann["image_id"]].append(float(ann.get(key, math.nan)))
        return np.asarray([v for r in self._records for v in per_image[r[0]]], np.float64)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image_id, path, width, height, boxes, labels = self._records[index]
        try:
            with warnings.catch_warnings():
                # torchvision 0.29 points to TorchCodec for image decoding; torchvision.io is our chosen decoder
                warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
                image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
        except RuntimeError as exc:
            raise ValueError(f"cannot read image {path}: {exc}") from None
        if tuple(image.shape[-2:]) != (height, width):
            raise ValueError(f"image {path} is {image.shape[-1]}x{image.shape[-2]} pixels but its annotation "
                             f"in {self.source} says {width}x{height}")
        target = {"boxes": torch.from_numpy(boxes.copy()), "labels": torch.from_numpy(labels.copy()),
                  "image_id": image_id}
        image = image.to(torch.float32).div_(255)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def image_size(self, index: int) -> tuple[int, int]:
        """(height, width) of image ``index`` from the annotations, without decoding it."""
        return self._records[index][3], self._records[index][2]

    def summary(self) -> str:
        """One line: images, boxes, classes, and every skip and clip count."""
        n_boxes = sum(len(r[5]) for r in self._records)
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        text = (f"{self.split} ({self.layout}, {self.root}): {len(self)} images, {n_boxes} boxes, "
                f"{len(self.categories)} classes; skipped annotations: {skipped}")
        if self.clipped:
            text += f"; {self.clipped[CLIPPED_TO_IMAGE]} boxes clipped to the image"
        return text

    def __repr__(self) -> str:
        return f"DetectionDataset({self.summary()})"


def load_dataset(root: str | os.PathLike, split: str = "train", transforms: Transform | None = None
                 ) -> DetectionDataset:
    """Read split ``split`` of the COCO- or VOC-layout dataset at ``root`` (layout detected from the files)."""
    return DetectionDataset(root, split, transforms)


# --------------------------------------------------------------------------------------------- loading
def collate_fn(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Batch detection samples as torchvision's models take them: (list of images, list of targets)."""
    images, targets = [], []
    for image, target in batch:
        images.append(image)
        targets.append(target)
    return images, targets


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; give numpy and random the same seed for transforms
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int = 1, shuffle: bool = False, workers: int = 0,
                device: str | torch.device = "cpu", seed: int = 0, drop_last: bool = False,
                batch_sampler: Sampler[list[int]] | None = None) -> DataLoader:
    """A DataLoader over ``dataset`` with :func:`collate_fn`, seeded shuffling and ``workers`` processes; training
    and evaluation both load through it.

    Memory is pinned only when ``device`` is a CUDA device. The same ``seed`` gives the same batch order.
    ``batch_sampler`` (yielding lists of indices) replaces ``batch_size``/``shuffle``/``drop_last``.
    """
    if batch_sampler is not None:
        if batch_size != 1 or shuffle or drop_last:
            raise ValueError("batch_sampler decides the batches: leave batch_size, shuffle and drop_last unset")
    elif not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got batch_size={batch_size!r}")
    if not _is_int(workers) or workers < 0:
        raise ValueError(f"workers must be an int >= 0, got workers={workers!r}")
    if not _is_int(seed):
        raise ValueError(f"seed must be an int, got seed={seed!r}")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    batching = ({"batch_sampler": batch_sampler} if batch_sampler is not None
                else {"batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last})
    return DataLoader(dataset, **batching, num_workers=workers, collate_fn=collate_fn, pin_memory=device.type == "cuda",
                      generator=generator, worker_init_fn=_seed_worker if workers else None,
                      persistent_workers=workers > 0)


class RandomHorizontalFlip:
    """Training transform: mirror the image and its boxes with probability ``p`` (torch's global generator)."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"p must be a probability in [0, 1], got p={p!r}")
        self.p = p

    def __call__(self, image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
        return hflip(image, target) if torch.rand(()) < self.p else (image, target)


def check_training_targets(targets: list[dict] | None) -> None:
    """What torchvision's RoI heads require of training targets: given, float boxes, int64 labels."""
    if targets is None:
        raise ValueError("targets must be given in training mode")
    for t in targets:
        if not t["boxes"].is_floating_point():
            raise TypeError(f"target boxes must be floating point, got {t['boxes'].dtype}")
        if t["labels"].dtype != torch.int64:
            raise TypeError(f"target labels must be int64, got {t['labels'].dtype}")


def hflip(image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    """The image mirrored left–right, and its target with the boxes mirrored to match (x1, x2 → W − x2, W − x1)."""
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {**target, "boxes": boxes}
