"""Detector backbones and the weights they start from: ``"none"`` (random initialisation), ``"imagenet"``
(torchvision's ImageNet classifier weights, through torchvision's own weights API) or the path of a local state dict.

==================  ====================================================  ===========================================
model               what ``imagenet`` (or a path) fills                   kept fixed when pretrained
==================  ====================================================  ===========================================
``lab``             nothing: labkit's own backbone has no ImageNet        nothing
                    weights (a path: a :class:`LabBackbone` state dict)
``vgg16``           conv1_1 … conv5_3 and fc6/fc7 (the box head) from     conv1_1 … conv2_2: Faster R-CNN's released
                    ``VGG16_Weights.IMAGENET1K_V1`` (a path: a state      code, which Section 6 trains with its
                    dict of torchvision's ``vgg16``); fc8 is dropped      default configuration, fine-tunes VGG-16
                                                                          from conv3_1 and starts fc6/fc7 from
                                                                          ImageNet too
``resnet50_fpn``    the ResNet-50 body from ``ResNet50_Weights.           torchvision's own rule for its detector:
                    IMAGENET1K_V1`` (a path: a ``resnet50`` state dict)   frozen batch norm, conv1 and layer1 fixed
==================  ====================================================  ===========================================

``imagenet`` calls ``WeightsEnum.get_state_dict`` (``torch.hub.load_state_dict_from_url``): it reads
``$TORCH_HOME/hub/checkpoints/<file named in the weights' URL>`` and downloads it there when missing. Without the
file and without a network the error names the file, the URL and ``TORCH_HOME``. Local files are read with
``torch.load(weights_only=True)``, the cached ImageNet file too.

The *layout* (which layers are fixed, frozen batch norm) follows ``backbone_weights`` even when nothing is loaded
(``load=False``): a checkpoint of a run that started from ImageNet weights then fits the model it is loaded into.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import ResNet50_Weights, VGG16_Weights, WeightsEnum, vgg16
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.ops.misc import FrozenBatchNorm2d

__all__ = [
    "NONE", "IMAGENET", "BACKBONE_WEIGHTS", "IMAGENET_WEIGHTS", "check_backbone_weights", "read_state_dict",
    "imagenet_state_dict", "LabBackbone", "VGG16Features", "lab_backbone", "vgg16_parts", "resnet50_fpn_backbone",
]

NONE, IMAGENET = "none", "imagenet"
#: the named choices of ``backbone_weights``; any other string is the path of a local state dict
BACKBONE_WEIGHTS = (NONE, IMAGENET)
#: torchvision's ImageNet weights for each model's backbone (the ``lab`` model has none)
IMAGENET_WEIGHTS: dict[str, WeightsEnum] = {
    "vgg16": VGG16_Weights.IMAGENET1K_V1,
    "resnet50_fpn": ResNet50_Weights.IMAGENET1K_V1,
}
#: conv1_1, conv1_2, conv2_1, conv2_2 and their ReLUs/pool: the first 10 modules of torchvision's VGG-16 features
_VGG16_FIXED = 10


def check_backbone_weights(model: str, value: Any) -> str:
    """``value`` as a string: ``"none"``, ``"imagenet"`` (not for ``lab``) or a path (not checked here: a run
    config may be written on one machine and trained on another)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"backbone_weights must be 'none', 'imagenet' or the path of a state dict, got {value!r}")
    if value == IMAGENET and model not in IMAGENET_WEIGHTS:
        raise ValueError(f"backbone_weights: the {model!r} model has no ImageNet weights (its backbone is labkit's "
                         f"own; ImageNet weights exist for {sorted(IMAGENET_WEIGHTS)}); use 'none' or a state dict "
                         "path")
    return value


def read_state_dict(path: str | Path, what: str = "weights") -> dict[str, Any]:
    """A state dict saved with ``torch.save``, read with ``torch.load(weights_only=True)`` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file at {path} (expected a state dict saved with torch.save)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{what}: {path} holds a {type(state).__name__}, expected a state dict")
    return state


def imagenet_state_dict(weights: WeightsEnum, progress: bool = True) -> dict[str, Any]:
    """torchvision's ``weights.get_state_dict``: the torch hub cache's copy, downloaded there first when missing."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    was_cached = cached.is_file()
    try:
        return weights.get_state_dict(progress=progress, check_hash=True, map_location="cpu", weights_only=True)
    except Exception as exc:
        if was_cached:  # torch.load's errors vary (UnpicklingError, RuntimeError, EOFError …): any means unreadable
            raise ValueError(f"backbone_weights: the cached ImageNet weights {cached} cannot be read ({exc}); delete "
                             "the file to download it again") from exc
        if not isinstance(exc, (OSError, RuntimeError)):  # URLError/HTTPError: OSErrors; a failed hash: RuntimeError
            raise
        home = os.environ.get("TORCH_HOME", "unset: defaults to $XDG_CACHE_HOME/torch or ~/.cache/torch")
        raise FileNotFoundError(
            f"backbone_weights='imagenet': torchvision's {weights} is not in the torch hub cache ({cached}) and "
            f"downloading {weights.url} failed ({type(exc).__name__}: {exc}). Without internet, copy that file to "
            f"{cached} (TORCH_HOME={home} sets the cache root), or pass the path of a local state dict"
        ) from exc


def _source_state(model: str, weights: str) -> dict[str, Any]:
    if weights == IMAGENET:
        return imagenet_state_dict(IMAGENET_WEIGHTS[model])
    return read_state_dict(weights, "backbone_weights")


def _load(module: nn.Module, state: dict[str, Any], source: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"backbone_weights: {source} does not fit the {type(module).__name__}: {exc}") from None


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class LabBackbone(nn.Sequential):
    """Six conv/BN/ReLU layers, three of stride 2: one stride-8 feature map with ``out_channels`` channels."""

    def __init__(self, width: int = 16, out_channels: int = 64) -> None:
        layers = (
            _conv_bn_relu(3, width, 2)
            + _conv_bn_relu(width, width)
            + _conv_bn_relu(width, 2 * width, 2)
            + _conv_bn_relu(2 * width, 2 * width)
            + _conv_bn_relu(2 * width, out_channels, 2)
            + _conv_bn_relu(out_channels, out_channels)
        )
        super().__init__(*layers)
        self.out_channels = out_channels


def lab_backbone(weights: str = NONE, load: bool = True) -> LabBackbone:
    """:class:`LabBackbone`, random or from a local state dict (``imagenet`` is refused: it has none)."""
    check_backbone_weights("lab", weights)
    backbone = LabBackbone()
    if weights != NONE and load:
        _load(backbone, read_state_dict(weights, "backbone_weights"), weights)
    return backbone


class VGG16Features(nn.Sequential):
    """VGG-16 up to conv5_3 + ReLU (stride 16, 512 channels): torchvision's ``features`` without the last pool."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__(*list(features)[:-1])
        self.out_channels = 512


def vgg16_parts(weights: str = NONE, load: bool = True) -> tuple[VGG16Features, TwoMLPHead]:
    """(backbone, fc6/fc7 box head) of the paper's VGG-16 detector. Pretrained (``imagenet`` or a path): both from
    torchvision's ``vgg16`` classifier, conv1_1 … conv2_2 fixed."""
    check_backbone_weights("vgg16", weights)
    if weights == NONE:  # as before pretrained weights existed: the same modules drawn in the same order
        return VGG16Features(vgg16(weights=None).features), TwoMLPHead(512 * 7 * 7, 4096)
    state = _source_state("vgg16", weights) if load else None  # before building: a failed download costs nothing
    net = vgg16(weights=None)
    if state is not None:
        _load(net, state, weights)
    backbone = VGG16Features(net.features)
    for layer in list(backbone)[:_VGG16_FIXED]:
        layer.requires_grad_(False)
    head = TwoMLPHead(1, 1)  # torchvision's head module (parameter names box_head.fc6, .fc7) around VGG's own layers
    head.fc6, head.fc7 = net.classifier[0], net.classifier[3]
    return backbone, head


def resnet50_fpn_backbone(weights: str = NONE, load: bool = True) -> BackboneWithFPN:
    """ResNet-50 FPN as ``fasterrcnn_resnet50_fpn`` builds it: random with batch norm and all layers trainable, or
    pretrained with frozen batch norm and 3 trainable layers (torchvision's rule for a pretrained backbone)."""
    check_backbone_weights("resnet50_fpn", weights)
    if weights == NONE:
        return resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5)
    state = _source_state("resnet50_fpn", weights) if load else None
    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d,
                                   trainable_layers=3)
    if state is not None:  # the classifier's fc is not part of the detector
        _load(backbone.body, {k: v for k, v in state.items() if not k.startswith("fc.")}, weights)
    return backbone
