"""Segmentation networks as ONNX files: written from a saved model, and run with onnxruntime in place of the
network (``wsv predict --onnx``), without the model's code.

The file takes ``image``: (N, 3, H, W) float RGB in 0..255 at the working size (the longer side
``working_size`` pixels, never upscaled), any H and W, and gives ``logits`` (N, K, H, W); the classes, the
working size and the architecture travel in the file's metadata (``wsv.classes`` as JSON, ``wsv.working_size``,
``wsv.model``), so that masks at each image's size come out of it exactly as from the saved model.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.io.atomic import write_atomic
from engine.models.registry import ModelConfig, ModelError

OPSET = 17


def export_onnx(model: nn.Module, config: ModelConfig, path: str | Path) -> dict:
    """Write ``model`` as ONNX with dynamic height and width, then (where onnxruntime is installed) run it once
    on an image of another size than the one traced and compare its probabilities with PyTorch's."""
    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the 'onnx' package: install WSV Studio with its 'onnx' extra") from None
    path = Path(path)
    model = model.cpu().eval()
    traced = torch.rand(1, 3, config.working_size * 3 // 4 + 5, config.working_size - 3,
                        generator=torch.Generator().manual_seed(0)) * 255  # not a multiple of the stride: padded
    tmp = path.with_name(path.name + ".tracing")
    try:
        with warnings.catch_warnings():  # the tracer's notes on shape arithmetic: the check below is what counts
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (traced,), str(tmp), opset_version=OPSET, dynamo=False, input_names=["image"],
                              output_names=["logits"], dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                                                     "logits": {0: "batch", 2: "height", 3: "width"}})
        graph = onnx.load(str(tmp))
    except (RuntimeError, torch.onnx.OnnxExporterError) as exc:
        raise ModelError(f"the {config.model} network cannot be written as ONNX: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    for key, value in (("wsv.classes", json.dumps(config.classes)), ("wsv.working_size", str(config.working_size)),
                       ("wsv.model", config.model)):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    write_atomic(path, lambda p: onnx.save(graph, str(p)))
    result = {"onnx": str(path), "opset": OPSET, "classes": config.classes, "working_size": config.working_size,
              "checked": False}
    try:
        segmenter = OnnxSegmenter(path)
    except ModelError:
        return result  # no onnxruntime here: written, not run
    x = torch.rand(1, 3, config.working_size // 2 + 7, config.working_size, generator=torch.Generator().manual_seed(1))
    x = x * 255
    with torch.no_grad():
        want = torch.softmax(model(x), 1)
        got = torch.softmax(segmenter(x), 1)
    return {**result, "checked": True, "max_probability_difference": float((got - want).abs().max())}


class OnnxSegmenter(nn.Module):
    """An ONNX segmentation file standing in for the network: called on (N, 3, H, W) images in 0..255, it
    returns logits as a tensor, so mask making (engine.refine.masks) uses it as it uses a network."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise ModelError("running an ONNX file needs the 'onnxruntime' package: install WSV Studio with its "
                             "'onnx' extra") from None
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path} is not a file")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own classes for damaged or foreign files
            raise ModelError(f"{path} is not an ONNX model onnxruntime can run: {exc}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            classes = json.loads(meta["wsv.classes"])
            working_size = int(meta["wsv.working_size"])
        except (KeyError, ValueError):
            raise ModelError(f"{path} was not written by wsv export-model (it has no classes and working size)") \
                from None
        self.config = ModelConfig(meta.get("wsv.model", "onnx"), classes, working_size, "onnx")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.detach().float().cpu().numpy()
        (logits,) = self.session.run(["logits"], {"image": np.ascontiguousarray(x)})
        return torch.from_numpy(logits).to(image.device)
