"""torchvision detectors: built by name, pretrained weights only from the cache, saved and loaded (with the
architecture that pretrained weights imply) without unpickling, and clear errors."""
import json

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torchvision.models import WeightsEnum

from engine.detection import models
from engine.detection.models import DETECTORS, DetectorConfig, DetectorError, build_detector, export_onnx, \
    load_torchvision_detector, pretrained_note, save_detector
from engine.io.weights import save_weights


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fake_imagenet(monkeypatch):
    """Pretend the ImageNet backbone weights are in the torch cache: torchvision gets freshly initialised backbone
    weights where it would read the file, so the pretrained architecture is built without any download."""
    def state_dict(self, *args, **kwargs):
        return (tvm.mobilenet_v3_large() if "mobilenet" in self.url else tvm.resnet50()).state_dict()
    monkeypatch.setattr(WeightsEnum, "get_state_dict", state_dict)
    monkeypatch.setattr(models, "backbone_cached", lambda weights: True)


def test_weights_are_never_downloaded_unless_allowed(monkeypatch):
    def no_download(self, *args, **kwargs):
        raise AssertionError("tried to read or download backbone weights")
    monkeypatch.setattr(WeightsEnum, "get_state_dict", no_download)
    monkeypatch.setattr(models, "backbone_cached", lambda weights: False)
    model, source = build_detector(models.DEFAULT_DETECTOR, 3)
    assert source == "none"
    assert model.roi_heads.box_predictor.cls_score.out_features == 3  # background + two classes
    note = pretrained_note(models.DEFAULT_DETECTOR)
    assert "mobilenet_v3_large-" in note and "random weights" in note
    with pytest.raises(DetectorError, match="unknown detector"):
        build_detector("yolo", 3)
    with pytest.raises(DetectorError, match="at least one object class"):
        build_detector(models.DEFAULT_DETECTOR, 1)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", list(DETECTORS))
def test_pretrained_architecture_round_trips(name, fake_imagenet, tmp_path):
    torch.manual_seed(0)
    model, source = build_detector(name, 3, min_size=64, max_size=64)
    assert source.startswith("imagenet")
    config = DetectorConfig(name, ["background", "a", "b"], 64, 64, 64, source)
    save_detector(model, config, tmp_path)
    assert json.loads((tmp_path / "detector.json").read_text())["pretrained"] == source
    loaded, cfg = load_torchvision_detector(tmp_path)
    assert cfg == config
    assert [type(m) for m in loaded.modules()] == [type(m) for m in model.modules()]
    model.eval()
    x = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        images = model.transform([x])[0].tensors
        want, got = model.backbone(images), loaded.backbone(images)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
    pixels = (x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    a = models.run_detector(model, pixels, torch.device("cpu"))
    b = models.run_detector(loaded, pixels, torch.device("cpu"))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_loading_errors(tmp_path):
    with pytest.raises(DetectorError, match="no saved detector"):
        load_torchvision_detector(tmp_path)
    model, _ = build_detector(models.DEFAULT_DETECTOR, 2, pretrained=False)
    save_detector(model, DetectorConfig(models.DEFAULT_DETECTOR, ["background", "a"]), tmp_path)
    raw = json.loads((tmp_path / "detector.json").read_text())
    weights = tmp_path / models.WEIGHTS_FILE
    save_weights(model.state_dict(), weights, {**raw, "classes": ["background", "a", "b"]}, tmp_path / "detector.json")
    with pytest.raises(DetectorError, match="does not match"):
        load_torchvision_detector(tmp_path)
    save_weights(model.state_dict(), weights, {**raw, "colour": "red"}, tmp_path / "detector.json")
    with pytest.raises(DetectorError, match="not a valid detector description"):
        load_torchvision_detector(tmp_path)
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(DetectorError, match="damaged or incomplete"):
        load_torchvision_detector(tmp_path)
    (tmp_path / "detector.json").write_text("{")
    with pytest.raises(DetectorError, match="not valid JSON"):
        load_torchvision_detector(tmp_path)


def test_onnx_export(tmp_path):
    model, _ = build_detector(models.DEFAULT_DETECTOR, 2, pretrained=False, min_size=64, max_size=64)
    config = DetectorConfig(models.DEFAULT_DETECTOR, ["background", "a"], 64, 64, 64)
    try:
        import onnx  # noqa: F401
    except ImportError:
        with pytest.raises(DetectorError, match="needs the 'onnx' package"):
            export_onnx(model, config, tmp_path / "d.onnx")
        return
    result = export_onnx(model, config, tmp_path / "d.onnx")
    assert (tmp_path / "d.onnx").is_file()
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        assert result["checked"] is False
    else:
        assert result["checked"] and result["max_box_difference_px"] < 1e-2
