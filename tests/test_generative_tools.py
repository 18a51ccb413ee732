"""A trained DDPM as an image tool (inpainting, 2x super-resolution) and latent diffusion in a VAE's codes."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from engine.generative.config import GenerativeConfig
from engine.generative.data import builtin_digits
from engine.generative.models import GenerativeModelError, build_generative
from engine.generative.trainer import GenerativeTrainer
from engine.settings import SettingError
from engine.training.common import TrainingError


def test_inpainting_keeps_the_known_pixels_and_super_resolution_keeps_the_block_means(one_thread):
    from engine.generative.restore import inpaint, low_frequencies, super_resolve

    torch.manual_seed(0)
    model = build_generative(GenerativeConfig(model="ddpm", image_size=16, base_channels=8, timesteps=12,
                                              device="cpu"))
    for p in model.ema.model.parameters():  # an ε-model that says something, so the hole gets filled
        p.data.normal_(0, 0.1)
    image = torch.rand(2, 1, 16, 16) * 2 - 1
    keep = torch.ones(2, 1, 16, 16, dtype=torch.bool)
    keep[:, :, 4:12, 4:12] = False
    for resample in (1, 3):
        out = inpaint(model, image, keep, torch.Generator().manual_seed(1), resample=resample)
        assert torch.equal(out[keep.expand_as(out)], image[keep.expand_as(image)])
        assert not torch.allclose(out[~keep.expand_as(out)], image[~keep.expand_as(image)])
        assert out.abs().max() <= 1.5
    low = torch.rand(2, 1, 8, 8) * 2 - 1
    high = super_resolve(model, low, torch.Generator().manual_seed(2))
    assert high.shape == (2, 1, 16, 16)
    torch.testing.assert_close(torch.nn.functional.avg_pool2d(high, 2), low, atol=1e-5, rtol=0)
    assert (high - low_frequencies(high)).abs().max() > 0.01  # the model drew detail within the blocks
    with pytest.raises(GenerativeModelError, match="16 x 16"):
        inpaint(model, torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8, dtype=torch.bool))


def test_wsv_generate_inpaint_and_upscale(tmp_path, capsys, one_thread):
    import json

    from engine.cli.main import main

    run = tmp_path / "run"
    assert main(["generate", "train", "ddpm", "--builtin", "digits", "--out", str(run), "--size", "16", "--steps",
                 "2", "--batch-size", "4", "--base-channels", "8", "--timesteps", "10", "--device", "cpu"]) == 0
    capsys.readouterr()
    photo = np.zeros((40, 60, 3), np.uint8)
    photo[10:30, 20:40] = 200
    Image.fromarray(photo).save(tmp_path / "in.png")
    assert main(["generate", "inpaint", str(run), str(tmp_path / "in.png"), "--hole", "20,0,40,20", "--resample",
                 "2", "--out", str(tmp_path / "inp.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["hole_pixels"] == 8 * 8  # x 20..40, y 0..20 of the photo: columns 4..12, rows 0..8 at 16 px
    assert Image.open(tmp_path / "inp.png").size == (4 * (2 * 18 + 2), 4 * (18 + 2))
    mask = np.zeros((40, 60), np.uint8)
    mask[:, :30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert main(["generate", "inpaint", str(run), str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                 "--resample", "1", "--out", str(tmp_path / "inp2.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hole_pixels"] == 16 * 8  # the left half of the centre square
    assert main(["generate", "inpaint", str(run), str(tmp_path / "in.png"), "--hole", "0,0,5,5", "--out",
                 str(tmp_path / "x.png")]) != 0
    assert "centred square" in capsys.readouterr().err
    assert main(["generate", "upscale", str(run), str(tmp_path / "in.png"), "--out", str(tmp_path / "up.png"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output_size"] == 16
    assert Image.open(tmp_path / "up.png").size == (4 * (3 * 18 + 2), 4 * (18 + 2))


def test_latent_diffusion_learns_the_vae_codes_and_decodes_them(tmp_path, one_thread):
    from engine.generative.latent import encode_all
    from engine.generative.models import load_generative, save_generative

    data = builtin_digits(16, n=64)
    vae_trainer = GenerativeTrainer(GenerativeConfig(model="vae", image_size=16, steps=3, batch_size=8,
                                                     base_channels=8, latent_dim=8, device="cpu"), data)
    list(vae_trainer.run())
    save_generative(vae_trainer.model, tmp_path / "vae")
    config = GenerativeConfig(model="ddpm", image_size=16, steps=3, batch_size=8, base_channels=8, timesteps=20,
                              preview_ddim_steps=3, preview_count=4, device="cpu", latent_vae=str(tmp_path / "vae"))
    trainer = GenerativeTrainer(config, data)
    codes = encode_all(vae_trainer.model.net, data.images)
    assert trainer.images.shape == (64, 8)  # the DDPM learns 8-d codes, scaled to unit variance
    assert trainer.config.latent_scale == pytest.approx(float(codes.std()), rel=1e-5)
    torch.testing.assert_close(trainer.images * trainer.config.latent_scale, codes)
    records = list(trainer.run())
    assert records[-1].preview.samples.shape[2] == 3  # previews are decoded images
    trainer.save(tmp_path / "ldm")
    model = load_generative(tmp_path / "ldm")
    assert model.latent and model.noise(2).shape == (2, 8)
    samples = model.sample(2, torch.Generator().manual_seed(0), ddim_steps=3)
    assert samples.shape == (2, 1, 16, 16)  # decoded: the shapes round-trip from codes to images
    z = torch.randn(2, 8)
    torch.testing.assert_close(model.to_images(z), vae_trainer.model.net.decode(z * model.config.latent_scale))
    frames = list(model.reverse_process(model.noise(2), ddim_steps=3))
    assert len(frames) == 3 and frames[-1].x.shape == (2, 1, 16, 16)
    with pytest.raises(SettingError, match="latent_vae"):
        GenerativeConfig(model="gan", latent_vae=str(tmp_path / "vae"))
    with pytest.raises(TrainingError, match="needs a VAE run"):
        GenerativeTrainer(dataclasses.replace(config, latent_vae=str(tmp_path / "ldm")), data)
