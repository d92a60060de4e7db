"""labkit.stats and labkit.experiments: the CI against scipy's Student t, experiments as data against the paper's
tables and the symbolic Section 5 mapping, coco configs, the CLI and notebooks 05/06 end to end in smoke mode."""
import csv
import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

matplotlib.use("Agg")

import labkit  # noqa: E402
from labkit import experiments as E  # noqa: E402
from labkit import provenance  # noqa: E402
from labkit.detection import engine  # noqa: E402
from labkit.experiments import runner  # noqa: E402
from labkit.stats import Summary, mean_ci  # noqa: E402
from paper_tables import TABLE1  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


# --------------------------------------------------------------------------------------------- mean ± CI
def test_mean_ci_by_hand():
    # 1, 2, 3: mean 2, s = 1. With 2 degrees of freedom Student's t has the closed-form quantile
    # t_p = (2p − 1)/√(2p(1 − p)); p = 0.975 gives 4.3027 (the printed tables' value)
    s = mean_ci([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.n == 3 and s.std == pytest.approx(1.0, rel=1e-15)
    t = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert t == pytest.approx(4.3027, abs=1e-4)
    assert s.half_width == pytest.approx(t / math.sqrt(3), rel=1e-12)
    assert (s.low, s.high) == pytest.approx((2.0 - s.half_width, 2.0 + s.half_width))


@settings(max_examples=60)
@given(values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=30),
       confidence=st.floats(0.5, 0.999))
def test_mean_ci_matches_scipy_t_interval(values, confidence):
    data = np.asarray(values)
    s = mean_ci(values, confidence)
    sem = scipy_stats.sem(data)
    if sem == 0:
        assert s.half_width == 0
        return
    low, high = scipy_stats.t.interval(confidence, len(data) - 1, loc=data.mean(), scale=sem)
    assert s.low == pytest.approx(low, rel=1e-9, abs=1e-9)
    assert s.high == pytest.approx(high, rel=1e-9, abs=1e-9)


def test_mean_ci_one_value_has_no_interval():
    s = mean_ci([0.25])
    assert s.mean == 0.25 and math.isnan(s.half_width) and s.n == 1


@pytest.mark.parametrize("values, confidence, match", [
    ([], 0.95, "values"), ([1.0, float("nan")], 0.95, "finite"), ([1.0, 2.0], 1.0, "confidence"),
    ([1.0, 2.0], 0.0, "confidence"), ("ab", 0.95, "values"),
])
def test_mean_ci_rejects_bad_input(values, confidence, match):
    with pytest.raises((ValueError, TypeError), match=match):
        mean_ci(values, confidence)


# --------------------------------------------------------------------------------------------- experiments as data
def test_table3_arms_are_table1_columns():
    arms = {a.name: a.box_losses for a in E.table3().arms}
    assert list(arms) == ["published", "published_locations", "implemented", "proposed"]
    table1 = TABLE1  # the paper's Table 1 (tests/paper_tables.py)
    for name, (rpn, det) in table1.items():
        for stage, want in (("rpn", rpn), ("detection", det)):
            c = getattr(arms[name], stage)
            s = c.settings
            assert (s.lam, s.alpha, s.sigma_x, s.sigma_y, s.sigma_w, s.sigma_h) == want, (name, stage)
            assert c.size_target == "log"
    assert arms["published"].rpn.form == "paper" and arms["implemented"].rpn.form == "implementation"


def test_table3_runs_published_with_either_rpn_normaliser():
    """Published twice: its RPN box loss divided by the sampled anchors (torchvision's; Table 2's reading of λ = 10)
    and by the anchor locations (the Faster R-CNN publication's N_reg); nothing else differs. The paper's Table 3 has
    one Published row, and the paper table is unchanged by the extra arm."""
    arms = {a.name: a for a in E.table3().arms}
    sampled, located = arms["published"].box_losses, arms["published_locations"].box_losses
    assert (sampled.rpn.normaliser, located.rpn.normaliser) == ("sampled", "locations")
    assert located.detection == sampled.detection and located.detection.normaliser == "sampled"
    assert located.rpn.settings == sampled.rpn.settings and located.rpn.form == sampled.rpn.form == "paper"
    assert all(a.box_losses.rpn.normaliser == "sampled" for n, a in arms.items() if n != "published_locations")
    assert arms["published_locations"].label == "Published (÷ locations)"
    assert "÷ locations" in E.arms_table("table3").rows[1][1]
    assert [r[0] for r in E.paper_table("table3").rows] == ["baseline", "published", "implemented", "proposed"]


def test_table4_and_table5_change_one_thing():
    h, d = (a.box_losses for a in E.table4().arms)
    log, lin = (a.box_losses for a in E.table5().arms)
    for stage in ("rpn", "detection"):
        assert (getattr(h, stage).form, getattr(d, stage).form) == ("implementation", "laplace_upper")
        assert (getattr(log, stage).size_target, getattr(lin, stage).size_target) == ("log", "linear")
        for a, b in ((h, d), (log, lin), (h, log)):
            x, y = getattr(a, stage).settings, getattr(b, stage).settings
            assert (x.lam, x.alpha, x.sigma_x, x.sigma_w) == (y.lam, y.alpha, y.sigma_x, y.sigma_w)


def test_noise_study_arms_read_back_as_their_label_scale():
    """Each arm's (λ, α, σ), read through the SymPy derivation of eq. 42, gives the swept label scale on every
    coordinate, and keeps the Proposed preset's λ and prediction scale."""
    from labkit.symbolic.detector import uncertainty_scales

    exp = E.noise_study([0.0, 0.05], ["1/40", Fraction(1, 10), 0.2])
    assert len(exp.arms) == 6
    # the Proposed preset: λ = 1/4 (rpn), 1/2 (detection), σ_x = 1/20 → prediction scales 1/5 and 1/10 (Table 2)
    kept = {"rpn": (Fraction(1, 4), Fraction(1, 5)), "detection": (Fraction(1, 2), Fraction(1, 10))}
    for arm in exp.arms:
        for stage, (lam, prediction) in kept.items():
            c = getattr(arm.box_losses, stage).settings
            assert c.lam == lam
            for sigma in (c.sigma_x, c.sigma_y, c.sigma_w, c.sigma_h):
                assert uncertainty_scales(c.lam, c.alpha, sigma) == (arm.label_scale, prediction)
    assert {a.label_noise for a in exp.arms} == {0.0, 0.05}
    assert {a.label_scale for a in exp.arms} == {Fraction(1, 40), Fraction(1, 10), Fraction(1, 5)}


@pytest.mark.parametrize("kwargs, match", [
    ({"label_noises": [-0.1], "label_scales": [0.1]}, "label_noises"),
    ({"label_noises": [0.1], "label_scales": [0]}, "label_scales"),
    ({"label_noises": [], "label_scales": [0.1]}, "label_noises"),
])
def test_noise_study_rejects_bad_grids(kwargs, match):
    with pytest.raises(ValueError, match=match):
        E.noise_study(**kwargs)


def test_unknown_names_are_named():
    with pytest.raises(ValueError, match="experiment must be one of"):
        E.build_experiment("table9")
    with pytest.raises(ValueError, match="scale must be one of"):
        E.build_experiment("table3", "huge")
    with pytest.raises(ValueError, match="noise study"):
        E.build_experiment("noise-study", "coco")
    with pytest.raises(ValueError, match="needs >= 5 seeds"):
        E.run_experiment("table3", "lab", seeds=4, out="/nonexistent")
    with pytest.raises(ValueError, match="needs >= 3 seeds"):
        E.run_experiment("table3", "quick", seeds=2, out="/nonexistent")


@pytest.mark.parametrize("name", ["table3", "table4", "table5"])
def test_coco_configs_construct(name, tmp_path):
    exp = E.build_experiment(name, "coco")
    plan = E.train_configs(exp, "coco", [0, 1], tmp_path, device="cuda", data=tmp_path / "coco2014")
    assert len(plan) == 2 * len(exp.arms)
    for arm, seed, config in plan:
        assert (config.model, config.iters, config.batch_size, config.lr) == ("vgg16", 490_000, 1, 0.001)
        assert round(config.lr_steps[0] * config.iters) == 350_000  # py-faster-rcnn's step
        assert (config.train_split, config.val_split, config.image_size) == ("train2014", "val2014", 600)
        assert config.backbone_weights == "imagenet"  # the paper's Faster R-CNN starts VGG-16 from ImageNet
        assert config.losses == arm.box_losses and config.seed == seed
        assert Path(config.out) == tmp_path / "runs" / arm.name / f"seed{seed}"
    with pytest.raises(ValueError, match="data"):
        E.train_configs(exp, "coco", [0], tmp_path)
    assert "ImageNet" in E.SCALES["coco"].description
    assert {E.SCALES[s].backbone_weights for s in ("smoke", "lab")} == {"none"}  # the lab model trains from scratch


def test_paper_tables_are_the_papers():
    # a few cells of Tables 3–5, as printed in the paper
    assert E.PAPER_TABLE3["proposed"] == {"AP50": 44.7, "AP75": 24.0, "AP": 24.2}
    assert E.PAPER_TABLE3["baseline"]["AP75"] is None
    assert E.PAPER_TABLE4["laplace_upper"]["AP75"] == 23.3
    assert E.PAPER_TABLE5["log"] == E.PAPER_TABLE3["implemented"]
    # Appendix C: the linear size target costs a tenth of a point at every threshold
    assert E.PAPER_TABLE5["linear"] == {"AP50": 44.6, "AP75": 23.0, "AP": 23.7}
    text = E.paper_table("table3").to_markdown()
    assert "paper" in text.lower() and "24.2" in text


# --------------------------------------------------------------------------------------------- summaries and plots
def _fake_results(points):
    """Results of a noise study with given (b1, label scale, AP75 mean, half width) summaries."""
    summary = tuple({"experiment": "noise-study", "arm": f"{b}-{ls}", "label": "", "label_noise": b,
                     "label_scale": ls, "n_seeds": 3,
                     **{m: Summary(mean=v, half_width=hw, n=3, std=1.0, confidence=0.95) for m in E.METRICS}}
                    for b, ls, v, hw in points)
    return E.Results(experiment={"name": "noise-study", "title": "t", "paper": None}, scale={"name": "lab"},
                     provenance={}, rows=(), summary=summary)


def test_best_label_scales_picks_the_highest_mean():
    res = _fake_results([(0.05, "1/40", 0.30, 0.01), (0.05, "1/20", 0.50, 0.01), (0.05, "1/10", 0.40, 0.01),
                         (0.0, "1/40", 0.70, 0.01), (0.0, "1/20", 0.60, 0.01)])
    best = {b["label_noise"]: b for b in E.best_label_scales(res, "AP75")}
    assert best[0.05]["best_label_scale"] == 0.05 and best[0.05]["ratio_to_noise"] == pytest.approx(1.0)
    assert best[0.0]["best_label_scale"] == 0.025 and best[0.0]["ratio_to_noise"] is None
    tie = _fake_results([(0.1, "1/40", 0.0, 0.0), (0.1, "1/10", 0.0, 0.0)])
    assert E.best_label_scales(tie)[0]["best_label_scale"] is None  # all equal: no preference
    assert "tie" in E.best_table(tie).to_markdown()


def test_best_label_scale_by_localization_error_is_the_smallest():
    res = _fake_results([(0.1, "1/40", 0.30, 0.01), (0.1, "1/10", 0.12, 0.01), (0.1, "1/5", 0.20, 0.01)])
    assert E.best_label_scales(res, "loc_err")[0]["best_label_scale"] == 0.1  # the smallest error
    assert E.best_label_scales(res, "loc_iou")[0]["best_label_scale"] == 0.025  # the largest IoU
    assert "loc_err" in E.best_table(res, "loc_err").to_markdown()


def test_matched_label_scale_is_the_nearest_on_a_log_scale():
    scales = (1 / 40, 1 / 20, 1 / 10, 1 / 5)
    assert E.matched_label_scale(0.0, scales) == 1 / 40
    assert E.matched_label_scale(0.025, scales) == 1 / 40
    assert E.matched_label_scale(0.07, scales) == 1 / 20  # log-nearer to 0.05 than to 0.1
    assert E.matched_label_scale(0.08, scales) == 1 / 10
    assert E.matched_label_scale(0.9, scales) == 1 / 5
    with pytest.raises(ValueError, match="label_scales"):
        E.matched_label_scale(0.1, ())


def _paired_rows(values):
    """Run rows of a noise study from {(b1, label scale, seed): value of loc_err}."""
    return tuple({"experiment": "noise-study", "arm": f"{b}-{ls}", "label": "", "seed": seed, "label_noise": b,
                  "label_scale": ls, "status": "ok", "loc_err": v, **{m: 0.5 for m in E.COCO_METRICS}}
                 for (b, ls, seed), v in values.items())


def test_paired_differences_remove_the_seed_spread():
    """Seeds differ by a lot, the arms by a constant: the paired difference is that constant with no spread, while
    the per-arm intervals overlap."""
    offsets = {0: 0.0, 1: 0.05, 2: -0.04, 3: 0.02}
    values = {(0.2, ls, s): 0.15 + off + (0.0 if ls == "1/5" else 0.003)
              for ls in ("1/40", "1/5") for s, off in offsets.items()}
    values[(0.2, "1/40", 4)] = 0.2  # no partner seed: left out
    res = E.Results(experiment={"name": "noise-study", "title": "t", "paper": None}, scale={"name": "lab"},
                    provenance={}, rows=_paired_rows(values), summary=())
    (d,) = E.paired_differences(res, "loc_err")
    assert (d["label_noise"], d["matched_label_scale"], d["label_scale"]) == (0.2, 0.2, 0.025)
    assert d["difference"].n == 4
    assert d["difference"].mean == pytest.approx(0.003) and d["difference"].half_width == pytest.approx(0, abs=1e-12)
    assert "matched better" in E.paired_table(res, "loc_err").to_markdown()
    per_arm = [mean_ci([values[0.2, ls, s] for s in offsets]) for ls in ("1/40", "1/5")]
    assert per_arm[0].low < per_arm[1].high  # unpaired, the two arms cannot be told apart
    with pytest.raises(ValueError, match="metric"):
        E.paired_differences(res, "AP99")


def test_measured_results_reads_the_named_folder_or_the_newest(tmp_path):
    def write(folder: str, name: str, date: str, ap75: float) -> None:
        summary = ({"experiment": name, "arm": "a", "label": "a", "label_noise": 0.0, "label_scale": "1/20",
                    "n_seeds": 1, "n_failed": 0,
                    **{m: Summary(mean=ap75, half_width=math.nan, n=1, std=math.nan, confidence=0.95)
                       for m in E.METRICS}},)
        E.write_results(E.Results(experiment={"name": name, "title": name, "paper": None}, scale={"name": "lab"},
                                  provenance={"date": date, "device": "cpu", "git_commit": "0" * 40}, rows=(),
                                  summary=summary), tmp_path / folder)

    assert E.measured_results(tmp_path, "noise-study") is None
    assert "No measured" in E.measured_table(tmp_path, "noise-study").title
    write("noise-study-quick", "noise-study", "2026-11-25", 0.2)
    write("noise-study-quick-extremes", "noise-study", "2026-11-26", 0.3)
    write("table3-lab", "table3", "2026-11-27", 0.4)
    assert E.measured_results(tmp_path, "noise-study").summary[0]["AP75"].mean == 0.3  # the newest
    assert E.measured_results(tmp_path, "noise-study", "noise-study-quick").summary[0]["AP75"].mean == 0.2
    assert E.measured_results(tmp_path, "noise-study", "missing") is None
    with pytest.raises(ValueError, match="table3"):
        E.measured_results(tmp_path, "noise-study", "table3-lab")


def test_summary_table_shows_loc_err_only_where_measured():
    prov = {"device": "cpu", "git_commit": "0" * 40, "date": "2026-11-26"}
    res = _fake_results([(0.1, "1/20", 0.1234, 0.0123)])
    res = E.Results(experiment={"name": "noise-study", "title": "t", "paper": None}, scale={"name": "lab"},
                    provenance=prov, rows=(), summary=res.summary)
    table = E.summary_table(res)
    assert table.header == ("arm", "seeds", "AP50", "AP75", "AP", "loc_err")
    assert table.rows[0][2:] == ("12.3 ± 1.2",) * 3 + ("0.123 ± 0.012",)  # AP in %, loc_err in box units
    nan = Summary(mean=math.nan, half_width=math.nan, n=0, std=math.nan, confidence=0.95)
    older = E.Results(experiment=res.experiment, scale=res.scale, provenance=prov, rows=(),
                      summary=({**res.summary[0], "loc_err": nan, "loc_iou": nan},))
    assert E.summary_table(older).header == ("arm", "seeds", "AP50", "AP75", "AP")


def test_loss_curve_collects_each_run():
    curve = E.LossCurve(every=2)
    for run in ("a/seed0", "b/seed0"):
        for it in (1, 2, 3):
            curve({"iteration": it, "loss": 1.0 / it, "run": run})
    curve.close()  # outside IPython: nothing to draw, no error
    assert curve.curves == {"a/seed0": ([1, 2, 3], [1.0, 0.5, 1 / 3]), "b/seed0": ([1, 2, 3], [1.0, 0.5, 1 / 3])}
    fig = E.plot_loss_curves(curve.curves)
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="every"):
        E.LossCurve(every=0)


def test_loss_curve_plots_every_loss_term_of_one_run():
    """Records of one training run (no "run" key) with keys=LossCurve.KEYS: one line per loss term."""
    records = [{"iteration": it, "lr": 0.01, "loss": 4.0 / it, "loss_classifier": 1.0 / it,
                "loss_box_reg": 0.5 / it, "loss_objectness": 2.0 / it, "loss_rpn_box_reg": 0.5 / it,
                "seconds": 0.1 * it} for it in range(1, 6)]
    curve = E.LossCurve(every=2, keys=E.LossCurve.KEYS)
    for r in records:
        curve(r)
    lines = {line.get_label(): line for line in curve.figure().axes[0].get_lines()}
    assert set(lines) == set(E.LossCurve.KEYS)
    assert list(lines["loss"].get_ydata()) == [r["loss"] for r in records]
    assert curve.figure().axes[0].get_yscale() == "log"
    total = E.LossCurve(every=2)  # the default: the total loss alone, one line named after it
    for r in records:
        total(r)
    assert list(total.curves) == ["loss"] and total.curves["loss"][1] == [r["loss"] for r in records]
    with pytest.raises(ValueError, match="every must be"):
        E.LossCurve(every=0, keys=E.LossCurve.KEYS)
    with pytest.raises(ValueError, match="keys"):
        E.LossCurve(keys=())


def test_plot_noise_study_draws_one_panel_with_line_and_band_per_noise():
    res = _fake_results([(b, ls, 0.5, 0.05) for b in (0.0, 0.1) for ls in ("1/40", "1/10")])
    fig = E.plot_noise_study(res, "AP75")
    assert len(fig.axes) == 2  # one panel per b₁, sharing y
    for ax, b in zip(fig.axes, (0.0, 0.1)):
        assert len(ax.collections) == 1  # the CI band
        assert len(ax.lines) == 1 + (b > 0)  # the mean, and the α·σ = b₁ marker (b₁ = 0 has none on a log axis)
        assert ax.get_xscale() == "log"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1/40", "1/10"]  # as the grid writes them
    assert [ax.get_title() for ax in fig.axes] == ["b₁ = 0", "b₁ = 0.1"]
    assert fig.legends and not any(ax.get_legend() for ax in fig.axes)  # the legend stands outside the data
    with pytest.raises(ValueError, match="metric"):
        E.plot_noise_study(res, "AP99")


def test_paired_table_signs_arm_minus_matched_and_reads_the_family_wise_interval():
    values = {(0.2, ls, s): (0.15 if ls == "1/5" else 0.16) + 0.001 * s for ls in ("1/40", "1/5") for s in range(4)}
    rows = tuple({**r, "AP75": 0.5 - r["loc_err"]} for r in _paired_rows(values))  # better: lower err, higher AP
    res = E.Results(experiment={"name": "noise-study", "title": "t", "paper": None}, scale={"name": "lab"},
                    provenance={}, rows=rows, summary=())
    for metric in ("loc_err", "AP75"):
        (row,) = E.paired_table(res, metric).rows
        # Δ = arm − matched, as difference_table signs it: the arm's loc_err is higher, its AP75 lower
        assert row[:3] == ("0.2", "1/5", "1/40") and row[-1] == "matched better"
        assert row[3].startswith("+0.0100" if metric == "loc_err" else "-0.010")


# --------------------------------------------------------------------------------------------- end to end (smoke)
def _check_result_files(folder: Path, experiment: str, n_arms: int, n_seeds: int = 1) -> dict:
    with open(folder / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    with open(folder / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert tuple(runs[0]) == E.RUN_COLUMNS and tuple(summary[0]) == E.SUMMARY_COLUMNS
    assert len(runs) == n_arms * n_seeds and len(summary) == n_arms
    for row in runs:
        assert row["experiment"] == experiment and row["status"] == "ok"
        assert all(0.0 <= float(row[m]) <= 1.0 for m in E.COCO_METRICS)
        metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert float(row["AP75"]) == metrics["AP75"]  # the table carries the run's own COCOeval numbers
        for m in E.LOCALIZATION_METRICS:  # undefined (empty) when a smoke run finds no true positive
            assert (row[m] == "") == (metrics[m] is None) and (row[m] == "" or float(row[m]) == metrics[m])
        assert row["loc_iou"] == "" or 0.5 <= float(row["loc_iou"]) <= 1.0
    data = json.loads((folder / "results.json").read_text())
    prov = data["provenance"]
    assert len(prov["git_commit"]) == 40 and prov["device"] == "cpu" and prov["date"].startswith("20")
    assert len(data["configs"]) == n_arms * n_seeds
    for config, row in zip(data["configs"], runs):  # the exact config each run was trained with
        assert json.loads((Path(row["run_dir"]) / "config.json").read_text()) == config
    return data


def test_cli_smoke_table4_writes_results_and_reuses_runs(tmp_path, capsys, monkeypatch):
    from labkit.__main__ import main

    out = tmp_path / "t4"
    assert main(["experiment", "table4", "--scale", "smoke", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "measured here" in printed and "The paper's Table 4" in printed
    data = _check_result_files(out, "table4", 2)
    assert [c["box_losses"]["rpn"]["form"] for c in data["configs"]] == ["implementation", "laplace_upper"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run with the same config must be reused, not retrained")

    # every run directory records the commit that made it; results.json lists each row's own commit
    head = provenance.git_state()["git_commit"]
    for row in data["runs"]:
        record = json.loads((Path(row["run_dir"]) / "provenance.json").read_text())
        assert record["created"]["git_commit"] == row["git_commit"] == head and record["resumed"] == []
        assert record["created"]["labkit"] == labkit.__version__ and record["created"]["command"] == " ".join(sys.argv)
        assert row["reused"] is False

    monkeypatch.setattr(runner, "train", no_training)
    again = E.run_experiment("table4", "smoke", out=out, device="cpu", progress=False)
    assert [r["AP75"] for r in again.rows] == [r["AP75"] for r in E.load_results(out).rows]
    assert all(r["reused"] and r["git_commit"] == head for r in again.rows)

    # made by another commit: not reused by default (train would be called), reused with reuse="any" and recorded
    first = Path(again.rows[0]["run_dir"]) / "provenance.json"
    record = json.loads(first.read_text())
    first.write_text(json.dumps({**record, "created": {**record["created"], "git_commit": "f" * 40}}))
    with pytest.raises(AssertionError, match="must be reused"):
        E.run_experiment("table4", "smoke", out=out, device="cpu", progress=False)
    mixed = E.run_experiment("table4", "smoke", out=out, device="cpu", progress=False, reuse="any")
    assert [r["git_commit"] for r in mixed.rows] == ["f" * 40, head] and all(r["reused"] for r in mixed.rows)
    with pytest.raises(ValueError, match="reuse must be one of"):
        E.run_experiment("table4", "smoke", out=out, device="cpu", progress=False, reuse=True)
    first.write_text(json.dumps(record))

    # a run finished before the localization metrics existed is evaluated again from its checkpoint, not retrained,
    # and gets the same COCO numbers; a results.json of that time still loads (the new metrics undefined)
    run_dir = Path(again.rows[0]["run_dir"])
    old_metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({k: v for k, v in old_metrics.items()
                                                      if k not in E.LOCALIZATION_METRICS}))
    upgraded = E.run_experiment("table4", "smoke", out=out, device="cpu", progress=False)
    new_metrics = json.loads((run_dir / "metrics.json").read_text())
    assert all(m in new_metrics for m in E.METRICS)
    assert {m: new_metrics[m] for m in E.METRICS} == pytest.approx({m: old_metrics[m] for m in E.METRICS}, abs=1e-6)
    assert upgraded.rows[0]["AP75"] == again.rows[0]["AP75"]
    data = json.loads((out / "results.json").read_text())
    for entry in data["summary"]:
        for m in E.LOCALIZATION_METRICS:
            del entry[m]
    (out / "results.json").write_text(json.dumps(data))
    loaded = E.load_results(out)
    assert all(math.isnan(s["loc_err"].mean) and s["AP75"].n == 1 for s in loaded.summary)

    # a run directory holding a run of another configuration (older code, another design) is set aside, kept, and
    # the run trained afresh: never resumed from, never overwritten
    monkeypatch.undo()  # training allowed again
    config_file = run_dir / "config.json"
    saved = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**saved, "lr": saved["lr"] * 2}))
    (run_dir / "metrics.json").unlink()
    redone = E.run_experiment("table4", "smoke", out=out, device="cpu", progress=False)
    aside = run_dir.with_name(run_dir.name + ".superseded-1")
    assert json.loads((aside / "config.json").read_text())["lr"] == saved["lr"] * 2
    assert json.loads(config_file.read_text()) == saved and not redone.rows[0]["reused"]
    assert redone.rows[0]["AP75"] == pytest.approx(again.rows[0]["AP75"], abs=1e-6)


def test_a_diverged_run_is_counted_not_averaged(tmp_path, monkeypatch):
    real_train = runner.train

    def diverging(config, **kwargs):
        if config.extra["arm"] == "laplace_upper":
            raise engine.NonFiniteLossError("non-finite loss {'loss': nan}")
        return real_train(config, **kwargs)

    monkeypatch.setattr(runner, "train", diverging)
    res = E.run_experiment("table4", "smoke", out=tmp_path, device="cpu", progress=False)
    assert [r["status"].split(":")[0] for r in res.rows] == ["ok", "diverged"]
    assert res.rows[1]["AP75"] is None
    failed = res.summary[1]
    assert (failed["n_seeds"], failed["n_failed"]) == (0, 1) and math.isnan(failed["AP75"].mean)
    assert "1 diverged" in E.summary_table(res).to_text()
    with open(tmp_path / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[1]["n_failed"] == "1" and rows[1]["AP75_mean"] == ""
    back = E.load_results(tmp_path)
    assert back.summary[1]["n_failed"] == 1 and math.isnan(back.summary[1]["AP75"].mean)


def test_cli_noise_study_grid_flags(tmp_path, capsys):
    from labkit.__main__ import main

    out = tmp_path / "ns"
    argv = ["experiment", "noise-study", "--scale", "smoke", "--device", "cpu", "--out", str(out),
            "--label-noises", "0.05", "--label-scales", "1/20"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert ["0.05", "1/20", "1.00"] in [line.split()[:3] for line in printed]  # the only point: the best
    data = _check_result_files(out, "noise-study", 1)
    assert data["summary"][0]["label_scale"] == "1/20" and data["summary"][0]["label_noise"] == 0.05
    settings = json.loads((Path(data["configs"][0]["data"]) / "synth.json").read_text())["settings"]
    assert settings["label_noise"] == 0.05  # the run trained on labels with the injected noise
    with pytest.raises(SystemExit, match="--data"):  # coco needs a dataset root: one line, no traceback
        main(["experiment", "table3", "--scale", "coco", "--out", str(out)])
    with pytest.raises(SystemExit, match="noise-study only"):
        main(["experiment", "table3", "--out", str(out), "--label-noises", "0.1"])


def _execute(notebook: Path, out: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert params and all(c.cell_type != "code" for c in nb.cells[:params[0]]), "first code cell: parameters"
    assert 'SCALE = "smoke"' in nb.cells[params[0]].source and 'DEVICE = "auto"' in nb.cells[params[0]].source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "notebooks are stored without outputs"
            assert "sys.path" not in cell.source
    # what papermill does: a cell after the parameters overriding them
    nb.cells.insert(params[0] + 1, nbformat.v4.new_code_cell(f"OUT = {str(out)!r}\nDEVICE = 'cpu'"))
    NotebookClient(nb, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()


@pytest.mark.slow
def test_notebook_05_runs_tables_3_to_5_in_smoke_mode(tmp_path):
    _execute(NOTEBOOKS / "05_faster_rcnn_experiments.ipynb", tmp_path)
    for name, arms in (("table3", 4), ("table4", 2), ("table5", 2)):
        _check_result_files(tmp_path / name, name, arms)


@pytest.mark.slow
def test_notebook_06_runs_the_noise_study_in_smoke_mode(tmp_path):
    _execute(NOTEBOOKS / "06_label_noise_study.ipynb", tmp_path)
    grid = E.SCALES["smoke"]
    data = _check_result_files(tmp_path / "noise-study", "noise-study",
                               len(grid.label_noises) * len(grid.label_scales))
    assert {s["label_noise"] for s in data["summary"]} == set(grid.label_noises)


# --------------------------------------------------------------------------------------------- paired tables 3–5
RESULTS = ROOT / "results"


def _table(values, name="table4"):
    """Results of a table from {(arm, seed): {metric: value}} (labels: the arm's name in capitals)."""
    rows = tuple({"experiment": name, "arm": arm, "label": arm.upper(), "seed": seed, "label_noise": 0.0,
                  "label_scale": None, "status": "ok", **metrics} for (arm, seed), metrics in values.items())
    return E.Results(experiment={"name": name, "title": "T", "paper": name}, scale={"name": "lab"},
                     provenance={"device": "cpu", "git_commit": "0" * 40}, rows=rows, summary=())


def _t2(q):
    """Student's t q-quantile with 2 degrees of freedom, by hand: its CDF is 1/2 + t / (2 √(2 + t²))."""
    u = 2 * q - 1
    return u * math.sqrt(2 / (1 - u * u))


def test_arm_differences_by_hand():
    """Arm "a" beats "ref" by 0.01, 0.02, 0.06 in AP75 and in loc_err, seed by seed: Δ = a − ref has mean ±0.03,
    standard deviation √0.0007, and with m = 2 rows the family-wise interval is the t interval at 97.5 %."""
    gain = {0: 0.01, 1: 0.02, 2: 0.06}
    values = {}
    for seed, base in {0: 0.30, 1: 0.20, 2: 0.40}.items():
        values["ref", seed] = {"AP75": base, "loc_err": 0.1}
        values["a", seed] = {"AP75": base + gain[seed], "loc_err": 0.1 - gain[seed]}
    values["a", 3] = {"AP75": 0.9, "loc_err": 0.0}  # no partner seed: left out
    ap75, loc = E.arm_differences(_table(values), reference="ref")  # the metrics the runs have, in METRICS order
    se = math.sqrt(0.0007 / 3)
    for d, sign in ((ap75, 1), (loc, -1)):
        assert (d["arm"], d["label"], d["reference"], d["reference_label"]) == ("a", "A", "ref", "REF")
        assert d["seeds"] == (0, 1, 2) and d["comparisons"] == 2
        assert d["difference"].mean == pytest.approx(sign * 0.03)
        assert d["difference"].half_width == pytest.approx(_t2(0.975) * se)  # 4.3027 · s/√n
        assert d["family"].confidence == pytest.approx(0.975)
        assert d["family"].half_width == pytest.approx(_t2(0.9875) * se)
        a = [values["a", s][d["metric"]] for s in range(3)]
        r = [values["ref", s][d["metric"]] for s in range(3)]
        ci = scipy_stats.ttest_rel(a, r).confidence_interval(confidence_level=0.975)
        assert (d["family"].low, d["family"].high) == pytest.approx((ci.low, ci.high))
        assert sorted(d["bootstrap"]) == pytest.approx(sorted((sign * 0.01, sign * 0.06)))  # 3 seeds: their range
        assert d["better"] == "unresolved"  # 0.03 ± 0.135 covers 0
    assert (ap75["higher_is_better"], loc["higher_is_better"]) == (True, False)


def test_bonferroni_family_counts_every_row_read_at_once():
    """Δ = 0.08, 0.10, 0.12 (t = 8.66 on 2 degrees of freedom, p = 0.0131) resolves with 2 rows read at once
    (p < 0.05/2) and not with 4 (p > 0.05/4); the per-comparison 95 % interval excludes 0 either way."""
    values = {}
    for seed, (db, dc) in enumerate(((0.08, 0.01), (0.10, -0.02), (0.12, 0.03))):
        values["ref", seed] = {"AP": 0.5, "loc_err": 0.1}
        values["b", seed] = {"AP": 0.5 + db, "loc_err": 0.1}
        values["c", seed] = {"AP": 0.5 + dc, "loc_err": 0.1}
    res = _table(values)
    b_values = [values["b", s]["AP"] for s in range(3)]
    p = scipy_stats.ttest_rel(b_values, [0.5] * 3).pvalue
    assert 0.05 / 4 < p < 0.05 / 2
    for metrics, m, verdict in ((["AP"], 2, "arm"), (["AP", "loc_err"], 4, "unresolved")):
        rows = E.arm_differences(res, "ref", metrics)
        assert len(rows) == m and {d["comparisons"] for d in rows} == {m}
        (b,) = [d for d in rows if d["arm"] == "b" and d["metric"] == "AP"]
        se = 0.02 / math.sqrt(3)
        assert b["family"].half_width == pytest.approx(_t2(1 - 0.025 / m) * se)
        ci = scipy_stats.ttest_rel(b_values, [0.5] * 3).confidence_interval(confidence_level=1 - 0.05 / m)
        assert (b["family"].low, b["family"].high) == pytest.approx((ci.low, ci.high))
        assert b["difference"].low > 0 and b["better"] == verdict
        table = E.difference_table(res, "ref", metrics)
        assert f"m = {m}" in table.header[3]
        row = next(r for r in table.rows if r[0] == "B − REF")
        assert row[-1] == ("B better" if verdict == "arm" else "no effect this setting can resolve")


def test_one_sign_convention_delta_is_arm_minus_reference():
    """Δ = arm − reference for every metric; which side is better follows the metric: a smaller loc_err and a
    larger AP75 are both the arm being better."""
    values = {}
    for s in range(3):
        values["ref", s] = {"AP75": 0.40 + 0.1 * s, "loc_err": 0.10 + 0.01 * s}
        values["good", s] = {"AP75": 0.45 + 0.1 * s, "loc_err": 0.09 + 0.01 * s}
        values["bad", s] = {"AP75": 0.35 + 0.1 * s, "loc_err": 0.11 + 0.01 * s}
    values["lone", 0] = {"AP75": 0.5, "loc_err": 0.1}  # one seed: no interval, no verdict
    rows = {(d["arm"], d["metric"]): d for d in E.arm_differences(_table(values), "ref")}
    assert rows["good", "AP75"]["difference"].mean == pytest.approx(0.05)
    assert rows["good", "loc_err"]["difference"].mean == pytest.approx(-0.01)
    assert rows["good", "AP75"]["better"] == rows["good", "loc_err"]["better"] == "arm"
    assert rows["bad", "AP75"]["better"] == rows["bad", "loc_err"]["better"] == "reference"
    assert rows["lone", "AP75"]["better"] == "undefined" and math.isnan(rows["lone", "AP75"]["bootstrap"][0])
    table = E.difference_table(_table(values), "ref")
    assert table.rows[0] == ("GOOD − REF", "AP75 (higher is better)", "+0.050 ± 0.000", "[+0.050, +0.050]",
                             "[+0.050, +0.050]", "3", "GOOD better")
    assert table.rows[1][1:3] == ("loc_err (lower is better)", "-0.0100 ± 0.0000")
    assert table.rows[1][-1] == "GOOD better" and table.rows[3][-1] == "REF better" and table.rows[4][-1] == "–"
    with pytest.raises(ValueError, match="reference"):
        E.arm_differences(_table(values), "nobody")
    with pytest.raises(ValueError, match="metric"):
        E.arm_differences(_table(values), "ref", ["AP99"])
    with pytest.raises(ValueError, match="besides the reference"):
        E.arm_differences(_table({("ref", 0): {"AP": 0.5}}), "ref")


def test_paired_bootstrap_resamples_whole_seeds():
    from labkit.experiments.analysis import bootstrap_interval

    assert bootstrap_interval([1.0, 2.0, 3.0]) == (1.0, 3.0)  # each one-seed resample has probability 1/27 > 2.5 %
    assert bootstrap_interval([1.0, 2.0, 3.0]) == bootstrap_interval([1.0, 2.0, 3.0])  # seeded
    assert all(math.isnan(v) for v in bootstrap_interval([1.0]))
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 1.0, 400)
    low, high = bootstrap_interval(data)
    t = mean_ci(data)
    assert low == pytest.approx(t.low, abs=0.03) and high == pytest.approx(t.high, abs=0.03)  # large n: ≈ the t


def _said(text):
    return " ".join(text.split())


def _interval(summary, digits):
    return f"[{round(summary.low, digits) + 0.0:+.{digits}f}, {round(summary.high, digits) + 0.0:+.{digits}f}]"


def _stated(summary, digits):
    return f"{round(summary.mean, digits) + 0.0:+.{digits}f} ± {summary.half_width:.{digits}f}"


TABLE_FOLDERS = ("table3-lab", "table4-lab", "table5-lab")


def test_results_readme_states_the_paired_tables_of_the_committed_results():
    """Every line of the three paired tables, and the numbers the prose reads, are what the committed
    results.json files give: the README cannot drift from the files."""
    readme = (RESULTS / "README.md").read_text()
    said = _said(readme)
    tables = {f: E.load_results(RESULTS / f) for f in TABLE_FOLDERS}
    for results in tables.values():
        assert results.scale["name"] == "lab" and results.scale["iters"] == 2000
        assert {r["seed"] for r in results.rows} == set(range(5))
        assert {str(r["git_commit"])[:7] for r in results.rows} == {"ca79794"}  # "every row records that commit"
        for line in E.difference_table(results).to_markdown().splitlines():
            assert line in readme
    t3 = {(d["arm"], d["metric"]): d for d in E.arm_differences(tables["table3-lab"])}
    assert {d["comparisons"] for d in t3.values()} == {18}
    proposed = t3["proposed", "oracle_loc_err"]
    assert proposed["better"] == "arm"
    assert f"`oracle_loc_err` {_stated(proposed['difference'], 4)} box units".replace("-", "−") in said
    assert f"(family-wise {_interval(proposed['family'], 4).replace('-', '−')})" in said
    for arm in ("published", "published_locations"):
        assert t3[arm, "AP"]["better"] == t3[arm, "oracle_loc_err"]["better"] == "reference"
    resolved = sorted((a, m) for (a, m), d in t3.items() if d["better"] != "unresolved")
    assert resolved == sorted([(a, m) for a in ("published", "published_locations")
                               for m in ("AP", "loc_err", "loc_iou", "oracle_loc_err")] +
                              [("proposed", "oracle_loc_err")])  # "9 resolve"
    assert "Of the 18 rows read at once, 9 resolve" in said
    for folder in ("table4-lab", "table5-lab"):
        assert all(d["better"] == "unresolved" for d in E.arm_differences(tables[folder]))
    for q, text in ((0.975, "2.78 at 95 %"), (1 - 0.025 / 6, "4.85 at 99.17 %"), (1 - 0.025 / 18, "6.57 at 99.72 %")):
        assert f"{scipy_stats.t.ppf(q, 4):.2f}" in text and text in said


def test_results_readme_one_config_in_three_folders():
    """Table 3's Implemented, Table 4's H_α and Table 5's log arm train the same config at one commit: the README
    says they agree to the bit, for every seed and metric."""
    runs = {f: E.load_results(RESULTS / f) for f in TABLE_FOLDERS}
    arm = {"table3-lab": "implemented", "table4-lab": "huber", "table5-lab": "log"}
    strip = ("extra", "out")
    configs = {f: [{k: v for k, v in c.items() if k not in strip} for c in r.configs if c["extra"]["arm"] == arm[f]]
               for f, r in runs.items()}
    assert configs["table3-lab"] == configs["table4-lab"] == configs["table5-lab"]
    value = {f: {r["seed"]: r for r in res.rows if r["arm"] == arm[f]} for f, res in runs.items()}
    assert all(value["table3-lab"][s][m] == value["table4-lab"][s][m] == value["table5-lab"][s][m]
               for s in range(5) for m in E.METRICS)
    assert "give bit-identical numbers for every seed" in _said((RESULTS / "README.md").read_text())


def test_results_readme_states_the_noise_study_paired_and_corrected():
    """The noise study's section: its oracle table line by line, and every number its prose reads, from the files."""
    text = (RESULTS / "README.md").read_text()
    said = _said(text)
    study = E.load_results(RESULTS / "noise-study-quick")
    assert len(study.rows) == 100 and {r["seed"] for r in study.rows} == set(range(5))
    assert {r["git_commit"] for r in study.rows} == {study.provenance["git_commit"]}
    assert study.provenance["git_commit"].startswith("ea34f66") and not study.provenance["git_dirty"]
    assert "all at commit ea34f66 (clean)" in said
    for line in E.paired_table(study, "oracle_loc_err").to_markdown().splitlines():
        assert line in text.splitlines()
    rows = {m: E.paired_differences(study, m) for m in ("oracle_loc_err", "loc_err", "AP75")}
    for m, table in rows.items():
        assert len(table) == 15 and {d["comparisons"] for d in table} == {15}
        assert all(d["difference"].n == 5 for d in table)
    resolved = {m: [(d["label_noise"], d["label_scale"]) for d in t if d["better"] != "unresolved"]
                for m, t in rows.items()}
    assert resolved == {"oracle_loc_err": [(0.0, 0.2), (0.025, 0.2), (0.1, 0.2)], "loc_err": [], "AP75": [(0.1, 0.2)]}
    assert all(d["better"] == "reference" for t in rows.values() for d in t if d["better"] != "unresolved")
    oracle = {(d["label_noise"], d["label_scale"]): d for d in rows["oracle_loc_err"]}
    stated = ", ".join(f"{oracle[b, 0.2]['difference'].mean:+.4f}" for b in (0.0, 0.025, 0.1))
    assert f"({stated} box units, family-wise resolved; at 5 % {oracle[0.05, 0.2]['difference'].mean:+.4f}" in said
    at_20 = [oracle[0.2, s]["difference"] for s in (0.025, 0.05, 0.1)]
    assert all(d.high < 0 for d in at_20) and f"{max(d.mean for d in at_20):.4f} to " in said.replace("−", "-")
    per_comparison = [d for d in rows["loc_err"] if d["difference"].low > 0 or d["difference"].high < 0]
    assert [(d["label_noise"], d["label_scale"]) for d in per_comparison] == [(b, 0.2) for b in (0.0, 0.025, 0.05, 0.1)]
    lo, hi = sorted(d["difference"].mean for d in per_comparison)[::3]
    assert f"(+{lo:.4f} to +{hi:.4f})" in said
    (ap,) = [d for d in rows["AP75"] if d["better"] != "unresolved"]
    numbers = (_stated(ap["difference"], 3), _interval(ap["family"], 3))
    assert "1/5 − 1/10 = {} (family-wise {})".format(*(n.replace("-", "−") for n in numbers)) in said
    best = [b["best_label_scale"] for b in E.best_label_scales(study, "oracle_loc_err")]
    assert [str(Fraction(b).limit_denominator(100)) for b in best] == ["1/20", "1/40", "1/40", "1/20", "1/10"]
    assert "1/20, 1/40, 1/40, 1/20, 1/10 at b₁ = 0, 2.5, 5, 10, 20 %" in said
    ends = {m: [b[m] for b in E.best_label_scales(study, m)] for m in ("AP75", "oracle_loc_err")}
    assert f"{ends['AP75'][0]:.2f}" == "0.18" and f"{ends['AP75'][-1]:.2f}" == "0.02"
    assert f"from {ends['oracle_loc_err'][0]:.3f} at b₁ = 0 to {ends['oracle_loc_err'][-1]:.3f} at 20 %" in said
    assert not (RESULTS / "noise-study-quick-extremes").exists()


def _bootstrap_summary(interval):
    low, high = interval
    return Summary(mean=(low + high) / 2, half_width=(high - low) / 2, n=0, std=math.nan, confidence=0.95)


def test_holm_resolves_the_same_rows_as_the_bonferroni_intervals_here():
    """The README says Holm's step-down (paired t-test p-values, scipy) gives the same verdicts as the
    Bonferroni-widened intervals on every table of the committed results."""
    families = [E.arm_differences(E.load_results(RESULTS / f)) for f in ("table3-lab", "table4-lab", "table5-lab")]
    noise = E.load_results(RESULTS / "noise-study-quick")
    families += [E.paired_differences(noise, m) for m in ("oracle_loc_err", "loc_err", "AP75")]
    for rows in families:
        p = [2 * scipy_stats.t.sf(abs(d["difference"].mean) / (d["difference"].std / math.sqrt(d["difference"].n)),
                                  d["difference"].n - 1) for d in rows]
        holm, m = set(), len(rows)
        for rank, i in enumerate(sorted(range(m), key=p.__getitem__)):
            if p[i] > 0.05 / (m - rank):
                break
            holm.add(i)
        assert holm == {i for i, d in enumerate(rows) if d["better"] != "unresolved"}


def test_noise_study_draws_fresh_label_noise_per_seed(tmp_path):
    """Noisy arms train on data of their own seed (same scenes, the noise drawn from noise_seed = the run's seed);
    clean arms share one dataset."""
    from labkit.detection.data import load_dataset
    from labkit.detection.synthetic import generate_synthetic

    plan = runner.train_configs(E.build_experiment("noise-study", "smoke"), "smoke", [0, 1], tmp_path)
    roots = {(arm.label_noise, seed): config.data for arm, seed, config in plan}
    assert roots[0.0, 0] == roots[0.0, 1]
    assert roots[0.1, 0] != roots[0.1, 1] and "_seed0" in roots[0.1, 0]
    made = {k: generate_synthetic(tmp_path / f"n{k}", n_train=3, n_val=1, image_size=64, label_noise=0.1,
                                  noise_seed=k, workers=1) for k in (None, 0, 1)}
    boxes = {k: [t["boxes"] for _, t in load_dataset(root, "train")] for k, root in made.items()}
    images = {k: [im for im, _ in load_dataset(root, "train")] for k, root in made.items()}
    assert all(torch.equal(a, b) for a, b in zip(boxes[None], boxes[0]))  # None: the dataset seed (0)
    assert not all(torch.equal(a, b) for a, b in zip(boxes[0], boxes[1]))
    assert all(torch.equal(a, b) for a, b in zip(images[0], images[1]))
    with pytest.raises(ValueError, match="noise_seed"):
        generate_synthetic(tmp_path / "bad", n_train=1, n_val=1, image_size=64, noise_seed=-1, workers=1)


def test_result_tables_keep_an_interval_with_its_value_in_a_notebook():
    table = E.ResultTable("t", ("arm", "loc_err"), (("fixed", "0.0406 ± 0.0003"),))
    assert "| fixed | 0.0406 ± 0.0003 |" in table.to_markdown()  # files and READMEs: plain spaces
    assert "| fixed | 0.0406\u00a0±\u00a00.0003 |" in table._repr_markdown_()  # no break inside the cell


def test_verdict_table_holds_each_verdict_in_a_row():
    table = E.verdict_table({"homo-b0.1": "better", "hetero-b0.1": "not resolved"}, "condition", note="m = 36")
    assert table.header == ("condition", "verdict") and table.rows == (("homo-b0.1", "better"),
                                                                       ("hetero-b0.1", "not resolved"))
    assert table.note == "m = 36" and "| hetero-b0.1 | not resolved |" in table.to_markdown()
    with pytest.raises(ValueError, match="verdicts must be a non-empty mapping"):
        E.verdict_table({})
