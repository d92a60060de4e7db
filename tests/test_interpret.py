"""labkit.interpret (settings, presets, mapping, tables, exports, calculator): Tables 1–2 against the paper's printed cells, the inverse calculator, and
each framework's exported knobs plugged into that framework's own loss code (torchvision's real functions; the
others transcribed from their sources) against the paper's loss (λ/α)·H_α (eq. 42) or λ·H_α (eq. 36)."""
from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn
from hypothesis import given, settings, strategies as st

from labkit import interpret
from labkit.interpret import cli as interpret_cli
from labkit.interpret import exports as frameworks
from labkit.losses import huber, laplace_kl_loss

# ---------------------------------------------------------------------------------------------------------------
# the paper's tables, typed from the paper (columns: published rpn/det, implemented rpn/det, proposed rpn/det)
# ---------------------------------------------------------------------------------------------------------------
PAPER_TABLE_1 = {
    "λ": (10, 10, 1, 1, F(1, 4), F(1, 2)),
    "α": (1, 1, F(1, 9), 1, 1, 1),
    "σ_x": (1, 1, 1, F(1, 10), F(1, 20), F(1, 20)),
    "σ_y": (1, 1, 1, F(1, 10), F(1, 20), F(1, 20)),
    "σ_w": (1, 1, 1, F(1, 5), F(1, 10), F(1, 10)),
    "σ_h": (1, 1, 1, F(1, 5), F(1, 10), F(1, 10)),
}
# in anchor widths (x, w rows) or heights (y, h rows)
PAPER_TABLE_2 = {
    "x*": (1, 1, F(1, 9), F(1, 10), F(1, 20), F(1, 20)),
    "y*": (1, 1, F(1, 9), F(1, 10), F(1, 20), F(1, 20)),
    "w*": (1, 1, F(1, 9), F(1, 5), F(1, 10), F(1, 10)),
    "h*": (1, 1, F(1, 9), F(1, 5), F(1, 10), F(1, 10)),
    "x̃": (F(1, 10), F(1, 10), 1, F(1, 10), F(1, 5), F(1, 10)),
    "ỹ": (F(1, 10), F(1, 10), 1, F(1, 10), F(1, 5), F(1, 10)),
    "w̃": (F(1, 10), F(1, 10), 1, F(1, 5), F(2, 5), F(1, 5)),
    "h̃": (F(1, 10), F(1, 10), 1, F(1, 5), F(2, 5), F(1, 5)),
}
COLUMNS = [(p, s) for p in ("published", "implemented", "proposed") for s in ("rpn", "detection")]


def test_table1_is_the_papers():
    table = interpret.table1()
    assert table.columns == tuple(COLUMNS)
    assert {label: cells for label, cells in table.rows} == PAPER_TABLE_1


def test_table2_all_48_cells_are_the_papers():
    table = interpret.table2()
    assert table.columns == tuple(COLUMNS)
    got = {label: cells for label, cells in table.rows}
    assert got.keys() == PAPER_TABLE_2.keys()
    n = 0
    for row, cells in PAPER_TABLE_2.items():
        for (preset, stage), want in zip(COLUMNS, cells):
            assert table.cell(row, preset, stage) == want, (row, preset, stage)
            assert isinstance(table.cell(row, preset, stage), F)
            n += 1
    assert n == 48


def test_table2_prints_like_the_paper():
    assert "2w_a/5" in interpret.table2().to_text()  # the terminal keeps plain subscripts
    # Markdown and HTML set the subscripts (tests/test_notation.py: no raw notation where it renders)
    sub = interpret.table2().to_markdown().replace("<sub>a</sub>", "_a")
    assert "| w̃ | w_a/10 | w_a/10 | w_a | w_a/5 | 2w_a/5 | w_a/5 |" in sub
    assert "| y* | h_a | h_a | h_a/9 | h_a/10 | h_a/20 | h_a/20 |" in sub
    assert "<td>2h<sub>a</sub>/5</td>" in interpret.table2().to_html()
    assert "<th>σ<sub>x</sub></th>" in interpret.table1().to_html()


def test_presets_are_frozen_exact_and_read_in_the_right_form():
    stage = interpret.PRESETS["implemented"].rpn
    with pytest.raises(AttributeError):
        stage.lam = 2
    assert all(isinstance(v, F) for v in (stage.lam, stage.alpha, *stage.sigmas))
    assert {p.form for p in interpret.PRESETS.values()} == {"paper", "implementation"}
    assert interpret.PRESETS["published"].form == "paper"


def test_uncertainty_scales_examples_of_section_5():
    # eq. 36: λH_1 with λ = 10 reads as D_{w_a, w_a/10}; eq. 42: RPN (1, 1/9, 1) → (1/9, 1), detection (1, 1, 1/10)
    assert interpret.uncertainty_scales(10, 1, 1, form="paper") == (1, F(1, 10))
    assert interpret.uncertainty_scales(1, F(1, 9), 1) == (F(1, 9), 1)
    assert interpret.uncertainty_scales(1, 1, "1/10") == (F(1, 10), F(1, 10))
    assert interpret.uncertainty_scales(1, 1, 0.1) == (F(1, 10), F(1, 10))  # a float is read as its decimal


# ---------------------------------------------------------------------------------------------------------------
# the inverse
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset, stage", COLUMNS)
@pytest.mark.parametrize("fix", ["alpha", "sigma"])
def test_presets_to_scales_to_suggest_gives_the_presets_back(preset, stage, fix):
    settings_, form = interpret.PRESETS[preset].stage(stage), interpret.PRESETS[preset].form
    labels, predictions = interpret.stage_scales(settings_, form)
    given_ = {"alpha": settings_.alpha} if fix == "alpha" else {"sigma": settings_.sigmas}
    assert interpret.suggest_stage(labels, predictions, form=form, **given_) == settings_


def test_suggest_by_hand():
    # 5 % label noise, 20 % prediction noise, α = 1: σ = 0.05 / 1, λ = σ / 0.2 = 1/4 (eq. 42 solved by hand)
    assert interpret.suggest(0.05, 0.2, alpha=1) == interpret.Suggestion(F(1, 4), F(1), F(1, 20))
    # keep σ = 1 (no target scaling): α = 0.05, λ = 5
    assert interpret.suggest("0.05", "0.2", sigma=1) == interpret.Suggestion(F(5), F(1, 20), F(1))


positive_rationals = st.builds(F, st.integers(1, 400), st.integers(1, 400))


@settings(max_examples=40, deadline=None)
@given(lam=positive_rationals, alpha=positive_rationals, sigma=positive_rationals,
       form=st.sampled_from(interpret.FORMS), fix=st.sampled_from(["alpha", "sigma"]))
def test_suggest_inverts_the_mapping(lam, alpha, sigma, form, fix):
    label, prediction = interpret.uncertainty_scales(lam, alpha, sigma, form)
    got = interpret.suggest(label, prediction, form=form, **({"alpha": alpha} if fix == "alpha" else {"sigma": sigma}))
    assert got == interpret.Suggestion(lam, alpha, sigma)


@pytest.mark.parametrize("preset", interpret.PRESET_NAMES)
def test_plain_mapping_equals_the_sympy_derivation_for_every_preset(preset):
    """The closed forms of labkit.interpret.mapping against labkit.symbolic.detector, which derives eqs. 36, 42,
    52–53 from the residuals and the scaling laws (forward for each stage; the inverse by sympy.solve)."""
    import sympy

    from labkit.symbolic import detector

    p = interpret.PRESETS[preset]
    label_e, pred_e = detector.uncertainty_scale_exprs(p.form)
    L, P = sympy.symbols("L P", positive=True)
    for stage in p.stages.values():
        for sigma in stage.sigmas:
            want = detector.uncertainty_scales(stage.lam, stage.alpha, sigma, form=p.form)
            assert interpret.uncertainty_scales(stage.lam, stage.alpha, sigma, p.form) == want
            label, pred = want
            for fixed, unknowns in ((detector.alpha, [detector.lam, detector.sigma]),
                                    (detector.sigma, [detector.lam, detector.alpha])):
                value = stage.alpha if fixed is detector.alpha else sigma
                (sol,) = sympy.solve([label_e - L, pred_e - P], unknowns, dict=True)
                subs = {L: sympy.Rational(str(label)), P: sympy.Rational(str(pred)), fixed: sympy.Rational(str(value))}
                got = interpret.suggest(label, pred, form=p.form, **{fixed.name: value})
                assert (got.lam, got.alpha, got.sigma) == tuple(
                    F(str(sympy.nsimplify(sol.get(s, s).subs(subs)))) for s in (detector.lam, detector.alpha, detector.sigma))


@settings(max_examples=30, deadline=None)
@given(lam=positive_rationals, alpha=positive_rationals, sigma=positive_rationals,
       d=st.floats(-50, 50, allow_nan=False))
def test_laplace_upper_scales_read_the_loss_exactly(lam, alpha, sigma, d):
    """(λ/α)·D_{α/2,1/α}(d/σ) = D_{label, prediction}(d) with the laplace_upper scales (eqs. 27–31), evaluated by
    labkit.losses.laplace_kl_loss (anchor size 1)."""
    label, pred = interpret.uncertainty_scales(lam, alpha, sigma, "laplace_upper")
    a, s = float(alpha), float(sigma)
    loss = float(lam / alpha) * laplace_kl_loss(d / s, a / 2, 1 / a)
    assert loss == pytest.approx(laplace_kl_loss(d, float(label), float(pred)), rel=1e-9, abs=1e-12)


def test_stage_settings_one_number_rule_and_round_trip():
    stage = interpret.StageSettings(0, "1/9", 0.1, F(1, 10), "0.2", 1)
    assert stage.lam == 0 and stage.sigma_x == F(1, 10) and stage.sigma_w == F(1, 5)  # floats by their decimal
    assert interpret.StageSettings.from_dict(stage.to_dict()) == stage
    with pytest.raises(ValueError, match="this stage has λ = 0"):
        interpret.stage_scales(stage)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        interpret.StageSettings(1, 0, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"missing keys \['sigma_h'\]"):
        interpret.StageSettings.from_dict({k: v for k, v in stage.to_dict().items() if k != "sigma_h"})


def test_a_table_4_run_reads_back_through_interpret():
    from labkit.detection.losses import from_preset

    losses = from_preset("implemented", form="laplace_upper")
    labels, predictions = interpret.stage_scales(losses.rpn.settings, losses.rpn.form)
    assert labels == (F(1, 18),) * 4 and predictions == (1,) * 4  # D_{α/2,1/α}: half the label scale of H_α


# ---------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------
def test_unknown_preset_and_framework_list_the_valid_names():
    with pytest.raises(ValueError, match="published, implemented, proposed"):
        interpret.get_preset("paper")
    with pytest.raises(ValueError, match="torchvision, detectron2, mmdetection, py-faster-rcnn"):
        frameworks.export("proposed", "yolo")
    with pytest.raises(ValueError, match="published, implemented, proposed"):
        frameworks.export("nonsense", "detectron2")


@pytest.mark.parametrize("bad", [0, -0.1, math.inf, math.nan, "abc"])
def test_bad_scales_name_the_argument(bad):
    with pytest.raises(ValueError, match="label_scale"):
        interpret.suggest(bad, 0.2, alpha=1)
    with pytest.raises(ValueError, match="prediction_scale"):
        interpret.suggest(0.05, bad, alpha=1)


def test_alpha_and_sigma_exactly_one():
    with pytest.raises(ValueError, match="exactly one of alpha= or sigma=.*neither"):
        interpret.suggest(0.05, 0.2)
    with pytest.raises(ValueError, match="exactly one of alpha= or sigma=.*both"):
        interpret.suggest(0.05, 0.2, alpha=1, sigma=1)
    with pytest.raises(ValueError, match="exactly one of alpha= or sigma="):
        interpret.suggest_stage(0.05, 0.2)


def test_a_stage_cannot_mix_label_to_prediction_ratios():
    # x asks λα = 1/4, h asks 1/5: one λ and one α cannot do both
    with pytest.raises(ValueError, match="h: 1/5"):
        interpret.suggest_stage([0.05, 0.05, 0.1, 0.1], [0.2, 0.2, 0.4, 0.5], alpha=1)


def test_detectron2_refuses_a_beta_it_would_turn_into_l1():
    stage = interpret.StageSettings(1, F(1, 10 ** 6), 1, 1, 1, 1)
    with pytest.raises(ValueError, match="SMOOTH_L1_BETA"):
        frameworks.export({"rpn": stage}, "detectron2")
    assert frameworks.export({"rpn": stage}, "detectron2", smooth_l1_beta=1).knobs["rpn"]["MODEL.RPN.SMOOTH_L1_BETA"] == 1


# ---------------------------------------------------------------------------------------------------------------
# exports: each framework's own loss on random boxes equals the paper's loss
# ---------------------------------------------------------------------------------------------------------------
def _random_boxes(n: int = 64, seed: int = 0):
    """Anchors, ground truths and predictions as centre/size tensors (float64), sizes 4–300 px, residuals spanning
    both sides of every α in Table 1."""
    g = torch.Generator().manual_seed(seed)
    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)
    anchor = torch.cat([rand(n, 2) * 500, 4 + rand(n, 2) * 296], 1)
    def near(box, spread):
        ctr = box[:, :2] + (rand(n, 2) - 0.5) * spread * box[:, 2:]
        size = box[:, 2:] * torch.exp((rand(n, 2) - 0.5) * spread)
        return torch.cat([ctr, size], 1)
    return anchor, near(anchor, 1.0), near(anchor, 1.0)


def _corners(box, plus_one: bool = False):
    """Centre/size → (x1, y1, x2, y2); py-faster-rcnn measures w = x2 − x1 + 1."""
    half = box[:, 2:] / 2
    x1y1 = box[:, :2] - half
    x2y2 = box[:, :2] + half - (1.0 if plus_one else 0.0)
    return torch.cat([x1y1, x2y2], 1)


def _paper_loss(stage, anchor, truth, pred, form="implementation"):
    """Σ c·H_α(r) with the residuals of eqs. 41 and 47 and c = λ/α (eq. 42) or λ (eq. 36)."""
    c = stage.lam / stage.alpha if form == "implementation" else stage.lam
    sig = torch.tensor([float(s) for s in stage.sigmas], dtype=torch.float64)
    r_ctr = (pred[:, :2] - truth[:, :2]) / (sig[:2] * anchor[:, 2:])
    r_size = (torch.log(pred[:, 2:]) - torch.log(truth[:, 2:])) / sig[2:]
    return float(c) * huber(torch.cat([r_ctr, r_size], 1), float(stage.alpha)).sum().item()


def _floats(values):
    return tuple(float(v) for v in values)


def _torchvision_loss(knobs_, stage_name, anchor, truth, pred):
    from torchvision.models.detection import _utils as det_utils
    from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
    from torchvision.models.detection.rpn import RegionProposalNetwork

    a, t, p = _corners(anchor), _corners(truth), _corners(pred)
    n = a.shape[0]
    if stage_name == "rpn":
        rpn = RegionProposalNetwork(None, None, 0.7, 0.3, batch_size_per_image=n, positive_fraction=1.0,
                                    pre_nms_top_n={"training": 1}, post_nms_top_n={"training": 1}, nms_thresh=0.7)
        rpn.box_coder = det_utils.BoxCoder(weights=_floats(knobs_["box_coder.weights"]))
        deltas = rpn.box_coder.encode_single(p, a)  # the output that decodes to the predicted boxes
        targets = rpn.box_coder.encode_single(t, a)
        labels = [torch.ones(n, dtype=torch.float64)]  # all positive, all sampled: the loss is sum / n
        _, box_loss = rpn.compute_loss(torch.zeros(n, dtype=torch.float64), deltas, labels, [targets])
        return float(knobs_["loss_rpn_box_reg weight"]) * box_loss.item() * n
    heads = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, _floats(knobs_["bbox_reg_weights"]), 0.05, 0.5, 100)
    deltas = heads.box_coder.encode_single(p, a)
    targets = heads.box_coder.encode_single(t, a)
    box_regression = torch.cat([torch.zeros_like(deltas), deltas], 1)  # class 0 (background), class 1
    _, box_loss = fastrcnn_loss(torch.zeros(n, 2, dtype=torch.float64), box_regression,
                                [torch.ones(n, dtype=torch.int64)], [targets])
    return float(knobs_["loss_box_reg weight"]) * box_loss.item() * n


def _fvcore_smooth_l1(x, target, beta):
    # fvcore/nn/smooth_l1_loss.py, as detectron2 calls it
    n = torch.abs(x - target)
    if beta < 1e-5:
        return n.sum()
    return torch.where(n < beta, 0.5 * n ** 2 / beta, n - 0.5 * beta).sum()


def _detectron2_loss(knobs_, stage_name, anchor, truth, pred):
    prefix = "MODEL.RPN" if stage_name == "rpn" else "MODEL.ROI_BOX_HEAD"
    wx, wy, ww, wh = _floats(knobs_[f"{prefix}.BBOX_REG_WEIGHTS"])

    def get_deltas(src, dst):  # detectron2/modeling/box_regression.py Box2BoxTransform.get_deltas
        s, d = _corners(src), _corners(dst)
        sw, sh = s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]
        sx, sy = s[:, 0] + 0.5 * sw, s[:, 1] + 0.5 * sh
        dw_, dh_ = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
        dx_, dy_ = d[:, 0] + 0.5 * dw_, d[:, 1] + 0.5 * dh_
        return torch.stack([wx * (dx_ - sx) / sw, wy * (dy_ - sy) / sh, ww * torch.log(dw_ / sw),
                            wh * torch.log(dh_ / sh)], 1)

    beta = float(knobs_[f"{prefix}.SMOOTH_L1_BETA"])
    loss = _fvcore_smooth_l1(get_deltas(anchor, pred), get_deltas(anchor, truth), beta)
    return float(knobs_[f"{prefix}.BBOX_REG_LOSS_WEIGHT"]) * loss.item()


def _mmdet_loss(knobs_, stage_name, anchor, truth, pred):
    coder, loss_cfg = knobs_["bbox_coder"], knobs_["loss_bbox"]
    means = torch.tensor(_floats(coder["target_means"]), dtype=torch.float64)
    stds = torch.tensor(_floats(coder["target_stds"]), dtype=torch.float64)

    def bbox2delta(proposals, gt):  # mmdet/models/task_modules/coders/delta_xywh_bbox_coder.py
        p, g = _corners(proposals), _corners(gt)
        px, py = (p[:, 0] + p[:, 2]) * 0.5, (p[:, 1] + p[:, 3]) * 0.5
        pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
        gx, gy = (g[:, 0] + g[:, 2]) * 0.5, (g[:, 1] + g[:, 3]) * 0.5
        gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
        deltas = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], -1)
        return (deltas - means) / stds

    beta = float(loss_cfg["beta"])
    diff = torch.abs(bbox2delta(anchor, pred) - bbox2delta(anchor, truth))  # mmdet/models/losses/smooth_l1_loss.py
    loss = torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    return float(loss_cfg["loss_weight"]) * loss.sum().item()


def _py_faster_rcnn_loss(knobs_, stage_name, anchor, truth, pred):
    def bbox_transform(ex, gt):  # lib/fast_rcnn/bbox_transform.py (legacy +1 widths)
        e, g = _corners(ex, plus_one=True), _corners(gt, plus_one=True)
        ew, eh = e[:, 2] - e[:, 0] + 1.0, e[:, 3] - e[:, 1] + 1.0
        ex_, ey_ = e[:, 0] + 0.5 * ew, e[:, 1] + 0.5 * eh
        gw, gh = g[:, 2] - g[:, 0] + 1.0, g[:, 3] - g[:, 1] + 1.0
        gx_, gy_ = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
        return torch.stack([(gx_ - ex_) / ew, (gy_ - ey_) / eh, torch.log(gw / ew), torch.log(gh / eh)], 1)

    raw_pred, raw_target = bbox_transform(anchor, pred), bbox_transform(anchor, truth)
    if stage_name == "rpn":  # anchor_target_layer.py: raw targets, inside weights on the difference
        inside = torch.tensor(_floats(knobs_["TRAIN.RPN_BBOX_INSIDE_WEIGHTS"]), dtype=torch.float64)
        net_out, target = raw_pred, raw_target
    else:  # proposal_target_layer.py: (t − means) / stds; the net predicts normalised deltas
        means = torch.tensor(_floats(knobs_["TRAIN.BBOX_NORMALIZE_MEANS"]), dtype=torch.float64)
        stds = torch.tensor(_floats(knobs_["TRAIN.BBOX_NORMALIZE_STDS"]), dtype=torch.float64)
        inside = torch.ones(4, dtype=torch.float64)
        net_out, target = (raw_pred - means) / stds, (raw_target - means) / stds
    sigma2 = knobs_["smooth_l1_loss_param.sigma"] ** 2  # caffe smooth_L1_loss_layer: d = w_in·(b0 − b1)
    d = inside * (net_out - target)
    loss = torch.where(d.abs() < 1.0 / sigma2, 0.5 * d * d * sigma2, d.abs() - 0.5 / sigma2)
    return float(knobs_["loss_weight"]) * loss.sum().item()


FRAMEWORK_LOSS = {"torchvision": _torchvision_loss, "detectron2": _detectron2_loss, "mmdetection": _mmdet_loss,
                  "py-faster-rcnn": _py_faster_rcnn_loss}


@pytest.mark.parametrize("framework", frameworks.FRAMEWORKS)
@pytest.mark.parametrize("preset", interpret.PRESET_NAMES)
def test_exported_knobs_in_the_frameworks_loss_equal_the_papers_loss(framework, preset):
    anchor, truth, pred = _random_boxes(seed=hash((framework, preset)) % 1000)
    exported = frameworks.export(preset, framework)
    for stage_name, stage in interpret.PRESETS[preset].stages.items():
        want = _paper_loss(stage, anchor, truth, pred, interpret.PRESETS[preset].form)
        got = FRAMEWORK_LOSS[framework](exported.knobs[stage_name], stage_name, anchor, truth, pred)
        assert got == pytest.approx(want, rel=1e-10), (stage_name, got, want)


@pytest.mark.parametrize("framework", ["detectron2", "mmdetection", "py-faster-rcnn"])
@pytest.mark.parametrize("beta", [F(1, 9), F(1, 4), 2])
def test_any_smooth_l1_beta_gives_the_same_loss(framework, beta):
    anchor, truth, pred = _random_boxes(seed=7)
    stage = interpret.suggest_stage(0.05, 0.2, alpha="1/3")
    exported = frameworks.export({"rpn": stage, "detection": stage}, framework, smooth_l1_beta=beta)
    want = _paper_loss(stage, anchor, truth, pred)
    for stage_name in ("rpn", "detection"):
        got = FRAMEWORK_LOSS[framework](exported.knobs[stage_name], stage_name, anchor, truth, pred)
        assert got == pytest.approx(want, rel=1e-10)


def test_torchvision_export_keeps_its_fixed_beta_and_defaults_read_back():
    # stock torchvision RoI heads (weights 10, 10, 5, 5, β = 1/9, weight 1) are α = 1/9, σ = (1/10, 1/10, 1/5, 1/5):
    # exporting that stage must give the stock knobs back
    stage = interpret.StageSettings(1, F(1, 9), F(1, 10), F(1, 10), F(1, 5), F(1, 5))
    knobs_ = frameworks.export({"detection": stage}, "torchvision").knobs["detection"]
    assert knobs_ == {"bbox_reg_weights": (10, 10, 5, 5), "smooth_l1_beta": F(1, 9), "loss_box_reg weight": 1}


def test_snippets_carry_the_knobs():
    snippet = frameworks.export("implemented", "detectron2").snippet
    assert "cfg.MODEL.RPN.SMOOTH_L1_BETA = 0.1111111111111111  # 1/9" in snippet
    assert "cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)" in snippet
    assert "sigma: 3.0" in frameworks.export("implemented", "py-faster-rcnn").snippet
    assert "target_stds=[0.1, 0.1, 0.2, 0.2]" in frameworks.export("implemented", "mmdetection").snippet
    code = frameworks.export("proposed", "torchvision").snippet
    compile(code, "<snippet>", "exec")  # the torchvision snippet is valid Python


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------
def _cli(module, argv):
    """Run one command through its own parser (``main`` would import every command's module)."""
    import argparse

    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_cli_commands_are_registered():
    from labkit.__main__ import COMMANDS

    assert COMMANDS["interpret"] == "labkit.interpret.cli" and COMMANDS["suggest"] == "labkit.interpret.exports"


def test_cli_interpret_prints_the_presets_columns(capsys):
    assert _cli(interpret_cli, ["--preset", "proposed"]) == 0
    out = capsys.readouterr().out
    assert "proposed/rpn" in out and "implemented" not in out
    assert "2w_a/5" in out and "w_a/20" in out


def test_cli_suggest_prints_the_snippet(capsys):
    argv = "--label-noise 0.05 --prediction-noise 0.2 --alpha 1 --framework detectron2".split()
    assert _cli(frameworks, argv) == 0
    out = capsys.readouterr().out
    assert "λ = 1/4, α = 1" in out
    assert "cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (20.0, 20.0, 20.0, 20.0)" in out
    assert "cfg.MODEL.RPN.BBOX_REG_LOSS_WEIGHT = 0.25" in out


def test_cli_errors_name_the_argument(capsys):
    assert _cli(frameworks, "--label-noise -1 --prediction-noise 0.2 --alpha 1".split()) == 2
    assert "--label-noise" in capsys.readouterr().err
    assert _cli(frameworks, "--label-noise 0.05 --prediction-noise 0.2".split()) == 2
    assert "alpha= or sigma=" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli(frameworks, "--label-noise 0.05 --prediction-noise 0.2 --alpha 1 --framework yolo".split())
    assert "detectron2" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# calculator widget, density plot, notebook 04
# ---------------------------------------------------------------------------------------------------------------
def test_calculator_slider_to_snippet():
    from labkit.interpret.calculator import calculator

    calc = calculator("proposed", "detectron2")
    assert "cfg.MODEL.RPN.BBOX_REG_WEIGHTS = (20.0, 20.0, 10.0, 10.0)" in calc.output.value
    # 10 % label noise on the RPN's x with the ratio linked (1/4): σ_x = 1/10, prediction follows to 40 %
    calc.sliders["rpn", "label", "x"].value = 10.0
    assert calc.sliders["rpn", "prediction", "x"].value == 40.0
    assert "cfg.MODEL.RPN.BBOX_REG_WEIGHTS = (10.0, 20.0, 10.0, 10.0)" in calc.output.value
    # halving the detection stage's ratio halves its λ (σ = label/α unchanged)
    calc.sliders["detection", "prediction", "y"].value = 40.0
    assert calc.sliders["detection", "prediction", "x"].value == 40.0
    calc.framework.value = "labkit"
    assert "detection: λ = 1/8, α = 1" in calc.output.value
    assert calc.image.value[:4] == b"\x89PNG"
    # unlinked, a ratio no single λ can give is reported, not silently fixed
    calc.linked.value = False
    calc.sliders["rpn", "prediction", "h"].value = 33.0
    assert "single lam" in calc.output.value and "h: 10/33" in calc.output.value


def test_noise_plot_shows_both_noises_around_the_anchor():
    import scipy.stats
    from matplotlib.patches import Rectangle

    from labkit.interpret.calculator import SAMPLED_BOXES, plot_implied_densities, sampled_boxes

    labels, predictions = [0.05, 0.05, 0.1, 0.1], [0.2, 0.2, 0.4, 0.4]
    fig = plot_implied_densities(labels, predictions, anchor=(1.0, 0.5))
    boxes, centre, size = fig.axes[:3]
    # the anchor and SAMPLED_BOXES boxes of each noise, drawn where sampled_boxes puts them
    rects = [p for p in boxes.patches if isinstance(p, Rectangle)]
    assert len(rects) == 2 * SAMPLED_BOXES + 1
    for rect, (cx, cy, w, h) in zip(rects, sampled_boxes(labels, (1.0, 0.5))):
        assert rect.get_x() == pytest.approx(cx - w / 2) and rect.get_width() == pytest.approx(w)
    # every kind of noise in the (figure) legend, with its scales
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(texts) == 3 and "x 5 %, w 10 %" in texts[0] and "x 20 %, w 40 %" in texts[1] and "anchor" in texts[2]
    # P(|error| ≤ d) of a Laplace scale, against scipy; each curve reaches at least 95 % (none drawn flat)
    for ax, (lab, pred) in ((centre, (0.05, 0.2)), (size, (0.1, 0.4))):
        curves = ax.get_lines()
        for line, b in zip([c for c in curves if c.get_linestyle() != ":"], (lab, pred)):
            d, p = line.get_data()
            np.testing.assert_allclose(p, scipy.stats.laplace.cdf(d, scale=b) * 2 - 1, atol=1e-12)
            assert p.max() >= 0.95
    # the picture fits its canvas: no legend or label outside the figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    bbox = fig.bbox
    for artist in [*fig.legends, *[a.xaxis.label for a in fig.axes], *[a.yaxis.label for a in fig.axes]]:
        box = artist.get_window_extent(renderer)
        assert bbox.x0 - 1 <= box.x0 and box.x1 <= bbox.x1 + 1 and bbox.y0 - 1 <= box.y0 and box.y1 <= bbox.y1 + 1
    from matplotlib.figure import Figure

    outer = Figure()
    part = outer.subfigures(1, 2)[0]
    assert plot_implied_densities(labels, predictions, fig=part) is part and len(outer.axes) == 3  # drawn where told
    with pytest.raises(ValueError, match="prediction_scales"):
        plot_implied_densities([0.05] * 4, [0.2, 0.2, -1, 0.2])


def test_notebook_04_runs_in_smoke_mode():
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    nb = nbformat.read(notebooks / "04_interpreting_faster_rcnn.ipynb", as_version=4)
    assert nb.metadata.kernelspec == {"name": "python3", "display_name": "Python 3 (labkit)", "language": "python"}
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert "parameters" in nb.cells[code[0]].metadata.get("tags", [])
    for i in code:
        assert not nb.cells[i].outputs and nb.cells[i].execution_count is None
        assert "sys.path" not in nb.cells[i].source
    nb.cells.insert(code[0] + 1, nbformat.v4.new_code_cell("SMOKE = True"))  # what papermill does
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(notebooks)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "2w<sub>a</sub>/5" in html  # Table 2 rendered
    text = "".join(o.get("text", "") for o in outputs)
    assert "cfg.MODEL.RPN.SMOOTH_L1_BETA" in text


def test_torchvision_defaults_are_torchvisions_and_read_as_label_noise_of_a_ninetieth():
    """TORCHVISION_DEFAULTS against a stock torchvision Faster R-CNN's own box coders, and its reading (eq. 42)."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    stock = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2)
    exported = frameworks.export(frameworks.TORCHVISION_DEFAULTS, "torchvision").knobs
    assert tuple(exported["detection"]["bbox_reg_weights"]) == tuple(stock.roi_heads.box_coder.weights)
    assert tuple(exported["rpn"]["box_coder.weights"]) == tuple(stock.rpn.box_coder.weights)
    assert exported["rpn"]["loss_rpn_box_reg weight"] == exported["detection"]["loss_box_reg weight"] == 1
    labels, predictions = interpret.stage_scales(frameworks.TORCHVISION_DEFAULTS["detection"])
    assert labels == (F(1, 90), F(1, 90), F(1, 45), F(1, 45)) and predictions == (F(1, 10), F(1, 10), F(1, 5), F(1, 5))
    notes = " ".join(frameworks.export("proposed", "torchvision").notes)
    assert "gradient" in notes and "9×" in notes


def test_stage_settings_describe_themselves_in_decimals():
    s = interpret.StageSettings("4141/10000", 1, "1/20", "1/20", "1/10", "1/9")
    assert s.describe() == "λ = 0.4141, α = 1, σ = (0.05, 0.05, 0.1, 0.1111)"
    assert s.describe(2) == "λ = 0.41, α = 1, σ = (0.05, 0.05, 0.1, 0.11)"
    with pytest.raises(ValueError, match="digits must be an int"):
        s.describe(0)
