"""labkit.detection.losses and .model: per-stage box losses against eqs. 37/42 written out here, box coders against
eqs. 32, 38, 43, 44, 93, 94 by hand, the torchvision model builders, and the whole detector against stock
torchvision at torchvision's own box-loss settings."""
from __future__ import annotations

import copy
import math
from fractions import Fraction as F

import pytest
import torch
import torch.nn.functional as TF
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.detection import losses as dl
from labkit.detection.losses import BoxLossConfig, BoxLosses, LinearSizeBoxCoder, make_box_coder
from labkit.interpret import StageSettings
from labkit.detection.model import (MODEL_NAMES, PaperRoIHeads, PaperRPN, build_model, load_weights, model_parts,
                                    paper_faster_rcnn)
from labkit.interpret.exports import TORCHVISION_DEFAULTS
from paper_tables import TABLE1

#: torchvision's own settings in the paper's terms: β = 1/9 in both stages, RPN weights (1, 1, 1, 1), RoI weights
#: (10, 10, 5, 5), λ = 1, read as the implementation's (λ/α)·H_α
TORCHVISION = BoxLosses(rpn=BoxLossConfig(TORCHVISION_DEFAULTS["rpn"]),
                        detection=BoxLossConfig(TORCHVISION_DEFAULTS["detection"]))
IMPLEMENTED = BoxLosses(
    rpn=BoxLossConfig(StageSettings(1, F(1, 9), 1, 1, 1, 1)),
    detection=BoxLossConfig(StageSettings(1, 1, F(1, 10), F(1, 10), F(1, 5), F(1, 5))),
)


def stage(form="implementation", size_target="log", lam=F(1, 2), alpha=F(1, 3),
          sigmas=(F(1, 20), F(1, 10), F(1, 8), F(1, 5))):
    return BoxLossConfig(StageSettings(lam, alpha, *sigmas), form=form, size_target=size_target)


# ---------------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------------
def test_presets_are_table_1():
    table1 = TABLE1  # the paper's Table 1 (tests/paper_tables.py)
    for name, (rpn, det) in table1.items():
        got = dl.from_preset(name)
        for cfg, want in ((got.rpn, rpn), (got.detection, det)):
            assert (cfg.settings.lam, cfg.settings.alpha, cfg.settings.sigma_x, cfg.settings.sigma_y, cfg.settings.sigma_w, cfg.settings.sigma_h) == want
            assert all(isinstance(v, F) for v in (cfg.settings.lam, cfg.settings.alpha, cfg.settings.sigma_x))
    assert dl.from_preset("published").rpn.form == "paper"  # the publication's λ·H_α
    assert dl.from_preset("implemented").detection.form == "implementation"
    swapped = dl.from_preset("proposed", form="laplace_upper", size_target="linear")
    assert {swapped.rpn.form, swapped.detection.form, swapped.rpn.size_target} == {"laplace_upper", "linear"}


def test_config_roundtrip_and_weights():
    cfg = stage(size_target="linear")
    assert BoxLossConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["alpha"] == "1/3"
    assert BoxLosses.from_dict(IMPLEMENTED.to_dict()) == IMPLEMENTED
    assert cfg.box_coder_weights == (20.0, 10.0, 8.0, 5.0)
    assert IMPLEMENTED.detection.box_coder_weights == (10.0, 10.0, 5.0, 5.0)  # torchvision's RoIHeads default
    assert dl.resolve_box_losses((IMPLEMENTED.rpn, IMPLEMENTED.detection)) == IMPLEMENTED
    assert dl.resolve_box_losses(IMPLEMENTED.to_dict()) == IMPLEMENTED


@pytest.mark.parametrize("numbers, options, match", [
    (dict(alpha=0), {}, "alpha must be > 0"),
    (dict(lam=-1), {}, "lam must be >= 0"),
    (dict(sigma_x="wide"), {}, "sigma_x must be a number"),
    ({}, dict(form="huber"), "unknown form 'huber'; valid forms: implementation, paper, laplace_upper"),
    ({}, dict(size_target="sqrt"), "unknown size_target 'sqrt'; valid size_targets: log, linear"),
])
def test_config_rejects_bad_values(numbers, options, match):
    base = dict(lam=1, alpha=1, sigma_x=1, sigma_y=1, sigma_w=1, sigma_h=1)
    with pytest.raises(ValueError, match=match):
        BoxLossConfig(StageSettings(**{**base, **numbers}), **options)
    assert BoxLossConfig(StageSettings(**{**base, "lam": 0})).settings.lam == 0  # λ = 0: no box loss
    with pytest.raises(TypeError, match="settings must be a labkit.interpret.StageSettings"):
        BoxLossConfig(base)
    with pytest.raises(ValueError, match="unknown preset 'unpublished'; valid presets"):
        dl.from_preset("unpublished")
    with pytest.raises(TypeError, match="box_loss must be"):
        dl.resolve_box_losses(3.0)


def test_normaliser_roundtrips_defaults_for_old_configs_and_is_rpn_only():
    cfg = BoxLossConfig(StageSettings(10, 1, 1, 1, 1, 1), form="paper", normaliser="locations")
    assert cfg.to_dict()["normaliser"] == "locations" and BoxLossConfig.from_dict(cfg.to_dict()) == cfg
    old = {k: v for k, v in cfg.to_dict().items() if k != "normaliser"}  # a run config written before it existed
    assert BoxLossConfig.from_dict(old).normaliser == "sampled" == BoxLossConfig(cfg.settings).normaliser
    losses = dl.from_preset("published", rpn_normaliser="locations")
    assert (losses.rpn.normaliser, losses.detection.normaliser) == ("locations", "sampled")
    assert BoxLosses.from_dict(losses.to_dict()) == losses
    with pytest.raises(ValueError, match="unknown normaliser 'images'; valid normalisers: sampled, locations"):
        BoxLossConfig(cfg.settings, normaliser="images")
    with pytest.raises(ValueError, match="detection: normaliser 'locations' .* applies to the RPN only"):
        BoxLosses(rpn=cfg, detection=cfg)
    with pytest.raises(ValueError, match="applies to the RPN only"):
        PaperRoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, score_thresh=0.05, nms_thresh=0.5,
                      detections_per_img=100, box_loss=cfg)


# ---------------------------------------------------------------------------------------------------------------
# box coders: targets by hand
# ---------------------------------------------------------------------------------------------------------------
ANCHORS = torch.tensor([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 16.0, 32.0]], dtype=torch.float64)  # w_a 40, 16
GT = torch.tensor([[14.0, 18.0, 58.0, 42.0], [2.0, -4.0, 14.0, 30.0]], dtype=torch.float64)


def hand_targets(size_target, sigmas):
    sx, sy, sw, sh = (float(s) for s in sigmas)
    out = []
    for (ax1, ay1, ax2, ay2), (gx1, gy1, gx2, gy2) in zip(ANCHORS.tolist(), GT.tolist()):
        wa, ha, w, h = ax2 - ax1, ay2 - ay1, gx2 - gx1, gy2 - gy1
        xa, ya, x, y = ax1 + wa / 2, ay1 + ha / 2, gx1 + w / 2, gy1 + h / 2
        tx, ty = (x - xa) / (sx * wa), (y - ya) / (sy * ha)  # eqs. 32, 38 with μ = 0
        if size_target == "log":
            tw, th = math.log(w / wa) / sw, math.log(h / ha) / sh  # eqs. 43, 44
        else:
            tw, th = (w / wa - 1) / sw, (h / ha - 1) / sh  # eqs. 93, 94
        out.append([tx, ty, tw, th])
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("size_target", ["log", "linear"])
def test_box_coder_targets_by_hand(size_target):
    cfg = stage(size_target=size_target)
    coder = make_box_coder(cfg)
    assert isinstance(coder, LinearSizeBoxCoder) == (size_target == "linear")
    got = coder.encode_single(GT, ANCHORS)
    torch.testing.assert_close(got, hand_targets(size_target, (cfg.settings.sigma_x, cfg.settings.sigma_y, cfg.settings.sigma_w, cfg.settings.sigma_h)),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(coder.decode_single(got, ANCHORS), GT, rtol=1e-10, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.45, 0.45), min_size=4, max_size=4), st.floats(4, 200), st.floats(4, 200),
       st.sampled_from(["log", "linear"]))
def test_box_coder_decode_inverts_encode(shift, wa, ha, size_target):
    anchors = torch.tensor([[5.0, 7.0, 5.0 + wa, 7.0 + ha]], dtype=torch.float64)
    dx, dy, dw, dh = shift
    w, h = wa * (1 + dw), ha * (1 + dh)
    cx, cy = 5.0 + wa / 2 + dx * wa, 7.0 + ha / 2 + dy * ha
    gt = torch.tensor([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], dtype=torch.float64)
    coder = make_box_coder(stage(size_target=size_target))
    torch.testing.assert_close(coder.decode_single(coder.encode_single(gt, anchors), anchors), gt)


# ---------------------------------------------------------------------------------------------------------------
# stage losses against eq. 37 (torch's smooth_l1 / huber) and eq. 42 (D in pixels)
# ---------------------------------------------------------------------------------------------------------------
def laplace_d(x, a, b):
    """D_{a,b}(x) of eq. 19, written out (float64)."""
    return (a * torch.exp(-x.abs() / a) + x.abs() - a) / b


def reference_sum(pred, target, cfg):
    lam, alpha = float(cfg.settings.lam), float(cfg.settings.alpha)
    if cfg.form == "implementation":  # λ/α·H_α = λ·smooth_l1(β=α), eq. 37
        return lam * TF.smooth_l1_loss(pred, target, beta=alpha, reduction="sum")
    if cfg.form == "paper":  # λ·H_α, torch's huber_loss(δ=α) is H_α
        return lam * TF.huber_loss(pred, target, delta=alpha, reduction="sum")
    return lam / alpha * laplace_d(pred - target, alpha / 2, 1 / alpha).sum()


def pixel_reading(pred, cfg):
    """The laplace_upper loss read in pixels (eq. 42 with eqs. 28–29, exact for D): Σ over coordinates of
    D_{ασ·s_a/2, σ·s_a/λ}(x̃ − x*), s_a the anchor's width or height, x̃ decoded from ``pred``."""
    lam, alpha = float(cfg.settings.lam), float(cfg.settings.alpha)
    sig = [float(s) for s in (cfg.settings.sigma_x, cfg.settings.sigma_y, cfg.settings.sigma_w, cfg.settings.sigma_h)]
    total = torch.zeros((), dtype=torch.float64)
    for p, (ax1, ay1, ax2, ay2), (gx1, gy1, gx2, gy2) in zip(pred, ANCHORS.tolist(), GT.tolist()):
        wa, ha, w, h = ax2 - ax1, ay2 - ay1, gx2 - gx1, gy2 - gy1
        xa, ya, x, y = ax1 + wa / 2, ay1 + ha / 2, gx1 + w / 2, gy1 + h / 2
        x_pred = p[0] * sig[0] * wa + xa  # x̃ = t_x σ_x w_a + x_a (eq. 41)
        y_pred = p[1] * sig[1] * ha + ya
        w_pred = (p[2] * sig[2] + 1) * wa  # w̃ = (t_w σ_w + 1) w_a (eq. 51, exact for the linear target)
        h_pred = (p[3] * sig[3] + 1) * ha
        for d, s in ((x_pred - x, sig[0] * wa), (y_pred - y, sig[1] * ha), (w_pred - w, sig[2] * wa),
                     (h_pred - h, sig[3] * ha)):
            total = total + laplace_d(d, alpha * s / 2, s / lam)
    return total


PRED = torch.tensor([[0.3, -0.2, 0.05, 1.5], [-2.0, 0.01, -0.4, 0.2]], dtype=torch.float64)


def make_rpn(cfg):
    anchors = torchvision.models.detection.anchor_utils.AnchorGenerator(((32,),), ((1.0,),))
    head = torchvision.models.detection.rpn.RPNHead(4, 1)
    return PaperRPN(anchors, head, 0.7, 0.3, 256, 0.5, dict(training=10, testing=10),
                    dict(training=10, testing=10), 0.7, box_loss=cfg)


@pytest.mark.parametrize("form", ["implementation", "paper", "laplace_upper"])
@pytest.mark.parametrize("size_target", ["log", "linear"])
def test_rpn_box_loss_matches_eq_37(form, size_target):
    cfg = stage(form=form, size_target=size_target)
    rpn = make_rpn(cfg)
    targets = rpn.box_coder.encode([GT], [ANCHORS])
    torch.testing.assert_close(targets[0], hand_targets(size_target, (cfg.settings.sigma_x, cfg.settings.sigma_y, cfg.settings.sigma_w,
                                                                      cfg.settings.sigma_h)))
    # anchors 0, 1 positive, 2 negative: all sampled (3 ≤ 256), normalised by the 3 sampled anchors
    labels = [torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)]
    deltas = torch.cat([PRED, torch.full((1, 4), 9.0, dtype=torch.float64)])
    regression = [torch.cat([targets[0], torch.zeros(1, 4, dtype=torch.float64)])]
    objectness = torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64)
    obj_loss, box_loss = rpn.compute_loss(objectness, deltas, labels, regression)
    torch.testing.assert_close(box_loss.double(), reference_sum(PRED, targets[0], cfg) / 3)
    torch.testing.assert_close(obj_loss.double(), TF.binary_cross_entropy_with_logits(objectness.flatten(),
                                                                                      labels[0]))
    if form == "laplace_upper" and size_target == "linear":  # eq. 42, in pixels, exactly
        torch.testing.assert_close(box_loss.double() * 3, pixel_reading(PRED, cfg))


@pytest.mark.parametrize("form", ["implementation", "paper", "laplace_upper"])
def test_detection_head_box_loss_matches_eq_37(form):
    cfg = stage(form=form, lam=F(1, 2), alpha=1)
    heads = PaperRoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, score_thresh=0.05, nms_thresh=0.5,
                          detections_per_img=100, box_loss=cfg)
    targets = heads.box_coder.encode([GT], [ANCHORS])[0]
    num_classes = 3
    labels = [torch.tensor([2, 1, 0])]  # two positive RoIs (classes 2 and 1), one background RoI
    regression = torch.randn(3, 4 * num_classes, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    regression[0, 8:12] = PRED[0]  # class 2's deltas of RoI 0
    regression[1, 4:8] = PRED[1]  # class 1's deltas of RoI 1
    logits = torch.randn(3, num_classes, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    reg_targets = [torch.cat([targets, torch.zeros(1, 4, dtype=torch.float64)])]
    cls_loss, box_loss = heads.compute_loss(logits, regression, labels, reg_targets)
    torch.testing.assert_close(box_loss.double(), reference_sum(PRED, targets, cfg) / 3)
    torch.testing.assert_close(cls_loss, TF.cross_entropy(logits, labels[0]))


def test_implemented_rpn_equals_torchvision_loss():
    """The implemented RPN (λ = 1, α = 1/9, σ = 1) is exactly torchvision's own RegionProposalNetwork loss."""
    ours = make_rpn(IMPLEMENTED.rpn)
    theirs = torchvision.models.detection.rpn.RegionProposalNetwork(
        ours.anchor_generator, ours.head, 0.7, 0.3, 256, 0.5, dict(training=10, testing=10),
        dict(training=10, testing=10), 0.7)
    gen = torch.Generator().manual_seed(3)
    labels = [(torch.rand(300, generator=gen) < 0.3).float()]
    deltas, regression = torch.randn(300, 4, generator=gen), [torch.randn(300, 4, generator=gen)]
    objectness = torch.randn(300, 1, generator=gen)
    torch.manual_seed(5)
    want = theirs.compute_loss(objectness, deltas, labels, regression)
    torch.manual_seed(5)
    got = ours.compute_loss(objectness, deltas, labels, regression)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])


class CountingSampler:
    """A fg/bg sampler that records how many anchors it sampled over the batch."""

    def __init__(self, sampler):
        self.sampler, self.count = sampler, None

    def __call__(self, labels):
        pos, neg = self.sampler(labels)
        self.count = int(sum(p.sum() + n.sum() for p, n in zip(pos, neg)))
        return pos, neg


def _rpn_losses(rpn, images, features, targets):
    rpn.fg_bg_sampler = CountingSampler(rpn.fg_bg_sampler)
    rpn.train()
    torch.manual_seed(11)  # the sampler draws from the global generator
    _, losses = rpn(images, features, targets)
    return losses, rpn.fg_bg_sampler.count


def test_rpn_locations_normaliser_by_hand():
    """Two feature levels (16×16 and 8×8), 3 anchors per location, a batch of N = 2 images: normaliser
    "locations" divides the same Σ box loss by N·Σ H·W = 2·(256 + 64) = 640 instead of the 2·256 sampled anchors."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList
    from torchvision.models.detection.rpn import RPNHead

    gen = torch.Generator().manual_seed(0)
    features = {"0": torch.randn(2, 4, 16, 16, generator=gen, dtype=torch.float64),
                "1": torch.randn(2, 4, 8, 8, generator=gen, dtype=torch.float64)}
    images = ImageList(torch.zeros(2, 3, 64, 64, dtype=torch.float64), [(64, 64), (64, 64)])
    targets = [{"boxes": torch.tensor([[8.0, 10.0, 40.0, 30.0], [30.0, 30.0, 60.0, 62.0]], dtype=torch.float64)},
               {"boxes": torch.tensor([[4.0, 4.0, 20.0, 36.0]], dtype=torch.float64)}]
    torch.manual_seed(0)
    head = RPNHead(4, 3).double()
    losses = {}
    for normaliser in ("sampled", "locations"):
        cfg = BoxLossConfig(StageSettings(10, 1, 1, 1, 1, 1), form="paper", normaliser=normaliser)
        anchors = AnchorGenerator(((16,), (32,)), ((0.5, 1.0, 2.0),) * 2)
        rpn = PaperRPN(anchors, copy.deepcopy(head), 0.7, 0.3, 256, 0.5, dict(training=50, testing=50),
                       dict(training=20, testing=20), 0.7, box_loss=cfg)
        losses[normaliser] = _rpn_losses(rpn, images, features, targets)
    (sampled, n_sampled), (located, _) = losses["sampled"], losses["locations"]
    assert n_sampled == 2 * 256  # 256 per image: plenty of negatives on a 64 px image
    n_locations = 2 * sum(f.shape[-2] * f.shape[-1] for f in features.values())
    assert n_locations == 640 == rpn.anchor_locations([torch.zeros(960), torch.zeros(960)])
    assert sampled["loss_rpn_box_reg"] > 0
    torch.testing.assert_close(located["loss_rpn_box_reg"] * n_locations, sampled["loss_rpn_box_reg"] * n_sampled,
                               rtol=1e-14, atol=0)
    torch.testing.assert_close(located["loss_objectness"], sampled["loss_objectness"], rtol=0, atol=0)
    # torchvision's RPNHead predicts the same number of anchors at every level: anything else has no location count
    rpn.anchor_generator = AnchorGenerator(((16,), (32,)), ((1.0,), (0.5, 2.0)))
    with pytest.raises(ValueError, match="same number of anchors per location"):
        rpn.anchor_locations([torch.zeros(960)])


def test_lab_model_locations_normaliser_changes_only_the_rpn_box_loss():
    """The whole lab detector with the Published RPN divided by its anchor locations: H·W of its one feature map per
    image, read from the backbone's output; every other loss is unchanged."""
    images, targets = tiny_batch()
    images = [im.double() for im in images]
    targets = [{"boxes": t["boxes"].double(), "labels": t["labels"]} for t in targets]
    got = {}
    for normaliser in ("sampled", "locations"):
        torch.manual_seed(0)
        model = build_model("lab", 3, dl.from_preset("published", rpn_normaliser=normaliser), image_size=64).double()
        model.rpn.fg_bg_sampler = CountingSampler(model.rpn.fg_bg_sampler)
        model.train()
        torch.manual_seed(7)
        got[normaliser] = (model(images, targets), model.rpn.fg_bg_sampler.count)
    with torch.no_grad():
        feature = model.backbone(model.transform(images)[0].tensors)
    feature = feature["0"] if isinstance(feature, dict) else feature
    n_locations = len(images) * feature.shape[-2] * feature.shape[-1]
    assert n_locations == 2 * 8 * 8  # 64 px at stride 8
    (sampled, n_sampled), (located, _) = got["sampled"], got["locations"]
    torch.testing.assert_close(located["loss_rpn_box_reg"] * n_locations, sampled["loss_rpn_box_reg"] * n_sampled,
                               rtol=1e-14, atol=0)
    for key in ("loss_objectness", "loss_classifier", "loss_box_reg"):
        torch.testing.assert_close(located[key], sampled[key], rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------------------------
def tiny_batch(size=64, n=2):
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, size, size, generator=gen) for _ in range(n)]
    targets = [{"boxes": torch.tensor([[8.0, 10.0, 40.0, 30.0], [30.0, 30.0, 60.0, 62.0]]),
                "labels": torch.tensor([1, 2])} for _ in range(n)]
    return images, targets


def test_lab_model_trains_and_predicts():
    torch.manual_seed(0)
    model = build_model("lab", 3, IMPLEMENTED, image_size=64)
    assert isinstance(model, torchvision.models.detection.FasterRCNN)
    assert isinstance(model.rpn, PaperRPN) and isinstance(model.roi_heads, PaperRoIHeads)
    assert model.roi_heads.box_coder.weights == (10.0, 10.0, 5.0, 5.0)
    # torchvision's module-level loss is untouched (extension through subclasses, not patching)
    assert torchvision.models.detection.roi_heads.fastrcnn_loss.__module__ == "torchvision.models.detection.roi_heads"
    images, targets = tiny_batch()
    model.train()
    loss = model(images, targets)
    assert set(loss) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(loss.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.roi_heads.box_predictor.bbox_pred.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model(images[:1])
    assert set(out[0]) == {"boxes", "labels", "scores"} and out[0]["boxes"].shape[1] == 4


def test_weights_roundtrip(tmp_path):
    torch.manual_seed(0)
    a = build_model("lab", 3, IMPLEMENTED, image_size=64).eval()
    path = tmp_path / "w.pt"
    torch.save(a.state_dict(), path)
    torch.manual_seed(1)
    b = build_model("lab", 3, "implemented", image_size=64, weights=path).eval()
    images, _ = tiny_batch()
    with torch.no_grad():
        torch.testing.assert_close(b(images)[0]["boxes"], a(images)[0]["boxes"])
    with pytest.raises(FileNotFoundError, match="weights: no file"):
        load_weights(a, tmp_path / "missing.pt")
    torch.save(build_model("lab", 5, IMPLEMENTED, image_size=64).state_dict(), path)
    with pytest.raises(ValueError, match="does not fit this model"):
        load_weights(a, path)


def test_build_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        build_model("yolo", 3, IMPLEMENTED)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        build_model("lab", 1, IMPLEMENTED)
    with pytest.raises(ValueError, match="image_size must be an int"):
        build_model("lab", 3, IMPLEMENTED, image_size=8)


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "lab"])
def test_gpu_models_build_with_the_paper_heads(name):
    model = build_model(name, 81, "proposed")
    assert isinstance(model.rpn, PaperRPN) and isinstance(model.roi_heads, PaperRoIHeads)
    assert model.rpn.box_coder.weights == (20.0, 20.0, 10.0, 10.0)
    assert model.roi_heads.box_predictor.cls_score.out_features == 81


def test_linear_decode_keeps_boxes_valid():
    coder = make_box_coder(stage(size_target="linear"))
    codes = torch.tensor([[0.0, 0.0, -1e4, 1e6]], dtype=torch.float64)
    box = coder.decode_single(codes, ANCHORS[:1])[0]
    w, h = box[2] - box[0], box[3] - box[1]
    assert w == pytest.approx(1e-3 * 40) and h == pytest.approx(1000 / 16 * 20)  # ratio clipped to [1e-3, 62.5]


# ---------------------------------------------------------------------------------------------------------------
# the whole detector against stock torchvision
# ---------------------------------------------------------------------------------------------------------------
def _train_step(model, images, targets):
    """Losses and parameter gradients of one training forward/backward, the samplers seeded alike."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(7)  # the RPN's and RoI heads' fg/bg samplers draw from the global generator
    losses = model(images, targets)
    sum(losses.values()).backward()
    return losses, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def _stock_and_ours(box_loss):
    """torchvision's FasterRCNN(backbone, **options) and labkit's build_model from the same parts and weights, in
    float64 (the lab model: its RoI align, labkit's separable one, is the same module class in both)."""
    torch.manual_seed(0)
    stock = torchvision.models.detection.FasterRCNN(*model_parts("lab", 3, image_size=64)[:1],
                                                    **model_parts("lab", 3, image_size=64)[1])
    ours = build_model("lab", 3, box_loss, image_size=64)
    ours.load_state_dict(stock.state_dict())
    assert type(stock.rpn) is torchvision.models.detection.rpn.RegionProposalNetwork
    assert type(stock.roi_heads) is torchvision.models.detection.roi_heads.RoIHeads
    images, targets = tiny_batch()
    images = [im.double() for im in images]
    targets = [{"boxes": t["boxes"].double(), "labels": t["labels"]} for t in targets]
    return stock.double(), ours.double(), images, targets


def test_detector_equals_stock_torchvision_at_its_defaults():
    """At TORCHVISION_DEFAULTS labkit's detector gives stock torchvision's four losses and every parameter's gradient
    (float64; measured differences ≤ 2e-18 in the losses and ≤ 2e-17 in the gradients), and the same detections."""
    stock, ours, images, targets = _stock_and_ours(TORCHVISION)
    want, want_grads = _train_step(stock, images, targets)
    got, got_grads = _train_step(ours, images, targets)
    assert set(got) == set(want) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert want["loss_box_reg"] > 0 and want["loss_rpn_box_reg"] > 0  # both stages had positive boxes
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-15)
    assert set(got_grads) == set(want_grads) and len(want_grads) == len(list(stock.parameters()))
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-10, atol=1e-14, msg=name)
    stock.eval(), ours.eval()
    with torch.no_grad():  # inference settings (test-time top-n, thresholds, NMS, detections per image) alike
        for a, b in zip(stock(images), ours(images)):
            assert a["boxes"].shape[0] > 0
            for key in ("boxes", "scores", "labels"):
                torch.testing.assert_close(b[key], a[key], rtol=1e-12, atol=1e-12)


def test_detector_differs_from_stock_torchvision_where_the_settings_do():
    """The comparison can fail: the Implemented preset's RoI head (α = 1 instead of 1/9) gives another box loss,
    while the RPN (the same numbers as torchvision's) and the classification losses stay equal."""
    stock, ours, images, targets = _stock_and_ours(IMPLEMENTED)
    want, _ = _train_step(stock, images, targets)
    got, _ = _train_step(ours, images, targets)
    for key in ("loss_classifier", "loss_objectness", "loss_rpn_box_reg"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-15)
    assert abs(got["loss_box_reg"].item() - want["loss_box_reg"].item()) > 1e-3 * want["loss_box_reg"].item()


def _head_settings(model):
    """Every number torchvision's RPN and RoI heads are constructed from (private attributes, read only here)."""
    rpn, roi = model.rpn, model.roi_heads
    return (rpn.proposal_matcher.high_threshold, rpn.proposal_matcher.low_threshold,
            rpn.proposal_matcher.allow_low_quality_matches, rpn.fg_bg_sampler.batch_size_per_image,
            rpn.fg_bg_sampler.positive_fraction, rpn._pre_nms_top_n, rpn._post_nms_top_n, rpn.nms_thresh,
            rpn.score_thresh, rpn.min_size, roi.proposal_matcher.high_threshold, roi.proposal_matcher.low_threshold,
            roi.proposal_matcher.allow_low_quality_matches, roi.fg_bg_sampler.batch_size_per_image,
            roi.fg_bg_sampler.positive_fraction, roi.box_coder.weights, roi.score_thresh, roi.nms_thresh,
            roi.detections_per_img)


def test_paper_heads_take_torchvisions_constructor_arguments():
    """paper_faster_rcnn passes FasterRCNN's arguments (given ones and torchvision's defaults) on to the heads."""
    options = dict(rpn_pre_nms_top_n_train=123, rpn_post_nms_top_n_test=45, rpn_nms_thresh=0.6,
                   rpn_fg_iou_thresh=0.65, rpn_bg_iou_thresh=0.25, rpn_batch_size_per_image=99,
                   rpn_positive_fraction=0.4, rpn_score_thresh=0.01, box_score_thresh=0.2, box_nms_thresh=0.4,
                   box_detections_per_img=7, box_fg_iou_thresh=0.6, box_bg_iou_thresh=0.4,
                   box_batch_size_per_image=33, box_positive_fraction=0.3)
    for given in ({}, options):
        backbone, parts = model_parts("lab", 3, image_size=64)
        modules = ("min_size", "max_size", "rpn_anchor_generator", "box_roi_pool", "box_head", "box_predictor")
        parts = {k: parts[k] for k in modules} | given  # the numbers: torchvision's defaults, then the given ones
        stock = torchvision.models.detection.FasterRCNN(backbone, **parts)
        ours = paper_faster_rcnn(copy.deepcopy(backbone), TORCHVISION, **copy.deepcopy(parts))
        assert _head_settings(ours) == _head_settings(stock)
    with pytest.raises(ValueError, match="bbox_reg_weights"):
        paper_faster_rcnn(backbone, TORCHVISION, bbox_reg_weights=(1.0, 1.0, 1.0, 1.0), **parts)


# ---------------------------------------------------------------------------------------------------------------
# IoU forms (giou / diou / ciou): torchvision.ops on decoded boxes, detection head only
# ---------------------------------------------------------------------------------------------------------------
def hand_decoded(pred, sigmas):
    """Boxes from log-target deltas by hand (eqs. 41, 43 inverted): x = t_x σ_x w_a + x_a, w = w_a·exp(t_w σ_w)."""
    sx, sy, sw, sh = (float(s) for s in sigmas)
    out = []
    for (tx, ty, tw, th), (ax1, ay1, ax2, ay2) in zip(pred.tolist(), ANCHORS.tolist()):
        wa, ha = ax2 - ax1, ay2 - ay1
        x, y = tx * sx * wa + ax1 + wa / 2, ty * sy * ha + ay1 + ha / 2
        w, h = wa * math.exp(tw * sw), ha * math.exp(th * sh)
        out.append([x - w / 2, y - h / 2, x + w / 2, y + h / 2])
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("form, op", [("giou", torchvision.ops.generalized_box_iou_loss),
                                      ("diou", torchvision.ops.distance_box_iou_loss),
                                      ("ciou", torchvision.ops.complete_box_iou_loss)])
def test_detection_head_iou_form_is_torchvisions_op_on_decoded_boxes(form, op):
    cfg = stage(form=form, lam=F(1, 2))
    heads = PaperRoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, score_thresh=0.05, nms_thresh=0.5,
                          detections_per_img=100, box_loss=cfg)
    targets = heads.box_coder.encode([GT], [ANCHORS])[0]
    labels = [torch.tensor([2, 1, 0])]  # two positive RoIs (classes 2 and 1), one background RoI
    regression = torch.randn(3, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    regression[0, 8:12], regression[1, 4:8] = PRED[0], PRED[1]
    logits = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    proposals = [torch.cat([ANCHORS, torch.tensor([[0.0, 0.0, 8.0, 8.0]], dtype=torch.float64)])]
    reg_targets = [torch.cat([targets, torch.zeros(1, 4, dtype=torch.float64)])]
    _, box_loss = heads.compute_loss(logits, regression, labels, reg_targets, proposals)
    boxes = hand_decoded(PRED, cfg.settings.sigmas)
    torch.testing.assert_close(box_loss, 0.5 * op(boxes, GT, reduction="sum") / 3)  # λ·Σ / #sampled RoIs
    torch.testing.assert_close(dl.box_iou_loss(boxes, GT, cfg), 0.5 * op(boxes, GT))
    with pytest.raises(ValueError, match="needs the proposals"):
        heads.compute_loss(logits, regression, labels, reg_targets)


def test_iou_forms_are_for_the_detection_head_only():
    iou, huber_cfg = stage(form="giou"), stage()
    assert BoxLosses(rpn=huber_cfg, detection=iou).detection.form == "giou"
    assert BoxLosses.from_dict(BoxLosses(rpn=huber_cfg, detection=iou).to_dict()).detection == iou
    with pytest.raises(ValueError, match="rpn: form 'giou' .* detection head only"):
        BoxLosses(rpn=iou, detection=huber_cfg)
    with pytest.raises(ValueError, match="detection head only"):
        make_rpn(iou)
    with pytest.raises(ValueError, match="acts on decoded boxes"):
        dl.box_regression_loss(torch.zeros(2, 4), iou)
    with pytest.raises(ValueError, match="needs an IoU form"):
        dl.box_iou_loss(GT, GT, huber_cfg)


def test_lab_model_trains_with_an_iou_head():
    torch.manual_seed(0)
    losses = BoxLosses(rpn=IMPLEMENTED.rpn, detection=BoxLossConfig(IMPLEMENTED.detection.settings, form="ciou"))
    model = build_model("lab", 3, losses, image_size=64)
    model.train()
    loss = model(*tiny_batch())
    assert torch.isfinite(loss["loss_box_reg"]) and loss["loss_box_reg"] > 0
    loss["loss_box_reg"].backward()
    assert model.roi_heads.box_predictor.bbox_pred.weight.grad.abs().sum() > 0
