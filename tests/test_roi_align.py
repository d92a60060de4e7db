"""labkit.detection.roi_align against torchvision.ops.roi_align and MultiScaleRoIAlign (the oracle), forward and
backward, with autograd's gradcheck in float64 and a hypothesis property over random boxes."""
from __future__ import annotations

import functools

import itertools
from collections import OrderedDict

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align

import labkit.detection.roi_align as roi_align_module
from labkit.detection.roi_align import FastMultiScaleRoIAlign, prefer_separable, roi_align

separable_roi_align = functools.partial(roi_align, path="separable")  # the fast path, whatever the dispatcher says

TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def random_rois(gen, n_images, height, width, k, scale, dtype, ordered=True):
    """Boxes in image coordinates spread over and beyond the map (down to -4 cells, up to 1.4× the extent), a few
    of them empty (x1 == x2, y1 == y2), batch indices shuffled over ``n_images``."""
    extent = torch.tensor([width, height, width, height], dtype=dtype) / scale
    corners = torch.rand(k, 4, generator=gen, dtype=dtype) * 1.4 * extent - 4 / scale
    if ordered:
        corners = corners.view(k, 2, 2).sort(dim=1).values.view(k, 4)
    corners[:3, 2:] = corners[:3, :2]  # empty boxes
    batch = torch.randint(0, n_images, (k, 1), generator=gen).to(dtype)
    return torch.cat([batch, corners], dim=1)


def forward_backward(fn, x, rois, *args):
    x = x.clone().requires_grad_(True)
    out = fn(x, rois, *args)
    grad_out = torch.linspace(-1, 1, out.numel(), dtype=x.dtype).view_as(out)
    (grad,) = torch.autograd.grad(out, x, grad_out)
    return out.detach(), grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("sampling_ratio,aligned", list(itertools.product([-1, 0, 1, 2, 3], [False, True])))
def test_separable_matches_torchvision_forward_and_backward(dtype, sampling_ratio, aligned):
    gen = torch.Generator().manual_seed(7 + sampling_ratio)
    x = torch.randn(3, 4, 11, 13, generator=gen, dtype=dtype)
    rois = random_rois(gen, 3, 11, 13, 40, 0.5, dtype)
    args = ((7, 5), 0.5, sampling_ratio, aligned)
    out_ref, grad_ref = forward_backward(tv_roi_align, x, rois, *args)
    out, grad = forward_backward(separable_roi_align, x, rois, *args)
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    torch.testing.assert_close(grad, grad_ref, **TOL[dtype])


@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_inverted_boxes_match_when_not_aligned(sampling_ratio):
    # unaligned RoI align forces malformed boxes (x2 < x1) to 1 × 1; torchvision's adaptive grid crashes on them
    # only when aligned=True, which is why that case is not compared here
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 9, 9, generator=gen, dtype=torch.float64)
    rois = random_rois(gen, 2, 9, 9, 30, 1.0, torch.float64, ordered=False)
    ref = forward_backward(tv_roi_align, x, rois, 3, 1.0, sampling_ratio, False)
    got = forward_backward(separable_roi_align, x, rois, 3, 1.0, sampling_ratio, False)
    torch.testing.assert_close(got, ref, **TOL[torch.float64])


@pytest.mark.parametrize("sampling_ratio,aligned", [(-1, False), (2, True), (0, True)])
def test_gradcheck_float64(sampling_ratio, aligned):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 2, 6, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    rois = random_rois(gen, 2, 6, 7, 6, 0.5, torch.float64)
    assert torch.autograd.gradcheck(lambda t: separable_roi_align(t, rois, (3, 2), 0.5, sampling_ratio, aligned), (x,))


def test_boxes_as_list_and_empty_inputs():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 8, 8, generator=gen)
    boxes = [torch.tensor([[0.0, 0.0, 7.0, 7.0], [2.0, 3.0, 5.0, 6.5]]), torch.tensor([[1.0, 1.0, 8.0, 4.0]])]
    torch.testing.assert_close(separable_roi_align(x, boxes, 2, 1.0, 2), tv_roi_align(x, boxes, 2, 1.0, 2))
    # no RoIs at all, and an image without RoIs: shapes and (zero) gradients as torchvision's
    for rois in (torch.zeros(0, 5), [torch.zeros(0, 4), boxes[1]]):
        out, grad = forward_backward(separable_roi_align, x, rois, 2, 1.0, 2)
        out_ref, grad_ref = forward_backward(tv_roi_align, x, rois, 2, 1.0, 2)
        assert out.shape == out_ref.shape
        torch.testing.assert_close(grad, grad_ref)


def test_border_samples_by_hand():
    # a 1-cell-wide RoI in the last column: every sample clamps to column W-1, so each output equals that column's
    # value averaged over the bin's rows; rows 0..3 of a map holding 10·row + col give means computable by hand
    h, w = 4, 5
    fmap = (10 * torch.arange(h).view(h, 1) + torch.arange(w)).to(torch.float64).view(1, 1, h, w)
    rois = torch.tensor([[0.0, 4.0, 0.0, 5.0, 4.0]], dtype=torch.float64)  # x from 4 to 5, y from 0 to 4
    out = separable_roi_align(fmap, rois, (2, 1), 1.0, 2, False)
    # bin 0: samples at y = 0.5, 1.5 → 5 + 15 = mean 10 (+ column 4); bin 1: y = 2.5, 3.5 → clamped 3 → 25, 30
    expected = torch.tensor([10.0 + 4, (25.0 + 30.0) / 2 + 4], dtype=torch.float64).view(1, 1, 2, 1)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out, tv_roi_align(fmap, rois, (2, 1), 1.0, 2, False))


@pytest.mark.parametrize("chunk_elements", [1, 2 * 2 * 4 * 13, 5 * 2 * 4 * 13])
@pytest.mark.parametrize("ordered_batch", [True, False])
def test_chunked_path_matches_torchvision(monkeypatch, chunk_elements, ordered_batch):
    # tiny chunk budgets split each image's RoIs into runs of 1, 2 and 5 RoIs (pooled_h 2 · C 4 · W 13 per RoI);
    # image 1 has no RoIs, and unsorted batch indices go through the sort-and-put-back path
    monkeypatch.setattr(roi_align_module, "_CHUNK_ELEMENTS", chunk_elements)
    monkeypatch.setattr(roi_align_module, "_MIN_CHUNK", 1)
    gen = torch.Generator().manual_seed(17)
    x = torch.randn(3, 4, 11, 13, generator=gen, dtype=torch.float64)
    rois = random_rois(gen, 3, 11, 13, 23, 0.5, torch.float64)
    rois[:, 0] = torch.where(rois[:, 0] == 1, torch.zeros_like(rois[:, 0]), rois[:, 0])
    if ordered_batch:
        rois = rois[torch.argsort(rois[:, 0], stable=True)]
    else:
        assert not bool((rois[1:, 0] >= rois[:-1, 0]).all())
    args = ((2, 3), 0.5, 2, True)
    ref = forward_backward(tv_roi_align, x, rois, *args)
    got = forward_backward(separable_roi_align, x, rois, *args)
    torch.testing.assert_close(got, ref, **TOL[torch.float64])


def test_chunks_cover_each_image_in_runs():
    batch = torch.tensor([0, 0, 0, 0, 0, 2, 2, 3])
    assert roi_align_module._chunks(batch, 5, 2) == [(0, 0, 2), (0, 2, 4), (0, 4, 5), (2, 5, 7), (3, 7, 8)]
    assert roi_align_module._chunks(batch, 5, 100) == [(0, 0, 5), (2, 5, 7), (3, 7, 8)]
    assert roi_align_module._chunks(batch[:0], 2, 3) == []


def test_non_contiguous_grad_out_matches_torchvision():
    # out.sum().backward() hands the op an expanded (stride 0) gradient; a transposed one takes the strided copies
    gen = torch.Generator().manual_seed(19)
    x = torch.randn(2, 3, 9, 10, generator=gen, dtype=torch.float64)
    rois = random_rois(gen, 2, 9, 10, 15, 1.0, torch.float64)
    grads = []
    for fn in (tv_roi_align, separable_roi_align):
        xs = x.clone().requires_grad_(True)
        out = fn(xs, rois, (4, 4), 1.0, 2)
        weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(4, 4, 3, -1).permute(3, 2, 1, 0)
        (out.sum() + (out * weights).sum()).backward()
        grads.append(xs.grad)
    torch.testing.assert_close(grads[1], grads[0], **TOL[torch.float64])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    sampling_ratio=st.integers(-1, 3),
    aligned=st.booleans(),
    scale=st.sampled_from([1.0, 0.5, 0.25, 0.125]),
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    pooled=st.tuples(st.integers(1, 4), st.integers(1, 4)),
)
def test_property_equals_torchvision(seed, sampling_ratio, aligned, scale, size, pooled):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 2, *size, generator=gen, dtype=torch.float64)
    rois = random_rois(gen, 2, size[0], size[1], 12, scale, torch.float64)
    out_ref, grad_ref = forward_backward(tv_roi_align, x, rois, pooled, scale, sampling_ratio, aligned)
    out, grad = forward_backward(separable_roi_align, x, rois, pooled, scale, sampling_ratio, aligned)
    torch.testing.assert_close(out, out_ref, **TOL[torch.float64])
    torch.testing.assert_close(grad, grad_ref, **TOL[torch.float64])


def test_dispatch_prefers_fast_path_on_small_cpu_maps_only():
    rois = torch.tensor([[0.0, 0.0, 0.0, 32.0, 32.0]])
    assert prefer_separable(torch.zeros(1, 8, 16, 16), rois, (7, 7), 1 / 8, 2)
    assert not prefer_separable(torch.zeros(1, 8, 200, 336), rois, (7, 7), 1 / 4, 2)  # an 800 px FPN level
    assert not prefer_separable(torch.zeros(1, 8, 16, 16, dtype=torch.float16), rois.half(), (7, 7), 1 / 8, 2)
    assert not prefer_separable(torch.zeros(1, 8, 16, 16), torch.zeros(0, 5), (7, 7), 1 / 8, 2)
    # the fallback is torchvision's kernel itself: identical bits
    x = torch.randn(1, 2, 120, 120)
    assert torch.equal(roi_align(x, rois, 7, 1.0, 2), tv_roi_align(x, rois, 7, 1.0, 2))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x, r: separable_roi_align(x, r, 0), "output_size"),
        (lambda x, r: separable_roi_align(x, r, (2, 2, 2)), "output_size"),
        (lambda x, r: separable_roi_align(x, r[:, 1:], 2), "boxes"),
        (lambda x, r: separable_roi_align(x, [r], 2), r"boxes\[0\]"),
        (lambda x, r: separable_roi_align(x, r.double(), 2), "dtype"),
        (lambda x, r: separable_roi_align(x[0], r, 2), "input"),
        (lambda x, r: separable_roi_align(x, r + torch.tensor([5.0, 0, 0, 0, 0]), 2), "batch indices"),
        (lambda x, r: separable_roi_align(x.half(), r.half(), 2), "float32"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    x, rois = torch.zeros(1, 1, 4, 4), torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])
    with pytest.raises((ValueError, TypeError), match=match):
        call(x, rois)


def _pyramid(gen, dtype, sizes):
    return OrderedDict((str(i), torch.randn(2, 3, h, w, generator=gen, dtype=dtype)) for i, (h, w) in enumerate(sizes))


@pytest.mark.parametrize("names,sizes", [(["0"], [(16, 16)]), (["0", "1", "2"], [(32, 32), (16, 16), (8, 8)])])
def test_multiscale_pooler_is_a_drop_in(names, sizes):
    gen = torch.Generator().manual_seed(2)
    feats = _pyramid(gen, torch.float64, sizes)
    feats["unused"] = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    boxes = []
    for _ in range(2):
        xy = torch.rand(20, 2, generator=gen, dtype=torch.float64) * 100
        boxes.append(torch.cat([xy, xy + 4 + torch.rand(20, 2, generator=gen, dtype=torch.float64) * 120], 1))
    shapes = [(128, 128), (120, 128)]
    results = []
    for pooler in (MultiScaleRoIAlign(names, 7, 2), FastMultiScaleRoIAlign(names, 7, 2)):
        x = OrderedDict((k, v.clone().requires_grad_(True)) for k, v in feats.items())
        out = pooler(x, boxes, shapes)
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
        results.append((out.detach(), [x[k].grad for k in names]))
    (ref, ref_grads), (got, got_grads) = results
    torch.testing.assert_close(got, ref, **TOL[torch.float64])
    for g, r in zip(got_grads, ref_grads):
        torch.testing.assert_close(g, r, **TOL[torch.float64])
    assert repr(FastMultiScaleRoIAlign(names, 7, 2)).startswith("FastMultiScaleRoIAlign(featmap_names=")


class _TinyBackbone(torch.nn.Sequential):
    def __init__(self):
        super().__init__(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, 2, 1))
        self.out_channels = 16


def _tiny_detector(pool):
    torch.manual_seed(0)
    return FasterRCNN(
        _TinyBackbone(),
        min_size=64,
        max_size=64,
        rpn_anchor_generator=AnchorGenerator(sizes=((8, 16, 32),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=pool,
        box_head=TwoMLPHead(16 * 7 * 7, 32),
        box_predictor=FastRCNNPredictor(32, 3),
        rpn_post_nms_top_n_train=64,
        box_batch_size_per_image=32,
    )


def test_faster_rcnn_training_losses_and_gradients_match_stock():
    gen = torch.Generator().manual_seed(4)
    images = [torch.rand(3, 64, 64, generator=gen) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[20.0, 10.0, 60.0, 50.0], [0.0, 0.0, 12.0, 12.0]]), "labels": torch.tensor([2, 1])}]
    runs = []
    for pool in (MultiScaleRoIAlign(["0"], 7, 2), FastMultiScaleRoIAlign(["0"], 7, 2)):
        model = _tiny_detector(pool).train()
        torch.manual_seed(1)  # the samplers draw from the global generator
        losses = model(images, targets)
        sum(losses.values()).backward()
        runs.append(({k: v.item() for k, v in losses.items()}, model.backbone[0].weight.grad.clone()))
    (ref_losses, ref_grad), (losses, grad) = runs
    assert losses == pytest.approx(ref_losses, rel=1e-5, abs=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the skip path is what runs without CUDA")
def test_gpu_benchmark_skips_with_a_json_line_without_cuda(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_gpu.py"
    done = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True, check=True, cwd=tmp_path)
    lines = done.stdout.strip().splitlines()
    assert "skipped" in lines[0] and json.loads(lines[-1])["skipped"] is True


@pytest.mark.slow
def test_gpu_benchmark_arms_train_on_cpu():
    """What of bench_train_gpu runs on CPU: its fp32 arms, stock torchvision and labkit at torchvision's box-loss
    settings, one step each from the same weights at 160 px — their first-step losses agree (the fairness check the
    benchmark applies), one comparison is labelled — and the channels_last memory format. Not run here: float16
    autocast and the GradScaler are CUDA-only, so the AMP arms are refused on CPU (asserted) rather than timed, and
    their ratios are not computed; no peak-memory figure exists off CUDA."""
    import importlib.util
    import math
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_train_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    images, targets = bench.synthetic_batch(1, torch.device("cpu"), image_size=160)
    assert all((t["boxes"][:, 2:] <= 160).all() and (t["boxes"][:, 2:] > t["boxes"][:, :2]).all() for t in targets)
    results = bench.run_arms(["stock_fp32", "labkit_fp32"], images, targets, steps=1, warmup=0, image_size=160)
    for arm in results.values():
        assert math.isfinite(arm["last_loss"]) and arm["step_s"] > 0 and arm["peak_memory_gib"] is None
    assert bench.check_same_losses(results["stock_fp32"], results["labkit_fp32"], rtol=1e-5) <= 1e-5
    assert list(bench.comparisons(results)) == ["labkit_vs_stock_fp32"]  # only comparisons whose arms both ran
    doubled = {k: 2 * v for k, v in results["labkit_fp32"]["first_losses"].items()}
    skewed = {**results["labkit_fp32"], "first_losses": doubled}
    with pytest.raises(RuntimeError, match="disagree"):
        bench.check_same_losses(results["stock_fp32"], skewed)
    torch.manual_seed(0)
    model = bench.labkit_model(160)
    with pytest.raises(ValueError, match="need CUDA"):  # what the AMP arms would call
        bench.time_arm(model, images, targets, steps=1, warmup=0, amp=True, channels_last=True)
    arm = bench.time_arm(model, images, targets, steps=1, warmup=0, channels_last=True)
    assert math.isfinite(arm["last_loss"]) and model.backbone.body.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
