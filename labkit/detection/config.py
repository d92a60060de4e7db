"""A training run's configuration as data: one frozen dataclass, saved as ``config.json`` and in every checkpoint.

The box losses are stored resolved (both stages' Table 1 numbers as exact fractions, loss form, size target), so a
run directory alone says how it was made even if a preset changes later.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from labkit.detection.backbones import NONE, check_backbone_weights
from labkit.detection.losses import LOG, LOSS_FORMS, SIZE_TARGETS, BoxLosses, from_preset
from labkit.detection.model import MODEL_NAMES
from labkit.detection.runs import DEVICES
from labkit.detection.uncertainty import LAPLACE_KL, LEARNED, UNCERTAINTY_MODES, UncertaintyConfig, initial_log_scale
from labkit.detection.uncertainty import NONE as FIXED_SCALES

__all__ = ["TrainConfig", "read_config"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. Learning rate: SGD with linear warm-up from ``lr·warmup_factor`` over
    ``warmup_iters`` iterations, then ×``lr_gamma`` at each fraction of ``iters`` in ``lr_steps`` (torchvision's
    detection reference recipe, counted in iterations). ``batch_size`` is the global batch (split across DDP ranks)."""

    data: str
    out: str
    model: str = "lab"
    preset: str = "proposed"
    loss_form: str | None = None  # None: each preset stage's own reading (Table 1)
    size_target: str = LOG
    # both stages' losses, stored as BoxLosses.to_dict(); None: from preset/loss_form/size_target (a BoxLosses
    # is accepted too, for custom settings outside Table 1)
    box_losses: Mapping[str, Any] | None = None
    # learned per-box scales (labkit.detection.uncertainty): "none" (the paper's fixed scales) or "learned", with
    # the loss that trains them, an optional blend from the fixed loss over anneal_iters, variance voting, and
    # whether the RPN learns its scales too (uncertainty_rpn)
    uncertainty: str = FIXED_SCALES
    uncertainty_loss: str = LAPLACE_KL
    anneal_iters: int = 0
    var_voting: bool = False
    uncertainty_rpn: bool = False
    iters: int = 1000
    batch_size: int = 8
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    warmup_factor: float = 1e-3
    lr_steps: tuple[float, ...] = (0.7, 0.9)
    lr_gamma: float = 0.1
    image_size: int | None = None
    hflip: float = 0.5
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # CUDA only
    workers: int = 0
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    train_split: str = "train"
    val_split: str | None = "val"
    weights: str | None = None  # a whole-model state dict to start from (replaces every parameter)
    # the backbone's start: "none", "imagenet" (torchvision's weights API, torch hub cache) or a state dict path
    # (labkit.detection.backbones); also sets the pretrained layout (fixed layers), kept on resume and evaluation
    backbone_weights: str = NONE
    evaluate: bool = True
    eval_every: int = 0  # also evaluate on val_split every this many iterations (0: only at the end)
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form notes (e.g. the experiment that made the run)

    def __post_init__(self) -> None:
        for name in ("iters", "batch_size", "checkpoint_every", "keep_checkpoints", "log_every"):
            _check_int(name, getattr(self, name), 1)
        for name in ("warmup_iters", "workers", "seed", "eval_every"):
            _check_int(name, getattr(self, name), 0)
        for name, low, high in (("lr", 0, math.inf), ("momentum", 0, 1), ("weight_decay", 0, math.inf),
                                ("warmup_factor", 0, 1), ("lr_gamma", 0, 1), ("hflip", 0, 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{name} must be a number in [{low}, {high}], got {name}={value!r}")
        steps = tuple(self.lr_steps)
        if any(not isinstance(s, (int, float)) or not 0 < s < 1 for s in steps) or list(steps) != sorted(steps):
            raise ValueError(
                f"lr_steps must be increasing fractions of iters in (0, 1), got lr_steps={self.lr_steps!r}")
        object.__setattr__(self, "lr_steps", steps)
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, got model={self.model!r}")
        object.__setattr__(self, "backbone_weights", check_backbone_weights(self.model, self.backbone_weights))
        if self.loss_form is not None and self.loss_form not in LOSS_FORMS:
            raise ValueError(f"loss_form must be one of {LOSS_FORMS}, got loss_form={self.loss_form!r}")
        if self.size_target not in SIZE_TARGETS:
            raise ValueError(f"size_target must be one of {SIZE_TARGETS}, got size_target={self.size_target!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got device={self.device!r}")
        if self.image_size is not None:
            _check_int("image_size", self.image_size, 32)
        if self.box_losses is None:
            losses = from_preset(self.preset, form=self.loss_form, size_target=self.size_target)
        elif isinstance(self.box_losses, BoxLosses):
            losses = self.box_losses
        else:
            losses = BoxLosses.from_dict(self.box_losses)
        object.__setattr__(self, "box_losses", losses.to_dict())
        if self.uncertainty not in UNCERTAINTY_MODES:
            raise ValueError(f"uncertainty must be one of {UNCERTAINTY_MODES}, got uncertainty={self.uncertainty!r}")
        spec = UncertaintyConfig(self.uncertainty_loss, self.anneal_iters, self.var_voting,
                                 rpn=self.uncertainty_rpn)  # checks the four
        if self.uncertainty_rpn and self.uncertainty != LEARNED:
            raise ValueError("uncertainty_rpn=True needs uncertainty='learned' (the RPN learns its scales beside the "
                             f"detection head's), got uncertainty={self.uncertainty!r}")
        if self.uncertainty == LEARNED:  # the heads' checks (loss form, λ > 0) fail here, before any training
            for name in ("detection", "rpn") if spec.rpn else ("detection",):
                try:
                    initial_log_scale(losses.stage(name), spec.loss)
                except ValueError as exc:
                    raise ValueError(f"box_losses: the {name} stage: {exc}") from None
        object.__setattr__(self, "data", str(self.data))
        object.__setattr__(self, "out", str(self.out))

    @property
    def losses(self) -> BoxLosses:
        return BoxLosses.from_dict(self.box_losses)

    @property
    def uncertainty_config(self) -> UncertaintyConfig | None:
        """What :func:`~labkit.detection.model.build_model` takes as ``uncertainty``: None unless "learned"."""
        if self.uncertainty != LEARNED:
            return None
        return UncertaintyConfig(self.uncertainty_loss, self.anneal_iters, self.var_voting, rpn=self.uncertainty_rpn)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lr_steps"] = list(self.lr_steps)
        out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training-config keys {unknown}; expected some of {sorted(known)}")
        values = dict(data)
        if "lr_steps" in values:
            values["lr_steps"] = tuple(values["lr_steps"])
        return cls(**values)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes``; changing the preset, loss form or size target re-resolves the box losses."""
        if {"preset", "loss_form", "size_target"} & set(changes) and "box_losses" not in changes:
            changes["box_losses"] = None
        return replace(self, **changes)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {name}={value!r}")


def read_config(run_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in ``run_dir/config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"run: no config.json in {run_dir} (expected a run directory written by `train`)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"run: {path} is not valid JSON: {exc}") from None
    return TrainConfig.from_dict(data)
