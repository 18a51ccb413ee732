"""A small U-Net that learns from scratch at interactive speed on a CPU: four scales, ~0.5 M parameters."""
from __future__ import annotations

import torch
from torch import nn

from engine.models.blocks import DecoderBlock, Normalize, conv_bn_relu, pad_to_multiple


class UNet(nn.Module):
    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        c = [width, width * 2, width * 4, width * 8]
        self.normalize = Normalize()
        self.enc = nn.ModuleList()
        cin = 3
        for cout in c:
            self.enc.append(nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout)))
            cin = cout
        self.pool = nn.MaxPool2d(2)
        self.dec = nn.ModuleList([DecoderBlock(c[i + 1], c[i], c[i]) for i in reversed(range(len(c) - 1))])
        self.head = nn.Conv2d(c[0], num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(self.normalize(image), 8)
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for block in self.dec:
            x = block(x, skips.pop())
        return self.head(x)[..., :h, :w]
