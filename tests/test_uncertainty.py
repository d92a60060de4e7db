"""Learned per-box uncertainty (issue 17): the losses against torch.distributions and eqs. 18–21 written out here,
the head's start against the presets, scales through torchvision's postprocessing (its own postprocess_detections as
the reference for boxes, the decoder's autograd Jacobian for the pixel scales), variance voting and the calibration
metrics by hand, the implied fixed settings, and a smoke run end to end."""
from __future__ import annotations

import json
import math
from fractions import Fraction as F

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch.distributions import Laplace, Normal, kl_divergence
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from labkit.detection import calibration as cal
from labkit.detection.config import TrainConfig
from labkit.detection.losses import BoxLossConfig, BoxLosses
from labkit.detection.model import LearnedScaleRPN, PaperRoIHeads, PaperRPN, build_model
from labkit.detection.uncertainty import (GAUSSIAN_KL_LOSS, LAPLACE_KL, LAPLACE_NLL, LOG_SCALE_RANGE,
                                          LearnedScaleRoIHeads, ScalePredictor, ScaleRescalingTransform, ScaleRPNHead,
                                          UncertaintyConfig, initial_log_scale, label_scale, uncertainty_loss,
                                          variance_voting)
from labkit.interpret import PRESETS, StageSettings
from labkit.interpret.exports import export
from labkit.interpret.learned import implied_settings, implied_stage

D64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def stage(form="implementation", size_target="log", lam=F(1, 2), alpha=F(1, 3),
          sigmas=(F(1, 20), F(1, 10), F(1, 8), F(1, 5))):
    return BoxLossConfig(StageSettings(lam, alpha, *sigmas), form=form, size_target=size_target)


def heads(config=None, **uncertainty):
    return LearnedScaleRoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, score_thresh=0.05, nms_thresh=0.5,
                                detections_per_img=100, box_loss=config or stage(),
                                uncertainty=UncertaintyConfig(**uncertainty))


# ---------------------------------------------------------------------------------------------------------------
# item 2: the losses
# ---------------------------------------------------------------------------------------------------------------
def test_laplace_kl_is_torchs_kl_of_two_laplace_distributions():
    target = torch.randn(200, dtype=D64, generator=_gen(0))
    pred = torch.randn(200, dtype=D64, generator=_gen(1)) * 3
    log_b = torch.empty(200, dtype=D64).uniform_(-3, 3, generator=_gen(2))
    for a in (1e-3, 0.3, 1.0, 7.0):
        got = uncertainty_loss(pred - target, log_b, LAPLACE_KL, a, 1.0)
        torch.testing.assert_close(got, kl_divergence(Laplace(target, torch.full_like(target, a)),
                                                      Laplace(pred, log_b.exp())), rtol=1e-12, atol=1e-12)


def test_laplace_kl_with_a_fixed_scale_is_d_alpha_beta_plus_a_constant():
    """Eq. 18 = D_{a,b}(r) (eq. 19) + log(b/a) + a/b − 1: with b fixed the gradient in the box is eq. 21's."""
    a, b = 0.4, 1.7
    r = torch.linspace(-5, 5, 101, dtype=D64, requires_grad=True)
    log_b = torch.full_like(r, math.log(b))
    kl = uncertainty_loss(r, log_b, LAPLACE_KL, a, 1.0)
    d = (a * torch.exp(-r.abs() / a) + r.abs() - a) / b  # eq. 19
    torch.testing.assert_close(kl, d + math.log(b / a) + a / b - 1, rtol=1e-12, atol=1e-13)
    (grad,) = torch.autograd.grad(kl.sum(), r)
    eq21 = torch.sign(r) * (1 - torch.exp(-r.abs() / a)) / b
    torch.testing.assert_close(grad, eq21.detach(), rtol=1e-12, atol=1e-13)


def test_laplace_kl_tends_to_the_laplace_nll_as_the_label_scale_vanishes():
    """KL = cross entropy − H(p), H(Laplace(a)) = 1 + log 2a (eq. 15); as a → 0 the cross entropy is the NLL: their
    gap is a·e^{−|r|/a}/b, at most a/b (reached at r = 0)."""
    target = torch.randn(50, dtype=D64, generator=_gen(3))
    pred = target + torch.randn(50, dtype=D64, generator=_gen(4)) * torch.linspace(0, 1, 50, dtype=D64) ** 3
    log_b = torch.empty(50, dtype=D64).uniform_(-1, 1, generator=_gen(5))
    nll = -Laplace(pred, log_b.exp()).log_prob(target)
    torch.testing.assert_close(uncertainty_loss(pred - target, log_b, LAPLACE_NLL, 1.0, 1.0), nll)
    for a in (1e-1, 1e-3, 1e-6):
        cross_entropy = uncertainty_loss(pred - target, log_b, LAPLACE_KL, a, 1.0) + 1 + math.log(2 * a)
        gap = cross_entropy - nll
        assert (gap >= -1e-12).all() and (gap <= a / log_b.exp() + 1e-12).all()
        assert gap[0].item() == pytest.approx(a / log_b[0].exp().item(), rel=1e-6, abs=1e-12)  # r = 0


def test_gaussian_kl_loss_is_he_et_al():
    """e^{−s}·smooth_l1(r; β = 1) + s/2 with s = log σ² = 2u (He et al., eq. 9 of KL-Loss) at α = 1; in its
    quadratic range the Gaussian NLL up to ½ log 2π."""
    r = torch.linspace(-4, 4, 81, dtype=D64)
    u = torch.linspace(-2, 2, 81, dtype=D64)
    s = 2 * u
    want = torch.exp(-s) * TF.smooth_l1_loss(r, torch.zeros_like(r), beta=1.0, reduction="none") + s / 2
    torch.testing.assert_close(uncertainty_loss(r, u, GAUSSIAN_KL_LOSS, 1.0, 1.0), want)
    small = r.abs() <= 1
    nll = -Normal(r, u.exp()).log_prob(torch.zeros_like(r)) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(uncertainty_loss(r, u, GAUSSIAN_KL_LOSS, 1.0, 1.0)[small], nll[small])


@pytest.mark.parametrize("preset", ["published", "implemented", "proposed"])
def test_head_starts_at_the_presets_prediction_scale(preset):
    """Bias = log of Table 2's prediction scale ÷ σ (σ-scaled target units): σ/λ÷σ = 1/λ, or 1/(λα) for the
    published λ·H_α; the label scale is α; the Gaussian KL-Loss starts at σ² = 1/(c·α) with c = λ/α (or λ)."""
    p = PRESETS[preset]
    cfg = BoxLossConfig(p.detection, form=p.form)
    lam, alpha = float(p.detection.lam), float(p.detection.alpha)
    prediction = 1 / (lam * alpha) if p.form == "paper" else 1 / lam
    assert initial_log_scale(cfg, LAPLACE_KL) == pytest.approx(math.log(prediction), abs=1e-15)
    assert initial_log_scale(cfg, LAPLACE_NLL) == pytest.approx(math.log(prediction), abs=1e-15)
    c = lam if p.form == "paper" else lam / alpha
    assert initial_log_scale(cfg, GAUSSIAN_KL_LOSS) == pytest.approx(-0.5 * math.log(c * alpha), abs=1e-15)
    assert label_scale(cfg) == alpha
    assert label_scale(BoxLossConfig(p.detection, form="laplace_upper")) == alpha / 2


def test_predictor_starts_with_zero_weights_and_draws_no_random_numbers():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    base = torch.nn.Linear(8, 3), torch.nn.Linear(8, 12)
    torch.set_rng_state(before)
    predictor = ScalePredictor(*base, initial_log_scale=0.7)
    assert torch.equal(torch.get_rng_state(), before)
    x = torch.randn(5, 8, 1, 1)
    scores, deltas, log_scales = predictor(x)
    assert scores.shape == (5, 3) and deltas.shape == (5, 12)
    torch.testing.assert_close(log_scales, torch.full((5, 12), 0.7))
    with torch.no_grad():
        predictor.log_scale.bias.fill_(50.0)
    assert predictor(x)[2].max().item() == LOG_SCALE_RANGE[1]


def _loss_inputs(num_classes=3):
    labels = [torch.tensor([2, 1, 0])]
    regression = torch.randn(3, 4 * num_classes, dtype=D64, generator=_gen(6))
    logits = torch.randn(3, num_classes, dtype=D64, generator=_gen(7))
    targets = [torch.randn(3, 4, dtype=D64, generator=_gen(8))]
    return logits, regression, labels, targets


def _positive_residuals(regression, targets):
    return torch.stack([regression[0, 8:12] - targets[0][0], regression[1, 4:8] - targets[0][1]])


def test_head_loss_at_the_start_is_d_with_the_presets_scales_over_the_sampled_rois():
    cfg = stage(lam=F(1, 2), alpha=F(1, 3))
    h = heads(cfg)
    logits, regression, labels, targets = _loss_inputs()
    regression.requires_grad_(True)
    log_scales = torch.full((3, 12), initial_log_scale(cfg), dtype=D64)
    cls_loss, box_loss = h.compute_loss(logits, regression, log_scales, labels, targets)
    a, b = 1 / 3, 2.0  # label α, prediction 1/λ in target units
    r = _positive_residuals(regression, targets)
    want = ((a * torch.exp(-r.abs() / a) + r.abs() - a) / b + math.log(b / a) + a / b - 1).sum() / 3
    torch.testing.assert_close(box_loss, want)
    torch.testing.assert_close(cls_loss, TF.cross_entropy(logits, labels[0]))
    (got,) = torch.autograd.grad(box_loss, regression)
    (ref,) = torch.autograd.grad(want, regression)
    torch.testing.assert_close(got, ref)


def test_annealing_blends_from_the_fixed_loss_and_is_off_by_default():
    cfg = stage(lam=F(1, 2), alpha=F(1, 3))
    logits, regression, labels, targets = _loss_inputs()
    log_scales = torch.randn(3, 12, dtype=D64, generator=_gen(9))
    r = _positive_residuals(regression, targets)
    fixed = 0.5 * TF.smooth_l1_loss(r, torch.zeros_like(r), beta=1 / 3, reduction="sum") / 3  # λ·smooth-L1_α, eq. 37
    learned = heads(cfg).compute_loss(logits, regression, log_scales, labels, targets)[1]
    h = heads(cfg, anneal_iters=4)
    for step, w in ((0, 0.0), (1, 0.25), (3, 0.75), (4, 1.0), (9, 1.0)):
        h.anneal_step.fill_(step)
        got = h.compute_loss(logits, regression, log_scales, labels, targets)[1]
        torch.testing.assert_close(got, w * learned + (1 - w) * fixed)
    assert heads(cfg).anneal_weight() == 1.0


def test_learned_heads_need_a_per_coordinate_form_and_a_box_loss():
    with pytest.raises(ValueError, match="per-coordinate box loss form"):
        heads(stage(form="giou"))
    with pytest.raises(ValueError, match="λ > 0"):
        heads(stage(lam=0))
    with pytest.raises(ValueError, match="unknown uncertainty loss"):
        UncertaintyConfig(loss="energy")
    with pytest.raises(ValueError, match="uncertainty must be one of"):
        TrainConfig(data="d", out="o", uncertainty="maybe")
    iou_head = BoxLosses(rpn=stage(), detection=stage(form="giou"))
    TrainConfig(data="d", out="o", box_losses=iou_head)  # fine with fixed scales
    with pytest.raises(ValueError, match="per-coordinate"):
        TrainConfig(data="d", out="o", uncertainty="learned", box_losses=iou_head)


def test_config_roundtrips_and_old_configs_read_as_fixed_scales():
    cfg = TrainConfig(data="d", out="o", uncertainty="learned", uncertainty_loss=LAPLACE_NLL, anneal_iters=5,
                      var_voting=True)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.uncertainty_config == UncertaintyConfig(LAPLACE_NLL, 5, True)
    old = {k: v for k, v in TrainConfig(data="d", out="o").to_dict().items()
           if k not in ("uncertainty", "uncertainty_loss", "anneal_iters", "var_voting")}
    assert TrainConfig.from_dict(old).uncertainty_config is None


# ---------------------------------------------------------------------------------------------------------------
# item 3: scales through postprocessing
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size_target", ["log", "linear"])
def test_pixel_scales_are_the_decoders_derivative(size_target):
    """box_scales = e^u · ∂(cx, cy, w, h)/∂t at the prediction, the Jacobian's diagonal read by autograd."""
    h = heads(stage(size_target=size_target))
    proposals = torch.tensor([[10.0, 12.0, 50.0, 40.0], [0.0, 5.0, 20.0, 60.0]], dtype=D64)
    deltas = torch.randn(2, 8, dtype=D64, generator=_gen(10)) * 0.3
    boxes = h.box_coder.decode(deltas, [proposals])
    got = h.pixel_scales(torch.ones(2, 2, 4, dtype=D64), boxes, proposals)
    for i in range(2):
        for c in range(2):
            def cxcywh(t, i=i, c=c):
                d = deltas.clone()
                d[i, 4 * c:4 * c + 4] = t
                b = h.box_coder.decode(d, [proposals])[i, c]
                return torch.stack([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]])
            jac = torch.autograd.functional.jacobian(cxcywh, deltas[i, 4 * c:4 * c + 4])
            torch.testing.assert_close(got[i, c], torch.diagonal(jac), rtol=1e-12, atol=1e-12)


def test_scales_stay_with_their_boxes_through_score_filter_nms_and_top_k():
    """Five proposals, two object classes: NMS keeps boxes out of proposal order and drops overlapping ones; the
    boxes, scores and labels are torchvision's postprocess_detections', and each scale is its (RoI, class)'s."""
    h = heads(stage())
    h.detections_per_img = 4
    proposals = [torch.tensor([[5.0, 5.0, 25.0, 25.0], [40.0, 40.0, 70.0, 60.0], [6.0, 6.0, 26.0, 26.0],
                               [60.0, 10.0, 90.0, 30.0], [41.0, 40.0, 71.0, 61.0]], dtype=D64)]
    logits = torch.tensor([[0.0, 1.0, 0.5], [0.0, 3.0, -1.0], [0.0, 2.0, 0.4], [0.0, -3.0, 2.5],
                           [0.0, 2.5, -2.0]], dtype=D64)
    regression = torch.randn(5, 12, dtype=D64, generator=_gen(11)) * 0.05
    log_scales = (torch.arange(60, dtype=D64) / 60 - 0.5).reshape(5, 12)  # a different scale everywhere
    shapes = [(100, 100)]
    got = h.postprocess_with_scales(logits, regression, log_scales, proposals, shapes)[0]
    boxes, scores, labels = RoIHeads.postprocess_detections(h, logits, regression, proposals, shapes)
    for key, want in (("boxes", boxes[0]), ("scores", scores[0]), ("labels", labels[0])):
        torch.testing.assert_close(got[key], want, rtol=0, atol=0)
    order = []
    decoded = h.box_coder.decode(regression, proposals)
    for box, label in zip(got["boxes"], got["labels"]):
        (i,) = torch.where((decoded[:, label] == box).all(dim=1))[0].tolist()
        order.append(i)
        torch.testing.assert_close(got["box_target_scales"][len(order) - 1],
                                   log_scales[i, 4 * label:4 * label + 4].exp())
        pixel = h.pixel_scales(log_scales.reshape(5, 3, 4).exp(), decoded, proposals[0])[i, label]
        torch.testing.assert_close(got["box_scales"][len(order) - 1], pixel)
    assert order != sorted(order) and len(order) < 10  # reordered, and something suppressed or cut


def test_box_scales_rescale_with_the_image():
    transform = ScaleRescalingTransform.like(GeneralizedRCNNTransform(64, 64, [0.5] * 3, [0.2] * 3))
    transform.eval()
    result = [{"boxes": torch.tensor([[4.0, 8.0, 20.0, 16.0]]), "box_scales": torch.tensor([[1.0, 2.0, 3.0, 4.0]]),
               "box_target_scales": torch.tensor([[1.0, 1.0, 1.0, 1.0]])}]
    out = transform.postprocess(result, [(64, 32)], [(128, 96)])[0]  # height ×2, width ×3
    torch.testing.assert_close(out["boxes"], torch.tensor([[12.0, 16.0, 60.0, 32.0]]))
    torch.testing.assert_close(out["box_scales"], torch.tensor([[3.0, 4.0, 9.0, 8.0]]))
    torch.testing.assert_close(out["box_target_scales"], torch.ones(1, 4))


def test_variance_voting_by_hand():
    """Kept box A = (0, 0, 10, 10); candidate B = (0, 0, 10, 20) of the same class (IoU 1/2), C far away and D of
    another class: x_voted = Σ p_i x_i/s_i² / Σ p_i/s_i², p = exp(−(1 − IoU)²/σ_t)."""
    kept, kept_labels = torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=D64), torch.tensor([1])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0], [50.0, 50.0, 60.0, 60.0],
                          [0.0, 0.0, 10.0, 12.0]], dtype=D64)
    labels = torch.tensor([1, 1, 1, 2])
    scales = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 0.5], [0.1] * 4, [0.1] * 4], dtype=D64)
    sigma_t = 0.5
    p = math.exp(-0.25 / sigma_t)
    cy = (5 / 1 + p * 10 / 1) / (1 + p)
    h = (10 / 1 + p * 20 / 0.25) / (1 + p / 0.25)
    want = torch.tensor([[0.0, cy - h / 2, 10.0, cy + h / 2]], dtype=D64)  # cx, w: both candidates agree
    torch.testing.assert_close(variance_voting(kept, kept_labels, boxes, labels, scales, sigma_t), want)


# ---------------------------------------------------------------------------------------------------------------
# the whole detector: at its start the learned model detects what the fixed one does
# ---------------------------------------------------------------------------------------------------------------
def _tiny_batch(n=2, size=64):
    gen = _gen(0)
    images = [torch.rand(3, size, size, generator=gen, dtype=D64) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[8.0, 10.0, 40.0, 30.0], [30.0, 30.0, 60.0, 62.0]], dtype=D64),
                "labels": torch.tensor([1, 2])} for _ in range(n)]
    return images, targets


def _fixed_and_learned_at_the_start(uncertainty, learned_keys):
    """A fixed model and a learned one holding its weights (only ``learned_keys`` missing from the fixed state),
    and each one's training losses on the tiny batch from the same random state."""
    torch.manual_seed(0)
    fixed = build_model("lab", 3, "proposed", image_size=64).double()
    learned = build_model("lab", 3, "proposed", image_size=64, uncertainty=uncertainty).double()
    missing = learned.load_state_dict(fixed.state_dict(), strict=False).missing_keys
    assert sorted(missing) == sorted(learned_keys)
    images, targets = _tiny_batch()
    losses = []
    for model in (fixed, learned):
        model.train()
        torch.manual_seed(7)
        losses.append(model(images, targets))
    return fixed, learned, losses, images, targets


_HEAD_SCALE_KEYS = ["roi_heads.anneal_step", "roi_heads.box_predictor.log_scale.bias",
                    "roi_heads.box_predictor.log_scale.weight"]


def test_learned_model_at_its_start_detects_what_the_fixed_model_detects():
    fixed, learned, losses, images, _ = _fixed_and_learned_at_the_start(UncertaintyConfig(), _HEAD_SCALE_KEYS)
    assert isinstance(fixed.roi_heads, PaperRoIHeads) and isinstance(learned.roi_heads, LearnedScaleRoIHeads)
    for key in ("loss_classifier", "loss_objectness", "loss_rpn_box_reg"):
        torch.testing.assert_close(losses[1][key], losses[0][key], rtol=1e-12, atol=1e-15)
    assert learned.roi_heads.anneal_step.item() == 1
    fixed.eval(), learned.eval()
    larger = [TF.interpolate(im[None], scale_factor=1.5)[0] for im in images]  # resized back to 64 inside
    with torch.no_grad():
        want, got = fixed(larger), learned(larger)
    for a, b in zip(want, got):
        assert a["boxes"].shape[0] > 0
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(b[key], a[key], rtol=1e-12, atol=1e-12)
        assert b["box_scales"].shape == b["boxes"].shape and (b["box_scales"] > 0).all()
        torch.testing.assert_close(b["box_target_scales"], torch.full_like(b["box_target_scales"], 2.0))


# ---------------------------------------------------------------------------------------------------------------
# item 5: calibration
# ---------------------------------------------------------------------------------------------------------------
def test_cdf_and_nll_against_torch_distributions():
    y = torch.linspace(-6, 6, 49, dtype=D64)
    mu, s = torch.tensor(0.7, dtype=D64), torch.tensor(1.3, dtype=D64)
    for name, dist in (("laplace", Laplace(mu, s)), ("gaussian", Normal(mu, s))):
        np.testing.assert_allclose(cal.cdf(y, mu, s, name), dist.cdf(y).numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(cal.nll(y, mu, s, name), -dist.log_prob(y).numpy(), rtol=1e-12)


def _laplace_quantiles(n, b):
    """n points at the (i + ½)/n quantiles of Laplace(0, b): the exact expectation, up to 1/n, without sampling."""
    p = (np.arange(n) + 0.5) / n
    return np.where(p < 0.5, b * np.log(2 * p), -b * np.log(2 * (1 - p)))


def test_calibrated_scales_have_calibration_error_zero():
    y = _laplace_quantiles(100_000, 2.0)
    pit = cal.cdf(y, 0.0, 2.0)
    assert cal.calibration_error(pit) < 1e-9
    np.testing.assert_allclose(cal.pit_histogram(pit), np.full(15, 1 / 15), atol=1e-4)


def test_twice_over_confident_laplace_has_the_known_calibration_error():
    """Truth Laplace(0, b), prediction Laplace(0, b/2): P(u ≤ p) = F_b(F_{b/2}⁻¹(p)) = √(p/2) for p < ½ and
    1 − √((1 − p)/2) above; the error is the mean of (P(u ≤ p_j) − p_j)² over p_j = j/15, j = 1 … 14."""
    levels = np.arange(1, 15) / 15
    observed = np.where(levels < 0.5, np.sqrt(levels / 2), 1 - np.sqrt((1 - levels) / 2))
    known = np.mean((observed - levels) ** 2)
    assert known == pytest.approx(0.00862, abs=1e-5)  # a clearly non-zero number
    y = _laplace_quantiles(100_000, 2.0)
    assert cal.calibration_error(cal.cdf(y, 0.0, 1.0)) == pytest.approx(known, rel=1e-3)
    assert cal.calibration_error(cal.cdf(y, 0.0, 4.0)) > 1e-3  # under-confident is miscalibrated too


def test_uncertainty_metrics_on_hand_made_detections():
    """Two true positives with hand-known errors and scales; a third detection matches nothing."""
    gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 20], "area": 200,
                           "iscrowd": 0, "label_noise_scale": 0.1},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400,
                           "iscrowd": 0, "label_noise_scale": 0.3}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 20], "score": 0.9, "bbox_scales": [1, 2, 1, 2]},
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.8, "bbox_scales": [4, 4, 4, 4]},
            {"image_id": 2, "category_id": 1, "bbox": [60, 60, 5, 5], "score": 0.7, "bbox_scales": [1, 1, 1, 1]}]
    m = cal.uncertainty_metrics(gt, dets)
    assert m["unc_true_positives"] == 2
    # box units: first pair cx off by 1/10 with scale 1/10, the rest exact; scales s/n = 0.1 everywhere, 0.2 in pair 2
    want_nll = np.mean([1 + math.log(0.2)] + [math.log(0.2)] * 3 + [math.log(0.4)] * 4)
    assert m["unc_nll"] == pytest.approx(want_nll, rel=1e-12)
    assert m["unc_sharpness"] == pytest.approx((0.1 * 4 + 0.2 * 4) / 8)
    assert m["unc_rank_correlation"] is not None and math.isnan(m["unc_rank_correlation"])  # two pairs: no ranks
    assert sum(m["unc_pit_histogram"]["cx"]) == pytest.approx(1.0)
    gt["annotations"].append({"id": 3, "image_id": 2, "category_id": 1, "bbox": [60, 60, 5, 5], "area": 25,
                              "iscrowd": 0, "label_noise_scale": 0.2})
    m = cal.uncertainty_metrics(gt, dets)
    assert m["unc_true_positives"] == 3
    # ranks (1, 2.5, 2.5) against (1, 3, 2): Pearson's r of the ranks is 1.5/√(1.5·2)
    assert m["unc_rank_correlation"] == pytest.approx(math.sqrt(3) / 2)
    del gt["annotations"][0]["label_noise_scale"]
    assert math.isnan(cal.uncertainty_metrics(gt, dets)["unc_rank_correlation"])
    with pytest.raises(ValueError, match="bbox_scales"):
        cal.uncertainty_metrics(gt, [{k: v for k, v in dets[0].items() if k != "bbox_scales"}])


# ---------------------------------------------------------------------------------------------------------------
# item 6: back to fixed settings
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["published", "implemented", "proposed"])
def test_the_starting_scales_imply_the_presets_own_settings(preset):
    p = PRESETS[preset]
    for s in p.stages.values():
        start = 1 / (float(s.lam) * float(s.alpha) ** (1 if p.form == "paper" else 0))
        assert implied_stage(s, [start] * 4, p.form).settings == s


def test_implied_settings_by_hand():
    s = PRESETS["proposed"].detection  # λ = 1/2, α = 1, σ = (1/20, 1/20, 1/10, 1/10)
    equal = implied_stage(s, [4, 4, 4, 4])  # prediction 4 target units = 4σ anchor sizes: λ = 1/4, σ kept
    assert equal.settings == StageSettings(F(1, 4), 1, F(1, 20), F(1, 20), F(1, 10), F(1, 10))
    assert equal.label_scales == equal.assumed_label_scales
    mixed = implied_stage(s, [1, 1, 4, 4])  # label/prediction 1 and 1/4: ρ = (1·1·¼·¼)^{1/4} = 1/2
    assert mixed.ratio == F(1, 2) and mixed.prediction_scales == (F(1, 20), F(1, 20), F(2, 5), F(2, 5))
    assert mixed.settings == StageSettings(F(1, 2), 1, F(1, 40), F(1, 40), F(1, 5), F(1, 5))
    both = implied_settings(PRESETS["proposed"].stages, {"detection": [4, 4, 4, 4]})
    assert both["rpn"] == PRESETS["proposed"].rpn and both["detection"] == equal.settings
    assert "bbox_reg_weights" in export(both, "torchvision").snippet


# ---------------------------------------------------------------------------------------------------------------
# smoke: train, evaluate, read the implied settings
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from labkit.detection.data import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("synth") / "data", n_train=4, n_val=2, image_size=64,
                              workers=1)


def test_learned_uncertainty_trains_and_evaluates_end_to_end(tiny_data, tmp_path, capsys):
    from labkit.__main__ import main
    from labkit.detection.evaluate import evaluate_run
    from labkit.detection.implied import implied_run_settings

    out = tmp_path / "run"
    torch.set_num_threads(1)
    assert main(["train", "--data", str(tiny_data), "--out", str(out), "--uncertainty", "learned",
                 "--uncertainty-rpn", "--anneal-iters", "1", "--iters", "2", "--batch-size", "2", "--image-size",
                 "64", "--warmup-iters", "1", "--lr", "0.001", "--device", "cpu", "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["uncertainty"] == "learned" and config["anneal_iters"] == 1 and config["uncertainty_rpn"]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("AP75", "loc_err", "unc_nll", "unc_calibration_error", "unc_calibration_error_by_coordinate",
                "unc_pit_histogram", "unc_sharpness", "unc_rank_correlation", "unc_true_positives"):
        assert key in metrics
    assert metrics["unc_distribution"] == "laplace"
    voted = evaluate_run(out, device="cpu", var_voting=True)
    # an evaluation other than the configured one goes beside metrics.json, never over it
    assert voted["file"] == str(out / "metrics-val-voting.json")
    written = json.loads((out / "metrics-val-voting.json").read_text())
    assert written["var_voting"] is True and "unc_nll" in written
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert evaluate_run(out, device="cpu", var_voting=False)["file"] == str(out / "metrics.json")
    assert evaluate_run(out, split="train", device="cpu")["file"] == str(out / "metrics-train.json")
    implied = implied_run_settings(out, device="cpu")
    assert implied.scales.count > 0 and implied.rpn_scales.count > 0
    # two steps at lr 0.001 barely move the RPN's scales from their start 1/λ = 4: the implied RPN stage is the
    # proposed preset's own up to that drift (its λ within 1 %, α and σ as they were)
    assert implied.rpn_scales.median == pytest.approx((4.0,) * 4, rel=0.01)
    assert float(implied.rpn.settings.lam) == pytest.approx(0.25, rel=0.01)
    assert implied.rpn.settings.sigmas == PRESETS["proposed"].rpn.sigmas
    assert export(implied.settings, "detectron2", form=implied.form).snippet
    capsys.readouterr()
    assert main(["implied", str(out), "--framework", "torchvision", "mmdetection", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"implied detection stage: {implied.detection.settings.describe()}" in printed
    assert f"implied rpn stage: {implied.rpn.settings.describe()}" in printed
    assert export(implied.settings, "mmdetection", form=implied.form).snippet in printed
    fixed = tmp_path / "fixed"
    assert main(["train", "--data", str(tiny_data), "--out", str(fixed), "--iters", "1", "--batch-size", "2",
                 "--image-size", "64", "--warmup-iters", "1", "--device", "cpu", "--no-progress"]) == 0
    assert main(["implied", str(fixed), "--device", "cpu"]) == 1
    assert "fixed scales" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# item 4: heteroscedastic synthetic label noise
# ---------------------------------------------------------------------------------------------------------------
def test_heteroscedastic_scales_follow_the_contrast_by_hand():
    from labkit.detection.synthetic import noise_scales

    np.testing.assert_allclose(noise_scales([0.25, 0.625, 1.0], 0.1, "heteroscedastic"), [0.16, 0.1, 0.04])
    np.testing.assert_array_equal(noise_scales([0.25, 1.0], 0.1), [0.1, 0.1])
    v = np.linspace(0.25, 1.0, 100_001)
    assert noise_scales(v, 0.1, "heteroscedastic").mean() == pytest.approx(0.1)  # b1 on average


def test_per_box_laplace_noise_has_each_boxs_scale():
    """Mean |noise|/w of Laplace(0, b·w) is b: boxes alternating b and 3b show both (20 000 draws each)."""
    from labkit.detection.synthetic import laplace_label_noise

    boxes = np.tile([[10.0, 20.0, 50.0, 40.0]], (40_000, 1))
    scales = np.tile([0.05, 0.15], 20_000)
    noisy = laplace_label_noise(boxes, scales, np.random.default_rng(0))
    dcx = np.abs((noisy[:, 0] + noisy[:, 2]) / 2 - 30.0) / 40.0
    dh = np.abs((noisy[:, 3] - noisy[:, 1]) - 20.0) / 20.0
    for k, b in ((0, 0.05), (1, 0.15)):
        assert dcx[k::2].mean() == pytest.approx(b, rel=0.03) and dh[k::2].mean() == pytest.approx(b, rel=0.03)
    with pytest.raises(ValueError, match="one per box"):
        laplace_label_noise(boxes, scales[:3], np.random.default_rng(0))


def test_heteroscedastic_dataset_records_each_boxs_scale(tmp_path, capsys):
    from labkit.__main__ import main
    from labkit.detection.data import load_dataset

    out = tmp_path / "het"
    assert main(["data", "synth", "--out", str(out), "--train", "6", "--val", "3", "--image-size", "64",
                 "--label-noise", "0.1", "--label-noise-model", "heteroscedastic", "--workers", "1"]) == 0
    assert "heteroscedastic" in capsys.readouterr().out
    for split in ("train", "val"):
        anns = json.loads((out / "annotations" / f"instances_{split}.json").read_text())["annotations"]
        scales = np.array([a["label_noise_scale"] for a in anns])
        assert len(anns) > 3 and ((scales >= 0.04 - 1e-6) & (scales <= 0.16 + 1e-6)).all() and np.ptp(scales) > 0
    truth = load_dataset(out, "val").coco.dataset["annotations"]
    assert all("label_noise_scale" in a for a in truth)  # the evaluation's ground truth keeps them


def test_learned_run_resumes_exactly_with_its_annealing_step(tiny_data, tmp_path):
    """The anneal step is part of the model's state: a run resumed from its middle checkpoint ends as an
    uninterrupted one does (CPU, one process)."""
    from labkit.detection.engine import train

    torch.set_num_threads(1)
    config = TrainConfig(data=str(tiny_data), out=str(tmp_path / "a"), model="lab", iters=4, batch_size=2,
                         image_size=64, warmup_iters=1, lr=0.001, checkpoint_every=2, device="cpu", val_split=None,
                         evaluate=False, uncertainty="learned", anneal_iters=3)
    last = tmp_path / "a" / "checkpoints" / "iter_00000004.pt"
    train(config, progress=False)
    a = torch.load(last, weights_only=True)["model"]
    last.unlink()
    train(config, resume=True, progress=False)
    b = torch.load(last, weights_only=True)["model"]
    assert a["roi_heads.anneal_step"].item() == 4 == b["roi_heads.anneal_step"].item()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)


# ---------------------------------------------------------------------------------------------------------------
# item 1's option: the RPN learns its scales too
# ---------------------------------------------------------------------------------------------------------------
def test_rpn_scale_head_keeps_torchvisions_layers_and_draws_no_random_numbers():
    torch.manual_seed(0)
    base = RPNHead(8, 3)
    before = torch.get_rng_state()
    head = ScaleRPNHead.from_head(base, initial_log_scale=0.7)
    assert torch.equal(torch.get_rng_state(), before)
    assert set(base.state_dict()) < set(head.state_dict())
    assert set(head.state_dict()) - set(base.state_dict()) == {"log_scale.weight", "log_scale.bias"}
    x = [torch.randn(2, 8, 5, 6), torch.randn(2, 8, 3, 3)]
    logits, deltas, log_scales = head(x)
    want_logits, want_deltas = base(x)
    for got, want in zip(logits + deltas, want_logits + want_deltas):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for u, d in zip(log_scales, deltas):
        assert u.shape == d.shape
        torch.testing.assert_close(u, torch.full_like(u, 0.7))
    with torch.no_grad():
        head.log_scale.bias.fill_(-50.0)
    assert head(x)[2][0].min().item() == LOG_SCALE_RANGE[0]
    with pytest.raises(TypeError, match="RPNHead"):
        ScaleRPNHead.from_head(torch.nn.Conv2d(8, 3, 1), 0.0)


def _learned_rpn(preset="proposed", **uncertainty):
    torch.manual_seed(0)
    return build_model("lab", 3, preset, image_size=64,
                       uncertainty=UncertaintyConfig(rpn=True, **uncertainty)).double().rpn


@pytest.mark.parametrize("preset", ["implemented", "proposed"])
def test_rpn_loss_at_the_start_is_d_with_the_rpn_stages_scales_over_the_sampled_anchors(preset):
    """At its start the learned RPN's box loss is eq. 18 with the stage's label scale a = k·α and prediction scale
    b = 1/λ (σ-scaled units), summed over the positive sampled anchors and divided by all sampled anchors; the
    objectness loss is the fixed RPN's."""
    rpn = _learned_rpn(preset)
    fixed = build_model("lab", 3, preset, image_size=64).double().rpn
    assert isinstance(rpn, LearnedScaleRPN) and type(fixed) is PaperRPN
    s = PRESETS[preset].rpn
    a, b = float(s.alpha), 1 / float(s.lam)
    labels = [torch.tensor([1.0, 0.0, -1.0, 1.0, 0.0], dtype=D64), torch.tensor([0.0, 1.0, -1.0], dtype=D64)]
    objectness = torch.randn(8, 1, dtype=D64, generator=_gen(1))
    deltas = torch.randn(8, 4, dtype=D64, generator=_gen(2), requires_grad=True)
    targets = [torch.randn(5, 4, dtype=D64, generator=_gen(3)), torch.randn(3, 4, dtype=D64, generator=_gen(4))]
    log_scales = torch.full((8, 4), math.log(b), dtype=D64)
    obj, box = rpn.compute_loss(objectness, deltas, log_scales, labels, targets)
    want_obj, _ = fixed.compute_loss(objectness, deltas, labels, targets)
    torch.testing.assert_close(obj, want_obj)
    r = (deltas - torch.cat(targets))[[0, 3, 6]]  # the positives; 6 sampled anchors in all (the −1 are ignored)
    want = ((a * torch.exp(-r.abs() / a) + r.abs() - a) / b + math.log(b / a) + a / b - 1).sum() / 6
    torch.testing.assert_close(box, want)
    torch.testing.assert_close(torch.autograd.grad(box, deltas)[0], torch.autograd.grad(want, deltas)[0])
    # a scale per anchor and coordinate: each positive anchor's own scale enters its own term (value, both gradients)
    u = torch.randn(8, 4, dtype=D64, generator=_gen(5), requires_grad=True)
    box = rpn.compute_loss(objectness, deltas, u, labels, targets)[1]
    bs, r = u[[0, 3, 6]].exp(), (deltas - torch.cat(targets))[[0, 3, 6]]
    want = ((a * torch.exp(-r.abs() / a) + r.abs() - a) / bs + torch.log(bs / a) + a / bs - 1).sum() / 6
    torch.testing.assert_close(box, want)
    for x in (deltas, u):
        torch.testing.assert_close(torch.autograd.grad(box, x, retain_graph=True)[0],
                                   torch.autograd.grad(want, x, retain_graph=True)[0])


def test_learned_rpn_at_its_start_proposes_what_the_fixed_rpn_proposes_and_anneals_from_its_loss():
    fixed, learned, losses, images, targets = _fixed_and_learned_at_the_start(
        UncertaintyConfig(rpn=True, anneal_iters=2),
        _HEAD_SCALE_KEYS + ["rpn.anneal_step", "rpn.head.log_scale.bias", "rpn.head.log_scale.weight"])
    # annealing step 0: the blend is all fixed loss, so the RPN's box loss is the fixed RPN's exactly
    for key in ("loss_classifier", "loss_objectness", "loss_rpn_box_reg", "loss_box_reg"):
        torch.testing.assert_close(losses[1][key], losses[0][key], rtol=1e-12, atol=1e-15)
    assert learned.rpn.anneal_step.item() == 1 and learned.rpn.anneal_weight() == 0.5
    fixed.eval(), learned.eval()
    with torch.no_grad():
        want, got = fixed(images), learned(images)
        image_list, scaled_targets = learned.transform(images, targets)
        features = {"0": learned.backbone(image_list.tensors)}  # as GeneralizedRCNN wraps a single map
        scales = learned.rpn.anchor_scales(image_list, features, scaled_targets)
        anchors = fixed.rpn.anchor_generator(image_list, list(features.values()))
        labels, _ = fixed.rpn.assign_targets_to_anchors(anchors, scaled_targets)  # torchvision's own matcher
    for a, b in zip(want, got):
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(b[key], a[key], rtol=1e-12, atol=1e-12)
    assert scales.shape == (int(sum((lab == 1).sum() for lab in labels)), 4) and len(scales) > 0
    torch.testing.assert_close(scales, torch.full_like(scales, 4.0))  # 1/λ of the proposed RPN, λ = 1/4
    # with a scale layer that varies over the map: each positive anchor gets the scale at its own location and
    # anchor, read off the head's output by hand (anchors run over rows, columns, then the anchors of a location)
    with torch.no_grad():
        learned.rpn.head.log_scale.weight.normal_(0, 0.1, generator=_gen(11))
        scales = learned.rpn.anchor_scales(image_list, features, scaled_targets)
        (u,) = learned.rpn.head([features["0"]])[2]
    n, a4, h, w = u.shape
    per_anchor = u.view(n, a4 // 4, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)
    positive = torch.stack(labels) == 1
    torch.testing.assert_close(scales, per_anchor[positive].exp())
    assert scales.std(0).min() > 0


def test_rpn_scales_need_learned_uncertainty_and_roundtrip():
    with pytest.raises(ValueError, match="uncertainty_rpn=True needs uncertainty='learned'"):
        TrainConfig(data="d", out="o", uncertainty_rpn=True)
    no_rpn_loss = BoxLosses(rpn=stage(lam=0), detection=stage())
    TrainConfig(data="d", out="o", uncertainty="learned", box_losses=no_rpn_loss)  # the RPN keeps fixed scales
    with pytest.raises(ValueError, match="the rpn stage: .*λ > 0"):
        TrainConfig(data="d", out="o", uncertainty="learned", uncertainty_rpn=True, box_losses=no_rpn_loss)
    with pytest.raises(ValueError, match="rpn must be True or False"):
        UncertaintyConfig(rpn="yes")
    cfg = TrainConfig(data="d", out="o", uncertainty="learned", uncertainty_rpn=True)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.uncertainty_config == UncertaintyConfig(rpn=True)
    assert isinstance(build_model("lab", 3, "proposed", image_size=64, uncertainty=cfg.uncertainty_config).rpn,
                      LearnedScaleRPN)
    assert type(build_model("lab", 3, "proposed", image_size=64, uncertainty=UncertaintyConfig()).rpn) is PaperRPN


def test_a_learned_model_starts_from_a_trained_fixed_models_weights(tmp_path):
    """--weights of a fixed-scale run into a learned model: the scale layers keep their start, so the learned model
    detects what the fixed one does; the reverse (learned weights into a fixed model) stays an error."""
    from labkit.detection.model import load_weights

    torch.manual_seed(0)
    fixed = build_model("lab", 3, "proposed", image_size=64).double().eval()
    path = tmp_path / "fixed.pt"
    torch.save(fixed.state_dict(), path)
    torch.manual_seed(5)  # a different initialisation, all of it replaced by the file but the scale layers
    learned = build_model("lab", 3, "proposed", image_size=64, weights=path,
                          uncertainty=UncertaintyConfig(rpn=True)).double().eval()
    torch.testing.assert_close(learned.roi_heads.box_predictor.log_scale.bias,
                               torch.full_like(learned.roi_heads.box_predictor.log_scale.bias, math.log(2.0)))
    assert learned.roi_heads.box_predictor.log_scale.weight.abs().sum() == 0
    assert learned.rpn.head.log_scale.weight.abs().sum() == 0 and learned.rpn.anneal_step == 0
    images, _ = _tiny_batch()
    with torch.no_grad():
        for a, b in zip(fixed(images), learned(images)):
            torch.testing.assert_close(b["boxes"], a["boxes"])
    torch.save(learned.state_dict(), path)
    with pytest.raises(ValueError, match="does not fit this model"):
        load_weights(build_model("lab", 3, "proposed", image_size=64), path)
    partial = {k: v for k, v in fixed.state_dict().items() if not k.startswith("rpn.head.cls_logits")}
    with pytest.raises(ValueError, match="does not fit this model"):
        load_weights(learned, partial)
    # a run whose detection head alone learned scales into a model whose RPN learns them too
    head_only = build_model("lab", 3, "proposed", image_size=64, uncertainty=UncertaintyConfig()).double()
    with torch.no_grad():
        head_only.roi_heads.box_predictor.log_scale.bias.fill_(0.3)
    load_weights(learned, head_only.state_dict())
    assert learned.roi_heads.box_predictor.log_scale.bias.eq(0.3).all()
    torch.testing.assert_close(learned.rpn.head.log_scale.bias, torch.full_like(learned.rpn.head.log_scale.bias, math.log(4.0)))
