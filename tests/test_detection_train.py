"""labkit.detection.engine / .runs / .evaluate / .config: schedule and data order by hand, COCO stats of hand-made
detections (pycocotools), exact resume after SIGKILL, DDP on CPU with gloo, and the `train` / `evaluate` CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labkit.detection.config import TrainConfig, read_config
from labkit.detection.cocoeval import evaluate_detections
from labkit.detection.evaluate import STAT_NAMES, evaluate
from labkit.detection.engine import NonFiniteLossError, batch_indices, lr_at, train_one_iteration
from labkit.detection.runs import latest_checkpoint, resolve_device

ROOT = Path(__file__).resolve().parents[1]
# one thread: results independent of the machine's load, and faster on a shared 2-core box
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from labkit.detection.data import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("synth") / "data", n_train=8, n_val=4, image_size=64,
                              workers=1)


def tiny_config(data, out, **changes):
    base = dict(data=str(data), out=str(out), model="lab", preset="proposed", iters=4, batch_size=2, image_size=64,
                warmup_iters=2, lr=0.01, checkpoint_every=2, log_every=1, device="cpu", val_split=None,
                evaluate=False)
    return TrainConfig(**{**base, **changes})


# ---------------------------------------------------------------------------------------------------------------
# schedule, data order, devices, config
# ---------------------------------------------------------------------------------------------------------------
def test_lr_schedule_by_hand(tmp_path):
    cfg = TrainConfig(data="d", out="o", iters=100, lr=0.1, warmup_iters=10, warmup_factor=0.001,
                      lr_steps=(0.5, 0.8), lr_gamma=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.0001)
    assert lr_at(5, cfg) == pytest.approx(0.1 * (0.001 * 0.5 + 0.5))
    assert lr_at(10, cfg) == pytest.approx(0.1)
    assert lr_at(49, cfg) == pytest.approx(0.1)
    assert lr_at(50, cfg) == pytest.approx(0.01)
    assert lr_at(80, cfg) == pytest.approx(0.001)


def test_batch_order_is_seeded_and_covers_each_epoch():
    n, b = 10, 3  # 3 batches per epoch, one image left out per epoch
    epoch0 = [batch_indices(i, n, b, seed=4) for i in range(3)]
    flat = sum(epoch0, [])
    assert len(set(flat)) == 9 and all(0 <= i < n for i in flat)
    assert epoch0 == [batch_indices(i, n, b, seed=4) for i in range(3)]
    assert batch_indices(3, n, b, seed=4) != epoch0[0] or batch_indices(4, n, b, seed=4) != epoch0[1]
    assert [batch_indices(i, n, b, seed=5) for i in range(3)] != epoch0


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no usable CUDA device"):
            resolve_device("cuda")


def test_config_validates_and_roundtrips(tmp_path):
    cfg = TrainConfig(data="d", out="o", preset="implemented", loss_form="laplace_upper", size_target="linear")
    assert cfg.losses.rpn.settings.alpha == __import__("fractions").Fraction(1, 9)
    assert cfg.losses.detection.form == "laplace_upper" and cfg.losses.rpn.size_target == "linear"
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.replace(preset="proposed").losses.rpn.settings.lam == __import__("fractions").Fraction(1, 4)
    custom = cfg.replace(box_losses=cfg.losses.to_dict() | {"rpn": {**cfg.losses.rpn.to_dict(), "lam": "3"}})
    assert custom.losses.rpn.settings.lam == 3
    assert TrainConfig(data="d", out="o", box_losses=custom.losses).losses == custom.losses
    for bad, match in ((dict(iters=0), "iters must be an int >= 1"), (dict(model="yolo"), "model must be one of"),
                       (dict(lr_steps=(0.9, 0.5)), "lr_steps must be increasing"),
                       (dict(device="gpu"), "device must be one of"), (dict(preset="nope"), "unknown preset .nope.; valid presets"),
                       (dict(backbone_weights="imagenet"), "the 'lab' model has no ImageNet weights"),
                       (dict(backbone_weights=""), "backbone_weights must be")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(data="d", out="o", **bad)
    vgg = TrainConfig(data="d", out="o", model="vgg16", backbone_weights="imagenet")
    assert TrainConfig.from_dict(json.loads(json.dumps(vgg.to_dict()))) == vgg
    assert TrainConfig(data="d", out="o").backbone_weights == "none"
    with pytest.raises(ValueError, match="unknown training-config keys"):
        TrainConfig.from_dict({"data": "d", "out": "o", "epochs": 3})
    with pytest.raises(FileNotFoundError, match="no config.json"):
        read_config(tmp_path)


def test_non_finite_loss_stops():
    class Diverged(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, images, targets):
            return {"loss_box_reg": self.w * float("nan"), "loss_classifier": self.w}

    model = Diverged()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        train_one_iteration(model, opt, [torch.zeros(3, 8, 8)], [{}], lr=0.1)
    assert model.w.item() == 1.0  # no step was taken


# ---------------------------------------------------------------------------------------------------------------
# evaluation against pycocotools with hand-made detections
# ---------------------------------------------------------------------------------------------------------------
class Replay(torch.nn.Module):
    """Returns prepared detections in dataset order (evaluate() does not shuffle)."""

    def __init__(self, outputs):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.outputs = list(outputs)

    def forward(self, images):
        return [self.outputs.pop(0) for _ in images]


def ground_truth(dataset):
    return [dataset[i][1] for i in range(len(dataset))]


def test_evaluate_perfect_and_shifted_detections(tiny_data):
    from labkit.detection.data import load_dataset

    val = load_dataset(tiny_data, "val")
    gts = ground_truth(val)
    perfect = [{"boxes": t["boxes"], "labels": t["labels"], "scores": torch.ones(len(t["labels"]))} for t in gts]
    m = evaluate(Replay(perfect), val)
    assert set(STAT_NAMES) <= set(m) and m["AP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0)
    assert m["num_detections"] == sum(len(t["labels"]) for t in gts) and m["num_images"] == 4

    def widened(boxes, iou):  # same centre, width scaled by 1/iou: IoU with the original is exactly `iou`
        b = boxes.clone()
        half = (b[:, 2] - b[:, 0]) / (2 * iou)
        cx = (b[:, 0] + b[:, 2]) / 2
        b[:, 0], b[:, 2] = cx - half, cx + half
        return b

    shifted = [{"boxes": widened(t["boxes"], 0.58), "labels": t["labels"], "scores": torch.ones(len(t["labels"]))}
               for t in gts]
    for backend in ("fast", "pycocotools"):
        m = evaluate(Replay(shifted), val, backend=backend)
        assert m["AP50"] == pytest.approx(1.0) and m["AP75"] == pytest.approx(0.0)
        # IoU 0.58 passes the thresholds 0.50 and 0.55 of the ten (0.50:0.05:0.95): AP = 2/10
        assert m["AP"] == pytest.approx(0.2)
    none = evaluate_detections(val.coco, [], image_ids=[g["image_id"] for g in gts])
    assert none["AP"] == 0.0 and none["AP50"] == 0.0


# ---------------------------------------------------------------------------------------------------------------
# exact resume after SIGKILL, the CLI, and DDP
# ---------------------------------------------------------------------------------------------------------------
DRIVER = """
import os, signal, sys
from labkit.detection.config import TrainConfig
from labkit.detection.engine import train
config = TrainConfig.from_dict(__import__("json").loads(sys.argv[1]))
kill_at = int(sys.argv[2])
def callback(record):
    if record["iteration"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
train(config, callback=callback, progress=False)
"""


def run_python(args, **kw):
    return subprocess.run([sys.executable, *args], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          **kw)


def final_state(run_dir):
    return torch.load(latest_checkpoint(run_dir), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_data, tmp_path_factory):
    from labkit.__main__ import main
    from labkit.detection.engine import train

    base = tmp_path_factory.mktemp("runs")
    whole = tiny_config(tiny_data, base / "whole")
    cut = tiny_config(tiny_data, base / "cut")
    r = run_python(["-c", DRIVER, json.dumps(cut.to_dict()), "3"])  # checkpoint at 2, killed after step 3
    assert r.returncode == -9, r.stderr
    assert final_state(cut.out)["iteration"] == 2
    threads = torch.get_num_threads()
    try:  # the rest in this process (no interpreter start-up), on one thread like the killed run
        torch.set_num_threads(1)
        train(whole, progress=False)
        assert main(["train", "--resume", "--out", cut.out, "--device", "cpu", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    return Path(whole.out), Path(cut.out)


def test_resume_after_sigkill_gives_the_same_weights(killed_and_resumed):
    whole, cut = killed_and_resumed
    a, b = final_state(whole), final_state(cut)
    assert a["iteration"] == b["iteration"] == 4
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    log_a = [json.loads(x) for x in (whole / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (cut / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log_b] == [1, 2, 3, 4]
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    assert json.loads((cut / "config.json").read_text())["box_losses"]["rpn"]["lam"] == "1/4"
    record = json.loads((cut / "provenance.json").read_text())  # made once, resumed once, both recorded
    assert len(record["resumed"]) == 1 and record["created"]["git_commit"] == record["resumed"][0]["git_commit"]
    assert json.loads((whole / "provenance.json").read_text())["resumed"] == []
    assert b["config"]["preset"] == "proposed"


def test_cli_evaluate_writes_metrics(killed_and_resumed, capsys):
    from labkit.__main__ import main

    _, cut = killed_and_resumed
    assert main(["evaluate", "--run", str(cut), "--split", "val", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    # the run was trained with no validation split: an evaluation on one goes to its own file, named for it
    assert "AP50=" in printed and f"wrote {cut / 'metrics-val.json'}" in printed
    assert not (cut / "metrics.json").exists()
    metrics = json.loads((cut / "metrics-val.json").read_text())
    assert set(STAT_NAMES) <= set(metrics) and metrics["iteration"] == 4 and metrics["num_images"] == 4
    assert all(-1.0 <= metrics[k] <= 1.0 for k in STAT_NAMES)


def test_cli_refuses_bad_requests(killed_and_resumed, tiny_data, capsys):
    from labkit.__main__ import main

    _, cut = killed_and_resumed
    assert main(["train", "--data", str(tiny_data), "--out", str(cut), "--iters", "2", "--device", "cpu"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--out", str(cut.parent / "new")]) == 2
    assert "--data is required" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["train", "--data", str(tiny_data), "--out", str(cut.parent / "gpu"), "--device", "cuda"]) == 2
        assert "no usable CUDA device" in capsys.readouterr().err


def test_cli_train_starts_the_backbone_from_a_state_dict(tiny_data, tmp_path, capsys, monkeypatch):
    """--backbone-weights PATH: the run records the absolute path and trains from that backbone (lr 0: the weights
    in the checkpoint are still the file's); --backbone-weights imagenet for the lab model is refused."""
    from labkit.__main__ import main
    from labkit.detection.backbones import LabBackbone

    torch.manual_seed(5)
    source = LabBackbone().state_dict()
    torch.save(source, tmp_path / "backbone.pt")
    monkeypatch.chdir(tmp_path)
    common = ["--data", str(tiny_data), "--iters", "1", "--batch-size", "2", "--image-size", "64", "--lr", "0",
              "--warmup-iters", "0", "--device", "cpu", "--no-eval", "--no-progress"]
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--backbone-weights", "backbone.pt", *common]) == 0
    assert read_config(out).backbone_weights == str((tmp_path / "backbone.pt").resolve())
    model = final_state(out)["model"]
    for key, value in source.items():
        if key.endswith(".weight"):  # conv and batch-norm weights (running statistics move in a training step)
            assert torch.equal(model[f"backbone.{key}"], value), key
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "imagenet"), "--backbone-weights", "imagenet", *common]) == 2
    assert "the 'lab' model has no ImageNet weights" in capsys.readouterr().err


def test_ddp_two_processes_gloo(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    r = run_python(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "labkit", "train",
                    "--data", str(tiny_data), "--out", str(out), "--iters", "2", "--batch-size", "4",
                    "--image-size", "64", "--checkpoint-every", "2", "--warmup-iters", "1", "--device", "cpu",
                    "--no-eval", "--no-progress"])
    assert r.returncode == 0, r.stderr[-3000:]
    state = final_state(out)
    assert state["iteration"] == 2 and len(state["rng"]) == 2  # both ranks' generators saved
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
