"""``wsv bench crf``: speed of the CRF losses (forward + backward, the filter built afresh each time, as in
training with augmentation) and the dense loss's error against the brute-force O(N²) sum.

Speed is measured on a photo (a Weizmann horse where the evaluation data is present, else a rendered demo
image) resized to each size, with spatially smooth random class probabilities; accuracy on 96×96 crops of
several photos, in colour and in grayscale, where brute force is still feasible.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from engine.io.images import load_image
from engine.losses.dense_crf import dense_crf_accuracy, dense_crf_loss
from engine.losses.grid_crf import grid_crf_loss


def _photos(data_root: Path, count: int) -> tuple[list[np.ndarray], str]:
    horses = sorted((data_root / "horses" / "images").glob("*.jpg"))
    if horses:
        step = max(1, len(horses) // count)
        return [load_image(p, max_side=None).pixels for p in horses[::step][:count]], "horse photo"
    demo = sorted((Path(__file__).resolve().parents[2] / "resources" / "demo" / "images").glob("*.jpg"))
    return [load_image(p, max_side=None).pixels for p in demo[:count]], "demo render"


def _probs(k: int, h: int, w: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, k, max(2, h // 16), max(2, w // 16), generator=g) * 3
    return torch.softmax(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False), 1).to(dtype)


def _time(fn: Callable[[], None], reps: int, warm_s: float = 1.0) -> float:
    start = time.perf_counter()
    fn()  # warm-up: the kernels, the allocator and a machine that was idle (its first second runs slow)
    while time.perf_counter() - start < warm_s:
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run_crf(data_root: Path, sizes: Iterable[int], classes: Iterable[int], sigmas_xy: Iterable[float],
            reps: int = 5, accuracy: bool = True, devices: Iterable[str] = ("cpu",),
            log: Callable[[str], None] = print) -> list[dict]:
    photos, source = _photos(data_root, 6)
    records = []
    for device in devices:
        for size in sizes:
            img = torch.from_numpy(np.ascontiguousarray(
                F.interpolate(torch.from_numpy(photos[0]).permute(2, 0, 1)[None].float(), size=(size, size),
                              mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()))
            image = img.permute(2, 0, 1)[None].to(device)
            for k in classes:
                probs = _probs(k, size, size, 0).to(device)
                for sxy in sigmas_xy:
                    if sxy < 20 and size > 512:
                        continue  # a 1024² lattice at σ_xy = 5 needs ~10 GB; reported as not run
                    def step(loss=lambda p: dense_crf_loss(image, p, sigma_xy=sxy)) -> None:
                        p = probs.clone().requires_grad_(True)
                        loss(p).backward()
                        if device.startswith("cuda"):
                            torch.cuda.synchronize()
                    ms = _time(step, reps)
                    records.append({"bench": "crf", "loss": "dense", "size": size, "classes": k, "sigma_xy": sxy,
                                    "sigma_rgb": 15.0, "device": device, "ms": round(ms, 1), "image": source,
                                    "measures": "forward+backward incl. building the lattice"})
                    log(f"dense {size}² K={k} σxy={sxy} {device}: {ms:.1f} ms")
                ms = _time(lambda: grid_crf_loss(image, probs.clone().requires_grad_(True)).backward(), reps)
                records.append({"bench": "crf", "loss": "grid", "size": size, "classes": k, "device": device,
                                "ms": round(ms, 1), "image": source, "measures": "forward+backward"})
    if accuracy:
        for sxy in sigmas_xy:
            for gray in (False, True):
                for k in classes:
                    errs = []
                    for i, photo in enumerate(photos):
                        h, w = photo.shape[:2]
                        crop = photo[(h - 96) // 2:(h - 96) // 2 + 96, (w - 96) // 2:(w - 96) // 2 + 96]
                        image = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float()
                        if gray:
                            image = image.mean(1, keepdim=True).round()
                        acc = dense_crf_accuracy(image, _probs(k, 96, 96, i), sigma_xy=sxy)
                        errs.append(acc["rel_error"])
                    records.append({"bench": "crf", "loss": "dense", "size": 96, "classes": k, "sigma_xy": sxy,
                                    "sigma_rgb": 15.0, "image": f"{source} crops{' (gray)' if gray else ''}",
                                    "crops": len(errs), "rel_error_mean": round(float(np.mean(np.abs(errs))), 5),
                                    "rel_error_max": round(float(np.max(np.abs(errs))), 5),
                                    "measures": "relative error of the energy vs brute force"})
                    log(f"accuracy σxy={sxy} K={k} gray={gray}: max {np.max(np.abs(errs)) * 100:.2f}%")
    return records
