"""Faster R-CNN box-loss settings (λ, α, σ per stage) written as the knobs of real detection frameworks.

Every framework computes  W · smooth_l1(t − g·t*; β)  per coordinate, where t* is the raw target (eqs. 32, 43), g
the box coder's scaling of it, β the smooth-L1 transition and W a loss weight; smooth_l1(x; β) = H_β(x)/β (eq. 37).
A stage of the paper asks for c·H_α(t − t*/σ) with c = :func:`labkit.interpret.mapping.huber_coefficient` (λ/α for
the implementation, λ for the published reading). Because H_α(r) = (α/β)²·H_β(β·r/α) exactly, any β works:

    g = (β/α)/σ,    W = c·α²/β          (β = α gives the familiar g = 1/σ, W = λ)

with the network's output read in units scaled by β/α (the decoder divides by g, so the decoded box, and hence
the loss as a function of the box, is the same). Frameworks whose β is configurable get β = α by default; torchvision
hard-codes β = 1/9, so its export keeps 1/9 and moves α into the weights.

What the rescaling does not keep: training dynamics. The raw regression output is β/α times what it would be with
β = α, and the loss's gradient with respect to it is α/β times larger (9× for α = 1 on torchvision), so the same
learning rate, weight decay and output-layer initialisation act differently. The optimum as a function of the box is
the same; the path to it is not.

torchvision's own defaults, read the same way (:data:`TORCHVISION_DEFAULTS`): the RPN is (λ, α, σ) = (1, 1/9, 1) —
label noise w_a/9, prediction noise w_a, like the released Faster R-CNN — and the RoI head, with weights
(10, 10, 5, 5) and β = 1/9, is (1, 1/9, 1/10, 1/10, 1/5, 1/5): label noise w_a/90 for the centre and w_a/45 for the
size, prediction noise w_a/10 and w_a/5 — it trusts its labels ten times more than the released code's detection
stage (w_a/10).

Conventions checked against each framework's source (file named in each exporter). All of them sum the loss over
positive boxes and divide by the number of sampled boxes (positives and negatives); that normaliser is the same for
the classification loss, so λ keeps its meaning relative to it and is not changed here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Union

import argparse
import sys

from labkit.interpret.cli import four_values
from labkit.interpret.mapping import huber_coefficient, suggest_stage
from labkit.interpret.presets import Preset, get_preset
from labkit.interpret.settings import (COORDINATES, IMPLEMENTATION, LAPLACE_UPPER, STAGES, StageSettings,
                                       check_choice, exact)

__all__ = [
    "FRAMEWORKS",
    "TORCHVISION_SMOOTH_L1_BETA",
    "TORCHVISION_DEFAULTS",
    "DETECTRON2_L1_THRESHOLD",
    "StageKnobs",
    "FrameworkSettings",
    "stage_knobs",
    "export",
]

FRAMEWORKS = ("torchvision", "detectron2", "mmdetection", "py-faster-rcnn")
#: torchvision/models/detection/rpn.py (compute_loss) and roi_heads.py (fastrcnn_loss) call
#: F.smooth_l1_loss(..., beta=1 / 9, reduction="sum") / N; the β is not a parameter
TORCHVISION_SMOOTH_L1_BETA = Fraction(1, 9)
#: torchvision's stock settings as the paper's numbers: RPN BoxCoder weights (1, 1, 1, 1), RoI heads (10, 10, 5, 5)
#: (faster_rcnn.py), β = 1/9 and loss weight 1 in both stages — read with the implementation's (λ/α)·H_α
TORCHVISION_DEFAULTS = {
    "rpn": StageSettings(1, Fraction(1, 9), 1, 1, 1, 1),
    "detection": StageSettings(1, Fraction(1, 9), Fraction(1, 10), Fraction(1, 10), Fraction(1, 5), Fraction(1, 5)),
}
#: fvcore's smooth_l1_loss, used by detectron2, returns plain |x| when beta < 1e-5
DETECTRON2_L1_THRESHOLD = 1e-5

Settings = Union[str, Preset, StageSettings, Mapping[str, StageSettings]]


@dataclass(frozen=True)
class StageKnobs:
    """A stage's loss as W·smooth_l1(t − g·t*; β), framework-neutral and exact.

    ``beta``: the smooth-L1 β; ``target_weights``: g for (x, y, w, h), the factor the box coder applies to the
    raw targets (torchvision/detectron2 "weights"; mmdetection and py-faster-rcnn divide by 1/g, their "stds");
    ``loss_weight``: W.
    """

    beta: Fraction
    target_weights: tuple[Fraction, Fraction, Fraction, Fraction]
    loss_weight: Fraction

    @property
    def target_stds(self) -> tuple[Fraction, ...]:
        """1/g: what mmdetection's ``target_stds`` and py-faster-rcnn's ``BBOX_NORMALIZE_STDS`` divide by."""
        return tuple(1 / g for g in self.target_weights)


def stage_knobs(stage: StageSettings, smooth_l1_beta=None, form: str = IMPLEMENTATION) -> StageKnobs:
    """The knobs realising ``stage``'s loss (read as ``form``) with smooth-L1 transition ``smooth_l1_beta``
    (default: the stage's α)."""
    if form == LAPLACE_UPPER:
        raise ValueError("form 'laplace_upper' is D_{α/2,1/α}, not a smooth-L1 loss: no framework knob realises it")
    beta = stage.alpha if smooth_l1_beta is None else exact("smooth_l1_beta", smooth_l1_beta)
    c = huber_coefficient(stage, form)
    k = beta / stage.alpha  # H_α(r) = (α/β)²·H_β(β·r/α): the residual is scaled by β/α
    return StageKnobs(beta, tuple(k / s for s in stage.sigmas), c * stage.alpha * stage.alpha / beta)


@dataclass(frozen=True)
class FrameworkSettings:
    """One framework's settings: ``knobs`` maps stage → {knob name: value} (values exact where the framework's
    knob is; Caffe's ``sigma`` is a float), ``snippet`` is ready to paste, ``notes`` the conventions used."""

    framework: str
    knobs: dict[str, dict[str, object]]
    snippet: str
    notes: tuple[str, ...]

    def __str__(self) -> str:
        return self.snippet


# ---------------------------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------------------------
def _f(value: Fraction) -> str:
    """A Fraction as the Python float literal a config wants."""
    return repr(float(value))


def _exact_note(value: Fraction) -> str:
    return "" if value.denominator == 1 else f"  # {value.numerator}/{value.denominator}"


def _vec(values, sep: str = ", ", brackets: str = "()") -> str:
    return brackets[0] + sep.join(_f(v) for v in values) + brackets[1]


def _as_stages(settings: Settings) -> dict[str, StageSettings]:
    if isinstance(settings, str):
        return get_preset(settings).stages
    if isinstance(settings, Preset):
        return settings.stages
    if isinstance(settings, StageSettings):
        raise TypeError("give a stage as a mapping, e.g. {'detection': stage}, so the export knows which knobs to set")
    if isinstance(settings, Mapping):
        if not settings:
            raise ValueError(f"settings is empty; give at least one of the stages {', '.join(STAGES)}")
        for name, stage in settings.items():
            check_choice("stage", name, STAGES)
            if not isinstance(stage, StageSettings):
                raise TypeError(f"settings[{name!r}] must be a StageSettings, got {type(stage).__name__}")
        return {s: settings[s] for s in STAGES if s in settings}
    raise TypeError(f"settings must be a preset name, a Preset or a mapping stage → StageSettings, "
                    f"got {type(settings).__name__}")


# ---------------------------------------------------------------------------------------------------------------
# one exporter per framework
# ---------------------------------------------------------------------------------------------------------------
def _torchvision(knobs: dict[str, StageKnobs]) -> tuple[dict, str, tuple[str, ...]]:
    # checked: torchvision/models/detection/_utils.py encode_boxes (dx = wx·(x* − x_a)/w_a, dw = ww·log(w*/w_a)),
    # rpn.py RegionProposalNetwork (self.box_coder = BoxCoder(weights=(1, 1, 1, 1)), compute_loss with β = 1/9),
    # roi_heads.py (RoIHeads(bbox_reg_weights) → BoxCoder, fastrcnn_loss with β = 1/9), faster_rcnn.py
    # (FasterRCNN(..., bbox_reg_weights=None) defaults to (10, 10, 5, 5))
    out, lines = {}, ["from torchvision.models.detection import fasterrcnn_resnet50_fpn",
                      "from torchvision.models.detection._utils import BoxCoder", ""]
    custom_beta = any(k.beta != TORCHVISION_SMOOTH_L1_BETA for k in knobs.values())
    if "detection" in knobs:
        k = knobs["detection"]
        out["detection"] = {"bbox_reg_weights": k.target_weights, "smooth_l1_beta": k.beta,
                            "loss_box_reg weight": k.loss_weight}
        lines.append(f"model = fasterrcnn_resnet50_fpn(weights=None, bbox_reg_weights={_vec(k.target_weights)})")
    else:
        lines.append("model = fasterrcnn_resnet50_fpn(weights=None)")
    if "rpn" in knobs:
        k = knobs["rpn"]
        out["rpn"] = {"box_coder.weights": k.target_weights, "smooth_l1_beta": k.beta,
                      "loss_rpn_box_reg weight": k.loss_weight}
        lines.append("# the RPN builds BoxCoder((1, 1, 1, 1)) itself; give the instance its own coder")
        lines.append(f"model.rpn.box_coder = BoxCoder(weights={_vec(k.target_weights)})")
    weights = {"rpn": "loss_rpn_box_reg", "detection": "loss_box_reg"}
    entries = ", ".join(f'"{weights[s]}": {_f(k.loss_weight)}' for s, k in knobs.items())
    lines += ["", f"LOSS_WEIGHTS = {{{entries}}}",
              "# in the training loop:",
              "loss = sum(LOSS_WEIGHTS.get(name, 1.0) * value for name, value in model(images, targets).items())"]
    notes = ["torchvision's RPN and RoI losses use F.smooth_l1_loss(beta=1/9, reduction='sum') / (sampled boxes); "
             "α is realised through the box-coder weights and the loss weight, exactly",
             "same loss as a function of the box, but the raw regression output is scaled by (1/9)/α and its gradient "
             "by 9α (9× for α = 1): learning rate, weight decay and initialisation act differently"]
    if custom_beta:
        betas = ", ".join(f"{s}: {k.beta}" for s, k in knobs.items())
        lines.insert(0, f"# NOTE: these knobs assume smooth-L1 β = {betas}; stock torchvision uses β = 1/9, so the "
                        "losses must be replaced by ones taking β")
        notes.append("a β other than 1/9 needs a box loss that takes β; stock torchvision cannot be configured so")
    return out, "\n".join(lines), tuple(notes)


def _detectron2(knobs: dict[str, StageKnobs]) -> tuple[dict, str, tuple[str, ...]]:
    # checked: detectron2/config/defaults.py (MODEL.RPN.SMOOTH_L1_BETA = 0.0, BBOX_REG_WEIGHTS = (1, 1, 1, 1),
    # BBOX_REG_LOSS_WEIGHT = 1.0; ROI_BOX_HEAD: (10, 10, 5, 5), β = 0.0), detectron2/modeling/box_regression.py
    # (Box2BoxTransform.get_deltas: dx = wx·(x* − x_a)/w_a, dw = ww·log(w*/w_a); _dense_box_regression_loss) and
    # fvcore/nn/smooth_l1_loss.py (β < 1e-5 → |x|, else 0.5·x²/β or |x| − 0.5·β)
    section = {"rpn": "MODEL.RPN", "detection": "MODEL.ROI_BOX_HEAD"}
    out, lines = {}, []
    for s, k in knobs.items():
        if float(k.beta) < DETECTRON2_L1_THRESHOLD:
            raise ValueError(f"detectron2 turns smooth-L1 into L1 when SMOOTH_L1_BETA < {DETECTRON2_L1_THRESHOLD}; "
                             f"the {s} stage would need β = {k.beta}. Pass smooth_l1_beta= (e.g. 1) — the weights "
                             "absorb it exactly")
        p = section[s]
        out[s] = {f"{p}.BBOX_REG_LOSS_TYPE": "smooth_l1", f"{p}.SMOOTH_L1_BETA": k.beta,
                  f"{p}.BBOX_REG_WEIGHTS": k.target_weights, f"{p}.BBOX_REG_LOSS_WEIGHT": k.loss_weight}
        lines += [f'cfg.{p}.BBOX_REG_LOSS_TYPE = "smooth_l1"',
                  f"cfg.{p}.SMOOTH_L1_BETA = {_f(k.beta)}{_exact_note(k.beta)}",
                  f"cfg.{p}.BBOX_REG_WEIGHTS = {_vec(k.target_weights)}",
                  f"cfg.{p}.BBOX_REG_LOSS_WEIGHT = {_f(k.loss_weight)}{_exact_note(k.loss_weight)}"]
    notes = ("detectron2's defaults set SMOOTH_L1_BETA = 0, i.e. plain L1 (a label-noise scale of 0 in the paper's "
             "reading)", "the RPN's loc loss is also multiplied by MODEL.RPN.LOSS_WEIGHT (default 1)")
    return out, "\n".join(lines), notes


def _mmdetection(knobs: dict[str, StageKnobs]) -> tuple[dict, str, tuple[str, ...]]:
    # checked: mmdet/models/task_modules/coders/delta_xywh_bbox_coder.py (bbox2delta: deltas.sub_(means).div_(stds),
    # dx = (x* − x_a)/w_a, dw = log(w*/w_a)) and mmdet/models/losses/smooth_l1_loss.py (SmoothL1Loss(beta,
    # reduction, loss_weight): loss_weight · where(|d| < β, 0.5·d²/β, |d| − 0.5·β))
    out, parts = {}, {}
    for s, k in knobs.items():
        out[s] = {"bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": (Fraction(0),) * 4,
                                 "target_stds": k.target_stds},
                  "loss_bbox": {"type": "SmoothL1Loss", "beta": k.beta, "loss_weight": k.loss_weight}}
        parts[s] = (f"bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0, 0.0, 0.0, 0.0], "
                    f"target_stds={_vec(k.target_stds, brackets='[]')}),\n"
                    f"{{i}}loss_bbox=dict(type='SmoothL1Loss', beta={_f(k.beta)}, loss_weight={_f(k.loss_weight)})")
    lines = ["model = dict("]
    if "rpn" in parts:
        lines.append("    rpn_head=dict(\n        " + parts["rpn"].replace("{i}", "        ") + "),")
    if "detection" in parts:
        lines.append("    roi_head=dict(bbox_head=dict(\n        "
                     + parts["detection"].replace("{i}", "        ") + ")),")
    lines.append(")")
    notes = ("mmdetection divides the deltas by target_stds (= σ when β = α), the inverse of torchvision's weights",)
    return out, "\n".join(lines), notes


def _py_faster_rcnn(knobs: dict[str, StageKnobs]) -> tuple[dict, str, tuple[str, ...]]:
    # checked: py-faster-rcnn lib/fast_rcnn/config.py (TRAIN.BBOX_NORMALIZE_STDS = (0.1, 0.1, 0.2, 0.2),
    # RPN_BBOX_INSIDE_WEIGHTS), lib/rpn/anchor_target_layer.py (RPN targets are not normalised; inside weights
    # multiply the difference), lib/rpn/proposal_target_layer.py ((t − means)/stds) and caffe-fast-rcnn's
    # smooth_L1_loss_layer.cu (d = w_in·(t − t*); 0.5·σ²d² if |d| < 1/σ², else |d| − 0.5/σ²: β = 1/σ²)
    out, cfg, proto = {}, ["TRAIN:"], []
    layer = {"rpn": ("rpn_loss_bbox", ("rpn_bbox_pred", "rpn_bbox_targets", "rpn_bbox_inside_weights",
                                       "rpn_bbox_outside_weights")),
             "detection": ("loss_bbox", ("bbox_pred", "bbox_targets", "bbox_inside_weights", "bbox_outside_weights"))}
    for s, k in knobs.items():
        sigma2 = 1 / k.beta
        caffe_sigma = math.sqrt(sigma2)
        out[s] = {"smooth_l1_loss_param.sigma": caffe_sigma, "sigma_squared": sigma2, "loss_weight": k.loss_weight}
        if s == "rpn":  # the RPN's targets are raw; its inside weights scale the difference (t − t*) by g
            out[s]["TRAIN.RPN_BBOX_INSIDE_WEIGHTS"] = k.target_weights
            cfg.append(f"  RPN_BBOX_INSIDE_WEIGHTS: {_vec(k.target_weights, brackets='[]')}")
        else:
            out[s].update({"TRAIN.BBOX_NORMALIZE_TARGETS_PRECOMPUTED": True,
                           "TRAIN.BBOX_NORMALIZE_MEANS": (Fraction(0),) * 4,
                           "TRAIN.BBOX_NORMALIZE_STDS": k.target_stds})
            cfg += ["  BBOX_NORMALIZE_TARGETS_PRECOMPUTED: True", "  BBOX_NORMALIZE_MEANS: [0.0, 0.0, 0.0, 0.0]",
                    f"  BBOX_NORMALIZE_STDS: {_vec(k.target_stds, brackets='[]')}"]
        name, bottoms = layer[s]
        proto.append(f'layer {{\n  name: "{name}"\n  type: "SmoothL1Loss"\n'
                     + "".join(f'  bottom: "{b}"\n' for b in bottoms) + f'  top: "{name}"\n'
                     f"  loss_weight: {_f(k.loss_weight)}\n  smooth_l1_loss_param {{ sigma: {caffe_sigma!r} }}"
                     f"  # sigma² = {sigma2}\n}}")
    snippet = "# experiments/cfgs/*.yml\n" + "\n".join(cfg) + "\n\n# train.prototxt\n" + "\n".join(proto)
    notes = ("Caffe's SmoothL1Loss takes sigma with β = 1/sigma²; sigma is a float when 1/β is not a square",
             "py-faster-rcnn measures boxes with the legacy +1 (w = x2 − x1 + 1)")
    return out, snippet, notes


_EXPORTERS = {"torchvision": _torchvision, "detectron2": _detectron2, "mmdetection": _mmdetection,
              "py-faster-rcnn": _py_faster_rcnn}


def export(settings: Settings, framework: str, *, smooth_l1_beta=None, form: str | None = None) -> FrameworkSettings:
    """The knobs and a ready-to-paste snippet for ``framework`` realising ``settings`` (a preset name, a
    :class:`~labkit.interpret.Preset`, or a mapping stage → :class:`~labkit.interpret.StageSettings`).

    ``form``: how the settings' loss is read; default the preset's own (λ·H_α for "published"), else
    ``"implementation"``.

    ``smooth_l1_beta``: the framework's smooth-L1 β; default α for frameworks where it is a setting, 1/9 for
    torchvision (fixed there). Any β gives the same loss: the weights absorb the difference (see the module doc).
    """
    check_choice("framework", framework, FRAMEWORKS)
    stages = _as_stages(settings)
    if form is None:
        form = get_preset(settings).form if isinstance(settings, str) else getattr(settings, "form", IMPLEMENTATION)
    if smooth_l1_beta is None and framework == "torchvision":
        smooth_l1_beta = TORCHVISION_SMOOTH_L1_BETA
    knobs = {s: stage_knobs(st, smooth_l1_beta, form) for s, st in stages.items()}
    out, snippet, notes = _EXPORTERS[framework](knobs)
    return FrameworkSettings(framework, out, snippet, notes)



# ---------------------------------------------------------------------------------------------------------------
# command line: python -m labkit suggest
# ---------------------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("From the label and prediction noise you assume (fractions of the anchor size), the "
                          "Huber settings λ, α, σ, and the same written for a detection framework.")
    parser.add_argument("--label-noise", nargs="+", required=True, metavar="L",
                        help="scale of the label noise: one value or four (x y w h), e.g. 0.05")
    parser.add_argument("--prediction-noise", nargs="+", required=True, metavar="P",
                        help="scale of the prediction noise: one value or four (x y w h), e.g. 0.2")
    parser.add_argument("--alpha", help="fix the Huber transition α (give this or --sigma)")
    parser.add_argument("--sigma", nargs="+", metavar="S", help="fix the target scaling σ: one value or four")
    parser.add_argument("--stage", choices=STAGES + ("both",), default="both",
                        help="which stage(s) get these settings (default: both)")
    parser.add_argument("--framework", choices=FRAMEWORKS, help="print a ready-to-paste snippet for this framework")
    parser.add_argument("--smooth-l1-beta", help="the framework's smooth-L1 β (default α; 1/9 for torchvision)")


def run(args: argparse.Namespace) -> int:
    try:
        labels = [exact("--label-noise", v) for v in four_values("--label-noise", args.label_noise)]
        predictions = [exact("--prediction-noise", v) for v in four_values("--prediction-noise", args.prediction_noise)]
        alpha = exact("--alpha", args.alpha) if args.alpha is not None else None
        sigma = [exact("--sigma", v) for v in four_values("--sigma", args.sigma)] if args.sigma else None
        stage = suggest_stage(labels, predictions, alpha=alpha, sigma=sigma)
        sigmas = ", ".join(f"σ_{c} = {s}" for c, s in zip(COORDINATES, stage.sigmas))
        print(f"λ = {stage.lam}, α = {stage.alpha}, {sigmas}")
        if args.framework:
            stages = STAGES if args.stage == "both" else (args.stage,)
            settings = export({s: stage for s in stages}, args.framework, smooth_l1_beta=args.smooth_l1_beta)
            print(f"\n# {args.framework}, stage(s): {', '.join(stages)}")
            print(settings.snippet)
        return 0
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
