"""Class-conditional DDPM and GAN: guidance against its definitions, samples that follow their labels, labelled
data."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.annotations.types import Box
from engine.generative.config import GenerativeConfig
from engine.generative.data import TrainingImages, builtin_digits, load_training_images, project_objects
from engine.generative.diffusion import make_schedule
from engine.generative.evaluate import class_accuracy
from engine.generative.guidance import ClassifierGuided, FreeGuided
from engine.generative.models import GenerativeModelError, build_generative
from engine.generative.trainer import GenerativeTrainer
from engine.generative.unet import UNet
from engine.project import Project
from engine.settings import SettingError


def _conditional(**kw):
    base = dict(model="ddpm", image_size=16, base_channels=8, timesteps=20, device="cpu", conditional=True,
                class_names=["a", "b", "c"])
    return GenerativeConfig(**{**base, **kw})


def test_guidance_scale_zero_is_the_unconditional_sampler_and_others_follow_the_formula(one_thread):
    torch.manual_seed(0)
    model = build_generative(_conditional())
    for p in model.ema.model.parameters():  # a network whose answer depends on the label
        p.data.normal_(0, 0.2)
    y = torch.tensor([0, 2])
    a = model.sample(2, torch.Generator().manual_seed(1), ddim_steps=5, labels=y, guidance=0)
    b = model.sample(2, torch.Generator().manual_seed(1), ddim_steps=5)
    assert torch.equal(a, b)
    net = model.eps_model()
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([3, 11])
    cond, uncond = net(x, t, y), net(x, t)
    assert not torch.allclose(cond, uncond)
    torch.testing.assert_close(FreeGuided(net, y, 1.0)(x, t), cond)
    torch.testing.assert_close(FreeGuided(net, y, 2.5)(x, t), uncond + 2.5 * (cond - uncond), atol=1e-5, rtol=1e-5)
    with pytest.raises(GenerativeModelError, match="0..2"):
        model.sample(1, labels=torch.tensor([3]))


class _Linear(torch.nn.Module):
    """log p(y | x) = softmax(W x): its gradient in x is W_y − Σ_k p_k W_k, worked out by hand below."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, t):
        return x.flatten(1) @ self.w.T


def test_classifier_guidance_adds_the_scaled_gradient_of_log_p():
    schedule = make_schedule("linear", 50)
    w = torch.randn(3, 16, dtype=torch.float32)
    classifier = _Linear(w)
    eps_model = lambda x, t: torch.zeros_like(x)  # noqa: E731 - a stand-in ε-model
    x, t, y = torch.randn(2, 1, 4, 4), torch.tensor([5, 40]), torch.tensor([1, 2])
    guided = ClassifierGuided(eps_model, classifier, schedule, y, 2.0)(x, t)
    p = torch.softmax(x.flatten(1) @ w.T, 1)
    grad = w[y] - p @ w
    sigma = (1 - schedule.alpha_bars[t]).sqrt().float()
    expected = -2.0 * sigma[:, None] * grad
    torch.testing.assert_close(guided.flatten(1), expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(ClassifierGuided(eps_model, classifier, schedule, y, 0.0)(x, t), torch.zeros_like(x))


@pytest.mark.timeout(300)
def test_conditional_samples_show_their_class(one_thread):
    """Digits 0 and 1: after 700 steps a separately trained classifier labels the guided samples right far above
    chance (0.5), and the unconditional ones (scale 0) near chance."""
    digits = builtin_digits(16, n=600)
    keep = digits.labels < 2
    data = TrainingImages(digits.images[keep], "digits 0 and 1", None, digits.labels[keep], ("0", "1"))
    config = GenerativeConfig(model="ddpm", image_size=16, steps=700, batch_size=32, base_channels=16,
                              timesteps=200, preview_ddim_steps=2, preview_count=2, device="cpu", conditional=True,
                              lr=2e-3, preview_interval_s=1e9)
    trainer = GenerativeTrainer(config, data)
    records = list(trainer.run())
    assert trainer.config.class_names == ["0", "1"]
    assert trainer.preview_labels.tolist() == [0, 0, 1, 1] and records[-1].preview.samples.shape[0] == 2 * 18 + 2
    y = torch.arange(2).repeat_interleave(16)
    accuracy = {}
    for scale in (0.0, 3.0):
        samples = trainer.model.sample(32, torch.Generator().manual_seed(0), ddim_steps=20, labels=y, guidance=scale)
        check = class_accuracy(samples, y, data.images, data.labels, 2, steps=150)
        assert check.judge_heldout_accuracy > 0.95
        accuracy[scale] = check.sample_accuracy
    assert accuracy[3.0] >= 0.85 and accuracy[0.0] <= 0.75


def test_digits_and_boxed_objects_come_with_their_labels(tmp_path):
    digits = builtin_digits(16, n=50)
    assert digits.labels.shape == (50,) and digits.classes == tuple("0123456789")
    folder = tmp_path / "p"
    folder.mkdir()
    img = np.zeros((60, 90, 3), np.uint8)
    img[10:30, 10:30] = 255                    # a white square
    img[35:55, 50:80] = (255, 0, 0)            # a red bar
    Image.fromarray(img).save(folder / "a.png")
    project = Project.create(folder, ["background", "square", "bar", "unused"])
    project.add_folder(folder)
    _, square, bar, _ = project.store.classes()
    image_id = project.store.images()[0].id
    project.store.add_box(Box(image_id, bar.id, 50, 35, 80, 55))
    project.store.add_box(Box(image_id, square.id, 10, 10, 30, 30))
    project.close()
    objects = project_objects(folder, size=16, channels=3)
    assert objects.classes == ("square", "bar") and sorted(objects.labels.tolist()) == [0, 1]
    square_crop = objects.images[objects.labels.tolist().index(0)]
    bar_crop = objects.images[objects.labels.tolist().index(1)]
    assert square_crop.mean() > bar_crop.mean()  # white against red on black
    assert bar_crop[0].mean() > bar_crop[1].mean()  # the bar's crop is red
    trainer = GenerativeTrainer(_conditional(source=str(folder), channels=3, steps=1, batch_size=2))
    assert trainer.config.class_names == ["square", "bar"]


def test_tagged_images_are_classes_too(tmp_path, capsys, one_thread):
    import json

    from engine.cli.main import main

    folder = tmp_path / "p"
    folder.mkdir()
    colours = {"red": (230, 20, 20), "blue": (20, 20, 230)}
    for i in range(6):
        img = np.zeros((40, 60, 3), np.uint8)
        img[10:30, 20:40] = colours["red" if i % 2 else "blue"]
        Image.fromarray(img).save(folder / f"{i}.png")
    project = Project.create(folder, ["background", "blue", "red"])
    project.add_folder(folder)
    background, blue, red = project.store.classes()
    images = project.store.images()
    for i, rec in enumerate(images):  # 0–3 tagged with their one colour (and the background), 4 with both, 5 not
        if i < 4:
            project.store.set_tags(rec.id, [background.id, red.id if int(Path(rec.path).stem) % 2 else blue.id])
        elif i == 4:
            project.store.set_tags(rec.id, [blue.id, red.id])
    project.close()
    tagged = load_training_images(str(folder), 16, 3, classes="tags")
    assert tagged.classes == ("blue", "red") and len(tagged.images) == 4
    assert "1 image tagged with several classes left out" in tagged.warning
    for image, label in zip(tagged.images, tagged.labels):  # the label names the square's colour
        red_over_blue = image[0].mean() > image[2].mean()
        assert red_over_blue == (tagged.classes[label] == "red")
    run = tmp_path / "run"
    assert main(["generate", "train", "gan", str(folder), "--conditional", "--class-source", "tags", "--color",
                 "--out", str(run), "--size", "16", "--steps", "2", "--batch-size", "4", "--base-channels", "8",
                 "--device", "cpu", "--json"]) == 0
    capsys.readouterr()
    assert json.loads((run / "generative.json").read_text())["config"]["class_names"] == ["blue", "red"]
    untagged = tmp_path / "untagged"
    untagged.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(untagged / "a.png")
    project = Project.create(untagged, ["background", "thing"])
    project.add_folder(untagged)
    project.close()
    with pytest.raises(ValueError, match="tagged with exactly one class"):
        load_training_images(str(untagged), 16, 3, classes="tags")


def test_conditional_settings_are_checked():
    with pytest.raises(SettingError, match="ddpm"):
        GenerativeConfig(model="gan", conditional=True, classifier=True)
    with pytest.raises(SettingError, match="conditional"):
        GenerativeConfig(model="ddpm", classifier=True)
    assert UNet(1, 8, (1, 2), num_classes=3).class_emb.num_embeddings == 4  # the classes and the null label
    assert math.isclose(GenerativeConfig().label_dropout, 0.1)


def test_wsv_generate_by_class_from_the_command_line(tmp_path, capsys, one_thread):
    import json

    from engine.cli.main import main

    run = tmp_path / "run"
    assert main(["generate", "train", "ddpm", "--builtin", "digits", "--out", str(run), "--size", "16", "--steps",
                 "3", "--batch-size", "8", "--base-channels", "8", "--timesteps", "20", "--device", "cpu",
                 "--conditional", "--classifier", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["class_names"] == list("0123456789")
    assert set(summary["final_losses"]) == {"loss", "classifier"}
    assert main(["generate", "sample", str(run), "--class", "3", "--class", "7", "--n", "2", "--ddim-steps", "3",
                 "--classifier-scale", "1", "--out", str(tmp_path / "s.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["3", "7"] and result["n"] == 4 and result["guidance"] == 3.0
    assert Image.open(tmp_path / "s.png").size[1] == 2 * (2 * 18 + 2)  # two rows, enlarged twice
    assert main(["generate", "sample", str(run), "--class", "cat", "--out", str(tmp_path / "x.png")]) != 0
    assert "no class 'cat'" in capsys.readouterr().err
    assert main(["generate", "eval", str(run), "--n", "10", "--ddim-steps", "2", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["class_check"]
    assert check["samples"] == 10 and check["chance"] == 0.1 and 0 <= check["sample_accuracy"] <= 1



def test_the_conditional_gan_gives_both_networks_the_class():
    from engine.generative.gan import Discriminator, Generator, discriminator_step, generator_step

    torch.manual_seed(0)
    G, D = Generator(1, 16, 8, base=8, num_classes=3), Discriminator(1, 16, base=8, num_classes=3)
    G.eval()
    z = torch.randn(2, 8)
    a, b = G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 2]))
    assert a.shape == (2, 1, 16, 16) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="classes"):
        G(z)
    # the projection term: D(x, y) − D(x, y') = ⟨e_y − e_y', φ(x)⟩, φ pooled over the 4 x 4 map
    D.eval()
    x = torch.randn(2, 1, 16, 16)
    phi = D.net[:-1](x).sum((2, 3))
    e = D.label_emb.weight
    diff = D(x, torch.tensor([0, 1])) - D(x, torch.tensor([2, 2]))
    torch.testing.assert_close(diff, ((e[[0, 1]] - e[[2, 2]]) * phi).sum(1), atol=1e-5, rtol=1e-4)
    G.train()
    D.train()
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    out = discriminator_step(G, D, opt_d, torch.randn(4, 1, 16, 16), labels=torch.tensor([0, 1, 2, 0]))
    out.update(generator_step(G, D, opt_g, 4, "cpu"))
    assert set(out) == {"d_loss", "d_real", "d_fake", "g_loss"}


def test_a_conditional_gan_trains_and_draws_by_class(tmp_path, one_thread):
    from engine.generative.models import load_generative

    config = GenerativeConfig(model="gan", image_size=16, steps=3, batch_size=8, base_channels=8, latent_dim=8,
                              preview_count=4, device="cpu", conditional=True)
    trainer = GenerativeTrainer(config, builtin_digits(16, n=40))
    records = list(trainer.run())
    assert records[-1].preview.samples.shape[0] == 10 * 18 + 2  # a row per digit
    trainer.save(tmp_path / "gan")
    model = load_generative(tmp_path / "gan")
    assert model.classes == list("0123456789")
    y = torch.tensor([3, 3, 7])
    assert model.sample(3, torch.Generator().manual_seed(0), labels=y).shape == (3, 1, 16, 16)
    with pytest.raises(GenerativeModelError, match="name the classes"):
        model.sample(2)
    with pytest.raises(SettingError, match="vae"):
        GenerativeConfig(model="vae", conditional=True)
