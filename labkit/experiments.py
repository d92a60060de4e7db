"""Section 6 and Appendix C as experiments: Tables 3–5 over seeds, and the label-noise study.

An experiment is data: named *arms* (one box-loss setting each, :class:`Arm`), trained at a *scale*
(:data:`SCALES`: ``smoke`` for CI, ``lab`` for the bundled synthetic data on a CPU, ``coco`` for the paper's
COCO 2014 schedule on GPUs) once per seed, evaluated with COCO AP, and summarised per arm as mean ± 95 % Student-t
interval (:func:`labkit.stats.mean_ci`).

- **Table 3** — the Published, Implemented and Proposed columns of Table 1 (``labkit.interpret.PRESETS``).
- **Table 4** — the Implemented preset with H_α (eq. 37) against D_{α/2,1/α}, its upper bound (eq. 27).
- **Table 5** — the Implemented preset with log size targets (eq. 43) against w*/w_a − 1 (eqs. 93–94).
- **Noise study** — synthetic training labels perturbed by Laplace noise of known scale b₁ (eq. 16, a fraction of
  each box's width/height); the loss's label scale α·σ (eq. 42, in anchor sizes) swept across a grid with λ and
  the prediction scale σ/λ held at the Proposed preset's values. :func:`labkit.interpret.suggest_stage` turns
  each label scale into (λ, α, σ). If the reading of eq. 42 is right, the loss should do best when its label
  scale matches the noise actually in the labels, so the best α·σ should track b₁; :func:`best_label_scales`
  reports where it falls.

:func:`run_experiment` writes ``runs.csv`` (one row per arm and seed), ``summary.csv`` (one row per arm) and
``results.json`` (both, with the git commit, device, date and every run's exact config), each atomically.
A run directory that already holds metrics for the same config is reused, and an interrupted one resumes from
its checkpoint, so a long lab-scale experiment can be stopped and restarted with the same command.

Cost (2-core CPU, no GPU, measured on a machine shared with other jobs): a smoke run takes seconds. A lab run
(300 iterations of 8 images at 160 px, then evaluation on 200 images) took 1.5 minutes with the cores free and
up to 18 minutes when they were crowded; the committed lab Table 3 (3 arms × 3 seeds) took the wall time recorded
in ``results/table3-lab``. Tables 4 and 5 have 2 × 3 runs; the noise study's default lab grid 5 × 4 × 3 = 60 runs
(narrow it with ``--label-noises``/``--label-scales``).

The paper's own COCO numbers are kept here as data (:data:`PAPER_TABLE3` …) for side-by-side display; they are
the paper's, never ours.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from labkit.stats import Summary, mean_ci

__all__ = [
    "EXPERIMENT_NAMES",
    "METRICS",
    "COCO_METRICS",
    "LOCALIZATION_METRICS",
    "LOWER_IS_BETTER",
    "SCALE_NAMES",
    "SCALES",
    "PAPER_TABLE3",
    "PAPER_TABLE4",
    "PAPER_TABLE5",
    "PAPER_TABLES",
    "NOISE_BASE_PRESET",
    "Scale",
    "Arm",
    "Experiment",
    "Results",
    "ResultTable",
    "table3",
    "table4",
    "table5",
    "noise_study",
    "build_experiment",
    "train_configs",
    "run_experiment",
    "load_results",
    "summary_table",
    "paper_table",
    "best_label_scales",
    "plot_noise_study",
    "plot_loss_curves",
    "LossCurve",
    "measured_results",
    "measured_table",
    "arms_table",
    "best_table",
    "matched_label_scale",
    "paired_differences",
    "paired_table",
    "add_arguments",
    "run",
]

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT_NAMES = ("table3", "table4", "table5", "noise-study")
SCALE_NAMES = ("smoke", "lab", "coco")
#: the COCO stats every table reports (Section 6: mAP at IoU 0.5, 0.75 and averaged over 0.5–0.95)
COCO_METRICS = ("AP", "AP50", "AP75")
#: what the box loss itself is about: the true positives' centre/size error in box units and their IoU
#: (labkit.detection.localization; loc_err reads on the scale of the injected label noise b₁)
LOCALIZATION_METRICS = ("loc_err", "loc_iou")
METRICS = COCO_METRICS + LOCALIZATION_METRICS
#: metrics where smaller is better
LOWER_IS_BETTER = frozenset({"loc_err"})
#: axis labels of the metrics in plots
METRIC_LABELS = {"AP": "AP (IoU 0.5–0.95)", "AP50": "AP50", "AP75": "AP75",
                 "loc_err": "centre/size error of true positives (box units)", "loc_iou": "IoU of true positives"}
RESULT_FILES = ("runs.csv", "summary.csv", "results.json")

# ---------------------------------------------------------------------------------------------------------------
# the paper's numbers (COCO 2014 val, VGG-16 Faster R-CNN, one run each), in percent, as printed
# ---------------------------------------------------------------------------------------------------------------
#: Table 3 of the paper (hyper-parameter performance): mAP in % at IoU 0.5 (AP50), 0.75 (AP75) and 0.5–0.95 (AP).
#: ``baseline`` is the number the Faster R-CNN publication reports (no AP75 given there: None).
PAPER_TABLE3: dict[str, dict[str, float | None]] = {
    "baseline": {"AP50": 41.5, "AP75": None, "AP": 21.2},
    "published": {"AP50": 42.8, "AP75": 18.7, "AP": 21.0},
    "implemented": {"AP50": 44.7, "AP75": 23.1, "AP": 23.8},
    "proposed": {"AP50": 44.7, "AP75": 24.0, "AP": 24.2},
}
#: Table 4 of the paper (loss function performance): H_α against D_{α/2,1/α}, Implemented preset, mAP in %.
PAPER_TABLE4: dict[str, dict[str, float | None]] = {
    "huber": {"AP50": 44.7, "AP75": 23.1, "AP": 23.8},
    "laplace_upper": {"AP50": 44.7, "AP75": 23.3, "AP": 23.8},
}
#: Table 5 of the paper (target performance), mAP in %: "Original" is the log size target (eq. 43), "Approximation"
#: the linear target w*/w_a − 1 of eqs. 93–94.
PAPER_TABLE5: dict[str, dict[str, float | None]] = {
    "log": {"AP50": 44.7, "AP75": 23.1, "AP": 23.8},
    "linear": {"AP50": 44.6, "AP75": 23.0, "AP": 23.7},
}
PAPER_TABLES = {"table3": PAPER_TABLE3, "table4": PAPER_TABLE4, "table5": PAPER_TABLE5}


# ---------------------------------------------------------------------------------------------------------------
# scales
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """How big one run is. ``synthetic`` holds :func:`labkit.detection.synthetic.generate_synthetic` settings
    (None: a dataset root must be given, as for COCO). Training numbers map onto
    :class:`labkit.detection.config.TrainConfig`. ``label_noises`` (b₁) and ``label_scales`` (α·σ, in anchor
    sizes) are the noise study's grid at this scale; ``seeds`` the default number of seeds."""

    name: str
    description: str
    model: str
    iters: int
    batch_size: int
    lr: float
    warmup_iters: int
    image_size: int | None
    seeds: int
    synthetic: Mapping[str, Any] | None
    train_split: str = "train"
    val_split: str = "val"
    lr_steps: tuple[float, ...] = (0.7, 0.9)
    weight_decay: float = 1e-4
    checkpoint_every: int = 1000
    label_noises: tuple[float, ...] = (0.0, 0.025, 0.05, 0.1, 0.2)
    label_scales: tuple[Fraction, ...] = tuple(Fraction(1, d) for d in (80, 40, 20, 10, 5))
    min_seeds: int = 1  # the lab scale reports intervals, so it needs >= 3

    def training(self) -> dict[str, Any]:
        """The :class:`TrainConfig` fields this scale sets."""
        return dict(model=self.model, iters=self.iters, batch_size=self.batch_size, lr=self.lr,
                    warmup_iters=self.warmup_iters, image_size=self.image_size, lr_steps=self.lr_steps,
                    weight_decay=self.weight_decay, train_split=self.train_split, val_split=self.val_split,
                    checkpoint_every=min(self.checkpoint_every, self.iters))

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["synthetic"] = dict(self.synthetic) if self.synthetic is not None else None
        out["lr_steps"] = list(self.lr_steps)
        out["label_noises"] = list(self.label_noises)
        out["label_scales"] = [str(s) for s in self.label_scales]
        return out


SCALES: dict[str, Scale] = {
    "smoke": Scale(
        name="smoke",
        description="seconds per run, for CI: 4 training images of 64 px, 2 iterations. Its numbers are noise.",
        model="lab", iters=2, batch_size=2, lr=0.01, warmup_iters=1, image_size=64, seeds=1,
        synthetic={"n_train": 4, "n_val": 2, "image_size": 64, "seed": 0},
        label_noises=(0.0, 0.1), label_scales=(Fraction(1, 40), Fraction(1, 10)),
    ),
    "lab": Scale(
        name="lab",
        description="the bundled synthetic shapes (2000 training, 200 validation images of 160 px) on a laptop "
                    "CPU; the `lab` model trained from scratch for 300 iterations of 8 images; sized for a table "
                    "of 3 arms × 3 seeds in about an hour on 2 free cores (an estimate; see the module docs).",
        model="lab", iters=300, batch_size=8, lr=0.02, warmup_iters=50, image_size=160, seeds=3,
        synthetic={"n_train": 2000, "n_val": 200, "image_size": 160, "seed": 0},
        checkpoint_every=100, min_seeds=3,
        label_scales=tuple(Fraction(1, d) for d in (40, 20, 10, 5)),
    ),
    # py-faster-rcnn's COCO schedule, which Section 6 uses: VGG-16, one image per iteration, SGD at lr 0.001
    # (momentum 0.9, weight decay 5e-4), ×0.1 after 350k of 490k iterations, 600 px shorter side; train on
    # COCO 2014 train, test on COCO 2014 val. Warm-up is torchvision's addition (py-faster-rcnn had none).
    "coco": Scale(
        name="coco",
        description="the paper's COCO 2014 schedule (VGG-16, 490k iterations of one image, lr 0.001 dropped "
                    "×0.1 at 350k); for GPUs. Needs --data pointing at a COCO 2014 root.",
        model="vgg16", iters=490_000, batch_size=1, lr=0.001, warmup_iters=0, image_size=600, seeds=1,
        synthetic=None, train_split="train2014", val_split="val2014", lr_steps=(350_000 / 490_000,),
        weight_decay=5e-4, checkpoint_every=10_000, label_noises=(), label_scales=(),
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# experiments as data
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One row of a table: a name, both stages' box losses (a :class:`labkit.detection.losses.BoxLosses`), and
    for the noise study the injected label noise b₁ and the loss's label scale α·σ."""

    name: str
    label: str
    box_losses: Any
    label_noise: float = 0.0
    label_scale: Fraction | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "box_losses": self.box_losses.to_dict(),
                "label_noise": self.label_noise,
                "label_scale": None if self.label_scale is None else str(self.label_scale)}


@dataclass(frozen=True)
class Experiment:
    """A named set of arms; ``paper`` names the paper's table it mirrors (a key of :data:`PAPER_TABLES`)."""

    name: str
    title: str
    arms: tuple[Arm, ...]
    paper: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "paper": self.paper, "arms": [a.to_dict() for a in self.arms]}


def table3() -> Experiment:
    """Table 3: the three columns of Table 1. Published is read as the publication's λ·H_1 (eq. 36)."""
    from labkit.detection.losses import IMPLEMENTATION, PAPER, from_preset

    arms = (
        Arm("published", "Published", from_preset("published", form=PAPER)),
        Arm("implemented", "Implemented", from_preset("implemented", form=IMPLEMENTATION)),
        Arm("proposed", "Proposed", from_preset("proposed", form=IMPLEMENTATION)),
    )
    return Experiment("table3", "Table 3: hyper-parameter performance", arms, paper="table3")


def table4() -> Experiment:
    """Table 4: the Implemented preset with (λ/α)·H_α against (λ/α)·D_{α/2,1/α}, nothing else changed."""
    from labkit.detection.losses import IMPLEMENTATION, LAPLACE_UPPER, from_preset

    arms = (
        Arm("huber", "H_α", from_preset("implemented", form=IMPLEMENTATION)),
        Arm("laplace_upper", "D_{α/2,1/α}", from_preset("implemented", form=LAPLACE_UPPER)),
    )
    return Experiment("table4", "Table 4: loss function performance", arms, paper="table4")


def table5() -> Experiment:
    """Table 5: the Implemented preset with log size targets (eq. 43) against w*/w_a − 1 (eqs. 93–94)."""
    from labkit.detection.losses import LINEAR, LOG, from_preset

    arms = (
        Arm("log", "Original (log w*/w_a)", from_preset("implemented", size_target=LOG)),
        Arm("linear", "Approximation (w*/w_a − 1)", from_preset("implemented", size_target=LINEAR)),
    )
    return Experiment("table5", "Table 5: target performance", arms, paper="table5")


#: the preset whose λ, σ (σ_x of each stage, used for all four coordinates) and prediction scale σ/λ the noise
#: study holds fixed while it sweeps the label scale
NOISE_BASE_PRESET = "proposed"


def _noise_losses(label_scale: Fraction) -> Any:
    """Both stages' box losses for one label scale: σ and the prediction scale from :data:`NOISE_BASE_PRESET`
    (its x-coordinate; one σ for x, y, w, h so that every coordinate gets the same label scale), α from the
    inverse mapping of eq. 42 via ``labkit.interpret.suggest_stage``."""
    from labkit.detection.losses import BoxLossConfig, BoxLosses
    from labkit.interpret import PRESETS, suggest_stage, uncertainty_scales

    stages = {}
    for name in ("rpn", "detection"):
        base = getattr(PRESETS[NOISE_BASE_PRESET], name)
        _, prediction_scale = uncertainty_scales(base.lam, base.alpha, base.sigma_x, form=base.form)
        s = suggest_stage(label_scale, prediction_scale, sigma=base.sigma_x)
        stages[name] = BoxLossConfig(lam=s.lam, alpha=s.alpha, sigma_x=s.sigma_x, sigma_y=s.sigma_y,
                                     sigma_w=s.sigma_w, sigma_h=s.sigma_h)
    return BoxLosses(**stages)


def _check_grid(name: str, values: Iterable[Any], positive: bool) -> tuple:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, Fraction, str)):
            raise TypeError(f"{name} must hold numbers, got {v!r}")
        try:
            f = Fraction(v) if not isinstance(v, float) else Fraction(v).limit_denominator(10**6)
        except (ValueError, ZeroDivisionError, OverflowError):
            raise ValueError(f"{name} must hold finite numbers (e.g. 0.05 or '1/20'), got {v!r}") from None
        if f < 0 or (positive and f == 0) or not math.isfinite(float(f)):
            raise ValueError(f"{name} must hold finite numbers {'> 0' if positive else '>= 0'}, got {v!r}")
        out.append(f)
    if not out:
        raise ValueError(f"{name} must not be empty")
    return tuple(out)


def noise_study(label_noises: Iterable[float], label_scales: Iterable[Fraction | float | str]) -> Experiment:
    """The label-noise study: one arm per (b₁, α·σ). ``label_noises`` are b₁ (fractions of box size, ≥ 0),
    ``label_scales`` the loss's label scales α·σ in anchor sizes (> 0)."""
    noises = _check_grid("label_noises", label_noises, positive=False)
    scales = _check_grid("label_scales", label_scales, positive=True)
    arms = tuple(
        Arm(f"b{float(b):g}_ls{str(ls).replace('/', '-')}", f"b₁={float(b):g}, α·σ={ls}", _noise_losses(ls),
            label_noise=float(b), label_scale=ls)
        for b in noises for ls in scales
    )
    return Experiment("noise-study", "Label-noise study: AP against the loss's label scale α·σ per noise b₁", arms)


def build_experiment(name: str, scale: str | Scale = "smoke") -> Experiment:
    """The experiment called ``name`` (one of :data:`EXPERIMENT_NAMES`); the noise study takes its grid from
    ``scale``."""
    if name not in EXPERIMENT_NAMES:
        raise ValueError(f"experiment must be one of {EXPERIMENT_NAMES}, got experiment={name!r}")
    sc = _scale(scale)
    if name == "noise-study":
        if sc.synthetic is None:
            raise ValueError(f"the noise study injects label noise into the synthetic data; scale={sc.name!r} "
                             "has none (use scale 'smoke' or 'lab')")
        return noise_study(sc.label_noises, sc.label_scales)
    return {"table3": table3, "table4": table4, "table5": table5}[name]()


def _scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALE_NAMES}, got scale={scale!r}")
    return SCALES[scale]


# ---------------------------------------------------------------------------------------------------------------
# from arms to training configs
# ---------------------------------------------------------------------------------------------------------------
def _dataset_root(scale: Scale, label_noise: float, out: Path, data: str | os.PathLike | None) -> Path:
    """Where an arm's data lives. Synthetic data: the smoke scale keeps it inside ``out``; the lab scale uses
    ``data/synthetic`` of the project (``data/synthetic_noise_<b1>`` for noisy labels). Otherwise ``data``."""
    if data is not None:
        if label_noise:
            raise ValueError("data: label noise is injected into generated synthetic data only; "
                             "do not pass data= for the noise study")
        return Path(data)
    if scale.synthetic is None:
        raise ValueError(f"data: scale {scale.name!r} has no bundled data; pass data= / --data (a dataset root, e.g. a "
                         "COCO 2014 folder with annotations/instances_train2014.json and train2014/)")
    base = out / "data" if scale.name == "smoke" else ROOT / "data"
    name = "synthetic" if not label_noise else f"synthetic_noise_{label_noise:g}"
    if scale.name != "lab":
        name = f"{name}_{scale.name}"
    return base / name


def train_configs(experiment: Experiment, scale: str | Scale, seeds: Sequence[int], out: str | os.PathLike,
                  device: str = "auto", data: str | os.PathLike | None = None) -> list[tuple[Arm, int, Any]]:
    """(arm, seed, :class:`TrainConfig`) for every run of ``experiment`` at ``scale``: nothing is trained or
    written. Run directories are ``out/runs/<arm>/seed<k>``."""
    from labkit.detection.config import TrainConfig

    sc = _scale(scale)
    out = Path(out)
    runs = []
    for arm in experiment.arms:
        root = _dataset_root(sc, arm.label_noise, out, data)
        for seed in seeds:
            config = TrainConfig(
                data=str(root), out=str(out / "runs" / arm.name / f"seed{seed}"), box_losses=arm.box_losses.to_dict(),
                seed=int(seed), device=device, **sc.training(),
                extra={"experiment": experiment.name, "arm": arm.name, "scale": sc.name,
                       "label_noise": arm.label_noise,
                       "label_scale": None if arm.label_scale is None else str(arm.label_scale)},
            )
            runs.append((arm, int(seed), config))
    return runs


def _ensure_data(scale: Scale, root: Path, label_noise: float) -> None:
    from labkit.detection.synthetic import ensure_synthetic

    ensure_synthetic(root, **dict(scale.synthetic), label_noise=float(label_noise))


# ---------------------------------------------------------------------------------------------------------------
# provenance and atomic files
# ---------------------------------------------------------------------------------------------------------------
def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(device: str) -> dict[str, Any]:
    """Where and when results were made: git commit (and whether the tree had changes), device, date, versions."""
    import torch
    import torchvision

    status = _git("status", "--porcelain", "--untracked-files=no")
    info = {
        "git_commit": _git("rev-parse", "HEAD") or "unknown (not a git checkout)",
        "git_dirty": None if status is None else bool(status),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else
        (platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }
    return info


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------------------
RUN_COLUMNS = ("experiment", "arm", "label", "seed", "label_noise", "label_scale", "status", *METRICS,
               "train_seconds", "run_dir")
SUMMARY_COLUMNS = ("experiment", "arm", "label", "label_noise", "label_scale", "n_seeds", "n_failed",
                   *(f"{m}_{part}" for m in METRICS for part in ("mean", "ci95", "low", "high")))


OK = "ok"
DIVERGED = "diverged"  # the training loss became non-finite; the run is counted, not averaged
_NO_SUMMARY = Summary(mean=math.nan, half_width=math.nan, n=0, std=math.nan, confidence=0.95)


@dataclass(frozen=True)
class Results:
    """What :func:`run_experiment` measured: ``rows`` (one dict per arm and seed) and ``summary`` (per arm: the
    arm's fields and a :class:`~labkit.stats.Summary` per metric), with the experiment, scale and provenance."""

    experiment: Mapping[str, Any]
    scale: Mapping[str, Any]
    provenance: Mapping[str, Any]
    rows: tuple[Mapping[str, Any], ...]
    summary: tuple[Mapping[str, Any], ...]
    out: Path | None = None
    configs: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def name(self) -> str:
        return str(self.experiment["name"])

    def to_json(self) -> dict[str, Any]:
        summary = [{**{k: v for k, v in s.items() if k not in METRICS},
                    **{m: s[m].to_dict() for m in METRICS}} for s in self.summary]
        return {"experiment": dict(self.experiment), "scale": dict(self.scale), "provenance": dict(self.provenance),
                "metrics": list(METRICS), "confidence": 0.95, "runs": [dict(r) for r in self.rows],
                "summary": summary, "configs": [dict(c) for c in self.configs]}


def _summary(values: Sequence[float | None]) -> Summary:
    """Mean ± CI of the defined values (a run with no true positive has no localization error; a results file
    written before a metric existed has none of it)."""
    defined = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return mean_ci(defined) if defined else _NO_SUMMARY


def _summarise(experiment: Experiment, rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    out = []
    for arm in experiment.arms:
        mine = [r for r in rows if r["arm"] == arm.name]
        if not mine:
            continue
        ok = [r for r in mine if r["status"] == OK]
        entry = {"experiment": experiment.name, "arm": arm.name, "label": arm.label,
                 "label_noise": arm.label_noise,
                 "label_scale": None if arm.label_scale is None else str(arm.label_scale), "n_seeds": len(ok),
                 "n_failed": len(mine) - len(ok)}
        # failed runs are counted, not averaged in as zeros; an arm with none left has no mean
        entry.update({m: _summary([r.get(m) for r in ok]) for m in METRICS})
        out.append(entry)
    return tuple(out)


def _reusable(config: Any) -> Mapping[str, Any] | None:
    """The metrics of a finished run with exactly this config (so an interrupted experiment resumes), else None."""
    run_dir = Path(config.out)
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    wanted = json.loads(json.dumps(config.to_dict()))
    same = {k: v for k, v in saved.items() if k != "device"} == {k: v for k, v in wanted.items() if k != "device"}
    if not same or not all(m in metrics for m in COCO_METRICS):
        return None
    if not all(m in metrics for m in METRICS):
        # finished before a metric existed: evaluate its last checkpoint again (seconds), rather than retrain
        from labkit.detection.evaluate import evaluate_run
        from labkit.detection.train import latest_checkpoint

        if latest_checkpoint(run_dir) is None:
            return None
        metrics = evaluate_run(run_dir, device=config.device)
    return metrics


def run_experiment(
    experiment: str | Experiment,
    scale: str | Scale = "smoke",
    seeds: int | Sequence[int] | None = None,
    out: str | os.PathLike = "runs/experiment",
    device: str = "auto",
    data: str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[..., Any] | None = None,
    reuse: bool = True,
) -> Results:
    """Train and evaluate every arm of ``experiment`` for each seed at ``scale``, then write ``out/runs.csv``,
    ``out/summary.csv`` and ``out/results.json``.

    ``seeds``: a count (seeds 0 … n−1) or the seeds themselves (default: the scale's count; the lab scale needs
    ≥ 3 for an interval). ``device``: "auto", "cpu" or "cuda". ``data``: a dataset root, needed for scale "coco".
    ``callback``: passed to :func:`labkit.detection.train.train` with the run's name added to each record as
    ``"run"`` (a live loss curve in a notebook, :class:`LossCurve`); its ``close()``, if any, is called at the end.
    ``reuse``: a run directory that already holds metrics for the same config is read, not retrained.
    """
    from labkit.detection.train import NonFiniteLossError, latest_checkpoint, resolve_device, train

    sc = _scale(scale)
    exp = build_experiment(experiment, sc) if isinstance(experiment, str) else experiment
    if not isinstance(exp, Experiment):
        raise TypeError(f"experiment must be a name in {EXPERIMENT_NAMES} or an Experiment, got {experiment!r}")
    seed_list = _seed_list(sc.seeds if seeds is None else seeds)
    if len(seed_list) < sc.min_seeds:
        raise ValueError(f"seeds: scale {sc.name!r} reports mean ± 95 % CI and needs >= {sc.min_seeds} seeds, "
                         f"got {len(seed_list)}")
    out = Path(out).resolve()  # run configs hold absolute paths, so a rerun from another folder still matches
    dev = str(resolve_device(device))
    plan = train_configs(exp, sc, seed_list, out, device=device, data=data)
    rows = []
    for arm, seed, config in plan:
        if sc.synthetic is not None and data is None:
            _ensure_data(sc, Path(config.data), arm.label_noise)
        metrics, status = _reusable(config) if reuse else None, OK
        if metrics is None:
            # an interrupted run continues from its checkpoint (train refuses a different config there)
            resume = reuse and latest_checkpoint(config.out) is not None
            tagged = None if callback is None else _tagged(callback, f"{arm.name}/seed{seed}")
            try:
                run_dir = Path(train(config, resume=resume, progress=progress, callback=tagged))
                metrics = json.loads((run_dir / "metrics.json").read_text())
            except NonFiniteLossError as exc:
                status, metrics = f"{DIVERGED}: {exc}", {m: None for m in METRICS}
                print(f"{arm.name}/seed{seed}: {status}", file=sys.stderr)
        rows.append({"experiment": exp.name, "arm": arm.name, "label": arm.label, "seed": seed,
                     "label_noise": arm.label_noise,
                     "label_scale": None if arm.label_scale is None else str(arm.label_scale), "status": status,
                     **{m: None if metrics.get(m) is None else float(metrics[m]) for m in METRICS},
                     "train_seconds": _train_seconds(Path(config.out)), "run_dir": str(Path(config.out))})
    if callable(getattr(callback, "close", None)):
        callback.close()  # e.g. LossCurve: draw the finished curves
    results = Results(experiment=exp.to_dict(), scale=sc.to_dict(), provenance=provenance(dev), rows=tuple(rows),
                      summary=_summarise(exp, rows), out=out, configs=tuple(c.to_dict() for _, _, c in plan))
    write_results(results, out)
    return results


def _tagged(callback: Callable[[dict], Any], run: str) -> Callable[[dict], Any]:
    """The training callback with the run's name added to each record (key ``"run"``)."""
    return lambda record: callback({**record, "run": run})


def _train_seconds(run_dir: Path) -> float | None:
    """Training wall time of a run: the ``seconds`` of the last record in its ``log.jsonl`` (None if absent;
    a resumed run counts from its resumption)."""
    try:
        lines = (run_dir / "log.jsonl").read_text().strip().splitlines()
        return round(float(json.loads(lines[-1])["seconds"]), 3)
    except (OSError, IndexError, KeyError, ValueError, TypeError):
        return None


def _seed_list(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise TypeError(f"seeds must be a count or a sequence of ints, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got seeds={seeds}")
        return tuple(range(seeds))
    out = tuple(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out) or len(set(out)) < len(out):
        raise ValueError(f"seeds must be distinct ints >= 0, got seeds={seeds!r}")
    return out


def write_results(results: Results, out: str | os.PathLike) -> tuple[Path, ...]:
    """Write ``runs.csv``, ``summary.csv`` and ``results.json`` under ``out`` (each atomically)."""
    out = Path(out)

    def cell(v: Any) -> Any:
        return "" if v is None else v

    runs = _csv_text(RUN_COLUMNS, ([cell(r[c]) for c in RUN_COLUMNS] for r in results.rows))
    summary_rows = []
    for s in results.summary:
        row = [cell(s[c]) for c in SUMMARY_COLUMNS[:7]]
        for m in METRICS:
            d = s[m]
            row += ["" if math.isnan(v) else v for v in (d.mean, d.half_width, d.low, d.high)]
        summary_rows.append(row)
    paths = (out / "runs.csv", out / "summary.csv", out / "results.json")
    _write_atomic(paths[0], runs)
    _write_atomic(paths[1], _csv_text(SUMMARY_COLUMNS, summary_rows))
    _write_atomic(paths[2], json.dumps(_finite(results.to_json()), indent=1, allow_nan=False) + "\n")
    return paths


def _finite(obj: Any) -> Any:
    """JSON has no NaN: an undefined interval (one seed) is written as null."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def load_results(path: str | os.PathLike) -> Results:
    """Read the ``results.json`` that :func:`run_experiment` wrote (``path``: the file or its folder)."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"results: no results.json at {file} (expected the folder an experiment wrote)")
    try:
        data = json.loads(file.read_text())
        # a file written before a metric existed has no summary of it: that metric reads as undefined
        summary = tuple(
            {**{k: v for k, v in s.items() if k not in METRICS},
             **{m: Summary(mean=_nan_if_none(s[m]["mean"]), half_width=_nan_if_none(s[m]["half_width"]),
                           n=s[m]["n"], std=_nan_if_none(s[m]["std"]), confidence=s[m]["confidence"])
                if m in s else _NO_SUMMARY for m in METRICS}}
            for s in data["summary"])
        return Results(experiment=data["experiment"], scale=data["scale"], provenance=data["provenance"],
                       rows=tuple(data["runs"]), summary=summary, out=file.parent, configs=tuple(data["configs"]))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"results: {file} is not an experiment's results.json: {exc!r}") from None


# ---------------------------------------------------------------------------------------------------------------
# display
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResultTable:
    """A small table for display: ``title``, ``header``, ``rows`` of strings, and a ``note`` under it."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines + ([f"", f"*{self.note}*"] if self.note else []))

    def to_text(self) -> str:
        grid = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in grid) for i in range(len(self.header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in grid]
        return "\n".join([self.title, *lines] + ([self.note] if self.note else []))

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_text()


def summary_table(results: Results, percent: bool = True) -> ResultTable:
    """Our measured table: per arm, mean ± 95 % CI of AP50, AP75, AP (in % like the paper when ``percent``), and
    of ``loc_err`` (box units, 3 decimals) when any arm has it."""
    k = 100.0 if percent else 1.0
    order: tuple[str, ...] = ("AP50", "AP75", "AP")
    if any(not math.isnan(s["loc_err"].mean) for s in results.summary):
        order += ("loc_err",)
    rows = []
    for s in results.summary:
        cells = []
        for m in order:
            d = s[m]
            scale, digits = (1.0, 3) if m in LOCALIZATION_METRICS else (k, 1)
            mean = "–" if math.isnan(d.mean) else f"{scale * d.mean:.{digits}f}"
            cells.append(mean + ("" if math.isnan(d.half_width) else f" ± {scale * d.half_width:.{digits}f}"))
        failed = s.get("n_failed", 0)
        rows.append((s["label"], str(s["n_seeds"]) + (f" ({failed} diverged)" if failed else ""), *cells))
    prov = results.provenance
    note = (f"Ours: {results.scale['name']} scale, mean ± 95 % Student-t CI over seeds (no ± with one seed); "
            f"{prov['device']}, commit {str(prov['git_commit'])[:10]}, {prov['date']}.")
    if "loc_err" in order:
        note += " loc_err: mean centre/size error of the true positives at IoU 0.5, in box units (smaller is better)."
    return ResultTable(f"{results.experiment['title']} — measured here", ("arm", "seeds", *order), tuple(rows), note)


def paper_table(name: str) -> ResultTable:
    """The paper's own table ``name`` ("table3", "table4", "table5"): COCO 2014 val, VGG-16, in %."""
    if name not in PAPER_TABLES:
        raise ValueError(f"name must be one of {tuple(PAPER_TABLES)}, got name={name!r}")
    rows = tuple((arm, *("–" if v[m] is None else f"{v[m]:.1f}" for m in ("AP50", "AP75", "AP")))
                 for arm, v in PAPER_TABLES[name].items())
    return ResultTable(f"The paper's {name.replace('table', 'Table ')} (COCO 2014 val, VGG-16, one run each)",
                       ("arm", "AP50", "AP75", "AP"), rows,
                       "The paper's numbers, not ours; '–' = not reported there.")


def _noise_grid(results: Results, metric: str) -> dict[float, list[tuple[float, Summary]]]:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got metric={metric!r}")
    grid: dict[float, list[tuple[float, Summary]]] = {}
    for s in results.summary:
        if s.get("label_scale") is None:
            raise ValueError(f"results of {results.name!r} have no label scales; expected the noise study's")
        grid.setdefault(float(s["label_noise"]), []).append((float(Fraction(s["label_scale"])), s[metric]))
    return {b: sorted(v, key=lambda t: t[0]) for b, v in sorted(grid.items())}


def _new_axes(size: tuple[float, float]) -> Any:
    """Axes on a figure outside pyplot's registry: a notebook shows it once (as the returned value), and
    nothing stays open."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained").subplots()


def best_label_scales(results: Results, metric: str = "AP75") -> list[dict[str, Any]]:
    """Per label noise b₁: the swept label scale α·σ with the best mean ``metric`` (the largest; the smallest for
    ``loc_err``), and its ratio to b₁.
    A tie for the best mean gives ``best_label_scale`` None (no preference)."""
    out = []
    for b, points in _noise_grid(results, metric).items():
        points = [p for p in points if not math.isnan(p[1].mean)]  # arms whose every run diverged
        if not points:
            out.append({"label_noise": b, "best_label_scale": None, "ratio_to_noise": None, metric: math.nan,
                        "ci95": math.nan})
            continue
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        ls, s = max(points, key=lambda t: sign * t[1].mean)
        if sum(p[1].mean == s.mean for p in points) > 1:
            ls = None
        out.append({"label_noise": b, "best_label_scale": ls,
                    "ratio_to_noise": ls / b if b and ls is not None else None, metric: s.mean, "ci95": s.half_width})
    return out


def plot_noise_study(results: Results, metric: str = "AP75", ax: Any = None) -> Any:
    """``metric`` against the loss's label scale α·σ, one line per b₁ with its 95 % CI band; a dotted line marks
    α·σ = b₁ in the same colour. Returns the figure."""
    grid = _noise_grid(results, metric)
    if ax is None:
        ax = _new_axes((6.4, 4.0))
    fig = ax.figure
    for i, (b, points) in enumerate(grid.items()):
        colour = f"C{i}"
        xs = [p[0] for p in points]
        mean = [p[1].mean for p in points]
        ax.plot(xs, mean, "o-", color=colour, label=f"b₁ = {b:g}")
        if all(not math.isnan(p[1].half_width) for p in points):
            ax.fill_between(xs, [p[1].low for p in points], [p[1].high for p in points], color=colour, alpha=0.2)
        if b > 0:
            ax.axvline(b, color=colour, linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ticks = sorted({x for points in grid.values() for x, _ in points})
    ax.set_xticks(ticks, [str(Fraction(x).limit_denominator(1000)) for x in ticks])
    ax.minorticks_off()
    ax.set_xlabel("label scale α·σ of the loss (anchor sizes, eq. 42)")
    ax.set_ylabel(f"{METRIC_LABELS[metric]} (validation, clean labels)", fontsize="small")
    ax.set_title(f"{metric} against the assumed label noise ({results.scale['name']} scale)")
    ax.legend(title="injected noise", fontsize="small")
    return fig


def plot_loss_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], ax: Any = None) -> Any:
    """Total training loss against iteration, one line per run (``curves``: run name -> (iterations, losses)).
    Returns the figure."""
    if ax is None:
        ax = _new_axes((6.4, 3.2))
    for name, (its, losses) in curves.items():
        ax.plot(its, losses, label=name, linewidth=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("total loss")
    if curves:
        if len(curves) <= 12:
            ax.legend(fontsize="x-small", ncol=2)
    return ax.figure


class LossCurve:
    """A training callback that draws the loss curves live in a notebook (:func:`plot_loss_curves`), redrawn
    in place every ``every`` iterations. Records carry ``iteration`` and ``loss`` (and ``run``, added by
    :func:`run_experiment`). Outside IPython it only collects."""

    def __init__(self, every: int = 10) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got every={every!r}")
        self.every = every
        self.curves: dict[str, tuple[list[float], list[float]]] = {}
        self._handle = None

    def __call__(self, record: Mapping[str, Any]) -> None:
        its, losses = self.curves.setdefault(str(record.get("run", "run")), ([], []))
        its.append(record["iteration"])
        losses.append(record["loss"])
        if record["iteration"] % self.every == 0 or record["iteration"] == 1:
            self.draw()

    def draw(self) -> None:
        """Redraw the curves in this cell's output (first call: create the output)."""
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:
            return
        if get_ipython() is None:
            return
        png = io.BytesIO()
        plot_loss_curves(self.curves).savefig(png, format="png", dpi=80)  # PNG: shown whatever the backend
        image = Image(data=png.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    def close(self) -> None:
        """Called by :func:`run_experiment` after the last run: draw the finished curves."""
        self.draw()


def measured_results(results_dir: str | os.PathLike, name: str, folder: str | None = None) -> Results | None:
    """Committed measured results of experiment ``name`` under ``results_dir``: those in ``<results_dir>/<folder>``
    when ``folder`` is given, else any ``<results_dir>/<name>-*/`` holding a results.json (the newest by date when
    several); None when there are none. Results found there of another experiment are an error."""
    if name not in EXPERIMENT_NAMES:
        raise ValueError(f"name must be one of {EXPERIMENT_NAMES}, got name={name!r}")
    if folder is not None:
        file = Path(results_dir) / folder / "results.json"
        found = [load_results(file)] if file.is_file() else []
    else:
        found = [load_results(p) for p in sorted(Path(results_dir).glob(f"{name}-*/results.json"))]
    wrong = [str(r.out) for r in found if r.name != name]
    if wrong:
        raise ValueError(f"folder: expected results of {name!r}, found another experiment's in {wrong}")
    return max(found, key=lambda r: str(r.provenance.get("date", ""))) if found else None


def measured_table(results_dir: str | os.PathLike, name: str, folder: str | None = None) -> ResultTable:
    """:func:`summary_table` of the committed results of ``name`` under ``results_dir`` (``folder``: as
    :func:`measured_results`); when there are none, a table that says so (and how to make them)."""
    found = measured_results(results_dir, name, folder)
    if found is not None:
        return summary_table(found)
    return ResultTable(f"No measured {name} results under {results_dir}", ("how to make them",),
                       ((f"python -m labkit experiment {name} --scale lab --seeds 3 --out results/{name}-lab",),))


def _stage_text(config: Any) -> str:
    return f"λ={config.lam} α={config.alpha} σ=({config.sigma_x}, {config.sigma_y}, {config.sigma_w}, {config.sigma_h})"


def arms_table(experiment: str | Experiment, scale: str | Scale = "smoke") -> ResultTable:
    """What each arm trains with: both stages' (λ, α, σ_x, σ_y, σ_w, σ_h), loss form, size target, and for the
    noise study b₁ and α·σ."""
    exp = build_experiment(experiment, scale) if isinstance(experiment, str) else experiment
    rows = tuple((a.label, _stage_text(a.box_losses.rpn), _stage_text(a.box_losses.detection),
                  a.box_losses.detection.form, a.box_losses.detection.size_target,
                  f"{a.label_noise:g}", "" if a.label_scale is None else str(a.label_scale)) for a in exp.arms)
    return ResultTable(f"{exp.title}: the arms", ("arm", "proposal (rpn)", "detection", "loss form", "size target",
                                                  "b₁", "α·σ"), rows)


def best_table(results: Results, metric: str = "AP75") -> ResultTable:
    """:func:`best_label_scales` as a table."""
    rows = tuple((f"{b['label_noise']:g}", "tie" if b["best_label_scale"] is None else f"{b['best_label_scale']:g}",
                  "–" if b["ratio_to_noise"] is None else f"{b['ratio_to_noise']:.2f}",
                  "–" if math.isnan(b[metric]) else
                  f"{b[metric]:.3f}" + ("" if math.isnan(b["ci95"]) else f" ± {b['ci95']:.3f}")) for b in
                 best_label_scales(results, metric))
    return ResultTable(f"Best swept label scale per injected noise, by mean {metric} ({results.scale['name']} scale)",
                       ("b₁", "best α·σ", "best α·σ / b₁", metric), rows,
                       "Eq. 42 predicts best α·σ / b₁ near 1 when the anchors fit the boxes; the grid limits "
                       "what can be found, and overlapping intervals mean no winner.")


def matched_label_scale(label_noise: float, label_scales: Sequence[float]) -> float:
    """The swept label scale eq. 42 matches to the injected noise b₁: the one nearest b₁ on a log scale (ties: the
    smaller); for b₁ = 0, the smallest."""
    scales = sorted(float(x) for x in label_scales)
    if not scales or scales[0] <= 0:
        raise ValueError(f"label_scales must be positive numbers, got {label_scales!r}")
    if label_noise <= 0:
        return scales[0]
    return min(scales, key=lambda x: abs(math.log(x / label_noise)))


def paired_differences(results: Results, metric: str = "loc_err") -> list[dict[str, Any]]:
    """Per injected noise b₁, every other swept label scale against the matched one (:func:`matched_label_scale`):
    the mean over seeds of (``metric`` of the arm − ``metric`` of the matched arm, same seed) with its 95 % CI.

    At one b₁ all arms of a seed train on the same noisy labels from the same initial weights in the same batch
    order, so pairing by seed removes the seed-to-seed spread that widens the per-arm intervals. Seeds where either
    run failed or has no value are left out (``n`` says how many pairs remain)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got metric={metric!r}")
    values: dict[tuple[float, float], dict[int, float]] = {}
    for r in results.rows:
        if r.get("label_scale") is None:
            raise ValueError(f"results of {results.name!r} have no label scales; expected the noise study's")
        v = r.get(metric)
        if r.get("status") == OK and v is not None and not math.isnan(float(v)):
            values.setdefault((float(r["label_noise"]), float(Fraction(r["label_scale"]))), {})[int(r["seed"])] = float(v)
    out = []
    for b in sorted({b for b, _ in values}):
        scales = sorted(ls for bb, ls in values if bb == b)
        matched = matched_label_scale(b, scales)
        for ls in scales:
            if ls == matched:
                continue
            seeds = sorted(set(values[b, ls]) & set(values[b, matched]))
            diffs = [values[b, ls][s] - values[b, matched][s] for s in seeds]
            out.append({"label_noise": b, "matched_label_scale": matched, "label_scale": ls, "metric": metric,
                        "difference": mean_ci(diffs) if diffs else _NO_SUMMARY})
    return out


def paired_table(results: Results, metric: str = "loc_err") -> ResultTable:
    """:func:`paired_differences` as a table, with which side each interval favours."""
    lower = metric in LOWER_IS_BETTER
    rows = []
    for d in paired_differences(results, metric):
        diff = d["difference"]
        if math.isnan(diff.half_width):
            verdict = "–"
        elif diff.low > 0 or diff.high < 0:
            matched_better = (diff.low > 0) == lower
            verdict = "matched better" if matched_better else "this arm better"
        else:
            verdict = "no difference"
        rows.append((f"{d['label_noise']:g}", str(Fraction(d["matched_label_scale"]).limit_denominator(1000)),
                     str(Fraction(d["label_scale"]).limit_denominator(1000)),
                     "–" if math.isnan(diff.mean) else f"{diff.mean:+.4f}" + (
                         "" if math.isnan(diff.half_width) else f" ± {diff.half_width:.4f}"),
                     str(diff.n), verdict))
    return ResultTable(
        f"{metric}: each label scale against the one matched to b₁, paired by seed ({results.scale['name']} scale)",
        ("b₁", "matched α·σ", "α·σ", f"Δ {metric} (arm − matched)", "pairs", "95 % CI says"), tuple(rows),
        "If eq. 42 holds, the matched arm should be the better side of every row "
        + ("(Δ > 0: its error is smaller)." if lower else "(Δ < 0)."))


# ---------------------------------------------------------------------------------------------------------------
# command line: python -m labkit experiment table3 --scale smoke --seeds 1 --out runs/table3
# ---------------------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", choices=EXPERIMENT_NAMES, help="which table (or the noise study) to run")
    parser.add_argument("--scale", choices=SCALE_NAMES, default="smoke",
                        help="smoke (seconds, CI), lab (synthetic data on a CPU), coco (the paper's schedule, GPUs)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the scale's; lab: 3)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/<experiment>-<scale>)")
    parser.add_argument("--data", type=Path, default=None, help="dataset root (required for --scale coco)")
    parser.add_argument("--no-reuse", action="store_true", help="retrain runs that already have metrics (use a fresh --out)")
    parser.add_argument("--label-noises", type=float, nargs="+", default=None, metavar="B1",
                        help="noise study only: injected label noise b1 values (default: the scale's grid)")
    parser.add_argument("--label-scales", nargs="+", default=None, metavar="ALPHA_SIGMA",
                        help="noise study only: label scales α·σ to sweep, e.g. 1/40 1/20 (default: the scale's)")


def run(args: argparse.Namespace) -> int:
    """Run one experiment and print our table (and the paper's, for the tables)."""
    out = args.out or Path("runs") / f"{args.experiment}-{args.scale}"
    experiment: str | Experiment = args.experiment
    if args.label_noises is not None or args.label_scales is not None:
        if args.experiment != "noise-study":
            raise SystemExit("experiment: --label-noises/--label-scales apply to noise-study only")
        grid = SCALES[args.scale]
        experiment = noise_study(grid.label_noises if args.label_noises is None else args.label_noises,
                                 grid.label_scales if args.label_scales is None else args.label_scales)
    from labkit.detection.train import DeviceUnavailableError

    start = time.perf_counter()
    try:
        results = run_experiment(experiment, scale=args.scale, seeds=args.seeds, out=out, device=args.device,
                                 data=args.data, progress=True, reuse=not args.no_reuse)
    except (ValueError, FileNotFoundError, FileExistsError, DeviceUnavailableError) as exc:  # bad input: say what, without a traceback
        raise SystemExit(f"experiment: {exc}") from None
    print(summary_table(results).to_text())
    if results.experiment.get("paper"):
        print()
        print(paper_table(results.experiment["paper"]).to_text())
    else:
        print()
        print(best_table(results).to_text())
    print(f"wrote {', '.join(str(out / f) for f in RESULT_FILES)} in {time.perf_counter() - start:.0f} s")
    return 0
