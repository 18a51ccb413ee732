"""torchvision detectors by name, and saving/loading them as safetensors + JSON (loading never unpickles).

ImageNet backbone weights are used when they are already in the torch cache (or when the caller allows a
download); otherwise the detector starts from random weights and says so. The backbone weights change the
architecture torchvision builds (frozen batch norm; SSDlite's full-width tail), so a saved detector records
where its weights came from and loading rebuilds that same architecture without needing the weights file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights, mobilenet_v3_large
from torchvision.models.detection import (fasterrcnn_mobilenet_v3_large_320_fpn, fcos_resnet50_fpn,
                                          retinanet_resnet50_fpn, ssdlite320_mobilenet_v3_large)
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.ssdlite import SSDLiteHead, _mobilenet_extractor
from torchvision.ops.misc import FrozenBatchNorm2d

from engine.errors import UserError
from engine.detection.postprocess import RAW_NMS_IOU, Detections
from engine.io.weights import WeightsError, load_weights, read_description, save_weights, write_json
from engine.models.torchvision_heads import backbone_cached

DETECTOR_FILE = "detector.json"
WEIGHTS_FILE = "detector.safetensors"
FORMAT_VERSION = 1

RAW_SCORE_FLOOR = 0.01
"""Detections below this class probability are never kept, even for the GUI's lowest threshold."""
RAW_MAX_DETECTIONS = 300


class DetectorError(UserError):
    """A detector that cannot be built, saved, loaded or exported, with the reason in words."""


@dataclass(frozen=True)
class _Spec:
    build: Callable[..., nn.Module]
    backbone: object
    """the ImageNet weights enum of the backbone"""
    rcnn: bool
    """Faster R-CNN prefixes its post-processing settings with ``box_``"""
    resizable: bool
    """False for SSDlite, whose input is always resized to 320 x 320"""


DETECTORS: dict[str, _Spec] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": _Spec(fasterrcnn_mobilenet_v3_large_320_fpn,
                                                   MobileNet_V3_Large_Weights.IMAGENET1K_V1, True, True),
    "fcos_resnet50_fpn": _Spec(fcos_resnet50_fpn, ResNet50_Weights.IMAGENET1K_V1, False, True),
    "retinanet_resnet50_fpn": _Spec(retinanet_resnet50_fpn, ResNet50_Weights.IMAGENET1K_V1, False, True),
    "ssdlite320_mobilenet_v3_large": _Spec(ssdlite320_mobilenet_v3_large, MobileNet_V3_Large_Weights.IMAGENET1K_V1,
                                           False, False),
}
DEFAULT_DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"
"""small and fast enough to train on a CPU"""


@dataclass
class DetectorConfig:
    """What a saved detector needs besides its weights to be rebuilt and used."""

    model: str
    classes: list[str]
    """the project's class names; ``run_detector`` answers in their indices"""
    working_size: int = 512
    """longer image side, in pixels, of the images the detector was trained on and is given"""
    min_size: int | None = None
    """the detector's internal resize of the shorter side; None: torchvision's default for the model"""
    max_size: int | None = None
    pretrained: str = "none"
    """where the backbone's initial weights came from: 'none' or 'imagenet (...)'"""
    method: str = "torchvision"
    extra: dict = field(default_factory=dict)
    label_offset: int = 0
    """torchvision label = class index + label_offset (engine.detection.labels.label_offset); detectors saved
    before projects without a background class could train one lack it, and all used 0"""
    format_version: int = FORMAT_VERSION

    @property
    def num_labels(self) -> int:
        return len(self.classes) + self.label_offset


def _settings(spec: _Spec, min_size: int | None, max_size: int | None) -> dict:
    prefix = "box_" if spec.rcnn else ""
    kwargs = {f"{prefix}score_thresh": RAW_SCORE_FLOOR, f"{prefix}nms_thresh": RAW_NMS_IOU,
              f"{prefix}detections_per_img": RAW_MAX_DETECTIONS}
    if spec.resizable:
        kwargs.update({k: v for k, v in (("min_size", min_size), ("max_size", max_size)) if v is not None})
    return kwargs


def _spec(name: str) -> _Spec:
    if name not in DETECTORS:
        raise DetectorError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name]


def build_detector(name: str, num_labels: int, *, pretrained: bool = True, allow_download: bool = False,
                   min_size: int | None = None, max_size: int | None = None) -> tuple[nn.Module, str]:
    """The detector with ``num_labels`` outputs, label 0 meaning "no object", and where its backbone's initial
    weights came from ('imagenet (...)' or 'none')."""
    spec = _spec(name)
    if num_labels < 2:
        raise DetectorError("a detector needs at least one object class")
    use = pretrained and (allow_download or backbone_cached(spec.backbone))
    model = spec.build(weights=None, weights_backbone=spec.backbone if use else None, num_classes=num_labels,
                       **_settings(spec, min_size, max_size))
    return model, f"imagenet ({spec.backbone})" if use else "none"


def pretrained_note(name: str) -> str:
    """Why a detector starts from random weights, and how to change that."""
    spec = _spec(name)
    file = Path(torch.hub.get_dir()) / "checkpoints" / Path(spec.backbone.url).name
    return (f"{name}: ImageNet backbone weights not found at {file}; starting from random weights (learns more "
            f"slowly and needs more boxes). Allow the download to use them.")


def _freeze_batch_norms(module: nn.Module) -> None:
    """Replace BatchNorm2d by FrozenBatchNorm2d, as torchvision does for a backbone with pretrained weights."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
        else:
            _freeze_batch_norms(child)


def _skeleton(config: DetectorConfig) -> nn.Module:
    """The architecture a detector was trained with, with random weights, never reading a weights file."""
    spec = _spec(config.model)
    model = spec.build(weights=None, weights_backbone=None, num_classes=config.num_labels,
                       **_settings(spec, config.min_size, config.max_size))
    if config.pretrained == "none":
        return model
    if spec.resizable:
        _freeze_batch_norms(model.backbone)
        return model
    # SSDlite keeps trainable batch norm but uses MobileNetV3's full-width tail with a pretrained backbone.
    norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    model.backbone = _mobilenet_extractor(mobilenet_v3_large(weights=None, norm_layer=norm, reduced_tail=False), 6, norm)
    channels = det_utils.retrieve_out_channels(model.backbone, (320, 320))
    model.head = SSDLiteHead(channels, model.anchor_generator.num_anchors_per_location(), config.num_labels, norm)
    return model


def save_detector(model: nn.Module, config: DetectorConfig, folder: str | Path) -> None:
    folder = Path(folder)
    save_weights(model.state_dict(), folder / WEIGHTS_FILE, asdict(config), folder / DETECTOR_FILE)


def write_detector_json(folder: Path, description: dict) -> None:
    write_json(folder / DETECTOR_FILE, description)


def read_detector_json(folder: str | Path) -> dict:
    path = Path(folder) / DETECTOR_FILE
    if not path.is_file():
        raise DetectorError(f"{folder} holds no saved detector ({DETECTOR_FILE} expected; train one with wsv detect train)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DetectorError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise DetectorError(f"{path} is not a detector description this version of WSV Studio can read")
    return raw


def load_torchvision_detector(folder: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, DetectorConfig]:
    folder = Path(folder)
    read_detector_json(folder)  # the readable copy must be there and sound, as for a HOG + SVM detector
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise DetectorError(f"{folder} has no {WEIGHTS_FILE}")
    try:
        config = DetectorConfig(**read_description(weights, folder / DETECTOR_FILE))
        state = load_weights(weights)
    except WeightsError as exc:
        raise DetectorError(str(exc)) from None
    except TypeError as exc:
        raise DetectorError(f"{folder / DETECTOR_FILE} is not a valid detector description: {exc}") from None
    model = _skeleton(config)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError) as exc:
        raise DetectorError(f"{weights} does not match a {config.model} with {config.num_labels} labels: {exc}") from None
    return model.to(device).eval(), config


@torch.no_grad()
def run_detector(model: nn.Module, pixels: np.ndarray, device: torch.device, amp: bool = False,
                 label_offset: int = 0) -> Detections:
    """Raw detections (see postprocess) for an (H, W, 3) uint8 image, in its pixel coordinates, in eval mode,
    labelled with class indices (the model's labels less ``label_offset``)."""
    was_training = model.training
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float().div(255.0).to(device)
    with torch.autocast(device.type, enabled=amp):
        out = model([x])[0]
    model.train(was_training)
    return Detections(out["boxes"].float().cpu().numpy(), out["scores"].float().cpu().numpy(),
                      out["labels"].cpu().numpy() - label_offset)


def export_onnx(model: nn.Module, config: DetectorConfig, path: str | Path) -> dict:
    """Write the detector as ONNX (input: one (3, H, W) float image in 0..1; outputs: boxes, scores, labels, the
    labels being class index + ``config.label_offset`` as detector.json records).
    Where onnxruntime is installed, the file is run once and compared with PyTorch; ``checked`` says whether."""
    model = model.cpu().eval()
    h, w = (config.working_size * 3 // 4, config.working_size)
    x = torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))
    try:
        torch.onnx.export(model, ([x],), str(path), opset_version=17, dynamo=False, input_names=["image"],
                          output_names=["boxes", "scores", "labels"], dynamic_axes={"image": {1: "height", 2: "width"}})
    except (ImportError, torch.onnx.OnnxExporterError) as exc:
        raise DetectorError(f"ONNX export needs the 'onnx' package ({exc})") from None
    result = {"path": str(path), "checked": False}
    try:
        import onnxruntime
    except ImportError:
        return result
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = model([x])[0]
    if len(got[0]) != len(want["boxes"]):
        raise DetectorError(f"the ONNX file finds {len(got[0])} boxes where PyTorch finds {len(want['boxes'])}")
    diff = float(np.abs(got[0] - want["boxes"].numpy()).max()) if len(got[0]) else 0.0
    return {**result, "checked": True, "max_box_difference_px": diff}
