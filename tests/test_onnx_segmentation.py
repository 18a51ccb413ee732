"""Segmentation networks as ONNX: dynamic sizes, the same logits as PyTorch, and the same masks from
``wsv predict --onnx`` as from the run folder."""
import json

import numpy as np
import pytest
import torch

from engine.cli.main import main
from engine.models.onnx_model import OnnxSegmenter, export_onnx
from engine.models.registry import ModelConfig, ModelError, build_model
from tests.test_dataset_io import make_dataset

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", ["unet", "efficientnet-lite0-unet"])
def test_the_onnx_file_gives_pytorchs_logits_at_any_size(tmp_path, name):
    model, _ = build_model(name, 3, pretrained=False)
    config = ModelConfig(name, ["background", "a", "b"], 96)
    result = export_onnx(model, config, tmp_path / "m.onnx")
    assert result["checked"] and result["max_probability_difference"] < 1e-4
    onnx_model = OnnxSegmenter(tmp_path / "m.onnx")
    assert onnx_model.config.classes == config.classes and onnx_model.config.working_size == 96
    for h, w in ((64, 96), (37, 90), (2, 64)):  # a multiple of the stride, odd sizes, a sliver
        x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h)) * 255
        with torch.no_grad():
            want = model.eval()(x)
        torch.testing.assert_close(onnx_model(x), want, atol=1e-3, rtol=1e-3)


def test_files_that_are_not_ours_are_refused(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="not an ONNX model"):
        OnnxSegmenter(tmp_path / "junk.onnx")
    with pytest.raises(ModelError, match="is not a file"):
        OnnxSegmenter(tmp_path / "missing.onnx")


def test_cli_export_then_predict_with_onnx_gives_the_same_masks(tmp_path, capsys):
    from PIL import Image

    make_dataset(tmp_path / "ds")
    assert main(["train", str(tmp_path / "ds"), "--model", "unet", "--steps", "3", "--batch-size", "2",
                 "--working-size", "48", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["export-model", str(tmp_path / "run"), "--onnx", str(tmp_path / "m.onnx"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["checked"] and result["classes"] == ["background", "cat", "dog"] and (tmp_path / "m.onnx").is_file()
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "ds" / "images"), "--out", str(tmp_path / "a")]) == 0
    assert main(["predict", "--onnx", str(tmp_path / "m.onnx"), str(tmp_path / "ds" / "images"),
                 "--out", str(tmp_path / "b")]) == 0
    for f in sorted((tmp_path / "a").glob("*.png")):
        np.testing.assert_array_equal(np.array(Image.open(f)), np.array(Image.open(tmp_path / "b" / f.name)))
    assert main(["predict", str(tmp_path / "ds"), "--out", str(tmp_path / "c")]) == 1  # neither run nor --onnx
    assert "one of them" in capsys.readouterr().err
