"""labkit.experiments.headstudy: jittered RoIs against torchvision's box_iou, cached features against the box head
run again, the fits against an exact minimiser and autograd, the learning-rate rule (Adam's steps do not see the
loss scale λ/α), the argmin / bootstrap / slope analysis on numbers with a known answer, bad input, and the command
end to end in smoke mode."""
import csv
import json
from pathlib import Path
import math
import time
from fractions import Fraction

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure
from scipy import optimize
from torch.nn import functional as F
from torchvision.ops import box_iou

matplotlib.use("Agg")

from labkit.__main__ import main  # noqa: E402
from labkit.detection.data import load_dataset  # noqa: E402
from labkit.detection.localization import pair_errors  # noqa: E402
from labkit.detection.losses import BoxLossConfig, LinearSizeBoxCoder  # noqa: E402
from labkit.detection.model import build_model  # noqa: E402
from labkit.detection.oracle import jitter_boxes  # noqa: E402
from labkit.detection.synthetic import generate_synthetic  # noqa: E402
from labkit.experiments import headstudy as H  # noqa: E402
from labkit.experiments.headstudy import analysis, design, fitting, report, rois, study  # noqa: E402
from labkit.interpret import StageSettings  # noqa: E402
from labkit.losses import huber_grad  # noqa: E402
from labkit.theory import noise as theory_noise  # noqa: E402

SCALES = [Fraction(1, 160), Fraction(1, 20), Fraction(2, 5)]


# --------------------------------------------------------------------------------------------- RoIs and labels
def test_box_errors_are_pair_errors_of_the_decoded_boxes():
    rng = np.random.default_rng(1)
    gt = torch.tensor([[10.0, 20.0, 50.0, 90.0], [5.0, 5.0, 30.0, 25.0]], dtype=torch.float64)
    r = torch.as_tensor(jitter_boxes(gt.numpy(), 3, rng, 160, 160)[0])
    truth = gt.repeat_interleave(3, dim=0)
    predicted = rois.encode(truth, r) + torch.as_tensor(rng.normal(0, 0.1, (6, 4)))
    decoded = LinearSizeBoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(predicted, r)
    xywh = lambda b: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], dim=1).numpy()  # noqa: E731
    expected = pair_errors(xywh(decoded), xywh(truth))
    np.testing.assert_allclose(rois.box_errors(predicted, rois.encode(truth, r), r, truth).numpy(), expected,
                               rtol=1e-9, atol=1e-12)


def test_noisy_labels_share_their_draw_across_noise_levels():
    boxes = np.array([[10.0, 10.0, 50.0, 30.0]] * 4000)
    centre = lambda b: (b[:, 0] + b[:, 2]) / 2  # noqa: E731
    small = rois.noisy_boxes(boxes, design.Condition("laplace", 0.1), seed=3)
    large = rois.noisy_boxes(boxes, design.Condition("laplace", 0.2), seed=3)
    np.testing.assert_allclose(centre(large) - 30, 2 * (centre(small) - 30))  # common random numbers
    assert np.array_equal(rois.noisy_boxes(boxes, design.Condition("laplace", 0.0), seed=3), boxes)
    assert abs(np.mean(np.abs(centre(small) - 30)) / 40 - 0.1) < 0.01  # mean |Laplace(b)| = b, in box widths
    gauss = rois.noisy_boxes(boxes, design.Condition("gaussian", 0.1), seed=3)
    assert abs(np.std(centre(gauss) - 30) / 40 - math.sqrt(2) * 0.1) < 0.01  # the variance of Laplace(0.1)
    moved = rois.noisy_boxes(boxes, design.Condition("outliers", 0.5, 0.1), seed=3)
    shift = np.hypot((centre(moved) - 30) / 40, ((moved[:, 1] + moved[:, 3]) / 2 - 20) / 20)
    assert abs(np.mean(shift > 0) - 0.1) < 0.02 and np.allclose(shift[shift > 0], 0.5)


# --------------------------------------------------------------------------------------------- features
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return generate_synthetic(tmp_path_factory.mktemp("data"), n_train=3, n_val=2, image_size=64, workers=1)


def test_cached_features_equal_the_box_head_run_again(tiny_data, tmp_path):
    torch.manual_seed(0)
    model = build_model("lab", 6, image_size=64).eval()
    scale = design.HEAD_SCALES["smoke"]
    checkpoint = tmp_path / "weights.pt"
    torch.save(model.state_dict(), checkpoint)
    sets, reused = study.roi_sets(model, tiny_data, scale, checkpoint, tmp_path / "features.pt")
    again, reused_again = study.roi_sets(model, tiny_data, scale, checkpoint, tmp_path / "features.pt")
    assert not reused and reused_again
    assert all(torch.equal(a, b) for a, b in zip(sets["train"].to_dict().values(), again["train"].to_dict().values()))
    dataset = load_dataset(tiny_data, "train")
    for i in range(len(dataset)):  # one image at a time, through torchvision's own TwoMLPHead.forward
        image, _ = dataset[i]
        mine = sets["train"].image == i
        with torch.no_grad():
            batch, _ = model.transform([image])
            features = {"0": model.backbone(batch.tensors)}
            pooled = model.roi_heads.box_roi_pool(features, [sets["train"].rois[mine]], batch.image_sizes)
            head = model.roi_heads.box_head(pooled)
        torch.testing.assert_close(sets["train"].head[mine], head, rtol=1e-5, atol=1e-6)
    torch.save({"other": 1}, checkpoint)  # another reference: the cache is drawn again
    assert not study.roi_sets(model, tiny_data, scale, checkpoint, tmp_path / "features.pt")[1]


# --------------------------------------------------------------------------------------------- fitting
def _problem(n=600, d=6, classes=2, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.randint(1, classes + 1, (n,), generator=g)
    w = torch.randn(classes + 1, d, 4, generator=g, dtype=torch.float64) * 0.05
    t = torch.einsum("nd,ndj->nj", x, w[labels]) + 0.02
    t = t + noise * torch.distributions.Laplace(0.0, 1.0).sample(t.shape).to(t.dtype)
    return x, labels, t


def test_noise_free_fit_of_the_last_layer_drives_the_error_to_zero():
    x, labels, t = _problem()
    configs = [design.head_loss(s) for s in SCALES]
    fit = fitting.fit_linear(x, labels, t[None], configs, steps=400, lr=0.05, num_classes=2)
    assert fit.predict(x, labels).sub(t).abs().max() < 1e-4  # every α, from 1/160 to 2/5


def test_last_layer_fit_reaches_the_exact_minimiser():
    torch.manual_seed(0)
    x, labels, t = _problem(noise=0.05)
    for s in SCALES:
        config = design.head_loss(s)
        fit = fitting.fit_linear(x, labels, t[None], [config], steps=600, lr=0.05, num_classes=2)
        lam, alpha, sigma = (float(v) for v in (config.settings.lam, config.settings.alpha, config.settings.sigma_x))
        design_matrix = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)

        def objective(flat):  # λ·smooth_l1(β = α) = (λ/α)·H_α (eq. 37), torch's own loss as the reference
            leaf = torch.tensor(flat, requires_grad=True)
            w = leaf.view(3, -1, 4)
            loss = lam * F.smooth_l1_loss(torch.einsum("nd,ndj->nj", design_matrix, w[labels]), t / sigma,
                                          beta=alpha, reduction="sum") / len(x)
            loss.backward()
            return loss.item(), leaf.grad.numpy().astype(np.float64)

        exact = optimize.minimize(objective, np.zeros(3 * 7 * 4), jac=True, method="L-BFGS-B",
                                  options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})
        assert fit.loss[0].item() <= exact.fun * (1 + 1e-3) + 1e-9, s


def test_closed_form_gradient_equals_autograd_of_the_box_loss():
    residual = torch.randn(50, 2, len(SCALES), 4, dtype=torch.float64, requires_grad=True)
    configs = [design.head_loss(s) for s in SCALES]
    fitting.arm_losses(residual, configs).sum().backward()
    coefficient, alpha = fitting.huber_slopes(configs)
    torch.testing.assert_close(residual.grad, huber_grad(residual.detach(), alpha.double()) * coefficient.double())


def _scaled(config: BoxLossConfig, factor: int) -> BoxLossConfig:
    s = config.settings
    return BoxLossConfig(StageSettings(s.lam * factor, s.alpha, *s.sigmas), config.form, config.size_target)


def test_adam_steps_do_not_see_the_loss_scale():
    """The learning-rate rule: multiplying an arm's loss by 1000 (λ → 1000λ, so λ/α too) changes no step."""
    x, labels, t = _problem(noise=0.05)
    x, t = x.float(), t.float()
    configs = [design.head_loss(s) for s in SCALES]
    louder = [_scaled(c, 1000) for c in configs]
    a = fitting.fit_linear(x, labels, t[None], configs, steps=50, lr=0.05, num_classes=2)
    b = fitting.fit_linear(x, labels, t[None], louder, steps=50, lr=0.05, num_classes=2)
    torch.testing.assert_close(a.weight, b.weight, rtol=1e-4, atol=1e-5)
    m = fitting.fit_mlp(x, labels, t[None], configs, [0], epochs=2, batch=100, lr=1e-3, num_classes=2, hidden=8)
    n = fitting.fit_mlp(x, labels, t[None], louder, [0], epochs=2, batch=100, lr=1e-3, num_classes=2, hidden=8)
    torch.testing.assert_close(m.w1, n.w1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m.predict(x, labels), n.predict(x, labels), rtol=1e-4, atol=1e-5)


def test_batched_arms_equal_separate_fits():
    x, labels, t = _problem(noise=0.05)
    targets = torch.stack([t, t.flip(0)])
    configs = [design.head_loss(s) for s in SCALES]
    both = fitting.fit_linear(x, labels, targets, configs, steps=30, lr=0.05, num_classes=2).predict(x, labels)
    mlp = fitting.fit_mlp(x.float(), labels, targets.float(), configs, [4, 5], 1, 64, 1e-3, 2, hidden=8)
    for s in range(2):
        for a, c in enumerate(configs):
            alone = fitting.fit_linear(x, labels, targets[s:s + 1], [c], steps=30, lr=0.05, num_classes=2)
            torch.testing.assert_close(both[s * len(configs) + a], alone.predict(x, labels)[0])
            one = fitting.fit_mlp(x.float(), labels, targets[s:s + 1].float(), [c], [4 + s], 1, 64, 1e-3, 2, hidden=8)
            torch.testing.assert_close(mlp.predict(x.float(), labels)[s * len(configs) + a],
                                       one.predict(x.float(), labels)[0], rtol=1e-4, atol=1e-5)


def test_detector_weights_predict_what_the_fit_predicts():
    x, labels, t = _problem(noise=0.05)
    x, t = x.float(), t.float()
    fit = fitting.fit_linear(x, labels, t[None], [design.head_loss(s) for s in SCALES], 40, 0.05, 2)
    coder = (10.0, 10.0, 5.0, 5.0)
    weight, bias = fit.detector_weights(1, coder)
    deltas = (x @ weight.T + bias).view(len(x), 3, 4)[torch.arange(len(x)), labels] / torch.tensor(coder)
    torch.testing.assert_close(deltas, fit.predict(x, labels)[1], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------- analysis
GRID = [float(s) for s in design.label_scale_grid(Fraction(1, 160), Fraction(2, 5), 10)]


def _curves(best: float, seeds: int = 20, jitter: float = 0.002, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = np.log(GRID)
    return (u - math.log(best)) ** 2 * 0.01 + 0.05 + rng.normal(0, jitter, (seeds, 1))  # a seed shifts its curve


def test_argmin_of_a_parabola_in_log_scale_is_its_vertex():
    for best in (0.013, 0.05, 0.2):
        assert analysis.argmin_scale(GRID, _curves(best).mean(0))["label_scale"] == pytest.approx(best, rel=1e-9)
    assert analysis.argmin_scale(GRID, _curves(1.0).mean(0)) == {"label_scale": 0.4, "grid_index": 9, "at_edge": True}


def test_bootstrap_interval_covers_the_known_argmin():
    rng = np.random.default_rng(2)
    errors = _curves(0.05) + rng.normal(0, 0.0005, (20, len(GRID)))
    result = analysis.bootstrap_argmin(GRID, errors, n_boot=500)
    assert result["low"] < 0.05 < result["high"] and result["high"] / result["low"] < 2
    assert result["at_lower_edge"] == 0 and result["n_seeds"] == 20


@pytest.mark.parametrize("power", [1.0, 0.0, 0.5])
def test_slope_recovers_the_known_power(power):
    levels = [0.05, 0.1, 0.2, 0.4]
    rng = np.random.default_rng(3)
    errors = np.stack([_curves(0.3 * b**power / 0.4**power * 0.5) + rng.normal(0, 2e-4, (20, len(GRID)))
                       for b in levels])
    result = analysis.bootstrap_slope(levels, GRID, errors, n_boot=300)
    assert result["slope"] == pytest.approx(power, abs=0.05)
    assert result["low"] <= power <= result["high"] and result["censored"] == 0


def test_paper_band_and_theory():
    assert analysis.paper_band(0.1) == (0.1, 0.2)
    gaussian = analysis.theory_optimum(design.Condition("gaussian", 0.1), sigma=0.02, b=0.01)
    assert gaussian["boundary"] == "upper"  # nearly Gaussian errors: the mean (α → ∞) is best
    laplace = analysis.theory_optimum(design.Condition("laplace", 0.2), sigma=0.02, b=0.01)
    assert laplace["boundary"] is None and 0.001 < laplace["label_scale"] < 0.2
    assert analysis.theory_optimum(design.Condition("outliers", 0.5, 0.1), 0.02, 0.01)["label_scale"] is None


def test_gaussian_plus_laplace_fit_recovers_its_parameters():
    sample = theory_noise.sample("gaussian+laplace", {"sigma": 0.03, "b": 0.05}, 20000, np.random.default_rng(4))
    fit = analysis.fit_gaussian_laplace(sample)
    assert fit["sigma"] == pytest.approx(0.03, rel=0.15) and fit["b"] == pytest.approx(0.05, rel=0.1)


# --------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, name", [
    (lambda: design.Condition("uniform", 0.1), "kind"),
    (lambda: design.Condition("laplace", -0.1), "scale"),
    (lambda: design.label_scale_grid(Fraction(1, 10), Fraction(1, 160), 4), "count"),
    (lambda: design.resolve_head_scale("coco"), "scale"),
    (lambda: fitting.fit_linear(torch.zeros(5, 3), torch.ones(5, dtype=torch.long), torch.zeros(5, 4),
                                [design.head_loss(Fraction(1, 40))], 10, 0.1, 2), "targets"),
    (lambda: fitting.fit_linear(torch.zeros(5, 3), torch.ones(5, dtype=torch.long), torch.zeros(1, 5, 4),
                                [], 10, 0.1, 2), "configs"),
    (lambda: analysis.bootstrap_argmin(GRID, np.zeros((1, len(GRID)))), "errors"),
    (lambda: analysis.bootstrap_slope([0.1], GRID, np.zeros((1, 3, len(GRID)))), "noise_levels"),
    (lambda: analysis.argmin_scale([0.2, 0.1], [1.0, 2.0]), "label_scales"),
    (lambda: study.run_head_study("smoke", seeds=1, out="/nonexistent"), "seeds"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_cli_refuses_scales_the_head_study_lacks(capsys):
    with pytest.raises(SystemExit, match="head-study runs at --scale smoke or lab"):
        main(["experiment", "head-study", "--scale", "coco"])


# --------------------------------------------------------------------------------------------- end to end (smoke)
@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("head-study")
    tic = time.perf_counter()
    assert main(["experiment", "head-study", "--scale", "smoke", "--device", "cpu", "--threads", "1",
                 "--out", str(out)]) == 0
    return out, time.perf_counter() - tic


def test_smoke_writes_every_result_file(smoke):
    out, seconds = smoke
    print(f"head-study smoke: {seconds:.1f} s")
    scale = design.HEAD_SCALES["smoke"]
    results = json.loads((out / "results.json").read_text())
    with open(out / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    n_cells = len(design.SETTINGS) * len(scale.conditions) * len(scale.label_scales)
    assert tuple(runs[0]) == report.RUN_COLUMNS and len(runs) == n_cells * scale.seeds
    assert all(0 <= float(r["val_err"]) < 5 for r in runs)
    with open(out / "summary.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == n_cells
    for setting in design.SETTINGS:
        assert set(results["analysis"][setting]["argmin"]) == {c.name for c in scale.conditions}
        assert results["analysis"][setting]["slope"]["low"] <= results["analysis"][setting]["slope"]["high"]
        assert results["verdict"][setting].startswith("Slope of log argmin")
    assert results["provenance"]["git_commit"] and results["reference"]["metrics"]["AP75"] is not None
    noisy = [c.name for c in scale.conditions if c.kind == "laplace" and c.scale > 0]
    assert [c["condition"] for c in results["convergence"]] == noisy
    assert all(c["steps"] == [scale.linear_steps, 3 * scale.linear_steps] for c in results["convergence"])
    assert len(results["ap75"]) == 1 and (out / "head_study.png").stat().st_size > 0
    assert set(results["timings"]) >= {"reference", "features", "a_linear", "b_mlp", "total"}


def test_smoke_reuses_the_reference_and_the_feature_cache(smoke):
    out, _ = smoke
    first = json.loads((out / "results.json").read_text())
    # reuse="any": a commit made while the tests run must not turn this into a retraining
    again = study.run_head_study("smoke", out=out, device="cpu", reuse="any", progress=False)
    assert again["reference"]["reused"] and again["rois"]["cached"]
    assert again["timings"]["reference"] < first["reference"]["train_seconds"] + first["timings"]["reference"]
    np.testing.assert_allclose([r["val_err"] for r in again["runs"]], [r["val_err"] for r in first["runs"]],
                               rtol=1e-5)


def test_plots_take_an_axes_and_return_its_figure(smoke):
    out, _ = smoke
    results = json.loads((out / "results.json").read_text())
    ax = Figure().subplots()
    assert H.plot_head_study(results, ax=ax) is ax.figure and ax.get_yscale() == "log"
    fig = H.plot_error_curves(results, "b_mlp")
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="setting"):
        H.plot_error_curves(results, "c")


def _argmin_entry(kind, noise, best, low, high, theory=None):
    return {"kind": kind, "label_noise": noise, "label_scale": best, "low": low, "high": high,
            "paper_band": [noise, 2 * noise], "theory": {"range": theory}}


@pytest.mark.parametrize("low, high, phrase", [
    (0.9, 1.1, "proportional to b₁"), (0.6, 0.8, "less than proportionally"), (-0.2, 0.3, "includes 0"),
    (-0.9, -0.5, "falls as b₁ grows"), (1.2, 1.5, "faster than b₁")])
def test_verdict_follows_the_numbers(low, high, phrase):
    argmins = {"b0": _argmin_entry("laplace", 0.0, 0.02, 0.018, 0.022, [0.005, 0.017]),
               "b0.1": _argmin_entry("laplace", 0.1, 0.12, 0.11, 0.13, [0.005, 0.016]),
               "b0.2": _argmin_entry("laplace", 0.2, 0.15, 0.14, 0.16, None),
               "gauss0.1": _argmin_entry("gaussian", 0.1, 0.24, 0.23, 0.25)}
    slope = {"slope": (low + high) / 2, "low": low, "high": high, "n_seeds": 20, "censored": 0.0}
    text = report.verdict({"argmin": argmins, "slope": slope}, GRID)
    assert phrase in text and "Argmin / b₁ = 1.20, 0.75" in text
    assert "band [b₁, 2b₁] at 1 of 2 noise levels (b0.1)" in text and "range" in text and "at 0 of 1" in text
    assert "Clean labels: argmin 0.02 [0.018, 0.022] (theory 0.005–0.017)" in text and "Control gauss0.1" in text


# ---------------------------------------------------------------------------------------------- end to end corners
def test_corner_effects_by_hand():
    from labkit.experiments.headstudy.endtoend import corner_effects
    from labkit.experiments.results import Results

    value = {(0.0, "1/40"): 0.10, (0.0, "1/5"): 0.11, (0.2, "1/40"): 0.20, (0.2, "1/5"): 0.18}
    rows = tuple({"arm": f"{b}-{ls}", "seed": s, "status": "ok", "label_noise": b, "label_scale": ls,
                  "oracle_loc_err": v + 0.01 * s} for (b, ls), v in value.items() for s in range(4))
    res = Results(experiment={"name": "head-study-corners", "title": "t", "paper": None}, scale={"name": "lab"},
                  provenance={}, rows=rows, summary=())
    at0, at2, inter = corner_effects(res)
    assert at0["difference"].mean == pytest.approx(0.01) and at2["difference"].mean == pytest.approx(-0.02)
    assert inter["difference"].mean == pytest.approx(-0.03) and inter["comparisons"] == 3
    assert inter["better"] == "arm"  # an error metric going down under noise: the direction eq. 42 predicts


def test_corners_fine_tune_the_reference_end_to_end(tmp_path, capsys):
    from labkit.experiments.headstudy.endtoend import CORNER_NOISES, CORNER_SCALES, FINETUNE

    assert main(["experiment", "head-study-corners", "--scale", "smoke", "--device", "cpu", "--threads", "1",
                 "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "End to end, oracle_loc_err" in printed and "interaction" in printed
    with open(tmp_path / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    seeds = FINETUNE["smoke"]["seeds"]
    assert len(runs) == len(CORNER_NOISES) * len(CORNER_SCALES) * seeds
    reference = tmp_path / "runs" / "reference" / "checkpoints"
    for row in runs:
        config = json.loads((Path(row["run_dir"]) / "config.json").read_text())
        assert Path(config["weights"]).parent == reference  # every run starts from the clean reference
        assert config["box_losses"]["detection"]["size_target"] == "linear"
        noisy = float(row["label_noise"]) > 0
        assert ("_seed" in config["data"]) == noisy  # noise drawn per seed; clean arms share one dataset
    with pytest.raises(SystemExit, match="runs at --scale smoke or lab"):
        main(["experiment", "head-study-corners", "--scale", "coco"])


def test_committed_corners_are_what_the_readme_and_notebook_say():
    from labkit import PROJECT_ROOT
    from labkit.experiments import load_results
    from labkit.experiments.headstudy.display import corners_table
    from labkit.experiments.headstudy.endtoend import corner_effects

    results = load_results(PROJECT_ROOT / "results" / "head-study-corners-lab")
    readme = (PROJECT_ROOT / "results" / "README.md").read_text()
    said = " ".join(readme.split())
    assert {(r["git_commit"][:7], r["git_dirty"]) for r in results.rows} == {("cb12935", False)}
    assert len({r["seed"] for r in results.rows}) >= 5 and "At commit cb12935 (clean" in said
    for metric in ("oracle_loc_err", "loc_err", "AP75"):
        for line in corners_table(results, metric).to_markdown().splitlines():
            assert line in readme
    at0, at2, inter = corner_effects(results, "oracle_loc_err")
    assert at0["better"] == "reference" and at2["better"] == "unresolved" and inter["better"] == "arm"
    notebook = (PROJECT_ROOT / "notebooks" / "07_does_alpha_track_noise.ipynb").read_text()
    assert f"by ${at0['difference'].mean:.4f}$" in notebook and f"${inter['difference'].mean:+.4f}$" in notebook


# ---------------------------------------------------------------------------------------------- notebook 07's tables
def _committed_head_study_from_csv():
    """Per (setting, condition), read from results/head-study-lab's CSV files alone: the label scales in grid order,
    the seed-mean error at each (summary.csv), the seeds, and the condition's noise kind and b₁ (runs.csv)."""
    from labkit import PROJECT_ROOT

    folder = PROJECT_ROOT / "results" / "head-study-lab"
    with open(folder / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    with open(folder / "runs.csv", newline="") as f:
        noise = {(r["setting"], r["condition"]): (r["kind"], float(r["label_noise"])) for r in csv.DictReader(f)}
    cells = {}
    for r in summary:
        cell = cells.setdefault((r["setting"], r["condition"]), {"scales": [], "means": [], "seeds": set()})
        cell["scales"].append(Fraction(r["label_scale"]))
        cell["means"].append(float(r["val_err_mean"]))
        cell["seeds"].add(int(r["n_seeds"]))
    for key, cell in cells.items():
        order = np.argsort([float(s) for s in cell["scales"]])
        cell["scales"] = np.array([float(cell["scales"][i]) for i in order])
        cell["means"] = np.array(cell["means"])[order]
        cell["kind"], cell["noise"] = noise[key]
    return folder, cells


def _refined_argmin(scales: np.ndarray, means: np.ndarray) -> tuple[float, bool]:
    """The grid argmin of a mean-error curve refined by the vertex of the parabola (np.polyfit) through it and its
    neighbours in log α·σ, kept between them; at an end of the grid that end. (best α·σ, at an end?)"""
    i = int(np.argmin(means))
    if i in (0, len(means) - 1):
        return float(scales[i]), True
    u = np.log(scales[i - 1:i + 2])
    a, b, _ = np.polyfit(u, means[i - 1:i + 2], 2)
    vertex = -b / (2 * a) if a > 0 else u[1]
    return float(np.exp(np.clip(vertex, u[0], u[2]))), False


def test_head_study_tables_hold_what_the_committed_csv_files_say():
    """Notebook 07's argmin and slope tables, fed the committed results.json, against numbers recomputed here from
    runs.csv and summary.csv: the best α·σ per cell (the refined argmin of the seed-mean curve), whether it is at a
    grid end, the paper's band [b₁, 2b₁], the seeds, and the least-squares slope of log best α·σ against log b₁."""
    folder, cells = _committed_head_study_from_csv()
    results = json.loads((folder / "results.json").read_text())
    table = H.argmin_table(results)
    assert [row[:2] for row in table.rows] == list(cells)  # every (setting, condition) once, in the files' order
    best = {}
    for setting, condition, shown, interval, band, theory, at_edge in table.rows:
        cell = cells[(setting, condition)]
        best[(setting, condition)], edge = _refined_argmin(cell["scales"], cell["means"])
        assert float(shown) == pytest.approx(best[(setting, condition)], abs=5e-5 + 1e-12), (setting, condition)
        assert at_edge == str(edge)
        low, high = (float(x) for x in interval.strip("[]").split(","))
        assert cell["scales"][0] <= low <= high <= cell["scales"][-1]
        b = cell["noise"]
        assert band == (f"[{b:g}, {2 * b:g}]" if cell["kind"] == "laplace" else "–")
        assert theory == "–" or theory.count("–") == 1
    slopes = H.slope_table(results)
    assert [row[0] for row in slopes.rows] == list(dict.fromkeys(s for s, _ in cells))
    for setting, slope, interval, familywise, censored, seeds in slopes.rows:
        noisy = [(c["noise"], best[key]) for key, c in cells.items()
                 if key[0] == setting and c["kind"] == "laplace" and c["noise"] > 0]
        fitted = np.polyfit(np.log([b for b, _ in noisy]), np.log([a for _, a in noisy]), 1)[0]
        assert float(slope) == pytest.approx(fitted, abs=0.005 + 1e-12), setting
        low, high = (float(x) for x in interval.strip("[]").split(","))
        fw_low, fw_high = (float(x) for x in familywise.strip("[]").split(","))
        assert fw_low <= low <= high <= fw_high  # the family-wise interval (97.5 %) holds the 95 % one
        assert censored.endswith("%") and 0 <= int(censored[:-1]) <= 100
        assert {int(seeds)} == set().union(*(c["seeds"] for key, c in cells.items() if key[0] == setting))


def test_theory_tables_against_closed_forms():
    """Under pure Laplace noise (b = 1) Huber's V(α) = (2 − 2(α + 1)e^{−α})/(1 − e^{−α})² (ψ clipped at α): the
    optimum table's cost of the rule is V(1)/V(smallest α searched), and the finite-p/n table's V column is V(α)."""
    from labkit.theory import variance_curves

    def v(a: float) -> float:
        return (2 - 2 * (a + 1) * math.exp(-a)) / (1 - math.exp(-a)) ** 2

    (row,) = H.theory_optimum_table(variance_curves((0.0,), [0.05, 0.5, 5.0])).rows
    assert row[0] == "0" and row[1] == "0.05 (α → 0)" and float(row[3]) == pytest.approx(v(1) / v(0.05), abs=6e-4)
    table = H.finite_p_table(n=40, reps=3, ps=(2,), alphas=(0.5, 2.0))
    assert table.title == "Huber under Laplace noise, n = 40, 3 replications"
    assert [(r[0], r[1]) for r in table.rows] == [("0.05", "0.5"), ("0.05", "2")]
    assert [float(r[4]) for r in table.rows] == pytest.approx([v(0.5), v(2.0)], abs=6e-4)
