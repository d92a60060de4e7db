"""labkit.detection.backbones: starting a detector from ImageNet weights through torchvision's weights API and the
torch hub cache, or from a local state dict — tested without a network: the "downloaded" file is placed in a
temporary ``$TORCH_HOME/hub/checkpoints/`` under the name in torchvision's URL, with the shapes of a freshly built
network (random values), and any download attempt fails as it would offline."""
from __future__ import annotations

import os
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torch.hub
from torchvision.models import ResNet50_Weights, VGG16_Weights, resnet50, vgg16
from torchvision.ops.misc import FrozenBatchNorm2d

from labkit.detection.backbones import IMAGENET_WEIGHTS, LabBackbone, check_backbone_weights
from labkit.detection.model import build_model, model_parts, paper_faster_rcnn


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty torch hub cache under a temporary TORCH_HOME; downloads fail as they do without a network (torch.hub
    downloads through its module-level download_url_to_file, which is replaced here, in the test only)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    attempts = []

    def unreachable(url, dst, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    return checkpoints, attempts


def _cache(checkpoints: Path, weights, state) -> Path:
    path = checkpoints / os.path.basename(urlparse(weights.url).path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_resnet50_fpn_starts_from_the_cached_imagenet_file(offline_hub):
    checkpoints, attempts = offline_hub
    torch.manual_seed(1)
    state = resnet50(weights=None).state_dict()  # torchvision's file layout, random values
    path = _cache(checkpoints, ResNet50_Weights.IMAGENET1K_V1, state)
    assert path.name == "resnet50-0676ba61.pth"
    torch.manual_seed(2)
    model = build_model("resnet50_fpn", 3, "implemented", image_size=64, backbone_weights="imagenet")
    assert attempts == []  # read from the cache, nothing fetched
    body = model.backbone.body.state_dict()
    compared = [k for k in state if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    assert set(body) == set(compared)
    for key in compared:
        assert torch.equal(body[key], state[key]), key
    # torchvision's rule for a pretrained ResNet detector: frozen batch norm, conv1 and layer1 fixed
    assert isinstance(model.backbone.body.bn1, FrozenBatchNorm2d)
    body = model.backbone.body
    assert not body.conv1.weight.requires_grad and not body.layer1[0].conv1.weight.requires_grad
    assert body.layer2[0].conv1.weight.requires_grad


def test_imagenet_weights_missing_offline_is_a_clear_error(offline_hub):
    checkpoints, attempts = offline_hub
    url = VGG16_Weights.IMAGENET1K_V1.url
    with pytest.raises(FileNotFoundError) as info:
        build_model("vgg16", 3, "implemented", backbone_weights="imagenet")
    message = str(info.value)
    assert attempts == [url]
    for part in (url, str(checkpoints / "vgg16-397923af.pth"), "TORCH_HOME", "URLError"):
        assert part in message, part
    assert not (checkpoints / "vgg16-397923af.pth").exists()


def test_a_broken_cached_file_is_named(offline_hub):
    checkpoints, _ = offline_hub
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet50-0676ba61.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="(?s)resnet50-0676ba61.pth cannot be read .*delete the file"):
        build_model("resnet50_fpn", 3, image_size=64, backbone_weights="imagenet")


@pytest.mark.slow
def test_vgg16_starts_from_imagenet_like_py_faster_rcnn(offline_hub):
    """VGG-16 conv1_1 … conv5_3 and fc6/fc7 come from the file (fc8 is dropped); conv1–conv2 stay fixed."""
    checkpoints, attempts = offline_hub
    torch.manual_seed(1)
    state = vgg16(weights=None).state_dict()
    _cache(checkpoints, VGG16_Weights.IMAGENET1K_V1, state)
    model = build_model("vgg16", 3, "implemented", backbone_weights="imagenet")
    assert attempts == []
    backbone = model.backbone.state_dict()
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    assert set(backbone) == set(features)
    for key, value in features.items():
        assert torch.equal(backbone[key], value), key
    head = model.roi_heads.box_head
    for mine, theirs in ((head.fc6, "classifier.0"), (head.fc7, "classifier.3")):
        assert torch.equal(mine.weight, state[f"{theirs}.weight"]) and torch.equal(mine.bias, state[f"{theirs}.bias"])
    fixed = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    assert fixed == [f"{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias")]  # conv1_1, conv1_2, conv2_1, conv2_2


def test_lab_backbone_from_a_local_state_dict(tmp_path):
    torch.manual_seed(3)
    source = LabBackbone()
    path = tmp_path / "lab_backbone.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(4)
    model = build_model("lab", 3, image_size=64, backbone_weights=str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    torch.manual_seed(4)
    assert not torch.equal(build_model("lab", 3, image_size=64).backbone[0].weight, source[0].weight)


def test_backbone_weights_errors(tmp_path):
    with pytest.raises(ValueError, match="the 'lab' model has no ImageNet weights"):
        build_model("lab", 3, image_size=64, backbone_weights="imagenet")
    with pytest.raises(FileNotFoundError, match="backbone_weights: no file at"):
        build_model("lab", 3, image_size=64, backbone_weights=str(tmp_path / "missing.pt"))
    path = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=f"backbone_weights: {path} does not fit the LabBackbone"):
        build_model("lab", 3, image_size=64, backbone_weights=str(path))
    with pytest.raises(ValueError, match="backbone_weights must be"):
        check_backbone_weights("vgg16", "")
    assert set(IMAGENET_WEIGHTS) == {"vgg16", "resnet50_fpn"}


def test_whole_model_weights_keep_the_pretrained_layout_and_read_no_backbone_file(offline_hub, tmp_path):
    """A checkpoint of a run started from ImageNet (frozen batch norm) loads into a model built with the same
    backbone_weights, and nothing is read from the hub cache (the file is absent, the network too)."""
    _, attempts = offline_hub
    torch.manual_seed(0)
    backbone, options = model_parts("resnet50_fpn", 3, 64, "imagenet", load_backbone=False)
    trained = paper_faster_rcnn(backbone, "implemented", **options)
    path = tmp_path / "run.pt"
    torch.save({"model": trained.state_dict()}, path)
    model = build_model("resnet50_fpn", 3, image_size=64, backbone_weights="imagenet", weights=path)
    assert attempts == [] and isinstance(model.backbone.body.bn1, FrozenBatchNorm2d)
    assert not model.backbone.body.conv1.weight.requires_grad
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
