"""torchvision segmentation heads. ImageNet backbone weights are used when they are already in the torch
cache (or when the caller allows a download); they are never required."""
from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large, deeplabv3_resnet50, fcn_resnet50, \
    lraspp_mobilenet_v3_large

from engine.models.blocks import Normalize

HEADS: dict[str, tuple[Callable[..., nn.Module], object]] = {
    "lraspp-mobilenetv3": (lraspp_mobilenet_v3_large, MobileNet_V3_Large_Weights.IMAGENET1K_V1),
    "deeplabv3-mobilenetv3": (deeplabv3_mobilenet_v3_large, MobileNet_V3_Large_Weights.IMAGENET1K_V1),
    "deeplabv3-resnet50": (deeplabv3_resnet50, ResNet50_Weights.IMAGENET1K_V1),
    "fcn-resnet50": (fcn_resnet50, ResNet50_Weights.IMAGENET1K_V1),
}


def backbone_cached(weights) -> bool:
    """Whether torchvision would find these weights in the torch cache without downloading."""
    filename = os.path.basename(weights.url)
    return os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", filename))


class TorchvisionSegmenter(nn.Module):
    """Wraps a torchvision model: takes a 0..255 image, returns the 'out' logits at input size."""

    def __init__(self, name: str, num_classes: int, pretrained: bool) -> None:
        super().__init__()
        build, weights = HEADS[name]
        self.normalize = Normalize()
        kwargs = {"aux_loss": False} if name != "lraspp-mobilenetv3" else {}
        self.net = build(weights=None, weights_backbone=weights if pretrained else None, num_classes=num_classes,
                         **kwargs)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(image))["out"]
