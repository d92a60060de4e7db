"""Pascal VOC xml, read into the COCO-format dict that :mod:`labkit.detection.data` validates and serves.

Converting to one format first means both layouts go through one validation path and yield the same targets.
Conventions (those of the VOC devkit and detectron2): ``<bndbox>`` holds 1-based inclusive pixel indices, so a
box becomes x1 = xmin − 1, y1 = ymin − 1, x2 = xmax, y2 = ymax in 0-based continuous pixel coordinates;
``<difficult>1</difficult>`` objects become ``iscrowd=1`` (kept for evaluation, where COCOeval ignores them,
and left out of the training targets), like COCO's crowd regions.

Classes: ``ROOT/labels.txt`` (one class name per line, label k = line k) when present, else the 20 Pascal VOC
classes. An object whose name is in neither becomes an annotation with ``category_id=None`` that the reader
counts as an unknown category.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
CLASSES_FILE = "labels.txt"
LAYOUT = ("Pascal VOC layout: ROOT/Annotations/<id>.xml, images in ROOT/JPEGImages/, the split's ids in "
          "ROOT/ImageSets/Main/<split>.txt (classes from ROOT/labels.txt, else the 20 VOC classes)")


def voc_classes(root: str | os.PathLike) -> tuple[str, ...]:
    """The class names of a VOC dataset at ``root``: ``root/labels.txt`` when present, else :data:`VOC_CLASSES`."""
    path = Path(root) / CLASSES_FILE
    if not path.is_file():
        return VOC_CLASSES
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{path}: expected one distinct class name per line, got {list(names)}")
    return names


def _text(element: ET.Element, tag: str, path: Path) -> str:
    found = element.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise ValueError(f"{path}: malformed VOC xml, <{element.tag}> lacks <{tag}>; expected {LAYOUT}")
    return found.text.strip()


def _number(element: ET.Element, tag: str, path: Path) -> float:
    text = _text(element, tag, path)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: malformed VOC xml, <{tag}> should be a number, got {text!r}; "
                         f"expected {LAYOUT}") from None


def read_split_ids(root: str | os.PathLike, split: str) -> list[str]:
    """The image ids listed in ``root/ImageSets/Main/{split}.txt`` (first token of each non-empty line)."""
    path = Path(root) / "ImageSets" / "Main" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} is missing; expected {LAYOUT}")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def read_voc(root: str | os.PathLike, split: str) -> dict:
    """Read the VOC split ``split`` under ``root`` into a COCO-format dict (images, annotations, categories).

    Image ids are 1, 2, … in the order of the split file; ``file_name`` is relative to ``root/JPEGImages``.
    """
    root = Path(root)
    classes = voc_classes(root)
    label = {name: k + 1 for k, name in enumerate(classes)}
    images, annotations = [], []
    for image_id, stem in enumerate(read_split_ids(root, split), start=1):
        path = root / "Annotations" / f"{stem}.xml"
        if not path.is_file():
            raise FileNotFoundError(f"annotation file {path} (listed in ImageSets/Main/{split}.txt) is missing; "
                                    f"expected {LAYOUT}")
        try:
            tree = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise ValueError(f"{path}: malformed VOC xml ({exc}); expected {LAYOUT}") from None
        size = tree.find("size")
        if size is None:
            raise ValueError(f"{path}: malformed VOC xml, no <size>; expected {LAYOUT}")
        file_name = tree.findtext("filename", default="").strip() or f"{stem}.jpg"
        images.append({"id": image_id, "file_name": file_name, "width": int(_number(size, "width", path)),
                       "height": int(_number(size, "height", path))})
        for obj in tree.findall("object"):
            name = _text(obj, "name", path)
            box = obj.find("bndbox")
            if box is None:
                raise ValueError(f"{path}: malformed VOC xml, <object> '{name}' lacks <bndbox>; expected {LAYOUT}")
            xmin, ymin, xmax, ymax = (_number(box, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax"))
            x1, y1 = xmin - 1, ymin - 1
            w, h = xmax - x1, ymax - y1
            difficult = obj.findtext("difficult", default="0").strip() == "1"
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label.get(name),
                                "category_name": name, "bbox": [x1, y1, w, h], "area": max(w, 0) * max(h, 0),
                                "iscrowd": int(difficult)})
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(classes)]
    return {"info": {"description": f"Pascal VOC {root} split {split}"}, "images": images,
            "annotations": annotations, "categories": categories}
