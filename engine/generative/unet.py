"""A small ε-prediction U-Net for DDPM: residual blocks with group norm, a sinusoidal embedding of the time step
added inside every block, and no attention, so that a 32 px model with 32 base channels trains on a CPU.

A class-conditional U-Net (``num_classes`` > 0) adds a learnt embedding of the class label y to the time
embedding; index ``num_classes`` is the null label ∅ ("no class given"), which training shows in place of the true
label now and then so that the same network is also the unconditional model classifier-free guidance needs."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoids of the (0-based) step index, as in Ho et al. 2020: smooth in t, so nearby
    steps share what they learn, with frequencies from 1 to 1/10000 covering both fine and coarse changes."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """ε̂(x_t, t) for images whose side is divisible by 2^(len(mults) - 1).

    ``base`` channels at full resolution, multiplied by ``mults`` at each coarser level; one residual block per
    level on the way down and two on the way up (one of them fed by the skip connection)."""

    def __init__(self, channels: int = 1, base: int = 32, mults: tuple[int, ...] = (1, 2, 2),
                 num_classes: int = 0) -> None:
        super().__init__()
        self.base = base
        self.num_classes = num_classes
        tdim = base * 4
        self.time_mlp = nn.Sequential(nn.Linear(base, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.class_emb = nn.Embedding(num_classes + 1, tdim) if num_classes else None
        self.stem = nn.Conv2d(channels, base, 3, padding=1)
        widths = [base * m for m in mults]
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        cin = base
        for i, w in enumerate(widths):
            self.down.append(ResBlock(cin, w, tdim))
            self.pool.append(nn.Conv2d(w, w, 3, stride=2, padding=1) if i < len(widths) - 1 else nn.Identity())
            cin = w
        self.mid = ResBlock(cin, cin, tdim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            self.up.append(ResBlock(cin + w, w, tdim))
            self.upsample.append(nn.Conv2d(w, widths[i - 1], 3, padding=1) if i > 0 else nn.Identity())
            cin = widths[i - 1] if i > 0 else w
        self.out_norm = _norm(cin)
        self.out = nn.Conv2d(cin, channels, 3, padding=1)
        # Starting at ε̂ = 0 makes the first loss ≈ E[ε²] = 1 whatever the width, a calm start for Adam.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂(x_t, t[, y]); a conditional network given no ``y`` predicts for the null label."""
        temb = self.time_mlp(timestep_embedding(t, self.base))
        if self.class_emb is not None:
            if y is None:
                y = torch.full_like(t, self.num_classes)
            temb = temb + self.class_emb(y)
        h = self.stem(x)
        skips = []
        for block, pool in zip(self.down, self.pool):
            h = block(h, temb)
            skips.append(h)
            h = pool(h)
        h = self.mid(h, temb)
        for block, upsample in zip(self.up, self.upsample):
            h = block(torch.cat([h, skips.pop()], 1), temb)
            if not isinstance(upsample, nn.Identity):
                h = upsample(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))
