"""The embedded detection dataset: coloured shapes on textured backgrounds, written in COCO format.

No download is possible in the lab, so the detector trains on scenes drawn here. Five classes
(:data:`SHAPES`) of varied size, aspect and colour lie on a background of random plane waves plus pixel
noise; objects overlap a little and later ones partly occlude earlier ones. Every image is drawn from its
own generator seeded by ``(seed, split, index)``, so a dataset is identical byte for byte for one seed, and
the validation split does not change when ``n_train`` does.

Label noise (Section 4, eq. 16): ``label_noise=b1`` perturbs the *training* labels only, with independent
Laplace noise per box coordinate in the centre/size parameterisation of Faster R-CNN's targets
(eqs. 32 and 43/93)::

    x* + ε_x,  ε_x ~ Laplace(0, b1·w)        w* + ε_w,  ε_w ~ Laplace(0, b1·w)
    y* + ε_y,  ε_y ~ Laplace(0, b1·h)        h* + ε_h,  ε_h ~ Laplace(0, b1·h)

so that in the regression targets t_x* = (x* − x_a)/w_a and t_w* = w*/w_a − 1 (or log w*/w_a, to first
order) the label noise has scale b1·w/w_a ≈ b1 for a well-matched anchor: b1 is the label scale of
eq. 42 in anchor widths. Validation labels stay clean.

``label_noise_model="heteroscedastic"`` makes the noise depend on something visible, so that a detector can learn
it (issue 17): each object has a contrast v ~ U[1/4, 1] (its colour moved v of the way from the background's mean to
a contrasting colour) and noise scale b_i = b1·(5/4 − v)/(5/8) — faint objects 4× noisier than vivid ones, b1 on
average — recorded in each annotation (both splits) as ``label_noise_scale``, beside the contrast itself
(``contrast``, so that a study can draw its own noise from it, even at b1 = 0). ``"homoscedastic"`` (default): b1 for
every box, drawn exactly as before the option existed.
"""
from __future__ import annotations

import functools
import io
import json
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from labkit import PROJECT_ROOT
from labkit._io import write_atomic

SHAPES: tuple[str, ...] = ("rectangle", "ellipse", "triangle", "cross", "ring")
DEFAULT_SYNTHETIC = PROJECT_ROOT / "data" / "synthetic"
SPLITS: dict[str, int] = {"train": 0, "val": 1}  # split name -> stream index in the per-image seed
NOISE_STREAM = 1  # the label-noise generator of image i is default_rng([noise seed, split, i, NOISE_STREAM])
MIN_BOX_SIZE = 1.0  # pixels: a noisy width or height below this is clipped up to it
SETTINGS_FILE = "synth.json"
HOMOSCEDASTIC, HETEROSCEDASTIC = "homoscedastic", "heteroscedastic"
LABEL_NOISE_MODELS = (HOMOSCEDASTIC, HETEROSCEDASTIC)
CONTRAST_RANGE = (0.25, 1.0)  # heteroscedastic: the contrast v of an object, uniform on this range
NOISE_SCALE_KEY = "label_noise_scale"  # heteroscedastic: the annotation's own b_i
CONTRAST_KEY = "contrast"  # heteroscedastic: the object's contrast v, what b_i is a function of
PARALLEL_FROM = 256  # images in a split before worker processes pay for their start-up
PNG_COMPRESSION = 3  # zlib level: noisy textures barely compress further, and level 3 is ~3x faster than 6
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SynthSettings:
    """How a synthetic dataset is drawn; saved to ``synth.json`` and the annotation json's ``info``.

    ``label_noise`` is b1 of eq. 16 as a fraction of each box's width (x, w) or height (y, h).
    Object sizes are fractions of ``image_size`` for the geometric mean of width and height.
    """

    n_train: int = 2000
    n_val: int = 200
    seed: int = 0
    image_size: int = 160
    label_noise: float = 0.0
    label_noise_model: str = HOMOSCEDASTIC
    noise_seed: int | None = None  # the label-noise generator's seed; None: ``seed`` (same scenes, other noise)
    min_objects: int = 1
    max_objects: int = 4
    min_object_size: float = 0.16
    max_object_size: float = 0.42
    max_aspect: float = 2.0  # width/height within [1/max_aspect, max_aspect]
    max_iou: float = 0.3  # between any two objects of one image
    min_visible: float = 0.6  # fraction of each object's pixels left uncovered by later objects

    def validate(self) -> "SynthSettings":
        def need(ok: bool, name: str, expected: str) -> None:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {name}={getattr(self, name)!r}")

        for name in ("n_train", "n_val", "seed", "image_size", "min_objects", "max_objects"):
            need(isinstance(getattr(self, name), int) and not isinstance(getattr(self, name), bool), name, "an int")
        need(self.n_train >= 0, "n_train", ">= 0")
        need(self.n_val >= 0, "n_val", ">= 0")
        need(self.seed >= 0, "seed", ">= 0")
        need(self.noise_seed is None or (isinstance(self.noise_seed, int) and not isinstance(self.noise_seed, bool)
                                         and self.noise_seed >= 0), "noise_seed", "None or an int >= 0")
        need(32 <= self.image_size <= 4096, "image_size", "between 32 and 4096 pixels")
        need(math.isfinite(self.label_noise) and self.label_noise >= 0, "label_noise", "a finite number >= 0")
        need(self.label_noise_model in LABEL_NOISE_MODELS, "label_noise_model", f"one of {LABEL_NOISE_MODELS}")
        need(1 <= self.min_objects <= self.max_objects, "min_objects", f"in 1..max_objects={self.max_objects}")
        need(0 < self.min_object_size <= self.max_object_size <= 0.9, "max_object_size",
             f">= min_object_size={self.min_object_size} and <= 0.9")
        need(self.max_aspect >= 1, "max_aspect", ">= 1")
        need(0 <= self.max_iou < 1, "max_iou", "in [0, 1)")
        need(0 < self.min_visible <= 1, "min_visible", "in (0, 1]")
        return self


# ---------------------------------------------------------------------------------------------------- drawing
def _shape_mask(shape: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask [h, w] of one shape filling its w×h box (sampled at pixel centres)."""
    u = (np.arange(w) + 0.5) / w * 2 - 1  # -1..1 across the box
    v = (np.arange(h) + 0.5) / h * 2 - 1
    u, v = np.meshgrid(u, v)
    if shape == "rectangle":
        return np.ones((h, w), bool)
    if shape == "ellipse":
        return u**2 + v**2 <= 1
    if shape == "ring":
        inner = 1 - rng.uniform(0.3, 0.5)
        r2 = u**2 + v**2
        return (r2 <= 1) & (r2 >= inner**2)
    if shape == "cross":
        arm = rng.uniform(0.22, 0.36)
        return (np.abs(u) <= arm) | (np.abs(v) <= arm)
    if shape == "triangle":  # isosceles, apex towards one of the four sides
        k = int(rng.integers(4))
        along, across = [(v, u), (-v, u), (u, v), (-u, v)][k]
        return np.abs(across) <= (along + 1) / 2
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float [size, size, 3] texture: a muted base colour plus three coloured plane waves."""
    image = np.empty((size, size, 3), np.float32)
    image[:] = rng.uniform(70, 185) + rng.uniform(-25, 25, 3)
    t = np.arange(size, dtype=np.float32)
    for _ in range(3):
        angle = rng.uniform(0, np.pi)
        k = 2 * np.pi / (size * rng.uniform(0.05, 0.6))
        phase = rng.uniform(0, 2 * np.pi)
        # sin(a + b) = sin a cos b + cos a sin b: two outer products instead of size² sines
        a, b = k * np.sin(angle) * t + phase, k * np.cos(angle) * t
        wave = np.outer(np.sin(a), np.cos(b)) + np.outer(np.cos(a), np.sin(b))  # rows: y, columns: x
        image += wave[..., None] * rng.uniform(-22, 22, 3).astype(np.float32)
    return image


def draw_scene(rng: np.random.Generator, settings: SynthSettings) -> tuple[np.ndarray, ...]:
    """Draw one image: returns (uint8 [S, S, 3], boxes float64 [N, 4] xyxy pixels, labels int64 [N] in 1..K,
    contrasts float64 [N]: each object's v, 1 unless ``settings.label_noise_model`` is heteroscedastic).

    Boxes are tight around each shape's full (un-occluded) pixels: x1 = first column, x2 = last column + 1.
    """
    size = settings.image_size
    image = _background(rng, size)
    owner = np.full((size, size), -1, np.int32)  # which object is visible at each pixel
    pixels: list[int] = []
    boxes: list[list[float]] = []
    labels: list[int] = []
    contrasts: list[float] = []
    wanted = int(rng.integers(settings.min_objects, settings.max_objects + 1))
    for _ in range(wanted * 12):  # attempts; fewer objects when the scene is crowded
        if len(boxes) == wanted:
            break
        scale = size * rng.uniform(settings.min_object_size, settings.max_object_size)
        aspect = math.exp(rng.uniform(-1, 1) * math.log(settings.max_aspect))
        w = int(min(round(scale * math.sqrt(aspect)), size - 2))
        h = int(min(round(scale / math.sqrt(aspect)), size - 2))
        x = int(rng.integers(0, size - w + 1))
        y = int(rng.integers(0, size - h + 1))
        label = int(rng.integers(len(SHAPES))) + 1
        mask = _shape_mask(SHAPES[label - 1], w, h, rng)
        if any(_iou([x, y, x + w, y + h], b) > settings.max_iou for b in boxes):
            continue
        covered = owner[y:y + h, x:x + w][mask]
        lost = np.bincount(covered[covered >= 0], minlength=len(boxes))
        visible = np.bincount(owner[owner >= 0], minlength=len(boxes))
        if any(visible[k] - lost[k] < settings.min_visible * pixels[k] for k in range(len(boxes))):
            continue
        ys, xs = np.nonzero(mask)
        box = [x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1]
        background = image[y:y + h, x:x + w].reshape(-1, 3).mean(0)
        colour = _contrasting_colour(rng, background)
        contrast = 1.0
        if settings.label_noise_model == HETEROSCEDASTIC:  # drawn only here: homoscedastic scenes stay as they were
            contrast = float(rng.uniform(*CONTRAST_RANGE))
            colour = background + contrast * (colour - background)
        shade = np.linspace(-1, 1, h)[:, None, None] * rng.uniform(-15, 15, 3)
        patch = image[y:y + h, x:x + w]
        patch[mask] = np.broadcast_to(colour + shade, patch.shape)[mask]
        owner[y:y + h, x:x + w][mask] = len(boxes)
        pixels.append(int(mask.sum()))
        boxes.append([float(c) for c in box])
        labels.append(label)
        contrasts.append(contrast)
    image += rng.standard_normal(image.shape, np.float32) * np.float32(rng.uniform(2, 8))
    pixels_u8 = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return (pixels_u8, np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(labels, np.int64),
            np.asarray(contrasts, np.float64))


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    for _ in range(50):
        colour = rng.uniform(0, 255, 3)
        if np.linalg.norm(colour - background) >= 100:
            return colour
    return 255 - background  # always far enough from a muted background


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


# ---------------------------------------------------------------------------------------------- label noise
def noise_scales(contrasts: np.ndarray, label_noise: float, model: str = HOMOSCEDASTIC) -> np.ndarray:
    """Each box's label-noise scale b_i: b1 = ``label_noise`` (homoscedastic), or b1·(lo + hi − v)/((lo + hi)/2)
    for contrast v on :data:`CONTRAST_RANGE` [lo, hi] (heteroscedastic: 1.6·b1 at v = 1/4, 0.4·b1 at v = 1)."""
    v, (lo, hi) = np.asarray(contrasts, np.float64).reshape(-1), CONTRAST_RANGE
    if model not in LABEL_NOISE_MODELS:
        raise ValueError(f"model must be one of {LABEL_NOISE_MODELS}, got model={model!r}")
    return label_noise * ((lo + hi - v) / ((lo + hi) / 2) if model == HETEROSCEDASTIC else np.ones_like(v))


def laplace_label_noise(boxes: np.ndarray, scale: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Perturb xyxy boxes with Laplace noise of scale ``scale`` (b1 of eq. 16) per centre/size coordinate.

    Each box's centre x and width get independent Laplace(0, scale·w) noise, centre y and height
    Laplace(0, scale·h), where w, h are the clean box's size. ``scale``: one number, or one per box
    (heteroscedastic noise). Returns unclipped xyxy boxes (they may leave the image or have w ≤ 0; see
    :func:`clip_boxes`). ``scale=0`` returns a copy.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scales = np.asarray(scale, np.float64)
    if scales.ndim and scales.shape != (len(boxes),):
        raise ValueError(f"scale must be one number or one per box ({len(boxes)}), got shape {scales.shape}")
    if not (np.isfinite(scales).all() and (scales >= 0).all()):
        raise ValueError(f"scale must be a finite number >= 0, got scale={scale!r}")
    if not scales.any():
        return boxes.copy()  # exactly: the centre/size round trip below would round the last bit
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    size = np.stack([w, h, w, h], axis=1)
    cxcywh = np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w, h], axis=1)
    cxcywh = cxcywh + rng.laplace(0.0, 1.0, cxcywh.shape) * (scales[:, None] if scales.ndim else scale) * size
    cx, cy, nw, nh = cxcywh.T
    return np.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], axis=1)


def clip_boxes(boxes: np.ndarray, width: int, height: int, min_size: float = MIN_BOX_SIZE
               ) -> tuple[np.ndarray, int, int]:
    """Make xyxy boxes valid labels: at least ``min_size`` wide and high, and inside the width×height image.

    A box narrower than ``min_size`` keeps its centre and gets width ``min_size`` (likewise height); a box
    crossing the image border is shifted inside when it fits, else cut at the border. Returns
    (boxes, n_resized, n_moved): how many boxes were widened and how many were moved or cut to the image.
    """
    out = np.array(boxes, np.float64).reshape(-1, 4)
    resized = np.zeros(len(out), bool)
    for lo, hi in ((0, 2), (1, 3)):
        small = out[:, hi] - out[:, lo] < min_size
        centre = (out[:, lo] + out[:, hi]) / 2
        out[small, lo] = centre[small] - min_size / 2
        out[small, hi] = centre[small] + min_size / 2
        resized |= small
    before = out.copy()
    for lo, hi, limit in ((0, 2, width), (1, 3, height)):
        shift = np.maximum(0, -out[:, lo]) - np.maximum(0, out[:, hi] - limit)
        out[:, lo] += shift
        out[:, hi] += shift
        out[:, lo] = np.clip(out[:, lo], 0, limit)
        out[:, hi] = np.clip(out[:, hi], 0, limit)
    n_moved = int(np.any(out != before, axis=1).sum())
    return out, int(resized.sum()), n_moved


# ---------------------------------------------------------------------------------------------- writing
def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
    return buffer.getvalue()


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=1) + "\n").encode()


def _image(settings: SynthSettings, split: str, index: int, folder: Path
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Draw image ``index`` of ``split``, write its PNG, return (label boxes, labels, each box's noise scale, each
    object's contrast, n_resized, n_moved)."""
    rng = np.random.default_rng([settings.seed, SPLITS[split], index])
    pixels, boxes, labels, contrasts = draw_scene(rng, settings)
    scales = noise_scales(contrasts, settings.label_noise, settings.label_noise_model)
    resized = moved = 0
    if split == "train" and settings.label_noise > 0:
        noise_rng = np.random.default_rng([_noise_seed(settings), SPLITS[split], index, NOISE_STREAM])
        per_box = settings.label_noise_model == HETEROSCEDASTIC
        raw = laplace_label_noise(boxes, scales if per_box else settings.label_noise, noise_rng)
        boxes, resized, moved = clip_boxes(raw, settings.image_size, settings.image_size)
    write_atomic(folder / _file_name(index), _png_bytes(pixels))
    return boxes, labels, scales, contrasts, resized, moved


def _noise_seed(settings: SynthSettings) -> int:
    return settings.seed if settings.noise_seed is None else settings.noise_seed


def _file_name(index: int) -> str:
    return f"{index + 1:06d}.png"


def _split(settings: SynthSettings, split: str, folder: Path, workers: int) -> tuple[dict, dict]:
    """Draw and write one split's images; returns (COCO dict, noise report)."""
    n = settings.n_train if split == "train" else settings.n_val
    noisy = split == "train" and settings.label_noise > 0
    draw = functools.partial(_image, settings, split, folder=folder)
    if workers > 1 and n >= PARALLEL_FROM:
        # spawn, not fork: the parent may hold torch's thread pools; the children need numpy and PIL only
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            drawn = list(pool.map(draw, range(n), chunksize=32))
    else:
        drawn = [draw(i) for i in range(n)]
    images, annotations = [], []
    report = {"boxes": 0, "resized": 0, "moved_into_image": 0}
    heteroscedastic = settings.label_noise_model == HETEROSCEDASTIC
    for i, (boxes, labels, scales, contrasts, resized, moved) in enumerate(drawn):
        report["boxes"] += len(boxes)
        report["resized"] += resized
        report["moved_into_image"] += moved
        images.append({"id": i + 1, "file_name": _file_name(i), "width": settings.image_size,
                       "height": settings.image_size})
        for box, label, scale, contrast in zip(boxes, labels, scales, contrasts):
            x1, y1, x2, y2 = (round(float(c), 3) for c in box)
            w, h = round(x2 - x1, 3), round(y2 - y1, 3)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label),
                                "bbox": [x1, y1, w, h], "area": round(w * h, 3), "iscrowd": 0,
                                **({NOISE_SCALE_KEY: round(float(scale), 6), CONTRAST_KEY: round(float(contrast), 6)}
                                   if heteroscedastic else {})})
    categories = [{"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(SHAPES)]
    noise = {"scale": settings.label_noise if noisy else 0.0, "model": settings.label_noise_model,
             "applied_to": split if noisy else "none" if split == "train" else "none (validation labels stay clean)",
             "coordinates": "centre x, centre y, width, height; scale times the clean box width (x, w) or height (y, h)",
             "distribution": "Laplace, eq. 16", "seed": _noise_seed(settings),
             "generator": f"numpy default_rng([seed, {SPLITS[split]}, image_index, {NOISE_STREAM}])", **report}
    info = {"description": f"labkit synthetic shapes, {split} split", "version": FORMAT_VERSION,
            "settings": asdict(settings), "label_noise": noise}
    return {"info": info, "images": images, "annotations": annotations, "categories": categories}, noise


def generate_synthetic(out: str | os.PathLike, n_train: int = SynthSettings.n_train,
                       n_val: int = SynthSettings.n_val, seed: int = 0,
                       image_size: int = SynthSettings.image_size, label_noise: float = 0.0,
                       workers: int | None = None, **options) -> Path:
    """Write the synthetic shapes dataset in COCO layout under ``out`` and return ``out`` as a Path.

    Layout: ``out/train/*.png``, ``out/val/*.png``, ``out/annotations/instances_{train,val}.json`` and the
    settings in ``out/synth.json``. ``label_noise`` is b1 (eq. 16) as a fraction of box width/height, applied
    to training labels only (see the module docstring). ``options`` are further :class:`SynthSettings`
    fields. ``workers`` processes draw the images (default: the CPU count, at most 4); the result does not
    depend on it. A folder that holds other files than an earlier synthetic dataset is refused; an earlier
    synthetic dataset is replaced (its stale images removed).
    """
    unknown = set(options) - set(SynthSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown synthetic setting(s) {sorted(unknown)}; known: {sorted(SynthSettings.__dataclass_fields__)}")
    settings = SynthSettings(n_train=n_train, n_val=n_val, seed=seed, image_size=image_size,
                             label_noise=float(label_noise), **options).validate()
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got workers={workers!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a folder, got the file {out}")
    if out.is_dir() and any(out.iterdir()) and not (out / SETTINGS_FILE).is_file():
        raise FileExistsError(f"refusing to write the synthetic dataset into {out}: it holds other files and no "
                              f"{SETTINGS_FILE}; choose an empty or new folder")
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    summary = {"format_version": FORMAT_VERSION, "settings": asdict(settings), "classes": list(SHAPES), "splits": {}}
    for split in SPLITS:
        folder = out / split
        folder.mkdir(exist_ok=True)
        coco, noise = _split(settings, split, folder, workers)
        keep = {img["file_name"] for img in coco["images"]}
        stale = [p for p in folder.glob("*.png") if p.name not in keep]
        for p in stale:
            p.unlink()
        write_atomic(out / "annotations" / f"instances_{split}.json", _json_bytes(coco))
        summary["splits"][split] = {"images": len(coco["images"]), "boxes": len(coco["annotations"]),
                                    "stale_images_removed": len(stale), "label_noise": noise}
    write_atomic(out / SETTINGS_FILE, _json_bytes(summary))
    return out


def read_settings(root: str | os.PathLike) -> SynthSettings | None:
    """The settings a synthetic dataset at ``root`` was drawn with, or None when ``root`` has no synth.json."""
    path = Path(root) / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        return SynthSettings(**json.loads(path.read_text())["settings"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a labkit synth.json (expected {{'settings': {{...}}}}): {exc}") from exc


def ensure_synthetic(out: str | os.PathLike = DEFAULT_SYNTHETIC, workers: int | None = None, **settings) -> Path:
    """Return ``out``, generating the synthetic dataset first unless it is already there with these settings."""
    wanted = SynthSettings(**settings).validate()
    have = read_settings(out)
    complete = have == wanted and all((Path(out) / "annotations" / f"instances_{s}.json").is_file() for s in SPLITS)
    return Path(out) if complete else generate_synthetic(out, workers=workers, **asdict(wanted))
