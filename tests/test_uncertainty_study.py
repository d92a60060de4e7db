"""labkit.experiments.uncertaintystudy: the fits against the head study's setting (b) and against separate fits, a
learned scale recovering a known heteroscedastic noise, the kept and voted boxes against torchvision / labkit's own
variance voting, the head put back into the detector against the fit's own predictions, the per-seed noise draws,
bad input, and the command end to end in smoke mode."""
import csv
import json
import math

import matplotlib
import numpy as np
import pytest
import torch
from scipy import stats

matplotlib.use("Agg")

from labkit.__main__ import main  # noqa: E402
from labkit.detection.data import load_dataset  # noqa: E402
from labkit.detection.losses import LinearSizeBoxCoder  # noqa: E402
from labkit.detection.synthetic import (CONTRAST_KEY, CONTRAST_RANGE, NOISE_SCALE_KEY,  # noqa: E402
                                        generate_synthetic, noise_scales)
from labkit.detection.uncertainty import LAPLACE_NLL, variance_voting  # noqa: E402
from labkit.experiments.analysis import paired_difference  # noqa: E402
from labkit.experiments.headstudy.fitting import fit_mlp  # noqa: E402
from labkit.experiments.headstudy.reference import load_frozen, pool_features  # noqa: E402
from labkit.experiments.uncertaintystudy import design, detector, evaluation, report, study  # noqa: E402
from labkit.experiments.uncertaintystudy.fitting import fit_scale_heads  # noqa: E402
from labkit.interpret import PRESETS, uncertainty_scales  # noqa: E402

ARMS = {a.name: a for a in design.ARMS}


# ------------------------------------------------------------------------------------------------------ design
def test_a_fixed_arm_starts_and_stays_at_its_stage_prediction_scale():
    for name in ("fixed-implemented", "fixed-proposed"):
        arm = ARMS[name]
        stage = PRESETS[arm.preset].detection
        _, prediction = uncertainty_scales(stage.lam, stage.alpha, 1, form=PRESETS[arm.preset].form)
        assert math.isclose(arm.start_log_scale, math.log(float(prediction)))
        assert arm.box_loss.box_coder_weights == tuple(1 / float(s) for s in stage.sigmas)


@pytest.mark.parametrize("call, name", [
    (lambda: design.Arm("x", "x", "implemented", "huber"), "loss"),
    (lambda: design.Arm("x", "x", "nonsense", "fixed"), "preset"),
    (lambda: design.NoiseCondition("sometimes", 0.1), "model"),
    (lambda: design.NoiseCondition("homoscedastic", 0.0), "b1"),
    (lambda: design.resolve_uncertainty_scale("huge"), "scale"),
    (lambda: study.check_seeds(1, design.UNCERTAINTY_SCALES["smoke"]), "seeds"),
    (lambda: paired_difference({0: 1.0}, {0: 1.0}, "x", 0), "comparisons"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_cli_refuses_a_scale_the_study_lacks():
    with pytest.raises(SystemExit, match="uncertainty runs at --scale smoke or lab"):
        main(["experiment", "uncertainty", "--scale", "coco"])


# ----------------------------------------------------------------------------------------------------- fitting
def _problem(n=600, d=12, classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(n, d, generator=g))
    labels = torch.randint(1, classes + 1, (n,), generator=g)
    truth = x[:, :4] * 0.05 - 0.02
    noise = torch.distributions.Laplace(0.0, 1.0).sample((2, n, 4)) * 0.02
    return x, labels, truth + noise


def test_a_fixed_arm_fits_what_the_head_studys_setting_b_fits():
    x, labels, targets = _problem()
    arm = ARMS["fixed-implemented"]
    ours = fit_scale_heads(x, labels, targets, [arm], [3, 4], epochs=3, batch=64, lr=3e-3, num_classes=2, hidden=16)
    theirs = fit_mlp(x, labels, targets, [arm.box_loss], [3, 4], epochs=3, batch=64, lr=3e-3, num_classes=2,
                     hidden=16)
    mu, scale = ours.predict(x, labels)
    torch.testing.assert_close(mu, theirs.predict(x, labels), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.loss, theirs.loss, rtol=1e-5, atol=1e-7)
    # the scale output of a fixed arm never moves: the stage's prediction scale, times σ
    expected = math.exp(arm.start_log_scale) / torch.tensor(arm.box_loss.box_coder_weights)
    torch.testing.assert_close(scale, expected.expand_as(scale), rtol=1e-6, atol=0)


def test_arms_in_one_batch_equal_separate_fits():
    x, labels, targets = _problem(seed=1)
    arms = [ARMS["learned-kl"], ARMS["fixed-proposed"], ARMS["gaussian-kl-loss"]]
    kwargs = dict(epochs=2, batch=50, lr=2e-3, num_classes=2, hidden=8)
    both = fit_scale_heads(x, labels, targets, arms, [5, 6], **kwargs)
    mu, scale = both.predict(x, labels)
    for a, arm in enumerate(arms):
        alone = fit_scale_heads(x, labels, targets, [arm], [5, 6], **kwargs)
        mu_a, scale_a = alone.predict(x, labels)
        torch.testing.assert_close(mu[a::len(arms)], mu_a, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(scale[a::len(arms)], scale_a, rtol=1e-4, atol=1e-6)


def test_a_learned_laplace_scale_recovers_a_known_heteroscedastic_noise():
    # targets: a linear function plus Laplace noise whose scale b(x) = 0.01·e^{x₀} the features reveal
    g = torch.Generator().manual_seed(0)
    n = 4000
    x = torch.rand(n, 6, generator=g) * 2
    b = 0.01 * torch.exp(x[:, 0])
    noise = torch.distributions.Laplace(0.0, 1.0).sample((1, n, 4)) * b[None, :, None]
    targets = (x[:, 1:5] * 0.02)[None] + noise
    labels = torch.ones(n, dtype=torch.long)
    arm = design.Arm("nll", "nll", "implemented", LAPLACE_NLL)
    fit = fit_scale_heads(x, labels, targets, [arm], [0], epochs=40, batch=200, lr=1e-2, num_classes=1, hidden=32)
    _, scale = fit.predict(x, labels)
    predicted = scale[0].mean(1)
    assert stats.spearmanr(predicted, b).statistic > 0.9
    ratio = float((predicted / b).median())
    assert 0.8 < ratio < 1.25, ratio


# -------------------------------------------------------------------------------------------------- evaluation
def test_kept_index_is_each_boxs_best_scoring_candidate():
    scores = torch.tensor([0.2, 0.9, 0.5, 0.1, 0.7, 0.6])
    owner = torch.tensor([0, 0, 1, 1, 2, 2])
    assert evaluation.kept_index(scores, owner, 3).tolist() == [1, 2, 4]
    with pytest.raises(ValueError, match="candidate"):
        evaluation.kept_index(scores, owner, 4)


def test_voting_across_images_equals_voting_image_by_image():
    g = torch.Generator().manual_seed(2)
    base = torch.tensor([[10.0, 10.0, 50.0, 40.0], [60.0, 20.0, 100.0, 90.0]])
    boxes = torch.cat([base.repeat(3, 1) + torch.randn(6, 4, generator=g)] * 2).to(torch.float64)
    scales = (torch.rand(12, 4, generator=g) + 0.2).to(torch.float64)
    labels = torch.tensor([1, 2] * 6)
    image = torch.tensor([0] * 6 + [1] * 6)
    kept = torch.tensor([0, 1, 6, 7])
    voted = evaluation.vote(evaluation.Candidates(boxes, scales), labels, image, kept)
    for img in (0, 1):
        rows = slice(6 * img, 6 * img + 6)
        expected = variance_voting(boxes[kept[2 * img:2 * img + 2]], labels[kept[2 * img:2 * img + 2]], boxes[rows],
                                   labels[rows], scales[rows], 0.02)
        torch.testing.assert_close(voted[2 * img:2 * img + 2], expected)


def test_score_boxes_by_hand():
    truth = torch.tensor([[0.0, 0.0, 10.0, 20.0], [10.0, 10.0, 30.0, 20.0]], dtype=torch.float64)
    predicted = truth.clone()
    predicted[:, [0, 2]] += torch.tensor([1.0, 2.0], dtype=torch.float64)[:, None]  # cx moved 0.1·w for both
    scales = torch.full((2, 4), 1e-3, dtype=torch.float64)
    out = evaluation.score_boxes(predicted, scales, truth, truth, np.array([0.1, 0.1]), "laplace")
    assert math.isclose(out["loc_err"], 0.1 / 4)
    assert math.isnan(out["unc_rank_correlation"])  # one injected scale for every box: no ranks
    np.testing.assert_allclose(out["relative_scales"], [np.mean([1e-4, 5e-5, 1e-4, 5e-5]),
                                                         np.mean([5e-5, 1e-4, 5e-5, 1e-4])], rtol=1e-5)


def test_noise_is_fresh_per_seed_and_common_across_scales():
    boxes = np.array([[10.0, 10.0, 50.0, 30.0], [0.0, 5.0, 20.0, 45.0]])
    a = study.noisy_labels(boxes, np.array([0.1, 0.1]), 0, study.TRAIN_STREAM)
    b = study.noisy_labels(boxes, np.array([0.2, 0.3]), 0, study.TRAIN_STREAM)
    c = study.noisy_labels(boxes, np.array([0.1, 0.1]), 1, study.TRAIN_STREAM)
    assert not torch.allclose(a, c)

    def offsets(x):
        return torch.cat([(x[:, :2] + x[:, 2:]) / 2, x[:, 2:] - x[:, :2]], 1)

    clean = offsets(torch.as_tensor(boxes))
    ratio = (offsets(b) - clean) / (offsets(a) - clean)
    torch.testing.assert_close(ratio, torch.tensor([[2.0] * 4, [3.0] * 4], dtype=torch.float64))


# --------------------------------------------------------------------------------------- data and the detector
@pytest.fixture(scope="module")
def contrast_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("contrast")
    generate_synthetic(root, n_train=3, n_val=3, image_size=64, seed=1, label_noise=0.1,
                       label_noise_model="heteroscedastic", workers=1)
    return root


def test_annotations_carry_the_contrast_that_sets_the_noise_scale(contrast_data):
    dataset = load_dataset(contrast_data, "val")
    contrast, scale = dataset.box_extra(CONTRAST_KEY), dataset.box_extra(NOISE_SCALE_KEY)
    assert len(contrast) == sum(len(dataset[i][1]["boxes"]) for i in range(len(dataset))) > 0
    assert ((contrast >= CONTRAST_RANGE[0]) & (contrast <= CONTRAST_RANGE[1])).all()
    np.testing.assert_allclose(scale, noise_scales(contrast, 0.1, "heteroscedastic"), atol=2e-6)
    with pytest.raises(ValueError, match="key"):
        dataset.box_extra("colour")


def test_the_installed_head_predicts_what_the_fit_predicts(smoke):
    out, _ = smoke
    data = out / "runs" / "data"
    val = load_dataset(data, "val")
    num_classes = len(val.categories) + 1
    model = detector.scale_detector(out / "runs" / "reference", num_classes)
    images = [val[i][0] for i in range(2)]
    boxes = [val[i][1]["boxes"] for i in range(2)]
    labels = torch.cat([val[i][1]["labels"] for i in range(2)])
    reference = load_frozen(out / "runs" / "reference", num_classes)
    feats = pool_features(reference, images, boxes)
    rois = torch.cat(boxes)
    arms = [ARMS["fixed-proposed"], ARMS["learned-kl"]]
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(1, len(rois), 4, generator=g) * 0.05
    fit = fit_scale_heads(feats["fc6"], labels, targets, arms, [0], epochs=2, batch=2, lr=1e-2,
                          num_classes=num_classes - 1, hidden=feats["head"].shape[1])
    mu, scale = fit.predict(feats["fc6"], labels)
    heads = model.roi_heads
    with torch.no_grad():
        reference_logits = reference.roi_heads.box_predictor.cls_score(feats["head"])
    for m in range(len(arms)):
        detector.install_head(model, fit, m, voting=False)
        with torch.no_grad():
            logits, deltas, log_scale = heads.box_predictor(heads.box_head.fc7(feats["fc6"]).relu())
        # the classifier still reads the reference's own fc7: scores and labels are the reference's
        torch.testing.assert_close(logits, reference_logits)
        index = labels[:, None] * 4 + torch.arange(4)
        decoded = heads.box_coder.decode(deltas, [rois]).reshape(len(rois), -1, 4)[torch.arange(len(rois)), labels]
        expected = LinearSizeBoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(mu[m], rois)
        torch.testing.assert_close(decoded, expected, rtol=1e-4, atol=1e-3)
        pixel = heads.pixel_scales(log_scale.exp().reshape(len(rois), -1, 4), None, rois)
        size = torch.cat([rois[:, 2:] - rois[:, :2]] * 2, 1)
        torch.testing.assert_close(pixel.reshape(len(rois), -1)[torch.arange(len(rois))[:, None], index],
                                   scale[m] * size, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ end to end (smoke)
@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("uncertainty")
    assert main(["experiment", "uncertainty", "--scale", "smoke", "--device", "cpu", "--threads", "1",
                 "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_smoke_writes_every_result_file(smoke):
    out, results = smoke
    scale = design.UNCERTAINTY_SCALES["smoke"]
    with open(out / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert tuple(runs[0]) == report.RUN_COLUMNS
    assert len(runs) == len(scale.conditions) * scale.seeds * len(design.ARMS) * 2
    with_ap = [r for r in runs if r["det_AP75"] != ""]
    assert len(with_ap) == len(scale.conditions) * scale.ap_seeds * len(design.ARMS) * 2
    with open(out / "differences.csv", newline="") as f:
        diffs = list(csv.DictReader(f))
    assert len(diffs) == len(scale.conditions) * (2 * len(design.ARMS) - 1) * len(report.DIFFERENCE_METRICS)
    assert {d["comparisons"] for d in diffs} == {str((2 * len(design.ARMS) - 1) * len(report.DIFFERENCE_METRICS))}
    assert set(results["verdict"]) == {c.name for c in scale.conditions}
    assert results["provenance"]["git_commit"] and results["reference"]["metrics"]["AP75"] is not None
    hetero = [c.name for c in scale.conditions if c.model == "heteroscedastic"][0]
    assert len(results["scatter"][hetero]["injected"]) == results["rois"]["val_boxes"]
    assert set(results["implied"][hetero]) == {"learned-kl", "laplace-nll"}
    assert all(abs(sum(sum(h) for h in pit.values()) - 4) < 1e-4 for pit in results["pit"][hetero].values())
    assert (out / "uncertainty_study.png").stat().st_size > 0


def test_smoke_reuses_the_reference_and_the_feature_cache(smoke):
    out, first = smoke
    again = study.run_uncertainty_study("smoke", out=out, device="cpu", reuse="any", progress=False)
    assert again["reference"]["reused"] and again["rois"]["cached"]
    np.testing.assert_allclose([r["loc_err"] for r in again["runs"]], [r["loc_err"] for r in first["runs"]],
                               rtol=1e-5)


# ------------------------------------------------------------------------------------- the committed lab results


def _committed():
    from labkit import PROJECT_ROOT

    folder = PROJECT_ROOT / "results" / "uncertainty-lab"
    return folder, json.loads((folder / "results.json").read_text()), (folder / "README.md").read_text()


def test_committed_lab_results_are_what_the_readme_says():
    """Every line of the four comparison tables and the numbers the verdict reads come from results.json."""
    from labkit.experiments.uncertaintystudy.display import comparison_table

    folder, results, readme = _committed()
    said = " ".join(readme.split())
    assert len(results["seeds"]) >= 10 and results["provenance"]["git_dirty"] is False
    assert results["provenance"]["git_commit"].startswith("321b946") and "at commit 321b946" in said
    conditions = [c["name"] for c in results["scale"]["conditions"]]
    for c in conditions:
        for line in comparison_table(results, c).to_markdown().splitlines():
            assert line in readme
    mean = {(s["condition"], s["arm"], s["voting"]): s for s in results["summary"]}
    ce = [round(mean[c, "learned-kl", False]["unc_calibration_error_mean"], 3) for c in conditions]
    fixed = [round(mean[c, "fixed-implemented", False]["unc_calibration_error_mean"], 3) for c in conditions]
    assert f"{ce[0]:.3f}, {ce[1]:.3f}, {ce[2]:.3f}, {ce[3]:.3f} against {fixed[0]:.3f}, {fixed[1]:.3f}, " \
           f"{fixed[2]:.3f}, {fixed[3]:.3f}" in said
    verdicts = {(d["condition"], d["arm"], d["voting"], d["metric"]): d for d in results["differences"]}
    assert all(verdicts[c, "learned-kl", False, "unc_calibration_error"]["better"] == "reference" for c in conditions)
    resolved = [(c, a) for c in conditions for a in ("learned-kl", "laplace-nll", "gaussian-kl-loss")
                if verdicts[c, a, False, "det_AP75"]["better"] != "unresolved"]
    assert resolved == [("hetero-b0.2", "laplace-nll")]  # "one learned head's difference resolves"
    nll_ap = verdicts["hetero-b0.2", "laplace-nll", False, "det_AP75"]
    assert f"{nll_ap['diff_mean']:+.3f} (family-wise [{nll_ap['family_low']:+.3f}, {nll_ap['family_high']:+.3f}]" \
        in said
    gains = [g["diff_mean"] for g in results["voting"]]
    assert all(g["better"] == "arm" for g in results["voting"]) and len(gains) == 20
    assert f"{-max(gains):.4f}–{-min(gains):.4f}" in said
    nll = [verdicts[c, "laplace-nll", False, "loc_err"]["diff_mean"] for c in conditions]
    assert f"NLL head by {max(nll):+.4f} to {min(nll):+.4f}".replace("+", "") .replace("-", "−") in said


def _decimals(exact: str, places: int = 3) -> str:
    """An exact "p/q" of results.json to ``places`` decimals, half to even, with the decimal module."""
    import decimal

    numerator, _, denominator = exact.partition("/")
    with decimal.localcontext() as context:
        context.prec = 50
        value = decimal.Decimal(numerator) / decimal.Decimal(denominator or "1")
        return str(value.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_EVEN))


def test_the_implied_table_shows_the_committed_implied_settings_in_decimals():
    """Notebook 08, section 8: one row per condition, each number the stored exact value rounded to 3 decimals."""
    from fractions import Fraction

    from labkit.experiments.uncertaintystudy.display import implied_stage_settings, implied_table

    _, results, _ = _committed()
    stored = json.loads(json.dumps(results["implied"]))  # what results.json holds, read before the call
    table = implied_table(results)
    assert table.header == ("condition", "λ", "α", "σ (x, y, w, h)", "prediction scale (x, y, w, h)",
                            "label / prediction")
    expected = tuple((c, _decimals(v["learned-kl"]["settings"]["lam"]), v["learned-kl"]["settings"]["alpha"],
                      ", ".join(_decimals(v["learned-kl"]["settings"][f"sigma_{k}"]) for k in "xywh"),
                      ", ".join(_decimals(p) for p in v["learned-kl"]["prediction_scales"]),
                      _decimals(v["learned-kl"]["ratio"])) for c, v in stored.items())
    assert table.rows == expected
    # by hand: hetero-b0.2's λ = 5541/10000 = 0.5541 → 0.554; homo-b0.2's 1121/2000 = 0.5605 is a tie, kept at the
    # even 0.560
    assert stored["hetero-b0.2"]["learned-kl"]["settings"]["lam"] == "5541/10000" and table.rows[3][1] == "0.554"
    assert stored["homo-b0.2"]["learned-kl"]["settings"]["lam"] == "1121/2000" and table.rows[2][1] == "0.560"
    assert [r[0] for r in table.rows] == [c["name"] for c in results["scale"]["conditions"]]
    # the export gets the last condition's exact stage
    stage = implied_stage_settings(results)
    last = stored[results["scale"]["conditions"][-1]["name"]]["learned-kl"]["settings"]
    assert (stage.lam, stage.alpha, *stage.sigmas) == tuple(Fraction(last[k]) for k in
                                                            ("lam", "alpha", "sigma_x", "sigma_y", "sigma_w", "sigma_h"))
    with pytest.raises(ValueError, match="arm"):
        implied_table(results, arm="fixed-implemented")
    with pytest.raises(ValueError, match="condition"):
        implied_stage_settings(results, condition="homo-b0.3")


# ---------------------------------------------------------------------------------------------------------------
# end to end: the clean reference fine-tuned with fixed or learned scales (labkit.experiments.uncertaintystudy.endtoend)
# ---------------------------------------------------------------------------------------------------------------
def test_end_to_end_arms_differ_only_in_their_scales(tmp_path):
    from labkit.detection.losses import from_preset
    from labkit.experiments import runner
    from labkit.experiments.designs import Arm
    from labkit.experiments.uncertaintystudy.endtoend import E2E_NOISE, E2E_REFERENCE, SHAPE_CONTROL, e2e_experiment

    losses = from_preset("implemented", size_target="linear")
    experiment = e2e_experiment(losses)
    plan = runner.train_configs(experiment, "smoke", [0, 1], tmp_path)
    configs = {(arm.name, seed): config for arm, seed, config in plan}
    assert {arm.label_noise for arm in experiment.arms} == {E2E_NOISE}
    fixed = configs[E2E_REFERENCE, 0]
    assert fixed.uncertainty == "none" and fixed.uncertainty_config is None
    want = {"learned-kl": ("laplace_kl", False), "learned-kl-rpn": ("laplace_kl", True),
            "laplace-nll": ("laplace_nll", False), "gaussian-kl-loss": ("gaussian_kl_loss", False)}
    for name, (loss, rpn) in want.items():
        c = configs[name, 0]
        assert (c.uncertainty, c.uncertainty_loss, c.uncertainty_rpn) == ("learned", loss, rpn)
        # everything else as the fixed arm's: the same data (per seed), losses, schedule
        same = ("data", "box_losses", "iters", "lr", "seed", "weights")
        assert all(getattr(c, k) == getattr(fixed, k) for k in same)
        assert configs[name, 1].data == configs[E2E_REFERENCE, 1].data != c.data  # fresh noise per seed
    assert experiment.arms[3].to_dict()["uncertainty"] == {"uncertainty": "learned", "uncertainty_loss": "laplace_kl",
                                                           "uncertainty_rpn": True}
    # the shape control: fixed scales, the detection stage's α ÷ 4, σ and λ (so the implementation form's
    # prediction scale σ/λ and the large-residual slope λ) held, the RPN untouched
    control = configs[SHAPE_CONTROL[0], 0]
    assert control.uncertainty == "none" and control.data == fixed.data
    ours, theirs = control.losses, fixed.losses
    assert ours.rpn == theirs.rpn and ours.detection.settings.alpha == theirs.detection.settings.alpha / 4
    assert (ours.detection.settings.lam, ours.detection.settings.sigmas) == (theirs.detection.settings.lam,
                                                                             theirs.detection.settings.sigmas)
    assert "uncertainty" not in experiment.arms[0].to_dict()
    for bad in ({"lr": 0.1}, 5, "uncertainty"):
        with pytest.raises(ValueError, match="uncertainty takes the fields"):
            Arm("bad", "bad", losses, uncertainty=bad)


def test_end_to_end_smoke_fine_tunes_every_arm_from_the_reference(tmp_path, capsys):
    from labkit import experiments as E

    out = tmp_path / "e2e"
    assert main(["experiment", "uncertainty-e2e", "--scale", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "each arm − fixed scales (the reference's loss), paired by seed" in printed
    results = E.load_results(out)
    assert len(results.rows) == 12 and all(r["status"] == "ok" for r in results.rows)
    reference = out / "runs" / "reference" / "checkpoints"
    for config in results.configs:
        assert config["weights"].startswith(str(reference)) and config["iters"] == 2
    learned = [json.loads((out / "runs" / "learned-kl-rpn" / f"seed{k}" / "metrics.json").read_text())
               for k in (0, 1)]
    assert all("unc_calibration_error" in m for m in learned)  # the learned arms evaluate their scales too
    rows = E.arm_differences(results, "fixed", ("oracle_loc_err", "AP75"))
    assert len(rows) == 10 and {r["comparisons"] for r in rows} == {10}


def test_results_readme_states_the_committed_end_to_end_study():
    """results/README.md's end-to-end section: its two tables line by line and every number its prose reads, from
    the committed files; each row at its own clean commit, fine-tuned from the reference."""
    from pathlib import Path

    from labkit import experiments as E

    results_dir = Path(__file__).resolve().parents[1] / "results"
    text = (results_dir / "README.md").read_text()
    said = " ".join(text.split()).replace("−", "-")
    r = E.load_results(results_dir / "uncertainty-e2e-lab")
    commits = {x["arm"]: (x["git_commit"][:7], x["git_dirty"]) for x in r.rows}
    assert len(r.rows) == 30 and set(commits.values()) == {("984b21a", False), ("5443a33", False)}
    assert commits["fixed-alpha-quarter"] == ("5443a33", False) and commits["fixed"] == ("984b21a", False)
    assert "25 runs at commit 984b21a" in said and "added at commit 5443a33 with `--reuse-any`" in said
    assert all(c["weights"].endswith("iter_00003000.pt") and c["iters"] == 400 for c in r.configs)
    metrics = ("oracle_loc_err", "loc_err", "AP75")
    for reference, ms in (("fixed", metrics), ("fixed-alpha-quarter", ("oracle_loc_err",))):
        for line in E.difference_table(r, reference, ms).to_markdown().splitlines():
            assert line in text.splitlines()
    rows = {(d["arm"], d["metric"]): d for d in E.arm_differences(r, "fixed", metrics)}
    assert {d["comparisons"] for d in rows.values()} == {15}

    def fam(d, k=4):
        return f"[{d['family'].low:+.{k}f}, {d['family'].high:+.{k}f}]"

    nll, gauss, kl, quarter = (rows[a, "oracle_loc_err"] for a in ("laplace-nll", "gaussian-kl-loss", "learned-kl",
                                                                    "fixed-alpha-quarter"))
    assert nll["better"] == gauss["better"] == quarter["better"] == "arm" and kl["better"] == "reference"
    assert f"`oracle_loc_err` {nll['difference'].mean:+.4f}, ≈ 4 %, family-wise {fam(nll)}" in said
    assert f"(`loc_err` {rows['laplace-nll', 'loc_err']['difference'].mean:+.4f})" in said
    assert f"same RoIs ({gauss['difference'].mean:+.4f}, {fam(gauss)})" in said
    assert f"α ÷ 4 gains {quarter['difference'].mean:+.4f} ({fam(quarter)})" in said
    against = {d["arm"]: d for d in E.arm_differences(r, "fixed-alpha-quarter", ("oracle_loc_err",))}
    assert {d["comparisons"] for d in against.values()} == {5} and "5 rows read at once" in said
    assert against["laplace-nll"]["better"] == "arm" and against["gaussian-kl-loss"]["better"] == "unresolved"
    assert f"still places boxes better ({against['laplace-nll']['difference'].mean:+.4f}, " \
           f"{fam(against['laplace-nll'])})" in said
    assert f"does not resolve ({against['gaussian-kl-loss']['difference'].mean:+.4f}, " \
           f"{fam(against['gaussian-kl-loss'])})" in said
    assert f"(`oracle_loc_err` {kl['difference'].mean:+.4f}, {fam(kl)};" in said
    assert f"`loc_err` {rows['learned-kl', 'loc_err']['difference'].mean:+.4f})" in said
    rpn = {m: rows["learned-kl-rpn", m] for m in metrics}
    assert f"level with the fixed arm ({rpn['oracle_loc_err']['difference'].mean:+.4f})" in said
    assert f"`loc_err` worse ({rpn['loc_err']['difference'].mean:+.4f})" in said
    assert not any(d["better"] in ("arm", "reference") for (a, m), d in rows.items() if m == "AP75")
    ap = rpn["AP75"]
    assert f"{ap['difference'].mean:+.3f} ± {ap['difference'].half_width:.3f}, family-wise {fam(ap, 3)}" in said
    fixed = [x for x in r.summary if x["arm"] == "fixed"][0]
    assert 100 * abs(nll["difference"].mean) / fixed["oracle_loc_err"].mean == pytest.approx(4, abs=0.5)
